internal import CPostgres
import Foundation

/// One libpq connection. Not thread-safe: use it from one thread at a time (it is not `Sendable`).
/// Every operation is synchronous (libpq's blocking mode). `close()` or deinit ends it.
public final class PostgresConnection {
    var connection: OpaquePointer?
    /// The password (and sslpassword) in use, scrubbed from every error as a second line of defence.
    let secrets: [String]
    /// Reused for every row so that streaming allocates nothing per row.
    let storage = RowStorage()
    /// Set while `query` hands out rows or `copyIn` reads its sequence: code called from there
    /// may not use the connection (libpq has one statement in flight), and a `close()` from
    /// there waits until the operation ends (the C connection is still being read).
    private var busy = false
    private var closeRequested = false
    /// Statements prepared on this session for `pipeline`, by SQL text and parameter types.
    var preparedStatements: [PreparedKey: String] = [:]

    /// Connects. `conninfo` is a `postgres://`/`postgresql://` URI or a key=value string with
    /// libpq's semantics: `PG*` environment variables, `~/.pgpass`, `PGSERVICE` and `sslmode`
    /// all apply. `applicationName` becomes `application_name` (it overrides one in the
    /// conninfo); `connectTimeoutSeconds` is used when neither the conninfo nor
    /// `PGCONNECT_TIMEOUT` sets `connect_timeout`. The client encoding is always UTF8: a server
    /// that refuses it is refused.
    public init(conninfo: String, applicationName: String?, connectTimeoutSeconds: Int = 10) throws(PostgresError) {
        guard let parsed = ConnectionOptions.parse(conninfo) else {
            throw PostgresError(
                kind: .connection, message: "the connection string cannot be parsed",
                hint: "write it as postgresql://user@host:port/database?option=value or as key=value pairs (libpq syntax)")
        }
        var keywords: [String] = []
        var values: [String] = []
        if parsed.value("connect_timeout") == nil, ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil {
            keywords.append("connect_timeout")
            values.append(String(max(connectTimeoutSeconds, 2)))
        }
        keywords.append("fallback_application_name")
        values.append("orgctl")
        // Later keywords override what the expanded conninfo sets.
        keywords.append("dbname")
        values.append(conninfo)
        if let applicationName {
            keywords.append("application_name")
            values.append(applicationName)
        }
        keywords.append("client_encoding")
        values.append("UTF8")

        let connection = PostgresConnection.connect(keywords: keywords, values: values)
        guard let connection else {
            throw PostgresError(kind: .connection, message: "cannot allocate a connection (out of memory)")
        }
        var secrets = parsed.secrets
        secrets.append(contentsOf: PostgresConnection.secretsInUse(connection))
        self.secrets = secrets
        guard PQstatus(connection) == CONNECTION_OK else {
            let text = String(cString: PQerrorMessage(connection))
            PQfinish(connection)
            throw PostgresError.connectionFailure(text).scrubbing(secrets)
        }
        cpostgres_silence_notices(connection)
        self.connection = connection
        let encoding = PQparameterStatus(connection, "client_encoding").map { String(cString: $0) }
        guard encoding == "UTF8" else {
            close()
            throw PostgresError(
                kind: .connection, message: "the server does not use the UTF8 client encoding (it reports \(encoding ?? "none"))",
                hint: "use a server and database that can convert to UTF8")
        }
    }

    deinit {
        if let connection { PQfinish(connection) }
    }

    /// Ends the connection; later calls fail with a `.connection` error. Closing twice is harmless.
    public func close() {
        if busy {
            closeRequested = true
            return
        }
        if let connection { PQfinish(connection) }
        connection = nil
    }

