import Audit
import Crypto
import Spec

/// What a backend gives the writes of one apply: its connection, inside the write transaction it
/// holds, and the two things only it knows.
struct TransactionContext {
    let db: any SQLDatabase
    let key: StateKey?
    /// The database's id (webhook event ids are derived from it).
    let databaseID: String
    /// True when the database may differ from what the store last read.
    let changedSinceRead: () throws -> Bool
    /// Re-reads the state inside the write lock (with the chain checked alongside where it can).
    let read: () throws -> StoredState
}

/// One apply's writes, inside the store's write transaction: the same SQL on every backend.
final class SQLStateTransaction: StateTransaction {
    private let context: TransactionContext
    private var db: any SQLDatabase { context.db }
    private var rowIDs: [String: Int64] = [:]
    /// The parent row id looked up last: consecutive creates mostly share their parent (the members
    /// of one tenant, the memberships of one team), found again without hashing into `rowIDs`.
    private var lastParent: (address: String, id: Int64)?
    /// Digests every row written, with one input buffer and one SHA-256 context.
    private var digester: ResourceDigester
    private var head: AuditHead?
    /// The right edge of the Merkle tree, read on the first append.
    private var tree: CompactRange?
    /// Caches and reusable contexts of the per-resource writes (SQLWriteScratch.swift).
    private let scratch = SQLWriteScratch()
    /// Subject tokens for the personal values of the entries appended (audit entry format 2).
    private(set) lazy var subjects = SubjectTable(db: db)

    init(_ context: TransactionContext) {
        self.context = context
        digester = ResourceDigester(key: context.key)
    }

    var isUnchangedSinceRead: Bool { get throws { try !context.changedSinceRead() } }

    func read() throws -> StoredState { try context.read() }

    var auditHead: AuditHead {
        get throws {
            if let head { return head }
            let current = try db.auditHead()
            head = current
            return current
        }
    }

    func verifyAuditChain() throws -> ChainBreak? {
        // Never `.unchecked`: nothing asks this check to stop.
        if case .broken(let broken) = try db.checkAuditChain() { return broken }
        return nil
    }

    func prepareSubjects(naming texts: [String]) throws {
        try subjects.prefetch(naming: texts)
    }

    func enqueueEvents(_ events: [OutboxEvent]) throws {
        try Outbox.enqueue(events, db: db, databaseID: context.databaseID)
    }

