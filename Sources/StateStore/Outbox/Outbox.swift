import Crypto
import Foundation

/// One event for one webhook, written by apply in its write transaction.
public struct OutboxEvent: Sendable {
    /// The webhook's address (`tenant/acme/webhook/slack`); it must exist when the apply commits.
    public var webhook: String
    /// `member.added`, … (docs/webhooks.md).
    public var type: String
    public var auditSequence: Int64
    /// Unix seconds (the apply's time).
    public var createdAt: Int64
    /// The request body, exactly as it is signed and sent.
    public var payload: [UInt8]

    public init(webhook: String, type: String, auditSequence: Int64, createdAt: Int64, payload: [UInt8]) {
        self.webhook = webhook
        self.type = type
        self.auditSequence = auditSequence
        self.createdAt = createdAt
        self.payload = payload
    }
}

/// A claimed event and what is needed to deliver it, read when it was claimed.
public struct ClaimedEvent: Sendable {
    public var id: String
    public var webhookID: Int64
    public var webhook: String
    public var type: String
    public var payload: [UInt8]
    /// Attempts made before this one.
    public var attempts: Int
    public var createdAt: Int64
    /// nil when the webhook row is gone.
    public var target: DeliveryTarget?
}

/// The webhook as stored now.
public struct DeliveryTarget: Sendable {
    public var address: String
    public var url: String?
    /// The signing secret, decrypted with the state key; nil when there is none or it cannot be
    /// opened. Never printed.
    public var secret: [UInt8]?
    public var timeoutSeconds: Int?
    public var maxRetries: Int?
    /// NULL (`enabled` not managed) counts as enabled.
    public var enabled: Bool
    /// Why a 410 disabled the endpoint, when it did.
    public var disabledReason: String?
}

/// What one attempt found.
public struct DeliveryAttempt: Sendable {
    /// Unix milliseconds.
    public var startedAt: Int64
    public var durationMilliseconds: Int64
    public var statusCode: Int?
    /// nil on success; the network error or "HTTP 500" otherwise.
    public var error: String?
    /// The first bytes of the response body.
    public var response: [UInt8]

    public init(startedAt: Int64, durationMilliseconds: Int64, statusCode: Int?, error: String?, response: [UInt8]) {
        self.startedAt = startedAt
        self.durationMilliseconds = durationMilliseconds
        self.statusCode = statusCode
        self.error = error
        self.response = response
    }
}

/// What became of one claimed event, for ``Outbox/settle(_:renewing:deliverer:now:)``.
public struct DeliveryRecord: Sendable {
    public var event: ClaimedEvent
    /// nil when no attempt was made (refused before sending, or handed back).
    public var attempt: DeliveryAttempt?
    public var outcome: DeliveryOutcome
    /// Kept on the event: the attempt's error, or why none was made.
    public var lastError: String?

    public init(event: ClaimedEvent, attempt: DeliveryAttempt?, outcome: DeliveryOutcome, lastError: String?) {
        self.event = event
        self.attempt = attempt
        self.outcome = outcome
        self.lastError = lastError
    }
}

/// What happens to an event after an attempt.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered
    /// Tried again at this time (Unix seconds).
    case retry(at: Int64)
    /// Dead-lettered (retries used up, or the webhook is gone or disabled); `disable` also
    /// disables the endpoint (410 Gone) with that reason.
    case dead(disable: String?)
    /// Not attempted (a stopping deliverer): handed back unchanged.
    case released
}

/// One webhook's deliveries, for `orgctl webhooks status`.
public struct WebhookDeliveryStatus: Sendable {
    public var address: String
    public var exists: Bool
    public var enabled: Bool
    public var pending = 0, delivered = 0, dead = 0, attempts = 0
    /// Sum of (delivered − created) over delivered events, in seconds.
    public var latencySeconds: Int64 = 0
    public var lastError: String?
    public var lastErrorAt: Int64?
    public var disabledReason: String?
    public var disabledAt: Int64?
}

/// A dead-lettered event, for `orgctl webhooks status --format json`.
public struct DeadLetter: Sendable {
    public var id: String
    public var webhook: String
    public var type: String
    public var auditSequence: Int64
    public var attempts: Int
    public var lastError: String?
}

