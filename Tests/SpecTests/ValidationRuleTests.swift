import Foundation
import Spec
import Testing

/// Rules that span documents: references, features and quotas against plans, membership,
/// teams, status and expiry.
@Suite struct ValidationRuleTests {
    static let oidc = "providers:\n    g: {type: oidc, issuer: \"https://accounts.google.com\", clientId: x, clientSecret: {env: G}}"

    static let references: [RuleCase] = [
        RuleCase(
            "an unknown plan with a near name", valid: tenant(plan: "business"), invalid: tenant(plan: "1️⃣busines"),
            "spec.unknown-plan", help: "did you mean 'business'?",
            message: "tenant 'acme' names plan 'busines', which the Platform does not declare"),
        RuleCase(
            "an unknown plan far from every plan", valid: tenant(plan: "free"), invalid: tenant(plan: "1️⃣gold"),
            "spec.unknown-plan", help: "use one of: business, enterprise, free"),
        RuleCase(
            "a member with an unknown role", valid: tenant(members: "alice@acme.com: owner\nbob@acme.com: admin"),
            invalid: tenant(members: "alice@acme.com: owner\nbob@acme.com: 1️⃣admn"),
            "spec.unknown-role", help: "did you mean 'admin'?", message: "member 'bob@acme.com' names role 'admn', which does not exist"),
        RuleCase(
            "a member with an unknown role in map form", valid: tenant(members: "alice@acme.com: owner\nbob@acme.com: {role: auditor}", "roles:\n  auditor: {permissions: [audit.read]}"),
            invalid: tenant(members: "alice@acme.com: owner\nbob@acme.com: {role: 1️⃣auditr}", "roles:\n  auditor: {permissions: [audit.read]}"),
            "spec.unknown-role", help: "did you mean 'auditor'?"),
        RuleCase(
            "a custom role with a misspelt permission", valid: tenant("roles:\n  auditor: {permissions: [audit.read]}"),
            invalid: tenant("roles:\n  auditor: {permissions: [1️⃣audit.reed]}"),
            "spec.unknown-permission", help: "did you mean 'audit.read'?",
            message: "role 'auditor' grants 'audit.reed', which matches no permission in the catalog"),
        RuleCase(
            "a wildcard that matches no permission", valid: tenant("roles:\n  dev: {permissions: [\"apps.*\", \"*.read\", \"*\"]}"),
            invalid: tenant("roles:\n  dev: {permissions: [\"apps.*\", 1️⃣\"deploy.*\"]}"),
            "spec.unknown-permission", help: "declare it under the Platform's 'permissions', or use a pattern such as apps.*"),
        RuleCase(
            "a suffix wildcard that matches no permission", valid: tenant("roles:\n  dev: {permissions: [\"*.create\"]}"),
            invalid: tenant("roles:\n  dev: {permissions: [1️⃣\"*.write\"]}"), "spec.unknown-permission"),
        RuleCase(
            "a system role with an unknown permission",
            valid: basePlatform,
            invalid: basePlatform.replacingOccurrences(of: "member: {permissions: [apps.read, apps.create]}", with: "member: {permissions: [apps.read, 1️⃣apps.craete]}"),
            "spec.unknown-permission", help: "did you mean 'apps.create'?", document: .platform),
        RuleCase(
            "an API key with an unknown scope", valid: tenant("apiKeys:\n  ci: {scopes: [apps.create, \"users.*\"]}"),
            invalid: tenant("apiKeys:\n  ci: {scopes: [apps.create, 1️⃣users.delete]}"),
            "spec.unknown-permission", message: "API key 'ci' grants 'users.delete'"),
        RuleCase(
            "a webhook event that is misspelt", valid: tenantWithWebhook(events: "[member.added, \"team.*\"]"),
            invalid: tenantWithWebhook(events: "[1️⃣member.add]"),
            "spec.unknown-event", help: "did you mean 'member.added'?",
            message: "webhook 'hook' subscribes to 'member.add', which matches no Platform event"),
        RuleCase(
            "a webhook event wildcard that matches nothing", valid: tenantWithWebhook(events: "[\"member.*\"]"),
            invalid: tenantWithWebhook(events: "[1️⃣\"billing.*\"]"), "spec.unknown-event",
            help: "declare the event under the Platform's 'events'"),
        RuleCase(
            "a team with an unknown parent", valid: tenant("teams:\n  platform: {}\n  sre: {parent: platform}"),
            invalid: tenant("teams:\n  platform: {}\n  sre: {parent: 1️⃣platfrom}"),
            "spec.unknown-team", help: "did you mean 'platform'?",
            message: "team 'sre' names parent 'platfrom', which this tenant does not declare"),
        RuleCase(
            "a team member who is not a tenant member",
            valid: tenant(members: "alice@acme.com: owner\nbob@acme.com: member", "teams:\n  core:\n    members: {bob@acme.com: member}"),
            invalid: tenant(members: "alice@acme.com: owner\nbob@acme.com: member", "teams:\n  core:\n    members: {1️⃣bobb@acme.com: member}"),
            "spec.unknown-member", help: "did you mean 'bob@acme.com'?",
            message: "team 'core' lists 'bobb@acme.com', who is not a member of tenant 'acme'"),
        RuleCase(
            "an unknown JIT default role", valid: tenant("sso:\n  jit: {enabled: true, defaultRole: member}"),
            invalid: tenant("sso:\n  jit: {enabled: true, defaultRole: 1️⃣membr}"),
            "spec.unknown-role", help: "did you mean 'member'?", message: "sso.jit.defaultRole names role 'membr'"),
        RuleCase(
            "owner as the JIT default role", valid: tenant("sso:\n  jit: {enabled: true, defaultRole: viewer}"),
            invalid: tenant("sso:\n  jit: {enabled: true, defaultRole: 1️⃣owner}"), "spec.jit-owner",
            help: "give new SSO users a least-privilege role such as member or viewer"),
        RuleCase(
            "a custom role named like a system role", valid: tenant("roles:\n  admins: {permissions: [\"*\"]}"),
            invalid: tenant("roles:\n  1️⃣admin: {permissions: [\"*\"]}"), "spec.role-shadows-system",
            message: "custom role 'admin' has the name of a system role"),
        RuleCase(
            "a plan with an unknown feature",
            valid: basePlatform,
            invalid: basePlatform.replacingOccurrences(of: "[sso, custom-roles, ip-allowlist, audit-export]", with: "[sso, custom-roles, 1️⃣ip-allowlst, audit-export]"),
            "spec.unknown-feature", help: "did you mean 'ip-allowlist'?", message: "plan 'enterprise' names unknown feature 'ip-allowlst'",
            document: .platform),
    ]

