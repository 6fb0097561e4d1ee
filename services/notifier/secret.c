/* secret: env-referenced or sealed secrets (see secret.h). */
#include "secret.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "util.h"

int secret_parse_key(const char *hex, uint8_t key[SECRET_KEY_LEN], char *err, size_t errlen)
{
    if (!hex || strlen(hex) != 2 * SECRET_KEY_LEN)
        return util_err(err, errlen, "PAIMON_MASTER_KEY must be 64 hex digits");
    for (size_t i = 0; i < SECRET_KEY_LEN; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = hex[2 * i + (size_t)j];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                return util_err(err, errlen, "PAIMON_MASTER_KEY must be 64 hex digits");
            v = v * 16 + d;
        }
        key[i] = (uint8_t)v;
    }
    return 0;
}

int secret_master_key(uint8_t key[SECRET_KEY_LEN], char *err, size_t errlen)
{
    const char *hex = getenv("PAIMON_MASTER_KEY");
    if (!hex || !*hex)
        return util_err(err, errlen, "PAIMON_MASTER_KEY is not set");
    return secret_parse_key(hex, key, err, errlen);
}

int secret_seal(const uint8_t key[SECRET_KEY_LEN], const char *aad, const char *plain,
                uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    if (!plain || !*plain || strlen(plain) > SECRET_MAX)
        return util_err(err, errlen, "secret must be 1..%d bytes", SECRET_MAX);
    return crypto_gcm_seal(key, aad, aad ? strlen(aad) : 0, plain, strlen(plain), out, outlen, err,
                           errlen);
}

char *secret_open_new(const uint8_t key[SECRET_KEY_LEN], const char *aad, const uint8_t *blob,
                      size_t len, char *err, size_t errlen)
{
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    if (crypto_gcm_open(key, aad, aad ? strlen(aad) : 0, blob, len, &pt, &ptlen, err, errlen) != 0)
        return NULL;
    if (memchr(pt, '\0', ptlen)) {
        crypto_wipe(pt, ptlen);
        free(pt);
        util_err(err, errlen, "sealed secret holds a NUL byte");
        return NULL;
    }
    char *s = util_malloc(ptlen + 1);
    memcpy(s, pt, ptlen);
    s[ptlen] = '\0';
    crypto_wipe(pt, ptlen);
    free(pt);
    return s;
}

int secret_env_name_ok(const char *s)
{
    if (!s || strncmp(s, "PAIMON_", 7) != 0 || strlen(s) > 128)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

char *secret_resolve_new(const char *env_name, const uint8_t *sealed, size_t sealed_len,
                         const char *aad, char *err, size_t errlen)
{
    if (env_name && *env_name) {
        if (!secret_env_name_ok(env_name)) {
            util_err(err, errlen, "secret variable name not allowed");
            return NULL;
        }
        const char *v = getenv(env_name);
        if (!v || !*v) {
            util_err(err, errlen, "secret variable %s is not set", env_name);
            return NULL;
        }
        return util_strdup(v);
    }
    if (!sealed || sealed_len == 0) {
        util_err(err, errlen, "no secret configured");
        return NULL;
    }
    uint8_t key[SECRET_KEY_LEN];
    if (secret_master_key(key, err, errlen) != 0)
        return NULL;
    char *s = secret_open_new(key, aad, sealed, sealed_len, err, errlen);
    crypto_wipe(key, sizeof key);
    return s;
}

void secret_free(char *s)
{
    if (!s)
        return;
    crypto_wipe(s, strlen(s));
    free(s);
}
