/// Writes a configuration folder (docs/spec.md) from resources as the state database holds them:
/// `platform.yaml`, `tenants/<slug>.yaml` and `certs/<tenant>-<provider>.pem`, such that planning
/// the folder against the same state shows no changes.
///
/// Pure: it returns the files; the caller writes them. Secrets are never known here (only their
/// fingerprints), so each secret becomes `{env: NAME}` with a comment asking for its value.
public struct ConfigurationExporter {
    public struct File: Sendable, Equatable {
        /// Relative to the output folder.
        public var path: String
        public var text: String
    }

    /// A secret the exported configuration references, to be provided before planning.
    public struct SecretPlaceholder: Sendable, Equatable {
        public var variable: String
        public var address: String
        public var attribute: String
    }

    public private(set) var files: [File] = []
    public private(set) var secrets: [SecretPlaceholder] = []

    private var children: [String: [Resource]] = [:]
    private var usedVariables: Set<String> = []
    private var usedFiles: Set<String> = []

    /// - Parameter resources: every stored resource, in any order.
    public init(resources: [Resource]) {
        var topLevel: [Resource] = []
        for resource in resources {
            if let parent = resource.parent { children[parent, default: []].append(resource) } else { topLevel.append(resource) }
        }
        for key in children.keys { children[key]?.sort { $0.address < $1.address } }
        topLevel.sort { $0.address < $1.address }
        files.append(File(path: "platform.yaml", text: platform(topLevel)))
        for tenant in topLevel where tenant.kind == .tenant {
            let slug = Self.name(tenant)
            let path = fileName("tenants/", slug, ".yaml")
            let text = self.tenant(tenant, slug: slug)
            files.append(File(path: path, text: text))
        }
    }

    // MARK: Documents

    private func platform(_ resources: [Resource]) -> String {
        var y = YAMLText()
        y.line("# Exported by 'orgctl export' from the state database. Review before applying.")
        y.line("apiVersion: orgctl.dev/v1")
        y.line("kind: Platform")
        let plans = resources.filter { $0.kind == .plan }
        y.line(plans.isEmpty ? "plans: {}" : "plans:")
        for plan in plans {
            y.line("  \(Self.key(Self.name(plan))):" + (Self.hasValues(plan) ? "" : " {}"))
            y.scalar(4, "description", plan["description"])
            y.quotas(4, plan)
            y.scalar(4, "rateLimit", plan["rateLimit"])
            y.scalar(4, "features", plan["features"])
        }
        let permissions = resources.filter { $0.kind == .permission }
        if !permissions.isEmpty {
            y.line("permissions:")
            for permission in permissions {
                let fields = [("category", permission["category"]), ("description", permission["description"])]
                y.line("  \(Self.key(Self.name(permission))): \(Self.flow(fields))")
            }
        }
        let roles = resources.filter { $0.kind == .role }
        if !roles.isEmpty {
            y.line("roles:")
            for role in roles { y.role(2, role) }
        }
        let events = resources.filter { $0.kind == .event }
        if !events.isEmpty {
            y.line("events: " + YAMLText.value(.list(events.map { Self.name($0) })))
        }
        return y.text
    }

