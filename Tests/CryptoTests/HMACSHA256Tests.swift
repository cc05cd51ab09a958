import Crypto
import Testing

@Suite("HMAC-SHA256 (RFC 4231 vectors)")
struct HMACSHA256Tests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var testCase: Int
        var key: [UInt8]
        var data: [UInt8]
        var mac: String
        var testDescription: String { "RFC 4231 test case \(testCase)" }
    }

    static let vectors: [Vector] = [
        Vector(
            testCase: 1, key: [UInt8](repeating: 0x0b, count: 20), data: utf8("Hi There"),
            mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        Vector(
            testCase: 2, key: utf8("Jefe"), data: utf8("what do ya want for nothing?"),
            mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        Vector(
            testCase: 3, key: [UInt8](repeating: 0xaa, count: 20), data: [UInt8](repeating: 0xdd, count: 50),
            mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        Vector(
            testCase: 4, key: bytes("0102030405060708090a0b0c0d0e0f10111213141516171819"),
            data: [UInt8](repeating: 0xcd, count: 50),
            mac: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        Vector(
            testCase: 6, key: [UInt8](repeating: 0xaa, count: 131),
            data: utf8("Test Using Larger Than Block-Size Key - Hash Key First"),
            mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        Vector(
            testCase: 7, key: [UInt8](repeating: 0xaa, count: 131),
            data: utf8(
                "This is a test using a larger than block-size key and a larger than block-size data. "
                    + "The key needs to be hashed before being used by the HMAC algorithm."),
            mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    @Test(arguments: vectors)
    func authenticationCodeMatchesRFC(_ vector: Vector) {
        #expect(hex(HMACSHA256.authenticationCode(for: vector.data, key: vector.key)) == vector.mac)
    }

    @Test("a reused context gives the RFC's codes, message after message")
    func reusedContextMatchesRFC() {
        for vector in Self.vectors {
            let context = HMACSHA256Context(key: vector.key)
            for _ in 0..<3 {
                var code = [UInt8](repeating: 0, count: 32)
                vector.data.withUnsafeBytes { message in code.withUnsafeMutableBytes { context.authenticate(message, into: $0) } }
                #expect(hex(code) == vector.mac)
            }
        }
    }

    @Test(arguments: vectors)
    func publishedCodeIsValid(_ vector: Vector) {
        #expect(HMACSHA256.isValid(bytes(vector.mac), for: vector.data, key: vector.key))
    }

    @Test func emptyKeyAndMessageAreAllowed() {
        // HMAC-SHA256("", "") from Python's hmac module.
        #expect(
            hex(HMACSHA256.authenticationCode(for: [], key: []))
                == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    static let jefe = vectors[1]

    @Test(arguments: [0, 15, 31])
    func codeWithAFlippedBitIsRejected(byte index: Int) {
        var code = bytes(Self.jefe.mac)
        code[index] ^= 0x01
        #expect(!HMACSHA256.isValid(code, for: Self.jefe.data, key: Self.jefe.key))
    }

    @Test func truncatedOrEmptyCodeIsRejected() {
        let code = bytes(Self.jefe.mac)
        #expect(!HMACSHA256.isValid(Array(code.prefix(16)), for: Self.jefe.data, key: Self.jefe.key))
        #expect(!HMACSHA256.isValid([], for: Self.jefe.data, key: Self.jefe.key))
        #expect(!HMACSHA256.isValid(code + [0], for: Self.jefe.data, key: Self.jefe.key))
    }

    @Test func codeIsBoundToMessageAndKey() {
        let code = bytes(Self.jefe.mac)
        #expect(!HMACSHA256.isValid(code, for: Self.jefe.data + [0x21], key: Self.jefe.key))
        #expect(!HMACSHA256.isValid(code, for: Self.jefe.data, key: utf8("jefe")))
    }
}
