import Foundation
import Postgres
import Testing

@Suite("PostgreSQL connection and statements", .enabled(if: !TestServer.skipped, "ORGCTL_SKIP_POSTGRES=1"))
struct ConnectionTests {
    @Test func connectsWithUTF8AndTheApplicationName() throws {
        let connection = try TestServer.connect(applicationName: "orgctl apply (actor ci)")
        defer { connection.close() }
        #expect(connection.serverVersion >= 100_000)
        #expect(connection.backendPID > 0)
        let rows = try connection.rows(
            "SELECT current_setting('application_name'), current_setting('client_encoding'), pg_backend_pid()")
        #expect(rows == [[.text("orgctl apply (actor ci)"), .text("UTF8"), .int(Int64(connection.backendPID))]])
    }

    @Test func applicationNameOverridesTheConnectionString() throws {
        let conninfo = try TestServer.conninfo() + "&application_name=from-uri"
        let connection = try PostgresConnection(conninfo: conninfo, applicationName: "from-api")
        #expect(try connection.rows("SELECT current_setting('application_name')") == [[.text("from-api")]])
        let fallback = try PostgresConnection(conninfo: conninfo, applicationName: nil)
        #expect(try fallback.rows("SELECT current_setting('application_name')") == [[.text("from-uri")]])
    }

    @Test func executeReturnsAffectedRowsAndScriptsRunSeveralStatements() throws {
        try TestServer.withSchema { db, _ in
            try db.executeScript("CREATE TABLE t (id bigint PRIMARY KEY, name text); CREATE INDEX ON t (name);")
            #expect(try db.execute("INSERT INTO t VALUES ($1, $2), ($3, $4)", [.int(1), .text("a"), .int(2), .text("b")]) == 2)
            #expect(try db.execute("UPDATE t SET name = 'c'") == 2)
            #expect(try db.execute("CREATE TABLE u (x int)") == 0)
            #expect(try db.execute("DELETE FROM t WHERE id = $1", [.int(1)]) == 1)
            // One statement only on the extended protocol: a second one is refused, not run.
            let error = #expect(throws: PostgresError.self) { try db.execute("DELETE FROM t; DROP TABLE t") }
            #expect(error?.sqlState == "42601")
            #expect(try db.rows("SELECT count(*) FROM t") == [[.int(1)]])
        }
    }

