/* hex: strict hex codec and EIP-55 addresses (see hex.h).
 *
 * Bulk log decoding spends much of its time here (three topics and the data of
 * every log), so decoding validates and converts 16 digits at a time with SSE2,
 * 8 at a time in a 64-bit word, and only the tail byte by byte through a table. */
#include "hex.h"
#include "keccak.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Digit pairs for every byte value: encoding writes two characters per lookup. */
static const char PAIRS[513] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                               "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
                               "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
                               "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
                               "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
                               "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
                               "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
                               "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/* Nibble value per character, 0x10 for anything that is not a hex digit: a
 * whole string validates with one OR over table lookups, no branch per digit
 * (bulk log decoding runs this over every topic and data string). */
#define X 0x10
/* clang-format off */
static const uint8_t NIB[256] = {
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, X, X, X, X, X, X,
    X, 10, 11, 12, 13, 14, 15, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, 10, 11, 12, 13, 14, 15, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
};
/* clang-format on */
#undef X

/* Eight digits at a time in a 64-bit word (little-endian hosts; others use the
 * table alone). Each byte is < 0x80, so adding 0x80 - lo sets its top bit exactly
 * when it is >= lo, with no carry into the next byte. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HEX_SWAR 1
#define REP(b)   (0x0101010101010101ULL * (b))

static uint64_t load8(const unsigned char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static int swar_valid(uint64_t x)
{
    const uint64_t top = REP(0x80);
    if (x & top)
        return 0;
    uint64_t y = x | REP(0x20); /* 'A'-'F' -> 'a'-'f'; digits keep their value */
    uint64_t digit = (x + REP(0x80 - '0')) & ~(x + REP(0x80 - '9' - 1));
    uint64_t letter = (y + REP(0x80 - 'a')) & ~(y + REP(0x80 - 'f' - 1));
    return ((digit | letter) & top) == top;
}

/* Eight valid digits -> four bytes in memory order. */
static uint32_t swar_decode(uint64_t x)
{
    /* digit: low nibble; letter (bit 6 set): low nibble + 9 */
    uint64_t n = (x & REP(0x0f)) + ((x >> 6) & REP(0x01)) * 9;
    /* first digit of each pair is the high nibble of its byte */
    uint64_t m = ((n & 0x00ff00ff00ff00ffULL) << 4) | ((n >> 8) & 0x00ff00ff00ff00ffULL);
    m = (m | (m >> 8)) & 0x0000ffff0000ffffULL;
    return (uint32_t)(m | (m >> 16));
}
#else
#define HEX_SWAR 0
#endif

/* Sixteen digits at a time where SSE2 is there (every x86-64). Signed compares
 * put bytes >= 0x80 below every bound, so they fail both ranges. */
#if HEX_SWAR && defined(__SSE2__)
#include <emmintrin.h>
#define HEX_SSE2 1

static __m128i sse_letters(__m128i v)
{
    __m128i y = _mm_or_si128(v, _mm_set1_epi8(0x20));
    return _mm_and_si128(_mm_cmpgt_epi8(y, _mm_set1_epi8('a' - 1)),
                         _mm_cmplt_epi8(y, _mm_set1_epi8('f' + 1)));
}

static int sse_valid(const unsigned char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                  _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
    return _mm_movemask_epi8(_mm_or_si128(digit, sse_letters(v))) == 0xffff;
}

/* Sixteen valid digits -> eight bytes at out. */
static void sse_decode(const unsigned char *p, uint8_t *out)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i n = _mm_add_epi8(_mm_and_si128(v, _mm_set1_epi8(0x0f)),
                             _mm_and_si128(sse_letters(v), _mm_set1_epi8(9)));
    __m128i hi = _mm_slli_epi16(_mm_and_si128(n, _mm_set1_epi16(0x00ff)), 4);
    __m128i pairs = _mm_or_si128(hi, _mm_srli_epi16(n, 8));
    _mm_storel_epi64((__m128i *)(void *)out, _mm_packus_epi16(pairs, pairs));
}
#else
#define HEX_SSE2 0
#endif

