import Audit
import Spec

/// Reads every platform table into resources keyed by address: one ordered scan per table.
///
/// Column conventions mirror `DesiredState` (see `AttributeEncoding`), so equal rows and
/// configurations give equal attributes.
struct StateReader {
    let db: SQLiteConnection

    /// Rows collected for one kind: (address, parent, rowID, attributes).
    private struct Row {
        var address: String
        var parent: String?
        var rowID: Int64
        var kind: ResourceKind
        var attributes: [Attribute]
        /// Digest of what orgctl last applied (the query's last column), nil if never applied.
        var applied: String?
    }

    /// Joins a kind's rows to what orgctl last applied to them (by kind and row id, so SQLite does the lookup).
    private func applied(_ kind: String, _ alias: String) -> String {
        "LEFT JOIN orgctl_resources o ON o.kind = '\(kind)' AND o.row_id = \(alias).id"
    }

    func read() throws(SQLiteError) -> [StoredResource] {
        var rows: [Row] = []
        rows.reserveCapacity(1024)
        let quotas = try readQuotas()
        let permissions = try readRolePermissions()

        // Plans.
        var statement = try db.prepare("SELECT p.id, p.slug, p.rate_limit, p.features, p.description, o.digest FROM plans p \(applied("plan", "p"))")
        while try statement.step() {
            let id = statement.int(at: 0)
            var attributes = quotas["plan", id]
            text(statement, 2, "rateLimit", &attributes)
            list(statement, 3, "features", &attributes)
            text(statement, 4, "description", &attributes)
            rows.append(Row(address: "plan/\(statement.text(at: 1))", parent: nil, rowID: id, kind: .plan, attributes: attributes, applied: statement.optionalText(at: statement.columnCount - 1)))
        }
        statement = try db.prepare("SELECT p.id, p.name, p.category, p.description, o.digest FROM permissions p \(applied("permission", "p"))")
        while try statement.step() {
            var attributes: [Attribute] = []
            text(statement, 2, "category", &attributes)
            text(statement, 3, "description", &attributes)
            rows.append(Row(address: "permission/\(statement.text(at: 1))", parent: nil, rowID: statement.int(at: 0), kind: .permission, attributes: attributes, applied: statement.optionalText(at: statement.columnCount - 1)))
        }
        statement = try db.prepare("SELECT e.id, e.name, o.digest FROM events e \(applied("event", "e"))")
        while try statement.step() {
            rows.append(Row(address: "event/\(statement.text(at: 1))", parent: nil, rowID: statement.int(at: 0), kind: .event, attributes: [], applied: statement.optionalText(at: statement.columnCount - 1)))
        }
        statement = try db.prepare(
            "SELECT r.id, r.slug, r.description, r.max_duration_seconds, t.slug, o.digest FROM roles r LEFT JOIN tenants t ON t.id = r.tenant_id LEFT JOIN orgctl_resources o ON o.kind = (CASE WHEN r.tenant_id IS NULL THEN 'role' ELSE 'tenant-role' END) AND o.row_id = r.id")
        while try statement.step() {
            let id = statement.int(at: 0)
            var attributes: [Attribute] = [Attribute("permissions", .list(permissions[id] ?? []))]
            text(statement, 2, "description", &attributes)
            duration(statement, 3, "maxDuration", &attributes)
            if let tenant = statement.optionalText(at: 4) {
                rows.append(Row(address: "tenant/\(tenant)/role/\(statement.text(at: 1))", parent: "tenant/\(tenant)", rowID: id, kind: .tenantRole, attributes: attributes, applied: statement.optionalText(at: statement.columnCount - 1)))
            } else {
                rows.append(Row(address: "role/\(statement.text(at: 1))", parent: nil, rowID: id, kind: .role, attributes: attributes, applied: statement.optionalText(at: statement.columnCount - 1)))
            }
        }
        statement = try db.prepare(
            """
            SELECT t.id, t.slug, t.name, t.plan, t.status, t.trial_ends, t.domains, t.primary_color, t.logo_url, t.custom_domain,
                   s.mfa, s.session_timeout_seconds, s.ip_allowlist, x.enforce, x.jit_enabled, x.jit_default_role, o.digest
            FROM tenants t
            LEFT JOIN security_policies s ON s.tenant_id = t.id
            LEFT JOIN sso_settings x ON x.tenant_id = t.id
            \(applied("tenant", "t"))
            """)
        while try statement.step() {
            let id = statement.int(at: 0)
            var attributes = quotas["tenant", id]
            text(statement, 2, "name", &attributes)
            text(statement, 3, "plan", &attributes)
            text(statement, 4, "status", &attributes)
            text(statement, 5, "trialEnds", &attributes)
            list(statement, 6, "domains", &attributes)
            text(statement, 7, "branding.primaryColor", &attributes)
            text(statement, 8, "branding.logoUrl", &attributes)
            text(statement, 9, "branding.customDomain", &attributes)
            text(statement, 10, "security.mfa", &attributes)
            duration(statement, 11, "security.sessionTimeout", &attributes)
            list(statement, 12, "security.ipAllowlist", &attributes)
            bool(statement, 13, "sso.enforce", &attributes)
            bool(statement, 14, "sso.jit.enabled", &attributes)
            text(statement, 15, "sso.jit.defaultRole", &attributes)
            rows.append(Row(address: "tenant/\(statement.text(at: 1))", parent: nil, rowID: id, kind: .tenant, attributes: attributes, applied: statement.optionalText(at: statement.columnCount - 1)))
        }
        statement = try db.prepare("SELECT m.id, t.slug, m.email, m.role, m.expires, o.digest FROM members m JOIN tenants t ON t.id = m.tenant_id \(applied("member", "m"))")
        while try statement.step() {
            let tenant = "tenant/\(statement.text(at: 1))"
            var attributes: [Attribute] = []
            text(statement, 3, "role", &attributes)
            text(statement, 4, "expires", &attributes)
            rows.append(Row(address: "\(tenant)/member/\(statement.text(at: 2))", parent: tenant, rowID: statement.int(at: 0), kind: .member, attributes: attributes, applied: statement.optionalText(at: statement.columnCount - 1)))
        }
        statement = try db.prepare(
            """
            SELECT g.id, t.slug, g.slug, g.name, g.description, p.slug, o.digest
            FROM teams g JOIN tenants t ON t.id = g.tenant_id LEFT JOIN teams p ON p.id = g.parent_id \(applied("team", "g"))
            """)
        while try statement.step() {
            let id = statement.int(at: 0)
            let tenant = "tenant/\(statement.text(at: 1))"
            var attributes = quotas["team", id]
            text(statement, 3, "name", &attributes)
            text(statement, 4, "description", &attributes)
            text(statement, 5, "parent", &attributes)
            rows.append(Row(address: "\(tenant)/team/\(statement.text(at: 2))", parent: tenant, rowID: id, kind: .team, attributes: attributes, applied: statement.optionalText(at: statement.columnCount - 1)))
        }
        statement = try db.prepare(
            """
            SELECT x.id, t.slug, g.slug, m.email, x.role, o.digest
            FROM team_members x JOIN teams g ON g.id = x.team_id JOIN tenants t ON t.id = g.tenant_id JOIN members m ON m.id = x.member_id
            \(applied("team-member", "x"))
            """)
        while try statement.step() {
            let team = "tenant/\(statement.text(at: 1))/team/\(statement.text(at: 2))"
            var attributes: [Attribute] = []
            text(statement, 4, "role", &attributes)
            rows.append(Row(address: "\(team)/member/\(statement.text(at: 3))", parent: team, rowID: statement.int(at: 0), kind: .teamMember, attributes: attributes, applied: statement.optionalText(at: statement.columnCount - 1)))
        }
        statement = try db.prepare(
            """
            SELECT p.id, t.slug, p.name, p.type, p.entity_id, p.sso_url, p.certificate_sha256, p.certificate_pem, p.issuer,
                   p.client_id, p.client_secret_fingerprint, o.digest
            FROM sso_providers p JOIN tenants t ON t.id = p.tenant_id \(applied("sso-provider", "p"))
            """)
        while try statement.step() {
            let tenant = "tenant/\(statement.text(at: 1))"
            var attributes: [Attribute] = []
            text(statement, 3, "type", &attributes)
            text(statement, 4, "entityId", &attributes)
            text(statement, 5, "ssoUrl", &attributes)
            if let digest = statement.optionalText(at: 6) {
                attributes.append(Attribute("certificate", .document(sha256: digest, text: statement.optionalText(at: 7) ?? "")))
            }
            text(statement, 8, "issuer", &attributes)
            text(statement, 9, "clientId", &attributes)
            if let fingerprint = statement.optionalText(at: 10) { attributes.append(Attribute("clientSecret", .secret(fingerprint: fingerprint))) }
            rows.append(Row(address: "\(tenant)/sso/\(statement.text(at: 2))", parent: tenant, rowID: statement.int(at: 0), kind: .ssoProvider, attributes: attributes, applied: statement.optionalText(at: statement.columnCount - 1)))
        }
        statement = try db.prepare(
            """
            SELECT w.id, t.slug, w.name, w.url, w.events, w.secret_fingerprint, w.timeout_seconds, w.max_retries, w.enabled, o.digest
            FROM webhooks w JOIN tenants t ON t.id = w.tenant_id \(applied("webhook", "w"))
            """)
        while try statement.step() {
            let tenant = "tenant/\(statement.text(at: 1))"
            var attributes: [Attribute] = []
            text(statement, 3, "url", &attributes)
            list(statement, 4, "events", &attributes)
            if let fingerprint = statement.optionalText(at: 5) { attributes.append(Attribute("secret", .secret(fingerprint: fingerprint))) }
            duration(statement, 6, "timeout", &attributes)
            integer(statement, 7, "maxRetries", &attributes)
            bool(statement, 8, "enabled", &attributes)
            rows.append(Row(address: "\(tenant)/webhook/\(statement.text(at: 2))", parent: tenant, rowID: statement.int(at: 0), kind: .webhook, attributes: attributes, applied: statement.optionalText(at: statement.columnCount - 1)))
        }
        statement = try db.prepare(
            """
            SELECT k.id, t.slug, k.name, k.description, k.scopes, k.rate_limit, k.expires,
                   k.rotation, k.rotate_on_scope_change, k.key_prefix, k.key_sha256, o.digest
            FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \(applied("api-key", "k"))
            """)
        while try statement.step() {
            let tenant = "tenant/\(statement.text(at: 1))"
            var attributes: [Attribute] = []
            text(statement, 3, "description", &attributes)
            list(statement, 4, "scopes", &attributes)
            text(statement, 5, "rateLimit", &attributes)
            text(statement, 6, "expires", &attributes)
            integer(statement, 7, "rotate", &attributes)
            bool(statement, 8, "rotateOnScopeChange", &attributes)
            text(statement, 9, KeyMaterial.prefixAttribute, &attributes)
            text(statement, 10, KeyMaterial.hashAttribute, &attributes)
            rows.append(Row(address: "\(tenant)/apikey/\(statement.text(at: 2))", parent: tenant, rowID: statement.int(at: 0), kind: .apiKey, attributes: attributes, applied: statement.optionalText(at: statement.columnCount - 1)))
        }

        return rows.map { row in
            let resource = Resource(address: row.address, kind: row.kind, parent: row.parent, attributes: row.attributes)
            return StoredResource(resource: resource, rowID: row.rowID, digest: ResourceDigest.of(resource), appliedDigest: row.applied)
        }
    }

