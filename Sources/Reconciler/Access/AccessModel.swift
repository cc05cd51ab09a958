public import Spec

/// Who can do what, computed from resources (the state's, or a configuration's desired state). Pure:
/// no I/O; `today` is given. `orgctl access` is its command line.
///
/// A member holds the permissions of the catalog that its role's patterns match (`*` any run of
/// characters: `apps.*`, `*.read`, `*`). A membership whose `expires` is before today grants nothing.
public struct AccessModel: Sendable {
    /// The permission catalog, sorted.
    public let catalog: [String]
    public let today: CalendarDate
    /// Role address (`role/admin`, `tenant/acme/role/billing-admin`) → its patterns and guest limit.
    private var roles: [String: Role] = [:]
    /// Tenant address → its facts and members.
    private var tenants: [String: Tenant] = [:]

    public struct Role: Sendable {
        public var name: String
        public var address: String
        public var patterns: [String]
        public var maxDuration: String?
        public var isSystem: Bool
    }

    public struct Tenant: Sendable {
        public var address: String
        public var slug: String
        public var plan: String?
        public var status: String?
        public var domains: [String]
        public var ssoEnforced: Bool
        public var mfa: String?
        /// Sorted by e-mail.
        public var members: [Member] = []
        /// Team slug → parent slug.
        public var teamParents: [String: String] = [:]
        /// E-mail → [(team slug, team role)].
        public var teams: [String: [(team: String, role: String)]] = [:]
    }

    public struct Member: Sendable {
        public var email: String
        public var address: String
        public var role: String
        public var expires: String?
    }

    /// One permission a member holds, and what grants it.
    public struct Grant: Sendable, Equatable {
        public var permission: String
        /// The role's pattern that matches it (`apps.*`); equal to the permission when named exactly.
        public var pattern: String
    }

    /// Everything `access EMAIL --tenant T` shows.
    public struct Explanation: Sendable {
        public var tenant: Tenant
        public var member: Member
        public var role: Role?
        public var expired: Bool
        public var grants: [Grant]
        /// Teams, each with its chain of parent teams (`sre` inside `platform`).
        public var teams: [(team: String, role: String, parents: [String])]
        /// SSO applies to members of the tenant's domains when the tenant enforces it.
        public var ssoRequired: Bool
        public var mfaRequired: Bool
    }

    public init(resources: some Sequence<Resource>, today: CalendarDate) {
        self.today = today
        var catalog: [String] = []
        var members: [(tenant: String, Member)] = []
        var teamMembers: [(tenant: String, team: String, email: String, role: String)] = []
        var teamParents: [(tenant: String, team: String, parent: String)] = []
        for resource in resources {
            switch resource.kind {
            case .permission:
                catalog.append(String(resource.address.dropFirst("permission/".count)))
            case .role, .tenantRole:
                let name = String(resource.address.split(separator: "/").last ?? "")
                var patterns: [String] = []
                if case .list(let list) = resource["permissions"] { patterns = list }
                var maxDuration: String?
                if case .string(let text) = resource["maxDuration"] { maxDuration = text }
                roles[resource.address] = Role(name: name, address: resource.address, patterns: patterns, maxDuration: maxDuration,
                                               isSystem: resource.kind == .role)
            case .tenant:
                var domains: [String] = []
                if case .list(let list) = resource["domains"] { domains = list }
                let slug = String(resource.address.dropFirst("tenant/".count))
                tenants[resource.address] = Tenant(
                    address: resource.address, slug: slug, plan: Self.string(resource["plan"]), status: Self.string(resource["status"]),
                    domains: domains, ssoEnforced: resource["sso.enforce"] == .bool(true), mfa: Self.string(resource["security.mfa"]))
            case .member:
                guard let parent = resource.parent else { continue }
                let email = String(resource.address.split(separator: "/").last ?? "")
                members.append((parent, Member(email: email, address: resource.address, role: Self.string(resource["role"]) ?? "",
                                               expires: Self.string(resource["expires"]))))
            case .team:
                guard let parent = resource.parent else { continue }
                if let parentTeam = Self.string(resource["parent"]) {
                    teamParents.append((parent, String(resource.address.split(separator: "/").last ?? ""), parentTeam))
                }
            case .teamMember:
                let parts = resource.address.split(separator: "/")  // tenant/acme/team/sre/member/email
                guard parts.count == 6 else { continue }
                teamMembers.append(("tenant/\(parts[1])", String(parts[3]), String(parts[5]), Self.string(resource["role"]) ?? ""))
            default: continue
            }
        }
        for (tenant, member) in members { tenants[tenant]?.members.append(member) }
        // After the loop: whatever order the resources come in, every tenant is known by now.
        for entry in teamParents { tenants[entry.tenant]?.teamParents[entry.team] = entry.parent }
        for entry in teamMembers { tenants[entry.tenant]?.teams[entry.email, default: []].append((entry.team, entry.role)) }
        for key in tenants.keys { tenants[key]?.members.sort { $0.email < $1.email } }
        self.catalog = catalog.sorted()
    }

