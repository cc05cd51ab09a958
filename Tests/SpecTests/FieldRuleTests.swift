import Foundation
import Spec
import Testing

/// Per-field rules: unknown keys, types, YAML 1.1 booleans, numbers, units, names, enums.
@Suite struct FieldRuleTests {
    static let unknownKeys: [RuleCase] = [
        RuleCase(
            "unknown top-level tenant key suggests the close one",
            valid: tenant("quotas: {seats: 10}"), invalid: tenant("1️⃣quotes: {seats: 10}"),
            "spec.unknown-key", help: "did you mean 'quotas'?", message: "unknown key 'quotes' in the Tenant document"),
        RuleCase(
            "unknown team key suggests 'members'",
            valid: tenant("teams:\n  core:\n    members: {alice@acme.com: lead}"),
            invalid: tenant("teams:\n  core:\n    1️⃣membres: {alice@acme.com: lead}"),
            "spec.unknown-key", help: "did you mean 'members'?", message: "unknown key 'membres' in team 'core'"),
        RuleCase(
            "unknown key far from every allowed key lists the allowed keys",
            valid: tenant("teams:\n  core:\n    name: Core"),
            invalid: tenant("teams:\n  core:\n    1️⃣maintainer: alice"),
            "spec.unknown-key", help: "allowed keys are: name, description, parent, members, quotas, previously"),
        RuleCase(
            "unknown webhook key",
            valid: tenantWithWebhook("timeout: 30s"), invalid: tenantWithWebhook("1️⃣timout: 30s"),
            "spec.unknown-key", help: "did you mean 'timeout'?", message: "unknown key 'timout' in webhook 'hook'"),
        RuleCase(
            "unknown quota name",
            valid: tenant("quotas: {seats: 10}"), invalid: tenant("quotas: {1️⃣seat: 10}"),
            "spec.unknown-key", help: "did you mean 'seats'?"),
        RuleCase(
            "unknown key in a member map",
            valid: tenant(members: "alice@acme.com: owner\nbob@acme.com: {role: admin, expires: 2027-01-01}"),
            invalid: tenant(members: "alice@acme.com: owner\nbob@acme.com: {role: admin, 1️⃣expiry: 2027-01-01}"),
            "spec.unknown-key", help: "did you mean 'expires'?"),
        RuleCase(
            "unknown plan key in the Platform",
            valid: basePlatform,
            invalid: basePlatform.replacingOccurrences(of: "    features: [sso, custom-roles]\n", with: "    1️⃣feature: [sso, custom-roles]\n"),
            "spec.unknown-key", help: "did you mean 'features'?", message: "in plan 'business'", document: .platform),
        RuleCase(
            "a key of the other provider type does not apply",
            valid: tenant("sso:\n  providers:\n    google:\n      type: oidc\n      issuer: https://accounts.google.com\n      clientId: abc\n      clientSecret: {env: ACME_GOOGLE_SECRET}"),
            invalid: tenant("sso:\n  providers:\n    google:\n      type: oidc\n      issuer: https://accounts.google.com\n      clientId: abc\n      clientSecret: {env: ACME_GOOGLE_SECRET}\n      1️⃣entityId: x"),
            "spec.unknown-key", message: "'entityId' does not apply to an OIDC provider"),
    ]

    @Test(arguments: unknownKeys) func unknownKey(_ rule: RuleCase) throws { try rule.check() }

