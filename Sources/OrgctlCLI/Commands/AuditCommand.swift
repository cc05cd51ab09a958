import Audit
import Crypto
import Foundation
import Reconciler
import StateStore

/// `orgctl audit verify` and `orgctl audit log`; the Merkle tree commands are in ``AuditLogCommands``.
enum AuditCommand {
    static let spec = CommandSpec(
        name: "audit",
        abstract: "Verify, read and prove the tamper-evident audit log.",
        subcommands: [
            CommandSpec(
                name: "verify", abstract: "Re-check every audit entry's hash and linkage.",
                discussion: """
                    Recomputes each entry's leaf and chain hash (docs/audit-chain.md) and names the first broken entry, \
                    reading the log once in bounded memory. With --checkpoint, also checks that the log's first N \
                    entries have the Merkle root of each checkpoint (N = its size) and, with --key, that each \
                    checkpoint carries a valid signature of that key; a log truncated or rewritten behind a \
                    checkpoint is reported with the first checkpoint size at which it differs.
                    Exit status: 0 intact (and matching every checkpoint), 1 broken, not matching a checkpoint, or \
                    unreadable, 64 usage error.
                    """,
                options: AuditLogCommands.verifyOptions + StateAccess.readOptions,
                constraints: [.requires("key", "checkpoint")]),
            CommandSpec(
                name: "log", abstract: "Print audit entries, oldest first.",
                options: [
                    .option("address", valueName: "pattern", help: "Only entries whose address matches (glob, e.g. 'tenant/acme/**').", repeatable: true,
                            type: .addressPattern),
                    .option("since", valueName: "time", help: "Only entries at or after this UTC time (2026-11-01 or 2026-11-01T12:00:00Z).",
                            type: .utcTime),
                    .option("format", valueName: "format", help: "Output format.", default: "text", allowedValues: ["text", "json"]),
                ] + StateAccess.readOptions),
        ] + AuditLogCommands.specs)

    static func open(_ command: ParsedCommand, _ context: CommandContext) throws -> any StateStore {
        guard let store = try StateAccess.open(command, context, access: .readOnly, key: try StateAccess.key(command, context), readsOlderSchema: true) else {
            throw CommandFailure(message: "the state database '\(StateAccess.display(command, context))' does not exist",
                                 help: "pass --state (or set ORGCTL_STATE) to the database that 'orgctl apply' wrote")
        }
        return store
    }

    static func verify(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let store = try open(command, context)
        let checkpoints = command.values("checkpoint")
        if command.value("key") != nil, checkpoints.isEmpty {
            throw CommandFailure(message: "--key checks the signatures of checkpoints, and no --checkpoint was given",
                                 help: "add --checkpoint FILE", exitCode: ExitCode.usage)
        }
        // Usage problems (files, key, origin) end the command before the log is read or anything is printed.
        let check = try AuditLogCommands.CheckpointCheck(checkpoints, command, context, store: store)
        let progress = context.console.progress("verifying the audit log", unit: "entries")
        let log = try AuditLogCommands.call { try store.verifyAuditLog(rootsAt: check.sizes) { progress?.advance() } }
        progress?.finish()
        var report = AuditLogCommands.VerifyReport()
        if let broken = log.firstBreak {
            report.fail("broken at entry \(broken.sequence): \(broken.problem)",
                        help: "entries from \(broken.sequence) on cannot be trusted; restore the database from a backup and investigate who changed it")
        } else {
            report.oks.append("ok: \(log.count) entries, head \(Hex.encode(log.head))")
        }
        // An edited entry also changes the tree nodes above it: the chain's break says more, and is said alone.
        if log.firstBreak == nil, let mismatch = log.treeMismatch { report.fail(mismatch.description, help: AuditTreeMismatch.help) }
        check.report(log, into: &report)
        report.print(to: context.console)
        return report.failed ? ExitCode.failure : ExitCode.success
    }

    static func log(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let store = try open(command, context)
        let patterns = command.values("address").map(AddressPattern.init)
        var since: String?
        if let text = command.value("since") {
            guard let normalized = normalizeTime(text) else {
                throw CommandFailure(message: "--since must be a UTC date or time such as 2026-11-01 or 2026-11-01T12:00:00Z, not '\(text)'",
                                     help: "write the time in UTC (RFC 3339)", exitCode: ExitCode.usage)
            }
            since = normalized
        }
        let json = command.value("format") == "json"
        let console = context.console
        var first = true
        // Entries on the terminal are their own progress; piped or filtered, count them on standard error.
        let progress = console.stdoutIsTerminal ? nil : console.progress("reading the audit log", unit: "entries")
        defer { progress?.finish() }
        // The entries are printed as stored; a broken chain is said before the first entry it no longer vouches for.
        var chain = ChainVerifier()
        var warned = false
        // Subject tokens print as the person they stand for, or [erased] (docs/audit-chain.md 8).
        let resolver: SubjectResolver
        do {
            resolver = try store.subjectResolver()
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
        if json { console.out("[") }
        do {
            try store.forEachAuditRecord { record in
                if !warned, let broken = chain.check(record) {
                    warned = true
                    console.printError("warning: the audit chain is broken at entry \(broken.sequence): \(TerminalText.escape("\(broken.problem)")); entries from \(broken.sequence) on cannot be trusted")
                    console.printError("help: run 'orgctl audit verify', restore the database from a backup and investigate who changed it")
                }
                progress?.advance()
                guard let stored = try? AuditEntry(canonicalBytes: record.entry) else {
                    throw CommandFailure(message: "audit entry \(record.sequence) is unreadable", help: "run 'orgctl audit verify'")
                }
                let entry = resolver.resolve(stored)
                if let since, entry.time < since { return true }
                if !patterns.isEmpty, !patterns.contains(where: { $0.selects(entry.address) }) { return true }
                if json {
                    console.out((first ? "\n" : ",\n") + String(decoding: entry.version == 1 ? record.entry : entry.canonicalBytes(), as: UTF8.self))
                } else {
                    var line = "\(entry.sequence)  \(entry.time)  \(entry.action.padding(toLength: max(6, entry.action.count), withPad: " ", startingAt: 0))  \(entry.address)  by \(entry.actor)  from \(entry.source)  plan \(entry.planID)"
                    if let reason = entry.reason { line += "  (\(reason))" }
                    console.print(TerminalText.escape(line))  // every part is a stored value
                }
                first = false
                return true
            }
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
        if json { console.print(first ? "]" : "\n]") }
        return ExitCode.success
    }

    /// `2026-11-01` or an RFC 3339 UTC time, as the `time` field's text form for comparison.
    static func normalizeTime(_ text: String) -> String? { ValueType.utcTime(text) }
}
