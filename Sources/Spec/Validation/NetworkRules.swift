import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Checks that outbound URLs (webhooks, SSO endpoints, logos) are https and point at the public
/// internet: never at loopback, private, link-local or cloud-metadata addresses (SSRF), nor at
/// names that only resolve inside a network.
///
/// Every spelling has one meaning or is refused: an IPv4 address must be four decimal numbers
/// without leading zeros (`0127.0.0.1` is 87.0.0.1 to `inet_aton` but 127.0.0.1 to other tools,
/// so every other spelling — decimal, octal, hex, fewer parts — is refused), and an IPv6 address
/// that embeds an IPv4 address (mapped, translated, compatible, NAT64, 6to4) is judged by it.
/// Each refusal names the rule it breaks.
///
/// The rules are public so that other checks use the same ones: the re-check of a saved plan's
/// URLs (``validate(url:)``) and a deliverer's check of the addresses a name resolved to
/// (``refusal(address:)``).
public enum NetworkRules {
    public struct Problem: Error, Sendable, Equatable {
        public var message: String
        public var help: String
    }

    /// Reports a problem with `url` and returns false, or returns true when it is acceptable.
    static func check(url: String, what: String, at node: Node, reader: Reader) -> Bool {
        switch validate(url: url) {
        case .success: return true
        case .failure(let problem):
            reader.error("spec.url", "\(what) \(problem.message)", at: node, help: problem.help)
            return false
        }
    }

