/* admin: queue and DLQ inspection, replay, global pause, deep health, the audit log, the
 * OpenAPI document and docs page, and the asynchronous proxy to the services' internal
 * HTTP (see handlers.h). */
#include "handlers.h"

#include "audit.h"
#include "bus.h"
#include "log.h"
#include "opsig.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define PAUSE_KEY "paimon:system:paused"

static redisContext *need_redis(gw_ctx *c)
{
    char err[UTIL_ERRLEN];
    redisContext *rc = gw_redis(c, err, sizeof err);
    if (!rc)
        gw_fail(c, 503, "service_unavailable", "redis unavailable", NULL);
    return rc;
}

/* ---------- queues and DLQ ---------- */

static const struct {
    const char *topic, *group;
} QUEUES[] = {
    {"chain.events", "approval"},
    {"chain.events", "rebalance"},
    {"chain.events", "risk"},
    {"approval.requests", "approval"},
    {"approval.decisions", "rebalance"},
    {"approval.decisions", "risk"},
    {"alerts", "notifier"},
};

void h_queues(gw_ctx *c)
{
    redisContext *rc = need_redis(c);
    if (!rc)
        return;
    cJSON *items = cJSON_CreateArray();
    long long dlq = 0;
    for (size_t i = 0; i < sizeof QUEUES / sizeof QUEUES[0]; i++) {
        bus_depth d;
        char err[UTIL_ERRLEN];
        cJSON *q = cJSON_CreateObject();
        cJSON_AddStringToObject(q, "topic", QUEUES[i].topic);
        cJSON_AddStringToObject(q, "group", QUEUES[i].group);
        if (bus_depth_get(rc, QUEUES[i].topic, QUEUES[i].group, &d, err, sizeof err) != 0) {
            cJSON_AddStringToObject(q, "status", "unavailable");
        } else {
            cJSON_AddStringToObject(q, "status", "ok");
            cJSON *lag = cJSON_AddObjectToObject(q, "lag");
            cJSON *pen = cJSON_AddObjectToObject(q, "pending");
            for (int p = 0; p < BUS_NPRIO; p++) {
                cJSON_AddNumberToObject(lag, bus_priority_name((bus_priority)p), (double)d.lag[p]);
                cJSON_AddNumberToObject(pen, bus_priority_name((bus_priority)p),
                                        (double)d.pending[p]);
            }
            cJSON_AddNumberToObject(q, "delayed", (double)d.delayed);
            dlq = d.dlq;
        }
        cJSON_AddItemToArray(items, q);
        if (rc->err)
            break;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "queues", items);
    cJSON_AddNumberToObject(d, "dlq", (double)dlq);
    gw_ok(c, 200, d);
}

static int stream_id_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 40)
        return 0;
    const char *dash = strchr(s, '-');
    if (!dash || dash == s || !dash[1] || strchr(dash + 1, '-'))
        return 0;
    return strspn(s, "0123456789-") == strlen(s);
}

void h_dlq_list(gw_ctx *c)
{
    int64_t limit;
    const char *cursor = http_query(gw_req(c), "cursor");
    if (gw_query_int(c, "limit", 50, 1, 500, &limit) != 0) {
        gw_fail(c, 400, "invalid_query", "limit must be an integer in 1..500", NULL);
        return;
    }
    if (cursor && !stream_id_ok(cursor)) {
        gw_fail(c, 400, "invalid_query", "cursor is not a stream id", NULL);
        return;
    }
    redisContext *rc = need_redis(c);
    if (!rc)
        return;
    char start[64];
    snprintf(start, sizeof start, "%s%s", cursor ? "(" : "", cursor ? cursor : "+");
    redisReply *r =
        redisCommand(rc, "XREVRANGE %s %s - COUNT %lld", BUS_DLQ_KEY, start, (long long)limit);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        gw_fail(c, 503, "service_unavailable", "redis unavailable", NULL);
        return;
    }
    cJSON *items = cJSON_CreateArray();
    const char *last = NULL;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", e->element[0]->str);
        last = e->element[0]->str;
        redisReply *f = e->element[1];
        for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
            const char *name = f->element[k]->str, *val = f->element[k + 1]->str;
            if (!name || !val)
                continue;
            if (strcmp(name, "env") == 0) {
                cJSON *env = cJSON_Parse(val);
                cJSON_AddItemToObject(o, "envelope", env ? env : cJSON_CreateString(val));
            } else if (!cJSON_GetObjectItemCaseSensitive(o, name)) {
                cJSON_AddStringToObject(o, name, val);
            }
        }
        cJSON_AddItemToArray(items, o);
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "items", items);
    if (last && (int64_t)r->elements == limit)
        cJSON_AddStringToObject(d, "nextCursor", last);
    else
        cJSON_AddNullToObject(d, "nextCursor");
    freeReplyObject(r);
    gw_ok(c, 200, d);
}

