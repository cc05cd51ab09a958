import Foundation
import Testing

/// Signed checkpoints, inclusion and consistency proofs with the real binary, checked by orgctl and by the
/// independent Python verifier; and the tampering a checkpoint kept elsewhere catches that the chain alone cannot.
@Suite("Audit checkpoints and proofs")
struct AuditCheckpointTests {
    /// Examples applied (103 entries, checkpoint c1.txt), then a rename applied (checkpoint c2.txt), both signed.
    struct Log {
        let workspace: Workspace
        let state: String
        let c1Size: Int
        let c2Size: Int

        var verifierKey: String { workspace.path("log.key.pub") }

        func orgctl(_ arguments: [String]) throws -> Run { try workspace.run(arguments + ["--state", state]) }

        func python(_ arguments: [String]) throws -> Run {
            try workspace.run([Paths.auditVerifier, try workspace.auditFile(state)] + arguments, executable: Paths.python3)
        }

        func verify(_ checkpoints: [String] = ["c1.txt", "c2.txt"]) throws -> Run {
            try orgctl(["audit", "verify", "--key", verifierKey] + checkpoints.flatMap { ["--checkpoint", workspace.path($0)] })
        }

        /// Rewrites the log behind orgctl's back from `first` on with valid chain hashes and (unless told not to)
        /// a rebuilt tree, as someone with write access to the file can: `edit` changes the entry's bytes. On PostgreSQL the
        /// script rewrites a SQLite copy of the audit tables, whose rows then replace the schema's.
        func rewrite(from first: Int, replacing old: String, with new: String, rebuildingTree: Bool = true) throws {
            let script = """
                import hashlib, sqlite3, sys
                db = sqlite3.connect(sys.argv[1])
                rows = db.execute("SELECT seq, entry FROM orgctl_audit ORDER BY seq").fetchall()
                head, leaves = bytes(32), []
                for seq, entry in rows:
                    if seq == \(first):
                        entry = entry.replace(b'\(old)', b'\(new)')
                    leaf = hashlib.sha256(b"\\x00" + entry).digest()
                    leaves.append(leaf)
                    digest = hashlib.sha256(head + leaf).digest()
                    db.execute("UPDATE orgctl_audit SET entry = ?, prev_hash = ?, hash = ? WHERE seq = ?", (entry, head, digest, seq))
                    head = digest
                if not \(rebuildingTree ? "True" : "False"):
                    db.commit()
                    sys.exit(0)
                db.execute("DELETE FROM orgctl_merkle")
                level, nodes = 0, leaves
                while len(nodes) > 1:
                    nodes = [hashlib.sha256(b"\\x01" + nodes[i] + nodes[i + 1]).digest() for i in range(0, len(nodes) - 1, 2)]
                    level += 1
                    if level % 4 == 0:
                        db.executemany("INSERT INTO orgctl_merkle VALUES (?, ?, ?)", [(level, i, h) for i, h in enumerate(nodes)])
                db.commit()
                """
            let file = try workspace.auditFile(state)
            let run = try workspace.run(["-c", script, file], executable: Paths.python3)
            #expect(run.status == 0, "\(run)")
            if file != state { try workspace.replaceAuditTables(from: file) }
        }
    }

    static func log(_ backend: Backend) throws -> Log {
        let workspace = try Workspace(backend: backend)
        workspace.environment["ORGCTL_AUDIT_ORIGIN"] = "orgctl.example/e2e"
        let config = try workspace.copyExamples()
        let state = workspace.state
        let keygen = try workspace.run(["audit", "keygen", "orgctl.example/e2e", "--out", workspace.path("log.key")])
        try #require(keygen.status == 0, "\(keygen)")
        let signing = ["--checkpoint-key", workspace.path("log.key")]
        let first = try workspace.apply(config, state: state, ["--checkpoint-out", workspace.path("c1.txt")] + signing)
        try #require(first.status == 0, "\(first)")
        let c1Size = try workspace.auditCount(state)
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let second = try workspace.apply(config, state: state, ["--checkpoint-out", workspace.path("c2.txt")] + signing)
        try #require(second.status == 0, "\(second)")
        return Log(workspace: workspace, state: state, c1Size: c1Size, c2Size: try workspace.auditCount(state))
    }

