import Crypto
import Foundation
import Spec
import StateStore
import Testing

@testable import Reconciler

/// Builders for small desired and stored states.
enum Fixture {
    static func resource(_ address: String, _ kind: ResourceKind, parent: String? = nil, _ attributes: [String: Value] = [:],
                         collections: [String] = []) -> Resource {
        Resource(address: address, kind: kind, parent: parent, attributes: attributes.map { Attribute($0.key, $0.value) },
                 managedCollections: collections)
    }

    static func desired(_ resources: [Resource], collections: Set<String> = []) -> DesiredState {
        var managed: Set<String> = ["plan", "permission", "event", "role", "tenant"]
        managed.formUnion(collections)
        for r in resources { managed.formUnion(r.managedCollections) }
        return DesiredState(resources: resources.sorted { $0.address < $1.address }, managedCollections: managed, secretSources: [:])
    }

    /// Stored resources as orgctl last applied them (applied digest = current digest), unless `drifted`.
    static func stored(_ resources: [Resource], drifted: Set<String> = [], unknown: Set<String> = []) -> StoredState {
        let stored = resources.sorted { $0.address < $1.address }.enumerated().map { index, r in
            let digest = ResourceDigest.of(r)
            let applied: Digest? = unknown.contains(r.address) ? nil : drifted.contains(r.address) ? Digest(hex: String(repeating: "0", count: 64)) : digest
            return StoredResource(resource: r, rowID: Int64(index + 1), digest: digest, appliedDigest: applied)
        }
        return StoredState(resources: stored, auditHead: AuditHead(sequence: 7, hash: String(repeating: "a", count: 64)), databaseID: "db1")
    }

    static let acme = resource("tenant/acme", .tenant, ["plan": .string("business"), "name": .string("Acme")],
                               collections: ["tenant/acme/member", "tenant/acme/team"])
    static let alice = resource("tenant/acme/member/alice@acme.com", .member, parent: "tenant/acme", ["role": .string("owner")])
    static let bob = resource("tenant/acme/member/bob@acme.com", .member, parent: "tenant/acme", ["role": .string("admin")])
}

