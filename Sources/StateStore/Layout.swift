/// The tables of the current schema, described once as data. PostgreSQL's DDL is generated from
/// it (`PostgresSchema`); SQLite's tables come from `Schema`'s migration steps (whose SQL is
/// history: files written by every earlier version are migrated by it), and a test checks that
/// they make exactly these tables and columns. docs/state-schema.md is checked against it too.
enum Layout {
    enum ColumnType: Sendable, Equatable {
        /// The row's surrogate key: SQLite `INTEGER PRIMARY KEY`, PostgreSQL `bigint` identity.
        case id
        case integer
        case text
        case blob
        /// SQLite `INTEGER` 0/1, PostgreSQL `boolean`.
        case bool
        /// A set of strings as a JSON array, as text (the same bytes on both backends).
        case list
        /// A timestamp, PostgreSQL only (`timestamptz`).
        case timestamp
    }

    struct Column: Sendable {
        var name: String
        var type: ColumnType
        var notNull = false
        var defaultValue: String? = nil
        /// A CHECK constraint on the column (PostgreSQL syntax).
        var check: String? = nil
        /// `table (column)` this column references.
        var references: String? = nil
        var unique = false
    }

    struct Index: Sendable {
        var name: String
        var columns: [String]
        var unique: Bool
        var predicate: String? = nil

        /// `CREATE [UNIQUE] INDEX name ON table (columns) [WHERE predicate]`, as PostgreSQL's DDL creates it and
        /// SQLite stores it in `sqlite_master` (without the `;`).
        func sql(on table: String) -> String {
            "CREATE \(unique ? "UNIQUE " : "")INDEX \(name) ON \(table) (\(columns.joined(separator: ", ")))" + (predicate.map { " WHERE \($0)" } ?? "")
        }
    }

    /// Who may see a platform table's rows under row-level security (PostgreSQL).
    enum TenantScope: Sendable {
        /// The platform-wide catalog (plans, permissions, events): every reader sees every row.
        case global
        /// A SQL condition that holds for the rows of the tenant the session names (`orgctl.tenant`).
        case rows(String)
        /// orgctl's own tables: no platform role sees a row.
        case orgctlOnly
    }

    struct Table: Sendable {
        var name: String
        var columns: [Column]
        var primaryKey: [String] = []
        var uniques: [[String]] = []
        var indexes: [Index] = []
        var scope: TenantScope
        /// Only in this backend's schema (the PostgreSQL lock row): nil for both.
        var postgresOnly = false
    }

    private static func c(_ name: String, _ type: ColumnType, notNull: Bool = false, default value: String? = nil, check: String? = nil,
                          references: String? = nil, unique: Bool = false) -> Column {
        Column(name: name, type: type, notNull: notNull, defaultValue: value, check: check, references: references, unique: unique)
    }

    /// The tenant the session names: the id of the tenant whose slug is `orgctl.tenant`.
    static let currentTenant = "(SELECT t.id FROM tenants t WHERE t.slug = current_setting('orgctl.tenant', true))"
    private static let ofTenant = TenantScope.rows("tenant_id = \(currentTenant)")

