import Foundation
import Testing

/// Policies end to end (docs/spec.md, "Policies"): validate reports them with positions, plan shows them and
/// exits 1 on a mandatory failure, apply refuses blocking ones and records overrides in the audit chain, and
/// the JSON plan keeps to its published schema (`orgctl schema --plan`).
@Suite("Governance")
struct GovernanceTests {
    /// The examples with policies added to the Platform (and `extra` lines under them).
    static func workspace(policies: String) throws -> (Workspace, String) {
        let workspace = try Workspace(name: "governance")
        let config = try workspace.copyExamples()
        let platform = config + "/platform.yaml"
        var text = try String(contentsOfFile: platform, encoding: .utf8)
        if let range = text.range(of: "\npolicies:") { text = String(text[..<range.lowerBound]) + "\n" }  // replace the shipped ones
        text += "\npolicies:\n" + policies.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
        try text.write(toFile: platform, atomically: true, encoding: .utf8)
        return (workspace, config)
    }

    static let breakGlass = "requiredMembers: {members: [breakglass@platform.example], enforcement: overridable}"

    @Test("validate reports a failing policy at the value with file:line:column: an error when mandatory, a warning otherwise")
    func validatePositions() throws {
        for (level, severity, status) in [("mandatory", "error", Int32(1)), ("overridable", "warning", 0), ("advisory", "warning", 0)] {
            let (workspace, config) = try Self.workspace(policies: "apiKeys: {maxLifetime: 90d, enforcement: \(level)}")
            let run = try workspace.run(["validate", config, "--no-color"])
            #expect(run.status == status, "\(run)")
            // acme.yaml's ci-deployer expires on 2027-06-30, more than 90 days after 2026-11-22.
            #expect(run.stdout.contains("tenants/acme.yaml:122:14: \(severity): API key 'ci-deployer' expires on 2027-06-30, later than 2027-02-20 (maxLifetime 90d) (policy apiKeys, \(level)) [policy.apiKeys]"),
                    "\(run.stdout)")
            let json = try workspace.run(["validate", config, "--format", "json"])
            #expect(json.stdout.contains("\"id\" : \"policy.apiKeys\""))
        }
    }

    @Test("plan exits 1 on a failing mandatory policy, with or without --detailed-exitcode, and shows why; 2 when only advisory ones fail")
    func planExitCodes() throws {
        let (workspace, config) = try Self.workspace(policies: "minimumOwners: {count: 2}")
        let state = workspace.path("state.db")
        for extra in [[], ["--detailed-exitcode"]] {
            let run = try workspace.plan(config, state: state, extra)
            #expect(run.status == 1, "\(run)")
            #expect(run.stdout.contains("  FAIL  minimumOwners (mandatory): every active tenant has at least 2 owners"))
            #expect(run.stdout.contains("        tenant/acme: tenant 'acme' has 1 owner, fewer than 2"))
            #expect(run.stderr.contains("error: a mandatory policy fails: the plan is invalid"))
        }
        try workspace.edit(config + "/platform.yaml", replacing: "{count: 2}", with: "{count: 2, enforcement: advisory}")
        let advisory = try workspace.plan(config, state: state, ["--detailed-exitcode"])
        #expect(advisory.status == 2, "\(advisory)")
        #expect(advisory.stdout.contains("  warn  minimumOwners (advisory)"))
        #expect(!FileManager.default.fileExists(atPath: state), "plan never creates the database")
        // An advisory failure does not keep the plan from being saved; show prints the checks as plan did, from the file.
        let saved = try workspace.plan(config, state: state, ["--out", workspace.path("review.plan")])
        #expect(saved.status == 0, "\(saved)")
        let shown = try workspace.run(["show", workspace.path("review.plan"), "--no-color"])
        #expect(shown.stdout.hasSuffix(saved.stdout), "\(shown)\n\(saved)")
        #expect(shown.stdout.contains("        tenant/acme: tenant 'acme' has 1 owner, fewer than 2"))
    }

    @Test("apply refuses a failing overridable policy and writes nothing; with --override and --reason it applies and the override is an audit entry the Python verifier accepts")
    func overrideIsAudited() throws {
        let (workspace, config) = try Self.workspace(policies: Self.breakGlass)
        let state = workspace.path("state.db")
        let refused = try workspace.apply(config, state: state)
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("error: 1 overridable policy fails; nothing was applied"))
        #expect(refused.stderr.contains("--override requiredMembers --reason \"WHY\""))
        #expect(!FileManager.default.fileExists(atPath: state), "a refused apply creates no database")

        // Naming a policy that does not fail, or leaving out --reason, is refused too.
        let wrong = try workspace.apply(config, state: state, ["--override", "minimumOwners", "--reason", "x"])
        #expect(wrong.status == 1 && wrong.stderr.contains("--override names 'minimumOwners', which no failing overridable policy"), "\(wrong)")
        let noReason = try workspace.apply(config, state: state, ["--override", "requiredMembers"])
        #expect(noReason.status == 64, "\(noReason)")
        #expect(!FileManager.default.fileExists(atPath: state))

        let reason = "break-glass accounts arrive with ticket OPS-42"
        let applied = try workspace.apply(config, state: state, ["--override", "requiredMembers", "--reason", reason])
        #expect(applied.status == 0, "\(applied)")
        #expect(applied.stdout.contains("  overridden  requiredMembers (overridable)"))
        #expect(applied.stdout.contains("        overridden: \(reason)"))
        let entry = try workspace.sqlite(state, "SELECT entry FROM orgctl_audit WHERE seq = 1;")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(entry.utf8)) as? [String: Any])
        #expect(object["action"] as? String == "override")
        #expect(object["address"] as? String == "policy/requiredMembers")
        #expect(object["actor"] as? String == "e2e")
        #expect(object["reason"] as? String == reason)
        let after = try #require(object["after"] as? [String: Any])
        #expect(after["violationCount"] as? Int == 4)
        #expect(after["enforcement"] as? String == "overridable")
        let verified = try workspace.pythonVerify(state)
        #expect(verified.status == 0 && verified.stdout.hasPrefix("ok: 105 entries"), "\(verified)")
        let log = try workspace.run(["audit", "log", "--state", state])
        #expect(log.stdout.contains("1  2026-11-22T12:00:00Z  override  policy/requiredMembers  by e2e"), "\(log.stdout)")
    }

    @Test("a mandatory policy cannot be overridden; a saved plan is refused while a blocking policy fails; --override does not apply to a saved plan")
    func mandatoryAndSavedPlans() throws {
        let (workspace, config) = try Self.workspace(policies: "webhookDomains: {allowedDomains: [hooks.slack.com, acme.com, globex.com]}\n" + Self.breakGlass)
        let state = workspace.path("state.db")
        let run = try workspace.apply(config, state: state, ["--override", "webhookDomains", "--reason", "please"])
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("--override names 'webhookDomains': a mandatory policy cannot be overridden"))
        #expect(!FileManager.default.fileExists(atPath: state))

        try workspace.edit(config + "/platform.yaml", replacing: "globex.com]", with: "globex.com, initech.com]")
        let saved = try workspace.plan(config, state: state, ["--out", workspace.path("plan.bin")])
        #expect(saved.status == 1 && saved.stderr.contains("an overridable policy fails, so the plan was not saved"), "\(saved)")
        #expect(!FileManager.default.fileExists(atPath: workspace.path("plan.bin")))
        try "not a plan".write(toFile: workspace.path("saved.plan"), atomically: true, encoding: .utf8)
        let savedApply = try workspace.apply(workspace.path("saved.plan"), state: state, ["--override", "requiredMembers", "--reason", "y"])
        #expect(savedApply.status == 64 && savedApply.stderr.contains("--override applies when planning a folder, not to a saved plan"), "\(savedApply)")
    }

    @Test("removing more members than maxRemoval allows, or a protected resource, is judged on the plan against the state")
    func planRules() throws {
        let (workspace, config) = try Self.workspace(policies: """
            maxRemoval: {enforcement: overridable, kinds: {member: {percent: 25}}}
            protectedResources: {addresses: ["tenant/*/member/grace@*"], enforcement: advisory}
            """)
        let state = workspace.path("state.db")
        #expect(try workspace.apply(config, state: state).status == 0)
        // acme holds 7 members; removing grace and frank is 2 of 7 (28%), over 25%.
        try workspace.edit(config + "/tenants/acme.yaml", replacing: "  frank@acme.com: viewer\n", with: "")
        try workspace.edit(config + "/tenants/acme.yaml", replacing: "  grace@acme.com: billing-admin\n", with: "")
        try workspace.edit(config + "/tenants/acme.yaml", replacing: "    members:\n      grace@acme.com: lead\n      frank@acme.com: member\n", with: "    members: {}\n")
        let plan = try workspace.plan(config, state: state, ["--format", "json"])
        #expect(plan.status == 0, "\(plan)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        let checks = try #require(object["policyChecks"] as? [[String: Any]])
        let removal = try #require(checks.first { $0["policy"] as? String == "maxRemoval" })
        #expect(removal["status"] as? String == "fail")
        let violations = removal["violations"] as? [[String: Any]] ?? []
        #expect(violations.map { $0["message"] as? String } == ["the plan deletes 2 of the 7 members of tenant/acme, more than 25%"])
        let protected = try #require(checks.first { $0["policy"] as? String == "protectedResources" })
        #expect((protected["violations"] as? [[String: Any]])?.map { $0["address"] as? String } == ["tenant/acme/member/grace@acme.com"])
        let summary = object["policySummary"] as? [String: Any]
        #expect(summary?["blocking"] as? Int == 1 && summary?["mandatoryFailed"] as? Bool == false)
        let markdown = try workspace.plan(config, state: state, ["--format", "markdown"])
        #expect(markdown.stdout.contains("#### Policy checks"))
        #expect(markdown.stdout.contains("| ❌ **FAIL** | maxRemoval | overridable |"), "\(markdown.stdout)")
        #expect(try workspace.apply(config, state: state).status == 1)
        #expect(try workspace.apply(config, state: state, ["--override", "maxRemoval", "--reason", "offboarding the finance team"]).status == 0)
        #expect(try workspace.pythonVerify(state).status == 0)
    }
}

