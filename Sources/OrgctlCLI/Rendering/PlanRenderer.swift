import Foundation
import Reconciler
import Spec
import StateStore

/// Renders plans for people (text, Markdown) and programs (JSON). Secret values never reach it:
/// secrets are known only by fingerprint, shown as `(sensitive)` or `(changed)`.
struct PlanRenderer {
    var style: Style

    func text(_ plan: Plan) -> String {
        let targeting = plan.targeting.map { style.yellow("\n" + $0.note) + "\n" } ?? ""
        guard !plan.isEmpty else { return Self.noChanges(plan) + "\n" + targeting }
        var out = "orgctl will perform these actions:\n\n"
        for change in plan.changes {
            // Each line appended in place (no joined string per change, then a copy of it).
            for line in lines(change, style: style) {
                out += line
                out += "\n"
            }
        }
        if let change = plan.policyChange { out += line(change, style: style) + "\n" }
        out += "\n" + style.bold(plan.summary) + "\n" + targeting
        return out
    }

    /// The recorded policies' line, after the resources: `~ policies (digest 1a2b3c4d5e6f -> 9f8e7d6c5b4a)  # protectedResources`
    /// (the digests' first 12 hex digits; the rules added, changed or removed, at most 10 named).
    func line(_ change: PolicyChange, style: Style) -> String {
        let symbol = switch change.action {
        case .create: style.green("+")
        case .delete: style.red("-")
        default: style.yellow("~")
        }
        let digests = [change.before, change.after].compactMap { $0?.shortDigest }.joined(separator: " -> ")
        let rules = change.changedRules
        let named = rules.prefix(10).map(TerminalText.escape).joined(separator: ", ") + (rules.count > 10 ? " and \(rules.count - 10) more" : "")
        let note = change.after == nil ? "the configuration declares none" : named
        return "  \(symbol) \(style.bold(PolicyChange.address)) (digest \(digests))" + style.dim("  # \(note)")
    }

    /// What an empty plan says: with targeting in effect, only that the targeted addresses match.
    static func noChanges(_ plan: Plan) -> String {
        guard let targeting = plan.targeting else { return "No changes. The state database matches the configuration." }
        return targeting.omitted == 0
            ? "No changes. The state database matches the configuration." : "No changes in the addresses selected by \(targeting.options)."
    }

    /// One change as lines: the address line, then one line per field.
    func lines(_ change: Change, style: Style) -> [String] {
        let symbol: String
        switch change.action {
        case .create: symbol = style.green("+")
        case .update: symbol = style.yellow("~")
        case .delete: symbol = style.red("-")
        case .adopt: symbol = style.cyan("=")
        }
        // Addresses, reasons and names may come from the state database: each is escaped as one value.
        var head = "  \(symbol) \(style.bold(TerminalText.escape(change.address)))"
        let outsideReason = change.reason.map { $0.hasSuffix("outside orgctl") } ?? false
        if change.changedOutside {
            head += " " + style.yellow("(\(TerminalText.escape(outsideReason ? change.reason ?? "" : "changed outside orgctl")))")
        }
        if let from = change.renamedFrom { head += " " + style.cyan("(renamed from \(TerminalText.escape(from)))") }
        if let reason = change.reason, !outsideReason { head += style.dim("  # \(TerminalText.escape(reason))") }
        var result = [head]
        for (field, name) in zip(change.fields, Self.aligned(change.fields.map { TerminalText.escape($0.name) })) {
            switch change.action {
            case .create: result.append("      \(name) = \(Self.show(field.after))")
            case .adopt: result.append(style.dim("      \(name) = \(Self.show(field.after))"))
            case .delete: result.append(style.dim("      \(name) = \(Self.show(field.before))"))
            case .update: result.append("      \(name) : \(Self.show(field.before)) -> \(Self.showAfter(field))")
            }
        }
        if let key = change.key { result.append("      key: \(key.description)") }
        return result
    }

