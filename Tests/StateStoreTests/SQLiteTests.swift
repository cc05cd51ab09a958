import Foundation
import Testing

@testable import StateStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("SQLite wrapper")
struct SQLiteTests {
    // MARK: Helpers

    /// Runs `body` with a fresh folder under the temporary directory, removed afterwards.
    private static func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("SQLiteTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer {
            // Restore permissions a test may have removed, so the folder can be deleted.
            try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path)
            try? FileManager.default.removeItem(at: folder)
        }
        return try body(folder)
    }

    private static func open(
        _ url: URL, _ mode: SQLiteConnection.Mode = .readWriteCreate, timeout: Int32 = 50
    ) throws -> SQLiteConnection {
        try SQLiteConnection(path: url.path, mode: mode, busyTimeoutMilliseconds: timeout)
    }

    private static func count(_ db: SQLiteConnection, _ table: String = "t") throws -> Int64 {
        let statement = try db.prepare("SELECT count(*) FROM \(table)")
        #expect(try statement.step())
        return statement.int(at: 0)
    }

    /// Root ignores file modes, so permission tests only mean something for other users.
    private static let isPrivileged = getuid() == 0

    private struct BodyFailed: Error, Equatable {}

    // MARK: Values

    @Test func everyValueKindRoundTripsIncludingNULsAndEmptyValues() throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            // No declared type: no affinity, so each value keeps its storage class.
            try db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
            let values: [SQLiteValue] = [
                .null,
                .integer(0), .integer(.min), .integer(.max),
                .real(3.25), .real(-1e300),
                .text("plain"), .text(""), .text("a\u{0}b\u{0}"), .text("héllo ✓ 👩‍💻"),
                .blob([]), .blob([0]), .blob([0, 1, 0xFF, 0]),
            ]
            let insert = try db.prepare("INSERT INTO t(v) VALUES (?)")
            for value in values { try insert.run([value]) }

            let rows = try db.prepare("SELECT v FROM t ORDER BY id").all()
            #expect(rows == values.map { [$0] })

            // "" and an empty blob are stored as values, not NULL; NULs count as bytes.
            let kinds = try db.prepare("SELECT typeof(v), length(CAST(v AS BLOB)) FROM t ORDER BY id").all()
            #expect(kinds[7] == [.text("text"), .integer(0)])
            #expect(kinds[8] == [.text("text"), .integer(4)])
            #expect(kinds[10] == [.text("blob"), .integer(0)])
        }
    }

    @Test func typedBindersAndReadersMatchTheBoxedOnes() throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            try db.execute("CREATE TABLE t(i INTEGER, s TEXT, b BLOB, n TEXT)")
            let insert = try db.prepare("INSERT INTO t(i, s, b, n) VALUES (?1, ?2, ?3, ?4)")
            try insert.bind(int: -42, at: 1)
            try insert.bind(text: "x\u{0}y", at: 2)
            try insert.bind(blob: [], at: 3)
            try insert.bindNull(at: 4)
            try insert.run()

            let select = try db.prepare("SELECT i, s, b, n FROM t")
            #expect(try select.step())
            #expect(select.columnCount == 4)
            #expect(select.columnName(at: 1) == "s")
            #expect(select.int(at: 0) == -42)
            #expect(select.text(at: 1) == "x\u{0}y")
            #expect(select.optionalText(at: 1) == "x\u{0}y")
            #expect(select.blob(at: 2) == [])
            #expect(!select.isNull(at: 2))
            #expect(select.isNull(at: 3))
            #expect(select.optionalText(at: 3) == nil)
            #expect(select.row() == [.integer(-42), .text("x\u{0}y"), .blob([]), .null])
            #expect(try !select.step())
        }
    }

    @Test func bindingTheWrongNumberOfValuesIsRejected() throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            try db.execute("CREATE TABLE t(a, b)")
            let insert = try db.prepare("INSERT INTO t(a, b) VALUES (?, ?)")
            let error = #expect(throws: SQLiteError.self) { try insert.run([.integer(1)]) }
            #expect(error?.code == 25)  // SQLITE_RANGE
            #expect(try Self.count(db) == 0)
        }
    }

    @Test func lastInsertRowIDAndChangesReportTheLatestStatement() throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            try db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t(v) VALUES (1), (2), (3)")
            try db.prepare("INSERT INTO t(v) VALUES (?)").run([.integer(4)])
            #expect(db.lastInsertRowID == 4)
            try db.prepare("UPDATE t SET v = 0 WHERE v < 3").run()
            #expect(db.changes == 2)
        }
    }

    // MARK: Errors

    @Test(arguments: [
        ("name TEXT NOT NULL", 1299 as Int32),  // SQLITE_CONSTRAINT_NOTNULL
        ("name TEXT UNIQUE", 2067),  // SQLITE_CONSTRAINT_UNIQUE
        ("name TEXT CHECK (length(name) < 3)", 275),  // SQLITE_CONSTRAINT_CHECK
    ])
    func constraintErrorsCarryTheExtendedCodeAndSQLButNotTheValues(column: String, code: Int32) throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            try db.execute("CREATE TABLE t(\(column), secret TEXT)")
            let sql = "INSERT INTO t(name, secret) VALUES (?, ?)"
            let secret = "s3cr3t-api-token"
            let name: SQLiteValue = code == 1299 ? .null : .text("private-name")
            let insert = try db.prepare(sql)
            if code == 2067 { try insert.run([name, .text(secret)]) }

            let error = #expect(throws: SQLiteError.self) { try insert.run([name, .text(secret)]) }
            #expect(error?.code == code)
            #expect(error?.primaryCode == 19)
            #expect(error?.kind == .constraint)
            #expect(error?.sql == sql)
            let text = error.map { "\($0) \($0.message) \($0.userMessage)" } ?? ""
            #expect(text.contains(sql))
            #expect(!text.contains(secret))
            #expect(!text.contains("private-name"))
        }
    }

    @Test func aFileOfRandomBytesIsNotADatabase() throws {
        try Self.withTemporaryDirectory { folder in
            let url = folder.appendingPathComponent("state.db")
            var bytes = (0..<8192).map { _ in UInt8.random(in: .min ... .max) }
            bytes[0] = 0  // never the "SQLite format 3" header
            try Data(bytes).write(to: url)

            let error = #expect(throws: SQLiteError.self) {
                let db = try Self.open(url, .readWrite)
                _ = try Self.count(db, "sqlite_master")
            }
            #expect(error?.kind == .notADatabase)
            #expect(error?.code == 26)  // SQLITE_NOTADB
            #expect(error?.userMessage == "the file is not a SQLite database")
        }
    }

    @Test func openingAMissingFileReadOnlyFailsWithoutCreatingIt() throws {
        try Self.withTemporaryDirectory { folder in
            let url = folder.appendingPathComponent("missing.db")
            let error = #expect(throws: SQLiteError.self) { _ = try Self.open(url, .readOnly) }
            #expect(error?.kind == .cantOpen)
            #expect(error?.primaryCode == 14)  // SQLITE_CANTOPEN
            #expect(!FileManager.default.fileExists(atPath: url.path))

            let nested = folder.appendingPathComponent("no-such-folder/state.db")
            let createError = #expect(throws: SQLiteError.self) { _ = try Self.open(nested, .readWriteCreate) }
            #expect(createError?.kind == .cantOpen)
        }
    }

    @Test func aReadOnlyConnectionRefusesWrites() throws {
        try Self.withTemporaryDirectory { folder in
            let url = folder.appendingPathComponent("state.db")
            do {
                let writer = try Self.open(url)
                try writer.execute("CREATE TABLE t(v); INSERT INTO t VALUES (1)")
            }
            let reader = try Self.open(url, .readOnly)
            #expect(reader.isReadOnly)
            #expect(try Self.count(reader) == 1)
            let error = #expect(throws: SQLiteError.self) {
                try reader.prepare("INSERT INTO t VALUES (2)").run()
            }
            #expect(error?.kind == .readOnly)
            #expect(error?.primaryCode == 8)  // SQLITE_READONLY
            #expect(error?.userMessage == "the state database is read-only (check the file and folder permissions)")
            #expect(try Self.count(reader) == 1)
        }
    }

    @Test(.disabled(if: isPrivileged, "root bypasses file modes"))
    func aWriteProtectedFileOpenedReadWriteRefusesWrites() throws {
        try Self.withTemporaryDirectory { folder in
            let url = folder.appendingPathComponent("state.db")
            do {
                let writer = try Self.open(url)
                try writer.execute("CREATE TABLE t(v)")
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: url.path)
            let db = try Self.open(url, .readWrite)
            #expect(db.isReadOnly)
            let error = #expect(throws: SQLiteError.self) { try db.execute("INSERT INTO t VALUES (1)") }
            #expect(error?.kind == .readOnly)
        }
    }

    @Test(arguments: [
        (SQLiteError.Kind.busy, "another orgctl apply, or another program, holds the state database's write lock"),
        (.readOnly, "the state database is read-only (check the file and folder permissions)"),
        (.corrupt, "the state database file is corrupt"),
        (.notADatabase, "the file is not a SQLite database"),
        (.full, "the disk is full (or the database reached its size limit)"),
    ])
    func userMessagesNameTheCauseForAnOperator(kind: SQLiteError.Kind, expected: String) {
        let error = SQLiteError(code: 1, message: "low-level detail", sql: "SELECT 1", kind: kind)
        #expect(error.userMessage == expected)
    }

    @Test(arguments: [
        (5 as Int32, SQLiteError.Kind.busy), (6, .busy), (517, .busy),  // BUSY, LOCKED, BUSY_SNAPSHOT
        (8, .readOnly), (1032, .readOnly),  // READONLY, READONLY_DBMOVED
        (11, .corrupt), (26, .notADatabase), (13, .full),
        (14, .cantOpen), (1555, .constraint), (266, .ioError), (1, .other),
    ])
    func extendedCodesMapToKinds(code: Int32, kind: SQLiteError.Kind) {
        #expect(SQLiteError.Kind(code: code, databasePath: nil) == kind)
    }

    // MARK: Transactions

    @Test func aTransactionCommitsTheBodysWork() throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            try db.execute("CREATE TABLE t(v)")
            let result = try db.transaction {
                try db.prepare("INSERT INTO t VALUES (1)").run()
                return "done"
            }
            #expect(result == "done")
            #expect(!db.isInTransaction)
            #expect(try Self.count(db) == 1)
        }
    }

    @Test(arguments: [SQLiteConnection.TransactionKind.deferred, .immediate, .exclusive])
    func aThrowingTransactionRollsBackAndRethrowsTheBodysError(kind: SQLiteConnection.TransactionKind) throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            try db.execute("CREATE TABLE t(v)")
            #expect(throws: BodyFailed()) {
                try db.transaction(kind) {
                    try db.prepare("INSERT INTO t VALUES (1)").run()
                    #expect(db.isInTransaction)
                    throw BodyFailed()
                }
            }
            #expect(!db.isInTransaction)
            #expect(try Self.count(db) == 0)
        }
    }

    @Test func aNestedTransactionFailsWithoutRollingBackTheOuterOne() throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            try db.execute("CREATE TABLE t(v)")
            try db.transaction {
                try db.prepare("INSERT INTO t VALUES (1)").run()
                #expect(throws: SQLiteError.self) { try db.transaction { () } }
                #expect(db.isInTransaction)
            }
            #expect(try Self.count(db) == 1)
        }
    }

    @Test func beginImmediateFailsAsBusyWhileAnotherConnectionHoldsTheWriteLock() throws {
        try Self.withTemporaryDirectory { folder in
            let url = folder.appendingPathComponent("state.db")
            let first = try Self.open(url)
            try first.execute("PRAGMA journal_mode = WAL; CREATE TABLE t(v)")
            #expect(try first.pragma("journal_mode") == .text("wal"))
            let second = try Self.open(url, timeout: 50)

            try first.execute("BEGIN IMMEDIATE")
            try first.execute("INSERT INTO t VALUES (1)")
            var bodyRan = false
            let error = #expect(throws: SQLiteError.self) {
                try second.transaction(.immediate) { bodyRan = true }
            }
            #expect(error?.kind == .busy)
            #expect(error?.sql == "BEGIN IMMEDIATE")
            #expect(error?.userMessage == "another orgctl apply, or another program, holds the state database's write lock")
            #expect(!bodyRan)
            #expect(!second.isInTransaction)
            // WAL readers are not blocked by the writer, and see the last commit.
            #expect(try Self.count(second) == 0)

            try first.execute("COMMIT")
            try second.transaction { try second.prepare("INSERT INTO t VALUES (2)").run() }
            #expect(try Self.count(first) == 2)
        }
    }

    @Test func aCommitThatFailsIsReportedAndRolledBack() throws {
        try Self.withTemporaryDirectory { folder in
            let url = folder.appendingPathComponent("state.db")
            let writer = try Self.open(url, timeout: 50)
            // Rollback-journal mode: COMMIT needs an exclusive lock, which a reader blocks.
            try writer.execute("PRAGMA journal_mode = DELETE; CREATE TABLE t(v); INSERT INTO t VALUES (1), (2)")
            let reader = try Self.open(url)
            let pendingRead = try reader.prepare("SELECT v FROM t")
            #expect(try pendingRead.step())  // holds a shared lock until reset

            let error = #expect(throws: SQLiteError.self) {
                try writer.transaction { try writer.prepare("INSERT INTO t VALUES (3)").run() }
            }
            #expect(error?.kind == .busy)
            #expect(error?.sql == "COMMIT")
            #expect(!writer.isInTransaction)

            pendingRead.reset()
            #expect(try Self.count(reader) == 2)
            #expect(try Self.count(writer) == 2)
        }
    }

    @Test func aFullDatabaseFailsAsFullAndRollsBackTheTransaction() throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            try db.execute("CREATE TABLE t(b BLOB)")
            guard case .integer(let pages) = try db.pragma("page_count") else {
                Issue.record("page_count is not an integer")
                return
            }
            try db.execute("PRAGMA max_page_count = \(pages + 4)")
            let error = #expect(throws: SQLiteError.self) {
                try db.transaction {
                    let insert = try db.cached("INSERT INTO t(b) VALUES (zeroblob(?))")
                    for _ in 0..<100 { try insert.run([.integer(8192)]) }
                }
            }
            #expect(error?.kind == .full)
            #expect(error?.code == 13)  // SQLITE_FULL
            #expect(error?.userMessage == "the disk is full (or the database reached its size limit)")
            #expect(!db.isInTransaction)
            #expect(try Self.count(db) == 0)
        }
    }

    // MARK: Statements

    @Test func cachedStatementsAreReusedAndResetBetweenUses() throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            try db.execute("CREATE TABLE t(v INTEGER); INSERT INTO t VALUES (1), (2), (3)")
            let sql = "SELECT v FROM t WHERE v >= ? ORDER BY v"

            let first = try db.cached(sql)
            try first.bind(int: 2, at: 1)
            #expect(try first.step())
            #expect(first.int(at: 0) == 2)  // left half-read

            let second = try db.cached(sql)
            #expect(second === first)
            // Reset: stepping starts again; cleared: the old parameter is gone (v >= NULL).
            #expect(try second.all() == [])
            #expect(try second.all([.integer(1)]) == [[.integer(1)], [.integer(2)], [.integer(3)]])

            let other = try db.cached("SELECT count(*) FROM t")
            #expect(other !== first)
            // The half-read statement was reset, so it no longer pins a read snapshot.
            try db.transaction(.exclusive) { try db.execute("DELETE FROM t WHERE v = 3") }
            #expect(try db.cached(sql).all([.integer(0)]) == [[.integer(1)], [.integer(2)]])
        }
    }

    @Test func prepareRejectsTrailingStatementsButNotTrailingComments() throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            try db.execute("CREATE TABLE t(v)")
            #expect(throws: SQLiteError.self) { _ = try db.prepare("DELETE FROM t; DROP TABLE t") }
            #expect(throws: SQLiteError.self) { _ = try db.prepare("SELECT 1; garbage") }
            #expect(throws: SQLiteError.self) { _ = try db.prepare("-- nothing") }
            #expect(try db.prepare("SELECT 1; -- done\n").all() == [[.integer(1)]])
            #expect(try Self.count(db) == 0)  // the table survived
        }
    }

    @Test func pragmaReadsValuesAndRejectsAnythingButANAme() throws {
        try Self.withTemporaryDirectory { folder in
            let db = try Self.open(folder.appendingPathComponent("state.db"))
            try db.execute("CREATE TABLE t(v); PRAGMA user_version = 7")
            #expect(try db.pragma("user_version") == .integer(7))
            #expect(try db.pragma("main.user_version") == .integer(7))
            #expect(try db.pragma("optimize") == nil)
            let error = #expect(throws: SQLiteError.self) { _ = try db.pragma("user_version = 0; DROP TABLE t") }
            #expect(error?.kind == .other)
            #expect(try db.pragma("user_version") == .integer(7))
            #expect(try Self.count(db) == 0)
        }
    }

    @Test func aStatementOutlivesItsConnectionAndTheCacheDoesNotLeakIt() throws {
        try Self.withTemporaryDirectory { folder in
            weak var released: SQLiteConnection?
            var statement: SQLiteStatement?
            do {
                let db = try Self.open(folder.appendingPathComponent("state.db"))
                _ = try db.cached("SELECT 1")
                statement = try db.prepare("SELECT 40 + 2")
                released = db
            }
            #expect(released == nil)
            #expect(try statement?.step() == true)
            #expect(statement?.int(at: 0) == 42)
        }
    }

    // MARK: Read-only connections leave no -wal/-shm behind

    private static func sidecars(_ url: URL) -> [String] {
        ["-wal", "-shm"].filter { FileManager.default.fileExists(atPath: url.path + $0) }
    }

    @Test func aReadOnlyConnectionRemovesTheWALFilesItCreated() throws {
        try Self.withTemporaryDirectory { folder in
            let url = folder.appendingPathComponent("db.sqlite")
            do {
                let writer = try Self.open(url)
                try writer.execute("PRAGMA journal_mode = WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1)")
            }
            #expect(Self.sidecars(url) == [], "the last writer to close removes them")
            let before = try Data(contentsOf: url)
            do {
                let reader = try Self.open(url, .readOnly)
                #expect(try Self.count(reader) == 1)
                #expect(Self.sidecars(url) == ["-wal", "-shm"], "SQLite creates them for the reader")
            }
            #expect(Self.sidecars(url) == [])
            #expect(try Data(contentsOf: url) == before, "tidying changed the database file")
        }
    }

    @Test func aReadOnlyConnectionLeavesTheWALFilesOfAnotherConnection() throws {
        try Self.withTemporaryDirectory { folder in
            let url = folder.appendingPathComponent("db.sqlite")
            let writer = try Self.open(url)
            try writer.execute("PRAGMA journal_mode = WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1)")
            try writer.execute("CREATE TABLE later(y)")
            // The writer still has the database open, with a WAL that holds committed frames.
            do {
                let reader = try Self.open(url, .readOnly)
                #expect(try Self.count(reader) == 1)
            }
            #expect(Self.sidecars(url) == ["-wal", "-shm"])
            try writer.execute("INSERT INTO t VALUES (2)")
            #expect(try Self.count(writer) == 2)
            // Files that existed before a reader opened are not its to tidy, even after the writer is gone.
            let second = try Self.open(url, .readOnly)
            #expect(try Self.count(second) == 2)
            _ = consume writer
            _ = consume second
            #expect(Self.sidecars(url) == ["-wal", "-shm"])
        }
    }
}
