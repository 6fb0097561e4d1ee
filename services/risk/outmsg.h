/* outmsg: risk's outgoing-message queue. Alerts, the emergency protocol's approval and
 * liquidity requests and live updates are written into risk.outgoing_messages inside the
 * transaction that decides them and published after COMMIT (rk_out_flush), so nothing
 * goes out for a change that rolled back and nothing is lost when Redis is away.
 *
 * Memory: payloads passed in are taken (freed by the call, even on failure). */
#ifndef RISK_OUTMSG_H
#define RISK_OUTMSG_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "db.h"

/* Queues an envelope (id, type, payload) for topic at prio inside tx. */
int rk_out_enqueue(db_conn *tx, const char *topic, bus_priority prio, const char *id,
                   const char *type, cJSON *payload, char *err, size_t errlen);
/* alert.raised on `alerts`; severity info|warning|critical (-> normal|high|critical).
 * audience goes into labels ("operators" / "everyone"); resolved marks a clear. */
int rk_out_alert(db_conn *tx, const char *severity, const char *title, const char *message,
                 const char *dedup_key, const char *audience, int resolved, cJSON *labels,
                 char *err, size_t errlen);
/* Publishes up to max queued messages in order (rows claimed with SKIP LOCKED).
 * Returns how many went out or -1 (the rest stays queued). */
int rk_out_flush(db_pool *db, redisContext *rc, int max, char *err, size_t errlen);

#endif
