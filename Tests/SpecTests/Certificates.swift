import Foundation
/// Self-signed P-256 certificates made with Python `cryptography` when these tests were written
/// (public parts only; the keys were discarded). Dates are relative to `fixedNow`
/// (2026-11-22T12:00:00Z).
enum TestCertificates {
    /// Valid 2019-01-01 to 2020-01-01: expired.
    static let expired = """
        -----BEGIN CERTIFICATE-----
        MIIBOjCB4qADAgECAhRZ+lkqZs18Kv4IHkT9vmDs5nN7nDAKBggqhkjOPQQDAjAe
        MRwwGgYDVQQDDBNleHBpcmVkLmlkcC5leGFtcGxlMB4XDTE5MDEwMTAwMDAwMFoX
        DTIwMDEwMTAwMDAwMFowHjEcMBoGA1UEAwwTZXhwaXJlZC5pZHAuZXhhbXBsZTBZ
        MBMGByqGSM49AgEGCCqGSM49AwEHA0IABCa1aJoZwfFcTI1yoXmi3tBN4n/ciqbo
        K2ZQlyeAKBjFdu9HuXzgnLDDFaQmgKUbHo5PKdQmJQ8Z5AzqRbSfaD4wCgYIKoZI
        zj0EAwIDRwAwRAIgLC0oNkPUg5nR5/dneh05aXIRmyCC54FpYasdFX5n870CIB8t
        BQ9K7Y0ztflsXV8nAcSthlgYtnZ3PYL6iL6GrvXb
        -----END CERTIFICATE-----
        """

    /// Valid until 2026-12-10T00:00:00Z: expires within 30 days of fixedNow.
    static let expiring = """
        -----BEGIN CERTIFICATE-----
        MIIBPTCB5KADAgECAhR1vxRMgxsTyDCrhDgmduOwDkLD8jAKBggqhkjOPQQDAjAf
        MR0wGwYDVQQDDBRleHBpcmluZy5pZHAuZXhhbXBsZTAeFw0yNTEyMTAwMDAwMDBa
        Fw0yNjEyMTAwMDAwMDBaMB8xHTAbBgNVBAMMFGV4cGlyaW5nLmlkcC5leGFtcGxl
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmmBOr4YWVT8ynvTw91PAqdeTEUB3
        g87M5+Va6KjbGBLSd45WJCv78RsFXOKH24xTMYJsNTMf+3ASsDRNaLooCzAKBggq
        hkjOPQQDAgNIADBFAiEAk18bEgw4gr5HZarOOQ/BNAtajPuRUk/KWCjC9g82kEQC
        IEBfHPrWlm4zeNNEck3v5KIulvj/d0698dH5E24uF+Rm
        -----END CERTIFICATE-----
        """

    /// Valid until 2026-12-23T00:00:00Z: just over 30 days after fixedNow, so no warning.
    static let later = """
        -----BEGIN CERTIFICATE-----
        MIIBNjCB3qADAgECAhRpzaiG821++LtxNf4vsoa1CXlDizAKBggqhkjOPQQDAjAc
        MRowGAYDVQQDDBFsYXRlci5pZHAuZXhhbXBsZTAeFw0yNTEyMjMwMDAwMDBaFw0y
        NjEyMjMwMDAwMDBaMBwxGjAYBgNVBAMMEWxhdGVyLmlkcC5leGFtcGxlMFkwEwYH
        KoZIzj0CAQYIKoZIzj0DAQcDQgAEmoXo6zUhVO+kpdeJwld5Yo0WvLjdNJeY3+Jt
        k52A9NTfjWAJbOUJQuuDoZvbRd4JyXQStOa0k1aHM/Gwb5mHfDAKBggqhkjOPQQD
        AgNHADBEAiAyL4Yvw/CKkdzPUVJi/nHI2UjqzOGTQv9UIPl+JlddZQIgGEm43wL4
        wHznI7FquzPku/0PG4j/G8QxNtZHOCQdZ+0=
        -----END CERTIFICATE-----
        """

    /// Not a certificate at all.
    static let garbage = """
        -----BEGIN CERTIFICATE-----
        bm90IGEgY2VydGlmaWNhdGU=
        -----END CERTIFICATE-----
        """
}