void h_dlq_replay(gw_ctx *c)
{
    const char *id = http_param(gw_req(c), "id");
    if (!stream_id_ok(id)) {
        gw_fail(c, 404, "not_found", "no such DLQ entry", NULL);
        return;
    }
    redisContext *rc = need_redis(c);
    if (!rc)
        return;
    char err[UTIL_ERRLEN];
    int r = bus_dlq_replay(rc, id, err, sizeof err);
    if (r == 0) {
        gw_fail(c, 404, "not_found", "no such DLQ entry", NULL);
    } else if (r < 0) {
        log_warn_t(http_request_id(gw_req(c)), "dlq replay failed", "id", id, "error", err);
        gw_fail(c, 409, "replay_failed", "the entry could not be replayed", NULL);
    } else {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "id", id);
        cJSON_AddBoolToObject(d, "replayed", 1);
        gw_ok(c, 200, d);
    }
}

/* ---------- pause ---------- */

static void reply_system(gw_ctx *c, redisContext *rc, int status)
{
    redisReply *r = redisCommand(rc, "GET %s", PAUSE_KEY);
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        if (r)
            freeReplyObject(r);
        gw_fail(c, 503, "service_unavailable", "redis unavailable", NULL);
        return;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddBoolToObject(d, "paused", r->type == REDIS_REPLY_STRING);
    cJSON *info = r->type == REDIS_REPLY_STRING ? cJSON_Parse(r->str) : NULL;
    cJSON_AddItemToObject(d, "pause", info ? info : cJSON_CreateNull());
    freeReplyObject(r);
    gw_ok(c, status, d);
}

void h_system(gw_ctx *c)
{
    redisContext *rc = need_redis(c);
    if (rc)
        reply_system(c, rc, 200);
}

/* Pause and resume are signed "Operation"s (libcommon/opsig.h: action "gateway.pause" /
 * "gateway.resume", target "", paramsHash over the body without nonce / deadline /
 * signature) by the caller's linked wallet (the token's wallet claim). The gateway owns
 * them, so it verifies them: signature, deadline, and the nonce recorded in
 * api.operation_nonces in one transaction with the Redis change (a Redis failure rolls
 * the nonce back; a commit failure after the Redis write leaves an un-recorded pause,
 * harmless since pausing twice keeps the first reason). The gateway has no chain
 * access, so the on-chain role check is skipped here: the super_admin role (RBAC) is
 * what gates these routes. The typed-data domain needs the vault address (PAIMON_VAULT_ADDRESS or
 * the devchain address book, as the services read it); without it the routes answer 503. */
typedef struct pause_ctx {
    gw_ctx *c;
    redisContext *rc;
    const opsig_op *op;
    int pause;
    int st; /* opsig status of the nonce claim */
    char msg[200];
} pause_ctx;

static int pause_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    pause_ctx *x = ud;
    x->st = opsig_claim(tx, "api", x->op, x->msg, sizeof x->msg);
    if (x->st != 0)
        return util_err(err, errlen, "%s", x->msg);
    redisReply *r;
    if (x->pause) {
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(gw_body(x->c), "reason");
        cJSON *info = cJSON_CreateObject();
        cJSON_AddStringToObject(info, "by", gw_user_id(x->c));
        cJSON_AddStringToObject(info, "wallet", x->op->wallet_hex);
        cJSON_AddStringToObject(info, "reason", cJSON_IsString(reason) ? reason->valuestring : "");
        cJSON_AddNumberToObject(info, "atMs", (double)util_now_ms());
        cJSON_AddStringToObject(info, "requestId", http_request_id(gw_req(x->c)));
        char *txt = cJSON_PrintUnformatted(info);
        cJSON_Delete(info);
        /* NX: a second pause keeps the first one's reason */
        r = redisCommand(x->rc, "SET %s %s NX", PAUSE_KEY, txt ? txt : "{}");
        cJSON_free(txt);
    } else {
        r = redisCommand(x->rc, "DEL %s", PAUSE_KEY);
    }
    int ok = r && (x->pause ? (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_NIL)
                            : r->type == REDIS_REPLY_INTEGER);
    if (r)
        freeReplyObject(r);
    return ok ? 0 : util_err(err, errlen, "redis unavailable");
}

