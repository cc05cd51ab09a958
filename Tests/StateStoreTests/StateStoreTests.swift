import Audit
import Crypto
import Foundation
import Spec
import Testing

@testable import StateStore

/// A state database in a fresh temporary folder, removed afterwards.
final class TemporaryStore {
    let folder: URL
    var path: String { folder.appendingPathComponent("state.db").path }
    let key: StateKey

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("orgctl-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        key = try StateKey(raw: [UInt8](repeating: 7, count: 32))
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    func open(_ access: SQLiteStateStore.Access = .readWrite) throws -> SQLiteStateStore {
        try #require(try SQLiteStateStore.open(path: path, access: access, lockTimeoutMilliseconds: 100, key: key))
    }
}

/// One resource of every kind, parents before children.
enum Sample {
    static let resources: [Resource] = [
        Resource(address: "plan/business", kind: .plan, parent: nil, attributes: [
            Attribute("quotas.seats", .int(100)), Attribute("quotas.storage", .string("10GiB")), Attribute("quotas.apps", .string("unlimited")),
            Attribute("rateLimit", .string("600/h")), Attribute("features", .list(["sso"])), Attribute("description", .string("Business")),
        ]),
        Resource(address: "permission/apps.read", kind: .permission, parent: nil, attributes: [Attribute("category", .string("apps"))]),
        Resource(address: "event/member.added", kind: .event, parent: nil, attributes: []),
        Resource(address: "role/owner", kind: .role, parent: nil, attributes: [Attribute("permissions", .list(["*"]))]),
        Resource(address: "tenant/acme", kind: .tenant, parent: nil, attributes: [
            Attribute("name", .string("Acme")), Attribute("plan", .string("business")), Attribute("domains", .list(["acme.com"])),
            Attribute("security.mfa", .string("required")), Attribute("security.sessionTimeout", .string("8h")),
            Attribute("sso.enforce", .bool(true)), Attribute("quotas.seats", .int(120)),
        ]),
        Resource(address: "tenant/acme/role/billing", kind: .tenantRole, parent: "tenant/acme",
                 attributes: [Attribute("permissions", .list(["apps.read"])), Attribute("maxDuration", .string("30d"))]),
        Resource(address: "tenant/acme/member/alice@acme.com", kind: .member, parent: "tenant/acme", attributes: [Attribute("role", .string("owner"))]),
        Resource(address: "tenant/acme/team/core", kind: .team, parent: "tenant/acme",
                 attributes: [Attribute("name", .string("Core")), Attribute("quotas.apps", .int(5))]),
        Resource(address: "tenant/acme/team/sre", kind: .team, parent: "tenant/acme", attributes: [Attribute("parent", .string("core"))]),
        Resource(address: "tenant/acme/team/core/member/alice@acme.com", kind: .teamMember, parent: "tenant/acme/team/core",
                 attributes: [Attribute("role", .string("lead"))]),
        Resource(address: "tenant/acme/sso/okta", kind: .ssoProvider, parent: "tenant/acme", attributes: [
            Attribute("type", .string("oidc")), Attribute("issuer", .string("https://id.example.com")),
            Attribute("clientSecret", .secret(fingerprint: "hmac-sha256:one")),
        ]),
        Resource(address: "tenant/acme/webhook/slack", kind: .webhook, parent: "tenant/acme", attributes: [
            Attribute("url", .string("https://hooks.example.com/x")), Attribute("events", .list(["member.added"])),
            Attribute("secret", .secret(fingerprint: "hmac-sha256:two")), Attribute("timeout", .string("30s")),
            Attribute("maxRetries", .int(5)), Attribute("enabled", .bool(true)),
        ]),
        Resource(address: "tenant/acme/apikey/ci", kind: .apiKey, parent: "tenant/acme",
                 attributes: [Attribute("scopes", .list(["apps.read"])), Attribute("expires", .string("2027-06-30"))]),
    ]

    static let secrets: [String: [String: [UInt8]]] = [
        "tenant/acme/sso/okta": ["clientSecret": Array("oidc-client-secret-plaintext".utf8)],
        "tenant/acme/webhook/slack": ["secret": Array("webhook-secret-plaintext".utf8)],
    ]

    static func entry(_ sequence: Int64, _ address: String) -> AuditEntry {
        AuditEntry(sequence: sequence, time: "2026-11-22T12:00:00Z", actor: "test", source: "test", planID: "p", action: "create",
                   address: address, before: nil, after: .object(JSONObject()))
    }

