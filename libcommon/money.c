/* money: uint256 base-unit arithmetic (see money.h). Nothing here allocates;
 * every function computes into locals and writes its outputs only on success.
 *
 * Division (money_div, money_mul_div) is Knuth's Algorithm D on 32-bit digits,
 * so every partial product fits in a uint64_t and no 128-bit division is needed. */
#include "money.h"
#include "util.h"

#include <string.h>

__extension__ typedef unsigned __int128 u128;

void money_zero(money_u256 *v)
{
    memset(v->w, 0, sizeof v->w);
}

void money_max(money_u256 *v)
{
    for (int i = 0; i < 4; i++)
        v->w[i] = UINT64_MAX;
}

int money_is_zero(const money_u256 *v)
{
    return (v->w[0] | v->w[1] | v->w[2] | v->w[3]) == 0;
}

void money_from_u64(money_u256 *out, uint64_t x)
{
    out->w[0] = x;
    out->w[1] = out->w[2] = out->w[3] = 0;
}

int money_to_u64(const money_u256 *v, uint64_t *out)
{
    if (v->w[1] | v->w[2] | v->w[3])
        return -1;
    *out = v->w[0];
    return 0;
}

int money_cmp(const money_u256 *a, const money_u256 *b)
{
    for (int i = 3; i >= 0; i--) {
        if (a->w[i] != b->w[i])
            return a->w[i] < b->w[i] ? -1 : 1;
    }
    return 0;
}

int money_add(money_u256 *out, const money_u256 *a, const money_u256 *b)
{
    money_u256 t;
    uint64_t carry = 0;
    for (int i = 0; i < 4; i++) {
        u128 s = (u128)a->w[i] + b->w[i] + carry;
        t.w[i] = (uint64_t)s;
        carry = (uint64_t)(s >> 64);
    }
    if (carry)
        return -1;
    *out = t;
    return 0;
}

int money_sub(money_u256 *out, const money_u256 *a, const money_u256 *b)
{
    money_u256 t;
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t d = a->w[i] - b->w[i];
        uint64_t nb = (a->w[i] < b->w[i]) | (d < borrow);
        t.w[i] = d - borrow;
        borrow = nb;
    }
    if (borrow)
        return -1;
    *out = t;
    return 0;
}

/* Full 256x256 -> 512-bit product, p[0] least significant. */
static void mul_full(uint64_t p[8], const money_u256 *a, const money_u256 *b)
{
    memset(p, 0, 8 * sizeof p[0]);
    for (int i = 0; i < 4; i++) {
        uint64_t carry = 0;
        for (int j = 0; j < 4; j++) {
            u128 t = (u128)a->w[i] * b->w[j] + p[i + j] + carry;
            p[i + j] = (uint64_t)t;
            carry = (uint64_t)(t >> 64);
        }
        p[i + 4] = carry;
    }
}

int money_mul(money_u256 *out, const money_u256 *a, const money_u256 *b)
{
    uint64_t p[8];
    mul_full(p, a, b);
    if (p[4] | p[5] | p[6] | p[7])
        return -1;
    memcpy(out->w, p, sizeof out->w);
    return 0;
}

/* Knuth Algorithm D: u (m digits) / v (n digits, v[n-1] != 0, m >= n >= 1) in
 * base 2^32. Writes q (m-n+1 digits) and r (n digits). */
