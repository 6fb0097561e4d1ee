/* gw: public server, loops and middleware (see gw.h). */
#include "gw.h"

#include "audit.h"
#include "crypto.h"
#include "hex.h"
#include "jsonschema.h"
#include "jwt.h"
#include "log.h"
#include "rconn.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

const char *const gw_service_names[GW_NSERVICES] = {"listener", "approval", "rebalance", "risk",
                                                    "notifier"};

typedef struct binding {
    gw_loop *loop;
    const gw_route *rt;
    jsonschema *schema; /* borrowed from gw */
} binding;

#define CACHE_SLOTS 16

/* The gate's async Redis link: a reply later than this fails the waiting requests open
 * (as the synchronous connection's command timeout did) and drops the link. */
#define GATE_TIMEOUT_MS 500
#define GATE_WATCH_MS   100
#define REVOKED_PREFIX  "paimon:api:revoked:"
#define JWT_LEEWAY_S    5  /* clock skew allowed on exp / nbf */
#define TOKEN_SLOTS     64 /* verified access tokens remembered per loop */

/* A token whose signature and claims this loop has already checked: those cannot
 * change, so later requests with it only re-check expiry (revocation is still asked
 * of Redis on every request, so logout takes effect at once). Saves the HMAC, two
 * base64 decodes and two JSON parses per request. */
typedef struct token_slot {
    char *tok; /* owned copy */
    size_t len;
    gw_principal p;
} token_slot;

typedef struct cache_slot {
    char key[512];
    char *json; /* the answer's data, encoded */
    size_t len;
    int64_t expires_ms;       /* monotonic */
    int64_t refresh_until_ms; /* a caller is fetching a fresh answer until then */
} cache_slot;

struct gw_loop {
    gw *g;
    cache_slot cache[CACHE_SLOTS];
    int index;
    struct event_base *base;
    int own_base;
    http_server *http;
    redisContext *redis;
    int64_t redis_retry_ms;
    /* the middleware's checks go over this link, pipelined across the loop's requests */
    redisAsyncContext *ac;
    int64_t ac_retry_ms;
    int ac_inflight;
    int64_t ac_progress_ms; /* last reply, or when the link went from idle to busy */
    struct event *ac_watch;
    int closing;
    gw_ctx *running; /* the context whose handler is on the stack, until it replies */
    token_slot tokens[TOKEN_SLOTS];
    binding *bindings;
    pthread_t thread;
    int started;
};

struct gw {
    const gw_config *cfg;
    db_pool *db;
    gw_loop *loops;
    int nloops;
    int port;
    char *openapi_json;
    jsonschema **schemas; /* per route, NULL when the route takes no body schema */
};

struct gw_ctx {
    gw_loop *loop;
    const gw_route *rt;
    const binding *b;
    http_request *req;
    char ip[64];
    char actor[128];
    char user_id[64];
    char wallet[43];
    char jti[40];
    int64_t exp;
    rbac_role role;
    int via_key;
    int mutating;
    int handler_deferred;
    cJSON *body;
    char body_sha[CRYPTO_SHA256_HEXLEN];
    /* the Redis gate in flight (see gate_send) */
    int stage; /* 0: IP limit [+ revocation + principal limit], 1: principal limit only */
    int admin_ok;
    int auth_kind;
    int jwt_ok;
    int gate_eval;
    gw_principal pr;
    rl_gate_req rq;
    rl_gate_cmd cmd;
    char ip_key[96];
    char rev_key[72];
    char p_key[96];
};

enum { AUTH_NONE, AUTH_JWT, AUTH_KEY, AUTH_BAD };

/* ---------- accessors ---------- */

gw *gw_of(gw_ctx *c)
{
    return c->loop->g;
}
const gw_config *gw_cfg(gw_ctx *c)
{
    return c->loop->g->cfg;
}
db_pool *gw_db(gw_ctx *c)
{
    return c->loop->g->db;
}
struct event_base *gw_base(gw_ctx *c)
{
    return c->loop->base;
}
http_request *gw_req(gw_ctx *c)
{
    return c->req;
}
const cJSON *gw_body(gw_ctx *c)
{
    return c->body;
}
const char *gw_ip(gw_ctx *c)
{
    return c->ip;
}
const char *gw_user_id(gw_ctx *c)
{
    return c->user_id;
}
rbac_role gw_role(gw_ctx *c)
{
    return c->role;
}
const char *gw_wallet(gw_ctx *c)
{
    return c->wallet;
}
const char *gw_jti(gw_ctx *c)
{
    return c->jti;
}
int64_t gw_token_exp(gw_ctx *c)
{
    return c->exp;
}
int gw_via_api_key(gw_ctx *c)
{
    return c->via_key;
}
const char *gw_openapi_json(gw_ctx *c)
{
    return c->loop->g->openapi_json;
}
int gw_port(const gw *g)
{
    return g->port;
}

void gw_set_actor(gw_ctx *c, const char *actor)
{
    util_strlcpy(c->actor, actor ? actor : "", sizeof c->actor);
}

redisContext *gw_redis(gw_ctx *c, char *err, size_t errlen)
{
    gw_loop *l = c->loop;
    if (l->redis && l->redis->err) {
        redisFree(l->redis);
        l->redis = NULL;
    }
    if (!l->redis) {
        /* a dead Redis must not cost every request a connect timeout */
        if (util_mono_ms() < l->redis_retry_ms) {
            util_err(err, errlen, "redis unavailable");
            return NULL;
        }
        l->redis = rconn_connect(l->g->cfg->redis_url, 500, err, errlen);
        if (!l->redis)
            l->redis_retry_ms = util_mono_ms() + 1000;
    }
    return l->redis;
}

/* ---------- hot-read cache ---------- */

