/* store: the notifier's SQL (see store.h). */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "log.h"
#include "secret.h"
#include "util.h"

#define MAX_GROUP_MEMBERS 500

static PGresult *q(db_conn *c, const char *sql, int n, const char *const *p, char *err,
                   size_t errlen)
{
    return db_query(c, sql, n, p, err, errlen);
}

/* Runs a statement whose result is not needed. */
static int qx(db_conn *c, const char *sql, int n, const char *const *p, char *err, size_t errlen)
{
    PGresult *r = q(c, sql, n, p, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

char *store_hex_new(const uint8_t *b, size_t n)
{
    static const char d[] = "0123456789abcdef";
    char *s = util_malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = d[b[i] >> 4];
        s[2 * i + 1] = d[b[i] & 15];
    }
    s[2 * n] = '\0';
    return s;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int store_unhex(const char *hex, uint8_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t len = hex ? strlen(hex) : 0;
    if (len % 2)
        return -1;
    uint8_t *b = util_malloc(len / 2 + 1);
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return -1;
        }
        b[i] = (uint8_t)(hi * 16 + lo);
    }
    *out = b;
    *n = len / 2;
    return 0;
}

/* PostgreSQL array literal of text values: {"a","b"} with " and \ escaped. */
static char *pg_array_new(const char *const *v, size_t n)
{
    format_buf b;
    format_buf_init(&b);
    format_buf_puts(&b, "{");
    for (size_t i = 0; i < n; i++) {
        format_buf_puts(&b, i ? ",\"" : "\"");
        for (const char *p = v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                format_buf_putn(&b, "\\", 1);
            format_buf_putn(&b, p, 1);
        }
        format_buf_puts(&b, "\"");
    }
    format_buf_puts(&b, "}");
    return format_buf_take(&b);
}

int store_now_ms(db_conn *c, int64_t *now_ms, char *err, size_t errlen)
{
    PGresult *r = q(c, "SELECT (extract(epoch FROM now()) * 1000)::bigint", 0, NULL, err, errlen);
    if (!r)
        return -1;
    *now_ms = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

static char **strv_from_json(const cJSON *arr, size_t *n, size_t max, int (*ok)(const char *))
{
    *n = 0;
    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) > max)
        return NULL;
    char **v = util_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *v);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it) || (ok && !ok(it->valuestring))) {
            for (size_t i = 0; i < *n; i++)
                free(v[i]);
            free(v);
            *n = 0;
            return NULL;
        }
        v[(*n)++] = util_strdup(it->valuestring);
    }
    return v;
}

static int ident_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    return (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9');
}

static int channel_ref_ok(const char *s)
{
    return strcmp(s, "*") == 0 || ident_ok(s);
}

static int label_name_ok(const char *s)
{
    if (strcmp(s, "...") == 0)
        return 1;
    if (!*s || strlen(s) > 128 ||
        !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    return 1;
}

static int64_t num_or(const cJSON *o, const char *k, int64_t def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}

int store_route_from_json(const cJSON *o, match_route *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *parent = cJSON_GetObjectItemCaseSensitive(o, "parent_id");
    if (!cJSON_IsString(id) || !ident_ok(id->valuestring))
        return util_err(err, errlen, "route id must be [a-z0-9][a-z0-9_-]{0,63}");
    if (parent && !cJSON_IsNull(parent) &&
        (!cJSON_IsString(parent) || !ident_ok(parent->valuestring)))
        return util_err(err, errlen, "parent_id must be a route id or null");
    if (match_set_from_json(cJSON_GetObjectItemCaseSensitive(o, "matchers"), &r->matchers, err,
                            errlen) != 0)
        return -1;
    r->channels = strv_from_json(cJSON_GetObjectItemCaseSensitive(o, "channels"), &r->nchannels, 32,
                                 channel_ref_ok);
    if (!r->channels) {
        match_set_free(&r->matchers);
        return util_err(err, errlen, "channels must be an array of channel ids or \"*\"");
    }
    r->group_by = strv_from_json(cJSON_GetObjectItemCaseSensitive(o, "group_by"), &r->ngroup_by, 16,
                                 label_name_ok);
    if (!r->group_by) {
        match_route_clear(r);
        return util_err(err, errlen, "group_by must be an array of label names");
    }
    r->id = util_strdup(id->valuestring);
    r->parent_id = cJSON_IsString(parent) ? util_strdup(parent->valuestring) : NULL;
    r->cont = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "continue_matching"));
    const cJSON *sr = cJSON_GetObjectItemCaseSensitive(o, "send_resolved");
    r->send_resolved = sr ? cJSON_IsTrue(sr) : 1;
    r->group_wait_ms = num_or(o, "group_wait_ms", 30000);
    r->group_interval_ms = num_or(o, "group_interval_ms", 300000);
    r->repeat_interval_ms = num_or(o, "repeat_interval_ms", 14400000);
    return 0;
}