@Suite("plan")
struct PlanTests {
    @Test("an empty state plans a create per resource, parents first")
    func createsEverything() {
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.alice, Fixture.acme]), stored: Fixture.stored([]))
        #expect(plan.changes.map(\.address) == ["tenant/acme", "tenant/acme/member/alice@acme.com"])
        #expect(plan.changes.allSatisfy { $0.action == .create })
        #expect(plan.summary == "Plan: 2 to add, 0 to change, 0 to destroy.")
        let fields = plan.changes[0].fields.map(\.name)
        #expect(fields == ["name", "plan"])
    }

    @Test("identical desired and stored state plans nothing")
    func noChanges() {
        let resources = [Fixture.acme, Fixture.alice]
        let plan = Reconciler.plan(desired: Fixture.desired(resources), stored: Fixture.stored(resources))
        #expect(plan.isEmpty)
        #expect(plan.summary == "Plan: 0 to add, 0 to change, 0 to destroy.")
    }

    @Test("a changed field is an update with before and after")
    func fieldUpdate() {
        var changed = Fixture.alice
        changed.attributes = [Attribute("role", .string("admin"))]
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, changed]), stored: Fixture.stored([Fixture.acme, Fixture.alice]))
        #expect(plan.changes.count == 1)
        #expect(plan.changes[0].action == .update)
        #expect(plan.changes[0].fields == [FieldChange(name: "role", before: .string("owner"), after: .string("admin"))])
        #expect(plan.changes[0].beforeDigest == ResourceDigest.of(Fixture.alice).description)
    }

    @Test("a field absent from the configuration is not managed")
    func absentFieldUnmanaged() {
        let stored = Fixture.resource("tenant/acme", .tenant, ["plan": .string("business"), "name": .string("Acme"), "status": .string("suspended")])
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme]), stored: Fixture.stored([stored]))
        #expect(plan.isEmpty)
    }

    @Test("a field of a declared section that is left out is cleared")
    func nullClears() {
        let desired = Fixture.resource("tenant/acme", .tenant, ["plan": .string("business"), "branding.logoUrl": .null])
        let stored = Fixture.resource("tenant/acme", .tenant, ["plan": .string("business"), "branding.logoUrl": .string("https://x.example/l.png")])
        let plan = Reconciler.plan(desired: Fixture.desired([desired]), stored: Fixture.stored([stored]))
        #expect(plan.changes.first?.fields == [FieldChange(name: "branding.logoUrl", before: .string("https://x.example/l.png"), after: .null)])
    }

    @Test("stored children of an unmanaged collection are left alone")
    func unmanagedCollection() {
        let tenant = Fixture.resource("tenant/acme", .tenant, ["plan": .string("business")])  // no members section
        let plan = Reconciler.plan(desired: Fixture.desired([tenant]), stored: Fixture.stored([tenant, Fixture.alice]))
        #expect(plan.isEmpty)
    }

    @Test("stored children of a managed collection that the configuration omits are deleted")
    func managedCollectionDeletes() {
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice]),
                                   stored: Fixture.stored([Fixture.acme, Fixture.alice, Fixture.bob]))
        #expect(plan.changes.map(\.address) == ["tenant/acme/member/bob@acme.com"])
        #expect(plan.changes[0].action == .delete)
        #expect(plan.changes[0].fields == [FieldChange(name: "role", before: .string("admin"), after: .null)])
        #expect(plan.changes[0].reason == nil)
    }

    @Test("deleting a tenant deletes its children first, each with a reason")
    func cascadeDelete() {
        let team = Fixture.resource("tenant/acme/team/core", .team, parent: "tenant/acme", ["name": .string("Core")])
        let teamMember = Fixture.resource("tenant/acme/team/core/member/alice@acme.com", .teamMember, parent: "tenant/acme/team/core",
                                          ["role": .string("lead")])
        let other = Fixture.resource("tenant/zeta", .tenant, ["plan": .string("free")])
        let plan = Reconciler.plan(desired: Fixture.desired([other]),
                                   stored: Fixture.stored([Fixture.acme, Fixture.alice, team, teamMember, other]))
        #expect(plan.changes.map(\.address) == [
            "tenant/acme/team/core/member/alice@acme.com", "tenant/acme/team/core", "tenant/acme/member/alice@acme.com", "tenant/acme",
        ])
        #expect(plan.changes.allSatisfy { $0.action == .delete })
        #expect(plan.changes[2].reason == "tenant/acme is deleted")
        #expect(plan.changes[3].reason == nil)
    }

    @Test("removing a member also removes its team memberships, even in a team whose members are unmanaged")
    func memberRemovalCascadesToTeams() {
        let team = Fixture.resource("tenant/acme/team/core", .team, parent: "tenant/acme", ["name": .string("Core")])  // members not managed
        let teamMember = Fixture.resource("tenant/acme/team/core/member/bob@acme.com", .teamMember, parent: "tenant/acme/team/core",
                                          ["role": .string("member")])
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice, team]),
                                   stored: Fixture.stored([Fixture.acme, Fixture.alice, Fixture.bob, team, teamMember]))
        #expect(plan.changes.map(\.address) == ["tenant/acme/team/core/member/bob@acme.com", "tenant/acme/member/bob@acme.com"])
        #expect(plan.changes[0].reason == "tenant/acme/member/bob@acme.com is deleted")
    }

    @Test("a row changed outside orgctl is marked and its reversal explained")
    func driftMarked() {
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice]),
                                   stored: Fixture.stored([Fixture.acme, Fixture.bob.renamed("tenant/acme/member/alice@acme.com")],
                                                          drifted: ["tenant/acme/member/alice@acme.com"]))
        #expect(plan.changes.count == 1)
        #expect(plan.changes[0].changedOutside)
        #expect(plan.changes[0].reason == "changed outside orgctl")
        #expect(plan.drift.keys.contains("tenant/acme/member/alice@acme.com"))
    }

    @Test("the plan id depends only on the database, its audit head and the changes")
    func deterministicID() {
        let desired = Fixture.desired([Fixture.acme, Fixture.alice])
        let a = Reconciler.plan(desired: desired, stored: Fixture.stored([]))
        let b = Reconciler.plan(desired: desired, stored: Fixture.stored([]))
        #expect(a.id == b.id)
        let c = Reconciler.plan(desired: Fixture.desired([Fixture.acme]), stored: Fixture.stored([]))
        #expect(a.id != c.id)
    }

    @Test("the plan id is SHA-256 over one line per change and field (saved plans and audit entries carry it)")
    func idFormula() {
        // Enough changes that the id's hashing buffer fills several times.
        let changes = (0..<3000).map { (index: Int) -> Change in
            let updated = index % 3 == 0
            let role = FieldChange(name: "role", before: updated ? .string("viewer") : .null, after: .string("admin"))
            let token = FieldChange(name: "token", before: .null, after: .secret(fingerprint: "fp\(index)"))
            let from: String? = index % 7 == 0 ? "tenant/t\(index)/member/old@example.com" : nil
            let key: KeyIssue? = index % 11 == 0 ? .issue : nil
            return Change(address: "tenant/t\(index)/member/m\(index)@example.com", kind: .member, parent: "tenant/t\(index)",
                          action: updated ? .update : .create, fields: [role, token], renamedFrom: from, key: key)
        }
        var text = "db-1\n42\n\(String(repeating: "ab", count: 32))\n"
        for change in changes {
            text += "\(change.action.rawValue) \(change.address)\n"
            if let from = change.renamedFrom { text += "renamed-from \(from)\n" }
            if let key = change.key { text += "key \(key.rawValue)\n" }
            for field in change.fields {
                let before = field.before == .null ? "(none)" : "\"viewer\""
                let after = if case .secret(let print) = field.after { "secret:\(print)" } else { "\"admin\"" }
                text += "\(field.name)=\(before)>\(after)\n"
            }
        }
        let expected = String(Hex.encode(SHA256.hash(Array(text.utf8))).prefix(16))
        #expect(Reconciler.planID(databaseID: "db-1", auditHead: AuditHead(sequence: 42, hash: String(repeating: "ab", count: 32)), changes: changes) == expected)
    }
}