    @Test(arguments: references) func reference(_ rule: RuleCase) throws { try rule.check() }

    static let planLimits: [RuleCase] = [
        RuleCase(
            "SSO on a plan without sso", valid: tenant(plan: "business", "sso: {enforce: false}"),
            invalid: tenant(plan: "free", "sso: 1️⃣{enforce: false}"), "spec.feature-not-in-plan",
            help: "move the tenant to a plan with 'sso', or remove SSO",
            message: "tenant 'acme' uses SSO, but plan 'free' lacks feature 'sso'"),
        RuleCase(
            "custom roles on a plan without custom-roles", valid: tenant(plan: "business", "roles:\n  auditor: {permissions: [audit.read]}"),
            invalid: tenant(plan: "free", "roles:\n  1️⃣auditor: {permissions: [audit.read]}"), "spec.feature-not-in-plan",
            message: "uses custom roles, but plan 'free' lacks feature 'custom-roles'"),
        RuleCase(
            "an IP allowlist on a plan without ip-allowlist", valid: tenant(plan: "enterprise", "security: {ipAllowlist: [203.0.113.0/24]}"),
            invalid: tenant(plan: "business", "security: {ipAllowlist: [1️⃣203.0.113.0/24]}"), "spec.feature-not-in-plan",
            message: "uses an IP allowlist, but plan 'business' lacks feature 'ip-allowlist'"),
        RuleCase(
            "more members than seats", valid: tenant(plan: "free", members: "alice@acme.com: owner\nb@acme.com: member\nc@acme.com: member"),
            invalid: tenant(plan: "free", members: "1️⃣alice@acme.com: owner\nb@acme.com: member\nc@acme.com: member\nd@acme.com: member"),
            "spec.quota-exceeded", help: "raise quotas.seats for this tenant, or move it to a larger plan",
            message: "tenant 'acme' declares 4 members, more than its 'seats' quota of 3"),
        RuleCase(
            "a tenant seats override above the plan's lifts the limit",
            valid: tenant(plan: "free", members: "alice@acme.com: owner\nb@acme.com: member\nc@acme.com: member\nd@acme.com: member", "quotas: {seats: unlimited}"),
            invalid: tenant(plan: "enterprise", members: "1️⃣alice@acme.com: owner\nb@acme.com: member", "quotas: {seats: 1}"),
            "spec.quota-exceeded", message: "declares 2 members, more than its 'seats' quota of 1"),
        RuleCase(
            "more teams than the plan allows", valid: tenant(plan: "free", "teams:\n  a: {}\n  b: {}"),
            invalid: tenant(plan: "free", "teams:\n  1️⃣a: {}\n  b: {}\n  c: {}"), "spec.quota-exceeded",
            message: "declares 3 teams, more than its 'teams' quota of 2"),
        RuleCase(
            "more webhooks than the plan allows",
            valid: tenant(plan: "free", "webhooks:\n  a: {url: \"https://a.example.com\", events: [member.added]}"),
            invalid: tenant(plan: "free", "webhooks:\n  1️⃣a: {url: \"https://a.example.com\", events: [member.added]}\n  b: {url: \"https://b.example.com\", events: [member.added]}"),
            "spec.quota-exceeded", message: "declares 2 webhooks, more than its 'webhooks' quota of 1"),
        RuleCase(
            "more API keys than the plan allows", valid: tenant(plan: "free", "apiKeys:\n  a: {scopes: [apps.read]}"),
            invalid: tenant(plan: "free", "apiKeys:\n  1️⃣a: {scopes: [apps.read]}\n  b: {scopes: [apps.read]}"),
            "spec.quota-exceeded", message: "declares 2 API keys, more than its 'apiKeys' quota of 1"),
        RuleCase(
            "a team quota above the tenant's", valid: tenant(plan: "business", "teams:\n  core: {quotas: {apps: 10}}"),
            invalid: tenant(plan: "business", "teams:\n  core: {quotas: {apps: 1️⃣11}}"), "spec.quota-exceeded",
            help: "lower the team quota to at most 10", message: "team 'core' quota 'apps' of 11 exceeds the tenant's 10"),
        RuleCase(
            "an unlimited team quota under a limited tenant", valid: tenant(plan: "enterprise", "teams:\n  core: {quotas: {apps: unlimited}}"),
            invalid: tenant(plan: "business", "teams:\n  core: {quotas: {apps: 1️⃣unlimited}}"), "spec.quota-exceeded",
            help: "give the team a limit of at most 10", message: "team 'core' quota 'apps' is unlimited but the tenant's is 10"),
        RuleCase(
            "a team quota above the tenant's override", valid: tenant(plan: "enterprise", "quotas: {storage: 2TiB}\nteams:\n  core: {quotas: {storage: 2TiB}}"),
            invalid: tenant(plan: "enterprise", "quotas: {storage: 1GiB}\nteams:\n  core: {quotas: {storage: 1️⃣2GiB}}"), "spec.quota-exceeded",
            message: "team 'core' quota 'storage' of 2GiB exceeds the tenant's 1GiB"),
    ]

