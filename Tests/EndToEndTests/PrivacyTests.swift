import Foundation
import Testing

/// `orgctl privacy export|forget` on both backends (docs/audit-chain.md section 8): after an erasure the address
/// is nowhere in the database files, and every checkpoint, proof and both verifiers still pass.
@Suite("privacy: export and erasure")
struct PrivacyTests {
    static let frank = "frank@acme.com"

    /// The examples applied, with a checkpoint of that log in `c1.txt`.
    static func applied(_ backend: Backend) throws -> (workspace: Workspace, config: String) {
        let workspace = try Workspace(backend: backend)
        let config = try workspace.copyExamples()
        let first = try workspace.apply(config, state: workspace.state, ["--checkpoint-out", workspace.path("c1.txt")])
        try #require(first.status == 0, "\(first)")
        return (workspace, config)
    }

    /// Removes frank from acme (member and team member) and applies.
    static func removeFrank(_ workspace: Workspace, _ config: String, _ extra: [String] = []) throws {
        try workspace.edit("config/tenants/acme.yaml", replacing: "  frank@acme.com: viewer\n", with: "")
        try workspace.edit("config/tenants/acme.yaml", replacing: "      frank@acme.com: member\n", with: "")
        let removed = try workspace.apply(config, state: workspace.state, extra)
        try #require(removed.status == 0, "\(removed)")
    }

    /// The files of the workspace's PostgreSQL schema (tables, indexes, TOAST) under the data directory.
    static func relationFiles(_ workspace: Workspace) throws -> [String] {
        let data = try Backend.dataDirectory()
        let paths = try workspace.sql(workspace.state, """
            CHECKPOINT;
            SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND pg_relation_filepath(c.oid) IS NOT NULL
            UNION ALL SELECT pg_relation_filepath(t.reltoastrelid) FROM pg_class t WHERE t.relnamespace = current_schema()::regnamespace AND t.reltoastrelid <> 0;
            """)
        return paths.lines.filter { !$0.isEmpty }.flatMap { relative -> [String] in
            // A relation is one file per GiB segment (`…`, `….1`) plus its free space and visibility maps.
            let base = URL(fileURLWithPath: data).appendingPathComponent(relative).path
            let folder = (base as NSString).deletingLastPathComponent, name = (base as NSString).lastPathComponent
            let all = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            return all.filter { $0 == name || $0.hasPrefix(name + ".") || $0.hasPrefix(name + "_") }.map { folder + "/" + $0 }
        }
    }

    static func occurrences(_ needle: String, in file: String) -> Int {
        guard let data = FileManager.default.contents(atPath: file) else { return 0 }
        let bytes = [UInt8](data), pattern = Array(needle.utf8)
        guard bytes.count >= pattern.count else { return 0 }
        var count = 0
        for i in 0...(bytes.count - pattern.count) where bytes[i] == pattern[0] && bytes[i..<(i + pattern.count)].elementsEqual(pattern) { count += 1 }
        return count
    }

