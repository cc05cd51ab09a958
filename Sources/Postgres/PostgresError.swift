/// Every failure of the `Postgres` module: one line of text (never the password), the server's
/// SQLSTATE when the server sent one, and its detail and hint.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The server cannot be reached (down, wrong host or port, timeout), the connection broke,
        /// the database does not exist, or the connection string cannot be parsed.
        case connection
        /// The server refused the credentials (SQLSTATE 28P01/28000, pg_hba.conf rejections).
        case authentication
        /// TLS could not be negotiated (`sslmode=require` against a server without TLS, a bad certificate).
        case tls
        /// A statement failed on a working connection (see `sqlState`).
        case query
        /// The server or the caller broke the protocol's expectations (unexpected result kind,
        /// malformed COPY data, a value that does not fit its column type).
        case protocolViolation
    }

    public var kind: Kind
    /// The five-character SQLSTATE, e.g. "40001", "55P03", "42501", "3F000", "42P01".
    public var sqlState: String?
    /// One line, no trailing newline, never the password.
    public var message: String
    public var detail: String?
    public var hint: String?
    /// For `pipeline`: the 0-based index of the statement that failed.
    public var statementIndex: Int?

    public init(
        kind: Kind, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        statementIndex: Int? = nil
    ) {
        self.kind = kind
        self.message = PostgresError.oneLine(message)
        self.sqlState = sqlState
        self.detail = detail.map(PostgresError.oneLine).flatMap { $0.isEmpty ? nil : $0 }
        self.hint = hint.map(PostgresError.oneLine).flatMap { $0.isEmpty ? nil : $0 }
        self.statementIndex = statementIndex
    }

    /// A serialization failure (40001) or a deadlock (40P01): the transaction may be retried.
    public var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" }

    /// `message (detail) [sqlstate X]; hint: …` on one line.
    public var description: String {
        var text = message
        if let detail { text += " (\(detail))" }
        if let statementIndex { text += " [statement \(statementIndex + 1)]" }
        if let sqlState { text += " [sqlstate \(sqlState)]" }
        if let hint { text += "; hint: \(hint)" }
        return text
    }

    /// Lines joined with "; ", each trimmed, no control line breaks or tabs left.
    static func oneLine(_ text: String) -> String {
        var lines: [Substring] = []
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            var end = trimmed.endIndex
            while end > trimmed.startIndex, trimmed[trimmed.index(before: end)] == " " || trimmed[trimmed.index(before: end)] == "\t" {
                end = trimmed.index(before: end)
            }
            let cut = trimmed[trimmed.startIndex..<end]
            if !cut.isEmpty { lines.append(cut) }
        }
        return lines.joined(separator: "; ").replacingTabs()
    }

    /// Replaces every occurrence of each secret (non-empty) with "***" in all text fields.
    func scrubbing(_ secrets: [String]) -> PostgresError {
        var copy = self
        for secret in secrets where !secret.isEmpty {
            copy.message = copy.message.replacingAll(secret, with: "***")
            copy.detail = copy.detail?.replacingAll(secret, with: "***")
            copy.hint = copy.hint?.replacingAll(secret, with: "***")
        }
        return copy
    }
}

extension String {
    fileprivate func replacingTabs() -> String {
        guard contains("\t") else { return self }
        return String(map { $0 == "\t" ? " " : $0 })
    }

    /// Plain substring replacement on Unicode scalars (no Foundation).
    func replacingAll(_ target: String, with replacement: String) -> String {
        let haystack = Array(unicodeScalars)
        let needle = Array(target.unicodeScalars)
        guard !needle.isEmpty, haystack.count >= needle.count else { return self }
        var result = String.UnicodeScalarView()
        var index = 0
        var replaced = false
        while index < haystack.count {
            if index + needle.count <= haystack.count, haystack[index] == needle[0],
                Array(haystack[index..<index + needle.count]) == needle
            {
                result.append(contentsOf: replacement.unicodeScalars)
                index += needle.count
                replaced = true
            } else {
                result.append(haystack[index])
                index += 1
            }
        }
        return replaced ? String(result) : self
    }
}
