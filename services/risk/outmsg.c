/* outmsg: transactional outgoing messages of the risk service (see outmsg.h). */
#include "risk/outmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "risk/app.h"
#include "util.h"

int rk_out_enqueue(db_conn *tx, const char *topic, bus_priority prio, const char *id,
                   const char *type, cJSON *payload, char *err, size_t errlen)
{
    envelope *e = envelope_new(id, type, RK_SOURCE, NULL, payload);
    if (!e)
        return util_err(err, errlen, "outgoing message without id or type");
    envelope_set_priority(e, bus_priority_name(prio), NULL, 0);
    if (envelope_validate(e, err, errlen) != 0) {
        envelope_free(e);
        return -1;
    }
    char *json = envelope_to_json(e);
    envelope_free(e);
    const char *p[3] = {topic, bus_priority_name(prio), json};
    PGresult *r = db_query_prepared(
        tx, "rk_out_enqueue",
        "INSERT INTO risk.outgoing_messages (topic, priority, envelope) VALUES ($1, $2, $3)", 3, p,
        err, errlen);
    free(json);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int rk_out_alert(db_conn *tx, const char *severity, const char *title, const char *message,
                 const char *dedup_key, const char *audience, int resolved, cJSON *labels,
                 char *err, size_t errlen)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "severity", severity);
    cJSON_AddStringToObject(p, "category", "risk");
    cJSON_AddStringToObject(p, "title", title);
    if (message)
        cJSON_AddStringToObject(p, "message", message);
    cJSON_AddStringToObject(p, "dedup_key", dedup_key);
    if (resolved)
        cJSON_AddBoolToObject(p, "resolved", 1);
    if (!labels)
        labels = cJSON_CreateObject();
    cJSON_AddStringToObject(labels, "audience", audience);
    cJSON_AddItemToObject(p, "labels", labels);
    char trace[33], id[200];
    envelope_trace_new(trace);
    snprintf(id, sizeof id, "risk:alert:%.120s:%s", dedup_key, trace);
    for (char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == ':' || *c == '_' || *c == '.' || *c == '-'))
            *c = '_';
    bus_priority prio = strcmp(severity, "critical") == 0  ? BUS_CRITICAL
                        : strcmp(severity, "warning") == 0 ? BUS_HIGH
                                                           : BUS_NORMAL;
    return rk_out_enqueue(tx, "alerts", prio, id, "alert.raised", p, err, errlen);
}

int rk_out_flush(db_pool *db, redisContext *rc, int max, char *err, size_t errlen)
{
    db_conn *c = db_acquire(db, 2000, err, errlen);
    if (!c)
        return -1;
    if (db_exec(c, "BEGIN", err, errlen) != 0) {
        db_release(db, c);
        return -1;
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", max > 0 ? max : 100);
    const char *p[1] = {lim};
    PGresult *r = db_query_prepared(c, "rk_out_claim",
                                    "SELECT seq, topic, priority, envelope FROM "
                                    "risk.outgoing_messages WHERE published_at IS NULL ORDER BY "
                                    "seq LIMIT $1::int FOR UPDATE SKIP LOCKED",
                                    1, p, err, errlen);
    if (!r) {
        db_release(db, c);
        return -1;
    }
    int sent = 0, failed = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        envelope *e = NULL;
        const char *json = PQgetvalue(r, i, 3);
        char why[UTIL_ERRLEN];
        if (envelope_parse(json, strlen(json), &e, why, sizeof why) != 0) {
            /* rows we wrote always parse; one bad row must not block the queue */
            log_error("dropping unparsable outgoing message", "seq", PQgetvalue(r, i, 0), "error",
                      why);
        } else {
            const char *topic = PQgetvalue(r, i, 1);
            int prio = bus_priority_parse(PQgetvalue(r, i, 2));
            long maxlen = strcmp(topic, "updates") == 0 ? RK_UPDATES_MAXLEN : 0;
            int ok = bus_publish(rc, topic, (bus_priority)prio, e, maxlen, err, errlen);
            envelope_free(e);
            if (ok != 0) {
                failed = 1;
                break;
            }
        }
        const char *sp[1] = {PQgetvalue(r, i, 0)};
        PGresult *u = db_query_prepared(c, "rk_out_mark",
                                        "UPDATE risk.outgoing_messages SET published_at = now() "
                                        "WHERE seq = $1::bigint",
                                        1, sp, err, errlen);
        if (!u) {
            failed = 1;
            break;
        }
        PQclear(u);
        sent++;
    }
    PQclear(r);
    char err2[UTIL_ERRLEN];
    if (db_exec(c, "COMMIT", err2, sizeof err2) != 0) {
        db_release(db, c);
        return util_err(err, errlen, "%s", err2);
    }
    db_release(db, c);
    return failed ? -1 : sent;
}