const char *gw_cache_get(gw_ctx *c, const char *key, size_t *len)
{
    int64_t now = util_mono_ms();
    int64_t ttl = c->loop->g->cfg->cache_ttl_ms;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        cache_slot *s = &c->loop->cache[i];
        if (!s->json || strcmp(s->key, key) != 0)
            continue;
        *len = s->len;
        if (s->expires_ms > now)
            return s->json;
        /* Expired: the first caller refreshes it; the ones arriving while that fetch is
         * in flight get the previous answer instead of all going upstream at once (at
         * thousands of requests a second, that stampede every TTL was the gateway's
         * p99). Never past one more TTL, so an answer is at most 2 x TTL old. */
        if (now < s->expires_ms + ttl && now < s->refresh_until_ms)
            return s->json;
        if (now < s->expires_ms + ttl)
            s->refresh_until_ms = now + ttl;
        return NULL;
    }
    return NULL;
}

/* Takes json (malloc'd, owned) into this loop's slot for key, fresh until
 * expires_ms (monotonic). */
static void cache_store(gw_loop *l, const char *key, char *json, size_t len, int64_t expires_ms)
{
    /* the same key, else a free or stale slot, else the one expiring first */
    cache_slot *pick = NULL;
    int64_t now = util_mono_ms();
    for (int i = 0; i < CACHE_SLOTS && !pick; i++)
        if (l->cache[i].json && strcmp(l->cache[i].key, key) == 0)
            pick = &l->cache[i];
    for (int i = 0; i < CACHE_SLOTS && !pick; i++)
        if (!l->cache[i].json || l->cache[i].expires_ms <= now)
            pick = &l->cache[i];
    if (!pick) {
        pick = &l->cache[0];
        for (int i = 1; i < CACHE_SLOTS; i++)
            if (l->cache[i].expires_ms < pick->expires_ms)
                pick = &l->cache[i];
    }
    free(pick->json);
    pick->json = json;
    pick->len = len;
    util_strlcpy(pick->key, key, sizeof pick->key);
    pick->expires_ms = expires_ms;
    pick->refresh_until_ms = 0;
}

static void l2_put(gw_loop *l, const char *key, const char *json, size_t len);

void gw_cache_put(gw_ctx *c, const char *key, const cJSON *data)
{
    int64_t ttl = c->loop->g->cfg->cache_ttl_ms;
    if (ttl <= 0 || !data || strlen(key) >= sizeof c->loop->cache[0].key)
        return;
    char *enc = cJSON_PrintUnformatted(data);
    if (!enc)
        return;
    size_t len = strlen(enc);
    char *json = util_malloc(len + 1);
    memcpy(json, enc, len + 1);
    cJSON_free(enc);
    l2_put(c->loop, key, json, len);
    cache_store(c->loop, key, json, len, util_mono_ms() + ttl);
}

/* ---------- replies ---------- */

static void ctx_free(gw_ctx *c)
{
    if (c->loop->running == c)
        c->loop->running = NULL;
    cJSON_Delete(c->body);
    free(c);
}

/* Runs before the reply goes out: once a deferred request is answered, http.c frees it,
 * and the audit row needs its method, path and id. */
static void audit(gw_ctx *c, int status)
{
    /* A flood of 429s would bury real entries, and is visible in metrics anyway. */
    if (c->mutating && status != 429) {
        audit_entry e = {
            .actor = c->actor[0] ? c->actor : "anonymous",
            .role = rbac_role_name(c->role),
            .method = http_method(c->req),
            .route = c->rt->pattern,
            .target = http_path(c->req),
            .status = status,
            .outcome = audit_outcome(status),
            .request_id = http_request_id(c->req),
            .ip = c->ip,
            .body_sha256 = c->body_sha,
        };
        char err[UTIL_ERRLEN];
        if (audit_append(c->loop->g->db, &e, err, sizeof err) != 0)
            log_error_t(http_request_id(c->req), "audit append failed", "route", c->rt->pattern,
                        "error", err);
    }
}

void gw_header(gw_ctx *c, const char *name, const char *value)
{
    http_set_header(c->req, name, value);
}

void gw_defer(gw_ctx *c)
{
    c->handler_deferred = 1;
    http_defer(c->req);
}

void gw_ok(gw_ctx *c, int status, cJSON *data)
{
    audit(c, status);
    http_reply_ok(c->req, status, data);
    ctx_free(c);
}

void gw_ok_raw(gw_ctx *c, int status, const char *data_json, size_t len)
{
    audit(c, status);
    http_reply_ok_raw(c->req, status, data_json, len);
    ctx_free(c);
}

void gw_fail(gw_ctx *c, int status, const char *code, const char *message, cJSON *details)
{
    audit(c, status);
    http_reply_error(c->req, status, code, message, details);
    ctx_free(c);
}

void gw_reply_raw(gw_ctx *c, int status, const char *content_type, const char *body, size_t len)
{
    (void)len;
    audit(c, status);
    http_reply_text(c->req, status, content_type, body);
    ctx_free(c);
}

void gw_internal(gw_ctx *c, const char *why)
{
    log_error_t(http_request_id(c->req), "internal error", "route", c->rt->pattern, "error",
                why ? why : "");
    gw_fail(c, 500, "internal_error", "internal error", NULL);
}

/* ---------- helpers ---------- */

static int parse_cidr(const char *s, int *fam, uint8_t net[16], int *bits)
{
    char buf[64];
    util_strlcpy(buf, s, sizeof buf);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, buf, net) == 1) {
        *fam = AF_INET;
        *bits = 32;
    } else if (inet_pton(AF_INET6, buf, net) == 1) {
        *fam = AF_INET6;
        *bits = 128;
    } else {
        return -1;
    }
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (*end || b < 0 || b > *bits)
            return -1;
        *bits = (int)b;
    }
    return 0;
}

int gw_ip_allowed(const cfg_list *list, const char *ip)
{
    if (!list || list->n == 0)
        return 1;
    uint8_t a[16];
    int fam;
    if (inet_pton(AF_INET, ip, a) == 1)
        fam = AF_INET;
    else if (inet_pton(AF_INET6, ip, a) == 1)
        fam = AF_INET6;
    else
        return 0;
    for (size_t i = 0; i < list->n; i++) {
        uint8_t net[16];
        int nf, bits;
        if (parse_cidr(list->items[i], &nf, net, &bits) != 0 || nf != fam)
            continue;
        int full = bits / 8, rest = bits % 8;
        if (memcmp(a, net, (size_t)full) != 0)
            continue;
        if (rest && ((a[full] ^ net[full]) & (uint8_t)(0xff << (8 - rest))))
            continue;
        return 1;
    }
    return 0;
}

