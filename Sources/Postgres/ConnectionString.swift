internal import CPostgres

/// The options a connection string sets explicitly (not the environment's defaults), as
/// `PQconninfoParse` reads them, in libpq's keyword order.
struct ConnectionOptions {
    var options: [(keyword: String, value: String)]

    /// Keywords whose values are secrets: never printed.
    static let secretKeywords: Set<String> = ["password", "sslpassword"]

    /// nil when libpq cannot parse the string. libpq's own message is dropped: it quotes the
    /// offending token, which can be part of a password.
    static func parse(_ conninfo: String) -> ConnectionOptions? {
        guard !conninfo.utf8.contains(0) else { return nil }
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let parsed = PQconninfoParse(conninfo, &errorMessage) else {
            if let errorMessage { PQfreemem(errorMessage) }
            return nil
        }
        defer { PQconninfoFree(parsed) }
        var options: [(keyword: String, value: String)] = []
        var cursor = parsed
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val {
                options.append((String(cString: keyword), String(cString: value)))
            }
            cursor += 1
        }
        return ConnectionOptions(options: options)
    }

    func value(_ keyword: String) -> String? {
        options.first(where: { $0.keyword == keyword })?.value
    }

    /// The values of the secret keywords that are set.
    var secrets: [String] {
        options.filter { Self.secretKeywords.contains($0.keyword) && !$0.value.isEmpty }.map(\.value)
    }
}

extension PostgresConnection {
    /// True for strings orgctl treats as PostgreSQL: the `postgres://` or `postgresql://` prefix
    /// (libpq's URI prefixes; like libpq, case-sensitive).
    public static func isConnectionURI(_ text: String) -> Bool {
        text.hasPrefix("postgresql://") || text.hasPrefix("postgres://")
    }

    /// The connection string without its password (and `sslpassword`), for messages. Rebuilt from
    /// what `PQconninfoParse` reads, so percent-encoded and quoted passwords go too; a URI stays
    /// a URI (`postgresql://…`), a key=value string stays key=value. Never throws: a string
    /// libpq cannot parse gives "postgresql://(unparsable connection string)".
    public static func redacted(_ conninfo: String) -> String {
        guard let parsed = ConnectionOptions.parse(conninfo) else {
            return "postgresql://(unparsable connection string)"
        }
        let kept = parsed.options.filter { !ConnectionOptions.secretKeywords.contains($0.keyword) }
        return isConnectionURI(conninfo) ? uriString(kept) : keyValueString(kept)
    }

    private static func uriString(_ options: [(keyword: String, value: String)]) -> String {
        var rest = options
        func take(_ keyword: String) -> String? {
            guard let index = rest.firstIndex(where: { $0.keyword == keyword }) else { return nil }
            return rest.remove(at: index).value
        }
        let user = take("user")
        let dbname = take("dbname")
        var authority = ""
        if let user { authority += percentEncoded(user) + "@" }
        let host = rest.first(where: { $0.keyword == "host" })?.value
        let port = rest.first(where: { $0.keyword == "port" })?.value
        if let hostList = authorityHosts(host: host, port: port) {
            authority += hostList
            _ = take("host")
            _ = take("port")
        }
        var text = "postgresql://" + authority
        if let dbname { text += "/" + percentEncoded(dbname) }
        if !rest.isEmpty {
            text += "?" + rest.map { "\($0.keyword)=\(percentEncoded($0.value))" }.joined(separator: "&")
        }
        return text
    }

    /// host[:port][,host[:port]…] when the hosts fit in a URI's authority (no socket paths, ports
    /// one or one per host); nil leaves host and port to the query string.
    private static func authorityHosts(host: String?, port: String?) -> String? {
        let hosts = (host ?? "").split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let ports = port.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? []
        if host == nil || host == "" {
            // Only a port: keep it in the query string (an authority of ":5432" is unusual).
            return port == nil ? "" : nil
        }
        guard hosts.allSatisfy({ !$0.isEmpty && !$0.hasPrefix("/") && !$0.hasPrefix("@") }) else { return nil }
        guard ports.count <= 1 || ports.count == hosts.count else { return nil }
        return hosts.enumerated().map { index, name in
            var part = name.contains(":") ? "[\(name)]" : percentEncoded(name)
            let portText = ports.count == hosts.count ? ports[index] : ports.first
            if let portText, !portText.isEmpty { part += ":" + percentEncoded(portText) }
            return part
        }.joined(separator: ",")
    }

    private static func keyValueString(_ options: [(keyword: String, value: String)]) -> String {
        options.map { option in
            let value = option.value
            let plain = !value.isEmpty && !value.contains(where: { $0 == " " || $0 == "'" || $0 == "\\" || $0.isWhitespace })
            if plain { return "\(option.keyword)=\(value)" }
            var quoted = "'"
            for character in value {
                if character == "'" || character == "\\" { quoted.append("\\") }
                quoted.append(character)
            }
            return "\(option.keyword)=\(quoted)'"
        }.joined(separator: " ")
    }

    static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits = Array("0123456789ABCDEF".unicodeScalars)
                result.unicodeScalars.append("%")
                result.unicodeScalars.append(digits[Int(byte >> 4)])
                result.unicodeScalars.append(digits[Int(byte & 0xF)])
            }
        }
        return result
    }
}
