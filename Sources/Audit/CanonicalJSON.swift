/// RFC 8785 JSON Canonicalization Scheme (JCS) for ``JSONValue``, and a strict parser.
///
/// Encoding rules (docs/audit-chain.md specifies them for other implementations):
/// - no whitespace anywhere;
/// - object members sorted by key, comparing keys as sequences of UTF-16 code units;
/// - strings: `"` and `\` escaped as `\"` and `\\`; U+0008, U+0009, U+000A, U+000C, U+000D as
///   `\b \t \n \f \r`; every other code point below U+0020 as `\u00xx` (lowercase hex);
///   everything else, including U+007F, U+2028, U+2029 and all non-ASCII, as literal UTF-8;
/// - integers as plain decimal (`-12`, `0`, `56`), which for |n| ≤ 2^53-1 is exactly RFC 8785's
///   ECMAScript number serialization. Writers keep integers in that range so generic JCS
///   implementations (which work on doubles) produce the same bytes.
public enum CanonicalJSON {
    /// The maximum nesting of arrays and objects ``decode(_:)`` accepts.
    public static let maximumDepth = 64

    public static func encode(_ value: JSONValue) -> [UInt8] {
        var output: [UInt8] = []
        write(value, to: &output)
        return output
    }

    /// Parses one JSON text (RFC 8259) strictly: UTF-8 only, no byte-order mark, no trailing
    /// data, nesting at most ``maximumDepth``, no duplicate keys, no lone surrogate escapes,
    /// and integers only (a fraction or exponent is rejected, as is an integer outside Int64).
    ///
    /// Accepting a text does not mean it is canonical: compare `encode(decode(bytes))` with
    /// `bytes` for that. Never traps, whatever the input.
    public static func decode(_ bytes: [UInt8]) throws(JSONDecodingError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        return try parser.parseDocument()
    }

    static func write(_ value: JSONValue, to output: inout [UInt8]) {
        switch value {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .bool(let flag):
            output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .int(let number):
            writeInteger(number, to: &output)
        case .string(let string):
            writeString(string, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(element, to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            for (index, member) in object.members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                writeString(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                write(member.value, to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Plain decimal, as `String(number)` spells it, written digit by digit.
    static func writeInteger(_ number: Int64, to output: inout [UInt8]) {
        if number < 0 { output.append(UInt8(ascii: "-")) }
        var magnitude = number.magnitude  // unsigned, so Int64.min has one too (19 digits)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            output.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A string, quoted and escaped. Runs of bytes that need no escape (all but `"`, `\\` and the
    /// controls below U+0020; non-ASCII passes through as UTF-8) are copied in one piece.
    static func writeString(_ string: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        if string.utf8.withContiguousStorageIfAvailable({ writeEscaped(UnsafeRawBufferPointer($0), to: &output) }) == nil {
            var copy = string
            copy.withUTF8 { writeEscaped(UnsafeRawBufferPointer($0), to: &output) }
        }
        output.append(UInt8(ascii: "\""))
    }

    private static func writeEscaped(_ bytes: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        var runStart = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            // Runs are copied as buffers (one memcpy each), not as slices (the generic path, byte by byte).
            if runStart < index - 1 { output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<(index - 1)])) }
            runStart = index
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            default:
                output.append(contentsOf: Array("\\u00".utf8))
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        if runStart < bytes.count { output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart...])) }
    }
}
