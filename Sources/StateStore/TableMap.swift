import Spec

/// Where each attribute of each kind lives in the platform tables.
enum Storage {
    enum Encoding { case text, integer, bool, list, duration }

    /// A column of the kind's own table.
    case column(String, Encoding)
    /// A column of a one-row-per-tenant side table (`security_policies`, `sso_settings`).
    case side(table: String, column: String, Encoding)
    /// A row of `quotas` for the kind's quota scope.
    case quota(String)
    /// Rows of `role_permissions`.
    case permissions
    /// `teams.parent_id`, written from the parent team's slug.
    case parentTeam
    /// `<prefix>_ciphertext`, `<prefix>_key_id`, `<prefix>_fingerprint`.
    case secret(prefix: String)
    /// `certificate_pem` and `certificate_sha256`.
    case certificate
}

struct TableMap {
    let table: String
    /// The column holding the last address segment (slug, e-mail, name); nil for team members.
    let keyColumn: String?
    /// The scope name in `quotas`, for kinds with quotas.
    let quotaScope: String?
    let storage: [String: Storage]

    static func of(_ kind: ResourceKind) -> TableMap {
        switch kind {
        case .plan:
            TableMap(table: "plans", keyColumn: "slug", quotaScope: "plan",
                     storage: ["description": .column("description", .text), "rateLimit": .column("rate_limit", .text),
                               "features": .column("features", .list)])
        case .permission:
            TableMap(table: "permissions", keyColumn: "name", quotaScope: nil,
                     storage: ["category": .column("category", .text), "description": .column("description", .text)])
        case .event:
            TableMap(table: "events", keyColumn: "name", quotaScope: nil, storage: [:])
        case .role, .tenantRole:
            TableMap(table: "roles", keyColumn: "slug", quotaScope: nil,
                     storage: ["description": .column("description", .text), "maxDuration": .column("max_duration_seconds", .duration),
                               "permissions": .permissions])
        case .tenant:
            TableMap(table: "tenants", keyColumn: "slug", quotaScope: "tenant", storage: [
                "name": .column("name", .text), "plan": .column("plan", .text), "status": .column("status", .text),
                "trialEnds": .column("trial_ends", .text), "domains": .column("domains", .list),
                "branding.primaryColor": .column("primary_color", .text), "branding.logoUrl": .column("logo_url", .text),
                "branding.customDomain": .column("custom_domain", .text),
                "security.mfa": .side(table: "security_policies", column: "mfa", .text),
                "security.sessionTimeout": .side(table: "security_policies", column: "session_timeout_seconds", .duration),
                "security.ipAllowlist": .side(table: "security_policies", column: "ip_allowlist", .list),
                "sso.enforce": .side(table: "sso_settings", column: "enforce", .bool),
                "sso.jit.enabled": .side(table: "sso_settings", column: "jit_enabled", .bool),
                "sso.jit.defaultRole": .side(table: "sso_settings", column: "jit_default_role", .text),
            ])
        case .member:
            TableMap(table: "members", keyColumn: "email", quotaScope: nil,
                     storage: ["role": .column("role", .text), "expires": .column("expires", .text)])
        case .team:
            TableMap(table: "teams", keyColumn: "slug", quotaScope: "team",
                     storage: ["name": .column("name", .text), "description": .column("description", .text), "parent": .parentTeam])
        case .teamMember:
            TableMap(table: "team_members", keyColumn: nil, quotaScope: nil, storage: ["role": .column("role", .text)])
        case .ssoProvider:
            TableMap(table: "sso_providers", keyColumn: "name", quotaScope: nil, storage: [
                "type": .column("type", .text), "entityId": .column("entity_id", .text), "ssoUrl": .column("sso_url", .text),
                "certificate": .certificate, "issuer": .column("issuer", .text), "clientId": .column("client_id", .text),
                "clientSecret": .secret(prefix: "client_secret"),
            ])
        case .webhook:
            TableMap(table: "webhooks", keyColumn: "name", quotaScope: nil, storage: [
                "url": .column("url", .text), "events": .column("events", .list), "secret": .secret(prefix: "secret"),
                "timeout": .column("timeout_seconds", .duration), "maxRetries": .column("max_retries", .integer),
                "enabled": .column("enabled", .bool),
            ])
        case .apiKey:
            TableMap(table: "api_keys", keyColumn: "name", quotaScope: nil, storage: [
                "description": .column("description", .text), "scopes": .column("scopes", .list),
                "rateLimit": .column("rate_limit", .text), "expires": .column("expires", .text),
                "rotate": .column("rotation", .integer), "rotateOnScopeChange": .column("rotate_on_scope_change", .bool),
                KeyMaterial.prefixAttribute: .column("key_prefix", .text), KeyMaterial.hashAttribute: .column("key_sha256", .text),
            ])
        }
    }

    /// Every platform table (`Schema.platformTablesV1`; later steps add columns, not tables).
    static let platformTables = [
        "plans", "permissions", "events", "tenants", "security_policies", "sso_settings", "roles", "role_permissions", "quotas",
        "members", "teams", "team_members", "sso_providers", "webhooks", "api_keys",
    ]

    func storage(for attribute: String) -> Storage? {
        if let known = storage[attribute] { return known }
        if quotaScope != nil, attribute.hasPrefix("quotas.") {
            return .quota(String(attribute.dropFirst("quotas.".count)))
        }
        return nil
    }
}

/// The address segment of a stored natural key (slug, name, e-mail), built so that every row has
/// an address of its own: the mapping is injective, and a segment never holds a `/`.
///
/// A key made only of ASCII letters, digits and `.-_@+'` is its own segment: every key the
/// configuration format can produce is such a key (no name pattern allows `%`), so stored rows
/// meet their configuration at the same address. Any other key (a `/`, a space, a control
/// character, non-ASCII or invalid UTF-8, a `%`, a `*`) has every byte outside that set written
/// as `%XX` (upper-case hex), and the empty key is `%`. Such a segment holds a `%`, which no
/// verbatim segment does, so it can neither meet a configured address nor another row's, and
/// it prints as plain ASCII.
enum AddressSegment {
    static func isVerbatim(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "@"), UInt8(ascii: "+"), UInt8(ascii: "'"):
            true
        default:
            false
        }
    }

    /// The segment for the key's raw bytes (as stored, not decoded).
    static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        if !bytes.isEmpty, bytes.allSatisfy(isVerbatim) { return String(decoding: bytes, as: UTF8.self) }
        if bytes.isEmpty { return "%" }
        return percentEncoded(bytes, keeping: isVerbatim)
    }

    /// `bytes` with every byte that `keeping` rejects written as `%XX` (upper-case hex).
    static func percentEncoded(_ bytes: UnsafeRawBufferPointer, keeping: (UInt8) -> Bool) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 3)
        for byte in bytes {
            if keeping(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Text from a server (a message, an application name) with every control character, every
    /// byte outside printable ASCII and every `%` written as `%XX`, as address segments are.
    static func escapeForMessage(_ text: String) -> String {
        var text = text
        return text.withUTF8 { percentEncoded(UnsafeRawBufferPointer($0)) { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "%") } }
    }

    static func encode(_ text: String) -> String {
        var text = text
        return text.withUTF8 { encode(UnsafeRawBufferPointer($0)) }
    }
}
