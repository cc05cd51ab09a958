public import Spec
public import StateStore

/// One place a policy fails: the address, what is wrong, and where the configuration says it (when it does).
public struct PolicyViolation: Sendable, Equatable {
    public var address: String
    public var message: String
    public var location: SourceLocation?

    public init(address: String, message: String, location: SourceLocation? = nil) {
        self.address = address
        self.message = message
        self.location = location
    }
}

/// One declared policy, judged: the Platform's (scope `platform`, for every tenant) or a tenant's own.
public struct PolicyCheck: Sendable {
    /// The rule's key in `policies:` (`minimumOwners`): what `--override` names.
    public var name: String
    /// `platform`, or `tenant/<slug>` for a tenant's own policy.
    public var scope: String
    public var enforcement: Enforcement
    /// What the policy requires, in words.
    public var rule: String
    /// Where the policy is declared.
    public var location: SourceLocation
    /// Sorted by address.
    public var violations: [PolicyViolation] = []
    /// False when the rule needs a plan and was checked without one (validate).
    public var judged = true
    /// The reason given with `--override`, when this failing overridable policy was overridden.
    public var overrideReason: String?

    public var passed: Bool { violations.isEmpty }

    /// `fail`, `pass`, `overridden` or `not judged`.
    public var status: String {
        if !judged { return "not-judged" }
        if passed { return "pass" }
        return overrideReason == nil ? "fail" : "overridden"
    }
}

/// The policy checks of one configuration (and plan), in declaration order: the Platform's, then each tenant's by slug.
public struct PolicyReport: Sendable {
    public var checks: [PolicyCheck]

    public init(checks: [PolicyCheck]) { self.checks = checks }

    public var isEmpty: Bool { checks.isEmpty }

    /// A mandatory policy failed: the plan is invalid.
    public var mandatoryFailed: Bool { checks.contains { !$0.passed && $0.enforcement == .mandatory } }

    /// Failing overridable policies without an override: apply refuses them.
    public var unresolvedOverridable: [PolicyCheck] {
        checks.filter { !$0.passed && $0.enforcement == .overridable && $0.overrideReason == nil }
    }

    /// What apply refuses over: mandatory failures and overridable ones not overridden.
    public var blocking: [PolicyCheck] {
        checks.filter { !$0.passed && ($0.enforcement == .mandatory || ($0.enforcement == .overridable && $0.overrideReason == nil)) }
    }

    public var failedCount: Int { checks.count { !$0.passed } }

    /// Marks the failing overridable checks named in `names` as overridden. Returns the names that
    /// match no failing overridable policy (a mandatory one cannot be overridden), for the caller to refuse.
    public mutating func override(_ names: [String], reason: String) -> [String] {
        var unmatched: [String] = []
        for name in names {
            var matched = false
            for index in checks.indices where checks[index].name == name && !checks[index].passed && checks[index].enforcement == .overridable {
                checks[index].overrideReason = reason
                matched = true
            }
            if !matched { unmatched.append(name) }
        }
        return unmatched
    }
}

extension Reconciler {
    /// Judges every policy of `configuration` (pure: no I/O, no clock — `today` is given). With a plan,
    /// the rules about what a plan deletes (`maxRemoval`, `protectedResources`) are judged against it and
    /// `stored`; without one (validate) they are reported as not judged.
    public static func policyChecks(_ configuration: Configuration, today: CalendarDate, plan: Plan? = nil, stored: StoredState? = nil) -> PolicyReport {
        guard let platform = configuration.platform else { return PolicyReport(checks: []) }
        var checks: [PolicyCheck] = []
        var judge = PolicyJudge(platform: platform, today: today, plan: plan, stored: stored)
        if let policies = platform.policies {
            checks += judge.checks(policies, scope: "platform", tenants: configuration.tenants)
        }
        for tenant in configuration.tenants {
            guard let policies = tenant.policies else { continue }
            checks += judge.checks(policies, scope: "tenant/\(tenant.slug)", tenants: [tenant])
        }
        return PolicyReport(checks: checks)
    }
}