cJSON *gw_schema_details(const char *errors)
{
    cJSON *arr = cJSON_CreateArray();
    const char *p = errors;
    while (p && *p) {
        const char *semi = strstr(p, "; ");
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        char item[512];
        if (n >= sizeof item)
            n = sizeof item - 1;
        memcpy(item, p, n);
        item[n] = '\0';
        char *colon = strstr(item, ": ");
        cJSON *o = cJSON_CreateObject();
        if (colon) {
            *colon = '\0';
            cJSON_AddStringToObject(o, "field", strcmp(item, "(root)") == 0 ? "" : item);
            cJSON_AddStringToObject(o, "issue", colon + 2);
        } else {
            cJSON_AddStringToObject(o, "field", "");
            cJSON_AddStringToObject(o, "issue", item);
        }
        cJSON_AddItemToArray(arr, o);
        p = semi ? semi + 2 : NULL;
    }
    return arr;
}

int gw_query_int(gw_ctx *c, const char *name, int64_t def, int64_t min, int64_t max, int64_t *out)
{
    const char *v = http_query(c->req, name);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!*v || strlen(v) > 19)
        return -1;
    for (const char *q = v; *q; q++)
        if (!isdigit((unsigned char)*q) && !(q == v && *q == '-'))
            return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

static void client_ip(gw_ctx *c)
{
    const char *peer = http_peer_addr(c->req);
    util_strlcpy(c->ip, peer, sizeof c->ip);
    if (!c->loop->g->cfg->trust_proxy)
        return;
    /* Behind a trusted proxy, the last X-Forwarded-For hop is the one it saw. */
    const char *xff = http_header(c->req, "X-Forwarded-For");
    if (!xff)
        return;
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ')
        last++;
    char buf[64];
    util_strlcpy(buf, last, sizeof buf);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == ' ')
        buf[--n] = '\0';
    uint8_t tmp[16];
    if (inet_pton(AF_INET, buf, tmp) == 1 || inet_pton(AF_INET6, buf, tmp) == 1)
        util_strlcpy(c->ip, buf, sizeof c->ip);
}

static void rate_headers(gw_ctx *c, const rl_policy *p, const rl_result *r)
{
    char v[64];
    snprintf(v, sizeof v, "%lld", (long long)p->burst);
    gw_header(c, "RateLimit-Limit", v);
    snprintf(v, sizeof v, "%lld", (long long)r->remaining);
    gw_header(c, "RateLimit-Remaining", v);
    snprintf(v, sizeof v, "%lld", (long long)((r->reset_ms + 999) / 1000));
    gw_header(c, "RateLimit-Reset", v);
    snprintf(v, sizeof v, "%lld;w=%lld;burst=%lld", (long long)p->limit,
             (long long)(p->period_ms / 1000), (long long)p->burst);
    gw_header(c, "RateLimit-Policy", v);
}

/* 0 allowed (headers set when `headers`), 1 replied 429. */
static int rate_check(gw_ctx *c, const rl_policy *p, const rl_result *r, int headers)
{
    if (headers || !r->allowed)
        rate_headers(c, p, r);
    if (r->allowed)
        return 0;
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)((r->retry_after_ms + 999) / 1000));
    gw_header(c, "Retry-After", v);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "retryAfterSeconds", (double)((r->retry_after_ms + 999) / 1000));
    gw_fail(c, 429, "rate_limited", "too many requests", d);
    return 1;
}

/* ---------- authentication ---------- */

