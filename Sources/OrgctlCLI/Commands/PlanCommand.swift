import Foundation
import Reconciler
import Spec
import StateStore

/// `orgctl plan DIR`: validate, read the state, print what apply would change.
enum PlanCommand {
    static let targetOptions: [OptionSpec] = [
        .option("target", valueName: "pattern", help: "Limit the plan to matching addresses (glob: * within a segment, ** across), e.g. 'tenant/acme/**'.", repeatable: true,
                type: .addressPattern),
        .option("exclude", valueName: "pattern", help: "Leave matching addresses out of the plan.", repeatable: true, type: .addressPattern),
    ]

    static let spec = CommandSpec(
        name: "plan",
        abstract: "Show what apply would change in the state database.",
        discussion: """
            Validates DIR, reads the state database (it is not created or changed), and prints every change: \
            + create, ~ update, - delete, with field-level before and after. Secrets show only as (sensitive) \
            or (changed).
            When the configuration declares policies, a 'Policy checks' section follows the changes: each policy, pass or fail, \
            and what fails at which address. A failing mandatory policy makes the plan invalid (exit 1, not saved); a failing \
            overridable one keeps --out from saving it (apply the folder with --override instead).
            Exit status: 0 success (with --detailed-exitcode: 0 no changes, 2 changes), 1 invalid configuration, a failing mandatory policy or error, 64 usage error.
            """,
        arguments: [ArgumentSpec("dir", help: "The configuration folder.")],
        options: [
            .option("format", valueName: "format", help: "Output format.", default: "text", allowedValues: ["text", "json", "markdown"]),
            .option("out", valueName: "file", help: "Also save the plan to FILE for 'orgctl apply FILE'."),
            .option("max-chars", valueName: "n",
                    help: "With --format markdown: keep the output under N characters, deletes and security-relevant changes first, then how many were left out; 0 for no limit.",
                    default: "60000, under GitHub's 65,536-character comment limit", type: .integer(min: 0)),
            .flag("detailed-exitcode", help: "Exit 0 when there are no changes, 2 when there are changes, 1 on error."),
            .option("source", valueName: "text", help: "Where the change comes from, recorded in a saved plan for the audit log.",
                    default: "git:<commit> of the folder (+dirty with uncommitted changes), or 'local'"),
        ] + targetOptions + StateAccess.options + TenantDeletionOptions.options + ValidateCommand.inputOptions)

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let directory = command.argument("dir") ?? "."
        // Before the work: a plan that cannot be saved is found out now, not after it was made.
        try FileOutput.checkFolder(of: command.value("out"), option: "out", mustNotExist: true)
        let policy = TenantDeletionOptions.policy(command)
        let format = command.value("format") ?? "text"
        let maxChars = command.integer("max-chars") ?? PlanRenderer.defaultMarkdownBudget
        // A saved plan is authenticated with the state key: without one there is nothing to save it with.
        var planKey: StateKey?
        if command.value("out") != nil {
            guard let key = try StateAccess.key(command, context) else {
                throw CommandFailure(message: "--out saves a plan authenticated with the state key, and no state key was given",
                                     help: "set ORGCTL_STATE_KEY or pass --state-key-file (apply needs the same key)")
            }
            planKey = key
        }
        let planned = try MachineFailure.reporting(format, title: "plan", formatVersion: Plan.formatVersion, context.console) {
            try Planning.make(command, context, directory: directory, access: .readOnly)
        }
        let plan = planned.plan
        let console = context.console
        let protected = Reconciler.tenantDeletions(plan, stored: planned.stored, policy: policy)
        let policies = planned.policies
        switch format {
        case "json": console.print(PlanRenderer.json(plan, protected: protected, policies: policies))
        case "markdown": console.out(PlanRenderer.markdown(plan, protected: protected, maxBytes: maxChars, policies: policies))
        default:
            let style = console.style(forStdout: true)
            console.out(PlanRenderer(style: style).text(plan) + TenantDeletionOptions.text(protected, style: style)
                + PolicyRenderer.text(policies, style: style, quietWhenPassing: plan.isEmpty))
        }
        // A plan with a failing mandatory policy is invalid: it is shown, never saved, and exits 1.
        if policies.mandatoryFailed {
            throw CommandFailure(message: "a mandatory policy fails: the plan is invalid\(command.value("out") != nil ? " and was not saved" : "")",
                                 help: "fix what 'Policy checks' reports above; a mandatory policy cannot be overridden")
        }
        if command.value("out") != nil, !policies.blocking.isEmpty {
            let names = Set(policies.blocking.map(\.name)).sorted().map { "--override \($0)" }.joined(separator: " ")
            throw CommandFailure(message: "an overridable policy fails, so the plan was not saved: a saved plan carries no override",
                                 help: "fix what 'Policy checks' reports above, or apply the folder with \(names) --reason \"WHY\" (recorded in the audit log)")
        }
        if let out = command.value("out"), let planKey {
            let file = PlanFile(plan: plan, orgctlVersion: Orgctl.version, source: Provenance.source(command, directory: directory),
                                policies: policies)
            try FileOutput.writeNew(out, data: try file.authenticated(with: planKey).encoded(), what: "saved plan")
            console.info("Saved the plan to \(TerminalText.escape(out)). Apply it with: \(applyHint(out, command, context))")
            if plan.keyCount > 0 {
                console.info("The plan issues \(plan.keyCount) API key\(plan.keyCount == 1 ? "" : "s"): add --secrets-out FILE (a new file) unless you apply it on a terminal.")
            }
        }
        if command.flag("detailed-exitcode") {
            return plan.isEmpty ? ExitCode.success : ExitCode.changesPresent
        }
        return ExitCode.success
    }
}

