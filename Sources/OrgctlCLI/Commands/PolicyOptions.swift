import Foundation
import Reconciler
import Spec

/// `--override POLICY --reason TEXT` (apply), and what plan, apply and validate do with policy results.
/// The rules themselves are judged by ``Reconciler/policyChecks(_:today:plan:stored:)``.
enum PolicyOptions {
    static let options: [OptionSpec] = [
        .option("override", valueName: "policy",
                help: "Let a failing overridable policy (its name under 'policies:', e.g. maxRemoval) through; needs --reason. Recorded in the audit log.",
                repeatable: true),
        .option("reason", valueName: "text", help: "Why the --override is needed, recorded in the audit log with the actor."),
    ]

    static let constraints: [OptionConstraint] = [.requires("override", "reason"), .requires("reason", "override")]

    /// Applies `--override`/`--reason` to the report; refuses an override that matches no failing
    /// overridable policy (a typo, a mandatory policy, or one that passes).
    static func applyOverrides(_ report: inout PolicyReport, _ command: ParsedCommand) throws {
        let names = command.values("override")
        if !names.isEmpty {
            let reason = (command.value("reason") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !reason.isEmpty else {
                throw CommandFailure(message: "--reason must say why the override is needed; nothing was applied",
                                     help: "pass --reason \"TEXT\": it is recorded in the audit log with the actor", exitCode: ExitCode.usage)
            }
            let unmatched = report.override(names, reason: reason)
            if !unmatched.isEmpty {
                let mandatory = unmatched.filter { name in report.checks.contains { $0.name == name && $0.enforcement == .mandatory && !$0.passed } }
                let list = unmatched.map { "'\(TerminalText.escape($0))'" }.joined(separator: ", ")
                throw CommandFailure(
                    message: mandatory.isEmpty
                        ? "--override names \(list), which no failing overridable policy of this plan has; nothing was applied"
                        : "--override names \(list): a mandatory policy cannot be overridden; nothing was applied",
                    help: mandatory.isEmpty
                        ? "name a policy the plan's 'Policy checks' show as FAIL (overridable): \(overridableNames(report))"
                        : "fix what the policy reports, or have the Platform make it overridable")
            }
        }
    }

    /// Refuses a plan with a failing mandatory policy, or a failing overridable one not overridden.
    static func refuseBlocking(_ report: PolicyReport) throws {
        let blocking = report.blocking
        guard !blocking.isEmpty else { return }
        let mandatory = blocking.filter { $0.enforcement == .mandatory }
        let details = blocking.map { "\($0.scope == "platform" ? "" : "\($0.scope): ")\($0.name) (\($0.enforcement.rawValue)): \($0.violations.count) violation\($0.violations.count == 1 ? "" : "s")" }
        if !mandatory.isEmpty {
            throw CommandFailure(message: "\(mandatory.count) mandatory polic\(mandatory.count == 1 ? "y fails" : "ies fail"); nothing was applied",
                                 help: "fix what the plan's 'Policy checks' report; a mandatory policy cannot be overridden", details: details)
        }
        let failing = Array(Set(blocking.map(\.name))).sorted()
        throw CommandFailure(message: "\(blocking.count) overridable polic\(blocking.count == 1 ? "y fails" : "ies fail"); nothing was applied",
                             help: "fix what the plan's 'Policy checks' report, or run apply again with "
                                + failing.map { "--override \($0)" }.joined(separator: " ") + " --reason \"WHY\" (recorded in the audit log)",
                             details: details)
    }

    static func overridableNames(_ report: PolicyReport) -> String {
        let names = Set(report.checks.filter { !$0.passed && $0.enforcement == .overridable }.map(\.name)).sorted()
        return names.isEmpty ? "(none fails)" : names.joined(separator: ", ")
    }

    /// The failures of rules judged from the configuration alone, as diagnostics for `validate`:
    /// errors for mandatory policies, warnings otherwise.
    static func diagnostics(_ report: PolicyReport) -> [Diagnostic] {
        var result: [Diagnostic] = []
        for check in report.checks where check.judged {
            for violation in check.violations {
                let severity: Severity = check.enforcement == .mandatory ? .error : .warning
                let help = switch check.enforcement {
                case .mandatory: "the \(scopeName(check)) requires: \(check.rule)"
                case .overridable: "the \(scopeName(check)) requires: \(check.rule); apply refuses without --override \(check.name) --reason TEXT"
                case .advisory: "the \(scopeName(check)) advises: \(check.rule)"
                }
                result.append(Diagnostic(severity, "policy.\(check.name)", "\(violation.message) (policy \(check.name), \(check.enforcement.rawValue))",
                                         at: violation.location, help: help,
                                         notes: [.init("the policy is declared here", at: check.location)]))
            }
        }
        return result
    }

    static func scopeName(_ check: PolicyCheck) -> String {
        check.scope == "platform" ? "Platform's policy" : "policy of \(check.scope)"
    }
}
