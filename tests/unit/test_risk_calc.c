/* Unit tests of the risk metrics and levels (services/risk/calc.c, chain.c's price
 * scaling): every expected number below is computed by hand in the comments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "risk/calc.h"
#include "risk/chain.h"

/* n whole USDT (18 decimals) */
static money_u256 usdt(uint64_t n)
{
    money_u256 v, e;
    money_from_u64(&v, n);
    money_from_u64(&e, 1000000000000000000ULL);
    money_mul(&v, &v, &e);
    return v;
}

/* price with 18 decimals from a value in 1e-4 units (10500 = 1.05) */
static money_u256 px(uint64_t ten_thousandths)
{
    money_u256 v, e;
    money_from_u64(&v, ten_thousandths);
    money_from_u64(&e, 100000000000000ULL);
    money_mul(&v, &v, &e);
    return v;
}

static void add_asset(rk_chain *c, const char *tok, int tier, uint64_t value_usdt, uint64_t price,
                      uint64_t alt, uint64_t updated)
{
    rk_asset *a = &c->assets[c->nassets++];
    memset(a, 0, sizeof *a);
    strcpy(a->token, tok);
    a->tier = tier;
    a->value = usdt(value_usdt);
    a->price = px(price);
    a->price_ok = price > 0;
    a->alt_price = px(alt);
    a->alt_ok = alt > 0;
    a->updated_at = updated;
}

/* NAV 1,000,000: L1 120,000; L2 = A 350,000 + B 200,000; L3 = C 250,000 + D 80,000. */
static void fixture(rk_chain *c, rk_inputs *in)
{
    memset(c, 0, sizeof *c);
    memset(in, 0, sizeof *in);
    c->block = 100;
    c->block_time = 10000;
    c->total_assets = usdt(1000000);
    c->l1 = usdt(120000);
    c->l2 = usdt(550000);
    c->l3 = usdt(330000);
    c->share_price = px(10300);
    add_asset(c, "0xa", 2, 350000, 10500, 10000, 10000 - 7200); /* dev 476, age 7200 */
    add_asset(c, "0xb", 2, 200000, 10000, 10100, 9990);         /* dev 100 */
    add_asset(c, "0xc", 3, 250000, 524000, 0, 9000);            /* no second source */
    add_asset(c, "0xd", 3, 80000, 98700, 98700, 10000);         /* dev 0 */
    in->due = usdt(400000);
    in->requested = usdt(150000);
    in->nav_prev = px(10000);
    in->nav_prev_ok = 1;
}

static void test_metrics_by_hand(void **state)
{
    (void)state;
    rk_chain c;
    rk_inputs in;
    rk_metrics m;
    fixture(&c, &in);
    assert_int_equal(rk_compute(&c, &in, &m), 0);
    for (int i = 0; i < RK_M_COUNT; i++)
        assert_true(m.valid[i]);
    assert_int_equal(m.v[RK_M_L1], 1200);        /* 120k / 1M */
    assert_int_equal(m.v[RK_M_L1L2], 6700);      /* 670k / 1M */
    assert_int_equal(m.v[RK_M_COVERAGE], 16750); /* 670k / 400k = 1.675 */
    assert_int_equal(m.v[RK_M_NAV_CHANGE], 300); /* 1.03 vs 1.00 */
    assert_int_equal(m.v[RK_M_STALENESS], 7200); /* asset A, 2 h old */
    assert_int_equal(m.v[RK_M_DEVIATION], 476);  /* |1.05 - 1.00| / 1.05 = 476.19 bps */
    assert_int_equal(m.v[RK_M_LARGEST], 3500);   /* A 350k */
    assert_int_equal(m.v[RK_M_TOP3], 8000);      /* A + C + B = 800k */
    assert_int_equal(m.v[RK_M_REDEEM24], 1500);  /* 150k / 1M */
    assert_int_equal(m.weight_bps[0], 3500);
    assert_int_equal(m.weight_bps[3], 800);
}

