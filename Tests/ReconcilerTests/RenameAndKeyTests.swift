import Crypto
import Foundation
import Spec
import StateStore
import Testing

@testable import Reconciler

/// Renames (`previously:`) and API key issuance in plans: what the user reviews before apply.
@Suite("renames and API keys in plans")
struct RenameAndKeyTests {
    static func tenant(_ slug: String) -> Resource {
        Fixture.resource("tenant/\(slug)", .tenant, ["plan": .string("business"), "name": .string("Acme")],
                         collections: ["tenant/\(slug)/member", "tenant/\(slug)/team", "tenant/\(slug)/role"])
    }

    /// A tenant with a role, a member, two nested teams and a team membership.
    static func tree(_ slug: String, team: String = "core", role: String = "billing") -> [Resource] {
        let t = "tenant/\(slug)"
        return [
            tenant(slug),
            Fixture.resource("\(t)/role/\(role)", .tenantRole, parent: t, ["permissions": .list(["billing.manage"])]),
            Fixture.resource("\(t)/member/alice@acme.com", .member, parent: t, ["role": .string(role), "expires": .null]),
            Fixture.resource("\(t)/team/\(team)", .team, parent: t, ["parent": .null, "name": .string("Core")],
                             collections: ["\(t)/team/\(team)/member"]),
            Fixture.resource("\(t)/team/sre", .team, parent: t, ["parent": .string(team)]),
            Fixture.resource("\(t)/team/\(team)/member/alice@acme.com", .teamMember, parent: "\(t)/team/\(team)", ["role": .string("lead")]),
        ]
    }

    static func desired(_ resources: [Resource], renames: [DesiredRename]) -> DesiredState {
        var state = Fixture.desired(resources)
        state.renames = renames
        return state
    }

    static func rename(_ address: String, _ kind: ResourceKind, parent: String? = nil, from previous: String...) -> DesiredRename {
        DesiredRename(address: address, kind: kind, parent: parent,
                      previously: previous.enumerated().map { Located($0.element, at: SourceLocation(file: "t.yaml", line: 3 + $0.offset, column: 14)) })
    }

    @Test("a tenant rename is one update that keeps every child: no create, no delete")
    func tenantRename() throws {
        let plan = Reconciler.plan(desired: Self.desired(Self.tree("acme-corp"), renames: [Self.rename("tenant/acme-corp", .tenant, from: "tenant/acme")]),
                                   stored: Fixture.stored(Self.tree("acme")))
        #expect(plan.diagnostics.isEmpty)
        #expect(plan.changes.count == 1)
        let change = try #require(plan.changes.first)
        #expect(change.action == .update)
        #expect(change.address == "tenant/acme-corp")
        #expect(change.renamedFrom == "tenant/acme")
        #expect(change.fields.isEmpty)
        #expect(change.beforeDigest == ResourceDigest.of(Self.tenant("acme")).description)
        // The plan applies to the state it was made from: renamed rows are found under their old addresses.
        #expect(Reconciler.staleAddresses(plan, current: Fixture.stored(Self.tree("acme"))).isEmpty)
    }

    @Test("a team rename keeps its memberships and the sub-team that names it as parent")
    func teamRename() throws {
        let plan = Reconciler.plan(
            desired: Self.desired(Self.tree("acme", team: "platform"), renames: [Self.rename("tenant/acme/team/platform", .team, parent: "tenant/acme", from: "tenant/acme/team/core")]),
            stored: Fixture.stored(Self.tree("acme")))
        #expect(plan.changes.map(\.address) == ["tenant/acme/team/platform"])
        #expect(plan.changes.first?.renamedFrom == "tenant/acme/team/core")
        #expect(plan.changes.allSatisfy { $0.action == .update })
    }

