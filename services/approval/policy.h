/* policy: the approval rules of ARCHITECTURE §5 as data — thresholds, approval tiers,
 * settlement delays, SLA steps, the settlement forecast and off-chain role ranks — and
 * the pure functions that apply them. Every number comes from approval.approval_policies
 * (pol_load); pol_defaults holds the same defaults as migration 0003 so unit tests and a
 * fresh database agree.
 *
 * Memory: a pol_policy is a plain value owned by the caller; nothing here allocates
 * except pol_to_json (owned cJSON). */
#ifndef APPROVAL_POLICY_H
#define APPROVAL_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "money.h"

typedef struct pol_policy {
    money_u256 thr_standard, thr_emergency, thr_rebalance; /* ticket when amount > thr */
    money_u256 tier1_below, tier2_below;
    int64_t tier1_n, tier2_n, tier3_n;
    int64_t settle_standard_s, settle_emergency_s;
    int64_t sla_standard_s, sla_emergency_s, sla_rebalance_s, sla_other_s;
    int64_t reminder_pct, esc_admin_pct, esc_super_pct;
    int64_t forecast_days;
    int64_t vote_max_deadline_s;
} pol_policy;

/* Ticket kinds as the rules see them. */
typedef enum { POL_STANDARD = 0, POL_EMERGENCY, POL_REBALANCE, POL_OTHER } pol_kind;

void pol_defaults(pol_policy *p);
/* Sets one key after validating its value (amount / count / seconds / percent ranges,
 * and the cross-key order tier.1.below < tier.2.below, reminder < admin < super).
 * Unknown keys are an error. p is untouched on failure. */
int pol_set(pol_policy *p, const char *key, const char *value, char *err, size_t errlen);
/* Defaults overlaid with every row of approval.approval_policies. */
int pol_load(db_conn *c, pol_policy *p, char *err, size_t errlen);
/* {key: value} of every known key (values as decimal strings). */
cJSON *pol_to_json(const pol_policy *p);
/* 1 when key is a policy key. */
int pol_known_key(const char *key);

/* 1 when `amount` of this kind needs a ticket (amount strictly above the threshold;
 * POL_OTHER always does). */
int pol_needs_ticket(const pol_policy *p, pol_kind kind, const money_u256 *amount);
/* Distinct approvals needed for amount: < tier1_below -> tier1_n, < tier2_below ->
 * tier2_n, else tier3_n. */
int pol_required_approvals(const pol_policy *p, const money_u256 *amount);
/* Settlement due time (ms) from the request's block time (ms): T+7 / T+1 by default. */
int64_t pol_due_ms(const pol_policy *p, int emergency, int64_t block_time_ms);
/* SLA of a ticket kind in ms. */
int64_t pol_sla_ms(const pol_policy *p, pol_kind kind);

/* SLA steps: 1 reminder, 2 escalation to admins, 3 escalation to super-admins.
 * The highest step reached at now_ms for a timer started at started_ms (0 = none). */
int pol_sla_step_at(const pol_policy *p, int64_t started_ms, int64_t sla_ms, int64_t now_ms);
/* When step `step` (1..3) is due; -1 for any other step. */
int64_t pol_sla_step_ms(const pol_policy *p, int64_t started_ms, int64_t sla_ms, int step);

/* Off-chain roles from the gateway (X-Paimon-Role): viewer 0, operator 1, admin 2,
 * super_admin 3; -1 when unknown. */
int pol_role_rank(const char *role);

/* Settlement forecast over `days` calendar days (UTC) from now_ms. Items due before
 * today count on day 0 (overdue). A day's shortfall is how much the cumulative due
 * amount up to that day exceeds l1 (0 when covered). */
typedef struct pol_due {
    int64_t due_ms;
    money_u256 amount;
} pol_due;
typedef struct pol_day {
    int64_t day_ms; /* UTC midnight */
    int64_t count;
    money_u256 due, cumulative, shortfall;
} pol_day;
/* out has room for `days` entries (1..366). Returns the index of the first day with a
 * shortfall, days when L1 covers every day, or -1 on bad input / overflow. */
int pol_forecast(const pol_due *items, size_t n, const money_u256 *l1, int64_t now_ms, int days,
                 pol_day *out);

#endif
