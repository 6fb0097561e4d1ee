/* api: risk internal HTTP handlers (see api.h), plus the routes this file adds for the
 * gateway's fund and report resources:
 *   GET /v1/fund/overview          the latest cycle regrouped: NAV, tier values, holdings,
 *                                  metrics and levels (404 before the first cycle)
 *   GET /v1/fund/holdings          ?date=YYYY-MM-DD: that day's snapshot, else the latest cycle
 *   GET /v1/risk/reports/range     ?from=&to= (YYYY-MM-DD, at most 366 days)&format=json|csv
 */
#include "risk/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "opsig.h"
#include "risk/calc.h"
#include "risk/snapshot.h"
#include "util.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static void unavailable(http_request *req)
{
    http_reply_error(req, 503, "unavailable", "service temporarily unavailable", NULL);
}

static void bad(http_request *req, const char *msg)
{
    http_reply_error(req, 400, "invalid_request", msg, NULL);
}

static int role_rank(const char *role)
{
    static const char *const R[] = {"viewer", "operator", "admin", "super_admin"};
    for (int i = 0; role && i < 4; i++)
        if (strcmp(role, R[i]) == 0)
            return i;
    return -1;
}

/* Timestamps from clients: RFC 3339 or a date; PostgreSQL parses, we bound the alphabet. */
static int ts_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 40)
        return 0;
    for (; *s; s++)
        if (!strchr("0123456789-:.TZtz+ ", *s))
            return 0;
    return 1;
}

static int ident_ok(const char *s, size_t max)
{
    if (!s || !*s || strlen(s) > max)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
              *s == 'x'))
            return 0;
    return 1;
}

/* Replies with the single JSON text column of r's first row (or `empty`). */
static void reply_json_text(http_request *req, PGresult *r, const char *empty)
{
    const char *t = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : empty;
    cJSON *j = cJSON_Parse(t);
    if (!j) {
        unavailable(req);
        return;
    }
    http_reply_ok(req, 200, j);
}

static db_conn *conn(http_request *req, rk_api *a)
{
    char err[UTIL_ERRLEN];
    db_conn *c = db_acquire(a->app->db, 2000, err, sizeof err);
    if (!c) {
        log_warn("risk api: database unavailable", "error", err);
        unavailable(req);
    }
    return c;
}

/* A query whose failure is the client's (bad timestamp text: SQLSTATE class 22) or ours. */
static void query_failed(http_request *req, db_conn *c, const char *err)
{
    if (strncmp(db_last_sqlstate(c), "22", 2) == 0) {
        bad(req, "invalid parameter value");
        return;
    }
    log_warn("risk api query failed", "error", err);
    unavailable(req);
}

/* ---------------------------------------------------------------- history */

static const char HIST_RAW[] = "SELECT COALESCE(json_agg(json_build_object('t', " TS(
    "b") ", 'open', o::text, 'high', "
         "h::text, 'low', l::text, 'close', c::text, 'avg', a::text, 'n', n) ORDER BY b), "
         "'[]')::text "
         "FROM (SELECT date_trunc('minute', ts) AS b, (array_agg(value ORDER BY ts))[1] AS o, "
         "max(value) AS h, min(value) AS l, (array_agg(value ORDER BY ts DESC))[1] AS c, "
         "round(avg(value), 6) AS a, count(*) AS n FROM risk.risk_metrics_series WHERE metric = $1 "
         "AND subject = $2 AND ts >= $3::timestamptz AND ts < $4::timestamptz GROUP BY 1) x";

static const char HIST_ROLLUP[] = "SELECT COALESCE(json_agg(json_build_object('t', " TS(
    "bucket") ", 'open', open::text, "
              "'high', high::text, 'low', low::text, 'close', close::text, 'avg', round(sum / n, "
              "6)::text, 'n', n) ORDER BY bucket), '[]')::text FROM risk.risk_metrics_rollup WHERE "
              "width = $5 AND metric = $1 AND subject = $2 AND bucket >= date_trunc(CASE $5 WHEN "
              "'1h' "
              "THEN 'hour' ELSE 'day' END, $3::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' "
              "AND "
              "bucket < $4::timestamptz";

