/// A value with the place it was written.
public struct Located<Value: Sendable>: Sendable {
    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }
}

extension Located: Equatable where Value: Equatable {}

/// A duration such as `30s`, `15m`, `8h`, `30d` or `2w`, held in seconds.
public struct Duration: Hashable, Sendable, CustomStringConvertible {
    public var seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    static let units: [(suffix: Character, seconds: Int64)] = [
        ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800),
    ]

    /// Parses `<digits><unit>`; nil when the text is not of that form or overflows.
    public init?(parsing text: String) {
        guard let last = text.last, let unit = Self.units.first(where: { $0.suffix == last }) else { return nil }
        let digits = text.dropLast()
        guard !digits.isEmpty, digits.count <= 12, digits.allSatisfy(\.isASCIIDigit),
            let count = Int64(digits)
        else { return nil }
        let (product, overflow) = count.multipliedReportingOverflow(by: unit.seconds)
        guard !overflow else { return nil }
        seconds = product
    }

    /// The shortest exact spelling in days, hours, minutes or seconds: `90s`, `8h`, `30d` (`2w` reads as `14d`).
    public var description: String {
        for unit in Self.units.dropLast().reversed() where seconds != 0 && seconds % unit.seconds == 0 {
            return "\(seconds / unit.seconds)\(unit.suffix)"
        }
        return "\(seconds)s"
    }
}

/// A size such as `10GiB` or `500MB`, held in bytes.
public struct ByteSize: Hashable, Sendable, CustomStringConvertible {
    public var bytes: Int64

    public init(bytes: Int64) { self.bytes = bytes }

    static let units: [(suffix: String, factor: Int64)] = [
        ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
        ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000), ("B", 1),
    ]

    public init?(parsing text: String) {
        guard let unit = Self.units.first(where: { text.hasSuffix($0.suffix) }) else { return nil }
        let digits = text.dropLast(unit.suffix.count)
        guard !digits.isEmpty, digits.count <= 15, digits.allSatisfy(\.isASCIIDigit), let count = Int64(digits) else {
            return nil
        }
        let (product, overflow) = count.multipliedReportingOverflow(by: unit.factor)
        guard !overflow else { return nil }
        bytes = product
    }

    public var description: String {
        for unit in Self.units where bytes != 0 && bytes % unit.factor == 0 {
            return "\(bytes / unit.factor)\(unit.suffix)"
        }
        return "\(bytes)B"
    }
}

/// A rate such as `600/h`: a count per second, minute, hour or day.
public struct Rate: Hashable, Sendable, CustomStringConvertible {
    public var count: Int64
    public var per: Character

    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let unit = parts[1].first, parts[1].count == 1, "smhd".contains(unit),
            !parts[0].isEmpty, parts[0].count <= 12, parts[0].allSatisfy(\.isASCIIDigit), let count = Int64(parts[0]),
            count > 0
        else { return nil }
        self.count = count
        self.per = unit
    }

    public var description: String { "\(count)/\(per)" }
}

/// A quota: a limit, or `unlimited` (a value of its own, not a very large number).
public enum QuotaValue: Hashable, Sendable, CustomStringConvertible {
    case limit(Int64)
    case unlimited

    public func allows(_ count: Int) -> Bool {
        switch self {
        case .unlimited: true
        case .limit(let limit): Int64(count) <= limit
        }
    }

    public var description: String {
        switch self {
        case .unlimited: "unlimited"
        case .limit(let value): "\(value)"
        }
    }
}

/// The quota names orgctl knows, and whether each counts things or measures bytes.
public enum QuotaName: String, CaseIterable, Sendable {
    case seats, teams, apps, messagesPerMonth, storage, webhooks, apiKeys

    var isSize: Bool { self == .storage }
}

/// A calendar date written `YYYY-MM-DD`, kept as text (it sorts correctly as text).
public struct CalendarDate: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var text: String

    public init?(parsing text: String) {
        let utf8 = Array(text.utf8)
        guard utf8.count == 10, utf8[4] == UInt8(ascii: "-"), utf8[7] == UInt8(ascii: "-"),
            let year = Int(text.prefix(4)), let month = Int(text.dropFirst(5).prefix(2)),
            let day = Int(text.suffix(2)), year >= 1970, year <= 9999, (1...12).contains(month)
        else { return nil }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day), text.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (48...57).contains($0) }) else {
            return nil
        }
        self.text = text
    }

    public static func < (lhs: CalendarDate, rhs: CalendarDate) -> Bool { lhs.text < rhs.text }
    public var description: String { text }
}

/// Where a secret's value comes from. Configuration never holds a secret literal.
public enum SecretSource: Hashable, Sendable, CustomStringConvertible {
    /// An environment variable, read at plan/apply time.
    case environment(String)
    /// A file, as written (relative to the YAML file) and resolved to an absolute path.
    case file(written: String, path: String)

    public var description: String {
        switch self {
        case .environment(let name): "{env: \(name)}"
        case .file(let written, _): "{file: \(written)}"
        }
    }
}

public struct SecretReference: Sendable {
    public var source: SecretSource
    public var location: SourceLocation
}

extension Character {
    /// 0-9 only (`isNumber` also accepts other scripts' digits, and costs a Unicode property lookup).
    var isASCIIDigit: Bool {
        guard let ascii = asciiValue else { return false }
        return ascii >= 48 && ascii <= 57
    }
}
