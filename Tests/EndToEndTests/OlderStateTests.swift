import Foundation
import Testing

/// A state written by the last release before schema 7 (commit f16cb7d), restored from what that release wrote
/// (`Tests/OlderStates/schema6`, made by tools/make-older-state.sh), on both backends: it opens, a refused apply
/// leaves it exactly as it was, and the first confirmed apply migrates it and keeps its audit log verifiable.
@Suite("older states: a schema 6 state written by the previous release")
struct OlderStateTests {
    static let fixture = Paths.packageRoot.appendingPathComponent("Tests/OlderStates/schema6")
    static let newHire = "new.hire@initech.com"

    /// A workspace whose state is the fixture's (`Tests/OlderStates/schemaN`, of schema `version`), and its
    /// configuration (the one the old release applied) in `config`.
    static func restored(_ backend: Backend, fixture: URL = fixture, version: Int = 6) throws -> (workspace: Workspace, config: String) {
        let workspace = try Workspace(backend: backend)
        let config = try workspace.copy(fixture.appendingPathComponent("config"), as: "config")
        if let postgres = workspace.postgres {
            let dump = try String(contentsOf: fixture.appendingPathComponent("postgres.sql"), encoding: .utf8)
                .replacingOccurrences(of: "orgctl_\(fixture.lastPathComponent)_fixture", with: postgres.name)
            let run = try workspace.run([postgres.uri, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"], executable: Backend.psql, stdin: dump)
            try #require(run.status == 0, "\(run)")
        } else {
            let run = try workspace.run([workspace.state], executable: Paths.sqlite3,
                                        stdin: try String(contentsOf: fixture.appendingPathComponent("sqlite.sql"), encoding: .utf8))
            try #require(run.status == 0 && run.stderr.isEmpty, "\(run)")
        }
        #expect(try storedVersion(workspace) == version)
        return (workspace, config)
    }

    /// The schema version the state records: SQLite's `user_version`, PostgreSQL's `orgctl_meta` row.
    static func storedVersion(_ workspace: Workspace) throws -> Int? {
        let sql = workspace.backend.sql(sqlite: "PRAGMA user_version;", postgres: "SELECT value FROM orgctl_meta WHERE key = 'schema_version';")
        return Int(try workspace.sql(workspace.state, sql).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Adds a member to the fixture's configuration: a plan with one change.
    static func addNewHire(_ workspace: Workspace) throws {
        try workspace.edit("config/tenants/initech.yaml", replacing: "  milton.waddams@initech.com: viewer\n",
                           with: "  milton.waddams@initech.com: viewer\n  \(newHire): member\n")
    }

    /// Removes the policies from the fixture's configuration. The old release recorded none, so with them every
    /// plan of the fixture has one change, `+ policies` (a state records its policies since schema 7's release).
    static func removePolicies(_ config: String) throws {
        let platform = URL(fileURLWithPath: config).appendingPathComponent("platform.yaml")
        let text = try String(contentsOf: platform, encoding: .utf8)
        let kept = try #require(text.range(of: "\npolicies:\n")).lowerBound
        try String(text[..<kept] + "\n").write(to: platform, atomically: true, encoding: .utf8)
    }

    /// `run` is an apply refused saying `reason`, and the state is still `before`, schema 6.
    static func expectRefused(_ run: Run, saying reason: String, _ workspace: Workspace, unchangedFrom before: [Data],
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(run.status == 1 && (run.stderr + run.stdout).contains(reason), "\(run)", sourceLocation: sourceLocation)
        #expect(try workspace.stateBytes(workspace.state) == before, "the refused apply changed the older state: \(run)", sourceLocation: sourceLocation)
        #expect(try storedVersion(workspace) == 6, sourceLocation: sourceLocation)
    }

    static func checkpoint(_ backend: Backend) -> String {
        fixture.appendingPathComponent(backend == .postgres ? "checkpoint-postgres.txt" : "checkpoint-sqlite.txt").path
    }

    @Test("read-only commands: PostgreSQL refuses naming the version it found, SQLite reads the file as migrated; neither writes",
          arguments: Backend.all)
    func readOnly(backend: Backend) throws {
        let (workspace, config) = try Self.restored(backend)
        let state = workspace.state
        let before = try workspace.stateBytes(state)
        let plan = try workspace.plan(config, state: state)
        let export = try workspace.run(["privacy", "export", "peter.gibbons@initech.com", "--state", state])
        if backend == .postgres {
            for run in [plan, export] {
                #expect(run.status == 1, "\(run)")
                #expect(run.stderr.contains("has schema version 6 and needs a migration to 9"), "\(run)")
                #expect(run.stderr.contains("help: run 'orgctl apply'"), "\(run)")
                #expect(!run.stderr.contains("not a complete orgctl state"), "\(run)")
            }
        } else {
            // The only change: the policies, which the old release did not record.
            #expect(plan.status == 0 && plan.stdout.contains("+ policies (digest") && !plan.stdout.contains("tenant/"), "\(plan)")
        }
        #expect(try workspace.stateBytes(state) == before, "a read-only command changed the older state")
    }

    @Test("an apply refused before it writes (declined, no confirmation, keys without --secrets-out, a mandatory policy) leaves the older state exactly as it was",
          arguments: Backend.all)
    func refusedApplyMigratesNothing(backend: Backend) throws {
        let (workspace, config) = try Self.restored(backend)
        let state = workspace.state
        let before = try workspace.stateBytes(state)
        try Self.addNewHire(workspace)

        // Declined at the prompt, in a terminal: script(1) runs apply on a pseudo-terminal and types "no".
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/script") {
            let quoted = [try Paths.orgctl(), "apply", config, "--state", state, "--no-color"].map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            let declined = try workspace.run(["-q", "-e", "-c", quoted.joined(separator: " "), "/dev/null"], executable: "/usr/bin/script", stdin: "no\n")
            // On a terminal standard error goes to the same pane: the refusal is in `stdout`.
            try Self.expectRefused(declined, saying: "Apply cancelled; nothing was applied.", workspace, unchangedFrom: before)
        }

        // Not confirmed: standard input is not a terminal and there is no --auto-approve.
        try Self.expectRefused(try workspace.run(["apply", config, "--state", state, "--no-color"]), saying: "needs confirmation",
                               workspace, unchangedFrom: before)

        // An API key to issue, and neither --secrets-out nor a terminal.
        try workspace.edit("config/tenants/initech.yaml", replacing: "webhooks:\n", with: """
            apiKeys:
              ci-deploy:
                scopes: [apps.read]
                rateLimit: 100/h
                expires: 2027-06-30
            webhooks:

            """)
        try Self.expectRefused(try workspace.run(["apply", config, "--state", state, "--auto-approve", "--no-color"]), saying: "the plan issues 1 API key",
                               workspace, unchangedFrom: before)

        // A mandatory policy fails: initech (professional) has mfa: optional.
        try workspace.edit("config/platform.yaml", replacing: "mfaRequired: {plans: [business, enterprise]}",
                           with: "mfaRequired: {plans: [professional, business, enterprise]}")
        try Self.expectRefused(try workspace.apply(config, state: state), saying: "1 mandatory policy fails", workspace, unchangedFrom: before)
    }

    @Test("privacy forget on a state older than the subject tables is refused as such, and the state is not migrated", arguments: Backend.all)
    func forgetRefusedUnmigrated(backend: Backend) throws {
        let (workspace, _) = try Self.restored(backend)
        let state = workspace.state
        // orgctl's own files are in WAL mode (a restored dump is not): opening for writing would switch it.
        if backend == .sqlite { _ = try workspace.sql(state, "PRAGMA journal_mode = WAL;") }
        let before = try workspace.stateBytes(state)
        try Self.expectRefused(try workspace.run(["privacy", "forget", "peter.gibbons@initech.com", "--state", state]),
                               saying: "predates the subject table", workspace, unchangedFrom: before)
    }

    @Test("a confirmed apply refused for a broken audit chain leaves the older state as it was (on PostgreSQL the migration rolls back with it)",
          arguments: Backend.all)
    func brokenChainMigratesNothing(backend: Backend) throws {
        let (workspace, config) = try Self.restored(backend)
        let state = workspace.state
        try workspace.sql(state, Workspace.editAuditEntry(backend, seq: 3))
        let before = try workspace.stateBytes(state)
        try Self.addNewHire(workspace)
        try Self.expectRefused(try workspace.apply(config, state: state), saying: "broken at entry 3", workspace, unchangedFrom: before)
    }

    @Test("the first confirmed apply migrates the state: the chain and the old release's checkpoint verify, and a member added after it is exported",
          arguments: Backend.all)
    func applyMigrates(backend: Backend) throws {
        let (workspace, config) = try Self.restored(backend)
        let state = workspace.state
        try Self.addNewHire(workspace)
        let applied = try workspace.apply(config, state: state)
        // Entry 55 adds the member, 56 records the policies (the old release recorded none).
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete: 1 added, 0 changed, 0 destroyed, policies recorded. Audit entries 55–56."), "\(applied)")
        #expect(try Self.storedVersion(workspace) == 9)

        let pub = Self.fixture.appendingPathComponent("checkpoint.pub").path
        let verify = try workspace.run(["audit", "verify", "--state", state, "--key", pub, "--checkpoint", Self.checkpoint(backend)])
        #expect(verify.status == 0 && verify.stdout.contains("ok: 56 entries"), "\(verify)")
        // The independent verifier: the chain, and the old checkpoint's consistency with the grown log.
        let python = try workspace.run([Paths.auditVerifier, try workspace.auditFile(state), "--key", pub, "--checkpoint", Self.checkpoint(backend)],
                                       executable: Paths.python3)
        #expect(python.status == 0, "\(python)")

        // The subject tables the migration made are used: the new member's entry is format 2 and exported.
        let export = try workspace.run(["privacy", "export", Self.newHire, "--state", state])
        #expect(export.status == 0, "\(export)")
        #expect(export.stdout.contains("\"seq\":55") && export.stdout.contains("tenant/initech/member/\(Self.newHire)"), "\(export)")
        let plan = try workspace.plan(config, state: state)
        #expect(plan.status == 0 && plan.stdout.contains("No changes."), "\(plan)")
    }

    @Test("an apply with no changes migrates an older PostgreSQL schema (read-only commands wait for it); a SQLite file is read as migrated",
          arguments: Backend.all)
    func applyWithoutChanges(backend: Backend) throws {
        let (workspace, config) = try Self.restored(backend)
        try Self.removePolicies(config)
        let state = workspace.state
        let entries = try workspace.auditCount(state)
        let apply = try workspace.run(["apply", config, "--state", state, "--no-color"])
        #expect(apply.status == 0 && apply.stdout.contains("No changes."), "\(apply)")
        #expect(try Self.storedVersion(workspace) == (backend == .postgres ? 9 : 6))
        #expect(apply.stderr.contains("migrated the state's schema from version 6 to 9") == (backend == .postgres), "\(apply)")
        #expect(try workspace.auditCount(state) == entries)
        let plan = try workspace.plan(config, state: state)
        #expect(plan.status == 0 && plan.stdout.contains("No changes."), "\(plan)")
    }

    @Test("PostgreSQL: a schema_version lowered by hand below the tables the state has is refused by every command, and nothing is migrated")
    func loweredVersion() throws {
        guard Backend.all.contains(.postgres) else { return }
        let (workspace, config) = try Self.restored(.postgres)
        let state = workspace.state
        #expect(try workspace.apply(config, state: state).status == 0)
        try workspace.sql(state, "UPDATE orgctl_meta SET value = '6' WHERE key = 'schema_version';")
        let before = try workspace.stateBytes(state)
        for run in [try workspace.plan(config, state: state), try workspace.apply(config, state: state)] {
            #expect(run.status == 1, "\(run)")
            #expect(run.stderr.contains("says schema version 6, but already has the table 'orgctl_subjects' that a later version adds"), "\(run)")
        }
        #expect(try workspace.stateBytes(state) == before)
    }
}

/// A schema migrated by a newer orgctl while this one waited for the lock: found under the lock, refused, nothing written.
@Suite("PostgreSQL: a newer schema found under the lock", .enabled(if: !PGServer.skipped))
struct PostgresNewerSchemaTests {
    @Test("an apply that waited for the lock while a newer orgctl migrated the schema is refused as newer, writing nothing")
    func migratedWhileWaiting() throws {
        let (workspace, state) = try PostgresLockTests.applied()
        let entries = try state.auditCount()
        let holder = try state.session(applicationName: "orgctl apply by newer on elsewhere")
        try holder.run("""
            BEGIN; SELECT name FROM \(state.schema).orgctl_lock WHERE name = 'apply' FOR UPDATE;
            UPDATE \(state.schema).orgctl_lock SET holder = 'newer' WHERE name = 'apply';
            UPDATE \(state.schema).orgctl_meta SET value = '10' WHERE key = 'schema_version';
            """)
        let apply = try workspace.start(["apply", "config", "--auto-approve", "--no-color", "--source", "test", "--lock-timeout", "10m",
                                         "--secrets-out", try workspace.newKeysFile()] + state.arguments(),
                                        environment: ["ORGCTL_ACTOR": "older"])
        // It planned from schema 9 and now waits for the row the "newer orgctl" holds.
        _ = try state.waitForBackend(applicationNamePrefix: "orgctl apply by older on ", blockedBy: try holder.backendPID(), while: apply)
        _ = try holder.run("COMMIT;")
        holder.close()
        let run = apply.wait()
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("has schema version 10, newer than this orgctl understands (9); nothing was applied"), "\(run)")
        #expect(!run.stdout.contains("Apply complete"), "\(run)")
        #expect(try state.auditCount() == entries)
    }
}
