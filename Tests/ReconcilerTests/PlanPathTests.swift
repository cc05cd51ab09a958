import Audit
import Crypto
import Spec
import StateStore
import Testing

@testable import Reconciler

/// The plan's and the apply's hot paths spell things their own way (the plan id written as bytes,
/// the plan id computed once with the policies, creates dealt into buckets, kinds ranked by a
/// switch); these pin each to the construction it replaced.
@Suite("plan fast paths")
struct PlanPathTests {
    /// Every kind of value, with quotes, non-ASCII, combining marks and empty lists and strings.
    static let values: [Value] = [
        .null, .bool(true), .bool(false), .int(0), .int(-1), .int(Int64.min), .int(Int64.max), .string(""), .string("plain"),
        .string("quote \" backslash \\ tab \t newline \n"), .string("bøb e\u{301} \u{2028} 🦆"), .list([]), .list(["a"]),
        .list(["x y", "é", "\"q\""]), .secret(fingerprint: "hmac-sha256:ab12"), .secret(fingerprint: ""),
        .document(sha256: "0f" + String(repeating: "e", count: 62), text: "-----BEGIN CERTIFICATE-----"),
    ]

    /// The plan id as it was built before: one `String` per line and per value (`Value.description`,
    /// secrets and documents by digest), hashed as one UTF-8 stream.
    static func referenceID(databaseID: String, auditHead: AuditHead, changes: [Change], policies: PolicyChange? = nil) -> String {
        func digestText(_ value: Value) -> String {
            switch value {
            case .secret(let fingerprint): "secret:\(fingerprint)"
            case .document(let sha256, _): "doc:\(sha256)"
            default: value.description
            }
        }
        var text = "\(databaseID)\n\(auditHead.sequence)\n\(auditHead.hash)\n"
        if let policies { text += "policies \(policies.before?.digest ?? "-")>\(policies.after?.digest ?? "-")\n" }
        for change in changes {
            text += change.action.rawValue + " " + change.address + "\n"
            if let from = change.renamedFrom { text += "renamed-from " + from + "\n" }
            if let key = change.key { text += "key " + key.rawValue + "\n" }
            for field in change.fields {
                text += field.name + "=" + digestText(field.before) + ">" + digestText(field.after) + "\n"
            }
        }
        return String(Hex.encode(SHA256.hash(Array(text.utf8))).prefix(16))
    }

    static func changes(count: Int) -> [Change] {
        (0..<count).map { index in
            let fields = (0..<(index % 4)).map { offset in
                FieldChange(name: "f\(offset)é", before: values[(index + offset) % values.count], after: values[(index * 7 + offset) % values.count])
            }
            let action: Action = [.create, .update, .delete, .adopt][index % 4]
            return Change(address: "tenant/t\(index % 50)/member/m\(index)@exämple.com", kind: .member, parent: "tenant/t\(index % 50)",
                          action: action, fields: fields, renamedFrom: index % 9 == 0 ? "tenant/old\(index)" : nil,
                          key: index % 13 == 0 ? .issue : index % 17 == 0 ? .rotate : nil)
        }
    }