    @Test("a role rename changes the members that name it, and nothing else")
    func roleRename() throws {
        let plan = Reconciler.plan(
            desired: Self.desired(Self.tree("acme", role: "finance"), renames: [Self.rename("tenant/acme/role/finance", .tenantRole, parent: "tenant/acme", from: "tenant/acme/role/billing")]),
            stored: Fixture.stored(Self.tree("acme")))
        #expect(plan.changes.map(\.address) == ["tenant/acme/member/alice@acme.com", "tenant/acme/role/finance"])
        #expect(plan.changes.map(\.action) == [.update, .update])
        #expect(plan.changes[1].renamedFrom == "tenant/acme/role/billing")
        #expect(plan.changes[0].fields == [FieldChange(name: "role", before: .string("billing"), after: .string("finance"))])
    }

    @Test("a tenant and one of its teams renamed together, with a field change below both")
    func nestedRenames() throws {
        var desired = Self.tree("acme-corp", team: "platform")
        desired[2].attributes = [Attribute("expires", .null), Attribute("role", .string("owner"))]
        let plan = Reconciler.plan(
            desired: Self.desired(desired, renames: [
                Self.rename("tenant/acme-corp", .tenant, from: "tenant/acme"),
                Self.rename("tenant/acme-corp/team/platform", .team, parent: "tenant/acme-corp", from: "tenant/acme-corp/team/core"),
            ]),
            stored: Fixture.stored(Self.tree("acme")))
        #expect(plan.diagnostics.isEmpty)
        #expect(plan.changes.map(\.address) == ["tenant/acme-corp", "tenant/acme-corp/member/alice@acme.com", "tenant/acme-corp/team/platform"])
        #expect(plan.changes.map(\.renamedFrom) == ["tenant/acme", nil, "tenant/acme/team/core"])
        let renames = Renames(plan.changes)
        #expect(renames.stored("tenant/acme-corp/team/platform/member/alice@acme.com") == "tenant/acme/team/core/member/alice@acme.com")
        #expect(renames.current("tenant/acme/team/core/member/alice@acme.com") == "tenant/acme-corp/team/platform/member/alice@acme.com")
        #expect(renames.current("tenant/acme/team/sre") == "tenant/acme-corp/team/sre")
        #expect(renames.current("tenant/acmex") == "tenant/acmex")
        #expect(Reconciler.staleAddresses(plan, current: Fixture.stored(Self.tree("acme"))).isEmpty)
        // The member's update is checked against the row as it is stored: a change to it makes the plan stale.
        var moved = Self.tree("acme")
        moved[2].attributes = [Attribute("role", .string("viewer"))]
        #expect(Reconciler.staleAddresses(plan, current: Fixture.stored(moved)) == ["tenant/acme-corp/member/alice@acme.com"])
    }

    @Test("an earlier slug that matches nothing stored is a warning, and nothing is renamed")
    func unmatchedIsAWarning() throws {
        let plan = Reconciler.plan(desired: Self.desired([Self.tenant("acme")], renames: [Self.rename("tenant/acme", .tenant, from: "tenant/gone")]),
                                   stored: Fixture.stored([Self.tenant("acme")]))
        #expect(plan.isEmpty)
        let warning = try #require(plan.diagnostics.first)
        #expect(plan.diagnostics.count == 1)
        #expect(warning.severity == .warning)
        #expect(warning.id == "spec.rename-unmatched")
        #expect(warning.location == SourceLocation(file: "t.yaml", line: 3, column: 14))
        #expect(!plan.hasErrors)
    }

    @Test("two stored tenants matched by one rename is an error at the second earlier slug")
    func twoMatchesIsAnError() throws {
        let plan = Reconciler.plan(desired: Self.desired([Self.tenant("c")], renames: [Self.rename("tenant/c", .tenant, from: "tenant/a", "tenant/b")]),
                                   stored: Fixture.stored([Self.tenant("a"), Self.tenant("b")]))
        #expect(plan.hasErrors)
        let error = try #require(plan.diagnostics.first { $0.severity == .error })
        #expect(error.id == "spec.rename-ambiguous")
        #expect(error.location == SourceLocation(file: "t.yaml", line: 4, column: 14))
        #expect(error.message.contains("tenant/a") && error.message.contains("tenant/b"))
        #expect(!plan.changes.contains { $0.renamedFrom != nil })
    }

