internal import CCrypto

/// Key derivation functions.
public enum KeyDerivation {
    /// HKDF-SHA256 (RFC 5869): extract-then-expand `inputKey` into `outputByteCount` bytes.
    ///
    /// An empty `salt` means the RFC's default salt (32 zero bytes).
    /// - Throws: ``CryptoError`` when `outputByteCount` is not in `1...8160` (255 × 32),
    ///   the most HKDF-SHA256 can produce.
    public static func hkdfSHA256(
        inputKey: [UInt8], salt: [UInt8], info: [UInt8], outputByteCount: Int
    ) throws -> [UInt8] {
        let operation = "HKDF-SHA256"
        let maximum = 255 * SHA256.byteCount
        guard (1...maximum).contains(outputByteCount) else {
            throw CryptoError(
                operation: operation,
                details: "output length must be between 1 and \(maximum) bytes, got \(outputByteCount)")
        }
        guard let kdf = FetchedAlgorithm.hkdf?.pointer else { throw CryptoError.openSSL("EVP_KDF_fetch(HKDF)") }
        guard let context = EVP_KDF_CTX_new(kdf) else { throw CryptoError.openSSL("EVP_KDF_CTX_new") }
        defer { EVP_KDF_CTX_free(context) }

        return try inputKey.withUnsafeBufferPointer { key in
            try salt.withUnsafeBufferPointer { salt in
                try info.withUnsafeBufferPointer { info in
                    try [UInt8](unsafeUninitializedCapacity: outputByteCount) { output, initialized in
                        // An empty input key is legal in RFC 5869, but OpenSSL needs a non-NULL pointer.
                        let derived = withUnsafePointer(to: 0 as UInt8) { empty in
                            ccrypto_hkdf_sha256(
                                context, output.baseAddress, outputByteCount,
                                key.baseAddress ?? empty, key.count,
                                salt.baseAddress, salt.count,
                                info.baseAddress, info.count)
                        }
                        guard derived == 1 else { throw CryptoError.openSSL(operation) }
                        initialized = outputByteCount
                    }
                }
            }
        }
    }
}