    /// Addresses orgctl recorded as applied whose rows no longer exist (deleted outside orgctl), sorted.
    func readMissingApplied() throws(SQLiteError) -> [String] {
        let tables: [(kind: String, table: String)] = [
            ("plan", "plans"), ("permission", "permissions"), ("event", "events"), ("role", "roles"), ("tenant-role", "roles"),
            ("tenant", "tenants"), ("member", "members"), ("team", "teams"), ("team-member", "team_members"),
            ("sso-provider", "sso_providers"), ("webhook", "webhooks"), ("api-key", "api_keys"),
        ]
        var missing: [String] = []
        for (kind, table) in tables {
            let statement = try db.prepare(
                "SELECT o.address FROM orgctl_resources o LEFT JOIN \(table) x ON x.id = o.row_id WHERE o.kind = '\(kind)' AND x.id IS NULL")
            while try statement.step() { missing.append(statement.text(at: 0)) }
        }
        return missing.sorted()
    }

    // MARK: Side tables

    struct QuotaIndex {
        var byScope: [String: [Int64: [Attribute]]] = [:]
        subscript(scope: String, id: Int64) -> [Attribute] { byScope[scope]?[id] ?? [] }
    }

    private func readQuotas() throws(SQLiteError) -> QuotaIndex {
        var index = QuotaIndex()
        let statement = try db.prepare("SELECT scope, scope_id, name, value FROM quotas")
        while try statement.step() {
            let name = statement.text(at: 2)
            let value: Value
            if statement.isNull(at: 3) {
                value = .string("unlimited")
            } else if let quota = QuotaName(rawValue: name) {
                value = AttributeEncoding.quota(.limit(statement.int(at: 3)), quota)
            } else {
                value = .int(statement.int(at: 3))
            }
            index.byScope[statement.text(at: 0), default: [:]][statement.int(at: 1), default: []]
                .append(Attribute("quotas.\(name)", value))
        }
        return index
    }