/// Judges one policy set over some tenants (all of them for the Platform's, one for a tenant's own).
struct PolicyJudge {
    let platform: PlatformSpec
    let today: CalendarDate
    let plan: Plan?
    let stored: StoredState?
    let plans: [String: PlanSpec]
    /// Stored resources counted by removal group and kind, built once when a maxRemoval is judged.
    var storedCounts: [String: [ResourceKind: Int]]?

    init(platform: PlatformSpec, today: CalendarDate, plan: Plan?, stored: StoredState?) {
        self.platform = platform
        self.today = today
        self.plan = plan
        self.stored = stored
        plans = Dictionary(platform.plans.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    static func address(_ tenant: TenantSpec, _ kind: ResourceKind? = nil, _ name: String? = nil) -> String {
        guard let kind, let name else { return "tenant/\(tenant.slug)" }
        return "tenant/\(tenant.slug)/\(kind.segment)/\(name)"
    }

    mutating func checks(_ policies: PolicySet, scope: String, tenants: [TenantSpec]) -> [PolicyCheck] {
        var result: [PolicyCheck] = []
        func check(_ name: String, _ header: PolicySet.Header, _ rule: String, judged: Bool = true, _ body: (inout [PolicyViolation]) -> Void) {
            var violations: [PolicyViolation] = []
            if judged { body(&violations) }
            violations.sort { ($0.address, $0.message) < ($1.address, $1.message) }
            result.append(PolicyCheck(name: name, scope: scope, enforcement: header.enforcement, rule: rule, location: header.location,
                                      violations: violations, judged: judged))
        }
        if let rule = policies.minimumOwners {
            let count = rule.count.value
            check("minimumOwners", rule.header, "every active tenant has at least \(count) owner\(count == 1 ? "" : "s")") { v in
                for tenant in tenants where tenant.status == nil || tenant.status == .active {
                    guard let members = tenant.members else { continue }
                    let owners = members.count { $0.role.value == "owner" }
                    if owners < count {
                        v.append(.init(address: Self.address(tenant), message: "tenant '\(tenant.slug)' has \(owners) owner\(owners == 1 ? "" : "s"), fewer than \(count)",
                                       location: tenant.location))
                    }
                }
            }
        }
        if let rule = policies.requiredMembers {
            let who = rule.members.map(\.value).joined(separator: ", ")
            check("requiredMembers", rule.header, "every tenant has \(who) as member\(rule.role.map { " with role \($0.value)" } ?? "")") { v in
                for tenant in tenants {
                    guard let members = tenant.members else { continue }
                    // A few required members are looked up directly; many, through an index of the tenant's members.
                    let index = rule.members.count > 8 ? Dictionary(members.map { ($0.email, $0) }, uniquingKeysWith: { a, _ in a }) : nil
                    for required in rule.members {
                        guard let member = index.map({ $0[required.value] }) ?? members.first(where: { $0.email == required.value }) else {
                            v.append(.init(address: Self.address(tenant), message: "tenant '\(tenant.slug)' lacks required member '\(required.value)'",
                                           location: tenant.location))
                            continue
                        }
                        if let role = rule.role, member.role.value != role.value {
                            v.append(.init(address: Self.address(tenant, .member, member.email),
                                           message: "required member '\(member.email)' has role '\(member.role.value)', not '\(role.value)'",
                                           location: member.role.location))
                        }
                    }
                }
            }
        }
        if let rule = policies.maxRemoval {
            let limits = rule.limits.map { limit in
                let bounds = [limit.percent.map { "\($0.value)%" }, limit.count.map { "\($0.value)" }].compactMap { $0 }.joined(separator: " and at most ")
                let plural = "\(limit.kind.rawValue)\(limit.percent == nil && limit.count?.value == 1 ? "" : "s")"
                return Self.removalGroup(limit.kind, "tenant/x/") == "state" ? "at most \(bounds) \(plural)" : "at most \(bounds) of a tenant's \(plural)"
            }
            check("maxRemoval", rule.header, "one plan deletes \(limits.joined(separator: "; "))", judged: plan != nil) { v in
                judgeRemoval(rule, scope: scope, &v)
            }
        }
        for (name, rule, what) in [("ssoRequired", policies.ssoRequired, "SSO"), ("mfaRequired", policies.mfaRequired, "MFA")] {
            guard let rule else { continue }
            let selection = (rule.plans.map { "plan \($0.value)" } + rule.features.map { "feature \($0.value)" }).joined(separator: " or ")
            let requirement = name == "ssoRequired" ? "sso.enforce: true" : "security.mfa: required"
            check(name, rule.header, "tenants \(selection.isEmpty ? "on every plan" : "with \(selection)") require \(what) (\(requirement))") { v in
                for tenant in tenants {
                    let features = plans[tenant.plan.value]?.features?.map(\.value) ?? []
                    guard rule.applies(plan: tenant.plan.value, features: features) else { continue }
                    if name == "ssoRequired", tenant.sso?.enforce != true {
                        v.append(.init(address: Self.address(tenant), message: "tenant '\(tenant.slug)' on plan '\(tenant.plan.value)' does not enforce SSO",
                                       location: tenant.sso?.location ?? tenant.location))
                    }
                    if name == "mfaRequired", tenant.security?.mfa != .required {
                        v.append(.init(address: Self.address(tenant), message: "tenant '\(tenant.slug)' on plan '\(tenant.plan.value)' does not require MFA",
                                       location: tenant.security?.location ?? tenant.location))
                    }
                }
            }
        }
        if let rule = policies.apiKeys {
            var parts: [String] = []
            if !rule.forbiddenScopes.isEmpty { parts.append("no scope \(rule.forbiddenScopes.map(\.value).joined(separator: ", "))") }
            if let lifetime = rule.maxLifetime { parts.append("an expiry within \(lifetime.value)") }
            if !rule.maxRateLimit.isEmpty { parts.append("a rate limit of at most " + rule.maxRateLimit.map { "\($0.rate.value) on \($0.plan)" }.joined(separator: ", ")) }
            check("apiKeys", rule.header, "API keys have \(parts.isEmpty ? "no restrictions" : parts.joined(separator: "; "))") { v in
                for tenant in tenants {
                    let maxRate = rule.maxRateLimit.first { $0.plan == tenant.plan.value }?.rate
                    for key in tenant.apiKeys ?? [] {
                        let address = Self.address(tenant, .apiKey, key.name)
                        for scope in key.scopes where rule.forbiddenScopes.contains(where: { $0.value == scope.value }) {
                            v.append(.init(address: address, message: "API key '\(key.name)' has forbidden scope '\(scope.value)'", location: scope.location))
                        }
                        if let lifetime = rule.maxLifetime {
                            if let expires = key.expires {
                                let days = expires.value.dayNumber - today.dayNumber
                                if days * 86_400 > lifetime.value.seconds {
                                    let latest = CalendarDate(dayNumber: today.dayNumber + lifetime.value.seconds / 86_400)
                                    v.append(.init(address: address, message: "API key '\(key.name)' expires on \(expires.value), later than \(latest) (maxLifetime \(lifetime.value))",
                                                   location: expires.location))
                                }
                            } else {
                                v.append(.init(address: address, message: "API key '\(key.name)' has no expiry (maxLifetime \(lifetime.value))", location: key.location))
                            }
                        }
                        if let maxRate {
                            if let rate = key.rateLimit {
                                if rate.value.perDay > maxRate.value.perDay {
                                    v.append(.init(address: address, message: "API key '\(key.name)' has rate limit \(rate.value), above \(maxRate.value) for plan '\(tenant.plan.value)'",
                                                   location: rate.location))
                                }
                            } else {
                                v.append(.init(address: address, message: "API key '\(key.name)' has no rate limit (at most \(maxRate.value) for plan '\(tenant.plan.value)')",
                                               location: key.location))
                            }
                        }
                    }
                }
            }
        }
        if let rule = policies.webhookDomains {
            let domains = rule.allowedDomains.map(\.value)
            check("webhookDomains", rule.header, "webhooks deliver only to \(domains.joined(separator: ", "))") { v in
                for tenant in tenants {
                    for webhook in tenant.webhooks ?? [] {
                        let host = Self.host(of: webhook.url.value)
                        if !domains.contains(where: { PolicySet.isWithin(host, $0) }) {
                            v.append(.init(address: Self.address(tenant, .webhook, webhook.name),
                                           message: "webhook '\(webhook.name)' delivers to '\(host)', which is not an allowed domain",
                                           location: webhook.url.location))
                        }
                    }
                }
            }
        }
        if let rule = policies.protectedResources {
            let patterns = rule.addresses.map { AddressPattern($0.value) }
            let tenantScope = scope == "platform" ? nil : scope
            check("protectedResources", rule.header, "no plan deletes \(rule.addresses.map(\.value).joined(separator: ", "))", judged: plan != nil) { v in
                for change in plan?.changes ?? [] where change.action == .delete {
                    if let tenantScope, Change.group(of: change.address) != tenantScope { continue }
                    if let index = patterns.firstIndex(where: { $0.matches(change.address) }) {
                        v.append(.init(address: change.address, message: "the plan deletes \(change.address), protected by '\(rule.addresses[index].value)'",
                                       location: rule.addresses[index].location))
                    }
                }
            }
        }
        return result
    }

    /// Deletions of each limited kind against what the stored state holds of it: per tenant for what
    /// tenants hold, across the state for tenants and the Platform's catalogs.
    mutating func judgeRemoval(_ rule: PolicySet.MaxRemoval, scope: String, _ v: inout [PolicyViolation]) {
        guard let plan else { return }
        let limited = Set(rule.limits.map(\.kind))
        // What a deleted tenant holds goes with it: that is the `tenant` limit's to judge, not its members'.
        let deletedTenants = Set(plan.changes.filter { $0.action == .delete && $0.kind == .tenant }.map(\.address))
        var deletes: [String: [ResourceKind: Int]] = [:]
        for change in plan.changes where change.action == .delete && limited.contains(change.kind) {
            let group = Self.removalGroup(change.kind, change.address)
            if group != "state", deletedTenants.contains(group) { continue }
            if scope != "platform" && Change.group(of: change.address) != scope { continue }
            deletes[group, default: [:]][change.kind, default: 0] += 1
        }
        guard !deletes.isEmpty else { return }
        if storedCounts == nil {
            var counts: [String: [ResourceKind: Int]] = [:]
            if let stored {
                for resource in Renames(plan.changes).translated(stored).resources {
                    counts[Self.removalGroup(resource.resource.kind, resource.address), default: [:]][resource.resource.kind, default: 0] += 1
                }
            }
            storedCounts = counts
        }
        for (group, kinds) in deletes.sorted(by: { $0.key < $1.key }) {
            for limit in rule.limits {
                guard let removed = kinds[limit.kind] else { continue }
                let held = max(removed, storedCounts?[group]?[limit.kind] ?? removed)
                let what = { (n: Int) in "\(n) \(limit.kind.rawValue)\(n == 1 ? "" : "s")" }
                let place = group == "state" ? "" : " of \(group)"
                if let count = limit.count, Int64(removed) > count.value {
                    v.append(.init(address: group, message: "the plan deletes \(what(removed))\(place), more than the \(count.value) allowed",
                                   location: count.location))
                }
                if let percent = limit.percent, Int64(removed) * 100 > Int64(held) * percent.value {
                    v.append(.init(address: group, message: "the plan deletes \(removed) of the \(what(held))\(place), more than \(percent.value)%",
                                   location: percent.location))
                }
            }
        }
    }

    /// `tenant/<slug>` for what a tenant holds; `state` for tenants themselves and the Platform's catalogs.
    static func removalGroup(_ kind: ResourceKind, _ address: String) -> String {
        switch kind {
        case .plan, .permission, .event, .role, .tenant: "state"
        default: Change.group(of: address)
        }
    }

    /// The host of an https URL, lower case (validation already refused anything else).
    static func host(of url: String) -> String {
        var rest = Substring(url)
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") { rest = rest[rest.index(colon, offsetBy: 3)...] }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostPort = authority.split(separator: "@").last ?? authority
        if hostPort.hasPrefix("[") { return String(hostPort.prefix { $0 != "]" }.dropFirst()).lowercased() }
        return String(hostPort.prefix { $0 != ":" }).lowercased()
    }
}
