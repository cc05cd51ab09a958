/// How a failing policy is treated, as Sentinel has it (weakest first).
public enum Enforcement: String, Sendable, CaseIterable, Comparable {
    /// A warning in the plan; apply goes ahead.
    case advisory
    /// apply refuses unless given `--override POLICY --reason TEXT` (recorded in the audit log).
    case overridable
    /// The plan is invalid; apply refuses.
    case mandatory

    public static func < (lhs: Enforcement, rhs: Enforcement) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// `policies:` of the Platform (for every tenant) or of one tenant (for itself, only stricter).
/// A nil rule is not declared.
public struct PolicySet: Sendable {
    public var location: SourceLocation
    public var minimumOwners: MinimumOwners?
    public var requiredMembers: RequiredMembers?
    public var maxRemoval: MaxRemoval?
    public var ssoRequired: PlanScoped?
    public var mfaRequired: PlanScoped?
    public var apiKeys: APIKeyRules?
    public var webhookDomains: WebhookDomains?
    public var protectedResources: ProtectedResources?

    public init(location: SourceLocation) { self.location = location }

    /// What every rule has: its level and where it is declared.
    public struct Header: Sendable {
        public var enforcement: Enforcement
        /// The enforcement value's own position, when written (else the rule's key).
        public var enforcementLocation: SourceLocation
        public var location: SourceLocation
    }

    /// Every active tenant keeps at least `count` members with role owner.
    public struct MinimumOwners: Sendable {
        public var header: Header
        public var count: Located<Int64>
    }

    /// These people are members of every tenant (break-glass admins), with `role` when given.
    public struct RequiredMembers: Sendable {
        public var header: Header
        public var members: [Located<String>]
        public var role: Located<String>?
    }

    /// One plan removes at most `percent` of the stored resources of a kind (in one tenant, for what
    /// tenants hold) and at most `count` of them.
    public struct MaxRemoval: Sendable {
        public var header: Header
        public var limits: [Limit]

        public struct Limit: Sendable {
            public var kind: ResourceKind
            public var location: SourceLocation
            public var percent: Located<Int64>?
            public var count: Located<Int64>?
        }
    }

    /// A rule for tenants on some plans or with some features (all tenants when neither is given).
    public struct PlanScoped: Sendable {
        public var header: Header
        public var plans: [Located<String>]
        public var features: [Located<String>]

        public func applies(plan: String, features planFeatures: [String]) -> Bool {
            if plans.isEmpty && features.isEmpty { return true }
            return plans.contains { $0.value == plan } || features.contains { planFeatures.contains($0.value) }
        }
    }

    /// What API keys may hold.
    public struct APIKeyRules: Sendable {
        public var header: Header
        /// Scopes no key may list (compared as written: `*` forbids the literal `*`).
        public var forbiddenScopes: [Located<String>]
        /// Keys must expire at most this long after today.
        public var maxLifetime: Located<Duration>?
        /// The highest rate limit a key may have, by the tenant's plan; such a key must declare one.
        public var maxRateLimit: [(plan: String, rate: Located<Rate>)]
    }

    /// Webhook URLs go only to these domains (or their subdomains).
    public struct WebhookDomains: Sendable {
        public var header: Header
        public var allowedDomains: [Located<String>]
    }

    /// Resources that cannot be deleted while protected: address patterns (`*` within a segment, `**` across).
    public struct ProtectedResources: Sendable {
        public var header: Header
        public var addresses: [Located<String>]
    }

    /// The rules declared, by name, with their headers (in the order of the format description).
    public var declared: [(name: String, header: Header)] {
        var result: [(String, Header)] = []
        if let rule = minimumOwners { result.append(("minimumOwners", rule.header)) }
        if let rule = requiredMembers { result.append(("requiredMembers", rule.header)) }
        if let rule = maxRemoval { result.append(("maxRemoval", rule.header)) }
        if let rule = ssoRequired { result.append(("ssoRequired", rule.header)) }
        if let rule = mfaRequired { result.append(("mfaRequired", rule.header)) }
        if let rule = apiKeys { result.append(("apiKeys", rule.header)) }
        if let rule = webhookDomains { result.append(("webhookDomains", rule.header)) }
        if let rule = protectedResources { result.append(("protectedResources", rule.header)) }
        return result
    }

    /// The names a `policies:` section may hold.
    public static let names = [
        "minimumOwners", "requiredMembers", "maxRemoval", "ssoRequired", "mfaRequired", "apiKeys", "webhookDomains", "protectedResources",
    ]
}

extension Rate {
    /// Events per day, scaled so that rates of different units compare exactly (`600/h` > `100/m` is false).
    public var perDay: Int64 {
        let factor: Int64 = switch per {
        case "s": 86_400
        case "m": 1_440
        case "h": 24
        default: 1
        }
        let (product, overflow) = count.multipliedReportingOverflow(by: factor)
        return overflow ? Int64.max : product
    }
}

extension CalendarDate {
    /// Days since 1970-01-01 (Howard Hinnant's days-from-civil).
    public var dayNumber: Int64 {
        let utf8 = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int64 { utf8[range].reduce(0) { $0 * 10 + Int64($1 - 48) } }
        var year = number(0..<4)
        let month = number(5..<7), day = number(8..<10)
        if month <= 2 { year -= 1 }
        let era = year / 400
        let yearOfEra = year - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

extension CalendarDate {
    /// The date `dayNumber` days after 1970-01-01 (Howard Hinnant's civil-from-days).
    public init(dayNumber days: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shifted = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shifted + 2) / 5 + 1
        let month = shifted < 10 ? shifted + 3 : shifted - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String { String(repeating: "0", count: max(0, width - String(value).count)) + String(value) }
        self.text = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }
}