    @Test("forget: the address is in no database file, old checkpoints, proofs and both verifiers pass, export returns nothing, the log shows [erased]",
          arguments: Backend.all)
    func erasure(backend: Backend) throws {
        let (workspace, config) = try Self.applied(backend)
        let state = workspace.state
        try Self.removeFrank(workspace, config)
        let log = try workspace.run(["audit", "log", "--state", state])
        let erasedSequences = log.stdout.lines.filter { $0.contains("/member/frank@acme.com") }.compactMap { $0.split(separator: " ").first.map(String.init) }
        #expect(erasedSequences.count == 4, "\(log)")  // member and team member, created and deleted

        let forget = try workspace.run(["privacy", "forget", Self.frank, "--state", state])
        #expect(forget.status == 0, "\(forget)")
        #expect(forget.stdout.contains("forgot 1 person"), "\(forget)")
        #expect(!forget.stdout.contains(Self.frank) && !forget.stderr.contains(Self.frank))

        if backend == .sqlite {
            let files = [state, state + "-wal", state + "-shm"].filter { FileManager.default.fileExists(atPath: $0) }
            for file in files { #expect(Self.occurrences(Self.frank, in: file) == 0, "\(file) still holds the address") }
            // After a checkpoint by another connection too, and with the WAL present.
            _ = try workspace.sqlite(state, "PRAGMA wal_checkpoint(TRUNCATE);")
            for file in [state, state + "-wal"] { #expect(Self.occurrences(Self.frank, in: file) == 0, "\(file) still holds the address") }
        } else {
            #expect(!(try workspace.postgresDump()).contains(Self.frank))
            if ProcessInfo.processInfo.environment["ORGCTL_TEST_PGDATA"] != nil {
                let files = try Self.relationFiles(workspace)
                #expect(files.count > 20)
                for file in files { #expect(Self.occurrences(Self.frank, in: file) == 0, "\(file) still holds the address") }
            }
        }
        // No row of any table names him (the audit entries never did: they carry tokens).
        #expect(try workspace.sql(state, "SELECT count(*) FROM orgctl_subjects WHERE email = '\(Self.frank)';").hasPrefix("0"))

        let verify = try workspace.run(["audit", "verify", "--state", state, "--checkpoint", workspace.path("c1.txt")])
        #expect(verify.status == 0, "\(verify)")
        let python = try workspace.run([Paths.auditVerifier, try workspace.auditFile(state), "--checkpoint", workspace.path("c1.txt")], executable: Paths.python3)
        #expect(python.status == 0 && python.stdout.contains("ok: checkpoint"), "\(python)")
        for sequence in erasedSequences {
            let prove = try workspace.run(["audit", "prove", sequence, "--state", state])
            try #require(prove.status == 0, "\(prove)")
            let file = workspace.path("p\(sequence)")
            try prove.stdout.write(toFile: file, atomically: true, encoding: .utf8)
            let checked = try workspace.run([Paths.auditVerifier, try workspace.auditFile(state), "--proof", file], executable: Paths.python3)
            #expect(checked.status == 0 && checked.stdout.contains("ok: proof"), "\(checked)")
        }

        let after = try workspace.run(["audit", "log", "--state", state])
        #expect(after.stdout.lines.filter { $0.contains("tenant/acme/member/[erased]") || $0.contains("tenant/acme/team/finance/member/[erased]") }.count == 4, "\(after)")
        #expect(after.stdout.lines.last { !$0.isEmpty }?.contains("erase   privacy") == true, "\(after)")
        #expect(!after.stdout.contains(Self.frank))

        let export = try workspace.run(["privacy", "export", Self.frank, "--state", state])
        #expect(export.status == 0, "\(export)")
        #expect(export.stdout == #"{"auditEntries":[],"email":"frank@acme.com","formatVersion":1,"memberships":[],"teams":[],"webhookEvents":[]}"# + "\n")
        #expect(export.stderr.contains("holds no personal data"))

        // Forgotten is forgotten: a second run says so and writes nothing.
        let before = try workspace.stateBytes(state)
        let again = try workspace.run(["privacy", "forget", Self.frank, "--state", state])
        #expect(again.status == 1 && again.stderr.contains("holds no personal data of 'frank@acme.com'"), "\(again)")
        #expect(try workspace.stateBytes(state) == before)
    }

    @Test("forget is refused while the state holds the person, and for an unknown one; nothing is written", arguments: Backend.all)
    func refusals(backend: Backend) throws {
        let (workspace, _) = try Self.applied(backend)
        let state = workspace.state
        let before = try workspace.stateBytes(state)
        let present = try workspace.run(["privacy", "forget", "bob@acme.com", "--state", state])
        #expect(present.status == 1, "\(present)")
        #expect(present.stderr.contains("'bob@acme.com' is still in the state: tenant/acme/member/bob@acme.com, tenant/acme/team/platform/member/bob@acme.com"), "\(present)")
        #expect(present.stderr.contains("remove them from the configuration of tenant acme"), "\(present)")
        let unknown = try workspace.run(["privacy", "forget", "nobody@nowhere.example", "--state", state])
        #expect(unknown.status == 1 && unknown.stderr.contains("holds no personal data of 'nobody@nowhere.example'"), "\(unknown)")
        let neither = try workspace.run(["privacy", "forget", "--state", state])
        #expect(neither.status == 64, "\(neither)")
        #expect(try workspace.stateBytes(state) == before)
    }

    @Test("export: memberships, teams, guest expiry, the entries and the events that name the person, tokens resolved", arguments: Backend.all)
    func export(backend: Backend) throws {
        let (workspace, _) = try Self.applied(backend)
        let run = try workspace.run(["privacy", "export", "carol@contractor.io", "--state", workspace.state])
        #expect(run.status == 0 && run.stderr.isEmpty, "\(run)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(document.keys.sorted() == ["auditEntries", "email", "formatVersion", "memberships", "teams", "webhookEvents"])
        let memberships = try #require(document["memberships"] as? [[String: Any]])
        #expect(memberships.count == 1)
        #expect(memberships.first?["address"] as? String == "tenant/acme/member/carol@contractor.io")
        #expect(memberships.first?["role"] as? String == "guest")
        #expect(memberships.first?["expires"] as? String == "2027-01-31")
        #expect((document["teams"] as? [Any])?.isEmpty == true)
        let entries = try #require(document["auditEntries"] as? [[String: Any]])
        #expect(entries.count == 1)
        #expect(entries.first?["address"] as? String == "tenant/acme/member/carol@contractor.io")
        #expect((entries.first?["after"] as? [String: Any])?["expires"] as? String == "2027-01-31")
        let events = try #require(document["webhookEvents"] as? [[String: Any]])
        #expect(events.map { $0["type"] as? String } == ["member.added"])
        #expect(events.first?["status"] as? String == "pending")
        // The stored entry holds neither the address nor the expiry.
        let stored = try workspace.sql(workspace.state, backend.sql(
            sqlite: "SELECT count(*) FROM orgctl_audit WHERE CAST(entry AS TEXT) LIKE '%carol%' OR CAST(entry AS TEXT) LIKE '%2027-01-31%';",
            postgres: "SELECT count(*) FROM orgctl_audit WHERE convert_from(entry, 'UTF8') LIKE '%carol%' OR convert_from(entry, 'UTF8') LIKE '%2027-01-31%';"))
        #expect(stored.hasPrefix("0"))

        let bob = try workspace.run(["privacy", "export", "bob@acme.com", "--state", workspace.state])
        let teams = try #require((try JSONSerialization.jsonObject(with: Data(bob.stdout.utf8)) as? [String: Any])?["teams"] as? [[String: Any]])
        #expect(teams.map { $0["address"] as? String } == ["tenant/acme/team/platform/member/bob@acme.com"])
        #expect(teams.first?["role"] as? String == "member")
    }

    @Test("forget --departed-before forgets everyone whose last removal is before the date, and says how many", arguments: Backend.all)
    func retention(backend: Backend) throws {
        let (workspace, config) = try Self.applied(backend)
        let state = workspace.state
        try workspace.edit("config/tenants/acme.yaml", replacing: "  carol@contractor.io: {role: guest, expires: 2027-01-31}\n", with: "")
        workspace.environment["ORGCTL_NOW"] = "2026-12-01T09:00:00Z"
        try Self.removeFrank(workspace, config, ["--override", "maxRemoval", "--reason", "offboarding"])
        workspace.environment["ORGCTL_NOW"] = "2026-12-20T09:00:00Z"
        let early = try workspace.run(["privacy", "forget", "--departed-before", "2026-12-01", "--state", state])
        #expect(early.status == 0 && early.stdout.contains("forgot 0 people who left every tenant before 2026-12-01T00:00:00Z"), "\(early)")
        let late = try workspace.run(["privacy", "forget", "--departed-before", "2026-12-02", "--state", state])
        #expect(late.status == 0 && late.stdout.contains("forgot 2 people"), "\(late)")
        let log = try workspace.run(["audit", "log", "--state", state])
        #expect(!log.stdout.contains("carol@contractor.io") && !log.stdout.contains(Self.frank) && log.stdout.contains("alice@acme.com"), "\(log)")
        #expect(try workspace.pythonVerify(state).status == 0)
    }

    @Test("SQLite: a copy of the address left in free space by a writer without secure_delete is found, and VACUUM removes it")
    func freeSpace() throws {
        let (workspace, config) = try Self.applied(.sqlite)
        let state = workspace.state
        try Self.removeFrank(workspace, config)
        // A platform's own writer (sqlite3 here, secure_delete off) once held the address in rows it deleted.
        try workspace.sqlite(state, """
            PRAGMA secure_delete = OFF; CREATE TABLE platform_scratch (note TEXT);
            INSERT INTO platform_scratch SELECT 'invited frank@acme.com' FROM generate_series(1, 200);
            DROP TABLE platform_scratch; PRAGMA wal_checkpoint(TRUNCATE);
            """.replacingOccurrences(of: "generate_series(1, 200)", with: "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) SELECT i FROM n)"))
        #expect(Self.occurrences(Self.frank, in: state) > 0)
        let forget = try workspace.run(["privacy", "forget", Self.frank, "--state", state])
        #expect(forget.status == 0 && forget.stdout.contains("rebuilt the database with VACUUM"), "\(forget)")
        for file in [state, state + "-wal"] { #expect(Self.occurrences(Self.frank, in: file) == 0, "\(file) still holds the address") }
        #expect(try workspace.pythonVerify(state).status == 0)
    }
}
