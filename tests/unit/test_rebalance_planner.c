/* Unit tests of the rebalance planner (services/rebalance/planner.c) on hand-made
 * portfolios: balanced (nothing to do), over/under-weight pairs, L1 too low (sell L2 before
 * L3, never below min), L1 too high, a liability that forces sales, the min trade size, the
 * slippage guards (exact values), 6-decimal tokens, disabled assets, the tolerance band,
 * impossible plans and bad input (with the reason), determinism under input permutation,
 * the trigger check, and invariants over many generated portfolios. No network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rebalance/planner.h"

#define E18 1000000000000000000ULL

static money_u256 usd(uint64_t whole)
{
    money_u256 w, s, out;
    money_from_u64(&w, whole);
    money_from_u64(&s, E18);
    assert_int_equal(money_mul(&out, &w, &s), 0);
    return out;
}

static money_u256 u(uint64_t x)
{
    money_u256 v;
    money_from_u64(&v, x);
    return v;
}

/* An asset worth `value_usd` at price `price_cents` / 100 USD (8-decimal feed). */
static planner_asset asset(const char *id, int tier, uint64_t value_usd, uint64_t price_cents,
                           unsigned decimals, uint32_t target, uint32_t min, uint32_t max)
{
    planner_asset a;
    memset(&a, 0, sizeof a);
    snprintf(a.id, sizeof a.id, "%s", id);
    a.tier = tier;
    a.enabled = 1;
    a.decimals = decimals;
    a.price_decimals = 8;
    a.price = u(price_cents * 1000000ULL);
    /* balance = value * 10^dec * 100 / price_cents */
    money_u256 v = u(value_usd), p10 = u(1), ten = u(10), hundred = u(100), pc = u(price_cents);
    for (unsigned i = 0; i < decimals; i++)
        money_mul(&p10, &p10, &ten);
    money_mul(&v, &v, &p10);
    money_mul_div(&a.balance, &v, &hundred, &pc, MONEY_ROUND_DOWN);
    a.target_bps = target;
    a.min_bps = min;
    a.max_bps = max;
    a.min_trade = usd(100);
    a.slippage_bps = 50;
    return a;
}

/* planner_run on a result that may hold an earlier run's legs. */
static planner_status rerun(const planner_input *in, planner_result *r, char *why, size_t len)
{
    planner_result_free(r);
    return planner_run(in, r, why, len);
}

static planner_input input(planner_asset *as, size_t n, uint64_t l1_usd)
{
    planner_input in;
    memset(&in, 0, sizeof in);
    in.l1 = usd(l1_usd);
    in.usdt_decimals = 18;
    in.assets = as;
    in.nassets = n;
    in.l1_target_bps = 1000;
    return in;
}

/* Whole USD of a base-unit amount, rounded down. */
static uint64_t whole(const money_u256 *v)
{
    money_u256 q, s = u(E18);
    uint64_t x = 0;
    money_div(&q, NULL, v, &s);
    assert_int_equal(money_to_u64(&q, &x), 0);
    return x;
}

/* The devchain's four assets (targets 35/25/20/10 %, L1 10 %) at the given values. */
static void devchain(planner_asset as[4], uint64_t ustb, uint64_t pmmf, uint64_t rwre,
                     uint64_t pcrd)
{
    as[0] = asset("ustb", 2, ustb, 105, 18, 3500, 2500, 4500);
    as[1] = asset("pmmf", 2, pmmf, 100, 18, 2500, 1500, 3500);
    as[2] = asset("rwre", 3, rwre, 5240, 18, 2000, 1000, 3000);
    as[3] = asset("pcrd", 3, pcrd, 987, 6, 1000, 500, 1500);
}

