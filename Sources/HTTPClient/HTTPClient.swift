internal import CCurl
import Foundation
import Spec

#if canImport(Glibc)
    import Glibc
#endif

/// One POST of a webhook delivery.
public struct HTTPRequest: Sendable {
    public var url: String
    /// Sent in this order; names and values must not hold CR or LF (refused otherwise).
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public var timeoutSeconds: Int

    public init(url: String, headers: [(name: String, value: String)], body: [UInt8], timeoutSeconds: Int) {
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutSeconds = timeoutSeconds
    }
}

/// What came back: the status, the `Retry-After` header, and the first bytes of the body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var retryAfter: String?
    public var bodyPrefix: [UInt8]
    /// The body was longer than the cap; reading stopped there.
    public var bodyTruncated: Bool
    /// The connected address (after the checks).
    public var address: String
}

/// Why no response was received.
public struct HTTPFailure: Error, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The URL or an address it resolved to is not allowed (SSRF rules): nothing was sent.
        case refused
        /// Name resolution failed: nothing was sent (a failed resolution never falls back to anything).
        case resolution
        case timeout
        /// Connection, TLS or protocol failure.
        case network
    }
    public var kind: Kind
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }
}

/// A network orgctl may deliver to although its addresses are not public (`--allow-private`).
public struct AllowedNetwork: Sendable, Equatable, CustomStringConvertible {
    let family: Int32
    let bytes: [UInt8]
    let bits: Int
    public let description: String

    /// Parses `address/bits` (IPv4 or IPv6); nil when it is not one.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bits = Int(parts[1]), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
            let (family, bytes) = Self.parseAddress(String(parts[0])), bits >= 0, bits <= bytes.count * 8
        else { return nil }
        self.family = family
        self.bytes = bytes
        self.bits = bits
        description = text
    }

    static func parseAddress(_ text: String) -> (Int32, [UInt8])? {
        if text.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            return (AF_INET6, withUnsafeBytes(of: &raw) { Array($0) })
        }
        // One spelling per address, as validation reads it (no octal, hex or short forms).
        guard NetworkRules.canonicalIPv4(text) != nil else { return nil }
        var raw = in_addr()
        guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
        return (AF_INET, withUnsafeBytes(of: &raw) { Array($0) })
    }

    func contains(_ address: String) -> Bool {
        guard let (family, bytes) = Self.parseAddress(address), family == self.family else { return false }
        var remaining = bits
        for index in 0..<bytes.count where remaining > 0 {
            let take = min(8, remaining)
            let mask: UInt8 = ~UInt8(0) << (8 - take)
            if bytes[index] & mask != self.bytes[index] & mask { return false }
            remaining -= take
        }
        return true
    }
}

/// `HOST:PORT:ADDRESS` (curl's `--resolve`): the address used for that host and port instead of
/// a DNS lookup. The address is still checked against the SSRF rules.
public struct ResolveOverride: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var address: String

    public init?(_ text: String) {
        // HOST:PORT:ADDRESS, where ADDRESS may be an IPv6 address (with or without brackets).
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
        var address = String(parts[2])
        if address.hasPrefix("["), address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
        guard let canonical = HTTPClient.canonicalAddress(address) else { return nil }
        host = parts[0].lowercased()
        self.port = port
        self.address = canonical
    }
}

