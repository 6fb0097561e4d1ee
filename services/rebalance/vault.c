/* vault: pinned-block reads and plan simulation against the PaimonVault (see vault.h).
 * Every selector and decoding comes from the ABI JSON; chain answers are untrusted and
 * checked for shape before use. */
#include "vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "util.h"

/* ------------------------------------------------------------------ call helpers */

/* eth_call params [{from?, to, data}, block] for fn(args) on `to`; args taken (may be NULL). */
static cJSON *call_params(const abi_fn *fn, cJSON *args, const char *from, const char *to,
                          uint64_t block, char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    cJSON *a = args ? args : cJSON_CreateArray();
    int rc = abi_fn_encode_call(fn, a, &data, &len, err, errlen);
    cJSON_Delete(a);
    if (rc != 0)
        return NULL;
    char *hex = hex_encode_new(data, len, 1);
    free(data);
    cJSON *o = cJSON_CreateObject();
    if (from)
        cJSON_AddStringToObject(o, "from", from);
    cJSON_AddStringToObject(o, "to", to);
    cJSON_AddStringToObject(o, "data", hex);
    free(hex);
    char tag[RPC_BLOCK_TAG_MAX];
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, o);
    cJSON_AddItemToArray(p, cJSON_CreateString(rpc_block_tag((int64_t)block, tag)));
    return p;
}

static cJSON *one_addr(const char *addr)
{
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateString(addr));
    return a;
}

/* Decodes item's result with fn's outputs; NULL with err when it failed or is malformed. */
static cJSON *decode_item(const abi_fn *fn, rpc_batch_item *it, char *err, size_t errlen)
{
    if (!it->result || it->error.status != RPC_OK) {
        util_err(err, errlen, "%s: %s", fn->name, it->error.message);
        return NULL;
    }
    const char *hex = cJSON_GetStringValue(it->result);
    size_t len = 0;
    uint8_t *bytes = hex ? hex_decode_new(hex, &len, NULL, 0) : NULL;
    if (!bytes) {
        util_err(err, errlen, "%s: result is not hex", fn->name);
        return NULL;
    }
    cJSON *v = abi_fn_decode_result(fn, bytes, len, ABI_DECODE_LOWER_ADDR, err, errlen);
    free(bytes);
    return v;
}

static const char *item_str(const cJSON *arr, int i)
{
    return cJSON_GetStringValue(cJSON_GetArrayItem(arr, i));
}

static int dec_u256(const char *s, money_u256 *out)
{
    return s ? money_from_dec(out, s, NULL, 0) : -1;
}

static int dec_u32(const char *s, uint32_t max, uint32_t *out)
{
    money_u256 v;
    uint64_t x;
    if (dec_u256(s, &v) != 0 || money_to_u64(&v, &x) != 0 || x > max)
        return -1;
    *out = (uint32_t)x;
    return 0;
}

/* ------------------------------------------------------------------ read */

enum { R_ASSETS, R_L1, R_LIAB, R_PAUSED, R_EMERG, R_N };
enum { A_CFG, A_BAL, A_PRICE, A_DEC, A_SYM, A_N };

