import Foundation
import Postgres
import Testing

@Suite("PostgreSQL errors", .enabled(if: !TestServer.skipped, "ORGCTL_SKIP_POSTGRES=1"))
struct ErrorTests {
    static let wrongPassword = "Wr0ng-P4ssw0rd-7f3a"

    static func connectionError(_ conninfo: String) -> PostgresError? {
        #expect(throws: PostgresError.self) { _ = try PostgresConnection(conninfo: conninfo, applicationName: nil, connectTimeoutSeconds: 5) }
    }

    static func expectOneLineWithout(_ error: PostgresError?, _ secrets: [String]) {
        guard let error else { return }
        for text in [error.description, error.message, error.detail ?? "", error.hint ?? ""] {
            #expect(!text.contains("\n"))
            for secret in secrets { #expect(!text.contains(secret)) }
        }
    }

    @Test func serverDownIsAConnectionError() throws {
        let port = TestServer.unusedPort()
        let error = Self.connectionError("postgresql://orgctl_pw:\(Self.wrongPassword)@127.0.0.1:\(port)/postgres")
        #expect(error?.kind == .connection)
        #expect(error?.message.contains("127.0.0.1") == true)
        #expect(error?.message.contains("\(port)") == true)
        #expect(error?.hint != nil)
        Self.expectOneLineWithout(error, [Self.wrongPassword])
    }

    @Test func theRightPasswordConnectsOverTCP() throws {
        let (_, password) = try TestServer.passwordRole()
        let db = try PostgresConnection(conninfo: try TestServer.passwordRoleURI(password: password), applicationName: nil)
        #expect(try db.rows("SELECT current_user::text") == [[.text("orgctl_pw")]])
    }

    @Test func aWrongPasswordIsAnAuthenticationError() throws {
        let error = Self.connectionError(try TestServer.passwordRoleURI(password: Self.wrongPassword))
        #expect(error?.kind == .authentication)
        #expect(error?.sqlState == "28P01")
        #expect(error?.message.contains("password authentication failed") == true)
        Self.expectOneLineWithout(error, [Self.wrongPassword])
        // Also as key=value and percent-encoded.
        let (uri, _) = try TestServer.passwordRole()
        let port = uri.split(separator: ":").last!.split(separator: "/").first!
        let keyValue = Self.connectionError("host=127.0.0.1 port=\(port) user=orgctl_pw dbname=postgres password='\(Self.wrongPassword) x'")
        #expect(keyValue?.kind == .authentication)
        Self.expectOneLineWithout(keyValue, [Self.wrongPassword])
        let encoded = Self.connectionError(try TestServer.passwordRoleURI(password: "p%40ss%3A\(Self.wrongPassword)"))
        #expect(encoded?.kind == .authentication)
        Self.expectOneLineWithout(encoded, [Self.wrongPassword, "p@ss:"])
    }

    @Test func noPasswordIsAnAuthenticationError() throws {
        let (uri, _) = try TestServer.passwordRole()
        let error = Self.connectionError(uri + "?passfile=/nonexistent")
        #expect(error?.kind == .authentication)
    }

    @Test func sslRequiredAgainstAServerWithoutTLSIsATLSError() throws {
        let (uri, password) = try TestServer.passwordRole()
        _ = uri
        let error = Self.connectionError(try TestServer.passwordRoleURI(password: password) + "?sslmode=require")
        #expect(error?.kind == .tls)
        #expect(error?.message.lowercased().contains("ssl") == true)
        Self.expectOneLineWithout(error, [password])
    }

    @Test func aMissingDatabaseIsAConnectionError() throws {
        let conninfo = try TestServer.conninfo().replacingOccurrences(of: "postgresql:///postgres?", with: "postgresql:///no_such_db?")
        let error = Self.connectionError(conninfo)
        #expect(error?.kind == .connection)
        #expect(error?.sqlState == "3D000")
    }

    @Test func anUnparsableConnectionStringDoesNotEchoIt() throws {
        for conninfo in [
            "postgresql://u:\(Self.wrongPassword)@host/db?no_such_option=1", "host=db password=\(Self.wrongPassword) nonsense",
            "postgresql://u:\(Self.wrongPassword)%zz@host/db",
        ] {
            let error = Self.connectionError(conninfo)
            #expect(error?.kind == .connection)
            #expect(error?.message == "the connection string cannot be parsed")
            Self.expectOneLineWithout(error, [Self.wrongPassword])
        }
    }

    @Test func aMissingSchemaCarries3F000() throws {
        let db = try TestServer.connect()
        let error = #expect(throws: PostgresError.self) { try db.execute("CREATE TABLE no_such_schema.t (a int)") }
        #expect(error?.sqlState == "3F000")
        #expect(error?.kind == .query)
        #expect(error?.message == "schema \"no_such_schema\" does not exist")
        let table = #expect(throws: PostgresError.self) { try db.rows("SELECT * FROM no_such_table") }
        #expect(table?.sqlState == "42P01")
    }

    @Test func aRoleWithoutRightsGets42501() throws {
        try TestServer.withSchema { admin, schema in
            try admin.execute("CREATE TABLE secret (a int)")
            let (_, password) = try TestServer.passwordRole()
            let role = try PostgresConnection(conninfo: try TestServer.passwordRoleURI(password: password), applicationName: nil)
            let error = #expect(throws: PostgresError.self) { try role.rows("SELECT * FROM \(schema).secret") }
            #expect(error?.sqlState == "42501")
            #expect(error?.kind == .query)
            #expect(error?.message == "permission denied for schema \(schema)")
            try admin.execute("GRANT USAGE ON SCHEMA \(schema) TO orgctl_pw")
            let insert = #expect(throws: PostgresError.self) { try role.execute("INSERT INTO \(schema).secret VALUES (1)") }
            #expect(insert?.sqlState == "42501")
            Self.expectOneLineWithout(insert, [password])
        }
    }

    @Test func detailAndHintAreKept() throws {
        try TestServer.withSchema { db, _ in
            try db.executeScript("CREATE TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1)")
            let error = #expect(throws: PostgresError.self) { try db.execute("INSERT INTO u VALUES (1)") }
            #expect(error?.detail == "Key (id)=(1) already exists.")
            #expect(error?.description.contains("[sqlstate 23505]") == true)
            let hinted = #expect(throws: PostgresError.self) { try db.rows("SELECT lenght('x')") }
            #expect(hinted?.hint?.isEmpty == false)
        }
    }
}
