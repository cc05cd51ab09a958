internal import Crypto

/// The hashes of the audit chain. Both use SHA-256.
///
/// The leaf hash is RFC 9162's Merkle tree leaf hash, so an RFC 9162 tree (signed checkpoints,
/// inclusion and consistency proofs) can later be built over the same leaves without re-hashing.
public enum AuditHash {
    /// The "previous hash" of entry 1: 32 zero bytes.
    public static let genesis = [UInt8](repeating: 0, count: 32)

    /// `SHA-256(0x00 ‖ entry)` over an entry's canonical bytes.
    public static func leaf(_ canonicalEntry: [UInt8]) -> [UInt8] {
        SHA256.hash([0x00] + canonicalEntry)
    }

    /// `SHA-256(previous ‖ leaf)`: the hash stored with an entry.
    public static func chain(previous: [UInt8], leaf: [UInt8]) -> [UInt8] {
        SHA256.hash(previous + leaf)
    }
}

/// The chain hash of ``AuditHash``, computed without allocating: one SHA-256 context, reused for
/// every entry. For checking a whole chain, where `AuditHash.chain(previous:leaf:)` would allocate
/// four arrays per entry. Not thread-safe: confine an instance to one thread.
public final class AuditChainHasher {
    private let hasher = SHA256Hasher()
    private let leafPrefix: [UInt8] = [0x00]

    public init() {}

    /// Writes `SHA-256(previous ‖ SHA-256(0x00 ‖ entry))` into `hash` (32 bytes, not overlapping `previous`).
    public func chainHash(previous: UnsafeRawBufferPointer, entry: UnsafeRawBufferPointer, into hash: UnsafeMutableRawBufferPointer) {
        hasher.update(leafPrefix)
        hasher.update(entry)
        hasher.finish(into: hash)  // the leaf, for the moment
        hasher.update(previous)
        hasher.update(UnsafeRawBufferPointer(hash))
        hasher.finish(into: hash)
    }

    /// `AuditHash.leaf(entry)` and `AuditHash.chain(previous:leaf:)`, with this hasher's context
    /// (no OpenSSL context is made or freed per entry, as the one-shot functions do).
    public func leafAndChain(previous: [UInt8], entry: [UInt8]) -> (leaf: [UInt8], chain: [UInt8]) {
        hasher.update(leafPrefix)
        hasher.update(entry)
        let leaf = digest()
        hasher.update(previous)
        hasher.update(leaf)
        return (leaf, digest())
    }

    /// `MerkleHash.node(left, right)`: `SHA-256(0x01 ‖ left ‖ right)`, with this hasher's context.
    public func node(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        hasher.update(nodePrefix)
        hasher.update(left)
        hasher.update(right)
        return digest()
    }

    private let nodePrefix: [UInt8] = [0x01]

    /// The digest of what was passed to `update` since the last one, starting the context over.
    private func digest() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: SHA256.byteCount) { digest, initialized in
            hasher.finish(into: UnsafeMutableRawBufferPointer(digest))
            initialized = SHA256.byteCount
        }
    }
}
