import Spec
import StateStore
import Crypto

/// Key material for one API key, made at apply time from the CSPRNG.
///
/// The plaintext leaves orgctl once (a `--secrets-out` file or the terminal); the state database and
/// audit entries hold only ``prefix`` and ``sha256``. `description` never shows the plaintext.
public struct IssuedKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public static let scheme = "sk_live_"
    public static let randomByteCount = 32

    /// `sk_live_` + base62 of 32 random bytes.
    public let plaintext: String
    /// The first ``KeyMaterial/prefixLength`` characters of the key.
    public let prefix: String
    /// Lowercase hex SHA-256 of the key's UTF-8 bytes.
    public let sha256: String

    /// A fresh key from `SecureRandom`.
    public init() throws {
        try self.init(random: SecureRandom.bytes(count: Self.randomByteCount))
    }

    init(random: [UInt8]) {
        plaintext = Self.scheme + Base62.encode(random)
        prefix = String(plaintext.prefix(KeyMaterial.prefixLength))
        sha256 = Hex.encode(SHA256.hash(Array(plaintext.utf8)))
    }

    public var description: String { "\(prefix)… (sha256:\(sha256.prefix(16)))" }
    public var debugDescription: String { description }

    /// What the state database stores for it.
    var attributes: [Attribute] {
        [Attribute(KeyMaterial.prefixAttribute, .string(prefix)), Attribute(KeyMaterial.hashAttribute, .string(sha256))]
    }
}

extension Reconciler {
    /// New key material for every change of `plan` that issues or rotates an API key, keyed by address.
    ///
    /// Made before apply so the caller can store the plaintext (and refuse to apply when it cannot)
    /// before anything is written to the database.
    public static func issueKeys(for plan: Plan) throws -> [String: IssuedKey] {
        var keys: [String: IssuedKey] = [:]
        for change in plan.changes where change.key != nil && change.action != .delete {
            keys[change.address] = try IssuedKey()
        }
        return keys
    }
}
