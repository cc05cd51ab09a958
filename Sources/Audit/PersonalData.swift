/// Personal data in audit entries of format version 2 (docs/audit-chain.md section 8).
///
/// A version 2 entry carries a **token** in place of each personal value: `~s:` and 32
/// lowercase hex digits names a data subject (a person, by the random 128-bit id of the subject
/// table), `~v:` and 32 lowercase hex digits a value belonging to a subject (a guest's expiry).
/// In `actor`, `address`, `source`, `reason` and every string of `before` and `after` (never in
/// member names), `~` starts a token or is doubled: `~~` is one literal `~`. The entry's bytes,
/// chain hash and Merkle leaf commit to the tokens, so deleting what a token stands for (an
/// erasure) changes no stored byte of the log.
public enum PersonalData {
    /// What readers print in place of a token whose subject was erased.
    public static let erasedMarker = "[erased]"

    /// A token's kind: the subject itself (its e-mail address) or a value of the subject.
    public enum TokenKind: UInt8, Sendable {
        case subject = 0x73  // "s"
        case value = 0x76  // "v"
    }

    /// One part of a decoded version 2 string.
    public enum Piece: Equatable, Sendable {
        case text(String)
        case token(TokenKind, String)
    }

    /// `~s:<id>` or `~v:<id>`.
    public static func token(_ kind: TokenKind, _ id: String) -> String {
        text("", followedBy: kind, id)
    }

    /// `text` followed by the token `~s:<id>` or `~v:<id>`, written in one allocation (the pseudonymizer
    /// makes one or two for every entry). `text` is taken as it is (already in its version 2 spelling).
    /// Only the first `length` bytes of `text` when given (which must end between two characters).
    static func text(_ text: String, prefix length: Int? = nil, followedBy kind: TokenKind, _ id: String) -> String {
        var id = id
        return id.withUTF8 { id in
            Self.text(text, prefix: length, followedBy: kind, idDigits: id.count) { result, start in
                if let from = id.baseAddress { (result.baseAddress! + start).initialize(from: from, count: id.count) }
            }
        }
    }

    /// `text` followed by the subject token of `id` (see ``text(_:prefix:followedBy:_:)``), its digits
    /// written straight from the id's numbers.
    static func text(_ text: String, prefix length: Int? = nil, followedBy kind: TokenKind, _ id: SubjectID) -> String {
        Self.text(text, prefix: length, followedBy: kind, idDigits: SubjectID.digits) { result, start in id.write(into: result, at: start) }
    }

    /// `text` (its first `length` bytes) followed by `~`, the kind, `:` and the `idDigits` bytes `writeID` writes
    /// into the result from the offset it is given.
    private static func text(_ text: String, prefix length: Int?, followedBy kind: TokenKind, idDigits: Int,
                             writeID: (UnsafeMutableBufferPointer<UInt8>, Int) -> Void) -> String {
        var text = text
        return text.withUTF8 { text in
            let text = UnsafeBufferPointer(rebasing: text[..<(length ?? text.count)])
            return String(unsafeUninitializedCapacity: text.count + idDigits + 3) { result in
                if let from = text.baseAddress { result.baseAddress!.initialize(from: from, count: text.count) }
                let start = text.count
                result[start] = UInt8(ascii: "~")
                result[start + 1] = kind.rawValue
                result[start + 2] = UInt8(ascii: ":")
                writeID(result, start + 3)
                return start + 3 + idDigits
            }
        }
    }

