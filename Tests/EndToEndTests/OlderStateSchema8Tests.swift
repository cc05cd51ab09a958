import Foundation
import Testing

/// A state written by the last commit of schema 8 (1da1025: `orgctl_subjects` with an inline UNIQUE on `email`),
/// restored from what it wrote (`Tests/OlderStates/schema8`, made by
/// `ORGCTL_OLD_BINARY=… tools/make-older-state.sh 1da1025 Tests/OlderStates/schema8`), on both backends: the
/// migration to 9 makes the uniqueness the named index `orgctl_subjects_email` and keeps every subject.
@Suite("older states: a schema 8 state written before the subjects' e-mail index was named")
struct OlderStateSchema8Tests {
    static let fixture = Paths.packageRoot.appendingPathComponent("Tests/OlderStates/schema8")

    /// Every subject row, `id email` per line, in id order.
    static func subjects(_ workspace: Workspace) throws -> [String] {
        try workspace.sql(workspace.state, "SELECT id || ' ' || email FROM orgctl_subjects ORDER BY id;").lines.filter { !$0.isEmpty }
    }

    /// The unique indexes and constraints of `orgctl_subjects` by name (the primary key's left out).
    static func uniqueness(_ workspace: Workspace) throws -> [String] {
        try workspace.sql(workspace.state, workspace.backend.sql(
            sqlite: "SELECT name FROM pragma_index_list('orgctl_subjects') WHERE \"unique\" AND origin != 'pk' ORDER BY name;",
            postgres: """
                SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'orgctl_subjects' AND indexname != 'orgctl_subjects_pkey'
                UNION ALL SELECT conname FROM pg_constraint WHERE conrelid = 'orgctl_subjects'::regclass AND contype = 'u' ORDER BY 1;
                """)).lines.filter { !$0.isEmpty }
    }

