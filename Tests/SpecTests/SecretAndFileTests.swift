import Foundation
import Spec
import Testing

/// Secrets are references, never literals; `{file:}` stays inside the configuration folder;
/// SAML certificates parse and have not expired.
@Suite struct SecretAndFileTests {
    // MARK: Secrets

    static let literals = [
        "hunter2-Sup3rS3cret",
        "\"xoxb-1234-quoted-secret\"",
        "12345678901234567890",
        "|\n      block-secret-value",
    ]

    @Test(arguments: literals) func inlineSecretIsRefusedWithoutEchoingIt(_ literal: String) throws {
        let scratch = Scratch.with(tenant: tenantWithWebhook("secret: \(marker)\(literal)"))
        let result = try scratch.load()
        expectDiagnostic(
            result, "spec.inline-secret", at: scratch.markedLocation,
            help: "write {env: VARIABLE_NAME} or {file: path/to/secret}, and remove the secret from git history",
            message: "secret must be a reference, not a literal value")
        let secret = literal.trimmingCharacters(in: CharacterSet(charactersIn: "\"|\n "))
        for diagnostic in result.items {
            let text = render(diagnostic)
            #expect(!text.contains(secret), "the secret leaked into: \(text)")
        }
    }

    @Test func inlineClientSecretIsRefused() throws {
        let scratch = Scratch.with(
            tenant: tenant("sso:\n  providers:\n    g: {type: oidc, issuer: \"https://accounts.google.com\", clientId: x, clientSecret: 1️⃣GOCSPX-abcdef}"))
        let result = try scratch.load()
        expectDiagnostic(result, "spec.inline-secret", at: scratch.markedLocation, message: "clientSecret must be a reference")
        #expect(!result.items.map(render).joined().contains("GOCSPX-abcdef"))
    }

    static let referenceShapes: [RuleCase] = [
        RuleCase(
            "a reference with two keys", valid: tenantWithWebhook("secret: {env: HOOK_SECRET}"),
            invalid: tenantWithWebhook("secret: 1️⃣{env: HOOK_SECRET, file: hook.txt}"),
            "spec.secret-reference", help: "write {env: VARIABLE_NAME} or {file: path/to/secret}",
            message: "secret must have exactly one key, 'env' or 'file'"),
        RuleCase(
            "a reference with an unknown key holding the value", valid: tenantWithWebhook("secret: {file: ../secrets/hook.txt}"),
            invalid: tenantWithWebhook("secret: 1️⃣{value: sk_live_do_not_echo}"), "spec.secret-reference"),
        RuleCase(
            "an environment variable name starting with a digit", valid: tenantWithWebhook("secret: {env: _HOOK_1}"),
            invalid: tenantWithWebhook("secret: {env: 1️⃣1HOOK}"), "spec.name", help: "use letters, digits and '_', not starting with a digit",
            message: "'1HOOK' is not a valid environment variable name"),
        RuleCase(
            "an empty environment variable name", valid: tenantWithWebhook("secret: {env: HOOK}"),
            invalid: tenantWithWebhook("secret: {env: 1️⃣\"\"}"), "spec.empty"),
        RuleCase(
            "a null environment variable name", valid: tenantWithWebhook("secret: {env: HOOK}"),
            invalid: tenantWithWebhook("secret: {env: 1️⃣~}"), "spec.type"),
        RuleCase(
            "a secret written as a list", valid: tenantWithWebhook("secret: {env: HOOK}"),
            invalid: tenantWithWebhook("secret: 1️⃣[HOOK]"), "spec.type", message: "secret must be {env: NAME} or {file: path}, not a list"),
        RuleCase(
            "an absolute secret file path", valid: tenantWithWebhook("secret: {file: hook.txt}"),
            invalid: tenantWithWebhook("secret: {file: 1️⃣/etc/passwd}"), "spec.path",
            help: "write a path relative to this file, inside the configuration folder",
            message: "file path '/etc/passwd' must be relative to the YAML file"),
        RuleCase(
            "a home-relative secret file path", valid: tenantWithWebhook("secret: {file: ./hook.txt}"),
            invalid: tenantWithWebhook("secret: {file: 1️⃣~/.ssh/id_rsa}"), "spec.path"),
        RuleCase(
            "a secret file path that climbs out with ..", valid: tenantWithWebhook("secret: {file: ../secrets/../hook.txt}"),
            invalid: tenantWithWebhook("secret: {file: 1️⃣../../outside.txt}"), "spec.path-escape",
            message: "file path '../../outside.txt' leads outside the configuration folder"),
    ]

