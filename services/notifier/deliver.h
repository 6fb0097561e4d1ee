/* deliver: the delivery worker — a thread with its own PostgreSQL connection (LISTENing on
 * notifier_outbox so a committed notification wakes it at once) and its own Redis
 * connection (rate limits). Each round it flushes due alert groups, claims due outbox
 * rows (SKIP LOCKED + lease), takes each row's rate-limit slot (or defers it), sends,
 * records the attempt and the row's new state, and for rows that gave up adds a DLQ entry
 * on paimon:dlq (fields topic, kind, notification_id, channel, error, attempts, failed_at;
 * no env, so bus replay refuses it: the outbox row is the thing to re-drive) next to the
 * fallback notification store_record wrote.
 *
 * Stopping: deliver_stop finishes the message in hand (bounded by the send timeout),
 * hands claimed-but-unsent rows back, and joins.
 *
 * Memory: deliver_start copies the configuration strings; the pool is borrowed. */
#ifndef PAIMON_NOTIFIER_DELIVER_H
#define PAIMON_NOTIFIER_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

typedef struct deliver_cfg {
    db_pool *db;
    const char *redis_url;
    const char *fallback_channel; /* "" = none */
    int64_t lease_ms;             /* claim lease (30 s) */
    int64_t poll_ms;              /* longest idle wait (1 s) */
    int64_t send_timeout_ms;      /* per HTTP/SMTP attempt (5 s) */
    int64_t backoff_base_ms;      /* first retry (1 s) */
    int64_t backoff_max_ms;       /* cap (5 min) */
    int max_attempts;             /* then dead (6) */
    int batch;                    /* rows per claim (16) */
    int index;                    /* worker number, for the lease owner name */
} deliver_cfg;

typedef struct deliver_worker deliver_worker;

deliver_worker *deliver_start(const deliver_cfg *cfg, char *err, size_t errlen);
/* Asks the worker to stop, waits for it, frees it. NULL is fine. */
void deliver_stop(deliver_worker *w);

/* Limiter names and intervals for one outbox row (exposed for tests): Slack per webhook
 * (config min_interval_ms, default 1000), Telegram per chat (1000) and per bot
 * (bot_min_interval_ms, default 34: 30/s), e-mail per channel (200), webhooks per
 * subscription (0: unlimited unless set). Returns the number of limiters (<= 4). */
size_t deliver_limits(const char *channel_type, const char *channel_id, const char *target,
                      const void *config_json, char names[][160], int64_t *intervals);

#endif
