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

/// The placeholder that replaces a forgotten address in webhook events and delivery records.
let redactedAddress = Array(PersonalData.erasedMarker.utf8)

/// Whether `needle` occurs in `haystack`.
func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool { firstRange(of: needle, in: haystack) != nil }

func firstRange(of needle: [UInt8], in haystack: [UInt8], from start: Int = 0) -> Range<Int>? {
    guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
    let first = needle[0]
    var i = start
    let last = haystack.count - needle.count
    while i <= last {
        if haystack[i] == first, haystack[i..<(i + needle.count)].elementsEqual(needle) { return i..<(i + needle.count) }
        i += 1
    }
    return nil
}

/// `bytes` with every occurrence of `needle` replaced by `[erased]`.
func redacting(_ needle: [UInt8], in bytes: [UInt8]) -> [UInt8] {
    var result: [UInt8] = []
    var position = 0
    while let found = firstRange(of: needle, in: bytes, from: position) {
        result += bytes[position..<found.lowerBound]
        result += redactedAddress
        position = found.upperBound
    }
    return result + bytes[position...]
}

extension SQLStore {
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
        try inSnapshot("reading personal data") {
            let state = try readUnlocked()
            for stored in state.resources {
                let resource = stored.resource
                guard let member = PersonalData.memberAddress(resource.address), member.email == email else { continue }
                let parts = resource.address.split(separator: "/").map(String.init)
                func text(_ name: String) -> String? { if case .string(let value) = resource[name] { value } else { nil } }
                if resource.kind == .member {
                    export.memberships.append(.init(address: resource.address, tenant: parts[1], role: text("role") ?? "", expires: text("expires")))
                } else if resource.kind == .teamMember {
                    export.teams.append(.init(address: resource.address, tenant: parts[1], team: parts[3], role: text("role") ?? ""))
                }
            }
            let table = SubjectTable(db: db)
            guard let subject = try table.existingSubjectID(email) else { return }
            let sequences = try mentions(of: subject)
            var entries: [AuditEntry] = []
            for sequence in sequences {
                guard let bytes = try db.first("SELECT entry FROM orgctl_audit WHERE seq = ?1", [.integer(sequence)], { $0.blob(0) }),
                    let entry = try? AuditEntry(canonicalBytes: bytes)
                else { continue }
                entries.append(entry)
            }
            export.auditEntries = try entries.map { try table.resolve($0) }
            export.webhookEvents = try events(mentioning: Array(email.utf8), sequences: sequences).map(\.event)
        }
        return export
    }

    /// The sequences of the entries that name `subject`, in order.
    func mentions(of subject: String) throws -> [Int64] {
        var sequences: [Int64] = []
        try db.forEach("SELECT seq FROM orgctl_subject_entries WHERE subject = ?1 ORDER BY seq", [.text(subject)]) { sequences.append($0.int(0)) }
        return sequences
    }

    /// The outbox events written for `sequences` whose payload holds `email`.
    func events(mentioning email: [UInt8], sequences: [Int64]) throws -> [(event: PersonalDataExport.Event, lastError: String?)] {
        var found: [(PersonalDataExport.Event, String?)] = []
        for chunk in stride(from: 0, to: sequences.count, by: 500) {
            let list = sequences[chunk..<min(chunk + 500, sequences.count)].map(String.init).joined(separator: ", ")
            try db.forEach("""
                SELECT id, webhook, event_type, status, audit_seq, payload, last_error FROM orgctl_outbox WHERE audit_seq IN (\(list)) ORDER BY audit_seq, id
                """) { row in
                let payload = row.blob(5)
                guard contains(payload, email) else { return }
                found.append((.init(id: row.text(0), webhook: row.text(1), type: row.text(2), status: row.text(3), auditSequence: row.int(4), payload: payload),
                              row.optionalText(6)))
            }
        }
        return found
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

    /// The format 1 entries (before `boundary`) whose bytes hold each of `emails`.
    func plainMentions(of emails: Set<String>, before boundary: Int64) throws -> [String: [Int64]] {
        guard boundary > 1, !emails.isEmpty else { return [:] }
        var found: [String: [Int64]] = [:]
        try db.forEach("SELECT seq, entry FROM orgctl_audit WHERE seq < ?1 ORDER BY seq", [.integer(boundary)]) { row in
            let bytes = row.blob(1)
            guard bytes.contains(UInt8(ascii: "@")) else { return }
            for email in emails where contains(bytes, Array(email.utf8)) { found[email, default: []].append(row.int(0)) }
        }
        return found
    }

    /// The addresses of the state that name `email` (as a member, or inside a value).
    static func addresses(naming email: String, in state: StoredState) -> [String] {
        func names(_ text: String) -> Bool { text.contains("@") && PersonalData.emailShapes(in: text).contains(email) }
        var found: [String] = []
        for stored in state.resources {
            let resource = stored.resource
            if PersonalData.memberAddress(resource.address)?.email == email || names(resource.address) || resource.attributes.contains(where: { attribute in
                switch attribute.value {
                case .string(let text): names(text)
                case .list(let items): items.contains(where: names)
                default: false
                }
            }) {
                found.append(resource.address)
            }
        }
        return found.sorted()
    }

    func forgetShared(_ request: ErasureRequest, beforeWriting: () throws -> Void) throws -> ErasureOutcome {
        guard try !hasOlderSchema else { throw ErasureRefusal.olderSchema }
        try beforeWriting()
        // The transaction turns what it throws into a StateError: a refusal (thrown before anything is written,
        // and rolled back with the lock row) is kept aside and thrown as it is.
        var refusal: ErasureRefusal?
        do {
            return try inWriteTransaction("erasing personal data") { () throws -> ErasureOutcome in
                do {
                    return try erase(request)
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

    private func erase(_ request: ErasureRequest) throws -> ErasureOutcome {
        do {
            try checkSchemaObjectsForWrite()
            try checkKey()
            if case .broken(let broken) = try db.checkAuditChain() { throw ErasureRefusal.auditBroken(broken) }
            let state = try readUnlocked()
            let table = SubjectTable(db: db)
            var people: [(email: String, subject: String)] = []
            switch request.whom {
            case .emails(let emails):
                for email in emails {
                    let naming = Self.addresses(naming: email, in: state)
                    if !naming.isEmpty { throw ErasureRefusal.stillPresent(email: email, addresses: naming) }
                    guard let subject = try table.existingSubjectID(email) else {
                        // Known only to format 1 entries, it cannot be forgotten; say where.
                        if let plain = try plainMentions(of: [email], before: firstPseudonymousSequence())[email] {
                            throw ErasureRefusal.inPlainEntries(email: email, sequences: plain)
                        }
                        throw ErasureRefusal.unknown(email: email)
                    }
                    people.append((email, subject))
                }
            case .departedBefore(let date):
                people = try departed(before: date, state: state)
            }
            var outcome = ErasureOutcome()
            let plain = try plainMentions(of: Set(people.map(\.email)), before: firstPseudonymousSequence())
            if case .departedBefore = request.whom {
                // Retention erases whom it can: people named by format 1 entries are kept, and counted.
                outcome.keptInPlainEntries = people.filter { plain[$0.email] != nil }.count
                people.removeAll { plain[$0.email] != nil }
            } else if let (email, sequences) = plain.min(by: { $0.key < $1.key }) {
                throw ErasureRefusal.inPlainEntries(email: email, sequences: sequences)
            }

            for person in people {
                let sequences = try mentions(of: person.subject)
                let email = Array(person.email.utf8)
                for (event, lastError) in try events(mentioning: email, sequences: sequences) {
                    try db.run("UPDATE orgctl_outbox SET payload = ?2, last_error = ?3 WHERE id = ?1",
                               [.text(event.id), .blob(redacting(email, in: event.payload)),
                                lastError.map { .text(String(decoding: redacting(email, in: Array($0.utf8)), as: UTF8.self)) } ?? .null])
                    var attempts: [(Int64, String?, [UInt8]?)] = []
                    try db.forEach("SELECT attempt, error, response FROM orgctl_outbox_attempts WHERE event_id = ?1", [.text(event.id)]) {
                        attempts.append(($0.int(0), $0.optionalText(1), $0.optionalBlob(2)))
                    }
                    for (attempt, error, response) in attempts {
                        try db.run("UPDATE orgctl_outbox_attempts SET error = ?3, response = ?4 WHERE event_id = ?1 AND attempt = ?2",
                                   [.text(event.id), .integer(attempt),
                                    error.map { .text(String(decoding: redacting(email, in: Array($0.utf8)), as: UTF8.self)) } ?? .null,
                                    response.map { .blob(redacting(email, in: $0)) } ?? .null])
                    }
                    outcome.redactedEvents += 1
                }
                try db.run("DELETE FROM orgctl_subject_entries WHERE subject = ?1", [.text(person.subject)])
                try db.run("DELETE FROM orgctl_subject_values WHERE subject = ?1", [.text(person.subject)])
                try db.run("DELETE FROM orgctl_subjects WHERE id = ?1", [.text(person.subject)])
                outcome.emails.append(person.email)
            }
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

    /// Everyone the subject table knows who is in no tenant and whose last membership removal
    /// (a `delete` entry of a tenant member address naming them) is before `date`.
    func departed(before date: String, state: StoredState) throws -> [(email: String, subject: String)] {
        var present: Set<String> = []
        for stored in state.resources {
            if let member = PersonalData.memberAddress(stored.resource.address) { present.insert(member.email) }
        }
        var subjects: [(String, String)] = []
        try db.forEach("SELECT id, email FROM orgctl_subjects ORDER BY email") { subjects.append(($0.text(0), $0.text(1))) }
        var found: [(String, String)] = []
        for (subject, email) in subjects where !present.contains(email) {
            var lastRemoval: String?
            for sequence in try mentions(of: subject) {
                guard let bytes = try db.first("SELECT entry FROM orgctl_audit WHERE seq = ?1", [.integer(sequence)], { $0.blob(0) }),
                    let entry = try? AuditEntry(canonicalBytes: bytes), entry.action == "delete",
                    let member = PersonalData.memberAddress(entry.address), member.isTenantMember,
                    entry.tokens(.subject).contains(subject)
                else { continue }
                lastRemoval = entry.time
            }
            if let lastRemoval, lastRemoval < date { found.append((email, subject)) }
        }
        return found
    }
}
