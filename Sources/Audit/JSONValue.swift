/// A JSON value as the audit log uses it: no floating-point numbers.
///
/// Numbers are `Int64` only. Audit entries never contain non-integer numbers (nor
/// `NaN`/infinities), which keeps the RFC 8785 encoding a plain decimal print and lets a
/// verifier in any language re-canonicalize an entry without ECMAScript number formatting.
///
/// Equality and hashing compare strings by their exact Unicode scalars, not by Swift's
/// canonical equivalence: `"é"` (U+00E9) and `"e\u{301}"` are different JSON strings with
/// different canonical bytes, so they are different values here. As a result two values are
/// equal exactly when ``CanonicalJSON/encode(_:)`` gives them the same bytes.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.string(let a), .string(let b)): a.utf8.elementsEqual(b.utf8)
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null:
            hasher.combine(0)
        case .bool(let value):
            hasher.combine(1)
            hasher.combine(value)
        case .int(let value):
            hasher.combine(2)
            hasher.combine(value)
        case .string(let value):
            hasher.combine(3)
            hashExactly(value, into: &hasher)
        case .array(let values):
            hasher.combine(4)
            hasher.combine(values)
        case .object(let object):
            hasher.combine(5)
            hasher.combine(object)
        }
    }
}

/// Hashes a string by its UTF-8 bytes (exact scalars), consistent with `utf8.elementsEqual`.
func hashExactly(_ string: String, into hasher: inout Hasher) {
    hasher.combine(string.utf8.count)
    for byte in string.utf8 { hasher.combine(byte) }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(literalMembers: elements))
    }
}

/// A JSON object: members kept sorted by key in RFC 8785 order (UTF-16 code units), keys unique.
///
/// The order is part of the value's identity only through the keys: two objects built in
/// different orders are equal. Keys are compared by exact Unicode scalars (see ``JSONValue``).
public struct JSONObject: Sendable, Hashable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    public struct Member: Sendable, Hashable {
        public var key: String
        public var value: JSONValue

        public init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }

        public static func == (lhs: Member, rhs: Member) -> Bool {
            lhs.key.utf8.elementsEqual(rhs.key.utf8) && lhs.value == rhs.value
        }

        public func hash(into hasher: inout Hasher) {
            hashExactly(key, into: &hasher)
            hasher.combine(value)
        }
    }

    /// The members, sorted by key in UTF-16 code unit order.
    public private(set) var members: [Member]

    public init() { members = [] }

    /// An object with the dictionary's members.
    public init(_ dictionary: [String: JSONValue]) {
        members = dictionary.map { Member(key: $0.key, value: $0.value) }
        members.sort { Self.precedes($0.key, $1.key) }
    }

    /// Traps on a repeated key, as a `Dictionary` literal does.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(literalMembers: elements)
    }

    init(literalMembers elements: [(String, JSONValue)]) {
        switch Self.sorted(elements) {
        case .success(let object): self = object
        case .failure(let duplicate): preconditionFailure("duplicate key '\(duplicate.key)' in JSON object literal")
        }
    }

    struct DuplicateKey: Error { var key: String }

    /// Sorts members by key; fails on the first key that occurs twice (exact scalar equality).
    static func sorted(_ elements: [(String, JSONValue)]) -> Result<JSONObject, DuplicateKey> {
        var object = JSONObject()
        object.members = elements.map { Member(key: $0.0, value: $0.1) }
        object.members.sort { precedes($0.key, $1.key) }
        for index in object.members.indices.dropFirst()
        where object.members[index - 1].key.utf16.elementsEqual(object.members[index].key.utf16) {
            return .failure(DuplicateKey(key: object.members[index].key))
        }
        return .success(object)
    }

    /// RFC 8785 key order: lexicographic over UTF-16 code units (not `String`'s `<`).
    public static func precedes(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf16.lexicographicallyPrecedes(rhs.utf16)
    }

    /// The object that setting each pair in turn (`object[key] = value`) builds from an empty
    /// one: the last value of a repeated key wins. Keys already in strictly increasing order (an
    /// apply's attribute names) are taken as they are, without a search per key.
    public init(assigning pairs: [(String, JSONValue)]) {
        var increasing = true
        var index = 1
        while increasing, index < pairs.count {
            increasing = Self.strictlyPrecedes(pairs[index - 1].0, pairs[index].0)
            index += 1
        }
        self.init()
        guard increasing else {
            for (key, value) in pairs { self[key] = value }
            return
        }
        members = pairs.map { Member(key: $0.0, value: $0.1) }
    }

    /// `precedes(lhs, rhs)`, decided on the UTF-8 bytes where the first difference is between two
    /// ASCII bytes (the common prefix is then whole code points, and an ASCII byte is its own
    /// UTF-16 code unit); otherwise on the UTF-16 code units.
    static func strictlyPrecedes(_ lhs: String, _ rhs: String) -> Bool {
        var left = lhs, right = rhs
        let decided: Bool? = left.withUTF8 { a in
            right.withUTF8 { b in
                let common = Swift.min(a.count, b.count)
                var index = 0
                while index < common, a[index] == b[index] { index += 1 }
                if index == common { return a.count < b.count }
                guard a[index] < 0x80, b[index] < 0x80 else { return nil }
                return a[index] < b[index]
            }
        }
        return decided ?? precedes(lhs, rhs)
    }

    /// Binary search: the index of `key`, or where it would be inserted.
    private func position(of key: String) -> (index: Int, found: Bool) {
        var low = 0
        var high = members.count
        while low < high {
            let middle = (low + high) / 2
            if Self.precedes(members[middle].key, key) {
                low = middle + 1
            } else {
                high = middle
            }
        }
        let found = low < members.count && members[low].key.utf16.elementsEqual(key.utf16)
        return (low, found)
    }

    /// The value for `key` (exact scalar match); setting `nil` removes the member.
    public subscript(key: String) -> JSONValue? {
        get {
            let (index, found) = position(of: key)
            return found ? members[index].value : nil
        }
        set {
            let (index, found) = position(of: key)
            switch (found, newValue) {
            case (true, let value?): members[index].value = value
            case (true, nil): members.remove(at: index)
            case (false, let value?): members.insert(Member(key: key, value: value), at: index)
            case (false, nil): break
            }
        }
    }

    public var keys: [String] { members.map(\.key) }

    public var startIndex: Int { members.startIndex }
    public var endIndex: Int { members.endIndex }
    public subscript(position: Int) -> Member { members[position] }
}
