internal import CSQLite

/// A compiled statement, finalized when released.
///
/// Parameters and columns are numbered the SQLite way: parameters from 1 (`?1`),
/// columns from 0. Typed binders and readers (`bind(int:at:)`, `text(at:)`, ...) avoid
/// boxing values in `SQLiteValue` on hot paths.
///
/// A statement does not retain its connection: the connection is closed with
/// `sqlite3_close_v2`, which keeps the database open until its last statement is finalized.
final class SQLiteStatement {
    /// The SQL text (never the bound values).
    let sql: String
    private let handle: OpaquePointer  // sqlite3_stmt *

    init(handle: OpaquePointer, sql: String) {
        self.handle = handle
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(handle)
    }

    private func error(_ resultCode: Int32) -> SQLiteError {
        SQLiteError(db: sqlite3_db_handle(handle), resultCode: resultCode, sql: sql)
    }

    private func check(_ resultCode: Int32) throws(SQLiteError) {
        guard resultCode == SQLITE_OK else { throw error(resultCode) }
    }

    // MARK: Lifecycle

    /// Rewinds the statement so it can run again, keeping its bindings. Also releases the
    /// read snapshot a half-read `SELECT` holds.
    func reset() {
        // The result repeats the error of the last step, which `step()` already threw.
        sqlite3_reset(handle)
    }

    /// Sets every parameter back to NULL.
    func clearBindings() {
        sqlite3_clear_bindings(handle)
    }

    /// The number of parameters (the largest parameter index).
    var parameterCount: Int32 { sqlite3_bind_parameter_count(handle) }

    // MARK: Binding

