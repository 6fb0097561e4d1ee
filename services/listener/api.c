/* api: internal read endpoints (see api.h). */
#include "api.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evid.h"
#include "log.h"
#include "store.h"
#include "util.h"

static int parse_u63(const char *s, int64_t *out)
{
    if (!s || !*s || strlen(s) > 18)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    *out = strtoll(s, NULL, 10);
    return 0;
}

int api_cursor_parse(const char *s, int64_t *block, int64_t *log, char hash[67])
{
    char buf[128];
    if (!s || strlen(s) >= sizeof buf)
        return -1;
    util_strlcpy(buf, s, sizeof buf);
    char *a = buf, *b = strchr(a, '.');
    if (!b)
        return -1;
    *b++ = '\0';
    char *c = strchr(b, '.');
    if (!c)
        return -1;
    *c++ = '\0';
    return parse_u63(a, block) || parse_u63(b, log) || evid_hash_norm(c, hash) ? -1 : 0;
}

int api_events_query_parse(const char *(*get)(void *ud, const char *name), void *ud,
                           api_events_query *q, const char **bad, char *err, size_t errlen)
{
    memset(q, 0, sizeof *q);
    q->to_block = INT64_MAX;
    q->removed = -1;
    q->limit = API_LIMIT_DEFAULT;
    const char *v;
    int64_t x;
    if ((v = get(ud, "chain_id"))) {
        if (parse_u63(v, &x) || x == 0)
            return *bad = "chain_id", util_err(err, errlen, "chain_id must be a positive integer");
        q->chain_id = (uint64_t)x;
    }
    if ((v = get(ud, "from_block"))) {
        if (parse_u63(v, &q->from_block))
            return *bad = "from_block", util_err(err, errlen, "from_block must be a block number");
    }
    if ((v = get(ud, "to_block"))) {
        if (parse_u63(v, &q->to_block))
            return *bad = "to_block", util_err(err, errlen, "to_block must be a block number");
    }
    if (q->to_block < q->from_block)
        return *bad = "to_block", util_err(err, errlen, "to_block is below from_block");
    if ((v = get(ud, "event"))) {
        size_t n = strlen(v);
        int ok = n > 0 && n < sizeof q->event && !isdigit((unsigned char)v[0]);
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)v[i]) || v[i] == '_';
        if (!ok)
            return *bad = "event", util_err(err, errlen, "event must be an event name");
        util_strlcpy(q->event, v, sizeof q->event);
    }
    if ((v = get(ud, "tx_hash"))) {
        if (evid_hash_norm(v, q->tx_hash) != 0)
            return *bad = "tx_hash", util_err(err, errlen, "tx_hash must be 0x + 64 hex digits");
    }
    if ((v = get(ud, "removed"))) {
        if (strcmp(v, "true") == 0)
            q->removed = 1;
        else if (strcmp(v, "false") == 0)
            q->removed = 0;
        else
            return *bad = "removed", util_err(err, errlen, "removed must be true or false");
    }
    if ((v = get(ud, "limit"))) {
        if (parse_u63(v, &x) || x < 1 || x > API_LIMIT_MAX)
            return *bad = "limit", util_err(err, errlen, "limit must be 1..%d", API_LIMIT_MAX);
        q->limit = (int)x;
    }
    if ((v = get(ud, "cursor"))) {
        if (api_cursor_parse(v, &q->cur_block, &q->cur_log, q->cur_hash) != 0)
            return *bad = "cursor", util_err(err, errlen, "cursor is not one this API gave");
        q->has_cursor = 1;
    }
    return 0;
}

static const char *req_get(void *ud, const char *name)
{
    return http_query(ud, name);
}

static void fail(http_request *req, const char *why)
{
    log_warn("internal error", "route", http_route_pattern(req), "error", why);
    http_reply_error(req, 503, "unavailable", "database unavailable", NULL);
}

static int pick_chain(api_ctx *a, http_request *req, uint64_t *chain_id)
{
    if (*chain_id) {
        for (size_t i = 0; i < a->nchains; i++) {
            chain_status st;
            chain_get_status(a->chains[i], &st);
            if (st.chain_id == *chain_id)
                return 0;
        }
        http_reply_error(req, 404, "not_found", "chain not configured", NULL);
        return -1;
    }
    if (a->nchains != 1) {
        http_reply_error(req, 400, "invalid_query", "chain_id is required", NULL);
        return -1;
    }
    chain_status st;
    chain_get_status(a->chains[0], &st);
    *chain_id = st.chain_id;
    return 0;
}

