extension PersonalData {
    /// The form in which an address names a data subject: the whole address in lower case, as the
    /// configuration writes member addresses (docs/audit-chain.md 8.1). `Dave@Acme.com` as an actor,
    /// inside a description and as a member are one person.
    public static func canonicalAddress(_ address: String) -> String {
        // Read in place (the pseudonymizer asks for every address it writes): lowercased only when needed.
        func needsLowering(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool { bytes.contains { (65...90).contains($0) || $0 >= 128 } }
        let lowering = address.utf8.withContiguousStorageIfAvailable(needsLowering) ?? Array(address.utf8).withUnsafeBufferPointer(needsLowering)
        return lowering ? address.lowercased() : address
    }

    /// Every address-shaped run of `bytes`, lower case (ASCII), with its range: around each `@`, the
    /// longest run of local-part bytes before it and of domain bytes after it, trimmed as in an
    /// e-mail-shaped run (docs/audit-chain.md 8.2) but without asking the domain for a dot (an actor
    /// such as `dave@localhost` is a subject too). A run right after a JSON escape (`\n`, `\u00e9`) starts
    /// after the escape: webhook payloads and audit entries are JSON, and `"…\nbob@x.com"` names bob.
    /// Runs of neighbouring `@`s may overlap.
    static func addressRuns(in bytes: [UInt8]) -> [(range: Range<Int>, address: String)] {
        var runs: [(Range<Int>, String)] = []
        for at in bytes.indices where bytes[at] == UInt8(ascii: "@") {
            guard let run = addressRun(around: at, in: bytes) else { continue }
            runs.append((run, String(decoding: bytes[run].map(asciiLowercased), as: UTF8.self)))
        }
        return runs
    }

    /// The address-shaped run around the `@` at `at` (see ``addressRuns(in:)``), or nil.
    static func addressRun(around at: Int, in bytes: [UInt8]) -> Range<Int>? {
        run(around: at, in: bytes, afterEscapes: true)
    }

    /// The first occurrence of `needle` (lower case) in `bytes` at or after `start`, ignoring ASCII case.
    static func firstFolded(_ needle: [UInt8], in bytes: [UInt8], from start: Int = 0) -> Range<Int>? {
        guard let first = needle.first, bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
        var i = start
        let last = bytes.count - needle.count
        while i <= last {
            if asciiLowercased(bytes[i]) == first {
                var j = 1
                while j < needle.count, asciiLowercased(bytes[i + j]) == needle[j] { j += 1 }
                if j == needle.count { return i..<(i + needle.count) }
            }
            i += 1
        }
        return nil
    }

    static func isHexDigit(_ b: UInt8) -> Bool { (48...57).contains(b) || (97...102).contains(b) || (65...70).contains(b) }

    static func asciiLowercased(_ b: UInt8) -> UInt8 { (65...90).contains(b) ? b + 32 : b }
}

/// Finds and redacts a set of people's addresses in any text or bytes (a subject's address, a
/// webhook payload, a delivery's response, a database file), in any case, and only where each stands
/// as an address of its own: forgetting `bob@x.com` never touches `jimbob@x.com` or `bob@x.com.evil.org`.
public struct AddressMatcher: Sendable {
    /// The canonical addresses (``PersonalData/canonicalAddress(_:)``).
    public let addresses: Set<String>
    /// Those that are one address-shaped run of their own, found by their runs.
    private let shaped: Set<String>
    /// The others (an actor such as `Dave Smith@corp`), found as lower-case byte strings.
    private let plain: [(address: String, bytes: [UInt8])]

    public init(_ addresses: some Sequence<String>) {
        self.addresses = Set(addresses.map(PersonalData.canonicalAddress))
        var shaped: Set<String> = [], plain: [(String, [UInt8])] = []
        for address in self.addresses {
            let bytes = Array(address.utf8)
            if let run = PersonalData.addressRuns(in: bytes).first, run.range == bytes.indices { shaped.insert(address) } else { plain.append((address, bytes)) }
        }
        self.shaped = shaped
        self.plain = plain.sorted { $0.0 < $1.0 }
    }

    /// The longest address, in bytes.
    public var longest: Int { addresses.map(\.utf8.count).max() ?? 0 }

    /// Up to this many addresses, each is searched for (fast on large inputs with few hits); more are found
    /// in one pass over the input's address runs.
    public static let searchedAddresses = 8

    /// Every place in `bytes` where an address of the set stands, with the address.
    private func occurrences(in bytes: [UInt8], firstOnly: Bool) -> [(range: Range<Int>, address: String)] {
        guard bytes.contains(UInt8(ascii: "@")) else { return [] }
        var found: [(range: Range<Int>, address: String)] = []
        if shaped.count > Self.searchedAddresses {
            found = PersonalData.addressRuns(in: bytes).filter { shaped.contains($0.address) }
        } else {
            for address in shaped {
                let needle = Array(address.utf8)
                guard let at = needle.firstIndex(of: UInt8(ascii: "@")) else { continue }
                var position = 0
                while let range = PersonalData.firstFolded(needle, in: bytes, from: position) {
                    if PersonalData.addressRun(around: range.lowerBound + at, in: bytes) == range {
                        found.append((range, address))
                        if firstOnly { break }
                    }
                    position = range.lowerBound + 1
                }
            }
        }
        for (address, needle) in plain {
            var position = 0
            while let range = PersonalData.firstFolded(needle, in: bytes, from: position) {
                found.append((range, address))
                if firstOnly { break }
                position = range.upperBound
            }
        }
        return found
    }

    /// Where in `bytes` each address of the set stands, sorted and without overlaps.
    private func ranges(in bytes: [UInt8]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        for range in occurrences(in: bytes, firstOnly: false).map(\.range).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = result.last, range.lowerBound < last.upperBound {
                result[result.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }

    /// The addresses of the set that `bytes` holds.
    public func found(in bytes: [UInt8]) -> Set<String> { Set(occurrences(in: bytes, firstOnly: true).map(\.address)) }

    /// The addresses of the set that `text` holds.
    public func found(in text: String) -> Set<String> { found(in: Array(text.utf8)) }

    /// Whether `bytes` holds any address of the set.
    public func matches(_ bytes: [UInt8]) -> Bool { !found(in: bytes).isEmpty }

    /// `bytes` with every address of the set replaced by `marker`, or nil when it holds none.
    public func redacting(_ bytes: [UInt8], with marker: String = PersonalData.erasedMarker) -> [UInt8]? {
        let ranges = ranges(in: bytes)
        guard !ranges.isEmpty else { return nil }
        var result: [UInt8] = []
        var position = 0
        for range in ranges {
            result += bytes[position..<range.lowerBound]
            result += Array(marker.utf8)
            position = range.upperBound
        }
        return result + bytes[position...]
    }

    /// `text` with every address of the set replaced by `marker`, or nil when it holds none.
    public func redacting(_ text: String, with marker: String = PersonalData.erasedMarker) -> String? {
        redacting(Array(text.utf8), with: marker).map { String(decoding: $0, as: UTF8.self) }
    }
}

extension AddressMatcher {
    /// Every address-shaped run of `text`, in canonical form.
    public static func addresses(in text: String) -> Set<String> { Set(PersonalData.addressRuns(in: Array(text.utf8)).map(\.address)) }
}
