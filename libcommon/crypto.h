/* crypto: the symmetric primitives the backend builds on — SHA-256, HMAC-SHA256,
 * constant-time comparison, AES-256-GCM sealing, base64 and secure wiping — on
 * OpenSSL 3.0 EVP (no deprecated low-level APIs).
 *
 * Sealed format (crypto_gcm_seal / crypto_gcm_open), so a blob carries everything
 * needed to open it except the key and the AAD:
 *     version (1 byte, CRYPTO_SEAL_VERSION) || nonce (12) || ciphertext || tag (16)
 * The nonce is random per seal: with 96-bit random nonces a key stays safe for far
 * more than the 2^32 seals NIST allows, which no signer key comes near.
 * A blob that fails authentication (wrong key, wrong AAD, any flipped bit) is an
 * error and its plaintext is never returned.
 *
 * Memory: outputs go to caller buffers, except the seal/open/base64 `out` buffers,
 * which are malloc'd and owned by the caller (free(); opened plaintext should be
 * crypto_wipe'd first). Inputs are borrowed. */
#ifndef PAIMON_CRYPTO_H
#define PAIMON_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SHA256_LEN    32
#define CRYPTO_SHA256_HEXLEN 65 /* 64 lowercase digits + NUL, no prefix */
#define CRYPTO_GCM_KEY_LEN   32
#define CRYPTO_GCM_NONCE_LEN 12
#define CRYPTO_GCM_TAG_LEN   16
#define CRYPTO_SEAL_VERSION  1
/* Sealed size = plaintext size + CRYPTO_SEAL_OVERHEAD. */
#define CRYPTO_SEAL_OVERHEAD (1 + CRYPTO_GCM_NONCE_LEN + CRYPTO_GCM_TAG_LEN)

int crypto_sha256(const void *data, size_t n, uint8_t out[CRYPTO_SHA256_LEN], char *err,
                  size_t errlen);
int crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t n,
                       uint8_t out[CRYPTO_SHA256_LEN], char *err, size_t errlen);
/* Lowercase hex of the MAC (as `openssl dgst -sha256 -hmac` prints it). */
int crypto_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t n,
                           char out[CRYPTO_SHA256_HEXLEN], char *err, size_t errlen);

/* 1 if the n bytes are equal, else 0; time depends on n only, so comparing MACs
 * and tokens leaks nothing about where they differ. */
int crypto_ct_equal(const void *a, const void *b, size_t n);
/* Zeroes memory in a way the compiler cannot elide. NULL is fine. */
void crypto_wipe(void *p, size_t n);

/* Seals pt with key and aad (aad may be NULL when aadlen is 0) into a new buffer
 * of ptlen + CRYPTO_SEAL_OVERHEAD bytes. */
int crypto_gcm_seal(const uint8_t key[CRYPTO_GCM_KEY_LEN], const void *aad, size_t aadlen,
                    const void *pt, size_t ptlen, uint8_t **out, size_t *outlen, char *err,
                    size_t errlen);
/* Opens a sealed blob. On any failure (bad version, too short, authentication)
 * returns -1 and *out is NULL. The plaintext buffer is always allocated (at least
 * one byte) so an empty plaintext is distinguishable from failure. */
int crypto_gcm_open(const uint8_t key[CRYPTO_GCM_KEY_LEN], const void *aad, size_t aadlen,
                    const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen, char *err,
                    size_t errlen);

/* Standard base64 (RFC 4648 §4, with padding) into a new NUL-terminated string. */
char *crypto_b64_encode_new(const uint8_t *in, size_t n);
/* Strict decoding of untrusted text: standard alphabet, padding required, no
 * whitespace. Into a new buffer (at least one byte allocated). */
int crypto_b64_decode_new(const char *s, uint8_t **out, size_t *outlen, char *err, size_t errlen);

#endif
