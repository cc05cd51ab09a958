import Foundation
import Testing

/// Scheduled drift jobs and CI read orgctl's exit status and its first lines: a missing database,
/// a targeted plan or a bad option value must never read as something else.
@Suite("Drift jobs, targeting and options are not fooled")
struct NotFooledTests {
    func appliedExamples(_ backend: Backend = .sqlite) throws -> (Workspace, config: String, state: String) {
        try Workspace.appliedExamples(name: "notfooled", backend: backend)
    }

    @Test("drift against a missing database is an error (exit 1) in every format, and creates nothing",
          arguments: ["text", "json", "markdown"])
    func driftMissingDatabase(_ format: String) throws {
        let workspace = try Workspace(name: "notfooled")
        let config = try workspace.copyExamples()
        let typo = workspace.path("sttae.db")
        let metrics = workspace.path("drift.prom")
        let run = try workspace.run(["drift", config, "--state", typo, "--format", format, "--metrics", metrics, "--no-color"])
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("error: the state database '\(typo)' does not exist"), "\(run)")
        #expect(run.stderr.contains("help: pass the database 'orgctl apply' writes with --state"), "\(run)")
        #expect(!run.stdout.contains("not yet applied"), "\(run)")
        #expect(!FileManager.default.fileExists(atPath: typo))
        #expect(!FileManager.default.fileExists(atPath: metrics))
        // The same through ORGCTL_STATE (an unmounted volume).
        let viaEnvironment = try workspace.run(["drift", config], environment: ["ORGCTL_STATE": workspace.path("mnt/state.db")])
        #expect(viaEnvironment.status == 1 && viaEnvironment.stderr.contains("does not exist"), "\(viaEnvironment)")
    }

    @Test("plan against a missing database says it plans against an empty state, and creates nothing")
    func planMissingDatabase() throws {
        let workspace = try Workspace(name: "notfooled")
        let config = try workspace.copyExamples()
        let state = workspace.path("new.db")
        for extra in [[], ["--format", "json"]] {
            let run = try workspace.plan(config, state: state, extra)
            #expect(run.status == 0, "\(run)")
            #expect(run.stderr.contains("note: the state database '\(state)' does not exist yet; planning against an empty state (apply creates it)"),
                    "\(run)")
        }
        // In the pull-request comment and the JSON document too.
        let markdown = try workspace.plan(config, state: state, ["--format", "markdown"])
        #expect(markdown.stdout.contains("> **Note:** the state database does not exist yet: this plan is against an empty state"), "\(markdown)")
        let json = try workspace.plan(config, state: state, ["--format", "json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(document["stateExists"] as? Bool == false, "\(json)")
        #expect(!FileManager.default.fileExists(atPath: state))
        // Once it exists, no note.
        #expect(try workspace.apply(config, state: state).status == 0)
        let existing = try workspace.plan(config, state: state, ["--format", "json"])
        #expect(!existing.stdout.contains("stateExists") && !existing.stderr.contains("does not exist"), "\(existing)")
        #expect(!(try workspace.plan(config, state: state, ["--format", "markdown"])).stdout.contains("does not exist"))
    }

    @Test("read-only commands refuse a missing database and never create one",
          arguments: [["export", "OUT"], ["audit", "verify"], ["audit", "log"], ["audit", "checkpoint"], ["audit", "prove", "1"]])
    func readOnlyCommandsMissingDatabase(_ arguments: [String]) throws {
        let workspace = try Workspace(name: "notfooled")
        let state = workspace.path("missing.db")
        let run = try workspace.run(arguments.map { $0 == "OUT" ? workspace.path("out") : $0 } + ["--state", state])
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("does not exist"), "\(run)")
        #expect(!FileManager.default.fileExists(atPath: state))
    }

    @Test("a pattern that selects nothing, or that hides changes, never prints a bare 'No changes'", arguments: Backend.all)
    func targetingIsAlwaysShown(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.edit("config/tenants/acme.yaml", replacing: "name: Acme Corporation", with: "name: Acme Corp.")

        // A typo in the target: text says what is left out and warns on standard error.
        let typo = try workspace.plan(config, state: state, ["--target", "tenant/acme-corp/**", "--detailed-exitcode"])
        #expect(typo.status == 0, "\(typo)")
        #expect(!typo.stdout.contains("The state database matches the configuration"), "\(typo)")
        #expect(typo.stdout.contains("No changes in the addresses selected by --target 'tenant/acme-corp/**'."), "\(typo)")
        #expect(typo.stdout.contains("Targeting is in effect (--target 'tenant/acme-corp/**'): 1 other change is left out of this plan."),
                "\(typo)")
        #expect(typo.stdout.contains("--target 'tenant/acme-corp/**' matches no address."), "\(typo)")
        #expect(typo.stderr.contains("warning: --target 'tenant/acme-corp/**' matches no address in the configuration or the state database"),
                "\(typo)")

        // A pattern that matches, but hides the change: no warning about the pattern, the count still shown.
        let hidden = try workspace.plan(config, state: state, ["--exclude", "tenant/acme"])
        #expect(hidden.stdout.contains("1 other change is left out"), "\(hidden)")
        #expect(!hidden.stderr.contains("matches no address"), "\(hidden)")

        // JSON: a targeting object.
        let json = try workspace.plan(config, state: state, ["--target", "tenant/acme-corp/**", "--format", "json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let targeting = try #require(document["targeting"] as? [String: Any], "\(json)")
        #expect(targeting["omittedChanges"] as? Int == 1)
        #expect(targeting["targets"] as? [String] == ["tenant/acme-corp/**"])
        #expect(targeting["unmatchedTargets"] as? [String] == ["tenant/acme-corp/**"])
        #expect(targeting["excludes"] as? [String] == [])
        // Not targeted: no targeting object at all.
        let full = try workspace.plan(config, state: state, ["--format", "json"])
        let fullDocument = try #require(try JSONSerialization.jsonObject(with: Data(full.stdout.utf8)) as? [String: Any])
        #expect(fullDocument["targeting"] == nil)

        // Markdown: the warning is in the comment itself, the pattern escaped.
        let markdown = try workspace.plan(config, state: state, ["--target", "tenant/acme-corp/**", "--format", "markdown"])
        #expect(markdown.stdout.contains("> **Warning:** Targeting is in effect (--target 'tenant/acme-corp/\\*\\*')"), "\(markdown)")
        #expect(!markdown.stdout.contains("matches the configuration"), "\(markdown)")

        // apply and drift say the same.
        let apply = try workspace.apply(config, state: state, ["--target", "tenant/acme-corp/**"])
        #expect(apply.status == 0 && apply.stdout.contains("1 other change is left out"), "\(apply)")
        #expect(!apply.stdout.contains("The state database matches the configuration"), "\(apply)")
        let drift = try workspace.run(["drift", config, "--state", state, "--target", "tenant/globex", "--no-color"])
        #expect(drift.status == 0 && drift.stdout.contains("Targeting is in effect (--target 'tenant/globex'): 1 other change"), "\(drift)")
        let driftJSON = try workspace.run(["drift", config, "--state", state, "--target", "tenant/globex", "--format", "json"])
        #expect(driftJSON.stdout.contains("\"omittedChanges\" : 1"), "\(driftJSON)")
        let driftMarkdown = try workspace.run(["drift", config, "--state", state, "--target", "tenant/globex", "--format", "markdown"])
        #expect(driftMarkdown.stdout.contains("> **Warning:** Targeting is in effect"), "\(driftMarkdown)")
    }

    @Test("a bad option value is a usage error before anything else: no plan, no key error, no database", arguments: [
        ["--max-deletes", "abc"], ["--max-deletes", "-1"], ["--lock-timeout", "1d"], ["--target", "tenant/acme/"],
        ["--checkpoint-key", "missing.key"],
    ])
    func optionValuesFirst(_ option: [String]) throws {
        let workspace = try Workspace(name: "notfooled")
        let config = try workspace.copyExamples()
        let state = workspace.path("state.db")
        // No state key: planning would fail on the secrets (exit 1) if the value were checked after the work.
        let run = try workspace.run(["apply", config, "--state", state, "--auto-approve"] + option, unset: ["ORGCTL_STATE_KEY"])
        #expect(run.status == 64, "\(run)")
        #expect(run.stdout.isEmpty, "\(run)")
        #expect(run.stderr.hasPrefix("error: invalid value '\(option[1])' for '\(option[0])") || run.stderr.hasPrefix("error: option '--checkpoint-key' requires"),
                "\(run)")
        #expect(!FileManager.default.fileExists(atPath: state))
    }

    @Test("plan --out gives an apply hint that carries --state (shell-quoted); a plan applied to the wrong database creates nothing")
    func applyHintAndStrayDatabase() throws {
        let (workspace, config, _) = try appliedExamples()
        let state = workspace.path("my state.db")
        #expect(try workspace.apply(config, state: state).status == 0)
        try workspace.edit("config/tenants/acme.yaml", replacing: "name: Acme Corporation", with: "name: Acme Corp.")
        let planFile = workspace.path("h.plan")
        let plan = try workspace.plan(config, state: state, ["--out", planFile])
        #expect(plan.status == 0, "\(plan)")
        let hint = "Apply it with: orgctl apply \(planFile) --state '\(state)'"
        #expect(plan.stderr.contains(hint), "\(plan)")

        // Applied without --state (the old hint): refused before ./orgctl.db is created.
        let wrong = try workspace.run(["apply", planFile, "--secrets-out", try workspace.newKeysFile()])
        #expect(wrong.status == 1, "\(wrong)")
        #expect(wrong.stderr.contains("'orgctl.db' does not exist; nothing was applied"), "\(wrong)")
        #expect(!FileManager.default.fileExists(atPath: workspace.path("orgctl.db")))
        // To another existing database: refused, and that database is not touched.
        let other = workspace.path("state.db")
        let before = try workspace.dump(other)
        let otherRun = try workspace.run(["apply", planFile, "--state", other])
        #expect(otherRun.status == 1 && otherRun.stderr.contains("but '\(other)' is database"), "\(otherRun)")
        #expect(try workspace.dump(other) == before)

        // The hint itself, run by a shell, applies the plan.
        let words = try #require(plan.stderr.lines.first { $0.contains("Apply it with: ") }?.components(separatedBy: "Apply it with: orgctl ").last)
        let followed = try workspace.run(["-c", "\"$ORGCTL\" \(words)"], executable: "/bin/sh", environment: ["ORGCTL": try Paths.orgctl()])
        #expect(followed.status == 0 && followed.stdout.contains("Apply complete: 0 added, 1 changed"), "\(followed)")
    }

    @Test("apply refuses an unusable --secrets-out, --checkpoint-out or plan --out before any work, and creates no database",
          arguments: [["apply", "--secrets-out", "/nonexistent/folder/k.txt"], ["apply", "--checkpoint-out", "/nonexistent/folder/c.txt"],
                      ["plan", "--out", "/nonexistent/folder/h.plan"], ["drift", "--metrics", "/nonexistent/folder/m.prom"]])
    func unusableOutputFolders(_ line: [String]) throws {
        let workspace = try Workspace(name: "notfooled")
        let config = try workspace.copyExamples()
        let state = workspace.path("new.db")
        let run = try workspace.run([line[0], config, "--state", state, "--auto-approve"].filter { line[0] == "apply" || $0 != "--auto-approve" }
                                    + line.dropFirst())
        #expect(run.status == 1, "\(run)")
        #expect(run.stdout.isEmpty, "\(run)")
        #expect(run.stderr.contains("error: the folder of --"), "\(run)")
        #expect(!FileManager.default.fileExists(atPath: state))
    }

    @Test("plan --out refuses an existing file before planning")
    func planOutExists() throws {
        let workspace = try Workspace(name: "notfooled")
        let config = try workspace.copyExamples()
        let planFile = workspace.path("h.plan")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: planFile))
        let run = try workspace.plan(config, state: workspace.path("new.db"), ["--out", planFile])
        #expect(run.status == 1 && run.stdout.isEmpty, "\(run)")
        #expect(run.stderr.contains("--out '\(planFile)' already exists"), "\(run)")
        #expect(try String(contentsOfFile: planFile, encoding: .utf8) == "keep me")
    }

    @Test("a delete limit refusal leaves a platform database un-adopted: nothing is written before the refusal")
    func refusalBeforeAdoption() throws {
        let (workspace, config, source) = try appliedExamples()
        let platform = workspace.path("platform.db")
        let schema = try workspace.sqlite(source, "SELECT sql || ';' FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'orgctl%';")
        var script = schema + "\nATTACH '\(source)' AS src;\n"
        for table in ["plans", "permissions", "events", "tenants", "roles", "role_permissions", "quotas", "security_policies", "members",
                      "teams", "team_members", "sso_settings", "sso_providers", "webhooks", "api_keys"] {
            script += "INSERT INTO main.\(table) SELECT * FROM src.\(table);\n"
        }
        try workspace.sqlite(platform, script + "DETACH src;\n")
        let before = try workspace.dump(platform)
        try workspace.edit("config/tenants/acme.yaml", replacing: "  grace@acme.com: billing-admin\n", with: "")
        try workspace.edit("config/tenants/acme.yaml", replacing: "      grace@acme.com: lead\n", with: "")
        let run = try workspace.apply(config, state: platform, ["--adopt", "--max-deletes", "0"])
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("more than the limit of 0; nothing was applied"), "\(run)")
        #expect(try workspace.dump(platform) == before, "the refused apply changed the database")
    }

    @Test("validate counts the files that hold errors, not the files read")
    func errorFilesCounted() throws {
        let workspace = try Workspace(name: "notfooled")
        let config = try workspace.copyExamples()
        try workspace.edit("config/tenants/acme.yaml", replacing: "plan: enterprise ", with: "plan: enterprize ")
        try workspace.edit("config/tenants/acme.yaml", replacing: "name: Acme Corporation", with: "nmae: Acme Corporation")
        let one = try workspace.run(["validate", config])
        #expect(one.status == 1, "\(one)")
        #expect(one.stdout.hasSuffix("in 1 of 5 files\n") && one.stdout.contains("invalid: 3 errors in 1 of 5 files"), "\(one)")
        try workspace.edit("config/tenants/globex.yaml", replacing: "plan: ", with: "plna: ")
        let two = try workspace.run(["validate", config])
        #expect(two.stdout.contains("in 2 of 5 files\n"), "\(two)")
    }

    @Test("read-only commands leave no -wal or -shm file beside the database, and do not change it")
    func readOnlyCommandsLeaveNoWALFiles() throws {
        let (workspace, config, state) = try appliedExamples()
        let sidecars = { ["-wal", "-shm"].filter { FileManager.default.fileExists(atPath: state + $0) } }
        #expect(sidecars() == [], "apply leaves them")
        let before = try Data(contentsOf: URL(fileURLWithPath: state))
        for line in [["plan", config], ["drift", config], ["export", workspace.path("exported")], ["audit", "verify"], ["audit", "log"],
                     ["audit", "checkpoint"], ["audit", "prove", "1"]] {
            let run = try workspace.run(line + ["--state", state])
            #expect(run.status == 0, "\(run)")
            #expect(sidecars() == [], "\(line) left \(sidecars())")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: state)) == before)
    }

    @Test("a database of an older schema with a broken audit chain is refused before it is migrated")
    func brokenChainRefusedBeforeMigration() throws {
        let (workspace, config, state) = try appliedExamples()
        _ = try workspace.sqlite(state, """
            DROP TABLE orgctl_merkle; ALTER TABLE orgctl_resources DROP COLUMN applied;
            DROP TABLE orgctl_outbox; DROP TABLE orgctl_outbox_attempts; DROP TABLE orgctl_webhook_endpoints; DROP TABLE orgctl_subjects; DROP TABLE orgctl_subject_values;  -- schema 6 adds them
            UPDATE orgctl_audit SET hash = zeroblob(32) WHERE seq = 5;
            DELETE FROM orgctl_meta WHERE key IN ('state_key_check', 'state_key_id');  -- schema 5 adds them
            PRAGMA user_version = 2; PRAGMA wal_checkpoint(TRUNCATE);
            """)
        let before = try workspace.dump(state)
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let run = try workspace.apply(config, state: state)
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("the audit chain is broken") && run.stderr.contains("applied nothing"), "\(run)")
        // Read through SQLite (the WAL included), not the file's bytes: a migration may sit in the WAL.
        #expect(try workspace.sqlite(state, "PRAGMA user_version;") == "2\n", "the refused apply migrated the database")
        #expect(try workspace.dump(state) == before)
    }

    @Test("drift words a row created outside orgctl as plan does, and marks its applied values unknown", arguments: Backend.all)
    func driftWording(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.sql(state, "INSERT INTO members (tenant_id, email, role) SELECT id, 'mallory@acme.com', 'owner' FROM tenants WHERE slug = 'acme';")
        let text = try workspace.run(["drift", config, "--state", state, "--no-color"])
        #expect(text.status == 3, "\(text)")
        #expect(text.stdout.contains("tenant/acme/member/mallory@acme.com (created outside orgctl)"), "\(text)")
        #expect(text.stdout.contains("Drift: 0 changed, 1 created, 0 deleted outside orgctl"), "\(text)")
        #expect(!text.stdout.contains("added outside"), "\(text)")
        #expect(!text.stdout.contains("were not recorded"), "\(text)")
        let plan = try workspace.plan(config, state: state)
        #expect(plan.stdout.contains("(created outside orgctl)"), "\(plan)")
        let json = try workspace.run(["drift", config, "--state", state, "--format", "json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let item = try #require((document["drift"] as? [[String: Any]])?.first)
        #expect(item["drift"] as? String == "added")
        #expect(item["appliedKnown"] as? Bool == false)
    }

    @Test("a drift with only pending changes does not tell the user to put back changes made outside orgctl", arguments: Backend.all)
    func pendingOnlyAdvice(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.edit("config/tenants/acme.yaml", replacing: "name: Acme Corporation", with: "name: Acme Corp.")
        let run = try workspace.run(["drift", config, "--state", state, "--no-color"])
        #expect(run.status == 2, "\(run)")
        #expect(run.stdout.contains("Run 'orgctl apply \(config)' to apply the configuration changes."), "\(run)")
        #expect(!run.stdout.contains("put back"), "\(run)")
    }
}
