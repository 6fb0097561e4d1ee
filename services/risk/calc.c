/* calc: risk metrics and levels (see calc.h). */
#include "risk/calc.h"

#include <string.h>

static const char *const NAMES[RK_M_COUNT] = {
    "liquidity.l1_ratio",    "liquidity.l1l2_ratio",   "liquidity.coverage",
    "price.nav_change_24h",  "price.oracle_staleness", "price.source_deviation",
    "concentration.largest", "concentration.top3",     "redemption.requested_24h"};

const char *rk_metric_name(int id)
{
    return id >= 0 && id < RK_M_COUNT ? NAMES[id] : NULL;
}

int rk_metric_find(const char *name)
{
    for (int i = 0; name && i < RK_M_COUNT; i++)
        if (strcmp(NAMES[i], name) == 0)
            return i;
    return -1;
}

int rk_ratio_bps(const money_u256 *a, const money_u256 *b, int64_t *out)
{
    if (money_is_zero(b))
        return -1;
    money_u256 k, r, cap;
    money_from_u64(&k, 10000);
    money_from_u64(&cap, (uint64_t)RK_VALUE_MAX);
    if (money_mul_div(&r, a, &k, b, MONEY_ROUND_DOWN) != 0 || money_cmp(&r, &cap) > 0)
        r = cap;
    uint64_t u = 0;
    money_to_u64(&r, &u);
    *out = (int64_t)u;
    return 0;
}

static void set(rk_metrics *m, int id, int64_t v)
{
    m->v[id] = v;
    m->valid[id] = 1;
}

int rk_compute(const rk_chain *c, const rk_inputs *in, rk_metrics *out)
{
    memset(out, 0, sizeof *out);
    if (c->nassets > RK_MAX_ASSETS)
        return -1;
    const money_u256 *nav = &c->total_assets;
    int64_t v;
    if (rk_ratio_bps(&c->l1, nav, &v) == 0)
        set(out, RK_M_L1, v);
    money_u256 l12;
    if (money_add(&l12, &c->l1, &c->l2) != 0)
        return -1;
    if (rk_ratio_bps(&l12, nav, &v) == 0)
        set(out, RK_M_L1L2, v);
    if (rk_ratio_bps(&l12, &in->due, &v) == 0)
        set(out, RK_M_COVERAGE, v);
    if (in->nav_prev_ok) {
        money_u256 d;
        if (money_cmp(&c->share_price, &in->nav_prev) >= 0)
            money_sub(&d, &c->share_price, &in->nav_prev);
        else
            money_sub(&d, &in->nav_prev, &c->share_price);
        if (rk_ratio_bps(&d, &in->nav_prev, &v) == 0)
            set(out, RK_M_NAV_CHANGE, v);
    }
    int64_t stale = 0, dev = 0;
    int have_dev = 0;
    for (size_t i = 0; i < c->nassets; i++) {
        const rk_asset *a = &c->assets[i];
        int64_t age = a->updated_at < c->block_time ? (int64_t)(c->block_time - a->updated_at) : 0;
        if (age > stale)
            stale = age;
        if (a->price_ok && a->alt_ok) {
            money_u256 d;
            if (money_cmp(&a->price, &a->alt_price) >= 0)
                money_sub(&d, &a->price, &a->alt_price);
            else
                money_sub(&d, &a->alt_price, &a->price);
            if (rk_ratio_bps(&d, &a->price, &v) == 0) {
                have_dev = 1;
                if (v > dev)
                    dev = v;
            }
        }
        if (rk_ratio_bps(&a->value, nav, &v) == 0)
            out->weight_bps[i] = v;
    }
    if (c->nassets > 0)
        set(out, RK_M_STALENESS, stale);
    if (have_dev)
        set(out, RK_M_DEVIATION, dev);
    /* The three largest positions by value (L1 cash is liquidity, not a concentration). */
    size_t top[3] = {0};
    size_t ntop = 0;
    for (size_t i = 0; i < c->nassets; i++) {
        size_t pos = ntop;
        while (pos > 0 && money_cmp(&c->assets[i].value, &c->assets[top[pos - 1]].value) > 0)
            pos--;
        if (pos >= 3)
            continue;
        for (size_t k = (ntop < 3 ? ntop : 2); k > pos; k--)
            top[k] = top[k - 1];
        top[pos] = i;
        if (ntop < 3)
            ntop++;
    }
    if (!money_is_zero(nav)) {
        money_u256 sum;
        money_zero(&sum);
        for (size_t k = 0; k < ntop; k++)
            if (money_add(&sum, &sum, &c->assets[top[k]].value) != 0)
                return -1;
        if (ntop > 0 && rk_ratio_bps(&c->assets[top[0]].value, nav, &v) == 0)
            set(out, RK_M_LARGEST, v);
        else if (ntop == 0)
            set(out, RK_M_LARGEST, 0);
        if (rk_ratio_bps(&sum, nav, &v) == 0)
            set(out, RK_M_TOP3, v);
        if (rk_ratio_bps(&in->requested, nav, &v) == 0)
            set(out, RK_M_REDEEM24, v);
    }
    return 0;
}

const char *rk_level_name(int level)
{
    return level == RK_CRITICAL ? "critical" : level == RK_WARNING ? "warning" : "info";
}

static int past(const rk_threshold *t, int64_t v, int64_t thr)
{
    return t->below ? v < thr : v > thr;
}

int rk_level_raw(const rk_threshold *t, int64_t v)
{
    if (t->has_critical && past(t, v, t->critical))
        return RK_CRITICAL;
    if (t->has_warning && past(t, v, t->warning))
        return RK_WARNING;
    return RK_INFO;
}

int64_t rk_level_threshold(const rk_threshold *t, int level)
{
    if (level == RK_CRITICAL && t->has_critical)
        return t->critical;
    if (level == RK_WARNING && t->has_warning)
        return t->warning;
    return 0;
}

/* Whether v has cleared level's threshold by the margin (so the level may be left). */
static int cleared(const rk_threshold *t, int level, int64_t v)
{
    int has = level == RK_CRITICAL ? t->has_critical : t->has_warning;
    if (!has)
        return 1;
    int64_t thr = rk_level_threshold(t, level);
    return t->below ? v >= thr + t->margin : v <= thr - t->margin;
}

int rk_level_next(const rk_threshold *t, int prev, int valid, int64_t v)
{
    if (!valid)
        return RK_INFO;
    int raw = rk_level_raw(t, v);
    if (prev < RK_INFO || prev > RK_CRITICAL)
        prev = RK_INFO;
    if (raw >= prev)
        return raw;
    int lvl = prev;
    while (lvl > raw && cleared(t, lvl, v))
        lvl--;
    return lvl;
}