int vault_read(rb_app *app, int64_t block, vault_state *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    uint64_t bn;
    if (block < 0) {
        if (rpc_block_number(app->rpc, &bn, err, errlen) != 0)
            return -1;
    } else {
        bn = (uint64_t)block;
    }
    rpc_header h;
    if (rpc_get_block_header(app->rpc, (int64_t)bn, &h, err, errlen) != 0)
        return -1;
    out->block = bn;
    out->block_time = h.timestamp;

    static const char *const names[R_N] = {"getAssets", "l1Balance", "pendingRedemptionLiability",
                                           "paused", "emergencyMode"};
    const abi_fn *fns[R_N];
    rpc_batch_item b1[R_N];
    memset(b1, 0, sizeof b1);
    for (int i = 0; i < R_N; i++) {
        fns[i] = abi_contract_fn(app->vault_abi, names[i]);
        if (!fns[i])
            return util_err(err, errlen, "vault ABI lacks %s", names[i]);
        b1[i].method = "eth_call";
        b1[i].params = call_params(fns[i], NULL, NULL, app->vault, bn, err, errlen);
        if (!b1[i].params) {
            rpc_batch_items_clear(b1, R_N);
            for (int j = 0; j <= i; j++)
                cJSON_Delete(b1[j].params);
            return -1;
        }
    }
    int rc = -1;
    cJSON *v[R_N] = {0};
    rpc_batch_item *b2 = NULL;
    size_t nb2 = 0;
    if (rpc_batch(app->rpc, b1, R_N, 0, err, errlen) != 0)
        goto out;
    for (int i = 0; i < R_N; i++)
        if (!(v[i] = decode_item(fns[i], &b1[i], err, errlen)))
            goto out;
    cJSON *list = cJSON_GetArrayItem(v[R_ASSETS], 0);
    if (!cJSON_IsArray(list) || dec_u256(item_str(v[R_L1], 0), &out->l1) != 0 ||
        dec_u256(item_str(v[R_LIAB], 0), &out->liability) != 0) {
        util_err(err, errlen, "vault answered views of the wrong shape");
        goto out;
    }
    out->paused = cJSON_IsTrue(cJSON_GetArrayItem(v[R_PAUSED], 0));
    out->emergency = cJSON_IsTrue(cJSON_GetArrayItem(v[R_EMERG], 0));
    out->n = (size_t)cJSON_GetArraySize(list);
    if (out->n > 256) {
        util_err(err, errlen, "vault lists %zu assets", out->n);
        goto out;
    }
    out->assets = util_calloc(out->n ? out->n : 1, sizeof *out->assets);
    for (size_t i = 0; i < out->n; i++) {
        const char *t = item_str(list, (int)i);
        uint8_t a[20];
        if (!t || hex_addr_parse(t, a, NULL, 0) != 0) {
            util_err(err, errlen, "getAssets: bad address");
            goto out;
        }
        hex_encode(a, 20, 1, out->assets[i].token, sizeof out->assets[i].token);
    }

    /* Per asset: config, balance, price, token decimals and symbol. */
    static const char *const anames[A_N] = {"getAssetConfig", "assetBalance", "assetPrice",
                                            "decimals", "symbol"};
    const abi_fn *afn[A_N];
    for (int k = 0; k < A_N; k++) {
        afn[k] = abi_contract_fn(k < A_DEC ? app->vault_abi : app->token_abi, anames[k]);
        if (!afn[k]) {
            util_err(err, errlen, "ABI lacks %s", anames[k]);
            goto out;
        }
    }
    nb2 = out->n * A_N;
    b2 = util_calloc(nb2 ? nb2 : 1, sizeof *b2);
    for (size_t i = 0; i < out->n; i++)
        for (int k = 0; k < A_N; k++) {
            const char *tok = out->assets[i].token;
            rpc_batch_item *it = &b2[i * A_N + (size_t)k];
            it->method = "eth_call";
            it->params = call_params(afn[k], k < A_DEC ? one_addr(tok) : NULL, NULL,
                                     k < A_DEC ? app->vault : tok, bn, err, errlen);
            if (!it->params)
                goto out;
        }
    if (nb2 && rpc_batch(app->rpc, b2, nb2, 0, err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < out->n; i++) {
        vault_asset *a = &out->assets[i];
        cJSON *r[A_N] = {0};
        int ok = 1;
        for (int k = 0; k < A_N && ok; k++)
            ok = (r[k] = decode_item(afn[k], &b2[i * A_N + (size_t)k], err, errlen)) != NULL;
        if (ok) {
            cJSON *cfg = cJSON_GetArrayItem(r[A_CFG], 0);
            uint32_t tier = 0, dec = 0, pdec = 0;
            money_u256 upd, price;
            const char *feed = cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "aggregator"));
            const char *ans = item_str(r[A_PRICE], 0);
            ok = feed && strlen(feed) == 42 &&
                 dec_u32(cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "tier")), 3, &tier) == 0 &&
                 dec_u32(cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "targetBps")), 10000,
                         &a->target_bps) == 0 &&
                 dec_u32(cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "minBps")), 10000,
                         &a->min_bps) == 0 &&
                 dec_u32(cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "maxBps")), 10000,
                         &a->max_bps) == 0 &&
                 dec_u256(item_str(r[A_BAL], 0), &a->balance) == 0 && ans &&
                 dec_u32(item_str(r[A_PRICE], 1), 36, &pdec) == 0 &&
                 dec_u256(item_str(r[A_PRICE], 2), &upd) == 0 &&
                 money_to_u64(&upd, &a->price_updated_at) == 0 &&
                 dec_u32(item_str(r[A_DEC], 0), 36, &dec) == 0;
            if (ok) {
                util_strlcpy(a->feed, feed, sizeof a->feed);
                a->tier = (int)tier;
                a->decimals = dec;
                a->price_decimals = pdec;
                /* A non-positive answer values the asset at 0, as the vault does. */
                if (ans[0] == '-' || dec_u256(ans, &price) != 0)
                    money_zero(&price);
                a->price = price;
                const char *sym = item_str(r[A_SYM], 0);
                util_strlcpy(a->symbol, sym ? sym : "", sizeof a->symbol);
            } else {
                util_err(err, errlen, "asset %s: views of the wrong shape", a->token);
            }
        }
        for (int k = 0; k < A_N; k++)
            cJSON_Delete(r[k]);
        if (!ok)
            goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < R_N; i++)
        cJSON_Delete(v[i]);
    rpc_batch_items_clear(b1, R_N);
    if (b2) {
        for (size_t i = 0; i < nb2; i++)
            cJSON_Delete(b2[i].params);
        rpc_batch_items_clear(b2, nb2);
        free(b2);
    }
    if (rc != 0)
        vault_state_free(out);
    return rc;
}

