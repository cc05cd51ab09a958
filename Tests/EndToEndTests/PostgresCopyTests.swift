import Foundation
import Testing

/// PostgreSQL applies send runs of inserts as binary COPY (`PostgresDatabase`, `WriteQueue`):
/// what they write must be row for row what SQLite's single statements write, and a COPY that
/// fails must leave the state exactly as it was.
@Suite("PostgreSQL: apply's COPY writes", .enabled(if: !PGServer.skipped))
struct PostgresCopyTests {
    /// Each table's rows as text both sqlite3 and psql print alike (`|`-separated, NULL empty,
    /// bytes as upper-case hex, booleans as 0/1), in a fixed order. Ciphertexts are left out (a
    /// fresh nonce each time they are sealed); their key id and fingerprint are compared. Outbox
    /// event ids are derived from the database's own id, so they are left out too.
    static func queries(_ backend: Backend) -> [(table: String, sql: String)] {
        let hex = { (column: String) in backend.sql(sqlite: "hex(\(column))", postgres: "upper(encode(\(column), 'hex'))") }
        let bool = { (column: String) in backend.sql(sqlite: column, postgres: "\(column)::int") }
        return [
            ("orgctl_resources", "SELECT address, kind, row_id, digest, audit_seq, \(hex("applied")) FROM orgctl_resources ORDER BY kind, row_id"),
            // Entries name people by random subject tokens (numbered in order of appearance by `rows`), so
            // their hashes and the tree's differ between any two databases; `audit verify` checks those.
            ("orgctl_audit", "SELECT seq, \(backend.sql(sqlite: "CAST(entry AS TEXT)", postgres: "convert_from(entry, 'UTF8')")) FROM orgctl_audit ORDER BY seq"),
            ("orgctl_merkle", "SELECT level, idx FROM orgctl_merkle ORDER BY level, idx"),
            ("tenants", "SELECT id, slug, name, plan, status, trial_ends, domains FROM tenants ORDER BY id"),
            ("roles", "SELECT id, tenant_id, slug, description FROM roles ORDER BY id"),
            ("role_permissions", "SELECT role_id, permission FROM role_permissions ORDER BY role_id, permission"),
            ("quotas", "SELECT scope, scope_id, name, value FROM quotas ORDER BY scope, scope_id, name"),
            ("members", "SELECT id, tenant_id, email, role, expires FROM members ORDER BY id"),
            ("teams", "SELECT id, tenant_id, slug, name, description, parent_id FROM teams ORDER BY id"),
            ("team_members", "SELECT id, team_id, member_id, role FROM team_members ORDER BY id"),
            ("webhooks", "SELECT id, tenant_id, name, url, events, secret_key_id, secret_fingerprint, timeout_seconds, \(bool("enabled")) FROM webhooks ORDER BY id"),
            ("orgctl_outbox", "SELECT webhook_id, event_type, audit_seq, \(hex("payload")), status FROM orgctl_outbox ORDER BY audit_seq, webhook_id, event_type"),
        ]
    }

    /// The same, without row ids: PostgreSQL reserves ids in batches per apply, so after a second
    /// apply the two backends' ids (and so the digests keyed with them, and the plan id over the
    /// stored state) differ by design. Rows are named by their natural keys instead.
    static func queriesWithoutIDs(_ backend: Backend) -> [(table: String, sql: String)] {
        let hex = { (column: String) in backend.sql(sqlite: "hex(\(column))", postgres: "upper(encode(\(column), 'hex'))") }
        let entry = backend.sql(sqlite: "CAST(entry AS TEXT)", postgres: "convert_from(entry, 'UTF8')")
        return [
            ("orgctl_resources", "SELECT address, kind, audit_seq, \(hex("applied")) FROM orgctl_resources ORDER BY address"),
            ("orgctl_audit", "SELECT seq, \(entry) FROM orgctl_audit ORDER BY seq"),
            ("tenants", "SELECT slug, name, plan, status, trial_ends, domains FROM tenants ORDER BY slug"),
            ("members", "SELECT t.slug, m.email, m.role FROM members m JOIN tenants t ON t.id = m.tenant_id ORDER BY 1, 2"),
            ("teams", "SELECT t.slug, g.slug, g.name FROM teams g JOIN tenants t ON t.id = g.tenant_id ORDER BY 1, 2"),
            ("team_members", """
                SELECT t.slug, g.slug, m.email, x.role FROM team_members x JOIN teams g ON g.id = x.team_id
                JOIN members m ON m.id = x.member_id JOIN tenants t ON t.id = g.tenant_id ORDER BY 1, 2, 3
                """),
            ("role_permissions", "SELECT coalesce(t.slug, ''), r.slug, p.permission FROM role_permissions p JOIN roles r ON r.id = p.role_id LEFT JOIN tenants t ON t.id = r.tenant_id ORDER BY 1, 2, 3"),
        ]
    }

