import Audit
import Spec

/// Reads every platform table into resources keyed by address: one ordered scan per table.
///
/// Column conventions mirror `DesiredState` (see `AttributeEncoding`), so equal rows and
/// configurations give equal attributes.
struct StateReader {
    let db: any SQLDatabase
    /// Row digests are keyed with it (see ``ResourceDigest``); plain SHA-256 without a key, which
    /// matches no stored digest, so only commands that do not compare digests read without one.
    var key: StateKey? = nil
    /// A database older than schema 5, read as migrated: its stored digests are plain and are keyed
    /// on reading, as the migration will key them.
    var storedDigestsArePlain = false
    /// Reads only the platform-wide rows and those of the tenant with this slug (nil: every row).
    /// The checks that span tenants (side-table rows of no tenant) are then left to a full read.
    var tenant: String? = nil

    /// `base` with `condition` on the tenant (`?1` is its slug), when the read is scoped.
    private func scoped(_ base: String, _ condition: String, then suffix: String = "") -> (String, [SQLValue]) {
        guard let tenant else { return (base + suffix, []) }
        return (base + " WHERE " + condition + suffix, [.text(tenant)])
    }

    private static let tenantID = "(SELECT tt.id FROM tenants tt WHERE tt.slug = ?1)"
    private static let teamIDs = "(SELECT g.id FROM teams g JOIN tenants tt ON tt.id = g.tenant_id WHERE tt.slug = ?1)"
    private static let ofTenant = "tenant_id IN \(tenantID)"

    /// `base` with the condition that a recorded address (`column`) is platform-wide or the scoped
    /// tenant's (the tenant itself, or below it: from `tenant/T/` up to `tenant/T0`).
    private func scopedAddress(_ base: String, then suffix: String, column: String = "address") -> (String, [SQLValue]) {
        guard let tenant else { return (base + suffix, []) }
        let condition = "(\(column) NOT LIKE 'tenant/%' OR \(column) = ?1 OR (\(column) >= ?2 AND \(column) < ?3))"
        let address = "tenant/" + AddressSegment.encode(tenant)
        return (base + (base.contains(" WHERE ") ? " AND " : " WHERE ") + condition + suffix, [.text(address), .text(address + "/"), .text(address + "0")])
    }

    /// What orgctl last applied to one kind's rows: row ids ascending, with their digests and
    /// the addresses they were written under, as ``addressHash(_:)`` (a word each instead of a
    /// string; a recorded address is read again only when it differs).
    private struct AppliedIndex {
        var rowIDs: [Int64] = []
        var digests: [Digest] = []
        var addresses: [Int] = []
        /// Where the last lookup matched: table scans visit rows in id order, so the next
        /// lookup is usually the next entry.
        var cursor = 0

        mutating func record(of rowID: Int64) -> (digest: Digest, address: Int)? {
            if cursor < rowIDs.count, rowIDs[cursor] == rowID {
                defer { cursor += 1 }
                return (digests[cursor], addresses[cursor])
            }
            var low = 0, high = rowIDs.count
            while low < high {
                let middle = (low + high) / 2
                if rowIDs[middle] < rowID { low = middle + 1 } else { high = middle }
            }
            guard low < rowIDs.count, rowIDs[low] == rowID else { return nil }
            cursor = low + 1
            return (digests[low], addresses[low])
        }
    }

    /// One pass over `orgctl_resources` (in primary-key order), instead of a join per table row.
    private func readApplied() throws -> [ResourceKind: AppliedIndex] {
        let keying = storedDigestsArePlain ? key.map(DigestKeying.init) : nil
        var indexes: [ResourceKind: AppliedIndex] = [:]
        for kind in ResourceKind.allCases { indexes[kind] = AppliedIndex() }
        var current: (name: String, kind: ResourceKind?) = ("", nil)
        let applied = scopedAddress("SELECT kind, row_id, digest, address FROM orgctl_resources", then: " ORDER BY kind, row_id")
        try db.forEach(applied.0, applied.1) { row in
            if row.text(0) != current.name {
                current = (row.text(0), ResourceKind(rawValue: row.text(0)))
            }
            // A digest that is not 64 hex digits (edited by hand) matches no row: that row shows as drifted.
            guard let kind = current.kind, let digest = row.withText(2, { Digest(hex: $0) }) else { return }
            let rowID = row.int(1)
            indexes[kind]!.rowIDs.append(rowID)
            indexes[kind]!.digests.append(keying?.keyed(digest, rowID: rowID) ?? digest)
            indexes[kind]!.addresses.append(row.withText(3) { addressHash($0) })
        }
        return indexes
    }

