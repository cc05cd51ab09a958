import Foundation
import Testing

@testable import StateStore

/// docs/state-schema.md and docs/audit-chain.md describe the schema orgctl really creates.
@Suite("schema documentation")
struct SchemaDocumentationTests {
    static let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs")

    static func document(_ name: String) throws -> String {
        try String(contentsOf: docs.appendingPathComponent(name), encoding: .utf8)
    }

    static func texts(_ store: SQLiteStateStore, _ sql: String) throws -> [[String]] {
        try store.connection.prepare(sql).all().map { row in
            row.map { value -> String in
                switch value {
                case .text(let text): text
                case .integer(let number): String(number)
                default: ""
                }
            }
        }
    }

    /// SQL with comments removed and spacing made uniform.
    static func normalized(_ sql: String) -> String {
        let lines = sql.split(separator: "\n").map { line in line.range(of: "--").map { line[..<$0.lowerBound] } ?? line }
        var text = lines.joined(separator: " ").split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for token in ["(", ")", ","] {
            text = text.replacingOccurrences(of: " \(token)", with: token).replacingOccurrences(of: "\(token) ", with: token)
        }
        return text.trimmingCharacters(in: CharacterSet(charactersIn: "; "))
    }

    // MARK: The column tables of state-schema.md

    /// One row of a column table: `| column | SQLite | PostgreSQL | constraints | meaning |`.
    struct DocumentedColumn {
        var name: String
        var sqlite: String
        var postgres: String
        var constraints: String

        /// A type cell's type: the text before an optional note in parentheses (`TEXT (JSON list)`).
        static func type(_ cell: String) -> String {
            (cell.range(of: " (").map { String(cell[..<$0.lowerBound]) } ?? cell).trimmingCharacters(in: .whitespaces)
        }

        var sqliteType: String { Self.type(sqlite) }
        var postgresType: String { Self.type(postgres) }
        var words: [String] { constraints.split(separator: " ").map(String.init) }
        var isPrimaryKey: Bool { words.contains("PK") }
        var isNotNull: Bool { constraints.contains("NOT NULL") }
        var isUnique: Bool { words.contains("UNIQUE") }
        var hasCheck: Bool { words.contains("CHECK") }
        var defaultValue: String? { words.firstIndex(of: "DEFAULT").flatMap { words.indices.contains($0 + 1) ? words[$0 + 1] : nil } }
        /// `table.column` after `→`, without backticks.
        var references: String? {
            constraints.range(of: "→").map { constraints[$0.upperBound...].trimmingCharacters(in: CharacterSet(charactersIn: " `")) }
        }
    }

    static let columnTableHeader = "| column | SQLite | PostgreSQL | constraints | meaning |"

