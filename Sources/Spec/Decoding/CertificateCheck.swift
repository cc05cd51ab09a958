import Foundation
internal import Crypto

/// Parses SAML signing certificates as X.509 through OpenSSL (never by hand).
enum CertificateCheck {
    static func parse(_ pem: [UInt8], at node: Node, reader: Reader) -> CertificateInfo? {
        let certificate: X509Certificate
        do {
            certificate = try X509Certificate(pem: pem)
        } catch {
            reader.error("spec.certificate", "certificate is not usable: \(error.reason)", at: node,
                         help: "give the identity provider's X.509 signing certificate in PEM form (-----BEGIN CERTIFICATE-----)")
            return nil
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        formatter.timeZone = TimeZone(identifier: "UTC")
        guard let notAfter = CalendarDate(parsing: formatter.string(from: certificate.notAfter)) else { return nil }
        return CertificateInfo(
            pem: String(decoding: pem, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines),
            subject: certificate.subject, notAfter: notAfter,
            notAfterTimestamp: certificate.notAfter.timeIntervalSince1970,
            sha256: Hex.encode(certificate.sha256Fingerprint), location: reader.location(node))
    }
}
