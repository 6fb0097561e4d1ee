/* outmsg: the approval service's names for libcommon's transactional outgoing
 * messages (txmsg.h): schema and source are always "approval". */
#include "outmsg.h"

#include <stdio.h>

#include "envelope.h"
#include "txmsg.h"
#include "util.h"

#define SCHEMA "approval"

int out_enqueue(db_conn *tx, const char *topic, bus_priority prio, const char *id, const char *type,
                cJSON *payload, char *err, size_t errlen)
{
    return txmsg_enqueue(tx, SCHEMA, SCHEMA, topic, prio, id, type, payload, err, errlen);
}

int out_alert(db_conn *tx, const char *severity, const char *category, const char *title,
              const char *message, const char *dedup_key, cJSON *labels, char *err, size_t errlen)
{
    txmsg_alert_spec a = {.severity = severity,
                          .category = category,
                          .title = title,
                          .message = message,
                          .dedup_key = dedup_key,
                          .labels = labels};
    return txmsg_alert(tx, SCHEMA, SCHEMA, &a, err, errlen);
}

int out_update(db_conn *tx, const char *type, const char *id, cJSON *payload, char *err,
               size_t errlen)
{
    char trace[33], eid[200];
    envelope_trace_new(trace);
    snprintf(eid, sizeof eid, SCHEMA ":%.150s:%s", id, trace);
    txmsg_sanitize_id(eid);
    return out_enqueue(tx, "updates", BUS_NORMAL, eid, type, payload, err, errlen);
}

int out_flush(db_pool *db, redisContext *rc, int max, char *err, size_t errlen)
{
    return txmsg_flush(db, SCHEMA, rc, max, err, errlen);
}