static void test_balanced_portfolio_needs_nothing(void **state)
{
    (void)state;
    planner_asset as[4];
    devchain(as, 350000, 250000, 200000, 100000);
    planner_input in = input(as, 4, 100000);
    planner_result r = {0};
    char why[256];
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_int_equal(r.nlegs, 0);
    /* NAV within rounding of the token amounts (a few wei below 1M). */
    assert_true(whole(&r.nav) >= 999999 && whole(&r.nav) <= 1000000);
    assert_int_equal(r.out_of_bounds, 0);
    assert_int_equal(planner_needs_rebalance(&in, 500, 800, 1500, why, sizeof why), 0);
    planner_result_free(&r);
}

static void test_overweight_sold_then_underweight_bought(void **state)
{
    (void)state;
    planner_asset as[4];
    /* USTB 45 % (+10 pp), PMMF 15 % (-10 pp). */
    devchain(as, 450000, 150000, 200000, 100000);
    planner_input in = input(as, 4, 100000);
    planner_result r = {0};
    char why[256];
    assert_int_equal(planner_needs_rebalance(&in, 500, 800, 1500, why, sizeof why), 1);
    assert_non_null(strstr(why, "ustb"));
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_int_equal(r.nlegs, 2);
    assert_int_equal(r.legs[0].side, PLANNER_SELL);
    assert_int_equal(r.legs[0].asset, 0);
    assert_int_equal(r.legs[1].side, PLANNER_BUY);
    assert_int_equal(r.legs[1].asset, 1);
    /* About 100K each way. The buy is limited to what the sale guarantees (its guard). */
    assert_true(whole(&r.legs[0].value) >= 99999 && whole(&r.legs[0].value) <= 100000);
    assert_true(whole(&r.legs[1].amount_in) >= 99400 && whole(&r.legs[1].amount_in) <= 99500);
    /* L1 never ends below its 10 % target, even at the guards. */
    assert_true(money_cmp(&r.l1_after_min, &r.l1_target) >= 0);
    assert_int_equal(r.l1_short, 0);
    assert_int_equal(r.out_of_bounds, 0);
    money_u256 sum;
    money_add(&sum, &r.legs[0].value, &r.legs[1].value);
    assert_int_equal(money_cmp(&sum, &r.traded), 0);
    planner_result_free(&r);
}

static void test_slippage_guard_exact(void **state)
{
    (void)state;
    /* One asset at $1.00, 18 decimals, 1 % slippage; 200K over target. */
    planner_asset as[1] = {asset("a", 2, 900000, 100, 18, 7000, 0, 9000)};
    as[0].slippage_bps = 100;
    planner_input in = input(as, 1, 100000);
    in.l1_target_bps = 1000;
    planner_result r = {0};
    char why[256];
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_int_equal(r.nlegs, 1);
    assert_int_equal(r.legs[0].side, PLANNER_SELL);
    /* NAV 1M, target 700K: sell exactly 200K tokens for 200K USDT, guard 198K. */
    assert_int_equal(money_cmp(&r.legs[0].amount_in, (money_u256[]){usd(200000)}), 0);
    assert_int_equal(money_cmp(&r.legs[0].expected_out, (money_u256[]){usd(200000)}), 0);
    assert_int_equal(money_cmp(&r.legs[0].min_out, (money_u256[]){usd(198000)}), 0);
    assert_int_equal(money_cmp(&r.l1_after_min, (money_u256[]){usd(298000)}), 0);
    assert_int_equal(money_cmp(&r.l1_after, (money_u256[]){usd(300000)}), 0);
    planner_result_free(&r);
}

