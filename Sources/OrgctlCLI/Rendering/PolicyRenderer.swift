import Foundation
import Reconciler
import Spec

/// The "Policy checks" section of text, Markdown and JSON plans. Nothing is shown when the
/// configuration declares no policies, so plans of configurations without them are unchanged.
enum PolicyRenderer {
    /// Violations listed per policy in text and Markdown (all of them are in JSON).
    static let listedViolations = 20

    static func label(_ check: PolicyCheck, style: Style) -> String {
        switch check.status {
        case "pass": return style.green("pass")
        case "not-judged": return style.dim("n/a ")
        case "overridden": return style.yellow("overridden")
        default: return check.enforcement == .advisory ? style.yellow("warn") : style.red("FAIL")
        }
    }

    static func name(_ check: PolicyCheck) -> String {
        (check.scope == "platform" ? "" : "\(check.scope): ") + check.name
    }

    /// Passing policies are named on one line; each other one is shown with its rule and what fails
    /// (JSON and Markdown list every policy in full). When all pass, the summary line alone says so.
    ///
    /// - Parameter quietWhenPassing: print nothing when every policy passes (an empty plan: "No changes"
    ///   stays the whole answer; a failing policy is still shown).
    static func text(_ report: PolicyReport, style: Style, quietWhenPassing: Bool = false) -> String {
        guard !report.isEmpty else { return "" }
        let passing = report.checks.filter { $0.judged && $0.passed }
        if passing.count == report.checks.count {
            if quietWhenPassing { return "" }
            let line = summary(report, style: style)
            return "\n" + String(line.dropLast()) + " (" + passing.map { TerminalText.escape(name($0)) }.joined(separator: ", ") + ").\n"
        }
        var out = "\n" + style.bold("Policy checks:") + "\n"
        if !passing.isEmpty { out += "  \(style.green("pass"))  \(passing.map { TerminalText.escape(name($0)) }.joined(separator: ", "))\n" }
        for check in report.checks where !(check.judged && check.passed) {
            out += "  \(label(check, style: style))  \(TerminalText.escape(name(check))) (\(check.enforcement.rawValue)): \(TerminalText.escape(check.rule))\n"
            for violation in check.violations.prefix(listedViolations) {
                let location = violation.location.map { style.dim("  (\(TerminalText.escape($0.description)))") } ?? ""
                out += "        \(TerminalText.escape(violation.address)): \(TerminalText.escape(violation.message))\(location)\n"
            }
            if check.violations.count > listedViolations {
                out += "        … and \(check.violations.count - listedViolations) more (plan --format json lists them all)\n"
            }
            if let reason = check.overrideReason { out += "        overridden: \(TerminalText.escape(reason))\n" }
        }
        out += summary(report, style: style) + "\n"
        return out
    }

    /// `Policy checks: 6 passed, 1 failed (mandatory: the plan is invalid and apply refuses it).`
    static func summary(_ report: PolicyReport, style: Style) -> String {
        let passed = report.checks.count { $0.judged && $0.passed }
        let overridden = report.checks.count { $0.overrideReason != nil && !$0.passed }
        let failed = report.failedCount - overridden
        var line = "Policy checks: \(passed) passed, \(failed) failed"
        if overridden > 0 { line += ", \(overridden) overridden" }
        let notJudged = report.checks.count { !$0.judged }
        if notJudged > 0 { line += ", \(notJudged) not judged without a plan" }
        if report.mandatoryFailed {
            return style.red(line + " (a mandatory policy fails: the plan is invalid and apply refuses it).")
        }
        let unresolved = report.unresolvedOverridable
        if !unresolved.isEmpty {
            let names = Set(unresolved.map(\.name)).sorted().map { "--override \($0)" }.joined(separator: " ")
            return style.yellow(line + " (apply refuses unless given \(names) --reason TEXT).")
        }
        return line + "."
    }

    static func markdown(_ report: PolicyReport) -> String {
        guard !report.isEmpty else { return "" }
        var out = "#### Policy checks\n\n\(PlanRenderer.markdownEscape(summary(report, style: Style(enabled: false))))\n\n"
        out += "| result | policy | enforcement | rule |\n|---|---|---|---|\n"
        for check in report.checks {
            let result = check.status == "fail" ? (check.enforcement == .advisory ? "⚠️ warn" : "❌ **FAIL**")
                : check.status == "pass" ? "✅ pass" : check.status == "overridden" ? "⚠️ overridden" : "n/a"
            out += "| \(result) | \(cell(name(check))) | \(check.enforcement.rawValue) | \(cell(check.rule)) |\n"
        }
        out += "\n"
        for check in report.checks where !check.passed {
            out += "<details><summary><code>\(cell(name(check)))</code>: \(check.violations.count) violation\(check.violations.count == 1 ? "" : "s")</summary>\n\n"
            for violation in check.violations.prefix(listedViolations) {
                let location = violation.location.map { " (`\(PlanRenderer.markdownEscape($0.description).replacingOccurrences(of: "`", with: "ˋ"))`)" } ?? ""
                out += "* `\(TerminalText.escape(violation.address).replacingOccurrences(of: "`", with: "ˋ"))`: \(PlanRenderer.markdownEscape(violation.message))\(location)\n"
            }
            if check.violations.count > listedViolations { out += "* … and \(check.violations.count - listedViolations) more\n" }
            if let reason = check.overrideReason { out += "\nOverridden: \(PlanRenderer.markdownEscape(reason))\n" }
            out += "\n</details>\n\n"
        }
        return out
    }

    private static func cell(_ text: String) -> String {
        PlanRenderer.markdownEscape(text).replacingOccurrences(of: "|", with: "\\|")
    }

    /// `policyChecks` in plan JSON.
    static func json(_ report: PolicyReport) -> [[String: Any]] {
        report.checks.map { check in
            var object: [String: Any] = [
                "policy": check.name, "scope": check.scope, "enforcement": check.enforcement.rawValue, "rule": check.rule,
                "status": check.status, "passed": check.passed, "judged": check.judged,
                "location": location(check.location),
                "violations": check.violations.map { violation -> [String: Any] in
                    var object: [String: Any] = ["address": violation.address, "message": violation.message]
                    if let place = violation.location { object["location"] = Self.location(place) }
                    return object
                },
            ]
            if let reason = check.overrideReason { object["overrideReason"] = reason }
            return object
        }
    }

    static func location(_ location: SourceLocation) -> [String: Any] {
        ["file": location.file, "line": location.line, "column": location.column]
    }

    /// `policySummary` in plan JSON.
    static func jsonSummary(_ report: PolicyReport) -> [String: Any] {
        ["passed": report.checks.count { $0.judged && $0.passed }, "failed": report.failedCount,
         "mandatoryFailed": report.mandatoryFailed, "blocking": report.blocking.count]
    }
}
