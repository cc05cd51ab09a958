import Postgres

/// A PostgreSQL connection as the backend-neutral code sees it (``SQLDatabase``).
///
/// Parameters `?N` become `$N`. Writes whose only result is their affected-row count
/// (``runChecked(_:_:rows:failure:)``) are queued (``WriteQueue``) and sent together: runs of
/// single-row inserts as binary COPY, the rest in pipeline mode, one round trip per batch
/// instead of one per statement; anything that reads (a query, a plain `run`, a commit) sends
/// the queue first, so the SQL sees every write before it.
final class PostgresDatabase: SQLDatabase {
    let connection: PostgresConnection
    let location: String
    private var translated: [String: String] = [:]
    private var queued = WriteQueue()
    /// Identity values reserved for rows about to be inserted, per table (``reserveRowID(table:)``).
    private var reservedIDs: [String: ArraySlice<Int64>] = [:]
    /// Each table's identity sequence, as `pg_get_serial_sequence` names it.
    private var sequences: [String: String] = [:]
    /// How many ids the last reservation of each table took.
    private var reservationSizes: [String: Int] = [:]
    /// Sends full batches while the next ones are queued (``WriteSender``): only in an apply's write
    /// transaction (``beginWrite()`` to its end), whose every use of the connection goes through
    /// this object and so waits for the batch in flight.
    private let sender = WriteSender()
    private var sendsAhead = false
    /// The foreign keys a first apply drops for its bulk load and adds back before the commit.
    private var deferredKeys = DeferredKeys()
    /// Writes held back until the open transaction commits (run by `PostgresStateStore.inTransaction`).
    let pendingWrites = PendingWrites()
    /// Writes per pipeline: small enough that their results fit the socket's buffers (libpq's blocking
    /// pipeline sends everything before it reads a result).
    static let batchSize = 512
    /// Writes held back before they are sent: bounds the memory, hardly the speed.
    static let queueLimit = 16_384
    static let reservationSize = 1024
    static let largestReservation = 65_536

    init(connection: PostgresConnection, location: String) {
        self.connection = connection
        self.location = location
    }

    func query(_ sql: String, _ values: [SQLValue], _ body: (any SQLRow) throws -> Bool) throws {
        try flush()
        queued.sentDirectly(sql)
        try connection.query(postgres(sql), values.map(Self.parameter)) { row in try body(row) }
    }

    @discardableResult
    func run(_ sql: String, _ values: [SQLValue]) throws -> Int {
        try flush()
        queued.sentDirectly(sql)
        return try connection.execute(postgres(sql), values.map(Self.parameter))
    }

    func runChecked(_ sql: String, _ values: [SQLValue], rows: Int?, failure: @escaping (Int) -> StateError) throws {
        let write = WriteQueue.Statement(sql: postgres(sql), parameters: values.map(Self.parameter), rows: rows, failure: failure)
        if !queued.append(write) {
            try flush()
            _ = queued.append(write)
        }
        if queued.statements >= Self.batchSize || queued.statements + queued.rows >= Self.queueLimit {
            if sendsAhead {
                // Sent by the sender's thread while this one goes on queuing the next batch.
                let writes = try takeBatch()
                try sender.submit { [self] in try send(writes) }
            } else {
                try flush()
            }
        }
    }

    func reserveRowID(table: String) throws -> Int64? {
        if let next = reservedIDs[table]?.first {
            reservedIDs[table]?.removeFirst()
            return next
        }
        try sender.wait()  // the connection is the batch's in flight until it ends
        // The sequence is named once per table and written into the query as a literal, which the
        // server resolves once: `nextval(pg_get_serial_sequence($1, 'id'))` looked it up per value,
        // and a first apply reserves one value per row (half a million).
        let sequence: String
        if let known = sequences[table] {
            sequence = known
        } else {
            guard let name = try connection.rows("SELECT pg_get_serial_sequence($1, 'id')", [.text(table)]).first?.first,
                case .text(let text) = name
            else { return nil }
            sequence = text
            sequences[table] = text
        }
        // Each reservation of a table twice the last, up to ``largestReservation``: every reservation
        // waits for the batch in flight, and a first apply reserves half a million ids.
        let count = min(Self.largestReservation, reservationSizes[table].map { $0 * 2 } ?? Self.reservationSize)
        reservationSizes[table] = count
        var ids: [Int64] = []
        ids.reserveCapacity(count)
        let literal = "'" + sequence.replacing("'", with: "''") + "'"
        try connection.query("SELECT nextval(\(literal)::regclass) FROM generate_series(1, \(count))", []) { row in
            ids.append(row.int(0))
            return true
        }
        guard let first = ids.first else { return nil }
        reservedIDs[table] = ids.dropFirst()
        return first
    }

