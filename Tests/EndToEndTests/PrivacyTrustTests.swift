import Foundation
import Testing

/// `privacy export` and `forget` against what the database can be made to say (docs/audit-chain.md 8.4-8.7): the
/// index `orgctl_subject_entries` is a hint written in a database others can write, addresses come in any case, and
/// logs begin with format 1 entries. Each test reproduces a defect found by review.
@Suite("privacy: export and forget trust the entries, not the index")
struct PrivacyTrustTests {
    static let frank = PrivacyTests.frank

    /// The sequence of the first entry whose index row names `email`'s subject.
    static func firstEntry(of email: String, _ workspace: Workspace) throws -> String {
        let seq = try workspace.sql(workspace.state, """
            SELECT min(seq) FROM orgctl_subject_entries WHERE subject = (SELECT id FROM orgctl_subjects WHERE email = '\(email)');
            """).trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(!seq.isEmpty)
        return seq
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

    @Test("a forged index row neither makes export list another person's entry nor makes forget touch another person's data",
          arguments: Backend.all)
    func forgedIndex(backend: Backend) throws {
        let (workspace, config) = try PrivacyTests.applied(backend)
        let state = workspace.state
        let alices = try Self.firstEntry(of: "alice@acme.com", workspace)
        // Someone who can write the database ties carol's and frank's subjects to alice's entry.
        try workspace.sql(state, """
            INSERT INTO orgctl_subject_entries (subject, seq) SELECT id, \(alices) FROM orgctl_subjects WHERE email IN ('carol@contractor.io', '\(Self.frank)');
            """)
        let export = try workspace.run(["privacy", "export", "carol@contractor.io", "--state", state])
        #expect(export.status == 0, "\(export)")
        #expect(!export.stdout.contains("alice@acme.com"), "carol's export discloses alice: \(export)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(export.stdout.utf8)) as? [String: Any])
        #expect((document["auditEntries"] as? [[String: Any]])?.map { $0["address"] as? String } == ["tenant/acme/member/carol@contractor.io"])

        let alicesEvents = try Self.eventsHolding("alice@acme.com", workspace, backend)
        try PrivacyTests.removeFrank(workspace, config)
        let forget = try workspace.run(["privacy", "forget", Self.frank, "--state", state])
        #expect(forget.status == 0, "\(forget)")
        #expect(try Self.eventsHolding("alice@acme.com", workspace, backend) == alicesEvents, "forget redacted alice's events")
        let log = try workspace.run(["audit", "log", "--state", state])
        #expect(log.stdout.lines.contains { $0.hasPrefix(alices + " ") && $0.contains("tenant/acme/member/alice@acme.com") }, "\(log)")
    }

    @Test("forget with the person's index rows deleted still redacts every event naming them, before committing", arguments: Backend.all)
    func missingIndex(backend: Backend) throws {
        let (workspace, config) = try PrivacyTests.applied(backend)
        let state = workspace.state
        try PrivacyTests.removeFrank(workspace, config)
        #expect(try Self.eventsHolding(Self.frank, workspace, backend) > 0)
        try workspace.sql(state, "DELETE FROM orgctl_subject_entries WHERE subject = (SELECT id FROM orgctl_subjects WHERE email = '\(Self.frank)');")
        let forget = try workspace.run(["privacy", "forget", Self.frank, "--state", state])
        #expect(forget.status == 0 && !forget.stdout.contains("redacted 0 webhook events"), "\(forget)")
        #expect(try Self.eventsHolding(Self.frank, workspace, backend) == 0)
        #expect(try Self.stateHolds(Self.frank, workspace) == [])
        #expect(try workspace.pythonVerify(state).status == 0)
    }

    @Test("an address is one person in any case: the actor Frank@Acme.com is exported and forgotten with frank@acme.com", arguments: Backend.all)
    func anyCase(backend: Backend) throws {
        let (workspace, config) = try PrivacyTests.applied(backend)
        let state = workspace.state
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let changed = try workspace.apply(config, state: state, environment: ["ORGCTL_ACTOR": "Frank@Acme.com"])
        try #require(changed.status == 0, "\(changed)")
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
        script += "DELETE FROM orgctl_subject_entries; DELETE FROM orgctl_subject_values; DELETE FROM orgctl_subjects;\n"
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
