public import Audit
public import Spec
import Crypto
import Foundation

/// What the Reconciler needs from a state store; a server database can implement it later
/// without touching the Reconciler.
public protocol StateStore: AnyObject {
    var databaseID: String { get }
    /// Reads every resource in one consistent snapshot.
    func read() throws(StateError) -> StoredState
    /// Runs `body` inside one write transaction (the write lock is taken first, waiting up to the
    /// lock timeout); commits when it returns, rolls back when it throws.
    func write<T>(_ body: (any StateTransaction) throws -> T) throws -> T
}

/// The writes of one apply. Every method keeps `orgctl_resources` (what orgctl last applied) in step.
public protocol StateTransaction {
    /// True when no other connection committed anything since this store last read the state
    /// (`read()` or `readCheckingChain`).
    var isUnchangedSinceRead: Bool { get throws }
    /// Re-reads the state inside the write lock; its `auditChain` is the chain checked in the same
    /// snapshot when the store could do that alongside (`.unchecked` otherwise).
    func read() throws -> StoredState
    /// Inserts a resource (its parent must exist) and returns its row id.
    func create(_ resource: Resource, secrets: [String: [UInt8]], auditSequence: Int64) throws -> Int64
    /// Writes `changes` into an existing row.
    func update(_ stored: StoredResource, changes: [Attribute], secrets: [String: [UInt8]], auditSequence: Int64) throws
    func delete(_ stored: StoredResource) throws
    /// Renames a tenant, team or role in place: its slug and the recorded addresses of it and of
    /// everything below it move from `oldAddress` to `newAddress`; row ids and child rows stay.
    func rename(_ stored: StoredResource, from oldAddress: String, to newAddress: String) throws
    /// Records `stored`'s digest as what orgctl applied (a row whose digest changed with a rename).
    func refreshDigest(_ stored: StoredResource) throws
    /// Records an existing row as applied (adoption): writes no platform row.
    func adopt(_ stored: StoredResource, auditSequence: Int64) throws
    /// Appends an audit entry to the chain and returns its sequence number.
    func appendAudit(_ build: (Int64) -> AuditEntry) throws -> Int64
    /// Verifies the whole chain before anything is appended.
    func verifyAuditChain() throws -> ChainBreak?
    /// The addresses named by audit entries after `sequence` (what other applies changed).
    func auditAddresses(after sequence: Int64) throws -> [String]
    /// Writes webhook events to the outbox, in this transaction (docs/webhooks.md).
    func enqueueEvents(_ events: [OutboxEvent]) throws
}

/// The SQLite implementation: one file, WAL mode, `synchronous=FULL`.
public final class SQLiteStateStore: StateStore {
    public enum Access: Sendable { case readOnly, readWrite }

    let db: SQLiteConnection
    let path: String
    let key: StateKey?
    public private(set) var databaseID: String
    /// When the state was last read: SQLite's `data_version` then (which changes with every commit
    /// by another connection) and the database and WAL files as they were just before.
    private var lastRead: (dataVersion: Int64, files: [FileStamp])?

    /// Opens (and for `.readWrite`, creates or migrates) the database at `path`.
    ///
    /// Returns nil for `.readOnly` when the file does not exist yet: the state is empty.
    ///
    /// - Parameter readsOlderSchema: for `.readOnly`, accept a database of an older schema version
    ///   as it is instead of asking for a migration (the audit commands read `orgctl_audit`, which
    ///   every version has; check `schemaVersion` before using newer tables).
    /// - Parameter adopt: a platform database that orgctl did not create (see ``isAdoptable``) opens
    ///   read-only as a state that orgctl never applied; read-write only with `adopt`, which adds
    ///   orgctl's own tables to it and changes no platform row.
    public static func open(path: String, access: Access, lockTimeoutMilliseconds: Int32, key: StateKey?,
                            readsOlderSchema: Bool = false, adopt: Bool = false) throws(StateError) -> SQLiteStateStore? {
        let exists = FileManager.default.fileExists(atPath: path)
        if !exists {
            if access == .readOnly { return nil }
            // Create the file 0600 before SQLite opens it: the WAL and shared-memory files inherit its mode.
            let fd = Foundation.open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
            if fd < 0 {
                let reason = String(cString: strerror(errno))
                throw StateError(.cantOpen, "cannot create the state database '\(path)': \(reason)",
                                 help: "check that the folder exists and is writable, or choose another path with --state")
            }
            close(fd)
        }
        do {
            let db = try SQLiteConnection(path: path, mode: access == .readOnly ? .readOnly : .readWrite,
                                          busyTimeoutMilliseconds: lockTimeoutMilliseconds)
            let store = try SQLiteStateStore(db: db, path: path, key: key, access: access, readsOlderSchema: readsOlderSchema, adopt: adopt,
                                             created: !exists)
            return store
        } catch let error as SQLiteError {
            throw StateError(error, path: path)
        } catch let error as StateError {
            throw error
        } catch {
            throw StateError(.other, "cannot open '\(path)': \(error)", help: "check the path given by --state")
        }
    }

    private init(db: SQLiteConnection, path: String, key: StateKey?, access: Access, readsOlderSchema: Bool, adopt: Bool, created: Bool) throws {
        self.db = db
        self.path = path
        self.key = key
        self.databaseID = ""
        try prepare(access: access, readsOlderSchema: readsOlderSchema, adopt: adopt, created: created)
    }

    /// True when the database holds platform tables written by something other than orgctl and
    /// has not been adopted yet (it opened read-only with empty stand-ins for orgctl's tables).
    public private(set) var isUnadopted = false
    /// Read-only, a database older than schema 5 read as migrated: its digests are keyed on reading.
    private var storedDigestsArePlain = false

