public import Audit
public import Spec
public import StateStore
import Foundation

/// Which applied changes become webhook events, for whom, and with what payload
/// (docs/webhooks.md#events). Pure: apply calls it with what it wrote and hands the result to the
/// outbox in the same transaction.
public enum WebhookEvents {
    /// The event type of each resource kind and action: one row per kind (create, update, delete).
    /// Adoptions write no platform row and send nothing; the Platform's catalogs (plans, permissions,
    /// events, system roles) belong to no tenant and send nothing. An API key update that issues new
    /// key material is `api_key.rotated` (the key itself is never in an event).
    public static let table: [(kind: ResourceKind, create: String, update: String, delete: String)] = [
        (.tenant, "organization.created", "organization.updated", "organization.deleted"),
        (.tenantRole, "role.created", "role.updated", "role.deleted"),
        (.member, "member.added", "member.updated", "member.removed"),
        (.team, "team.created", "team.updated", "team.deleted"),
        (.teamMember, "team.member_added", "team.member_updated", "team.member_removed"),
        (.ssoProvider, "sso.provider_added", "sso.provider_updated", "sso.provider_removed"),
        (.webhook, "webhook.created", "webhook.updated", "webhook.deleted"),
        (.apiKey, "api_key.issued", "api_key.updated", "api_key.revoked"),
    ]

    /// The type sent when an API key is rotated (an update that issues new key material).
    public static let keyRotated = "api_key.rotated"
    /// The type of `orgctl webhooks test`.
    public static let test = "webhook.test"

    /// The event type of a change, or nil when it sends none.
    public static func type(of change: Change) -> String? {
        guard let row = table.first(where: { $0.kind == change.kind }) else { return nil }
        switch change.action {
        case .create: return row.create
        case .update: return change.kind == .apiKey && change.key == .rotate ? keyRotated : row.update
        case .delete: return row.delete
        case .adopt: return nil
        }
    }

    /// A webhook as it is once the apply commits.
    struct Subscriber {
        var address: String
        var patterns: [String]
    }

    /// The enabled webhooks of each tenant (keyed `tenant/<slug>`) and the Platform's event
    /// catalog, as they are after `plan` is applied to `state` (the state with renames applied).
    /// `enabled` absent (not managed) counts as enabled.
    static func subscribers(plan: Plan, state: StoredState) -> (catalog: Set<String>, byTenant: [String: [Subscriber]]) {
        var changes: [String: Change] = [:]
        for index in plan.changes.indices where plan.changes[index].kind == .webhook || plan.changes[index].kind == .event {
            changes[plan.changes[index].address] = plan.changes[index]
        }
        func after(_ address: String, _ stored: Resource?) -> [String: Value]? {
            var values: [String: Value] = [:]
            for attribute in stored?.attributes ?? [] { values[attribute.name] = attribute.value }
            guard let change = changes[address] else { return stored == nil ? nil : values }
            switch change.action {
            case .delete: return nil
            case .create: values = [:]
            case .update, .adopt: break
            }
            for field in change.fields { values[field.name] = field.after }
            return values
        }
        var catalog: Set<String> = []
        var byTenant: [String: [Subscriber]] = [:]
        var seen: Set<String> = []
        let stored = state.resources.lazy.filter { $0.resource.kind == .webhook || $0.resource.kind == .event }.map(\.resource)
        // By position: `filter` copies every change it tests.
        let created = plan.changes.indices.filter { index in
            let change = (kind: plan.changes[index].kind, action: plan.changes[index].action)
            return (change.kind == .webhook || change.kind == .event) && change.action == .create && state.resource(at: plan.changes[index].address) == nil
        }.map { plan.changes[$0] }
        for (address, kind, resource) in stored.map({ ($0.address, $0.kind, Optional($0)) }) + created.map({ ($0.address, $0.kind, nil as Resource?) }) {
            guard seen.insert(address).inserted, let values = after(address, resource) else { continue }
            if kind == .event {
                catalog.insert(String(address.dropFirst("event/".count)))
                continue
            }
            if case .bool(false) = values["enabled"] ?? .null { continue }
            guard case .list(let patterns) = values["events"] ?? .null else { continue }
            byTenant[Change.group(of: address), default: []].append(Subscriber(address: address, patterns: patterns))
        }
        return (catalog, byTenant)
    }

