/// Base16 (hexadecimal) text for bytes.
public enum Hex {
    /// Lowercase hex, two characters per byte, written straight into the string (inlinable, so an
    /// array slice or a fixed-size digest is encoded without an array of its own first).
    @inlinable
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let count = bytes.count
        return String(unsafeUninitializedCapacity: count * 2) { text in
            var index = 0
            for byte in bytes {
                text[index] = digit(byte >> 4)
                text[index + 1] = digit(byte & 0x0f)
                index += 2
            }
            return count * 2
        }
    }

    /// Writes the 16 lowercase hex digits of `value` (most significant first) into `buffer` from `offset`.
    @inlinable
    public static func write(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        precondition(offset >= 0 && offset + 16 <= buffer.count, "16 hex digits need 16 bytes")
        var value = value
        for index in stride(from: offset + 15, through: offset, by: -1) {
            buffer[index] = digit(UInt8(truncatingIfNeeded: value) & 0x0f)
            value >>= 4
        }
    }

    /// The value of a hex digit (either case), or nil.
    @inlinable
    public static func value(ofDigit character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    @inlinable
    static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// The bytes spelled by `s` (upper- or lowercase), or `nil` when `s` has an odd
    /// length or a character that is not a hex digit.
    public static func decode(_ s: String) -> [UInt8]? {
        let text = Array(s.utf8)
        guard text.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count / 2)
        var index = 0
        while index < text.count {
            guard let high = value(ofDigit: text[index]), let low = value(ofDigit: text[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

}

/// Base62 text for bytes, with the alphabet `0-9A-Za-z`.
///
/// The bytes are read as one big-endian unsigned integer written in base 62, most
/// significant digit first. As in Base58, each leading zero byte becomes a leading `0`,
/// so different byte strings never share an encoding (`[0, 1]` is "01", `[1]` is "1").
/// The output has only letters and digits, so it survives URLs, shells and double-click
/// selection.
public enum Base62 {
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        let leadingZeros = bytes.prefix { $0 == 0 }.count
        // Little-endian base-62 digits of the value, grown one input byte at a time.
        var digits: [UInt8] = []
        digits.reserveCapacity(bytes.count * 138 / 100 + 1)  // log(256) / log(62) ≈ 1.344
        for byte in bytes[leadingZeros...] {
            var carry = Int(byte)
            for index in digits.indices {
                carry += Int(digits[index]) << 8
                digits[index] = UInt8(carry % 62)
                carry /= 62
            }
            while carry > 0 {
                digits.append(UInt8(carry % 62))
                carry /= 62
            }
        }
        let characters =
            [UInt8](repeating: alphabet[0], count: leadingZeros) + digits.reversed().map { alphabet[Int($0)] }
        return String(decoding: characters, as: UTF8.self)
    }

    /// The bytes whose ``encode(_:)`` is `s`, or `nil` when `s` has a character outside
    /// `0-9A-Za-z`.
    public static func decode(_ s: String) -> [UInt8]? {
        let text = Array(s.utf8)
        let leadingZeros = text.prefix { $0 == alphabet[0] }.count
        // Little-endian base-256 bytes of the value, grown one input digit at a time.
        var bytes: [UInt8] = []
        for character in text[leadingZeros...] {
            guard let digit = value(character) else { return nil }
            var carry = Int(digit)
            for index in bytes.indices {
                carry += Int(bytes[index]) * 62
                bytes[index] = UInt8(carry & 0xff)
                carry >>= 8
            }
            while carry > 0 {
                bytes.append(UInt8(carry & 0xff))
                carry >>= 8
            }
        }
        return [UInt8](repeating: 0, count: leadingZeros) + bytes.reversed()
    }

    private static func value(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): character - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "z"): character - UInt8(ascii: "a") + 36
        default: nil
        }
    }
}

/// Standard Base 64 (RFC 4648 section 4): alphabet `A-Za-z0-9+/`, padded with `=`.
///
/// Decoding is strict, as signed notes and checkpoints need one spelling per value: no
/// whitespace, no missing or extra padding, and the unused low bits of the last character
/// must be zero (so `AB==` is refused where `AA==` is meant).
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { out.append(alphabet[Int(group >> UInt32(shift) & 0x3f)]) }
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            let group = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            out.append(alphabet[Int(group >> 18 & 0x3f)])
            out.append(alphabet[Int(group >> 12 & 0x3f)])
            out.append(rest == 2 ? alphabet[Int(group >> 6 & 0x3f)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes whose ``encode(_:)`` is exactly `s`, or nil.
    public static func decode(_ s: some StringProtocol) -> [UInt8]? {
        let text = Array(s.utf8)
        guard text.count.isMultiple(of: 4) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count / 4 * 3)
        var index = 0
        while index < text.count {
            let isLast = index + 4 == text.count
            var group: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let character = text[index + offset]
                if character == UInt8(ascii: "=") {
                    // Padding only at the end of the last group, in its last one or two places.
                    guard isLast, offset >= 2 else { return nil }
                    padding += 1
                    group <<= 6
                    continue
                }
                guard padding == 0, let digit = value(character) else { return nil }
                group = group << 6 | UInt32(digit)
            }
            bytes.append(UInt8(group >> 16 & 0xff))
            if padding < 2 { bytes.append(UInt8(group >> 8 & 0xff)) }
            if padding < 1 { bytes.append(UInt8(group & 0xff)) }
            // Canonical: the bits the padding leaves unused must be zero.
            if padding == 1, group & 0xff != 0 { return nil }
            if padding == 2, group & 0xffff != 0 { return nil }
            index += 4
        }
        return bytes
    }

    private static func value(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): character - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): character - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}

extension [UInt8] {
    /// Appends the UTF-8 bytes of `text` in one copy from its storage (inline for a small string):
    /// what `self += text.utf8` appends, without the generic sequence path (row digests, applied
    /// values and the plan id append a few strings per change of every apply).
    @inlinable
    public mutating func appendUTF8(of text: String) {
        if text.utf8.withContiguousStorageIfAvailable({ append(contentsOf: $0) }) == nil {
            append(contentsOf: text.utf8)
        }
    }
}
