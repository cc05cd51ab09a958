import Foundation
import Testing

/// Faults in the middle of an apply on PostgreSQL: the orgctl process SIGKILLed, its backend
/// terminated, the server stopped with `pg_ctl stop -m immediate`. After each the state is exactly
/// before or exactly after, and both `orgctl audit verify` and tools/verify_audit.py pass. The
/// long versions are tools/pg-crash-loop.sh and tools/pg-concurrency.sh.
@Suite("PostgreSQL: faults mid-apply", .serialized, .enabled(if: !PGServer.skipped))
struct PostgresFaultTests {
    static func applied(_ state: PGState) throws {
        let applied = try state.workspace.apply("config", state: state.server, ["--state-schema", state.schema])
        try #require(applied.status == 0, "\(applied)")
        try PGBlockedApply.editConfig(state.workspace)
    }

    /// The examples applied to a schema of the test server, and the configuration edited.
    static func appliedExamples(_ name: String) throws -> PGState {
        let workspace = try Workspace(name: name)
        try workspace.copyExamples()
        let state = try PGState(workspace)
        try applied(state)
        return state
    }

    /// The interrupted apply left the state as it was; the chain verifies; the same apply then
    /// completes and the configuration plans as no changes.
    static func expectBeforeThenAfter(_ state: PGState, before: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try state.dump() == before, "the interrupted apply changed the state", sourceLocation: sourceLocation)
        try state.expectChainVerifies(sourceLocation: sourceLocation)
        let again = try state.workspace.apply("config", state: state.server, ["--state-schema", state.schema, "--lock-timeout", "1m"])
        #expect(again.status == 0 && again.stdout.contains("Apply complete: 0 added, 2 changed, 0 destroyed."), "\(again)", sourceLocation: sourceLocation)
        let plan = try state.workspace.plan("config", state: state.server, ["--state-schema", state.schema, "--detailed-exitcode"])
        #expect(plan.status == 0, "\(plan)", sourceLocation: sourceLocation)
        try state.expectChainVerifies(sourceLocation: sourceLocation)
    }

    @Test("orgctl SIGKILLed inside its write transaction: the state is before, the chain verifies, the apply then completes")
    func killedMidWrite() throws {
        let state = try Self.appliedExamples("pg-fault")
        let before = try state.dump()
        let blocked = try PGBlockedApply.start(state, actor: "sigkill")
        blocked.apply.kill()
        #expect(blocked.apply.wait().signaled)
        blocked.blocker.close()
        try Self.expectBeforeThenAfter(state, before: before)
    }

    @Test("orgctl's backend terminated (pg_terminate_backend) mid-write: one clear error, state before, then the apply completes")
    func backendTerminated() throws {
        let state = try Self.appliedExamples("pg-fault")
        let before = try state.dump()
        let blocked = try PGBlockedApply.start(state, actor: "terminated")
        #expect(try state.value("SELECT pg_terminate_backend(\(blocked.backendPID), 60000)") == "t")
        let run = blocked.apply.wait()
        blocked.blocker.close()
        #expect(run.status == 1 && !run.signaled, "\(run)")
        let lines = run.stderr.lines.filter { !$0.isEmpty }
        #expect(lines.count == 2 && lines[0].hasPrefix("error: ") && lines[1].hasPrefix("help: "), "\(run)")
        #expect(run.stderr.contains("terminat") || run.stderr.contains("connection"), "\(run)")
        try Self.expectBeforeThenAfter(state, before: before)
    }

    @Test("the server stopped with pg_ctl stop -m immediate mid-write, then restarted: state before, the chain verifies")
    func serverCrashed() throws {
        let workspace = try Workspace(name: "pg-crash")
        try workspace.copyExamples()
        // A cluster of its own: stopping the shared one would cut every other suite's connections.
        let cluster = try PGPrivateCluster(workspace)
        let state = try PGState(workspace, server: cluster.uri)
        try Self.applied(state)
        for round in 1...2 {
            let before = try state.dump()
            let blocked = try PGBlockedApply.start(state, actor: "crash-\(round)")
            try cluster.stopImmediately()
            let run = blocked.apply.wait()
            blocked.blocker.close()
            #expect(run.status == 1 && !run.signaled && run.stderr.hasPrefix("error: ") && run.stderr.contains("\nhelp: "), "\(run)")
            try cluster.start()
            try Self.expectBeforeThenAfter(state, before: before)
            // Back to the first configuration for the next round.
            try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli Inc", with: "name: Hooli XYZ")
            try workspace.edit("config/tenants/acme.yaml", replacing: "bob@acme.com: {role: viewer}", with: "bob@acme.com: {role: admin}")
            #expect(try workspace.apply("config", state: state.server, ["--state-schema", state.schema]).status == 0)
            try PGBlockedApply.editConfig(workspace)
        }
    }

    @Test("tools/verify_audit.py reads a PostgreSQL chain: an edited entry is found by both verifiers, and apply refuses to append")
    func pythonVerifierReadsPostgres() throws {
        let state = try Self.appliedExamples("pg-verify")
        let workspace = state.workspace
        try state.expectChainVerifies()
        try state.psql("UPDATE \(state.schema).orgctl_audit SET entry = set_byte(entry, 2, 90) WHERE seq = 40") // {"action" -> {"Zction"
        let python = try state.pythonVerify()
        #expect(python.status == 1 && python.stdout.contains("broken at entry 40: "), "\(python)")
        let verify = try workspace.run(["audit", "verify"] + state.arguments())
        #expect(verify.status == 1 && (verify.stdout + verify.stderr).contains("broken at entry 40"), "\(verify)")
        let before = try state.dump()
        let apply = try workspace.apply("config", state: state.server, ["--state-schema", state.schema])
        #expect(apply.status == 1 && apply.stderr.contains("the audit chain is broken"), "\(apply)")
        #expect(try state.dump() == before)
    }

    @Test("orgctl SIGKILLed at moments spread over an apply (3 kills): each time exactly before or after, the chain verifies")
    func killedAtRandomMoments() throws {
        let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: "pg-e2e-generated-hook"], name: "pg-kill")
        let state = try PGState(workspace)
        for variant in 0...1 {
            try ConfigGenerator.write(to: workspace.url.appendingPathComponent("config-\(variant)"), tenants: 0..<60, variant: variant)
        }
        func apply(_ variant: Int) throws -> Started {
            try workspace.start(["apply", "config-\(variant)", "--auto-approve", "--no-color", "--quiet", "--source", "test",
                                 "--max-deletes", "100000"] + state.arguments())
        }
        let clock = ContinuousClock()
        var duration = Duration.zero
        for variant in [0, 1] {
            let started = clock.now
            let run = try apply(variant).wait()
            try #require(run.status == 0, "\(run)")
            duration = clock.now - started
        }
        var current = 1
        for kill in 0..<3 {
            let target = 1 - current
            let before = try state.dump()
            let entries = try state.auditCount()
            let apply = try apply(target)
            let fraction = (Double(kill) + Double.random(in: 0..<1)) / 3
            usleep(UInt32(Double(duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000) * fraction))
            apply.kill()
            let run = apply.wait()
            #expect(run.signaled || run.status == 0, "\(run)")
            if try state.dump() != before {
                let plan = try workspace.plan("config-\(target)", state: state.server, ["--state-schema", state.schema, "--detailed-exitcode"])
                #expect(plan.status == 0, "kill \(kill): the state is neither before nor after: \(plan)")
                #expect(try state.auditCount() > entries)
                current = target
            }
            try state.expectChainVerifies()
        }
    }

    @Test("3 processes × 3 rounds of applies against one schema: nothing lost, the chain intact, each refusal names the holder")
    func concurrentApplies() throws {
        let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: "pg-e2e-generated-hook"], name: "pg-concurrency")
        let state = try PGState(workspace)
        for process in 0..<3 {
            try ConfigGenerator.write(to: workspace.url.appendingPathComponent("config-\(process)"), tenants: 0..<20, variant: process)
        }
        var appliedChanges = 0
        var won: Set<Int> = []
        let summary = try Regex(#"Apply complete: ([0-9]+) added, ([0-9]+) changed, ([0-9]+) destroyed\."#)
        for round in 1...3 {
            let started = try (0..<3).map { process in
                try workspace.start(["apply", "config-\(process)", "--auto-approve", "--no-color", "--source", "round-\(round)",
                                     "--lock-timeout", "1s"] + state.arguments(),
                                    environment: ["ORGCTL_ACTOR": "runner-\(process)"])
            }
            var succeeded = 0
            for (process, apply) in started.enumerated() {
                let run = apply.wait()
                if run.status == 0 {
                    succeeded += 1
                    won.insert(process)
                    if let match = run.stdout.firstMatch(of: summary) {
                        appliedChanges += [match.output[1], match.output[2], match.output[3]].compactMap { $0?.substring.flatMap { Int($0) } }.reduce(0, +)
                    }
                } else {
                    #expect(run.status == 1 && !run.signaled, "\(run)")
                    // Refused for the lock, naming its holder; or, having waited, because another apply changed the state it planned against.
                    let locked = run.stderr.contains("is locked by another apply: 'orgctl apply by runner-") && run.stderr.contains("(server process ")
                    let stale = run.stderr.lines.first { $0.hasPrefix("error: ") }?.hasPrefix("error: the plan is stale: the state changed since it was planned") == true
                    #expect((locked || stale) && run.stderr.contains("\nhelp: "), "a refusal that does not name the holder: \(run)")
                }
            }
            #expect(succeeded > 0, "round \(round): no apply succeeded")
        }
        // Nothing lost: one audit entry per change every successful apply reported.
        #expect(try state.auditCount() == appliedChanges)
        let matching = try (0..<3).filter {
            try workspace.plan("config-\($0)", state: state.server, ["--state-schema", state.schema, "--detailed-exitcode"]).status == 0
        }
        #expect(matching.count == 1 && won.contains(matching[0]), "the final state matches \(matching), applies that succeeded: \(won)")
        try state.expectChainVerifies()
    }
}

