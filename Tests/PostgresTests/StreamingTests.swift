import Postgres
import Testing

/// Both streaming paths: without parameters (binary COPY) and with parameters (single-row mode).
@Suite("PostgreSQL streaming queries", .enabled(if: !TestServer.skipped, "ORGCTL_SKIP_POSTGRES=1"))
struct StreamingTests {
    enum Path: String, CaseIterable, Sendable {
        case copy, singleRow
        /// A WHERE clause true for every row, with or without a parameter.
        func query(_ select: String) -> (String, [PostgresValue]) {
            switch self {
            case .copy: ("\(select) WHERE id >= 0 ORDER BY id", [])
            case .singleRow: ("\(select) WHERE id >= $1 ORDER BY id", [.int(0)])
            }
        }
    }

    static func makeTable(_ db: PostgresConnection, rows: Int) throws {
        try db.executeScript(
            """
            CREATE TABLE t (id bigint PRIMARY KEY, small int2, name text, data bytea, flag boolean, doc jsonb, at timestamptz);
            INSERT INTO t SELECT i, (i % 100)::int2, 'name-' || i, CASE WHEN i % 2 = 0 THEN decode(lpad(to_hex(i), 8, '0'), 'hex') END,
                i % 3 = 0, jsonb_build_object('i', i), timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second'
            FROM generate_series(1, \(rows)) AS i;
            """)
    }

    @Test(arguments: Path.allCases)
    func streamsEveryRowWithTypedAccessors(path: Path) throws {
        try TestServer.withSchema { db, _ in
            try Self.makeTable(db, rows: 2000)
            let (sql, parameters) = path.query("SELECT id, small, name, data, flag, doc::text, at, NULL::text FROM t")
            var count = 0
            try db.query(sql, parameters) { row in
                count += 1
                let id = row.int(0)
                #expect(row.count == 8)
                #expect(id == Int64(count))
                #expect(row.int(1) == id % 100)
                #expect(row.text(2) == "name-\(id)")
                #expect(row.isNull(3) == (id % 2 != 0))
                if id % 2 == 0 {
                    let expected: [UInt8] = [UInt8(id >> 24 & 0xFF), UInt8(id >> 16 & 0xFF), UInt8(id >> 8 & 0xFF), UInt8(id & 0xFF)]
                    #expect(row.bytes(3) == expected)
                    #expect(row.withBytes(3) { Array($0) } == expected)
                }
                #expect(row.bool(4) == (id % 3 == 0))
                #expect(row.text(5) == #"{"i": \#(id)}"#)
                #expect(row.unixMicroseconds(6) == (1_767_225_600 + id) * 1_000_000)
                #expect(row.isNull(7) && row.optionalText(7) == nil && row.text(7) == "")
                #expect(row.isNull(99) && row.int(-1) == 0)  // out of range reads as NULL
                return true
            }
            #expect(count == 2000)
        }
    }

    @Test(arguments: Path.allCases)
    func stopsEarlyAndTheConnectionStaysUsable(path: Path) throws {
        try TestServer.withSchema { db, _ in
            try Self.makeTable(db, rows: 50_000)
            let (sql, parameters) = path.query("SELECT id, name FROM t")
            var seen = 0
            try db.query(sql, parameters) { _ in
                seen += 1
                return seen < 10
            }
            #expect(seen == 10)
            #expect(try db.rows("SELECT count(*) FROM t") == [[.int(50_000)]])
        }
    }

    /// Inside a transaction an early stop must not abort the transaction (no cancel there).
    @Test(arguments: Path.allCases)
    func stopInsideATransactionKeepsTheTransaction(path: Path) throws {
        try TestServer.withSchema { db, _ in
            try Self.makeTable(db, rows: 50)
            try db.executeScript("BEGIN")
            try db.execute("INSERT INTO t (id) VALUES (-1)")
            // Rows large enough to be flushed one by one (the server's send buffer is 8 KiB) and
            // slow, so the server is still producing when the callback stops: a cancel would land.
            let (sql, parameters) = path.query("SELECT id, repeat('x', 20000), pg_sleep(0.01)::text FROM t")
            try db.query(sql, parameters) { _ in false }
            try db.executeScript("COMMIT")
            #expect(try db.rows("SELECT count(*) FROM t WHERE id = -1") == [[.int(1)]])
        }
    }

