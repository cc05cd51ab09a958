internal import CCrypto

/// HMAC-SHA256 (RFC 2104), through OpenSSL's EVP_MAC API.
public enum HMACSHA256 {
    /// The 32-byte HMAC-SHA256 of `message` under `key` (any length, including empty).
    public static func authenticationCode(for message: [UInt8], key: [UInt8]) -> [UInt8] {
        do {
            return try compute(message: message, key: key)
        } catch {
            // HMAC-SHA256 has no failure mode for valid inputs; only a broken OpenSSL
            // installation (no HMAC in the default provider) or allocation failure gets here.
            fatalError("\(error)")
        }
    }

    /// Whether `code` is the HMAC-SHA256 of `message` under `key`.
    ///
    /// Compares in constant time (`CRYPTO_memcmp`), so the comparison leaks no timing
    /// information about how many leading bytes matched.
    public static func isValid(_ code: [UInt8], for message: [UInt8], key: [UInt8]) -> Bool {
        let expected = authenticationCode(for: message, key: key)
        guard code.count == expected.count else { return false }
        return CRYPTO_memcmp(expected, code, expected.count) == 0
    }

    private static func compute(message: [UInt8], key: [UInt8]) throws -> [UInt8] {
        guard let mac = FetchedAlgorithm.hmac?.pointer else { throw CryptoError.openSSL("EVP_MAC_fetch(HMAC)") }
        guard let context = EVP_MAC_CTX_new(mac) else { throw CryptoError.openSSL("EVP_MAC_CTX_new") }
        defer { EVP_MAC_CTX_free(context) }

        return try [UInt8](unsafeUninitializedCapacity: SHA256.byteCount) { code, initialized in
            var length = 0
            // A non-NULL key pointer even when the key is empty: OpenSSL treats a NULL key
            // as "keep the previous key" and fails when there is none.
            let keyed = withUnsafePointer(to: 0 as UInt8) { empty in
                key.withUnsafeBufferPointer { key in
                    ccrypto_hmac_sha256_init(context, key.baseAddress ?? empty, key.count)
                }
            }
            guard keyed == 1,
                message.withUnsafeBufferPointer({ EVP_MAC_update(context, $0.baseAddress, $0.count) }) == 1,
                EVP_MAC_final(context, code.baseAddress, &length, code.count) == 1,
                length == SHA256.byteCount
            else { throw CryptoError.openSSL("HMAC-SHA256") }
            initialized = length
        }
    }
}

/// HMAC-SHA256 under one key, for many short messages in a loop: the key is set once, and each
/// message re-initialises the same OpenSSL context (which reuses the key's precomputed inner and
/// outer states), so a MAC allocates nothing. Not thread-safe: confine an instance to one task.
public final class HMACSHA256Context {
    private let context: OpaquePointer  // EVP_MAC_CTX *

    public init(key: [UInt8]) {
        guard let mac = FetchedAlgorithm.hmac?.pointer, let context = EVP_MAC_CTX_new(mac) else {
            fatalError("HMAC-SHA256: \(OpenSSLErrorQueue.drain())")
        }
        let keyed = withUnsafePointer(to: 0 as UInt8) { empty in
            key.withUnsafeBufferPointer { ccrypto_hmac_sha256_init(context, $0.baseAddress ?? empty, $0.count) }
        }
        guard keyed == 1 else { fatalError("HMAC-SHA256 init failed: \(OpenSSLErrorQueue.drain())") }
        self.context = context
    }

    deinit {
        EVP_MAC_CTX_free(context)
    }

    /// Writes the MAC of `message` into the first 32 bytes of `code`.
    public func authenticate(_ message: UnsafeRawBufferPointer, into code: UnsafeMutableRawBufferPointer) {
        precondition(code.count >= SHA256.byteCount, "an HMAC-SHA256 needs 32 bytes")
        var length = 0
        // A NULL key re-initialises with the key already set (no parameters: the digest stays SHA-256).
        guard EVP_MAC_init(context, nil, 0, nil) == 1,
            message.count == 0 || EVP_MAC_update(context, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count) == 1,
            EVP_MAC_final(context, code.baseAddress?.assumingMemoryBound(to: UInt8.self), &length, code.count) == 1,
            length == SHA256.byteCount
        else { fatalError("HMAC-SHA256 failed: \(OpenSSLErrorQueue.drain())") }
    }
}
