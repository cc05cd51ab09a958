import Foundation
import Testing

/// The state key: another key than the database's is refused by every command that reads the
/// database, before it does anything, and a key file readable by others is warned about.
@Suite("State key")
struct StateKeyTests {
    static let otherKey = Data((0..<32).map { UInt8(($0 * 11 + 5) & 0xFF) }).base64EncodedString()

    static func appliedExamples(_ backend: Backend) throws -> (Workspace, config: String, state: String) {
        let workspace = try Workspace(name: "state-key", backend: backend)
        let config = try workspace.copyExamples()
        let state = workspace.state
        try #require(try workspace.apply(config, state: state).status == 0)
        if backend == .sqlite { try workspace.sqlite(state, "PRAGMA wal_checkpoint(TRUNCATE);") }
        return (workspace, config, state)
    }

    /// Every command that opens the database, with the state given.
    static func commands(_ workspace: Workspace, config: String, state: String, plan: String) -> [[String]] {
        [
            ["plan", config, "--state", state], ["drift", config, "--state", state],
            ["apply", config, "--state", state, "--auto-approve", "--secrets-out", workspace.path("keys.txt")],
            ["apply", plan, "--state", state], ["export", workspace.path("out"), "--state", state],
            ["audit", "verify", "--state", state], ["audit", "log", "--state", state], ["audit", "checkpoint", "--state", state],
        ]
    }

    @Test("plan, drift, apply, export and audit given another key stop before doing anything, with the key id and the fix",
          arguments: Backend.all, [false, true])
    func wrongKeyRefused(_ backend: Backend, beforeCheckValue: Bool) throws {
        let (workspace, config, state) = try Self.appliedExamples(backend)
        if beforeCheckValue {
            // A database written before the check value: its secrets name the key they were sealed with.
            try workspace.sql(state, "DELETE FROM orgctl_meta WHERE key IN ('state_key_check', 'state_key_id');"
                              + backend.sql(sqlite: " PRAGMA wal_checkpoint(TRUNCATE);", postgres: ""))
        }
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let plan = workspace.path("change.plan")
        try #require(try workspace.plan(config, state: state, ["--out", plan]).status == 0)
        let before = try workspace.stateBytes(state)
        for arguments in Self.commands(workspace, config: config, state: state, plan: plan) {
            let run = try workspace.run(arguments + ["--no-color"], environment: ["ORGCTL_STATE_KEY": Self.otherKey])
            #expect(run.status == 1, "\(run)")
            #expect(run.stderr.contains("the state key does not match the key this database was encrypted with (key id "), "\(run)")
            #expect(run.stderr.contains("help: give the key"), "\(run)")
            #expect(!run.stdout.contains("ok") && !run.stdout.contains("Apply complete"), "\(run)")
            #expect(try workspace.stateBytes(state) == before, "orgctl \(arguments[0]) changed the database with another key")
        }
        #expect(!FileManager.default.fileExists(atPath: workspace.path("out")))
        // With the right key the saved plan applies, and a database without a check value gets it.
        let applied = try workspace.run(["apply", plan, "--state", state, "--no-color"])
        #expect(applied.status == 0, "\(applied)")
        #expect(try workspace.sql(state, "SELECT count(*) FROM orgctl_meta WHERE key = 'state_key_check';") == "1\n")
    }

    @Test("a state key file readable by others is warned about on standard error, as ssh does", arguments: Backend.all)
    func keyFileModeWarning(_ backend: Backend) throws {
        let (workspace, config, state) = try Self.appliedExamples(backend)
        let file = workspace.path("state.key")
        try Secrets.stateKey.write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        let open = try workspace.plan(config, state: state, ["--state-key-file", file], unset: ["ORGCTL_STATE_KEY"])
        #expect(open.status == 0 && open.stderr.contains("warning: the state key file '\(file)' can be read by others (mode 644)"), "\(open)")
        // Once per command, however often the command needs the key (plan --out and apply read it in several places).
        for extra in [["--out", workspace.path("review.plan")], []] {
            let run = extra.isEmpty ? try workspace.apply(config, state: state, ["--state-key-file", file], unset: ["ORGCTL_STATE_KEY"])
                : try workspace.plan(config, state: state, ["--state-key-file", file] + extra, unset: ["ORGCTL_STATE_KEY"])
            #expect(run.status == 0 && run.stderr.components(separatedBy: "can be read by others").count == 2, "\(run)")
        }
        chmod(file, 0o600)
        let closed = try workspace.plan(config, state: state, ["--state-key-file", file], unset: ["ORGCTL_STATE_KEY"])
        #expect(closed.status == 0 && !closed.stderr.contains("warning"), "\(closed)")
    }

    @Test("plan and drift of an existing database need the state key", arguments: Backend.all)
    func keyRequired(_ backend: Backend) throws {
        let (workspace, config, state) = try Self.appliedExamples(backend)
        for command in ["plan", "drift"] {
            let run = try workspace.run([command, config, "--state", state, "--no-color"], unset: ["ORGCTL_STATE_KEY"])
            #expect(run.status == 1 && run.stderr.contains("no state key was given"), "\(run)")
        }
    }
}
