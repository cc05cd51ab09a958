internal import CCrypto

/// The OpenSSL libcrypto orgctl runs with (`orgctl version`).
public enum OpenSSLLibrary {
    /// The loaded library's version text, e.g. `OpenSSL 3.0.13 30 Jan 2024`.
    public static var version: String { String(cString: OpenSSL_version(OPENSSL_VERSION)) }
}
