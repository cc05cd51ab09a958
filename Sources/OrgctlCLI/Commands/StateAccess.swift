import Foundation
import Reconciler
import Spec
import StateStore

/// Options shared by the commands that read or write the state database, and what they do.
enum StateAccess {
    static let stateOption = OptionSpec.option("state", valueName: "path", help: "The state database.", default: "orgctl.db", env: "ORGCTL_STATE")
    static let keyFileOption = OptionSpec.option("state-key-file", valueName: "file",
                                                 help: "File holding the 32-byte state key (base64 or hex) that encrypts secrets at rest.",
                                                 env: "ORGCTL_STATE_KEY (the key itself)")
    static let lockTimeoutOption = OptionSpec.option("lock-timeout", valueName: "duration",
                                                     help: "How long to wait for another apply's write lock.", default: "10s",
                                                     type: .duration(maxSeconds: 3600))
    /// For commands that plan: they compare and encrypt secrets with the state key.
    static let options: [OptionSpec] = [stateOption, keyFileOption, lockTimeoutOption]
    /// For commands that only read what is stored (the audit log, export): no secret is compared or
    /// decrypted, and no key is needed; a key that is given must be the database's.
    static let readOptions: [OptionSpec] = [stateOption, keyFileOption, lockTimeoutOption]

    static func path(_ command: ParsedCommand, _ context: CommandContext) -> String {
        command.value("state") ?? context.environment["ORGCTL_STATE"].flatMap { $0.isEmpty ? nil : $0 } ?? "orgctl.db"
    }

    /// In milliseconds; the parser has checked the value (at most an hour).
    static func lockTimeout(_ command: ParsedCommand) -> Int32 {
        Int32((command.duration("lock-timeout")?.seconds ?? 10) * 1000)
    }

    /// The state key, from --state-key-file or ORGCTL_STATE_KEY; nil when neither is given.
    static func key(_ command: ParsedCommand, _ context: CommandContext) throws -> StateKey? {
        let text: String
        let origin: String
        if let file = command.value("state-key-file") {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CommandFailure(message: "cannot read the state key file '\(file)'",
                                     help: "check the path and its permissions (it should be readable only by you: chmod 600)")
            }
            text = String(decoding: data, as: UTF8.self)
            origin = "the state key file '\(file)'"
            // As ssh does for a private key: say so when others may read it (a warning, also with --quiet).
            var status = stat()
            if stat(file, &status) == 0, status.st_mode & 0o077 != 0 {
                context.console.printError("warning: the state key file '\(file)' can be read by others (mode \(String(status.st_mode & 0o777, radix: 8))): anyone who reads it can decrypt the state's secrets and forge saved plans and drift marks\nhelp: chmod 600 '\(file)'")
            }
        } else if let value = context.environment["ORGCTL_STATE_KEY"], !value.isEmpty {
            text = value
            origin = "ORGCTL_STATE_KEY"
        } else {
            return nil
        }
        do {
            return try StateKey(encoded: text)
        } catch {
            throw CommandFailure(message: "\(origin) is not a usable key: \(error.description)",
                                 help: "generate one with: openssl rand -base64 32")
        }
    }

    /// The state key, which plan, drift and apply need whenever there is a state to compare or write:
    /// row digests are keyed with it (and secrets encrypted).
    static func requiredKey(_ command: ParsedCommand, _ context: CommandContext) throws -> StateKey {
        guard let key = try key(command, context) else {
            throw CommandFailure(message: "no state key was given: orgctl keys the state database's drift marks (and encrypts secrets) with it",
                                 help: "set ORGCTL_STATE_KEY to the database's key, or pass --state-key-file; for a new database generate one with: openssl rand -base64 32 (and keep it)")
        }
        return key
    }

    static func open(_ command: ParsedCommand, _ context: CommandContext, access: SQLiteStateStore.Access, key: StateKey?,
                     readsOlderSchema: Bool = false, adopt: Bool = false) throws -> SQLiteStateStore?
    {
        let path = path(command, context)
        do {
            return try SQLiteStateStore.open(path: path, access: access, lockTimeoutMilliseconds: lockTimeout(command), key: key,
                                             readsOlderSchema: readsOlderSchema, adopt: adopt)
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
    }

    /// True when the state database exists and is of an older schema: apply then plans from it
    /// read-only (read as migrated) and migrates it only once the plan is confirmed. Anything
    /// else (no file, a newer or foreign database) is for the normal open to report.
    static func hasOlderSchema(_ command: ParsedCommand, _ context: CommandContext) -> Bool {
        guard let store = try? SQLiteStateStore.open(path: path(command, context), access: .readOnly, lockTimeoutMilliseconds: lockTimeout(command),
                                                   key: nil, readsOlderSchema: true)
        else { return false }
        return (try? store.hasOlderSchema) ?? false
    }

    static func read(_ store: SQLiteStateStore?) throws -> StoredState {
        guard let store else { return StoredState(resources: [], auditHead: AuditHead(sequence: 0, hash: String(repeating: "0", count: 64)), databaseID: "") }
        do {
            return try store.read()
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
    }
}

/// Resolves `{env: …}` and `{file: …}` secret references at plan/apply time.
struct SecretResolver {
    var environment: [String: String]
    private var cache: [SecretSource: [UInt8]] = [:]

    init(environment: [String: String]) {
        self.environment = environment
    }

    /// The value; a missing variable or file is an error naming the reference (never a value).
    mutating func value(_ source: SecretSource) throws -> [UInt8] {
        if let known = cache[source] { return known }
        let value: [UInt8]
        switch source {
        case .environment(let name):
            guard let text = environment[name], !text.isEmpty else {
                throw CommandFailure(message: "secret {env: \(name)} is not set: the environment variable \(name) is missing or empty",
                                     help: "export \(name) before running orgctl (in CI, map it from the pipeline's secret store)")
            }
            value = Array(text.utf8)
        case .file(let written, let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CommandFailure(message: "secret {file: \(written)} cannot be read ('\(path)')",
                                     help: "create the file (one value; a trailing newline is ignored) or fix the path")
            }
            var bytes = [UInt8](data)
            if bytes.last == 0x0A { bytes.removeLast() }
            if bytes.last == 0x0D { bytes.removeLast() }
            guard !bytes.isEmpty else {
                throw CommandFailure(message: "secret {file: \(written)} is empty", help: "write the secret value into '\(path)'")
            }
            value = bytes
        }
        cache[source] = value
        return value
    }
}

/// Who and what an apply records in the audit chain.
enum Provenance {
    /// The environment variables that name the actor when `--actor` is not given, in the order they are tried
    /// (`apply --help` lists them from here).
    static let actorVariables = ["ORGCTL_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "USER"]

    static func actor(_ command: ParsedCommand, _ environment: [String: String]) -> String {
        if let actor = command.value("actor") { return actor }
        for name in actorVariables {
            if let value = environment[name], !value.isEmpty { return value }
        }
        return "unknown"
    }

    /// `--source`, else `git:<commit>` of the configuration folder when it is in a git work tree.
    static func source(_ command: ParsedCommand, directory: String) -> String {
        if let source = command.value("source") { return source }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", directory, "rev-parse", "HEAD"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let commit = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if process.terminationStatus == 0, commit.count == 40 { return "git:\(commit)" }
        } catch {}
        return "local"
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}