/// `orgctl schema --plan` is a valid draft 2020-12 schema that every golden plan (and a failure document) meets,
/// checked with Python's `jsonschema` (the reference implementation; .ci/run installs it), and that rejects what
/// the plan format does not allow.
@Suite("Plan JSON schema")
struct PlanSchemaTests {
    static let checker = """
        import json, sys
        try:
            import jsonschema
        except ImportError:
            print("MISSING jsonschema: pip install jsonschema (.ci/run installs it)")
            sys.exit(2)
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        for path in sys.argv[2:]:
            errors = list(validator.iter_errors(json.load(open(path))))
            print(("valid " if not errors else "invalid ") + path + ("" if not errors else ": " + errors[0].message[:200]))
        """

    static func realistic(_ golden: String) -> String {
        golden.replacingOccurrences(of: "<plan-id>", with: "0123456789abcdef")
            .replacingOccurrences(of: "<database-id>", with: "c90bbde10c41dadd454fbb44be517fe5")
            .replacingOccurrences(of: "<audit-head-hash>", with: String(repeating: "ab", count: 32))
    }

    static func check(_ workspace: Workspace, _ files: [String]) throws -> [String] {
        let schema = try workspace.run(["schema", "--plan"])
        try #require(schema.status == 0)
        try schema.stdout.write(toFile: workspace.path("plan.schema.json"), atomically: true, encoding: .utf8)
        try checker.write(toFile: workspace.path("check.py"), atomically: true, encoding: .utf8)
        // python3 from PATH, as .ci/run installs jsonschema for it (FormatSchemaTests does the same).
        let run = try workspace.run(["python3", workspace.path("check.py"), workspace.path("plan.schema.json")] + files, executable: "/usr/bin/env")
        try #require(run.status == 0, "\(run)")
        return run.stdout.lines.filter { !$0.isEmpty }
    }

