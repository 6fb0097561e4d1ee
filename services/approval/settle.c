/* settle: settlement and forecast (see settle.h). */
#include "settle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "envelope.h"
#include "hex.h"
#include "outbox.h"
#include "outmsg.h"
#include "policy.h"
#include "util.h"

int stl_l1_balance(const appr_app *app, money_u256 *out, char *err, size_t errlen)
{
    const abi_fn *fn = abi_contract_fn(app->abi, "l1Balance");
    if (!fn || !app->rpc)
        return util_err(err, errlen, "no chain access for l1Balance");
    char data[HEX_STRLEN(ABI_SELECTOR_LEN)];
    hex_encode(fn->selector, ABI_SELECTOR_LEN, 1, data, sizeof data);
    uint8_t *res = NULL;
    size_t len = 0;
    rpc_error e;
    rpc_error_init(&e);
    if (rpc_eth_call(app->rpc, app->vault, data, RPC_BLOCK_LATEST, &res, &len, &e) != 0) {
        util_err(err, errlen, "l1Balance: %s", e.message);
        rpc_error_clear(&e);
        return -1;
    }
    if (len != 32) {
        free(res);
        return util_err(err, errlen, "l1Balance: %zu bytes returned", len);
    }
    money_from_be32(out, res);
    free(res);
    return 0;
}

int stl_chain_now_ms(const appr_app *app, int64_t *out, char *err, size_t errlen)
{
    rpc_header h;
    int rc = rpc_get_block_header(app->rpc, RPC_BLOCK_LATEST, &h, err, errlen);
    if (rc != 0)
        return rc < 0 ? -1 : util_err(err, errlen, "no latest block");
    *out = (int64_t)h.timestamp * 1000;
    return 0;
}

static int liquidity_request(db_conn *tx, const char *id, const char *needed, int64_t by_ms,
                             const char *l1, const char *reason, char *err, size_t errlen)
{
    char by[32];
    envelope_format_ts(by_ms, by);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "needed", needed);
    cJSON_AddStringToObject(p, "by", by);
    cJSON_AddStringToObject(p, "l1_balance", l1);
    cJSON_AddStringToObject(p, "reason", reason);
    if (out_enqueue(tx, STL_TOPIC_LIQUIDITY, BUS_HIGH, id, "liquidity.request", p, err, errlen))
        return -1;
    char msg[400], key[120];
    snprintf(msg, sizeof msg, "L1 (%s) will not cover %s due by %s; liquidity requested", l1,
             needed, by);
    snprintf(key, sizeof key, "approval.liquidity:%.10s", by);
    cJSON *labels = cJSON_CreateObject();
    cJSON_AddStringToObject(labels, "needed", needed);
    cJSON_AddStringToObject(labels, "by", by);
    return out_alert(tx, "warning", "approval.liquidity", "Settlement liquidity short", msg, key,
                     labels, err, errlen);
}

typedef struct settle_ctx {
    const appr_app *app;
    int64_t now_ms;
    money_u256 l1;
    int queued, waiting;
} settle_ctx;

