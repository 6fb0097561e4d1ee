/* gw: the public gateway server — one libevent loop per core sharing the port with
 * SO_REUSEPORT (libcommon http.h does routing, request ids and envelopes on each), and
 * the middleware every route goes through, in this order:
 *   CORS -> per-IP rate limit -> admin IP allow-list -> authentication (Bearer JWT or
 *   X-API-Key) -> per-principal rate limit -> RBAC from the route table -> JSON body
 *   (content type, size, syntax, then the route's JSON Schema from the OpenAPI
 *   document, unknown fields refused) -> handler -> audit (mutating routes).
 *
 * Everything the middleware asks Redis (per-IP limit, whether the access token was
 * revoked by logout, per-principal limit) is one script call (rl.h rl_gate) on the
 * loop's async connection, pipelined with the other requests of the loop; the
 * checks that need no Redis (admin allow-list, token signature and claims, which
 * each loop remembers per token) run before it. So handlers usually run from that
 * Redis reply rather than from http.c's dispatch; nothing changes for them.
 *
 * A handler gets a gw_ctx and must finish it with exactly one gw_ok / gw_fail /
 * gw_reply_raw (possibly later, on the same loop thread, after gw_defer), which
 * appends the audit row when the route mutates, replies, and frees the context. A
 * handler that returns without either gets a 500.
 *
 * Memory: gw_new/gw_free own the loops, servers, Redis connections and compiled
 * schemas; the db pool and config strings are borrowed from main. A gw_ctx is owned by
 * the gateway from dispatch until its reply; its strings are borrowed from it. */
#ifndef PAIMON_API_GW_H
#define PAIMON_API_GW_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "db.h"
#include "http.h"
#include "rbac.h"
#include "rl.h"

typedef struct gw gw;
typedef struct gw_loop gw_loop;
typedef struct gw_ctx gw_ctx;
typedef void (*gw_handler)(gw_ctx *c);

/* Route flags. */
#define GW_ADMIN_IP 1u /* only from the admin IP allow-list */
#define GW_NO_BODY  2u /* a mutating route that takes no body (ignored if sent) */
#define GW_RAW      4u /* static files / documents: no envelope */
#define GW_CACHE    8u /* hot GET proxy reads: 200 answers kept per loop for cache_ttl_ms */

typedef struct gw_route {
    const char *method;
    const char *pattern; /* http.h style, ":id" segments */
    rbac_role need;
    unsigned flags;
    gw_handler fn;
    const char *service;  /* proxy routes: owning service, e.g. "notifier" */
    const char *upstream; /* proxy routes: internal path; ":id" copied from the request */
} gw_route;

/* The one route table (routes.c). */
extern const gw_route gw_routes[];
extern const size_t gw_nroutes;

#define GW_NSERVICES 5
extern const char *const gw_service_names[GW_NSERVICES];

typedef struct gw_config {
    char *bind;
    int port;
    int threads;
    char *redis_url;
    const uint8_t *jwt_key;
    size_t jwt_key_len;
    char *jwt_issuer;
    int64_t access_ttl_ms, refresh_ttl_ms;
    cfg_list cors_origins;
    cfg_list admin_allow; /* CIDRs; empty = everyone */
    int trust_proxy;
    rl_policy rl_ip, rl_principal, rl_login_account, rl_login_ip;
    int64_t max_body, max_headers;
    char *siwe_domain;
    int64_t chain_id;
    const char *vault; /* lowercase 0x-hex; "" = signed pause / resume answer 503 */
    int64_t siwe_nonce_ttl_ms;
    char *internal_url[GW_NSERVICES];
    char *internal_token;
    int64_t upstream_timeout_ms;
    char *openapi_path;
    char *swagger_dir;
    int64_t cache_ttl_ms;
} gw_config;

/* Loads the OpenAPI document, compiles the request schemas, binds every loop. NULL on
 * failure (err filled). */
gw *gw_new(const gw_config *cfg, db_pool *db, struct event_base *main_base, char *err,
           size_t errlen);
/* Starts the loops other than the main one (which the caller turns). */
int gw_start(gw *g, char *err, size_t errlen);
/* Stops accepting, lets every loop finish, joins the threads. */
void gw_stop(gw *g);
void gw_free(gw *g);
int gw_port(const gw *g);

