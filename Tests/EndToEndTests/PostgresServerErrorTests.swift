import Foundation
import Testing

/// A bad server, a bad role or a bad schema: every command says what is wrong in one line with a
/// fix, exits 1 and writes nothing; a password given in the URI appears nowhere.
@Suite("PostgreSQL: bad servers, roles and schemas", .enabled(if: !PGServer.skipped))
struct PostgresServerErrorTests {
    /// Every command that reads or writes the state.
    static func commands(_ state: [String]) -> [[String]] {
        [
            ["plan", "config", "--no-color"] + state,
            ["apply", "config", "--auto-approve", "--no-color", "--secrets-out", "keys.txt"] + state,
            ["drift", "config", "--no-color"] + state,
            ["audit", "verify"] + state,
            ["audit", "log"] + state,
        ]
    }

    /// Each command exits 1 with exactly 'error: …' and 'help: …', both mentioning what is
    /// expected, and prints nothing on standard output.
    static func expectOneLineError(_ workspace: Workspace, _ state: [String], mentioning expected: [String],
                                   commands: [[String]]? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for command in commands ?? Self.commands(state) {
            let run = try workspace.run(command)
            let lines = run.stderr.lines.filter { !$0.isEmpty && !$0.hasPrefix("note: ") }
            #expect(run.status == 1, "\(run)", sourceLocation: sourceLocation)
            #expect(lines.count == 2 && lines[0].hasPrefix("error: ") && lines[1].hasPrefix("help: "), "\(run)", sourceLocation: sourceLocation)
            for text in expected { #expect(run.stderr.contains(text), "expected '\(text)': \(run)", sourceLocation: sourceLocation) }
            #expect(!run.stdout.contains("Apply complete"), "\(run)", sourceLocation: sourceLocation)
            #expect(!run.stderr.contains("sqlstate"), "a raw server error: \(run)", sourceLocation: sourceLocation)
        }
        #expect(!FileManager.default.fileExists(atPath: workspace.path("keys.txt")), sourceLocation: sourceLocation)
    }

    static func workspace() throws -> (Workspace, PGState) {
        let workspace = try Workspace(name: "pg-errors")
        try workspace.copyExamples()
        return (workspace, try PGState(workspace))
    }

    /// The TCP URI of the password role (from tools/pg-cluster.sh) with `password` written into it.
    static func tcp(password: String, user: String = "orgctl_pw", query: String = "") throws -> String {
        let base = try PGServer.variable("ORGCTL_TEST_POSTGRES_TCP")
        let url = try #require(URLComponents(string: base))
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password
        return "postgresql://\(user):\(encoded)@\(url.host ?? "127.0.0.1"):\(url.port ?? 5432)\(url.path)\(query)"
    }

    @Test("a server that is not running: connection refused on a port, no socket file; one line and a fix")
    func serverDown() throws {
        let (workspace, state) = try Self.workspace()
        let port = 1 + Int.random(in: 40000..<60000)
        try Self.expectOneLineError(workspace, ["--state", "postgresql://postgres@127.0.0.1:\(port)/postgres", "--state-schema", state.schema],
                                    mentioning: ["cannot connect to postgresql://postgres@127.0.0.1:\(port)/postgres", "help: check that the server runs"])
        try Self.expectOneLineError(workspace, ["--state", "postgresql:///postgres?host=\(workspace.url.path)&port=5999", "--state-schema", state.schema],
                                    mentioning: ["cannot connect to", "No such file or directory", "help: check that the server runs"])
    }

    @Test("a wrong password: authentication fails, the password is never printed")
    func wrongPassword() throws {
        let (workspace, state) = try Self.workspace()
        let password = "wrong-Pw:e2e/\(UUID().uuidString.prefix(8))@x"
        try Self.expectOneLineError(workspace, ["--state", try Self.tcp(password: password), "--state-schema", state.schema],
                                    mentioning: ["password authentication failed", "help: check the user and the password"])
        workspace.assertNoSecretLeaks([password, password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password])
    }

    @Test("sslmode=require against a server without TLS: refused before any query")
    func tlsRequired() throws {
        let (workspace, state) = try Self.workspace()
        let password = try PGServer.variable("ORGCTL_TEST_POSTGRES_PASSWORD")
        try Self.expectOneLineError(workspace, ["--state", try Self.tcp(password: password, query: "?sslmode=require"), "--state-schema", state.schema],
                                    mentioning: ["over TLS", "server does not support SSL", "help: enable TLS on the server"])
        workspace.assertNoSecretLeaks([password])
        #expect(try !state.exists())
    }

    @Test("a role without CREATE on the database: the first apply is refused, no schema is created")
    func noCreateOnDatabase() throws {
        let (workspace, state) = try Self.workspace()
        let role = state.newRole("pge2e_nocreate")
        try state.psql("CREATE ROLE \(role) LOGIN")
        try #require(try state.value("SELECT has_database_privilege('\(role)', current_database(), 'CREATE')") == "f")
        let apply = try workspace.run(Self.commands(state.arguments(user: role))[1])
        #expect(apply.status == 1 && apply.stderr.contains("permission denied for database") && apply.stderr.contains("help: grant orgctl's role"), "\(apply)")
        #expect(apply.stderr.lines.filter { !$0.isEmpty && !$0.hasPrefix("note: ") }.count == 2, "\(apply)")
        #expect(try !state.exists())
    }

    @Test("a role without rights on the schema: refused by every command, naming the role and the grant; nothing written")
    func noRightsOnSchema() throws {
        let (workspace, state) = try Self.workspace()
        #expect(try workspace.apply(workspace.path("config"), state: state.server, ["--state-schema", state.schema]).status == 0)
        let role = state.newRole("pge2e_nousage")
        try state.psql("CREATE ROLE \(role) LOGIN")
        let before = try state.dump()
        try Self.expectOneLineError(workspace, state.arguments(user: role),
                                    mentioning: ["the role '\(role)' may not use the schema '\(state.schema)'", "no USAGE privilege",
                                                 "GRANT USAGE ON SCHEMA \"\(state.schema)\" TO \"\(role)\""])
        // USAGE without SELECT: the server's refusal, as one line with a fix.
        try state.psql("GRANT USAGE ON SCHEMA \(state.schema) TO \(role)")
        try Self.expectOneLineError(workspace, state.arguments(user: role),
                                    mentioning: ["permission denied for table", "help: grant orgctl's role what docs/postgres-roles.sql grants"])
        #expect(try state.dump() == before)
    }

    @Test("a database of a newer schema version: every command refuses it and nothing is written")
    func newerSchema() throws {
        let (workspace, state) = try Self.workspace()
        #expect(try workspace.apply(workspace.path("config"), state: state.server, ["--state-schema", state.schema]).status == 0)
        try state.psql("UPDATE \(state.schema).orgctl_meta SET value = '99' WHERE key = 'schema_version'")
        let before = try state.dump()
        try Self.expectOneLineError(workspace, state.arguments(), mentioning: ["has schema version 99, newer than this orgctl understands", "help: upgrade orgctl"])
        #expect(try state.dump() == before)
    }

    @Test("a schema with other tables and no orgctl state: refused, nothing created in it")
    func notOrgctlSchema() throws {
        let (workspace, state) = try Self.workspace()
        try state.psql("CREATE SCHEMA \(state.schema); CREATE TABLE \(state.schema).invoices (id int PRIMARY KEY, total numeric); INSERT INTO \(state.schema).invoices VALUES (1, 9.5)")
        let before = try state.dump()
        try Self.expectOneLineError(workspace, state.arguments(),
                                    mentioning: ["the schema '\(state.schema)'", "holds tables, but no orgctl state", "help: point --state-schema"],
                                    commands: Array(Self.commands(state.arguments()).prefix(2)))
        #expect(try state.dump() == before)
        #expect(try state.value("SELECT string_agg(relname, ',') FROM pg_class WHERE relnamespace = '\(state.schema)'::regnamespace AND relkind = 'r'") == "invoices")
    }

    @Test("a wrong --state-schema: an unusable name is refused; a schema that does not exist is named, and only apply creates it")
    func wrongStateSchema() throws {
        let (workspace, state) = try Self.workspace()
        #expect(try workspace.apply(workspace.path("config"), state: state.server, ["--state-schema", state.schema]).status == 0)
        let tooLong = String(repeating: "s", count: 64)
        try Self.expectOneLineError(workspace, ["--state", state.server, "--state-schema", tooLong],
                                    mentioning: ["is not a usable PostgreSQL schema name: it must have 1 to 63 bytes", "help: pass another name with --state-schema"])
        // A typo: the read-only commands say the state does not exist and create nothing.
        let typo = state.schema + "x"
        let misspelled = ["--state", state.server, "--state-schema", typo]
        for command in [["drift", "config"] + misspelled, ["audit", "verify"] + misspelled] {
            let run = try workspace.run(command)
            #expect(run.status == 1 && run.stderr.contains("(schema \(typo))' does not exist") && run.stderr.contains("help: "), "\(run)")
        }
        let plan = try workspace.run(["plan", "config"] + misspelled)
        #expect(plan.status == 0 && plan.stderr.contains("(schema \(typo))' does not exist yet"), "\(plan)")
        #expect(try state.value("SELECT count(*) FROM pg_namespace WHERE nspname = '\(typo)'") == "0")
    }

    @Test("a password in the URI appears in no output, saved plan, audit entry or table, in any format")
    func passwordNeverShown() throws {
        let (workspace, state) = try Self.workspace()
        let role = state.newRole("pge2e_pw")
        let password = "Pg-e2e:pw/\(UUID().uuidString.prefix(12))@%"
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password
        try state.psql("CREATE ROLE \(role) LOGIN PASSWORD :'password'; CREATE SCHEMA \(state.schema) AUTHORIZATION \(role);", variables: ["password": password])
        let uri = try Self.tcp(password: password, user: role)
        let target = ["--state", uri, "--state-schema", state.schema]
        let shown = "postgresql://\(role)@"
        let runs = [
            try workspace.apply("config", state: uri, ["--state-schema", state.schema]),
            try workspace.run(["plan", "config", "--no-color"] + target),
        ]
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        var more = [
            try workspace.run(["plan", "config", "--no-color", "--out", "hooli.plan"] + target),
            try workspace.run(["plan", "config", "--format", "json"] + target),
            try workspace.run(["plan", "config", "--format", "markdown"] + target),
            try workspace.run(["show", "hooli.plan"]),
            try workspace.run(["show", "hooli.plan", "--format", "json"]),
            try workspace.run(["apply", "hooli.plan", "--no-color"] + target),
            try workspace.run(["drift", "config", "--format", "json"] + target),
            try workspace.run(["audit", "log"] + target),
            try workspace.run(["audit", "log", "--format", "json"] + target),
            try workspace.run(["audit", "verify"] + target),
            try workspace.run(["export", "exported"] + target),
        ]
        // Errors name the state too: a wrong schema, the lock, a refused saved plan.
        more.append(try workspace.run(["apply", "hooli.plan", "--no-color"] + target))
        more.append(try workspace.run(["audit", "verify", "--state", uri, "--state-schema", state.schema + "x"]))
        for run in runs + more {
            #expect(run.status == 0 || run.status == 1 || run.status == 2, "\(run)")
        }
        #expect(runs[0].status == 0 && more[5].status == 0, "\(runs[0])\n\(more[5])")
        #expect((runs + more).contains { $0.stdout.contains(shown) || $0.stderr.contains(shown) }, "the state is never named")
        // Everything stored: the audit entries, orgctl_meta, every row.
        try Data(try state.dump().utf8).write(to: URL(fileURLWithPath: workspace.path(".out/dump.txt")))
        try Data(try state.value("SELECT string_agg(convert_from(entry, 'UTF8'), E'\\n' ORDER BY seq) FROM \(state.schema).orgctl_audit").utf8)
            .write(to: URL(fileURLWithPath: workspace.path(".out/audit.txt")))
        #expect(try state.auditCount() > 0)
        workspace.assertNoSecretLeaks([password, encoded, String(password.prefix(20))])
    }
}
