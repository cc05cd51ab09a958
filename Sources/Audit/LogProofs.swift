internal import Crypto

/// A C2SP tlog-proof (`c2sp.org/tlog-proof@v1`): an entry's zero-based index, its RFC 9162
/// inclusion proof, and the checkpoint the proof leads to, verbatim.
///
/// ```
/// c2sp.org/tlog-proof@v1
/// index 2
/// <base64 hash>            (one per line, from the leaf's sibling up)
///
/// <checkpoint, a signed note>
/// ```
public struct InclusionProofFile: Sendable, Equatable {
    public static let header = "c2sp.org/tlog-proof@v1"
    public var index: Int64
    public var proof: [[UInt8]]
    /// The checkpoint exactly as embedded (a signed note, or a bare checkpoint text).
    public var checkpoint: String

    public init(index: Int64, proof: [[UInt8]], checkpoint: String) {
        self.index = index
        self.proof = proof
        self.checkpoint = checkpoint
    }

    public var formatted: String {
        "\(Self.header)\nindex \(index)\n" + proof.map { Base64.encode($0) + "\n" }.joined() + "\n" + checkpoint
    }

    public init(parsing content: String) throws(LogFormatError) {
        let (head, checkpoint) = try splitAtFirstBlankLine(content, what: "tlog-proof")
        guard head.first.map(String.init) == Self.header else { throw LogFormatError("a tlog-proof starts with the line '\(Self.header)'") }
        var lines = head.dropFirst()
        if lines.first?.hasPrefix("extra ") == true { lines = lines.dropFirst() }
        guard let indexLine = lines.first, indexLine.hasPrefix("index "),
            let index = decimal(indexLine.dropFirst("index ".count))
        else { throw LogFormatError("a tlog-proof needs the line 'index <n>' after its header") }
        self.init(index: index, proof: try hashLines(lines.dropFirst()), checkpoint: checkpoint)
    }
}

/// A consistency proof between an old tree size and a checkpoint, in the body format of the
/// C2SP tlog-witness `add-checkpoint` request, so it can be posted to a witness as it is:
///
/// ```
/// old 8
/// <base64 hash>            (RFC 9162 2.1.4 consistency proof, one per line)
///
/// <checkpoint of the current tree, a signed note>
/// ```
public struct ConsistencyProofFile: Sendable, Equatable {
    public var oldSize: Int64
    public var proof: [[UInt8]]
    public var checkpoint: String

    public init(oldSize: Int64, proof: [[UInt8]], checkpoint: String) {
        self.oldSize = oldSize
        self.proof = proof
        self.checkpoint = checkpoint
    }

    public var formatted: String {
        "old \(oldSize)\n" + proof.map { Base64.encode($0) + "\n" }.joined() + "\n" + checkpoint
    }

    public init(parsing content: String) throws(LogFormatError) {
        let (head, checkpoint) = try splitAtFirstBlankLine(content, what: "consistency proof")
        guard let first = head.first, first.hasPrefix("old "), let oldSize = decimal(first.dropFirst(4)) else {
            throw LogFormatError("a consistency proof starts with the line 'old <size>'")
        }
        self.init(oldSize: oldSize, proof: try hashLines(head.dropFirst()), checkpoint: checkpoint)
    }
}

/// The lines before the first blank line, and everything after it.
private func splitAtFirstBlankLine(_ content: String, what: String) throws(LogFormatError) -> ([Substring], String) {
    let lines = content.split(separator: "\n", omittingEmptySubsequences: false)
    guard let blank = lines.firstIndex(where: \.isEmpty), blank > 0, blank + 1 < lines.count else {
        throw LogFormatError("the \(what) has no blank line before its checkpoint")
    }
    return (Array(lines[..<blank]), lines[(blank + 1)...].joined(separator: "\n"))
}

private func hashLines(_ lines: ArraySlice<Substring>) throws(LogFormatError) -> [[UInt8]] {
    guard lines.count <= 63 else { throw LogFormatError("a proof has at most 63 hashes, this one has \(lines.count)") }
    var hashes: [[UInt8]] = []
    for line in lines {
        guard let hash = Base64.decode(line), hash.count == MerkleHash.byteCount else {
            throw LogFormatError("proof line '\(line)' is not the base64 of a 32-byte hash")
        }
        hashes.append(hash)
    }
    return hashes
}

/// A decimal without leading zeros (except `0`), as the C2SP formats write numbers.
private func decimal(_ text: Substring) -> Int64? {
    guard let value = Int64(text), value >= 0, String(value) == text else { return nil }
    return value
}