    static let types: [RuleCase] = [
        RuleCase(
            "a string field given a list", valid: tenant(name: "Acme"), invalid: tenant(name: "1️⃣[a, b]"),
            "spec.type", help: "write name as a single value", message: "name must be a string, not a list"),
        RuleCase(
            "a string field given null", valid: tenant(name: "Acme"), invalid: tenant(name: "1️⃣~"),
            "spec.type", help: "give name a value, or remove the key", message: "name must be a string, not null"),
        RuleCase(
            "an identity map written as a list",
            valid: tenant("teams:\n  core: {name: Core}"), invalid: tenant("teams:\n  1️⃣- core"),
            "spec.type", message: "teams must be a mapping keyed by name, not a list"),
        RuleCase(
            "a section given a scalar",
            valid: tenant("branding: {primaryColor: \"#3B82F6\"}"), invalid: tenant("branding: 1️⃣blue"),
            "spec.type", message: "branding must be a mapping, not a scalar"),
        RuleCase(
            "a list field given a scalar", valid: tenant(domains: "[acme.com]"), invalid: tenant(domains: "1️⃣acme.com"),
            "spec.type", message: "domains must be a list, not 'acme.com'"),
        RuleCase(
            "a blank string", valid: tenant(name: "Acme"), invalid: tenant(name: "1️⃣\"   \""),
            "spec.empty", help: "give name a value, or remove the key", message: "name must not be empty"),
    ]

    @Test(arguments: types) func wrongType(_ rule: RuleCase) throws { try rule.check() }

    static let booleans: [RuleCase] = [
        RuleCase(
            "yes for a boolean", valid: tenant("sso:\n  jit: {enabled: true}"), invalid: tenant("sso:\n  jit: {enabled: 1️⃣yes}"),
            "spec.type", help: "write true (YAML 1.1 spellings such as 'yes' are not booleans here)",
            message: "sso.jit.enabled must be true or false, not 'yes'"),
        RuleCase(
            "on for a boolean", valid: tenantWithWebhook("enabled: true"), invalid: tenantWithWebhook("enabled: 1️⃣on"),
            "spec.type", help: "write true (YAML 1.1 spellings such as 'on' are not booleans here)"),
        RuleCase(
            "Off for a boolean", valid: tenantWithWebhook("enabled: false"), invalid: tenantWithWebhook("enabled: 1️⃣Off"),
            "spec.type", help: "write false (YAML 1.1 spellings such as 'Off' are not booleans here)"),
        RuleCase(
            "a quoted \"true\" is a string, not a boolean",
            valid: tenant("sso:\n  enforce: false"), invalid: tenant("sso:\n  enforce: 1️⃣\"true\""),
            "spec.type", help: "write true or false"),
        RuleCase(
            "a number for a boolean", valid: tenantWithWebhook("enabled: false"), invalid: tenantWithWebhook("enabled: 1️⃣1"),
            "spec.type", help: "write true or false", message: "enabled must be true or false, not '1'"),
    ]

    @Test(arguments: booleans) func yaml11Boolean(_ rule: RuleCase) throws { try rule.check() }

    /// A field that wants a string takes YAML 1.1 boolean spellings as the strings they are.
    @Test func booleanSpellingsAreStringsWhereStringsAreExpected() throws {
        let scratch = Scratch.with(
            tenant: tenant(name: "on", "teams:\n  core: {name: yes, description: no}\n  ops: {name: \"Off\"}"))
        let result = try scratch.load()
        expectClean(result)
        let acme = try #require(result.configuration?.tenants.first)
        #expect(acme.name == "on")
        let core = try #require(acme.teams?.first { $0.slug == "core" })
        #expect(core.name == "yes")
        #expect(core.description == "no")
        #expect(acme.teams?.first { $0.slug == "ops" }?.name == "Off")
    }

    static let integers: [RuleCase] = [
        RuleCase(
            "maxRetries above its range", valid: tenantWithWebhook("maxRetries: 10"), invalid: tenantWithWebhook("maxRetries: 1️⃣11"),
            "spec.range", help: "choose a value from 0 to 10", message: "maxRetries of webhook 'hook' must be from 0 to 10, not 11"),
        RuleCase(
            "maxRetries below its range", valid: tenantWithWebhook("maxRetries: 0"), invalid: tenantWithWebhook("maxRetries: 1️⃣-1"),
            "spec.range", help: "choose a value from 0 to 10"),
        RuleCase(
            "a whole number too large for 64 bits is out of range, not 'not a number'",
            valid: tenantWithWebhook("maxRetries: 5"), invalid: tenantWithWebhook("maxRetries: 1️⃣99999999999999999999"),
            "spec.range", help: "choose a value from 0 to 10"),
        RuleCase(
            "a quoted number", valid: tenantWithWebhook("maxRetries: 5"), invalid: tenantWithWebhook("maxRetries: 1️⃣\"5\""),
            "spec.type", help: "write a number from 0 to 10 without quotes"),
        RuleCase(
            "a fraction", valid: tenantWithWebhook("maxRetries: 5"), invalid: tenantWithWebhook("maxRetries: 1️⃣2.5"),
            "spec.type", message: "must be a whole number, not '2.5'"),
        RuleCase(
            "a negative quota", valid: tenant("quotas: {apps: 0}"), invalid: tenant("quotas: {apps: 1️⃣-1}"),
            "spec.range", message: "quota 'apps' must be from 0 to 1000000000000, not -1"),
    ]

