import Testing

@testable import Reconciler

/// `--target`/`--exclude`/`audit log --address` patterns: right answers, and no backtracking.
@Suite("address patterns")
struct AddressPatternTests {
    /// The definition, by backtracking (exponential on many `**`): a reference for short inputs.
    static func reference(_ pattern: ArraySlice<Substring>, _ parts: ArraySlice<Substring>) -> Bool {
        guard let first = pattern.first else { return parts.isEmpty }
        if first == "**" {
            return (0...parts.count).contains { reference(pattern.dropFirst(), parts.dropFirst($0)) }
        }
        guard let part = parts.first, AddressPattern(String(first)).matches(String(part)) else { return false }
        return reference(pattern.dropFirst(), parts.dropFirst())
    }

    static let patterns = ["**", "tenant/**", "**/x", "tenant/*/member/*", "**/member/**", "a/**/b/**/c", "**/**/a", "a/**", "*/*",
                           "tenant/acme", "**/b/**", "a/**/**/b"]
    static let addresses = ["tenant/acme", "tenant/acme/member/a@acme.com", "a/b/c", "a/x/b/y/c", "a/b", "x", "a", "b/a", "a/a/a/b",
                            "tenant/acme/team/x", "a/b/b/c", "", "a//b"]

    @Test("matches and selects agree with the backtracking definition", arguments: patterns)
    func agreesWithDefinition(_ pattern: String) {
        let segments = pattern.split(separator: "/", omittingEmptySubsequences: false)
        for address in Self.addresses {
            let parts = address.split(separator: "/", omittingEmptySubsequences: false)
            let expected = Self.reference(segments[...], parts[...])
            #expect(AddressPattern(pattern).matches(address) == expected, "\(pattern) ~ \(address)")
            let below = pattern.hasSuffix("**") ? expected : (1...parts.count).contains { Self.reference(segments[...], parts.prefix($0)) }
            #expect(AddressPattern(pattern).selects(address) == below, "\(pattern) selects \(address)")
        }
    }

    @Test("a pattern of many '**' against a long address costs at most one segment match per pattern segment and address segment")
    func noBacktracking() {
        let pattern = AddressPattern(Array(repeating: "**", count: 40).joined(separator: "/") + "/x/y")
        let segments = 42
        for (address, expected) in [(Array(repeating: "a", count: 5_000).joined(separator: "/") + "/x", false),
                                    (Array(repeating: "a", count: 5_000).joined(separator: "/") + "/x/y", true)] {
            let parts = address.split(separator: "/").count
            for orAPrefix in [false, true] {
                var steps = 0
                #expect(pattern.matches(address, orAPrefix: orAPrefix, steps: &steps) == expected)
                #expect(steps <= parts * segments, "\(steps) segment matches for \(parts) segments")
            }
        }
    }
}
