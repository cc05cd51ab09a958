public import Audit
import Crypto
import Foundation
import Postgres

/// The PostgreSQL backend: orgctl's tables in one schema of a server database, for many CI
/// runners and the platform's own servers (docs/state-schema.md, "PostgreSQL").
///
/// - Reads (plan, drift, export, the audit commands) run in one `REPEATABLE READ READ ONLY`
///   snapshot.
/// - An apply writes in one `REPEATABLE READ` transaction that first locks the row of
///   `orgctl_lock` (`SELECT … FOR UPDATE`, waiting up to `--lock-timeout`) and marks it: the lock
///   dies with the transaction or the connection, so a killed runner leaves none. A waiter whose
///   holder committed fails with a serialization error and starts again with a fresh snapshot;
///   serialization failures and deadlocks are retried a few times. No advisory lock and no
///   LISTEN/NOTIFY, so the SQL also suits Postgres-wire databases that lack them.
/// - Writes are sent in pipeline mode, in batches (``PostgresDatabase``).
public final class PostgresStateStore: SQLStore {
    private let connection: PostgresConnection
    private let database: PostgresDatabase
    var db: any SQLDatabase { database }
    let key: StateKey?
    let schema: String
    public let location: String
    public private(set) var databaseID = ""
    public var isUnadopted: Bool { false }
    var storedDigestsArePlain: Bool { false }
    let lockTimeoutMilliseconds: Int32
    private var version = 0
    /// Opened with `defersMigration` on an older schema: the first write migrates it, in its own
    /// transaction under the lock (``migrateUnderLock()``).
    private var migratesOnWrite = false
    /// The snapshot of the last read (`pg_current_snapshot()`): the same snapshot later means no
    /// transaction committed in between.
    private var lastReadSnapshot: String?

    /// Serialization failures and deadlocks retried before an apply gives up.
    static let retries = 5

    public static func isConnectionURI(_ text: String) -> Bool { PostgresConnection.isConnectionURI(text) }

    /// The connection string without its password, for messages.
    public static func redacted(_ conninfo: String) -> String { PostgresConnection.redacted(conninfo) }

    /// Whether `schema` holds orgctl's tables; true when the server cannot tell (opening reports why).
    static func schemaExists(conninfo: String, schema: String) -> Bool {
        guard let connection = try? PostgresConnection(conninfo: conninfo, applicationName: "orgctl") else { return true }
        defer { connection.close() }
        guard let rows = try? connection.rows(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'orgctl_meta'",
            [.text(schema)])
        else { return true }
        return rows.first?.first != .int(0)
    }

    private init(connection: PostgresConnection, schema: String, location: String, key: StateKey?, lockTimeoutMilliseconds: Int32) {
        self.connection = connection
        self.schema = schema
        self.location = location
        self.key = key
        self.lockTimeoutMilliseconds = lockTimeoutMilliseconds
        database = PostgresDatabase(connection: connection, location: location)
    }

    /// Opens the state in `schema` (and for `.readWrite`, creates it when it does not exist, unless
    /// `createsMissing` is false). Returns nil when the schema has no orgctl tables yet and none
    /// were created: the state is empty.
    ///
    /// - Parameter defersMigration: for `.readWrite`, open an older schema as it is (it is read as
    ///   it is: reading the state needs no table a later version adds) and migrate it in the first
    ///   write's own transaction, under the lock, rather than now. Apply plans from it so: nothing
    ///   is migrated before the plan is confirmed, and an apply refused at any point leaves the
    ///   schema as it was.
    public static func open(conninfo: String, schema: String, access: StateAccessMode, lockTimeoutMilliseconds: Int32, key: StateKey?,
                            applicationName: String, createsMissing: Bool = true, defersMigration: Bool = false) throws(StateError) -> PostgresStateStore? {
        let location = StateLocation.postgres(conninfo: conninfo, schema: schema).display
        guard !schema.isEmpty, schema.utf8.count <= 63, !schema.utf8.contains(0) else {
            throw StateError(.other, "'\(AddressSegment.encode(schema))' is not a usable PostgreSQL schema name: it must have 1 to 63 bytes",
                             help: "pass another name with --state-schema (or ORGCTL_STATE_SCHEMA)")
        }
        let connection: PostgresConnection
        do {
            connection = try PostgresConnection(conninfo: conninfo, applicationName: String(applicationName.utf8.prefix(63)) ?? "orgctl")
        } catch {
            throw Self.translate(error, location: location)
        }
        let store = PostgresStateStore(connection: connection, schema: schema, location: location, key: key, lockTimeoutMilliseconds: lockTimeoutMilliseconds)
        // Up to one retry: another apply may be creating the same schema at the same moment.
        for attempt in 1...2 {
            do {
                return try store.prepare(access: access, createsMissing: createsMissing, defersMigration: defersMigration) ? store : nil
            } catch let error as PostgresError where attempt == 1 && ["23505", "42P06", "42P07", "40001"].contains(error.sqlState ?? "") {
                continue
            } catch let error as PostgresError {
                throw Self.translate(error, location: location)
            } catch let error as StateError {
                throw error
            } catch {
                throw StateError(.other, "opening \(location) failed: \(error)", help: "check the server and --state")
            }
        }
        return nil
    }

