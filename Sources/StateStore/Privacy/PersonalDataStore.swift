public import Audit
import Crypto
import Spec

/// Reads audit entries of format 2 back with what their tokens stand for (docs/audit-chain.md 8).
public struct SubjectResolver: Sendable {
    var subjects: [String: String] = [:]
    var values: [String: String] = [:]

    public init() {}

    /// `entry` with every token replaced by the person's value, or `[erased]` for an erased one.
    public func resolve(_ entry: AuditEntry) -> AuditEntry {
        entry.resolved { kind, id in kind == .subject ? subjects[id] : values[id] }
    }
}

/// Everything a state holds about one person (`orgctl privacy export`).
public struct PersonalDataExport: Sendable {
    public struct Membership: Sendable {
        public var address: String
        public var tenant: String
        public var role: String
        public var expires: String?
    }

    public struct TeamMembership: Sendable {
        public var address: String
        public var tenant: String
        public var team: String
        public var role: String
    }

    public struct Event: Sendable {
        public var id: String
        public var webhook: String
        public var type: String
        public var status: String
        public var auditSequence: Int64
        public var payload: [UInt8]
    }

    public var email: String
    public var memberships: [Membership] = []
    public var teams: [TeamMembership] = []
    /// The entries that name the person, oldest first, with every token resolved.
    public var auditEntries: [AuditEntry] = []
    /// Webhook events (any status) whose payload holds the e-mail address.
    public var webhookEvents: [Event] = []

    public var isEmpty: Bool { memberships.isEmpty && teams.isEmpty && auditEntries.isEmpty && webhookEvents.isEmpty }
}

/// Who erases, and whom: one `orgctl privacy forget` run.
public struct ErasureRequest: Sendable {
    public enum Whom: Sendable {
        case emails([String])
        /// Everyone in no tenant whose last membership removal is before this date (`YYYY-MM-DD`).
        case departedBefore(String)
    }

    public var whom: Whom
    public var actor: String
    public var source: String
    /// RFC 3339 UTC, second precision.
    public var time: String

    /// The addresses asked for (none for a retention run).
    var emails: [String] {
        if case .emails(let emails) = whom { emails } else { [] }
    }

    public init(whom: Whom, actor: String, source: String, time: String) {
        self.whom = whom
        self.actor = actor
        self.source = source
        self.time = time
    }
}

/// Why an erasure was refused; nothing was written.
public enum ErasureRefusal: Error, Sendable {
    /// The state still holds the person: the addresses that name them.
    case stillPresent(email: String, addresses: [String])
    /// Audit entries of format 1 (written before subject tokens) hold the address in their hashed bytes.
    case inPlainEntries(email: String, sequences: [Int64])
    /// Nothing is known about the person: never recorded, or forgotten already.
    case unknown(email: String)
    /// The database predates the subject table (schema 7).
    case olderSchema
    /// The audit chain is broken: nothing is appended to it.
    case auditBroken(ChainBreak)
    /// The erasure's own entry would name one of the people to forget: its `field` (actor or source) is `value`.
    case namedByErasure(field: String, value: String)
    /// Once orgctl erased what it manages, a row of `table` still holds the address (a table of the platform's, a
    /// row written behind orgctl's back).
    case heldElsewhere(email: String, table: String)
}

/// What an erasure did.
public struct ErasureOutcome: Sendable {
    /// How many people were forgotten.
    public var forgotten = 0
    /// Webhook events and delivery records whose copies of the address were redacted.
    public var redactedEvents = 0
    /// People a retention run left alone because format 1 entries name them (docs/audit-chain.md 8.6).
    public var keptInPlainEntries = 0
    /// The audit entry that records the erasure (0 when nobody was forgotten).
    public var auditSequence: Int64 = 0
    /// What the backend did to the database files afterwards, one line each.
    public var scrubbing: [String] = []
    /// The addresses forgotten, for the backend's check of its files; never printed.
    var emails: [String] = []
}

