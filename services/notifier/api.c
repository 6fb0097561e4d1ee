/* api: internal HTTP handlers (see api.h). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "format.h"
#include "jsonschema.h"
#include "log.h"
#include "match.h"
#include "secret.h"
#include "store.h"
#include "util.h"

#define ID_PATTERN "^[a-z0-9][a-z0-9_-]*$"

static const char channel_create_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"id\",\"type\"],"
    "\"properties\":{\"id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,\"pattern\":"
    "\"" ID_PATTERN "\"},\"type\":{\"enum\":[\"slack\",\"telegram\",\"email\",\"webhook\"]},"
    "\"config\":{\"$ref\":\"#/$defs/config\"},\"secret_env\":{\"type\":\"string\",\"pattern\":"
    "\"^PAIMON_[A-Z0-9_]+$\",\"maxLength\":128},\"secret\":{\"type\":\"string\",\"minLength\":1,"
    "\"maxLength\":4096},\"enabled\":{\"type\":\"boolean\"}},"
    "\"$defs\":{\"config\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"chat_ids\":{\"type\":\"array\",\"maxItems\":50,\"items\":{\"type\":[\"string\","
    "\"integer\"]}},\"api_base\":{\"type\":\"string\",\"pattern\":\"^https?://[^/]+(/[^ ]*)?$\","
    "\"maxLength\":200},\"smtp_url\":{\"type\":\"string\",\"pattern\":\"^smtps?://[^/@]+$\","
    "\"maxLength\":200},\"from\":{\"type\":\"string\",\"maxLength\":254},\"to\":{\"type\":"
    "\"array\",\"maxItems\":32,\"items\":{\"type\":\"string\",\"maxLength\":254}},\"username\":"
    "{\"type\":\"string\",\"maxLength\":200},\"allow_plain_auth\":{\"type\":\"boolean\"},"
    "\"min_interval_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":3600000},"
    "\"bot_min_interval_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":3600000}}}}}";

static const char channel_update_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"properties\":{\"config\":{\"type\":\"object\"},\"secret_env\":{\"type\":\"string\","
    "\"pattern\":\"^PAIMON_[A-Z0-9_]+$\",\"maxLength\":128},\"secret\":{\"type\":\"string\","
    "\"minLength\":1,\"maxLength\":4096},\"enabled\":{\"type\":\"boolean\"}}}";

static const char route_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"id\"],"
    "\"properties\":{\"id\":{\"type\":\"string\",\"maxLength\":64,\"pattern\":\"" ID_PATTERN
    "\"},\"parent_id\":{\"type\":[\"string\",\"null\"],\"maxLength\":64},\"position\":{\"type\":"
    "\"integer\",\"minimum\":0,\"maximum\":100000},\"matchers\":{\"type\":\"array\","
    "\"maxItems\":32,\"items\":{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"name\",\"op\",\"value\"],\"properties\":{\"name\":{\"type\":\"string\","
    "\"maxLength\":128},\"op\":{\"enum\":[\"=\",\"!=\",\"=~\",\"!~\"]},\"value\":{\"type\":"
    "\"string\",\"maxLength\":512}}}},\"channels\":{\"type\":\"array\",\"maxItems\":32,\"items\":"
    "{\"type\":\"string\",\"maxLength\":64}},\"continue_matching\":{\"type\":\"boolean\"},"
    "\"group_by\":{\"type\":\"array\",\"maxItems\":16,\"items\":{\"type\":\"string\","
    "\"maxLength\":128}},\"group_wait_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":"
    "86400000},\"group_interval_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":86400000},"
    "\"repeat_interval_ms\":{\"type\":\"integer\",\"minimum\":1000,\"maximum\":2592000000},"
    "\"send_resolved\":{\"type\":\"boolean\"},\"active\":{\"type\":\"boolean\"}}}";

static const char silence_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"matchers\","
    "\"ends_at\",\"created_by\"],\"properties\":{\"matchers\":{\"type\":\"array\",\"minItems\":1,"
    "\"maxItems\":32,\"items\":{\"type\":\"object\",\"additionalProperties\":false,\"required\":"
    "[\"name\",\"op\",\"value\"],\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":128},"
    "\"op\":{\"enum\":[\"=\",\"!=\",\"=~\",\"!~\"]},\"value\":{\"type\":\"string\",\"maxLength\":"
    "512}}}},\"starts_at\":{\"type\":\"string\",\"format\":\"date-time\"},\"ends_at\":{\"type\":"
    "\"string\",\"format\":\"date-time\"},\"created_by\":{\"type\":\"string\",\"minLength\":1,"
    "\"maxLength\":128},\"comment\":{\"type\":\"string\",\"maxLength\":1000}}}";

static const char webhook_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"url\":{\"type\":"
    "\"string\",\"maxLength\":2000,\"pattern\":\"^https?://[^ ]+$\"},\"events\":{\"type\":"
    "\"array\",\"minItems\":1,\"maxItems\":32,\"items\":{\"type\":\"string\",\"pattern\":"
    "\"^([*]|[a-z][a-z0-9_]*([.][a-z0-9_]+)*([.][*])?)$\",\"maxLength\":100}},\"secret\":{"
    "\"type\":\"string\",\"minLength\":16,\"maxLength\":256},\"description\":{\"type\":"
    "\"string\",\"maxLength\":500},\"active\":{\"type\":\"boolean\"}}}";

static const char test_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"channel_id\"],"
    "\"properties\":{\"channel_id\":{\"type\":\"string\",\"maxLength\":64,\"pattern\":\"" ID_PATTERN
    "\"},\"message\":{\"type\":\"string\",\"maxLength\":1000}}}";

enum { S_CH_CREATE, S_CH_UPDATE, S_ROUTE, S_SILENCE, S_WEBHOOK, S_TEST, S_COUNT };

struct api {
    db_pool *db;
    jsonschema *schemas[S_COUNT];
    struct binding *bind; /* one per resource: the ud of its uniform handlers */
};

