/* sign: HMAC-SHA256 signatures of outgoing webhooks, over "<timestamp>.<body>" so a
 * receiver can reject a replayed body with an old timestamp. Headers sent:
 *   X-Paimon-Timestamp: <unix seconds>
 *   X-Paimon-Signature: v1=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>")>
 * (the same scheme as Stripe's and Slack's request signing). Verification is for tests and
 * for receivers written in C; it compares in constant time. Nothing is allocated. */
#ifndef PAIMON_NOTIFIER_SIGN_H
#define PAIMON_NOTIFIER_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_HEADER_TS  "X-Paimon-Timestamp"
#define SIGN_HEADER_SIG "X-Paimon-Signature"
#define SIGN_VALUE_LEN  (3 + 64 + 1) /* "v1=" + hex + NUL */

int sign_webhook(const char *secret, size_t secret_len, int64_t ts, const char *body, size_t len,
                 char out[SIGN_VALUE_LEN], char *err, size_t errlen);

/* 0 when sig_header is "v1=<hex>" matching the body and ts_header is within tolerance_s
 * of now_s; -1 with the reason otherwise. */
int sign_verify(const char *secret, size_t secret_len, const char *ts_header,
                const char *sig_header, const char *body, size_t len, int64_t now_s,
                int64_t tolerance_s, char *err, size_t errlen);

#endif
