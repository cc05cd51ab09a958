import Audit
import Reconciler
import Spec

/// What the value of an option or argument must be. The parser checks every value against its
/// type before the command runs, so a bad value is a usage error (exit 64) before any work:
/// no plan is printed, no secret or key is read, no file is touched.
enum ValueType: Sendable, Equatable {
    /// Any text except the empty string (an empty path, actor or origin is always a slip).
    case text
    /// A whole number (decimal digits, optionally a leading `-`) from `min` to `max`.
    case integer(min: Int, max: Int = Int.max)
    /// `<digits><unit>` with unit s, m or h, at most `maxSeconds`.
    case duration(maxSeconds: Int64)
    /// A UTC date (`2026-11-01`) or RFC 3339 time (`2026-11-01T12:00:00Z`).
    case utcTime
    /// A `--target`-style address pattern that can match something.
    case addressPattern
    /// A size above zero: a whole number of bytes or a number with a unit (`800MB`, `1GiB`).
    case byteSize

    /// Why `text` is not a value of this type (`expected a whole number, 0 or more`), or nil.
    func problem(with text: String) -> String? {
        switch self {
        case .text:
            return text.isEmpty ? "expected a value, not an empty string" : nil
        case .integer(let min, let max):
            guard let number = Self.integer(text), number >= min, number <= max else { return "expected \(expectation)" }
            return nil
        case .duration:
            return Self.duration(text, type: self) == nil ? "expected \(expectation)" : nil
        case .utcTime:
            return Self.utcTime(text) == nil ? "expected \(expectation)" : nil
        case .addressPattern:
            return AddressPattern.problem(with: text)
        case .byteSize:
            return Self.byteSize(text) == nil ? "expected \(expectation)" : nil
        }
    }

    /// What a value looks like, for messages.
    var expectation: String {
        switch self {
        case .text: "a value"
        case .integer(let min, let max) where max == Int.max: "a whole number, \(min) or more"
        case .integer(let min, let max): "a whole number from \(min) to \(max)"
        case .duration(let maxSeconds): "a duration such as 30s or 5m (a whole number and s, m or h), at most \(Spec.Duration(seconds: maxSeconds))"
        case .utcTime: "a UTC date or time such as 2026-11-01 or 2026-11-01T12:00:00Z"
        case .addressPattern: "an address pattern such as 'tenant/acme/**'"
        case .byteSize: "a size such as 1GiB or 800MB (a whole number of bytes, or one with KiB, MiB, GiB, KB, MB or GB)"
        }
    }

    /// A value that passes the check (for the `help:` line of a usage error, and tests).
    var example: String {
        switch self {
        case .text: "x"
        case .integer(let min, let max): String(Swift.min(Swift.max(min, 10), max))
        case .duration: "30s"
        case .utcTime: "2026-11-01"
        case .addressPattern: "tenant/acme/**"
        case .byteSize: "1GiB"
        }
    }

    // MARK: Converting checked values

    /// Decimal digits with an optional leading `-`: no `+`, spaces, `0x` or underscores.
    static func integer(_ text: String) -> Int? {
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy({ ("0"..."9").contains($0) }) else { return nil }
        return Int(text)
    }

    /// The size in bytes, above zero and within `Int`, or nil.
    static func byteSize(_ text: String) -> Int? {
        guard let size = ByteSize(parsing: text) ?? integer(text).map({ ByteSize(bytes: Int64($0)) }), size.bytes > 0,
            size.bytes <= Int64(Int.max)
        else { return nil }
        return Int(size.bytes)
    }

    static func duration(_ text: String, type: ValueType) -> Spec.Duration? {
        guard case .duration(let maxSeconds) = type, let last = text.last, "smh".contains(last),
            let duration = Spec.Duration(parsing: text), duration.seconds <= maxSeconds
        else { return nil }
        return duration
    }

    /// The time in the form audit entries record (`2026-11-01` becomes `2026-11-01T00:00:00Z`), or nil.
    static func utcTime(_ text: String) -> String? {
        if text.count == 10, text.split(separator: "-").count == 3, AuditTime.isValid(text + "T00:00:00Z") { return text + "T00:00:00Z" }
        return AuditTime.isValid(text) ? text : nil
    }
}

/// A rule about which options go together, checked after the whole command line is read.
enum OptionConstraint: Sendable, Equatable {
    /// `--option` means something only together with `--other` (`--checkpoint-key` signs what
    /// `--checkpoint-out` writes).
    case requires(_ option: String, _ other: String)
    /// At most one of these options may be given.
    case exclusive([String])

    /// The option names the constraint mentions (for checking the description).
    var names: [String] {
        switch self {
        case .requires(let option, let other): [option, other]
        case .exclusive(let names): names
        }
    }
}
