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

/// The webhook outbox of a SQLite state database (docs/webhooks.md). Every SQL text is in
/// ``OutboxSQL``; each call below is one transaction.
public final class Outbox {
    let store: SQLiteStateStore
    private var db: SQLiteConnection { store.db }

    init(store: SQLiteStateStore) { self.store = store }

    /// The address of the webhook row whose tenant slug and name are in these columns (as the state reader spells it).
    static func webhookAddress(_ row: SQLiteStatement, tenantAt tenant: Int32, nameAt name: Int32) -> String {
        "tenant/\(row.withText(at: tenant) { AddressSegment.encode($0) })/webhook/\(row.withText(at: name) { AddressSegment.encode($0) })"
    }

    // MARK: Enqueue

    /// Writes `events` inside the apply's transaction (`db` is the transaction's connection).
    static func enqueue(_ events: [OutboxEvent], db: SQLiteConnection, databaseID: String) throws {
        guard !events.isEmpty else { return }
        var ids: [String: Int64] = [:]
        let select = try db.prepare(OutboxSQL.webhookIDs)
        while try select.step() {
            ids[webhookAddress(select, tenantAt: 1, nameAt: 2)] = select.int(at: 0)
        }
        let insert = try db.cached(OutboxSQL.insertEvent)
        for event in events {
            guard let webhookID = ids[event.webhook] else {
                throw StateError(.other, "internal error: the webhook \(event.webhook) of an event does not exist", help: "report this as a bug")
            }
            let id = eventID(databaseID: databaseID, webhookID: webhookID, payload: event.payload)
            try insert.run([.text(id), .integer(webhookID), .text(event.webhook), .text(event.type), .integer(event.auditSequence),
                            .integer(event.createdAt), .blob(event.payload)])
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
        try store.storeCall("claiming webhook events in") {
            try db.transaction(.immediate) {
                try store.checkSchemaObjects(unadopted: false)
                let claim = try db.prepare(OutboxSQL.claim)
                try claim.bind([.text(deliverer), .integer(leaseUntil), .integer(now), .integer(Int64(max(1, limit)))])
                var events: [ClaimedEvent] = []
                while try claim.step() {
                    events.append(ClaimedEvent(id: claim.text(at: 0), webhookID: claim.int(at: 1), webhook: claim.text(at: 2), type: claim.text(at: 3),
                                               payload: claim.blob(at: 4), attempts: Int(claim.int(at: 5)), createdAt: claim.int(at: 6), target: nil))
                }
                claim.reset()
                var targets: [Int64: DeliveryTarget?] = [:]
                for index in events.indices {
                    let id = events[index].webhookID
                    if targets[id] == nil { targets[id] = try target(webhookID: id) }
                    events[index].target = targets[id] ?? nil
                }
                return events.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            }
        }
    }

    /// The webhook with row id `webhookID` as stored now, its secret decrypted; nil when it is gone.
    func target(webhookID: Int64) throws -> DeliveryTarget? {
        let statement = try db.prepare(OutboxSQL.webhook)
        try statement.bind([.integer(webhookID)])
        guard try statement.step() else { return nil }
        let address = Self.webhookAddress(statement, tenantAt: 5, nameAt: 6)
        var secret: [UInt8]?
        if let sealed = statement.optionalBlob(at: 1), let key = store.key {
            secret = try? key.open(sealed, address: address, attribute: "secret")
        }
        return DeliveryTarget(address: address, url: statement.optionalText(at: 0), secret: secret,
                              timeoutSeconds: statement.isNull(at: 2) ? nil : Int(statement.int(at: 2)),
                              maxRetries: statement.isNull(at: 3) ? nil : Int(statement.int(at: 3)),
                              enabled: statement.isNull(at: 4) || statement.int(at: 4) != 0,
                              disabledReason: statement.optionalText(at: 7))
    }

    /// Extends the lease of `event` until `until`; false when this deliverer no longer holds it.
    public func renew(_ event: ClaimedEvent, deliverer: String, until: Int64) throws(StateError) -> Bool {
        try store.storeCall("renewing a webhook event's claim in") {
            try db.transaction(.immediate) {
                try db.cached(OutboxSQL.renew).run([.text(event.id), .text(deliverer), .integer(until)])
                return db.changes == 1
            }
        }
    }

    /// The webhook `name` of tenant `tenant` as stored now; nil when there is none.
    public func target(tenant: String, name: String) throws(StateError) -> DeliveryTarget? {
        try store.storeCall("reading the webhooks of") {
            try db.transaction(.deferred) {
                let find = try db.prepare(OutboxSQL.webhookByName)
                try find.bind([.text(tenant), .text(name)])
                guard try find.step() else { return nil }
                return try target(webhookID: find.int(at: 0))
            }
        }
    }

    /// Records an attempt (when one was made) and the event's outcome in one transaction;
    /// `lastError` is kept on the event (the attempt's error, or why none was made).
    public func finish(_ event: ClaimedEvent, deliverer: String, attempt: DeliveryAttempt?, outcome: DeliveryOutcome, lastError: String?,
                       now: Int64) throws(StateError) {
        try store.storeCall("recording a webhook delivery in") {
            try db.transaction(.immediate) {
                if let attempt {
                    try db.cached(OutboxSQL.insertAttempt).run([
                        .text(event.id), .integer(attempt.startedAt), .integer(attempt.durationMilliseconds),
                        attempt.statusCode.map { .integer(Int64($0)) } ?? .null, attempt.error.map { .text($0) } ?? .null,
                        .blob(attempt.response), .text(deliverer),
                    ])
                }
                let error: SQLiteValue = lastError.map { .text($0) } ?? .null
                switch outcome {
                case .delivered:
                    try db.cached(OutboxSQL.delivered).run([.text(event.id), .text(deliverer), .integer(now)])
                case .retry(let at):
                    try db.cached(OutboxSQL.retryLater).run([.text(event.id), .text(deliverer), .integer(at), error])
                case .dead(let disable):
                    try db.cached(OutboxSQL.deadLetter).run([.text(event.id), .text(deliverer), .integer(attempt == nil ? 0 : 1), error, .integer(now)])
                    if let disable {
                        try db.cached(OutboxSQL.disableEndpoint).run([.integer(event.webhookID), .text(event.target?.address ?? event.webhook),
                                                                      .integer(now), .text(disable)])
                    }
                case .released:
                    try db.cached(OutboxSQL.release).run([.text(event.id), .text(deliverer)])
                }
            }
        }
    }

    // MARK: Operating

    /// Every webhook stored or named by an event, sorted by address.
    public func status() throws(StateError) -> [WebhookDeliveryStatus] {
        try store.storeCall("reading the webhook outbox of") {
            try db.transaction(.deferred) {
                var byID: [Int64: WebhookDeliveryStatus] = [:]
                let webhooks = try db.prepare(OutboxSQL.allWebhooks)
                while try webhooks.step() {
                    byID[webhooks.int(at: 0)] = WebhookDeliveryStatus(address: Self.webhookAddress(webhooks, tenantAt: 1, nameAt: 2), exists: true,
                                                                      enabled: webhooks.isNull(at: 3) || webhooks.int(at: 3) != 0)
                }
                func entry(_ id: Int64, _ address: String) -> WebhookDeliveryStatus {
                    byID[id] ?? WebhookDeliveryStatus(address: address, exists: false, enabled: false)
                }
                let counts = try db.prepare(OutboxSQL.counts)
                while try counts.step() {
                    var status = entry(counts.int(at: 0), counts.text(at: 1))
                    status.pending += Int(counts.int(at: 2))
                    status.delivered += Int(counts.int(at: 3))
                    status.dead += Int(counts.int(at: 4))
                    status.attempts += Int(counts.int(at: 5))
                    status.latencySeconds += counts.int(at: 6)
                    byID[counts.int(at: 0)] = status
                }
                let errors = try db.prepare(OutboxSQL.lastErrors)
                while try errors.step() {
                    var status = entry(errors.int(at: 0), "")
                    status.lastErrorAt = errors.int(at: 1) / 1000
                    status.lastError = errors.text(at: 2)
                    if !status.address.isEmpty { byID[errors.int(at: 0)] = status }
                }
                let endpoints = try db.prepare(OutboxSQL.endpoints)
                while try endpoints.step() {
                    var status = entry(endpoints.int(at: 0), endpoints.text(at: 1))
                    status.disabledAt = endpoints.int(at: 2)
                    status.disabledReason = endpoints.text(at: 3)
                    byID[endpoints.int(at: 0)] = status
                }
                return byID.values.sorted { $0.address < $1.address }
            }
        }
    }

    public func deadLetters() throws(StateError) -> [DeadLetter] {
        try store.storeCall("reading the webhook outbox of") {
            let statement = try db.prepare(OutboxSQL.deadEvents)
            var letters: [DeadLetter] = []
            while try statement.step() {
                letters.append(DeadLetter(id: statement.text(at: 0), webhook: statement.text(at: 1), type: statement.text(at: 2),
                                          auditSequence: statement.int(at: 3), attempts: Int(statement.int(at: 4)), lastError: statement.optionalText(at: 5)))
            }
            return letters
        }
    }

    public func attemptCount() throws(StateError) -> Int {
        try store.storeCall("reading the webhook outbox of") {
            let statement = try db.prepare(OutboxSQL.attemptCount)
            _ = try statement.step()
            return Int(statement.int(at: 0))
        }
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
        try store.storeCall("requeueing webhook events in") {
            try db.transaction(.immediate) { () throws -> Result<Int, RetryProblem> in
                try store.checkSchemaObjects(unadopted: false)
                switch selection {
                case .event(let id):
                    let status = try db.prepare(OutboxSQL.eventStatus)
                    try status.bind([.text(id)])
                    guard try status.step() else { return .failure(.noSuchEvent) }
                    let current = status.text(at: 0)
                    status.reset()
                    guard current == "dead" else { return .failure(.notDead(status: current)) }
                    try db.prepare(OutboxSQL.retryEvent).run([.text(id), .integer(now)])
                case .webhook(let tenant, let name):
                    let find = try db.prepare(OutboxSQL.webhookByName)
                    try find.bind([.text(tenant), .text(name)])
                    guard try find.step() else { return .failure(.noSuchWebhook) }
                    let id = find.int(at: 0)
                    find.reset()
                    try db.prepare(OutboxSQL.enableEndpoint).run([.integer(id)])
                    try db.prepare(OutboxSQL.retryWebhook).run([.integer(id), .integer(now)])
                case .all:
                    try db.prepare(OutboxSQL.enableAllEndpoints).run()
                    try db.prepare(OutboxSQL.retryAll).run([.integer(now)])
                }
                return .success(db.changes)
            }
        }
    }

    /// Deletes delivered events (and their attempts) delivered before `cutoff` (Unix seconds).
    public func prune(deliveredBefore cutoff: Int64) throws(StateError) -> Int {
        try store.storeCall("pruning the webhook outbox of") {
            try db.transaction(.immediate) {
                try store.checkSchemaObjects(unadopted: false)
                try db.prepare(OutboxSQL.pruneAttempts).run([.integer(cutoff)])
                try db.prepare(OutboxSQL.pruneEvents).run([.integer(cutoff)])
                return db.changes
            }
        }
    }
}

extension SQLiteStateStore {
    /// The webhook outbox of this database.
    public var outbox: Outbox { Outbox(store: self) }
}

extension SQLiteStateTransaction {
    func enqueueEvents(_ events: [OutboxEvent]) throws {
        try Outbox.enqueue(events, db: store.db, databaseID: store.databaseID)
    }
}
