import Foundation
import Testing

/// `orgctl drift`, `orgctl export` and adoption, with the real binary and changes made behind
/// orgctl's back with the sqlite3 or psql command-line tool, on both backends (adoption: SQLite only, see `adoption`).
@Suite("Drift, export and adoption")
struct DriftExportTests {
    static let secretValues = Array(Secrets.examples.values)

    /// The `{env: NAME}` names `orgctl export` writes for the examples' secrets, with the values the examples use.
    static let exportedSecrets: [String: String] = [
        "ACME_SLACK_WEBHOOK_SECRET": Secrets.examples["ACME_SLACK_WEBHOOK_SECRET"]!,
        "ACME_DEPLOY_LOG_WEBHOOK_SECRET": Secrets.examples["ACME_DEPLOY_LOG_WEBHOOK_SECRET"]!,
        "GLOBEX_GOOGLE_CLIENT_SECRET": Secrets.examples["GLOBEX_OIDC_CLIENT_SECRET"]!,
        "GLOBEX_OPS_EVENTS_WEBHOOK_SECRET": Secrets.examples["GLOBEX_WEBHOOK_SECRET"]!,
        "INITECH_TEAM_CHAT_WEBHOOK_SECRET": Secrets.examples["INITECH_WEBHOOK_SECRET"]!,
    ]

    func appliedExamples(_ backend: Backend) throws -> (Workspace, config: String, state: String) {
        try Workspace.appliedExamples(name: "drift", backend: backend)
    }

    func drift(_ workspace: Workspace, _ config: String, _ state: String, _ extra: [String] = []) throws -> Run {
        try workspace.run(["drift", config, "--state", state, "--no-color"] + extra)
    }

    /// Changes behind orgctl's back: a member's role, a team's name, a quota, a webhook URL, a member added
    /// and a team membership deleted.
    static let outsideChanges = """
        UPDATE members SET role = 'admin' WHERE email = 'frank@acme.com';
        UPDATE teams SET name = 'Money' WHERE slug = 'finance';
        UPDATE quotas SET value = 999 WHERE scope = 'tenant' AND name = 'seats' AND scope_id = (SELECT id FROM tenants WHERE slug = 'acme');
        UPDATE webhooks SET url = 'https://evil.example.net/collect' WHERE name = 'slack';
        INSERT INTO members (tenant_id, email, role) SELECT id, 'mallory@acme.com', 'owner' FROM tenants WHERE slug = 'acme';
        DELETE FROM team_members WHERE member_id = (SELECT id FROM members WHERE email = 'grace@acme.com');
        """