    /// Whether `id` is 32 lowercase hex digits.
    public static func isTokenID<C: Collection<UInt8>>(_ id: C) -> Bool {
        id.count == 32 && id.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// The pieces of a version 2 string, or nil when a `~` neither starts a token nor is doubled.
    public static func pieces(_ string: String) -> [Piece]? {
        let bytes = Array(string.utf8)
        guard bytes.contains(UInt8(ascii: "~")) else { return [.text(string)] }
        var pieces: [Piece] = []
        var literal: [UInt8] = []
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "~") else {
                literal.append(bytes[i])
                i += 1
                continue
            }
            if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "~") {
                literal.append(bytes[i])
                i += 2
                continue
            }
            guard i + 35 <= bytes.count, let kind = TokenKind(rawValue: bytes[i + 1]), bytes[i + 2] == UInt8(ascii: ":"),
                isTokenID(bytes[(i + 3)..<(i + 35)])
            else { return nil }
            if !literal.isEmpty { pieces.append(.text(String(decoding: literal, as: UTF8.self))) }
            literal = []
            pieces.append(.token(kind, String(decoding: bytes[(i + 3)..<(i + 35)], as: UTF8.self)))
            i += 35
        }
        if !literal.isEmpty || pieces.isEmpty { pieces.append(.text(String(decoding: literal, as: UTF8.self))) }
        return pieces
    }

    /// The version 2 spelling of `pieces`: literal `~` doubled, tokens as they are.
    public static func encode(_ pieces: [Piece]) -> String {
        var result = ""
        for piece in pieces {
            switch piece {
            case .text(let text):
                for character in text.unicodeScalars {
                    if character == "~" { result += "~" }
                    result.unicodeScalars.append(character)
                }
            case .token(let kind, let id): result += token(kind, id)
            }
        }
        return result
    }

    // MARK: E-mail shapes

    static func isLocalByte(_ b: UInt8) -> Bool {
        (97...122).contains(b) || (65...90).contains(b) || (48...57).contains(b)
            || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "%") || b == UInt8(ascii: "+")
            || b == UInt8(ascii: "-") || b == UInt8(ascii: "'")
    }

    static func isDomainByte(_ b: UInt8) -> Bool {
        (97...122).contains(b) || (65...90).contains(b) || (48...57).contains(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "-")
    }

    /// The first e-mail-shaped run of `bytes` (docs/audit-chain.md 8.2): around an `@`, the
    /// longest run of local-part bytes `A-Z a-z 0-9 . _ % + - '` before it without its leading
    /// `.` and `'`, and of domain bytes `A-Z a-z 0-9 . -` after it without its trailing `.` and
    /// `-`; shaped when the local part is not empty and the domain has a `.` between two other bytes.
    /// The search starts at `start`: a run never reaches back before it (as if the bytes began there).
    public static func firstEmailShape(in bytes: [UInt8], from start: Int = 0) -> Range<Int>? {
        for at in start..<bytes.count where bytes[at] == UInt8(ascii: "@") {
            guard let run = run(around: at, in: bytes, from: start, afterEscapes: false) else { continue }
            let domain = bytes[(at + 1)..<run.upperBound]
            guard let dot = domain.dropFirst().dropLast().firstIndex(of: UInt8(ascii: ".")), dot > at + 1 else { continue }
            return run
        }
        return nil
    }

    /// The run of local-part bytes before the `@` at `at` (back to `start` at most) and of domain
    /// bytes after it, trimmed of a leading `.`/`'` and a trailing `.`/`-`, or nil when either side is
    /// empty: the shape both ``firstEmailShape(in:from:)`` and ``addressRun(around:in:)`` find.
    /// `afterEscapes`: a run right after a JSON escape (`\n`, `\u00e9`) starts after the escape.
    static func run(around at: Int, in bytes: [UInt8], from floor: Int = 0, afterEscapes: Bool) -> Range<Int>? {
        var start = at
        while start > floor, isLocalByte(bytes[start - 1]) { start -= 1 }
        if afterEscapes, start > floor, start < at, bytes[start - 1] == UInt8(ascii: "\\") {
            if "ntbfr".utf8.contains(bytes[start]) {
                start += 1
            } else if bytes[start] == UInt8(ascii: "u"), at - start > 5, bytes[(start + 1)...(start + 4)].allSatisfy(isHexDigit) {
                start += 5
            }
        }
        while start < at, bytes[start] == UInt8(ascii: ".") || bytes[start] == UInt8(ascii: "'") { start += 1 }
        var end = at + 1
        while end < bytes.count, isDomainByte(bytes[end]) { end += 1 }
        while end > at + 1, bytes[end - 1] == UInt8(ascii: ".") || bytes[end - 1] == UInt8(ascii: "-") { end -= 1 }
        return start < at && end > at + 1 ? start..<end : nil
    }

    /// Every e-mail-shaped run of `text`, left to right (as ``Pseudonymizer`` finds them).
    public static func emailShapes(in text: String) -> [String] {
        var found: [String] = []
        let bytes = Array(text.utf8)
        var position = 0
        while let shape = firstEmailShape(in: bytes, from: position) {
            found.append(String(decoding: bytes[shape], as: UTF8.self))
            position = shape.upperBound
        }
        return found
    }

    /// Whether `string` holds a `@` or a `~` (what the pseudonymizer has to look at), read in place.
    static func hasAtOrTilde(_ string: String) -> Bool {
        func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool { bytes.contains { $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: "~") } }
        return string.utf8.withContiguousStorageIfAvailable(scan) ?? Array(string.utf8).withUnsafeBufferPointer(scan)
    }

    /// The e-mail address of a member address (`tenant/T/member/E`, `tenant/T/team/S/member/E`)
    /// with the address up to it, or nil for any other address. The address is cut at its first
    /// five `/` bytes, as `tools/verify_audit.py` cuts it (`split("/", 5)`): byte by byte, not by
    /// `Character`, which would not cut at a `/` followed by a combining mark. (Called for every
    /// audit entry written and verified: it allocates only the two strings it returns.)
    public static func memberAddress(_ address: String) -> (prefix: String, email: String, isTenantMember: Bool)? {
        guard let member = memberEmail(address) else { return nil }
        return (String(decoding: address.utf8.prefix(member.offset), as: UTF8.self), member.email, member.isTenantMember)
    }

    /// The e-mail address of a member address (see ``memberAddress(_:)``), where it starts (a byte
    /// offset), and whether the address up to it holds a `@` or `~` (which the pseudonymizer has to
    /// look at). Reads the address in place and allocates only the e-mail address.
    static func memberEmail(_ address: String) -> (email: String, offset: Int, isTenantMember: Bool, prefixHasAtOrTilde: Bool)? {
        func cut(_ bytes: UnsafeBufferPointer<UInt8>) -> (email: String, offset: Int, isTenantMember: Bool, prefixHasAtOrTilde: Bool)? {
            guard let email = emailOffset(in: bytes) else { return nil }
            let prefix = UnsafeBufferPointer(rebasing: bytes[..<email.offset])
            return (String(decoding: UnsafeBufferPointer(rebasing: bytes[email.offset...]), as: UTF8.self), email.offset, email.isTenantMember,
                    prefix.contains { $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: "~") })
        }
        if let found = address.utf8.withContiguousStorageIfAvailable(cut) { return found }
        return Array(address.utf8).withUnsafeBufferPointer(cut)
    }

    /// Where the e-mail address of a member address starts (see ``memberAddress(_:)``), or nil.
    private static func emailOffset(in bytes: UnsafeBufferPointer<UInt8>) -> (offset: Int, isTenantMember: Bool)? {
        let slash = UInt8(ascii: "/")
        /// The offset after the next `/` from `start`, or nil.
        func after(_ start: Int) -> Int? {
            var index = start
            while index < bytes.count {
                if bytes[index] == slash { return index + 1 }
                index += 1
            }
            return nil
        }
        /// Whether the segment from `start` to the `/` before `end` is `name`.
        func segment(_ start: Int, _ end: Int, is name: StaticString) -> Bool {
            name.withUTF8Buffer { name in end - 1 - start == name.count && name.indices.allSatisfy { bytes[start + $0] == name[$0] } }
        }
        guard bytes.count > 7, bytes[6] == slash, segment(0, 7, is: "tenant"), let kind = after(7), let rest = after(kind) else { return nil }
        if segment(kind, rest, is: "member") {
            // Everything after the third `/`, further slashes included.
            return rest < bytes.count ? (rest, true) : nil
        }
        guard segment(kind, rest, is: "team"), let memberKind = after(rest), let email = after(memberKind),
            segment(memberKind, email, is: "member"), email < bytes.count
        else { return nil }
        return (email, false)
    }
}

