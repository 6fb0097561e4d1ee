/* api: internal HTTP handlers of the rebalance service (see api.h). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "log.h"
#include "opsig.h"
#include "store.h"
#include "util.h"

static void internal(http_request *req, const char *what, const char *err)
{
    log_warn(what, "error", err);
    http_reply_error(req, 503, "unavailable", what, NULL);
}

/* Trigger and asset changes are signed "Operation"s (libcommon/opsig.h) by a wallet
 * holding REBALANCER_ROLE or OPERATOR_ROLE. 0, or the error was answered. */
static const char *const RB_ROLES[] = {"REBALANCER_ROLE", "OPERATOR_ROLE", NULL};

static int verify_op(http_request *req, rb_app *app, const char *action, const char *target,
                     const cJSON *body, opsig_op *op)
{
    opsig_req o = {.action = action,
                   .target = target,
                   .body = body,
                   .wallet = http_header(req, "X-Paimon-Wallet"),
                   .chain_id = app->chain_id,
                   .vault = app->vault,
                   .now_ms = util_now_ms(),
                   .roles = RB_ROLES,
                   .rpc = app->rpc,
                   .vault_abi = app->vault_abi};
    char msg[200];
    int st = opsig_verify(&o, op, msg, sizeof msg);
    if (st != 0)
        http_reply_error(req, st, opsig_code(st), msg, NULL);
    return st;
}

/* Who asked: the gateway's user header. */
static const char *requester(http_request *req)
{
    const char *u = http_header(req, "X-Paimon-User");
    return u && *u && strlen(u) <= 128 ? u : NULL;
}

/* Runs a read query and returns its rows as JSON: each row's first column must be jsonb. */
static cJSON *rows_json(rb_app *app, const char *name, const char *sql, int n, const char *const *p,
                        char *err, size_t errlen)
{
    db_conn *c = db_acquire(app->db, 3000, err, errlen);
    if (!c)
        return NULL;
    PGresult *r = db_query_prepared(c, name, sql, n, p, err, errlen);
    db_release(app->db, c);
    if (!r)
        return NULL;
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < PQntuples(r); i++) {
        cJSON *row = cJSON_Parse(PQgetvalue(r, i, 0));
        cJSON_AddItemToArray(arr, row ? row : cJSON_CreateNull());
    }
    PQclear(r);
    return arr;
}

static void h_status(http_request *req, void *ud)
{
    rb_app *app = ud;
    char err[UTIL_ERRLEN];
    cJSON *alloc = NULL;
    if (exec_allocation(app, &alloc, err, sizeof err) != 0)
        return internal(req, "cannot read the vault", err);
    cJSON *active = rows_json(app, "rb_api_active",
                              "SELECT jsonb_build_object('id', id, 'status', status, 'traded', "
                              "traded::text, 'created_at', created_at) FROM "
                              "rebalance.rebalance_history WHERE status IN ('awaiting_approval', "
                              "'approved', 'executing')",
                              0, NULL, err, sizeof err);
    cJSON *pending = rows_json(app, "rb_api_pending",
                               "SELECT jsonb_build_object('id', id, 'kind', kind, 'created_at', "
                               "created_at) FROM rebalance.rebalance_triggers WHERE consumed_by IS "
                               "NULL ORDER BY id",
                               0, NULL, err, sizeof err);
    if (!active || !pending) {
        cJSON_Delete(alloc);
        cJSON_Delete(active);
        cJSON_Delete(pending);
        return internal(req, "database unavailable", err);
    }
    cJSON *a0 = cJSON_DetachItemFromArray(active, 0);
    cJSON_Delete(active);
    cJSON_AddItemToObject(alloc, "active_plan", a0 ? a0 : cJSON_CreateNull());
    cJSON_AddItemToObject(alloc, "pending_triggers", pending);
    http_reply_ok(req, 200, alloc);
}

