import Foundation
import Testing

/// The hostile-configuration corpus (Tests/Hostile, see its README): every case is rejected by `validate`,
/// `plan` and `apply` of the real binary, against a real state database that already holds a tenant, with
/// exit 1, the case's diagnostic at its file:line:column, bounded output and memory, no crash, no saved
/// plan, no secret in any output, and the database and its WAL unchanged byte for byte (on PostgreSQL: every row of
/// the schema unchanged, and no secret in the cluster's data directory).
@Suite("Hostile configurations")
struct HostileConfigTests {
    static let corpus = Paths.packageRoot.appendingPathComponent("Tests/Hostile")
    static let secrets = ["HOSTILE_WEBHOOK_SECRET": "hostile-leakcheck-hook-Zr8Kq1", "HOSTILE_OIDC_SECRET": "hostile-leakcheck-oidc-Qx3Lm7"]
    /// Bounds every run must stay within (a real configuration's output and memory are far below them).
    static let maxOutputBytes = 64 << 10
    static let maxResidentKiB = 256 << 10

    static let caseNames: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: corpus.appendingPathComponent("cases").path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }()

    /// What a case's case.json declares.
    struct Manifest: Decodable {
        var about: String
        var code: String
        var file: String
        var line: Int
        var column: Int
        /// Links made at run time (path in the configuration -> target): git would keep them, but not every checkout.
        var symlinks: [String: String]?
        /// Named pipes made at run time.
        var fifos: [String]?
        /// A large input written at run time rather than committed.
        var generate: Generated?
    }

    struct Generated: Decodable {
        var file: String
        var kind: String
        var count: Int
    }

    /// The state database every case starts from: the base configuration applied once (checkpointed, so the
    /// WAL is empty), made by the first case that needs it.
    static let template: Result<String, TemplateFailure> = {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orgctl-hostile-template-\(getpid())")
        do {
            let workspace = try Workspace(secrets: secrets, name: "hostile-template")
            _ = try workspace.copy(corpus.appendingPathComponent("base"), as: "config")
            let state = workspace.path("state.db")
            let apply = try workspace.apply("config", state: state)
            guard apply.status == 0 else { return .failure(TemplateFailure(message: "applying the base configuration failed: \(apply)")) }
            guard try workspace.mode(state) == 0o600 else { return .failure(TemplateFailure(message: "the state database is not mode 0600")) }
            try workspace.sqlite(state, "PRAGMA wal_checkpoint(TRUNCATE);")
            try? FileManager.default.removeItem(at: folder)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: state, toPath: folder.appendingPathComponent("state.db").path)
            atexit { try? FileManager.default.removeItem(at: FileManager.default.temporaryDirectory.appendingPathComponent("orgctl-hostile-template-\(getpid())")) }
            return .success(folder.appendingPathComponent("state.db").path)
        } catch {
            return .failure(TemplateFailure(message: "\(error)"))
        }
    }()

    /// On PostgreSQL, one schema every case shares (a schema cannot be copied as a file can): the base configuration
    /// applied once. Every case leaves it unchanged (checked row by row), so sharing it is sound; it is dropped at exit.
    static let postgresTemplate: Result<String, TemplateFailure> = {
        let name = "e2e_hostile_template_\(getpid())"
        do {
            let workspace = try Workspace(secrets: secrets, name: "hostile-template", backend: .postgres, sharedSchema: name)
            _ = try workspace.copy(corpus.appendingPathComponent("base"), as: "config")
            let apply = try workspace.apply("config", state: workspace.state)
            guard apply.status == 0 else { return .failure(TemplateFailure(message: "applying the base configuration failed: \(apply)")) }
            atexit {
                if let uri = ProcessInfo.processInfo.environment["ORGCTL_TEST_POSTGRES"] {
                    PostgresStateSchema(uri: uri, name: "e2e_hostile_template_\(getpid())").drop()
                }
            }
            return .success(name)
        } catch {
            return .failure(TemplateFailure(message: "\(error)"))
        }
    }()

    struct TemplateFailure: Error, CustomStringConvertible { var message: String; var description: String { message } }

    @Test("the corpus holds at least 80 cases, each with a manifest")
    func corpusSize() throws {
        #expect(Self.caseNames.count >= 80, "\(Self.caseNames.count) cases")
        for name in Self.caseNames {
            let manifest = try Self.manifest(name)
            #expect(manifest.code.contains(".") && manifest.line >= 1 && manifest.column >= 1, "\(name): \(manifest)")
        }
    }

    /// Every case on SQLite; on PostgreSQL every sixth (in name order, so the same ones each run). No case gets past the
    /// configuration's validation, so what the backend adds — the state opened alongside the configuration's loading,
    /// then left untouched — is the same for every case, and a sample proves it without doubling the suite's time.
    static let rejectedCases: [(Backend, String)] = caseNames.map { (Backend.sqlite, $0) }
        + (Backend.all.contains(.postgres) ? caseNames.enumerated().filter { $0.offset % 6 == 0 }.map { (Backend.postgres, $0.element) } : [])

    @Test("validate, plan and apply reject the case: exit 1, positioned error, bounded, database untouched", arguments: rejectedCases)
    func rejected(_ backend: Backend, _ name: String) throws {
        let manifest = try Self.manifest(name)
        let workspace = try Workspace(secrets: Self.secrets, name: "hostile", backend: backend,
                                      sharedSchema: backend == .postgres ? try Self.postgresTemplate.get() : nil)
        try Self.materialize(name, manifest, in: workspace)
        let state = workspace.state
        if backend == .sqlite { try FileManager.default.copyItem(atPath: Self.template.get(), toPath: state) }
        let before = try workspace.stateBytes(state)

        let expected = "config/\(manifest.file):\(manifest.line):\(manifest.column): error: "
        let commands: [[String]] = [
            ["validate", "config", "--no-color"],
            ["plan", "config", "--state", state, "--no-color"],
            ["plan", "config", "--state", state, "--no-color", "--out", workspace.path("saved.plan")],
            ["apply", "config", "--state", state, "--auto-approve", "--no-color"],
        ]
        for arguments in commands {
            let (run, residentKiB) = try Self.measured(arguments, in: workspace)
            let output = run.stdout + run.stderr
            let what = "\(name) (\(manifest.about)): orgctl \(arguments[0])"
            #expect(!run.signaled && run.status == 1, "\(what) should exit 1: \(run.description.prefix(2000))")
            #expect(output.utf8.count < Self.maxOutputBytes, "\(what) printed \(output.utf8.count) bytes")
            #expect(output.lines.contains { $0.hasPrefix(expected) && $0.hasSuffix("[\(manifest.code)]") },
                    "\(what) should report \(manifest.code) at \(expected): \(output.prefix(2000))")
            #expect(!output.contains("Fatal error") && !output.contains("SQLITE"), "\(what): \(output.prefix(2000))")
            OutputSafety.expectSafe(run, what)
            if let residentKiB {
                #expect(residentKiB < Self.maxResidentKiB, "\(what) peaked at \(residentKiB) KiB resident")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: workspace.path("saved.plan")), "\(name): a plan was saved")
        #expect(try workspace.stateBytes(state) == before, "\(name): the state database or its WAL changed")
        // Generated inputs are large and hold no secret; skip them so the search stays quick.
        if let generated = manifest.generate { try FileManager.default.removeItem(atPath: workspace.path("config/\(generated.file)")) }
        workspace.assertNoSecretLeaks(Array(Self.secrets.values))
    }

    // MARK: Helpers

    static func manifest(_ name: String) throws -> Manifest {
        let data = try Data(contentsOf: corpus.appendingPathComponent("cases/\(name)/case.json"))
        return try JSONDecoder().decode(Manifest.self, from: data)
    }

    /// The base configuration, with the case's files laid over it, then its links, pipes and generated file.
    static func materialize(_ name: String, _ manifest: Manifest, in workspace: Workspace) throws {
        let config = workspace.url.appendingPathComponent("config")
        _ = try workspace.copy(corpus.appendingPathComponent("base"), as: "config")
        let caseConfig = corpus.appendingPathComponent("cases/\(name)/config")
        let files = FileManager.default.enumerator(at: caseConfig, includingPropertiesForKeys: [.isRegularFileKey])
        while let file = files?.nextObject() as? URL {
            guard (try file.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true, file.lastPathComponent != ".keep" else { continue }
            let relative = String(file.standardizedFileURL.path.dropFirst(caseConfig.standardizedFileURL.path.count + 1))
            let destination = config.appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? FileManager.default.removeItem(at: destination)
            try FileManager.default.copyItem(at: file, to: destination)
        }
        for (link, target) in manifest.symlinks ?? [:] {
            try FileManager.default.createSymbolicLink(atPath: config.appendingPathComponent(link).path, withDestinationPath: target)
        }
        for fifo in manifest.fifos ?? [] {
            try #require(mkfifo(config.appendingPathComponent(fifo).path, 0o600) == 0, "mkfifo \(fifo)")
        }
        if let generated = manifest.generate {
            try generate(generated, at: config.appendingPathComponent(generated.file))
        }
    }

    /// The evil tenant every generated case starts from.
    static let header = """
        apiVersion: orgctl.dev/v1
        kind: Tenant
        slug: evil
        name: Evil
        plan: enterprise
        domains: [evil.example.com]
        members:
          owner@evil.example.com: owner

        """

    static func generate(_ generated: Generated, at url: URL) throws {
        let n = generated.count
        var text: String
        switch generated.kind {
        case "deep-flow":
            text = header + "x: " + String(repeating: "[", count: n) + String(repeating: "]", count: n) + "\n"
        case "deep-block":
            text = header + "x:\n"
            for i in 0..<n { text += String(repeating: " ", count: i + 1) + "k\(i):\n" }
            text += String(repeating: " ", count: n + 1) + "v: 1\n"
        case "long-name":
            text = header.replacingOccurrences(of: "name: Evil", with: "name: " + String(repeating: "E", count: n))
        case "many-members":
            text = header.replacingOccurrences(of: "plan: enterprise", with: "plan: business")
            for i in 0..<n { text += "  u\(i)@evil.example.com: member\n" }
        case "huge-file":
            // Sparse: the header, then zero bytes up to the size; it takes no room on disk.
            try Data(header.utf8).write(to: url)
            let handle = try FileHandle(forWritingTo: url)
            try handle.truncate(atOffset: UInt64(n))
            try handle.close()
            return
        default:
            Issue.record("unknown generated kind '\(generated.kind)'")
            return
        }
        try Data(text.utf8).write(to: url)
    }

    /// The database file and its WAL, as they are on disk (a missing WAL reads as empty).
    static func databaseBytes(_ path: String) -> [Data] {
        [path, path + "-wal"].map { FileManager.default.contents(atPath: $0) ?? Data() }
    }

    /// A run still going after this long is killed and reported (a hang, e.g. reading a named pipe, must
    /// fail the suite rather than stall CI). Not a timing assertion: release runs take well under 1 s.
    static let hangSeconds = TimeInterval(ProcessInfo.processInfo.environment["ORGCTL_E2E_HANG_SECONDS"] ?? "") ?? 120

    /// Runs orgctl under /usr/bin/time when it is there, for the child's peak resident set size (KiB).
    static func measured(_ arguments: [String], in workspace: Workspace) throws -> (Run, Int?) {
        let time = "/usr/bin/time"
        guard FileManager.default.isExecutableFile(atPath: time) else { return (try watched(workspace.start(arguments)), nil) }
        let report = workspace.path(".out/rss-\(UUID().uuidString)")
        var run = try watched(workspace.start(["-f", "%M", "-o", report, try Paths.orgctl()] + arguments, executable: time))
        // time(1) exits 128+N when its child was killed by signal N, and says so in its report.
        let text = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
        if text.contains("terminated by signal") { run.signaled = true }
        return (run, text.split(separator: "\n").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) })
    }

    static func watched(_ started: Started) -> Run {
        let deadline = Date().addingTimeInterval(hangSeconds)
        while started.process.isRunning, Date() < deadline { usleep(20_000) }
        if started.process.isRunning {
            Issue.record("\(started.arguments.joined(separator: " ")) still running after \(Int(hangSeconds)) s: killed")
            // Under /usr/bin/time the hung process is time(1)'s child: kill it first (Linux lists it in /proc).
            let pid = started.process.processIdentifier
            let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            for child in children.split(separator: " ").compactMap({ Int32($0) }) { kill(child, SIGKILL) }
            started.kill()
        }
        return started.wait()
    }
}
