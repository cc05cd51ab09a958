/// The rules of `policies:` themselves (references, tenants only stricter) and the built-in guest rule.
extension Validator {
    /// A guest membership expires no later than today plus its role's `maxDuration` (built in, always an error).
    func checkGuestExpiry(_ member: MemberSpec, expires: Located<CalendarDate>, maxDuration: Located<Duration>, _ d: inout Diagnostics) {
        let days = expires.value.dayNumber - today.dayNumber
        guard days > 0, days * 86_400 > maxDuration.value.seconds else { return }
        let latest = CalendarDate(dayNumber: today.dayNumber + maxDuration.value.seconds / 86_400)
        d.error("spec.guest-max-duration",
                "membership of '\(member.email)' expires on \(expires.value), further away than role '\(member.role.value)' allows (maxDuration \(maxDuration.value): at most \(latest))",
                at: expires.location, help: "set expires to \(latest) or earlier, or raise the role's maxDuration",
                notes: [.init("maxDuration is declared here", at: maxDuration.location)])
    }

    /// References inside a policy set: plans, features and roles it names must exist.
    func checkPolicies(_ policies: PolicySet, _ platform: PlatformSpec, _ catalog: Catalog, _ d: inout Diagnostics) {
        let plans = catalog.plans.keys.sorted()
        func checkPlan(_ plan: Located<String>, _ what: String) {
            guard catalog.plans[plan.value] == nil else { return }
            d.error("spec.unknown-plan", "\(what) names plan '\(plan.value)', which the Platform does not declare", at: plan.location,
                    help: Suggestions.didYouMean(plan.value, among: plans) ?? "use one of: \(plans.joined(separator: ", "))")
        }
        for (name, rule) in [("ssoRequired", policies.ssoRequired), ("mfaRequired", policies.mfaRequired)] {
            guard let rule else { continue }
            for plan in rule.plans { checkPlan(plan, "policy '\(name)'") }
            for feature in rule.features where !Self.knownFeatures.contains(feature.value) {
                d.error("spec.unknown-feature", "policy '\(name)' names unknown feature '\(feature.value)'", at: feature.location,
                        help: Suggestions.didYouMean(feature.value, among: Self.knownFeatures) ?? "known features are: \(Self.knownFeatures.joined(separator: ", "))")
            }
        }
        for entry in policies.apiKeys?.maxRateLimit ?? [] {
            checkPlan(Located(entry.plan, at: entry.rate.location), "policy 'apiKeys' maxRateLimit")
        }
        if let role = policies.requiredMembers?.role, catalog.systemRoles[role.value] == nil {
            let names = catalog.systemRoles.keys.sorted()
            d.error("spec.unknown-role", "policy 'requiredMembers' names role '\(role.value)', which is not a system role", at: role.location,
                    help: Suggestions.didYouMean(role.value, among: names) ?? "use one of: \(names.joined(separator: ", "))")
        }
    }

    /// A tenant's policies add to the Platform's and never weaken them.
    func checkStricter(_ own: PolicySet, than platform: PolicySet?, tenant who: String, _ d: inout Diagnostics) {
        guard let platform else { return }
        let base = Dictionary(platform.declared.map { ($0.name, $0.header) }, uniquingKeysWith: { a, _ in a })
        func weaker(_ message: String, at location: SourceLocation, declared: SourceLocation, help: String) {
            d.error("spec.policy-weaker", "\(who) \(message)", at: location, help: help,
                    notes: [.init("the Platform's policy is declared here", at: declared)])
        }
        for (name, header) in own.declared {
            guard let theirs = base[name], header.enforcement < theirs.enforcement else { continue }
            weaker("makes policy '\(name)' \(header.enforcement.rawValue), weaker than the Platform's \(theirs.enforcement.rawValue)",
                   at: header.enforcementLocation, declared: theirs.location,
                   help: "a tenant's policies may only be stricter: write 'enforcement: \(theirs.enforcement.rawValue)' or stronger, or remove it")
        }
        if let mine = own.minimumOwners, let theirs = platform.minimumOwners, mine.count.value < theirs.count.value {
            weaker("asks for \(mine.count.value) owners, fewer than the Platform's minimumOwners of \(theirs.count.value)",
                   at: mine.count.location, declared: theirs.header.location, help: "write a count of at least \(theirs.count.value), or remove it")
        }
        if let mine = own.maxRemoval, let theirs = platform.maxRemoval {
            for limit in mine.limits {
                guard let other = theirs.limits.first(where: { $0.kind == limit.kind }) else { continue }
                for (what, value, bound) in [("percent", limit.percent, other.percent), ("count", limit.count, other.count)] {
                    if let bound, value == nil || value!.value > bound.value {
                        weaker("allows removing \(value.map { String($0.value) } ?? "any") \(what) of \(limit.kind.rawValue), more than the Platform's \(bound.value)",
                               at: value?.location ?? limit.location, declared: bound.location, help: "write a \(what) of at most \(bound.value)")
                    }
                }
            }
        }
        if let mine = own.apiKeys, let theirs = platform.apiKeys {
            if let bound = theirs.maxLifetime, mine.maxLifetime.map({ $0.value.seconds > bound.value.seconds }) ?? false, let value = mine.maxLifetime {
                weaker("allows API keys to live \(value.value), longer than the Platform's maxLifetime of \(bound.value)",
                       at: value.location, declared: bound.location, help: "write a maxLifetime of at most \(bound.value)")
            }
            for entry in mine.maxRateLimit {
                if let bound = theirs.maxRateLimit.first(where: { $0.plan == entry.plan }), entry.rate.value.perDay > bound.rate.value.perDay {
                    weaker("allows API keys of plan '\(entry.plan)' a rate of \(entry.rate.value), above the Platform's \(bound.rate.value)",
                           at: entry.rate.location, declared: bound.rate.location, help: "write a rate of at most \(bound.rate.value)")
                }
            }
        }
        if let mine = own.webhookDomains, let theirs = platform.webhookDomains {
            for domain in mine.allowedDomains where !theirs.allowedDomains.contains(where: { PolicySet.isWithin(domain.value, $0.value) }) {
                weaker("allows webhooks to '\(domain.value)', which the Platform's webhookDomains does not allow",
                       at: domain.location, declared: theirs.header.location, help: "list only domains the Platform allows (or below them)")
            }
        }
    }
}

extension PolicySet {
    /// `host` is `domain` or a name below it (`hooks.slack.com` is within `slack.com`).
    public static func isWithin(_ host: String, _ domain: String) -> Bool {
        host == domain || host.hasSuffix("." + domain)
    }
}
