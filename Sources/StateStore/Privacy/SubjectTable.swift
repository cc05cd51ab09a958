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
    private var ids: [AddressKey: String] = [:]
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

    /// A new random id: its 32 lowercase hex digits, and its first and last 64 bits (its sort key).
    private func randomID() throws -> (key: UInt64, low: UInt64, hex: String) {
        if randomOffset + 16 > randomBytes.count {
            randomBytes = try SecureRandom.bytes(count: Self.randomBatch)
            randomOffset = 0
        }
        defer { randomOffset += 16 }
        let start = randomOffset
        let key = randomBytes[start..<(start + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = randomBytes[(start + 8)..<(start + 16)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (key, low, Hex.encode(randomBytes[start..<(start + 16)]))
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
            for email in PersonalData.emailShapes(in: text).map(PersonalData.canonicalAddress) where ids[AddressKey(email)] == nil && !absent.contains(email) {
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
                ids[AddressKey($0.text(0))] = $0.text(1)
            }
        }
        absent.formUnion(missing.filter { ids[AddressKey($0)] == nil })
    }

    private func loadAll() throws {
        try db.forEach("SELECT email, id FROM orgctl_subjects") { ids[AddressKey($0.text(0))] = $0.text(1) }
        loadedAll = true
    }

    /// The subject id of `email`, created (random, never derived from the address) when it has none.
    func subjectID(_ email: String) throws -> String {
        // One subject per person, whatever the case an actor or a value spells the address in (privfix).
        let key = AddressKey(PersonalData.canonicalAddress(email))
        if !loadedAll {
            if let known = ids[key] { return known }
            if let stored = try storedSubjectID(key) {
                ids[key] = stored
                return stored
            }
        }
        // One probe of the table whether the address is known or not (`_modify`: a new id is stored in the
        // slot found; making it touches nothing but the new rows).
        return try Self.found(&ids[key]) { try newSubject(key.address) }
    }

    /// The value in `slot`, or `make()`'s, stored there.
    private static func found(_ slot: inout String?, _ make: () throws -> String) rethrows -> String {
        if let known = slot { return known }
        let made = try make()
        slot = made
        return made
    }

    /// A new subject of `email`, its row held back until the transaction commits.
    private func newSubject(_ email: String) throws -> String {
        let (key, low, id) = try randomID()
        newSubjects.append((key, low, id, email))
        scheduleFlush()
        return id
    }

    /// The id of a stored subject of `key`'s address that `ids` does not hold yet, or nil.
    private func storedSubjectID(_ key: AddressKey) throws -> String? {
        let email = key.address
        if loadedAll || absent.contains(email) { return nil }
        if lookups >= Self.lookupsBeforeLoadingAll {
            try loadAll()
            return ids[key]
        }
        lookups += 1
        guard let stored = try db.first("SELECT id FROM orgctl_subjects WHERE email = ?1", [.text(email)], { $0.text(0) }) else {
            absent.insert(email)
            return nil
        }
        return stored
    }

    // Rows written by ``flush()``, sorted by key: random ids inserted in the order they are drawn would
    // touch the tables' b-trees at random (a first apply writes hundreds of thousands). Each row
    // carries its id's two 64-bit halves as numbers, so sorting compares integers, not strings.
    private var newSubjects: [(key: UInt64, low: UInt64, id: String, email: String)] = []
    private var newValues: [(key: UInt64, low: UInt64, token: String, subject: String, value: String)] = []

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
        let (subjects, values) = (newSubjects, newValues)
        if !subjects.isEmpty {
            try db.deferringIndexes(of: "orgctl_subjects", rows: subjects.count) { try insert("orgctl_subjects", Self.keyOrder(subjects.map { ($0.key, $0.low) }).map { [.text(subjects[$0].id), .text(subjects[$0].email)] }) }
        }
        if !values.isEmpty {
            try insert("orgctl_subject_values", Self.keyOrder(values.map { ($0.key, $0.low) }).map {
                [.text(values[$0].token), .text(values[$0].subject), .text(values[$0].value)]
            })
        }
        (newSubjects, newValues) = ([], [])
    }

    /// The positions of `keys` (an id's two 64-bit halves) in ascending order of the ids, which is their hex
    /// text's order. Sorting numbers and positions moves no strings (each move of a row with its strings
    /// retained and released them, in memory scattered over the whole apply).
    static func keyOrder(_ keys: [(UInt64, UInt64)]) -> [Int] {
        var order = keys.indices.map { (keys[$0].0, keys[$0].1, $0) }
        order.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        return order.map(\.2)
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
        let (key, low, id) = try randomID()
        newValues.append((key, low, id, subject, value))
        scheduleFlush()
        return id
    }

    /// One pseudonymizer for every entry of the transaction (not one, with its two closures, per entry).
    private lazy var pseudonymizer = Pseudonymizer(subject: { [unowned self] in try subjectID($0) },
                                                   value: { [unowned self] in try valueID(subject: $0, value: $1) })

    /// `entry` in format 2 (taken over, not copied).
    func pseudonymize(_ entry: consuming AuditEntry) throws -> AuditEntry {
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

/// An e-mail address as a key of ``SubjectTable``'s map, with its hash computed once, by the
/// standard library's seeded hasher (so addresses chosen to collide cannot be crafted): a probe
/// compares the stored hashes and reads an address's bytes only when they match, and growing the
/// table rehashes the stored hashes without reading the addresses again. (With `String` keys,
/// each probe of a 210,000-address map compared the address with another one in memory far away.)
struct AddressKey: Hashable {
    let address: String
    let hash: Int

    init(_ address: String) {
        self.address = address
        hash = address.hashValue
    }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    static func == (lhs: AddressKey, rhs: AddressKey) -> Bool { lhs.hash == rhs.hash && lhs.address == rhs.address }
}
