import Audit
import Crypto
import Foundation
import Testing

@testable import StateStore

@Suite("data subjects (schema 7, audit entry format 2)")
struct SubjectTableTests {
    /// Format 1 entries as a database before schema 7 holds them: e-mail addresses in the hashed bytes.
    static func plainEntries(_ store: SQLiteStateStore, _ entries: [AuditEntry]) throws {
        var previous = AuditHash.genesis
        let insert = try store.connection.prepare("INSERT INTO orgctl_audit (seq, entry, prev_hash, hash) VALUES (?1, ?2, ?3, ?4)")
        for entry in entries {
            let record = StoredAuditRecord(entry: entry, previousHash: previous)
            try insert.run([.integer(record.sequence), .blob(record.entry), .blob(record.previousHash), .blob(record.hash)])
            previous = record.hash
        }
    }

    static func memberEntry(_ sequence: Int64, _ action: String, _ email: String) -> AuditEntry {
        AuditEntry(sequence: sequence, time: AuditTime.string(fromUnixSeconds: 1_767_225_600 + sequence * 60) ?? "", actor: "ci", source: "test", planID: "p", action: action,
                   address: "tenant/acme/member/\(email)", before: action == "create" ? nil : ["role": "member"],
                   after: action == "delete" ? nil : ["role": "member"])
    }

    @Test("the 6 -> 7 step adds the subject tables (and 7 -> 8 drops the entry index); entries already stored stay format 1 and keep verifying, new ones are format 2")
    func migration() throws {
        let temp = try TemporaryStore()
        do {
            let store = try temp.open()
            try Self.plainEntries(store, [Self.memberEntry(1, "create", "old@acme.com"), Self.memberEntry(2, "delete", "old@acme.com")])
            try store.connection.execute("DROP TABLE orgctl_subjects; DROP TABLE orgctl_subject_values; PRAGMA user_version = 6;")
        }
        // Read-only, the older database reads as migrated: empty stand-ins, entries as they are.
        let reader = try temp.open(.readOnly)
        #expect(try reader.hasOlderSchema)
        #expect(try reader.subjectResolver().resolve(Self.memberEntry(1, "create", "old@acme.com")).address == "tenant/acme/member/old@acme.com")
        let store = try temp.open()
        #expect(try store.connection.pragma("user_version") == .integer(Int64(Schema.currentVersion)))
        var tables: Set<String> = []
        try store.db.forEach("SELECT name FROM sqlite_master WHERE type = 'table'") { tables.insert($0.text(0)) }
        #expect(tables.isSuperset(of: ["orgctl_subjects", "orgctl_subject_values"]) && !tables.contains("orgctl_subject_entries"))
        try store.write { transaction in _ = try transaction.appendAudit { Self.memberEntry($0, "create", "old@acme.com") } }
        #expect(try store.verifyAudit().firstBreak == nil)
        var versions: [Int64] = []
        try store.forEachAuditRecord { record in
            versions.append(try AuditEntry(canonicalBytes: record.entry).version)
            return true
        }
        #expect(versions == [1, 1, 2])
        #expect(try store.firstPseudonymousSequence() == 3)
    }