/// Personal data in the state: reading entries back, `privacy export` and `privacy forget`.
public protocol PersonalDataStore: AnyObject {
    /// Every subject and value token of the state, to print audit entries with.
    func subjectResolver() throws(StateError) -> SubjectResolver
    /// Everything the state holds about `email`, in one snapshot.
    func personalData(email: String) throws(StateError) -> PersonalDataExport
    /// Erases the people of `request` in one transaction under the apply lock, then removes what
    /// the database files may still hold of them (backend-specific). Throws ``ErasureRefusal``
    /// (nothing written) or ``StateError``.
    func forget(_ request: ErasureRequest) throws -> ErasureOutcome
}

/// How a backend has the database look for a byte string inside the stored audit entries.
protocol AuditEntrySearch {
    /// A condition, in the backend's SQL, that holds when the column `entry` contains the blob bound to
    /// `?parameter` (SQLite's `instr`, PostgreSQL's `position` on `bytea`).
    static func entryHolds(parameter: Int) -> String
}

extension SQLStore where Self: AuditEntrySearch {
    func subjectResolverShared() throws(StateError) -> SubjectResolver {
        var resolver = SubjectResolver()
        if isUnadopted { return resolver }
        try inSnapshot("reading the subject table") {
            try db.forEach("SELECT id, email FROM orgctl_subjects") { resolver.subjects[$0.text(0)] = $0.text(1) }
            try db.forEach("SELECT token, value FROM orgctl_subject_values") { resolver.values[$0.text(0)] = $0.text(1) }
        }
        return resolver
    }

    func personalDataShared(email: String) throws(StateError) -> PersonalDataExport {
        var export = PersonalDataExport(email: email)
        if isUnadopted { return export }
        let address = PersonalData.canonicalAddress(email)
        let matcher = AddressMatcher([address])
        try inSnapshot("reading personal data") {
            let state = try readUnlocked()
            for stored in state.resources {
                let resource = stored.resource
                guard Self.memberEmail(resource) == address else { continue }
                let parts = resource.address.split(separator: "/").map(String.init)
                func text(_ name: String) -> String? { if case .string(let value) = resource[name] { value } else { nil } }
                if resource.kind == .member {
                    export.memberships.append(.init(address: resource.address, tenant: parts[1], role: text("role") ?? "", expires: text("expires")))
                } else if resource.kind == .teamMember {
                    export.teams.append(.init(address: resource.address, tenant: parts[1], team: parts[3], role: text("role") ?? ""))
                }
            }
            // Entries of format 1 hold the address in plain text; entries of format 2 carry the tokens of its subjects.
            let boundary = try firstPseudonymousSequence()
            var found: [Int64: AuditEntry] = [:]
            for sequence in try plainMentions(of: matcher, before: boundary)[address] ?? [] {
                guard let bytes = try db.first("SELECT entry FROM orgctl_audit WHERE seq = ?1", [.integer(sequence)], { $0.blob(0) }),
                    let entry = try? AuditEntry(canonicalBytes: bytes), entry.version < 2, matcher.matches(bytes)
                else { continue }
                found[sequence] = entry
            }
            // The database finds the entries whose bytes hold a subject's token text; an entry is the person's only
            // when its own tokens say so (the text `~~s:…`, a literal, holds a token's text and is none).
            // One scan for all of the person's subjects (an actor's text such as `bob@x.com via ci` is a subject of
            // its own, and there may be many), not one per subject; past a few, the tokens are looked up here.
            let subjects = Set(try subjects(naming: matcher)[address] ?? [])
            let candidates = subjects.count <= Self.needlesPerScan
                ? try entries(holdingAny: subjects.sorted().map { Array(PersonalData.token(.subject, $0).utf8) }, from: boundary)
                : try entries(namingAnyOf: subjects, from: boundary)
            for entry in candidates where entry.version >= 2 && !entry.tokens(.subject).isDisjoint(with: subjects) {
                found[entry.sequence] = entry
            }
            let table = SubjectTable(db: db)
            for sequence in found.keys.sorted() { export.auditEntries.append(try table.resolve(found[sequence]!)) }
            export.webhookEvents = try events(naming: matcher).filter { $0.inPayload }.map(\.event)
        }
        return export
    }

