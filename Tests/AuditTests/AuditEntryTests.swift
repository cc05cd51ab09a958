import Audit
import Testing

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// The worked example of docs/audit-chain.md.
let exampleEntry = AuditEntry(
    sequence: 1, time: "2026-11-22T19:00:00Z", actor: "alice", source: "git:3f2c1a9", planID: "plan-0001",
    action: "create", address: "tenant.acme", before: nil,
    after: ["name": "Acme Corp", "slug": "acme", "seats": 25], reason: "new tenant")

let exampleCanonical =
    #"{"action":"create","actor":"alice","address":"tenant.acme","after":{"name":"Acme Corp","seats":25,"slug":"acme"},"#
    + #""before":null,"planId":"plan-0001","reason":"new tenant","seq":1,"source":"git:3f2c1a9","#
    + #""time":"2026-11-22T19:00:00Z","v":1}"#

@Suite("audit entries")
struct AuditEntryTests {
    @Test func canonicalBytesMatchTheDocumentedExample() {
        #expect(text(exampleEntry.canonicalBytes()) == exampleCanonical)
    }

    @Test func omitsReasonWhenNilAndWritesNullForAbsentValues() {
        let delete = AuditEntry(
            sequence: 7, time: "2026-01-02T03:04:05Z", actor: "ci", source: "git:abc", planID: "p",
            action: "delete", address: "tenant.acme.team.x", before: ["name": "x"], after: nil)
        #expect(
            text(delete.canonicalBytes())
                == #"{"action":"delete","actor":"ci","address":"tenant.acme.team.x","after":null,"#
                + #""before":{"name":"x"},"planId":"p","seq":7,"source":"git:abc","time":"2026-01-02T03:04:05Z","v":1}"#
        )
    }

    @Test func roundTripsThroughCanonicalBytes() throws {
        let entries = [
            exampleEntry,
            AuditEntry(
                sequence: 42, time: "2024-02-29T23:59:59Z", actor: "bøb \u{2028}", source: "", planID: "plan\t1",
                action: "adopt", address: "tenant.\"q\"", before: ["secret": ["masked": true]],
                after: ["list": [1, -2, "e\u{301}"], "k": nil as JSONValue? ?? .null], reason: "line\nbreak"),
        ]
        for entry in entries {
            #expect(try AuditEntry(canonicalBytes: entry.canonicalBytes()) == entry)
        }
    }

    @Test func storesAnExplicitNullAsAbsent() throws {
        let entry = AuditEntry(
            sequence: 1, time: "2026-11-22T19:00:00Z", actor: "a", source: "s", planID: "p", action: "create",
            address: "x", before: .null, after: .null)
        #expect(entry.before == nil && entry.after == nil)
        #expect(try AuditEntry(canonicalBytes: entry.canonicalBytes()) == entry)
    }

    @Test(arguments: [
        ("[]", "entry is not a JSON object"),
        (#"{"action":"create""#, "entry is not valid JSON: byte 18: unexpected end of input"),
        (
            exampleCanonical.replacingOccurrences(#""seq":1,"#, with: ""),
            "missing field 'seq'"
        ),
        (
            exampleCanonical.replacingOccurrences(#""reason":"new tenant","#, with: #""reasons":"x","#),
            "unknown field 'reasons'"
        ),
        (
            exampleCanonical.replacingOccurrences(#""seq":1"#, with: #""seq":"1""#),
            "field 'seq' must be an integer"
        ),
        (exampleCanonical.replacingOccurrences(#""seq":1"#, with: #""seq":0"#), "field 'seq' must be at least 1"),
        (exampleCanonical.replacingOccurrences(#""v":1"#, with: #""v":3"#), "field 'v' must be 1 or 2"),
        (
            exampleCanonical.replacingOccurrences(#""actor":"alice""#, with: #""actor":null"#),
            "field 'actor' must be a string"
        ),
        (
            exampleCanonical.replacingOccurrences(#""reason":"new tenant""#, with: #""reason":null"#),
            "field 'reason' must be a string"
        ),
        (
            exampleCanonical.replacingOccurrences("2026-11-22T19:00:00Z", with: "2026-11-22T19:00:00+00:00"),
            "field 'time' must be RFC 3339 UTC with second precision (YYYY-MM-DDTHH:MM:SSZ)"
        ),
        (
            exampleCanonical.replacingOccurrences(#""seq":1"#, with: #""seq" : 1"#),
            "entry is not in canonical form (RFC 8785)"
        ),
        (
            exampleCanonical.replacingOccurrences(
                #""action":"create","actor":"alice""#, with: #""actor":"alice","action":"create""#),
            "entry is not in canonical form (RFC 8785)"
        ),
        (
            exampleCanonical.replacingOccurrences("Acme Corp", with: #"Acme\u0020Corp"#),
            "entry is not in canonical form (RFC 8785)"
        ),
        (exampleCanonical + "\n", "entry is not in canonical form (RFC 8785)"),
    ])
    func rejectsMalformedEntries(bytes: String, message: String) {
        #expect(bytes != exampleCanonical)
        #expect(throws: AuditEntryError(message)) { try AuditEntry(canonicalBytes: Array(bytes.utf8)) }
    }
}

@Suite("entry time")
struct AuditTimeTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00Z"),
        (1_795_374_000, "2026-11-22T19:00:00Z"),
        (951_827_696, "2000-02-29T12:34:56Z"),
        (-1, "1969-12-31T23:59:59Z"),
        (-62_135_596_800, "0001-01-01T00:00:00Z"),
        (253_402_300_799, "9999-12-31T23:59:59Z"),
    ])
    func formatsUnixSeconds(seconds: Int64, expected: String) {
        #expect(AuditTime.string(fromUnixSeconds: seconds) == expected)
        #expect(AuditTime.isValid(expected))
    }

    @Test func refusesYearsOutsideFourDigits() {
        #expect(AuditTime.string(fromUnixSeconds: -62_135_596_801) == nil)
        #expect(AuditTime.string(fromUnixSeconds: 253_402_300_800) == nil)
    }

    @Test(arguments: [
        "2026-11-22T19:00:00", "2026-11-22 19:00:00Z", "2026-11-22T19:00:00.5Z", "2026-11-22t19:00:00z",
        "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-11-22T24:00:00Z", "2026-11-22T19:60:00Z", "2026-12-31T23:59:60Z", "0000-01-01T00:00:00Z",
        "２026-11-22T19:00:00Z", "",
    ])
    func rejectsOtherTimeFormats(time: String) {
        #expect(!AuditTime.isValid(time))
    }
}

extension String {
    /// Foundation-free replacement, enough for building test inputs.
    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
