import Audit
import Crypto
import Spec

/// `orgctl state rekey`: replaces the state key in one write transaction under the apply lock.
///
/// What depends on the key, and what becomes of it:
/// - the sealed secrets (`webhooks.secret_ciphertext`, `sso_providers.client_secret_ciphertext`):
///   opened with the current key and sealed again under the new one (same address as
///   authenticated data), with the new key id in `<prefix>_key_id`;
/// - the keyed fingerprints (`<prefix>_fingerprint`, and those inside `orgctl_resources.applied`):
///   the fingerprint of the same value under the new key;
/// - the keyed row digests (`orgctl_resources.digest`): recomputed under the new key from what
///   orgctl applied (`applied`, once its digest under the current key proves it is what orgctl
///   wrote), so a row that had drifted has drifted still and a clean row is clean;
/// - `orgctl_meta.state_key_check` and `state_key_id`;
/// - and one audit entry (action `rekey`, address `state/key`) naming the two key ids.
///
/// What is not rewritten: the audit log (hash-chained; its entries show secrets by a prefix of
/// their fingerprint under the key of their day, which names nothing), the webhook outbox's
/// payloads (copies of audit entries, signed at delivery with the secret as stored then, so with
/// the re-sealed one), API keys (stored as plain SHA-256, no state key involved), and saved plan
/// files outside the database (their MAC is under the old key: they are refused; plan again).
///
/// A secret that does not open with the current key refuses the whole rekey, naming its row:
/// sealed under the new key it would be lost. Killed at any moment, the transaction either
/// committed (the new key works) or did not (the old key works): never both, never neither.
public enum StateRekey {
    public struct Summary: Sendable, Equatable {
        public var oldKeyID: String
        public var newKeyID: String
        /// Secrets sealed again under the new key.
        public var secrets: Int
        /// Keyed fingerprints of stored rows recomputed (a secret column without a ciphertext too).
        public var fingerprints: Int
        /// `orgctl_resources` records whose digest was recomputed.
        public var digests: Int
        /// Records whose digest could not be recomputed from what orgctl applied (edited outside
        /// orgctl): they were given a digest that matches no row, so they show as drifted.
        public var unverifiable: Int
        /// The rekey's audit entry; nil for a dry run (nothing written).
        public var auditSequence: Int64?
    }

    /// The address of the audit entry a rekey appends.
    public static let auditAddress = "state/key"
    public static let auditAction = "rekey"
    /// Rows read per query: bounded memory, and on PostgreSQL a query never runs while writes stream.
    static let chunk = 2_000

    /// The sealed columns: table, column prefix, address segment, attribute, kind.
    static let sealed: [(table: String, prefix: String, segment: String, attribute: String, kind: ResourceKind)] = [
        ("webhooks", "secret", "webhook", "secret", .webhook),
        ("sso_providers", "client_secret", "sso", "clientSecret", .ssoProvider),
    ]

    /// Re-encrypts everything `store` holds under `newKey` (the store was opened with the current
    /// key, which is checked again under the lock). With `dryRun` everything is done and checked,
    /// then rolled back. `progress` is called with the number of rows done since the last call.
    public static func rekey(_ store: any StateStore, to newKey: StateKey, actor: String, source: String, time: String, dryRun: Bool,
                             progress: @escaping (Int) -> Void = { _ in }) throws(StateError) -> Summary {
        guard let store = store as? any SQLStore else {
            throw StateError(.other, "internal error: a state store that is not SQL-backed", help: "report this as a bug")
        }
        var rolledBack: Summary?
        do {
            return try store.inWriteTransaction("re-encrypting the state") {
                rolledBack = nil
                var summary = try rewrite(store, newKey: newKey, progress: progress)
                if dryRun {
                    rolledBack = summary
                    throw StateError(.other, "dry run", help: "")
                }
                summary.auditSequence = try appendAuditEntry(store, summary: summary, newKey: newKey, actor: actor, source: source, time: time)
                return summary
            }
        } catch {
            if let rolledBack { return rolledBack }
            throw error
        }
    }