int store_load_routes(db_conn *c, match_route_tree *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    PGresult *r = q(c,
                    "SELECT row_to_json(r)::text FROM notifier.routes r WHERE active "
                    "ORDER BY position, id",
                    0, NULL, err, errlen);
    if (!r)
        return -1;
    int n = PQntuples(r);
    t->r = util_calloc((size_t)n + 1, sizeof *t->r);
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_Parse(PQgetvalue(r, i, 0));
        char why[UTIL_ERRLEN];
        if (o && store_route_from_json(o, &t->r[t->n], why, sizeof why) == 0)
            t->n++;
        else
            log_warn("route skipped", "error", o ? why : "bad json");
        cJSON_Delete(o);
    }
    PQclear(r);
    return 0;
}

int store_upsert_alert(db_conn *tx, const store_alert *a, grouping_transition *tr, char *err,
                       size_t errlen)
{
    const char *p1[] = {a->dedup_key};
    PGresult *r = q(tx, "SELECT status FROM notifier.alerts WHERE dedup_key = $1 FOR UPDATE", 1, p1,
                    err, errlen);
    if (!r)
        return -1;
    int exists = PQntuples(r) == 1;
    int was_firing = exists && strcmp(PQgetvalue(r, 0, 0), "firing") == 0;
    PQclear(r);
    *tr = grouping_classify(exists, was_firing, a->resolved);
    char *labels = a->labels ? cJSON_PrintUnformatted(a->labels) : util_strdup("{}");
    const char *status = a->resolved ? "resolved" : "firing";
    const char *p[] = {a->dedup_key, a->severity,
                       a->category,  a->source,
                       a->title,     a->message ? a->message : "",
                       a->link,      labels,
                       status,       grouping_transition_name(*tr),
                       a->message_id};
    int rc;
    if (!exists) {
        const char *pi[] = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[10]};
        rc = qx(tx,
                "INSERT INTO notifier.alerts (dedup_key, severity, category, source, title, "
                "message, link, labels, status, resolved_at, last_message_id) VALUES ($1, $2, "
                "$3, $4, $5, $6, $7, $8::jsonb, $9, CASE WHEN $9 = 'resolved' THEN now() END, "
                "$10)",
                10, pi, err, errlen);
    } else
        /* A resolved notice keeps the content the alert fired with. */
        rc = qx(tx,
                "UPDATE notifier.alerts SET "
                "severity = CASE WHEN $9 = 'firing' THEN $2 ELSE severity END, "
                "category = CASE WHEN $9 = 'firing' THEN $3 ELSE category END, "
                "source = CASE WHEN $9 = 'firing' THEN $4 ELSE source END, "
                "title = CASE WHEN $9 = 'firing' THEN $5 ELSE title END, "
                "message = CASE WHEN $9 = 'firing' THEN $6 ELSE message END, "
                "link = CASE WHEN $9 = 'firing' THEN $7 ELSE link END, "
                "labels = CASE WHEN $9 = 'firing' THEN $8::jsonb ELSE labels END, "
                "status = $9, occurrences = occurrences + 1, last_seen = now(), "
                "resolved_at = CASE WHEN $9 = 'resolved' THEN coalesce(resolved_at, now()) END, "
                "first_seen = CASE WHEN $10 = 'refired' THEN now() ELSE first_seen END, "
                "last_message_id = $11 WHERE dedup_key = $1",
                11, p, err, errlen);
    free(labels);
    return rc;
}

static void ms_str(char *buf, size_t len, int64_t v)
{
    snprintf(buf, len, "%lld", (long long)v);
}