    private func readRolePermissions() throws(SQLiteError) -> [Int64: [String]] {
        var permissions: [Int64: [String]] = [:]
        let statement = try db.prepare("SELECT role_id, permission FROM role_permissions ORDER BY role_id, permission")
        while try statement.step() { permissions[statement.int(at: 0), default: []].append(statement.text(at: 1)) }
        return permissions
    }

    // MARK: Column decoding

    private func text(_ s: SQLiteStatement, _ column: Int32, _ name: String, _ attributes: inout [Attribute]) {
        if let value = s.optionalText(at: column) { attributes.append(Attribute(name, .string(value))) }
    }

    private func integer(_ s: SQLiteStatement, _ column: Int32, _ name: String, _ attributes: inout [Attribute]) {
        if !s.isNull(at: column) { attributes.append(Attribute(name, .int(s.int(at: column)))) }
    }

    private func bool(_ s: SQLiteStatement, _ column: Int32, _ name: String, _ attributes: inout [Attribute]) {
        if !s.isNull(at: column) { attributes.append(Attribute(name, .bool(s.int(at: column) != 0))) }
    }

    private func duration(_ s: SQLiteStatement, _ column: Int32, _ name: String, _ attributes: inout [Attribute]) {
        if !s.isNull(at: column) { attributes.append(Attribute(name, AttributeEncoding.duration(s.int(at: column)))) }
    }

    /// Lists are stored as JSON arrays of strings; anything else (edited by hand) is kept as text
    /// so the plan shows it and replaces it.
    private func list(_ s: SQLiteStatement, _ column: Int32, _ name: String, _ attributes: inout [Attribute]) {
        guard let raw = s.optionalText(at: column) else { return }
        attributes.append(Attribute(name, ListColumn.decode(raw)))
    }
}

/// JSON-array-of-strings columns (`domains`, `features`, `events`, `scopes`, `ip_allowlist`).
enum ListColumn {
    static func encode(_ values: [String]) -> String {
        String(decoding: CanonicalJSON.encode(.array(values.map { .string($0) })), as: UTF8.self)
    }

    static func decode(_ raw: String) -> Value {
        guard let parsed = try? CanonicalJSON.decode(Array(raw.utf8)), case .array(let items) = parsed else { return .string(raw) }
        var strings: [String] = []
        for item in items {
            guard case .string(let s) = item else { return .string(raw) }
            strings.append(s)
        }
        return .list(Array(Set(strings)).sorted())
    }
}