    @Test("the new and the old address both stored is an error")
    func newAndOldStoredIsAnError() throws {
        let plan = Reconciler.plan(desired: Self.desired([Self.tenant("b")], renames: [Self.rename("tenant/b", .tenant, from: "tenant/a")]),
                                   stored: Fixture.stored([Self.tenant("a"), Self.tenant("b")]))
        #expect(plan.diagnostics.map(\.id) == ["spec.rename-ambiguous"])
        #expect(plan.hasErrors)
    }

    @Test("10,000 renamed tenants plan as 10,000 renames, each keeping its children")
    func manyRenames() throws {
        let count = 10_000
        var stored: [Resource] = []
        var desired: [Resource] = []
        var renames: [DesiredRename] = []
        for i in 0..<count {
            stored += [Self.tenant("t\(i)"), Fixture.resource("tenant/t\(i)/member/a@x.com", .member, parent: "tenant/t\(i)", ["role": .string("owner")])]
            desired += [Self.tenant("n\(i)"), Fixture.resource("tenant/n\(i)/member/a@x.com", .member, parent: "tenant/n\(i)", ["role": .string("owner")])]
            renames.append(Self.rename("tenant/n\(i)", .tenant, from: "tenant/t\(i)"))
        }
        let plan = Reconciler.plan(desired: Self.desired(desired, renames: renames), stored: Fixture.stored(stored))
        #expect(plan.changes.count == count)
        #expect(plan.changes.allSatisfy { $0.action == .update && $0.renamedFrom == "tenant/t" + $0.address.dropFirst("tenant/n".count) })
        #expect(plan.diagnostics.isEmpty)
    }

    @Test("a targeted change below a renamed tenant keeps the tenant's rename")
    func targetingKeepsAncestorRenames() throws {
        var desired = Self.tree("acme-corp")
        desired[2].attributes = [Attribute("expires", .null), Attribute("role", .string("owner"))]
        let plan = Reconciler.plan(desired: Self.desired(desired, renames: [Self.rename("tenant/acme-corp", .tenant, from: "tenant/acme")]),
                                   stored: Fixture.stored(Self.tree("acme")))
            .filtered(targets: [AddressPattern("tenant/*/member/*")], excludes: [])
        #expect(plan.changes.map(\.address) == ["tenant/acme-corp", "tenant/acme-corp/member/alice@acme.com"])
    }

    @Test("a saved plan round-trips renames and key issues")
    func savedPlanRoundTrip() throws {
        let key = Fixture.resource("tenant/acme-corp/apikey/ci", .apiKey, parent: "tenant/acme-corp", ["scopes": .list(["apps.read"])])
        let plan = Reconciler.plan(desired: Self.desired(Self.tree("acme-corp") + [key], renames: [Self.rename("tenant/acme-corp", .tenant, from: "tenant/acme")]),
                                   stored: Fixture.stored(Self.tree("acme")))
        let file = PlanFile(plan: plan, orgctlVersion: "test", source: "test")
        let decoded = try PlanFile.decode(try file.encoded()).plan()
        #expect(decoded.changes.map(\.renamedFrom) == plan.changes.map(\.renamedFrom))
        #expect(decoded.changes.map(\.key) == [nil, .issue])
        #expect(decoded.id == plan.id)
    }

    // MARK: API keys

    static func key(_ attributes: [String: Value]) -> Resource {
        Fixture.resource("tenant/acme/apikey/ci", .apiKey, parent: "tenant/acme", attributes)
    }

    static let material: [String: Value] = [KeyMaterial.prefixAttribute: .string("sk_live_AbCd"), KeyMaterial.hashAttribute: .string("ab12")]

