/* txmsg: transactional outgoing bus messages (see txmsg.h). */
#include "txmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "util.h"

void txmsg_sanitize_id(char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == ':' || *s == '_' || *s == '.' || *s == '-'))
            *s = '_';
}

int txmsg_enqueue(db_conn *tx, const char *schema, const char *source, const char *topic,
                  bus_priority prio, const char *id, const char *type, cJSON *payload, char *err,
                  size_t errlen)
{
    if (!db_ident_ok(schema)) {
        cJSON_Delete(payload);
        return util_err(err, errlen, "txmsg: invalid schema name");
    }
    envelope *e = envelope_new(id, type, source, NULL, payload);
    if (!e)
        return util_err(err, errlen, "outgoing message without id, type or source");
    envelope_set_priority(e, bus_priority_name(prio), NULL, 0);
    if (envelope_validate(e, err, errlen) != 0) {
        envelope_free(e);
        return -1;
    }
    char *json = envelope_to_json(e);
    envelope_free(e);
    char sql[160], name[80];
    snprintf(sql, sizeof sql,
             "INSERT INTO %s.outgoing_messages (topic, priority, envelope) VALUES ($1, $2, $3)",
             schema);
    snprintf(name, sizeof name, "txmsg_enqueue_%s", schema);
    const char *p[3] = {topic, bus_priority_name(prio), json};
    int rc = db_exec_prepared(tx, name, sql, 3, p, err, errlen);
    free(json);
    return rc;
}

int txmsg_alert(db_conn *tx, const char *schema, const char *source, const txmsg_alert_spec *a,
                char *err, size_t errlen)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "severity", a->severity);
    cJSON_AddStringToObject(p, "category", a->category);
    /* Cut to the alert.raised schema's limits: a long revert reason must not turn an
     * alert into an invalid message that fails the caller's transaction. */
    char title[200], message[4000];
    util_strlcpy(title, a->title, sizeof title);
    cJSON_AddStringToObject(p, "title", title);
    if (a->message) {
        util_strlcpy(message, a->message, sizeof message);
        cJSON_AddStringToObject(p, "message", message);
    }
    if (a->dedup_key)
        cJSON_AddStringToObject(p, "dedup_key", a->dedup_key);
    if (a->resolved)
        cJSON_AddTrueToObject(p, "resolved");
    if (a->labels)
        cJSON_AddItemToObject(p, "labels", a->labels);
    /* A random suffix: each raise is its own message; the notifier groups by dedup_key. */
    char trace[33], id[200];
    envelope_trace_new(trace);
    snprintf(id, sizeof id, "%s:alert:%.120s:%s", source, a->dedup_key ? a->dedup_key : a->category,
             trace);
    txmsg_sanitize_id(id);
    bus_priority prio = strcmp(a->severity, "critical") == 0  ? BUS_CRITICAL
                        : strcmp(a->severity, "warning") == 0 ? BUS_HIGH
                                                              : BUS_NORMAL;
    return txmsg_enqueue(tx, schema, source, "alerts", prio, id, "alert.raised", p, err, errlen);
}

int txmsg_flush(db_pool *db, const char *schema, redisContext *rc, int max, char *err,
                size_t errlen)
{
    if (!db_ident_ok(schema))
        return util_err(err, errlen, "txmsg: invalid schema name");
    db_conn *c = db_acquire(db, 2000, err, errlen);
    if (!c)
        return -1;
    if (db_exec(c, "BEGIN", err, errlen) != 0) {
        db_release(db, c);
        return -1;
    }
    char lim[16], claim[200], mark[160], n1[80], n2[80];
    snprintf(lim, sizeof lim, "%d", max > 0 ? max : 100);
    snprintf(claim, sizeof claim,
             "SELECT seq, topic, priority, envelope FROM %s.outgoing_messages WHERE published_at "
             "IS NULL ORDER BY seq LIMIT $1::int FOR UPDATE SKIP LOCKED",
             schema);
    snprintf(mark, sizeof mark,
             "UPDATE %s.outgoing_messages SET published_at = now() WHERE seq = $1::bigint", schema);
    snprintf(n1, sizeof n1, "txmsg_claim_%s", schema);
    snprintf(n2, sizeof n2, "txmsg_mark_%s", schema);
    const char *p[1] = {lim};
    PGresult *r = db_query_prepared(c, n1, claim, 1, p, err, errlen);
    if (!r) {
        db_release(db, c);
        return -1;
    }
    int sent = 0, rc_out = 0;
    for (int i = 0; i < PQntuples(r) && rc_out == 0; i++) {
        envelope *e = NULL;
        const char *json = PQgetvalue(r, i, 3);
        char why[UTIL_ERRLEN];
        if (envelope_parse(json, strlen(json), &e, why, sizeof why) != 0) {
            /* Rows were validated when written; never let one bad row block the queue. */
            log_error("dropping unparsable outgoing message", "schema", schema, "seq",
                      PQgetvalue(r, i, 0), "error", why);
        } else {
            const char *topic = PQgetvalue(r, i, 1);
            int prio = bus_priority_parse(PQgetvalue(r, i, 2));
            long maxlen = strcmp(topic, "updates") == 0 ? TXMSG_UPDATES_MAXLEN : 0;
            rc_out = bus_publish(rc, topic, (bus_priority)prio, e, maxlen, err, errlen);
            envelope_free(e);
            if (rc_out != 0)
                break;
        }
        const char *sp[1] = {PQgetvalue(r, i, 0)};
        rc_out = db_exec_prepared(c, n2, mark, 1, sp, err, errlen);
        sent += rc_out == 0;
    }
    PQclear(r);
    /* Commit what was marked even after a failure: those messages did go out. */
    char err2[UTIL_ERRLEN];
    if (db_exec(c, "COMMIT", err2, sizeof err2) != 0) {
        db_release(db, c);
        return util_err(err, errlen, "%s", err2);
    }
    db_release(db, c);
    return rc_out == 0 ? sent : -1;
}