/* ---- helpers ---- */

static db_conn *conn_or_503(api *a, http_request *req)
{
    char err[UTIL_ERRLEN];
    db_conn *c = db_acquire(a->db, 2000, err, sizeof err);
    if (!c) {
        log_warn("api: no database", "error", err);
        http_reply_error(req, 503, "unavailable", "database unavailable", NULL);
    }
    return c;
}

static void reply_db_error(http_request *req, db_conn *c, const char *err)
{
    const char *st = db_last_sqlstate(c);
    log_warn("api: query failed", "request_id", http_request_id(req), "error", err);
    if (strncmp(st, "23", 2) == 0) /* integrity: duplicate key, bad reference, check */
        http_reply_error(req, 409, "conflict",
                         strcmp(st, "23505") == 0 ? "already exists"
                                                  : "violates a constraint (reference or check)",
                         NULL);
    else
        http_reply_error(req, 500, "internal", "internal error", NULL);
}

/* Parses and validates the body; replies itself on failure. */
static cJSON *body_or_400(api *a, http_request *req, int schema)
{
    cJSON *b = http_require_json(req);
    if (!b)
        return NULL;
    char err[512];
    if (jsonschema_check_instance(b, err, sizeof err) != 0 ||
        jsonschema_validate(a->schemas[schema], b, err, sizeof err) != 0) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "reason", err);
        http_reply_error(req, 400, "invalid_body", "request body does not match the schema", d);
        cJSON_Delete(b);
        return NULL;
    }
    return b;
}

static int limit_param(http_request *req)
{
    const char *l = http_query(req, "limit");
    long v = l ? strtol(l, NULL, 10) : 50;
    return v < 1 ? 1 : v > 200 ? 200 : (int)v;
}

/* Column 0 of each row is a JSON object; rows beyond limit signal a next page whose
 * cursor is field `key` of the last item kept. */
static void reply_list(http_request *req, PGresult *r, int limit, const char *key)
{
    cJSON *data = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(data, "items");
    int n = PQntuples(r);
    for (int i = 0; i < n && i < limit; i++) {
        cJSON *o = cJSON_Parse(PQgetvalue(r, i, 0));
        if (o)
            cJSON_AddItemToArray(items, o);
    }
    cJSON *last = cJSON_GetArrayItem(items, cJSON_GetArraySize(items) - 1);
    const cJSON *k = last ? cJSON_GetObjectItemCaseSensitive(last, key) : NULL;
    if (n > limit && k) {
        char buf[64];
        if (cJSON_IsNumber(k))
            snprintf(buf, sizeof buf, "%.0f", k->valuedouble);
        cJSON_AddStringToObject(data, "next_cursor", cJSON_IsNumber(k) ? buf : k->valuestring);
    } else
        cJSON_AddNullToObject(data, "next_cursor");
    http_reply_ok(req, 200, data);
}

static void reply_one(http_request *req, PGresult *r, int status)
{
    if (PQntuples(r) == 0) {
        http_reply_error(req, 404, "not_found", "no such resource", NULL);
        return;
    }
    http_reply_ok(req, status, cJSON_Parse(PQgetvalue(r, 0, 0)));
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *jbool(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? "true" : "false") : NULL;
}

/* ---- the shared shapes: one statement, one reply ---- */

typedef enum { REPLY_ONE, REPLY_LIST, REPLY_DELETED } reply_kind;

/* Runs sql on c and replies: REPLY_ONE the first row's JSON object with status `arg`
 * (404 without a row), REPLY_LIST a page of `arg` items cursored by "id",
 * REPLY_DELETED an empty 200 (404 without a row). */
