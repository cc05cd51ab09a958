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

    /// The id of the 16 bytes of `bytes` from `offset`, in order.
    public init(bytes: [UInt8], at offset: Int) {
        precondition(offset >= 0 && offset + 16 <= bytes.count, "a subject id has 16 bytes")
        (high, low) = bytes.withUnsafeBytes {
            (UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
             UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
        }
    }

    /// The id spelled by exactly 32 lowercase hex digits, or nil.
    public init?(hex: UnsafeRawBufferPointer) {
        // Lowercase only: the text is the token's, and a token has one spelling (8.1).
        guard PersonalData.isTokenID(hex) else { return nil }
        var halves: (UInt64, UInt64) = (0, 0)
        for (index, character) in hex.enumerated() {
            let digit = UInt64(Hex.value(ofDigit: character) ?? 0)
            if index < 16 { halves.0 = halves.0 << 4 | digit } else { halves.1 = halves.1 << 4 | digit }
        }
        (high, low) = halves
    }

    public init?(hex: String) {
        var hex = hex
        guard let id = hex.withUTF8({ SubjectID(hex: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = id
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