    /// Writes every sample resource in one transaction, one audit entry each.
    static func applyAll(_ store: SQLiteStateStore) throws {
        try store.write { transaction in
            for resource in resources {
                let sequence = try transaction.appendAudit { entry($0, resource.address) }
                _ = try transaction.create(resource, secrets: secrets[resource.address] ?? [:], auditSequence: sequence)
            }
        }
    }
}

@Suite("state store")
struct StateStoreTests {
    @Test("a new database is created 0600, in WAL mode, with a schema version and a database id")
    func creation() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        let attributes = try FileManager.default.attributesOfItem(atPath: temp.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(store.databaseID.count == 32)
        #expect(try store.connection.pragma("journal_mode") == .text("wal"))
        #expect(try store.connection.pragma("user_version") == .integer(Int64(Schema.currentVersion)))
    }

    @Test("opening a missing database read-only creates nothing")
    func readOnlyMissing() throws {
        let temp = try TemporaryStore()
        #expect(try SQLiteStateStore.open(path: temp.path, access: .readOnly, lockTimeoutMilliseconds: 10, key: nil) == nil)
        #expect(!FileManager.default.fileExists(atPath: temp.path))
    }

    @Test("every kind reads back exactly as written, and right after apply nothing has drifted")
    func roundTrip() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        let state = try store.read()
        #expect(state.resources.map(\.address).sorted() == Sample.resources.map(\.address).sorted())
        for written in Sample.resources {
            let read = try #require(state.resource(named: written.address))
            var expected = written.attributes
            if written.kind == .tenant { expected.append(Attribute("status", .string("active"))) }  // the column default
            #expect(Set(read.resource.attributes) == Set(expected), "\(written.address)")
            #expect(read.appliedDigest == read.digest, "\(written.address) drifted right after apply")
        }
        #expect(state.auditHead.sequence == Int64(Sample.resources.count))
        #expect(state.missingApplied.isEmpty)
    }