    private mutating func tenant(_ tenant: Resource, slug: String) -> String {
        let address = tenant.address
        let own = children[address] ?? []
        var y = YAMLText()
        y.line("# Exported by 'orgctl export' from the state database. Review before applying.")
        y.line("apiVersion: orgctl.dev/v1")
        y.line("kind: Tenant")
        y.line("slug: \(Self.key(slug))")
        for name in ["name", "plan", "status", "trialEnds", "domains"] { y.scalar(0, name, tenant[name]) }
        y.section(0, "branding", tenant, ["primaryColor", "logoUrl", "customDomain"])
        y.section(0, "security", tenant, ["mfa", "sessionTimeout", "ipAllowlist"])
        y.quotas(0, tenant)

        let roles = own.filter { $0.kind == .tenantRole }
        if !roles.isEmpty {
            y.line("roles:")
            for role in roles { y.role(2, role) }
        }
        let members = own.filter { $0.kind == .member }
        if !members.isEmpty {
            y.line("members:")
            for member in members {
                y.line("  \(Self.key(Self.name(member))): \(Self.flow([("role", member["role"]), ("expires", member["expires"])]))")
            }
        }
        let teams = own.filter { $0.kind == .team }
        if !teams.isEmpty {
            y.line("teams:")
            for team in teams {
                let teamMembers = children[team.address] ?? []
                y.line("  \(Self.key(Self.name(team))):" + (Self.hasValues(team) || !teamMembers.isEmpty ? "" : " {}"))
                for name in ["name", "description", "parent"] { y.scalar(4, name, team[name]) }
                y.quotas(4, team)
                if !teamMembers.isEmpty {
                    y.line("    members:")
                    for member in teamMembers {
                        y.line("      \(Self.key(Self.name(member))): \(YAMLText.value(member["role"]))")
                    }
                }
            }
        }
        let providers = own.filter { $0.kind == .ssoProvider }
        let ssoFields = ["sso.enforce", "sso.jit.enabled", "sso.jit.defaultRole"]
        if !providers.isEmpty || ssoFields.contains(where: { !tenant[$0].isNull }) {
            y.line("sso:")
            y.scalar(2, "enforce", tenant["sso.enforce"])
            let jit = [("enabled", tenant["sso.jit.enabled"]), ("defaultRole", tenant["sso.jit.defaultRole"])]
            if jit.contains(where: { !$0.1.isNull }) { y.line("  jit: \(Self.flow(jit))") }
            if !providers.isEmpty {
                y.line("  providers:")
                for provider in providers {
                    let name = Self.name(provider)
                    y.line("    \(Self.key(name)):")
                    for field in ["type", "entityId", "ssoUrl", "issuer", "clientId"] { y.scalar(6, field, provider[field]) }
                    if case .document(_, let pem) = provider["certificate"] {
                        let path = fileName("certs/", "\(slug)-\(name)", ".pem")
                        files.append(File(path: path, text: pem.hasSuffix("\n") ? pem : pem + "\n"))
                        y.line("      certificate: {file: \(YAMLText.quoted("../\(path)"))}")
                    }
                    if case .secret = provider["clientSecret"] {
                        y.line(secretLine(6, "clientSecret", address: provider.address, variable: "\(slug)_\(name)_CLIENT_SECRET"))
                    }
                }
            }
        }
        let webhooks = own.filter { $0.kind == .webhook }
        if !webhooks.isEmpty {
            y.line("webhooks:")
            for webhook in webhooks {
                let name = Self.name(webhook)
                y.line("  \(Self.key(name)):")
                for field in ["url", "events"] { y.scalar(4, field, webhook[field]) }
                if case .secret = webhook["secret"] {
                    y.line(secretLine(4, "secret", address: webhook.address, variable: "\(slug)_\(name)_WEBHOOK_SECRET"))
                }
                for field in ["timeout", "maxRetries", "enabled"] { y.scalar(4, field, webhook[field]) }
            }
        }
        let keys = own.filter { $0.kind == .apiKey }
        if !keys.isEmpty {
            y.line("apiKeys:")
            for key in keys {
                y.line("  \(Self.key(Self.name(key))):")
                for field in ["description", "scopes", "rateLimit", "expires", "rotate", "rotateOnScopeChange"] { y.scalar(4, field, key[field]) }
            }
        }
        return y.text
    }

