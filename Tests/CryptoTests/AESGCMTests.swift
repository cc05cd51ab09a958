import Crypto
import Testing

@Suite("AES-256-GCM")
struct AESGCMTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var key: [UInt8]
        var nonce: [UInt8]
        var plaintext: [UInt8]
        var aad: [UInt8]
        var ciphertext: String
        var tag: String
        var testDescription: String { name }
    }

    /// Test cases 13, 14 and 16 of McGrew & Viega, "The Galois/Counter Mode of Operation"
    /// (the 256-bit-key vectors with a 96-bit IV).
    static let vectors: [Vector] = [
        Vector(
            name: "GCM spec test case 13 (empty plaintext)", key: [UInt8](repeating: 0, count: 32),
            nonce: [UInt8](repeating: 0, count: 12), plaintext: [], aad: [],
            ciphertext: "", tag: "530f8afbc74536b9a963b4f1c4cb738b"),
        Vector(
            name: "GCM spec test case 14", key: [UInt8](repeating: 0, count: 32),
            nonce: [UInt8](repeating: 0, count: 12), plaintext: [UInt8](repeating: 0, count: 16), aad: [],
            ciphertext: "cea7403d4d606b6e074ec5d3baf39d18", tag: "d0d1c8a799996bf0265b98b5d48ab919"),
        Vector(
            name: "GCM spec test case 16 (with AAD)",
            key: bytes("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"),
            nonce: bytes("cafebabefacedbaddecaf888"),
            plaintext: bytes(
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                    + "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"),
            aad: bytes("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
            ciphertext: "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                + "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            tag: "76fc6ece0f4e1768cddf8853bb2d551b"),
    ]

    @Test(arguments: vectors)
    func sealMatchesPublishedVector(_ vector: Vector) throws {
        let sealed = try AESGCM.seal(vector.plaintext, key: vector.key, authenticating: vector.aad, nonce: vector.nonce)
        #expect(hex(sealed) == hex(vector.nonce) + vector.ciphertext + vector.tag)
    }

    @Test(arguments: vectors)
    func openRecoversPublishedPlaintext(_ vector: Vector) throws {
        let sealed = vector.nonce + bytes(vector.ciphertext) + bytes(vector.tag)
        #expect(try AESGCM.open(sealed, key: vector.key, authenticating: vector.aad) == vector.plaintext)
    }

    static let key = [UInt8](repeating: 0x11, count: 32)
    static let secret = utf8("client_secret=s3cr3t")
    static let aad = utf8("tenants/acme/okta")

    @Test func roundTripWithRandomNonce() throws {
        let sealed = try AESGCM.seal(Self.secret, key: Self.key, authenticating: Self.aad)
        #expect(sealed.count == 12 + Self.secret.count + 16)
        #expect(try AESGCM.open(sealed, key: Self.key, authenticating: Self.aad) == Self.secret)
    }

    @Test func sealingTwiceUsesFreshNonces() throws {
        let first = try AESGCM.seal(Self.secret, key: Self.key, authenticating: Self.aad)
        let second = try AESGCM.seal(Self.secret, key: Self.key, authenticating: Self.aad)
        #expect(first.prefix(12) != second.prefix(12))
        #expect(first != second)
    }

    @Test func wrongKeyFails() throws {
        let sealed = try AESGCM.seal(Self.secret, key: Self.key, authenticating: Self.aad)
        var wrongKey = Self.key
        wrongKey[31] ^= 0x80
        #expect(throws: CryptoError.self) { try AESGCM.open(sealed, key: wrongKey, authenticating: Self.aad) }
    }

    @Test func wrongAssociatedDataFails() throws {
        let sealed = try AESGCM.seal(Self.secret, key: Self.key, authenticating: Self.aad)
        #expect(throws: CryptoError.self) {
            try AESGCM.open(sealed, key: Self.key, authenticating: utf8("tenants/evil/okta"))
        }
        #expect(throws: CryptoError.self) { try AESGCM.open(sealed, key: Self.key, authenticating: []) }
    }

    /// Flipping one bit anywhere (nonce, ciphertext, tag) must make `open` fail.
    @Test(arguments: [0, 11, 12, 12 + 19, 12 + 20, 12 + 20 + 15])
    func flippedByteFails(at index: Int) throws {
        var sealed = try AESGCM.seal(Self.secret, key: Self.key, authenticating: Self.aad)
        sealed[index] ^= 0x01
        let error = #expect(throws: CryptoError.self) {
            try AESGCM.open(sealed, key: Self.key, authenticating: Self.aad)
        }
        #expect(error?.details.contains("authentication failed") == true)
    }

    @Test func truncatedBoxFails() throws {
        let sealed = try AESGCM.seal(Self.secret, key: Self.key, authenticating: Self.aad)
        #expect(throws: CryptoError.self) {
            try AESGCM.open(Array(sealed.dropLast()), key: Self.key, authenticating: Self.aad)
        }
        #expect(throws: CryptoError.self) {
            try AESGCM.open(Array(sealed.prefix(27)), key: Self.key, authenticating: Self.aad)
        }
    }

    @Test func keyAndNonceLengthsAreChecked() {
        #expect(throws: CryptoError.self) {
            try AESGCM.seal([1], key: [UInt8](repeating: 0, count: 16), authenticating: [])
        }
        #expect(throws: CryptoError.self) {
            try AESGCM.seal([1], key: Self.key, authenticating: [], nonce: [UInt8](repeating: 0, count: 16))
        }
        #expect(throws: CryptoError.self) {
            try AESGCM.open([UInt8](repeating: 0, count: 40), key: [UInt8](repeating: 0, count: 31), authenticating: [])
        }
    }
}

@Suite("SecureRandom")
struct SecureRandomTests {
    @Test(arguments: [0, 1, 32, 1000])
    func returnsRequestedCount(_ count: Int) throws {
        #expect(try SecureRandom.bytes(count: count).count == count)
    }

    @Test func successiveCallsDiffer() throws {
        #expect(try SecureRandom.bytes(count: 32) != SecureRandom.bytes(count: 32))
    }

    @Test func negativeCountThrows() {
        #expect(throws: CryptoError.self) { try SecureRandom.bytes(count: -1) }
    }
}