int gw_access_verify(const gw_config *cfg, redisContext *redis, const char *token,
                     gw_principal *out)
{
    cJSON *claims = NULL;
    char err[UTIL_ERRLEN];
    memset(out, 0, sizeof *out);
    if (jwt_verify(token, cfg->jwt_key, cfg->jwt_key_len, util_now_ms() / 1000, JWT_LEEWAY_S,
                   &claims, err, sizeof err) != 0)
        return -1;
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(claims, "typ");
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(claims, "sub");
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(claims, "role");
    const cJSON *jti = cJSON_GetObjectItemCaseSensitive(claims, "jti");
    const cJSON *wal = cJSON_GetObjectItemCaseSensitive(claims, "wallet");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    int rc = -1;
    if (!cJSON_IsString(typ) || strcmp(typ->valuestring, "access") != 0 || !cJSON_IsString(iss) ||
        strcmp(iss->valuestring, cfg->jwt_issuer) != 0 || !cJSON_IsString(sub) ||
        strlen(sub->valuestring) >= sizeof out->user_id || !cJSON_IsString(role) ||
        rbac_role_parse(role->valuestring) < 0 || !cJSON_IsString(jti) ||
        strlen(jti->valuestring) >= sizeof out->jti ||
        (wal && (!cJSON_IsString(wal) || strlen(wal->valuestring) >= sizeof out->wallet)))
        goto out;
    util_strlcpy(out->user_id, sub->valuestring, sizeof out->user_id);
    util_strlcpy(out->jti, jti->valuestring, sizeof out->jti);
    if (wal)
        util_strlcpy(out->wallet, wal->valuestring, sizeof out->wallet);
    out->role = (rbac_role)rbac_role_parse(role->valuestring);
    out->exp = (int64_t)exp->valuedouble;
    /* logout puts the token's id on a deny list until it would have expired anyway */
    if (redis) {
        redisReply *r = redisCommand(redis, "EXISTS " REVOKED_PREFIX "%s", out->jti);
        int revoked = r && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
        if (r)
            freeReplyObject(r);
        if (revoked)
            goto out;
    }
    rc = 0;
out:
    cJSON_Delete(claims);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* Keys look like pk_<16 hex prefix>_<secret>; only SHA-256(key) is stored. */
static int auth_api_key(gw_ctx *c, const char *key)
{
    size_t n = strnlen(key, 200);
    if (n < 24 || n >= 200 || strncmp(key, "pk_", 3) != 0 || key[19] != '_')
        return -1;
    char prefix[20];
    memcpy(prefix, key, 19);
    prefix[19] = '\0';
    uint8_t d[CRYPTO_SHA256_LEN];
    char hash[CRYPTO_SHA256_HEXLEN];
    char err[UTIL_ERRLEN];
    if (crypto_sha256(key, n, d, err, sizeof err) != 0)
        return -1;
    hex_encode(d, sizeof d, 0, hash, sizeof hash);
    db_conn *dc = db_acquire(c->loop->g->db, 2000, err, sizeof err);
    if (!dc)
        return -2;
    const char *p[] = {prefix};
    PGresult *r = db_query_prepared(
        dc, "gw_key",
        "SELECT k.id, k.key_hash, k.role, k.user_id, u.role, u.disabled FROM api.api_keys k "
        "JOIN api.users u ON u.id = k.user_id WHERE k.prefix = $1 AND k.revoked_at IS NULL AND "
        "(k.expires_at IS NULL OR k.expires_at > now())",
        1, p, err, sizeof err);
    int rc = -1;
    if (!r) {
        rc = -2;
    } else if (PQntuples(r) == 1 && strlen(PQgetvalue(r, 0, 1)) == 64 &&
               crypto_ct_equal(PQgetvalue(r, 0, 1), hash, 64) &&
               strcmp(PQgetvalue(r, 0, 5), "f") == 0) {
        int kr = rbac_role_parse(PQgetvalue(r, 0, 2)), ur = rbac_role_parse(PQgetvalue(r, 0, 4));
        /* a key never outranks its owner, even after the owner was demoted */
        c->role = (rbac_role)(kr < ur ? kr : ur);
        util_strlcpy(c->user_id, PQgetvalue(r, 0, 3), sizeof c->user_id);
        c->via_key = 1;
        const char *id[] = {PQgetvalue(r, 0, 0)};
        PGresult *u = db_query_prepared(dc, "gw_key_used",
                                        "UPDATE api.api_keys SET last_used_at = now() WHERE id = "
                                        "$1 AND (last_used_at IS NULL OR last_used_at < now() - "
                                        "interval '1 minute')",
                                        1, id, err, sizeof err);
        if (u)
            PQclear(u);
        snprintf(c->actor, sizeof c->actor, "key:%s", prefix);
        rc = c->role >= RBAC_VIEWER ? 0 : -1;
    }
    if (r)
        PQclear(r);
    db_release(c->loop->g->db, dc);
    return rc;
}

/* gw_access_verify without the revocation check, through the loop's token slots. */
static int loop_token_verify(gw_loop *l, const char *tok, gw_principal *out)
{
    size_t n = strnlen(tok, JWT_MAX_LEN + 1);
    if (n > JWT_MAX_LEN)
        return -1;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: spreads tokens over slots, no more */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)tok[i]) * 1099511628211ULL;
    token_slot *s = &l->tokens[h % TOKEN_SLOTS];
    if (s->tok && s->len == n && memcmp(s->tok, tok, n) == 0) {
        if (util_now_ms() / 1000 < s->p.exp + JWT_LEEWAY_S) {
            *out = s->p;
            return 0;
        }
        free(s->tok);
        s->tok = NULL;
        memset(out, 0, sizeof *out);
        return -1;
    }
    if (gw_access_verify(l->g->cfg, NULL, tok, out) != 0)
        return -1;
    free(s->tok);
    s->tok = util_malloc(n);
    memcpy(s->tok, tok, n);
    s->len = n;
    s->p = *out;
    return 0;
}

/* Always replies (401, or 503 when the key store is down). */
static void auth_fail(gw_ctx *c, int rc)
{
    c->role = RBAC_NONE;
    c->user_id[0] = c->wallet[0] = c->jti[0] = '\0';
    if (rc == -2) {
        gw_fail(c, 503, "service_unavailable", "authentication backend unavailable", NULL);
        return;
    }
    gw_header(c, "WWW-Authenticate", "Bearer");
    gw_fail(c, 401, "unauthorized", "missing or invalid credentials", NULL);
}

char *gw_access_token_new(gw *g, const char *user_id, rbac_role role, const char *wallet, char *err,
                          size_t errlen)
{
    uint8_t rnd[16];
    char jti[33];
    if (util_random(rnd, sizeof rnd) != 0) {
        util_err(err, errlen, "no randomness");
        return NULL;
    }
    hex_encode(rnd, sizeof rnd, 0, jti, sizeof jti);
    int64_t now = util_now_ms() / 1000;
    cJSON *cl = cJSON_CreateObject();
    cJSON_AddStringToObject(cl, "iss", g->cfg->jwt_issuer);
    cJSON_AddStringToObject(cl, "sub", user_id);
    cJSON_AddStringToObject(cl, "role", rbac_role_name(role));
    cJSON_AddStringToObject(cl, "typ", "access");
    cJSON_AddStringToObject(cl, "jti", jti);
    if (wallet && *wallet)
        cJSON_AddStringToObject(cl, "wallet", wallet);
    cJSON_AddNumberToObject(cl, "iat", (double)now);
    cJSON_AddNumberToObject(cl, "exp", (double)(now + g->cfg->access_ttl_ms / 1000));
    char *t = jwt_sign_new(cl, g->cfg->jwt_key, g->cfg->jwt_key_len, err, errlen);
    cJSON_Delete(cl);
    return t;
}

/* ---------- dispatch ---------- */

static void cors(gw_ctx *c)
{
    const char *origin = http_header(c->req, "Origin");
    const cfg_list *l = &c->loop->g->cfg->cors_origins;
    if (!origin)
        return;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i], "*") == 0 || strcmp(l->items[i], origin) == 0) {
            gw_header(c, "Access-Control-Allow-Origin", origin);
            gw_header(c, "Vary", "Origin");
            gw_header(c, "Access-Control-Expose-Headers",
                      "X-Request-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, "
                      "RateLimit-Reset, RateLimit-Policy");
            return;
        }
    }
}

