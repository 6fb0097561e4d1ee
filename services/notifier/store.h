/* store: every SQL statement of the notifier (schema notifier, names qualified because the
 * daemon's role has no search_path).
 *
 * Write path (bus handler, inside the bus transaction): upsert the alert by dedup key,
 * attach it to the groups of the routes it matched and schedule their flush; a group due
 * at once (group_wait 0) is flushed right there, so the outbox rows commit with the
 * message. A flush writes one outbox row per channel target and NOTIFYs notifier_outbox.
 * Delivery path (worker, own connection): flush due groups, claim due outbox rows with
 * FOR UPDATE SKIP LOCKED and a lease (lease_owner, lease_until), and record each attempt
 * together with the row's new state; the lease owner check on every update means a worker
 * that lost its lease (paused past it) cannot overwrite a newer owner's result.
 *
 * Memory: store_claim arrays are owned by the caller (store_claims_free); db_conn and
 * strings passed in are borrowed. */
#ifndef PAIMON_NOTIFIER_STORE_H
#define PAIMON_NOTIFIER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "grouping.h"
#include "match.h"

#define STORE_WAKE_CHANNEL "notifier_outbox"

/* An alert as received (strings borrowed from the envelope). */
typedef struct store_alert {
    const char *severity, *category, *title, *message, *link, *source, *message_id;
    int resolved;
    const cJSON *labels;
    char dedup_key[256];
} store_alert;

int store_now_ms(db_conn *c, int64_t *now_ms, char *err, size_t errlen);
int store_load_routes(db_conn *c, match_route_tree *t, char *err, size_t errlen);
/* Parses one route row's JSON form (API and tests); validates everything. */
int store_route_from_json(const cJSON *o, match_route *r, char *err, size_t errlen);

int store_upsert_alert(db_conn *tx, const store_alert *a, grouping_transition *tr, char *err,
                       size_t errlen);
/* Adds the alert to the group (creating it) and, when changed, reschedules its flush.
 * *due is set when the group should flush now. */
int store_group_touch(db_conn *tx, const match_route *r, const char *group_key,
                      const char *dedup_key, int changed, int64_t now_ms, int *due, char *err,
                      size_t errlen);
/* Flushes one group (locks it): builds the notification and enqueues it. */
int store_flush_group(db_conn *tx, const char *route_id, const char *group_key, int64_t now_ms,
                      int *enqueued, char *err, size_t errlen);
/* In its own transaction: flushes up to limit due groups no other replica holds. */
int store_flush_due(db_conn *c, int limit, int *flushed, char *err, size_t errlen);

/* Writes outbox rows for the payload to each channel (names; "*" = every enabled channel),
 * one per target, skipping channels without a usable configuration (logged). */
int store_enqueue(db_conn *tx, const char *const *channels, size_t nchannels, const char *kind,
                  const char *event, const char *route_id, const char *group_key,
                  const cJSON *payload, int *enqueued, char *err, size_t errlen);

typedef struct store_claim {
    int64_t id;
    char *channel_id, *channel_type, *target, *kind, *event;
    cJSON *payload, *config;
    int attempts;
    int channel_ok; /* the channel row exists and is enabled */
    char *secret_env;
    uint8_t *sealed;
    size_t sealed_len;
    char *wh_url; /* webhook subscription, when the target is one */
    uint8_t *wh_sealed;
    size_t wh_sealed_len;
    int wh_active;
} store_claim;

int store_claim_due(db_conn *c, const char *owner, int64_t lease_ms, int limit, store_claim **out,
                    size_t *n, char *err, size_t errlen);
void store_claims_free(store_claim *c, size_t n);

/* Hands a claimed row back as pending in delay_ms without counting an attempt (local rate
 * limit, shutdown). */
int store_defer(db_conn *c, int64_t id, const char *owner, int64_t delay_ms, char *err,
                size_t errlen);

typedef struct store_outcome {
    const char *outcome; /* sent | retry | rate_limited | dead */
    long status_code;    /* 0 = none */
    int64_t latency_ms;
    const char *error;     /* may be NULL */
    int64_t next_delay_ms; /* retry / rate_limited */
    int count_attempt;     /* 0 for rate_limited */
} store_outcome;

/* One transaction: the deliveries row, the outbox row's new state and, for dead rows, the
 * fallback notification (unless the row is itself a fallback or on the fallback channel).
 * *lost = 1 when the lease had moved on (nothing written). */
int store_record(db_conn *c, const store_claim *cl, const char *owner, const store_outcome *o,
                 const char *fallback_channel, int *lost, char *err, size_t errlen);

/* Milliseconds until the next outbox row or group is due (0 = now), capped at cap_ms. */
int64_t store_next_due_ms(db_conn *c, int64_t cap_ms);

/* 1 when an event name matches a subscription filter list. */
int store_event_match(const char *const *filters, size_t n, const char *event);

/* Lowercase hex <-> bytes for bytea columns. */
char *store_hex_new(const uint8_t *b, size_t n);
int store_unhex(const char *hex, uint8_t **out, size_t *n);

#endif
