/* sign: webhook signatures (see sign.h). */
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "util.h"

static int mac_hex(const char *secret, size_t secret_len, int64_t ts, const char *body, size_t len,
                   char hex[CRYPTO_SHA256_HEXLEN], char *err, size_t errlen)
{
    char prefix[32];
    int p = snprintf(prefix, sizeof prefix, "%lld.", (long long)ts);
    char *msg = util_malloc((size_t)p + len + 1);
    memcpy(msg, prefix, (size_t)p);
    if (len)
        memcpy(msg + p, body, len);
    int rc = crypto_hmac_sha256_hex(secret, secret_len, msg, (size_t)p + len, hex, err, errlen);
    free(msg);
    return rc;
}

int sign_webhook(const char *secret, size_t secret_len, int64_t ts, const char *body, size_t len,
                 char out[SIGN_VALUE_LEN], char *err, size_t errlen)
{
    char hex[CRYPTO_SHA256_HEXLEN];
    if (!secret || secret_len == 0)
        return util_err(err, errlen, "empty webhook secret");
    if (mac_hex(secret, secret_len, ts, body, len, hex, err, errlen) != 0)
        return -1;
    snprintf(out, SIGN_VALUE_LEN, "v1=%s", hex);
    return 0;
}

int sign_verify(const char *secret, size_t secret_len, const char *ts_header,
                const char *sig_header, const char *body, size_t len, int64_t now_s,
                int64_t tolerance_s, char *err, size_t errlen)
{
    if (!ts_header || !sig_header)
        return util_err(err, errlen, "missing signature headers");
    char *end = NULL;
    long long ts = strtoll(ts_header, &end, 10);
    if (!*ts_header || *end || ts <= 0)
        return util_err(err, errlen, "bad timestamp");
    if (ts < now_s - tolerance_s || ts > now_s + tolerance_s)
        return util_err(err, errlen, "timestamp outside tolerance (replay?)");
    if (strlen(sig_header) != SIGN_VALUE_LEN - 1 || strncmp(sig_header, "v1=", 3) != 0)
        return util_err(err, errlen, "bad signature format");
    char want[SIGN_VALUE_LEN];
    if (sign_webhook(secret, secret_len, ts, body, len, want, err, errlen) != 0)
        return -1;
    if (!crypto_ct_equal(want, sig_header, SIGN_VALUE_LEN - 1))
        return util_err(err, errlen, "signature mismatch");
    return 0;
}