    @Test("the plan id written as bytes is the SHA-256 of the text lines it stood for", arguments: [0, 1, 5, 4000])
    func planIDMatchesTheTextConstruction(count: Int) {
        let changes = Self.changes(count: count)
        let head = AuditHead(sequence: 42, hash: String(repeating: "ab", count: 32))
        let policies = PolicyChange(before: nil, after: PolicyRecord(rules: ["mfa": "sha256:01"]))
        for policy in [nil, policies] {
            #expect(Reconciler.planID(databaseID: "db-ü", auditHead: head, changes: changes, policies: policy)
                == Self.referenceID(databaseID: "db-ü", auditHead: head, changes: changes, policies: policy))
        }
    }

    @Test("each value's digest text is written as Value.description spells it (secrets and documents by digest)")
    func digestTextOfEveryValue() {
        for value in Self.values {
            let change = Change(address: "a", kind: .tenant, parent: nil, action: .update, fields: [FieldChange(name: "n", before: value, after: .null)])
            let head = AuditHead(sequence: 0, hash: "")
            #expect(Reconciler.planID(databaseID: "", auditHead: head, changes: [change]) == Self.referenceID(databaseID: "", auditHead: head, changes: [change]),
                    "\(value)")
        }
    }

    @Test("planning with the policies gives the plan that recording them afterwards gives, id included")
    func planRecordingPoliciesOnce() {
        let stored = Fixture.stored([Fixture.acme])
        let desired = Fixture.desired([Fixture.acme, Fixture.alice, Fixture.bob])
        let records: [PolicyRecord?] = [nil, PolicyRecord(rules: ["mfa": "sha256:01"]), PolicyRecord(rules: ["tenant/acme/mfa": "sha256:02"])]
        for configured in records {
            let twice = Reconciler.plan(desired: desired, stored: stored).recordingPolicies(configured)
            let once = Reconciler.plan(desired: desired, stored: stored, recordingPolicies: configured)
            #expect(once.id == twice.id)
            #expect(once.policyChange == twice.policyChange)
            #expect(once.changes.map(\.address) == twice.changes.map(\.address))
            #expect(once.recordedPolicies == twice.recordedPolicies)
            // Filtering afterwards covers the policy change as the old order (filter, then record) did.
            let target = [AddressPattern("tenant/acme/member/alice@acme.com")]
            #expect(once.filtered(targets: target, excludes: []).id
                == Reconciler.plan(desired: desired, stored: stored).filtered(targets: target, excludes: []).recordingPolicies(configured).id)
        }
    }

    @Test("a kind's rank is its position among all kinds")
    func rankIsTheDeclarationOrder() {
        for kind in ResourceKind.allCases {
            #expect(kind.rank == ResourceKind.allCases.firstIndex(of: kind))
        }
    }

    @Test("creates are ordered as the comparison sort by kind, team depth and position ordered them")
    func creationOrderMatchesTheComparisonSort() {
        // Kinds interleaved, teams nested up to four deep in scrambled name order, some non-creates between.
        var changes: [Change] = []
        let kinds: [ResourceKind] = [.apiKey, .member, .team, .tenant, .teamMember, .webhook, .role, .ssoProvider, .tenantRole]
        for index in 0..<600 {
            let kind = kinds[(index * 5) % kinds.count]
            var fields: [FieldChange] = []
            if kind == .team, index % 3 != 0 {
                fields.append(FieldChange(name: "parent", before: .null, after: .string("g\((index * 37) % 600)")))
            }
            changes.append(Change(address: kind == .team ? "tenant/t/team/g\(index)" : "tenant/t/\(kind.segment)/x\(index)", kind: kind,
                                  parent: "tenant/t", action: index % 11 == 0 ? .update : .create, fields: fields))
        }
        let creates = changes.indices.filter { changes[$0].action == .create }
        let depth = Reconciler.teamDepths(creates.map { changes[$0] }) { $0.after }
        let keys = creates.map { (changes[$0].kind, changes[$0].kind == .team ? depth[changes[$0].address] ?? 0 : 0) }
        let reference = creates.indices.sorted { a, b in
            if keys[a].0 != keys[b].0 { return keys[a].0 < keys[b].0 }
            if keys[a].1 != keys[b].1 { return keys[a].1 < keys[b].1 }
            return a < b
        }.map { creates[$0] }
        #expect(depth.values.contains { $0 >= 2 }, "the fixture nests teams")
        #expect(Reconciler.creationOrder(changes, creates) == reference)
    }

    @Test("a resource's attributes are sorted by name as a stable sort sorts them, sorted or not")
    func resourceAttributesSorted() {
        let names = ["b", "a", "a", "é", "e\u{301}", "quotas.seats", "quotas.Seats", "", "z"]
        var generator = SystemRandomNumberGenerator()
        for round in 0..<300 {
            var attributes = (0..<Int.random(in: 0...7, using: &generator)).map { index in
                Attribute(names.randomElement(using: &generator)!, .int(Int64(round * 10 + index)))
            }
            if round.isMultiple(of: 2) { attributes.sort { $0.name < $1.name } }
            let resource = Resource(address: "tenant/x", kind: .tenant, parent: nil, attributes: attributes)
            #expect(resource.attributes == attributes.sorted { $0.name < $1.name })
        }
    }

    @Test("an entry's reason joins the rename and the change's reason as before")
    func auditReason() {
        for from in [nil, "tenant/old", ""] as [String?] {
            for reason in [nil, "", "deleted outside orgctl"] as [String?] {
                let change = Change(address: "tenant/new", kind: .tenant, parent: nil, action: .update, fields: [], reason: reason, renamedFrom: from)
                let joined = [change.renamedFrom.map { "renamed from \($0)" }, change.reason].compactMap { $0 }.joined(separator: "; ")
                #expect(Reconciler.auditReason(change) == (joined.isEmpty ? nil : joined))
            }
        }
    }

    @Test("an entry's before and after objects are those built pair by pair before")
    func auditObjects() {
        let fields = Self.values.enumerated().map { FieldChange(name: "f\($0.offset % 7)", before: $0.element, after: Self.values[($0.offset + 3) % Self.values.count]) }
        let sortedFields = (0..<Self.values.count).map { FieldChange(name: ($0 < 10 ? "n0" : "n") + String($0), before: Self.values[$0], after: .null) }
        let extras: [[(String, Value)]] = [[], [("keyHash", .string("ab")), ("keyPrefix", .string("sk_live_abc"))], [("f1", .int(9))]]
        for list in [fields, sortedFields, []] {
            for extra in extras {
                for after in [false, true] {
                    var object = JSONObject()  // as built before: one pair at a time
                    for (name, value) in list.map({ ($0.name, after ? $0.after : $0.before) }) + extra { object[name] = Reconciler.auditValue(value) }
                    let old = JSONValue.object(object)
                    let new = Reconciler.auditObject(list, after: after, extra)
                    #expect(new == old)
                    #expect(CanonicalJSON.encode(new) == CanonicalJSON.encode(old))
                }
            }
        }
    }
}
