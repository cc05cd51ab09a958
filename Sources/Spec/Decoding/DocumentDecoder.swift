/// Decodes `kind: Platform` and `kind: Tenant` documents into the typed model.
///
/// Structural and per-field rules are checked here; rules that span documents (references,
/// quotas against counts, features against plans) are checked by ``Validator``.
struct DocumentDecoder {
    let reader: Reader
    let files: FileReferences

    enum Decoded {
        case platform(PlatformSpec)
        case tenant(TenantSpec)
    }

    static let apiVersion = "orgctl.dev/v1"

    func decode(_ document: Document) -> Decoded? {
        let root = document.root
        guard case .mapping = root.content else {
            reader.error(
                "spec.document", "a document must be a mapping with apiVersion and kind, not \(root.kindDescription)",
                at: root, help: "start the document with 'apiVersion: \(Self.apiVersion)' and 'kind: Tenant' or 'kind: Platform'")
            return nil
        }
        let kinds = ["Platform", "Tenant"]
        let bare = Fields(pairs: root.mappingPairs, node: root)
        guard let kindNode = bare["kind"] else {
            reader.error("spec.missing-key", "document has no 'kind'", at: root,
                         help: "add 'kind: Tenant' or 'kind: Platform'")
            return nil
        }
        guard let kind = reader.string(kindNode, "kind") else { return nil }
        if let versionNode = bare["apiVersion"] {
            if let version = reader.string(versionNode, "apiVersion"), version != Self.apiVersion {
                reader.error("spec.api-version", "apiVersion must be '\(Self.apiVersion)', not '\(version)'",
                             at: versionNode, help: "write 'apiVersion: \(Self.apiVersion)'")
            }
        } else {
            reader.error("spec.missing-key", "document has no 'apiVersion'", at: root,
                         help: "add 'apiVersion: \(Self.apiVersion)'")
        }
        switch kind {
        case "Platform": return decodePlatform(root).map(Decoded.platform)
        case "Tenant": return decodeTenant(root).map(Decoded.tenant)
        default:
            reader.error("spec.kind", "kind must be Platform or Tenant, not '\(kind)'", at: kindNode,
                         help: Suggestions.didYouMean(kind, among: kinds) ?? "write 'kind: Tenant' or 'kind: Platform'")
            return nil
        }
    }

    // MARK: Platform

    private func decodePlatform(_ root: Node) -> PlatformSpec? {
        guard let f = reader.fields(root, "the Platform document",
                                    allowed: ["apiVersion", "kind", "plans", "permissions", "roles", "events", "secrets", "policies"])
        else { return nil }
        var platform = PlatformSpec(location: reader.location(root), plans: [], permissions: [], roles: [], events: [])
        if let node = f["plans"] {
            if reader.entries(node, "plans").isEmpty {
                reader.error("spec.missing-key", "the Platform declares no plans", at: node, help: "declare at least one plan under 'plans:'")
            }
            for pair in reader.entries(node, "plans") {
                guard let name = identity(pair.key, "plan name", pattern: .slug) else { continue }
                guard let pf = reader.fields(pair.value, "plan '\(name)'", allowed: ["description", "quotas", "rateLimit", "features"]) else { continue }
                var plan = PlanSpec(name: name, location: reader.location(pair.key))
                plan.quotas = pf["quotas"].flatMap { quotas($0, "quotas of plan '\(name)'") }
                plan.rateLimit = pf["rateLimit"].flatMap { reader.rate($0, "rateLimit of plan '\(name)'") }
                plan.features = pf["features"].flatMap { reader.stringList($0, "features of plan '\(name)'") }
                plan.description = pf["description"].flatMap { reader.string($0, "description") }
                platform.plans.append(plan)
            }
        } else {
            reader.error("spec.missing-key", "the Platform document has no 'plans'", at: root,
                         help: "declare at least one plan under 'plans:'")
        }
        if let node = f["permissions"] {
            platform.declaresPermissions = true
            for pair in reader.entries(node, "permissions") {
                guard let name = identity(pair.key, "permission name", pattern: .permission) else { continue }
                var permission = PermissionSpec(name: name, location: reader.location(pair.key))
                if let pf = reader.fields(pair.value, "permission '\(name)'", allowed: ["category", "description"]) {
                    permission.category = pf["category"].flatMap { reader.nonEmptyString($0, "category") }
                    permission.description = pf["description"].flatMap { reader.string($0, "description") }
                }
                platform.permissions.append(permission)
            }
        }
        if let node = f["roles"] {
            platform.declaresRoles = true
            platform.roles = roles(node, "roles")
        }
        if let node = f["events"] {
            platform.declaresEvents = true
            platform.events = reader.stringList(node, "events") ?? []
            for event in platform.events where !NamePattern.event.matches(event.value) {
                reader.diagnostics.error("spec.name", "event name '\(event.value)' is not valid", at: event.location,
                                         help: NamePattern.event.rule)
            }
        }
        if let node = f["secrets"] { platform.secrets = secretPolicy(node) }
        if let node = f["policies"] { platform.policies = policies(node, "policies") }
        return platform
    }

