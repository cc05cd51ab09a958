import Foundation

/// Sends one batch of queued writes at a time on a thread of its own, so that the apply goes on
/// computing the next batch (digests, audit entries, encoding) while the server executes this
/// one: on two cores the client's and the server's work overlap instead of taking turns.
///
/// The connection belongs to the batch in flight until it ends: every other use of it waits
/// first (``wait()``), which also hands over everything the sending thread did (the lock's
/// acquire/release pairs order the two threads' accesses). A failed batch leaves the
/// transaction aborted on the server: its error is thrown by every later ``wait()`` and
/// ``submit(_:)`` until ``reset()``, so nothing more is sent and the first failure is the one
/// reported.
final class WriteSender: @unchecked Sendable {
    private let condition = NSCondition()
    private var inFlight = false
    private var failure: (any Error)?

    /// Runs `work` on another thread once the batch in flight has ended; throws that batch's
    /// failure instead (and `work` is dropped).
    func submit(_ work: @escaping () throws -> Void) throws {
        try wait()
        condition.lock()
        inFlight = true
        condition.unlock()
        let batch = Handover(work)
        let thread = Thread { [self] in
            var error: (any Error)?
            do {
                try batch.work()
            } catch let thrown {
                error = thrown
            }
            condition.lock()
            failure = error
            inFlight = false
            condition.broadcast()
            condition.unlock()
        }
        thread.start()
    }

    /// Waits until no batch is in flight; throws the failure of one that failed.
    func wait() throws {
        condition.lock()
        while inFlight { condition.wait() }
        let error = failure
        condition.unlock()
        if let error { throw error }
    }

    /// Waits until no batch is in flight and forgets any failure (the transaction rolled back).
    func reset() {
        condition.lock()
        while inFlight { condition.wait() }
        failure = nil
        condition.unlock()
    }

    /// The batch's closure, which captures the connection and the queued writes: not `Sendable`,
    /// but used by one thread at a time (the submitting thread no longer touches them until
    /// ``WriteSender/wait()`` returns).
    private struct Handover: @unchecked Sendable {
        let work: () throws -> Void
        init(_ work: @escaping () throws -> Void) { self.work = work }
    }
}