    @Test(arguments: planLimits) func planLimit(_ rule: RuleCase) throws { try rule.check() }

    static let membership: [RuleCase] = [
        RuleCase(
            "a member outside the tenant's domains", valid: tenant(members: "alice@acme.com: owner\nBob@ACME.com: admin"),
            invalid: tenant(members: "alice@acme.com: owner\n1️⃣bob@other.com: admin"), "spec.member-domain",
            help: "add 'other.com' to domains, or give the member a guest role with an expiry",
            message: "member 'bob@other.com' is outside the tenant's domains"),
        RuleCase(
            "a guest is exempt from the domain rule but needs an expiry",
            valid: tenant(members: "alice@acme.com: owner\ncarol@contractor.io: {role: guest, expires: 2026-12-01}"),
            invalid: tenant(members: "alice@acme.com: owner\n1️⃣carol@contractor.io: guest"), "spec.guest-expiry",
            help: "write the member as {role: guest, expires: YYYY-MM-DD}",
            message: "member 'carol@contractor.io' has guest role 'guest' but no expiry"),
        RuleCase(
            "a custom role with maxDuration is a guest role",
            valid: tenant(members: "alice@acme.com: owner\ndan@agency.io: {role: contractor, expires: 2026-12-01}", "roles:\n  contractor: {permissions: [apps.read], maxDuration: 14d}"),
            invalid: tenant(members: "alice@acme.com: owner\n1️⃣dan@agency.io: contractor", "roles:\n  contractor: {permissions: [apps.read], maxDuration: 14d}"),
            "spec.guest-expiry"),
        RuleCase(
            "a guest membership ends at most maxDuration after today (built in)",
            valid: tenant(members: "alice@acme.com: owner\ndan@agency.io: {role: contractor, expires: 2026-12-06}", "roles:\n  contractor: {permissions: [apps.read], maxDuration: 14d}"),
            invalid: tenant(members: "alice@acme.com: owner\ndan@agency.io: {role: contractor, expires: 1️⃣2026-12-07}", "roles:\n  contractor: {permissions: [apps.read], maxDuration: 14d}"),
            "spec.guest-max-duration", help: "set expires to 2026-12-06 or earlier, or raise the role's maxDuration",
            message: "membership of 'dan@agency.io' expires on 2026-12-07, further away than role 'contractor' allows (maxDuration 14d: at most 2026-12-06)"),
        RuleCase(
            "an expired membership", valid: tenant(members: "alice@acme.com: owner\ncarol@contractor.io: {role: guest, expires: 2026-11-22}"),
            invalid: tenant(members: "alice@acme.com: owner\ncarol@contractor.io: {role: guest, expires: 1️⃣2026-11-21}"),
            "spec.member-expired", .warning, help: "remove the member, or extend the expiry",
            message: "membership of 'carol@contractor.io' expired on 2026-11-21"),
        RuleCase(
            "e-mail keys that differ only in case", valid: tenant(members: "alice@acme.com: owner\nbob@acme.com: admin"),
            invalid: tenant(members: "alice@acme.com: owner\n1️⃣Alice@ACME.com: admin"), "spec.duplicate-key",
            help: "remove one of the two entries", message: "member 'alice@acme.com' is listed twice in the tenant's members (e-mail addresses ignore case)"),
        RuleCase(
            "the same e-mail key twice", valid: tenant(members: "alice@acme.com: owner"),
            invalid: tenant(members: "alice@acme.com: owner\n1️⃣alice@acme.com: admin"), "spec.duplicate-key"),
        RuleCase(
            "team member keys that differ only in case",
            valid: tenant(members: "alice@acme.com: owner\nbob@acme.com: member", "teams:\n  core:\n    members: {alice@acme.com: lead, bob@acme.com: member}"),
            invalid: tenant(members: "alice@acme.com: owner", "teams:\n  core:\n    members: {alice@acme.com: lead, 1️⃣ALICE@acme.com: member}"),
            "spec.duplicate-key", message: "member 'alice@acme.com' is listed twice in team 'core' (e-mail addresses ignore case)"),
        RuleCase(
            "a tenant without an owner", valid: tenant(status: "suspended", members: "bob@acme.com: admin"),
            invalid: "apiVersion: orgctl.dev/v1\nkind: Tenant\nslug: 1️⃣acme\nname: Acme\nplan: free\nmembers:\n  bob@acme.com: admin\n",
            "spec.no-owner", help: "give at least one member the role owner, so the tenant is not locked out",
            message: "tenant 'acme' has no member with role 'owner'"),
        RuleCase(
            "an empty member list has no owner", valid: tenant(status: "suspended", members: "{}"),
            invalid: "apiVersion: orgctl.dev/v1\nkind: Tenant\nslug: 1️⃣acme\nname: Acme\nplan: free\nmembers: {}\n", "spec.no-owner"),
    ]