int store_group_touch(db_conn *tx, const match_route *r, const char *group_key,
                      const char *dedup_key, int changed, int64_t now_ms, int *due, char *err,
                      size_t errlen)
{
    *due = 0;
    char *chans = pg_array_new((const char *const *)r->channels, r->nchannels);
    char gi[24], ri[24], first[24];
    ms_str(gi, sizeof gi, r->group_interval_ms);
    ms_str(ri, sizeof ri, r->repeat_interval_ms);
    ms_str(first, sizeof first, now_ms + r->group_wait_ms);
    const char *pi[] = {r->id, group_key, chans, gi, ri, r->send_resolved ? "t" : "f", first};
    PGresult *res = q(tx,
                      "INSERT INTO notifier.alert_groups (route_id, group_key, channels, "
                      "group_interval_ms, repeat_interval_ms, send_resolved, next_flush_at) "
                      "VALUES ($1, $2, $3::text[], $4, $5, $6, to_timestamp($7::double precision "
                      "/ 1000)) ON CONFLICT (route_id, group_key) DO NOTHING RETURNING 1",
                      7, pi, err, errlen);
    free(chans);
    if (!res)
        return -1;
    int is_new = PQntuples(res) == 1;
    PQclear(res);
    const char *pm[] = {r->id, group_key, dedup_key};
    res = q(tx,
            "INSERT INTO notifier.group_members (route_id, group_key, dedup_key) VALUES ($1, $2, "
            "$3) ON CONFLICT DO NOTHING RETURNING 1",
            3, pm, err, errlen);
    if (!res)
        return -1;
    int new_member = PQntuples(res) == 1;
    PQclear(res);
    if (is_new) {
        *due = r->group_wait_ms == 0;
        return 0;
    }
    if (!changed && !new_member)
        return 0; /* a duplicate: the repeat interval decides, not this event */
    const char *pg[] = {r->id, group_key};
    res = q(tx,
            "SELECT coalesce((extract(epoch FROM next_flush_at) * 1000)::bigint, -1), "
            "coalesce((extract(epoch FROM last_notified_at) * 1000)::bigint, -1), "
            "group_interval_ms FROM notifier.alert_groups WHERE route_id = $1 AND group_key = $2 "
            "FOR UPDATE",
            2, pg, err, errlen);
    if (!res)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return 0;
    }
    int64_t cur = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int64_t last = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    int64_t interval = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);
    int64_t next = grouping_next_flush(now_ms, 0, cur, last, r->group_wait_ms, interval);
    if (next == cur)
        return 0;
    char nx[24];
    ms_str(nx, sizeof nx, next);
    const char *pu[] = {r->id, group_key, nx};
    *due = next <= now_ms;
    return qx(tx,
              "UPDATE notifier.alert_groups SET next_flush_at = to_timestamp($3::double precision "
              "/ 1000) WHERE route_id = $1 AND group_key = $2",
              3, pu, err, errlen);
}

static int sev_rank(const char *s)
{
    return strcmp(s, "critical") == 0 ? 2 : strcmp(s, "warning") == 0 ? 1 : 0;
}

/* Active silences, parsed once per flush. */
typedef struct silence_list {
    match_set *s;
    size_t n;
} silence_list;

static int load_silences(db_conn *tx, silence_list *out, char *err, size_t errlen)
{
    out->s = NULL;
    out->n = 0;
    PGresult *r = q(tx,
                    "SELECT matchers::text FROM notifier.silences WHERE starts_at <= now() AND "
                    "ends_at > now()",
                    0, NULL, err, errlen);
    if (!r)
        return -1;
    int n = PQntuples(r);
    out->s = util_calloc((size_t)n + 1, sizeof *out->s);
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_Parse(PQgetvalue(r, i, 0));
        if (m && match_set_from_json(m, &out->s[out->n], NULL, 0) == 0 && out->s[out->n].n > 0)
            out->n++;
        else if (m)
            match_set_free(&out->s[out->n]);
        cJSON_Delete(m);
    }
    PQclear(r);
    return 0;
}

static void free_silences(silence_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        match_set_free(&l->s[i]);
    free(l->s);
}