    /// The Platform's allow-list of secret sources.
    private func secretPolicy(_ node: Node) -> SecretPolicy? {
        guard let f = reader.fields(node, "secrets", allowed: ["environment", "files"]) else { return nil }
        var policy = SecretPolicy(location: reader.location(node), environment: [], files: [])
        for pattern in f["environment"].flatMap({ reader.stringList($0, "secrets.environment") }) ?? [] {
            if let problem = SecretPolicy.patternProblem(pattern.value) {
                reader.diagnostics.error("spec.secret-policy", "environment pattern '\(pattern.value.prefix(80))' \(problem)", at: pattern.location,
                                         help: "write a variable name pattern such as '{tenant}_*' or 'SHARED_SMTP_PASSWORD'")
            } else if let reason = SecretPolicy.reservedReason(pattern: pattern.value) {
                reader.diagnostics.error("spec.secret-policy", "environment pattern '\(pattern.value)' \(reason)", at: pattern.location,
                                         help: "such variables are refused whatever the allow-list says; list the variables tenants use")
            } else {
                policy.environment.append(pattern)
            }
        }
        for folder in f["files"].flatMap({ reader.stringList($0, "secrets.files") }) ?? [] {
            if let problem = SecretPolicy.folderProblem(folder.value) {
                reader.diagnostics.error("spec.secret-policy", "secret folder '\(folder.value.prefix(80))' \(problem)", at: folder.location,
                                         help: "write a folder relative to the configuration folder, such as 'secrets/{tenant}'")
            } else {
                policy.files.append(folder)
            }
        }
        return policy
    }

    private func roles(_ node: Node, _ what: String) -> [RoleSpec] {
        var result: [RoleSpec] = []
        for pair in reader.entries(node, what) {
            guard let name = identity(pair.key, "role name", pattern: .slug) else { continue }
            guard let rf = reader.fields(pair.value, "role '\(name)'", allowed: ["description", "permissions", "maxDuration", "previously"]) else { continue }
            var role = RoleSpec(name: name, location: reader.location(pair.key), permissions: [])
            role.description = rf["description"].flatMap { reader.string($0, "description") }
            if let p = rf["permissions"] {
                role.permissions = reader.stringList(p, "permissions of role '\(name)'") ?? []
            } else {
                reader.error("spec.missing-key", "role '\(name)' has no 'permissions'", at: pair.key,
                             help: "list the permissions the role grants, e.g. permissions: [apps.read]")
            }
            role.maxDuration = rf["maxDuration"].flatMap { reader.duration($0, "maxDuration of role '\(name)'", in: 60...(3650 * 86_400)) }
            role.previously = rf["previously"].map { previously($0, "role '\(name)'", current: name) } ?? []
            result.append(role)
        }
        return result
    }

    private func quotas(_ node: Node, _ what: String) -> QuotaSet? {
        let names = QuotaName.allCases.map(\.rawValue)
        guard let qf = reader.fields(node, what, allowed: names) else { return nil }
        var set = QuotaSet(entries: [], location: reader.location(node))
        for pair in qf.pairs {
            guard let key = pair.key.scalar, let name = QuotaName(rawValue: key) else { continue }
            let value = pair.value
            guard let text = reader.string(value, "quota '\(key)'") else { continue }
            if text == "unlimited" {
                set.entries.append(.init(name: name, value: .unlimited, location: reader.location(value)))
            } else if name.isSize {
                guard let size = ByteSize(parsing: text) else {
                    reader.error("spec.size", "quota '\(key)' must be a size such as 10GiB or 'unlimited', not '\(text)'",
                                 at: value, help: "write a whole number followed by B, KB, MB, GB, TB, KiB, MiB, GiB or TiB")
                    continue
                }
                set.entries.append(.init(name: name, value: .limit(size.bytes), location: reader.location(value)))
            } else {
                guard let count = reader.integer(value, "quota '\(key)'", in: 0...1_000_000_000_000) else { continue }
                set.entries.append(.init(name: name, value: .limit(count), location: reader.location(value)))
            }
        }
        return set
    }

