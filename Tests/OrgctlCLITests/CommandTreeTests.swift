import Foundation
import Testing

@testable import OrgctlCLI

/// Runs orgctl in-process, capturing what it writes.
final class Captured: @unchecked Sendable {
    // @unchecked: written only by the single command run on the test's thread.
    var out = ""
    var err = ""

    func run(_ arguments: [String], environment: [String: String] = [:]) -> Int32 {
        let console = Console(out: { self.out += $0 }, err: { self.err += $0 }, stdoutIsTerminal: false, stderrIsTerminal: false,
                              colorDisabled: true)
        return Orgctl.run(arguments, environment: environment, console: console)
    }
}

@Suite("command tree")
struct CommandTreeTests {
    @Test("the command description is consistent (no duplicate options, valid names)")
    func treeIsValid() {
        #expect(Orgctl.commands.validationProblems() == [])
    }

    @Test(arguments: [["validate"], ["plan"], ["apply"], ["audit"], ["audit", "verify"], ["audit", "log"], ["init"], ["explain"], ["schema"],
                      ["addresses"], ["completion"]])
    func everyCommandHasHelp(_ path: [String]) {
        let captured = Captured()
        #expect(captured.run(path + ["--help"]) == ExitCode.success)
        #expect(captured.out.contains("USAGE: orgctl \(path.joined(separator: " "))"))
    }

    @Test("every help page fits in 80 columns", arguments: [[], ["validate"], ["plan"], ["apply"], ["audit"], ["audit", "verify"],
                                                           ["audit", "log"], ["init"], ["explain"], ["schema"], ["addresses"], ["completion"]])
    func helpWidth(_ path: [String]) {
        let captured = Captured()
        #expect(captured.run(path + ["--help"]) == ExitCode.success)
        for line in captured.out.split(separator: "\n") {
            #expect(line.count <= 80, "\(line.count) columns: \(line)")
        }
    }

    @Test("--version prints the version, as 'orgctl version' does")
    func version() {
        let captured = Captured()
        #expect(captured.run(["--version"]) == 0)
        #expect(captured.out.hasPrefix("orgctl \(Orgctl.version) (commit "))
        let command = Captured()
        #expect(command.run(["version"]) == 0)
        #expect(command.out == captured.out)
    }

    @Test("a usage error exits 64 with a suggestion")
    func usageError() {
        let captured = Captured()
        #expect(captured.run(["plan", "--formt", "json", "x"]) == ExitCode.usage)
        #expect(captured.err.contains("did you mean '--format'?"))
    }

    @Test("a missing configuration folder is an error naming the path, exit 1")
    func missingFolder() {
        let captured = Captured()
        #expect(captured.run(["validate", "/nonexistent/orgctl-config"]) == ExitCode.failure)
        #expect(captured.err.contains("'/nonexistent/orgctl-config' does not exist"))
    }

    @Test("every option a command declares can be given without tripping the parser", arguments: [
        ["plan", "DIR", "--format", "json", "--out", "OUT", "--detailed-exitcode", "--source", "s", "--target", "t/*", "--exclude", "e",
         "--state", "DB", "--lock-timeout", "1s"],
        ["apply", "DIR", "--auto-approve", "--max-deletes", "3", "--actor", "a", "--source", "s", "--target", "t", "--exclude", "e",
         "--state", "DB", "--lock-timeout", "1s"],
        ["validate", "DIR", "--format", "github"],
        ["audit", "log", "--address", "tenant/**", "--since", "2026-01-01", "--format", "json", "--state", "DB"],
        ["audit", "verify", "--state", "DB", "--lock-timeout", "2s"],
    ])
    func allOptions(_ arguments: [String]) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orgctl-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let resolved = arguments.map { argument -> String in
            switch argument {
            case "DIR": folder.appendingPathComponent("config").path
            case "DB": folder.appendingPathComponent("state.db").path
            case "OUT": folder.appendingPathComponent("plan.out").path
            default: argument
            }
        }
        let captured = Captured()
        let status = captured.run(resolved)
        // The folder and database do not exist: a clear runtime error (1), never a trap or usage error.
        #expect(status == ExitCode.failure)
        #expect(captured.err.hasPrefix("error: "))
    }
}