    /// False when there is no state yet and `access` is read-only (or it is not to be created).
    private func prepare(access: StateAccessMode, createsMissing: Bool, defersMigration: Bool) throws -> Bool {
        let quoted = PostgresSchema.quoted(schema)
        _ = try connection.rows("SELECT set_config('search_path', $1, false)", [.text(quoted)])
        let tables = try connection.rows(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1",
            [.text(schema)]).compactMap { row -> String? in if case .text(let name)? = row.first { return name } else { return nil } }
        try checkSchemaUsage(hasTables: !tables.isEmpty)
        if !tables.contains("orgctl_meta") {
            guard tables.isEmpty else {
                throw StateError(.notOrgctl, "the schema '\(AddressSegment.encode(schema))' of \(location) holds tables, but no orgctl state",
                                 help: "point --state-schema (or ORGCTL_STATE_SCHEMA) at orgctl's schema, or at a new one that orgctl creates")
            }
            guard access == .readWrite, createsMissing else { return false }
            try create()
        }
        guard let stored = try inTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", { try metaValue("schema_version") }),
            let version = Int(stored)
        else {
            throw StateError(.corrupt, "the schema '\(AddressSegment.encode(schema))' of \(location) has no schema version in orgctl_meta",
                             help: "restore the database from a backup, or point --state-schema at another schema")
        }
        self.version = version
        if version > Schema.currentVersion {
            throw StateError(.newerSchema, "\(location) has schema version \(version), newer than this orgctl understands (\(Schema.currentVersion))",
                             help: "upgrade orgctl; an older orgctl never writes to a newer database")
        }
        // The objects of the version the state says it is: an older schema is complete without
        // the tables later versions add (the migration below, or the first write, adds them).
        try inTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
            try checkSchemaObjects()
            try checkKey()
            databaseID = try metaValue("database_id") ?? ""
        }
        if version < Schema.currentVersion {
            guard access == .readWrite else {
                throw StateError(.newerSchema, "\(location) has schema version \(version) and needs a migration to \(Schema.currentVersion)",
                                 help: "run 'orgctl apply' (it migrates the schema, even with no changes to apply) and then run the command again")
            }
            if defersMigration {
                migratesOnWrite = true
            } else {
                try migrate()
            }
        }
        return true
    }

    /// Refuses a schema that holds tables the role may not use. Without USAGE the server leaves the
    /// schema out of the search path without a word, and the first query failed with "relation
    /// orgctl_meta does not exist", which sends the operator looking for a missing table.
    private func checkSchemaUsage(hasTables: Bool) throws {
        guard hasTables, let row = try connection.rows(
            "SELECT has_schema_privilege(n.oid, 'USAGE'), current_user::text FROM pg_namespace n WHERE n.nspname = $1", [.text(schema)]).first,
            row.count == 2, row[0] == .bool(false), case .text(let role) = row[1]
        else { return }
        throw StateError(.readOnly, "the role '\(AddressSegment.escapeForMessage(role))' may not use the schema '\(AddressSegment.encode(schema))' of \(location) (no USAGE privilege)",
                         help: "grant orgctl's role what docs/postgres-roles.sql grants (GRANT USAGE ON SCHEMA \(PostgresSchema.quoted(schema)) TO \(PostgresSchema.quoted(role)), or make it the schema's owner), or run orgctl as that role")
    }

    /// Creates the schema (when missing), every table, and the database's identity, in one transaction.
    private func create() throws {
        let quoted = PostgresSchema.quoted(schema)
        try inTransaction("BEGIN") {
            // Only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when
            // the schema exists, and a least-privilege role is given its schema and nothing more
            // (docs/postgres-roles.sql). Two first applies racing here: open() retries the loser.
            if try connection.rows("SELECT 1 FROM pg_namespace WHERE nspname = $1", [.text(schema)]).isEmpty {
                try connection.executeScript("CREATE SCHEMA \(quoted)")
            }
            try connection.executeScript(PostgresSchema.createAll)
            let insert = "INSERT INTO orgctl_meta (key, value) VALUES ($1, $2)"
            try connection.execute(insert, [.text("database_id"), .text(Hex.encode(try SecureRandom.bytes(count: 16)))])
            try connection.execute(insert, [.text("created_at"), .text(ISO8601DateFormatter().string(from: Date()))])
            try connection.execute(insert, [.text("schema_version"), .text(String(Schema.currentVersion))])
        }
    }

    /// Runs the migration steps from the stored version, under the apply lock, in one transaction.
    private func migrate() throws {
        try retrying {
            try inTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ") {
                try takeLock()
                try migrateUnderLock()
            }
        }
        version = Schema.currentVersion
    }

    /// With `defersMigration` on an older schema: the migration, in the caller's write transaction
    /// (after ``takeLock()``), so that it commits or rolls back with the write.
    private func migrateDeferred() throws {
        if migratesOnWrite { try migrateUnderLock() }
    }

    /// In a transaction holding the lock: re-reads `schema_version` (another apply may have
    /// migrated meanwhile), checks the objects of that version, and runs every step from it: the
    /// same typed steps as SQLite's (`Schema.migrations`), each table or column they add created
    /// with its PostgreSQL type from ``Layout``.
    private func migrateUnderLock() throws {
        guard let stored = try metaValue("schema_version"), let current = Int(stored), current < Schema.currentVersion else { return }
        try checkSchemaObjects()
        try refuseTakenIndexNames(at: current)
        for step in current..<Schema.currentVersion {
            for statement in PostgresSchema.migration(step) { try connection.executeScript(statement) }
        }
        try connection.execute("UPDATE orgctl_meta SET value = $1 WHERE key = 'schema_version'", [.text(String(Schema.currentVersion))])
    }

    /// Refuses what could make orgctl read or write other rows than it names: a table of the
    /// version the state says it is (`schema_version`, read in the caller's transaction) that is
    /// missing or not a plain table (a view standing in for it), a table or column that a later
    /// version adds already there (the version was lowered by hand), a trigger or rule on any of
    /// orgctl's tables, or row-level security that applies to orgctl's own role (it would read
    /// only some rows and plan to create the rest). Records the version it checked.
    private func checkSchemaObjects() throws {
        let stored = try metaValue("schema_version").flatMap { Int($0) } ?? version
        guard stored >= PostgresSchema.firstVersion else {
            throw StateError(.corrupt, "\(location) says schema version \(stored), which no orgctl writes on PostgreSQL (its states begin at version \(PostgresSchema.firstVersion)): its schema_version was changed outside orgctl",
                             help: "restore the database from a backup, or set the version it really has in orgctl_meta (docs/state-schema.md, 'Schema version and migrations')")
        }
        // A newer orgctl may have migrated it since it was opened (this is checked again under the lock).
        guard stored <= Schema.currentVersion else {
            throw StateError(.newerSchema, "\(location) has schema version \(stored), newer than this orgctl understands (\(Schema.currentVersion))",
                             help: "upgrade orgctl; an older orgctl never writes to a newer database")
        }
        version = stored
        let required = PostgresSchema.tables(at: stored).map(\.name)
        var kinds: [String: String] = [:]
        try db.forEach("SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()") {
            kinds[$0.text(0)] = $0.text(1)
        }
        if let missing = required.first(where: { kinds[$0] == nil }) {
            throw StateError(.notOrgctl, "\(location) is not a complete orgctl state of schema version \(stored): it has no table '\(missing)'",
                             help: "restore the database from a backup, or point --state-schema at another schema")
        }
        try refuseLaterObjects(after: stored, tables: Set(kinds.keys))
        if let other = required.first(where: { kinds[$0] != "r" }) {
            let kind = ["v": "view", "m": "materialized view", "f": "foreign table", "p": "partitioned table"][kinds[other] ?? ""] ?? "relation (relkind \(kinds[other] ?? "?"))"
            throw StateError(.corrupt, "\(location) has a \(kind) '\(other)' in place of orgctl's table: it could change what orgctl reads or writes",
                             help: "orgctl works only on its tables as docs/state-schema.md describes them: drop it (DROP \(kind == "view" || kind == "materialized view" ? kind.uppercased() : "…") \(other)) and restore the table from a backup")
        }
        let names = required.map { "'\($0)'" }.joined(separator: ", ")
        if let (trigger, table) = try db.first("""
            SELECT t.tgname::text, c.relname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal AND c.relname IN (\(names)) ORDER BY 2, 1 LIMIT 1
            """, [], { ($0.text(0), $0.text(1)) }) {
            throw StateError(.corrupt, "\(location) has a trigger '\(AddressSegment.encode(trigger))' on table '\(table)' that orgctl did not create: it could change what orgctl reads or writes",
                             help: "orgctl works only on its tables as docs/state-schema.md describes them: drop it (DROP TRIGGER \(PostgresSchema.quoted(trigger)) ON \(table)) or move it off orgctl's tables")
        }
        if let (rule, table) = try db.first("SELECT rulename::text, tablename::text FROM pg_rules WHERE schemaname = current_schema() AND tablename IN (\(names)) ORDER BY 2, 1 LIMIT 1",
                                            [], { ($0.text(0), $0.text(1)) }) {
            throw StateError(.corrupt, "\(location) has a rule '\(AddressSegment.encode(rule))' on table '\(table)' that orgctl did not create: it could change what orgctl reads or writes",
                             help: "drop it (DROP RULE \(PostgresSchema.quoted(rule)) ON \(table)), then run the command again")
        }
        if let table = try db.first("""
            SELECT c.relname::text FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relname IN (\(names)) AND c.relrowsecurity
              AND (c.relforcerowsecurity OR NOT pg_has_role(current_user, c.relowner, 'USAGE'))
              AND NOT (SELECT r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user)
            ORDER BY 1 LIMIT 1
            """, [], { $0.text(0) }) {
            throw StateError(.corrupt, "row-level security applies to orgctl's own role on table '\(table)' of \(location): orgctl would read only some of its rows",
                             help: "run orgctl as the role that owns orgctl's tables (and do not FORCE ROW LEVEL SECURITY on them); see 'PostgreSQL roles' in docs/state-schema.md")
        }
    }

    /// A relation of the name of an index that a later step's table rebuild creates, other than that very
    /// index (an index of the platform's of that name, on any table, or defined otherwise): the step's
    /// `CREATE UNIQUE INDEX IF NOT EXISTS` would keep it in its place after dropping the old constraint,
    /// and the table would lose its uniqueness.
    private func refuseTakenIndexNames(at version: Int) throws {
        for (table, index) in PostgresSchema.rebuiltIndexes(after: version) {
            // orgctl's own index (a state whose version was lowered by hand) is what the step would make.
            let own = index.predicate == nil
                ? "CREATE \(index.unique ? "UNIQUE " : "")INDEX \(index.name) ON %I.\(table) USING btree (\(index.columns.joined(separator: ", ")))" : ""
            guard let (kind, isOwn) = try db.first("""
                SELECT c.relkind::text, (c.relkind = 'i' AND pg_get_indexdef(c.oid) = format(?2, current_schema()))::int
                FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ?1
                """, [.text(index.name), .text(own)], { ($0.text(0), $0.int(1) == 1) }), !isOwn else { continue }
            let what = kind == "i" ? "an index" : "a relation"
            throw StateError(.corrupt, "\(location) has \(what) named '\(index.name)', the name of the unique index that the migration to schema \(Schema.currentVersion) creates on \(table): nothing was migrated",
                             help: "rename it (ALTER \(kind == "i" ? "INDEX" : "TABLE") \(index.name) RENAME TO …) or drop it, then run the command again (it migrates the state)")
        }
    }

    /// A state that says `version` but has a table or column that a later version adds had its
    /// `schema_version` lowered outside orgctl: migrating it (creating that table again) would fail
    /// half-way, and reading it as that version would be wrong.
    private func refuseLaterObjects(after version: Int, tables: Set<String>) throws {
        let later = PostgresSchema.additions(after: version)
        var present = later.tables.first(where: tables.contains).map { "table '\($0)'" }
        if present == nil, !later.columns.isEmpty {
            var columns: Set<String> = []
            try db.forEach("""
                SELECT c.relname::text || '.' || a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                WHERE c.relnamespace = current_schema()::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
                """) { columns.insert($0.text(0)) }
            present = later.columns.first { columns.contains("\($0.table).\($0.column)") }.map { "column '\($0.table).\($0.column)'" }
        }
        guard let present else { return }
        throw StateError(.corrupt, "\(location) says schema version \(version), but already has the \(present) that a later version adds: its schema_version was changed outside orgctl",
                         help: "restore the database from a backup, or set the version it really has in orgctl_meta (docs/state-schema.md, 'Schema version and migrations')")
    }

    // MARK: Transactions

    /// Runs `body` between `begin` and COMMIT (held-back and queued writes sent first); ROLLBACK when anything fails.
    private func inTransaction<T>(_ begin: String, _ body: () throws -> T) throws -> T {
        try connection.execute(begin)
        do {
            let result = try body()
            try database.pendingWrites.run()
            try database.finishWrite()
            try connection.execute("COMMIT")
            database.endTransaction()
            return result
        } catch {
            database.discard()
            _ = try? connection.execute("ROLLBACK")
            throw error
        }
    }

    func inSnapshot<T>(_ what: String, _ body: () throws -> T) throws(StateError) -> T {
        try storeCall(what) { try inTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body) }
    }

    func inWriteTransaction<T>(_ what: String, _ body: () throws -> T) throws(StateError) -> T {
        try storeCall(what) {
            try retrying {
                try inTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ") {
                    try takeLock()
                    try migrateDeferred()
                    return try body()
                }
            }
        }
    }

    func inOutboxTransaction<T>(_ what: String, _ body: () throws -> T) throws(StateError) -> T {
        try storeCall(what) { try retrying { try inTransaction("BEGIN", body) } }
    }

    func checkSchemaObjectsForWrite() throws { try checkSchemaObjects() }

    /// Runs `body` again after a serialization failure or deadlock, up to ``retries`` times.
    private func retrying<T>(_ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try body()
            } catch let error as PostgresError where error.isRetryable && attempt < Self.retries {
                continue
            }
        }
    }

    /// Locks the row of `orgctl_lock` for this transaction, waiting up to the lock timeout, and
    /// marks it, so that a waiter whose snapshot predates this transaction's commit starts again.
    private func takeLock() throws {
        try connection.execute("SET LOCAL lock_timeout = \(max(1, Int(lockTimeoutMilliseconds)))")
        do {
            let locked = try connection.execute("SELECT name FROM orgctl_lock WHERE name = 'apply' FOR UPDATE")
            guard locked == 1 else {
                throw StateError(.corrupt, "\(location) has no lock row in orgctl_lock",
                                 help: "restore it: INSERT INTO \(PostgresSchema.quoted(schema)).orgctl_lock (name) VALUES ('apply')")
            }
        } catch let error as PostgresError where error.sqlState == "55P03" {
            throw lockRefusal()
        }
        try connection.execute("UPDATE orgctl_lock SET holder = current_setting('application_name'), since = now() WHERE name = 'apply'")
    }

    /// Who holds the lock, found from another session's point of view: the transaction that
    /// marked the lock row (its `xmax`), the backend holding that transaction, and what that
    /// backend says of itself.
    private func lockRefusal() -> StateError {
        _ = try? connection.execute("ROLLBACK")
        var holder = "another session"
        if let rows = try? connection.rows("""
            SELECT a.application_name, coalesce(host(a.client_addr), 'a local socket'), to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), a.pid
            FROM \(PostgresSchema.quoted(schema)).orgctl_lock l
            JOIN pg_locks k ON k.locktype = 'transactionid' AND k.transactionid = l.xmax AND k.granted AND k.mode = 'ExclusiveLock'
            JOIN pg_stat_activity a ON a.pid = k.pid
            WHERE l.name = 'apply'
            """), let row = rows.first, row.count == 4 {
            func text(_ value: PostgresValue) -> String {
                switch value {
                case .text(let text): AddressSegment.escapeForMessage(text)
                case .int(let n): String(n)
                default: "unknown"
                }
            }
            holder = "'\(text(row[0]))' (server process \(text(row[3])), connected from \(text(row[1])), since \(text(row[2])))"
        }
        return StateError(.locked, "the state at \(location) is locked by another apply: \(holder); waited \(lockTimeoutMilliseconds) ms",
                          help: "wait for the other apply to finish, or raise --lock-timeout; a killed apply leaves no lock behind")
    }

    // MARK: Reading

    public func read() throws(StateError) -> StoredState {
        try inSnapshot("reading the state") {
            let state = try readUnlocked()
            lastReadSnapshot = try currentSnapshot()
            return state
        }
    }

    public func readCheckingChain(state deliver: (StoredState) -> Void, shouldStop: () -> Bool) throws(StateError) -> AuditChainCheck {
        try inSnapshot("reading the state") {
            let state = try readUnlocked()
            lastReadSnapshot = try currentSnapshot()
            deliver(state)
            return try db.checkAuditChain(shouldStop: shouldStop)
        }
    }

    public func readWithApplied() throws(StateError) -> (state: StoredState, applied: [String: AppliedResource]) {
        try inSnapshot("reading the state") { try readWithAppliedUnlocked() }
    }

    public func read(tenant slug: String) throws(StateError) -> StoredState {
        try inSnapshot("reading the state") { try readUnlocked(tenant: slug) }
    }

    private func currentSnapshot() throws -> String? {
        try db.first("SELECT pg_current_snapshot()::text", []) { $0.text(0) }
    }

    // MARK: Writing

    public func write<T>(_ body: (any StateTransaction) throws -> T) throws -> T {
        let key = try requireKeyToWrite()
        // Only the server's errors are translated: what `body` throws (a stale plan, a refused
        // change) reaches the caller as it is, as on SQLite; wrapped, a stale plan printed as
        // "writing the state … failed: stale(addresses: [...])".
        do {
            return try retrying {
                try inTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ") {
                    try takeLock()
                    let snapshot = try currentSnapshot()
                    try migrateDeferred()
                    // Again under the lock: the schema may have changed since the state was opened.
                    try checkSchemaObjects()
                    try database.beginWrite()
                    try recordKey(key)
                    let read = lastReadSnapshot
                    let transaction = SQLStateTransaction(TransactionContext(
                        db: database, key: key, databaseID: databaseID, changedSinceRead: { read == nil || snapshot != read },
                        read: {
                            var state = try self.readUnlocked()
                            state.auditChain = try self.database.checkAuditChain()
                            return state
                        }))
                    return try body(transaction)
                }
            }
        } catch let error as PostgresError {
            throw Self.translate(error, location: location)
        }
    }

    // MARK: The audit log (shared: SQL/SQLStore.swift)

    public func forEachAuditRecord(from sequence: Int64, _ visit: (StoredAuditRecord) throws -> Bool) throws(StateError) {
        try forEachAuditRecordShared(from: sequence, visit)
    }

    public func verifyAudit() throws(StateError) -> (count: Int64, head: [UInt8], firstBreak: ChainBreak?) { try verifyAuditShared() }

    public var schemaVersion: Int { get throws(StateError) { version } }
    /// True only for a store opened with `defersMigration` on an older schema, until a write migrated it.
    public var hasOlderSchema: Bool { get throws(StateError) { version < Schema.currentVersion } }
    public var hasAuditTree: Bool { get throws(StateError) { true } }

    public func withAuditTree<T>(_ body: (MerkleTreeReader) throws -> T) throws(StateError) -> T { try withAuditTreeShared(body) }

    public func withVerifiedAuditTree<T>(rootsAt sizes: Set<Int64>, leavesOf sequences: Set<Int64>,
                                         _ body: (MerkleTreeReader, AuditLogVerification) throws -> T) throws(StateError) -> T {
        try withVerifiedAuditTreeShared(rootsAt: sizes, leavesOf: sequences, checkingTree: true, body)
    }

    public func verifyAuditLog(rootsAt sizes: Set<Int64>, eachEntry: () -> Void) throws(StateError) -> AuditLogVerification {
        try verifyAuditLogShared(rootsAt: sizes, checkingTree: true, eachEntry: eachEntry)
    }

    public var storedAuditOrigin: String? { get throws(StateError) { try storedAuditOriginShared() } }

    public func recordAuditOrigin(_ origin: String) throws(StateError) -> String { try recordAuditOriginShared(origin) }

    public var outbox: Outbox { Outbox(store: self) }

    // MARK: Errors

    func storeCall<T>(_ what: String, _ body: () throws -> T) throws(StateError) -> T {
        do {
            return try body()
        } catch let error as PostgresError {
            throw Self.translate(error, location: location)
        } catch let error as StateError {
            throw error
        } catch {
            throw StateError(.other, "\(what) \(location) failed: \(error)", help: "run 'orgctl audit verify'")
        }
    }

    /// A PostgreSQL failure as an operator reads it: what happened at which server, and what to do.
    static func translate(_ error: PostgresError, location: String) -> StateError {
        let reason = AddressSegment.escapeForMessage(error.message)
        switch (error.kind, error.sqlState ?? "") {
        case (.authentication, _):
            return StateError(.cantOpen, "cannot connect to \(location): \(reason)",
                              help: "check the user and the password (PGPASSWORD, ~/.pgpass or PGSERVICE; a password in --state is never printed)")
        case (.tls, _):
            return StateError(.cantOpen, "cannot connect to \(location) over TLS: \(reason)",
                              help: "enable TLS on the server, or lower sslmode in --state only on a network you trust")
        case (.connection, _):
            return StateError(.cantOpen, "cannot connect to \(location): \(reason)",
                              help: "check that the server runs and the host, port and database in --state (or PGHOST, PGPORT, PGDATABASE)")
        case (_, "42501"):
            return StateError(.readOnly, "\(location): \(reason.hasPrefix("permission denied") ? reason : "permission denied: \(reason)")",
                              help: "grant orgctl's role what docs/postgres-roles.sql grants (docs/state-schema.md, 'PostgreSQL roles'), or run orgctl as that role")
        case (_, "3F000"):
            return StateError(.cantOpen, "\(location): \(reason)", help: "create the schema, or let apply create it (the role needs CREATE on the database)")
        case (_, "55P03"):
            return StateError(.locked, "\(location) is locked: \(reason)", help: "wait for the other apply to finish, or raise --lock-timeout")
        case (_, "40001"), (_, "40P01"):
            return StateError(.locked, "\(location): the apply conflicted with other writes \(Self.retries) times in a row: \(reason)",
                              help: "run the apply again; if it keeps failing, look for a process writing orgctl's tables at the same time")
        case (_, "53100"):
            return StateError(.full, "\(location): \(reason)", help: "free disk space on the server and run apply again")
        case (_, let state) where state.hasPrefix("57") || state.hasPrefix("08"):
            return StateError(.io, "the connection to \(location) was lost: \(reason)",
                              help: "nothing was committed by the interrupted transaction; check the server and run the command again")
        default:
            return StateError(.other, "\(location): \(reason)\(error.sqlState.map { " (sqlstate \($0))" } ?? "")",
                              help: "run 'orgctl audit verify'; check the server's log")
        }
    }
}

