import Foundation
import Spec
import Testing

@testable import StateStore

/// Every stored row maps to exactly one resource, or the database is refused: rows the
/// configuration format could never produce, rows of no parent, and schema objects orgctl did
/// not create (docs/state-schema.md, "What the platform may write").
@Suite("stored rows the configuration cannot produce")
struct StoredRowTests {
    /// The sample applied, then `sql` run behind orgctl's back with foreign keys off (the sqlite3 CLI's default).
    private func tampered(_ sql: String) throws -> (TemporaryStore, SQLiteStateStore) {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        try store.connection.execute("PRAGMA foreign_keys = OFF; \(sql); PRAGMA foreign_keys = ON;")
        return (temp, store)
    }

    @Test("address segments: configuration keys are verbatim, any other key is escaped and never meets another")
    func segments() {
        #expect(AddressSegment.encode("alice@acme.com") == "alice@acme.com")
        #expect(AddressSegment.encode("o'brien+x@a-b.io") == "o'brien+x@a-b.io")
        #expect(AddressSegment.encode("back/door") == "back%2Fdoor")
        #expect(AddressSegment.encode("a b\n") == "a%20b%0A")
        #expect(AddressSegment.encode("100%") == "100%25")
        #expect(AddressSegment.encode("") == "%")
        #expect(AddressSegment.encode("é") == "%C3%A9")
        // Invalid UTF-8 is encoded from the raw bytes: two such keys stay apart.
        let a = [UInt8]([0x61, 0xFF]).withUnsafeBytes { AddressSegment.encode($0) }
        let b = [UInt8]([0x61, 0xFE]).withUnsafeBytes { AddressSegment.encode($0) }
        #expect(a == "a%FF" && b == "a%FE")
        // Injective over a sample of tricky keys, and never a '/'.
        let keys = ["a", "A", "%41", "a/b", "a%2Fb", "", "%", "a%", "a b", "a+b", "*", "**", "..", "tenant/x"]
        let segments = keys.map(AddressSegment.encode)
        #expect(Set(segments).count == keys.count)
        #expect(segments.allSatisfy { !$0.contains("/") })
    }

    @Test("a key with a slash, a space, upper case or invalid UTF-8 reads under an address of its own, in every table", arguments: [
        ("INSERT INTO members (tenant_id, email, role) VALUES (1, 'mallory/x@evil.com', 'owner')", "tenant/acme/member/mallory%2Fx@evil.com"),
        ("INSERT INTO api_keys (tenant_id, name, scopes) VALUES (1, 'back/door', '[\"*\"]')", "tenant/acme/apikey/back%2Fdoor"),
        ("INSERT INTO webhooks (tenant_id, name, url) VALUES (1, 'x/y', 'https://evil.example')", "tenant/acme/webhook/x%2Fy"),
        ("INSERT INTO sso_providers (tenant_id, name, type) VALUES (1, 'Evil IdP', 'oidc')", "tenant/acme/sso/Evil%20IdP"),
        ("INSERT INTO roles (slug) VALUES ('god mode')", "role/god%20mode"),
        ("INSERT INTO roles (tenant_id, slug) VALUES (1, 'x/y')", "tenant/acme/role/x%2Fy"),
        ("INSERT INTO tenants (slug, plan) VALUES ('acme/member/x', 'business')", "tenant/acme%2Fmember%2Fx"),
        ("INSERT INTO teams (tenant_id, slug) VALUES (1, 'core/member')", "tenant/acme/team/core%2Fmember"),
        ("INSERT INTO plans (slug) VALUES ('Free')", "plan/Free"),
        ("INSERT INTO permissions (name) VALUES ('*')", "permission/%2A"),
        ("INSERT INTO events (name) VALUES (CAST(x'6DFF' AS TEXT))", "event/m%FF"),
        ("INSERT INTO team_members (team_id, member_id, role) VALUES (2, (SELECT id FROM members WHERE email = 'alice@acme.com'), 'lead')",
         "tenant/acme/team/sre/member/alice@acme.com"),
    ])
    func hostileKeys(sql: String, address: String) throws {
        let (_, store) = try tampered(sql)
        let state = try store.read()
        let row = try #require(state.resource(named: address), "\(address) not read")
        #expect(row.appliedDigest == nil)  // not written by orgctl: created outside it
        #expect(state.resources.count == Sample.resources.count + 1)
    }