    @Test("keygen writes the private key 0600 in the signed-note format and refuses to overwrite it")
    func keygen() throws {
        let workspace = try Workspace()
        let run = try workspace.run(["audit", "keygen", "orgctl.example/k", "--out", workspace.path("k")])
        #expect(run.status == 0, "\(run)")
        let attributes = try FileManager.default.attributesOfItem(atPath: workspace.path("k"))
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let privateKey = try String(contentsOfFile: workspace.path("k"), encoding: .utf8)
        let publicKey = try String(contentsOfFile: workspace.path("k.pub"), encoding: .utf8)
        #expect(privateKey.hasPrefix("PRIVATE+KEY+orgctl.example/k+"))
        #expect(publicKey.hasPrefix("orgctl.example/k+") && run.stdout == publicKey)
        let again = try workspace.run(["audit", "keygen", "orgctl.example/k", "--out", workspace.path("k")])
        #expect(again.status == 1 && again.stderr.contains("cannot create"), "\(again)")
        #expect(try String(contentsOfFile: workspace.path("k"), encoding: .utf8) == privateKey)
        let badName = try workspace.run(["audit", "keygen", "has space", "--out", workspace.path("k2")])
        #expect(badName.status == 64, "\(badName)")
    }

    @Test("an untampered log matches its checkpoints; proofs verify with orgctl's and the independent Python verifier", arguments: Backend.all)
    func untamperedLogVerifies(_ backend: Backend) throws {
        let log = try Self.log(backend)
        let checkpoint = try String(contentsOfFile: log.workspace.path("c2.txt"), encoding: .utf8)
        let lines = checkpoint.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 6 && lines[0] == "orgctl.example/e2e" && lines[1] == "\(log.c2Size)" && lines[3].isEmpty, "\(checkpoint)")
        #expect(lines[4].hasPrefix("\u{2014} orgctl.example/e2e "))
        #expect(try log.orgctl(["audit", "checkpoint", "--key", log.workspace.path("log.key")]).stdout == checkpoint)

        let verify = try log.verify()
        #expect(verify.status == 0, "\(verify)")
        #expect(verify.stdout.contains("ok: checkpoint '\(log.workspace.path("c1.txt"))' (size \(log.c1Size), signed by orgctl.example/e2e) matches the log"))

