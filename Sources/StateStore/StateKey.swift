import Foundation
import Crypto

/// The operator's key for secrets at rest: 32 bytes, given as base64 or hex in
/// `ORGCTL_STATE_KEY` or a key file.
///
/// Two keys are derived from it with HKDF-SHA256: one encrypts secret values (AES-256-GCM), one
/// computes their fingerprints (HMAC-SHA256), so a fingerprint reveals nothing about the value and
/// cannot be brute-forced from the database alone.
public struct StateKey: Sendable {
    let encryptionKey: [UInt8]
    let fingerprintKey: [UInt8]
    /// Names the key without revealing it: the first 16 hex digits of SHA-256 over a label and the key.
    public let keyID: String

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
        do {
            encryptionKey = try KeyDerivation.hkdfSHA256(
                inputKey: raw, salt: Array("orgctl".utf8), info: Array("orgctl secret encryption v1".utf8), outputByteCount: 32)
            fingerprintKey = try KeyDerivation.hkdfSHA256(
                inputKey: raw, salt: Array("orgctl".utf8), info: Array("orgctl secret fingerprint v1".utf8), outputByteCount: 32)
        } catch {
            throw InvalidKey(description: "the state key could not be used: \(error)")
        }
        keyID = String(Hex.encode(SHA256.hash(Array("orgctl key id v1".utf8) + raw)).prefix(16))
    }

    /// `hmac-sha256:<hex>`: equal values give equal fingerprints under the same key.
    public func fingerprint(_ value: [UInt8]) -> String {
        "hmac-sha256:" + Hex.encode(HMACSHA256.authenticationCode(for: value, key: fingerprintKey))
    }

    /// nonce ‖ ciphertext ‖ tag, bound to `address#attribute` so a ciphertext copied to another row fails.
    func seal(_ value: [UInt8], address: String, attribute: String) throws -> [UInt8] {
        try AESGCM.seal(value, key: encryptionKey, authenticating: Array("\(address)#\(attribute)".utf8))
    }

    func open(_ sealed: [UInt8], address: String, attribute: String) throws -> [UInt8] {
        try AESGCM.open(sealed, key: encryptionKey, authenticating: Array("\(address)#\(attribute)".utf8))
    }
}
