public import Crypto

/// Why a note, key, checkpoint or proof text was refused. `message` is lowercase and names
/// what is wrong.
public struct LogFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// C2SP signed-note key names: non-empty, no Unicode spaces, no `+`.
enum NoteKeyName {
    static func check(_ name: String) throws(LogFormatError) {
        guard !name.isEmpty else { throw LogFormatError("the key name is empty") }
        if name.unicodeScalars.contains(where: { $0 == "+" || $0.properties.isWhitespace || $0.value < 0x20 }) {
            throw LogFormatError("the key name '\(name)' contains a space, a control character or '+'")
        }
    }

    /// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]`: the key id of an Ed25519 note key.
    static func keyID(name: String, publicKey: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(Array(name.utf8) + [0x0A, NoteSigner.ed25519Type] + publicKey).prefix(4))
    }
}

/// An Ed25519 signed-note signer (c2sp.org/signed-note, signature type 0x01), written as the
/// key string `PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 ‖ 32-byte seed)>`.
public struct NoteSigner: Sendable {
    static let ed25519Type: UInt8 = 0x01
    public let name: String
    public let keyID: [UInt8]
    let key: Ed25519PrivateKey

    public init(name: String, key: Ed25519PrivateKey) throws(LogFormatError) {
        try NoteKeyName.check(name)
        self.name = name
        self.key = key
        self.keyID = NoteKeyName.keyID(name: name, publicKey: key.publicKey.rawRepresentation)
    }

    /// Parses a private key string (surrounding whitespace, such as a final newline, is ignored).
    public init(keyString: String) throws(LogFormatError) {
        let text = keyString.trimmingWhitespace()
        let parts = text.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY" else {
            throw LogFormatError("not a signed-note private key: expected PRIVATE+KEY+<name>+<id>+<key>")
        }
        let name = String(parts[2])
        guard let encoded = Base64.decode(parts[4]), encoded.count == 33, encoded[0] == Self.ed25519Type else {
            throw LogFormatError("the private key of '\(name)' is not an Ed25519 key (base64 of 0x01 and 32 bytes)")
        }
        let key: Ed25519PrivateKey
        do { key = try Ed25519PrivateKey(seed: Array(encoded[1...])) } catch {
            throw LogFormatError("the private key of '\(name)' is not usable")
        }
        try self.init(name: name, key: key)
        guard parts[3] == Hex.encode(keyID) else {
            throw LogFormatError("the key id \(parts[3]) of '\(name)' does not match its key (expected \(Hex.encode(keyID)))")
        }
    }

    /// A fresh key named `name`.
    public static func generate(name: String) throws -> NoteSigner {
        try NoteSigner(name: name, key: try Ed25519PrivateKey.generate())
    }

    /// The private key string; keep it secret.
    public var keyString: String {
        "PRIVATE+KEY+\(name)+\(Hex.encode(keyID))+\(Base64.encode([Self.ed25519Type] + key.seed))"
    }

    public var verifier: NoteVerifier {
        NoteVerifier(name: name, keyID: keyID, key: key.publicKey)
    }

    /// The signature line for `text` (without its newline): `— <name> base64(key id ‖ signature)`.
    public func signatureLine(for text: String) throws -> String {
        let signature = try key.signature(for: Array(text.utf8))
        return "\u{2014} \(name) \(Base64.encode(keyID + signature))"
    }
}

/// An Ed25519 signed-note verifier key: `<name>+<key id hex>+<base64(0x01 ‖ 32-byte public key)>`.
public struct NoteVerifier: Sendable {
    public let name: String
    public let keyID: [UInt8]
    let key: Ed25519PublicKey

    init(name: String, keyID: [UInt8], key: Ed25519PublicKey) {
        self.name = name
        self.keyID = keyID
        self.key = key
    }