static void reply_query(http_request *req, db_conn *c, const char *sql, int n, const char *const *p,
                        reply_kind kind, int arg)
{
    char err[UTIL_ERRLEN];
    PGresult *r = db_query(c, sql, n, p, err, sizeof err);
    if (!r)
        reply_db_error(req, c, err);
    else if (kind == REPLY_LIST)
        reply_list(req, r, arg, "id");
    else if (kind == REPLY_ONE)
        reply_one(req, r, arg);
    else if (PQntuples(r) == 0)
        http_reply_error(req, 404, "not_found", "no such resource", NULL);
    else
        http_reply_ok(req, 200, NULL);
    PQclear(r);
}

/* reply_query on a pooled connection (503 when none is free). */
static void run_and_reply(api *a, http_request *req, const char *sql, int n, const char *const *p,
                          reply_kind kind, int arg)
{
    db_conn *c = conn_or_503(a, req);
    if (!c)
        return;
    reply_query(req, c, sql, n, p, kind, arg);
    db_release(a->db, c);
}

/* A resource whose list, get and delete are the same shape as every other's; the
 * writes differ per resource and stay hand-written below. */
typedef struct resource {
    const char *one;  /* $1 = id */
    const char *page; /* $1 = cursor (NULL for the first page), $2 = limit + 1, $3 = extra */
    const char *(*extra)(http_request *req); /* the page's $3, or NULL for none */
    const char *remove;                      /* $1 = id; DELETE on the path */
    reply_kind remove_reply;
    /* Set when ids are uuids: a malformed id is a 404 with this message (and a
     * malformed cursor a 400) before PostgreSQL would reject the cast. */
    const char *uuid_missing;
} resource;

typedef struct binding {
    api *a;
    const resource *res;
} binding;

static int uuid_ok(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

/* 0 after replying 404 for an id that cannot name a row. */
static int id_ok(http_request *req, const resource *res, const char *id)
{
    if (!res->uuid_missing || uuid_ok(id))
        return 1;
    http_reply_error(req, 404, "not_found", res->uuid_missing, NULL);
    return 0;
}

static void res_list(http_request *req, void *ud)
{
    const binding *b = ud;
    const char *cursor = http_query(req, "cursor");
    if (b->res->uuid_missing && cursor && !uuid_ok(cursor)) {
        http_reply_error(req, 400, "invalid_cursor", "bad cursor", NULL);
        return;
    }
    char lim[16];
    int limit = limit_param(req);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *p[] = {cursor, lim, b->res->extra ? b->res->extra(req) : NULL};
    run_and_reply(b->a, req, b->res->page, b->res->extra ? 3 : 2, p, REPLY_LIST, limit);
}

static void res_get(http_request *req, void *ud)
{
    const binding *b = ud;
    const char *p[] = {http_param(req, "id")};
    if (id_ok(req, b->res, p[0]))
        run_and_reply(b->a, req, b->res->one, 1, p, REPLY_ONE, 200);
}

static void res_delete(http_request *req, void *ud)
{
    const binding *b = ud;
    const char *p[] = {http_param(req, "id")};
    if (id_ok(req, b->res, p[0]))
        run_and_reply(b->a, req, b->res->remove, 1, p, b->res->remove_reply, 200);
}

/* ---- channels ---- */

#define CHANNEL_JSON                                                                               \
    "json_build_object('id', id, 'type', type, 'config', config, 'enabled', enabled, "             \
    "'secret', CASE WHEN secret_env IS NOT NULL THEN json_build_object('source', 'env', "          \
    "'env', secret_env) WHEN secret_sealed IS NOT NULL THEN json_build_object('source', "          \
    "'sealed', 'value', '***') END, 'created_at', created_at, 'updated_at', updated_at)::text"

/* Checks a channel's config against its type (what the schema cannot say). */
static int channel_config_ok(const char *type, const cJSON *cfg, char *why, size_t len)
{
    if (!cfg)
        return 1;
    const cJSON *it;
    if (strcmp(type, "email") == 0) {
        const char *from = jstr(cfg, "from");
        if (from && !format_email_addr_ok(from))
            return util_err(why, len, "config.from is not an acceptable address"), 0;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(cfg, "to")) if (
            !format_email_addr_ok(it->valuestring)) return util_err(why, len,
                                                                    "config.to has a bad address"),
            0;
    }
    if (strcmp(type, "telegram") != 0 && cJSON_GetObjectItemCaseSensitive(cfg, "chat_ids"))
        return util_err(why, len, "chat_ids only apply to telegram channels"), 0;
    if (strcmp(type, "email") != 0 && cJSON_GetObjectItemCaseSensitive(cfg, "smtp_url"))
        return util_err(why, len, "smtp_url only applies to email channels"), 0;
    return 1;
}