    @Test(arguments: referenceShapes) func secretReferenceShape(_ rule: RuleCase) throws { try rule.check() }

    @Test func secretReferencesAreDecoded() throws {
        let scratch = Scratch.with(
            tenant: tenant("webhooks:\n  a: {url: \"https://a.example.com\", events: [member.added], secret: {env: A_SECRET}}\n  b: {url: \"https://b.example.com\", events: [member.added], secret: {file: ../secrets/b.txt}}"))
        let result = try scratch.load()
        expectClean(result)
        let hooks = try #require(result.configuration?.tenants.first?.webhooks)
        #expect(hooks.first { $0.name == "a" }?.secret?.source == .environment("A_SECRET"))
        #expect(hooks.first { $0.name == "b" }?.secret?.source.description == "{file: ../secrets/b.txt}")
    }

    @Test func secretFileThatIsALinkOutsideIsRefused() throws {
        let outside = Scratch()
        let target = outside.write("secret.txt", "value")
        let scratch = Scratch.with(tenant: tenantWithWebhook("secret: {file: 1️⃣hook.txt}"))
        scratch.symlink("tenants/hook.txt", to: target)
        let result = try scratch.load()
        expectDiagnostic(
            result, "spec.path-escape", at: scratch.markedLocation,
            message: "file 'hook.txt' is a link to a place outside the configuration folder")
        withExtendedLifetime(outside) {}
    }

    @Test func secretFileBehindALinkedFolderOutsideIsRefused() throws {
        let outside = Scratch()
        outside.write("shared/hook.txt", "value")
        let scratch = Scratch.with(tenant: tenantWithWebhook("secret: {file: 1️⃣shared/hook.txt}"))
        scratch.symlink("tenants/shared", to: outside.path("shared"))
        let result = try scratch.load()
        expectDiagnostic(result, "spec.path-escape", at: scratch.markedLocation)
        withExtendedLifetime(outside) {}
    }

    @Test func secretFileLinkedInsideTheFolderIsAccepted() throws {
        let scratch = Scratch.with(tenant: tenantWithWebhook("secret: {file: hook.txt}"))
        scratch.write("secrets/hook.txt", "value")
        scratch.symlink("tenants/hook.txt", to: scratch.path("secrets/hook.txt"))
        try expectClean(scratch.load())
    }

    // MARK: SAML certificates

    static func samlTenant(_ certificate: String) -> String {
        tenant(
            """
            sso:
              providers:
                okta:
                  type: saml
                  entityId: http://www.okta.com/exk1
                  ssoUrl: https://acme.okta.com/app/sso/saml
                  certificate: \(certificate)
            """)
    }

    static func certificateScratch(_ pem: [UInt8], certificate: String = "1️⃣{file: ../certs/idp.pem}") -> Scratch {
        let scratch = Scratch.with(tenant: samlTenant(certificate))
        scratch.writeBytes("certs/idp.pem", pem)
        return scratch
    }

    @Test func validCertificateIsAcceptedAndRead() throws {
        let scratch = Self.certificateScratch(exampleCertificate())
        let result = try scratch.load()
        expectClean(result)
        let provider = try #require(result.configuration?.tenants.first?.sso?.providers?.first)
        let certificate = try #require(provider.certificate)
        #expect(certificate.notAfter.text == "2046-11-17")
        #expect(certificate.subject.contains("acme.okta.com"))
        #expect(certificate.sha256.count == 64)
    }

    @Test func inlinePEMCertificateIsAccepted() throws {
        let pem = String(decoding: exampleCertificate(), as: UTF8.self)
        let indented = pem.split(separator: "\n").map { "        " + $0 }.joined(separator: "\n")
        let scratch = Scratch.with(tenant: Self.samlTenant("|\n" + indented))
        try expectClean(scratch.load())
    }

    @Test func expiredCertificateIsAnError() throws {
        let scratch = Self.certificateScratch(Array(TestCertificates.expired.utf8))
        try expectDiagnostic(
            scratch.load(), "spec.certificate-expired", at: scratch.markedLocation,
            help: "get the current signing certificate from the identity provider",
            message: "certificate of provider 'okta' expired on 2020-01-01")
    }