int store_flush_group(db_conn *tx, const char *route_id, const char *group_key, int64_t now_ms,
                      int *enqueued, char *err, size_t errlen)
{
    *enqueued = 0;
    const char *pg[] = {route_id, group_key};
    PGresult *g = q(tx,
                    "SELECT array_to_json(channels)::text, group_interval_ms, repeat_interval_ms, "
                    "send_resolved FROM notifier.alert_groups WHERE route_id = $1 AND group_key = "
                    "$2 FOR UPDATE",
                    2, pg, err, errlen);
    if (!g)
        return -1;
    if (PQntuples(g) != 1) {
        PQclear(g);
        return 0;
    }
    cJSON *chans_json = cJSON_Parse(PQgetvalue(g, 0, 0));
    int64_t interval = strtoll(PQgetvalue(g, 0, 1), NULL, 10);
    int64_t repeat = strtoll(PQgetvalue(g, 0, 2), NULL, 10);
    int send_resolved = strcmp(PQgetvalue(g, 0, 3), "t") == 0;
    PQclear(g);

    PGresult *m = q(tx,
                    "SELECT a.dedup_key, a.status, m.notified_status, a.severity, a.category, "
                    "a.source, a.title, a.message, a.link, a.labels::text, to_char(a.first_seen "
                    "AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), a.occurrences "
                    "FROM notifier.group_members m JOIN notifier.alerts a USING (dedup_key) "
                    "WHERE m.route_id = $1 AND m.group_key = $2 ORDER BY a.first_seen, "
                    "a.dedup_key LIMIT 500",
                    2, pg, err, errlen);
    if (!m) {
        cJSON_Delete(chans_json);
        return -1;
    }
    silence_list sil;
    if (load_silences(tx, &sil, err, errlen) != 0) {
        PQclear(m);
        cJSON_Delete(chans_json);
        return -1;
    }
    int n = PQntuples(m);
    grouping_member *gm = util_calloc((size_t)n + 1, sizeof *gm);
    cJSON **labels = util_calloc((size_t)n + 1, sizeof *labels);
    for (int i = 0; i < n; i++) {
        gm[i].status = strcmp(PQgetvalue(m, i, 1), "firing") == 0 ? GROUPING_MEMBER_FIRING
                                                                  : GROUPING_MEMBER_RESOLVED;
        const char *ns = PQgetisnull(m, i, 2) ? NULL : PQgetvalue(m, i, 2);
        gm[i].notified = !ns                         ? -1
                         : strcmp(ns, "firing") == 0 ? GROUPING_MEMBER_FIRING
                                                     : GROUPING_MEMBER_RESOLVED;
        labels[i] = cJSON_Parse(PQgetvalue(m, i, 9));
        const char *keys[MATCH_MAX_LABELS], *vals[MATCH_MAX_LABELS];
        match_labels lv = {keys, vals,
                           match_labels_fill(labels[i], PQgetvalue(m, i, 3), PQgetvalue(m, i, 4),
                                             PQgetvalue(m, i, 5), PQgetvalue(m, i, 0),
                                             PQgetvalue(m, i, 6), keys, vals)};
        for (size_t s = 0; s < sil.n && !gm[i].silenced; s++)
            gm[i].silenced = match_set_matches(&sil.s[s], &lv);
    }
    free_silences(&sil);
    grouping_plan_out plan;
    grouping_plan(gm, (size_t)n, send_resolved, now_ms, interval, repeat, &plan);

    int rc = 0;
    if (plan.included > 0) {
        cJSON *payload = cJSON_CreateObject();
        const char *status = plan.firing_included ? "firing" : "resolved";
        cJSON_AddStringToObject(payload, "status", status);
        cJSON_AddStringToObject(payload, "severity", "info");
        cJSON_AddStringToObject(payload, "route", route_id);
        cJSON_AddStringToObject(payload, "group_key", group_key);
        cJSON *arr = cJSON_AddArrayToObject(payload, "alerts");
        int top = 0;
        for (int i = 0; i < n; i++) {
            if (!gm[i].include)
                continue;
            cJSON *a = cJSON_CreateObject();
            cJSON_AddStringToObject(a, "dedup_key", PQgetvalue(m, i, 0));
            cJSON_AddStringToObject(a, "status", PQgetvalue(m, i, 1));
            cJSON_AddStringToObject(a, "severity", PQgetvalue(m, i, 3));
            cJSON_AddStringToObject(a, "category", PQgetvalue(m, i, 4));
            cJSON_AddStringToObject(a, "source", PQgetvalue(m, i, 5));
            cJSON_AddStringToObject(a, "title", PQgetvalue(m, i, 6));
            cJSON_AddStringToObject(a, "message", PQgetvalue(m, i, 7));
            if (!PQgetisnull(m, i, 8))
                cJSON_AddStringToObject(a, "link", PQgetvalue(m, i, 8));
            cJSON_AddItemToObject(a, "labels",
                                  labels[i] ? cJSON_Duplicate(labels[i], 1) : cJSON_CreateObject());
            cJSON_AddStringToObject(a, "first_seen", PQgetvalue(m, i, 10));
            cJSON_AddNumberToObject(a, "occurrences",
                                    (double)strtoll(PQgetvalue(m, i, 11), NULL, 10));
            cJSON_AddItemToArray(arr, a);
            if (sev_rank(PQgetvalue(m, i, 3)) > top)
                top = sev_rank(PQgetvalue(m, i, 3));
        }
        static const char *const sevs[] = {"info", "warning", "critical"};
        cJSON_ReplaceItemInObject(payload, "severity", cJSON_CreateString(sevs[top]));
        size_t nch = 0;
        const char *chv[64] = {0};
        const cJSON *c;
        cJSON_ArrayForEach(c, chans_json) if (cJSON_IsString(c) && nch < 64) chv[nch++] =
            c->valuestring;
        char event[32];
        snprintf(event, sizeof event, "alert.%s", status);
        rc = store_enqueue(tx, chv, nch, "alert", event, route_id, group_key, payload, enqueued,
                           err, errlen);
        cJSON_Delete(payload);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        const char *pk[] = {route_id, group_key, PQgetvalue(m, i, 0)};
        if (gm[i].drop)
            rc = qx(tx,
                    "DELETE FROM notifier.group_members WHERE route_id = $1 AND group_key = $2 "
                    "AND dedup_key = $3",
                    3, pk, err, errlen);
        else if (gm[i].include && gm[i].notified != GROUPING_MEMBER_FIRING)
            rc = qx(tx,
                    "UPDATE notifier.group_members SET notified_status = 'firing' WHERE "
                    "route_id = $1 AND group_key = $2 AND dedup_key = $3",
                    3, pk, err, errlen);
    }
    if (rc == 0) {
        if (plan.delete_group && n < MAX_GROUP_MEMBERS)
            rc = qx(tx, "DELETE FROM notifier.alert_groups WHERE route_id = $1 AND group_key = $2",
                    2, pg, err, errlen);
        else {
            char nx[24];
            ms_str(nx, sizeof nx, plan.next_flush);
            const char *pu[] = {route_id, group_key, plan.next_flush >= 0 ? nx : NULL,
                                plan.included ? "t" : "f"};
            rc = qx(tx,
                    "UPDATE notifier.alert_groups SET next_flush_at = to_timestamp($3::double "
                    "precision / 1000), last_notified_at = CASE WHEN $4 THEN now() ELSE "
                    "last_notified_at END WHERE route_id = $1 AND group_key = $2",
                    4, pu, err, errlen);
        }
    }
    for (int i = 0; i < n; i++)
        cJSON_Delete(labels[i]);
    free(labels);
    free(gm);
    PQclear(m);
    cJSON_Delete(chans_json);
    return rc;
}

