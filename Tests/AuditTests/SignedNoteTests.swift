import Audit
import Crypto
import Testing

/// The Ed25519 example of the signed-note format's reference implementation
/// (golang.org/x/mod/sumdb/note, used by C2SP signed-note): key strings, text and signature,
/// copied by hand.
enum PeterNeumann {
    static let verifierKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let privateKey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    static let signatureLine = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    static var note: String { text + "\n" + signatureLine }
}

@Suite("signed notes and checkpoints (C2SP)")
struct SignedNoteTests {
    @Test func exampleKeysParseAndRoundTrip() throws {
        let signer = try NoteSigner(keyString: PeterNeumann.privateKey)
        let verifier = try NoteVerifier(keyString: PeterNeumann.verifierKey)
        #expect(signer.name == "PeterNeumann")
        #expect(Hex.encode(signer.keyID) == "c74f20a3")
        #expect(signer.keyString == PeterNeumann.privateKey)
        #expect(signer.verifier.keyString == PeterNeumann.verifierKey)
        #expect(verifier.publicKey == signer.verifier.publicKey)
    }

    /// Ed25519 is deterministic, so signing the example text must give the published line byte for byte.
    @Test func signingTheExampleGivesThePublishedSignature() throws {
        let signer = try NoteSigner(keyString: PeterNeumann.privateKey)
        var note = SignedNote(text: PeterNeumann.text)
        try note.sign(with: signer)
        #expect(note.formatted == PeterNeumann.note)
    }

    @Test func theExampleNoteVerifiesAndAnEditedOneDoesNot() throws {
        let verifier = try NoteVerifier(keyString: PeterNeumann.verifierKey)
        let note = try SignedNote(parsing: PeterNeumann.note)
        #expect(note.text == PeterNeumann.text)
        try note.verify(with: verifier)
        let edited = try SignedNote(parsing: PeterNeumann.note.replacingFirst("cryptography", with: "cryptographY"))
        #expect(throws: LogFormatError.self) { try edited.verify(with: verifier) }
    }

    @Test func anotherKeysSignatureIsIgnoredButNotEnough() throws {
        let other = try NoteSigner.generate(name: "PeterNeumann")
        var note = try SignedNote(parsing: PeterNeumann.note)
        try note.sign(with: other)
        try note.verify(with: try NoteVerifier(keyString: PeterNeumann.verifierKey))
        try note.verify(with: other.verifier)
        let alone = try SignedNote(parsing: PeterNeumann.text + "\n" + (try other.signatureLine(for: PeterNeumann.text)) + "\n")
        #expect(throws: LogFormatError.self) { try alone.verify(with: try NoteVerifier(keyString: PeterNeumann.verifierKey)) }
    }

    /// RFC 8032 section 7.1 TEST 1 as a note key: the key id is derived from its public key.
    @Test func rfc8032TestOneKeyAsANoteKey() throws {
        let key = try Ed25519PrivateKey(seed: h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
        #expect(key.publicKey.rawRepresentation == h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
        #expect(try key.signature(for: []) == h("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
            + "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"))
        let signer = try NoteSigner(name: "rfc8032.example/test1", key: key)
        let expectedID = Array(SHA256.hash(Array("rfc8032.example/test1".utf8) + [0x0A, 0x01] + key.publicKey.rawRepresentation).prefix(4))
        #expect(signer.keyID == expectedID)
        let reparsed = try NoteVerifier(keyString: signer.verifier.keyString)
        #expect(reparsed.publicKey == key.publicKey.rawRepresentation)
    }

    @Test(arguments: [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  // wrong id
        "PeterNeumann+c74f20a3+AhpcZ2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  // wrong type byte
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  // truncated
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  // space in the name
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  // empty name
        "PeterNeumann+c74f20a3",
    ])
    func malformedVerifierKeysAreRefused(_ key: String) {
        #expect(throws: LogFormatError.self) { try NoteVerifier(keyString: key) }
    }

    @Test func checkpointTextRoundTrips() throws {
        let checkpoint = Checkpoint(origin: "orgctl.example/db1", size: 8, rootHash: TransparencyDevVectors.roots[7])
        #expect(checkpoint.text == "orgctl.example/db1\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n")
        #expect(try Checkpoint(text: checkpoint.text) == checkpoint)
        let signer = try NoteSigner.generate(name: "orgctl.example/db1")
        let file = try CheckpointFile(parsing: try CheckpointFile.format(checkpoint, signer: signer))
        #expect(file.checkpoint == checkpoint)
        try #require(file.note).verify(with: signer.verifier)
    }

    @Test(arguments: [
        "origin\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",  // leading zero
        "origin\n-1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQ=\n",  // 31 bytes
        "\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",  // empty origin
        "origin\n8\n",
        "origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",  // no final newline
    ])
    func malformedCheckpointsAreRefused(_ text: String) {
        #expect(throws: LogFormatError.self) { try Checkpoint(text: text) }
    }

    @Test func proofFilesRoundTrip() throws {
        let checkpoint = "log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
        let inclusion = InclusionProofFile(index: 5, proof: TransparencyDevVectors.inclusions[2].proof, checkpoint: checkpoint)
        #expect(inclusion.formatted.hasPrefix("c2sp.org/tlog-proof@v1\nindex 5\nvBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=\n"))
        #expect(try InclusionProofFile(parsing: inclusion.formatted) == inclusion)
        let consistency = ConsistencyProofFile(oldSize: 6, proof: TransparencyDevVectors.consistencies[2].proof, checkpoint: checkpoint)
        #expect(consistency.formatted.hasPrefix("old 6\n"))
        #expect(try ConsistencyProofFile(parsing: consistency.formatted) == consistency)
        #expect(throws: LogFormatError.self) { try InclusionProofFile(parsing: "c2sp.org/tlog-proof@v1\nindex 05\n\n" + checkpoint) }
        #expect(throws: LogFormatError.self) { try ConsistencyProofFile(parsing: "old 6\nnot base64\n\n" + checkpoint) }
    }

    @Test func base64IsStandardAndStrict() {
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        #expect(Base64.encode(Array("f".utf8)) == "Zg==")
        #expect(Base64.decode("Zm9vYg==") == Array("foob".utf8))
        #expect(Base64.decode("Zm9vYh==") == nil)  // non-zero unused bits
        #expect(Base64.decode("Zm9vYg=") == nil)
        #expect(Base64.decode("Zm9v Yg==") == nil)
        #expect(Base64.decode("Zg==Zg==") == nil)
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        var copy = self
        copy.replaceSubrange(range, with: replacement)
        return copy
    }
}
