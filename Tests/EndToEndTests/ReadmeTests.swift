import Foundation
import Testing

/// The README's "Quick start" and "A first session", run in order in one folder as a new user runs them, on the
/// tests' own copy of the examples: the outcome lines the README prints (validate, plan, apply, verify) are the
/// lines orgctl prints, and the first session's plan is exactly the one shown.
@Suite("README walkthrough")
struct ReadmeTests {
    static let readme = Paths.packageRoot.appendingPathComponent("README.md")

    /// The lines of every fenced block between the `## from` heading and the next `## ` heading.
    static func blocks(from heading: String, in text: String) throws -> [String] {
        let lines = text.lines
        let start = try #require(lines.firstIndex(of: "## \(heading)"), "README.md has no '## \(heading)'")
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("## ") } ?? lines.endIndex
        var inBlock = false
        var result: [String] = []
        for line in lines[(start + 1)..<end] {
            if line.hasPrefix("```") { inBlock.toggle(); continue }
            if inBlock { result.append(line) }
        }
        return result
    }

    /// The outcome lines of a block, as orgctl prints them (a verify line up to its head hash, which depends on the
    /// random state key and the clock).
    static func outcomes(_ lines: [String]) -> [String] {
        let prefixes = ["valid:", "No changes.", "Plan:", "Apply complete:", "Issued ", "Saved the plan", "ok: "]
        return lines.filter { line in prefixes.contains { line.hasPrefix($0) } }.map { line in
            line.hasPrefix("ok: ") ? String(line.prefix { $0 != "," }) : line
        }
    }

    @Test("the quick start and then the first session, in the same folder, print what the README shows")
    func quickStartThenFirstSession() throws {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        let quickStart = try Self.blocks(from: "Quick start", in: text)
        let session = try Self.blocks(from: "A first session", in: text)
        #expect(quickStart.contains { $0.contains("--state-key-file orgctl.key") }, "the quick start keeps its key in orgctl.key")
        #expect(session.contains { $0.contains("ORGCTL_STATE_KEY=\"$(cat orgctl.key)\"") }, "the first session reuses that key")

        let workspace = try Workspace(name: "readme")
        try FileManager.default.createDirectory(at: workspace.url.appendingPathComponent("examples"), withIntermediateDirectories: true)
        try workspace.copyExamples(as: "examples/config")
        var printed: [String] = []
        func run(_ arguments: [String], environment: [String: String] = [:], unset: [String] = []) throws {
            let result = try workspace.run(arguments, environment: environment, unset: unset)
            #expect(result.status == 0, "\(result)")
            // As a terminal shows them: the hints on standard error come after the output.
            for stream in [result.stdout, result.stderr] where !stream.isEmpty {
                printed += stream.hasSuffix("\n") ? Array(stream.lines.dropLast()) : stream.lines
            }
        }

        // Quick start: the key in a 0600 file, and no key in the environment.
        let key = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString() + "\n"
        #expect(FileManager.default.createFile(atPath: workspace.path("orgctl.key"), contents: Data(key.utf8),
                                               attributes: [.posixPermissions: 0o600]))
        try run(["apply", "examples/config", "--state-key-file", "orgctl.key", "--auto-approve", "--secrets-out", "api-keys.txt"],
                unset: ["ORGCTL_STATE_KEY"])
        try run(["audit", "verify"], unset: ["ORGCTL_STATE_KEY"])

        // A first session: the same key from the file, on a copy of the examples.
        let sameKey = ["ORGCTL_STATE_KEY": key.trimmingCharacters(in: .whitespacesAndNewlines)]
        try workspace.copyExamples(as: "config")
        try run(["validate", "config"], environment: sameKey)
        try run(["plan", "config"], environment: sameKey)
        // The edit the README describes: frank a member; grace gone from the members and from the finance team.
        try workspace.edit("config/tenants/acme.yaml", replacing: "  frank@acme.com: viewer\n", with: "  frank@acme.com: member\n")
        try workspace.edit("config/tenants/acme.yaml", replacing: "  grace@acme.com: billing-admin\n", with: "")
        try workspace.edit("config/tenants/acme.yaml", replacing: "      grace@acme.com: lead\n", with: "")
        let rotated = sameKey.merging(["ACME_SLACK_WEBHOOK_SECRET": "e2e-leakcheck-rotated-readme"]) { _, new in new }
        let planStart = printed.count
        try run(["plan", "config", "--out", "change.plan"], environment: rotated)
        let plan = Array(printed[planStart...])
        try run(["apply", "change.plan"], environment: rotated)
        try run(["audit", "verify"], environment: sameKey)

        // Every outcome line the README shows, in its order, is an outcome line orgctl printed, in the same order.
        let expected = Self.outcomes(quickStart + session)
        let actual = Self.outcomes(printed)
        #expect(expected == actual, "README.md shows:\n\(expected.joined(separator: "\n"))\norgctl printed:\n\(actual.joined(separator: "\n"))")
        // The first session's plan, line for line.
        let shownPlan = Array(session.drop { !$0.hasPrefix("$ orgctl plan config --out") }.dropFirst().prefix { !$0.hasPrefix("$ ") })
        #expect(shownPlan == plan, "README.md shows:\n\(shownPlan.joined(separator: "\n"))\norgctl printed:\n\(plan.joined(separator: "\n"))")
        workspace.assertNoSecretLeaks(Array(Secrets.examples.values) + ["e2e-leakcheck-rotated-readme"])
    }

    /// README's "Running on PostgreSQL" session, run against the test server (`ORGCTL_TEST_POSTGRES`) in a schema of its own:
    /// the orgctl commands print the outcome lines shown, and psql reads the tables back exactly as shown.
    @Test("the PostgreSQL session applies the examples to a server schema, and psql reads the tables back as shown")
    func postgresSession() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let server = environment["ORGCTL_TEST_POSTGRES"], !server.isEmpty else {
            if environment["ORGCTL_SKIP_POSTGRES"] == "1" { return }
            let hint = "ORGCTL_TEST_POSTGRES is not set: start a throwaway server with `eval \"$(tools/pg-cluster.sh start /tmp/orgctl-pg)\"` "
                + "(README, \"Running the tests\"); ORGCTL_SKIP_POSTGRES=1 skips the PostgreSQL tests"
            Issue.record(Comment(rawValue: hint))
            return
        }
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        let session = Array(try Self.blocks(from: "Running on PostgreSQL", in: text).drop { !$0.hasPrefix("$ . examples/secrets.env") })
        let commands = session.filter { $0.hasPrefix("$ ") }.map { String($0.dropFirst(2)) }
        // The session's state is the test server's, in the schema `demo`: the test uses a schema of its own in its place.
        #expect(commands.contains { $0.hasPrefix("export ORGCTL_STATE=\"$ORGCTL_TEST_POSTGRES\" ORGCTL_STATE_SCHEMA=demo ") }, "\(commands)")
        #expect(commands.contains { $0.hasPrefix("eval \"$(tools/pg-cluster.sh start ") })
        let schema = "readme_\(UUID().uuidString.prefix(8).lowercased())"
        let psql = (environment["PATH"] ?? "/usr/bin").split(separator: ":").map { "\($0)/psql" }
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/psql"

        let workspace = try Workspace(name: "readme-postgres")
        try FileManager.default.createDirectory(at: workspace.url.appendingPathComponent("examples"), withIntermediateDirectories: true)
        try workspace.copyExamples(as: "examples/config")
        defer { _ = try? workspace.run(["-X", "-q", "-d", server, "-c", "DROP SCHEMA IF EXISTS \(schema) CASCADE"], executable: psql) }
        let state = ["ORGCTL_STATE": server, "ORGCTL_STATE_SCHEMA": schema]
        var printed: [String] = []
        for (index, line) in session.enumerated() where line.hasPrefix("$ orgctl ") || line.hasPrefix("$ psql ") {
            if line.hasPrefix("$ orgctl ") {
                let result = try workspace.run(line.dropFirst("$ orgctl ".count).split(separator: " ").map(String.init), environment: state)
                #expect(result.status == 0, "\(result)")
                printed += result.stdout.lines + result.stderr.lines
            } else {
                let query = try #require(line.split(separator: "'").dropFirst().first, "no query in \(line)")
                let sql = query.replacingOccurrences(of: "demo.", with: "\(schema).")
                let result = try workspace.run(["-X", "-d", server, "-c", sql], executable: psql)
                #expect(result.status == 0, "\(result)")
                let shown = session[(index + 1)...].prefix { !$0.hasPrefix("$ ") }.map { $0.replacing(/\s+$/, with: "") }
                let real = result.stdout.lines.map { $0.replacing(/\s+$/, with: "") }
                #expect(Array(shown) == Array(real.prefix(shown.count)) && real.dropFirst(shown.count).allSatisfy(\.isEmpty),
                        "README.md shows:\n\(shown.joined(separator: "\n"))\npsql printed:\n\(real.joined(separator: "\n"))")
            }
        }
        let expected = Self.outcomes(session)
        let actual = Self.outcomes(printed)
        #expect(expected == actual, "README.md shows:\n\(expected.joined(separator: "\n"))\norgctl printed:\n\(actual.joined(separator: "\n"))")
        workspace.assertNoSecretLeaks(Array(Secrets.examples.values))
    }
}
