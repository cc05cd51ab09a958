import Foundation
import Testing

/// The workflows a user relies on, run with the real binary against `examples/` and a real state: a SQLite file, and
/// a PostgreSQL schema (`Backend.all`).
///
/// Every scenario ends by searching every output, saved plan and database file of its workspace for the
/// secret values it used: a secret must never appear in plaintext.
@Suite("Scenarios")
struct ScenarioTests {
    static let secretValues = Array(Secrets.examples.values)

    /// A workspace with the examples copied to `config/` and applied to its state.
    func appliedExamples(_ backend: Backend, sourceLocation: SourceLocation = #_sourceLocation) throws -> (Workspace, config: String, state: String) {
        try Workspace.appliedExamples(name: "scenario", backend: backend, sourceLocation: sourceLocation)
    }

    @Test("examples apply into an empty database, and a second apply writes nothing", arguments: Backend.all)
    func examplesApplyAndAreIdempotent(_ backend: Backend) throws {
        let workspace = try Workspace(backend: backend)
        let config = try workspace.copyExamples()
        let state = workspace.state
        #expect(!FileManager.default.fileExists(atPath: workspace.path("state.db")))

        let first = try workspace.apply(config, state: state)
        #expect(first.status == 0, "\(first)")
        let resources = try workspace.sql(state, "SELECT count(*) FROM orgctl_resources;").trimmingCharacters(in: .whitespacesAndNewlines)
        // One entry per resource, then one recording the examples' policies.
        let entries = (Int(resources) ?? 0) + 1
        #expect(first.stdout.contains("Apply complete: \(resources) added, 0 changed, 0 destroyed, policies recorded. Audit entries 1–\(entries)."), "\(first)")
        #expect(try workspace.auditCount(state) == entries)

        let plan = try workspace.plan(config, state: state, ["--detailed-exitcode"])
        #expect(plan.status == 0, "\(plan)")
        #expect(plan.stdout == "No changes. The state database matches the configuration.\n")

        let dumpBefore = try workspace.dump(state)
        let second = try workspace.apply(config, state: state)
        #expect(second.status == 0, "\(second)")
        #expect(second.stdout.contains("No changes."), "\(second)")
        #expect(try workspace.dump(state) == dumpBefore, "a second apply of the same configuration changed the database")
        #expect(try workspace.auditCount(state) == entries)

        let verify = try workspace.run(["audit", "verify", "--state", state])
        #expect(verify.status == 0 && verify.stdout.hasPrefix("ok: \(entries) entries, head "), "\(verify)")
        let python = try workspace.pythonVerify(state)
        #expect(python.status == 0 && python.stdout == verify.stdout, "the Python verifier disagrees: \(python)")
        workspace.assertNoSecretLeaks(Self.secretValues)
    }