    @Test(arguments: membership) func membershipRule(_ rule: RuleCase) throws { try rule.check() }

    static let teamsAndStatus: [RuleCase] = [
        RuleCase(
            "two teams that are each other's parent", valid: tenant("teams:\n  a: {parent: b}\n  b: {}"),
            invalid: tenant("teams:\n  a: {parent: 1️⃣b}\n  b: {parent: a}"), "spec.team-cycle",
            help: "remove 'parent' from one of these teams", message: "teams form a cycle: a -> b -> a"),
        RuleCase(
            "a team that is its own parent", valid: tenant("teams:\n  a: {}"), invalid: tenant("teams:\n  a: {parent: 1️⃣a}"),
            "spec.team-cycle", message: "teams form a cycle: a -> a"),
        RuleCase(
            "a trial without an end date", valid: tenant(status: "trial", "trialEnds: 2027-01-31"),
            invalid: "apiVersion: orgctl.dev/v1\nkind: Tenant\nslug: 1️⃣acme\nname: Acme\nplan: free\nstatus: trial\nmembers: {alice@acme.com: owner}\n",
            "spec.trial-ends", help: "add 'trialEnds: YYYY-MM-DD'", message: "tenant 'acme' has status trial but no trialEnds"),
        RuleCase(
            "an end date without a trial", valid: tenant(status: "active"), invalid: tenant(status: "active", "trialEnds: 1️⃣2027-01-31"),
            "spec.trial-ends", help: "set 'status: trial' or remove trialEnds", message: "trialEnds applies only to status trial"),
        RuleCase(
            "an end date without any status", valid: tenant(), invalid: tenant("trialEnds: 1️⃣2027-01-31"), "spec.trial-ends"),
        RuleCase(
            "a trial that has ended", valid: tenant(status: "trial", "trialEnds: 2026-11-22"),
            invalid: tenant(status: "trial", "trialEnds: 1️⃣2026-11-21"), "spec.trial-ended", .warning,
            message: "the trial of tenant 'acme' ended on 2026-11-21"),
        RuleCase(
            "SSO enforced without a provider", valid: tenant("sso:\n  enforce: true\n  " + oidc),
            invalid: tenant("sso: 1️⃣{enforce: true}"), "spec.sso-enforce",
            help: "declare a provider under sso.providers, or set enforce: false",
            message: "sso.enforce is true but no provider is declared"),
        RuleCase(
            "SSO enforced for a tenant without domains", valid: tenant("sso:\n  enforce: true\n  " + oidc),
            invalid: tenant(domains: nil, "sso:\n  1️⃣enforce: true\n  " + oidc), "spec.sso-enforce", .warning,
            help: "add domains, or set enforce: false"),
        RuleCase(
            "an API key past its expiry", valid: tenant("apiKeys:\n  ci: {scopes: [apps.read], expires: 2026-11-22}"),
            invalid: tenant("apiKeys:\n  ci: {scopes: [apps.read], expires: 1️⃣2026-11-21}"), "spec.apikey-expired", .warning,
            help: "remove the key, or rotate it with a new expiry", message: "API key 'ci' expired on 2026-11-21"),
    ]

