import Foundation
import Testing

/// `privacy export` and `forget` against what the database can be made to say (docs/audit-chain.md 8.4-8.7): an
/// entry's bytes can hold a token's text without carrying the token, schema 7's index `orgctl_subject_entries` was a
/// hint written in a database others can write, addresses come in any case, and logs begin with format 1 entries.
/// Each test reproduces a defect found by review.
@Suite("privacy: export and forget trust the entries, not an index")
struct PrivacyTrustTests {
    static let frank = PrivacyTests.frank

    /// The subject id of `email`.
    static func subject(of email: String, _ workspace: Workspace) throws -> String {
        let id = try workspace.sql(workspace.state, "SELECT id FROM orgctl_subjects WHERE email = '\(email)';")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(id.count == 32)
        return id
    }

    /// The sequences of the entries of `audit log` whose line holds `text`.
    static func logged(_ text: String, _ workspace: Workspace) throws -> [Int] {
        let log = try workspace.run(["audit", "log", "--state", workspace.state])
        try #require(log.status == 0, "\(log)")
        return log.stdout.lines.filter { $0.contains(text) }.compactMap { $0.split(separator: " ").first.flatMap { Int($0) } }
    }

    /// The `seq` of every entry of `privacy export EMAIL`.
    static func exported(_ email: String, _ workspace: Workspace) throws -> [Int] {
        let export = try workspace.run(["privacy", "export", email, "--state", workspace.state])
        try #require(export.status == 0, "\(export)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(export.stdout.utf8)) as? [String: Any])
        return try #require(document["auditEntries"] as? [[String: Any]]).compactMap { $0["seq"] as? Int }
    }

