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
