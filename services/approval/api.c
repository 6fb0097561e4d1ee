/* api: internal HTTP handlers (see api.h). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "log.h"
#include "opsig.h"
#include "policy.h"
#include "ticket.h"
#include "util.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define REDEMPTION_JSON                                                                                            \
    "json_build_object('id', id, 'chain_id', chain_id, 'vault', vault, 'request_id', "                             \
    "request_id::text, 'channel', channel, 'owner', owner, 'receiver', receiver, 'shares', "                       \
    "shares::text, 'gross_assets', gross_assets::text, 'fee', fee::text, 'net_assets', "                           \
    "net_assets::text, 'status', status, 'approval_mode', approval_mode, 'decision', decision, "                   \
    "'ticket_id', ticket_id, 'settle_state', settle_state, 'requested_at', " TS("requested_at") ", 'due_at', " TS( \
        "due_at") ", 'chain_settle_at', " TS("chain_settle_at") ", "                                               \
                                                                "'decided_by', decided_by, "                       \
                                                                "'reject_reason', reject_reason, "                 \
                                                                "'settled_assets', "                               \
                                                                "settled_assets::text, "                           \
                                                                "'block_number', block_number, "                   \
                                                                "'tx_hash', tx_hash)"

static void unavailable(http_request *req)
{
    http_reply_error(req, 503, "unavailable", "service temporarily unavailable", NULL);
}

static void bad(http_request *req, const char *msg)
{
    http_reply_error(req, 400, "invalid_request", msg, NULL);
}

static int parse_limit(http_request *req, int *limit)
{
    const char *l = http_query(req, "limit");
    *limit = 50;
    if (!l)
        return 0;
    char *end = NULL;
    long v = strtol(l, &end, 10);
    if (!*l || *end || v < 1 || v > 200)
        return -1;
    *limit = (int)v;
    return 0;
}

/* Runs a query whose single column is a JSON object per row; replies {items, next_cursor}. */
static void reply_page(http_request *req, db_conn *c, const char *name, const char *sql, int n,
                       const char *const *p, int limit)
{
    char err[UTIL_ERRLEN];
    PGresult *r = db_query_prepared(c, name, sql, n, p, err, sizeof err);
    if (!r) {
        log_error("list query failed", "error", err);
        unavailable(req);
        return;
    }
    cJSON *items = cJSON_CreateArray();
    int rows = PQntuples(r);
    for (int i = 0; i < rows && i < limit; i++) {
        cJSON *o = cJSON_Parse(PQgetvalue(r, i, 0));
        if (o)
            cJSON_AddItemToArray(items, o);
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "items", items);
    if (rows > limit) {
        cJSON *last = cJSON_GetArrayItem(items, limit - 1);
        cJSON_AddStringToObject(out, "next_cursor",
                                cJSON_GetStringValue(cJSON_GetObjectItem(last, "id")));
    } else {
        cJSON_AddNullToObject(out, "next_cursor");
    }
    PQclear(r);
    http_reply_ok(req, 200, out);
}

static int one_of(const char *v, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(v, *set) == 0)
            return 1;
    return 0;
}

static int cursor_exists(db_conn *c, const char *name, const char *sql, const char *cursor,
                         int *exists)
{
    const char *p[1] = {cursor};
    PGresult *r = db_query_prepared(c, name, sql, 1, p, NULL, 0);
    if (!r)
        return -1;
    *exists = PQntuples(r) == 1;
    PQclear(r);
    return 0;
}