    /// How many outbox rows hold `text` (any case) in their payload.
    static func eventsHolding(_ text: String, _ workspace: Workspace, _ backend: Backend) throws -> Int {
        let count = try workspace.sql(workspace.state, backend.sql(
            sqlite: "SELECT count(*) FROM orgctl_outbox WHERE lower(CAST(payload AS TEXT)) LIKE '%\(text)%';",
            postgres: "SELECT count(*) FROM orgctl_outbox WHERE lower(convert_from(payload, 'UTF8')) LIKE '%\(text)%';"))
        return Int(count.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Whether any file of the state (the SQLite file and its WAL, or the schema's rows and relation files) holds
    /// `text` in any case.
    static func stateHolds(_ text: String, _ workspace: Workspace) throws -> [String] {
        let state = workspace.state
        if !workspace.isPostgres(state) {
            _ = try workspace.sqlite(state, "PRAGMA wal_checkpoint(TRUNCATE);")
            return [state, state + "-wal"].filter { lowerBytes($0).contains(text) }
        }
        var found = try workspace.postgresDump().lowercased().contains(text) ? ["the schema's rows"] : []
        if ProcessInfo.processInfo.environment["ORGCTL_TEST_PGDATA"] != nil {
            found += try PrivacyTests.relationFiles(workspace).filter { lowerBytes($0).contains(text) }
        }
        return found
    }

    static func lowerBytes(_ file: String) -> String {
        guard let data = FileManager.default.contents(atPath: file) else { return "" }
        return String(decoding: data.map { (65...90).contains($0) ? $0 + 32 : $0 }, as: UTF8.self)
    }

    @Test("a value that spells another person's token is not their entry: export confirms what the database finds by the entry's own tokens",
          arguments: Backend.all)
    func tokenTextInAValue(backend: Backend) throws {
        let (workspace, config) = try PrivacyTests.applied(backend)
        let state = workspace.state
        let carols = try Self.exported("carol@contractor.io", workspace)
        #expect(!carols.isEmpty)
        // A name that spells carol's token: written as the literal `~~s:…`, whose bytes hold the token's text.
        let token = "~s:" + (try Self.subject(of: "carol@contractor.io", workspace))
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli \(token)")
        let renamed = try workspace.apply(config, state: state)
        try #require(renamed.status == 0, "\(renamed)")
        let entry = try #require(try Self.logged("tenant/hooli", workspace).last)
        #expect(try workspace.run(["audit", "log", "--state", state, "--format", "json"]).stdout.contains("Hooli \(token)"))
        #expect(try Self.exported("carol@contractor.io", workspace) == carols, "entry \(entry) was exported as carol's")
    }

    @Test("an entry whose index row was deleted in a schema 7 state is exported once the state is at schema 8 or later (export no longer reads the index)",
          arguments: Backend.all)
    func deletedIndexRowHidesNothing(backend: Backend) throws {
        let (workspace, config) = try PrivacyTests.applied(backend)
        let state = workspace.state
        let franks = try Self.logged("/member/" + Self.frank, workspace)
        #expect(franks.count == 2)
        // Schema 7 with frank's index rows deleted (here: the whole index is empty), as a writer of the database could leave it.
        try workspace.sql(state, backend.sql(
            sqlite: """
                CREATE TABLE orgctl_subject_entries (subject TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (subject, seq)) STRICT, WITHOUT ROWID;
                PRAGMA user_version = 7;
                """,
            postgres: """
                CREATE TABLE orgctl_subject_entries (subject text COLLATE "C" NOT NULL, seq bigint NOT NULL, PRIMARY KEY (subject, seq));
                ALTER TABLE orgctl_subject_entries ENABLE ROW LEVEL SECURITY;
                UPDATE orgctl_meta SET value = '7' WHERE key = 'schema_version';
                """))
        if backend == .postgres {
            // PostgreSQL states are migrated by apply, even with no changes.
            let apply = try workspace.run(["apply", config, "--state", state, "--no-color"])
            #expect(apply.status == 0 && apply.stderr.contains("migrated the state's schema from version 7 to 9"), "\(apply)")
        }
        // SQLite reads the file as migrated; the old export found frank's entries through the index and listed none.
        #expect(try Self.exported(Self.frank, workspace) == franks)
        // An apply that writes migrates either backend (and drops the index).
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let apply = try workspace.apply(config, state: state)
        #expect(apply.status == 0, "\(apply)")
        #expect(try workspace.sql(state, backend.sql(sqlite: "PRAGMA user_version;", postgres: "SELECT value FROM orgctl_meta WHERE key = 'schema_version';"))
            .trimmingCharacters(in: .whitespacesAndNewlines) == "9")
        #expect(try Self.exported(Self.frank, workspace) == franks)
        #expect(try workspace.pythonVerify(state).status == 0)
    }

    /// The privacy workspace applied on `backend`, then tenant hooli renamed by an apply whose actor is `actor`.
    static func renamedHooli(_ backend: Backend, actor: String) throws -> (workspace: Workspace, config: String, state: String) {
        let (workspace, config) = try PrivacyTests.applied(backend)
        let state = workspace.state
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let changed = try workspace.apply(config, state: state, environment: ["ORGCTL_ACTOR": actor])
        try #require(changed.status == 0, "\(changed)")
        return (workspace, config, state)
    }

    @Test("a person named by more subjects than the database is asked to search for (an actor's text each) has every entry exported", arguments: Backend.all)
    func manySubjects(backend: Backend) throws {
        let (workspace, _, state) = try Self.renamedHooli(backend, actor: "frank@acme.com via ci")
        let entry = try #require(try Self.logged("tenant/hooli", workspace).last)
        let franks = try Self.exported(Self.frank, workspace)
        #expect(franks.contains(entry))
        // 300 more subjects whose text holds frank's address, with ids that sort before every real one: the subject
        // of `frank@acme.com via ci` is searched in a later statement than the first.
        try workspace.sql(state, backend.sql(
            sqlite: """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
                INSERT INTO orgctl_subjects (id, email) SELECT printf('%032x', i), 'frank@acme.com via job ' || i FROM n;
                """,
            postgres: """
                INSERT INTO orgctl_subjects (id, email) SELECT lpad(to_hex(i), 32, '0'), 'frank@acme.com via job ' || i FROM generate_series(1, 300) i;
                """))
        #expect(try Self.exported(Self.frank, workspace) == franks)
    }

    @Test("an address is one person in any case: the actor Frank@Acme.com is exported and forgotten with frank@acme.com", arguments: Backend.all)
    func anyCase(backend: Backend) throws {
        let (workspace, config, state) = try Self.renamedHooli(backend, actor: "Frank@Acme.com")
        try PrivacyTests.removeFrank(workspace, config)

        let export = try workspace.run(["privacy", "export", Self.frank, "--state", state])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(export.stdout.utf8)) as? [String: Any])
        let entries = try #require(document["auditEntries"] as? [[String: Any]])
        #expect(entries.contains { $0["address"] as? String == "tenant/hooli" && ($0["actor"] as? String)?.lowercased() == Self.frank }, "\(export)")

        let forget = try workspace.run(["privacy", "forget", "Frank@ACME.com", "--state", state])
        #expect(forget.status == 0, "\(forget)")
        #expect(try Self.stateHolds(Self.frank, workspace) == [])
        let log = try workspace.run(["audit", "log", "--state", state])
        #expect(!log.stdout.lowercased().contains(Self.frank), "\(log)")
        #expect(log.stdout.contains("tenant/hooli") && log.stdout.contains("by [erased]"), "\(log)")
    }