static int settle_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    settle_ctx *x = ud;
    x->queued = x->waiting = 0;
    /* A settlement the chain refused goes back in line (with a fresh key). */
    if (db_exec_prepared(
            tx, "stl_requeue",
            "UPDATE approval.redemption_requests r SET settle_state = 'none', updated_at = "
            "now() WHERE settle_state = 'queued' AND status = 'approved' AND EXISTS (SELECT 1 "
            "FROM approval.transactions t WHERE t.idempotency_key = 'settle:' || r.id || ':' || "
            "r.settle_attempts AND t.status IN ('failed', 'reverted'))",
            0, NULL, err, errlen) != 0)
        return -1;
    PGresult *r = db_query_prepared(tx, "stl_reserved",
                                    "SELECT COALESCE(sum(net_assets), 0)::text FROM "
                                    "approval.redemption_requests WHERE status = 'approved' AND "
                                    "settle_state = 'queued'",
                                    0, NULL, err, errlen);
    if (!r)
        return -1;
    money_u256 reserved, avail;
    int bad = money_from_dec(&reserved, PQgetvalue(r, 0, 0), err, errlen);
    PQclear(r);
    if (bad)
        return -1;
    if (money_sub(&avail, &x->l1, &reserved) != 0)
        money_zero(&avail);
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)x->now_ms);
    const char *p[1] = {now};
    r = db_query_prepared(tx, "stl_due",
                          "SELECT id, request_id::text, net_assets::text, settle_state, "
                          "settle_attempts + 1, (extract(epoch FROM due_at) * 1000)::bigint FROM "
                          "approval.redemption_requests WHERE status = 'approved' AND "
                          "settle_state IN ('none', 'waiting_liquidity') AND due_at <= "
                          "to_timestamp($1::bigint / 1000.0) AND chain_settle_at <= "
                          "to_timestamp($1::bigint / 1000.0) ORDER BY due_at, id LIMIT 200 FOR "
                          "UPDATE SKIP LOCKED",
                          1, p, err, errlen);
    if (!r)
        return -1;
    const abi_fn *fn = abi_contract_fn(x->app->abi, "settleRedemption");
    int rc = fn ? 0 : util_err(err, errlen, "vault ABI lacks settleRedemption");
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        const char *rid = PQgetvalue(r, i, 0), *net_s = PQgetvalue(r, i, 2);
        money_u256 net;
        if (money_from_dec(&net, net_s, err, errlen) != 0) {
            rc = -1;
            break;
        }
        if (money_cmp(&net, &avail) <= 0) {
            money_sub(&avail, &avail, &net);
            cJSON *args = cJSON_CreateArray();
            cJSON_AddItemToArray(args, cJSON_CreateString(PQgetvalue(r, i, 1)));
            uint8_t *data = NULL;
            size_t len = 0;
            rc = abi_fn_encode_call(fn, args, &data, &len, err, errlen);
            cJSON_Delete(args);
            if (rc != 0)
                break;
            char key[OUTBOX_MAX_KEY];
            snprintf(key, sizeof key, "settle:%s:%s", rid, PQgetvalue(r, i, 4));
            outbox_req req = {.idempotency_key = key,
                              .chain_id = x->app->chain_id,
                              .from = x->app->operator,
                              .to = x->app->vault,
                              .data = data,
                              .data_len = len,
                              .purpose = "settleRedemption"};
            rc = outbox_enqueue(tx, APPR_SCHEMA, &req, err, errlen) < 0 ? -1 : 0;
            free(data);
            const char *u[2] = {rid, key};
            if (rc == 0)
                rc = db_exec_prepared(
                    tx, "stl_queued",
                    "UPDATE approval.redemption_requests SET settle_state = 'queued', "
                    "settle_attempts = settle_attempts + 1, updated_at = now() WHERE id "
                    "= $1",
                    1, u, err, errlen);
            if (rc == 0)
                rc = db_exec_prepared(
                    tx, "stl_rec",
                    "INSERT INTO approval.approval_records (redemption_id, action, actor, "
                    "detail) VALUES ($1, 'settle_enqueued', 'policy', "
                    "jsonb_build_object('idempotency_key', $2::text))",
                    2, u, err, errlen);
            x->queued++;
        } else {
            x->waiting++;
            if (strcmp(PQgetvalue(r, i, 3), "waiting_liquidity") == 0)
                continue; /* already asked */
            const char *u[1] = {rid};
            rc = db_exec_prepared(tx, "stl_wait",
                                  "UPDATE approval.redemption_requests SET settle_state = "
                                  "'waiting_liquidity', updated_at = now() WHERE id = $1",
                                  1, u, err, errlen);
            if (rc == 0)
                rc = db_exec_prepared(
                    tx, "stl_wait_rec",
                    "INSERT INTO approval.approval_records (redemption_id, action, actor) "
                    "VALUES ($1, 'settle_waiting_liquidity', 'policy')",
                    1, u, err, errlen);
            char id[200], l1s[MONEY_DEC_MAX];
            money_to_dec(&x->l1, l1s, sizeof l1s);
            snprintf(id, sizeof id, "approval:liquidity:%s", rid);
            if (rc == 0)
                rc = liquidity_request(tx, id, net_s, x->now_ms, l1s,
                                       "a due redemption is waiting for L1", err, errlen);
        }
    }
    PQclear(r);
    return rc;
}

int stl_settle(const appr_app *app, int64_t now_ms, const money_u256 *l1, int *queued, int *waiting,
               char *err, size_t errlen)
{
    settle_ctx x = {.app = app, .now_ms = now_ms, .l1 = *l1};
    if (db_tx(app->db, settle_tx, &x, err, errlen) != 0)
        return -1;
    if (queued)
        *queued = x.queued;
    if (waiting)
        *waiting = x.waiting;
    return 0;
}