int hex_has_prefix(const char *s)
{
    return s && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

int hex_encode(const uint8_t *in, size_t n, int prefix, char *out, size_t outlen)
{
    size_t pre = prefix ? 2 : 0;
    if (n > (SIZE_MAX - 3) / 2 || outlen < 2 * n + pre + 1)
        return -1;
    char *o = out;
    if (prefix) {
        *o++ = '0';
        *o++ = 'x';
    }
    for (size_t i = 0; i < n; i++, o += 2)
        memcpy(o, PAIRS + 2 * in[i], 2);
    *o = '\0';
    return 0;
}

char *hex_encode_new(const uint8_t *in, size_t n, int prefix)
{
    size_t len = 2 * n + 3;
    char *out = util_malloc(len);
    hex_encode(in, n, prefix, out, len);
    return out;
}

int hex_decode_n(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen, char *err,
                 size_t errlen)
{
    if (!s)
        return util_err(err, errlen, "hex: missing string");
    if (slen >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        slen -= 2;
    }
    if (slen % 2)
        return util_err(err, errlen, "hex: odd number of digits");
    if (slen / 2 > cap)
        return util_err(err, errlen, "hex: %zu bytes do not fit in %zu", slen / 2, cap);
    /* Validate everything before writing so a bad string leaves out untouched. */
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    unsigned bad = 0;
#if HEX_SSE2
    while (i + 16 <= slen && sse_valid(u + i))
        i += 16;
#endif
#if HEX_SWAR
    while (i + 8 <= slen && swar_valid(load8(u + i)))
        i += 8;
#endif
    for (size_t k = i; k < slen; k++)
        bad |= NIB[u[k]];
    if (bad & 0x10) {
        while (!(NIB[u[i]] & 0x10))
            i++;
        return util_err(err, errlen, "hex: invalid character at position %zu", i);
    }
    i = 0;
#if HEX_SSE2
    for (; i + 16 <= slen; i += 16)
        sse_decode(u + i, out + i / 2);
#endif
#if HEX_SWAR
    for (; i + 8 <= slen; i += 8) {
        uint32_t w = swar_decode(load8(u + i));
        memcpy(out + i / 2, &w, 4);
    }
#endif
    for (; i < slen; i += 2)
        out[i / 2] = (uint8_t)(NIB[u[i]] << 4 | NIB[u[i + 1]]);
    if (outlen)
        *outlen = slen / 2;
    return 0;
}

int hex_decode(const char *s, uint8_t *out, size_t cap, size_t *outlen, char *err, size_t errlen)
{
    if (!s)
        return util_err(err, errlen, "hex: missing string");
    return hex_decode_n(s, strlen(s), out, cap, outlen, err, errlen);
}

int hex_decode_fixed(const char *s, uint8_t *out, size_t n, char *err, size_t errlen)
{
    if (!s)
        return util_err(err, errlen, "hex: missing string");
    size_t slen = strlen(s);
    size_t digits = slen - (hex_has_prefix(s) ? 2 : 0);
    if (digits != 2 * n)
        return util_err(err, errlen, "hex: expected %zu bytes, got %zu digits", n, digits);
    return hex_decode_n(s, slen, out, n, NULL, err, errlen);
}

uint8_t *hex_decode_new(const char *s, size_t *outlen, char *err, size_t errlen)
{
    if (!s) {
        util_err(err, errlen, "hex: missing string");
        return NULL;
    }
    size_t slen = strlen(s);
    size_t cap = slen / 2 + 1;
    uint8_t *out = util_malloc(cap);
    if (hex_decode_n(s, slen, out, cap, outlen, err, errlen) < 0) {
        free(out);
        return NULL;
    }
    return out;
}

void hex_addr_checksum(const uint8_t addr[HEX_ADDR_LEN], char out[HEX_ADDR_STRLEN])
{
    uint8_t h[KECCAK_256_LEN];
    hex_encode(addr, HEX_ADDR_LEN, 1, out, HEX_ADDR_STRLEN);
    keccak_256(out + 2, 2 * HEX_ADDR_LEN, h);
    for (size_t i = 0; i < 2 * HEX_ADDR_LEN; i++) {
        unsigned nib = (i % 2) ? (h[i / 2] & 15u) : (h[i / 2] >> 4);
        char *c = &out[2 + i];
        if (*c >= 'a' && nib >= 8)
            *c = (char)(*c - 'a' + 'A');
    }
}

int hex_addr_parse(const char *s, uint8_t out[HEX_ADDR_LEN], char *err, size_t errlen)
{
    if (!s || !hex_has_prefix(s) || strlen(s) != 2 + 2 * HEX_ADDR_LEN)
        return util_err(err, errlen, "address: expected 0x followed by 40 hex digits");
    uint8_t a[HEX_ADDR_LEN];
    if (hex_decode_n(s, 2 + 2 * HEX_ADDR_LEN, a, sizeof a, NULL, err, errlen) < 0)
        return -1;
    int lower = 0, upper = 0;
    for (size_t i = 2; s[i]; i++) {
        lower |= (s[i] >= 'a' && s[i] <= 'f');
        upper |= (s[i] >= 'A' && s[i] <= 'F');
    }
    if (lower && upper) {
        char want[HEX_ADDR_STRLEN];
        hex_addr_checksum(a, want);
        if (strcmp(want + 2, s + 2) != 0)
            return util_err(err, errlen, "address: bad EIP-55 checksum");
    }
    memcpy(out, a, sizeof a);
    return 0;
}

int hex_addr_is_checksummed(const char *s)
{
    uint8_t a[HEX_ADDR_LEN];
    if (!s || !hex_has_prefix(s) || s[1] != 'x' || strlen(s) != 2 + 2 * HEX_ADDR_LEN)
        return 0;
    if (hex_decode_n(s, strlen(s), a, sizeof a, NULL, NULL, 0) < 0)
        return 0;
    char want[HEX_ADDR_STRLEN];
    hex_addr_checksum(a, want);
    return strcmp(want, s) == 0;
}
