/// A kind of resource: what an address names, and how resources are ordered when applied.
public enum ResourceKind: String, Sendable, CaseIterable, Comparable {
    case plan, permission, event, role, tenant
    case tenantRole = "tenant-role"
    case member, team
    case teamMember = "team-member"
    case ssoProvider = "sso-provider"
    case webhook
    case apiKey = "api-key"

    /// Parents come before children: creates run in this order, deletes in reverse. The position
    /// in `allCases` (the declaration order), spelled out: sorts compare kinds millions of times.
    public var rank: Int {
        switch self {
        case .plan: 0
        case .permission: 1
        case .event: 2
        case .role: 3
        case .tenant: 4
        case .tenantRole: 5
        case .member: 6
        case .team: 7
        case .teamMember: 8
        case .ssoProvider: 9
        case .webhook: 10
        case .apiKey: 11
        }
    }

    public static func < (lhs: ResourceKind, rhs: ResourceKind) -> Bool { lhs.rank < rhs.rank }

    /// The address segment for the kind's collection (`member` in `tenant/acme/member/x`).
    public var segment: String {
        switch self {
        case .plan: "plan"
        case .permission: "permission"
        case .event: "event"
        case .role, .tenantRole: "role"
        case .tenant: "tenant"
        case .member, .teamMember: "member"
        case .team: "team"
        case .ssoProvider: "sso"
        case .webhook: "webhook"
        case .apiKey: "apikey"
        }
    }
}

/// A value of one resource attribute. Lists are sets: kept sorted so order never shows as a change.
public enum Value: Hashable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case string(String)
    case list([String])
    /// A secret, known only by its keyed fingerprint (`hmac-sha256:…`). The value never enters a Resource.
    case secret(fingerprint: String)
    /// Public content compared by digest (a certificate): the text is written, the digest is shown.
    case document(sha256: String, text: String)

    public static func == (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case let (.bool(a), .bool(b)): a == b
        case let (.int(a), .int(b)): a == b
        case let (.string(a), .string(b)): a == b
        case let (.list(a), .list(b)): a == b
        case let (.secret(a), .secret(b)): a == b
        case let (.document(a, _), .document(b, _)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(b)
        case .int(let i): hasher.combine(i)
        case .string(let s): hasher.combine(s)
        case .list(let l): hasher.combine(l)
        case .secret(let f): hasher.combine(f)
        case .document(let d, _): hasher.combine(d)
        }
    }

    public var isNull: Bool { if case .null = self { true } else { false } }

    /// How plans and logs show the value; secrets never show more than that they are set.
    public var description: String {
        switch self {
        case .null: "(none)"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): String(i)
        case .string(let s): "\"\(s)\""
        case .list(let l): "[" + l.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        case .secret: "(sensitive)"
        case .document(let digest, _): "(sha256:\(digest.prefix(16))…)"
        }
    }
}

/// One named attribute of a resource (`quotas.seats`, `branding.logoUrl`, `role`).
public struct Attribute: Hashable, Sendable {
    public var name: String
    public var value: Value

    public init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }
}

/// Something orgctl manages, named by its address (`tenant/acme/member/alice@acme.com`).
///
/// `attributes` holds exactly the managed fields, sorted by name: a field absent from the
/// configuration is absent here and never changed; a field of a section that is present but left
/// out is `.null` here and is cleared.
public struct Resource: Sendable {
    public var address: String
    public var kind: ResourceKind
    /// The parent's address (`tenant/acme` for a member), nil for top-level resources.
    public var parent: String?
    public var attributes: [Attribute]
    /// Child collections this resource manages completely (`tenant/acme/member`): stored children
    /// in them that the configuration does not declare are deleted. A collection whose section is
    /// absent from the configuration is not managed, and its stored children are left alone.
    public var managedCollections: [String]

    public init(address: String, kind: ResourceKind, parent: String?, attributes: [Attribute], managedCollections: [String] = []) {
        self.address = address
        self.kind = kind
        self.parent = parent
        self.attributes = Self.sortedByName(attributes)
        self.managedCollections = managedCollections
    }

    /// `attributes.sorted { $0.name < $1.name }`, without the copy when they are sorted already
    /// (as every caller on the apply's hot path passes them): a stable sort leaves those as they are.
    static func sortedByName(_ attributes: [Attribute]) -> [Attribute] {
        var index = 1
        while index < attributes.count {
            if attributes[index].name < attributes[index - 1].name { return attributes.sorted { $0.name < $1.name } }
            index += 1
        }
        return attributes
    }

    public subscript(name: String) -> Value {
        // Attributes are few (at most ~15) and sorted: a linear scan beats hashing here.
        for attribute in attributes where attribute.name == name { return attribute.value }
        return .null
    }
}

extension Resource {
    /// The collection an address belongs to: the address without its last name (`tenant/acme/member`).
    public static func collection(of address: String) -> Substring {
        guard let slash = address.utf8.lastIndex(of: UInt8(ascii: "/")) else { return address[...] }
        return address[..<slash]
    }
}