    @Test("drift reports exactly the fields changed outside orgctl (exit 3); apply restores them and audits the reversal; drift is then clean", arguments: Backend.all)
    func driftScenario(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        let clean = try drift(workspace, config, state)
        #expect(clean.status == 0, "\(clean)")
        #expect(clean.stdout.contains("Drift: 0 changed, 0 created, 0 deleted outside orgctl; 0 configuration changes not yet applied."), "\(clean)")

        try workspace.sql(state, Self.outsideChanges)
        let text = try drift(workspace, config, state)
        #expect(text.status == 3, "\(text)")
        let expected = """
            Changed outside orgctl since the last apply (field: as applied -> as stored now):

              ~ tenant/acme (changed outside orgctl; last applied in audit entry
            """
        #expect(text.stdout.hasPrefix(expected), "\(text)")
        for line in [
            "      quotas.seats : 500 -> 999",
            "  ~ tenant/acme/member/frank@acme.com (changed outside orgctl; last applied in audit entry",
            "      role : \"viewer\" -> \"admin\"",
            "  + tenant/acme/member/mallory@acme.com (created outside orgctl)",
            "      role = \"owner\"",
            "      name : \"Finance\" -> \"Money\"",
            "  - tenant/acme/team/finance/member/grace@acme.com (deleted outside orgctl; last applied in audit entry",
            "      role = \"lead\"",
            "      url : \"https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\" -> \"https://evil.example.net/collect\"",
            "No configuration changes waiting to be applied.",
            "Drift: 4 changed, 1 created, 1 deleted outside orgctl; 0 configuration changes not yet applied.",
        ] {
            #expect(text.stdout.contains(line), "missing '\(line)' in \(text)")
        }
        // Exactly those rows, and within them exactly those fields.
        let headers = text.stdout.lines.filter { $0.hasPrefix("  ~ ") || $0.hasPrefix("  + ") || $0.hasPrefix("  - ") }
        #expect(headers.count == 6, "\(headers)")
        let fields = text.stdout.lines.filter { $0.hasPrefix("      ") }
        #expect(fields.count == 6, "\(fields)")

        // JSON: versioned, the same rows, secrets never shown.
        let json = try drift(workspace, config, state, ["--format", "json", "--metrics", workspace.path("drift.prom")])
        #expect(json.status == 3, "\(json)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(document["formatVersion"] as? Int == 1)
        #expect(document["status"] as? String == "drift")
        let summary = try #require(document["summary"] as? [String: Int])
        #expect(summary == ["changed": 4, "added": 1, "deleted": 1, "pending": 0])
        let items = try #require(document["drift"] as? [[String: Any]])
        let member = try #require(items.first { $0["address"] as? String == "tenant/acme/member/frank@acme.com" })
        let memberFields = try #require(member["fields"] as? [[String: Any]])
        #expect(memberFields.count == 1 && memberFields[0]["applied"] as? String == "viewer" && memberFields[0]["now"] as? String == "admin")

        // Metrics for a textfile collector.
        let metrics = try String(contentsOfFile: workspace.path("drift.prom"), encoding: .utf8)
        #expect(metrics.contains("orgctl_drift_resources{kind=\"member\",drift=\"changed\"} 1\n"))
        #expect(metrics.contains("orgctl_drift_resources{kind=\"member\",drift=\"added\"} 1\n"))
        #expect(metrics.contains("orgctl_drift_resources{kind=\"team-member\",drift=\"deleted\"} 1\n"))
        #expect(metrics.contains("orgctl_drift_resources{kind=\"webhook\",drift=\"changed\"} 1\n"))
        #expect(metrics.contains("orgctl_drift_resources{kind=\"tenant\",drift=\"changed\"} 1\n"))
        #expect(metrics.contains("orgctl_drift_status 3\n"))
        // ORGCTL_NOW = 2026-11-22T12:00:00Z in the workspace.
        #expect(metrics.contains("orgctl_drift_last_run_timestamp_seconds 1795348800\n"))

        // Apply restores every field; the audit chain records each reversal as such.
        let before = try workspace.auditCount(state)
        let restore = try workspace.apply(config, state: state)
        #expect(restore.status == 0 && restore.stdout.contains("Apply complete: 1 added, 4 changed, 1 destroyed."), "\(restore)")
        let log = try workspace.run(["audit", "log", "--state", state, "--since", "2000-01-01T00:00:00Z"])
        let reversal = log.stdout.lines.filter { Int($0.prefix { $0 != " " }) ?? 0 > before }
        #expect(reversal.count == 6, "\(log)")
        #expect(reversal.contains { $0.contains("update  tenant/acme/member/frank@acme.com") && $0.hasSuffix("(changed outside orgctl)") }, "\(log)")
        #expect(reversal.contains { $0.contains("create  tenant/acme/team/finance/member/grace@acme.com") && $0.hasSuffix("(deleted outside orgctl)") }, "\(log)")
        #expect(reversal.contains { $0.contains("delete  tenant/acme/member/mallory@acme.com") && $0.hasSuffix("(created outside orgctl)") }, "\(log)")
        #expect(try workspace.sql(state, "SELECT role FROM members WHERE email = 'frank@acme.com';") == "viewer\n")
        #expect(try workspace.sql(state, "SELECT name FROM teams WHERE slug = 'finance';") == "Finance\n")

        let after = try drift(workspace, config, state, ["--metrics", workspace.path("drift.prom")])
        #expect(after.status == 0, "\(after)")
        #expect(try String(contentsOfFile: workspace.path("drift.prom"), encoding: .utf8).contains("orgctl_drift_status 0\n"))
        #expect(try workspace.run(["audit", "verify", "--state", state]).status == 0)
        workspace.assertNoSecretLeaks(Self.secretValues)
    }

