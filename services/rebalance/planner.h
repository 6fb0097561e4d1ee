/* planner: the rebalance planner — a pure, deterministic function from the vault's holdings,
 * prices, per-asset targets and the redemption liability due soon to an ordered list of
 * trades (legs). No I/O, no clock, no floating point: every amount is a money_u256 and every
 * ratio is in basis points, so the same input always yields byte-identical legs.
 *
 * Rules (ARCHITECTURE §5 Rebalancing):
 *  1. Over-weight assets (value above target by more than band_bps, or above max) are sold
 *     down to target into L1 first.
 *  2. If L1 would still be below its target (max(NAV * l1_target_bps, liability)), more is
 *     sold — L2 before L3 — but never below an asset's min weight.
 *  3. Under-weight assets are bought, largest deficit first, only from the L1 surplus above
 *     that target.
 *  4. Legs below an asset's min trade size are dropped; every leg carries a min-out guard
 *     derived from the asset's slippage bound, and L1 is accounted at those worst-case
 *     outputs, so even a plan that fills at its guards never leaves L1 below the liability.
 * A plan that cannot cover the liability, or input that cannot be valued, is refused with
 * the reason in `why`.
 *
 * Memory: planner_run fills a caller-owned planner_result whose legs array it allocates;
 * planner_result_free releases it. Inputs are borrowed. */
#ifndef REBALANCE_PLANNER_H
#define REBALANCE_PLANNER_H

#include <stddef.h>
#include <stdint.h>

#include "money.h"

#define PLANNER_ID_MAX 64

typedef struct planner_asset {
    char id[PLANNER_ID_MAX]; /* token address (ties are broken by it, so it must be unique) */
    int tier;                /* 2 or 3 */
    int enabled;             /* 0: held as is, never traded (still counts in NAV) */
    money_u256 balance;      /* token base units */
    unsigned decimals;       /* token decimals */
    money_u256 price;        /* feed answer, > 0 */
    unsigned price_decimals; /* feed decimals */
    uint32_t target_bps, min_bps, max_bps;
    money_u256 min_trade;  /* USDT base units; smaller legs are not worth sending */
    uint32_t slippage_bps; /* min-out = expected * (1 - slippage) */
} planner_asset;

typedef struct planner_input {
    money_u256 l1;          /* USDT held by the vault */
    unsigned usdt_decimals; /* 18 on BSC */
    const planner_asset *assets;
    size_t nassets;
    uint32_t l1_target_bps;  /* L1 the plan aims for */
    money_u256 liability_7d; /* net USDT due to redemptions within 7 days: hard floor for L1 */
    uint32_t band_bps;       /* deviations up to this are left alone (0 = trade any deviation) */
} planner_input;

typedef enum { PLANNER_SELL = 0, PLANNER_BUY = 1 } planner_side;

typedef struct planner_leg {
    size_t asset; /* index into planner_input.assets */
    planner_side side;
    money_u256 amount_in;    /* SELL: tokens; BUY: USDT */
    money_u256 expected_out; /* at the feed price: SELL: USDT; BUY: tokens */
    money_u256 min_out;      /* slippage guard passed to the vault */
    money_u256 value;        /* USDT value of the leg at the feed price */
} planner_leg;

typedef enum {
    PLANNER_OK = 0,
    PLANNER_INVALID = -1,    /* input cannot be valued or is inconsistent */
    PLANNER_INFEASIBLE = -2, /* no plan within the rules covers the liability */
} planner_status;

typedef struct planner_result {
    planner_leg *legs; /* sells first, then buys */
    size_t nlegs;
    money_u256 nav;          /* L1 + every asset at the feed price */
    money_u256 l1_target;    /* max(NAV * l1_target_bps, liability) */
    money_u256 l1_after_min; /* L1 if every leg fills exactly at its guard */
    money_u256 l1_after;     /* L1 at the feed price */
    money_u256 traded;       /* sum of leg values: what approval thresholds compare */
    int l1_short;            /* 1: L1 ends below its target (but covers the liability) */
    size_t out_of_bounds;    /* enabled assets still outside [min, max] after the plan */
} planner_result;

/* Computes the plan into *out, which is overwritten (free an earlier result first).
 * PLANNER_OK with zero legs means nothing needs doing. On failure the
 * result holds no legs and `why` says what is wrong (asset, amounts). */
planner_status planner_run(const planner_input *in, planner_result *out, char *why, size_t whylen);
void planner_result_free(planner_result *r);

/* USDT value of `balance` of a at its feed price (the vault's assetValue formula). 0 / -1. */
int planner_value(const planner_asset *a, unsigned usdt_decimals, money_u256 *out);

/* Trigger check (pure): 1 when some enabled asset deviates from its target by more than
 * dev_bps, or L1 is outside [l1_lo_bps, l1_hi_bps] of NAV, or below the liability; `why`
 * names the first reason. 0 when within bounds, -1 when the input cannot be valued. */
int planner_needs_rebalance(const planner_input *in, uint32_t dev_bps, uint32_t l1_lo_bps,
                            uint32_t l1_hi_bps, char *why, size_t whylen);

/* Weight of value in NAV in basis points (rounded down; 0 when NAV is 0). */
uint32_t planner_weight_bps(const money_u256 *value, const money_u256 *nav);

const char *planner_side_name(planner_side s); /* "sell" | "buy" */

#endif
