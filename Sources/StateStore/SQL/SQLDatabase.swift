/// The one face of a database engine that the backend-neutral parts of the store use (the state
/// reader, the writes of an apply, the audit log and its tree, `orgctl_meta`). Each backend
/// adapts its driver to it (`SQLite/SQLiteDatabase.swift`, `Postgres/PostgresDatabase.swift`);
/// transactions, locking, schema creation and migrations stay with the backend.
///
/// SQL given to it is written once for both engines: parameters are `?1`, `?2`, … (a backend
/// whose driver wants another spelling rewrites them), and only SQL both engines understand is
/// used (`INSERT … ON CONFLICT`, `RETURNING`, `||`, `substr`, `coalesce`, `<<`).
protocol SQLDatabase: AnyObject {
    /// The database as messages name it: a file path, or a connection URI without its password.
    var location: String { get }
    /// Streams the rows of one statement to `body`, which returns false to stop early; no
    /// backend buffers the whole result.
    func query(_ sql: String, _ values: [SQLValue], _ body: (any SQLRow) throws -> Bool) throws
    /// Runs one statement and returns the number of rows it inserted, updated or deleted.
    @discardableResult func run(_ sql: String, _ values: [SQLValue]) throws -> Int
    /// Runs one write that must change exactly `rows` rows (any number when nil), else
    /// `failure(changed)` is thrown. A backend may send it later, together with others, but
    /// before anything that reads and before its transaction commits.
    func runChecked(_ sql: String, _ values: [SQLValue], rows: Int?, failure: @escaping (Int) -> StateError) throws
    /// Whether `INSERT OR REPLACE` replaces a row that conflicts on any unique key (SQLite); where
    /// it does not exist (PostgreSQL), the conflicting rows are deleted first, in a second statement.
    var hasInsertOrReplace: Bool { get }
    /// Inserts `rows` (values in the order of `columns`) into `table`, each row exactly once.
    func bulkInsert(table: String, columns: [Layout.Column], rows: [[SQLValue]]) throws
    /// Inserts `count` rows of text values into `table`, each row exactly once, as
    /// ``bulkInsert(table:columns:rows:)`` does: `row(i, value)` hands `value` the UTF-8 bytes of
    /// row `i`'s values, in the order of `columns`. For rows held in bytes already (the subjects of
    /// a first apply), so none needs a string of its own.
    func bulkInsertText(table: String, columns: [Layout.Column], count: Int,
                        row: (_ index: Int, _ value: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws
    /// Runs `body`, a bulk insert of `rows` rows into `table`, with the table's indexes built after it
    /// where the backend gains by it (SQLite/DeferredIndexes.swift).
    func deferringIndexes(of table: String, rows: Int, _ body: () throws -> Void) throws
    /// An id for a row about to be inserted into `table` (whose `id` the backend then takes as
    /// given), or nil to let the insert assign one (`RETURNING id`).
    func reserveRowID(table: String) throws -> Int64?
    /// Writes held back until the current transaction commits, which runs them before its COMMIT
    /// and drops them when it rolls back (``PendingWrites``).
    var pendingWrites: PendingWrites { get }
}

extension SQLDatabase {
    func runChecked(_ sql: String, _ values: [SQLValue], rows: Int?, failure: @escaping (Int) -> StateError) throws {
        let changed = try run(sql, values)
        if let rows, changed != rows { throw failure(changed) }
    }

    /// A write whose row count does not matter, which a backend may send later with others
    /// (see ``runChecked(_:_:rows:failure:)``).
    func write(_ sql: String, _ values: [SQLValue]) throws {
        try runChecked(sql, values, rows: nil) { _ in StateError(.other, "internal error", help: "report this as a bug") }
    }

    func reserveRowID(table: String) throws -> Int64? { nil }

    var hasInsertOrReplace: Bool { false }

    func bulkInsert(table: String, columns: [Layout.Column], rows: [[SQLValue]]) throws {
        let placeholders = (1...columns.count).map { "?\($0)" }.joined(separator: ", ")
        let insert = "INSERT INTO \(table) (\(columns.map(\.name).joined(separator: ", "))) VALUES (\(placeholders))"
        for values in rows {
            try runChecked(insert, values, rows: 1) { changed in
                StateError(.other, "inserting a row into \(table) changed \(changed) rows", help: "run 'orgctl audit verify'")
            }
        }
    }

    func bulkInsertText(table: String, columns: [Layout.Column], count: Int,
                        row: (_ index: Int, _ value: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        var rows: [[SQLValue]] = []
        rows.reserveCapacity(count)
        for index in 0..<count {
            var values: [SQLValue] = []
            try row(index) { values.append(.text(String(decoding: $0, as: UTF8.self))) }
            rows.append(values)
        }
        try bulkInsert(table: table, columns: columns, rows: rows)
    }

    /// Calls `body` for every row.
    func forEach(_ sql: String, _ values: [SQLValue] = [], _ body: (any SQLRow) throws -> Void) throws {
        try query(sql, values) { row in
            try body(row)
            return true
        }
    }

    /// `body` applied to the first row, or nil when there is none.
    func first<T>(_ sql: String, _ values: [SQLValue] = [], _ body: (any SQLRow) throws -> T) throws -> T? {
        var result: T?
        try query(sql, values) { row in
            result = try body(row)
            return false
        }
        return result
    }

    /// The first column of the first row as an integer (0 when there is no row).
    func integer(_ sql: String, _ values: [SQLValue] = []) throws -> Int64 {
        try first(sql, values) { $0.int(0) } ?? 0
    }
}

/// One row of a result, valid only inside the callback that receives it.
protocol SQLRow {
    func isNull(_ column: Int) -> Bool
    /// Whether the column holds text: SQLite's storage class; any non-NULL value of a text column
    /// for a backend whose columns are typed.
    func isText(_ column: Int) -> Bool
    /// The column as an integer (booleans as 0 or 1; NULL as 0).
    func int(_ column: Int) -> Int64
    /// The column as text (NULL as `""`); invalid UTF-8 is repaired with U+FFFD.
    func text(_ column: Int) -> String
    /// The column's text bytes in place (no copy), valid only inside `body`.
    func withText<T>(_ column: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T
    /// The column as bytes (NULL as `[]`).
    func blob(_ column: Int) -> [UInt8]
    /// The column's bytes in place (no copy), valid only inside `body`.
    func withBlob<T>(_ column: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T
}

extension SQLRow {
    func optionalText(_ column: Int) -> String? { isNull(column) ? nil : text(column) }
    func optionalBlob(_ column: Int) -> [UInt8]? { isNull(column) ? nil : blob(column) }
}

/// A value bound to a parameter. Text is UTF-8; `""` and `[]` are values, not NULL.
enum SQLValue: Equatable, Sendable {
    case null
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    /// A boolean column's value: 0 or 1 in SQLite, `boolean` in PostgreSQL.
    case bool(Bool)
}
