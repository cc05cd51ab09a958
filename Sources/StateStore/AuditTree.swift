public import Audit
import Crypto

/// The stored Merkle tree over the audit entries (`orgctl_merkle`): perfect-subtree hashes at
/// the levels `Schema.isStoredMerkleLevel` names. Every other node is folded from the stored
/// levels below it, down to the entries' leaf hashes.
struct MerkleStorage {
    let db: SQLiteConnection

    /// The hash of the perfect subtree at `level`, index `index`.
    func node(level: Int, index: Int64) throws -> [UInt8] {
        if level == 0 { return try leafHash(index: index) }
        if Schema.isStoredMerkleLevel(level) {
            let statement = try db.cached("SELECT hash FROM orgctl_merkle WHERE level = ?1 AND idx = ?2")
            defer { statement.reset() }
            try statement.bind(int: Int64(level), at: 1)
            try statement.bind(int: index, at: 2)
            if try statement.step() { return statement.blob(at: 0) }
            throw StateError(.auditBroken, "the audit tree has no node at level \(level), index \(index)",
                             help: "run 'orgctl audit verify'; restore the database from a backup if the tree was deleted")
        }
        return MerkleHash.node(try node(level: level - 1, index: 2 * index), try node(level: level - 1, index: 2 * index + 1))
    }

    /// `SHA-256(0x00 ‖ entry)` of leaf `index` (entry `index + 1`).
    func leafHash(index: Int64) throws -> [UInt8] {
        let statement = try db.cached("SELECT entry FROM orgctl_audit WHERE seq = ?1")
        defer { statement.reset() }
        try statement.bind(int: index + 1, at: 1)
        guard try statement.step() else {
            throw StateError(.auditBroken, "audit entry \(index + 1) is missing", help: "run 'orgctl audit verify'")
        }
        var input: [UInt8] = [0x00]
        statement.withBlob(at: 0) { input.append(contentsOf: $0) }
        return SHA256.hash(input)
    }

    /// The number of entries (the highest sequence number: entries are gapless).
    func size() throws -> Int64 {
        let statement = try db.cached("SELECT seq FROM orgctl_audit ORDER BY seq DESC LIMIT 1")
        defer { statement.reset() }
        return try statement.step() ? statement.int(at: 0) : 0
    }

    /// The right edge of the tree of `size` leaves, to append to.
    func compactRange(size: Int64) throws -> CompactRange {
        try CompactRange(size: size) { level, index in try node(level: level, index: index) }
    }

    /// Stores the node if its level is one the table keeps.
    func completed(level: Int, index: Int64, hash: [UInt8]) throws {
        guard Schema.isStoredMerkleLevel(level) else { return }
        let insert = try db.cached("INSERT OR REPLACE INTO orgctl_merkle (level, idx, hash) VALUES (?1, ?2, ?3)")
        try insert.bind(int: Int64(level), at: 1)
        try insert.bind(int: index, at: 2)
        try insert.bind(blob: hash, at: 3)
        try insert.run()
    }

    /// Computes the stored levels for every entry already in the log, streaming the entries once
    /// (the migration to schema 2 of a database written before the tree existed).
    func backfill() throws {
        var range = CompactRange()
        let statement = try db.prepare("SELECT entry FROM orgctl_audit ORDER BY seq")
        var input: [UInt8] = [0x00]
        while try statement.step() {
            input.removeSubrange(1...)
            statement.withBlob(at: 0) { input.append(contentsOf: $0) }
            try range.append(leafHash: SHA256.hash(input)) { level, index, hash in
                try completed(level: level, index: index, hash: hash)
            }
        }
    }

    func reader(size: Int64) -> MerkleTreeReader {
        MerkleTreeReader(size: size) { level, index in try node(level: level, index: index) }
    }
}

/// What `audit verify` found, streaming the log once.
public struct AuditLogVerification: Sendable {
    /// Rows read and the chain verification of section 5.
    public var count: Int64
    public var head: [UInt8]
    public var firstBreak: ChainBreak?
    /// The Merkle root over all rows, in sequence order.
    public var root: [UInt8]
    /// The number of rows (leaves).
    public var size: Int64
    /// The root after the first `n` rows, for each requested `n` not above `size`.
    public var rootsAt: [Int64: [UInt8]]
}

extension SQLiteStateStore {
    /// The database's schema version (older databases can be read by `audit verify`, see `open`).
    public var schemaVersion: Int { get throws(StateError) { try storeCall("reading the schema version") { Int(try self.integerPragma("user_version")) } } }

    /// Whether the database is an orgctl database of an older schema than this orgctl writes
    /// (one `apply` migrates it; read-only commands read it as migrated).
    public var hasOlderSchema: Bool { get throws(StateError) { let version = try schemaVersion; return version >= 1 && version < Schema.currentVersion } }

    /// Whether the database holds the stored Merkle tree (the schemas after `Schema.merkleMigration`).
    public var hasAuditTree: Bool { get throws(StateError) { try schemaVersion > Schema.merkleMigration } }

    /// Runs `body` with the tree as it is in one consistent read snapshot.
    public func withAuditTree<T>(_ body: (MerkleTreeReader) throws -> T) throws(StateError) -> T {
        try storeCall("reading the audit tree") {
            try self.db.transaction(.deferred) {
                let storage = MerkleStorage(db: self.db)
                return try body(storage.reader(size: try storage.size()))
            }
        }
    }

    /// Streams every row once: the chain checks of `ChainVerifier` and the Merkle root over the
    /// rows, with the roots at `sizes` on the way. Memory stays O(log n) whatever the log's length.
    public func verifyAuditLog(rootsAt sizes: Set<Int64> = []) throws(StateError) -> AuditLogVerification {
        var verifier = ChainVerifier()
        var range = CompactRange()
        var roots: [Int64: [UInt8]] = [:]
        if sizes.contains(0) { roots[0] = range.root }
        try forEachAuditRecord { record in
            _ = verifier.check(record)
            range.append(leafHash: AuditHash.leaf(record.entry))
            if sizes.contains(range.size) { roots[range.size] = range.root }
            return true
        }
        return AuditLogVerification(count: verifier.count, head: verifier.head, firstBreak: verifier.firstBreak,
                                    root: range.root, size: range.size, rootsAt: roots)
    }

}
