import Foundation
import Crypto

/// The operator's key for secrets at rest: 32 bytes, given as base64 or hex in
/// `ORGCTL_STATE_KEY` or a key file.
///
/// Keys are derived from it with HKDF-SHA256 (salt `orgctl`), one per use, so no use can stand in
/// for another: one encrypts secret values (AES-256-GCM), one computes their fingerprints
/// (HMAC-SHA256, so a fingerprint reveals nothing about the value and cannot be brute-forced from
/// the database alone), one authenticates saved plans, one keys the row digests of
/// `orgctl_resources` and one computes the check value that names the key in `orgctl_meta`.
public struct StateKey: Sendable {
    let encryptionKey: [UInt8]
    let fingerprintKey: [UInt8]
    let planKey: [UInt8]
    let digestKey: [UInt8]
    /// Keys the stand-ins `state rekey` writes for a fingerprint or digest it cannot recompute (of a
    /// value it cannot read): they match no real fingerprint or digest under this key.
    let rekeyMarkerKey: [UInt8]
    /// `orgctl_meta.state_key_check`: HMAC-SHA256 of a fixed label under its own derived key. It
    /// tells the right key from another one and, being a MAC under a key derived from 32 random
    /// bytes, helps no one guess the key.
    public let checkValue: String
    /// Names the key without revealing it: the first 16 hex digits of SHA-256 over a label and the key.
    public let keyID: String
    /// False for 32 bytes that are plainly not random: all printable ASCII (a password or a phrase,
    /// not `openssl rand`), or fewer than 16 distinct byte values. Random bytes are either with a
    /// probability below 10⁻¹³. `state rekey` refuses such a new key: whoever guesses it can test
    /// the guess against the key id, the check value or any ciphertext.
    public let looksRandom: Bool

    public struct InvalidKey: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public init(encoded text: String) throws(InvalidKey) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let bytes: [UInt8]
        if trimmed.count == 64, let hex = Hex.decode(trimmed) {
            bytes = hex
        } else if let data = Data(base64Encoded: trimmed), data.count == 32 {
            bytes = [UInt8](data)
        } else {
            throw InvalidKey(description: "the state key must be 32 bytes written as base64 (44 characters) or hex (64 digits)")
        }
        try self.init(raw: bytes)
    }

    public init(raw: [UInt8]) throws(InvalidKey) {
        guard raw.count == 32 else { throw InvalidKey(description: "the state key must be exactly 32 bytes") }
        func derive(_ info: String) throws -> [UInt8] {
            try KeyDerivation.hkdfSHA256(inputKey: raw, salt: Array("orgctl".utf8), info: Array(info.utf8), outputByteCount: 32)
        }
        do {
            encryptionKey = try derive("orgctl secret encryption v1")
            fingerprintKey = try derive("orgctl secret fingerprint v1")
            planKey = try derive("orgctl saved plan v1")
            digestKey = try derive("orgctl row digest v1")
            rekeyMarkerKey = try derive("orgctl rekey marker v1")
            checkValue = Hex.encode(HMACSHA256.authenticationCode(for: Array("orgctl state key check v1".utf8), key: try derive("orgctl key check v1")))
        } catch {
            throw InvalidKey(description: "the state key could not be used: \(error)")
        }
        keyID = String(Hex.encode(SHA256.hash(Array("orgctl key id v1".utf8) + raw)).prefix(16))
        looksRandom = !raw.allSatisfy { $0 >= 0x20 && $0 < 0x7F } && Set(raw).count >= 16
    }

    /// `hmac-sha256:<hex>`: equal values give equal fingerprints under the same key.
    public func fingerprint(_ value: [UInt8]) -> String {
        "hmac-sha256:" + Hex.encode(HMACSHA256.authenticationCode(for: value, key: fingerprintKey))
    }

    /// `hmac-sha256:<hex>` of a saved plan's canonical bytes.
    public func planMAC(_ bytes: [UInt8]) -> String {
        "hmac-sha256:" + Hex.encode(HMACSHA256.authenticationCode(for: bytes, key: planKey))
    }

    /// Whether `mac` is ``planMAC(_:)`` of `bytes` (compared in constant time).
    public func isValidPlanMAC(_ mac: String, for bytes: [UInt8]) -> Bool {
        guard mac.hasPrefix("hmac-sha256:"), let code = Hex.decode(String(mac.dropFirst("hmac-sha256:".count))) else { return false }
        return HMACSHA256.isValid(code, for: bytes, key: planKey)
    }

    /// nonce ‖ ciphertext ‖ tag, bound to `address#attribute` so a ciphertext copied to another row fails.
    func seal(_ value: [UInt8], address: String, attribute: String) throws -> [UInt8] {
        try AESGCM.seal(value, key: encryptionKey, authenticating: Array("\(address)#\(attribute)".utf8))
    }

    func open(_ sealed: [UInt8], address: String, attribute: String) throws -> [UInt8] {
        try AESGCM.open(sealed, key: encryptionKey, authenticating: Array("\(address)#\(attribute)".utf8))
    }
}
