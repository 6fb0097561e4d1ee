/* policy: approval rules as data (see policy.h). */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef enum { K_AMOUNT, K_COUNT, K_SECONDS, K_PCT, K_DAYS } key_kind;

typedef struct key_def {
    const char *key;
    key_kind kind;
    size_t off;
} key_def;

#define F(field) offsetof(pol_policy, field)
static const key_def KEYS[] = {
    {"threshold.standard", K_AMOUNT, F(thr_standard)},
    {"threshold.emergency", K_AMOUNT, F(thr_emergency)},
    {"threshold.rebalance", K_AMOUNT, F(thr_rebalance)},
    {"tier.1.below", K_AMOUNT, F(tier1_below)},
    {"tier.1.approvals", K_COUNT, F(tier1_n)},
    {"tier.2.below", K_AMOUNT, F(tier2_below)},
    {"tier.2.approvals", K_COUNT, F(tier2_n)},
    {"tier.3.approvals", K_COUNT, F(tier3_n)},
    {"settle.standard_s", K_SECONDS, F(settle_standard_s)},
    {"settle.emergency_s", K_SECONDS, F(settle_emergency_s)},
    {"sla.standard_s", K_SECONDS, F(sla_standard_s)},
    {"sla.emergency_s", K_SECONDS, F(sla_emergency_s)},
    {"sla.rebalance_s", K_SECONDS, F(sla_rebalance_s)},
    {"sla.other_s", K_SECONDS, F(sla_other_s)},
    {"sla.reminder_pct", K_PCT, F(reminder_pct)},
    {"sla.escalate_admin_pct", K_PCT, F(esc_admin_pct)},
    {"sla.escalate_super_pct", K_PCT, F(esc_super_pct)},
    {"forecast.days", K_DAYS, F(forecast_days)},
    {"vote.max_deadline_s", K_SECONDS, F(vote_max_deadline_s)},
};
#undef F
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static const key_def *find_key(const char *key)
{
    for (size_t i = 0; key && i < NKEYS; i++)
        if (strcmp(KEYS[i].key, key) == 0)
            return &KEYS[i];
    return NULL;
}

int pol_known_key(const char *key)
{
    return find_key(key) != NULL;
}

static void usdt(money_u256 *out, uint64_t whole)
{
    money_u256 w, scale;
    money_from_u64(&w, whole);
    money_from_u64(&scale, 1000000000000000000ULL);
    money_mul(out, &w, &scale);
}

void pol_defaults(pol_policy *p)
{
    memset(p, 0, sizeof *p);
    usdt(&p->thr_standard, 100000);
    usdt(&p->thr_emergency, 30000);
    usdt(&p->thr_rebalance, 50000);
    usdt(&p->tier1_below, 100000);
    usdt(&p->tier2_below, 1000000);
    p->tier1_n = 1;
    p->tier2_n = 2;
    p->tier3_n = 3;
    p->settle_standard_s = 7 * 86400;
    p->settle_emergency_s = 86400;
    p->sla_standard_s = 86400;
    p->sla_emergency_s = 7200;
    p->sla_rebalance_s = 4 * 3600;
    p->sla_other_s = 4 * 3600;
    p->reminder_pct = 50;
    p->esc_admin_pct = 100;
    p->esc_super_pct = 200;
    p->forecast_days = 7;
    p->vote_max_deadline_s = 86400;
}

/* Cross-key rules: a policy that breaks them would make tiers or SLA steps overlap. */
static int consistent(const pol_policy *p, char *err, size_t errlen)
{
    if (money_cmp(&p->tier1_below, &p->tier2_below) >= 0)
        return util_err(err, errlen, "tier.1.below must be below tier.2.below");
    if (!(p->reminder_pct < p->esc_admin_pct && p->esc_admin_pct < p->esc_super_pct))
        return util_err(err, errlen,
                        "sla percentages must rise: reminder < escalate_admin < escalate_super");
    if (!(p->tier1_n <= p->tier2_n && p->tier2_n <= p->tier3_n))
        return util_err(err, errlen, "tier approvals must not fall as amounts rise");
    return 0;
}

int pol_set(pol_policy *p, const char *key, const char *value, char *err, size_t errlen)
{
    const key_def *k = find_key(key);
    if (!k)
        return util_err(err, errlen, "unknown policy key");
    if (!value || !*value || strlen(value) > 78 || strspn(value, "0123456789") != strlen(value))
        return util_err(err, errlen, "%s: value must be a non-negative integer", k->key);
    pol_policy next = *p;
    char *field = (char *)&next + k->off;
    if (k->kind == K_AMOUNT) {
        money_u256 v;
        if (money_from_dec(&v, value, err, errlen) != 0)
            return -1;
        memcpy(field, &v, sizeof v);
    } else {
        if (strlen(value) > 12)
            return util_err(err, errlen, "%s: value out of range", k->key);
        int64_t v = strtoll(value, NULL, 10);
        int64_t lo = 1, hi = 0;
        switch (k->kind) {
        case K_COUNT:
            hi = 20;
            break;
        case K_SECONDS:
            hi = 365LL * 86400;
            break;
        case K_PCT:
            hi = 1000;
            break;
        case K_DAYS:
            hi = 366;
            break;
        default:
            break;
        }
        if (v < lo || v > hi)
            return util_err(err, errlen, "%s: value must be within %lld..%lld", k->key,
                            (long long)lo, (long long)hi);
        memcpy(field, &v, sizeof v);
    }
    if (consistent(&next, err, errlen) != 0)
        return -1;
    *p = next;
    return 0;
}