    @Test("export lists the format 1 entries (written before subject tokens) that name the person", arguments: Backend.all)
    func formatOneEntries(backend: Backend) throws {
        let (workspace, _) = try PrivacyTests.applied(backend)
        let state = workspace.state
        // The log as a release before schema 7 wrote it: addresses and values in the entries, no subjects. (Export
        // reads entries without verifying the chain, so the hashes are left as they were.)
        let tokens = try workspace.sql(state, "SELECT '~s:' || id || '|' || email FROM orgctl_subjects UNION ALL SELECT '~v:' || token || '|' || value FROM orgctl_subject_values;")
        var script = ""
        for line in tokens.lines where !line.isEmpty {
            let parts = line.split(separator: "|", maxSplits: 1).map(String.init)
            script += backend.sql(
                sqlite: "UPDATE orgctl_audit SET entry = CAST(replace(CAST(entry AS TEXT), '\(parts[0])', '\(parts[1])') AS BLOB);\n",
                postgres: "UPDATE orgctl_audit SET entry = convert_to(replace(convert_from(entry, 'UTF8'), '\(parts[0])', '\(parts[1])'), 'UTF8');\n")
        }
        script += backend.sql(
            sqlite: "UPDATE orgctl_audit SET entry = CAST(replace(CAST(entry AS TEXT), '\"v\":2}', '\"v\":1}') AS BLOB);\n",
            postgres: "UPDATE orgctl_audit SET entry = convert_to(replace(convert_from(entry, 'UTF8'), '\"v\":2}', '\"v\":1}'), 'UTF8');\n")
        script += "DELETE FROM orgctl_subject_values; DELETE FROM orgctl_subjects;\n"
        try workspace.sql(state, script)

        let log = try workspace.run(["audit", "log", "--state", state])
        let franks = log.stdout.lines.filter { $0.contains(Self.frank) }.compactMap { $0.split(separator: " ").first.flatMap { Int($0) } }
        #expect(franks.count == 2, "\(log)")
        let export = try workspace.run(["privacy", "export", Self.frank, "--state", state])
        #expect(export.status == 0, "\(export)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(export.stdout.utf8)) as? [String: Any])
        let entries = try #require(document["auditEntries"] as? [[String: Any]])
        #expect(entries.compactMap { $0["seq"] as? Int } == franks, "\(export)")
        #expect(entries.allSatisfy { $0["v"] as? Int == 1 })
        // frank@acme.com is not bob@acme.com's prefix nor anyone else's: nobody else's entry is listed.
        #expect(entries.allSatisfy { ($0["address"] as? String)?.hasSuffix("/member/" + Self.frank) == true })
    }

