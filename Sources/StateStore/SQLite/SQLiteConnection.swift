internal import CSQLite
import Foundation

/// One connection to a SQLite database file.
///
/// Threading: the class is deliberately not `Sendable`, so the compiler confines a
/// connection and its statements to one isolation domain (own it from an actor or a
/// `Mutex` to share it). It is therefore opened with `SQLITE_OPEN_NOMUTEX`: SQLite's
/// per-connection mutex (`FULLMUTEX`) would only guard against concurrent use that Swift
/// already rules out, at the cost of a lock round-trip on every call. Separate
/// connections can still be used from separate threads, which is all orgctl needs.
///
/// Extended result codes are always on, and every connection has a busy timeout, which
/// also applies to `BEGIN IMMEDIATE` and `COMMIT` while another process holds the lock.
final class SQLiteConnection {
    enum Mode: Sendable {
        /// Reads only; writes fail with `SQLiteError.Kind.readOnly`.
        case readOnly
        /// Reads and writes an existing file. SQLite silently falls back to read-only when
        /// the file is write-protected: check `isReadOnly`.
        case readWrite
        /// Like `readWrite`, creating the file when it does not exist.
        case readWriteCreate
    }

    enum TransactionKind: Sendable {
        /// Takes locks on first read/write; a later write may fail with `busy` without waiting.
        case deferred
        /// Takes the write lock up front (waiting up to the busy timeout): the right default
        /// for read-modify-write.
        case immediate
        /// Like `immediate`; in rollback-journal mode it also keeps readers out.
        case exclusive

        var beginSQL: String {
            switch self {
            case .deferred: "BEGIN DEFERRED"
            case .immediate: "BEGIN IMMEDIATE"
            case .exclusive: "BEGIN EXCLUSIVE"
            }
        }
    }

    /// The path the connection was opened with.
    let path: String
    private let handle: OpaquePointer  // sqlite3 *
    /// A read-only connection to a file that had no `-wal` and `-shm` beside it: SQLite creates
    /// them, and a read-only connection cannot remove them when it closes (see `removeWALFiles`).
    private let tidiesWALFiles: Bool
    private var statementCache: [String: SQLiteStatement] = [:]
    /// Writes held back until the open transaction commits (run by ``transaction(_:_:)``).
    let pendingWrites = PendingWrites()

