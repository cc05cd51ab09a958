import Audit
import Crypto
import Foundation
import StateStore

/// `orgctl state migrate --to STATE`: moves a state between backends (or to a new file or schema).
enum StateMigrateCommand {
    static let spec = CommandSpec(
        name: "migrate",
        abstract: "Copy the state into a new, empty state database of either backend.",
        discussion: """
            Copies everything the state named by --state holds into the empty state named by --to (a SQLite \
            file, or a postgres:// URI with --to-schema): the platform tables row by row with their row ids, \
            what orgctl applied to each row, the audit chain and its Merkle tree byte for byte, and the \
            database id, the audit log's origin and the state key's check value. Checkpoints signed before the \
            move verify against the new state ('orgctl audit verify --checkpoint'), and a plan against it shows \
            no changes. The source is only read; its audit chain and tree are verified first, and the copy \
            is verified against them after. A --to that holds any row is refused, and nothing is written.
            Exit status: 0 success, 1 error, 64 usage error.
            """,
        options: [
            .option("to", valueName: "path|uri", help: "The new state: a SQLite file, or a postgres:// (postgresql://) URI."),
            .option("to-schema", valueName: "name", help: "The PostgreSQL schema of --to.", default: StateLocation.defaultSchema),
        ] + StateAccess.readOptions)

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        guard let toValue = command.value("to"), !toValue.isEmpty else {
            throw CommandFailure(message: "state migrate needs --to: the new state to copy into", help: "e.g. orgctl state migrate --to postgresql://host/db", exitCode: ExitCode.usage)
        }
        let key = try StateAccess.requiredKey(command, context)
        let from = StateAccess.location(command, context)
        let to = StateLocation(toValue, schema: command.value("to-schema") ?? StateLocation.defaultSchema)
        // Ignored, it would leave the user believing the copy went to that schema.
        if let schema = command.value("to-schema"), case .sqlite(let path) = to {
            throw CommandFailure(message: "--to-schema '\(TerminalText.escape(schema))' names a PostgreSQL schema, but --to '\(TerminalText.escape(path))' is a SQLite file",
                                 help: "drop --to-schema, or give --to a postgres:// (postgresql://) URI", exitCode: ExitCode.usage)
        }
        guard from != to else {
            throw CommandFailure(message: "--to names the state that --state names (\(TerminalText.escape(to.display)))",
                                 help: "give --to a new SQLite file or PostgreSQL schema")
        }
        guard let source = try StateAccess.open(command, context, access: .readOnly, key: key) else {
            throw CommandFailure(message: "the state database '\(TerminalText.escape(from.display))' does not exist; there is nothing to migrate",
                                 help: "pass the state to copy with --state (or ORGCTL_STATE)")
        }
        do {
            if try source.hasOlderSchema {
                throw CommandFailure(message: "'\(TerminalText.escape(from.display))' has an older schema (\(try source.schemaVersion)); migrate copies the current one",
                                     help: "run 'orgctl apply' against it once (it migrates the database), then migrate")
            }
            let before = try source.verifyAuditLog(rootsAt: [])
            if let broken = before.firstBreak {
                throw CommandFailure(message: "the audit chain of '\(TerminalText.escape(from.display))' is broken at entry \(broken.sequence); it is not copied",
                                     help: "run 'orgctl audit verify' and restore the database from a backup")
            }
            if let mismatch = before.treeMismatch {
                throw CommandFailure(message: mismatch.description, help: AuditTreeMismatch.help)
            }
            let existed = to.exists
            guard let target = try StateStores.open(to, access: .readWrite, lockTimeoutMilliseconds: StateAccess.lockTimeout(command), key: key,
                                                    applicationName: StateAccess.applicationName(command, context)) else {
                throw CommandFailure(message: "cannot open '\(TerminalText.escape(to.display))'", help: "check --to")
            }
            let summary: StateCopy.Summary
            do {
                summary = try StateCopy.copy(from: source, to: target)
            } catch {
                if !existed, case .sqlite(let path) = to { removeDatabaseFiles(path) }
                throw error
            }
            let after = try target.verifyAuditLog(rootsAt: [])
            guard after.firstBreak == nil, after.treeMismatch == nil, after.root == before.root, after.size == before.size else {
                throw CommandFailure(message: "the copy in '\(TerminalText.escape(to.display))' does not verify against the source's audit log",
                                     help: "report this as a bug; the source was not changed")
            }
            context.console.info("Copied \(summary.rows) rows, \(summary.auditEntries) audit entries among them, from \(TerminalText.escape(from.display)) to \(TerminalText.escape(to.display)) (database \(source.databaseID)).")
            context.console.info("The audit log verifies on both: \(after.size) entries, root \(Base64.encode(after.root)).")
            return ExitCode.success
        } catch let error as StateError {
            throw CommandFailure(message: error.message, help: error.help)
        }
    }

    /// A SQLite file this command created and could not fill.
    private static func removeDatabaseFiles(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
}
