import Spec
import StateStore
import Testing

@testable import Reconciler

@Suite("drift")
struct DriftTests {
    /// The stored state with `bob` changed to `role: viewer` outside orgctl after orgctl applied `role: admin`.
    func driftedBob() -> (StoredState, [String: AppliedResource]) {
        let bobNow = Fixture.resource("tenant/acme/member/bob@acme.com", .member, parent: "tenant/acme", ["role": .string("viewer")])
        let stored = Fixture.stored([Fixture.acme, Fixture.alice, bobNow], drifted: [bobNow.address])
        let applied = [bobNow.address: AppliedResource(address: bobNow.address, kind: .member,
                                                       attributes: [Attribute("role", .string("admin"))], auditSequence: 5)]
        return (stored, applied)
    }

    func report(_ desired: DesiredState, _ stored: StoredState, _ applied: [String: AppliedResource]) -> DriftReport {
        Reconciler.drift(plan: Reconciler.plan(desired: desired, stored: stored), stored: stored, applied: applied)
    }

    @Test("a row changed outside orgctl is drift, field by field as applied and now; reverting it is not a pending change")
    func changedRowIsDriftOnly() {
        let (stored, applied) = driftedBob()
        let result = report(Fixture.desired([Fixture.acme, Fixture.alice, Fixture.bob]), stored, applied)
        #expect(result.drifted.count == 1)
        #expect(result.drifted.first?.drift == .changed)
        #expect(result.drifted.first?.auditSequence == 5)
        #expect(result.drifted.first?.fields == [DriftReport.Field(name: "role", applied: .string("admin"), now: .string("viewer"))])
        #expect(result.pending.isEmpty)
        #expect(result.plan.changes.count == 1, "apply still reverts it")
    }

    @Test("a configuration change on a drifted row is pending from what orgctl applied, apart from the drift")
    func configurationChangeOnADriftedRow() {
        let (stored, applied) = driftedBob()
        let bobOwner = Fixture.resource("tenant/acme/member/bob@acme.com", .member, parent: "tenant/acme", ["role": .string("owner")])
        let result = report(Fixture.desired([Fixture.acme, Fixture.alice, bobOwner]), stored, applied)
        #expect(result.drifted.count == 1)
        #expect(result.pending.count == 1)
        #expect(result.pending.first?.fields == [FieldChange(name: "role", before: .string("admin"), after: .string("owner"))])
    }

    @Test("rows added outside orgctl count in managed collections only; rows deleted outside orgctl show what was applied")
    func addedAndDeletedRows() {
        let carol = Fixture.resource("tenant/acme/member/carol@acme.com", .member, parent: "tenant/acme", ["role": .string("owner")])
        let hook = Fixture.resource("tenant/acme/webhook/x", .webhook, parent: "tenant/acme", ["url": .string("https://x.example.com")])
        var stored = Fixture.stored([Fixture.acme, Fixture.alice, carol, hook], unknown: [carol.address, hook.address])
        stored.missingApplied = [Fixture.bob.address]
        let applied = [Fixture.bob.address: AppliedResource(address: Fixture.bob.address, kind: .member,
                                                            attributes: [Attribute("role", .string("admin"))], auditSequence: 3)]
        let result = report(Fixture.desired([Fixture.acme, Fixture.alice, Fixture.bob]), stored, applied)
        #expect(result.drifted.map(\.address) == [Fixture.bob.address, carol.address])
        #expect(result.drifted.map(\.drift) == [.deleted, .added])
        #expect(result.drifted[0].fields == [DriftReport.Field(name: "role", applied: .string("admin"), now: .null)])
        #expect(result.pending.isEmpty, "re-creating bob as applied and deleting carol only revert drift")
    }

    @Test("a row equal to the configuration that orgctl never wrote is adopted, not updated")
    func adoption() {
        let stored = Fixture.stored([Fixture.acme, Fixture.alice], unknown: [Fixture.acme.address, Fixture.alice.address])
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice]), stored: stored)
        #expect(plan.changes.map(\.action) == [.adopt, .adopt])
        #expect(plan.summary == "Plan: 0 to add, 0 to change, 0 to destroy, 2 to adopt.")
        #expect(plan.changes.allSatisfy { !$0.changedOutside })
    }
}

@Suite("export")
struct ExportTests {
    @Test("names from a database orgctl did not write never lead out of the output folder, and never share a file")
    func unsafeNamesStayInside() {
        let tenants = ["../../etc/passwd", "a/b", "a_b", "A.B"].map {
            Resource(address: "tenant/\($0)", kind: .tenant, parent: nil, attributes: [Attribute("plan", .string("free"))])
        }
        let exporter = ConfigurationExporter(resources: tenants)
        let paths = exporter.files.map(\.path)
        #expect(Set(paths).count == paths.count)
        #expect(paths.allSatisfy { !$0.contains("..") && ($0 == "platform.yaml" || $0.hasPrefix("tenants/")) && $0.split(separator: "/").count <= 2 })
        // The slug itself is kept, quoted, inside the file.
        #expect(exporter.files.contains { $0.text.contains("slug: \"../../etc/passwd\"") })
    }
}