    /// Opens `path`.
    ///
    /// - Throws: `SQLiteError` (`cantOpen`, `readOnly`, ...). No handle is leaked on failure.
    init(path: String, mode: Mode, busyTimeoutMilliseconds: Int32) throws(SQLiteError) {
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        switch mode {
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        case .readWrite: flags |= SQLITE_OPEN_READWRITE
        case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        }
        let tidies = mode == .readOnly && !Self.exists(path + "-wal") && !Self.exists(path + "-shm")
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            // sqlite3_open_v2 usually allocates a handle even when it fails; it carries the
            // message and must still be closed.
            let error = SQLiteError(db: db, resultCode: rc, sql: nil, databasePath: path)
            sqlite3_close_v2(db)
            throw error
        }
        let timeoutRC = sqlite3_busy_timeout(db, max(0, busyTimeoutMilliseconds))
        guard timeoutRC == SQLITE_OK else {
            let error = SQLiteError(db: db, resultCode: timeoutRC, sql: nil, databasePath: path)
            sqlite3_close_v2(db)
            throw error
        }
        self.path = path
        self.handle = db
        self.tidiesWALFiles = tidies
    }

    deinit {
        statementCache.removeAll()
        // close_v2 defers the close until statements still held elsewhere are finalized,
        // so a statement outliving its connection stays valid (statements do not retain
        // the connection, which would make the statement cache a reference cycle).
        sqlite3_close_v2(handle)
        if tidiesWALFiles { Self.removeWALFiles(path) }
    }

    private static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Removes the `-wal` and `-shm` files a read-only connection left behind, the way SQLite
    /// itself does: the last connection to close a WAL database checkpoints it and deletes both,
    /// if it can write the file and takes the exclusive lock, i.e. only when no other connection
    /// (in any process) has the database open. A read-only connection never can, so a brief
    /// read-write connection (no `CREATE`, `query_only`: it changes no row) reads the schema,
    /// which opens the WAL, and closes. When another process is using the database, or the file
    /// is not writable, its close leaves everything as it is; nothing is ever deleted by hand.
    static func removeWALFiles(_ path: String) {
        guard exists(path + "-wal") || exists(path + "-shm") else { return }
        var db: OpaquePointer?
        if sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db,
            sqlite3_db_readonly(db, "main") == 0
        {
            sqlite3_busy_timeout(db, 0)
            sqlite3_exec(db, "PRAGMA query_only = 1; SELECT count(*) FROM sqlite_master", nil, nil, nil)
        }
        sqlite3_close_v2(db)
    }

    // MARK: Running SQL

    /// Runs one or more `;`-separated statements that take no parameters (schema scripts,
    /// pragmas that set values, `BEGIN`/`COMMIT`).
    func execute(_ sql: String) throws(SQLiteError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw SQLiteError(db: handle, resultCode: rc, sql: sql) }
    }

    /// Compiles exactly one statement. Use `execute(_:)` for scripts.
    func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        try prepare(sql, flags: 0)
    }

    /// Returns the cached statement for `sql`, preparing it on first use.
    ///
    /// The same object is returned for the same SQL text, reset and with its bindings
    /// cleared, so finish using one result before asking for the same SQL again.
    func cached(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let statement = statementCache[sql] {
            statement.reset()
            statement.clearBindings()
            return statement
        }
        let statement = try prepare(sql, flags: UInt32(SQLITE_PREPARE_PERSISTENT))
        statementCache[sql] = statement
        return statement
    }

    private func prepare(_ sql: String, flags: UInt32) throws(SQLiteError) -> SQLiteStatement {
        var statement: OpaquePointer?
        var hasMoreSQL = false
        let rc = sql.withCString { text in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v3(handle, text, -1, flags, &statement, &tail)
            // SQLite silently ignores anything after the first statement: compile the rest
            // to find out whether it is more SQL (even invalid SQL) or only whitespace,
            // semicolons and comments.
            if rc == SQLITE_OK, let tail, tail.pointee != 0 {
                var next: OpaquePointer?
                hasMoreSQL = sqlite3_prepare_v2(handle, tail, -1, &next, nil) != SQLITE_OK || next != nil
                sqlite3_finalize(next)
            }
            return rc
        }
        guard rc == SQLITE_OK else { throw SQLiteError(db: handle, resultCode: rc, sql: sql) }
        if hasMoreSQL {
            sqlite3_finalize(statement)
            throw SQLiteError.misuse(
                "more than one statement; use execute(_:) for scripts", sql: sql, code: SQLITE_ERROR)
        }
        guard let statement else {
            throw SQLiteError.misuse("no SQL statement to prepare", sql: sql, code: SQLITE_ERROR)
        }
        return SQLiteStatement(handle: statement, sql: sql)
    }

    // MARK: Transactions

    /// Runs `body` inside a transaction: `COMMIT` when it returns (after the writes it held back
    /// in ``pendingWrites``), `ROLLBACK` when it throws (the body's error is rethrown unchanged).
    ///
    /// A failing `COMMIT` (`busy`, `full`, ...) is thrown after rolling back, so no
    /// transaction is ever left open after an error. Transactions do not nest: calling
    /// this inside another transaction throws from `BEGIN` and leaves the outer one alone.
    func transaction<T>(_ kind: TransactionKind = .immediate, _ body: () throws -> T) throws -> T {
        try execute(kind.beginSQL)
        let result: T
        do {
            result = try body()
            try pendingWrites.run()
        } catch {
            rollbackAfterFailure()
            throw error
        }
        do {
            try execute("COMMIT")
        } catch {
            rollbackAfterFailure()
            throw error
        }
        return result
    }

    /// Whether a transaction is open (`sqlite3_get_autocommit` is off).
    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Rolls back whatever is open, reporting nothing: the caller is already throwing
    /// the error that matters. SQLite may have rolled back on its own (for example after
    /// `SQLITE_FULL`), in which case there is nothing to do.
    private func rollbackAfterFailure() {
        pendingWrites.discard()
        guard isInTransaction else { return }
        try? execute("ROLLBACK")
        guard isInTransaction else { return }
        // A statement that is still mid-step can block the rollback: reset them all.
        var statement = sqlite3_next_stmt(handle, nil)
        while let current = statement {
            if sqlite3_stmt_busy(current) != 0 { sqlite3_reset(current) }
            statement = sqlite3_next_stmt(handle, current)
        }
        try? execute("ROLLBACK")
    }

    // MARK: Connection state

    /// The rowid of the most recent successful `INSERT` on this connection.
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Rows changed by the most recent `INSERT`, `UPDATE` or `DELETE`.
    var changes: Int { Int(sqlite3_changes64(handle)) }

    /// Whether the main database is read-only (opened `readOnly`, or write-protected).
    var isReadOnly: Bool { sqlite3_db_readonly(handle, "main") == 1 }

    /// Reads a pragma, for example `pragma("journal_mode")` or `pragma("main.user_version")`.
    ///
    /// - Returns: the first column of the first row, or `nil` when the pragma returns no row.
    /// - Throws: `SQLiteError` of kind `other` when `name` is not a plain (optionally
    ///   schema-qualified) identifier; the name is spliced into SQL, so nothing else is accepted.
    ///   Set pragmas with `execute(_:)`, for example `execute("PRAGMA journal_mode = WAL")`.
    func pragma(_ name: String) throws(SQLiteError) -> SQLiteValue? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        let isIdentifier = { (part: Substring) in
            !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        }
        guard (1...2).contains(parts.count), parts.allSatisfy(isIdentifier) else {
            throw SQLiteError.misuse("invalid pragma name '\(name)'", sql: nil, code: SQLITE_ERROR)
        }
        let statement = try prepare("PRAGMA \(name)")
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return statement.value(at: 0)
    }
}
