public import Audit
import Crypto

/// The stored Merkle tree over the audit entries (`orgctl_merkle`): perfect-subtree hashes at
/// the levels `Schema.isStoredMerkleLevel` names. Every other node is folded from the stored
/// levels below it, down to the entries' leaf hashes.
struct MerkleStorage {
    let db: any SQLDatabase

    /// The hash of the perfect subtree at `level`, index `index`.
    func node(level: Int, index: Int64) throws -> [UInt8] {
        if level == 0 { return try leafHash(index: index) }
        if Schema.isStoredMerkleLevel(level) {
            if let hash = try db.first("SELECT hash FROM orgctl_merkle WHERE level = ?1 AND idx = ?2", [.integer(Int64(level)), .integer(index)], { $0.blob(0) }) {
                return hash
            }
            throw StateError(.auditBroken, "the audit tree has no node at level \(level), index \(index)",
                             help: "run 'orgctl audit verify'; restore the database from a backup if the tree was deleted")
        }
        return MerkleHash.node(try node(level: level - 1, index: 2 * index), try node(level: level - 1, index: 2 * index + 1))
    }

    /// `SHA-256(0x00 ‖ entry)` of leaf `index` (entry `index + 1`).
    func leafHash(index: Int64) throws -> [UInt8] {
        let hash = try db.first("SELECT entry FROM orgctl_audit WHERE seq = ?1", [.integer(index + 1)]) { row in
            var input: [UInt8] = [0x00]
            row.withBlob(0) { input.append(contentsOf: $0) }
            return SHA256.hash(input)
        }
        guard let hash else {
            throw StateError(.auditBroken, "audit entry \(index + 1) is missing", help: "run 'orgctl audit verify'")
        }
        return hash
    }

    /// The number of entries (the highest sequence number: entries are gapless).
    func size() throws -> Int64 {
        try db.integer("SELECT seq FROM orgctl_audit ORDER BY seq DESC LIMIT 1")
    }

    /// The right edge of the tree of `size` leaves, to append to.
    func compactRange(size: Int64) throws -> CompactRange {
        try CompactRange(size: size) { level, index in try node(level: level, index: index) }
    }

    /// Refuses to append to a log whose stored tree has nodes over entries it does not hold: the
    /// trace of removed entries (a log cut back to an earlier head keeps its chain intact). Appending
    /// would overwrite those nodes (`completed` replaces) once the log grows back over them, and so
    /// erase the only evidence of the cut that the database itself holds.
    func refuseNodesBeyond(size: Int64) throws {
        let sql = "SELECT level, idx FROM orgctl_merkle WHERE level >= 62 OR ((idx + 1) << CAST(level AS INTEGER)) > ?1 ORDER BY level, idx LIMIT 1"
        guard let mismatch = try db.first(sql, [.integer(size)], { AuditTreeMismatch(level: Int($0.int(0)), index: $0.int(1), problem: .extra) }) else { return }
        throw StateError(.auditBroken, mismatch.description, help: AuditTreeMismatch.help)
    }

    /// Stores the node if its level is one the table keeps.
    func completed(level: Int, index: Int64, hash: [UInt8]) throws {
        guard Schema.isStoredMerkleLevel(level) else { return }
        try db.write("INSERT INTO orgctl_merkle (level, idx, hash) VALUES (?1, ?2, ?3) ON CONFLICT (level, idx) DO UPDATE SET hash = excluded.hash",
                   [.integer(Int64(level)), .integer(index), .blob(hash)])
    }

    /// Computes the stored levels for every entry already in the log, streaming the entries once
    /// (the migration to schema 2 of a SQLite database written before the tree existed; it writes
    /// while it reads, which only SQLite's connection allows).
    func backfill() throws {
        var range = CompactRange()
        var input: [UInt8] = [0x00]
        try db.forEach("SELECT entry FROM orgctl_audit ORDER BY seq") { row in
            input.removeSubrange(1...)
            row.withBlob(0) { input.append(contentsOf: $0) }
            try range.append(leafHash: SHA256.hash(input)) { level, index, hash in
                try completed(level: level, index: index, hash: hash)
            }
        }
    }

    func reader(size: Int64) -> MerkleTreeReader {
        MerkleTreeReader(size: size) { level, index in try node(level: level, index: index) }
    }
}

/// A stored node of the tree (`orgctl_merkle`) that is not the node recomputed from the entries.
/// The table is derived data, and whoever can write the database can write it: every root,
/// proof and checkpoint is checked against the entries, and a disagreement is reported as this.
public struct AuditTreeMismatch: Sendable, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable {
        /// The stored hash differs from the hash of the entries below it.
        case differs
        /// The node is not stored, though the entries complete it.
        case missing
        /// A stored row that is no node of the tree of the entries (a level the table never
        /// keeps, or leaves beyond the last entry).
        case extra
    }

    public var level: Int
    public var index: Int64
    public var problem: Problem

    public init(level: Int, index: Int64, problem: Problem) {
        self.level = level
        self.index = index
        self.problem = problem
    }

    public var description: String {
        switch problem {
        case .differs: "the stored audit tree does not match the entries: its node at level \(level), index \(index) is not the hash of the entries it covers"
        case .missing: "the stored audit tree does not match the entries: it has no node at level \(level), index \(index)"
        case .extra: "the stored audit tree does not match the entries: it has a node at level \(level), index \(index) that is no node of the entries' tree"
        }
    }

    /// What to do about any mismatch: the entries are what counts, and someone changed the file.
    public static let help = """
        orgctl_merkle or the entries were changed outside orgctl: run 'orgctl audit verify --checkpoint FILE' with the \
        checkpoints you kept to see whether the entries still match them, then restore the database from a backup and \
        investigate who changed it
        """
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
    /// The leaf hash of each requested entry (by sequence number) that exists.
    public var leaves: [Int64: [UInt8]] = [:]
    /// The first stored tree node that is not the node of the entries (nil when the database
    /// holds no tree yet: schema 1, read as migrated).
    public var treeMismatch: AuditTreeMismatch?
}

