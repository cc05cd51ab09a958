import Foundation
import Reconciler
import Spec
import StateStore

/// `orgctl plan DIR`: validate, read the state, print what apply would change.
enum PlanCommand {
    static let targetOptions: [OptionSpec] = [
        .option("target", valueName: "pattern", help: "Limit the plan to matching addresses (glob: * within a segment, ** across), e.g. 'tenant/acme/**'.", repeatable: true),
        .option("exclude", valueName: "pattern", help: "Leave matching addresses out of the plan.", repeatable: true),
    ]

    static let spec = CommandSpec(
        name: "plan",
        abstract: "Show what apply would change in the state database.",
        discussion: """
            Validates DIR, reads the state database (it is not created or changed), and prints every change: \
            + create, ~ update, - delete, with field-level before and after. Secrets show only as (sensitive) \
            or (changed).
            Exit status: 0 success (with --detailed-exitcode: 0 no changes, 2 changes), 1 invalid configuration or error, 64 usage error.
            """,
        arguments: [ArgumentSpec("dir", help: "The configuration folder.")],
        options: [
            .option("format", valueName: "format", help: "Output format.", default: "text", allowedValues: ["text", "json", "markdown"]),
            .option("out", valueName: "file", help: "Also save the plan to FILE for 'orgctl apply FILE'."),
            .flag("detailed-exitcode", help: "Exit 0 when there are no changes, 2 when there are changes, 1 on error."),
            .option("source", valueName: "text", help: "Where the change comes from, recorded in a saved plan for the audit log.",
                    default: "git:<commit> of the folder (+dirty with uncommitted changes), or 'local'"),
        ] + targetOptions + StateAccess.options + ValidateCommand.inputOptions)

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let directory = command.argument("dir") ?? "."
        let planned = try Planning.make(command, context, directory: directory, access: .readOnly)
        let plan = planned.plan
        let console = context.console
        switch command.value("format") ?? "text" {
        case "json": console.print(PlanRenderer.json(plan))
        case "markdown": console.out(PlanRenderer.markdown(plan))
        default: console.out(PlanRenderer(style: console.style(forStdout: true)).text(plan))
        }
        if let out = command.value("out") {
            let file = PlanFile(plan: plan, orgctlVersion: Orgctl.version, source: Provenance.source(command, directory: directory))
            try FileOutput.writeNew(out, data: try file.encoded(), what: "saved plan")
            console.info("Saved the plan to \(out). Apply it with: orgctl apply \(out)")
        }
        if command.flag("detailed-exitcode") {
            return plan.isEmpty ? ExitCode.success : ExitCode.changesPresent
        }
        return ExitCode.success
    }
}

/// The shared first half of plan and apply: configuration -> desired state -> plan.
enum Planning {
    struct Result {
        var plan: Plan
        var stored: StoredState
        var store: SQLiteStateStore?
        var secrets: [String: [UInt8]]
        var desired: DesiredState
        /// The configuration's warnings (already printed to standard error unless --quiet).
        var warnings: [Diagnostic]
        /// What orgctl last applied to drifted rows; filled only when asked for (drift).
        var applied: [String: AppliedResource] = [:]
        /// The state read, still checking the audit chain when asked to (apply).
        var reading: BackgroundRead

        /// The stored state with the result of the chain check made in its snapshot, waiting for
        /// the check to end. Apply calls it before writing: the store is free afterwards.
        func storedWithChainCheck() -> StoredState {
            var state = stored
            state.auditChain = reading.chainCheck()
            return state
        }
    }

    static func make(_ command: ParsedCommand, _ context: CommandContext, directory: String, access: SQLiteStateStore.Access,
                     withApplied: Bool = false, checkingChain: Bool = false) throws -> Result {
        _ = try ValidateCommand.limits(command)  // a malformed budget option is a usage error before any work
        let key = try StateAccess.key(command, context)
        let store = try StateAccess.open(command, context, access: access, key: key)
        // Read the state on another thread while the configuration loads: the two are independent.
        // Apply also has the chain checked there, in the same snapshot, while the plan is made.
        let reading = BackgroundRead(store, withApplied: withApplied, checkingChain: checkingChain)
        var planned = false
        // A failure below must not leave the other thread using the store.
        defer { if !planned { reading.stop() } }
        let loaded = try ValidateCommand.load(directory, context, command)
        context.lifetime.keep(loaded)
        let console = context.console
        let renderer = DiagnosticRenderer(style: console.style(forStdout: false))
        guard let configuration = loaded.configuration else {
            console.err(renderer.text(loaded.diagnostics.sorted))
            throw CommandFailure(message: "the configuration is invalid: \(loaded.diagnostics.errorCount) error\(loaded.diagnostics.errorCount == 1 ? "" : "s"); nothing was planned",
                                 help: "fix the errors above ('orgctl validate \(directory)' shows them all)")
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
        let applied = reading.applied
        context.lifetime.keep(desired)
        context.lifetime.keep(stored)
        let targets = command.values("target").map(AddressPattern.init)
        let excludes = command.values("exclude").map(AddressPattern.init)
        let plan = Reconciler.plan(desired: desired, stored: stored).filtered(targets: targets, excludes: excludes)
        // What `previously:` found against the state: warnings are shown, errors stop here.
        let errors = plan.diagnostics.filter { $0.severity == .error }
        let shown = console.quiet ? errors : plan.diagnostics
        if !shown.isEmpty { console.err(renderer.text(shown)) }
        if !errors.isEmpty {
            throw CommandFailure(message: "the configuration's renames do not fit the state database: \(errors.count) error\(errors.count == 1 ? "" : "s"); nothing was planned",
                                 help: "fix 'previously' as shown above, then plan again")
        }
        var secrets: [String: [UInt8]] = [:]
        for (key, source) in plan.secretSources { secrets[key] = values[source] }
        planned = true
        return Result(plan: plan, stored: stored, store: store, secrets: secrets, desired: desired, warnings: warnings, applied: applied,
                      reading: reading)
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
    private let store: SQLiteStateStore?
    private let stateRead = DispatchSemaphore(value: 0)
    private var work: StoppableWork<AuditChainCheck>?
    private var result: Swift.Result<StoredState, CommandFailure>?
    /// With `withApplied`: what orgctl last applied to the rows that drifted (valid after `wait()`).
    private(set) var applied: [String: AppliedResource] = [:]

    init(_ store: SQLiteStateStore?, withApplied: Bool = false, checkingChain: Bool = false) {
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

/// Files orgctl creates: mode 0600, never overwriting an existing file.
enum FileOutput {
    static func writeNew(_ path: String, data: Data, what: String) throws {
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "it already exists" : String(cString: strerror(errno))
            throw CommandFailure(message: "cannot write the \(what) to '\(path)': \(reason)",
                                 help: errno == EEXIST ? "choose a new file name or remove the old file" : "check the folder and its permissions")
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            throw CommandFailure(message: "writing the \(what) to '\(path)' failed: \(error.localizedDescription)", help: "check free disk space")
        }
    }
}