/// The webhook outbox of a state database, on either backend (docs/webhooks.md). Every SQL text
/// is in ``OutboxSQL``; each call below is one transaction, which does not take the apply lock
/// (delivering never waits for an apply, nor an apply for a deliverer).
public final class Outbox {
    let store: any SQLStore
    private var db: any SQLDatabase { store.db }

    init(store: any SQLStore) { self.store = store }

    /// The address of the webhook row whose tenant slug and name are in these columns (as the state reader spells it).
    static func webhookAddress(_ row: any SQLRow, tenantAt tenant: Int, nameAt name: Int) -> String {
        "tenant/\(row.withText(tenant) { AddressSegment.encode($0) })/webhook/\(row.withText(name) { AddressSegment.encode($0) })"
    }

    // MARK: Enqueue

    /// Writes `events` inside the apply's transaction (`db` is the transaction's connection).
    static func enqueue(_ events: [OutboxEvent], db: any SQLDatabase, databaseID: String) throws {
        guard !events.isEmpty else { return }
        var ids: [String: Int64] = [:]
        try db.forEach(OutboxSQL.webhookIDs) { row in
            ids[webhookAddress(row, tenantAt: 1, nameAt: 2)] = row.int(0)
        }
        for event in events {
            guard let webhookID = ids[event.webhook] else {
                throw StateError(.other, "internal error: the webhook \(event.webhook) of an event does not exist", help: "report this as a bug")
            }
            let id = eventID(databaseID: databaseID, webhookID: webhookID, payload: event.payload)
            try db.runChecked(OutboxSQL.insertEvent, [.text(id), .integer(webhookID), .text(event.webhook), .text(event.type), .integer(event.auditSequence),
                                                      .integer(event.createdAt), .blob(event.payload)], rows: 1) { changed in
                StateError(.corrupt, "writing webhook event \(id) changed \(changed) rows of orgctl_outbox instead of 1", help: "look for triggers or rules on orgctl's tables")
            }
        }
    }

    /// The event id (`webhook-id`, the receiver's idempotency key): derived, not random, so the
    /// same apply of the same database writes the same rows (crash tests compare databases), and
    /// unique: the database's random id, the webhook's row and the payload, which holds the audit
    /// sequence, the plan id and the apply's time.
    static func eventID(databaseID: String, webhookID: Int64, payload: [UInt8]) -> String {
        let input = Array("orgctl webhook event v1\u{0}\(databaseID)\u{0}\(webhookID)\u{0}".utf8) + payload
        return "msg_" + Hex.encode(Array(SHA256.hash(input).prefix(16)))
    }

    // MARK: Delivery

    /// Claims up to `limit` due events until `leaseUntil` (Unix seconds), with each webhook as stored now.
    public func claim(deliverer: String, now: Int64, leaseUntil: Int64, limit: Int) throws(StateError) -> [ClaimedEvent] {
        try store.inOutboxTransaction("claiming webhook events in") {
            try store.checkSchemaObjectsForWrite()
            var events: [ClaimedEvent] = []
            try db.forEach(store is PostgresStateStore ? OutboxSQL.claimSkippingLocked : OutboxSQL.claim,
                           [.text(deliverer), .integer(leaseUntil), .integer(now), .integer(Int64(max(1, limit)))]) { claim in
                events.append(ClaimedEvent(id: claim.text(0), webhookID: claim.int(1), webhook: claim.text(2), type: claim.text(3),
                                           payload: claim.blob(4), attempts: Int(claim.int(5)), createdAt: claim.int(6), target: nil))
            }
            do {
                var targets: [Int64: DeliveryTarget?] = [:]
                for index in events.indices {
                    let id = events[index].webhookID
                    if targets[id] == nil { targets[id] = try target(webhookID: id) }
                    events[index].target = targets[id] ?? nil
                }
                // After the webhooks were read: a secret re-sealed by a `state rekey` is never dead-lettered as unreadable.
                try store.refuseReplacedKey()
                return events.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            }
        }
    }