static void test_low_l1_sells_l2_before_l3_and_respects_min(void **state)
{
    (void)state;
    planner_asset as[4];
    /* Every asset at target except L1 at 2 % (the rest are scaled a bit up). */
    devchain(as, 385000, 275000, 220000, 100000);
    planner_input in = input(as, 4, 20000);
    in.l1_target_bps = 1000;
    planner_result r = {0};
    char why[256];
    assert_int_equal(planner_needs_rebalance(&in, 500, 800, 1500, why, sizeof why), 1);
    assert_non_null(strstr(why, "L1"));
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_true(r.nlegs >= 1);
    for (size_t i = 0; i < r.nlegs; i++)
        assert_int_equal(r.legs[i].side, PLANNER_SELL);
    assert_true(money_cmp(&r.l1_after_min, &r.l1_target) >= 0);
    /* NAV 1M, L1 target 100K. Over-weight USTB (38.5 %), PMMF (27.5 %), RWRE (22 %) go to
     * target: 35K + 25K + 20K = 80K, plus 20K held = 100K minus slippage; the small rest
     * comes from L2 (more liquid) before any L3 asset is touched beyond its target. */
    int pcrd_sold = 0;
    for (size_t i = 0; i < r.nlegs; i++)
        if (r.legs[i].asset == 3)
            pcrd_sold = 1;
    assert_false(pcrd_sold);
    planner_result_free(&r);
}

static void test_liability_forces_sales_down_to_min(void **state)
{
    (void)state;
    planner_asset as[4];
    devchain(as, 350000, 250000, 200000, 100000);
    planner_input in = input(as, 4, 100000);
    /* 300K due within 7 days: 200K more L1 than held. */
    in.liability_7d = usd(300000);
    planner_result r = {0};
    char why[256];
    assert_int_equal(planner_needs_rebalance(&in, 500, 800, 1500, why, sizeof why), 1);
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_true(money_cmp(&r.l1_after_min, &in.liability_7d) >= 0);
    assert_int_equal(money_cmp(&r.l1_target, &in.liability_7d), 0);
    /* L2 room above min: USTB 100K + PMMF 100K = 200K, not quite enough at the guards:
     * the rest comes from L3. No asset is sold below its min weight. */
    money_u256 sold[4] = {0};
    for (size_t i = 0; i < r.nlegs; i++) {
        assert_int_equal(r.legs[i].side, PLANNER_SELL);
        sold[r.legs[i].asset] = r.legs[i].value;
    }
    assert_true(whole(&sold[0]) >= 99990 && whole(&sold[0]) <= 100000);
    assert_true(whole(&sold[1]) >= 99990 && whole(&sold[1]) <= 100000);
    assert_true(whole(&sold[2]) + whole(&sold[3]) > 0);
    assert_true(whole(&sold[2]) <= 100000 && whole(&sold[3]) <= 50000);
    planner_result_free(&r);
}

static void test_impossible_liability_says_why(void **state)
{
    (void)state;
    planner_asset as[4];
    devchain(as, 350000, 250000, 200000, 100000);
    planner_input in = input(as, 4, 100000);
    /* Selling everything down to min frees 100K+100K+100K+50K = 350K; 460K cannot be met. */
    in.liability_7d = usd(460000);
    planner_result r = {0};
    char why[512];
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_INFEASIBLE);
    assert_int_equal(r.nlegs, 0);
    assert_null(r.legs);
    assert_non_null(strstr(why, "liability"));
    assert_non_null(strstr(why, "short by"));
    /* More than NAV: impossible too. */
    in.liability_7d = usd(2000000);
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_INFEASIBLE);
    planner_result_free(&r);
}

static void test_l1_short_of_target_but_covers_liability(void **state)
{
    (void)state;
    /* All assets at min already, L1 low: nothing can be sold, liability 0 -> short, no buys. */
    planner_asset as[2] = {asset("a", 2, 480000, 100, 18, 5000, 4800, 6000),
                           asset("b", 3, 480000, 100, 18, 4000, 4800, 6000)};
    as[1].target_bps = 4800;
    as[1].min_bps = 4800;
    as[0].target_bps = 4800;
    planner_input in = input(as, 2, 40000);
    in.l1_target_bps = 400;
    /* At target exactly: plan is empty and not short. */
    planner_result r = {0};
    char why[256];
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_int_equal(r.nlegs, 0);
    assert_int_equal(r.l1_short, 0);
    in.l1_target_bps = 400;
    in.l1 = usd(20000); /* NAV 980K, target 39.2K, nothing above min to sell */
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_int_equal(r.l1_short, 1);
    for (size_t i = 0; i < r.nlegs; i++)
        assert_int_equal(r.legs[i].side, PLANNER_SELL);
    planner_result_free(&r);
}

