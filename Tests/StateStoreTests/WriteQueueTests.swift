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

    static let permissionInsert = "INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)"

    @Test("role_permissions empty when the transaction began: a new role's delete of its permissions is dropped unless that role got permissions since")
    func dropsPermissionDeletesThatMatchNothing() {
        var queue = WriteQueue(WriteFacts(emptyTables: ["role_permissions"]))
        _ = queue.append(Self.statement(WriteQueue.permissionsDelete, [.integer(1)], rows: 0))
        #expect(queue.isEmpty, "a delete from an empty table was queued")
        _ = queue.append(Self.statement(Self.permissionInsert, [.integer(1), .text("apps.read")]))
        _ = queue.append(Self.statement(WriteQueue.permissionsDelete, [.integer(1)], rows: 0))  // role 1 has a permission now: sent
        _ = queue.append(Self.statement(WriteQueue.permissionsDelete, [.integer(2)], rows: 0))  // dropped
        _ = queue.append(Self.statement(WriteQueue.permissionsDelete, [.integer(3)], rows: 2))  // expects rows: sent, and nothing is assumed any more
        _ = queue.append(Self.statement(WriteQueue.permissionsDelete, [.integer(4)], rows: 0))
        #expect(queue.rows == 1 && queue.statements == 3, "rows \(queue.rows), statements \(queue.statements)")

        var unknown = WriteQueue()
        _ = unknown.append(Self.statement(WriteQueue.permissionsDelete, [.integer(1)], rows: 0))
        #expect(unknown.statements == 1)

        var direct = WriteQueue(WriteFacts(emptyTables: ["role_permissions"]))
        direct.sentDirectly("INSERT INTO role_permissions")  // a bulk insert: its rows are not known here
        _ = direct.append(Self.statement(WriteQueue.permissionsDelete, [.integer(5)], rows: 0))
        #expect(direct.statements == 1, "a delete after a direct write to role_permissions was dropped")
    }

    /// Teams and members alternate in the platform tables' queue; once the foreign keys between
    /// them are dropped (`DeferredKeys`), each gets a queue of its own from the next batch.
    @Test("tables freed of their foreign keys get queues of their own from the next batch: their inserts form one run each")
    func freedTablesFormRuns() {
        func alternate(_ queue: inout WriteQueue) -> [WriteQueue.Write] {
            for id in 1...10 {
                _ = queue.append(Self.statement("INSERT INTO teams (id, tenant_id, slug) VALUES ($1, $2, $3)", [.integer(Int64(id)), .integer(1), .text("g\(id)")]))
                _ = queue.append(Self.statement("INSERT INTO members (id, tenant_id, email, role) VALUES ($1, $2, $3, $4)",
                                                [.integer(Int64(id)), .integer(1), .text("m\(id)@x.com"), .text("member")]))
            }
            return queue.take()
        }
        var queue = WriteQueue()
        #expect(alternate(&queue).count == 20)
        queue.free(["members", "teams"])
        #expect(queue.rows(into: ["members"]) == 0)
        let apart = alternate(&queue)
        #expect(apart.count == 2, "\(apart.count) writes")
        for case .run(let run) in apart { #expect(run.writes.count == 10) }

        var busy = WriteQueue()
        _ = busy.append(Self.statement("INSERT INTO members (id, tenant_id, email, role) VALUES ($1, $2, $3, $4)",
                                       [.integer(1), .integer(1), .text("m@x.com"), .text("member")]))
        #expect(busy.rows(into: ["members"]) == 1 && busy.rows(into: ["teams"]) == 0)
        busy.free(["members"])  // not between batches: nothing changes
        #expect(busy.sides == WriteQueue.sideTables)
    }

    static let quotaUpsert =
        "INSERT INTO quotas (scope, scope_id, name, value) VALUES ($1, $2, $3, $4) ON CONFLICT (scope, scope_id, name) DO UPDATE SET value = excluded.value"

    static func quota(_ tenant: Int64, _ name: String, _ value: Int64) -> WriteQueue.Statement {
        statement(quotaUpsert, [.text("tenant"), .integer(tenant), .text(name), .integer(value)])
    }

    /// A first apply's quota and Merkle node upserts into empty tables: each key once, so each
    /// inserts one row, as the plain insert does, and they join one COPY run.
    @Test("upserts into a table empty when the transaction began join a run as plain inserts, unless their key was inserted since or the table was written otherwise")
    func upsertsIntoEmptyTablesFormRuns() throws {
        var queue = WriteQueue(WriteFacts(movableTables: ["quotas"], emptyTables: ["quotas"]))
        for tenant in 1...10 { _ = queue.append(Self.quota(Int64(tenant), "seats", 5)) }
        _ = queue.append(Self.quota(3, "seats", 7))  // a key inserted before: stays an upsert, after the run
        let writes = queue.take()
        #expect(writes.count == 2, "\(writes.count) writes")
        guard case .run(let run)? = writes.first, case .statement(let last)? = writes.last else {
            Issue.record("the upserts formed no run followed by the repeated key's upsert")
            return
        }
        #expect(run.writes.count == 10 && run.insert.sql == "INSERT INTO quotas (scope, scope_id, name, value) VALUES ($1, $2, $3, $4)")
        #expect(last.sql == Self.quotaUpsert)

        var unknown = WriteQueue(WriteFacts(movableTables: ["quotas"]))
        for tenant in 1...10 { _ = unknown.append(Self.quota(Int64(tenant), "seats", 5)) }
        #expect(unknown.statements == 10, "upserts into a table not known empty became inserts")

        var written = WriteQueue(WriteFacts(movableTables: ["quotas"], emptyTables: ["quotas"]))
        _ = written.append(Self.statement("DELETE FROM quotas WHERE scope = $1 AND scope_id = $2", [.text("tenant"), .integer(1)], rows: nil))
        _ = written.append(Self.quota(2, "seats", 5))
        #expect(written.statements == 2, "an upsert after another write to the table became an insert")

        var direct = WriteQueue(WriteFacts(movableTables: ["quotas"], emptyTables: ["quotas"]))
        direct.sentDirectly("INSERT INTO quotas")
        _ = direct.append(Self.quota(2, "seats", 5))
        #expect(direct.statements == 1, "an upsert after a direct write to the table became an insert")

        #expect(WriteQueue.Upsert("INSERT INTO quotas (scope, scope_id, name, value) VALUES ($1, $2, $3, $4) ON CONFLICT (scope, scope_id, name) DO UPDATE SET value = excluded.value RETURNING value") == nil)
        #expect(WriteQueue.Upsert("INSERT INTO quotas (scope, scope_id, name, value) VALUES ($1, $2, $3, $4) ON CONFLICT (scope, nope) DO NOTHING") == nil)
        #expect(try #require(WriteQueue.Upsert("INSERT INTO orgctl_merkle (level, idx, hash) VALUES ($1, $2, $3) ON CONFLICT (level, idx) DO UPDATE SET hash = excluded.hash")).keyPositions == [0, 1])
    }
}
