import Postgres

/// The foreign keys between orgctl's tables, dropped for the bulk load of a first apply and added
/// back, with the same names and definitions, before its commit: PostgreSQL's advice for
/// populating a database ("Remove Foreign Key Constraints"), and what a `pg_dump` restore does.
/// Each COPYed row of `members`, `teams`, `team_members`, `roles`, … otherwise fires one check per
/// foreign key (a query of the parent table); added back, each key is checked once, by one query
/// over the filled tables.
///
/// Only in an apply's write transaction that finds, under the lock, `orgctl_resources` and every
/// table the keys join empty, orgctl's role owning those tables, and once its batches of writes
/// hold at least ``minimumRows`` rows for the keys' tables (``PostgresDatabase``). DDL is
/// transactional: the keys are dropped and added back inside the apply's transaction, so a
/// rollback, a killed orgctl, a terminated backend or a server stop restores them with the rows.
/// The drop takes `ACCESS EXCLUSIVE` locks on the tables until the commit: the platform's readers
/// of those tables wait for the apply instead of reading its rows half-filled (they would see
/// nothing of them anyway). A drop that fails (the lock not granted within a second, a privilege,
/// an object that depends on the key) is undone to its savepoint and the apply goes on checking
/// each row as before.
struct DeferredKeys {
    /// One foreign key as the catalog defines it.
    struct Key: Equatable {
        /// The referencing table.
        var table: String
        var name: String
        /// `pg_get_constraintdef`: what `ADD CONSTRAINT name` takes to make the same key
        /// (referenced table, columns, actions, `DEFERRABLE`, `NOT VALID`).
        var definition: String
        /// Its comment (`COMMENT ON CONSTRAINT`), if any, as a quoted literal.
        var comment: String?
    }

    /// Rows for the keys' tables that the transaction's batches must hold. Dropping and adding back the
    /// twelve keys of an empty schema costs the server about 6 ms; a row's check about 10 µs
    /// per key (bench/README.md, session 9): below about 600 rows the checks cost less. A first
    /// apply of a handful of tenants also keeps its locks as they were.
    static let minimumRows = 1_000
    /// How long the drop waits for its locks before the apply goes on without it.
    static let lockTimeoutMilliseconds = 1_000
    static let savepoint = "orgctl_deferred_keys"

    enum Phase {
        /// Not this transaction (or decided against).
        case off
        /// May be dropped before a batch is sent.
        case armed
        /// Dropped: added back before the commit.
        case dropped
    }

    private(set) var phase = Phase.off
    private(set) var keys: [Key] = []
    /// Rows for the keys' tables in the batches sent so far.
    private var rowsSeen = 0
    /// The keys' referencing tables, which the decision counts rows for.
    private(set) var tables: Set<String> = []
    /// Tables that no other foreign key involves: once the keys are dropped, their writes may
    /// move relative to other tables' (``WriteQueue``).
    private(set) var freedTables: [String] = []

    init() {}