/* ---- for handlers ---- */
gw *gw_of(gw_ctx *c);
const gw_config *gw_cfg(gw_ctx *c);
db_pool *gw_db(gw_ctx *c);
struct event_base *gw_base(gw_ctx *c);
http_request *gw_req(gw_ctx *c);
/* The loop's Redis connection (reconnected on demand), NULL when Redis is down. */
redisContext *gw_redis(gw_ctx *c, char *err, size_t errlen);
const cJSON *gw_body(gw_ctx *c); /* validated body, NULL when the route takes none */
const char *gw_ip(gw_ctx *c);
/* The principal: "" / RBAC_NONE when the route needs no authentication. */
const char *gw_user_id(gw_ctx *c);
rbac_role gw_role(gw_ctx *c);
const char *gw_wallet(gw_ctx *c);
const char *gw_jti(gw_ctx *c);
int64_t gw_token_exp(gw_ctx *c);
int gw_via_api_key(gw_ctx *c);
/* Overrides the audit actor (e.g. the e-mail of a login attempt before it succeeds). */
void gw_set_actor(gw_ctx *c, const char *actor);
const char *gw_openapi_json(gw_ctx *c);

/* Per-loop cache of hot reads (no locks: each loop has its own). get returns the
 * answer's encoded JSON (borrowed, valid until the handler returns; *len set), NULL
 * when absent or stale; put encodes data once, so a hit is a memcpy, never a
 * parse or print. Keys longer than the slot are simply not cached. Once an entry
 * expires, the next get returns NULL (that caller fetches and puts) and, while that
 * fetch is in flight, other gets still return the old entry, for at most one more
 * TTL: no stampede upstream, and no answer older than 2 x cache_ttl_ms. */
const char *gw_cache_get(gw_ctx *c, const char *key, size_t *len);
void gw_cache_put(gw_ctx *c, const char *key, const cJSON *data);
/* The Redis level behind it (shared by every loop and replica; put writes both). On a
 * local miss: 0 when the lookup was sent (the request is deferred and cb runs later on
 * the loop with the encoded data, borrowed until the handler returns, or NULL on a
 * miss or a Redis error; closing set when the loop is shutting down and the request
 * must be failed), -1 when Redis is not reachable (cb never runs: go upstream). */
typedef void (*gw_l2_cb)(gw_ctx *c, const char *json, size_t len, int closing, void *ud);
int gw_cache_l2_get(gw_ctx *c, const char *key, gw_l2_cb cb, void *ud);

void gw_defer(gw_ctx *c);
void gw_ok(gw_ctx *c, int status, cJSON *data);
/* gw_ok with data already encoded as JSON (borrowed). */
void gw_ok_raw(gw_ctx *c, int status, const char *data_json, size_t len);
void gw_fail(gw_ctx *c, int status, const char *code, const char *message, cJSON *details);
void gw_reply_raw(gw_ctx *c, int status, const char *content_type, const char *body, size_t len);
void gw_header(gw_ctx *c, const char *name, const char *value);
/* 500 with a generic message; the reason goes to the log only. */
void gw_internal(gw_ctx *c, const char *why);

/* Who an access token speaks for. */
typedef struct gw_principal {
    char user_id[64];
    char wallet[43];
    char jti[40];
    int64_t exp; /* seconds since the epoch */
    rbac_role role;
} gw_principal;

/* Verifies an access token (HS256 pinned, exp, iss, typ "access", claim shapes) and,
 * when rc is non-NULL, that logout has not revoked it. 0 with *out filled, else -1.
 * Shared by the REST middleware and the WebSocket server so both accept exactly the
 * same tokens. Thread-safe (rc belongs to the caller's thread). */
int gw_access_verify(const gw_config *cfg, redisContext *rc, const char *token, gw_principal *out);

/* Issues an access token for a user. Owned string. */
char *gw_access_token_new(gw *g, const char *user_id, rbac_role role, const char *wallet, char *err,
                          size_t errlen);

/* Utilities shared by the handler files. */
/* 1 when ip (text) is inside one of the CIDRs of list. */
int gw_ip_allowed(const cfg_list *list, const char *ip);
/* Turns "<pointer>: reason; <pointer>: reason" into [{"field","issue"}]. */
cJSON *gw_schema_details(const char *errors);
/* Parses a query integer in [min, max]; def when absent. -1 when present but bad. */
int gw_query_int(gw_ctx *c, const char *name, int64_t def, int64_t min, int64_t max, int64_t *out);

#endif