int store_flush_due(db_conn *c, int limit, int *flushed, char *err, size_t errlen)
{
    *flushed = 0;
    if (db_exec(c, "BEGIN", err, errlen) != 0)
        return -1;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {lim};
    int64_t now = 0;
    PGresult *r = NULL;
    if (store_now_ms(c, &now, err, errlen) != 0 ||
        !(r = q(c,
                "SELECT route_id, group_key FROM notifier.alert_groups WHERE next_flush_at <= "
                "now() ORDER BY next_flush_at LIMIT $1 FOR UPDATE SKIP LOCKED",
                1, p, err, errlen))) {
        db_exec(c, "ROLLBACK", NULL, 0);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        int enq = 0;
        rc = store_flush_group(c, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), now, &enq, err, errlen);
        (*flushed)++;
    }
    PQclear(r);
    if (rc != 0) {
        db_exec(c, "ROLLBACK", NULL, 0);
        return -1;
    }
    return db_exec(c, "COMMIT", err, errlen);
}

int store_event_match(const char *const *filters, size_t n, const char *event)
{
    for (size_t i = 0; i < n; i++) {
        const char *f = filters[i];
        size_t fl = strlen(f);
        if (strcmp(f, "*") == 0 || strcmp(f, event) == 0)
            return 1;
        if (fl >= 2 && f[fl - 1] == '*' && f[fl - 2] == '.' && strncmp(f, event, fl - 1) == 0)
            return 1;
    }
    return 0;
}

static int chat_id_ok(const char *s)
{
    if (*s == '@')
        return strlen(s) >= 6 && strlen(s) <= 33 &&
               strspn(s + 1, "abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789_") == strlen(s) - 1;
    const char *d = *s == '-' ? s + 1 : s;
    return *d && strlen(d) <= 20 && strspn(d, "0123456789") == strlen(d);
}

static int insert_row(db_conn *tx, const char *channel, const char *target, const char *kind,
                      const char *event, const char *route_id, const char *group_key,
                      const char *payload, char *err, size_t errlen)
{
    const char *p[] = {channel, target, kind, event, route_id, group_key, payload};
    return qx(tx,
              "INSERT INTO notifier.notifications (channel_id, target, kind, event, route_id, "
              "group_key, payload) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
              7, p, err, errlen);
}

static int secret_available(const char *env_name, int sealed)
{
    if (env_name && *env_name) {
        const char *v = secret_env_name_ok(env_name) ? getenv(env_name) : NULL;
        return v && *v;
    }
    return sealed;
}

