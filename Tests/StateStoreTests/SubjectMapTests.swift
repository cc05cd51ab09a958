import Audit
import Testing

@testable import StateStore

@Suite("the subjects a transaction knows (SubjectMap)")
struct SubjectMapTests {
    /// `address`'s bytes to `body`.
    func bytes<T>(_ address: String, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        var address = address
        return address.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }

    @Test("every address added is found with its own id, byte for byte, also after the table has grown many times; others are not")
    func addAndFind() {
        var map = SubjectMap()
        // Addresses that share prefixes, lengths and suffixes, so that equal 32-bit hash tags are compared by bytes too.
        let addresses = (0..<50_000).map { "user\($0 % 1000)@t\($0 / 1000).example.com" } + ["", "a", "é@x.org", "e\u{301}@x.org"]
        for (index, address) in addresses.enumerated() {
            guard case .absent(let slot, let tag) = bytes(address, { map.probe($0) }) else {
                Issue.record("\(address) found before it was added")
                return
            }
            var text = address
            #expect(text.withUTF8 { map.add(UnsafeRawBufferPointer($0), id: SubjectID(high: UInt64(index), low: ~UInt64(index)), at: slot, tag: tag) } == index)
        }
        #expect(map.count == addresses.count)
        // In the order added (the first one far from the last added, the others next to the one found before), twice each.
        for (index, address) in addresses.enumerated() {
            #expect(map.id(of: address) == SubjectID(high: UInt64(index), low: ~UInt64(index)))
            #expect(map.id(of: address) == SubjectID(high: UInt64(index), low: ~UInt64(index)))
            #expect(map.withAddress(at: index) { Array($0) } == Array(address.utf8))
        }
        // Backwards in steps of 7 (among the neighbours searched first), then in steps of 1,001 (never among them).
        for step in [-7, 1_001] {
            for index in stride(from: step < 0 ? addresses.count - 1 : 0, to: step < 0 ? -1 : addresses.count, by: step) {
                #expect(map.id(of: addresses[index]) == SubjectID(high: UInt64(index), low: ~UInt64(index)))
            }
        }
        // Bytes decide: the decomposed spelling is another address (as the database's unique index compares them).
        #expect(map.id(of: "é@x.org") != map.id(of: "e\u{301}@x.org"))
        for absent in ["user1000@t0.example.com", "user1@t50.example.com", "USER1@T0.EXAMPLE.COM", "user1@t0.example.co", " user1@t0.example.com"] {
            #expect(map.id(of: absent) == nil)
        }
    }

    @Test("adding an address it has already keeps the first id")
    func addIfAbsent() {
        var map = SubjectMap()
        let first = SubjectID(high: 1, low: 2), second = SubjectID(high: 3, low: 4)
        var address = "alice@acme.com"
        address.withUTF8 { map.addIfAbsent(UnsafeRawBufferPointer($0), id: first) }
        address.withUTF8 { map.addIfAbsent(UnsafeRawBufferPointer($0), id: second) }
        #expect(map.count == 1 && map.id(of: "alice@acme.com") == first)
    }

}