    // MARK: Tenant

    private func decodeTenant(_ root: Node) -> TenantSpec? {
        let allowed = [
            "apiVersion", "kind", "slug", "name", "plan", "status", "trialEnds", "domains", "branding", "security",
            "quotas", "roles", "members", "teams", "sso", "webhooks", "apiKeys", "previously", "policies",
        ]
        guard let f = reader.fields(root, "the Tenant document", allowed: allowed) else { return nil }
        guard let slugNode = f["slug"] else {
            reader.error("spec.missing-key", "Tenant document has no 'slug'", at: root,
                         help: "add 'slug: <name>' (lower-case letters, digits and '-')")
            return nil
        }
        // A list or mapping here would otherwise drop the whole tenant without a word (and a plan
        // would then delete it): say so, like any other mistyped field.
        guard reader.string(slugNode, "slug") != nil, let slug = identity(slugNode, "tenant slug", pattern: .slug) else { return nil }
        guard let planNode = f["plan"], let plan = reader.nonEmptyString(planNode, "plan") else {
            if f["plan"] == nil {
                reader.error("spec.missing-key", "tenant '\(slug)' has no 'plan'", at: root,
                             help: "add 'plan: <name>' naming one of the Platform's plans")
            }
            return nil
        }
        var tenant = TenantSpec(slug: slug, location: reader.location(slugNode), plan: Located(plan, at: reader.location(planNode)))
        if let n = f["name"] { tenant.name = reader.nonEmptyString(n, "name") } else {
            reader.error("spec.missing-key", "tenant '\(slug)' has no 'name'", at: root, help: "add 'name: <display name>'")
        }
        tenant.status = f["status"].flatMap { reader.enumValue($0, "status", TenantStatus.self) }
        tenant.trialEnds = f["trialEnds"].flatMap { reader.date($0, "trialEnds") }
        if let n = f["domains"], let list = reader.stringList(n, "domains") {
            tenant.domains = list.map { Located($0.value.lowercased(), at: $0.location) }
            for domain in list where !NamePattern.domain.matches(domain.value.lowercased()) {
                reader.diagnostics.error("spec.domain", "'\(domain.value)' is not a valid domain name", at: domain.location,
                                         help: NamePattern.domain.rule)
            }
        }
        if let n = f["branding"], let bf = reader.fields(n, "branding", allowed: ["primaryColor", "logoUrl", "customDomain"]) {
            var branding = TenantSpec.Branding(location: reader.location(n))
            if let c = bf["primaryColor"], let color = reader.string(c, "primaryColor") {
                if NamePattern.color.matches(color) { branding.primaryColor = color.uppercased() } else {
                    reader.error("spec.color", "primaryColor must be a hex colour such as #3B82F6, not '\(color)'", at: c,
                                 help: "write '#' and 3 or 6 hex digits, quoted: \"#3B82F6\"")
                }
            }
            if let u = bf["logoUrl"], let url = reader.string(u, "logoUrl") {
                if NetworkRules.check(url: url, what: "logoUrl", at: u, reader: reader) { branding.logoURL = url }
            }
            if let d = bf["customDomain"], let domain = reader.string(d, "customDomain") {
                if NamePattern.domain.matches(domain.lowercased()) && NetworkRules.isPublicHostName(domain.lowercased()) {
                    branding.customDomain = domain.lowercased()
                } else {
                    reader.error("spec.domain", "customDomain '\(domain)' must be a public DNS name", at: d,
                                 help: "use a domain such as app.example.com")
                }
            }
            tenant.branding = branding
        }
        if let n = f["security"], let sf = reader.fields(n, "security", allowed: ["mfa", "sessionTimeout", "ipAllowlist"]) {
            var security = TenantSpec.Security(location: reader.location(n))
            security.mfa = sf["mfa"].flatMap { reader.enumValue($0, "mfa", MFAPolicy.self) }
            security.sessionTimeout = sf["sessionTimeout"].flatMap { reader.duration($0, "sessionTimeout", in: 300...(30 * 86_400))?.value }
            if let list = sf["ipAllowlist"].flatMap({ reader.stringList($0, "ipAllowlist") }) {
                security.ipAllowlist = list.compactMap { entry in
                    switch CIDR.parse(entry.value) {
                    case .success(let cidr): return Located(cidr.description, at: entry.location)
                    case .failure(let problem):
                        reader.diagnostics.error("spec.cidr", "'\(entry.value)' is not a valid CIDR block: \(problem.message)",
                                                 at: entry.location, help: problem.help)
                        return nil
                    }
                }
            }
            tenant.security = security
        }
        tenant.quotas = f["quotas"].flatMap { quotas($0, "quotas of tenant '\(slug)'") }
        tenant.roles = f["roles"].map { roles($0, "roles") }
        tenant.members = f["members"].map { members($0) }
        tenant.teams = f["teams"].map { teams($0) }
        tenant.sso = f["sso"].flatMap { sso($0) }
        tenant.webhooks = f["webhooks"].map { webhooks($0) }
        tenant.apiKeys = f["apiKeys"].map { apiKeys($0) }
        tenant.previously = f["previously"].map { previously($0, "tenant '\(slug)'", current: slug) } ?? []
        tenant.policies = f["policies"].flatMap { policies($0, "policies of tenant '\(slug)'") }
        return tenant
    }

