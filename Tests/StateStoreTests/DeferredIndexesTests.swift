import Audit
import Foundation
import Testing

@testable import StateStore

/// The e-mail index of `orgctl_subjects` (schema 9), deferred around a large insert into the empty table
/// (SQLite/DeferredIndexes.swift), and the 8 -> 9 step that made it a named index.
@Suite("SQLite: the subjects' e-mail index, deferred and migrated")
struct DeferredIndexesTests {
    static let index = "orgctl_subjects_email"

    static func subjects(_ count: Int, from first: Int = 0) -> [[SQLValue]] {
        (first..<(first + count)).map { [.text(String(format: "%032x", $0)), .text("person\($0)@example.com")] }
    }

    static func insert(_ store: SQLiteStateStore, _ rows: [[SQLValue]], declaring declared: Int? = nil, _ during: () throws -> Void = {}) throws {
        let columns = try #require(Layout.table("orgctl_subjects")?.columns)
        try store.inWriteTransaction("inserting subjects") {
            try store.db.deferringIndexes(of: "orgctl_subjects", rows: declared ?? rows.count) {
                try store.db.bulkInsert(table: "orgctl_subjects", columns: columns, rows: rows)
                try during()
            }
        }
    }

    /// What a reader can tell of the table: its schema objects' SQL, its indexes, their columns, and its rows.
    static func picture(_ store: SQLiteStateStore) throws -> [String] {
        var lines: [String] = []
        try store.db.forEach("SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master WHERE tbl_name = 'orgctl_subjects' ORDER BY type, name") {
            lines.append("\($0.text(0)) \($0.text(1)) \($0.text(2)) \($0.text(3))")
        }
        try store.db.forEach("SELECT name, \"unique\", origin, partial FROM pragma_index_list('orgctl_subjects') ORDER BY name") {
            lines.append("index_list \($0.text(0)) \($0.int(1)) \($0.text(2)) \($0.int(3))")
        }
        try store.db.forEach("SELECT seqno, name FROM pragma_index_info('\(index)') ORDER BY seqno") { lines.append("index_info \($0.int(0)) \($0.text(1))") }
        try store.db.forEach("SELECT id, email FROM orgctl_subjects ORDER BY id") { lines.append("row \($0.text(0)) \($0.text(1))") }
        return lines
    }

    /// Whether the connection `db` finds the index in the schema it reads.
    static func hasIndex(_ db: any SQLDatabase) throws -> Bool {
        try db.integer("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?1 AND tbl_name = 'orgctl_subjects'", [.text(index)]) == 1
    }

    @Test("a large insert into the empty table builds the index after the rows; the table and index are those of a row-by-row insert, and the index is used")
    func sameAsRowByRow() throws {
        let rows = Self.subjects(DeferredIndexes.minimumRows + 37)
        let (deferredTemp, plainTemp) = (try TemporaryStore(), try TemporaryStore())
        let (deferred, plain) = (try deferredTemp.open(), try plainTemp.open())
        var seenDuring: [Bool] = []
        try Self.insert(deferred, rows) { seenDuring.append(try Self.hasIndex(deferred.db)) }
        // One row fewer than the threshold is declared: the same rows, inserted with the index in place.
        try Self.insert(plain, rows, declaring: DeferredIndexes.minimumRows - 1) { seenDuring.append(try Self.hasIndex(plain.db)) }
        #expect(seenDuring == [false, true], "the deferred insert ran without the index, the other with it")
        let picture = try Self.picture(deferred)
        #expect(picture == (try Self.picture(plain)))
        #expect(picture.contains("index \(Self.index) orgctl_subjects CREATE UNIQUE INDEX orgctl_subjects_email ON orgctl_subjects (email)"), "\(picture.prefix(4))")
        #expect(picture.contains("index_list \(Self.index) 1 c 0"))
        #expect(try deferred.db.first("PRAGMA integrity_check", [], { $0.text(0) }) == "ok")
        var plan: [String] = []
        try deferred.db.forEach("EXPLAIN QUERY PLAN SELECT id FROM orgctl_subjects WHERE email = 'person5@example.com'") { plan.append($0.text(3)) }
        #expect(plan.joined().contains(Self.index), "\(plan)")
        // Uniqueness holds after the deferred build: a second subject of an address stored is refused.
        #expect(throws: StateError.self) { try Self.insert(deferred, [[.text("f0"), .text("person5@example.com")]]) }
    }