/// An HTTPS client for webhook deliveries, on libcurl, with the SSRF rules enforced at the moment
/// of delivery:
///
/// - https only (`CURLOPT_PROTOCOLS_STR`), TLS verified (the system CAs, or `caFile`);
/// - redirects are never followed (a 3xx is returned as it is);
/// - no proxy, whatever the environment says (`CURLOPT_NOPROXY "*"`, `CURLOPT_PROXY ""`);
/// - the host is resolved here, once; every address must pass ``NetworkRules/refusal(address:)``
///   (or lie in an `allowPrivate` network), and a failed resolution refuses; the addresses are
///   pinned with `CURLOPT_RESOLVE`, so curl does no second lookup (no DNS rebinding window), and a
///   socket callback (`CURLOPT_OPENSOCKETFUNCTION`) refuses any connection to another address;
/// - the timeout covers the whole request; the body read is capped.
///
/// One instance reuses one curl handle, and so its kept-alive connections; use it from one thread.
/// A reused connection never goes around the address check: the host is resolved and checked for
/// every request, and a connection is reused only while every address the host's connections were
/// pinned to is among the addresses checked now. When the answer changed (DNS changed), every
/// connection of the handle is closed first, so the request opens a new one, which the socket
/// callback vetoes unless it goes to an address just checked. After each transfer the connected
/// address is compared with the checked ones once more.
public final class HTTPClient {
    public struct Options: Sendable {
        public var allowPrivate: [AllowedNetwork] = []
        public var resolve: [ResolveOverride] = []
        public var caFile: String?
        /// Bytes of the response body kept; a longer body stops the transfer.
        public var maxBodyBytes = 64 * 1024
        public init() {}
    }

    /// Internal and variable so that a test can change `resolve` between requests (a DNS change).
    var options: Options
    private var handle: UnsafeMutableRawPointer  // CURL *
    /// `host:port` -> the checked addresses of its last request: the addresses the handle's
    /// kept-alive connections to that host and port can lead to.
    private var pinnedFor: [String: Set<String>] = [:]
    /// Connections opened so far (each request either opens one or reuses one kept alive).
    public private(set) var connectionsOpened = 0
    private let pin: UnsafeMutablePointer<ccurl_pin>
    private let sink: UnsafeMutablePointer<ccurl_sink>
    private let buffer: UnsafeMutablePointer<UInt8>

    /// nil when libcurl cannot be initialised.
    public init?(options: Options) {
        guard let handle = curl_easy_init() else { return nil }
        self.options = options
        self.handle = handle
        pin = .allocate(capacity: 1)
        pin.initialize(to: ccurl_pin())
        buffer = .allocate(capacity: max(1, options.maxBodyBytes))
        sink = .allocate(capacity: 1)
        sink.initialize(to: ccurl_sink(bytes: buffer, capacity: options.maxBodyBytes, length: 0, overflowed: 0))
    }

    deinit {
        curl_easy_cleanup(handle)
        pin.deallocate()
        sink.deallocate()
        buffer.deallocate()
    }

    /// Closes every kept-alive connection (a new handle); false when libcurl cannot make one.
    private func dropConnections() -> Bool {
        guard let fresh = curl_easy_init() else { return false }
        curl_easy_cleanup(handle)
        handle = fresh
        pinnedFor = [:]
        return true
    }

    /// The libcurl version linked at run time.
    public static var libraryVersion: String { String(cString: curl_version()) }

    /// inet_ntop's spelling of an IPv4 or IPv6 address, or nil when `text` is not one.
    public static func canonicalAddress(_ text: String) -> String? {
        guard let (family, bytes) = AllowedNetwork.parseAddress(text) else { return nil }
        return format(family: family, bytes: bytes)
    }

