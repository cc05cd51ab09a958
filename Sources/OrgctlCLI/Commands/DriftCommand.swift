import Foundation
import Reconciler
import Spec
import StateStore

/// `orgctl drift DIR`: what changed outside orgctl since its last apply, apart from configuration
/// changes not applied yet. For scheduled jobs: a distinct exit status and Prometheus metrics.
enum DriftCommand {
    static let spec = CommandSpec(
        name: "drift",
        abstract: "Report changes made outside orgctl, apart from configuration changes not yet applied.",
        discussion: """
            Validates DIR and reads the state database (read-only), then reports (a) rows changed, added or \
            deleted outside orgctl since its last apply, field by field with the value as applied and as stored \
            now, and (b) configuration changes not yet applied. 'orgctl apply DIR' reverts (a) and applies (b).
            Exit status: 0 no drift and no pending changes, 3 drift, 2 only configuration changes not yet applied, \
            1 invalid configuration or error, 64 usage error.
            """,
        arguments: [ArgumentSpec("dir", help: "The configuration folder.")],
        options: [
            .option("format", valueName: "format", help: "Output format.", default: "text", allowedValues: ["text", "json", "markdown"]),
            .option("metrics", valueName: "file",
                    help: "Also write counts in the Prometheus text format to FILE (replaced atomically), for a node-exporter textfile collector."),
            .option("max-chars", valueName: "n",
                    help: "With --format markdown: keep the output under N characters, changes outside orgctl first, then how many were left out; 0 for no limit.",
                    default: "60000, under the 65,536 characters of a GitHub comment and the 1 MiB of a job summary", type: .integer(min: 0)),
        ] + PlanCommand.targetOptions + StateAccess.options + ValidateCommand.inputOptions)

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let directory = command.argument("dir") ?? "."
        try FileOutput.checkFolder(of: command.value("metrics"), option: "metrics")
        let format = command.value("format") ?? "text"
        let planned = try MachineFailure.reporting(format, title: "drift", formatVersion: DriftReport.formatVersion, context.console) {
            try Planning.make(command, context, directory: directory, access: .readOnly, withApplied: true, missingState: .error)
        }
        let report = Reconciler.drift(plan: planned.plan, stored: planned.stored, applied: planned.applied,
                                      targets: command.values("target").map(AddressPattern.init),
                                      excludes: command.values("exclude").map(AddressPattern.init))
        let expiredKeys = planned.warnings.filter { $0.id == "spec.apikey-expired" }
        let console = context.console
        switch format {
        case "json": console.print(DriftRenderer.json(report, stored: planned.stored, warnings: expiredKeys))
        case "markdown":
            console.out(DriftRenderer.markdown(report, warnings: expiredKeys,
                                               maxBytes: command.integer("max-chars") ?? PlanRenderer.defaultMarkdownBudget))
        default: console.out(DriftRenderer(style: console.style(forStdout: true)).text(report, directory: directory, warnings: expiredKeys))
        }
        let status = exitStatus(report)
        if let file = command.value("metrics") {
            let text = DriftRenderer.metrics(report, expiredKeys: expiredKeys.count, status: status, now: context.now)
            try FileOutput.replaceAtomically(file, data: Data(text.utf8), what: "metrics")
        }
        return status
    }

    static func exitStatus(_ report: DriftReport) -> Int32 {
        if !report.drifted.isEmpty { return ExitCode.drift }
        if report.pendingCount > 0 { return ExitCode.changesPresent }
        return ExitCode.success
    }
}

extension FileOutput {
    /// Writes `data` to a temporary file beside `path` and renames it over `path`, so a reader
    /// (a textfile collector) sees the old file or the new one, never half of one.
    static func replaceAtomically(_ path: String, data: Data, what: String) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp").path
        unlink(temporary)
        let fd = open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CommandFailure(message: "cannot write the \(what) to '\(path)': \(String(cString: strerror(errno)))",
                                 help: "check that the folder exists and is writable")
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            unlink(temporary)
            throw CommandFailure(message: "writing the \(what) to '\(path)' failed: \(error.localizedDescription)", help: "check free disk space")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CommandFailure(message: "cannot replace '\(path)': \(reason)", help: "check the folder's permissions")
        }
    }
}
