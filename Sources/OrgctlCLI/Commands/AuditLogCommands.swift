import Audit
import Foundation
import StateStore

/// `orgctl audit checkpoint | keygen | prove | consistency` and the checkpoint checks of
/// `audit verify`: the RFC 9162 tree over the audit entries (docs/audit-chain.md section 7).
/// Parsing and printing only; the tree math is in Audit, the stored tree in StateStore.
enum AuditLogCommands {
    static let origin = OptionSpec.option(
        "origin", valueName: "origin", help: "The log's name on the first line of checkpoints.",
        default: "orgctl/<database id>", env: "ORGCTL_AUDIT_ORIGIN")
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
            arguments: [ArgumentSpec("seq", help: "The entry's sequence number (1 is the first entry).")],
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
        .option("key", valueName: "file", help: "The verifier key file (<name>+<id>+<key>); every --checkpoint must carry its valid signature."),
        origin,
    ]

    // MARK: Shared

    static func origin(_ command: ParsedCommand, _ context: CommandContext, store: SQLiteStateStore) -> String {
        if let origin = command.value("origin") { return origin }
        if let origin = context.environment["ORGCTL_AUDIT_ORIGIN"], !origin.isEmpty { return origin }
        return "orgctl/\(store.databaseID)"
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

    static func verifier(_ path: String) throws -> NoteVerifier {
        do {
            return try NoteVerifier(keyString: try readFile(path, what: "the verifier key file"))
        } catch let error as LogFormatError {
            throw CommandFailure(message: "'\(path)' is not a verifier key: \(error.message)",
                                 help: "pass the .pub file written by 'orgctl audit keygen NAME' (<name>+<id>+<key>)")
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
    static func openTree(_ command: ParsedCommand, _ context: CommandContext) throws -> SQLiteStateStore {
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

    /// The formatted checkpoint of the tree `reader` describes.
    static func checkpointText(_ reader: MerkleTreeReader, origin: String, signer: NoteSigner?) throws -> String {
        let checkpoint = Checkpoint(origin: origin, size: reader.size, rootHash: try reader.root(size: reader.size))
        return try CheckpointFile.format(checkpoint, signer: signer)
    }

    /// The checkpoint of the log as it is now, for `apply --checkpoint-out`.
    static func currentCheckpoint(store: SQLiteStateStore, origin: String, signer: NoteSigner?) throws -> String {
        try call {
            try store.withAuditTree { reader in try checkpointText(reader, origin: origin, signer: signer) }
        }
    }

    // MARK: Commands

    static func checkpoint(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let signer = try signer(command.value("key"))
        let store = try openTree(command, context)
        context.console.out(try currentCheckpoint(store: store, origin: origin(command, context, store: store), signer: signer))
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
        try write(signer.keyString + "\n", to: path, mode: 0o600)
        try write(signer.verifier.keyString + "\n", to: path + ".pub", mode: 0o644)
        context.console.print(signer.verifier.keyString)
        context.console.info("wrote the private key to '\(path)' (keep it secret) and the verifier key to '\(path).pub'")
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
        let origin = origin(command, context, store: store)
        let output = try call {
            try store.withAuditTree { reader -> String? in
                guard sequence <= reader.size else { return nil }
                let proof = try reader.inclusionProof(index: sequence - 1, treeSize: reader.size)
                let checkpoint = try checkpointText(reader, origin: origin, signer: signer)
                return InclusionProofFile(index: sequence - 1, proof: proof, checkpoint: checkpoint).formatted
            }
        }
        guard let output else {
            throw CommandFailure(message: "the audit log has no entry \(sequence)", help: "list entries with 'orgctl audit log'")
        }
        context.console.out(output)
        return ExitCode.success
    }

    static func consistency(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let path = command.argument("old-checkpoint") ?? ""
        let old = try checkpointFile(path).checkpoint
        let signer = try signer(command.value("key"))
        let store = try openTree(command, context)
        let origin = origin(command, context, store: store)
        guard old.origin == origin else {
            throw CommandFailure(message: "'\(path)' is a checkpoint of log '\(old.origin)', not of '\(origin)'",
                                 help: "pass --origin '\(old.origin)' if that is this database's log")
        }
        enum Outcome { case proof(String), truncated(Int64), rewritten(Int64) }
        let outcome = try call {
            try store.withAuditTree { reader -> Outcome in
                guard old.size <= reader.size else { return .truncated(reader.size) }
                guard try reader.root(size: old.size) == old.rootHash else { return .rewritten(reader.size) }
                let proof = try reader.consistencyProof(oldSize: old.size, newSize: reader.size)
                return .proof(ConsistencyProofFile(oldSize: old.size, proof: proof,
                                                   checkpoint: try checkpointText(reader, origin: origin, signer: signer)).formatted)
            }
        }
        switch outcome {
        case .proof(let text):
            context.console.out(text)
            return ExitCode.success
        case .truncated(let size):
            throw CommandFailure(
                message: "the audit log has \(size) entries, fewer than the \(old.size) of checkpoint '\(path)': entries \(size + 1)–\(old.size) were removed, or the log was rewritten",
                help: "restore the database from a backup taken after that checkpoint and investigate who changed it")
        case .rewritten:
            throw CommandFailure(
                message: "the audit log does not extend checkpoint '\(path)': its first \(old.size) entries no longer have the checkpoint's root, so at least one of entries 1–\(old.size) was changed",
                help: "run 'orgctl audit verify' with each checkpoint you kept to narrow down the first one that differs")
        }
    }

    /// The `--checkpoint` checks of `audit verify`; prints one line per checkpoint and returns whether all passed.
    static func verifyCheckpoints(_ paths: [String], _ command: ParsedCommand, _ context: CommandContext, store: SQLiteStateStore,
                                  verification: (Set<Int64>) throws -> AuditLogVerification) throws -> Bool
    {
        let verifier = try command.value("key").map(verifier)
        let expectedOrigin = origin(command, context, store: store)
        var files: [(path: String, file: CheckpointFile)] = []
        for path in paths { files.append((path, try checkpointFile(path))) }
        let console = context.console
        var ok = true
        for (path, file) in files {
            if file.checkpoint.origin != expectedOrigin {
                console.print("checkpoint '\(path)': it is a checkpoint of log '\(file.checkpoint.origin)', not of '\(expectedOrigin)'")
                ok = false
            }
            if let verifier {
                do {
                    guard let note = file.note else { throw LogFormatError("the checkpoint is not signed") }
                    try note.verify(with: verifier)
                } catch let error as LogFormatError {
                    console.print("checkpoint '\(path)': \(error.message)")
                    ok = false
                }
            }
        }
        if verifier == nil { console.info("note: checkpoint signatures were not checked (pass --key with the verifier key)") }
        let result = try verification(Set(files.map(\.file.checkpoint.size)))
        // Smallest sizes first: the first checkpoint the log no longer matches bounds where it changed.
        var lastMatching: Int64 = 0
        var firstDiffering: (size: Int64, path: String)?
        for (path, file) in files.sorted(by: { $0.file.checkpoint.size < $1.file.checkpoint.size }) {
            let checkpoint = file.checkpoint
            if checkpoint.size > result.size {
                console.print("checkpoint '\(path)': the log has \(result.size) entries, fewer than the checkpoint's \(checkpoint.size): entries \(result.size + 1)–\(checkpoint.size) were removed, or the log was rewritten")
                firstDiffering = firstDiffering ?? (checkpoint.size, path)
                ok = false
            } else if result.rootsAt[checkpoint.size] != checkpoint.rootHash {
                console.print("checkpoint '\(path)': the log's first \(checkpoint.size) entries do not have the checkpoint's root")
                firstDiffering = firstDiffering ?? (checkpoint.size, path)
                ok = false
            } else {
                if firstDiffering == nil { lastMatching = checkpoint.size }
                console.print("ok: checkpoint '\(path)' (size \(checkpoint.size)\(verifier.map { ", signed by \($0.name)" } ?? "")) matches the log")
            }
        }
        if let firstDiffering {
            console.print("first differing size: \(firstDiffering.size) (checkpoint '\(firstDiffering.path)'); the log still matches at size \(lastMatching): the change is in entries \(lastMatching + 1)–\(firstDiffering.size)")
        }
        return ok
    }
}