    /// Collects resources, digesting each as it is read.
    private struct Collector {
        var resources: [StoredResource] = []
        var applied: [ResourceKind: AppliedIndex]
        var digester: ResourceDigester
        /// Each team's address, slug segment and tenant id, by row id (filled by `readTeams`).
        var teams = RowIDMap<TeamRow>(maxID: 0, count: 0)
        /// Rows whose address differs from the one orgctl recorded: a natural key (or a parent's)
        /// changed outside orgctl. The row at the recorded address is gone, and the row at its new
        /// address was not written by orgctl.
        var moved: [(kind: ResourceKind, rowID: Int64)] = []

        mutating func add(_ address: String, _ kind: ResourceKind, parent: String?, rowID: Int64, _ attributes: [Attribute]) {
            let resource = Resource(address: address, kind: kind, parent: parent, attributes: attributes)
            var applied: Digest?
            if let record = self.applied[kind]?.record(of: rowID) {
                var text = address
                if text.withUTF8({ addressHash(UnsafeRawBufferPointer($0)) }) == record.address { applied = record.digest } else { moved.append((kind, rowID)) }
            }
            resources.append(StoredResource(resource: resource, rowID: rowID, digest: digester.digest(resource, rowID: rowID), appliedDigest: applied))
        }
    }

