/// The configuration format (`orgctl.dev/v1`), described once.
///
/// `orgctl schema`, `orgctl explain` and the field reference in docs/spec.md are generated from
/// this description. Allowed values come from the model's own enumerations (``TenantStatus``,
/// ``QuotaName``, …); a test checks every key list against what ``DocumentDecoder`` accepts, so
/// the description and the decoder cannot drift apart silently.
public enum SpecFormat {
    public static let apiVersion = DocumentDecoder.apiVersion

    public static let kinds: [FormatKind] = [platform, tenant]

    public static func kind(named name: String) -> FormatKind? {
        kinds.first { $0.name.lowercased() == name.lowercased() }
    }

    /// The closed list of plan features.
    public static let features = Validator.knownFeatures

    // MARK: Shared objects

    static let quotas = FormatObject(
        "Quotas",
        fields: QuotaName.allCases.map { name in
            FormatField(
                name.rawValue, .quota(isSize: name.isSize), quotaSummary(name),
                example: name.isSize ? "100GiB" : name == .messagesPerMonth ? "50000" : "25")
        })

    static func quotaSummary(_ name: QuotaName) -> String {
        let what: String =
            switch name {
            case .seats: "Members of the tenant. orgctl counts the tenant's members against it."
            case .teams: "Teams of the tenant. orgctl counts the tenant's teams against it."
            case .apps: "Apps. Stored for the platform to enforce."
            case .messagesPerMonth: "Messages a month. Stored for the platform to enforce."
            case .storage: "Storage. Stored for the platform to enforce."
            case .webhooks: "Webhooks of the tenant. orgctl counts the tenant's webhooks against it."
            case .apiKeys: "API keys of the tenant. orgctl counts the tenant's API keys against it."
            }
        return what
    }

    static let role = FormatObject(
        "Role",
        fields: [
            FormatField(
                "permissions", .list(.text(.dottedPattern)), required: true,
                "The permissions the role grants. '*' matches any run of characters, dots included: *, apps.*, *.read. "
                    + "Each pattern must match at least one permission of the Platform's catalog. Patterns are stored as written.",
                example: "[apps.read, \"billing.*\"]"),
            FormatField("description", .text(.any), "What the role is for.", absent: "not managed", example: "Manages invoices"),
            FormatField(
                "maxDuration", .text(.duration(60...(3650 * 86_400))),
                "Makes the role a guest role: members with it must have an 'expires' date at most this long after today, and are exempt from the tenant's domains rule.",
                absent: "not a guest role (unless the role is named guest); not managed once stored", example: "30d"),
            FormatField(
                "previously", .list(.text(.slug)),
                "Earlier slugs of this role: a stored role under one of them is renamed (an update that keeps its row and children), not deleted and recreated.",
                absent: "no rename", example: "[billing-admin]"),
        ])

    // MARK: Platform

    static let plan = FormatObject(
        "Plan",
        fields: [
            FormatField("description", .text(.any), "A description of the plan.", absent: "not managed", example: "For growing companies"),
            FormatField(
                "quotas", .object(quotas),
                "The quotas a tenant on this plan gets unless it overrides them. A quota declared by neither the plan nor the tenant is unlimited.",
                absent: "not managed", example: "{seats: 100, teams: 50, apps: unlimited, storage: 100GiB}"),
            FormatField("rateLimit", .text(.rate), "The plan's API rate limit.", absent: "not managed", example: "10000/h"),
            FormatField(
                "features", .list(.oneOf(features)),
                "Features of the plan. sso allows a tenant's sso section, custom-roles a non-empty roles section, "
                    + "ip-allowlist a non-empty security.ipAllowlist; audit-export is stored for the platform to read.",
                absent: "not managed", example: "[sso, custom-roles, audit-export]"),
        ])

    static let permission = FormatObject(
        "Permission",
        fields: [
            FormatField("category", .text(.nonEmpty), "A group for the permission, for display.", absent: "not managed", example: "apps"),
            FormatField("description", .text(.any), "What the permission allows.", absent: "not managed", example: "Create apps"),
        ])

