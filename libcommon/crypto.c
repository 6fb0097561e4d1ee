/* crypto: SHA-256, HMAC, AES-256-GCM sealing, base64 and wiping on OpenSSL 3 EVP.
 * See crypto.h for the sealed format and who owns what. */
#include "crypto.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "util.h"

/* Appends OpenSSL's own reason, when it left one, so "why did it fail" is not lost. */
static int ossl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e) {
        char buf[200];
        ERR_error_string_n(e, buf, sizeof buf);
        return util_err(err, errlen, "%s: %s", what, buf);
    }
    return util_err(err, errlen, "%s", what);
}

int crypto_sha256(const void *data, size_t n, uint8_t out[CRYPTO_SHA256_LEN], char *err,
                  size_t errlen)
{
    unsigned int len = 0;
    static const uint8_t empty = 0;
    if (!data && n)
        return util_err(err, errlen, "sha256: NULL input");
    if (EVP_Digest(data ? data : &empty, n, out, &len, EVP_sha256(), NULL) != 1 ||
        len != CRYPTO_SHA256_LEN)
        return ossl_err(err, errlen, "sha256 failed");
    return 0;
}

int crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t n,
                       uint8_t out[CRYPTO_SHA256_LEN], char *err, size_t errlen)
{
    static const uint8_t empty = 0;
    size_t len = 0;
    if ((!key && keylen) || (!msg && n))
        return util_err(err, errlen, "hmac: NULL input");
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key ? key : &empty, keylen,
                   msg ? msg : &empty, n, out, CRYPTO_SHA256_LEN, &len) ||
        len != CRYPTO_SHA256_LEN)
        return ossl_err(err, errlen, "hmac-sha256 failed");
    return 0;
}

int crypto_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t n,
                           char out[CRYPTO_SHA256_HEXLEN], char *err, size_t errlen)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t mac[CRYPTO_SHA256_LEN];
    if (crypto_hmac_sha256(key, keylen, msg, n, mac, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < sizeof mac; i++) {
        out[2 * i] = digits[mac[i] >> 4];
        out[2 * i + 1] = digits[mac[i] & 15];
    }
    out[2 * CRYPTO_SHA256_LEN] = '\0';
    return 0;
}

int crypto_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void crypto_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

/* EVP takes int lengths; anything near INT_MAX is not a key or a transaction. */
#define GCM_MAX_LEN ((size_t)INT_MAX - CRYPTO_SEAL_OVERHEAD - 16)

int crypto_gcm_seal(const uint8_t key[CRYPTO_GCM_KEY_LEN], const void *aad, size_t aadlen,
                    const void *pt, size_t ptlen, uint8_t **out, size_t *outlen, char *err,
                    size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    if ((!aad && aadlen) || (!pt && ptlen))
        return util_err(err, errlen, "gcm seal: NULL input");
    if (ptlen > GCM_MAX_LEN || aadlen > GCM_MAX_LEN)
        return util_err(err, errlen, "gcm seal: input too large");
    size_t total = ptlen + CRYPTO_SEAL_OVERHEAD;
    uint8_t *buf = util_malloc(total);
    uint8_t *nonce = buf + 1, *ct = buf + 1 + CRYPTO_GCM_NONCE_LEN, *tag = ct + ptlen;
    buf[0] = CRYPTO_SEAL_VERSION;
    if (util_random(nonce, CRYPTO_GCM_NONCE_LEN) != 0) {
        free(buf);
        return util_err(err, errlen, "gcm seal: no randomness for the nonce");
    }
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, ok = ctx != NULL;
    ok = ok && EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), key, nonce, NULL) == 1;
    if (ok && aadlen)
        ok = EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aadlen) == 1;
    if (ok && ptlen)
        ok = EVP_EncryptUpdate(ctx, ct, &len, pt, (int)ptlen) == 1 && (size_t)len == ptlen;
    ok = ok && EVP_EncryptFinal_ex(ctx, ct + ptlen, &len) == 1 && len == 0;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_GCM_TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        crypto_wipe(buf, total);
        free(buf);
        return ossl_err(err, errlen, "gcm seal failed");
    }
    *out = buf;
    *outlen = total;
    return 0;
}