/* Range checks per interval so a request cannot ask for millions of buckets. */
static const char RANGE_OK[] =
    "SELECT $2::timestamptz > $1::timestamptz AND $2::timestamptz - $1::timestamptz <= CASE $3 "
    "WHEN '1m' THEN interval '7 days' WHEN '1h' THEN interval '800 days' ELSE interval '4000 "
    "days' END";

static cJSON *history(http_request *req, db_conn *c, const char *metric, const char *subject,
                      int *status)
{
    const char *iv = http_query(req, "interval");
    if (!iv)
        iv = "1h";
    if (strcmp(iv, "1m") && strcmp(iv, "1h") && strcmp(iv, "1d")) {
        *status = 400;
        return NULL;
    }
    const char *from = http_query(req, "from"), *to = http_query(req, "to");
    char dfrom[48], dto[48];
    if (!to)
        to = "now";
    if (!from) {
        /* default windows: 1m -> 1 day, 1h -> 7 days, 1d -> 1 year */
        snprintf(dfrom, sizeof dfrom, "%s",
                 !strcmp(iv, "1m")   ? "-1 day"
                 : !strcmp(iv, "1h") ? "-7 days"
                                     : "-365 days");
        from = dfrom;
    }
    char err[UTIL_ERRLEN];
    /* resolve relative defaults and "now" once, in the database's clock */
    const char *pp[2] = {from, to};
    if ((from != dfrom && !ts_ok(from)) || (strcmp(to, "now") && !ts_ok(to))) {
        *status = 400;
        return NULL;
    }
    PGresult *r = db_query_prepared(
        c, "rk_hist_range",
        "SELECT (CASE WHEN left($1, 1) = '-' THEN now() + $1::interval ELSE $1::timestamptz "
        "END)::text, (CASE WHEN $2 = 'now' THEN now() ELSE $2::timestamptz END)::text",
        2, pp, err, sizeof err);
    if (!r) {
        *status = strncmp(db_last_sqlstate(c), "22", 2) == 0 ? 400 : 503;
        return NULL;
    }
    snprintf(dfrom, sizeof dfrom, "%s", PQgetvalue(r, 0, 0));
    snprintf(dto, sizeof dto, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    const char *rp[3] = {dfrom, dto, iv};
    r = db_query_prepared(c, "rk_hist_check", RANGE_OK, 3, rp, err, sizeof err);
    if (!r) {
        *status = 503;
        return NULL;
    }
    int ok = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!ok) {
        *status = 400;
        return NULL;
    }
    const char *p[5] = {metric, subject, dfrom, dto, iv};
    r = !strcmp(iv, "1m")
            ? db_query_prepared(c, "rk_hist_raw", HIST_RAW, 4, p, err, sizeof err)
            : db_query_prepared(c, "rk_hist_rollup", HIST_ROLLUP, 5, p, err, sizeof err);
    if (!r) {
        log_warn("risk history query failed", "error", err);
        *status = 503;
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "metric", metric);
    cJSON_AddStringToObject(o, "subject", subject);
    cJSON_AddStringToObject(o, "interval", iv);
    cJSON_AddStringToObject(o, "from", dfrom);
    cJSON_AddStringToObject(o, "to", dto);
    cJSON *pts = cJSON_Parse(PQgetvalue(r, 0, 0));
    PQclear(r);
    cJSON_AddItemToObject(o, "points", pts ? pts : cJSON_CreateArray());
    *status = 200;
    return o;
}

static void reply_history_error(http_request *req, int status)
{
    if (status == 400)
        bad(req, "interval must be 1m|1h|1d and from < to within the interval's range "
                 "(1m: 7 days, 1h: 800 days, 1d: 4000 days)");
    else
        unavailable(req);
}

static void get_history(http_request *req, void *ud)
{
    rk_api *a = ud;
    const char *metric = http_param(req, "metric");
    const char *subject = http_query(req, "subject");
    if (!subject)
        subject = "";
    if (!ident_ok(metric, 64) || (*subject && !ident_ok(subject, 42))) {
        bad(req, "invalid metric or subject");
        return;
    }
    db_conn *c = conn(req, a);
    if (!c)
        return;
    int status = 0;
    cJSON *o = history(req, c, metric, subject, &status);
    db_release(a->app->db, c);
    if (!o)
        reply_history_error(req, status);
    else
        http_reply_ok(req, 200, o);
}

