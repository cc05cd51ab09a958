import Audit
import Foundation
import StateStore

/// `orgctl audit checkpoint | keygen | prove | consistency` and the checkpoint checks of
/// `audit verify`: the RFC 9162 tree over the audit entries (docs/audit-chain.md section 7).
/// Parsing and printing only; the tree math is in Audit, the stored tree in StateStore.
enum AuditLogCommands {
    static let origin = OptionSpec.option(
        "origin", valueName: "origin",
        help: "The log's name on the first line of checkpoints; the first apply that names one stores it, and another is refused.",
        default: "the stored origin, else orgctl/<database id>", env: "ORGCTL_AUDIT_ORIGIN")
    static let signingKey = OptionSpec.option(
        "key", valueName: "file", help: "Sign the checkpoint with this signed-note private key (from 'orgctl audit keygen').")

    static let specs: [CommandSpec] = [
        CommandSpec(
            name: "checkpoint", abstract: "Print a checkpoint of the audit log: origin, size and Merkle root, optionally signed.",
            discussion: """
                Prints a C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the origin, the number of entries and the \
                base64 RFC 9162 Merkle root of the entries. With --key, the checkpoint is a signed note with an \
                Ed25519 signature line. Keep checkpoints outside the database (git, a ticket, a witness): \
                'orgctl audit verify --checkpoint' and 'orgctl audit consistency' check the log against them.
                Exit status: 0 printed, 1 error, 64 usage error.
                """,
            options: [signingKey, origin] + StateAccess.readOptions),
        CommandSpec(
            name: "keygen", abstract: "Create an Ed25519 key pair for signing checkpoints.",
            discussion: """
                Writes the private key to FILE (mode 0600) and the verifier key to FILE.pub, both in the \
                signed-note key formats ('PRIVATE+KEY+<name>+<id>+<key>' and '<name>+<id>+<key>'), and prints the \
                verifier key. NAME is the key name on signature lines; use the log's origin. Existing files are \
                never overwritten.
                Exit status: 0 written, 1 error, 64 usage error.
                """,
            arguments: [ArgumentSpec("name", help: "The key name, e.g. orgctl.example.com/audit (no spaces, no '+').")],
            options: [.option("out", valueName: "file", help: "Where to write the private key (the verifier key goes to <file>.pub).",
                              default: "orgctl-audit.key")]),
        CommandSpec(
            name: "prove", abstract: "Print an inclusion proof of one audit entry (C2SP tlog-proof).",
            discussion: """
                Prints a c2sp.org/tlog-proof@v1: the entry's zero-based index (SEQ - 1), the RFC 9162 inclusion \
                proof hashes, and a checkpoint of the current log (signed with --key).
                Exit status: 0 printed, 1 error (no such entry), 64 usage error.
                """,
            arguments: [ArgumentSpec("seq", help: "The entry's sequence number (1 is the first entry).", type: .integer(min: 1))],
            options: [signingKey, origin] + StateAccess.readOptions),
        CommandSpec(
            name: "consistency", abstract: "Prove that the audit log extends an older checkpoint.",
            discussion: """
                Checks that the first N entries of the log (N = the old checkpoint's size) still have the old \
                checkpoint's root, then prints a consistency proof from N to the current size in the body format \
                of a C2SP tlog-witness add-checkpoint request: 'old N', the proof hashes, a blank line, and a \
                checkpoint of the current log (signed with --key).
                Exit status: 0 printed, 1 the log does not extend the checkpoint (truncated or rewritten) or \
                error, 64 usage error.
                """,
            arguments: [ArgumentSpec("old-checkpoint", help: "A checkpoint file written earlier by 'orgctl audit checkpoint'.")],
            options: [signingKey, origin] + StateAccess.readOptions),
    ]

    static let verifyOptions: [OptionSpec] = [
        .option("checkpoint", valueName: "file", help: "Also check that the log matches this checkpoint (repeatable).", repeatable: true),
        .option("key", valueName: "key", help: "The verifier key (<name>+<id>+<key>, as 'orgctl audit keygen' prints it) or its .pub file; every --checkpoint must carry its valid signature."),
        origin,
    ]

    // MARK: Shared

