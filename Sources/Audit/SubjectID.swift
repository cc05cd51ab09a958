import Crypto

/// The random 128-bit id of a data subject (docs/audit-chain.md 8.1), held as two numbers: no
/// string per subject while an apply writes hundreds of thousands of them. Its text, 32 lowercase
/// hex digits, is written straight into the token that carries it. Ids compare as their texts do.
public struct SubjectID: Hashable, Comparable, Sendable {
    /// The first and last 64 bits.
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The id of its 16 bytes, in order.
    public init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == 16, "a subject id has 16 bytes")
        high = bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
        low = bytes.dropFirst(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The id spelled by exactly 32 lowercase hex digits, or nil.
    public init?(hex: some Collection<UInt8>) {
        guard hex.count == Self.digits else { return nil }
        var halves: (UInt64, UInt64) = (0, 0)
        for (index, character) in hex.enumerated() {
            // Lowercase only: the text is the token's, and a token has one spelling (8.1).
            guard let digit = Hex.value(ofDigit: character), !(UInt8(ascii: "A")...UInt8(ascii: "F")).contains(character) else { return nil }
            if index < 16 { halves.0 = halves.0 << 4 | UInt64(digit) } else { halves.1 = halves.1 << 4 | UInt64(digit) }
        }
        (high, low) = halves
    }

    public init?(hex: String) {
        self.init(hex: hex.utf8)
    }

    /// Digits of the text.
    public static let digits = 32

    /// Writes the 32 digits into `buffer` from `offset`.
    public func write(into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        Hex.write(high, into: buffer, at: offset)
        Hex.write(low, into: buffer, at: offset + 16)
    }

    /// The 32 digits.
    public var hex: String {
        String(unsafeUninitializedCapacity: Self.digits) { buffer in
            write(into: buffer, at: 0)
            return Self.digits
        }
    }

    public static func < (lhs: SubjectID, rhs: SubjectID) -> Bool { (lhs.high, lhs.low) < (rhs.high, rhs.low) }
}
