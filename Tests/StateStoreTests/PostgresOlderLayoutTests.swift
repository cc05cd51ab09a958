import Foundation
import Testing

@testable import StateStore

/// The layout of an older PostgreSQL schema, as derived from the migration steps (what opening an
/// older state checks it against), is the layout the older release really wrote.
@Suite("PostgreSQL: the layout of older schema versions")
struct PostgresOlderLayoutTests {
    /// The tables and columns (in order) of `pg_dump`'s output for one schema: `CREATE TABLE schema.name (`
    /// followed by one line per column.
    static func dumpedLayout(_ file: URL) throws -> [String: [String]] {
        var tables: [String: [String]] = [:]
        var current: String?
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("CREATE TABLE "), let dot = line.firstIndex(of: "."), line.hasSuffix(" (") {
                let name = String(line[line.index(after: dot)...].dropLast(2))
                current = name
                tables[name] = []
            } else if line.hasPrefix(");") {
                current = nil
            } else if let table = current, let column = line.split(separator: " ").first, !line.hasPrefix("    CONSTRAINT ") {
                tables[table, default: []].append(String(column))
            }
        }
        return tables
    }

    @Test("schemas 6, 7 and 8 as derived from the steps are what the releases before 7, 8 and 9 created (their pg_dump in Tests/OlderStates/schemaN)",
          arguments: [6, 7, 8])
    func olderSchemaMatchesItsRelease(version: Int) throws {
        let dump = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("OlderStates/schema\(version)/postgres.sql")
        let real = try Self.dumpedLayout(dump)
        #expect(real.count >= 20, "the dump's tables were not found: \(real.keys.sorted())")
        let derived = PostgresSchema.tables(at: version)
        #expect(Set(derived.map(\.name)) == Set(real.keys))
        for table in derived {
            #expect(table.columns.map(\.name) == real[table.name], "\(table.name)")
        }
    }

    @Test("each version lacks exactly what the later steps add; the current version is the whole layout")
    func versions() {
        #expect(PostgresSchema.tables(at: Schema.currentVersion).map(\.name) == Layout.tables.map(\.name))
        let seven = Set(PostgresSchema.tables(at: 7).map(\.name))
        let six = Set(PostgresSchema.tables(at: 6).map(\.name)), five = Set(PostgresSchema.tables(at: 5).map(\.name))
        // Step 7 -> 8 drops a table: schema 7 has it (with its old columns), neither 6 nor 8 does.
        #expect(seven.subtracting(Layout.tables.map(\.name)) == ["orgctl_subject_entries"])
        #expect(Set(Layout.tables.map(\.name)).subtracting(seven).isEmpty)
        #expect(PostgresSchema.tables(at: 7).first { $0.name == "orgctl_subject_entries" }?.columns.map(\.name) == ["subject", "seq"])
        #expect(seven.subtracting(six) == ["orgctl_subjects", "orgctl_subject_values", "orgctl_subject_entries"])
        #expect(!six.contains("orgctl_subject_entries"))
        #expect(PostgresSchema.migration(7) == ["DROP TABLE IF EXISTS orgctl_subject_entries;"])
        #expect(six.subtracting(five) == ["orgctl_outbox", "orgctl_outbox_attempts", "orgctl_webhook_endpoints"])
        #expect(five.contains("orgctl_lock") && five.contains("orgctl_merkle"))
        // Versions before PostgreSQL's first add a column of a table PostgreSQL always had.
        #expect(PostgresSchema.additions(after: 3).columns.contains { $0 == ("orgctl_resources", "applied") })
        #expect(PostgresSchema.additions(after: Schema.currentVersion).tables.isEmpty)
        // A newer version (written by a newer orgctl, refused when opened) adds nothing and traps nowhere.
        #expect(PostgresSchema.additions(after: Schema.currentVersion + 1).tables.isEmpty)
        #expect(PostgresSchema.tables(at: Schema.currentVersion + 1).count == Layout.tables.count)
        // Step 8 -> 9's index is checked for on states that have the table without it (7 and 8), not on older
        // ones (step 6 -> 7 creates the table with it) nor on the current version.
        for version in [7, 8] {
            #expect(PostgresSchema.rebuiltIndexes(after: version).map { "\($0.table).\($0.index.name)" } == ["orgctl_subjects.orgctl_subjects_email"])
        }
        #expect(PostgresSchema.rebuiltIndexes(after: 6).isEmpty && PostgresSchema.rebuiltIndexes(after: 5).isEmpty)
        #expect(PostgresSchema.rebuiltIndexes(after: Schema.currentVersion).isEmpty)
    }
}
