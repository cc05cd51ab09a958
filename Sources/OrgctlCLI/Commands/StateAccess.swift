import Foundation
import Reconciler
import Spec
import StateStore

/// Options shared by the commands that read or write the state database, and what they do.
enum StateAccess {
    static let stateOption = OptionSpec.option("state", valueName: "path|uri",
                                               help: "The state database: a SQLite file, or a postgres:// (postgresql://) URI.", default: "orgctl.db", env: "ORGCTL_STATE")
    static let schemaOption = OptionSpec.option("state-schema", valueName: "name",
                                                help: "The PostgreSQL schema holding orgctl's tables (with a postgres:// --state).", default: StateLocation.defaultSchema,
                                                env: "ORGCTL_STATE_SCHEMA")
    static let keyFileOption = OptionSpec.option("state-key-file", valueName: "file",
                                                 help: "File holding the 32-byte state key (base64 or hex) that encrypts secrets at rest.",
                                                 env: "ORGCTL_STATE_KEY (the key itself)")
    static let lockTimeoutOption = OptionSpec.option("lock-timeout", valueName: "duration",
                                                     help: "How long to wait for another apply's write lock.", default: "10s",
                                                     type: .duration(maxSeconds: 3600))
    /// For commands that plan: they compare and encrypt secrets with the state key.
    static let options: [OptionSpec] = [stateOption, schemaOption, keyFileOption, lockTimeoutOption]
    /// For commands that only read what is stored (the audit log, export): no secret is compared or
    /// decrypted, and no key is needed; a key that is given must be the database's.
    static let readOptions: [OptionSpec] = [stateOption, schemaOption, keyFileOption, lockTimeoutOption]

    /// `--state` as given (a URI may hold a password: open with it, never print it; see ``location(_:_:)``).
    static func path(_ command: ParsedCommand, _ context: CommandContext) -> String {
        command.value("state") ?? context.environment["ORGCTL_STATE"].flatMap { $0.isEmpty ? nil : $0 } ?? "orgctl.db"
    }

    static func location(_ command: ParsedCommand, _ context: CommandContext) -> StateLocation {
        let schema = command.value("state-schema") ?? context.environment["ORGCTL_STATE_SCHEMA"].flatMap { $0.isEmpty ? nil : $0 } ?? StateLocation.defaultSchema
        return StateLocation(path(command, context), schema: schema)
    }

    /// How this process shows to other sessions of a PostgreSQL server (`application_name`, at most
    /// 63 bytes): an apply that waits for the lock names its holder with it. The command, the actor
    /// and the host: `orgctl apply by alice on runner-7`.
    static func applicationName(_ command: ParsedCommand, _ context: CommandContext) -> String {
        // Only apply declares --actor (asking for an undeclared option traps).
        let actor = command.path == ["apply"] ? Provenance.actor(command, context.environment) : Provenance.actor(fromEnvironment: context.environment)
        var host = [CChar](repeating: 0, count: 256)
        let hostName = gethostname(&host, host.count - 1) == 0
            ? String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "unknown host"
        return "orgctl \(command.path.joined(separator: " ")) by \(actor) on \(hostName)"
    }

    /// The state for messages: a path, or a URI without its password.
    static func display(_ command: ParsedCommand, _ context: CommandContext) -> String {
        location(command, context).display
    }

    /// In milliseconds; the parser has checked the value (at most an hour).
    static func lockTimeout(_ command: ParsedCommand) -> Int32 {
        Int32((command.duration("lock-timeout")?.seconds ?? 10) * 1000)
    }

    /// The state key, from --state-key-file or ORGCTL_STATE_KEY; nil when neither is given.
    static func key(_ command: ParsedCommand, _ context: CommandContext) throws -> StateKey? {
        if let resolved = context.stateKey.resolved { return resolved }
        let key = try readKey(command, context)
        context.stateKey.resolved = .some(key)
        return key
    }

    private static func readKey(_ command: ParsedCommand, _ context: CommandContext) throws -> StateKey? {
        try readKey(file: command.value("state-key-file"), variable: "ORGCTL_STATE_KEY", named: "state key", context)
    }

