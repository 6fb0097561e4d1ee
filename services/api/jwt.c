/* jwt: HS256-only JWT signing and verification (see jwt.h). */
#include "jwt.h"

#include "crypto.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *jwt_b64url_encode_new(const uint8_t *in, size_t n)
{
    char *out = util_malloc(((n + 2) / 3) * 4 + 1);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
        out[o++] = B64URL[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int jwt_b64url_decode_new(const char *s, size_t slen, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    if (slen % 4 == 1)
        return -1;
    uint8_t *buf = util_malloc(slen * 3 / 4 + 1);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < slen; i++) {
        int v = b64val(s[i]);
        if (v < 0) {
            free(buf);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* leftover bits must be zero, else two encodings would decode alike */
    if (acc != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = o;
    return 0;
}

static const char HEADER[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

char *jwt_sign_new(const cJSON *claims, const uint8_t *key, size_t keylen, char *err, size_t errlen)
{
    if (!cJSON_IsObject(claims) || !key || keylen < JWT_MIN_KEY_LEN) {
        util_err(err, errlen, "jwt: bad claims or key");
        return NULL;
    }
    char *payload = cJSON_PrintUnformatted(claims);
    if (!payload) {
        util_err(err, errlen, "jwt: cannot encode claims");
        return NULL;
    }
    char *h = jwt_b64url_encode_new((const uint8_t *)HEADER, sizeof HEADER - 1);
    char *p = jwt_b64url_encode_new((const uint8_t *)payload, strlen(payload));
    cJSON_free(payload);
    size_t signed_len = strlen(h) + 1 + strlen(p);
    char *tok = util_malloc(signed_len + 1 + 44);
    memcpy(tok, h, strlen(h));
    tok[strlen(h)] = '.';
    memcpy(tok + strlen(h) + 1, p, strlen(p) + 1);
    free(h);
    free(p);
    uint8_t mac[CRYPTO_SHA256_LEN];
    if (crypto_hmac_sha256(key, keylen, tok, signed_len, mac, err, errlen) != 0) {
        free(tok);
        return NULL;
    }
    char *sig = jwt_b64url_encode_new(mac, sizeof mac);
    tok[signed_len] = '.';
    memcpy(tok + signed_len + 1, sig, strlen(sig) + 1);
    free(sig);
    return tok;
}

/* A NumericDate claim: a finite number (JSON integer or not). 1 present, 0 absent, -1 bad. */
static int numeric_date(const cJSON *claims, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > 253402300799.0)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 1;
}

int jwt_verify(const char *token, const uint8_t *key, size_t keylen, int64_t now_s,
               int64_t leeway_s, cJSON **claims, char *err, size_t errlen)
{
    *claims = NULL;
    if (!token || !key || keylen < JWT_MIN_KEY_LEN)
        return util_err(err, errlen, "jwt: no token or key");
    size_t n = strnlen(token, JWT_MAX_LEN + 1);
    if (n == 0 || n > JWT_MAX_LEN)
        return util_err(err, errlen, "jwt: bad length");
    const char *d1 = memchr(token, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)))
        return util_err(err, errlen, "jwt: not three segments");
    uint8_t *hdr = NULL, *pl = NULL, *sig = NULL;
    size_t hl = 0, plen = 0, sl = 0;
    cJSON *hj = NULL, *pj = NULL;
    int rc = -1;
    if (jwt_b64url_decode_new(token, (size_t)(d1 - token), &hdr, &hl) != 0 ||
        jwt_b64url_decode_new(d1 + 1, (size_t)(d2 - d1 - 1), &pl, &plen) != 0 ||
        jwt_b64url_decode_new(d2 + 1, n - (size_t)(d2 + 1 - token), &sig, &sl) != 0) {
        util_err(err, errlen, "jwt: bad base64url");
        goto out;
    }
    hj = cJSON_ParseWithLength((const char *)hdr, hl);
    const cJSON *alg = hj ? cJSON_GetObjectItemCaseSensitive(hj, "alg") : NULL;
    if (!cJSON_IsObject(hj) || !cJSON_IsString(alg) || strcmp(alg->valuestring, "HS256") != 0) {
        util_err(err, errlen, "jwt: algorithm not accepted");
        goto out;
    }
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(hj, "typ");
    if ((typ && (!cJSON_IsString(typ) || strcmp(typ->valuestring, "JWT") != 0)) ||
        cJSON_GetObjectItemCaseSensitive(hj, "crit")) {
        util_err(err, errlen, "jwt: header not accepted");
        goto out;
    }
    uint8_t mac[CRYPTO_SHA256_LEN];
    if (crypto_hmac_sha256(key, keylen, token, (size_t)(d2 - token), mac, err, errlen) != 0)
        goto out;
    if (sl != sizeof mac || !crypto_ct_equal(mac, sig, sizeof mac)) {
        util_err(err, errlen, "jwt: bad signature");
        goto out;
    }
    pj = cJSON_ParseWithLength((const char *)pl, plen);
    if (!cJSON_IsObject(pj)) {
        util_err(err, errlen, "jwt: payload is not an object");
        goto out;
    }
    int64_t exp = 0, nbf = 0;
    int he = numeric_date(pj, "exp", &exp), hn = numeric_date(pj, "nbf", &nbf);
    if (he != 1) {
        util_err(err, errlen, "jwt: exp missing or invalid");
        goto out;
    }
    if (hn < 0) {
        util_err(err, errlen, "jwt: nbf invalid");
        goto out;
    }
    if (now_s >= exp + leeway_s) {
        util_err(err, errlen, "jwt: expired");
        goto out;
    }
    if (hn == 1 && now_s + leeway_s < nbf) {
        util_err(err, errlen, "jwt: not yet valid");
        goto out;
    }
    *claims = pj;
    pj = NULL;
    rc = 0;
out:
    cJSON_Delete(hj);
    cJSON_Delete(pj);
    free(hdr);
    free(pl);
    free(sig);
    return rc;
}