extension PlanCommand {
    /// `orgctl apply PLANFILE` with the options that make it apply to the same database with the same
    /// key (shell-quoted): without them, the hint would point apply at ./orgctl.db.
    static func applyHint(_ out: String, _ command: ParsedCommand, _ context: CommandContext) -> String {
        var words = ["orgctl", "apply", out]
        let state = StateAccess.location(command, context).argument
        if state != "orgctl.db" || command.value("state") != nil { words += ["--state", state] }
        if let schema = command.value("state-schema") { words += ["--state-schema", schema] }
        if let keyFile = command.value("state-key-file") { words += ["--state-key-file", keyFile] }
        return TerminalText.escape(ShellQuoting.line(words))
    }
}

/// The shared first half of plan and apply: configuration -> desired state -> plan.
enum Planning {
    struct Result {
        var plan: Plan
        var stored: StoredState
        var store: (any StateStore)?
        var secrets: [String: [UInt8]]
        var desired: DesiredState
        /// The configuration's warnings (already printed to standard error unless --quiet).
        var warnings: [Diagnostic]
        /// What orgctl last applied to drifted rows; filled only when asked for (drift).
        var applied: [String: AppliedResource] = [:]
        /// The state read, still checking the audit chain when asked to (apply).
        var reading: BackgroundRead
        /// The configuration's policies, judged against the plan.
        var policies = PolicyReport(checks: [])

        /// The stored state with the result of the chain check made in its snapshot, waiting for
        /// the check to end. Apply calls it before writing: the store is free afterwards.
        func storedWithChainCheck() -> StoredState {
            var state = stored
            state.auditChain = reading.chainCheck()
            return state
        }
    }

    /// What a command does when the state database does not exist.
    enum MissingState {
        /// Plan against an empty state and say so (plan, apply: apply creates the database).
        case emptyState
        /// Refuse (drift: with no database there is nothing orgctl applied to compare with, and
        /// a typo in --state must not read as "everything is pending").
        case error
    }

