public import Spec
public import StateStore
public import Audit

/// Who applies, from where, and when: recorded in every audit entry.
public struct ApplyContext: Sendable {
    public var actor: String
    public var source: String
    /// RFC 3339 UTC, second precision.
    public var time: String
    /// Resolved secret values keyed `address#attribute`; never printed, never audited.
    public var secrets: [String: [UInt8]]
    /// Refuse a plan that deletes more resources than this.
    public var maxDeletes: Int
    /// Key material for the plan's API key issues and rotations (``Reconciler/issueKeys(for:)``),
    /// keyed by address; only its prefix and hash are written.
    public var issuedKeys: [String: IssuedKey]
    /// Which tenants may be deleted, wholly or in large part (``TenantDeletionPolicy``).
    public var tenantDeletions: TenantDeletionPolicy
    /// Called once per change written (progress on a terminal); nil by default.
    public var progress: (@Sendable () -> Void)?
    /// Failing overridable policies let through with `--override`: each is recorded as an audit entry first.
    public var policyOverrides: [PolicyOverride] = []

    public init(actor: String, source: String, time: String, secrets: [String: [UInt8]], maxDeletes: Int,
                issuedKeys: [String: IssuedKey] = [:], tenantDeletions: TenantDeletionPolicy = TenantDeletionPolicy()) {
        self.actor = actor
        self.source = source
        self.time = time
        self.secrets = secrets
        self.maxDeletes = maxDeletes
        self.issuedKeys = issuedKeys
        self.tenantDeletions = tenantDeletions
    }
}

public struct ApplyResult: Sendable {
    public var created = 0, updated = 0, deleted = 0, adopted = 0
    /// Of `updated`, how many were renames; how many API keys were issued or rotated.
    public var renamed = 0, keysIssued = 0
    /// What was done to the recorded policies (``Plan/policyChange``), if anything.
    public var policiesRecorded: Action?
    public var firstSequence: Int64?
    public var lastSequence: Int64?
}

/// Why an apply did not happen; nothing was written in any of these cases.
public enum ApplyError: Error, Sendable {
    /// The state changed since the plan was made.
    case stale(addresses: [String])
    /// The plan deletes more resources than allowed.
    case tooManyDeletes(count: Int, limit: Int, byKind: [(ResourceKind, Int)])
    /// The audit chain is broken; nothing is appended to it.
    case auditBroken(ChainBreak)
    /// The plan was made against another database.
    case wrongDatabase(expected: String, actual: String)
    /// The plan issues API keys, and no key material was made for these addresses.
    case keysNotIssued(addresses: [String])
    /// The plan deletes these tenants (or most of them) without `--allow-delete-tenant` naming them.
    case tenantDeletionNotConfirmed([TenantDeletion])
}

extension Reconciler {
    /// The plan's deletes, in plan order; found by position (`filter` copies every change it tests).
    static func deletions(_ plan: Plan) -> [Change] {
        plan.changes.indices.filter { plan.changes[$0].action == .delete }.map { plan.changes[$0] }
    }

    /// The default delete limit: 10% of the stored resources or 25, whichever is larger.
    public static func defaultMaxDeletes(storedCount: Int) -> Int { max(25, storedCount / 10) }