    private func prepare(access: Access, readsOlderSchema: Bool, adopt: Bool, created: Bool) throws {
        // Reading the schema first also makes SQLite check the header: a non-database fails here.
        let version = Int(try integerPragma("user_version"))
        let applicationID = try integerPragma("application_id")
        let tableCount = try db.prepare("SELECT count(*) FROM sqlite_master").all().first?.first
        let isEmpty = tableCount == .integer(0)
        // `user_version` is signed; no orgctl writes a negative one, and no migration starts below 0.
        guard version >= 0 else {
            throw StateError(.notOrgctl, "'\(path)' has schema version \(version), which no orgctl writes",
                             help: "restore the database from a backup, or point --state (or ORGCTL_STATE) at another file")
        }
        if isEmpty && !created { try refuseEmpty(access: access) }
        if !isEmpty && applicationID != Int64(Schema.applicationID) {
            guard applicationID == 0, version == 0, let missingColumns = try adoptableLayout() else {
                throw StateError(.notOrgctl, "'\(path)' is a SQLite database, but not an orgctl state database",
                                 help: "point --state (or ORGCTL_STATE) at an orgctl database, or at a new file name (a platform database can be adopted when its tables are exactly those of docs/state-schema.md)")
            }
            try checkSchemaObjects(unadopted: true)
            try db.execute("PRAGMA foreign_keys = ON")
            if access == .readOnly {
                // Empty stand-ins for orgctl's tables, in the connection's own temporary schema:
                // the file is not touched, and every row reads as never applied.
                try db.execute(Schema.unadoptedStandIns)
                try shadow(missingColumns: missingColumns)
                isUnadopted = true
                return
            }
            guard adopt else {
                throw StateError(.notOrgctl, "'\(path)' holds platform tables that orgctl did not write, and has not been adopted",
                                 help: "to adopt it: 'orgctl export --state \(path) OUT', review OUT, then 'orgctl apply OUT --state \(path) --adopt'")
            }
            try db.execute("PRAGMA journal_mode = WAL")
            try db.execute("PRAGMA synchronous = FULL")
            try migrate(from: 0, fresh: true, adopting: true)
            databaseID = try metaValue("database_id") ?? ""
            return
        }
        if version > Schema.currentVersion {
            throw StateError(.newerSchema, "'\(path)' has schema version \(version), newer than this orgctl understands (\(Schema.currentVersion))",
                             help: "upgrade orgctl; an older orgctl never writes to a newer database")
        }
        if !isEmpty { try checkSchemaObjects(unadopted: false) }
        try db.execute("PRAGMA foreign_keys = ON")
        // Before anything is written (a migration included): another key is refused.
        if !isEmpty { try checkKey() }
        if access == .readWrite {
            try db.execute("PRAGMA journal_mode = WAL")
            try db.execute("PRAGMA synchronous = FULL")
            if version < Schema.currentVersion {
                try migrate(from: version, fresh: isEmpty)
            }
        } else if version < Schema.currentVersion {
            if isEmpty { return }  // a new, empty file: the state is empty
            if readsOlderSchema, version >= 1 {
                databaseID = try metaValue("database_id") ?? ""
                return
            }
            try readAsMigrated(from: version)
            try refuseLoweredKeyedVersion(version)
            storedDigestsArePlain = version < Schema.keyedDigestMigration + 1
        }
        databaseID = try metaValue("database_id") ?? ""
    }