static void test_nav_drop_and_rounding(void **state)
{
    (void)state;
    rk_chain c;
    rk_inputs in;
    rk_metrics m;
    fixture(&c, &in);
    c.share_price = px(9700); /* a fall counts as much as a rise */
    c.l1 = usdt(1);           /* 1 / 1,000,000 = 0.01 bps -> rounds down to 0 */
    in.due = usdt(3);         /* (1 + 550,000) / 3 = 183,333.67 -> 1,833,336,666 bps */
    assert_int_equal(rk_compute(&c, &in, &m), 0);
    assert_int_equal(m.v[RK_M_NAV_CHANGE], 300);
    assert_int_equal(m.v[RK_M_L1], 0);
    assert_int_equal(m.v[RK_M_COVERAGE], 1833336666LL);
}

static void test_unmeasurable(void **state)
{
    (void)state;
    rk_chain c;
    rk_inputs in;
    rk_metrics m;
    fixture(&c, &in);
    money_zero(&in.due);
    in.nav_prev_ok = 0;
    for (size_t i = 0; i < c.nassets; i++)
        c.assets[i].alt_ok = 0;
    assert_int_equal(rk_compute(&c, &in, &m), 0);
    assert_false(m.valid[RK_M_COVERAGE]);   /* nothing due: coverage is not a number */
    assert_false(m.valid[RK_M_NAV_CHANGE]); /* no share price a day old yet */
    assert_false(m.valid[RK_M_DEVIATION]);  /* no second source */
    assert_true(m.valid[RK_M_L1]);
    money_zero(&c.total_assets);
    assert_int_equal(rk_compute(&c, &in, &m), 0);
    assert_false(m.valid[RK_M_L1]);
    assert_false(m.valid[RK_M_LARGEST]);
    assert_false(m.valid[RK_M_REDEEM24]);
}

static void test_top3_order_independent(void **state)
{
    (void)state;
    rk_chain c;
    rk_inputs in;
    rk_metrics m;
    fixture(&c, &in);
    c.nassets = 0;
    /* values 10, 70, 30, 70, 50, 20 (thousands) -> largest 70, top 3 = 70 + 70 + 50 = 190 */
    const uint64_t vals[] = {10000, 70000, 30000, 70000, 50000, 20000};
    for (size_t i = 0; i < 6; i++)
        add_asset(&c, "0x1", 2, vals[i], 10000, 0, 10000);
    assert_int_equal(rk_compute(&c, &in, &m), 0);
    assert_int_equal(m.v[RK_M_LARGEST], 700);
    assert_int_equal(m.v[RK_M_TOP3], 1900);
    c.nassets = 2; /* fewer than three assets: top 3 is all of them */
    assert_int_equal(rk_compute(&c, &in, &m), 0);
    assert_int_equal(m.v[RK_M_TOP3], 800);
}

static void test_scale_price(void **state)
{
    (void)state;
    money_u256 v, want;
    int ok = -1;
    assert_int_equal(rk_scale_price("105000000", 8, &v, &ok), 0); /* 1.05 at 8 decimals */
    want = px(10500);
    assert_int_equal(ok, 1);
    assert_int_equal(money_cmp(&v, &want), 0);
    assert_int_equal(rk_scale_price("5240000000000000000000", 20, &v, &ok), 0); /* 52.4 */
    want = px(524000);
    assert_int_equal(money_cmp(&v, &want), 0);
    assert_int_equal(rk_scale_price("-1", 8, &v, &ok), 0);
    assert_int_equal(ok, 0);
    assert_int_equal(rk_scale_price("0", 8, &v, &ok), 0);
    assert_int_equal(ok, 0);
    assert_int_equal(rk_scale_price("1x", 8, &v, &ok), -1);
    assert_int_equal(rk_scale_price("-", 8, &v, &ok), -1);
    assert_int_equal(rk_scale_price("", 8, &v, &ok), -1);
}

