import Crypto
import Testing

@Suite("Ed25519 (RFC 8032 vectors)")
struct Ed25519Tests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var seed: String
        var publicKey: String
        var message: [UInt8]
        var signature: String
        var testDescription: String { name }
    }

    /// RFC 8032 section 7.1, TEST 1 and TEST 2.
    static let vectors: [Vector] = [
        Vector(
            name: "TEST 1 (empty message)",
            seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            message: [],
            signature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                + "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        Vector(
            name: "TEST 2 (one byte)",
            seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            message: [0x72],
            signature: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
                + "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ]

    @Test(arguments: vectors)
    func publicKeyFromSeed(_ vector: Vector) throws {
        let key = try Ed25519PrivateKey(seed: bytes(vector.seed))
        #expect(hex(key.publicKey.rawRepresentation) == vector.publicKey)
        #expect(hex(key.seed) == vector.seed)
    }

    @Test(arguments: vectors)
    func signatureIsTheRFCSignature(_ vector: Vector) throws {
        let key = try Ed25519PrivateKey(seed: bytes(vector.seed))
        #expect(hex(try key.signature(for: vector.message)) == vector.signature)
    }

    @Test(arguments: vectors)
    func rfcSignatureVerifies(_ vector: Vector) throws {
        let publicKey = try Ed25519PublicKey(rawRepresentation: bytes(vector.publicKey))
        #expect(publicKey.isValidSignature(bytes(vector.signature), for: vector.message))
    }

    @Test(arguments: vectors)
    func tamperedMessageIsRejected(_ vector: Vector) throws {
        let publicKey = try Ed25519PublicKey(rawRepresentation: bytes(vector.publicKey))
        #expect(!publicKey.isValidSignature(bytes(vector.signature), for: vector.message + [0x00]))
        #expect(!publicKey.isValidSignature(bytes(vector.signature), for: [0x73]))
    }

    @Test func tamperedSignatureIsRejected() throws {
        let vector = Self.vectors[1]
        let publicKey = try Ed25519PublicKey(rawRepresentation: bytes(vector.publicKey))
        var signature = bytes(vector.signature)
        signature[10] ^= 0x04
        #expect(!publicKey.isValidSignature(signature, for: vector.message))
        #expect(!publicKey.isValidSignature(Array(signature.prefix(63)), for: vector.message))
        #expect(!publicKey.isValidSignature([], for: vector.message))
    }

    @Test func signatureFromAnotherKeyIsRejected() throws {
        let other = try Ed25519PublicKey(rawRepresentation: bytes(Self.vectors[0].publicKey))
        #expect(!other.isValidSignature(bytes(Self.vectors[1].signature), for: Self.vectors[1].message))
    }

    @Test func generatedKeySignsAndVerifies() throws {
        let key = try Ed25519PrivateKey.generate()
        let message = utf8("plan sha256:abc apply by alice")
        let signature = try key.signature(for: message)
        #expect(signature.count == 64)
        #expect(key.publicKey.isValidSignature(signature, for: message))
        // The seed reproduces the same key.
        let restored = try Ed25519PrivateKey(seed: key.seed)
        #expect(restored.publicKey.rawRepresentation == key.publicKey.rawRepresentation)
        #expect(try Ed25519PrivateKey.generate().publicKey.rawRepresentation != key.publicKey.rawRepresentation)
    }

    @Test(arguments: [0, 31, 33, 64])
    func wrongLengthKeysThrow(_ count: Int) {
        #expect(throws: CryptoError.self) { try Ed25519PrivateKey(seed: [UInt8](repeating: 1, count: count)) }
        #expect(throws: CryptoError.self) {
            try Ed25519PublicKey(rawRepresentation: [UInt8](repeating: 1, count: count))
        }
    }
}