/* ------------------------------------------------------------------ forecast */

typedef struct fc_ctx {
    const appr_app *app;
    int64_t now_ms;
    money_u256 l1;
    int short_day;
} fc_ctx;

static int forecast_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    fc_ctx *x = ud;
    pol_policy pol;
    if (pol_load(tx, &pol, err, errlen) != 0)
        return -1;
    int days = (int)pol.forecast_days;
    PGresult *r = db_query_prepared(
        tx, "stl_fc_items",
        "SELECT (extract(epoch FROM GREATEST(due_at, chain_settle_at)) * 1000)::bigint, "
        "net_assets::text FROM approval.redemption_requests WHERE status IN ('pending', "
        "'approved') AND settle_state <> 'done'",
        0, NULL, err, errlen);
    if (!r)
        return -1;
    size_t n = (size_t)PQntuples(r);
    pol_due *items = util_calloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        items[i].due_ms = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        money_from_dec(&items[i].amount, PQgetvalue(r, (int)i, 1), NULL, 0);
    }
    PQclear(r);
    pol_day *out = util_calloc((size_t)days, sizeof *out);
    int first = pol_forecast(items, n, &x->l1, x->now_ms, days, out);
    free(items);
    if (first < 0) {
        free(out);
        return util_err(err, errlen, "forecast overflow");
    }
    x->short_day = first;
    /* Whether this shortfall is news: the previous forecast for that day said otherwise. */
    int news = 0;
    char day[32], sf[MONEY_DEC_MAX];
    if (first < days) {
        envelope_format_ts(out[first].day_ms, day);
        money_to_dec(&out[first].shortfall, sf, sizeof sf);
        const char *q[2] = {day, sf};
        r = db_query_prepared(tx, "stl_fc_prev",
                              "SELECT 1 FROM approval.settlement_forecast WHERE day = "
                              "($1::timestamptz AT TIME ZONE 'UTC')::date AND shortfall = "
                              "$2::numeric",
                              2, q, err, errlen);
        if (!r) {
            free(out);
            return -1;
        }
        news = PQntuples(r) == 0;
        PQclear(r);
    }
    int rc = db_exec_prepared(tx, "stl_fc_clear", "DELETE FROM approval.settlement_forecast", 0,
                              NULL, err, errlen);
    char l1s[MONEY_DEC_MAX];
    money_to_dec(&x->l1, l1s, sizeof l1s);
    for (int d = 0; rc == 0 && d < days; d++) {
        char ts[32], cnt[24], due[MONEY_DEC_MAX], cum[MONEY_DEC_MAX], sh[MONEY_DEC_MAX];
        envelope_format_ts(out[d].day_ms, ts);
        snprintf(cnt, sizeof cnt, "%lld", (long long)out[d].count);
        money_to_dec(&out[d].due, due, sizeof due);
        money_to_dec(&out[d].cumulative, cum, sizeof cum);
        money_to_dec(&out[d].shortfall, sh, sizeof sh);
        const char *p[6] = {ts, cnt, due, cum, l1s, sh};
        rc = db_exec_prepared(
            tx, "stl_fc_put",
            "INSERT INTO approval.settlement_forecast (day, due_count, due_assets, "
            "cumulative, l1_balance, shortfall) VALUES (($1::timestamptz AT TIME ZONE "
            "'UTC')::date, $2::int, $3::numeric, $4::numeric, $5::numeric, $6::numeric)",
            6, p, err, errlen);
    }
    if (rc == 0 && first < days && news) {
        char id[200];
        snprintf(id, sizeof id, "approval:liquidity:forecast:%.10s:%s", day, sf);
        rc = liquidity_request(tx, id, sf, out[first].day_ms, l1s,
                               "the settlement forecast exceeds L1", err, errlen);
    }
    free(out);
    return rc;
}

int stl_forecast(const appr_app *app, int64_t now_ms, const money_u256 *l1, int *short_day,
                 char *err, size_t errlen)
{
    fc_ctx x = {.app = app, .now_ms = now_ms, .l1 = *l1};
    if (db_tx(app->db, forecast_tx, &x, err, errlen) != 0)
        return -1;
    if (short_day)
        *short_day = x.short_day;
    return 0;
}
