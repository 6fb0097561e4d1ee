/* chain: the pinned-block vault reader (see chain.h). */
#include "risk/chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hex.h"
#include "util.h"

/* Builds one eth_call item; fn looked up by name in abi. args may be NULL (taken). */
static int call_item(rpc_batch_item *it, const abi_contract *abi, const char *to, const char *name,
                     cJSON *args, const char *tag, char *err, size_t errlen)
{
    const abi_fn *fn = abi ? abi_contract_fn(abi, name) : NULL;
    if (!fn) {
        cJSON_Delete(args);
        return util_err(err, errlen, "ABI lacks %s", name);
    }
    uint8_t *data = NULL;
    size_t len = 0;
    cJSON *a = args ? args : cJSON_CreateArray();
    int rc = abi_fn_encode_call(fn, a, &data, &len, err, errlen);
    cJSON_Delete(a);
    if (rc != 0)
        return -1;
    char *hex = hex_encode_new(data, len, 1);
    free(data);
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "to", to);
    cJSON_AddStringToObject(obj, "data", hex);
    free(hex);
    cJSON *params = cJSON_CreateArray();
    cJSON_AddItemToArray(params, obj);
    cJSON_AddItemToArray(params, cJSON_CreateString(tag));
    memset(it, 0, sizeof *it);
    it->method = "eth_call";
    it->params = params;
    rpc_error_init(&it->error);
    return 0;
}

/* Decoded outputs of an answered item, or NULL (err says why). Owned by the caller. */
static cJSON *decode(const rpc_batch_item *it, const abi_contract *abi, const char *name, char *err,
                     size_t errlen)
{
    if (!it->result) {
        util_err(err, errlen, "%s: %s", name, it->error.message);
        return NULL;
    }
    const char *h = cJSON_GetStringValue(it->result);
    size_t len = 0;
    uint8_t *data = h ? hex_decode_new(h, &len, err, errlen) : NULL;
    if (!data) {
        util_err(err, errlen, "%s: bad eth_call result", name);
        return NULL;
    }
    cJSON *out = abi_fn_decode_result(abi_contract_fn(abi, name), data, len, ABI_DECODE_LOWER_ADDR,
                                      err, errlen);
    free(data);
    return out;
}

static int get_u256(const rpc_batch_item *it, const abi_contract *abi, const char *name,
                    money_u256 *out, char *err, size_t errlen)
{
    cJSON *r = decode(it, abi, name, err, errlen);
    const char *s = r ? cJSON_GetStringValue(cJSON_GetArrayItem(r, 0)) : NULL;
    int rc = s ? money_from_dec(out, s, err, errlen) : -1;
    if (r && !s)
        util_err(err, errlen, "%s: unexpected result", name);
    cJSON_Delete(r);
    return rc;
}

int rk_scale_price(const char *answer, unsigned decimals, money_u256 *out, int *ok)
{
    if (!answer || !*answer || decimals > 77)
        return -1;
    if (answer[0] == '-') {
        if (!answer[1])
            return -1;
        for (const char *c = answer + 1; *c; c++)
            if (*c < '0' || *c > '9')
                return -1;
        money_zero(out);
        *ok = 0;
        return 0;
    }
    money_u256 a, p;
    if (money_from_dec(&a, answer, NULL, 0) != 0)
        return -1;
    if (money_is_zero(&a)) {
        money_zero(out);
        *ok = 0;
        return 0;
    }
    money_from_u64(&p, 1);
    money_u256 ten;
    money_from_u64(&ten, 10);
    unsigned diff = decimals <= 18 ? 18 - decimals : decimals - 18;
    for (unsigned i = 0; i < diff; i++)
        if (money_mul(&p, &p, &ten) != 0)
            return -1;
    if (decimals <= 18) {
        if (money_mul(&a, &a, &p) != 0)
            return -1;
    } else if (money_div(&a, NULL, &a, &p) != 0) {
        return -1;
    }
    *out = a;
    *ok = !money_is_zero(&a);
    return 0;
}