int store_enqueue(db_conn *tx, const char *const *channels, size_t nchannels, const char *kind,
                  const char *event, const char *route_id, const char *group_key,
                  const cJSON *payload, int *enqueued, char *err, size_t errlen)
{
    *enqueued = 0;
    if (nchannels == 0)
        return 0;
    char *arr = pg_array_new(channels, nchannels);
    const char *p[] = {arr};
    PGresult *r = q(tx,
                    "SELECT id, type, config::text, secret_env, secret_sealed IS NOT NULL FROM "
                    "notifier.channels WHERE enabled AND (id = ANY($1::text[]) OR '*' = "
                    "ANY($1::text[])) ORDER BY id",
                    1, p, err, errlen);
    free(arr);
    if (!r)
        return -1;
    char *body = cJSON_PrintUnformatted(payload);
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *id = PQgetvalue(r, i, 0), *type = PQgetvalue(r, i, 1);
        const char *senv = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
        int sealed = strcmp(PQgetvalue(r, i, 4), "t") == 0;
        cJSON *cfg = cJSON_Parse(PQgetvalue(r, i, 2));
        const char *skip = NULL;
        if (strcmp(type, "slack") == 0) {
            if (!secret_available(senv, sealed))
                skip = "no webhook URL configured";
            else if ((rc = insert_row(tx, id, "", kind, event, route_id, group_key, body, err,
                                      errlen)) == 0)
                (*enqueued)++;
        } else if (strcmp(type, "telegram") == 0) {
            const cJSON *chats = cJSON_GetObjectItemCaseSensitive(cfg, "chat_ids"), *ch;
            int any = 0;
            if (!secret_available(senv, sealed))
                skip = "no bot token configured";
            else
                cJSON_ArrayForEach(ch, chats)
                {
                    char num[32];
                    const char *chat = NULL;
                    if (cJSON_IsString(ch))
                        chat = ch->valuestring;
                    else if (cJSON_IsNumber(ch)) {
                        snprintf(num, sizeof num, "%.0f", ch->valuedouble);
                        chat = num;
                    }
                    if (!chat || !chat_id_ok(chat) || rc != 0)
                        continue;
                    if ((rc = insert_row(tx, id, chat, kind, event, route_id, group_key, body, err,
                                         errlen)) == 0)
                        (*enqueued)++, any = 1;
                }
            if (!skip && !any)
                skip = "no chat ids configured";
        } else if (strcmp(type, "email") == 0) {
            const cJSON *to = cJSON_GetObjectItemCaseSensitive(cfg, "to");
            const cJSON *url = cJSON_GetObjectItemCaseSensitive(cfg, "smtp_url");
            if (!cJSON_IsArray(to) || cJSON_GetArraySize(to) == 0 || !cJSON_IsString(url))
                skip = "no SMTP server or recipients configured";
            else if ((rc = insert_row(tx, id, "", kind, event, route_id, group_key, body, err,
                                      errlen)) == 0)
                (*enqueued)++;
        } else {
            PGresult *w = q(tx,
                            "SELECT id::text, array_to_json(events)::text FROM "
                            "notifier.webhook_subscriptions WHERE active ORDER BY id",
                            0, NULL, err, errlen);
            if (!w)
                rc = -1;
            for (int k = 0; w && k < PQntuples(w) && rc == 0; k++) {
                cJSON *ev = cJSON_Parse(PQgetvalue(w, k, 1));
                const char *fv[32];
                size_t nf = 0;
                const cJSON *e;
                cJSON_ArrayForEach(e, ev) if (cJSON_IsString(e) && nf < 32) fv[nf++] =
                    e->valuestring;
                if (store_event_match(fv, nf, event) &&
                    (rc = insert_row(tx, id, PQgetvalue(w, k, 0), kind, event, route_id, group_key,
                                     body, err, errlen)) == 0)
                    (*enqueued)++;
                cJSON_Delete(ev);
            }
            if (w)
                PQclear(w);
        }
        if (skip)
            log_info("channel skipped", "channel", id, "reason", skip, "event", event);
        cJSON_Delete(cfg);
    }
    PQclear(r);
    free(body);
    if (rc == 0 && *enqueued > 0)
        rc = db_exec(tx, "NOTIFY " STORE_WAKE_CHANNEL, err, errlen);
    return rc;
}

