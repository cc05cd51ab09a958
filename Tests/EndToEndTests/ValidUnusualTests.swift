import Foundation
import Testing

/// Valid but unusual configurations (Tests/SpecTests/Fixtures/valid-unusual and Tests/Hostile/valid), plus
/// generated ones (300 files of one tenant each, one file of 2,000 tenant documents), through the real
/// binary: validate accepts them, apply writes them, and a second plan finds nothing to do. A strict tool
/// that refuses legitimate input is as broken as one that accepts garbage.
@Suite("Valid unusual configurations")
struct ValidUnusualTests {
    static let perFile = 300
    static let inOneFile = 2_000

    @Test("unusual but valid configurations are accepted, applied as written, and then stable")
    func acceptedAndStable() throws {
        let workspace = try Workspace(secrets: [:], name: "valid-unusual")
        let config = try workspace.copy(Paths.packageRoot.appendingPathComponent("Tests/SpecTests/Fixtures/valid-unusual"), as: "config")
        _ = try workspace.copy(Paths.packageRoot.appendingPathComponent("Tests/Hostile/valid/tenants"), as: "config/tenants/extra")
        try FileManager.default.createDirectory(atPath: config + "/tenants/per-file", withIntermediateDirectories: true)
        for i in 0..<Self.perFile {
            try Data(Self.tenant("p-\(i)").utf8).write(to: URL(fileURLWithPath: config + "/tenants/per-file/p-\(i).yaml"))
        }
        var bulk = "# \(Self.inOneFile) tenants in one file\n"
        bulk.reserveCapacity(Self.inOneFile * 160)
        for i in 0..<Self.inOneFile { bulk += "---\n" + Self.tenant("bulk-\(i)") }
        try Data(bulk.utf8).write(to: URL(fileURLWithPath: config + "/tenants/bulk.yaml"))
        let tenants = 12 + Self.perFile + Self.inOneFile

        let validate = try workspace.run(["validate", "config", "--no-color"])
        #expect(validate.status == 0 && validate.stdout.hasPrefix("valid: \(tenants) tenants, "), "\(validate.description.prefix(3000))")

        let state = workspace.path("state.db")
        let plan = try workspace.plan("config", state: state, ["--out", workspace.path("first.plan")])
        #expect(plan.status == 0, "\(plan.description.prefix(3000))")
        let apply = try workspace.apply(workspace.path("first.plan"), state: state)
        #expect(apply.status == 0 && apply.stdout.contains("Apply complete: "), "\(apply.description.prefix(3000))")
        #expect(try workspace.mode(state) == 0o600)
        #expect(try workspace.mode(workspace.path("first.plan")) == 0o600)

        let again = try workspace.plan("config", state: state, ["--detailed-exitcode"])
        #expect(again.status == 0, "a second plan should find nothing to do: \(again.description.prefix(3000))")

        // Values are stored exactly as written: YAML 1.1 booleans as strings, Unicode unchanged, BOM and CR gone.
        let names = try workspace.sqlite(state, "SELECT slug || '=' || name FROM tenants WHERE slug IN ('yes', 'doc-two', 'bom-crlf', 'tabs', 'crlf') ORDER BY slug;")
        #expect(names.lines.filter { !$0.isEmpty } == ["bom-crlf=Bom — CRLF", "crlf=on", "doc-two=Ünïcödé — 二", "tabs=yes", "yes=no"])
        #expect(try workspace.sqlite(state, "SELECT count(*) FROM tenants;").trimmingCharacters(in: .whitespacesAndNewlines) == "\(tenants)")
        let verify = try workspace.run(["audit", "verify", "--state", state])
        #expect(verify.status == 0, "\(verify)")
    }

    static func tenant(_ slug: String) -> String {
        """
        apiVersion: orgctl.dev/v1
        kind: Tenant
        slug: \(slug)
        name: "Tenant \(slug) — ok"
        plan: free
        members:
          owner@\(slug).example.org: owner
          yes@\(slug).example.org: member

        """
    }
}
