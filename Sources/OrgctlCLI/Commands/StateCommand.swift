import Foundation
import Reconciler
import Spec
import StateStore

/// `orgctl state list [PATTERN]` and `orgctl state show ADDRESS`: what the state database holds,
/// read-only (the database is never created, migrated or written).
enum StateCommand {
    static let formatOption = OptionSpec.option("format", valueName: "format", help: "Output format.", default: "text",
                                                allowedValues: ["text", "json"])

    static let spec = CommandSpec(
        name: "state",
        abstract: "Inspect the resources stored in the state database.",
        subcommands: [
            CommandSpec(
                name: "list",
                abstract: "List the addresses in the state database, with who wrote each row.",
                discussion: """
                    One line per stored resource, sorted by address: the address and its status — 'applied' \
                    (orgctl wrote it and it is unchanged), 'drifted' (orgctl wrote it, and it was changed \
                    outside orgctl since), 'outside' (written outside orgctl; plan deletes or adopts it) — and, \
                    last, 'deleted' for each address orgctl applied whose row was deleted outside orgctl. \
                    PATTERN selects addresses as --target does (* within a segment, ** across; a pattern also \
                    selects what is below it). Reads the database read-only; needs the state key (the drift marks \
                    that tell applied rows from drifted ones are keyed with it).
                    Exit status: 0 success (also when nothing matches), 1 error (no database), 64 usage error.
                    """,
                arguments: [ArgumentSpec("pattern", help: "Only addresses this pattern selects, e.g. 'tenant/acme/**'.", optional: true)],
                options: [formatOption] + StateAccess.readOptions),
            CommandSpec(
                name: "show",
                abstract: "Show one stored resource and its values.",
                discussion: """
                    Prints the resource at ADDRESS as the state database holds it: its kind, parent, status \
                    (as for 'state list') and every stored value. Secrets show only as (sensitive) and \
                    certificates by their SHA-256; an API key's stored prefix and hash are never shown. For a \
                    drifted row, each value that differs from what orgctl last applied shows that value too.
                    Exit status: 0 success, 1 error (no database, or no resource at ADDRESS), 64 usage error.
                    """,
                arguments: [ArgumentSpec("address", help: "The resource's address, e.g. tenant/acme/webhook/slack.")],
                options: [formatOption] + StateAccess.readOptions),
            StateMigrateCommand.spec,
            StateRekeyCommand.spec,
        ])

    /// Who last wrote a stored row.
    enum Status: String {
        case applied, drifted, outside, deleted

        init(_ stored: StoredResource) {
            self = stored.appliedDigest == nil ? .outside : stored.isDrifted ? .drifted : .applied
        }

        var meaning: String {
            switch self {
            case .applied: "applied by orgctl, unchanged since"
            case .drifted: "applied by orgctl, changed outside orgctl since"
            case .outside: "written outside orgctl"
            case .deleted: "applied by orgctl, deleted outside orgctl since"
            }
        }
    }

    static func list(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let pattern = command.argument("pattern").map(AddressPattern.init)
        let stored = try readExisting(command, context, withApplied: false).state
        var rows: [(address: String, kind: String, status: Status)] = []
        for resource in stored.resources where pattern?.selects(resource.address) ?? true {
            rows.append((resource.address, resource.resource.kind.rawValue, Status(resource)))
        }
        rows.sort { $0.address < $1.address }
        // Addresses orgctl applied whose rows are gone: their kind is not known any more.
        let deleted = stored.missingApplied.filter { pattern?.selects($0) ?? true }.sorted()
        let console = context.console
        if command.value("format") == "json" {
            var resources: [[String: Any]] = rows.map { ["address": $0.address, "kind": $0.kind, "status": $0.status.rawValue] }
            resources += deleted.map { ["address": $0, "status": Status.deleted.rawValue] }
            console.print(JSONOutput.string(["formatVersion": 1, "resources": resources]))
        } else {
            let width = min(72, rows.map(\.address.count).max() ?? 0)
            var text = ""
            for row in rows {
                let address = TerminalText.escape(row.address)
                text += address.padding(toLength: max(width, address.count), withPad: " ", startingAt: 0) + "  \(row.status.rawValue)\n"
            }
            for address in deleted {
                let shown = TerminalText.escape(address)
                text += shown.padding(toLength: max(width, shown.count), withPad: " ", startingAt: 0) + "  \(Status.deleted.rawValue)\n"
            }
            console.out(text)
            let counts = [Status.applied, .drifted, .outside].map { status in (status, rows.count { $0.status == status }) }
            var summary = "\(rows.count) resource\(rows.count == 1 ? "" : "s")"
            summary += ": " + counts.map { "\($0.1) \($0.0.rawValue)" }.joined(separator: ", ")
            if !deleted.isEmpty { summary += "; \(deleted.count) deleted outside orgctl" }
            if rows.isEmpty && deleted.isEmpty, let pattern { summary = "no address in the state matches '\(TerminalText.escape(pattern.description))'" }
            console.info(summary)
        }
        return ExitCode.success
    }