    private static func string(_ value: Value) -> String? {
        if case .string(let text) = value { return text }
        return nil
    }

    /// Tenant addresses, sorted.
    public var tenantAddresses: [String] { tenants.keys.sorted() }

    public func tenant(_ slug: String) -> Tenant? { tenants["tenant/\(slug)"] }

    /// The member's role: the tenant's custom role of that name, else the system role.
    public func role(of member: Member, in tenant: Tenant) -> Role? {
        roles["\(tenant.address)/role/\(member.role)"] ?? roles["role/\(member.role)"]
    }

    /// A membership with `expires` before today has ended.
    public func isExpired(_ member: Member) -> Bool {
        guard let expires = member.expires else { return false }
        return expires < today.text
    }

    /// The catalog's permissions the role grants, each with the first of the role's patterns (as written) that matches it.
    public func grants(_ role: Role?) -> [Grant] {
        guard let role else { return [] }
        var result: [Grant] = []
        for permission in catalog {
            if let pattern = role.patterns.first(where: { $0 == permission }) ?? role.patterns.first(where: { Glob.matches($0, permission) }) {
                result.append(Grant(permission: permission, pattern: pattern))
            }
        }
        return result
    }

    public func explain(_ email: String, tenant: Tenant) -> Explanation? {
        let email = email.lowercased()
        guard let member = tenant.members.first(where: { $0.email == email }) else { return nil }
        let role = role(of: member, in: tenant)
        let expired = isExpired(member)
        var teams: [(String, String, [String])] = []
        for entry in (tenant.teams[email] ?? []).sorted(by: { $0.team < $1.team }) {
            var parents: [String] = []
            var current = entry.team
            while let parent = tenant.teamParents[current], !parents.contains(parent), parent != entry.team, parents.count <= tenant.teamParents.count {
                parents.append(parent)
                current = parent
            }
            teams.append((entry.team, entry.role, parents))
        }
        let inDomains = tenant.domains.contains { email.hasSuffix("@" + $0) }
        return Explanation(tenant: tenant, member: member, role: role, expired: expired, grants: expired ? [] : grants(role), teams: teams,
                           ssoRequired: tenant.ssoEnforced && inDomains, mfaRequired: tenant.mfa == "required")
    }

    /// Everyone in `tenant` who holds `permission` (not expired), with the role and pattern that grant it.
    public func whoCan(_ permission: String, in tenant: Tenant) -> [(member: Member, role: Role, pattern: String)] {
        var result: [(Member, Role, String)] = []
        for member in tenant.members where !isExpired(member) {
            guard let role = role(of: member, in: tenant) else { continue }
            if let pattern = role.patterns.first(where: { $0 == permission }) ?? role.patterns.first(where: { Glob.matches($0, permission) }) {
                result.append((member, role, pattern))
            }
        }
        return result
    }
}
