public import Audit
import Spec

/// A failing overridable policy that `apply --override NAME --reason TEXT` let through. Apply records
/// it as an audit entry of its own (action `override`), in the same transaction as the changes, so an
/// override is never silent: the actor, the source, the plan, the reason and what failed are in the chain.
public struct PolicyOverride: Sendable, Equatable {
    public var check: String
    public var scope: String
    public var violations: [PolicyViolation]
    public var reason: String

    /// At most this many violations are listed in the entry (the count is always there).
    public static let listedViolations = 100

    public init(_ check: PolicyCheck) {
        self.check = check.name
        scope = check.scope
        violations = check.violations
        reason = check.overrideReason ?? ""
    }

    /// `policy/minimumOwners` for the Platform's policy, `tenant/acme/policy/minimumOwners` for a tenant's own.
    public var address: String { scope == "platform" ? "policy/\(check)" : "\(scope)/policy/\(check)" }

    public func auditEntry(sequence: Int64, context: ApplyContext, planID: String) -> AuditEntry {
        var after = JSONObject()
        after["enforcement"] = .string(Enforcement.overridable.rawValue)
        after["policy"] = .string(check)
        after["scope"] = .string(scope)
        after["violationCount"] = .int(Int64(violations.count))
        after["violations"] = .array(violations.prefix(Self.listedViolations).map { violation in
            var object = JSONObject()
            object["address"] = .string(violation.address)
            object["message"] = .string(violation.message)
            return .object(object)
        })
        return AuditEntry(sequence: sequence, time: context.time, actor: context.actor, source: context.source, planID: planID,
                          action: "override", address: address, before: nil, after: .object(after), reason: reason)
    }
}