    @Test(arguments: integers) func integerRange(_ rule: RuleCase) throws { try rule.check() }

    static let units: [RuleCase] = [
        RuleCase(
            "a duration without a unit", valid: tenantWithWebhook("timeout: 30s"), invalid: tenantWithWebhook("timeout: 1️⃣30"),
            "spec.duration", help: "write a whole number followed by one unit: s, m, h, d or w",
            message: "timeout of webhook 'hook' must be a duration such as 30s, 15m, 8h or 30d, not '30'"),
        RuleCase(
            "a fractional duration", valid: tenantWithWebhook("timeout: 5m"), invalid: tenantWithWebhook("timeout: 1️⃣1.5m"),
            "spec.duration"),
        RuleCase(
            "a webhook timeout of zero", valid: tenantWithWebhook("timeout: 1s"), invalid: tenantWithWebhook("timeout: 1️⃣0s"),
            "spec.range", help: "choose a duration from 1s to 5m", message: "must be from 1s to 5m, not 0s"),
        RuleCase(
            "a webhook timeout over 300s", valid: tenantWithWebhook("timeout: 300s"), invalid: tenantWithWebhook("timeout: 1️⃣301s"),
            "spec.range"),
        RuleCase(
            "a session timeout under 5 minutes",
            valid: tenant("security: {sessionTimeout: 5m}"), invalid: tenant("security: {sessionTimeout: 1️⃣1m}"),
            "spec.range", message: "sessionTimeout must be from 5m to 30d, not 1m"),
        RuleCase(
            "a size without a unit", valid: tenant("quotas: {storage: 500MB}"), invalid: tenant("quotas: {storage: 1️⃣10}"),
            "spec.size", help: "write a whole number followed by B, KB, MB, GB, TB, KiB, MiB, GiB or TiB",
            message: "quota 'storage' must be a size such as 10GiB or 'unlimited', not '10'"),
        RuleCase(
            "a size with an unknown unit", valid: tenant("quotas: {storage: 2TiB}"), invalid: tenant("quotas: {storage: 1️⃣10G}"),
            "spec.size"),
        RuleCase(
            "a fractional size", valid: tenant("quotas: {storage: 10GiB}"), invalid: tenant("quotas: {storage: 1️⃣1.5GiB}"),
            "spec.size"),
        RuleCase(
            "a size that overflows", valid: tenant("quotas: {storage: unlimited}"),
            invalid: tenant("quotas: {storage: 1️⃣99999999999999TiB}"), "spec.size"),
        RuleCase(
            "a rate with a long unit",
            valid: tenant("apiKeys:\n  ci: {scopes: [apps.read], rateLimit: 600/h}"),
            invalid: tenant("apiKeys:\n  ci: {scopes: [apps.read], rateLimit: 1️⃣600/hour}"),
            "spec.rate", help: "write a positive whole number, '/', and one unit: s, m, h or d",
            message: "rateLimit of API key 'ci' must be a rate such as 600/h, not '600/hour'"),
        RuleCase(
            "a rate of zero",
            valid: tenant("apiKeys:\n  ci: {scopes: [apps.read], rateLimit: 1/s}"),
            invalid: tenant("apiKeys:\n  ci: {scopes: [apps.read], rateLimit: 1️⃣0/h}"), "spec.rate"),
        RuleCase(
            "a rate without a period",
            valid: basePlatform, invalid: basePlatform.replacingOccurrences(of: "rateLimit: 100/h", with: "rateLimit: 1️⃣100"),
            "spec.rate", message: "rateLimit of plan 'free'", document: .platform),
        RuleCase(
            "a role's maxDuration without a unit",
            valid: basePlatform, invalid: basePlatform.replacingOccurrences(of: "maxDuration: 30d", with: "maxDuration: 1️⃣30"),
            "spec.duration", message: "maxDuration of role 'guest'", document: .platform),
    ]

