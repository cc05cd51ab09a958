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
            Reads PLANFILE (and nothing else: no database, no secrets, no state key) and prints the plan \
            it holds as 'orgctl plan' does, after a header naming the plan id, the database and audit \
            entry it was made against, and its source. Secrets show only as (sensitive) or (changed). \
            Tenants the plan deletes are marked protected, as in plan: 'apply PLANFILE' refuses them \
            unless given --allow-delete-tenant (the share of a tenant a plan deletes is judged against \
            the database when applying).
            Exit status: 0 success, 1 the file cannot be read or is not a saved plan, 64 usage error.
            """,
        arguments: [ArgumentSpec("planfile", help: "A plan file saved by 'orgctl plan --out'.")],
        options: [
            .option("format", valueName: "format", help: "Output format.", default: "text", allowedValues: ["text", "json", "markdown"]),
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
        // Without the database only whole-tenant deletions are known; apply judges the rest.
        let protected = Reconciler.tenantDeletions(plan, stored: nil, policy: TenantDeletionPolicy())
        let console = context.console
        switch command.value("format") ?? "text" {
        case "json": console.print(PlanRenderer.json(plan, protected: protected))
        case "markdown": console.out(header(file, markdown: true) + PlanRenderer.markdown(plan, protected: protected))
        default:
            let style = console.style(forStdout: true)
            console.out(header(file, markdown: false) + PlanRenderer(style: style).text(plan) + TenantDeletionOptions.text(protected, style: style))
        }
        return ExitCode.success
    }

    /// Where the plan comes from: id, orgctl version, source, database and audit head.
    static func header(_ file: PlanFile, markdown: Bool) -> String {
        let database = file.databaseID.isEmpty ? "a new (empty) state database" : "database \(file.databaseID)"
        let lines = [
            "Saved plan \(file.planID), made by orgctl \(file.orgctlVersion) from \(file.source)",
            "against \(database) at audit entry \(file.auditHead.sequence)",
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