    static let platform = FormatKind(
        name: "Platform",
        summary: "The catalog every tenant is checked against: subscription plans, the permission catalog, the system roles offered "
            + "to every tenant, and the webhook events. Exactly one per configuration.",
        object: FormatObject(
            "Platform",
            fields: [
                FormatField("apiVersion", .constant(apiVersion), required: true, "The format version.", example: apiVersion),
                FormatField("kind", .constant("Platform"), required: true, "The document kind.", example: "Platform"),
                FormatField(
                    "plans", .map(key: .slug, value: .object(plan), nonEmpty: true), required: true,
                    "Subscription tiers, keyed by plan name. At least one. A stored plan that is not declared is deleted.",
                    example: "\n  business:\n    quotas: {seats: 100, storage: 100GiB}\n    rateLimit: 10000/h\n    features: [sso]"),
                FormatField(
                    "permissions", .map(key: .dottedName, value: .object(permission)),
                    "The permission catalog, keyed by permission name (apps.create). Every role and API key scope is checked against it.",
                    absent: "not managed: stored permissions are left alone",
                    example: "\n  apps.create: {category: apps, description: Create apps}\n  apps.read: {category: apps}"),
                FormatField(
                    "roles", .map(key: .slug, value: .object(role)),
                    "System roles, offered to every tenant, keyed by role name. A role named owner is required.",
                    absent: "not managed: stored system roles are left alone",
                    example: "\n  owner: {permissions: [\"*\"]}\n  guest: {permissions: [apps.read], maxDuration: 30d}"),
                FormatField(
                    "events", .list(.text(.dottedName)), "The events webhooks may subscribe to.",
                    absent: "not managed: stored events are left alone", example: "[member.added, member.removed, organization.updated]"),
                FormatField(
                    "secrets", .object(secretPolicy),
                    "Which secret sources tenants may reference: an allow-list. A webhook secret is sent to the webhook's URL and an OIDC client "
                        + "secret to the issuer, so whatever a reference can read, the author of the configuration can receive. Once declared, "
                        + "a reference outside the lists is an error, and so is one that a {tenant} entry attributes to another tenant. "
                        + "Whatever the lists say, orgctl's own variables (ORGCTL_*), CI runner and cloud credentials (GITHUB_*, ACTIONS_*, CI_*, "
                        + "AWS_*, *TOKEN, …) and hidden files (.git/config) are refused.",
                    absent: "any reference allowed, except the refused ones",
                    example: "{environment: [\"{tenant}_*\", SHARED_SMTP_SECRET], files: [\"secrets/{tenant}\"]}"),
                platformPolicies,
            ]),
        example: """
            apiVersion: orgctl.dev/v1
            kind: Platform
            plans:
              business:
                description: For growing companies
                quotas: {seats: 100, teams: 50, apps: unlimited, messagesPerMonth: 50000, storage: 100GiB, webhooks: 25, apiKeys: 25}
                rateLimit: 10000/h
                features: [sso, custom-roles, audit-export]
            permissions:
              apps.create: {category: apps, description: Create apps}
              apps.read: {category: apps}
              users.read: {category: users}
              billing.manage: {category: billing}
            roles:
              owner: {permissions: ["*"]}
              admin: {permissions: ["apps.*", "users.*", "billing.*"]}
              member: {permissions: [apps.read, apps.create]}
              guest: {permissions: [apps.read], maxDuration: 90d}
            events: [member.added, member.removed, organization.updated]
            policies:
              minimumOwners: {count: 1, enforcement: mandatory}
              maxRemoval: {enforcement: overridable, kinds: {member: {percent: 25}, tenant: {count: 1}}}
              apiKeys: {forbiddenScopes: ["*"], maxLifetime: 730d}
              protectedResources: {addresses: [role/owner]}

            """)