void vault_state_free(vault_state *s)
{
    if (!s)
        return;
    free(s->assets);
    s->assets = NULL;
    s->n = 0;
}

static void add_dec(cJSON *o, const char *k, const money_u256 *v)
{
    char b[MONEY_DEC_MAX];
    money_to_dec(v, b, sizeof b);
    cJSON_AddStringToObject(o, k, b);
}

cJSON *vault_state_json(const vault_state *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "block", (double)s->block);
    cJSON_AddNumberToObject(o, "block_time", (double)s->block_time);
    add_dec(o, "l1", &s->l1);
    add_dec(o, "liability", &s->liability);
    cJSON_AddBoolToObject(o, "paused", s->paused);
    cJSON_AddBoolToObject(o, "emergency", s->emergency);
    cJSON *arr = cJSON_AddArrayToObject(o, "assets");
    for (size_t i = 0; i < s->n; i++) {
        const vault_asset *a = &s->assets[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "token", a->token);
        cJSON_AddStringToObject(j, "symbol", a->symbol);
        cJSON_AddNumberToObject(j, "tier", a->tier);
        cJSON_AddNumberToObject(j, "target_bps", a->target_bps);
        cJSON_AddNumberToObject(j, "min_bps", a->min_bps);
        cJSON_AddNumberToObject(j, "max_bps", a->max_bps);
        add_dec(j, "balance", &a->balance);
        add_dec(j, "price", &a->price);
        cJSON_AddNumberToObject(j, "decimals", a->decimals);
        cJSON_AddNumberToObject(j, "price_decimals", a->price_decimals);
        cJSON_AddItemToArray(arr, j);
    }
    return o;
}

/* ------------------------------------------------------------------ legs */

