import Audit
import Foundation
import Reconciler
import Spec
import StateStore

/// `orgctl access`: who can do what in a tenant, and why (``AccessModel``), from the state database or
/// from a configuration folder (`--config DIR`), and the access-review report with who last changed each
/// membership (from the audit log).
enum AccessCommand {
    static let spec = CommandSpec(
        name: "access",
        abstract: "Explain who can do what in a tenant, and write access-review reports.",
        discussion: """
            SUBJECT is a member's e-mail address, or the word 'review'.
              orgctl access alice@acme.com --tenant acme              # roles, permissions, teams, expiry, SSO/MFA
              orgctl access frank@acme.com --tenant acme --can apps.delete
              orgctl access --tenant acme --who-can users.remove
              orgctl access review --tenant acme --format csv > acme-review.csv
            Permissions are the Platform's catalog; a role's patterns are expanded against it (* matches any run \
            of characters: apps.*, *.read, *). A membership whose expires date is before today grants nothing.
            Reads the state database read-only (--state; no state key is needed, and one that is given must be the \
            database's), or with --config DIR the configuration as planned (no database, no secrets, no audit \
            columns). 'review' without --tenant covers every tenant, one tenant at a time as it is written.
            Exit status: 0 success (--can: allowed), 4 --can: denied, 1 error (no such tenant or member, unknown \
            permission, no database), 64 usage error.
            """,
        arguments: [ArgumentSpec("subject", help: "A member's e-mail address, or 'review'.", optional: true)],
        options: [
            .option("tenant", valueName: "slug", help: "The tenant (required except for 'review', which then covers every tenant)."),
            .option("can", valueName: "permission", help: "Answer yes (exit 0) or no (exit 4): does SUBJECT hold this permission?"),
            .option("who-can", valueName: "permission", help: "List everyone in the tenant who holds this permission, and through what."),
            .option("config", valueName: "dir", help: "Read a configuration folder instead of the state database."),
            .option("format", valueName: "format", help: "Output format ('review': markdown, csv or json).", default: "text",
                    allowedValues: ["text", "json", "markdown", "csv"]),
        ] + StateAccess.readOptions + ValidateCommand.inputOptions,
        constraints: [.exclusive(["can", "who-can"])])

    struct Source {
        var model: AccessModel
        /// Membership address → its last audit entry; nil with --config.
        var history: [String: AuditFacts]?
    }