    @Test("secrets are stored encrypted, bound to their row, and decrypt with the state key")
    func secretsAtRest() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: temp.path))
        let wal = (try? Data(contentsOf: URL(fileURLWithPath: temp.path + "-wal"))) ?? Data()
        for plaintext in ["oidc-client-secret-plaintext", "webhook-secret-plaintext"] {
            #expect(bytes.range(of: Data(plaintext.utf8)) == nil)
            #expect(wal.range(of: Data(plaintext.utf8)) == nil)
        }
        let row = try store.connection.prepare("SELECT secret_ciphertext, secret_key_id FROM webhooks").all()
        guard case .blob(let sealed) = row[0][0] else { Issue.record("no ciphertext"); return }
        #expect(row[0][1] == .text(temp.key.keyID))
        #expect(try temp.key.open(sealed, address: "tenant/acme/webhook/slack", attribute: "secret") == Array("webhook-secret-plaintext".utf8))
        #expect(throws: (any Error).self) { try temp.key.open(sealed, address: "tenant/other/webhook/slack", attribute: "secret") }
    }

    @Test("a row changed outside orgctl reads as drifted; a row deleted outside orgctl is missing")
    func driftDetection() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        try store.connection.execute("UPDATE members SET role = 'admin'; DELETE FROM api_keys;")
        let state = try store.read()
        #expect(state.resources.filter(\.isDrifted).map(\.address) == ["tenant/acme/member/alice@acme.com"])
        #expect(state.missingApplied == ["tenant/acme/apikey/ci"])
    }

    @Test("a hand-edited applied digest reads as drift")
    func editedDigest() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        try store.connection.execute("""
            UPDATE orgctl_resources SET digest = 'not hex' WHERE kind = 'team';
            UPDATE orgctl_resources SET digest = upper(digest) WHERE kind = 'webhook';
            """)
        let state = try store.read()
        let drifted = state.resources.filter { $0.appliedDigest != $0.digest }.map(\.address).sorted()
        #expect(drifted == ["tenant/acme/team/core", "tenant/acme/team/sre"])
    }

    @Test("rows with sparse, large ids read back with their parents")
    func sparseRowIDs() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        try store.connection.execute("""
            PRAGMA foreign_keys = OFF;
            UPDATE tenants SET id = 9000000000 WHERE slug = 'acme';
            UPDATE members SET tenant_id = 9000000000; UPDATE teams SET tenant_id = 9000000000;
            UPDATE roles SET tenant_id = 9000000000 WHERE tenant_id IS NOT NULL;
            UPDATE sso_providers SET tenant_id = 9000000000; UPDATE webhooks SET tenant_id = 9000000000;
            UPDATE api_keys SET tenant_id = 9000000000; UPDATE security_policies SET tenant_id = 9000000000;
            UPDATE sso_settings SET tenant_id = 9000000000; UPDATE quotas SET scope_id = 9000000000 WHERE scope = 'tenant';
            UPDATE orgctl_resources SET row_id = 9000000000 WHERE kind = 'tenant';
            PRAGMA foreign_keys = ON;
            """)
        let state = try store.read()
        #expect(state.resources.map(\.address).sorted() == Sample.resources.map(\.address).sorted())
        // The tenant's row id changed outside orgctl, and its keyed digest names its row: that one row is drift.
        #expect(state.resources.filter { $0.appliedDigest != $0.digest }.map(\.address) == ["tenant/acme"])
    }

    @Test("a platform database in the version 1 layout reads as unadopted, and adopting it adds the later columns")
    func adoptVersionOneLayout() throws {
        let temp = try TemporaryStore()
        #expect(FileManager.default.createFile(atPath: temp.path, contents: Data()))
        do {
            let db = try SQLiteConnection(path: temp.path, mode: .readWrite, busyTimeoutMilliseconds: 100)
            try db.execute(Schema.platformTablesV1)
            try db.execute("""
                INSERT INTO tenants (slug, plan) VALUES ('acme', 'free');
                INSERT INTO api_keys (tenant_id, name, scopes) VALUES (1, 'ci', '["apps.read"]');
                """)
        }
        let unadopted = try #require(try SQLiteStateStore.open(path: temp.path, access: .readOnly, lockTimeoutMilliseconds: 100, key: nil))
        #expect(unadopted.isUnadopted)
        let key = try #require(try unadopted.read().resource(named: "tenant/acme/apikey/ci"))
        #expect(key.appliedDigest == nil && key.resource["scopes"] == .list(["apps.read"]))
        #expect(throws: StateError.self) { _ = try temp.open() }  // read-write needs --adopt
        let adopted = try #require(try SQLiteStateStore.open(path: temp.path, access: .readWrite, lockTimeoutMilliseconds: 100, key: temp.key, adopt: true))
        #expect(try adopted.connection.pragma("user_version") == .integer(Int64(Schema.currentVersion)))
        let columns = try adopted.connection.prepare("SELECT name FROM pragma_table_info('api_keys') WHERE name LIKE 'key_%' ORDER BY name").all()
        #expect(columns == [[.text("key_prefix")], [.text("key_sha256")]])
        #expect(try adopted.read().resource(named: "tenant/acme/apikey/ci")?.resource["scopes"] == .list(["apps.read"]))
    }

    @Test("updates and deletes keep rows, side tables and the applied digests in step")
    func updateAndDelete() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        var state = try store.read()
        let tenant = try #require(state.resource(named: "tenant/acme"))
        let team = try #require(state.resource(named: "tenant/acme/team/sre"))
        let membership = try #require(state.resource(named: "tenant/acme/team/core/member/alice@acme.com"))
        try store.write { transaction in
            try transaction.update(tenant, changes: [Attribute("quotas.seats", .null), Attribute("security.mfa", .string("optional")),
                                                     Attribute("name", .string("Acme Corp"))], secrets: [:], auditSequence: 1)
            try transaction.update(team, changes: [Attribute("parent", .null)], secrets: [:], auditSequence: 1)
            try transaction.delete(membership)
        }
        state = try store.read()
        let updated = try #require(state.resource(named: "tenant/acme"))
        #expect(updated.resource["quotas.seats"] == .null)
        #expect(updated.resource["security.mfa"] == .string("optional"))
        #expect(updated.resource["name"] == .string("Acme Corp"))
        #expect(try #require(state.resource(named: "tenant/acme/team/sre")).resource["parent"] == .null)
        #expect(state.resource(named: "tenant/acme/team/core/member/alice@acme.com") == nil)
        #expect(state.resources.allSatisfy { !$0.isDrifted })
        #expect(state.missingApplied.isEmpty)
    }

    @Test("a throwing write leaves rows and audit chain exactly as they were")
    func rollback() throws {
        struct Boom: Error {}
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        let before = try store.read()
        #expect(throws: Boom.self) {
            try store.write { transaction in
                _ = try transaction.appendAudit { Sample.entry($0, "tenant/zeta") }
                _ = try transaction.create(Resource(address: "tenant/zeta", kind: .tenant, parent: nil, attributes: [Attribute("plan", .string("b"))]),
                                           secrets: [:], auditSequence: 99)
                throw Boom()
            }
        }
        let after = try store.read()
        #expect(after.resources.map(\.address) == before.resources.map(\.address))
        #expect(after.auditHead == before.auditHead)
    }

    @Test("the audit chain verifies, and an edited entry is named")
    func auditVerification() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        let intact = try store.verifyAudit()
        #expect(intact.firstBreak == nil)
        #expect(intact.count == Int64(Sample.resources.count))
        try store.connection.execute("UPDATE orgctl_audit SET entry = CAST(replace(CAST(entry AS TEXT), 'plan/business', 'plan/free') AS BLOB) WHERE seq = 1")
        let broken = try store.verifyAudit()
        #expect(broken.firstBreak?.sequence == 1)
        #expect(try store.write { try $0.verifyAuditChain() }?.sequence == 1)
    }

    @Test("a read that checks the chain hands over the state first, then finds the chain intact or its first break")
    func readCheckingChain() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        var delivered: StoredState?
        let intact = try store.readCheckingChain(state: { delivered = $0 }, shouldStop: { false })
        #expect(intact == .intact)
        #expect(delivered?.resources.map(\.address) == (try store.read()).resources.map(\.address))
        #expect(delivered?.auditHead.sequence == Int64(Sample.resources.count))

        // Each kind of damage the transaction's own check finds, the read's check finds too.
        try store.connection.execute("UPDATE orgctl_audit SET entry = CAST(replace(CAST(entry AS TEXT), 'plan/business', 'plan/free') AS BLOB) WHERE seq = 1")
        let edited = try store.readCheckingChain(state: { _ in }, shouldStop: { false })
        #expect(edited == .broken(ChainBreak(sequence: 1, problem: .hashMismatch)))
        let inTransaction = try store.write { try $0.verifyAuditChain() }
        #expect(inTransaction == ChainBreak(sequence: 1, problem: .hashMismatch))
        try store.connection.execute("DELETE FROM orgctl_audit WHERE seq = 1")
        #expect(try store.readCheckingChain(state: { _ in }, shouldStop: { false }) == .broken(ChainBreak(sequence: 2, problem: .sequenceGap(expected: 1))))
    }

    @Test("a read inside the write lock comes with the chain checked in its snapshot")
    func readInTheLockChecksTheChain() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        let intact = try store.write { try $0.read() }
        #expect(intact.auditChain == .intact)
        #expect(intact.resources.count == Sample.resources.count)
        try store.connection.execute("UPDATE orgctl_audit SET prev_hash = zeroblob(32) WHERE seq = 3")
        let broken = try store.write { try $0.read() }
        #expect(broken.auditChain == .broken(ChainBreak(sequence: 3, problem: .previousHashMismatch)))
    }

    @Test("a chain check asked to stop ends as unchecked, never as intact")
    func stoppedChainCheck() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        // More entries than the check reads between two questions, and a break after them.
        try store.write { transaction in
            for index in 0..<5000 { _ = try transaction.appendAudit { Sample.entry($0, "tenant/t\(index)") } }
        }
        try store.connection.execute("UPDATE orgctl_audit SET hash = zeroblob(32) WHERE seq = 4999")
        var asked = 0
        let stopped = try store.readCheckingChain(state: { _ in }, shouldStop: { asked += 1; return true })
        #expect(stopped == .unchecked)
        #expect(asked == 1)
        #expect(try store.readCheckingChain(state: { _ in }, shouldStop: { false }) == .broken(ChainBreak(sequence: 4999, problem: .hashMismatch)))
    }

    @Test("a SQLite file that is not an orgctl database is refused")
    func notOrgctl() throws {
        let temp = try TemporaryStore()
        let other = try SQLiteConnection(path: temp.path, mode: .readWriteCreate, busyTimeoutMilliseconds: 10)
        try other.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        let error = try #require(throws: StateError.self) { _ = try temp.open() }
        #expect(error.kind == .notOrgctl)
    }

    @Test("a database from a newer orgctl is refused")
    func newerSchema() throws {
        let temp = try TemporaryStore()
        _ = try temp.open()
        let raw = try SQLiteConnection(path: temp.path, mode: .readWrite, busyTimeoutMilliseconds: 10)
        try raw.execute("PRAGMA user_version = \(Schema.currentVersion + 1)")
        let error = try #require(throws: StateError.self) { _ = try temp.open(.readOnly) }
        #expect(error.kind == .newerSchema)
        #expect(error.message.contains("newer than this orgctl"))
    }

    @Test("a negative schema version, which no orgctl writes, is refused by every access and never migrated", arguments: [
        (SQLiteStateStore.Access.readOnly, false), (.readOnly, true), (.readWrite, false),
    ])
    func negativeSchemaVersion(access: SQLiteStateStore.Access, readsOlderSchema: Bool) throws {
        let temp = try TemporaryStore()
        _ = try temp.open()
        let raw = try SQLiteConnection(path: temp.path, mode: .readWrite, busyTimeoutMilliseconds: 10)
        try raw.execute("PRAGMA user_version = -1")
        let error = try #require(throws: StateError.self) {
            _ = try SQLiteStateStore.open(path: temp.path, access: access, lockTimeoutMilliseconds: 100, key: nil,
                                          readsOlderSchema: readsOlderSchema)
        }
        #expect(error.kind == .notOrgctl)
        #expect(error.message.contains("schema version -1"))
        #expect(try raw.pragma("user_version") == .integer(-1))
    }

    @Test("a file of random bytes is refused as not a database")
    func randomBytes() throws {
        let temp = try TemporaryStore()
        try Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }).write(to: URL(fileURLWithPath: temp.path))
        let error = try #require(throws: StateError.self) { _ = try temp.open() }
        #expect(error.kind == .notADatabase)
    }

    @Test("a second writer waits for the lock, then fails with a clear message")
    func lockTimeout() throws {
        let temp = try TemporaryStore()
        let first = try temp.open()
        let second = try temp.open()
        try first.write { _ in
            let error = try #require(throws: StateError.self) { try second.write { _ in } }
            #expect(error.kind == .locked)
            #expect(error.message.contains("write lock"))
        }
    }

    @Test(arguments: ["", "short", String(repeating: "A", count: 43), "not base64!!"])
    func invalidKeys(_ text: String) {
        #expect(throws: StateKey.InvalidKey.self) { try StateKey(encoded: text) }
    }

    @Test("keys are accepted as base64 or hex, and fingerprints are keyed")
    func keyEncodings() throws {
        let raw = [UInt8](repeating: 1, count: 32)
        let base64 = try StateKey(encoded: Data(raw).base64EncodedString())
        let hex = try StateKey(encoded: Hex.encode(raw))
        #expect(base64.keyID == hex.keyID)
        #expect(base64.fingerprint(Array("s".utf8)) == hex.fingerprint(Array("s".utf8)))
        let other = try StateKey(raw: [UInt8](repeating: 2, count: 32))
        #expect(other.fingerprint(Array("s".utf8)) != base64.fingerprint(Array("s".utf8)))
    }
}

