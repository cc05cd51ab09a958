import Foundation
import Testing

/// Where the end-to-end tests find the package, the built `orgctl` and the example configuration.
enum Paths {
    /// `Tests/EndToEndTests`, found from this file's path so golden files are re-recorded into the source tree.
    static let testsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let packageRoot = testsFolder.deletingLastPathComponent().deletingLastPathComponent()
    static let cases = testsFolder.appendingPathComponent("Cases")
    /// The tests' own copy of `examples/config`: see ``CommittedExamples``.
    static let examples = CommittedExamples.folder
    static let auditVerifier = packageRoot.appendingPathComponent("tools/verify_audit.py").path
    static let sqlite3 = "/usr/bin/sqlite3"
    static let python3 = "/usr/bin/python3"

    /// The real `orgctl` executable: `ORGCTL_BINARY`, else the one `swift build`/`swift test` put next to
    /// the test bundle, else `.build/debug/orgctl` under the package root.
    static let binary: String? = {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["ORGCTL_BINARY"], !explicit.isEmpty { return explicit }
        var candidates: [URL] = []
        if let first = CommandLine.arguments.first, !first.isEmpty {
            var runner = URL(fileURLWithPath: first)
            // macOS runs tests from inside an .xctest bundle; Linux runs the .xctest file itself.
            while runner.pathComponents.count > 1, runner.path.contains(".xctest") { runner.deleteLastPathComponent() }
            candidates.append(runner.appendingPathComponent("orgctl"))
            candidates.append(URL(fileURLWithPath: first).deletingLastPathComponent().appendingPathComponent("orgctl"))
        }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("orgctl"))
        candidates.append(packageRoot.appendingPathComponent(".build/debug/orgctl"))
        return candidates.map(\.path).first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static func orgctl() throws -> String {
        try #require(Paths.binary, "the orgctl executable was not found: run 'swift build' first, or set ORGCTL_BINARY to its path")
    }
}

/// `examples/config` as committed at git HEAD, extracted once per test run into a temporary folder: the README's
/// first session edits a copy of the examples, and a user who edits `examples/config` itself (or any uncommitted
/// change to it) must not change what the tests see. Outside a git checkout (a source archive) there is no
/// committed version, and the working tree's folder is used.
enum CommittedExamples {
    static let workingTree = Paths.packageRoot.appendingPathComponent("examples/config")

    static let folder: URL = extract() ?? workingTree

    private static func extract() -> URL? {
        let root = Paths.packageRoot.path
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("orgctl-examples-\(UUID().uuidString)")
        let archive = scratch.appendingPathComponent("examples.tar")
        // `safe.directory`: a checkout owned by another user (a CI container) is still read.
        let steps = [
            ["git", "-c", "safe.directory=*", "-C", root, "archive", "--format=tar", "--output=\(archive.path)", "HEAD", "examples/config"],
            ["tar", "-xf", archive.path, "-C", scratch.path],
        ]
        guard (try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)) != nil else { return nil }
        for arguments in steps {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return nil }
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { return nil }
        }
        let extracted = scratch.appendingPathComponent("examples/config")
        return FileManager.default.fileExists(atPath: extracted.appendingPathComponent("platform.yaml").path) ? extracted : nil
    }
}

/// Secret values the tests pass to orgctl: distinctive strings, so a leak is found by a plain byte search.
enum Secrets {
    static let examples: [String: String] = [
        "ACME_SLACK_WEBHOOK_SECRET": "e2e-leakcheck-acme-slack-7Hq2Zr",
        "ACME_DEPLOY_LOG_WEBHOOK_SECRET": "e2e-leakcheck-acme-deploylog-Wm4Px9",
        "GLOBEX_OIDC_CLIENT_SECRET": "e2e-leakcheck-globex-oidc-Kd8Tn3",
        "GLOBEX_WEBHOOK_SECRET": "e2e-leakcheck-globex-hook-Vb6Lc1",
        "INITECH_WEBHOOK_SECRET": "e2e-leakcheck-initech-hook-Ys5Fg0",
    ]

    /// A fixed state key (32 bytes, base64), so fingerprints and golden output are reproducible.
    static let stateKey = Data((0..<32).map { UInt8(($0 * 37 + 11) & 0xFF) }).base64EncodedString()
}

