/* txmsg: the transactional outbox for bus messages. A service writes the messages a
 * change implies (alerts, requests to other services, live updates) into
 * <schema>.outgoing_messages inside the transaction that makes the change, and
 * txmsg_flush publishes them after COMMIT (and again later if Redis was away): nothing
 * goes out for a change that rolled back, nothing is lost between the database and
 * the bus. The table's DDL is migrations/_shared/outgoing_messages.sql.
 *
 * Memory: payloads and labels passed in are taken (freed by the call, even on
 * failure); every string is borrowed. */
#ifndef PAIMON_TXMSG_H
#define PAIMON_TXMSG_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "db.h"

#define TXMSG_UPDATES_MAXLEN 100000L /* the `updates` stream has no consumer group */

/* Queues an envelope (id, type, payload) from `source` for topic at prio inside tx.
 * The envelope is validated now, so a bad one fails the caller's transaction. */
int txmsg_enqueue(db_conn *tx, const char *schema, const char *source, const char *topic,
                  bus_priority prio, const char *id, const char *type, cJSON *payload, char *err,
                  size_t errlen);

typedef struct txmsg_alert_spec {
    const char *severity; /* info | warning | critical -> normal | high | critical */
    const char *category;
    const char *title;
    const char *message;   /* may be NULL */
    const char *dedup_key; /* may be NULL */
    int resolved;
    cJSON *labels; /* taken; may be NULL */
} txmsg_alert_spec;

/* An alert.raised on `alerts`, id "<source>:alert:<dedup or category>:<random>". */
int txmsg_alert(db_conn *tx, const char *schema, const char *source, const txmsg_alert_spec *a,
                char *err, size_t errlen);

/* Publishes up to max queued messages in order (rows claimed with SKIP LOCKED, so
 * replicas share the work). Returns how many went out, or -1 (the rest stays queued). */
int txmsg_flush(db_pool *db, const char *schema, redisContext *rc, int max, char *err,
                size_t errlen);

/* Replaces anything an envelope id may not contain ([A-Za-z0-9:_.-]) with '_'. */
void txmsg_sanitize_id(char *id);

#endif