/// A throwaway cluster for one test (Unix socket only, in the workspace), made with the test
/// server's binaries: `ORGCTL_TEST_PGCTL` and `ORGCTL_TEST_PGUSER_RUN`.
final class PGPrivateCluster {
    let workspace: Workspace
    let directory: String
    let port = Int.random(in: 20000..<60000)
    private let pgctl: String
    private let runAs: String

    var uri: String { "postgresql:///postgres?host=\(directory)&port=\(port)&user=postgres" }

    init(_ workspace: Workspace) throws {
        self.workspace = workspace
        pgctl = try PGServer.variable("ORGCTL_TEST_PGCTL")
        runAs = PGServer.environment["ORGCTL_TEST_PGUSER_RUN"] ?? ""
        directory = workspace.path("pg")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory)
        let initdb = URL(fileURLWithPath: pgctl).deletingLastPathComponent().appendingPathComponent("initdb").path
        try asOwner([initdb, "-D", "\(directory)/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "-N"])
        try start()
    }

    deinit { _ = try? asOwner([pgctl, "-D", "\(directory)/data", "-m", "immediate", "-w", "stop"], check: false) }

    /// Runs a command as the cluster's owner (through ORGCTL_TEST_PGUSER_RUN, word-split as the shell
    /// does), through Python's subprocess, which closes every inherited descriptor: Foundation's
    /// Process waits for a descriptor its child inherits, and the server pg_ctl starts would hold it
    /// for as long as it runs.
    @discardableResult
    private func asOwner(_ command: [String], check: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws -> Run {
        let script = "import shlex, subprocess, sys; sys.exit(subprocess.call(shlex.split(sys.argv[1]) + sys.argv[2:], stdin=subprocess.DEVNULL))"
        let run = try workspace.run(["-c", script, runAs] + command, executable: Paths.python3)
        if check { try #require(run.status == 0, "\(run)", sourceLocation: sourceLocation) }
        return run
    }

    func start() throws {
        try asOwner([pgctl, "-D", "\(directory)/data", "-l", "\(directory)/log", "-w", "-t", "60",
                     "-o", "-k \(directory) -c listen_addresses='' -c port=\(port) -c fsync=off", "start"])
    }

    func stopImmediately() throws {
        try asOwner([pgctl, "-D", "\(directory)/data", "-m", "immediate", "-w", "stop"])
    }
}
