import Foundation
import HTTPClient
import Reconciler
import StateStore

/// One deliverer: claims due events with a lease, posts them, records each attempt and outcome.
/// At least once: an event is marked delivered only after its 2xx, and a deliverer that dies
/// leaves its claims to expire and be claimed again.
///
/// Up to `parallel` requests are in flight at once, each on a worker of a ``DeliveryPool`` that
/// keeps its connections alive, and as many more wait in the pool's queue, so that the workers
/// keep sending while this thread commits. This thread alone touches the state database: it
/// claims, decides, signs, and settles in one transaction what finished meanwhile together with
/// the lease renewals of what it hands over next. Events are handed over in the order they were
/// claimed, but with several requests in flight they may arrive in any order
/// (docs/webhooks.md#ordering).
final class Deliverer {
    struct Totals {
        var claimed = 0, delivered = 0, retrying = 0, dead = 0
        mutating func add(_ other: Totals) {
            claimed += other.claimed
            delivered += other.delivered
            retrying += other.retrying
            dead += other.dead
        }
    }

    /// A claim lasts this long before it is attempted; each attempt renews it for the request's
    /// timeout plus this margin.
    static let leaseSeconds: Int64 = 60
    /// Why an event of an endpoint a 410 disabled during this pass is not sent.
    static let goneReason = "the endpoint is disabled (it answered 410 Gone)"
    /// The answers that disable an endpoint (``WebhookDelivery/outcome``): once one arrives, the
    /// workers start no other request queued for that endpoint.
    static let stopsEndpoint: @Sendable (Result<HTTPResponse, HTTPFailure>) -> Bool = { result in
        if case .success(let response) = result { return response.status == 410 }
        return false
    }
    /// `--parallel`: requests in flight at once by default, and at most.
    static let defaultParallel = 4
    static let maxParallel = 64

    let store: any StateStore
    let pool: DeliveryPool
    let console: Console
    let clock: @Sendable () -> Date
    let batch: Int
    /// `host/pid/random`: names this deliverer's claims (`claimed_by`).
    let id: String