/// What one run of orgctl (or another tool) did.
struct Run: CustomStringConvertible {
    var status: Int32
    /// True when the process ended by a signal (a crash, or our SIGKILL) rather than by exiting.
    var signaled: Bool
    var stdout: String
    var stderr: String
    var arguments: [String]

    var description: String {
        "\(arguments.joined(separator: " ")) -> \(signaled ? "signal" : "exit") \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)"
    }
}

/// A process started but not yet waited for (crash and concurrency tests).
final class Started {
    let process: Process
    let arguments: [String]
    let stdoutPath: String
    let stderrPath: String

    init(process: Process, arguments: [String], stdoutPath: String, stderrPath: String) {
        self.process = process
        self.arguments = arguments
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
    }

    func kill() { Foundation.kill(process.processIdentifier, SIGKILL) }

    func wait() -> Run {
        process.waitUntilExit()
        let out = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        return Run(status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal, stdout: out, stderr: err,
                   arguments: arguments)
    }
}

/// A temporary folder holding configurations, state databases and every output of the commands run in it.
///
/// Commands get a clean environment (no inherited NO_COLOR, ORGCTL_STATE, …): a pinned clock, actor and
/// state key, plus the secrets given. Outputs are kept as files in the folder so that the leak check
/// (``assertNoSecretLeaks(_:excluding:sourceLocation:)``) searches them with the databases and saved plans.
final class Workspace {
    let url: URL
    var environment: [String: String]
    private var counter = 0
    /// Where ``state`` lives (Backends.swift); for PostgreSQL, this workspace's own schema.
    let backend: Backend
    let postgres: PostgresStateSchema?

    /// `sharedSchema`: on PostgreSQL, use that existing schema (left as it is) rather than a new one of its own.
    init(secrets: [String: String] = Secrets.examples, name: String = "e2e", backend: Backend = .sqlite, sharedSchema: String? = nil) throws {
        self.backend = backend
        postgres = backend == .postgres
            ? PostgresStateSchema(uri: try Backend.serverURI(), name: sharedSchema ?? Backend.newSchema(), owned: sharedSchema == nil) : nil
        url = FileManager.default.temporaryDirectory.appendingPathComponent("orgctl-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url.appendingPathComponent(".out"), withIntermediateDirectories: true)
        environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": url.path,
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "ORGCTL_NOW": "2026-11-22T12:00:00Z",
            "ORGCTL_ACTOR": "e2e",
            "ORGCTL_STATE_KEY": Secrets.stateKey,
        ]
        environment["ORGCTL_STATE_SCHEMA"] = postgres?.name
        environment.merge(secrets) { _, new in new }
    }