    static func keyPlan(desired: [String: Value], stored: [String: Value]?) -> Change? {
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, key(desired)]),
                                   stored: Fixture.stored([Fixture.acme] + (stored.map { [key($0)] } ?? [])))
        return plan.changes.first { $0.kind == .apiKey }
    }

    @Test("a new key will be issued; an issued, unchanged key plans nothing")
    func newAndUnchangedKeys() {
        let scopes: [String: Value] = ["scopes": .list(["apps.read"])]
        #expect(Self.keyPlan(desired: scopes, stored: nil)?.key == .issue)
        #expect(Self.keyPlan(desired: scopes, stored: scopes.merging(Self.material) { a, _ in a }) == nil)
        // Stored without material (before orgctl issued keys, or adopted from the platform, whose keys
        // live elsewhere): nothing is issued unasked; raising rotate issues one.
        #expect(Self.keyPlan(desired: scopes, stored: scopes) == nil)
        let asked = Self.keyPlan(desired: scopes.merging(["rotate": .int(1)]) { a, _ in a }, stored: scopes)
        #expect(asked?.key == .rotate)
        #expect(asked?.action == .update)
    }

    @Test("raising rotate rotates the key; lowering it only records the counter")
    func rotateCounter() {
        let stored = Self.material.merging(["scopes": .list(["apps.read"]), "rotate": .int(1)]) { a, _ in a }
        #expect(Self.keyPlan(desired: ["scopes": .list(["apps.read"]), "rotate": .int(2)], stored: stored)?.key == .rotate)
        let lowered = Self.keyPlan(desired: ["scopes": .list(["apps.read"]), "rotate": .int(0)], stored: stored)
        #expect(lowered?.key == nil)
        #expect(lowered?.fields.map(\.name) == ["rotate"])
        // A first counter on an issued key counts from 0.
        #expect(Self.keyPlan(desired: ["scopes": .list(["apps.read"]), "rotate": .int(1)],
                             stored: Self.material.merging(["scopes": .list(["apps.read"])]) { a, _ in a })?.key == .rotate)
    }

    @Test("a scope change rotates the key only with rotateOnScopeChange")
    func scopeChange() {
        let stored = Self.material.merging(["scopes": .list(["apps.read"])]) { a, _ in a }
        #expect(Self.keyPlan(desired: ["scopes": .list(["apps.create"]), "rotateOnScopeChange": .bool(true)], stored: stored)?.key == .rotate)
        let plain = Self.keyPlan(desired: ["scopes": .list(["apps.create"])], stored: stored)
        #expect(plain?.key == nil)
        #expect(plain?.fields.map(\.name) == ["scopes"])
        // The stored rule applies while the configuration does not write it.
        let rule = stored.merging(["rotateOnScopeChange": .bool(true)]) { a, _ in a }
        #expect(Self.keyPlan(desired: ["scopes": .list(["apps.create"])], stored: rule)?.key == .rotate)
    }

    @Test("a deleted key's material is not shown in the plan")
    func deletedKeyHidesMaterial() throws {
        var acme = Fixture.acme
        acme.managedCollections.append("tenant/acme/apikey")
        let plan = Reconciler.plan(desired: Fixture.desired([acme]),
                                   stored: Fixture.stored([acme, Self.key(Self.material.merging(["scopes": .list(["apps.read"])]) { a, _ in a })]))
        let change = try #require(plan.changes.first { $0.kind == .apiKey })
        #expect(change.action == .delete)
        #expect(change.fields.map(\.name) == ["scopes"])
    }

    @Test("issued keys: sk_live_ + base62 of 32 random bytes; prefix and SHA-256 of the key; fresh each time")
    func keyFormat() throws {
        let key = try IssuedKey()
        #expect(key.plaintext.wholeMatch(of: /sk_live_[0-9A-Za-z]{40,44}/) != nil)
        #expect(key.prefix == String(key.plaintext.prefix(12)))
        #expect(key.sha256 == Hex.encode(SHA256.hash(Array(key.plaintext.utf8))))
        #expect(!key.description.contains(key.plaintext) && !"\(key)".contains(key.plaintext) && !String(reflecting: key).contains(key.plaintext))
        #expect(try IssuedKey().plaintext != key.plaintext)
        // Known bytes give the documented encoding.
        let zero = IssuedKey(random: [UInt8](repeating: 0, count: 32))
        #expect(zero.plaintext == "sk_live_" + String(repeating: "0", count: 32))
    }
}