    /// `$1` against each column type with the value kind meant for it.
    @Test(arguments: [
        ("bigint", PostgresValue.int(9_000_000_000), "9000000000"),
        ("integer", .int(42), "42"),
        ("smallint", .int(-7), "-7"),
        ("text", .text("ünïcødé 'quoted' \\ text"), "'ünïcødé ''quoted'' \\ text'"),
        ("bytea", .bytes([0, 1, 0xFF, 0x27]), "'\\x0001ff27'"),
        ("boolean", .bool(true), "true"),
        ("jsonb", .text(#"{"a": [1, 2]}"#), #"'{"a": [1, 2]}'"#),
        ("timestamptz", .text("2026-12-06T17:54:42Z"), "'2026-12-06T17:54:42Z'"),
    ])
    func parameterMatchesColumn(type: String, value: PostgresValue, literal: String) throws {
        try TestServer.withSchema { db, _ in
            try db.execute("CREATE TABLE t (c \(type))")
            try db.execute("INSERT INTO t VALUES (\(literal)), (NULL)")
            #expect(try db.rows("SELECT count(*) FROM t WHERE c = $1", [value]) == [[.int(1)]])
            #expect(try db.execute("INSERT INTO t VALUES ($1)", [value]) == 1)
            #expect(try db.rows("SELECT count(*) FROM t WHERE c = $1", [value]) == [[.int(2)]])
            #expect(try db.rows("SELECT count(*) FROM t WHERE c IS NOT DISTINCT FROM $1", [.null]) == [[.int(1)]])
        }
    }

    /// COMMIT after a failed statement answers ROLLBACK without an error: that must throw.
    @Test func aCommitThatRollsBackThrows() throws {
        try TestServer.withSchema { db, _ in
            try db.execute("CREATE TABLE t (id int PRIMARY KEY)")
            for commit in ["COMMIT", "end;", "commit transaction"] {
                try db.executeScript("BEGIN; INSERT INTO t VALUES (1)")
                #expect(throws: PostgresError.self) { try db.execute("INSERT INTO t VALUES (1)") }
                let error = #expect(throws: PostgresError.self) { try db.execute(commit) }
                #expect(error?.sqlState == "25P02")
            }
            try db.executeScript("BEGIN; INSERT INTO t VALUES (1)")
            #expect(throws: PostgresError.self) { try db.execute("INSERT INTO t VALUES (1)") }
            let script = #expect(throws: PostgresError.self) { try db.executeScript("  COMMIT ;\n") }
            #expect(script?.sqlState == "25P02")
            try db.executeScript("BEGIN")
            #expect(throws: PostgresError.self) { try db.execute("SELECT 1/0") }
            #expect(throws: PostgresError.self) { try db.pipeline([("COMMIT", [])]) }
            #expect(try db.rows("SELECT count(*) FROM t") == [[.int(0)]])
            // A real commit and an explicit rollback do not throw.
            try db.executeScript("BEGIN; INSERT INTO t VALUES (2); COMMIT")
            try db.executeScript("BEGIN; INSERT INTO t VALUES (3)")
            try db.execute("ROLLBACK")
            #expect(try db.rows("SELECT id FROM t") == [[.int(2)]])
        }
    }

    @Test func textParameterWithNULIsRefusedBeforeSending() throws {
        let db = try TestServer.connect()
        let error = #expect(throws: PostgresError.self) { try db.execute("SELECT $1::text", [.text("a\u{0}b")]) }
        #expect(error?.kind == .query)
        #expect(try db.rows("SELECT 1") == [[.int(1)]])
    }

    @Test func rowsDecodeByColumnType() throws {
        let db = try TestServer.connect()
        let rows = try db.rows(
            """
            SELECT 1::int2, 2::int4, 3::int8, true, 'tëxt'::text, 'v'::varchar, '{"k": 1}'::jsonb, '\\x00ff'::bytea,
                   NULL::text, '2026-12-06 17:54:42.5+00'::timestamptz, 1.5::numeric, 'c'::char(2)
            """)
        #expect(
            rows == [
                [
                    .int(1), .int(2), .int(3), .bool(true), .text("tëxt"), .text("v"), .text(#"{"k": 1}"#), .bytes([0, 0xFF]),
                    .null, .text("2026-12-06T17:54:42.5Z"), rows[0][10], .text("c "),
                ]
            ])
        #expect(try db.rows("SELECT 1 WHERE false") == [])
    }

    @Test func invalidUTF8FromTheServerDoesNotTrap() throws {
        let db = try TestServer.connect()
        var seen: [String] = []
        try db.query("SELECT '\\xff41c3'::bytea AS b", [PostgresValue]()) { row in
            seen.append(row.text(0))
            return true
        }
        try db.query("SELECT $1::bytea", [.bytes([0xFF, 0x41, 0xC3])]) { row in
            seen.append(row.text(0))
            return true
        }
        #expect(seen == ["\u{FFFD}A\u{FFFD}", "\u{FFFD}A\u{FFFD}"])
    }

    @Test func noticesDoNotBreakTheConnection() throws {
        let db = try TestServer.connect()
        try db.executeScript("DO $$ BEGIN RAISE NOTICE 'a notice'; RAISE WARNING 'a warning'; END $$")
        #expect(try db.rows("SELECT 1") == [[.int(1)]])
    }

    @Test func closedConnectionFailsWithConnectionKind() throws {
        let db = try TestServer.connect()
        db.close()
        db.close()
        let error = #expect(throws: PostgresError.self) { try db.execute("SELECT 1") }
        #expect(error?.kind == .connection)
        #expect(db.backendPID == 0)
    }

    @Test func terminatedBackendIsAConnectionError() throws {
        let victim = try TestServer.connect()
        let killer = try TestServer.connect()
        try killer.execute("SELECT pg_terminate_backend($1::int)", [.int(Int64(victim.backendPID))])
        let error = #expect(throws: PostgresError.self) { try victim.execute("SELECT 1") }
        #expect(error?.kind == .connection)
    }

    @Test func lockNotAvailableAndSerializationFailureCarryTheirSQLState() throws {
        try TestServer.withSchema { holder, schema in
            try holder.executeScript("CREATE TABLE lock (id int PRIMARY KEY, v int); INSERT INTO lock VALUES (1, 0)")
            let waiter = try TestServer.connect()
            try waiter.executeScript("SET search_path TO \(schema)")
            try holder.executeScript("BEGIN; SELECT * FROM lock WHERE id = 1 FOR UPDATE")
            try waiter.executeScript("BEGIN")
            let nowait = #expect(throws: PostgresError.self) { try waiter.execute("SELECT * FROM lock WHERE id = 1 FOR UPDATE NOWAIT") }
            #expect(nowait?.sqlState == "55P03")
            #expect(nowait?.kind == .query)
            try waiter.executeScript("ROLLBACK")
            try holder.executeScript("ROLLBACK")

            // Two serializable transactions that each read what the other writes.
            try holder.executeScript("BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT sum(v) FROM lock")
            try waiter.executeScript("BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT sum(v) FROM lock")
            try holder.execute("UPDATE lock SET v = v + 1 WHERE id = 1")
            try holder.executeScript("INSERT INTO lock VALUES (2, 1)")
            try holder.executeScript("COMMIT")
            let conflict = #expect(throws: PostgresError.self) {
                try waiter.execute("UPDATE lock SET v = v + 1 WHERE id = 1")
                try waiter.executeScript("COMMIT")
            }
            #expect(conflict?.sqlState == "40001")
            #expect(conflict?.isRetryable == true)
            try? waiter.executeScript("ROLLBACK")
        }
    }
}
