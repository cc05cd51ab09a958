import Audit
import Foundation
import Spec
import Testing

@testable import StateStore

@Suite("state rekey (store)")
struct RekeyStoreTests {
    static let newKey = try! StateKey(raw: (0..<32).map { UInt8(($0 * 53 + 29) & 0xFF) })

    static func open(_ temp: TemporaryStore, key: StateKey) throws -> SQLiteStateStore {
        try #require(try SQLiteStateStore.open(path: temp.path, access: .readWrite, lockTimeoutMilliseconds: 100, key: key))
    }

    static func rekey(_ store: SQLiteStateStore, dryRun: Bool = false) throws -> StateRekey.Summary {
        try StateRekey.rekey(store, to: newKey, actor: "test", source: "test", time: "2026-11-22T12:00:00Z", dryRun: dryRun)
    }

    @Test("after a rekey no row is drifted under the new key, every secret opens with it (the signing secret a deliverer reads), and one entry records the key ids")
    func rekeyedState() throws {
        let temp = try TemporaryStore()
        try Sample.applyAll(try temp.open())
        let summary = try Self.rekey(try temp.open())
        #expect(summary.secrets == 2 && summary.fingerprints == 2 && summary.digests == Sample.resources.count && summary.unverifiable == 0)
        let store = try Self.open(temp, key: Self.newKey)
        let state = try store.read()
        #expect(state.resources.count == Sample.resources.count)
        #expect(state.resources.allSatisfy { $0.appliedDigest == $0.digest }, "drifted: \(state.resources.filter(\.isDrifted).map(\.address))")
        #expect(try store.outbox.target(tenant: "acme", name: "slack")?.secret == Sample.secrets["tenant/acme/webhook/slack"]?["secret"])
        var last: StoredAuditRecord?
        try store.forEachAuditRecord { last = $0; return true }
        let entry = try AuditEntry(canonicalBytes: try #require(last).entry)
        #expect(entry.action == "rekey" && entry.address == "state/key" && entry.sequence == summary.auditSequence)
        var before = JSONObject()
        before["keyId"] = .string(temp.key.keyID)
        #expect(entry.before == .object(before))
        #expect(try store.verifyAudit().firstBreak == nil)
    }

    @Test("a store opened with the old key before a rekey committed is refused at its next read, write and outbox claim")
    func staleStoreRefused() throws {
        let temp = try TemporaryStore()
        try Sample.applyAll(try temp.open())
        let stale = try temp.open()
        _ = try Self.rekey(try temp.open())
        func isWrongKey(_ body: () throws -> Void) -> Bool {
            do { try body() } catch let error as StateError { return error.kind == .badKey && error.message.contains("(key id \(Self.newKey.keyID);") } catch { return false }
            return false
        }
        #expect(isWrongKey { _ = try stale.read() })
        #expect(isWrongKey { try stale.write { _ in } })
        #expect(isWrongKey { _ = try stale.outbox.claim(deliverer: "d", now: 0, leaseUntil: 60, limit: 10) })
        // Nothing was written by the refused write.
        #expect(try Self.open(temp, key: Self.newKey).read().resources.allSatisfy { !$0.isDrifted })
    }

    @Test("drift is kept exactly: rows without applied values (older orgctl) stay clean, a record edited outside orgctl stays drifted")
    func driftKept() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        // Rows applied before orgctl kept applied values, one row changed outside orgctl, one record's applied values edited.
        try store.connection.execute("UPDATE orgctl_resources SET applied = NULL WHERE kind IN ('tenant', 'webhook', 'member')")
        try store.connection.execute("UPDATE members SET role = 'viewer'")
        try store.connection.execute("UPDATE orgctl_resources SET applied = X'' WHERE kind = 'permission'")
        let before = try store.read().resources.filter(\.isDrifted).map(\.address)
        #expect(before == ["tenant/acme/member/alice@acme.com"])
        let summary = try Self.rekey(try temp.open())
        // The drifted member has no applied values: its digest cannot be recomputed; the edited record neither.
        #expect(summary.unverifiable == 2)
        let after = try Self.open(temp, key: Self.newKey).read().resources.filter(\.isDrifted).map(\.address)
        #expect(after == ["permission/apps.read", "tenant/acme/member/alice@acme.com"])
    }

    @Test("a dry run writes nothing; a secret sealed for another row refuses the rekey")
    func dryRunAndUnopenable() throws {
        let temp = try TemporaryStore()
        try Sample.applyAll(try temp.open())
        let bytes = try Data(contentsOf: URL(fileURLWithPath: temp.path))
        let dry = try Self.rekey(try temp.open(), dryRun: true)
        #expect(dry.auditSequence == nil && dry.secrets == 2)
        #expect(try Data(contentsOf: URL(fileURLWithPath: temp.path)) == bytes)
        #expect(try temp.open().read().resources.count == Sample.resources.count)  // the old key still works
        let store = try temp.open()
        try store.connection.execute("UPDATE webhooks SET secret_ciphertext = (SELECT client_secret_ciphertext FROM sso_providers)")
        #expect(throws: StateError.self) { _ = try Self.rekey(store) }
        #expect(try Self.open(temp, key: temp.key).read().resources.count == Sample.resources.count)
    }

    @Test("a broken audit chain refuses the rekey; an empty database (its key recorded when it was created) is rekeyed")
    func brokenChainAndNoKeyRecorded() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        try store.connection.execute("UPDATE orgctl_audit SET entry = CAST(replace(CAST(entry AS TEXT), 'test', 'TEST') AS BLOB) WHERE seq = 3")
        #expect { _ = try Self.rekey(try temp.open()) } throws: { ($0 as? StateError)?.message.contains("is broken at entry 3") == true }
        let empty = try TemporaryStore()
        _ = try empty.open()
        let summary = try Self.rekey(try empty.open())
        #expect(summary.secrets == 0 && summary.digests == 0 && summary.auditSequence == 1)
        #expect(try Self.open(empty, key: Self.newKey).read().resources.isEmpty)
    }
}