    /// Refuses a plan that deletes more than `maxDeletes` resources. ``apply(_:to:planState:context:)``
    /// checks it first; the CLI also checks it before it opens (creates, migrates or adopts) the database.
    public static func checkDeleteLimit(_ plan: Plan, maxDeletes: Int) throws(ApplyError) {
        // Counted by position first: `filter` copies every change it tests.
        guard plan.changes.indices.count(where: { plan.changes[$0].action == .delete }) > maxDeletes else { return }
        let deletes = deletions(plan)
        var byKind: [ResourceKind: Int] = [:]
        for change in deletes { byKind[change.kind, default: 0] += 1 }
        throw ApplyError.tooManyDeletes(count: deletes.count, limit: maxDeletes, byKind: byKind.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// Applies `plan` in one transaction: state rows and one audit entry per change together.
    ///
    /// - Parameter planState: the state the plan was made from, when this process read it (apply
    ///   DIR); nil for a saved plan, which is always checked against a fresh read. When nothing
    ///   changed since, its `auditChain` (checked in the same snapshot) stands for the chain now.
    public static func apply(_ plan: Plan, to store: any StateStore, planState: StoredState?, context: ApplyContext) throws -> ApplyResult {
        try checkDeleteLimit(plan, maxDeletes: context.maxDeletes)
        let deletes = deletions(plan)
        guard !plan.isEmpty else { return ApplyResult() }
        let missingKeys = plan.changes.indices.filter {
            plan.changes[$0].key != nil && plan.changes[$0].action != .delete && context.issuedKeys[plan.changes[$0].address] == nil
        }.map { plan.changes[$0].address }
        if !missingKeys.isEmpty { throw ApplyError.keysNotIssued(addresses: missingKeys) }
        return try store.write { transaction in
            // Is the state still what the plan was made from?
            let state: StoredState
            if let planState, try transaction.isUnchangedSinceRead {
                state = planState
            } else {
                state = try transaction.read()
                if !plan.databaseID.isEmpty, !state.databaseID.isEmpty, plan.databaseID != state.databaseID {
                    throw ApplyError.wrongDatabase(expected: plan.databaseID, actual: state.databaseID)
                }
                var stale = Set(staleAddresses(plan, current: state))
                // Other policies recorded since (or written outside orgctl): the plan was judged against others.
                if recordedPolicyDigest(state) != plan.recordedPolicies { stale.insert(PolicyChange.address) }
                if state.auditHead != plan.auditHead {
                    stale.formUnion(try transaction.auditAddresses(after: plan.auditHead.sequence))
                    if stale.isEmpty { stale.insert("(the audit log moved from entry \(plan.auditHead.sequence) to \(state.auditHead.sequence))") }
                }
                if !stale.isEmpty { throw ApplyError.stale(addresses: stale.sorted()) }
            }
            // Judged against the state being written (a saved plan carries no confirmation and no counts).
            let unconfirmed = Reconciler.tenantDeletions(plan, stored: state, policy: context.tenantDeletions).filter { !$0.confirmed }
            if !unconfirmed.isEmpty { throw ApplyError.tenantDeletionNotConfirmed(unconfirmed) }
            // Never append to a broken chain. A state read together with a check of the chain (in the
            // same snapshot, which nothing has changed since) brings its result; otherwise check now.
            switch state.auditChain {
            case .intact: break
            case .broken(let broken): throw ApplyError.auditBroken(broken)
            case .unchecked: if let broken = try transaction.verifyAuditChain() { throw ApplyError.auditBroken(broken) }
            }

            var result = ApplyResult()
            // Renamed rows (and what they hold) are stored under their old addresses until renamed below.
            let renames = Renames(plan.changes)
            let view = renames.translated(state)
            /// Key material written for a change: before (the stored key, on rotation) and after.
            func keyFields(_ change: Change) -> (before: [(String, Value)], after: [Attribute]) {
                guard change.kind == .apiKey else { return ([], []) }
                let issued = change.action == .delete ? nil : change.key.flatMap { _ in context.issuedKeys[change.address] }
                guard issued != nil || change.action == .delete else { return ([], []) }
                let old = change.action == .create ? nil : view.resource(at: change.address)?.resource
                let before = [KeyMaterial.prefixAttribute, KeyMaterial.hashAttribute].compactMap { name -> (String, Value)? in
                    guard let value = old?[name], !value.isNull else { return nil }
                    return (name, value)
                }
                return (before, issued?.attributes ?? [])
            }
            // The people the entries will name, looked up before the first write.
            var named: [String] = []
            named.reserveCapacity(plan.changes.count + 1)
            for index in plan.changes.indices {  // by index: no copy of each whole change
                named.append(plan.changes[index].address)
                if let from = plan.changes[index].renamedFrom { named.append(from) }
            }
            named.append(context.actor)
            try transaction.prepareSubjects(naming: named)
            // What was audited, for the webhook events written at the end (WebhookEvents).
            var written = WebhookEvents.Recorder(plan: plan, state: view)
            func audit(_ change: Change) throws -> Int64 {
                let key = keyFields(change)
                let reason = auditReason(change)
                let sequence = try transaction.appendAudit { sequence in
                    let entry = AuditEntry(sequence: sequence, time: context.time, actor: context.actor, source: context.source, planID: plan.id,
                               action: change.action.rawValue, address: change.address,
                               before: change.action == .create || change.action == .adopt ? nil : auditObject(change.fields, after: false, key.before),
                               after: change.action == .delete ? nil : auditObject(change.fields, after: true, key.after.map { ($0.name, $0.value) }),
                               reason: reason)
                    written.record(change, entry)
                    return entry
                }
                context.progress?()
                if result.firstSequence == nil { result.firstSequence = sequence }
                result.lastSequence = sequence
                return sequence
            }
            for override in context.policyOverrides {
                let sequence = try transaction.appendAudit { override.auditEntry(sequence: $0, context: context, planID: plan.id) }
                if result.firstSequence == nil { result.firstSequence = sequence }
                result.lastSequence = sequence
            }
            func secrets(for change: Change) -> [String: [UInt8]] {
                var values: [String: [UInt8]] = [:]
                for field in change.fields {
                    if case .secret = field.after {
                        values[field.name] = context.secrets[DesiredState.secretKey(address: change.address, attribute: field.name)]
                    }
                }
                return values
            }
            func stored(_ address: String) throws -> StoredResource {
                guard let found = view.resource(at: address) else { throw ApplyError.stale(addresses: [address]) }
                return found
            }

            // Renames first (tenants before what they hold), so creates below find parents by their new slugs;
            // a renamed row's field changes are written with the other updates, under the rename's audit entry.
            var renameSequences: [String: Int64] = [:]
            let renamed = plan.changes.indices.filter { plan.changes[$0].renamedFrom != nil }.map { plan.changes[$0] }.sorted { ($0.parent == nil ? 0 : 1, $0.address) < ($1.parent == nil ? 0 : 1, $1.address) }
            for change in renamed {
                guard let from = change.renamedFrom, let row = state.resource(at: from) else { throw ApplyError.stale(addresses: [change.renamedFrom ?? change.address]) }
                renameSequences[change.address] = try audit(change)
                // A nested rename's old address, after its tenant's rename above.
                let old = change.parent.map { "\($0)/\(change.kind.segment)/\(from.split(separator: "/").last ?? "")" } ?? from
                try transaction.rename(row, from: old, to: change.address)
                result.renamed += 1
            }
            // Teams below a renamed team keep their parent_id, but the parent's slug (which their digest covers) changed.
            for team in renames.teamsWithRenamedParent(in: view) where team.appliedDigest == team.digest {
                try transaction.refreshDigest(team)
            }

            // Creates (parents first; nested teams after their parents), then updates, then deletes (children first).
            // By position: half a million creates are not copied into arrays of their own first.
            // The change is passed straight from the plan's array (borrowed, not copied into a local).
            func create(_ change: Change) throws {
                let sequence = try audit(change)
                var attributes: [Attribute] = []
                let keyAfter = keyFields(change).after
                attributes.reserveCapacity(change.fields.count + keyAfter.count)
                for field in change.fields { attributes.append(Attribute(field.name, field.after)) }
                attributes += keyAfter
                let resource = Resource(address: change.address, kind: change.kind, parent: change.parent, attributes: attributes)
                _ = try transaction.create(resource, secrets: secrets(for: change), auditSequence: sequence)
                result.created += 1
                if change.key != nil { result.keysIssued += 1 }
            }
            for index in creationOrder(plan.changes, plan.changes.indices.filter { plan.changes[$0].action == .create }) {
                try create(plan.changes[index])
            }
            // By position: a loop over the changes themselves copies every change to test its action.
            for index in plan.changes.indices where plan.changes[index].action == .update {
                let change = plan.changes[index]
                let sequence = try renameSequences[change.address] ?? audit(change)
                try transaction.update(try stored(change.address), changes: change.fields.map { Attribute($0.name, $0.after) } + keyFields(change).after,
                                       secrets: secrets(for: change), auditSequence: sequence)
                result.updated += 1
                if change.key != nil { result.keysIssued += 1 }
            }
            for index in plan.changes.indices where plan.changes[index].action == .adopt {
                let change = plan.changes[index]
                let sequence = try audit(change)
                try transaction.adopt(try stored(change.address), auditSequence: sequence)
                result.adopted += 1
            }
            for change in deletionOrder(deletes) {
                _ = try audit(change)
                try transaction.delete(try stored(change.address))
                result.deleted += 1
            }
            // The policies this plan was judged against, recorded last (a plan saved before is stale from here on).
            if let change = plan.policyChange {
                let sequence = try transaction.appendAudit { change.auditEntry(sequence: $0, context: context, planID: plan.id) }
                try transaction.recordPolicies(change.after?.storedText)
                result.policiesRecorded = change.action
                if result.firstSequence == nil { result.firstSequence = sequence }
                result.lastSequence = sequence
            }
            try transaction.enqueueEvents(written.events)
            return result
        }
    }

    /// The digest of the policies `state` records, as ``Plan/recordedPolicies`` holds it when planned.
    static func recordedPolicyDigest(_ state: StoredState) -> String? {
        state.recordedPolicies.map { PolicyRecord(storedText: $0)?.digest ?? "(unreadable)" }
    }

    /// How deep each team of `changes` nests below other teams of `changes`, following the
    /// `parent` attribute's value before (deletes) or after (creates) the change.
    static func teamDepths(_ changes: some Sequence<Change>, parentValue: (FieldChange) -> Value) -> [String: Int] {
        var parentOf: [String: String] = [:]
        for change in changes where change.kind == .team {
            if let field = change.fields.first(where: { $0.name == "parent" }), case .string(let slug) = parentValue(field),
                let tenant = change.parent
            {
                parentOf[change.address] = "\(tenant)/team/\(slug)"
            }
        }
        var depths: [String: Int] = [:]
        for address in parentOf.keys {
            var depth = 0
            var current = address
            // Bounded by the team count, so a cycle (rejected by validation anyway) cannot loop.
            while let next = parentOf[current], depth <= parentOf.count {
                depth += 1
                current = next
            }
            depths[address] = depth
        }
        return depths
    }

    /// Kind order, and for teams the depth of their parent chain among the teams being created.
    static func creationOrder(_ creates: [Change]) -> [Change] {
        creationOrder(creates, Array(creates.indices)).map { creates[$0] }
    }

    /// The positions `creates` of `changes` (creates, in plan order) in creation order
    /// (``creationOrder(_:)``): positions are sorted, not the changes, so none is copied.
    static func creationOrder(_ changes: [Change], _ creates: [Int]) -> [Int] {
        let depth = teamDepths(creates.lazy.filter { changes[$0].kind == .team }.map { changes[$0] }) { $0.after }
        // A stable bucket sort by (kind, depth): a handful of keys, so the positions are dealt into
        // one list per key in plan order and the lists joined in key order (no comparison sort).
        var buckets: [CreationKey: [Int]] = [:]
        for position in creates {
            // Read in place (a `let` of the change would copy it).
            let kind = changes[position].kind
            buckets[CreationKey(rank: kind.rank, depth: kind == .team ? depth[changes[position].address] ?? 0 : 0), default: []].append(position)
        }
        var ordered: [Int] = []
        ordered.reserveCapacity(creates.count)
        for (_, positions) in buckets.sorted(by: { $0.key < $1.key }) { ordered += positions }
        return ordered
    }

    /// Where a create goes in ``creationOrder(_:_:)``: by kind, then (teams) by nesting depth.
    private struct CreationKey: Hashable, Comparable {
        var rank: Int
        var depth: Int

        static func < (a: CreationKey, b: CreationKey) -> Bool { (a.rank, a.depth) < (b.rank, b.depth) }
    }

    /// Children before parents: the plan's order (reverse address order), except that nested teams
    /// go deepest first, whatever their names.
    static func deletionOrder(_ deletes: [Change]) -> [Change] {
        let depths = teamDepths(deletes) { $0.before }
        guard !depths.isEmpty else { return deletes }
        func depth(_ address: String) -> Int { depths[address] ?? 0 }
        // Team memberships first, then teams deepest first, then everything else in plan order.
        return deletes.enumerated().sorted { a, b in
            let (x, y) = (a.element, b.element)
            let rankX = x.kind == .teamMember ? 0 : x.kind == .team ? 1 : 2
            let rankY = y.kind == .teamMember ? 0 : y.kind == .team ? 1 : 2
            if rankX != rankY { return rankX < rankY }
            if x.kind == .team {
                let (dx, dy) = (depth(x.address), depth(y.address))
                if dx != dy { return dx > dy }
            }
            return a.offset < b.offset
        }.map(\.element)
    }

    /// An entry's `reason`: the rename and the change's reason joined by `; ` (nil when that is empty).
    static func auditReason(_ change: Change) -> String? {
        let joined: String? = switch (change.renamedFrom, change.reason) {
        case (nil, nil): nil
        case (let from?, nil): "renamed from \(from)"
        case (nil, let reason?): reason
        case (let from?, let reason?): "renamed from \(from); \(reason)"
        }
        return joined?.isEmpty == true ? nil : joined
    }

    /// An entry's before (`after: false`) or after object: each field's value, then `extra`, set in
    /// turn (the last of a repeated name wins); secrets only as their keyed fingerprint, documents as
    /// their digest. Built from one array (the apply builds two per change).
    static func auditObject(_ fields: [FieldChange], after: Bool, _ extra: [(String, Value)]) -> JSONValue {
        var pairs: [(String, JSONValue)] = []
        pairs.reserveCapacity(fields.count + extra.count)
        for field in fields { pairs.append((field.name, auditValue(after ? field.after : field.before))) }
        for (name, value) in extra { pairs.append((name, auditValue(value))) }
        return .object(JSONObject(assigning: pairs))
    }

    static func auditValue(_ value: Value) -> JSONValue {
        switch value {
        case .null: .null
        case .bool(let b): .bool(b)
        case .int(let i): .int(i)
        case .string(let s): .string(s)
        case .list(let l): .array(l.map { .string($0) })
        case .secret(let fingerprint): .string("(secret \(fingerprint.prefix(28)))")
        case .document(let sha256, _): .string("sha256:\(sha256)")
        }
    }
}
