public import Spec
public import StateStore
import Crypto

/// Diffs desired against stored state. Pure: no I/O, no clock.
public enum Reconciler {
    /// Builds the plan that makes `stored` match `desired`.
    ///
    /// Linear in the number of resources: one hash lookup per desired resource, with field-level
    /// diffs built only for resources whose attributes differ.
    public static func plan(desired: DesiredState, stored original: StoredState) -> Plan {
        plan(desired: desired, stored: original, policies: nil)
    }

    /// ``plan(desired:stored:)`` then ``Plan/recordingPolicies(_:)`` with `configured`, with the
    /// plan id computed once (over every change: at half a million changes it is not free).
    public static func plan(desired: DesiredState, stored original: StoredState, recordingPolicies configured: PolicyRecord?) -> Plan {
        plan(desired: desired, stored: original, policies: .some(configured))
    }

    /// `policies`: nil to leave the policies unrecorded, else what ``Plan/recordingPolicies(_:)`` records.
    private static func plan(desired: DesiredState, stored original: StoredState, policies: PolicyRecord??) -> Plan {
        // Renames: a pre-pass that resolves `previously:` and shows the stored state under the new addresses.
        let (renames, diagnostics) = Renames.resolve(desired: desired, stored: original)
        let stored = renames.translated(original)
        var upserts: [Change] = []
        var deletes: [Change] = []
        var deleted: Set<String> = []
        let want = desired.resources
        let have = stored.resources
        let missing = Set(stored.missingApplied)

        func delete(_ s: StoredResource) {
            let address = s.address
            var reason: String?
            if let parent = s.resource.parent, deleted.contains(parent) {
                reason = "\(parent) is deleted"
            } else if s.resource.kind == .teamMember, let member = memberAddress(ofTeamMember: address), deleted.contains(member) {
                reason = "\(member) is deleted"
            } else if desired.managedCollections.contains(String(Resource.collection(of: address))) {
                reason = s.appliedDigest == nil ? "created outside orgctl" : nil
            } else {
                return  // an unmanaged collection: left alone
            }
            deleted.insert(address)
            // An API key's key material is not configuration: its fingerprint goes to the audit entry only.
            let fields = s.resource.attributes.filter { !$0.value.isNull && !KeyMaterial.isKeyMaterial($0.name) }
                .map { FieldChange(name: $0.name, before: $0.value, after: .null) }
            deletes.append(Change(address: address, kind: s.resource.kind, parent: s.resource.parent, action: .delete, fields: fields,
                                  reason: reason, beforeDigest: s.digest.description, changedOutside: s.isDrifted || s.appliedDigest == nil))
        }

        // A hash join on addresses: no sort of either side, only of the changes found.
        var matched = [Bool](repeating: false, count: have.count)
        for d in want {
            guard let position = stored.position(of: d.address) else {
                let fields = d.attributes.filter { !$0.value.isNull }.map { FieldChange(name: $0.name, before: .null, after: $0.value) }
                let vanished = missing.contains(d.address)
                upserts.append(Change(address: d.address, kind: d.kind, parent: d.parent, action: .create, fields: fields,
                                      reason: vanished ? "deleted outside orgctl" : nil, changedOutside: vanished,
                                      key: d.kind == .apiKey ? .issue : nil))
                continue
            }
            matched[position] = true
            let s = have[position]
            var fields: [FieldChange] = []
            for attribute in d.attributes {
                let before = s.resource[attribute.name]
                if before != attribute.value {
                    fields.append(FieldChange(name: attribute.name, before: before, after: attribute.value))
                }
            }
            // A stored attribute the configuration has no name for (a quota row named outside the
            // format, planted in the database): unset, or it would stay drift that no apply removes.
            // Only a row not as orgctl wrote it can hold one, so rows as applied skip the scan.
            if s.isDrifted || s.appliedDigest == nil {
                for attribute in s.resource.attributes where !attribute.value.isNull && !KeyMaterial.isKeyMaterial(attribute.name)
                    && !d.attributes.contains(where: { $0.name == attribute.name }) {
                    fields.append(FieldChange(name: attribute.name, before: attribute.value, after: .null))
                }
            }
            let renamedFrom = renames.isEmpty ? nil : renames.storedAddresses[d.address]
            let key = d.kind == .apiKey ? keyIssue(desired: d, stored: s.resource, fields: fields) : nil
            if fields.isEmpty && s.appliedDigest == nil && renamedFrom == nil && key == nil {
                // Equal to the configuration, but not written by orgctl: adopt it (record it as applied).
                let adopted = s.resource.attributes.filter { !$0.value.isNull }.map { FieldChange(name: $0.name, before: .null, after: $0.value) }
                upserts.append(Change(address: d.address, kind: d.kind, parent: d.parent, action: .adopt, fields: adopted,
                                      reason: "written outside orgctl; adopted as it is", beforeDigest: s.digest.description))
            } else if !fields.isEmpty || renamedFrom != nil || key != nil {
                // Also a row that took over an address orgctl applied to another row (keys swapped outside orgctl).
                let outside = s.isDrifted || (s.appliedDigest == nil && missing.contains(d.address))
                upserts.append(Change(address: d.address, kind: d.kind, parent: d.parent, action: .update, fields: fields,
                                      reason: outside ? "changed outside orgctl" : nil, beforeDigest: s.digest.description,
                                      changedOutside: outside, renamedFrom: renamedFrom, key: key))
            }
        }
        // Stored rows the configuration does not declare, parents before children (so a deleted
        // parent is known when its children are visited).
        var unmatched: [StoredResource] = []
        for (position, s) in have.enumerated() {
            if !matched[position] { unmatched.append(s) }
        }
        unmatched.sort { $0.address < $1.address }
        for s in unmatched { delete(s) }
        upserts.sort { $0.address < $1.address }
        // Deletes: grouped by top-level resource in address order, children before parents within a group.
        // (Each group is computed once: a comparator that splits addresses costs seconds at 480k deletes.)
        let groups = deletes.map(\.group)
        var secrets: [String: SecretSource] = [:]
        for index in upserts.indices {
            for field in upserts[index].fields {
                if case .secret = field.after {
                    let key = DesiredState.secretKey(address: upserts[index].address, attribute: field.name)
                    secrets[key] = desired.secretSources[key]
                }
            }
        }
        // The upserts' array becomes the plan's (`upserts + deletes` copied every change into a new
        // array, and then released the old one's: half a million changes in a first apply).
        var changes: [Change] = []
        swap(&changes, &upserts)
        if !deletes.isEmpty {
            changes.append(contentsOf: deletes.indices.sorted { a, b in
                groups[a] != groups[b] ? groups[a] < groups[b] : a > b
            }.map { deletes[$0] })
        }
        var plan = Plan(id: "", databaseID: stored.databaseID, auditHead: stored.auditHead,
                        changes: changes, drift: original.driftDigests, secretSources: secrets, storedCount: stored.resources.count, diagnostics: diagnostics)
        // A recorded value that is not one orgctl writes reads as none recorded: apply records the configuration's.
        plan.recordedPolicyRecord = original.recordedPolicies.flatMap(PolicyRecord.init(storedText:))
        plan.recordedPolicies = recordedPolicyDigest(original)
        if case .some(let configured) = policies { plan.policyChange = plan.policyChangeRecording(configured) }
        plan.id = planID(databaseID: stored.databaseID, auditHead: stored.auditHead, changes: changes, policies: plan.policyChange)
        return plan
    }