    @Test("one field of each kind changed: the exact plan, then apply, then no changes", arguments: Backend.all)
    func changeOneFieldOfEachKind(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.edit("config/platform.yaml", replacing: "rateLimit: 100/h", with: "rateLimit: 150/h")
        try workspace.edit("config/platform.yaml", replacing: "users.remove:     {category: users}",
                           with: "users.remove:     {category: users, description: Remove members}")
        try workspace.edit("config/platform.yaml", replacing: "  - app.created\n", with: "  - app.created\n  - app.deleted\n")
        try workspace.edit("config/platform.yaml", replacing: #"viewer: {permissions: ["*.read"]}"#,
                           with: #"viewer: {permissions: ["*.read", audit.read]}"#)
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli")
        try workspace.edit("config/tenants/acme.yaml", replacing: "description: Ships app releases but cannot manage people",
                           with: "description: Ships app releases")
        try workspace.edit("config/tenants/acme.yaml", replacing: "frank@acme.com: viewer", with: "frank@acme.com: member")
        try workspace.edit("config/tenants/acme.yaml", replacing: "name: Finance\n", with: "name: Finance and Billing\n")
        try workspace.edit("config/tenants/acme.yaml", replacing: "      frank@acme.com: member\n", with: "      frank@acme.com: lead\n")
        try workspace.edit("config/tenants/acme.yaml", replacing: "app/acme_orgctl_1/", with: "app/acme_orgctl_2/")
        try workspace.edit("config/tenants/globex.yaml", replacing: "clientId: 482917365021-", with: "clientId: 999917365021-")
        try workspace.edit("config/tenants/globex.yaml", replacing: "rateLimit: 1000/h", with: "rateLimit: 2000/h")
        try workspace.edit("config/tenants/initech.yaml", replacing: "maxRetries: 2", with: "maxRetries: 4")
        let rotated = ["ACME_SLACK_WEBHOOK_SECRET": "e2e-leakcheck-acme-slack-ROTATED-3kPq"]

        let expected = """
            orgctl will perform these actions:

              + event/app.deleted
              ~ permission/users.remove
                  description : (none) -> "Remove members"
              ~ plan/free
                  rateLimit : "100/h" -> "150/h"
              ~ role/viewer
                  permissions : ["*.read"] -> ["*.read", "audit.read"]
              ~ tenant/acme/member/frank@acme.com
                  role : "viewer" -> "member"
              ~ tenant/acme/role/release-manager
                  description : "Ships app releases but cannot manage people" -> "Ships app releases"
              ~ tenant/acme/sso/okta
                  ssoUrl : "https://acme.okta.com/app/acme_orgctl_1/exk1acme0rgct1demo7/sso/saml" -> "https://acme.okta.com/app/acme_orgctl_2/exk1acme0rgct1demo7/sso/saml"
              ~ tenant/acme/team/finance
                  name : "Finance" -> "Finance and Billing"
              ~ tenant/acme/team/finance/member/frank@acme.com
                  role : "member" -> "lead"
              ~ tenant/acme/webhook/slack
                  secret : (sensitive) -> (changed)
              ~ tenant/globex/apikey/directory-sync
                  rateLimit : "1000/h" -> "2000/h"
              ~ tenant/globex/sso/google
                  clientId : "482917365021-q8k2f1s0b7m4n6p3r5t9v2x4z6c8e0g1.apps.googleusercontent.com" -> "999917365021-q8k2f1s0b7m4n6p3r5t9v2x4z6c8e0g1.apps.googleusercontent.com"
              ~ tenant/hooli
                  name : "Hooli XYZ" -> "Hooli"
              ~ tenant/initech/webhook/team-chat
                  maxRetries : 2 -> 4

            Plan: 1 to add, 13 to change, 0 to destroy.

            Policy checks: 6 passed, 0 failed (maxRemoval, ssoRequired, mfaRequired, apiKeys, webhookDomains, protectedResources).

            """
        let plan = try workspace.plan(config, state: state, ["--detailed-exitcode"], environment: rotated)
        #expect(plan.status == 2, "\(plan)")
        #expect(plan.stdout == expected, "plan differs:\n\(GoldenPlanTests.firstDifference(expected, plan.stdout))")

        let entriesBefore = try workspace.auditCount(state)
        let applied = try workspace.apply(config, state: state, environment: rotated)
        #expect(applied.status == 0, "\(applied)")
        #expect(applied.stdout.contains("Apply complete: 1 added, 13 changed, 0 destroyed. Audit entries \(entriesBefore + 1)–\(entriesBefore + 14)."),
                "\(applied)")
        #expect(try workspace.auditCount(state) == entriesBefore + 14)

        let again = try workspace.plan(config, state: state, ["--detailed-exitcode"], environment: rotated)
        #expect(again.status == 0 && again.stdout.hasPrefix("No changes."), "\(again)")
        // The old secret value no longer matches: planning with it shows the rotation back.
        let back = try workspace.plan(config, state: state, ["--detailed-exitcode"])
        #expect(back.status == 2 && back.stdout.contains("      secret : (sensitive) -> (changed)"), "\(back)")

        let verify = try workspace.run(["audit", "verify", "--state", state])
        #expect(verify.status == 0 && verify.stdout.hasPrefix("ok: \(entriesBefore + 14) entries"), "\(verify)")
        let python = try workspace.pythonVerify(state)
        #expect(python.status == 0 && python.stdout == verify.stdout, "\(python)")

        // The audit log records who and where from, and never the secret.
        let log = try workspace.run(["audit", "log", "--state", state, "--address", "tenant/acme/webhook/slack"])
        #expect(log.status == 0, "\(log)")
        let lines = log.stdout.lines.filter { !$0.isEmpty }
        #expect(lines.count == 2, "\(log)")
        #expect(lines.last?.contains("update  tenant/acme/webhook/slack  by e2e  from test") == true, "\(log)")
        workspace.assertNoSecretLeaks(Self.secretValues + Array(rotated.values))
    }

