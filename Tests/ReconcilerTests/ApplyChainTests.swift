import Audit
import Foundation
import Spec
import Testing

@testable import Reconciler
@testable import StateStore

/// Apply never appends to a broken audit chain, whether the chain was checked while the plan was
/// made (in the plan's snapshot) or must be checked inside the write lock.
@Suite("apply and the audit chain")
struct ApplyChainTests {
    /// A real state database holding `tenant/acme`, applied through the Reconciler.
    final class Database {
        let folder: URL
        let store: SQLiteStateStore
        var path: String { folder.appendingPathComponent("state.db").path }

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("orgctl-apply-chain-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            store = try #require(try SQLiteStateStore.open(path: folder.appendingPathComponent("state.db").path, access: .readWrite,
                                                           lockTimeoutMilliseconds: 100, key: try StateKey(raw: [UInt8](repeating: 9, count: 32))))
            let first = Reconciler.plan(desired: Fixture.desired([Fixture.acme]), stored: try store.read())
            _ = try Reconciler.apply(first, to: store, planState: nil, context: Database.context)
        }

        deinit { try? FileManager.default.removeItem(at: folder) }

        static let context = ApplyContext(actor: "test", source: "test", time: "2026-11-23T00:00:00Z", secrets: [:], maxDeletes: 25)

        /// Acme renamed: a plan with one update, and the state it was made from (read with a chain check).
        func renamePlan() throws -> (Plan, StoredState) {
            var state: StoredState?
            let check = try store.readCheckingChain(state: { state = $0 }, shouldStop: { false })
            var stored = try #require(state)
            stored.auditChain = check
            let renamed = Fixture.resource("tenant/acme", .tenant, ["plan": .string("business"), "name": .string("Acme Corp")],
                                           collections: ["tenant/acme/member", "tenant/acme/team"])
            return (Reconciler.plan(desired: Fixture.desired([renamed]), stored: stored), stored)
        }

        /// Applies `plan` from `state` and expects apply to refuse it for a chain broken at `sequence`.
        func expectRefusal(_ plan: Plan, _ state: StoredState, brokenAt sequence: Int64,
                           sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
            let error = try #require(throws: ApplyError.self, sourceLocation: sourceLocation) {
                try Reconciler.apply(plan, to: store, planState: state, context: Database.context)
            }
            guard case .auditBroken(let broken) = error else {
                Issue.record("expected a broken chain, got \(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(broken.sequence == sequence, sourceLocation: sourceLocation)
        }

        /// Edits the first audit entry through another connection, as a hand edit with sqlite3 would.
        func tamperWithFirstEntry() throws {
            let other = try SQLiteConnection(path: path, mode: .readWrite, busyTimeoutMilliseconds: 100)
            try other.execute("UPDATE orgctl_audit SET entry = CAST(replace(CAST(entry AS TEXT), 'test', 'eve') AS BLOB) WHERE seq = 1")
        }
    }

    @Test("a chain found intact in the plan's snapshot, with nothing changed since, lets the apply through")
    func intactAndUnchanged() throws {
        let database = try Database()
        let (plan, state) = try database.renamePlan()
        #expect(state.auditChain == .intact)
        let result = try Reconciler.apply(plan, to: database.store, planState: state, context: Database.context)
        #expect(result.updated == 1)
        #expect(try database.store.verifyAudit().firstBreak == nil)
    }

    @Test("an entry edited after the plan's chain check is still caught: apply checks again and writes nothing")
    func tamperedAfterTheCheck() throws {
        let database = try Database()
        let (plan, state) = try database.renamePlan()
        #expect(state.auditChain == .intact)
        try database.tamperWithFirstEntry()
        try database.expectRefusal(plan, state, brokenAt: 1)
        #expect(try database.store.read().auditHead == state.auditHead)
    }

    @Test("bytes of an entry rewritten in the file itself (not through SQLite) after the plan's check are still caught")
    func rawFileEditAfterTheCheck() throws {
        let database = try Database()
        try database.store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  // the entry's bytes now live in the main file
        let (plan, state) = try database.renamePlan()
        #expect(state.auditChain == .intact)
        // Rewrite the first entry's actor in place, as an editor of the raw file would: same length,
        // no commit, so SQLite's data_version does not change.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: database.path)))
        let needle = Array(#""actor":"test""#.utf8)
        let at = try #require((0...(bytes.count - needle.count)).first { bytes[$0..<($0 + needle.count)].elementsEqual(needle) })
        bytes.replaceSubrange((at + 9)..<(at + 13), with: Array("eve!".utf8))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: database.path))
        try handle.write(contentsOf: bytes)
        try handle.close()
        // The file's times may not have moved within the clock's granularity: set one that differs.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_000_000_000)], ofItemAtPath: database.path)

        try database.expectRefusal(plan, state, brokenAt: 1)
    }

    @Test("a break found in the plan's snapshot refuses the apply")
    func brokenInThePlansSnapshot() throws {
        let database = try Database()
        try database.tamperWithFirstEntry()
        let (plan, state) = try database.renamePlan()
        #expect(state.auditChain == .broken(ChainBreak(sequence: 1, problem: .hashMismatch)))
        #expect(throws: ApplyError.self) { try Reconciler.apply(plan, to: database.store, planState: state, context: Database.context) }
        #expect(try database.store.read().auditHead == state.auditHead)
    }

    @Test("a chain check that was stopped early leaves the check to apply, which finds the break")
    func uncheckedIsCheckedInTheLock() throws {
        let database = try Database()
        try database.tamperWithFirstEntry()
        var (plan, state) = try database.renamePlan()
        state.auditChain = .unchecked
        #expect(throws: ApplyError.self) { try Reconciler.apply(plan, to: database.store, planState: state, context: Database.context) }
        #expect(try database.store.read().auditHead == state.auditHead)
    }
}