/* Seals body.secret for channel `id` into hex (NULL + reply on failure). */
static int seal_hex(http_request *req, const char *secret, const char *aad, char **hex)
{
    *hex = NULL;
    if (!secret)
        return 0;
    uint8_t key[SECRET_KEY_LEN];
    char err[UTIL_ERRLEN];
    uint8_t *blob = NULL;
    size_t n = 0;
    if (secret_master_key(key, err, sizeof err) != 0) {
        http_reply_error(req, 400, "no_master_key",
                         "inline secrets need PAIMON_MASTER_KEY; use secret_env", NULL);
        return -1;
    }
    int rc = secret_seal(key, aad, secret, &blob, &n, err, sizeof err);
    crypto_wipe(key, sizeof key);
    if (rc != 0) {
        http_reply_error(req, 400, "invalid_body", "secret cannot be stored", NULL);
        return -1;
    }
    *hex = store_hex_new(blob, n);
    free(blob);
    return 0;
}

static void channels_create(http_request *req, void *ud)
{
    api *a = ud;
    cJSON *b = body_or_400(a, req, S_CH_CREATE);
    if (!b)
        return;
    char why[UTIL_ERRLEN];
    const char *id = jstr(b, "id"), *type = jstr(b, "type");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(b, "config");
    char *hex = NULL;
    if (!channel_config_ok(type, cfg, why, sizeof why)) {
        http_reply_error(req, 400, "invalid_body", why, NULL);
    } else if (jstr(b, "secret") && jstr(b, "secret_env")) {
        http_reply_error(req, 400, "invalid_body", "give secret or secret_env, not both", NULL);
    } else if (seal_hex(req, jstr(b, "secret"), id, &hex) == 0) {
        char *cfgs = cfg ? cJSON_PrintUnformatted(cfg) : util_strdup("{}");
        const char *en = jbool(b, "enabled");
        const char *p[] = {id, type, cfgs, jstr(b, "secret_env"), hex, en ? en : "true"};
        run_and_reply(a, req,
                      "INSERT INTO notifier.channels (id, type, config, secret_env, "
                      "secret_sealed, enabled) VALUES ($1, $2, $3::jsonb, $4, decode($5, "
                      "'hex'), $6::boolean) RETURNING " CHANNEL_JSON,
                      6, p, REPLY_ONE, 201);
        free(cfgs);
    }
    free(hex);
    cJSON_Delete(b);
}

static void channels_update(http_request *req, void *ud)
{
    api *a = ud;
    cJSON *b = body_or_400(a, req, S_CH_UPDATE);
    if (!b)
        return;
    const char *id = http_param(req, "id");
    char err[UTIL_ERRLEN], why[UTIL_ERRLEN];
    db_conn *c = NULL;
    char *hex = NULL, *cfgs = NULL;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(b, "config");
    if (jstr(b, "secret") && jstr(b, "secret_env")) {
        http_reply_error(req, 400, "invalid_body", "give secret or secret_env, not both", NULL);
        goto out;
    }
    if (cfg) {
        /* The full config schema lives in the create schema's $defs; check through it. */
        cJSON *probe = cJSON_CreateObject();
        cJSON_AddStringToObject(probe, "id", "probe");
        cJSON_AddStringToObject(probe, "type", "slack");
        cJSON_AddItemToObject(probe, "config", cJSON_Duplicate(cfg, 1));
        int bad = jsonschema_validate(a->schemas[S_CH_CREATE], probe, why, sizeof why) != 0;
        cJSON_Delete(probe);
        if (bad) {
            http_reply_error(req, 400, "invalid_body", why, NULL);
            goto out;
        }
    }
    if (seal_hex(req, jstr(b, "secret"), id, &hex) != 0 || !(c = conn_or_503(a, req)))
        goto out;
    const char *pt[] = {id};
    PGresult *t =
        db_query(c, "SELECT type FROM notifier.channels WHERE id = $1", 1, pt, err, sizeof err);
    if (!t || PQntuples(t) == 0) {
        if (t)
            http_reply_error(req, 404, "not_found", "no such channel", NULL);
        else
            reply_db_error(req, c, err);
        PQclear(t);
        goto out;
    }
    int ok = channel_config_ok(PQgetvalue(t, 0, 0), cfg, why, sizeof why);
    PQclear(t);
    if (!ok) {
        http_reply_error(req, 400, "invalid_body", why, NULL);
        goto out;
    }
    cfgs = cfg ? cJSON_PrintUnformatted(cfg) : NULL;
    const char *p[] = {id, cfgs, jstr(b, "secret_env"), hex, jbool(b, "enabled")};
    reply_query(
        req, c,
        "UPDATE notifier.channels SET config = coalesce($2::jsonb, config), "
        "secret_env = CASE WHEN $3::text IS NOT NULL THEN $3 WHEN $4::text IS NOT NULL THEN NULL "
        "ELSE secret_env END, secret_sealed = CASE WHEN $4::text IS NOT NULL THEN decode($4, "
        "'hex') WHEN $3::text IS NOT NULL THEN NULL ELSE secret_sealed END, "
        "enabled = coalesce($5::boolean, enabled), updated_at = now() WHERE id = $1 "
        "RETURNING " CHANNEL_JSON,
        5, p, REPLY_ONE, 200);
out:
    if (c)
        db_release(a->db, c);
    free(cfgs);
    free(hex);
    cJSON_Delete(b);
}