    @Test("two keys that decode to the same text are two rows")
    func invalidUTF8Collision() throws {
        let (_, store) = try tampered("""
            INSERT INTO members (tenant_id, email, role) VALUES (1, CAST(x'61FF40782E636F6D' AS TEXT), 'owner');
            INSERT INTO members (tenant_id, email, role) VALUES (1, CAST(x'61FE40782E636F6D' AS TEXT), 'owner')
            """)
        let state = try store.read()
        #expect(state.resource(named: "tenant/acme/member/a%FF@x.com") != nil)
        #expect(state.resource(named: "tenant/acme/member/a%FE@x.com") != nil)
    }

    @Test("a natural key changed outside orgctl is drift: the applied address is gone, the row is new")
    func changedKey() throws {
        let (_, store) = try tampered("UPDATE members SET email = 'eve@acme.com' WHERE email = 'alice@acme.com'")
        let state = try store.read()
        #expect(state.missingApplied.contains("tenant/acme/member/alice@acme.com"))
        #expect(state.missingApplied.contains("tenant/acme/team/core/member/alice@acme.com"))
        #expect(try #require(state.resource(named: "tenant/acme/member/eve@acme.com")).appliedDigest == nil)
        let (_, renamed) = try tampered("UPDATE tenants SET slug = 'acme2'")
        let moved = try renamed.read()
        #expect(moved.missingApplied.contains("tenant/acme"))
        #expect(moved.missingApplied.contains("tenant/acme/apikey/ci"))
        #expect(moved.resources.filter { $0.address.hasPrefix("tenant/acme2") }.allSatisfy { $0.appliedDigest == nil })
    }

    @Test("a system role moved into a tenant is gone from where orgctl applied it")
    func roleChangedKind() throws {
        let (_, store) = try tampered("UPDATE roles SET tenant_id = 1 WHERE slug = 'owner'")
        let state = try store.read()
        #expect(state.missingApplied.contains("role/owner"))
        #expect(try #require(state.resource(named: "tenant/acme/role/owner")).appliedDigest == nil)
    }

    @Test("a row of no parent, or linked across tenants, is refused with its table and row id", arguments: [
        ("INSERT INTO members (id, tenant_id, email, role) VALUES (70, 99, 'x@acme.com', 'owner')", "row 70 of members belongs to tenant id 99"),
        ("INSERT INTO api_keys (id, tenant_id, name) VALUES (71, 99, 'k')", "row 71 of api_keys belongs to tenant id 99"),
        ("INSERT INTO webhooks (id, tenant_id, name) VALUES (72, 99, 'w')", "row 72 of webhooks belongs to tenant id 99"),
        ("INSERT INTO sso_providers (id, tenant_id, name, type) VALUES (73, 99, 's', 'oidc')", "row 73 of sso_providers belongs to tenant id 99"),
        ("INSERT INTO roles (id, tenant_id, slug) VALUES (74, 99, 'r')", "row 74 of roles belongs to tenant id 99"),
        ("INSERT INTO teams (id, tenant_id, slug) VALUES (75, 99, 't')", "row 75 of teams belongs to tenant id 99"),
        ("INSERT INTO team_members (id, team_id, member_id, role) VALUES (76, 99, 1, 'lead')", "row 76 of team_members belongs to team id 99"),
        ("INSERT INTO team_members (id, team_id, member_id, role) VALUES (77, 1, 99, 'lead')", "row 77 of team_members names member id 99"),
        ("INSERT INTO role_permissions VALUES (99, '*')", "role_permissions belong to role id 99"),
        ("INSERT INTO quotas VALUES ('tenant', 99, 'seats', 5)", "scope 'tenant', scope_id 99, name 'seats'"),
        ("INSERT INTO quotas VALUES ('team', 99, 'apps', 5)", "scope 'team', scope_id 99"),
        ("INSERT INTO security_policies (tenant_id, mfa) VALUES (99, 'optional')", "security_policies row of tenant id 99"),
        ("INSERT INTO sso_settings (tenant_id, enforce) VALUES (99, 1)", "sso_settings row of tenant id 99"),
        ("UPDATE teams SET parent_id = 99 WHERE slug = 'sre'", "has parent_id 99, which is no team"),
        ("UPDATE teams SET parent_id = (SELECT id FROM teams WHERE slug = 'sre') WHERE slug = 'core'", "form a parent cycle: 1 -> 2 -> 1"),
        ("UPDATE teams SET parent_id = id WHERE slug = 'core'", "form a parent cycle: 1 -> 1"),
        ("""
         INSERT INTO tenants (id, slug, plan) VALUES (50, 'other', 'business');
         INSERT INTO members (id, tenant_id, email, role) VALUES (51, 50, 'bob@other.com', 'owner');
         INSERT INTO team_members (id, team_id, member_id, role) VALUES (52, 1, 51, 'lead')
         """, "row 52 of team_members puts member id 51 of tenant id 50 in team id 1 of tenant id 1"),
        ("""
         INSERT INTO tenants (id, slug, plan) VALUES (50, 'other', 'business');
         INSERT INTO teams (id, tenant_id, slug) VALUES (53, 50, 'x');
         UPDATE teams SET parent_id = 53 WHERE slug = 'sre'
         """, "has parent_id 53, a team of another tenant"),
    ])
    func refusedRows(sql: String, message: String) throws {
        let (temp, store) = try tampered(sql)
        let error = try #require(throws: StateError.self) { try store.read() }
        #expect(error.message.contains(message), "\(error.message)")
        #expect(error.message.hasPrefix("'\(temp.path)': "))
        #expect(error.help.contains("docs/state-schema.md"))
    }