    /// The webhook with row id `webhookID` as stored now, its secret decrypted; nil when it is gone.
    func target(webhookID: Int64) throws -> DeliveryTarget? {
        let key = store.key
        return try db.first(OutboxSQL.webhook, [.integer(webhookID)]) { statement in
            let address = Self.webhookAddress(statement, tenantAt: 5, nameAt: 6)
            var secret: [UInt8]?
            if let sealed = statement.optionalBlob(1), let key {
                secret = try? key.open(sealed, address: address, attribute: "secret")
            }
            return DeliveryTarget(address: address, url: statement.optionalText(0), secret: secret,
                                  timeoutSeconds: statement.isNull(2) ? nil : Int(statement.int(2)),
                                  maxRetries: statement.isNull(3) ? nil : Int(statement.int(3)),
                                  enabled: statement.isNull(4) || statement.int(4) != 0,
                                  disabledReason: statement.optionalText(7))
        }
    }

    /// The webhook `name` of tenant `tenant` as stored now; nil when there is none.
    public func target(tenant: String, name: String) throws(StateError) -> DeliveryTarget? {
        try store.inSnapshot("reading the webhooks of") {
            guard let id = try db.first(OutboxSQL.webhookByName, [.text(tenant), .text(name)], { $0.int(0) }) else { return nil }
            return try target(webhookID: id)
        }
    }

    /// Records outcomes (each attempt, when one was made, and the event's new status; `lastError`
    /// is kept on the event) and extends the leases of the events about to be attempted, all in one
    /// transaction: a deliverer with several requests in flight pays one commit for what finished
    /// meanwhile and what it sends next. Returns, for each of `renewing`, whether this deliverer
    /// still holds the event (false: its lease ran out and another deliverer took it over).
    /// Outcomes are written only while this deliverer holds the claim, so each is recorded once.
    public func settle(_ records: [DeliveryRecord], renewing: [(event: ClaimedEvent, until: Int64)], deliverer: String,
                       now: Int64) throws(StateError) -> [Bool] {
        guard !records.isEmpty || !renewing.isEmpty else { return [] }
        return try store.inOutboxTransaction("recording webhook deliveries in") {
            for record in records {
                let event = record.event
                if let attempt = record.attempt {
                    try db.run(OutboxSQL.insertAttempt, [
                        .text(event.id), .integer(attempt.startedAt), .integer(attempt.durationMilliseconds),
                        attempt.statusCode.map { .integer(Int64($0)) } ?? .null, attempt.error.map { .text($0) } ?? .null,
                        .blob(attempt.response), .text(deliverer),
                    ])
                }
                let error: SQLValue = record.lastError.map { .text($0) } ?? .null
                switch record.outcome {
                case .delivered:
                    try db.run(OutboxSQL.delivered, [.text(event.id), .text(deliverer), .integer(now)])
                case .retry(let at):
                    try db.run(OutboxSQL.retryLater, [.text(event.id), .text(deliverer), .integer(at), error])
                case .dead(let disable):
                    try db.run(OutboxSQL.deadLetter, [.text(event.id), .text(deliverer), .integer(record.attempt == nil ? 0 : 1), error, .integer(now)])
                    if let disable {
                        try db.run(OutboxSQL.disableEndpoint, [.integer(event.webhookID), .text(event.target?.address ?? event.webhook),
                                                                      .integer(now), .text(disable)])
                    }
                case .released:
                    try db.run(OutboxSQL.release, [.text(event.id), .text(deliverer)])
                }
            }
            return try renewing.map { try db.run(OutboxSQL.renew, [.text($0.event.id), .text(deliverer), .integer($0.until)]) == 1 }
        }
    }

    // MARK: Operating