static void get_nav(http_request *req, void *ud)
{
    rk_api *a = ud;
    db_conn *c = conn(req, a);
    if (!c)
        return;
    int status = 0;
    cJSON *sp = history(req, c, "nav.share_price", "", &status);
    cJSON *ta = sp ? history(req, c, "nav.total_assets", "", &status) : NULL;
    db_release(a->app->db, c);
    if (!sp || !ta) {
        cJSON_Delete(sp);
        reply_history_error(req, status);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "share_price", sp);
    cJSON_AddItemToObject(o, "total_assets", ta);
    http_reply_ok(req, 200, o);
}

/* ---------------------------------------------------------------- events */

#define EVENT_JSON                                                                                 \
    "json_build_object('id', id, 'metric', metric, 'level', level, 'previous_level', "             \
    "previous_level, 'value', value::text, 'threshold', threshold::text, 'block', block, "         \
    "'opened_at', " TS("opened_at") ", 'resolved_at', " TS(                                        \
        "resolved_at") ", 'resolved_value', "                                                      \
                       "resolved_value::text, 'acked_at', " TS(                                    \
                           "acked_at") ", 'acked_by', acked_by, 'ack_note', "                      \
                                       "ack_note)"

static void list_events(http_request *req, void *ud)
{
    rk_api *a = ud;
    const char *metric = http_query(req, "metric"), *level = http_query(req, "level"),
               *status = http_query(req, "status"), *acked = http_query(req, "acked"),
               *cursor = http_query(req, "cursor"), *lim = http_query(req, "limit");
    if ((metric && !ident_ok(metric, 64)) ||
        (level && strcmp(level, "warning") && strcmp(level, "critical")) ||
        (status && strcmp(status, "open") && strcmp(status, "resolved")) ||
        (acked && strcmp(acked, "true") && strcmp(acked, "false"))) {
        bad(req, "invalid filter");
        return;
    }
    long limit = 50;
    if (lim) {
        char *end = NULL;
        limit = strtol(lim, &end, 10);
        if (!*lim || *end || limit < 1 || limit > 200) {
            bad(req, "limit must be 1..200");
            return;
        }
    }
    if (cursor) {
        char *end = NULL;
        long long cv = strtoll(cursor, &end, 10);
        if (!*cursor || *end || cv < 1) {
            bad(req, "invalid cursor");
            return;
        }
    }
    char ls[16];
    snprintf(ls, sizeof ls, "%ld", limit + 1);
    const char *p[7] = {metric, level, status, acked, cursor, ls};
    db_conn *c = conn(req, a);
    if (!c)
        return;
    char err[UTIL_ERRLEN];
    PGresult *r = db_query_prepared(
        c, "rk_events_list",
        "SELECT id, " EVENT_JSON "::text FROM risk.risk_events WHERE ($1::text IS NULL OR "
        "metric = $1) AND ($2::text IS NULL OR level = $2) AND ($3::text IS NULL OR ($3 = 'open') "
        "= (resolved_at IS NULL)) AND ($4::text IS NULL OR ($4 = 'true') = (acked_at IS NOT "
        "NULL)) AND ($5::bigint IS NULL OR id < $5::bigint) ORDER BY id DESC LIMIT $6::int",
        6, p, err, sizeof err);
    if (!r) {
        query_failed(req, c, err);
        db_release(a->app->db, c);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(o, "items");
    int n = PQntuples(r);
    for (int i = 0; i < n && i < limit; i++)
        cJSON_AddItemToArray(items, cJSON_Parse(PQgetvalue(r, i, 1)));
    if (n > limit)
        cJSON_AddStringToObject(o, "next_cursor", PQgetvalue(r, (int)limit - 1, 0));
    else
        cJSON_AddNullToObject(o, "next_cursor");
    PQclear(r);
    db_release(a->app->db, c);
    http_reply_ok(req, 200, o);
}

static void ack_event(http_request *req, void *ud)
{
    rk_api *a = ud;
    const char *id = http_param(req, "id");
    const char *user = http_header(req, "X-Paimon-User");
    char *end = NULL;
    long long idv = id ? strtoll(id, &end, 10) : 0;
    if (!id || !*id || *end || idv < 1) {
        bad(req, "invalid event id");
        return;
    }
    if (!user || !*user || strlen(user) > 128 ||
        role_rank(http_header(req, "X-Paimon-Role")) < role_rank("operator")) {
        http_reply_error(req, 403, "forbidden", "acknowledging needs an operator", NULL);
        return;
    }
    const char *note = NULL;
    cJSON *body = NULL;
    size_t blen = 0;
    http_body(req, &blen);
    if (blen > 0) {
        body = http_require_json(req);
        if (!body)
            return;
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(body, "note");
        if (n && (!cJSON_IsString(n) || strlen(n->valuestring) > 1000)) {
            cJSON_Delete(body);
            bad(req, "note must be a string of at most 1000 bytes");
            return;
        }
        note = n ? n->valuestring : NULL;
    }
    db_conn *c = conn(req, a);
    if (!c) {
        cJSON_Delete(body);
        return;
    }
    const char *p[3] = {id, user, note};
    char err[UTIL_ERRLEN];
    PGresult *r = db_query_prepared(
        c, "rk_event_ack",
        "WITH u AS (UPDATE risk.risk_events SET acked_at = now(), acked_by = $2, ack_note = $3 "
        "WHERE id = $1::bigint AND acked_at IS NULL RETURNING *) SELECT 'acked', " EVENT_JSON
        "::text FROM u UNION ALL SELECT 'seen', " EVENT_JSON "::text FROM risk.risk_events WHERE "
        "id = $1::bigint AND NOT EXISTS (SELECT 1 FROM u)",
        3, p, err, sizeof err);
    cJSON_Delete(body);
    if (!r) {
        query_failed(req, c, err);
        db_release(a->app->db, c);
        return;
    }
    if (PQntuples(r) == 0)
        http_reply_error(req, 404, "not_found", "no such event", NULL);
    else if (strcmp(PQgetvalue(r, 0, 0), "seen") == 0)
        http_reply_error(req, 409, "already_acknowledged", "the event was acknowledged already",
                         cJSON_Parse(PQgetvalue(r, 0, 1)));
    else
        http_reply_ok(req, 200, cJSON_Parse(PQgetvalue(r, 0, 1)));
    PQclear(r);
    db_release(a->app->db, c);
}

/* ---------------------------------------------------------------- thresholds */

#define THR_JSON                                                                                   \
    "json_build_object('metric', metric, 'direction', direction, 'warning', warning, "             \
    "'critical', critical, 'clear_margin', clear_margin, 'unit', unit, 'description', "            \
    "description, 'updated_at', " TS("updated_at") ", 'updated_by', updated_by)"

static void get_thresholds(http_request *req, void *ud)
{
    rk_api *a = ud;
    db_conn *c = conn(req, a);
    if (!c)
        return;
    char err[UTIL_ERRLEN];
    PGresult *r = db_query_prepared(c, "rk_thr_list",
                                    "SELECT COALESCE(json_agg(" THR_JSON
                                    " ORDER BY metric), '[]')::text FROM "
                                    "risk.risk_thresholds",
                                    0, NULL, err, sizeof err);
    if (!r)
        unavailable(req);
    else
        reply_json_text(req, r, "[]");
    PQclear(r);
    db_release(a->app->db, c);
}

/* A threshold field: absent -> keep (*set = 0), null -> clear, integer 0..RK_VALUE_MAX. */
static int num_field(const cJSON *body, const char *k, int nullable, char *out, size_t len,
                     int *set, int *is_null)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, k);
    *set = v != NULL;
    *is_null = 0;
    if (!v)
        return 0;
    if (cJSON_IsNull(v)) {
        *is_null = 1;
        return nullable ? 0 : -1;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > (double)RK_VALUE_MAX ||
        v->valuedouble != (double)(long long)v->valuedouble)
        return -1;
    snprintf(out, len, "%lld", (long long)v->valuedouble);
    return 0;
}