/// Turns an entry written with personal values into its version 2 form (docs/audit-chain.md 8.2).
/// `subject` gives the subject id of an e-mail address (or an actor that contains `@`), creating it
/// when needed; `value` the id (32 lowercase hex digits) of a value of a subject.
public struct Pseudonymizer {
    private let subject: (String) throws -> SubjectID
    private let value: (_ subject: SubjectID, _ value: String) throws -> String

    public init(subject: @escaping (String) throws -> SubjectID, value: @escaping (_ subject: SubjectID, _ value: String) throws -> String) {
        self.subject = subject
        self.value = value
    }

    public mutating func pseudonymize(_ entry: consuming AuditEntry) throws -> AuditEntry {
        func subjectToken(_ email: String) throws -> PersonalData.Piece { .token(.subject, try subject(email).hex) }
        /// A string with every e-mail shape replaced by its subject's token.
        func text(_ string: String) throws -> String {
            // Most strings hold neither `@` (no e-mail shape) nor `~` (nothing to double): kept as they are.
            if !PersonalData.hasAtOrTilde(string) { return string }
            var pieces: [PersonalData.Piece] = []
            let bytes = Array(string.utf8)
            var position = 0
            while let shape = PersonalData.firstEmailShape(in: bytes, from: position) {
                if shape.lowerBound > position { pieces.append(.text(String(decoding: bytes[position..<shape.lowerBound], as: UTF8.self))) }
                pieces.append(try subjectToken(String(decoding: bytes[shape], as: UTF8.self)))
                position = shape.upperBound
            }
            if position < bytes.count || pieces.isEmpty { pieces.append(.text(String(decoding: bytes[position...], as: UTF8.self))) }
            return PersonalData.encode(pieces)
        }
        /// Whether `value` holds a string that ``text`` changes.
        func touches(_ value: JSONValue) -> Bool {
            switch value {
            case .string(let s): return PersonalData.hasAtOrTilde(s)
            case .array(let items): return items.contains { touches($0) }
            case .object(let object): return object.members.contains { touches($0.value) }
            default: return false
            }
        }
        func json(_ value: JSONValue) throws -> JSONValue {
            guard touches(value) else { return value }
            switch value {
            case .string(let s): return .string(try text(s))
            case .array(let items): return .array(try items.map(json))
            case .object(var object):
                // Only the members that change are set again (a member's key is found by a binary search).
                for member in object.members where touches(member.value) { object[member.key] = try json(member.value) }
                return .object(object)
            default: return value
            }
        }
        // The entry is taken over (`consuming`), not copied: fields that stay keep their strings as they are.
        var result = consume entry
        result.version = AuditEntry.formatVersion
        result.actor = result.actor.utf8.contains(UInt8(ascii: "@")) ? PersonalData.text("", followedBy: .subject, try subject(result.actor)) : try text(result.actor)
        var owner: SubjectID?
        if let member = PersonalData.memberEmail(result.address) {
            let id = try subject(member.email)
            // The address up to the e-mail is most often kept as it is (no `@` or `~` in a tenant or team slug).
            result.address = member.prefixHasAtOrTilde
                ? PersonalData.text(try text(String(decoding: result.address.utf8.prefix(member.offset), as: UTF8.self)), followedBy: .subject, id)
                : PersonalData.text(result.address, prefix: member.offset, followedBy: .subject, id)
            if member.isTenantMember { owner = id }
        } else {
            result.address = try text(result.address)
        }
        result.source = try text(result.source)
        result.reason = try result.reason.map(text)
        func values(_ side: JSONValue?) throws -> JSONValue? {
            guard let side else { return nil }
            guard let owner, case .object(var object) = side else { return try json(side) }
            // A member's `expires` is its owner's value (a value token), never a text of its own.
            for member in object.members where member.key != "expires" && touches(member.value) {
                object[member.key] = try json(member.value)
            }
            if case .string(let date)? = object["expires"] {
                object["expires"] = .string(PersonalData.token(.value, try value(owner, date)))
            }
            return .object(object)
        }
        result.before = try values(result.before)
        result.after = try values(result.after)
        return result
    }
}