static void on_options(http_request *req, void *ud)
{
    binding *b = ud;
    gw_ctx *c = util_calloc(1, sizeof *c);
    c->loop = b->loop;
    c->rt = b->rt;
    c->req = req;
    cors(c);
    gw_header(c, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
    gw_header(c, "Access-Control-Allow-Headers",
              "Authorization, Content-Type, X-API-Key, X-Request-Id");
    gw_header(c, "Access-Control-Max-Age", "600");
    http_reply_text(req, 204, NULL, "");
    ctx_free(c);
}

/* ---------- the Redis gate: one pipelined script call per request ---------- */

static void ac_arm_watch(gw_loop *l)
{
    struct timeval tv = {0, GATE_WATCH_MS * 1000};
    if (l->ac_watch)
        event_add(l->ac_watch, &tv);
}

static void ac_drop(gw_loop *l, int64_t retry_ms)
{
    redisAsyncContext *ac = l->ac;
    /* cleared first: the callbacks redisAsyncFree runs (NULL replies) must not queue
     * new commands on the dying link */
    l->ac = NULL;
    l->ac_retry_ms = util_mono_ms() + retry_ms;
    if (ac)
        redisAsyncFree(ac);
}

static void ac_watch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_loop *l = arg;
    if (!l->ac)
        return;
    if (l->ac_inflight > 0 && util_mono_ms() - l->ac_progress_ms > GATE_TIMEOUT_MS) {
        log_warn("api: redis gate timed out; failing open", "#inflight", LOG_I64(l->ac_inflight));
        ac_drop(l, 1000);
        return;
    }
    ac_arm_watch(l);
}

static void ac_connect_cb(const redisAsyncContext *ac, int status)
{
    gw_loop *l = ac->data;
    if (status != REDIS_OK) {
        log_warn("api: redis gate connect failed", "error", ac->errstr);
        if (l->ac == ac) { /* hiredis frees it after this callback */
            l->ac = NULL;
            l->ac_retry_ms = util_mono_ms() + 1000;
        }
    }
}

static void ac_disconnect_cb(const redisAsyncContext *ac, int status)
{
    (void)status;
    gw_loop *l = ac->data;
    if (l->ac == ac) {
        l->ac = NULL;
        l->ac_retry_ms = util_mono_ms() + 1000;
    }
}

/* The loop's async link, connecting on demand; NULL while Redis is unreachable (then
 * at most one attempt a second, so an outage costs requests nothing). */
