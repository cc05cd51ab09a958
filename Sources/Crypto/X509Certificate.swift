internal import CCrypto
public import Foundation

/// An X.509 certificate read from PEM, with the fields orgctl checks.
///
/// Holds only Swift values: the OpenSSL objects used to parse it are freed before
/// `init` returns.
public struct X509Certificate: Sendable {
    /// Start of the validity period.
    public let notBefore: Date
    /// End of the validity period: the certificate has expired after this instant.
    public let notAfter: Date
    /// Subject name in one-line RFC 2253 form, most specific part first
    /// ("CN=acme.okta.com,O=Acme"); non-ASCII characters are kept as UTF-8.
    public let subject: String
    /// Issuer name, in the same form as ``subject``.
    public let issuer: String
    /// SHA-256 over the DER encoding, as shown by `openssl x509 -fingerprint -sha256`.
    public let sha256Fingerprint: [UInt8]
    /// The DER encoding.
    public let der: [UInt8]

    private static let beginMarker = "-----BEGIN CERTIFICATE-----"
    private static let endMarker = "-----END CERTIFICATE-----"

    /// Reads exactly one PEM `CERTIFICATE` block.
    ///
    /// Text before the block (such as `openssl x509 -text` output) is ignored; anything but
    /// whitespace after it is an error, as are empty input, private keys and blocks that
    /// do not decode as X.509.
    public init(pem: [UInt8]) throws(CertificateError) {
        if pem.allSatisfy({ [0x20, 0x09, 0x0a, 0x0d].contains($0) }) { throw .empty }
        if pem.contains(subsequence: Array("PRIVATE KEY-----".utf8)) { throw .privateKey }
        guard pem.contains(subsequence: Array(Self.beginMarker.utf8)) else { throw .notPEM }
        guard pem.contains(subsequence: Array(Self.endMarker.utf8)) else { throw .truncated }
        self = try Self.parse(pem).get()
    }

    private init(x509: OpaquePointer) throws(CertificateError) {
        guard let notBefore = date(X509_get0_notBefore(x509)), let notAfter = date(X509_get0_notAfter(x509)) else {
            throw .invalid(OpenSSLErrorQueue.drainReasons())
        }
        let length = i2d_X509(x509, nil)
        guard length > 0 else { throw .invalid(OpenSSLErrorQueue.drainReasons()) }
        let der = [UInt8](unsafeUninitializedCapacity: Int(length)) { buffer, initialized in
            var cursor = buffer.baseAddress
            initialized = Int(max(0, i2d_X509(x509, &cursor)))
        }
        guard der.count == length else { throw .invalid(OpenSSLErrorQueue.drainReasons()) }

        self.notBefore = notBefore
        self.notAfter = notAfter
        self.subject = rfc2253(X509_get_subject_name(x509))
        self.issuer = rfc2253(X509_get_issuer_name(x509))
        self.der = der
        self.sha256Fingerprint = SHA256.hash(der)
    }

    private static func parse(_ pem: [UInt8]) -> Result<X509Certificate, CertificateError> {
        ERR_clear_error()
        // A read-only memory BIO points into `pem`, so all reading happens inside the closure.
        return pem.withUnsafeBytes { bytes -> Result<X509Certificate, CertificateError> in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(clamping: bytes.count)) else {
                return .failure(.invalid(OpenSSLErrorQueue.drainReasons()))
            }
            defer { BIO_free(bio) }
            guard let x509 = ccrypto_pem_read_x509(bio) else {
                return .failure(.invalid(OpenSSLErrorQueue.drainReasons()))
            }
            defer { X509_free(x509) }

            // What PEM_read_bio_X509 left unread: only whitespace may follow the block.
            var rest: UnsafePointer<CChar>?
            let restCount = ccrypto_bio_mem_data(bio, &rest)
            if let rest, restCount > 0 {
                let trailing = UnsafeRawBufferPointer(start: rest, count: Int(restCount))
                if trailing.contains(subsequence: Array("-----BEGIN".utf8)) { return .failure(.moreThanOneBlock) }
                if !trailing.allSatisfy({ [0x20, 0x09, 0x0a, 0x0d].contains($0) }) { return .failure(.trailingData) }
            }
            return Result { () throws(CertificateError) in try X509Certificate(x509: x509) }
        }
    }
}

/// Why a certificate could not be read, worded for the person who supplied it.
public struct CertificateError: Error, CustomStringConvertible, Sendable {
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { reason }

    static let empty = CertificateError(
        reason: "the input is empty (expected a PEM certificate starting with '-----BEGIN CERTIFICATE-----')")
    static let notPEM = CertificateError(reason: "not a PEM certificate (expected '-----BEGIN CERTIFICATE-----')")
    static let privateKey = CertificateError(reason: "the PEM block holds a private key, not a certificate")
    static let truncated = CertificateError(
        reason: "the PEM certificate is truncated (missing '-----END CERTIFICATE-----')")
    static let moreThanOneBlock = CertificateError(
        reason: "expected exactly one PEM block, found more after '-----END CERTIFICATE-----'")
    static let trailingData = CertificateError(
        reason: "unexpected text after '-----END CERTIFICATE-----'")

    static func invalid(_ detail: String) -> CertificateError {
        CertificateError(reason: "certificate is not valid X.509: \(detail.isEmpty ? "unknown OpenSSL error" : detail)")
    }
}

/// `time` as a Date, computed by OpenSSL as the distance from the Unix epoch.
private func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date? {
    guard let time, let epoch = ASN1_TIME_set(nil, 0) else { return nil }
    defer { ASN1_TIME_free(epoch) }
    var days: Int32 = 0
    var seconds: Int32 = 0
    guard ASN1_TIME_diff(&days, &seconds, epoch, time) == 1 else { return nil }
    return Date(timeIntervalSince1970: TimeInterval(days) * 86_400 + TimeInterval(seconds))
}

/// `name` in one-line RFC 2253 form, UTF-8 kept unescaped.
private func rfc2253(_ name: OpaquePointer?) -> String {
    guard let name, let bio = BIO_new(BIO_s_mem()) else { return "" }
    defer { BIO_free(bio) }
    guard X509_NAME_print_ex(bio, name, 0, ccrypto_name_flags_rfc2253_utf8()) >= 0 else { return "" }
    var data: UnsafePointer<CChar>?
    let count = ccrypto_bio_mem_data(bio, &data)
    guard let data, count > 0 else { return "" }
    return String(decoding: UnsafeRawBufferPointer(start: data, count: Int(count)), as: UTF8.self)
}

extension Sequence where Element == UInt8 {
    fileprivate func contains(subsequence needle: [UInt8]) -> Bool {
        let haystack = Array(self)
        guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
        return (0...(haystack.count - needle.count)).contains { start in
            haystack[start..<(start + needle.count)].elementsEqual(needle)
        }
    }
}

extension OpenSSLErrorQueue {
    /// The reason strings of every queued error ("bad base64 decode; nested asn1 error"),
    /// without OpenSSL's codes and library names, draining the queue.
    static func drainReasons() -> String {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            let reason = ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)"
            if !reasons.contains(reason) { reasons.append(reason) }
        }
        return reasons.joined(separator: "; ")
    }
}