    /// Field names padded to one column (at most 32 wide; a longer name sticks out), for the
    /// `name = value` lines below a resource.
    static func aligned(_ names: [String]) -> [String] {
        let width = min(32, names.map(\.count).max() ?? 0)
        return names.map { name in
            // ASCII (every name of the format): one byte, one character, one UTF-16 unit.
            guard name.utf8.allSatisfy({ $0 < 0x80 }) else { return name.padding(toLength: max(width, name.count), withPad: " ", startingAt: 0) }
            let count = name.utf8.count
            return count >= width ? name : name + String(repeating: " ", count: width - count)
        }
    }

    static func show(_ value: Value) -> String {
        switch value {
        case .string(let s): return TerminalText.quoted(s)
        case .list(let l): return "[" + l.map(TerminalText.quoted).joined(separator: ", ") + "]"
        default: return TerminalText.escape(value.description)
        }
    }

    static func showAfter(_ field: FieldChange) -> String {
        if case .secret = field.after, case .secret = field.before { return "(changed)" }
        return show(field.after)
    }

    // MARK: Markdown

    /// The default `plan --format markdown` budget: under GitHub's 65,536-character comment limit,
    /// with room for the text a pipeline puts around the plan.
    static let defaultMarkdownBudget = 60_000

    /// For a pull-request comment: the summary first, then one collapsible section per tenant.
    ///
    /// - Parameter maxBytes: the budget in UTF-8 bytes (so in characters too), 0 for none. A plan
    ///   that does not fit is shown by importance instead (``budgetedMarkdown(_:protected:maxBytes:)``).
    static func markdown(_ plan: Plan, protected: [TenantDeletion] = [], maxBytes: Int = defaultMarkdownBudget,
                         policies: PolicyReport = PolicyReport(checks: [])) -> String {
        guard !plan.isEmpty else {
            let notes = markdownNotes(plan, protected: protected, maxBytes: maxBytes) + PolicyRenderer.markdown(policies)
            if notes.isEmpty { return "### orgctl plan\n\n**No changes.** The state database matches the configuration.\n" }
            return "### orgctl plan\n\n**\(markdownEscape(noChanges(plan)))**\n\n" + notes
        }
        var out = "### orgctl plan\n\n**\(plan.summary)**\n\n" + markdownNotes(plan, protected: protected, maxBytes: maxBytes)
            + PolicyRenderer.markdown(policies) + markdownPolicyChange(plan)
        var groups: [String: [Change]] = [:]
        var order: [String] = []
        for change in plan.changes {
            if groups[change.group] == nil { order.append(change.group) }
            groups[change.group, default: []].append(change)
        }
        for group in order.sorted() {
            let changes = groups[group] ?? []
            let counts = Action.allCases.compactMap { action -> String? in
                let n = changes.count { $0.action == action }
                return n == 0 ? nil : "\(action.symbol)\(n)"
            }
            out += "<details><summary><code>\(htmlEscape(TerminalText.escape(group)))</code> \(counts.joined(separator: " "))</summary>\n\n```diff\n"
            for change in changes { out += diffLines(change) }
            out += "```\n\n</details>\n\n"
            // Stop as soon as it is too large: a plan of 100,000 changes is not rendered whole only to be cut.
            if maxBytes > 0, out.utf8.count > maxBytes { return budgetedMarkdown(plan, protected: protected, maxBytes: maxBytes, policies: policies) }
        }
        return out
    }

