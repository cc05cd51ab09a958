import Foundation
import Testing

/// Saved plans on PostgreSQL behave exactly as on SQLite: a plan made stale by another apply is
/// refused with the same words, a fresh one applies, and a plan for another state is refused.
@Suite("PostgreSQL: saved plans", .enabled(if: !PGServer.skipped))
struct PostgresSavedPlanTests {
    /// One backend's run of the scenario: what each step printed, with the state's name replaced.
    struct Transcript: Equatable, CustomStringConvertible {
        var steps: [String] = []
        var description: String { steps.joined(separator: "\n=====\n") }
    }

    /// Apply the examples; save a plan renaming hooli; another apply changes hooli; the saved plan
    /// is refused as stale and writes nothing; a fresh plan applies; a plan saved for this state is
    /// refused by another state.
    static func scenario(postgres: Bool) throws -> Transcript {
        let workspace = try Workspace(name: postgres ? "pg-saved" : "sqlite-saved")
        try workspace.copyExamples()
        try workspace.copyExamples(as: "other")
        let pg = postgres ? try PGState(workspace) : nil
        let otherPG = postgres ? try PGState(workspace) : nil
        let state = pg?.arguments() ?? ["--state", workspace.path("orgctl.db")]
        let otherState = otherPG?.arguments() ?? ["--state", workspace.path("other.db")]
        let dump = { try pg?.dump() ?? workspace.dump(workspace.path("orgctl.db")) }
        var transcript = Transcript()
        func record(_ run: Run) {
            var text = "exit \(run.status)\n--- stdout\n\(run.stdout)--- stderr\n\(run.stderr)"
            for (arguments, name) in [(state, "STATE"), (otherState, "OTHER")] {
                if postgres, let shown = try? Regex("postgresql://[^ ']* \\(schema \(arguments[3])\\)") {
                    text = text.replacing(shown, with: name)
                } else {
                    text = text.replacingOccurrences(of: arguments[1], with: name)
                }
            }
            text = text.replacingOccurrences(of: workspace.url.path, with: "WORKSPACE")
            transcript.steps.append(text.replacing(/[0-9a-f]{16}/, with: "ID"))
        }
        func apply(_ config: String, _ target: [String]) throws -> Run {
            try workspace.run(["apply", config, "--auto-approve", "--no-color", "--source", "test", "--secrets-out", try workspace.newKeysFile()] + target)
        }
        record(try apply("config", state))
        record(try apply("other", otherState))
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        record(try workspace.run(["plan", "config", "--no-color", "--out", "hooli.plan"] + state))
        #expect(try workspace.mode(workspace.path("hooli.plan")) == 0o600)

        // Another apply changes tenant/hooli after the plan was saved.
        try workspace.edit("other/tenants/hooli.yaml", replacing: "status: suspended", with: "status: active")
        record(try apply("other", state))
        let before = try dump()
        let stale = try workspace.run(["apply", "hooli.plan", "--no-color"] + state)
        #expect(stale.status == 1 && stale.stderr.contains("the plan is stale") && stale.stderr.contains("  tenant/hooli\n"), "\(stale)")
        #expect(stale.stderr.contains("nothing was applied"), "\(stale)")
        #expect(try dump() == before, "a refused saved plan changed the state")
        record(stale)

        // A fresh plan applies; the same plan against another state is refused.
        record(try workspace.run(["plan", "config", "--no-color", "--out", "fresh.plan"] + state))
        let elsewhere = try workspace.run(["apply", "fresh.plan", "--no-color"] + otherState)
        #expect(elsewhere.status == 1, "\(elsewhere)")
        record(elsewhere)
        let fresh = try workspace.run(["apply", "fresh.plan", "--no-color"] + state)
        #expect(fresh.status == 0 && fresh.stdout.contains("Apply complete: 0 added, 1 changed, 0 destroyed."), "\(fresh)")
        record(fresh)
        record(try workspace.run(["plan", "config", "--no-color", "--detailed-exitcode"] + state))
        if let pg {
            #expect(try pg.value("SELECT name || '|' || status FROM \(pg.schema).tenants WHERE slug = 'hooli'") == "Hooli Inc|suspended")
            try pg.expectChainVerifies()
        }
        return transcript
    }

    @Test("a saved plan made stale by another apply is refused exactly as on SQLite; a fresh plan applies; another state refuses it")
    func staleAsOnSQLite() throws {
        let sqlite = try Self.scenario(postgres: false)
        let postgres = try Self.scenario(postgres: true)
        // The same steps end the same way; the refusals (the stale plan, the other state) say the same words.
        #expect(postgres.steps.map { $0.prefix(7) } == sqlite.steps.map { $0.prefix(7) }, "PostgreSQL:\n\(postgres)\n\nSQLite:\n\(sqlite)")
        for step in [4, 6] {
            #expect(postgres.steps[step] == sqlite.steps[step], "PostgreSQL:\n\(postgres.steps[step])\n\nSQLite:\n\(sqlite.steps[step])")
        }
    }
}