static redisAsyncContext *gate_link(gw_loop *l)
{
    if (l->ac || l->closing)
        return l->ac;
    if (util_mono_ms() < l->ac_retry_ms)
        return NULL;
    l->ac_retry_ms = util_mono_ms() + 1000;
    rconn_url u;
    char err[UTIL_ERRLEN];
    if (rconn_parse_url(l->g->cfg->redis_url, &u, err, sizeof err) != 0)
        return NULL;
    redisAsyncContext *ac = redisAsyncConnect(u.host, u.port);
    if (!ac)
        return NULL;
    if (ac->err || redisLibeventAttach(ac, l->base) != REDIS_OK) {
        log_warn("api: redis gate connect failed", "error", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = l;
    redisAsyncSetConnectCallback(ac, ac_connect_cb);
    redisAsyncSetDisconnectCallback(ac, ac_disconnect_cb);
    /* queued ahead of every gate call on this link */
    if (u.password[0])
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", u.password);
    if (u.db)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", u.db);
    l->ac = ac;
    l->ac_inflight = 0;
    ac_arm_watch(l);
    return ac;
}

static void gate_done(gw_ctx *c, const redisReply *r);

static void gate_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    gw_ctx *c = priv;
    gw_loop *l = c->loop;
    redisReply *r = reply;
    l->ac_inflight--;
    l->ac_progress_ms = util_mono_ms();
    if (!r && l->closing) {
        gw_fail(c, 503, "shutting_down", "server is shutting down", NULL);
        return;
    }
    if (!c->gate_eval && rl_gate_noscript(r) && l->ac == ac) {
        /* a fresh or flushed script cache: EVAL loads it for every later EVALSHA */
        c->gate_eval = 1;
        rl_gate_cmd_build(&c->cmd, &c->rq, 1);
        if (redisAsyncCommandArgv(ac, gate_cb, c, c->cmd.argc, c->cmd.argv, c->cmd.argvlen) ==
            REDIS_OK) {
            l->ac_inflight++;
            return;
        }
        r = NULL;
    }
    gate_done(c, r);
}

/* Sends c->rq; the reply continues the request in gate_done. Without a link the
 * checks fail open at once: losing the gateway to a Redis outage is worse than a
 * short unlimited window (and a token revoked during the outage stays usable until
 * Redis is back or it expires, as before). */
static void gate_send(gw_ctx *c)
{
    gw_loop *l = c->loop;
    redisAsyncContext *ac = gate_link(l);
    c->gate_eval = 0;
    if (ac) {
        rl_gate_cmd_build(&c->cmd, &c->rq, 0);
        if (redisAsyncCommandArgv(ac, gate_cb, c, c->cmd.argc, c->cmd.argv, c->cmd.argvlen) ==
            REDIS_OK) {
            if (l->ac_inflight++ == 0)
                l->ac_progress_ms = util_mono_ms();
            http_defer(c->req);
            return;
        }
    }
    gate_done(c, NULL);
}

/* ---------- hot-read cache, Redis level ---------- */

/* Behind each loop's cache sits one shared by every loop and replica: an entry is
 * "<produced unix ms>:<data json>" under L2_PREFIX + key, expiring after one TTL. A
 * loop that misses asks Redis before the service, so N loops x M replicas cost the
 * service about one call per TTL instead of N x M. The production time travels with
 * the entry, so a copy taken from Redis expires when the original does and the
 * 2 x TTL bound on an answer's age still holds. */
#define L2_PREFIX "paimon:api:cache:"

static void l2_put(gw_loop *l, const char *key, const char *json, size_t len)
{
    redisAsyncContext *ac = gate_link(l);
    if (!ac)
        return;
    char head[32];
    int hn = snprintf(head, sizeof head, "%lld:", (long long)util_now_ms());
    size_t n = (size_t)hn + len;
    char *val = util_malloc(n);
    memcpy(val, head, (size_t)hn);
    memcpy(val + hn, json, len);
    char px[24];
    snprintf(px, sizeof px, "%lld", (long long)l->g->cfg->cache_ttl_ms);
    size_t kl = strlen(L2_PREFIX) + strlen(key);
    char *k = util_malloc(kl + 1);
    snprintf(k, kl + 1, "%s%s", L2_PREFIX, key);
    const char *argv[] = {"SET", k, val, "PX", px};
    size_t argl[] = {3, kl, n, 2, strlen(px)};
    /* best effort: a lost write only costs another loop one upstream call */
    redisAsyncCommandArgv(ac, NULL, NULL, 5, argv, argl);
    free(k);
    free(val);
}

typedef struct l2_req {
    gw_ctx *c;
    gw_l2_cb cb;
    void *ud;
    char key[512];
} l2_req;

/* An entry as l2_put wrote it, not older than ttl: its age and the data's bounds. */
static int l2_parse(const redisReply *r, int64_t ttl, int64_t *age, const char **json, size_t *len)
{
    if (!r || r->type != REDIS_REPLY_STRING || r->len < 3)
        return -1;
    const char *colon = memchr(r->str, ':', r->len);
    if (!colon || colon == r->str || colon - r->str > 15)
        return -1;
    int64_t produced = 0;
    for (const char *p = r->str; p < colon; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        produced = produced * 10 + (*p - '0');
    }
    *age = util_now_ms() - produced;
    if (*age < 0)
        *age = 0; /* another replica's clock runs ahead: count it as fresh */
    if (*age >= ttl)
        return -1;
    *json = colon + 1;
    *len = r->len - (size_t)(colon + 1 - r->str);
    /* Redis is ours, but a corrupt value must not reach a client as our answer */
    cJSON *j = cJSON_ParseWithLength(*json, *len);
    int ok = j != NULL;
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

static void l2_get_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    l2_req *q = priv;
    gw_loop *l = q->c->loop;
    l->ac_inflight--;
    l->ac_progress_ms = util_mono_ms();
    int64_t ttl = l->g->cfg->cache_ttl_ms, age = 0;
    const char *json = NULL;
    size_t len = 0;
    if (!reply && l->closing) {
        q->cb(q->c, NULL, 0, 1, q->ud);
    } else if (l2_parse(reply, ttl, &age, &json, &len) == 0) {
        char *copy = util_malloc(len + 1);
        memcpy(copy, json, len);
        copy[len] = '\0';
        cache_store(l, q->key, copy, len, util_mono_ms() + (ttl - age));
        q->cb(q->c, copy, len, 0, q->ud);
    } else {
        q->cb(q->c, NULL, 0, 0, q->ud);
    }
    free(q);
}

int gw_cache_l2_get(gw_ctx *c, const char *key, gw_l2_cb cb, void *ud)
{
    gw_loop *l = c->loop;
    if (l->g->cfg->cache_ttl_ms <= 0 || strlen(key) >= sizeof((l2_req *)0)->key)
        return -1;
    redisAsyncContext *ac = gate_link(l);
    if (!ac)
        return -1;
    l2_req *q = util_calloc(1, sizeof *q);
    q->c = c;
    q->cb = cb;
    q->ud = ud;
    util_strlcpy(q->key, key, sizeof q->key);
    size_t kl = strlen(L2_PREFIX) + strlen(key);
    char *k = util_malloc(kl + 1);
    snprintf(k, kl + 1, "%s%s", L2_PREFIX, key);
    const char *argv[] = {"GET", k};
    size_t argl[] = {3, kl};
    int rc = redisAsyncCommandArgv(ac, l2_get_cb, q, 2, argv, argl);
    free(k);
    if (rc != REDIS_OK) {
        free(q);
        return -1;
    }
    if (l->ac_inflight++ == 0)
        l->ac_progress_ms = util_mono_ms();
    gw_defer(c);
    return 0;
}

static void proceed(gw_ctx *c)
{
    const char *m = http_method(c->req);
    if (c->rt->need != RBAC_NONE && !rbac_allows(c->role, c->rt->need)) {
        cJSON *det = cJSON_CreateObject();
        cJSON_AddStringToObject(det, "required", rbac_role_name(c->rt->need));
        gw_fail(c, 403, "forbidden", "your role may not use this route", det);
        return;
    }
    int wants_body = c->mutating && !(c->rt->flags & GW_NO_BODY) && strcmp(m, "DELETE") != 0;
    if (wants_body) {
        char err[UTIL_ERRLEN];
        c->body = http_json_body(c->req, err, sizeof err);
        if (!c->body) {
            int st = http_body_error_status(c->req);
            st = st ? st : 400;
            gw_fail(c, st,
                    st == 415   ? "unsupported_media_type"
                    : st == 413 ? "payload_too_large"
                                : "invalid_json",
                    st == 415 ? "body must be application/json" : err, NULL);
            return;
        }
        char verr[2048];
        if (jsonschema_check_instance(c->body, verr, sizeof verr) != 0) {
            gw_fail(c, 400, "validation_failed", "request body is invalid",
                    gw_schema_details(verr));
            return;
        }
        if (c->b->schema &&
            jsonschema_validate_all(c->b->schema, c->body, verr, sizeof verr) != 0) {
            gw_fail(c, 400, "validation_failed", "request body is invalid",
                    gw_schema_details(verr));
            return;
        }
    }
    /* The handler may run from the gate's Redis callback, after http.c's own check for
     * a forgotten reply: keep that guarantee here. */
    gw_loop *l = c->loop;
    l->running = c;
    c->rt->fn(c);
    if (l->running == c) {
        l->running = NULL;
        if (!c->handler_deferred)
            gw_internal(c, "handler returned without a reply");
    }
}

/* The middleware after the gate's reply (r NULL: Redis unavailable, checks skipped). */
static void gate_done(gw_ctx *c, const redisReply *r)
{
    const gw_config *cfg = c->loop->g->cfg;
    rl_gate_res res;
    char err[UTIL_ERRLEN];
    if (rl_gate_parse(&c->rq, r, &res, err, sizeof err) != 0)
        log_warn_t(http_request_id(c->req), "rate limit skipped", "error", err);
    if (c->stage == 1) {
        if (res.principal_checked && rate_check(c, &cfg->rl_principal, &res.principal, 1))
            return;
        proceed(c);
        return;
    }
    if (res.ip_checked && rate_check(c, &cfg->rl_ip, &res.ip, c->rt->need == RBAC_NONE))
        return;
    if (!c->admin_ok) {
        gw_fail(c, 403, "ip_not_allowed", "this route is not available from your address", NULL);
        return;
    }
    if (c->rt->need == RBAC_NONE) {
        proceed(c);
        return;
    }
    if (c->auth_kind == AUTH_JWT) {
        /* logout puts the token's id on a deny list until it would have expired anyway */
        if (!c->jwt_ok || res.revoked) {
            auth_fail(c, -1);
            return;
        }
        util_strlcpy(c->user_id, c->pr.user_id, sizeof c->user_id);
        util_strlcpy(c->jti, c->pr.jti, sizeof c->jti);
        util_strlcpy(c->wallet, c->pr.wallet, sizeof c->wallet);
        c->role = c->pr.role;
        c->exp = c->pr.exp;
        snprintf(c->actor, sizeof c->actor, "user:%s", c->user_id);
        if (res.principal_checked && rate_check(c, &cfg->rl_principal, &res.principal, 1))
            return;
        proceed(c);
        return;
    }
    if (c->auth_kind == AUTH_KEY) {
        int rc = auth_api_key(c, http_header(c->req, "X-API-Key"));
        if (rc != 0) {
            auth_fail(c, rc);
            return;
        }
        /* the principal is known only now: its limit is a second call */
        snprintf(c->p_key, sizeof c->p_key, "paimon:api:rl:p:%s", c->user_id);
        memset(&c->rq, 0, sizeof c->rq);
        c->rq.principal_key = c->p_key;
        c->rq.principal = &cfg->rl_principal;
        c->stage = 1;
        gate_send(c);
        return;
    }
    auth_fail(c, -1);
}

static void on_request(http_request *req, void *ud)
{
    binding *b = ud;
    gw *g = b->loop->g;
    gw_ctx *c = util_calloc(1, sizeof *c);
    c->loop = b->loop;
    c->rt = b->rt;
    c->b = b;
    c->req = req;
    const char *m = http_method(req);
    c->mutating = strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
    client_ip(c);
    if (c->mutating) { /* only the audit row of a mutating route uses it */
        size_t blen = 0;
        const char *body = http_body(req, &blen);
        uint8_t d[CRYPTO_SHA256_LEN];
        if (crypto_sha256(body, blen, d, NULL, 0) == 0)
            hex_encode(d, sizeof d, 0, c->body_sha, sizeof c->body_sha);
    }
    cors(c);

    /* Everything Redis has to say about this request (IP limit, token revoked?,
     * principal limit) in one round trip. The checks that need no Redis (admin IP
     * allow-list, the token's signature and claims) run first so the script knows
     * which steps apply; the replies still come in the documented order. */
    c->admin_ok = !(c->rt->flags & GW_ADMIN_IP) || gw_ip_allowed(&g->cfg->admin_allow, c->ip);
    snprintf(c->ip_key, sizeof c->ip_key, "paimon:api:rl:ip:%s", c->ip);
    c->rq.ip_key = c->ip_key;
    c->rq.ip = &g->cfg->rl_ip;
    if (c->rt->need != RBAC_NONE && c->admin_ok) {
        const char *authz = http_header(req, "Authorization");
        const char *key = http_header(req, "X-API-Key");
        if (authz && strncasecmp(authz, "Bearer ", 7) == 0 && !key) {
            c->auth_kind = AUTH_JWT;
            c->jwt_ok = loop_token_verify(c->loop, authz + 7, &c->pr) == 0;
            if (c->jwt_ok) {
                snprintf(c->rev_key, sizeof c->rev_key, REVOKED_PREFIX "%s", c->pr.jti);
                snprintf(c->p_key, sizeof c->p_key, "paimon:api:rl:p:%s", c->pr.user_id);
                c->rq.revoked_key = c->rev_key;
                c->rq.principal_key = c->p_key;
                c->rq.principal = &g->cfg->rl_principal;
            }
        } else if (key && !authz) {
            c->auth_kind = AUTH_KEY;
        } else {
            c->auth_kind = AUTH_BAD;
        }
    }
    gate_send(c);
}

/* ---------- OpenAPI: request schemas come from the document ---------- */

static void to_openapi_path(const char *pattern, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 2 < len; p++) {
        if (*p == ':' && (p == pattern || p[-1] == '/')) {
            out[o++] = '{';
            while (p[1] && p[1] != '/' && o + 2 < len)
                out[o++] = *++p;
            out[o++] = '}';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        util_err(err, errlen, "cannot open %s", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > 8 * 1024 * 1024) {
        fclose(f);
        util_err(err, errlen, "%s: bad size", path);
        return NULL;
    }
    char *buf = util_malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    return buf;
}

static int load_openapi(gw *g, char *err, size_t errlen)
{
    char *txt = read_file(g->cfg->openapi_path, err, errlen);
    if (!txt)
        return -1;
    /* schemas/openapi.yaml is written in YAML's JSON-compatible flow style, so the C side
     * needs no YAML parser and the linters still read it as YAML. */
    cJSON *doc = cJSON_Parse(txt);
    free(txt);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return util_err(err, errlen, "%s: not JSON-style YAML", g->cfg->openapi_path);
    }
    g->schemas = util_calloc(gw_nroutes, sizeof *g->schemas);
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
    int rc = 0;
    for (size_t i = 0; i < gw_nroutes && rc == 0; i++) {
        char op[256], meth[16];
        to_openapi_path(gw_routes[i].pattern, op, sizeof op);
        size_t k = 0;
        for (; gw_routes[i].method[k] && k + 1 < sizeof meth; k++)
            meth[k] = (char)tolower((unsigned char)gw_routes[i].method[k]);
        meth[k] = '\0';
        const cJSON *o =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(paths, op), meth);
        if (!o) {
            rc = util_err(err, errlen, "openapi: %s %s is not documented", gw_routes[i].method, op);
            break;
        }
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "requestBody"),
                                                 "content"),
                "application/json"),
            "schema");
        if (!s)
            continue;
        char *st = cJSON_PrintUnformatted(s);
        char cerr[UTIL_ERRLEN];
        g->schemas[i] = jsonschema_compile(st, cerr, sizeof cerr);
        cJSON_free(st);
        if (!g->schemas[i])
            rc = util_err(err, errlen, "openapi: %s %s: %s", gw_routes[i].method, op, cerr);
    }
    if (rc == 0) {
        char *js = cJSON_PrintUnformatted(doc);
        g->openapi_json = util_strdup(js ? js : "{}");
        cJSON_free(js);
    }
    cJSON_Delete(doc);
    return rc;
}

