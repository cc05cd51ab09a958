import Crypto
import Testing

@Suite("Hex")
struct HexTests {
    static let knownAnswers: [([UInt8], String)] = [
        ([], ""),
        ([0x00], "00"),
        ([0x0f, 0xf0], "0ff0"),
        ([0xde, 0xad, 0xbe, 0xef], "deadbeef"),
        (Array(0...255), (0...255).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()),
    ]

    @Test(arguments: knownAnswers)
    func encodeAndDecode(bytes: [UInt8], text: String) {
        #expect(Hex.encode(bytes) == text)
        #expect(Hex.decode(text) == bytes)
    }

    @Test func decodeAcceptsUppercase() {
        #expect(Hex.decode("DEADbeef") == [0xde, 0xad, 0xbe, 0xef])
    }

    @Test(arguments: ["0", "abc", "zz", "0g", " 00", "00 ", "é0"])
    func decodeRejectsNonHex(_ text: String) {
        #expect(Hex.decode(text) == nil)
    }
}

@Suite("Base62")
struct Base62Tests {
    /// Known answers: the bytes as a big-endian integer in base 62 (alphabet 0-9A-Za-z),
    /// with one "0" per leading zero byte.
    static let knownAnswers: [([UInt8], String)] = [
        ([], ""),
        ([0x00], "0"),
        ([0x00, 0x00, 0x01], "001"),
        ([61], "z"),
        ([62], "10"),
        ([0xff], "47"),
        ([0x01, 0x00], "48"),
        (utf8("Hello, World!"), "1wJfrzvdbtXUOlUjUf"),
        ([UInt8](repeating: 0xff, count: 32), "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1"),
        (Array(0..<32), "03aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf"),
    ]

    @Test(arguments: knownAnswers)
    func encodeAndDecode(bytes: [UInt8], text: String) {
        #expect(Base62.encode(bytes) == text)
        #expect(Base62.decode(text) == bytes)
    }

    @Test func roundTripsRandomKeyMaterial() throws {
        for count in [1, 16, 32, 33] {
            var material = try SecureRandom.bytes(count: count)
            material[0] = 0  // exercise the leading-zero rule too
            let text = Base62.encode(material)
            #expect(
                text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) })
            #expect(Base62.decode(text) == material)
        }
    }

    @Test(arguments: ["abc-", "a b", "+", "ü"])
    func decodeRejectsCharactersOutsideTheAlphabet(_ text: String) {
        #expect(Base62.decode(text) == nil)
    }
}
