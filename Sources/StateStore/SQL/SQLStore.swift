import Audit
import Crypto
import Spec

/// What both backends share above their connection: reading the state, the audit log and its
/// tree, `orgctl_meta` and the state key's check value, all through ``SQLDatabase``. A backend
/// gives its connection, its snapshot and write transactions, and how its errors read; the
/// public ``StateStore`` methods of each backend are one-line calls into this.
protocol SQLStore: StateStore {
    var db: any SQLDatabase { get }
    var key: StateKey? { get }
    /// The database as messages name it (a path, or a URI without its password).
    var location: String { get }
    /// True when the stored digests predate schema 5 and are keyed on reading (SQLite read as migrated).
    var storedDigestsArePlain: Bool { get }
    /// Runs `body` in one consistent read snapshot; errors come back as `StateError`s.
    func inSnapshot<T>(_ what: String, _ body: () throws -> T) throws(StateError) -> T
    /// Runs `body` in a short write transaction of its own (not an apply's), under the apply lock.
    func inWriteTransaction<T>(_ what: String, _ body: () throws -> T) throws(StateError) -> T
    /// Runs `body` in a short write transaction that does not take the apply lock (the webhook
    /// outbox: delivering and applying never wait for each other).
    func inOutboxTransaction<T>(_ what: String, _ body: () throws -> T) throws(StateError) -> T
    /// Refuses schema objects orgctl did not create on its tables, before a write.
    func checkSchemaObjectsForWrite() throws
}

extension SQLStore {
    // MARK: The state

    /// The state, in the caller's transaction; with `tenant`, only the platform-wide resources and
    /// that tenant's (a tenant of that slug, or nothing of it when there is none).
    func readUnlocked(tenant: String? = nil) throws -> StoredState {
        try refuseReplacedKey()
        let reader = StateReader(db: db, key: key, storedDigestsArePlain: storedDigestsArePlain, tenant: tenant)
        let (resources, moved) = try reader.read()
        let missing = Set(try reader.readMissingApplied() + moved).sorted()
        var state = StoredState(resources: resources, auditHead: try db.auditHead(), databaseID: databaseID, missingApplied: missing)
        state.recordedPolicies = try metaValue(Self.policiesKey)
        if let (first, second) = state.duplicate {
            let (a, b) = (resources[first], resources[second])
            let tables = Set([TableMap.of(a.resource.kind).table, TableMap.of(b.resource.kind).table]).sorted().joined(separator: " and ")
            throw reader.refusal("rows \(a.rowID) and \(b.rowID) of \(tables) have the same address \(a.address)")
        }
        return state
    }

    /// The state, and what orgctl last applied to every row that drifted or was deleted outside
    /// orgctl, in the caller's transaction.
    func readWithAppliedUnlocked() throws -> (state: StoredState, applied: [String: AppliedResource]) {
        let state = try readUnlocked()
        var addresses = state.missingApplied
        for resource in state.resources where resource.isDrifted { addresses.append(resource.address) }
        var applied: [String: AppliedResource] = [:]
        for address in addresses {
            try db.query("SELECT kind, applied, audit_seq FROM orgctl_resources WHERE address = ?1", [.text(address)]) { row in
                if let kind = ResourceKind(rawValue: row.text(0)) {
                    let attributes = row.optionalBlob(1).flatMap(AppliedValues.decode)
                    applied[address] = AppliedResource(address: address, kind: kind, attributes: attributes, auditSequence: row.int(2))
                }
                return false
            }
        }
        return (state, applied)
    }

    // MARK: orgctl_meta and the state key

    /// The `orgctl_meta` key of the recorded governance policies (``StoredState/recordedPolicies``).
    static var policiesKey: String { "policies" }

    func metaValue(_ name: String) throws -> String? {
        try db.first("SELECT value FROM orgctl_meta WHERE key = ?1", [.text(name)]) { $0.text(0) }
    }

    /// Stores `value` under `name` unless a value is stored already.
    func insertMetaValue(_ name: String, _ value: String) throws {
        try db.run("INSERT INTO orgctl_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING", [.text(name), .text(value)])
    }

    /// Records the check value and id of `key` in `orgctl_meta`, unless one is recorded already,
    /// and refuses `key` when another one is (under the write lock: `state rekey` may have replaced
    /// the key since this store checked it on opening).
    func recordKey(_ key: StateKey) throws {
        try insertMetaValue("state_key_check", key.checkValue)
        try insertMetaValue("state_key_id", key.keyID)
        try refuseReplacedKey()
    }

    /// Refuses this store's key when `orgctl_meta` records another key's check value: what a
    /// transaction that starts after a `state rekey` committed sees, in a process that opened the
    /// database before it.
    func refuseReplacedKey() throws {
        guard let key, let recorded = try metaValue("state_key_check"), recorded != key.checkValue else { return }
        throw wrongKey(recordedID: try metaValue("state_key_id") ?? "unknown", key)
    }

