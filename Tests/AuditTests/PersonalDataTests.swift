import Audit
import Foundation
import Testing

/// Subject ids handed out in order, so the tokens are predictable.
private final class Subjects {
    var emails: [String: String] = [:]
    var values: [String: (subject: String, value: String)] = [:]

    func id(_ email: String) -> String {
        if let known = emails[email] { return known }
        let id = String(repeating: "\(emails.count + 1)", count: 32)
        emails[email] = id
        return id
    }

    func value(_ subject: String, _ value: String) -> String {
        let id = String(repeating: "a", count: 31) + "\(values.count)"
        values[id] = (subject, value)
        return id
    }

    func pseudonymizer() -> Pseudonymizer {
        Pseudonymizer(subject: { SubjectID(hex: self.id($0))! }, value: { self.value($0.hex, $1) })
    }

    func lookup(_ kind: PersonalData.TokenKind, _ id: String) -> String? {
        kind == .subject ? emails.first { $0.value == id }?.key : values[id]?.value
    }
}

private func entry(_ address: String, actor: String = "ci", source: String = "git:1", before: JSONValue? = nil, after: JSONValue? = nil,
                   reason: String? = nil) -> AuditEntry {
    AuditEntry(sequence: 7, time: "2026-11-22T19:00:00Z", actor: actor, source: source, planID: "p", action: "create", address: address,
               before: before, after: after, reason: reason)
}

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

@Suite("personal data in audit entries (format 2)")
struct PersonalDataTests {
    @Test("a member entry carries a subject token in its address and a value token for the guest's expiry, and reads back as written")
    func memberEntry() throws {
        let subjects = Subjects()
        var pseudonymizer = subjects.pseudonymizer()
        let plain = entry("tenant/acme/member/carol@contractor.io", actor: "Dana@Acme.com",
                          after: ["expires": "2027-01-31", "role": "guest"], reason: "tenant/acme/member/carol@contractor.io is new")
        let written = try pseudonymizer.pseudonymize(plain)
        let bytes = written.canonicalBytes()
        let ones = String(repeating: "1", count: 32), twos = String(repeating: "2", count: 32), value = String(repeating: "a", count: 31) + "0"
        #expect(text(bytes) == #"{"action":"create","actor":"~s:\#(ones)","address":"tenant/acme/member/~s:\#(twos)","#
            + #""after":{"expires":"~v:\#(value)","role":"guest"},"before":null,"planId":"p","#
            + #""reason":"tenant/acme/member/~s:\#(twos) is new","seq":7,"source":"git:1","time":"2026-11-22T19:00:00Z","v":2}"#)
        #expect(!text(bytes).contains("@"))
        let read = try AuditEntry(canonicalBytes: bytes)
        #expect(read == written)
        #expect(read.resolved(subjects.lookup) == { var e = plain; e.version = 2; return e }())
        #expect(read.tokens(.subject) == [ones, twos])
        #expect(read.tokens(.value) == [value])
    }

    @Test("one subject per person: the same address in a member and a team member entry gets the same token")
    func oneSubjectPerPerson() throws {
        let subjects = Subjects()
        var pseudonymizer = subjects.pseudonymizer()
        let member = try pseudonymizer.pseudonymize(entry("tenant/acme/member/alice@acme.com"))
        let team = try pseudonymizer.pseudonymize(entry("tenant/globex/team/core/member/alice@acme.com", after: ["role": "lead"]))
        #expect(member.address.hasSuffix(team.address.split(separator: "/").last.map(String.init) ?? "?"))
        #expect(subjects.emails.count == 1)
    }

    @Test("an erased subject reads [erased]; the entry's bytes do not change")
    func erased() throws {
        let subjects = Subjects()
        var pseudonymizer = subjects.pseudonymizer()
        let written = try pseudonymizer.pseudonymize(entry("tenant/acme/member/alice@acme.com", before: ["role": "owner"]))
        let bytes = written.canonicalBytes()
        let read = try AuditEntry(canonicalBytes: bytes)
        #expect(read.resolved { _, _ in nil }.address == "tenant/acme/member/[erased]")
        #expect(read.canonicalBytes() == bytes)
    }

