import Foundation
import Testing

/// The apply lock on PostgreSQL: the row of orgctl_lock taken FOR UPDATE. A second apply waits up to
/// --lock-timeout and is refused naming the holder; a holder that dies leaves no lock. Locks are
/// held from psql sessions or by an apply stopped on a row, never by timing.
@Suite("PostgreSQL: the apply lock", .enabled(if: !PGServer.skipped))
struct PostgresLockTests {
    static func applied() throws -> (Workspace, PGState) {
        let workspace = try Workspace(name: "pg-lock")
        try workspace.copyExamples()
        let state = try PGState(workspace)
        let applied = try workspace.apply("config", state: state.server, ["--state-schema", state.schema])
        try #require(applied.status == 0, "\(applied)")
        try PGBlockedApply.editConfig(workspace)
        return (workspace, state)
    }

    /// A psql session named `holder` holding the lock row; and its server process id.
    static func holdLock(_ state: PGState, as holder: String) throws -> (PGSession, pid: String) {
        let session = try state.session(applicationName: holder)
        try session.run("BEGIN; SELECT name FROM \(state.schema).orgctl_lock FOR UPDATE;")
        return (session, try session.backendPID())
    }

    static func apply(_ state: PGState, actor: String = "second", lockTimeout: String = "1s") throws -> Run {
        try state.workspace.apply("config", state: state.server, ["--state-schema", state.schema, "--lock-timeout", lockTimeout],
                                  environment: ["ORGCTL_ACTOR": actor])
    }