@Suite("staleness")
struct StalenessTests {
    @Test("a plan is fresh against the state it was made from")
    func fresh() {
        let stored = Fixture.stored([Fixture.acme, Fixture.bob])
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice]), stored: stored)
        #expect(Reconciler.staleAddresses(plan, current: stored).isEmpty)
    }

    @Test("a row the plan changes that moved since is named")
    func changedRow() {
        var changed = Fixture.alice
        changed.attributes = [Attribute("role", .string("viewer"))]
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, changed]), stored: Fixture.stored([Fixture.acme, Fixture.alice]))
        var moved = Fixture.alice
        moved.attributes = [Attribute("role", .string("admin"))]
        let now = Fixture.stored([Fixture.acme, moved], drifted: [moved.address])
        #expect(Reconciler.staleAddresses(plan, current: now) == ["tenant/acme/member/alice@acme.com"])
    }

    @Test("a row the plan creates that now exists is named")
    func createTargetExists() {
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice]), stored: Fixture.stored([Fixture.acme]))
        let now = Fixture.stored([Fixture.acme, Fixture.alice], unknown: [Fixture.alice.address])
        #expect(Reconciler.staleAddresses(plan, current: now) == ["tenant/acme/member/alice@acme.com"])
    }

    @Test("a row the plan does not touch but that changed outside orgctl is named")
    func unrelatedDrift() {
        let other = Fixture.resource("tenant/zeta", .tenant, ["plan": .string("free")])
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice, other]), stored: Fixture.stored([Fixture.acme, other]))
        var edited = other
        edited.attributes = [Attribute("plan", .string("business"))]
        let now = Fixture.stored([Fixture.acme, edited], drifted: ["tenant/zeta"])
        #expect(Reconciler.staleAddresses(plan, current: now) == ["tenant/zeta"])
    }
}

@Suite("targeting")
struct TargetingTests {
    @Test(arguments: [
        ("tenant/acme/**", "tenant/acme/member/a@acme.com", true),
        ("tenant/acme/**", "tenant/acme", true),
        ("tenant/acme/**", "tenant/acme-corp", false),
        ("tenant/*", "tenant/acme", true),
        ("tenant/*", "tenant/acme/member/a@acme.com", false),
        ("tenant/*/member/*@acme.com", "tenant/x/member/bob@acme.com", true),
        ("tenant/*/member/*@acme.com", "tenant/x/team/t/member/bob@acme.com", false),
        ("**/member/bob@acme.com", "tenant/x/team/t/member/bob@acme.com", true),
        ("plan/business", "plan/business", true),
        ("plan/business", "plan/business-plus", false),
    ])
    func patterns(pattern: String, address: String, matches: Bool) {
        #expect(AddressPattern(pattern).matches(address) == matches)
    }

    @Test("a pattern naming a resource selects its children too")
    func selectsChildren() {
        #expect(AddressPattern("tenant/acme").selects("tenant/acme/member/a@acme.com"))
        #expect(!AddressPattern("tenant/acme").selects("tenant/acme-corp"))
    }

