import Foundation
import Testing

/// The PostgreSQL server the PostgreSQL end-to-end suites use, from the environment that
/// `tools/pg-cluster.sh start DIR` prints (and `.ci/run` exports):
///
/// - `ORGCTL_TEST_POSTGRES`: a URI of a server database where the tests create and drop schemas
///   and roles (a superuser over the Unix socket);
/// - `ORGCTL_TEST_POSTGRES_TCP`, `ORGCTL_TEST_POSTGRES_PASSWORD`: a TCP URI of a role with a
///   password (and no other rights), for authentication and TLS errors;
/// - `ORGCTL_TEST_PGCTL`, `ORGCTL_TEST_PGUSER_RUN`: the server's pg_ctl and how to run it as the
///   cluster's owner (the server-crash test starts a cluster of its own with them, so that other
///   suites' connections to the shared server survive it).
///
/// Unset, a test fails with a message saying how to start a server, unless
/// `ORGCTL_SKIP_POSTGRES=1` (developers only; CI never sets it).
enum PGServer {
    static let environment = ProcessInfo.processInfo.environment

    /// True only when a developer asked to skip and gave no server.
    static var skipped: Bool {
        (environment["ORGCTL_TEST_POSTGRES"] ?? "").isEmpty && environment["ORGCTL_SKIP_POSTGRES"] == "1"
    }