/* Threshold changes are signed "Operation"s (libcommon/opsig.h) by a wallet holding
 * ADMIN_ROLE; the nonce is recorded in the same transaction as the change. */
static const char *const THR_ROLES[] = {"ADMIN_ROLE", NULL};

typedef struct thr_ctx {
    const char *const *p;
    const opsig_op *op;
    char *row; /* the threshold's JSON (owned) */
    int st;    /* 0, an opsig status, 404 or 400 (constraint) */
    char msg[200];
} thr_ctx;

static int thr_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    thr_ctx *x = ud;
    x->st = opsig_claim(tx, "risk", x->op, x->msg, sizeof x->msg);
    if (x->st != 0)
        return util_err(err, errlen, "%s", x->msg);
    PGresult *r = db_query_prepared(
        tx, "rk_thr_put",
        "UPDATE risk.risk_thresholds SET warning = CASE WHEN $2 = '1' THEN $3::numeric ELSE "
        "warning END, critical = CASE WHEN $4 = '1' THEN $5::numeric ELSE critical END, "
        "clear_margin = COALESCE($6::numeric, clear_margin), updated_at = now(), updated_by = $7 "
        "WHERE metric = $1 RETURNING " THR_JSON "::text",
        7, x->p, err, errlen);
    if (!r) {
        if (strcmp(db_last_sqlstate(tx), "23514") == 0) {
            x->st = 400;
            util_strlcpy(x->msg, "critical must be past warning in the metric's direction",
                         sizeof x->msg);
        }
        return -1;
    }
    if (PQntuples(r) == 1)
        x->row = util_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!x->row) {
        x->st = 404;
        util_strlcpy(x->msg, "unknown metric", sizeof x->msg);
        return util_err(err, errlen, "unknown metric");
    }
    return 0;
}