static void h_preview(http_request *req, void *ud)
{
    rb_app *app = ud;
    char err[UTIL_ERRLEN];
    money_u256 need;
    int has_need = 0;
    size_t blen = 0;
    http_body(req, &blen);
    if (blen > 0) {
        cJSON *b = http_require_json(req);
        if (!b)
            return;
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(b, "l1_needed"));
        if (s) {
            if (money_from_dec(&need, s, err, sizeof err) != 0) {
                cJSON_Delete(b);
                return http_reply_error(req, 400, "invalid_request",
                                        "l1_needed must be a decimal amount in base units", NULL);
            }
            has_need = 1;
        }
        cJSON_Delete(b);
    }
    cJSON *out = NULL;
    if (exec_preview(app, has_need ? &need : NULL, &out, err, sizeof err) != 0)
        return internal(req, "cannot build a preview", err);
    http_reply_ok(req, 200, out);
}

typedef struct trig_ctx {
    const char *reason;
    const char *who;
    const opsig_op *op;
    int added;
    int st;
    char msg[200];
} trig_ctx;

static int trig_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    trig_ctx *x = ud;
    x->st = opsig_claim(tx, "rebalance", x->op, x->msg, sizeof x->msg);
    if (x->st != 0)
        return util_err(err, errlen, "%s", x->msg);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "reason", x->reason);
    if (x->who)
        cJSON_AddStringToObject(d, "requested_by", x->who);
    cJSON_AddStringToObject(d, "signed_by", x->op->wallet_hex);
    x->added = store_trigger_add(tx, "manual", d, NULL, NULL, 0, err, errlen);
    return x->added < 0 ? -1 : 0;
}

static void h_trigger(http_request *req, void *ud)
{
    rb_app *app = ud;
    char err[UTIL_ERRLEN], reason[201] = "manual";
    size_t blen = 0;
    http_body(req, &blen);
    if (blen == 0)
        return http_reply_error(req, 400, "invalid_request",
                                "a signed body (nonce, deadline, signature) is required", NULL);
    cJSON *b = http_require_json(req);
    if (!b)
        return;
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(b, "reason"));
    if (s && strlen(s) > 200) {
        cJSON_Delete(b);
        return http_reply_error(req, 400, "invalid_request", "reason is too long", NULL);
    }
    if (s)
        util_strlcpy(reason, s, sizeof reason);
    opsig_op op;
    int st = verify_op(req, app, "rebalance.trigger", "", b, &op);
    cJSON_Delete(b);
    if (st != 0)
        return;
    trig_ctx x = {.reason = reason, .who = requester(req), .op = &op};
    if (db_tx(app->db, trig_tx, &x, err, sizeof err) != 0) {
        if (x.st != 0)
            return http_reply_error(req, x.st, opsig_code(x.st), x.msg, NULL);
        return internal(req, "database unavailable", err);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "queued", 1);
    http_reply_ok(req, 202, o);
}

static void h_history(http_request *req, void *ud)
{
    rb_app *app = ud;
    char err[UTIL_ERRLEN], lim[8] = "20";
    const char *l = http_query(req, "limit"), *cursor = http_query(req, "cursor");
    if (l) {
        int v = atoi(l);
        if (v < 1 || v > 100 || strspn(l, "0123456789") != strlen(l))
            return http_reply_error(req, 400, "invalid_request", "limit must be 1..100", NULL);
        snprintf(lim, sizeof lim, "%d", v);
    }
    if (cursor && strlen(cursor) > 64)
        return http_reply_error(req, 400, "invalid_request", "bad cursor", NULL);
    const char *p[2] = {lim, cursor};
    cJSON *rows = rows_json(
        app, "rb_api_history",
        "SELECT jsonb_build_object('id', h.id, 'status', h.status, 'block_number', "
        "h.block_number, 'traded', h.traded::text, 'nav', h.nav::text, 'triggers', h.triggers, "
        "'legs', jsonb_array_length(h.plan->'legs'), 'error', h.error, 'created_at', "
        "h.created_at, 'finished_at', h.finished_at) FROM rebalance.rebalance_history h WHERE "
        "$2::text IS NULL OR (h.created_at, h.id) < (SELECT created_at, id FROM "
        "rebalance.rebalance_history WHERE id = $2::text) ORDER BY h.created_at DESC, h.id DESC "
        "LIMIT "
        "$1::int",
        2, p, err, sizeof err);
    if (!rows)
        return internal(req, "database unavailable", err);
    cJSON *o = cJSON_CreateObject();
    int n = cJSON_GetArraySize(rows);
    const char *next = NULL;
    if (n == atoi(lim))
        next = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, n - 1), "id"));
    if (next)
        cJSON_AddStringToObject(o, "next_cursor", next);
    else
        cJSON_AddNullToObject(o, "next_cursor");
    cJSON_AddItemToObject(o, "items", rows);
    http_reply_ok(req, 200, o);
}