    @Test("two rows with one address (a layout without the unique constraints) are refused")
    func duplicateAddress() throws {
        let (_, store) = try tampered("DROP INDEX roles_system_slug; INSERT INTO roles (id, slug) VALUES (60, 'owner')")
        let error = try #require(throws: StateError.self) { try store.read() }
        #expect(error.message.contains("of roles have the same address role/owner"), "\(error.message)")
    }

    @Test("a trigger or a view on orgctl's tables is refused by every open and by a write", arguments: [
        "CREATE TRIGGER keep_keys BEFORE DELETE ON api_keys BEGIN SELECT RAISE(IGNORE); END",
        "CREATE TRIGGER audit_noop AFTER INSERT ON orgctl_audit BEGIN SELECT 1; END",
        "CREATE TRIGGER shadow AFTER UPDATE ON members BEGIN UPDATE members SET role = 'owner' WHERE id = new.id; END",
        "ALTER TABLE events RENAME TO events_real; CREATE VIEW events AS SELECT * FROM events_real",
    ])
    func foreignObjects(sql: String) throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        try store.connection.execute(sql)
        #expect(throws: StateError.self) { try temp.open(.readOnly) }
        #expect(throws: StateError.self) { try temp.open(.readWrite) }
        // Created after the store was opened: the write lock checks again.
        let error = try #require(throws: StateError.self) { try store.write { _ in } }
        #expect(error.message.contains("that orgctl did not create"), "\(error.message)")
    }

    @Test("indexes on orgctl's tables and objects on the platform's own tables are allowed")
    func allowedObjects() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        try store.connection.execute("""
            CREATE INDEX members_role ON members (role);
            CREATE TABLE platform_log (what TEXT);
            CREATE TRIGGER log_it AFTER INSERT ON platform_log BEGIN SELECT 1; END;
            CREATE VIEW active_members AS SELECT * FROM members;
            """)
        _ = try temp.open(.readOnly).read()
        try store.write { _ in }
    }

    /// The triggers here are temporary (on this connection, created inside the write transaction after
    /// the schema check), so only the affected-row count can notice them.
    @Test("every write checks the rows it changed; a mismatch rolls the whole apply back", arguments: [
        ("BEFORE DELETE ON main.api_keys", "deleting tenant/acme/apikey/ci changed 0 rows of api_keys instead of 1"),
        ("BEFORE UPDATE ON main.members", "updating tenant/acme/member/alice@acme.com changed 0 rows of members instead of 1"),
        ("BEFORE INSERT ON main.webhooks", "creating tenant/acme/webhook/new changed 0 rows of webhooks instead of 1"),
        ("BEFORE INSERT ON main.role_permissions", "writing permissions of tenant/acme/role/billing changed 0 rows of role_permissions instead of 1"),
        ("BEFORE INSERT ON main.orgctl_audit", "appending audit entry 14 changed 0 rows of orgctl_audit instead of 1"),
    ])
    func affectedRows(trigger: String, message: String) throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        let state = try store.read()
        let before = try store.connection.prepare("SELECT count(*) FROM orgctl_audit").all()
        let error = try #require(throws: StateError.self) {
            try store.write { transaction in
                try store.connection.execute("CREATE TEMP TRIGGER ignored \(trigger) BEGIN SELECT RAISE(IGNORE); END")
                let sequence = try transaction.appendAudit { Sample.entry($0, "x") }
                try transaction.update(try #require(state.resource(named: "tenant/acme/role/billing")),
                                       changes: [Attribute("permissions", .list(["apps.read", "apps.write"]))], secrets: [:], auditSequence: sequence)
                try transaction.update(try #require(state.resource(named: "tenant/acme/member/alice@acme.com")),
                                       changes: [Attribute("role", .string("admin"))], secrets: [:], auditSequence: sequence)
                _ = try transaction.create(Resource(address: "tenant/acme/webhook/new", kind: .webhook, parent: "tenant/acme",
                                                    attributes: [Attribute("url", .string("https://x.example.com"))]), secrets: [:], auditSequence: sequence)
                try transaction.delete(try #require(state.resource(named: "tenant/acme/apikey/ci")))
            }
        }
        #expect(error.message.hasPrefix(message + ": something other than orgctl acts on"), "\(error.message)")
        // Rolled back: the temporary trigger went with the transaction, and every row is as it was.
        #expect(try store.connection.prepare("SELECT count(*) FROM orgctl_audit").all() == before)
        let after = try store.read()
        #expect(after.resources.map(\.digest) == state.resources.map(\.digest))
        #expect(after.resources.allSatisfy { !$0.isDrifted })
    }

    @Test("a write to a row that is not where the plan saw it changes nothing and is refused")
    func vanishedRow() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        var member = try #require(try store.read().resource(named: "tenant/acme/member/alice@acme.com"))
        member.rowID = 999
        let error = try #require(throws: StateError.self) {
            try store.write { transaction in
                try transaction.update(member, changes: [Attribute("role", .string("admin"))], secrets: [:], auditSequence: 1)
            }
        }
        #expect(error.message.contains("changed 0 rows of members instead of 1"), "\(error.message)")
    }
}

