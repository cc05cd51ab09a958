import Foundation
import Testing

/// A state written by the last release before schema 8 (commit f181db8: schema 7, with the index of entries per
/// subject `orgctl_subject_entries`), restored from what that release wrote (`Tests/OlderStates/schema7`, made by
/// `tools/make-older-state.sh f181db8 Tests/OlderStates/schema7`), on both backends: its format 2 entries are
/// exported before and after the migration, which drops the index, and its log and checkpoint keep verifying.
@Suite("older states: a schema 7 state written by the release before schema 8")
struct OlderStateSchema7Tests {
    static let fixture = Paths.packageRoot.appendingPathComponent("Tests/OlderStates/schema7")
    static let person = "peter.gibbons@initech.com"

    /// The sequences of the entries of `privacy export EMAIL`.
    static func exported(_ email: String, _ workspace: Workspace) throws -> [Int] {
        let export = try workspace.run(["privacy", "export", email, "--state", workspace.state])
        try #require(export.status == 0, "\(export)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(export.stdout.utf8)) as? [String: Any])
        return try #require(document["auditEntries"] as? [[String: Any]]).compactMap { $0["seq"] as? Int }
    }

    @Test("the first apply migrates it to the current schema (8 dropped the index): the old checkpoint verifies, and export finds the same entries as the old index did",
          arguments: Backend.all)
    func migrates(backend: Backend) throws {
        let (workspace, config) = try OlderStateTests.restored(backend, fixture: Self.fixture, version: 7)
        let state = workspace.state
        // What the old release's index says the person's entries are.
        let indexed = try workspace.sql(state, """
            SELECT e.seq FROM orgctl_subject_entries e JOIN orgctl_subjects s ON s.id = e.subject WHERE s.email = '\(Self.person)' ORDER BY e.seq;
            """).lines.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        #expect(!indexed.isEmpty)
        if backend == .sqlite {
            // Read as migrated, without writing: export searches the entries, not the index.
            let before = try workspace.stateBytes(state)
            #expect(try Self.exported(Self.person, workspace) == indexed)
            #expect(try workspace.stateBytes(state) == before)
        }
        try OlderStateTests.addNewHire(workspace)
        let applied = try workspace.apply(config, state: state)
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete: 1 added"), "\(applied)")
        #expect(try OlderStateTests.storedVersion(workspace) == 9)
        let tables = try workspace.sql(state, backend.sql(
            sqlite: "SELECT count(*) FROM sqlite_master WHERE name = 'orgctl_subject_entries';",
            postgres: "SELECT count(*) FROM pg_class WHERE relname = 'orgctl_subject_entries' AND relnamespace = current_schema()::regnamespace;"))
        #expect(tables.trimmingCharacters(in: .whitespacesAndNewlines) == "0")

        let pub = Self.fixture.appendingPathComponent("checkpoint.pub").path
        let checkpoint = Self.fixture.appendingPathComponent(backend == .postgres ? "checkpoint-postgres.txt" : "checkpoint-sqlite.txt").path
        let verify = try workspace.run(["audit", "verify", "--state", state, "--key", pub, "--checkpoint", checkpoint])
        #expect(verify.status == 0, "\(verify)")
        let python = try workspace.run([Paths.auditVerifier, try workspace.auditFile(state), "--key", pub, "--checkpoint", checkpoint],
                                       executable: Paths.python3)
        #expect(python.status == 0, "\(python)")
        #expect(try Self.exported(Self.person, workspace) == indexed)
        #expect(try Self.exported(OlderStateTests.newHire, workspace).count == 1)
    }

    @Test("a refused privacy forget leaves a schema 7 state exactly as it was: the migration belongs to the erasure's transaction",
          arguments: Backend.all)
    func refusedForgetDoesNotMigrate(backend: Backend) throws {
        try Self.refusedForgetLeavesTheState(backend, fixture: Self.fixture, version: 7)
    }

    /// Two refused `privacy forget`s (the person still in the state, an unknown address) on the older state of
    /// `fixture` (schema `version`) leave it exactly as it was: the migration belongs to the erasure's transaction.
    static func refusedForgetLeavesTheState(_ backend: Backend, fixture: URL, version: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (workspace, _) = try OlderStateTests.restored(backend, fixture: fixture, version: version)
        let state = workspace.state
        // orgctl's own files are in WAL mode (a restored dump is not): opening for writing would switch it.
        if backend == .sqlite { _ = try workspace.sql(state, "PRAGMA journal_mode = WAL;") }
        let before = try workspace.stateBytes(state)
        let stillThere = try workspace.run(["privacy", "forget", Self.person, "--state", state])
        #expect(stillThere.status == 1 && stillThere.stderr.contains("is still in the state"), "\(stillThere)")
        let unknown = try workspace.run(["privacy", "forget", "nobody@initech.com", "--state", state])
        #expect(unknown.status == 1 && unknown.stderr.contains("holds no personal data"), "\(unknown)")
        #expect(try OlderStateTests.storedVersion(workspace) == version, sourceLocation: sourceLocation)
        #expect(try workspace.stateBytes(state) == before, "a refused forget changed the schema \(version) state", sourceLocation: sourceLocation)
    }

    @Test("SQLite: a saved plan refused as stale when applied leaves the schema 7 file as it was; applied, it migrates the file in its transaction")
    func staleSavedPlanDoesNotMigrate() throws {
        let (workspace, config) = try OlderStateTests.restored(.sqlite, fixture: Self.fixture, version: 7)
        let state = workspace.state
        _ = try workspace.sql(state, "PRAGMA journal_mode = WAL;")
        try workspace.edit("config/tenants/initech.yaml", replacing: "admin\n  \(Self.person): member\n", with: "admin\n  \(Self.person): admin\n")
        let plan = workspace.path("reviewed.plan")
        let planned = try workspace.run(["plan", config, "--state", state, "--out", plan])
        try #require(planned.status == 0, "\(planned)")
        // Changed behind orgctl's back after the review: the plan is stale at that member.
        let updateRole = { (role: String) in try workspace.sql(state, "UPDATE members SET role = '\(role)' WHERE email = '\(Self.person)';") }
        _ = try updateRole("viewer")
        let before = try workspace.stateBytes(state)
        let stale = try workspace.run(["apply", plan, "--state", state, "--auto-approve"])
        #expect(stale.status == 1 && stale.stderr.contains("the plan is stale"), "\(stale)")
        #expect(try OlderStateTests.storedVersion(workspace) == 7)
        #expect(try workspace.stateBytes(state) == before, "a stale saved plan changed the schema 7 state")
        _ = try updateRole("member")
        let applied = try workspace.run(["apply", plan, "--state", state, "--auto-approve"])
        #expect(applied.status == 0 && applied.stdout.contains("1 changed"), "\(applied)")
        #expect(try OlderStateTests.storedVersion(workspace) == 9)
        #expect(try workspace.sql(state, "SELECT count(*) FROM sqlite_master WHERE name = 'orgctl_subject_entries';")
            .trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        #expect(try workspace.run(["audit", "verify", "--state", state]).status == 0)
    }
}
