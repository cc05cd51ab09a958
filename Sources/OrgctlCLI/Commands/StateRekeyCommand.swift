import Foundation
import StateStore

/// `orgctl state rekey`: replaces the state key (docs/cli.md, README "Rotating the state key").
enum StateRekeyCommand {
    static let newKeyVariable = "ORGCTL_NEW_STATE_KEY"

    static let spec = CommandSpec(
        name: "rekey",
        abstract: "Re-encrypt the state under a new state key, in one transaction.",
        discussion: """
            Replaces the state key: the current key (ORGCTL_STATE_KEY or --state-key-file) opens every stored \
            secret, which is sealed again under the new key (--new-key-file, or ORGCTL_NEW_STATE_KEY; never on \
            the command line); every keyed fingerprint and row digest is recomputed under the new key, so a \
            plan with the new key shows what it showed before (a row changed outside orgctl is still \
            drifted); the database then records the new key's check value and id, and the audit log one \
            entry (action 'rekey', address 'state/key') with the old and the new key id. All of it is one \
            transaction under the apply lock: killed at any moment, the database opens either with the old \
            key or with the new one, never both and never neither. Afterwards the old key is refused like any \
            other. Refused, with nothing written: a new key equal to the current one or plainly not random \
            (printable text, few distinct bytes), a malformed key, another current key than the database's, \
            a secret the current key does not open, a broken audit chain. --dry-run does all the work, \
            checks that every secret opens, and rolls back. Saved plans made before a rekey are refused \
            after it (their MAC is under the old key): plan again.
            Exit status: 0 success, 1 error (nothing was written), 64 usage error (no new key given).
            """,
        options: [
            .option("new-key-file", valueName: "file", help: "File holding the new 32-byte state key (base64 or hex).",
                    env: "\(newKeyVariable) (the key itself)"),
            .flag("dry-run", help: "Check that every secret opens and count what would be re-encrypted; write nothing."),
        ] + StateAccess.readOptions)

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let console = context.console
        guard let newKey = try StateAccess.readKey(file: command.value("new-key-file"), variable: newKeyVariable, named: "new state key", context) else {
            throw CommandFailure(message: "state rekey needs the new key: pass --new-key-file FILE or set \(newKeyVariable)",
                                 help: "generate one with: (umask 077 && openssl rand -base64 32 > new.key); the current key stays in ORGCTL_STATE_KEY or --state-key-file",
                                 exitCode: ExitCode.usage)
        }
        let key = try StateAccess.requiredKey(command, context)
        guard newKey.checkValue != key.checkValue else {
            throw CommandFailure(message: "the new state key is the current one (key id \(key.keyID)); nothing was re-encrypted",
                                 help: "generate a new key with: openssl rand -base64 32")
        }
        guard newKey.looksRandom else {
            throw CommandFailure(message: "the new state key is not random bytes (it is printable text, or has fewer than 16 distinct bytes); nothing was re-encrypted",
                                 help: "a key that can be guessed can be tested against any ciphertext: generate one with: openssl rand -base64 32")
        }
        let location = StateAccess.location(command, context)
        let shown = TerminalText.escape(location.display)
        guard location.exists else {
            throw CommandFailure(message: "the state database '\(shown)' does not exist; there is nothing to re-encrypt",
                                 help: "pass the state to rekey with --state (or ORGCTL_STATE)")
        }
        if StateAccess.hasOlderSchema(command, context) {
            throw CommandFailure(message: "'\(shown)' has an older schema; rekey works on the current one",
                                 help: "run 'orgctl apply' against it once with the current key (it migrates the database), then rekey")
        }
        guard let store = try StateAccess.open(command, context, access: .readWrite, key: key) else {
            throw CommandFailure(message: "cannot open '\(shown)'", help: "check --state")
        }
        let dryRun = command.flag("dry-run")
        let progress = console.progress(dryRun ? "checking" : "re-encrypting", unit: "rows")
        let summary: StateRekey.Summary
        do {
            defer { progress?.finish() }
            summary = try StateRekey.rekey(store, to: newKey, actor: Provenance.actor(fromEnvironment: context.environment), source: "orgctl state rekey",
                                           time: Provenance.timestamp(context.now), dryRun: dryRun) { progress?.advance(by: $0) }
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
        let ids = "key id \(summary.oldKeyID) -> \(summary.newKeyID)"
        let counts = "\(summary.secrets) secret\(summary.secrets == 1 ? "" : "s") and \(summary.digests) row digest\(summary.digests == 1 ? "" : "s")"
        if dryRun {
            console.print("Dry run: \(counts) would be re-encrypted (\(ids)); every secret opens with the current key. Nothing was written.")
        } else {
            console.print("Rekey complete: \(counts) re-encrypted (\(ids)), audit entry \(summary.auditSequence ?? 0).")
            console.info("The old key (key id \(summary.oldKeyID)) no longer opens \(shown): give every reader of the state the new key (key id \(summary.newKeyID)).")
        }
        if summary.unverifiable > 0 {
            console.printError("warning: \(summary.unverifiable) record\(summary.unverifiable == 1 ? "" : "s") of orgctl_resources did not match what orgctl applied (edited outside orgctl): \(summary.unverifiable == 1 ? "its row shows" : "their rows show") as drifted under the new key\nhelp: run 'orgctl drift' and apply to repair them")
        }
        return ExitCode.success
    }
}