    @Test("the first apply migrates it to schema 9: every subject kept, the inline UNIQUE now the index orgctl_subjects_email, a second row of an address refused, the old checkpoint verifies",
          arguments: Backend.all)
    func migrates(backend: Backend) throws {
        let (workspace, config) = try OlderStateTests.restored(backend, fixture: Self.fixture, version: 8)
        let state = workspace.state
        let before = try Self.subjects(workspace)
        #expect(before.count >= 5, "\(before)")
        #expect(try Self.uniqueness(workspace) == (backend == .sqlite ? ["sqlite_autoindex_orgctl_subjects_2"] : ["orgctl_subjects_email_key", "orgctl_subjects_email_key"]))
        if backend == .sqlite {
            // Read as it is, without writing: the rows are the migrated table's.
            let bytes = try workspace.stateBytes(state)
            let export = try workspace.run(["privacy", "export", OlderStateSchema7Tests.person, "--state", state])
            #expect(export.status == 0 && export.stdout.contains("\"auditEntries\""), "\(export)")
            #expect(try workspace.stateBytes(state) == bytes)
        }
        try OlderStateTests.addNewHire(workspace)
        let applied = try workspace.apply(config, state: state)
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete: 1 added"), "\(applied)")
        #expect(try OlderStateTests.storedVersion(workspace) == 9)
        let after = try Self.subjects(workspace)
        #expect(Set(before).isSubset(of: Set(after)) && after.count == before.count + 1, "before \(before), after \(after)")
        #expect(after.contains { $0.hasSuffix(" \(OlderStateTests.newHire)") })
        #expect(try Self.uniqueness(workspace) == ["orgctl_subjects_email"])

        // A second subject of a stored address is refused by the index.
        let duplicate = "INSERT INTO orgctl_subjects (id, email) VALUES ('00000000000000000000000000000000', '\(OlderStateSchema7Tests.person)');"
        let insert = try workspace.run(backend == .sqlite ? [state] : try #require(workspace.postgres).psqlArguments(),
                                       executable: backend == .sqlite ? Paths.sqlite3 : Backend.psql, stdin: duplicate)
        #expect(insert.status != 0 && (insert.stderr.contains("UNIQUE constraint failed: orgctl_subjects.email")
                                       || insert.stderr.contains("duplicate key value violates unique constraint \"orgctl_subjects_email\"")), "\(insert)")
        #expect(try Self.subjects(workspace) == after)

        let pub = Self.fixture.appendingPathComponent("checkpoint.pub").path
        let checkpoint = Self.fixture.appendingPathComponent(backend == .postgres ? "checkpoint-postgres.txt" : "checkpoint-sqlite.txt").path
        let verify = try workspace.run(["audit", "verify", "--state", state, "--key", pub, "--checkpoint", checkpoint])
        #expect(verify.status == 0, "\(verify)")
        #expect(try OlderStateSchema7Tests.exported(OlderStateTests.newHire, workspace).count == 1)
        let plan = try workspace.plan(config, state: state)
        #expect(plan.status == 0 && plan.stdout.contains("No changes."), "\(plan)")
    }

    @Test("a refused privacy forget leaves a schema 8 state exactly as it was: the rebuild belongs to the erasure's transaction", arguments: Backend.all)
    func refusedForgetDoesNotMigrate(backend: Backend) throws {
        try OlderStateSchema7Tests.refusedForgetLeavesTheState(backend, fixture: Self.fixture, version: 8)
    }

    @Test("SQLite: a view of the user's on orgctl_subjects stops the migration with the DROP to run, and the file is left as it was")
    func viewStopsTheMigration() throws {
        let (workspace, config) = try OlderStateTests.restored(.sqlite, fixture: Self.fixture, version: 8)
        let state = workspace.state
        try workspace.sqlite(state, "PRAGMA journal_mode = WAL; CREATE VIEW subject_addresses AS SELECT email FROM orgctl_subjects;")
        let before = try workspace.stateBytes(state)
        try OlderStateTests.addNewHire(workspace)
        let applied = try workspace.apply(config, state: state)
        #expect(applied.status == 1, "\(applied)")
        #expect(applied.stderr.contains("has a view 'subject_addresses' that reads orgctl's table orgctl_subjects, which the migration to schema 9 rebuilds"), "\(applied)")
        #expect(applied.stderr.contains("DROP VIEW \"subject_addresses\""), "\(applied)")
        #expect(try workspace.stateBytes(state) == before)
        try workspace.sqlite(state, "DROP VIEW subject_addresses;")
        #expect(try workspace.apply(config, state: state).status == 0)
        #expect(try OlderStateTests.storedVersion(workspace) == 9)
    }

    @Test("PostgreSQL: an index of the platform's named orgctl_subjects_email stops the migration (the step's IF NOT EXISTS would keep it in place of the unique one, after dropping the constraint), and the state is left as it was",
          arguments: Backend.all.filter { $0 == .postgres })
    func takenIndexNameStopsTheMigration(backend: Backend) throws {
        let (workspace, config) = try OlderStateTests.restored(backend, fixture: Self.fixture, version: 8)
        let state = workspace.state
        _ = try workspace.sql(state, "CREATE INDEX orgctl_subjects_email ON orgctl_subjects (id);")
        let (subjects, uniqueness) = (try Self.subjects(workspace), try Self.uniqueness(workspace))
        try OlderStateTests.addNewHire(workspace)
        let applied = try workspace.apply(config, state: state)
        #expect(applied.status == 1, "\(applied)")
        #expect(applied.stderr.contains("has an index named 'orgctl_subjects_email', the name of the unique index that the migration to schema 9 creates on orgctl_subjects: nothing was migrated"), "\(applied)")
        #expect(applied.stderr.contains("ALTER INDEX orgctl_subjects_email RENAME TO"), "\(applied)")
        #expect(try OlderStateTests.storedVersion(workspace) == 8)
        #expect(try Self.subjects(workspace) == subjects)
        #expect(try Self.uniqueness(workspace) == uniqueness)
        // Renamed, the migration runs and the e-mail uniqueness is orgctl's index.
        _ = try workspace.sql(state, "ALTER INDEX orgctl_subjects_email RENAME TO platform_subject_ids;")
        let again = try workspace.apply(config, state: state)
        #expect(again.status == 0, "\(again)")
        #expect(try OlderStateTests.storedVersion(workspace) == 9)
        #expect(try Self.uniqueness(workspace) == ["orgctl_subjects_email", "platform_subject_ids"])
        let unique = try workspace.sql(state, "SELECT indisunique FROM pg_index WHERE indexrelid = 'orgctl_subjects_email'::regclass;")
        #expect(unique.trimmingCharacters(in: .whitespacesAndNewlines) == "t", "\(unique)")
    }

    @Test("PostgreSQL: a unique index named orgctl_subjects_email on another column, or on email of another table, stops the migration too",
          arguments: Backend.all.filter { $0 == .postgres })
    func otherIndexOfTheNameStopsTheMigration(backend: Backend) throws {
        for index in ["CREATE UNIQUE INDEX orgctl_subjects_email ON orgctl_subjects (id);",
                      "CREATE TABLE platform_people (email text); CREATE UNIQUE INDEX orgctl_subjects_email ON platform_people (email);"] {
            let (workspace, config) = try OlderStateTests.restored(backend, fixture: Self.fixture, version: 8)
            _ = try workspace.sql(workspace.state, index)
            let applied = try workspace.apply(config, state: workspace.state)
            #expect(applied.status == 1 && applied.stderr.contains("has an index named 'orgctl_subjects_email'"), "\(index): \(applied)")
            #expect(try OlderStateTests.storedVersion(workspace) == 8)
        }
    }
}