    /// An existing file without a single table (0 bytes, or a SQLite header and nothing else) is
    /// no state database: only a file this process has just created is made one. Read-write, the
    /// check is repeated under the write lock, so another apply that is creating the same file
    /// (it holds the lock from creation to commit) is waited for.
    private func refuseEmpty(access: Access) throws {
        if access == .readWrite {
            // Rolled back, not committed: committing would write a header into an empty file.
            try db.execute("BEGIN IMMEDIATE")
            let tables = try? db.prepare("SELECT count(*) FROM sqlite_master").all().first?.first
            try db.execute("ROLLBACK")
            if let tables, tables != .integer(0) { return }
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        throw StateError(.notOrgctl, "'\(path)' is not an orgctl state database: it is \(size == 0 ? "an empty file (0 bytes)" : "a SQLite file without tables")",
                         help: "if an interrupted first apply left it, delete it and run apply again (apply creates the database); otherwise point --state (or ORGCTL_STATE) at the orgctl state database")
    }

    /// Lets a read-only connection read a database of an older schema as the migration would
    /// leave it, without writing to the file: tables the later steps create exist empty, and
    /// columns they add read as NULL (which is what the migration gives existing rows), all in
    /// the connection's own temporary schema.
    private func readAsMigrated(from version: Int) throws {
        var missingColumns: [String: [String]] = [:]
        for step in version..<Schema.currentVersion {
            for statement in Schema.migrations[step] {
                try refuseIfPresent(statement, version: version)
                switch statement {
                case .addColumn(let table, let column, _):
                    missingColumns[table, default: []].append(column)
                case .createTable(let name, let definition):
                    try db.execute("CREATE TEMP TABLE \(name) \(definition)")
                case .sql:
                    throw StateError(.newerSchema, "'\(path)' has schema version \(version) and needs a migration to \(Schema.currentVersion)",
                                     help: "run 'orgctl apply' (it migrates the database) and then plan again")
                }
            }
        }
        try shadow(missingColumns: missingColumns)
    }

    /// Columns a table lacks read as NULL, through temporary views that shadow the tables for
    /// this connection only.
    private func shadow(missingColumns: [String: [String]]) throws {
        for (table, columns) in missingColumns.sorted(by: { $0.key < $1.key }) {
            let extra = columns.map { "NULL AS \($0)" }.joined(separator: ", ")
            try db.execute("CREATE TEMP VIEW \(table) AS SELECT *, \(extra) FROM main.\(table)")
        }
    }

    /// What `statement` adds that the database already has ("column t.c", "table t"), or nil.
    private func alreadyPresent(_ statement: Schema.Statement) throws -> String? {
        let query: (sql: String, values: [SQLiteValue]), what: String
        switch statement {
        case .sql: return nil
        case .addColumn(let table, let column, _):
            query = ("SELECT count(*) FROM pragma_table_info(?1, 'main') WHERE name = ?2", [.text(table), .text(column)])
            what = "column \(table).\(column)"
        case .createTable(let name, _):
            query = ("SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name = ?1", [.text(name)])
            what = "table \(name)"
        }
        let count = try db.prepare(query.sql)
        try count.bind(query.values)
        _ = try count.step()
        return count.int(at: 0) > 0 ? what : nil
    }

    /// An orgctl database whose recorded version is older than what it holds had its
    /// `user_version` changed outside orgctl: migrating (or reading it as migrated) would be wrong.
    private func refuseIfPresent(_ statement: Schema.Statement, version: Int) throws {
        guard let present = try alreadyPresent(statement) else { return }
        throw StateError(.corrupt, "'\(path)' says schema version \(version), but already has the \(present) that a later version adds: its user_version was changed outside orgctl",
                         help: "restore the database from a backup, or set the version it really has with sqlite3 ('PRAGMA user_version = N', see docs/state-schema.md)")
    }

    /// One migration step of adoption: orgctl's own tables for step 0 (the platform tables exist),
    /// and for later steps every statement but the columns the platform's tables already have
    /// (a platform that followed a later documented layout).
    private func adoptStep(_ step: Int) throws {
        guard step > 0 else { return try db.execute(Schema.orgctlTablesV1) }
        for statement in Schema.migrations[step] where try alreadyPresent(statement) == nil {
            try db.execute(statement.sql)
        }
    }

    /// Runs the migrations from the stored version; `adopting` creates only orgctl's own tables
    /// for version 0 (the platform tables are there already).
    private func migrate(from version: Int, fresh: Bool, adopting: Bool = false) throws {
        try db.transaction(.immediate) {
            // Re-check inside the lock: another process may have migrated (or adopted) meanwhile.
            let current = Int(try integerPragma("user_version"))
            guard current < Schema.currentVersion else { return }
            if adopting, try integerPragma("application_id") != 0 { return }
            for step in current..<Schema.currentVersion {
                if adopting {
                    try adoptStep(step)
                } else {
                    for statement in Schema.migrations[step] {
                        try refuseIfPresent(statement, version: current)
                        try db.execute(statement.sql)
                    }
                }
                // The tree over the entries already written, in the same transaction.
                if step == Schema.merkleMigration { try MerkleStorage(db: db).backfill() }
                if step == Schema.keyedDigestMigration {
                    try refuseLoweredKeyedVersion(current)
                    try keyStoredDigests()
                }
            }
            if current == 0 {
                let id = Hex.encode(try SecureRandom.bytes(count: 16))
                let insert = try db.prepare("INSERT INTO orgctl_meta (key, value) VALUES (?1, ?2)")
                try insert.run([.text("database_id"), .text(id)])
                try insert.run([.text("created_at"), .text(ISO8601DateFormatter().string(from: Date()))])
                if adopting { try insert.run([.text("adopted"), .text("true")]) }
            }
            try db.execute("PRAGMA application_id = \(Schema.applicationID)")
            try db.execute("PRAGMA user_version = \(Schema.currentVersion)")
        }
    }

    /// True when every platform table of ``Schema/platformTablesV1`` exists with exactly its
    /// columns and no `orgctl_` table exists: a platform database that orgctl can adopt.
    /// The platform tables' layout as of some schema version — version 1's, or what a later
    /// migration step made of them (the platform may have followed the documented schema) — with
    /// no `orgctl_` table: a platform database that orgctl can adopt. Returns, per table, the
    /// columns the current layout has and the database lacks (for read-only stand-ins); nil when
    /// the database is not adoptable.
    private func adoptableLayout() throws -> [String: [String]]? {
        let own = try db.prepare("SELECT count(*) FROM sqlite_master WHERE name LIKE 'orgctl\\_%' ESCAPE '\\'").all().first?.first
        guard own == .integer(0) else { return nil }
        func columns(_ connection: SQLiteConnection, _ table: String) throws -> [String] {
            let statement = try connection.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY name")
            try statement.bind([.text(table)])
            var names: [String] = []
            while try statement.step() { names.append(statement.text(at: 0)) }
            return names
        }
        // The platform tables of every schema version, built in memory step by step.
        let reference = try SQLiteConnection(path: ":memory:", mode: .readWriteCreate, busyTimeoutMilliseconds: 0)
        try reference.execute(Schema.platformTablesV1)
        var tables: [String] = []
        for row in try reference.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() {
            if case .text(let table)? = row.first { tables.append(table) }
        }
        try reference.execute(Schema.orgctlTablesV1)
        let actual = try tables.map { try columns(db, $0) }
        var matched = false
        for step in 1...Schema.currentVersion {
            if try tables.map({ try columns(reference, $0) }) == actual { matched = true }
            if step < Schema.currentVersion { try reference.execute(Schema.migrationSQL(step)) }
        }
        guard matched else { return nil }
        var missing: [String: [String]] = [:]
        for (table, have) in zip(tables, actual) {
            let lacking = try columns(reference, table).filter { !have.contains($0) }
            if !lacking.isEmpty { missing[table] = lacking }
        }
        return missing
    }

    /// Refuses a database whose schema could make orgctl read or write something other than the
    /// rows it names: a trigger on one of its tables (platform or `orgctl_`) can undo, redirect or
    /// add to any write (a revoked API key kept while the audit log records its deletion); a view
    /// or another object named like one of its tables stands in for the table; a missing table
    /// makes the database incomplete; text stored as UTF-16 reads converted, so two keys could read
    /// as one. Indexes are allowed (they change no row). Names compare case-insensitively, as
    /// SQLite resolves them (a trigger `ON "API_KEYS"` fires on `api_keys`). Only the file's `main` schema is checked:
    /// orgctl's own stand-ins live in its connection's `temp` schema.
    func checkSchemaObjects(unadopted: Bool) throws {
        let encoding = try db.pragma("encoding")
        guard encoding == .text("UTF-8") else {
            var shown = "unknown"
            if case .text(let name)? = encoding { shown = AddressSegment.encode(name) }
            throw StateError(.notOrgctl, "'\(path)' stores text as \(shown), not as UTF-8 as orgctl does",
                             help: "point --state (or ORGCTL_STATE) at an orgctl database (orgctl creates them in UTF-8)")
        }
        let own = TableMap.platformTables
        let names = own.map { "'\($0)'" }.joined(separator: ", ")
        let objects = try db.prepare(
            """
            SELECT type, name, tbl_name FROM main.sqlite_master
            WHERE type NOT IN ('index', 'table')
              AND (lower(tbl_name) IN (\(names)) OR lower(name) IN (\(names))
                   OR tbl_name LIKE 'orgctl\\_%' ESCAPE '\\' OR name LIKE 'orgctl\\_%' ESCAPE '\\')
            ORDER BY type, name
            """)
        if try objects.step() {
            let (type, name, table) = (objects.text(at: 0), objects.text(at: 1), objects.text(at: 2))
            let shown = AddressSegment.encode(name)
            let drop = shown == name ? " (sqlite3 \(path) 'DROP \(type.uppercased()) \"\(name)\"')" : ""
            let on = type == "trigger" ? " on table '\(AddressSegment.encode(table))'" : ""
            throw StateError(.corrupt, "'\(path)' has a \(type) '\(shown)'\(on) that orgctl did not create: it could change what orgctl reads or writes",
                             help: "orgctl works only on its tables as docs/state-schema.md describes them: drop it\(drop) or move it off orgctl's tables, then run the command again")
        }
        // orgctl's own stand-ins in `temp` are tables and views, never triggers.
        let temporary = try db.prepare("SELECT name FROM temp.sqlite_master WHERE type = 'trigger' ORDER BY name")
        if try temporary.step() {
            throw StateError(.corrupt, "the connection to '\(path)' has a temporary trigger '\(AddressSegment.encode(temporary.text(at: 0)))' that orgctl did not create",
                             help: "report this as a bug: no extension or setting of orgctl's should add triggers")
        }
        let required = own + (unadopted ? [] : ["orgctl_meta", "orgctl_resources", "orgctl_audit"])
        let tables = try db.prepare("SELECT name FROM main.sqlite_master WHERE type = 'table'")
        var present: Set<String> = []
        while try tables.step() { present.insert(tables.text(at: 0)) }
        if let missing = required.first(where: { !present.contains($0) }) {
            throw StateError(.notOrgctl, "'\(path)' is not a complete orgctl state database: it has no table '\(missing)'",
                             help: "restore the database from a backup, or point --state (or ORGCTL_STATE) at another file")
        }
    }

    // MARK: The state key

    /// Refuses a state key other than the one this database was written with: the recorded check
    /// value (schema 5), else, for a database written before it, the key id its secrets were sealed
    /// under. Nothing is known about the key of a database without either, and nothing is refused.
    private func checkKey() throws {
        guard let key else { return }
        let hasMeta = try hasMetaTable()
        guard hasMeta else { return }
        if let recorded = try metaValue("state_key_check") {
            guard recorded == key.checkValue else { throw wrongKey(recordedID: try metaValue("state_key_id") ?? "unknown", key) }
            return
        }
        var ids: [String] = []
        let sealed = try db.prepare("""
            SELECT secret_key_id FROM webhooks WHERE secret_ciphertext IS NOT NULL
            UNION SELECT client_secret_key_id FROM sso_providers WHERE client_secret_ciphertext IS NOT NULL
            """)
        while try sealed.step() { ids.append(sealed.optionalText(at: 0) ?? "unknown") }
        if !ids.isEmpty, !ids.contains(key.keyID) { throw wrongKey(recordedID: ids.sorted().joined(separator: ", "), key) }
    }

    /// A database that records a key check value has keyed digests (schema 5 or later): if it says
    /// an older version, its `user_version` was lowered outside orgctl, and keying its digests again
    /// would hide what changed.
    private func refuseLoweredKeyedVersion(_ version: Int) throws {
        guard version >= 1, version <= Schema.keyedDigestMigration else { return }
        let hasMeta = try hasMetaTable()
        guard hasMeta, try metaValue("state_key_check") != nil else { return }
        throw StateError(.corrupt, "'\(path)' says schema version \(version), but already records a state key check value, which version \(Schema.keyedDigestMigration + 1) adds: its user_version was changed outside orgctl",
                         help: "restore the database from a backup, or set the version it really has with sqlite3 ('PRAGMA user_version = N', see docs/state-schema.md)")
    }

    private func wrongKey(recordedID: String, _ key: StateKey) -> StateError {
        StateError(.badKey, "the state key does not match the key this database was encrypted with (key id \(recordedID); the key given has id \(key.keyID)); nothing was read or written",
                   help: "give the key '\(path)' was written with (ORGCTL_STATE_KEY or --state-key-file); with another key no secret could be read and every drift mark would be wrong")
    }

    /// Schema 4 -> 5: every stored digest becomes its keyed form, computed from the stored digest
    /// alone (never from the rows, which may have been changed outside orgctl): drift stays drift.
    /// Records the key's check value and id.
    private func keyStoredDigests() throws {
        let count = try db.prepare("SELECT count(*) FROM orgctl_resources").all().first?.first
        guard let key else {
            if count == .integer(0) { return }
            throw StateError(.missingKey, "'\(path)' must be migrated to schema \(Schema.currentVersion), which keys its row digests with the state key, and no state key was given",
                             help: "set ORGCTL_STATE_KEY (the key the database's secrets were written with) or pass --state-key-file")
        }
        let keying = DigestKeying(key)
        var rows: [(kind: String, rowID: Int64, digest: String)] = []
        let select = try db.prepare("SELECT kind, row_id, digest FROM orgctl_resources")
        while try select.step() {
            // A digest that is not 64 hex digits (edited by hand) stays as it is: it matches no row.
            guard let plain = select.withText(at: 2, { Digest(hex: $0) }) else { continue }
            rows.append((select.text(at: 0), select.int(at: 1), keying.keyed(plain, rowID: select.int(at: 1)).description))
        }
        let update = try db.prepare("UPDATE orgctl_resources SET digest = ?1 WHERE kind = ?2 AND row_id = ?3")
        for row in rows { try update.run([.text(row.digest), .text(row.kind), .integer(row.rowID)]) }
        try recordKey(key)
    }

    /// Records the check value and id of `key` in `orgctl_meta`, unless one is recorded already.
    func recordKey(_ key: StateKey) throws {
        let insert = try db.cached("INSERT OR IGNORE INTO orgctl_meta (key, value) VALUES (?1, ?2)")
        try insert.run([.text("state_key_check"), .text(key.checkValue)])
        try insert.run([.text("state_key_id"), .text(key.keyID)])
    }

    func integerPragma(_ name: String) throws -> Int64 {
        if case .integer(let value) = try db.pragma(name) { return value }
        return 0
    }

    /// Whether the file has orgctl's `orgctl_meta` table (a database written before it, or another file, has not).
    private func hasMetaTable() throws -> Bool {
        try db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'orgctl_meta'").all().first?.first == .integer(1)
    }

    func metaValue(_ key: String) throws -> String? {
        let statement = try db.prepare("SELECT value FROM orgctl_meta WHERE key = ?1")
        try statement.bind([.text(key)])
        return try statement.step() ? statement.text(at: 0) : nil
    }

    // MARK: Reading

    public func read() throws(StateError) -> StoredState {
        try storeCall("reading the state") {
            return try db.transaction(.deferred) { () throws -> StoredState in
                let files = fileStamps()
                let state = try readUnlocked()
                lastRead = (try integerPragma("data_version"), files)
                return state
            }
        }
    }

    /// As ``read()``, then checks the audit chain's hashes and linkage in the same snapshot (what
    /// apply needs before it appends). `deliver` receives the state as soon as it is read, so the
    /// caller can plan while the chain is checked; `shouldStop` is asked every few thousand
    /// entries and ends the check early, with `.unchecked`, once the caller no longer needs it.
    public func readCheckingChain(state deliver: (StoredState) -> Void, shouldStop: () -> Bool) throws(StateError) -> AuditChainCheck {
        try storeCall("reading the state") {
            return try db.transaction(.deferred) { () throws -> AuditChainCheck in
                let files = fileStamps()
                let state = try readUnlocked()
                lastRead = (try integerPragma("data_version"), files)
                deliver(state)
                return try db.checkAuditChain(shouldStop: shouldStop)
            }
        }
    }

    /// The state, and what orgctl last applied to every row that drifted or was deleted outside
    /// orgctl, read in one snapshot (for `orgctl drift`; plan needs only the digests).
    public func readWithApplied() throws(StateError) -> (state: StoredState, applied: [String: AppliedResource]) {
        try storeCall("reading the state") {
            return try db.transaction(.deferred) { () throws -> (state: StoredState, applied: [String: AppliedResource]) in
                let state = try readUnlocked()
                var addresses = state.missingApplied
                for resource in state.resources where resource.isDrifted { addresses.append(resource.address) }
                let statement = try db.prepare("SELECT kind, applied, audit_seq FROM orgctl_resources WHERE address = ?1")
                var applied: [String: AppliedResource] = [:]
                for address in addresses {
                    statement.reset()
                    try statement.bind([.text(address)])
                    guard try statement.step(), let kind = ResourceKind(rawValue: statement.text(at: 0)) else { continue }
                    let attributes = statement.optionalBlob(at: 1).flatMap(AppliedValues.decode)
                    applied[address] = AppliedResource(address: address, kind: kind, attributes: attributes, auditSequence: statement.int(at: 2))
                }
                return (state, applied)
            }
        }
    }

    func readUnlocked() throws -> StoredState {
        let reader = StateReader(db: db, key: key, storedDigestsArePlain: storedDigestsArePlain)
        let (resources, moved) = try reader.read()
        let missing = Set(try reader.readMissingApplied() + moved).sorted()
        let state = StoredState(resources: resources, auditHead: try auditHeadUnlocked(), databaseID: databaseID, missingApplied: missing)
        if let (first, second) = state.duplicate {
            let (a, b) = (resources[first], resources[second])
            let tables = Set([TableMap.of(a.resource.kind).table, TableMap.of(b.resource.kind).table]).sorted().joined(separator: " and ")
            throw reader.refusal("rows \(a.rowID) and \(b.rowID) of \(tables) have the same address \(a.address)")
        }
        return state
    }

    func auditHeadUnlocked() throws -> AuditHead {
        let statement = try db.cached("SELECT seq, hash FROM orgctl_audit ORDER BY seq DESC LIMIT 1")
        defer { statement.reset() }
        guard try statement.step() else { return AuditHead(sequence: 0, hash: Hex.encode(AuditHash.genesis)) }
        return AuditHead(sequence: statement.int(at: 0), hash: Hex.encode(statement.blob(at: 1)))
    }

    // MARK: Writing

    public func write<T>(_ body: (any StateTransaction) throws -> T) throws -> T {
        // Every row written records a keyed digest (see ResourceDigest).
        guard let key else {
            throw StateError(.missingKey, "writing the state needs the state key, which keys the row digests that tell changes made outside orgctl apart",
                             help: "set ORGCTL_STATE_KEY to 32 random bytes in base64 (openssl rand -base64 32) or pass --state-key-file; keep the key")
        }
        do {
            return try db.transaction(.immediate) {
                // Again under the write lock: the schema may have changed since the database was opened.
                try checkSchemaObjects(unadopted: false)
                try recordKey(key)
                let transaction = SQLiteStateTransaction(store: self)
                return try body(transaction)
            }
        } catch let error as SQLiteError {
            throw StateError(error, path: path)
        }
    }

    /// True when the database may differ from the last read: another connection committed, or the
    /// database or WAL file was written some other way (bytes written into the file directly,
    /// which `data_version` does not see).
    fileprivate var changedSinceRead: Bool {
        get throws {
            guard let lastRead else { return true }
            return try integerPragma("data_version") != lastRead.dataVersion || fileStamps() != lastRead.files
        }
    }

    /// The identity, size and change times of the database file and its WAL.
    private func fileStamps() -> [FileStamp] {
        [path, path + "-wal"].map(FileStamp.init(path:))
    }

    /// Runs a store call, translating SQLite errors (named with the database's path) and anything
    /// unexpected into `StateError`s.
    func storeCall<T>(_ what: String, _ body: () throws -> T) throws(StateError) -> T {
        do {
            return try body()
        } catch let error as SQLiteError {
            throw StateError(error, path: path)
        } catch let error as StateError {
            throw error
        } catch {
            throw StateError(.other, "\(what) '\(path)' failed: \(error)", help: "run 'orgctl audit verify'")
        }
    }

    // MARK: Audit log

    /// Streams the chain in sequence order through `visit`; stops early when it returns false.
    public func forEachAuditRecord(from sequence: Int64 = 1, _ visit: (StoredAuditRecord) throws -> Bool) throws(StateError) {
        try storeCall("reading the audit log") {
            try db.transaction(.deferred) {
                let statement = try db.prepare("SELECT seq, entry, prev_hash, hash FROM orgctl_audit WHERE seq >= ?1 ORDER BY seq")
                try statement.bind([.integer(sequence)])
                while try statement.step() {
                    let record = StoredAuditRecord(sequence: statement.int(at: 0), entry: statement.blob(at: 1),
                                                   previousHash: statement.blob(at: 2), hash: statement.blob(at: 3))
                    if try !visit(record) { break }
                }
            }
        }
    }

    /// Re-checks every entry's hash and linkage; nil when the chain is intact.
    public func verifyAudit() throws(StateError) -> (count: Int64, head: [UInt8], firstBreak: ChainBreak?) {
        var verifier = ChainVerifier()
        try forEachAuditRecord { record in
            verifier.check(record) == nil
        }
        return (verifier.count, verifier.head, verifier.firstBreak)
    }
}

/// One apply's writes, inside the store's write transaction.
final class SQLiteStateTransaction: StateTransaction {
    let store: SQLiteStateStore
    private var db: SQLiteConnection { store.db }
    private var rowIDs: [String: Int64] = [:]
    /// Digests every row written, with one input buffer and one SHA-256 context.
    private var digester: ResourceDigester
    private var head: AuditHead?
    /// The right edge of the Merkle tree, read on the first append.
    private var tree: CompactRange?

