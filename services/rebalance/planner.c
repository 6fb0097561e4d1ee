/* planner: pure rebalance planning (see planner.h). Amounts are money_u256, ratios basis
 * points; sells are tracked in tokens from the start so the worst-case L1 the plan promises
 * is computed from exactly the amounts and guards that will be sent. Owns nothing but the
 * legs array of a result. */
#include "planner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define BPS 10000u

typedef struct aw {
    money_u256 num, den;     /* value = tokens * num / den */
    money_u256 v, t, lo, hi; /* value, target, min and max value */
    money_u256 sell_tok;     /* tokens to sell */
    money_u256 buy_usdt;     /* USDT to spend */
} aw;

static int pow10u(money_u256 *out, unsigned n)
{
    money_u256 ten;
    money_from_u64(out, 1);
    money_from_u64(&ten, 10);
    for (unsigned i = 0; i < n; i++)
        if (money_mul(out, out, &ten) != 0)
            return -1;
    return 0;
}

static void dec(const money_u256 *v, char *buf, size_t len)
{
    if (money_to_dec(v, buf, len) != 0)
        util_strlcpy(buf, "?", len);
}

static int asset_scale(const planner_asset *a, unsigned usdt_decimals, aw *w)
{
    money_u256 p10;
    if (a->decimals > 36 || a->price_decimals > 36 || usdt_decimals > 36)
        return -1;
    if (pow10u(&p10, usdt_decimals) != 0 || money_mul(&w->num, &a->price, &p10) != 0)
        return -1;
    return pow10u(&w->den, a->decimals + a->price_decimals);
}

int planner_value(const planner_asset *a, unsigned usdt_decimals, money_u256 *out)
{
    aw w;
    if (asset_scale(a, usdt_decimals, &w) != 0)
        return -1;
    return money_mul_div(out, &a->balance, &w.num, &w.den, MONEY_ROUND_DOWN);
}

