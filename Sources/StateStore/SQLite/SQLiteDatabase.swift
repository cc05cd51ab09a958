/// The SQLite connection as the backend-neutral code sees it (``SQLDatabase``): statements are
/// prepared once and cached, and a row is the statement itself.
extension SQLiteConnection: SQLDatabase {
    var location: String { path }

    var hasInsertOrReplace: Bool { true }

    func query(_ sql: String, _ values: [SQLValue], _ body: (any SQLRow) throws -> Bool) throws {
        let statement = try cached(sql)
        defer { statement.reset() }
        try statement.bind(values.map(SQLiteValue.init))
        while try statement.step() {
            if try !body(statement) { return }
        }
    }

    @discardableResult
    func run(_ sql: String, _ values: [SQLValue]) throws -> Int {
        let statement = try cached(sql)
        defer { statement.reset() }
        try statement.bind(values.map(SQLiteValue.init))
        while try statement.step() {}
        return changes
    }

    /// Rows per statement of ``bulkInsert(table:columns:rows:)`` (at most 999 parameters, the
    /// limit of SQLite builds before 3.32).
    static let rowsPerInsert = 64
    /// From this many rows on, ``bulkInsert(table:columns:rows:)`` runs with a page cache of
    /// ``largeCacheKiB`` (SQLite's default is 2 MiB).
    static let rowsForLargeCache = 10_000
    static let largeCacheKiB: Int64 = 65_536

    /// `rows` in multi-row `INSERT … VALUES (…), (…), …` statements (each prepared once and cached):
    /// a statement per row cost as much again as the row itself (binding, stepping and resetting).
    /// `OR FAIL`: a multi-row statement that may abort on a constraint needs a statement journal
    /// (pages copied to a temporary file) to undo its own earlier rows; with `FAIL` it keeps them,
    /// and the error rolls the whole transaction back anyway.
    ///
    /// A large insert into a table with a second index on a random key (the subjects' e-mail
    /// addresses) touches that index's pages at random: with the default cache, a row's page was
    /// mostly read back from the WAL and spilled to it again. So the cache grows for such an insert
    /// (memory is taken only as pages are cached) and is set back after it.
    func bulkInsert(table: String, columns: [Layout.Column], rows: [[SQLValue]]) throws {
        guard !columns.isEmpty, !rows.isEmpty else { return }
        try withCache(forRows: rows.count) {
            try insertInChunks(table: table, columns: columns, count: rows.count) { chunk, sql in
                var values: [SQLValue] = []
                values.reserveCapacity(chunk.count * columns.count)
                for row in rows[chunk] { values += row }
                return try run(sql, values)
            }
        }
    }

    /// Binds each value straight from the bytes `row` hands over (see ``SQLDatabase/bulkInsertText(table:columns:count:row:)``).
    func bulkInsertText(table: String, columns: [Layout.Column], count: Int,
                        row: (_ index: Int, _ value: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        guard !columns.isEmpty, count > 0 else { return }
        try withCache(forRows: count) {
            try insertInChunks(table: table, columns: columns, count: count) { chunk, sql in
                let statement = try cached(sql)
                defer { statement.reset() }
                var parameter: Int32 = 0
                for index in chunk {
                    try row(index) { bytes in
                        parameter += 1
                        try statement.bind(textBytes: bytes, at: parameter)
                    }
                }
                guard parameter == statement.parameterCount else {
                    throw StateError(.other, "internal error: \(parameter) values for \(statement.parameterCount) parameters inserting into \(table)",
                                     help: "report this as a bug")
                }
                while try statement.step() {}
                return changes
            }
        }
    }

    /// `body` run with a page cache of ``largeCacheKiB`` when it inserts at least ``rowsForLargeCache`` rows.
    func withCache(forRows rows: Int, _ body: () throws -> Void) throws {
        guard rows >= Self.rowsForLargeCache, let cache = try first("PRAGMA cache_size", [], { $0.int(0) }), cache < 0, cache > -Self.largeCacheKiB else {
            return try body()
        }
        try execute("PRAGMA cache_size = -\(Self.largeCacheKiB)")
        defer { try? execute("PRAGMA cache_size = \(cache)") }
        try body()
    }

    /// Rows per statement for `columns` values a row.
    private static func rowsPerStatement(_ columns: Int) -> Int { max(1, min(rowsPerInsert, 999 / columns)) }

    /// `INSERT OR FAIL INTO table (columns) VALUES (?1, ?2), (?3, ?4), …` for `rows` rows.
    private func insert(_ table: String, _ columns: [Layout.Column], rows: Int) -> String {
        let width = columns.count
        return "INSERT OR FAIL INTO \(table) (\(columns.map(\.name).joined(separator: ", "))) VALUES "
            + (0..<rows).map { row in "(" + (1...width).map { "?\(row * width + $0)" }.joined(separator: ", ") + ")" }.joined(separator: ", ")
    }

    /// `count` rows in chunks of ``rowsPerStatement(_:)``: `insert(chunk, sql)` runs `sql` (the insert of as many rows)
    /// for the rows of `chunk` and returns how many it inserted, which must be all of them.
    private func insertInChunks(table: String, columns: [Layout.Column], count: Int, _ insert: (Range<Int>, String) throws -> Int) throws {
        let perStatement = Self.rowsPerStatement(columns.count)
        let full = self.insert(table, columns, rows: perStatement)
        var start = 0
        while start < count {
            let chunk = start..<min(start + perStatement, count)
            let changed = try insert(chunk, chunk.count == perStatement ? full : self.insert(table, columns, rows: chunk.count))
            guard changed == chunk.count else {
                throw StateError(.other, "inserting \(chunk.count) rows into \(table) changed \(changed) rows", help: "run 'orgctl audit verify'")
            }
            start = chunk.upperBound
        }
    }
}

extension SQLiteValue {
    init(_ value: SQLValue) {
        switch value {
        case .null: self = .null
        case .integer(let n): self = .integer(n)
        case .text(let text): self = .text(text)
        case .blob(let bytes): self = .blob(bytes)
        case .bool(let b): self = .integer(b ? 1 : 0)
        }
    }
}

extension SQLiteStatement: SQLRow {
    func isNull(_ column: Int) -> Bool { isNull(at: Int32(column)) }
    func isText(_ column: Int) -> Bool { isText(at: Int32(column)) }
    func int(_ column: Int) -> Int64 { int(at: Int32(column)) }
    func text(_ column: Int) -> String { text(at: Int32(column)) }
    func withText<T>(_ column: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T { try withText(at: Int32(column), body) }
    func blob(_ column: Int) -> [UInt8] { blob(at: Int32(column)) }
    func withBlob<T>(_ column: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T { try withBlob(at: Int32(column), body) }
}
