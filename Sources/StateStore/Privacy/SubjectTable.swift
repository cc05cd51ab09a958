import Audit
import Crypto

/// The data subjects of audit entry format 2 (docs/audit-chain.md section 8), in two tables:
/// `orgctl_subjects` (a random 128-bit subject id → the person's e-mail address) and
/// `orgctl_subject_values` (a random value token → the subject it belongs to and the value, e.g.
/// a guest's expiry). An erasure deletes a subject's rows from both; the entries keep their tokens.
/// Which entries name a subject is found in the entries themselves (`privacy export`).
final class SubjectTable {
    /// The tables of schema step 6 -> 7, as `CREATE TABLE name definition` (SQLite's; PostgreSQL's
    /// come from ``Layout``). Step 7 -> 8 drops `orgctl_subject_entries`.
    static let tables: [(name: String, definition: String)] = [
        ("orgctl_subjects", """
            (
                id    TEXT PRIMARY KEY,
                email TEXT NOT NULL UNIQUE
            ) STRICT, WITHOUT ROWID
            """),
        ("orgctl_subject_values", """
            (
                token   TEXT PRIMARY KEY,
                subject TEXT NOT NULL,
                value   TEXT NOT NULL,
                UNIQUE (subject, token)
            ) STRICT, WITHOUT ROWID
            """),
        ("orgctl_subject_entries", """
            (
                subject TEXT NOT NULL,
                seq     INTEGER NOT NULL,
                PRIMARY KEY (subject, seq)
            ) STRICT, WITHOUT ROWID
            """),
    ]

    private let db: any SQLDatabase
    /// E-mail address → subject id, as looked up or created in this transaction.
    private var ids: [String: String] = [:]
    /// Token → what it stands for (nil: erased or unknown), as read.
    private var resolvedTokens: [String: String?] = [:]

    init(db: any SQLDatabase) {
        self.db = db
    }

    /// Random bytes for new ids, drawn from the CSPRNG a few KiB at a time: one `RAND_bytes` call per
    /// 256 ids instead of one each (a first apply draws hundreds of thousands). Each id still takes
    /// 16 bytes of its own, never derived from the address.
    private var randomBytes: [UInt8] = []
    private var randomOffset = 0
    static let randomBatch = 4096

