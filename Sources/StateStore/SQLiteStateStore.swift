public import Audit
public import Spec
import Crypto
import Foundation

/// A state database, whichever engine holds it (``SQLiteStateStore``, ``PostgresStateStore``).
/// The Reconciler and the CLI work through this protocol only; ``StateStores/open(_:)`` picks
/// the backend from `--state`.
public protocol StateStore: AnyObject, PersonalDataStore {
    var databaseID: String { get }
    /// The database as messages name it: a file path, or a connection URI without its password.
    var location: String { get }
    /// True when the database holds platform tables written by something other than orgctl and
    /// has not been adopted yet.
    var isUnadopted: Bool { get }
    /// Reads every resource in one consistent snapshot.
    func read() throws(StateError) -> StoredState
    /// As ``read()``, then checks the audit chain's hashes and linkage in the same snapshot (what
    /// apply needs before it appends). `deliver` receives the state as soon as it is read, so the
    /// caller can plan while the chain is checked; `shouldStop` is asked every few thousand
    /// entries and ends the check early, with `.unchecked`, once the caller no longer needs it.
    func readCheckingChain(state deliver: (StoredState) -> Void, shouldStop: () -> Bool) throws(StateError) -> AuditChainCheck
    /// The state, and what orgctl last applied to every row that drifted or was deleted outside
    /// orgctl, read in one snapshot (for `orgctl drift`; plan needs only the digests).
    func readWithApplied() throws(StateError) -> (state: StoredState, applied: [String: AppliedResource])
    /// The platform-wide resources and those of the tenant with this slug, in one snapshot: what
    /// a question about one tenant needs (`orgctl access`), without reading every tenant's rows.
    func read(tenant slug: String) throws(StateError) -> StoredState
    /// Runs `body` inside one write transaction (the write lock is taken first, waiting up to the
    /// lock timeout); commits when it returns, rolls back when it throws.
    func write<T>(_ body: (any StateTransaction) throws -> T) throws -> T

    // The audit log.
    /// Streams the chain in sequence order through `visit`; stops early when it returns false.
    func forEachAuditRecord(from sequence: Int64, _ visit: (StoredAuditRecord) throws -> Bool) throws(StateError)
    /// Re-checks every entry's hash and linkage; nil when the chain is intact.
    func verifyAudit() throws(StateError) -> (count: Int64, head: [UInt8], firstBreak: ChainBreak?)
    /// The database's schema version.
    var schemaVersion: Int { get throws(StateError) }
    /// Whether the database is an orgctl database of an older schema than this orgctl writes
    /// (one `apply` migrates it; read-only commands read it as migrated).
    var hasOlderSchema: Bool { get throws(StateError) }
    /// Whether the database holds the stored Merkle tree.
    var hasAuditTree: Bool { get throws(StateError) }
    /// Runs `body` with the tree as it is stored, in one consistent read snapshot. Unchecked: what
    /// is reported or signed goes through `withVerifiedAuditTree`.
    func withAuditTree<T>(_ body: (MerkleTreeReader) throws -> T) throws(StateError) -> T
    /// Runs `body` with the stored tree and the verification of the entries (chain, roots at
    /// `sizes`, leaf hashes of `sequences`, every stored node against the entries), both from
    /// one consistent read snapshot.
    func withVerifiedAuditTree<T>(rootsAt sizes: Set<Int64>, leavesOf sequences: Set<Int64>,
                                  _ body: (MerkleTreeReader, AuditLogVerification) throws -> T) throws(StateError) -> T
    /// Streams every entry once: the chain, the Merkle root (and roots at `sizes`), every stored
    /// tree node against the entries. `eachEntry` is called once per entry (a progress count).
    func verifyAuditLog(rootsAt sizes: Set<Int64>, eachEntry: () -> Void) throws(StateError) -> AuditLogVerification
    /// The log's origin, as the first apply that named one stored it; nil when none did.
    var storedAuditOrigin: String? { get throws(StateError) }
    /// Stores `origin` as the log's origin unless one is stored already; returns the stored one.
    func recordAuditOrigin(_ origin: String) throws(StateError) -> String
    /// The webhook outbox of this state (docs/webhooks.md).
    var outbox: Outbox { get }
}

