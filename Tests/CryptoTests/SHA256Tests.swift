import Crypto
import Testing

@Suite("SHA-256 (FIPS 180-2 vectors)")
struct SHA256Tests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var message: [UInt8]
        var digest: String
        var testDescription: String { name }
    }

    static let vectors: [Vector] = [
        Vector(
            name: "one block: abc", message: utf8("abc"),
            digest: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        Vector(
            name: "empty message", message: [],
            digest: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        Vector(
            name: "two blocks: 448-bit message",
            message: utf8("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            digest: "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ]

    @Test(arguments: vectors)
    func oneShotArray(_ vector: Vector) {
        #expect(hex(SHA256.hash(vector.message)) == vector.digest)
    }

    @Test(arguments: vectors)
    func oneShotRawBuffer(_ vector: Vector) {
        let digest = vector.message.withUnsafeBytes { SHA256.hash($0) }
        #expect(hex(digest) == vector.digest)
    }

    @Test(arguments: vectors)
    func incrementalByteByByte(_ vector: Vector) {
        let hasher = SHA256Hasher()
        for byte in vector.message { hasher.update([byte]) }
        #expect(hex(hasher.finalize()) == vector.digest)
    }

    @Test func oneMillionAsThroughTheIncrementalHasher() {
        let hasher = SHA256Hasher()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for index in 0..<1000 {
            // Alternate the two update overloads.
            if index.isMultiple(of: 2) {
                hasher.update(chunk)
            } else {
                chunk.withUnsafeBytes { hasher.update($0) }
            }
        }
        #expect(hex(hasher.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func finalizeReportsTheInputSoFarAndHashingCanContinue() {
        let hasher = SHA256Hasher()
        hasher.update(utf8("ab"))
        #expect(hasher.finalize() == SHA256.hash(utf8("ab")))
        hasher.update(utf8("c"))
        #expect(hex(hasher.finalize()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func finishWritesEachDigestAndStartsOver() {
        // One hasher, every vector in turn: each digest must be of its own message only.
        let hasher = SHA256Hasher()
        var digest = [UInt8](repeating: 0, count: SHA256.byteCount)
        for vector in Self.vectors {
            hasher.update(vector.message)
            digest.withUnsafeMutableBytes { hasher.finish(into: $0) }
            #expect(hex(digest) == vector.digest)
        }
        // Nothing after the last finish: the digest of no input.
        #expect(hex(hasher.finalize()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func digestHasByteCountBytes() {
        #expect(SHA256.byteCount == 32)
        #expect(SHA256.hash([UInt8](repeating: 7, count: 200)).count == SHA256.byteCount)
    }
}
