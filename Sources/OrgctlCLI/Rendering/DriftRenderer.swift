import Foundation
import Reconciler
import Spec
import StateStore

/// Renders a drift report as text, Markdown, JSON (docs/cli.md, "Drift JSON") and Prometheus
/// metrics. Secrets show only as `(sensitive)`.
struct DriftRenderer {
    var style: Style

    func text(_ report: DriftReport, directory: String, warnings: [Diagnostic]) -> String {
        var out = ""
        if report.drifted.isEmpty {
            out += report.plan.targeting == nil
                ? "No changes outside orgctl: the state database holds what orgctl last applied.\n"
                : "No changes outside orgctl in the addresses selected by \(report.plan.targeting?.options ?? "").\n"
        } else {
            out += style.bold("Changed outside orgctl since the last apply") + " (field: as applied -> as stored now):\n\n"
            for item in report.drifted { out += lines(item, style: style).joined(separator: "\n") + "\n" }
        }
        out += "\n"
        if report.pendingCount == 0 {
            out += "No configuration changes waiting to be applied.\n"
        } else {
            out += style.bold("Configuration changes not yet applied") + ":\n\n"
            let renderer = PlanRenderer(style: style)
            for change in report.pending { out += renderer.lines(change, style: style).joined(separator: "\n") + "\n" }
            if let change = report.pendingPolicies { out += renderer.line(change, style: style) + "\n" }
        }
        for warning in warnings {
            out += "\n" + style.yellow("warning") + ": " + TerminalText.escape("\(warning.location.map { "\($0): " } ?? "")\(warning.message)")
                + " [\(warning.id)]"
        }
        if !warnings.isEmpty { out += "\n" }
        out += "\n" + style.bold(Self.summary(report)) + "\n"
        if let targeting = report.plan.targeting { out += style.yellow(TerminalText.escape(targeting.note)) + "\n" }
        if let advice = Self.advice(report) { out += "Run 'orgctl apply \(TerminalText.escape(directory))' to \(advice).\n" }
        return out
    }

    /// What apply would do about the report, or nil when there is nothing to do.
    static func advice(_ report: DriftReport) -> String? {
        switch (report.drifted.isEmpty, report.pendingCount == 0) {
        case (true, true): nil
        case (true, false): "apply the configuration changes"
        case (false, true): "put back what changed outside orgctl"
        case (false, false): "put back what changed outside orgctl and apply the configuration changes"
        }
    }

    static func summary(_ report: DriftReport) -> String {
        let drift = "Drift: \(report.count(.changed)) changed, \(report.count(.added)) created, \(report.count(.deleted)) deleted outside orgctl"
        let pending = report.pendingCount
        return "\(drift); \(pending) configuration change\(pending == 1 ? "" : "s") not yet applied."
    }

    func lines(_ item: DriftReport.Item, style: Style) -> [String] {
        let symbol: String
        let note: String
        let seen = item.auditSequence.map { "; last applied in audit entry \($0)" } ?? ""
        switch item.drift {
        case .changed:
            symbol = style.yellow("~")
            note = "changed outside orgctl\(seen)"
        case .added:
            symbol = style.green("+")
            note = "created outside orgctl"
        case .deleted:
            symbol = style.red("-")
            note = "deleted outside orgctl\(seen)"
        }
        var result = ["  \(symbol) \(style.bold(TerminalText.escape(item.address))) " + style.yellow("(\(note))")]
        if !item.appliedKnown && item.drift != .added {
            result.append(style.dim("      (the values orgctl applied were not recorded: applied before orgctl kept them)"))
        }
        for (field, name) in zip(item.fields, PlanRenderer.aligned(item.fields.map { TerminalText.escape($0.name) })) {
            switch item.drift {
            case .added: result.append("      \(name) = \(PlanRenderer.show(field.now))")
            case .deleted: result.append(style.dim("      \(name) = \(PlanRenderer.show(field.applied))"))
            case .changed:
                let now = field.applied.isSecret && field.now.isSecret ? "(changed)" : PlanRenderer.show(field.now)
                result.append("      \(name) : \(PlanRenderer.show(field.applied)) -> \(now)")
            }
        }
        return result
    }

