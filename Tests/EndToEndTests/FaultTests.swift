import Foundation
import Testing

/// Faults of the disk and of the state database (docs/reliability.md): each gives exit 1, a message that
/// names the problem (`error: …` then `help: …`), no crash and no raw SQLite text, and leaves the database
/// file and its WAL exactly as they were.
@Suite("Faults")
struct FaultTests {
    /// A workspace holding the examples applied once (checkpointed: the WAL is empty) and then changed,
    /// so every apply below has work to do.
    static func prepared(_ name: String) throws -> (Workspace, base: String) {
        let workspace = try Workspace(name: "fault-\(name)")
        try workspace.copyExamples()
        let base = workspace.path("base.db")
        let applied = try workspace.apply("config", state: base)
        try #require(applied.status == 0, "\(applied)")
        // Files orgctl creates are readable by their owner only.
        for file in [base, base + "-wal", base + "-shm"] where FileManager.default.fileExists(atPath: file) {
            #expect(try workspace.mode(file) == 0o600, "\(file)")
        }
        try workspace.sqlite(base, "PRAGMA wal_checkpoint(TRUNCATE);")
        try workspace.edit("config/tenants/acme.yaml", replacing: "frank@acme.com: viewer", with: "frank@acme.com: member")
        return (workspace, base)
    }

    /// A copy of the base database under a new name (in `folder`, made when missing).
    static func copy(_ base: String, as name: String, in workspace: Workspace, folder: String? = nil) throws -> String {
        var directory = workspace.url.path
        if let folder {
            directory = workspace.path(folder)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let path = directory + "/" + name
        try FileManager.default.copyItem(atPath: base, toPath: path)
        return path
    }

    static func bytes(_ database: String) -> [Data] {
        [database, database + "-wal"].map { FileManager.default.contents(atPath: $0) ?? Data() }
    }

    /// Runs each command against `database` and checks the common contract: exit 1, `error: …` naming the
    /// problem (`expected`), a `help:` line, no crash or SQLite jargon, and the files untouched.
    static func expectRefused(_ commands: [[String]], database: String, mentioning expected: String, in workspace: Workspace,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = bytes(database)
        for command in commands {
            let run = try workspace.run(command)
            #expect(!run.signaled && run.status == 1, "\(command.joined(separator: " ")) should exit 1: \(run)", sourceLocation: sourceLocation)
            let message = command.first == "audit" ? run.stdout + run.stderr : run.stderr
            #expect(message.contains(expected), "\(command.joined(separator: " ")) should say '\(expected)': \(run)", sourceLocation: sourceLocation)
            if command.first != "audit" {
                #expect(run.stderr.hasPrefix("error: ") && run.stderr.contains("\nhelp: "), "\(run)", sourceLocation: sourceLocation)
            }
            for jargon in ["SQLITE", "sqlite error", "Fatal error", "database is locked", "disk I/O error"] {
                #expect(!(run.stdout + run.stderr).contains(jargon), "\(command.first ?? ""): \(run)", sourceLocation: sourceLocation)
            }
            #expect(bytes(database) == before, "\(command.joined(separator: " ")) changed \(database)", sourceLocation: sourceLocation)
        }
        workspace.assertNoSecretLeaks(Array(Secrets.examples.values), sourceLocation: sourceLocation)
    }

    static func commands(_ database: String, verify: Bool = true) -> [[String]] {
        [["plan", "config", "--state", database, "--no-color"],
         ["apply", "config", "--state", database, "--auto-approve", "--no-color"]] + (verify ? [["audit", "verify", "--state", database]] : [])
    }

    // MARK: Disk

    @Test("disk full during apply: 'disk is full', nothing written, and the same apply succeeds once there is room")
    func diskFull() throws {
        let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: CrashSafetyTests.secret], name: "fault-full")
        let before = workspace.url.appendingPathComponent("before"), after = workspace.url.appendingPathComponent("after")
        try ConfigGenerator.write(to: before, tenants: 0..<20, variant: 0, members: 2)
        try ConfigGenerator.write(to: after, tenants: 0..<300, variant: 1, members: 4)
        let state = workspace.path("state.db")
        try #require(try workspace.apply(before.path, state: state).status == 0)
        try workspace.sqlite(state, "PRAGMA wal_checkpoint(TRUNCATE);")
        let dump = try workspace.canonicalDump(state)