    @Test("a targeted create keeps the create of its parent")
    func keepsParents() {
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice, Fixture.bob]), stored: Fixture.stored([]))
        let filtered = plan.filtered(targets: [AddressPattern("tenant/acme/member/bob@acme.com")], excludes: [])
        #expect(filtered.changes.map(\.address) == ["tenant/acme", "tenant/acme/member/bob@acme.com"])
    }

    @Test("excludes win over targets")
    func excludes() {
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice, Fixture.bob]), stored: Fixture.stored([Fixture.acme]))
        let filtered = plan.filtered(targets: [AddressPattern("tenant/acme/**")], excludes: [AddressPattern("tenant/*/member/bob@acme.com")])
        #expect(filtered.changes.map(\.address) == ["tenant/acme/member/alice@acme.com"])
    }

    @Test("a limited plan says so: how many changes the patterns left out, and which patterns select no address")
    func targetingIsReported() {
        let desired = Fixture.desired([Fixture.acme, Fixture.alice, Fixture.bob])
        let stored = Fixture.stored([Fixture.acme])
        let plan = Reconciler.plan(desired: desired, stored: stored)
        #expect(plan.targeting == nil)
        let targets = [AddressPattern("tenant/acme/member/alice@acme.com"), AddressPattern("tenant/acm/**")]
        let excludes = [AddressPattern("tenant/globex")]
        let filtered = plan.filtered(targets: targets, excludes: excludes) { Reconciler.selectsAny($0, desired: desired, stored: stored) }
        #expect(filtered.changes.map(\.address) == ["tenant/acme/member/alice@acme.com"])
        #expect(filtered.targeting == Targeting(
            targets: ["tenant/acme/member/alice@acme.com", "tenant/acm/**"], excludes: ["tenant/globex"], omitted: 1,
            unmatchedTargets: ["tenant/acm/**"], unmatchedExcludes: ["tenant/globex"]))
        // Everything left out: still a targeted plan, never one that reads as complete.
        let nothing = plan.filtered(targets: [AddressPattern("plan/**")], excludes: [])
        #expect(nothing.isEmpty && nothing.targeting?.omitted == 2)
    }

    @Test("patterns that can never match an address are refused", arguments: ["", "tenant/", "/tenant", "tenant//acme"])
    func impossiblePatterns(_ text: String) {
        #expect(AddressPattern.problem(with: text) != nil)
    }

    @Test("ordinary patterns are accepted", arguments: ["tenant", "tenant/acme/**", "**", "tenant/*/member/*@acme.com"])
    func possiblePatterns(_ text: String) {
        #expect(AddressPattern.problem(with: text) == nil)
    }
}