int store_claim_due(db_conn *c, const char *owner, int64_t lease_ms, int limit, store_claim **out,
                    size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    char lease[24], lim[16];
    ms_str(lease, sizeof lease, lease_ms);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {owner, lease, lim};
    PGresult *r =
        q(c,
          "WITH due AS (SELECT id FROM notifier.notifications WHERE (status = 'pending' AND "
          "next_attempt_at <= now()) OR (status = 'sending' AND lease_until < now()) ORDER BY "
          "next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED), "
          "upd AS (UPDATE notifier.notifications n SET status = 'sending', lease_owner = $1, "
          "lease_until = clock_timestamp() + $2::bigint * interval '1 millisecond' FROM due WHERE "
          "n.id = due.id RETURNING n.id, n.channel_id, n.target, n.kind, n.event, n.payload, "
          "n.attempts) "
          "SELECT upd.id, upd.channel_id, upd.target, upd.kind, upd.event, upd.payload::text, "
          "upd.attempts, c.type, c.config::text, c.secret_env, encode(c.secret_sealed, 'hex'), "
          "coalesce(c.enabled, false), w.url, encode(w.secret_sealed, 'hex'), "
          "coalesce(w.active, false) FROM upd LEFT JOIN notifier.channels c ON c.id = "
          "upd.channel_id LEFT JOIN notifier.webhook_subscriptions w ON c.type = 'webhook' AND "
          "w.id::text = upd.target ORDER BY upd.id",
          3, p, err, errlen);
    if (!r)
        return -1;
    int rows = PQntuples(r);
    store_claim *v = util_calloc((size_t)rows + 1, sizeof *v);
    for (int i = 0; i < rows; i++) {
        store_claim *cl = &v[i];
        cl->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        cl->channel_id = util_strdup(PQgetvalue(r, i, 1));
        cl->target = util_strdup(PQgetvalue(r, i, 2));
        cl->kind = util_strdup(PQgetvalue(r, i, 3));
        cl->event = util_strdup(PQgetvalue(r, i, 4));
        cl->payload = cJSON_Parse(PQgetvalue(r, i, 5));
        cl->attempts = atoi(PQgetvalue(r, i, 6));
        cl->channel_type = util_strdup(PQgetisnull(r, i, 7) ? "" : PQgetvalue(r, i, 7));
        cl->config = PQgetisnull(r, i, 8) ? cJSON_CreateObject() : cJSON_Parse(PQgetvalue(r, i, 8));
        cl->secret_env = PQgetisnull(r, i, 9) ? NULL : util_strdup(PQgetvalue(r, i, 9));
        if (!PQgetisnull(r, i, 10))
            store_unhex(PQgetvalue(r, i, 10), &cl->sealed, &cl->sealed_len);
        cl->channel_ok = strcmp(PQgetvalue(r, i, 11), "t") == 0;
        cl->wh_url = PQgetisnull(r, i, 12) ? NULL : util_strdup(PQgetvalue(r, i, 12));
        if (!PQgetisnull(r, i, 13))
            store_unhex(PQgetvalue(r, i, 13), &cl->wh_sealed, &cl->wh_sealed_len);
        cl->wh_active = strcmp(PQgetvalue(r, i, 14), "t") == 0;
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return 0;
}

void store_claims_free(store_claim *c, size_t n)
{
    if (!c)
        return;
    for (size_t i = 0; i < n; i++) {
        free(c[i].channel_id);
        free(c[i].channel_type);
        free(c[i].target);
        free(c[i].kind);
        free(c[i].event);
        cJSON_Delete(c[i].payload);
        cJSON_Delete(c[i].config);
        free(c[i].secret_env);
        free(c[i].sealed);
        free(c[i].wh_url);
        free(c[i].wh_sealed);
    }
    free(c);
}

int store_defer(db_conn *c, int64_t id, const char *owner, int64_t delay_ms, char *err,
                size_t errlen)
{
    char ids[24], d[24];
    ms_str(ids, sizeof ids, id);
    ms_str(d, sizeof d, delay_ms);
    const char *p[] = {ids, owner, d};
    return qx(c,
              "UPDATE notifier.notifications SET status = 'pending', lease_owner = NULL, "
              "lease_until = NULL, next_attempt_at = clock_timestamp() + $3::bigint * interval "
              "'1 millisecond' WHERE id = $1 AND lease_owner = $2 AND status = 'sending'",
              3, p, err, errlen);
}

static cJSON *fallback_payload(const store_claim *cl, const char *error, int attempts)
{
    char msg[700], key[64], nid[24], att[16];
    char *summary = NULL;
    format_note note;
    if (cl->payload && format_note_parse(cl->payload, &note, NULL, 0) == 0) {
        summary = format_summary_new(&note);
        format_note_free(&note);
    }
    snprintf(msg, sizeof msg,
             "Channel %s (%s) gave up after %d attempt(s): %.200s. Lost message: %.300s",
             cl->channel_id, cl->channel_type, attempts, error ? error : "unknown error",
             summary ? summary : "(unreadable)");
    free(summary);
    snprintf(key, sizeof key, "notifier:dead:%lld", (long long)cl->id);
    snprintf(nid, sizeof nid, "%lld", (long long)cl->id);
    snprintf(att, sizeof att, "%d", attempts);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "status", "firing");
    cJSON_AddStringToObject(p, "severity", "critical");
    cJSON_AddStringToObject(p, "route", "fallback");
    cJSON *arr = cJSON_AddArrayToObject(p, "alerts");
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "dedup_key", key);
    cJSON_AddStringToObject(a, "status", "firing");
    cJSON_AddStringToObject(a, "severity", "critical");
    cJSON_AddStringToObject(a, "category", "notifier");
    cJSON_AddStringToObject(a, "source", "notifier");
    cJSON_AddStringToObject(a, "title", "A notification could not be delivered");
    cJSON_AddStringToObject(a, "message", msg);
    cJSON *l = cJSON_AddObjectToObject(a, "labels");
    cJSON_AddStringToObject(l, "channel", cl->channel_id);
    cJSON_AddStringToObject(l, "notification_id", nid);
    cJSON_AddStringToObject(l, "attempts", att);
    cJSON_AddNumberToObject(a, "occurrences", 1);
    cJSON_AddItemToArray(arr, a);
    return p;
}