    @Test(arguments: teamsAndStatus) func teamOrStatusRule(_ rule: RuleCase) throws { try rule.check() }

    @Test func duplicateMemberNotePointsAtTheFirstEntry() throws {
        let scratch = Scratch.with(tenant: tenant(members: "alice@acme.com: owner\n1️⃣Alice@acme.com: admin"))
        let found = try #require(expectDiagnostic(scratch.load(), "spec.duplicate-key", at: scratch.markedLocation))
        #expect(found.notes.map(\.message) == ["first listed here"])
        #expect(found.notes.first?.location == Spec.SourceLocation(file: scratch.path("tenants/acme.yaml"), line: 8, column: 3))
    }

    @Test func aGuestWithAnInvalidExpiryGetsOneErrorForTheDateNotASecondForAMissingExpiry() throws {
        let scratch = Scratch.with(tenant: tenant(members: "alice@acme.com: owner\ncarol@contractor.io: {role: guest, expires: 1️⃣soon}"))
        let diagnostics = try scratch.load()
        #expect(diagnostics.with(id: "spec.guest-expiry").isEmpty, "\(dump(diagnostics.with(id: "spec.guest-expiry")))")
        _ = try #require(expectDiagnostic(diagnostics, "spec.date", at: scratch.markedLocation))
    }

    @Test func aCycleIsReportedOnceWhateverTeamTheWalkStartsFrom() throws {
        let scratch = Scratch.with(tenant: tenant("teams:\n  a: {parent: c}\n  b: {parent: a}\n  c: {parent: b}\n  d: {parent: a}"))
        let cycles = try scratch.load().with(id: "spec.team-cycle")
        #expect(cycles.count == 1, "\(dump(cycles))")
        #expect(cycles.first?.message == "teams form a cycle: a -> c -> b -> a")
    }

    @Test func aMissingPlatformOwnerRoleIsAnError() throws {
        let scratch = Scratch.with(
            platform: basePlatform.replacingOccurrences(of: "  owner: {permissions: [\"*\"]}\n", with: ""),
            tenant: tenant(members: "alice@acme.com: admin"))
        let result = try scratch.load()
        expectDiagnostic(
            result, "spec.missing-owner-role", at: Spec.SourceLocation(file: scratch.path("platform.yaml"), line: 1, column: 1),
            help: "declare roles: {owner: {permissions: [\"*\"]}} so every tenant can have an owner")
    }

    @Test func everyTenantIsCheckedNotOnlyTheFirst() throws {
        let scratch = Scratch.with()
        scratch.write("tenants/zeta.yaml", tenant(slug: "zeta", plan: "1️⃣platinum"))
        try expectDiagnostic(scratch.load(), "spec.unknown-plan", at: scratch.markedLocation)
    }
}
