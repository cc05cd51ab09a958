import Testing

@testable import Postgres

/// `redacted` needs no server: it only parses.
@Suite struct RedactionTests {
    static let password = "s3cr3t-Pw"

    @Test(arguments: [
        ("postgresql://alice:s3cr3t-Pw@db.example.com:5432/orgctl", "postgresql://alice@db.example.com:5432/orgctl"),
        ("postgres://alice:s3cr3t-Pw@db/orgctl?sslmode=verify-full", "postgresql://alice@db/orgctl?sslmode=verify-full"),
        ("postgresql://alice@db/orgctl?password=s3cr3t-Pw&application_name=x", "postgresql://alice@db/orgctl?application_name=x"),
        ("postgresql://alice:s3cr3t%2DPw@db/orgctl", "postgresql://alice@db/orgctl"),
        ("postgresql://al%40ice:p%40ss%3As3cr3t-Pw@db/my%20db", "postgresql://al%40ice@db/my%20db"),
        ("postgresql://:s3cr3t-Pw@db", "postgresql://db"),
        ("postgresql://u:s3cr3t-Pw@/orgctl?host=/var/run/postgresql", "postgresql://u@/orgctl?host=%2Fvar%2Frun%2Fpostgresql"),
        ("postgresql://u:s3cr3t-Pw@h1:5432,h2:5433/db", "postgresql://u@h1:5432,h2:5433/db"),
        ("postgresql://u:s3cr3t-Pw@[::1]:5432/db", "postgresql://u@[::1]:5432/db"),
        ("postgresql://u@db/x?sslpassword=s3cr3t-Pw&sslmode=require", "postgresql://u@db/x?sslmode=require"),
        ("postgresql:///postgres?host=/tmp/pg&port=5432&user=postgres", "postgresql://postgres@/postgres?host=%2Ftmp%2Fpg&port=5432"),
        ("host=db user=alice password=s3cr3t-Pw dbname=orgctl", "user=alice dbname=orgctl host=db"),
        ("host=db password='s3cr3t-Pw with spaces' user=alice", "user=alice host=db"),
        ("password=s3cr3t\\-Pw host='a b' application_name='it\\'s'", "host='a b' application_name='it\\'s'"),
        ("", ""),
        ("postgresql://u:s3cr3t-Pw@db/x?bogus=1", "postgresql://(unparsable connection string)"),
        ("postgresql://u:s3cr3t-Pw%zz@db/x", "postgresql://(unparsable connection string)"),
        ("host=db s3cr3t-Pw", "postgresql://(unparsable connection string)"),
    ])
    func passwordIsRemoved(input: String, expected: String) throws {
        let redacted = PostgresConnection.redacted(input)
        #expect(redacted == expected)
        #expect(!redacted.contains(Self.password))
        #expect(!redacted.contains("s3cr3t"))
        // What is left means the same to libpq, less the secrets.
        if expected != "postgresql://(unparsable connection string)" {
            let before = try #require(ConnectionOptions.parse(input)).options.filter {
                !ConnectionOptions.secretKeywords.contains($0.keyword)
            }
            let after = try #require(ConnectionOptions.parse(redacted)).options
            #expect(before.map { "\($0.keyword)=\($0.value)" } == after.map { "\($0.keyword)=\($0.value)" })
        }
    }

    @Test(arguments: [
        ("postgresql://x", true), ("postgres://x", true), ("postgresql:///db", true), ("state.db", false), ("./postgres://x", false),
        ("POSTGRES://x", false), ("host=db", false), ("", false),
    ])
    func connectionURIsAreRecognised(text: String, expected: Bool) {
        #expect(PostgresConnection.isConnectionURI(text) == expected)
    }

    @Test func timestampsRoundTrip() {
        #expect(BinaryFormat.unixMicroseconds(rfc3339: "1970-01-01T00:00:00Z") == 0)
        #expect(BinaryFormat.unixMicroseconds(rfc3339: "2000-01-01T00:00:00Z") == BinaryFormat.postgresEpochMicroseconds)
        #expect(BinaryFormat.unixMicroseconds(rfc3339: "2026-12-06T18:54:42.25+01:00") == 1_796_579_682_250_000)  // date -u -d 2026-12-06T17:54:42Z +%s
        #expect(BinaryFormat.unixMicroseconds(rfc3339: "2000-02-29T00:00:00Z") == 951_782_400_000_000)
        #expect(BinaryFormat.unixMicroseconds(rfc3339: "1969-12-31T23:59:59.999999Z") == -1)
        for bad in ["2026-02-30T00:00:00Z", "2026-12-06T24:00:00Z", "2026-12-06T17:54:42", "2026-12-06T17:54:42.Z", "x"] {
            #expect(BinaryFormat.unixMicroseconds(rfc3339: bad) == nil)
        }
        for micro: Int64 in [0, -1, 1_796_579_682_250_000, 951_782_400_000_000, -62_135_596_800_000_000] {
            #expect(BinaryFormat.unixMicroseconds(rfc3339: BinaryFormat.rfc3339(unixMicroseconds: micro)) == micro)
        }
        #expect(BinaryFormat.rfc3339(unixMicroseconds: -1) == "1969-12-31T23:59:59.999999Z")
    }

    /// libpq's connection messages (PostgreSQL 15), classified; quoted names do not count.
    @Test(arguments: [
        ("connection to server at \"ssl-auth.example\" (127.0.0.1), port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n",
         PostgresError.Kind.connection, String?("Is the server running on that host and accepting TCP/IP connections?")),
        ("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"ssl\"\n",
         .authentication, nil),
        ("connection to server at \"db\" (10.0.0.1), port 5432 failed: server does not support SSL, but SSL was required\n", .tls, nil),
        ("connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  role \"x\" does not exist\n", .authentication, nil),
        ("connection to server at \"db\", port 5432 failed: fe_sendauth: no password supplied\n", .authentication, nil),
        ("connection to server at \"db\", port 5432 failed: FATAL:  no pg_hba.conf entry for host \"1.2.3.4\", user \"u\", database \"d\", no encryption\n",
         .authentication, nil),
    ])
    func connectionFailuresAreClassified(text: String, kind: PostgresError.Kind, hint: String?) {
        let error = PostgresError.connectionFailure(text)
        #expect(error.kind == kind)
        #expect(!error.message.contains("\n") && !error.message.contains("FATAL"))
        if let hint { #expect(error.hint == hint) }
    }

    @Test func errorsAreOneLine() {
        let error = PostgresError(kind: .query, message: "first\n\tsecond  \nthird\n", detail: "a\nb", hint: "\n")
        #expect(error.message == "first; second; third")
        #expect(error.detail == "a; b")
        #expect(error.hint == nil)
        #expect(error.scrubbing(["second"]).message == "first; ***; third")
    }
}
