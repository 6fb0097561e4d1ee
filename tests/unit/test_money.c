/* Unit tests for libcommon/money: checked uint256 arithmetic, parsing and
 * formatting. Division results are cross-checked against a deliberately naive
 * bit-at-a-time reference implemented here, independent of money.c's Knuth D. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "money.h"
#include "util.h"

#define MAX_DEC "115792089237316195423570985008687907853269984665640564039457584007913129639935"

/* ---------- independent reference (bit-serial, 32-bit limbs) ---------- */

/* 512-bit product from 32-bit limbs, so it shares no code path with money.c. */
static void ref_mul(uint32_t p[16], const money_u256 *a, const money_u256 *b)
{
    uint32_t x[8], y[8];
    for (int i = 0; i < 4; i++) {
        x[2 * i] = (uint32_t)a->w[i];
        x[2 * i + 1] = (uint32_t)(a->w[i] >> 32);
        y[2 * i] = (uint32_t)b->w[i];
        y[2 * i + 1] = (uint32_t)(b->w[i] >> 32);
    }
    memset(p, 0, 16 * sizeof p[0]);
    for (int i = 0; i < 8; i++) {
        uint64_t c = 0;
        for (int j = 0; j < 8; j++) {
            uint64_t t = (uint64_t)x[i] * y[j] + p[i + j] + c;
            p[i + j] = (uint32_t)t;
            c = t >> 32;
        }
        p[i + 8] = (uint32_t)c;
    }
}

/* Restoring binary long division of a 512-bit value by a 256-bit one; the
 * running remainder gets a 9th limb because shifting it left can reach 2^257. */
static void ref_divmod(uint32_t q[16], uint32_t r[8], const uint32_t n[16], const money_u256 *dv)
{
    uint32_t d[9] = {0}, rem[9] = {0};
    for (int i = 0; i < 4; i++) {
        d[2 * i] = (uint32_t)dv->w[i];
        d[2 * i + 1] = (uint32_t)(dv->w[i] >> 32);
    }
    memset(q, 0, 16 * sizeof q[0]);
    for (int bit = 511; bit >= 0; bit--) {
        for (int i = 8; i > 0; i--)
            rem[i] = (rem[i] << 1) | (rem[i - 1] >> 31);
        rem[0] = (rem[0] << 1) | ((n[bit / 32] >> (bit % 32)) & 1);
        int ge = 1;
        for (int i = 8; i >= 0; i--) {
            if (rem[i] != d[i]) {
                ge = rem[i] > d[i];
                break;
            }
        }
        if (ge) {
            uint64_t borrow = 0;
            for (int i = 0; i < 9; i++) {
                uint64_t t = (uint64_t)rem[i] - d[i] - borrow;
                rem[i] = (uint32_t)t;
                borrow = (t >> 63) & 1;
            }
            q[bit / 32] |= 1u << (bit % 32);
        }
    }
    memcpy(r, rem, 8 * sizeof r[0]);
}

static void from32(money_u256 *v, const uint32_t *x)
{
    for (int i = 0; i < 4; i++)
        v->w[i] = ((uint64_t)x[2 * i + 1] << 32) | x[2 * i];
}

/* Values biased towards the limb patterns that exercise Knuth D's corner cases
 * (all-ones, top-bit, zero limbs) and short operands. */
static void rand_u256(money_u256 *v)
{
    uint32_t x[8];
    uint8_t sel[9];
    assert_int_equal(util_random(x, sizeof x), 0);
    assert_int_equal(util_random(sel, sizeof sel), 0);
    for (int i = 0; i < 8; i++) {
        switch (sel[i] % 8) {
        case 0:
            x[i] = 0;
            break;
        case 1:
            x[i] = 0xffffffffu;
            break;
        case 2:
            x[i] = 0x80000000u;
            break;
        case 3:
            x[i] = 0x7fffffffu;
            break;
        case 4:
            x[i] = 1;
            break;
        default:
            break; /* keep the random limb */
        }
    }
    int keep = 1 + sel[8] % 8; /* keep only the low `keep` limbs */
    for (int i = keep; i < 8; i++)
        x[i] = 0;
    from32(v, x);
}

static void u64v(money_u256 *v, uint64_t x)
{
    money_from_u64(v, x);
}

static void dec(money_u256 *v, const char *s)
{
    char err[UTIL_ERRLEN];
    int rc = money_from_dec(v, s, err, sizeof err);
    if (rc != 0)
        fail_msg("money_from_dec(%s): %s", s, err);
}

static void assert_dec(const money_u256 *v, const char *want)
{
    char buf[MONEY_DEC_MAX];
    assert_int_equal(money_to_dec(v, buf, sizeof buf), 0);
    assert_string_equal(buf, want);
}