static void get_events(http_request *req, void *ud)
{
    api_ctx *a = ud;
    api_events_query q;
    const char *bad = NULL;
    char err[UTIL_ERRLEN];
    if (api_events_query_parse(req_get, req, &q, &bad, err, sizeof err) != 0) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "parameter", bad);
        http_reply_error(req, 400, "invalid_query", err, d);
        return;
    }
    if (pick_chain(a, req, &q.chain_id) != 0)
        return;
    char cid[24], fb[24], tb[24], cb[24], cl[24], lim[16];
    snprintf(cid, sizeof cid, "%" PRIu64, q.chain_id);
    snprintf(fb, sizeof fb, "%" PRId64, q.from_block);
    snprintf(tb, sizeof tb, "%" PRId64, q.to_block);
    snprintf(cb, sizeof cb, "%" PRId64, q.cur_block);
    snprintf(cl, sizeof cl, "%" PRId64, q.cur_log);
    snprintf(lim, sizeof lim, "%d", q.limit + 1);
    const char *p[] = {cid,
                       fb,
                       tb,
                       q.event[0] ? q.event : NULL,
                       q.tx_hash[0] ? q.tx_hash : NULL,
                       q.removed < 0 ? NULL
                       : q.removed   ? "true"
                                     : "false",
                       q.has_cursor ? cb : NULL,
                       cl,
                       q.cur_hash,
                       lim};
    db_conn *c = db_acquire(a->db, 2000, err, sizeof err);
    if (!c) {
        fail(req, err);
        return;
    }
    PGresult *r = db_query_prepared(
        c, "api_events",
        "SELECT id, block_number, block_hash, to_char(block_time AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), tx_hash, tx_index, log_index, address, event, "
        "signature, args::text, priority, removed, published OR (NOT removed AND block_number <= "
        "(SELECT published_block FROM listener.checkpoints k WHERE k.chain_id = $1)) "
        "FROM listener.chain_events "
        "WHERE chain_id = $1 AND block_number BETWEEN $2 AND $3 "
        "AND ($4::text IS NULL OR event = $4) AND ($5::text IS NULL OR tx_hash = $5) "
        "AND ($6::boolean IS NULL OR removed = $6) "
        "AND ($7::bigint IS NULL OR "
        "(block_number, log_index, block_hash) > ($7, $8::bigint, $9::text)) "
        "ORDER BY block_number, log_index, block_hash LIMIT $10",
        10, p, err, sizeof err);
    db_release(a->db, c);
    if (!r) {
        fail(req, err);
        return;
    }
    int n = PQntuples(r);
    int shown = n > q.limit ? q.limit : n;
    cJSON *data = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(data, "items");
    for (int i = 0; i < shown; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", PQgetvalue(r, i, 0));
        cJSON_AddNumberToObject(o, "chain_id", (double)q.chain_id);
        cJSON_AddNumberToObject(o, "block_number", strtod(PQgetvalue(r, i, 1), NULL));
        cJSON_AddStringToObject(o, "block_hash", PQgetvalue(r, i, 2));
        cJSON_AddStringToObject(o, "block_time", PQgetvalue(r, i, 3));
        cJSON_AddStringToObject(o, "tx_hash", PQgetvalue(r, i, 4));
        cJSON_AddNumberToObject(o, "tx_index", strtod(PQgetvalue(r, i, 5), NULL));
        cJSON_AddNumberToObject(o, "log_index", strtod(PQgetvalue(r, i, 6), NULL));
        cJSON_AddStringToObject(o, "address", PQgetvalue(r, i, 7));
        cJSON_AddStringToObject(o, "event", PQgetvalue(r, i, 8));
        cJSON_AddStringToObject(o, "signature", PQgetvalue(r, i, 9));
        cJSON *args = cJSON_Parse(PQgetvalue(r, i, 10));
        cJSON_AddItemToObject(o, "args", args ? args : cJSON_CreateNull());
        cJSON_AddStringToObject(o, "priority", PQgetvalue(r, i, 11));
        cJSON_AddBoolToObject(o, "removed", PQgetvalue(r, i, 12)[0] == 't');
        cJSON_AddBoolToObject(o, "published", PQgetvalue(r, i, 13)[0] == 't');
        cJSON_AddItemToArray(items, o);
    }
    if (n > q.limit) {
        char cur[128];
        snprintf(cur, sizeof cur, "%s.%s.%s", PQgetvalue(r, shown - 1, 1),
                 PQgetvalue(r, shown - 1, 6), PQgetvalue(r, shown - 1, 2));
        cJSON_AddStringToObject(data, "next_cursor", cur);
    } else {
        cJSON_AddNullToObject(data, "next_cursor");
    }
    PQclear(r);
    http_reply_ok(req, 200, data);
}

