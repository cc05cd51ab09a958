import Foundation
import Testing

/// The policies a state was applied with are recorded in it (`orgctl_meta` key `policies`, and an audit entry at
/// address `policies`), so that a change of `policies:` alone is a change of the state: plan shows it, apply
/// writes it, and every plan saved before it is stale (docs/cli.md, "Saved plans and policies").
@Suite("Policy record")
struct PolicyRecordTests {
    static let frank = "tenant/acme/member/frank@acme.com"
    static let shipped = "protectedResources: {addresses: [role/owner, role/admin]}"
    static let protectingFrank = "protectedResources: {addresses: [role/owner, role/admin, \(frank)]}"

    /// The examples applied: the workspace, the configuration folder, the state and the apply's output.
    static func applied(_ backend: Backend) throws -> (Workspace, String, String, Run) {
        let workspace = try Workspace(name: "policy-record", backend: backend)
        let config = try workspace.copyExamples()
        let first = try workspace.apply(config, state: workspace.state)
        try #require(first.status == 0, "\(first)")
        return (workspace, config, workspace.state, first)
    }

    static func entry(_ workspace: Workspace, _ sequence: Int) throws -> [String: Any] {
        let entry = workspace.backend.sql(sqlite: "CAST(entry AS TEXT)", postgres: "convert_from(entry, 'UTF8')")
        let text = try workspace.sql(workspace.state, "SELECT \(entry) FROM orgctl_audit WHERE seq = \(sequence);")
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
    }

    @Test("a plan saved before a policy change that protects a member it deletes is refused as stale, and the member stays (review section A)",
          arguments: Backend.all)
    func savedPlanBeforePolicyChange(backend: Backend) throws {
        let (workspace, config, state, first) = try Self.applied(backend)
        #expect(first.stdout.contains("  + policies (digest "), "\(first.stdout)")
        #expect(first.stdout.contains("Plan: 103 to add, 0 to change, 0 to destroy, policies to record."), "\(first.stdout)")
        #expect(first.stdout.contains("Apply complete: 103 added, 0 changed, 0 destroyed, policies recorded. Audit entries 1–104."), "\(first.stdout)")

        // A pull request removes frank; its plan is saved for the apply on merge.
        let pr = try workspace.copy(URL(fileURLWithPath: config), as: "pr")
        try workspace.edit(pr + "/tenants/acme.yaml", replacing: "  frank@acme.com: viewer\n", with: "")
        try workspace.edit(pr + "/tenants/acme.yaml", replacing: "      frank@acme.com: member\n", with: "")
        let saved = try workspace.plan(pr, state: state, ["--out", workspace.path("old.plan")])
        #expect(saved.status == 0 && saved.stdout.contains("Plan: 0 to add, 0 to change, 2 to destroy."), "\(saved)")

        // Meanwhile main protects frank: a change of policies alone, which plan shows and apply records.
        try workspace.edit(config + "/platform.yaml", replacing: Self.shipped, with: Self.protectingFrank)
        let planned = try workspace.plan(config, state: state, ["--detailed-exitcode"])
        #expect(planned.status == 2, "\(planned)")
        let line = try #require(planned.stdout.split(separator: "\n").first { $0.contains(" policies (digest ") }.map(String.init), "\(planned.stdout)")
        #expect(line.wholeMatch(of: try Regex("  ~ policies \\(digest [0-9a-f]{12} -> [0-9a-f]{12}\\)  # protectedResources")) != nil, "\(line)")
        #expect(planned.stdout.contains("Plan: 0 to add, 0 to change, 0 to destroy, policies to update."), "\(planned.stdout)")
        // drift: a configuration change not yet applied (exit 2), in its text and metrics.
        let drift = try workspace.run(["drift", config, "--state", state, "--no-color", "--metrics", workspace.path("drift.prom")])
        #expect(drift.status == 2 && drift.stdout.contains("\n" + line + "\n"), "\(drift)")
        #expect(drift.stdout.contains("Drift: 0 changed, 0 created, 0 deleted outside orgctl; 1 configuration change not yet applied."), "\(drift)")
        #expect(try String(contentsOfFile: workspace.path("drift.prom"), encoding: .utf8).contains("orgctl_drift_pending_policies 1\n"))
        let applied = try workspace.apply(config, state: state)
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete: 0 added, 0 changed, 0 destroyed, policies updated. Audit entry 105."),
                "\(applied)")