uint32_t planner_weight_bps(const money_u256 *value, const money_u256 *nav)
{
    money_u256 b, q;
    uint64_t x = 0;
    if (money_is_zero(nav))
        return 0;
    money_from_u64(&b, BPS);
    if (money_mul_div(&q, value, &b, nav, MONEY_ROUND_DOWN) != 0 || money_to_u64(&q, &x) != 0)
        return UINT32_MAX;
    return x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

const char *planner_side_name(planner_side s)
{
    return s == PLANNER_SELL ? "sell" : "buy";
}

/* x less its slippage allowance, rounded so the guard is never above what the bound allows. */
static void guard(money_u256 *out, const money_u256 *x, uint32_t slip)
{
    money_u256 cut;
    if (money_bps(&cut, x, slip, MONEY_ROUND_UP) != 0 || money_sub(out, x, &cut) != 0)
        money_zero(out);
}

/* USDT out (at feed price, and at the guard) for selling tok tokens. */
static int sell_out(const aw *w, const planner_asset *a, const money_u256 *tok, money_u256 *exp,
                    money_u256 *min)
{
    if (money_mul_div(exp, tok, &w->num, &w->den, MONEY_ROUND_DOWN) != 0)
        return -1;
    guard(min, exp, a->slippage_bps);
    return 0;
}

static void sub_floor(money_u256 *out, const money_u256 *a, const money_u256 *b)
{
    if (money_sub(out, a, b) != 0)
        money_zero(out);
}

/* Deterministic orderings: by key descending (tier ascending first when asked), then id,
 * then input position. */
typedef struct ord {
    size_t idx;
    int tier;
    money_u256 key;
    const char *id;
} ord;

static int ord_cmp(const void *pa, const void *pb)
{
    const ord *a = pa, *b = pb;
    if (a->tier != b->tier)
        return a->tier < b->tier ? -1 : 1;
    int c = money_cmp(&a->key, &b->key);
    if (c != 0)
        return -c;
    c = strcmp(a->id, b->id);
    if (c != 0)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static planner_status fail(planner_result *out, planner_status st, char *why, size_t whylen,
                           const char *fmt, const char *a1, const char *a2, const char *a3)
{
    free(out->legs);
    out->legs = NULL;
    out->nlegs = 0;
    if (why && whylen)
        snprintf(why, whylen, fmt, a1, a2, a3);
    return st;
}

static int validate(const planner_input *in, char *why, size_t whylen)
{
    uint64_t sum = in->l1_target_bps;
    if (in->l1_target_bps > BPS || in->band_bps > BPS)
        return util_err(why, whylen, "l1_target_bps and band_bps must be at most 10000");
    if (in->nassets && !in->assets)
        return util_err(why, whylen, "assets missing");
    for (size_t i = 0; i < in->nassets; i++) {
        const planner_asset *a = &in->assets[i];
        if (a->tier != 2 && a->tier != 3)
            return util_err(why, whylen, "asset %s: tier %d is not 2 or 3", a->id, a->tier);
        if (a->min_bps > a->target_bps || a->target_bps > a->max_bps || a->max_bps > BPS)
            return util_err(why, whylen, "asset %s: need min <= target <= max <= 10000 bps", a->id);
        if (a->slippage_bps >= BPS)
            return util_err(why, whylen, "asset %s: slippage bound must be below 10000 bps", a->id);
        if (a->enabled && money_is_zero(&a->price))
            return util_err(why, whylen, "asset %s: no valid price", a->id);
        sum += a->target_bps;
    }
    if (sum > BPS)
        return util_err(why, whylen, "targets plus L1 target add up to %llu bps (> 10000)",
                        (unsigned long long)sum);
    return 0;
}

planner_status planner_run(const planner_input *in, planner_result *out, char *why, size_t whylen)
{
    char b1[MONEY_DEC_MAX], b2[MONEY_DEC_MAX], b3[MONEY_DEC_MAX];
    memset(out, 0, sizeof *out);
    if (why && whylen)
        why[0] = '\0';
    if (validate(in, why, whylen) != 0)
        return PLANNER_INVALID;
    size_t n = in->nassets;
    aw *w = util_calloc(n ? n : 1, sizeof *w);
    ord *o = util_calloc(n ? n : 1, sizeof *o);
    out->legs = util_calloc(2 * n + 1, sizeof *out->legs);
    planner_status st = PLANNER_OK;

    /* Values and NAV. */
    money_u256 nav = in->l1;
    for (size_t i = 0; i < n; i++) {
        const planner_asset *a = &in->assets[i];
        if (asset_scale(a, in->usdt_decimals, &w[i]) != 0 ||
            money_mul_div(&w[i].v, &a->balance, &w[i].num, &w[i].den, MONEY_ROUND_DOWN) != 0 ||
            money_add(&nav, &nav, &w[i].v) != 0) {
            st = fail(out, PLANNER_INVALID, why, whylen, "asset %s: value does not fit in 256 bits",
                      a->id, "", "");
            goto done;
        }
    }
    out->nav = nav;
    money_u256 band;
    if (money_bps(&out->l1_target, &nav, in->l1_target_bps, MONEY_ROUND_UP) != 0 ||
        money_bps(&band, &nav, in->band_bps, MONEY_ROUND_DOWN) != 0) {
        st = fail(out, PLANNER_INVALID, why, whylen, "NAV too large", "", "", "");
        goto done;
    }
    if (money_cmp(&out->l1_target, &in->liability_7d) < 0)
        out->l1_target = in->liability_7d;
    for (size_t i = 0; i < n; i++) {
        const planner_asset *a = &in->assets[i];
        money_bps(&w[i].t, &nav, a->target_bps, MONEY_ROUND_DOWN);
        money_bps(&w[i].lo, &nav, a->min_bps, MONEY_ROUND_UP);
        money_bps(&w[i].hi, &nav, a->max_bps, MONEY_ROUND_DOWN);
    }

    /* 1. Over-weight assets down to target. */
    money_u256 l1w = in->l1, tmp, exp, min;
    for (size_t i = 0; i < n; i++) {
        const planner_asset *a = &in->assets[i];
        money_u256 hiband;
        if (!a->enabled || money_cmp(&w[i].v, &w[i].t) <= 0)
            continue;
        if (money_add(&hiband, &w[i].t, &band) != 0)
            money_max(&hiband);
        if (money_cmp(&w[i].v, &hiband) <= 0 && money_cmp(&w[i].v, &w[i].hi) <= 0)
            continue;
        money_sub(&tmp, &w[i].v, &w[i].t);
        if (money_cmp(&tmp, &a->min_trade) < 0)
            continue;
        money_mul_div(&w[i].sell_tok, &tmp, &w[i].den, &w[i].num, MONEY_ROUND_DOWN);
        if (money_cmp(&w[i].sell_tok, &a->balance) > 0)
            w[i].sell_tok = a->balance;
        sell_out(&w[i], a, &w[i].sell_tok, &exp, &min);
        money_add(&l1w, &l1w, &min);
    }

    /* 2. L1 still short of its target: sell more, L2 first, never below min weight. */
    if (money_cmp(&l1w, &out->l1_target) < 0) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (!in->assets[i].enabled)
                continue;
            money_u256 sold_v, rest;
            sell_out(&w[i], &in->assets[i], &w[i].sell_tok, &sold_v, &min);
            sub_floor(&rest, &w[i].v, &sold_v);
            sub_floor(&o[k].key, &rest, &w[i].lo); /* room above min weight */
            if (money_is_zero(&o[k].key))
                continue;
            o[k].idx = i;
            o[k].tier = in->assets[i].tier;
            o[k].id = in->assets[i].id;
            k++;
        }
        qsort(o, k, sizeof *o, ord_cmp);
        for (size_t j = 0; j < k && money_cmp(&l1w, &out->l1_target) < 0; j++) {
            size_t i = o[j].idx;
            const planner_asset *a = &in->assets[i];
            money_u256 need, gross, take, room_tok, before_min, after_min, total, tv;
            money_sub(&need, &out->l1_target, &l1w);
            /* Gross value whose guarded output covers `need`. */
            money_u256 nb, db;
            money_from_u64(&nb, BPS);
            money_from_u64(&db, BPS - a->slippage_bps);
            if (money_mul_div(&gross, &need, &nb, &db, MONEY_ROUND_UP) != 0)
                money_max(&gross);
            take = money_cmp(&gross, &o[j].key) < 0 ? gross : o[j].key;
            /* Into tokens: up for what is needed, down for the room cap. */
            money_mul_div(&room_tok, &o[j].key, &w[i].den, &w[i].num, MONEY_ROUND_DOWN);
            if (money_mul_div(&tv, &take, &w[i].den, &w[i].num, MONEY_ROUND_UP) != 0)
                tv = room_tok;
            if (money_cmp(&tv, &room_tok) > 0)
                tv = room_tok;
            money_add(&total, &w[i].sell_tok, &tv);
            if (money_cmp(&total, &a->balance) > 0)
                total = a->balance;
            money_u256 total_v;
            sell_out(&w[i], a, &total, &total_v, &after_min);
            if (money_cmp(&total_v, &a->min_trade) < 0) {
                /* Too small to send: round up to the minimum trade if the room allows. */
                money_u256 mt_tok, cap;
                money_mul_div(&mt_tok, &a->min_trade, &w[i].den, &w[i].num, MONEY_ROUND_UP);
                money_add(&cap, &w[i].sell_tok, &room_tok);
                if (money_cmp(&mt_tok, &cap) > 0 || money_cmp(&mt_tok, &a->balance) > 0)
                    continue;
                total = mt_tok;
                sell_out(&w[i], a, &total, &total_v, &after_min);
            }
            sell_out(&w[i], a, &w[i].sell_tok, &exp, &before_min);
            w[i].sell_tok = total;
            money_sub(&tmp, &after_min, &before_min);
            money_add(&l1w, &l1w, &tmp);
        }
    }
    if (money_cmp(&l1w, &in->liability_7d) < 0) {
        money_sub(&tmp, &in->liability_7d, &l1w);
        dec(&in->liability_7d, b1, sizeof b1);
        dec(&l1w, b2, sizeof b2);
        dec(&tmp, b3, sizeof b3);
        st = fail(out, PLANNER_INFEASIBLE, why, whylen,
                  "liability due in 7 days %s exceeds the most L1 can reach without selling any "
                  "asset below its min weight (%s at the slippage guards): short by %s",
                  b1, b2, b3);
        goto done;
    }
    out->l1_short = money_cmp(&l1w, &out->l1_target) < 0;

    /* 3. Under-weight assets from the L1 surplus, largest deficit first. */
    if (!out->l1_short) {
        money_u256 surplus;
        money_sub(&surplus, &l1w, &out->l1_target);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const planner_asset *a = &in->assets[i];
            money_u256 loband;
            if (!a->enabled || !money_is_zero(&w[i].sell_tok) || money_cmp(&w[i].v, &w[i].t) >= 0)
                continue;
            sub_floor(&loband, &w[i].t, &band);
            if (money_cmp(&w[i].v, &loband) >= 0 && money_cmp(&w[i].v, &w[i].lo) >= 0)
                continue;
            money_sub(&o[k].key, &w[i].t, &w[i].v);
            o[k].idx = i;
            o[k].tier = 0;
            o[k].id = a->id;
            k++;
        }
        qsort(o, k, sizeof *o, ord_cmp);
        for (size_t j = 0; j < k && !money_is_zero(&surplus); j++) {
            size_t i = o[j].idx;
            money_u256 amt = money_cmp(&o[j].key, &surplus) < 0 ? o[j].key : surplus;
            if (money_cmp(&amt, &in->assets[i].min_trade) < 0)
                continue;
            /* A buy too small to move one token unit is not a trade. */
            money_mul_div(&tmp, &amt, &w[i].den, &w[i].num, MONEY_ROUND_DOWN);
            if (money_is_zero(&tmp))
                continue;
            w[i].buy_usdt = amt;
            money_sub(&surplus, &surplus, &amt);
            money_sub(&l1w, &l1w, &amt);
        }
    }
    out->l1_after_min = l1w;

    /* Legs: sells (largest first), then buys (largest first). */
    money_u256 l1e = in->l1;
    for (int side = 0; side < 2; side++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const money_u256 *amt = side == 0 ? &w[i].sell_tok : &w[i].buy_usdt;
            if (money_is_zero(amt))
                continue;
            planner_leg *l = &out->legs[out->nlegs + k];
            l->asset = i;
            l->side = side == 0 ? PLANNER_SELL : PLANNER_BUY;
            l->amount_in = *amt;
            if (side == 0) {
                sell_out(&w[i], &in->assets[i], amt, &l->expected_out, &l->min_out);
                l->value = l->expected_out;
                money_add(&l1e, &l1e, &l->expected_out);
            } else {
                money_mul_div(&l->expected_out, amt, &w[i].den, &w[i].num, MONEY_ROUND_DOWN);
                guard(&l->min_out, &l->expected_out, in->assets[i].slippage_bps);
                l->value = *amt;
                sub_floor(&l1e, &l1e, amt);
            }
            if (money_add(&out->traded, &out->traded, &l->value) != 0)
                money_max(&out->traded);
            o[k].idx = out->nlegs + k;
            o[k].tier = 0;
            o[k].key = l->value;
            o[k].id = in->assets[i].id;
            k++;
        }
        qsort(o, k, sizeof *o, ord_cmp);
        planner_leg *sorted = util_calloc(k ? k : 1, sizeof *sorted);
        for (size_t j = 0; j < k; j++)
            sorted[j] = out->legs[o[j].idx];
        memcpy(&out->legs[out->nlegs], sorted, k * sizeof *sorted);
        free(sorted);
        out->nlegs += k;
    }
    out->l1_after = l1e;

    /* What the plan leaves outside [min, max] (too small to trade, or no surplus). */
    for (size_t i = 0; i < n; i++) {
        if (!in->assets[i].enabled)
            continue;
        money_u256 v = w[i].v, sv, mn;
        sell_out(&w[i], &in->assets[i], &w[i].sell_tok, &sv, &mn);
        sub_floor(&v, &v, &sv);
        money_add(&v, &v, &w[i].buy_usdt);
        if (money_cmp(&v, &w[i].lo) < 0 || money_cmp(&v, &w[i].hi) > 0)
            out->out_of_bounds++;
    }