    static func show(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let address = command.argument("address") ?? ""
        let read = try readExisting(command, context)
        let stored = read.state
        guard let found = stored.resource(at: address) else {
            if stored.missingApplied.contains(address) {
                throw CommandFailure(message: "\(TerminalText.escape(address)) was applied by orgctl and has since been deleted outside orgctl; the state holds no values for it",
                                     help: "'orgctl drift DIR' shows it; 'orgctl apply DIR' creates it again")
            }
            let closest = Suggestions.closest(to: address, among: stored.resources.map(\.address))
            throw CommandFailure(message: "the state database holds no resource at '\(TerminalText.escape(address))'",
                                 help: closest.map { "did you mean '\(TerminalText.escape($0))'?" } ?? "list the stored addresses with 'orgctl state list'")
        }
        let status = Status(found)
        let resource = found.resource
        // Key material (prefix and hash of an issued API key) is never shown.
        let attributes = resource.attributes.filter { !(resource.kind == .apiKey && KeyMaterial.isKeyMaterial($0.name)) }
        let hasKey = resource.kind == .apiKey && resource.attributes.contains { $0.name == KeyMaterial.hashAttribute && !$0.value.isNull }
        let applied = read.applied[address]
        func appliedValue(_ attribute: Attribute) -> Value? {
            guard status == .drifted, let values = applied?.attributes else { return nil }
            let before = values.first { $0.name == attribute.name }?.value ?? .null
            return before == attribute.value ? nil : before
        }
        let console = context.console
        if command.value("format") == "json" {
            var values: [String: Any] = [:]
            var appliedValues: [String: Any] = [:]
            for attribute in attributes {
                values[attribute.name] = PlanRenderer.jsonValue(attribute.value)
                if let before = appliedValue(attribute) { appliedValues[attribute.name] = PlanRenderer.jsonValue(before) }
            }
            var object: [String: Any] = ["formatVersion": 1, "address": resource.address, "kind": resource.kind.rawValue,
                                         "status": status.rawValue, "values": values]
            if let parent = resource.parent { object["parent"] = parent }
            if resource.kind == .apiKey { object["keyIssued"] = hasKey }
            if !appliedValues.isEmpty { object["applied"] = appliedValues }
            if let applied, status != .outside { object["lastAppliedAuditEntry"] = applied.auditSequence }
            console.print(JSONOutput.string(object))
            return ExitCode.success
        }
        let style = console.style(forStdout: true)
        var text = "\(style.bold(TerminalText.escape(resource.address))) (\(resource.kind.rawValue))\n"
        if let parent = resource.parent { text += "  parent: \(TerminalText.escape(parent))\n" }
        text += "  status: \(status.rawValue) (\(status.meaning))"
        if let applied, status != .outside { text += "; last applied in audit entry \(applied.auditSequence)" }
        text += "\n"
        for (attribute, name) in zip(attributes, PlanRenderer.aligned(attributes.map(\.name))) {
            text += "      \(name) = \(PlanRenderer.show(attribute.value))"
            if let before = appliedValue(attribute) { text += style.yellow("  (as applied: \(PlanRenderer.show(before)))") }
            text += "\n"
        }
        if resource.kind == .apiKey {
            text += "      key: \(hasKey ? "(issued; only its SHA-256 is stored)" : "(none recorded)")\n"
        }
        console.out(text)
        return ExitCode.success
    }

    /// The stored state (and, with `withApplied`, what orgctl last applied to drifted rows); a missing
    /// database is an error.
    private static func readExisting(_ command: ParsedCommand, _ context: CommandContext, withApplied: Bool = true) throws
        -> (state: StoredState, applied: [String: AppliedResource])
    {
        // Drift marks are keyed with the state key: telling applied rows from drifted ones needs it.
        guard let store = try StateAccess.open(command, context, access: .readOnly, key: try StateAccess.requiredKey(command, context)) else {
            throw CommandFailure(message: "the state database '\(StateAccess.display(command, context))' does not exist",
                                 help: "pass --state (or set ORGCTL_STATE) to the database that 'orgctl apply' wrote")
        }
        do {
            let read = withApplied ? try store.readWithApplied() : (state: try store.read(), applied: [:])
            context.lifetime.keep(read.state)
            return read
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
    }
}