    static let secretPolicy = FormatObject(
        "Secrets",
        fields: [
            FormatField(
                "environment", .list(.text(.nonEmpty)),
                "Environment variable name patterns tenants may reference with {env: …}. '*' matches any run of characters; {tenant} "
                    + "stands for the referring tenant's slug in upper case with '-' as '_' (acme-eu: ACME_EU), at most once and with no '*' "
                    + "before it. A name is a tenant's when a {tenant} pattern matches it with that tenant's slug, the longest slug winning "
                    + "(ACME_EU_HOOK is acme-eu's, not acme's).",
                absent: "no {env: …} reference is allowed", example: "[\"{tenant}_*\", SHARED_SMTP_SECRET]"),
            FormatField(
                "files", .list(.text(.nonEmpty)),
                "Folders, relative to the configuration folder, whose files tenants may reference with {file: …}; a path component may "
                    + "be {tenant}, the referring tenant's slug. Links are judged by where they lead as well as by where they are.",
                absent: "no {file: …} reference is allowed", example: "[\"secrets/{tenant}\"]"),
        ])

    // MARK: Tenant

    static let branding = FormatObject(
        "Branding",
        fields: [
            FormatField(
                "primaryColor", .text(.color), "The brand colour: '#' and 3 or 6 hex digits, quoted (an unquoted # starts a comment). Stored upper case.",
                absent: "cleared when the branding section is written", example: "\"#C8102E\""),
            FormatField(
                "logoUrl", .text(.httpsURL), "The logo's URL: https, on a public host.", absent: "cleared when the branding section is written",
                example: "https://cdn.acme.com/brand/logo.svg"),
            FormatField(
                "customDomain", .text(.domain), "A public DNS name the tenant's app is served on. Stored lower case.",
                absent: "cleared when the branding section is written", example: "app.acme.com"),
        ])

    static let security = FormatObject(
        "Security",
        fields: [
            FormatField(
                "mfa", .oneOf(MFAPolicy.allCases.map(\.rawValue)), "Whether members must use multi-factor authentication.",
                absent: "cleared when the security section is written", example: "required"),
            FormatField(
                "sessionTimeout", .text(.duration(300...(30 * 86_400))), "How long a session lasts without activity.",
                absent: "cleared when the security section is written", example: "8h"),
            FormatField(
                "ipAllowlist", .list(.text(.cidr)),
                "The networks members may sign in from. A non-empty list needs the plan's ip-allowlist feature.",
                absent: "cleared when the security section is written", example: "[203.0.113.0/24, \"2001:db8::/32\"]"),
        ])

    static let member = FormatObject(
        "Member",
        fields: [
            FormatField(
                "role", .text(.nonEmpty), required: true, "A system role or one of the tenant's custom roles.", example: "admin"),
            FormatField(
                "expires", .text(.date),
                "When the membership ends. Required for a role with maxDuration; a date in the past is a warning.",
                absent: "the membership does not expire (a stored expiry is cleared)", example: "2027-01-31"),
        ])

    static let team = FormatObject(
        "Team",
        fields: [
            FormatField("name", .text(.nonEmpty), "The team's display name.", absent: "not managed", example: "Platform Engineering"),
            FormatField("description", .text(.any), "What the team does.", absent: "not managed", example: "Runs the platform"),
            FormatField(
                "parent", .text(.nonEmpty), "The slug of another team of the same tenant. Parents may not form a cycle.",
                absent: "a top-level team", example: "platform"),
            FormatField(
                "members", .map(key: .email, value: .oneOf(TeamRole.allCases.map(\.rawValue))),
                "The team's members and their team roles. When the tenant declares members, each must be one of them.",
                absent: "not managed", example: "{alice@acme.com: lead, bob@acme.com: member}"),
            FormatField(
                "quotas", .object(quotas), "Limits for the team, at most the tenant's effective quota of the same name.",
                absent: "not managed", example: "{apps: 10}"),
            FormatField(
                "previously", .list(.text(.slug)),
                "Earlier slugs of this team: a stored team under one of them is renamed (an update that keeps its row and children), not deleted and recreated.",
                absent: "no rename", example: "[platform]"),
        ])

    static let jit = FormatObject(
        "JIT",
        fields: [
            FormatField("enabled", .boolean, "Create members on their first SSO sign-in.", absent: "cleared when the sso section is written", example: "true"),
            FormatField(
                "defaultRole", .text(.nonEmpty), "The role of members created on first sign-in: an existing role, never owner.",
                absent: "cleared when the sso section is written", example: "member"),
        ])

