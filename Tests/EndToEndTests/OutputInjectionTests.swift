import Foundation
import Testing

/// Values from a pull request's YAML, from file names and from the state database reach the
/// terminal and the CI log only escaped: no command run on them can forge a workflow command
/// (`::error::`, `::add-mask::`, `##[…]`) or rewrite a log line.
@Suite("Output injection")
struct OutputInjectionTests {
    static let hostile = OutputSafety.hostile

    /// YAML's double-quoted form of `value` (every non-printable scalar as `\u`/`\U`).
    static func yamlQuoted(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value >= 0x7F:
                out += scalar.value > 0xFFFF ? String(format: "\\U%08X", scalar.value) : String(format: "\\u%04X", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// The examples with the hostile value as a tenant name, a role description and a team name.
    func hostileExamples(_ workspace: Workspace) throws -> String {
        let config = try workspace.copyExamples()
        let quoted = Self.yamlQuoted(Self.hostile)
        try workspace.edit("config/tenants/initech.yaml", replacing: "name: Initech", with: "name: \(quoted)")
        try workspace.edit("config/tenants/initech.yaml", replacing: "description: Deploys apps and manages the teams that own them",
                           with: "description: \(quoted)")
        try workspace.edit("config/tenants/initech.yaml", replacing: "name: Software", with: "name: \(quoted)")
        return config
    }

    @Test("plan, apply, drift, audit log and export print hostile configuration and database values escaped, in every format")
    func validValues() throws {
        let workspace = try Workspace(name: "inject")
        let config = try hostileExamples(workspace)
        let state = workspace.path("state.db")
        let environment = ["ORGCTL_ACTOR": Self.hostile]
        var runs: [(String, Run)] = []
        for format in ["text", "json", "markdown"] {
            runs.append(("plan --format \(format)", try workspace.plan(config, state: state, ["--format", format])))
        }
        let applied = try workspace.run(["apply", config, "--state", state, "--auto-approve", "--source", Self.hostile, "--no-color",
                                         "--secrets-out", workspace.newKeysFile()], environment: environment)
        #expect(applied.status == 0, "\(applied)")
        runs.append(("apply", applied))

        // Rows changed behind orgctl's back carry the value too.
        let sqlHostile = "'" + Self.hostile.replacingOccurrences(of: "'", with: "''") + "'"
        try workspace.sqlite(state, """
            UPDATE tenants SET name = \(sqlHostile) WHERE slug = 'acme';
            UPDATE teams SET name = \(sqlHostile) WHERE slug = 'finance';
            UPDATE webhooks SET url = \(sqlHostile) WHERE name = 'slack';
            INSERT INTO members (tenant_id, email, role) SELECT id, 'mallory@acme.com', \(sqlHostile) FROM tenants WHERE slug = 'acme';
            """)
        for format in ["text", "json", "markdown"] {
            let drift = try workspace.run(["drift", config, "--state", state, "--no-color", "--format", format])
            #expect(drift.status == 3, "\(drift)")
            runs.append(("drift --format \(format)", drift))
            runs.append(("plan --format \(format) (drifted)", try workspace.plan(config, state: state, ["--format", format])))
        }
        for format in ["text", "json"] {
            let log = try workspace.run(["audit", "log", "--state", state, "--format", format])
            #expect(log.status == 0, "\(log)")
            runs.append(("audit log --format \(format)", log))
        }
        let export = try workspace.run(["export", "--state", state, workspace.path("exported")])
        #expect(export.status == 0, "\(export)")
        runs.append(("export", export))

        for (what, run) in runs { OutputSafety.expectSafe(run, what) }

        // Escaped visibly, not dropped: a reviewer sees the override and the newline.
        let plan = runs[0].1.stdout
        #expect(plan.contains(#"name                    = "A\n::error file=x.yaml,line=1::forged\r\u001b[2J"#), "\(plan)")
        #expect(plan.contains(#"\u202eesrever\u2066iso\u2069\u2028ls\u2029ps\u0085nel"#), "\(plan)")
        // JSON keeps the exact value (its escapes are JSON's own).
        let json = try JSONSerialization.jsonObject(with: Data(runs[1].1.stdout.utf8)) as? [String: Any]
        let changes = json?["changes"] as? [[String: Any]] ?? []
        let initech = changes.first { $0["address"] as? String == "tenant/initech" }
        let name = (initech?["fields"] as? [[String: Any]])?.first { $0["name"] as? String == "name" }?["after"] as? String
        #expect(name == Self.hostile, "\(runs[1].1.stdout.prefix(2000))")
        let log = runs.first { $0.0 == "audit log --format json" }!.1.stdout
        let entries = try JSONSerialization.jsonObject(with: Data(log.utf8)) as? [[String: Any]] ?? []
        #expect(!entries.isEmpty && entries.allSatisfy { $0["actor"] as? String == Self.hostile && $0["source"] as? String == Self.hostile },
                "\(log.prefix(2000))")
    }

    @Test("diagnostics quoting hostile keys, values and file names are escaped in text, JSON and GitHub annotations")
    func diagnostics() throws {
        let workspace = try Workspace(name: "inject-diag")
        let config = try workspace.copyExamples()
        let quoted = Self.yamlQuoted(Self.hostile)
        // An unknown key, a bad URL and a bad slug quote the value; a file name starting with '::' starts the line.
        try workspace.edit("config/tenants/initech.yaml", replacing: "name: Initech", with: "name: Initech\n\(quoted): 1")
        try workspace.edit("config/tenants/initech.yaml", replacing: "    description: Deploys apps and manages the teams that own them",
                           with: "    description: x\n    \(quoted): 2")
        let evil = """
            apiVersion: orgctl.dev/v1
            kind: Tenant
            slug: \(quoted)
            name: Evil
            plan: enterprise
            webhooks:
              hook:
                url: \(Self.yamlQuoted("https://example.com/\n::add-mask::x"))
                events: [member.added]

            """
        try evil.write(toFile: workspace.path("config/tenants/::error file=a::forged.yaml"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: workspace.path("config/tenants/\n::warning::dir"), withIntermediateDirectories: true)
        try evil.replacingOccurrences(of: "slug: ", with: "slug: x").write(
            toFile: workspace.path("config/tenants/\n::warning::dir/b.yaml"), atomically: true, encoding: .utf8)
        let state = workspace.path("state.db")
        var runs: [(String, Run)] = []
        for format in ["text", "json"] {
            runs.append(("validate --format \(format)", try workspace.run(["validate", "config", "--no-color", "--format", format])))
        }
        // From inside the folder the file name starts the line.
        runs.append(("validate FILE", try workspace.run(
            ["-c", "cd config/tenants && exec \"$0\" validate '::error file=a::forged.yaml' --no-color", try Paths.orgctl()],
            executable: "/bin/sh")))
        for format in ["text", "json", "markdown"] {
            runs.append(("plan --format \(format)", try workspace.plan(config, state: state, ["--format", format])))
            runs.append(("drift --format \(format)", try workspace.run(["drift", config, "--state", state, "--format", format])))
        }
        runs.append(("apply", try workspace.apply(config, state: state)))
        for (what, run) in runs {
            #expect(run.status == 1, "\(what): \(run)")
            OutputSafety.expectSafe(run, what)
        }
        let text = runs[0].1.stdout
        #expect(text.contains(#"unknown key 'A\n::error file=x.yaml,line=1::forged\r\u001b[2J"#), "\(text)")
        #expect(text.contains(#"config/tenants/\n::warning::dir/b.yaml:"#), "\(text)")

        let github = try workspace.run(["validate", "config", "--no-color", "--format", "github"])
        #expect(github.status == 1, "\(github)")
        OutputSafety.expectSafe(github, "validate --format github", workflowCommands: true)
        let annotations = github.stdout.lines.filter { $0.hasPrefix("::") }
        let count = (try JSONSerialization.jsonObject(with: Data(runs[1].1.stdout.utf8)) as? [String: Any])
            .flatMap { $0["diagnostics"] as? [Any] }?.count
        #expect(annotations.count == count, "\(github)")
        #expect(github.stdout.contains("file=config/tenants/%3A%3Aerror file=a%3A%3Aforged.yaml,"), "\(github)")
        #expect(github.stdout.contains("file=config/tenants/\\n%3A%3Awarning%3A%3Adir/b.yaml,"), "\(github)")
    }
}
