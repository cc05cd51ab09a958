import Postgres
import Testing

@Suite("PostgreSQL COPY FROM and pipelines", .enabled(if: !TestServer.skipped, "ORGCTL_SKIP_POSTGRES=1"))
struct CopyAndPipelineTests {
    static let columns: [(name: String, type: PostgresColumnType)] = [
        ("id", .int8), ("n4", .int4), ("n2", .int2), ("name", .text), ("data", .bytea), ("flag", .bool), ("doc", .jsonb),
        ("at", .timestamptz),
    ]

    static func createTable(_ db: PostgresConnection) throws {
        try db.executeScript(
            "CREATE TABLE c (id int8 PRIMARY KEY, n4 int4, n2 int2, name text, data bytea, flag bool, doc jsonb, at timestamptz)")
    }

    @Test func copiesEveryTypeAndReadsItBack() throws {
        try TestServer.withSchema { db, _ in
            try Self.createTable(db)
            let rows: [[PostgresValue]] = (1...3000).map { (i: Int) -> [PostgresValue] in
                let id = Int64(i)
                let name: PostgresValue = .text("näme '\(i)'\t\\")
                let data: PostgresValue = .bytes([UInt8(i % 256), 0])
                let doc: PostgresValue = .text(#"{"i": \#(i), "s": "é"}"#)
                let at: PostgresValue = i == 1 ? .null : .text("2026-12-06T17:54:42.25+01:00")
                return [.int(id), .int(id * -1000), .int(id % 300), name, data, .bool(i % 2 == 0), doc, at]
            }
            #expect(try db.copyIn(table: "c", columns: Self.columns, rows: rows) == 3000)
            let back = try db.rows("SELECT id, n4, n2, name, data, flag, doc, at FROM c WHERE id IN (1, 2) ORDER BY id")
            #expect(
                back == [
                    [.int(1), .int(-1000), .int(1), .text("näme '1'\t\\"), .bytes([1, 0]), .bool(false), .text(#"{"i": 1, "s": "é"}"#), .null],
                    [
                        .int(2), .int(-2000), .int(2), .text("näme '2'\t\\"), .bytes([2, 0]), .bool(true), .text(#"{"i": 2, "s": "é"}"#),
                        .text("2026-12-06T16:54:42.25Z"),
                    ],
                ])
            // The server agrees on the timestamp (independent of our decoder).
            #expect(try db.rows("SELECT at = '2026-12-06 16:54:42.25+00' FROM c WHERE id = 2") == [[.bool(true)]])
            // A lazy sequence of any length streams.
            let lazy = (10_001...60_000).lazy.map { i -> [PostgresValue] in
                [.int(Int64(i)), .null, .null, .text("x"), .null, .null, .null, .int(0)]
            }
            #expect(try db.copyIn(table: "c", columns: Self.columns, rows: lazy) == 50_000)
            #expect(try db.rows("SELECT count(*), min(at) FROM c WHERE id > 10000") == [[.int(50_000), .text("1970-01-01T00:00:00Z")]])
        }
    }

    @Test(arguments: [
        (PostgresValue.text("1"), 0, "does not fit a int8 column"),
        (.int(70_000), 2, "does not fit in int2"),
        (.int(Int64(Int32.max) + 1), 1, "does not fit in int4"),
        (.text("yesterday"), 7, "is not an RFC 3339 timestamp"),
        (.bytes([1]), 3, "does not fit a text column"),
    ])
    func aValueOfTheWrongTypeCopiesNothing(value: PostgresValue, column: Int, message: String) throws {
        try TestServer.withSchema { db, _ in
            try Self.createTable(db)
            var good: [PostgresValue] = [.int(1), .null, .null, .text("ok"), .null, .null, .null, .null]
            var bad = good
            bad[column] = value
            good[0] = .int(0)
            let error = #expect(throws: PostgresError.self) {
                try db.copyIn(table: "c", columns: Self.columns, rows: [good, bad])
            }
            #expect(error?.kind == .protocolViolation)
            #expect(error?.message.contains(message) == true)
            #expect(error?.message.contains("row 2") == true)
            #expect(try db.rows("SELECT count(*) FROM c") == [[.int(0)]])
        }
    }

    @Test func aRowOfTheWrongLengthOrAServerErrorCopiesNothing() throws {
        try TestServer.withSchema { db, _ in
            try Self.createTable(db)
            let short = #expect(throws: PostgresError.self) {
                try db.copyIn(table: "c", columns: Self.columns, rows: [[.int(1)]])
            }
            #expect(short?.message.contains("1 values for 8 columns") == true)
            let duplicate: [PostgresValue] = [.int(1), .null, .null, .null, .null, .null, .null, .null]
            let unique = #expect(throws: PostgresError.self) {
                try db.copyIn(table: "c", columns: Self.columns, rows: [duplicate, duplicate])
            }
            #expect(unique?.sqlState == "23505")
            let missing = #expect(throws: PostgresError.self) {
                try db.copyIn(table: "nope", columns: [("id", .int8)], rows: [[.int(1)]])
            }
            #expect(missing?.sqlState == "42P01")
            #expect(try db.rows("SELECT count(*) FROM c") == [[.int(0)]])
        }
    }

    @Test func theRowSequenceCannotUseTheConnection() throws {
        try TestServer.withSchema { db, _ in
            try db.execute("CREATE TABLE s (id int8)")
            var nested: PostgresError?
            let rows = (1...3).lazy.map { (i: Int) -> [PostgresValue] in
                do { try db.execute("SELECT 1") } catch let error as PostgresError { nested = error } catch {}
                return [.int(Int64(i))]
            }
            #expect(try db.copyIn(table: "s", columns: [("id", .int8)], rows: rows) == 3)
            #expect(nested?.kind == .protocolViolation)
        }
    }

    @Test func pipelineReturnsResultsInOrder() throws {
        try TestServer.withSchema { db, _ in
            try db.execute("CREATE TABLE p (id int8 PRIMARY KEY, name text)")
            var statements: [(sql: String, parameters: [PostgresValue])] = (1...500).map {
                ("INSERT INTO p VALUES ($1, $2)", [.int(Int64($0)), .text("n\($0)")])
            }
            statements.append(("SELECT count(*), max(name) FROM p", []))
            statements.append(("UPDATE p SET name = name || '!' WHERE id <= $1", [.int(10)]))
            let results = try db.pipeline(statements)
            #expect(results.count == 502)
            #expect(results[0] == PipelineResult(affectedRows: 1, rows: []))
            #expect(results[500].rows == [[.int(500), .text("n99")]])
            #expect(results[501].affectedRows == 10)
            #expect(try db.pipeline([]) == [])
            // The connection is back out of pipeline mode.
            #expect(try db.rows("SELECT count(*) FROM p") == [[.int(500)]])
        }
    }

    @Test func aFailingStatementAbortsThePipelineAndNamesItsIndex() throws {
        try TestServer.withSchema { db, _ in
            try db.execute("CREATE TABLE p (id int8 PRIMARY KEY)")
            let error = #expect(throws: PostgresError.self) {
                try db.pipeline([
                    ("INSERT INTO p VALUES (1)", []), ("INSERT INTO p VALUES ($1)", [.int(1)]), ("INSERT INTO p VALUES (3)", []),
                ])
            }
            #expect(error?.statementIndex == 1)
            #expect(error?.sqlState == "23505")
            // One implicit transaction: the first insert is rolled back, the third never ran.
            #expect(try db.rows("SELECT count(*) FROM p") == [[.int(0)]])
            let nul = #expect(throws: PostgresError.self) {
                try db.pipeline([("SELECT 1", []), ("SELECT $1::text", [.text("\u{0}")])])
            }
            #expect(nul?.statementIndex == 1)
            #expect(try db.rows("SELECT 1") == [[.int(1)]])
        }
    }
}
