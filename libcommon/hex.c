/* hex: strict hex codec and EIP-55 addresses (see hex.h). */
#include "hex.h"
#include "keccak.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static const char DIGITS[] = "0123456789abcdef";

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

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
    for (size_t i = 0; i < n; i++) {
        *o++ = DIGITS[in[i] >> 4];
        *o++ = DIGITS[in[i] & 15];
    }
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
    for (size_t i = 0; i < slen; i++)
        if (nibble(s[i]) < 0)
            return util_err(err, errlen, "hex: invalid character at position %zu", i);
    for (size_t i = 0; i < slen / 2; i++)
        out[i] = (uint8_t)(nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]));
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