static void divmnu(uint32_t *q, uint32_t *r, const uint32_t *u, int m, const uint32_t *v, int n)
{
    if (n == 1) {
        uint64_t rem = 0;
        for (int j = m - 1; j >= 0; j--) {
            uint64_t cur = (rem << 32) | u[j];
            q[j] = (uint32_t)(cur / v[0]);
            rem = cur % v[0];
        }
        r[0] = (uint32_t)rem;
        return;
    }

    /* Normalise so the divisor's top bit is set; that bounds the trial quotient
     * error to 2, which the qhat correction loop and the add-back step fix. */
    uint32_t vn[16], un[17];
    int s = __builtin_clz(v[n - 1]);
    for (int i = n - 1; i > 0; i--)
        vn[i] = s ? (v[i] << s) | (v[i - 1] >> (32 - s)) : v[i];
    vn[0] = v[0] << s;
    un[m] = s ? u[m - 1] >> (32 - s) : 0;
    for (int i = m - 1; i > 0; i--)
        un[i] = s ? (u[i] << s) | (u[i - 1] >> (32 - s)) : u[i];
    un[0] = u[0] << s;

    const uint64_t B = 1ULL << 32;
    for (int j = m - n; j >= 0; j--) {
        uint64_t num = ((uint64_t)un[j + n] << 32) | un[j + n - 1];
        uint64_t qhat = num / vn[n - 1];
        uint64_t rhat = num % vn[n - 1];
        while (qhat >= B || qhat * vn[n - 2] > ((rhat << 32) | un[j + n - 2])) {
            qhat--;
            rhat += vn[n - 1];
            if (rhat >= B)
                break;
        }

        uint64_t carry = 0, borrow = 0;
        for (int i = 0; i < n; i++) {
            uint64_t p = qhat * vn[i] + carry;
            carry = p >> 32;
            uint64_t d = (uint64_t)un[i + j] - (uint32_t)p - borrow;
            un[i + j] = (uint32_t)d;
            borrow = d >> 63; /* wrapped below zero */
        }
        uint64_t d = (uint64_t)un[j + n] - carry - borrow;
        un[j + n] = (uint32_t)d;

        if (d >> 63) {
            /* qhat was one too large (rare: probability ~2/2^32 per digit). */
            qhat--;
            uint64_t c = 0;
            for (int i = 0; i < n; i++) {
                uint64_t t = (uint64_t)un[i + j] + vn[i] + c;
                un[i + j] = (uint32_t)t;
                c = t >> 32;
            }
            un[j + n] = (uint32_t)(un[j + n] + c);
        }
        q[j] = (uint32_t)qhat;
    }
    for (int i = 0; i < n; i++)
        r[i] = s ? (un[i] >> s) | (un[i + 1] << (32 - s)) : un[i];
}

/* num (nw 64-bit words, nw <= 8) / den (4 words, non-zero): q gets nw words,
 * r gets 4 words. */
static void div_words(uint64_t *q, uint64_t r[4], const uint64_t *num, int nw,
                      const uint64_t den[4])
{
    uint32_t u[16], v[8], q32[16] = {0}, r32[8] = {0};
    for (int i = 0; i < nw; i++) {
        u[2 * i] = (uint32_t)num[i];
        u[2 * i + 1] = (uint32_t)(num[i] >> 32);
    }
    for (int i = 0; i < 4; i++) {
        v[2 * i] = (uint32_t)den[i];
        v[2 * i + 1] = (uint32_t)(den[i] >> 32);
    }
    int m = 2 * nw, n = 8;
    while (m > 0 && u[m - 1] == 0)
        m--;
    while (n > 0 && v[n - 1] == 0)
        n--;

    if (m < n) {
        memcpy(r32, u, (size_t)m * sizeof u[0]);
    } else {
        divmnu(q32, r32, u, m, v, n);
    }
    for (int i = 0; i < nw; i++)
        q[i] = ((uint64_t)q32[2 * i + 1] << 32) | q32[2 * i];
    for (int i = 0; i < 4; i++)
        r[i] = ((uint64_t)r32[2 * i + 1] << 32) | r32[2 * i];
}

int money_div(money_u256 *q, money_u256 *r, const money_u256 *a, const money_u256 *b)
{
    if (money_is_zero(b))
        return -1;
    uint64_t qw[4], rw[4];
    div_words(qw, rw, a->w, 4, b->w);
    if (q)
        memcpy(q->w, qw, sizeof qw);
    if (r)
        memcpy(r->w, rw, sizeof rw);
    return 0;
}

int money_mul_div(money_u256 *out, const money_u256 *a, const money_u256 *b, const money_u256 *d,
                  money_round mode)
{
    if (money_is_zero(d))
        return -1;
    uint64_t p[8], qw[8];
    money_u256 rem, q;
    mul_full(p, a, b);
    div_words(qw, rem.w, p, 8, d->w);
    if (qw[4] | qw[5] | qw[6] | qw[7])
        return -1;
    memcpy(q.w, qw, sizeof q.w);

    int up = 0;
    switch (mode) {
    case MONEY_ROUND_DOWN:
        break;
    case MONEY_ROUND_UP:
        up = !money_is_zero(&rem);
        break;
    case MONEY_ROUND_HALF_EVEN: {
        /* Compare rem with d - rem rather than 2*rem with d: 2*rem can need 257 bits. */
        money_u256 other;
        money_sub(&other, d, &rem); /* rem < d, cannot fail */
        int c = money_cmp(&rem, &other);
        up = c > 0 || (c == 0 && (q.w[0] & 1));
        break;
    }
    default:
        return -1;
    }
    if (up) {
        money_u256 one;
        money_from_u64(&one, 1);
        if (money_add(&q, &q, &one) != 0)
            return -1;
    }
    *out = q;
    return 0;
}

