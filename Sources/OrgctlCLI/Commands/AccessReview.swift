import Audit
import Foundation
import Reconciler
import Spec

/// `orgctl access review`: every member of a tenant (or of all), their role, effective permissions, teams,
/// guest expiry, and when and by whom each membership last changed (the audit log's last entry at its
/// address). Written one tenant at a time, so a review of 10,000 tenants streams.
extension AccessCommand {
    static func review(_ command: ParsedCommand, _ context: CommandContext, format: String) throws -> Int32 {
        if command.value("can") != nil || command.value("who-can") != nil {
            throw CommandFailure(message: "'access review' takes neither --can nor --who-can", help: "orgctl access review --tenant SLUG --format csv",
                                 exitCode: ExitCode.usage)
        }
        let format = format == "text" ? "markdown" : format
        let slug = command.value("tenant")
        let source = try load(command, context, slug: slug, history: true)
        let model = source.model
        let addresses = try slug.map { [try tenant($0, model).address] } ?? model.tenantAddresses
        let console = context.console
        let generated = ISO8601DateFormatter().string(from: context.now)
        switch format {
        case "csv":
            console.out(csvHeader.joined(separator: ",") + "\n")
        case "json":
            console.out("{\n\"formatVersion\": 1,\n\"generated\": \(jsonText(generated)),\n\"today\": \(jsonText(model.today.text)),\n\"members\": [\n")
        default:
            console.out("# Access review\n\nGenerated \(generated) from \(command.value("config").map { "the configuration in \(markdownCode($0))" } ?? "the state database \(markdownCode(StateAccess.path(command, context)))").\n"
                + (source.history == nil ? "With --config there is no audit log: the last-changed columns are empty.\n" : "") + "\n")
        }
        var first = true
        for address in addresses {
            guard let tenant = model.tenant(String(address.dropFirst("tenant/".count))) else { continue }
            var chunk = ""
            if format == "markdown" {
                chunk += "## \(markdownCode(tenant.address))\n\nPlan \(markdownCode(tenant.plan ?? "?")), status \(markdownCode(tenant.status ?? "not managed"))"
                chunk += "; SSO \(tenant.ssoEnforced ? "enforced" : "not enforced"), MFA \(tenant.mfa == "required" ? "required" : "not required"); "
                chunk += "\(tenant.members.count) member\(tenant.members.count == 1 ? "" : "s").\n\n"
                if !tenant.members.isEmpty {
                    chunk += "| member | role | effective permissions | teams | expires | last changed | by |\n|---|---|---|---|---|---|---|\n"
                }
            }
            for member in tenant.members {
                let row = reviewRow(member, tenant: tenant, model, history: source.history)
                switch format {
                case "csv": chunk += csvHeader.map { csvField(row[$0] ?? "") }.joined(separator: ",") + "\n"
                case "json":
                    chunk += (first ? "" : ",\n") + jsonRow(row)
                    first = false
                default:
                    let cells = ["email", "role", "permissions", "teams", "expires", "last_changed", "last_changed_by"].map { key -> String in
                        var value = row[key] ?? ""
                        if key == "expires", row["expired"] == "true" { value += " (expired)" }
                        if key == "role", row["role_kind"] == "tenant" { value += " (custom)" }
                        return value.isEmpty ? "" : markdownCell(value)
                    }
                    chunk += "| " + cells.joined(separator: " | ") + " |\n"
                }
            }
            if format == "markdown" { chunk += "\n" }
            console.out(chunk)
        }
        if format == "json" { console.out("\n]\n}\n") }
        return ExitCode.success
    }

    static let csvHeader = ["tenant", "email", "role", "role_kind", "permissions", "teams", "expires", "expired", "last_changed",
                            "last_changed_by", "last_action", "last_source", "last_plan"]

    /// One member's row: every value a string (lists joined with spaces).
    static func reviewRow(_ member: AccessModel.Member, tenant: AccessModel.Tenant, _ model: AccessModel,
                          history: [String: AuditFacts]?) -> [String: String] {
        let explanation = model.explain(member.email, tenant: tenant)
        let role = explanation?.role
        var row: [String: String] = [
            "tenant": tenant.slug, "email": member.email, "role": member.role,
            "role_kind": role.map { $0.isSystem ? "system" : "tenant" } ?? "undeclared",
            "permissions": (explanation?.grants.map(\.permission) ?? []).joined(separator: " "),
            "teams": (explanation?.teams.map { "\($0.team):\($0.role)" } ?? []).joined(separator: " "),
            "expires": member.expires ?? "", "expired": model.isExpired(member) ? "true" : "false",
        ]
        if let entry = history?[member.address] {
            row["last_changed"] = entry.time
            row["last_changed_by"] = entry.actor
            row["last_action"] = entry.action
            row["last_source"] = entry.source
            row["last_plan"] = entry.planID
        }
        return row
    }

    /// A JSON string literal, written by hand (with ``JSON/quote(_:)``) because a review of 200,000 members is one row each.
    static func jsonString(_ text: String) -> String { JSON.quote(text) }

    /// RFC 4180 quoting; a value a spreadsheet would run as a formula (=, +, -, @, tab, CR) gets a leading
    /// apostrophe, so a member's e-mail or an actor name cannot inject one (OWASP "CSV injection").
    static func csvField(_ value: String) -> String {
        var text = TerminalText.escape(value)
        if let first = text.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) { text = "'" + text }
        if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "'" }) {
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }

    /// One member as a JSON object on one line, keys sorted: lists as arrays, `expired` a boolean, absent values null.
    static func jsonRow(_ row: [String: String]) -> String {
        var members: [String] = []
        for key in csvHeader.sorted() {
            let value = row[key] ?? ""
            let json: String
            switch key {
            case "permissions": json = "[" + value.split(separator: " ").map { jsonString(String($0)) }.joined(separator: ",") + "]"
            case "teams":
                json = "[" + value.split(separator: " ").map { part -> String in
                    let pieces = part.split(separator: ":", maxSplits: 1)
                    return "{\"role\":\(jsonString(String(pieces.count > 1 ? pieces[1] : ""))),\"team\":\(jsonString(String(pieces.first ?? "")))}"
                }.joined(separator: ",") + "]"
            case "expired": json = value == "true" ? "true" : "false"
            case "expires", "last_changed", "last_changed_by", "last_action", "last_source", "last_plan": json = value.isEmpty ? "null" : jsonString(value)
            default: json = jsonString(value)
            }
            members.append("\(jsonString(key)):\(json)")
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    static func jsonText(_ text: String) -> String { jsonString(text) }

    /// Inline code: a backtick in the text becomes a look-alike, so it cannot close the span.
    static func markdownCode(_ text: String) -> String { "`" + TerminalText.escape(text).replacingOccurrences(of: "`", with: "ˋ") + "`" }

    static func markdownCell(_ text: String) -> String {
        PlanRenderer.markdownEscape(text).replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}
