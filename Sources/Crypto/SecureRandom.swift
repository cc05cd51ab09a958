internal import CCrypto

/// Bytes from OpenSSL's cryptographically secure generator (`RAND_bytes`).
public enum SecureRandom {
    /// `count` random bytes, suitable for keys and nonces.
    ///
    /// - Throws: ``CryptoError`` for a negative count, or when the generator cannot be
    ///   seeded by the operating system.
    public static func bytes(count: Int) throws -> [UInt8] {
        guard count >= 0, count <= Int32.max else {
            throw CryptoError(
                operation: "RAND_bytes", details: "byte count must be between 0 and \(Int32.max), got \(count)")
        }
        guard count > 0 else { return [] }
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            guard RAND_bytes(buffer.baseAddress, Int32(count)) == 1 else { throw CryptoError.openSSL("RAND_bytes") }
            initialized = count
        }
    }
}