static void test_high_l1_buys_underweight(void **state)
{
    (void)state;
    planner_asset as[4];
    devchain(as, 300000, 200000, 150000, 100000);
    planner_input in = input(as, 4, 250000); /* L1 25 % */
    planner_result r = {0};
    char why[256];
    assert_int_equal(planner_needs_rebalance(&in, 500, 800, 1500, why, sizeof why), 1);
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    /* Deficits: USTB 50K, PMMF 50K, RWRE 50K (PCRD at target). Surplus 150K. */
    assert_int_equal(r.nlegs, 3);
    for (size_t i = 0; i < r.nlegs; i++) {
        assert_int_equal(r.legs[i].side, PLANNER_BUY);
        assert_true(r.legs[i].asset != 3);
        assert_true(whole(&r.legs[i].amount_in) >= 49999 && whole(&r.legs[i].amount_in) <= 50000);
    }
    /* Largest first (the deficits differ only by token rounding). */
    for (size_t i = 1; i < r.nlegs; i++)
        assert_true(money_cmp(&r.legs[i - 1].amount_in, &r.legs[i].amount_in) >= 0);
    assert_true(money_cmp(&r.l1_after_min, &r.l1_target) >= 0);
    planner_result_free(&r);
}

static void test_surplus_limits_buys_largest_deficit_first(void **state)
{
    (void)state;
    planner_asset as[2] = {asset("a", 2, 300000, 100, 18, 4500, 2000, 6000),
                           asset("b", 3, 420000, 100, 18, 4500, 2000, 6000)};
    planner_input in = input(as, 2, 280000); /* NAV 1M, L1 target 10 % -> surplus 180K */
    planner_result r = {0};
    char why[256];
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    /* a needs 150K, b 30K: both fit exactly. */
    assert_int_equal(r.nlegs, 2);
    assert_int_equal(r.legs[0].asset, 0);
    assert_int_equal(whole(&r.legs[0].amount_in), 150000);
    assert_int_equal(whole(&r.legs[1].amount_in), 30000);
    /* With less surplus, the largest deficit is served first and b gets the rest. */
    in.l1 = usd(230000); /* NAV 950K, target 95K, surplus 135K; a needs 127.5K */
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_int_equal(r.nlegs, 2);
    assert_int_equal(r.legs[0].asset, 0);
    assert_int_equal(whole(&r.legs[0].amount_in), 127500);
    assert_int_equal(whole(&r.legs[1].amount_in), 7500);
    assert_int_equal(money_cmp(&r.l1_after_min, &r.l1_target), 0);
    planner_result_free(&r);
}

static void test_min_trade_drops_small_legs(void **state)
{
    (void)state;
    planner_asset as[2] = {asset("a", 2, 455000, 100, 18, 4500, 2000, 6000),
                           asset("b", 3, 445000, 100, 18, 4500, 2000, 6000)};
    planner_input in = input(as, 2, 100000);
    planner_result r = {0};
    char why[256];
    /* 5K off each way: traded with min trade 1K... */
    as[0].min_trade = as[1].min_trade = usd(1000);
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_int_equal(r.nlegs, 2);
    /* ...dropped with 10K. */
    as[0].min_trade = as[1].min_trade = usd(10000);
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_int_equal(r.nlegs, 0);
    planner_result_free(&r);
}