    @Test("every golden plan.json, and plan's failure document, is valid under the published plan schema")
    func goldenPlansAreValid() throws {
        let workspace = try Workspace(name: "plan-schema")
        // The goldens hold placeholders for the ids that change with every run (GoldenPlanTests.normalizeJSON):
        // put back values of the real shape.
        var files: [String] = []
        for name in GoldenPlanTests.caseNames {
            let text = Self.realistic(try String(contentsOf: Paths.cases.appendingPathComponent(name).appendingPathComponent("plan.json"), encoding: .utf8))
            files.append(workspace.path("\(name).json"))
            try text.write(toFile: files[files.count - 1], atomically: true, encoding: .utf8)
        }
        #expect(files.count >= 12)
        let failure = try workspace.run(["plan", workspace.path("missing"), "--format", "json", "--state", workspace.path("s.db")])
        #expect(failure.status == 1)
        try failure.stdout.write(toFile: workspace.path("failure.json"), atomically: true, encoding: .utf8)
        files.append(workspace.path("failure.json"))
        let results = try Self.check(workspace, files)
        #expect(results.count == files.count)
        for line in results { #expect(line.hasPrefix("valid "), "\(line)") }
        #expect(try String(contentsOfFile: Paths.cases.appendingPathComponent("policy-checks/plan.json").path, encoding: .utf8).contains("\"policyChecks\""),
                "the policy golden case carries policy checks")
    }

    @Test("the schema rejects an unknown key, an unknown action, a policy check without its status, and a sensitive field with a value")
    func schemaRejects() throws {
        let workspace = try Workspace(name: "plan-schema-bad")
        let golden = Self.realistic(try String(contentsOfFile: Paths.cases.appendingPathComponent("policy-checks/plan.json").path, encoding: .utf8))
        let mutations: [(String, String)] = [
            ("\"formatVersion\" : 1,", "\"formatVersion\" : 1, \"surprise\" : true,"),
            ("\"action\" : \"delete\"", "\"action\" : \"destroy\""),
            ("\"status\" : \"pass\",", ""),
            ("\"formatVersion\" : 1", "\"formatVersion\" : 2"),
        ]
        var files: [String] = []
        for (index, (old, new)) in mutations.enumerated() {
            #expect(golden.contains(old), "the golden plan has no \(old)")
            let path = workspace.path("bad\(index).json")
            try golden.replacingOccurrences(of: old, with: new).write(toFile: path, atomically: true, encoding: .utf8)
            files.append(path)
        }
        let sensitive = Self.realistic(try String(contentsOfFile: Paths.cases.appendingPathComponent("secret-rotation/plan.json").path, encoding: .utf8))
        try sensitive.replacingOccurrences(of: "\"after\" : \"(sensitive)\"", with: "\"after\" : \"hunter2\"").write(
            toFile: workspace.path("leak.json"), atomically: true, encoding: .utf8)
        files.append(workspace.path("leak.json"))
        for line in try Self.check(workspace, files) { #expect(line.hasPrefix("invalid "), "\(line)") }
    }
}
