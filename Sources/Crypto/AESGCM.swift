internal import CCrypto

/// AES-256-GCM authenticated encryption.
///
/// A sealed box is `nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`.
public enum AESGCM {
    public static let keyByteCount = 32
    public static let nonceByteCount = 12
    public static let tagByteCount = 16

    /// Encrypts and authenticates `plaintext`, and authenticates `aad` (not encrypted).
    ///
    /// - Parameter nonce: 12 bytes, never reused with the same key; a fresh random nonce
    ///   when `nil` (the normal case).
    /// - Returns: `nonce ‖ ciphertext ‖ tag`, 28 bytes longer than `plaintext`.
    /// - Throws: ``CryptoError`` for a key that is not 32 bytes or a nonce that is not 12.
    public static func seal(
        _ plaintext: [UInt8], key: [UInt8], authenticating aad: [UInt8], nonce: [UInt8]? = nil
    ) throws -> [UInt8] {
        let operation = "AES-256-GCM seal"
        try checkKey(key, operation)
        let nonce = try nonce ?? SecureRandom.bytes(count: nonceByteCount)
        guard nonce.count == nonceByteCount else {
            throw CryptoError(
                operation: operation, details: "nonce must be \(nonceByteCount) bytes, got \(nonce.count)")
        }
        guard plaintext.count <= Int(Int32.max) - nonceByteCount - tagByteCount, aad.count <= Int32.max else {
            throw CryptoError(operation: operation, details: "input larger than 2 GiB")
        }

        let context = try CipherContext(operation)
        var sealed = [UInt8](repeating: 0, count: nonceByteCount + plaintext.count + tagByteCount)
        try sealed.withUnsafeMutableBufferPointer { output in
            let out = output.baseAddress!
            out.update(from: nonce, count: nonceByteCount)
            var written: Int32 = 0
            guard EVP_EncryptInit_ex2(context.pointer, FetchedAlgorithm.aes256GCM.pointer, key, nonce, nil) == 1,
                processAAD(aad, context) == 1
            else { throw CryptoError.openSSL(operation) }
            if !plaintext.isEmpty {
                guard
                    EVP_EncryptUpdate(
                        context.pointer, out + nonceByteCount, &written, plaintext, Int32(plaintext.count)) == 1,
                    written == plaintext.count
                else { throw CryptoError.openSSL(operation) }
            }
            let tag = out + nonceByteCount + plaintext.count
            guard EVP_EncryptFinal_ex(context.pointer, tag, &written) == 1, written == 0,
                EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_GCM_GET_TAG, Int32(tagByteCount), tag) == 1
            else { throw CryptoError.openSSL(operation) }
        }
        return sealed
    }

    /// Checks and decrypts a box made by ``seal(_:key:authenticating:nonce:)``.
    ///
    /// - Throws: ``CryptoError`` when the key or `aad` differ from the ones used to seal,
    ///   the box was modified or truncated, or the key is not 32 bytes. No plaintext is
    ///   released unless authentication succeeds.
    public static func open(_ sealed: [UInt8], key: [UInt8], authenticating aad: [UInt8]) throws -> [UInt8] {
        let operation = "AES-256-GCM open"
        try checkKey(key, operation)
        guard sealed.count >= nonceByteCount + tagByteCount else {
            throw CryptoError(
                operation: operation,
                details:
                    "sealed data is \(sealed.count) bytes, shorter than nonce and tag (\(nonceByteCount + tagByteCount))"
            )
        }
        guard sealed.count <= Int32.max, aad.count <= Int32.max else {
            throw CryptoError(operation: operation, details: "input larger than 2 GiB")
        }

        let context = try CipherContext(operation)
        let ciphertextCount = sealed.count - nonceByteCount - tagByteCount
        var plaintext = [UInt8](repeating: 0, count: ciphertextCount)
        let authentic = try sealed.withUnsafeBufferPointer { input in
            try plaintext.withUnsafeMutableBufferPointer { output in
                let nonce = input.baseAddress!
                let ciphertext = nonce + nonceByteCount
                // EVP_CTRL_GCM_SET_TAG takes a non-const pointer but only reads the tag.
                let tag = UnsafeMutablePointer(mutating: ciphertext + ciphertextCount)
                var written: Int32 = 0
                guard EVP_DecryptInit_ex2(context.pointer, FetchedAlgorithm.aes256GCM.pointer, key, nonce, nil) == 1,
                    processAAD(aad, context) == 1
                else { throw CryptoError.openSSL(operation) }
                if ciphertextCount > 0 {
                    guard
                        EVP_DecryptUpdate(
                            context.pointer, output.baseAddress, &written, ciphertext, Int32(ciphertextCount)) == 1,
                        written == ciphertextCount
                    else { throw CryptoError.openSSL(operation) }
                }
                guard EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_GCM_SET_TAG, Int32(tagByteCount), tag) == 1 else {
                    throw CryptoError.openSSL(operation)
                }
                return EVP_DecryptFinal_ex(context.pointer, output.baseAddress, &written) == 1
            }
        }
        guard authentic else {
            wipe(&plaintext)
            OpenSSLErrorQueue.drain()
            throw CryptoError(
                operation: operation,
                details: "authentication failed (wrong key or associated data, or the data was modified)")
        }
        return plaintext
    }

    private static func checkKey(_ key: [UInt8], _ operation: String) throws {
        guard key.count == keyByteCount else {
            throw CryptoError(operation: operation, details: "key must be \(keyByteCount) bytes, got \(key.count)")
        }
    }

    /// Feeds the associated data (an update with a NULL output buffer).
    private static func processAAD(_ aad: [UInt8], _ context: CipherContext) -> Int32 {
        guard !aad.isEmpty else { return 1 }
        var written: Int32 = 0
        return EVP_CipherUpdate(context.pointer, nil, &written, aad, Int32(aad.count))
    }
}

/// An owned EVP_CIPHER_CTX, freed (and cleansed by OpenSSL) on deinit.
private final class CipherContext {
    let pointer: OpaquePointer

    init(_ operation: String) throws {
        guard let pointer = EVP_CIPHER_CTX_new() else { throw CryptoError.openSSL("\(operation): EVP_CIPHER_CTX_new") }
        self.pointer = pointer
    }

    deinit {
        EVP_CIPHER_CTX_free(pointer)
    }
}

/// Overwrites `bytes` with zeros in a way the optimizer cannot drop (`OPENSSL_cleanse`).
func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { buffer in
        if let base = buffer.baseAddress { OPENSSL_cleanse(base, buffer.count) }
    }
}
