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

    @Test("the same on PostgreSQL")
    func heldBackRowsPostgres() throws {
        guard let server = TestPostgres.uri() else { return }
        let schema = "orgctl_held_" + UUID().uuidString.prefix(8).lowercased()
        defer { _ = try? TestPostgres.rows(server, "DROP SCHEMA IF EXISTS \(schema) CASCADE") }
        let key = try StateKey(raw: [UInt8](repeating: 7, count: 32))
        let store = try #require(try PostgresStateStore.open(conninfo: server, schema: schema, access: .readWrite, lockTimeoutMilliseconds: 1000,
                                                             key: key, applicationName: "orgctl-held-test"))
        try Self.heldBackRows(store, key: key)
    }

    @Test("SQLite's bulk insert writes every row once in multi-row statements, also past the size that grows the page cache, and sets the cache back")
    func sqliteBulkInsert() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        let columns = try #require(Layout.table("orgctl_subject_values")?.columns)
        let cache = try store.db.integer("PRAGMA cache_size")
        let per = SQLiteConnection.rowsPerInsert
        func row(_ subject: String, _ index: Int) -> [SQLValue] { [.text("\(subject)-\(index)"), .text(subject), .text("v\(index)")] }
        for count in [1, per - 1, per, 2 * per + 5, SQLiteConnection.rowsForLargeCache + 1] {
            let subject = "s\(count)"
            try store.inWriteTransaction("inserting") {
                try store.db.bulkInsert(table: "orgctl_subject_values", columns: columns, rows: (0..<count).map { row(subject, $0) })
            }
            #expect(try store.db.integer("SELECT count(*) FROM orgctl_subject_values WHERE subject = ?1", [.text(subject)]) == Int64(count))
            #expect(try store.db.integer("SELECT count(DISTINCT value) FROM orgctl_subject_values WHERE subject = ?1", [.text(subject)]) == Int64(count))
            #expect(try store.db.integer("SELECT max(CAST(substr(value, 2) AS INTEGER)) FROM orgctl_subject_values WHERE subject = ?1", [.text(subject)])
                    == Int64(count - 1))
        }
        #expect(try store.db.integer("PRAGMA cache_size") == cache)
        // A row that breaks a constraint (a token stored already) fails the insert, and its transaction writes nothing.
        let total = try store.db.integer("SELECT count(*) FROM orgctl_subject_values")
        #expect(throws: StateError.self) {
            try store.inWriteTransaction("inserting") {
                try store.db.bulkInsert(table: "orgctl_subject_values", columns: columns, rows: [row("new", 0)] + (0..<per).map { row("s1", $0) })
            }
        }
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subject_values") == total)
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

    @Test("new subject rows are written in the order of their ids' text")
    func rowOrder() {
        var generator = SystemRandomNumberGenerator()
        var keys = (0..<2_000).map { _ in (UInt64.random(in: 0...UInt64.max, using: &generator), UInt64.random(in: 0...UInt64.max, using: &generator)) }
        keys += [(keys[0].0, 0), (keys[0].0, UInt64.max), (0, 0), (UInt64.max, 1)]
        let texts = keys.map { key in withUnsafeBytes(of: (key.0.bigEndian, key.1.bigEndian)) { Hex.encode($0) } }
        #expect(SubjectTable.keyOrder(keys).map { texts[$0] } == texts.sorted())
    }
}

/// The SQLite file and its WAL, byte for byte.
enum HostileBytes {
    static func of(_ path: String) -> [Data] { [path, path + "-wal"].map { FileManager.default.contents(atPath: $0) ?? Data() } }
}