static void list_redemptions(http_request *req, void *ud)
{
    appr_app *app = ud;
    static const char *const STATUSES[] = {"pending",   "approved", "rejected", "settled",
                                           "cancelled", "removed",  NULL};
    static const char *const CHANNELS[] = {"standard", "emergency", NULL};
    const char *status = http_query(req, "status"), *channel = http_query(req, "channel"),
               *owner = http_query(req, "owner"), *cursor = http_query(req, "cursor");
    int limit;
    if (parse_limit(req, &limit) != 0)
        return bad(req, "limit must be 1..200");
    if (status && !one_of(status, STATUSES))
        return bad(req, "unknown status");
    if (channel && !one_of(channel, CHANNELS))
        return bad(req, "channel must be standard or emergency");
    uint8_t a[20];
    char own[43];
    if (owner) {
        if (hex_addr_parse(owner, a, NULL, 0) != 0)
            return bad(req, "owner must be an address");
        hex_encode(a, 20, 1, own, sizeof own);
    }
    if (cursor && strlen(cursor) > 200)
        return bad(req, "invalid cursor");
    db_conn *c = db_acquire(app->db, 2000, NULL, 0);
    if (!c)
        return unavailable(req);
    if (cursor) {
        int ok = 0;
        if (cursor_exists(c, "api_rcur", "SELECT 1 FROM approval.redemption_requests WHERE id = $1",
                          cursor, &ok) != 0) {
            db_release(app->db, c);
            return unavailable(req);
        }
        if (!ok) {
            db_release(app->db, c);
            return bad(req, "invalid cursor");
        }
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *p[5] = {status, channel, owner ? own : NULL, cursor, lim};
    reply_page(req, c, "api_rlist",
               "SELECT " REDEMPTION_JSON "::text FROM approval.redemption_requests WHERE "
               "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR channel = $2) AND "
               "($3::text IS NULL OR owner = $3) AND ($4::text IS NULL OR (requested_at, id) < "
               "(SELECT requested_at, id FROM approval.redemption_requests WHERE id = $4)) ORDER "
               "BY requested_at DESC, id DESC LIMIT $5::int",
               5, p, limit);
    db_release(app->db, c);
}

static void get_redemption(http_request *req, void *ud)
{
    appr_app *app = ud;
    const char *id = http_param(req, "id");
    db_conn *c = db_acquire(app->db, 2000, NULL, 0);
    if (!c)
        return unavailable(req);
    const char *p[1] = {id};
    char err[UTIL_ERRLEN];
    PGresult *r = db_query_prepared(
        c, "api_rget",
        "SELECT " REDEMPTION_JSON "::text, (SELECT COALESCE(json_agg(json_build_object('id', "
        "a.id, 'action', a.action, 'actor', a.actor, 'ticket_id', a.ticket_id, 'detail', "
        "a.detail, 'at', " TS("a.at") ") ORDER BY a.id), '[]') FROM approval.approval_records a "
                                      "WHERE a.redemption_id = r.id)::text FROM "
                                      "approval.redemption_requests r WHERE id = $1",
        1, p, err, sizeof err);
    db_release(app->db, c);
    if (!r)
        return unavailable(req);
    if (PQntuples(r) != 1) {
        PQclear(r);
        return http_reply_error(req, 404, "not_found", "no such redemption", NULL);
    }
    cJSON *o = cJSON_Parse(PQgetvalue(r, 0, 0));
    cJSON *rec = cJSON_Parse(PQgetvalue(r, 0, 1));
    PQclear(r);
    if (!o) {
        cJSON_Delete(rec);
        return unavailable(req);
    }
    cJSON_AddItemToObject(o, "records", rec ? rec : cJSON_CreateArray());
    http_reply_ok(req, 200, o);
}

static void get_forecast(http_request *req, void *ud)
{
    appr_app *app = ud;
    db_conn *c = db_acquire(app->db, 2000, NULL, 0);
    if (!c)
        return unavailable(req);
    PGresult *r = db_query_prepared(
        c, "api_fc",
        "SELECT COALESCE(json_agg(json_build_object('day', day::text, 'due_count', due_count, "
        "'due_assets', due_assets::text, 'cumulative', cumulative::text, 'l1_balance', "
        "l1_balance::text, 'shortfall', shortfall::text, 'computed_at', " TS(
            "computed_at") ") "
                           "ORDER BY day), '[]')::text FROM approval.settlement_forecast",
        0, NULL, NULL, 0);
    db_release(app->db, c);
    if (!r)
        return unavailable(req);
    cJSON *days = cJSON_Parse(PQgetvalue(r, 0, 0));
    PQclear(r);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "days", days ? days : cJSON_CreateArray());
    http_reply_ok(req, 200, o);
}

