import Spec
import StateStore
import Testing

@testable import Reconciler

@Suite("tenant deletion guard")
struct TenantDeletionGuardTests {
    /// acme with `members` members, and a platform role.
    static func state(members: Int) -> [Resource] {
        var resources = [Fixture.acme, Fixture.resource("role/auditor", .role, ["description": .string("x")])]
        for index in 0..<members {
            resources.append(Fixture.resource("tenant/acme/member/m\(index)@acme.com", .member, parent: "tenant/acme", ["role": .string("member")]))
        }
        return resources
    }

    @Test("removing a tenant deletes it and all it holds: protected unless allowed by slug")
    func wholeTenant() {
        let stored = Fixture.stored(Self.state(members: 3))
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.resource("role/auditor", .role, ["description": .string("x")])]), stored: stored)
        #expect(plan.count(.delete) == 4)
        let found = Reconciler.tenantDeletions(plan, stored: stored, policy: TenantDeletionPolicy())
        #expect(found == [TenantDeletion(slug: "acme", wholeTenant: true, deletes: 4, held: 4, confirmed: false)])
        #expect(Reconciler.tenantDeletions(plan, stored: stored, policy: TenantDeletionPolicy(allowed: ["globex"])).first?.confirmed == false)
        #expect(Reconciler.tenantDeletions(plan, stored: stored, policy: TenantDeletionPolicy(allowed: ["acme"])).first?.confirmed == true)
        // Without the state (a saved plan shown on its own), the whole-tenant deletion is still found.
        #expect(Reconciler.tenantDeletions(plan, stored: nil, policy: TenantDeletionPolicy()).map(\.slug) == ["acme"])
    }

    @Test("a share above the limit with at least 10 deletions is protected; at the limit, or fewer than 10, it is not",
          arguments: [(members: 20, kept: 9, percent: 50, protected: true),   // 11 of 21 deleted: 52%
                      (members: 21, kept: 11, percent: 50, protected: false), // 10 of 22: 45%
                      (members: 19, kept: 10, percent: 50, protected: false), // 9 of 20: fewer than 10
                      (members: 20, kept: 10, percent: 40, protected: true),  // 10 of 21 over 40%
                      (members: 20, kept: 0, percent: 100, protected: false)])
    func share(members: Int, kept: Int, percent: Int, protected: Bool) {
        let all = Self.state(members: members)
        let stored = Fixture.stored(all)
        let desired = Array(all.prefix(2 + kept))
        let plan = Reconciler.plan(desired: Fixture.desired(desired), stored: stored)
        #expect(plan.count(.delete) == members - kept)
        let found = Reconciler.tenantDeletions(plan, stored: stored, policy: TenantDeletionPolicy(maxPercent: percent))
        #expect(found.isEmpty == !protected, "\(found)")
        if protected { #expect(found.first?.wholeTenant == false && found.first?.held == members + 1) }
    }

    @Test("a renamed tenant's deletions are counted against what it holds under its new address")
    func renamedTenant() {
        let renamed = Fixture.resource("tenant/acme2", .tenant, ["plan": .string("business"), "name": .string("Acme")],
                                       collections: ["tenant/acme2/member", "tenant/acme2/team"])
        let stored = Fixture.stored(Self.state(members: 14))
        var desired = [renamed, Fixture.resource("role/auditor", .role, ["description": .string("x")])]
        for index in 0..<3 {
            desired.append(Fixture.resource("tenant/acme2/member/m\(index)@acme.com", .member, parent: "tenant/acme2", ["role": .string("member")]))
        }
        var state = Fixture.desired(desired)
        state.renames = [DesiredRename(address: "tenant/acme2", kind: .tenant, parent: nil,
                                       previously: [Located("tenant/acme", at: SourceLocation(file: "t.yaml", line: 3, column: 14))])]
        let plan = Reconciler.plan(desired: state, stored: stored)
        #expect(plan.changes.contains { $0.renamedFrom == "tenant/acme" })
        let found = Reconciler.tenantDeletions(plan, stored: stored, policy: TenantDeletionPolicy())
        #expect(found == [TenantDeletion(slug: "acme2", wholeTenant: false, deletes: 11, held: 15, confirmed: false)], "\(plan.changes.map(\.address))")
    }
}
