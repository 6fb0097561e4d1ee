/* bus: the message bus over Redis streams (ARCHITECTURE §3.1).
 *
 * A topic is three streams, paimon:<topic>:critical|high|normal. Each consuming
 * service has a consumer group on every stream (fan-out); its replicas and
 * threads are consumers in that group (work sharing). Reading is strict priority
 * with starvation protection. Delivery is at-least-once; effects are exactly-once:
 * a batch of messages is handled inside one PostgreSQL transaction that also
 * records every message id in <schema>.processed_messages, and the entries are
 * XACKed only after COMMIT. A failing message is rolled back on its own, then
 * re-scheduled with exponential backoff and jitter through a delayed set
 * (paimon:<topic>:delayed:<group>) and moved back to its stream when due, marked
 * for that group only; after max_attempts it goes to paimon:dlq with the reason
 * and an alert is raised. Messages idle past the visibility timeout in a dead
 * consumer's pending list are taken over with XAUTOCLAIM.
 *
 * Each stream entry has one field `env` holding the JSON envelope (validated
 * against schemas/messages/envelope.schema.json, and its payload against
 * schemas/messages/<type>.schema.json when one exists), plus `retry_for` = group
 * on re-scheduled copies. Entries that fail validation go straight to the DLQ.
 *
 * Ownership: bus_consumer_new/_free own the consumer, its Redis connection and
 * nothing else; the db pool and handler data are borrowed. One consumer is driven
 * by one thread. */
#ifndef PAIMON_BUS_H
#define PAIMON_BUS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "db.h"
#include "envelope.h"
#include "rconn.h"

typedef enum { BUS_CRITICAL = 0, BUS_HIGH = 1, BUS_NORMAL = 2 } bus_priority;
#define BUS_NPRIO   3
#define BUS_DLQ_KEY "paimon:dlq"

/* Handler results. */
#define BUS_OK    0
#define BUS_RETRY (-1) /* transient: roll back, retry with backoff */
#define BUS_FATAL (-2) /* permanent: roll back, straight to the DLQ */

/* Runs inside the batch transaction on `tx`; must do all its writes through tx. */
typedef int (*bus_handler_fn)(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen);

/* Optional, for high-volume consumers: handles every new message of a batch at once
 * (e.g. one multi-row INSERT) inside the same transaction. On failure it sets *failed
 * to the index of the message at fault, or leaves it at n when it cannot tell; the
 * bus then retries that batch one message at a time to find it. */
typedef int (*bus_batch_fn)(db_conn *tx, const envelope *const *msgs, size_t n, void *ud,
                            size_t *failed, char *err, size_t errlen);

const char *bus_priority_name(bus_priority p);
/* "critical" | "high" | "normal" -> priority; -1 when unknown. */
int bus_priority_parse(const char *s);
/* Writes paimon:<topic>:<priority> into buf; -1 if the topic is not [a-z0-9_.-]+. */
int bus_stream_key(char *buf, size_t len, const char *topic, bus_priority p);

/* XADDs the envelope to the topic's stream of that priority. Streams consumed by
 * groups are never trimmed here (see bus_trim); `updates`-style streams without
 * groups are capped by maxlen (0 = no cap). */
int bus_publish(redisContext *rc, const char *topic, bus_priority prio, const envelope *e,
                long maxlen, char *err, size_t errlen);

/* Publishes n envelopes in one pipelined round trip (a producer's batch after its
 * commit). Stops at the first failure; *published says how many went out, in order,
 * so the caller can re-publish the rest (ids are deterministic, consumers dedupe). */
int bus_publish_many(redisContext *rc, const char *topic, const bus_priority *prio,
                     envelope *const *es, size_t n, size_t *published, char *err, size_t errlen);

/* Same for envelopes the producer already serialised (compact JSON text, one per
 * message, borrowed): a producer that writes its envelopes directly skips building
 * and printing a cJSON tree per message. The text is sent as is; the producer
 * answers for it matching the envelope schema. */
int bus_publish_json_many(redisContext *rc, const char *topic, const bus_priority *prio,
                          const char *const *json, size_t n, size_t *published, char *err,
                          size_t errlen);

typedef struct bus_consumer_cfg {
    const char *redis_url;
    const char *topic;
    const char *group;    /* the consuming service */
    const char *consumer; /* unique per replica and thread */
    const char *schema;   /* holds processed_messages */
    db_pool *db;
    bus_handler_fn handler;     /* one message at a time, or... */
    bus_batch_fn batch_handler; /* ...the whole batch at once (set exactly one) */
    void *ud;
    int batch;               /* entries per read (default 100) */
    int block_ms;            /* idle blocking read (default 1000) */
    int starvation_k;        /* a waiting lower priority gets a batch at least every k reads (8) */
    int64_t visibility_ms;   /* idle time before XAUTOCLAIM takes over (30000) */
    int max_attempts;        /* handler attempts before the DLQ (5) */
    int64_t backoff_base_ms; /* first retry delay (500) */
    int64_t backoff_max_ms;  /* cap (60000) */
    int64_t maintenance_ms;  /* gauges, trimming (5000) */
    long retain;             /* entries kept per stream once consumed (100000) */
} bus_consumer_cfg;

typedef struct bus_consumer bus_consumer;

/* Connects to Redis and creates the consumer groups (from the stream's start, so
 * nothing published before the service first ran is missed). */
bus_consumer *bus_consumer_new(const bus_consumer_cfg *cfg, char *err, size_t errlen);
void bus_consumer_free(bus_consumer *c);

/* One round: due retries moved back, XAUTOCLAIM when due, one batch read (blocking
 * up to block_ms when all streams are empty) and handled. Returns the number of
 * entries taken off the streams (handled, skipped or failed), or -1 on a Redis or
 * database error (the caller backs off and calls again; nothing is lost). */
int bus_consumer_poll(bus_consumer *c, char *err, size_t errlen);

/* Polls until *stop becomes non-zero; finishes the batch in hand before returning. */
int bus_consumer_run(bus_consumer *c, const atomic_int *stop);

/* Counters since creation, for tests and metrics. */
typedef struct bus_stats {
    uint64_t handled, duplicates, retried, dead, foreign, claimed, batches;
    uint64_t per_priority[BUS_NPRIO];
} bus_stats;
void bus_consumer_stats(const bus_consumer *c, bus_stats *out);

/* Moves due entries of the group's delayed set back to their streams; returns the
 * number moved or -1. Called by bus_consumer_poll; exposed for tests and tools. */
int bus_move_due(redisContext *rc, const char *topic, const char *group, int64_t now_ms, char *err,
                 size_t errlen);

/* Trims the topic's streams: entries that every group has consumed and acked are
 * dropped beyond `retain`; pending or undelivered entries are never dropped. */
int bus_trim(redisContext *rc, const char *topic, long retain, char *err, size_t errlen);

/* Re-publishes a DLQ entry to its stream for its group (attempt reset to 0) and
 * removes it from the DLQ, atomically. 1 replayed, 0 no such entry, -1 error. */
int bus_dlq_replay(redisContext *rc, const char *dlq_id, char *err, size_t errlen);

/* Gauges for a topic/group: lag (entries not yet delivered), pending (delivered,
 * not acked), delayed retries; and the DLQ length. */
typedef struct bus_depth {
    long long lag[BUS_NPRIO], pending[BUS_NPRIO], delayed, dlq;
} bus_depth;
int bus_depth_get(redisContext *rc, const char *topic, const char *group, bus_depth *out, char *err,
                  size_t errlen);

#endif