static void list_tickets(http_request *req, void *ud)
{
    appr_app *app = ud;
    static const char *const STATUSES[] = {"open", "approved", "rejected", "cancelled", NULL};
    const char *status = http_query(req, "status"), *kind = http_query(req, "kind"),
               *cursor = http_query(req, "cursor");
    int limit;
    if (parse_limit(req, &limit) != 0)
        return bad(req, "limit must be 1..200");
    if (status && !one_of(status, STATUSES))
        return bad(req, "unknown status");
    if (kind && (strlen(kind) > 40 ||
                 strspn(kind, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(kind)))
        return bad(req, "invalid kind");
    if (cursor && strlen(cursor) > 200)
        return bad(req, "invalid cursor");
    db_conn *c = db_acquire(app->db, 2000, NULL, 0);
    if (!c)
        return unavailable(req);
    if (cursor) {
        int ok = 0;
        if (cursor_exists(c, "api_tcur", "SELECT 1 FROM approval.approval_tickets WHERE id = $1",
                          cursor, &ok) != 0) {
            db_release(app->db, c);
            return unavailable(req);
        }
        if (!ok) {
            db_release(app->db, c);
            return bad(req, "invalid cursor");
        }
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *p[4] = {status, kind, cursor, lim};
    reply_page(req, c, "api_tlist",
               "SELECT json_build_object('id', id, 'kind', kind, 'ref', ref, 'redemption_id', "
               "redemption_id, 'amount', amount::text, 'required_approvals', required_approvals, "
               "'approvals', approvals, 'status', status, 'requester', requester, 'reason', "
               "reason, 'created_at', " TS("created_at") ", 'decided_at', " TS(
                   "decided_at") ")"
                                 "::text FROM approval.approval_tickets WHERE ($1::text IS NULL OR "
                                 "status = $1) AND "
                                 "($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR "
                                 "(created_at, id) < "
                                 "(SELECT created_at, id FROM approval.approval_tickets WHERE id = "
                                 "$3)) ORDER BY "
                                 "created_at DESC, id DESC LIMIT $4::int",
               4, p, limit);
    db_release(app->db, c);
}

static void get_ticket(http_request *req, void *ud)
{
    appr_app *app = ud;
    db_conn *c = db_acquire(app->db, 2000, NULL, 0);
    if (!c)
        return unavailable(req);
    int found = 0;
    char err[UTIL_ERRLEN];
    cJSON *t = tkt_get_json(c, http_param(req, "id"), 1, &found, err, sizeof err);
    db_release(app->db, c);
    if (!t && found)
        return unavailable(req);
    if (!t)
        return http_reply_error(req, 404, "not_found", "no such ticket", NULL);
    http_reply_ok(req, 200, t);
}

static void vote(http_request *req, appr_app *app, const char *decision)
{
    cJSON *body = http_require_json(req);
    if (!body)
        return;
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return bad(req, "body must be an object");
    }
    tkt_vote_req v = {
        .ticket_id = http_param(req, "id"),
        .decision = decision,
        .reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "reason")),
        .user = http_header(req, "X-Paimon-User"),
        .role = http_header(req, "X-Paimon-Role"),
        .wallet = http_header(req, "X-Paimon-Wallet"),
        .nonce = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "nonce")),
        .deadline = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "deadline")),
        .signature = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "signature")),
        .now_ms = util_now_ms()};
    char msg[200];
    cJSON *t = NULL;
    tkt_status st = tkt_vote(app, &v, &t, msg, sizeof msg);
    cJSON_Delete(body);
    switch (st) {
    case TKT_OK:
        http_reply_ok(req, 200, t);
        return;
    case TKT_BAD_REQUEST:
        http_reply_error(req, 400, "invalid_request", msg, NULL);
        break;
    case TKT_BAD_SIGNATURE:
        http_reply_error(req, 401, "invalid_signature", msg, NULL);
        break;
    case TKT_FORBIDDEN:
        http_reply_error(req, 403, "forbidden", msg, NULL);
        break;
    case TKT_NOT_FOUND:
        http_reply_error(req, 404, "not_found", msg, NULL);
        break;
    case TKT_CONFLICT:
        http_reply_error(req, 409, "conflict", msg, NULL);
        break;
    default:
        http_reply_error(req, 503, "unavailable", msg, NULL);
        break;
    }
    cJSON_Delete(t);
}

static void approve(http_request *req, void *ud)
{
    vote(req, ud, "approve");
}

static void reject(http_request *req, void *ud)
{
    vote(req, ud, "reject");
}

static void get_policies(http_request *req, void *ud)
{
    appr_app *app = ud;
    db_conn *c = db_acquire(app->db, 2000, NULL, 0);
    if (!c)
        return unavailable(req);
    pol_policy p;
    char err[UTIL_ERRLEN];
    int rc = pol_load(c, &p, err, sizeof err);
    db_release(app->db, c);
    if (rc != 0)
        return unavailable(req);
    http_reply_ok(req, 200, pol_to_json(&p));
}

/* The keys of the signed-operation envelope (libcommon/opsig.h), not policy keys. */
static int sig_key(const char *k)
{
    return !strcmp(k, "nonce") || !strcmp(k, "deadline") || !strcmp(k, "signature");
}

typedef struct put_ctx {
    const cJSON *body;
    const char *user;
    const opsig_op *op;
    int st; /* opsig status of the nonce claim */
    pol_policy result;
    char msg[200];
    int invalid;
} put_ctx;

