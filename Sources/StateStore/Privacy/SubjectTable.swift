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
    private var known = SubjectMap()
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

    /// A new random id.
    private func randomID() throws -> SubjectID {
        if randomOffset + 16 > randomBytes.count {
            randomBytes = try SecureRandom.bytes(count: Self.randomBatch)
            randomOffset = 0
        }
        defer { randomOffset += 16 }
        return SubjectID(bytes: randomBytes, at: randomOffset)
    }

    /// Lookups of one address each before the whole table is read at once (a large first apply).
    static let lookupsBeforeLoadingAll = 256
    private var lookups = 0
    /// True once `known` holds every row of `orgctl_subjects` (then an address not in it has no subject yet).
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
            for email in PersonalData.emailShapes(in: text).map(PersonalData.canonicalAddress) where known.id(of: email) == nil && !absent.contains(email) {
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
            try db.forEach("SELECT email, id FROM orgctl_subjects WHERE email IN (\(placeholders))", chunk.map { .text($0) }, learn)
        }
        absent.formUnion(missing.filter { known.id(of: $0) == nil })
    }

    private func loadAll() throws {
        try db.forEach("SELECT email, id FROM orgctl_subjects", [], learn)
        loadedAll = true
    }

    /// Adds a row of `orgctl_subjects` (`email, id`) to the known subjects, read in place.
    private func learn(_ row: any SQLRow) throws {
        guard let id = row.withText(1, { SubjectID(hex: $0) }) else {
            // The database is not orgctl's alone: a token made of this id would not verify.
            throw StateError(.other, "orgctl_subjects holds a subject id that is not 32 lowercase hex digits",
                             help: "the table was changed outside orgctl: restore it from a backup, or correct the id to the one the audit entries name (docs/audit-chain.md section 8)")
        }
        row.withText(0) { known.addIfAbsent($0, id: id) }
    }

    /// The subject id of `email`, created (random, never derived from the address) when it has none.
    func subjectID(_ email: String) throws -> SubjectID {
        // One subject per person, whatever the case an actor or a value spells the address in (privfix).
        var address = PersonalData.canonicalAddress(email)
        // One probe of the table whether the address is known or not: a new subject takes the slot found.
        switch address.withUTF8({ known.probe(UnsafeRawBufferPointer($0)) }) {
        case .found(let position):
            return known.ids[position]
        case .absent(let slot, let tag) where loadedAll:
            return try newSubject(address, slot: slot, tag: tag)
        case .absent:
            if let stored = try storedSubjectID(address) { return stored }
            guard case .absent(let slot, let tag) = address.withUTF8({ known.probe(UnsafeRawBufferPointer($0)) }) else {
                throw StateError(.other, "internal error: a subject appeared while it was looked up", help: "report this as a bug")
            }
            return try newSubject(address, slot: slot, tag: tag)
        }
    }

    /// A new subject of `address` in `slot` of the known ones, its row held back until the transaction commits.
    private func newSubject(_ address: String, slot: Int, tag: UInt32) throws -> SubjectID {
        var address = address
        let id = try randomID()
        newSubjects.append(address.withUTF8 { known.add(UnsafeRawBufferPointer($0), id: id, at: slot, tag: tag) })
        scheduleFlush()
        return id
    }

    /// The id of a stored subject of `address` that `known` does not hold yet (now held), or nil.
    private func storedSubjectID(_ address: String) throws -> SubjectID? {
        if loadedAll || absent.contains(address) { return nil }
        if lookups >= Self.lookupsBeforeLoadingAll {
            try loadAll()
            return known.id(of: address)
        }
        lookups += 1
        try db.forEach("SELECT email, id FROM orgctl_subjects WHERE email = ?1", [.text(address)], learn)
        guard let stored = known.id(of: address) else {
            absent.insert(address)
            return nil
        }
        return stored
    }

    // Rows written by ``flush()``, sorted by id: random ids inserted in the order they are drawn would
    // touch the tables' b-trees at random (a first apply writes hundreds of thousands).
    /// The positions in `known` of the subjects this transaction made and has not written yet.
    private var newSubjects: [Int] = []
    private var newValues: [(id: SubjectID, subject: SubjectID, value: String)] = []

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

    /// Writes the buffered subjects and values, each table in key order, with the backend's bulk
    /// insert (multi-row statements on SQLite, COPY on PostgreSQL), each value bound from its bytes;
    /// also before a read of them in the same transaction.
    func flush() throws {
        // Sorted as (id, position) pairs side by side, not positions compared through the map.
        let subjects = newSubjects.map { (id: known.ids[$0], position: $0) }.sorted { $0.id < $1.id }
        let values = newValues.sorted { $0.id < $1.id }
        if !subjects.isEmpty {
            try db.deferringIndexes(of: "orgctl_subjects", rows: subjects.count) {
                try insert("orgctl_subjects", count: subjects.count) { index, value in
                    try Self.withHex(subjects[index].id, value)
                    try known.withAddress(at: subjects[index].position, value)
                }
            }
        }
        if !values.isEmpty {
            try insert("orgctl_subject_values", count: values.count) { index, value in
                try Self.withHex(values[index].id, value)
                try Self.withHex(values[index].subject, value)
                var text = values[index].value
                try text.withUTF8 { try value(UnsafeRawBufferPointer($0)) }
            }
        }
        (newSubjects, newValues) = ([], [])
    }

    /// `body` applied to the 32 hex digits of `id`, written on the stack.
    private static func withHex(_ id: SubjectID, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: SubjectID.digits) { digits in
            id.write(into: digits, at: 0)
            try body(UnsafeRawBufferPointer(digits))
        }
    }

    /// Inserts `count` rows (values in the order of the table's columns in ``Layout``, handed over by `row`) into `table`.
    private func insert(_ table: String, count: Int, row: (Int, (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        guard let columns = Layout.table(table)?.columns else {
            throw StateError(.other, "internal error: \(table) is not in the layout", help: "report this as a bug")
        }
        try db.bulkInsertText(table: table, columns: columns, count: count, row: row)
    }

    /// A new value token of `subject` standing for `value`.
    func valueID(subject: SubjectID, value: String) throws -> String {
        let id = try randomID()
        newValues.append((id, subject, value))
        scheduleFlush()
        return id.hex
    }

    /// One pseudonymizer for every entry of the transaction (not one, with its two closures, per entry).
    private lazy var pseudonymizer = Pseudonymizer(subject: { [unowned self] in try subjectID($0) },
                                                   value: { [unowned self] in try valueID(subject: $0, value: $1) })

    /// `entry` in format 2 (taken over, not copied).
    func pseudonymize(_ entry: consuming AuditEntry) throws -> AuditEntry {
        try pseudonymizer.pseudonymize(consume entry)
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

