/// Quotas written in a plan, a tenant or a team, in the order written.
public struct QuotaSet: Sendable {
    public struct Entry: Sendable {
        public var name: QuotaName
        public var value: QuotaValue
        public var location: SourceLocation
    }

    public var entries: [Entry]
    public var location: SourceLocation

    public subscript(name: QuotaName) -> QuotaValue? { entries.first { $0.name == name }?.value }
}

/// `kind: Platform`: the catalogs tenant documents are checked against.
public struct PlatformSpec: Sendable {
    public var location: SourceLocation
    /// Which optional catalogs the document declares; an absent one is not managed.
    public var declaresPermissions = false
    public var declaresRoles = false
    public var declaresEvents = false
    public var plans: [PlanSpec]
    public var permissions: [PermissionSpec]
    public var roles: [RoleSpec]
    public var events: [Located<String>]
    /// Which secret sources tenants may reference; nil when the Platform declares no `secrets`.
    public var secrets: SecretPolicy?
    /// Governance rules for every tenant (`policies:`); nil when not declared.
    public var policies: PolicySet?
}

public struct PlanSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var description: String?
    public var quotas: QuotaSet?
    public var rateLimit: Located<Rate>?
    public var features: [Located<String>]?
}

public struct PermissionSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var category: String?
    public var description: String?
}

/// A role: a platform (system) role, or a tenant's custom role.
public struct RoleSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var description: String?
    public var permissions: [Located<String>]
    /// Memberships with this role must expire within this duration (guest roles).
    public var maxDuration: Located<Duration>?
    /// Earlier slugs of this role (`previously:`): a stored role under one of them is renamed, not replaced.
    public var previously: [Located<String>] = []
}

public enum TenantStatus: String, Sendable, CaseIterable {
    case active, trial, suspended
}

public enum MFAPolicy: String, Sendable, CaseIterable {
    case required, optional
}

/// `kind: Tenant`: one organization. A nil section is not managed by orgctl.
public struct TenantSpec: Sendable {
    public var slug: String
    public var location: SourceLocation
    public var name: String?
    public var plan: Located<String>
    public var status: TenantStatus?
    public var trialEnds: Located<CalendarDate>?
    public var domains: [Located<String>]?
    public var branding: Branding?
    public var security: Security?
    public var quotas: QuotaSet?
    public var roles: [RoleSpec]?
    public var members: [MemberSpec]?
    public var teams: [TeamSpec]?
    public var sso: SSOSpec?
    public var webhooks: [WebhookSpec]?
    public var apiKeys: [APIKeySpec]?
    /// Earlier slugs of this tenant (`previously:`): a stored tenant under one of them is renamed, not replaced.
    public var previously: [Located<String>] = []
    /// The tenant's own governance rules, only stricter than the Platform's (`policies:`).
    public var policies: PolicySet?

    public struct Branding: Sendable {
        public var location: SourceLocation
        public var primaryColor: String?
        public var logoURL: String?
        public var customDomain: String?
    }

    public struct Security: Sendable {
        public var location: SourceLocation
        public var mfa: MFAPolicy?
        public var sessionTimeout: Duration?
        public var ipAllowlist: [Located<String>]?
    }
}

public struct MemberSpec: Sendable {
    /// Lower case: e-mail addresses compare case-insensitively.
    public var email: String
    public var location: SourceLocation
    public var role: Located<String>
    public var expires: Located<CalendarDate>?
    /// `expires` was written, whether or not it decoded (a bad date is reported once, as such).
    public var expiresWritten = false
}

public enum TeamRole: String, Sendable, CaseIterable {
    case lead, member
}

public struct TeamSpec: Sendable {
    public var slug: String
    public var location: SourceLocation
    public var name: String?
    public var description: String?
    public var parent: Located<String>?
    public var members: [TeamMemberSpec]?
    public var quotas: QuotaSet?
    /// Earlier slugs of this team (`previously:`): a stored team under one of them is renamed, not replaced.
    public var previously: [Located<String>] = []
}

public struct TeamMemberSpec: Sendable {
    public var email: String
    public var location: SourceLocation
    public var role: TeamRole
}

public struct SSOSpec: Sendable {
    public var location: SourceLocation
    public var enforce: Bool?
    public var jitEnabled: Bool?
    public var jitDefaultRole: Located<String>?
    public var providers: [SSOProviderSpec]?
}

public struct SSOProviderSpec: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case saml, oidc }

    public var name: String
    public var location: SourceLocation
    public var type: Kind
    // SAML
    public var entityID: String?
    public var ssoURL: String?
    public var certificate: CertificateInfo?
    // OIDC
    public var issuer: String?
    public var clientID: String?
    public var clientSecret: SecretReference?
}

/// A SAML signing certificate read and parsed while loading (public data, not a secret).
public struct CertificateInfo: Sendable {
    public var pem: String
    public var subject: String
    public var notAfter: CalendarDate
    public var notAfterTimestamp: Double
    /// Hex SHA-256 of the DER encoding, the value the state stores and plans compare.
    public var sha256: String
    public var location: SourceLocation
}

public struct WebhookSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var url: Located<String>
    public var events: [Located<String>]
    public var secret: SecretReference?
    public var timeout: Located<Duration>?
    public var maxRetries: Located<Int64>?
    public var enabled: Bool?
}

public struct APIKeySpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var description: String?
    public var scopes: [Located<String>]
    public var rateLimit: Located<Rate>?
    public var expires: Located<CalendarDate>?
    /// A counter: raising it makes apply issue a new key (`rotate: 2`).
    public var rotate: Located<Int64>?
    /// When true, a change of `scopes` makes apply issue a new key.
    public var rotateOnScopeChange: Bool?
}

/// A whole configuration: the validated desired state.
public struct Configuration: Sendable {
    public var platform: PlatformSpec?
    /// Sorted by slug.
    public var tenants: [TenantSpec]
    /// The files read, sorted, as the user named them.
    public var files: [String]
}
