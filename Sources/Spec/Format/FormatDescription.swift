/// The types of the one description of the configuration format (``SpecFormat``).
///
/// The description says what every document kind holds: each key, its type, whether it is
/// required, what leaving it out means, allowed values, a description and an example. The JSON
/// Schema (`orgctl schema`), `orgctl explain` and the field reference in docs/spec.md are
/// generated from it, and tests check it against what ``DocumentDecoder`` accepts.

/// One key of a mapping.
public struct FormatField: Sendable {
    public var name: String
    public var type: FormatType
    public var isRequired: Bool
    /// What the key means and the rules it follows, in sentences.
    public var summary: String
    /// What leaving the key out means (the default), when that is worth saying.
    public var absent: String?
    /// A YAML value for the key (flow or block style), shown by `explain` and the reference.
    public var example: String?

    public init(
        _ name: String, _ type: FormatType, required: Bool = false, _ summary: String, absent: String? = nil,
        example: String? = nil
    ) {
        self.name = name
        self.type = type
        self.isRequired = required
        self.summary = summary
        self.absent = absent
        self.example = example
    }
}

/// A mapping with fixed keys: a document, a section, or the value of a named entry.
public struct FormatObject: Sendable {
    /// How the object is named in types and headings: "Plan", "Webhook".
    public var title: String
    public var fields: [FormatField]
    /// Objects whose keys depend on one key's value (an SSO provider's `type`).
    public var variants: FormatVariants?

    public init(_ title: String, fields: [FormatField], variants: FormatVariants? = nil) {
        self.title = title
        self.fields = fields
        self.variants = variants
    }

    public func field(_ name: String) -> FormatField? { fields.first { $0.name == name } }

    /// The value of the variant key under which `name` applies (and is required), if it is a variant's key.
    public func variantCase(of name: String) -> String? {
        variants?.cases.first { $0.fields.contains(name) }?.value
    }

    /// A null value (`key:` with nothing after it) means an empty mapping, which is only valid
    /// when nothing in it is required.
    public var acceptsNull: Bool { variants == nil && !fields.contains(where: \.isRequired) }
}

/// `key`'s value selects which of the object's other keys apply; each case's keys are required
/// and the other cases' keys are errors.
public struct FormatVariants: Sendable {
    public struct Case: Sendable {
        public var value: String
        public var fields: [String]
    }

    public var key: String
    public var cases: [Case]
}

/// The shape of a text value.
public enum TextRule: Sendable, Equatable {
    /// Any scalar (`123` and `yes` are the strings "123" and "yes").
    case any
    /// Any scalar that is not empty or blank.
    case nonEmpty
    case slug
    /// A permission or event name: dot-separated lower-case words.
    case dottedName
    /// A permission or event pattern: a dotted name that may use `*`.
    case dottedPattern
    case email
    case domain
    case color
    case httpsURL
    case cidr
    /// With the accepted range in seconds.
    case duration(ClosedRange<Int64>?)
    case rate
    case date
    case environmentVariable
}

/// The type of a value.
public indirect enum FormatType: Sendable {
    case text(TextRule)
    /// `true` or `false`, unquoted.
    case boolean
    /// A whole number, unquoted.
    case integer(ClosedRange<Int64>)
    /// One of these strings.
    case oneOf([String])
    /// Exactly this string (`apiVersion`, `kind`).
    case constant(String)
    /// A list of distinct values; order does not matter.
    case list(FormatType, nonEmpty: Bool = false)
    /// A mapping keyed by names (identities).
    case map(key: TextRule, value: FormatType, nonEmpty: Bool = false)
    case object(FormatObject)
    /// `{env: NAME}` or `{file: path}`.
    case secretReference
    /// `{file: path}` or PEM text.
    case certificate
    /// A whole number or `unlimited`; for a size quota, a size or `unlimited`.
    case quota(isSize: Bool)
    /// Either of two shapes (a member: a role name, or `{role, expires}`).
    case either(FormatType, FormatType)

    public var object: FormatObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    /// The object a path continues into: through maps, lists and the object side of `either`.
    public var nestedObject: FormatObject? {
        switch self {
        case .object(let object): object
        case .map(_, let value, _), .list(let value, _): value.nestedObject
        case .either(let a, let b): a.nestedObject ?? b.nestedObject
        default: nil
        }
    }
}

/// A document kind: `kind: Platform` or `kind: Tenant`.
public struct FormatKind: Sendable {
    public var name: String
    public var summary: String
    public var object: FormatObject
    /// A complete document of this kind (valid together with the other kind's example).
    public var example: String
}

// MARK: - Names of types, for people

extension TextRule {
    public var displayName: String {
        switch self {
        case .any: "string"
        case .nonEmpty: "non-empty string"
        case .slug: "slug"
        case .dottedName: "dotted name"
        case .dottedPattern: "pattern"
        case .email: "e-mail"
        case .domain: "domain"
        case .color: "hex colour"
        case .httpsURL: "https URL"
        case .cidr: "CIDR block"
        case .duration(let range?): "duration \(Duration(seconds: range.lowerBound))–\(Duration(seconds: range.upperBound))"
        case .duration(nil): "duration"
        case .rate: "rate"
        case .date: "date"
        case .environmentVariable: "environment variable name"
        }
    }

    /// The rule in words, for a field whose type alone does not say it.
    public var rule: String? {
        switch self {
        case .any, .nonEmpty: nil
        case .slug: NamePattern.slug.rule
        case .dottedName: NamePattern.permission.rule
        case .dottedPattern: "use a dotted name in which '*' matches any run of characters, dots included (apps.*, *.read, *)"
        case .email: NamePattern.email.rule
        case .domain: NamePattern.domain.rule
        case .color: NamePattern.color.rule
        case .httpsURL: "write an absolute https:// URL to a host on the public internet, at most 2048 characters"
        case .cidr: "write an IPv4 or IPv6 block such as 203.0.113.0/24 or 2001:db8::/32, with zero host bits"
        case .duration: "write a whole number and one unit: s, m, h, d or w (30s, 15m, 8h, 30d, 2w)"
        case .rate: "write a positive whole number, '/', and one unit: s, m, h or d (600/h)"
        case .date: "write YYYY-MM-DD, a real calendar date"
        case .environmentVariable: NamePattern.environmentVariable.rule
        }
    }
}

extension FormatType {
    /// `list of slug`, `map: e-mail → Member`, `integer 0–10`, `active | trial | suspended`.
    public var displayName: String {
        switch self {
        case .text(let rule): rule.displayName
        case .boolean: "boolean"
        case .integer(let range): "integer \(range.lowerBound)–\(range.upperBound)"
        case .oneOf(let values): values.joined(separator: " | ")
        case .constant(let value): value
        case .list(let item, let nonEmpty): "\(nonEmpty ? "non-empty " : "")list of \(item.displayName)"
        case .map(let key, let value, _): "map: \(key.displayName) → \(value.displayName)"
        case .object(let object): object.title
        case .secretReference: "secret reference"
        case .certificate: "certificate"
        case .quota(let isSize): isSize ? "size | unlimited" : "integer | unlimited"
        case .either(let a, let b): "\(a.displayName) | \(b.displayName)"
        }
    }
}
