import Foundation
import Reconciler
import StateStore

/// `orgctl show PLANFILE`: a saved plan, as plan printed it, for the reviewer of the artifact that
/// `apply PLANFILE` will apply. Reads only the file: no database, no secrets.
enum ShowCommand {
    static let spec = CommandSpec(
        name: "show",
        abstract: "Print a plan saved by 'orgctl plan --out'.",
        discussion: """
            Reads PLANFILE (and nothing else: no database, no secrets) and prints the plan it holds as \
            'orgctl plan' does, after a header naming the plan id, the database and audit entry it was \
            made against, its source, and whether it is authentic: with the state key (ORGCTL_STATE_KEY \
            or --state-key-file) its authentication code is checked as 'apply PLANFILE' checks it, and a \
            plan changed since 'orgctl plan --out' wrote it is printed with an error, exit 1. Secrets show only as (sensitive) or (changed). \
            Tenants the plan deletes are marked protected, as in plan: 'apply PLANFILE' refuses them \
            unless given --allow-delete-tenant (the share of a tenant a plan deletes is judged against \
            the database when applying).
            Exit status: 0 success, 1 the file cannot be read, is not a saved plan, or fails its \
            authentication check, 64 usage error.
            """,
        arguments: [ArgumentSpec("planfile", help: "A plan file saved by 'orgctl plan --out'.")],
        options: [
            .option("format", valueName: "format", help: "Output format.", default: "text", allowedValues: ["text", "json", "markdown"]),
            StateAccess.keyFileOption,
        ])

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let path = command.argument("planfile") ?? ""
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
            let data = FileManager.default.contents(atPath: path)
        else {
            throw CommandFailure(message: "cannot read the saved plan '\(TerminalText.escape(path))'",
                                 help: isDirectory.boolValue ? "pass a file saved with 'orgctl plan --out FILE'; for a folder run 'orgctl plan DIR'"
                                     : "check the path and its permissions")
        }
        let (file, plan) = try SavedPlan.decode(data, path: path, purpose: "shown", help: "pass a plan saved with 'orgctl plan --out FILE'")
        // Checked as apply checks it, when the key is at hand; the plan is shown either way.
        var forged: String?
        var authenticity = "not checked: no state key was given (apply checks it; pass ORGCTL_STATE_KEY or --state-key-file)"
        if let key = try StateAccess.key(command, context) {
            do {
                try file.verify(with: key)
                authenticity = "authentic: written by 'orgctl plan --out' with this state key, unchanged since"
            } catch {
                forged = error.description
                authenticity = "NOT AUTHENTIC: \(error.description); apply will refuse it"
            }
        }
        // Without the database only whole-tenant deletions are known; apply judges the rest.
        let protected = Reconciler.tenantDeletions(plan, stored: nil, policy: TenantDeletionPolicy())
        let console = context.console
        // As judged when the plan was saved (under the MAC).
        let policies = PolicyReport(checks: (file.policies ?? []).compactMap(\.check))
        switch command.value("format") ?? "text" {
        case "json": console.print(PlanRenderer.json(plan, protected: protected, policies: policies))
        case "markdown":
            console.out(header(file, authenticity: authenticity, markdown: true) + PlanRenderer.markdown(plan, protected: protected, policies: policies))
        default:
            let style = console.style(forStdout: true)
            console.out(header(file, authenticity: authenticity, markdown: false) + PlanRenderer(style: style).text(plan)
                + TenantDeletionOptions.text(protected, style: style) + PolicyRenderer.text(policies, style: style, quietWhenPassing: plan.isEmpty))
        }
        if let forged {
            throw CommandFailure(message: "'\(TerminalText.escape(path))' is not the plan 'orgctl plan --out' wrote with this state key: \(forged)",
                                 help: "do not apply it; make a new plan with 'orgctl plan --out FILE' and review that")
        }
        return ExitCode.success
    }

    /// Where the plan comes from: id, orgctl version, source, database and audit head.
    static func header(_ file: PlanFile, authenticity: String, markdown: Bool) -> String {
        let database = file.databaseID.isEmpty ? "a new (empty) state database" : "database \(file.databaseID)"
        let lines = [
            "Saved plan \(file.planID), made by orgctl \(file.orgctlVersion) from \(file.source)",
            "against \(database) at audit entry \(file.auditHead.sequence)",
            authenticity,
        ].map(TerminalText.escape)
        if markdown { return lines.map { "> \($0.replacingOccurrences(of: "<", with: "&lt;"))" }.joined(separator: "\n") + "\n\n" }
        return lines.joined(separator: "\n") + "\n\n"
    }
}

/// Reading a saved plan for `show` and `apply PLANFILE`: the file and the plan it describes.
enum SavedPlan {
    /// - Parameter purpose: `shown`, `applied`: in "'FILE' cannot be …: why".
    static func decode(_ data: Data, path: String, purpose: String, help: String) throws -> (PlanFile, Plan) {
        do {
            let file = try PlanFile.decode(data)
            return (file, try file.plan())
        } catch {
            throw CommandFailure(message: "'\(TerminalText.escape(path))' cannot be \(purpose): \(error.description)", help: help)
        }
    }
}