    static let provider = FormatObject(
        "SSO provider",
        fields: [
            FormatField(
                "type", .oneOf(SSOProviderSpec.Kind.allCases.map(\.rawValue)), required: true,
                "The protocol. A SAML provider takes entityId, ssoUrl and certificate; an OIDC provider takes issuer, clientId and clientSecret. "
                    + "The other type's keys are errors.",
                example: "saml"),
            FormatField("entityId", .text(.nonEmpty), "SAML: the identity provider's entity ID.", example: "http://www.okta.com/exk1acme"),
            FormatField(
                "ssoUrl", .text(.httpsURL), "SAML: the identity provider's sign-in URL.", example: "https://acme.okta.com/app/acme/exk1acme/sso/saml"),
            FormatField(
                "certificate", .certificate,
                "SAML: the identity provider's signing certificate, as {file: path} (relative to this YAML file, inside the configuration "
                    + "folder, at most 1 MiB) or the PEM text. Must parse as X.509; expired is an error, expiring within 30 days a warning.",
                example: "{file: ../certs/acme-okta.pem}"),
            FormatField("issuer", .text(.httpsURL), "OIDC: the issuer URL.", example: "https://accounts.google.com"),
            FormatField("clientId", .text(.nonEmpty), "OIDC: the client ID.", example: "globex-orgctl.apps.googleusercontent.com"),
            FormatField("clientSecret", .secretReference, "OIDC: the client secret, as a reference.", example: "{env: GLOBEX_OIDC_CLIENT_SECRET}"),
        ],
        variants: FormatVariants(
            key: "type",
            cases: [
                .init(value: "saml", fields: ["entityId", "ssoUrl", "certificate"]),
                .init(value: "oidc", fields: ["issuer", "clientId", "clientSecret"]),
            ]))

    static let sso = FormatObject(
        "SSO",
        fields: [
            FormatField(
                "enforce", .boolean,
                "Members of the tenant's domains must sign in through SSO. true needs at least one provider; true without domains is a warning.",
                absent: "cleared when the sso section is written", example: "true"),
            FormatField("jit", .object(jit), "Just-in-time provisioning on first sign-in.", example: "{enabled: true, defaultRole: member}"),
            FormatField(
                "providers", .map(key: .slug, value: .object(provider)), "Identity providers, keyed by name.",
                absent: "not managed: stored providers are left alone",
                example: "\n  okta:\n    type: saml\n    entityId: http://www.okta.com/exk1acme\n    ssoUrl: https://acme.okta.com/app/acme/exk1acme/sso/saml\n    certificate: {file: ../certs/acme-okta.pem}"),
        ])

    static let webhook = FormatObject(
        "Webhook",
        fields: [
            FormatField("url", .text(.httpsURL), required: true, "Where events are delivered: https, on a public host.", example: "https://hooks.slack.com/services/T000/B000/XXXX"),
            FormatField(
                "events", .list(.text(.dottedPattern), nonEmpty: true), required: true,
                "Event names or patterns (member.*); each must match at least one event of the Platform.",
                example: "[\"member.*\", organization.updated]"),
            FormatField("secret", .secretReference, "The signing secret, as a reference.", absent: "not managed", example: "{env: ACME_SLACK_WEBHOOK_SECRET}"),
            FormatField("timeout", .text(.duration(1...300)), "How long a delivery may take.", absent: "not managed", example: "30s"),
            FormatField("maxRetries", .integer(0...10), "How often a failed delivery is retried.", absent: "not managed", example: "5"),
            FormatField("enabled", .boolean, "Whether deliveries are made.", absent: "not managed", example: "true"),
        ])

