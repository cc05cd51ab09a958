/// The configuration flattened into resources: what `plan` diffs against the stored state.
public struct DesiredState: Sendable {
    /// In configuration order (Platform catalogs, then each tenant with its children).
    public var resources: [Resource]
    /// Collections managed completely: top-level ones (`tenant`, `plan`, …) and every child
    /// collection whose section the configuration declares (`tenant/acme/member`).
    public var managedCollections: Set<String>
    /// Where each secret attribute's value comes from, keyed `address#attribute`.
    public var secretSources: [String: SecretSource]
    /// Resources declared with `previously:`, in configuration order (tenants before what they hold).
    public var renames: [DesiredRename]

    public init(resources: [Resource], managedCollections: Set<String>, secretSources: [String: SecretSource], renames: [DesiredRename] = []) {
        self.resources = resources
        self.managedCollections = managedCollections
        self.secretSources = secretSources
        self.renames = renames
    }

    public static func secretKey(address: String, attribute: String) -> String { "\(address)#\(attribute)" }
}

/// A tenant, team or role declared with `previously: [old-slug, ...]`.
public struct DesiredRename: Sendable {
    /// The resource's address under its current slug (`tenant/acme/team/platform`).
    public var address: String
    public var kind: ResourceKind
    /// The parent's address (`tenant/acme`), nil for tenants and system roles.
    public var parent: String?
    /// The addresses it may be stored under: the same parent, an earlier slug; each where it was written.
    public var previously: [Located<String>]

    public init(address: String, kind: ResourceKind, parent: String?, previously: [Located<String>]) {
        self.address = address
        self.kind = kind
        self.parent = parent
        self.previously = previously
    }
}

/// Attribute names and value conventions shared by the configuration side and the state side.
///
/// Durations and sizes are shown in their shortest exact spelling (`8h`, `10GiB`), `unlimited`
/// is the string `unlimited`, and lists are sorted sets.
public enum AttributeEncoding {
    public static func duration(_ seconds: Int64) -> Value { .string(Duration(seconds: seconds).description) }

    public static func quota(_ value: QuotaValue, _ name: QuotaName) -> Value {
        switch value {
        case .unlimited: .string("unlimited")
        case .limit(let n): name.isSize ? .string(ByteSize(bytes: n).description) : .int(n)
        }
    }

    public static func list(_ values: [String]) -> Value { .list(Array(Set(values)).sorted()) }

    public static func quotaAttribute(_ name: QuotaName) -> String { "quotas.\(name.rawValue)" }
}

