import Crypto
public import Spec

/// The attributes of a resource as orgctl last wrote them, kept in `orgctl_resources.applied`
/// so that `orgctl drift` can show each drifted field's value as applied beside its value now.
///
/// A compact, unambiguous binary encoding (no separators that a value could contain), written
/// on every apply and read back only for the rows that drifted:
///
///     attribute := name-length(varint) name tag value
///     tag 'b': one byte 0/1 · 'i': 8 bytes little endian · 's', 'x' (secret fingerprint),
///     'd' (certificate SHA-256): length(varint) bytes · 'l': count(varint) then each item as length bytes
///
/// Null attributes are left out. Secrets are kept by fingerprint only, certificates by digest
/// only (their text is in the row), so the column never holds a secret.
public enum AppliedValues {
    public static func encode(_ attributes: [Attribute]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for attribute in attributes {
            switch attribute.value {
            case .null: continue
            case .bool(let b):
                header(attribute.name, "b", &out)
                out.append(b ? 1 : 0)
            case .int(let i):
                header(attribute.name, "i", &out)
                var bits = UInt64(bitPattern: i)
                for _ in 0..<8 {
                    out.append(UInt8(truncatingIfNeeded: bits))
                    bits >>= 8
                }
            case .string(let s):
                header(attribute.name, "s", &out)
                bytes(s, &out)
            case .secret(let fingerprint):
                header(attribute.name, "x", &out)
                bytes(fingerprint, &out)
            case .document(let sha256, _):
                header(attribute.name, "d", &out)
                bytes(sha256, &out)
            case .list(let items):
                header(attribute.name, "l", &out)
                varint(UInt64(items.count), &out)
                for item in items { bytes(item, &out) }
            }
        }
        return out
    }

    /// The attributes, sorted by name; nil when the bytes are not of this encoding (edited by hand).
    public static func decode(_ input: [UInt8]) -> [Attribute]? {
        var reader = ByteReader(bytes: input)
        var attributes: [Attribute] = []
        while !reader.atEnd {
            guard let name = reader.string(), let tag = reader.byte() else { return nil }
            let value: Value
            switch tag {
            case UInt8(ascii: "b"):
                guard let b = reader.byte() else { return nil }
                value = .bool(b != 0)
            case UInt8(ascii: "i"):
                guard let i = reader.int64() else { return nil }
                value = .int(i)
            case UInt8(ascii: "s"):
                guard let s = reader.string() else { return nil }
                value = .string(s)
            case UInt8(ascii: "x"):
                guard let s = reader.string() else { return nil }
                value = .secret(fingerprint: s)
            case UInt8(ascii: "d"):
                guard let s = reader.string() else { return nil }
                value = .document(sha256: s, text: "")
            case UInt8(ascii: "l"):
                guard let count = reader.varint(), count <= UInt64(input.count) else { return nil }
                var items: [String] = []
                for _ in 0..<count {
                    guard let item = reader.string() else { return nil }
                    items.append(item)
                }
                value = .list(items)
            default:
                return nil
            }
            attributes.append(Attribute(name, value))
        }
        return attributes.sorted { $0.name < $1.name }
    }

    private static func header(_ name: String, _ tag: Unicode.Scalar, _ out: inout [UInt8]) {
        bytes(name, &out)
        out.append(UInt8(ascii: tag))
    }

    private static func bytes(_ text: String, _ out: inout [UInt8]) {
        varint(UInt64(text.utf8.count), &out)
        out.appendUTF8(of: text)
    }

    private static func varint(_ value: UInt64, _ out: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        out.append(UInt8(rest))
    }

    private struct ByteReader {
        let bytes: [UInt8]
        var position = 0

        var atEnd: Bool { position >= bytes.count }

        mutating func byte() -> UInt8? {
            guard position < bytes.count else { return nil }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while shift < 64 {
                guard let b = byte() else { return nil }
                value |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return value }
                shift += 7
            }
            return nil
        }

        mutating func int64() -> Int64? {
            guard bytes.count - position >= 8 else { return nil }
            var bits: UInt64 = 0
            for offset in 0..<8 { bits |= UInt64(bytes[position + offset]) << (8 * UInt64(offset)) }
            position += 8
            return Int64(bitPattern: bits)
        }

        mutating func string() -> String? {
            guard let length = varint(), length <= UInt64(bytes.count - position) else { return nil }
            let end = position + Int(length)
            defer { position = end }
            return String(decoding: bytes[position..<end], as: UTF8.self)
        }
    }
}

/// What orgctl last applied to one address: its attributes (nil when the row was applied by an
/// orgctl older than schema version 2, which did not keep them) and the audit entry of that write.
public struct AppliedResource: Sendable {
    public var address: String
    public var kind: ResourceKind
    public var attributes: [Attribute]?
    public var auditSequence: Int64

    public init(address: String, kind: ResourceKind, attributes: [Attribute]?, auditSequence: Int64) {
        self.address = address
        self.kind = kind
        self.attributes = attributes
        self.auditSequence = auditSequence
    }
}