    /// Runs an operation that calls back into the caller's code (rows, a row sequence).
    func whileBusy<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        let connection = try open()
        busy = true
        defer {
            busy = false
            if closeRequested { close() }
        }
        return try body(connection)
    }

    /// The server's version as a number (`150018` for 15.18); 0 when closed.
    public var serverVersion: Int { connection.map { Int(PQserverVersion($0)) } ?? 0 }

    /// The server process serving this connection (`pg_backend_pid()`); 0 when closed.
    public var backendPID: Int32 { connection.map { PQbackendPID($0) } ?? 0 }

    private static func connect(keywords: [String], values: [String]) -> OpaquePointer? {
        withCStringArray(keywords) { keywordPointers in
            withCStringArray(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
    }

    /// The password values libpq ended up using (from the conninfo, PGPASSWORD or ~/.pgpass).
    private static func secretsInUse(_ connection: OpaquePointer) -> [String] {
        guard let options = PQconninfo(connection) else { return [] }
        defer { PQconninfoFree(options) }
        var secrets: [String] = []
        var cursor = options
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val, ConnectionOptions.secretKeywords.contains(String(cString: keyword)) {
                let text = String(cString: value)
                if !text.isEmpty { secrets.append(text) }
            }
            cursor += 1
        }
        return secrets
    }

    // MARK: Statements

    /// Runs one statement (extended protocol, so exactly one; binary results) and returns the
    /// affected-row count (`PQcmdTuples`, 0 when the statement reports none).
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) throws(PostgresError) -> Int {
        let connection = try open()
        try send(connection, sql, parameters)
        var affected = 0
        var tag = ""
        try collect(connection) { result in
            affected = PostgresConnection.affectedRows(result)
            tag = PostgresConnection.commandTag(result)
        }
        try checkCommit(sql, tag: tag)
        return affected
    }

    /// Runs a script of several statements through the simple protocol (DDL); no parameters.
    /// Stops at the first failing statement. Like `execute`, a script ending in COMMIT throws
    /// when the server rolled the transaction back instead.
    public func executeScript(_ sql: String) throws(PostgresError) {
        let connection = try open()
        try checkNoNUL(sql, what: "the script")
        guard PQsendQuery(connection, sql) == 1 else { throw failure(connection) }
        var tag = ""
        try collect(connection) { result in tag = PostgresConnection.commandTag(result) }
        let lastStatement = sql.split(separator: ";").last(where: { !$0.allSatisfy(\.isWhitespace) }) ?? ""
        try checkCommit(String(lastStatement), tag: tag)
    }

    /// A COMMIT (or END) of a transaction in which a statement failed does not fail: the server
    /// answers ROLLBACK. orgctl must not take that for a commit.
    func checkCommit(_ sql: String, tag: String, statementIndex: Int? = nil) throws(PostgresError) {
        guard tag == "ROLLBACK" else { return }
        let keyword = sql.drop(while: { $0.isWhitespace || $0 == "(" }).prefix(while: { $0.isLetter }).lowercased()
        guard keyword == "commit" || keyword == "end" else { return }
        throw PostgresError(
            kind: .query, message: "the transaction was rolled back, not committed: a statement in it had failed",
            sqlState: "25P02", hint: "look for the error of an earlier statement in the transaction", statementIndex: statementIndex)
    }

    static func commandTag(_ result: OpaquePointer) -> String {
        PQcmdStatus(result).map { String(cString: $0) } ?? ""
    }

    /// All rows of a query, decoded like `PostgresRow.value` (small results only: they are buffered).
    public func rows(_ sql: String, _ parameters: [PostgresValue] = []) throws(PostgresError) -> [[PostgresValue]] {
        let connection = try open()
        try send(connection, sql, parameters)
        var rows: [[PostgresValue]] = []
        let storage = self.storage
        try collect(connection) { result in
            guard PQresultStatus(result) == PGRES_TUPLES_OK else { return }
            let count = PQntuples(result)
            rows.reserveCapacity(Int(count))
            for row in 0..<count {
                storage.use(result: result, row: row, readTypes: row == 0)
                rows.append(storage.values())
            }
            storage.invalidate()
        }
        return rows
    }

    // MARK: Plumbing shared by every operation

    func open() throws(PostgresError) -> OpaquePointer {
        guard let connection, !closeRequested else {
            throw PostgresError(kind: .connection, message: "the connection is closed")
        }
        if busy {
            throw PostgresError(
                kind: .protocolViolation,
                message: "the connection is busy: no statement can run while the rows of another are read or written",
                hint: "use a second connection, or collect the rows first")
        }
        return connection
    }

    func checkNoNUL(_ text: String, what: String) throws(PostgresError) {
        if text.utf8.contains(0) {
            throw PostgresError(kind: .query, message: "\(what) contains a NUL character, which PostgreSQL text cannot hold")
        }
    }

    /// Sends one statement with the extended protocol: parameters as described in `Parameters`,
    /// results in binary (or text for COPY statements, where the format is COPY's own).
    func send(_ connection: OpaquePointer, _ sql: String, _ parameters: [PostgresValue], binaryResults: Bool = true)
        throws(PostgresError)
    {
        try checkNoNUL(sql, what: "the statement")
        try send(connection, sql, Parameters(parameters), binaryResults: binaryResults)
    }

    func send(_ connection: OpaquePointer, _ sql: String, _ encoded: Parameters, binaryResults: Bool = true)
        throws(PostgresError)
    {
        let sent = encoded.withPointers { count, types, values, lengths, formats in
            PQsendQueryParams(connection, sql, count, types, values, lengths, formats, binaryResults ? 1 : 0)
        }
        guard sent == 1 else { throw failure(connection) }
    }

    /// Reads every result of the statement sent last, hands each successful one to `body`, and
    /// throws the first failure after the connection is ready for the next statement. COPY
    /// states nobody asked for are ended (COPY IN refused, COPY OUT data discarded).
    func collect(_ connection: OpaquePointer, _ body: (OpaquePointer) -> Void) throws(PostgresError) {
        var first: PostgresError?
        while let result = PQgetResult(connection) {
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
                if first == nil { body(result) }
            case PGRES_COPY_IN:
                _ = PQputCopyEnd(connection, "COPY FROM STDIN is only supported through copyIn")
                first = first ?? PostgresError(kind: .protocolViolation, message: "COPY FROM STDIN is only supported through copyIn")
            case PGRES_COPY_OUT, PGRES_COPY_BOTH:
                discardCopyOut(connection)
                first = first ?? PostgresError(kind: .protocolViolation, message: "COPY TO STDOUT is only supported through query")
            default:
                first = first ?? error(from: result, connection)
            }
            PQclear(result)
        }
        if first == nil, PQstatus(connection) != CONNECTION_OK { first = failure(connection) }
        if let first { throw first }
    }

    func discardCopyOut(_ connection: OpaquePointer) {
        var buffer: UnsafeMutablePointer<CChar>?
        while true {
            let count = PQgetCopyData(connection, &buffer, 0)
            if let buffer { PQfreemem(buffer) }
            buffer = nil
            if count < 0 { break }
        }
    }

    static func affectedRows(_ result: OpaquePointer) -> Int {
        guard let text = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: text)) ?? 0
    }

    /// The error a failed result carries: SQLSTATE, primary message, detail, hint.
    func error(from result: OpaquePointer, _ connection: OpaquePointer, statementIndex: Int? = nil) -> PostgresError {
        func field(_ code: Int32) -> String? {
            PQresultErrorField(result, code).map { String(cString: $0) }
        }
        let sqlState = field(cpostgres_diag_sqlstate())
        let primary = field(cpostgres_diag_message_primary())
            ?? PQresultErrorMessage(result).map { String(cString: $0) }
            ?? "the statement failed"
        let kind = PostgresError.kind(sqlState: sqlState, connectionLost: PQstatus(connection) != CONNECTION_OK)
        return PostgresError(
            kind: kind, message: primary.isEmpty ? String(cString: PQerrorMessage(connection)) : primary, sqlState: sqlState,
            detail: field(cpostgres_diag_message_detail()), hint: field(cpostgres_diag_message_hint()),
            statementIndex: statementIndex
        ).scrubbing(secrets)
    }

    /// The connection's own error (a send that failed, a connection that broke).
    func failure(_ connection: OpaquePointer) -> PostgresError {
        let text = String(cString: PQerrorMessage(connection))
        let lost = PQstatus(connection) != CONNECTION_OK
        return PostgresError(
            kind: lost ? .connection : .query, message: text.isEmpty ? "the connection failed" : stripSeverity(text)
        ).scrubbing(secrets)
    }
}