static int put_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    put_ctx *x = ud;
    x->invalid = 0;
    x->st = opsig_claim(tx, "approval", x->op, x->msg, sizeof x->msg);
    if (x->st != 0)
        return util_err(err, errlen, "%s", x->msg);
    pol_policy p;
    if (pol_load(tx, &p, err, errlen) != 0)
        return -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, x->body)
    {
        if (sig_key(it->string))
            continue;
        if (!cJSON_IsString(it) ||
            pol_set(&p, it->string, it->valuestring, x->msg, sizeof x->msg) != 0) {
            if (!cJSON_IsString(it))
                snprintf(x->msg, sizeof x->msg, "%.60s: value must be a decimal string",
                         it->string);
            x->invalid = 1;
            return util_err(err, errlen, "%s", x->msg);
        }
        const char *q[3] = {it->string, it->valuestring, x->user};
        PGresult *r = db_query_prepared(
            tx, "api_pol_put",
            "INSERT INTO approval.approval_policies (key, value, updated_at, updated_by) VALUES "
            "($1, $2, now(), $3) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
            "updated_at = now(), updated_by = EXCLUDED.updated_by",
            3, q, err, errlen);
        if (!r)
            return -1;
        PQclear(r);
        r = db_query_prepared(tx, "api_pol_rec",
                              "INSERT INTO approval.approval_records (action, actor, detail) "
                              "VALUES ('policy_changed', $3, jsonb_build_object('key', $1::text, "
                              "'value', $2::text))",
                              3, q, err, errlen);
        if (!r)
            return -1;
        PQclear(r);
    }
    x->result = p;
    return 0;
}

static void put_policies(http_request *req, void *ud)
{
    appr_app *app = ud;
    const char *user = http_header(req, "X-Paimon-User");
    if (!user || !*user || strlen(user) > 128 ||
        pol_role_rank(http_header(req, "X-Paimon-Role")) < pol_role_rank("admin"))
        return http_reply_error(req, 403, "forbidden", "policies need the admin role", NULL);
    cJSON *body = http_require_json(req);
    if (!body)
        return;
    int keys = 0;
    const cJSON *it;
    if (cJSON_IsObject(body))
        cJSON_ArrayForEach(it, body) keys += !sig_key(it->string);
    if (!cJSON_IsObject(body) || keys == 0) {
        cJSON_Delete(body);
        return bad(req, "body must be a non-empty object of key: value");
    }
    /* a signed "Operation" by a wallet holding ADMIN_ROLE (libcommon/opsig.h) */
    static const char *const roles[] = {"ADMIN_ROLE", NULL};
    opsig_req o = {.action = "approval.policies.update",
                   .target = "",
                   .body = body,
                   .wallet = http_header(req, "X-Paimon-Wallet"),
                   .chain_id = app->chain_id,
                   .vault = app->vault,
                   .now_ms = util_now_ms(),
                   .roles = roles,
                   .rpc = app->rpc,
                   .vault_abi = app->abi};
    opsig_op op;
    char msg[200];
    int st = opsig_verify(&o, &op, msg, sizeof msg);
    if (st != 0) {
        cJSON_Delete(body);
        return http_reply_error(req, st, opsig_code(st), msg, NULL);
    }
    put_ctx x = {.body = body, .user = user, .op = &op};
    char err[UTIL_ERRLEN];
    int rc = db_tx(app->db, put_tx, &x, err, sizeof err);
    cJSON_Delete(body);
    if (rc != 0) {
        if (x.st != 0)
            return http_reply_error(req, x.st, opsig_code(x.st), x.msg, NULL);
        if (x.invalid)
            return bad(req, x.msg);
        return unavailable(req);
    }
    http_reply_ok(req, 200, pol_to_json(&x.result));
}

int api_register(http_server *s, appr_app *app)
{
    int rc = 0;
    rc |= http_route(s, "GET", "/v1/redemptions", list_redemptions, app);
    rc |= http_route(s, "GET", "/v1/redemptions/forecast", get_forecast, app);
    rc |= http_route(s, "GET", "/v1/redemptions/:id", get_redemption, app);
    rc |= http_route(s, "GET", "/v1/tickets", list_tickets, app);
    rc |= http_route(s, "GET", "/v1/tickets/:id", get_ticket, app);
    rc |= http_route(s, "POST", "/v1/tickets/:id/approve", approve, app);
    rc |= http_route(s, "POST", "/v1/tickets/:id/reject", reject, app);
    rc |= http_route(s, "GET", "/v1/policies", get_policies, app);
    rc |= http_route(s, "PUT", "/v1/policies", put_policies, app);
    return rc ? -1 : 0;
}