extension StateStore {
    public func forEachAuditRecord(_ visit: (StoredAuditRecord) throws -> Bool) throws(StateError) { try forEachAuditRecord(from: 1, visit) }
    public func verifyAuditLog(rootsAt sizes: Set<Int64> = []) throws(StateError) -> AuditLogVerification { try verifyAuditLog(rootsAt: sizes, eachEntry: {}) }
    public func withVerifiedAuditTree<T>(rootsAt sizes: Set<Int64> = [], _ body: (MerkleTreeReader, AuditLogVerification) throws -> T) throws(StateError) -> T {
        try withVerifiedAuditTree(rootsAt: sizes, leavesOf: [], body)
    }
}

/// How a command opens the state.
public enum StateAccessMode: Sendable { case readOnly, readWrite }

/// The writes of one apply. Every method keeps `orgctl_resources` (what orgctl last applied) in step.
public protocol StateTransaction {
    /// Looks up, in a few queries, the data subjects of the e-mail addresses in `texts` (the
    /// addresses of the changes about to be audited), so that auditing them reads nothing more.
    func prepareSubjects(naming texts: [String]) throws
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
    /// Records the governance policies applied (``StoredState/recordedPolicies``); nil removes the record.
    func recordPolicies(_ text: String?) throws
}

/// The SQLite implementation: one file, WAL mode, `synchronous=FULL`.
public final class SQLiteStateStore: SQLStore {
    public typealias Access = StateAccessMode

    let connection: SQLiteConnection
    var db: any SQLDatabase { connection }
    public var location: String { path }
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
    /// - Parameter defersMigration: for `.readWrite`, an older schema is migrated by the first write
    ///   (``inWriteTransaction(_:_:)``), in its transaction, not when opening: a write refused before
    ///   it commits (`privacy forget` of someone still in the state) leaves the file as it was.
    public static func open(path: String, access: Access, lockTimeoutMilliseconds: Int32, key: StateKey?,
                            readsOlderSchema: Bool = false, adopt: Bool = false, defersMigration: Bool = false) throws(StateError) -> SQLiteStateStore? {
        if !FileManager.default.fileExists(atPath: path) {
            if access == .readOnly { return nil }
            try create(path: path, lockTimeoutMilliseconds: lockTimeoutMilliseconds, key: key)
        }
        return try open(existing: path, access: access, lockTimeoutMilliseconds: lockTimeoutMilliseconds, key: key,
                        readsOlderSchema: readsOlderSchema, adopt: adopt, created: false, defersMigration: defersMigration)
    }

    /// Creates the database complete under a temporary name beside `path`, closes it, and links it
    /// into place (`link` never replaces a file). Created at `path` itself, the file was empty for a
    /// moment, and a concurrent first apply that opened it then was refused ("an empty file"), or
    /// held it so that the creator failed and left the empty file behind for good. Now `path` holds
    /// a whole database or nothing; when another apply linked one first, this one opens theirs.
    private static func create(path: String, lockTimeoutMilliseconds: Int32, key: StateKey?) throws(StateError) {
        let suffix = (try? SecureRandom.bytes(count: 8)).map { Hex.encode($0) } ?? String(getpid())
        let temporary = "\(path).orgctl-new-\(suffix)"
        defer { for extra in ["", "-wal", "-shm", "-journal"] { unlink(temporary + extra) } }
        // Created 0600 before SQLite opens it: the WAL and shared-memory files inherit its mode.
        let fd = Foundation.open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        if fd < 0 {
            let reason = String(cString: strerror(errno))
            throw StateError(.cantOpen, "cannot create the state database '\(path)': \(reason)",
                             help: "check that the folder exists and is writable, or choose another path with --state")
        }
        close(fd)
        let created = try open(existing: temporary, access: .readWrite, lockTimeoutMilliseconds: lockTimeoutMilliseconds, key: key,
                               readsOlderSchema: false, adopt: false, created: true)
        // Everything into the file itself before it is linked: the WAL keeps the temporary name.
        do {
            try created.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        } catch {
            throw StateError(error, path: path)
        }
        if link(temporary, path) != 0, errno != EEXIST {
            let reason = String(cString: strerror(errno))
            throw StateError(.cantOpen, "cannot create the state database '\(path)': \(reason)",
                             help: "check that the folder is writable and supports hard links, or choose another path with --state")
        }
    }