    /// The origin given for this run (`--origin`, else `ORGCTL_AUDIT_ORIGIN`), checked as a note's first line.
    static func givenOrigin(_ command: ParsedCommand, _ context: CommandContext) throws -> String? {
        let given = command.value("origin") ?? context.environment["ORGCTL_AUDIT_ORIGIN"].flatMap { $0.isEmpty ? nil : $0 }
        guard let given else { return nil }
        let printable = given.unicodeScalars.allSatisfy { $0.properties.generalCategory != .control && !"\u{2028}\u{2029}".unicodeScalars.contains($0) }
        guard !given.isEmpty, printable, given.trimmingCharacters(in: .whitespaces) == given else {
            throw CommandFailure(message: "the origin must be one line of text without control characters or surrounding spaces, not '\(given.debugDescription.dropFirst().dropLast())'",
                                 help: "use a schema-less URL such as orgctl.example.com/tenants", exitCode: ExitCode.usage)
        }
        return given
    }

    /// The log's origin: the one stored with the log when an apply first named it, else the one
    /// given, else `orgctl/<database id>`. A given origin that differs from the stored one is refused.
    static func origin(_ command: ParsedCommand, _ context: CommandContext, store: any StateStore) throws -> String {
        let given = try givenOrigin(command, context)
        guard let stored = try call({ try store.storedAuditOrigin }) else { return given ?? "orgctl/\(store.databaseID)" }
        if let given, given != stored {
            let source = command.value("origin") != nil ? "--origin" : "ORGCTL_AUDIT_ORIGIN"
            throw CommandFailure(
                message: "this audit log's origin is '\(stored)', not '\(given)' (\(source)): a log keeps the origin its first apply with an origin gave it",
                help: "drop \(source): the stored origin is used by default (check --state if this is the wrong database)",
                exitCode: ExitCode.usage)
        }
        return stored
    }

    /// Before an apply: a given origin must agree with the log's stored one. Returns the origin
    /// to store once the apply succeeds (nil when none is given or one is stored already).
    static func checkOrigin(_ command: ParsedCommand, _ context: CommandContext) throws -> String? {
        guard let given = try givenOrigin(command, context) else { return nil }
        guard let store = try StateAccess.open(command, context, access: .readOnly, key: nil, readsOlderSchema: true) else { return given }
        guard try call({ try store.storedAuditOrigin }) != nil else { return given }
        _ = try origin(command, context, store: store)
        return nil
    }

    /// After an apply: stores `origin` as the log's, unless another apply stored one in between.
    static func recordOrigin(_ origin: String, _ command: ParsedCommand, _ context: CommandContext) throws {
        // Never create a database here: only one the apply wrote gets the origin.
        guard try StateAccess.open(command, context, access: .readOnly, key: nil, readsOlderSchema: true) != nil,
            let store = try StateAccess.open(command, context, access: .readWrite, key: nil)
        else { return }
        let stored = try call { try store.recordAuditOrigin(origin) }
        if stored != origin {
            throw CommandFailure(message: "this audit log's origin is '\(stored)', not '\(origin)': another apply stored it first",
                                 help: "drop --origin and ORGCTL_AUDIT_ORIGIN: the stored origin is used by default")
        }
    }