    /// Starts the writes of a write transaction, with what the store found under the lock (``WriteFacts``).
    func beginWrite() throws {
        try flush()
        var facts = WriteFacts()
        let candidates = WriteQueue.movableTables.map { "'\($0)'" }.joined(separator: ", ")
        try connection.query("""
            SELECT c.relname::text FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname IN (\(candidates))
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.contype = 'f' AND (k.conrelid = c.oid OR k.confrelid = c.oid))
            """, []) { row in
            facts.movableTables.append(row.text(0))
            return true
        }
        facts.recordsEmpty = try connection.rows("SELECT NOT EXISTS (SELECT 1 FROM orgctl_resources)").first?.first == .bool(true)
        if facts.recordsEmpty {
            // Which of orgctl's tables hold no row: writes the queue then knows to match nothing.
            let empty = Layout.tables.map { "SELECT '\($0.name)' WHERE NOT EXISTS (SELECT 1 FROM \($0.name))" }.joined(separator: " UNION ALL ")
            try connection.query(empty, []) { row in
                facts.emptyTables.append(row.text(0))
                return true
            }
        }
        deferredKeys = facts.recordsEmpty ? try DeferredKeys.find(connection) : DeferredKeys()
        queued = WriteQueue(facts)
        sendsAhead = true
    }

    /// Before the commit of a write transaction: every queued write sent, and the foreign keys the
    /// transaction dropped added back (each checked over its table, ``DeferredKeys``).
    func finishWrite() throws {
        try flush()
        try deferredKeys.restore(connection)
    }

    /// Forgets what ``beginWrite()`` found: the transaction ended.
    func endTransaction() {
        deferredKeys = DeferredKeys()
        queued = WriteQueue()
        sendsAhead = false
    }

    /// `COPY … FROM STDIN` in binary: one stream for all the rows.
    func bulkInsert(table: String, columns: [Layout.Column], rows: [[SQLValue]]) throws {
        try flush()
        queued.sentDirectly("INSERT INTO \(table)")
        let types = columns.map { (name: $0.name, type: Self.columnType($0.type)) }
        let copied = try connection.copyIn(table: table, columns: types, rows: rows.lazy.map { $0.map(Self.parameter) })
        guard copied == rows.count else {
            throw StateError(.other, "copying into \(table) wrote \(copied) rows instead of \(rows.count)", help: "run 'orgctl audit verify'")
        }
    }

    /// How COPY sends a value of a column of this type.
    static func columnType(_ type: Layout.ColumnType) -> PostgresColumnType {
        switch type {
        case .id, .integer: .int8
        case .text, .list: .text
        case .blob: .bytea
        case .bool: .bool
        case .timestamp: .timestamptz
        }
    }

    /// Sends the queued writes (runs of inserts as COPY, the rest in pipelines of at most
    /// ``batchSize``) and checks each one's affected-row count, after the batch in flight.
    func flush() throws {
        try sender.wait()
        guard !queued.isEmpty else { return }
        try send(takeBatch())
    }

    /// The queued writes, to be sent now; in an apply into empty tables, the foreign keys between
    /// its tables are dropped first once its batches hold enough rows for them (``DeferredKeys``),
    /// and those tables get queues of their own from then on.
    private func takeBatch() throws -> [WriteQueue.Write] {
        guard deferredKeys.phase == .armed else { return queued.take() }
        try sender.wait()
        let dropped = try deferredKeys.batch(rows: queued.rows(into: deferredKeys.tables), connection)
        let writes = queued.take()
        if dropped { queued.free(deferredKeys.freedTables) }
        return writes
    }

