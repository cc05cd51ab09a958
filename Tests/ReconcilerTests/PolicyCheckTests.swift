import Foundation
import Spec
import StateStore
import Testing

@testable import Reconciler

/// A configuration written to a temporary folder and loaded as `validate` loads it (clock pinned).
enum PolicyFixture {
    static let now = Date(timeIntervalSince1970: 1_795_867_200)  // 2026-11-22T12:00:00Z
    static let today = CalendarDate(parsing: "2026-11-22")!

    static let platform = """
        apiVersion: orgctl.dev/v1
        kind: Platform
        plans:
          free: {}
          enterprise: {features: [sso]}
        permissions:
          apps.read: {}
          apps.create: {}
        roles:
          owner: {permissions: ["*"]}
          member: {permissions: [apps.read]}
        events: [member.added]
        policies:

        """

    /// acme (enterprise) with two owners (and ops@platform.example, an owner too), SSO enforced, MFA required, a key and a webhook that pass every rule below.
    static func tenant(owners: Int = 2, sso: Bool = true, mfa: Bool = true, scopes: String = "[apps.read]", expires: String = "2027-01-31",
                       rate: String = "60/h", hook: String = "https://hooks.slack.com/x", breakglass: String = "owner") -> String {
        var members = (0..<owners).map { "  owner\($0)@acme.com: owner" }.joined(separator: "\n")
        members += "\n  bob@acme.com: member\n  ops@platform.example: \(breakglass)"
        return """
            apiVersion: orgctl.dev/v1
            kind: Tenant
            slug: acme
            name: Acme
            plan: enterprise
            security: {mfa: \(mfa ? "required" : "optional")}
            members:
            \(members)
            sso:
              enforce: \(sso)
              providers:
                g: {type: oidc, issuer: "https://accounts.google.com", clientId: x, clientSecret: {env: ACME_OIDC}}
            webhooks:
              hook: {url: "\(hook)", events: [member.added]}
            apiKeys:
              ci: {scopes: \(scopes), expires: \(expires), rateLimit: \(rate)}

            """
    }

    static func load(policies: String, tenant: String = tenant()) throws -> LoadResult {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("policies-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let indented = policies.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
        try (platform + indented + "\n").write(to: folder.appendingPathComponent("platform.yaml"), atomically: true, encoding: .utf8)
        try tenant.write(to: folder.appendingPathComponent("acme.yaml"), atomically: true, encoding: .utf8)
        return try ConfigurationLoader(now: now).load(path: folder.path)
    }

    static func configuration(policies: String, tenant: String = tenant()) throws -> Configuration {
        let result = try load(policies: policies, tenant: tenant)
        return try #require(result.configuration, "invalid: \(result.diagnostics.items.map(\.message))")
    }

    static func desired(_ configuration: Configuration) -> DesiredState {
        configuration.desiredState { _ in "hmac-sha256:00" }
    }
}

@Suite("policy checks")
struct PolicyCheckTests {
    /// Each rule, with a tenant that passes it and one that fails it at `address`.
    struct RuleCase: Sendable, CustomStringConvertible {
        var name: String
        var policy: String
        var failing: String
        var address: String
        var description: String { name }
    }

    static let cases: [RuleCase] = [
        RuleCase(name: "minimumOwners", policy: "{count: 2}", failing: PolicyFixture.tenant(owners: 0), address: "tenant/acme"),
        RuleCase(name: "requiredMembers", policy: "{members: [ops@platform.example], role: owner}",
                 failing: PolicyFixture.tenant(breakglass: "member"), address: "tenant/acme/member/ops@platform.example"),
        RuleCase(name: "ssoRequired", policy: "{plans: [enterprise]}", failing: PolicyFixture.tenant(sso: false), address: "tenant/acme"),
        RuleCase(name: "mfaRequired", policy: "{features: [sso]}", failing: PolicyFixture.tenant(mfa: false), address: "tenant/acme"),
        RuleCase(name: "apiKeys", policy: "{forbiddenScopes: [\"*\"]}", failing: PolicyFixture.tenant(scopes: "[\"*\"]"), address: "tenant/acme/apikey/ci"),
        RuleCase(name: "apiKeys", policy: "{maxLifetime: 90d}", failing: PolicyFixture.tenant(expires: "2027-02-21"), address: "tenant/acme/apikey/ci"),
        RuleCase(name: "apiKeys", policy: "{maxRateLimit: {enterprise: 1/m}}", failing: PolicyFixture.tenant(rate: "61/h"), address: "tenant/acme/apikey/ci"),
        RuleCase(name: "webhookDomains", policy: "{allowedDomains: [slack.com]}", failing: PolicyFixture.tenant(hook: "https://example.com/x"),
                 address: "tenant/acme/webhook/hook"),
    ]