    /// Parses a verifier key string (surrounding whitespace is ignored).
    public init(keyString: String) throws(LogFormatError) {
        let text = keyString.trimmingWhitespace()
        let parts = text.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw LogFormatError("not a signed-note verifier key: expected <name>+<id>+<key>")
        }
        let name = String(parts[0])
        try NoteKeyName.check(name)
        guard let encoded = Base64.decode(parts[2]), encoded.count == 33, encoded[0] == NoteSigner.ed25519Type,
            let key = try? Ed25519PublicKey(rawRepresentation: Array(encoded[1...]))
        else {
            throw LogFormatError("the verifier key of '\(name)' is not an Ed25519 key (base64 of 0x01 and 32 bytes)")
        }
        let id = NoteKeyName.keyID(name: name, publicKey: key.rawRepresentation)
        guard parts[1].count == 8, parts[1] == Hex.encode(id) else {
            throw LogFormatError("the key id \(parts[1]) of '\(name)' does not match its key (expected \(Hex.encode(id)))")
        }
        self.init(name: name, keyID: id, key: key)
    }

    public var keyString: String {
        "\(name)+\(Hex.encode(keyID))+\(Base64.encode([NoteSigner.ed25519Type] + key.rawRepresentation))"
    }

    public var publicKey: [UInt8] { key.rawRepresentation }

    /// Whether `signature` (key id ‖ Ed25519 signature) is this key's signature of `text`.
    func isValid(_ signature: [UInt8], for text: String) -> Bool {
        signature.count == 4 + Ed25519PrivateKey.signatureByteCount && Array(signature.prefix(4)) == keyID
            && key.isValidSignature(Array(signature.dropFirst(4)), for: Array(text.utf8))
    }
}

/// A C2SP signed note: text ending in a newline, a blank line, and signature lines.
public struct SignedNote: Sendable, Equatable {
    public struct Signature: Sendable, Equatable {
        public var name: String
        /// Base64-decoded: 4-byte key id, then the signature.
        public var bytes: [UInt8]
    }

    /// The signed text, including its final newline.
    public var text: String
    public var signatures: [Signature]

    /// At most this many signature lines are read (the format asks verifiers to accept at least 16).
    public static let maxSignatures = 100

    public init(text: String, signatures: [Signature] = []) {
        self.text = text
        self.signatures = signatures
    }

    /// Parses a note: the text is everything up to the last blank line.
    public init(parsing note: String) throws(LogFormatError) {
        guard note.hasSuffix("\n") else { throw LogFormatError("a signed note must end with a newline") }
        if note.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" }) {
            throw LogFormatError("a signed note must not contain control characters other than newline")
        }
        let all = note.dropLast().split(separator: "\n", omittingEmptySubsequences: false)
        guard let blank = all.lastIndex(where: \.isEmpty), blank > 0 else {
            throw LogFormatError("no blank line separates the note text from its signatures")
        }
        let text = all[..<blank].joined(separator: "\n") + "\n"
        let lines = all[(blank + 1)...]
        guard !lines.isEmpty else { throw LogFormatError("the note has no signature lines") }
        guard lines.count <= Self.maxSignatures else { throw LogFormatError("the note has more than \(Self.maxSignatures) signatures") }
        var signatures: [Signature] = []
        for line in lines {
            guard line.hasPrefix("\u{2014} ") else {
                throw LogFormatError("signature line '\(line)' does not start with '\u{2014} ' (em dash, space)")
            }
            let fields = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2, let bytes = Base64.decode(fields[1]), bytes.count >= 5 else {
                throw LogFormatError("signature line '\(line)' is not '\u{2014} <key name> <base64 signature>'")
            }
            try NoteKeyName.check(String(fields[0]))
            signatures.append(Signature(name: String(fields[0]), bytes: bytes))
        }
        self.init(text: text, signatures: signatures)
    }

    /// The note as text: the text, a blank line, one line per signature.
    public var formatted: String {
        text + "\n" + signatures.map { "\u{2014} \($0.name) \(Base64.encode($0.bytes))\n" }.joined()
    }

    /// Appends `signer`'s signature of the text.
    public mutating func sign(with signer: NoteSigner) throws {
        let line = try signer.signatureLine(for: text)
        let encoded = line.split(separator: " ").last.map(String.init) ?? ""
        signatures.append(Signature(name: signer.name, bytes: Base64.decode(encoded) ?? []))
    }

    /// Checks the signatures of `verifier`'s key (same name and key id): at least one must be
    /// present, and every one present must verify. Signatures of other keys are ignored.
    public func verify(with verifier: NoteVerifier) throws(LogFormatError) {
        let mine = signatures.filter { $0.name == verifier.name && Array($0.bytes.prefix(4)) == verifier.keyID }
        guard !mine.isEmpty else {
            throw LogFormatError("the note has no signature by key '\(verifier.name)' (key id \(Hex.encode(verifier.keyID)))")
        }
        for signature in mine where !verifier.isValid(signature.bytes, for: text) {
            throw LogFormatError("the signature by '\(verifier.name)' does not verify: the note was changed or signed by another key")
        }
    }
}