extension StoredState {
    func resource(named address: String) -> StoredResource? { resources.first { $0.address == address } }
}

@Suite("digests and row maps")
struct DigestTests {
    @Test("a digest round-trips through its hex text, either case, and refuses anything else")
    func hexRoundTrip() throws {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        let digest = try #require(Digest(hex: hex))
        #expect(digest.description == hex)
        #expect(Digest(hex: hex.uppercased()) == digest)
        #expect(Digest(hex: String(hex.dropLast())) == nil)
        #expect(Digest(hex: String(hex.dropLast()) + "g") == nil)
        #expect(Digest(hex: String(repeating: "0", count: 64)) != digest)
    }

    @Test("a resource's digest is the SHA-256 of its documented encoding")
    func resourceDigest() {
        let resource = Resource(address: "tenant/a/team/x", kind: .team, parent: "tenant/a", attributes: [
            Attribute("description", .null), Attribute("enabled", .bool(true)), Attribute("list", .list(["a", "b"])),
            Attribute("min", .int(Int64.min)), Attribute("name", .string("X")), Attribute("quota", .int(-42)), Attribute("zero", .int(0)),
        ])
        let encoding = Array("team\u{0}enabled\u{0}b1\u{0}list\u{0}la\u{1F}b\u{0}min\u{0}i\(Int64.min)\u{0}name\u{0}sX\u{0}quota\u{0}i-42\u{0}zero\u{0}i0\u{0}".utf8)
        #expect(ResourceDigest.of(resource).description == Hex.encode(SHA256.hash(encoding)))
    }