    @Test("a configuration change not yet applied is reported apart from drift, with exit 2; both together exit 3", arguments: Backend.all)
    func pendingChanges(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.edit("config/tenants/acme.yaml", replacing: "frank@acme.com: viewer", with: "frank@acme.com: {role: member}")
        let pending = try drift(workspace, config, state)
        #expect(pending.status == 2, "\(pending)")
        #expect(pending.stdout.contains("No changes outside orgctl"), "\(pending)")
        #expect(pending.stdout.contains("Configuration changes not yet applied:\n\n  ~ tenant/acme/member/frank@acme.com\n      role : \"viewer\" -> \"member\"\n"), "\(pending)")

        // Drift on the same row: the drift shows as applied -> now; the pending change as applied -> configuration.
        try workspace.sql(state, "UPDATE members SET role = 'admin' WHERE email = 'frank@acme.com';")
        let both = try drift(workspace, config, state)
        #expect(both.status == 3, "\(both)")
        #expect(both.stdout.contains("      role : \"viewer\" -> \"admin\"\n"), "\(both)")
        #expect(both.stdout.contains("      role : \"viewer\" -> \"member\"\n"), "\(both)")
        #expect(both.stdout.contains("Drift: 1 changed, 0 created, 0 deleted outside orgctl; 1 configuration change not yet applied."), "\(both)")

        // A drifted row the configuration puts back as it was applied is drift only.
        try workspace.edit("config/tenants/acme.yaml", replacing: "frank@acme.com: {role: member}", with: "frank@acme.com: viewer")
        let driftOnly = try drift(workspace, config, state, ["--format", "markdown"])
        #expect(driftOnly.status == 3, "\(driftOnly)")
        #expect(driftOnly.stdout.contains("**Drift: 1 changed, 0 created, 0 deleted outside orgctl; 0 configuration changes not yet applied.**"), "\(driftOnly)")

        let bad = try drift(workspace, workspace.path("missing"), state)
        #expect(bad.status == 1, "\(bad)")
    }

    @Test("export of the applied examples plans as no changes, and never overwrites without --force", arguments: Backend.all)
    func exportRoundTripExamples(_ backend: Backend) throws {
        let (workspace, _, state) = try appliedExamples(backend)
        let out = workspace.path("exported")
        let export = try workspace.run(["export", "--state", state, out])
        #expect(export.status == 0 && export.stdout == "Exported 103 resources (4 tenants) to \(out).\n", "\(export)")
        for variable in Self.exportedSecrets.keys { #expect(export.stderr.contains(variable), "\(export)") }
        let acme = try String(contentsOfFile: out + "/tenants/acme.yaml", encoding: .utf8)
        #expect(acme.contains("secret: {env: ACME_SLACK_WEBHOOK_SECRET}  # fill in:"), "\(acme)")

        // Every resource as applied; only the policies, of which the state holds digests, are not exported.
        let plan = try workspace.plan(out, state: state, ["--detailed-exitcode"], environment: Self.exportedSecrets)
        #expect(plan.status == 2 && plan.stdout.hasSuffix("  # the configuration declares none\n\nPlan: 0 to add, 0 to change, 0 to destroy, policies to remove.\n"),
                "\(plan)")
        #expect(plan.stdout.split(separator: "\n").filter { $0.hasPrefix("  ") }.count == 1, "\(plan)")
        let drift = try drift(workspace, out, state, [])
        // drift needs the secrets too; without them it is an error naming the variable.
        #expect(drift.status == 1 && drift.stderr.contains("is not set"), "\(drift)")

        let again = try workspace.run(["export", "--state", state, out])
        #expect(again.status == 1 && again.stderr.contains("nothing was written") && again.stderr.contains("--force"), "\(again)")
        try "changed".write(toFile: out + "/platform.yaml", atomically: true, encoding: .utf8)
        let forced = try workspace.run(["export", "--state", state, out, "--force"])
        #expect(forced.status == 0, "\(forced)")
        #expect(try String(contentsOfFile: out + "/platform.yaml", encoding: .utf8).hasPrefix("# Exported by 'orgctl export'"))
        workspace.assertNoSecretLeaks(Self.secretValues)
    }

