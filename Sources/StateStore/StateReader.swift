import Audit
import Spec

/// Reads every platform table into resources keyed by address: one ordered scan per table.
///
/// Column conventions mirror `DesiredState` (see `AttributeEncoding`), so equal rows and
/// configurations give equal attributes.
struct StateReader {
    let db: SQLiteConnection
    /// Row digests are keyed with it (see ``ResourceDigest``); plain SHA-256 without a key, which
    /// matches no stored digest, so only commands that do not compare digests read without one.
    var key: StateKey? = nil
    /// A database older than schema 5, read as migrated: its stored digests are plain and are keyed
    /// on reading, as the migration will key them.
    var storedDigestsArePlain = false

    /// What orgctl last applied to one kind's rows: row ids ascending, with their digests.
    private struct AppliedIndex {
        var rowIDs: [Int64] = []
        var digests: [Digest] = []
        /// Where the last lookup matched: table scans visit rows in id order, so the next
        /// lookup is usually the next entry.
        var cursor = 0

        mutating func digest(of rowID: Int64) -> Digest? {
            if cursor < rowIDs.count, rowIDs[cursor] == rowID {
                defer { cursor += 1 }
                return digests[cursor]
            }
            var low = 0, high = rowIDs.count
            while low < high {
                let middle = (low + high) / 2
                if rowIDs[middle] < rowID { low = middle + 1 } else { high = middle }
            }
            guard low < rowIDs.count, rowIDs[low] == rowID else { return nil }
            cursor = low + 1
            return digests[low]
        }
    }

    /// One pass over `orgctl_resources` (in primary-key order), instead of a join per table row.
    private func readApplied() throws(SQLiteError) -> [ResourceKind: AppliedIndex] {
        let keying = storedDigestsArePlain ? key.map(DigestKeying.init) : nil
        var indexes: [ResourceKind: AppliedIndex] = [:]
        for kind in ResourceKind.allCases {
            var index = AppliedIndex()
            let statement = try db.prepare("SELECT row_id, digest FROM orgctl_resources WHERE kind = ?1 ORDER BY row_id")
            try statement.bind(text: kind.rawValue, at: 1)
            while try statement.step() {
                // A digest that is not 64 hex digits (edited by hand) matches no row: that row shows as drifted.
                guard let digest = statement.withText(at: 1, { Digest(hex: $0) }) else { continue }
                index.rowIDs.append(statement.int(at: 0))
                index.digests.append(keying?.keyed(digest) ?? digest)
            }
            indexes[kind] = index
        }
        return indexes
    }

    /// Collects resources, digesting each as it is read.
    private struct Collector {
        var resources: [StoredResource] = []
        var applied: [ResourceKind: AppliedIndex]
        var digester: ResourceDigester

        mutating func add(_ address: String, _ kind: ResourceKind, parent: String?, rowID: Int64, _ attributes: [Attribute]) {
            let resource = Resource(address: address, kind: kind, parent: parent, attributes: attributes)
            let applied = self.applied[kind]?.digest(of: rowID)
            resources.append(StoredResource(resource: resource, rowID: rowID, digest: digester.digest(resource), appliedDigest: applied))
        }
    }