    init(store: any StateStore, pool: DeliveryPool, console: Console, clock: @escaping @Sendable () -> Date, batch: Int) {
        self.store = store
        self.pool = pool
        self.console = console
        self.clock = clock
        self.batch = batch
        let host = ProcessInfo.processInfo.hostName
        id = "\(host.prefix(64))/\(getpid())/\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }

    private var seconds: Int64 { Int64(clock().timeIntervalSince1970) }

    /// An event handed to a worker, and what its outcome needs.
    private struct InFlight {
        var event: ClaimedEvent
        var maxRetries: Int
        var timeout: Int
    }

    /// An event about to be sent: its lease is renewed in the transaction before it goes.
    private struct Ready {
        var event: ClaimedEvent
        var request: HTTPRequest
        var maxRetries: Int
    }

    /// Requests handed to the pool and not finished: the workers' and as many queued.
    private var depth: Int { 2 * pool.workers }

    /// Delivers every event due when the pass starts (events retried during it are due later);
    /// stops early once `stop` is set: sends nothing more, waits for the requests in flight,
    /// records them, and hands back what it claimed and did not attempt.
    func pass(stop: StopSignal) throws -> Totals {
        let due = seconds
        var totals = Totals()
        pool.forgetStoppedEndpoints()
        // Endpoints a 410 disabled during this pass: their other claimed events are not sent.
        var disabled: Set<Int64> = []
        var waiting: [ClaimedEvent] = []
        var next = 0  // the first of `waiting` not yet taken
        var inFlight: [Int: InFlight] = [:]
        var slots = 0
        var exhausted = false
        var records: [(record: DeliveryRecord, line: String?)] = []
        while true {
            if !exhausted, !stop.isSet, waiting.count - next < depth {
                let claimed: [ClaimedEvent]
                do {
                    claimed = try store.outbox.claim(deliverer: id, now: due, leaseUntil: seconds + Self.leaseSeconds, limit: batch)
                } catch {
                    throw CommandFailure(message: error.message, help: error.help)
                }
                waiting.removeFirst(next)
                next = 0
                waiting += claimed
                totals.claimed += claimed.count
                exhausted = claimed.isEmpty
            }
            if stop.isSet {
                // Queued requests that no worker started are not sent.
                let withdrawn = pool.withdraw().compactMap { inFlight.removeValue(forKey: $0)?.event }
                for event in withdrawn + waiting[next...] {
                    records.append((DeliveryRecord(event: event, attempt: nil, outcome: .released, lastError: nil), nil))
                }
                next = waiting.count
                exhausted = true
            }
            // Fill the free workers; an event that cannot be attempted is dead-lettered at once.
            var ready: [Ready] = []
            while inFlight.count + ready.count < depth, next < waiting.count {
                let event = waiting[next]
                next += 1
                switch prepare(event, disabled: disabled) {
                case .refused(let reason):
                    records.append((DeliveryRecord(event: event, attempt: nil, outcome: .dead(disable: nil), lastError: reason),
                                    "\(shown(event)): dead-lettered: \(TerminalText.escape(reason))"))
                    totals.dead += 1
                case .ready(let item):
                    ready.append(item)
                }
            }
            // A queued request may wait for the longest one ahead of it before its own starts.
            let ahead = Int64((inFlight.values.map(\.timeout) + ready.map(\.request.timeoutSeconds)).max() ?? 0)
            let held: [Bool]
            do {
                held = try store.outbox.settle(records.map(\.record),
                                               renewing: ready.map { ($0.event, seconds + ahead + Int64($0.request.timeoutSeconds) + Self.leaseSeconds) },
                                               deliverer: id, now: seconds)
            } catch {
                throw CommandFailure(message: error.message, help: error.help)
            }
            for line in records.compactMap(\.line) { console.info(line) }
            records = []
            // Not held: another deliverer took it over (this one's lease ran out); it is theirs now.
            for (item, held) in zip(ready, held) where held {
                slots += 1
                inFlight[slots] = InFlight(event: item.event, maxRetries: item.maxRetries, timeout: item.request.timeoutSeconds)
                pool.submit(DeliveryPool.Job(slot: slots, endpoint: item.event.webhookID, request: item.request))
            }
            if inFlight.isEmpty {
                if exhausted, next == waiting.count { break }
                continue
            }
            for done in pool.finished() {
                guard let flight = inFlight.removeValue(forKey: done.slot) else { continue }
                let (record, line) = outcome(of: flight, done)
                records.append((record, line))
                switch record.outcome {
                case .delivered: totals.delivered += 1
                case .retry: totals.retrying += 1
                case .dead(let disable):
                    totals.dead += 1
                    if disable != nil { disabled.insert(flight.event.webhookID) }
                case .released: break
                }
            }
            // A 410 disabled an endpoint: its requests that no worker started are not sent.
            let stopped = Set(inFlight.filter { disabled.contains($0.value.event.webhookID) }.keys)
            for slot in stopped.isEmpty ? [] : pool.withdraw(stopped) {
                guard let flight = inFlight.removeValue(forKey: slot) else { continue }
                records.append((DeliveryRecord(event: flight.event, attempt: nil, outcome: .dead(disable: nil), lastError: Self.goneReason),
                                "\(shown(flight.event)): dead-lettered: \(Self.goneReason)"))
                totals.dead += 1
            }
        }
        return totals
    }

    private func shown(_ event: ClaimedEvent) -> String {
        "\(TerminalText.escape(event.webhook)) \(TerminalText.escape(event.id)) \(TerminalText.escape(event.type))"
    }

    private enum Prepared {
        case ready(Ready)
        /// No attempt is possible: dead-lettered with the reason (requeue with 'webhooks retry' once fixed).
        case refused(String)
    }

    /// The signed request for `event`, or why none can be sent.
    private func prepare(_ event: ClaimedEvent, disabled: Set<Int64>) -> Prepared {
        if disabled.contains(event.webhookID) { return .refused(Self.goneReason) }
        guard let target = event.target else { return .refused("the webhook no longer exists") }
        if let reason = target.disabledReason { return .refused("the endpoint is disabled (\(reason)); 'orgctl webhooks retry --webhook' re-enables it") }
        guard target.enabled else { return .refused("the webhook is not enabled") }
        guard let url = target.url else { return .refused("the webhook has no URL") }
        guard let secret = target.secret else { return .refused("the webhook has no secret that this state key opens") }
        let timeout = target.timeoutSeconds ?? WebhookDelivery.defaultTimeoutSeconds
        let request = HTTPRequest(url: url, headers: WebhookDelivery.headers(id: event.id, timestamp: seconds, body: event.payload, secret: secret),
                                  body: event.payload, timeoutSeconds: timeout)
        return .ready(Ready(event: event, request: request, maxRetries: target.maxRetries ?? WebhookDelivery.defaultMaxRetries))
    }

    /// The record of a finished attempt, and its line for the console.
    private func outcome(of flight: InFlight, _ done: DeliveryPool.Done) -> (DeliveryRecord, String) {
        let answer: WebhookDelivery.Answer
        var attempt = DeliveryAttempt(startedAt: done.startedAt, durationMilliseconds: done.milliseconds, statusCode: nil, error: nil, response: [])
        switch done.result {
        case .success(let response):
            answer = .status(response.status, retryAfter: response.retryAfter)
            attempt.statusCode = response.status
            attempt.response = Array(response.bodyPrefix.prefix(WebhooksCommand.recordedBodyBytes))
        case .failure(let failure):
            answer = .failure("\(failure.kind.rawValue): \(failure.message)")
        }
        let decided = WebhookDelivery.outcome(answer, attemptsBefore: flight.event.attempts, maxRetries: flight.maxRetries,
                                              now: seconds, random: Double.random(in: 0..<1))
        attempt.error = decided.error
        let what: String
        switch decided.outcome {
        case .delivered: what = "delivered"
        case .retry(let at): what = "retry at \(AuditTimeText.string(at))"
        case .dead: what = "dead-lettered"
        case .released: what = "released"
        }
        let line = "\(shown(flight.event)): \(decided.error.map(TerminalText.escape) ?? "HTTP \(attempt.statusCode ?? 0)") in \(done.milliseconds) ms; \(what)"
        return (DeliveryRecord(event: flight.event, attempt: attempt, outcome: decided.outcome, lastError: decided.error), line)
    }
}

/// Set once SIGTERM or SIGINT arrives; the deliverer checks it between events.
final class StopSignal: @unchecked Sendable {
    // @unchecked: `stopped` is only read and written under `lock`.
    private let lock = NSCondition()
    private var stopped = false

    var isSet: Bool { lock.withLock { stopped } }

    func set() {
        lock.withLock {
            stopped = true
            lock.broadcast()
        }
    }

    /// Waits up to `seconds`, or until the signal is set.
    func sleep(seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        lock.withLock {
            while !stopped, lock.wait(until: deadline) {}
        }
    }

    struct Watch {
        var sources: [any DispatchSourceSignal]
        var signals: [Int32]
        func end() {
            for source in sources { source.cancel() }
            for number in signals { signal(number, SIG_DFL) }
        }
    }

    /// Routes `signals` to this stop signal until the returned watch ends.
    func watch(signals: [Int32]) -> Watch {
        // A process inherits its parent's blocked signals (a supervisor or test runner may block
        // SIGTERM): unblock them, or they would never arrive.
        var mask = sigset_t()
        sigemptyset(&mask)
        for number in signals { sigaddset(&mask, number) }
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        let sources = signals.map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in set() }
            source.resume()
            return source
        }
        return Watch(sources: sources, signals: signals)
    }
}