    @Test("row maps hold values for dense, sparse and negative ids")
    func rowIDMap() {
        for (maxID, count) in [(Int64(10), Int64(10)), (Int64.max, 3), (0, 0)] {
            var map = RowIDMap<String>(maxID: maxID, count: count)
            for id in [Int64(1), 7, 10, -5, 1 << 40] { map[id] = "row \(id)" }
            #expect(map[7] == "row 7")
            #expect(map[-5] == "row -5")
            #expect(map[1 << 40] == "row \(1 << 40)")
            #expect(map[2] == nil)
        }
    }
}

@Suite("state store renames")
struct StateStoreRenameTests {
    @Test("renaming a tenant keeps row ids, moves every recorded address below it, and re-seals its secrets")
    func tenantRename() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        let before = try store.read()
        let tenant = try #require(before.resource(named: "tenant/acme"))
        try store.write { transaction in
            try transaction.rename(tenant, from: "tenant/acme", to: "tenant/acme-corp")
        }
        let after = try store.read()
        #expect(after.resources.count == before.resources.count)
        for old in before.resources {
            let moved = old.address.hasPrefix("tenant/acme") ? "tenant/acme-corp" + old.address.dropFirst("tenant/acme".count) : old.address
            let now = try #require(after.resource(named: moved), "\(moved) is missing after the rename")
            #expect(now.rowID == old.rowID, "\(moved) changed its row id")
            #expect(now.digest == old.digest && now.appliedDigest == now.digest, "\(moved) reads as drifted after the rename")
        }
        #expect(after.missingApplied.isEmpty)
        let row = try store.connection.prepare("SELECT secret_ciphertext FROM webhooks").all()
        guard case .blob(let sealed) = row[0][0] else { Issue.record("no ciphertext"); return }
        #expect(try temp.key.open(sealed, address: "tenant/acme-corp/webhook/slack", attribute: "secret") == Array("webhook-secret-plaintext".utf8))
        let oidc = try store.connection.prepare("SELECT client_secret_ciphertext FROM sso_providers").all()
        guard case .blob(let client) = oidc[0][0] else { Issue.record("no ciphertext"); return }
        #expect(try temp.key.open(client, address: "tenant/acme-corp/sso/okta", attribute: "clientSecret") == Array("oidc-client-secret-plaintext".utf8))
    }

    @Test("API key material and the rotation counter read back as written")
    func keyMaterialRoundTrip() throws {
        let temp = try TemporaryStore()
        let store = try temp.open()
        try Sample.applyAll(store)
        let key = try #require(try store.read().resource(named: "tenant/acme/apikey/ci"))
        let material = [Attribute(KeyMaterial.prefixAttribute, .string("sk_live_AbCd")), Attribute(KeyMaterial.hashAttribute, .string("00ff")),
                        Attribute("rotate", .int(2)), Attribute("rotateOnScopeChange", .bool(true))]
        try store.write { transaction in
            try transaction.update(key, changes: material, secrets: [:], auditSequence: 1)
        }
        let read = try #require(try store.read().resource(named: "tenant/acme/apikey/ci"))
        for attribute in material { #expect(read.resource[attribute.name] == attribute.value) }
        #expect(read.appliedDigest == read.digest)
        #expect(try store.connection.prepare("SELECT key_prefix, key_sha256, rotation FROM api_keys").all()[0] == [.text("sk_live_AbCd"), .text("00ff"), .integer(2)])
    }
}