    /// Every row of every platform table, as resources. Parents are looked up by id in Swift
    /// (each parent address is built once and shared by its children's `parent`), so each table
    /// is one plain scan. A row whose parent row is missing (possible only after hand edits with
    /// foreign keys off) is not read, as an inner join would not.
    func read() throws(SQLiteError) -> [StoredResource] {
        var rows = Collector(applied: try readApplied(), digester: ResourceDigester(key: key))
        rows.resources.reserveCapacity(1024)
        let quotas = try readQuotas()
        let permissions = try readRolePermissions()

        // Plans.
        var statement = try db.prepare("SELECT id, slug, rate_limit, features, description FROM plans")
        while try statement.step() {
            let id = statement.int(at: 0)
            var attributes = quotas["plan", id]
            text(statement, 2, "rateLimit", &attributes)
            list(statement, 3, "features", &attributes)
            text(statement, 4, "description", &attributes)
            rows.add("plan/\(statement.text(at: 1))", .plan, parent: nil, rowID: id, attributes)
        }
        statement = try db.prepare("SELECT id, name, category, description FROM permissions")
        while try statement.step() {
            var attributes: [Attribute] = []
            text(statement, 2, "category", &attributes)
            text(statement, 3, "description", &attributes)
            rows.add("permission/\(statement.text(at: 1))", .permission, parent: nil, rowID: statement.int(at: 0), attributes)
        }
        statement = try db.prepare("SELECT id, name FROM events")
        while try statement.step() {
            rows.add("event/\(statement.text(at: 1))", .event, parent: nil, rowID: statement.int(at: 0), [])
        }
        var tenants = try idMap(String.self, "tenants")
        statement = try db.prepare(
            """
            SELECT t.id, t.slug, t.name, t.plan, t.status, t.trial_ends, t.domains, t.primary_color, t.logo_url, t.custom_domain,
                   s.mfa, s.session_timeout_seconds, s.ip_allowlist, x.enforce, x.jit_enabled, x.jit_default_role
            FROM tenants t
            LEFT JOIN security_policies s ON s.tenant_id = t.id
            LEFT JOIN sso_settings x ON x.tenant_id = t.id
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
            let address = "tenant/\(statement.text(at: 1))"
            tenants[id] = address
            rows.add(address, .tenant, parent: nil, rowID: id, attributes)
        }
        /// The tenant address of the row's `tenant_id` column.
        func tenant(_ column: Int32) -> String? { tenants[statement.int(at: column)] }

        statement = try db.prepare("SELECT id, slug, description, max_duration_seconds, tenant_id FROM roles")
        while try statement.step() {
            let id = statement.int(at: 0)
            var attributes: [Attribute] = [Attribute("permissions", .list(permissions[id] ?? []))]
            text(statement, 2, "description", &attributes)
            duration(statement, 3, "maxDuration", &attributes)
            if statement.isNull(at: 4) {
                rows.add("role/\(statement.text(at: 1))", .role, parent: nil, rowID: id, attributes)
            } else if let tenant = tenant(4) {
                rows.add("\(tenant)/role/\(statement.text(at: 1))", .tenantRole, parent: tenant, rowID: id, attributes)
            }
        }
        var members = try idMap(String.self, "members")
        statement = try db.prepare("SELECT id, tenant_id, email, role, expires FROM members")
        while try statement.step() {
            guard let tenant = tenant(1) else { continue }
            let id = statement.int(at: 0)
            let email = statement.text(at: 2)
            members[id] = email
            var attributes: [Attribute] = []
            text(statement, 3, "role", &attributes)
            text(statement, 4, "expires", &attributes)
            rows.add("\(tenant)/member/\(email)", .member, parent: tenant, rowID: id, attributes)
        }
        var teams = try idMap(String.self, "teams")
        statement = try db.prepare("SELECT g.id, g.tenant_id, g.slug, g.name, g.description, p.slug FROM teams g LEFT JOIN teams p ON p.id = g.parent_id")
        while try statement.step() {
            guard let tenant = tenant(1) else { continue }
            let id = statement.int(at: 0)
            var attributes = quotas["team", id]
            text(statement, 3, "name", &attributes)
            text(statement, 4, "description", &attributes)
            text(statement, 5, "parent", &attributes)
            let address = "\(tenant)/team/\(statement.text(at: 2))"
            teams[id] = address
            rows.add(address, .team, parent: tenant, rowID: id, attributes)
        }
        statement = try db.prepare("SELECT id, team_id, member_id, role FROM team_members")
        while try statement.step() {
            guard let team = teams[statement.int(at: 1)], let email = members[statement.int(at: 2)] else { continue }
            var attributes: [Attribute] = []
            text(statement, 3, "role", &attributes)
            rows.add("\(team)/member/\(email)", .teamMember, parent: team, rowID: statement.int(at: 0), attributes)
        }
        statement = try db.prepare(
            """
            SELECT id, tenant_id, name, type, entity_id, sso_url, certificate_sha256, certificate_pem, issuer,
                   client_id, client_secret_fingerprint
            FROM sso_providers
            """)
        while try statement.step() {
            guard let tenant = tenant(1) else { continue }
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
            rows.add("\(tenant)/sso/\(statement.text(at: 2))", .ssoProvider, parent: tenant, rowID: statement.int(at: 0), attributes)
        }
        statement = try db.prepare(
            "SELECT id, tenant_id, name, url, events, secret_fingerprint, timeout_seconds, max_retries, enabled FROM webhooks")
        while try statement.step() {
            guard let tenant = tenant(1) else { continue }
            var attributes: [Attribute] = []
            text(statement, 3, "url", &attributes)
            list(statement, 4, "events", &attributes)
            if let fingerprint = statement.optionalText(at: 5) { attributes.append(Attribute("secret", .secret(fingerprint: fingerprint))) }
            duration(statement, 6, "timeout", &attributes)
            integer(statement, 7, "maxRetries", &attributes)
            bool(statement, 8, "enabled", &attributes)
            rows.add("\(tenant)/webhook/\(statement.text(at: 2))", .webhook, parent: tenant, rowID: statement.int(at: 0), attributes)
        }
        statement = try db.prepare(
            """
            SELECT id, tenant_id, name, description, scopes, rate_limit, expires,
                   rotation, rotate_on_scope_change, key_prefix, key_sha256
            FROM api_keys
            """)
        while try statement.step() {
            guard let tenant = tenant(1) else { continue }
            var attributes: [Attribute] = []
            text(statement, 3, "description", &attributes)
            list(statement, 4, "scopes", &attributes)
            text(statement, 5, "rateLimit", &attributes)
            text(statement, 6, "expires", &attributes)
            integer(statement, 7, "rotate", &attributes)
            bool(statement, 8, "rotateOnScopeChange", &attributes)
            text(statement, 9, KeyMaterial.prefixAttribute, &attributes)
            text(statement, 10, KeyMaterial.hashAttribute, &attributes)
            rows.add("\(tenant)/apikey/\(statement.text(at: 2))", .apiKey, parent: tenant, rowID: statement.int(at: 0), attributes)
        }
        return rows.resources
    }

    private func idMap<Value>(_: Value.Type, _ table: String) throws(SQLiteError) -> RowIDMap<Value> {
        let statement = try db.prepare("SELECT coalesce(max(id), 0), count(*) FROM \(table)")
        _ = try statement.step()
        return RowIDMap(maxID: statement.int(at: 0), count: statement.int(at: 1))
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

/// Values keyed by row id: an array when the table's ids are dense (the usual case), else a dictionary.
struct RowIDMap<Value> {
    private var dense: [Value?] = []
    private var sparse: [Int64: Value] = [:]
    private let limit: Int64

    /// `maxID` and `count` describe the table (`SELECT max(id), count(*)`).
    init(maxID: Int64, count: Int64) {
        limit = maxID >= 0 && maxID <= 2 * count + 1024 ? maxID : -1
        if limit >= 0 { dense = [Value?](repeating: nil, count: Int(limit) + 1) } else { sparse.reserveCapacity(Int(count)) }
    }

    subscript(id: Int64) -> Value? {
        get { id >= 0 && id <= limit ? dense[Int(id)] : sparse[id] }
        set {
            if id >= 0 && id <= limit { dense[Int(id)] = newValue } else { sparse[id] = newValue }
        }
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
