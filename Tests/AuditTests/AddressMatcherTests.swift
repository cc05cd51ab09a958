import Testing

@testable import Audit

@Suite("finding and redacting a person's address (privacy forget, export)")
struct AddressMatcherTests {
    @Test("an address is found in any case, and only where it stands as an address of its own",
          arguments: [
              ("bob@acme.com", true), ("Bob@ACME.com", true), ("to: bob@acme.com.", true), ("<bob@acme.com>", true),
              (#"{"note":"line\nbob@acme.com"}"#, true), (#"{"note":"\u00e9bob@acme.com"}"#, true), ("'bob@acme.com'", true),
              ("jimbob@acme.com", false), ("bob@acme.com.evil.org", false), ("bob@acme.community", false), ("x.bob@acme.com", false),
              ("bob-acme.com", false), ("bob@acme-com", false),
          ])
    func found(text: String, expected: Bool) {
        #expect(AddressMatcher(["bob@acme.com"]).matches(Array(text.utf8)) == expected, "\(text)")
    }

    @Test("redaction replaces each occurrence, in any case, and leaves other people's addresses")
    func redaction() {
        let matcher = AddressMatcher(["Bob@Acme.com", "dave@localhost"])
        #expect(matcher.addresses == ["bob@acme.com", "dave@localhost"])
        #expect(matcher.redacting("by BOB@acme.com for jimbob@acme.com, bob@acme.com; Dave@Localhost") == "by [erased] for jimbob@acme.com, [erased]; [erased]")
        #expect(matcher.redacting("nobody here") == nil)
        #expect(AddressMatcher(["dave smith@corp"]).redacting("actor Dave Smith@Corp") == "actor [erased]")
    }

    @Test("the canonical form of an address is lower case; lower-case ASCII is kept as it is")
    func canonical() {
        #expect(PersonalData.canonicalAddress("Dave@Acme.COM") == "dave@acme.com")
        #expect(PersonalData.canonicalAddress("dave@acme.com") == "dave@acme.com")
        #expect(AddressMatcher.addresses(in: "from Carol@X.io and bob@acme.com") == ["carol@x.io", "bob@acme.com"])
    }
}
