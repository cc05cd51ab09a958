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
        Refused(url: "https://127.1/x", because: "points at '127.1', an IPv4 address in an ambiguous spelling"),
        Refused(url: "https://0.0.0.0/x", because: "in 0.0.0.0/8 (this network)"),
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
        Refused(url: "https://2130706433/x", because: "points at '2130706433', an IPv4 address in an ambiguous spelling"),
        Refused(url: "https://0177.0.0.1/x", because: "points at '0177.0.0.1', an IPv4 address in an ambiguous spelling"),
        Refused(url: "https://0x7f000001/x", because: "points at '0x7f000001', an IPv4 address in an ambiguous spelling"),
        Refused(url: "https://0x7f.0.0.1/x", because: "points at '0x7f.0.0.1', an IPv4 address in an ambiguous spelling"),
        Refused(url: "https://[::1]/x", because: "points at '::1'"),
        Refused(url: "https://[::1]:8443/x", because: "points at '::1'"),
        Refused(url: "https://[::]/x", because: "points at '::'"),
        Refused(url: "https://[::ffff:127.0.0.1]/x", because: "points at '::ffff:127.0.0.1'"),
        Refused(url: "https://[::ffff:a9fe:a9fe]/x", because: "points at '::ffff:a9fe:a9fe'"),
        Refused(url: "https://[fe80::1]/x", because: "points at 'fe80::1'"),
        Refused(url: "https://[fd00::1]/x", because: "points at 'fd00::1'"),
        Refused(url: "https://[fe80::1%25eth0]/x", because: "an address with a zone id"),
        // Every other spelling of an IPv4 address is ambiguous (inet_aton reads 0127 as octal 87, other tools as 127).
        Refused(url: "https://0127.0.0.1/x", because: "an IPv4 address in an ambiguous spelling"),
        Refused(url: "https://127.0.0.01/x", because: "an IPv4 address in an ambiguous spelling"),
        Refused(url: "https://8.8.8.010/x", because: "an IPv4 address in an ambiguous spelling"),
        Refused(url: "https://010.1/x", because: "which some tools read as 8.0.0.1"),
        Refused(url: "https://134744072/x", because: "an IPv4 address in an ambiguous spelling"),
        Refused(url: "https://256.1.1.1/x", because: "an IPv4 address in an ambiguous spelling"),
        Refused(url: "https://192.88.99.1/x", because: "a 6to4 relay anycast address (192.88.99.0/24)"),
        Refused(url: "https://10.0.0.1/x", because: "a private address (10.0.0.0/8)"),
        // IPv6 addresses that embed or reach an IPv4 address, and the other special blocks.
        Refused(url: "https://[2002:7f00:1::1]/x", because: "a 6to4 address (2002::/16) that embeds 127.0.0.1, a loopback address"),
        Refused(url: "https://[2002:a9fe:a9fe::]/x", because: "embeds 169.254.169.254, a link-local address"),
        Refused(url: "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x", because: "a Teredo address (2001::/32)"),
        Refused(url: "https://[2001::1]/x", because: "a Teredo address (2001::/32)"),
        Refused(url: "https://[2001:2::1]/x", because: "an IETF protocol address (2001::/23)"),
        Refused(url: "https://[64:ff9b::a00:1]/x", because: "a NAT64 address (64:ff9b::/96) that embeds 10.0.0.1"),
        Refused(url: "https://[64:ff9b::127.0.0.1]/x", because: "embeds 127.0.0.1"),
        Refused(url: "https://[64:ff9b:1::8.8.8.8]/x", because: "a local-use NAT64 address (64:ff9b:1::/48)"),
        Refused(url: "https://[::ffff:0:10.0.0.1]/x", because: "an IPv4-translated address (::ffff:0:0:0/96) that embeds 10.0.0.1"),
        Refused(url: "https://[::ffff:0:7f00:1]/x", because: "an IPv4-translated address"),
        Refused(url: "https://[::10.0.0.1]/x", because: "an IPv4-compatible address (::/96, deprecated)"),
        Refused(url: "https://[::8.8.8.8]/x", because: "an IPv4-compatible address"),
        Refused(url: "https://[fec0::1]/x", because: "a site-local address (fec0::/10, deprecated)"),
        Refused(url: "https://[feff::1]/x", because: "a site-local address"),
        Refused(url: "https://[100::1]/x", because: "a discard-only address (100::/64)"),
        Refused(url: "https://[3fff::1]/x", because: "a documentation address (3fff::/20)"),
        Refused(url: "https://[2001:db8::1]/x", because: "a documentation address (2001:db8::/32)"),
        // Names that resolve only inside a network.
        Refused(url: "https://api.default.svc/x", because: "a Kubernetes service name (*.svc)"),
        Refused(url: "https://api.default.svc.cluster.local/x", because: "a Kubernetes cluster-internal name (*.cluster.local)"),
        Refused(url: "https://vault.internal/x", because: "an internal name (*.internal"),
        Refused(url: "https://git.corp/x", because: "an internal name (*.corp)"),
        Refused(url: "https://nas.lan/x", because: "an internal name (*.lan)"),
        Refused(url: "https://router.home/x", because: "an internal name (*.home)"),
        Refused(url: "https://box.localdomain/x", because: "a local-machine name (*.localdomain)"),
        Refused(url: "https://printer.home.arpa/x", because: "a home-network name (*.home.arpa"),
        Refused(url: "https://127.0.0.1.nip.io/x", because: "a wildcard-DNS name"),
        Refused(url: "https://kubernetes/x", because: "a single-label name"),
        Refused(url: "https://metadata/x", because: "a cloud metadata service name"),
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
        if found?.message.contains("ambiguous spelling") == false && found?.message.contains("points at") == true {
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
        "https://[2002:808:808::1]/x",
        "https://[64:ff9b::8.8.8.8]/x",
        "https://internal.example.com/x",
        "https://svc.example.com/x",
    ]

    /// The same rules, for the addresses a name resolved to (what a deliverer re-checks).
    @Test(arguments: [
        ("127.0.0.1", "a loopback address (127.0.0.0/8)"), ("0127.0.0.1", "an IPv4 address in an ambiguous spelling"),
        ("::ffff:169.254.169.254", "an IPv4-mapped address (::ffff:0:0/96) that embeds 169.254.169.254"),
        ("2002:c0a8:101::1", "embeds 192.168.1.1"), ("fec0::1", "a site-local address (fec0::/10, deprecated)"),
    ])
    func resolvedAddressesAreJudgedByTheSameRules(_ address: String, _ rule: String) {
        #expect(NetworkRules.refusal(address: address)?.contains(rule) == true, "\(NetworkRules.refusal(address: address) ?? "accepted")")
    }

    @Test func publicResolvedAddressesAreAccepted() {
        #expect(NetworkRules.refusal(address: "8.8.8.8") == nil)
        #expect(NetworkRules.refusal(address: "2606:4700:4700::1111") == nil)
        #expect(NetworkRules.refusal(hostName: "hooks.slack.com") == nil)
    }

    @Test func aBackslashInTheHostPartIsRefused() throws {
        guard case .failure(let problem) = NetworkRules.validate(url: "https://169.254.169.254\\.example.com/x") else {
            Issue.record("accepted")
            return
        }
        #expect(problem.message.contains("backslash"))
    }

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
