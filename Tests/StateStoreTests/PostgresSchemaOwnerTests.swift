import Foundation
import Testing

@testable import StateStore

/// The least-privilege setup of docs/postgres-roles.sql: orgctl's role owns an empty schema an
/// administrator created for it, and has no CREATE on the database.
@Suite("PostgreSQL schema owner")
struct PostgresSchemaOwnerTests {
    /// The server's connection string connecting as `user` (in libpq, a later `user` wins).
    static func uri(_ uri: String, user: String) -> String {
        guard uri.hasPrefix("postgres://") || uri.hasPrefix("postgresql://") else { return uri + " user=\(user)" }
        return uri + (uri.contains("?") ? "&" : "?") + "user=\(user)"
    }

    @Test("the first apply creates orgctl's tables in a schema its role owns, without CREATE on the database")
    func ownsOnlyItsSchema() throws {
        guard let server = TestPostgres.uri() else { return }
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let (role, schema) = ("orgctl_owner_\(suffix)", "orgctl_owned_\(suffix)")
        _ = try TestPostgres.rows(server, "CREATE ROLE \(role) LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
        defer {
            _ = try? TestPostgres.rows(server, "DROP SCHEMA IF EXISTS \(schema) CASCADE")
            _ = try? TestPostgres.rows(server, "DROP ROLE \(role)")
        }
        _ = try TestPostgres.rows(server, "CREATE SCHEMA \(schema) AUTHORIZATION \(role)")
        #expect(try TestPostgres.rows(server, "SELECT has_database_privilege('\(role)', current_database(), 'CREATE')") == [["f"]])

        let key = try StateKey(raw: [UInt8](repeating: 7, count: 32))
        let store = try PostgresStateStore.open(conninfo: Self.uri(server, user: role), schema: schema, access: .readWrite,
                                                lockTimeoutMilliseconds: 1000, key: key, applicationName: "orgctl-owner-test")
        #expect(store != nil)
        let owners = try TestPostgres.rows(server, """
            SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = '\(schema)' AND c.relkind = 'r'
            """)
        #expect(owners == [[role]], "tables owned by \(owners)")
        #expect(try TestPostgres.rows(server, "SELECT count(*) FROM \(schema).orgctl_meta WHERE key = 'schema_version'") == [["1"]])
    }
}