    /// What a reader must see before the changes: an empty state, targeting, and the tenants the plan
    /// deletes (protected or confirmed). Kept ahead of any change, so a budgeted plan never drops them.
    /// The notes above the changes. The tenant deletions take at most half of `maxBytes` (0: no limit);
    /// the rest are counted, so deleting thousands of tenants cannot blow the comment's budget.
    private static func markdownNotes(_ plan: Plan, protected: [TenantDeletion], maxBytes: Int) -> String {
        var out = ""
        if !plan.stateExists {
            out += "> **Note:** the state database does not exist yet: this plan is against an empty state (apply creates it).\n\n"
        }
        if let targeting = plan.targeting { out += "> **Warning:** \(markdownEscape(targeting.note))\n\n" }
        for (index, deletion) in protected.enumerated() {
            let text = "\(TenantDeletionOptions.describe(deletion)); \(TenantDeletionOptions.consequence(deletion))"
            let note = "> **\(deletion.confirmed ? "Confirmed" : "Protected"):** \(htmlEscape(TerminalText.escape(text)))\n\n"
            if maxBytes > 0, out.utf8.count + note.utf8.count > maxBytes / 2 {
                let rest = protected[index...]
                let unconfirmed = rest.count { !$0.confirmed }
                out += "> **\(rest.count) more tenant deletion\(rest.count == 1 ? "" : "s") not shown** (\(unconfirmed) protected: apply "
                    + "refuses \(unconfirmed == 1 ? "it" : "them") without --allow-delete-tenant); see the full plan in the job log or the plan artifact.\n\n"
                break
            }
            out += note
        }
        return out
    }

    /// The recorded policies' line as a ```diff block, before the resources (empty when they do not change).
    private static func markdownPolicyChange(_ plan: Plan) -> String {
        guard let change = plan.policyChange else { return "" }
        let plain = PlanRenderer(style: Style(enabled: false))
        return "```diff\n" + plain.line(change, style: plain.style).dropFirst(2).replacingOccurrences(of: "```", with: "ˋˋˋ") + "\n```\n\n"
    }

    /// A change as the lines of a ```diff block (the marker in the first column, for highlighting).
    private static func diffLines(_ change: Change) -> String {
        let plain = PlanRenderer(style: Style(enabled: false))
        var out = ""
        for line in plain.lines(change, style: plain.style) {
            let trimmed = line.dropFirst(2)
            out += (trimmed.hasPrefix("+") || trimmed.hasPrefix("-") || trimmed.hasPrefix("~") ? String(trimmed) : "  " + trimmed)
                .replacingOccurrences(of: "```", with: "ˋˋˋ") + "\n"
        }
        return out
    }

    /// How much a reviewer must see a change: 0 deletes, 1 security-relevant (who has access and
    /// with what: members, roles, permissions, SSO, webhooks, API keys, security settings, keys
    /// issued, and anything changed outside orgctl), 2 the rest.
    static func importance(_ change: Change) -> Int {
        if change.action == .delete { return 0 }
        switch change.kind {
        case .member, .teamMember, .role, .tenantRole, .permission, .ssoProvider, .webhook, .apiKey: return 1
        default: break
        }
        if change.changedOutside || change.key != nil || change.fields.contains(where: { $0.name.hasPrefix("security") || $0.name.hasPrefix("sso") }) {
            return 1
        }
        return 2
    }

    /// The plan that does not fit: the summary, then deletes, security-relevant changes and the rest,
    /// in plan order within each, as many as fit in `maxBytes`, then how many were left out.
    static func budgetedMarkdown(_ plan: Plan, protected: [TenantDeletion] = [], maxBytes: Int,
                                 policies: PolicyReport = PolicyReport(checks: [])) -> String {
        let total = plan.changes.count
        var out = "### orgctl plan\n\n**\(plan.summary)**\n\n" + markdownNotes(plan, protected: protected, maxBytes: maxBytes)
            + PolicyRenderer.markdown(policies) + markdownPolicyChange(plan)
        out += "This plan is too large to show by tenant in one comment: the most important changes come first (deletes, then "
            + "security-relevant changes, then the rest).\n\n"
        // Room kept for closing the last section and the footer.
        let reserve = 600
        var shown = 0
        var full = false
        let buckets = [(0, "Deletes"), (1, "Security-relevant changes"), (2, "Other changes")]
        for (level, title) in buckets where !full {
            let changes = plan.changes.filter { importance($0) == level }
            guard !changes.isEmpty else { continue }
            let head = "<details open><summary>\(title) (\(changes.count))</summary>\n\n```diff\n"
            guard out.utf8.count + head.utf8.count + reserve <= maxBytes else { break }
            out += head
            for change in changes {
                let lines = diffLines(change)
                if out.utf8.count + lines.utf8.count + reserve > maxBytes {
                    full = true
                    break
                }
                out += lines
                shown += 1
            }
            out += "```\n\n</details>\n\n"
        }
        if shown < total {
            out += "**\(total - shown) more change\(total - shown == 1 ? "" : "s") not shown** (\(shown) of \(total) shown); "
                + "see the full plan in the job log or the plan artifact (`orgctl plan --format text`, or `--max-chars 0`).\n"
        }
        return out
    }