    // MARK: Markdown

    /// For a job summary or comment, within `maxBytes` (0: no limit): the changes outside orgctl first,
    /// then the pending changes and the warnings, in order, as many as fit; then how many were left out.
    static func markdown(_ report: DriftReport, warnings: [Diagnostic], maxBytes: Int = PlanRenderer.defaultMarkdownBudget) -> String {
        var out = "### orgctl drift\n\n**\(summary(report))**\n\n"
        if let targeting = report.plan.targeting { out += "> **Warning:** \(PlanRenderer.markdownEscape(targeting.note))\n\n" }
        // Room kept for closing a section and the footer; once one item does not fit, the rest are counted.
        let reserve = 600
        var left = 0
        func add(_ text: String) {
            if left == 0, maxBytes == 0 || out.utf8.count + text.utf8.count + reserve <= maxBytes { out += text } else { left += 1 }
        }
        let plain = DriftRenderer(style: Style(enabled: false))
        if !report.drifted.isEmpty {
            out += "#### Changed outside orgctl (as applied -> as stored now)\n\n```diff\n"
            for item in report.drifted { add(plain.lines(item, style: plain.style).map(fence).joined()) }
            out += "```\n\n"
        }
        if report.pendingCount > 0 {
            out += "#### Configuration changes not yet applied\n\n```diff\n"
            let renderer = PlanRenderer(style: Style(enabled: false))
            for change in report.pending { add(renderer.lines(change, style: renderer.style).map(fence).joined()) }
            if let change = report.pendingPolicies { add(fence(renderer.line(change, style: renderer.style))) }
            out += "```\n\n"
        }
        for warning in warnings { add("- warning: \(TerminalText.escape(warning.message)) (`\(warning.id)`)\n") }
        if left > 0 {
            out += "\n**\(left) more not shown**; see the full report in the job log (`orgctl drift --format text`, or `--max-chars 0`).\n"
        }
        return out
    }

    private static func fence(_ line: String) -> String {
        let trimmed = line.dropFirst(2)
        let marked = trimmed.hasPrefix("+") || trimmed.hasPrefix("-") || trimmed.hasPrefix("~") || trimmed.hasPrefix("=")
        return (marked ? String(trimmed) : "  " + trimmed).replacingOccurrences(of: "```", with: "ˋˋˋ") + "\n"
    }

    // MARK: JSON

    static func json(_ report: DriftReport, stored: StoredState, warnings: [Diagnostic]) -> String {
        let drifted: [[String: Any]] = report.drifted.map { item in
            var object: [String: Any] = [
                "address": item.address, "kind": item.kind.rawValue, "drift": item.drift.rawValue, "appliedKnown": item.appliedKnown,
                "fields": item.fields.map { field -> [String: Any] in
                    ["name": field.name, "applied": jsonValue(field.applied), "now": jsonValue(field.now),
                     "sensitive": field.applied.isSecret || field.now.isSecret]
                },
            ]
            if let sequence = item.auditSequence { object["lastAppliedAuditSeq"] = sequence }
            return object
        }
        let pending: [[String: Any]] = report.pending.map { change in
            var object: [String: Any] = [
                "address": change.address, "kind": change.kind.rawValue, "action": change.action.rawValue,
                "fields": change.fields.map { field -> [String: Any] in
                    ["name": field.name, "before": jsonValue(field.before), "after": jsonValue(field.after),
                     "sensitive": field.before.isSecret || field.after.isSecret]
                },
            ]
            if let reason = change.reason { object["reason"] = reason }
            return object
        }
        let status = DriftCommand.exitStatus(report)
        var document: [String: Any] = [
            "formatVersion": DriftReport.formatVersion,
            "databaseId": stored.databaseID,
            "auditHead": ["sequence": stored.auditHead.sequence, "hash": stored.auditHead.hash],
            "status": status == ExitCode.drift ? "drift" : status == ExitCode.changesPresent ? "pending" : "clean",
            "summary": ["changed": report.count(.changed), "added": report.count(.added), "deleted": report.count(.deleted),
                        "pending": report.pendingCount],
            "drift": drifted,
            "pending": pending,
            "warnings": warnings.map { warning -> [String: Any] in
                var object: [String: Any] = ["id": warning.id, "message": warning.message]
                if let location = warning.location {
                    object["file"] = location.file
                    object["line"] = location.line
                    object["column"] = location.column
                }
                return object
            },
        ]
        if let targeting = report.plan.targeting { document["targeting"] = PlanRenderer.jsonObject(targeting) }
        if let change = report.pendingPolicies { document["policyChange"] = PlanRenderer.jsonObject(change) }
        return JSONOutput.string(document)
    }