done:
    free(w);
    free(o);
    return st;
}

void planner_result_free(planner_result *r)
{
    if (!r)
        return;
    free(r->legs);
    r->legs = NULL;
    r->nlegs = 0;
}

int planner_needs_rebalance(const planner_input *in, uint32_t dev_bps, uint32_t l1_lo_bps,
                            uint32_t l1_hi_bps, char *why, size_t whylen)
{
    money_u256 nav = in->l1;
    money_u256 *v = util_calloc(in->nassets ? in->nassets : 1, sizeof *v);
    int rc = 0;
    for (size_t i = 0; i < in->nassets; i++)
        if (planner_value(&in->assets[i], in->usdt_decimals, &v[i]) != 0 ||
            money_add(&nav, &nav, &v[i]) != 0) {
            rc = util_err(why, whylen, "asset %s cannot be valued", in->assets[i].id);
            goto out;
        }
    if (money_cmp(&in->l1, &in->liability_7d) < 0) {
        rc = 1;
        util_err(why, whylen, "L1 below the liability due in 7 days");
        goto out;
    }
    if (money_is_zero(&nav))
        goto out;
    uint32_t l1w = planner_weight_bps(&in->l1, &nav);
    if (l1w < l1_lo_bps || l1w > l1_hi_bps) {
        rc = 1;
        util_err(why, whylen, "L1 at %u bps is outside [%u, %u]", l1w, l1_lo_bps, l1_hi_bps);
        goto out;
    }
    for (size_t i = 0; i < in->nassets; i++) {
        const planner_asset *a = &in->assets[i];
        if (!a->enabled)
            continue;
        uint32_t wb = planner_weight_bps(&v[i], &nav);
        uint32_t d = wb > a->target_bps ? wb - a->target_bps : a->target_bps - wb;
        if (d > dev_bps) {
            rc = 1;
            util_err(why, whylen, "asset %s at %u bps deviates %u bps from its target %u", a->id,
                     wb, d, a->target_bps);
            goto out;
        }
    }
out:
    free(v);
    return rc;
}