static void set_pause(gw_ctx *c, int pause)
{
    redisContext *rc = need_redis(c);
    if (!rc)
        return;
    opsig_req o = {.action = pause ? "gateway.pause" : "gateway.resume",
                   .target = "",
                   .body = gw_body(c),
                   .wallet = gw_wallet(c),
                   .chain_id = (uint64_t)gw_cfg(c)->chain_id,
                   .vault = gw_cfg(c)->vault,
                   .now_ms = util_now_ms()};
    opsig_op op;
    char msg[200], err[UTIL_ERRLEN];
    int st = opsig_verify(&o, &op, msg, sizeof msg);
    if (st != 0) {
        static const char *const CODE[] = {"validation_failed", "invalid_signature", "forbidden"};
        gw_fail(c, st,
                st == 400   ? CODE[0]
                : st == 401 ? CODE[1]
                : st == 403 ? CODE[2]
                            : "service_unavailable",
                msg, NULL);
        return;
    }
    pause_ctx x = {.c = c, .rc = rc, .op = &op, .pause = pause};
    if (db_tx(gw_db(c), pause_tx, &x, err, sizeof err) != 0) {
        if (x.st != 0)
            gw_fail(c, x.st, x.st == 401 ? "invalid_signature" : "service_unavailable", x.msg,
                    NULL);
        else
            gw_fail(c, 503, "service_unavailable", "pause could not be recorded", NULL);
        return;
    }
    log_warn_t(http_request_id(gw_req(c)), pause ? "global pause set" : "global pause lifted", "by",
               gw_user_id(c));
    reply_system(c, rc, 200);
}

void h_pause(gw_ctx *c)
{
    set_pause(c, 1);
}

void h_resume(gw_ctx *c)
{
    set_pause(c, 0);
}

/* ---------- deep health ---------- */