    init(store: SQLiteStateStore) {
        self.store = store
        digester = ResourceDigester(key: store.key)
    }

    var isUnchangedSinceRead: Bool { get throws { try !store.changedSinceRead } }

    /// Re-reads the state inside the write lock, with the audit chain checked alongside on a
    /// second, read-only connection: while this transaction holds the write lock nobody can
    /// commit, so that connection reads exactly this snapshot.
    func read() throws -> StoredState {
        let check = concurrentChainCheck(path: store.path)
        var state: StoredState
        do {
            state = try store.readUnlocked()
        } catch {
            check.stop()
            throw error
        }
        state.auditChain = check.result()
        return state
    }

    var auditHead: AuditHead {
        get throws {
            if let head { return head }
            let current = try store.auditHeadUnlocked()
            head = current
            return current
        }
    }

    func verifyAuditChain() throws -> ChainBreak? {
        // Never `.unchecked`: nothing asks this check to stop.
        if case .broken(let broken) = try db.checkAuditChain() { return broken }
        return nil
    }

    func auditAddresses(after sequence: Int64) throws -> [String] {
        var addresses: Set<String> = []
        let statement = try db.prepare("SELECT entry FROM orgctl_audit WHERE seq > ?1 ORDER BY seq")
        try statement.bind([.integer(sequence)])
        while try statement.step() {
            if let entry = try? AuditEntry(canonicalBytes: statement.blob(at: 0)) { addresses.insert(entry.address) }
        }
        return addresses.sorted()
    }

