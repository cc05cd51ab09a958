import Audit
import Crypto

/// The data subjects of audit entry format 2 (docs/audit-chain.md section 8), in three tables:
/// `orgctl_subjects` (a random 128-bit subject id → the person's e-mail address),
/// `orgctl_subject_values` (a random value token → the subject it belongs to and the value, e.g.
/// a guest's expiry) and `orgctl_subject_entries` (subject → the sequences of the entries that
/// name it). An erasure deletes a subject's rows from all three; the entries keep their tokens.
final class SubjectTable {
    /// The tables of schema step 6 -> 7, as `CREATE TABLE name definition` (SQLite's; PostgreSQL's
    /// come from ``Layout``).
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

    static func randomID() throws -> String { Hex.encode(try SecureRandom.bytes(count: 16)) }

    /// Lookups of one address each before the whole table is read at once (a large first apply).
    static let lookupsBeforeLoadingAll = 256
    private var lookups = 0
    /// True once `ids` holds every row of `orgctl_subjects` (then an address not in it has no subject yet).
    private var loadedAll = false

    /// Addresses looked up by ``prefetch(_:)`` that have no subject yet.
    private var absent: Set<String> = []
    /// Addresses per lookup query of ``prefetch(_:)``.
    static let prefetchChunk = 200

    /// Looks up the subjects of `emails` in a few queries, before the apply writes anything: a lookup
    /// of one address each, in the middle of the writes, would make the PostgreSQL store send what it
    /// has queued first (a read sees the transaction's writes), breaking its runs of inserts into
    /// single statements. More addresses than ``lookupsBeforeLoadingAll`` read the whole table once.
    func prefetch(_ emails: Set<String>) throws {
        guard !loadedAll else { return }
        let missing = Set(emails.map(PersonalData.canonicalAddress)).filter { ids[$0] == nil && !absent.contains($0) }.sorted()
        guard !missing.isEmpty else { return }
        if missing.count > Self.lookupsBeforeLoadingAll {
            try loadAll()
            return
        }
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
        if absent.contains(email) {
            let id = try Self.randomID()
            newSubjects.append((id, email))
            ids[email] = id
            return id
        }
        if !loadedAll, lookups >= Self.lookupsBeforeLoadingAll {
            try loadAll()
            if let known = ids[email] { return known }
        }
        lookups += 1
        let id: String
        if !loadedAll, let stored = try db.first("SELECT id FROM orgctl_subjects WHERE email = ?1", [.text(email)], { $0.text(0) }) {
            id = stored
        } else {
            id = try Self.randomID()
            newSubjects.append((id, email))
        }
        ids[email] = id
        return id
    }

    // Rows written by ``flush()``, sorted by key: random ids inserted in the order they are drawn would
    // touch the tables' b-trees at random (a first apply writes hundreds of thousands).
    private var newSubjects: [(id: String, email: String)] = []
    private var newValues: [(token: String, subject: String, value: String)] = []
    private var newMentions: [(subject: String, sequence: Int64)] = []

    /// Writes the buffered subjects, values and mentions, each table in key order.
    func flush() throws {
        for row in newSubjects.sorted(by: { $0.id < $1.id }) {
            try db.write("INSERT INTO orgctl_subjects (id, email) VALUES (?1, ?2)", [.text(row.id), .text(row.email)])
        }
        for row in newValues.sorted(by: { $0.token < $1.token }) {
            try db.write("INSERT INTO orgctl_subject_values (token, subject, value) VALUES (?1, ?2, ?3)", [.text(row.token), .text(row.subject), .text(row.value)])
        }
        for row in newMentions.sorted(by: { ($0.subject, $0.sequence) < ($1.subject, $1.sequence) }) {
            try db.write("INSERT INTO orgctl_subject_entries (subject, seq) VALUES (?1, ?2)", [.text(row.subject), .integer(row.sequence)])
        }
        (newSubjects, newValues, newMentions) = ([], [], [])
    }

    /// The id of an existing subject of `email`, or nil.
    func existingSubjectID(_ email: String) throws -> String? {
        if let known = ids[email] { return known }
        return try db.first("SELECT id FROM orgctl_subjects WHERE email = ?1", [.text(email)]) { $0.text(0) }
    }

    /// A new value token of `subject` standing for `value`.
    func valueID(subject: String, value: String) throws -> String {
        let id = try Self.randomID()
        newValues.append((id, subject, value))
        return id
    }

    /// `entry` in format 2, with the subjects it names recorded against its sequence.
    func pseudonymize(_ entry: AuditEntry) throws -> AuditEntry {
        var pseudonymizer = Pseudonymizer(subject: { try self.subjectID($0) }, value: { try self.valueID(subject: $0, value: $1) })
        let result = try pseudonymizer.pseudonymize(entry)
        newMentions += pseudonymizer.mentions.map { ($0.subjectID, $0.sequence) }
        return result
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