    /// Every `### \`table\`` section of state-schema.md: its text and its column table.
    static func documentedTables() throws -> [String: (section: String, columns: [DocumentedColumn])] {
        let document = try document("state-schema.md")
        var tables: [String: (String, [DocumentedColumn])] = [:]
        for part in document.components(separatedBy: "\n### `").dropFirst() {
            guard let close = part.firstIndex(of: "`") else { continue }
            let name = String(part[..<close])
            let section = part.components(separatedBy: "\n## ")[0]
            let lines = section.split(separator: "\n", omittingEmptySubsequences: false)
            guard let header = lines.firstIndex(where: { $0 == columnTableHeader }) else {
                Issue.record("state-schema.md: the section of \(name) has no column table ('\(columnTableHeader)')")
                continue
            }
            var columns: [DocumentedColumn] = []
            for line in lines[(header + 2)...].prefix(while: { $0.hasPrefix("|") }) {
                let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }
                guard cells.count >= 5 else {
                    Issue.record("state-schema.md, \(name): a column row needs 5 cells: \(line)")
                    continue
                }
                columns.append(DocumentedColumn(name: cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`")), sqlite: cells[1],
                                                postgres: cells[2], constraints: cells[3]))
            }
            #expect(tables[name] == nil, "state-schema.md has two sections for \(name)")
            tables[name] = (section, columns)
        }
        return tables
    }

    /// The SQLite type a layout column has (`—`: the table exists only on PostgreSQL).
    static func sqliteType(_ column: Layout.Column, of table: Layout.Table) -> String {
        if table.postgresOnly { return "—" }
        switch column.type {
        case .id, .integer, .bool: return "INTEGER"
        case .text, .list: return "TEXT"
        case .blob: return "BLOB"
        case .timestamp: return "timestamp (PostgreSQL only)"
        }
    }

    /// The PostgreSQL type a layout column has, as the docs name it.
    static func postgresType(_ column: Layout.Column) -> String {
        switch column.type {
        case .id: "bigint identity"
        case .integer: "bigint"
        case .text, .list: "text"
        case .blob: "bytea"
        case .bool: "boolean"
        case .timestamp: "timestamptz"
        }
    }

    static func isPrimaryKey(_ column: Layout.Column, of table: Layout.Table) -> Bool {
        column.type == .id || table.primaryKey == [column.name]
    }

    /// `tenants (id)` as the docs write it: `tenants.id`.
    static func reference(_ layout: String?) -> String? {
        layout.map { $0.replacingOccurrences(of: " (", with: ".").replacingOccurrences(of: ")", with: "") }
    }

    @Test("state-schema.md documents every table and column of the layout, with its types in both dialects and its constraints")
    func documentedColumnsAreTheLayout() throws {
        let documented = try Self.documentedTables()
        #expect(Set(documented.keys) == Set(Layout.tables.map(\.name)), "documented tables \(documented.keys.sorted())")
        for table in Layout.tables {
            guard let (section, columns) = documented[table.name] else { continue }
            #expect(columns.map(\.name) == table.columns.map(\.name), "\(table.name): documented columns \(columns.map(\.name)), layout \(table.columns.map(\.name))")
            for column in table.columns {
                guard let doc = columns.first(where: { $0.name == column.name }) else { continue }
                let what = "state-schema.md, \(table.name).\(column.name)"
                #expect(doc.sqliteType == Self.sqliteType(column, of: table), "\(what): SQLite type '\(doc.sqlite)', layout \(Self.sqliteType(column, of: table))")
                #expect(doc.postgresType == Self.postgresType(column), "\(what): PostgreSQL type '\(doc.postgres)', layout \(Self.postgresType(column))")
                #expect(doc.isPrimaryKey == Self.isPrimaryKey(column, of: table), "\(what): '\(doc.constraints)'")
                #expect(doc.isNotNull == column.notNull, "\(what): NOT NULL is \(column.notNull), documented '\(doc.constraints)'")
                #expect(doc.isUnique == column.unique, "\(what): UNIQUE is \(column.unique), documented '\(doc.constraints)'")
                #expect(doc.hasCheck == (column.check != nil), "\(what): CHECK is \(column.check ?? "none"), documented '\(doc.constraints)'")
                #expect(doc.defaultValue == column.defaultValue, "\(what): DEFAULT is \(column.defaultValue ?? "none"), documented '\(doc.constraints)'")
                #expect(doc.references == Self.reference(column.references), "\(what): references \(column.references ?? "nothing"), documented '\(doc.constraints)'")
            }
            // Constraints of several columns, and indexes, are named in the section's text.
            if table.primaryKey.count > 1 {
                let key = "Primary key `(\(table.primaryKey.joined(separator: ", ")))`"
                #expect(section.contains(key), "state-schema.md, \(table.name): no \(key)")
            }
            for unique in table.uniques {
                #expect(section.contains("`UNIQUE (\(unique.joined(separator: ", ")))`"), "state-schema.md, \(table.name): no UNIQUE \(unique)")
            }
            for index in table.indexes { #expect(section.contains("`\(index.name)`"), "state-schema.md, \(table.name): no index \(index.name)") }
        }
    }

    @Test("a new SQLite database has exactly the layout's tables and columns, with their types, keys and constraints")
    func sqliteIsTheLayout() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Self.compare(store, with: Layout.tables.filter { !$0.postgresOnly }) { table, column, what in
            #expect(column.type == Self.sqliteType(column.layout, of: table), "\(what): SQLite has \(column.type)")
        }
    }

    @Test("state-schema.md's column tables are those of a new SQLite database")
    func documentedColumnsAreSQLite() throws {
        let documented = try Self.documentedTables()
        let temp = try TemporaryStore()
        let store = try temp.open()
        let tables = try Self.texts(store, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").map { $0[0] }
        #expect(Set(tables) == Set(documented.filter { !$0.value.columns.allSatisfy { $0.sqlite == "—" } }.keys), "SQLite has \(tables)")
        for table in tables {
            let columns = try Self.sqliteColumns(store, table)
            let docs = documented[table]?.columns ?? []
            #expect(docs.map(\.name) == columns.map(\.name), "\(table): SQLite has \(columns.map(\.name)), documented \(docs.map(\.name))")
            let primaryKeys = columns.filter(\.primaryKey).count
            for column in columns {
                guard let doc = docs.first(where: { $0.name == column.name }) else { continue }
                let what = "state-schema.md, \(table).\(column.name)"
                #expect(doc.sqliteType == column.type, "\(what): SQLite type \(column.type), documented '\(doc.sqlite)'")
                #expect(doc.isPrimaryKey == (column.primaryKey && primaryKeys == 1), "\(what): documented '\(doc.constraints)'")
                // A primary key column is NOT NULL (STRICT tables) whether or not the DDL says so.
                if !column.primaryKey { #expect(doc.isNotNull == column.notNull, "\(what): NOT NULL is \(column.notNull), documented '\(doc.constraints)'") }
                #expect(doc.defaultValue == column.defaultValue, "\(what): DEFAULT is \(column.defaultValue ?? "none"), documented '\(doc.constraints)'")
                #expect(doc.references == column.references, "\(what): references \(column.references ?? "nothing"), documented '\(doc.constraints)'")
                #expect(doc.isUnique == column.unique, "\(what): UNIQUE is \(column.unique), documented '\(doc.constraints)'")
            }
        }
    }

    @Test("state-schema.md's column tables are those of a new PostgreSQL schema (information_schema, through psql)")
    func documentedColumnsArePostgres() throws {
        guard let uri = TestPostgres.uri() else { return }
        let documented = try Self.documentedTables()
        let schema = "orgctl_doc_\(UUID().uuidString.prefix(8).lowercased())"
        let key = try StateKey(raw: [UInt8](repeating: 7, count: 32))
        _ = try #require(try PostgresStateStore.open(conninfo: uri, schema: schema, access: .readWrite, lockTimeoutMilliseconds: 1000, key: key,
                                                     applicationName: "orgctl-schema-doc-test"))
        defer { _ = try? TestPostgres.rows(uri, "DROP SCHEMA \"\(schema)\" CASCADE") }

        let literal = "'\(schema)'"
        let rows = try TestPostgres.rows(uri, """
            SELECT table_name, column_name, data_type, is_nullable, is_identity, coalesce(column_default, ''), coalesce(collation_name, '')
            FROM information_schema.columns WHERE table_schema = \(literal) ORDER BY table_name, ordinal_position
            """)
        // One-column constraints: p(rimary key), u(nique), f(oreign key, with the referenced table.column), c(heck).
        let constraints = try TestPostgres.rows(uri, """
            SELECT c.contype::text, t.relname::text, a.attname::text, coalesce(ft.relname || '.' || fa.attname, '')
            FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
            LEFT JOIN pg_class ft ON ft.oid = c.confrelid LEFT JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
            WHERE n.nspname = \(literal) AND cardinality(c.conkey) = 1
            """)
        func constrained(_ kind: String, _ table: String, _ column: String) -> [String] {
            constraints.filter { $0[0] == kind && $0[1] == table && $0[2] == column }.map { $0[3] }
        }
        let tables = Set(rows.map { $0[0] })
        #expect(tables == Set(documented.keys), "PostgreSQL has \(tables.sorted()), documented \(documented.keys.sorted())")
        for table in tables.sorted() {
            let columns = rows.filter { $0[0] == table }
            let docs = documented[table]?.columns ?? []
            #expect(docs.map(\.name) == columns.map { $0[1] }, "\(table): PostgreSQL has \(columns.map { $0[1] }), documented \(docs.map(\.name))")
            for column in columns {
                let (name, dataType, nullable, identity, defaultValue, collation) = (column[1], column[2], column[3], column[4], column[5], column[6])
                guard let doc = docs.first(where: { $0.name == name }) else { continue }
                let what = "state-schema.md, \(table).\(name)"
                let type = (dataType == "timestamp with time zone" ? "timestamptz" : dataType) + (identity == "YES" ? " identity" : "")
                #expect(doc.postgresType == type, "\(what): PostgreSQL type \(type), documented '\(doc.postgres)'")
                if dataType == "text" { #expect(collation == "C", "\(table).\(name) has collation '\(collation)', not \"C\"") }
                #expect(doc.isPrimaryKey == !constrained("p", table, name).isEmpty, "\(what): documented '\(doc.constraints)'")
                #expect((doc.isNotNull || doc.isPrimaryKey) == (nullable == "NO"), "\(what): is_nullable \(nullable), documented '\(doc.constraints)'")
                #expect(doc.isUnique == !constrained("u", table, name).isEmpty, "\(what): documented '\(doc.constraints)'")
                #expect(doc.hasCheck == !constrained("c", table, name).isEmpty, "\(what): documented '\(doc.constraints)'")
                #expect(doc.references == constrained("f", table, name).first, "\(what): references \(constrained("f", table, name)), documented '\(doc.constraints)'")
                if let documentedDefault = doc.defaultValue {
                    #expect(defaultValue.hasPrefix(documentedDefault), "\(what): DEFAULT is \(defaultValue), documented \(documentedDefault)")
                } else {
                    #expect(defaultValue.isEmpty, "\(what): DEFAULT is \(defaultValue), documented none")
                }
            }
        }
        // Row-level security as documented: a policy on every tenant-scoped table, RLS without one on orgctl's own.
        let security = try TestPostgres.rows(uri, """
            SELECT c.relname::text, c.relrowsecurity::text, (SELECT string_agg(p.polname::text, ',') FROM pg_policy p WHERE p.polrelid = c.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = \(literal) AND c.relkind = 'r'
            """)
        for row in security {
            guard let table = Layout.table(row[0]) else { continue }
            switch table.scope {
            case .global: #expect(row[1] == "false" && row[2].isEmpty, "\(row)")
            case .rows: #expect(row[1] == "true" && row[2] == PostgresSchema.policyName, "\(row)")
            case .orgctlOnly: #expect(row[1] == "true" && row[2].isEmpty, "\(row)")
            }
        }
    }

    @Test("the roles SQL in state-schema.md is docs/postgres-roles.sql's, statement for statement")
    func rolesSQL() throws {
        let document = try Self.document("state-schema.md")
        let script = try Self.document("postgres-roles.sql")
        let section = try #require(document.components(separatedBy: "\n### PostgreSQL roles\n").dropFirst().first, "no 'PostgreSQL roles' section")
        let block = try #require(section.components(separatedBy: "```sql\n").dropFirst().first?.components(separatedBy: "```").first)
        // psql's meta-commands (`\if`) are not SQL; the names are psql variables, shown with the values the section gives them.
        var sql = script.split(separator: "\n").filter { !$0.hasPrefix("\\") }.joined(separator: "\n")
        for (variable, value) in [("database", "platform"), ("schema", "orgctl"), ("orgctl_role", "orgctl_apply"),
                                  ("platform_role", "platform_reader"), ("plan_role", "orgctl_plan")] {
            sql = sql.replacingOccurrences(of: ":\"\(variable)\"", with: value)
        }
        let statements = Self.normalized(sql).components(separatedBy: ";")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shown = Self.normalized(block).components(separatedBy: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        // Every statement of the script is shown, in order; the section adds only the platform's own login role.
        #expect(Array(shown.prefix(statements.count)) == statements, "state-schema.md shows:\n\(shown.joined(separator: ";\n"))\npostgres-roles.sql:\n\(statements.joined(separator: ";\n"))")
    }

    /// A column of a SQLite table as the database describes it.
    struct SQLiteColumn {
        var name: String
        var type: String
        var notNull: Bool
        var primaryKey: Bool
        var defaultValue: String?
        var references: String?
        var unique: Bool
    }

    static func sqliteColumns(_ store: SQLiteStateStore, _ table: String) throws -> [SQLiteColumn] {
        let references = Dictionary(try texts(store, "SELECT \"from\", \"table\" || '.' || \"to\" FROM pragma_foreign_key_list('\(table)')").map { ($0[0], $0[1]) },
                                    uniquingKeysWith: { a, _ in a })
        // Columns alone in a UNIQUE constraint (not a CREATE UNIQUE INDEX, not the primary key).
        let unique = Set(try texts(store, """
            SELECT min(ii.name) FROM pragma_index_list('\(table)') il, pragma_index_info(il.name) ii
            WHERE il."unique" AND il.origin = 'u' GROUP BY il.name HAVING count(*) = 1
            """).map { $0[0] })
        return try texts(store, "SELECT name, type, \"notnull\", pk, coalesce(dflt_value, '') FROM pragma_table_info('\(table)') ORDER BY cid").map {
            SQLiteColumn(name: $0[0], type: $0[1], notNull: $0[2] == "1", primaryKey: $0[3] != "0", defaultValue: $0[4].isEmpty ? nil : $0[4],
                         references: references[$0[0]], unique: unique.contains($0[0]))
        }
    }

    /// Compares the SQLite database with `tables` of the layout: tables, columns in order, keys,
    /// NOT NULL, defaults, references, one- and many-column UNIQUE constraints, and indexes.
    static func compare(_ store: SQLiteStateStore, with layout: [Layout.Table],
                        type: (Layout.Table, (layout: Layout.Column, type: String), String) -> Void) throws {
        let tables = try texts(store, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").map { $0[0] }
        #expect(Set(tables) == Set(layout.map(\.name)), "SQLite has \(tables), the layout \(layout.map(\.name).sorted())")
        for table in layout where tables.contains(table.name) {
            let columns = try sqliteColumns(store, table.name)
            #expect(columns.map(\.name) == table.columns.map(\.name), "\(table.name): SQLite has \(columns.map(\.name)), the layout \(table.columns.map(\.name))")
            let primaryKey = columns.filter(\.primaryKey).map(\.name)
            let layoutKey = table.primaryKey.isEmpty ? table.columns.filter { $0.type == .id }.map(\.name) : table.primaryKey
            #expect(primaryKey == layoutKey, "\(table.name): SQLite's primary key \(primaryKey), the layout's \(layoutKey)")
            for (column, real) in zip(table.columns, columns) where column.name == real.name {
                let what = "\(table.name).\(column.name)"
                type(table, (column, real.type), what)
                if !real.primaryKey { #expect(real.notNull == column.notNull, "\(what): SQLite NOT NULL \(real.notNull), the layout \(column.notNull)") }
                #expect(real.defaultValue == column.defaultValue, "\(what): SQLite DEFAULT \(real.defaultValue ?? "none"), the layout \(column.defaultValue ?? "none")")
                #expect(real.references == reference(column.references), "\(what): SQLite references \(real.references ?? "nothing"), the layout \(column.references ?? "nothing")")
                #expect(real.unique == column.unique, "\(what): SQLite UNIQUE \(real.unique), the layout \(column.unique)")
            }
            let uniques = try texts(store, """
                SELECT group_concat(name, ',') FROM (SELECT il.name AS idx, ii.name, ii.seqno FROM pragma_index_list('\(table.name)') il,
                pragma_index_info(il.name) ii WHERE il."unique" AND il.origin = 'u' ORDER BY il.name, ii.seqno) GROUP BY idx HAVING count(*) > 1
                """).map { $0[0] }
            #expect(Set(uniques) == Set(table.uniques.map { $0.joined(separator: ",") }), "\(table.name): SQLite's UNIQUE constraints \(uniques), the layout's \(table.uniques)")
            let indexes = try texts(store, "SELECT name, \"unique\" FROM pragma_index_list('\(table.name)') WHERE origin = 'c' ORDER BY name")
            #expect(indexes.map { $0[0] } == table.indexes.map(\.name).sorted(), "\(table.name): SQLite's indexes \(indexes)")
            for index in table.indexes {
                let columns = try texts(store, "SELECT name FROM pragma_index_info('\(index.name)') ORDER BY seqno").map { $0[0] }
                #expect(columns == index.columns, "index \(index.name): SQLite \(columns), the layout \(index.columns)")
                #expect(indexes.first { $0[0] == index.name }?[1] == (index.unique ? "1" : "0"), "index \(index.name) unique: \(index.unique)")
            }
        }
    }

    @Test("audit-chain.md's CREATE TABLE statements are the database's own")
    func auditChain() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        let document = try Self.document("audit-chain.md")
        let start = try #require(document.range(of: "```sql\n")).upperBound
        let block = document[start...].components(separatedBy: "```")[0]
        let statements = block.components(separatedBy: ";").map(Self.normalized).filter { $0.hasPrefix("CREATE TABLE") }
        #expect(statements.count == 2)
        for statement in statements {
            let name = String(statement.dropFirst("CREATE TABLE ".count).prefix { $0 != "(" })
            let real = try #require(try Self.texts(store, "SELECT sql FROM sqlite_master WHERE name = '\(name)'").first?.first, "\(name)")
            #expect(Self.normalized(real) == statement, "documented: \(statement)\nreal: \(Self.normalized(real))")
        }
    }
}

@Suite("PostgreSQL schema")
struct PostgresSchemaTests {
    /// Every migration step after the first PostgreSQL version has a PostgreSQL form (a step
    /// that does not would stop `apply` with a precondition failure on an older schema).
    @Test func everyLaterMigrationStepHasAPostgresForm() {
        for step in PostgresSchema.firstVersion..<Schema.currentVersion {
            #expect(!PostgresSchema.migration(step).isEmpty || Schema.migrations[step].isEmpty, "step \(step)")
        }
    }

    /// Text compares byte by byte (renames move addresses by range) and every tenant-scoped
    /// platform table carries the row-level security policy.
    @Test func ddlCollatesTextBytewiseAndScopesTenantRows() {
        let ddl = PostgresSchema.createAll
        #expect(!ddl.contains("text NOT NULL") && !ddl.contains("text,"))
        for table in Layout.tables {
            if case .rows = table.scope { #expect(ddl.contains("CREATE POLICY \(PostgresSchema.policyName) ON \(table.name) FOR SELECT"), "\(table.name)") }
        }
    }
}