/// libpq prefixes server messages with their severity ("FATAL:  ", "ERROR:  ").
func stripSeverity(_ text: String) -> String {
    var text = text
    for prefix in ["FATAL:  ", "ERROR:  ", "PANIC:  "] {
        text = text.replacingAll(prefix, with: "")
    }
    return text
}

/// Calls `body` with a NULL-terminated array of C strings that live for the call.
func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    var storage: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    storage.append(nil)
    defer { for pointer in storage { free(pointer) } }
    return storage.withUnsafeBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}

extension PostgresError {
    static func kind(sqlState: String?, connectionLost: Bool) -> Kind {
        if connectionLost { return .connection }
        guard let sqlState else { return .query }
        if sqlState.hasPrefix("08") || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03" { return .connection }
        if sqlState.hasPrefix("28") { return .authentication }
        return .query
    }

    /// A failed connection attempt, classified from libpq's message (libpq gives no SQLSTATE for
    /// it): authentication, TLS, or else unreachable. Lines starting with a tab are libpq's hints.
    static func connectionFailure(_ text: String) -> PostgresError {
        var messages: [String] = []
        var hints: [String] = []
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            if line.hasPrefix("\t") {
                if !hints.contains(trimmed) { hints.append(trimmed) }
            } else {
                let message = stripSeverity(trimmed)
                if !messages.contains(message) { messages.append(message) }
            }
        }
        let message = messages.isEmpty ? "cannot connect to the server" : messages.joined(separator: "; ")
        // Classified without the quoted names (hosts, users, databases): a host called
        // "ssl-db" must not make a refused connection look like a TLS failure.
        let lower = String(message.split(separator: "\"", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset % 2 == 0 }.map(\.element).joined(separator: " ")).lowercased()
        var kind = Kind.connection
        var sqlState: String?
        var hint = hints.isEmpty ? nil : hints.joined(separator: "; ")
        if lower.contains("password authentication failed") || lower.contains("scram") && lower.contains("fail") {
            kind = .authentication
            sqlState = "28P01"
            hint = hint ?? "check the user name and the password (PGPASSWORD, ~/.pgpass or the connection string)"
        } else if lower.contains("no password supplied") || lower.contains("password is required")
            || lower.contains("authentication failed")
        {
            kind = .authentication
            sqlState = "28P01"
            hint = hint ?? "supply a password through PGPASSWORD or ~/.pgpass"
        } else if lower.contains("pg_hba.conf") || lower.contains("role") && lower.contains("does not exist") {
            kind = .authentication
            sqlState = "28000"
            hint = hint ?? "ask the server's administrator to allow this user from this host"
        } else if lower.contains("ssl") || lower.contains("certificate") || lower.contains("gssapi encryption") {
            kind = .tls
            hint = hint ?? "check sslmode and the server's TLS setup (sslmode=disable only for a local server)"
        } else if lower.contains("database") && lower.contains("does not exist") {
            sqlState = "3D000"
            hint = hint ?? "create the database or name an existing one in the connection string"
        } else {
            hint = hint ?? "check the host and port, and that the server is running"
        }
        return PostgresError(kind: kind, message: message, sqlState: sqlState, hint: hint)
    }
}