    @Test("a literal '~' is doubled and reads back as one")
    func tildes() throws {
        var pseudonymizer = Subjects().pseudonymizer()
        let plain = entry("tenant/acme/team/x", actor: "~bot", after: ["description": "~s:00000000000000000000000000000000 is not a token"])
        let written = try pseudonymizer.pseudonymize(plain)
        #expect(written.actor == "~~bot")
        let read = try AuditEntry(canonicalBytes: written.canonicalBytes())
        #expect(read.tokens(.subject).isEmpty)
        #expect(read.resolved { _, _ in "LEAK" }.after == plain.after)
        #expect(read.resolved { _, _ in "LEAK" }.actor == "~bot")
    }

    @Test("e-mail-shaped runs", arguments: [
        ("mail bob@x.com now", ["bob@x.com"]),
        ("'o'brien@acme.co.uk'.", ["o'brien@acme.co.uk"]),
        ("a@b.com@c.org", ["a@b.com"]),
        ("x@localhost, @acme/logo, user@.com, u@com., https://cdn/@scope/p", []),
        ("tenant/a/member/Z.Y+tag@Sub-1.Example.ORG;", ["Z.Y+tag@Sub-1.Example.ORG"]),
    ])
    func shapes(input: String, expected: [String]) {
        #expect(PersonalData.emailShapes(in: input) == expected)
    }

    static let malformed: [(bytes: String, message: String)] = [
        (#"{"action":"create","actor":"ci","address":"tenant/a/member/bob@x.com","after":null,"before":null,"planId":"p","seq":1,"source":"s","time":"2026-11-22T19:00:00Z","v":2}"#,
         "field 'address' holds an e-mail address instead of a subject token"),
        (#"{"action":"create","actor":"ci","address":"tenant/a/member/bob","after":null,"before":null,"planId":"p","seq":1,"source":"s","time":"2026-11-22T19:00:00Z","v":2}"#,
         "field 'address' names a member without a subject token"),
        (#"{"action":"create","actor":"@bob","address":"x","after":null,"before":null,"planId":"p","seq":1,"source":"s","time":"2026-11-22T19:00:00Z","v":2}"#,
         "field 'actor' names a person without a subject token"),
        (#"{"action":"create","actor":"ci","address":"x","after":{"d":"~x"},"before":null,"planId":"p","seq":1,"source":"s","time":"2026-11-22T19:00:00Z","v":2}"#,
         "field 'after' has a '~' that starts no token and is not doubled"),
        (#"{"action":"create","actor":"ci","address":"x","after":null,"before":null,"planId":"p","seq":1,"source":"req by eve@x.org","time":"2026-11-22T19:00:00Z","v":2}"#,
         "field 'source' holds an e-mail address instead of a subject token"),
        (#"{"action":"create","actor":"ci","address":"tenant/a/member/~s:0123456789abcdef0123456789abcdef","after":{"expires":"2027-01-01"},"before":null,"planId":"p","seq":1,"source":"s","time":"2026-11-22T19:00:00Z","v":2}"#,
         "a member's 'expires' must be null or a value token"),
        (#"{"action":"create","actor":"ci","address":"tenant/a/member/~s:0123456789ABCDEF0123456789abcdef","after":null,"before":null,"planId":"p","seq":1,"source":"s","time":"2026-11-22T19:00:00Z","v":2}"#,
         "field 'address' has a '~' that starts no token and is not doubled"),
        // A combining mark after the '/' (one Character with it): the address is still cut there, as Python cuts it.
        ("{\"action\":\"create\",\"actor\":\"ci\",\"address\":\"tenant/a/member/\u{301}bob\",\"after\":null,\"before\":null,\"planId\":\"p\",\"seq\":1,\"source\":\"s\",\"time\":\"2026-11-22T19:00:00Z\",\"v\":2}",
         "field 'address' names a member without a subject token"),
    ]

