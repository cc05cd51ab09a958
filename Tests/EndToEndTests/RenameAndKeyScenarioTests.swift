import Foundation
import Testing

/// Renames and API key issuance with the real binary, checked with the sqlite3 or psql CLI, on both backends.
@Suite("Renames and API keys")
struct RenameAndKeyScenarioTests {
    static var keyPattern: Regex<Substring> { /sk_live_[0-9A-Za-z]{40,44}/ }

    func appliedExamples(_ backend: Backend, sourceLocation: SourceLocation = #_sourceLocation) throws -> (Workspace, config: String, state: String, keys: String) {
        let workspace = try Workspace(backend: backend)
        let config = try workspace.copyExamples()
        let state = workspace.state
        let keys = try workspace.newKeysFile()
        let applied = try workspace.run(["apply", config, "--state", state, "--auto-approve", "--source", "test", "--no-color", "--secrets-out", keys])
        try #require(applied.status == 0, "applying the examples failed: \(applied)", sourceLocation: sourceLocation)
        return (workspace, config, state, keys)
    }

    /// `address key` lines of a --secrets-out file.
    func issued(_ file: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for line in try String(contentsOfFile: file, encoding: .utf8).lines where !line.isEmpty && !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        return result
    }

    func sha256(_ text: String) throws -> String {
        let run = try Workspace().run(["-c", "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())"],
                                      executable: Paths.python3, stdin: text)
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("renaming a tenant, a team and a role keeps row ids and memberships: updates, never delete and create", arguments: Backend.all)
    func renames(_ backend: Backend) throws {
        let (workspace, config, state, _) = try appliedExamples(backend)
        let groupConcat = backend.sql(sqlite: "group_concat(id)", postgres: "string_agg(id::text, ',' ORDER BY id)")
        let rowsBefore = try workspace.sql(state, """
            SELECT 'tenant', id FROM tenants WHERE slug = 'acme';
            SELECT 'team', id FROM teams WHERE slug = 'platform';
            SELECT 'role', id FROM roles WHERE slug = 'billing-admin';
            SELECT 'members', \(groupConcat) FROM (SELECT id FROM members WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'acme') ORDER BY id) m;
            SELECT 'team_members', \(groupConcat) FROM (SELECT id FROM team_members ORDER BY id) tm;
            SELECT 'grants', count(*) FROM role_permissions WHERE role_id = (SELECT id FROM roles WHERE slug = 'billing-admin');
            SELECT 'sub-team parent', parent_id FROM teams WHERE slug = 'sre';
            """)
        let auditBefore = try workspace.auditCount(state)
        try workspace.edit("config/tenants/acme.yaml", replacing: "slug: acme ", with: "slug: acme-corp\npreviously: [acme]\n#")
        try workspace.edit("config/tenants/acme.yaml", replacing: "  platform:\n", with: "  platform-eng:\n    previously: [platform]\n")
        try workspace.edit("config/tenants/acme.yaml", replacing: "parent: platform", with: "parent: platform-eng")
        try workspace.edit("config/tenants/acme.yaml", replacing: "  billing-admin:\n", with: "  billing:\n    previously: [billing-admin]\n")
        try workspace.edit("config/tenants/acme.yaml", replacing: "grace@acme.com: billing-admin", with: "grace@acme.com: billing")

        let plan = try workspace.plan(config, state: state, ["--out", workspace.path("rename.plan")])
        #expect(plan.status == 0, "\(plan)")
        #expect(plan.stdout.contains("  ~ tenant/acme-corp (renamed from tenant/acme)\n"), "\(plan)")
        #expect(plan.stdout.contains("  ~ tenant/acme-corp/team/platform-eng (renamed from tenant/acme/team/platform)\n"), "\(plan)")
        #expect(plan.stdout.contains("  ~ tenant/acme-corp/role/billing (renamed from tenant/acme/role/billing-admin)\n"), "\(plan)")
        #expect(plan.stdout.contains("Plan: 0 to add, 4 to change, 0 to destroy."), "\(plan)")
        let json = try workspace.plan(config, state: state, ["--format", "json"])
        #expect(json.stdout.contains("\"renamedFrom\" : \"tenant/acme\""), "\(json)")
        let markdown = try workspace.plan(config, state: state, ["--format", "markdown"])
        #expect(markdown.stdout.contains("~ tenant/acme-corp (renamed from tenant/acme)"), "\(markdown)")

        // The saved plan is what gets applied.
        let applied = try workspace.run(["apply", workspace.path("rename.plan"), "--state", state, "--no-color"])
        #expect(applied.status == 0, "\(applied)")
        #expect(applied.stdout.contains("0 added, 4 changed (3 renamed), 0 destroyed"), "\(applied)")

        let rowsAfter = try workspace.sql(state, """
            SELECT 'tenant', id FROM tenants WHERE slug = 'acme-corp';
            SELECT 'team', id FROM teams WHERE slug = 'platform-eng';
            SELECT 'role', id FROM roles WHERE slug = 'billing';
            SELECT 'members', \(groupConcat) FROM (SELECT id FROM members WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'acme-corp') ORDER BY id) m;
            SELECT 'team_members', \(groupConcat) FROM (SELECT id FROM team_members ORDER BY id) tm;
            SELECT 'grants', count(*) FROM role_permissions WHERE role_id = (SELECT id FROM roles WHERE slug = 'billing');
            SELECT 'sub-team parent', parent_id FROM teams WHERE slug = 'sre';
            """)
        #expect(rowsAfter == rowsBefore, "row identities changed:\nbefore\n\(rowsBefore)after\n\(rowsAfter)")
        #expect(try workspace.sql(state, "SELECT count(*) FROM tenants WHERE slug = 'acme';") == "0\n")
        #expect(try workspace.sql(state, "SELECT count(*) FROM orgctl_resources WHERE address LIKE 'tenant/acme/%' OR address = 'tenant/acme';") == "0\n")

        // Four audit entries, all updates; the renames say so.
        #expect(try workspace.auditCount(state) == auditBefore + 4)
        let log = try workspace.run(["audit", "log", "--state", state, "--format", "json"])
        let entries = log.stdout.components(separatedBy: "\"seq\":").count - 1
        #expect(entries == auditBefore + 4)
        let tail = try workspace.run(["audit", "log", "--state", state, "--address", "tenant/acme-corp/**"])
        #expect(tail.stdout.contains("update  tenant/acme-corp  by e2e  from test"), "\(tail)")
        #expect(tail.stdout.contains("(renamed from tenant/acme)"), "\(tail)")
        #expect(!tail.stdout.contains("  create  ") && !tail.stdout.contains("  delete  "), "\(tail)")

        // Nothing drifted (the sub-team's parent slug changed with the rename), and the chain verifies.
        let again = try workspace.plan(config, state: state, ["--detailed-exitcode"])
        #expect(again.status == 0, "\(again)")
        #expect(again.stdout == "No changes. The state database matches the configuration.\n")
        #expect(again.stderr.contains("'acme' in previously of tenant/acme-corp matches no stored tenant [spec.rename-unmatched]"), "\(again)")
        #expect(try workspace.run(["audit", "verify", "--state", state]).status == 0)
        #expect(try workspace.pythonVerify(state).status == 0)
        workspace.assertNoSecretLeaks(Array(Secrets.examples.values))
    }

    @Test("a previously that matches two stored tenants is an error with its position, and nothing is planned", arguments: Backend.all)
    func ambiguousRename(_ backend: Backend) throws {
        let (workspace, config, state, _) = try appliedExamples(backend)
        try workspace.edit("config/tenants/hooli.yaml", replacing: "slug: hooli", with: "slug: hooli\npreviously: [acme]")
        // hooli exists and so does acme: which row would hooli be?
        try FileManager.default.removeItem(atPath: workspace.path("config/tenants/acme.yaml"))
        let before = try workspace.dump(state)
        let plan = try workspace.plan(config, state: state)
        #expect(plan.status == 1, "\(plan)")
        #expect(plan.stderr.contains("tenants/hooli.yaml:") && plan.stderr.contains("[spec.rename-ambiguous]"), "\(plan)")
        let apply = try workspace.apply(config, state: state)
        #expect(apply.status == 1, "\(apply)")
        #expect(try workspace.dump(state) == before)
    }

    @Test("apply issues API keys: format, only the SHA-256 and prefix stored, the key nowhere but the 0600 file", arguments: Backend.all)
    func keyIssuance(_ backend: Backend) throws {
        let workspace = try Workspace(backend: backend)
        let config = try workspace.copyExamples()
        let state = workspace.state

        let first = try workspace.apply(config, state: state)  // Workspace.apply passes a new --secrets-out file
        #expect(first.status == 0 && first.stdout.contains("Issued 3 API keys; the keys are in "), "\(first)")

        // CI without --secrets-out: refused before anything is written (the database is not even created).
        let fresh = workspace.otherState("fresh.db")
        let noOut = try workspace.run(["apply", config, "--state", fresh.state, "--auto-approve", "--no-color"] + fresh.extra)
        #expect(noOut.status == 1, "\(noOut)")
        #expect(noOut.stderr.contains("the plan issues 3 API keys, and standard output is not a terminal"), "\(noOut)")
        #expect(try !workspace.stateExists(fresh))

        // An existing --secrets-out file is refused before the database is touched.
        let existing = workspace.path("exists.txt")
        try Data("keep me\n".utf8).write(to: URL(fileURLWithPath: existing))
        let clash = try workspace.run(["apply", config, "--state", fresh.state, "--auto-approve", "--no-color", "--secrets-out", existing] + fresh.extra)
        #expect(clash.status == 1 && clash.stderr.contains("already exists"), "\(clash)")
        #expect(try !workspace.stateExists(fresh))
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "keep me\n")
        // With nothing to issue, --secrets-out writes nothing, so an existing file is no obstacle
        // (a pipeline passes the same flag on every apply).
        let rerun = try workspace.run(["apply", config, "--state", state, "--auto-approve", "--no-color", "--secrets-out", existing])
        #expect(rerun.status == 0 && rerun.stdout.contains("No changes."), "\(rerun)")
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "keep me\n")

