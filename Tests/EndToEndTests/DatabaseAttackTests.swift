import Foundation
import Testing

/// Database-side attacks: rows, links and schema objects planted in the state database by someone
/// who can write it (the platform, a database admin), run end to end with the real binary. Each is
/// either seen (drift exit 3, and apply deletes or restores it) or refused by every command with
/// the table and row id (exit 1, the database and audit log unchanged). See docs/state-schema.md,
/// "What the platform may write".
@Suite("Database-side attacks")
struct DatabaseAttackTests {
    /// The examples applied once (the drift suite's starting point).
    func appliedExamples(_ backend: Backend = .sqlite) throws -> (Workspace, config: String, state: String) {
        try DriftExportTests().appliedExamples(backend)
    }

    func drift(_ workspace: Workspace, _ config: String, _ state: String) throws -> Run { try DriftExportTests().drift(workspace, config, state) }

    /// A planted row that the configuration format could never produce: drift reports it (exit 3)
    /// under an address of its own, apply deletes it (the collection is managed), drift is then clean.
    static let plantedRows: [(sql: String, addresses: [String])] = [
        ("INSERT INTO members (tenant_id, email, role) VALUES (1, 'mallory/x@evil.com', 'owner')", ["tenant/acme/member/mallory%2Fx@evil.com"]),
        ("INSERT INTO api_keys (tenant_id, name, scopes) VALUES (1, 'back/door', '[\"*\"]')", ["tenant/acme/apikey/back%2Fdoor"]),
        ("INSERT INTO webhooks (tenant_id, name, url, events) VALUES (1, 'x/y', 'https://evil.example.net/c', '[\"member.added\"]')",
         ["tenant/acme/webhook/x%2Fy"]),
        ("INSERT INTO roles (slug) VALUES ('God Mode'); INSERT INTO role_permissions SELECT id, '*' FROM roles WHERE slug = 'God Mode'",
         ["role/God%20Mode"]),
        ("INSERT INTO tenants (slug, plan) VALUES ('acme/member/x', 'enterprise')", ["tenant/acme%2Fmember%2Fx"]),
        ("INSERT INTO members (tenant_id, email, role) VALUES (1, 'Mallory@ACME.com', 'owner')", ["tenant/acme/member/Mallory@ACME.com"]),
        ("INSERT INTO members (tenant_id, email, role) VALUES (1, 'mal lory@acme.com' || char(10), 'owner')",
         ["tenant/acme/member/mal%20lory@acme.com%0A"]),
        ("""
         INSERT INTO members (tenant_id, email, role) VALUES (1, CAST(x'6DFF40616372652E636F6D' AS TEXT), 'owner');
         INSERT INTO members (tenant_id, email, role) VALUES (1, CAST(x'6DFE40616372652E636F6D' AS TEXT), 'owner')
         """, ["tenant/acme/member/m%FE@acre.com", "tenant/acme/member/m%FF@acre.com"]),
    ]

    /// Each planted row on SQLite, and on PostgreSQL in its SQL (`chr` for `char`); bytes that are not UTF-8 cannot be
    /// stored in PostgreSQL text, so that row is SQLite's only.
    static let plantedRowCases: [(Backend, String, [String])] = Backend.all.flatMap { backend in
        plantedRows.compactMap { row -> (Backend, String, [String])? in
            if backend == .sqlite { return (backend, row.sql, row.addresses) }
            if row.sql.contains("CAST(x'") { return nil }
            return (backend, row.sql.replacingOccurrences(of: "char(10)", with: "chr(10)"), row.addresses)
        }
    }