    static func rows(_ workspace: Workspace, _ queries: [(table: String, sql: String)]) throws -> [String: String] {
        var rows: [String: String] = [:]
        for (table, sql) in queries {
            // The plan id covers the stored state, row ids included: the one part of an entry that differs.
            let text = try workspace.sql(workspace.state, sql + ";").replacing(/"planId":"[0-9a-f]+"/, with: "\"planId\":\"\"")
            rows[table] = Self.numberingTokens(text)
        }
        return rows
    }

    /// `text` with each subject or value token (`~s:`/`~v:` and 32 hex digits, random per database)
    /// replaced by its number in order of first appearance: the same entries read alike on both backends.
    static func numberingTokens(_ text: String) -> String {
        var numbers: [String: Int] = [:]
        return text.replacing(/~[sv]:[0-9a-f]{32}/) { match in
            let token = String(match.output)
            if numbers[token] == nil { numbers[token] = numbers.count }
            return "\(token.prefix(3))#\(numbers[token]!)"
        }
    }

    /// A first apply (runs of hundreds of members and team memberships), then one that deletes
    /// tenants, creates others and changes the rest (record deletes batched before a run of
    /// record inserts, over records that exist), on both backends from the same files: the first
    /// compared byte for byte, row ids, digests and hashes included; the second by natural keys.
    @Test("a first apply and a large change write on PostgreSQL exactly the rows, records, audit entries and tree nodes SQLite writes")
    func sameRowsAsSQLite() throws {
        var steps: [Backend: [[String: String]]] = [:]
        for backend in [Backend.sqlite, .postgres] {
            let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: "copy-e2e-hook"], name: "pg-copy-same", backend: backend)
            try ConfigGenerator.write(to: workspace.url.appendingPathComponent("first"), tenants: 0..<12, variant: 0, members: 40, teams: 4)
            try ConfigGenerator.write(to: workspace.url.appendingPathComponent("second"), tenants: 4..<18, variant: 1, members: 35, teams: 5)
            for config in ["first", "second"] {
                let confirm = (0..<4).flatMap { ["--allow-delete-tenant", String(format: "t-%05d", $0)] }
                let run = try workspace.apply(config, state: workspace.state, ["--max-deletes", "100000", "--quiet"] + confirm)
                try #require(run.status == 0, "\(backend) \(config): \(run)")
                steps[backend, default: []].append(try Self.rows(workspace, config == "first" ? Self.queries(backend) : Self.queriesWithoutIDs(backend)))
                // What was written reads back as what was applied: the digests match the rows.
                let plan = try workspace.plan(config, state: workspace.state, ["--detailed-exitcode"])
                #expect(plan.status == 0, "\(backend) \(config): \(plan)")
            }
            let verify = try workspace.run(["audit", "verify", "--state", workspace.state])
            #expect(verify.status == 0, "\(backend): \(verify)")
        }
        let (sqlite, postgres) = (try #require(steps[.sqlite]), try #require(steps[.postgres]))
        for step in 0..<2 {
            for (table, _) in step == 0 ? Self.queries(.sqlite) : Self.queriesWithoutIDs(.sqlite) {
                let expected = try #require(sqlite[step][table]), found = try #require(postgres[step][table])
                #expect(!expected.isEmpty || table == "orgctl_outbox", "step \(step): no rows in \(table) to compare")
                #expect(found == expected, "step \(step), table \(table): PostgreSQL wrote other rows than SQLite")
            }
        }
        // The first apply's member rows are many: they went as a COPY run, not one statement each.
        #expect(sqlite[0]["members"]?.lines.count ?? 0 > 400)
    }

    /// The platform added a constraint that one member row of a run breaks: the COPY fails, the
    /// apply says which table and constraint, and nothing of it stays.
    @Test("a row inside a COPY run breaks a constraint the platform added: one clear error naming the table and constraint, the state as before")
    func constraintInsideCopyRun() throws {
        // Member 33 of tenant 5: deep inside the run of members the large apply creates.
        let workspace = try Self.expectPlatformConstraintFails("pg-copy-fault", tenants: 8, breakingTenant: "t-00005")

        // Without the constraint the same apply completes.
        try workspace.sql(workspace.state, "ALTER TABLE members DROP CONSTRAINT platform_no_user33;")
        let again = try workspace.apply("large", state: workspace.state)
        #expect(again.status == 0, "\(again)")
        #expect(try workspace.sql(workspace.state, "SELECT count(*) FROM members;") == "\(8 * 41)\n")
    }

    /// An apply held still inside a COPY run, deterministically: a psql session holds tenant
    /// t-00005's row `FOR UPDATE`, and the COPY of the new members waits at the first member of
    /// t-00005 (its foreign key check locks that row `FOR KEY SHARE`).
    /// With `tenants: 150` the large apply queues more writes than one batch (``PostgresDatabase/queueLimit``),
    /// so the COPY that waits runs on the thread that sends batches ahead while the apply goes on.
    static func blockedInsideCopy(_ fault: String, tenants: Int = 8) throws -> (state: PGState, before: String, apply: Started, backend: String, blocker: PGSession) {
        let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: "copy-e2e-hook"], name: "pg-copy-\(fault)")
        try ConfigGenerator.write(to: workspace.url.appendingPathComponent("small"), tenants: 0..<tenants, variant: 0, members: 2)
        try ConfigGenerator.write(to: workspace.url.appendingPathComponent("large"), tenants: 0..<tenants, variant: 0, members: 40)
        let state = try PGState(workspace)
        try #require(try workspace.apply("small", state: state.server, ["--state-schema", state.schema]).status == 0)
        let before = try state.dump()
        let blocker = try state.session(applicationName: "pge2e-blocker")
        try blocker.run("BEGIN; SELECT slug FROM \(state.schema).tenants WHERE slug = 't-00005' FOR UPDATE;")
        let apply = try workspace.start(["apply", "large", "--auto-approve", "--no-color", "--source", "test", "--lock-timeout", "10m",
                                         "--secrets-out", try workspace.newKeysFile()] + state.arguments(), environment: ["ORGCTL_ACTOR": fault])
        let backend = try state.waitForBackend(applicationNamePrefix: "orgctl apply by \(fault) on ", blockedBy: try blocker.backendPID(), while: apply)
        #expect(try state.value("SELECT query FROM pg_stat_activity WHERE pid = \(backend)").hasPrefix("COPY members "), "the apply waits elsewhere than in its COPY")
        return (state, before, apply, backend, blocker)
    }

    /// After the fault: exactly the state before, the chain intact, and the same apply completes.
    static func expectBeforeThenApplies(_ state: PGState, before: String, tenants: Int = 8, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try state.dump() == before, "the interrupted apply changed the state", sourceLocation: sourceLocation)
        try state.expectChainVerifies(sourceLocation: sourceLocation)
        let again = try state.workspace.apply("large", state: state.server, ["--state-schema", state.schema, "--lock-timeout", "1m"])
        // 38 more members and one more team membership per tenant.
        #expect(again.status == 0 && again.stdout.contains("Apply complete: \(39 * tenants) added, 0 changed, 0 destroyed."), "\(again)", sourceLocation: sourceLocation)
        try state.expectChainVerifies(sourceLocation: sourceLocation)
    }

    /// 8 tenants: the COPY is sent at the commit by the apply's thread; 150: in a batch sent ahead
    /// by the sender's thread while the apply goes on.
    @Test("orgctl SIGKILLed while its COPY of new members waits on a row: the state is before, the chain verifies, the apply then completes",
          arguments: [8, 150])
    func killedInsideCopy(tenants: Int) throws {
        let (state, before, apply, backend, blocker) = try Self.blockedInsideCopy("copykill\(tenants)", tenants: tenants)
        apply.kill()
        #expect(apply.wait().signaled)
        blocker.close()
        // The server ends the orphaned COPY once it reads the closed connection.
        while try state.value("SELECT count(*) FROM pg_stat_activity WHERE pid = \(backend)") != "0" { usleep(20_000) }
        try Self.expectBeforeThenApplies(state, before: before, tenants: tenants)
    }

    @Test("the server process of a COPY terminated (pg_terminate_backend): one clear error, the state before, then the apply completes",
          arguments: [8, 150])
    func terminatedInsideCopy(tenants: Int) throws {
        let (state, before, apply, backend, blocker) = try Self.blockedInsideCopy("copyterm\(tenants)", tenants: tenants)
        #expect(try state.value("SELECT pg_terminate_backend(\(backend), 60000)") == "t")
        let run = apply.wait()
        blocker.close()
        #expect(run.status == 1 && !run.signaled, "\(run)")
        let lines = run.stderr.lines.filter { !$0.isEmpty }
        #expect(lines.count == 2 && lines[0].hasPrefix("error: ") && lines[1].hasPrefix("help: "), "\(run)")
        #expect(run.stderr.contains("terminat") || run.stderr.contains("connection"), "\(run)")
        try Self.expectBeforeThenApplies(state, before: before, tenants: tenants)
    }

    // MARK: Batches sent ahead (WriteSender)

    /// A first apply large enough that most of its writes go in batches sent by the sender's thread
    /// while the apply computes the next ones (and record deletes that could match nothing are
    /// dropped, the table being empty): the same rows as SQLite, byte for byte, subject tables
    /// counted (their ids are random per database).
    @Test("a first apply of several batches sent ahead writes on PostgreSQL exactly the rows SQLite writes")
    func batchesSentAheadSameRowsAsSQLite() throws {
        var rows: [Backend: [String: String]] = [:]
        let counts = ["orgctl_subjects", "orgctl_subject_values", "orgctl_resources", "orgctl_audit"]
        for backend in [Backend.sqlite, .postgres] {
            let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: "copy-e2e-hook"], name: "pg-copy-ahead", backend: backend)
            try ConfigGenerator.write(to: workspace.url.appendingPathComponent("first"), tenants: 0..<150, variant: 0, members: 40, teams: 3)
            let run = try workspace.apply("first", state: workspace.state, ["--quiet"])
            try #require(run.status == 0, "\(backend): \(run)")
            var found = try Self.rows(workspace, Self.queries(backend))
            for table in counts { found["count " + table] = try workspace.sql(workspace.state, "SELECT count(*) FROM \(table);") }
            rows[backend] = found
            if backend == .postgres {
                // The bulk path (`DeferredKeys`): the first apply dropped the twelve foreign keys and added them back.
                let keys = try workspace.sql(workspace.state, """
                    SELECT count(*) FROM pg_constraint k WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace
                      AND k.xmin = (SELECT xmin FROM orgctl_audit WHERE seq = 1);
                    """)
                #expect(keys.trimmingCharacters(in: .whitespacesAndNewlines) == "12", "the first apply did not take the bulk path")
            }
            let plan = try workspace.plan("first", state: workspace.state, ["--detailed-exitcode"])
            #expect(plan.status == 0, "\(backend): \(plan)")
            let verify = try workspace.run(["audit", "verify", "--state", workspace.state])
            #expect(verify.status == 0, "\(backend): \(verify)")
        }
        let (sqlite, postgres) = (try #require(rows[.sqlite]), try #require(rows[.postgres]))
        // Each resource is at least three writes (its row, its record, its audit entry): more than one batch.
        #expect(Int(sqlite["count orgctl_resources"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0 > 16_384 / 3,
                "the apply is too small to fill a batch")
        for (table, expected) in sqlite.sorted(by: { $0.key < $1.key }) {
            #expect(postgres[table] == expected, "table \(table): PostgreSQL wrote other rows than SQLite")
        }
    }

    /// A constraint the platform added breaks a member row that goes in a batch sent ahead: the
    /// failure surfaces on the apply's thread, one clear error, and nothing of the apply stays.
    @Test("a row in a batch sent ahead breaks a constraint the platform added: one clear error naming the table and constraint, the state as before")
    func constraintInsideBatchSentAhead() throws {
        // Members are created before teams and memberships: tenant 20's are in the first batches.
        try Self.expectPlatformConstraintFails("pg-copy-ahead-fault", tenants: 150, breakingTenant: "t-00020")
    }

    /// Applies 2 tenants, adds a platform constraint that member 33 of `breakingTenant` breaks, then
    /// applies `tenants` tenants of 41 members: one clear error naming the table and constraint,
    /// the state as before, the chain intact.
    @discardableResult
    static func expectPlatformConstraintFails(_ name: String, tenants: Int, breakingTenant: String,
                                              sourceLocation: SourceLocation = #_sourceLocation) throws -> Workspace {
        let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: "copy-e2e-hook"], name: name, backend: .postgres)
        try ConfigGenerator.write(to: workspace.url.appendingPathComponent("small"), tenants: 0..<2, variant: 0, members: 2)
        try ConfigGenerator.write(to: workspace.url.appendingPathComponent("large"), tenants: 0..<tenants, variant: 0, members: 40)
        try #require(try workspace.apply("small", state: workspace.state).status == 0, sourceLocation: sourceLocation)
        try workspace.sql(workspace.state, "ALTER TABLE members ADD CONSTRAINT platform_no_user33 CHECK (email <> 'user33@\(breakingTenant).example.com');")
        let before = try workspace.postgresDump()

        let run = try workspace.apply("large", state: workspace.state)
        #expect(run.status == 1 && !run.signaled, "\(run)", sourceLocation: sourceLocation)
        let lines = run.stderr.lines.filter { !$0.isEmpty }
        #expect(lines.count == 2 && lines[0].hasPrefix("error: ") && lines[1].hasPrefix("help: "), "\(run)", sourceLocation: sourceLocation)
        #expect(lines.first?.contains("into members") == true && lines.first?.contains("platform_no_user33") == true, "\(run)",
                sourceLocation: sourceLocation)
        #expect(try workspace.postgresDump() == before, "the failed apply changed the state", sourceLocation: sourceLocation)
        let verify = try workspace.run(["audit", "verify", "--state", workspace.state])
        #expect(verify.status == 0, "\(verify)", sourceLocation: sourceLocation)
        return workspace
    }
}