    /// Everything but the audit entry, in the caller's write transaction.
    private static func rewrite(_ store: any SQLStore, newKey: StateKey, progress: (Int) -> Void) throws -> Summary {
        let db = store.db
        let oldKey = try store.requireKeyToWrite()
        try store.checkSchemaObjectsForWrite()
        // Under the lock: the key may have been replaced since the store was opened.
        guard let recorded = try store.metaValue("state_key_check") else {
            throw StateError(.other, "\(store.location) records no state key yet (no apply has written it): there is nothing to re-encrypt",
                             help: "apply the configuration with the key you want to keep; rekey later, once the database holds data")
        }
        guard recorded == oldKey.checkValue else { throw store.wrongKey(recordedID: try store.metaValue("state_key_id") ?? "unknown", oldKey) }
        guard newKey.checkValue != oldKey.checkValue else {
            throw StateError(.badKey, "the new state key is the current one (key id \(oldKey.keyID)); nothing was re-encrypted",
                             help: "generate a new key with: openssl rand -base64 32")
        }
        if case .broken(let broken) = try db.checkAuditChain() {
            throw StateError(.corrupt, "the audit chain of \(store.location) is broken at entry \(broken.sequence); nothing was re-encrypted",
                             help: "run 'orgctl audit verify' and restore the database from a backup")
        }
        var summary = Summary(oldKeyID: oldKey.keyID, newKeyID: newKey.keyID, secrets: 0, fingerprints: 0, digests: 0, unverifiable: 0)
        let rekeying = Rekeying(old: oldKey, new: newKey)
        // Rows applied before orgctl kept applied values: what is stored now stands in for them,
        // where it is what orgctl applied (read before any secret column changes).
        let legacy = try legacyRecords(store)
        for column in sealed {
            try resealSecrets(db, column, rekeying, &summary, progress)
        }
        try rekeyRecords(db, staged: store is PostgresStateStore, rekeying, legacy: legacy, &summary, progress)
        for (name, value) in [("state_key_check", newKey.checkValue), ("state_key_id", newKey.keyID)] {
            try db.runChecked("INSERT INTO orgctl_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                              [.text(name), .text(value)], rows: 1) { changed in
                StateError(.corrupt, "recording the new state key changed \(changed) rows of orgctl_meta instead of 1",
                           help: "look for triggers or rules on orgctl's tables (docs/state-schema.md, 'What the platform may write')")
            }
        }
        return summary
    }

    // MARK: Secrets

    /// The fingerprints of one row's secret under both keys, for the records of that row.
    struct SecretTranslation {
        var old: String
        var new: String
    }