    /// The entries from `sequence` on whose stored bytes hold any of `needles`, by sequence, found by the
    /// database (a scan of the log that hands over only the entries that match; about 0.25 s for the 480,000
    /// entries of the 10k-tenant bench on SQLite), one scan for up to ``needlesPerScan`` needles: candidates,
    /// which the caller confirms from each entry's own content. Entries that do not parse are left out, as
    /// every reader of personal data leaves them.
    func entries(holdingAny needles: [[UInt8]], from sequence: Int64) throws -> [AuditEntry] {
        var entries: [Int64: AuditEntry] = [:]
        for start in stride(from: 0, to: needles.count, by: Self.needlesPerScan) {
            let chunk = needles[start..<min(start + Self.needlesPerScan, needles.count)]
            let condition = (0..<chunk.count).map { Self.entryHolds(parameter: $0 + 2) }.joined(separator: " OR ")
            try db.forEach("SELECT entry FROM orgctl_audit WHERE seq >= ?1 AND (\(condition))",
                           [.integer(sequence)] + chunk.map { .blob($0) }) { row in
                if let entry = try? AuditEntry(canonicalBytes: row.blob(0)) { entries[entry.sequence] = entry }
            }
        }
        return entries.keys.sorted().map { entries[$0]! }
    }

    /// Needles in one statement's condition: the database compares each entry with every one, so past a few
    /// (10k tenants: 0.25 s a needle) ``entries(namingAnyOf:from:)`` reads the log and looks the tokens up instead.
    static var needlesPerScan: Int { 4 }

    /// The entries from `sequence` on whose stored bytes hold the token text `~s:<id>` of one of `subjects`, by
    /// sequence: every entry read once and each `~s:` in it looked up in a set, whatever the number of subjects
    /// (candidates, as ``entries(holdingAny:from:)`` gives).
    func entries(namingAnyOf subjects: Set<String>, from sequence: Int64) throws -> [AuditEntry] {
        let wanted = Set(subjects.map { Array($0.utf8) })
        var entries: [AuditEntry] = []
        try db.forEach("SELECT entry FROM orgctl_audit WHERE seq >= ?1 ORDER BY seq", [.integer(sequence)]) { row in
            let bytes = row.blob(0)
            var i = 0
            var named = false
            while !named, i + 35 <= bytes.count {
                if bytes[i] == UInt8(ascii: "~"), bytes[i + 1] == UInt8(ascii: "s"), bytes[i + 2] == UInt8(ascii: ":") {
                    named = wanted.contains(Array(bytes[(i + 3)..<(i + 35)]))
                }
                i += 1
            }
            if named, let entry = try? AuditEntry(canonicalBytes: bytes) { entries.append(entry) }
        }
        return entries
    }

    /// The subjects of each address of `matcher`: the subject of the address itself, one spelled in another
    /// case (before subjects were canonical), and one whose text holds the address (an actor such as
    /// `bob@x.com via ci`). One read of the subject table.
    func subjects(naming matcher: AddressMatcher) throws -> [String: [String]] {
        var found: [String: [String]] = [:]
        try db.forEach("SELECT id, email FROM orgctl_subjects") { row in
            let text = row.text(1)
            var named = matcher.found(in: text)
            let whole = PersonalData.canonicalAddress(text)
            if matcher.addresses.contains(whole) { named.insert(whole) }
            for address in named { found[address, default: []].append(row.text(0)) }
        }
        return found.mapValues { $0.sorted() }
    }