    private func members(_ node: Node) -> [MemberSpec] {
        var result: [MemberSpec] = []
        for (email, pair) in emailEntries(reader.entries(node, "members"), in: "the tenant's members") {
            let value = pair.value
            var member: MemberSpec
            if case .mapping = value.content {
                guard let mf = reader.fields(value, "member '\(email)'", allowed: ["role", "expires"]) else { continue }
                guard let r = mf["role"], let role = reader.nonEmptyString(r, "role of member '\(email)'") else {
                    if mf["role"] == nil {
                        reader.error("spec.missing-key", "member '\(email)' has no 'role'", at: pair.key, help: "add 'role: <role name>'")
                    }
                    continue
                }
                member = MemberSpec(email: email, location: reader.location(pair.key), role: Located(role, at: reader.location(r)))
                member.expires = mf["expires"].flatMap { reader.date($0, "expires of member '\(email)'") }
                member.expiresWritten = mf["expires"] != nil
            } else {
                guard let role = reader.nonEmptyString(value, "role of member '\(email)'") else { continue }
                member = MemberSpec(email: email, location: reader.location(pair.key), role: Located(role, at: reader.location(value)))
            }
            result.append(member)
        }
        return result
    }

    private func teams(_ node: Node) -> [TeamSpec] {
        var result: [TeamSpec] = []
        for pair in reader.entries(node, "teams") {
            guard let slug = identity(pair.key, "team slug", pattern: .slug) else { continue }
            guard let tf = reader.fields(pair.value, "team '\(slug)'", allowed: ["name", "description", "parent", "members", "quotas", "previously"]) else { continue }
            var team = TeamSpec(slug: slug, location: reader.location(pair.key))
            team.name = tf["name"].flatMap { reader.nonEmptyString($0, "name of team '\(slug)'") }
            team.description = tf["description"].flatMap { reader.string($0, "description") }
            if let p = tf["parent"], let parent = reader.nonEmptyString(p, "parent of team '\(slug)'") {
                team.parent = Located(parent, at: reader.location(p))
            }
            if let m = tf["members"] {
                var members: [TeamMemberSpec] = []
                for (email, entry) in emailEntries(reader.entries(m, "members of team '\(slug)'"), in: "team '\(slug)'") {
                    guard let role = reader.enumValue(entry.value, "team role of '\(email)'", TeamRole.self) else { continue }
                    members.append(TeamMemberSpec(email: email, location: reader.location(entry.key), role: role))
                }
                team.members = members
            }
            team.quotas = tf["quotas"].flatMap { quotas($0, "quotas of team '\(slug)'") }
            team.previously = tf["previously"].map { previously($0, "team '\(slug)'", current: slug) } ?? []
            result.append(team)
        }
        return result
    }

