/* outmsg: the approval service's outgoing-message queue. Alerts, decisions, liquidity
 * requests and live updates are written into approval.outgoing_messages inside the
 * transaction that causes them and published to Redis after COMMIT (out_flush), so a
 * message can neither go out for a change that rolled back nor be lost when Redis is
 * away at commit time. Envelope ids are deterministic where the cause is, so a replay
 * is deduplicated by consumers.
 *
 * Memory: payloads passed in are taken (freed by the call, even on failure). */
#ifndef APPROVAL_OUTMSG_H
#define APPROVAL_OUTMSG_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "db.h"

/* Queues an envelope (id, type, payload) for topic at prio inside tx. */
int out_enqueue(db_conn *tx, const char *topic, bus_priority prio, const char *id, const char *type,
                cJSON *payload, char *err, size_t errlen);
/* alert.raised on `alerts`: severity info|warning|critical (-> normal|high|critical).
 * labels may be NULL (taken). The id is "approval:alert:<dedup_key>:<now ms>". */
int out_alert(db_conn *tx, const char *severity, const char *category, const char *title,
              const char *message, const char *dedup_key, cJSON *labels, char *err, size_t errlen);
/* An `updates` event for the gateway's WebSocket fan-out (type e.g. redemption.updated). */
int out_update(db_conn *tx, const char *type, const char *id, cJSON *payload, char *err,
               size_t errlen);

/* Publishes up to `max` queued messages in order and marks them; rows are claimed with
 * SKIP LOCKED so replicas do not publish the same row at once. Returns how many went
 * out, or -1 (the rest stays queued). */
int out_flush(db_pool *db, redisContext *rc, int max, char *err, size_t errlen);

#endif
