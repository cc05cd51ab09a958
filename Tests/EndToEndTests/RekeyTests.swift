import Foundation
import Testing

/// `orgctl state rekey`: every secret re-sealed and every keyed value recomputed under the new key,
/// checked by orgctl (plan, drift, state list) and by an independent Python reading of the database
/// (tools/check_state_key.py); refusals that write nothing; SIGKILLs that leave exactly one key working.
@Suite("State rekey")
struct RekeyTests {
    /// 32 bytes, base64 (the workspace's current key is `Secrets.stateKey`).
    static let newKey = Data((0..<32).map { UInt8(($0 * 53 + 29) & 0xFF) }).base64EncodedString()
    static let checker = Paths.packageRoot.appendingPathComponent("tools/check_state_key.py").path

    /// `tools/check_state_key.py STATE KEYS…`: one JSON line per key, exit 0 when exactly one key opens everything.
    static func check(_ workspace: Workspace, _ state: String, _ keys: [String]) throws -> (run: Run, results: [[String: Any]]) {
        var arguments = [checker, state] + keys
        if let schema = workspace.postgres?.name, workspace.isPostgres(state) { arguments += ["--schema", schema] }
        let run = try workspace.run(arguments, executable: Paths.python3)
        let results = run.stdout.lines.filter { !$0.isEmpty }.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        return (run, results)
    }

    static func keyID(_ results: [[String: Any]], _ index: Int) -> String { results[index]["key_id"] as? String ?? "?" }

