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
