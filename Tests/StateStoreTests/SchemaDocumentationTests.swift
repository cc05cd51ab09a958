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

    @Test("state-schema.md lists every table, and its tables of orgctl's own tables give each column's real type")
    func stateSchema() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        let document = try Self.document("state-schema.md")
        let tables = try Self.texts(store, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").map { $0[0] }
        let kinds = try #require(document.range(of: "Two kinds of tables live in the file:")).upperBound
        let list = document[kinds...].components(separatedBy: "\n## ")[0]
        for table in tables { #expect(list.contains("`\(table)`"), "the list of tables misses \(table)") }

        for table in tables where table.hasPrefix("orgctl_") {
            let heading = try #require(document.range(of: "### `\(table)`"), "no section for \(table)")
            let section = document[heading.upperBound...].components(separatedBy: "\n### ")[0].components(separatedBy: "\n## ")[0]
            var documented: [String: String] = [:]
            // The first Markdown table of the section: its columns.
            let lines = section.split(separator: "\n", omittingEmptySubsequences: false).drop { !$0.hasPrefix("|") }.prefix { $0.hasPrefix("|") }
            for line in lines where line.hasPrefix("| `") {
                let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
                documented[cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = cells[1]
            }
            let columns = try Self.texts(store, "SELECT name, type, \"notnull\", pk FROM pragma_table_info('\(table)')")
            let primaryKeyColumns = columns.filter { $0[3] != "0" }.count
            #expect(Set(documented.keys) == Set(columns.map { $0[0] }), "\(table): documented \(documented.keys.sorted())")
            for column in columns {
                let (name, type, notNull, primaryKey) = (column[0], column[1], column[2] == "1", column[3] != "0")
                guard let described = documented[name] else { continue }
                #expect(described.hasPrefix(type), "\(table).\(name) is \(type), documented '\(described)'")
                // A STRICT table's primary key is NOT NULL whether or not it says so.
                if !primaryKey {
                    #expect(described.contains("NOT NULL") == notNull, "\(table).\(name): NOT NULL is \(notNull), documented '\(described)'")
                }
                if primaryKeyColumns == 1 {
                    #expect(described.contains("PRIMARY KEY") == primaryKey, "\(table).\(name): documented '\(described)'")
                }
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