/* ---- routes ---- */

#define ROUTE_JSON "row_to_json(r)::text"

static void route_write(http_request *req, api *a, int create)
{
    cJSON *b = body_or_400(a, req, S_ROUTE);
    if (!b)
        return;
    if (!create) {
        const char *id = jstr(b, "id");
        if (strcmp(id, http_param(req, "id")) != 0) {
            http_reply_error(req, 400, "invalid_body", "id in the body must match the path", NULL);
            cJSON_Delete(b);
            return;
        }
    }
    /* Fill defaults so the stored row and the parsed route agree. */
    if (!cJSON_GetObjectItemCaseSensitive(b, "matchers"))
        cJSON_AddArrayToObject(b, "matchers");
    if (!cJSON_GetObjectItemCaseSensitive(b, "channels"))
        cJSON_AddArrayToObject(b, "channels");
    if (!cJSON_GetObjectItemCaseSensitive(b, "group_by"))
        cJSON_AddArrayToObject(b, "group_by");
    match_route route;
    char why[UTIL_ERRLEN];
    if (store_route_from_json(b, &route, why, sizeof why) != 0) {
        http_reply_error(req, 400, "invalid_body", why, NULL);
        cJSON_Delete(b);
        return;
    }
    match_route_clear(&route);
    char *body = cJSON_PrintUnformatted(b);
    const char *p[] = {body};
    const char *sql =
        create ? "INSERT INTO notifier.routes AS r SELECT * FROM jsonb_populate_record(NULL::"
                 "notifier.routes, jsonb_build_object('created_at', now(), 'updated_at', "
                 "now(), 'position', 0, 'continue_matching', false, 'group_wait_ms', 30000, "
                 "'group_interval_ms', 300000, 'repeat_interval_ms', 14400000, "
                 "'send_resolved', true, 'active', true) || $1::jsonb) x RETURNING " ROUTE_JSON
               : "UPDATE notifier.routes t SET parent_id = r.parent_id, position = "
                 "r.position, matchers = r.matchers, channels = r.channels, "
                 "continue_matching = r.continue_matching, group_by = r.group_by, "
                 "group_wait_ms = r.group_wait_ms, group_interval_ms = r.group_interval_ms, "
                 "repeat_interval_ms = r.repeat_interval_ms, send_resolved = "
                 "r.send_resolved, active = r.active, updated_at = now() FROM "
                 "jsonb_populate_record(NULL::notifier.routes, jsonb_build_object("
                 "'position', 0, 'continue_matching', false, 'group_wait_ms', 30000, "
                 "'group_interval_ms', 300000, 'repeat_interval_ms', 14400000, "
                 "'send_resolved', true, 'active', true) || $1::jsonb) r WHERE t.id = r.id "
                 "RETURNING row_to_json(t)::text";
    run_and_reply(a, req, sql, 1, p, REPLY_ONE, create ? 201 : 200);
    free(body);
    cJSON_Delete(b);
}

static void routes_create(http_request *req, void *ud)
{
    route_write(req, ud, 1);
}

static void routes_update(http_request *req, void *ud)
{
    route_write(req, ud, 0);
}

/* ---- silences ---- */

#define SILENCE_JSON                                                                               \
    "json_build_object('id', id, 'matchers', matchers, 'starts_at', starts_at, 'ends_at', "        \
    "ends_at, 'created_by', created_by, 'comment', comment, 'created_at', created_at, 'state', "   \
    "CASE WHEN ends_at <= now() THEN 'expired' WHEN starts_at > now() THEN 'pending' ELSE "        \
    "'active' END)::text"

static void silences_create(http_request *req, void *ud)
{
    api *a = ud;
    cJSON *b = body_or_400(a, req, S_SILENCE);
    if (!b)
        return;
    match_set ms;
    char why[UTIL_ERRLEN];
    if (match_set_from_json(cJSON_GetObjectItemCaseSensitive(b, "matchers"), &ms, why,
                            sizeof why) != 0) {
        http_reply_error(req, 400, "invalid_body", why, NULL);
        cJSON_Delete(b);
        return;
    }
    match_set_free(&ms);
    char *m = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "matchers"));
    const char *comment = jstr(b, "comment");
    const char *p[] = {m, jstr(b, "starts_at"), jstr(b, "ends_at"), jstr(b, "created_by"),
                       comment ? comment : ""};
    run_and_reply(a, req,
                  "INSERT INTO notifier.silences (matchers, starts_at, ends_at, created_by, "
                  "comment) VALUES ($1::jsonb, coalesce($2::timestamptz, now()), "
                  "$3::timestamptz, $4, $5) RETURNING " SILENCE_JSON,
                  5, p, REPLY_ONE, 201);
    free(m);
    cJSON_Delete(b);
}

