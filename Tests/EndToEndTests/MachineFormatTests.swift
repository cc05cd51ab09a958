import Foundation
import Testing

/// `plan` and `drift` in JSON and Markdown always print a document a pipeline can read, also when
/// they fail, with the exit status of the text format.
@Suite("Machine formats on failure")
struct MachineFormatTests {
    static func object(_ text: String) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
    }

    @Test("an invalid configuration: plan and drift --format json print the diagnostics as JSON, Markdown prints them too; exit 1",
          arguments: ["plan", "drift"])
    func invalidConfiguration(_ command: String) throws {
        // Drift needs a state database that exists: the examples, applied, then made invalid.
        let (workspace, config, state) = try Workspace.appliedExamples(name: "machine-invalid")
        try workspace.edit("config/tenants/initech.yaml", replacing: "plan: professional", with: "plan: professionl\nmaintainer: bob")
        let validate = try workspace.run(["validate", config, "--format", "json"])
        let expected = Self.object(validate.stdout)?["diagnostics"] as? [[String: Any]]
        try #require(expected?.count == 2, "\(validate)")

        let text = try workspace.run([command, config, "--state", state, "--no-color"])
        let json = try workspace.run([command, config, "--state", state, "--no-color", "--format", "json"])
        #expect(text.status == 1 && json.status == 1, "\(json)")
        let document = try #require(Self.object(json.stdout), "not JSON: \(json)")
        #expect(document["formatVersion"] as? Int == 1 && document["status"] as? String == "error", "\(json)")
        #expect((document["error"] as? [String: Any])?["message"] as? String == "the configuration is invalid: 2 errors; nothing was planned")
        let diagnostics = document["diagnostics"] as? [[String: Any]] ?? []
        #expect(diagnostics.map { $0["id"] as? String } == expected?.map { $0["id"] as? String }, "\(json)")
        #expect(diagnostics.first?["line"] as? Int == expected?.first?["line"] as? Int)
        #expect((document["summary"] as? [String: Int]) == ["errors": 2, "warnings": 0])
        // The text error still goes to standard error.
        #expect(json.stderr.contains("error: the configuration is invalid"), "\(json)")

        let markdown = try workspace.run([command, config, "--state", state, "--no-color", "--format", "markdown"])
        #expect(markdown.status == 1, "\(markdown)")
        #expect(markdown.stdout.hasPrefix("### orgctl \(command)\n\n**Error:** `the configuration is invalid: 2 errors; nothing was planned`"), "\(markdown)")
        #expect(markdown.stdout.contains("[spec.unknown-plan]") && markdown.stdout.contains("[spec.unknown-key]"), "\(markdown)")
    }

    @Test("a runtime failure (a missing secret) is a JSON error document without diagnostics, exit 1", arguments: ["plan", "drift"])
    func runtimeFailure(_ command: String) throws {
        let (workspace, config, state) = try Workspace.appliedExamples(name: "machine-runtime")
        let run = try workspace.run([command, config, "--state", state, "--format", "json"], unset: ["INITECH_WEBHOOK_SECRET"])
        #expect(run.status == 1, "\(run)")
        let document = try #require(Self.object(run.stdout), "not JSON: \(run)")
        #expect(document["status"] as? String == "error" && (document["diagnostics"] as? [Any])?.isEmpty == true, "\(run)")
        let message = (document["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("INITECH_WEBHOOK_SECRET"), "\(run)")
    }

    @Test("empty JSON arrays print as []")
    func emptyArrays() throws {
        let (workspace, config, state) = try Workspace.appliedExamples(name: "machine-empty")
        let drift = try workspace.run(["drift", config, "--state", state, "--format", "json"])
        let plan = try workspace.plan(config, state: state, ["--format", "json"])
        #expect(drift.stdout.contains("\"drift\" : [],") && drift.stdout.contains("\"pending\" : [],"), "\(drift)")
        #expect(plan.stdout.contains("\"changes\" : [],"), "\(plan)")
        for run in [drift, plan] {
            #expect(run.stdout.firstMatch(of: /[\[{]\n\s*[\]}]/) == nil, "\(run)")
        }
    }

    @Test("a drift report in Markdown keeps to its budget too (the job summary), with how many items were left out")
    func driftMarkdownBudget() throws {
        let (workspace, config) = try Workspace.generated(name: "drift-budget", tenants: 0..<20)
        let state = workspace.path("state.db")
        try #require(try workspace.apply(config.path, state: state).status == 0)
        for tenant in 3..<20 { try FileManager.default.removeItem(at: config.appendingPathComponent(String(format: "tenants/t-%05d.yaml", tenant))) }
        let full = try workspace.run(["drift", config.path, "--state", state, "--format", "markdown", "--max-chars", "0"])
        #expect(full.status == 2 && full.stdout.utf8.count > 5000 && !full.stdout.contains("not shown"), "\(full.stdout.utf8.count) bytes")
        let budgeted = try workspace.run(["drift", config.path, "--state", state, "--format", "markdown", "--max-chars", "5000"])
        #expect(budgeted.status == 2 && budgeted.stdout.utf8.count <= 5000, "\(budgeted.stdout.utf8.count) bytes")
        #expect(budgeted.stdout.hasPrefix("### orgctl drift\n\n**Drift: "), "\(budgeted.stdout.prefix(300))")
        #expect(budgeted.stdout.firstMatch(of: /\*\*\d+ more not shown\*\*; see the full report in the job log/) != nil, "\(budgeted.stdout.suffix(400))")
    }

    @Test("a Markdown plan too large for a comment keeps to its budget: deletes and security-relevant changes first, then how many were left out")
    func markdownBudget() throws {
        let (workspace, config) = try Workspace.generated(name: "markdown-budget", tenants: 0..<20)
        let state = workspace.path("state.db")
        try #require(try workspace.apply(config.path, state: state).status == 0)
        // One tenant deleted (its resources), a role changed in another, and 380 new tenants.
        try FileManager.default.removeItem(at: config.appendingPathComponent("tenants/t-00003.yaml"))
        try workspace.edit("config/tenants/t-00005.yaml", replacing: "user0@t-00005.example.com: member", with: "user0@t-00005.example.com: admin")
        try ConfigGenerator.write(to: config, tenants: 20..<400, variant: 0)

        let full = try workspace.plan(config.path, state: state, ["--format", "markdown", "--max-chars", "0"])
        #expect(full.status == 0 && full.stdout.utf8.count > 65_536 && !full.stdout.contains("not shown"), "\(full.stdout.utf8.count) bytes")

        let budgeted = try workspace.plan(config.path, state: state, ["--format", "markdown"])
        #expect(budgeted.status == 0, "\(budgeted)")
        let text = budgeted.stdout
        #expect(text.utf8.count <= 60_000, "\(text.utf8.count) bytes")
        #expect(text.hasPrefix("### orgctl plan\n\n**Plan: "), "\(text.prefix(300))")
        let deletes = try #require(text.range(of: "<summary>Deletes ("), "\(text.prefix(2000))")
        let security = try #require(text.range(of: "<summary>Security-relevant changes ("))
        #expect(deletes.lowerBound < security.lowerBound)
        #expect(text.contains("- tenant/t-00003\n") && text.contains("~ tenant/t-00005/member/user0@t-00005.example.com"), "\(text.prefix(3000))")
        #expect(text.range(of: "- tenant/t-00003\n")!.lowerBound < text.range(of: "~ tenant/t-00005/member")!.lowerBound)
        #expect(text.firstMatch(of: /\*\*\d+ more changes not shown\*\* \(\d+ of \d+ shown\); see the full plan in the job log/) != nil,
                "\(text.suffix(400))")

        let small = try workspace.plan(config.path, state: state, ["--format", "markdown", "--max-chars", "5000"])
        #expect(small.status == 0 && small.stdout.utf8.count <= 5000 && small.stdout.contains("not shown"), "\(small.stdout.utf8.count) bytes")

        // Many tenants deleted: their protection notes keep to the budget too (counted past half of it).
        for tenant in 6..<20 { try FileManager.default.removeItem(at: config.appendingPathComponent(String(format: "tenants/t-%05d.yaml", tenant))) }
        let deleting = try workspace.plan(config.path, state: state, ["--format", "markdown", "--max-chars", "3000"])
        #expect(deleting.status == 0 && deleting.stdout.utf8.count <= 3000, "\(deleting.stdout.utf8.count) bytes")
        #expect(deleting.stdout.contains("> **Protected:** tenant/t-00003 "), "\(deleting.stdout.prefix(1000))")
        #expect(deleting.stdout.firstMatch(of: /\*\*\d+ more tenant deletions not shown\*\* \(\d+ protected: apply refuses them/) != nil,
                "\(deleting.stdout.prefix(3000))")

        let bad = try workspace.plan(config.path, state: state, ["--format", "markdown", "--max-chars", "lots"])
        #expect(bad.status == 64 && bad.stdout.isEmpty && bad.stderr.contains("for '--max-chars <n>'"), "\(bad)")
    }
}