    func appendAudit(_ build: (Int64) -> AuditEntry) throws -> Int64 {
        let current = try auditHead
        let sequence = current.sequence + 1
        let bytes = build(sequence).canonicalBytes()
        let previous = Hex.decode(current.hash) ?? AuditHash.genesis
        let leaf = AuditHash.leaf(bytes)
        let hash = AuditHash.chain(previous: previous, leaf: leaf)
        let insert = try db.cached("INSERT INTO orgctl_audit (seq, entry, prev_hash, hash) VALUES (?1, ?2, ?3, ?4)")
        try insert.bind(int: sequence, at: 1)
        try insert.bind(blob: bytes, at: 2)
        try insert.bind(blob: previous, at: 3)
        try insert.bind(blob: hash, at: 4)
        try insert.run()
        try expectChanges(1, table: "orgctl_audit", "appending audit entry \(sequence)")
        // The Merkle tree grows in the same transaction: leaf `sequence - 1`, and every perfect
        // subtree it completes at a stored level.
        let storage = MerkleStorage(db: db)
        if tree == nil {
            try storage.refuseNodesBeyond(size: current.sequence)
            tree = try storage.compactRange(size: current.sequence)
        }
        // Mutated in place (`tree!`), so the right edge is not copied on every append.
        try tree!.append(leafHash: leaf) { level, index, node in try storage.completed(level: level, index: index, hash: node) }
        head = AuditHead(sequence: sequence, hash: Hex.encode(hash))
        return sequence
    }

