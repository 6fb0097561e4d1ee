/* store: asset settings, triggers, the executor fence and outgoing messages (see store.h). */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "txmsg.h"
#include "util.h"

static PGresult *q(db_conn *c, const char *name, const char *sql, int n, const char *const *p,
                   char *err, size_t errlen)
{
    return db_query_prepared(c, name, sql, n, p, err, errlen);
}

static int exec_q(db_conn *c, const char *name, const char *sql, int n, const char *const *p,
                  char *err, size_t errlen)
{
    PGresult *r = q(c, name, sql, n, p, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

/* ------------------------------------------------------------------ assets */

int store_assets_sync(db_conn *tx, const vault_state *s, const money_u256 *default_min_trade,
                      uint32_t default_slippage_bps, char *err, size_t errlen)
{
    char mt[MONEY_DEC_MAX], sl[16], blk[24];
    money_to_dec(default_min_trade, mt, sizeof mt);
    snprintf(sl, sizeof sl, "%u", default_slippage_bps);
    snprintf(blk, sizeof blk, "%llu", (unsigned long long)s->block);
    cJSON *tokens = cJSON_CreateArray();
    for (size_t i = 0; i < s->n; i++) {
        const vault_asset *a = &s->assets[i];
        char tier[8], t[8], mn[8], mx[8];
        snprintf(tier, sizeof tier, "%d", a->tier);
        snprintf(t, sizeof t, "%u", a->target_bps);
        snprintf(mn, sizeof mn, "%u", a->min_bps);
        snprintf(mx, sizeof mx, "%u", a->max_bps);
        cJSON_AddItemToArray(tokens, cJSON_CreateString(a->token));
        if (a->tier != 2 && a->tier != 3)
            continue;
        const char *p[10] = {a->token, a->symbol, tier, t, mn, mx, a->feed, mt, sl, blk};
        /* A chain read at block B wins over events older than B; a newer event wins over it. */
        if (exec_q(
                tx, "rb_asset_sync",
                "INSERT INTO rebalance.asset_configs (token, symbol, tier, target_bps, min_bps, "
                "max_bps, price_feed, min_trade, slippage_bps, chain_block) VALUES ($1, $2, "
                "$3::smallint, $4::int, $5::int, $6::int, $7, $8::numeric, $9::int, $10::bigint) "
                "ON CONFLICT (token) DO UPDATE SET symbol = EXCLUDED.symbol, tier = "
                "EXCLUDED.tier, target_bps = EXCLUDED.target_bps, min_bps = EXCLUDED.min_bps, "
                "max_bps = EXCLUDED.max_bps, price_feed = EXCLUDED.price_feed, listed = true, "
                "chain_block = EXCLUDED.chain_block, chain_log = 0, updated_by = 'chain', "
                "updated_at = now() WHERE asset_configs.chain_block < EXCLUDED.chain_block",
                10, p, err, errlen) != 0) {
            cJSON_Delete(tokens);
            return -1;
        }
    }
    char *list = cJSON_PrintUnformatted(tokens);
    cJSON_Delete(tokens);
    const char *p[2] = {list, blk};
    int rc = exec_q(tx, "rb_asset_unlist",
                    "UPDATE rebalance.asset_configs SET listed = false, updated_at = now() WHERE "
                    "listed AND chain_block < $2::bigint AND NOT (token = ANY (SELECT "
                    "jsonb_array_elements_text($1::jsonb)))",
                    2, p, err, errlen);
    free(list);
    return rc;
}

int store_assets_load(db_conn *c, store_asset **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    PGresult *r = q(c, "rb_asset_load",
                    "SELECT token, min_trade::text, slippage_bps, enabled AND listed FROM "
                    "rebalance.asset_configs ORDER BY token",
                    0, NULL, err, errlen);
    if (!r)
        return -1;
    int rows = PQntuples(r);
    *out = util_calloc(rows ? (size_t)rows : 1, sizeof **out);
    for (int i = 0; i < rows; i++) {
        store_asset *a = &(*out)[i];
        util_strlcpy(a->token, PQgetvalue(r, i, 0), sizeof a->token);
        money_from_dec(&a->min_trade, PQgetvalue(r, i, 1), NULL, 0);
        a->slippage_bps = (uint32_t)atoi(PQgetvalue(r, i, 2));
        a->enabled = PQgetvalue(r, i, 3)[0] == 't';
    }
    *n = (size_t)rows;
    PQclear(r);
    return 0;
}

static const char *arg(const cJSON *payload, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(payload, "args"), name));
}

