import Foundation
import Testing

/// Saved-plan attacks (Tests/Hostile/plans, see its README): whoever can write the plan artifact edits
/// a reviewed plan, with or without the state key, and `apply PLANFILE` of the real binary must refuse
/// it with exit 1 and the case's message, writing nothing (the database and its WAL byte-identical).
@Suite("Hostile saved plans")
struct PlanFileAttackTests {
    static let corpus = Paths.packageRoot.appendingPathComponent("Tests/Hostile/plans")
    static let caseNames: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: corpus.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }()

    struct Manifest: Decodable {
        var about: String
        /// Python run with the decoded plan in `d`; `c(address)` is a change, `f(address, name)` a field.
        var edit: String?
        /// The file's whole new content, instead of an edit.
        var replace: String?
        /// After the edit: `no` keeps the old MAC, `key` computes a new one with the state key, `other` with another key.
        var resign: String?
        /// What the refusal says.
        var expect: String
    }

    /// Computes the MAC exactly as docs/cli.md's "Saved plan files" section describes it.
    static let editor = """
        import base64, hashlib, hmac, json, os, sys
        def hkdf(key, info):
            prk = hmac.new(b"orgctl", key, hashlib.sha256).digest()
            return hmac.new(prk, info + b"\\x01", hashlib.sha256).digest()
        path, edit, resign = sys.argv[1], sys.argv[2], sys.argv[3]
        d = json.load(open(path))
        BOB, SLACK = "tenant/acme/member/bob@acme.com", "tenant/acme/webhook/slack"
        def c(address): return next(x for x in d["changes"] if x["address"] == address)
        def f(address, name): return next(x for x in c(address)["fields"] if x["name"] == name)
        exec(edit)
        if resign != "no":
            key = base64.b64decode(os.environ["ORGCTL_STATE_KEY"]) if resign == "key" else bytes(32)
            body = json.dumps({k: v for k, v in d.items() if k != "mac"}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            d["mac"] = "hmac-sha256:" + hmac.new(hkdf(key, b"orgctl saved plan v1"), body.encode(), hashlib.sha256).hexdigest()
        json.dump(d, open(path, "w"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        """

    /// The examples applied, then a reviewed plan that changes bob's role and the slack webhook's URL.
    static func reviewedPlan() throws -> (Workspace, state: String, plan: String) {
        let workspace = try Workspace(name: "plan-attack")
        let config = try workspace.copyExamples()
        let state = workspace.path("state.db")
        try #require(try workspace.apply(config, state: state).status == 0)
        try workspace.edit("config/tenants/acme.yaml", replacing: "bob@acme.com: {role: admin}", with: "bob@acme.com: {role: member}")
        try workspace.edit("config/tenants/acme.yaml", replacing: "B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", with: "B00000000/YYYYYYYYYYYYYYYYYYYYYYYY")
        let plan = workspace.path("reviewed.plan")
        let planned = try workspace.plan(config, state: state, ["--out", plan])
        try #require(planned.status == 0, "\(planned)")
        try workspace.sqlite(state, "PRAGMA wal_checkpoint(TRUNCATE);")
        return (workspace, state, plan)
    }

    @Test("the corpus holds the plan-file attacks of issue 13")
    func corpusSize() {
        #expect(Self.caseNames.count >= 12, "\(Self.caseNames)")
    }

    @Test("apply refuses the edited plan: exit 1, the reason, the database and WAL byte-identical", arguments: caseNames)
    func refused(_ name: String) throws {
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: Self.corpus.appendingPathComponent("\(name).json")))
        let (workspace, state, plan) = try Self.reviewedPlan()
        if let replace = manifest.replace {
            try Data(replace.utf8).write(to: URL(fileURLWithPath: plan))
        } else {
            let script = workspace.path("edit.py")
            try Self.editor.write(toFile: script, atomically: true, encoding: .utf8)
            let edited = try workspace.run([script, plan, manifest.edit ?? "", manifest.resign ?? "no"], executable: Paths.python3)
            try #require(edited.status == 0, "\(edited)")
        }
        let before = HostileConfigTests.databaseBytes(state)
        let run = try workspace.run(["apply", plan, "--state", state, "--no-color"])
        #expect(run.status == 1 && !run.signaled, "\(name) (\(manifest.about)): \(run)")
        #expect((run.stdout + run.stderr).contains(manifest.expect), "\(name) (\(manifest.about)): \(run)")
        #expect(run.stderr.contains("nothing was applied") || run.stderr.contains("help: "), "\(name): \(run)")
        #expect(!run.stderr.contains("not valid JSON") && !run.stderr.contains("Fatal error"), "\(name): \(run)")
        #expect(HostileConfigTests.databaseBytes(state) == before, "\(name) (\(manifest.about)): the database or its WAL changed")
    }

    @Test("the reviewed plan itself applies, and applying it again says it was already applied")
    func reviewedApplies() throws {
        let (workspace, state, plan) = try Self.reviewedPlan()
        let applied = try workspace.run(["apply", plan, "--state", state, "--no-color"])
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete: 0 added, 2 changed, 0 destroyed."), "\(applied)")
        let again = try workspace.run(["apply", plan, "--state", state, "--no-color"])
        #expect(again.status == 0 && again.stdout.contains("was already applied (audit entries") && !again.stderr.contains("stale"), "\(again)")
    }

    @Test("plan --out and apply PLANFILE need the state key")
    func needsKey() throws {
        let (workspace, state, plan) = try Self.reviewedPlan()
        let before = HostileConfigTests.databaseBytes(state)
        let applied = try workspace.run(["apply", plan, "--state", state, "--no-color"], unset: ["ORGCTL_STATE_KEY"])
        #expect(applied.status == 1 && applied.stderr.contains("without the state key"), "\(applied)")
        #expect(HostileConfigTests.databaseBytes(state) == before)
        let planned = try workspace.plan(workspace.path("config"), state: state, ["--out", workspace.path("other.plan")], unset: ["ORGCTL_STATE_KEY"])
        #expect(planned.status == 1 && planned.stderr.contains("no state key was given"), "\(planned)")
        #expect(!FileManager.default.fileExists(atPath: workspace.path("other.plan")))
    }
}
