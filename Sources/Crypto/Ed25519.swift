internal import CCrypto

/// An Ed25519 signing key (RFC 8032).
public final class Ed25519PrivateKey: Sendable {
    public static let seedByteCount = 32
    public static let signatureByteCount = 64

    private let key: OwnedPKey
    /// The matching verification key.
    public let publicKey: Ed25519PublicKey

    /// A fresh key from OpenSSL's CSPRNG.
    public static func generate() throws -> Ed25519PrivateKey {
        var seed = try SecureRandom.bytes(count: seedByteCount)
        defer { wipe(&seed) }
        return try Ed25519PrivateKey(seed: seed)
    }

    /// The key whose 32-byte seed (RFC 8032's "secret key") is `seed`.
    ///
    /// - Throws: ``CryptoError`` when `seed` is not 32 bytes.
    public init(seed: [UInt8]) throws {
        guard seed.count == Self.seedByteCount else {
            throw CryptoError(
                operation: "Ed25519 private key", details: "seed must be \(Self.seedByteCount) bytes, got \(seed.count)"
            )
        }
        guard let pointer = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, seed.count) else {
            throw CryptoError.openSSL("Ed25519 private key")
        }
        key = OwnedPKey(pointer)
        var raw = [UInt8](repeating: 0, count: Ed25519PublicKey.byteCount)
        var length = raw.count
        guard EVP_PKEY_get_raw_public_key(pointer, &raw, &length) == 1, length == raw.count else {
            throw CryptoError.openSSL("Ed25519 public key")
        }
        publicKey = try Ed25519PublicKey(rawRepresentation: raw)
    }

    /// The 32-byte seed; keep it secret. Read from OpenSSL on each access.
    public var seed: [UInt8] {
        var raw = [UInt8](repeating: 0, count: Self.seedByteCount)
        var length = raw.count
        guard EVP_PKEY_get_raw_private_key(key.pointer, &raw, &length) == 1, length == raw.count else {
            fatalError("Ed25519 seed: \(OpenSSLErrorQueue.drain())")
        }
        return raw
    }

    /// The 64-byte signature of `message` (pure Ed25519, deterministic).
    public func signature(for message: [UInt8]) throws -> [UInt8] {
        let operation = "Ed25519 sign"
        guard let context = EVP_MD_CTX_new() else { throw CryptoError.openSSL(operation) }
        defer { EVP_MD_CTX_free(context) }
        // Ed25519 hashes internally: the digest argument must be NULL, and only the one-shot
        // EVP_DigestSign is supported.
        guard EVP_DigestSignInit(context, nil, nil, nil, key.pointer) == 1 else { throw CryptoError.openSSL(operation) }
        return try [UInt8](unsafeUninitializedCapacity: Self.signatureByteCount) { signature, initialized in
            var length = signature.count
            let signed = withUnsafePointer(to: 0 as UInt8) { empty in
                message.withUnsafeBufferPointer { message in
                    EVP_DigestSign(context, signature.baseAddress, &length, message.baseAddress ?? empty, message.count)
                }
            }
            guard signed == 1, length == Self.signatureByteCount else { throw CryptoError.openSSL(operation) }
            initialized = length
        }
    }
}

/// An Ed25519 verification key (RFC 8032).
public final class Ed25519PublicKey: Sendable {
    public static let byteCount = 32

    private let key: OwnedPKey
    /// The 32-byte encoded public key.
    public let rawRepresentation: [UInt8]

    /// The key encoded as `rawRepresentation`.
    ///
    /// - Throws: ``CryptoError`` when it is not 32 bytes.
    public init(rawRepresentation raw: [UInt8]) throws {
        guard raw.count == Self.byteCount else {
            throw CryptoError(
                operation: "Ed25519 public key", details: "key must be \(Self.byteCount) bytes, got \(raw.count)")
        }
        guard let pointer = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, raw, raw.count) else {
            throw CryptoError.openSSL("Ed25519 public key")
        }
        key = OwnedPKey(pointer)
        rawRepresentation = raw
    }

    /// Whether `signature` is a valid signature of `message` under this key.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == Ed25519PrivateKey.signatureByteCount, let context = EVP_MD_CTX_new() else {
            return false
        }
        defer {
            EVP_MD_CTX_free(context)
            // A failed verification leaves errors queued; they are an answer here, not a failure.
            ERR_clear_error()
        }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key.pointer) == 1 else { return false }
        return withUnsafePointer(to: 0 as UInt8) { empty in
            message.withUnsafeBufferPointer { message in
                EVP_DigestVerify(context, signature, signature.count, message.baseAddress ?? empty, message.count) == 1
            }
        }
    }
}

/// An owned EVP_PKEY, freed on deinit.
///
/// `@unchecked Sendable`: the pointer never changes after `init`, and the key is only
/// used read-only (signing and verifying through a fresh EVP_MD_CTX per call). OpenSSL
/// documents EVP_PKEY as safe for concurrent read-only use and guards its internal
/// provider-key cache with a lock (openssl-threads(7)).
private final class OwnedPKey: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }
}