    private static func resealSecrets(_ db: any SQLDatabase, _ column: (table: String, prefix: String, segment: String, attribute: String, kind: ResourceKind),
                                      _ rekeying: Rekeying, _ summary: inout Summary, _ progress: (Int) -> Void) throws {
        let p = column.prefix
        let select = """
            SELECT s.id, t.slug, s.name, s.\(p)_ciphertext, s.\(p)_fingerprint FROM \(column.table) s JOIN tenants t ON t.id = s.tenant_id
            WHERE s.id > ?1 AND (s.\(p)_ciphertext IS NOT NULL OR s.\(p)_fingerprint IS NOT NULL) ORDER BY s.id LIMIT ?2
            """
        var after = Int64.min
        while true {
            var rows: [(id: Int64, address: String, ciphertext: [UInt8]?, fingerprint: String?)] = []
            try db.forEach(select, [.integer(after), .integer(Int64(chunk))]) { row in
                let address = "tenant/\(row.withText(1) { AddressSegment.encode($0) })/\(column.segment)/\(row.withText(2) { AddressSegment.encode($0) })"
                rows.append((row.int(0), address, row.optionalBlob(3), row.optionalText(4)))
            }
            guard let last = rows.last else { break }
            after = last.id
            for row in rows {
                let what = "\(row.address)#\(column.attribute)"
                guard let ciphertext = row.ciphertext else {
                    // A fingerprint without a ciphertext (written outside orgctl): it names no value this key can read.
                    try change(db, "UPDATE \(column.table) SET \(p)_fingerprint = ?1 WHERE id = ?2",
                               [.text(rekeying.unknownFingerprint(row.fingerprint ?? ""))], id: row.id, table: column.table, what)
                    summary.fingerprints += 1
                    continue
                }
                guard let value = try? rekeying.old.open(ciphertext, address: row.address, attribute: column.attribute) else {
                    throw StateError(.secret, "the secret '\(column.attribute)' of \(row.address) (row \(row.id) of \(column.table)) does not open with the current state key; nothing was re-encrypted",
                                     help: "it was not sealed by orgctl for this row with this key: restore the row from a backup, or clear it (UPDATE \(column.table) SET \(p)_ciphertext = NULL, \(p)_key_id = NULL, \(p)_fingerprint = NULL WHERE id = \(row.id)), apply (which stores the configured secret again) and rekey")
                }
                let translation = SecretTranslation(old: rekeying.old.fingerprint(value), new: rekeying.new.fingerprint(value))
                rekeying.secrets[column.kind, default: [:]][row.id] = translation
                let fingerprint: SQLValue = row.fingerprint.map { .text(rekeying.translate($0, translation)) } ?? .null
                if row.fingerprint != nil { summary.fingerprints += 1 }
                let resealed = try rekeying.new.seal(value, address: row.address, attribute: column.attribute)
                try change(db, "UPDATE \(column.table) SET \(p)_ciphertext = ?1, \(p)_key_id = ?2, \(p)_fingerprint = ?3 WHERE id = ?4",
                           [.blob(resealed), .text(rekeying.new.keyID), fingerprint], id: row.id, table: column.table, what)
                summary.secrets += 1
            }
            progress(rows.count)
        }
    }

    // MARK: Row digests

    /// `kind ␀ row id` of a record.
    private static func recordKey(_ kind: String, _ rowID: Int64) -> String { "\(kind)\u{0}\(rowID)" }

    /// For records without applied values (written before orgctl kept them): the row as stored now,
    /// where its digest under the current key is the recorded one (the row is what orgctl applied).
    private static func legacyRecords(_ store: any SQLStore) throws -> [String: [Attribute]] {
        var wanted: Set<String> = []
        try store.db.forEach("SELECT kind, row_id FROM orgctl_resources WHERE applied IS NULL") { wanted.insert(recordKey($0.text(0), $0.int(1))) }
        guard !wanted.isEmpty else { return [:] }
        var clean: [String: [Attribute]] = [:]
        for stored in try store.readUnlocked().resources where stored.appliedDigest != nil && stored.appliedDigest == stored.digest {
            let key = recordKey(stored.resource.kind.rawValue, stored.rowID)
            if wanted.contains(key) { clean[key] = stored.resource.attributes }
        }
        return clean
    }

    /// PostgreSQL: the new digests are copied (binary COPY) into a temporary table and written by one
    /// UPDATE joined on the key. Half a million single-row UPDATEs, even pipelined, cost the server
    /// several times the join; SQLite updates row by row in process, which is as cheap as it gets.
    static let staging = "orgctl_rekeyed"
    static let stagingColumns = [Layout.Column(name: "kind", type: .text), Layout.Column(name: "row_id", type: .integer),
                                 Layout.Column(name: "digest", type: .text), Layout.Column(name: "applied", type: .blob)]