    /// The refusal: one error line naming the holder's application name, server process and start, and a help line.
    static func expectRefusal(_ run: Run, holder: String, pid: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == 1, "\(run)", sourceLocation: sourceLocation)
        let lines = run.stderr.lines.filter { !$0.isEmpty }
        #expect(lines.count == 2 && lines[1].hasPrefix("help: wait for the other apply to finish, or raise --lock-timeout"), "\(run)",
                sourceLocation: sourceLocation)
        let expected = "is locked by another apply: '\(holder)' (server process \(pid), connected from "
        #expect(run.stderr.contains(expected), "expected '\(expected)': \(run)", sourceLocation: sourceLocation)
        #expect(run.stderr.contains("waited 1000 ms"), "\(run)", sourceLocation: sourceLocation)
        #expect((try? Regex(#", since 20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\)"#)).map { run.stderr.contains($0) } == true,
                "the refusal says since when: \(run)", sourceLocation: sourceLocation)
        #expect(!run.stdout.contains("Apply complete"), "\(run)", sourceLocation: sourceLocation)
    }

    @Test("a lock held from psql: the apply waits --lock-timeout, is refused naming the holder, writes nothing; then succeeds")
    func heldFromPsql() throws {
        let (workspace, state) = try Self.applied()
        let holder = "orgctl apply by holder on runner-9"
        let (session, pid) = try Self.holdLock(state, as: holder)
        let before = try state.dump()
        Self.expectRefusal(try Self.apply(state), holder: holder, pid: pid)
        #expect(try state.dump() == before)
        // Plans and the audit commands read without the lock.
        #expect(try workspace.plan("config", state: state.server, ["--state-schema", state.schema]).status == 0)
        #expect(try workspace.run(["audit", "verify"] + state.arguments()).status == 0)

        session.close()
        let applied = try Self.apply(state)
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete: 0 added, 2 changed, 0 destroyed."), "\(applied)")
        try state.expectChainVerifies()
    }

    @Test("a lock held by another orgctl apply: the refusal names its actor and host")
    func heldByOrgctl() throws {
        let (_, state) = try Self.applied()
        let first = try PGBlockedApply.start(state, actor: "first-runner")
        let refused = try Self.apply(state, actor: "second-runner")
        Self.expectRefusal(refused, holder: "orgctl apply by first-runner on \(AddressSegmentEscape.message(hostName()))", pid: first.backendPID)
        // The first apply finishes once the row is free, and the second then has nothing to do.
        first.blocker.close()
        let finished = first.apply.wait()
        #expect(finished.status == 0 && finished.stdout.contains("Apply complete: 0 added, 2 changed, 0 destroyed."), "\(finished)")
        let again = try Self.apply(state, actor: "second-runner")
        #expect(again.status == 0 && again.stdout.contains("No changes."), "\(again)")
        try state.expectChainVerifies()
    }

    @Test("an apply that waited while another changed the state is refused as a stale plan, naming the addresses, as on SQLite")
    func waitedAndStale() throws {
        let (workspace, state) = try Self.applied()
        try workspace.copyExamples(as: "second")
        try workspace.edit("second/tenants/hooli.yaml", replacing: "status: suspended", with: "status: active")
        let first = try PGBlockedApply.start(state, actor: "first-runner")
        let second = try workspace.start(["apply", "second", "--auto-approve", "--no-color", "--source", "test", "--lock-timeout", "10m",
                                          "--secrets-out", try workspace.newKeysFile()] + state.arguments(),
                                         environment: ["ORGCTL_ACTOR": "second-runner"])
        // Waiting for the lock row the first apply holds: the second has made its plan by then.
        _ = try state.waitForBackend(applicationNamePrefix: "orgctl apply by second-runner on ", blockedBy: first.backendPID, while: second)
        first.blocker.close()
        #expect(first.apply.wait().status == 0)
        let run = second.wait()
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.hasPrefix("error: the plan is stale: the state changed since it was planned, at these addresses; nothing was applied\n"), "\(run)")
        #expect(run.stderr.contains("\n  tenant/hooli\n") && run.stderr.contains("\nhelp: "), "\(run)")
        #expect(!run.stderr.contains("stale(addresses"), "\(run)")
        try state.expectChainVerifies()
    }

    @Test("a holder whose psql is killed leaves no lock: the next apply succeeds")
    func killedPsqlHolder() throws {
        let (_, state) = try Self.applied()
        let (session, pid) = try Self.holdLock(state, as: "orgctl apply by doomed on runner-1")
        Self.expectRefusal(try Self.apply(state), holder: "orgctl apply by doomed on runner-1", pid: pid)
        session.kill()
        // The server notices the closed connection and ends its transaction; no timing is assumed:
        // the apply waits up to its lock timeout for that.
        let applied = try Self.apply(state, lockTimeout: "1m")
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete"), "\(applied)")
        try state.expectChainVerifies()
    }

    @Test("a holder whose backend is terminated (pg_terminate_backend) leaves no lock: the next apply succeeds")
    func terminatedHolder() throws {
        let (_, state) = try Self.applied()
        let (session, pid) = try Self.holdLock(state, as: "orgctl apply by doomed on runner-2")
        Self.expectRefusal(try Self.apply(state), holder: "orgctl apply by doomed on runner-2", pid: pid)
        #expect(try state.value("SELECT pg_terminate_backend(\(pid), 60000)") == "t")
        let applied = try Self.apply(state)
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete"), "\(applied)")
        session.close()
        try state.expectChainVerifies()
    }

    @Test("an orgctl apply SIGKILLed while it holds the lock leaves none: the next apply succeeds")
    func killedOrgctlHolder() throws {
        let (_, state) = try Self.applied()
        let first = try PGBlockedApply.start(state, actor: "killed-runner")
        Self.expectRefusal(try Self.apply(state), holder: "orgctl apply by killed-runner on \(AddressSegmentEscape.message(hostName()))",
                           pid: first.backendPID)
        first.apply.kill()
        #expect(first.apply.wait().signaled)
        // Its backend ends when it finds the connection closed; the next apply waits for that.
        first.blocker.close()
        let applied = try Self.apply(state, lockTimeout: "1m")
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete: 0 added, 2 changed, 0 destroyed."), "\(applied)")
        try state.expectChainVerifies()
    }
}

/// How orgctl writes server text in a message: printable ASCII kept, every other byte as %XX.
enum AddressSegmentEscape {
    static func message(_ text: String) -> String {
        text.utf8.map { byte in
            byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "%") ? String(UnicodeScalar(byte)) : String(format: "%%%02X", byte)
        }.joined()
    }
}
