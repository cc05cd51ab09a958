import Foundation
import Testing

/// Commands that work on a state someone else made: given a --state that names nothing (a typo, a
/// volume not mounted, a new schema name), they say so and create nothing — not an empty SQLite file,
/// not a schema of orgctl's tables — and never report success ("forgot 0 people", "0 delivered").
@Suite("a --state that names nothing is never created")
struct MistypedStateTests {
    static let commands: [[String]] = [
        ["privacy", "forget", "frank@acme.com"],
        ["privacy", "forget", "--departed-before", "2026-01-01"],
        ["privacy", "export", "frank@acme.com"],
        ["webhooks", "deliver", "--once"],
        ["webhooks", "retry", "--all"],
        ["webhooks", "prune", "--older-than", "720h"],
        ["webhooks", "status"],
    ]

    @Test("privacy and webhooks commands refuse a state that does not exist, and leave it not existing", arguments: Backend.all)
    func neverCreated(backend: Backend) throws {
        let workspace = try Workspace(backend: backend)
        let (state, extra) = workspace.otherState("typo.db")
        for command in Self.commands {
            let run = try workspace.run(command + ["--state", state] + extra + ["--no-color"])
            #expect(run.status == 1 && run.stderr.hasPrefix("error: the state database '") && run.stderr.contains("' does not exist"), "\(run)")
            #expect(run.stderr.contains("\nhelp: "), "\(run)")
            if backend == .sqlite {
                #expect(!FileManager.default.fileExists(atPath: state), "\(command) created \(state)")
            } else {
                let schema = try #require(extra.last)
                let found = try workspace.sql(workspace.state, "SELECT count(*) FROM pg_namespace WHERE nspname = '\(schema)';")
                #expect(found.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(command) created the schema \(schema)")
            }
        }
    }
}

/// `--state-key-file` and `--new-key-file` name a small regular file. Anything else is refused at once with
/// what it is: a FIFO used to block the command forever, and a device or a huge file was read into memory
/// whole before being refused as "not a usable key". A symbolic link to a key file (secret mounts) works.
@Suite("state key files")
struct KeyFileInputTests {
    /// Runs orgctl, killing it after `seconds` (a command blocked on a FIFO never ends by itself).
    static func run(_ workspace: Workspace, _ arguments: [String], seconds: Double = 60) throws -> (run: Run, blocked: Bool) {
        let started = try workspace.start(arguments)
        let deadline = Date().addingTimeInterval(seconds)
        while started.process.isRunning, Date() < deadline { usleep(20_000) }
        let blocked = started.process.isRunning
        if blocked { started.kill() }
        return (started.wait(), blocked)
    }

    @Test("a FIFO, a folder, a device and an oversized file are refused as what they are; a link to the key works")
    func keyFiles() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        let state = workspace.state
        let applied = try workspace.apply(config, state: state)
        try #require(applied.status == 0, "\(applied)")

        let fifo = workspace.path("key.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let folder = workspace.path("keys")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let huge = workspace.path("huge.key")
        try Data(repeating: UInt8(ascii: "A"), count: 5000).write(to: URL(fileURLWithPath: huge))
        chmod(huge, 0o600)
        let key = workspace.path("state.key")
        try (Secrets.stateKey + "\n").write(toFile: key, atomically: true, encoding: .utf8)
        chmod(key, 0o600)
        let link = workspace.path("link.key")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: key)

        let cases: [(file: String, message: String)] = [
            (fifo, "is a FIFO, not a file holding a key"),
            (folder, "is a folder, not a file holding a key"),
            ("/dev/zero", "is a device, not a file holding a key"),
            (huge, "holds 5000 bytes; a state key file holds one key"),
        ]
        for option in ["--state-key-file", "--new-key-file"] {
            let named = option == "--state-key-file" ? "state key" : "new state key"
            for refused in cases {
                let arguments = option == "--state-key-file"
                    ? ["plan", config, "--state", state, option, refused.file, "--no-color"]
                    : ["state", "rekey", "--state", state, option, refused.file, "--no-color"]
                let (run, blocked) = try Self.run(workspace, arguments)
                #expect(!blocked, "orgctl \(arguments.joined(separator: " ")) blocked on the file")
                #expect(run.status == 1 && run.stderr.hasPrefix("error: the \(named) file '\(refused.file)' \(refused.message)"), "\(run)")
                #expect(run.stderr.contains("\nhelp: "), "\(run)")
            }
        }
        let linked = try workspace.plan(config, state: state, ["--state-key-file", link, "--detailed-exitcode"], unset: ["ORGCTL_STATE_KEY"])
        #expect(linked.status == 0, "\(linked)")
    }
}

@Suite("state migrate options")
struct StateMigrateOptionTests {
    @Test("--to-schema with a SQLite --to is a usage error, and no file is made")
    func schemaWithFile() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        let applied = try workspace.apply(config, state: workspace.state)
        try #require(applied.status == 0, "\(applied)")
        let target = workspace.path("copy.db")
        let run = try workspace.run(["state", "migrate", "--state", workspace.state, "--to", target, "--to-schema", "moved", "--no-color"])
        #expect(run.status == 64 && run.stderr.hasPrefix("error: --to-schema 'moved' names a PostgreSQL schema, but --to '\(target)' is a SQLite file"), "\(run)")
        #expect(!FileManager.default.fileExists(atPath: target))
    }
}
