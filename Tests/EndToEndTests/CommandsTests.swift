import Foundation
import Testing

/// The tenant deletion guard, `show PLANFILE`, `state list/show`, `version` and the `import` hint,
/// with the real binary.
@Suite("Tenant deletion guard and inspection commands")
struct CommandsTests {
    func appliedExamples(_ name: String, _ backend: Backend) throws -> (Workspace, config: String, state: String) {
        try Workspace.appliedExamples(name: name, backend: backend)
    }

    /// Replaces the text from `start` up to (not including) `end` in a file.
    func cut(_ file: String, from start: String, to end: String, with replacement: String) throws {
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let lower = try #require(text.range(of: start))
        let upper = try #require(text.range(of: end, range: lower.upperBound..<text.endIndex))
        try text.replacingCharacters(in: lower.lowerBound..<upper.lowerBound, with: replacement).write(toFile: file, atomically: true, encoding: .utf8)
    }

    // MARK: Tenant deletion guard

    @Test("removing a tenant's file: plan marks it protected, apply DIR and apply PLANFILE refuse and write nothing, --allow-delete-tenant applies", arguments: Backend.all)
    func deletingATenantNeedsConfirmation(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples("guard", backend)
        try FileManager.default.removeItem(atPath: "\(config)/tenants/acme.yaml")
        let before = try workspace.canonicalDump(state)
        let entries = try workspace.auditCount(state)

        let plan = try workspace.plan(config, state: state, ["--out", workspace.path("delete.plan")])
        #expect(plan.status == 0, "\(plan)")
        #expect(plan.stdout.contains("Plan: 0 to add, 0 to change, 24 to destroy."), "\(plan)")
        #expect(plan.stdout.contains(
            "protected: tenant/acme is deleted with the 23 resources it holds; apply will refuse unless given --allow-delete-tenant acme"), "\(plan)")

        // The whole-tenant rule is independent of --max-deletes, and holds for a folder and a saved plan alike.
        for path in [config, workspace.path("delete.plan")] {
            let refused = try workspace.apply(path, state: state, ["--max-deletes", "1000"])
            #expect(refused.status == 1, "\(refused)")
            #expect(refused.stderr.contains("error: deleting a tenant, or most of one, needs its own confirmation: tenant/acme is deleted with the 23 resources it holds; nothing was applied"), "\(refused)")
            #expect(refused.stderr.contains("help: if this is intended, review the plan and run apply again with --allow-delete-tenant acme"), "\(refused)")
            #expect(try workspace.canonicalDump(state) == before)
            #expect(try workspace.auditCount(state) == entries)
        }
        // Naming another tenant confirms nothing.
        let other = try workspace.apply(workspace.path("delete.plan"), state: state, ["--allow-delete-tenant", "globex"])
        #expect(other.status == 1, "\(other)")
        #expect(try workspace.canonicalDump(state) == before)

        let confirmed = try workspace.plan(config, state: state, ["--allow-delete-tenant", "acme"])
        #expect(confirmed.stdout.contains("confirmed: tenant/acme is deleted with the 23 resources it holds; allowed by --allow-delete-tenant acme"), "\(confirmed)")
        let applied = try workspace.apply(workspace.path("delete.plan"), state: state, ["--allow-delete-tenant", "acme"])
        #expect(applied.status == 0, "\(applied)")
        #expect(applied.stdout.contains("Apply complete: 0 added, 0 changed, 24 destroyed."), "\(applied)")
        #expect(try workspace.sql(state, "SELECT count(*) FROM tenants WHERE slug = 'acme'") == "0\n")
    }

    @Test("deleting more than --max-tenant-delete-percent of a tenant needs confirmation; the plan's JSON lists it", arguments: Backend.all)
    func deletingMostOfATenantNeedsConfirmation(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples("guard-share", backend)
        let acme = "\(config)/tenants/acme.yaml"
        try cut(acme, from: "\nteams:\n", to: "\nsso:", with: "\nteams: {}\n")
        try cut(acme, from: "\nwebhooks:\n", to: "\napiKeys:", with: "\nwebhooks: {}\n")
        let before = try workspace.canonicalDump(state)

        // 11 of acme's 24 resources: under the default 50%.
        let under = try workspace.plan(config, state: state, ["--format", "json"])
        #expect(under.status == 0, "\(under)")
        #expect(under.stdout.contains("\"destroy\" : 11"), "\(under)")
        #expect(!under.stdout.contains("protectedDeletions"), "\(under)")

        let json = try workspace.plan(config, state: state, ["--format", "json", "--max-tenant-delete-percent", "40"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let protected = try #require(document["protectedDeletions"] as? [[String: Any]], "\(json)")
        #expect(protected.count == 1)
        #expect(protected.first?["tenant"] as? String == "acme")
        #expect(protected.first?["wholeTenant"] as? Bool == false)
        #expect(protected.first?["deletes"] as? Int == 11)
        #expect(protected.first?["held"] as? Int == 24)
        #expect(protected.first?["confirmed"] as? Bool == false)

        let refused = try workspace.apply(config, state: state, ["--max-tenant-delete-percent", "40"])
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stdout.contains("protected: the plan deletes 11 of the 24 resources of tenant/acme; apply will refuse unless given --allow-delete-tenant acme"), "\(refused)")
        #expect(refused.stderr.contains("nothing was applied"), "\(refused)")
        #expect(try workspace.canonicalDump(state) == before)

        let applied = try workspace.apply(config, state: state, ["--max-tenant-delete-percent", "40", "--allow-delete-tenant", "acme"])
        #expect(applied.status == 0, "\(applied)")
    }

    @Test("a malformed --max-tenant-delete-percent is a usage error before any work", arguments: ["101", "1.5", "half", ""])
    func percentValidated(_ value: String) throws {
        let workspace = try Workspace(name: "guard-usage")
        let config = try workspace.copyExamples()
        let state = workspace.path("state.db")
        for run in [try workspace.plan(config, state: state, ["--max-tenant-delete-percent", value]),
                    try workspace.apply(config, state: state, ["--max-tenant-delete-percent", value])] {
            #expect(run.status == 64, "\(run)")
            #expect(run.stderr.contains("for '--max-tenant-delete-percent <percent>'"), "\(run)")
            #expect(run.stdout.isEmpty, "\(run)")
        }
        #expect(!FileManager.default.fileExists(atPath: state))
    }

    // MARK: show

    @Test("show PLANFILE prints the saved plan as plan did, in text, JSON and Markdown, reading no database", arguments: Backend.all)
    func showPrintsTheSavedPlan(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples("show", backend)
        try workspace.edit("\(config)/tenants/acme.yaml", replacing: "frank@acme.com: viewer", with: "frank@acme.com: admin")
        try FileManager.default.removeItem(atPath: "\(config)/tenants/hooli.yaml")
        let planFile = workspace.path("review.plan")
        let text = try workspace.plan(config, state: state, ["--out", planFile])
        let json = try workspace.plan(config, state: state, ["--format", "json"])
        let markdown = try workspace.plan(config, state: state, ["--format", "markdown"])
        try #require(text.status == 0 && json.status == 0 && markdown.status == 0)

        // Without a state key or secrets: show needs none of them, and opens no database.
        let bare = Array(Secrets.examples.keys) + ["ORGCTL_STATE_KEY"]
        let shown = try workspace.run(["show", planFile, "--no-color"], unset: bare)
        #expect(shown.status == 0, "\(shown)")
        let header = try #require(shown.stdout.components(separatedBy: "\n\n").first)
        #expect(header.hasPrefix("Saved plan "), "\(shown)")
        #expect(header.contains("made by orgctl 0.1.0 from test"), "\(shown)")
        #expect(header.contains("at audit entry 104"), "\(shown)")
        #expect(shown.stdout.hasSuffix(text.stdout), "show prints the plan as plan did\n\(shown)\n\(text)")
        #expect(shown.stdout.contains("protected: tenant/hooli is deleted with the 7 resources it holds"), "\(shown)")

        let shownJSON = try workspace.run(["show", planFile, "--format", "json"], unset: bare)
        #expect(shownJSON.status == 0, "\(shownJSON)")
        // The same document as 'plan --format json', plus the protected deletion.
        let planDocument = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? NSDictionary)
        let showDocument = try #require(try JSONSerialization.jsonObject(with: Data(shownJSON.stdout.utf8)) as? NSDictionary)
        #expect(showDocument["changes"] as? NSArray == planDocument["changes"] as? NSArray)
        #expect(showDocument["planId"] as? String == planDocument["planId"] as? String)
        #expect((showDocument["protectedDeletions"] as? [[String: Any]])?.first?["tenant"] as? String == "hooli")

        let shownMarkdown = try workspace.run(["show", planFile, "--format", "markdown"], unset: bare)
        #expect(shownMarkdown.status == 0, "\(shownMarkdown)")
        #expect(shownMarkdown.stdout.hasPrefix("> Saved plan "), "\(shownMarkdown)")
        #expect(shownMarkdown.stdout.contains("### orgctl plan"), "\(shownMarkdown)")
        #expect(shownMarkdown.stdout.contains("> **Protected:** tenant/hooli is deleted"), "\(shownMarkdown)")
        #expect(!FileManager.default.fileExists(atPath: workspace.path("orgctl.db")), "show created a database")
        workspace.assertNoSecretLeaks(Array(Secrets.examples.values))
    }

    @Test("show checks a saved plan's authenticity with the state key: an edited plan is shown with an error and exit 1", arguments: Backend.all)
    func showChecksAuthenticity(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples("show-mac", backend)
        try workspace.edit("\(config)/tenants/acme.yaml", replacing: "frank@acme.com: viewer", with: "frank@acme.com: admin")
        let planFile = workspace.path("review.plan")
        try #require(try workspace.plan(config, state: state, ["--out", planFile]).status == 0)
        let authentic = try workspace.run(["show", planFile, "--no-color"])
        #expect(authentic.status == 0 && authentic.stdout.contains("\nauthentic: written by 'orgctl plan --out' with this state key"), "\(authentic)")
        let unchecked = try workspace.run(["show", planFile, "--no-color"], unset: ["ORGCTL_STATE_KEY"])
        #expect(unchecked.status == 0 && unchecked.stdout.contains("\nnot checked: no state key was given"), "\(unchecked)")

        // A reviewer's plan raised to owner after review: shown, flagged, exit 1.
        let forged = workspace.path("forged.plan")
        let text = try String(contentsOfFile: planFile, encoding: .utf8)
        try #require(text.contains("\"admin\""))
        try text.replacingOccurrences(of: "\"admin\"", with: "\"owner\"").write(toFile: forged, atomically: true, encoding: .utf8)
        let shown = try workspace.run(["show", forged, "--no-color"])
        #expect(shown.status == 1, "\(shown)")
        #expect(shown.stdout.contains("\nNOT AUTHENTIC: the saved plan's authentication code does not match"), "\(shown)")
        #expect(shown.stderr.hasPrefix("error: ") && shown.stderr.contains("do not apply it"), "\(shown)")
    }

    @Test("show refuses what is not a saved plan, with exit 1 and no Foundation wording")
    func showRefusesOtherFiles() throws {
        let workspace = try Workspace(name: "show-bad")
        try "not a plan".write(toFile: workspace.path("garbage.plan"), atomically: true, encoding: .utf8)
        try #"{"format": "something-else"}"#.write(toFile: workspace.path("other.json"), atomically: true, encoding: .utf8)
        for path in [workspace.path("garbage.plan"), workspace.path("other.json"), workspace.path("missing.plan"), workspace.url.path] {
            let run = try workspace.run(["show", path])
            #expect(run.status == 1, "\(run)")
            #expect(run.stderr.hasPrefix("error: "), "\(run)")
            #expect(run.stderr.contains("help: "), "\(run)")
            #expect(run.stdout.isEmpty, "\(run)")
        }
    }

    // MARK: state list / state show

    @Test("state list tells applied, drifted, outside and deleted rows apart; a pattern selects as --target does", arguments: Backend.all)
    func stateList(_ backend: Backend) throws {
        let (workspace, _, state) = try appliedExamples("state-list", backend)
        try workspace.sql(state, """
            UPDATE members SET role = 'admin' WHERE email = 'frank@acme.com';
            INSERT INTO members (tenant_id, email, role) SELECT id, 'mallory@acme.com', 'owner' FROM tenants WHERE slug = 'acme';
            DELETE FROM team_members WHERE member_id = (SELECT id FROM members WHERE email = 'grace@acme.com');
            """)
        let before = try workspace.dump(state)
        let all = try workspace.run(["state", "list", "--state", state])
        #expect(all.status == 0, "\(all)")
        let lines = all.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(lines.count == 104, "\(all)")
        let status = Dictionary(lines.map { ($0[0], $0[1]) }, uniquingKeysWith: { a, _ in a })
        #expect(status["tenant/acme"] == "applied")
        #expect(status["tenant/acme/member/frank@acme.com"] == "drifted")
        #expect(status["tenant/acme/member/mallory@acme.com"] == "outside")
        #expect(status["tenant/acme/team/finance/member/grace@acme.com"] == "deleted")
        #expect(all.stderr.contains("103 resources: 101 applied, 1 drifted, 1 outside; 1 deleted outside orgctl"), "\(all)")

        let acmeMembers = try workspace.run(["state", "list", "tenant/acme/member", "--state", state, "--format", "json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(acmeMembers.stdout.utf8)) as? [String: Any])
        let resources = try #require(document["resources"] as? [[String: Any]])
        #expect(resources.count == 8)
        #expect(resources.allSatisfy { ($0["address"] as? String)?.hasPrefix("tenant/acme/member/") == true })

        let none = try workspace.run(["state", "list", "tenant/nope", "--state", state])
        #expect(none.status == 0 && none.stdout.isEmpty, "\(none)")
        #expect(none.stderr.contains("no address in the state matches 'tenant/nope'"), "\(none)")
        #expect(try workspace.dump(state) == before, "state list changed the database")
    }

    @Test("state show prints stored values, secrets masked and API key material never; a drifted value shows what was applied", arguments: Backend.all)
    func stateShow(_ backend: Backend) throws {
        let (workspace, _, state) = try appliedExamples("state-show", backend)
        try workspace.sql(state, "UPDATE members SET role = 'admin' WHERE email = 'frank@acme.com';")
        let hook = try workspace.run(["state", "show", "tenant/acme/webhook/slack", "--state", state, "--no-color"])
        #expect(hook.status == 0, "\(hook)")
        #expect(hook.stdout.hasPrefix("tenant/acme/webhook/slack (webhook)\n  parent: tenant/acme\n  status: applied (applied by orgctl, unchanged since)\n"), "\(hook)")
        #expect(hook.stdout.contains("      secret     = (sensitive)\n"), "\(hook)")

        let prefix = try workspace.sql(state, "SELECT key_prefix FROM api_keys WHERE name = 'ci-deployer'").trimmingCharacters(in: .whitespacesAndNewlines)
        let hash = try workspace.sql(state, "SELECT key_sha256 FROM api_keys WHERE name = 'ci-deployer'").trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(!prefix.isEmpty && !hash.isEmpty)
        for format in ["text", "json"] {
            let key = try workspace.run(["state", "show", "tenant/acme/apikey/ci-deployer", "--state", state, "--format", format])
            #expect(key.status == 0, "\(key)")
            for material in [prefix, hash, "keyPrefix", "keyHash", "sk_live_"] {
                #expect(!key.stdout.contains(material), "API key material shown: \(material)\n\(key)")
            }
            #expect(key.stdout.contains(format == "json" ? "\"keyIssued\" : true" : "key: (issued; only its SHA-256 is stored)"), "\(key)")
        }

        let drifted = try workspace.run(["state", "show", "tenant/acme/member/frank@acme.com", "--state", state, "--no-color"])
        #expect(drifted.stdout.contains("status: drifted (applied by orgctl, changed outside orgctl since); last applied in audit entry"), "\(drifted)")
        #expect(drifted.stdout.contains("role = \"admin\"  (as applied: \"viewer\")"), "\(drifted)")

        let unknown = try workspace.run(["state", "show", "tenant/acme/member/frank@acme.co", "--state", state])
        #expect(unknown.status == 1, "\(unknown)")
        #expect(unknown.stderr.contains("error: the state database holds no resource at 'tenant/acme/member/frank@acme.co'"), "\(unknown)")
        #expect(unknown.stderr.contains("help: did you mean 'tenant/acme/member/frank@acme.com'?"), "\(unknown)")
        workspace.assertNoSecretLeaks(Array(Secrets.examples.values))
    }

    @Test("state commands need an existing database and never create one", arguments: Backend.all, [["list"], ["show", "tenant/acme"]])
    func stateNeedsADatabase(_ backend: Backend, _ arguments: [String]) throws {
        let workspace = try Workspace(name: "state-missing", backend: backend)
        let typo = workspace.otherState("typo.db")
        let run = try workspace.run(["state"] + arguments + ["--state", typo.state] + typo.extra)
        #expect(run.status == 1, "\(run)")
        // A URI is shown without its password, as libpq normalises it, with the schema.
        let shown = backend == .sqlite ? "'\(typo.state)'" : " (schema \(typo.extra.last ?? ""))'"
        #expect(run.stderr.hasPrefix("error: the state database '") && run.stderr.contains("\(shown) does not exist"), "\(run)")
        #expect(try !workspace.stateExists(typo))
    }

    // MARK: version, import

    @Test("version and --version print orgctl's version, the commit and the libraries' runtime versions; --format json")
    func version() throws {
        let workspace = try Workspace(name: "version")
        let text = try workspace.run(["version"])
        #expect(text.status == 0, "\(text)")
        let lines = text.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(text)")
        #expect(lines.first?.hasPrefix("orgctl 0.1.0 (commit ") == true, "\(text)")
        #expect(lines.dropFirst().first?.hasPrefix("libyaml 0.") == true, "\(text)")
        #expect(lines.dropFirst(2).first?.hasPrefix("SQLite 3.") == true, "\(text)")
        #expect(lines.last?.hasPrefix("OpenSSL ") == true, "\(text)")
        let flag = try workspace.run(["--version"])
        #expect(flag.status == 0 && flag.stdout == text.stdout, "\(flag)")

        let json = try workspace.run(["version", "--format", "json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(document["version"] as? String == "0.1.0")
        #expect(document.keys.contains("commit"))
        let libraries = try #require(document["libraries"] as? [String: String])
        #expect(libraries.keys.sorted() == ["libyaml", "openssl", "sqlite"])
        // The runtime SQLite, as the sqlite3 tool (same library) reports it.
        let tool = try workspace.sqlite(":memory:", "SELECT sqlite_version()").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(libraries["sqlite"] == tool)
    }

    @Test("'import' and its synonyms point at adoption, not at 'export'", arguments: ["import", "adopt", "imprt", "IMPORT"])
    func importPointsAtAdoption(_ word: String) throws {
        let workspace = try Workspace(name: "import")
        let run = try workspace.run([word, "--state", "platform.db", "config"])
        #expect(run.status == 64, "\(run)")
        #expect(run.stderr.contains("error: unknown subcommand '\(word)'"), "\(run)")
        #expect(run.stderr.contains("'orgctl apply DIR --state DB --adopt'"), "\(run)")
        #expect(run.stderr.contains("Adopting an existing database"), "\(run)")
        #expect(!run.stderr.contains("did you mean 'export'"), "\(run)")
        let help = try workspace.run(["help", word])
        #expect(help.status == 64 && help.stderr.contains("--adopt"), "\(help)")
    }
}
