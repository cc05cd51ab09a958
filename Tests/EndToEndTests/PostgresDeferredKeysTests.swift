import Foundation
import Testing

/// A first apply into empty tables drops the foreign keys between orgctl's tables for its bulk
/// load and adds them back before its commit (`DeferredKeys`, docs/state-schema.md, "The lock row,
/// transactions, and the SQL orgctl uses"): the keys must come back exactly as they were, and a
/// fault in between must leave them (and the tables) as they were.
@Suite("PostgreSQL: a first apply's foreign keys dropped for the bulk load and added back", .enabled(if: !PGServer.skipped))
struct PostgresDeferredKeysTests {
    /// Every constraint of the schema as the catalog defines it (names, definitions as
    /// `pg_get_constraintdef` prints them in the schema's own search path, validation,
    /// deferrability, the index a key uses, comments), one line each, sorted.
    static func constraints(_ state: PGState) throws -> String {
        try state.psql("""
            SET search_path = \(state.schema);
            SELECT format('%s %s %s %s %s %s %s %s %s', c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid), k.convalidated,
                          k.condeferrable, k.condeferred, k.conindid::regclass, coalesce(obj_description(k.oid, 'pg_constraint'), '-'))
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = '\(state.schema)'::regnamespace ORDER BY 1;
            """).stdout
    }

    /// How many of the schema's foreign keys the transaction of the first audit entry (the first
    /// apply) created: all of them on the bulk path (dropped and added back), none otherwise.
    static func keysAddedByFirstApply(_ state: PGState) throws -> Int {
        Int(try state.value("""
            SELECT count(*) FROM pg_constraint k WHERE k.contype = 'f' AND k.connamespace = '\(state.schema)'::regnamespace
              AND k.xmin = (SELECT xmin FROM \(state.schema).orgctl_audit WHERE seq = 1)
            """)) ?? -1
    }

    /// The rows of every table but `orgctl_meta` and `orgctl_lock` (which the schema's creation writes).
    static func rowsWritten(_ state: PGState) throws -> Int {
        Int(try state.value("""
            SELECT coalesce(sum((xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::int), 0)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = '\(state.schema)' AND c.relkind = 'r' AND c.relname NOT IN ('orgctl_meta', 'orgctl_lock')
            """)) ?? -1
    }

    /// The constraints of a schema whose first apply is too small for the bulk path: the keys
    /// as the schema was created, never dropped.
    static func referenceConstraints(_ workspace: Workspace) throws -> String {
        try ConfigGenerator.write(to: workspace.url.appendingPathComponent("tiny"), tenants: 0..<2, variant: 0, members: 2)
        let state = try PGState(workspace)
        let run = try workspace.apply("tiny", state: state.server, ["--state-schema", state.schema])
        try #require(run.status == 0, "\(run)")
        #expect(try keysAddedByFirstApply(state) == 0, "a first apply of a few dozen rows dropped the keys")
        return try constraints(state)
    }