    @Test("member addresses are cut at their first five '/' bytes", arguments: [
        ("tenant/acme/member/bob@x.com", "tenant/acme/member/", "bob@x.com", true),
        ("tenant/acme/member/a/b/c/d", "tenant/acme/member/", "a/b/c/d", true),
        ("tenant/acme/team/core/member/bob@x.com", "tenant/acme/team/core/member/", "bob@x.com", false),
        ("tenant/acme/team/core/member/a/b", "tenant/acme/team/core/member/", "a/b", false),
        ("tenant/acme/member/\u{301}bob", "tenant/acme/member/", "\u{301}bob", true),
        ("tenant/\u{301}/team/\u{301}/member/\u{301}", "tenant/\u{301}/team/\u{301}/member/", "\u{301}", false),
        ("tenant//member/x", "tenant//member/", "x", true),
    ])
    func memberAddresses(address: String, prefix: String, email: String, isTenantMember: Bool) throws {
        let member = try #require(PersonalData.memberAddress(address))
        #expect(member.prefix == prefix && member.email == email && member.isTenantMember == isTenantMember)
        #expect(member.prefix + member.email == address)
    }

    @Test("other addresses are not member addresses", arguments: [
        "tenant/acme/member/", "tenant/acme/member", "tenant/acme/team/core/member/", "tenant/acme/team/core/members/x",
        "tenant/acme/team/core/member", "tenant/acme/role/x", "tenants/acme/member/x", "tenant", "", "role/member/x",
        "tenant/acme/team/core/lead/x", "tenant/acme/member\u{301}/x",
    ])
    func notMemberAddresses(address: String) {
        #expect(PersonalData.memberAddress(address) == nil)
    }

    @Test("format 2 rules reject personal values left in the bytes", arguments: malformed)
    func rejects(bytes: String, message: String) {
        #expect(throws: AuditEntryError(message)) { try AuditEntry(canonicalBytes: Array(bytes.utf8)) }
    }

    /// The same cases through tools/verify_audit.py's parser: the independent verifier gives the same verdicts and words.
    @Test("tools/verify_audit.py applies the same format 2 rules with the same words")
    func pythonAgrees() throws {
        var pseudonymizer = Subjects().pseudonymizer()
        let valid = try pseudonymizer.pseudonymize(entry("tenant/acme/member/carol@contractor.io", actor: "~x Dana@Acme.com", source: "ticket 7 from eve@x.org",
                                                        after: ["expires": "2027-01-31", "note": "a~b 'o'brien@acme.co.uk'"], reason: "a@b.com@c.org"))
        var cases = Self.malformed.map { ($0.bytes, $0.message) }
        cases.append((text(valid.canonicalBytes()), "ok"))
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = """
            import sys; sys.path.insert(0, sys.argv[1]); import verify_audit
            for line in sys.stdin.read().split("\\n"):
                try:
                    verify_audit.parse_entry(line.encode("utf-8")); print("ok")
                except verify_audit.Malformed as error:
                    print(error)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, root.appendingPathComponent("tools").path]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(cases.map(\.0).joined(separator: "\n").utf8))
        try input.fileHandleForWriting.close()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(printed.split(separator: "\n").map(String.init) == cases.map(\.1))
        for (bytes, message) in cases {
            do {
                _ = try AuditEntry(canonicalBytes: Array(bytes.utf8))
                #expect(message == "ok")
            } catch {
                #expect(error.message == message)
            }
        }
    }

    @Test("format 1 entries keep verifying as they are, e-mail addresses and all")
    func formatOne() throws {
        let plain = entry("tenant/acme/member/alice@acme.com", actor: "bob@acme.com")
        #expect(plain.version == 1)
        #expect(try AuditEntry(canonicalBytes: plain.canonicalBytes()) == plain)
        #expect(plain.resolved { _, _ in nil } == plain)
    }
}