    /// Kept for inspection when ORGCTL_E2E_KEEP=1.
    deinit {
        if ProcessInfo.processInfo.environment["ORGCTL_E2E_KEEP"] != "1" {
            try? FileManager.default.removeItem(at: url)
            if postgres?.owned == true { postgres?.drop() }
        }
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Copies the tests' own copy of `examples/config/` (as committed; the tests set the secrets its references name)
    /// to `name`.
    @discardableResult
    func copyExamples(as name: String = "config") throws -> String {
        let destination = url.appendingPathComponent(name)
        try FileManager.default.copyItem(at: Paths.examples, to: destination)
        try? FileManager.default.removeItem(at: destination.appendingPathComponent("secrets.env"))
        return destination.path
    }

    func copy(_ source: URL, as name: String) throws -> String {
        let destination = url.appendingPathComponent(name)
        try FileManager.default.copyItem(at: source, to: destination)
        return destination.path
    }

    /// Starts `executable` (orgctl when nil) without waiting.
    func start(_ arguments: [String], executable: String? = nil, environment extra: [String: String] = [:], unset: [String] = [],
               stdin: String? = nil) throws -> Started {
        counter += 1
        let stdoutPath = path(".out/\(counter).stdout"), stderrPath = path(".out/\(counter).stderr")
        try Data().write(to: URL(fileURLWithPath: stdoutPath))
        try Data().write(to: URL(fileURLWithPath: stderrPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable ?? Paths.orgctl())
        process.arguments = arguments
        process.currentDirectoryURL = url
        var env = environment.merging(extra) { _, new in new }
        for name in unset { env[name] = nil }
        process.environment = env
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        if let stdin {
            let input = path(".out/\(counter).stdin")
            try Data(stdin.utf8).write(to: URL(fileURLWithPath: input))
            process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: input))
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        return Started(process: process, arguments: arguments, stdoutPath: stdoutPath, stderrPath: stderrPath)
    }

    /// Runs orgctl (or `executable`) to completion. Standard input is never a terminal.
    @discardableResult
    func run(_ arguments: [String], executable: String? = nil, environment extra: [String: String] = [:], unset: [String] = [],
             stdin: String? = nil) throws -> Run {
        try start(arguments, executable: executable, environment: extra, unset: unset, stdin: stdin).wait()
    }

    /// Runs SQL with the sqlite3 command-line tool (changes made behind orgctl's back) and returns its output.
    @discardableResult
    func sqlite(_ database: String, _ sql: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let run = try self.run([database], executable: Paths.sqlite3, stdin: sql)
        #expect(run.status == 0 && run.stderr.isEmpty, "sqlite3 failed: \(run)", sourceLocation: sourceLocation)
        return run.stdout
    }

    /// `sqlite3 DB .dump`: every table's schema and rows, as text.
    /// On PostgreSQL (`database` is the workspace's URI), the schema's columns and rows (``postgresDump()``).
    func dump(_ database: String) throws -> String { isPostgres(database) ? try postgresDump() : try sqlite(database, ".dump") }

    /// The dump with each secret's ciphertext replaced by its length: AES-GCM nonces are random, so two
    /// applies of the same plan store different ciphertexts and are otherwise identical.
    func canonicalDump(_ database: String) throws -> String {
        if isPostgres(database) { return try canonicalPostgresDump() }
        let regex = try Regex("X'[0-9a-fA-F]*'")
        return try dump(database).lines.map { line in
            guard line.hasPrefix("INSERT INTO webhooks ") || line.hasPrefix("INSERT INTO sso_providers ") else { return line }
            return line.replacing(regex) { match in "<ciphertext of \((match.output.count - 3) / 2) bytes>" }
        }.joined(separator: "\n")
    }

    /// `python3 tools/verify_audit.py DB`: the independent chain verifier.
    func pythonVerify(_ database: String) throws -> Run {
        try run([Paths.auditVerifier, try auditFile(database)], executable: Paths.python3)
    }

    /// Number of audit entries, counted directly.
    func auditCount(_ database: String) throws -> Int {
        Int(try sql(database, "SELECT count(*) FROM orgctl_audit;").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Searches every file in the workspace (command outputs, databases and their -wal, saved plans) for each
    /// secret value's bytes (on PostgreSQL, the cluster's data directory too); `excluding` names files that hold secrets on purpose ({file: …} secrets).
    func assertNoSecretLeaks(_ secrets: [String], excluding: Set<String> = [], sourceLocation: SourceLocation = #_sourceLocation) {
        let needles = secrets.map { Data($0.utf8) }
        guard let walker = FileManager.default.enumerator(at: url, includingPropertiesForKeys: [.isRegularFileKey]) else {
            Issue.record("cannot list \(url.path)", sourceLocation: sourceLocation)
            return
        }
        var searched = 0
        for case let file as URL in walker {
            guard (try? file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            if excluding.contains(file.path) || file.path.hasSuffix(".stdin") { continue }
            guard let bytes = FileManager.default.contents(atPath: file.path) else { continue }
            searched += 1
            for (secret, needle) in zip(secrets, needles) where bytes.range(of: needle) != nil {
                Issue.record("secret value '\(secret)' appears in \(file.path)", sourceLocation: sourceLocation)
            }
        }
        #expect(searched > 0, sourceLocation: sourceLocation)
        if postgres != nil { assertNoSecretLeaksInDataDirectory(secrets, sourceLocation: sourceLocation) }
    }
}

/// Writes a configuration with many tenants: the platform catalog plus one file per tenant.
///
/// `variant` changes every tenant a little (name, seats quota, a member's role, a team's name and the webhook's
/// timeout), so two variants of the same range differ on every tenant.
enum ConfigGenerator {
    static let webhookSecretVariable = "E2E_GENERATED_HOOK_SECRET"

    static let platform = """
        apiVersion: orgctl.dev/v1
        kind: Platform
        plans:
          professional:
            quotas: {seats: 1000, teams: 100, webhooks: 10, apiKeys: 10}
            rateLimit: 1000/h
            features: [custom-roles]
        permissions:
          apps.create: {category: apps}
          apps.read: {category: apps}
          users.read: {category: users}
          billing.manage: {category: billing}
        roles:
          owner: {permissions: ["*"]}
          admin: {permissions: ["apps.*", "users.*", "billing.*"]}
          member: {permissions: [apps.read, apps.create]}
          viewer: {permissions: ["*.read"]}
        events: [member.added, member.removed, organization.updated]

        """

    static func write(to folder: URL, tenants: Range<Int>, variant: Int, members: Int = 4, teams: Int = 1) throws {
        let tenantFolder = folder.appendingPathComponent("tenants")
        try FileManager.default.createDirectory(at: tenantFolder, withIntermediateDirectories: true)
        try platform.write(to: folder.appendingPathComponent("platform.yaml"), atomically: true, encoding: .utf8)
        let roles = ["admin", "member", "viewer", "billing"]
        for t in tenants {
            let slug = String(format: "t-%05d", t)
            var lines = [
                "apiVersion: orgctl.dev/v1", "kind: Tenant", "slug: \(slug)", "name: Tenant \(t) v\(variant)", "plan: professional",
                "domains: [\(slug).example.com]", "quotas: {seats: \(100 + variant)}",
                "roles:", "  billing:", "    permissions: [billing.manage]",
                "members:", "  owner@\(slug).example.com: owner",
            ]
            for m in 0..<members {
                lines.append("  user\(m)@\(slug).example.com: \(roles[(t + m + variant) % roles.count])")
            }
            lines.append("teams:")
            for k in 0..<teams {
                lines += ["  team-\(k):", "    name: Team \(k) v\(variant)", "    members:"]
                for m in 0..<min(members, 3) { lines.append("      user\(m)@\(slug).example.com: \(m == 0 ? "lead" : "member")") }
            }
            lines += [
                "webhooks:", "  events:", "    url: https://hooks.\(slug).example.com/orgctl", "    events: [member.*]",
                "    secret: {env: \(webhookSecretVariable)}", "    timeout: \(10 + variant)s",
            ]
            try (lines.joined(separator: "\n") + "\n").write(to: tenantFolder.appendingPathComponent("\(slug).yaml"), atomically: true,
                                                             encoding: .utf8)
        }
    }
}

extension String {
    /// The lines of the text, for exact line checks.
    var lines: [String] { split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
}

extension Workspace {
    /// `orgctl apply DIR --auto-approve` with reproducible provenance.
    @discardableResult
    /// Issued API keys go to a new `--secrets-out` file under `.keys/` (standard output is not a terminal).
    func apply(_ path: String, state: String, _ extra: [String] = [], environment: [String: String] = [:], unset: [String] = []) throws -> Run {
        try run(["apply", path, "--state", state, "--auto-approve", "--source", "test", "--no-color", "--secrets-out", newKeysFile()] + extra,
                environment: environment, unset: unset)
    }

    /// A fresh path for `apply --secrets-out` (the file does not exist yet).
    func newKeysFile() throws -> String {
        try FileManager.default.createDirectory(at: url.appendingPathComponent(".keys"), withIntermediateDirectories: true)
        return path(".keys/\(UUID().uuidString).txt")
    }

    @discardableResult
    func plan(_ path: String, state: String, _ extra: [String] = [], environment: [String: String] = [:], unset: [String] = []) throws -> Run {
        try run(["plan", path, "--state", state, "--source", "test", "--no-color"] + extra, environment: environment, unset: unset)
    }

    /// Replaces exactly one occurrence of `old` in the file at `path` (relative to the workspace or absolute).
    func edit(_ path: String, replacing old: String, with new: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let file = path.hasPrefix("/") ? path : self.path(path)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let parts = text.components(separatedBy: old)
        try #require(parts.count == 2, "'\(old)' should occur exactly once in \(file)", sourceLocation: sourceLocation)
        try parts.joined(separator: new).write(toFile: file, atomically: true, encoding: .utf8)
    }

    /// The POSIX permission bits of a file.
    func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }
}
