import Postgres

/// A PostgreSQL connection as the backend-neutral code sees it (``SQLDatabase``).
///
/// Parameters `?N` become `$N`. Writes whose only result is their affected-row count
/// (``runChecked(_:_:rows:failure:)``) are queued and sent together in pipeline mode, one round
/// trip per batch instead of one per statement; anything that reads (a query, a plain `run`, a
/// commit) sends the queue first, so the SQL sees every write before it in order.
final class PostgresDatabase: SQLDatabase {
    let connection: PostgresConnection
    let location: String
    private var translated: [String: String] = [:]
    private var queued: [(sql: String, parameters: [PostgresValue], rows: Int?, failure: (Int) -> StateError)] = []
    /// Identity values reserved for rows about to be inserted, per table (``reserveRowID(table:)``).
    private var reservedIDs: [String: ArraySlice<Int64>] = [:]
    /// Writes per pipeline: small enough that their results fit the socket's buffers (libpq's blocking
    /// pipeline sends everything before it reads a result).
    static let batchSize = 512
    static let reservationSize = 1024

    init(connection: PostgresConnection, location: String) {
        self.connection = connection
        self.location = location
    }

    func query(_ sql: String, _ values: [SQLValue], _ body: (any SQLRow) throws -> Bool) throws {
        try flush()
        try connection.query(postgres(sql), values.map(Self.parameter)) { row in try body(row) }
    }

    @discardableResult
    func run(_ sql: String, _ values: [SQLValue]) throws -> Int {
        try flush()
        return try connection.execute(postgres(sql), values.map(Self.parameter))
    }

    func runChecked(_ sql: String, _ values: [SQLValue], rows: Int?, failure: @escaping (Int) -> StateError) throws {
        queued.append((postgres(sql), values.map(Self.parameter), rows, failure))
        if queued.count >= Self.batchSize { try flush() }
    }

    func reserveRowID(table: String) throws -> Int64? {
        if let next = reservedIDs[table]?.first {
            reservedIDs[table]?.removeFirst()
            return next
        }
        var ids: [Int64] = []
        try connection.query("SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, \(Self.reservationSize))",
                             [.text(table)]) { row in
            ids.append(row.int(0))
            return true
        }
        guard let first = ids.first else { return nil }
        reservedIDs[table] = ids.dropFirst()
        return first
    }

    /// `COPY … FROM STDIN` in binary: one stream for all the rows.
    func bulkInsert(table: String, columns: [Layout.Column], rows: [[SQLValue]]) throws {
        try flush()
        let types = columns.map { column -> (name: String, type: PostgresColumnType) in
            switch column.type {
            case .id, .integer: (column.name, .int8)
            case .text, .list: (column.name, .text)
            case .blob: (column.name, .bytea)
            case .bool: (column.name, .bool)
            case .timestamp: (column.name, .timestamptz)
            }
        }
        let copied = try connection.copyIn(table: table, columns: types, rows: rows.lazy.map { $0.map(Self.parameter) })
        guard copied == rows.count else {
            throw StateError(.other, "copying into \(table) wrote \(copied) rows instead of \(rows.count)", help: "run 'orgctl audit verify'")
        }
    }

    /// Sends the queued writes (pipeline mode) and checks each one's affected-row count.
    func flush() throws {
        guard !queued.isEmpty else { return }
        let batch = queued
        queued = []
        let results = try connection.pipeline(batch.map { ($0.sql, $0.parameters) })
        for (write, result) in zip(batch, results) where write.rows.map({ $0 != result.affectedRows }) ?? false {
            throw write.failure(result.affectedRows)
        }
    }

    /// Forgets queued writes and reserved ids (the transaction rolled back).
    func discard() {
        queued = []
        reservedIDs = [:]
    }

    /// `?N` parameters as PostgreSQL's `$N` (outside quoted text; orgctl's SQL quotes no `?`).
    private func postgres(_ sql: String) -> String {
        if let known = translated[sql] { return known }
        var out = ""
        out.reserveCapacity(sql.utf8.count)
        var quoted = false
        var previous: Character = " "
        for character in sql {
            if character == "'" { quoted.toggle() }
            if !quoted, previous == "?", character.isNumber {
                out.removeLast()
                out.append("$")
            }
            out.append(character)
            previous = character
        }
        translated[sql] = out
        return out
    }

    static func parameter(_ value: SQLValue) -> PostgresValue {
        switch value {
        case .null: .null
        case .integer(let n): .int(n)
        case .text(let text): .text(text)
        case .blob(let bytes): .bytes(bytes)
        case .bool(let b): .bool(b)
        }
    }
}

extension PostgresRow: SQLRow {
    /// Columns are typed: a key column holds text whenever it is not NULL.
    func isText(_ column: Int) -> Bool { !isNull(column) }
    func withText<T>(_ column: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T { try withBytes(column, body) }
    func blob(_ column: Int) -> [UInt8] { bytes(column) }
    func withBlob<T>(_ column: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T { try withBytes(column, body) }
}