static void put_threshold(http_request *req, void *ud)
{
    rk_api *a = ud;
    const char *metric = http_param(req, "metric");
    const char *user = http_header(req, "X-Paimon-User");
    if (!user || !*user || strlen(user) > 128 ||
        role_rank(http_header(req, "X-Paimon-Role")) < role_rank("admin")) {
        http_reply_error(req, 403, "forbidden", "changing thresholds needs an admin", NULL);
        return;
    }
    if (rk_metric_find(metric) < 0) {
        http_reply_error(req, 404, "not_found", "unknown metric", NULL);
        return;
    }
    cJSON *body = http_require_json(req);
    if (!body)
        return;
    char w[24] = "", cr[24] = "", m[24] = "";
    int ws, wn, cs, cn, ms, mn;
    int bad_field = !cJSON_IsObject(body) ||
                    num_field(body, "warning", 1, w, sizeof w, &ws, &wn) != 0 ||
                    num_field(body, "critical", 1, cr, sizeof cr, &cs, &cn) != 0 ||
                    num_field(body, "clear_margin", 0, m, sizeof m, &ms, &mn) != 0;
    if (bad_field || (!ws && !cs && !ms)) {
        cJSON_Delete(body);
        bad(req, "body must set warning, critical (integer or null) and/or clear_margin "
                 "(integer), each 0..1e15");
        return;
    }
    opsig_req o = {.action = "risk.threshold.update",
                   .target = metric,
                   .body = body,
                   .wallet = http_header(req, "X-Paimon-Wallet"),
                   .chain_id = a->app->chain_id,
                   .vault = a->app->vault,
                   .now_ms = util_now_ms(),
                   .roles = THR_ROLES,
                   .rpc = a->app->rpc,
                   .vault_abi = a->app->vault_abi};
    opsig_op op;
    char msg[200];
    int st = opsig_verify(&o, &op, msg, sizeof msg);
    cJSON_Delete(body);
    if (st != 0) {
        http_reply_error(req, st, opsig_code(st), msg, NULL);
        return;
    }
    const char *p[8] = {metric,
                        ws ? "1" : "0",
                        ws && !wn ? w : NULL,
                        cs ? "1" : "0",
                        cs && !cn ? cr : NULL,
                        ms ? m : NULL,
                        user};
    char err[UTIL_ERRLEN];
    thr_ctx x = {.p = p, .op = &op};
    if (db_tx(a->app->db, thr_tx, &x, err, sizeof err) != 0) {
        free(x.row);
        if (x.st == 404)
            http_reply_error(req, 404, "not_found", x.msg, NULL);
        else if (x.st == 400)
            bad(req, x.msg);
        else if (x.st != 0)
            http_reply_error(req, x.st, opsig_code(x.st), x.msg, NULL);
        else {
            log_warn("threshold change failed", "error", err);
            http_reply_error(req, 503, "unavailable", "database unavailable", NULL);
        }
        return;
    }
    log_info("risk threshold changed", "metric", metric, "by", user, "wallet", op.wallet_hex);
    cJSON *row = cJSON_Parse(x.row);
    free(x.row);
    http_reply_ok(req, 200, row ? row : cJSON_CreateObject());
}

