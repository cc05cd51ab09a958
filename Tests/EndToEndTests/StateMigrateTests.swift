import Foundation
import Testing

/// `orgctl state migrate --to` (README "What differs between the backends", docs/cli.md): a state copied into an
/// empty one of either backend is the same state — rows, applied digests (a drifted row stays drifted), the audit
/// chain and tree byte for byte, the database id, the subject table — and a non-empty target is refused.
@Suite("state migrate")
struct StateMigrateTests {
    struct Pair: CustomTestStringConvertible, Sendable {
        var from: Backend
        var to: Backend
        var testDescription: String { "\(from.rawValue) -> \(to.rawValue)" }
    }

    static let pairs: [Pair] = Backend.all.flatMap { from in Backend.all.map { Pair(from: from, to: $0) } }

    @Test("the copy is the same state: checkpoint (database id, size, root), log, statuses (drift kept), export and plan; a non-empty target is refused",
          arguments: pairs)
    func migrate(pair: Pair) throws {
        // A PostgreSQL workspace whenever either side is PostgreSQL: its schema is that side's state.
        let workspace = try Workspace(backend: pair.from == .postgres || pair.to == .postgres ? .postgres : .sqlite)
        let source: [String] = pair.from == .sqlite ? ["--state", workspace.path("source.db")] : ["--state", workspace.state]
        let target: (state: String, schema: String?)
        switch (pair.from, pair.to) {
        case (.sqlite, .postgres): target = (workspace.state, workspace.postgres?.name)
        case (.postgres, .postgres):
            let other = workspace.otherState("copy")
            target = (other.state, other.extra.last)
        default: target = (workspace.path("copy.db"), nil)
        }
        let targetArguments = ["--state", target.state] + (target.schema.map { ["--state-schema", $0] } ?? [])

        // The examples, a checkpoint, a change, an erasure and a row changed behind orgctl's back.
        let config = try workspace.copyExamples()
        let first = try workspace.apply(config, state: source[1], ["--checkpoint-out", workspace.path("c1.txt")])
        try #require(first.status == 0, "\(first)")
        try workspace.edit("config/tenants/acme.yaml", replacing: "  frank@acme.com: viewer\n", with: "")
        try workspace.edit("config/tenants/acme.yaml", replacing: "      frank@acme.com: member\n", with: "")
        let second = try workspace.apply(config, state: source[1])
        try #require(second.status == 0, "\(second)")
        let forget = try workspace.run(["privacy", "forget", "frank@acme.com"] + source)
        try #require(forget.status == 0, "\(forget)")
        try workspace.sql(source[1], "UPDATE members SET role = 'admin' WHERE email = 'erin@acme.com';")

        func outputs(_ state: [String]) throws -> [String] {
            try [["audit", "checkpoint"], ["audit", "log", "--format", "json"], ["state", "list"], ["privacy", "export", "carol@contractor.io"],
                 ["drift", config, "--format", "json"]].map { command in
                let run = try workspace.run(command + state + ["--no-color"])
                #expect(run.status == (command[0] == "drift" ? 3 : 0), "\(run)")
                return run.stdout
            }
        }
        let before = try outputs(source)
        #expect(before[2].contains("tenant/acme/member/erin@acme.com") && before[2].contains("drifted"), "\(before[2])")
        let sourceBytes = try workspace.stateBytes(source[1])

        let migrate = try workspace.run(["state", "migrate"] + source + ["--to", target.state] + (target.schema.map { ["--to-schema", $0] } ?? []))
        #expect(migrate.status == 0, "\(migrate)")
        #expect(migrate.stderr.hasPrefix("Copied ") && migrate.stderr.contains("The audit log verifies on both: "), "\(migrate)")

        // The same state: the same checkpoint (origin with the database id, size, root), log, statuses, export and drift.
        let after = try outputs(targetArguments)
        for (shown, copied) in zip(before, after) { #expect(shown == copied) }
        let plan = try workspace.run(["plan", config, "--detailed-exitcode"] + targetArguments)
        #expect(plan.status == 2, "\(plan)")
        #expect(plan.stdout.contains("tenant/acme/member/erin@acme.com") && !plan.stdout.contains("frank"), "only the drifted row is planned: \(plan)")
        let verify = try workspace.run(["audit", "verify", "--checkpoint", workspace.path("c1.txt")] + targetArguments)
        #expect(verify.status == 0 && verify.stdout.contains("matches the log"), "\(verify)")
        #expect(try workspace.stateBytes(source[1]) == sourceBytes, "the source was changed")

        // Again into the same target: refused, and nothing written to either.
        let targetBytes = try Self.bytes(workspace, target)
        let again = try workspace.run(["state", "migrate"] + source + ["--to", target.state] + (target.schema.map { ["--to-schema", $0] } ?? []))
        #expect(again.status == 1 && again.stderr.contains("is not empty"), "\(again)")
        #expect(try Self.bytes(workspace, target) == targetBytes)
        #expect(try workspace.stateBytes(source[1]) == sourceBytes)
    }

    /// The target's contents: a SQLite file's bytes, or its schema's rows (through psql, in the target's schema).
    static func bytes(_ workspace: Workspace, _ target: (state: String, schema: String?)) throws -> [Data] {
        guard let schema = target.schema else { return HostileConfigTests.databaseBytes(target.state) }
        let script = """
            SELECT format('SELECT %L || ''|'' || t::text FROM %I.%I t ORDER BY t::text COLLATE "C"', tablename, schemaname, tablename)
              FROM pg_tables WHERE schemaname = '\(schema)' ORDER BY tablename \\gexec

            """
        let run = try workspace.run([target.state, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"], executable: Backend.psql, stdin: script)
        #expect(run.status == 0, "\(run)")
        return [Data(run.stdout.utf8)]
    }
}