extension AuditEntry {
    /// The entry with every token replaced by what it stands for (`lookup` of the token's kind and
    /// id), or by ``PersonalData/erasedMarker`` when `lookup` has nothing: for printing and export.
    /// A version 1 entry is returned as it is.
    public func resolved(_ lookup: (PersonalData.TokenKind, String) -> String?) -> AuditEntry {
        guard version >= 2 else { return self }
        func text(_ string: String) -> String {
            guard let pieces = PersonalData.pieces(string) else { return string }
            return pieces.map { piece in
                switch piece {
                case .text(let text): text
                case .token(let kind, let id): lookup(kind, id) ?? PersonalData.erasedMarker
                }
            }.joined()
        }
        func json(_ value: JSONValue) -> JSONValue {
            switch value {
            case .string(let s): .string(text(s))
            case .array(let items): .array(items.map(json))
            case .object(let object): .object(object.mappingValues(json))
            default: value
            }
        }
        var result = self
        result.actor = text(actor)
        result.address = text(address)
        result.source = text(source)
        result.reason = reason.map(text)
        result.before = before.map(json)
        result.after = after.map(json)
        return result
    }

    /// The ids of the tokens of `kind` in the entry (none in a version 1 entry).
    public func tokens(_ kind: PersonalData.TokenKind) -> Set<String> {
        guard version >= 2 else { return [] }
        var found: Set<String> = []
        func visit(_ string: String) {
            for case .token(kind, let id) in PersonalData.pieces(string) ?? [] { found.insert(id) }
        }
        func visit(_ value: JSONValue) {
            switch value {
            case .string(let s): visit(s)
            case .array(let items): items.forEach(visit)
            case .object(let object): object.members.map(\.value).forEach(visit)
            default: break
            }
        }
        visit(actor)
        visit(address)
        visit(source)
        if let reason { visit(reason) }
        if let before { visit(before) }
        if let after { visit(after) }
        return found
    }

