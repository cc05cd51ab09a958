import Foundation
import Spec
import Testing

/// Outbound URLs must be https and public: no SSRF into loopback, private, link-local or
/// metadata addresses, however the address is spelt.
@Suite struct NetworkRuleTests {
    struct Refused: Sendable, CustomTestStringConvertible {
        var url: String
        /// A fragment of the message.
        var because: String
        var testDescription: String { url }
    }

    static let ssrf = "use a public https endpoint; orgctl refuses internal addresses to prevent server-side request forgery"

    static let refused: [Refused] = [
        Refused(url: "http://hooks.example.com/x", because: "must use https, not http"),
        Refused(url: "ftp://hooks.example.com/x", because: "must use https, not ftp"),
        Refused(url: "file:///etc/passwd", because: "must use https, not file"),
        Refused(url: "gopher://hooks.example.com:70/x", because: "must use https, not gopher"),
        Refused(url: "javascript:alert(1)", because: "must be an absolute https:// URL"),
        Refused(url: "://hooks.example.com/x", because: "must use https, not no scheme"),
        Refused(url: "hooks.example.com/x", because: "must be an absolute https:// URL"),
        Refused(url: "https://127.0.0.1/x", because: "points at '127.0.0.1'"),
        Refused(url: "https://127.1/x", because: "points at '127.1'"),
        Refused(url: "https://0.0.0.0/x", because: "a loopback, private, link-local or metadata address"),
        Refused(url: "https://10.1.2.3/x", because: "points at '10.1.2.3'"),
        Refused(url: "https://172.16.0.1/x", because: "points at '172.16.0.1'"),
        Refused(url: "https://172.31.255.254/x", because: "points at '172.31.255.254'"),
        Refused(url: "https://192.168.1.1:8443/x", because: "points at '192.168.1.1'"),
        Refused(url: "https://169.254.169.254/latest/meta-data/", because: "points at '169.254.169.254'"),
        Refused(url: "https://100.64.0.1/x", because: "points at '100.64.0.1'"),
        Refused(url: "https://metadata.google.internal/computeMetadata/v1/", because: "points at 'metadata.google.internal'"),
        Refused(url: "https://localhost/x", because: "points at 'localhost'"),
        Refused(url: "https://LOCALHOST:8080/x", because: "points at 'localhost'"),
        Refused(url: "https://localhost./x", because: "points at 'localhost'"),
        Refused(url: "https://api.localhost/x", because: "points at 'api.localhost'"),
        Refused(url: "https://printer.local/x", because: "points at 'printer.local'"),
        Refused(url: "https://2130706433/x", because: "points at '2130706433'"),
        Refused(url: "https://0177.0.0.1/x", because: "points at '0177.0.0.1'"),
        Refused(url: "https://0x7f000001/x", because: "points at '0x7f000001'"),
        Refused(url: "https://0x7f.0.0.1/x", because: "points at '0x7f.0.0.1'"),
        Refused(url: "https://[::1]/x", because: "points at '::1'"),
        Refused(url: "https://[::1]:8443/x", because: "points at '::1'"),
        Refused(url: "https://[::]/x", because: "points at '::'"),
        Refused(url: "https://[::ffff:127.0.0.1]/x", because: "points at '::ffff:127.0.0.1'"),
        Refused(url: "https://[::ffff:a9fe:a9fe]/x", because: "points at '::ffff:a9fe:a9fe'"),
        Refused(url: "https://[fe80::1]/x", because: "points at 'fe80::1'"),
        Refused(url: "https://[fd00::1]/x", because: "points at 'fd00::1'"),
        Refused(url: "https://[fe80::1%25eth0]/x", because: "a loopback, private, link-local or metadata address"),
        Refused(url: "https://user:pass@hooks.example.com/x", because: "must not carry user information"),
        Refused(url: "https://hooks.example.com@169.254.169.254/x", because: "must not carry user information"),
        Refused(url: "https://hooks.example.com:0/x", because: "has an invalid port"),
        Refused(url: "https://hooks.example.com:99999/x", because: "has an invalid port"),
        Refused(url: "https://[::1/x", because: "has an unterminated IPv6 address"),
        Refused(url: "https://hooks.exa mple.com/x", because: "contains spaces, control or non-ASCII characters"),
        Refused(url: "https://bücher.example/x", because: "contains spaces, control or non-ASCII characters"),
        Refused(url: "https:///x", because: "has no host"),
        Refused(url: "https://under_score.example.com/x", because: "has an invalid host name"),
    ]

    @Test(arguments: refused) func refusedWebhookURL(_ case_: Refused) throws {
        let valid = Scratch.with(tenant: tenantWithWebhook(url: "https://hooks.example.com/x"))
        try expectClean(valid.load())
        let scratch = Scratch.with(tenant: tenantWithWebhook(url: "\(marker)\"\(case_.url)\""))
        let result = try scratch.load()
        let found = expectDiagnostic(result, "spec.url", at: scratch.markedLocation, message: "webhook url ")
        #expect(found?.message.contains(case_.because) == true, "\(found.map(render) ?? "")")
        if case_.because.hasPrefix("points at") || case_.because.hasPrefix("a loopback") {
            #expect(found?.help == Self.ssrf)
        }
        #expect(result.configuration == nil)
    }

    static let accepted = [
        "https://hooks.slack.com/services/T000/B000/XXXX",
        "HTTPS://Hooks.Example.COM/x",
        "https://hooks.example.com:8443/path?query=1#fragment",
        "https://hooks.example.com./x",
        "https://8.8.8.8/x",
        "https://172.32.0.1/x",
        "https://192.169.0.1/x",
        "https://[2606:4700:4700::1111]/x",
        "https://[2606:4700:4700::1111]:443/x",
        "https://xn--bcher-kva.example/x",
        "https://10.example.com/x",
    ]

    @Test(arguments: accepted) func acceptedWebhookURL(_ url: String) throws {
        let result = try Scratch.with(tenant: tenantWithWebhook(url: "\"\(url)\"")).load()
        expectClean(result)
        #expect(result.configuration?.tenants.first?.webhooks?.first?.url.value == url)
    }

    /// The same rules hold for every outbound URL field, not only webhooks.
    @Test func everyURLFieldIsChecked() throws {
        let scratch = Scratch.with(
            tenant: tenant(
                """
                branding: {logoUrl: 1️⃣"http://cdn.acme.com/logo.png"}
                sso:
                  providers:
                    g: {type: oidc, issuer: "https://169.254.169.254/", clientId: x, clientSecret: {env: G}}
                """))
        let result = try scratch.load()
        expectDiagnostic(result, "spec.url", at: scratch.markedLocation, message: "logoUrl must use https, not http")
        expectDiagnostic(
            result, "spec.url", at: Spec.SourceLocation(file: scratch.path("tenants/acme.yaml"), line: 12, column: 29),
            help: Self.ssrf, message: "issuer points at '169.254.169.254'")
    }
}