    @Test(arguments: units) func unitValue(_ rule: RuleCase) throws { try rule.check() }

    static let formats: [RuleCase] = [
        RuleCase(
            "a colour name", valid: tenant("branding: {primaryColor: \"#3b82f6\"}"), invalid: tenant("branding: {primaryColor: 1️⃣blue}"),
            "spec.color", help: "write '#' and 3 or 6 hex digits, quoted: \"#3B82F6\"",
            message: "primaryColor must be a hex colour such as #3B82F6, not 'blue'"),
        RuleCase(
            "a colour with five digits", valid: tenant("branding: {primaryColor: \"#abc\"}"),
            invalid: tenant("branding: {primaryColor: 1️⃣\"#12345\"}"), "spec.color"),
        RuleCase(
            "a CIDR with host bits set suggests the network",
            valid: tenant("security:\n  ipAllowlist: [203.0.113.0/24]"), invalid: tenant("security:\n  ipAllowlist: [1️⃣203.0.113.5/24]"),
            "spec.cidr", help: "did you mean '203.0.113.0/24'?",
            message: "'203.0.113.5/24' is not a valid CIDR block: host bits are set after the /24 prefix"),
        RuleCase(
            "an IPv6 CIDR with host bits set suggests the network",
            valid: tenant("security:\n  ipAllowlist: [\"2001:db8::/32\"]"), invalid: tenant("security:\n  ipAllowlist: [1️⃣\"2001:db8::1/32\"]"),
            "spec.cidr", help: "did you mean '2001:db8::/32'?", message: "host bits are set after the /32 prefix"),
        RuleCase(
            "a CIDR without a prefix length", valid: tenant("security:\n  ipAllowlist: [10.0.0.0/8]"),
            invalid: tenant("security:\n  ipAllowlist: [1️⃣10.0.0.0]"), "spec.cidr", help: "write a network such as 203.0.113.0/24 or 2001:db8::/32"),
        RuleCase(
            "a CIDR with an octet over 255", valid: tenant("security:\n  ipAllowlist: [198.51.100.0/24]"),
            invalid: tenant("security:\n  ipAllowlist: [1️⃣300.1.1.0/24]"), "spec.cidr"),
        RuleCase(
            "a CIDR with a leading zero (octal in some parsers)", valid: tenant("security:\n  ipAllowlist: [10.0.0.0/8]"),
            invalid: tenant("security:\n  ipAllowlist: [1️⃣010.0.0.0/8]"), "spec.cidr"),
        RuleCase(
            "a CIDR prefix over 32", valid: tenant("security:\n  ipAllowlist: [10.0.0.0/32]"),
            invalid: tenant("security:\n  ipAllowlist: [1️⃣10.0.0.0/33]"), "spec.cidr"),
        RuleCase(
            "a date that is not in the calendar",
            valid: tenant(status: "trial", "trialEnds: 2028-02-29"), invalid: tenant(status: "trial", "trialEnds: 1️⃣2027-02-29"),
            "spec.date", help: "write a real calendar date such as 2027-01-31",
            message: "trialEnds must be a date written YYYY-MM-DD, not '2027-02-29'"),
        RuleCase(
            "a date with a time", valid: tenant(status: "trial", "trialEnds: 2027-01-31"),
            invalid: tenant(status: "trial", "trialEnds: 1️⃣2027-01-31T00:00:00Z"), "spec.date"),
        RuleCase(
            "a month 13", valid: tenant("apiKeys:\n  ci: {scopes: [apps.read], expires: 2027-12-01}"),
            invalid: tenant("apiKeys:\n  ci: {scopes: [apps.read], expires: 1️⃣2027-13-01}"), "spec.date"),
        RuleCase(
            "a domain with a space", valid: tenant(domains: "[acme.com, ACME.io]"), invalid: tenant(domains: "[acme.com, 1️⃣\"acme .io\"]"),
            "spec.domain", message: "'acme .io' is not a valid domain name"),
        RuleCase(
            "a custom domain that is internal", valid: tenant("branding: {customDomain: app.acme.com}"),
            invalid: tenant("branding: {customDomain: 1️⃣app.internal}"), "spec.domain",
            help: "use a domain such as app.example.com", message: "customDomain 'app.internal' must be a public DNS name"),
        RuleCase(
            "a domain listed twice", valid: tenant(domains: "[acme.com, acme.io]"), invalid: tenant(domains: "[acme.com, 1️⃣acme.com]"),
            "spec.duplicate-entry", help: "remove the repeated entry", message: "'acme.com' is listed twice in domains"),
    ]

