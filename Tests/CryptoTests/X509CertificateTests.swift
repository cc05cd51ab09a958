import Crypto
import Foundation
import Testing

/// Test certificates made once with Python `cryptography` (self-signed, Ed25519 keys,
/// exact validity dates) and committed here; expectations cross-checked with
/// `openssl x509 -noout -subject -nameopt RFC2253,-esc_msb -dates -fingerprint -sha256`.
enum TestCertificates {
    /// Subject and issuer "CN=acme.okta.com,O=Acme", valid 2026-01-01T00:00:00Z through 2046-01-01T00:00:00Z.
    static let longLived = """
        -----BEGIN CERTIFICATE-----
        MIH6MIGtoAMCAQICAQEwBQYDK2VwMCcxDTALBgNVBAoMBEFjbWUxFjAUBgNVBAMM
        DWFjbWUub2t0YS5jb20wHhcNMjYwMTAxMDAwMDAwWhcNNDYwMTAxMDAwMDAwWjAn
        MQ0wCwYDVQQKDARBY21lMRYwFAYDVQQDDA1hY21lLm9rdGEuY29tMCowBQYDK2Vw
        AyEAwNxwakM5r67cEyn0oga9T6K5iQBY6jSELsO3msZ7yfYwBQYDK2VwA0EAlzH7
        C/Vfg5u26zYg5Tcy7su475zeceHoonc8WsPVl/eYlnCMSakfeYBQkuYCvf1uCn5o
        OXXhjKevcfVrwacUBA==
        -----END CERTIFICATE-----

        """

    /// Subject and issuer "CN=old.example.com,O=Acme\, Inc.,L=Zürich",
    /// valid 2020-01-01T00:00:00Z through 2021-06-30T12:30:45Z: already expired.
    static let expired = """
        -----BEGIN CERTIFICATE-----
        MIIBLjCB4aADAgECAgECMAUGAytlcDBBMRAwDgYDVQQHDAdaw7xyaWNoMRMwEQYD
        VQQKDApBY21lLCBJbmMuMRgwFgYDVQQDDA9vbGQuZXhhbXBsZS5jb20wHhcNMjAw
        MTAxMDAwMDAwWhcNMjEwNjMwMTIzMDQ1WjBBMRAwDgYDVQQHDAdaw7xyaWNoMRMw
        EQYDVQQKDApBY21lLCBJbmMuMRgwFgYDVQQDDA9vbGQuZXhhbXBsZS5jb20wKjAF
        BgMrZXADIQAkdA0IeUmRSRuddVV3Ea3UMhAG1Wdu1tUp4DGoo9xOrzAFBgMrZXAD
        QQDBGMc5Ad7THpf+eXQ4qCN89ynNY2jCBwUtwc+TV0m85QDIM9wZWhH/lRI3b2g+
        iMjni5K5CBQRZcYs5GbkNNgK
        -----END CERTIFICATE-----

        """

    /// A throwaway PKCS#8 Ed25519 private key, used only to check that keys are refused.
    static let privateKey = """
        -----BEGIN PRIVATE KEY-----
        MC4CAQAwBQYDK2VwBCIEIDTy5PVFgQEXUFbXiuV3BMDWr822hh9jBia0mO9791dv
        -----END PRIVATE KEY-----

        """
}

@Suite("X509Certificate")
struct X509CertificateTests {
    static let notPEM = "not a PEM certificate (expected '-----BEGIN CERTIFICATE-----')"
    static let privateKey = "the PEM block holds a private key, not a certificate"
    static let empty = "the input is empty (expected a PEM certificate starting with '-----BEGIN CERTIFICATE-----')"
    static let truncated = "the PEM certificate is truncated (missing '-----END CERTIFICATE-----')"
    static let notX509 = "certificate is not valid X.509: "

