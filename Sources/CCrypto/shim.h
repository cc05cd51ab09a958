#ifndef CCRYPTO_SHIM_H
#define CCRYPTO_SHIM_H
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/bio.h>
#include <openssl/asn1.h>
#include <openssl/x509.h>
#include <openssl/pem.h>

// BIO_get_mem_data is a macro over BIO_ctrl with a cast: the Clang importer cannot
// bring it into Swift. Returns the number of bytes and points *data at the BIO's buffer
// (owned by the BIO; copy it out before freeing the BIO).
static inline long ccrypto_bio_mem_data(BIO *bio, const char **data) {
    char *pointer = NULL;
    long length = BIO_get_mem_data(bio, &pointer);
    *data = pointer;
    return length;
}

// X509_NAME_print_ex flags for the one-line RFC 2253 form ("CN=acme.okta.com,O=Acme"),
// keeping non-ASCII characters as UTF-8 instead of \XX escapes (`-nameopt utf8`).
// A composite macro of OR-ed macros, so it is exposed as a function.
static inline unsigned long ccrypto_name_flags_rfc2253_utf8(void) {
    return XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
}

// A PEM password callback that never prompts: reading a certificate must not block
// on the terminal when the input carries an encrypted PEM block.
static inline int ccrypto_no_password(char *buffer, int size, int rwflag, void *userdata) {
    (void)buffer; (void)size; (void)rwflag; (void)userdata;
    return 0;
}

// PEM_read_bio_X509 with the non-prompting password callback above.
static inline X509 *ccrypto_pem_read_x509(BIO *bio) {
    return PEM_read_bio_X509(bio, NULL, ccrypto_no_password, NULL);
}

// OSSL_PARAM stores raw pointers to its key and data. From Swift, the OSSL_*_PARAM_*
// key macros bridge to temporary C strings that die right after the construct call,
// leaving a dangling key (and OpenSSL then silently ignores or rejects the parameter).
// So parameter arrays are built here, with C string literals, and used within one call.

// EVP_MAC_init for HMAC-SHA256. `key` must be non-NULL (NULL means "keep the old key");
// keyLength may be 0.
static inline int ccrypto_hmac_sha256_init(EVP_MAC_CTX *context, const unsigned char *key, size_t keyLength) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_init(context, key, keyLength, params);
}

// HKDF-SHA256 (extract and expand) through EVP_KDF "HKDF". `key` must be non-NULL
// (an empty key is legal); a zero-length salt or info is left out, which HKDF treats
// as the all-zero salt and the empty info.
static inline int ccrypto_hkdf_sha256(EVP_KDF_CTX *context, unsigned char *output, size_t outputLength,
                                      const unsigned char *key, size_t keyLength,
                                      const unsigned char *salt, size_t saltLength,
                                      const unsigned char *info, size_t infoLength) {
    OSSL_PARAM params[5];
    size_t count = 0;
    params[count++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[count++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, keyLength);
    if (salt != NULL && saltLength > 0)
        params[count++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltLength);
    if (info != NULL && infoLength > 0)
        params[count++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infoLength);
    params[count] = OSSL_PARAM_construct_end();
    return EVP_KDF_derive(context, output, outputLength, params);
}
#endif