    public static func validate(url: String) -> Result<Void, Problem> {
        guard url.utf8.count <= 2048 else {
            return .failure(Problem(message: "is longer than 2048 characters", help: "use a shorter URL"))
        }
        guard url.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            return .failure(Problem(message: "contains spaces, control or non-ASCII characters",
                                    help: "percent-encode the URL, and write international host names in punycode"))
        }
        guard let schemeEnd = url.range(of: "://") else {
            return .failure(Problem(message: "must be an absolute https:// URL", help: "write the URL as https://host/path"))
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "https" else {
            return .failure(Problem(message: "must use https, not \(scheme.isEmpty ? "no scheme" : scheme)",
                                    help: "use an https:// URL; plain http and other schemes are refused"))
        }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if authority.contains("@") {
            return .failure(Problem(message: "must not carry user information ('user@' or 'user:password@')",
                                    help: "remove the credentials from the URL and use the secret field instead"))
        }
        if authority.contains("\\") {
            return .failure(Problem(message: "has a backslash in its host part, which URL parsers read differently",
                                    help: "write the URL as https://host/path"))
        }
        var host: Substring
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                return .failure(Problem(message: "has an unterminated IPv6 address", help: "write the address as [2001:db8::1]"))
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            guard after.isEmpty || (after.hasPrefix(":") && isPort(after.dropFirst())) else {
                return .failure(Problem(message: "has an invalid port", help: "write the port as a number from 1 to 65535"))
            }
            if let rule = refusal(ipv6: String(host)) { return .failure(refused(String(host), rule)) }
            return .success(())
        }
        if let colon = authority.lastIndex(of: ":") {
            guard isPort(authority[authority.index(after: colon)...]) else {
                return .failure(Problem(message: "has an invalid port", help: "write the port as a number from 1 to 65535"))
            }
            host = authority[..<colon]
        } else {
            host = authority
        }
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty else {
            return .failure(Problem(message: "has no host", help: "write the URL as https://host/path"))
        }
        if looksNumeric(name) {
            guard let value = canonicalIPv4(name) else {
                var address = in_addr()
                let reading = inet_aton(name, &address) != 0 ? ", which some tools read as \(dotted(UInt32(bigEndian: address.s_addr)))" : ""
                return .failure(Problem(
                    message: "points at '\(name.prefix(80))', an IPv4 address in an ambiguous spelling (one number, hex, octal, leading zeros or fewer than four parts)\(reading)",
                    help: "write an IPv4 address as four decimal numbers from 0 to 255 without leading zeros, or use a public DNS name"))
            }
            if let rule = refusal(ipv4: value) { return .failure(refused(name, rule)) }
            return .success(())
        }
        // A single label (`metadata`, `kubernetes`) is refused below for what it resolves to, not for its shape.
        guard NamePattern.isDomain(Array(name.utf8)) || (!name.contains(".") && NamePattern.isLabel(Array(name.utf8))) else {
            return .failure(Problem(message: "has an invalid host name '\(name.prefix(80))'",
                                    help: "use a public DNS name such as hooks.example.com"))
        }
        if let rule = refusal(hostName: name) { return .failure(refused(name, rule)) }
        return .success(())
    }

    private static func refused(_ host: String, _ rule: String) -> Problem {
        Problem(message: "points at '\(host.prefix(80))', \(rule)",
                help: "use a public https endpoint; orgctl refuses internal addresses to prevent server-side request forgery")
    }

    private static func isPort(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy(\.isASCIIDigit), let port = Int(text) else { return false }
        return (1...65535).contains(port)
    }

    /// Hosts made only of digits, dots and hex notation are addresses, whatever inet_aton accepts.
    private static func looksNumeric(_ name: String) -> Bool {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard let last = labels.last else { return false }
        return last.allSatisfy(\.isASCIIDigit) || last.hasPrefix("0x")
    }

    /// The value of `text` when it is four decimal numbers 0–255 without leading zeros, else nil.
    public static func canonicalIPv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCIIDigit), !(part.count > 1 && part.first == "0"),
                let number = UInt32(part), number <= 255
            else { return nil }
            value = value << 8 | number
        }
        return value
    }

    private static func dotted(_ a: UInt32) -> String { "\(a >> 24).\(a >> 16 & 0xFF).\(a >> 8 & 0xFF).\(a & 0xFF)" }

    /// Names that resolve only inside a network, with the rule each breaks (longest suffix first).
    static let internalSuffixes: [(suffix: String, rule: String)] = [
        (".cluster.local", "a Kubernetes cluster-internal name (*.cluster.local)"),
        (".home.arpa", "a home-network name (*.home.arpa, RFC 8375)"),
        (".in-addr.arpa", "a reverse-DNS name (*.in-addr.arpa)"),
        (".ip6.arpa", "a reverse-DNS name (*.ip6.arpa)"),
        (".localhost", "a loopback name (*.localhost)"),
        (".localdomain", "a local-machine name (*.localdomain)"),
        (".local", "a multicast-DNS or cluster-local name (*.local)"),
        (".svc", "a Kubernetes service name (*.svc)"),
        (".internal", "an internal name (*.internal, as cloud metadata and private zones use)"),
        (".intranet", "an internal name (*.intranet)"),
        (".private", "an internal name (*.private)"),
        (".corp", "an internal name (*.corp)"),
        (".lan", "an internal name (*.lan)"),
        (".home", "an internal name (*.home)"),
        (".consul", "a service-discovery name (*.consul)"),
        (".onion", "a Tor onion name (*.onion)"),
        (".invalid", "a reserved name that never resolves (*.invalid)"),
        (".nip.io", "a wildcard-DNS name that resolves to the address written in it (*.nip.io)"),
        (".sslip.io", "a wildcard-DNS name that resolves to the address written in it (*.sslip.io)"),
        (".xip.io", "a wildcard-DNS name that resolves to the address written in it (*.xip.io)"),
        (".localtest.me", "a public name that resolves to loopback (*.localtest.me)"),
    ]

    /// Whether a (lower-case, dot-terminated-or-not) DNS name may be called; used for custom domains too.
    static func isPublicHostName(_ name: String) -> Bool { refusal(hostName: name) == nil }

    /// The rule a host name breaks, or nil when it is a public name.
    public static func refusal(hostName raw: String) -> String? {
        var name = raw.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        if name == "localhost" || name == "localtest.me" || name == "lvh.me" { return "a loopback name" }
        if ["metadata.google.internal", "metadata", "instance-data"].contains(name) { return "a cloud metadata service name" }
        for (suffix, rule) in internalSuffixes where name.hasSuffix(suffix) || name == String(suffix.dropFirst()) {
            return rule
        }
        if !name.contains(".") { return "a single-label name, which resolves through the runner's search domains to an internal host" }
        return nil
    }

    /// The rule an IP address written as text (IPv4 dotted decimal or IPv6) breaks, or nil when it
    /// is public. For addresses a name resolved to; a URL's own host goes through ``validate(url:)``.
    public static func refusal(address text: String) -> String? {
        if text.contains(":") { return refusal(ipv6: text) }
        guard let value = canonicalIPv4(text) else { return "an IPv4 address in an ambiguous spelling" }
        return refusal(ipv4: value)
    }

    /// The special-purpose IPv4 blocks (IANA registry) that are not the public internet.
    static let ipv4Blocks: [(network: UInt32, bits: UInt32, rule: String)] = [
        (0x0000_0000, 8, "in 0.0.0.0/8 (this network)"),
        (0x0A00_0000, 8, "a private address (10.0.0.0/8)"),
        (0x6440_0000, 10, "a shared carrier-grade NAT address (100.64.0.0/10)"),
        (0x7F00_0000, 8, "a loopback address (127.0.0.0/8)"),
        (0xA9FE_0000, 16, "a link-local address (169.254.0.0/16, where cloud metadata services answer)"),
        (0xAC10_0000, 12, "a private address (172.16.0.0/12)"),
        (0xC000_0000, 24, "an IETF protocol address (192.0.0.0/24)"),
        (0xC000_0200, 24, "a documentation address (192.0.2.0/24)"),
        (0xC058_6300, 24, "a 6to4 relay anycast address (192.88.99.0/24)"),
        (0xC0A8_0000, 16, "a private address (192.168.0.0/16)"),
        (0xC612_0000, 15, "a benchmarking address (198.18.0.0/15)"),
        (0xC633_6400, 24, "a documentation address (198.51.100.0/24)"),
        (0xCB00_7100, 24, "a documentation address (203.0.113.0/24)"),
        (0xE000_0000, 4, "a multicast address (224.0.0.0/4)"),
        (0xF000_0000, 4, "a reserved or broadcast address (240.0.0.0/4)"),
    ]

    static func refusal(ipv4 a: UInt32) -> String? {
        for block in ipv4Blocks {
            let mask: UInt32 = block.bits == 0 ? 0 : ~UInt32(0) << (32 - block.bits)
            if a & mask == block.network { return block.rule }
        }
        return nil
    }

    static func isPublicIPv4(_ a: UInt32) -> Bool { refusal(ipv4: a) == nil }

    static func refusal(ipv6 text: String) -> String? {
        if text.contains("%") { return "an address with a zone id, which names a local interface" }
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return "not a valid IPv6 address" }
        let b = withUnsafeBytes(of: &address) { Array($0) }
        func v4(_ from: Int) -> UInt32 { b[from..<(from + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }
        func embedded(_ kind: String, _ value: UInt32) -> String? {
            refusal(ipv4: value).map { "\(kind) that embeds \(dotted(value)), \($0)" }
        }
        let zero = { (range: Range<Int>) in b[range].allSatisfy { $0 == 0 } }
        if zero(0..<16) { return "the unspecified address (::)" }
        if zero(0..<15) && b[15] == 1 { return "the loopback address (::1)" }
        if zero(0..<10) && b[10] == 0xFF && b[11] == 0xFF { return embedded("an IPv4-mapped address (::ffff:0:0/96)", v4(12)) }
        if zero(0..<8) && b[8] == 0xFF && b[9] == 0xFF && b[10] == 0 && b[11] == 0 {
            return embedded("an IPv4-translated address (::ffff:0:0:0/96)", v4(12))
        }
        if zero(0..<12) { return "an IPv4-compatible address (::/96, deprecated)" }
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B {
            if zero(4..<12) { return embedded("a NAT64 address (64:ff9b::/96)", v4(12)) }
            if b[4] == 0 && b[5] == 1 { return "a local-use NAT64 address (64:ff9b:1::/48), translated inside a network" }
        }
        if b[0] == 0x01 && b[1] == 0x00 && zero(2..<8) { return "a discard-only address (100::/64)" }
        if b[0] == 0x20 && b[1] == 0x02 { return embedded("a 6to4 address (2002::/16)", v4(2)) }
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0 {
            return "a Teredo address (2001::/32), which tunnels to an IPv4 address it hides"
        }
        if b[0] == 0x20 && b[1] == 0x01 && b[2] & 0xFE == 0 { return "an IETF protocol address (2001::/23)" }
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8 { return "a documentation address (2001:db8::/32)" }
        if b[0] == 0x3F && b[1] == 0xFF && b[2] & 0xF0 == 0 { return "a documentation address (3fff::/20)" }
        if b[0] & 0xFE == 0xFC { return "a unique-local address (fc00::/7)" }
        if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return "a link-local address (fe80::/10)" }
        if b[0] == 0xFE && b[1] & 0xC0 == 0xC0 { return "a site-local address (fec0::/10, deprecated)" }
        if b[0] == 0xFF { return "a multicast address (ff00::/8)" }
        return nil
    }
}