    /// Every row of every platform table, as resources, and the addresses orgctl recorded for rows
    /// that now have another one. Parents are looked up by id in Swift (each parent address is
    /// built once and shared by its children's `parent`), so each table is one plain scan.
    ///
    /// Every row maps to exactly one resource, or the read is refused (``RowRefusal``): a natural
    /// key becomes its address segment through ``AddressSegment`` (injective, never a `/`), and a
    /// row whose parent is missing or belongs to another tenant, a key that is not text, a team
    /// parent cycle, or a side-table row (`quotas`, `role_permissions`, `security_policies`,
    /// `sso_settings`) of no row is refused with its table and row id. Such a row would otherwise
    /// be invisible to plan and drift, and could attach to a row orgctl creates later (row ids
    /// are reused).
    func read() throws -> (resources: [StoredResource], moved: [String]) {
        var rows = Collector(applied: try readApplied(), digester: ResourceDigester(key: key))
        rows.resources.reserveCapacity(1024)
        let quotas = try readQuotas()
        let permissions = try readRolePermissions()
        var planIDs: Set<Int64> = []

        // Plans.
        try db.forEach("SELECT id, slug, rate_limit, features, description FROM plans") { statement in
            let id = statement.int(0)
            planIDs.insert(id)
            var attributes = quotas["plan", id]
            text(statement, 2, "rateLimit", &attributes)
            list(statement, 3, "features", &attributes)
            text(statement, 4, "description", &attributes)
            rows.add("plan/\(try key(statement, 1, "plans", "slug"))", .plan, parent: nil, rowID: id, attributes)
        }
        try db.forEach("SELECT id, name, category, description FROM permissions") { statement in
            var attributes: [Attribute] = []
            text(statement, 2, "category", &attributes)
            text(statement, 3, "description", &attributes)
            rows.add("permission/\(try key(statement, 1, "permissions", "name"))", .permission, parent: nil, rowID: statement.int(0), attributes)
        }
        try db.forEach("SELECT id, name FROM events") { statement in
            rows.add("event/\(try key(statement, 1, "events", "name"))", .event, parent: nil, rowID: statement.int(0), [])
        }
        var tenants = try idMap(String.self, "tenants")
        let tenantRows = scoped("""
            SELECT t.id, t.slug, t.name, t.plan, t.status, t.trial_ends, t.domains, t.primary_color, t.logo_url, t.custom_domain,
                   s.mfa, s.session_timeout_seconds, s.ip_allowlist, x.enforce, x.jit_enabled, x.jit_default_role
            FROM tenants t
            LEFT JOIN security_policies s ON s.tenant_id = t.id
            LEFT JOIN sso_settings x ON x.tenant_id = t.id
            """, "t.slug = ?1")
        try db.forEach(tenantRows.0, tenantRows.1) { statement in
            let id = statement.int(0)
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
            let address = "tenant/\(try key(statement, 1, "tenants", "slug"))"
            tenants[id] = address
            rows.add(address, .tenant, parent: nil, rowID: id, attributes)
        }
        /// The tenant address of the row's `tenant_id` column (column 1 unless told); refuses a row of no tenant.
        func tenant(_ statement: any SQLRow, of table: String, _ column: Int = 1) throws(StateError) -> String {
            guard !statement.isNull(column), let address = tenants[statement.int(column)] else {
                throw refusal("row \(statement.int(0)) of \(table) belongs to tenant id \(describe(statement, column)), which does not exist")
            }
            return address
        }

        var roleIDs: Set<Int64> = []
        let roles = scoped("SELECT id, slug, description, max_duration_seconds, tenant_id FROM roles", "tenant_id IS NULL OR \(Self.ofTenant)")
        try db.forEach(roles.0, roles.1) { statement in
            let id = statement.int(0)
            roleIDs.insert(id)
            var attributes: [Attribute] = [Attribute("permissions", .list(permissions[id] ?? []))]
            text(statement, 2, "description", &attributes)
            duration(statement, 3, "maxDuration", &attributes)
            let slug = try key(statement, 1, "roles", "slug")
            if statement.isNull(4) {
                rows.add("role/\(slug)", .role, parent: nil, rowID: id, attributes)
            } else {
                let tenant = try tenant(statement, of: "roles", 4)
                rows.add("\(tenant)/role/\(slug)", .tenantRole, parent: tenant, rowID: id, attributes)
            }
        }
        // A member's e-mail segment and tenant id, for team members.
        var members = try idMap((email: String, tenantID: Int64).self, "members")
        let memberRows = scoped("SELECT id, tenant_id, email, role, expires FROM members", Self.ofTenant)
        try db.forEach(memberRows.0, memberRows.1) { statement in
            let tenant = try tenant(statement, of: "members")
            let id = statement.int(0)
            let email = try key(statement, 2, "members", "email")
            members[id] = (email, statement.int(1))
            var attributes: [Attribute] = []
            text(statement, 3, "role", &attributes)
            text(statement, 4, "expires", &attributes)
            rows.add("\(tenant)/member/\(email)", .member, parent: tenant, rowID: id, attributes)
        }
        try readTeams(into: &rows, tenants: tenants, quotas: quotas)
        let teams = rows.teams
        let teamMembers = scoped("SELECT id, team_id, member_id, role FROM team_members", "team_id IN \(Self.teamIDs)")
        try db.forEach(teamMembers.0, teamMembers.1) { statement in
            let id = statement.int(0)
            guard !statement.isNull(1), let team = teams[statement.int(1)] else {
                throw refusal("row \(id) of team_members belongs to team id \(describe(statement, 1)), which does not exist")
            }
            guard !statement.isNull(2), let member = members[statement.int(2)] else {
                throw refusal("row \(id) of team_members names member id \(describe(statement, 2)), which does not exist")
            }
            guard member.tenantID == team.tenantID else {
                throw refusal("row \(id) of team_members puts member id \(statement.int(2)) of tenant id \(member.tenantID) in team id \(statement.int(1)) of tenant id \(team.tenantID)")
            }
            var attributes: [Attribute] = []
            text(statement, 3, "role", &attributes)
            rows.add("\(team.address)/member/\(member.email)", .teamMember, parent: team.address, rowID: id, attributes)
        }
        let providers = scoped("""
            SELECT id, tenant_id, name, type, entity_id, sso_url, certificate_sha256, certificate_pem, issuer,
                   client_id, client_secret_fingerprint
            FROM sso_providers
            """, Self.ofTenant)
        try db.forEach(providers.0, providers.1) { statement in
            let tenant = try tenant(statement, of: "sso_providers")
            var attributes: [Attribute] = []
            text(statement, 3, "type", &attributes)
            text(statement, 4, "entityId", &attributes)
            text(statement, 5, "ssoUrl", &attributes)
            if let digest = statement.optionalText(6) {
                attributes.append(Attribute("certificate", .document(sha256: digest, text: statement.optionalText(7) ?? "")))
            }
            text(statement, 8, "issuer", &attributes)
            text(statement, 9, "clientId", &attributes)
            if let fingerprint = statement.optionalText(10) { attributes.append(Attribute("clientSecret", .secret(fingerprint: fingerprint))) }
            rows.add("\(tenant)/sso/\(try key(statement, 2, "sso_providers", "name"))", .ssoProvider, parent: tenant, rowID: statement.int(0), attributes)
        }
        let webhooks = scoped("SELECT id, tenant_id, name, url, events, secret_fingerprint, timeout_seconds, max_retries, enabled FROM webhooks", Self.ofTenant)
        try db.forEach(webhooks.0, webhooks.1) { statement in
            let tenant = try tenant(statement, of: "webhooks")
            var attributes: [Attribute] = []
            text(statement, 3, "url", &attributes)
            list(statement, 4, "events", &attributes)
            if let fingerprint = statement.optionalText(5) { attributes.append(Attribute("secret", .secret(fingerprint: fingerprint))) }
            duration(statement, 6, "timeout", &attributes)
            integer(statement, 7, "maxRetries", &attributes)
            bool(statement, 8, "enabled", &attributes)
            rows.add("\(tenant)/webhook/\(try key(statement, 2, "webhooks", "name"))", .webhook, parent: tenant, rowID: statement.int(0), attributes)
        }
        let keys = scoped("""
            SELECT id, tenant_id, name, description, scopes, rate_limit, expires,
                   rotation, rotate_on_scope_change, key_prefix, key_sha256
            FROM api_keys
            """, Self.ofTenant)
        try db.forEach(keys.0, keys.1) { statement in
            let tenant = try tenant(statement, of: "api_keys")
            var attributes: [Attribute] = []
            text(statement, 3, "description", &attributes)
            list(statement, 4, "scopes", &attributes)
            text(statement, 5, "rateLimit", &attributes)
            text(statement, 6, "expires", &attributes)
            integer(statement, 7, "rotate", &attributes)
            bool(statement, 8, "rotateOnScopeChange", &attributes)
            text(statement, 9, KeyMaterial.prefixAttribute, &attributes)
            text(statement, 10, KeyMaterial.hashAttribute, &attributes)
            rows.add("\(tenant)/apikey/\(try key(statement, 2, "api_keys", "name"))", .apiKey, parent: tenant, rowID: statement.int(0), attributes)
        }

        // Side-table rows of no row would be invisible, and would attach to a row created later with their id.
        for (scope, ids) in quotas.byScope.sorted(by: { $0.key < $1.key }) {
            for id in ids.keys.sorted() {
                let exists = switch scope {
                case "plan": planIDs.contains(id)
                case "tenant": tenants[id] != nil
                case "team": teams[id] != nil
                default: false
                }
                guard exists else {
                    let name = ids[id]?.first?.name.dropFirst("quotas.".count) ?? ""
                    throw refusal("the quotas row (scope '\(AddressSegment.encode(scope))', scope_id \(id), name '\(AddressSegment.encode(String(name)))') belongs to no \(["plan", "tenant", "team"].contains(scope) ? "\(scope) with id \(id)" : "scope orgctl knows (plan, tenant or team)")")
                }
            }
        }
        if let orphan = permissions.keys.filter({ !roleIDs.contains($0) }).min() {
            throw refusal("rows of role_permissions belong to role id \(orphan), which does not exist")
        }
        for table in ["security_policies", "sso_settings"] where self.tenant == nil {
            if let orphan = try db.first("SELECT tenant_id FROM \(table) WHERE tenant_id NOT IN (SELECT id FROM tenants) ORDER BY tenant_id LIMIT 1", [], { $0.int(0) }) {
                throw refusal("the \(table) row of tenant id \(orphan) belongs to no tenant: tenant id \(orphan) does not exist")
            }
        }
        // The addresses orgctl recorded for moved rows (few: each is a change made outside orgctl).
        var moved: [String] = []
        for (kind, rowID) in rows.moved {
            if let address = try db.first("SELECT address FROM orgctl_resources WHERE kind = ?1 AND row_id = ?2", [.text(kind.rawValue), .integer(rowID)], { $0.text(0) }) {
                moved.append(address)
            }
        }
        return (rows.resources, moved)
    }