    func recordPolicies(_ text: String?) throws {
        if let text {
            try change("INSERT INTO orgctl_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       [.text("policies"), .text(text)], rows: 1, table: "orgctl_meta", "recording the policies")
        } else {
            try change("DELETE FROM orgctl_meta WHERE key = ?1", [.text("policies")], rows: 1, table: "orgctl_meta", "removing the recorded policies")
        }
    }

    func auditAddresses(after sequence: Int64) throws -> [String] {
        var entries: [AuditEntry] = []
        try db.forEach("SELECT entry FROM orgctl_audit WHERE seq > ?1 ORDER BY seq", [.integer(sequence)]) { row in
            if let entry = try? AuditEntry(canonicalBytes: row.blob(0)) { entries.append(entry) }
        }
        // Subject tokens read back as the addresses they stand for (after the stream: a backend may not nest queries).
        return Set(try entries.map { try subjects.resolve($0).address }).sorted()
    }

    func appendAudit(_ build: (Int64) -> AuditEntry) throws -> Int64 {
        let current = try auditHead
        let sequence = current.sequence + 1
        let bytes = try subjects.pseudonymize(build(sequence)).canonicalBytes()
        let previous = scratch.chainHash(of: current)
        let (leaf, hash) = scratch.auditHasher.leafAndChain(previous: previous, entry: bytes)
        try change("INSERT INTO orgctl_audit (seq, entry, prev_hash, hash) VALUES (?1, ?2, ?3, ?4)",
                   [.integer(sequence), .blob(bytes), .blob(previous), .blob(hash)], rows: 1, table: "orgctl_audit", "appending audit entry \(sequence)")
        // The Merkle tree grows in the same transaction: leaf `sequence - 1`, and every perfect
        // subtree it completes at a stored level.
        let storage = MerkleStorage(db: db)
        if tree == nil {
            try storage.refuseNodesBeyond(size: current.sequence)
            tree = try storage.compactRange(size: current.sequence)
        }
        // Mutated in place (`tree!`), so the right edge is not copied on every append.
        try tree!.append(leafHash: leaf, hasher: scratch.auditHasher) { level, index, node in try storage.completed(level: level, index: index, hash: node) }
        let appended = AuditHead(sequence: sequence, hash: Hex.encode(hash))
        head = appended
        scratch.remember(hash, of: appended)
        return sequence
    }

    // MARK: Row ids of parents

    /// The row id of the resource at `address` (a tenant, team or member), looked up once.
    private func rowID(of address: String) throws -> Int64 {
        if let known = rowIDs[address] { return known }
        let parts = SQLWriteScratch.segments(of: address)
        let query: (sql: String, values: [SQLValue])
        switch parts.count {
        case 2 where parts[0] == "tenant":
            query = ("SELECT id FROM tenants WHERE slug = ?1", [.text(parts[1])])
        case 4 where parts[2] == "team":
            query = ("SELECT g.id FROM teams g JOIN tenants t ON t.id = g.tenant_id WHERE t.slug = ?1 AND g.slug = ?2", [.text(parts[1]), .text(parts[3])])
        case 4 where parts[2] == "member":
            query = ("SELECT m.id FROM members m JOIN tenants t ON t.id = m.tenant_id WHERE t.slug = ?1 AND m.email = ?2", [.text(parts[1]), .text(parts[3])])
        default:
            throw StateError(.other, "internal error: '\(address)' has no row id", help: "report this as a bug")
        }
        guard let id = try db.first(query.sql, query.values, { $0.int(0) }) else {
            throw StateError(.other, "'\(address)' does not exist in the state database",
                             help: "declare it in the configuration (or stop referring to it) and plan again")
        }
        rowIDs[address] = id
        return id
    }

    /// `rowID(of: parent)`, remembering the last parent asked for.
    private func rowID(ofParent parent: String) throws -> Int64 {
        if let lastParent, lastParent.address == parent { return lastParent.id }
        let id = try rowID(of: parent)
        lastParent = (parent, id)
        return id
    }

    // MARK: Create, update, delete

    func create(_ resource: Resource, secrets: [String: [UInt8]], auditSequence: Int64) throws -> Int64 {
        let map = scratch.tableMap(of: resource.kind)
        var columns: [String] = []
        var values: [SQLValue] = []
        // Room for the id, the key, two parents, the status and every attribute: no regrowth.
        columns.reserveCapacity(resource.attributes.count + 5)
        values.reserveCapacity(resource.attributes.count + 5)
        let name = SQLWriteScratch.lastSegment(of: resource.address)
        if let keyColumn = map.keyColumn {
            columns.append(keyColumn)
            values.append(.text(name))
        }
        switch resource.kind {
        case .tenantRole, .member, .team, .ssoProvider, .webhook, .apiKey:
            columns.append("tenant_id")
            values.append(.integer(try rowID(ofParent: resource.parent ?? "")))
        case .teamMember:
            let team = resource.parent ?? ""
            let tenant = String(Resource.collection(of: String(Resource.collection(of: team))))
            columns += ["team_id", "member_id"]
            values += [.integer(try rowID(ofParent: team)), .integer(try rowID(of: "\(tenant)/member/\(name)"))]
        default:
            break
        }
        // (A create's attributes are rarely null: then they are taken as they are, not copied.)
        var stored = resource.attributes.contains { $0.value.isNull } ? resource.attributes.filter { !$0.value.isNull } : resource.attributes
        // Columns with defaults: record what the row really holds, so its digest matches a later read.
        if resource.kind == .tenant, resource["status"].isNull {
            columns.append("status")
            values.append(.text("active"))
            stored.append(Attribute("status", .string("active")))
        }
        var deferred: [Attribute] = []
        for attribute in resource.attributes {
            guard case .column(let column, let encoding)? = map.storage(for: attribute.name) else {
                deferred.append(attribute)
                continue
            }
            columns.append(column)
            values.append(try encode(attribute.value, encoding))
        }
        let id: Int64
        if let reserved = try db.reserveRowID(table: map.table) {
            id = reserved
            columns.insert("id", at: 0)
            values.insert(.integer(id), at: 0)
            try change(scratch.insertStatement(table: map.table, columns: columns, returningID: false), values,
                       rows: 1, table: map.table, "creating \(resource.address)")
        } else {
            var inserted: [Int64] = []
            try db.forEach(scratch.insertStatement(table: map.table, columns: columns, returningID: true), values) { inserted.append($0.int(0)) }
            guard inserted.count == 1, let first = inserted.first else {
                throw changedRows(inserted.count, expected: 1, table: map.table, "creating \(resource.address)")
            }
            id = first
        }
        switch resource.kind {
        case .tenant, .team, .member: rowIDs[resource.address] = id
        default: break
        }
        for attribute in deferred where !attribute.value.isNull {
            try write(attribute, before: .null, kind: resource.kind, map: map, rowID: id, address: resource.address, secrets: secrets)
        }
        try recordApplied(Resource(address: resource.address, kind: resource.kind, parent: resource.parent, attributes: stored),
                          rowID: id, auditSequence: auditSequence)
        return id
    }

    func update(_ stored: StoredResource, changes: [Attribute], secrets: [String: [UInt8]], auditSequence: Int64) throws {
        let map = TableMap.of(stored.resource.kind)
        var assignments: [String] = []
        var values: [SQLValue] = []
        for attribute in changes {
            if case .column(let column, let encoding)? = map.storage(for: attribute.name) {
                values.append(try encode(attribute.value, encoding))
                assignments.append("\(column) = ?\(values.count)")
            } else {
                try write(attribute, before: stored.resource[attribute.name], kind: stored.resource.kind, map: map, rowID: stored.rowID,
                          address: stored.address, secrets: secrets)
            }
        }
        if !assignments.isEmpty {
            values.append(.integer(stored.rowID))
            try change("UPDATE \(map.table) SET \(assignments.joined(separator: ", ")) WHERE id = ?\(values.count)", values,
                       rows: 1, table: map.table, "updating \(stored.address)")
        }
        var merged = stored.resource.attributes.filter { attribute in !changes.contains { $0.name == attribute.name } }
        merged += changes.filter { !$0.value.isNull }
        try recordApplied(Resource(address: stored.address, kind: stored.resource.kind, parent: stored.resource.parent, attributes: merged),
                          rowID: stored.rowID, auditSequence: auditSequence)
    }

    func delete(_ stored: StoredResource) throws {
        let map = TableMap.of(stored.resource.kind)
        let id = SQLValue.integer(stored.rowID)
        let what = { "deleting \(stored.address)" }  // built only when a write fails (hot path)
        if let scope = map.quotaScope {
            // Every quota row reads as an attribute (NULL as "unlimited"), so the stored resource counts them.
            let quotas = stored.resource.attributes.count { $0.name.hasPrefix("quotas.") }
            try change("DELETE FROM quotas WHERE scope = ?1 AND scope_id = ?2", [.text(scope), id], rows: quotas, table: "quotas", what())
        }
        switch stored.resource.kind {
        case .role, .tenantRole:
            try change("DELETE FROM role_permissions WHERE role_id = ?1", [id], rows: Self.count(stored.resource["permissions"]),
                       table: "role_permissions", what())
        case .tenant:
            // At most one row each (the primary key); a row whose columns are all NULL reads as no attribute.
            try db.write("DELETE FROM security_policies WHERE tenant_id = ?1", [id])
            try db.write("DELETE FROM sso_settings WHERE tenant_id = ?1", [id])
        default:
            break
        }
        try change("DELETE FROM \(map.table) WHERE id = ?1", [id], rows: 1, table: map.table, what())
        try db.write("DELETE FROM orgctl_resources WHERE kind = ?1 AND row_id = ?2", [.text(stored.resource.kind.rawValue), id])
        rowIDs[stored.address] = nil
        lastParent = nil
    }

    func rename(_ stored: StoredResource, from oldAddress: String, to newAddress: String) throws {
        let map = TableMap.of(stored.resource.kind)
        guard let keyColumn = map.keyColumn, [.tenant, .team, .role, .tenantRole].contains(stored.resource.kind) else {
            throw StateError(.other, "internal error: a \(stored.resource.kind.rawValue) cannot be renamed", help: "report this as a bug")
        }
        let slug = String(newAddress.split(separator: "/").last ?? "")
        try change("UPDATE \(map.table) SET \(keyColumn) = ?1 WHERE id = ?2", [.text(slug), .integer(stored.rowID)], rows: 1, table: map.table,
                   "renaming \(oldAddress) to \(newAddress)")
        // Secrets are sealed to their address: re-seal the tenant's under the new one (same values).
        if stored.resource.kind == .tenant {
            try reseal(tenantID: stored.rowID, from: oldAddress, to: newAddress)
        }
        // Addresses below `a` sort from `a/` up to (not including) `a0` ('0' follows '/'): two range
        // updates over the unique address index, linear in what moves. Records already under the new
        // address can only be stale (their rows are gone, or the rename would be ambiguous): drop them.
        // (Text compares byte by byte on every backend: PostgreSQL's columns are COLLATE "C".)
        let (newLow, newHigh) = (SQLValue.text(newAddress + "/"), SQLValue.text(newAddress + "0"))
        try db.write("DELETE FROM orgctl_resources WHERE address = ?1", [.text(newAddress)])
        try db.write("DELETE FROM orgctl_resources WHERE address >= ?1 AND address < ?2", [newLow, newHigh])
        try db.write("UPDATE orgctl_resources SET address = ?1 WHERE address = ?2", [.text(newAddress), .text(oldAddress)])
        // substr counts characters, and the old address is a prefix of every address it moves.
        try db.write("UPDATE orgctl_resources SET address = ?1 || substr(address, CAST(?2 AS INTEGER)) WHERE address >= ?3 AND address < ?4",
                   [.text(newAddress), .integer(Int64(oldAddress.count + 1)), .text(oldAddress + "/"), .text(oldAddress + "0")])
        rowIDs = [:]
        lastParent = nil
    }

    /// Re-encrypts the tenant's webhook and OIDC client secrets for its new address.
    private func reseal(tenantID: Int64, from oldAddress: String, to newAddress: String) throws {
        let sealed: [(table: String, prefix: String, segment: String, attribute: String)] = [
            ("webhooks", "secret", "webhook", "secret"), ("sso_providers", "client_secret", "sso", "clientSecret"),
        ]
        for (table, prefix, segment, attribute) in sealed {
            var rows: [(id: Int64, name: String, ciphertext: [UInt8])] = []
            try db.forEach("SELECT id, name, \(prefix)_ciphertext FROM \(table) WHERE tenant_id = ?1 AND \(prefix)_ciphertext IS NOT NULL", [.integer(tenantID)]) { row in
                rows.append((row.int(0), row.withText(1) { AddressSegment.encode($0) }, row.blob(2)))
            }
            guard !rows.isEmpty else { continue }
            guard let key = context.key else {
                throw StateError(.missingKey, "renaming \(oldAddress) to \(newAddress) re-encrypts its secrets, which are bound to their addresses, and no state key was given",
                                 help: "set ORGCTL_STATE_KEY (the key the database's secrets were written with) or pass --state-key-file")
            }
            for row in rows {
                // A value sealed with another state key cannot be opened; it stays as it is (unreadable
                // with this key before and after), and the plan already shows it as changed if declared.
                guard let value = try? key.open(row.ciphertext, address: "\(oldAddress)/\(segment)/\(row.name)", attribute: attribute) else { continue }
                let resealed = try key.seal(value, address: "\(newAddress)/\(segment)/\(row.name)", attribute: attribute)
                try change("UPDATE \(table) SET \(prefix)_ciphertext = ?1, \(prefix)_key_id = ?2 WHERE id = ?3", [.blob(resealed), .text(key.keyID), .integer(row.id)],
                           rows: 1, table: table, "re-encrypting the secrets of \(newAddress)")
            }
        }
    }

    func refreshDigest(_ stored: StoredResource) throws {
        try change("UPDATE orgctl_resources SET digest = ?1, address = ?2, applied = ?3 WHERE kind = ?4 AND row_id = ?5",
                   [.text(digester.digest(stored.resource, rowID: stored.rowID).description), .text(stored.address), .blob(AppliedValues.encode(stored.resource.attributes)),
                    .text(stored.resource.kind.rawValue), .integer(stored.rowID)], rows: 1, table: "orgctl_resources", "recording \(stored.address)")
    }

    func adopt(_ stored: StoredResource, auditSequence: Int64) throws {
        try recordApplied(stored.resource, rowID: stored.rowID, auditSequence: auditSequence)
    }

    private static let insertRecord = "INSERT INTO orgctl_resources (address, kind, row_id, digest, audit_seq, applied) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    private static let replaceRecord = "INSERT OR REPLACE INTO orgctl_resources (address, kind, row_id, digest, audit_seq, applied) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"

    private func recordApplied(_ resource: Resource, rowID: Int64, auditSequence: Int64) throws {
        // Replaces the row's record, and drops a stale one recorded under the same address (its row
        // was deleted outside orgctl): one statement where the engine has INSERT OR REPLACE.
        if !db.hasInsertOrReplace {
            try db.write("DELETE FROM orgctl_resources WHERE address = ?1 OR (kind = ?2 AND row_id = ?3)",
                         [.text(resource.address), .text(resource.kind.rawValue), .integer(rowID)])
        }
        try change(db.hasInsertOrReplace ? Self.replaceRecord : Self.insertRecord,
                   [.text(resource.address), .text(resource.kind.rawValue), .integer(rowID), .text(digester.digest(resource, rowID: rowID).description),
                    .integer(auditSequence), .blob(AppliedValues.encode(resource.attributes))], rows: 1, table: "orgctl_resources", "recording \(resource.address)")
    }

    /// Runs one write of the apply and checks how many rows it changed: any other count than
    /// `rows` means something other than orgctl acted on the row (a trigger, a rule, a row that is
    /// not where the plan saw it), and the whole apply rolls back.
    private func change(_ sql: String, _ values: [SQLValue], rows: Int, table: String, _ what: @escaping @autoclosure () -> String) throws {
        try db.runChecked(sql, values, rows: rows) { [self] changed in changedRows(changed, expected: rows, table: table, what()) }
    }

    private func changedRows(_ changed: Int, expected rows: Int, table: String, _ what: String) -> StateError {
        StateError(.corrupt, "\(what) changed \(changed) row\(changed == 1 ? "" : "s") of \(table) instead of \(rows): something other than orgctl acts on the state database's tables",
                         help: "look for triggers, views or rules on orgctl's tables (docs/state-schema.md, 'What the platform may write'), remove them, and plan again")
    }

    /// The number of items of a list value (0 for anything else).
    private static func count(_ value: Value) -> Int {
        if case .list(let items) = value { return items.count }
        return 0
    }

    /// Writes one attribute that does not live in a column of the kind's own table.
    private func write(_ attribute: Attribute, before: Value, kind: ResourceKind, map: TableMap, rowID: Int64, address: String,
                       secrets: [String: [UInt8]]) throws {
        let id = SQLValue.integer(rowID)
        let what = { "writing \(attribute.name) of \(address)" }  // built only when a write fails (hot path)
        switch map.storage(for: attribute.name) {
        case .side(let table, let column, let encoding)?:
            try change("INSERT INTO \(table) (tenant_id, \(column)) VALUES (?1, ?2) ON CONFLICT (tenant_id) DO UPDATE SET \(column) = excluded.\(column)",
                       [id, try encode(attribute.value, encoding)], rows: 1, table: table, what())
        case .quota(let name)?:
            let scope = SQLValue.text(map.quotaScope ?? "")
            switch attribute.value {
            case .null:
                try change("DELETE FROM quotas WHERE scope = ?1 AND scope_id = ?2 AND name = ?3", [scope, id, .text(name)],
                           rows: before.isNull ? 0 : 1, table: "quotas", what())
            default:
                let value: SQLValue
                switch attribute.value {
                case .int(let n): value = .integer(n)
                case .string("unlimited"): value = .null
                case .string(let text): value = ByteSize(parsing: text).map { .integer($0.bytes) } ?? .null
                default: value = .null
                }
                try change("INSERT INTO quotas (scope, scope_id, name, value) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (scope, scope_id, name) DO UPDATE SET value = excluded.value", [scope, id, .text(name), value],
                           rows: 1, table: "quotas", what())
            }
        case .permissions?:
            try change("DELETE FROM role_permissions WHERE role_id = ?1", [id], rows: Self.count(before), table: "role_permissions", what())
            if case .list(let permissions) = attribute.value {
                for permission in permissions {
                    try change("INSERT INTO role_permissions (role_id, permission) VALUES (?1, ?2)", [id, .text(permission)],
                               rows: 1, table: "role_permissions", what())
                }
            }
        case .parentTeam?:
            var parent = SQLValue.null
            if case .string(let slug) = attribute.value {
                let tenant = String(Resource.collection(of: String(Resource.collection(of: address))))
                parent = .integer(try self.rowID(of: "\(tenant)/team/\(slug)"))
            }
            try change("UPDATE teams SET parent_id = ?1 WHERE id = ?2", [parent, id], rows: 1, table: "teams", what())
        case .secret(let prefix)?:
            var ciphertext = SQLValue.null, keyID = SQLValue.null, fingerprint = SQLValue.null
            if case .secret(let print) = attribute.value {
                guard let key = context.key else {
                    throw StateError(.missingKey, "a secret must be stored but no state key was given",
                                     help: "set ORGCTL_STATE_KEY (32 bytes, base64) or pass --state-key-file")
                }
                guard let plaintext = secrets[attribute.name] else {
                    throw StateError(.secret, "the value of secret '\(attribute.name)' of \(address) was not resolved",
                                     help: "report this as a bug")
                }
                ciphertext = .blob(try key.seal(plaintext, address: address, attribute: attribute.name))
                keyID = .text(key.keyID)
                fingerprint = .text(print)
            }
            try change("UPDATE \(map.table) SET \(prefix)_ciphertext = ?1, \(prefix)_key_id = ?2, \(prefix)_fingerprint = ?3 WHERE id = ?4",
                       [ciphertext, keyID, fingerprint, id], rows: 1, table: map.table, what())
        case .certificate?:
            var pem = SQLValue.null, digest = SQLValue.null
            if case .document(let sha256, let text) = attribute.value {
                pem = .text(text)
                digest = .text(sha256)
            }
            try change("UPDATE \(map.table) SET certificate_pem = ?1, certificate_sha256 = ?2 WHERE id = ?3", [pem, digest, id],
                       rows: 1, table: map.table, what())
        case .column?, nil:
            throw StateError(.other, "internal error: attribute '\(attribute.name)' of \(kind.rawValue) has no column", help: "report this as a bug")
        }
    }

    private func encode(_ value: Value, _ encoding: Storage.Encoding) throws -> SQLValue {
        switch (value, encoding) {
        case (.null, _): return .null
        case (.string(let text), .duration):
            return Duration(parsing: text).map { .integer($0.seconds) } ?? .null
        case (.string(let text), _): return .text(text)
        case (.int(let n), _): return .integer(n)
        case (.bool(let b), _): return .bool(b)
        case (.list(let items), _): return .text(ListColumn.encode(items))
        case (.secret, _), (.document, _):
            throw StateError(.other, "internal error: a secret or document value has no plain column", help: "report this as a bug")
        }
    }
}

