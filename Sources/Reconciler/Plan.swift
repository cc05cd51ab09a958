public import Spec
public import StateStore

/// What a plan does to one resource.
public enum Action: String, Sendable, Codable, CaseIterable {
    case create, update, delete
    /// Record an existing row, written by something other than orgctl and equal to the
    /// configuration, as applied (adoption): no platform row changes.
    case adopt

    public var symbol: String {
        switch self {
        case .create: "+"
        case .update: "~"
        case .delete: "-"
        case .adopt: "="
        }
    }
}

/// What apply does with an API key's secret: the plaintext is made at apply time and never planned.
public enum KeyIssue: String, Sendable, Codable {
    /// The key has no key material yet (a new key, or one stored before orgctl issued keys).
    case issue
    /// The `rotate` counter went up, or the scopes changed with `rotateOnScopeChange: true`.
    case rotate

    /// How plans show it: `key: (will be issued)`.
    public var description: String { self == .issue ? "(will be issued)" : "(will be rotated)" }
}

/// One attribute's before and after (`.null` when absent).
public struct FieldChange: Sendable, Equatable {
    public var name: String
    public var before: Value
    public var after: Value

    public init(name: String, before: Value, after: Value) {
        self.name = name
        self.before = before
        self.after = after
    }
}

/// One resource's change: immutable once planned. The reason explains; it never decides.
public struct Change: Sendable {
    public var address: String
    public var kind: ResourceKind
    public var parent: String?
    public var action: Action
    /// Create: every managed attribute (before `.null`). Update: the attributes that differ.
    /// Delete: every stored attribute (after `.null`).
    public var fields: [FieldChange]
    public var reason: String?
    /// The stored row's digest when planned (nil for a create): apply refuses the plan if it moved.
    public var beforeDigest: String?
    /// The stored row was changed outside orgctl since orgctl last applied it.
    public var changedOutside: Bool
    /// For a rename (an update): the address the row was stored under (`tenant/old`). The row, its id
    /// and everything below it are kept; only the slug and the recorded addresses change.
    public var renamedFrom: String?
    /// For an API key: apply issues new key material.
    public var key: KeyIssue?

    public init(address: String, kind: ResourceKind, parent: String?, action: Action, fields: [FieldChange],
                reason: String? = nil, beforeDigest: String? = nil, changedOutside: Bool = false,
                renamedFrom: String? = nil, key: KeyIssue? = nil) {
        self.address = address
        self.kind = kind
        self.parent = parent
        self.action = action
        self.fields = fields
        self.reason = reason
        self.beforeDigest = beforeDigest
        self.changedOutside = changedOutside
        self.renamedFrom = renamedFrom
        self.key = key
    }

    /// The tenant this change belongs to (`tenant/acme` for its members), or `platform` for the
    /// Platform's catalogs, for grouping in plans.
    public var group: String { Self.group(of: address) }

    /// The group of any address: `tenant/<slug>` for a tenant and what it holds, else `platform`.
    public static func group(of address: String) -> String {
        let parts = address.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        return parts.count >= 2 && parts[0] == "tenant" ? "tenant/\(parts[1])" : "platform"
    }
}

/// A reviewable plan: ordered changes plus what apply checks to refuse a stale plan.
public struct Plan: Sendable {
    public static let formatVersion = 1

    /// Deterministic: derived from the database, its audit head and the changes.
    public var id: String
    public var databaseID: String
    public var auditHead: AuditHead
    /// Creates and updates in address order (parents first), then deletes children first.
    public var changes: [Change]
    /// Addresses whose rows differed from what orgctl last applied when planned, with their digests.
    public var drift: [String: String]
    /// Where the secret values that apply writes come from, keyed `address#attribute`.
    public var secretSources: [String: SecretSource]
    /// How many resources the stored state held when planned (the base of the delete limit).
    public var storedCount: Int
    /// What planning found about `previously:` against the stored state (unmatched earlier slugs are
    /// warnings, ambiguous ones errors). A plan with errors must not be applied or saved.
    public var diagnostics: [Diagnostic] = []
    /// Set when `--target`/`--exclude` limited the plan: what they left out (see ``filtered(targets:excludes:known:)``).
    public var targeting: Targeting?
    /// False when the state database did not exist when planned: the plan is against an empty state.
    public var stateExists = true
    /// The digest of the governance policies the state recorded when planned (nil: none): apply
    /// refuses the plan when the state records other policies (``PolicyRecord``).
    public var recordedPolicies: String?
    /// Set when the configuration's policies differ from the recorded ones: apply records them
    /// (``recordingPolicies(_:)``).
    public var policyChange: PolicyChange?

    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    /// How many API keys apply would issue or rotate.
    public var keyCount: Int { changes.count { $0.key != nil } }

    /// No resource changes and no policies to record.
    public var isEmpty: Bool { changes.isEmpty && policyChange == nil }

    public func count(_ action: Action) -> Int { changes.count { $0.action == action } }

    /// `Plan: 3 to add, 2 to change, 1 to destroy.` (and `, 4 to adopt` when there are adoptions).
    public var summary: String {
        let adopt = count(.adopt)
        let policies = policyChange.map { ", policies to \(["create": "record", "update": "update", "delete": "remove"][$0.action.rawValue] ?? "")" } ?? ""
        return "Plan: \(count(.create)) to add, \(count(.update)) to change, \(count(.delete)) to destroy\(adopt > 0 ? ", \(adopt) to adopt" : "")\(policies)."
    }

    /// This plan, recording `configured` (the configuration's policies, ``PolicyRecord/of(_:)``) when the
    /// state recorded others when planned; its id then covers the policy change.
    public func recordingPolicies(_ configured: PolicyRecord?) -> Plan {
        var plan = self
        plan.policyChange = policyChangeRecording(configured)
        plan.id = Reconciler.planID(databaseID: databaseID, auditHead: auditHead, changes: changes, policies: plan.policyChange)
        return plan
    }

    /// What recording `configured` changes, against the policies recorded when planned (nil: nothing).
    func policyChangeRecording(_ configured: PolicyRecord?) -> PolicyChange? {
        let recorded = recordedPolicyRecord
        return recorded == configured ? nil : PolicyChange(before: recorded, after: configured)
    }

    /// The recorded policies when planned, as ``recordingPolicies(_:)`` compares them (set by ``Reconciler/plan(desired:stored:)``).
    var recordedPolicyRecord: PolicyRecord?
}