    /// Teams, in table order. Each team's `parent` (its parent team's address segment) must be a
    /// team of the same tenant, and parents must not form a cycle.
    private func readTeams(into rows: inout Collector, tenants: RowIDMap<String>, quotas: QuotaIndex) throws {
        var teams = try idMap(TeamRow.self, "teams")
        var scanned: [(id: Int64, tenant: String, attributes: [Attribute])] = []
        var parents: [(id: Int64, parentID: Int64)] = []
        let teamRows = scoped("SELECT id, tenant_id, slug, name, description, parent_id FROM teams", Self.ofTenant)
        try db.forEach(teamRows.0, teamRows.1) { statement in
            guard !statement.isNull(1), let tenant = tenants[statement.int(1)] else {
                throw refusal("row \(statement.int(0)) of teams belongs to tenant id \(describe(statement, 1)), which does not exist")
            }
            let id = statement.int(0)
            var attributes = quotas["team", id]
            text(statement, 3, "name", &attributes)
            text(statement, 4, "description", &attributes)
            let slug = try key(statement, 2, "teams", "slug")
            teams[id] = TeamRow(address: "\(tenant)/team/\(slug)", slug: slug, tenantID: statement.int(1))
            if !statement.isNull(5) { parents.append((id, statement.int(5))) }
            scanned.append((id, tenant, attributes))
        }
        var parentOf: [Int64: Int64] = [:]
        for (id, parentID) in parents {
            guard let parent = teams[parentID] else {
                throw refusal("row \(id) of teams has parent_id \(parentID), which is no team")
            }
            guard parent.tenantID == teams[id]?.tenantID else {
                throw refusal("row \(id) of teams has parent_id \(parentID), a team of another tenant (tenant id \(parent.tenantID))")
            }
            parentOf[id] = parentID
        }
        // Parent chains end at a top-level team; a chain that comes back to a team is a cycle.
        var settled: Set<Int64> = []
        for (start, _) in parents where !settled.contains(start) {
            var path: [Int64] = []
            var seen: Set<Int64> = []
            var current: Int64? = start
            while let id = current, !settled.contains(id) {
                if seen.contains(id) {
                    let cycle = path.drop { $0 != id }.map(String.init).joined(separator: " -> ")
                    throw refusal("rows of teams form a parent cycle: \(cycle) -> \(id) (ids, each naming the next as parent_id)")
                }
                seen.insert(id)
                path.append(id)
                current = parentOf[id]
            }
            settled.formUnion(path)
        }
        for row in scanned {
            var attributes = row.attributes
            if let parentID = parentOf[row.id], let parent = teams[parentID] { attributes.append(Attribute("parent", .string(parent.slug))) }
            rows.add(teams[row.id]?.address ?? "", .team, parent: row.tenant, rowID: row.id, attributes)
        }
        rows.teams = teams
    }