    @Test func certificateExpiringWithin30DaysIsAWarning() throws {
        let scratch = Self.certificateScratch(Array(TestCertificates.expiring.utf8))
        let result = try scratch.load()
        expectDiagnostic(
            result, "spec.certificate-expiring", .warning, at: scratch.markedLocation,
            help: "rotate the certificate with the identity provider before it expires",
            message: "certificate of provider 'okta' expires on 2026-12-10, within 30 days")
        #expect(result.errors.isEmpty)
        #expect(result.configuration != nil)
    }

    @Test func certificateExpiringAfter30DaysIsClean() throws {
        try expectClean(Self.certificateScratch(Array(TestCertificates.later.utf8)).load())
    }

    @Test func expiryIsJudgedAgainstTheInjectedClock() throws {
        // The same certificate a year earlier is fine, and the valid one is expired in 2050.
        try expectClean(Self.certificateScratch(Array(TestCertificates.expiring.utf8)).load(now: Date(timeIntervalSince1970: 1_763_812_800)))
        let later = Self.certificateScratch(exampleCertificate())
        try expectDiagnostic(
            later.load(now: Date(timeIntervalSince1970: 2_524_608_000)), "spec.certificate-expired", at: later.markedLocation)
    }

    @Test func garbageCertificateIsAnError() throws {
        let scratch = Self.certificateScratch(Array(TestCertificates.garbage.utf8))
        try expectDiagnostic(
            scratch.load(), "spec.certificate", at: scratch.markedLocation,
            help: "give the identity provider's X.509 signing certificate in PEM form (-----BEGIN CERTIFICATE-----)",
            message: "certificate is not usable: ")
    }

    @Test func textThatIsNotPEMIsAnError() throws {
        let scratch = Self.certificateScratch(Array("hello\n".utf8))
        try expectDiagnostic(scratch.load(), "spec.certificate", at: scratch.markedLocation)
    }

    @Test func missingCertificateFileIsAnError() throws {
        let scratch = Scratch.with(tenant: Self.samlTenant("{file: 1️⃣../certs/missing.pem}"))
        try expectDiagnostic(
            scratch.load(), "spec.file-not-found", at: scratch.markedLocation,
            help: "check the path; it is relative to the YAML file that names it")
    }

    @Test func certificatePathThatIsAFolderIsAnError() throws {
        let scratch = Scratch.with(tenant: Self.samlTenant("{file: 1️⃣../certs}"))
        scratch.mkdir("certs")
        try expectDiagnostic(scratch.load(), "spec.file-unreadable", at: scratch.markedLocation)
    }

    @Test func certificateFileLargerThan1MiBIsAnError() throws {
        let scratch = Self.certificateScratch(
            Array(repeating: UInt8(ascii: "A"), count: (1 << 20) + 10), certificate: "{file: 1️⃣../certs/idp.pem}")
        try expectDiagnostic(scratch.load(), "spec.file-too-large", at: scratch.markedLocation)
    }

    @Test func certificateFileOutsideTheFolderIsRefused() throws {
        let scratch = Scratch.with(tenant: Self.samlTenant("{file: 1️⃣../../idp.pem}"))
        try expectDiagnostic(scratch.load(), "spec.path-escape", at: scratch.markedLocation)
        let absolute = Scratch.with(tenant: Self.samlTenant("{file: 1️⃣/etc/ssl/certs/ca-certificates.crt}"))
        try expectDiagnostic(absolute.load(), "spec.path", at: absolute.markedLocation)
    }

    @Test func certificateLinkedFromOutsideIsRefused() throws {
        let outside = Scratch()
        let target = outside.writeBytes("idp.pem", exampleCertificate())
        let scratch = Scratch.with(tenant: Self.samlTenant("{file: 1️⃣../certs/idp.pem}"))
        scratch.mkdir("certs")
        scratch.symlink("certs/idp.pem", to: target)
        try expectDiagnostic(scratch.load(), "spec.path-escape", at: scratch.markedLocation)
        withExtendedLifetime(outside) {}
    }

    @Test func certificateWithExtraKeysIsAnError() throws {
        let scratch = Self.certificateScratch(exampleCertificate(), certificate: "1️⃣{file: ../certs/idp.pem, pin: abc}")
        try expectDiagnostic(scratch.load(), "spec.type", at: scratch.markedLocation, help: "write certificate: {file: certs/idp.pem}")
    }
}