    static let levels = Enforcement.allCases

    @Test("every configuration rule at every enforcement level: passes on the good tenant, fails at the address on the bad one",
          arguments: cases, levels)
    func configurationRule(_ rule: RuleCase, _ level: Enforcement) throws {
        let policy = String(rule.policy.dropLast()) + ", enforcement: \(level.rawValue)}"
        let passing = Reconciler.policyChecks(try PolicyFixture.configuration(policies: "\(rule.name): \(policy)"), today: PolicyFixture.today)
        #expect(passing.checks.map(\.name) == [rule.name])
        #expect(passing.checks.allSatisfy { $0.passed && $0.judged && $0.enforcement == level && $0.status == "pass" })
        #expect(passing.blocking.isEmpty && !passing.mandatoryFailed)

        let failing = Reconciler.policyChecks(try PolicyFixture.configuration(policies: "\(rule.name): \(policy)", tenant: rule.failing),
                                              today: PolicyFixture.today)
        let check = try #require(failing.checks.first)
        #expect(check.status == "fail")
        #expect(check.violations.map(\.address) == [rule.address])
        #expect(check.violations.allSatisfy { $0.location?.file.hasSuffix("acme.yaml") == true })
        #expect(failing.mandatoryFailed == (level == .mandatory))
        #expect(failing.blocking.count == (level == .advisory ? 0 : 1))
        // An override lets an overridable failure through, and nothing else.
        var overridden = failing
        let unmatched = overridden.override([rule.name], reason: "ticket 42")
        #expect(unmatched == (level == .overridable ? [] : [rule.name]))
        #expect(overridden.blocking.count == (level == .mandatory ? 1 : 0))
    }

    static let removalPolicies = "maxRemoval: {enforcement: overridable, kinds: {member: {percent: 25, count: 3}}}\nprotectedResources: {addresses: [\"tenant/*/member/bob@*\"]}"