static void h_plan(http_request *req, void *ud)
{
    rb_app *app = ud;
    char err[UTIL_ERRLEN];
    const char *id = http_param(req, "id");
    if (!id || strlen(id) > 64)
        return http_reply_error(req, 404, "not_found", "no such plan", NULL);
    const char *p[1] = {id};
    cJSON *rows = rows_json(
        app, "rb_api_plan",
        "SELECT to_jsonb(h) || jsonb_build_object('traded', h.traded::text, 'nav', h.nav::text, "
        "'legs', COALESCE((SELECT jsonb_agg(jsonb_build_object('seq', l.seq, 'token', l.token, "
        "'side', l.side, 'amount_in', l.amount_in::text, 'expected_out', l.expected_out::text, "
        "'min_out', l.min_out::text, 'value', l.value::text, 'simulated_out', "
        "l.simulated_out::text, 'status', l.status, 'tx_hash', COALESCE(l.tx_hash, t.tx_hash), "
        "'tx_status', t.status, 'error', l.error) ORDER BY l.seq) FROM rebalance.rebalance_legs "
        "l LEFT JOIN rebalance.transactions t ON t.idempotency_key = l.idempotency_key WHERE "
        "l.plan_id = h.id), '[]')) FROM rebalance.rebalance_history h WHERE h.id = $1",
        1, p, err, sizeof err);
    if (!rows)
        return internal(req, "database unavailable", err);
    cJSON *one = cJSON_DetachItemFromArray(rows, 0);
    cJSON_Delete(rows);
    if (!one)
        return http_reply_error(req, 404, "not_found", "no such plan", NULL);
    http_reply_ok(req, 200, one);
}

static void h_assets(http_request *req, void *ud)
{
    rb_app *app = ud;
    char err[UTIL_ERRLEN];
    cJSON *rows =
        rows_json(app, "rb_api_assets",
                  "SELECT to_jsonb(a) || jsonb_build_object('min_trade', a.min_trade::text) FROM "
                  "rebalance.asset_configs a ORDER BY token",
                  0, NULL, err, sizeof err);
    if (!rows)
        return internal(req, "database unavailable", err);
    http_reply_ok(req, 200, rows);
}

typedef struct asset_ctx {
    const char *const *p; /* token, min_trade, slippage_bps, enabled, updated_by */
    const opsig_op *op;
    cJSON *row;
    int st;
    char msg[200];
} asset_ctx;

static int asset_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    asset_ctx *x = ud;
    x->st = opsig_claim(tx, "rebalance", x->op, x->msg, sizeof x->msg);
    if (x->st != 0)
        return util_err(err, errlen, "%s", x->msg);
    PGresult *r = db_query_prepared(
        tx, "rb_api_asset_put",
        "UPDATE rebalance.asset_configs SET min_trade = COALESCE($2::numeric, min_trade), "
        "slippage_bps = COALESCE($3::int, slippage_bps), enabled = COALESCE($4::bool, enabled), "
        "updated_by = $5, updated_at = now() WHERE token = $1 RETURNING (to_jsonb(asset_configs) "
        "|| jsonb_build_object('min_trade', min_trade::text))::text",
        5, x->p, err, errlen);
    if (!r)
        return -1;
    if (PQntuples(r) == 1)
        x->row = cJSON_Parse(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!x->row) {
        /* unknown asset: roll the nonce back with the (empty) change */
        x->st = 404;
        return util_err(err, errlen, "no such asset");
    }
    return 0;
}