    struct TeamRow {
        var address: String
        var slug: String
        var tenantID: Int64
    }

    // MARK: Refusals

    /// The address segment of the natural key in `column` (see ``AddressSegment``); a key that is
    /// not text (NULL, a number or a blob, possible only in a table whose layout is not orgctl's)
    /// could read as another row's key, and is refused.
    private func key(_ s: any SQLRow, _ column: Int, _ table: String, _ name: String) throws(StateError) -> String {
        guard s.isText(column) else {
            throw refusal("row \(s.int(0)) of \(table) has a \(name) that is not text (\(s.isNull(column) ? "NULL" : "a number or a blob"))")
        }
        return s.withText(column) { AddressSegment.encode($0) }
    }

    private func describe(_ s: any SQLRow, _ column: Int) -> String {
        s.isNull(column) ? "NULL" : String(s.int(column))
    }

    /// A row that orgctl cannot give an address of its own: every command refuses the database.
    func refusal(_ message: String) -> StateError {
        StateError(.corrupt, "'\(db.location)': \(message)",
                   help: "orgctl writes no such row and cannot show it in a plan: repair or delete it (with sqlite3 or psql; see 'What the platform may write' in docs/state-schema.md), then run the command again")
    }

    private func idMap<Value>(_: Value.Type, _ table: String) throws -> RowIDMap<Value> {
        let (maxID, count) = try db.first("SELECT coalesce(max(id), 0), count(*) FROM \(table)", []) { ($0.int(0), $0.int(1)) } ?? (0, 0)
        return RowIDMap(maxID: maxID, count: count)
    }