@Suite("state store migrations")
struct MigrationTests {
    @Test("a schema 1 database migrates to schema 2: API keys keep their rows and have no key material yet")
    func schema1To2() throws {
        let temp = try TemporaryStore()
        #expect(FileManager.default.createFile(atPath: temp.path, contents: Data()))
        do {
            let db = try SQLiteConnection(path: temp.path, mode: .readWrite, busyTimeoutMilliseconds: 100)
            try db.execute(Schema.migrationSQL(0))
            try db.execute("""
                INSERT INTO orgctl_meta (key, value) VALUES ('database_id', 'old');
                INSERT INTO tenants (slug, plan) VALUES ('acme', 'free');
                INSERT INTO api_keys (tenant_id, name, scopes) VALUES (1, 'ci', '["apps.read"]');
                PRAGMA application_id = \(Schema.applicationID);
                PRAGMA user_version = 1;
                """)
        }
        // Read-only commands (plan, drift, export) read it as the migration would leave it, and leave
        // the file as it is; apply (read-write) migrates.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: temp.path))
        let readOnly = try #require(try SQLiteStateStore.open(path: temp.path, access: .readOnly, lockTimeoutMilliseconds: 100, key: temp.key))
        let asMigrated = try readOnly.read()
        let unmigratedKey = try #require(asMigrated.resource(named: "tenant/acme/apikey/ci"))
        #expect(unmigratedKey.resource["scopes"] == .list(["apps.read"]))
        #expect(unmigratedKey.resource[KeyMaterial.hashAttribute].isNull && unmigratedKey.resource["rotate"].isNull)
        #expect(asMigrated.databaseID == "old")
        #expect(try readOnly.connection.pragma("user_version") == .integer(1))
        #expect(try Data(contentsOf: URL(fileURLWithPath: temp.path)) == bytes)
        let store = try temp.open()
        #expect(try store.connection.pragma("user_version") == .integer(Int64(Schema.currentVersion)))
        let key = try #require(try store.read().resource(named: "tenant/acme/apikey/ci"))
        #expect(key.resource["scopes"] == .list(["apps.read"]))
        #expect(key.resource[KeyMaterial.hashAttribute].isNull && key.resource[KeyMaterial.prefixAttribute].isNull)
        // What plan read before the migration is what the migrated database holds.
        let migratedState = try store.read()
        #expect(migratedState.resources.map(\.address) == asMigrated.resources.map(\.address))
        #expect(migratedState.resources.map(\.digest) == asMigrated.resources.map(\.digest))
    }