    /// `createsMissing: false` with `.readWrite`: the store opened for writing where a state exists,
    /// nil (an empty state, created only when the apply is confirmed) where none does.
    /// `defersMigration`: an older PostgreSQL schema is migrated by the apply's write, not when opened.
    static func make(_ command: ParsedCommand, _ context: CommandContext, directory: String, access: StateAccessMode,
                     withApplied: Bool = false, checkingChain: Bool = false, missingState: MissingState = .emptyState,
                     createsMissing: Bool = true, defersMigration: Bool = false) throws -> Result {
        // Digests are keyed: comparing (or writing) a stored state needs the key.
        let key = access == .readWrite || StateAccess.location(command, context).exists
            ? try StateAccess.requiredKey(command, context) : try StateAccess.key(command, context)
        let store = try StateAccess.open(command, context, access: access, key: key, createsMissing: createsMissing, defersMigration: defersMigration)
        if store == nil, missingState == .error {
            throw CommandFailure(message: "the state database '\(StateAccess.display(command, context))' does not exist; drift compares it with what orgctl applied, so there is nothing to check",
                                 help: "pass the database 'orgctl apply' writes with --state (or ORGCTL_STATE); check the path and that its volume is mounted")
        }
        // Read the state on another thread while the configuration loads: the two are independent.
        // Apply also has the chain checked there, in the same snapshot, while the plan is made.
        let reading = BackgroundRead(store, withApplied: withApplied, checkingChain: checkingChain)
        let console = context.console
        let progress = console.progress("reading the configuration and the state database", unit: "files")
        defer { progress?.finish() }
        var planned = false
        // A failure below must not leave the other thread using the store.
        defer { if !planned { reading.stop() } }
        let loaded = try ValidateCommand.load(directory, context, command, progress: progress)
        context.lifetime.keep(loaded)
        if loaded.configuration == nil { progress?.finish() }
        let renderer = DiagnosticRenderer(style: console.style(forStdout: false))
        guard let configuration = loaded.configuration else {
            console.err(renderer.text(loaded.diagnostics.sorted))
            throw CommandFailure(message: "the configuration is invalid: \(loaded.diagnostics.errorCount) error\(loaded.diagnostics.errorCount == 1 ? "" : "s"); nothing was planned",
                                 help: "fix the errors above ('orgctl validate \(directory)' shows them all)", diagnostics: loaded.diagnostics.sorted)
        }
        let warnings = loaded.diagnostics.sorted.filter { $0.severity == .warning }
        if !warnings.isEmpty && !console.quiet { console.err(renderer.text(warnings)) }

        var resolver = SecretResolver(environment: context.environment,
                                      protectedFiles: StateAccess.protectedFiles(command, context))
        var values: [SecretSource: [UInt8]] = [:]
        let desired = try configuration.desiredState { source in
            guard let key else {
                throw CommandFailure(message: "the configuration declares secrets, and no state key was given to encrypt them",
                                     help: "set ORGCTL_STATE_KEY to 32 random bytes in base64 (openssl rand -base64 32) or pass --state-key-file")
            }
            let value = resolver.value(source)
            values[source] = value
            return key.fingerprint(value)
        }
        try resolver.checkComplete()
        let stored = try reading.wait()
        progress?.finish()
        let applied = reading.applied
        context.lifetime.keep(desired)
        context.lifetime.keep(stored)
        let targets = command.values("target").map(AddressPattern.init)
        let excludes = command.values("exclude").map(AddressPattern.init)
        // The policies first (the plan id is computed once): filtering keeps the policy change and covers it.
        var plan = Reconciler.plan(desired: desired, stored: stored, recordingPolicies: PolicyRecord.of(configuration))
            .filtered(targets: targets, excludes: excludes) { Reconciler.selectsAny($0, desired: desired, stored: stored) }
        plan.stateExists = store != nil
        if let targeting = plan.targeting {
            let style = console.style(forStdout: false)
            for (option, pattern) in targeting.unmatchedTargets.map({ ("--target", $0) }) + targeting.unmatchedExcludes.map({ ("--exclude", $0) }) {
                // Like the configuration's warnings, silenced by --quiet: the plan's own targeting note still says it.
                console.info("\(style.yellow("warning")): \(option) '\(pattern)' matches no address in the configuration or the state database")
                console.info("\(style.green("help")): check the pattern against 'orgctl addresses \(directory)' (* within a segment, ** across)")
            }
        }
        // What `previously:` found against the state: warnings are shown, errors stop here.
        let errors = plan.diagnostics.filter { $0.severity == .error }
        let shown = console.quiet ? errors : plan.diagnostics
        if !shown.isEmpty { console.err(renderer.text(shown)) }
        if !errors.isEmpty {
            throw CommandFailure(message: "the configuration's renames do not fit the state database: \(errors.count) error\(errors.count == 1 ? "" : "s"); nothing was planned",
                                 help: "fix 'previously' as shown above, then plan again", diagnostics: plan.diagnostics)
        }
        if store == nil {
            // A hint on standard error (silenced by --quiet); Markdown and JSON carry it in the plan itself.
            console.info("note: the state database '\(StateAccess.display(command, context))' does not exist yet; planning against an empty state (apply creates it)")
        }
        var secrets: [String: [UInt8]] = [:]
        for (key, source) in plan.secretSources { secrets[key] = values[source] }
        planned = true
        let policies = Reconciler.policyChecks(configuration, today: ConfigurationLoader.calendarDate(context.now), plan: plan, stored: stored)
        return Result(plan: plan, stored: stored, store: store, secrets: secrets, desired: desired, warnings: warnings, applied: applied,
                      reading: reading, policies: policies)
    }
}