    static func variable(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        try #require(environment[name].flatMap { $0.isEmpty ? nil : $0 },
                     """
                     \(name) is not set: start a throwaway server with `eval "$(tools/pg-cluster.sh start /tmp/orgctl-pg)"` \
                     (stop it with `tools/pg-cluster.sh stop /tmp/orgctl-pg`), or point ORGCTL_TEST_POSTGRES at a server of your own; \
                     set ORGCTL_SKIP_POSTGRES=1 to skip the PostgreSQL tests
                     """, sourceLocation: sourceLocation)
    }

    static func uri() throws -> String { try variable("ORGCTL_TEST_POSTGRES") }

    /// `uri` with `user=` set (a later parameter wins in a libpq URI).
    static func uri(_ base: String, user: String) -> String {
        base + (base.contains("?") ? "&" : "?") + "user=\(user)"
    }

    /// psql: next to pg_ctl when known, else on PATH.
    static var psql: String {
        if let pgctl = environment["ORGCTL_TEST_PGCTL"], !pgctl.isEmpty {
            let candidate = URL(fileURLWithPath: pgctl).deletingLastPathComponent().appendingPathComponent("psql").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return ["/usr/bin/psql", "/usr/local/bin/psql"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "psql"
    }

    /// A name no other test uses (schemas, roles): lowercase letters and digits.
    static func uniqueName(_ prefix: String) -> String {
        prefix + "_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
    }
}

/// One test's orgctl state in a schema of its own on the test server, dropped (with the roles the
/// test made) when the test ends.
final class PGState {
    let workspace: Workspace
    let server: String
    let schema: String
    private(set) var roles: [String] = []
    /// SQL run before the schema is dropped (objects a test made outside the schema).
    var cleanups: [String] = []

    init(_ workspace: Workspace, server: String? = nil, prefix: String = "pge2e") throws {
        self.workspace = workspace
        self.server = try server ?? PGServer.uri()
        schema = PGServer.uniqueName(prefix)
    }

    deinit {
        // Default privileges and grants first, so that the roles can be dropped.
        var sql = cleanups.map { $0 + "\n" }.joined() + "DROP SCHEMA IF EXISTS \(schema) CASCADE;\n"
        if !roles.isEmpty {
            let names = roles.joined(separator: ", ")
            sql += "DROP OWNED BY \(names);\nDROP ROLE \(names);\n"
        }
        _ = try? workspace.run(["-X", "-q", "-d", server], executable: PGServer.psql, stdin: sql)
    }

    /// `--state URI --state-schema SCHEMA` for orgctl, as `user` when given.
    func arguments(user: String? = nil) -> [String] {
        ["--state", user.map { PGServer.uri(server, user: $0) } ?? server, "--state-schema", schema]
    }

    /// A role name for this test, dropped with the schema.
    func newRole(_ prefix: String) -> String {
        let role = PGServer.uniqueName(prefix)
        roles.append(role)
        return role
    }

    /// Runs `sql` with psql as the superuser (or `user`), unaligned and tuples only; `variables`
    /// become psql variables (`:"name"`, `:'name'`).
    @discardableResult
    func psql(_ sql: String, user: String? = nil, variables: [String: String] = [:], expectSuccess: Bool = true,
              sourceLocation: SourceLocation = #_sourceLocation) throws -> Run {
        var arguments = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", user.map { PGServer.uri(server, user: $0) } ?? server]
        for (name, value) in variables.sorted(by: { $0.key < $1.key }) { arguments += ["-v", "\(name)=\(value)"] }
        let run = try workspace.run(arguments, executable: PGServer.psql, stdin: sql)
        if expectSuccess { #expect(run.status == 0, "psql failed: \(run)", sourceLocation: sourceLocation) }
        return run
    }

    /// One value from a query, trimmed.
    func value(_ sql: String, user: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        try psql(sql, user: user, sourceLocation: sourceLocation).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether the schema exists.
    func exists() throws -> Bool {
        try value("SELECT count(*) FROM pg_namespace WHERE nspname = '\(schema)'") == "1"
    }

    /// Every row of every table of the schema as text, sorted, with secret ciphertexts left out
    /// (their nonces are random) and the lock row's marks left out (each apply sets them): equal
    /// dumps are equal states, byte for byte otherwise. Empty when the schema does not exist.
    func dump(sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        try psql("""
            SELECT format('SELECT %L || '' '' || (to_jsonb(t) - ''secret_ciphertext'' - ''client_secret_ciphertext'' - ''holder'' - ''since'')::text FROM %I.%I t ORDER BY 1', c.relname, n.nspname, c.relname)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = :'schema' AND c.relkind = 'r' ORDER BY c.relname \\gexec
            """, variables: ["schema": schema], sourceLocation: sourceLocation).stdout
    }

    /// Number of audit entries.
    func auditCount() throws -> Int {
        Int(try value("SELECT count(*) FROM \(schema).orgctl_audit")) ?? -1
    }

    /// `tools/verify_audit.py URI --schema SCHEMA`: the independent chain verifier, reading through psql.
    func pythonVerify() throws -> Run {
        try workspace.run([Paths.auditVerifier, server, "--schema", schema], executable: Paths.python3,
                          environment: ["PSQL": PGServer.psql])
    }

    /// `orgctl audit verify` and the Python verifier both pass.
    func expectChainVerifies(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let verify = try workspace.run(["audit", "verify"] + arguments())
        #expect(verify.status == 0, "\(verify)", sourceLocation: sourceLocation)
        // The Python verifier reads every entry through psql: the count is the table's.
        let python = try pythonVerify()
        let entries = try auditCount()
        #expect(python.status == 0 && python.stdout.hasPrefix("ok: \(entries) entries, head "), "\(python)", sourceLocation: sourceLocation)
    }

    /// A psql session kept open in the background, fed through a FIFO: it holds locks for as long
    /// as the test wants, deterministically (no sleeps).
    func session(applicationName: String? = nil) throws -> PGSession {
        try PGSession(self, applicationName: applicationName)
    }
}

/// A background psql reading commands from a pipe (an anonymous FIFO), its output in a file.
final class PGSession {
    private let output: String
    private let process: Process
    private var writer: FileHandle?
    private var marks = 0

    init(_ state: PGState, applicationName: String?) throws {
        output = state.workspace.path(".out/psql-\(UUID().uuidString).out")
        try Data().write(to: URL(fileURLWithPath: output))
        process = Process()
        process.executableURL = URL(fileURLWithPath: PGServer.psql)
        var uri = state.server
        if let applicationName {
            uri += (uri.contains("?") ? "&" : "?") + "application_name=" + (applicationName.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        }
        process.arguments = ["-X", "-q", "-A", "-t", "-d", uri]
        process.environment = state.workspace.environment
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = process.standardOutput
        let input = Pipe()
        process.standardInput = input
        try process.run()
        writer = input.fileHandleForWriting
    }

    deinit { close() }

    var processIdentifier: Int32 { process.processIdentifier }

    /// Sends `sql` and waits until psql has run it (a marker echoed after it).
    @discardableResult
    func run(_ sql: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        marks += 1
        let mark = "-- mark \(marks) --"
        try #require(writer != nil, "the psql session is closed", sourceLocation: sourceLocation)
        writer?.write(Data("\(sql)\n\\echo '\(mark)'\n".utf8))
        while true {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            if text.contains(mark) { return text }
            try #require(process.isRunning, "psql ended: \(text)", sourceLocation: sourceLocation)
            usleep(20_000)
        }
    }

    /// Its server process id.
    func backendPID() throws -> String {
        let text = try run("SELECT 'pid=' || pg_backend_pid();")
        return text.lines.last { $0.hasPrefix("pid=") }.map { String($0.dropFirst(4)) } ?? ""
    }

    /// Ends psql by closing its input (a transaction still open is rolled back).
    func close() {
        writer?.closeFile()
        writer = nil
        process.waitUntilExit()
    }

    /// SIGKILLs psql.
    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        writer?.closeFile()
        writer = nil
        process.waitUntilExit()
    }
}

extension PGState {
    /// Waits until a backend whose application_name starts with `prefix` waits for a lock that the
    /// server process `holder` holds; returns its server process id. Polls the server, asserts
    /// nothing about time. Naming the holder matters: a backend may wait briefly on some other lock
    /// (another test's catalog change, say), and taking that for the wait the test arranged let
    /// the test go on before the apply had even read the state.
    func waitForBackend(applicationNamePrefix prefix: String, blockedBy holder: String, while started: Started,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        try #require(Int(holder) != nil, "the holder's server process id is '\(holder)'", sourceLocation: sourceLocation)
        while true {
            let pid = try value("""
                SELECT pid FROM pg_stat_activity WHERE application_name LIKE '\(prefix)%' AND \(holder) = ANY (pg_blocking_pids(pid)) LIMIT 1
                """, sourceLocation: sourceLocation)
            if !pid.isEmpty { return pid }
            try #require(started.process.isRunning, "orgctl ended before it waited for a lock: \(started.wait())", sourceLocation: sourceLocation)
            usleep(20_000)
        }
    }
}

/// An apply held still inside its write transaction, deterministically: a psql session holds the
/// row of tenant hooli (`FOR UPDATE`), which the apply updates after it has taken orgctl's lock
/// and sent some of its writes. The apply waits there until the session ends (or the test
/// kills something).
struct PGBlockedApply {
    let apply: Started
    /// The server process of the apply's connection.
    let backendPID: String
    let blocker: PGSession

    /// The examples' hooli renamed (and acme's bob made a viewer, so the apply writes more than one row).
    static func editConfig(_ workspace: Workspace, to name: String = "Hooli Inc") throws {
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: \(name)")
        try workspace.edit("config/tenants/acme.yaml", replacing: "bob@acme.com: {role: admin}", with: "bob@acme.com: {role: viewer}")
    }

    /// Starts `apply config` (already edited) as `actor` and returns once it waits for the row.
    static func start(_ state: PGState, actor: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> PGBlockedApply {
        let blocker = try state.session(applicationName: "pge2e-blocker")
        try blocker.run("BEGIN; SELECT slug FROM \(state.schema).tenants WHERE slug = 'hooli' FOR UPDATE;")
        let blockerPID = try blocker.backendPID()
        let apply = try state.workspace.start(["apply", "config", "--auto-approve", "--no-color", "--source", "test", "--lock-timeout", "10m",
                                               "--secrets-out", try state.workspace.newKeysFile()] + state.arguments(),
                                              environment: ["ORGCTL_ACTOR": actor])
        let pid = try state.waitForBackend(applicationNamePrefix: "orgctl apply by \(actor) on ", blockedBy: blockerPID, while: apply,
                                          sourceLocation: sourceLocation)
        return PGBlockedApply(apply: apply, backendPID: pid, blocker: blocker)
    }
}

/// This machine's host name, as orgctl names it in its application_name.
func hostName() -> String {
    var host = [CChar](repeating: 0, count: 256)
    guard gethostname(&host, host.count - 1) == 0 else { return "unknown host" }
    return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
