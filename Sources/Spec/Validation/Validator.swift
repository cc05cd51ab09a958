import Dispatch
import Synchronization

/// The rules that span documents: references, features against plans, quotas against counts,
/// owners, team hierarchy, certificate and date expiry.
struct Validator {
    /// Today's date in UTC, injected so results do not depend on the wall clock in tests.
    let today: CalendarDate
    /// Seconds since 1970 now, for certificate expiry.
    let now: Double

    /// Features whose use orgctl can see in a tenant document; other feature names are allowed
    /// in plans (e.g. audit-export) but not checked.
    static let knownFeatures = ["sso", "custom-roles", "ip-allowlist", "audit-export"]

    func validate(platform: PlatformSpec?, tenants: [TenantSpec], diagnostics: inout Diagnostics) {
        guard let platform else { return }
        var catalog = Catalog(platform: platform)
        checkPlatform(platform, &catalog, &diagnostics)
        // Tenants are independent of each other: check them in parallel chunks, merged in order.
        let chunkSize = 256
        let chunks = (tenants.count + chunkSize - 1) / chunkSize
        let results = Mutex<[Diagnostics]>(Array(repeating: Diagnostics(), count: chunks))
        let shared = catalog
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            var local = Diagnostics()
            var catalog = shared
            for tenant in tenants[(chunk * chunkSize)..<min(tenants.count, (chunk + 1) * chunkSize)] {
                checkTenant(tenant, platform, &catalog, &local)
            }
            results.withLock { $0[chunk] = local }
        }
        for chunk in results.withLock({ $0 }) { diagnostics.append(contentsOf: chunk) }
    }

    /// Lookup tables built once and memoised pattern matches (the same patterns repeat in every tenant).
    struct Catalog: Sendable {
        let plans: [String: PlanSpec]
        let permissions: [String]
        let systemRoles: [String: RoleSpec]
        let events: [String]
        /// The Platform's `requiredMembers`: exempt from the tenants' domains rule.
        let requiredMembers: Set<String>
        var permissionMatches: [String: Bool] = [:]
        var eventMatches: [String: Bool] = [:]

        init(platform: PlatformSpec) {
            plans = Dictionary(platform.plans.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            permissions = platform.permissions.map(\.name)
            systemRoles = Dictionary(platform.roles.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            events = platform.events.map(\.value)
            requiredMembers = Set(platform.policies?.requiredMembers?.members.map(\.value) ?? [])
        }

        mutating func permissionExists(_ pattern: String) -> Bool {
            if let known = permissionMatches[pattern] { return known }
            let result = permissions.contains { Glob.matches(pattern, $0) }
            permissionMatches[pattern] = result
            return result
        }

        mutating func eventExists(_ pattern: String) -> Bool {
            if let known = eventMatches[pattern] { return known }
            let result = events.contains { Glob.matches(pattern, $0) }
            eventMatches[pattern] = result
            return result
        }
    }

    private func checkPermissions(
        _ patterns: [Located<String>], owner: String, _ catalog: inout Catalog, _ d: inout Diagnostics
    ) {
        for pattern in patterns where !catalog.permissionExists(pattern.value) {
            let hint = Suggestions.didYouMean(pattern.value, among: catalog.permissions)
                ?? "declare it under the Platform's 'permissions', or use a pattern such as apps.*"
            d.error("spec.unknown-permission", "\(owner) grants '\(pattern.value)', which matches no permission in the catalog",
                    at: pattern.location, help: hint)
        }
    }

    private func checkPlatform(_ platform: PlatformSpec, _ catalog: inout Catalog, _ d: inout Diagnostics) {
        for plan in platform.plans {
            for feature in plan.features ?? [] where !Self.knownFeatures.contains(feature.value) {
                d.error("spec.unknown-feature", "plan '\(plan.name)' names unknown feature '\(feature.value)'", at: feature.location,
                        help: Suggestions.didYouMean(feature.value, among: Self.knownFeatures)
                            ?? "known features are: \(Self.knownFeatures.joined(separator: ", "))")
            }
        }
        for role in platform.roles {
            checkPermissions(role.permissions, owner: "role '\(role.name)'", &catalog, &d)
        }
        Self.checkRenames(platform.roles.map { ($0.name, $0.location, $0.previously) }, what: "role", in: "the Platform", &d)
        if let policies = platform.policies { checkPolicies(policies, platform, catalog, &d) }
        if catalog.systemRoles["owner"] == nil {
            d.error("spec.missing-owner-role", "the Platform declares no 'owner' role", at: platform.location,
                    help: "declare roles: {owner: {permissions: [\"*\"]}} so every tenant can have an owner")
        }
    }


    private func checkTenant(_ tenant: TenantSpec, _ platform: PlatformSpec, _ catalog: inout Catalog, _ d: inout Diagnostics) {
        let who = "tenant '\(tenant.slug)'"
        let plan = catalog.plans[tenant.plan.value]
        if plan == nil {
            d.error("spec.unknown-plan", "\(who) names plan '\(tenant.plan.value)', which the Platform does not declare",
                    at: tenant.plan.location,
                    help: Suggestions.didYouMean(tenant.plan.value, among: catalog.plans.keys.sorted())
                        ?? "use one of: \(catalog.plans.keys.sorted().joined(separator: ", "))")
        }
        let features = Set(plan?.features?.map(\.value) ?? [])
        func requireFeature(_ feature: String, _ what: String, at location: SourceLocation) {
            guard let plan, !features.contains(feature) else { return }
            d.error("spec.feature-not-in-plan", "\(who) uses \(what), but plan '\(plan.name)' lacks feature '\(feature)'",
                    at: location, help: "move the tenant to a plan with '\(feature)', or remove \(what)")
        }

        // Status and trial.
        if tenant.status == .trial && tenant.trialEnds == nil {
            d.error("spec.trial-ends", "\(who) has status trial but no trialEnds", at: tenant.location,
                    help: "add 'trialEnds: YYYY-MM-DD'")
        }
        if let ends = tenant.trialEnds {
            if tenant.status != .trial {
                d.error("spec.trial-ends", "trialEnds applies only to status trial", at: ends.location,
                        help: "set 'status: trial' or remove trialEnds")
            } else if ends.value < today {
                d.warning("spec.trial-ended", "the trial of \(who) ended on \(ends.value)", at: ends.location,
                          help: "change the status, or extend trialEnds")
            }
        }

        // Roles.
        var tenantRoles: [String: RoleSpec] = [:]
        for role in tenant.roles ?? [] {
            if catalog.systemRoles[role.name] != nil {
                d.error("spec.role-shadows-system", "custom role '\(role.name)' has the name of a system role", at: role.location,
                        help: "rename the custom role; system roles are offered to every tenant")
            }
            tenantRoles[role.name] = role
            checkPermissions(role.permissions, owner: "role '\(role.name)'", &catalog, &d)
        }
        if let first = tenant.roles?.first {
            requireFeature("custom-roles", "custom roles", at: first.location)
        }
        if let roles = tenant.roles {
            Self.checkRenames(roles.map { ($0.name, $0.location, $0.previously) }, what: "role", in: who, &d)
        }
        if let teams = tenant.teams {
            Self.checkRenames(teams.map { ($0.slug, $0.location, $0.previously) }, what: "team", in: who, &d)
        }
        func roleExists(_ name: String) -> Bool { tenantRoles[name] != nil || catalog.systemRoles[name] != nil }
        func unknownRole(_ role: Located<String>, _ what: String) {
            let names = (Array(catalog.systemRoles.keys) + Array(tenantRoles.keys)).sorted()
            d.error("spec.unknown-role", "\(what) names role '\(role.value)', which does not exist", at: role.location,
                    help: Suggestions.didYouMean(role.value, among: names) ?? "use one of: \(names.joined(separator: ", "))")
        }

        // Members. Per member this runs ~500,000 times on large configurations: role facts come from
        // a small per-tenant cache and domains are compared as UTF-8 suffixes, without allocating.
        let domainSuffixes = (tenant.domains ?? []).map { Array("@\($0.value)".utf8) }
        var roleCache: [(name: String, exists: Bool, guest: Bool, needsExpiry: Bool)] = []
        func roleFacts(_ name: String) -> (exists: Bool, guest: Bool, needsExpiry: Bool) {
            if let cached = roleCache.first(where: { $0.name == name }) { return (cached.exists, cached.guest, cached.needsExpiry) }
            let role = tenantRoles[name] ?? catalog.systemRoles[name]
            let facts = (exists: role != nil, guest: name == "guest" || role?.maxDuration != nil, needsExpiry: role?.maxDuration != nil)
            if roleCache.count < 16 { roleCache.append((name, facts.exists, facts.guest, facts.needsExpiry)) }
            return facts
        }
        let requiredMembers = catalog.requiredMembers
        if let members = tenant.members {
            var owners = 0
            for member in members {
                let facts = roleFacts(member.role.value)
                if !facts.exists {
                    unknownRole(member.role, "member '\(member.email)'")
                }
                if member.role.value == "owner" { owners += 1 }
                if !facts.guest, tenant.domains != nil, !requiredMembers.contains(member.email), !domainSuffixes.contains(where: { member.email.utf8.reversed().starts(with: $0.reversed()) }) {
                    let domain = member.email.utf8.lastIndex(of: UInt8(ascii: "@")).map { String(member.email[member.email.utf8.index(after: $0)...]) } ?? ""
                    d.error("spec.member-domain", "member '\(member.email)' is outside the tenant's domains", at: member.location,
                            help: "add '\(domain)' to domains, or give the member a guest role with an expiry")
                }
                if facts.needsExpiry, member.expires == nil, !member.expiresWritten {
                    d.error("spec.guest-expiry", "member '\(member.email)' has guest role '\(member.role.value)' but no expiry",
                            at: member.location, help: "write the member as {role: \(member.role.value), expires: YYYY-MM-DD}")
                }
                if facts.needsExpiry, let expires = member.expires,
                    let maxDuration = (tenantRoles[member.role.value] ?? catalog.systemRoles[member.role.value])?.maxDuration
                {
                    checkGuestExpiry(member, expires: expires, maxDuration: maxDuration, &d)
                }
                if let expires = member.expires, expires.value < today {
                    d.warning("spec.member-expired", "membership of '\(member.email)' expired on \(expires.value)", at: expires.location,
                              help: "remove the member, or extend the expiry")
                }
            }
            if owners == 0 && tenant.status != .suspended {
                d.error("spec.no-owner", "\(who) has no member with role 'owner'", at: tenant.location,
                        help: "give at least one member the role owner, so the tenant is not locked out")
            }
        }

        // Quotas: the tenant's overrides on top of the plan's defaults.
        func effective(_ name: QuotaName) -> (QuotaValue, SourceLocation?)? {
            if let entry = tenant.quotas?.entries.first(where: { $0.name == name }) { return (entry.value, entry.location) }
            if let entry = plan?.quotas?.entries.first(where: { $0.name == name }) { return (entry.value, nil) }
            return nil
        }
        func checkCount(_ name: QuotaName, _ count: Int, _ what: String, at location: SourceLocation) {
            guard let (quota, _) = effective(name), !quota.allows(count) else { return }
            d.error("spec.quota-exceeded", "\(who) declares \(count) \(what), more than its '\(name.rawValue)' quota of \(quota)",
                    at: location, help: "raise quotas.\(name.rawValue) for this tenant, or move it to a larger plan")
        }
        if let members = tenant.members, let first = members.first {
            checkCount(.seats, members.count, "members", at: first.location)
        }
        if let teams = tenant.teams, let first = teams.first {
            checkCount(.teams, teams.count, "teams", at: first.location)
        }
        if let webhooks = tenant.webhooks, let first = webhooks.first {
            checkCount(.webhooks, webhooks.count, "webhooks", at: first.location)
        }
        if let keys = tenant.apiKeys, let first = keys.first {
            checkCount(.apiKeys, keys.count, "API keys", at: first.location)
        }

        // Security.
        if let list = tenant.security?.ipAllowlist, let first = list.first {
            requireFeature("ip-allowlist", "an IP allowlist", at: first.location)
        }

        // Teams: parents, cycles, members, quotas within the tenant's.
        if let teams = tenant.teams {
            let memberEmails = Set(tenant.members?.map(\.email) ?? [])
            let bySlug = Dictionary(teams.map { ($0.slug, $0) }, uniquingKeysWith: { a, _ in a })
            for team in teams {
                if let parent = team.parent, bySlug[parent.value] == nil {
                    d.error("spec.unknown-team", "team '\(team.slug)' names parent '\(parent.value)', which this tenant does not declare",
                            at: parent.location, help: Suggestions.didYouMean(parent.value, among: bySlug.keys.sorted()) ?? "declare the parent team, or remove 'parent'")
                }
                if tenant.members != nil {
                    for member in team.members ?? [] where !memberEmails.contains(member.email) {
                        d.error("spec.unknown-member", "team '\(team.slug)' lists '\(member.email)', who is not a member of \(who)",
                                at: member.location, help: Suggestions.didYouMean(member.email, among: memberEmails.sorted()) ?? "add them under the tenant's members first")
                    }
                }
                for entry in team.quotas?.entries ?? [] {
                    if case .limit(let teamLimit) = entry.value, let (tenantQuota, _) = effective(entry.name),
                        case .limit(let tenantLimit) = tenantQuota, teamLimit > tenantLimit
                    {
                        let show = { (n: Int64) in entry.name.isSize ? ByteSize(bytes: n).description : String(n) }
                        d.error("spec.quota-exceeded", "team '\(team.slug)' quota '\(entry.name.rawValue)' of \(show(teamLimit)) exceeds the tenant's \(show(tenantLimit))",
                                at: entry.location, help: "lower the team quota to at most \(show(tenantLimit))")
                    }
                    if case .unlimited = entry.value, let (tenantQuota, _) = effective(entry.name), case .limit(let tenantLimit) = tenantQuota {
                        d.error("spec.quota-exceeded", "team '\(team.slug)' quota '\(entry.name.rawValue)' is unlimited but the tenant's is \(tenantLimit)",
                                at: entry.location, help: "give the team a limit of at most \(tenantLimit)")
                    }
                }
            }
            // Cycles: follow parents from each team; the walk is bounded by the team count.
            var reported: Set<String> = []
            for team in teams where !reported.contains(team.slug) {
                var path: [String] = [team.slug]
                var current = team
                while let parent = current.parent?.value, let next = bySlug[parent] {
                    if let start = path.firstIndex(of: parent) {
                        let cycle = path[start...] + [parent]
                        if reported.insert(parent).inserted {
                            d.error("spec.team-cycle", "teams form a cycle: \(cycle.joined(separator: " -> "))",
                                    at: bySlug[parent]?.parent?.location ?? team.location,
                                    help: "remove 'parent' from one of these teams")
                        }
                        cycle.forEach { reported.insert($0) }
                        break
                    }
                    if path.count > teams.count { break }
                    path.append(parent)
                    current = next
                }
            }
        }

        // SSO.
        if let sso = tenant.sso {
            requireFeature("sso", "SSO", at: sso.location)
            if let role = sso.jitDefaultRole, !roleExists(role.value) {
                unknownRole(role, "sso.jit.defaultRole")
            }
            if let role = sso.jitDefaultRole, role.value == "owner" {
                d.error("spec.jit-owner", "sso.jit.defaultRole must not be 'owner'", at: role.location,
                        help: "give new SSO users a least-privilege role such as member or viewer")
            }
            if sso.enforce == true, sso.providers?.isEmpty ?? true {
                d.error("spec.sso-enforce", "sso.enforce is true but no provider is declared", at: sso.location,
                        help: "declare a provider under sso.providers, or set enforce: false")
            }
            if sso.enforce == true, tenant.domains?.isEmpty ?? true {
                d.warning("spec.sso-enforce", "sso.enforce applies to members of the tenant's domains, and it declares none", at: sso.location,
                          help: "add domains, or set enforce: false")
            }
            for provider in sso.providers ?? [] {
                guard let certificate = provider.certificate else { continue }
                if certificate.notAfterTimestamp < now {
                    d.error("spec.certificate-expired", "certificate of provider '\(provider.name)' expired on \(certificate.notAfter)",
                            at: certificate.location, help: "get the current signing certificate from the identity provider")
                } else if certificate.notAfterTimestamp < now + 30 * 86_400 {
                    d.warning("spec.certificate-expiring", "certificate of provider '\(provider.name)' expires on \(certificate.notAfter), within 30 days",
                              at: certificate.location, help: "rotate the certificate with the identity provider before it expires")
                }
            }
        }

        if let policies = tenant.policies {
            checkPolicies(policies, platform, catalog, &d)
            checkStricter(policies, than: platform.policies, tenant: who, &d)
        }

        // Webhooks and API keys.
        for webhook in tenant.webhooks ?? [] {
            for event in webhook.events where !catalog.eventExists(event.value) {
                d.error("spec.unknown-event", "webhook '\(webhook.name)' subscribes to '\(event.value)', which matches no Platform event",
                        at: event.location, help: Suggestions.didYouMean(event.value, among: catalog.events) ?? "declare the event under the Platform's 'events'")
            }
            if webhook.events.isEmpty {
                d.error("spec.empty", "webhook '\(webhook.name)' subscribes to no events", at: webhook.location, help: "list at least one event")
            }
        }
        for key in tenant.apiKeys ?? [] {
            checkPermissions(key.scopes, owner: "API key '\(key.name)'", &catalog, &d)
            if let expires = key.expires, expires.value < today {
                d.warning("spec.apikey-expired", "API key '\(key.name)' expired on \(expires.value)", at: expires.location,
                          help: "remove the key, or rotate it with a new expiry")
            }
        }
    }
}

extension Validator {
    /// The rules of `previously:` that need no state: an earlier slug must not be declared as a live
    /// resource of the same collection, nor be claimed by two resources. Linear in the entries.
    static func checkRenames(
        _ items: [(slug: String, location: SourceLocation, previously: [Located<String>])], what: String, in scope: String,
        _ d: inout Diagnostics
    ) {
        guard items.contains(where: { !$0.previously.isEmpty }) else { return }
        var live: [String: SourceLocation] = [:]
        for item in items where live[item.slug] == nil { live[item.slug] = item.location }
        var claimed: [String: (slug: String, location: SourceLocation)] = [:]
        for item in items {
            for old in item.previously {
                if let declared = live[old.value] {
                    d.error("spec.rename", "\(what) '\(item.slug)' lists '\(old.value)' under previously, but \(what) '\(old.value)' is also declared in \(scope)",
                            at: old.location, help: "a renamed \(what) is declared only under its new slug: remove '\(old.value)' from previously, or the other \(what)",
                            notes: [.init("\(what) '\(old.value)' is declared here", at: declared)])
                } else if let first = claimed[old.value] {
                    d.error("spec.rename", "\(what)s '\(first.slug)' and '\(item.slug)' both list '\(old.value)' under previously",
                            at: old.location, help: "a stored \(what) can be renamed to one new slug only: keep '\(old.value)' under one of them",
                            notes: [.init("first listed here", at: first.location)])
                } else {
                    claimed[old.value] = (item.slug, old.location)
                }
            }
        }
    }
}

/// `*` matches any run of characters (dots included): `*`, `apps.*`, `*.read`, `member.*`.
/// Also the segment matcher of `--target` address patterns.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        if !pattern.contains("*") { return pattern == text }
        let p = Array(pattern.utf8), t = Array(text.utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && p[pi] == t[ti] {
                pi += 1; ti += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
