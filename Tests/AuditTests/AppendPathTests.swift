import Audit
import Crypto
import Testing

/// The apply's hot path writes entries and hashes with its own code (no JSON object built, one
/// SHA-256 context reused); these pin it to the general definitions byte for byte.
@Suite("audit append path")
struct AppendPathTests {
    /// Entries covering every member and every kind of value: escapes, non-ASCII, combining marks,
    /// U+2028, extreme integers, nested values, with and without `reason`, both versions.
    static let entries: [AuditEntry] = {
        let values: [JSONValue?] = [
            nil, .bool(true), .bool(false), .int(0), .int(-1), .int(Int64.min), .int(Int64.max), .string(""),
            .string("quote \" backslash \\ controls \u{0}\u{1}\u{8}\u{9}\u{A}\u{B}\u{C}\u{D}\u{1F} del \u{7F}"),
            .string("bøb e\u{301} \u{2028}\u{2029} 🦆"), ["masked": true, "a": [1, "x", nil as JSONValue? ?? .null]],
            [["k": "v"], [], [:]],
        ]
        var entries: [AuditEntry] = []
        for (index, value) in values.enumerated() {
            var entry = AuditEntry(
                sequence: Int64(index) * 7_919 + 1, time: "2026-12-07T03:04:05Z", actor: index.isMultiple(of: 2) ? "ci \"bot\"" : "ålice",
                source: "git:\(index)\t", planID: "plan-\(index)", action: ["create", "update", "delete"][index % 3],
                address: "tenant/t\(index)/member/m\u{301}@example.com", before: values[(index + 3) % values.count], after: value,
                reason: index.isMultiple(of: 3) ? nil : "line\nbreak \u{0}")
            entry.version = index.isMultiple(of: 2) ? 1 : 2
            entries.append(entry)
        }
        return entries
    }()

    @Test func canonicalBytesAreTheCanonicalEncodingOfTheEntryObject() throws {
        for entry in Self.entries {
            let bytes = entry.canonicalBytes()
            #expect(bytes == CanonicalJSON.encode(entry.jsonValue))
            // And the strict reader takes them back (a version 2 entry with personal data refuses, as it should).
            if entry.version == 1 { #expect(try AuditEntry(canonicalBytes: bytes) == entry) }
        }
    }

    @Test(arguments: [Int64.min, Int64.min + 1, -10, -9, -1, 0, 1, 9, 10, 99, 100, 1_000_000_007, Int64.max - 1, Int64.max])
    func integersAreWrittenAsStringPrintsThem(value: Int64) {
        #expect(CanonicalJSON.encode(.int(value)) == Array(String(value).utf8))
    }

    @Test func oneContextGivesTheOneShotLeafChainAndNodeHashes() {
        let hasher = AuditChainHasher()
        var previous = AuditHash.genesis
        for entry in Self.entries {
            let bytes = entry.canonicalBytes()
            let (leaf, chain) = hasher.leafAndChain(previous: previous, entry: bytes)
            #expect(leaf == AuditHash.leaf(bytes))
            #expect(chain == AuditHash.chain(previous: previous, leaf: leaf))
            #expect(leaf == SHA256.hash([0x00] + bytes))
            #expect(hasher.node(previous, leaf) == MerkleHash.node(previous, leaf))
            previous = chain
        }
        #expect(hasher.leafAndChain(previous: previous, entry: []).leaf == SHA256.hash([0x00]))
    }

    @Test func appendingWithAHasherCompletesTheSameNodes() {
        var plain = CompactRange()
        var reused = CompactRange()
        let hasher = AuditChainHasher()
        var leaves: [[UInt8]] = []
        for size in 1...70 {
            let leaf = AuditHash.leaf(Array("entry \(size)".utf8))
            var expected: [String] = []
            var got: [String] = []
            plain.append(leafHash: leaf) { level, index, hash in expected.append("\(level):\(index):\(hash)") }
            reused.append(leafHash: leaf, hasher: hasher) { level, index, hash in got.append("\(level):\(index):\(hash)") }
            #expect(got == expected)
            leaves.append(leaf)
            #expect(reused.root == MerkleHash.root(leafHashes: leaves[...]))
        }
    }
}
