import Foundation
import Testing

/// SIGKILL during apply: the database must hold exactly the state before or exactly the state after,
/// with an intact audit chain. (tools/crash-loop.sh is the long version.)
@Suite("Crash safety", .serialized)
struct CrashSafetyTests {
    /// The state as a kill must leave it, comparable across two databases: ``Workspace/canonicalDump(_:)`` without the
    /// rows that depend on the random subject ids of audit entry format 2 (the entries, their tree, the subject
    /// tables), and instead the log as `audit log --format json` resolves it. The chain itself is checked by `audit verify`.
    static func comparableDump(_ workspace: Workspace, _ state: String) throws -> String {
        let random = ["orgctl_audit", "orgctl_merkle", "orgctl_subjects", "orgctl_subject_values"]
        let rows = try workspace.canonicalDump(state).lines.filter { line in !random.contains { line.hasPrefix("INSERT INTO \($0) ") } }
        let log = try workspace.run(["audit", "log", "--format", "json", "--state", state])
        return rows.joined(separator: "\n") + "\n" + log.stdout + "\(log.status)"
    }

    static let secret = "e2e-leakcheck-generated-hook-Qz7Rx2"
    static let kills = Int(ProcessInfo.processInfo.environment["ORGCTL_E2E_KILLS"] ?? "") ?? 50

    @Test("an apply killed at 50 moments leaves the state exactly before or after, with a valid chain")
    func killedApply() throws {
        let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: Self.secret], name: "crash")
        // Before: 20 tenants. After: 200 tenants: 10 of the 20 deleted, the other 10 changed, 190 new ones.
        // (A small "before" keeps the many 'audit verify' runs after early kills quick in a debug build.)
        let before = workspace.url.appendingPathComponent("before"), after = workspace.url.appendingPathComponent("after")
        try ConfigGenerator.write(to: before, tenants: 0..<20, variant: 0, members: 2)
        try ConfigGenerator.write(to: after, tenants: 10..<210, variant: 1, members: 2)
        let base = workspace.path("base.db")
        let prior = try workspace.apply(before.path, state: base)
        try #require(prior.status == 0, "\(prior)")
        try workspace.sqlite(base, "PRAGMA wal_checkpoint(TRUNCATE);")
        let beforeDump = try Self.comparableDump(workspace, base)

        // "after" drops tenants 0–9: confirmed, as the tenant deletion guard requires.
        let applyAfter = ["apply", after.path, "--auto-approve", "--source", "test", "--no-color", "--quiet", "--max-deletes", "100000"]
            + (0..<10).flatMap { ["--allow-delete-tenant", String(format: "t-%05d", $0)] }

        // The uninterrupted apply, from a copy of the same database: the one "after" state, and how long an apply takes.
        let reference = workspace.path("reference.db")
        try FileManager.default.copyItem(atPath: base, toPath: reference)
        let started = Date()
        let complete = try workspace.run(applyAfter + ["--state", reference])
        // The estimate shrinks whenever an apply below finishes before its kill: the tests run in parallel,
        // so this first measurement may be slowed by the other suites.
        var duration = Date().timeIntervalSince(started)
        try #require(complete.status == 0, "\(complete)")
        let afterDump = try Self.comparableDump(workspace, reference)
        try #require(afterDump != beforeDump)
        let python = try workspace.pythonVerify(reference)
        #expect(python.status == 0, "\(python)")

        var outcomes = (before: 0, after: 0, finished: 0, midWrite: 0)
        for i in 0..<Self.kills {
            let state = workspace.path("killed.db")
            for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: state + suffix) }
            try FileManager.default.copyItem(atPath: base, toPath: state)

            // Denser towards the end, where the write transaction runs (loading and planning come first).
            let delay = duration * (Double(i) / Double(Self.kills - 1)).squareRoot()
            let (run, finishedIn) = try killAfter(delay) { try workspace.start(applyAfter + ["--state", state]) }
            if let finishedIn {
                outcomes.finished += 1
                duration = min(duration, finishedIn)
            }
            if run.signaled, let size = (try? FileManager.default.attributesOfItem(atPath: state + "-wal"))?[.size] as? NSNumber, size.intValue > 0 {
                outcomes.midWrite += 1
            }
            // The killed process's files (database, WAL) never hold the secret in plaintext.
            for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: state + suffix) {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: state + suffix))
                #expect(bytes.range(of: Data(Self.secret.utf8)) == nil, "the secret is in plaintext in \(state + suffix)")
            }

            let verify = try workspace.run(["audit", "verify", "--state", state])
            #expect(verify.status == 0 && verify.stdout.hasPrefix("ok: "), "kill #\(i) after \(delay)s: \(verify)")
            let dump = try Self.comparableDump(workspace, state)
            if dump == beforeDump {
                outcomes.before += 1
            } else if dump == afterDump {
                outcomes.after += 1
            } else {
                Issue.record("kill #\(i) after \(String(format: "%.3f", delay))s left a state that is neither before nor after")
                try? FileManager.default.copyItem(atPath: state, toPath: workspace.path("broken-\(i).db"))
            }
        }
        // Both outcomes must be reachable: killing at time 0 leaves "before"; the apply ends within `duration`.
        #expect(outcomes.before > 0, "no kill left the state as before: \(outcomes)")
        print("crash safety: \(Self.kills) kills over \(String(format: "%.2f", duration))s: \(outcomes.before) before, \(outcomes.after) after (\(outcomes.finished) finished first, \(outcomes.midWrite) killed with a non-empty WAL)")
    }
}

