import Audit
import Testing

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
private func decode(_ string: String) throws(JSONDecodingError) -> JSONValue {
    try CanonicalJSON.decode(Array(string.utf8))
}

@Suite("RFC 8785 encoding")
struct CanonicalEncodingTests {
    /// RFC 8785 §3.2.3: member names sort by UTF-16 code units, so U+1F600 (D83D DE00)
    /// precedes U+FB33 even though its code point is larger.
    @Test func sortsKeysByUTF16CodeUnitsAsInRFC8785() throws {
        let input = #"""
            {
              "\u20ac": "Euro Sign",
              "\r": "Carriage Return",
              "\ufb33": "Hebrew Letter Dalet With Dagesh",
              "1": "One",
              "\ud83d\ude00": "Emoji: Grinning Face",
              "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"
            }
            """#
        let value = try decode(input)
        guard case .object(let object) = value else {
            Issue.record("not an object")
            return
        }
        #expect(object.keys == ["\r", "1", "\u{80}", "\u{F6}", "\u{20AC}", "\u{1F600}", "\u{FB33}"])
        let expected =
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\","
            + "\"\u{F6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20AC}\":\"Euro Sign\","
            + "\"\u{1F600}\":\"Emoji: Grinning Face\",\"\u{FB33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        #expect(text(CanonicalJSON.encode(value)) == expected)

        // Built in Swift, in another order, the same bytes come out.
        let built: JSONValue = [
            "\u{FB33}": "Hebrew Letter Dalet With Dagesh", "\u{1F600}": "Emoji: Grinning Face",
            "\u{20AC}": "Euro Sign", "\u{F6}": "Latin Small Letter O With Diaeresis", "\u{80}": "Control",
            "1": "One", "\r": "Carriage Return",
        ]
        #expect(text(CanonicalJSON.encode(built)) == expected)
        // Swift's String order would put U+FB33 before U+1F600: the pitfall this guards against.
        #expect("\u{FB33}" < "\u{1F600}")
    }

    /// RFC 8785 §3.2.2 sample, without its floating-point "numbers" member (entries hold none).
    @Test func escapesStringsAsInRFC8785() throws {
        let input = #"""
            {
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }
            """#
        let expected = #"{"literals":[null,true,false],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        #expect(text(CanonicalJSON.encode(try decode(input))) == expected)
    }

    @Test(arguments: [
        ("\u{0}", #""\u0000""#),
        ("\u{1}", #""\u0001""#),
        ("\u{8}", #""\b""#),
        ("\t", #""\t""#),
        ("\n", #""\n""#),
        ("\u{B}", #""\u000b""#),
        ("\u{C}", #""\f""#),
        ("\r", #""\r""#),
        ("\u{1F}", #""\u001f""#),
        ("\"", #""\"""#),
        ("\\", #""\\""#),
        ("/", #""/""#),
        ("\u{7F}", "\"\u{7F}\""),
        ("\u{2028}\u{2029}", "\"\u{2028}\u{2029}\""),
        ("é €", "\"é €\""),
        ("e\u{301}", "\"e\u{301}\""),
        ("😀", "\"😀\""),
    ])
    func escapesOnlyWhatRFC8785Escapes(input: String, expected: String) {
        #expect(text(CanonicalJSON.encode(.string(input))) == expected)
    }

    @Test(arguments: [
        (Int64(0), "0"), (56, "56"), (-1, "-1"), (9_007_199_254_740_991, "9007199254740991"),
        (Int64.max, "9223372036854775807"), (Int64.min, "-9223372036854775808"),
    ])
    func printsIntegersAsPlainDecimal(value: Int64, expected: String) throws {
        #expect(text(CanonicalJSON.encode(.int(value))) == expected)
        #expect(try decode(expected) == .int(value))
    }

    @Test func writesNoWhitespaceAndKeepsArrayOrder() {
        let value: JSONValue = ["b": [3, 1, 2], "a": ["z": nil as JSONValue? ?? .null, "y": false], "c": []]
        #expect(text(CanonicalJSON.encode(value)) == #"{"a":{"y":false,"z":null},"b":[3,1,2],"c":[]}"#)
    }
}

@Suite("strict decoding")
struct CanonicalDecodingTests {
    @Test(arguments: [
        #"{"a":[1,-2,{"b":null}],"c":"\u0000é😀","d":true}"#,
        #"[]"#, #"{}"#, #""""#, "0", "-9223372036854775808", "null",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ])
    func canonicalTextRoundTrips(input: String) throws {
        let value = try decode(input)
        #expect(text(CanonicalJSON.encode(value)) == input)
        #expect(try CanonicalJSON.decode(CanonicalJSON.encode(value)) == value)
    }

    @Test func valuesRoundTripThroughEncoding() throws {
        let values: [JSONValue] = [
            .null, true, 0, -42, "", "tab\there \u{2028} \u{1}",
            ["nested": ["deeper": [[], [:], [1, "two", nil as JSONValue? ?? .null]]]],
            ["e\u{301}": 1, "\u{E9}": 2],
        ]
        for value in values {
            #expect(try CanonicalJSON.decode(CanonicalJSON.encode(value)) == value)
        }
    }

    @Test func acceptsInsignificantWhitespaceAndEscapedSolidus() throws {
        #expect(try decode(" \t\r\n{ \"a\" : [ 1 , 2 ] } \n") == ["a": [1, 2]])
        #expect(try decode(#""\/\u00e9\uD83D\uDE00""#) == "/é😀")
    }

    @Test(arguments: [
        ("{}x", JSONDecodingError.Reason.trailingData),
        ("1 2", .trailingData),
        ("{} {}", .trailingData),
        ("", .unexpectedEnd),
        ("   ", .unexpectedEnd),
        ("[1,2", .unexpectedEnd),
        (#"{"a":1"#, .unexpectedEnd),
        (#""abc"#, .unexpectedEnd),
        ("[1,]", .unexpectedByte(UInt8(ascii: "]"))),
        (#"{"a"1}"#, .unexpectedByte(UInt8(ascii: "1"))),
        (#"{a:1}"#, .unexpectedByte(UInt8(ascii: "a"))),
        ("[1;2]", .unexpectedByte(UInt8(ascii: ";"))),
        ("tru", .unexpectedEnd),
        ("nul1", .unexpectedByte(UInt8(ascii: "1"))),
        ("NaN", .unexpectedByte(UInt8(ascii: "N"))),
        ("\u{FEFF}{}", .unexpectedByte(0xEF)),
        (#"{"a":1,"a":2}"#, .duplicateKey("a")),
        (#"{"b":{"x":1,"y":2,"x":3}}"#, .duplicateKey("x")),
        (#"{"\u00e9":1,"é":2}"#, .duplicateKey("é")),
        (#""\ud800""#, .loneSurrogate),
        (#""\udc00""#, .loneSurrogate),
        (#""\ud83d\u0041""#, .loneSurrogate),
        (#""\ud83dx""#, .loneSurrogate),
        (#""\ude00\ud83d""#, .loneSurrogate),
        (#""\x""#, .invalidEscape),
        (#""\u12G4""#, .invalidEscape),
        ("\"a\u{1}b\"", .controlCharacterInString),
        ("\"a\nb\"", .controlCharacterInString),
        ("1.5", .nonIntegerNumber),
        ("1e3", .nonIntegerNumber),
        ("-0.0", .nonIntegerNumber),
        ("01", .invalidNumber),
        ("-", .unexpectedEnd),
        ("-x", .invalidNumber),
        ("+1", .unexpectedByte(UInt8(ascii: "+"))),
        ("9223372036854775808", .integerOutOfRange),
        ("-9223372036854775809", .integerOutOfRange),
        ("123456789012345678901234567890", .integerOutOfRange),
    ])
    func rejects(input: String, reason: JSONDecodingError.Reason) {
        do {
            let value = try decode(input)
            Issue.record("accepted \(input) as \(value)")
        } catch {
            #expect(error.reason == reason, "\(input): \(error)")
        }
    }

    @Test(
        arguments: [
            [0x22, 0xFF, 0x22],  // 0xFF never appears in UTF-8
            [0x22, 0xC0, 0xAF, 0x22],  // overlong "/"
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // UTF-8-encoded surrogate U+D800
            [0x22, 0xE2, 0x82, 0x22],  // truncated "€"
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
            [0x7B, 0x22, 0x80, 0x22, 0x3A, 0x31, 0x7D],  // bad key
        ] as [[UInt8]])
    func rejectsInvalidUTF8(bytes: [UInt8]) {
        #expect(throws: JSONDecodingError.self) { try CanonicalJSON.decode(bytes) }
        do {
            _ = try CanonicalJSON.decode(bytes)
        } catch {
            #expect(error.reason == .invalidUTF8)
        }
    }

    @Test func limitsNestingToSixtyFourLevels() throws {
        let limit = CanonicalJSON.maximumDepth
        #expect(limit == 64)
        let deepest = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        #expect(throws: Never.self) { try decode(deepest) }
        let objects = String(repeating: #"{"a":"#, count: limit) + "1" + String(repeating: "}", count: limit)
        #expect(throws: Never.self) { try decode(objects) }

        for tooDeep in [
            String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1),
            String(repeating: #"{"a":"#, count: limit + 1) + "1" + String(repeating: "}", count: limit + 1),
            String(repeating: "[", count: 100_000),  // hostile: no stack overflow, just an error
        ] {
            do {
                _ = try decode(tooDeep)
                Issue.record("accepted \(tooDeep.count) bytes of nesting")
            } catch {
                #expect(error.reason == .tooDeep(limit: limit))
            }
        }
    }

    @Test func reportsTheByteOffset() {
        do {
            _ = try decode(#"{"a":[1,2,x]}"#)
            Issue.record("accepted")
        } catch {
            #expect(error.offset == 10)
            #expect(error.description == "byte 10: unexpected character 'x'")
        }
    }

    @Test func stringsCompareByExactScalarsNotCanonicalEquivalence() throws {
        #expect(JSONValue.string("\u{E9}") != JSONValue.string("e\u{301}"))
        #expect(Set<JSONValue>(["\u{E9}", "e\u{301}"]).count == 2)
        // Both spellings are distinct keys in JSON, so this object is not a duplicate-key error.
        let value = try decode("{\"\u{E9}\":1,\"e\u{301}\":2}")
        guard case .object(let object) = value else {
            Issue.record("not an object")
            return
        }
        #expect(object.count == 2)
        #expect(object["\u{E9}"] == .int(1))
        #expect(object["e\u{301}"] == .int(2))
    }

    @Test func objectsAreEqualRegardlessOfInsertionOrder() {
        var a = JSONObject()
        a["x"] = 1
        a["y"] = 2
        var b = JSONObject()
        b["y"] = 2
        b["x"] = 1
        #expect(a == b)
        b["x"] = nil
        #expect(b.keys == ["y"])
    }

    /// A deterministic mutation loop over a real entry: decoding never traps, and whatever is
    /// accepted re-encodes to a text that decodes to the same value.
    @Test func survivesMutatedInput() throws {
        let seed = Array(
            #"{"action":"update","after":{"a":[1,"\u00e9\ud83d\ude00",null],"b":true},"seq":9223372036854775807}"#.utf8)
        let alphabet = Array(#"{}[]",:\u0123456789-+.eEtrufalsn "#.utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xED, 0xFF]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int(truncatingIfNeeded: state >> 1)
        }
        var accepted = 0
        for _ in 0..<3000 {
            var bytes = seed
            for _ in 0..<(1 + next() % 4) {
                let position = next() % (bytes.count + 1)
                switch next() % 3 {
                case 0 where position < bytes.count: bytes[position] = alphabet[next() % alphabet.count]
                case 1 where position < bytes.count: bytes.remove(at: position)
                default: bytes.insert(alphabet[next() % alphabet.count], at: position)
                }
            }
            if let value = try? CanonicalJSON.decode(bytes) {
                accepted += 1
                #expect(try CanonicalJSON.decode(CanonicalJSON.encode(value)) == value)
            }
        }
        #expect(accepted < 3000)
    }
}
