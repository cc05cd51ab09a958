public import Spec
import Crypto

/// A SHA-256 value held inline (no heap allocation), compared and hashed as four words.
/// Its text form, the one `orgctl_resources.digest` stores, is 64 lowercase hex digits.
public struct Digest: Hashable, Sendable, CustomStringConvertible {
    private var words: (UInt64, UInt64, UInt64, UInt64)

    /// The digest of exactly 32 bytes.
    init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32, "a SHA-256 digest has 32 bytes")
        func word(_ at: Int) -> UInt64 {
            var value: UInt64 = 0
            for i in 0..<8 { value = value << 8 | UInt64(bytes[at + i]) }
            return value
        }
        words = (word(0), word(8), word(16), word(24))
    }

    /// Parses 64 hex digits (either case); nil for anything else.
    public init?(hex: UnsafeRawBufferPointer) {
        guard hex.count == 64 else { return nil }
        var parsed: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for w in 0..<4 {
            var value: UInt64 = 0
            for i in 0..<16 {
                let c = hex[w * 16 + i]
                let nibble: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = c - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt64(nibble)
            }
            switch w {
            case 0: parsed.0 = value
            case 1: parsed.1 = value
            case 2: parsed.2 = value
            default: parsed.3 = value
            }
        }
        words = parsed
    }

    public init?(hex: String) {
        var text = hex
        guard let parsed = text.withUTF8({ Digest(hex: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = parsed
    }

    public static func == (a: Digest, b: Digest) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }

    /// The 32 bytes, most significant first.
    public var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { buffer, initialized in
            forEachByte { index, byte in buffer[index] = byte }
            initialized = 32
        }
    }

    /// 64 lowercase hex digits (every apply records one per resource written).
    public var description: String { Hex.encode(bytes) }

    /// Calls `body` with each of the 32 bytes and its index, most significant first.
    private func forEachByte(_ body: (Int, UInt8) -> Void) {
        func word(_ w: Int, _ word: UInt64) {
            for i in 0..<8 { body(8 * w + i, UInt8(truncatingIfNeeded: word >> UInt64(56 - 8 * i))) }
        }
        word(0, words.0)
        word(1, words.1)
        word(2, words.2)
        word(3, words.3)
    }
}

/// A digest of a resource's stored attributes: what `orgctl_resources.digest` records at apply,
/// compared later to detect changes made outside orgctl.
///
/// The input is the kind, then every non-null attribute in name order, each as
/// `name 0x00 tag value 0x00`; secrets contribute their fingerprint and documents their SHA-256.
/// The row digest is SHA-256 of that input; what a database of schema 5 stores (and what plans
/// compare) is the keyed digest HMAC-SHA256(digest key, row digest ‖ row id), the row id as 8
/// bytes big-endian, the digest key derived from the state key. Without the state key nobody can
/// compute it, so a row edited outside orgctl cannot be given a matching digest; and as it names
/// the row, the keyed digest of another row holding the wanted values (an owner's, in any tenant)
/// does not match either. The row id, not the address, so a rename (which keeps row ids) keeps
/// every digest below it. (Keying the SHA-256 rather than the input lets the migration from
/// schema 4 key each stored digest, with the row id stored beside it, without reading, or
/// trusting, the rows.)
public enum ResourceDigest {
    /// The keyed digest of the resource stored in row `rowID` under `key`; the plain row digest
    /// (SHA-256) when `key` is nil.
    public static func of(_ resource: Resource, key: StateKey? = nil, rowID: Int64 = 0) -> Digest {
        var digester = ResourceDigester(key: key)
        return digester.digest(resource, rowID: rowID)
    }
}

/// Digests resources one after another with one input buffer, one SHA-256 context and one HMAC
/// context, so a digest allocates nothing: every plan digests every stored row.
struct ResourceDigester {
    private var bytes: [UInt8] = []
    private let hasher = SHA256Hasher()
    private let keyed: DigestKeying?

    init(key: StateKey?) {
        keyed = key.map(DigestKeying.init)
    }

    mutating func digest(_ resource: Resource, rowID: Int64) -> Digest {
        bytes.removeAll(keepingCapacity: true)
        bytes.appendUTF8(of: resource.kind.rawValue)
        bytes.append(0)
        for attribute in resource.attributes {
            // Appended in place (no intermediate strings): this runs for every stored row on every plan.
            func field(_ tag: UInt8) {
                bytes.appendUTF8(of: attribute.name)
                bytes.append(0)
                bytes.append(tag)
            }
            switch attribute.value {
            case .null: continue
            case .bool(let b): field(UInt8(ascii: "b")); bytes.append(b ? UInt8(ascii: "1") : UInt8(ascii: "0"))
            case .int(let i): field(UInt8(ascii: "i")); bytes += String(i).utf8  // a small string: no allocation
            case .string(let s): field(UInt8(ascii: "s")); bytes.appendUTF8(of: s)
            case .list(let l):
                field(UInt8(ascii: "l"))
                for (position, item) in l.enumerated() {
                    if position > 0 { bytes.append(0x1F) }
                    bytes.appendUTF8(of: item)
                }
            case .secret(let fingerprint): field(UInt8(ascii: "x")); bytes.appendUTF8(of: fingerprint)
            case .document(let sha256, _): field(UInt8(ascii: "d")); bytes.appendUTF8(of: sha256)
            }
            bytes.append(0)
        }
        bytes.withUnsafeBytes { hasher.update($0) }
        return withUnsafeTemporaryAllocation(byteCount: 2 * SHA256.byteCount, alignment: 8) { buffer in
            let plain = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<SHA256.byteCount])
            hasher.finish(into: plain)
            guard let keyed else { return Digest(bytes: UnsafeRawBufferPointer(plain)) }
            return keyed.keyed(UnsafeRawBufferPointer(plain), rowID: rowID, using: &bytes)
        }
    }
}

/// Turns row digests into keyed digests: HMAC-SHA256 under the state key's digest key.
struct DigestKeying {
    let context: HMACSHA256Context

    init(_ key: StateKey) {
        context = HMACSHA256Context(key: key.digestKey)
    }

    /// The keyed form of a plain (schema 4) stored digest of row `rowID`: what the migration stores in its place.
    func keyed(_ plain: Digest, rowID: Int64) -> Digest {
        var input: [UInt8] = []
        return plain.bytes.withUnsafeBytes { keyed($0, rowID: rowID, using: &input) }
    }

    /// HMAC-SHA256(digest key, plain ‖ row id as 8 bytes big-endian), built in `input` (reused).
    func keyed(_ plain: UnsafeRawBufferPointer, rowID: Int64, using input: inout [UInt8]) -> Digest {
        input.removeAll(keepingCapacity: true)
        input += plain
        for shift in stride(from: 56, through: 0, by: -8) { input.append(UInt8(truncatingIfNeeded: UInt64(bitPattern: rowID) >> UInt64(shift))) }
        return withUnsafeTemporaryAllocation(byteCount: SHA256.byteCount, alignment: 8) { code in
            input.withUnsafeBytes { context.authenticate($0, into: code) }
            return Digest(bytes: UnsafeRawBufferPointer(code))
        }
    }
}
