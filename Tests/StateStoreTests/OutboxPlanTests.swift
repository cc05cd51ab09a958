import Foundation
import Testing

@testable import StateStore

/// A delivery pass finds the due events through the `(status, next_attempt_at, id)` index, not by
/// reading the outbox: a pass over an outbox of delivered events costs milliseconds however many
/// it holds (docs/webhooks.md; bench/README.md measures it).
@Suite("Outbox query plans")
struct OutboxPlanTests {
    static let claimValues: [SQLValue] = [.text("tester"), .integer(2_000_000_060), .integer(2_000_000_000), .integer(20)]

    @Test("SQLite: the claim searches the outbox by its (status, next_attempt_at) index")
    func sqliteClaimUsesTheIndex() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orgctl-outbox-plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let key = try StateKey(raw: [UInt8](repeating: 7, count: 32))
        let store = try #require(try SQLiteStateStore.open(path: folder.appendingPathComponent("state.db").path, access: .readWrite,
                                                           lockTimeoutMilliseconds: 100, key: key))
        var details: [String] = []
        try store.db.forEach("EXPLAIN QUERY PLAN " + OutboxSQL.claim, Self.claimValues) { details.append($0.text(3)) }
        let reads = details.filter { $0.contains("orgctl_outbox") }
        #expect(reads.contains { $0.hasPrefix("SEARCH orgctl_outbox USING") && $0.contains("INDEX") && $0.contains("(status=? AND next_attempt_at<?)") },
                "\(details)")
        #expect(!reads.contains { $0.hasPrefix("SCAN orgctl_outbox") }, "\(details)")
    }

    @Test("PostgreSQL: the claim can be served by the (status, next_attempt_at, id) index")
    func postgresClaimCanUseTheIndex() throws {
        guard let server = TestPostgres.uri() else { return }
        let schema = "orgctl_plan_" + UUID().uuidString.prefix(8).lowercased()
        defer { _ = try? TestPostgres.rows(server, "DROP SCHEMA IF EXISTS \(schema) CASCADE") }
        let key = try StateKey(raw: [UInt8](repeating: 7, count: 32))
        let store = try #require(try PostgresStateStore.open(conninfo: server, schema: schema, access: .readWrite, lockTimeoutMilliseconds: 1000,
                                                             key: key, applicationName: "orgctl-plan-test"))
        // An empty table is cheaper to read whole than through an index, so the planner is asked to
        // avoid a sequential scan where it can: it still chooses one when no index serves the query.
        // (bench/README.md shows the plan on an outbox of 10,000 rows without this setting.)
        try store.db.run("SET enable_seqscan = off", [])
        var plan: [String] = []
        try store.db.forEach("EXPLAIN " + OutboxSQL.claimSkippingLocked, Self.claimValues) { plan.append($0.text(0)) }
        let text = plan.joined(separator: "\n")
        #expect(text.contains("Index") && text.contains("orgctl_outbox_status_next_attempt_at_id_key"), "\(text)")
        #expect(!text.contains("Seq Scan on orgctl_outbox"), "\(text)")
    }
}
