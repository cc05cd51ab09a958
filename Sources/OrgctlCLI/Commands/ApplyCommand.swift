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
            that plan, and refuses it if the state changed since it was made, if the file was changed or not made \
            with this state key (its MAC), or if a value it writes breaks a rule of 'validate'.
            apply needs the state key (ORGCTL_STATE_KEY or --state-key-file), and refuses another key than the database's.
            Everything is written in one SQLite transaction together with one audit entry per change: a \
            killed apply leaves the database exactly as before or exactly as after. Applying again with no \
            changes writes nothing (but migrates a PostgreSQL schema of an older version, which read-only commands refuse).
            apply records the configuration's policies in the state (their digests, with an audit entry at \
            address policies) when they differ from the recorded ones, so a plan saved before a change of \
            policies is refused as stale.
            A new API key, or one whose 'rotate' counter went up (or whose scopes changed with \
            rotateOnScopeChange: true), gets a new key: 'sk_live_' and 32 random bytes in base62. \
            The state keeps only its SHA-256 and first 12 characters; the key itself is written once to \
            --secrets-out FILE, or shown once when standard output is a terminal and no CI variable (CI, \
            GITHUB_ACTIONS, GITLAB_CI, BUILDKITE, JENKINS_URL, TF_BUILD, CIRCLECI, TEAMCITY_VERSION, …) is set. \
            Otherwise apply refuses such a plan before writing anything. FILE appears only once the apply \
            has committed.
            With --checkpoint-out, a checkpoint of the audit log after the apply (signed with --checkpoint-key) \
            is written to FILE, also when there was nothing to change, for the pipeline to commit or publish.
            A failing mandatory policy refuses the apply; a failing overridable one is refused unless named by \
            --override POLICY with --reason TEXT, and each override is recorded as an audit entry (action override, \
            address policy/POLICY) with the actor, the source and the reason.
            Exit status: 0 applied (or no changes), 1 error (nothing was written; also: keys to issue and \
            neither --secrets-out nor a terminal outside CI), 64 usage error.
            """,
        arguments: [ArgumentSpec("path", help: "A configuration folder, or a plan file saved by 'orgctl plan --out'.")],
        options: [
            .flag("auto-approve", help: "Apply without asking for confirmation."),
            .flag("adopt", help: "Adopt a platform database that orgctl did not create: add orgctl's own tables to it and record its rows as applied."),
            .option("max-deletes", valueName: "n", help: "Refuse plans that delete more resources than this.",
                    default: "10% of stored resources or 25, whichever is larger", type: .integer(min: 0)),
            .option("actor", valueName: "name", help: "Who applies, for the audit log.",
                    default: Provenance.actorVariables.joined(separator: ", ") + ", else the account name"),
            .option("source", valueName: "text", help: "Where the change comes from, for the audit log.",
                    default: "git:<commit> of the folder (+dirty with uncommitted changes), or 'local'"),
            .option("secrets-out", valueName: "file",
                    help: "Write the API keys apply issues to FILE, a new file created with mode 0600 (refused if it exists and keys are issued)."),
            .option("checkpoint-out", valueName: "file", help: "Write a checkpoint of the audit log to this file after applying."),
            .option("checkpoint-key", valueName: "file", help: "Sign --checkpoint-out with this signed-note private key (from 'orgctl audit keygen')."),
            AuditLogCommands.origin,
        ] + PlanCommand.targetOptions + StateAccess.options + TenantDeletionOptions.options + ValidateCommand.inputOptions + PolicyOptions.options,
        constraints: [.requires("checkpoint-key", "checkpoint-out")] + PolicyOptions.constraints)

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        // Read the signing key first: a bad key must stop the apply before anything is written.
        // (--checkpoint-key without --checkpoint-out is a usage error, found by the parser.)
        let checkpointOut = command.value("checkpoint-out")
        let signer = try AuditLogCommands.signer(command.value("checkpoint-key"))
        let newOrigin = try AuditLogCommands.checkOrigin(command, context)
        // Files written later must have a folder to go to: found out now, not after the plan or the apply.
        try FileOutput.checkFolder(of: command.value("secrets-out"), option: "secrets-out")
        try FileOutput.checkFolder(of: checkpointOut, option: "checkpoint-out")
        let status = try applyAndReport(command, context)
        if let newOrigin, status == ExitCode.success { try AuditLogCommands.recordOrigin(newOrigin, command, context) }
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
        let text: String
        do {
            text = try AuditLogCommands.currentCheckpoint(
                store: store, origin: try AuditLogCommands.origin(command, context, store: store), signer: signer)
        } catch let failure as CommandFailure {
            throw CommandFailure(message: "the apply succeeded, but no checkpoint was written: \(failure.message)", help: failure.help)
        }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CommandFailure(message: "the apply succeeded, but the checkpoint could not be written to '\(path)': \(error.localizedDescription)",
                                 help: "write it with 'orgctl audit checkpoint > FILE'")
        }
        if signer == nil { context.console.info("note: the checkpoint in '\(TerminalText.escape(path))' is not signed (pass --checkpoint-key)") }
    }

    static func applyAndReport(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let path = command.argument("path") ?? "."
        let console = context.console
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && !isDirectory.boolValue && !path.hasSuffix(".yaml") && !path.hasSuffix(".yml") {
            return try applySaved(path, command, context)
        }
        // Every row written records a keyed digest: no key, no apply (checked before any work).
        _ = try StateAccess.requiredKey(command, context)
        // --adopt: plan from the database as it is (read-only); orgctl's tables are added only once confirmed.
        let adopting = command.flag("adopt")
        let databaseExists: Bool, writing: Bool, planned: Planning.Result
        if case .postgres = StateAccess.location(command, context), !adopting {
            // One connection asks whether a state exists and opens it for writing (nil: created only once
            // confirmed); an older schema is opened as it is and migrated by the apply's own write.
            planned = try Planning.make(command, context, directory: path, access: .readWrite, checkingChain: true, createsMissing: false,
                                        defersMigration: true)
            databaseExists = planned.store != nil
            writing = databaseExists
        } else {
            // A missing database is created only once the user has confirmed: plan against an empty state.
            databaseExists = StateAccess.location(command, context).exists
            // Likewise an older schema: planned from read-only (read as migrated), migrated only once confirmed.
            writing = databaseExists && !adopting && !StateAccess.hasOlderSchema(command, context)
            // The chain is checked while planning for any existing database: one opened read-only is refused
            // below before it is migrated or adopted, not after.
            planned = try Planning.make(command, context, directory: path, access: writing ? .readWrite : .readOnly,
                                        checkingChain: databaseExists)
        }
        // Whatever happens below, the chain check (if still running) ends before this returns.
        defer { planned.reading.stop() }
        let plan = planned.plan
        let protected = Reconciler.tenantDeletions(plan, stored: planned.stored, policy: TenantDeletionOptions.policy(command))
        var policies = planned.policies
        try nothingApplied { try PolicyOptions.applyOverrides(&policies, command) }
        let style = console.style(forStdout: true)
        let shown = policies
        let render: @Sendable () -> String = {
            PlanRenderer(style: style).text(plan) + TenantDeletionOptions.text(protected, style: style)
                + PolicyRenderer.text(shown, style: style, quietWhenPassing: plan.isEmpty)
        }
        if command.flag("auto-approve"), !plan.isEmpty {
            // No question waits for the plan: it is rendered and written while the apply runs. Every
            // later output (a refusal, an error, the result) waits for it: the same bytes in the same order.
            console.writeInBackground(render)
        } else {
            console.out(render())
        }
        defer { console.waitForBackground() }
        if policies.mandatoryFailed { try nothingApplied { try PolicyOptions.refuseBlocking(policies) } }
        guard !plan.isEmpty else {
            if writing { try migrateWithoutChanges(planned, console) }
            return ExitCode.success
        }
        return try nothingApplied {
            try PolicyOptions.refuseBlocking(policies)
            let unconfirmed = protected.filter { !$0.confirmed }
            if !unconfirmed.isEmpty { throw TenantDeletionOptions.refusal(unconfirmed) }
            try KeyOutput.checkCanIssue(plan, command, console)
            if !command.flag("auto-approve") {
                guard console.stdinIsTerminal else {
                    throw CommandFailure(message: "apply needs confirmation and standard input is not a terminal; nothing was applied",
                                         help: "review the plan and pass --auto-approve (as CI jobs do), or apply a saved plan file")
                }
                let answer = console.ask("\nDo you want to apply these changes? Only 'yes' is accepted: ")
                guard answer?.trimmingCharacters(in: .whitespaces) == "yes" else {
                    // Ctrl-C or the end of input leaves the prompt's line open: end it first.
                    console.print((answer == nil ? "\n" : "") + "Apply cancelled; nothing was applied.")
                    return ExitCode.failure
                }
            }
            var applyContext = try makeContext(command, context, plan: plan, secrets: planned.secrets,
                                           source: Provenance.source(command, directory: path))
            applyContext.policyOverrides = policies.checks.filter { $0.overrideReason != nil && !$0.passed }.map(PolicyOverride.init)
            let writable = writing ? planned.store : nil
            if writable == nil, case .broken(let broken) = planned.reading.chainCheck() { throw failure(.auditBroken(broken)) }
            let checking = writable == nil ? nil : console.progress("checking the audit chain")
            let planState = writable == nil ? nil : planned.storedWithChainCheck()
            checking?.finish()
            // A missing database is created (an older one migrated, a platform one adopted) only by `open`,
            // which runs after every refusal that does not need the database.
            return try execute(plan, planState: planState, applyContext, console, secretsOut: command.value("secrets-out")) {
                if let writable { return writable }
                return try StateAccess.open(command, context, access: .readWrite, key: try StateAccess.key(command, context), adopt: adopting,
                                            defersMigration: true)
            }
        }
    }

    /// Runs `body`, the part of apply after the plan was made: any refusal in it says that nothing was applied.
    static func nothingApplied<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var failure as CommandFailure {
            if !failure.message.hasSuffix("nothing was applied") && !failure.message.hasSuffix("applied nothing") {
                failure.message += "; nothing was applied"
            }
            throw failure
        }
    }

    static func applySaved(_ path: String, _ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        if !command.values("override").isEmpty {
            throw CommandFailure(message: "--override applies when planning a folder, not to a saved plan: a plan is saved only when no mandatory or overridable policy fails",
                                 help: "apply the configuration folder with --override POLICY --reason TEXT", exitCode: ExitCode.usage)
        }
        if !command.values("target").isEmpty || !command.values("exclude").isEmpty {
            throw CommandFailure(message: "--target and --exclude apply when planning, not to a saved plan",
                                 help: "make a new plan with 'orgctl plan --target … --out FILE'", exitCode: ExitCode.usage)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure(message: "cannot read '\(TerminalText.escape(path))'", help: "check the path and its permissions")
        }
        let shown = TerminalText.escape(path)
        let file: PlanFile
        do {
            file = try PlanFile.decode(data)
        } catch {
            throw CommandFailure(message: "'\(shown)' cannot be applied: \(error.description)",
                                 help: "pass a configuration folder, or a plan saved with 'orgctl plan --out FILE'")
        }
        // The file is authenticated before anything in it is used: only the holder of the state key can make one.
        guard let key = try StateAccess.key(command, context) else {
            throw CommandFailure(message: "'\(shown)' cannot be applied without the state key, which authenticates saved plans",
                                 help: "set ORGCTL_STATE_KEY or pass --state-key-file (the key used when planning)")
        }
        // Read-only (an older schema is read as migrated): nothing is written, and no database created,
        // before every check passed. Opening it refuses another key than the database's, before the MAC
        // would say "does not match".
        let reader = try StateAccess.open(command, context, access: .readOnly, key: key)
        let plan: Plan
        do {
            try file.verify(with: key)
            plan = try file.plan()
        } catch {
            throw CommandFailure(message: "'\(shown)' cannot be applied: \(error.description); nothing was applied",
                                 help: "apply only plans written by 'orgctl plan --out' with this state key; make a new one and review it")
        }
        let console = context.console
        guard !plan.isEmpty else {
            console.print("No changes. The saved plan is empty.")
            return ExitCode.success
        }
        if let reader, let applied = try alreadyApplied(plan, store: reader) {
            console.print("The saved plan \(plan.id) was already applied (audit entries \(applied)); nothing was written.")
            return ExitCode.success
        }
        return try nothingApplied { try applySaved(plan, file: file, path: path, key: key, reader: reader, command, context) }
    }

    /// `applySaved` once the plan file is authenticated: checks against the database read-only, then
    /// the database opened read-write (only once it is known to be the one the plan was made for).
    private static func applySaved(_ plan: Plan, file: PlanFile, path: String, key: StateKey, reader: (any StateStore)?,
                                   _ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let console = context.console
        try KeyOutput.checkCanIssue(plan, command, console)
        try checkSameDatabase(file, store: reader, command, context)
        let current = try StateAccess.read(reader)
        try SavedPlanValidation.check(plan, stored: current, path: path, context)
        // Resolve every secret again; a value that no longer matches the reviewed fingerprint is refused.
        var resolver = SecretResolver(environment: context.environment,
                                      protectedFiles: StateAccess.protectedFiles(command, context))
        for source in plan.secretSources.values { _ = resolver.value(source) }
        try resolver.checkComplete()
        var secrets: [String: [UInt8]] = [:]
        let changes = Dictionary(plan.changes.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        for (secretKey, source) in plan.secretSources {
            let value = resolver.value(source)
            let address = String(secretKey.prefix { $0 != "#" }), attribute = String(secretKey.drop { $0 != "#" }.dropFirst())
            let expected = changes[address]?.fields.first { $0.name == attribute }?.after
            guard expected == .secret(fingerprint: key.fingerprint(value)) else {
                throw CommandFailure(message: "secret \(source) for \(TerminalText.escape(address)) has changed since the plan was made; nothing was applied",
                                     help: "make a new plan with 'orgctl plan --out FILE' and review it")
            }
            secrets[secretKey] = value
        }
        let applyContext = try makeContext(command, context, plan: plan, secrets: secrets, source: command.value("source") ?? file.source)
        return try execute(plan, planState: nil, applyContext, console, secretsOut: command.value("secrets-out")) {
            // An older schema is migrated by the apply's write transaction: a stale plan leaves it as it was.
            try StateAccess.open(command, context, access: .readWrite, key: key, adopt: command.flag("adopt"), defersMigration: true)
        }
    }

    /// Refuses a saved plan for another database before the database is opened read-write: following a
    /// wrong --state must neither create a stray database nor migrate or adopt someone else's.
    static func checkSameDatabase(_ file: PlanFile, store: (any StateStore)?, _ command: ParsedCommand, _ context: CommandContext) throws {
        let path = TerminalText.escape(StateAccess.display(command, context))
        let actual = store?.databaseID ?? ""
        guard actual != file.databaseID else { return }
        let made = file.databaseID.isEmpty ? "against a state database that did not exist yet" : "for database \(file.databaseID)"
        let found = store == nil ? "'\(path)' does not exist" : "'\(path)' is \(actual.isEmpty ? "a database orgctl has not written yet" : "database \(actual)")"
        throw CommandFailure(message: "the saved plan was made \(made), but \(found)",
                             help: "apply the plan with the --state it was made against, or plan again")
    }

    /// The audit entries a saved plan wrote when it was applied before (`12–14`), or nil: the entry
    /// right after the plan's audit head carries the plan's id only when this plan was applied.
    static func alreadyApplied(_ plan: Plan, store: any StateStore) throws -> String? {
        var sequences: [Int64] = []
        do {
            try store.forEachAuditRecord(from: plan.auditHead.sequence + 1) { record in
                guard let entry = try? AuditEntry(canonicalBytes: record.entry), entry.planID == plan.id else { return false }
                sequences.append(record.sequence)
                return true
            }
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
        guard let first = sequences.first, let last = sequences.last else { return nil }
        return first == last ? "\(first)" : "\(first)–\(last)"
    }

    static func makeContext(_ command: ParsedCommand, _ context: CommandContext, plan: Plan, secrets: [String: [UInt8]], source: String) throws
        -> ApplyContext
    {
        let maxDeletes = command.integer("max-deletes") ?? Reconciler.defaultMaxDeletes(storedCount: plan.storedCount)
        return ApplyContext(actor: Provenance.actor(command, context.environment), source: source,
                            time: Provenance.timestamp(context.now), secrets: secrets, maxDeletes: maxDeletes,
                            tenantDeletions: TenantDeletionOptions.policy(command))
    }

    /// Applies `plan` to the store `open` returns. Everything that can refuse without the database is
    /// done before `open` is called: the delete limit, making the keys and writing --secrets-out.
    static func execute(_ plan: Plan, planState: StoredState?, _ applyContext: ApplyContext, _ console: Console,
                        secretsOut: String? = nil, open: () throws -> (any StateStore)?) throws -> Int32 {
        var applyContext = applyContext
        do {
            try Reconciler.checkDeleteLimit(plan, maxDeletes: applyContext.maxDeletes)
        } catch {
            throw failure(error)
        }
        // Key material is made, and saved to --secrets-out, before the database is opened.
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
        let progress = console.progress("writing", unit: "changes", total: plan.changes.count)
        if let progress { applyContext.progress = { progress.advance() } }
        do {
            defer { progress?.finish() }
            guard let store = try open() else {
                throw CommandFailure(message: "internal error: the state database was not opened", help: "report this as a bug")
            }
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
        let policies = result.policiesRecorded.map { ", policies \(["create": "recorded", "update": "updated", "delete": "removed"][$0.rawValue] ?? "")" } ?? ""
        var line = "Apply complete: \(result.created) added, \(changed), \(result.deleted) destroyed\(result.adopted > 0 ? ", \(result.adopted) adopted" : "")\(policies)."
        if let first = result.firstSequence, let last = result.lastSequence {
            line += first == last ? " Audit entry \(first)." : " Audit entries \(first)–\(last)."
        }
        console.print(style.green(line))
        if result.keysIssued > 0 {
            if let output {
                try output.publish()
                console.print("Issued \(result.keysIssued) API key\(result.keysIssued == 1 ? "" : "s"); the keys are in \(TerminalText.escape(output.path)) (mode 0600). Move them to your secret store and delete the file.")
            } else {
                // Only reached with standard output on a terminal outside CI (checkCanIssue): shown once, never stored.
                console.print(style.bold("API keys issued (shown once; orgctl stores only their SHA-256):"))
                let addresses = applyContext.issuedKeys.keys.sorted()
                let width = addresses.map { TerminalText.escape($0).count }.max() ?? 0
                for address in addresses {
                    guard let key = applyContext.issuedKeys[address] else { continue }
                    let shown = TerminalText.escape(address)
                    console.print("  \(shown.padding(toLength: width, withPad: " ", startingAt: 0))  \(key.plaintext)")
                }
            }
        }
        return ExitCode.success
    }

    static func failure(_ error: ApplyError) -> CommandFailure {
        switch error {
        case .stale(let addresses):
            let more = addresses.count > 20 ? ["… and \(addresses.count - 20) more"] : []
            return CommandFailure(message: "the plan is stale: the state changed since it was planned, at these addresses; nothing was applied",
                                  help: "run 'orgctl plan' again, review the new plan, and apply that", details: Array(addresses.prefix(20)) + more)
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
        case .tenantDeletionNotConfirmed(let deletions):
            return TenantDeletionOptions.refusal(deletions)
        case .keysNotIssued(let addresses):
            return CommandFailure(message: "internal error: no key material was made for \(addresses.joined(separator: ", ")); nothing was applied",
                                  help: "report this as a bug")
        }
    }
}

/// Where the API keys an apply issues go: a new 0600 file (`--secrets-out`), or the terminal once.
/// The plaintext goes nowhere else: not to plans, audit entries, errors or standard error.
///
/// The keys are written, synced, to a partial file beside FILE before the database is written, and
/// FILE itself appears only once the apply has committed (a hard link, which never replaces an
/// existing file). So a failed or interrupted apply never leaves FILE behind — empty, half written or
/// holding keys that were never stored — to block the retry.
struct KeyOutput {
    let path: String
    /// Where the keys are until the apply commits: `.FILE.<pid>.partial` in FILE's folder.
    let partial: String

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
        if let ci = console.continuousIntegration {
            // A CI runner may give the job a pseudo-terminal: a terminal is not proof that a person reads it.
            throw CommandFailure(message: "the plan issues \(keys), and this is a CI job (\(ci) is set): standard output is a log even on a terminal, and the key\(count == 1 ? "" : "s") would end up in it; nothing was applied",
                                 help: "pass --secrets-out FILE (a new file, written with mode 0600) and move the keys to your secret store")
        }
        guard !console.stdoutIsTerminal else { return }
        throw CommandFailure(message: "the plan issues \(keys), and standard output is not a terminal: the key\(count == 1 ? "" : "s") would end up in a log; nothing was applied",
                             help: "pass --secrets-out FILE (a new file, written with mode 0600) and move the keys to your secret store")
    }

    /// Writes one `address key` line per key to the partial file (0600, never overwriting), synced
    /// to disk; ``publish()`` moves it to `path` once the apply has committed.
    static func write(_ keys: [String: IssuedKey], to path: String, plan: Plan, time: String) throws -> KeyOutput {
        var text = "# API keys issued by orgctl apply at \(time) (plan \(plan.id)). Each is shown only here:\n"
        text += "# orgctl stores its SHA-256 and first \(KeyMaterial.prefixLength) characters. Move the keys to a secret store, then delete this file.\n"
        for address in keys.keys.sorted() {
            if let key = keys[address] { text += "\(address) \(key.plaintext)\n" }
        }
        let url = URL(fileURLWithPath: path)
        let partial = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).partial").path
        unlink(partial)  // a leftover of an earlier run of the same pid: its keys were never stored
        try FileOutput.writeNew(partial, data: Data(text.utf8), what: "issued API keys", shownAs: path)
        return KeyOutput(path: path, partial: partial)
    }

    /// Gives the keys their name, after the commit: a hard link (it fails rather than replace a file
    /// that appeared meanwhile), or a rename where the file system has no hard links.
    func publish() throws {
        if link(partial, path) == 0 {
            unlink(partial)
            return
        }
        let reason = errno
        var status = stat()
        if reason != EEXIST, lstat(path, &status) != 0, rename(partial, path) == 0 { return }
        throw CommandFailure(message: "the apply succeeded, and its API keys are in '\(partial)': '\(path)' \(reason == EEXIST ? "was created by someone else meanwhile" : "cannot be created (\(String(cString: strerror(reason))))")",
                             help: "move the keys from '\(partial)' to your secret store now, then delete it")
    }

    /// Removes the partial file when the apply failed: its keys were never stored.
    func discard() {
        unlink(partial)
    }
}
