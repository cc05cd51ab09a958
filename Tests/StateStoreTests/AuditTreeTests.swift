import Audit
import Testing

@testable import StateStore

/// The Merkle tree StateStore keeps beside the audit entries.
@Suite("audit Merkle tree")
struct AuditTreeTests {
    /// Appends `count` entries in one write transaction.
    static func append(_ count: Int, to store: SQLiteStateStore) throws {
        try store.write { transaction in
            for _ in 0..<count { _ = try transaction.appendAudit { Sample.entry($0, "tenant/t\($0)") } }
        }
    }

    /// The leaf hashes of every stored entry, read independently of the tree.
    static func leafHashes(_ store: SQLiteStateStore) throws -> [[UInt8]] {
        var leaves: [[UInt8]] = []
        try store.forEachAuditRecord { record in
            leaves.append(AuditHash.leaf(record.entry))
            return true
        }
        return leaves
    }

    @Test("appends across transactions keep the stored tree equal to the RFC 9162 tree of the entries")
    func treeFollowsAppends() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        for batch in [1, 14, 2, 30, 20] { try Self.append(batch, to: store) }  // 67 entries, crossing level-4 boundaries mid-batch
        let leaves = try Self.leafHashes(store)
        #expect(leaves.count == 67)
        try store.withAuditTree { reader in
            #expect(reader.size == 67)
            for size in [0, 1, 15, 16, 17, 33, 64, 67] {
                #expect(try reader.root(size: Int64(size)) == MerkleHash.root(leafHashes: leaves[0..<size]), "size \(size)")
            }
            let root = MerkleHash.root(leafHashes: leaves[...])
            for index in [0, 15, 16, 40, 66] {
                let proof = try reader.inclusionProof(index: Int64(index), treeSize: 67)
                #expect(MerkleVerifier.verifyInclusion(index: Int64(index), treeSize: 67, leafHash: leaves[index], proof: proof, root: root))
            }
            for old in [1, 16, 31, 64] {
                let proof = try reader.consistencyProof(oldSize: Int64(old), newSize: 67)
                #expect(MerkleVerifier.verifyConsistency(oldSize: Int64(old), newSize: 67,
                                                         oldRoot: MerkleHash.root(leafHashes: leaves[0..<old]), newRoot: root, proof: proof))
            }
        }
        // Only level-4 nodes exist at 67 leaves: 4 of them (leaves 0–63).
        let rows = try store.connection.prepare("SELECT level, count(*) FROM orgctl_merkle GROUP BY level").all()
        #expect(rows == [[.integer(4), .integer(4)]])
    }

    @Test("a rolled-back apply leaves the tree as it was")
    func rollbackKeepsTree() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Self.append(15, to: store)
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try store.write { transaction in
                _ = try transaction.appendAudit { Sample.entry($0, "tenant/x") }  // completes the first level-4 node
                throw Boom()
            }
        }
        #expect(try store.connection.prepare("SELECT count(*) FROM orgctl_merkle").all() == [[.integer(0)]])
        try Self.append(3, to: store)
        let leaves = try Self.leafHashes(store)
        #expect(try store.withAuditTree { try $0.root(size: 18) } == MerkleHash.root(leafHashes: leaves[...]))
    }

    @Test("verifyAuditLog streams the roots at the requested sizes")
    func streamingRoots() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Self.append(20, to: store)
        let leaves = try Self.leafHashes(store)
        var counted = 0
        let result = try store.verifyAuditLog(rootsAt: [0, 5, 20, 25]) { counted += 1 }
        #expect(counted == 20, "the progress count of audit verify sees every entry")
        #expect(result.firstBreak == nil)
        #expect(result.size == 20)
        #expect(result.root == MerkleHash.root(leafHashes: leaves[...]))
        #expect(result.rootsAt[5] == MerkleHash.root(leafHashes: leaves[0..<5]))
        #expect(result.rootsAt[0] == MerkleHash.emptyRoot)
        #expect(result.rootsAt[25] == nil)
    }

    @Test("a database written before the tree (schema 1) is read as it is, and migrating it computes the tree once")
    func migrationFromSchemaOne() throws {
        let temp = try TemporaryStore()
        do {
            let store = try temp.open()
            try Self.append(40, to: store)
            // Make it exactly what orgctl 0.1 wrote: no tree table, schema version 1.
            // (The steps after the tree's are undone too: orgctl_resources.applied.)
            try store.connection.execute("""
                DROP TABLE orgctl_merkle; ALTER TABLE orgctl_resources DROP COLUMN applied;
                DROP TABLE orgctl_outbox; DROP TABLE orgctl_outbox_attempts; DROP TABLE orgctl_webhook_endpoints; DROP TABLE orgctl_subjects; DROP TABLE orgctl_subject_values;
                DELETE FROM orgctl_meta WHERE key LIKE 'state\\_key\\_%' ESCAPE '\\';
                PRAGMA user_version = \(Schema.merkleMigration)
                """)
        }
        // Read-only (plan) reads it as migrated, in its own temporary schema: the file stays at schema 2.
        let readOnly = try temp.open(.readOnly)
        #expect(try readOnly.read().auditHead.sequence == 40)
        #expect(try readOnly.schemaVersion == Schema.merkleMigration)

        let old = try #require(try SQLiteStateStore.open(path: temp.path, access: .readOnly, lockTimeoutMilliseconds: 100, key: nil,
                                                         readsOlderSchema: true))
        #expect(try old.schemaVersion == Schema.merkleMigration)
        #expect(try !old.hasAuditTree)
        let streamed = try old.verifyAuditLog()
        #expect(streamed.firstBreak == nil && streamed.size == 40)

        let migrated = try temp.open()
        #expect(try migrated.schemaVersion == Schema.currentVersion)
        #expect(try migrated.connection.prepare("SELECT count(*) FROM orgctl_merkle").all() == [[.integer(2)]])
        #expect(try migrated.withAuditTree { try $0.root(size: 40) } == streamed.root)
        try Self.append(5, to: migrated)
        #expect(try migrated.withAuditTree { try $0.root(size: 45) } == MerkleHash.root(leafHashes: try Self.leafHashes(migrated)[...]))
    }

    @Test("verifyAuditLog compares every stored node with the node of the entries", arguments: [
        ("UPDATE orgctl_merkle SET hash = zeroblob(32) WHERE level = 4 AND idx = 1", AuditTreeMismatch(level: 4, index: 1, problem: .differs)),
        ("DELETE FROM orgctl_merkle WHERE level = 4 AND idx = 0", AuditTreeMismatch(level: 4, index: 0, problem: .missing)),
        ("INSERT INTO orgctl_merkle VALUES (8, 0, zeroblob(32))", AuditTreeMismatch(level: 8, index: 0, problem: .extra)),
        // 40 entries complete the level-4 nodes 0 and 1 only.
        ("INSERT INTO orgctl_merkle VALUES (4, 2, zeroblob(32))", AuditTreeMismatch(level: 4, index: 2, problem: .extra)),
        ("DELETE FROM orgctl_merkle WHERE level = 4 AND idx = 2", nil),
    ])
    func storedTreeChecked(_ sql: String, _ expected: AuditTreeMismatch?) throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Self.append(40, to: store)
        try store.connection.execute(sql)
        let result = try store.verifyAuditLog()
        #expect(result.firstBreak == nil && result.treeMismatch == expected)
        let leaves = try Self.leafHashes(store)
        let verified = try store.withVerifiedAuditTree(rootsAt: [17], leavesOf: [5]) { _, log in log }
        #expect(verified.root == MerkleHash.root(leafHashes: leaves[...]) && verified.rootsAt[17] == MerkleHash.root(leafHashes: leaves[..<17]))
        #expect(verified.leaves[5] == leaves[4] && verified.treeMismatch == expected)
    }
}