    /// Every webhook event whose payload or last error holds an address of `matcher`, any status, by
    /// audit sequence: the whole outbox is read (a bounded scan), since the events of an entry are not
    /// all that can name a person.
    func events(naming matcher: AddressMatcher) throws -> [(event: PersonalDataExport.Event, lastError: String?, inPayload: Bool)] {
        var found: [(event: PersonalDataExport.Event, lastError: String?, inPayload: Bool)] = []
        try db.forEach("SELECT id, webhook, event_type, status, audit_seq, payload, last_error FROM orgctl_outbox") { row in
            let payload = row.blob(5), lastError = row.optionalText(6)
            let inPayload = matcher.matches(payload)
            guard inPayload || lastError.map({ matcher.matches(Array($0.utf8)) }) == true else { return }
            found.append((.init(id: row.text(0), webhook: row.text(1), type: row.text(2), status: row.text(3), auditSequence: row.int(4), payload: payload),
                          lastError, inPayload))
        }
        return found.sorted { ($0.event.auditSequence, $0.event.id) < ($1.event.auditSequence, $1.event.id) }
    }

    /// Replaces every address of `matcher` by `[erased]` in the webhook events (payload, last error) and in
    /// every delivery record (error, response body) that holds one; returns the ids of the events changed.
    func redactEvents(naming matcher: AddressMatcher) throws -> Set<String> {
        var changed: Set<String> = []
        for (event, lastError, _) in try events(naming: matcher) {
            try db.run("UPDATE orgctl_outbox SET payload = ?2, last_error = ?3 WHERE id = ?1",
                       [.text(event.id), .blob(matcher.redacting(event.payload) ?? event.payload),
                        lastError.map { .text(matcher.redacting($0) ?? $0) } ?? .null])
            changed.insert(event.id)
        }
        var attempts: [(event: String, attempt: Int64, error: String?, response: [UInt8]?)] = []
        try db.forEach("SELECT event_id, attempt, error, response FROM orgctl_outbox_attempts") { row in
            let error = row.optionalText(2), response = row.optionalBlob(3)
            guard error.map({ matcher.matches(Array($0.utf8)) }) == true || response.map(matcher.matches) == true else { return }
            attempts.append((row.text(0), row.int(1), error, response))
        }
        for attempt in attempts {
            try db.run("UPDATE orgctl_outbox_attempts SET error = ?3, response = ?4 WHERE event_id = ?1 AND attempt = ?2",
                       [.text(attempt.event), .integer(attempt.attempt),
                        attempt.error.map { .text(matcher.redacting($0) ?? $0) } ?? .null,
                        attempt.response.map { .blob(matcher.redacting($0) ?? $0) } ?? .null])
            changed.insert(attempt.event)
        }
        return changed
    }