    @Test("forget --departed-before refuses an actor who is among the people to forget; nothing is written", arguments: Backend.all)
    func retentionActor(backend: Backend) throws {
        let (workspace, config) = try PrivacyTests.applied(backend)
        let state = workspace.state
        try PrivacyTests.removeFrank(workspace, config)
        let before = try workspace.stateBytes(state)
        let run = try workspace.run(["privacy", "forget", "--departed-before", "2100-01-01", "--state", state, "--no-color"],
                                    environment: ["ORGCTL_ACTOR": "Frank@acme.com"])
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.hasPrefix("error: the actor 'Frank@acme.com' names one of the people to forget") && run.stderr.contains("\nhelp: "), "\(run)")
        #expect(try workspace.stateBytes(state) == before, "a refused erasure wrote to the state")
        let other = try workspace.run(["privacy", "forget", "--departed-before", "2100-01-01", "--state", state])
        #expect(other.status == 0 && other.stdout.contains("forgot 1 person"), "\(other)")
    }

    @Test("SQLite: a table of the platform's own holding the address is found before the erasure commits; forget refuses, naming it")
    func copyInAnotherTable() throws {
        let (workspace, config) = try PrivacyTests.applied(.sqlite)
        let state = workspace.state
        try PrivacyTests.removeFrank(workspace, config)
        try workspace.sqlite(state, "CREATE TABLE platform_notes (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO platform_notes (note) VALUES ('offboarded Frank@ACME.com'), ('jimfrank@acme.com stays');")
        let before = try workspace.stateBytes(state)
        let refused = try workspace.run(["privacy", "forget", Self.frank, "--state", state, "--no-color"])
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.hasPrefix("error: 'frank@acme.com' is still in table platform_notes of ") && refused.stderr.contains("nothing was erased"), "\(refused)")
        #expect(refused.stderr.contains("\nhelp: delete or change the rows of platform_notes"), "\(refused)")
        #expect(try workspace.stateBytes(state) == before, "a refused erasure wrote to the state")
        // Once the platform removed its copy, forget erases (the other person's address is not the one forgotten).
        try workspace.sqlite(state, "DELETE FROM platform_notes WHERE note LIKE 'offboarded%';")
        let forget = try workspace.run(["privacy", "forget", Self.frank, "--state", state])
        #expect(forget.status == 0, "\(forget)")
        #expect(try workspace.sqlite(state, "SELECT note FROM platform_notes;") == "jimfrank@acme.com stays\n")
    }

    @Test("PostgreSQL: VACUUM FULL behind a session holding a lock on a table waits at most the lock timeout, then warns how to finish")
    func vacuumLockTimeout() throws {
        guard Backend.all.contains(.postgres) else { return }
        let (workspace, config) = try PrivacyTests.applied(.postgres)
        let state = workspace.state
        try PrivacyTests.removeFrank(workspace, config)
        let postgres = try #require(workspace.postgres)
        // A platform session left idle in a transaction that locked members (READ COMMITTED, so it holds no snapshot,
        // which would keep the erased rows of every other test's schema alive too).
        let script = #"(printf 'BEGIN; LOCK TABLE \#(postgres.name).members IN ACCESS SHARE MODE;\n'; sleep 60) | \#(Backend.psql) -X -q '\#(postgres.uri)'"#
        let reader = try workspace.start(["-c", script], executable: "/bin/sh")
        defer {
            _ = try? workspace.sql(state, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LOCK TABLE \(postgres.name).members%';")
            reader.kill()
        }
        var holding = false
        for _ in 0..<200 where !holding {
            holding = try workspace.sql(state, """
                SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                 WHERE c.relname = 'members' AND c.relnamespace = current_schema()::regnamespace AND l.pid <> pg_backend_pid();
                """).hasPrefix("1")
            if !holding { usleep(50_000) }
        }
        try #require(holding, "the reader never locked members")
        let forget = try workspace.run(["privacy", "forget", Self.frank, "--state", state, "--lock-timeout", "1s"])
        #expect(reader.process.isRunning, "forget waited for the reader to end")
        #expect(forget.status == 0, "\(forget)")
        #expect(forget.stderr.contains("warning: another session held a lock on members for longer than the lock timeout (1000 ms)"), "\(forget)")
        #expect(forget.stderr.contains("'VACUUM FULL \"\(postgres.name)\".members'") || forget.stderr.contains("'VACUUM FULL \(postgres.name).members'"), "\(forget)")
        #expect(forget.stdout.contains("rewrote team_members"), "\(forget)")
    }
}
