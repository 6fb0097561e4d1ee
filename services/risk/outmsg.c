/* outmsg: risk's names for libcommon's transactional outgoing messages (txmsg.h):
 * schema and source "risk"; alerts carry their audience as a label. */
#include "outmsg.h"

#include "txmsg.h"

#define SCHEMA "risk"

int rk_out_enqueue(db_conn *tx, const char *topic, bus_priority prio, const char *id,
                   const char *type, cJSON *payload, char *err, size_t errlen)
{
    return txmsg_enqueue(tx, SCHEMA, SCHEMA, topic, prio, id, type, payload, err, errlen);
}

int rk_out_alert(db_conn *tx, const char *severity, const char *title, const char *message,
                 const char *dedup_key, const char *audience, int resolved, cJSON *labels,
                 char *err, size_t errlen)
{
    if (!labels)
        labels = cJSON_CreateObject();
    cJSON_AddStringToObject(labels, "audience", audience);
    txmsg_alert_spec a = {.severity = severity,
                          .category = "risk",
                          .title = title,
                          .message = message,
                          .dedup_key = dedup_key,
                          .resolved = resolved,
                          .labels = labels};
    return txmsg_alert(tx, SCHEMA, SCHEMA, &a, err, errlen);
}

int rk_out_flush(db_pool *db, redisContext *rc, int max, char *err, size_t errlen)
{
    return txmsg_flush(db, SCHEMA, rc, max, err, errlen);
}
