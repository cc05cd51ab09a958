import Foundation
import Testing

/// `orgctl access` on the examples, against answers worked out by hand from examples/config: the Platform's
/// catalog has 20 permissions; viewer is ["*.read"], admin ["apps.*", "users.*", …], acme's release-manager
/// ["apps.*", "teams.read"], guest [apps.read] with maxDuration 90d; acme's team sre is inside platform.
@Suite("Access")
struct AccessTests {
    static let reads = ["apikeys.read", "apps.read", "audit.read", "billing.read", "teams.read", "users.read", "webhooks.read"]

    static func applied() throws -> (Workspace, String, String) {
        let workspace = try Workspace(name: "access")
        let config = try workspace.copyExamples()
        let state = workspace.path("state.db")
        let run = try workspace.apply(config, state: state)
        try #require(run.status == 0, "\(run)")
        return (workspace, config, state)
    }

    static func json(_ run: Run) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run)")
    }

    @Test("effective permissions expand wildcards against the catalog: *.read for a viewer, apps.* for a custom role, a guest's one permission")
    func effectivePermissions() throws {
        let (workspace, config, state) = try Self.applied()
        for source in [["--state", state], ["--config", config]] {
            let frank = try Self.json(try workspace.run(["access", "frank@acme.com", "--tenant", "acme", "--format", "json"] + source))
            let permissions = (frank["permissions"] as? [[String: String]]) ?? []
            #expect(permissions.map { $0["permission"] ?? "" } == Self.reads)
            #expect(permissions.allSatisfy { $0["via"] == "*.read" })
            #expect(frank["ssoRequired"] as? Bool == true && frank["mfaRequired"] as? Bool == true)

            let erin = try workspace.run(["access", "erin@acme.com", "--tenant", "acme", "--no-color"] + source)
            #expect(erin.status == 0)
            #expect(erin.stdout.contains("  role: release-manager (custom role of the tenant): \"apps.*\", \"teams.read\""))
            #expect(erin.stdout.contains("  effective permissions (6 of 20):\n    apps.create  via \"apps.*\"\n    apps.delete  via \"apps.*\""))
            #expect(erin.stdout.contains("    teams.read  named\n"))
            #expect(erin.stdout.contains("  team: sre as member (inside platform)\n"), "nested teams show their parents")

            let carol = try Self.json(try workspace.run(["access", "carol@contractor.io", "--tenant", "acme", "--format", "json"] + source))
            #expect((carol["permissions"] as? [[String: String]])?.map { $0["permission"] ?? "" } == ["apps.read"])
            #expect(carol["expires"] as? String == "2027-01-31" && carol["expired"] as? Bool == false)
            #expect(carol["ssoRequired"] as? Bool == false, "a guest outside the tenant's domains does not sign in through the tenant's SSO")
        }
    }

    @Test("--can answers yes with exit 0 and the granting pattern, no with exit 4 and the reason; an expired guest holds nothing")
    func can() throws {
        let (workspace, _, state) = try Self.applied()
        let cases: [(String, String, Int32, String)] = [
            ("bob@acme.com", "users.remove", 0, "yes: role admin grants it through 'users.*'"),
            ("alice@acme.com", "billing.manage", 0, "yes: role owner grants it through '*'"),
            ("dave@acme.com", "apps.deploy", 0, "yes: role member names it"),
            ("frank@acme.com", "apps.delete", 4, "no: role viewer grants only *.read"),
            ("grace@acme.com", "apps.read", 4, "no: role billing-admin grants only billing.*, users.read"),
            ("mallory@acme.com", "apps.read", 4, "no: mallory@acme.com is not a member of tenant/acme"),
        ]
        for (email, permission, status, answer) in cases {
            let run = try workspace.run(["access", email, "--tenant", "acme", "--can", permission, "--state", state])
            #expect(run.status == status && run.stdout == answer + "\n", "\(run)")
        }
        // After 2027-01-31 carol's guest membership has expired: it grants nothing.
        let later = ["ORGCTL_NOW": "2027-02-01T00:00:00Z"]
        let expired = try workspace.run(["access", "carol@contractor.io", "--tenant", "acme", "--can", "apps.read", "--state", state], environment: later)
        #expect(expired.status == 4 && expired.stdout == "no: the membership expired on 2027-01-31\n", "\(expired)")
        let shown = try workspace.run(["access", "carol@contractor.io", "--tenant", "acme", "--state", state, "--no-color"], environment: later)
        #expect(shown.stdout.contains("expiry: expired on 2027-01-31, role maxDuration 90d: the membership grants nothing"))
        #expect(shown.stdout.contains("effective permissions (0 of 20)"))
        // An unknown permission is an error (exit 1) with a suggestion, never a silent "no".
        let unknown = try workspace.run(["access", "bob@acme.com", "--tenant", "acme", "--can", "apps.delet", "--state", state])
        #expect(unknown.status == 1 && unknown.stderr.contains("did you mean 'apps.delete'?"), "\(unknown)")
    }

    @Test("--who-can lists every holder and through what")
    func whoCan() throws {
        let (workspace, _, state) = try Self.applied()
        let run = try workspace.run(["access", "--tenant", "acme", "--who-can", "billing.manage", "--state", state, "--format", "json"])
        let members = (try Self.json(run)["members"] as? [[String: String]]) ?? []
        #expect(members == [["email": "alice@acme.com", "role": "owner", "via": "*"], ["email": "bob@acme.com", "role": "admin", "via": "billing.*"],
                            ["email": "grace@acme.com", "role": "billing-admin", "via": "billing.*"]])
        let reads = try workspace.run(["access", "--tenant", "acme", "--who-can", "audit.read", "--state", state])
        #expect(reads.stdout.hasPrefix("3 members of tenant/acme can audit.read:\n"), "\(reads.stdout)")  // alice (*), bob (named), frank (*.read)
        #expect(reads.stdout.contains("frank@acme.com  role viewer, via \"*.read\""))
    }

    @Test("access review: every member with permissions, teams, expiry, and who last changed the membership, in CSV, JSON and Markdown")
    func review() throws {
        let (workspace, config, state) = try Self.applied()
        try workspace.edit(config + "/tenants/acme.yaml", replacing: "  frank@acme.com: viewer\n", with: "  frank@acme.com: member\n")
        // An actor name that a spreadsheet would run as a formula.
        #expect(try workspace.apply(config, state: state, ["--actor", "=HYPERLINK(\"http://x\")"]).status == 0)
        let csv = try workspace.run(["access", "review", "--tenant", "acme", "--format", "csv", "--state", state])
        #expect(csv.status == 0)
        let lines = csv.stdout.lines.filter { !$0.isEmpty }
        #expect(lines.first == "tenant,email,role,role_kind,permissions,teams,expires,expired,last_changed,last_changed_by,last_action,last_source,last_plan")
        #expect(lines.count == 8, "a header and acme's 7 members")
        let frank = try #require(lines.first { $0.hasPrefix("acme,frank@acme.com,member,system,") })
        #expect(frank.contains(",2026-11-22T12:00:00Z,\"'=HYPERLINK(\"\"http://x\"\")\",update,test,"), "\(frank)")
        let carol = try #require(lines.first { $0.hasPrefix("acme,carol@contractor.io,guest,system,apps.read,,2027-01-31,false,") })
        #expect(carol.contains(",e2e,create,"))

        let json = try Self.json(try workspace.run(["access", "review", "--format", "json", "--state", state]))
        let members = (json["members"] as? [[String: Any]]) ?? []
        #expect(Set(members.compactMap { $0["tenant"] as? String }) == ["acme", "globex", "hooli", "initech"])
        let erin = try #require(members.first { $0["email"] as? String == "erin@acme.com" })
        #expect((erin["teams"] as? [[String: String]]) == [["team": "sre", "role": "member"]])
        #expect((erin["permissions"] as? [String])?.count == 6)
        #expect(erin["last_changed_by"] as? String == "e2e")

        let markdown = try workspace.run(["access", "review", "--tenant", "acme", "--state", state, "--format", "markdown"])
        #expect(markdown.stdout.contains("## `tenant/acme`"))
        #expect(markdown.stdout.contains("| carol@contractor.io | guest | apps.read |  | 2027-01-31 | 2026-11-22T12:00:00Z | e2e |"), "\(markdown.stdout)")
        #expect(markdown.stdout.contains("| erin@acme.com | release-manager (custom) |"))

        // From the configuration: no database, no audit columns.
        let fromConfig = try workspace.run(["access", "review", "--tenant", "acme", "--format", "csv", "--config", config])
        #expect(fromConfig.status == 0 && fromConfig.stdout.contains("acme,frank@acme.com,member,system,"))
        #expect(fromConfig.stdout.lines.dropFirst().filter { !$0.isEmpty }.allSatisfy { $0.hasSuffix(",,,,,") })
    }

    @Test("a wrong tenant, a non-member, or a missing database is an error with help, never an empty answer")
    func errors() throws {
        let (workspace, _, state) = try Self.applied()
        let tenant = try workspace.run(["access", "bob@acme.com", "--tenant", "acmee", "--state", state])
        #expect(tenant.status == 1 && tenant.stderr.contains("did you mean 'acme'?"), "\(tenant)")
        let member = try workspace.run(["access", "bobby@acme.com", "--tenant", "acme", "--state", state])
        #expect(member.status == 1 && member.stderr.contains("is not a member of tenant/acme"), "\(member)")
        let missing = try workspace.run(["access", "review", "--state", workspace.path("none.db")])
        #expect(missing.status == 1 && !FileManager.default.fileExists(atPath: workspace.path("none.db")))
        let usage = try workspace.run(["access", "bob@acme.com", "--state", state])
        #expect(usage.status == 64)
    }
}
