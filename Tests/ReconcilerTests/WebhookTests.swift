import Audit
import Foundation
import Spec
import StateStore
import Testing

@testable import Reconciler

@Suite("webhook events and delivery rules")
struct WebhookTests {
    // MARK: Signatures

    @Test("the signature matches the Standard Webhooks reference vector (and the standardwebhooks library)")
    func referenceVector() {
        // From the Standard Webhooks specification's test vectors; `standardwebhooks` (PyPI) signs the same.
        let signature = WebhookDelivery.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
                                                  body: Array(#"{"test": 2432232314}"#.utf8),
                                                  secret: Array("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".utf8))
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test("a rotation (new and old whsec_ keys) signs with both; any other secret is used as its bytes")
    func rotationAndRawSecrets() {
        let body = Array("{}".utf8)
        let new = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", old = "whsec_" + Data(repeating: 7, count: 24).base64EncodedString()
        let both = WebhookDelivery.signature(id: "msg_1", timestamp: 1, body: body, secret: Array("\(new) \(old)".utf8))
        let parts = both.split(separator: " ").map(String.init)
        #expect(parts == [WebhookDelivery.signature(id: "msg_1", timestamp: 1, body: body, secret: Array(new.utf8)),
                          WebhookDelivery.signature(id: "msg_1", timestamp: 1, body: body, secret: Array(old.utf8))])
        #expect(WebhookDelivery.signingKeys(secret: Array("plain-secret-value".utf8)) == [Array("plain-secret-value".utf8)])
        // Not valid base64 after the prefix: the whole value is the key, as written.
        #expect(WebhookDelivery.signingKeys(secret: Array("whsec_!!!".utf8)) == [Array("whsec_!!!".utf8)])
    }

    // MARK: Retries

    @Test("the documented schedule, with up to 20% jitter added and never taken away", arguments: [
        (1, 0.0, 5), (1, 0.999, 5), (2, 0.5, 330), (3, 0.0, 1_800), (4, 0.999, 8_638), (9, 0.0, 86_400), (12, 0.5, 95_040),
    ])
    func schedule(retry: Int, random: Double, expected: Int64) {
        #expect(WebhookDelivery.delay(retry: retry, random: random) == expected)
    }

    static let answers: [(WebhookDelivery.Answer, Int, DeliveryOutcome)] = [
        (.status(200, retryAfter: nil), 0, .delivered),
        (.status(204, retryAfter: nil), 4, .delivered),
        (.status(410, retryAfter: nil), 0, .dead(disable: "the endpoint answered 410 Gone")),
        (.status(302, retryAfter: nil), 0, .retry(at: 1_005)),
        (.status(500, retryAfter: nil), 1, .retry(at: 1_300)),
        (.status(429, retryAfter: "3600"), 0, .retry(at: 4_600)),
        (.status(503, retryAfter: "1"), 0, .retry(at: 1_005)),
        (.status(500, retryAfter: "3600"), 0, .retry(at: 1_005)),
        (.failure("timeout: no response within 15s"), 2, .retry(at: 2_800)),
        (.status(500, retryAfter: nil), 3, .dead(disable: nil)),
    ]

    @Test("what each answer does to the event", arguments: answers)
    func outcomes(answer: WebhookDelivery.Answer, attemptsBefore: Int, expected: DeliveryOutcome) {
        let decided = WebhookDelivery.outcome(answer, attemptsBefore: attemptsBefore, maxRetries: 3, now: 1_000, random: 0)
        #expect(decided.outcome == expected)
        #expect((decided.error == nil) == (expected == .delivered))
    }

    @Test("Retry-After in seconds or as an HTTP date, capped at a day; anything else is ignored")
    func retryAfter() {
        #expect(WebhookDelivery.retryAfterSeconds("120", now: 0) == 120)
        #expect(WebhookDelivery.retryAfterSeconds("999999999", now: 0) == 86_400)
        // 2026-11-22T12:00:00Z is 1795348800.
        #expect(WebhookDelivery.retryAfterSeconds("Sun, 22 Nov 2026 12:10:00 GMT", now: 1_795_348_800) == 600)
        #expect(WebhookDelivery.retryAfterSeconds("soon", now: 0) == nil)
        #expect(WebhookDelivery.retryAfterSeconds("-5", now: 0) == nil)
    }

    // MARK: Events

    @Test("the kind/action table: adoptions and the Platform's catalogs send nothing; a key rotation is api_key.rotated")
    func types() {
        func change(_ kind: ResourceKind, _ action: Action, key: KeyIssue? = nil) -> Change {
            Change(address: "tenant/acme/x", kind: kind, parent: "tenant/acme", action: action, fields: [], key: key)
        }
        #expect(WebhookEvents.type(of: change(.member, .create)) == "member.added")
        #expect(WebhookEvents.type(of: change(.member, .update)) == "member.updated")
        #expect(WebhookEvents.type(of: change(.member, .delete)) == "member.removed")
        #expect(WebhookEvents.type(of: change(.tenant, .update)) == "organization.updated")
        #expect(WebhookEvents.type(of: change(.apiKey, .create, key: .issue)) == "api_key.issued")
        #expect(WebhookEvents.type(of: change(.apiKey, .update, key: .rotate)) == "api_key.rotated")
        #expect(WebhookEvents.type(of: change(.apiKey, .update)) == "api_key.updated")
        #expect(WebhookEvents.type(of: change(.apiKey, .delete)) == "api_key.revoked")
        #expect(WebhookEvents.type(of: change(.member, .adopt)) == nil)
        #expect(WebhookEvents.type(of: change(.plan, .create)) == nil)
        #expect(WebhookEvents.type(of: change(.role, .create)) == nil)
    }

    static func webhook(_ name: String, events: [String], enabled: Bool? = nil) -> Resource {
        var attributes: [String: Value] = ["url": .string("https://hooks.example.com/\(name)"), "events": .list(events.sorted())]
        if let enabled { attributes["enabled"] = .bool(enabled) }
        return Fixture.resource("tenant/acme/webhook/\(name)", .webhook, parent: "tenant/acme", attributes)
    }

    static func event(_ name: String) -> Resource { Fixture.resource("event/\(name)", .event) }

    @Test("one event per enabled webhook whose patterns match a type in the catalog, as the webhooks are after the apply")
    func subscribers() throws {
        let catalog = [Self.event("member.added"), Self.event("member.removed")]
        let stored = Fixture.stored([Fixture.acme] + catalog + [Self.webhook("old", events: ["member.*"]), Self.webhook("off", events: ["member.*"])])
        let desired = Fixture.desired([Fixture.acme, Fixture.alice] + catalog + [
            Self.webhook("old", events: ["member.*"]),
            Self.webhook("off", events: ["member.*"], enabled: false),  // disabled by this apply
            Self.webhook("new", events: ["member.added"]),  // created by this apply
            Self.webhook("teams", events: ["team.*"]),
        ], collections: ["tenant/acme/webhook", "tenant/acme/member"])
        let plan = Reconciler.plan(desired: desired, stored: stored)
        let written = plan.changes.enumerated().map { index, change in
            (change: change, entry: AuditEntry(sequence: Int64(index + 1), time: "2026-11-22T12:00:00Z", actor: "ci", source: "git:abc", planID: plan.id,
                                               action: change.action.rawValue, address: change.address, before: nil,
                                               after: Reconciler.auditObject(change.fields, after: true, [])))
        }
        let events = WebhookEvents.outbox(for: written, plan: plan, state: stored)
        #expect(events.map(\.webhook) == ["tenant/acme/webhook/new", "tenant/acme/webhook/old"])
        #expect(events.allSatisfy { $0.type == "member.added" })
        #expect(events.allSatisfy { $0.createdAt == 1_795_348_800 })
        let body = try CanonicalJSON.decode(try #require(events.first?.payload))
        guard case .object(let object) = body, case .object(let data)? = object["data"] else {
            Issue.record("payload is not an object with data")
            return
        }
        #expect(object["type"] == .string("member.added"))
        #expect(data["address"] == .string("tenant/acme/member/alice@acme.com"))
        #expect(data["tenant"] == .string("acme"))
        #expect(data["after"] == .object(["role": .string("owner")]))

        // Not in the catalog: nothing, whatever the patterns.
        let bare = Fixture.stored([Fixture.acme, Self.webhook("old", events: ["*"])])
        let none = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice, Self.webhook("old", events: ["*"])]), stored: bare)
        let noneWritten = none.changes.map { (change: $0, entry: written[0].entry) }
        #expect(WebhookEvents.outbox(for: noneWritten, plan: none, state: bare).isEmpty)
    }

    @Test("apply keeps only the changes that become events: nothing at all when no webhook subscribes")
    func recorderKeepsOnlyWhatIsSent() {
        let catalog = [Self.event("member.added")]
        func entry(_ sequence: Int, _ change: Change, _ plan: Plan) -> AuditEntry {
            AuditEntry(sequence: Int64(sequence), time: "2026-11-22T12:00:00Z", actor: "ci", source: "git:abc", planID: plan.id,
                       action: change.action.rawValue, address: change.address, before: nil, after: nil)
        }
        // No webhook: the first apply of a large configuration keeps no audit entry for events.
        let empty = Fixture.stored([])
        let plain = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice] + catalog), stored: empty)
        var none = WebhookEvents.Recorder(plan: plain, state: empty)
        for (index, change) in plain.changes.enumerated() { none.record(change, entry(index + 1, change, plain)) }
        #expect(plain.changes.count >= 3)
        #expect(none.written.isEmpty)
        #expect(none.events.isEmpty)

        // A webhook created by the same apply: only the member's creation is kept, and it is sent.
        let hooked = Reconciler.plan(desired: Fixture.desired([Fixture.acme, Fixture.alice, Self.webhook("new", events: ["member.*"])] + catalog,
                                                              collections: ["tenant/acme/webhook", "tenant/acme/member"]), stored: empty)
        var some = WebhookEvents.Recorder(plan: hooked, state: empty)
        for (index, change) in hooked.changes.enumerated() { some.record(change, entry(index + 1, change, hooked)) }
        #expect(some.written.map(\.change.address) == ["tenant/acme/member/alice@acme.com"])
        let all = hooked.changes.enumerated().map { (change: $1, entry: entry($0 + 1, $1, hooked)) }
        #expect(some.events.map(\.payload) == WebhookEvents.outbox(for: all, plan: hooked, state: empty).map(\.payload))
    }
}
