/// Decodes `policies:` (the Platform's, or a tenant's own) into a ``PolicySet``.
extension DocumentDecoder {
    func policies(_ node: Node, _ what: String) -> PolicySet? {
        guard let f = reader.fields(node, what, allowed: PolicySet.names) else { return nil }
        var set = PolicySet(location: reader.location(node))
        func rule(_ name: String, allowed: [String]) -> (Fields, PolicySet.Header)? {
            guard let value = f[name], let key = f.keyNode(name) else { return nil }
            guard let rf = reader.fields(value, "policy '\(name)'", allowed: allowed + ["enforcement"]) else { return nil }
            var header = PolicySet.Header(enforcement: .mandatory, enforcementLocation: reader.location(key), location: reader.location(key))
            if let e = rf["enforcement"], let level = reader.enumValue(e, "enforcement of policy '\(name)'", Enforcement.self) {
                header.enforcement = level
                header.enforcementLocation = reader.location(e)
            }
            return (rf, header)
        }
        func required(_ rf: Fields, _ key: String, of name: String, at header: PolicySet.Header, example: String) -> Node? {
            if let node = rf[key] { return node }
            reader.diagnostics.error("spec.missing-key", "policy '\(name)' has no '\(key)'", at: header.location, help: "add '\(key): \(example)'")
            return nil
        }
        if let (rf, header) = rule("minimumOwners", allowed: ["count"]),
            let n = required(rf, "count", of: "minimumOwners", at: header, example: "2"),
            let count = reader.integer(n, "count of policy 'minimumOwners'", in: 1...100)
        {
            set.minimumOwners = .init(header: header, count: Located(count, at: reader.location(n)))
        }
        if let (rf, header) = rule("requiredMembers", allowed: ["members", "role"]),
            let n = required(rf, "members", of: "requiredMembers", at: header, example: "[breakglass@example.com]"),
            let list = reader.stringList(n, "members of policy 'requiredMembers'")
        {
            var members: [Located<String>] = []
            for entry in list {
                let email = entry.value.lowercased()
                if NamePattern.email.matches(email) {
                    members.append(Located(email, at: entry.location))
                } else {
                    reader.diagnostics.error("spec.name", "required member '\(entry.value.prefix(64))' is not a valid e-mail address",
                                             at: entry.location, help: NamePattern.email.rule)
                }
            }
            let role = rf["role"].flatMap { r in reader.nonEmptyString(r, "role of policy 'requiredMembers'").map { Located($0, at: reader.location(r)) } }
            set.requiredMembers = .init(header: header, members: members, role: role)
        }
        if let (rf, header) = rule("maxRemoval", allowed: ["kinds"]),
            let n = required(rf, "kinds", of: "maxRemoval", at: header, example: "{member: {percent: 25, count: 50}}")
        {
            var limits: [PolicySet.MaxRemoval.Limit] = []
            let kinds = ResourceKind.allCases.map(\.rawValue)
            for pair in reader.fields(n, "kinds of policy 'maxRemoval'", allowed: kinds)?.pairs ?? [] {
                guard let name = pair.key.scalar, let kind = ResourceKind(rawValue: name) else { continue }
                guard let lf = reader.fields(pair.value, "maxRemoval of '\(name)'", allowed: ["percent", "count"]) else { continue }
                var limit = PolicySet.MaxRemoval.Limit(kind: kind, location: reader.location(pair.key))
                limit.percent = lf["percent"].flatMap { p in reader.integer(p, "percent of maxRemoval '\(name)'", in: 0...100).map { Located($0, at: reader.location(p)) } }
                limit.count = lf["count"].flatMap { c in reader.integer(c, "count of maxRemoval '\(name)'", in: 0...1_000_000_000).map { Located($0, at: reader.location(c)) } }
                if lf["percent"] == nil && lf["count"] == nil {
                    reader.error("spec.missing-key", "maxRemoval of '\(name)' sets neither 'percent' nor 'count'", at: pair.key,
                                 help: "write {percent: 25} or {count: 10}, or both")
                }
                limits.append(limit)
            }
            set.maxRemoval = .init(header: header, limits: limits)
        }
        for name in ["ssoRequired", "mfaRequired"] {
            guard let (rf, header) = rule(name, allowed: ["plans", "features"]) else { continue }
            let plans = rf["plans"].flatMap { reader.stringList($0, "plans of policy '\(name)'") } ?? []
            let features = rf["features"].flatMap { reader.stringList($0, "features of policy '\(name)'") } ?? []
            let scoped = PolicySet.PlanScoped(header: header, plans: plans, features: features)
            if name == "ssoRequired" { set.ssoRequired = scoped } else { set.mfaRequired = scoped }
        }
        if let (rf, header) = rule("apiKeys", allowed: ["forbiddenScopes", "maxLifetime", "maxRateLimit"]) {
            var rules = PolicySet.APIKeyRules(header: header, forbiddenScopes: [], maxRateLimit: [])
            rules.forbiddenScopes = rf["forbiddenScopes"].flatMap { reader.stringList($0, "forbiddenScopes of policy 'apiKeys'") } ?? []
            rules.maxLifetime = rf["maxLifetime"].flatMap { reader.duration($0, "maxLifetime of policy 'apiKeys'", in: 86_400...(3650 * 86_400)) }
            for pair in rf["maxRateLimit"].map({ reader.entries($0, "maxRateLimit of policy 'apiKeys'") }) ?? [] {
                guard let plan = identity(pair.key, "plan name", pattern: .slug),
                    let rate = reader.rate(pair.value, "maxRateLimit of plan '\(plan)'")
                else { continue }
                rules.maxRateLimit.append((plan, rate))
            }
            set.apiKeys = rules
        }
        if let (rf, header) = rule("webhookDomains", allowed: ["allowedDomains"]),
            let n = required(rf, "allowedDomains", of: "webhookDomains", at: header, example: "[hooks.slack.com]"),
            let list = reader.stringList(n, "allowedDomains of policy 'webhookDomains'")
        {
            var domains: [Located<String>] = []
            for entry in list {
                let domain = entry.value.lowercased()
                if NamePattern.domain.matches(domain) {
                    domains.append(Located(domain, at: entry.location))
                } else {
                    reader.diagnostics.error("spec.domain", "'\(entry.value.prefix(64))' is not a valid domain name", at: entry.location,
                                             help: NamePattern.domain.rule)
                }
            }
            set.webhookDomains = .init(header: header, allowedDomains: domains)
        }
        if let (rf, header) = rule("protectedResources", allowed: ["addresses"]),
            let n = required(rf, "addresses", of: "protectedResources", at: header, example: "[\"tenant/acme\", \"role/owner\"]"),
            let list = reader.stringList(n, "addresses of policy 'protectedResources'")
        {
            set.protectedResources = .init(header: header, addresses: list)
        }
        return set
    }
}