/// A C2SP tlog-checkpoint: the note text `<origin>\n<size>\n<base64 root>\n` and optional extension lines.
public struct Checkpoint: Sendable, Equatable {
    public var origin: String
    public var size: Int64
    public var rootHash: [UInt8]
    /// Extension lines (opaque, non-empty); orgctl writes none.
    public var extensions: [String]

    public init(origin: String, size: Int64, rootHash: [UInt8], extensions: [String] = []) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
        self.extensions = extensions
    }

    /// The note text.
    public var text: String {
        ([origin, String(size), Base64.encode(rootHash)] + extensions).map { $0 + "\n" }.joined()
    }

    /// Parses a checkpoint's note text (as ``SignedNote/text`` gives it).
    public init(text: String) throws(LogFormatError) {
        guard text.hasSuffix("\n") else { throw LogFormatError("checkpoint text must end with a newline") }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3 else { throw LogFormatError("a checkpoint has at least three lines: origin, tree size, root hash") }
        guard !lines[0].isEmpty else { throw LogFormatError("the checkpoint's origin line is empty") }
        guard let size = Int64(lines[1]), size >= 0, String(size) == lines[1] else {
            throw LogFormatError("the checkpoint's tree size '\(lines[1])' is not a decimal number without leading zeros")
        }
        guard let root = Base64.decode(lines[2]), root.count == MerkleHash.byteCount else {
            throw LogFormatError("the checkpoint's root hash '\(lines[2])' is not the base64 of 32 bytes")
        }
        let extensions = Array(lines[3...])
        if extensions.contains(where: \.isEmpty) { throw LogFormatError("a checkpoint extension line is empty") }
        self.init(origin: lines[0], size: size, rootHash: root, extensions: extensions)
    }

    /// A signed note holding this checkpoint, signed by `signer` when given.
    public func note(signedBy signer: NoteSigner?) throws -> SignedNote {
        var note = SignedNote(text: text)
        if let signer { try note.sign(with: signer) }
        return note
    }
}

/// Parses a checkpoint as a file holds it: a signed note, or (unsigned) just the note text.
public struct CheckpointFile: Sendable {
    public var checkpoint: Checkpoint
    /// Nil for an unsigned checkpoint (text only).
    public var note: SignedNote?

    public init(parsing content: String) throws(LogFormatError) {
        if content.contains("\n\n") {
            let note = try SignedNote(parsing: content)
            self.note = note
            checkpoint = try Checkpoint(text: note.text)
        } else {
            note = nil
            checkpoint = try Checkpoint(text: content)
        }
    }

    /// The file's text: the signed note, or the bare checkpoint text.
    public static func format(_ checkpoint: Checkpoint, signer: NoteSigner?) throws -> String {
        guard let signer else { return checkpoint.text }
        return try checkpoint.note(signedBy: signer).formatted
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