    @Test("a version lowered by hand under columns and tables that are already there is refused by reads and by the migration")
    func loweredVersion() throws {
        let temp = try TemporaryStore()
        try Sample.applyAll(try temp.open())
        let raw = try SQLiteConnection(path: temp.path, mode: .readWrite, busyTimeoutMilliseconds: 100)
        try raw.execute("PRAGMA user_version = 1")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: temp.path))
        for access in [SQLiteStateStore.Access.readOnly, .readWrite] {
            let error = try #require(throws: StateError.self) { _ = try temp.open(access) }
            #expect(error.message.contains("says schema version 1, but already has the column api_keys.rotation"), "\(error.message)")
            #expect(error.help.contains("PRAGMA user_version"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: temp.path)) == bytes)
        #expect(try raw.pragma("user_version") == .integer(1))
    }

    @Test("a version-0 file with orgctl's application id and a table of its own is refused as incomplete")
    func opaqueStep() throws {
        let temp = try TemporaryStore()
        #expect(FileManager.default.createFile(atPath: temp.path, contents: Data()))
        do {
            // Version 0 with tables: its first step is plain SQL, which only a real migration runs.
            let db = try SQLiteConnection(path: temp.path, mode: .readWrite, busyTimeoutMilliseconds: 100)
            try db.execute("CREATE TABLE t (x); PRAGMA application_id = \(Schema.applicationID);")
        }
        let error = try #require(throws: StateError.self) {
            _ = try SQLiteStateStore.open(path: temp.path, access: .readOnly, lockTimeoutMilliseconds: 100, key: nil)
        }
        // No orgctl writes its application id without its tables (both are one transaction).
        #expect(error.message.contains("is not a complete orgctl state database: it has no table 'plans'"), "\(error.message)")
    }
}

@Suite("applied values")
struct AppliedValuesTests {
    @Test("every kind of value round-trips, separators and NUL bytes in text included; nulls are left out")
    func roundTrip() {
        let attributes = [
            Attribute("a", .bool(true)), Attribute("b", .int(-42)), Attribute("c", .int(Int64.max)),
            Attribute("d", .string("x\u{0}y\u{1F}z")), Attribute("e", .list(["1\u{1F}2", "", "é"])), Attribute("f", .list([])),
            Attribute("g", .secret(fingerprint: "hmac-sha256:00ff")), Attribute("h", .document(sha256: "ab", text: "PEM")),
            Attribute("i", .null), Attribute(String(repeating: "n", count: 300), .string(String(repeating: "v", count: 70_000))),
        ]
        let decoded = AppliedValues.decode(AppliedValues.encode(attributes))
        #expect(decoded == attributes.filter { !$0.value.isNull }.sorted { $0.name < $1.name })
    }

    @Test("bytes that are not this encoding decode to nil, never to wrong values", arguments: [[0x05], [0x01, 0x61, 0x71], [0x01, 0x61, 0x73, 0x09, 0x61]] as [[UInt8]])
    func garbage(_ bytes: [UInt8]) {
        #expect(AppliedValues.decode(bytes) == nil)
    }
}

@Suite("keyed row digests and the state key check")
struct KeyedDigestTests {
    /// Undoes schema step 6 (the webhook outbox tables), so that a lowered version is only about the digests.
    static let schema6Tables = "DROP TABLE orgctl_outbox; DROP TABLE orgctl_outbox_attempts; DROP TABLE orgctl_webhook_endpoints; DROP TABLE orgctl_subjects; DROP TABLE orgctl_subject_values;"

    /// Makes the database what schema 4 wrote: plain SHA-256 row digests, no key check value.
    static func asSchema4(_ temp: TemporaryStore) throws {
        let store = try temp.open()
        let state = try store.read()
        let update = try store.connection.prepare("UPDATE orgctl_resources SET digest = ?1 WHERE address = ?2")
        for resource in state.resources { try update.run([.text(ResourceDigest.of(resource.resource).description), .text(resource.address)]) }
        try store.connection.execute("\(Self.schema6Tables) DELETE FROM orgctl_meta WHERE key IN ('state_key_check', 'state_key_id'); PRAGMA user_version = 4;")
    }

    static func drifted(_ state: StoredState) -> [String] { state.resources.filter(\.isDrifted).map(\.address) }