    @Test("rows changed with sqlite3 show up as (changed outside orgctl), and apply restores them", arguments: Backend.all)
    func outsideChangesShowUpInPlan(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.sql(state, """
            UPDATE members SET role = 'owner' WHERE email = 'frank@acme.com';
            UPDATE webhooks SET url = 'https://attacker.example/collect' WHERE name = 'ops-events';
            """)
        let plan = try workspace.plan(config, state: state, ["--detailed-exitcode"])
        #expect(plan.status == 2, "\(plan)")
        let expected = """
            orgctl will perform these actions:

              ~ tenant/acme/member/frank@acme.com (changed outside orgctl)
                  role : "owner" -> "viewer"
              ~ tenant/globex/webhook/ops-events (changed outside orgctl)
                  url : "https://attacker.example/collect" -> "https://events.globex.com/orgctl/ingest"

            Plan: 0 to add, 2 to change, 0 to destroy.

            Policy checks: 6 passed, 0 failed (maxRemoval, ssoRequired, mfaRequired, apiKeys, webhookDomains, protectedResources).

            """
        #expect(plan.stdout == expected, "plan differs:\n\(GoldenPlanTests.firstDifference(expected, plan.stdout))")

        let applied = try workspace.apply(config, state: state)
        #expect(applied.status == 0, "\(applied)")
        #expect(try workspace.sql(state, "SELECT role FROM members WHERE email = 'frank@acme.com';") == "viewer\n")
        let again = try workspace.plan(config, state: state, ["--detailed-exitcode"])
        #expect(again.status == 0, "\(again)")
        workspace.assertNoSecretLeaks(Self.secretValues)
    }