/* ---------------------------------------------------------------- daily report */

static void get_daily(http_request *req, void *ud)
{
    rk_api *a = ud;
    const char *day = http_param(req, "date"), *fmt = http_query(req, "format");
    int ok = day && strlen(day) == 10;
    for (int i = 0; ok && i < 10; i++)
        ok = (i == 4 || i == 7) ? day[i] == '-' : (day[i] >= '0' && day[i] <= '9');
    if (!ok || (fmt && strcmp(fmt, "json") && strcmp(fmt, "csv"))) {
        bad(req, "date must be YYYY-MM-DD and format json|csv");
        return;
    }
    db_conn *c = conn(req, a);
    if (!c)
        return;
    char err[UTIL_ERRLEN];
    int found = 0;
    cJSON *rep = rk_snapshot_get(c, day, &found, err, sizeof err);
    if (!rep && !found && db_last_sqlstate(c)[0]) {
        query_failed(req, c, err);
        db_release(a->app->db, c);
        return;
    }
    db_release(a->app->db, c);
    if (!found) {
        cJSON_Delete(rep);
        http_reply_error(req, 404, "not_found", "no snapshot for that day", NULL);
        return;
    }
    if (fmt && strcmp(fmt, "csv") == 0) {
        char *csv = rk_snapshot_csv(rep);
        cJSON_Delete(rep);
        if (!csv) {
            unavailable(req);
            return;
        }
        char cd[80];
        snprintf(cd, sizeof cd, "attachment; filename=\"risk-%s.csv\"", day);
        http_set_header(req, "Content-Disposition", cd);
        http_reply_text(req, 200, "text/csv; charset=utf-8", csv);
        free(csv);
        return;
    }
    http_reply_ok(req, 200, rep);
}

/* ---------------------------------------------------------------- current and fund */

/* The latest cycle from the cache: NULL after replying (404 before the first cycle, 503
 * when Redis is down). */
static cJSON *current_or_reply(http_request *req, rk_api *a)
{
    char err[UTIL_ERRLEN];
    redisContext *rc = a->redis ? a->redis(a->redis_ud, err, sizeof err) : NULL;
    redisReply *r = rc ? redisCommand(rc, "GET %s", RK_CACHE_KEY) : NULL;
    if (!r) {
        unavailable(req);
        return NULL;
    }
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        http_reply_error(req, 404, "not_found", "no risk cycle has run yet", NULL);
        return NULL;
    }
    cJSON *j = cJSON_Parse(r->str);
    freeReplyObject(r);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        unavailable(req);
    }
    return cJSON_IsObject(j) ? j : NULL;
}

/* The latest cycle as risk computed it (the paimon:risk:current cache). */
static void get_current(http_request *req, void *ud)
{
    cJSON *cur = current_or_reply(req, ud);
    if (cur)
        http_reply_ok(req, 200, cur);
}

static void move(cJSON *from, cJSON *to, const char *k)
{
    cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(from, k);
    cJSON_AddItemToObject(to, k, v ? v : cJSON_CreateNull());
}

/* The fund's overview is the risk cycle regrouped: the cycle already reads NAV, the tier
 * values and every holding from the vault at one block and computes the metrics, so the
 * overview is consistent by construction and costs no chain or database read. */