        // The entry: address 'policies', the digests before and after, no personal data; both verifiers accept it.
        let entry = try Self.entry(workspace, 105)
        #expect(entry["action"] as? String == "update" && entry["address"] as? String == "policies", "\(entry)")
        let before = try #require(entry["before"] as? [String: Any]), after = try #require(entry["after"] as? [String: Any])
        let beforeRules = try #require(before["rules"] as? [String: String]), afterRules = try #require(after["rules"] as? [String: String])
        #expect(beforeRules.keys.sorted() == ["apiKeys", "maxRemoval", "mfaRequired", "protectedResources", "ssoRequired", "webhookDomains"])
        #expect(beforeRules.filter { afterRules[$0.key] != $0.value }.map(\.key) == ["protectedResources"])
        #expect(!String(describing: entry).contains("frank"), "the entry holds digests only")
        #expect(line.contains(String((before["digest"] as? String ?? "").dropFirst(7).prefix(12))), "\(line)")
        let recorded = try workspace.sql(state, "SELECT value FROM orgctl_meta WHERE key = 'policies';")
        #expect(recorded.contains(after["digest"] as? String ?? "-"), "\(recorded)")
        let verified = try workspace.pythonVerify(state)
        #expect(verified.status == 0 && verified.stdout.hasPrefix("ok: 105 entries"), "\(verified)")
        let verify = try workspace.run(["audit", "verify", "--state", state])
        #expect(verify.status == 0 && verify.stdout.hasPrefix("ok: 105 entries"), "\(verify)")

        // The plan saved before is stale, and frank stays.
        let old = try workspace.run(["apply", workspace.path("old.plan"), "--state", state, "--no-color"])
        #expect(old.status == 1, "\(old)")
        #expect(old.stderr.contains("error: the plan is stale: the state changed since it was planned, at these addresses; nothing was applied"), "\(old)")
        #expect(old.stderr.contains("\n  policies\n"), "\(old.stderr)")
        #expect(try workspace.sql(state, "SELECT count(*) FROM members WHERE email = 'frank@acme.com';") == "1\n")
        #expect(try workspace.auditCount(state) == 105)
        // Planned as it is, the pull request would put the old policies back, and its plan says so.
        let reverting = try workspace.plan(pr, state: state)
        #expect(reverting.stdout.contains("  ~ policies (digest ") && reverting.stdout.contains("2 to destroy, policies to update."), "\(reverting)")
        // Rebased on main, it is judged against the new policies.
        try FileManager.default.removeItem(atPath: pr + "/platform.yaml")
        try FileManager.default.copyItem(atPath: config + "/platform.yaml", toPath: pr + "/platform.yaml")
        let replanned = try workspace.plan(pr, state: state)
        #expect(replanned.status == 1 && replanned.stdout.contains("FAIL  protectedResources (mandatory)"), "\(replanned)")