    static let apiKey = FormatObject(
        "API key",
        fields: [
            FormatField(
                "scopes", .list(.text(.dottedPattern)), required: true,
                "The permissions the key grants, as patterns; each must match at least one permission of the catalog.",
                example: "[apps.create, apps.read]"),
            FormatField("description", .text(.any), "What the key is for.", absent: "not managed", example: "Deploys from CI"),
            FormatField("rateLimit", .text(.rate), "The key's rate limit.", absent: "not managed", example: "600/h"),
            FormatField("expires", .text(.date), "When the key stops working; a date in the past is a warning.", absent: "not managed", example: "2027-06-30"),
            FormatField(
                "rotate", .integer(0...1_000_000),
                "A counter: raising it makes apply issue a new key (the plaintext goes to --secrets-out once). Lowering it only records the value.",
                absent: "not managed", example: "2"),
            FormatField(
                "rotateOnScopeChange", .boolean, "When true, a change of scopes makes apply issue a new key.",
                absent: "not managed", example: "true"),
        ])

    static let tenant = FormatKind(
        name: "Tenant",
        summary: "One organization: its plan, status, domains, branding, security, quotas, custom roles, members, teams, SSO, "
            + "webhooks and API keys. Checked against the Platform. A section that is left out is not managed.",
        object: FormatObject(
            "Tenant",
            fields: [
                FormatField("apiVersion", .constant(apiVersion), required: true, "The format version.", example: apiVersion),
                FormatField("kind", .constant("Tenant"), required: true, "The document kind.", example: "Tenant"),
                FormatField("slug", .text(.slug), required: true, "The tenant's identity, unique across the configuration.", example: "acme"),
                FormatField(
                    "previously", .list(.text(.slug)),
                    "Earlier slugs of this tenant: a stored tenant under one of them is renamed (an update that keeps its row and children), not deleted and recreated.",
                    absent: "no rename", example: "[acme-corp]"),
                FormatField("name", .text(.nonEmpty), required: true, "The display name.", example: "Acme Corporation"),
                FormatField("plan", .text(.nonEmpty), required: true, "One of the Platform's plans.", example: "enterprise"),
                FormatField(
                    "status", .oneOf(TenantStatus.allCases.map(\.rawValue)),
                    "The tenant's status. trial requires trialEnds. A suspended tenant needs no owner.",
                    absent: "not managed; a new tenant is created active", example: "active"),
                FormatField(
                    "trialEnds", .text(.date), "When the trial ends. Required with status: trial and an error with any other status.",
                    absent: "with status written, a stored date is cleared", example: "2026-12-31"),
                FormatField(
                    "domains", .list(.text(.domain)),
                    "E-mail domains whose users may be members (guests are exempt). Stored lower case.",
                    absent: "not managed; any e-mail domain may be a member", example: "[acme.com, acme.co.uk]"),
                FormatField("branding", .object(branding), "How the tenant's app looks.", absent: "not managed",
                            example: "{primaryColor: \"#C8102E\", logoUrl: https://cdn.acme.com/logo.svg, customDomain: app.acme.com}"),
                FormatField("security", .object(security), "Sign-in rules.", absent: "not managed",
                            example: "{mfa: required, sessionTimeout: 8h, ipAllowlist: [203.0.113.0/24]}"),
                FormatField(
                    "quotas", .object(quotas),
                    "Overrides of the plan's quotas. The number of members, teams, webhooks and API keys must fit the effective quota.",
                    absent: "not managed: the plan's quotas apply", example: "{seats: 500, storage: 2TiB}"),
                FormatField(
                    "roles", .map(key: .slug, value: .object(role)),
                    "Custom roles, keyed by name. A non-empty section needs the plan's custom-roles feature; a custom role may not "
                        + "have the name of a system role.",
                    absent: "not managed: stored custom roles are left alone",
                    example: "\n  billing-admin: {description: Manages invoices, permissions: [\"billing.*\", users.read]}"),
                FormatField(
                    "members", .map(key: .email, value: .either(.text(.nonEmpty), .object(member))),
                    "Members keyed by e-mail address (compared ignoring case, stored lower case): a role name, or {role, expires}. "
                        + "Unless the tenant is suspended, at least one member must be an owner.",
                    absent: "not managed: stored members are left alone",
                    example: "\n  alice@acme.com: owner\n  bob@acme.com: {role: admin}\n  carol@contractor.io: {role: guest, expires: 2027-01-31}"),
                FormatField(
                    "teams", .map(key: .slug, value: .object(team)), "Teams keyed by slug.",
                    absent: "not managed: stored teams are left alone",
                    example: "\n  platform:\n    name: Platform Engineering\n    members: {alice@acme.com: lead}\n  sre: {name: Site Reliability, parent: platform}"),
                FormatField(
                    "sso", .object(sso), "Single sign-on. The section, even empty, needs the plan's sso feature.", absent: "not managed",
                    example: "\n  enforce: true\n  jit: {enabled: true, defaultRole: member}"),
                FormatField(
                    "webhooks", .map(key: .slug, value: .object(webhook)), "Webhooks keyed by name.",
                    absent: "not managed: stored webhooks are left alone",
                    example: "\n  slack:\n    url: https://hooks.slack.com/services/T000/B000/XXXX\n    events: [\"member.*\"]\n    secret: {env: ACME_SLACK_WEBHOOK_SECRET}"),
                FormatField(
                    "apiKeys", .map(key: .slug, value: .object(apiKey)),
                    "API keys keyed by name. orgctl records their scopes, limits and expiry; it does not issue key secrets.",
                    absent: "not managed: stored API keys are left alone",
                    example: "\n  ci-deployer: {scopes: [apps.create], rateLimit: 600/h, expires: 2027-06-30}"),
                tenantPolicies,
            ]),
        example: """
            apiVersion: orgctl.dev/v1
            kind: Tenant
            slug: acme
            name: Acme Corporation
            plan: business
            status: active
            domains: [acme.com]
            branding: {primaryColor: "#C8102E", logoUrl: https://cdn.acme.com/logo.svg, customDomain: app.acme.com}
            security: {mfa: required, sessionTimeout: 8h}
            quotas: {seats: 500, storage: 2TiB}
            roles:
              billing-admin: {description: Manages invoices, permissions: ["billing.*", users.read]}
            members:
              alice@acme.com: owner
              bob@acme.com: {role: admin}
              carol@contractor.io: {role: guest, expires: 2027-01-31}
            teams:
              platform:
                name: Platform Engineering
                members: {alice@acme.com: lead, bob@acme.com: member}
                quotas: {apps: 10}
              sre: {name: Site Reliability, parent: platform}
            sso:
              enforce: true
              jit: {enabled: true, defaultRole: member}
              providers:
                google:
                  type: oidc
                  issuer: https://accounts.google.com
                  clientId: acme-orgctl.apps.googleusercontent.com
                  clientSecret: {env: ACME_OIDC_CLIENT_SECRET}
            webhooks:
              slack:
                url: https://hooks.slack.com/services/T000/B000/XXXX
                events: ["member.*", organization.updated]
                secret: {env: ACME_SLACK_WEBHOOK_SECRET}
                timeout: 30s
                maxRetries: 5
                enabled: true
            apiKeys:
              ci-deployer:
                description: Deploys from CI
                scopes: [apps.create, apps.read]
                rateLimit: 600/h
                expires: 2027-06-30

            """)
}

extension SpecFormat {
    /// The shape of any document: the keys of every kind together (`kind` may come last), so the
    /// loader skips only values that no kind could have.
    public static let documentShape: YAMLShape = {
        var fields: [String: YAMLShape] = [:]
        for kind in kinds {
            for field in kind.object.fields { fields[field.name] = shape(field.type) }
        }
        return .object(fields)
    }()

    static func shape(_ type: FormatType) -> YAMLShape {
        switch type {
        case .object(let object):
            var fields: [String: YAMLShape] = [:]
            for field in object.fields { fields[field.name] = shape(field.type) }
            return .object(fields)
        case .map(_, let value, _): return .map(shape(value))
        case .list(let item, _): return .list(shape(item))
        case .either(let a, let b):
            // A member is a role name or {role, expires}: the mapping side decides the keys.
            if case .object = shape(a) { return shape(a) }
            return shape(b)
        default: return .any
        }
    }
}