static void get_overview(http_request *req, void *ud)
{
    cJSON *cur = current_or_reply(req, ud);
    if (!cur)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON *ts = cJSON_DetachItemFromObjectCaseSensitive(cur, "ts");
    cJSON_AddItemToObject(o, "as_of", ts ? ts : cJSON_CreateNull());
    move(cur, o, "block");
    move(cur, o, "block_time");
    cJSON *nav = cJSON_AddObjectToObject(o, "nav");
    move(cur, nav, "total_assets");
    move(cur, nav, "total_supply");
    move(cur, nav, "share_price");
    cJSON *liq = cJSON_AddObjectToObject(o, "liquidity");
    move(cur, liq, "l1_value");
    move(cur, liq, "l2_value");
    move(cur, liq, "l3_value");
    move(cur, liq, "redemptions_due");
    move(cur, o, "emergency_mode");
    move(cur, o, "level");
    cJSON *as = cJSON_DetachItemFromObjectCaseSensitive(cur, "assets");
    cJSON_AddItemToObject(o, "holdings", as ? as : cJSON_CreateArray());
    move(cur, o, "metrics");
    cJSON_Delete(cur);
    http_reply_ok(req, 200, o);
}

static int day_ok(const char *d)
{
    int ok = d && strlen(d) == 10;
    for (int i = 0; ok && i < 10; i++)
        ok = (i == 4 || i == 7) ? d[i] == '-' : (d[i] >= '0' && d[i] <= '9');
    return ok;
}

/* Current holdings from the latest cycle, or a day's close from the daily snapshot. */
static void get_holdings(http_request *req, void *ud)
{
    rk_api *a = ud;
    const char *day = http_query(req, "date");
    if (day && !day_ok(day)) {
        bad(req, "date must be YYYY-MM-DD");
        return;
    }
    if (!day) {
        cJSON *cur = current_or_reply(req, a);
        if (!cur)
            return;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "source", "current");
        cJSON *ts = cJSON_DetachItemFromObjectCaseSensitive(cur, "ts");
        cJSON_AddItemToObject(o, "as_of", ts ? ts : cJSON_CreateNull());
        move(cur, o, "block");
        cJSON *as = cJSON_DetachItemFromObjectCaseSensitive(cur, "assets");
        cJSON_AddItemToObject(o, "items", as ? as : cJSON_CreateArray());
        cJSON_Delete(cur);
        http_reply_ok(req, 200, o);
        return;
    }
    db_conn *c = conn(req, a);
    if (!c)
        return;
    const char *p[1] = {day};
    char err[UTIL_ERRLEN];
    PGresult *r = db_query_prepared(
        c, "rk_fund_holdings",
        "SELECT json_build_object('source', 'snapshot', 'day', s.day::text, 'as_of', " TS(
            "s.as_of") ", 'items', COALESCE((SELECT json_agg(json_build_object('token', h.asset, "
                       "'balance', h.balance::text, 'value', h.value::text, 'weight_bps', "
                       "h.weight_bps::text) ORDER BY h.asset) FROM risk.asset_holdings_snapshots "
                       "h WHERE h.day = s.day), '[]'::json))::text FROM risk.daily_snapshots s "
                       "WHERE s.day = $1::date",
        1, p, err, sizeof err);
    if (!r) {
        query_failed(req, c, err);
    } else if (PQntuples(r) == 0) {
        http_reply_error(req, 404, "not_found", "no snapshot for that day", NULL);
    } else {
        reply_json_text(req, r, "{}");
    }
    PQclear(r);
    db_release(a->app->db, c);
}

/* ---------------------------------------------------------------- range report */

static void csv_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputs(last ? "\r\n" : ",", f);
}

static const char *const RANGE_COLS[] = {"day",          "as_of",        "backfilled",
                                         "total_assets", "total_supply", "share_price",
                                         "l1_value",     "level"};
#define RANGE_NCOLS (sizeof RANGE_COLS / sizeof RANGE_COLS[0])