static void h_asset_put(http_request *req, void *ud)
{
    rb_app *app = ud;
    char err[UTIL_ERRLEN];
    const char *token = http_param(req, "token");
    char tok[43];
    if (!token || strlen(token) != 42)
        return http_reply_error(req, 400, "invalid_request", "token must be an address", NULL);
    util_strlcpy(tok, token, sizeof tok);
    for (char *c = tok; *c; c++)
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c + 32);
    cJSON *b = http_require_json(req);
    if (!b)
        return;
    const cJSON *mt = cJSON_GetObjectItem(b, "min_trade"),
                *sl = cJSON_GetObjectItem(b, "slippage_bps"),
                *en = cJSON_GetObjectItem(b, "enabled");
    money_u256 v;
    char mts[MONEY_DEC_MAX] = "", sls[16] = "", ens[2] = "";
    int bad = !cJSON_IsObject(b) || (!mt && !sl && !en);
    if (mt && (!cJSON_IsString(mt) || money_from_dec(&v, mt->valuestring, NULL, 0) != 0))
        bad = 1;
    else if (mt)
        money_to_dec(&v, mts, sizeof mts);
    if (sl && (!cJSON_IsNumber(sl) || sl->valuedouble < 0 || sl->valuedouble > 5000 ||
               sl->valuedouble != (double)(int)sl->valuedouble))
        bad = 1;
    else if (sl)
        snprintf(sls, sizeof sls, "%d", sl->valueint);
    if (en && !cJSON_IsBool(en))
        bad = 1;
    else if (en)
        util_strlcpy(ens, cJSON_IsTrue(en) ? "t" : "f", sizeof ens);
    if (bad) {
        cJSON_Delete(b);
        return http_reply_error(req, 400, "invalid_request",
                                "expected min_trade (decimal base units), slippage_bps (0..5000) "
                                "and/or enabled (bool)",
                                NULL);
    }
    opsig_op op;
    int st = verify_op(req, app, "rebalance.asset.update", tok, b, &op);
    cJSON_Delete(b);
    if (st != 0)
        return;
    const char *who = requester(req);
    const char *p[5] = {tok, mts[0] ? mts : NULL, sls[0] ? sls : NULL, ens[0] ? ens : NULL,
                        who ? who : op.wallet_hex};
    asset_ctx x = {.p = p, .op = &op};
    if (db_tx(app->db, asset_tx, &x, err, sizeof err) != 0) {
        cJSON_Delete(x.row);
        if (x.st == 404)
            return http_reply_error(req, 404, "not_found", "no such asset", NULL);
        if (x.st != 0)
            return http_reply_error(req, x.st, opsig_code(x.st), x.msg, NULL);
        return internal(req, "database unavailable", err);
    }
    http_reply_ok(req, 200, x.row);
}

int api_register(http_server *s, rb_app *app)
{
    return http_route(s, "GET", "/v1/status", h_status, app) ||
                   http_route(s, "GET", "/v1/allocation", h_status, app) ||
                   http_route(s, "POST", "/v1/preview", h_preview, app) ||
                   http_route(s, "POST", "/v1/trigger", h_trigger, app) ||
                   http_route(s, "GET", "/v1/history", h_history, app) ||
                   http_route(s, "GET", "/v1/plans/:id", h_plan, app) ||
                   http_route(s, "GET", "/v1/assets", h_assets, app) ||
                   http_route(s, "PUT", "/v1/assets/:token", h_asset_put, app)
               ? -1
               : 0;
}
