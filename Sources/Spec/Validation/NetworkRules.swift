import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Checks that outbound URLs (webhooks, SSO endpoints, logos) are https and point at the public
/// internet: never at loopback, private, link-local or cloud-metadata addresses (SSRF), however
/// the address is spelt (decimal `2130706433`, octal `0177.0.0.1`, hex, IPv4-mapped IPv6).
enum NetworkRules {
    struct Problem: Error {
        var message: String
        var help: String
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

    static func validate(url: String) -> Result<Void, Problem> {
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
            return checkIPv6(String(host)) ? .success(()) : .failure(privateAddress(String(host)))
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
            var address = in_addr()
            if inet_aton(name, &address) != 0 {
                let value = UInt32(bigEndian: address.s_addr)
                return isPublicIPv4(value) ? .success(()) : .failure(privateAddress(name))
            }
            return .failure(Problem(message: "has a host '\(name)' that is neither a name nor an address",
                                    help: "use a public DNS name"))
        }
        guard NamePattern.isDomain(Array(name.utf8)) || name == "localhost" else {
            return .failure(Problem(message: "has an invalid host name '\(name.prefix(80))'",
                                    help: "use a public DNS name such as hooks.example.com"))
        }
        guard isPublicHostName(name) else { return .failure(privateAddress(name)) }
        return .success(())
    }

    private static func privateAddress(_ host: String) -> Problem {
        Problem(message: "points at '\(host.prefix(80))', a loopback, private, link-local or metadata address",
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

    /// Names that resolve to the local machine or cloud metadata services.
    static func isPublicHostName(_ name: String) -> Bool {
        let internalNames = ["localhost", "metadata.google.internal", "metadata", "instance-data"]
        if internalNames.contains(name) { return false }
        for suffix in [".localhost", ".internal", ".local", ".localdomain", ".home.arpa", ".in-addr.arpa", ".ip6.arpa"]
        where name.hasSuffix(suffix) {
            return false
        }
        return true
    }

    static func isPublicIPv4(_ a: UInt32) -> Bool {
        let blocked: [(UInt32, UInt32)] = [
            (0x0000_0000, 8), (0x0A00_0000, 8), (0x6440_0000, 10), (0x7F00_0000, 8), (0xA9FE_0000, 16),
            (0xAC10_0000, 12), (0xC000_0000, 24), (0xC000_0200, 24), (0xC0A8_0000, 16), (0xC612_0000, 15),
            (0xC633_6400, 24), (0xCB00_7100, 24), (0xE000_0000, 4), (0xF000_0000, 4),
        ]
        for (network, bits) in blocked {
            let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
            if a & mask == network { return false }
        }
        return true
    }

    static func checkIPv6(_ text: String) -> Bool {
        if text.contains("%") { return false }  // zone ids name local interfaces
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return false }
        let bytes = withUnsafeBytes(of: &address) { Array($0) }
        let allZeroPrefix = bytes[0..<10].allSatisfy { $0 == 0 }
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses: judge the IPv4 part.
        if allZeroPrefix && ((bytes[10] == 0xFF && bytes[11] == 0xFF) || (bytes[10] == 0 && bytes[11] == 0)) {
            let v4 = bytes[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            return isPublicIPv4(v4)
        }
        // NAT64 well-known prefix 64:ff9b::/96 embeds IPv4 too.
        if bytes[0..<12] == [0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0][...] {
            let v4 = bytes[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            return isPublicIPv4(v4)
        }
        if bytes[0] & 0xFE == 0xFC { return false }  // unique local fc00::/7
        if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return false }  // link-local fe80::/10
        if bytes[0] == 0xFF { return false }  // multicast
        if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0D && bytes[3] == 0xB8 { return false }  // documentation
        return true
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