static void assert_units(const money_u256 *v, unsigned decimals, const char *want)
{
    char buf[MONEY_DEC_MAX];
    assert_int_equal(money_to_units(v, decimals, buf, sizeof buf), 0);
    assert_string_equal(buf, want);
}

/* ---------- tests ---------- */

static void test_basics(void **state)
{
    (void)state;
    money_u256 z, m, v;
    uint64_t x = 7;
    money_zero(&z);
    assert_true(money_is_zero(&z));
    money_max(&m);
    assert_false(money_is_zero(&m));
    assert_int_equal(money_cmp(&z, &m), -1);
    assert_int_equal(money_cmp(&m, &z), 1);
    assert_int_equal(money_cmp(&m, &m), 0);

    money_from_u64(&v, UINT64_MAX);
    assert_int_equal(money_to_u64(&v, &x), 0);
    assert_true(x == UINT64_MAX);
    v.w[1] = 1;
    x = 7;
    assert_int_equal(money_to_u64(&v, &x), -1);
    assert_true(x == 7); /* untouched */

    /* cmp looks at the most significant differing limb first */
    money_u256 a = {{UINT64_MAX, 0, 0, 0}}, b = {{0, 1, 0, 0}};
    assert_int_equal(money_cmp(&a, &b), -1);
}

static void test_add_sub(void **state)
{
    (void)state;
    money_u256 m, one, r, sentinel;
    money_max(&m);
    u64v(&one, 1);
    u64v(&sentinel, 12345);

    r = sentinel;
    assert_int_equal(money_add(&r, &m, &one), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);
    r = sentinel;
    assert_int_equal(money_add(&r, &one, &m), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);

    money_u256 zero;
    money_zero(&zero);
    assert_int_equal(money_add(&r, &m, &zero), 0);
    assert_int_equal(money_cmp(&r, &m), 0);

    /* carry ripples through every limb: (2^256-1) - 1 + 1 */
    money_u256 mm1;
    assert_int_equal(money_sub(&mm1, &m, &one), 0);
    assert_int_equal(money_add(&r, &mm1, &one), 0);
    assert_int_equal(money_cmp(&r, &m), 0);
    money_u256 lo = {{UINT64_MAX, UINT64_MAX, UINT64_MAX, 0}}, hi = {{0, 0, 0, 1}};
    assert_int_equal(money_add(&r, &lo, &one), 0);
    assert_int_equal(money_cmp(&r, &hi), 0);

    /* underflow */
    r = sentinel;
    assert_int_equal(money_sub(&r, &zero, &one), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);
    r = sentinel;
    assert_int_equal(money_sub(&r, &lo, &hi), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);
    assert_int_equal(money_sub(&r, &hi, &one), 0);
    assert_int_equal(money_cmp(&r, &lo), 0);
    assert_int_equal(money_sub(&r, &m, &m), 0);
    assert_true(money_is_zero(&r));

    /* aliasing: out == a */
    money_u256 acc;
    u64v(&acc, 40);
    u64v(&r, 2);
    assert_int_equal(money_add(&acc, &acc, &r), 0);
    assert_int_equal(acc.w[0], 42);

    /* random: (a + b) - b == a whenever the add succeeds; else a > max - b */
    for (int i = 0; i < 2000; i++) {
        money_u256 a, b, s, back, room;
        rand_u256(&a);
        rand_u256(&b);
        assert_int_equal(money_sub(&room, &m, &b), 0);
        if (money_add(&s, &a, &b) == 0) {
            assert_true(money_cmp(&a, &room) <= 0);
            assert_int_equal(money_sub(&back, &s, &b), 0);
            assert_int_equal(money_cmp(&back, &a), 0);
        } else {
            assert_int_equal(money_cmp(&a, &room), 1);
        }
        assert_int_equal(money_sub(&s, &a, &b) == 0, money_cmp(&a, &b) >= 0);
    }
}