static int uint_of(const cJSON *v, uint64_t *out)
{
    const char *s = cJSON_GetStringValue(v);
    money_u256 m;
    return s && money_from_dec(&m, s, NULL, 0) == 0 ? money_to_u64(&m, out) : -1;
}

enum { B_TA, B_TS, B_SP, B_L1, B_L2, B_L3, B_ASSETS, B_LIAB, B_EMERG, B_MARKET, B_N };
enum { A_BAL, A_VAL, A_PRICE, A_CFG, A_ALT, A_N };

int rk_chain_read(rk_app *app, int64_t block, rk_chain *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    rpc_header h;
    int hr = rpc_get_block_header(app->rpc, block, &h, err, errlen);
    if (hr != 0)
        return hr == 1 ? util_err(err, errlen, "no such block") : -1;
    out->block = h.number;
    out->block_time = h.timestamp;
    char tag[RPC_BLOCK_TAG_MAX];
    rpc_block_tag((int64_t)h.number, tag);
    const abi_contract *va = app->vault_abi;

    rpc_batch_item b1[B_N];
    static const char *const NAMES[B_N] = {
        "totalAssets",   "totalSupply", "sharePrice", "l1Balance",
        "tierValue",     "tierValue",   "getAssets",  "pendingRedemptionLiability",
        "emergencyMode", "market"};
    for (int i = 0; i < B_N; i++) {
        cJSON *args = NULL;
        if (i == B_L2 || i == B_L3) {
            args = cJSON_CreateArray();
            cJSON_AddItemToArray(args, cJSON_CreateNumber(i == B_L2 ? 2 : 3));
        }
        if (call_item(&b1[i], va, app->vault, NAMES[i], args, tag, err, errlen) != 0) {
            rpc_batch_items_clear(b1, (size_t)i);
            return -1;
        }
    }
    if (rpc_batch(app->rpc, b1, B_N, 0, err, errlen) != 0) {
        rpc_batch_items_clear(b1, B_N);
        return -1;
    }
    int rc = -1;
    money_u256 *dst[] = {&out->total_assets, &out->total_supply, &out->share_price,
                         &out->l1,           &out->l2,           &out->l3};
    for (int i = 0; i <= B_L3; i++)
        if (get_u256(&b1[i], va, NAMES[i], dst[i], err, errlen) != 0)
            goto done1;
    if (get_u256(&b1[B_LIAB], va, NAMES[B_LIAB], &out->pending_liability, err, errlen) != 0)
        goto done1;
    cJSON *em = decode(&b1[B_EMERG], va, "emergencyMode", err, errlen);
    if (!em)
        goto done1;
    out->emergency_mode = cJSON_IsTrue(cJSON_GetArrayItem(em, 0));
    cJSON_Delete(em);
    char market[43] = "";
    cJSON *mk = decode(&b1[B_MARKET], va, "market", NULL, 0);
    const char *ms = mk ? cJSON_GetStringValue(cJSON_GetArrayItem(mk, 0)) : NULL;
    if (ms && strcmp(ms, "0x0000000000000000000000000000000000000000") != 0)
        util_strlcpy(market, ms, sizeof market);
    cJSON_Delete(mk);
    if (app->market[0])
        util_strlcpy(market, app->market, sizeof market);
    int use_alt = market[0] && app->market_abi;
    cJSON *assets = decode(&b1[B_ASSETS], va, "getAssets", err, errlen);
    const cJSON *list = assets ? cJSON_GetArrayItem(assets, 0) : NULL;
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(assets);
        goto done1;
    }
    size_t n = (size_t)cJSON_GetArraySize(list);
    if (n > RK_MAX_ASSETS) {
        cJSON_Delete(assets);
        util_err(err, errlen, "vault lists %zu assets, more than %d", n, RK_MAX_ASSETS);
        goto done1;
    }
    out->nassets = n;
    for (size_t i = 0; i < n; i++)
        util_strlcpy(out->assets[i].token, cJSON_GetStringValue(cJSON_GetArrayItem(list, (int)i)),
                     sizeof out->assets[i].token);
    cJSON_Delete(assets);
    rc = 0;