int money_bps(money_u256 *out, const money_u256 *a, uint32_t bps, money_round mode)
{
    money_u256 b, d;
    money_from_u64(&b, bps);
    money_from_u64(&d, 10000);
    return money_mul_div(out, a, &b, &d, mode);
}

/* v = v*10 + digit; -1 on overflow (v then undefined, callers work on a copy). */
static int mul10_add(money_u256 *v, unsigned digit)
{
    uint64_t carry = digit;
    for (int i = 0; i < 4; i++) {
        u128 t = (u128)v->w[i] * 10 + carry;
        v->w[i] = (uint64_t)t;
        carry = (uint64_t)(t >> 64);
    }
    return carry ? -1 : 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int money_from_dec(money_u256 *out, const char *s, char *err, size_t errlen)
{
    if (!s || !*s)
        return util_err(err, errlen, "amount is empty");
    money_u256 v;
    money_zero(&v);
    for (const char *p = s; *p; p++) {
        if (!is_digit(*p))
            return util_err(err, errlen, "amount has a non-digit at offset %zu", (size_t)(p - s));
        if (mul10_add(&v, (unsigned)(*p - '0')) != 0)
            return util_err(err, errlen, "amount does not fit in uint256");
    }
    *out = v;
    return 0;
}

/* Decimal digits of v, most significant first, NUL-terminated, into d (>= 79
 * bytes); returns the digit count ("0" for zero). */
static size_t dec_digits(const money_u256 *v, char d[79])
{
    /* 32-bit limbs and chunks of 10^9 keep every step a native 64-by-constant
     * division (a multiply): 128-bit divisions would call a libgcc helper per limb,
     * and bulk log decoding formats several amounts per event. */
    uint32_t l[8];
    for (int i = 0; i < 4; i++) {
        l[2 * i] = (uint32_t)v->w[i];
        l[2 * i + 1] = (uint32_t)(v->w[i] >> 32);
    }
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "62636465666768697071727374757677787980818283848586878889909192"
                                "93949596979899";
    char buf[81];
    char *p = buf + sizeof buf; /* digits are written backwards, two at a time */
    int top = 7;
    for (;;) {
        while (top > 0 && l[top] == 0)
            top--;
        uint64_t rem = 0;
        for (int i = top; i >= 0; i--) {
            uint64_t cur = (rem << 32) | l[i];
            l[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        uint32_t r = (uint32_t)rem;
        if (top == 0 && l[0] == 0) { /* the most significant chunk: no leading zeros */
            while (r >= 100) {
                p -= 2;
                memcpy(p, pairs + 2 * (r % 100), 2);
                r /= 100;
            }
            if (r >= 10) {
                p -= 2;
                memcpy(p, pairs + 2 * r, 2);
            } else {
                *--p = (char)('0' + r);
            }
            break;
        }
        for (int k = 0; k < 4; k++) {
            p -= 2;
            memcpy(p, pairs + 2 * (r % 100), 2);
            r /= 100;
        }
        *--p = (char)('0' + r);
    }
    size_t n = (size_t)(buf + sizeof buf - p);
    memcpy(d, p, n);
    d[n] = '\0';
    return n;
}

int money_to_dec(const money_u256 *v, char *buf, size_t len)
{
    char d[80];
    size_t n = dec_digits(v, d);
    if (!buf || len < n + 1)
        return -1;
    memcpy(buf, d, n + 1);
    return 0;
}

int money_from_units(money_u256 *out, const char *s, unsigned decimals, char *err, size_t errlen)
{
    if (decimals > MONEY_MAX_DECIMALS)
        return util_err(err, errlen, "decimals %u exceeds %d", decimals, MONEY_MAX_DECIMALS);
    if (!s || !*s)
        return util_err(err, errlen, "amount is empty");

    const char *p = s;
    money_u256 v;
    money_zero(&v);
    size_t int_digits = 0, frac_digits = 0;
    for (; is_digit(*p); p++, int_digits++) {
        if (mul10_add(&v, (unsigned)(*p - '0')) != 0)
            return util_err(err, errlen, "amount does not fit in uint256");
    }
    if (int_digits == 0)
        return util_err(err, errlen, "amount must start with a digit");
    if (*p == '.') {
        p++;
        for (; is_digit(*p); p++, frac_digits++) {
            if (frac_digits == decimals)
                return util_err(err, errlen, "amount has more than %u fraction digits", decimals);
            if (mul10_add(&v, (unsigned)(*p - '0')) != 0)
                return util_err(err, errlen, "amount does not fit in uint256");
        }
        if (frac_digits == 0)
            return util_err(err, errlen, "amount has no digits after '.'");
    }
    if (*p)
        return util_err(err, errlen, "amount has an unexpected character at offset %zu",
                        (size_t)(p - s));
    for (size_t k = frac_digits; k < decimals; k++) {
        if (mul10_add(&v, 0) != 0)
            return util_err(err, errlen, "amount does not fit in uint256");
    }
    *out = v;
    return 0;
}

int money_to_units(const money_u256 *v, unsigned decimals, char *buf, size_t len)
{
    if (decimals > MONEY_MAX_DECIMALS || !buf)
        return -1;
    char d[80], o[MONEY_DEC_MAX];
    size_t n = dec_digits(v, d), k = 0;

    if (n > decimals) {
        size_t ip = n - decimals;
        memcpy(o, d, ip);
        k = ip;
        memcpy(o + k, ".", 1);
        memcpy(o + k + 1, d + ip, decimals);
        k += 1 + decimals;
    } else {
        o[k++] = '0';
        o[k++] = '.';
        for (size_t i = n; i < decimals; i++)
            o[k++] = '0';
        memcpy(o + k, d, n);
        k += n;
    }
    if (decimals > 0) {
        while (o[k - 1] == '0')
            k--;
        if (o[k - 1] == '.')
            k--;
    } else {
        k--; /* drop the bare '.' */
    }
    if (len < k + 1)
        return -1;
    memcpy(buf, o, k);
    buf[k] = '\0';
    return 0;
}

void money_from_be32(money_u256 *out, const uint8_t be[32])
{
    money_u256 t;
    for (int i = 0; i < 4; i++) {
        uint64_t x;
        memcpy(&x, be + (3 - i) * 8, 8);
        t.w[i] = __builtin_bswap64(x); /* big-endian word: one instruction on x86-64 */
    }
    *out = t;
}

void money_to_be32(const money_u256 *v, uint8_t be[32])
{
    for (int i = 0; i < 4; i++) {
        uint64_t x = v->w[i];
        for (int b = 7; b >= 0; b--) {
            be[(3 - i) * 8 + b] = (uint8_t)x;
            x >>= 8;
        }
    }
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int money_from_hex(money_u256 *out, const char *s, char *err, size_t errlen)
{
    if (!s || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
        return util_err(err, errlen, "hex amount must start with 0x");
    const char *h = s + 2;
    size_t n = strlen(h);
    if (n == 0)
        return util_err(err, errlen, "hex amount has no digits");
    if (n > 64)
        return util_err(err, errlen, "hex amount has more than 64 digits");
    money_u256 v;
    money_zero(&v);
    for (size_t i = 0; i < n; i++) {
        int x = hex_val(h[i]);
        if (x < 0)
            return util_err(err, errlen, "hex amount has a bad digit at offset %zu", i + 2);
        size_t pos = n - 1 - i; /* nibble index from the least significant end */
        v.w[pos / 16] |= (uint64_t)x << (4 * (pos % 16));
    }
    *out = v;
    return 0;
}

int money_to_hex(const money_u256 *v, char *buf, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char o[MONEY_HEX_MAX];
    size_t k = 0;
    o[k++] = '0';
    o[k++] = 'x';
    int started = 0;
    for (int nib = 63; nib >= 0; nib--) {
        unsigned x = (unsigned)(v->w[nib / 16] >> (4 * (nib % 16))) & 0xf;
        if (x || started || nib == 0) {
            o[k++] = digits[x];
            started = 1;
        }
    }
    if (!buf || len < k + 1)
        return -1;
    memcpy(buf, o, k);
    buf[k] = '\0';
    return 0;
}