    @Test("plan rules: removals over the share or count, and deleting a protected address, fail; not judged without a plan",
          arguments: [(removed: 0, removal: true, protected: true), (removed: 1, removal: true, protected: true),
                      (removed: 2, removal: false, protected: true), (removed: 5, removal: false, protected: false)])
    func planRules(removed: Int, removal: Bool, protected: Bool) throws {
        // Stored: 4 owners, bob and ops (6 members); the plan removes `removed` of them (bob last).
        let before = try PolicyFixture.configuration(policies: Self.removalPolicies, tenant: PolicyFixture.tenant(owners: 4))
        let stored = Fixture.stored(PolicyFixture.desired(before).resources)
        var tenant = PolicyFixture.tenant(owners: 4 - min(removed, 4))
        if removed > 4 { tenant = tenant.replacingOccurrences(of: "  bob@acme.com: member\n", with: "") }
        let after = try PolicyFixture.configuration(policies: Self.removalPolicies, tenant: tenant)
        let plan = Reconciler.plan(desired: PolicyFixture.desired(after), stored: stored)
        #expect(plan.count(.delete) == removed)
        let report = Reconciler.policyChecks(after, today: PolicyFixture.today, plan: plan, stored: stored)
        let byName = Dictionary(report.checks.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byName["maxRemoval"]?.passed == removal, "\(byName["maxRemoval"]?.violations ?? [])")
        #expect(byName["protectedResources"]?.passed == protected)
        if !protected { #expect(byName["protectedResources"]?.violations.map(\.address) == ["tenant/acme/member/bob@acme.com"]) }
        if removed == 5 {
            // 5 > 3 and 5 of 6 > 25%: both limits are reported, at the tenant.
            #expect(byName["maxRemoval"]?.violations.count == 2)
            #expect(byName["maxRemoval"]?.violations.allSatisfy { $0.address == "tenant/acme" } == true)
        }
        let unjudged = Reconciler.policyChecks(after, today: PolicyFixture.today)
        #expect(unjudged.checks.allSatisfy { !$0.judged && $0.passed && $0.status == "not-judged" })
    }

    @Test("a tenant's own policy applies to it on top of the Platform's, and a weaker one is an error at its value")
    func tenantPolicies() throws {
        let strict = PolicyFixture.tenant(owners: 1) + "policies:\n  minimumOwners: {count: 3}\n"
        let configuration = try PolicyFixture.configuration(policies: "minimumOwners: {count: 2, enforcement: advisory}", tenant: strict)
        let report = Reconciler.policyChecks(configuration, today: PolicyFixture.today)
        #expect(report.checks.map { "\($0.scope) \($0.name) \($0.status)" } == ["platform minimumOwners pass", "tenant/acme minimumOwners fail"])
        #expect(report.mandatoryFailed)

        for (own, message) in [
            ("minimumOwners: {count: 1}", "fewer than the Platform's minimumOwners of 2"),
            ("minimumOwners: {count: 2, enforcement: advisory}", "weaker than the Platform's mandatory"),
        ] {
            let weaker = PolicyFixture.tenant() + "policies:\n  \(own)\n"
            let result = try PolicyFixture.load(policies: "minimumOwners: {count: 2}", tenant: weaker)
            let found = result.diagnostics.items.filter { $0.id == "spec.policy-weaker" }
            #expect(found.count == 1 && found[0].message.contains(message), "\(found.map(\.message))")
            #expect(found.first?.location?.line == 21)  // the tenant's own value
            #expect(result.configuration == nil)
        }
    }

    @Test("a required member outside the tenant's domains is not a domain error")
    func requiredMembersAreExemptFromDomains() throws {
        let tenant = PolicyFixture.tenant().replacingOccurrences(of: "plan: enterprise\n", with: "plan: enterprise\ndomains: [acme.com]\n")
        let result = try PolicyFixture.load(policies: "requiredMembers: {members: [ops@platform.example]}", tenant: tenant)
        #expect(result.configuration != nil, "\(result.diagnostics.items.map(\.message))")
        let without = try PolicyFixture.load(policies: "minimumOwners: {count: 1}", tenant: tenant)
        #expect(without.diagnostics.items.contains { $0.id == "spec.member-domain" && $0.message.contains("ops@platform.example") })
    }

    @Test("webhook domains: a host is allowed only as the domain itself or a name below it, never by a look-alike suffix or prefix",
          arguments: [("https://hooks.slack.com/x", true), ("https://slack.com/x", true), ("https://HOOKS.Slack.com:443/x", true),
                      ("https://evilslack.com/x", false), ("https://slack.com.evil.example/x", false), ("https://hooks.slack.co/x", false)])
    func webhookHosts(_ url: String, _ allowed: Bool) throws {
        let configuration = try PolicyFixture.configuration(policies: "webhookDomains: {allowedDomains: [slack.com]}",
                                                            tenant: PolicyFixture.tenant(hook: url))
        let report = Reconciler.policyChecks(configuration, today: PolicyFixture.today)
        #expect(report.checks.first?.passed == allowed, "\(report.checks.first?.violations ?? [])")
    }

    @Test("rates compare across units; dates count days across months and leap years")
    func arithmetic() {
        #expect(Rate(parsing: "61/h")!.perDay > Rate(parsing: "1/m")!.perDay)
        #expect(Rate(parsing: "60/h")!.perDay == Rate(parsing: "1/m")!.perDay)
        #expect(CalendarDate(parsing: "1970-01-01")!.dayNumber == 0)
        #expect(CalendarDate(parsing: "2028-03-01")!.dayNumber - CalendarDate(parsing: "2028-02-28")!.dayNumber == 2)
        for text in ["2026-11-22", "2000-02-29", "2027-12-31", "1999-03-01"] {
            let date = CalendarDate(parsing: text)!
            #expect(CalendarDate(dayNumber: date.dayNumber) == date)
        }
    }
}
