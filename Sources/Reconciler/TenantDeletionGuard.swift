import Spec
public import StateStore

/// Deleting a tenant, or most of one, needs its own confirmation naming the tenant.
///
/// Removing one tenant file plans the deletion of the tenant and everything it holds (SSO,
/// webhooks, API keys, members, teams), often fewer resources than `--max-deletes` allows. So a
/// plan that deletes a tenant, or more than ``maxPercent`` of the resources a tenant holds (and at
/// least ``minimumPartialDeletes`` of them), is refused unless the tenant is named in
/// ``allowed`` (`--allow-delete-tenant SLUG`).
///
/// The protection is on by default and needs no stored flag: when the tenant's file is gone, the
/// rule still holds, because it is a rule about the plan and the stored state, not a setting in
/// the configuration that went away with the file. The confirmation is given to the apply that
/// deletes (never saved in a plan file), so a reviewed plan cannot carry it.
public struct TenantDeletionPolicy: Sendable, Equatable {
    /// Tenant slugs whose deletion (whole or partial) is confirmed.
    public var allowed: Set<String>
    /// The share of a tenant's resources a plan may delete without confirmation, in percent (0–100).
    public var maxPercent: Int

    public static let defaultMaxPercent = 50
    /// Fewer deletions than this in one tenant never need confirmation unless the tenant itself goes.
    public static let minimumPartialDeletes = 10

    public init(allowed: Set<String> = [], maxPercent: Int = defaultMaxPercent) {
        self.allowed = allowed
        self.maxPercent = maxPercent
    }
}

/// One tenant a plan deletes, wholly or in large part.
public struct TenantDeletion: Sendable, Equatable {
    /// The tenant's slug (`acme`), as `--allow-delete-tenant` names it.
    public var slug: String
    /// The plan deletes the tenant itself (and so everything it holds).
    public var wholeTenant: Bool
    /// How many of the tenant's resources the plan deletes (the tenant row included).
    public var deletes: Int
    /// How many resources the tenant holds in the stored state (itself included); nil when unknown
    /// (a saved plan shown without its database).
    public var held: Int?
    /// Confirmed by the policy's `allowed`.
    public var confirmed: Bool

    public var address: String { "tenant/\(slug)" }
}

extension Reconciler {
    /// The tenants `plan` deletes wholly, or beyond `policy.maxPercent` of what they hold in
    /// `stored`, sorted by slug; `confirmed` tells whether the policy allows each. Pure.
    ///
    /// - Parameter stored: the state the plan is (or will be) applied to; nil when it is not at hand,
    ///   in which case only whole-tenant deletions are found.
    public static func tenantDeletions(_ plan: Plan, stored: StoredState?, policy: TenantDeletionPolicy) -> [TenantDeletion] {
        var deletes: [String: Int] = [:]
        var whole: Set<String> = []
        for index in plan.changes.indices where plan.changes[index].action == .delete {
            guard let slug = tenantSlug(plan.changes[index].address) else { continue }
            deletes[slug, default: 0] += 1
            if plan.changes[index].kind == .tenant { whole.insert(slug) }
        }
        guard !deletes.isEmpty else { return [] }
        // What each tenant with deletions holds, under the plan's addresses (a renamed tenant's rows move).
        var held: [String: Int]?
        if let stored {
            var counts: [String: Int] = [:]
            for resource in Renames(plan.changes).translated(stored).resources {
                if let slug = tenantSlug(resource.address), deletes[slug] != nil { counts[slug, default: 0] += 1 }
            }
            held = counts
        }
        var result: [TenantDeletion] = []
        for (slug, count) in deletes {
            let total = held.map { $0[slug] ?? count }
            let isWhole = whole.contains(slug)
            // Over the share: count / total > maxPercent / 100, in integers.
            let overShare = total.map { count >= TenantDeletionPolicy.minimumPartialDeletes && count * 100 > $0 * policy.maxPercent } ?? false
            guard isWhole || overShare else { continue }
            result.append(TenantDeletion(slug: slug, wholeTenant: isWhole, deletes: count, held: total,
                                         confirmed: policy.allowed.contains(slug)))
        }
        return result.sorted { $0.slug < $1.slug }
    }

    /// `acme` of `tenant/acme` and of everything below it; nil for platform addresses.
    static func tenantSlug(_ address: String) -> String? {
        guard address.hasPrefix("tenant/") else { return nil }
        let rest = address.dropFirst("tenant/".count)
        return String(rest.prefix { $0 != "/" })
    }
}