    @Test(arguments: formats) func formattedValue(_ rule: RuleCase) throws { try rule.check() }

    static let namesAndEnums: [RuleCase] = [
        RuleCase(
            "a tenant slug with capitals", valid: tenant(slug: "acme-2"), invalid: tenant(slug: "1️⃣Acme"),
            "spec.name", help: "use 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
            message: "tenant slug 'Acme' is not valid"),
        RuleCase(
            "a team slug with an underscore", valid: tenant("teams:\n  core-team: {}"), invalid: tenant("teams:\n  1️⃣core_team: {}"),
            "spec.name"),
        RuleCase(
            "a member key that is not an e-mail address", valid: tenant(members: "alice@acme.com: owner"),
            invalid: tenant(members: "alice@acme.com: owner\n1️⃣bob: admin"),
            "spec.name", help: "write an e-mail address such as alice@example.com", message: "member e-mail 'bob' is not valid"),
        RuleCase(
            "a permission name with capitals",
            valid: basePlatform, invalid: basePlatform.replacingOccurrences(of: "  audit.read: {category: audit}", with: "  1️⃣Audit.Read: {category: audit}"),
            "spec.name", message: "permission name 'Audit.Read' is not valid", document: .platform),
        RuleCase(
            "an event name with a space",
            valid: basePlatform, invalid: basePlatform.replacingOccurrences(of: "webhook.test]", with: "1️⃣\"webhook test\"]"),
            "spec.name", message: "event name 'webhook test' is not valid", document: .platform),
        RuleCase(
            "a misspelt status", valid: tenant(status: "active"), invalid: tenant(status: "1️⃣actve"),
            "spec.value", help: "did you mean 'active'?", message: "status must be one of active, trial, suspended, not 'actve'"),
        RuleCase(
            "an unknown mfa policy", valid: tenant("security: {mfa: optional}"), invalid: tenant("security: {mfa: 1️⃣always}"),
            "spec.value", help: "use one of: required, optional"),
        RuleCase(
            "a misspelt team role", valid: tenant("teams:\n  core:\n    members: {alice@acme.com: lead}"),
            invalid: tenant("teams:\n  core:\n    members: {alice@acme.com: 1️⃣leader}"),
            "spec.value", help: "did you mean 'lead'?"),
        RuleCase(
            "a misspelt provider type",
            valid: tenant("sso:\n  providers:\n    g: {type: oidc, issuer: \"https://accounts.google.com\", clientId: x, clientSecret: {env: G}}"),
            invalid: tenant("sso:\n  providers:\n    g: {type: 1️⃣oidd, issuer: \"https://accounts.google.com\", clientId: x, clientSecret: {env: G}}"),
            "spec.value", help: "did you mean 'oidc'?"),
    ]

    @Test(arguments: namesAndEnums) func nameOrEnum(_ rule: RuleCase) throws { try rule.check() }