static void test_band_ignores_small_deviation_but_not_bounds(void **state)
{
    (void)state;
    planner_asset as[2] = {asset("a", 2, 470000, 100, 18, 4500, 4000, 4600),
                           asset("b", 3, 430000, 100, 18, 4500, 4000, 5000)};
    planner_input in = input(as, 2, 100000);
    in.band_bps = 300;
    planner_result r = {0};
    char why[256];
    /* a is 2 pp over target (inside the band) but above its 46 % max: it is sold anyway. */
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_true(r.nlegs >= 1);
    assert_int_equal(r.legs[0].side, PLANNER_SELL);
    assert_int_equal(r.legs[0].asset, 0);
    as[0].max_bps = 5000;
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_int_equal(r.nlegs, 0);
    planner_result_free(&r);
}

static void test_six_decimal_token(void **state)
{
    (void)state;
    /* PCRD: 6 decimals at $9.87; 200K worth is 20263.424... tokens. */
    planner_asset as[1] = {asset("pcrd", 3, 200000, 987, 6, 1000, 500, 1500)};
    money_u256 v;
    assert_int_equal(planner_value(&as[0], 18, &v), 0);
    assert_int_equal(whole(&v), 199999); /* token rounding loses less than one micro-token */
    planner_input in = input(as, 1, 800000);
    planner_result r = {0};
    char why[256];
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_int_equal(r.nlegs, 1);
    assert_int_equal(r.legs[0].side, PLANNER_SELL);
    /* NAV ~1M, target 10 %: sell ~100K = ~10131.71 tokens (6 decimals). */
    uint64_t tok = 0;
    assert_int_equal(money_to_u64(&r.legs[0].amount_in, &tok), 0);
    assert_true(tok > 10131000000ULL && tok < 10132500000ULL);
    planner_result_free(&r);
}

static void test_disabled_asset_never_traded(void **state)
{
    (void)state;
    planner_asset as[4];
    devchain(as, 450000, 150000, 200000, 100000);
    as[0].enabled = 0;
    planner_input in = input(as, 4, 100000);
    planner_result r = {0};
    char why[256];
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    for (size_t i = 0; i < r.nlegs; i++)
        assert_true(r.legs[i].asset != 0);
    /* A disabled asset may have no price at all (valued 0, as the vault does). */
    as[0].price = u(0);
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    planner_result_free(&r);
}

static void test_invalid_input_says_why(void **state)
{
    (void)state;
    planner_asset as[4];
    planner_input in;
    planner_result r = {0};
    char why[256];
    devchain(as, 350000, 250000, 200000, 100000);
    in = input(as, 4, 100000);
    in.l1_target_bps = 1500; /* 9000 + 1500 > 10000 */
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_INVALID);
    assert_non_null(strstr(why, "10500"));
    in.l1_target_bps = 1000;
    as[1].min_bps = 3000; /* min above target */
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_INVALID);
    assert_non_null(strstr(why, "pmmf"));
    devchain(as, 350000, 250000, 200000, 100000);
    as[2].price = u(0);
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_INVALID);
    assert_non_null(strstr(why, "rwre"));
    assert_non_null(strstr(why, "price"));
    devchain(as, 350000, 250000, 200000, 100000);
    as[3].tier = 1;
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_INVALID);
    assert_non_null(strstr(why, "tier"));
    devchain(as, 350000, 250000, 200000, 100000);
    as[0].slippage_bps = 10000;
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_INVALID);
    devchain(as, 350000, 250000, 200000, 100000);
    as[0].decimals = 60; /* no real token has more than 36 */
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_INVALID);
    assert_null(r.legs);
    planner_result_free(&r);
}

static void test_empty_and_zero_nav(void **state)
{
    (void)state;
    planner_input in = input(NULL, 0, 0);
    planner_result r = {0};
    char why[256];
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_OK);
    assert_int_equal(r.nlegs, 0);
    assert_int_equal(planner_needs_rebalance(&in, 500, 800, 1500, why, sizeof why), 0);
    in.liability_7d = usd(1);
    assert_int_equal(rerun(&in, &r, why, sizeof why), PLANNER_INFEASIBLE);
    planner_result_free(&r);
}

