/// One audit log entry: a single change applied to one address.
///
/// Entries hold no secrets: callers mask secret values (before/after show only that a secret
/// changed) before building an entry. The stored form is ``canonicalBytes()``, an RFC 8785
/// JSON object described field by field in docs/audit-chain.md.
public struct AuditEntry: Sendable, Equatable {
    /// The format version new entries are written in (`v`): 2, with personal values replaced by
    /// tokens (``PersonalData``, docs/audit-chain.md section 8). Version 1 entries (written before,
    /// with personal values in them) are read and verified as they are.
    public static let formatVersion: Int64 = 2

    /// The entry's format version (`v`): 1 or 2. An entry built in Swift is version 1 until
    /// ``Pseudonymizer`` replaces its personal values.
    public var version: Int64 = 1

    /// 1-based position in the log (`seq`).
    public var sequence: Int64
    /// RFC 3339 UTC, second precision: `2026-11-22T19:00:00Z` (see ``AuditTime``).
    public var time: String
    /// Who applied the change (e.g. a user name or CI identity).
    public var actor: String
    /// Where the configuration came from (e.g. a git commit).
    public var source: String
    /// The plan this change belongs to (`planId`).
    public var planID: String
    /// `create`, `update`, `delete`, `adopt`, …
    public var action: String
    /// The resource address.
    public var address: String
    /// The value before the change; `nil` when absent (a create). Encoded as JSON `null`, so a
    /// `.null` value cannot be told apart from `nil`: the initializer stores it as `nil`.
    public var before: JSONValue?
    /// The value after the change; `nil` when absent (a delete). Same `null` rule as `before`.
    public var after: JSONValue?
    /// Optional explanation; the `reason` member is omitted when `nil`.
    public var reason: String?

    public init(
        sequence: Int64, time: String, actor: String, source: String, planID: String, action: String,
        address: String, before: JSONValue?, after: JSONValue?, reason: String? = nil
    ) {
        self.sequence = sequence
        self.time = time
        self.actor = actor
        self.source = source
        self.planID = planID
        self.action = action
        self.address = address
        self.before = before == .null ? nil : before
        self.after = after == .null ? nil : after
        self.reason = reason
    }

    /// The entry as a JSON object (before canonical encoding).
    public var jsonValue: JSONValue {
        var object = JSONObject()
        object["action"] = .string(action)
        object["actor"] = .string(actor)
        object["address"] = .string(address)
        object["after"] = after ?? .null
        object["before"] = before ?? .null
        object["planId"] = .string(planID)
        if let reason { object["reason"] = .string(reason) }
        object["seq"] = .int(sequence)
        object["source"] = .string(source)
        object["time"] = .string(time)
        object["v"] = .int(version)
        return .object(object)
    }

