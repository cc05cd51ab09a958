import Reconciler

/// `--allow-delete-tenant` and `--max-tenant-delete-percent` (plan and apply), and how plans show
/// the tenants they delete. The rule itself is ``TenantDeletionPolicy`` in the Reconciler.
enum TenantDeletionOptions {
    static let options: [OptionSpec] = [
        .option("allow-delete-tenant", valueName: "slug",
                help: "Confirm deleting tenant SLUG, or more than --max-tenant-delete-percent of it; without it apply refuses such a plan.",
                repeatable: true),
        .option("max-tenant-delete-percent", valueName: "percent",
                help: "Deleting more than this share of one tenant's resources (and at least \(TenantDeletionPolicy.minimumPartialDeletes)) needs --allow-delete-tenant.",
                default: "\(TenantDeletionPolicy.defaultMaxPercent)", type: .integer(min: 0, max: 100)),
    ]

    /// The policy the command line asks for (the parser has checked the percentage, before any work).
    static func policy(_ command: ParsedCommand) -> TenantDeletionPolicy {
        var policy = TenantDeletionPolicy(allowed: Set(command.values("allow-delete-tenant")))
        if let value = command.integer("max-tenant-delete-percent") { policy.maxPercent = value }
        return policy
    }

    /// One line per tenant: what is deleted, and whether apply will refuse it. Empty when none.
    static func text(_ deletions: [TenantDeletion], style: Style) -> String {
        guard !deletions.isEmpty else { return "" }
        var out = "\n"
        for deletion in deletions {
            let label = deletion.confirmed ? style.yellow("confirmed") : style.red("protected")
            out += "\(label): \(describe(deletion)); \(consequence(deletion))\n"
        }
        return out
    }

    /// `tenant/acme is deleted with the 21 resources it holds`.
    static func describe(_ deletion: TenantDeletion) -> String {
        let address = TerminalText.escape(deletion.address)
        if deletion.wholeTenant {
            let below = (deletion.held ?? deletion.deletes) - 1
            return "\(address) is deleted with the \(below) resource\(below == 1 ? "" : "s") it holds"
        }
        let held = deletion.held.map { " of the \($0)" } ?? ""
        return "the plan deletes \(deletion.deletes)\(held) resources of \(address)"
    }

    static func consequence(_ deletion: TenantDeletion) -> String {
        let flag = "--allow-delete-tenant \(TerminalText.escape(deletion.slug))"
        return deletion.confirmed ? "allowed by \(flag)" : "apply will refuse unless given \(flag)"
    }

    /// For plan JSON (`protectedDeletions`).
    static func json(_ deletions: [TenantDeletion]) -> [[String: Any]] {
        deletions.map { deletion in
            var object: [String: Any] = ["tenant": deletion.slug, "address": deletion.address, "wholeTenant": deletion.wholeTenant,
                                         "deletes": deletion.deletes, "confirmed": deletion.confirmed]
            if let held = deletion.held { object["held"] = held }
            return object
        }
    }

    /// Apply's refusal: nothing was written.
    static func refusal(_ deletions: [TenantDeletion]) -> CommandFailure {
        let what = deletions.map(describe).joined(separator: "; ")
        let flags = deletions.map { "--allow-delete-tenant \(TerminalText.escape($0.slug))" }.joined(separator: " ")
        return CommandFailure(message: "deleting a tenant, or most of one, needs its own confirmation: \(what); nothing was applied",
                              help: "if this is intended, review the plan and run apply again with \(flags); if not, restore the tenant's file")
    }
}