    // MARK: Row ids of parents

    /// The row id of the resource at `address` (a tenant, team or member), looked up once.
    private func rowID(of address: String) throws -> Int64 {
        if let known = rowIDs[address] { return known }
        let parts = address.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let statement: SQLiteStatement
        switch parts.count {
        case 2 where parts[0] == "tenant":
            statement = try db.cached("SELECT id FROM tenants WHERE slug = ?1")
            try statement.bind([.text(parts[1])])
        case 4 where parts[2] == "team":
            statement = try db.cached("SELECT g.id FROM teams g JOIN tenants t ON t.id = g.tenant_id WHERE t.slug = ?1 AND g.slug = ?2")
            try statement.bind([.text(parts[1]), .text(parts[3])])
        case 4 where parts[2] == "member":
            statement = try db.cached("SELECT m.id FROM members m JOIN tenants t ON t.id = m.tenant_id WHERE t.slug = ?1 AND m.email = ?2")
            try statement.bind([.text(parts[1]), .text(parts[3])])
        default:
            throw StateError(.other, "internal error: '\(address)' has no row id", help: "report this as a bug")
        }
        defer { statement.reset() }
        guard try statement.step() else {
            throw StateError(.other, "'\(address)' does not exist in the state database",
                             help: "declare it in the configuration (or stop referring to it) and plan again")
        }
        let id = statement.int(at: 0)
        rowIDs[address] = id
        return id
    }

    // MARK: Create, update, delete

    func create(_ resource: Resource, secrets: [String: [UInt8]], auditSequence: Int64) throws -> Int64 {
        let map = TableMap.of(resource.kind)
        var columns: [String] = []
        var values: [SQLiteValue] = []
        let name = String(resource.address.split(separator: "/").last ?? "")
        if let keyColumn = map.keyColumn {
            columns.append(keyColumn)
            values.append(.text(name))
        }
        switch resource.kind {
        case .tenantRole, .member, .team, .ssoProvider, .webhook, .apiKey:
            columns.append("tenant_id")
            values.append(.integer(try rowID(of: resource.parent ?? "")))
        case .teamMember:
            let team = resource.parent ?? ""
            let tenant = String(Resource.collection(of: String(Resource.collection(of: team))))
            columns += ["team_id", "member_id"]
            values += [.integer(try rowID(of: team)), .integer(try rowID(of: "\(tenant)/member/\(name)"))]
        default:
            break
        }
        var stored = resource.attributes.filter { !$0.value.isNull }
        // Columns with defaults: record what the row really holds, so its digest matches a later read.
        if resource.kind == .tenant, resource["status"].isNull {
            columns.append("status")
            values.append(.text("active"))
            stored.append(Attribute("status", .string("active")))
        }
        var deferred: [Attribute] = []
        for attribute in resource.attributes {
            guard case .column(let column, let encoding)? = map.storage(for: attribute.name) else {
                deferred.append(attribute)
                continue
            }
            columns.append(column)
            values.append(try encode(attribute.value, encoding))
        }
        let placeholders = (1...columns.count).map { "?\($0)" }.joined(separator: ", ")
        try change("INSERT INTO \(map.table) (\(columns.joined(separator: ", "))) VALUES (\(placeholders))", values,
                   rows: 1, table: map.table, "creating \(resource.address)")
        let id = db.lastInsertRowID
        if [.tenant, .team, .member].contains(resource.kind) { rowIDs[resource.address] = id }
        for attribute in deferred where !attribute.value.isNull {
            try write(attribute, before: .null, kind: resource.kind, map: map, rowID: id, address: resource.address, secrets: secrets)
        }
        try recordApplied(Resource(address: resource.address, kind: resource.kind, parent: resource.parent, attributes: stored),
                          rowID: id, auditSequence: auditSequence)
        return id
    }

    func update(_ stored: StoredResource, changes: [Attribute], secrets: [String: [UInt8]], auditSequence: Int64) throws {
        let map = TableMap.of(stored.resource.kind)
        var assignments: [String] = []
        var values: [SQLiteValue] = []
        for attribute in changes {
            if case .column(let column, let encoding)? = map.storage(for: attribute.name) {
                values.append(try encode(attribute.value, encoding))
                assignments.append("\(column) = ?\(values.count)")
            } else {
                try write(attribute, before: stored.resource[attribute.name], kind: stored.resource.kind, map: map, rowID: stored.rowID,
                          address: stored.address, secrets: secrets)
            }
        }
        if !assignments.isEmpty {
            values.append(.integer(stored.rowID))
            try change("UPDATE \(map.table) SET \(assignments.joined(separator: ", ")) WHERE id = ?\(values.count)", values,
                       rows: 1, table: map.table, "updating \(stored.address)")
        }
        var merged = stored.resource.attributes.filter { attribute in !changes.contains { $0.name == attribute.name } }
        merged += changes.filter { !$0.value.isNull }
        try recordApplied(Resource(address: stored.address, kind: stored.resource.kind, parent: stored.resource.parent, attributes: merged),
                          rowID: stored.rowID, auditSequence: auditSequence)
    }