static void get_checkpoints(http_request *req, void *ud)
{
    api_ctx *a = ud;
    char err[UTIL_ERRLEN];
    db_conn *c = db_acquire(a->db, 2000, err, sizeof err);
    if (!c) {
        fail(req, err);
        return;
    }
    PGresult *r =
        db_query(c,
                 "SELECT chain_id, start_block, last_block, last_hash, "
                 "to_char(last_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                 "fence, halted, to_char(updated_at AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM listener.checkpoints "
                 "ORDER BY chain_id",
                 0, NULL, err, sizeof err);
    db_release(a->db, c);
    if (!r) {
        fail(req, err);
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < PQntuples(r); i++) {
        cJSON *o = cJSON_CreateObject();
        uint64_t cid = strtoull(PQgetvalue(r, i, 0), NULL, 10);
        cJSON_AddNumberToObject(o, "chain_id", (double)cid);
        cJSON_AddNumberToObject(o, "start_block", strtod(PQgetvalue(r, i, 1), NULL));
        cJSON_AddNumberToObject(o, "last_block", strtod(PQgetvalue(r, i, 2), NULL));
        if (PQgetisnull(r, i, 3))
            cJSON_AddNullToObject(o, "last_hash");
        else
            cJSON_AddStringToObject(o, "last_hash", PQgetvalue(r, i, 3));
        if (PQgetisnull(r, i, 4))
            cJSON_AddNullToObject(o, "last_time");
        else
            cJSON_AddStringToObject(o, "last_time", PQgetvalue(r, i, 4));
        cJSON_AddNumberToObject(o, "fence", strtod(PQgetvalue(r, i, 5), NULL));
        if (PQgetisnull(r, i, 6))
            cJSON_AddNullToObject(o, "halted");
        else
            cJSON_AddStringToObject(o, "halted", PQgetvalue(r, i, 6));
        cJSON_AddStringToObject(o, "updated_at", PQgetvalue(r, i, 7));
        for (size_t k = 0; k < a->nchains; k++) {
            chain_status st;
            chain_get_status(a->chains[k], &st);
            if (st.chain_id != cid)
                continue;
            cJSON_AddBoolToObject(o, "leader_here", st.leader);
            cJSON_AddNumberToObject(o, "head", (double)st.head);
            cJSON_AddNumberToObject(
                o, "lag_blocks", st.head > st.checkpoint ? (double)(st.head - st.checkpoint) : 0);
        }
        cJSON_AddItemToArray(arr, o);
    }
    PQclear(r);
    http_reply_ok(req, 200, arr);
}

static void add_gap(void *ud, int64_t from, int64_t to)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "from_block", (double)from);
    cJSON_AddNumberToObject(o, "to_block", (double)to);
    cJSON_AddItemToArray(ud, o);
}

static void get_gaps(http_request *req, void *ud)
{
    api_ctx *a = ud;
    uint64_t chain_id = 0;
    const char *v = http_query(req, "chain_id");
    int64_t x;
    if (v) {
        if (parse_u63(v, &x) || x == 0) {
            http_reply_error(req, 400, "invalid_query", "chain_id must be a positive integer",
                             NULL);
            return;
        }
        chain_id = (uint64_t)x;
    }
    if (pick_chain(a, req, &chain_id) != 0)
        return;
    char err[UTIL_ERRLEN], cid[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    db_conn *c = db_acquire(a->db, 2000, err, sizeof err);
    if (!c) {
        fail(req, err);
        return;
    }
    const char *p[] = {cid};
    PGresult *r = db_query(c,
                           "SELECT start_block, last_block FROM listener.checkpoints "
                           "WHERE chain_id = $1",
                           1, p, err, sizeof err);
    if (!r) {
        db_release(a->db, c);
        fail(req, err);
        return;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        db_release(a->db, c);
        http_reply_error(req, 404, "not_found", "no checkpoint yet", NULL);
        return;
    }
    int64_t from = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    int64_t to = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    cJSON *gaps = cJSON_CreateArray();
    int64_t missing = store_gaps(c, chain_id, from, to, add_gap, gaps, err, sizeof err);
    db_release(a->db, c);
    if (missing < 0) {
        cJSON_Delete(gaps);
        fail(req, err);
        return;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "chain_id", (double)chain_id);
    cJSON_AddNumberToObject(d, "from_block", (double)from);
    cJSON_AddNumberToObject(d, "to_block", (double)to);
    cJSON_AddNumberToObject(d, "missing_blocks", (double)missing);
    cJSON_AddItemToObject(d, "gaps", gaps);
    http_reply_ok(req, 200, d);
}

void api_register(http_server *s, api_ctx *ctx)
{
    http_route(s, "GET", "/v1/events", get_events, ctx);
    http_route(s, "GET", "/v1/checkpoints", get_checkpoints, ctx);
    http_route(s, "GET", "/v1/gaps", get_gaps, ctx);
}