        // Applying unchanged policies again writes nothing.
        let again = try workspace.apply(config, state: state)
        #expect(again.status == 0 && again.stdout.hasPrefix("No changes."), "\(again)")
        #expect(try workspace.auditCount(state) == 105)
    }

    @Test("a saved plan records the policy change it shows; a recorded value changed outside orgctl makes earlier plans stale and is recorded again",
          arguments: Backend.all)
    func savedPlanRecordsPolicies(backend: Backend) throws {
        let (workspace, config, state, _) = try Self.applied(backend)
        try workspace.edit(config + "/platform.yaml", replacing: Self.shipped, with: Self.protectingFrank)
        let json = try workspace.plan(config, state: state, ["--format", "json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json)")
        let change = try #require(document["policyChange"] as? [String: Any], "\(json.stdout)")
        #expect(change["action"] as? String == "update" && change["rules"] as? [String] == ["protectedResources"], "\(change)")
        let saved = try workspace.plan(config, state: state, ["--out", workspace.path("policies.plan")])
        #expect(saved.status == 0, "\(saved)")
        let shown = try workspace.run(["show", workspace.path("policies.plan"), "--no-color"])
        #expect(shown.stdout.contains("  ~ policies (digest "), "\(shown)")
        let applied = try workspace.run(["apply", workspace.path("policies.plan"), "--state", state, "--no-color"])
        #expect(applied.status == 0 && applied.stdout.contains("policies updated. Audit entry 105."), "\(applied)")
        let recorded = try workspace.sql(state, "SELECT value FROM orgctl_meta WHERE key = 'policies';")
        #expect(recorded.contains(change["after"] as? String ?? "-"), "\(recorded)")
        #expect(try workspace.plan(config, state: state).stdout.hasPrefix("No changes."))

        // A plan saved now pins the recorded policies: a value written outside orgctl since makes it stale.
        try workspace.edit(config + "/tenants/acme.yaml", replacing: "  frank@acme.com: viewer\n", with: "  frank@acme.com: admin\n")
        let pinned = try workspace.plan(config, state: state, ["--out", workspace.path("member.plan")])
        #expect(pinned.status == 0, "\(pinned)")
        try workspace.sql(state, "UPDATE orgctl_meta SET value = 'forged' WHERE key = 'policies';")
        let stale = try workspace.run(["apply", workspace.path("member.plan"), "--state", state, "--no-color"])
        #expect(stale.status == 1 && stale.stderr.contains("the plan is stale") && stale.stderr.contains("\n  policies\n"), "\(stale)")
        // The unreadable value reads as no record: the next apply records the configuration's again.
        let repaired = try workspace.apply(config, state: state)
        #expect(repaired.status == 0 && repaired.stdout.contains("  + policies (digest "), "\(repaired)")
        #expect(repaired.stdout.contains("Apply complete: 0 added, 1 changed, 0 destroyed, policies recorded. Audit entries 106–107."), "\(repaired)")
        #expect(try workspace.sql(state, "SELECT value FROM orgctl_meta WHERE key = 'policies';") == recorded)
    }

    @Test("removing every policy removes the record, audited; a configuration without policies records nothing", arguments: Backend.all)
    func removedPolicies(backend: Backend) throws {
        let (workspace, config, state, _) = try Self.applied(backend)
        let platform = config + "/platform.yaml"
        let text = try String(contentsOfFile: platform, encoding: .utf8)
        let start = try #require(text.range(of: "\npolicies:"))
        // The shipped policies are the last section of platform.yaml.
        try (String(text[..<start.lowerBound]) + "\n").write(toFile: platform, atomically: true, encoding: .utf8)
        let planned = try workspace.plan(config, state: state)
        #expect(planned.stdout.contains("  - policies (digest "), "\(planned)")
        #expect(planned.stdout.contains("  # the configuration declares none"), "\(planned)")
        let removed = try workspace.apply(config, state: state)
        #expect(removed.status == 0 && removed.stdout.contains("policies removed. Audit entry 105."), "\(removed)")
        let entry = try Self.entry(workspace, 105)
        #expect(entry["action"] as? String == "delete" && entry["after"] is NSNull, "\(entry)")
        #expect(try workspace.sql(state, "SELECT count(*) FROM orgctl_meta WHERE key = 'policies';") == "0\n")
        let again = try workspace.apply(config, state: state)
        #expect(again.status == 0 && again.stdout.hasPrefix("No changes."), "\(again)")
        #expect(try workspace.pythonVerify(state).status == 0)
    }
}
