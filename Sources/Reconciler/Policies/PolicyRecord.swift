public import Audit
import Crypto
public import Spec

/// The governance policies a state was last applied with: one SHA-256 per declared rule and one
/// over them all. Apply records it (`orgctl_meta` key `policies`, and an audit entry at address
/// `policies`) whenever the configuration's differs, so a change of `policies:` alone is a change
/// of the state: it moves the audit head, and every plan saved before it is refused as stale.
///
/// Only digests are recorded: a policy set names people (`requiredMembers`, protected member
/// addresses), and the audit log keeps no personal data outside its tokens.
public struct PolicyRecord: Sendable, Equatable {
    /// `sha256:<hex>` of each rule's canonical form, keyed by rule name (`protectedResources`) for
    /// the Platform's rules and `tenant/<slug>/<rule>` for a tenant's own.
    public let rules: [String: String]
    /// `sha256:<hex>` of the canonical JSON of `rules`.
    public let digest: String

    public init(rules: [String: String]) {
        self.rules = rules
        digest = Self.sha256(CanonicalJSON.encode(.object(JSONObject(rules.mapValues { .string($0) }))))
    }

    /// The configuration's policies; nil when neither the Platform nor any tenant declares a rule.
    public static func of(_ configuration: Configuration) -> PolicyRecord? {
        var rules: [String: String] = [:]
        func add(_ set: PolicySet?, prefix: String) {
            guard let set else { return }
            for (name, value) in canonical(set) { rules[prefix + name] = sha256(CanonicalJSON.encode(value)) }
        }
        add(configuration.platform?.policies, prefix: "")
        for tenant in configuration.tenants { add(tenant.policies, prefix: "tenant/\(tenant.slug)/") }
        return rules.isEmpty ? nil : PolicyRecord(rules: rules)
    }

    /// The canonical JSON text stored in `orgctl_meta` (and shown in audit entries as `after`/`before`).
    public var json: JSONValue {
        var object = JSONObject()
        object["digest"] = .string(digest)
        object["rules"] = .object(JSONObject(rules.mapValues { .string($0) }))
        return .object(object)
    }

    public var storedText: String { String(decoding: CanonicalJSON.encode(json), as: UTF8.self) }

    /// Reads a recorded value back; nil when it is not one (a value written outside orgctl), which
    /// plans as no record (so apply records the configuration's again).
    public init?(storedText text: String) {
        guard case .object(let object)? = try? CanonicalJSON.decode(Array(text.utf8)),
            case .string(let digest)? = object["digest"], case .object(let members)? = object["rules"], object.count == 2
        else { return nil }
        var rules: [String: String] = [:]
        for member in members {
            guard case .string(let value) = member.value, value.hasPrefix("sha256:") else { return nil }
            rules[member.key] = value
        }
        self.init(rules: rules)
        guard self.digest == digest else { return nil }
    }

    /// The digest's first 12 hex digits, as plans show it.
    public var shortDigest: String { String(digest.dropFirst("sha256:".count).prefix(12)) }

    static func sha256(_ bytes: [UInt8]) -> String { "sha256:" + Hex.encode(SHA256.hash(bytes)) }

    /// Each declared rule's content, without source positions; lists that are sets are sorted, so
    /// reordering a list is no change.
    static func canonical(_ set: PolicySet) -> [(String, JSONValue)] {
        func rule(_ header: PolicySet.Header, _ members: [String: JSONValue]) -> JSONValue {
            var object = JSONObject(members)
            object["enforcement"] = .string(header.enforcement.rawValue)
            return .object(object)
        }
        func strings(_ values: [Located<String>]) -> JSONValue { .array(values.map(\.value).sorted().map { .string($0) }) }
        var result: [(String, JSONValue)] = []
        if let r = set.minimumOwners { result.append(("minimumOwners", rule(r.header, ["count": .int(r.count.value)]))) }
        if let r = set.requiredMembers {
            var members: [String: JSONValue] = ["members": strings(r.members)]
            if let role = r.role { members["role"] = .string(role.value) }
            result.append(("requiredMembers", rule(r.header, members)))
        }
        if let r = set.maxRemoval {
            let limits: [JSONValue] = r.limits.sorted { $0.kind.rawValue < $1.kind.rawValue }.map { limit in
                var object = JSONObject()
                object["kind"] = .string(limit.kind.rawValue)
                if let percent = limit.percent { object["percent"] = .int(percent.value) }
                if let count = limit.count { object["count"] = .int(count.value) }
                return .object(object)
            }
            result.append(("maxRemoval", rule(r.header, ["limits": .array(limits)])))
        }
        for (name, scoped) in [("ssoRequired", set.ssoRequired), ("mfaRequired", set.mfaRequired)] {
            if let r = scoped { result.append((name, rule(r.header, ["plans": strings(r.plans), "features": strings(r.features)]))) }
        }
        if let r = set.apiKeys {
            var members: [String: JSONValue] = ["forbiddenScopes": strings(r.forbiddenScopes)]
            if let lifetime = r.maxLifetime { members["maxLifetimeSeconds"] = .int(lifetime.value.seconds) }
            members["maxRateLimit"] = .object(JSONObject(Dictionary(r.maxRateLimit.map { ($0.plan, JSONValue.string($0.rate.value.description)) },
                                                                    uniquingKeysWith: { first, _ in first })))
            result.append(("apiKeys", rule(r.header, members)))
        }
        if let r = set.webhookDomains { result.append(("webhookDomains", rule(r.header, ["allowedDomains": strings(r.allowedDomains)]))) }
        if let r = set.protectedResources { result.append(("protectedResources", rule(r.header, ["addresses": strings(r.addresses)]))) }
        return result
    }
}

/// What apply does to the recorded policies: record them (none recorded yet), replace them, or
/// remove the record (the configuration declares none any more).
public struct PolicyChange: Sendable, Equatable {
    public var before: PolicyRecord?
    public var after: PolicyRecord?

    public init(before: PolicyRecord?, after: PolicyRecord?) {
        self.before = before
        self.after = after
    }

    public var action: Action { before == nil ? .create : after == nil ? .delete : .update }

    /// The rules added, changed or removed, sorted.
    public var changedRules: [String] {
        let names = Set((before?.rules.keys).map(Array.init) ?? []).union((after?.rules.keys).map(Array.init) ?? [])
        return names.filter { before?.rules[$0] != after?.rules[$0] }.sorted()
    }

    /// The audit entry apply writes for it (address `policies`; digests only).
    public func auditEntry(sequence: Int64, context: ApplyContext, planID: String) -> AuditEntry {
        AuditEntry(sequence: sequence, time: context.time, actor: context.actor, source: context.source, planID: planID,
                   action: action.rawValue, address: PolicyChange.address, before: before?.json, after: after?.json, reason: nil)
    }

    public static let address = "policies"
}
