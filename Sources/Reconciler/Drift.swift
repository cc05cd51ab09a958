public import Spec
public import StateStore

/// What `orgctl drift` reports: changes made outside orgctl since its last apply, apart from
/// configuration changes that have not been applied yet.
public struct DriftReport: Sendable {
    public static let formatVersion = 1

    /// How a row drifted.
    public enum Kind: String, Sendable, CaseIterable {
        /// A row orgctl applied has other values now.
        case changed
        /// A row orgctl never wrote, in a collection the configuration manages.
        case added
        /// A row orgctl applied is gone.
        case deleted
    }

    /// One field of a drifted row: as orgctl applied it, and as stored now (`.null` when absent).
    public struct Field: Sendable, Equatable {
        public var name: String
        public var applied: Value
        public var now: Value
    }

    public struct Item: Sendable {
        public var address: String
        public var kind: ResourceKind
        public var drift: Kind
        /// The fields that differ; for a `changed` row whose applied values were not recorded
        /// (applied by an orgctl before schema version 2), empty with `appliedKnown` false.
        /// `appliedKnown` is false for an `added` row too: orgctl never applied it.
        public var fields: [Field]
        public var appliedKnown: Bool
        /// The audit entry of orgctl's last write of the row (nil for an added row).
        public var auditSequence: Int64?
    }

    /// In address order.
    public var drifted: [Item]
    /// Configuration changes not yet applied, in plan order. For a drifted row, only the fields
    /// where the configuration differs from what orgctl last applied.
    public var pending: [Change]
    /// The plan apply would make now (drift reverted and pending changes applied).
    public var plan: Plan

    /// The policies apply would record (``Plan/policyChange``): a configuration change not yet applied too.
    public var pendingPolicies: PolicyChange? { plan.policyChange }
    /// How many configuration changes wait: the resources', and one for the policies when they changed.
    public var pendingCount: Int { pending.count + (pendingPolicies == nil ? 0 : 1) }

    public var isClean: Bool { drifted.isEmpty && pendingCount == 0 }

    public func count(_ kind: Kind) -> Int { drifted.count { $0.drift == kind } }
}

extension Reconciler {
    /// Separates drift from pending configuration changes. Pure, like ``plan(desired:stored:)``,
    /// and linear: the plan plus work proportional to the drifted rows.
    ///
    /// - Parameters:
    ///   - plan: `plan(desired:stored:)` of the same states, possibly filtered by address; drift
    ///     is reported for the rows the same `targets`/`excludes` select.
    ///   - applied: what orgctl last applied to each drifted or vanished row
    ///     (``SQLiteStateStore/readWithApplied()``).
    public static func drift(plan: Plan, stored: StoredState, applied: [String: AppliedResource],
                             targets: [AddressPattern] = [], excludes: [AddressPattern] = []) -> DriftReport {
        var items: [DriftReport.Item] = []

        for s in stored.resources where s.isDrifted {
            let record = applied[s.address]
            guard let before = record?.attributes else {
                items.append(.init(address: s.address, kind: s.resource.kind, drift: .changed, fields: [], appliedKnown: false,
                                   auditSequence: record?.auditSequence))
                continue
            }
            items.append(.init(address: s.address, kind: s.resource.kind, drift: .changed, fields: differences(before, s.resource.attributes),
                               appliedKnown: true, auditSequence: record?.auditSequence))
        }
        for address in stored.missingApplied {
            let record = applied[address]
            let kind = record?.kind ?? .tenant
            // Another row holds the address now (natural keys swapped outside orgctl): that address changed.
            let now = stored.resource(at: address)
            items.append(.init(address: address, kind: kind, drift: now == nil ? .deleted : .changed,
                               fields: differences(record?.attributes ?? [], now?.resource.attributes ?? []),
                               appliedKnown: record?.attributes != nil, auditSequence: record?.auditSequence))
        }

        let missing = Set(stored.missingApplied)
        var pending: [Change] = []
        for change in plan.changes {
            let s = stored.resource(at: change.address)
            switch change.action {
            case .delete:
                // A row orgctl never wrote, in a managed collection: added outside orgctl.
                if let s, s.appliedDigest == nil {
                    items.append(.init(address: s.address, kind: s.resource.kind, drift: .added,
                                       fields: differences([], s.resource.attributes), appliedKnown: false, auditSequence: nil))
                } else {
                    pending.append(change)
                }
            case .create:
                // Recreating a row deleted outside orgctl is a revert unless the configuration changed too.
                if let before = applied[change.address]?.attributes, missing.contains(change.address) {
                    if let remaining = pendingFields(change, applied: before) { pending.append(remaining) }
                } else {
                    pending.append(change)
                }
            case .update, .adopt:
                // A drifted row, or a row now at an address orgctl applied to another row (natural keys
                // changed or swapped outside orgctl): only what the configuration changes is pending.
                if let s, s.isDrifted || missing.contains(change.address), let before = applied[change.address]?.attributes {
                    if let remaining = pendingFields(change, applied: before) { pending.append(remaining) }
                } else {
                    pending.append(change)
                }
            }
        }
        if !targets.isEmpty || !excludes.isEmpty {
            items = items.filter { item in
                (targets.isEmpty || targets.contains { $0.selects(item.address) }) && !excludes.contains { $0.selects(item.address) }
            }
        }
        items.sort { $0.address < $1.address }
        return DriftReport(drifted: items, pending: pending, plan: plan)
    }

    /// The change restricted to the fields where the configuration differs from what orgctl last
    /// applied (before: as applied); nil when the change only reverts drift.
    private static func pendingFields(_ change: Change, applied: [Attribute]) -> Change? {
        let before = Resource(address: change.address, kind: change.kind, parent: change.parent, attributes: applied)
        var fields: [FieldChange] = []
        for field in change.fields where before[field.name] != field.after {
            fields.append(FieldChange(name: field.name, before: before[field.name], after: field.after))
        }
        guard !fields.isEmpty else { return nil }
        var remaining = change
        remaining.fields = fields
        if change.action == .create || change.action == .adopt { remaining.action = .update }
        return remaining
    }

    /// Fields whose values differ between two attribute lists (both sorted by name), in name order.
    static func differences(_ applied: [Attribute], _ now: [Attribute]) -> [DriftReport.Field] {
        var fields: [DriftReport.Field] = []
        var i = 0, j = 0
        while i < applied.count || j < now.count {
            if j == now.count || (i < applied.count && applied[i].name < now[j].name) {
                if !applied[i].value.isNull { fields.append(.init(name: applied[i].name, applied: applied[i].value, now: .null)) }
                i += 1
            } else if i == applied.count || now[j].name < applied[i].name {
                if !now[j].value.isNull { fields.append(.init(name: now[j].name, applied: .null, now: now[j].value)) }
                j += 1
            } else {
                if applied[i].value != now[j].value { fields.append(.init(name: now[j].name, applied: applied[i].value, now: now[j].value)) }
                i += 1
                j += 1
            }
        }
        return fields
    }
}
