import Testing

@testable import Postgres

@Suite struct RedactionTests {
    @Test func uriPasswordIsRemoved() {
        #expect(PostgresConnection.redacted("postgresql://alice:s3cret@db.example.com:5432/orgctl") == "postgresql://alice@db.example.com:5432/orgctl")
    }
}