    /// The first entry of format 2 (entries before it are format 1): entries are written in format 2
    /// from schema 7 on, so the formats never interleave, and a binary search finds the boundary.
    func firstPseudonymousSequence() throws -> Int64 {
        let head = try db.auditHead().sequence
        func isVersion2(_ sequence: Int64) throws -> Bool {
            try db.first("SELECT entry FROM orgctl_audit WHERE seq = ?1", [.integer(sequence)]) { $0.blob(0).suffix(6).elementsEqual(#""v":2}"#.utf8) } ?? true
        }
        var (low, high) = (Int64(1), head + 1)
        while low < high {
            let middle = low + (high - low) / 2
            if try isVersion2(middle) { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// The format 1 entries (before `boundary`) that hold each address of `matcher`, in any case.
    func plainMentions(of matcher: AddressMatcher, before boundary: Int64) throws -> [String: [Int64]] {
        guard boundary > 1, !matcher.addresses.isEmpty else { return [:] }
        var found: [String: [Int64]] = [:]
        try db.forEach("SELECT seq, entry FROM orgctl_audit WHERE seq < ?1 ORDER BY seq", [.integer(boundary)]) { row in
            for address in matcher.found(in: row.blob(1)) { found[address, default: []].append(row.int(0)) }
        }
        return found
    }

    /// The canonical e-mail address of a member or team member (the last segment of its address), or nil.
    static func memberEmail(_ resource: Resource) -> String? {
        guard resource.kind == .member || resource.kind == .teamMember, let slash = resource.address.utf8.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        return PersonalData.canonicalAddress(String(resource.address[resource.address.index(after: slash)...]))
    }

    /// The addresses of the state that name each address of `matcher` (as a member, or inside a value).
    static func addresses(naming matcher: AddressMatcher, in state: StoredState) -> [String: [String]] {
        var found: [String: [String]] = [:]
        for stored in state.resources {
            let resource = stored.resource
            var named = matcher.found(in: resource.address)
            if let email = Self.memberEmail(resource), matcher.addresses.contains(email) { named.insert(email) }
            for attribute in resource.attributes {
                switch attribute.value {
                case .string(let text): named.formUnion(matcher.found(in: text))
                case .list(let items): for item in items { named.formUnion(matcher.found(in: item)) }
                default: break
                }
            }
            for address in named { found[address, default: []].append(resource.address) }
        }
        return found.mapValues { $0.sorted() }
    }

    /// `beforeCommit` gets, once everything orgctl manages is erased, the addresses being forgotten: a backend
    /// looks for copies left in rows orgctl does not manage, and throws ``ErasureRefusal/heldElsewhere(email:table:)``.
    func forgetShared(_ request: ErasureRequest, beforeWriting: () throws -> Void,
                      beforeCommit: (AddressMatcher) throws -> Void = { _ in }) throws -> ErasureOutcome {
        // An older schema with the subject tables is migrated by the erasure's transaction (opened with `defersMigration`).
        guard try schemaVersion > Schema.subjectTablesMigration else { throw ErasureRefusal.olderSchema }
        try beforeWriting()
        // The transaction turns what it throws into a StateError: a refusal (thrown before anything is written,
        // and rolled back with the lock row) is kept aside and thrown as it is.
        var refusal: ErasureRefusal?
        do {
            return try inWriteTransaction("erasing personal data") { () throws -> ErasureOutcome in
                do {
                    return try erase(request, beforeCommit: beforeCommit)
                } catch let refused as ErasureRefusal {
                    refusal = refused
                    throw refused
                }
            }
        } catch {
            if let refusal { throw refusal }
            throw error
        }
    }

    private func erase(_ request: ErasureRequest, beforeCommit: (AddressMatcher) throws -> Void) throws -> ErasureOutcome {
        do {
            try checkSchemaObjectsForWrite()
            try checkKey()
            if case .broken(let broken) = try db.checkAuditChain() { throw ErasureRefusal.auditBroken(broken) }
            let state = try readUnlocked()
            var addresses: [String] = []
            switch request.whom {
            case .emails(let emails):
                addresses = emails.map(PersonalData.canonicalAddress)
                let naming = Self.addresses(naming: AddressMatcher(addresses), in: state)
                if let (email, found) = zip(emails, addresses).lazy.compactMap({ email, address in naming[address].map { (email, $0) } }).first {
                    throw ErasureRefusal.stillPresent(email: email, addresses: found)
                }
            case .departedBefore(let date):
                addresses = try departed(before: date, state: state)
            }
            var outcome = ErasureOutcome()
            let plain = try plainMentions(of: AddressMatcher(addresses), before: firstPseudonymousSequence())
            if case .departedBefore = request.whom {
                // Retention erases whom it can: people named by format 1 entries are kept, and counted.
                outcome.keptInPlainEntries = addresses.filter { plain[$0] != nil }.count
                addresses.removeAll { plain[$0] != nil }
            } else if let (email, address) = zip(request.emails, addresses).first(where: { plain[$0.1] != nil }), let sequences = plain[address] {
                throw ErasureRefusal.inPlainEntries(email: email, sequences: sequences)
            }
            let matcher = AddressMatcher(addresses)
            let subjects = try subjects(naming: matcher)
            for (email, address) in zip(request.emails, addresses) where subjects[address] == nil { throw ErasureRefusal.unknown(email: email) }
            // The erasure's own entry is written through the subject table: an actor or source naming one of them
            // would store the address again, in this transaction.
            for (field, text) in [("actor", request.actor), ("source", request.source)] {
                let named = matcher.found(in: text).union(matcher.addresses.contains(PersonalData.canonicalAddress(text)) ? [PersonalData.canonicalAddress(text)] : [])
                if !named.isEmpty { throw ErasureRefusal.namedByErasure(field: field, value: text) }
            }

            // Events are found by their payloads, not through their entries: an event may name a person its entry does not.
            outcome.redactedEvents = try redactEvents(naming: matcher).count
            for subject in Set(subjects.values.joined()).sorted() {
                try db.run("DELETE FROM orgctl_subject_values WHERE subject = ?1", [.text(subject)])
                try db.run("DELETE FROM orgctl_subjects WHERE id = ?1", [.text(subject)])
            }
            do {
                try beforeCommit(matcher)
            } catch ErasureRefusal.heldElsewhere(let address, let table) {
                // Named as the request wrote it.
                throw ErasureRefusal.heldElsewhere(email: zip(request.emails, addresses).first { $0.1 == address }?.0 ?? address, table: table)
            }
            let people = addresses
            outcome.emails = addresses
            outcome.forgotten = people.count
            guard !people.isEmpty else { return outcome }
            // The erasure is audited without naming anyone: no address, no subject id (which would tie
            // this entry to the tokens of the erased entries), no count of their entries.
            let transaction = SQLStateTransaction(TransactionContext(db: db, key: key, databaseID: databaseID, changedSinceRead: { true },
                                                                     read: { try self.readUnlocked() }))
            let reason: String
            switch request.whom {
            case .emails: reason = "erasure request of a data subject"
            case .departedBefore(let date): reason = "retention: people who left every tenant before \(date)"
            }
            let planID = "erasure-" + Hex.encode(try SecureRandom.bytes(count: 8))
            outcome.auditSequence = try transaction.appendAudit { sequence in
                AuditEntry(sequence: sequence, time: request.time, actor: request.actor, source: request.source, planID: planID,
                           action: "erase", address: "privacy", before: nil, after: ["people": .int(Int64(people.count))], reason: reason)
            }
            return outcome
        }
    }

    /// Everyone the subject table knows whom the state no longer names (a member of no tenant, in no
    /// stored value) and whose last membership removal (a `delete` entry of a tenant member address
    /// whose token is one of their subjects) is before `date`: their canonical addresses.
    func departed(before date: String, state: StoredState) throws -> [String] {
        var present: Set<String> = []
        for stored in state.resources {
            let resource = stored.resource
            if let email = Self.memberEmail(resource) { present.insert(email) }
            present.formUnion(AddressMatcher.addresses(in: resource.address))
            for attribute in resource.attributes {
                switch attribute.value {
                case .string(let text): present.formUnion(AddressMatcher.addresses(in: text))
                case .list(let items): for item in items { present.formUnion(AddressMatcher.addresses(in: item)) }
                default: break
                }
            }
        }
        var subjects: [(String, String)] = []
        try db.forEach("SELECT id, email FROM orgctl_subjects") { subjects.append(($0.text(0), PersonalData.canonicalAddress($0.text(1)))) }
        var absent: [String: String] = [:]  // subject id -> address, of the people the state no longer names
        for (subject, address) in subjects where !present.contains(address) { absent[subject] = address }
        guard !absent.isEmpty else { return [] }
        var lastRemoval: [String: String] = [:]
        // Canonical JSON starts with the member `action`: the database hands over the deletions of format 2, and
        // each must remove a tenant member whose address is the token of one of these subjects.
        for entry in try entries(holdingAny: [Array(#"{"action":"delete""#.utf8)], from: firstPseudonymousSequence()) {
            guard entry.version >= 2, entry.action == "delete", let member = PersonalData.memberAddress(entry.address), member.isTenantMember,
                let pieces = PersonalData.pieces(member.email), pieces.count == 1, case .token(.subject, let subject) = pieces[0],
                let address = absent[subject]
            else { continue }
            lastRemoval[address] = max(lastRemoval[address] ?? "", entry.time)
        }
        return lastRemoval.filter { $0.value < date }.keys.sorted()
    }
}