/* ---------- loops ---------- */

static int db_check(void *ud, char *err, size_t errlen)
{
    return db_ping(((gw_loop *)ud)->g->db, err, errlen);
}

static int redis_check(void *ud, char *err, size_t errlen)
{
    gw_loop *l = ud;
    gw_ctx tmp = {.loop = l};
    redisContext *rc = gw_redis(&tmp, err, errlen);
    return rc ? rconn_ping(rc, err, errlen) : -1;
}

static int loop_init(gw *g, gw_loop *l, int index, struct event_base *base, char *err,
                     size_t errlen)
{
    l->g = g;
    l->index = index;
    l->base = base;
    if (!l->base) {
        l->base = event_base_new();
        l->own_base = 1;
    }
    if (!l->base)
        return util_err(err, errlen, "event_base_new failed");
    l->ac_watch = event_new(l->base, -1, 0, ac_watch_cb, l);
    if (!l->ac_watch)
        return util_err(err, errlen, "event_new failed");
    l->http = http_server_new_ex(l->base, g->cfg->bind, g->port, HTTP_REUSEPORT, err, errlen);
    if (!l->http)
        return -1;
    if (index == 0)
        g->port = http_server_port(l->http);
    http_server_set_limits(l->http, (size_t)g->cfg->max_body, (size_t)g->cfg->max_headers);
    http_add_check(l->http, "db", db_check, l);
    http_add_check(l->http, "redis", redis_check, l);
    l->bindings = util_calloc(gw_nroutes, sizeof *l->bindings);
    for (size_t i = 0; i < gw_nroutes; i++) {
        l->bindings[i].loop = l;
        l->bindings[i].rt = &gw_routes[i];
        l->bindings[i].schema = g->schemas[i];
        if (http_route(l->http, gw_routes[i].method, gw_routes[i].pattern, on_request,
                       &l->bindings[i]) != 0)
            return util_err(err, errlen, "cannot route %s %s", gw_routes[i].method,
                            gw_routes[i].pattern);
        /* one OPTIONS (CORS preflight) per pattern; duplicates are refused, which is fine */
        int seen = 0;
        for (size_t k = 0; k < i; k++)
            if (strcmp(gw_routes[k].pattern, gw_routes[i].pattern) == 0)
                seen = 1;
        if (!seen)
            http_route(l->http, "OPTIONS", gw_routes[i].pattern, on_options, &l->bindings[i]);
    }
    return 0;
}