    @Test("forget refuses a person named by format 1 entries, naming them, and writes nothing")
    func plainEntriesRefuse() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Self.plainEntries(store, [Self.memberEntry(1, "create", "old@acme.com"), Self.memberEntry(2, "create", "other@acme.com"),
                                      Self.memberEntry(3, "delete", "old@acme.com")])
        try store.write { transaction in _ = try transaction.appendAudit { Self.memberEntry($0, "delete", "other@acme.com") } }
        let before = HostileBytes.of(temp.path)
        #expect {
            _ = try store.forget(ErasureRequest(whom: .emails(["old@acme.com"]), actor: "dpo", source: "t", time: "2026-02-01T00:00:00Z"))
        } throws: { error in
            guard case .inPlainEntries("old@acme.com", let sequences) = error as? ErasureRefusal else { return false }
            return sequences == [1, 3]
        }
        #expect {
            _ = try store.forget(ErasureRequest(whom: .emails(["other@acme.com"]), actor: "dpo", source: "t", time: "2026-02-01T00:00:00Z"))
        } throws: { error in
            guard case .inPlainEntries("other@acme.com", let sequences) = error as? ErasureRefusal else { return false }
            return sequences == [2]
        }
        #expect(HostileBytes.of(temp.path) == before)
        // Retention leaves them, and counts them.
        let outcome = try store.forget(ErasureRequest(whom: .departedBefore("2026-12-31"), actor: "dpo", source: "t", time: "2026-02-01T00:00:00Z"))
        #expect(outcome.forgotten == 0 && outcome.keptInPlainEntries == 1)
    }

    @Test("one subject per address across transactions, also past the lookups after which the whole table is read")
    func oneSubjectPerAddress() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        let count = SubjectTable.lookupsBeforeLoadingAll + 50
        let emails = (0..<count).map { "user\($0)@acme.com" }
        try store.write { transaction in
            for email in emails { _ = try transaction.appendAudit { Self.memberEntry($0, "create", email) } }
        }
        try store.write { transaction in
            for email in emails.reversed() + ["new@acme.com"] { _ = try transaction.appendAudit { Self.memberEntry($0, "delete", email) } }
        }
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subjects") == Int64(count + 1))
        // Each person's two entries are found by their token (the new address, named once, by one).
        var subjects: [String] = []
        try store.db.forEach("SELECT id FROM orgctl_subjects") { subjects.append($0.text(0)) }
        let tokens = subjects.map { Array(PersonalData.token(.subject, $0).utf8) }
        let found = try tokens.map { try store.entries(holdingAny: [$0], from: 1).count }
        #expect(found.filter { $0 == 2 }.count == count && found.filter { $0 == 1 }.count == 1)
        // All of them at once, in more than one statement: every entry once, by sequence.
        #expect(tokens.count > SQLiteStateStore.needlesPerScan)
        #expect(try store.entries(holdingAny: tokens, from: 1).map(\.sequence) == Array(1...Int64(2 * count + 1)))
        // Read and looked up here instead of by the database: the same entries.
        #expect(try store.entries(namingAnyOf: Set(subjects), from: 1).map(\.sequence) == Array(1...Int64(2 * count + 1)))
        #expect(try store.entries(namingAnyOf: [subjects[0]], from: 1).count == found[0])
        let resolver = try store.subjectResolver()
        var addresses: [String] = []
        try store.forEachAuditRecord { record in
            addresses.append(resolver.resolve(try AuditEntry(canonicalBytes: record.entry)).address)
            return true
        }
        #expect(addresses == (emails + emails.reversed() + ["new@acme.com"]).map { "tenant/acme/member/\($0)" })
    }

    /// A writer of its own (as rekey and forget are): an entry appended in a write transaction that
    /// the writer ends without any call for the subject rows, then one that rolls back.
    static func heldBackRows(_ store: any SQLStore, key: StateKey) throws {
        func entry(_ sequence: Int64, _ email: String) -> AuditEntry {
            AuditEntry(sequence: sequence, time: "2026-01-01T00:00:00Z", actor: "dpo@acme.com", source: "a ticket of \(email)", planID: "p",
                       action: "create", address: "tenant/acme/member/\(email)", before: nil, after: ["role": "guest", "expires": "2026-03-01"])
        }
        func append(_ email: String) throws {
            let transaction = SQLStateTransaction(TransactionContext(db: store.db, key: key, databaseID: store.databaseID, changedSinceRead: { true },
                                                                     read: { try store.readUnlocked() }))
            _ = try transaction.appendAudit { entry($0, email) }
        }
        try store.inWriteTransaction("writing") { try append("alice@acme.com") }
        struct Refused: Error {}
        #expect(throws: StateError.self) {
            try store.inWriteTransaction("writing") {
                try append("bob@acme.com")
                throw Refused()
            }
        }
        // A later transaction writes nothing the rolled-back one held back.
        try store.inWriteTransaction("writing") {}
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subjects") == 2)
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subject_values") == 1)
        let resolver = try store.subjectResolver()
        var entries: [AuditEntry] = []
        try store.forEachAuditRecord { record in
            entries.append(try AuditEntry(canonicalBytes: record.entry))
            return true
        }
        #expect(entries.count == 1)
        let resolved = resolver.resolve(entries[0])
        #expect(resolved.actor == "dpo@acme.com" && resolved.address == "tenant/acme/member/alice@acme.com")
        #expect(resolved.source == "a ticket of alice@acme.com" && resolved.after == ["expires": "2026-03-01", "role": "guest"])
    }

    @Test("a writer that makes no call for them still gets the subject rows its entries need: the write transaction writes them before COMMIT, and drops them on ROLLBACK (SQLite)")
    func heldBackRowsSQLite() throws {
        let temp = try TemporaryStore()
        try Self.heldBackRows(try temp.open(), key: temp.key)
    }

    /// `body` given a PostgreSQL store in a schema of its own (named from `name`), dropped after; nothing without a server.
    static func withPostgresStore(_ name: String, _ body: (PostgresStateStore, StateKey) throws -> Void) throws {
        guard let server = TestPostgres.uri() else { return }
        let schema = "orgctl_\(name)_" + UUID().uuidString.prefix(8).lowercased()
        defer { _ = try? TestPostgres.rows(server, "DROP SCHEMA IF EXISTS \(schema) CASCADE") }
        let key = try StateKey(raw: [UInt8](repeating: 7, count: 32))
        let store = try #require(try PostgresStateStore.open(conninfo: server, schema: schema, access: .readWrite, lockTimeoutMilliseconds: 1000,
                                                             key: key, applicationName: "orgctl-\(name)-test"))
        try body(store, key)
    }

    @Test("the same on PostgreSQL")
    func heldBackRowsPostgres() throws {
        try Self.withPostgresStore("held") { store, key in try Self.heldBackRows(store, key: key) }
    }

    /// `rows` into `orgctl_subject_values` with `store`'s bulk insert, of values (`bytes` false) or of bytes (true).
    static func bulkInsert(_ db: any SQLDatabase, _ rows: [[SQLValue]], bytes: Bool) throws {
        let columns = try #require(Layout.table("orgctl_subject_values")?.columns)
        guard bytes else { return try db.bulkInsert(table: "orgctl_subject_values", columns: columns, rows: rows) }
        try db.bulkInsertText(table: "orgctl_subject_values", columns: columns, count: rows.count) { index, value in
            for case .text(var text) in rows[index] { try text.withUTF8 { try value(UnsafeRawBufferPointer($0)) } }
        }
    }

    /// Every row of `orgctl_subject_values` of `subject`, as text, by token.
    static func subjectValues(_ db: any SQLDatabase, _ subject: String) throws -> [[String]] {
        var rows: [[String]] = []
        try db.forEach("SELECT token, subject, value FROM orgctl_subject_values WHERE subject = ?1 ORDER BY token", [.text(subject)]) {
            rows.append([$0.text(0), $0.text(1), $0.text(2)])
        }
        return rows
    }

    @Test("SQLite's bulk inserts (of values, and of bytes) write every row once and as given in multi-row statements, also past the size that grows the page cache, and set the cache back",
          arguments: [false, true])
    func sqliteBulkInsert(bytes: Bool) throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        let cache = try store.db.integer("PRAGMA cache_size")
        let per = SQLiteConnection.rowsPerInsert
        // An empty value (bound as text, not NULL), one past ASCII, and one with a NUL byte.
        func row(_ subject: String, _ index: Int) -> [SQLValue] {
            [.text("\(subject)-\(index)"), .text(subject), .text(["", "été ✓", "a\u{0}b"].indices.contains(index) ? ["", "été ✓", "a\u{0}b"][index] : "v\(index)")]
        }
        for count in [1, 3, per - 1, per, 2 * per + 5, SQLiteConnection.rowsForLargeCache + 1] {
            let subject = "s\(count)"
            let rows = (0..<count).map { row(subject, $0) }
            try store.inWriteTransaction("inserting") { try Self.bulkInsert(store.db, rows, bytes: bytes) }
            #expect(try Self.subjectValues(store.db, subject) == rows.map { $0.map { if case .text(let text) = $0 { text } else { "" } } }.sorted { $0[0] < $1[0] })
            #expect(try store.db.integer("SELECT count(*) FROM orgctl_subject_values WHERE subject = ?1 AND value IS NULL", [.text(subject)]) == 0)
        }
        #expect(try store.db.integer("PRAGMA cache_size") == cache)
        // A row that breaks a constraint (a token stored already) fails the insert, and its transaction writes nothing.
        let total = try store.db.integer("SELECT count(*) FROM orgctl_subject_values")
        #expect(throws: StateError.self) {
            try store.inWriteTransaction("inserting") { try Self.bulkInsert(store.db, [row("new", 0)] + (0..<per).map { row("s1", $0) }, bytes: bytes) }
        }
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subject_values") == total)
    }

    @Test("PostgreSQL's bulk insert of bytes writes every row once and as given")
    func postgresBulkInsertText() throws {
        try Self.withPostgresStore("bulk") { store, _ in
            let rows: [[SQLValue]] = (0..<300).map { [.text("t\($0)"), .text("s"), .text($0 == 0 ? "" : $0 == 1 ? "été ✓" : "v\($0)")] }
            try store.inWriteTransaction("inserting") { try Self.bulkInsert(store.db, rows, bytes: true) }
            #expect(try Self.subjectValues(store.db, "s") == rows.map { $0.map { if case .text(let text) = $0 { text } else { "" } } }.sorted { $0[0] < $1[0] })
        }
    }

    @Test("a subject id is random: the same address in two databases gets two ids, and neither is derived from it")
    func randomIDs() throws {
        var ids: [String] = []
        for _ in 0..<2 {
            let temp = try TemporaryStore()
            let store = try temp.open()
            try store.write { transaction in _ = try transaction.appendAudit { Self.memberEntry($0, "create", "alice@acme.com") } }
            ids.append(try #require(try store.db.first("SELECT id FROM orgctl_subjects") { $0.text(0) }))
        }
        #expect(ids[0] != ids[1])
        for id in ids {
            #expect(PersonalData.isTokenID(Array(id.utf8)))
            #expect(id != String(Hex.encode(SHA256.hash(Array("alice@acme.com".utf8))).prefix(32)))
        }
    }

    @Test("a stored subject whose id is not 32 lowercase hex digits is refused with the table named, whether looked up alone or with the whole table; nothing is written",
          arguments: [1, SubjectTable.lookupsBeforeLoadingAll + 1])
    func malformedStoredID(lookups: Int) throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        let emails = (0..<lookups).map { "user\($0)@acme.com" }
        try store.write { transaction in
            for email in emails { _ = try transaction.appendAudit { Self.memberEntry($0, "create", email) } }
        }
        // Upper case: the same number, but a token has one spelling.
        try store.db.run("UPDATE orgctl_subjects SET id = upper(id) WHERE email = ?1", [.text(emails[0])])
        let entries = try store.db.integer("SELECT count(*) FROM orgctl_audit")
        let subjects = try store.db.integer("SELECT count(*) FROM orgctl_subjects")
        let error = #expect(throws: StateError.self) {
            try store.write { transaction in
                try transaction.prepareSubjects(naming: emails.map { "tenant/acme/member/\($0)" })
                for email in emails { _ = try transaction.appendAudit { Self.memberEntry($0, "delete", email) } }
            }
        }
        #expect(error?.message == "orgctl_subjects holds a subject id that is not 32 lowercase hex digits")
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_audit") == entries)
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subjects") == subjects)
    }

    @Test("subject ids order as their text does, and read back from it (32 lowercase hex digits only)")
    func subjectIDs() {
        var generator = SystemRandomNumberGenerator()
        var ids = (0..<2_000).map { _ in SubjectID(high: .random(in: 0...UInt64.max, using: &generator), low: .random(in: 0...UInt64.max, using: &generator)) }
        ids += [SubjectID(high: ids[0].high, low: 0), SubjectID(high: ids[0].high, low: .max), SubjectID(high: 0, low: 0), SubjectID(high: .max, low: 1)]
        #expect(ids.sorted().map(\.hex) == ids.map(\.hex).sorted())
        for id in ids {
            #expect(SubjectID(hex: id.hex) == id)
            #expect(id.hex == withUnsafeBytes(of: (id.high.bigEndian, id.low.bigEndian)) { Hex.encode($0) })
            #expect(SubjectID(bytes: [0x5a] + withUnsafeBytes(of: (id.high.bigEndian, id.low.bigEndian)) { Array($0) }, at: 1) == id)
        }
        for text in ["", "0", String(repeating: "0", count: 31), String(repeating: "0", count: 33), String(repeating: "A", count: 32),
                     String(repeating: "g", count: 32), String(repeating: "0", count: 31) + "é"] {
            #expect(SubjectID(hex: text) == nil)
        }
    }
}

/// The SQLite file and its WAL, byte for byte.
enum HostileBytes {
    static func of(_ path: String) -> [Data] { [path, path + "-wal"].map { FileManager.default.contents(atPath: $0) ?? Data() } }
}