        // An unprivileged full disk: a file-size limit (ulimit -f, in 512- or 1024-byte blocks) with SIGXFSZ
        // ignored, so writes past it fail with EFBIG the way they fail with ENOSPC on a full disk.
        let limited = ["-c", "trap '' XFSZ; ulimit -f 600 && exec \"$0\" \"$@\"", try Paths.orgctl()]
        try Self.expectRefused([["apply", after.path, "--state", state, "--auto-approve", "--no-color", "--quiet"]], database: state,
                               mentioning: "the disk is full", in: workspace, executable: "/bin/sh", commandPrefix: limited)
        #expect(try workspace.canonicalDump(state) == dump)
        let verify = try workspace.run(["audit", "verify", "--state", state])
        #expect(verify.status == 0, "\(verify)")
        let retried = try workspace.apply(after.path, state: state, ["--quiet"])
        #expect(retried.status == 0, "\(retried)")
        workspace.assertNoSecretLeaks([CrashSafetyTests.secret])
    }

    // MARK: Permissions

    /// Root ignores file modes, so as root the commands run as 'nobody' (setpriv); otherwise as we are.
    static let asAnotherUser: [String]? = {
        if getuid() != 0 { return [] }
        let setpriv = "/usr/bin/setpriv"
        guard FileManager.default.isExecutableFile(atPath: setpriv) else { return nil }
        return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    }()

    @Test("a read-only database file: apply refuses with 'read-only', plan still works", .enabled(if: asAnotherUser != nil))
    func readOnlyFile() throws {
        let (workspace, base) = try Self.prepared("read-only-file")
        let state = try Self.copy(base, as: "state.db", in: workspace, folder: "writable")
        try Self.openUp(workspace)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: workspace.path("writable"))
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: state)
        let user = try #require(Self.asAnotherUser)
        let apply = ["apply", "config", "--state", state, "--auto-approve", "--no-color"]
        try Self.expectRefused([apply], database: state, mentioning: "the state database is read-only", in: workspace,
                               executable: user.first, commandPrefix: Array(user.dropFirst()) + [try Paths.orgctl()])
        let plan = try workspace.run(Array(user.dropFirst()) + [try Paths.orgctl(), "plan", "config", "--state", state, "--no-color"],
                                     executable: user.first)
        #expect(plan.status == 0 && plan.stdout.contains("1 to change"), "\(plan)")
    }

    @Test("a read-only folder: plan and apply name the folder", .enabled(if: asAnotherUser != nil))
    func readOnlyFolder() throws {
        let (workspace, base) = try Self.prepared("read-only-folder")
        let state = try Self.copy(base, as: "state.db", in: workspace, folder: "locked")
        try Self.openUp(workspace)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: state)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: workspace.path("locked"))
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: workspace.path("locked")) }
        let user = try #require(Self.asAnotherUser)
        try Self.expectRefused(Self.commands(state, verify: false), database: state, mentioning: "the folder of the state database is read-only",
                               in: workspace, executable: user.first, commandPrefix: Array(user.dropFirst()) + [try Paths.orgctl()])
    }

    /// Lets another user read the workspace (configuration and databases), as a shared CI folder would.
    static func openUp(_ workspace: Workspace) throws {
        let walker = FileManager.default.enumerator(atPath: workspace.url.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: workspace.url.path)
        while let relative = walker?.nextObject() as? String {
            let path = workspace.path(relative)
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            try FileManager.default.setAttributes([.posixPermissions: isDirectory.boolValue ? 0o755 : 0o644], ofItemAtPath: path)
        }
    }

    // MARK: Damaged databases

    @Test("a truncated database is reported corrupt by plan, apply and audit verify")
    func truncated() throws {
        let (workspace, base) = try Self.prepared("truncated")
        let state = try Self.copy(base, as: "state.db", in: workspace)
        let size = try #require(FileManager.default.attributesOfItem(atPath: state)[.size] as? NSNumber).intValue
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: state))
        try handle.truncate(atOffset: UInt64(size / 2))
        try handle.close()
        try Self.expectRefused(Self.commands(state), database: state, mentioning: "corrupt", in: workspace)
    }

    @Test("a database with overwritten pages is reported corrupt")
    func corruptedPages() throws {
        let (workspace, base) = try Self.prepared("corrupted")
        let state = try Self.copy(base, as: "state.db", in: workspace)
        var data = try Data(contentsOf: URL(fileURLWithPath: state))
        var generator = SystemRandomNumberGenerator()
        for i in 4096..<(data.count - 4096) { data[i] = UInt8.random(in: 0...255, using: &generator) }
        try data.write(to: URL(fileURLWithPath: state))
        try Self.expectRefused(Self.commands(state), database: state, mentioning: "corrupt", in: workspace)
    }

    @Test("a database whose header is overwritten, and a file that is not SQLite, are 'not a SQLite database'")
    func notSQLite() throws {
        let (workspace, base) = try Self.prepared("not-sqlite")
        let header = try Self.copy(base, as: "header.db", in: workspace)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: header))
        try handle.write(contentsOf: Data("This is no database at all.".utf8))
        try handle.close()
        try Self.expectRefused(Self.commands(header), database: header, mentioning: "is not a SQLite database", in: workspace)

        let text = workspace.path("notes.db")
        try Data("apiVersion: orgctl.dev/v1\nthis is a YAML file, not a database\n".utf8).write(to: URL(fileURLWithPath: text))
        try Self.expectRefused(Self.commands(text), database: text, mentioning: "is not a SQLite database", in: workspace)
    }

    @Test("another program's SQLite database is refused, and left alone")
    func otherSQLite() throws {
        let (workspace, _) = try Self.prepared("other-sqlite")
        let other = workspace.path("other.db")
        try workspace.sqlite(other, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');")
        try Self.expectRefused(Self.commands(other, verify: false), database: other, mentioning: "not an orgctl state database", in: workspace)
    }

    @Test("a database from a newer schema is refused by every command, never written")
    func newerSchema() throws {
        let (workspace, base) = try Self.prepared("newer-schema")
        let state = try Self.copy(base, as: "state.db", in: workspace)
        try workspace.sqlite(state, "PRAGMA user_version = 99;")
        try Self.expectRefused(Self.commands(state), database: state, mentioning: "has schema version 99, newer than this orgctl understands",
                               in: workspace)
    }

    // MARK: Audit chain edited behind orgctl's back

    @Test("an audit entry edited, deleted or reordered with sqlite3: verify names the entry, apply refuses, nothing written",
          arguments: [
            ("edited", "UPDATE orgctl_audit SET entry = CAST(replace(CAST(entry AS TEXT), '\"actor\":\"', '\"actor\":\"mallory-') AS BLOB) WHERE seq = 5;",
             "broken at entry 5: hash does not match the entry"),
            ("deleted", "DELETE FROM orgctl_audit WHERE seq = 7;", "broken at entry 8: sequence gap: expected entry 7"),
            ("reordered", "UPDATE orgctl_audit SET seq = -1 WHERE seq = 9; UPDATE orgctl_audit SET seq = 9 WHERE seq = 10; UPDATE orgctl_audit SET seq = 10 WHERE seq = -1;",
             "broken at entry 9: previous hash does not match"),
          ])
    func tamperedChain(_ name: String, _ sql: String, _ expected: String) throws {
        let (workspace, base) = try Self.prepared("audit-\(name)")
        let state = try Self.copy(base, as: "state.db", in: workspace)
        try workspace.sqlite(state, sql)
        try workspace.sqlite(state, "PRAGMA wal_checkpoint(TRUNCATE);")
        try Self.expectRefused([["audit", "verify", "--state", state]], database: state, mentioning: expected, in: workspace)
        try Self.expectRefused([["apply", "config", "--state", state, "--auto-approve", "--no-color"]], database: state,
                               mentioning: "the audit chain is broken (\(expected)", in: workspace)
        let python = try workspace.pythonVerify(state)
        #expect(python.status == 1 && python.stdout.contains(expected), "\(python)")
        workspace.assertNoSecretLeaks(Array(Secrets.examples.values))
    }
}

extension FaultTests {
    /// `expectRefused` for commands that run through a wrapper (`sh -c 'ulimit …'`, `setpriv …`).
    static func expectRefused(_ commands: [[String]], database: String, mentioning expected: String, in workspace: Workspace,
                              executable: String?, commandPrefix: [String],
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = bytes(database)
        for command in commands {
            let run = try workspace.run(commandPrefix + command, executable: executable)
            #expect(!run.signaled && run.status == 1, "\(command.joined(separator: " ")) should exit 1: \(run)", sourceLocation: sourceLocation)
            #expect(run.stderr.contains(expected), "should say '\(expected)': \(run)", sourceLocation: sourceLocation)
            #expect(run.stderr.hasPrefix("error: ") && run.stderr.contains("\nhelp: "), "\(run)", sourceLocation: sourceLocation)
            for jargon in ["SQLITE", "sqlite error", "Fatal error", "disk I/O error"] {
                #expect(!(run.stdout + run.stderr).contains(jargon), "\(run)", sourceLocation: sourceLocation)
            }
            #expect(bytes(database) == before, "\(command.joined(separator: " ")) changed \(database)", sourceLocation: sourceLocation)
        }
    }
}