int vault_leg_calldata(const rb_app *app, const char *token, planner_side side,
                       const money_u256 *amount_in, const money_u256 *min_out, uint8_t **data,
                       size_t *len, char *err, size_t errlen)
{
    const abi_fn *fn =
        abi_contract_fn(app->vault_abi, side == PLANNER_BUY ? "purchaseAsset" : "redeemAsset");
    if (!fn)
        return util_err(err, errlen, "vault ABI lacks purchaseAsset / redeemAsset");
    char a[MONEY_DEC_MAX], m[MONEY_DEC_MAX];
    money_to_dec(amount_in, a, sizeof a);
    money_to_dec(min_out, m, sizeof m);
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateString(token));
    cJSON_AddItemToArray(args, cJSON_CreateString(a));
    cJSON_AddItemToArray(args, cJSON_CreateString(m));
    int rc = abi_fn_encode_call(fn, args, data, len, err, errlen);
    cJSON_Delete(args);
    return rc;
}

static void revert_text(const rb_app *app, const uint8_t *d, size_t n, char *buf, size_t len)
{
    cJSON *r = abi_decode_revert(app->vault_abi, d, n);
    abi_revert_message(r, buf, len);
    cJSON_Delete(r);
}

/* The decoded uint256 return of purchaseAsset / redeemAsset. */
static void sim_out(const rb_app *app, planner_side side, const uint8_t *d, size_t n,
                    money_u256 *out)
{
    const abi_fn *fn =
        abi_contract_fn(app->vault_abi, side == PLANNER_BUY ? "purchaseAsset" : "redeemAsset");
    cJSON *v = fn ? abi_fn_decode_result(fn, d, n, 0, NULL, 0) : NULL;
    if (!v || dec_u256(item_str(v, 0), out) != 0)
        money_zero(out);
    cJSON_Delete(v);
}

static int is_insufficient_liquidity(const char *reason)
{
    return strstr(reason, "InsufficientLiquidity") != NULL;
}

static long simulate_v1(rb_app *app, uint64_t block, const vault_call *calls, size_t n,
                        vault_sim *res, int *unsupported, char *err, size_t errlen)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        char *hex = hex_encode_new(calls[i].data, calls[i].len, 1);
        cJSON_AddStringToObject(c, "from", app->rebalancer);
        cJSON_AddStringToObject(c, "to", app->vault);
        cJSON_AddStringToObject(c, "data", hex);
        free(hex);
        cJSON_AddItemToArray(arr, c);
    }
    cJSON *bsc = cJSON_CreateObject();
    cJSON_AddItemToObject(bsc, "calls", arr);
    cJSON *bscs = cJSON_CreateArray();
    cJSON_AddItemToArray(bscs, bsc);
    cJSON *opts = cJSON_CreateObject();
    cJSON_AddItemToObject(opts, "blockStateCalls", bscs);
    cJSON *params = cJSON_CreateArray();
    cJSON_AddItemToArray(params, opts);
    char tag[RPC_BLOCK_TAG_MAX];
    cJSON_AddItemToArray(params, cJSON_CreateString(rpc_block_tag((int64_t)block, tag)));
    rpc_error e;
    rpc_error_init(&e);
    cJSON *r = rpc_call_ex(app->rpc, "eth_simulateV1", params, 0, &e);
    if (!r) {
        *unsupported = e.status == RPC_ERR_RPC &&
                       (e.code == -32601 || strstr(e.message, "not found") ||
                        strstr(e.message, "not supported") || strstr(e.message, "nsupported"));
        util_err(err, errlen, "eth_simulateV1: %s", e.message);
        rpc_error_clear(&e);
        return -1;
    }
    cJSON *results = cJSON_GetObjectItem(cJSON_GetArrayItem(r, 0), "calls");
    long first = (long)n;
    if (cJSON_GetArraySize(results) != (int)n) {
        cJSON_Delete(r);
        *unsupported = 1;
        return util_err(err, errlen, "eth_simulateV1: %d results for %zu calls",
                        cJSON_GetArraySize(results), n);
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *c = cJSON_GetArrayItem(results, (int)i);
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(c, "status"));
        const char *rd = cJSON_GetStringValue(cJSON_GetObjectItem(c, "returnData"));
        size_t len = 0;
        uint8_t *bytes = rd ? hex_decode_new(rd, &len, NULL, 0) : NULL;
        memset(&res[i], 0, sizeof res[i]);
        if (st && strcmp(st, "0x1") == 0) {
            res[i].status = VAULT_SIM_OK;
            sim_out(app, calls[i].side, bytes, len, &res[i].out);
        } else {
            res[i].status = VAULT_SIM_REVERT;
            if (!bytes) {
                const char *ed = cJSON_GetStringValue(
                    cJSON_GetObjectItem(cJSON_GetObjectItem(c, "error"), "data"));
                bytes = ed ? hex_decode_new(ed, &len, NULL, 0) : NULL;
            }
            revert_text(app, bytes, len, res[i].reason, sizeof res[i].reason);
            if (first == (long)n)
                first = (long)i;
        }
        free(bytes);
    }
    cJSON_Delete(r);
    return first;
}

