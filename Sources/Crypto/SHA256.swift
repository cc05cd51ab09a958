internal import CCrypto

/// SHA-256 (FIPS 180-4).
public enum SHA256 {
    /// Digest length in bytes.
    public static let byteCount = 32

    /// The SHA-256 digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hash($0) }
    }

    /// The SHA-256 digest of the bytes in `bytes`.
    ///
    /// One-shot `EVP_Digest` with a digest fetched once per process: the only heap
    /// allocations per call are OpenSSL's short-lived context and the returned array.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: byteCount) { digest, initialized in
            var length: UInt32 = 0
            // An empty buffer may have a nil base address; EVP_Digest needs a pointer even for 0 bytes.
            let ok = withUnsafePointer(to: 0 as UInt8) { empty in
                EVP_Digest(
                    bytes.baseAddress ?? UnsafeRawPointer(empty), bytes.count,
                    digest.baseAddress, &length, FetchedAlgorithm.sha256Digest.pointer, nil)
            }
            // Only allocation failure makes a SHA-256 digest fail.
            guard ok == 1, length == byteCount else {
                fatalError("SHA-256 digest failed: \(OpenSSLErrorQueue.drain())")
            }
            initialized = byteCount
        }
    }
}

/// Incremental SHA-256 for input that arrives in pieces.
///
/// ```swift
/// let hasher = SHA256Hasher()
/// hasher.update(header)
/// hasher.update(body)
/// let digest = hasher.finalize()
/// ```
///
/// `finalize()` does not end the hasher: it returns the digest of everything so far,
/// and more `update` calls may follow. Not thread-safe: confine an instance to one task.
public final class SHA256Hasher {
    private let context: OpaquePointer  // EVP_MD_CTX *

    public init() {
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        guard EVP_DigestInit_ex2(context, FetchedAlgorithm.sha256Digest.pointer, nil) == 1 else {
            fatalError("SHA-256 init failed: \(OpenSSLErrorQueue.drain())")
        }
        self.context = context
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    /// Appends `bytes` to the hashed input.
    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Appends the bytes in `bytes` to the hashed input.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard EVP_DigestUpdate(context, base, bytes.count) == 1 else {
            fatalError("SHA-256 update failed: \(OpenSSLErrorQueue.drain())")
        }
    }

    /// Writes the digest of everything passed to `update` since the last `finish` into the first
    /// 32 bytes of `digest`, and starts over with empty input. Allocates nothing, so one hasher
    /// can digest many short inputs in a loop (where ``SHA256/hash(_:)-([UInt8])`` would
    /// allocate OpenSSL's context and an array for each).
    public func finish(into digest: UnsafeMutableRawBufferPointer) {
        precondition(digest.count >= SHA256.byteCount, "a SHA-256 digest needs 32 bytes")
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, digest.baseAddress?.assumingMemoryBound(to: UInt8.self), &length) == 1,
            length == SHA256.byteCount,
            EVP_DigestInit_ex2(context, FetchedAlgorithm.sha256Digest.pointer, nil) == 1
        else {
            fatalError("SHA-256 final failed: \(OpenSSLErrorQueue.drain())")
        }
    }

    /// The digest of all bytes passed to `update` so far.
    public func finalize() -> [UInt8] {
        guard let copy = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        defer { EVP_MD_CTX_free(copy) }
        return [UInt8](unsafeUninitializedCapacity: SHA256.byteCount) { digest, initialized in
            var length: UInt32 = 0
            guard EVP_MD_CTX_copy_ex(copy, context) == 1,
                EVP_DigestFinal_ex(copy, digest.baseAddress, &length) == 1,
                length == SHA256.byteCount
            else {
                fatalError("SHA-256 final failed: \(OpenSSLErrorQueue.drain())")
            }
            initialized = SHA256.byteCount
        }
    }
}