    /// Resets the statement, clears old bindings, and binds `values` to `?1`, `?2`, ...
    ///
    /// - Throws: when `values.count` differs from `parameterCount`, so a missing value is
    ///   never silently bound as NULL.
    func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        reset()
        clearBindings()
        guard values.count == Int(parameterCount) else {
            throw SQLiteError.misuse(
                "statement expects \(parameterCount) values, got \(values.count)", sql: sql, code: SQLITE_RANGE)
        }
        for (offset, value) in values.enumerated() {
            try bind(value, at: Int32(offset + 1))
        }
    }

    /// Binds one parameter (1-based). The statement must be fresh or reset.
    func bind(_ value: SQLiteValue, at index: Int32) throws(SQLiteError) {
        switch value {
        case .null: try bindNull(at: index)
        case .integer(let int): try bind(int: int, at: index)
        case .real(let real): try bind(real: real, at: index)
        case .text(let text): try bind(text: text, at: index)
        case .blob(let bytes): try bind(blob: bytes, at: index)
        }
    }

    func bind(int: Int64, at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_int64(handle, index, int))
    }

    func bind(real: Double, at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_double(handle, index, real))
    }

    /// Binds UTF-8 text with its explicit byte length: embedded NULs survive and `""` is
    /// bound as an empty string, not NULL. SQLite copies the bytes (`SQLITE_TRANSIENT`).
    func bind(text: String, at index: Int32) throws(SQLiteError) {
        let byteCount = sqlite3_uint64(text.utf8.count)
        let rc = text.withCString { csqlite_bind_text64_transient(handle, index, $0, byteCount) }
        try check(rc)
    }

    /// Binds the UTF-8 text `bytes` (copied by SQLite, as ``bind(text:at:)``); no bytes bind `""`, not NULL.
    func bind(textBytes bytes: UnsafeRawBufferPointer, at index: Int32) throws(SQLiteError) {
        guard let start = bytes.baseAddress, !bytes.isEmpty else { return try bind(text: "", at: index) }
        try check(csqlite_bind_text64_transient(handle, index, start.assumingMemoryBound(to: CChar.self), sqlite3_uint64(bytes.count)))
    }

    /// Binds a blob; an empty array is bound as a zero-length blob, not NULL.
    func bind(blob: [UInt8], at index: Int32) throws(SQLiteError) {
        let rc: Int32
        if blob.isEmpty {
            // A NULL pointer would bind SQL NULL.
            rc = sqlite3_bind_zeroblob(handle, index, 0)
        } else {
            rc = blob.withUnsafeBytes { bytes in
                csqlite_bind_blob64_transient(handle, index, bytes.baseAddress, sqlite3_uint64(bytes.count))
            }
        }
        try check(rc)
    }

    func bindNull(at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_null(handle, index))
    }

    // MARK: Stepping

    /// Advances to the next row.
    ///
    /// - Returns: `true` when a row is available, `false` when the statement is done.
    func step() throws(SQLiteError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let rc: throw error(rc)
        }
    }

    /// Runs the statement to completion, discarding rows, then resets it.
    ///
    /// With `values`, binds them first (see `bind(_:)`); with none, runs with the current
    /// bindings (set with the typed binders).
    func run(_ values: [SQLiteValue] = []) throws(SQLiteError) {
        try prepareToRun(values)
        defer { reset() }
        while try step() {}
    }

    /// Runs the statement and collects every row, then resets it (releasing its read
    /// snapshot). `values` are handled as in `run(_:)`.
    func all(_ values: [SQLiteValue] = []) throws(SQLiteError) -> [[SQLiteValue]] {
        try prepareToRun(values)
        defer { reset() }
        var rows: [[SQLiteValue]] = []
        while try step() { rows.append(row()) }
        return rows
    }

    private func prepareToRun(_ values: [SQLiteValue]) throws(SQLiteError) {
        if values.isEmpty {
            reset()
        } else {
            try bind(values)
        }
    }

    // MARK: Reading the current row

    var columnCount: Int32 { sqlite3_column_count(handle) }

    func columnName(at index: Int32) -> String {
        sqlite3_column_name(handle, index).map { String(cString: $0) } ?? ""
    }

    func isNull(at index: Int32) -> Bool {
        sqlite3_column_type(handle, index) == SQLITE_NULL
    }

    /// Whether the column holds text (not NULL, a number or a blob that would read as text).
    func isText(at index: Int32) -> Bool {
        sqlite3_column_type(handle, index) == SQLITE_TEXT
    }

    /// The column as an integer (NULL reads as 0).
    func int(at index: Int32) -> Int64 {
        sqlite3_column_int64(handle, index)
    }

    /// The column as a double (NULL reads as 0).
    func real(at index: Int32) -> Double {
        sqlite3_column_double(handle, index)
    }

    /// The column as text (NULL reads as `""`), decoded with its byte length so embedded
    /// NULs survive; invalid UTF-8 is repaired with U+FFFD.
    func text(at index: Int32) -> String {
        // sqlite3_column_text first, then _bytes: the length is of the converted value.
        guard let bytes = sqlite3_column_text(handle, index) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, index))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    /// The column's text bytes in place (UTF-8, no terminator), valid only inside `body` (no copy).
    func withText<T>(at index: Int32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let pointer = sqlite3_column_text(handle, index)
        let count = Int(sqlite3_column_bytes(handle, index))
        return try body(UnsafeRawBufferPointer(start: count > 0 ? UnsafeRawPointer(pointer) : nil, count: count))
    }

    func optionalText(at index: Int32) -> String? {
        isNull(at: index) ? nil : text(at: index)
    }

    /// The column as bytes (NULL and empty blobs read as `[]`).
    func blob(at index: Int32) -> [UInt8] {
        guard let pointer = sqlite3_column_blob(handle, index) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, index))
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// The column's bytes in place, valid only inside `body` (no copy).
    func withBlob<T>(at index: Int32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let pointer = sqlite3_column_blob(handle, index)
        let count = Int(sqlite3_column_bytes(handle, index))
        return try body(UnsafeRawBufferPointer(start: count > 0 ? pointer : nil, count: count))
    }

    func optionalBlob(at index: Int32) -> [UInt8]? {
        isNull(at: index) ? nil : blob(at: index)
    }

    /// The column with its storage class.
    func value(at index: Int32) -> SQLiteValue {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER: .integer(int(at: index))
        case SQLITE_FLOAT: .real(real(at: index))
        case SQLITE_TEXT: .text(text(at: index))
        case SQLITE_BLOB: .blob(blob(at: index))
        default: .null
        }
    }

    /// Every column of the current row.
    func row() -> [SQLiteValue] {
        (0..<columnCount).map { value(at: $0) }
    }
}
