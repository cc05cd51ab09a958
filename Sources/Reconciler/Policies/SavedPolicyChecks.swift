import Spec

/// The policy checks of a saved plan (`PlanFile.policies`), as judged when the plan was saved, so
/// `show PLANFILE` shows them as `plan` did. Covered by the file's MAC like everything else in it.
/// (A plan is saved only when no mandatory or overridable policy fails.)
public struct SavedPolicyCheck: Codable, Sendable {
    public var policy: String
    public var scope: String
    public var enforcement: String
    public var rule: String
    public var judged: Bool
    public var file: String
    public var line: Int
    public var column: Int
    public var violations: [Violation]

    public struct Violation: Codable, Sendable {
        public var address: String
        public var message: String
        public var file: String?
        public var line: Int?
        public var column: Int?
    }

    public init(_ check: PolicyCheck) {
        policy = check.name
        scope = check.scope
        enforcement = check.enforcement.rawValue
        rule = check.rule
        judged = check.judged
        file = check.location.file
        line = check.location.line
        column = check.location.column
        violations = check.violations.map {
            Violation(address: $0.address, message: $0.message, file: $0.location?.file, line: $0.location?.line, column: $0.location?.column)
        }
    }

    /// The check again; nil when the file names an enforcement this orgctl does not know.
    public var check: PolicyCheck? {
        guard let level = Enforcement(rawValue: enforcement) else { return nil }
        return PolicyCheck(name: policy, scope: scope, enforcement: level, rule: rule, location: SourceLocation(file: file, line: line, column: column),
                           violations: violations.map { violation in
                               let location = violation.file.map { SourceLocation(file: $0, line: violation.line ?? 0, column: violation.column ?? 0) }
                               return PolicyViolation(address: violation.address, message: violation.message, location: location)
                           }, judged: judged)
    }
}
