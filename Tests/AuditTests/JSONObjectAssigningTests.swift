import Testing

@testable import Audit

/// `JSONObject(assigning:)` takes keys in increasing order as they are (an apply's attribute
/// names); these pin it to setting each member in turn, which it replaced on the apply's path.
@Suite("JSON object from pairs")
struct JSONObjectAssigningTests {
    /// Keys that sort differently by bytes, by scalars and by UTF-16 code units, prefixes, and repeats.
    static let keys = [
        "", "a", "b", "ab", "a\u{0}", "A", "Z", "_", "~", "\u{7F}", "é", "e\u{301}", "\u{2028}", "\u{E000}", "\u{FFFF}", "🦆", "\u{10000}",
        "quotas.seats", "quotas.storage", "role", "rotate", "name", "nämé",
    ]

    static func bySubscript(_ pairs: [(String, JSONValue)]) -> JSONObject {
        var object = JSONObject()
        for (key, value) in pairs { object[key] = value }
        return object
    }

    @Test("the key order test is RFC 8785's, for every pair of keys")
    func strictlyPrecedesIsPrecedes() {
        for a in Self.keys {
            for b in Self.keys {
                #expect(JSONObject.strictlyPrecedes(a, b) == JSONObject.precedes(a, b), "\(a.unicodeScalars.map(\.value)) \(b.unicodeScalars.map(\.value))")
            }
        }
    }

    @Test("pairs in any order, sorted or not, with repeats, give the object that assigning them one by one gives")
    func assigningIsSettingInTurn() {
        var generator = SystemRandomNumberGenerator()
        let sorted = Self.keys.sorted(by: JSONObject.precedes)
        var cases: [[(String, JSONValue)]] = [[], [("a", .null)], sorted.enumerated().map { ($1, .int(Int64($0))) }]
        for round in 0..<200 {
            let count = Int.random(in: 0...8, using: &generator)
            var pairs = (0..<count).map { _ in (Self.keys.randomElement(using: &generator)!, JSONValue.int(Int64(round))) }
            if round.isMultiple(of: 2) { pairs.sort { JSONObject.precedes($0.0, $1.0) } }
            for index in pairs.indices { pairs[index].1 = .string("\(round)-\(index)") }
            cases.append(pairs)
        }
        for pairs in cases {
            let built = JSONObject(assigning: pairs)
            let expected = Self.bySubscript(pairs)
            #expect(built == expected)
            #expect(CanonicalJSON.encode(.object(built)) == CanonicalJSON.encode(.object(expected)))
        }
    }
}

/// `CanonicalJSON.writeString` copies runs between escapes as buffers; this pins it to RFC 8785's
/// rules written per scalar, independently of the writer.
@Suite("canonical string escapes")
struct CanonicalStringTests {
    static func reference(_ text: String) -> [UInt8] {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x08: out += "\\b"
            case 0x09: out += "\\t"
            case 0x0A: out += "\\n"
            case 0x0C: out += "\\f"
            case 0x0D: out += "\\r"
            case 0..<0x20: out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return Array((out + "\"").utf8)
    }

    @Test("every control, quote and backslash, at the start, the end and between runs, with non-ASCII around them")
    func escapes() {
        var texts = ["", "plain", "\"", "\\", "a\"b\\c", "\"\"", "🦆\u{0}é", String(repeating: "x", count: 100) + "\n"]
        for byte in 0..<0x20 {
            let control = String(UnicodeScalar(UInt8(byte)))
            texts += [control, "a" + control, control + "b", "ø" + control + control + "\u{2028}"]
        }
        for text in texts {
            #expect(CanonicalJSON.encode(.string(text)) == Self.reference(text), "\(Array(text.utf8))")
        }
    }
}