    @Test func longLivedCertificateFields() throws {
        let certificate = try X509Certificate(pem: utf8(TestCertificates.longLived))
        #expect(certificate.subject == "CN=acme.okta.com,O=Acme")
        #expect(certificate.issuer == "CN=acme.okta.com,O=Acme")
        #expect(certificate.notBefore == Date(timeIntervalSince1970: 1_767_225_600))  // 2026-01-01T00:00:00Z
        #expect(certificate.notAfter == Date(timeIntervalSince1970: 2_398_377_600))  // 2046-01-01T00:00:00Z
        #expect(
            hex(certificate.sha256Fingerprint)
                == "cce66e72bac9aa40dc55009bd8b1a501956dc7d65bc159407f389b0de79ccfb3")
    }

    @Test func expiredCertificateFieldsWithEscapedAndUnicodeSubject() throws {
        let certificate = try X509Certificate(pem: utf8(TestCertificates.expired))
        #expect(certificate.subject == "CN=old.example.com,O=Acme\\, Inc.,L=Zürich")
        #expect(certificate.notBefore == Date(timeIntervalSince1970: 1_577_836_800))  // 2020-01-01T00:00:00Z
        #expect(certificate.notAfter == Date(timeIntervalSince1970: 1_625_056_245))  // 2021-06-30T12:30:45Z
        #expect(certificate.notAfter < Date())
        #expect(
            hex(certificate.sha256Fingerprint)
                == "c3c7f3203ec17bf956251ecad77278fece45ee9cbf054104da234e785d9edd58")
    }

    @Test(arguments: [TestCertificates.longLived, TestCertificates.expired])
    func derIsTheDecodedPEMBody(_ pem: String) throws {
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        let certificate = try X509Certificate(pem: utf8(pem))
        #expect(certificate.der == [UInt8](try #require(Data(base64Encoded: body))))
        #expect(certificate.sha256Fingerprint == SHA256.hash(certificate.der))
    }

    @Test func explanatoryTextBeforeTheBlockAndCRLFAreAccepted() throws {
        let withText = "subject=CN=acme.okta.com,O=Acme\nissuer=CN=acme.okta.com,O=Acme\n" + TestCertificates.longLived
        let crlf = TestCertificates.longLived.replacingOccurrences(of: "\n", with: "\r\n")
        for pem in [withText, crlf, TestCertificates.longLived + "\n\n  \n"] {
            #expect(try X509Certificate(pem: utf8(pem)).subject == "CN=acme.okta.com,O=Acme")
        }
    }

    struct BadInput: Sendable, CustomTestStringConvertible {
        var name: String
        var input: [UInt8]
        var reason: String
        /// `reason` is a prefix (followed by OpenSSL's detail) rather than the whole text.
        var isPrefix = false
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = {
        let lines = TestCertificates.longLived.split(separator: "\n", omittingEmptySubsequences: false)
        return [
            BadInput(name: "empty", input: [], reason: empty),
            BadInput(name: "only whitespace", input: utf8(" \n\r\n\t"), reason: empty),
            BadInput(name: "garbage text", input: utf8("hello, this is not a certificate\n"), reason: notPEM),
            BadInput(name: "binary garbage", input: [0x30, 0x82, 0x01, 0x0a, 0xff, 0x00, 0x13], reason: notPEM),
            BadInput(
                name: "public key PEM",
                input: utf8(
                    "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
                ),
                reason: notPEM),
            BadInput(name: "private key PEM", input: utf8(TestCertificates.privateKey), reason: privateKey),
            BadInput(
                name: "certificate bundled with its private key",
                input: utf8(TestCertificates.longLived + TestCertificates.privateKey), reason: privateKey),
            BadInput(
                name: "truncated: cut in the middle of the body",
                input: utf8(lines.prefix(4).joined(separator: "\n")), reason: truncated),
            BadInput(
                name: "truncated: body line missing",
                input: utf8((lines.prefix(3) + lines.dropFirst(4)).joined(separator: "\n")),
                reason: notX509, isPrefix: true),
            BadInput(
                name: "corrupt base64",
                input: utf8(TestCertificates.longLived.replacingOccurrences(of: "MIH6", with: "M!H6")),
                reason: notX509, isPrefix: true),
            BadInput(
                name: "valid base64 that is not a certificate",
                input: utf8("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"),
                reason: notX509, isPrefix: true),
            BadInput(
                name: "trailing junk", input: utf8(TestCertificates.longLived + "junk\n"),
                reason: "unexpected text after '-----END CERTIFICATE-----'"),
            BadInput(
                name: "two certificates", input: utf8(TestCertificates.longLived + TestCertificates.expired),
                reason: "expected exactly one PEM block, found more after '-----END CERTIFICATE-----'"),
        ]
    }()

    @Test(arguments: badInputs)
    func rejectedWithReason(_ bad: BadInput) {
        let error = #expect(throws: CertificateError.self) { try X509Certificate(pem: bad.input) }
        if bad.isPrefix {
            #expect(error?.reason.hasPrefix(bad.reason) == true, "reason: \(error?.reason ?? "none")")
            // OpenSSL's detail follows the prefix.
            #expect((error?.reason.count ?? 0) > bad.reason.count)
        } else {
            #expect(error?.reason == bad.reason)
        }
        #expect(error?.description == error?.reason)
    }

    @Test func eachFailureReportsOnlyItsOwnOpenSSLErrors() throws {
        let badBase64 = utf8("-----BEGIN CERTIFICATE-----\nM!H6\n-----END CERTIFICATE-----\n")
        let notASN1 = utf8("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n")
        let first = #expect(throws: CertificateError.self) { try X509Certificate(pem: badBase64) }
        let second = #expect(throws: CertificateError.self) { try X509Certificate(pem: notASN1) }
        let third = #expect(throws: CertificateError.self) { try X509Certificate(pem: badBase64) }
        #expect(first?.reason == "certificate is not valid X.509: bad base64 decode")
        #expect(second?.reason.contains("base64") == false)
        #expect(second?.reason.contains("asn1") == true)
        #expect(third?.reason == first?.reason)
        #expect(try X509Certificate(pem: utf8(TestCertificates.longLived)).subject == "CN=acme.okta.com,O=Acme")
    }
}