static void test_deterministic_under_permutation(void **state)
{
    (void)state;
    planner_asset as[4], perm[4];
    devchain(as, 420000, 180000, 260000, 40000);
    perm[0] = as[3];
    perm[1] = as[1];
    perm[2] = as[0];
    perm[3] = as[2];
    planner_input a = input(as, 4, 100000), b = input(perm, 4, 100000);
    planner_result ra, rb, ra2;
    char why[256];
    assert_int_equal(planner_run(&a, &ra, why, sizeof why), PLANNER_OK);
    assert_int_equal(planner_run(&a, &ra2, why, sizeof why), PLANNER_OK);
    assert_int_equal(planner_run(&b, &rb, why, sizeof why), PLANNER_OK);
    assert_true(ra.nlegs >= 3);
    assert_int_equal(ra.nlegs, rb.nlegs);
    assert_int_equal(ra.nlegs, ra2.nlegs);
    assert_memory_equal(ra.legs, ra2.legs, ra.nlegs * sizeof *ra.legs);
    for (size_t i = 0; i < ra.nlegs; i++) {
        assert_string_equal(as[ra.legs[i].asset].id, perm[rb.legs[i].asset].id);
        assert_int_equal(ra.legs[i].side, rb.legs[i].side);
        assert_int_equal(money_cmp(&ra.legs[i].amount_in, &rb.legs[i].amount_in), 0);
        assert_int_equal(money_cmp(&ra.legs[i].min_out, &rb.legs[i].min_out), 0);
    }
    planner_result_free(&ra);
    planner_result_free(&ra2);
    planner_result_free(&rb);
}

static void test_trigger_thresholds(void **state)
{
    (void)state;
    planner_asset as[4];
    char why[256];
    /* 4 pp deviation: within 5 pp. */
    devchain(as, 390000, 210000, 200000, 100000);
    planner_input in = input(as, 4, 100000);
    assert_int_equal(planner_needs_rebalance(&in, 500, 800, 1500, why, sizeof why), 0);
    /* 6 pp: triggers. */
    devchain(as, 410000, 190000, 200000, 100000);
    assert_int_equal(planner_needs_rebalance(&in, 500, 800, 1500, why, sizeof why), 1);
    /* L1 at 7.5 % and at 16 % trigger; 8 % and 15 % do not. */
    devchain(as, 350000, 250000, 200000, 125000);
    in.l1 = usd(75000); /* NAV 1M */
    assert_int_equal(planner_needs_rebalance(&in, 1000, 800, 1500, why, sizeof why), 1);
    assert_non_null(strstr(why, "L1"));
    devchain(as, 350000, 250000, 200000, 120000);
    in.l1 = usd(80000);
    assert_int_equal(planner_needs_rebalance(&in, 1000, 800, 1500, why, sizeof why), 0);
    devchain(as, 350000, 250000, 200000, 40000);
    in.l1 = usd(160000);
    assert_int_equal(planner_needs_rebalance(&in, 1000, 800, 1500, why, sizeof why), 1);
}