    /// Reads the keys between orgctl's tables in the current schema and arms the drop when the
    /// transaction qualifies (called under the apply lock, `orgctl_resources` found empty).
    static func find(_ connection: PostgresConnection) throws -> DeferredKeys {
        var found = DeferredKeys()
        let names = Layout.tables.map { "'\($0.name)'" }.joined(separator: ", ")
        var owned = true
        var involved: Set<String> = []
        var blocked: Set<String> = []
        // Every foreign key from or to one of orgctl's tables of the schema: those between two of
        // them are deferred, any other (a platform's) stays and keeps its tables' writes in order.
        try connection.query("""
            SELECT c.relname::text, f.relname::text, k.conname::text, pg_get_constraintdef(k.oid),
                   quote_literal(obj_description(k.oid, 'pg_constraint')),
                   c.relnamespace = current_schema()::regnamespace AND c.relname IN (\(names)) AND c.relkind = 'r'
                     AND f.relnamespace = current_schema()::regnamespace AND f.relname IN (\(names)) AND f.relkind = 'r'
                     AND k.conparentid = 0,
                   pg_has_role(current_user, c.relowner, 'USAGE') AND pg_has_role(current_user, f.relowner, 'USAGE')
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class f ON f.oid = k.confrelid
            WHERE k.contype = 'f'
              AND ((c.relnamespace = current_schema()::regnamespace AND c.relname IN (\(names)))
                OR (f.relnamespace = current_schema()::regnamespace AND f.relname IN (\(names))))
            ORDER BY 1, 3
            """, []) { row in
            let (table, referenced) = (row.text(0), row.text(1))
            if row.bool(5) {
                found.keys.append(Key(table: table, name: row.text(2), definition: row.text(3), comment: row.isNull(4) ? nil : row.text(4)))
                involved.formUnion([table, referenced])
                owned = owned && row.bool(6)
            } else {
                blocked.formUnion([table, referenced])
            }
            return true
        }
        guard !found.keys.isEmpty, owned else { return found }
        // A first apply into empty tables: adding the keys back checks only the apply's own rows.
        let empty = involved.sorted().map { "NOT EXISTS (SELECT 1 FROM \(PostgresSchema.quoted($0)))" }.joined(separator: " AND ")
        guard try connection.rows("SELECT \(empty)").first?.first == .bool(true) else { return found }
        found.tables = Set(found.keys.map(\.table))
        found.freedTables = involved.subtracting(blocked).sorted()
        found.phase = .armed
        return found
    }

    /// Counts `rows`, the rows for the keys' tables in a batch about to be sent, and drops the
    /// keys once the transaction's reach ``minimumRows`` (the rows sent before were checked one
    /// by one, and are checked again when the keys are added back); when the drop fails, the
    /// transaction goes on as before. True when they were dropped.
    mutating func batch(rows: Int, _ connection: PostgresConnection) throws -> Bool {
        guard phase == .armed else { return false }
        rowsSeen += rows
        guard rowsSeen >= Self.minimumRows else { return false }
        phase = .off
        let timeout = try connection.rows("SELECT current_setting('lock_timeout')").first?.first ?? .text("0")
        try connection.execute("SAVEPOINT \(Self.savepoint)")
        do {
            try drop(connection)
        } catch {
            guard error.kind == .query else { throw error }
            // The savepoint also restores the lock timeout.
            try connection.execute("ROLLBACK TO SAVEPOINT \(Self.savepoint)")
            try connection.execute("RELEASE SAVEPOINT \(Self.savepoint)")
            return false
        }
        // The apply's own lock timeout again, for whatever else waits in the transaction.
        _ = try connection.rows("SELECT set_config('lock_timeout', $1, true)", [timeout])
        phase = .dropped
        return true
    }

    private func drop(_ connection: PostgresConnection) throws(PostgresError) {
        try connection.execute("SET LOCAL lock_timeout = \(Self.lockTimeoutMilliseconds)")
        for (table, keys) in byTable {
            try connection.execute("ALTER TABLE \(PostgresSchema.quoted(table)) "
                + keys.map { "DROP CONSTRAINT \(PostgresSchema.quoted($0.name))" }.joined(separator: ", "))
        }
        try connection.execute("RELEASE SAVEPOINT \(Self.savepoint)")
    }

    /// Adds the dropped keys back (before the commit), each checked over its table's rows.
    mutating func restore(_ connection: PostgresConnection) throws {
        guard phase == .dropped else { return }
        for (table, keys) in byTable {
            try connection.execute("ALTER TABLE \(PostgresSchema.quoted(table)) "
                + keys.map { "ADD CONSTRAINT \(PostgresSchema.quoted($0.name)) \($0.definition)" }.joined(separator: ", "))
            for key in keys {
                guard let comment = key.comment else { continue }
                try connection.execute("COMMENT ON CONSTRAINT \(PostgresSchema.quoted(key.name)) ON \(PostgresSchema.quoted(table)) IS \(comment)")
            }
        }
        phase = .off
    }

    /// The keys per referencing table, in table order (each table altered once).
    private var byTable: [(String, [Key])] {
        Dictionary(grouping: keys, by: \.table).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