static void test_mul(void **state)
{
    (void)state;
    money_u256 m, two, r, sentinel, half;
    money_max(&m);
    u64v(&two, 2);
    u64v(&sentinel, 99);

    r = sentinel;
    assert_int_equal(money_mul(&r, &m, &two), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);
    r = sentinel;
    assert_int_equal(money_mul(&r, &m, &m), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);

    /* 2^128 * 2^128 = 2^256 overflows; 2^128 * (2^128 - 1) fits */
    money_u256 p128 = {{0, 0, 1, 0}}, p128m1 = {{UINT64_MAX, UINT64_MAX, 0, 0}};
    assert_int_equal(money_mul(&r, &p128, &p128), -1);
    assert_int_equal(money_mul(&r, &p128, &p128m1), 0);
    money_u256 want = {{0, 0, UINT64_MAX, UINT64_MAX}};
    assert_int_equal(money_cmp(&r, &want), 0);

    /* (2^255 - 1) * 2 = 2^256 - 2 fits */
    half = m;
    half.w[3] >>= 1;
    assert_int_equal(money_mul(&r, &half, &two), 0);
    money_u256 mm1 = m;
    mm1.w[0] -= 1;
    assert_int_equal(money_cmp(&r, &mm1), 0);

    /* against the reference product */
    for (int i = 0; i < 3000; i++) {
        money_u256 a, b;
        uint32_t p[16];
        rand_u256(&a);
        rand_u256(&b);
        ref_mul(p, &a, &b);
        int fits = 1;
        for (int k = 8; k < 16; k++)
            fits &= p[k] == 0;
        r = sentinel;
        int rc = money_mul(&r, &a, &b);
        assert_int_equal(rc, fits ? 0 : -1);
        if (fits) {
            money_u256 exp;
            from32(&exp, p);
            assert_int_equal(money_cmp(&r, &exp), 0);
        } else {
            assert_int_equal(money_cmp(&r, &sentinel), 0);
        }
    }
}

static void test_div(void **state)
{
    (void)state;
    money_u256 a, b, q, r, zero, sentinel;
    money_zero(&zero);
    u64v(&sentinel, 5);
    u64v(&a, 100);
    q = r = sentinel;
    assert_int_equal(money_div(&q, &r, &a, &zero), -1);
    assert_int_equal(money_cmp(&q, &sentinel), 0);
    assert_int_equal(money_cmp(&r, &sentinel), 0);

    u64v(&b, 7);
    assert_int_equal(money_div(&q, &r, &a, &b), 0);
    assert_int_equal(q.w[0], 14);
    assert_int_equal(r.w[0], 2);
    assert_int_equal(money_div(&q, NULL, &a, &b), 0);
    assert_int_equal(money_div(NULL, &r, &a, &b), 0);
    assert_int_equal(r.w[0], 2);

    /* small / big */
    money_max(&b);
    assert_int_equal(money_div(&q, &r, &a, &b), 0);
    assert_true(money_is_zero(&q));
    assert_int_equal(money_cmp(&r, &a), 0);

    /* random, against the reference, and q*b + r == a with r < b */
    for (int i = 0; i < 3000; i++) {
        rand_u256(&a);
        rand_u256(&b);
        if (money_is_zero(&b))
            continue;
        assert_int_equal(money_div(&q, &r, &a, &b), 0);
        uint32_t n[16] = {0}, rq[16], rr[8];
        for (int k = 0; k < 4; k++) {
            n[2 * k] = (uint32_t)a.w[k];
            n[2 * k + 1] = (uint32_t)(a.w[k] >> 32);
        }
        ref_divmod(rq, rr, n, &b);
        money_u256 eq, er, back;
        from32(&eq, rq);
        from32(&er, rr);
        assert_int_equal(money_cmp(&q, &eq), 0);
        assert_int_equal(money_cmp(&r, &er), 0);
        assert_int_equal(money_cmp(&r, &b), -1);
        assert_int_equal(money_mul(&back, &q, &b), 0);
        assert_int_equal(money_add(&back, &back, &r), 0);
        assert_int_equal(money_cmp(&back, &a), 0);
    }
}

