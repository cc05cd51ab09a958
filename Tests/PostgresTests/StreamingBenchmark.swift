import Foundation
import Postgres
import Testing

/// Rows per second of both streaming paths and of copyIn, printed (never asserted: no timing
/// assertions in tests). Runs only when asked:
///   ORGCTL_POSTGRES_BENCH_ROWS=500000 swift test -c release --filter StreamingBenchmark
@Suite(
    "PostgreSQL streaming benchmark",
    .enabled(if: !TestServer.skipped && TestServer.environment["ORGCTL_POSTGRES_BENCH_ROWS"] != nil, "set ORGCTL_POSTGRES_BENCH_ROWS"))
struct StreamingBenchmark {
    @Test func copyVersusSingleRowMode() throws {
        let rows = Int(TestServer.environment["ORGCTL_POSTGRES_BENCH_ROWS"] ?? "") ?? 500_000
        try TestServer.withSchema { db, _ in
            try db.execute("CREATE TABLE b (id int8, name text, data bytea, flag bool, n int4)")
            let columns: [(name: String, type: PostgresColumnType)] = [
                ("id", .int8), ("name", .text), ("data", .bytea), ("flag", .bool), ("n", .int4),
            ]
            let source = (0..<rows).lazy.map { (i: Int) -> [PostgresValue] in
                [.int(Int64(i)), .text("tenant-\(i)"), .bytes([UInt8(i & 0xFF), 1, 2, 3]), .bool(i % 2 == 0), .int(Int64(i % 1000))]
            }
            var clock = ContinuousClock.now
            #expect(try db.copyIn(table: "b", columns: columns, rows: source) == rows)
            report("copyIn", rows, since: clock)

            for (label, parameters) in [("query via COPY binary", [PostgresValue]()), ("query via single-row mode", [.int(-1)])] {
                let sql = parameters.isEmpty ? "SELECT id, name, data, flag, n FROM b" : "SELECT id, name, data, flag, n FROM b WHERE id > $1"
                var count = 0
                var checksum: Int64 = 0
                clock = ContinuousClock.now
                try db.query(sql, parameters) { row in
                    count += 1
                    checksum &+= row.int(0) &+ row.int(4) &+ (row.bool(3) ? 1 : 0)
                    checksum &+= Int64(row.text(1).utf8.count)
                    checksum &+= row.withBytes(2) { Int64($0.count) }
                    return true
                }
                report(label, count, since: clock)
                #expect(count == rows)
                #expect(checksum != 0)
            }
            clock = ContinuousClock.now
            let all = try db.rows("SELECT id, name, data, flag, n FROM b")
            report("rows (buffered)", all.count, since: clock)
        }
    }

    private func report(_ label: String, _ rows: Int, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("postgres bench: \(label): \(rows) rows in \(String(format: "%.2f", seconds)) s = \(Int(Double(rows) / seconds)) rows/s")
    }
}