    func delete(_ stored: StoredResource) throws {
        let map = TableMap.of(stored.resource.kind)
        let id = SQLiteValue.integer(stored.rowID)
        let what = { "deleting \(stored.address)" }  // built only when a write fails (hot path)
        if let scope = map.quotaScope {
            // Every quota row reads as an attribute (NULL as "unlimited"), so the stored resource counts them.
            let quotas = stored.resource.attributes.count { $0.name.hasPrefix("quotas.") }
            try change("DELETE FROM quotas WHERE scope = ?1 AND scope_id = ?2", [.text(scope), id], rows: quotas, table: "quotas", what())
        }
        switch stored.resource.kind {
        case .role, .tenantRole:
            try change("DELETE FROM role_permissions WHERE role_id = ?1", [id], rows: Self.count(stored.resource["permissions"]),
                       table: "role_permissions", what())
        case .tenant:
            // At most one row each (the primary key); a row whose columns are all NULL reads as no attribute.
            try db.cached("DELETE FROM security_policies WHERE tenant_id = ?1").run([id])
            try db.cached("DELETE FROM sso_settings WHERE tenant_id = ?1").run([id])
        default:
            break
        }
        try change("DELETE FROM \(map.table) WHERE id = ?1", [id], rows: 1, table: map.table, what())
        try db.cached("DELETE FROM orgctl_resources WHERE kind = ?1 AND row_id = ?2").run([.text(stored.resource.kind.rawValue), id])
        rowIDs[stored.address] = nil
    }

    func rename(_ stored: StoredResource, from oldAddress: String, to newAddress: String) throws {
        let map = TableMap.of(stored.resource.kind)
        guard let keyColumn = map.keyColumn, [.tenant, .team, .role, .tenantRole].contains(stored.resource.kind) else {
            throw StateError(.other, "internal error: a \(stored.resource.kind.rawValue) cannot be renamed", help: "report this as a bug")
        }
        let slug = String(newAddress.split(separator: "/").last ?? "")
        try change("UPDATE \(map.table) SET \(keyColumn) = ?1 WHERE id = ?2", [.text(slug), .integer(stored.rowID)], rows: 1, table: map.table,
                   "renaming \(oldAddress) to \(newAddress)")
        // Secrets are sealed to their address: re-seal the tenant's under the new one (same values).
        if stored.resource.kind == .tenant {
            try reseal(tenantID: stored.rowID, from: oldAddress, to: newAddress)
        }
        // Addresses below `a` sort from `a/` up to (not including) `a0` ('0' follows '/'): two range
        // updates over the unique address index, linear in what moves. Records already under the new
        // address can only be stale (their rows are gone, or the rename would be ambiguous): drop them.
        let (newLow, newHigh) = (SQLiteValue.text(newAddress + "/"), SQLiteValue.text(newAddress + "0"))
        try db.cached("DELETE FROM orgctl_resources WHERE address = ?1").run([.text(newAddress)])
        try db.cached("DELETE FROM orgctl_resources WHERE address >= ?1 AND address < ?2").run([newLow, newHigh])
        try db.cached("UPDATE orgctl_resources SET address = ?1 WHERE address = ?2").run([.text(newAddress), .text(oldAddress)])
        try db.cached("UPDATE orgctl_resources SET address = ?1 || substr(address, ?2) WHERE address >= ?3 AND address < ?4")
            .run([.text(newAddress), .integer(Int64(oldAddress.utf8.count + 1)), .text(oldAddress + "/"), .text(oldAddress + "0")])
        rowIDs = [:]
    }

    /// Re-encrypts the tenant's webhook and OIDC client secrets for its new address.
    private func reseal(tenantID: Int64, from oldAddress: String, to newAddress: String) throws {
        let sealed: [(table: String, prefix: String, segment: String, attribute: String)] = [
            ("webhooks", "secret", "webhook", "secret"), ("sso_providers", "client_secret", "sso", "clientSecret"),
        ]
        for (table, prefix, segment, attribute) in sealed {
            let select = try db.cached("SELECT id, name, \(prefix)_ciphertext FROM \(table) WHERE tenant_id = ?1 AND \(prefix)_ciphertext IS NOT NULL")
            try select.bind([.integer(tenantID)])
            var rows: [(id: Int64, name: String, ciphertext: [UInt8])] = []
            while try select.step() { rows.append((select.int(at: 0), select.withText(at: 1) { AddressSegment.encode($0) }, select.blob(at: 2))) }
            select.reset()
            guard !rows.isEmpty else { continue }
            guard let key = store.key else {
                throw StateError(.missingKey, "renaming \(oldAddress) to \(newAddress) re-encrypts its secrets, which are bound to their addresses, and no state key was given",
                                 help: "set ORGCTL_STATE_KEY (the key the database's secrets were written with) or pass --state-key-file")
            }
            for row in rows {
                // A value sealed with another state key cannot be opened; it stays as it is (unreadable
                // with this key before and after), and the plan already shows it as changed if declared.
                guard let value = try? key.open(row.ciphertext, address: "\(oldAddress)/\(segment)/\(row.name)", attribute: attribute) else { continue }
                let resealed = try key.seal(value, address: "\(newAddress)/\(segment)/\(row.name)", attribute: attribute)
                try change("UPDATE \(table) SET \(prefix)_ciphertext = ?1, \(prefix)_key_id = ?2 WHERE id = ?3", [.blob(resealed), .text(key.keyID), .integer(row.id)],
                           rows: 1, table: table, "re-encrypting the secrets of \(newAddress)")
            }
        }
    }

    func refreshDigest(_ stored: StoredResource) throws {
        try change("UPDATE orgctl_resources SET digest = ?1, address = ?2, applied = ?3 WHERE kind = ?4 AND row_id = ?5",
                   [.text(digester.digest(stored.resource, rowID: stored.rowID).description), .text(stored.address), .blob(AppliedValues.encode(stored.resource.attributes)),
                    .text(stored.resource.kind.rawValue), .integer(stored.rowID)], rows: 1, table: "orgctl_resources", "recording \(stored.address)")
    }

    func adopt(_ stored: StoredResource, auditSequence: Int64) throws {
        try recordApplied(stored.resource, rowID: stored.rowID, auditSequence: auditSequence)
    }

    private func recordApplied(_ resource: Resource, rowID: Int64, auditSequence: Int64) throws {
        // REPLACE also drops a stale row recorded under the same address (its row was deleted outside orgctl).
        let statement = try db.cached(
            "INSERT OR REPLACE INTO orgctl_resources (address, kind, row_id, digest, audit_seq, applied) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        try statement.run([.text(resource.address), .text(resource.kind.rawValue), .integer(rowID),
                           .text(digester.digest(resource, rowID: rowID).description), .integer(auditSequence), .blob(AppliedValues.encode(resource.attributes))])
        try expectChanges(1, table: "orgctl_resources", "recording \(resource.address)")
    }

