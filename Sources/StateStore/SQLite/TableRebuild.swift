/// The SQLite side of a migration step that rebuilds a table (``Schema/Statement/rebuildTable(name:definition:columns:then:postgres:)``):
/// SQLite can neither drop a constraint nor change a column, so the step renames the table away, creates it
/// anew, copies its rows and drops the old one, all in the migration's transaction.
extension SQLiteStateStore {
    /// Runs one statement of a migration step: a rebuild through ``rebuild(_:_:)``, anything else as its SQL.
    func run(_ statement: Schema.Statement) throws {
        if case .rebuildTable(let name, _, _, _, _) = statement {
            try rebuild(name, statement)
        } else {
            try connection.execute(statement.sql)
        }
    }

    /// Runs `statement`, the rebuild of `table`. A view or trigger that names the table is refused
    /// first (the rename would carry it over to the old table, which is then dropped); an index of the
    /// user's on the table is made again on the new one. A failure leaves the file as it was (the
    /// migration's transaction rolls back).
    func rebuild(_ table: String, _ statement: Schema.Statement) throws {
        let dependents = try connection.prepare("""
            SELECT type, name FROM main.sqlite_master
            WHERE type IN ('view', 'trigger') AND instr(lower(sql), ?1) > 0 ORDER BY type, name
            """)
        try dependents.bind([.text(table)])
        if try dependents.step() {
            let (type, name) = (dependents.text(at: 0), dependents.text(at: 1))
            let shown = AddressSegment.encode(name)
            let drop = shown == name ? " (sqlite3 \(path) 'DROP \(type.uppercased()) \"\(name)\"')" : ""
            throw StateError(.corrupt, "'\(path)' has a \(type) '\(shown)' that reads orgctl's table \(table), which the migration to schema \(Schema.currentVersion) rebuilds: nothing was migrated",
                             help: "drop it\(drop), run the command again (it migrates the database), then create it again")
        }
        // A table of the user's whose foreign key names the table: the rename would point the key at the old
        // table, whose drop (foreign keys are on) would then delete or refuse the rows that reference it, or
        // leave the key naming a table that no longer exists.
        let referencing = try connection.prepare("""
            SELECT m.name FROM main.sqlite_master m JOIN pragma_foreign_key_list(m.name, 'main') f
            WHERE m.type = 'table' AND lower(m.name) <> ?1 AND lower(f."table") = ?1 ORDER BY m.name LIMIT 1
            """)
        try referencing.bind([.text(table)])
        if try referencing.step() {
            let shown = AddressSegment.encode(referencing.text(at: 0))
            throw StateError(.corrupt, "'\(path)' has a table '\(shown)' whose foreign key references orgctl's table \(table), which the migration to schema \(Schema.currentVersion) rebuilds: nothing was migrated",
                             help: "remove the foreign key from '\(shown)' (no table of yours may reference orgctl's tables, docs/state-schema.md), then run the command again (it migrates the database)")
        }
        // A user's indexes on the table: their SQL before the rename rewrites it.
        let userIndexes = try connection.prepare("SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND lower(tbl_name) = ?1 AND sql IS NOT NULL ORDER BY name")
        try userIndexes.bind([.text(table)])
        var indexes: [(name: String, sql: String)] = []
        while try userIndexes.step() { indexes.append((userIndexes.text(at: 0), userIndexes.text(at: 1))) }
        do {
            try connection.execute(statement.sql)
        } catch {
            throw StateError(.other, "'\(path)': the migration to schema \(Schema.currentVersion) could not rebuild orgctl's table \(table): \(error.userMessage); nothing was migrated",
                             help: "check the database with 'sqlite3 \(path) \"PRAGMA integrity_check\"' and remove what of yours refers to \(table), then run the command again")
        }
        let exists = try connection.prepare("SELECT count(*) FROM main.sqlite_master WHERE type = 'index' AND name = ?1")
        for index in indexes {
            try exists.bind([.text(index.name)])
            _ = try exists.step()
            let present = exists.int(at: 0) > 0
            exists.reset()
            // One statement, prepared as such: the text is the database's (`writable_schema` can give an index
            // SQL with a second statement, which SQLite ignores when it loads the schema and `execute` would run).
            if !present {
                do {
                    try connection.prepare(index.sql).run()
                } catch {
                    let shown = AddressSegment.encode(index.name)
                    let drop = shown == index.name ? " (sqlite3 \(path) 'DROP INDEX \"\(index.name)\"')" : ""
                    throw StateError(.corrupt, "'\(path)': the migration to schema \(Schema.currentVersion) could not make the index '\(shown)' on \(table) again from its SQL in sqlite_master (\(error.userMessage)); nothing was migrated",
                                     help: "drop the index\(drop), run the command again (it migrates the database), then create it again")
                }
            }
        }
    }
}