    /// Whether apply issues key material for a declared API key that is stored: when `rotate` went up,
    /// or when its scopes change and `rotateOnScopeChange` is true. A stored key without material
    /// (recorded before orgctl issued keys, or adopted from the platform, whose keys live elsewhere)
    /// is not issued one unasked: raise `rotate` for that.
    static func keyIssue(desired: Resource, stored: Resource, fields: [FieldChange]) -> KeyIssue? {
        if case .int(let after) = desired["rotate"] {
            let before: Int64
            if case .int(let n) = stored["rotate"] { before = n } else { before = 0 }
            if after > before { return .rotate }
        }
        let onScopeChange = desired["rotateOnScopeChange"].isNull ? stored["rotateOnScopeChange"] : desired["rotateOnScopeChange"]
        if onScopeChange == .bool(true), fields.contains(where: { $0.name == "scopes" }) { return .rotate }
        return nil
    }

    /// `tenant/a/member/x` for the team member `tenant/a/team/t/member/x`.
    static func memberAddress(ofTeamMember address: String) -> String? {
        let parts = address.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        return "\(parts[0])/\(parts[1])/member/\(parts[5])"
    }

    static func planID(databaseID: String, auditHead: AuditHead, changes: [Change], policies: PolicyChange? = nil) -> String {
        var stream = PlanIDStream()
        stream.add("\(databaseID)\n\(auditHead.sequence)\n\(auditHead.hash)\n")
        if let policies { stream.add("policies \(policies.before?.digest ?? "-")>\(policies.after?.digest ?? "-")\n") }
        for change in changes {
            stream.add(change.action.rawValue); stream.add(" "); stream.add(change.address); stream.add("\n")
            if let from = change.renamedFrom { stream.add("renamed-from "); stream.add(from); stream.add("\n") }
            if let key = change.key { stream.add("key "); stream.add(key.rawValue); stream.add("\n") }
            for field in change.fields {
                stream.add(field.name); stream.add("="); stream.addDigestText(field.before); stream.add(">"); stream.addDigestText(field.after)
                stream.add("\n")
            }
        }
        return stream.id()
    }

    // MARK: Staleness

    /// The addresses whose stored rows differ from what `plan` saw, in sorted order; empty when
    /// the plan still applies as reviewed. Audit-head moves are checked by the caller (they name
    /// addresses from the audit log).
    public static func staleAddresses(_ plan: Plan, current: StoredState) -> [String] {
        var stale: Set<String> = []
        let renames = Renames(plan.changes)
        // By position: a loop over the changes themselves copies every change.
        for index in plan.changes.indices {
            let address = plan.changes[index].address
            // Renamed rows (and what they hold) are stored under their old addresses until applied.
            let now = current.resource(at: renames.isEmpty ? address : renames.stored(address))
            switch plan.changes[index].action {
            case .create: if now != nil { stale.insert(address) }
            case .update, .delete, .adopt: if now?.digest.description != plan.changes[index].beforeDigest { stale.insert(address) }
            }
        }
        let drift = current.driftDigests
        for (address, digest) in drift where plan.drift[address] != digest { stale.insert(address) }
        for (address, digest) in plan.drift where drift[address] != digest { stale.insert(address) }
        return stale.sorted()
    }
}