static void test_mul_div_wide(void **state)
{
    (void)state;
    money_u256 m, r, sentinel, one, two;
    money_max(&m);
    u64v(&one, 1);
    u64v(&two, 2);
    u64v(&sentinel, 77);

    /* (2^256-1)^2 / (2^256-1): the product needs all 512 bits */
    for (int mode = MONEY_ROUND_DOWN; mode <= MONEY_ROUND_HALF_EVEN; mode++) {
        assert_int_equal(money_mul_div(&r, &m, &m, &m, (money_round)mode), 0);
        assert_int_equal(money_cmp(&r, &m), 0);
    }
    /* (2^256-1)^2 / 2^255 is about 2^257: does not fit */
    money_u256 p255 = {{0, 0, 0, 1ULL << 63}};
    r = sentinel;
    assert_int_equal(money_mul_div(&r, &m, &m, &p255, MONEY_ROUND_DOWN), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);
    /* d == 0 */
    assert_int_equal(money_mul_div(&r, &m, &one, &(money_u256){{0}}, MONEY_ROUND_DOWN), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);
    /* m * 1 / 1 fits exactly, but rounding up an exact result must not add one */
    assert_int_equal(money_mul_div(&r, &m, &one, &one, MONEY_ROUND_UP), 0);
    assert_int_equal(money_cmp(&r, &m), 0);
    /* (2^256-1)^2 / (2^256-2) = 2^256 exactly (M^2 = (M-1)(M+1) + 1): never fits */
    money_u256 mm1 = m;
    mm1.w[0] -= 1;
    r = sentinel;
    assert_int_equal(money_mul_div(&r, &m, &m, &mm1, MONEY_ROUND_DOWN), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);
    /* (2^129-1)(2^129+1)/4 = (2^258-1)/4 = 2^256-1 rem 3: DOWN fits exactly at
     * the maximum, UP and HALF_EVEN (3 > 4/2) would need 2^256 */
    money_u256 a1 = {{UINT64_MAX, UINT64_MAX, 1, 0}}, b1 = {{1, 0, 2, 0}}, four;
    u64v(&four, 4);
    assert_int_equal(money_mul_div(&r, &a1, &b1, &four, MONEY_ROUND_DOWN), 0);
    assert_int_equal(money_cmp(&r, &m), 0);
    r = sentinel;
    assert_int_equal(money_mul_div(&r, &a1, &b1, &four, MONEY_ROUND_UP), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);
    assert_int_equal(money_mul_div(&r, &a1, &b1, &four, MONEY_ROUND_HALF_EVEN), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);

    /* an unknown rounding mode is refused, not treated as some default */
    r = sentinel;
    assert_int_equal(money_mul_div(&r, &one, &one, &one, (money_round)42), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);

    /* identities with 512-bit intermediates: a*b/b == a, a*b/a == b */
    for (int i = 0; i < 2000; i++) {
        money_u256 a, b;
        rand_u256(&a);
        rand_u256(&b);
        if (money_is_zero(&a) || money_is_zero(&b))
            continue;
        assert_int_equal(money_mul_div(&r, &a, &b, &b, MONEY_ROUND_UP), 0);
        assert_int_equal(money_cmp(&r, &a), 0);
        assert_int_equal(money_mul_div(&r, &a, &b, &a, MONEY_ROUND_HALF_EVEN), 0);
        assert_int_equal(money_cmp(&r, &b), 0);
    }

    /* random a*b/d against the reference, all rounding modes */
    for (int i = 0; i < 3000; i++) {
        money_u256 a, b, d;
        rand_u256(&a);
        rand_u256(&b);
        rand_u256(&d);
        if (money_is_zero(&d))
            continue;
        uint32_t p[16], q[16], rr[8];
        ref_mul(p, &a, &b);
        ref_divmod(q, rr, p, &d);
        int fits = 1;
        for (int k = 8; k < 16; k++)
            fits &= q[k] == 0;
        money_u256 qd, rem, rdown, rup, reven;
        from32(&qd, q);
        from32(&rem, rr);
        int rc = money_mul_div(&rdown, &a, &b, &d, MONEY_ROUND_DOWN);
        assert_int_equal(rc, fits ? 0 : -1);
        if (!fits)
            continue;
        assert_int_equal(money_cmp(&rdown, &qd), 0);

        int exact = money_is_zero(&rem);
        money_u256 qd1;
        int q1ok = money_add(&qd1, &qd, &one) == 0;
        rc = money_mul_div(&rup, &a, &b, &d, MONEY_ROUND_UP);
        if (exact) {
            assert_int_equal(rc, 0);
            assert_int_equal(money_cmp(&rup, &qd), 0);
        } else {
            assert_int_equal(rc, q1ok ? 0 : -1);
            if (q1ok)
                assert_int_equal(money_cmp(&rup, &qd1), 0);
        }

        /* half-even decided from 2*rem vs d computed with the reference multiply */
        uint32_t twice[16], dd[16];
        ref_mul(twice, &rem, &two);
        money_u256 dcopy = d;
        ref_mul(dd, &dcopy, &one);
        int c = 0;
        for (int k = 15; k >= 0 && c == 0; k--)
            c = twice[k] < dd[k] ? -1 : twice[k] > dd[k];
        int up = c > 0 || (c == 0 && (qd.w[0] & 1));
        rc = money_mul_div(&reven, &a, &b, &d, MONEY_ROUND_HALF_EVEN);
        if (!up) {
            assert_int_equal(rc, 0);
            assert_int_equal(money_cmp(&reven, &qd), 0);
        } else {
            assert_int_equal(rc, q1ok ? 0 : -1);
            if (q1ok)
                assert_int_equal(money_cmp(&reven, &qd1), 0);
        }
    }
}