/// One pass over the audit log for `audit verify`, roots, proofs and checkpoints.
struct AuditLogScan {
    let db: any SQLDatabase

    /// Streams every row once: the chain checks of `ChainVerifier`, the Merkle root over the
    /// rows, with the roots at `sizes` on the way, and every stored tree node compared with the
    /// node recomputed from the entries (the stored nodes, about one per 15 entries, are read
    /// first: no backend can run a second query while it streams the first). Without
    /// `parsingEntries` the chain check is the one apply makes (sequence, links and hashes; not
    /// the entries' contents), which is what a root or proof depends on, at a fraction of the
    /// cost. `eachEntry` is called once per entry read (for a progress count).
    func scan(rootsAt sizes: Set<Int64>, leavesOf sequences: Set<Int64>, checkingTree: Bool,
              parsingEntries: Bool, eachEntry: () -> Void = {}) throws -> AuditLogVerification {
        var verifier = ChainVerifier()
        var linkBreak: ChainBreak?
        var count: Int64 = 0
        var head = AuditHash.genesis
        var range = CompactRange()
        var roots: [Int64: [UInt8]] = [:]
        var leaves: [Int64: [UInt8]] = [:]
        var mismatch: AuditTreeMismatch?
        if sizes.contains(0) { roots[0] = range.root }
        // The stored rows, sorted (so a second row for one node, in a table whose primary key was
        // dropped, follows the first). A database without the tree (schema 1, read as migrated) has none.
        var storedRows: [(level: Int64, index: Int64, hash: [UInt8])] = []
        if checkingTree {
            try db.forEach("SELECT level, idx, hash FROM orgctl_merkle ORDER BY level, idx") { storedRows.append(($0.int(0), $0.int(1), $0.blob(2))) }
        }
        var stored: [NodeKey: [UInt8]] = [:]
        stored.reserveCapacity(storedRows.count)
        for row in storedRows where stored[NodeKey(level: row.level, index: row.index)] == nil {
            stored[NodeKey(level: row.level, index: row.index)] = row.hash
        }
        // Each stored-level node the entries complete must be stored, with the same hash.
        func compare(level: Int, index: Int64, hash: [UInt8]) {
            guard checkingTree, mismatch == nil, Schema.isStoredMerkleLevel(level) else { return }
            switch stored[NodeKey(level: Int64(level), index: index)] {
            case nil: mismatch = AuditTreeMismatch(level: level, index: index, problem: .missing)
            case let node? where node != hash: mismatch = AuditTreeMismatch(level: level, index: index, problem: .differs)
            default: break
            }
        }
        try db.forEach("SELECT seq, entry, prev_hash, hash FROM orgctl_audit ORDER BY seq") { rows in
            let record = StoredAuditRecord(sequence: rows.int(0), entry: rows.blob(1), previousHash: rows.blob(2), hash: rows.blob(3))
            eachEntry()
            let leaf = AuditHash.leaf(record.entry)
            if parsingEntries {
                _ = verifier.check(record)
            } else if linkBreak == nil {
                let problem: ChainBreak.Problem? =
                    record.sequence != count + 1 ? .sequenceGap(expected: count + 1)
                    : record.previousHash != head ? .previousHashMismatch
                    : record.hash != AuditHash.chain(previous: head, leaf: leaf) ? .hashMismatch : nil
                if let problem {
                    linkBreak = ChainBreak(sequence: record.sequence, problem: problem)
                } else {
                    count += 1
                    head = record.hash
                }
            }
            if sequences.contains(range.size + 1) { leaves[range.size + 1] = leaf }
            range.append(leafHash: leaf, completed: compare)
            if sizes.contains(range.size) { roots[range.size] = range.root }
        }
        // A stored row that no node of the entries' tree accounts for.
        if checkingTree, mismatch == nil {
            var previous: (level: Int64, index: Int64)?
            for (level, index, _) in storedRows {
                let isNode = level > 0 && level < 63 && Schema.isStoredMerkleLevel(Int(level)) && index >= 0
                    && index < (range.size >> level) && !(previous.map { $0 == (level, index) } ?? false)
                previous = (level, index)
                if !isNode {
                    mismatch = AuditTreeMismatch(level: Int(level), index: index, problem: .extra)
                    break
                }
            }
        }
        if parsingEntries { (count, head, linkBreak) = (verifier.count, verifier.head, verifier.firstBreak) }
        return AuditLogVerification(count: count, head: head, firstBreak: linkBreak,
                                    root: range.root, size: range.size, rootsAt: roots, leaves: leaves, treeMismatch: mismatch)
    }

    private struct NodeKey: Hashable {
        var level: Int64
        var index: Int64
    }
}