    /// What an apply wrote that will become events, kept as the apply goes: only the changes whose
    /// event type is in the catalog and that some webhook of their tenant subscribes to. An apply
    /// with no subscriber keeps nothing (the first apply of 10,000 tenants would otherwise hold
    /// every audit entry until it commits).
    public struct Recorder {
        let plan: Plan
        let state: StoredState
        let catalog: Set<String>
        let byTenant: [String: [Subscriber]]
        var written: [(change: Change, entry: AuditEntry)] = []

        /// `plan` and `state` (the state with renames applied) as ``outbox(for:plan:state:)`` takes them.
        public init(plan: Plan, state: StoredState) {
            self.plan = plan
            self.state = state
            (catalog, byTenant) = WebhookEvents.subscribers(plan: plan, state: state)
        }

        /// Whether `change` will send an event: when it does not, the caller need not build its entry.
        public func wants(_ change: Change) -> Bool {
            guard !byTenant.isEmpty, let type = WebhookEvents.type(of: change), catalog.contains(type),
                let subscribers = byTenant[Change.group(of: change.address)]
            else { return false }
            return subscribers.contains { $0.patterns.contains { Glob.matches($0, type) } }
        }

        public mutating func record(_ change: Change, _ entry: AuditEntry) {
            if wants(change) { written.append((change, entry)) }
        }

        /// The outbox rows for what was recorded.
        public var events: [OutboxEvent] { WebhookEvents.outbox(for: written, plan: plan, state: state) }
    }

    /// The outbox rows for what an apply wrote: for each audited change that has an event type in
    /// the catalog, one row per enabled webhook of its tenant with a matching pattern. `plan` and
    /// `state` give the webhooks and the catalog after the apply (see ``subscribers(plan:state:)``).
    public static func outbox(for written: [(change: Change, entry: AuditEntry)], plan: Plan, state: StoredState) -> [OutboxEvent] {
        guard !written.isEmpty else { return [] }
        let (catalog, byTenant) = subscribers(plan: plan, state: state)
        guard !byTenant.isEmpty else { return [] }
        var events: [OutboxEvent] = []
        // Every entry of one apply has the apply's time.
        let created = ISO8601DateFormatter().date(from: written[0].entry.time).map { Int64($0.timeIntervalSince1970) } ?? 0
        for (change, entry) in written {
            guard let type = type(of: change), catalog.contains(type) else { continue }
            let tenant = Change.group(of: change.address)
            let subscribers = (byTenant[tenant] ?? []).filter { $0.patterns.contains { Glob.matches($0, type) } }
            guard !subscribers.isEmpty else { continue }
            let body = payload(type: type, tenant: String(tenant.dropFirst("tenant/".count)), entry: entry)
            for subscriber in subscribers.sorted(by: { $0.address < $1.address }) {
                events.append(OutboxEvent(webhook: subscriber.address, type: type, auditSequence: entry.sequence, createdAt: created, payload: body))
            }
        }
        return events
    }

    /// The request body (Standard Webhooks: `type`, `timestamp`, `data`), RFC 8785 canonical JSON.
    /// `before`/`after` are the audit entry's: secrets only as their keyed fingerprint's prefix,
    /// certificates as their digest, API keys as their display prefix and SHA-256.
    public static func payload(type: String, tenant: String, entry: AuditEntry) -> [UInt8] {
        var data = JSONObject()
        data["tenant"] = .string(tenant)
        data["address"] = .string(entry.address)
        data["action"] = .string(entry.action)
        data["before"] = entry.before ?? .null
        data["after"] = entry.after ?? .null
        data["actor"] = .string(entry.actor)
        data["source"] = .string(entry.source)
        data["auditSequence"] = .int(entry.sequence)
        data["planId"] = .string(entry.planID)
        if let reason = entry.reason { data["reason"] = .string(reason) }
        var body = JSONObject()
        body["type"] = .string(type)
        body["timestamp"] = .string(entry.time)
        body["data"] = .object(data)
        return CanonicalJSON.encode(.object(body))
    }

    /// The body of `orgctl webhooks test`.
    public static func testPayload(webhook: String, time: String) -> [UInt8] {
        var data = JSONObject()
        data["webhook"] = .string(webhook)
        var body = JSONObject()
        body["type"] = .string(test)
        body["timestamp"] = .string(time)
        body["data"] = .object(data)
        return CanonicalJSON.encode(.object(body))
    }
}