    static func readFile(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure(message: "cannot read \(what) '\(path)'", help: "check the path and its permissions")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CommandFailure(message: "\(what) '\(path)' is not UTF-8 text", help: "pass the file orgctl wrote")
        }
        return text
    }

    static func signer(_ path: String?) throws -> NoteSigner? {
        guard let path else { return nil }
        do {
            return try NoteSigner(keyString: try readFile(path, what: "the private key file"))
        } catch let error as LogFormatError {
            throw CommandFailure(message: "'\(path)' is not a usable signing key: \(error.message)",
                                 help: "pass the private key file written by 'orgctl audit keygen NAME'")
        }
    }

    /// A verifier key given as the key string itself (`<name>+<id>+<key>`, as Go's sumdb tools take
    /// it) or as the file holding it.
    static func verifier(_ value: String) throws -> NoteVerifier {
        if let key = try? NoteVerifier(keyString: value) { return key }
        if value.split(separator: "+", omittingEmptySubsequences: false).count == 3, !FileManager.default.fileExists(atPath: value) {
            do {
                return try NoteVerifier(keyString: value)
            } catch {
                throw CommandFailure(message: "'\(value)' is not a verifier key: \(error.message)",
                                     help: "pass the verifier key printed by 'orgctl audit keygen NAME' (<name>+<id>+<key>) or its .pub file")
            }
        }
        let text = try readFile(value, what: "the verifier key file")
        if text.hasPrefix("PRIVATE+KEY+") {
            throw CommandFailure(message: "'\(value)' is a private key, and verifying needs the verifier key",
                                 help: "pass '\(value).pub' (written beside it by 'orgctl audit keygen'); keep the private key out of verification jobs")
        }
        do {
            return try NoteVerifier(keyString: text)
        } catch {
            throw CommandFailure(message: "'\(value)' is not a verifier key: \(error.message)",
                                 help: "pass the .pub file written by 'orgctl audit keygen NAME' (<name>+<id>+<key>), or the key itself")
        }
    }

    static func checkpointFile(_ path: String) throws -> CheckpointFile {
        do {
            return try CheckpointFile(parsing: try readFile(path, what: "the checkpoint"))
        } catch let error as LogFormatError {
            throw CommandFailure(message: "'\(path)' is not a checkpoint: \(error.message)",
                                 help: "pass a file written by 'orgctl audit checkpoint' or 'apply --checkpoint-out'")
        }
    }

    /// Opens the database for reading the tree; a database from before the tree (schema 1) is
    /// migrated once, which computes the tree for its entries.
    static func openTree(_ command: ParsedCommand, _ context: CommandContext) throws -> any StateStore {
        let store = try AuditCommand.open(command, context)
        if try call({ try store.hasAuditTree }) { return store }
        context.console.info("note: computing the audit tree for the existing entries (a one-time migration)")
        guard let migrated = try StateAccess.open(command, context, access: .readWrite, key: try StateAccess.key(command, context)) else {
            throw CommandFailure(message: "internal error: the state database was not opened", help: "report this as a bug")
        }
        return migrated
    }

    /// Runs a store call, turning a `StateError` into a command failure.
    static func call<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as StateError { throw CommandFailure(message: error.message, help: error.help) }
    }

    /// The stored tree and the verification of the entries, from one read snapshot. `body` runs
    /// only when the chain is intact and every stored node is the node of its entries (its value
    /// is nil otherwise); the caller still checks what it takes from the tree against the
    /// entries' roots and leaves before printing or signing it.
    static func verifiedTree<T>(_ store: any StateStore, rootsAt sizes: Set<Int64> = [], leavesOf sequences: Set<Int64> = [],
                                _ body: (MerkleTreeReader, AuditLogVerification) throws -> T) throws -> (value: T?, log: AuditLogVerification)
    {
        try call {
            var value: T?
            let log = try store.withVerifiedAuditTree(rootsAt: sizes, leavesOf: sequences) { reader, log in
                if log.firstBreak == nil, log.treeMismatch == nil { value = try body(reader, log) }
                return log
            }
            return (value, log)
        }
    }

    /// Refuses a log whose chain is broken or whose stored tree is not the tree of its entries.
    static func requireIntact(_ log: AuditLogVerification) throws {
        if let broken = log.firstBreak {
            throw CommandFailure(message: "the audit chain is broken at entry \(broken.sequence): \(broken.problem)",
                                 help: "nothing is signed or proven for a broken log: run 'orgctl audit verify', restore the database from a backup and investigate who changed it")
        }
        if let mismatch = log.treeMismatch { throw CommandFailure(message: mismatch.description, help: AuditTreeMismatch.help) }
    }

    /// A root or proof from the stored tree that the entries do not confirm.
    static func unconfirmed(_ what: String) -> CommandFailure {
        CommandFailure(message: "the stored audit tree does not match the entries: \(what) it gives does not verify against the entries",
                       help: AuditTreeMismatch.help)
    }

    /// The checkpoint of the log as it is now (for `audit checkpoint`, `prove`, `consistency` and
    /// `apply --checkpoint-out`): its root is the root of the entries, which the stored tree must agree with.
    static func checkpointText(_ store: any StateStore, log: AuditLogVerification, storedRoot: [UInt8]?, origin: String,
                               signer: NoteSigner?) throws -> String
    {
        try requireIntact(log)
        guard storedRoot == log.root else { throw unconfirmed("the root") }
        return try CheckpointFile.format(Checkpoint(origin: origin, size: log.size, rootHash: log.root), signer: signer)
    }

    /// The checkpoint of the log as it is now, for `audit checkpoint` and `apply --checkpoint-out`.
    static func currentCheckpoint(store: any StateStore, origin: String, signer: NoteSigner?) throws -> String {
        let (root, log) = try verifiedTree(store) { reader, log in try reader.root(size: log.size) }
        return try checkpointText(store, log: log, storedRoot: root, origin: origin, signer: signer)
    }

    // MARK: Commands

    static func checkpoint(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let signer = try signer(command.value("key"))
        let store = try openTree(command, context)
        context.console.out(try currentCheckpoint(store: store, origin: try origin(command, context, store: store), signer: signer))
        return ExitCode.success
    }

    static func keygen(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let name = command.argument("name") ?? ""
        let signer: NoteSigner
        do {
            signer = try NoteSigner.generate(name: name)
        } catch let error as LogFormatError {
            throw CommandFailure(message: "invalid key name: \(error.message)", help: "use a name such as orgctl.example.com/audit",
                                 exitCode: ExitCode.usage)
        }
        let path = command.value("out") ?? "orgctl-audit.key"
        // The verifier key first: when its file cannot be created, no private key has been written.
        try write(signer.verifier.keyString + "\n", to: path + ".pub", mode: 0o644)
        do {
            try write(signer.keyString + "\n", to: path, mode: 0o600)
        } catch {
            unlink(path + ".pub")
            throw error
        }
        context.console.print(signer.verifier.keyString)
        context.console.info("wrote the private key to '\(TerminalText.escape(path))' (keep it secret) and the verifier key to '\(TerminalText.escape(path)).pub'")
        return ExitCode.success
    }

    /// Creates `path` with `mode` (never replacing a file) and writes `text`.
    static func write(_ text: String, to path: String, mode: mode_t) throws {
        let fd = Foundation.open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw CommandFailure(message: "cannot create '\(path)': \(reason)",
                                 help: "choose another --out (an existing key file is never overwritten)")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            unlink(path)
            throw CommandFailure(message: "writing '\(path)' failed", help: "check the disk and try again")
        }
    }

    static func prove(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let text = command.argument("seq") ?? ""
        guard let sequence = Int64(text), sequence >= 1 else {
            throw CommandFailure(message: "SEQ must be an entry's sequence number (1, 2, …), not '\(text)'",
                                 help: "list entries with 'orgctl audit log'", exitCode: ExitCode.usage)
        }
        let signer = try signer(command.value("key"))
        let store = try openTree(command, context)
        let origin = try origin(command, context, store: store)
        let (taken, log) = try verifiedTree(store, leavesOf: [sequence]) { reader, log in
            (root: try reader.root(size: log.size),
             proof: sequence <= log.size ? try reader.inclusionProof(index: sequence - 1, treeSize: log.size) : nil)
        }
        guard sequence <= log.size else {
            throw CommandFailure(message: "the audit log has no entry \(sequence)", help: "list entries with 'orgctl audit log'")
        }
        let checkpoint = try checkpointText(store, log: log, storedRoot: taken?.root, origin: origin, signer: signer)
        guard let proof = taken?.proof, let leaf = log.leaves[sequence],
            MerkleVerifier.verifyInclusion(index: sequence - 1, treeSize: log.size, leafHash: leaf, proof: proof, root: log.root)
        else { throw unconfirmed("the inclusion proof") }
        context.console.out(InclusionProofFile(index: sequence - 1, proof: proof, checkpoint: checkpoint).formatted)
        return ExitCode.success
    }

    static func consistency(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let path = command.argument("old-checkpoint") ?? ""
        let old = try checkpointFile(path).checkpoint
        let signer = try signer(command.value("key"))
        let store = try openTree(command, context)
        let origin = try origin(command, context, store: store)
        guard old.origin == origin else {
            throw CommandFailure(message: "'\(path)' is a checkpoint of log '\(old.origin)', and this database's log is '\(origin)'",
                                 help: originHelp(old.origin, store: store), exitCode: ExitCode.usage)
        }
        // Whether the log extends the old checkpoint is decided by the entries, never by the stored tree.
        let (taken, log) = try verifiedTree(store, rootsAt: [old.size]) { reader, log in
            (root: try reader.root(size: log.size),
             proof: old.size <= log.size ? try reader.consistencyProof(oldSize: old.size, newSize: log.size) : nil)
        }
        guard old.size <= log.size else {
            throw CommandFailure(
                message: "the audit log has \(log.size) entries, fewer than the \(old.size) of checkpoint '\(path)': entries \(log.size + 1)–\(old.size) were removed, or the log was rewritten",
                help: "restore the database from a backup taken after that checkpoint and investigate who changed it")
        }
        guard log.rootsAt[old.size] == old.rootHash else {
            throw CommandFailure(
                message: "the audit log does not extend checkpoint '\(path)': its first \(old.size) entries no longer have the checkpoint's root, so at least one of entries 1–\(old.size) was changed",
                help: "run 'orgctl audit verify' with each checkpoint you kept to narrow down the first one that differs")
        }
        let checkpoint = try checkpointText(store, log: log, storedRoot: taken?.root, origin: origin, signer: signer)
        guard let proof = taken?.proof,
            MerkleVerifier.verifyConsistency(oldSize: old.size, newSize: log.size, oldRoot: old.rootHash, newRoot: log.root, proof: proof)
        else { throw unconfirmed("the consistency proof") }
        context.console.out(ConsistencyProofFile(oldSize: old.size, proof: proof, checkpoint: checkpoint).formatted)
        return ExitCode.success
    }

    /// What to do about a checkpoint of another log.
    static func originHelp(_ other: String, store: any StateStore) -> String {
        let stored = (try? store.storedAuditOrigin) ?? nil
        return "pass a checkpoint of this log, or --state with the database whose log is '\(other)'"
            + (stored == nil ? " (or --origin '\(other)' if that is this log's name: no apply has stored its origin yet)" : "")
    }

    /// What `audit verify` prints: every "ok" line before any problem, then the help for each kind of problem.
    struct VerifyReport {
        var oks: [String] = []
        var problems: [String] = []
        var helps: [String] = []

        var failed: Bool { !problems.isEmpty }

        mutating func fail(_ problem: String, help: String) {
            problems.append(problem)
            if !helps.contains(help) { helps.append(help) }
        }

        func print(to console: Console) {
            for line in oks + problems { console.print(TerminalText.escape(line)) }
            for help in helps { console.printError("help: \(TerminalText.escape(help))") }
        }
    }

    static let tamperHelp = "the log no longer matches a checkpoint you kept: restore the database from a backup and investigate who changed it"

    /// The `--checkpoint` files of `audit verify`, read and checked before the log is: unreadable
    /// files, a bad key and a checkpoint of another log are usage problems, reported alone.
    struct CheckpointCheck {
        var files: [(path: String, checkpoint: Checkpoint)] = []
        /// The checkpoints whose signature does not verify, with why.
        var unsigned: [String: String] = [:]
        var verifier: NoteVerifier?

        init(_ paths: [String], _ command: ParsedCommand, _ context: CommandContext, store: any StateStore) throws {
            verifier = try command.value("key").map(AuditLogCommands.verifier)
            let parsed = try paths.map { ($0, try checkpointFile($0)) }
            let origin = try AuditLogCommands.origin(command, context, store: store)
            for (path, file) in parsed where file.checkpoint.origin != origin {
                throw CommandFailure(message: "'\(path)' is a checkpoint of log '\(file.checkpoint.origin)', and this database's log is '\(origin)'",
                                     help: originHelp(file.checkpoint.origin, store: store), exitCode: ExitCode.usage)
            }
            for (path, file) in parsed {
                files.append((path, file.checkpoint))
                guard let verifier else { continue }
                do {
                    guard let note = file.note else { throw LogFormatError("the checkpoint is not signed") }
                    try note.verify(with: verifier)
                } catch let error as LogFormatError {
                    unsigned[path] = error.message
                }
            }
            if verifier == nil, !paths.isEmpty {
                context.console.info("note: checkpoint signatures were not checked (pass --key with the verifier key)")
            }
        }

        var sizes: Set<Int64> { Set(files.map(\.checkpoint.size)) }

        /// Adds one line per checkpoint, smallest first: the first checkpoint the log no longer
        /// matches bounds where it changed.
        func report(_ log: AuditLogVerification, into report: inout VerifyReport) {
            var lastMatching: Int64 = 0
            var firstDiffering: (size: Int64, path: String)?
            for (path, checkpoint) in files.sorted(by: { $0.checkpoint.size < $1.checkpoint.size }) {
                if let problem = unsigned[path] {
                    report.fail("checkpoint '\(path)': \(problem)",
                                help: "pass the verifier key of the key that signed the checkpoints (--key); a checkpoint without its valid signature proves nothing")
                }
                if checkpoint.size > log.size {
                    report.fail("checkpoint '\(path)': the log has \(log.size) entries, fewer than the checkpoint's \(checkpoint.size): entries \(log.size + 1)–\(checkpoint.size) were removed, or the log was rewritten", help: tamperHelp)
                    firstDiffering = firstDiffering ?? (checkpoint.size, path)
                } else if log.rootsAt[checkpoint.size] != checkpoint.rootHash {
                    report.fail("checkpoint '\(path)': the log's first \(checkpoint.size) entries do not have the checkpoint's root", help: tamperHelp)
                    firstDiffering = firstDiffering ?? (checkpoint.size, path)
                } else {
                    if firstDiffering == nil { lastMatching = checkpoint.size }
                    if unsigned[path] == nil {
                        report.oks.append("ok: checkpoint '\(path)' (size \(checkpoint.size)\(verifier.map { ", signed by \($0.name)" } ?? "")) matches the log")
                    }
                }
            }
            if let firstDiffering {
                report.problems.append("first differing size: \(firstDiffering.size) (checkpoint '\(firstDiffering.path)'); the log still matches at size \(lastMatching): the change is in entries \(lastMatching + 1)–\(firstDiffering.size)")
            }
        }
    }
}
