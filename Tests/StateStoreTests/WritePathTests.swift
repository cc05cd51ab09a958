import Crypto
import Spec
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

    /// Attributes of every kind of value, with non-ASCII, combining marks, empty and long texts.
    static let attributes: [[Attribute]] = [
        [],
        [Attribute("name", .string("Acme")), Attribute("plan", .string("business"))],
        [Attribute("a", .null), Attribute("b", .bool(true)), Attribute("c", .bool(false)), Attribute("d", .int(Int64.min)), Attribute("e", .int(-1)),
         Attribute("f", .int(0)), Attribute("g", .int(Int64.max)), Attribute("h", .string("")), Attribute("i", .string("bøb e\u{301} 🦆 \u{0}"))],
        [Attribute("events", .list([])), Attribute("more", .list(["x", "", "é\u{301}", String(repeating: "long ", count: 40)])),
         Attribute("secret", .secret(fingerprint: "hmac-sha256:0f")), Attribute("cert", .document(sha256: String(repeating: "ab", count: 32), text: "PEM"))],
        [Attribute("nämé", .string(String(repeating: "x", count: 300)))],
    ]

    @Test("a row digest is SHA-256 of the documented input, built with UTF-8 views as before")
    func rowDigestInput() {
        for (index, attributes) in Self.attributes.enumerated() {
            let resource = Resource(address: "tenant/t\(index)", kind: .tenant, parent: nil, attributes: attributes)
            var input: [UInt8] = Array(resource.kind.rawValue.utf8) + [0]
            for attribute in resource.attributes {
                let body: [UInt8]
                switch attribute.value {
                case .null: continue
                case .bool(let b): body = [UInt8(ascii: "b"), b ? UInt8(ascii: "1") : UInt8(ascii: "0")]
                case .int(let i): body = [UInt8(ascii: "i")] + Array(String(i).utf8)
                case .string(let s): body = [UInt8(ascii: "s")] + Array(s.utf8)
                case .list(let l): body = [UInt8(ascii: "l")] + Array(l.joined(separator: "\u{1F}").utf8)
                case .secret(let fingerprint): body = [UInt8(ascii: "x")] + Array(fingerprint.utf8)
                case .document(let sha256, _): body = [UInt8(ascii: "d")] + Array(sha256.utf8)
                }
                input += Array(attribute.name.utf8) + [0] + body + [0]
            }
            #expect(ResourceDigest.of(resource).bytes == SHA256.hash(input))
        }
    }

    @Test("applied values are the documented encoding, built with UTF-8 views as before")
    func appliedValuesEncoding() {
        func varint(_ value: Int) -> [UInt8] {
            var rest = UInt64(value), out: [UInt8] = []
            while rest >= 0x80 { out.append(UInt8(truncatingIfNeeded: rest) | 0x80); rest >>= 7 }
            return out + [UInt8(rest)]
        }
        func text(_ s: String) -> [UInt8] { varint(s.utf8.count) + Array(s.utf8) }
        for attributes in Self.attributes {
            var expected: [UInt8] = []
            for attribute in attributes {
                let tagged: (UInt8, [UInt8])
                switch attribute.value {
                case .null: continue
                case .bool(let b): tagged = (UInt8(ascii: "b"), [b ? 1 : 0])
                case .int(let i): tagged = (UInt8(ascii: "i"), (0..<8).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: i) >> (8 * UInt64($0))) })
                case .string(let s): tagged = (UInt8(ascii: "s"), text(s))
                case .secret(let fingerprint): tagged = (UInt8(ascii: "x"), text(fingerprint))
                case .document(let sha256, _): tagged = (UInt8(ascii: "d"), text(sha256))
                case .list(let items): tagged = (UInt8(ascii: "l"), varint(items.count) + items.flatMap(text))
                }
                expected += text(attribute.name) + [tagged.0] + tagged.1
            }
            #expect(AppliedValues.encode(attributes) == expected)
            #expect(AppliedValues.decode(expected)?.map(\.name) == attributes.filter { !$0.value.isNull }.map(\.name).sorted())
        }
    }
}