static void test_rounding(void **state)
{
    (void)state;
    /* value*1/d for small cases where the exact quotient is obvious */
    struct {
        uint64_t n, d, down, up, even;
    } cases[] = {
        {5, 2, 2, 3, 2},   /* 2.5 tie -> even 2 */
        {7, 2, 3, 4, 4},   /* 3.5 tie -> even 4 */
        {1, 2, 0, 1, 0},   /* 0.5 tie -> 0 */
        {3, 2, 1, 2, 2},   /* 1.5 tie -> 2 */
        {10, 4, 2, 3, 2},  /* 2.5 */
        {14, 4, 3, 4, 4},  /* 3.5 */
        {7, 3, 2, 3, 2},   /* 2.33 */
        {8, 3, 2, 3, 3},   /* 2.67 */
        {9, 3, 3, 3, 3},   /* exact */
        {0, 3, 0, 0, 0},   /* zero */
        {11, 10, 1, 2, 1}, /* 1.1 */
        {19, 10, 1, 2, 2}, /* 1.9 */
    };
    money_u256 one;
    u64v(&one, 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        money_u256 n, d, r;
        u64v(&n, cases[i].n);
        u64v(&d, cases[i].d);
        assert_int_equal(money_mul_div(&r, &n, &one, &d, MONEY_ROUND_DOWN), 0);
        assert_int_equal(r.w[0], cases[i].down);
        assert_int_equal(money_mul_div(&r, &n, &one, &d, MONEY_ROUND_UP), 0);
        assert_int_equal(r.w[0], cases[i].up);
        assert_int_equal(money_mul_div(&r, &n, &one, &d, MONEY_ROUND_HALF_EVEN), 0);
        assert_int_equal(r.w[0], cases[i].even);
    }

    /* ties with a divisor near 2^256: d = 2^256-2, half = d/2 = 2^255-1, so
     * 3*half/d = 1.5 and 5*half/d = 2.5 exactly */
    money_u256 m, d, half, r, k;
    money_max(&m);
    d = m;
    d.w[0] -= 1;
    u64v(&k, 2);
    assert_int_equal(money_div(&half, NULL, &d, &k), 0);
    money_u256 three;
    u64v(&three, 3);
    assert_int_equal(money_mul_div(&r, &three, &half, &d, MONEY_ROUND_HALF_EVEN), 0);
    assert_int_equal(r.w[0], 2);
    assert_int_equal(r.w[1] | r.w[2] | r.w[3], 0);
    assert_int_equal(money_mul_div(&r, &three, &half, &d, MONEY_ROUND_DOWN), 0);
    assert_int_equal(r.w[0], 1);
    /* 5 * half / d = 2.5 -> even 2 */
    money_u256 five;
    u64v(&five, 5);
    assert_int_equal(money_mul_div(&r, &five, &half, &d, MONEY_ROUND_HALF_EVEN), 0);
    assert_int_equal(r.w[0], 2);
    assert_int_equal(money_mul_div(&r, &five, &half, &d, MONEY_ROUND_UP), 0);
    assert_int_equal(r.w[0], 3);
    /* d odd = 2^256-1: remainder (d-1)/2 is below half, (d+1)/2 = 2^255 above it
     * (and 2*rem = 2^256 would not fit in 256 bits) */
    money_u256 lo, hi2;
    assert_int_equal(money_div(&lo, NULL, &m, &k), 0); /* 2^255 - 1 = (d-1)/2 */
    assert_int_equal(money_add(&hi2, &lo, &one), 0);   /* 2^255 = (d+1)/2 */
    assert_int_equal(money_mul_div(&r, &lo, &one, &m, MONEY_ROUND_HALF_EVEN), 0);
    assert_true(money_is_zero(&r));
    assert_int_equal(money_mul_div(&r, &hi2, &one, &m, MONEY_ROUND_HALF_EVEN), 0);
    assert_int_equal(r.w[0], 1);
}

static void test_bps(void **state)
{
    (void)state;
    money_u256 a, r, m;
    /* 1,000,000 USDT at 25 bps = 2,500 USDT */
    assert_int_equal(money_from_units(&a, "1000000", 18, NULL, 0), 0);
    assert_int_equal(money_bps(&r, &a, 25, MONEY_ROUND_DOWN), 0);
    assert_units(&r, 18, "2500");
    /* 1 base unit at 5000 bps = 0.5 -> tie */
    u64v(&a, 1);
    assert_int_equal(money_bps(&r, &a, 5000, MONEY_ROUND_DOWN), 0);
    assert_true(money_is_zero(&r));
    assert_int_equal(money_bps(&r, &a, 5000, MONEY_ROUND_UP), 0);
    assert_int_equal(r.w[0], 1);
    assert_int_equal(money_bps(&r, &a, 5000, MONEY_ROUND_HALF_EVEN), 0);
    assert_true(money_is_zero(&r));
    u64v(&a, 3);
    assert_int_equal(money_bps(&r, &a, 5000, MONEY_ROUND_HALF_EVEN), 0); /* 1.5 -> 2 */
    assert_int_equal(r.w[0], 2);
    /* full 10000 bps of max is max (512-bit intermediate), 10001 bps overflows */
    money_max(&m);
    assert_int_equal(money_bps(&r, &m, 10000, MONEY_ROUND_DOWN), 0);
    assert_int_equal(money_cmp(&r, &m), 0);
    money_u256 sentinel;
    u64v(&sentinel, 3);
    r = sentinel;
    assert_int_equal(money_bps(&r, &m, 10001, MONEY_ROUND_DOWN), -1);
    assert_int_equal(money_cmp(&r, &sentinel), 0);
    assert_int_equal(money_bps(&r, &m, 0, MONEY_ROUND_UP), 0);
    assert_true(money_is_zero(&r));
}