static int small_uint(const char *s, long max)
{
    if (!s || !*s || strlen(s) > 6)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    long v = atol(s);
    return v <= max ? (int)v : -1;
}

static int addr_ok(const char *s)
{
    if (!s || strlen(s) != 42 || s[0] != '0' || s[1] != 'x')
        return 0;
    for (const char *p = s + 2; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

int store_asset_event(db_conn *tx, const char *type, const cJSON *payload, char *err, size_t errlen)
{
    const char *token = arg(payload, "token");
    if (!addr_ok(token))
        return util_err(err, errlen, "%s: token is not a lowercase address", type);
    double bn = cJSON_GetNumberValue(cJSON_GetObjectItem(payload, "block_number"));
    double li = cJSON_GetNumberValue(cJSON_GetObjectItem(payload, "log_index"));
    if (!(bn >= 0) || !(li >= 0))
        return util_err(err, errlen, "%s: no block_number / log_index", type);
    char blk[24], lg[24];
    snprintf(blk, sizeof blk, "%.0f", bn);
    snprintf(lg, sizeof lg, "%.0f", li);
    int removed_comp = strstr(type, ".removed") != NULL;
    if (removed_comp) {
        /* A reorged asset event: the next plan's chain read restores the truth. */
        return 0;
    }
    if (strcmp(type, "chain.asset_removed") == 0) {
        const char *p[3] = {token, blk, lg};
        return exec_q(
            tx, "rb_asset_removed",
            "UPDATE rebalance.asset_configs SET listed = false, chain_block = $2::bigint, "
            "chain_log = $3::bigint, updated_by = 'chain', updated_at = now() WHERE "
            "token = $1 AND (chain_block, chain_log) < ($2::bigint, $3::bigint)",
            3, p, err, errlen);
    }
    int t = small_uint(arg(payload, "targetBps"), 10000),
        mn = small_uint(arg(payload, "minBps"), 10000),
        mx = small_uint(arg(payload, "maxBps"), 10000);
    if (t < 0 || mn < 0 || mx < 0 || mn > t || t > mx)
        return util_err(err, errlen, "%s: bad weights", type);
    char ts[8], mns[8], mxs[8];
    snprintf(ts, sizeof ts, "%d", t);
    snprintf(mns, sizeof mns, "%d", mn);
    snprintf(mxs, sizeof mxs, "%d", mx);
    if (strcmp(type, "chain.asset_target_changed") == 0) {
        const char *p[6] = {token, ts, mns, mxs, blk, lg};
        return exec_q(tx, "rb_asset_target",
                      "UPDATE rebalance.asset_configs SET target_bps = $2::int, min_bps = "
                      "$3::int, max_bps = $4::int, chain_block = $5::bigint, chain_log = "
                      "$6::bigint, updated_by = 'chain', updated_at = now() WHERE token = $1 AND "
                      "(chain_block, chain_log) < ($5::bigint, $6::bigint)",
                      6, p, err, errlen);
    }
    /* chain.asset_added */
    int tier = small_uint(arg(payload, "tier"), 3);
    const char *feed = arg(payload, "aggregator");
    if ((tier != 2 && tier != 3) || !addr_ok(feed))
        return util_err(err, errlen, "%s: bad tier or aggregator", type);
    char tr[8];
    snprintf(tr, sizeof tr, "%d", tier);
    const char *p[8] = {token, tr, ts, mns, mxs, feed, blk, lg};
    return exec_q(tx, "rb_asset_added",
                  "INSERT INTO rebalance.asset_configs (token, tier, target_bps, min_bps, max_bps, "
                  "price_feed, chain_block, chain_log) VALUES ($1, $2::smallint, $3::int, $4::int, "
                  "$5::int, $6, $7::bigint, $8::bigint) ON CONFLICT (token) DO UPDATE SET tier = "
                  "EXCLUDED.tier, target_bps = EXCLUDED.target_bps, min_bps = EXCLUDED.min_bps, "
                  "max_bps = EXCLUDED.max_bps, price_feed = EXCLUDED.price_feed, listed = true, "
                  "chain_block = EXCLUDED.chain_block, chain_log = EXCLUDED.chain_log, updated_by "
                  "= 'chain', updated_at = now() WHERE (asset_configs.chain_block, "
                  "asset_configs.chain_log) < (EXCLUDED.chain_block, EXCLUDED.chain_log)",
                  8, p, err, errlen);
}

/* ------------------------------------------------------------------ triggers, fence */

int store_trigger_add(db_conn *tx, const char *kind, cJSON *detail, const money_u256 *l1_needed,
                      const char *source_id, int only_if_none, char *err, size_t errlen)
{
    char *d = cJSON_PrintUnformatted(detail ? detail : cJSON_CreateObject());
    if (detail)
        cJSON_Delete(detail);
    char need[MONEY_DEC_MAX];
    if (l1_needed)
        money_to_dec(l1_needed, need, sizeof need);
    const char *p[5] = {kind, d, l1_needed ? need : NULL, source_id, only_if_none ? "t" : "f"};
    PGresult *r = q(tx, "rb_trigger_add",
                    "INSERT INTO rebalance.rebalance_triggers (kind, detail, l1_needed, source_id) "
                    "SELECT $1, $2::jsonb, $3::numeric, $4 WHERE NOT ($5::bool AND EXISTS (SELECT "
                    "1 FROM rebalance.rebalance_triggers WHERE consumed_by IS NULL AND kind = $1)) "
                    "ON CONFLICT (source_id) DO NOTHING RETURNING id",
                    5, p, err, errlen);
    free(d);
    if (!r)
        return -1;
    int added = PQntuples(r) == 1;
    PQclear(r);
    return added;
}

int store_fence(db_conn *tx, int64_t fence, char *err, size_t errlen)
{
    char f[24];
    snprintf(f, sizeof f, "%lld", (long long)fence);
    const char *p[1] = {f};
    PGresult *r = q(tx, "rb_fence",
                    "UPDATE rebalance.executor_fence SET last_fence = $1::bigint WHERE id = 1 AND "
                    "last_fence <= $1::bigint",
                    1, p, err, errlen);
    if (!r)
        return -1;
    int ok = atoi(PQcmdTuples(r)) == 1;
    PQclear(r);
    return ok;
}

/* ------------------------------------------------------------------ outgoing messages */

int store_out_enqueue(db_conn *tx, const char *topic, bus_priority prio, const char *id,
                      const char *type, cJSON *payload, char *err, size_t errlen)
{
    return txmsg_enqueue(tx, RB_SOURCE, RB_SOURCE, topic, prio, id, type, payload, err, errlen);
}

int store_out_alert(db_conn *tx, const char *severity, const char *title, const char *message,
                    const char *dedup_key, cJSON *labels, char *err, size_t errlen)
{
    txmsg_alert_spec a = {.severity = severity,
                          .category = "rebalance",
                          .title = title,
                          .message = message,
                          .dedup_key = dedup_key,
                          .labels = labels};
    return txmsg_alert(tx, RB_SOURCE, RB_SOURCE, &a, err, errlen);
}

int store_out_update(db_conn *tx, const char *plan_id, const char *status, char *err, size_t errlen)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "plan_id", plan_id);
    cJSON_AddStringToObject(p, "status", status);
    char trace[33], id[200];
    envelope_trace_new(trace);
    snprintf(id, sizeof id, "rebalance:%.100s:%.20s:%s", plan_id, status, trace);
    txmsg_sanitize_id(id);
    return store_out_enqueue(tx, "updates", BUS_NORMAL, id, "rebalance.updated", p, err, errlen);
}

int store_out_flush(db_pool *db, redisContext *rc, int max, char *err, size_t errlen)
{
    return txmsg_flush(db, RB_SOURCE, rc, max, err, errlen);
}