    /// Patterns are user text: keep `*` and friends from turning into emphasis.
    static func markdownEscape(_ s: String) -> String {
        var out = ""
        for character in htmlEscape(TerminalText.escape(s)) {
            if "\\`*_[]#|~".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }

    private static func htmlEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    // MARK: JSON

    /// The versioned plan document described in docs/plan-json.md.
    static func json(_ plan: Plan, protected: [TenantDeletion] = [], policies: PolicyReport = PolicyReport(checks: [])) -> String {
        let changes: [[String: Any]] = plan.changes.map { change in
            var object: [String: Any] = [
                "address": change.address, "kind": change.kind.rawValue, "action": change.action.rawValue,
                "changedOutside": change.changedOutside,
                "fields": change.fields.map { field -> [String: Any] in
                    ["name": field.name, "before": jsonValue(field.before), "after": jsonValue(field.after),
                     "sensitive": isSecret(field.before) || isSecret(field.after)]
                },
            ]
            if let reason = change.reason { object["reason"] = reason }
            if let from = change.renamedFrom { object["renamedFrom"] = from }
            if let key = change.key { object["key"] = key.rawValue }
            return object
        }
        var summary = ["add": plan.count(.create), "change": plan.count(.update), "destroy": plan.count(.delete)]
        if plan.count(.adopt) > 0 { summary["adopt"] = plan.count(.adopt) }  // only then: older readers see no new key
        var document: [String: Any] = [
            "formatVersion": Plan.formatVersion,
            "planId": plan.id,
            "databaseId": plan.databaseID,
            "auditHead": ["sequence": plan.auditHead.sequence, "hash": plan.auditHead.hash],
            "summary": summary,
            "changes": changes,
        ]
        if let targeting = plan.targeting { document["targeting"] = jsonObject(targeting) }
        if !plan.stateExists { document["stateExists"] = false }  // only then: older readers see no new key
        if let change = plan.policyChange { document["policyChange"] = jsonObject(change) }  // only then: plans that record no policies are unchanged
        if !protected.isEmpty { document["protectedDeletions"] = TenantDeletionOptions.json(protected) }
        if !policies.isEmpty {  // only then: plans of configurations without policies are unchanged
            document["policyChecks"] = PolicyRenderer.json(policies)
            document["policySummary"] = PolicyRenderer.jsonSummary(policies)
        }
        return JSONOutput.string(document)
    }

    /// `policyChange` in plan and drift JSON: present only when the configuration's policies differ from the recorded ones.
    static func jsonObject(_ change: PolicyChange) -> [String: Any] {
        ["action": change.action.rawValue, "before": change.before?.digest ?? NSNull(), "after": change.after?.digest ?? NSNull(),
         "rules": change.changedRules]
    }

    /// `targeting` in plan and drift JSON: present only when --target or --exclude was given.
    static func jsonObject(_ targeting: Targeting) -> [String: Any] {
        ["targets": targeting.targets, "excludes": targeting.excludes, "omittedChanges": targeting.omitted,
         "unmatchedTargets": targeting.unmatchedTargets, "unmatchedExcludes": targeting.unmatchedExcludes]
    }

    private static func isSecret(_ value: Value) -> Bool {
        if case .secret = value { return true }
        return false
    }

    /// A value in plan (and drift) JSON: secrets as `(sensitive)`, documents by their SHA-256.
    static func jsonValue(_ value: Value) -> Any {
        switch value {
        case .null: NSNull()
        case .bool(let b): b
        case .int(let i): i
        case .string(let s): s
        case .list(let l): l
        case .secret: "(sensitive)"
        case .document(let sha256, _): "sha256:\(sha256)"
        }
    }
}
