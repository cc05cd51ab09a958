/// `policies:` in the format description: one object shared by the Platform and tenants.
extension SpecFormat {
    static let enforcement = FormatField(
        "enforcement", .oneOf(Enforcement.allCases.map(\.rawValue)),
        "What a failure does: advisory is a warning in the plan; overridable makes apply refuse unless given --override NAME --reason TEXT "
            + "(recorded in the audit log); mandatory makes the plan invalid and apply refuse.",
        absent: "mandatory", example: "overridable")

    static func policyRule(_ title: String, _ fields: [FormatField]) -> FormatObject {
        FormatObject(title, fields: fields + [enforcement])
    }

    static let planScope: [FormatField] = [
        FormatField("plans", .list(.text(.slug)), "The plans whose tenants the rule applies to.", absent: "no plan selects tenants", example: "[enterprise]"),
        FormatField("features", .list(.oneOf(features)), "Tenants whose plan has any of these features are held to the rule too.",
                    absent: "no feature selects tenants; with neither plans nor features, every tenant", example: "[sso]"),
    ]

    static let removalLimit = FormatObject(
        "Removal limit",
        fields: [
            FormatField("percent", .integer(0...100), "At most this share of the stored resources of the kind (in one tenant, for what tenants hold) may be deleted by one plan.",
                        absent: "no share limit", example: "25"),
            FormatField("count", .integer(0...1_000_000_000), "At most this many resources of the kind (in one tenant, for what tenants hold) may be deleted by one plan.",
                        absent: "no count limit", example: "10"),
        ])

    static let removalKinds = FormatObject(
        "Removal limits",
        fields: ResourceKind.allCases.map { kind in
            FormatField(kind.rawValue, .object(removalLimit), "The limit on deleting \(kind.rawValue) resources.", absent: "no limit",
                        example: kind == .tenant ? "{count: 1}" : "{percent: 25, count: 50}")
        })

    static let policies = FormatObject(
        "Policies",
        fields: [
            FormatField(
                "minimumOwners",
                .object(policyRule("Minimum owners", [
                    FormatField("count", .integer(1...100), required: true, "The fewest members with role owner an active tenant may have.", example: "2"),
                ])),
                "Every active tenant (status active, or not written) that declares members keeps at least this many owners.",
                absent: "only the built-in rule: one owner", example: "{count: 2, enforcement: mandatory}"),
            FormatField(
                "requiredMembers",
                .object(policyRule("Required members", [
                    FormatField("members", .list(.text(.email)), required: true, "People who must be members of every tenant (break-glass admins). They are exempt from the tenants' domains rule.",
                                example: "[breakglass@platform.example]"),
                    FormatField("role", .text(.nonEmpty), "The role they must have.", absent: "any role", example: "owner"),
                ])),
                "Members every tenant that declares members must have.",
                absent: "none required", example: "{members: [breakglass@platform.example], role: owner}"),
            FormatField(
                "maxRemoval",
                .object(policyRule("Maximum removal", [
                    FormatField("kinds", .object(removalKinds), required: true,
                                "Limits by resource kind; a kind not listed has none.",
                                example: "{member: {percent: 25, count: 50}, tenant: {count: 1}}"),
                ])),
                "How much one plan may delete, judged on the plan and the stored state (not in validate).",
                absent: "only --max-deletes and the tenant deletion guard", example: "\n  enforcement: overridable\n  kinds: {member: {percent: 25}}"),
            FormatField(
                "ssoRequired", .object(policyRule("SSO required", planScope)),
                "Tenants on these plans (or with these features) must declare sso with enforce: true.",
                absent: "not required", example: "{plans: [enterprise]}"),
            FormatField(
                "mfaRequired", .object(policyRule("MFA required", planScope)),
                "Tenants on these plans (or with these features) must declare security.mfa: required.",
                absent: "not required", example: "{plans: [business, enterprise]}"),
            FormatField(
                "apiKeys",
                .object(policyRule("API key rules", [
                    FormatField("forbiddenScopes", .list(.text(.dottedPattern)), "Scopes no key may list, compared as written ('*' forbids the scope '*').",
                                absent: "none forbidden", example: "[\"*\"]"),
                    FormatField("maxLifetime", .text(.duration((86_400)...(3650 * 86_400))), "Keys must have an expiry at most this far after today.",
                                absent: "no limit", example: "365d"),
                    FormatField("maxRateLimit", .map(key: .slug, value: .text(.rate)), "The highest rate limit a key may have, by the tenant's plan; a key of such a tenant must declare one.",
                                absent: "no limit", example: "{free: 100/h, enterprise: 10000/h}"),
                ])),
                "Rules for every API key.", absent: "no rules", example: "{forbiddenScopes: [\"*\"], maxLifetime: 365d}"),
            FormatField(
                "webhookDomains",
                .object(policyRule("Webhook domains", [
                    FormatField("allowedDomains", .list(.text(.domain)), required: true, "Webhook URLs must have one of these hosts, or a host below one.",
                                example: "[hooks.slack.com, acme.com]"),
                ])),
                "Where webhooks may deliver.", absent: "any public https host", example: "{allowedDomains: [hooks.slack.com]}"),
            FormatField(
                "protectedResources",
                .object(policyRule("Protected resources", [
                    FormatField("addresses", .list(.text(.nonEmpty)), required: true,
                                "Address patterns (as --target: * within a segment, ** across) of resources no plan may delete.",
                                example: "[\"role/owner\", \"tenant/acme\"]"),
                ])),
                "Resources that cannot be deleted while protected, judged on the plan (not in validate).",
                absent: "none protected", example: "{addresses: [\"role/owner\"]}"),
        ])

    static let platformPolicies = FormatField(
        "policies", .object(policies),
        "Governance rules every tenant is held to, each with an enforcement level. Rules that need no plan are also checked by validate.",
        absent: "no policies", example: "\n  minimumOwners: {count: 2}\n  apiKeys: {forbiddenScopes: [\"*\"], maxLifetime: 365d}")

    static let tenantPolicies = FormatField(
        "policies", .object(policies),
        "The tenant's own rules, on top of the Platform's and only stricter: a higher count, a lower limit, a stronger enforcement, "
            + "fewer webhook domains. Each applies to this tenant only.",
        absent: "the Platform's policies only", example: "\n  minimumOwners: {count: 3}")
}