        let key = ["--key", log.workspace.path("log.key")]
        let proofs = [1, log.c1Size, log.c2Size]
        for sequence in proofs {
            let prove = try log.orgctl(["audit", "prove", "\(sequence)"] + key)
            #expect(prove.status == 0 && prove.stdout.hasPrefix("c2sp.org/tlog-proof@v1\nindex \(sequence - 1)\n"), "\(prove)")
            try prove.stdout.write(toFile: log.workspace.path("p\(sequence)"), atomically: true, encoding: .utf8)
        }
        let consistency = try log.orgctl(["audit", "consistency", log.workspace.path("c1.txt")] + key)
        #expect(consistency.status == 0 && consistency.stdout.hasPrefix("old \(log.c1Size)\n") && consistency.stdout.hasSuffix(checkpoint),
                "\(consistency)")
        try consistency.stdout.write(toFile: log.workspace.path("cons"), atomically: true, encoding: .utf8)

        let python = try log.python(["--key", log.verifierKey, "--checkpoint", log.workspace.path("c1.txt"),
                                     "--checkpoint", log.workspace.path("c2.txt"), "--consistency", log.workspace.path("cons"),
                                     "--old", log.workspace.path("c1.txt")] + proofs.flatMap { ["--proof", log.workspace.path("p\($0)")] })
        #expect(python.status == 0, "\(python)")
        #expect(python.stdout.components(separatedBy: "\nok: ").count == 7, "\(python)")

        // A signature by another key does not pass for the log's.
        let other = try log.workspace.run(["audit", "keygen", "orgctl.example/e2e", "--out", log.workspace.path("other.key")])
        #expect(other.status == 0)
        let wrongKey = try log.orgctl(["audit", "verify", "--checkpoint", log.workspace.path("c1.txt"), "--key", log.workspace.path("other.key.pub")])
        #expect(wrongKey.status == 1 && wrongKey.stdout.contains("no signature by key 'orgctl.example/e2e'"), "\(wrongKey)")
    }

    @Test("the independent verifier passes its published test vectors")
    func pythonSelfTest() throws {
        let run = try Workspace().run([Paths.auditVerifier, "--self-test"], executable: Paths.python3)
        #expect(run.status == 0 && run.stdout.hasPrefix("self-test ok: "), "\(run)")
    }

    @Test("an edited entry breaks the chain and both checkpoints", arguments: Backend.all)
    func editedEntry(_ backend: Backend) throws {
        let log = try Self.log(backend)
        try log.workspace.sql(log.state, Workspace.editAuditEntry(backend, seq: 50))
        let verify = try log.verify()
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout.contains("broken at entry 50: hash does not match the entry"), "\(verify)")
        #expect(verify.stdout.contains("first differing size: \(log.c1Size)"), "\(verify)")
        let python = try log.python(["--checkpoint", log.workspace.path("c1.txt"), "--key", log.verifierKey])
        #expect(python.status == 1 && python.stdout.contains("do not have the checkpoint's root"), "\(python)")
    }

    @Test("dropping the newest entries leaves a valid chain, but not the checkpoint that covered them", arguments: Backend.all)
    func truncatedLog(_ backend: Backend) throws {
        let log = try Self.log(backend)
        try log.workspace.sql(log.state, "DELETE FROM orgctl_audit WHERE seq > \(log.c1Size);")
        let chainOnly = try log.orgctl(["audit", "verify"])
        #expect(chainOnly.status == 0, "the chain alone cannot see a truncation: \(chainOnly)")
        let verify = try log.verify()
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout.contains("the log has \(log.c1Size) entries, fewer than the checkpoint's \(log.c2Size)"), "\(verify)")
        #expect(verify.stdout.contains("first differing size: \(log.c2Size)") && verify.stdout.contains("still matches at size \(log.c1Size)"), "\(verify)")
        let consistency = try log.orgctl(["audit", "consistency", log.workspace.path("c2.txt")])
        #expect(consistency.status == 1 && consistency.stderr.contains("fewer than the \(log.c2Size)"), "\(consistency)")
        let python = try log.python(["--checkpoint", log.workspace.path("c2.txt"), "--key", log.verifierKey])
        #expect(python.status == 1, "\(python)")
    }

    @Test("a chain rewritten from the start with valid hashes is caught by every checkpoint", arguments: Backend.all)
    func rewrittenFromTheStart(_ backend: Backend) throws {
        let log = try Self.log(backend)
        try log.rewrite(from: 1, replacing: #""actor":"e2e""#, with: #""actor":"eve""#)
        let chainOnly = try log.orgctl(["audit", "verify"])
        #expect(chainOnly.status == 0, "the rewritten chain is valid on its own: \(chainOnly)")
        let verify = try log.verify()
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout.contains("first differing size: \(log.c1Size)") && verify.stdout.contains("still matches at size 0"), "\(verify)")
        let consistency = try log.orgctl(["audit", "consistency", log.workspace.path("c1.txt")])
        #expect(consistency.status == 1 && consistency.stderr.contains("does not extend checkpoint"), "\(consistency)")
        let python = try log.python(["--checkpoint", log.workspace.path("c1.txt"), "--key", log.verifierKey])
        #expect(python.status == 1, "\(python)")
    }

    @Test("a rewrite after the first checkpoint is located between the two checkpoints", arguments: Backend.all)
    func rewrittenBetweenCheckpoints(_ backend: Backend) throws {
        let log = try Self.log(backend)
        try log.rewrite(from: log.c1Size + 1, replacing: #""actor":"e2e""#, with: #""actor":"eve""#)
        let verify = try log.verify()
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout.contains("first differing size: \(log.c2Size)"), "\(verify)")
        #expect(verify.stdout.contains("the change is in entries \(log.c1Size + 1)–\(log.c2Size)"), "\(verify)")
        let consistency = try log.orgctl(["audit", "consistency", log.workspace.path("c1.txt")])
        #expect(consistency.status == 0, "the log still extends the first checkpoint: \(consistency)")
    }

    @Test("bad input: a malformed checkpoint, an unknown entry, a non-number, --key without --checkpoint", arguments: Backend.all)
    func badInput(_ backend: Backend) throws {
        let log = try Self.log(backend)
        try "not a checkpoint\n".write(toFile: log.workspace.path("bad.txt"), atomically: true, encoding: .utf8)
        let bad = try log.orgctl(["audit", "verify", "--checkpoint", log.workspace.path("bad.txt")])
        #expect(bad.status == 1 && bad.stderr.contains("is not a checkpoint"), "\(bad)")
        let missing = try log.orgctl(["audit", "prove", "100000"])
        #expect(missing.status == 1 && missing.stderr.contains("no entry 100000"), "\(missing)")
        let word = try log.orgctl(["audit", "prove", "first"])
        #expect(word.status == 64, "\(word)")
        let keyOnly = try log.orgctl(["audit", "verify", "--key", log.verifierKey])
        #expect(keyOnly.status == 64, "\(keyOnly)")
        let badKey = try log.workspace.apply(log.workspace.path("config"), state: log.state,
                                             ["--checkpoint-out", log.workspace.path("c3.txt"), "--checkpoint-key", log.verifierKey])
        #expect(badKey.status == 1 && badKey.stderr.contains("not a usable signing key"), "\(badKey)")
        #expect(!FileManager.default.fileExists(atPath: log.workspace.path("c3.txt")))
    }

    // MARK: The stored tree is untrusted input

    /// Lines of output in order: once a line that is not "ok: …" was printed, no "ok: …" line follows.
    static func noOKAfterAnError(_ output: String) -> Bool {
        let lines = output.split(separator: "\n")
        guard let firstProblem = lines.firstIndex(where: { !$0.hasPrefix("ok: ") }) else { return true }
        return !lines[firstProblem...].contains { $0.hasPrefix("ok: ") }
    }

    @Test("a chain rewritten with valid hashes under the untouched stored tree gets no checkpoint and no consistency proof", arguments: Backend.all)
    func rewrittenChainUntouchedTree(_ backend: Backend) throws {
        let log = try Self.log(backend)
        try log.rewrite(from: 1, replacing: #""actor":"e2e""#, with: #""actor":"eve""#, rebuildingTree: false)
        let key = ["--key", log.workspace.path("log.key")]
        let checkpoint = try log.orgctl(["audit", "checkpoint"] + key)
        #expect(checkpoint.status == 1 && checkpoint.stdout.isEmpty, "\(checkpoint)")
        #expect(checkpoint.stderr.contains("the stored audit tree does not match the entries") && checkpoint.stderr.contains("help: "), "\(checkpoint)")
        let consistency = try log.orgctl(["audit", "consistency", log.workspace.path("c1.txt")] + key)
        #expect(consistency.status == 1 && consistency.stdout.isEmpty && consistency.stderr.contains("does not extend checkpoint"), "\(consistency)")
        let prove = try log.orgctl(["audit", "prove", "2"] + key)
        #expect(prove.status == 1 && prove.stdout.isEmpty && prove.stderr.contains("stored audit tree"), "\(prove)")
        // Apply reads the (valid) chain, applies nothing, and writes no checkpoint of a tree its entries do not have.
        let apply = try log.workspace.apply(log.workspace.path("config"), state: log.state,
                                            ["--checkpoint-out", log.workspace.path("c3.txt"), "--checkpoint-key", log.workspace.path("log.key")])
        #expect(apply.status == 1 && apply.stderr.contains("no checkpoint was written: the stored audit tree does not match"), "\(apply)")
        #expect(!FileManager.default.fileExists(atPath: log.workspace.path("c3.txt")))
        let verify = try log.orgctl(["audit", "verify"])
        #expect(verify.status == 1 && verify.stdout.contains("the stored audit tree does not match the entries: its node at level 4, index 0"),
                "\(verify)")
    }

    /// A change to orgctl_merkle alone (in SQLite's and PostgreSQL's SQL), and what `audit verify` names.
    static let treeEdits: [(sqlite: String, postgres: String, report: String)] = [
        ("UPDATE orgctl_merkle SET hash = zeroblob(32) WHERE level = 4 AND idx = 0;",
         "UPDATE orgctl_merkle SET hash = \(pgZeros) WHERE level = 4 AND idx = 0;", "its node at level 4, index 0 is not the hash"),
        ("UPDATE orgctl_merkle SET hash = randomblob(32) WHERE level = 4 AND idx = 5;",
         "UPDATE orgctl_merkle SET hash = decode(md5(random()::text) || md5(random()::text), 'hex') WHERE level = 4 AND idx = 5;",
         "its node at level 4, index 5 is not the hash"),
        ("DELETE FROM orgctl_merkle WHERE level = 4 AND idx = 2;", "DELETE FROM orgctl_merkle WHERE level = 4 AND idx = 2;",
         "it has no node at level 4, index 2"),
        ("INSERT INTO orgctl_merkle VALUES (8, 1, zeroblob(32));", "INSERT INTO orgctl_merkle VALUES (8, 1, \(pgZeros));",
         "it has a node at level 8, index 1 that is no node"),
        ("INSERT INTO orgctl_merkle VALUES (4, 6, zeroblob(32));", "INSERT INTO orgctl_merkle VALUES (4, 6, \(pgZeros));",
         "it has a node at level 4, index 6 that is no node"),
        // The table rebuilt without its primary key (on PostgreSQL: the key dropped), holding a second row for node (4, 1).
        ("""
         CREATE TABLE m2 (level INTEGER, idx INTEGER, hash BLOB); INSERT INTO m2 SELECT * FROM orgctl_merkle;
         INSERT INTO m2 VALUES (4, 1, zeroblob(32)); DROP TABLE orgctl_merkle; ALTER TABLE m2 RENAME TO orgctl_merkle;
         """, """
         ALTER TABLE orgctl_merkle DROP CONSTRAINT orgctl_merkle_pkey; INSERT INTO orgctl_merkle VALUES (4, 1, \(pgZeros));
         """, "at level 4, index 1"),
    ]
    static let pgZeros = "decode(repeat('00', 32), 'hex')"

    @Test("a changed, zeroed, missing or extra tree node: untouched entries are not accused, nothing is signed or proven, verify names the node",
          arguments: Backend.all, 0..<treeEdits.count)
    func treeEdited(_ backend: Backend, _ edit: Int) throws {
        let log = try Self.log(backend)
        _ = try log.workspace.sql(log.state, backend.sql(sqlite: Self.treeEdits[edit].sqlite, postgres: Self.treeEdits[edit].postgres))
        let key = ["--key", log.workspace.path("log.key")]
        let consistency = try log.orgctl(["audit", "consistency", log.workspace.path("c1.txt")] + key)
        #expect(consistency.status == 1 && consistency.stdout.isEmpty, "\(consistency)")
        #expect(!consistency.stderr.contains("does not extend") && consistency.stderr.contains("stored audit tree"), "\(consistency)")
        #expect(consistency.stderr.contains("\nhelp: "), "\(consistency)")
        for command in [["audit", "checkpoint"], ["audit", "prove", "\(log.c1Size)"], ["audit", "prove", "3"]] {
            let run = try log.orgctl(command + key)
            #expect(run.status == 1 && run.stdout.isEmpty && run.stderr.contains("\nhelp: "), "\(run)")
        }
        let verify = try log.verify()
        #expect(verify.status == 1 && verify.stdout.contains(Self.treeEdits[edit].report), "\(verify)")
        #expect(!verify.stdout.contains("first differing size"), "the entries still match every checkpoint: \(verify)")
        #expect(verify.stderr.contains("help: orgctl_merkle or the entries were changed outside orgctl"), "\(verify)")
        #expect(Self.noOKAfterAnError(verify.stdout), "\(verify)")
        let python = try log.python(["--checkpoint", log.workspace.path("c1.txt"), "--key", log.verifierKey])
        #expect(python.status == 1 && python.stdout.contains("the stored audit tree"), "\(python)")
        #expect(python.stdout.contains("ok: checkpoint") && Self.noOKAfterAnError(python.stdout), "\(python)")
    }

    // MARK: The log's origin

    @Test("the origin the first apply names is stored and used by every audit command; another origin is one usage error", arguments: Backend.all)
    func originRemembered(_ backend: Backend) throws {
        let workspace = try Workspace(backend: backend)
        let config = try workspace.copyExamples()
        let state = workspace.state
        #expect(try workspace.run(["audit", "keygen", "orgctl.example/tenants", "--out", workspace.path("audit.key")]).status == 0)
        let first = try workspace.apply(config, state: state, ["--origin", "orgctl.example/tenants", "--checkpoint-out", workspace.path("old.txt"),
                                                                "--checkpoint-key", workspace.path("audit.key")], unset: ["ORGCTL_AUDIT_ORIGIN"])
        try #require(first.status == 0, "\(first)")
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let second = try workspace.apply(config, state: state, ["--checkpoint-out", workspace.path("new.txt")], unset: ["ORGCTL_AUDIT_ORIGIN"])
        try #require(second.status == 0, "\(second)")
        let count = try workspace.auditCount(state)
        #expect(second.stdout.contains("Audit entry \(count)."), "one entry is 'Audit entry N.': \(second)")
        #expect(try String(contentsOfFile: workspace.path("new.txt"), encoding: .utf8).hasPrefix("orgctl.example/tenants\n"))

        func orgctl(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
            try workspace.run(arguments + ["--state", state], environment: environment, unset: environment.isEmpty ? ["ORGCTL_AUDIT_ORIGIN"] : [])
        }
        // The README's examples, as written.
        let consistency = try orgctl(["audit", "consistency", workspace.path("old.txt"), "--key", workspace.path("audit.key")])
        #expect(consistency.status == 0 && consistency.stdout.contains("\n\norgctl.example/tenants\n"), "\(consistency)")
        let prove = try orgctl(["audit", "prove", "42", "--key", workspace.path("audit.key")])
        #expect(prove.status == 0 && prove.stdout.contains("\n\norgctl.example/tenants\n"), "\(prove)")
        let verify = try orgctl(["audit", "verify", "--checkpoint", workspace.path("old.txt"), "--key", workspace.path("audit.key.pub")])
        #expect(verify.status == 0, "\(verify)")

        // Another origin: one error, exit 64, nothing on standard output, and no tamper alarm.
        let dump = try workspace.dump(state)
        for run in [try orgctl(["audit", "verify", "--checkpoint", workspace.path("old.txt"), "--origin", "other.example/log"]),
                    try orgctl(["audit", "checkpoint"], environment: ["ORGCTL_AUDIT_ORIGIN": "other.example/log"]),
                    try orgctl(["audit", "prove", "1", "--origin", "other.example/log"]),
                    try orgctl(["audit", "consistency", workspace.path("old.txt"), "--origin", "other.example/log"]),
                    try workspace.apply(config, state: state, ["--origin", "other.example/log"])] {
            #expect(run.status == 64 && run.stdout.isEmpty, "\(run)")
            #expect(run.stderr.contains("this audit log's origin is 'orgctl.example/tenants', not 'other.example/log'"), "\(run)")
            #expect(!run.stderr.contains("restore the database"), "\(run)")
        }
        #expect(try workspace.dump(state) == dump, "a refused origin changes nothing")
        let same = try orgctl(["audit", "checkpoint"], environment: ["ORGCTL_AUDIT_ORIGIN": "orgctl.example/tenants"])
        #expect(same.status == 0, "the stored origin, given again, is no mismatch: \(same)")
    }

    @Test("verify --checkpoint: a checkpoint of another log is a usage error before any output; the key may be given as a string", arguments: Backend.all)
    func verifyCheckpointUsage(_ backend: Backend) throws {
        let log = try Self.log(backend)
        let key = try String(contentsOfFile: log.verifierKey, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let byString = try log.orgctl(["audit", "verify", "--checkpoint", log.workspace.path("c1.txt"), "--key", key])
        #expect(byString.status == 0 && byString.stdout.contains("signed by orgctl.example/e2e"), "\(byString)")
        let pythonByString = try log.python(["--checkpoint", log.workspace.path("c1.txt"), "--key", key])
        #expect(pythonByString.status == 0 && pythonByString.stdout.contains("signature verified"), "\(pythonByString)")
        let privateKey = try log.orgctl(["audit", "verify", "--checkpoint", log.workspace.path("c1.txt"), "--key", log.workspace.path("log.key")])
        #expect(privateKey.status == 1 && privateKey.stdout.isEmpty && privateKey.stderr.contains("is a private key"), "\(privateKey)")

        // Another log's checkpoint (another database, another origin).
        let otherState = log.workspace.otherState("other.db")
        let other = try log.workspace.apply(log.workspace.path("config"), state: otherState.state,
                                            ["--checkpoint-out", log.workspace.path("other.txt")] + otherState.extra, environment: ["ORGCTL_AUDIT_ORIGIN": ""])
        try #require(other.status == 0, "\(other)")
        let foreign = try log.orgctl(["audit", "verify", "--checkpoint", log.workspace.path("c1.txt"), "--checkpoint", log.workspace.path("other.txt")])
        #expect(foreign.status == 64 && foreign.stdout.isEmpty, "\(foreign)")
        #expect(foreign.stderr.contains("is a checkpoint of log 'orgctl/") && !foreign.stderr.contains("restore the database"), "\(foreign)")

        // A signature by another key: reported, and no "ok" after it.
        #expect(try log.workspace.run(["audit", "keygen", "orgctl.example/e2e", "--out", log.workspace.path("other.key")]).status == 0)
        let unsigned = try log.orgctl(["audit", "verify", "--checkpoint", log.workspace.path("c1.txt"), "--checkpoint", log.workspace.path("c2.txt"),
                                       "--key", log.workspace.path("other.key.pub")])
        #expect(unsigned.status == 1 && unsigned.stdout.contains("no signature by key"), "\(unsigned)")
        #expect(Self.noOKAfterAnError(unsigned.stdout), "\(unsigned)")
        #expect(!unsigned.stderr.contains("restore the database"), "a wrong key is no tamper alarm: \(unsigned)")
        // A log that differs: the problems come after every ok line.
        _ = try log.workspace.sql(log.state, "DELETE FROM orgctl_audit WHERE seq > \(log.c1Size);")
        let truncated = try log.verify()
        #expect(truncated.status == 1 && Self.noOKAfterAnError(truncated.stdout), "\(truncated)")
        let python = try log.python(["--checkpoint", log.workspace.path("c1.txt"), "--checkpoint", log.workspace.path("c2.txt")])
        #expect(python.status == 1 && python.stdout.contains("ok: \(log.c1Size) entries") && Self.noOKAfterAnError(python.stdout), "\(python)")
    }

    @Test("keygen that refuses leaves no key file behind", arguments: ["k.pub", "k"])
    func keygenRefusal(_ existing: String) throws {
        let workspace = try Workspace()
        try "taken\n".write(toFile: workspace.path(existing), atomically: true, encoding: .utf8)
        let run = try workspace.run(["audit", "keygen", "orgctl.example/k", "--out", workspace.path("k")])
        #expect(run.status == 1 && run.stderr.contains("cannot create"), "\(run)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.url.path).filter { !$0.hasPrefix(".") }.sorted() == [existing])
        #expect(try String(contentsOfFile: workspace.path(existing), encoding: .utf8) == "taken\n")
    }

    @Test("audit log warns where the chain breaks", arguments: Backend.all)
    func logWarnsOnBrokenChain(_ backend: Backend) throws {
        let log = try Self.log(backend)
        let intact = try log.orgctl(["audit", "log"])
        #expect(intact.status == 0 && !intact.stderr.contains("warning"), "\(intact)")
        _ = try log.workspace.sql(log.state, Workspace.editAuditEntry(backend, seq: 7))
        let broken = try log.orgctl(["audit", "log", "--format", "json"])
        #expect(broken.stderr.contains("warning: the audit chain is broken at entry 7: hash does not match the entry"), "\(broken)")
        #expect(broken.stderr.contains("help: run 'orgctl audit verify'"), "\(broken)")
    }
}