    private static func rekeyRecords(_ db: any SQLDatabase, staged: Bool, _ rekeying: Rekeying, legacy: [String: [Attribute]], _ summary: inout Summary,
                                     _ progress: (Int) -> Void) throws {
        if staged {
            try db.run("CREATE TEMPORARY TABLE \(staging) (kind text COLLATE \"C\" NOT NULL, row_id bigint NOT NULL, digest text NOT NULL, applied bytea) ON COMMIT DROP", [])
        }
        var oldDigester = ResourceDigester(key: rekeying.old), newDigester = ResourceDigester(key: rekeying.new)
        // A row value, so both engines walk the primary key from where the last chunk ended.
        let select = """
            SELECT kind, row_id, digest, applied FROM orgctl_resources
            WHERE (kind, row_id) > (?1, ?2) ORDER BY kind, row_id LIMIT ?3
            """
        var after: (kind: String, rowID: Int64) = ("", Int64.min)
        while true {
            var records: [(kind: String, rowID: Int64, digest: Digest?, applied: [UInt8]?)] = []
            try db.forEach(select, [.text(after.kind), .integer(after.rowID), .integer(Int64(chunk))]) { row in
                records.append((row.text(0), row.int(1), row.withText(2) { Digest(hex: $0) }, row.optionalBlob(3)))
            }
            guard let last = records.last else { break }
            after = (last.kind, last.rowID)
            var rows: [[SQLValue]] = []
            for record in records {
                let kind = ResourceKind(rawValue: record.kind)
                let translation = kind.flatMap { rekeying.secrets[$0]?[record.rowID] }
                let applied = record.applied.flatMap(AppliedValues.decode)
                var newDigest: Digest
                var newApplied: SQLValue = record.applied.map { .blob($0) } ?? .null
                if let kind, let applied, let digest = record.digest,
                   oldDigester.digest(resource(kind, applied), rowID: record.rowID) == digest {
                    let translated = rekeying.translate(applied, translation)
                    newDigest = newDigester.digest(resource(kind, translated), rowID: record.rowID)
                    newApplied = .blob(AppliedValues.encode(translated))
                } else if let kind, record.applied == nil, let current = legacy[recordKey(record.kind, record.rowID)] {
                    newDigest = newDigester.digest(resource(kind, rekeying.translate(current, translation)), rowID: record.rowID)
                } else {
                    // Applied values edited (or a digest that is not one) outside orgctl: nothing proves what
                    // orgctl applied. A digest that matches no row keeps the record drifted, as it may have been.
                    newDigest = rekeying.unknownDigest(record.digest, kind: record.kind, rowID: record.rowID)
                    if let applied { newApplied = .blob(AppliedValues.encode(rekeying.translate(applied, translation))) }
                    summary.unverifiable += 1
                }
                if staged {
                    rows.append([.text(record.kind), .integer(record.rowID), .text(newDigest.description), newApplied])
                } else {
                    try db.runChecked("UPDATE orgctl_resources SET digest = ?1, applied = ?2 WHERE kind = ?3 AND row_id = ?4",
                                      [.text(newDigest.description), newApplied, .text(record.kind), .integer(record.rowID)], rows: 1) { changed in
                        changedRows(changed, table: "orgctl_resources", "re-keying the digest of row \(record.rowID) of \(record.kind)")
                    }
                }
                summary.digests += 1
            }
            if staged { try db.bulkInsert(table: staging, columns: stagingColumns, rows: rows) }
            progress(records.count)
        }
        if staged {
            let changed = try db.run("""
                UPDATE orgctl_resources r SET digest = n.digest, applied = n.applied FROM \(staging) n WHERE r.kind = n.kind AND r.row_id = n.row_id
                """, [])
            guard changed == summary.digests else {
                throw changedRows(changed, table: "orgctl_resources", "re-keying \(summary.digests) row digests", expected: summary.digests)
            }
        }
    }

    private static func resource(_ kind: ResourceKind, _ attributes: [Attribute]) -> Resource {
        Resource(address: "", kind: kind, parent: nil, attributes: attributes)
    }

    // MARK: The audit entry