static long simulate_calls(rb_app *app, uint64_t block, const vault_call *calls, size_t n,
                           vault_sim *res, char *err, size_t errlen)
{
    rpc_batch_item *items = util_calloc(n ? n : 1, sizeof *items);
    char tag[RPC_BLOCK_TAG_MAX];
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        char *hex = hex_encode_new(calls[i].data, calls[i].len, 1);
        cJSON_AddStringToObject(o, "from", app->rebalancer);
        cJSON_AddStringToObject(o, "to", app->vault);
        cJSON_AddStringToObject(o, "data", hex);
        free(hex);
        items[i].method = "eth_call";
        items[i].params = cJSON_CreateArray();
        cJSON_AddItemToArray(items[i].params, o);
        cJSON_AddItemToArray(items[i].params,
                             cJSON_CreateString(rpc_block_tag((int64_t)block, tag)));
    }
    long first = (long)n;
    if (n && rpc_batch(app->rpc, items, n, 0, err, errlen) != 0) {
        first = -1;
        goto out;
    }
    int sold_before = 0;
    for (size_t i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof res[i]);
        if (items[i].result && items[i].error.status == RPC_OK) {
            const char *hex = cJSON_GetStringValue(items[i].result);
            size_t len = 0;
            uint8_t *bytes = hex ? hex_decode_new(hex, &len, NULL, 0) : NULL;
            res[i].status = VAULT_SIM_OK;
            sim_out(app, calls[i].side, bytes, len, &res[i].out);
            free(bytes);
        } else if (items[i].error.status == RPC_ERR_RPC) {
            size_t len = 0;
            uint8_t *bytes = rpc_error_revert_data(&items[i].error, &len);
            revert_text(app, bytes, len, res[i].reason, sizeof res[i].reason);
            free(bytes);
            res[i].status = calls[i].side == PLANNER_BUY && sold_before &&
                                    is_insufficient_liquidity(res[i].reason)
                                ? VAULT_SIM_DEFERRED
                                : VAULT_SIM_REVERT;
            if (res[i].status == VAULT_SIM_REVERT && first == (long)n)
                first = (long)i;
        } else {
            util_err(err, errlen, "eth_call: %s", items[i].error.message);
            first = -1;
            goto out;
        }
        if (calls[i].side == PLANNER_SELL)
            sold_before = 1;
    }
out:
    rpc_batch_items_clear(items, n);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(items[i].params);
    free(items);
    return first;
}

long vault_simulate(rb_app *app, uint64_t block, const vault_call *calls, size_t n, vault_sim *res,
                    const char **method, char *err, size_t errlen)
{
    int unsupported = 0;
    *method = "eth_simulateV1";
    if (n == 0)
        return 0;
    long r = simulate_v1(app, block, calls, n, res, &unsupported, err, errlen);
    if (r >= 0 || !unsupported)
        return r;
    *method = "eth_call";
    return simulate_calls(app, block, calls, n, res, err, errlen);
}