static size_t discard(void *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

void h_health(gw_ctx *c)
{
    cJSON *d = cJSON_CreateObject();
    cJSON *deps = cJSON_AddObjectToObject(d, "dependencies");
    char err[UTIL_ERRLEN];
    int ok = 1;
    int64_t t0 = util_mono_ms();
    int dbok = db_ping(gw_db(c), err, sizeof err) == 0;
    cJSON *o = cJSON_AddObjectToObject(deps, "postgres");
    cJSON_AddStringToObject(o, "status", dbok ? "ok" : "fail");
    cJSON_AddNumberToObject(o, "latencyMs", (double)(util_mono_ms() - t0));
    t0 = util_mono_ms();
    redisContext *rc = gw_redis(c, err, sizeof err);
    int rok = rc && rconn_ping(rc, err, sizeof err) == 0;
    o = cJSON_AddObjectToObject(deps, "redis");
    cJSON_AddStringToObject(o, "status", rok ? "ok" : "fail");
    cJSON_AddNumberToObject(o, "latencyMs", (double)(util_mono_ms() - t0));
    ok = dbok && rok;
    /* Services: a short blocking probe each; this admin route is rare and bounded by
     * GW_NSERVICES * timeout. */
    cJSON *svcs = cJSON_AddObjectToObject(d, "services");
    for (int i = 0; i < GW_NSERVICES; i++) {
        const char *base = gw_cfg(c)->internal_url[i];
        o = cJSON_AddObjectToObject(svcs, gw_service_names[i]);
        if (!base || !*base) {
            cJSON_AddStringToObject(o, "status", "not_configured");
            continue;
        }
        char url[600];
        snprintf(url, sizeof url, "%s/health/ready", base);
        CURL *h = curl_easy_init();
        long code = 0;
        t0 = util_mono_ms();
        if (h) {
            curl_easy_setopt(h, CURLOPT_URL, url);
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 500L);
            curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
            curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
            if (curl_easy_perform(h) == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
            curl_easy_cleanup(h);
        }
        cJSON_AddStringToObject(o, "status", code == 200 ? "ok" : code ? "not_ready" : "down");
        cJSON_AddNumberToObject(o, "latencyMs", (double)(util_mono_ms() - t0));
    }
    cJSON_AddStringToObject(d, "status", ok ? "ok" : "degraded");
    gw_ok(c, ok ? 200 : 503, d);
}

/* ---------- audit ---------- */

void h_audit_list(gw_ctx *c)
{
    int64_t limit, before;
    if (gw_query_int(c, "limit", 100, 1, 1000, &limit) != 0 ||
        gw_query_int(c, "before", 0, 1, INT64_MAX / 2, &before) != 0) {
        gw_fail(c, 400, "invalid_query", "limit must be 1..1000 and before a positive integer",
                NULL);
        return;
    }
    const char *actor = http_query(gw_req(c), "actor");
    if (actor && (!*actor || strlen(actor) > 128)) {
        gw_fail(c, 400, "invalid_query", "actor must be 1..128 characters", NULL);
        return;
    }
    char err[UTIL_ERRLEN], ls[24], bs[24];
    snprintf(ls, sizeof ls, "%lld", (long long)limit);
    snprintf(bs, sizeof bs, "%lld", (long long)before);
    db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
    if (!dc) {
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    const char *p[] = {ls, before ? bs : NULL, actor};
    PGresult *r = db_query_prepared(
        dc, "audit_list",
        "SELECT seq, at_ms, actor, role, method, route, target, status, outcome, request_id, ip, "
        "body_sha256, hash FROM api.audit_logs WHERE ($2::bigint IS NULL OR seq < $2) AND "
        "($3::text IS NULL OR actor = $3) ORDER BY seq DESC LIMIT $1",
        3, p, err, sizeof err);
    db_release(gw_db(c), dc);
    if (!r) {
        gw_internal(c, err);
        return;
    }
    static const char *const names[] = {"seq",   "atMs",       "actor",  "role",    "method",
                                        "route", "target",     "status", "outcome", "requestId",
                                        "ip",    "bodySha256", "hash"};
    cJSON *items = cJSON_CreateArray();
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        for (int k = 0; k < 13; k++) {
            if (k == 0 || k == 1 || k == 7)
                cJSON_AddNumberToObject(o, names[k], strtod(PQgetvalue(r, i, k), NULL));
            else
                cJSON_AddStringToObject(o, names[k], PQgetvalue(r, i, k));
        }
        cJSON_AddItemToArray(items, o);
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "items", items);
    if (n == limit && n > 0)
        cJSON_AddNumberToObject(d, "nextBefore", strtod(PQgetvalue(r, n - 1, 0), NULL));
    else
        cJSON_AddNullToObject(d, "nextBefore");
    PQclear(r);
    gw_ok(c, 200, d);
}

void h_audit_verify(gw_ctx *c)
{
    audit_verify_result v;
    char err[UTIL_ERRLEN];
    if (audit_verify(gw_db(c), &v, err, sizeof err) != 0) {
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddBoolToObject(d, "valid", v.ok);
    cJSON_AddNumberToObject(d, "checked", (double)v.checked);
    if (v.ok) {
        cJSON_AddNullToObject(d, "firstBadSeq");
        cJSON_AddNullToObject(d, "reason");
    } else {
        cJSON_AddNumberToObject(d, "firstBadSeq", (double)v.first_bad_seq);
        cJSON_AddStringToObject(d, "reason", v.reason);
    }
    gw_ok(c, 200, d);
}

/* ---------- documents ---------- */

void h_openapi(gw_ctx *c)
{
    const char *j = gw_openapi_json(c);
    gw_reply_raw(c, 200, "application/json", j, strlen(j));
}

static const char DOCS_HTML[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Paimon API</title>"
    "<link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\"></head><body><div "
    "id=\"swagger-ui\"></div><script src=\"/docs/swagger-ui-bundle.js\"></script>"
    "<script src=\"/docs/init.js\"></script></body></html>";
static const char DOCS_INIT[] =
    "window.ui = SwaggerUIBundle({url: '/api/v1/openapi.json', dom_id: '#swagger-ui'});";

void h_docs(gw_ctx *c)
{
    gw_reply_raw(c, 200, "text/html; charset=utf-8", DOCS_HTML, sizeof DOCS_HTML - 1);
}

void h_docs_file(gw_ctx *c)
{
    const char *f = http_param(gw_req(c), "file");
    if (strcmp(f, "init.js") == 0) {
        gw_reply_raw(c, 200, "application/javascript", DOCS_INIT, sizeof DOCS_INIT - 1);
        return;
    }
    /* only the two assets the page needs: no path from the client reaches the disk */
    const char *ct = NULL;
    if (strcmp(f, "swagger-ui.css") == 0)
        ct = "text/css; charset=utf-8";
    else if (strcmp(f, "swagger-ui-bundle.js") == 0)
        ct = "application/javascript";
    if (!ct) {
        gw_fail(c, 404, "not_found", "no such resource", NULL);
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", gw_cfg(c)->swagger_dir, f);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        gw_fail(c, 404, "not_found", "docs assets are not installed", NULL);
        return;
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = n > 0 && n < 16 * 1024 * 1024 ? util_malloc((size_t)n + 1) : NULL;
    size_t got = buf ? fread(buf, 1, (size_t)n, fp) : 0;
    fclose(fp);
    if (!buf) {
        gw_internal(c, "docs asset unreadable");
        return;
    }
    buf[got] = '\0';
    gw_reply_raw(c, 200, ct, buf, got);
    free(buf);
}

/* ---------- proxy ---------- */

typedef struct proxy {
    gw_ctx *c;
    struct evhttp_connection *conn;
    char service[16];
    char cache_key[512]; /* "" = not cached */
    char host[256];
    int port;
    char path[4200]; /* upstream path and query */
} proxy;

static void conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evhttp_connection_free(arg);
}

/* evhttp may still touch the connection after the request callback returns, and
 * free_on_completion does not free it when the request failed: free it from the loop
 * once the callback is over. */
static void proxy_free(proxy *p, struct event_base *base)
{
    struct timeval zero = {0, 0};
    if (event_base_once(base, -1, EV_TIMEOUT, conn_free_cb, p->conn, &zero) != 0)
        log_warn("proxy: connection not freed");
    free(p);
}

static void proxy_reply(struct evhttp_request *resp, proxy *p);

static void proxy_done(struct evhttp_request *resp, void *arg)
{
    proxy *p = arg;
    struct event_base *base = gw_base(p->c);
    proxy_reply(resp, p);
    proxy_free(p, base);
}

static void proxy_reply(struct evhttp_request *resp, proxy *p)
{
    gw_ctx *c = p->c;
    int code = resp ? evhttp_request_get_response_code(resp) : 0;
    if (!resp || code == 0) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "service", p->service);
        gw_fail(c, 503, "service_unavailable", "the service is not available", d);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(resp);
    size_t n = evbuffer_get_length(in);
    char *body = util_malloc(n + 1);
    evbuffer_remove(in, body, n);
    body[n] = '\0';
    /* reports in CSV: the one non-JSON answer a service gives; passed through with its
     * file name, never cached */
    struct evkeyvalq *rh = evhttp_request_get_input_headers(resp);
    const char *ct = evhttp_find_header(rh, "Content-Type");
    if (code == 200 && ct && strncasecmp(ct, "text/csv", 8) == 0 && strlen(body) == n) {
        const char *cd = evhttp_find_header(rh, "Content-Disposition");
        if (cd && strlen(cd) < 200 && !strpbrk(cd, "\r\n"))
            gw_header(c, "Content-Disposition", cd);
        gw_reply_raw(c, 200, "text/csv; charset=utf-8", body, n);
        free(body);
        return;
    }
    cJSON *j = cJSON_ParseWithLength(body, n);
    free(body);
    const cJSON *succ = cJSON_GetObjectItemCaseSensitive(j, "success");
    if (!cJSON_IsBool(succ)) {
        cJSON_Delete(j);
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "service", p->service);
        gw_fail(c, code == 503 || code == 404 ? 503 : 502,
                code == 503 || code == 404 ? "service_unavailable" : "bad_gateway",
                "the service gave an unexpected answer", d);
    } else if (cJSON_IsTrue(succ)) {
        cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(j, "data");
        cJSON_Delete(j);
        if (code == 200 && p->cache_key[0])
            gw_cache_put(c, p->cache_key, data);
        gw_ok(c, code, data);
    } else if (code >= 500) {
        cJSON_Delete(j);
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "service", p->service);
        gw_fail(c, code == 503 ? 503 : 502, code == 503 ? "service_unavailable" : "upstream_error",
                "the service failed to answer", d);
    } else {
        cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *ec = cJSON_GetObjectItemCaseSensitive(e, "code");
        const cJSON *em = cJSON_GetObjectItemCaseSensitive(e, "message");
        cJSON *det = cJSON_DetachItemFromObjectCaseSensitive(e, "details");
        gw_fail(c, code >= 400 && code < 500 ? code : 502,
                cJSON_IsString(ec) ? ec->valuestring : "upstream_error",
                cJSON_IsString(em) ? em->valuestring : "request failed", det);
        cJSON_Delete(j);
    }
}