    /// The RFC 8785 encoding of
    /// `{"action","actor","address","after","before","planId","reason"?,"seq","source","time","v":1}`.
    ///
    /// Written member by member in that (RFC 8785) order, straight into the output: the same bytes
    /// as `CanonicalJSON.encode(jsonValue)` (the tests compare the two), without building the object.
    public func canonicalBytes() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        Self.key(#"{"action":"#, &output)
        CanonicalJSON.writeString(action, to: &output)
        Self.key(#","actor":"#, &output)
        CanonicalJSON.writeString(actor, to: &output)
        Self.key(#","address":"#, &output)
        CanonicalJSON.writeString(address, to: &output)
        Self.key(#","after":"#, &output)
        CanonicalJSON.write(after ?? .null, to: &output)
        Self.key(#","before":"#, &output)
        CanonicalJSON.write(before ?? .null, to: &output)
        Self.key(#","planId":"#, &output)
        CanonicalJSON.writeString(planID, to: &output)
        if let reason {
            Self.key(#","reason":"#, &output)
            CanonicalJSON.writeString(reason, to: &output)
        }
        Self.key(#","seq":"#, &output)
        CanonicalJSON.writeInteger(sequence, to: &output)
        Self.key(#","source":"#, &output)
        CanonicalJSON.writeString(source, to: &output)
        Self.key(#","time":"#, &output)
        CanonicalJSON.writeString(time, to: &output)
        Self.key(#","v":"#, &output)
        CanonicalJSON.writeInteger(version, to: &output)
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// Appends the punctuation and quoted key before a member's value.
    private static func key(_ text: StaticString, _ output: inout [UInt8]) {
        text.withUTF8Buffer { output.append(contentsOf: $0) }
    }

    /// Reads an entry back from its stored bytes, which must be exactly the canonical encoding
    /// of a well-formed entry: valid JSON, an object with exactly the documented fields of the
    /// documented types, `v` = 1 or 2 (with the rules of docs/audit-chain.md 8.3), `seq` ≥ 1, a valid `time`, and byte-for-byte canonical.
    public init(canonicalBytes bytes: [UInt8]) throws(AuditEntryError) {
        let value: JSONValue
        do {
            value = try CanonicalJSON.decode(bytes)
        } catch {
            throw AuditEntryError("entry is not valid JSON: \(error)")
        }
        guard case .object(let object) = value else { throw AuditEntryError("entry is not a JSON object") }

        let known: Set<String> = [
            "action", "actor", "address", "after", "before", "planId", "reason", "seq", "source", "time", "v",
        ]
        for key in object.keys where !known.contains(key) || !key.unicodeScalars.allSatisfy(\.isASCII) {
            throw AuditEntryError("unknown field '\(key)'")
        }

        for required in known.subtracting(["reason"]).sorted() where object[required] == nil {
            throw AuditEntryError("missing field '\(required)'")
        }

        func field(_ name: String) throws(AuditEntryError) -> JSONValue {
            guard let value = object[name] else { throw AuditEntryError("missing field '\(name)'") }
            return value
        }
        func string(_ name: String) throws(AuditEntryError) -> String {
            guard case .string(let text) = try field(name) else {
                throw AuditEntryError("field '\(name)' must be a string")
            }
            return text
        }
        func integer(_ name: String) throws(AuditEntryError) -> Int64 {
            guard case .int(let number) = try field(name) else {
                throw AuditEntryError("field '\(name)' must be an integer")
            }
            return number
        }

        let version = try integer("v")
        guard version == 1 || version == 2 else { throw AuditEntryError("field 'v' must be 1 or 2") }
        let sequence = try integer("seq")
        guard sequence >= 1 else { throw AuditEntryError("field 'seq' must be at least 1") }
        let time = try string("time")
        guard AuditTime.isValid(time) else {
            throw AuditEntryError("field 'time' must be RFC 3339 UTC with second precision (YYYY-MM-DDTHH:MM:SSZ)")
        }
        var reason: String?
        if object["reason"] != nil { reason = try string("reason") }
        let before = try field("before")
        let after = try field("after")

        self.init(
            sequence: sequence, time: time, actor: try string("actor"), source: try string("source"),
            planID: try string("planId"), action: try string("action"), address: try string("address"),
            before: before, after: after, reason: reason)
        self.version = version
        if version == 2, let problem = personalDataProblem() { throw AuditEntryError(problem) }

        guard canonicalBytes() == bytes else { throw AuditEntryError("entry is not in canonical form (RFC 8785)") }
    }
}

/// Why stored bytes are not a well-formed audit entry.
public struct AuditEntryError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// The entry time format: RFC 3339 in UTC with second precision, `YYYY-MM-DDTHH:MM:SSZ`,
/// years 0001 through 9999, no leap second (`:60`).
public enum AuditTime {
    /// Formats seconds since 1970-01-01T00:00:00Z; `nil` outside years 0001…9999.
    public static func string(fromUnixSeconds seconds: Int64) -> String? {
        // -62135596800 = 0001-01-01T00:00:00Z, 253402300799 = 9999-12-31T23:59:59Z.
        guard seconds >= -62_135_596_800, seconds <= 253_402_300_799 else { return nil }
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
            + "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))Z"
    }

    /// Whether `text` is exactly `YYYY-MM-DDTHH:MM:SSZ` naming a real UTC calendar second.
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 20 else { return false }
        let separators: [(Int, Character)] = [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "Z")]
        for (position, character) in separators where bytes[position] != character.asciiValue {
            return false
        }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return false }
        guard year >= 1, (1...12).contains(month), hour < 24, minute < 60, second < 60 else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return day >= 1 && day <= monthDays[month - 1]
    }

    /// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    private static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