    /// A key from `file`, else from the environment variable `variable`; nil when neither is given.
    /// `named` says which key in messages ("state key", "new state key").
    static func readKey(file: String?, variable: String, named: String, _ context: CommandContext) throws -> StateKey? {
        let text: String
        let origin: String
        if let file {
            let data: Data
            do {
                data = try KeyFile.read(file, named: named)
            } catch {
                throw CommandFailure(message: error.message, help: error.help)
            }
            text = String(decoding: data, as: UTF8.self)
            origin = "the \(named) file '\(file)'"
            // As ssh does for a private key: say so when others may read it (a warning, also with --quiet).
            var status = stat()
            if stat(file, &status) == 0, status.st_mode & 0o077 != 0 {
                context.console.printError("warning: the \(named) file '\(file)' can be read by others (mode \(String(status.st_mode & 0o777, radix: 8))): anyone who reads it can decrypt the state's secrets and forge saved plans and drift marks\nhelp: chmod 600 '\(file)'")
            }
        } else if let value = context.environment[variable], !value.isEmpty {
            text = value
            origin = variable
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

    static func open(_ command: ParsedCommand, _ context: CommandContext, access: StateAccessMode, key: StateKey?,
                     readsOlderSchema: Bool = false, adopt: Bool = false, createsMissing: Bool = true, defersMigration: Bool = false) throws -> (any StateStore)?
    {
        do {
            return try StateStores.open(location(command, context), access: access, lockTimeoutMilliseconds: lockTimeout(command), key: key,
                                        readsOlderSchema: readsOlderSchema, adopt: adopt, applicationName: applicationName(command, context),
                                        createsMissing: createsMissing, defersMigration: defersMigration)
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
    }

    /// True when the state database exists and is of an older schema: apply then plans from it
    /// read-only (read as migrated) and migrates it only once the plan is confirmed. Anything
    /// else (no file, a newer or foreign database) is for the normal open to report.
    static func hasOlderSchema(_ command: ParsedCommand, _ context: CommandContext) -> Bool {
        guard let store = try? StateStores.open(location(command, context), access: .readOnly, lockTimeoutMilliseconds: lockTimeout(command),
                                                key: nil, readsOlderSchema: true, applicationName: applicationName(command, context))
        else { return false }
        return (try? store.hasOlderSchema) ?? false
    }

    static func read(_ store: (any StateStore)?) throws -> StoredState {
        guard let store else { return StoredState(resources: [], auditHead: AuditHead(sequence: 0, hash: String(repeating: "0", count: 64)), databaseID: "") }
        do {
            return try store.read()
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
    }
}

extension StateAccess {
    /// Files a `{file: …}` secret may never read, since its value is sent to a configured URL: the
    /// state database, the state key file and the checkpoint signing key.
    static func protectedFiles(_ command: ParsedCommand, _ context: CommandContext) -> [String?] {
        // Only apply declares --checkpoint-key (plan and drift share this path; asking for an undeclared option traps).
        [location(command, context).filePath, command.value("state-key-file"), command.path == ["apply"] ? command.value("checkpoint-key") : nil]
    }
}

/// Resolves `{env: …}` and `{file: …}` secret references at plan/apply time.
///
/// Every reference is tried before anything is reported, so one run names every missing secret.
/// The fixed rules of ``SecretRules`` are applied again here: a saved plan names its secret
/// sources too, and a value read here is sent to a URL the configuration names.
struct SecretResolver {
    var environment: [String: String]
    /// Files never read as secrets, whatever the reference says (``StateAccess/protectedFiles(_:_:)``).
    var protectedFiles: [String]
    private var cache: [SecretSource: [UInt8]] = [:]
    private var problems: [SecretSource: String] = [:]

    init(environment: [String: String], protectedFiles: [String?] = []) {
        self.environment = environment
        self.protectedFiles = protectedFiles.compactMap { $0.flatMap(Self.realPath) }
    }

    /// The value, or an empty value when it cannot be had (recorded for ``checkComplete()``; never a value in a message).
    mutating func value(_ source: SecretSource) -> [UInt8] {
        if let known = cache[source] { return known }
        if problems[source] != nil { return [] }
        switch read(source) {
        case .success(let value):
            cache[source] = value
            return value
        case .failure(let problem):
            problems[source] = problem.message
            return []
        }
    }

    /// Throws one failure naming every reference that could not be resolved.
    func checkComplete() throws {
        guard !problems.isEmpty else { return }
        let sorted = problems.sorted { $0.key.description < $1.key.description }
        if sorted.count == 1 {
            throw CommandFailure(message: "secret \(sorted[0].key) \(sorted[0].value)", help: Self.help(sorted[0].key))
        }
        throw CommandFailure(
            message: "\(sorted.count) secrets cannot be resolved",
            help: "export the variables and create the files before running orgctl (in CI, map them from the pipeline's secret store)",
            details: sorted.map { "\($0.key) \($0.value)" })
    }

    private static func help(_ source: SecretSource) -> String {
        switch source {
        case .environment(let name) where SecretRules.reservedReason(environment: name) != nil:
            "reference a variable named for the tenant; the runner's own credentials are never sent to a configured URL"
        case .environment(let name): "export \(name) before running orgctl (in CI, map it from the pipeline's secret store)"
        case .file(_, let path): "create '\(path)' (one value; a trailing newline is ignored) or fix the path"
        }
    }

    private struct Problem: Error { var message: String }

    private func read(_ source: SecretSource) -> Result<[UInt8], Problem> {
        switch source {
        case .environment(let name):
            if let reason = SecretRules.reservedReason(environment: name) { return .failure(Problem(message: "is refused: it \(reason)")) }
            guard let text = environment[name], !text.isEmpty else {
                return .failure(Problem(message: "is not set: the environment variable \(name) is missing or empty"))
            }
            return .success(Array(text.utf8))
        case .file(_, let path):
            if let real = Self.realPath(path), protectedFiles.contains(real) {
                return .failure(Problem(message: "is refused: '\(path)' is the state database, the state key file or the checkpoint signing key"))
            }
            var bytes: [UInt8]
            do {
                // Never through a final link, never a FIFO or device (which could block), at most 1 MiB.
                bytes = try LocalConfigurationFileSystem().contents(of: path, limit: 1 << 20)
            } catch {
                return .failure(Problem(message: "cannot be read ('\(path)': \(error.reason))"))
            }
            if bytes.last == 0x0A { bytes.removeLast() }
            if bytes.last == 0x0D { bytes.removeLast() }
            guard !bytes.isEmpty else { return .failure(Problem(message: "is empty: write the secret value into '\(path)'")) }
            return .success(bytes)
        }
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// Who and what an apply records in the audit chain.
enum Provenance {
    /// The environment variables that name the actor when `--actor` is not given, in the order they are tried
    /// (`apply --help` lists them from here).
    static let actorVariables = ["ORGCTL_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "USER", "LOGNAME"]

    /// `--actor`, else the first CI or shell variable that names someone, else the account the
    /// process runs as (a root shell without `USER` is still `root`, not `unknown`).
    static func actor(_ command: ParsedCommand, _ environment: [String: String]) -> String {
        command.value("actor") ?? actor(fromEnvironment: environment)
    }

    /// The actor named by the environment (or the account), for commands without `--actor`.
    static func actor(fromEnvironment environment: [String: String]) -> String {
        for name in actorVariables {
            if let value = environment[name], !value.isEmpty { return value }
        }
        return accountName()
    }

    /// The name of the account the process runs as (from the password database), else `uid:N`.
    static func accountName() -> String {
        let uid = geteuid()
        if let entry = getpwuid(uid), let name = entry.pointee.pw_name {
            let text = String(cString: name)
            if !text.isEmpty { return text }
        }
        if let login = getlogin() {
            let text = String(cString: login)
            if !text.isEmpty { return text }
        }
        return "uid:\(uid)"
    }

    /// `--source`, else `git:<commit>` of the work tree that holds the configuration folder, with
    /// `+dirty` when the folder differs from that commit; else `local`.
    ///
    /// git is never left to discover the repository itself: a configuration folder can hold the
    /// files of a bare repository (`HEAD`, `objects/`, `refs/`), which git would take for the
    /// repository and so report a commit of the author's choosing. orgctl looks for a `.git` entry
    /// (which no checkout can contain) from the folder upwards and names it with `--git-dir`.
    static func source(_ command: ParsedCommand, directory: String) -> String {
        if let source = command.value("source") { return source }
        guard let (gitDir, workTree, folder) = repository(containing: directory) else { return "local" }
        let git = ["--git-dir=\(gitDir)", "--work-tree=\(workTree)", "-c", "core.fsmonitor=false", "-c", "safe.bareRepository=explicit"]
        guard let head = run(git + ["rev-parse", "--verify", "HEAD^{commit}"]),
            case let commit = head.trimmingCharacters(in: .whitespacesAndNewlines), commit.count == 40,
            commit.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
        else { return "local" }
        // Changes to tracked files, new files, and ignored YAML files (orgctl reads those too) make it dirty.
        // `traditional` lists each file inside an ignored folder (`matching` would list only `config/`).
        guard let status = run(git + ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=traditional", "--", folder])
        else { return "git:\(commit)+dirty" }
        let dirty = status.split(separator: "\0").contains { entry in
            guard entry.hasPrefix("!! ") else { return true }
            return entry.hasSuffix(".yaml") || entry.hasSuffix(".yml")
        }
        return "git:\(commit)\(dirty ? "+dirty" : "")"
    }

    /// The `.git` entry (folder, or a file naming one, as worktrees and submodules have) nearest
    /// above `directory`, the work tree it belongs to, and `directory`'s real path.
    static func repository(containing directory: String) -> (gitDir: String, workTree: String, path: String)? {
        guard let resolved = realpath(directory, nil) else { return nil }
        let path = String(cString: resolved)
        free(resolved)
        var folder = path
        var info = stat()
        if stat(folder, &info) == 0, info.st_mode & S_IFMT != S_IFDIR { folder = (folder as NSString).deletingLastPathComponent }
        while true {
            let candidate = folder == "/" ? "/.git" : folder + "/.git"
            if lstat(candidate, &info) == 0, [S_IFDIR, S_IFREG].contains(info.st_mode & S_IFMT) { return (candidate, folder, path) }
            guard folder != "/", !folder.isEmpty else { return nil }
            folder = (folder as NSString).deletingLastPathComponent
        }
    }

    /// git's standard output, or nil when it cannot run or fails. No repository discovery, no
    /// optional locks (status would otherwise refresh the index), no prompts.
    private static func run(_ arguments: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git"] + arguments
        var environment = ProcessInfo.processInfo.environment
        for name in environment.keys where name.hasPrefix("GIT_") { environment[name] = nil }
        environment["GIT_OPTIONAL_LOCKS"] = "0"
        environment["GIT_TERMINAL_PROMPT"] = "0"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return process.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
        } catch {
            return nil
        }
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}
