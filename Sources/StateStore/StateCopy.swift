import Foundation

/// `orgctl state migrate`: copies a state into an empty one of any backend, row by row and byte
/// for byte — the platform tables with their row ids, what orgctl applied (`orgctl_resources`:
/// digests are keyed with the row id, which stays), the audit chain and its Merkle tree, and
/// `orgctl_meta` (the database id, the log's origin, the key check value).
public enum StateCopy {
    public struct Summary: Sendable {
        public var rows: Int
        public var auditEntries: Int64
    }

    /// Copies `source` into `target`, which must hold no row yet (apply has never written it).
    public static func copy(from source: any StateStore, to target: any StateStore) throws(StateError) -> Summary {
        guard let source = source as? any SQLStore, let target = target as? any SQLStore else {
            throw StateError(.other, "internal error: a state store that is not SQL-backed", help: "report this as a bug")
        }
        let tables = Layout.tables.filter { !$0.postgresOnly }
        return try target.inWriteTransaction("copying the state into") {
            for table in tables where table.name != "orgctl_meta" {
                let count = try target.db.integer("SELECT count(*) FROM \(table.name)")
                guard count == 0 else {
                    throw StateError(.other, "\(target.location) is not empty: its table \(table.name) holds \(count) row\(count == 1 ? "" : "s")",
                                     help: "migrate into a new database (a new SQLite file, or a new --to-schema): nothing was written")
                }
            }
            var rows = 0
            try source.inSnapshot("reading the state") {
                for table in tables {
                    let columns = table.columns.map(\.name)
                    let placeholders = (1...columns.count).map { "?\($0)" }.joined(separator: ", ")
                    var insert = "INSERT INTO \(table.name) (\(columns.joined(separator: ", "))) VALUES (\(placeholders))"
                    // The target's own identity (written when it was created) gives way to the source's.
                    if table.name == "orgctl_meta" { insert += " ON CONFLICT (key) DO UPDATE SET value = excluded.value" }
                    let order = table.primaryKey.isEmpty ? "id" : table.primaryKey.joined(separator: ", ")
                    // Streamed from the source's connection and written through the target's in chunks.
                    var chunk: [[SQLValue]] = []
                    func write() throws {
                        if table.name == "orgctl_meta" {
                            for values in chunk {
                                try target.db.runChecked(insert, values, rows: 1) { changed in
                                    StateError(.other, "copying a row of \(table.name) changed \(changed) rows of \(target.location)", help: "run 'orgctl audit verify' on both databases")
                                }
                            }
                        } else {
                            try target.db.bulkInsert(table: table.name, columns: table.columns, rows: chunk)
                        }
                        rows += chunk.count
                        chunk.removeAll(keepingCapacity: true)
                    }
                    try source.db.forEach("SELECT \(columns.joined(separator: ", ")) FROM \(table.name) ORDER BY \(order)") { row in
                        if table.name == "orgctl_meta", row.text(0) == "schema_version" { return }
                        chunk.append(table.columns.enumerated().map { index, column in value(row, index, column.type) })
                        if chunk.count == 10_000 { try write() }
                    }
                    try write()
                }
            }
            try target.advanceRowIDs()
            return Summary(rows: rows, auditEntries: try target.db.integer("SELECT count(*) FROM orgctl_audit"))
        }
    }

    private static func value(_ row: any SQLRow, _ index: Int, _ type: Layout.ColumnType) -> SQLValue {
        guard !row.isNull(index) else { return .null }
        switch type {
        case .id, .integer: return .integer(row.int(index))
        case .text, .list, .timestamp: return .text(row.text(index))
        case .blob: return .blob(row.blob(index))
        case .bool: return .bool(row.int(index) != 0)
        }
    }
}

extension SQLStore {
    /// After rows were inserted with their ids: the next id a table assigns follows the highest.
    func advanceRowIDs() throws {
        guard self is PostgresStateStore else { return }  // SQLite assigns max(id) + 1 by itself
        for table in Layout.tables where table.columns.contains(where: { $0.type == .id }) {
            try db.run("SELECT setval(pg_get_serial_sequence(?1, 'id'), coalesce(max(id), 0) + 1, false) FROM \(table.name)", [.text(table.name)])
        }
    }
}