/* ---- webhook subscriptions ---- */

#define WEBHOOK_JSON                                                                               \
    "json_build_object('id', id, 'url', url, 'events', events, 'active', active, "                 \
    "'description', description, 'secret', '***', 'created_at', created_at, 'updated_at', "        \
    "updated_at)::text"

static char *events_array(const cJSON *b)
{
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(b, "events"), *e;
    if (!ev)
        return NULL;
    format_buf f;
    format_buf_init(&f);
    format_buf_puts(&f, "{");
    int i = 0;
    cJSON_ArrayForEach(e, ev) format_buf_printf(&f, "%s\"%s\"", i++ ? "," : "", e->valuestring);
    format_buf_puts(&f, "}");
    return format_buf_take(&f); /* the schema's pattern leaves nothing to escape */
}

static void webhooks_write(http_request *req, api *a, int create)
{
    cJSON *b = body_or_400(a, req, S_WEBHOOK);
    if (!b)
        return;
    if (create && !jstr(b, "url")) {
        http_reply_error(req, 400, "invalid_body", "url is required", NULL);
        cJSON_Delete(b);
        return;
    }
    const char *id = create ? NULL : http_param(req, "id");
    if (!create && !uuid_ok(id)) {
        http_reply_error(req, 404, "not_found", "no such subscription", NULL);
        cJSON_Delete(b);
        return;
    }
    char uuid[37] = "", err[UTIL_ERRLEN], gen[65] = "";
    const char *secret = jstr(b, "secret");
    if (create) {
        uint8_t r[16];
        util_random(r, sizeof r);
        r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
        r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
        snprintf(uuid, sizeof uuid,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
                 r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
                 r[15]);
        id = uuid;
        if (!secret) {
            uint8_t s[32];
            util_random(s, sizeof s);
            char *h = store_hex_new(s, sizeof s);
            util_strlcpy(gen, h, sizeof gen);
            free(h);
            crypto_wipe(s, sizeof s);
            secret = gen;
        }
    }
    char *hex = NULL, *events = events_array(b);
    if (seal_hex(req, secret, id, &hex) != 0) {
        free(events);
        cJSON_Delete(b);
        crypto_wipe(gen, sizeof gen);
        return;
    }
    db_conn *c = conn_or_503(a, req);
    if (c) {
        const char *desc = jstr(b, "description");
        const char *p[] = {id, jstr(b, "url"), hex, events, desc, jbool(b, "active")};
        PGresult *r = db_query(
            c,
            create ? "INSERT INTO notifier.webhook_subscriptions (id, url, secret_sealed, events, "
                     "description, active) VALUES ($1::uuid, $2, decode($3, 'hex'), "
                     "coalesce($4::text[], '{*}'), coalesce($5, ''), coalesce($6::boolean, true)) "
                     "RETURNING " WEBHOOK_JSON
                   : "UPDATE notifier.webhook_subscriptions SET url = coalesce($2, url), "
                     "secret_sealed = coalesce(decode($3, 'hex'), secret_sealed), events = "
                     "coalesce($4::text[], events), description = coalesce($5, description), "
                     "active = coalesce($6::boolean, active), updated_at = now() WHERE id = "
                     "$1::uuid RETURNING " WEBHOOK_JSON,
            6, p, err, sizeof err);
        if (!r)
            reply_db_error(req, c, err);
        else if (PQntuples(r) == 0)
            http_reply_error(req, 404, "not_found", "no such subscription", NULL);
        else {
            cJSON *o = cJSON_Parse(PQgetvalue(r, 0, 0));
            if (gen[0]) /* shown once: the receiver needs it to verify signatures */
                cJSON_ReplaceItemInObject(o, "secret", cJSON_CreateString(gen));
            http_reply_ok(req, create ? 201 : 200, o);
        }
        PQclear(r);
        db_release(a->db, c);
    }
    crypto_wipe(gen, sizeof gen);
    free(hex);
    free(events);
    cJSON_Delete(b);
}

static void webhooks_create(http_request *req, void *ud)
{
    webhooks_write(req, ud, 1);
}

static void webhooks_update(http_request *req, void *ud)
{
    webhooks_write(req, ud, 0);
}

/* ---- test notification ---- */