done1:
    rpc_batch_items_clear(b1, B_N);
    if (rc != 0 || out->nassets == 0)
        return rc;

    size_t nitems = out->nassets * A_N;
    rpc_batch_item *b2 = util_calloc(nitems, sizeof *b2);
    size_t built = 0;
    static const char *const ANAMES[A_N] = {"assetBalance", "assetValue", "assetPrice",
                                            "getAssetConfig", "price"};
    rc = -1;
    for (size_t i = 0; i < out->nassets; i++) {
        for (int k = 0; k < A_N; k++, built++) {
            cJSON *args = cJSON_CreateArray();
            cJSON_AddItemToArray(args, cJSON_CreateString(out->assets[i].token));
            if (k == A_ALT && !use_alt) {
                /* a cheap placeholder keeps the item layout fixed */
                cJSON_Delete(args);
                if (call_item(&b2[built], va, app->vault, "totalSupply", NULL, tag, err, errlen))
                    goto done2;
                continue;
            }
            if (call_item(&b2[built], k == A_ALT ? app->market_abi : va,
                          k == A_ALT ? market : app->vault, ANAMES[k], args, tag, err, errlen))
                goto done2;
        }
    }
    if (rpc_batch(app->rpc, b2, nitems, 0, err, errlen) != 0)
        goto done2;
    for (size_t i = 0; i < out->nassets; i++) {
        rk_asset *a = &out->assets[i];
        rpc_batch_item *it = &b2[i * A_N];
        if (get_u256(&it[A_BAL], va, "assetBalance", &a->balance, err, errlen) != 0 ||
            get_u256(&it[A_VAL], va, "assetValue", &a->value, err, errlen) != 0)
            goto done2;
        cJSON *p = decode(&it[A_PRICE], va, "assetPrice", err, errlen);
        uint64_t dec = 0;
        if (!p || uint_of(cJSON_GetArrayItem(p, 1), &dec) != 0 ||
            uint_of(cJSON_GetArrayItem(p, 2), &a->updated_at) != 0 ||
            rk_scale_price(cJSON_GetStringValue(cJSON_GetArrayItem(p, 0)), (unsigned)dec, &a->price,
                           &a->price_ok) != 0) {
            cJSON_Delete(p);
            util_err(err, errlen, "assetPrice(%s): bad answer", a->token);
            goto done2;
        }
        cJSON_Delete(p);
        cJSON *c = decode(&it[A_CFG], va, "getAssetConfig", err, errlen);
        uint64_t tier = 0;
        const cJSON *cfg = c ? cJSON_GetArrayItem(c, 0) : NULL;
        const cJSON *tv =
            cJSON_IsObject(cfg) ? cJSON_GetObjectItem(cfg, "tier") : cJSON_GetArrayItem(cfg, 2);
        if (!c || uint_of(tv, &tier) != 0) {
            cJSON_Delete(c);
            util_err(err, errlen, "getAssetConfig(%s): bad answer", a->token);
            goto done2;
        }
        cJSON_Delete(c);
        a->tier = (int)tier;
        if (use_alt) {
            /* The market refusing a price (unlisted asset, non-positive answer) means there
             * is no second source for this asset, not that the cycle failed. */
            cJSON *q = decode(&it[A_ALT], app->market_abi, "price", NULL, 0);
            uint64_t qd = 0;
            if (q && uint_of(cJSON_GetArrayItem(q, 1), &qd) == 0 &&
                rk_scale_price(cJSON_GetStringValue(cJSON_GetArrayItem(q, 0)), (unsigned)qd,
                               &a->alt_price, &a->alt_ok) != 0)
                a->alt_ok = 0;
            cJSON_Delete(q);
        }
    }
    rc = 0;
done2:
    rpc_batch_items_clear(b2, built);
    free(b2);
    return rc;
}