extension Configuration {
    /// Flattens the configuration into resources.
    ///
    /// - Parameter fingerprint: the keyed fingerprint of a secret's value; resolving the reference
    ///   (environment, file) is the caller's job, so this stays free of I/O.
    public func desiredState(fingerprint: (SecretSource) throws -> String) rethrows -> DesiredState {
        var resources: [Resource] = []
        resources.reserveCapacity(resourceCount)
        // Plans and tenants are always managed; the Platform's other catalogs only when declared.
        var managed: Set<String> = ["plan", "tenant"]
        if platform?.declaresPermissions ?? false { managed.insert("permission") }
        if platform?.declaresEvents ?? false { managed.insert("event") }
        if platform?.declaresRoles ?? false { managed.insert("role") }
        var secrets: [String: SecretSource] = [:]
        var renames: [DesiredRename] = []
        func rename(_ address: String, _ kind: ResourceKind, parent: String?, collection: String, _ previously: [Located<String>]) {
            guard !previously.isEmpty else { return }
            let base = parent.map { "\($0)/\(collection)/" } ?? "\(collection)/"
            renames.append(DesiredRename(address: address, kind: kind, parent: parent,
                                         previously: previously.map { Located(base + $0.value, at: $0.location) }))
        }

        func quotas(_ set: QuotaSet?, into attributes: inout [Attribute]) {
            guard let set else { return }
            for name in QuotaName.allCases {
                let value = set.entries.first { $0.name == name }.map { AttributeEncoding.quota($0.value, name) } ?? .null
                attributes.append(Attribute(AttributeEncoding.quotaAttribute(name), value))
            }
        }
        func optional(_ name: String, _ value: String?, into attributes: inout [Attribute]) {
            if let value { attributes.append(Attribute(name, .string(value))) }
        }
        func secret(_ reference: SecretReference?, _ name: String, _ address: String, into attributes: inout [Attribute]) throws {
            guard let reference else { return }
            attributes.append(Attribute(name, .secret(fingerprint: try fingerprint(reference.source))))
            secrets[DesiredState.secretKey(address: address, attribute: name)] = reference.source
        }
        func role(_ role: RoleSpec, address: String, kind: ResourceKind, parent: String?) -> Resource {
            var attributes = [Attribute("permissions", AttributeEncoding.list(role.permissions.map(\.value)))]
            optional("description", role.description, into: &attributes)
            if let duration = role.maxDuration { attributes.append(Attribute("maxDuration", AttributeEncoding.duration(duration.value.seconds))) }
            return Resource(address: address, kind: kind, parent: parent, attributes: attributes)
        }

        if let platform {
            for plan in platform.plans {
                var attributes: [Attribute] = []
                quotas(plan.quotas, into: &attributes)
                if let rate = plan.rateLimit { attributes.append(Attribute("rateLimit", .string(rate.value.description))) }
                if let features = plan.features { attributes.append(Attribute("features", AttributeEncoding.list(features.map(\.value)))) }
                optional("description", plan.description, into: &attributes)
                resources.append(Resource(address: "plan/\(plan.name)", kind: .plan, parent: nil, attributes: attributes))
            }
            for permission in platform.permissions {
                var attributes: [Attribute] = []
                optional("category", permission.category, into: &attributes)
                optional("description", permission.description, into: &attributes)
                resources.append(Resource(address: "permission/\(permission.name)", kind: .permission, parent: nil, attributes: attributes))
            }
            for event in platform.events {
                resources.append(Resource(address: "event/\(event.value)", kind: .event, parent: nil, attributes: []))
            }
            for systemRole in platform.roles {
                resources.append(role(systemRole, address: "role/\(systemRole.name)", kind: .role, parent: nil))
                rename("role/\(systemRole.name)", .role, parent: nil, collection: "role", systemRole.previously)
            }
        }

        for tenant in tenants {
            let address = "tenant/\(tenant.slug)"
            var attributes = [Attribute("plan", .string(tenant.plan.value))]
            optional("name", tenant.name, into: &attributes)
            optional("status", tenant.status?.rawValue, into: &attributes)
            if let ends = tenant.trialEnds { attributes.append(Attribute("trialEnds", .string(ends.value.text))) }
            else if tenant.status != nil { attributes.append(Attribute("trialEnds", .null)) }
            if let domains = tenant.domains { attributes.append(Attribute("domains", AttributeEncoding.list(domains.map(\.value)))) }
            if let branding = tenant.branding {
                attributes.append(Attribute("branding.primaryColor", branding.primaryColor.map(Value.string) ?? .null))
                attributes.append(Attribute("branding.logoUrl", branding.logoURL.map(Value.string) ?? .null))
                attributes.append(Attribute("branding.customDomain", branding.customDomain.map(Value.string) ?? .null))
            }
            if let security = tenant.security {
                attributes.append(Attribute("security.mfa", security.mfa.map { .string($0.rawValue) } ?? .null))
                attributes.append(Attribute("security.sessionTimeout", security.sessionTimeout.map { AttributeEncoding.duration($0.seconds) } ?? .null))
                attributes.append(Attribute("security.ipAllowlist", security.ipAllowlist.map { AttributeEncoding.list($0.map(\.value)) } ?? .null))
            }
            quotas(tenant.quotas, into: &attributes)
            if let sso = tenant.sso {
                attributes.append(Attribute("sso.enforce", sso.enforce.map(Value.bool) ?? .null))
                attributes.append(Attribute("sso.jit.enabled", sso.jitEnabled.map(Value.bool) ?? .null))
                attributes.append(Attribute("sso.jit.defaultRole", sso.jitDefaultRole.map { .string($0.value) } ?? .null))
            }
            var collections: [String] = []
            if tenant.roles != nil { collections.append("\(address)/role") }
            if tenant.members != nil { collections.append("\(address)/member") }
            if tenant.teams != nil { collections.append("\(address)/team") }
            if tenant.sso?.providers != nil { collections.append("\(address)/sso") }
            if tenant.webhooks != nil { collections.append("\(address)/webhook") }
            if tenant.apiKeys != nil { collections.append("\(address)/apikey") }
            managed.formUnion(collections)
            resources.append(Resource(address: address, kind: .tenant, parent: nil, attributes: attributes, managedCollections: collections))
            rename(address, .tenant, parent: nil, collection: "tenant", tenant.previously)

            for custom in tenant.roles ?? [] {
                resources.append(role(custom, address: "\(address)/role/\(custom.name)", kind: .tenantRole, parent: address))
                rename("\(address)/role/\(custom.name)", .tenantRole, parent: address, collection: "role", custom.previously)
            }
            for member in tenant.members ?? [] {
                var attributes = [Attribute("role", .string(member.role.value))]
                attributes.append(Attribute("expires", member.expires.map { .string($0.value.text) } ?? .null))
                resources.append(Resource(address: "\(address)/member/\(member.email)", kind: .member, parent: address, attributes: attributes))
            }
            for team in tenant.teams ?? [] {
                let teamAddress = "\(address)/team/\(team.slug)"
                var attributes = [Attribute("parent", team.parent.map { .string($0.value) } ?? .null)]
                optional("name", team.name, into: &attributes)
                optional("description", team.description, into: &attributes)
                quotas(team.quotas, into: &attributes)
                var teamCollections: [String] = []
                if team.members != nil {
                    teamCollections.append("\(teamAddress)/member")
                    managed.insert("\(teamAddress)/member")
                }
                resources.append(Resource(address: teamAddress, kind: .team, parent: address, attributes: attributes, managedCollections: teamCollections))
                rename(teamAddress, .team, parent: address, collection: "team", team.previously)
                for member in team.members ?? [] {
                    resources.append(Resource(address: "\(teamAddress)/member/\(member.email)", kind: .teamMember, parent: teamAddress,
                                              attributes: [Attribute("role", .string(member.role.rawValue))]))
                }
            }
            for provider in tenant.sso?.providers ?? [] {
                let providerAddress = "\(address)/sso/\(provider.name)"
                var attributes = [Attribute("type", .string(provider.type.rawValue))]
                switch provider.type {
                case .saml:
                    optional("entityId", provider.entityID, into: &attributes)
                    optional("ssoUrl", provider.ssoURL, into: &attributes)
                    if let certificate = provider.certificate {
                        attributes.append(Attribute("certificate", .document(sha256: certificate.sha256, text: certificate.pem)))
                    }
                case .oidc:
                    optional("issuer", provider.issuer, into: &attributes)
                    optional("clientId", provider.clientID, into: &attributes)
                    try secret(provider.clientSecret, "clientSecret", providerAddress, into: &attributes)
                }
                resources.append(Resource(address: providerAddress, kind: .ssoProvider, parent: address, attributes: attributes))
            }
            for webhook in tenant.webhooks ?? [] {
                let webhookAddress = "\(address)/webhook/\(webhook.name)"
                var attributes = [
                    Attribute("url", .string(webhook.url.value)),
                    Attribute("events", AttributeEncoding.list(webhook.events.map(\.value))),
                ]
                try secret(webhook.secret, "secret", webhookAddress, into: &attributes)
                if let timeout = webhook.timeout { attributes.append(Attribute("timeout", AttributeEncoding.duration(timeout.value.seconds))) }
                if let retries = webhook.maxRetries { attributes.append(Attribute("maxRetries", .int(retries.value))) }
                if let enabled = webhook.enabled { attributes.append(Attribute("enabled", .bool(enabled))) }
                resources.append(Resource(address: webhookAddress, kind: .webhook, parent: address, attributes: attributes))
            }
            for key in tenant.apiKeys ?? [] {
                var attributes = [Attribute("scopes", AttributeEncoding.list(key.scopes.map(\.value)))]
                optional("description", key.description, into: &attributes)
                if let rate = key.rateLimit { attributes.append(Attribute("rateLimit", .string(rate.value.description))) }
                if let expires = key.expires { attributes.append(Attribute("expires", .string(expires.value.text))) }
                if let rotate = key.rotate { attributes.append(Attribute("rotate", .int(rotate.value))) }
                if let rotateOnScopeChange = key.rotateOnScopeChange { attributes.append(Attribute("rotateOnScopeChange", .bool(rotateOnScopeChange))) }
                resources.append(Resource(address: "\(address)/apikey/\(key.name)", kind: .apiKey, parent: address, attributes: attributes))
            }
        }
        return DesiredState(resources: resources, managedCollections: managed, secretSources: secrets, renames: renames)
    }
}