    private static func open(existing path: String, access: Access, lockTimeoutMilliseconds: Int32, key: StateKey?,
                             readsOlderSchema: Bool, adopt: Bool, created: Bool, defersMigration: Bool = false) throws(StateError) -> SQLiteStateStore {
        do {
            let db = try SQLiteConnection(path: path, mode: access == .readOnly ? .readOnly : .readWrite,
                                          busyTimeoutMilliseconds: lockTimeoutMilliseconds)
            return try SQLiteStateStore(db: db, path: path, key: key, access: access, readsOlderSchema: readsOlderSchema, adopt: adopt,
                                        created: created, defersMigration: defersMigration)
        } catch let error as SQLiteError {
            throw StateError(error, path: path)
        } catch let error as StateError {
            throw error
        } catch {
            throw StateError(.other, "cannot open '\(path)': \(error)", help: "check the path given by --state")
        }
    }

    private init(db: SQLiteConnection, path: String, key: StateKey?, access: Access, readsOlderSchema: Bool, adopt: Bool, created: Bool,
                 defersMigration: Bool) throws {
        self.connection = db
        self.path = path
        self.key = key
        self.databaseID = ""
        try prepare(access: access, readsOlderSchema: readsOlderSchema, adopt: adopt, created: created, defersMigration: defersMigration)
    }

    /// True when the database holds platform tables written by something other than orgctl and
    /// has not been adopted yet (it opened read-only with empty stand-ins for orgctl's tables).
    public private(set) var isUnadopted = false
    /// Read-only, a database older than schema 5 read as migrated: its digests are keyed on reading.
    private(set) var storedDigestsArePlain = false

    /// Opened read-write with `defersMigration` on an older schema: the next write transaction migrates it first.
    private var migratesOnWrite = false

    /// Whether the steps from `version` only create or drop tables: what the write reads runs after them in its
    /// transaction, and the chain check's second connection, which reads the last commit, finds the log and
    /// its tree as they will be. The steps that compute (the tree, keyed digests) or alter a table migrate on
    /// opening, as before.
    static func canDeferMigration(from version: Int) -> Bool {
        (max(version, 0)..<Schema.currentVersion).allSatisfy { step in
            step != Schema.merkleMigration && step != Schema.keyedDigestMigration && Schema.migrations[step].allSatisfy { statement in
                switch statement {
                // A rebuild keeps every row as it was: the write's reads run after it, in its transaction.
                case .createTable, .dropTable, .rebuildTable: true
                case .addColumn, .sql: false
                }
            }
        }
    }

    private func prepare(access: Access, readsOlderSchema: Bool, adopt: Bool, created: Bool, defersMigration: Bool) throws {
        // Reading the schema first also makes SQLite check the header: a non-database fails here.
        let version = Int(try integerPragma("user_version"))
        let applicationID = try integerPragma("application_id")
        let tableCount = try connection.prepare("SELECT count(*) FROM sqlite_master").all().first?.first
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
            try connection.execute("PRAGMA foreign_keys = ON")
            if access == .readOnly {
                // Empty stand-ins for orgctl's tables, in the connection's own temporary schema:
                // the file is not touched, and every row reads as never applied.
                try connection.execute(Schema.unadoptedStandIns)
                try shadow(missingColumns: missingColumns)
                isUnadopted = true
                return
            }
            guard adopt else {
                throw StateError(.notOrgctl, "'\(path)' holds platform tables that orgctl did not write, and has not been adopted",
                                 help: "to adopt it: 'orgctl export --state \(path) OUT', review OUT, then 'orgctl apply OUT --state \(path) --adopt'")
            }
            try connection.execute("PRAGMA journal_mode = WAL")
            try connection.execute("PRAGMA synchronous = FULL")
            try migrate(from: 0, fresh: true, adopting: true)
            databaseID = try metaValue("database_id") ?? ""
            return
        }
        if version > Schema.currentVersion {
            throw StateError(.newerSchema, "'\(path)' has schema version \(version), newer than this orgctl understands (\(Schema.currentVersion))",
                             help: "upgrade orgctl; an older orgctl never writes to a newer database")
        }
        if !isEmpty { try checkSchemaObjects(unadopted: false) }
        try connection.execute("PRAGMA foreign_keys = ON")
        // Before anything is written (a migration included): another key is refused.
        if !isEmpty { try checkKey() }
        if access == .readWrite {
            try connection.execute("PRAGMA journal_mode = WAL")
            try connection.execute("PRAGMA synchronous = FULL")
            // Deleted rows are overwritten with zeros, so a member removed by apply leaves no copy of the
            // address in free space for `privacy forget` to rebuild the file for (docs/audit-chain.md 8.5).
            try connection.execute("PRAGMA secure_delete = ON")
            if version < Schema.currentVersion {
                if defersMigration && !isEmpty && Self.canDeferMigration(from: version) {
                    migratesOnWrite = true
                } else {
                    try migrate(from: version, fresh: isEmpty)
                }
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
            try connection.execute("BEGIN IMMEDIATE")
            let tables = try? connection.prepare("SELECT count(*) FROM sqlite_master").all().first?.first
            try connection.execute("ROLLBACK")
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
                    try connection.execute("CREATE TEMP TABLE \(name) \(definition)")
                case .dropTable:
                    break  // nothing reads it any more
                case .rebuildTable:
                    break  // the same rows and columns: only constraints and indexes change
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
            try connection.execute("CREATE TEMP VIEW \(table) AS SELECT *, \(extra) FROM main.\(table)")
        }
    }