    private func sso(_ node: Node) -> SSOSpec? {
        guard let sf = reader.fields(node, "sso", allowed: ["enforce", "jit", "providers"]) else { return nil }
        var sso = SSOSpec(location: reader.location(node))
        sso.enforce = sf["enforce"].flatMap { reader.bool($0, "sso.enforce") }
        if let j = sf["jit"], let jf = reader.fields(j, "sso.jit", allowed: ["enabled", "defaultRole"]) {
            sso.jitEnabled = jf["enabled"].flatMap { reader.bool($0, "sso.jit.enabled") }
            if let r = jf["defaultRole"], let role = reader.nonEmptyString(r, "sso.jit.defaultRole") {
                sso.jitDefaultRole = Located(role, at: reader.location(r))
            }
        }
        if let p = sf["providers"] {
            var providers: [SSOProviderSpec] = []
            for pair in reader.entries(p, "sso.providers") {
                guard let name = identity(pair.key, "provider name", pattern: .slug) else { continue }
                let allowed = ["type", "entityId", "ssoUrl", "certificate", "issuer", "clientId", "clientSecret"]
                guard let pf = reader.fields(pair.value, "provider '\(name)'", allowed: allowed) else { continue }
                guard let t = pf["type"], let type = reader.enumValue(t, "type of provider '\(name)'", SSOProviderSpec.Kind.self) else {
                    if pf["type"] == nil {
                        reader.error("spec.missing-key", "provider '\(name)' has no 'type'", at: pair.key, help: "add 'type: saml' or 'type: oidc'")
                    }
                    continue
                }
                var provider = SSOProviderSpec(name: name, location: reader.location(pair.key), type: type)
                let own: [String] = type == .saml ? ["entityId", "ssoUrl", "certificate"] : ["issuer", "clientId", "clientSecret"]
                for pair in pf.pairs {
                    let key = pair.key.scalar ?? ""
                    if key != "type", allowed.contains(key), !own.contains(key) {
                        reader.error("spec.unknown-key", "'\(key)' does not apply to an \(type.rawValue.uppercased()) provider", at: pair.key,
                                     help: "an \(type.rawValue.uppercased()) provider takes: \(own.joined(separator: ", "))")
                    }
                }
                for key in own where pf[key] == nil {
                    reader.error("spec.missing-key", "\(type.rawValue.uppercased()) provider '\(name)' has no '\(key)'", at: pair.key,
                                 help: "add '\(key)'")
                }
                switch type {
                case .saml:
                    provider.entityID = pf["entityId"].flatMap { reader.nonEmptyString($0, "entityId") }
                    if let u = pf["ssoUrl"], let url = reader.string(u, "ssoUrl"), NetworkRules.check(url: url, what: "ssoUrl", at: u, reader: reader) {
                        provider.ssoURL = url
                    }
                    provider.certificate = pf["certificate"].flatMap { certificate($0) }
                case .oidc:
                    if let u = pf["issuer"], let url = reader.string(u, "issuer"), NetworkRules.check(url: url, what: "issuer", at: u, reader: reader) {
                        provider.issuer = url
                    }
                    provider.clientID = pf["clientId"].flatMap { reader.nonEmptyString($0, "clientId") }
                    provider.clientSecret = pf["clientSecret"].flatMap { secret($0, "clientSecret") }
                }
                providers.append(provider)
            }
            sso.providers = providers
        }
        return sso
    }

    private func webhooks(_ node: Node) -> [WebhookSpec] {
        var result: [WebhookSpec] = []
        for pair in reader.entries(node, "webhooks") {
            guard let name = identity(pair.key, "webhook name", pattern: .slug) else { continue }
            guard let wf = reader.fields(pair.value, "webhook '\(name)'", allowed: ["url", "events", "secret", "timeout", "maxRetries", "enabled"]) else { continue }
            guard let u = wf["url"], let url = reader.string(u, "url of webhook '\(name)'") else {
                if wf["url"] == nil { reader.error("spec.missing-key", "webhook '\(name)' has no 'url'", at: pair.key, help: "add 'url: https://…'") }
                continue
            }
            let urlIsValid = NetworkRules.check(url: url, what: "webhook url", at: u, reader: reader)
            var webhook = WebhookSpec(name: name, location: reader.location(pair.key), url: Located(url, at: reader.location(u)), events: [])
            if let e = wf["events"] { webhook.events = reader.stringList(e, "events of webhook '\(name)'") ?? [] } else {
                reader.error("spec.missing-key", "webhook '\(name)' has no 'events'", at: pair.key,
                             help: "list the events it receives, e.g. events: [member.*]")
            }
            webhook.secret = wf["secret"].flatMap { secret($0, "secret") }
            webhook.timeout = wf["timeout"].flatMap { reader.duration($0, "timeout of webhook '\(name)'", in: 1...300) }
            webhook.maxRetries = wf["maxRetries"].flatMap { n in reader.integer(n, "maxRetries of webhook '\(name)'", in: 0...10).map { Located($0, at: reader.location(n)) } }
            webhook.enabled = wf["enabled"].flatMap { reader.bool($0, "enabled") }
            if urlIsValid { result.append(webhook) }
        }
        return result
    }