/// An IPv4 or IPv6 network in CIDR notation.
struct CIDR: CustomStringConvertible {
    var text: String
    var description: String { text }

    static func parse(_ text: String) -> Result<CIDR, NetworkRules.Problem> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[1].isEmpty, parts[1].count <= 3, parts[1].allSatisfy(\.isASCIIDigit),
            let bits = Int(parts[1])
        else {
            return .failure(.init(message: "expected an address, '/', and a prefix length",
                                  help: "write a network such as 203.0.113.0/24 or 2001:db8::/32"))
        }
        let address = String(parts[0])
        if address.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, address, &raw) == 1, bits <= 128 else {
                return .failure(.init(message: "the IPv6 address or prefix length (0 to 128) is invalid",
                                      help: "write a network such as 2001:db8::/32"))
            }
            var bytes = withUnsafeBytes(of: &raw) { Array($0) }
            var hostBitsSet = false
            for index in 0..<16 {
                let keep = max(0, min(8, bits - index * 8))
                let mask: UInt8 = keep == 0 ? 0 : ~UInt8(0) << (8 - keep)
                if bytes[index] & ~mask != 0 { hostBitsSet = true }
                bytes[index] &= mask
            }
            if hostBitsSet {
                var network = in6_addr()
                withUnsafeMutableBytes(of: &network) { $0.copyBytes(from: bytes) }
                var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                let shown = inet_ntop(AF_INET6, &network, &text, socklen_t(text.count)) != nil
                    ? String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : address
                return .failure(.init(message: "host bits are set after the /\(bits) prefix", help: "did you mean '\(shown)/\(bits)'?"))
            }
            return .success(CIDR(text: "\(address.lowercased())/\(bits)"))
        }
        var raw = in_addr()
        let octets = address.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) && !($0.count > 1 && $0.first == "0") }),
            inet_pton(AF_INET, address, &raw) == 1, bits <= 32
        else {
            return .failure(.init(message: "the IPv4 address (four decimal numbers 0 to 255) or prefix length (0 to 32) is invalid",
                                  help: "write a network such as 203.0.113.0/24"))
        }
        let value = UInt32(bigEndian: raw.s_addr)
        let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
        if value & ~mask != 0 {
            let network = value & mask
            let suggestion = "\(network >> 24).\(network >> 16 & 0xFF).\(network >> 8 & 0xFF).\(network & 0xFF)/\(bits)"
            return .failure(.init(message: "host bits are set after the /\(bits) prefix", help: "did you mean '\(suggestion)'?"))
        }
        return .success(CIDR(text: "\(address)/\(bits)"))
    }
}