@Suite("reading one tenant")
struct TenantReadTests {
    /// A read of one tenant holds exactly what a full read holds of the platform and of that
    /// tenant (same rows, digests and drift marks), and nothing of another tenant.
    @Test func oneTenantIsTheFullReadOfIt() throws {
        let temp = try TemporaryStore()
        try Sample.applyAll(try temp.open())
        let store = try temp.open()
        try store.connection.execute("""
            INSERT INTO tenants (id, slug, plan) VALUES (50, 'other', 'business');
            INSERT INTO members (id, tenant_id, email, role) VALUES (51, 50, 'bob@other.com', 'owner');
            UPDATE members SET role = 'admin' WHERE email = 'alice@acme.com';
            """)
        let full = try store.read()
        let acme = try store.read(tenant: "acme")
        func mine(_ address: String) -> Bool { !address.hasPrefix("tenant/") || address == "tenant/acme" || address.hasPrefix("tenant/acme/") }
        let expected = full.resources.filter { mine($0.address) }
        #expect(acme.resources.map(\.address) == expected.map(\.address))
        #expect(acme.resources.map(\.digest) == expected.map(\.digest))
        #expect(acme.resources.map(\.appliedDigest) == expected.map(\.appliedDigest))
        #expect(acme.resources.contains { $0.isDrifted })
        #expect(!acme.resources.contains { $0.address.hasPrefix("tenant/other") })
        #expect(try store.read(tenant: "other").resources.contains { $0.address == "tenant/other/member/bob@other.com" })
    }
}