static void test_send(http_request *req, void *ud)
{
    api *a = ud;
    cJSON *b = body_or_400(a, req, S_TEST);
    if (!b)
        return;
    db_conn *c = conn_or_503(a, req);
    if (!c) {
        cJSON_Delete(b);
        return;
    }
    char err[UTIL_ERRLEN];
    const char *ch = jstr(b, "channel_id"), *msg = jstr(b, "message");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "status", "firing");
    cJSON_AddStringToObject(p, "severity", "info");
    cJSON_AddStringToObject(p, "route", "test");
    cJSON_AddBoolToObject(p, "test", 1);
    cJSON *arr = cJSON_AddArrayToObject(p, "alerts");
    cJSON *al = cJSON_CreateObject();
    cJSON_AddStringToObject(al, "dedup_key", "notifier:test");
    cJSON_AddStringToObject(al, "status", "firing");
    cJSON_AddStringToObject(al, "severity", "info");
    cJSON_AddStringToObject(al, "category", "test");
    cJSON_AddStringToObject(al, "source", "notifier");
    cJSON_AddStringToObject(al, "title", "Test notification");
    cJSON_AddStringToObject(al, "message", msg ? msg : "If you can read this, the channel works.");
    cJSON_AddNumberToObject(al, "occurrences", 1);
    cJSON_AddItemToArray(arr, al);
    int enq = 0;
    const char *chv[] = {ch};
    const char *pc[] = {ch};
    PGresult *ex =
        db_query(c, "SELECT 1 FROM notifier.channels WHERE id = $1", 1, pc, err, sizeof err);
    if (!ex)
        reply_db_error(req, c, err);
    else if (PQntuples(ex) == 0)
        http_reply_error(req, 404, "not_found", "no such channel", NULL);
    else if (db_exec(c, "BEGIN", err, sizeof err) != 0 ||
             store_enqueue(c, chv, 1, "test", "test", NULL, NULL, p, &enq, err, sizeof err) != 0 ||
             db_exec(c, "COMMIT", err, sizeof err) != 0)
        reply_db_error(req, c, err);
    else if (enq == 0)
        http_reply_error(req, 409, "channel_unusable",
                         "channel is disabled or lacks its secret or targets", NULL);
    else {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddNumberToObject(d, "queued", enq);
        http_reply_ok(req, 202, d);
    }
    PQclear(ex);
    db_release(a->db, c);
    cJSON_Delete(p);
    cJSON_Delete(b);
}

/* ---- deliveries ---- */

static int digits(const char *s)
{
    return s && *s && strlen(s) < 19 && strspn(s, "0123456789") == strlen(s);
}

static void deliveries_list(http_request *req, void *ud)
{
    api *a = ud;
    const char *cursor = http_query(req, "cursor"), *nid = http_query(req, "notification_id");
    const char *outcome = http_query(req, "outcome"), *ch = http_query(req, "channel_id");
    if ((cursor && !digits(cursor)) || (nid && !digits(nid))) {
        http_reply_error(req, 400, "invalid_query", "cursor and notification_id are integers",
                         NULL);
        return;
    }
    if (outcome && strcmp(outcome, "sent") != 0 && strcmp(outcome, "retry") != 0 &&
        strcmp(outcome, "rate_limited") != 0 && strcmp(outcome, "dead") != 0) {
        http_reply_error(req, 400, "invalid_query", "outcome: sent|retry|rate_limited|dead", NULL);
        return;
    }
    char lim[16];
    int limit = limit_param(req);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *p[] = {cursor, lim, ch, outcome, nid};
    run_and_reply(
        a, req,
        "SELECT json_build_object('id', id, 'notification_id', notification_id, 'channel_id', "
        "channel_id, 'channel_type', channel_type, 'target', target, 'attempt', attempt, "
        "'outcome', outcome, 'status_code', status_code, 'latency_ms', latency_ms, 'error', "
        "error, 'at', at)::text FROM notifier.deliveries WHERE ($1::bigint IS NULL OR id < "
        "$1::bigint) AND ($3::text IS NULL OR channel_id = $3) AND ($4::text IS NULL OR outcome "
        "= $4) AND ($5::bigint IS NULL OR notification_id = $5::bigint) ORDER BY id DESC LIMIT $2",
        5, p, REPLY_LIST, limit);
}

/* ---- the uniform list / get / delete of each resource ---- */

static const char *silences_active(http_request *req)
{
    const char *active = http_query(req, "active");
    return active && strcmp(active, "true") == 0 ? "t" : "f";
}

enum { R_CHANNELS, R_ROUTES, R_SILENCES, R_WEBHOOKS, R_COUNT };