    /// What `statement` adds that the database already has ("column t.c", "table t"), or nil.
    private func alreadyPresent(_ statement: Schema.Statement) throws -> String? {
        let query: (sql: String, values: [SQLiteValue]), what: String
        switch statement {
        case .sql, .dropTable, .rebuildTable: return nil
        case .addColumn(let table, let column, _):
            query = ("SELECT count(*) FROM pragma_table_info(?1, 'main') WHERE name = ?2", [.text(table), .text(column)])
            what = "column \(table).\(column)"
        case .createTable(let name, _):
            query = ("SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name = ?1", [.text(name)])
            what = "table \(name)"
        }
        let count = try connection.prepare(query.sql)
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
        guard step > 0 else { return try connection.execute(Schema.orgctlTablesV1) }
        for statement in Schema.migrations[step] where try alreadyPresent(statement) == nil {
            try run(statement)
        }
    }

    /// Runs the migrations from the stored version; `adopting` creates only orgctl's own tables
    /// for version 0 (the platform tables are there already).
    private func migrate(from version: Int, fresh: Bool, adopting: Bool = false) throws {
        try connection.transaction(.immediate) { try migrateUnderLock(adopting: adopting) }
    }

    /// The migration steps from the stored version, in the caller's write transaction.
    private func migrateUnderLock(adopting: Bool = false) throws {
        do {
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
                        try run(statement)
                    }
                }
                // The tree over the entries already written, in the same transaction.
                if step == Schema.merkleMigration { try MerkleStorage(db: connection).backfill() }
                if step == Schema.keyedDigestMigration {
                    try refuseLoweredKeyedVersion(current)
                    try keyStoredDigests()
                }
            }
            if current == 0 {
                let id = Hex.encode(try SecureRandom.bytes(count: 16))
                let insert = try connection.prepare("INSERT INTO orgctl_meta (key, value) VALUES (?1, ?2)")
                try insert.run([.text("database_id"), .text(id)])
                try insert.run([.text("created_at"), .text(ISO8601DateFormatter().string(from: Date()))])
                if adopting { try insert.run([.text("adopted"), .text("true")]) }
            }
            try connection.execute("PRAGMA application_id = \(Schema.applicationID)")
            try connection.execute("PRAGMA user_version = \(Schema.currentVersion)")
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
        let own = try connection.prepare("SELECT count(*) FROM sqlite_master WHERE name LIKE 'orgctl\\_%' ESCAPE '\\'").all().first?.first
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
        let actual = try tables.map { try columns(connection, $0) }
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
        let encoding = try connection.pragma("encoding")
        guard encoding == .text("UTF-8") else {
            var shown = "unknown"
            if case .text(let name)? = encoding { shown = AddressSegment.encode(name) }
            throw StateError(.notOrgctl, "'\(path)' stores text as \(shown), not as UTF-8 as orgctl does",
                             help: "point --state (or ORGCTL_STATE) at an orgctl database (orgctl creates them in UTF-8)")
        }
        let own = TableMap.platformTables
        let names = own.map { "'\($0)'" }.joined(separator: ", ")
        let objects = try connection.prepare(
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
        let temporary = try connection.prepare("SELECT name FROM temp.sqlite_master WHERE type = 'trigger' ORDER BY name")
        if try temporary.step() {
            throw StateError(.corrupt, "the connection to '\(path)' has a temporary trigger '\(AddressSegment.encode(temporary.text(at: 0)))' that orgctl did not create",
                             help: "report this as a bug: no extension or setting of orgctl's should add triggers")
        }
        let required = own + (unadopted ? [] : ["orgctl_meta", "orgctl_resources", "orgctl_audit"])
        let tables = try connection.prepare("SELECT name FROM main.sqlite_master WHERE type = 'table'")
        var present: Set<String> = []
        while try tables.step() { present.insert(tables.text(at: 0)) }
        if let missing = required.first(where: { !present.contains($0) }) {
            throw StateError(.notOrgctl, "'\(path)' is not a complete orgctl state database: it has no table '\(missing)'",
                             help: "restore the database from a backup, or point --state (or ORGCTL_STATE) at another file")
        }
    }

    // MARK: The state key

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

    /// Schema 4 -> 5: every stored digest becomes its keyed form, computed from the stored digest
    /// alone (never from the rows, which may have been changed outside orgctl): drift stays drift.
    /// Records the key's check value and id.
    private func keyStoredDigests() throws {
        let count = try connection.prepare("SELECT count(*) FROM orgctl_resources").all().first?.first
        guard let key else {
            if count == .integer(0) { return }
            throw StateError(.missingKey, "'\(path)' must be migrated to schema \(Schema.currentVersion), which keys its row digests with the state key, and no state key was given",
                             help: "set ORGCTL_STATE_KEY (the key the database's secrets were written with) or pass --state-key-file")
        }
        let keying = DigestKeying(key)
        var rows: [(kind: String, rowID: Int64, digest: String)] = []
        let select = try connection.prepare("SELECT kind, row_id, digest FROM orgctl_resources")
        while try select.step() {
            // A digest that is not 64 hex digits (edited by hand) stays as it is: it matches no row.
            guard let plain = select.withText(at: 2, { Digest(hex: $0) }) else { continue }
            rows.append((select.text(at: 0), select.int(at: 1), keying.keyed(plain, rowID: select.int(at: 1)).description))
        }
        let update = try connection.prepare("UPDATE orgctl_resources SET digest = ?1 WHERE kind = ?2 AND row_id = ?3")
        for row in rows { try update.run([.text(row.digest), .text(row.kind), .integer(row.rowID)]) }
        try recordKey(key)
    }

    func integerPragma(_ name: String) throws -> Int64 {
        if case .integer(let value) = try connection.pragma(name) { return value }
        return 0
    }

    /// Whether the file has orgctl's `orgctl_meta` table (a database written before it, or another file, has not).
    private func hasMetaTable() throws -> Bool {
        try connection.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'orgctl_meta'").all().first?.first == .integer(1)
    }

    // MARK: Reading

    public func read() throws(StateError) -> StoredState {
        try storeCall("reading the state") {
            return try connection.transaction(.deferred) { () throws -> StoredState in
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
            return try connection.transaction(.deferred) { () throws -> AuditChainCheck in
                let files = fileStamps()
                let state = try readUnlocked()
                lastRead = (try integerPragma("data_version"), files)
                deliver(state)
                return try connection.checkAuditChain(shouldStop: shouldStop)
            }
        }
    }

    /// The state, and what orgctl last applied to every row that drifted or was deleted outside
    /// orgctl, read in one snapshot (for `orgctl drift`; plan needs only the digests).
    public func readWithApplied() throws(StateError) -> (state: StoredState, applied: [String: AppliedResource]) {
        try inSnapshot("reading the state") { try readWithAppliedUnlocked() }
    }

    public func read(tenant slug: String) throws(StateError) -> StoredState {
        try inSnapshot("reading the state") { try readUnlocked(tenant: slug) }
    }

    // MARK: Writing

    public func write<T>(_ body: (any StateTransaction) throws -> T) throws -> T {
        // Every row written records a keyed digest (see ResourceDigest).
        guard let key else {
            throw StateError(.missingKey, "writing the state needs the state key, which keys the row digests that tell changes made outside orgctl apart",
                             help: "set ORGCTL_STATE_KEY to 32 random bytes in base64 (openssl rand -base64 32) or pass --state-key-file; keep the key")
        }
        do {
            return try connection.transaction(.immediate) {
                // An older schema opened with `defersMigration`: migrated by this transaction, committed with its write.
                if migratesOnWrite { try migrateUnderLock() }
                // Again under the write lock: the schema may have changed since the database was opened.
                try checkSchemaObjects(unadopted: false)
                try recordKey(key)
                let transaction = SQLStateTransaction(TransactionContext(
                    db: db, key: key, databaseID: databaseID, changedSinceRead: { try self.changedSinceRead }, read: { try self.readLockedCheckingChain() }))
                return try body(transaction)
            }
        } catch let error as SQLiteError {
            throw StateError(error, path: path)
        }
    }

    /// Re-reads the state inside the write lock, with the audit chain checked alongside on a
    /// second, read-only connection: while this transaction holds the write lock nobody can
    /// commit, so that connection reads exactly this snapshot.
    private func readLockedCheckingChain() throws -> StoredState {
        let check = concurrentChainCheck(path: path)
        var state: StoredState
        do {
            state = try readUnlocked()
        } catch {
            check.stop()
            throw error
        }
        state.auditChain = check.result()
        return state
    }

    /// True when the database may differ from the last read: another connection committed, or the
    /// database or WAL file was written some other way (bytes written into the file directly,
    /// which `data_version` does not see).
    private var changedSinceRead: Bool {
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

    // MARK: The audit log (shared with every backend: SQL/SQLStore.swift)

    public func forEachAuditRecord(from sequence: Int64 = 1, _ visit: (StoredAuditRecord) throws -> Bool) throws(StateError) {
        try forEachAuditRecordShared(from: sequence, visit)
    }

    public func verifyAudit() throws(StateError) -> (count: Int64, head: [UInt8], firstBreak: ChainBreak?) { try verifyAuditShared() }

    /// The database's schema version (older databases can be read by `audit verify`, see `open`).
    public var schemaVersion: Int { get throws(StateError) { try storeCall("reading the schema version") { Int(try self.integerPragma("user_version")) } } }

    public var hasOlderSchema: Bool { get throws(StateError) { let version = try schemaVersion; return version >= 1 && version < Schema.currentVersion } }

    public var hasAuditTree: Bool { get throws(StateError) { try schemaVersion > Schema.merkleMigration } }

    public func withAuditTree<T>(_ body: (MerkleTreeReader) throws -> T) throws(StateError) -> T { try withAuditTreeShared(body) }

    public func withVerifiedAuditTree<T>(rootsAt sizes: Set<Int64> = [], leavesOf sequences: Set<Int64> = [],
                                         _ body: (MerkleTreeReader, AuditLogVerification) throws -> T) throws(StateError) -> T {
        try withVerifiedAuditTreeShared(rootsAt: sizes, leavesOf: sequences, checkingTree: try hasAuditTree, body)
    }

    public func verifyAuditLog(rootsAt sizes: Set<Int64> = [], eachEntry: () -> Void = {}) throws(StateError) -> AuditLogVerification {
        try verifyAuditLogShared(rootsAt: sizes, checkingTree: try hasAuditTree, eachEntry: eachEntry)
    }

    public var storedAuditOrigin: String? { get throws(StateError) { try storedAuditOriginShared() } }

    public func recordAuditOrigin(_ origin: String) throws(StateError) -> String { try recordAuditOriginShared(origin) }

    public var outbox: Outbox { Outbox(store: self) }

    // MARK: Transactions (SQLStore)

    func inSnapshot<T>(_ what: String, _ body: () throws -> T) throws(StateError) -> T {
        try storeCall(what) { try connection.transaction(.deferred, body) }
    }

    func inWriteTransaction<T>(_ what: String, _ body: () throws -> T) throws(StateError) -> T {
        try storeCall(what) {
            try connection.transaction(.immediate) {
                if migratesOnWrite { try migrateUnderLock() }
                return try body()
            }
        }
    }

    /// SQLite has one write lock: the outbox's transactions take it like any other.
    func inOutboxTransaction<T>(_ what: String, _ body: () throws -> T) throws(StateError) -> T {
        try inWriteTransaction(what, body)
    }

    func checkSchemaObjectsForWrite() throws { try checkSchemaObjects(unadopted: false) }
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