int crypto_gcm_open(const uint8_t key[CRYPTO_GCM_KEY_LEN], const void *aad, size_t aadlen,
                    const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen, char *err,
                    size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    if ((!aad && aadlen) || !in)
        return util_err(err, errlen, "gcm open: NULL input");
    if (inlen < CRYPTO_SEAL_OVERHEAD)
        return util_err(err, errlen, "gcm open: sealed blob too short (%zu bytes)", inlen);
    if (in[0] != CRYPTO_SEAL_VERSION)
        return util_err(err, errlen, "gcm open: unknown format version %u", in[0]);
    if (inlen > GCM_MAX_LEN || aadlen > GCM_MAX_LEN)
        return util_err(err, errlen, "gcm open: input too large");
    size_t ctlen = inlen - CRYPTO_SEAL_OVERHEAD;
    const uint8_t *nonce = in + 1, *ct = in + 1 + CRYPTO_GCM_NONCE_LEN, *tag = ct + ctlen;
    uint8_t *pt = util_malloc(ctlen ? ctlen : 1);
    uint8_t tagbuf[CRYPTO_GCM_TAG_LEN];
    memcpy(tagbuf, tag, sizeof tagbuf); /* the ctrl takes a non-const pointer */
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, ok = ctx != NULL;
    ok = ok && EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), key, nonce, NULL) == 1;
    if (ok && aadlen)
        ok = EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aadlen) == 1;
    if (ok && ctlen)
        ok = EVP_DecryptUpdate(ctx, pt, &len, ct, (int)ctlen) == 1 && (size_t)len == ctlen;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_GCM_TAG_LEN, tagbuf) == 1;
    int setup_ok = ok;
    ok = ok && EVP_DecryptFinal_ex(ctx, pt + ctlen, &len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        crypto_wipe(pt, ctlen);
        free(pt);
        if (!setup_ok)
            return ossl_err(err, errlen, "gcm open failed");
        ERR_clear_error();
        return util_err(
            err, errlen,
            "gcm open: authentication failed (wrong key, wrong context or tampered data)");
    }
    *out = pt;
    *outlen = ctlen;
    return 0;
}

char *crypto_b64_encode_new(const uint8_t *in, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = util_malloc(4 * ((n + 2) / 3) + 1), *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = tbl[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int crypto_b64_decode_new(const char *s, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    if (!s)
        return util_err(err, errlen, "base64: NULL input");
    size_t n = strlen(s);
    if (n % 4)
        return util_err(err, errlen, "base64: length %zu is not a multiple of 4", n);
    size_t pad = 0;
    if (n && s[n - 1] == '=')
        pad = (n >= 2 && s[n - 2] == '=') ? 2 : 1;
    uint8_t *buf = util_malloc(n / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int last = i + 4 == n;
        int v[4];
        for (int k = 0; k < 4; k++) {
            if (last && (size_t)k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_val(s[i + k]);
            if (v[k] < 0) {
                free(buf);
                return util_err(err, errlen, "base64: invalid character at offset %zu", i + k);
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | v[3];
        buf[o++] = (uint8_t)(w >> 16);
        if (!(last && pad == 2))
            buf[o++] = (uint8_t)(w >> 8);
        if (!(last && pad >= 1))
            buf[o++] = (uint8_t)w;
        /* Non-zero bits under the padding would let two texts decode to one value. */
        if (last && ((pad == 2 && (w & 0xffff)) || (pad == 1 && (w & 0xff)))) {
            free(buf);
            return util_err(err, errlen, "base64: non-canonical padding bits");
        }
    }
    *out = buf;
    *outlen = o;
    return 0;
}
