public import Audit
import Crypto
import Dispatch
import Foundation
import Synchronization

/// The audit chain's hashes and linkage, checked in the snapshot a state was read from.
public enum AuditChainCheck: Sendable, Equatable {
    /// Not checked (or the check was stopped early): apply checks the chain itself.
    case unchecked
    /// Every entry's hash and link to the one before it are intact.
    case intact
    /// The first broken entry.
    case broken(ChainBreak)
}

extension SQLDatabase {
    /// Checks every audit entry's hash and linkage (not the entries' contents) in sequence order,
    /// in the caller's transaction: what any edit, deletion or reordering breaks. The hash rules
    /// of `ChainVerifier`, applied to the column bytes in place with one SHA-256 context, because
    /// it runs before every apply that writes. `shouldStop` is asked every 4,096 entries; true
    /// ends the check with `.unchecked`. `chunk`: entries per query (tests make it small).
    func checkAuditChain(shouldStop: () -> Bool = { false }, chunk: Int = 32_768) throws -> AuditChainCheck {
        let hasher = AuditChainHasher()
        // One buffer, no allocation per entry: `head` holds the previous entry's hash, `next` this one's.
        var buffer = [UInt8](repeating: 0, count: 2 * SHA256.byteCount)
        return try buffer.withUnsafeMutableBytes { buffer -> AuditChainCheck in
            let head = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<SHA256.byteCount])
            let next = UnsafeMutableRawBufferPointer(rebasing: buffer[SHA256.byteCount...])
            AuditHash.genesis.withUnsafeBytes { head.copyMemory(from: $0) }
            func equalsDigest(_ blob: UnsafeRawBufferPointer, _ digest: UnsafeMutableRawBufferPointer) -> Bool {
                blob.count == SHA256.byteCount && memcmp(blob.baseAddress!, digest.baseAddress!, SHA256.byteCount) == 0
            }
            var expected: Int64 = 1
            var outcome = AuditChainCheck.intact
            // In chunks of `chunk` entries, each continuing after the last sequence number the one
            // before read (the same rows in the same order as one query): a check stopped early then
            // leaves at most the rest of one chunk unread. (A PostgreSQL stream stopped inside a
            // transaction is read to its end; one query of the whole log made a no-op apply wait for it.)
            var last: Int64?
            var inChunk = 0
            var stopped = false
            repeat {
                inChunk = 0
                let after = last.map { "WHERE seq > \($0) " } ?? ""
                try query("SELECT seq, entry, prev_hash, hash FROM orgctl_audit \(after)ORDER BY seq LIMIT \(chunk)", []) { row in
                    inChunk += 1
                    let sequence = row.int(0)
                    last = sequence
                    guard sequence == expected else {
                        outcome = .broken(ChainBreak(sequence: sequence, problem: .sequenceGap(expected: expected)))
                        stopped = true
                        return false
                    }
                    guard row.withBlob(2, { equalsDigest($0, head) }) else {
                        outcome = .broken(ChainBreak(sequence: sequence, problem: .previousHashMismatch))
                        stopped = true
                        return false
                    }
                    if expected % 4096 == 0, shouldStop() {
                        outcome = .unchecked
                        stopped = true
                        return false
                    }
                    row.withBlob(1) { hasher.chainHash(previous: UnsafeRawBufferPointer(head), entry: $0, into: next) }
                    guard row.withBlob(3, { equalsDigest($0, next) }) else {
                        outcome = .broken(ChainBreak(sequence: sequence, problem: .hashMismatch))
                        stopped = true
                        return false
                    }
                    head.copyMemory(from: UnsafeRawBufferPointer(next))
                    expected += 1
                    return true
                }
            } while !stopped && inChunk == chunk
            return outcome
        }
    }

    /// The last entry's sequence number and hash (the genesis hash for an empty log).
    func auditHead() throws -> AuditHead {
        try first("SELECT seq, hash FROM orgctl_audit ORDER BY seq DESC LIMIT 1") { AuditHead(sequence: $0.int(0), hash: Hex.encode($0.blob(1))) }
            ?? AuditHead(sequence: 0, hash: Hex.encode(AuditHash.genesis))
    }
}

/// Checks the audit chain on a second, read-only connection and its own thread while the
/// caller's connection reads the state. Only sound while the caller holds the write lock (or
/// otherwise knows that nothing commits in between): the two connections then read one snapshot.
/// Any failure of its own (opening, a busy database) ends as `.unchecked`, and the caller checks
/// the chain itself.
func concurrentChainCheck(path: String) -> StoppableWork<AuditChainCheck> {
    StoppableWork { shouldStop in
        do {
            let connection = try SQLiteConnection(path: path, mode: .readOnly, busyTimeoutMilliseconds: 1000)
            return try connection.transaction(.deferred) { try connection.checkAuditChain(shouldStop: shouldStop) }
        } catch {
            return .unchecked
        }
    }
}

/// Work on its own thread that the caller can ask to stop early, and wait for.
///
/// @unchecked Sendable: `outcome` is written by the thread before `finished` is left, and read
/// only after waiting for it.
public final class StoppableWork<Outcome: Sendable>: @unchecked Sendable {
    private let finished = DispatchGroup()
    private let stopRequested = Atomic<Bool>(false)
    private var outcome: Outcome?

    /// Starts `body` on a new thread. It is passed `shouldStop`, to ask now and then: true means
    /// its outcome is no longer needed, and it should return soon.
    public init(_ body: @escaping @Sendable (_ shouldStop: () -> Bool) -> Outcome) {
        finished.enter()
        Thread.detachNewThread { [self] in
            defer { finished.leave() }
            outcome = body { self.stopRequested.load(ordering: .relaxed) }
        }
    }

    /// The outcome, once the work ends.
    public func result() -> Outcome {
        finished.wait()
        return outcome!
    }

    /// Asks the work to stop early, and waits for it to end.
    public func stop() {
        stopRequested.store(true, ordering: .relaxed)
        finished.wait()
    }
}