    /// Every webhook stored or named by an event, sorted by address.
    public func status() throws(StateError) -> [WebhookDeliveryStatus] {
        try store.inSnapshot("reading the webhook outbox of") {
            do {
                var byID: [Int64: WebhookDeliveryStatus] = [:]
                try db.forEach(OutboxSQL.allWebhooks) { row in
                    let tenant = row.withText(1) { AddressSegment.encode($0) }, name = row.withText(2) { AddressSegment.encode($0) }
                    byID[row.int(0)] = WebhookDeliveryStatus(address: "tenant/\(tenant)/webhook/\(name)", exists: true,
                                                             enabled: row.isNull(3) || row.int(3) != 0)
                }
                func entry(_ id: Int64, _ address: String) -> WebhookDeliveryStatus {
                    byID[id] ?? WebhookDeliveryStatus(address: address, exists: false, enabled: false)
                }
                try db.forEach(OutboxSQL.counts) { counts in
                    var status = entry(counts.int(0), counts.text(1))
                    status.pending += Int(counts.int(2))
                    status.delivered += Int(counts.int(3))
                    status.dead += Int(counts.int(4))
                    status.attempts += Int(counts.int(5))
                    status.latencySeconds += counts.int(6)
                    byID[counts.int(0)] = status
                }
                try db.forEach(OutboxSQL.lastErrors) { errors in
                    var status = entry(errors.int(0), "")
                    status.lastErrorAt = errors.int(1) / 1000
                    status.lastError = errors.text(2)
                    if !status.address.isEmpty { byID[errors.int(0)] = status }
                }
                try db.forEach(OutboxSQL.endpoints) { endpoints in
                    var status = entry(endpoints.int(0), endpoints.text(1))
                    status.disabledAt = endpoints.int(2)
                    status.disabledReason = endpoints.text(3)
                    byID[endpoints.int(0)] = status
                }
                return byID.values.sorted { $0.address < $1.address }
            }
        }
    }

    public func deadLetters() throws(StateError) -> [DeadLetter] {
        try store.inSnapshot("reading the webhook outbox of") {
            var letters: [DeadLetter] = []
            try db.forEach(OutboxSQL.deadEvents) { statement in
                letters.append(DeadLetter(id: statement.text(0), webhook: statement.text(1), type: statement.text(2),
                                          auditSequence: statement.int(3), attempts: Int(statement.int(4)), lastError: statement.optionalText(5)))
            }
            return letters
        }
    }

    public func attemptCount() throws(StateError) -> Int {
        try store.inSnapshot("reading the webhook outbox of") { Int(try db.integer(OutboxSQL.attemptCount)) }
    }

    public enum RetrySelection: Sendable {
        case event(String)
        case webhook(tenant: String, name: String)
        case all
    }

    public enum RetryProblem: Error, Sendable {
        case noSuchEvent
        case notDead(status: String)
        case noSuchWebhook
    }

    /// Requeues dead letters (due at `now`); for a webhook or all, also re-enables the endpoints a
    /// 410 disabled. Returns how many events were requeued.
    public func retry(_ selection: RetrySelection, now: Int64) throws -> Result<Int, RetryProblem> {
        try store.inOutboxTransaction("requeueing webhook events in") { () throws -> Result<Int, RetryProblem> in
            try store.checkSchemaObjectsForWrite()
            switch selection {
            case .event(let id):
                guard let current = try db.first(OutboxSQL.eventStatus, [.text(id)], { $0.text(0) }) else { return .failure(.noSuchEvent) }
                guard current == "dead" else { return .failure(.notDead(status: current)) }
                return .success(try db.run(OutboxSQL.retryEvent, [.text(id), .integer(now)]))
            case .webhook(let tenant, let name):
                guard let id = try db.first(OutboxSQL.webhookByName, [.text(tenant), .text(name)], { $0.int(0) }) else { return .failure(.noSuchWebhook) }
                try db.run(OutboxSQL.enableEndpoint, [.integer(id)])
                return .success(try db.run(OutboxSQL.retryWebhook, [.integer(id), .integer(now)]))
            case .all:
                try db.run(OutboxSQL.enableAllEndpoints, [])
                return .success(try db.run(OutboxSQL.retryAll, [.integer(now)]))
            }
        }
    }

    /// Deletes delivered events (and their attempts) delivered before `cutoff` (Unix seconds).
    public func prune(deliveredBefore cutoff: Int64) throws(StateError) -> Int {
        try store.inOutboxTransaction("pruning the webhook outbox of") {
            try store.checkSchemaObjectsForWrite()
            try db.run(OutboxSQL.pruneAttempts, [.integer(cutoff)])
            return try db.run(OutboxSQL.pruneEvents, [.integer(cutoff)])
        }
    }
}


