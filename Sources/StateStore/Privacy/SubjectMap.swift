import Audit
import Foundation

/// Canonical e-mail address → subject id, for the subjects a transaction has looked up or created,
/// in a few flat arrays: the addresses' bytes one after another, their ids, and an open-addressing
/// table of positions. A first apply of 10,000 tenants holds 210,000 subjects: as a dictionary of
/// strings that was 420,000 objects to allocate, retain, compare in memory far apart and free,
/// which cost a tenth of format 2's time; here a lookup hashes the address once (the standard
/// library's seeded hasher, so addresses chosen to collide cannot be crafted), looks among the
/// neighbours of the subject found last, then reads one slot, and compares bytes only when 32 bits
/// of hash match.
///
/// Addresses are equal when their bytes are (the lower case of `PersonalData.canonicalAddress`,
/// as SQLite's and PostgreSQL's unique index on `orgctl_subjects.email` compares them).
struct SubjectMap {
    /// 0: empty; otherwise the low 32 bits of the address's hash, then the subject's position + 1. The bits
    /// are also in ``tags``: kept in the slot, a probe passing other subjects' slots reads nothing else.
    private var slots: [UInt64] = Array(repeating: 0, count: 1024)
    /// The low 32 bits of each address's hash, by position: the neighbours of the subject found or added
    /// last are searched first (``nearby``).
    private var tags: [UInt32] = []
    /// The position found or added last.
    private var last = 0
    /// Positions searched on each side of ``last`` before the table.
    static let nearby = 32
    /// The ids, by position.
    private(set) var ids: [SubjectID] = []
    /// Where each address ends in `bytes` (it starts where the one before it ends).
    private var ends: [Int] = []
    private var bytes: [UInt8] = []

    var count: Int { ids.count }

    /// Where `address` is, or the slot a new subject of it would take.
    enum Probe {
        case found(Int)
        case absent(slot: Int, tag: UInt32)
    }

    /// Looks `address` up.
    mutating func probe(_ address: UnsafeRawBufferPointer) -> Probe {
        var hasher = Hasher()
        hasher.combine(bytes: address)
        let tag = UInt32(truncatingIfNeeded: hasher.finalize())
        // An apply names the people of one tenant together (its members, later its teams' members), and
        // adds them in that order: their neighbours' tags, bytes and ids are in the processor's caches,
        // while a slot of a table of megabytes, read at random, is not (it was nine tenths of a lookup).
        for position in max(0, last - Self.nearby)..<min(tags.count, last + Self.nearby) where tags[position] == tag && isAddress(at: position, address) {
            last = position
            return .found(position)
        }
        let mask = slots.count - 1
        var slot = Int(tag) & mask
        while true {
            let stored = slots[slot]
            if stored == 0 { return .absent(slot: slot, tag: tag) }
            let position = Int(truncatingIfNeeded: stored & 0xffff_ffff) - 1
            if UInt32(truncatingIfNeeded: stored >> 32) == tag, isAddress(at: position, address) {
                last = position
                return .found(position)
            }
            slot = (slot + 1) & mask
        }
    }

    /// Whether the address at `position` is `address`.
    private func isAddress(at position: Int, _ address: UnsafeRawBufferPointer) -> Bool {
        withAddress(at: position) { Self.equal($0, address) }
    }

    private static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let first = a.baseAddress, let second = b.baseAddress else { return true }
        return memcmp(first, second, a.count) == 0
    }

    /// Adds `address` with `id` where ``probe(_:)`` found it absent (nothing added since), and returns its position.
    @discardableResult
    mutating func add(_ address: UnsafeRawBufferPointer, id: SubjectID, at slot: Int, tag: UInt32) -> Int {
        let position = ids.count
        ids.append(id)
        bytes.append(contentsOf: address)
        ends.append(bytes.count)
        tags.append(tag)
        slots[slot] = UInt64(tag) << 32 | UInt64(position + 1)
        last = position
        // At most half full, so a probe ends after a slot or two.
        if ids.count * 2 > slots.count { grow() }
        return position
    }

    /// Adds `address` with `id` unless it is there already.
    mutating func addIfAbsent(_ address: UnsafeRawBufferPointer, id: SubjectID) {
        if case .absent(let slot, let tag) = probe(address) { add(address, id: id, at: slot, tag: tag) }
    }

    /// The id of `address`, or nil.
    mutating func id(of address: String) -> SubjectID? {
        var address = address
        return address.withUTF8 { address in
            if case .found(let position) = probe(UnsafeRawBufferPointer(address)) { ids[position] } else { nil }
        }
    }

    /// `body` applied to the bytes of the address at `position`.
    func withAddress<T>(at position: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let start = position == 0 ? 0 : ends[position - 1]
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<ends[position]])) }
    }

    /// Twice the slots, placed again by the hash bits they keep (no address is read again).
    private mutating func grow() {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        let mask = slots.count - 1
        for stored in old where stored != 0 {
            var slot = Int(truncatingIfNeeded: stored >> 32) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = stored
        }
    }
}
