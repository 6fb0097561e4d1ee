/* ingest: alert.raised -> alert state, groups, outbox (see ingest.h). */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define MAX_MATCHED_ROUTES 16

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int ingest_parse(const envelope *e, store_alert *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (strcmp(e->type, "alert.raised") != 0)
        return util_err(err, errlen, "unexpected message type %s", e->type);
    const cJSON *p = e->payload;
    a->severity = str(p, "severity");
    a->category = str(p, "category");
    a->title = str(p, "title");
    if (!a->severity || !a->category || !a->title)
        return util_err(err, errlen, "alert lacks severity, category or title");
    a->message = str(p, "message");
    a->link = str(p, "link");
    a->source = e->source;
    a->message_id = e->id;
    a->resolved = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "resolved"));
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(p, "labels");
    a->labels = cJSON_IsObject(labels) ? labels : NULL;
    const char *dk = str(p, "dedup_key");
    if (dk)
        util_strlcpy(a->dedup_key, dk, sizeof a->dedup_key);
    else
        snprintf(a->dedup_key, sizeof a->dedup_key, "%s:%s:%.180s", a->source, a->category,
                 a->title);
    return 0;
}

/* Reschedules every group the alert belongs to (its resolved notice is owed there, whatever
 * the routes say now). */
static int touch_member_groups(db_conn *tx, const store_alert *a, int64_t now, char *err,
                               size_t errlen)
{
    const char *p[] = {a->dedup_key};
    PGresult *r = db_query(tx,
                           "SELECT g.route_id, g.group_key, coalesce(r.group_wait_ms, 0), "
                           "g.group_interval_ms, g.repeat_interval_ms, g.send_resolved FROM "
                           "notifier.group_members m JOIN notifier.alert_groups g USING "
                           "(route_id, group_key) LEFT JOIN notifier.routes r ON r.id = "
                           "g.route_id WHERE m.dedup_key = $1",
                           1, p, err, errlen);
    if (!r)
        return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        match_route route = {0};
        route.id = PQgetvalue(r, i, 0);
        route.group_wait_ms = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        route.group_interval_ms = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        route.repeat_interval_ms = strtoll(PQgetvalue(r, i, 4), NULL, 10);
        route.send_resolved = strcmp(PQgetvalue(r, i, 5), "t") == 0;
        int due = 0, enq = 0;
        rc = store_group_touch(tx, &route, PQgetvalue(r, i, 1), a->dedup_key, 1, now, &due, err,
                               errlen);
        if (rc == 0 && due)
            rc = store_flush_group(tx, route.id, PQgetvalue(r, i, 1), now, &enq, err, errlen);
    }
    PQclear(r);
    return rc;
}

int ingest_handle(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen)
{
    (void)ud;
    store_alert a;
    if (ingest_parse(msg, &a, err, errlen) != 0)
        return BUS_FATAL;
    int64_t now = 0;
    grouping_transition tr;
    if (store_now_ms(tx, &now, err, errlen) != 0 ||
        store_upsert_alert(tx, &a, &tr, err, errlen) != 0)
        return BUS_RETRY;
    log_info_t(msg->trace_id, "alert", "severity", a.severity, "category", a.category, "source",
               a.source, "dedup_key", a.dedup_key, "transition", grouping_transition_name(tr),
               "title", a.title);
    if (tr == GROUPING_RESOLVED)
        return touch_member_groups(tx, &a, now, err, errlen) == 0 ? BUS_OK : BUS_RETRY;
    if (tr == GROUPING_RESOLVED_DUP || tr == GROUPING_RESOLVED_NONE)
        return BUS_OK;

    match_route_tree tree;
    if (store_load_routes(tx, &tree, err, errlen) != 0)
        return BUS_RETRY;
    const char *keys[MATCH_MAX_LABELS], *vals[MATCH_MAX_LABELS];
    match_labels lv = {keys, vals,
                       match_labels_fill(a.labels, a.severity, a.category, a.source, a.dedup_key,
                                         a.title, keys, vals)};
    size_t hit[MAX_MATCHED_ROUTES];
    size_t nhit = match_route_find(&tree, &lv, hit, MAX_MATCHED_ROUTES);
    int rc = 0;
    for (size_t i = 0; i < nhit && rc == 0; i++) {
        const match_route *r = &tree.r[hit[i]];
        if (r->nchannels == 0)
            continue; /* log only */
        char *gk = match_group_key_new(r, &lv);
        int due = 0, enq = 0;
        rc =
            store_group_touch(tx, r, gk, a.dedup_key, grouping_changed(tr), now, &due, err, errlen);
        if (rc == 0 && due)
            rc = store_flush_group(tx, r->id, gk, now, &enq, err, errlen);
        free(gk);
    }
    match_route_tree_free(&tree);
    return rc == 0 ? BUS_OK : BUS_RETRY;
}
