import Foundation
import Spec
import StateStore

/// `orgctl export --state DB OUT`: write a configuration folder from the stored state.
enum ExportCommand {
    static let spec = CommandSpec(
        name: "export",
        abstract: "Write a configuration folder (platform.yaml, one file per tenant) from the state database.",
        discussion: """
            Reads the state database (read-only) and writes OUT/platform.yaml, OUT/tenants/<slug>.yaml and \
            OUT/certs/<tenant>-<provider>.pem, so that 'orgctl plan OUT' against the same database shows no changes. \
            Secrets cannot be exported: each becomes {env: NAME} with a comment; set every NAME listed on standard \
            error to the secret's value before planning. Existing files are never overwritten unless --force is given. \
            Works on a platform database that orgctl did not create, as the first step of adopting it.
            Exit status: 0 written, 1 error (nothing was written), 64 usage error.
            """,
        arguments: [ArgumentSpec("out", help: "The folder to write (created if needed).")],
        options: [
            .flag("force", help: "Overwrite files that already exist in OUT."),
        ] + StateAccess.readOptions)

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let out = command.argument("out") ?? "."
        let console = context.console
        let path = StateAccess.path(command, context)
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandFailure(message: "the state database '\(path)' does not exist; there is nothing to export",
                                 help: "pass the database with --state (or ORGCTL_STATE)")
        }
        let store = try StateAccess.open(command, context, access: .readOnly, key: try StateAccess.key(command, context))
        let stored = try StateAccess.read(store)
        guard !stored.resources.isEmpty else {
            throw CommandFailure(message: "the state database '\(path)' holds no resources; there is nothing to export",
                                 help: "check the path given by --state")
        }
        let exporter = ConfigurationExporter(resources: stored.resources.map(\.resource))
        let manager = FileManager.default
        if !command.flag("force") {
            let existing = exporter.files.map { (out as NSString).appendingPathComponent($0.path) }.filter { manager.fileExists(atPath: $0) }
            if !existing.isEmpty {
                let shown = existing.prefix(5).joined(separator: ", ") + (existing.count > 5 ? ", … (\(existing.count) files)" : "")
                throw CommandFailure(message: "export would overwrite \(shown); nothing was written",
                                     help: "export into a new or empty folder, or pass --force to overwrite")
            }
        }
        for file in exporter.files {
            let target = (out as NSString).appendingPathComponent(file.path)
            do {
                try manager.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(file.text.utf8).write(to: URL(fileURLWithPath: target))
            } catch {
                throw CommandFailure(message: "cannot write '\(target)': \(error.localizedDescription)", help: "check the folder and its permissions")
            }
        }
        let tenants = exporter.files.count { $0.path.hasPrefix("tenants/") }
        console.print("Exported \(stored.resources.count) resources (\(tenants) tenant\(tenants == 1 ? "" : "s")) to \(out).")
        if !exporter.secrets.isEmpty {
            console.info("Set these environment variables to the secrets' values before 'orgctl plan \(out)':")
            for secret in exporter.secrets { console.info("  \(secret.variable)  (\(secret.address) \(secret.attribute))") }
        }
        if store?.isUnadopted ?? false {
            console.info("This database was not written by orgctl. Review \(out), then adopt it with: orgctl apply \(out) --state \(path) --adopt")
        }
        return ExitCode.success
    }
}