    @Test("export of 1,000 generated tenants plans as no changes", arguments: Backend.all)
    func exportRoundTripGenerated(_ backend: Backend) throws {
        let workspace = try Workspace(secrets: [:], name: "export-gen", backend: backend)
        let generator = try #require(Self.generator, "tools/gen_config.py not found: set ORGCTL_SHARED to the folder that holds tools/gen_config.py")
        let config = workspace.path("gen")
        let generated = try workspace.run([generator, config, "1000"], executable: Paths.python3)
        try #require(generated.status == 0, "\(generated)")
        let state = workspace.state
        let applied = try workspace.apply(config, state: state, ["-q"])
        try #require(applied.status == 0, "\(applied)")
        let out = workspace.path("exported")
        let export = try workspace.run(["export", "--state", state, out])
        #expect(export.status == 0 && export.stdout.contains("(1000 tenants)"), "\(export)")
        let plan = try workspace.plan(out, state: state, ["--detailed-exitcode", "-q"])
        #expect(plan.status == 0 && plan.stdout == "No changes. The state database matches the configuration.\n", "\(plan.status) \(plan.stdout.prefix(2000))")
    }

    static let generator: String? = {
        var candidates: [String] = []
        if let shared = ProcessInfo.processInfo.environment["ORGCTL_SHARED"] { candidates.append(shared + "/tools/gen_config.py") }
        candidates.append(Paths.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/tools/gen_config.py").path)
        candidates.append("/work/shared/tools/gen_config.py")
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }()

    /// SQLite only: adopting a platform database works on SQLite files only; the PostgreSQL store refuses `--adopt`
    /// (``adoptionRefusedOnPostgres()``), and the way there is adopting the SQLite file, then `state migrate`.
    @Test("a platform database orgctl did not create: export, review, apply --adopt records it without changing a row")
    func adoption() throws {
        // Build a platform database with the sqlite3 tool only: the examples applied, then copied table by table
        // into a file with no orgctl tables, no application id and no schema version.
        let (workspace, _, source) = try appliedExamples(.sqlite)
        let platform = workspace.path("platform.db")
        let schema = try workspace.sqlite(source, "SELECT sql || ';' FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'orgctl%';")
        let tables = ["plans", "permissions", "events", "tenants", "roles", "role_permissions", "quotas", "security_policies", "members",
                      "teams", "team_members", "sso_settings", "sso_providers", "webhooks", "api_keys"]
        var script = schema
        script += "\nATTACH '\(source)' AS src;\n"
        for table in tables { script += "INSERT INTO main.\(table) SELECT * FROM src.\(table);\n" }
        script += "DETACH src;\n"
        try workspace.sqlite(platform, script)
        #expect(try workspace.sqlite(platform, "PRAGMA application_id; PRAGMA user_version;") == "0\n0\n")
        let rowsBefore = try workspace.dump(platform)

        // Not an orgctl database: apply refuses it without --adopt, and says how to adopt it.
        let refused = try workspace.apply(workspace.path("config"), state: platform)
        #expect(refused.status == 1 && refused.stderr.contains("--adopt"), "\(refused)")
        #expect(try workspace.dump(platform) == rowsBefore)

        // Export and review (plan of the export: every row to adopt, nothing else).
        let out = workspace.path("adopted")
        let export = try workspace.run(["export", "--state", platform, out])
        #expect(export.status == 0 && export.stderr.contains("--adopt"), "\(export)")
        let plan = try workspace.plan(out, state: platform, ["--detailed-exitcode"], environment: Self.exportedSecrets)
        #expect(plan.status == 2 && plan.stdout.contains("Plan: 0 to add, 0 to change, 0 to destroy, 103 to adopt."), "\(plan)")
        #expect(try workspace.dump(platform) == rowsBefore, "plan changed the database")

        let adopt = try workspace.apply(out, state: platform, ["--adopt"], environment: Self.exportedSecrets)
        #expect(adopt.status == 0 && adopt.stdout.contains("Apply complete: 0 added, 0 changed, 0 destroyed, 103 adopted. Audit entries 1–103."), "\(adopt)")
        for table in tables {
            #expect(try workspace.sqlite(platform, "SELECT * FROM \(table);") == workspace.sqlite(source, "SELECT * FROM \(table);"),
                    "adoption changed rows of \(table)")
        }
        let log = try workspace.run(["audit", "log", "--state", platform, "--since", "2000-01-01T00:00:00Z"])
        #expect(log.stdout.lines.filter { !$0.isEmpty }.allSatisfy { $0.contains("  adopt   ") }, "\(log)")
        #expect(try workspace.pythonVerify(platform).status == 0)

        // Adopted: plan and drift are clean, and drift now sees changes made outside orgctl.
        #expect(try workspace.plan(out, state: platform, ["--detailed-exitcode"], environment: Self.exportedSecrets).status == 0)
        try workspace.sqlite(platform, "UPDATE members SET role = 'admin' WHERE email = 'frank@acme.com';")
        let drift = try workspace.run(["drift", out, "--state", platform, "--no-color"], environment: Self.exportedSecrets)
        #expect(drift.status == 3 && drift.stdout.contains("role : \"viewer\" -> \"admin\""), "\(drift)")
        workspace.assertNoSecretLeaks(Self.secretValues)
    }