gw *gw_new(const gw_config *cfg, db_pool *db, struct event_base *main_base, char *err,
           size_t errlen)
{
    gw *g = util_calloc(1, sizeof *g);
    g->cfg = cfg;
    g->db = db;
    g->port = cfg->port;
    g->nloops = cfg->threads > 0 ? cfg->threads : 1;
    g->loops = util_calloc((size_t)g->nloops, sizeof *g->loops);
    if (load_openapi(g, err, errlen) != 0)
        goto fail;
    for (int i = 0; i < g->nloops; i++)
        if (loop_init(g, &g->loops[i], i, i == 0 ? main_base : NULL, err, errlen) != 0)
            goto fail;
    return g;
fail:
    gw_free(g);
    return NULL;
}

static void *loop_main(void *arg)
{
    gw_loop *l = arg;
    event_base_dispatch(l->base);
    return NULL;
}

int gw_start(gw *g, char *err, size_t errlen)
{
    for (int i = 1; i < g->nloops; i++) {
        if (pthread_create(&g->loops[i].thread, NULL, loop_main, &g->loops[i]) != 0)
            return util_err(err, errlen, "cannot start loop thread");
        g->loops[i].started = 1;
    }
    return 0;
}

void gw_stop(gw *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nloops; i++)
        http_server_drain(g->loops[i].http);
    for (int i = 1; i < g->nloops; i++) {
        if (!g->loops[i].started)
            continue;
        event_base_loopexit(g->loops[i].base, NULL);
        pthread_join(g->loops[i].thread, NULL);
        g->loops[i].started = 0;
    }
}

void gw_free(gw *g)
{
    if (!g)
        return;
    gw_stop(g);
    for (int i = 0; i < g->nloops; i++) {
        gw_loop *l = &g->loops[i];
        /* requests still waiting on the gate get their 503 while http still exists */
        l->closing = 1;
        ac_drop(l, 0);
        if (l->ac_watch)
            event_free(l->ac_watch);
        for (int k = 0; k < TOKEN_SLOTS; k++)
            free(l->tokens[k].tok);
        http_server_free(l->http);
        for (int k = 0; k < CACHE_SLOTS; k++)
            free(l->cache[k].json);
        if (l->redis)
            redisFree(l->redis);
        free(l->bindings);
        if (l->own_base && l->base)
            event_base_free(l->base);
    }
    free(g->loops);
    if (g->schemas)
        for (size_t i = 0; i < gw_nroutes; i++)
            jsonschema_free(g->schemas[i]);
    free(g->schemas);
    free(g->openapi_json);
    free(g);
}
