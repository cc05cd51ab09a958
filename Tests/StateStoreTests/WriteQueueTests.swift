import Testing

@testable import StateStore

/// What the PostgreSQL write queue may leave out or send in another order (PostgresCopyTests
/// checks on a server that the rows written are SQLite's; these check the queue's rules one by one).
@Suite("PostgreSQL write queue: dropped record deletes, runs, queues of their own")
struct WriteQueueTests {
    static let recordInsert = "INSERT INTO orgctl_resources (address, kind, row_id, digest, audit_seq, applied) VALUES ($1, $2, $3, $4, $5, $6)"

    static func statement(_ sql: String, _ values: [SQLValue], rows: Int? = 1) -> WriteQueue.Statement {
        WriteQueue.Statement(sql: sql, parameters: values.map(PostgresDatabase.parameter), rows: rows) { _ in
            StateError(.other, "unexpected row count", help: "none")
        }
    }

    static func delete(_ address: String, _ kind: String, _ row: Int64) -> WriteQueue.Statement {
        statement(WriteQueue.recordDelete, [.text(address), .text(kind), .integer(row)], rows: nil)
    }

    static func insert(_ address: String, _ kind: String, _ row: Int64) -> WriteQueue.Statement {
        statement(recordInsert, [.text(address), .text(kind), .integer(row), .text("digest"), .integer(1), .blob([1])])
    }

    @Test("records empty when the transaction began: a record's delete is dropped unless a record of its address or row was inserted since")
    func dropsDeletesThatMatchNothing() {
        var queue = WriteQueue(WriteFacts(recordsEmpty: true))
        let taken = queue.append(Self.delete("tenant/a", "tenant", 1))
        #expect(taken)
        #expect(queue.isEmpty, "a delete from an empty table was queued")
        _ = queue.append(Self.insert("tenant/a", "tenant", 1))
        _ = queue.append(Self.delete("tenant/a", "team", 2))  // the address of a record inserted: sent
        _ = queue.append(Self.delete("tenant/b", "tenant", 1))  // the row of a record inserted: sent
        _ = queue.append(Self.delete("tenant/c", "tenant", 3))  // neither: dropped
        #expect(queue.rows == 3 && queue.statements == 0, "rows \(queue.rows), statements \(queue.statements)")
    }

    @Test("records not known to be empty, or written otherwise since: every record delete is sent")
    func keepsDeletesOtherwise() {
        var unknown = WriteQueue()
        _ = unknown.append(Self.delete("tenant/a", "tenant", 1))
        #expect(unknown.rows == 1)

        var updated = WriteQueue(WriteFacts(recordsEmpty: true))
        _ = updated.append(Self.statement("UPDATE orgctl_resources SET digest = $1 WHERE kind = $2 AND row_id = $3",
                                          [.text("d"), .text("tenant"), .integer(7)]))
        _ = updated.append(Self.delete("tenant/x", "tenant", 9))
        #expect(updated.rows == 1, "a delete after another write to the records was dropped")

        var direct = WriteQueue(WriteFacts(recordsEmpty: true))
        direct.sentDirectly("SELECT address FROM orgctl_resources WHERE kind = $1")  // a read assumes nothing away
        _ = direct.append(Self.delete("tenant/x", "tenant", 9))
        #expect(direct.rows == 0)
        direct.sentDirectly("DELETE FROM orgctl_resources WHERE address >= $1")
        _ = direct.append(Self.delete("tenant/y", "tenant", 10))
        #expect(direct.rows == 1, "a delete after a direct write to the records was dropped")
    }

    /// Tenant inserts and quota upserts alternate in a first apply: with `quotas` in a queue of its
    /// own the tenants form one run; without (a foreign key found on it), each insert is alone.
    @Test("quotas get a queue of their own only where the database shows them free of foreign keys; unchecked inserts join runs")
    func queuesAndRuns() throws {
        func alternate(_ facts: WriteFacts) -> [WriteQueue.Write] {
            var queue = WriteQueue(facts)
            for id in 1...10 {
                _ = queue.append(Self.statement("INSERT INTO tenants (id, slug, plan) VALUES ($1, $2, $3)", [.integer(Int64(id)), .text("t\(id)"), .text("free")]))
                _ = queue.append(Self.statement(
                    "INSERT INTO quotas (scope, scope_id, name, value) VALUES ($1, $2, $3, $4) ON CONFLICT (scope, scope_id, name) DO UPDATE SET value = excluded.value",
                    [.text("tenant"), .integer(Int64(id)), .text("seats"), .integer(5)]))
            }
            return queue.take()
        }
        let apart = alternate(WriteFacts(movableTables: WriteQueue.movableTables))
        #expect(WriteQueue.movableTables.contains("quotas") && !WriteQueue.movableTables.contains("tenants"))
        guard case .run(let run)? = apart.first else {
            Issue.record("the tenant inserts formed no run")
            return
        }
        #expect(run.writes.count == 10 && apart.count == 11)
        #expect(alternate(WriteFacts()).count == 20, "without the facts, quotas' writes must keep their place")

        var subjects = WriteQueue()
        for n in 0..<10 {
            _ = subjects.append(Self.statement("INSERT INTO orgctl_subjects (id, email) VALUES ($1, $2)", [.text("id\(n)"), .text("u\(n)@x")], rows: nil))
        }
        let sent = subjects.take()
        guard sent.count == 1, case .run(let subjectRun) = sent[0] else {
            Issue.record("unchecked inserts formed no run: \(sent.count) writes")
            return
        }
        #expect(subjectRun.writes.count == 10)
    }
}