    /// A new random id: its 32 lowercase hex digits, and its first 64 bits (its sort key).
    private func randomID() throws -> (key: UInt64, hex: String) {
        if randomOffset + 16 > randomBytes.count {
            randomBytes = try SecureRandom.bytes(count: Self.randomBatch)
            randomOffset = 0
        }
        defer { randomOffset += 16 }
        let start = randomOffset
        let key = randomBytes[start..<(start + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (key, Hex.encode(randomBytes[start..<(start + 16)]))
    }

    /// Lookups of one address each before the whole table is read at once (a large first apply).
    static let lookupsBeforeLoadingAll = 256
    private var lookups = 0
    /// True once `ids` holds every row of `orgctl_subjects` (then an address not in it has no subject yet).
    private var loadedAll = false

    /// Addresses looked up (by ``prefetch(naming:)`` or one by one) that have no subject yet.
    private var absent: Set<String> = []
    /// Addresses per lookup query of ``prefetch(naming:)``.
    static let prefetchChunk = 200

    /// Looks up the subjects of the e-mail addresses in `texts` in a few queries, before the apply
    /// writes anything: a lookup of one address each, in the middle of the writes, would make the
    /// PostgreSQL store send what it has queued first (a read sees the transaction's writes),
    /// breaking its runs of inserts into single statements. More addresses than
    /// ``lookupsBeforeLoadingAll`` read the whole table once (and the texts are not searched further).
    func prefetch(naming texts: [String]) throws {
        guard !loadedAll else { return }
        var emails: Set<String> = []
        for text in texts where text.utf8.contains(UInt8(ascii: "@")) {
            // One subject per person, whatever the case an address is spelled in (privfix).
            for email in PersonalData.emailShapes(in: text).map(PersonalData.canonicalAddress) where ids[email] == nil && !absent.contains(email) {
                emails.insert(email)
                if emails.count > Self.lookupsBeforeLoadingAll {
                    try loadAll()
                    return
                }
            }
        }
        let missing = emails.sorted()
        guard !missing.isEmpty else { return }
        for start in stride(from: 0, to: missing.count, by: Self.prefetchChunk) {
            let chunk = missing[start..<min(start + Self.prefetchChunk, missing.count)]
            let placeholders = (1...chunk.count).map { "?\($0)" }.joined(separator: ", ")
            try db.forEach("SELECT email, id FROM orgctl_subjects WHERE email IN (\(placeholders))", chunk.map { .text($0) }) {
                ids[$0.text(0)] = $0.text(1)
            }
        }
        absent.formUnion(missing.filter { ids[$0] == nil })
    }

    private func loadAll() throws {
        try db.forEach("SELECT email, id FROM orgctl_subjects") { ids[$0.text(0)] = $0.text(1) }
        loadedAll = true
    }

    /// The subject id of `email`, created (random, never derived from the address) when it has none.
    func subjectID(_ email: String) throws -> String {
        // One subject per person, whatever the case an actor or a value spells the address in (privfix).
        let email = PersonalData.canonicalAddress(email)
        if let known = ids[email] { return known }
        if let stored = try storedSubjectID(email) { return stored }
        let (key, id) = try randomID()
        newSubjects.append((key, id, email))
        ids[email] = id
        scheduleFlush()
        return id
    }

    /// The id of a stored subject of `email` that `ids` does not hold yet, or nil.
    private func storedSubjectID(_ email: String) throws -> String? {
        if loadedAll || absent.contains(email) { return nil }
        if lookups >= Self.lookupsBeforeLoadingAll {
            try loadAll()
            return ids[email]
        }
        lookups += 1
        guard let stored = try db.first("SELECT id FROM orgctl_subjects WHERE email = ?1", [.text(email)], { $0.text(0) }) else {
            absent.insert(email)
            return nil
        }
        ids[email] = stored
        return stored
    }

    // Rows written by ``flush()``, sorted by key: random ids inserted in the order they are drawn would
    // touch the tables' b-trees at random (a first apply writes hundreds of thousands). Each row
    // carries the first 64 bits of its key as a number, so sorting compares integers, not strings.
    private var newSubjects: [(key: UInt64, id: String, email: String)] = []
    private var newValues: [(key: UInt64, token: String, subject: String, value: String)] = []

    /// True while the transaction holds a ``flush()`` back for its commit.
    private var flushScheduled = false

    /// Has the transaction write the buffered rows before it commits (``PendingWrites``): no writer
    /// has to remember to.
    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        db.pendingWrites.add { [self] in
            flushScheduled = false
            try flush()
        }
    }

    /// Writes the buffered subjects and values, each table in key order, with the
    /// backend's bulk insert (multi-row statements on SQLite, COPY on PostgreSQL); also before a read
    /// of them in the same transaction.
    func flush() throws {
        if !newSubjects.isEmpty {
            newSubjects.sort { $0.key != $1.key ? $0.key < $1.key : $0.id < $1.id }
            try insert("orgctl_subjects", newSubjects.map { [.text($0.id), .text($0.email)] })
        }
        if !newValues.isEmpty {
            newValues.sort { $0.key != $1.key ? $0.key < $1.key : $0.token < $1.token }
            try insert("orgctl_subject_values", newValues.map { [.text($0.token), .text($0.subject), .text($0.value)] })
        }
        (newSubjects, newValues) = ([], [])
    }

    /// Inserts `rows` (in the order of the table's columns in ``Layout``) into `table`.
    private func insert(_ table: String, _ rows: [[SQLValue]]) throws {
        guard let columns = Layout.table(table)?.columns else {
            throw StateError(.other, "internal error: \(table) is not in the layout", help: "report this as a bug")
        }
        try db.bulkInsert(table: table, columns: columns, rows: rows)
    }

    /// A new value token of `subject` standing for `value`.
    func valueID(subject: String, value: String) throws -> String {
        let (key, id) = try randomID()
        newValues.append((key, id, subject, value))
        scheduleFlush()
        return id
    }

    /// One pseudonymizer for every entry of the transaction (not one, with its two closures, per entry).
    private lazy var pseudonymizer = Pseudonymizer(subject: { [unowned self] in try subjectID($0) },
                                                   value: { [unowned self] in try valueID(subject: $0, value: $1) })

    /// `entry` in format 2.
    func pseudonymize(_ entry: AuditEntry) throws -> AuditEntry {
        try pseudonymizer.pseudonymize(entry)
    }

    /// `entry` with its tokens replaced by what they stand for, or the erased marker.
    func resolve(_ entry: AuditEntry) throws -> AuditEntry {
        guard entry.version >= 2 else { return entry }
        try flush()
        for (kind, sql) in [(PersonalData.TokenKind.subject, "SELECT email FROM orgctl_subjects WHERE id = ?1"),
                            (.value, "SELECT value FROM orgctl_subject_values WHERE token = ?1")] {
            for id in entry.tokens(kind) where resolvedTokens[PersonalData.token(kind, id)] == nil {
                resolvedTokens[PersonalData.token(kind, id)] = .some(try db.first(sql, [.text(id)]) { $0.text(0) })
            }
        }
        return entry.resolved { kind, id in resolvedTokens[PersonalData.token(kind, id)] ?? nil }
    }
}