@Suite("apply order and plan files")
struct ApplyOrderTests {
    @Test("nested teams are created after their parents, whatever their names")
    func teamDepth() {
        let child = Fixture.resource("tenant/acme/team/alpha", .team, parent: "tenant/acme", ["parent": .string("zulu")])
        let parent = Fixture.resource("tenant/acme/team/zulu", .team, parent: "tenant/acme", ["parent": .null])
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, child, parent, Fixture.alice]), stored: Fixture.stored([]))
        let order = Reconciler.creationOrder(plan.changes).map(\.address)
        #expect(order == ["tenant/acme", "tenant/acme/member/alice@acme.com", "tenant/acme/team/zulu", "tenant/acme/team/alpha"])
    }

    @Test("a saved plan round-trips through its file form")
    func planFileRoundTrip() throws {
        let secret = Fixture.resource("tenant/acme/webhook/w", .webhook, parent: "tenant/acme",
                                      ["secret": .secret(fingerprint: "hmac-sha256:ab"), "events": .list(["a", "b"]), "maxRetries": .int(3)])
        var desired = Fixture.desired([Fixture.acme, secret])
        desired.secretSources = ["tenant/acme/webhook/w#secret": .environment("W_SECRET")]
        let plan = Reconciler.plan(desired: desired, stored: Fixture.stored([]))
        let data = try PlanFile(plan: plan, orgctlVersion: "test", source: "git:abc").encoded()
        let decoded = try PlanFile.decode(data).plan()
        #expect(decoded.id == plan.id)
        #expect(decoded.changes.map(\.address) == plan.changes.map(\.address))
        #expect(decoded.changes[1].fields == plan.changes[1].fields)
        #expect(decoded.secretSources == ["tenant/acme/webhook/w#secret": .environment("W_SECRET")])
    }

    @Test("a saved plan verifies only under the state key it was written with, and only unedited")
    func planFileMAC() throws {
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice]), stored: Fixture.stored([]))
        let key = try StateKey(raw: Array(repeating: 7, count: 32)), other = try StateKey(raw: Array(repeating: 8, count: 32))
        let signed = try PlanFile(plan: plan, orgctlVersion: "test", source: "git:abc").authenticated(with: key)
        let decoded = try PlanFile.decode(try signed.encoded())
        try decoded.verify(with: key)
        #expect(throws: PlanFile.DecodingFailure.self) { try decoded.verify(with: other) }
        var edited = decoded
        edited.changes[1].fields[0].after = PlanFile.EncodedValue(.string("superuser"))
        #expect(throws: PlanFile.DecodingFailure.self) { try edited.verify(with: key) }
        var unsigned = decoded
        unsigned.mac = nil
        let failure = try #require(throws: PlanFile.DecodingFailure.self) { try unsigned.verify(with: key) }
        #expect(failure.description.contains("no authentication code"))
    }

    @Test(arguments: ["", "{}", "[1,2]", #"{"format":"other","formatVersion":1}"#, "\u{0}\u{1}binary"])
    func planFileRejectsGarbage(_ text: String) {
        #expect(throws: PlanFile.DecodingFailure.self) { try PlanFile.decode(Data(text.utf8)) }
    }

    @Test("a saved plan with a number out of range says so, not that the file is not JSON")
    func planFileNumberOutOfRange() throws {
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme]), stored: Fixture.stored([]))
        let text = String(decoding: try PlanFile(plan: plan, orgctlVersion: "test", source: "git:abc").encoded(), as: UTF8.self)
        let huge = try #require(text.range(of: #""storedCount"\s*:\s*\d+"#, options: .regularExpression))
        let edited = text.replacingCharacters(in: huge, with: #""storedCount":99999999999999999999999"#)
        let failure = try #require(throws: PlanFile.DecodingFailure.self) { try PlanFile.decode(Data(edited.utf8)) }
        #expect(failure.description.contains("out of range"), "\(failure.description)")
        let broken = try #require(throws: PlanFile.DecodingFailure.self) { try PlanFile.decode(Data("{\"format\":".utf8)) }
        #expect(!broken.description.contains("out of range"))
    }

    @Test("the default delete limit is 10% of the stored resources, at least 25")
    func deleteLimit() {
        #expect(Reconciler.defaultMaxDeletes(storedCount: 0) == 25)
        #expect(Reconciler.defaultMaxDeletes(storedCount: 1000) == 100)
    }
}

extension Resource {
    func renamed(_ address: String) -> Resource {
        var copy = self
        copy.address = address
        return copy
    }
}

@Suite("dependencies")
struct DependencyTests {
    @Test("nested teams are deleted deepest first, whatever their names, after their memberships")
    func deleteDepth() {
        let tenant = Fixture.resource("tenant/acme", .tenant, ["plan": .string("b")], collections: ["tenant/acme/team"])
        let parent = Fixture.resource("tenant/acme/team/alpha", .team, parent: "tenant/acme", ["parent": .null])
        let child = Fixture.resource("tenant/acme/team/zulu", .team, parent: "tenant/acme", ["parent": .string("alpha")])
        let membership = Fixture.resource("tenant/acme/team/alpha/member/a@acme.com", .teamMember, parent: "tenant/acme/team/alpha",
                                          ["role": .string("lead")])
        let plan = Reconciler.plan(desired: Fixture.desired([tenant]), stored: Fixture.stored([tenant, parent, child, membership]))
        #expect(Reconciler.deletionOrder(plan.changes).map(\.address) == [
            "tenant/acme/team/alpha/member/a@acme.com", "tenant/acme/team/zulu", "tenant/acme/team/alpha",
        ])
    }

    @Test("a targeted team keeps the create of the parent team it names and of the members it lists")
    func targetKeepsReferences() {
        let parent = Fixture.resource("tenant/acme/team/zulu", .team, parent: "tenant/acme", ["parent": .null])
        let child = Fixture.resource("tenant/acme/team/alpha", .team, parent: "tenant/acme", ["parent": .string("zulu")])
        let membership = Fixture.resource("tenant/acme/team/alpha/member/bob@acme.com", .teamMember, parent: "tenant/acme/team/alpha",
                                          ["role": .string("lead")])
        let plan = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice, Fixture.bob, parent, child, membership]),
                                   stored: Fixture.stored([Fixture.acme]))
        let filtered = plan.filtered(targets: [AddressPattern("tenant/acme/team/alpha")], excludes: [])
        #expect(filtered.changes.map(\.address) == [
            "tenant/acme/member/bob@acme.com", "tenant/acme/team/alpha", "tenant/acme/team/alpha/member/bob@acme.com", "tenant/acme/team/zulu",
        ])
        #expect(filtered.id != plan.id)
    }
}