/* xorshift, fixed seed: generated portfolios are the same on every run. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static void test_invariants_on_generated_portfolios(void **state)
{
    (void)state;
    enum { RUNS = 2000, MAXN = 12 };
    size_t ok = 0, infeasible = 0, with_legs = 0;
    for (int run = 0; run < RUNS; run++) {
        planner_asset as[MAXN];
        size_t n = 1 + rnd(MAXN);
        uint32_t left = 9000;
        for (size_t i = 0; i < n; i++) {
            char id[16];
            snprintf(id, sizeof id, "a%02zu", i);
            uint32_t t = (uint32_t)rnd(left / (uint32_t)(n - i) + 1);
            left -= t;
            uint32_t mn = (uint32_t)rnd(t + 1), mx = t + (uint32_t)rnd(2000);
            as[i] = asset(id, 2 + (int)rnd(2), 1000 + rnd(500000), 50 + rnd(10000), rnd(2) ? 18 : 6,
                          t, mn, mx > 10000 ? 10000 : mx);
            as[i].slippage_bps = (uint32_t)rnd(300);
            as[i].min_trade = usd(rnd(5000));
            as[i].enabled = rnd(10) != 0;
        }
        planner_input in = input(as, n, rnd(400000));
        /* Asset targets add up to 9000 - left, so L1 may aim for up to 1000 + left. */
        in.l1_target_bps = 800 + (uint32_t)rnd((200 + left < 700 ? 200 + left : 700) + 1);
        in.liability_7d = usd(rnd(4) == 0 ? rnd(600000) : 0);
        in.band_bps = (uint32_t)rnd(200);
        planner_result r = {0};
        char why[256];
        planner_status st = rerun(&in, &r, why, sizeof why);
        if (st == PLANNER_INVALID)
            fail_msg("run %d: invalid: %s", run, why);
        if (st == PLANNER_INFEASIBLE) {
            infeasible++;
            assert_true(money_cmp(&in.liability_7d, &in.l1) > 0);
            assert_int_equal(r.nlegs, 0);
            continue;
        }
        ok++;
        if (r.nlegs)
            with_legs++;
        /* L1 at the guards covers the liability; buys never dig below the target. */
        assert_true(money_cmp(&r.l1_after_min, &in.liability_7d) >= 0);
        int seen_buy = 0, any_buy = 0;
        money_u256 l1 = in.l1;
        for (size_t i = 0; i < r.nlegs; i++) {
            const planner_leg *l = &r.legs[i];
            const planner_asset *a = &as[l->asset];
            assert_true(a->enabled);
            assert_true(money_cmp(&l->value, &a->min_trade) >= 0);
            assert_true(money_cmp(&l->min_out, &l->expected_out) <= 0);
            if (l->side == PLANNER_SELL) {
                assert_false(seen_buy); /* sells first */
                assert_true(money_cmp(&l->amount_in, &a->balance) <= 0);
                money_add(&l1, &l1, &l->min_out);
            } else {
                seen_buy = any_buy = 1;
                assert_int_equal(money_sub(&l1, &l1, &l->amount_in), 0);
            }
            for (size_t j = 0; j < i; j++)
                assert_true(r.legs[j].asset != l->asset || r.legs[j].side != l->side);
        }
        assert_int_equal(money_cmp(&l1, &r.l1_after_min), 0);
        if (any_buy)
            assert_true(money_cmp(&r.l1_after_min, &r.l1_target) >= 0);
        planner_result_free(&r);
    }
    /* The generator must exercise every outcome. */
    assert_true(ok > RUNS / 2);
    assert_true(with_legs > RUNS / 4);
    assert_true(infeasible > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_balanced_portfolio_needs_nothing),
        cmocka_unit_test(test_overweight_sold_then_underweight_bought),
        cmocka_unit_test(test_slippage_guard_exact),
        cmocka_unit_test(test_low_l1_sells_l2_before_l3_and_respects_min),
        cmocka_unit_test(test_liability_forces_sales_down_to_min),
        cmocka_unit_test(test_impossible_liability_says_why),
        cmocka_unit_test(test_l1_short_of_target_but_covers_liability),
        cmocka_unit_test(test_high_l1_buys_underweight),
        cmocka_unit_test(test_surplus_limits_buys_largest_deficit_first),
        cmocka_unit_test(test_min_trade_drops_small_legs),
        cmocka_unit_test(test_band_ignores_small_deviation_but_not_bounds),
        cmocka_unit_test(test_six_decimal_token),
        cmocka_unit_test(test_disabled_asset_never_traded),
        cmocka_unit_test(test_invalid_input_says_why),
        cmocka_unit_test(test_empty_and_zero_nav),
        cmocka_unit_test(test_deterministic_under_permutation),
        cmocka_unit_test(test_trigger_thresholds),
        cmocka_unit_test(test_invariants_on_generated_portfolios),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