    /// A new key file (0600) in the workspace.
    static func newKeyFile(_ workspace: Workspace, _ key: String = newKey) throws -> String {
        let file = workspace.path("new.key")
        try (key + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
        return file
    }

    @Test("rekey re-seals every secret and recomputes every keyed value: the new key sees what the old one saw, the old key is refused",
          arguments: Backend.all)
    func rekeyKeepsEverything(_ backend: Backend) throws {
        let (workspace, config, state) = try StateKeyTests.appliedExamples(backend)
        // A row changed outside orgctl: drifted before, drifted after.
        try workspace.sql(state, "UPDATE members SET role = 'viewer' WHERE email = 'dave@acme.com';")
        let listBefore = try workspace.run(["state", "list", "--state", state])
        let driftBefore = try workspace.run(["drift", config, "--state", state, "--no-color"])
        #expect(listBefore.status == 0 && listBefore.stdout.contains("drifted"), "\(listBefore)")
        #expect(driftBefore.status == 3, "\(driftBefore)")
        let entries = try workspace.auditCount(state)
        let before = try Self.check(workspace, state, [Secrets.stateKey, Self.newKey])
        #expect(before.run.status == 0 && before.results.first?["opened"] as? Int == 5, "\(before.run)")

        let rekey = try workspace.run(["state", "rekey", "--state", state, "--new-key-file", try Self.newKeyFile(workspace), "--no-color"])
        let (oldID, newID) = (Self.keyID(before.results, 0), Self.keyID(before.results, 1))
        #expect(rekey.status == 0, "\(rekey)")
        #expect(rekey.stdout.hasPrefix("Rekey complete: 5 secrets and "), "\(rekey)")
        #expect(rekey.stdout.contains("re-encrypted (key id \(oldID) -> \(newID)), audit entry \(entries + 1)."), "\(rekey)")

        // Independently: the new key matches the check value, opens every secret, names it and fingerprints it; the old opens nothing.
        let after = try Self.check(workspace, state, [Self.newKey, Secrets.stateKey])
        #expect(after.run.status == 0, "\(after.run)")
        #expect(after.results.first?["opened"] as? Int == 5 && after.results.first?["fingerprints"] as? Int == 5, "\(after.run)")
        #expect(after.results.last?["matches"] as? Bool == false && after.results.last?["opened"] as? Int == 0, "\(after.run)")

        let new = ["ORGCTL_STATE_KEY": Self.newKey]
        // The new key sees the same statuses and the same drift (the plan id differs: the audit head moved).
        let listAfter = try workspace.run(["state", "list", "--state", state], environment: new)
        #expect(listAfter.status == 0 && listAfter.stdout == listBefore.stdout, "\(listAfter)")
        let driftAfter = try workspace.run(["drift", config, "--state", state, "--no-color"], environment: new)
        #expect(driftAfter.status == 3 && driftAfter.stdout == driftBefore.stdout, "\(driftAfter)")
        // Repaired with the new key, the plan shows no change: every stored fingerprint is the configured secret's under the new key.
        #expect(try workspace.apply(config, state: state, environment: new).status == 0)
        let plan = try workspace.plan(config, state: state, ["--detailed-exitcode"], environment: new)
        #expect(plan.status == 0 && plan.stdout.contains("No changes."), "\(plan)")

        // The old key is refused by every command, as any other key is.
        for arguments in [["plan", config], ["audit", "verify"], ["state", "rekey", "--new-key-file", workspace.path("new.key")]] {
            let old = try workspace.run(arguments + ["--state", state, "--no-color"], environment: ["ORGCTL_STATE_KEY": Secrets.stateKey])
            #expect(old.status == 1 && old.stderr.contains("does not match the key this database was encrypted with (key id \(newID);"), "\(old)")
        }

        // One audit entry records the rotation by key ids; the chain verifies in Swift and in Python.
        let entry = try workspace.sql(state, "SELECT \(backend.sql(sqlite: "entry", postgres: "convert_from(entry, 'UTF8')")) FROM orgctl_audit WHERE seq = \(entries + 1);")
        #expect(entry.contains(#""action":"rekey","actor":"e2e","address":"state/key","after":{"digests":"#), "\(entry)")
        #expect(entry.contains(#""keyId":"\#(newID)","secrets":5}"#) && entry.contains(#""before":{"keyId":"\#(oldID)"}"#), "\(entry)")
        let verify = try workspace.run(["audit", "verify", "--state", state], environment: new)
        #expect(verify.status == 0, "\(verify)")
        let python = try workspace.pythonVerify(state)
        #expect(python.status == 0 && python.stdout == verify.stdout, "\(python)")
        // No key and no secret in any file or output (the key files hold their keys on purpose).
        let hexKeys = [Secrets.stateKey, Self.newKey].map { Data(base64Encoded: $0)!.map { String(format: "%02x", $0) }.joined() }
        workspace.assertNoSecretLeaks(Array(Secrets.examples.values) + [Secrets.stateKey, Self.newKey] + hexKeys, excluding: [workspace.path("new.key")])
    }

    @Test("a rekey by an actor named by an e-mail records a subject for it: audit log shows the actor, privacy export finds the entry",
          arguments: Backend.all)
    func rekeyByPerson(_ backend: Backend) throws {
        let (workspace, _, state) = try StateKeyTests.appliedExamples(backend)
        let entries = try workspace.auditCount(state)
        let actor = "rotator@ops.example"
        let rekey = try workspace.run(["state", "rekey", "--state", state, "--new-key-file", try Self.newKeyFile(workspace), "--no-color"],
                                      environment: ["ORGCTL_ACTOR": actor])
        #expect(rekey.status == 0, "\(rekey)")
        let new = ["ORGCTL_STATE_KEY": Self.newKey]
        // The stored entry holds a token, not the address; the readers resolve it through the subject table.
        let entry = try workspace.sql(state, "SELECT \(backend.sql(sqlite: "entry", postgres: "convert_from(entry, 'UTF8')")) FROM orgctl_audit WHERE seq = \(entries + 1);")
        #expect(entry.contains(#""action":"rekey","actor":"~s:"#) && !entry.contains(actor), "\(entry)")
        let log = try workspace.run(["audit", "log", "--state", state], environment: new)
        #expect(log.status == 0 && log.stdout.lines.contains { $0.contains("rekey") && $0.contains("by \(actor)") }, "\(log)")
        let export = try workspace.run(["privacy", "export", actor, "--state", state], environment: new)
        #expect(export.status == 0 && export.stdout.contains(#""address":"state/key""#), "\(export)")
        let verify = try workspace.run(["audit", "verify", "--state", state], environment: new)
        #expect(verify.status == 0, "\(verify)")
    }

    @Test("refused, with the database unchanged: the same key, a malformed or guessable new key, none, another current key, an unopenable secret; --dry-run writes nothing",
          arguments: Backend.all)
    func refusals(_ backend: Backend) throws {
        let (workspace, _, state) = try StateKeyTests.appliedExamples(backend)
        let bytes = try workspace.stateBytes(state)
        let rekey = ["state", "rekey", "--state", state, "--no-color"]
        let file = workspace.path("bad.key")
        try "not a key\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
        let text = Data("correct horse battery staple 123".utf8).base64EncodedString()
        let cases: [(arguments: [String], environment: [String: String], status: Int32, message: String)] = [
            ([], [:], 64, "error: state rekey needs the new key: pass --new-key-file FILE or set ORGCTL_NEW_STATE_KEY"),
            ([], ["ORGCTL_NEW_STATE_KEY": Secrets.stateKey], 1, "error: the new state key is the current one (key id "),
            ([], ["ORGCTL_NEW_STATE_KEY": "abc"], 1,
             "error: ORGCTL_NEW_STATE_KEY is not a usable key: the state key must be 32 bytes written as base64 (44 characters) or hex (64 digits)"),
            (["--new-key-file", file], [:], 1, "error: the new state key file '\(file)' is not a usable key: the state key must be 32 bytes"),
            (["--new-key-file", workspace.path("missing.key")], [:], 1, "error: cannot read the new state key file"),
            ([], ["ORGCTL_NEW_STATE_KEY": text], 1, "error: the new state key is not random bytes"),
            ([], ["ORGCTL_NEW_STATE_KEY": Self.newKey, "ORGCTL_STATE_KEY": StateKeyTests.otherKey], 1,
             "error: the state key does not match the key this database was encrypted with (key id "),
        ]
        for refused in cases {
            let run = try workspace.run(rekey + refused.arguments, environment: refused.environment)
            #expect(run.status == refused.status && run.stderr.hasPrefix(refused.message) && run.stderr.contains("\nhelp: "), "\(run)")
            #expect(run.stdout.isEmpty, "\(run)")
            #expect(try workspace.stateBytes(state) == bytes, "\(refused.arguments) \(refused.environment) changed the database")
        }
        // The same messages as for the current key.
        let current = try workspace.run(["audit", "verify", "--state", state], environment: ["ORGCTL_STATE_KEY": "abc"])
        #expect(current.stderr.hasPrefix("error: ORGCTL_STATE_KEY is not a usable key: the state key must be 32 bytes written as base64"), "\(current)")

        let dry = try workspace.run(rekey + ["--dry-run"], environment: ["ORGCTL_NEW_STATE_KEY": Self.newKey])
        #expect(dry.status == 0 && dry.stdout.hasPrefix("Dry run: 5 secrets and ") && dry.stdout.contains("Nothing was written."), "\(dry)")
        #expect(try workspace.stateBytes(state) == bytes, "--dry-run changed the database")

        // A ciphertext moved to another row (its address is authenticated) opens with no key: nothing is re-encrypted.
        try workspace.sql(state, """
            UPDATE webhooks SET secret_ciphertext = (SELECT w.secret_ciphertext FROM webhooks w JOIN tenants t ON t.id = w.tenant_id WHERE t.slug = 'globex')
            WHERE name = 'slack';
            """)
        let moved = try workspace.stateBytes(state)
        for arguments in [["--dry-run"], []] {
            let run = try workspace.run(rekey + arguments, environment: ["ORGCTL_NEW_STATE_KEY": Self.newKey])
            #expect(run.status == 1 && run.stderr.hasPrefix("error: the secret 'secret' of tenant/acme/webhook/slack (row ")
                    && run.stderr.contains("does not open with the current state key; nothing was re-encrypted"), "\(run)")
            #expect(try workspace.stateBytes(state) == moved)
        }
    }

