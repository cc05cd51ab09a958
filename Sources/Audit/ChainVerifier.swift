/// One row of the audit table (`orgctl_audit`): sequence, canonical entry bytes, the previous
/// entry's hash and this entry's hash.
public struct StoredAuditRecord: Sendable, Equatable {
    public var sequence: Int64
    public var entry: [UInt8]
    public var previousHash: [UInt8]
    public var hash: [UInt8]

    public init(sequence: Int64, entry: [UInt8], previousHash: [UInt8], hash: [UInt8]) {
        self.sequence = sequence
        self.entry = entry
        self.previousHash = previousHash
        self.hash = hash
    }

    /// The record to append for `entry` after a chain whose head is `previousHash`
    /// (``AuditHash/genesis`` for the first entry).
    public init(entry: AuditEntry, previousHash: [UInt8]) {
        let bytes = entry.canonicalBytes()
        self.init(
            sequence: entry.sequence, entry: bytes, previousHash: previousHash,
            hash: AuditHash.chain(previous: previousHash, leaf: AuditHash.leaf(bytes)))
    }
}

/// The first place an audit chain fails verification.
public struct ChainBreak: Sendable, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable, CustomStringConvertible {
        /// The record's sequence is not the next one: a record is missing, moved or duplicated.
        case sequenceGap(expected: Int64)
        /// The stored previous hash is not the hash of the preceding record (or genesis).
        case previousHashMismatch
        /// The stored hash is not `SHA-256(previous hash ‖ leaf hash of the entry bytes)`.
        case hashMismatch
        /// The entry's `seq` field differs from the record's sequence.
        case entrySequenceMismatch
        /// The entry bytes are not a well-formed canonical entry.
        case malformedEntry(String)

        public var description: String {
            switch self {
            case .sequenceGap(let expected): "sequence gap: expected entry \(expected)"
            case .previousHashMismatch: "previous hash does not match the hash of the preceding entry"
            case .hashMismatch: "hash does not match the entry"
            case .entrySequenceMismatch: "seq field of the entry does not match its position"
            case .malformedEntry(let message): "malformed entry: \(message)"
            }
        }
    }

    /// The sequence number of the record at which the problem was found.
    public var sequence: Int64
    public var problem: Problem

    public init(sequence: Int64, problem: Problem) {
        self.sequence = sequence
        self.problem = problem
    }

    /// `broken at entry N: <problem>`, the same words tools/verify_audit.py prints.
    public var description: String { "broken at entry \(sequence): \(problem)" }
}

/// Verifies an audit chain record by record, in sequence order, in O(1) memory.
///
/// For each record, in this order: its sequence is the next one (1, 2, 3, …); its previous
/// hash equals the hash of the record before (``AuditHash/genesis`` for the first); its hash
/// equals `chain(previous:, leaf(entry))`; its entry is a well-formed canonical entry whose
/// `seq` equals the record's sequence. Only the first problem is reported: once broken, every
/// later call returns that same break and the verifier's ``count`` and ``head`` stay at the
/// last good record.
public struct ChainVerifier: Sendable {
    /// How many records verified so far.
    public private(set) var count: Int64 = 0
    /// The hash of the last verified record (``AuditHash/genesis`` before the first).
    public private(set) var head: [UInt8] = AuditHash.genesis
    /// The break found, if any.
    public private(set) var firstBreak: ChainBreak?
    public init() {}

    public mutating func check(_ record: StoredAuditRecord) -> ChainBreak? {
        if let firstBreak { return firstBreak }
        if let problem = problem(with: record) {
            let found = ChainBreak(sequence: record.sequence, problem: problem)
            firstBreak = found
            return found
        }
        count += 1
        head = record.hash
        return nil
    }

    private func problem(with record: StoredAuditRecord) -> ChainBreak.Problem? {
        guard record.sequence == count + 1 else { return .sequenceGap(expected: count + 1) }
        guard record.previousHash == head else { return .previousHashMismatch }
        guard record.hash == AuditHash.chain(previous: head, leaf: AuditHash.leaf(record.entry)) else {
            return .hashMismatch
        }
        let entry: AuditEntry
        do {
            entry = try AuditEntry(canonicalBytes: record.entry)
        } catch {
            return .malformedEntry(error.message)
        }
        guard entry.sequence == record.sequence else { return .entrySequenceMismatch }
        return nil
    }
}