/// Several applies at once against one database. (tools/concurrency.sh is the long version.)
@Suite("Concurrency", .serialized)
struct ConcurrencyTests {
    static let processes = 4
    static let rounds = 3

    @Test("4 concurrent applies of different configurations, 3 rounds: clear outcomes, one configuration wins")
    func concurrentApplies() throws {
        let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: CrashSafetyTests.secret], name: "concurrency")
        // Overlapping tenant ranges: every pair of configurations differs by creates, updates and deletes.
        var configs: [String] = []
        for i in 0..<Self.processes {
            let folder = workspace.url.appendingPathComponent("config-\(i)")
            try ConfigGenerator.write(to: folder, tenants: (i * 5)..<(30 + i * 5), variant: i + 1, members: 3)
            configs.append(folder.path)
        }
        let state = workspace.path("shared.db")
        var winners = Set<Int>()
        for round in 1...Self.rounds {
            let started = try configs.map { config in
                // Each configuration drops tenants of the others: deletions confirmed, as the tenant deletion guard requires.
                try workspace.start(["apply", config, "--state", state, "--auto-approve", "--source", "round-\(round)", "--no-color", "--quiet",
                                     "--max-deletes", "100000"] + (0..<(30 + Self.processes * 5)).flatMap { ["--allow-delete-tenant", String(format: "t-%05d", $0)] })
            }
            let runs = started.map { $0.wait() }
            for (i, run) in runs.enumerated() {
                #expect(!run.signaled, "round \(round), process \(i) crashed: \(run)")
                #expect(run.status == 0 || run.status == 1, "round \(round), process \(i): \(run)")
                if run.status == 0 {
                    winners.insert(i)
                } else {
                    #expect(run.stderr.hasPrefix("error: ") && run.stderr.contains("\nhelp: "), "round \(round), process \(i): unclear failure: \(run)")
                    #expect(!run.stderr.contains("database is locked") && !run.stderr.contains("SQLITE"), "round \(round), process \(i): \(run)")
                    #expect(!run.stderr.contains("Fatal error"), "round \(round), process \(i): \(run)")
                }
            }
            #expect(runs.contains { $0.status == 0 }, "round \(round): no apply succeeded:\n\(runs.map(\.description).joined(separator: "\n"))")
        }

        // The database holds exactly one of the configurations, and it is one whose apply succeeded.
        var matching: [Int] = []
        for (i, config) in configs.enumerated() {
            let plan = try workspace.plan(config, state: state, ["--detailed-exitcode", "--quiet"])
            #expect(plan.status == 0 || plan.status == 2, "\(plan)")
            if plan.status == 0 { matching.append(i) }
        }
        #expect(matching.count == 1, "the final state should equal exactly one configuration, matches: \(matching)")
        #expect(matching.allSatisfy(winners.contains))

        let verify = try workspace.run(["audit", "verify", "--state", state])
        #expect(verify.status == 0, "\(verify)")
        let python = try workspace.pythonVerify(state)
        #expect(python.status == 0 && python.stdout == verify.stdout, "\(python)")
        workspace.assertNoSecretLeaks([CrashSafetyTests.secret])
    }
}
