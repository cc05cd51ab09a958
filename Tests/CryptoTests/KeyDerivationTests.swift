import Crypto
import Testing

@Suite("HKDF-SHA256 (RFC 5869)")
struct KeyDerivationTests {
    @Test func rfc5869TestCase1() throws {
        let okm = try KeyDerivation.hkdfSHA256(
            inputKey: [UInt8](repeating: 0x0b, count: 22),
            salt: bytes("000102030405060708090a0b0c"),
            info: bytes("f0f1f2f3f4f5f6f7f8f9"),
            outputByteCount: 42)
        #expect(
            hex(okm)
                == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    }

    @Test func rfc5869TestCase3EmptySaltAndInfo() throws {
        let okm = try KeyDerivation.hkdfSHA256(
            inputKey: [UInt8](repeating: 0x0b, count: 22), salt: [], info: [], outputByteCount: 42)
        #expect(
            hex(okm)
                == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    }

    @Test func emptyInputKeyIsAllowed() throws {
        // Value from Python `cryptography`'s HKDF.
        let okm = try KeyDerivation.hkdfSHA256(
            inputKey: [], salt: utf8("salt"), info: utf8("info"), outputByteCount: 32)
        #expect(hex(okm) == "7aac7b8120501c2c8e1ee50e6cde135361e99ceb9d8d406ac528b9e9175614c0")
    }

    @Test func differentInfoGivesIndependentKeys() throws {
        let secret = [UInt8](repeating: 0x42, count: 32)
        let a = try KeyDerivation.hkdfSHA256(inputKey: secret, salt: [], info: utf8("fingerprint"), outputByteCount: 32)
        let b = try KeyDerivation.hkdfSHA256(inputKey: secret, salt: [], info: utf8("encryption"), outputByteCount: 32)
        #expect(a != b)
    }

    @Test func longestOutputIs255Blocks() throws {
        let okm = try KeyDerivation.hkdfSHA256(inputKey: [1], salt: [], info: [], outputByteCount: 255 * 32)
        #expect(okm.count == 8160)
    }

    @Test(arguments: [0, -1, 255 * 32 + 1])
    func outputLengthOutOfRangeThrows(_ count: Int) {
        #expect(throws: CryptoError.self) {
            try KeyDerivation.hkdfSHA256(inputKey: [1], salt: [], info: [], outputByteCount: count)
        }
    }
}