    /// Sends `writes` in order: runs of inserts as COPY, the rest in pipelines.
    private func send(_ writes: [WriteQueue.Write]) throws {
        var statements: [WriteQueue.Statement] = []
        for write in writes {
            switch write {
            case .statement(let statement):
                statements.append(statement)
            case .deleteRecords(let batch):
                for (sql, parameters) in batch.statements {
                    statements.append(WriteQueue.Statement(sql: sql, parameters: parameters, rows: nil) { _ in
                        StateError(.other, "internal error", help: "report this as a bug")
                    })
                }
            case .run(let run) where run.writes.count < WriteQueue.minimumCopyRows:
                statements += run.writes
            case .run(let run):
                try sendPipelined(statements)
                statements = []
                try copy(run)
            }
        }
        try sendPipelined(statements)
    }

    /// Statements in pipelines of at most ``batchSize`` (libpq's blocking pipeline sends them all
    /// before it reads a result, so their results must fit the socket's buffers).
    private func sendPipelined(_ statements: [WriteQueue.Statement]) throws {
        var start = 0
        while start < statements.count {
            let batch = statements[start..<min(start + Self.batchSize, statements.count)]
            start = batch.endIndex
            let results = try connection.pipeline(batch.map { ($0.sql, $0.parameters) })
            for (write, result) in zip(batch, results) where write.rows.map({ $0 != result.affectedRows }) ?? false {
                throw write.failure(result.affectedRows)
            }
        }
    }

    /// One run of inserts as `COPY … FROM STDIN (FORMAT binary)`.
    private func copy(_ run: WriteQueue.Run) throws {
        let insert = run.insert
        let copied: Int
        do {
            // An array, not a lazy map of the writes: `copyIn` is generic and unspecialised across modules, and
            // its iterator over the lazy map copied each whole write (three references) to read its values.
            copied = try connection.copyIn(table: insert.table, columns: insert.columns, rows: run.writes.map(\.parameters))
        } catch {
            var error = error
            error.message = "copying \(run.writes.count) new rows into \(insert.table): \(error.message)"
            throw error
        }
        guard copied == run.writes.count else {
            throw StateError(.corrupt, "copying \(run.writes.count) new rows into \(insert.table) wrote \(copied): something other than orgctl acts on the state database's tables",
                             help: "look for triggers, views or rules on orgctl's tables (docs/state-schema.md, 'What the platform may write'), remove them, and plan again")
        }
    }

    /// Forgets queued writes and reserved ids (the transaction rolled back).
    func discard() {
        deferredKeys = DeferredKeys()
        pendingWrites.discard()
        sender.reset()
        queued = WriteQueue()
        sendsAhead = false
        reservedIDs = [:]
        reservationSizes = [:]
    }

    /// `?N` parameters as PostgreSQL's `$N` (outside quoted text; orgctl's SQL quotes no `?`).
    private func postgres(_ sql: String) -> String {
        if let known = translated[sql] { return known }
        var out = ""
        out.reserveCapacity(sql.utf8.count)
        var quoted = false
        var previous: Character = " "
        for character in sql {
            if character == "'" { quoted.toggle() }
            if !quoted, previous == "?", character.isNumber {
                out.removeLast()
                out.append("$")
            }
            out.append(character)
            previous = character
        }
        translated[sql] = out
        return out
    }

    static func parameter(_ value: SQLValue) -> PostgresValue {
        switch value {
        case .null: .null
        case .integer(let n): .int(n)
        case .text(let text): .text(text)
        case .blob(let bytes): .bytes(bytes)
        case .bool(let b): .bool(b)
        }
    }
}

extension PostgresRow: SQLRow {
    /// Columns are typed: a key column holds text whenever it is not NULL.
    func isText(_ column: Int) -> Bool { !isNull(column) }
    func withText<T>(_ column: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T { try withBytes(column, body) }
    func blob(_ column: Int) -> [UInt8] { bytes(column) }
    func withBlob<T>(_ column: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T { try withBytes(column, body) }
}
