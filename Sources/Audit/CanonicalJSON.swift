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

    private static func write(_ value: JSONValue, to output: inout [UInt8]) {
        switch value {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .bool(let flag):
            output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .int(let number):
            output.append(contentsOf: String(number).utf8)
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

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func writeString(_ string: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x00..<0x20:
                output.append(contentsOf: Array("\\u00".utf8))
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0x0F)])
            default:
                // Multi-byte UTF-8 sequences pass through unchanged: every byte is >= 0x80.
                output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
