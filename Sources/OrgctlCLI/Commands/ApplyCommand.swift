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
            A new API key, or one whose 'rotate' counter went up (or whose scopes changed with \
            rotateOnScopeChange: true), gets a new key: 'sk_live_' and 32 random bytes in base62. \
            The state keeps only its SHA-256 and first 12 characters; the key itself is written once to \
            --secrets-out FILE, or shown once when standard output is a terminal. Without either, apply \
            refuses such a plan before writing anything.
            With --checkpoint-out, a checkpoint of the audit log after the apply (signed with --checkpoint-key) \
            is written to FILE, also when there was nothing to change, for the pipeline to commit or publish.
            Exit status: 0 applied (or no changes), 1 error (nothing was written; also: keys to issue and \
            neither --secrets-out nor a terminal), 64 usage error.
            """,
        arguments: [ArgumentSpec("path", help: "A configuration folder, or a plan file saved by 'orgctl plan --out'.")],
        options: [
            .flag("auto-approve", help: "Apply without asking for confirmation."),
            .flag("adopt", help: "Adopt a platform database that orgctl did not create: add orgctl's own tables to it and record its rows as applied."),
            .option("max-deletes", valueName: "n", help: "Refuse plans that delete more resources than this.",
                    default: "10% of stored resources or 25, whichever is larger"),
            .option("actor", valueName: "name", help: "Who applies, for the audit log.",
                    default: "ORGCTL_ACTOR, GITHUB_ACTOR, GITLAB_USER_LOGIN, BUILDKITE_BUILD_CREATOR, USER, LOGNAME, else the account name"),
            .option("source", valueName: "text", help: "Where the change comes from, for the audit log.",
                    default: "git:<commit> of the folder (+dirty with uncommitted changes), or 'local'"),
            .option("secrets-out", valueName: "file",
                    help: "Write the API keys apply issues to FILE, a new file created with mode 0600 (refused if it exists and keys are issued)."),
            .option("checkpoint-out", valueName: "file", help: "Write a checkpoint of the audit log to this file after applying."),
            .option("checkpoint-key", valueName: "file", help: "Sign --checkpoint-out with this signed-note private key (from 'orgctl audit keygen')."),
            AuditLogCommands.origin,
        ] + PlanCommand.targetOptions + StateAccess.options + ValidateCommand.inputOptions)

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        // Read the signing key first: a bad key must stop the apply before anything is written.
        let checkpointOut = command.value("checkpoint-out")
        if command.value("checkpoint-key") != nil, checkpointOut == nil {
            throw CommandFailure(message: "--checkpoint-key signs the checkpoint of --checkpoint-out, and no --checkpoint-out was given",
                                 help: "add --checkpoint-out FILE", exitCode: ExitCode.usage)
        }
        let signer = try AuditLogCommands.signer(command.value("checkpoint-key"))
        let status = try applyAndReport(command, context)
        if let checkpointOut, status == ExitCode.success {
            try writeCheckpoint(to: checkpointOut, signer: signer, command, context)
        }
        return status
    }

    /// Writes the checkpoint of the log as it is after this apply (atomically replacing `path`).
    static func writeCheckpoint(to path: String, signer: NoteSigner?, _ command: ParsedCommand, _ context: CommandContext) throws {
        guard let store = try StateAccess.open(command, context, access: .readOnly, key: nil) else {
            throw CommandFailure(message: "there is no state database, so there is no audit log to write a checkpoint of",
                                 help: "apply a configuration with changes first")
        }
        let text = try AuditLogCommands.currentCheckpoint(
            store: store, origin: AuditLogCommands.origin(command, context, store: store), signer: signer)
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CommandFailure(message: "the apply succeeded, but the checkpoint could not be written to '\(path)': \(error.localizedDescription)",
                                 help: "write it with 'orgctl audit checkpoint > FILE'")
        }
        if signer == nil { context.console.info("note: the checkpoint in '\(path)' is not signed (pass --checkpoint-key)") }
    }

    static func applyAndReport(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
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
        // Likewise an older schema: planned from read-only (read as migrated), migrated only once confirmed.
        let writing = databaseExists && !adopting && !StateAccess.hasOlderSchema(command, context)
        let planned = try Planning.make(command, context, directory: path, access: writing ? .readWrite : .readOnly, checkingChain: writing)
        // Whatever happens below, the chain check (if still running) ends before this returns.
        defer { planned.reading.stop() }
        let plan = planned.plan
        guard !plan.isEmpty else {
            console.print("No changes. The state database matches the configuration.")
            return ExitCode.success
        }
        console.out(PlanRenderer(style: console.style(forStdout: true)).text(plan))
        try KeyOutput.checkCanIssue(plan, command, console)
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
        let writable = writing ? planned.store : nil
        guard let store = try writable ?? StateAccess.open(command, context, access: .readWrite, key: try StateAccess.key(command, context), adopt: adopting)
        else {
            throw CommandFailure(message: "internal error: the state database was not opened", help: "report this as a bug")
        }
        let planState = writable == nil ? nil : planned.storedWithChainCheck()
        return try execute(plan, store: store, planState: planState, applyContext, console, secretsOut: command.value("secrets-out"))
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
        try KeyOutput.checkCanIssue(plan, command, console)
        let key = try StateAccess.key(command, context)
        // Resolve every secret again; a value that no longer matches the reviewed fingerprint is refused.
        var resolver = SecretResolver(environment: context.environment,
                                      protectedFiles: StateAccess.protectedFiles(command, context))
        for source in plan.secretSources.values { _ = resolver.value(source) }
        try resolver.checkComplete()
        var secrets: [String: [UInt8]] = [:]
        for (secretKey, source) in plan.secretSources {
            let value = resolver.value(source)
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
        return try execute(plan, store: store, planState: nil, applyContext, console, secretsOut: command.value("secrets-out"))
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

    static func execute(_ plan: Plan, store: SQLiteStateStore, planState: StoredState?, _ applyContext: ApplyContext, _ console: Console,
                        secretsOut: String? = nil) throws -> Int32 {
        var applyContext = applyContext
        // Key material is made, and saved to --secrets-out, before anything is written to the database.
        var output: KeyOutput?
        if plan.keyCount > 0 {
            do {
                applyContext.issuedKeys = try Reconciler.issueKeys(for: plan)
            } catch {
                throw CommandFailure(message: "the system's random number generator failed; nothing was applied", help: "try again; check the system's entropy source")
            }
            if let secretsOut {
                output = try KeyOutput.write(applyContext.issuedKeys, to: secretsOut, plan: plan, time: applyContext.time)
            }
        }
        let result: ApplyResult
        do {
            result = try Reconciler.apply(plan, to: store, planState: planState, context: applyContext)
        } catch {
            // Nothing was stored: the keys in the file were never valid.
            output?.discard()
            switch error {
            case let error as ApplyError: throw failure(error)
            case let error as StateError: throw CommandFailure(message: "\(error.message); nothing was applied", help: error.help)
            default: throw error
            }
        }
        let style = console.style(forStdout: true)
        let changed = result.renamed > 0 ? "\(result.updated) changed (\(result.renamed) renamed)" : "\(result.updated) changed"
        var line = "Apply complete: \(result.created) added, \(changed), \(result.deleted) destroyed\(result.adopted > 0 ? ", \(result.adopted) adopted" : "")."
        if let first = result.firstSequence, let last = result.lastSequence {
            line += " Audit entries \(first)–\(last)."
        }
        console.print(style.green(line))
        if result.keysIssued > 0 {
            if let output {
                console.print("Issued \(result.keysIssued) API key\(result.keysIssued == 1 ? "" : "s"); the keys are in \(output.path) (mode 0600). Move them to your secret store and delete the file.")
            } else {
                // Only reached with standard output on a terminal (checkCanIssue): shown once, never stored.
                console.print(style.bold("API keys issued (shown once; orgctl stores only their SHA-256):"))
                for address in applyContext.issuedKeys.keys.sorted() {
                    if let key = applyContext.issuedKeys[address] { console.print("  \(address)  \(key.plaintext)") }
                }
            }
        }
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
        case .keysNotIssued(let addresses):
            return CommandFailure(message: "internal error: no key material was made for \(addresses.joined(separator: ", ")); nothing was applied",
                                  help: "report this as a bug")
        }
    }
}

/// Where the API keys an apply issues go: a new 0600 file (`--secrets-out`), or the terminal once.
/// The plaintext goes nowhere else: not to plans, audit entries, errors or standard error.
struct KeyOutput {
    let path: String

    /// Refuses, before anything is written, a plan that issues keys when they could only be lost or
    /// logged, or when `--secrets-out` names an existing file. (Without keys to issue, the flag
    /// writes nothing, so a pipeline may pass it on every apply.)
    static func checkCanIssue(_ plan: Plan, _ command: ParsedCommand, _ console: Console) throws {
        let count = plan.keyCount
        guard count > 0 else { return }
        let keys = "\(count) API key\(count == 1 ? "" : "s")"
        if let path = command.value("secrets-out") {
            var status = stat()
            guard lstat(path, &status) != 0 else {
                throw CommandFailure(message: "the plan issues \(keys), and --secrets-out '\(path)' already exists; orgctl writes issued keys only to a new file, and nothing was applied",
                                     help: "remove the old file (after moving its keys to your secret store) or choose a new name")
            }
            return
        }
        guard !console.stdoutIsTerminal else { return }
        throw CommandFailure(message: "the plan issues \(keys), and standard output is not a terminal: the key\(count == 1 ? "" : "s") would end up in a log; nothing was applied",
                             help: "pass --secrets-out FILE (a new file, written with mode 0600) and move the keys to your secret store")
    }

    /// Creates `path` (0600, never overwriting) and writes one `address key` line per key, synced to disk.
    static func write(_ keys: [String: IssuedKey], to path: String, plan: Plan, time: String) throws -> KeyOutput {
        var text = "# API keys issued by orgctl apply at \(time) (plan \(plan.id)). Each is shown only here:\n"
        text += "# orgctl stores its SHA-256 and first \(KeyMaterial.prefixLength) characters. Move the keys to a secret store, then delete this file.\n"
        for address in keys.keys.sorted() {
            if let key = keys[address] { text += "\(address) \(key.plaintext)\n" }
        }
        try FileOutput.writeNew(path, data: Data(text.utf8), what: "issued API keys")
        return KeyOutput(path: path)
    }

    /// Removes the file when the apply failed: its keys were never stored.
    func discard() {
        unlink(path)
    }
}