    private func apiKeys(_ node: Node) -> [APIKeySpec] {
        var result: [APIKeySpec] = []
        for pair in reader.entries(node, "apiKeys") {
            guard let name = identity(pair.key, "API key name", pattern: .slug) else { continue }
            guard let kf = reader.fields(pair.value, "API key '\(name)'", allowed: ["description", "scopes", "rateLimit", "expires", "rotate", "rotateOnScopeChange"]) else { continue }
            var key = APIKeySpec(name: name, location: reader.location(pair.key), scopes: [])
            key.description = kf["description"].flatMap { reader.string($0, "description") }
            if let s = kf["scopes"] { key.scopes = reader.stringList(s, "scopes of API key '\(name)'") ?? [] } else {
                reader.error("spec.missing-key", "API key '\(name)' has no 'scopes'", at: pair.key,
                             help: "list the permissions the key grants, e.g. scopes: [apps.read]")
            }
            key.rateLimit = kf["rateLimit"].flatMap { reader.rate($0, "rateLimit of API key '\(name)'") }
            key.expires = kf["expires"].flatMap { reader.date($0, "expires of API key '\(name)'") }
            key.rotate = kf["rotate"].flatMap { n in reader.integer(n, "rotate of API key '\(name)'", in: 0...1_000_000).map { Located($0, at: reader.location(n)) } }
            key.rotateOnScopeChange = kf["rotateOnScopeChange"].flatMap { reader.bool($0, "rotateOnScopeChange of API key '\(name)'") }
            result.append(key)
        }
        return result
    }

    // MARK: Shared pieces

    /// `previously: [old-slug, ...]`: earlier slugs, each a valid slug other than the current one.
    func previously(_ node: Node, _ what: String, current: String) -> [Located<String>] {
        guard let list = reader.stringList(node, "previously of \(what)") else { return [] }
        var result: [Located<String>] = []
        for entry in list {
            if !NamePattern.slug.matches(entry.value) {
                reader.diagnostics.error("spec.name", "previous slug '\(entry.value)' of \(what) is not valid", at: entry.location,
                                         help: NamePattern.slug.rule)
            } else if entry.value == current {
                reader.diagnostics.error("spec.rename", "\(what) lists its own slug under previously", at: entry.location,
                                         help: "list only the slugs it had before, or remove 'previously'")
            } else {
                result.append(entry)
            }
        }
        return result
    }

    static func isUpperOrNonASCII(_ byte: UInt8) -> Bool { (65...90).contains(byte) || byte >= 0x80 }

    /// Entries keyed by e-mail address, with valid lower-cased addresses; keys that differ only in
    /// case are reported as duplicates. (The loader already rejected exact repeats, so only keys
    /// with capitals can collide, and the index is built only then.)
    private func emailEntries(_ pairs: [Node.Pair], in what: String) -> [(email: String, pair: Node.Pair)] {
        var seen: [String: Node]? = pairs.contains(where: { $0.key.scalar?.utf8.contains(where: Self.isUpperOrNonASCII) ?? false }) ? [:] : nil
        var result: [(email: String, pair: Node.Pair)] = []
        result.reserveCapacity(pairs.count)
        for pair in pairs {
            guard let email = identity(pair.key, "member e-mail", pattern: .email) else { continue }
            if let first = seen?.updateValue(pair.key, forKey: email) {
                if first.scalar != pair.key.scalar {
                    reader.error("spec.duplicate-key", "member '\(email)' is listed twice in \(what) (e-mail addresses ignore case)",
                                 at: pair.key, help: "remove one of the two entries",
                                 notes: [.init("first listed here", at: reader.location(first.mark))])
                }
                continue
            }
            result.append((email, pair))
        }
        return result
    }