    @Test("a saved plan made before a rekey is refused after it; one made with the new key applies", arguments: Backend.all)
    func savedPlanAcrossRekey(_ backend: Backend) throws {
        let (workspace, config, state) = try StateKeyTests.appliedExamples(backend)
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let old = workspace.path("old.plan")
        try #require(try workspace.plan(config, state: state, ["--out", old]).status == 0)
        let rekey = try workspace.run(["state", "rekey", "--state", state], environment: ["ORGCTL_NEW_STATE_KEY": Self.newKey])
        try #require(rekey.status == 0, "\(rekey)")
        let new = ["ORGCTL_STATE_KEY": Self.newKey]
        let refused = try workspace.run(["apply", old, "--state", state, "--no-color"], environment: new)
        #expect(refused.status == 1 && refused.stderr.hasPrefix("error: "), "\(refused)")
        let fresh = workspace.path("new.plan")
        #expect(try workspace.plan(config, state: state, ["--out", fresh], environment: new).status == 0)
        let applied = try workspace.run(["apply", fresh, "--state", state, "--no-color"], environment: new)
        #expect(applied.status == 0, "\(applied)")
    }
}

/// SIGKILL during `state rekey`: afterwards exactly one of the two keys works, and every secret opens with it.
/// (tools/rekey-crash-loop.sh is the long version.)
@Suite("Rekey crash safety", .serialized)
struct RekeyCrashTests {
    static let kills = 8