static const resource resources[R_COUNT] = {
    [R_CHANNELS] = {.one = "SELECT " CHANNEL_JSON " FROM notifier.channels WHERE id = $1",
                    .page = "SELECT " CHANNEL_JSON " FROM notifier.channels WHERE $1::text IS "
                            "NULL OR id > $1 ORDER BY id LIMIT $2",
                    .remove = "DELETE FROM notifier.channels WHERE id = $1 RETURNING 1",
                    .remove_reply = REPLY_DELETED},
    [R_ROUTES] = {.one = "SELECT " ROUTE_JSON " FROM notifier.routes r WHERE id = $1",
                  .page = "SELECT " ROUTE_JSON " FROM notifier.routes r WHERE $1::text IS NULL "
                          "OR id > $1 ORDER BY id LIMIT $2",
                  .remove = "DELETE FROM notifier.routes WHERE id = $1 RETURNING 1",
                  .remove_reply = REPLY_DELETED},
    [R_SILENCES] = {.one = "SELECT " SILENCE_JSON " FROM notifier.silences WHERE id = $1",
                    .page = "SELECT " SILENCE_JSON " FROM notifier.silences WHERE ($1::uuid IS "
                            "NULL OR id > $1::uuid) AND (NOT $3::boolean OR ends_at > now()) "
                            "ORDER BY id LIMIT $2",
                    .extra = silences_active,
                    /* Expiring keeps the record (who silenced what, and when it stopped). */
                    .remove = "UPDATE notifier.silences SET ends_at = greatest(starts_at + "
                              "interval '1 millisecond', least(ends_at, now())) WHERE id = $1 "
                              "RETURNING " SILENCE_JSON,
                    .remove_reply = REPLY_ONE,
                    .uuid_missing = "no such silence"},
    [R_WEBHOOKS] = {.one = "SELECT " WEBHOOK_JSON " FROM notifier.webhook_subscriptions WHERE "
                           "id = $1",
                    .page = "SELECT " WEBHOOK_JSON " FROM notifier.webhook_subscriptions WHERE "
                            "$1::uuid IS NULL OR id > $1::uuid ORDER BY id LIMIT $2",
                    .remove = "DELETE FROM notifier.webhook_subscriptions WHERE id = $1::uuid "
                              "RETURNING 1",
                    .remove_reply = REPLY_DELETED,
                    .uuid_missing = "no such subscription"},
};

/* ---- wiring ---- */

api *api_new(http_server *srv, db_pool *db, char *err, size_t errlen)
{
    api *a = util_calloc(1, sizeof *a);
    a->db = db;
    const char *texts[S_COUNT] = {channel_create_schema, channel_update_schema, route_schema,
                                  silence_schema,        webhook_schema,        test_schema};
    for (int i = 0; i < S_COUNT; i++)
        if (!(a->schemas[i] = jsonschema_compile(texts[i], err, errlen))) {
            api_free(a);
            return NULL;
        }
    a->bind = util_calloc(R_COUNT, sizeof *a->bind);
    for (int i = 0; i < R_COUNT; i++)
        a->bind[i] = (binding){.a = a, .res = &resources[i]};
    struct {
        const char *m, *p;
        http_handler fn;
        int res; /* the resource its ud binds, or -1 for the api itself */
    } routes[] = {
        {"GET", "/v1/channels", res_list, R_CHANNELS},
        {"POST", "/v1/channels", channels_create, -1},
        {"GET", "/v1/channels/:id", res_get, R_CHANNELS},
        {"PUT", "/v1/channels/:id", channels_update, -1},
        {"DELETE", "/v1/channels/:id", res_delete, R_CHANNELS},
        {"GET", "/v1/routes", res_list, R_ROUTES},
        {"POST", "/v1/routes", routes_create, -1},
        {"GET", "/v1/routes/:id", res_get, R_ROUTES},
        {"PUT", "/v1/routes/:id", routes_update, -1},
        {"DELETE", "/v1/routes/:id", res_delete, R_ROUTES},
        {"GET", "/v1/silences", res_list, R_SILENCES},
        {"POST", "/v1/silences", silences_create, -1},
        {"GET", "/v1/silences/:id", res_get, R_SILENCES},
        {"DELETE", "/v1/silences/:id", res_delete, R_SILENCES}, /* expires it */
        {"GET", "/v1/webhooks", res_list, R_WEBHOOKS},
        {"POST", "/v1/webhooks", webhooks_create, -1},
        {"GET", "/v1/webhooks/:id", res_get, R_WEBHOOKS},
        {"PUT", "/v1/webhooks/:id", webhooks_update, -1},
        {"DELETE", "/v1/webhooks/:id", res_delete, R_WEBHOOKS},
        {"POST", "/v1/test", test_send, -1},
        {"GET", "/v1/deliveries", deliveries_list, -1},
    };
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        void *ud = routes[i].res < 0 ? (void *)a : (void *)&a->bind[routes[i].res];
        if (http_route(srv, routes[i].m, routes[i].p, routes[i].fn, ud) != 0) {
            util_err(err, errlen, "cannot route %s %s", routes[i].m, routes[i].p);
            api_free(a);
            return NULL;
        }
    }
    return a;
}

void api_free(api *a)
{
    if (!a)
        return;
    for (int i = 0; i < S_COUNT; i++)
        jsonschema_free(a->schemas[i]);
    free(a->bind);
    free(a);
}
