import Foundation
import Reconciler
import Spec
import StateStore

/// `apply PLANFILE`'s second line of defence after the MAC: every value the saved plan writes must
/// be one that `validate` accepts. The state the plan would leave (for the tenants it touches) is
/// exported to a private temporary folder, loaded and validated by the same `ConfigurationLoader`
/// as `validate`, flattened again, and compared with what the plan writes (`SavedPlanCheck`).
enum SavedPlanValidation {
    static func check(_ plan: Plan, stored: StoredState, path: String, _ context: CommandContext) throws {
        guard let resources = SavedPlanCheck.result(of: plan, on: stored) else { return }
        let exporter = ConfigurationExporter(resources: resources)
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for file in exporter.files {
            let target = (folder as NSString).appendingPathComponent(file.path)
            do {
                try FileManager.default.createDirectory(atPath: FilePath.folder(of: target), withIntermediateDirectories: true)
                try Data(file.text.utf8).write(to: URL(fileURLWithPath: target))
            } catch {
                throw CommandFailure(message: "cannot check '\(path)': writing a temporary file failed: \(error.localizedDescription); nothing was applied",
                                     help: "check free space in the temporary folder (TMPDIR)")
            }
        }
        let loaded = try ValidateCommand.load(folder, context)
        let refused = "'\(path)' cannot be applied: what it writes breaks the configuration rules"
        let help = "make a new plan from the configuration with 'orgctl plan --out FILE', review it, and apply that"
        guard let configuration = loaded.configuration else {
            let errors = loaded.diagnostics.sorted.filter { $0.severity == .error }.map { diagnostic in
                var shown = diagnostic
                // Name the place in the plan's result, not the temporary folder.
                if let location = diagnostic.location {
                    shown.location = SourceLocation(file: "(result of the plan)" + location.file.dropFirst(folder.count), line: location.line,
                                                    column: location.column)
                }
                return shown
            }
            context.console.err(DiagnosticRenderer(style: context.console.style(forStdout: false)).text(errors))
            throw CommandFailure(message: "\(refused) (\(errors.count) error\(errors.count == 1 ? "" : "s") above); nothing was applied", help: help)
        }
        let derived = configuration.desiredState { _ in "hmac-sha256:" }
        let problems = SavedPlanCheck.mismatches(plan, stored: stored, derived: derived)
        guard problems.isEmpty else {
            let shown = problems.prefix(20) + (problems.count > 20 ? ["… and \(problems.count - 20) more"] : [])
            throw CommandFailure(message: "\(refused), at these addresses; nothing was applied", help: help, details: Array(shown))
        }
    }

    /// A new folder only this user can read.
    private static func temporaryFolder() throws -> String {
        var template = Array((FileManager.default.temporaryDirectory.path + "/orgctl-plan-check-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw CommandFailure(message: "cannot create a temporary folder to check the saved plan: \(String(cString: strerror(errno))); nothing was applied",
                                 help: "set TMPDIR to a writable folder")
        }
        return String(cString: made)
    }
}
