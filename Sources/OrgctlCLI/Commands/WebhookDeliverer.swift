import Foundation
import HTTPClient
import Reconciler
import StateStore

/// One deliverer: claims due events with a lease, posts each, records the attempt and outcome.
/// At least once: an event is marked delivered only after its 2xx, and a deliverer that dies
/// leaves its claims to expire and be claimed again.
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

    let store: any StateStore
    let client: HTTPClient
    let console: Console
    let clock: () -> Date
    let batch: Int
    /// `host/pid/random`: names this deliverer's claims (`claimed_by`).
    let id: String

    init(store: any StateStore, client: HTTPClient, console: Console, clock: @escaping () -> Date, batch: Int) {
        self.store = store
        self.client = client
        self.console = console
        self.clock = clock
        self.batch = batch
        let host = ProcessInfo.processInfo.hostName
        id = "\(host.prefix(64))/\(getpid())/\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }

    private var seconds: Int64 { Int64(clock().timeIntervalSince1970) }

    /// Delivers every event due when the pass starts (events retried during it are due later), in
    /// batches; stops early, handing back what it claimed, once `stop` is set.
    func pass(stop: StopSignal) throws -> Totals {
        let due = seconds
        var totals = Totals()
        let outbox = store.outbox
        // Endpoints a 410 disabled during this pass: their other claimed events are not sent.
        var disabled: Set<Int64> = []
        while !stop.isSet {
            let claimed: [ClaimedEvent]
            do {
                claimed = try outbox.claim(deliverer: id, now: due, leaseUntil: seconds + Self.leaseSeconds, limit: batch)
            } catch {
                throw CommandFailure(message: error.message, help: error.help)
            }
            if claimed.isEmpty { break }
            totals.claimed += claimed.count
            for event in claimed {
                if stop.isSet {
                    try record(event, attempt: nil, outcome: .released, error: nil)
                    continue
                }
                if disabled.contains(event.webhookID) {
                    try record(event, attempt: nil, outcome: .dead(disable: nil), error: "the endpoint is disabled (it answered 410 Gone)")
                    totals.dead += 1
                    continue
                }
                switch try deliver(event) {
                case .delivered: totals.delivered += 1
                case .retry: totals.retrying += 1
                case .dead(let disable):
                    totals.dead += 1
                    if disable != nil { disabled.insert(event.webhookID) }
                case .released: break
                }
            }
        }
        return totals
    }

    private func record(_ event: ClaimedEvent, attempt: DeliveryAttempt?, outcome: DeliveryOutcome, error: String?) throws {
        do {
            try store.outbox.finish(event, deliverer: id, attempt: attempt, outcome: outcome, lastError: error, now: seconds)
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
    }

    /// One attempt at `event`, recorded; returns its outcome.
    private func deliver(_ event: ClaimedEvent) throws -> DeliveryOutcome {
        let shown = "\(TerminalText.escape(event.webhook)) \(TerminalText.escape(event.id)) \(TerminalText.escape(event.type))"
        // No attempt is possible: dead-lettered with the reason (requeue with 'webhooks retry' once fixed).
        func refuse(_ reason: String) throws -> DeliveryOutcome {
            try record(event, attempt: nil, outcome: .dead(disable: nil), error: reason)
            console.info("\(shown): dead-lettered: \(TerminalText.escape(reason))")
            return .dead(disable: nil)
        }
        guard let target = event.target else { return try refuse("the webhook no longer exists") }
        if let reason = target.disabledReason { return try refuse("the endpoint is disabled (\(reason)); 'orgctl webhooks retry --webhook' re-enables it") }
        guard target.enabled else { return try refuse("the webhook is not enabled") }
        guard let url = target.url else { return try refuse("the webhook has no URL") }
        guard let secret = target.secret else { return try refuse("the webhook has no secret that this state key opens") }
        let timeout = target.timeoutSeconds ?? WebhookDelivery.defaultTimeoutSeconds
        let renewed: Bool
        do {
            renewed = try store.outbox.renew(event, deliverer: id, until: seconds + Int64(timeout) + Self.leaseSeconds)
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
        // Another deliverer took it over (this one's lease ran out): it is theirs now.
        guard renewed else { return .released }

        let timestamp = seconds
        let startedAt = Int64(clock().timeIntervalSince1970 * 1000)
        let started = DispatchTime.now()
        let result = client.post(HTTPRequest(url: url, headers: WebhookDelivery.headers(id: event.id, timestamp: timestamp, body: event.payload, secret: secret),
                                             body: event.payload, timeoutSeconds: timeout))
        let duration = Int64((DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000)
        let answer: WebhookDelivery.Answer
        var attempt = DeliveryAttempt(startedAt: startedAt, durationMilliseconds: duration, statusCode: nil, error: nil, response: [])
        switch result {
        case .success(let response):
            answer = .status(response.status, retryAfter: response.retryAfter)
            attempt.statusCode = response.status
            attempt.response = Array(response.bodyPrefix.prefix(WebhooksCommand.recordedBodyBytes))
        case .failure(let failure):
            answer = .failure("\(failure.kind.rawValue): \(failure.message)")
        }
        let decided = WebhookDelivery.outcome(answer, attemptsBefore: event.attempts, maxRetries: target.maxRetries ?? WebhookDelivery.defaultMaxRetries,
                                              now: seconds, random: Double.random(in: 0..<1))
        attempt.error = decided.error
        try record(event, attempt: attempt, outcome: decided.outcome, error: decided.error)
        let what: String
        switch decided.outcome {
        case .delivered: what = "delivered"
        case .retry(let at): what = "retry at \(AuditTimeText.string(at))"
        case .dead: what = "dead-lettered"
        case .released: what = "released"
        }
        console.info("\(shown): \(decided.error.map(TerminalText.escape) ?? "HTTP \(attempt.statusCode ?? 0)") in \(duration) ms; \(what)")
        return decided.outcome
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