    private static func appendAuditEntry(_ store: any SQLStore, summary: Summary, newKey: StateKey, actor: String, source: String, time: String) throws -> Int64 {
        let head = try store.db.auditHead()
        // Names this rotation of this database, as a plan id names a plan.
        let id = String(Hex.encode(SHA256.hash(Array("orgctl rekey v1\u{0}\(store.databaseID)\u{0}\(head.hash)\u{0}\(summary.oldKeyID)\u{0}\(summary.newKeyID)".utf8))).prefix(16))
        let transaction = SQLStateTransaction(TransactionContext(db: store.db, key: newKey, databaseID: store.databaseID,
                                                                 changedSinceRead: { true }, read: { try store.readUnlocked() }))
        let sequence = try transaction.appendAudit { sequence in
            var before = JSONObject(), after = JSONObject()
            before["keyId"] = .string(summary.oldKeyID)
            after["keyId"] = .string(summary.newKeyID)
            after["secrets"] = .int(Int64(summary.secrets))
            after["digests"] = .int(Int64(summary.digests))
            return AuditEntry(sequence: sequence, time: time, actor: actor, source: source, planID: id, action: auditAction, address: auditAddress,
                              before: .object(before), after: .object(after), reason: "the state key was replaced")
        }
        // The subject rows the entry's tokens need (an actor that is an e-mail address) are written before the commit (PendingWrites).
        return sequence
    }

    // MARK: Helpers

    private static func change(_ db: any SQLDatabase, _ sql: String, _ values: [SQLValue], id: Int64, table: String, _ what: String) throws {
        try db.runChecked(sql, values + [.integer(id)], rows: 1) { changed in changedRows(changed, table: table, "re-encrypting \(what)") }
    }

    private static func changedRows(_ changed: Int, table: String, _ what: String, expected: Int = 1) -> StateError {
        StateError(.corrupt, "\(what) changed \(changed) rows of \(table) instead of \(expected): something other than orgctl acts on the state database's tables",
                   help: "look for triggers, views or rules on orgctl's tables (docs/state-schema.md, 'What the platform may write'), remove them, and rekey again")
    }
}

/// The two keys of one rekey, and the fingerprints of the secrets re-sealed so far.
final class Rekeying {
    let old: StateKey
    let new: StateKey
    /// Per kind and row id: the fingerprints of the row's secret under both keys.
    var secrets: [ResourceKind: [Int64: StateRekey.SecretTranslation]] = [:]

    init(old: StateKey, new: StateKey) {
        self.old = old
        self.new = new
    }

    /// A fingerprint under the new key: that of the same value when `fingerprint` is the row's
    /// secret's under the old key, else a stand-in that matches no value's (see ``unknownFingerprint(_:)``).
    func translate(_ fingerprint: String, _ translation: StateRekey.SecretTranslation?) -> String {
        if let translation, fingerprint == translation.old { return translation.new }
        return unknownFingerprint(fingerprint)
    }

    /// `attributes` with every secret fingerprint translated (other values are not keyed).
    func translate(_ attributes: [Attribute], _ translation: StateRekey.SecretTranslation?) -> [Attribute] {
        attributes.map { attribute in
            guard case .secret(let fingerprint) = attribute.value else { return attribute }
            return Attribute(attribute.name, .secret(fingerprint: translate(fingerprint, translation)))
        }
    }

    /// A fingerprint of no value orgctl can read (written outside orgctl, or of a value since
    /// replaced): keyed under the new key's marker key, so equal inputs stay equal (drift is kept
    /// exactly) and it equals no real fingerprint under the new key.
    func unknownFingerprint(_ fingerprint: String) -> String {
        "hmac-sha256:" + Hex.encode(HMACSHA256.authenticationCode(for: Array("fingerprint\u{0}\(fingerprint)".utf8), key: new.rekeyMarkerKey))
    }

    /// A digest for a record whose applied values cannot be proven: it matches no row.
    func unknownDigest(_ digest: Digest?, kind: String, rowID: Int64) -> Digest {
        let code = HMACSHA256.authenticationCode(for: Array("digest\u{0}\(kind)\u{0}\(rowID)\u{0}\(digest?.description ?? "")".utf8), key: new.rekeyMarkerKey)
        return code.withUnsafeBytes { Digest(bytes: $0) }
    }
}