    /// Values as plan JSON writes them (secrets redacted).
    private static func jsonValue(_ value: Value) -> Any { PlanRenderer.jsonValue(value) }

    // MARK: Prometheus

    /// The text exposition format (version 0.0.4): every kind of resource and of drift, zeros
    /// included, so a series never disappears between runs.
    static func metrics(_ report: DriftReport, expiredKeys: Int, status: Int32, now: Date) -> String {
        var drifted: [String: Int] = [:]
        for item in report.drifted { drifted["\(item.kind.rawValue)|\(item.drift.rawValue)", default: 0] += 1 }
        var pending: [String: Int] = [:]
        for change in report.pending { pending["\(change.kind.rawValue)|\(change.action.rawValue)", default: 0] += 1 }
        var out = """
            # HELP orgctl_drift_resources Rows changed, added or deleted outside orgctl since its last apply.
            # TYPE orgctl_drift_resources gauge

            """
        for kind in ResourceKind.allCases {
            for drift in DriftReport.Kind.allCases {
                out += "orgctl_drift_resources{kind=\"\(kind.rawValue)\",drift=\"\(drift.rawValue)\"} \(drifted["\(kind.rawValue)|\(drift.rawValue)"] ?? 0)\n"
            }
        }
        out += """
            # HELP orgctl_drift_pending_changes Configuration changes not yet applied.
            # TYPE orgctl_drift_pending_changes gauge

            """
        for kind in ResourceKind.allCases {
            for action in Action.allCases {
                out += "orgctl_drift_pending_changes{kind=\"\(kind.rawValue)\",action=\"\(action.rawValue)\"} \(pending["\(kind.rawValue)|\(action.rawValue)"] ?? 0)\n"
            }
        }
        out += """
            # HELP orgctl_drift_pending_policies 1 when the configuration's policies differ from the ones the state recorded (apply records them).
            # TYPE orgctl_drift_pending_policies gauge
            orgctl_drift_pending_policies \(report.pendingPolicies == nil ? 0 : 1)
            # HELP orgctl_drift_expired_api_keys API keys the configuration declares whose expiry date has passed.
            # TYPE orgctl_drift_expired_api_keys gauge
            orgctl_drift_expired_api_keys \(expiredKeys)
            # HELP orgctl_drift_status The exit status of the check: 0 clean, 2 configuration changes not yet applied, 3 drift.
            # TYPE orgctl_drift_status gauge
            orgctl_drift_status \(status)
            # HELP orgctl_drift_last_run_timestamp_seconds When the check ran (Unix time; ORGCTL_NOW when set).
            # TYPE orgctl_drift_last_run_timestamp_seconds gauge
            orgctl_drift_last_run_timestamp_seconds \(Int64(now.timeIntervalSince1970))

            """
        return out
    }
}

extension Value {
    var isSecret: Bool {
        if case .secret = self { return true }
        return false
    }
}
