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
        /// The webhook's row id: once a request to it gets an answer that stops the endpoint, no
        /// worker starts another queued for it.
        var endpoint: Int64
        var request: HTTPRequest
    }

    struct Done: Sendable {
        var slot: Int
        var result: Result<HTTPResponse, HTTPFailure>
        /// When a worker started it (Unix milliseconds, the command's clock).
        var startedAt: Int64
        /// Wall time of the request on the monotonic clock.
        var milliseconds: Int64
    }

    let workers: Int
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var results: [Done] = []
    private var closed = false
    private var connections = 0
    private var running = 0
    /// Endpoints an answer stopped (a 410): their queued requests wait to be withdrawn, unsent.
    private var stopped: Set<Int64> = []
    private let clock: @Sendable () -> Date
    private let stops: @Sendable (Result<HTTPResponse, HTTPFailure>) -> Bool

    /// Starts `workers` threads; each makes its client from `options` (curl's global state was set
    /// up by the client the command made on its own thread first). `stops` says which results
    /// stop their endpoint.
    init(workers: Int, options: HTTPClient.Options, clock: @escaping @Sendable () -> Date,
         stops: @escaping @Sendable (Result<HTTPResponse, HTTPFailure>) -> Bool) {
        self.workers = max(1, workers)
        self.clock = clock
        self.stops = stops
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

    /// Forgets the endpoints stopped so far (a new pass reads the endpoints' state again).
    func forgetStoppedEndpoints() {
        condition.withLock { stopped = [] }
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
                while true {
                    if let index = jobs.firstIndex(where: { !stopped.contains($0.endpoint) }) { return jobs.remove(at: index) }
                    if closed { return nil }
                    condition.wait()
                }
            }
            guard let job = next else { break }
            let startedAt = Int64(clock().timeIntervalSince1970 * 1000)
            let started = DispatchTime.now()
            let result = client?.post(job.request)
                ?? .failure(HTTPFailure(kind: .network, message: "libcurl could not be initialised; nothing was sent"))
            let milliseconds = Int64((DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000)
            let newly = (client?.connectionsOpened ?? 0) - opened
            opened += newly
            condition.withLock {
                if stops(result) { stopped.insert(job.endpoint) }
                results.append(Done(slot: job.slot, result: result, startedAt: startedAt, milliseconds: milliseconds))
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