    /// `secret: {env: NAME}` with a comment; NAME is upper case, unique within the export.
    private mutating func secretLine(_ indent: Int, _ attribute: String, address: String, variable raw: String) -> String {
        var base = String(raw.uppercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
        if base.first?.isNumber ?? true { base = "S_" + base }
        var variable = base
        var counter = 2
        while usedVariables.contains(variable) {
            variable = "\(base)_\(counter)"
            counter += 1
        }
        usedVariables.insert(variable)
        secrets.append(SecretPlaceholder(variable: variable, address: address, attribute: attribute))
        return String(repeating: " ", count: indent)
            + "\(attribute): {env: \(variable)}  # fill in: set \(variable) to the secret's value (the state holds only a fingerprint)"
    }

    // MARK: Helpers

    /// `folder` + `base` + `suffix`, with `base` reduced to `a-z 0-9 - _` (slugs already are; a
    /// database not written by orgctl may hold anything, and no name may lead out of the folder),
    /// and a numeric suffix when two names would share a file.
    private mutating func fileName(_ folder: String, _ base: String, _ suffix: String) -> String {
        var safe = String(base.unicodeScalars.map { scalar -> Character in
            (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9") || scalar == "-" ? Character(scalar) : "_"
        })
        if safe.isEmpty { safe = "_" }
        var path = folder + safe + suffix
        var counter = 2
        while usedFiles.contains(path) {
            path = "\(folder)\(safe)-\(counter)\(suffix)"
            counter += 1
        }
        usedFiles.insert(path)
        return path
    }

    /// The resource's own name: the address after its parent's address and its kind's segment, so
    /// a name holding `/` (possible in a database orgctl did not write) is kept whole.
    static func name(_ resource: Resource) -> String {
        let prefix = (resource.parent.map { $0 + "/" } ?? "") + resource.kind.segment + "/"
        return resource.address.hasPrefix(prefix) ? String(resource.address.dropFirst(prefix.count))
            : String(resource.address[resource.address.index(after: Resource.collection(of: resource.address).endIndex)...])
    }

    static func hasValues(_ resource: Resource) -> Bool { resource.attributes.contains { !$0.value.isNull } }

    static func flow(_ fields: [(String, Value)]) -> String {
        let set = fields.filter { !$0.1.isNull }.map { "\($0.0): \(YAMLText.value($0.1))" }
        return "{" + set.joined(separator: ", ") + "}"
    }

    /// A mapping key: plain when that is unambiguous, else double-quoted.
    static func key(_ text: String) -> String {
        let safe = !text.isEmpty && text.unicodeScalars.allSatisfy { scalar in
            (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9") || "-._@+".unicodeScalars.contains(scalar)
        } && !["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"].contains(text) && text.first != "-"
        return safe ? text : YAMLText.quoted(text)
    }
}

/// Lines of YAML text, with values written so that orgctl's decoder reads them back exactly.
struct YAMLText {
    var text = ""

    mutating func line(_ s: String) { text += s + "\n" }

    mutating func scalar(_ indent: Int, _ name: String, _ value: Value) {
        guard !value.isNull else { return }
        line(String(repeating: " ", count: indent) + "\(name): \(Self.value(value))")
    }

    /// A section object (`branding`, `security`) written when any of its fields is stored.
    mutating func section(_ indent: Int, _ name: String, _ resource: Resource, _ fields: [String]) {
        let values = fields.map { ($0, resource["\(name).\($0)"]) }
        guard values.contains(where: { !$0.1.isNull }) else { return }
        line(String(repeating: " ", count: indent) + "\(name): \(ConfigurationExporter.flow(values))")
    }

    mutating func quotas(_ indent: Int, _ resource: Resource) {
        let values = QuotaName.allCases.map { ($0.rawValue, resource[AttributeEncoding.quotaAttribute($0)]) }
        guard values.contains(where: { !$0.1.isNull }) else { return }
        line(String(repeating: " ", count: indent) + "quotas: \(ConfigurationExporter.flow(values))")
    }

    mutating func role(_ indent: Int, _ role: Resource) {
        let pad = String(repeating: " ", count: indent)
        line(pad + "\(ConfigurationExporter.key(ConfigurationExporter.name(role))):")
        if case .list = role["permissions"] { scalar(indent + 2, "permissions", role["permissions"]) } else { line(pad + "  permissions: []") }
        scalar(indent + 2, "description", role["description"])
        scalar(indent + 2, "maxDuration", role["maxDuration"])
    }

    /// Strings double-quoted (never re-typed by YAML), except quota words and sizes, which the
    /// decoder reads from plain scalars; numbers and booleans plain; lists in flow style.
    static func value(_ value: Value) -> String {
        switch value {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): String(i)
        case .string(let s): s == "unlimited" || ByteSize(parsing: s) != nil ? s : quoted(s)
        case .list(let items): "[" + items.map(quoted).joined(separator: ", ") + "]"
        case .secret: "null"
        case .document: "null"
        }
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x85 || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