/* One row per day of the daily snapshots in [from, to] (at most 366 days). */
static void get_range(http_request *req, void *ud)
{
    rk_api *a = ud;
    const char *from = http_query(req, "from"), *to = http_query(req, "to"),
               *fmt = http_query(req, "format");
    if (!day_ok(from) || !day_ok(to) || (fmt && strcmp(fmt, "json") && strcmp(fmt, "csv"))) {
        bad(req, "from and to must be YYYY-MM-DD and format json|csv");
        return;
    }
    db_conn *c = conn(req, a);
    if (!c)
        return;
    const char *p[2] = {from, to};
    char err[UTIL_ERRLEN];
    PGresult *r = db_query_prepared(
        c, "rk_range",
        "SELECT $2::date >= $1::date AND $2::date - $1::date <= 365, COALESCE((SELECT "
        "json_agg(json_build_object('day', s.day::text, 'as_of', " TS(
            "s.as_of") ", 'backfilled', s.backfilled, 'total_assets', s.total_assets::text, "
                       "'total_supply', s.total_supply::text, 'share_price', s.share_price::text, "
                       "'l1_value', s.l1_value::text, 'level', COALESCE((SELECT CASE max(CASE v "
                       "WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END) WHEN 2 THEN "
                       "'critical' WHEN 1 THEN 'warning' ELSE 'info' END FROM "
                       "jsonb_each_text(s.levels) AS l(k, v)), 'info'), 'metrics', s.metrics, "
                       "'levels', s.levels) ORDER BY s.day) FROM risk.daily_snapshots s WHERE "
                       "s.day BETWEEN $1::date AND $2::date), '[]'::json)::text",
        2, p, err, sizeof err);
    if (!r) {
        query_failed(req, c, err);
        db_release(a->app->db, c);
        return;
    }
    db_release(a->app->db, c);
    int ok = PQgetvalue(r, 0, 0)[0] == 't';
    cJSON *days = ok ? cJSON_Parse(PQgetvalue(r, 0, 1)) : NULL;
    PQclear(r);
    if (!ok) {
        bad(req, "to must be on or after from, at most 366 days apart");
        return;
    }
    if (!days) {
        unavailable(req);
        return;
    }
    if (fmt && strcmp(fmt, "csv") == 0) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) {
            cJSON_Delete(days);
            unavailable(req);
            return;
        }
        for (size_t i = 0; i < RANGE_NCOLS; i++)
            csv_field(f, RANGE_COLS[i], i + 1 == RANGE_NCOLS);
        const cJSON *d;
        cJSON_ArrayForEach(d, days)
        {
            for (size_t i = 0; i < RANGE_NCOLS; i++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, RANGE_COLS[i]);
                csv_field(f,
                          cJSON_IsString(v)  ? v->valuestring
                          : cJSON_IsTrue(v)  ? "true"
                          : cJSON_IsFalse(v) ? "false"
                                             : "",
                          i + 1 == RANGE_NCOLS);
            }
        }
        fclose(f);
        cJSON_Delete(days);
        char cd[96];
        snprintf(cd, sizeof cd, "attachment; filename=\"risk-%s-%s.csv\"", from, to);
        http_set_header(req, "Content-Disposition", cd);
        http_reply_text(req, 200, "text/csv; charset=utf-8", buf ? buf : "");
        free(buf);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "from", from);
    cJSON_AddStringToObject(o, "to", to);
    cJSON_AddItemToObject(o, "days", days);
    http_reply_ok(req, 200, o);
}

int rk_api_register(http_server *s, rk_api *a)
{
    return http_route(s, "GET", "/v1/risk/current", get_current, a) ||
                   http_route(s, "GET", "/v1/risk/metrics/:metric/history", get_history, a) ||
                   http_route(s, "GET", "/v1/risk/nav", get_nav, a) ||
                   http_route(s, "GET", "/v1/risk/events", list_events, a) ||
                   http_route(s, "POST", "/v1/risk/events/:id/ack", ack_event, a) ||
                   http_route(s, "GET", "/v1/risk/thresholds", get_thresholds, a) ||
                   http_route(s, "PUT", "/v1/risk/thresholds/:metric", put_threshold, a) ||
                   http_route(s, "GET", "/v1/risk/reports/daily/:date", get_daily, a) ||
                   http_route(s, "GET", "/v1/risk/reports/range", get_range, a) ||
                   http_route(s, "GET", "/v1/fund/overview", get_overview, a) ||
                   http_route(s, "GET", "/v1/fund/holdings", get_holdings, a)
               ? -1
               : 0;
}