    /// SQLite only: PostgreSQL states start at the current schema (there is no older PostgreSQL schema to read).
    @Test("after an upgrade, plan, drift and an unconfirmed apply read a database of an older schema without touching it; apply migrates it")
    func olderSchemaIsReadAsMigrated() throws {
        let (workspace, config, state) = try appliedExamples(.sqlite)
        // Make it what schema 2 looked like: no Merkle tree (step 3), no applied values (step 4), no
        // state key check value (step 5). Its row digests stay keyed (schema 2's were plain SHA-256, which
        // only orgctl's own code computes: see KeyedDigestTests), so keying them again on reading shows
        // every row as changed outside orgctl (drift exits 3) while the plan's changes are the same.
        _ = try workspace.sqlite(state, """
            DROP TABLE orgctl_merkle; ALTER TABLE orgctl_resources DROP COLUMN applied;
            DROP TABLE orgctl_outbox; DROP TABLE orgctl_outbox_attempts; DROP TABLE orgctl_webhook_endpoints;
            DROP TABLE orgctl_subjects; DROP TABLE orgctl_subject_values;
            DELETE FROM orgctl_meta WHERE key IN ('state_key_check', 'state_key_id');
            PRAGMA user_version = 2; PRAGMA wal_checkpoint(TRUNCATE);
            """)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: state))
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")

        let plan = try workspace.plan(config, state: state, ["--detailed-exitcode"])
        #expect(plan.status == 2, "\(plan)")
        #expect(plan.stdout.contains("~ tenant/hooli") && plan.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "\(plan)")
        let drift = try workspace.run(["drift", config, "--state", state])
        #expect(drift.status == 3, "\(drift)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: state)) == bytes, "a read-only command changed the database")
        #expect(try workspace.sqlite(state, "PRAGMA user_version;") == "2\n")
        // An apply that is not confirmed (no terminal, no --auto-approve) does not migrate it either.
        let unconfirmed = try workspace.run(["apply", config, "--state", state, "--no-color"])
        #expect(unconfirmed.status == 1 && unconfirmed.stderr.contains("standard input is not a terminal"), "\(unconfirmed)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: state)) == bytes, "an unconfirmed apply changed the database")

        let applied = try workspace.apply(config, state: state)
        #expect(applied.status == 0, "\(applied)")
        #expect(try workspace.sqlite(state, "PRAGMA user_version;") == "9\n")
        let verify = try workspace.run(["audit", "verify", "--state", state])
        #expect(verify.status == 0, "\(verify)")
        workspace.assertNoSecretLeaks(Self.secretValues)
    }

    @Test("a saved plan goes stale after an outside change: refused, naming the address, nothing written", arguments: Backend.all)
    func savedPlanGoesStale(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let saved = workspace.path("hooli.plan")
        let plan = try workspace.plan(config, state: state, ["--out", saved])
        #expect(plan.status == 0, "\(plan)")
        #expect(try workspace.mode(saved) == 0o600, "the saved plan must be readable only by its owner")

        try workspace.sql(state, "UPDATE tenants SET status = 'active' WHERE slug = 'hooli';")
        let before = try workspace.dump(state)
        let applied = try workspace.run(["apply", saved, "--state", state, "--no-color"])
        #expect(applied.status == 1, "\(applied)")
        #expect(applied.stderr.contains("the plan is stale") && applied.stderr.contains("  tenant/hooli\n"), "\(applied)")
        #expect(applied.stderr.contains("nothing was applied"), "\(applied)")
        #expect(try workspace.dump(state) == before, "a refused saved plan changed the database")

        // A fresh plan of the same change applies.
        let fresh = workspace.path("fresh.plan")
        #expect(try workspace.plan(config, state: state, ["--out", fresh]).status == 0)
        let ok = try workspace.run(["apply", fresh, "--state", state, "--no-color"])
        #expect(ok.status == 0 && ok.stdout.contains("Apply complete: 0 added, 1 changed, 0 destroyed."), "\(ok)")
        #expect(try workspace.sql(state, "SELECT name, status FROM tenants WHERE slug = 'hooli';") == "Hooli Inc|suspended\n")
        workspace.assertNoSecretLeaks(Self.secretValues)
    }

    @Test("a plan that deletes more than --max-deletes is refused, with counts by kind", arguments: Backend.all)
    func maxDeletesRefusal(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try FileManager.default.removeItem(atPath: workspace.path("config/tenants/acme.yaml"))
        try FileManager.default.removeItem(atPath: workspace.path("config/tenants/hooli.yaml"))

        // Expected counts, from the plan itself, in the documented kind order.
        let json = try workspace.plan(config, state: state, ["--format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let deletes = (object["changes"] as? [[String: Any]] ?? []).filter { $0["action"] as? String == "delete" }
        let order = ["plan", "permission", "event", "role", "tenant", "tenant-role", "member", "team", "team-member", "sso-provider", "webhook",
                     "api-key"]
        let byKind = order.compactMap { kind -> String? in
            let n = deletes.count { $0["kind"] as? String == kind }
            return n == 0 ? nil : "\(n) \(kind)"
        }.joined(separator: ", ")
        #expect(deletes.count > 25)

        let before = try workspace.dump(state)
        // Both tenants' deletions are confirmed: this is about the count limit (the tenant guard is in CommandsTests),
        // and so is the examples' maxRemoval policy (at most one tenant a plan; GovernanceTests covers it).
        let confirmed = ["--allow-delete-tenant", "acme", "--allow-delete-tenant", "hooli", "--override", "maxRemoval", "--reason", "test"]
        let refused = try workspace.apply(config, state: state, ["--max-deletes", "5"] + confirmed)
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("the plan deletes \(deletes.count) resources (\(byKind)), more than the limit of 5; nothing was applied"),
                "\(refused)")
        #expect(refused.stderr.contains("--max-deletes \(deletes.count)"), "\(refused)")
        // The default limit (25 for a database this small) refuses too.
        let byDefault = try workspace.apply(config, state: state, confirmed)
        #expect(byDefault.status == 1 && byDefault.stderr.contains("more than the limit of 25"), "\(byDefault)")
        #expect(try workspace.dump(state) == before, "a refused apply changed the database")

        let allowed = try workspace.apply(config, state: state, ["--max-deletes", "\(deletes.count)"] + confirmed)
        #expect(allowed.status == 0 && allowed.stdout.contains("0 added, 0 changed, \(deletes.count) destroyed."), "\(allowed)")
        #expect(try workspace.sql(state, "SELECT slug FROM tenants ORDER BY slug;") == "globex\ninitech\n")
        #expect(try workspace.sql(state, "SELECT count(*) FROM members m JOIN tenants t ON t.id = m.tenant_id WHERE t.slug IN ('acme', 'hooli');")
                == "0\n")
        workspace.assertNoSecretLeaks(Self.secretValues)
    }

    @Test("apply without --auto-approve refuses when standard input is not a terminal", arguments: Backend.all, [nil, "yes\n"])
    func applyNeedsApproval(_ backend: Backend, stdin: String?) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let before = try workspace.dump(state)
        let run = try workspace.run(["apply", config, "--state", state, "--source", "test", "--no-color"], stdin: stdin)
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("standard input is not a terminal") && run.stderr.contains("--auto-approve"), "\(run)")
        #expect(try workspace.dump(state) == before)
    }

    @Test("a missing secret variable fails before any write, naming the variable and no value", arguments: Backend.all)
    func missingSecretVariable(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let before = try workspace.dump(state)
        for command in ["plan", "apply"] {
            var arguments = [command, config, "--state", state, "--source", "test", "--no-color"]
            if command == "apply" { arguments.append("--auto-approve") }
            let run = try workspace.run(arguments, unset: ["GLOBEX_WEBHOOK_SECRET"])
            #expect(run.status == 1, "\(run)")
            #expect(run.stderr.contains("GLOBEX_WEBHOOK_SECRET"), "\(run)")
        }
        #expect(try workspace.dump(state) == before)

        // Into a new database: the file (the schema) is not even created.
        let fresh = workspace.otherState("fresh.db")
        let run = try workspace.apply(config, state: fresh.state, fresh.extra, unset: ["INITECH_WEBHOOK_SECRET"])
        #expect(run.status == 1 && run.stderr.contains("INITECH_WEBHOOK_SECRET"), "\(run)")
        #expect(try !workspace.stateExists(fresh), "a failed apply created the state database")
        workspace.assertNoSecretLeaks(Self.secretValues)
    }

    @Test("an invalid configuration: plan and apply exit 1 with a positioned error, the database is unchanged", arguments: Backend.all)
    func invalidConfiguration(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc\nmaintainer: gavin")
        try workspace.edit("config/tenants/globex.yaml", replacing: "plan: business", with: "plan: platinum")
        let before = try workspace.dump(state)
        for command in ["plan", "apply"] {
            var arguments = [command, config, "--state", state, "--source", "test", "--no-color"]
            if command == "apply" { arguments.append("--auto-approve") }
            let run = try workspace.run(arguments)
            #expect(run.status == 1, "\(run)")
            #expect(run.stdout.isEmpty, "nothing is planned for an invalid configuration: \(run)")
            #expect(run.stderr.contains("config/tenants/hooli.yaml:") && run.stderr.contains("error: unknown key 'maintainer'"), "\(run)")
            #expect(run.stderr.contains("config/tenants/globex.yaml:") && run.stderr.contains("'platinum'"), "\(run)")
            #expect(run.stderr.contains("the configuration is invalid: 2 errors"), "\(run)")
        }
        #expect(try workspace.dump(state) == before)
    }

    @Test("audit verify detects an edited entry, and apply then refuses to append", arguments: Backend.all)
    func editedAuditEntry(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.sql(state, Workspace.editAuditEntry(backend, seq: 3))
        let verify = try workspace.run(["audit", "verify", "--state", state])
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout == "broken at entry 3: hash does not match the entry\n", "\(verify)")
        let python = try workspace.pythonVerify(state)
        #expect(python.status == 1 && python.stdout == verify.stdout, "\(python)")

        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let before = try workspace.dump(state)
        let applied = try workspace.apply(config, state: state)
        #expect(applied.status == 1, "\(applied)")
        #expect(applied.stderr.contains("the audit chain is broken (broken at entry 3"), "\(applied)")
        #expect(try workspace.dump(state) == before, "apply wrote to a database with a broken chain")
    }

    @Test("the state database and a saved plan are created with mode 0600", arguments: Backend.all)
    func fileModes(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        if backend == .sqlite {
            #expect(try workspace.mode(state) == 0o600)
            for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: state + suffix) {
                #expect(try workspace.mode(state + suffix) == 0o600, "\(state + suffix)")
            }
        }
        let saved = workspace.path("out.plan")
        #expect(try workspace.plan(config, state: state, ["--out", saved]).status == 0)
        #expect(try workspace.mode(saved) == 0o600)
        // An existing file is never overwritten.
        let again = try workspace.plan(config, state: state, ["--out", saved])
        #expect(again.status == 1 && again.stderr.contains("already exists"), "\(again)")
    }

    /// SQLite only: about files (a schema that is not orgctl's is PostgreSQL's own suite's).
    @Test("a SQLite file that is not orgctl's, and a file of random bytes, are refused and left as they are")
    func foreignFilesRefused() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        let foreign = workspace.path("other.db")
        try workspace.sqlite(foreign, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('x');")
        let random = workspace.path("random.db")
        var generator = SystemRandomNumberGenerator()
        try Data((0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: random))
        let randomBytes = try Data(contentsOf: URL(fileURLWithPath: random))
        let foreignDump = try workspace.dump(foreign)

        let cases: [(String, String)] = [
            (foreign, "'\(foreign)' is a SQLite database, but not an orgctl state database"),
            (random, "'\(random)' is not a SQLite database"),
        ]
        for (path, message) in cases {
            for arguments in [
                ["plan", config, "--state", path, "--no-color"],
                ["apply", config, "--state", path, "--auto-approve", "--source", "test", "--no-color"],
                ["audit", "verify", "--state", path],
                ["audit", "log", "--state", path],
            ] {
                let run = try workspace.run(arguments)
                #expect(run.status == 1, "\(run)")
                #expect(run.stderr.hasPrefix("error: \(message)"), "\(run)")
            }
        }
        #expect(try workspace.dump(foreign) == foreignDump)
        #expect(try Data(contentsOf: URL(fileURLWithPath: random)) == randomBytes)
    }

    @Test("audit log --address 'tenant/acme/**' --format json is a JSON array of acme's entries", arguments: Backend.all)
    func auditLogJSON(_ backend: Backend) throws {
        let (workspace, _, state) = try appliedExamples(backend)
        let run = try workspace.run(["audit", "log", "--state", state, "--address", "tenant/acme/**", "--format", "json"])
        #expect(run.status == 0, "\(run)")
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]], "not a JSON array: \(run)")
        let expected = try workspace.sql(state, "SELECT count(*) FROM orgctl_resources WHERE address = 'tenant/acme' OR address LIKE 'tenant/acme/%';")
        #expect("\(entries.count)\n" == expected)
        for entry in entries {
            let address = entry["address"] as? String ?? ""
            #expect(address == "tenant/acme" || address.hasPrefix("tenant/acme/"), "\(address)")
            #expect(entry["actor"] as? String == "e2e" && entry["source"] as? String == "test" && entry["action"] as? String == "create")
            #expect(entry["time"] as? String == "2026-11-22T12:00:00Z")
        }
        let sequences = entries.compactMap { $0["seq"] as? Int }
        #expect(sequences == sequences.sorted() && sequences.count == entries.count, "entries are oldest first")

        let none = try workspace.run(["audit", "log", "--state", state, "--address", "tenant/nobody/**", "--format", "json"])
        #expect(none.status == 0 && (try? JSONSerialization.jsonObject(with: Data(none.stdout.utf8)) as? [Any])?.isEmpty == true, "\(none)")
        workspace.assertNoSecretLeaks(Self.secretValues)
    }

    @Test("teams nested under a parent whose slug sorts after theirs can be deleted", arguments: Backend.all)
    func deleteNestedTeams(_ backend: Backend) throws {
        let workspace = try Workspace(backend: backend)
        let config = try workspace.copyExamples()
        let state = workspace.state
        // 'zeta' is the parent of 'alpha': deleting both must delete alpha (the child) first.
        try workspace.edit("config/tenants/hooli.yaml", replacing: "teams:\n", with: """
            teams:
              zeta:
                name: Zeta
              alpha:
                name: Alpha
                parent: zeta

            """)
        let applied = try workspace.apply(config, state: state)
        try #require(applied.status == 0, "\(applied)")
        try workspace.edit("config/tenants/hooli.yaml", replacing: """
              zeta:
                name: Zeta
              alpha:
                name: Alpha
                parent: zeta

            """, with: "")
        let deleted = try workspace.apply(config, state: state)
        #expect(deleted.status == 0, "deleting a nested team and its parent failed: \(deleted)")
        #expect(try workspace.sql(state, "SELECT slug FROM teams WHERE slug IN ('zeta', 'alpha');") == "")
        let verify = try workspace.run(["audit", "verify", "--state", state])
        #expect(verify.status == 0, "\(verify)")
    }

    @Test("secret values never appear in any output, saved plan, audit log or database file", arguments: Backend.all)
    func secretsNeverAppear(_ backend: Backend) throws {
        let workspace = try Workspace(backend: backend)
        let config = try workspace.copyExamples()
        let state = workspace.state
        // One secret from a file as well: the file itself is the only place its value may be.
        try FileManager.default.createDirectory(atPath: workspace.path("config/secrets"), withIntermediateDirectories: true)
        let secretFile = workspace.path("config/secrets/globex-oidc.txt")
        let fileSecret = "e2e-leakcheck-from-file-Jt3Wq8"
        try (fileSecret + "\n").write(toFile: secretFile, atomically: true, encoding: .utf8)
        try workspace.edit("config/tenants/globex.yaml", replacing: "clientSecret: {env: GLOBEX_OIDC_CLIENT_SECRET}",
                           with: "clientSecret: {file: ../secrets/globex-oidc.txt}")
        let rotated = ["INITECH_WEBHOOK_SECRET": "e2e-leakcheck-initech-ROTATED-Hn2x"]

        var runs: [Run] = []
        runs.append(try workspace.run(["validate", config]))
        runs.append(try workspace.plan(config, state: state))
        runs.append(try workspace.plan(config, state: state, ["--format", "json"]))
        runs.append(try workspace.plan(config, state: state, ["--format", "markdown"]))
        runs.append(try workspace.apply(config, state: state))
        runs.append(try workspace.plan(config, state: state, ["--format", "json", "--out", workspace.path("rotation.plan")], environment: rotated))
        runs.append(try workspace.run(["apply", workspace.path("rotation.plan"), "--state", state, "--no-color"], environment: rotated))
        runs.append(try workspace.run(["audit", "log", "--state", state]))
        runs.append(try workspace.run(["audit", "log", "--state", state, "--format", "json"]))
        runs.append(try workspace.run(["audit", "verify", "--state", state]))
        try workspace.sql(state, "UPDATE webhooks SET max_retries = 7 WHERE name = 'slack';")
        runs.append(try workspace.plan(config, state: state, ["--format", "json"], environment: rotated))
        runs.append(try workspace.apply(config, state: state, environment: rotated))
        runs.append(try workspace.plan(config, state: state, unset: ["ACME_SLACK_WEBHOOK_SECRET"]))
        for run in runs.dropLast() { #expect(run.status == 0, "\(run)") }
        #expect(runs.last?.status == 1)
        // The secret is stored, encrypted: the ciphertext columns are filled.
        #expect(try workspace.sql(state, "SELECT count(*) FROM webhooks WHERE secret_ciphertext IS NOT NULL AND length(secret_ciphertext) > 28;")
                == "4\n")
        #expect(try workspace.sql(state, "SELECT count(*) FROM sso_providers WHERE client_secret_ciphertext IS NOT NULL;") == "1\n")
        workspace.assertNoSecretLeaks(Self.secretValues + Array(rotated.values) + [fileSecret], excluding: [secretFile])
    }
}
