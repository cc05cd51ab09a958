import Audit
import Testing

@testable import StateStore

/// The chain check reads the log in chunks (so that stopping it leaves little unread on a server):
/// chunk boundaries must change nothing it finds.
@Suite("audit chain check in chunks")
struct AuditChainChunkTests {
    /// A store holding `count` entries, appended by orgctl's own write path.
    static func store(_ temp: TemporaryStore, entries count: Int) throws -> SQLiteStateStore {
        let store = try temp.open()
        try AuditTreeTests.append(count, to: store)
        return store
    }

    @Test("an intact log of 10 entries is intact whatever the chunk size, boundaries included", arguments: [1, 2, 3, 5, 9, 10, 11, 32_768])
    func intactAcrossChunks(_ chunk: Int) throws {
        let temp = try TemporaryStore()
        let store = try Self.store(temp, entries: 10)
        #expect(try store.db.checkAuditChain(chunk: chunk) == .intact)
    }

    /// Each edit on either side of a chunk boundary (chunks of 3: entries 3|4 and 6|7).
    @Test("an edit next to a chunk boundary is found at the same entry as with one query", arguments: [
        ("UPDATE orgctl_audit SET hash = zeroblob(32) WHERE seq = 3", ChainBreak(sequence: 3, problem: .hashMismatch)),
        ("UPDATE orgctl_audit SET prev_hash = zeroblob(32) WHERE seq = 4", ChainBreak(sequence: 4, problem: .previousHashMismatch)),
        ("DELETE FROM orgctl_audit WHERE seq = 4", ChainBreak(sequence: 5, problem: .sequenceGap(expected: 4))),
        ("DELETE FROM orgctl_audit WHERE seq = 7", ChainBreak(sequence: 8, problem: .sequenceGap(expected: 7))),
        ("UPDATE orgctl_audit SET seq = 0 WHERE seq = 10", ChainBreak(sequence: 0, problem: .sequenceGap(expected: 1))),
        ("UPDATE orgctl_audit SET entry = x'00' WHERE seq = 6", ChainBreak(sequence: 6, problem: .hashMismatch)),
    ])
    func editNextToBoundary(_ edit: String, _ expected: ChainBreak) throws {
        let temp = try TemporaryStore()
        let store = try Self.store(temp, entries: 10)
        try store.connection.execute(edit)
        #expect(try store.db.checkAuditChain(chunk: 32_768) == .broken(expected))
        #expect(try store.db.checkAuditChain(chunk: 3) == .broken(expected))
    }

    @Test("a log cut back to a chunk boundary is intact up to its new head")
    func cutAtBoundary() throws {
        let temp = try TemporaryStore()
        let store = try Self.store(temp, entries: 10)
        try store.connection.execute("DELETE FROM orgctl_audit WHERE seq > 6")
        #expect(try store.db.checkAuditChain(chunk: 3) == .intact)
    }
}