static int service_index(const char *name)
{
    for (int i = 0; i < GW_NSERVICES; i++)
        if (strcmp(gw_service_names[i], name) == 0)
            return i;
    return -1;
}

/* Sends the request upstream; proxy_done answers the client. Takes p. */
static void proxy_send(proxy *p)
{
    gw_ctx *c = p->c;
    http_request *req = gw_req(c);
    struct evhttp_connection *conn =
        evhttp_connection_base_new(gw_base(c), NULL, p->host, (ev_uint16_t)p->port);
    p->conn = conn;
    if (!conn) {
        free(p);
        gw_internal(c, "cannot create upstream connection");
        return;
    }
    evhttp_connection_set_timeout(conn, (int)((gw_cfg(c)->upstream_timeout_ms + 999) / 1000));
    evhttp_connection_set_retries(conn, 0);
    struct evhttp_request *ur = evhttp_request_new(proxy_done, p);
    struct evkeyvalq *h = evhttp_request_get_output_headers(ur);
    evhttp_add_header(h, "Host", p->host);
    evhttp_add_header(h, "X-Request-Id", http_request_id(req));
    evhttp_add_header(h, "X-Paimon-User", gw_user_id(c));
    /* rebalance records who asked for a manual trigger under this name */
    evhttp_add_header(h, "X-User-Id", gw_user_id(c));
    evhttp_add_header(h, "X-Paimon-Role", rbac_role_name(gw_role(c)));
    if (gw_wallet(c)[0])
        evhttp_add_header(h, "X-Paimon-Wallet", gw_wallet(c));
    if (gw_cfg(c)->internal_token && *gw_cfg(c)->internal_token)
        evhttp_add_header(h, "X-Internal-Token", gw_cfg(c)->internal_token);
    enum evhttp_cmd_type cmd = EVHTTP_REQ_GET;
    const char *m = http_method(req);
    if (strcmp(m, "POST") == 0)
        cmd = EVHTTP_REQ_POST;
    else if (strcmp(m, "PUT") == 0)
        cmd = EVHTTP_REQ_PUT;
    else if (strcmp(m, "PATCH") == 0)
        cmd = EVHTTP_REQ_PATCH;
    else if (strcmp(m, "DELETE") == 0)
        cmd = EVHTTP_REQ_DELETE;
    if (gw_body(c)) {
        char *txt = cJSON_PrintUnformatted(gw_body(c));
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(ur), txt, strlen(txt));
        cJSON_free(txt);
    }
    gw_defer(c);
    if (evhttp_make_request(conn, ur, cmd, p->path) != 0) {
        /* evhttp freed ur; the connection is ours to drop */
        evhttp_connection_free(conn);
        free(p);
        gw_internal(c, "cannot send upstream request");
    }
}