    @Test("a rekey killed at spread moments leaves exactly one key working, with every secret, digest and the chain intact",
          arguments: Backend.all)
    func killedRekey(_ backend: Backend) throws {
        let secret = "e2e-leakcheck-rekey-hook-Pn3Wd8"
        let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: secret], name: "rekey-crash", backend: backend)
        let config = workspace.url.appendingPathComponent("config")
        try ConfigGenerator.write(to: config, tenants: 0..<40, variant: 0, members: 3)
        let base = backend == .sqlite ? workspace.path("base.db") : workspace.state
        try #require(try workspace.apply(config.path, state: base).status == 0)
        if backend == .sqlite { try workspace.sqlite(base, "PRAGMA wal_checkpoint(TRUNCATE);") }
        let keys = [Secrets.stateKey, RekeyTests.newKey]
        let entries = try workspace.auditCount(base)

        // SQLite: every kill starts from a copy of the same database (key 0). PostgreSQL: one schema, rekeyed from
        // whichever key works now to the other.
        var current = 0
        func prepare() throws -> String {
            guard backend == .sqlite else { return base }
            let state = workspace.path("killed.db")
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: state + suffix) }
            try FileManager.default.copyItem(atPath: base, toPath: state)
            return state
        }
        func rekey(_ state: String) throws -> Started {
            try workspace.start(["state", "rekey", "--state", state, "--quiet", "--no-color"],
                                environment: ["ORGCTL_STATE_KEY": keys[current], "ORGCTL_NEW_STATE_KEY": keys[1 - current]])
        }
        // One uninterrupted rekey: how long one takes.
        let started = Date()
        let complete = try rekey(try prepare()).wait()
        var duration = Date().timeIntervalSince(started)
        try #require(complete.status == 0, "\(complete)")
        if backend == .postgres { current = 1 }

        var outcomes = (old: 0, new: 0, finished: 0)
        for i in 0..<Self.kills {
            let state = try prepare()
            // Spread over the run, denser towards its end, where the transaction is (start-up and checks come first).
            let delay = duration * ((Double(i) + 0.5) / Double(Self.kills)).squareRoot()
            if let finishedIn = try killAfter(delay, { try rekey(state) }).finishedIn {
                outcomes.finished += 1
                duration = min(duration, finishedIn)
            }
            // Exactly one key matches the check value and opens every secret, with its own key id and fingerprint.
            let check = try RekeyTests.check(workspace, state, [keys[current], keys[1 - current]])
            #expect(check.run.status == 0, "kill #\(i) after \(delay)s: \(check.run)")
            let working = check.results.firstIndex { $0["matches"] as? Bool == true }.map { $0 == 0 ? current : 1 - current }
            guard let working else { Issue.record("kill #\(i): no key works: \(check.run)"); continue }
            if working == current { outcomes.old += 1 } else { outcomes.new += 1 }
            // With it: no change to plan (every digest and fingerprint is its own), the chain intact, one entry more or none.
            let with = ["ORGCTL_STATE_KEY": keys[working]]
            let plan = try workspace.plan(config.path, state: state, ["--detailed-exitcode", "--quiet"], environment: with)
            #expect(plan.status == 0, "kill #\(i): \(plan)")
            let verify = try workspace.run(["audit", "verify", "--state", state], environment: with)
            #expect(verify.status == 0, "kill #\(i): \(verify)")
            let count = try workspace.auditCount(state)
            if backend == .sqlite { #expect(count == entries + (working == current ? 0 : 1), "kill #\(i): \(count) entries") }
            if backend == .postgres { current = working }
        }
        #expect(outcomes.old + outcomes.new == Self.kills)
        print("rekey crash safety (\(backend)): \(Self.kills) kills over \(String(format: "%.2f", duration))s: \(outcomes.old) left the old key, \(outcomes.new) the new one (\(outcomes.finished) finished first)")
        workspace.assertNoSecretLeaks([secret])
    }
}
