import Foundation
import Testing

/// The state backends every end-to-end suite that touches the state runs against (`@Test(arguments: Backend.all)`):
/// a SQLite file in the workspace, or a schema of its own in the PostgreSQL database `ORGCTL_TEST_POSTGRES` names.
///
/// `.ci/run` starts a throwaway cluster and exports `ORGCTL_TEST_POSTGRES` (a URI of a database where tests may
/// create and drop schemas) and `ORGCTL_TEST_PGDATA` (its data directory, searched for leaked secrets). A developer
/// without a server sets `ORGCTL_SKIP_POSTGRES=1` (CI never does): `Backend.all` is then SQLite only.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    static let all: [Backend] = ProcessInfo.processInfo.environment["ORGCTL_SKIP_POSTGRES"] == "1" ? [.sqlite] : allCases

    var testDescription: String { rawValue }

    static let howToStart = """
        the PostgreSQL tests need a server: set ORGCTL_TEST_POSTGRES to the URI of a database where tests may create and drop \
        schemas (e.g. 'postgresql:///postgres?host=/tmp/pg&port=5433&user=postgres') and ORGCTL_TEST_PGDATA to its data directory, \
        as .ci/run does (tools/pg-cluster.sh starts a throwaway cluster); or set ORGCTL_SKIP_POSTGRES=1 to run the SQLite tests only
        """

    /// `ORGCTL_TEST_POSTGRES`, or an error saying how to start a server.
    static func serverURI() throws -> String {
        try #require(ProcessInfo.processInfo.environment["ORGCTL_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }, "\(howToStart)")
    }

    /// `ORGCTL_TEST_PGDATA`, or an error saying how to start a server.
    static func dataDirectory() throws -> String {
        try #require(ProcessInfo.processInfo.environment["ORGCTL_TEST_PGDATA"].flatMap { $0.isEmpty ? nil : $0 }, "\(howToStart)")
    }

    /// The SQL of `sqlite` or of `postgres`, for the few statements the two dialects write differently.
    func sql(sqlite: String, postgres: String) -> String { self == .sqlite ? sqlite : postgres }

    /// A fresh schema name: one per workspace, dropped with it.
    static func newSchema() -> String {
        "e2e_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
    }

    static let psql = "/usr/bin/psql"
}

/// A PostgreSQL schema the workspace's commands use (through `ORGCTL_STATE_SCHEMA`), dropped when the workspace goes.
struct PostgresStateSchema {
    let uri: String
    let name: String
    /// False for a schema the workspace shares with others (``Workspace/init(secrets:name:backend:sharedSchema:)``),
    /// which it must leave as it is.
    var owned = true

    /// `psql` arguments that run a script against the schema: quiet, unaligned, `|`-separated like sqlite3's output,
    /// stopping at the first error, reading no `~/.psqlrc`.
    func psqlArguments() -> [String] {
        [uri, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", "SET search_path TO \(name)", "-f", "-"]
    }

    /// Drops the schema and the other schemas of the workspace (``Workspace/otherState(_:)``).
    func drop() {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Backend.psql)
        process.arguments = [uri, "-X", "-q", "-f", "-"]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return }
        let script = "SELECT format('DROP SCHEMA %I CASCADE', nspname) FROM pg_namespace WHERE nspname = '\(name)' OR nspname LIKE '\(name)\\_%' \\gexec\n"
        input.fileHandleForWriting.write(Data(script.utf8))
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

extension Workspace {
    /// The `--state` value of this workspace's state: the SQLite file `state.db`, or the PostgreSQL URI (the schema
    /// is in the environment every command gets, `ORGCTL_STATE_SCHEMA`).
    var state: String { postgres?.uri ?? path("state.db") }

    /// A second, separate state: the SQLite file `name`, or another schema of the server, which commands name with
    /// `--state STATE` followed by `extra` (`--state-schema SCHEMA`; dropped with the workspace).
    func otherState(_ name: String) -> (state: String, extra: [String]) {
        guard let postgres else { return (path(name), []) }
        return (postgres.uri, ["--state-schema", postgres.name + "_" + name.filter { $0.isLetter || $0.isNumber }])
    }

