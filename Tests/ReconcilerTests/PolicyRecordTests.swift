import Foundation
import Spec
import StateStore
import Testing

@testable import Reconciler

@Suite("policy record")
struct PolicyRecordTests {
    static func record(_ policies: String) throws -> PolicyRecord? {
        PolicyRecord.of(try PolicyFixture.configuration(policies: policies))
    }

    @Test("the digest covers what a rule requires and its level, not how it is written: order of set-like lists, spacing, flow or block style")
    func canonical() throws {
        let base = try #require(try Self.record("protectedResources: {addresses: [role/owner, \"tenant/*/member/bob@acme.com\"]}\nwebhookDomains: {allowedDomains: [a.com, b.com]}"))
        let reordered = try #require(try Self.record("webhookDomains:\n  allowedDomains: [b.com, a.com]\nprotectedResources:   {addresses: [\"tenant/*/member/bob@acme.com\", role/owner]}"))
        #expect(base == reordered)
        #expect(base.rules.keys.sorted() == ["protectedResources", "webhookDomains"])
        let wider = try #require(try Self.record("protectedResources: {addresses: [role/owner]}\nwebhookDomains: {allowedDomains: [a.com, b.com]}"))
        #expect(wider.digest != base.digest)
        #expect(PolicyChange(before: base, after: wider).changedRules == ["protectedResources"])
        let advisory = try #require(try Self.record("protectedResources: {addresses: [role/owner, \"tenant/*/member/bob@acme.com\"], enforcement: advisory}\nwebhookDomains: {allowedDomains: [a.com, b.com]}"))
        #expect(PolicyChange(before: base, after: advisory).changedRules == ["protectedResources"])
        var none = try PolicyFixture.configuration(policies: "minimumOwners: {count: 2}")
        none.platform?.policies = nil
        #expect(PolicyRecord.of(none) == nil, "no policies, no record")
    }

    @Test("the stored text reads back as the same record; a value orgctl did not write (bad digest, extra member, not JSON) reads as none")
    func storedText() throws {
        let record = try #require(try Self.record("minimumOwners: {count: 2}"))
        #expect(PolicyRecord(storedText: record.storedText) == record)
        #expect(record.storedText.hasPrefix("{\"digest\":\"sha256:") && !record.storedText.contains(" "))
        let forgedDigest = record.storedText.replacingOccurrences(of: record.digest, with: "sha256:" + String(repeating: "0", count: 64))
        #expect(PolicyRecord(storedText: forgedDigest) == nil)
        #expect(PolicyRecord(storedText: "forged") == nil)
        #expect(PolicyRecord(storedText: String(record.storedText.dropLast()) + ",\"x\":1}") == nil)
    }

    @Test("a plan records the configuration's policies when they differ from the recorded ones; its id covers the change; a saved plan keeps both")
    func planAndFile() throws {
        let configuration = try PolicyFixture.configuration(policies: "minimumOwners: {count: 2}")
        let desired = PolicyFixture.desired(configuration)
        let empty = StoredState(resources: [], auditHead: AuditHead(sequence: 0, hash: String(repeating: "0", count: 64)), databaseID: "db")
        let resources = Reconciler.plan(desired: desired, stored: empty)
        let configured = try #require(PolicyRecord.of(configuration))
        let recording = resources.recordingPolicies(configured)
        #expect(recording.policyChange == PolicyChange(before: nil, after: configured) && recording.recordedPolicies == nil)
        #expect(recording.id != resources.id)

        var recorded = empty
        recorded.recordedPolicies = configured.storedText
        let unchanged = Reconciler.plan(desired: desired, stored: recorded).recordingPolicies(configured)
        #expect(unchanged.policyChange == nil && unchanged.recordedPolicies == configured.digest)
        #expect(unchanged.id == resources.id, "no policy change: the id of the resources' plan")
        let removed = Reconciler.plan(desired: desired, stored: recorded).recordingPolicies(nil)
        #expect(removed.policyChange?.action == .delete && removed.isEmpty == false)
        #expect(Reconciler.plan(desired: desired, stored: recorded).recordingPolicies(configured).changes.isEmpty == false)

        let file = PlanFile(plan: removed, orgctlVersion: "test", source: "test")
        let decoded = try PlanFile.decode(try file.encoded()).plan()
        #expect(decoded.policyChange == removed.policyChange && decoded.recordedPolicies == configured.digest && decoded.id == removed.id)
    }
}