/* The Redis cache answered: a hit goes out as is, a miss goes upstream. */
static void l2_done(gw_ctx *c, const char *json, size_t len, int closing, void *ud)
{
    proxy *p = ud;
    if (closing) {
        free(p);
        gw_fail(c, 503, "shutting_down", "server is shutting down", NULL);
    } else if (json) {
        free(p);
        gw_header(c, "X-Cache", "hit");
        gw_ok_raw(c, 200, json, len);
    } else {
        proxy_send(p);
    }
}

void h_proxy(gw_ctx *c)
{
    http_request *req = gw_req(c);
    const gw_route *rt = NULL;
    for (size_t i = 0; i < gw_nroutes; i++)
        if (strcmp(gw_routes[i].pattern, http_route_pattern(req)) == 0 &&
            strcmp(gw_routes[i].method, http_method(req)) == 0)
            rt = &gw_routes[i];
    if (!rt && strcmp(http_method(req), "HEAD") == 0)
        for (size_t i = 0; i < gw_nroutes; i++)
            if (strcmp(gw_routes[i].pattern, http_route_pattern(req)) == 0 &&
                strcmp(gw_routes[i].method, "GET") == 0)
                rt = &gw_routes[i];
    int si = rt ? service_index(rt->service) : -1;
    const char *base = si >= 0 ? gw_cfg(c)->internal_url[si] : NULL;
    if (!base || !*base) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "service", rt ? rt->service : "");
        gw_fail(c, 503, "service_unavailable", "the service is not deployed", d);
        return;
    }
    struct evhttp_uri *u = evhttp_uri_parse(base);
    const char *uhost = u ? evhttp_uri_get_host(u) : NULL;
    int port = u ? evhttp_uri_get_port(u) : -1;
    char host[256];
    if (!uhost || strlen(uhost) >= sizeof host) {
        if (u)
            evhttp_uri_free(u);
        gw_internal(c, "bad internal url");
        return;
    }
    util_strlcpy(host, uhost, sizeof host);
    /* upstream path: the route's template with :id replaced (re-encoded), plus the query */
    char path[2048];
    size_t o = 0;
    for (const char *s = rt->upstream; *s && o + 1 < sizeof path;) {
        if (*s == ':') {
            const char *e = s + 1;
            while (*e && *e != '/')
                e++;
            char name[32];
            size_t nl = (size_t)(e - s - 1) < sizeof name - 1 ? (size_t)(e - s - 1) : 0;
            memcpy(name, s + 1, nl);
            name[nl] = '\0';
            const char *v = http_param(req, name);
            char *enc = v ? evhttp_uriencode(v, -1, 0) : NULL;
            if (enc) {
                size_t el = strlen(enc);
                if (o + el < sizeof path) {
                    memcpy(path + o, enc, el);
                    o += el;
                }
                free(enc);
            }
            s = e;
        } else {
            path[o++] = *s++;
        }
    }
    path[o] = '\0';
    /* the original query string goes through verbatim: the service validates its values */
    char full[4200];
    const char *qs = http_query_string(req);
    snprintf(full, sizeof full, "%s%s%s", path, qs ? "?" : "", qs ? qs : "");
    /* hot reads whose answer is the same for every caller: at most one upstream call per
     * loop per TTL, however many clients poll, and Redis shares an answer between loops
     * and replicas */
    int cacheable = (rt->flags & GW_CACHE) && strcmp(http_method(req), "GET") == 0;
    if (cacheable) {
        size_t hit_len = 0;
        const char *hit = gw_cache_get(c, full, &hit_len);
        if (hit) {
            evhttp_uri_free(u);
            gw_header(c, "X-Cache", "hit");
            gw_ok_raw(c, 200, hit, hit_len);
            return;
        }
    }
    proxy *p = util_calloc(1, sizeof *p);
    p->c = c;
    util_strlcpy(p->service, rt->service, sizeof p->service);
    util_strlcpy(p->host, host, sizeof p->host);
    p->port = port > 0 ? port : 80;
    util_strlcpy(p->path, full, sizeof p->path);
    evhttp_uri_free(u);
    if (cacheable) {
        util_strlcpy(p->cache_key, full, sizeof p->cache_key);
        if (gw_cache_l2_get(c, full, l2_done, p) == 0)
            return;
    }
    proxy_send(p);
}