    /// Addresses orgctl recorded as applied whose rows no longer exist (deleted outside orgctl), sorted.
    /// A role whose `tenant_id` was set or cleared outside orgctl is another kind of row now: its
    /// record's row is gone too.
    func readMissingApplied() throws -> [String] {
        let tables: [(kind: String, table: String, gone: String)] = [
            ("plan", "plans", ""), ("permission", "permissions", ""), ("event", "events", ""),
            ("role", "roles", " OR x.tenant_id IS NOT NULL"), ("tenant-role", "roles", " OR x.tenant_id IS NULL"),
            ("tenant", "tenants", ""), ("member", "members", ""), ("team", "teams", ""), ("team-member", "team_members", ""),
            ("sso-provider", "sso_providers", ""), ("webhook", "webhooks", ""), ("api-key", "api_keys", ""),
        ]
        var missing: [String] = []
        for (kind, table, gone) in tables {
            let query = scopedAddress("SELECT o.address FROM orgctl_resources o LEFT JOIN \(table) x ON x.id = o.row_id WHERE o.kind = '\(kind)' AND (x.id IS NULL\(gone))",
                                      then: "", column: "o.address")
            try db.forEach(query.0, query.1) { statement in missing.append(statement.text(0)) }
        }
        return missing.sorted()
    }

    // MARK: Side tables

    struct QuotaIndex {
        var byScope: [String: [Int64: [Attribute]]] = [:]
        subscript(scope: String, id: Int64) -> [Attribute] { byScope[scope]?[id] ?? [] }
    }

    private func readQuotas() throws -> QuotaIndex {
        var index = QuotaIndex()
        let quotas = scoped("SELECT scope, scope_id, name, value FROM quotas",
                            "scope = 'plan' OR (scope = 'tenant' AND scope_id IN \(Self.tenantID)) OR (scope = 'team' AND scope_id IN \(Self.teamIDs))")
        try db.forEach(quotas.0, quotas.1) { statement in
            let name = statement.text(2)
            let value: Value
            if statement.isNull(3) {
                value = .string("unlimited")
            } else if let quota = QuotaName(rawValue: name) {
                value = AttributeEncoding.quota(.limit(statement.int(3)), quota)
            } else {
                value = .int(statement.int(3))
            }
            index.byScope[statement.text(0), default: [:]][statement.int(1), default: []]
                .append(Attribute("quotas.\(name)", value))
        }
        return index
    }

    private func readRolePermissions() throws -> [Int64: [String]] {
        var permissions: [Int64: [String]] = [:]
        let rows = scoped("SELECT role_id, permission FROM role_permissions",
                          "role_id IN (SELECT r.id FROM roles r WHERE r.tenant_id IS NULL OR r.\(Self.ofTenant))", then: " ORDER BY role_id, permission")
        try db.forEach(rows.0, rows.1) { statement in permissions[statement.int(0), default: []].append(statement.text(1)) }
        return permissions
    }

    // MARK: Column decoding

    private func text(_ s: any SQLRow, _ column: Int, _ name: String, _ attributes: inout [Attribute]) {
        if let value = s.optionalText(column) { attributes.append(Attribute(name, .string(value))) }
    }

    private func integer(_ s: any SQLRow, _ column: Int, _ name: String, _ attributes: inout [Attribute]) {
        if !s.isNull(column) { attributes.append(Attribute(name, .int(s.int(column)))) }
    }

    private func bool(_ s: any SQLRow, _ column: Int, _ name: String, _ attributes: inout [Attribute]) {
        if !s.isNull(column) { attributes.append(Attribute(name, .bool(s.int(column) != 0))) }
    }

    private func duration(_ s: any SQLRow, _ column: Int, _ name: String, _ attributes: inout [Attribute]) {
        if !s.isNull(column) { attributes.append(Attribute(name, AttributeEncoding.duration(s.int(column)))) }
    }

    /// Lists are stored as JSON arrays of strings; anything else (edited by hand) is kept as text
    /// so the plan shows it and replaces it.
    private func list(_ s: any SQLRow, _ column: Int, _ name: String, _ attributes: inout [Attribute]) {
        guard let raw = s.optionalText(column) else { return }
        attributes.append(Attribute(name, ListColumn.decode(raw)))
    }
}

/// A word that tells addresses apart within this process (SipHash with the process's random seed,
/// so no stored address can be chosen to meet another's).
private func addressHash(_ bytes: UnsafeRawBufferPointer) -> Int {
    var hasher = Hasher()
    hasher.combine(bytes: bytes)
    return hasher.finalize()
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
