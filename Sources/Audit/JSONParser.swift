/// Why ``CanonicalJSON/decode(_:)`` rejected its input, and where.
public struct JSONDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case trailingData
        case tooDeep(limit: Int)
        case invalidUTF8
        case invalidEscape
        case loneSurrogate
        case controlCharacterInString
        case duplicateKey(String)
        case nonIntegerNumber
        case integerOutOfRange
        case invalidNumber
    }

    /// 0-based byte offset into the input where the problem was found.
    public var offset: Int
    public var reason: Reason

    public init(offset: Int, reason: Reason) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        let message: String
        switch reason {
        case .unexpectedEnd: message = "unexpected end of input"
        case .unexpectedByte(let byte):
            message =
                byte >= 0x21 && byte < 0x7F
                ? "unexpected character '\(Character(Unicode.Scalar(byte)))'"
                : "unexpected byte 0x\(String(byte, radix: 16))"
        case .trailingData: message = "data after the end of the JSON value"
        case .tooDeep(let limit): message = "arrays and objects nested deeper than \(limit) levels"
        case .invalidUTF8: message = "string is not valid UTF-8"
        case .invalidEscape: message = "invalid escape sequence in string"
        case .loneSurrogate: message = "\\u escape encodes a lone surrogate"
        case .controlCharacterInString: message = "unescaped control character in string"
        case .duplicateKey(let key): message = "duplicate key '\(key)' in object"
        case .nonIntegerNumber: message = "number is not an integer (fractions and exponents are not used)"
        case .integerOutOfRange: message = "integer does not fit in 64 bits"
        case .invalidNumber: message = "malformed number"
        }
        return "byte \(offset): \(message)"
    }
}

/// Recursive descent over bytes; recursion is bounded by `CanonicalJSON.maximumDepth`.
struct JSONParser {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func parseDocument() throws(JSONDecodingError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw fail(.trailingData) }
        return value
    }

    private func fail(_ reason: JSONDecodingError.Reason, at offset: Int? = nil) -> JSONDecodingError {
        JSONDecodingError(offset: offset ?? index, reason: reason)
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
            index += 1
        }
    }

    private mutating func expect(_ literal: String, value: JSONValue) throws(JSONDecodingError) -> JSONValue {
        for expected in literal.utf8 {
            guard let byte = current else { throw fail(.unexpectedEnd) }
            guard byte == expected else { throw fail(.unexpectedByte(byte)) }
            index += 1
        }
        return value
    }

    private mutating func parseValue(depth: Int) throws(JSONDecodingError) -> JSONValue {
        guard let byte = current else { throw fail(.unexpectedEnd) }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try expect("true", value: .bool(true))
        case UInt8(ascii: "f"): return try expect("false", value: .bool(false))
        case UInt8(ascii: "n"): return try expect("null", value: .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .int(try parseNumber())
        default: throw fail(.unexpectedByte(byte))
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONDecodingError) -> JSONValue {
        guard depth <= CanonicalJSON.maximumDepth else { throw fail(.tooDeep(limit: CanonicalJSON.maximumDepth)) }
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard let byte = current else { throw fail(.unexpectedEnd) }
            index += 1
            switch byte {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "]"): return .array(elements)
            default: throw fail(.unexpectedByte(byte), at: index - 1)
            }
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONDecodingError) -> JSONValue {
        guard depth <= CanonicalJSON.maximumDepth else { throw fail(.tooDeep(limit: CanonicalJSON.maximumDepth)) }
        let start = index
        index += 1  // {
        var members: [(String, JSONValue)] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            return .object(JSONObject())
        }
        while true {
            skipWhitespace()
            guard let byte = current else { throw fail(.unexpectedEnd) }
            guard byte == UInt8(ascii: "\"") else { throw fail(.unexpectedByte(byte)) }
            let key = try parseString()
            skipWhitespace()
            guard let colon = current else { throw fail(.unexpectedEnd) }
            guard colon == UInt8(ascii: ":") else { throw fail(.unexpectedByte(colon)) }
            index += 1
            skipWhitespace()
            members.append((key, try parseValue(depth: depth)))
            skipWhitespace()
            guard let next = current else { throw fail(.unexpectedEnd) }
            index += 1
            switch next {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "}"):
                switch JSONObject.sorted(members) {
                case .success(let object): return .object(object)
                case .failure(let duplicate): throw fail(.duplicateKey(duplicate.key), at: start)
                }
            default: throw fail(.unexpectedByte(next), at: index - 1)
            }
        }
    }

    /// Parses a string starting at its opening quote.
    private mutating func parseString() throws(JSONDecodingError) -> String {
        let start = index
        index += 1  // "
        var utf8: [UInt8] = []
        while true {
            guard let byte = current else { throw fail(.unexpectedEnd) }
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let string = String(validating: utf8, as: UTF8.self) else {
                    throw fail(.invalidUTF8, at: start)
                }
                return string
            case UInt8(ascii: "\\"):
                try parseEscape(into: &utf8)
            case 0x00..<0x20:
                throw fail(.controlCharacterInString)
            default:
                utf8.append(byte)
                index += 1
            }
        }
    }

    private mutating func parseEscape(into utf8: inout [UInt8]) throws(JSONDecodingError) {
        let start = index
        index += 1  // backslash
        guard let byte = current else { throw fail(.unexpectedEnd) }
        index += 1
        switch byte {
        case UInt8(ascii: "\""): utf8.append(0x22)
        case UInt8(ascii: "\\"): utf8.append(0x5C)
        case UInt8(ascii: "/"): utf8.append(0x2F)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try parseHex4()
            var scalarValue = UInt32(unit)
            if (0xD800...0xDBFF).contains(unit) {
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                else { throw fail(.loneSurrogate, at: start) }
                index += 2
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw fail(.loneSurrogate, at: start) }
                scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(unit) {
                throw fail(.loneSurrogate, at: start)
            }
            guard let scalar = Unicode.Scalar(scalarValue) else { throw fail(.loneSurrogate, at: start) }
            utf8.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            throw fail(.invalidEscape, at: start)
        }
    }

    private mutating func parseHex4() throws(JSONDecodingError) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard let byte = current else { throw fail(.unexpectedEnd) }
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail(.invalidEscape)
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    /// RFC 8259 number grammar; only the integer form is accepted.
    private mutating func parseNumber() throws(JSONDecodingError) -> Int64 {
        let start = index
        let negative = current == UInt8(ascii: "-")
        if negative { index += 1 }
        guard let first = current else { throw fail(.unexpectedEnd) }
        guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { throw fail(.invalidNumber, at: start) }
        // Accumulate negatively so Int64.min parses.
        var value: Int64 = 0
        var overflow = false
        if first == UInt8(ascii: "0") {
            index += 1
        } else {
            while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                let (shifted, o1) = value.multipliedReportingOverflow(by: 10)
                let (next, o2) = shifted.subtractingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
                overflow = overflow || o1 || o2
                value = next
                index += 1
            }
        }
        if let byte = current {
            switch byte {
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): throw fail(.nonIntegerNumber, at: start)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): throw fail(.invalidNumber, at: start)  // leading zero
            default: break
            }
        }
        if negative {
            guard !overflow else { throw fail(.integerOutOfRange, at: start) }
            return value
        }
        guard !overflow, value != Int64.min else { throw fail(.integerOutOfRange, at: start) }
        return -value
    }
}