    @Test("a row edited outside orgctl stays drifted when its digest is recomputed without the key, as documented or under another key")
    func recomputedDigestIsStillDrift() throws {
        let temp = try TemporaryStore()
        try Sample.applyAll(try temp.open())
        let store = try temp.open()
        #expect(Self.drifted(try store.read()).isEmpty)
        let member = "tenant/acme/member/alice@acme.com"
        try store.connection.execute("UPDATE members SET role = 'admin'")
        let stored = try #require(try store.read().resource(named: member))
        let edited = stored.resource
        for forged in [ResourceDigest.of(edited), ResourceDigest.of(edited, key: try StateKey(raw: [UInt8](repeating: 1, count: 32)), rowID: stored.rowID),
                       ResourceDigest.of(edited, key: temp.key, rowID: stored.rowID + 1)] {
            try store.connection.prepare("UPDATE orgctl_resources SET digest = ?1 WHERE address = ?2").run([.text(forged.description), .text(member)])
            #expect(Self.drifted(try store.read()) == [member])
        }
        // Only the state key gives the digest that hides the edit.
        try store.connection.prepare("UPDATE orgctl_resources SET digest = ?1 WHERE address = ?2")
            .run([.text(ResourceDigest.of(edited, key: temp.key, rowID: stored.rowID).description), .text(member)])
        #expect(Self.drifted(try store.read()).isEmpty)
    }

    @Test("a schema 4 database is read as migrated and migrated to keyed digests without losing or inventing drift")
    func schema4Migration() throws {
        let temp = try TemporaryStore()
        try Sample.applyAll(try temp.open())
        try Self.asSchema4(temp)
        // Changed outside orgctl while the database was at schema 4.
        let raw = try SQLiteConnection(path: temp.path, mode: .readWrite, busyTimeoutMilliseconds: 100)
        try raw.execute("UPDATE members SET role = 'admin'; UPDATE webhooks SET url = 'https://attacker.example/x'")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: temp.path))
        let readOnly = try #require(try SQLiteStateStore.open(path: temp.path, access: .readOnly, lockTimeoutMilliseconds: 100, key: temp.key))
        let asMigrated = try readOnly.read()
        #expect(Self.drifted(asMigrated) == ["tenant/acme/member/alice@acme.com", "tenant/acme/webhook/slack"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: temp.path)) == bytes)
        let migrated = try temp.open()
        #expect(try migrated.connection.pragma("user_version") == .integer(Int64(Schema.currentVersion)))
        let state = try migrated.read()
        #expect(state.resources.map(\.digest) == asMigrated.resources.map(\.digest))
        #expect(state.resources.map(\.appliedDigest) == asMigrated.resources.map(\.appliedDigest))
        #expect(Self.drifted(state) == ["tenant/acme/member/alice@acme.com", "tenant/acme/webhook/slack"])
        #expect(try migrated.connection.prepare("SELECT value FROM orgctl_meta WHERE key = 'state_key_check'").all() == [[.text(temp.key.checkValue)]])
    }

    @Test("a schema 4 database with recorded rows is not migrated without the state key")
    func schema4NeedsKey() throws {
        let temp = try TemporaryStore()
        try Sample.applyAll(try temp.open())
        try Self.asSchema4(temp)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: temp.path))
        let error = try #require(throws: StateError.self) {
            _ = try SQLiteStateStore.open(path: temp.path, access: .readWrite, lockTimeoutMilliseconds: 100, key: nil)
        }
        #expect(error.kind == .missingKey && error.message.contains("keys its row digests"), "\(error.message)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: temp.path)) == bytes)
    }

    @Test("another state key is refused before anything is read or written, by the check value or, before it, by the secrets' key ids")
    func wrongKeyRefused() throws {
        let temp = try TemporaryStore()
        try Sample.applyAll(try temp.open())
        let other = try StateKey(raw: [UInt8](repeating: 3, count: 32))
        for schema4 in [false, true] {
            if schema4 { try Self.asSchema4(temp) }
            let bytes = try Data(contentsOf: URL(fileURLWithPath: temp.path))
            for access in [SQLiteStateStore.Access.readOnly, .readWrite] {
                let error = try #require(throws: StateError.self) {
                    _ = try SQLiteStateStore.open(path: temp.path, access: access, lockTimeoutMilliseconds: 100, key: other)
                }
                #expect(error.message.contains("the state key does not match the key this database was encrypted with (key id \(temp.key.keyID)"),
                        "\(error.message)")
                #expect(!error.message.contains(other.checkValue))
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: temp.path)) == bytes)
        }
        // The right key migrates it, and records the check value.
        #expect(try temp.open().read().resources.count == Sample.resources.count)
    }

    @Test("a keyed database whose version was lowered by hand is refused, not keyed twice")
    func loweredKeyedVersion() throws {
        let temp = try TemporaryStore()
        try Sample.applyAll(try temp.open())
        try SQLiteConnection(path: temp.path, mode: .readWrite, busyTimeoutMilliseconds: 100).execute("\(Self.schema6Tables) PRAGMA user_version = 4")
        for access in [SQLiteStateStore.Access.readOnly, .readWrite] {
            let error = try #require(throws: StateError.self) { _ = try temp.open(access) }
            #expect(error.message.contains("already records a state key check value"), "\(error.message)")
        }
    }
}