    /// 30 tenants of 41 members, 4 teams of 3 members each, a role and a webhook: about 1,800
    /// rows for the keys' tables, over ``DeferredKeys/minimumRows``.
    static func largeWorkspace(_ name: String) throws -> Workspace {
        let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: "keys-e2e-hook"], name: name)
        try ConfigGenerator.write(to: workspace.url.appendingPathComponent("large"), tenants: 0..<30, variant: 0, members: 40, teams: 4)
        try ConfigGenerator.write(to: workspace.url.appendingPathComponent("larger"), tenants: 0..<32, variant: 1, members: 41, teams: 4)
        return workspace
    }

    @Test("a large first apply drops and adds back the foreign keys: every constraint of the schema as a small first apply leaves it; a later apply leaves them alone")
    func sameConstraints() throws {
        let workspace = try Self.largeWorkspace("pg-keys-same")
        let reference = try Self.referenceConstraints(workspace)
        #expect(reference.lines.filter { $0.contains(" f FOREIGN KEY ") }.count == 12, "\(reference)")

        let state = try PGState(workspace)
        let first = try workspace.apply("large", state: state.server, ["--state-schema", state.schema])
        try #require(first.status == 0, "\(first)")
        #expect(try Self.keysAddedByFirstApply(state) == 12, "the first apply did not take the bulk path")
        #expect(try Self.constraints(state) == reference)
        try state.expectChainVerifies()
        let plan = try workspace.plan("large", state: state.server, ["--state-schema", state.schema, "--detailed-exitcode"])
        #expect(plan.status == 0, "\(plan)")

        // A later apply (not into empty tables) checks each row as before: the keys stay the first apply's.
        let second = try workspace.apply("larger", state: state.server, ["--state-schema", state.schema])
        #expect(second.status == 0, "\(second)")
        #expect(try Self.keysAddedByFirstApply(state) == 12)
        #expect(try Self.constraints(state) == reference)
    }

    @Test("a drop of the keys that fails (here an event trigger refusing the apply's ALTER TABLE) is undone to its savepoint: the apply completes checking each row, the keys never dropped")
    func dropRefused() throws {
        let workspace = try Self.largeWorkspace("pg-keys-refused")
        let reference = try Self.referenceConstraints(workspace)
        let state = try PGState(workspace)
        let actor = "keysrefused", refuse = PGServer.uniqueName("pgkeys_refuse")
        try state.psql("""
            CREATE FUNCTION public.\(refuse)() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF current_setting('application_name') LIKE 'orgctl apply by \(actor) on %' AND current_query() LIKE '%DROP CONSTRAINT%' THEN
                RAISE EXCEPTION 'refused by the test';
              END IF;
            END $$;
            CREATE EVENT TRIGGER \(refuse) ON ddl_command_start WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION public.\(refuse)();
            """)
        state.cleanups.append("DROP EVENT TRIGGER IF EXISTS \(refuse); DROP FUNCTION IF EXISTS public.\(refuse)();")
        let run = try workspace.apply("large", state: state.server, ["--state-schema", state.schema], environment: ["ORGCTL_ACTOR": actor])
        #expect(run.status == 0, "\(run)")
        #expect(try Self.keysAddedByFirstApply(state) == 0, "the keys were dropped although the drop was refused")
        #expect(try Self.constraints(state) == reference)
        try state.expectChainVerifies()
        let plan = try workspace.plan("large", state: state.server, ["--state-schema", state.schema, "--detailed-exitcode"])
        #expect(plan.status == 0, "\(plan)")
    }

    /// A first apply held still by an event trigger (the test's, database-wide, for this apply only:
    /// it matches the apply's `application_name` and statement) that waits for a table a psql
    /// session holds: after the apply's first `DROP CONSTRAINT` (the keys dropped, rows sent
    /// before), or after its first `ADD CONSTRAINT` (every row sent, some keys back, the rest not).
    static func blocked(_ workspace: Workspace, _ state: PGState, actor: String, at statement: String) throws -> (apply: Started, backend: String, blocker: PGSession) {
        let gate = PGServer.uniqueName("pgkeys_gate"), trigger = PGServer.uniqueName("pgkeys_trigger")
        try state.psql("""
            CREATE TABLE public.\(gate) (x int);
            CREATE FUNCTION public.\(gate)() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF current_setting('application_name') LIKE 'orgctl apply by \(actor) on %' AND current_query() LIKE '\(statement)%' THEN
                PERFORM set_config('lock_timeout', '0', true);
                LOCK TABLE public.\(gate) IN SHARE MODE;
              END IF;
            END $$;
            CREATE EVENT TRIGGER \(trigger) ON ddl_command_end WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION public.\(gate)();
            """)
        state.cleanups.append("DROP EVENT TRIGGER IF EXISTS \(trigger); DROP FUNCTION IF EXISTS public.\(gate)(); DROP TABLE IF EXISTS public.\(gate);")
        let blocker = try state.session(applicationName: "pgkeys-blocker")
        try blocker.run("BEGIN; LOCK TABLE public.\(gate) IN EXCLUSIVE MODE;")
        let apply = try workspace.start(["apply", "large", "--auto-approve", "--no-color", "--source", "test", "--lock-timeout", "10m",
                                         "--secrets-out", try workspace.newKeysFile()] + state.arguments(), environment: ["ORGCTL_ACTOR": actor])
        let backend = try state.waitForBackend(applicationNamePrefix: "orgctl apply by \(actor) on ", blockedBy: try blocker.backendPID(), while: apply)
        return (apply, backend, blocker)
    }

    /// Where the fault strikes: after the first key is dropped, or after the first is added back.
    static let points = ["ALTER TABLE \"api_keys\" DROP CONSTRAINT", "ALTER TABLE \"api_keys\" ADD CONSTRAINT"]

    /// An actor of its own for each test case (the event triggers of cases running alongside
    /// match their own apply only).
    static func actor(_ fault: String, _ point: String) -> String { fault + (point.contains("DROP") ? "drop" : "add") }

    /// A first apply of ``largeWorkspace(_:)`` held at `point`, with the constraints a small first
    /// apply leaves (the reference) and the apply's state, server process and blocker.
    static func heldFirstApply(_ fault: String, at point: String) throws -> (state: PGState, reference: String, apply: Started, backend: String, blocker: PGSession) {
        let workspace = try largeWorkspace("pg-keys-\(fault)")
        let reference = try referenceConstraints(workspace)
        let state = try PGState(workspace)
        let (apply, backend, blocker) = try blocked(workspace, state, actor: actor("keys\(fault)", point), at: point)
        return (state, reference, apply, backend, blocker)
    }

    @Test("orgctl SIGKILLed on the bulk path: the schema's constraints as created and no row written; the apply then completes and adds the keys back",
          arguments: points)
    func killed(at point: String) throws {
        let (state, reference, apply, backend, blocker) = try Self.heldFirstApply("kill", at: point)
        apply.kill()
        #expect(apply.wait().signaled)
        // The backend, once the gate opens, finds its client gone and rolls back.
        blocker.close()
        while try state.value("SELECT count(*) FROM pg_stat_activity WHERE pid = \(backend)") != "0" { usleep(20_000) }
        try Self.expectAsCreatedThenApplies(state, reference: reference)
    }

    @Test("the bulk path's server process terminated (pg_terminate_backend): one clear error, the constraints as created, no row; the apply then completes",
          arguments: points)
    func terminated(at point: String) throws {
        let (state, reference, apply, backend, blocker) = try Self.heldFirstApply("term", at: point)
        #expect(try state.value("SELECT pg_terminate_backend(\(backend), 60000)") == "t")
        let run = apply.wait()
        blocker.close()
        #expect(run.status == 1 && !run.signaled, "\(run)")
        // A first apply notes that it creates the state; then the error and its help.
        let lines = run.stderr.lines.filter { !$0.isEmpty && !$0.hasPrefix("note: the state database ") }
        #expect(lines.count == 2 && lines[0].hasPrefix("error: ") && lines[1].hasPrefix("help: "), "\(run.stderr)")
        #expect(run.stderr.contains("terminat"), "\(run.stderr)")
        try Self.expectAsCreatedThenApplies(state, reference: reference)
    }

    /// The schema as its creation left it (the fault's transaction rolled back, its DDL with it),
    /// then the same apply completes on the bulk path with the keys as they were.
    static func expectAsCreatedThenApplies(_ state: PGState, reference: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try constraints(state) == reference, "the interrupted apply left other constraints", sourceLocation: sourceLocation)
        #expect(try rowsWritten(state) == 0, "the interrupted apply left rows", sourceLocation: sourceLocation)
        let again = try state.workspace.apply("large", state: state.server, ["--state-schema", state.schema, "--lock-timeout", "1m"])
        #expect(again.status == 0, "\(again)", sourceLocation: sourceLocation)
        #expect(try keysAddedByFirstApply(state) == 12, sourceLocation: sourceLocation)
        #expect(try constraints(state) == reference, sourceLocation: sourceLocation)
        try state.expectChainVerifies(sourceLocation: sourceLocation)
    }
}