static const rk_threshold L1 = {
    .below = 1, .has_warning = 1, .has_critical = 1, .warning = 800, .critical = 500, .margin = 50};
static const rk_threshold STALE = {.below = 0,
                                   .has_warning = 1,
                                   .has_critical = 1,
                                   .warning = 3600,
                                   .critical = 21600,
                                   .margin = 300};

static void test_levels_hysteresis(void **state)
{
    (void)state;
    /* (value, expected level) walking an L1 ratio down and back up */
    const int64_t walk[][2] = {{1000, 0}, {800, 0}, {799, 1}, {820, 1}, {849, 1}, {850, 0},
                               {799, 1},  {499, 2}, {520, 2}, {549, 2}, {560, 1}, {700, 1},
                               {849, 1},  {900, 0}, {400, 2}, {2000, 0}};
    int lvl = 0;
    for (size_t i = 0; i < sizeof walk / sizeof walk[0]; i++) {
        lvl = rk_level_next(&L1, lvl, 1, walk[i][0]);
        assert_int_equal(lvl, (int)walk[i][1]);
    }
    lvl = 0;
    const int64_t up[][2] = {{3600, 0},  {3601, 1},  {3400, 1},  {3300, 0},
                             {30000, 2}, {21600, 2}, {21300, 1}, {3000, 0}};
    for (size_t i = 0; i < sizeof up / sizeof up[0]; i++) {
        lvl = rk_level_next(&STALE, lvl, 1, up[i][0]);
        assert_int_equal(lvl, (int)up[i][1]);
    }
    assert_int_equal(rk_level_next(&STALE, 2, 0, 99999), 0); /* not measurable -> info */
    assert_int_equal(rk_level_raw(&L1, 500), 1);
    assert_int_equal(rk_level_raw(&L1, 499), 2);
    assert_int_equal(rk_level_threshold(&L1, 2), 500);
}

static void test_no_flapping(void **state)
{
    (void)state;
    int lvl = 0, changes = 0;
    for (int i = 0; i < 1000; i++) {
        int next = rk_level_next(&L1, lvl, 1, i % 2 ? 799 : 801); /* jitter on the threshold */
        changes += next != lvl;
        lvl = next;
    }
    assert_int_equal(changes, 1);
    assert_int_equal(lvl, 1);
    /* unused levels: a monitored-only metric never leaves info */
    rk_threshold mon = {.below = 1};
    assert_int_equal(rk_level_next(&mon, 0, 1, 0), 0);
    /* warning only */
    rk_threshold w = {.below = 0, .has_warning = 1, .warning = 10, .margin = 2};
    assert_int_equal(rk_level_next(&w, 0, 1, 1000), 1);
    assert_int_equal(rk_level_next(&w, 1, 1, 9), 1);
    assert_int_equal(rk_level_next(&w, 1, 1, 8), 0);
}

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < RK_M_COUNT; i++)
        assert_int_equal(rk_metric_find(rk_metric_name(i)), i);
    assert_int_equal(rk_metric_find("nope"), -1);
    assert_null(rk_metric_name(RK_M_COUNT));
    assert_string_equal(rk_level_name(2), "critical");
    int64_t v;
    money_u256 a = usdt(1), z;
    money_zero(&z);
    assert_int_equal(rk_ratio_bps(&a, &z, &v), -1);
    money_u256 tiny;
    money_from_u64(&tiny, 1);
    assert_int_equal(rk_ratio_bps(&a, &tiny, &v), 0);
    assert_int_equal(v, RK_VALUE_MAX); /* clamped */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_by_hand), cmocka_unit_test(test_nav_drop_and_rounding),
        cmocka_unit_test(test_unmeasurable),    cmocka_unit_test(test_top3_order_independent),
        cmocka_unit_test(test_scale_price),     cmocka_unit_test(test_levels_hysteresis),
        cmocka_unit_test(test_no_flapping),     cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