    @Test("a deferred insert large enough for the large page cache builds the index with it and sets the cache back")
    func largeCache() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        let cache = try store.db.integer("PRAGMA cache_size")
        var during: [Int64] = []
        // Rows inserted one by one (not by `bulkInsert`, which has the large cache of its own): the cache is the deferral's.
        try store.inWriteTransaction("inserting subjects") {
            try store.db.deferringIndexes(of: "orgctl_subjects", rows: SQLiteConnection.rowsForLargeCache) {
                for row in Self.subjects(SQLiteConnection.rowsForLargeCache) { try store.db.run("INSERT INTO orgctl_subjects (id, email) VALUES (?1, ?2)", row) }
                during.append(try store.db.integer("PRAGMA cache_size"))
                during.append(try Self.hasIndex(store.db) ? 1 : 0)
            }
        }
        #expect(during == [-SQLiteConnection.largeCacheKiB, 0])
        #expect(try store.db.integer("PRAGMA cache_size") == cache)
        #expect(try Self.hasIndex(store.db))
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subjects") == Int64(SQLiteConnection.rowsForLargeCache))
    }

    @Test("no deferral below the threshold or into a table that has rows: the index stays in place during the insert")
    func onlyLargeInsertsIntoAnEmptyTable() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        var seen: [Bool] = []
        try Self.insert(store, Self.subjects(10)) { seen.append(try Self.hasIndex(store.db)) }
        try Self.insert(store, Self.subjects(DeferredIndexes.minimumRows, from: 10)) { seen.append(try Self.hasIndex(store.db)) }
        #expect(seen == [true, true])
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subjects") == Int64(DeferredIndexes.minimumRows + 10))
    }

    @Test("another connection reading the file during the deferred insert sees the last commit with its index, and after the commit the rows with the index")
    func otherConnectionsNeverSeeTheTableWithoutItsIndex() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        let rows = Self.subjects(DeferredIndexes.minimumRows)
        let reader = try SQLiteConnection(path: temp.path, mode: .readOnly, busyTimeoutMilliseconds: 1_000)
        var during: (index: Bool, rows: Int64, writerIndex: Bool)?
        try Self.insert(store, rows) {
            during = (try Self.hasIndex(reader), try reader.integer("SELECT count(*) FROM orgctl_subjects"), try Self.hasIndex(store.db))
        }
        #expect(during?.index == true && during?.rows == 0, "the reader saw \(String(describing: during))")
        #expect(during?.writerIndex == false, "the insert was not deferred")
        #expect(try Self.hasIndex(reader))
        #expect(try reader.integer("SELECT count(*) FROM orgctl_subjects") == Int64(rows.count))
        #expect(try reader.integer("SELECT count(*) FROM orgctl_subjects INDEXED BY orgctl_subjects_email WHERE email = 'person7@example.com'") == 1)
    }

    @Test("a failure between the drop and the rebuild leaves the database exactly as before, and the caller's transaction has the index back")
    func failureLeavesTheDatabaseAsItWas() throws {
        struct Injected: Error {}
        let temp = try TemporaryStore()
        let store = try temp.open()
        let before = try Self.picture(store)
        let columns = try #require(Layout.table("orgctl_subjects")?.columns)
        var insideAfterFailure: Bool?
        #expect(throws: StateError.self) {
            try store.inWriteTransaction("inserting subjects") {
                do {
                    try store.db.deferringIndexes(of: "orgctl_subjects", rows: DeferredIndexes.minimumRows) {
                        try store.db.bulkInsert(table: "orgctl_subjects", columns: columns, rows: Self.subjects(DeferredIndexes.minimumRows))
                        throw Injected()
                    }
                } catch is Injected {
                    // Still in the transaction: the savepoint already undid the drop and the rows.
                    insideAfterFailure = try Self.hasIndex(store.db) && store.db.integer("SELECT count(*) FROM orgctl_subjects") == 0
                    throw StateError(.other, "injected", help: "")
                }
            }
        }
        #expect(insideAfterFailure == true)
        #expect(try Self.picture(store) == before)
        #expect(try store.db.first("PRAGMA integrity_check", [], { $0.text(0) }) == "ok")
    }

    @Test("two rows of one address in a deferred insert fail when the unique index is made again, as a state error; nothing is written")
    func duplicateAddressFailsAtTheRebuild() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        let before = try Self.picture(store)
        var rows = Self.subjects(DeferredIndexes.minimumRows)
        rows.append([.text("ff"), .text("person3@example.com")])
        let error = try #require(throws: StateError.self) { try Self.insert(store, rows) }
        #expect(error.message.contains("break its unique index orgctl_subjects_email"), "\(error.message)")
        #expect(error.message.contains("nothing was written"), "\(error.message)")
        #expect(try Self.picture(store) == before)
    }

    /// Replaces the SQL that `sqlite_master` holds for `name` (as anyone who can write the file can, with
    /// `PRAGMA writable_schema`), in a file that also has a table `victim` with one row.
    static func tamperIndexSQL(_ path: String, _ name: String, _ sql: String) throws {
        let setup = try SQLiteConnection(path: path, mode: .readWrite, busyTimeoutMilliseconds: 1_000)
        try setup.execute("CREATE TABLE victim (x); INSERT INTO victim VALUES (1);")
        try setup.execute("PRAGMA writable_schema = ON")
        let update = try setup.prepare("UPDATE sqlite_master SET sql = ?1 WHERE type = 'index' AND name = ?2")
        try update.run([.text(sql), .text(name)])
        try setup.execute("PRAGMA writable_schema = OFF")
    }

    @Test("the index SQL stored in sqlite_master is never run: one carrying a second statement, or defining another index, is left in place and kept row by row",
          arguments: ["CREATE UNIQUE INDEX orgctl_subjects_email ON orgctl_subjects (email); DELETE FROM victim",
                      "CREATE INDEX orgctl_subjects_email ON orgctl_subjects (email, id)"])
    func storedIndexSQLIsNeverRun(stored: String) throws {
        let temp = try TemporaryStore()
        _ = try temp.open()
        try Self.tamperIndexSQL(temp.path, Self.index, stored)
        let store = try temp.open()
        #expect(try store.db.first("PRAGMA integrity_check", [], { $0.text(0) }) == "ok", "SQLite loads such a schema as it is")
        var seen: [Bool] = []
        try Self.insert(store, Self.subjects(DeferredIndexes.minimumRows + 1)) { seen.append(try Self.hasIndex(store.db)) }
        #expect(seen == [true], "an index not exactly orgctl's is not dropped")
        #expect(try store.db.integer("SELECT count(*) FROM victim") == 1, "the stored SQL's second statement ran")
        #expect(try store.db.first("SELECT sql FROM sqlite_master WHERE name = ?1", [.text(Self.index)], { $0.text(0) }) == stored)
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subjects") == Int64(DeferredIndexes.minimumRows + 1))
    }

    @Test("a table whose index was dropped by someone gets no index from a large insert, and its rows are inserted")
    func droppedIndexIsNotMade() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try store.connection.execute("DROP INDEX \(Self.index)")
        try Self.insert(store, Self.subjects(DeferredIndexes.minimumRows))
        #expect(try !Self.hasIndex(store.db))
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subjects") == Int64(DeferredIndexes.minimumRows))
    }

    // MARK: Schema 8 -> 9

    /// A schema 8 database as the release before 9 made it: `orgctl_subjects` with its inline UNIQUE (step
    /// 6 -> 7's SQL), with `count` subjects.
    static func schema8(_ temp: TemporaryStore, subjects count: Int) throws {
        let store = try temp.open()
        let definition = try #require(SubjectTable.tables.first { $0.name == "orgctl_subjects" }?.definition)
        try store.connection.execute("DROP TABLE orgctl_subjects; CREATE TABLE orgctl_subjects \(definition); PRAGMA user_version = 8;")
        let insert = try store.connection.prepare("INSERT INTO orgctl_subjects (id, email) VALUES (?1, ?2)")
        for row in subjects(count) {
            guard case .text(let id) = row[0], case .text(let email) = row[1] else { continue }
            try insert.run([.text(id), .text(email)])
        }
    }

    /// A schema 8 file with `count` subjects, and a connection of the user's to it.
    static func schema8(subjects count: Int) throws -> (TemporaryStore, SQLiteConnection) {
        let temp = try TemporaryStore()
        try schema8(temp, subjects: count)
        return (temp, try SQLiteConnection(path: temp.path, mode: .readWrite, busyTimeoutMilliseconds: 1_000))
    }

    @Test("migrating a schema 8 file keeps every subject, makes the named unique index, and an address stored is still refused")
    func migrationKeepsRowsAndUniqueness() throws {
        let temp = try TemporaryStore()
        try Self.schema8(temp, subjects: 300)
        do {
            // Read-only, the schema 8 file reads as it is (the same rows), without being written.
            let reader = try temp.open(.readOnly)
            #expect(try reader.hasOlderSchema)
            #expect(try reader.db.integer("SELECT count(*) FROM orgctl_subjects") == 300)
        }
        let store = try temp.open()
        #expect(try store.connection.pragma("user_version") == .integer(Int64(Schema.currentVersion)))
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subjects") == 300)
        #expect(try store.db.first("SELECT email FROM orgctl_subjects WHERE id = ?1", [.text(String(format: "%032x", 299))], { $0.text(0) })
                == "person299@example.com")
        #expect(try Self.hasIndex(store.db))
        #expect(try store.db.integer("SELECT count(*) FROM pragma_index_list('orgctl_subjects') WHERE origin = 'u'") == 0, "the inline constraint is gone")
        #expect(try store.db.integer("SELECT count(*) FROM sqlite_master WHERE name LIKE '%before_rebuild%'") == 0)
        #expect(try store.db.first("SELECT sql FROM sqlite_master WHERE name = 'orgctl_subjects'", [], { $0.text(0) })?.hasPrefix("CREATE TABLE orgctl_subjects (") == true)
        #expect(throws: StateError.self) { try Self.insert(store, [[.text("f0"), .text("person5@example.com")]]) }
        // The migrated file's table and index are a new file's.
        let newTemp = try TemporaryStore()
        let new = try newTemp.open()
        #expect(try Self.picture(store).filter { !$0.hasPrefix("row ") } == (try Self.picture(new)))
    }

    @Test("a view of the user's that reads orgctl_subjects blocks the rebuild: refused by name with the DROP to run, the file left as it was; an index of the user's is kept")
    func viewBlocksTheRebuild() throws {
        let (temp, setup) = try Self.schema8(subjects: 3)
        try setup.execute("CREATE VIEW people AS SELECT email FROM Orgctl_Subjects; CREATE INDEX my_subject_ids ON orgctl_subjects (id, email);")
        func schema() throws -> [String] {
            var lines = ["user_version \(try setup.integer("PRAGMA user_version"))"]
            try setup.forEach("SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name") { lines.append("\($0.text(0)) \($0.text(1)) \($0.text(2))") }
            try setup.forEach("SELECT id, email FROM orgctl_subjects ORDER BY id") { lines.append("row \($0.text(0)) \($0.text(1))") }
            return lines
        }
        let before = try schema()
        let error = try #require(throws: StateError.self) { _ = try temp.open() }
        #expect(error.message.contains("has a view 'people' that reads orgctl's table orgctl_subjects"), "\(error.message)")
        #expect(error.message.contains("nothing was migrated"), "\(error.message)")
        #expect(error.help.contains("DROP VIEW \"people\""), "\(error.help)")
        #expect(try schema() == before)
        #expect(try setup.integer("PRAGMA user_version") == 8)
        // Dropped, the migration runs and makes the user's index again on the new table.
        try setup.execute("DROP VIEW people")
        let store = try temp.open()
        #expect(try store.db.integer("SELECT count(*) FROM orgctl_subjects") == 3)
        #expect(try store.db.first("SELECT sql FROM sqlite_master WHERE name = 'my_subject_ids'", [], { $0.text(0) })
                == "CREATE INDEX my_subject_ids ON orgctl_subjects (id, email)")
    }

    @Test("a table of the user's whose foreign key references orgctl_subjects blocks the rebuild (the rename would point the key at the old table, whose drop deletes the rows that cascade): refused by name, the file left as it was")
    func foreignKeyBlocksTheRebuild() throws {
        let (temp, setup) = try Self.schema8(subjects: 3)
        try setup.execute("""
            CREATE TABLE notes (subject TEXT REFERENCES Orgctl_Subjects (id) ON DELETE CASCADE, note TEXT);
            INSERT INTO notes VALUES ('\(String(format: "%032x", 1))', 'kept');
            """)
        let before = try setup.first("SELECT sql FROM sqlite_master WHERE name = 'notes'", [], { $0.text(0) })
        let error = try #require(throws: StateError.self) { _ = try temp.open() }
        #expect(error.message.contains("has a table 'notes' whose foreign key references orgctl's table orgctl_subjects"), "\(error.message)")
        #expect(error.message.contains("nothing was migrated"), "\(error.message)")
        #expect(try setup.integer("PRAGMA user_version") == 8)
        #expect(try setup.integer("SELECT count(*) FROM notes") == 1)
        #expect(try setup.first("SELECT sql FROM sqlite_master WHERE name = 'notes'", [], { $0.text(0) }) == before)
        #expect(try setup.integer("SELECT count(*) FROM orgctl_subjects") == 3)
    }

    @Test("a user's index whose SQL in sqlite_master carries a second statement is not run by the rebuild: refused, the file left as it was")
    func userIndexSQLIsRunAsOneStatement() throws {
        let (temp, setup) = try Self.schema8(subjects: 3)
        try setup.execute("CREATE INDEX my_subject_ids ON orgctl_subjects (id, email)")
        try Self.tamperIndexSQL(temp.path, "my_subject_ids", "CREATE INDEX my_subject_ids ON orgctl_subjects (id, email); DELETE FROM victim")
        let error = try #require(throws: StateError.self) { _ = try temp.open() }
        #expect(error.message.contains("could not make the index 'my_subject_ids' on orgctl_subjects again"), "\(error.message)")
        #expect(error.message.contains("nothing was migrated"), "\(error.message)")
        let after = try SQLiteConnection(path: temp.path, mode: .readWrite, busyTimeoutMilliseconds: 1_000)
        #expect(try after.integer("SELECT count(*) FROM victim") == 1)
        #expect(try after.integer("PRAGMA user_version") == 8)
        #expect(try after.integer("SELECT count(*) FROM orgctl_subjects") == 3)
    }
}