        // The first apply (above) wrote its keys to the one file under .keys/.
        let keyFiles = try FileManager.default.contentsOfDirectory(atPath: workspace.path(".keys"))
        try #require(keyFiles.count == 1)
        let file = workspace.path(".keys/\(keyFiles[0])")
        #expect(try workspace.mode(file) == 0o600)
        let keys = try issued(file)
        #expect(keys.keys.sorted() == ["tenant/acme/apikey/audit-exporter", "tenant/acme/apikey/ci-deployer", "tenant/globex/apikey/directory-sync"])
        for (address, key) in keys {
            #expect(key.wholeMatch(of: Self.keyPattern) != nil, "\(address): \(key)")
            let name = address.split(separator: "/").last ?? ""
            let row = try workspace.sql(state, "SELECT key_prefix || ' ' || key_sha256 FROM api_keys WHERE name = '\(name)';")
            #expect(row == "\(key.prefix(12)) \(try sha256(key))\n", "\(address)")
        }
        #expect(Set(keys.values).count == 3)

        // Re-applying issues nothing.
        let again = try workspace.apply(config, state: state)
        #expect(again.status == 0 && again.stdout.contains("No changes."), "\(again)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.path(".keys")).count == 1)

        // Rotation by counter, and by a scope change with rotateOnScopeChange.
        try workspace.edit("config/tenants/acme.yaml", replacing: "    rateLimit: 600/h\n", with: "    rateLimit: 600/h\n    rotate: 1\n")
        try workspace.edit("config/tenants/acme.yaml", replacing: "    scopes: [audit.read]\n", with: "    scopes: [audit.read, users.read]\n    rotateOnScopeChange: true\n")
        let plan = try workspace.plan(config, state: state, ["--out", workspace.path("rotate.plan")])
        #expect(plan.stdout.contains("  ~ tenant/acme/apikey/ci-deployer\n      rotate : (none) -> 1\n      key: (will be rotated)\n"), "\(plan)")
        #expect(plan.stdout.contains("      scopes              : [\"audit.read\"] -> [\"audit.read\", \"users.read\"]\n      key: (will be rotated)\n"), "\(plan)")
        #expect(plan.stdout.components(separatedBy: "key: (will be rotated)").count == 3, "\(plan)")
        let rotatedFile = workspace.path("rotated.txt")
        let rotated = try workspace.run(["apply", workspace.path("rotate.plan"), "--state", state, "--no-color", "--secrets-out", rotatedFile])
        #expect(rotated.status == 0, "\(rotated)")
        let newKeys = try issued(rotatedFile)
        #expect(newKeys.keys.sorted() == ["tenant/acme/apikey/audit-exporter", "tenant/acme/apikey/ci-deployer"])
        for (address, key) in newKeys {
            #expect(key != keys[address], "\(address) was not rotated")
            let name = address.split(separator: "/").last ?? ""
            #expect(try workspace.sql(state, "SELECT key_sha256 FROM api_keys WHERE name = '\(name)';") == "\(try sha256(key))\n")
        }
        // The audit entry records the old and new prefix and hash, never the key.
        let log = try workspace.run(["audit", "log", "--state", state, "--format", "json", "--address", "tenant/acme/apikey/ci-deployer"])
        #expect(log.stdout.contains(String(newKeys["tenant/acme/apikey/ci-deployer"]!.prefix(12))), "\(log)")
        #expect(try workspace.apply(config, state: state).stdout.contains("No changes."))

        // The plaintext keys appear in no output, saved plan, database or WAL: only in the two secrets files.
        let keyFilesNow = Set(try FileManager.default.contentsOfDirectory(atPath: workspace.path(".keys")).map { workspace.path(".keys/\($0)") })
        workspace.assertNoSecretLeaks(Array(keys.values) + Array(newKeys.values), excluding: keyFilesNow.union([rotatedFile]))
    }
}
