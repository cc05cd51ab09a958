import Audit
import Foundation
import Reconciler
import Spec
import StateStore

/// `orgctl apply DIR` or `orgctl apply PLANFILE`: make the state database match, in one transaction.
enum ApplyCommand {
    static let spec = CommandSpec(
        name: "apply",
        abstract: "Apply a configuration folder or a saved plan to the state database.",
        discussion: """
            With DIR: plans as 'orgctl plan DIR' does, shows the plan and asks for 'yes' on a terminal \
            (--auto-approve skips the question, as CI needs). With PLANFILE (from 'plan --out'): applies exactly \
            that plan, and refuses it if the state changed since it was made.
            Everything is written in one SQLite transaction together with one audit entry per change: a \
            killed apply leaves the database exactly as before or exactly as after. Applying again with no \
            changes writes nothing.
            Exit status: 0 applied (or no changes), 1 error (nothing was written), 64 usage error.
            """,
        arguments: [ArgumentSpec("path", help: "A configuration folder, or a plan file saved by 'orgctl plan --out'.")],
        options: [
            .flag("auto-approve", help: "Apply without asking for confirmation."),
            .flag("adopt", help: "Adopt a platform database that orgctl did not create: add orgctl's own tables to it and record its rows as applied."),
            .option("max-deletes", valueName: "n", help: "Refuse plans that delete more resources than this.",
                    default: "10% of stored resources or 25, whichever is larger"),
            .option("actor", valueName: "name", help: "Who applies, for the audit log.",
                    default: "ORGCTL_ACTOR, GITHUB_ACTOR, GITLAB_USER_LOGIN or USER"),
            .option("source", valueName: "text", help: "Where the change comes from, for the audit log.",
                    default: "git:<commit> of the folder, or 'local'"),
        ] + PlanCommand.targetOptions + StateAccess.options)

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let path = command.argument("path") ?? "."
        let console = context.console
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && !isDirectory.boolValue && !path.hasSuffix(".yaml") && !path.hasSuffix(".yml") {
            return try applySaved(path, command, context)
        }
        // A missing database is created only once the user has confirmed: plan against an empty state.
        let databaseExists = FileManager.default.fileExists(atPath: StateAccess.path(command, context))
        // --adopt: plan from the database as it is (read-only); orgctl's tables are added only once confirmed.
        let adopting = command.flag("adopt")
        let planned = try Planning.make(command, context, directory: path, access: databaseExists && !adopting ? .readWrite : .readOnly)
        let plan = planned.plan
        guard !plan.isEmpty else {
            console.print("No changes. The state database matches the configuration.")
            return ExitCode.success
        }
        console.out(PlanRenderer(style: console.style(forStdout: true)).text(plan))
        if !command.flag("auto-approve") {
            guard console.stdinIsTerminal else {
                throw CommandFailure(message: "apply needs confirmation and standard input is not a terminal; nothing was applied",
                                     help: "review the plan and pass --auto-approve (as CI jobs do), or apply a saved plan file")
            }
            console.out("\nDo you want to apply these changes? Only 'yes' is accepted: ")
            guard console.readLine()?.trimmingCharacters(in: .whitespaces) == "yes" else {
                console.print("Apply cancelled; nothing was written.")
                return ExitCode.failure
            }
        }
        let applyContext = try makeContext(command, context, plan: plan, secrets: planned.secrets,
                                           source: Provenance.source(command, directory: path))
        let writable = adopting ? nil : planned.store
        guard let store = try writable ?? StateAccess.open(command, context, access: .readWrite, key: try StateAccess.key(command, context), adopt: adopting)
        else {
            throw CommandFailure(message: "internal error: the state database was not opened", help: "report this as a bug")
        }
        return try execute(plan, store: store, planState: writable == nil ? nil : planned.stored, applyContext, console)
    }

    static func applySaved(_ path: String, _ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure(message: "cannot read '\(path)'", help: "check the path and its permissions")
        }
        let file: PlanFile
        let plan: Plan
        do {
            file = try PlanFile.decode(data)
            plan = try file.plan()
        } catch {
            throw CommandFailure(message: "'\(path)' cannot be applied: \(error.description)",
                                 help: "pass a configuration folder, or a plan saved with 'orgctl plan --out FILE'")
        }
        if !command.values("target").isEmpty || !command.values("exclude").isEmpty {
            throw CommandFailure(message: "--target and --exclude apply when planning, not to a saved plan",
                                 help: "make a new plan with 'orgctl plan --target … --out FILE'", exitCode: ExitCode.usage)
        }
        let console = context.console
        guard !plan.isEmpty else {
            console.print("No changes. The saved plan is empty.")
            return ExitCode.success
        }
        let key = try StateAccess.key(command, context)
        // Resolve every secret again; a value that no longer matches the reviewed fingerprint is refused.
        var resolver = SecretResolver(environment: context.environment)
        var secrets: [String: [UInt8]] = [:]
        for (secretKey, source) in plan.secretSources {
            let value = try resolver.value(source)
            guard let key else {
                throw CommandFailure(message: "the saved plan writes secrets, and no state key was given",
                                     help: "set ORGCTL_STATE_KEY or pass --state-key-file (the key used when planning)")
            }
            let address = String(secretKey.prefix { $0 != "#" }), attribute = String(secretKey.drop { $0 != "#" }.dropFirst())
            let expected = plan.changes.first { $0.address == address }?.fields.first { $0.name == attribute }?.after
            guard expected == .secret(fingerprint: key.fingerprint(value)) else {
                throw CommandFailure(message: "secret \(source) for \(address) has changed since the plan was made; nothing was applied",
                                     help: "make a new plan with 'orgctl plan --out FILE' and review it")
            }
            secrets[secretKey] = value
        }
        guard let store = try StateAccess.open(command, context, access: .readWrite, key: key, adopt: command.flag("adopt")) else {
            throw CommandFailure(message: "internal error: the state database was not opened", help: "report this as a bug")
        }
        if !file.databaseID.isEmpty, store.databaseID != file.databaseID {
            throw CommandFailure(message: "the saved plan was made for database \(file.databaseID), but '\(StateAccess.path(command, context))' is database \(store.databaseID.isEmpty ? "(new)" : store.databaseID)",
                                 help: "apply the plan with the --state it was made against, or plan again")
        }
        let applyContext = try makeContext(command, context, plan: plan, secrets: secrets, source: command.value("source") ?? file.source)
        return try execute(plan, store: store, planState: nil, applyContext, console)
    }

    static func makeContext(_ command: ParsedCommand, _ context: CommandContext, plan: Plan, secrets: [String: [UInt8]], source: String) throws
        -> ApplyContext
    {
        var maxDeletes = Reconciler.defaultMaxDeletes(storedCount: plan.storedCount)
        if let text = command.value("max-deletes") {
            guard let value = Int(text), value >= 0 else {
                throw CommandFailure(message: "--max-deletes must be a whole number, not '\(text)'", help: "for example --max-deletes 100",
                                     exitCode: ExitCode.usage)
            }
            maxDeletes = value
        }
        return ApplyContext(actor: Provenance.actor(command, context.environment), source: source,
                            time: Provenance.timestamp(context.now), secrets: secrets, maxDeletes: maxDeletes)
    }

    static func execute(_ plan: Plan, store: SQLiteStateStore, planState: StoredState?, _ applyContext: ApplyContext, _ console: Console) throws -> Int32 {
        let result: ApplyResult
        do {
            result = try Reconciler.apply(plan, to: store, planState: planState, context: applyContext)
        } catch let error as ApplyError {
            throw failure(error)
        } catch let error as StateError {
            throw CommandFailure(message: "\(error.message); nothing was applied", help: error.help)
        } catch let error as CommandFailure {
            throw error
        }
        let style = console.style(forStdout: true)
        var line = "Apply complete: \(result.created) added, \(result.updated) changed, \(result.deleted) destroyed\(result.adopted > 0 ? ", \(result.adopted) adopted" : "")."
        if let first = result.firstSequence, let last = result.lastSequence {
            line += " Audit entries \(first)–\(last)."
        }
        console.print(style.green(line))
        return ExitCode.success
    }

    static func failure(_ error: ApplyError) -> CommandFailure {
        switch error {
        case .stale(let addresses):
            let shown = addresses.prefix(20).joined(separator: "\n  ")
            let more = addresses.count > 20 ? "\n  … and \(addresses.count - 20) more" : ""
            return CommandFailure(message: "the plan is stale: the state changed since it was planned, at:\n  \(shown)\(more)\nnothing was applied",
                                  help: "run 'orgctl plan' again, review the new plan, and apply that")
        case .tooManyDeletes(let count, let limit, let byKind):
            let kinds = byKind.map { "\($0.1) \($0.0.rawValue)" }.joined(separator: ", ")
            return CommandFailure(message: "the plan deletes \(count) resources (\(kinds)), more than the limit of \(limit); nothing was applied",
                                  help: "if the deletions are intended, run again with --max-deletes \(count)")
        case .auditBroken(let broken):
            return CommandFailure(message: "the audit chain is broken (\(broken.description)); orgctl does not append to a broken chain and applied nothing",
                                  help: "run 'orgctl audit verify' and restore the database from a backup taken before the tampering")
        case .wrongDatabase(let expected, let actual):
            return CommandFailure(message: "the plan was made for database \(expected), not \(actual); nothing was applied",
                                  help: "apply it with the --state it was made against, or plan again")
        }
    }
}
