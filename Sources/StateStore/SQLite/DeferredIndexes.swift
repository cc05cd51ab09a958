/// A table's secondary indexes built once after a bulk insert instead of row by row: a first apply
/// inserts its data subjects (about 210,000 rows for 10,000 tenants) in the order of their random ids,
/// so the table's own b-tree is appended to, while its index of e-mail addresses is inserted into at
/// random. Dropping that index, inserting, and creating it again (one sort) took 0.36–0.40 s of CPU
/// instead of 0.55–0.64 s for 210,000 rows in C, and takes 0.1–0.3 s off orgctl's 10,000-tenant first
/// apply, whose peak memory also falls by 14 MB (bench/README.md, session 10).
///
/// Only for the indexes that ``Layout`` names for the table (a user's own index stays and is kept
/// row by row), only inside a transaction, and only when `rows` reaches ``minimumRows`` and the table
/// is empty: a small insert gains little (and the schema changes make the connection prepare its
/// cached statements again), and on a filled table rebuilding the index would cost more than the
/// inserts save.
/// Only an index whose SQL in `sqlite_master` is exactly the one orgctl writes (`Layout.Index.sql(on:)`) is
/// deferred, and it is made again from that SQL of orgctl's, so the file is the same as after
/// row-by-row inserts: the text in `sqlite_master` is the database's, which others can write
/// (`PRAGMA writable_schema`), and is never run (it could carry a second statement, which SQLite
/// ignores when it loads the schema but would run inside the apply's transaction). An index whose
/// SQL differs (a changed definition) is left in place, kept row by row.
///
/// SQLite's DDL is transactional: other connections (the platform reading the file) see the last
/// commit, whose table has its index, until this transaction commits with the index made again; and
/// the whole is one savepoint, so a failure in between (a duplicate address found when the unique
/// index is made, a full disk) undoes the drop with the inserts before the error reaches the caller,
/// who rolls the transaction back.
enum DeferredIndexes {
    /// Rows from which the indexes are deferred.
    static let minimumRows = 1_000
    static let savepoint = "orgctl_deferred_indexes"
}

extension SQLDatabase {
    /// Runs `body` (a bulk insert of `rows` rows into `table`); a backend may defer the table's
    /// indexes around it (``DeferredIndexes``). PostgreSQL runs `body` as it is: its first apply
    /// defers foreign keys instead (Postgres/DeferredKeys.swift).
    func deferringIndexes(of table: String, rows: Int, _ body: () throws -> Void) throws {
        try body()
    }
}

extension SQLiteConnection {
    func deferringIndexes(of table: String, rows: Int, _ body: () throws -> Void) throws {
        guard rows >= DeferredIndexes.minimumRows, isInTransaction, let layout = Layout.table(table)?.indexes, !layout.isEmpty,
              try first("SELECT 1 FROM main.\(table) LIMIT 1", [], { _ in true }) == nil
        else { return try body() }
        // The indexes the file has exactly as orgctl made them (one a user dropped or changed is not touched).
        var indexes: [(name: String, sql: String)] = []
        for index in layout {
            let sql = index.sql(on: table)
            if try first("SELECT sql FROM main.sqlite_master WHERE type = 'index' AND name = ?1 AND tbl_name = ?2",
                         [.text(index.name), .text(table)], { $0.optionalText(0) }) == sql {
                indexes.append((index.name, sql))
            }
        }
        guard !indexes.isEmpty else { return try body() }
        try execute("SAVEPOINT \(DeferredIndexes.savepoint)")
        do {
            // The index is built from the rows just inserted: with the insert's cache (as large as `bulkInsert`'s),
            // not after the cache was set back, when the rows' pages would be spilled and read back.
            try withCache(forRows: rows) {
                for index in indexes { try execute("DROP INDEX main.\(index.name)") }
                try body()
                for index in indexes { try create(index, of: table, rows: rows) }
            }
            try execute("RELEASE \(DeferredIndexes.savepoint)")
        } catch {
            // The drop and the inserts undone: the table has its indexes again, whatever the caller does next.
            try? execute("ROLLBACK TO \(DeferredIndexes.savepoint)")
            try? execute("RELEASE \(DeferredIndexes.savepoint)")
            throw error
        }
    }

    /// Makes `index` again from its SQL; a unique index that the inserted rows break fails as such.
    private func create(_ index: (name: String, sql: String), of table: String, rows: Int) throws {
        let failure: SQLiteError
        do {
            return try execute(index.sql)
        } catch {
            failure = error
        }
        guard failure.kind == .constraint else { throw failure }
        throw StateError(.other, "the \(rows) rows inserted into \(table) break its unique index \(index.name) (\(failure.userMessage)); nothing was written",
                         help: "report this as a bug: orgctl inserts one row per key; the state database is as it was")
    }
}