    /// Runs SQL against a state (changes made behind orgctl's back) and returns its output: sqlite3 for a file,
    /// psql (`-At`, so rows print as sqlite3 prints them: columns joined by `|`) in this workspace's schema for a URI.
    @discardableResult
    func sql(_ state: String, _ sql: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        guard let postgres, isPostgres(state) else { return try sqlite(state, sql, sourceLocation: sourceLocation) }
        let run = try self.run(postgres.psqlArguments(), executable: Backend.psql, stdin: sql)
        #expect(run.status == 0 && run.stderr.isEmpty, "psql failed: \(run)", sourceLocation: sourceLocation)
        return run.stdout
    }

    /// Whether `state` is this workspace's PostgreSQL state.
    func isPostgres(_ state: String) -> Bool { postgres.map { $0.uri == state } ?? false }

    /// The schema's columns and its tables' rows (each line `table|(row)`), in a deterministic order: one psql run,
    /// whose `\gexec` runs the query the first one writes for each table.
    func postgresDump() throws -> String {
        try sql(state, #"""
            SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
             WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position;
            SELECT format('SELECT %L || ''|'' || t::text FROM %I t ORDER BY t::text COLLATE "C"', tablename, tablename)
              FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename \gexec
            """#)
    }

    /// ``postgresDump()`` with each secret's ciphertext (`\\x…` in a row's text) replaced by its length.
    func canonicalPostgresDump() throws -> String {
        let regex = try Regex(#"\\\\x[0-9a-f]*"#)
        return try postgresDump().lines.map { line in
            guard line.hasPrefix("webhooks|") || line.hasPrefix("sso_providers|") else { return line }
            return line.replacing(regex) { match in "<ciphertext of \((match.output.count - 3) / 2) bytes>" }
        }.joined(separator: "\n")
    }

    /// The SQLite file holding the state's audit log: the state itself, or a fresh copy of a schema's
    /// `orgctl_audit` and `orgctl_merkle` (with no key on the tree: a test may have planted a second row for a node).
    func auditFile(_ state: String) throws -> String {
        guard isPostgres(state) else { return state }
        let audit = try sql(state, "SELECT seq || ',' || encode(entry, 'hex') || ',' || encode(prev_hash, 'hex') || ',' || encode(hash, 'hex') FROM orgctl_audit ORDER BY seq;")
        let merkle = try sql(state, "SELECT level || ',' || idx || ',' || encode(hash, 'hex') FROM orgctl_merkle ORDER BY level, idx;")
        var script = """
            CREATE TABLE orgctl_audit (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
            CREATE TABLE orgctl_merkle (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL);
            BEGIN;

            """
        for line in audit.lines where !line.isEmpty {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            script += "INSERT INTO orgctl_audit VALUES (\(f[0]), X'\(f[1])', X'\(f[2])', X'\(f[3])');\n"
        }
        for line in merkle.lines where !line.isEmpty {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            script += "INSERT INTO orgctl_merkle VALUES (\(f[0]), \(f[1]), X'\(f[2])');\n"
        }
        script += "COMMIT;\n"
        let file = path(".audit-copy-\(UUID().uuidString).db")
        try sqlite(file, script)
        return file
    }

    /// The PostgreSQL cluster's data directory (tables, indexes, WAL, …) searched for each secret's bytes after a
    /// `CHECKPOINT`, so that every write is in the files (part of ``assertNoSecretLeaks(_:excluding:sourceLocation:)``).
    func assertNoSecretLeaksInDataDirectory(_ secrets: [String], sourceLocation: SourceLocation) {
        do {
            let data = try Backend.dataDirectory()
            let shown = try sql(state, "CHECKPOINT; SHOW data_directory;", sourceLocation: sourceLocation).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(URL(fileURLWithPath: shown).resolvingSymlinksInPath().path == URL(fileURLWithPath: data).resolvingSymlinksInPath().path,
                    "ORGCTL_TEST_PGDATA (\(data)) is not the data directory of ORGCTL_TEST_POSTGRES's server (\(shown))", sourceLocation: sourceLocation)
            // grep: -r every file (base, pg_wal, pg_xact, …), -a binary as text, -F fixed strings, -l the files that
            // match; exit 1 = none.
            let run = try self.run(["-r", "-a", "-F", "-l"] + secrets.flatMap { ["-e", $0] } + [data], executable: "/usr/bin/grep")
            #expect(run.stdout.isEmpty, "a secret value appears in the PostgreSQL data directory \(data): \(run.stdout)", sourceLocation: sourceLocation)
            // Exit 2 for files the server removed while grep ran (other tests' dropped schemas, recycled WAL) only.
            let unreadable = run.stderr.lines.filter { !$0.isEmpty && !$0.hasSuffix(": No such file or directory") }
            #expect(run.status == 1 || (run.status == 2 && unreadable.isEmpty), "grep failed: \(run)", sourceLocation: sourceLocation)
        } catch {
            Issue.record(error, sourceLocation: sourceLocation)
        }
    }
}

extension Workspace {
    /// Whether a state of ``otherState(_:)`` exists: the file, or the schema.
    func stateExists(_ other: (state: String, extra: [String])) throws -> Bool {
        guard isPostgres(other.state), let schema = other.extra.last else { return FileManager.default.fileExists(atPath: other.state) }
        return try sql(state, "SELECT count(*) FROM pg_namespace WHERE nspname = '\(schema)';") == "1\n"
    }

    /// SQL that rewrites the actor of audit entry `seq` from e2e to eve behind orgctl's back (the entry's bytes change,
    /// its stored hashes do not).
    static func editAuditEntry(_ backend: Backend, seq: Int) -> String {
        backend.sql(
            sqlite: "UPDATE orgctl_audit SET entry = CAST(replace(CAST(entry AS TEXT), '\"actor\":\"e2e\"', '\"actor\":\"eve\"') AS BLOB) WHERE seq = \(seq);",
            postgres: "UPDATE orgctl_audit SET entry = convert_to(replace(convert_from(entry, 'UTF8'), '\"actor\":\"e2e\"', '\"actor\":\"eve\"'), 'UTF8') WHERE seq = \(seq);")
    }
}

extension Workspace {
    /// What must not change when a command refuses: the SQLite file and its WAL byte for byte, or every row of the
    /// schema (``postgresDump()``).
    func stateBytes(_ state: String) throws -> [Data] {
        isPostgres(state) ? [Data(try postgresDump().utf8)] : HostileConfigTests.databaseBytes(state)
    }
}

extension Workspace {
    /// Writes the rows of a SQLite copy's audit tables (``auditFile(_:)``, after a test changed it) back into this
    /// workspace's schema with psql: entries updated in place, tree nodes replaced.
    func replaceAuditTables(from file: String) throws {
        let audit = try sqlite(file, "SELECT seq || ',' || hex(entry) || ',' || hex(prev_hash) || ',' || hex(hash) FROM orgctl_audit ORDER BY seq;")
        let merkle = try sqlite(file, "SELECT level || ',' || idx || ',' || hex(hash) FROM orgctl_merkle ORDER BY level, idx;")
        var script = "BEGIN;\n"
        for line in audit.lines where !line.isEmpty {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            script += "UPDATE orgctl_audit SET entry = '\\x\(f[1])', prev_hash = '\\x\(f[2])', hash = '\\x\(f[3])' WHERE seq = \(f[0]);\n"
        }
        script += "DELETE FROM orgctl_merkle;\n"
        for line in merkle.lines where !line.isEmpty {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            script += "INSERT INTO orgctl_merkle VALUES (\(f[0]), \(f[1]), '\\x\(f[2])');\n"
        }
        try sql(state, script + "COMMIT;\n")
    }
}