    /// SQLite only: about a file.
    @Test("a SQLite file with other tables is still refused, not adopted")
    func foreignDatabaseIsRefused() throws {
        let workspace = try Workspace(name: "foreign")
        let config = try workspace.copyExamples()
        let foreign = workspace.path("other.db")
        try workspace.sqlite(foreign, "CREATE TABLE tenants (id INTEGER PRIMARY KEY, slug TEXT); INSERT INTO tenants VALUES (1, 'x');")
        let before = try workspace.dump(foreign)
        for extra in [[], ["--adopt"]] {
            let run = try workspace.apply(config, state: foreign, extra)
            #expect(run.status == 1 && run.stderr.contains("not an orgctl state database"), "\(run)")
        }
        #expect(try workspace.dump(foreign) == before)
    }

    @Test("apply --adopt on PostgreSQL is refused with the way to adopt, whether or not the schema exists; nothing is written",
          .enabled(if: Backend.all.contains(.postgres)))
    func adoptionRefusedOnPostgres() throws {
        let workspace = try Workspace(name: "adopt-pg", backend: .postgres)
        let config = try workspace.copyExamples()
        let state = workspace.state
        let missing = try workspace.apply(config, state: state, ["--adopt"])
        #expect(missing.status == 1 && missing.stderr.contains("adopting a platform database works on SQLite files only"), "\(missing)")
        #expect(missing.stderr.contains("state migrate"), "the refusal says how to get there: \(missing)")
        #expect(try workspace.sql(state, "SELECT count(*) FROM pg_namespace WHERE nspname = '\(workspace.postgres?.name ?? "")';") == "0\n",
                "a refused --adopt created the schema")

        #expect(try workspace.apply(config, state: state).status == 0)
        // A change to write (with nothing to apply, --adopt exits 0 with "No changes." on either backend).
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let before = try workspace.dump(state)
        let existing = try workspace.apply(config, state: state, ["--adopt"])
        #expect(existing.status == 1 && existing.stderr.contains("adopting a platform database works on SQLite files only"), "\(existing)")
        #expect(try workspace.dump(state) == before)
        workspace.assertNoSecretLeaks(Self.secretValues)
    }
}