    static let missingKeys: [RuleCase] = [
        RuleCase(
            "a tenant without a name", valid: tenant(),
            invalid: "1️⃣apiVersion: orgctl.dev/v1\nkind: Tenant\nslug: acme\nplan: free\nmembers: {alice@acme.com: owner}\n",
            "spec.missing-key", help: "add 'name: <display name>'", message: "tenant 'acme' has no 'name'"),
        RuleCase(
            "a tenant without a plan", valid: tenant(),
            invalid: "1️⃣apiVersion: orgctl.dev/v1\nkind: Tenant\nslug: acme\nname: Acme\n",
            "spec.missing-key", message: "tenant 'acme' has no 'plan'"),
        RuleCase(
            "a tenant without a slug", valid: tenant(),
            invalid: "1️⃣apiVersion: orgctl.dev/v1\nkind: Tenant\nname: Acme\nplan: free\n",
            "spec.missing-key", message: "Tenant document has no 'slug'"),
        RuleCase(
            "a webhook without a url", valid: tenantWithWebhook(),
            invalid: tenant("webhooks:\n  1️⃣hook: {events: [member.added]}"), "spec.missing-key", help: "add 'url: https://…'"),
        RuleCase(
            "a webhook without events", valid: tenantWithWebhook(),
            invalid: tenant("webhooks:\n  1️⃣hook: {url: \"https://hooks.example.com/x\"}"), "spec.missing-key",
            message: "webhook 'hook' has no 'events'"),
        RuleCase(
            "a webhook with an empty event list", valid: tenantWithWebhook(events: "[member.added]"),
            invalid: tenant("webhooks:\n  1️⃣hook: {url: \"https://hooks.example.com/x\", events: []}"), "spec.empty",
            help: "list at least one event"),
        RuleCase(
            "an API key without scopes", valid: tenant("apiKeys:\n  ci: {scopes: [apps.read]}"),
            invalid: tenant("apiKeys:\n  1️⃣ci: {rateLimit: 60/h}"), "spec.missing-key", message: "API key 'ci' has no 'scopes'"),
        RuleCase(
            "a member map without a role", valid: tenant(members: "alice@acme.com: {role: owner}"),
            invalid: tenant(members: "alice@acme.com: owner\n1️⃣bob@acme.com: {expires: 2027-01-01}"), "spec.missing-key",
            help: "add 'role: <role name>'"),
        RuleCase(
            "an SSO provider without a type",
            valid: tenant("sso:\n  providers:\n    g: {type: oidc, issuer: \"https://accounts.google.com\", clientId: x, clientSecret: {env: G}}"),
            invalid: tenant("sso:\n  providers:\n    1️⃣g: {issuer: \"https://accounts.google.com\", clientId: x, clientSecret: {env: G}}"),
            "spec.missing-key", help: "add 'type: saml' or 'type: oidc'"),
        RuleCase(
            "an OIDC provider without a clientId",
            valid: tenant("sso:\n  providers:\n    g: {type: oidc, issuer: \"https://accounts.google.com\", clientId: x, clientSecret: {env: G}}"),
            invalid: tenant("sso:\n  providers:\n    1️⃣g: {type: oidc, issuer: \"https://accounts.google.com\", clientSecret: {env: G}}"),
            "spec.missing-key", help: "add 'clientId'", message: "OIDC provider 'g' has no 'clientId'"),
        RuleCase(
            "a role without permissions",
            valid: basePlatform, invalid: basePlatform.replacingOccurrences(of: "  viewer: {permissions: [\"*.read\"]}", with: "  1️⃣viewer: {description: Reads}"),
            "spec.missing-key", message: "role 'viewer' has no 'permissions'", document: .platform),
        RuleCase(
            "a Platform without plans",
            valid: basePlatform,
            invalid: "1️⃣apiVersion: orgctl.dev/v1\nkind: Platform\n" + basePlatform.components(separatedBy: "permissions:\n").dropFirst().joined().prependingPermissions,
            "spec.missing-key", message: "the Platform document has no 'plans'", document: .platform),
    ]

    @Test(arguments: missingKeys) func missingKey(_ rule: RuleCase) throws { try rule.check() }
}

extension String {
    fileprivate var prependingPermissions: String { "permissions:\n" + self }
}
