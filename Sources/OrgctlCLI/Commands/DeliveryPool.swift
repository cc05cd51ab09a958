import Foundation
import HTTPClient

/// A fixed number of worker threads, each with its own ``HTTPClient`` (one libcurl handle, so its
/// connections are kept alive from one request to the next), posting the requests the deliverer
/// hands them. The workers only send: the state database, the secrets and the decisions stay with
/// the deliverer's thread, which signs each request before handing it over.
///
/// @unchecked Sendable: `jobs`, `results` and `closed` are only read and written under `condition`.
final class DeliveryPool: @unchecked Sendable {
    struct Job: Sendable {
        /// The deliverer's name for the request, returned with its result.
        var slot: Int
        var request: HTTPRequest
        var submitted = DispatchTime.now()
    }

    struct Done: Sendable {
        var slot: Int
        var result: Result<HTTPResponse, HTTPFailure>
        /// Wall time of the request on the monotonic clock.
        var milliseconds: Int64
        /// How long it waited for a free worker.
        var queuedMilliseconds: Int64
    }

    let workers: Int
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var results: [Done] = []
    private var closed = false
    private var connections = 0
    private var running = 0

    /// Starts `workers` threads; each makes its client from `options` (curl's global state was set
    /// up by the client the command made on its own thread first).
    init(workers: Int, options: HTTPClient.Options) {
        self.workers = max(1, workers)
        running = self.workers
        for _ in 0..<self.workers {
            Thread.detachNewThread { [self] in work(options: options) }
        }
    }

    /// Queues a request for the next free worker.
    func submit(_ job: Job) {
        condition.withLock {
            jobs.append(job)
            condition.broadcast()
        }
    }

    /// Waits until at least one request has finished, and returns every one that has.
    func finished() -> [Done] {
        condition.withLock {
            while results.isEmpty { condition.wait() }
            defer { results = [] }
            return results
        }
    }

    /// Takes back the requests no worker has started (of `slots`, or all), and returns their slots:
    /// a stopping deliverer hands their events back unsent, and a 410 stops its endpoint's.
    func withdraw(_ slots: Set<Int>? = nil) -> [Int] {
        condition.withLock {
            let taken = jobs.filter { slots?.contains($0.slot) ?? true }
            jobs.removeAll { slots?.contains($0.slot) ?? true }
            return taken.map(\.slot)
        }
    }

    /// Connections the workers have opened so far (fewer than requests when they were reused).
    var connectionsOpened: Int { condition.withLock { connections } }

    /// Lets the workers end once the queue is empty, and waits for them (their connections close).
    /// The threads hold the pool until then: call it once the pool is no longer needed.
    func close() {
        condition.withLock {
            closed = true
            condition.broadcast()
            while running > 0 { condition.wait() }
        }
    }

    private func work(options: HTTPClient.Options) {
        var client = HTTPClient(options: options)
        var opened = 0
        while true {
            let next: Job? = condition.withLock {
                while jobs.isEmpty, !closed { condition.wait() }
                return jobs.isEmpty ? nil : jobs.removeFirst()
            }
            guard let job = next else { break }
            let started = DispatchTime.now()
            let queued = Int64((started.uptimeNanoseconds - job.submitted.uptimeNanoseconds) / 1_000_000)
            let result = client?.post(job.request)
                ?? .failure(HTTPFailure(kind: .network, message: "libcurl could not be initialised; nothing was sent"))
            let milliseconds = Int64((DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000)
            let newly = (client?.connectionsOpened ?? 0) - opened
            opened += newly
            condition.withLock {
                results.append(Done(slot: job.slot, result: result, milliseconds: milliseconds, queuedMilliseconds: queued))
                connections += newly
                condition.broadcast()
            }
        }
        client = nil  // closes its connections
        condition.withLock {
            running -= 1
            condition.broadcast()
        }
    }
}