int store_record(db_conn *c, const store_claim *cl, const char *owner, const store_outcome *o,
                 const char *fallback_channel, int *lost, char *err, size_t errlen)
{
    *lost = 0;
    const char *status = strcmp(o->outcome, "sent") == 0   ? "sent"
                         : strcmp(o->outcome, "dead") == 0 ? "dead"
                                                           : "pending";
    char ids[24], inc[8], d[24], code[16], lat[24], att[16];
    ms_str(ids, sizeof ids, cl->id);
    snprintf(inc, sizeof inc, "%d", o->count_attempt ? 1 : 0);
    ms_str(d, sizeof d, o->next_delay_ms);
    snprintf(code, sizeof code, "%ld", o->status_code);
    ms_str(lat, sizeof lat, o->latency_ms);
    snprintf(att, sizeof att, "%d", cl->attempts + 1);
    if (db_exec(c, "BEGIN", err, errlen) != 0)
        return -1;
    const char *pu[] = {ids, owner, status, inc, d, o->error};
    PGresult *r = q(c,
                    "UPDATE notifier.notifications SET status = $3, attempts = attempts + $4, "
                    "next_attempt_at = clock_timestamp() + $5::bigint * interval '1 millisecond', "
                    "lease_owner = NULL, lease_until = NULL, last_error = $6, sent_at = CASE WHEN "
                    "$3 = 'sent' THEN now() END WHERE id = $1 AND lease_owner = $2 AND status = "
                    "'sending' RETURNING attempts",
                    6, pu, err, errlen);
    if (!r)
        goto fail;
    if (PQntuples(r) != 1) {
        PQclear(r);
        *lost = 1;
        db_exec(c, "ROLLBACK", NULL, 0);
        return 0;
    }
    int attempts = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    const char *pd[] = {ids,
                        cl->channel_id,
                        cl->channel_type,
                        cl->target,
                        att,
                        o->outcome,
                        o->status_code ? code : NULL,
                        lat,
                        o->error};
    if (qx(c,
           "INSERT INTO notifier.deliveries (notification_id, channel_id, channel_type, target, "
           "attempt, outcome, status_code, latency_ms, error) VALUES ($1, $2, $3, $4, $5, $6, "
           "$7, $8, $9)",
           9, pd, err, errlen) != 0)
        goto fail;
    if (strcmp(status, "dead") == 0 && fallback_channel && *fallback_channel &&
        strcmp(cl->kind, "fallback") != 0 && strcmp(cl->channel_id, fallback_channel) != 0) {
        cJSON *fp = fallback_payload(cl, o->error, attempts);
        int enq = 0;
        const char *chv[] = {fallback_channel};
        int rc =
            store_enqueue(c, chv, 1, "fallback", "alert.firing", NULL, NULL, fp, &enq, err, errlen);
        cJSON_Delete(fp);
        if (rc != 0)
            goto fail;
        if (enq == 0)
            log_error("fallback channel unusable", "channel", fallback_channel);
    }
    return db_exec(c, "COMMIT", err, errlen);
fail:
    db_exec(c, "ROLLBACK", NULL, 0);
    return -1;
}

int64_t store_next_due_ms(db_conn *c, int64_t cap_ms)
{
    PGresult *r = q(c,
                    "SELECT greatest(0, (extract(epoch FROM (least("
                    "(SELECT min(next_attempt_at) FROM notifier.notifications WHERE status = "
                    "'pending'), (SELECT min(lease_until) FROM notifier.notifications WHERE status "
                    "= 'sending'), (SELECT min(next_flush_at) FROM notifier.alert_groups)) - "
                    "clock_timestamp())) * 1000)::bigint)",
                    0, NULL, NULL, 0);
    if (!r)
        return cap_ms;
    int64_t v = PQgetisnull(r, 0, 0) ? cap_ms : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v < cap_ms ? v : cap_ms;
}