static void test_dec(void **state)
{
    (void)state;
    money_u256 v, m, sentinel;
    char buf[MONEY_DEC_MAX], err[UTIL_ERRLEN];
    money_max(&m);
    u64v(&sentinel, 4242);

    dec(&v, MAX_DEC);
    assert_int_equal(money_cmp(&v, &m), 0);
    assert_dec(&m, MAX_DEC);
    dec(&v, "0");
    assert_true(money_is_zero(&v));
    assert_dec(&v, "0");
    dec(&v, "000000000000000000000000000000000000000000000000000000000000000000000000000000000042");
    assert_int_equal(v.w[0], 42);
    dec(&v, "18446744073709551616"); /* 2^64 */
    assert_int_equal(v.w[0], 0);
    assert_int_equal(v.w[1], 1);
    assert_dec(&v, "18446744073709551616");
    /* 10^19 boundary: the chunked formatter must pad inner chunks with zeros */
    dec(&v, "10000000000000000000");
    assert_dec(&v, "10000000000000000000");
    dec(&v, "100000000000000000000000000000000000000001");
    assert_dec(&v, "100000000000000000000000000000000000000001");

    /* 2^256 and beyond are rejected */
    const char *bad[] = {
        "",
        "115792089237316195423570985008687907853269984665640564039457584007913129639936",
        "999999999999999999999999999999999999999999999999999999999999999999999999999999",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1.0",
        "1e5",
        "1,000",
        "0x10",
        "１", /* fullwidth digit (UTF-8) */
        "12a",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = sentinel;
        err[0] = '\0';
        assert_int_equal(money_from_dec(&v, bad[i], err, sizeof err), -1);
        assert_true(err[0] != '\0');
        assert_int_equal(money_cmp(&v, &sentinel), 0);
    }
    assert_int_equal(money_from_dec(&v, NULL, NULL, 0), -1);

    /* buffer sizing: exactly digits + NUL is enough, one less is not */
    assert_int_equal(money_to_dec(&m, buf, 79), 0);
    strcpy(buf, "unchanged");
    assert_int_equal(money_to_dec(&m, buf, 78), -1);
    assert_string_equal(buf, "unchanged");
    u64v(&v, 0);
    assert_int_equal(money_to_dec(&v, buf, 1), -1);
    assert_int_equal(money_to_dec(&v, buf, 2), 0);

    /* small values against printf */
    for (int i = 0; i < 2000; i++) {
        uint64_t x;
        char want[32];
        assert_int_equal(util_random(&x, sizeof x), 0);
        x >>= (x & 63);
        snprintf(want, sizeof want, "%llu", (unsigned long long)x);
        u64v(&v, x);
        assert_dec(&v, want);
        money_u256 back;
        dec(&back, want);
        assert_int_equal(money_cmp(&back, &v), 0);
    }
}