    struct Stop: Error {}

    @Test(arguments: Path.allCases)
    func anErrorFromTheCallbackIsRethrown(path: Path) throws {
        try TestServer.withSchema { db, _ in
            try Self.makeTable(db, rows: 3000)
            let (sql, parameters) = path.query("SELECT id FROM t")
            #expect(throws: Stop.self) {
                try db.query(sql, parameters) { row in
                    if row.int(0) == 5 { throw Stop() }
                    return true
                }
            }
            #expect(try db.rows("SELECT 1") == [[.int(1)]])
        }
    }

    @Test(arguments: Path.allCases)
    func aFailingQueryThrowsItsServerError(path: Path) throws {
        try TestServer.withSchema { db, _ in
            try Self.makeTable(db, rows: 10)
            let (sql, parameters) = path.query("SELECT 1 / (id - 5) FROM t")
            var delivered = 0
            let error = #expect(throws: PostgresError.self) {
                try db.query(sql, parameters) { _ in
                    delivered += 1
                    return true
                }
            }
            #expect(error?.sqlState == "22012")
            #expect(delivered <= 4)
            let missing = #expect(throws: PostgresError.self) {
                try db.query(path.query("SELECT id FROM missing_table").0, path.query("").1) { _ in true }
            }
            #expect(missing?.sqlState == "42P01")
            #expect(try db.rows("SELECT 1") == [[.int(1)]])
        }
    }

    @Test func copyPathToleratesTrailingSemicolonAndComment() throws {
        let db = try TestServer.connect()
        var values: [Int64] = []
        try db.query("SELECT generate_series(1, 3) -- a comment;\n ;  ") { row in
            values.append(row.int(0))
            return true
        }
        #expect(values == [1, 2, 3])
    }

    @Test func valueDecodesByTypeOnlyWhenTypesAreKnown() throws {
        let db = try TestServer.connect()
        var copyValues: [PostgresValue] = []
        try db.query("SELECT 7::int8, 'x'::text, NULL::int4") { row in
            copyValues = (0..<row.count).map { row.value($0) }
            return true
        }
        #expect(copyValues == [.bytes([0, 0, 0, 0, 0, 0, 0, 7]), .bytes([0x78]), .null])
        var typed: [PostgresValue] = []
        try db.query("SELECT $1::int8, 'x'::text, NULL::int4", [.int(7)]) { row in
            typed = (0..<row.count).map { row.value($0) }
            return true
        }
        #expect(typed == [.int(7), .text("x"), .null])
    }

    @Test(arguments: Path.allCases)
    func theCallbackCannotUseTheConnectionAndCloseWaits(path: Path) throws {
        try TestServer.withSchema { db, _ in
            try Self.makeTable(db, rows: 100)
            let (sql, parameters) = path.query("SELECT id FROM t")
            var nested: PostgresError?
            try db.query(sql, parameters) { _ in
                do { try db.execute("SELECT 1") } catch let error as PostgresError { nested = error } catch {}
                return false
            }
            #expect(nested?.kind == .protocolViolation)
            #expect(nested?.message.contains("busy") == true)
            #expect(try db.rows("SELECT count(*) FROM t") == [[.int(100)]])

            let other = try TestServer.connect()
            var rowsSeen = 0
            try other.query(path.query("SELECT id FROM \(try db.rows("SELECT current_schema()::text")[0][0].textValue).t").0, parameters) { _ in
                rowsSeen += 1
                other.close()
                return true
            }
            #expect(rowsSeen == 100)
            let closed = #expect(throws: PostgresError.self) { try other.execute("SELECT 1") }
            #expect(closed?.kind == .connection)
        }
    }

    @Test func aRowKeptPastItsCallbackReadsAsEmpty() throws {
        let db = try TestServer.connect()
        var kept: PostgresRow?
        try db.query("SELECT 1::int8, 'kept'::text") { row in
            kept = row
            return true
        }
        #expect(kept?.count == 0)
        #expect(kept?.text(1) == "")
    }
}

extension PostgresValue {
    var textValue: String {
        if case .text(let text) = self { return text }
        return ""
    }
}
