import Foundation
import Spec
import StateStore

/// The command-line program: parses arguments, runs one command, returns the exit status.
///
/// The `orgctl` executable only calls ``run(_:environment:console:)``.
public enum Orgctl {
    public static let version = "0.1.0"

    /// The whole command tree: parsing, help and completions all come from it.
    static let commands = CommandSpec(
        name: "orgctl",
        abstract: "Declarative configuration for the tenants of a SaaS platform: validate, plan, apply.",
        discussion: """
            orgctl reads tenants, plans, roles, members, teams, SSO, webhooks and API keys from YAML \
            files kept in git, checks them strictly, and reconciles a SQLite state database with them.
            """,
        inheritedOptions: [
            .flag("no-color", help: "Never colour output. Colour is only used on a terminal.", env: "NO_COLOR"),
            .flag("quiet", short: "q", help: "Print only results and errors, no progress or hints."),
        ],
        subcommands: [
            ValidateCommand.spec, PlanCommand.spec, ApplyCommand.spec, DriftCommand.spec, ExportCommand.spec, AuditCommand.spec,
            InitCommand.spec, ExplainCommand.spec, SchemaCommand.spec, AddressesCommand.spec, CompletionCommand.spec,
            ShowCommand.spec, StateCommand.spec, VersionCommand.spec, WebhooksCommand.spec, AccessCommand.spec, PrivacyCommand.spec,
        ],
        hints: adoptionHints)

    /// What users type to bring an existing database under orgctl: there is no `import`, there is adoption.
    static let adoptionHints: [String: String] = {
        let hint = "to bring an existing platform database under orgctl, write its configuration with 'orgctl export --state DB DIR', review it, then run 'orgctl apply DIR --state DB --adopt' "
            + "(README: \"Adopting an existing database\")"
        return Dictionary(uniqueKeysWithValues: ["import", "adopt", "ingest", "take-over", "takeover"].map { ($0, hint) })
    }()

    /// - Parameter lifetime: keeps large results alive until the process exits (see ``ProcessLifetime``).
    public static func run(_ arguments: [String], environment: [String: String], console: Console,
                           lifetime: ProcessLifetime = ProcessLifetime()) -> Int32 {
        let parser = ArgumentParser(root: commands, version: version)
        let parsed: ParsedCommand
        do {
            switch try parser.parse(arguments) {
            case .help(let text):
                console.print(text)
                return ExitCode.success
            case .version:
                console.out(VersionCommand.text())
                return ExitCode.success
            case .command(let command):
                parsed = command
            }
        } catch {
            console.printError(error.description)
            return ExitCode.usage
        }
        if parsed.flag("no-color") { console.colorDisabled = true }
        console.quiet = parsed.flag("quiet")
        // ORGCTL_NOW pins the clock (RFC 3339) so tests and golden files are reproducible.
        let now = environment["ORGCTL_NOW"].flatMap { ISO8601DateFormatter().date(from: $0) } ?? Date()
        let context = CommandContext(console: console, environment: environment, now: now, lifetime: lifetime)
        do {
            switch parsed.path {
            case ["validate"]: return try ValidateCommand.run(parsed, context)
            case ["plan"]: return try PlanCommand.run(parsed, context)
            case ["apply"]: return try ApplyCommand.run(parsed, context)
            case ["drift"]: return try DriftCommand.run(parsed, context)
            case ["export"]: return try ExportCommand.run(parsed, context)
            case ["audit", "verify"]: return try AuditCommand.verify(parsed, context)
            case ["audit", "log"]: return try AuditCommand.log(parsed, context)
            case ["init"]: return try InitCommand.run(parsed, context)
            case ["explain"]: return try ExplainCommand.run(parsed, context)
            case ["schema"]: return try SchemaCommand.run(parsed, context)
            case ["addresses"]: return try AddressesCommand.run(parsed, context)
            case ["completion"]: return try CompletionCommand.run(parsed, context)
            case ["audit", "checkpoint"]: return try AuditLogCommands.checkpoint(parsed, context)
            case ["audit", "keygen"]: return try AuditLogCommands.keygen(parsed, context)
            case ["audit", "prove"]: return try AuditLogCommands.prove(parsed, context)
            case ["audit", "consistency"]: return try AuditLogCommands.consistency(parsed, context)
            case ["show"]: return try ShowCommand.run(parsed, context)
            case ["state", "list"]: return try StateCommand.list(parsed, context)
            case ["state", "show"]: return try StateCommand.show(parsed, context)
            case ["state", "migrate"]: return try StateMigrateCommand.run(parsed, context)
            case ["state", "rekey"]: return try StateRekeyCommand.run(parsed, context)
            case ["version"]: return try VersionCommand.run(parsed, context)
            case ["privacy", "export"]: return try PrivacyCommand.export(parsed, context)
            case ["privacy", "forget"]: return try PrivacyCommand.forget(parsed, context)
            case ["webhooks", "deliver"]: return try WebhooksCommand.deliver(parsed, context)
            case ["webhooks", "status"]: return try WebhooksCommand.status(parsed, context)
            case ["webhooks", "retry"]: return try WebhooksCommand.retry(parsed, context)
            case ["webhooks", "test"]: return try WebhooksCommand.test(parsed, context)
            case ["webhooks", "prune"]: return try WebhooksCommand.prune(parsed, context)
            case ["access"]: return try AccessCommand.run(parsed, context)
            default:
                console.printError("error: command '\(parsed.path.joined(separator: " "))' is not implemented")
                return ExitCode.usage
            }
        } catch let failure as CommandFailure {
            let style = console.style(forStdout: false)
            console.printError("\(style.red("error")): \(TerminalText.escape(failure.message))")
            for detail in failure.details { console.printError("  \(TerminalText.escape(detail))") }
            if let help = failure.help { console.printError("\(style.green("help")): \(TerminalText.escape(help))") }
            return failure.exitCode
        } catch {
            console.printError("error: \(TerminalText.escape("\(error)"))")
            return ExitCode.failure
        }
    }
}

/// What every command gets: where to write, the environment, and the clock.
struct CommandContext {
    var console: Console
    var environment: [String: String]
    var now: Date
    var lifetime: ProcessLifetime
    /// The state key, once read: one command reads its key file (and warns about its mode) once.
    let stateKey = StateKeyMemo()
}

/// The state key a command resolved (`nil` inside: none was given), kept for the rest of the
/// command. One per command run (in its ``CommandContext``), never shared between commands.
final class StateKeyMemo: @unchecked Sendable {
    // @unchecked: read and written only by the command's own thread.
    var resolved: StateKey??
}

/// Holds values that need not be freed because the process exits right after the command.
///
/// Freeing a configuration and state of half a million resources costs a tenth of the work of a
/// plan; the executable hands in one instance that it never releases, so those values are never
/// torn down (the operating system reclaims the memory at exit). Tests pass a fresh instance,
/// which frees everything normally.
public final class ProcessLifetime: @unchecked Sendable {
    // @unchecked: written only by the command's own thread.
    private var kept: [Any] = []

    public init() {}

    func keep(_ value: Any) { kept.append(value) }
}
