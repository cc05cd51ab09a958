import Crypto
import Spec

/// The text a plan id hashes (``Reconciler/planID(databaseID:auditHead:changes:policies:)``),
/// written as bytes into one buffer that is hashed a buffer at a time: no string is built per line
/// or per value (a first apply's plan has half a million changes, and the id is computed on the
/// apply's critical path).
struct PlanIDStream {
    private let hasher = SHA256Hasher()
    private var buffer: [UInt8] = []

    init() {
        buffer.reserveCapacity(1 << 16)
    }

    /// Appends `text`'s UTF-8 bytes (a run at a time; a small string from its inline storage).
    mutating func add(_ text: String) {
        buffer.appendUTF8(of: text)
        flushIfFull()
    }

    private mutating func add(byte: UInt8) {
        buffer.append(byte)
    }

    /// Appends `value` as the plan id spells it (`Value.description`, but secrets and documents by
    /// digest), without building the string.
    mutating func addDigestText(_ value: Value) {
        switch value {
        case .null: add("(none)")
        case .bool(let flag): add(flag ? "true" : "false")
        case .int(let number): add(String(number))  // a small string: no allocation
        case .string(let text):
            add(byte: UInt8(ascii: "\""))
            add(text)
            add(byte: UInt8(ascii: "\""))
        case .list(let items):
            add(byte: UInt8(ascii: "["))
            for (position, item) in items.enumerated() {
                if position > 0 { add(", ") }
                add(byte: UInt8(ascii: "\""))
                add(item)
                add(byte: UInt8(ascii: "\""))
            }
            add(byte: UInt8(ascii: "]"))
        case .secret(let fingerprint):
            add("secret:")
            add(fingerprint)
        case .document(let sha256, _):
            add("doc:")
            add(sha256)
        }
    }

    private mutating func flushIfFull() {
        if buffer.count >= 1 << 16 {
            hasher.update(buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }

    /// The first 16 hex digits of the SHA-256 of everything added.
    mutating func id() -> String {
        hasher.update(buffer)
        buffer.removeAll()
        return String(Hex.encode(hasher.finalize()).prefix(16))
    }
}