    /// Refuses a state key other than the one this database was written with: the recorded check
    /// value (schema 5), else, for a database written before it, the key id its secrets were sealed
    /// under. Nothing is known about the key of a database without either, and nothing is refused.
    func checkKey() throws {
        guard let key else { return }
        if let recorded = try metaValue("state_key_check") {
            guard recorded == key.checkValue else { throw wrongKey(recordedID: try metaValue("state_key_id") ?? "unknown", key) }
            return
        }
        var ids: [String] = []
        try db.forEach("""
            SELECT secret_key_id FROM webhooks WHERE secret_ciphertext IS NOT NULL
            UNION SELECT client_secret_key_id FROM sso_providers WHERE client_secret_ciphertext IS NOT NULL
            """) { ids.append($0.optionalText(0) ?? "unknown") }
        if !ids.isEmpty, !ids.contains(key.keyID) { throw wrongKey(recordedID: ids.sorted().joined(separator: ", "), key) }
    }

    func wrongKey(recordedID: String, _ key: StateKey) -> StateError {
        StateError(.badKey, "the state key does not match the key this database was encrypted with (key id \(recordedID); the key given has id \(key.keyID)); nothing was read or written",
                   help: "give the key '\(location)' was written with (ORGCTL_STATE_KEY or --state-key-file); with another key no secret could be read and every drift mark would be wrong")
    }

    /// Refuses to write without the state key: every row written records a keyed digest (see ResourceDigest).
    func requireKeyToWrite() throws -> StateKey {
        guard let key else {
            throw StateError(.missingKey, "writing the state needs the state key, which keys the row digests that tell changes made outside orgctl apart",
                             help: "set ORGCTL_STATE_KEY to 32 random bytes in base64 (openssl rand -base64 32) or pass --state-key-file; keep the key")
        }
        return key
    }

    // MARK: The audit log

    func forEachAuditRecordShared(from sequence: Int64, _ visit: (StoredAuditRecord) throws -> Bool) throws(StateError) {
        try inSnapshot("reading the audit log") {
            try db.query("SELECT seq, entry, prev_hash, hash FROM orgctl_audit WHERE seq >= ?1 ORDER BY seq", [.integer(sequence)]) { row in
                try visit(StoredAuditRecord(sequence: row.int(0), entry: row.blob(1), previousHash: row.blob(2), hash: row.blob(3)))
            }
        }
    }

    func verifyAuditShared() throws(StateError) -> (count: Int64, head: [UInt8], firstBreak: ChainBreak?) {
        var verifier = ChainVerifier()
        try forEachAuditRecordShared(from: 1) { record in verifier.check(record) == nil }
        return (verifier.count, verifier.head, verifier.firstBreak)
    }

    func withAuditTreeShared<T>(_ body: (MerkleTreeReader) throws -> T) throws(StateError) -> T {
        try inSnapshot("reading the audit tree") {
            let storage = MerkleStorage(db: db)
            return try body(storage.reader(size: try storage.size()))
        }
    }

    func withVerifiedAuditTreeShared<T>(rootsAt sizes: Set<Int64>, leavesOf sequences: Set<Int64>, checkingTree: Bool,
                                        _ body: (MerkleTreeReader, AuditLogVerification) throws -> T) throws(StateError) -> T {
        try inSnapshot("reading the audit tree") {
            let verification = try AuditLogScan(db: db).scan(rootsAt: sizes, leavesOf: sequences, checkingTree: checkingTree, parsingEntries: false)
            return try body(MerkleStorage(db: db).reader(size: verification.size), verification)
        }
    }

    func verifyAuditLogShared(rootsAt sizes: Set<Int64>, checkingTree: Bool, eachEntry: () -> Void) throws(StateError) -> AuditLogVerification {
        try inSnapshot("reading the audit log") {
            try AuditLogScan(db: db).scan(rootsAt: sizes, leavesOf: [], checkingTree: checkingTree, parsingEntries: true, eachEntry: eachEntry)
        }
    }

    /// The `orgctl_meta` key of the log's origin (docs/audit-chain.md 7.2).
    static var auditOriginKey: String { "audit_origin" }

    func storedAuditOriginShared() throws(StateError) -> String? {
        try inSnapshot("reading the audit log's origin") { try metaValue(Self.auditOriginKey) }
    }

    func recordAuditOriginShared(_ origin: String) throws(StateError) -> String {
        try inWriteTransaction("storing the audit log's origin") {
            try insertMetaValue(Self.auditOriginKey, origin)
            return try metaValue(Self.auditOriginKey) ?? origin
        }
    }
}