    /// The key's text if it has the shape `pattern` requires; e-mail addresses come back lower case.
    func identity(_ key: Node, _ what: String, pattern: NamePattern) -> String? {
        guard let text = key.scalar else { return nil }
        let checked = pattern == .email && text.utf8.contains(where: Self.isUpperOrNonASCII) ? text.lowercased() : text
        guard pattern.matches(checked) else {
            reader.error("spec.name", "\(what) '\(text.count > 64 ? String(text.prefix(64)) + "…" : text)' is not valid", at: key,
                         help: pattern.rule)
            return nil
        }
        return checked
    }

    /// `{env: NAME}` or `{file: path}`; a literal is an error (secrets never live in git).
    private func secret(_ node: Node, _ what: String) -> SecretReference? {
        guard case .mapping(let pairs) = node.content else {
            if case .scalar = node.content, !node.isNull {
                // Never echo the literal: it may be a real secret.
                reader.error("spec.inline-secret", "\(what) must be a reference, not a literal value", at: node,
                             help: "write {env: VARIABLE_NAME} or {file: path/to/secret}, and remove the secret from git history")
            } else {
                reader.error("spec.type", "\(what) must be {env: NAME} or {file: path}, not \(node.kindDescription)", at: node,
                             help: "write {env: VARIABLE_NAME} or {file: path/to/secret}")
            }
            return nil
        }
        guard pairs.count == 1, let key = pairs[0].key.scalar, key == "env" || key == "file" else {
            reader.error("spec.secret-reference", "\(what) must have exactly one key, 'env' or 'file'", at: node,
                         help: "write {env: VARIABLE_NAME} or {file: path/to/secret}")
            return nil
        }
        let valueNode = pairs[0].value
        guard let value = reader.nonEmptyString(valueNode, "\(what) \(key)") else { return nil }
        if key == "env" {
            guard NamePattern.environmentVariable.matches(value) else {
                reader.error("spec.name", "'\(value)' is not a valid environment variable name", at: valueNode,
                             help: NamePattern.environmentVariable.rule)
                return nil
            }
            if let reason = SecretRules.reservedReason(environment: value) {
                reader.error("spec.secret-reserved", "\(what) {env: \(value)} \(reason)", at: valueNode, help: SecretRules.reservedHelp)
                return nil
            }
            return SecretReference(source: .environment(value), location: reader.location(node))
        }
        guard let path = files.resolve(value, from: reader.file, at: valueNode, reader: reader) else { return nil }
        if let reason = files.relativeToRoot(path).flatMap(SecretRules.reservedReason(file:))
            ?? files.realRelativeToRoot(path).flatMap(SecretRules.reservedReason(file:))
        {
            reader.error("spec.secret-reserved", "\(what) {file: \(value)} \(reason)", at: valueNode,
                         help: "keep secret files in a visible folder such as secrets/, written by the pipeline from its secret store")
            return nil
        }
        return SecretReference(source: .file(written: value, path: path), location: reader.location(node))
    }

    /// A SAML certificate from `{file: path}` (or inline PEM text), parsed as X.509.
    private func certificate(_ node: Node) -> CertificateInfo? {
        let pem: [UInt8]
        if case .mapping(let pairs) = node.content {
            guard pairs.count == 1, pairs[0].key.scalar == "file",
                let written = reader.nonEmptyString(pairs[0].value, "certificate file")
            else {
                reader.error("spec.type", "certificate must be {file: path} or PEM text", at: node,
                             help: "write certificate: {file: certs/idp.pem}")
                return nil
            }
            guard let path = files.resolve(written, from: reader.file, at: pairs[0].value, reader: reader) else { return nil }
            guard let bytes = files.read(path, at: pairs[0].value, reader: reader) else { return nil }
            pem = bytes
        } else {
            guard let text = reader.nonEmptyString(node, "certificate") else { return nil }
            pem = Array(text.utf8)
        }
        return CertificateCheck.parse(pem, at: node, reader: reader)
    }
}

extension Node {
    var mappingPairs: [Node.Pair] {
        if case .mapping(let pairs) = content { return pairs }
        return []
    }
}
