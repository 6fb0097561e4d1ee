/* calc: the risk metrics and their levels as pure functions over a chain read and a few
 * numbers from risk's own history (no I/O, so unit tests check them by hand).
 *
 * Every metric is an integer: ratios in basis points (coverage 1.5 = 15000), staleness in
 * seconds. Ratios round down (a*10000/b with a 512-bit intermediate, money.h) and are
 * clamped at RK_VALUE_MAX so an almost-zero denominator cannot overflow.
 *
 * Levels: 0 info, 1 warning, 2 critical. A metric rises to a level as soon as its value
 * is past that level's threshold, and falls back only once the value is past the threshold
 * by the metric's clear margin (hysteresis). */
#ifndef RISK_CALC_H
#define RISK_CALC_H

#include <stddef.h>
#include <stdint.h>

#include "money.h"
#include "risk/chain.h"

#define RK_VALUE_MAX 1000000000000000LL /* 1e15 */

typedef enum {
    RK_M_L1 = 0,
    RK_M_L1L2,
    RK_M_COVERAGE,
    RK_M_NAV_CHANGE,
    RK_M_STALENESS,
    RK_M_DEVIATION,
    RK_M_LARGEST,
    RK_M_TOP3,
    RK_M_REDEEM24,
    RK_M_COUNT
} rk_metric_id;

/* "liquidity.l1_ratio", ... (the risk_thresholds keys). */
const char *rk_metric_name(int id);
/* Index of a metric name, -1 if unknown. */
int rk_metric_find(const char *name);

typedef struct rk_inputs {
    money_u256 due;       /* net redemption amounts due within the coverage horizon */
    money_u256 requested; /* gross redemptions requested within the window */
    money_u256 nav_prev;  /* share price one window ago */
    int nav_prev_ok;      /* there is a share price that old */
} rk_inputs;

typedef struct rk_metrics {
    int64_t v[RK_M_COUNT];
    int valid[RK_M_COUNT];             /* 0: not measurable now (e.g. coverage with nothing due) */
    int64_t weight_bps[RK_MAX_ASSETS]; /* per asset of the chain read: value / NAV */
} rk_metrics;

/* 0, or -1 when the chain read is inconsistent (e.g. more assets than RK_MAX_ASSETS). */
int rk_compute(const rk_chain *c, const rk_inputs *in, rk_metrics *out);

/* a * 10000 / b rounded down, clamped to RK_VALUE_MAX; b == 0 -> -1. */
int rk_ratio_bps(const money_u256 *a, const money_u256 *b, int64_t *out);

typedef struct rk_threshold {
    int below; /* bad when the value falls (liquidity) rather than rises */
    int has_warning, has_critical;
    int64_t warning, critical, margin;
} rk_threshold;

#define RK_INFO     0
#define RK_WARNING  1
#define RK_CRITICAL 2
const char *rk_level_name(int level); /* "info" | "warning" | "critical" */

/* The level the value alone gives (no memory). */
int rk_level_raw(const rk_threshold *t, int64_t v);
/* The next level from prev with hysteresis; an invalid value counts as info. */
int rk_level_next(const rk_threshold *t, int prev, int valid, int64_t v);
/* The threshold the level is judged against (for events), 0 when the level is unused. */
int64_t rk_level_threshold(const rk_threshold *t, int level);

#endif