int pol_load(db_conn *c, pol_policy *p, char *err, size_t errlen)
{
    pol_policy tmp;
    pol_defaults(&tmp);
    PGresult *r = db_query_prepared(
        c, "pol_load", "SELECT key, value FROM approval.approval_policies", 0, NULL, err, errlen);
    if (!r)
        return -1;
    /* Rows apply one by one, so a pair of keys that are only consistent together (both
     * tier bounds raised) must not fail halfway: apply unchecked, then check once. */
    for (int i = 0; i < PQntuples(r); i++) {
        const key_def *k = find_key(PQgetvalue(r, i, 0));
        if (!k)
            continue; /* a newer version's key: ignored by this one */
        const char *v = PQgetvalue(r, i, 1);
        char *field = (char *)&tmp + k->off;
        if (k->kind == K_AMOUNT) {
            money_u256 m;
            if (money_from_dec(&m, v, err, errlen) != 0) {
                PQclear(r);
                return -1;
            }
            memcpy(field, &m, sizeof m);
        } else {
            int64_t x = strtoll(v, NULL, 10);
            memcpy(field, &x, sizeof x);
        }
    }
    PQclear(r);
    if (consistent(&tmp, err, errlen) != 0)
        return -1;
    *p = tmp;
    return 0;
}

cJSON *pol_to_json(const pol_policy *p)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < NKEYS; i++) {
        const char *field = (const char *)p + KEYS[i].off;
        char buf[MONEY_DEC_MAX];
        if (KEYS[i].kind == K_AMOUNT) {
            money_u256 m;
            memcpy(&m, field, sizeof m);
            money_to_dec(&m, buf, sizeof buf);
        } else {
            int64_t x;
            memcpy(&x, field, sizeof x);
            snprintf(buf, sizeof buf, "%lld", (long long)x);
        }
        cJSON_AddStringToObject(o, KEYS[i].key, buf);
    }
    return o;
}

int pol_needs_ticket(const pol_policy *p, pol_kind kind, const money_u256 *amount)
{
    const money_u256 *thr = NULL;
    switch (kind) {
    case POL_STANDARD:
        thr = &p->thr_standard;
        break;
    case POL_EMERGENCY:
        thr = &p->thr_emergency;
        break;
    case POL_REBALANCE:
        thr = &p->thr_rebalance;
        break;
    default:
        return 1;
    }
    return money_cmp(amount, thr) > 0;
}

int pol_required_approvals(const pol_policy *p, const money_u256 *amount)
{
    if (money_cmp(amount, &p->tier1_below) < 0)
        return (int)p->tier1_n;
    if (money_cmp(amount, &p->tier2_below) < 0)
        return (int)p->tier2_n;
    return (int)p->tier3_n;
}

int64_t pol_due_ms(const pol_policy *p, int emergency, int64_t block_time_ms)
{
    return block_time_ms + (emergency ? p->settle_emergency_s : p->settle_standard_s) * 1000;
}

int64_t pol_sla_ms(const pol_policy *p, pol_kind kind)
{
    switch (kind) {
    case POL_STANDARD:
        return p->sla_standard_s * 1000;
    case POL_EMERGENCY:
        return p->sla_emergency_s * 1000;
    case POL_REBALANCE:
        return p->sla_rebalance_s * 1000;
    default:
        return p->sla_other_s * 1000;
    }
}

int64_t pol_sla_step_ms(const pol_policy *p, int64_t started_ms, int64_t sla_ms, int step)
{
    int64_t pct;
    switch (step) {
    case 1:
        pct = p->reminder_pct;
        break;
    case 2:
        pct = p->esc_admin_pct;
        break;
    case 3:
        pct = p->esc_super_pct;
        break;
    default:
        return -1;
    }
    /* sla_ms <= 1 year and pct <= 1000: the product fits easily in int64. */
    return started_ms + sla_ms * pct / 100;
}

int pol_sla_step_at(const pol_policy *p, int64_t started_ms, int64_t sla_ms, int64_t now_ms)
{
    int step = 0;
    for (int s = 1; s <= 3; s++)
        if (now_ms >= pol_sla_step_ms(p, started_ms, sla_ms, s))
            step = s;
    return step;
}

int pol_role_rank(const char *role)
{
    static const char *const ROLES[] = {"viewer", "operator", "admin", "super_admin"};
    for (int i = 0; role && i < 4; i++)
        if (strcmp(role, ROLES[i]) == 0)
            return i;
    return -1;
}

#define DAY_MS 86400000LL

int pol_forecast(const pol_due *items, size_t n, const money_u256 *l1, int64_t now_ms, int days,
                 pol_day *out)
{
    if (days < 1 || days > 366 || (n && !items) || !out || !l1 || now_ms < 0)
        return -1;
    int64_t today = now_ms - now_ms % DAY_MS;
    memset(out, 0, (size_t)days * sizeof *out);
    for (int d = 0; d < days; d++)
        out[d].day_ms = today + d * DAY_MS;
    for (size_t i = 0; i < n; i++) {
        int64_t d = items[i].due_ms < today ? 0 : (items[i].due_ms - today) / DAY_MS;
        if (d >= days)
            continue;
        if (money_add(&out[d].due, &out[d].due, &items[i].amount) != 0)
            return -1;
        out[d].count++;
    }
    int first = days;
    money_u256 cum;
    money_zero(&cum);
    for (int d = 0; d < days; d++) {
        if (money_add(&cum, &cum, &out[d].due) != 0)
            return -1;
        out[d].cumulative = cum;
        if (money_cmp(&cum, l1) > 0) {
            money_sub(&out[d].shortfall, &cum, l1);
            if (first == days)
                first = d;
        }
    }
    return first;
}