    /// The version 2 rules of docs/audit-chain.md 8.3, or nil when the entry keeps them.
    func personalDataProblem() -> String? {
        var problem: String?
        func check(_ string: String, _ field: String) {
            guard problem == nil else { return }
            guard let pieces = PersonalData.pieces(string) else {
                problem = "field '\(field)' has a '~' that starts no token and is not doubled"
                return
            }
            for case .text(let text) in pieces where PersonalData.firstEmailShape(in: Array(text.utf8)) != nil {
                problem = "field '\(field)' holds an e-mail address instead of a subject token"
                return
            }
        }
        func check(_ value: JSONValue, _ field: String) {
            switch value {
            case .string(let s): check(s, field)
            case .array(let items): items.forEach { check($0, field) }
            case .object(let object): object.members.map(\.value).forEach { check($0, field) }
            default: break
            }
        }
        check(actor, "actor")
        if actor.contains("@") { problem = problem ?? "field 'actor' names a person without a subject token" }
        check(address, "address")
        check(source, "source")
        if let reason { check(reason, "reason") }
        if let before { check(before, "before") }
        if let after { check(after, "after") }
        if problem == nil, let member = PersonalData.memberAddress(address) {
            guard case .token(.subject, _)? = PersonalData.pieces(member.email)?.first, PersonalData.pieces(member.email)?.count == 1 else {
                return "field 'address' names a member without a subject token"
            }
            if member.isTenantMember {
                for side in [before, after] {
                    guard case .object(let object)? = side, let expires = object["expires"], expires != .null else { continue }
                    guard case .string(let text) = expires, let pieces = PersonalData.pieces(text), pieces.count == 1,
                        case .token(.value, _) = pieces[0]
                    else { return "a member's 'expires' must be null or a value token" }
                }
            }
        }
        return problem
    }
}

extension JSONObject {
    /// The object with `transform` applied to every member's value (names and order kept).
    func mappingValues(_ transform: (JSONValue) throws -> JSONValue) rethrows -> JSONObject {
        var result = JSONObject()
        for member in members { result[member.key] = try transform(member.value) }
        return result
    }
}
