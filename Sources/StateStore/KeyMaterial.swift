/// How an issued API key is stored: never the key, only a display prefix and a SHA-256 hash
/// (`api_keys.key_prefix`, `api_keys.key_sha256`), read back as these two attributes.
public enum KeyMaterial {
    /// `keyPrefix`: the first ``prefixLength`` characters of the key (`sk_live_AbCd`), for people to recognise it.
    public static let prefixAttribute = "keyPrefix"
    /// `keyHash`: lowercase hex SHA-256 of the key's UTF-8 bytes, what the platform compares a presented key with.
    public static let hashAttribute = "keyHash"
    /// `sk_live_` and four characters of the random part.
    public static let prefixLength = 12

    public static func isKeyMaterial(_ attribute: String) -> Bool { attribute == prefixAttribute || attribute == hashAttribute }
}
