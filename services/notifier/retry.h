/* retry: what a delivery attempt's outcome means and when to try again — pure functions.
 *  - 2xx: sent.
 *  - 429: the channel pauses for Retry-After / retry_after (or a default), the message
 *    waits; it is not counted as a failed attempt, so rate limiting never loses anything.
 *  - 5xx, 408, transport errors and timeouts: retried with exponential backoff and equal
 *    jitter, up to max_attempts, then dead (DLQ entry + fallback channel).
 *  - other 4xx (e.g. Slack 400 invalid_payload, Telegram 400 "chat not found"): permanent,
 *    retrying cannot help: dead at once. */
#ifndef PAIMON_NOTIFIER_RETRY_H
#define PAIMON_NOTIFIER_RETRY_H

#include <stdint.h>

typedef enum {
    RETRY_SENT = 0,
    RETRY_AGAIN = 1,     /* transient failure: back off */
    RETRY_PAUSE = 2,     /* 429: wait retry_after, not an attempt */
    RETRY_PERMANENT = 3, /* give up now */
} retry_class;

const char *retry_class_name(retry_class c);

/* transport_ok: the request completed with an HTTP status (0 on connect errors and
 * timeouts). */
retry_class retry_classify_http(int transport_ok, long status);
/* SMTP reply code: 2xx sent, 4xx transient, 5xx permanent; 0 = no reply (transient). */
retry_class retry_classify_smtp(long code);

/* Delay before attempt `attempt` (1 = the first retry): half of min(max, base*2^(attempt-1))
 * fixed, the other half scaled by rnd in [0, 2^32). */
int64_t retry_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint32_t rnd);

/* Retry-After header: delta seconds or an IMF-fixdate. Returns ms to wait (>= 0), or
 * -1 when absent or unparsable. now_ms: wall clock. */
int64_t retry_after_header_ms(const char *value, int64_t now_ms);

#endif
