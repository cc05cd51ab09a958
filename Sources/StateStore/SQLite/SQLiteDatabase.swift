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
        if rows.count >= Self.rowsForLargeCache, let cache = try first("PRAGMA cache_size", [], { $0.int(0) }), cache < 0, cache > -Self.largeCacheKiB {
            try execute("PRAGMA cache_size = -\(Self.largeCacheKiB)")
            defer { try? execute("PRAGMA cache_size = \(cache)") }
            try insertInChunks(table: table, columns: columns, rows: rows)
        } else {
            try insertInChunks(table: table, columns: columns, rows: rows)
        }
    }

    private func insertInChunks(table: String, columns: [Layout.Column], rows: [[SQLValue]]) throws {
        let width = columns.count
        let perStatement = max(1, min(Self.rowsPerInsert, 999 / width))
        func insert(_ count: Int) -> String {
            "INSERT OR FAIL INTO \(table) (\(columns.map(\.name).joined(separator: ", "))) VALUES "
                + (0..<count).map { row in "(" + (1...width).map { "?\(row * width + $0)" }.joined(separator: ", ") + ")" }.joined(separator: ", ")
        }
        let full = insert(perStatement)
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(start + perStatement, rows.count)]
            var values: [SQLValue] = []
            values.reserveCapacity(chunk.count * width)
            for row in chunk { values += row }
            let changed = try run(chunk.count == perStatement ? full : insert(chunk.count), values)
            guard changed == chunk.count else {
                throw StateError(.other, "inserting \(chunk.count) rows into \(table) changed \(changed) rows", help: "run 'orgctl audit verify'")
            }
            start = chunk.endIndex
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