    /// Runs one write of the apply and checks how many rows it changed (`sqlite3_changes`): any
    /// other count than `rows` means something other than orgctl acted on the row (a trigger, a
    /// rule, a row that is not where the plan saw it), and the whole apply rolls back.
    private func change(_ sql: String, _ values: [SQLiteValue], rows: Int, table: String, _ what: @autoclosure () -> String) throws {
        try db.cached(sql).run(values)
        try expectChanges(rows, table: table, what())
    }

    private func expectChanges(_ rows: Int, table: String, _ what: @autoclosure () -> String) throws {
        let changed = db.changes
        guard changed != rows else { return }
        throw StateError(.corrupt, "\(what()) changed \(changed) row\(changed == 1 ? "" : "s") of \(table) instead of \(rows): something other than orgctl acts on the state database's tables",
                         help: "look for triggers, views or rules on orgctl's tables (docs/state-schema.md, 'What the platform may write'), remove them, and plan again")
    }

    /// The number of items of a list value (0 for anything else).
    private static func count(_ value: Value) -> Int {
        if case .list(let items) = value { return items.count }
        return 0
    }

    /// Writes one attribute that does not live in a column of the kind's own table.
    private func write(_ attribute: Attribute, before: Value, kind: ResourceKind, map: TableMap, rowID: Int64, address: String,
                       secrets: [String: [UInt8]]) throws {
        let id = SQLiteValue.integer(rowID)
        let what = { "writing \(attribute.name) of \(address)" }  // built only when a write fails (hot path)
        switch map.storage(for: attribute.name) {
        case .side(let table, let column, let encoding)?:
            try change("INSERT INTO \(table) (tenant_id, \(column)) VALUES (?1, ?2) ON CONFLICT (tenant_id) DO UPDATE SET \(column) = excluded.\(column)",
                       [id, try encode(attribute.value, encoding)], rows: 1, table: table, what())
        case .quota(let name)?:
            let scope = SQLiteValue.text(map.quotaScope ?? "")
            switch attribute.value {
            case .null:
                try change("DELETE FROM quotas WHERE scope = ?1 AND scope_id = ?2 AND name = ?3", [scope, id, .text(name)],
                           rows: before.isNull ? 0 : 1, table: "quotas", what())
            default:
                let value: SQLiteValue
                switch attribute.value {
                case .int(let n): value = .integer(n)
                case .string("unlimited"): value = .null
                case .string(let text): value = ByteSize(parsing: text).map { .integer($0.bytes) } ?? .null
                default: value = .null
                }
                try change("INSERT OR REPLACE INTO quotas (scope, scope_id, name, value) VALUES (?1, ?2, ?3, ?4)", [scope, id, .text(name), value],
                           rows: 1, table: "quotas", what())
            }
        case .permissions?:
            try change("DELETE FROM role_permissions WHERE role_id = ?1", [id], rows: Self.count(before), table: "role_permissions", what())
            if case .list(let permissions) = attribute.value {
                for permission in permissions {
                    try change("INSERT INTO role_permissions (role_id, permission) VALUES (?1, ?2)", [id, .text(permission)],
                               rows: 1, table: "role_permissions", what())
                }
            }
        case .parentTeam?:
            var parent = SQLiteValue.null
            if case .string(let slug) = attribute.value {
                let tenant = String(Resource.collection(of: String(Resource.collection(of: address))))
                parent = .integer(try self.rowID(of: "\(tenant)/team/\(slug)"))
            }
            try change("UPDATE teams SET parent_id = ?1 WHERE id = ?2", [parent, id], rows: 1, table: "teams", what())
        case .secret(let prefix)?:
            var ciphertext = SQLiteValue.null, keyID = SQLiteValue.null, fingerprint = SQLiteValue.null
            if case .secret(let print) = attribute.value {
                guard let key = store.key else {
                    throw StateError(.missingKey, "a secret must be stored but no state key was given",
                                     help: "set ORGCTL_STATE_KEY (32 bytes, base64) or pass --state-key-file")
                }
                guard let plaintext = secrets[attribute.name] else {
                    throw StateError(.secret, "the value of secret '\(attribute.name)' of \(address) was not resolved",
                                     help: "report this as a bug")
                }
                ciphertext = .blob(try key.seal(plaintext, address: address, attribute: attribute.name))
                keyID = .text(key.keyID)
                fingerprint = .text(print)
            }
            try change("UPDATE \(map.table) SET \(prefix)_ciphertext = ?1, \(prefix)_key_id = ?2, \(prefix)_fingerprint = ?3 WHERE id = ?4",
                       [ciphertext, keyID, fingerprint, id], rows: 1, table: map.table, what())
        case .certificate?:
            var pem = SQLiteValue.null, digest = SQLiteValue.null
            if case .document(let sha256, let text) = attribute.value {
                pem = .text(text)
                digest = .text(sha256)
            }
            try change("UPDATE \(map.table) SET certificate_pem = ?1, certificate_sha256 = ?2 WHERE id = ?3", [pem, digest, id],
                       rows: 1, table: map.table, what())
        case .column?, nil:
            throw StateError(.other, "internal error: attribute '\(attribute.name)' of \(kind.rawValue) has no column", help: "report this as a bug")
        }
    }

    private func encode(_ value: Value, _ encoding: Storage.Encoding) throws -> SQLiteValue {
        switch (value, encoding) {
        case (.null, _): return .null
        case (.string(let text), .duration):
            return Duration(parsing: text).map { .integer($0.seconds) } ?? .null
        case (.string(let text), _): return .text(text)
        case (.int(let n), _): return .integer(n)
        case (.bool(let b), _): return .integer(b ? 1 : 0)
        case (.list(let items), _): return .text(ListColumn.encode(items))
        case (.secret, _), (.document, _):
            throw StateError(.other, "internal error: a secret or document value has no plain column", help: "report this as a bug")
        }
    }
}

/// What `stat` says of a file, to notice writes to it: a file that does not exist is all zeros.
/// The change time (`ctime`) cannot be set back by an unprivileged process.
struct FileStamp: Equatable {
    var device: UInt64 = 0
    var inode: UInt64 = 0
    var size: Int64 = 0
    var modified: timespec = timespec()
    var changed: timespec = timespec()

    init(path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
        size = Int64(status.st_size)
        modified = status.st_mtim
        changed = status.st_ctim
    }

    static func == (a: FileStamp, b: FileStamp) -> Bool {
        a.device == b.device && a.inode == b.inode && a.size == b.size
            && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
            && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
    }
}