static void test_units(void **state)
{
    (void)state;
    money_u256 v, one, sentinel;
    char err[UTIL_ERRLEN];
    u64v(&one, 1);
    u64v(&sentinel, 31337);

    assert_units(&one, 18, "0.000000000000000001");
    assert_int_equal(money_from_units(&v, "0.000000000000000001", 18, err, sizeof err), 0);
    assert_int_equal(money_cmp(&v, &one), 0);

    assert_int_equal(money_from_units(&v, "1", 18, err, sizeof err), 0);
    assert_dec(&v, "1000000000000000000");
    assert_units(&v, 18, "1");
    assert_int_equal(money_from_units(&v, "1.5", 18, err, sizeof err), 0);
    assert_dec(&v, "1500000000000000000");
    assert_units(&v, 18, "1.5");
    assert_int_equal(money_from_units(&v, "1234.5", 18, err, sizeof err), 0);
    assert_units(&v, 18, "1234.5");
    assert_int_equal(money_from_units(&v, "0001.500", 18, err, sizeof err), 0);
    assert_units(&v, 18, "1.5");
    assert_int_equal(money_from_units(&v, "0", 18, err, sizeof err), 0);
    assert_true(money_is_zero(&v));
    assert_units(&v, 18, "0");
    assert_int_equal(money_from_units(&v, "0.0", 18, err, sizeof err), 0);
    assert_true(money_is_zero(&v));
    assert_int_equal(money_from_units(&v, "10.000000000000000001", 18, err, sizeof err), 0);
    assert_dec(&v, "10000000000000000001");
    assert_units(&v, 18, "10.000000000000000001");
    assert_int_equal(money_from_units(&v, "100", 18, err, sizeof err), 0);
    assert_units(&v, 18, "100"); /* integer zeros are not trimmed */

    /* decimals 0 and 6 */
    assert_int_equal(money_from_units(&v, "42", 0, err, sizeof err), 0);
    assert_int_equal(v.w[0], 42);
    assert_units(&v, 0, "42");
    assert_int_equal(money_from_units(&v, "2.25", 6, err, sizeof err), 0);
    assert_int_equal(v.w[0], 2250000);
    assert_units(&v, 6, "2.25");

    /* max value in units: the whole digit string with a '.' 18 from the end */
    money_u256 m;
    money_max(&m);
    const char *max_units = "115792089237316195423570985008687907853269984665640564039457."
                            "584007913129639935";
    assert_units(&m, 18, max_units);
    assert_int_equal(money_from_units(&v, max_units, 18, err, sizeof err), 0);
    assert_int_equal(money_cmp(&v, &m), 0);
    assert_units(&m, 77,
                 "1.15792089237316195423570985008687907853269984665640564039457584007913129639935");
    assert_units(&one, 77,
                 "0.00000000000000000000000000000000000000000000000000000000000000000000000000001");

    const struct {
        const char *s;
        unsigned dec;
    } bad[] = {
        {"", 18},
        {"1.", 18},
        {".5", 18},
        {"1e5", 18},
        {"-1", 18},
        {"+1", 18},
        {" 1", 18},
        {"1 ", 18},
        {"1,000", 18},
        {"1.2.3", 18},
        {"1.-5", 18},
        {"0x1", 18},
        {".", 18},
        {"1.0000000000000000001", 18}, /* 19 fraction digits: never rounded */
        {"1.5", 0},
        {"1.123", 2},
        {"115792089237316195423570985008687907853269984665640564039457.584007913129639936", 18},
        {"115792089237316195423570985008687907853269984665640564039458", 18},
        {"1", 78},        /* 10^78 cannot fit */
        {MAX_DEC "0", 0}, /* overflows while reading the integer part */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = sentinel;
        err[0] = '\0';
        if (money_from_units(&v, bad[i].s, bad[i].dec, err, sizeof err) != -1)
            fail_msg("accepted \"%s\" with %u decimals", bad[i].s, bad[i].dec);
        assert_true(err[0] != '\0');
        assert_int_equal(money_cmp(&v, &sentinel), 0);
    }

    char small[4];
    strcpy(small, "xyz");
    assert_int_equal(money_to_units(&m, 18, small, sizeof small), -1);
    assert_string_equal(small, "xyz");
    char exact[4]; /* "1.5" + NUL */
    u64v(&v, 15);
    assert_int_equal(money_to_units(&v, 1, exact, sizeof exact), 0);
    assert_string_equal(exact, "1.5");
    assert_int_equal(money_to_units(&v, 78, exact, sizeof exact), -1);

    /* random round trips through units, for several decimals */
    unsigned decs[] = {0, 6, 18, 30, 77};
    for (int i = 0; i < 2000; i++) {
        money_u256 a, back;
        char buf[MONEY_DEC_MAX];
        rand_u256(&a);
        unsigned d = decs[i % 5];
        assert_int_equal(money_to_units(&a, d, buf, sizeof buf), 0);
        if (money_from_units(&back, buf, d, err, sizeof err) != 0)
            fail_msg("round trip of %s (%u decimals): %s", buf, d, err);
        assert_int_equal(money_cmp(&a, &back), 0);
    }
}