/// Reads the stored state on a background thread and, when asked to, then checks the audit
/// chain there in the same snapshot (what apply needs before it appends, and the longest read
/// of all: it overlaps with planning).
///
/// @unchecked Sendable: the store is used by the background thread until it finishes
/// (`chainCheck()` or `stop()` return), and the calling thread does not touch it before then;
/// `result` and `applied` are written before `stateRead` is signalled and read only after.
final class BackgroundRead: @unchecked Sendable {
    private let store: (any StateStore)?
    private let stateRead = DispatchSemaphore(value: 0)
    private var work: StoppableWork<AuditChainCheck>?
    private var result: Swift.Result<StoredState, CommandFailure>?
    /// With `withApplied`: what orgctl last applied to the rows that drifted (valid after `wait()`).
    private(set) var applied: [String: AppliedResource] = [:]

    init(_ store: (any StateStore)?, withApplied: Bool = false, checkingChain: Bool = false) {
        self.store = store
        work = StoppableWork { [self] shouldStop in
            var delivered = false
            func deliver(_ read: Swift.Result<StoredState, CommandFailure>) {
                result = read
                delivered = true
                stateRead.signal()
            }
            do {
                guard let store = self.store else {
                    deliver(.success(try StateAccess.read(nil)))
                    return .unchecked
                }
                if withApplied {
                    let read = try store.readWithApplied()
                    applied = read.applied
                    deliver(.success(read.state))
                } else if checkingChain {
                    return try store.readCheckingChain(state: { deliver(.success($0)) }, shouldStop: shouldStop)
                } else {
                    deliver(.success(try store.read()))
                }
            } catch {
                // After the state was delivered, a failed check stays `.unchecked`: apply checks again itself.
                if !delivered {
                    let failure = error as? CommandFailure
                        ?? (error as? StateError).map { CommandFailure(message: $0.message, help: $0.help) }
                        ?? CommandFailure(message: "\(error)", help: nil)
                    deliver(.failure(failure))
                }
            }
            return .unchecked
        }
    }

    /// The state, once read.
    func wait() throws -> StoredState {
        stateRead.wait()
        stateRead.signal()  // later calls return at once
        return try result!.get()
    }

    /// What the chain check found, once it ends (`.unchecked` when none was asked for).
    func chainCheck() -> AuditChainCheck {
        work?.result() ?? .unchecked
    }

    /// Ends the background work early (a chain check stops within a few thousand entries) and
    /// waits for it: afterwards the store is the caller's again.
    func stop() {
        work?.stop()
    }
}

