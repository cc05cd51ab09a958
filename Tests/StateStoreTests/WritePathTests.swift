import Crypto
import Testing

@testable import StateStore

/// The per-resource write path of an apply takes shortcuts (cached statement text, byte-wise
/// address segments, digests printed from their words); these pin each to what it replaced.
@Suite("apply write path")
struct WritePathTests {
    @Test("a digest's bytes and text are those of its SHA-256, for many digests")
    func digestBytesAndText() throws {
        for index in 0..<300 {
            let sha = SHA256.hash(Array("row \(index)".utf8))
            let digest = try #require(Digest(hex: Hex.encode(sha)))
            #expect(digest.bytes == sha)
            #expect(digest.description == Hex.encode(sha))
            #expect(Digest(hex: digest.description) == digest)
        }
    }

    static let addresses = [
        "", "/", "//", "tenant", "tenant/acme", "tenant/acme/", "tenant/acme//", "/tenant/acme", "tenant//acme",
        "tenant/acme/member/bob@example.com", "tenant/acme/team/core/member/bob@example.com",
        "tenant/åcme/member/bøb@example.com", "tenant/acme/member/x/\u{301}y", "tenant/acme/\u{301}", "tenant/e\u{301}/team/x",
        "tenant/acme/member/🦆@example.com", "a/\u{200D}/b",
    ]

    @Test("an address's segments are those of String.split", arguments: addresses)
    func addressSegments(address: String) {
        #expect(SQLWriteScratch.lastSegment(of: address) == String(address.split(separator: "/").last ?? ""))
        #expect(SQLWriteScratch.segments(of: address) == address.split(separator: "/", omittingEmptySubsequences: false).map(String.init))
    }

    @Test("an INSERT's text is built once per table, column list and RETURNING, and is the text built per row before")
    func insertStatements() {
        let scratch = SQLWriteScratch()
        func expected(_ table: String, _ columns: [String], _ returning: Bool) -> String {
            let placeholders = (1...columns.count).map { "?\($0)" }.joined(separator: ", ")
            return "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES (\(placeholders))" + (returning ? " RETURNING id" : "")
        }
        let cases: [(String, [String], Bool)] = [
            ("tenants", ["slug", "name"], true), ("tenants", ["slug", "name"], false), ("tenants", ["slug", "name", "plan"], true),
            ("tenants", ["slug", "plan"], true), ("members", ["slug", "name"], true), ("tenants", ["id", "slug", "name"], false),
            ("members", ["email", "tenant_id", "name", "role"], true),
        ]
        for _ in 0..<3 {
            for (table, columns, returning) in cases {
                #expect(scratch.insertStatement(table: table, columns: columns, returningID: returning) == expected(table, columns, returning))
            }
        }
    }
}