static void test_be32_hex(void **state)
{
    (void)state;
    uint8_t be[32], be2[32];
    money_u256 v, back, sentinel;
    char err[UTIL_ERRLEN], hex[MONEY_HEX_MAX];
    u64v(&sentinel, 1);

    /* byte order: last byte is the least significant */
    memset(be, 0, sizeof be);
    be[31] = 0x01;
    be[30] = 0x02;
    be[0] = 0x80;
    money_from_be32(&v, be);
    assert_true(v.w[0] == 0x0201);
    assert_true(v.w[3] == 0x8000000000000000ULL);
    money_to_be32(&v, be2);
    assert_memory_equal(be, be2, 32);

    assert_int_equal(money_from_hex(&v, "0x0201", err, sizeof err), 0);
    assert_true(v.w[0] == 0x0201);
    assert_int_equal(money_from_hex(&v, "0XfF", err, sizeof err), 0);
    assert_true(v.w[0] == 0xff);
    assert_int_equal(money_from_hex(&v, "0x0", err, sizeof err), 0);
    assert_true(money_is_zero(&v));
    assert_int_equal(money_to_hex(&v, hex, sizeof hex), 0);
    assert_string_equal(hex, "0x0");
    assert_int_equal(
        money_from_hex(&v,
                       "0x"
                       "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                       err, sizeof err),
        0);
    money_max(&back);
    assert_int_equal(money_cmp(&v, &back), 0);
    assert_int_equal(money_from_hex(&v, "0x10000000000000000", err, sizeof err), 0); /* 2^64 */
    assert_true(v.w[0] == 0 && v.w[1] == 1);
    assert_int_equal(money_to_hex(&v, hex, sizeof hex), 0);
    assert_string_equal(hex, "0x10000000000000000");

    const char *bad[] = {
        "",
        "0x",
        "0",
        "x10",
        "10",
        "0x-1",
        "0x 1",
        "0x1g",
        "-0x1",
        "0x1"
        "0000000000000000000000000000000000000000000000000000000000000000", /* 65 digits */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = sentinel;
        err[0] = '\0';
        assert_int_equal(money_from_hex(&v, bad[i], err, sizeof err), -1);
        assert_true(err[0] != '\0');
        assert_int_equal(money_cmp(&v, &sentinel), 0);
    }
    assert_int_equal(money_to_hex(&back, hex, 66), -1);

    /* random round trips: be32, hex, decimal; be32 against a byte-wise shift */
    for (int i = 0; i < 3000; i++) {
        money_u256 a, b;
        char buf[MONEY_DEC_MAX];
        assert_int_equal(util_random(be, sizeof be), 0);
        money_from_be32(&a, be);
        for (int k = 0; k < 32; k++) {
            uint8_t byte = (uint8_t)(a.w[k / 8] >> (8 * (k % 8)));
            assert_int_equal(byte, be[31 - k]);
        }
        money_to_be32(&a, be2);
        assert_memory_equal(be, be2, 32);

        assert_int_equal(money_to_dec(&a, buf, sizeof buf), 0);
        dec(&b, buf);
        assert_int_equal(money_cmp(&a, &b), 0);

        assert_int_equal(money_to_hex(&a, hex, sizeof hex), 0);
        assert_int_equal(money_from_hex(&b, hex, err, sizeof err), 0);
        assert_int_equal(money_cmp(&a, &b), 0);

        rand_u256(&a); /* sparse values too, for leading-zero handling */
        assert_int_equal(money_to_dec(&a, buf, sizeof buf), 0);
        dec(&b, buf);
        assert_int_equal(money_cmp(&a, &b), 0);
        assert_int_equal(money_to_hex(&a, hex, sizeof hex), 0);
        assert_true(strcmp(hex, "0x0") == 0 || hex[2] != '0');
        assert_int_equal(money_from_hex(&b, hex, err, sizeof err), 0);
        assert_int_equal(money_cmp(&a, &b), 0);
    }
}

/* Decimal formatting against an independent decimal adder: build 2^k by
 * doubling a digit string, and compare to money_to_dec(1 << k). */
static void test_powers_of_two(void **state)
{
    (void)state;
    char digits[MONEY_DEC_MAX] = "1"; /* most significant first */
    money_u256 v, one;
    u64v(&v, 1);
    u64v(&one, 1);
    for (int k = 0; k < 256; k++) {
        assert_dec(&v, digits);
        money_u256 back;
        dec(&back, digits);
        assert_int_equal(money_cmp(&back, &v), 0);
        /* digits *= 2 */
        size_t n = strlen(digits);
        int carry = 0;
        for (size_t i = n; i-- > 0;) {
            int d = (digits[i] - '0') * 2 + carry;
            digits[i] = (char)('0' + d % 10);
            carry = d / 10;
        }
        if (carry) {
            memmove(digits + 1, digits, n + 1);
            digits[0] = '1';
        }
        money_u256 two;
        u64v(&two, 2);
        if (k < 255)
            assert_int_equal(money_mul(&v, &v, &two), 0);
        else
            assert_int_equal(money_mul(&v, &v, &two), -1);
    }
    /* 2^256 - 1 from the doubled string minus one equals MAX_DEC */
    size_t n = strlen(digits);
    digits[n - 1] = (char)(digits[n - 1] - 1); /* 2^256 ends in 6 */
    assert_string_equal(digits, MAX_DEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),        cmocka_unit_test(test_add_sub),
        cmocka_unit_test(test_mul),           cmocka_unit_test(test_div),
        cmocka_unit_test(test_mul_div_wide),  cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_bps),           cmocka_unit_test(test_dec),
        cmocka_unit_test(test_units),         cmocka_unit_test(test_be32_hex),
        cmocka_unit_test(test_powers_of_two),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