    @Test("a planted row with a key the configuration cannot produce is reported and deleted", arguments: plantedRowCases)
    func plantedRowIsSeenAndDeleted(_ backend: Backend, sql: String, addresses: [String]) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.sql(state, sql)
        let drifted = try drift(workspace, config, state)
        #expect(drifted.status == 3, "\(drifted)")
        for address in addresses {
            #expect(drifted.stdout.contains("+ \(address) (created outside orgctl)"), "\(address): \(drifted)")
        }
        let plan = try workspace.plan(config, state: state, ["--detailed-exitcode"])
        #expect(plan.status == 2 && plan.stdout.contains("to destroy"), "\(plan)")
        // A planted tenant is deleted whole: the tenant deletion guard asks for its confirmation.
        let tenants = addresses.filter { $0.hasPrefix("tenant/") && $0.split(separator: "/").count == 2 }
        let applied = try workspace.apply(config, state: state, tenants.flatMap { ["--allow-delete-tenant", String($0.dropFirst("tenant/".count))] })
        #expect(applied.status == 0, "\(applied)")
        #expect(applied.stdout.contains("Apply complete: 0 added, 0 changed, \(addresses.count) destroyed"), "\(applied)")
        let clean = try drift(workspace, config, state)
        #expect(clean.status == 0, "\(clean)")
    }

    @Test("a natural key changed in the database is drift, not a pending change; apply puts it back", arguments: [
        ("UPDATE tenants SET slug = 'acme2' WHERE slug = 'acme'", "- tenant/acme (deleted outside orgctl", "+ tenant/acme2 (created outside orgctl)"),
        ("UPDATE members SET email = 'zed@acme.com' WHERE email = 'bob@acme.com'", "- tenant/acme/member/bob@acme.com (deleted outside orgctl",
         "+ tenant/acme/member/zed@acme.com (created outside orgctl)"),
    ].flatMap { row in Backend.all.map { ($0, row.0, row.1, row.2) } })
    func changedNaturalKey(_ backend: Backend, sql: String, deleted: String, added: String) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.sql(state, sql)
        let drifted = try drift(workspace, config, state)
        #expect(drifted.status == 3, "\(drifted)")
        #expect(drifted.stdout.contains(deleted) && drifted.stdout.contains(added), "\(drifted)")
        #expect(drifted.stdout.contains("0 configuration changes not yet applied"), "\(drifted)")
        // A tenant whose slug moved is deleted whole under the new slug: the tenant deletion guard asks for it.
        let moved = added.hasPrefix("+ tenant/") && !added.contains("/member/") ? ["--allow-delete-tenant", "acme2"] : []
        let applied = try workspace.apply(config, state: state, moved)
        #expect(applied.status == 0, "\(applied)")
        #expect(try drift(workspace, config, state).status == 0)
    }

    @Test("two e-mails swapped in the database (a role raised without touching the role column) are drift, and apply puts the roles back",
          arguments: Backend.all)
    func swappedKeys(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.sql(state, """
            UPDATE members SET email = 'swap' WHERE email = 'alice@acme.com';
            UPDATE members SET email = 'alice@acme.com' WHERE email = 'bob@acme.com';
            UPDATE members SET email = 'bob@acme.com' WHERE email = 'swap';
            """)
        let drifted = try drift(workspace, config, state)
        #expect(drifted.status == 3, "\(drifted)")
        #expect(drifted.stdout.contains("~ tenant/acme/member/bob@acme.com (changed outside orgctl"), "\(drifted)")
        #expect(drifted.stdout.contains("role : \"admin\" -> \"owner\""), "\(drifted)")
        #expect(drifted.stdout.contains("0 configuration changes not yet applied"), "\(drifted)")
        let plan = try workspace.plan(config, state: state)
        #expect(plan.stdout.contains("~ tenant/acme/member/bob@acme.com (changed outside orgctl)"), "\(plan)")
        #expect(try workspace.apply(config, state: state).status == 0)
        #expect(try workspace.sql(state, "SELECT role FROM members WHERE email = 'bob@acme.com';") == "admin\n")
        #expect(try drift(workspace, config, state).status == 0)
    }

    /// Refused by plan, drift, export and apply alike: exit 1, one clear error naming what to fix, nothing written.
    func expectRefused(_ workspace: Workspace, _ config: String, _ state: String, _ message: String,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try workspace.canonicalDump(state)
        let entries = try workspace.auditCount(state)
        let runs = [
            try workspace.plan(config, state: state), try drift(workspace, config, state), try workspace.apply(config, state: state),
            try workspace.run(["export", workspace.path("exported"), "--state", state]),
        ]
        for run in runs {
            #expect(run.status == 1, "\(run)", sourceLocation: sourceLocation)
            #expect(run.stderr.hasPrefix("error: ") && run.stderr.contains(message) && run.stderr.contains("\nhelp: "), "\(run)",
                    sourceLocation: sourceLocation)
            #expect(!run.stderr.contains("FOREIGN KEY") && !run.stderr.contains("sqlite error"), "\(run)", sourceLocation: sourceLocation)
        }
        #expect(try workspace.canonicalDump(state) == before, "the database changed", sourceLocation: sourceLocation)
        #expect(try workspace.auditCount(state) == entries, sourceLocation: sourceLocation)
    }

    @Test("a planted row of no parent, linked across tenants, or in a team parent cycle is refused with its table and row id", arguments: [
        ("INSERT INTO members (id, tenant_id, email, role) VALUES (900, 99, 'mallory@acme.com', 'owner')",
         "row 900 of members belongs to tenant id 99, which does not exist"),
        ("INSERT INTO role_permissions VALUES (999, '*')", "rows of role_permissions belong to role id 999, which does not exist"),
        ("INSERT INTO quotas VALUES ('tenant', 99, 'seats', 1000000)", "the quotas row (scope 'tenant', scope_id 99, name 'seats')"),
        ("""
         UPDATE teams SET parent_id = (SELECT id FROM teams WHERE slug = 'sre') WHERE slug = 'platform'
         """, "rows of teams form a parent cycle"),
        ("""
         INSERT INTO team_members (id, team_id, member_id, role)
         SELECT 901, t.id, m.id, 'lead' FROM teams t, members m WHERE t.slug = 'sre' AND m.tenant_id <> t.tenant_id LIMIT 1
         """, "row 901 of team_members puts member id"),
    ].flatMap { row in Backend.all.map { ($0, row.0, row.1) } })
    func plantedLinkIsRefused(_ backend: Backend, sql: String, message: String) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        // PostgreSQL enforces the foreign keys; a superuser gets past them as SQLite's file writer does, with
        // session_replication_role = replica (no triggers, so no foreign key checks).
        try workspace.sql(state, backend.sql(sqlite: sql, postgres: "SET session_replication_role = replica; " + sql))
        try expectRefused(workspace, config, state, message)
    }

    @Test("a trigger that keeps a revoked API key alive is refused: the key is not reported deleted while it stays valid", arguments: Backend.all)
    func triggerKeepsRevokedKey(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        // The configuration revokes the key; a trigger planted in the database would silently keep the row.
        try workspace.edit("config/tenants/acme.yaml", replacing: "  audit-exporter:\n    scopes: [audit.read]\n    rateLimit: 60/h\n    expires: 2027-12-31\n",
                           with: "")
        try workspace.sql(state, backend.sql(
            sqlite: "CREATE TRIGGER keep_keys BEFORE DELETE ON api_keys BEGIN SELECT RAISE(IGNORE); END;",
            postgres: """
                CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
                CREATE TRIGGER keep_keys BEFORE DELETE ON api_keys FOR EACH ROW EXECUTE FUNCTION keep();
                """))
        try expectRefused(workspace, config, state, "has a trigger 'keep_keys' on table 'api_keys' that orgctl did not create")
        #expect(try workspace.sql(state, "SELECT count(*) FROM api_keys WHERE name = 'audit-exporter';") == "1\n")
        let log = try workspace.run(["audit", "log", "--state", state])
        #expect(!log.stdout.contains("delete  tenant/acme/apikey/audit-exporter"), "\(log)")

        // Dropped, the same apply deletes the key and audits it.
        try workspace.sql(state, backend.sql(sqlite: "DROP TRIGGER keep_keys;", postgres: "DROP TRIGGER keep_keys ON api_keys; DROP FUNCTION keep();"))
        let applied = try workspace.apply(config, state: state)
        #expect(applied.status == 0, "\(applied)")
        #expect(try workspace.sql(state, "SELECT count(*) FROM api_keys WHERE name = 'audit-exporter';") == "0\n")
    }

    @Test("a planted quota row of a name the format has none for is seen by plan and removed by apply, not drift forever", arguments: [
        ("INSERT INTO quotas VALUES ('tenant', (SELECT id FROM tenants WHERE slug = 'acme'), 'bogus', 5)", "~ tenant/acme (changed outside orgctl)"),
        ("INSERT INTO quotas VALUES ('plan', (SELECT id FROM plans WHERE slug = 'business'), 'Seats ', 5)", "~ plan/business (changed outside orgctl)"),
    ].flatMap { row in Backend.all.map { ($0, row.0, row.1) } })
    func plantedQuotaNameIsRemoved(_ backend: Backend, sql: String, change: String) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.sql(state, sql + ";")
        #expect(try drift(workspace, config, state).status == 3)
        let plan = try workspace.plan(config, state: state)
        #expect(plan.stdout.contains(change) && plan.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "\(plan)")
        let applied = try workspace.apply(config, state: state)
        #expect(applied.status == 0 && applied.stdout.contains("1 changed"), "\(applied)")
        #expect(try workspace.sql(state, "SELECT count(*) FROM quotas WHERE name IN ('bogus', 'Seats ');") == "0\n")
        #expect(try drift(workspace, config, state).status == 0)
    }

    @Test("a role raised in the database with another row's keyed digest copied beside it is still drift: the digest names its row",
          arguments: Backend.all)
    func copiedDigestIsDrift(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        // alice's row holds role owner and nothing else, like bob's row after this edit.
        try workspace.sql(state, """
            UPDATE members SET role = 'owner' WHERE email = 'bob@acme.com';
            UPDATE orgctl_resources SET digest = (SELECT digest FROM orgctl_resources WHERE address = 'tenant/acme/member/alice@acme.com')
              WHERE address = 'tenant/acme/member/bob@acme.com';
            """)
        let drifted = try drift(workspace, config, state)
        #expect(drifted.status == 3, "\(drifted)")
        #expect(drifted.stdout.contains("~ tenant/acme/member/bob@acme.com (changed outside orgctl"), "\(drifted)")
        #expect(drifted.stdout.contains("0 configuration changes not yet applied"), "\(drifted)")
    }

    @Test("a log cut back to an earlier head (its chain intact) is not appended to: the tree nodes over the removed entries are the evidence, and apply keeps it",
          arguments: Backend.all)
    func truncatedLogIsNotAppendedTo(_ backend: Backend) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        // Entries 91-103 removed; orgctl_merkle still holds the level-4 node over entries 81-96.
        try workspace.sql(state, "DELETE FROM orgctl_audit WHERE seq > 90;")
        try workspace.edit("config/tenants/acme.yaml", replacing: "  bob@acme.com: {role: admin}", with: "  bob@acme.com: {role: member}")
        let before = try workspace.canonicalDump(state)
        let applied = try workspace.apply(config, state: state)
        #expect(applied.status == 1, "\(applied)")
        #expect(applied.stderr.contains("error: the stored audit tree does not match the entries: it has a node at level 4, index 5")
                && applied.stderr.contains("nothing was applied") && applied.stderr.contains("\nhelp: "), "\(applied)")
        #expect(try workspace.canonicalDump(state) == before, "the database changed")
        #expect(try workspace.auditCount(state) == 90)
    }

    /// The same objects in PostgreSQL's SQL (its names are case-sensitive once quoted, so SQLite's case variants have no
    /// counterpart).
    static let postgresSchemaObjects: [(String, String)] = [
        // Worded as SQLite's refusal: the kind of object and its name.
        ("ALTER TABLE members RENAME TO members_real; CREATE VIEW members AS SELECT * FROM members_real WHERE role <> 'owner';",
         "has a view 'members'"),
        ("""
         CREATE FUNCTION nothing() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
         CREATE TRIGGER rewrite AFTER INSERT ON orgctl_audit FOR EACH ROW EXECUTE FUNCTION nothing();
         """, "has a trigger 'rewrite' on table 'orgctl_audit'"),
    ]

    @Test("a view in place of a table, or a trigger on the audit log, is refused", arguments: [
        ("ALTER TABLE members RENAME TO members_real; CREATE VIEW members AS SELECT * FROM members_real WHERE role <> 'owner';",
         "has a view 'members'"),
        ("CREATE TRIGGER rewrite AFTER INSERT ON orgctl_audit BEGIN SELECT 1; END;", "has a trigger 'rewrite' on table 'orgctl_audit'"),
        // SQLite resolves table names case-insensitively: these fire on members and orgctl_audit all the same.
        ("CREATE TRIGGER raise AFTER INSERT ON \"MEMBERS\" BEGIN UPDATE members SET role = 'owner' WHERE id = new.id; END;",
         "has a trigger 'raise' on table 'MEMBERS'"),
        ("CREATE TRIGGER hide AFTER INSERT ON Orgctl_Audit BEGIN SELECT 1; END;", "has a trigger 'hide' on table 'Orgctl_Audit'"),
    ].map { (Backend.sqlite, $0.0, $0.1) } + (Backend.all.contains(.postgres) ? postgresSchemaObjects.map { (Backend.postgres, $0.0, $0.1) } : []))
    func foreignSchemaObject(_ backend: Backend, sql: String, message: String) throws {
        let (workspace, config, state) = try appliedExamples(backend)
        try workspace.sql(state, sql)
        try expectRefused(workspace, config, state, message)
    }

    @Test("an empty or table-less file is not an orgctl database, for every command, and is left untouched", arguments: [
        ("empty", ""), ("header only", "PRAGMA user_version = 0; CREATE TABLE x (a); DROP TABLE x; VACUUM;"),
        ("orgctl id, no tables", "PRAGMA application_id = 1869768547; CREATE TABLE x (a); DROP TABLE x; VACUUM;"),
    ])
    func emptyFile(name: String, sql: String) throws {
        let workspace = try Workspace(name: "db-empty")
        let config = try workspace.copyExamples()
        let state = workspace.path("state.db")
        #expect(FileManager.default.createFile(atPath: state, contents: Data()))
        if !sql.isEmpty { try workspace.sqlite(state, sql) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: state))
        let runs = [
            try workspace.plan(config, state: state), try drift(workspace, config, state), try workspace.apply(config, state: state),
            try workspace.run(["export", workspace.path("exported"), "--state", state]),
            try workspace.run(["audit", "verify", "--state", state]), try workspace.run(["audit", "log", "--state", state]),
        ]
        for run in runs {
            #expect(run.status == 1, "\(name): \(run)")
            #expect(run.stderr.hasPrefix("error: '\(state)' is not an orgctl state database") && run.stderr.contains("delete it and run apply again"),
                    "\(name): \(run)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: state)) == bytes)
    }
}