    static let tables: [Table] = [
        Table(name: "plans", columns: [
            c("id", .id), c("slug", .text, notNull: true, unique: true), c("description", .text), c("rate_limit", .text), c("features", .list),
        ], scope: .global),
        Table(name: "permissions", columns: [
            c("id", .id), c("name", .text, notNull: true, unique: true), c("category", .text), c("description", .text),
        ], scope: .global),
        Table(name: "events", columns: [c("id", .id), c("name", .text, notNull: true, unique: true)], scope: .global),
        Table(name: "tenants", columns: [
            c("id", .id), c("slug", .text, notNull: true, unique: true), c("name", .text), c("plan", .text, notNull: true),
            c("status", .text, notNull: true, default: "'active'", check: "status IN ('active', 'trial', 'suspended')"),
            c("trial_ends", .text), c("domains", .list), c("primary_color", .text), c("logo_url", .text), c("custom_domain", .text),
        ], scope: .rows("slug = current_setting('orgctl.tenant', true)")),
        Table(name: "roles", columns: [
            c("id", .id), c("tenant_id", .integer, references: "tenants (id)"), c("slug", .text, notNull: true), c("description", .text),
            c("max_duration_seconds", .integer),
        ], indexes: [
            Index(name: "roles_system_slug", columns: ["slug"], unique: true, predicate: "tenant_id IS NULL"),
            Index(name: "roles_tenant_slug", columns: ["tenant_id", "slug"], unique: true, predicate: "tenant_id IS NOT NULL"),
        ], scope: .rows("tenant_id IS NULL OR tenant_id = \(currentTenant)")),
        Table(name: "role_permissions", columns: [
            c("role_id", .integer, notNull: true, references: "roles (id)"), c("permission", .text, notNull: true),
        ], primaryKey: ["role_id", "permission"], scope: .rows("role_id IN (SELECT r.id FROM roles r)")),
        Table(name: "quotas", columns: [
            c("scope", .text, notNull: true, check: "scope IN ('plan', 'tenant', 'team')"), c("scope_id", .integer, notNull: true),
            c("name", .text, notNull: true), c("value", .integer),
        ], primaryKey: ["scope", "scope_id", "name"],
        scope: .rows("scope = 'plan' OR (scope = 'tenant' AND scope_id = \(currentTenant)) OR (scope = 'team' AND scope_id IN (SELECT g.id FROM teams g))")),
        Table(name: "security_policies", columns: [
            c("tenant_id", .integer, references: "tenants (id)"), c("mfa", .text, check: "mfa IN ('required', 'optional')"),
            c("session_timeout_seconds", .integer), c("ip_allowlist", .list),
        ], primaryKey: ["tenant_id"], scope: ofTenant),
        Table(name: "members", columns: [
            c("id", .id), c("tenant_id", .integer, notNull: true, references: "tenants (id)"), c("email", .text, notNull: true),
            c("role", .text, notNull: true), c("expires", .text),
        ], uniques: [["tenant_id", "email"]], scope: ofTenant),
        Table(name: "teams", columns: [
            c("id", .id), c("tenant_id", .integer, notNull: true, references: "tenants (id)"), c("slug", .text, notNull: true),
            c("name", .text), c("description", .text), c("parent_id", .integer, references: "teams (id)"),
        ], uniques: [["tenant_id", "slug"]], scope: ofTenant),
        Table(name: "team_members", columns: [
            c("id", .id), c("team_id", .integer, notNull: true, references: "teams (id)"),
            c("member_id", .integer, notNull: true, references: "members (id)"),
            c("role", .text, notNull: true, check: "role IN ('lead', 'member')"),
        ], uniques: [["team_id", "member_id"]], indexes: [Index(name: "team_members_member", columns: ["member_id"], unique: false)],
        scope: .rows("team_id IN (SELECT g.id FROM teams g)")),
        Table(name: "sso_settings", columns: [
            c("tenant_id", .integer, references: "tenants (id)"), c("enforce", .bool), c("jit_enabled", .bool), c("jit_default_role", .text),
        ], primaryKey: ["tenant_id"], scope: ofTenant),
        Table(name: "sso_providers", columns: [
            c("id", .id), c("tenant_id", .integer, notNull: true, references: "tenants (id)"), c("name", .text, notNull: true),
            c("type", .text, notNull: true, check: "type IN ('saml', 'oidc')"), c("entity_id", .text), c("sso_url", .text),
            c("certificate_pem", .text), c("certificate_sha256", .text), c("issuer", .text), c("client_id", .text),
            c("client_secret_ciphertext", .blob), c("client_secret_key_id", .text), c("client_secret_fingerprint", .text),
        ], uniques: [["tenant_id", "name"]], scope: ofTenant),
        Table(name: "webhooks", columns: [
            c("id", .id), c("tenant_id", .integer, notNull: true, references: "tenants (id)"), c("name", .text, notNull: true),
            c("url", .text), c("events", .list), c("secret_ciphertext", .blob), c("secret_key_id", .text), c("secret_fingerprint", .text),
            c("timeout_seconds", .integer), c("max_retries", .integer), c("enabled", .bool),
        ], uniques: [["tenant_id", "name"]], scope: ofTenant),
        Table(name: "api_keys", columns: [
            c("id", .id), c("tenant_id", .integer, notNull: true, references: "tenants (id)"), c("name", .text, notNull: true),
            c("description", .text), c("scopes", .list), c("rate_limit", .text), c("expires", .text),
            c("rotation", .integer), c("rotate_on_scope_change", .bool), c("key_prefix", .text), c("key_sha256", .text),
        ], uniques: [["tenant_id", "name"]], scope: ofTenant),

        // orgctl's own tables.
        Table(name: "orgctl_meta", columns: [c("key", .text), c("value", .text, notNull: true)], primaryKey: ["key"], scope: .orgctlOnly),
        Table(name: "orgctl_resources", columns: [
            c("kind", .text, notNull: true), c("row_id", .integer, notNull: true), c("address", .text, notNull: true, unique: true),
            c("digest", .text, notNull: true), c("audit_seq", .integer, notNull: true), c("applied", .blob),
        ], primaryKey: ["kind", "row_id"], scope: .orgctlOnly),
        Table(name: "orgctl_audit", columns: [
            c("seq", .integer), c("entry", .blob, notNull: true), c("prev_hash", .blob, notNull: true), c("hash", .blob, notNull: true),
        ], primaryKey: ["seq"], scope: .orgctlOnly),
        Table(name: "orgctl_merkle", columns: [
            c("level", .integer, notNull: true, check: "level > 0 AND level % 4 = 0"), c("idx", .integer, notNull: true, check: "idx >= 0"),
            c("hash", .blob, notNull: true, check: "octet_length(hash) = 32"),
        ], primaryKey: ["level", "idx"], scope: .orgctlOnly),
        // The webhook outbox (schema 6; OutboxSQL, docs/webhooks.md).
        Table(name: "orgctl_outbox", columns: [
            c("id", .text), c("webhook_id", .integer, notNull: true), c("webhook", .text, notNull: true), c("event_type", .text, notNull: true),
            c("audit_seq", .integer, notNull: true), c("created_at", .integer, notNull: true), c("payload", .blob, notNull: true),
            c("status", .text, notNull: true, check: "status IN ('pending', 'delivered', 'dead')"), c("attempts", .integer, notNull: true),
            c("next_attempt_at", .integer, notNull: true), c("claimed_by", .text), c("claimed_until", .integer), c("delivered_at", .integer),
            c("last_error", .text),
        ], primaryKey: ["id"], uniques: [["status", "next_attempt_at", "id"], ["webhook_id", "status", "id"]], scope: .orgctlOnly),
        Table(name: "orgctl_outbox_attempts", columns: [
            c("event_id", .text, notNull: true), c("attempt", .integer, notNull: true), c("started_at", .integer, notNull: true),
            c("duration_ms", .integer, notNull: true), c("status_code", .integer), c("error", .text), c("response", .blob),
            c("deliverer", .text, notNull: true),
        ], primaryKey: ["event_id", "attempt"], scope: .orgctlOnly),
        Table(name: "orgctl_webhook_endpoints", columns: [
            c("webhook_id", .integer), c("webhook", .text, notNull: true), c("disabled_at", .integer, notNull: true), c("reason", .text, notNull: true),
        ], primaryKey: ["webhook_id"], scope: .orgctlOnly),
        // Data subjects (schema 7; Privacy/SubjectTable.swift, docs/audit-chain.md section 8).
        // One subject per address: the named index `orgctl_subjects_email` (schema 9), which a large first
        // apply drops and builds again after its inserts, in its transaction (SQLite/DeferredIndexes.swift).
        Table(name: "orgctl_subjects", columns: [c("id", .text), c("email", .text, notNull: true)],
              primaryKey: ["id"], indexes: [Index(name: "orgctl_subjects_email", columns: ["email"], unique: true)], scope: .orgctlOnly),
        Table(name: "orgctl_subject_values", columns: [
            c("token", .text), c("subject", .text, notNull: true), c("value", .text, notNull: true),
        ], primaryKey: ["token"], uniques: [["subject", "token"]], scope: .orgctlOnly),
        // The apply lock (PostgreSQL): one row, locked FOR UPDATE by the apply that writes.
        Table(name: "orgctl_lock", columns: [c("name", .text), c("holder", .text), c("since", .timestamp)],
              primaryKey: ["name"], scope: .orgctlOnly, postgresOnly: true),
    ]

    static func table(_ name: String) -> Table? { tables.first { $0.name == name } }

    /// Tables a migration step dropped (``Schema/Statement/dropTable(name:)``), as the versions before it had them.
    static let droppedTables: [Table] = [
        // Subject -> entry sequences (schema 7 only; dropped by step 7 -> 8).
        Table(name: "orgctl_subject_entries", columns: [c("subject", .text, notNull: true), c("seq", .integer, notNull: true)],
              primaryKey: ["subject", "seq"], scope: .orgctlOnly),
    ]
}
