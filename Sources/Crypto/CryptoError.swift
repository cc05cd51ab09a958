internal import CCrypto

/// A failed cryptographic operation.
///
/// `operation` names what was attempted ("AES-256-GCM open"); `details` carries the
/// reason, usually the strings OpenSSL queued for the failure.
public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var details: String

    public init(operation: String, details: String) {
        self.operation = operation
        self.details = details
    }

    public var description: String {
        details.isEmpty ? "\(operation) failed" : "\(operation) failed: \(details)"
    }

    /// An error for `operation` whose details are the strings on OpenSSL's error queue,
    /// which this drains (leaving the queue clear for the next operation).
    static func openSSL(_ operation: String) -> CryptoError {
        CryptoError(operation: operation, details: OpenSSLErrorQueue.drain())
    }
}

/// OpenSSL's thread-local error queue.
enum OpenSSLErrorQueue {
    /// Pops every queued error and joins their strings with "; ".
    @discardableResult
    static func drain() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            messages.append(reasonString(code))
        }
        return messages.joined(separator: "; ")
    }

    /// The last queued error's reason only (e.g. "no start line"), draining the queue.
    static func drainLastReason() -> String {
        var last: UInt = 0
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            last = code
        }
        guard last != 0 else { return "" }
        if let reason = ERR_reason_error_string(last) { return String(cString: reason) }
        return reasonString(last)
    }

    private static func reasonString(_ code: UInt) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
            ERR_error_string_n(code, buffer.baseAddress, buffer.count)
            return String(cString: buffer.baseAddress!)
        }
    }
}

/// An algorithm implementation fetched from OpenSSL's default provider once per process.
///
/// Fetching (`EVP_MD_fetch`, `EVP_CIPHER_fetch`, ...) costs a provider lookup and locks;
/// doing it once instead of on every call more than doubles SHA-256 throughput for
/// small inputs.
///
/// `@unchecked Sendable`: the pointer is written once in `init` and never changed; the
/// fetched EVP_MD/EVP_CIPHER/EVP_MAC/EVP_KDF objects are immutable, reference counted and
/// documented by OpenSSL as safe to use from many threads at once (openssl-threads(7)).
/// They live for the whole process, so they are deliberately never freed.
final class FetchedAlgorithm: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    static let sha256Digest = FetchedAlgorithm(EVP_MD_fetch(nil, "SHA256", nil) ?? EVP_sha256())
    static let aes256GCM = FetchedAlgorithm(EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) ?? EVP_aes_256_gcm())
    static let hmac: FetchedAlgorithm? = EVP_MAC_fetch(nil, "HMAC", nil).map(FetchedAlgorithm.init)
    static let hkdf: FetchedAlgorithm? = EVP_KDF_fetch(nil, "HKDF", nil).map(FetchedAlgorithm.init)
}