    /// What the review shows of a membership's last audit entry.
    struct AuditFacts {
        var time: String
        var actor: String
        var action: String
        var source: String
        var planID: String
    }

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let subject = command.argument("subject")
        let format = command.value("format") ?? "text"
        if subject == "review" {
            return try review(command, context, format: format)
        }
        guard let slug = command.value("tenant") else {
            throw CommandFailure(message: "access needs --tenant SLUG", help: "for example: orgctl access alice@acme.com --tenant acme",
                                 exitCode: ExitCode.usage)
        }
        if let permission = command.value("who-can") {
            if subject != nil {
                throw CommandFailure(message: "--who-can lists everyone who holds a permission and takes no e-mail address",
                                     help: "orgctl access --tenant \(slug) --who-can \(permission)", exitCode: ExitCode.usage)
            }
            let source = try load(command, context, slug: slug, history: false)
            return try whoCan(permission, tenant: try tenant(slug, source.model), source.model, format: format, context.console)
        }
        guard let email = subject else {
            throw CommandFailure(message: "access needs a member's e-mail address, --who-can PERMISSION, or 'review'",
                                 help: "orgctl access alice@acme.com --tenant \(slug)", exitCode: ExitCode.usage)
        }
        let source = try load(command, context, slug: slug, history: false)
        let model = source.model
        let tenant = try tenant(slug, model)
        if let permission = command.value("can") {
            return try can(email, permission, tenant: tenant, model, format: format, context.console)
        }
        guard let explanation = model.explain(email, tenant: tenant) else {
            throw notMember(email, tenant)
        }
        if format == "json" {
            context.console.print(JSONOutput.string(json(explanation)))
        } else {
            context.console.out(text(explanation, model))
        }
        return ExitCode.success
    }

    // MARK: Reading

    /// The resources from the state (read-only) or the configuration; with `history`, each membership's
    /// last audit entry for the tenants `slug` selects (all when nil).
    static func load(_ command: ParsedCommand, _ context: CommandContext, slug: String?, history: Bool) throws -> Source {
        let today = ConfigurationLoader.calendarDate(context.now)
        if let directory = command.value("config") {
            let loaded = try ValidateCommand.load(directory, context, command)
            guard let configuration = loaded.configuration else {
                let renderer = DiagnosticRenderer(style: context.console.style(forStdout: false))
                context.console.err(renderer.text(loaded.diagnostics.sorted))
                throw CommandFailure(message: "the configuration is invalid: \(loaded.diagnostics.errorCount) error\(loaded.diagnostics.errorCount == 1 ? "" : "s")",
                                     help: "fix the errors above ('orgctl validate \(directory)' shows them all)")
            }
            context.lifetime.keep(loaded)
            // No secret is read: access needs none, and a placeholder stands for every fingerprint.
            let desired = configuration.desiredState { _ in "hmac-sha256:" }
            return Source(model: AccessModel(resources: desired.resources, today: today), history: nil)
        }
        guard let store = try StateAccess.open(command, context, access: .readOnly, key: try StateAccess.key(command, context)) else {
            throw CommandFailure(message: "the state database '\(StateAccess.display(command, context))' does not exist",
                                 help: "pass --state (or set ORGCTL_STATE) to the database 'orgctl apply' wrote, or read a configuration with --config DIR")
        }
        // One tenant's question reads that tenant's rows (and the platform's) only.
        let stored: StoredState
        do {
            // A tenant that is not there is read in full, for the names to suggest instead.
            if let slug, case let one = try store.read(tenant: slug), one.resource(at: "tenant/\(slug)") != nil {
                stored = one
            } else {
                stored = try store.read()
            }
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
        context.lifetime.keep(stored)
        let model = AccessModel(resources: stored.resources.lazy.map(\.resource), today: today)
        guard history else { return Source(model: model, history: nil) }
        // The audit log, oldest first: the last entry at each membership address wins. Only the address is
        // read from each entry's bytes; the entries that remain last are decoded once, at the end.
        let prefix = Array((slug.map { "tenant/\($0)/member/" } ?? "tenant/").utf8)
        var last: [String: [UInt8]] = [:]
        do {
            try store.forEachAuditRecord { record in
                guard let address = auditAddress(record.entry), address.starts(with: prefix) else { return true }
                let text = String(decoding: address, as: UTF8.self)
                if slug != nil || isMembership(text) { last[text] = record.entry }
                return true
            }
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
        var history: [String: AuditFacts] = [:]
        history.reserveCapacity(last.count)
        // Format 2 entries name members by subject token: resolved, they key the history by the member's address.
        let resolver: SubjectResolver
        do {
            resolver = try store.subjectResolver()
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
        var newest: [String: Int64] = [:]  // a member named in format 1 and then by token: the later entry wins
        for (_, bytes) in last {
            guard let stored = try? AuditEntry(canonicalBytes: bytes) else { continue }
            let entry = resolver.resolve(stored)
            guard newest[entry.address].map({ $0 < entry.sequence }) ?? true else { continue }
            newest[entry.address] = entry.sequence
            history[entry.address] = AuditFacts(time: entry.time, actor: entry.actor, action: entry.action, source: entry.source, planID: entry.planID)
        }
        return Source(model: model, history: history)
    }

    static let addressKey = Array(#""address":""#.utf8)

    /// The top-level `address` of an entry in canonical form, without decoding it: in RFC 8785 JSON a
    /// quote inside a string is escaped, so the first raw `"address":"` is the key of the entry object
    /// (`action` and `actor`, the only members before it, are strings). An address with an escape in it
    /// is not a membership orgctl writes; nil then, and for anything unexpected.
    static func auditAddress(_ bytes: [UInt8]) -> ArraySlice<UInt8>? {
        let key = addressKey
        guard bytes.count > key.count else { return nil }
        var index = 0
        let last = bytes.count - key.count
        while index <= last {
            if bytes[index] == key[0], bytes[index..<(index + key.count)].elementsEqual(key) {
                let start = index + key.count
                guard let end = bytes[start...].firstIndex(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }),
                    bytes[end] == UInt8(ascii: "\"")
                else { return nil }
                return bytes[start..<end]
            }
            index += 1
        }
        return nil
    }

    /// `tenant/<slug>/member/<email>`.
    static func isMembership(_ address: String) -> Bool {
        let parts = address.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "tenant" && parts[2] == "member"
    }

    static func tenant(_ slug: String, _ model: AccessModel) throws -> AccessModel.Tenant {
        guard let tenant = model.tenant(slug) else {
            let closest = Suggestions.closest(to: slug, among: model.tenantAddresses.map { String($0.dropFirst("tenant/".count)) })
            throw CommandFailure(message: "there is no tenant '\(slug)'",
                                 help: closest.map { "did you mean '\($0)'?" } ?? "list the tenants with 'orgctl state list tenant/*'")
        }
        return tenant
    }

    static func notMember(_ email: String, _ tenant: AccessModel.Tenant) -> CommandFailure {
        let closest = Suggestions.closest(to: email.lowercased(), among: tenant.members.map(\.email))
        return CommandFailure(message: "'\(email)' is not a member of \(tenant.address)",
                              help: closest.map { "did you mean '\($0)'?" } ?? "list the members with 'orgctl access review --tenant \(tenant.slug)'")
    }

    static func checkPermission(_ permission: String, _ model: AccessModel) throws {
        guard !model.catalog.contains(permission) else { return }
        throw CommandFailure(message: "'\(permission)' is not a permission of the Platform's catalog",
                             help: Suggestions.closest(to: permission, among: model.catalog).map { "did you mean '\($0)'?" }
                                ?? "the catalog holds: \(model.catalog.prefix(12).joined(separator: ", "))\(model.catalog.count > 12 ? ", …" : "")")
    }

    // MARK: One person

    static func text(_ e: AccessModel.Explanation, _ model: AccessModel) -> String {
        let m = e.member
        var out = "\(TerminalText.escape(m.email)) in \(TerminalText.escape(e.tenant.address))"
        out += " (plan \(TerminalText.escape(e.tenant.plan ?? "?")), status \(TerminalText.escape(e.tenant.status ?? "not managed")))\n"
        if let role = e.role {
            out += "  role: \(TerminalText.escape(role.name)) (\(role.isSystem ? "system role" : "custom role of the tenant")): "
            out += role.patterns.map(TerminalText.quoted).joined(separator: ", ") + "\n"
        } else {
            out += "  role: \(TerminalText.escape(m.role)) (not declared: it grants nothing)\n"
        }
        if let expires = m.expires {
            let limit = e.role?.maxDuration.map { ", role maxDuration \(TerminalText.escape($0))" } ?? ""
            out += e.expired ? "  expiry: expired on \(TerminalText.escape(expires))\(limit): the membership grants nothing\n"
                : "  expiry: guest membership until \(TerminalText.escape(expires))\(limit)\n"
        }
        out += "  effective permissions (\(e.grants.count) of \(model.catalog.count)):\n"
        for grant in e.grants {
            let via = grant.pattern == grant.permission ? "named" : "via \(TerminalText.quoted(grant.pattern))"
            out += "    \(TerminalText.escape(grant.permission))  \(via)\n"
        }
        if e.teams.isEmpty { out += "  teams: none\n" }
        for team in e.teams {
            let inside = team.parents.isEmpty ? "" : " (inside \(team.parents.map(TerminalText.escape).joined(separator: " > ")))"
            out += "  team: \(TerminalText.escape(team.team)) as \(TerminalText.escape(team.role))\(inside)\n"
        }
        out += "  sign-in: SSO \(e.ssoRequired ? "required (a member of the tenant's domains, and the tenant enforces SSO)" : "not required")"
        out += "; MFA \(e.mfaRequired ? "required" : "not required")\n"
        return out
    }

    static func json(_ e: AccessModel.Explanation) -> [String: Any] {
        var object: [String: Any] = [
            "formatVersion": 1, "tenant": e.tenant.address, "email": e.member.email, "role": e.member.role,
            "expired": e.expired, "ssoRequired": e.ssoRequired, "mfaRequired": e.mfaRequired,
            "permissions": e.grants.map { ["permission": $0.permission, "via": $0.pattern] },
            "teams": e.teams.map { ["team": $0.team, "role": $0.role, "parents": $0.parents] as [String: Any] },
        ]
        if let role = e.role { object["roleKind"] = role.isSystem ? "system" : "tenant"; object["rolePermissions"] = role.patterns }
        if let expires = e.member.expires { object["expires"] = expires }
        return object
    }

    static func can(_ email: String, _ permission: String, tenant: AccessModel.Tenant, _ model: AccessModel, format: String,
                    _ console: Console) throws -> Int32 {
        try checkPermission(permission, model)
        let explanation = model.explain(email, tenant: tenant)
        let grant = explanation?.grants.first { $0.permission == permission }
        let reason: String
        if let explanation, let grant, let role = explanation.role {
            reason = grant.pattern == permission ? "role \(role.name) names it" : "role \(role.name) grants it through '\(grant.pattern)'"
        } else if explanation == nil {
            reason = "\(email.lowercased()) is not a member of \(tenant.address)"
        } else if let explanation, explanation.expired {
            reason = "the membership expired on \(explanation.member.expires ?? "?")"
        } else if let explanation, let role = explanation.role {
            reason = "role \(role.name) grants only \(role.patterns.joined(separator: ", "))"
        } else {
            reason = "role \(explanation?.member.role ?? "?") is not declared"
        }
        let allowed = grant != nil
        if format == "json" {
            console.print(JSONOutput.string(["formatVersion": 1, "tenant": tenant.address, "email": email.lowercased(), "permission": permission,
                                             "allowed": allowed, "reason": reason]))
        } else {
            console.print("\(allowed ? "yes" : "no"): \(TerminalText.escape(reason))")
        }
        return allowed ? ExitCode.success : ExitCode.denied
    }

    static func whoCan(_ permission: String, tenant: AccessModel.Tenant, _ model: AccessModel, format: String, _ console: Console) throws -> Int32 {
        try checkPermission(permission, model)
        let holders = model.whoCan(permission, in: tenant)
        if format == "json" {
            console.print(JSONOutput.string([
                "formatVersion": 1, "tenant": tenant.address, "permission": permission,
                "members": holders.map { ["email": $0.member.email, "role": $0.role.name, "via": $0.pattern] },
            ]))
            return ExitCode.success
        }
        var out = "\(holders.count) member\(holders.count == 1 ? "" : "s") of \(TerminalText.escape(tenant.address)) can \(TerminalText.escape(permission)):\n"
        let width = min(48, holders.map { TerminalText.escape($0.member.email).count }.max() ?? 0)
        for holder in holders {
            let via = holder.pattern == permission ? "named" : "via \(TerminalText.quoted(holder.pattern))"
            out += "  \(TerminalText.escape(holder.member.email).padding(toLength: max(width, TerminalText.escape(holder.member.email).count), withPad: " ", startingAt: 0))"
                + "  role \(TerminalText.escape(holder.role.name)), \(via)\n"
        }
        console.out(out)
        return ExitCode.success
    }
}

extension ExitCode {
    /// `access --can`: the permission is not held (like `kubectl auth can-i`'s "no").
    static let denied: Int32 = 4
}