    static func format(family: Int32, bytes: [UInt8]) -> String? {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) } != nil
        return ok ? String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }

    /// The host and port of an https URL that passes validation, or a refusal.
    static func target(of url: String) -> Result<(host: String, port: Int), HTTPFailure> {
        if case .failure(let problem) = NetworkRules.validate(url: url) {
            return .failure(HTTPFailure(kind: .refused, message: "the URL \(problem.message)"))
        }
        let rest = url[url.range(of: "://")!.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        var host = Substring(authority)
        var port = 443
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { port = Int(after.dropFirst()) ?? 443 }
        } else if let colon = authority.lastIndex(of: ":") {
            port = Int(authority[authority.index(after: colon)...]) ?? 443
            host = authority[..<colon]
        }
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return .success((name, port))
    }

    /// The addresses `host` resolves to (or its override), each checked; nothing is returned
    /// unless every one is allowed.
    func checkedAddresses(host: String, port: Int) -> Result<[String], HTTPFailure> {
        var addresses: [String]
        if let override = options.resolve.first(where: { $0.host == host && $0.port == port }) {
            addresses = [override.address]
        } else if let literal = Self.canonicalAddress(host) {
            addresses = [literal]
        } else {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &list)
            guard rc == 0, let first = list else {
                let reason = rc == 0 ? "no address" : String(cString: gai_strerror(rc))
                return .failure(HTTPFailure(kind: .resolution, message: "cannot resolve '\(host)': \(reason); nothing was sent"))
            }
            defer { freeaddrinfo(list) }
            addresses = []
            var entry: UnsafeMutablePointer<addrinfo>? = first
            while let current = entry {
                if let sockaddr = current.pointee.ai_addr {
                    let family = current.pointee.ai_family
                    var bytes: [UInt8] = []
                    if family == AF_INET {
                        sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { var a = $0.pointee.sin_addr; bytes = withUnsafeBytes(of: &a) { Array($0) } }
                    } else if family == AF_INET6 {
                        sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { var a = $0.pointee.sin6_addr; bytes = withUnsafeBytes(of: &a) { Array($0) } }
                    }
                    if !bytes.isEmpty, let text = Self.format(family: family, bytes: bytes), !addresses.contains(text) { addresses.append(text) }
                }
                entry = current.pointee.ai_next
            }
            guard !addresses.isEmpty else {
                return .failure(HTTPFailure(kind: .resolution, message: "'\(host)' resolved to no IPv4 or IPv6 address; nothing was sent"))
            }
        }
        addresses = Array(addresses.prefix(Int(CCURL_MAX_PINNED)))
        for address in addresses {
            guard let rule = NetworkRules.refusal(address: address) else { continue }
            if options.allowPrivate.contains(where: { $0.contains(address) }) { continue }
            return .failure(HTTPFailure(kind: .refused, message: "'\(host)' resolves to \(address), \(rule); nothing was sent (an operator may allow it with --allow-private)"))
        }
        return .success(addresses)
    }

    /// Sends `request` as a POST; never follows a redirect.
    public func post(_ request: HTTPRequest) -> Result<HTTPResponse, HTTPFailure> {
        let target: (host: String, port: Int)
        switch Self.target(of: request.url) {
        case .failure(let failure): return .failure(failure)
        case .success(let found): target = found
        }
        for (name, value) in request.headers where (name + value).contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) {
            return .failure(HTTPFailure(kind: .refused, message: "header '\(name)' holds a line break"))
        }
        let addresses: [String]
        switch checkedAddresses(host: target.host, port: target.port) {
        case .failure(let failure): return .failure(failure)
        case .success(let found): addresses = found
        }
        let pinKey = "\(target.host):\(target.port)"
        let checked = Set(addresses)
        // A kept-alive connection leads to an address checked for an earlier request; unless every
        // such address is still among those checked now, no connection of this handle is reused.
        if let earlier = pinnedFor[pinKey], !earlier.isSubset(of: checked) {
            guard dropConnections() else {
                return .failure(HTTPFailure(kind: .network, message: "libcurl could not be initialised; nothing was sent"))
            }
        }
        pinnedFor[pinKey] = checked

        curl_easy_reset(handle)
        pin.pointee = ccurl_pin()
        withUnsafeMutableBytes(of: &pin.pointee.addresses) { raw in
            let stride = Int(INET6_ADDRSTRLEN)
            for (index, address) in addresses.enumerated() {
                for (offset, byte) in address.utf8.prefix(stride - 1).enumerated() { raw[index * stride + offset] = byte }
            }
        }
        pin.pointee.count = Int32(addresses.count)
        sink.pointee.length = 0
        sink.pointee.overflowed = 0

        let shown = addresses.map { $0.contains(":") ? "[\($0)]" : $0 }.joined(separator: ",")
        var resolve: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "\(target.host):\(target.port):\(shown)")
        var headers: UnsafeMutablePointer<curl_slist>?
        for (name, value) in request.headers { headers = curl_slist_append(headers, "\(name): \(value)") }
        // No "Expect: 100-continue" round trip.
        headers = curl_slist_append(headers, "Expect:")
        defer {
            curl_slist_free_all(resolve)
            curl_slist_free_all(headers)
            resolve = nil
        }

        var rc = CURLE_OK
        func set(_ option: CURLoption, _ value: Int) { if rc == CURLE_OK { rc = ccurl_setopt_long(handle, option, value) } }
        func set(_ option: CURLoption, _ value: String) { if rc == CURLE_OK { rc = ccurl_setopt_string(handle, option, value) } }
        set(CURLOPT_URL, request.url)
        set(CURLOPT_PROTOCOLS_STR, "https")
        set(CURLOPT_REDIR_PROTOCOLS_STR, "https")
        set(CURLOPT_FOLLOWLOCATION, 0)
        set(CURLOPT_NOPROXY, "*")
        set(CURLOPT_PROXY, "")
        set(CURLOPT_SSL_VERIFYPEER, 1)
        set(CURLOPT_SSL_VERIFYHOST, 2)
        set(CURLOPT_NOSIGNAL, 1)
        set(CURLOPT_TIMEOUT_MS, max(1, request.timeoutSeconds) * 1000)
        set(CURLOPT_CONNECTTIMEOUT_MS, min(10, max(1, request.timeoutSeconds)) * 1000)
        set(CURLOPT_USERAGENT, "orgctl-webhooks/1")
        if let caFile = options.caFile { set(CURLOPT_CAINFO, caFile) }
        if rc == CURLE_OK { rc = ccurl_setopt_list(handle, CURLOPT_RESOLVE, resolve) }
        if rc == CURLE_OK { rc = ccurl_setopt_list(handle, CURLOPT_HTTPHEADER, headers) }
        if rc == CURLE_OK { rc = ccurl_install(handle, pin, sink) }
        guard rc == CURLE_OK else {
            return .failure(HTTPFailure(kind: .network, message: "libcurl refused an option: \(String(cString: curl_easy_strerror(rc)))"))
        }
        rc = request.body.withUnsafeBufferPointer { body in
            var code = ccurl_setopt_body(handle, body.baseAddress, body.count)
            if code == CURLE_OK { code = curl_easy_perform(handle) }
            return code
        }
        let status = ccurl_response_code(handle)
        connectionsOpened += ccurl_new_connections(handle)
        if pin.pointee.refused != 0 {
            let address = withUnsafeBytes(of: &pin.pointee.refusedAddress) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return .failure(HTTPFailure(kind: .refused, message: "the connection to \(address.isEmpty ? "an unchecked address" : address) was refused: it is not an address that was checked; nothing was sent"))
        }
        // A request that was sent went to a checked address. Cannot fail with the checks above; if it
        // ever did, no connection of this handle is trusted again.
        if status > 0 || rc == CURLE_OK, let connected = ccurl_primary_ip(handle).map({ String(cString: $0) }),
            !checked.contains(Self.canonicalAddress(connected) ?? connected)
        {
            _ = dropConnections()
            return .failure(HTTPFailure(kind: .refused, message: "the request went to \(connected), which is not an address that was checked"))
        }
        let overflowed = sink.pointee.overflowed != 0
        // A body over the cap stops the transfer; the status line was read, so it is a response.
        guard rc == CURLE_OK || (overflowed && status > 0) else {
            let kind: HTTPFailure.Kind = rc == CURLE_OPERATION_TIMEDOUT ? .timeout : .network
            let message = rc == CURLE_OPERATION_TIMEDOUT ? "no response within \(request.timeoutSeconds)s" : String(cString: curl_easy_strerror(rc))
            return .failure(HTTPFailure(kind: kind, message: message))
        }
        let retryAfter = ccurl_header(handle, "Retry-After").map { String(cString: $0) }
        let prefix = Array(UnsafeBufferPointer(start: buffer, count: sink.pointee.length))
        return .success(HTTPResponse(status: status, retryAfter: retryAfter, bodyPrefix: prefix, bodyTruncated: overflowed,
                                     address: addresses.first ?? ""))
    }
}