/// Files orgctl creates: mode 0600, never overwriting an existing file, and never left behind
/// empty or half written (a write that fails removes the file, so it does not block the retry).
enum FileOutput {
    /// Refuses, before any work, a file option whose folder does not exist or is not writable (and,
    /// with `mustNotExist`, one that names an existing file).
    static func checkFolder(of path: String?, option: String, mustNotExist: Bool = false) throws {
        guard let path else { return }
        var status = stat()
        if mustNotExist, lstat(path, &status) == 0 {
            throw CommandFailure(message: "--\(option) '\(path)' already exists; orgctl never overwrites it, and did nothing",
                                 help: "choose a new file name or remove the old file")
        }
        let folder = FilePath.folder(of: path).isEmpty ? "." : FilePath.folder(of: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CommandFailure(message: "the folder of --\(option) '\(path)' does not exist; nothing was done",
                                 help: "create the folder '\(folder)' first, or choose another path")
        }
        guard access(folder, W_OK | X_OK) == 0 else {
            throw CommandFailure(message: "the folder of --\(option) '\(path)' is not writable; nothing was done",
                                 help: "check the permissions of '\(folder)', or choose another path")
        }
    }

    /// - Parameter shownAs: the name messages give (the final name of a file written under a temporary one).
    static func writeNew(_ path: String, data: Data, what: String, shownAs: String? = nil) throws {
        let shown = shownAs ?? path
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "it already exists" : String(cString: strerror(errno))
            throw CommandFailure(message: "cannot write the \(what) to '\(shown)': \(reason)",
                                 help: errno == EEXIST ? "choose a new file name or remove the old file" : "check the folder and its permissions")
        }
        defer { close(fd) }
        if let reason = writeAll(fd, data) {
            unlink(path)
            throw CommandFailure(message: "writing the \(what) to '\(shown)' failed, and the file was removed: \(reason)",
                                 help: "check free disk space and file size limits")
        }
    }

    /// Writes all of `data` to `fd` and syncs it to disk; the system's reason when that fails.
    static func writeAll(_ fd: Int32, _ data: Data) -> String? {
        var failure: Int32 = 0
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure == 0, fsync(fd) != 0 { failure = errno }
        return failure == 0 ? nil : String(cString: strerror(failure))
    }
}

/// What `plan` and `drift` print on standard output in a machine format when they fail (an invalid
/// configuration, a missing secret, an unreadable database), so a job that parses the output always
/// gets a document: docs/cli.md, "Machine-readable failures". The error and its diagnostics still go
/// to standard error as text, and the exit status is the same.
enum MachineFailure {
    static func reporting<T>(_ format: String, title: String, formatVersion: Int, _ console: Console, _ work: () throws -> T) throws -> T {
        do {
            return try work()
        } catch {
            let failure = error as? CommandFailure ?? CommandFailure(message: "\(error)", help: nil)
            switch format {
            case "json": console.print(json(failure, formatVersion: formatVersion))
            case "markdown": console.out(markdown(failure, title: title))
            default: break
            }
            throw error
        }
    }

    static func json(_ failure: CommandFailure, formatVersion: Int) -> String {
        var error: [String: Any] = ["message": failure.message]
        if let help = failure.help { error["help"] = help }
        if !failure.details.isEmpty { error["details"] = failure.details }
        let diagnostics = failure.diagnostics
        let document: [String: Any] = [
            "formatVersion": formatVersion,
            "status": "error",
            "error": error,
            "summary": ["errors": diagnostics.count { $0.severity == .error }, "warnings": diagnostics.count { $0.severity == .warning }],
            "diagnostics": DiagnosticRenderer.jsonObjects(diagnostics),
        ]
        return JSONOutput.string(document)
    }

    static func markdown(_ failure: CommandFailure, title: String) -> String {
        var out = "### orgctl \(title)\n\n**Error:** \(fenced(TerminalText.escape(failure.message)))\n\n"
        for detail in failure.details { out += "- \(fenced(TerminalText.escape(detail)))\n" }
        if !failure.details.isEmpty { out += "\n" }
        if let help = failure.help { out += "help: \(fenced(TerminalText.escape(help)))\n\n" }
        if !failure.diagnostics.isEmpty {
            let text = DiagnosticRenderer(style: Style(enabled: false)).text(failure.diagnostics)
            out += "```text\n" + text.replacingOccurrences(of: "```", with: "ˋˋˋ") + "```\n"
        }
        return out
    }

    /// Inline text in backticks (a backtick in it replaced by a look-alike, so it cannot close the span).
    private static func fenced(_ text: String) -> String { "`" + text.replacingOccurrences(of: "`", with: "ˋ") + "`" }
}
