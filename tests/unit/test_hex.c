/* Unit tests for libcommon/hex: strict hex codec and EIP-55 addresses. Checksums
 * are checked against the EIP-55 published examples and cross-checked against
 * `cast to-check-sum-address` (an independent implementation) at test time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "harness.h"
#include "hex.h"
#include "util.h"

static void test_encode(void **state)
{
    (void)state;
    const uint8_t in[] = {0x00, 0x01, 0xab, 0xff};
    char buf[16];
    assert_int_equal(hex_encode(in, 4, 1, buf, sizeof buf), 0);
    assert_string_equal(buf, "0x0001abff");
    assert_int_equal(hex_encode(in, 4, 0, buf, sizeof buf), 0);
    assert_string_equal(buf, "0001abff");
    assert_int_equal(hex_encode(in, 0, 1, buf, sizeof buf), 0);
    assert_string_equal(buf, "0x");
    /* exact fit and one short */
    assert_int_equal(hex_encode(in, 4, 1, buf, 11), 0);
    strcpy(buf, "untouched");
    assert_int_equal(hex_encode(in, 4, 1, buf, 10), -1);
    assert_string_equal(buf, "untouched");
    char *s = hex_encode_new(in, 4, 0);
    assert_string_equal(s, "0001abff");
    free(s);
}

static void test_decode(void **state)
{
    (void)state;
    uint8_t out[8];
    size_t n = 99;
    char err[UTIL_ERRLEN];
    assert_int_equal(hex_decode("0x0001aBfF", out, sizeof out, &n, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(out[0], 0x00);
    assert_int_equal(out[2], 0xab);
    assert_int_equal(out[3], 0xff);
    assert_int_equal(hex_decode("0X10", out, sizeof out, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 0x10);
    assert_int_equal(hex_decode("deadbeef", out, sizeof out, &n, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(out[0], 0xde);
    assert_int_equal(hex_decode("0x", out, sizeof out, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(hex_decode("", out, sizeof out, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);

    const char *bad[] = {"0x1", "abc",  "0xzz", " 0x12", "0x12 ", "0x-1",  "0x0x12",
                         "x12", "0xg0", "1 2",  "0x+1",  "12\n",  "0x１２"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(out, 0x5a, sizeof out);
        err[0] = '\0';
        assert_int_equal(hex_decode(bad[i], out, sizeof out, &n, err, sizeof err), -1);
        assert_true(err[0] != '\0');
        assert_int_equal(out[0], 0x5a); /* untouched on failure */
    }
    /* capacity */
    assert_int_equal(hex_decode("0x0102030405060708", out, 8, &n, NULL, 0), 0);
    assert_int_equal(hex_decode("0x010203040506070809", out, 8, &n, NULL, 0), -1);
    /* explicit length: stops before the garbage */
    assert_int_equal(hex_decode_n("0x0102zz", 6, out, sizeof out, &n, NULL, 0), 0);
    assert_int_equal(n, 2);
    assert_int_equal(hex_decode(NULL, out, sizeof out, &n, NULL, 0), -1);

    uint8_t topic[32];
    assert_int_equal(hex_decode_fixed("0x"
                                      "00000000000000000000000000000000"
                                      "000000000000000000000000000000ff",
                                      topic, 32, err, sizeof err),
                     0);
    assert_int_equal(topic[31], 0xff);
    assert_int_equal(hex_decode_fixed("0x00ff", topic, 32, err, sizeof err), -1);
    assert_int_equal(hex_decode_fixed("0x00ff", topic, 1, err, sizeof err), -1);
    assert_int_equal(hex_decode_fixed("00ff", topic, 2, err, sizeof err), 0);

    uint8_t *p = hex_decode_new("0xcafe", &n, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(n, 2);
    assert_int_equal(p[1], 0xfe);
    free(p);
    p = hex_decode_new("0x", &n, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(n, 0);
    free(p);
    assert_null(hex_decode_new("0xcaf", &n, err, sizeof err));
}

static void test_roundtrip_all_bytes(void **state)
{
    (void)state;
    uint8_t in[256], out[256];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    char buf[HEX_STRLEN(256)];
    assert_int_equal(hex_encode(in, 256, 1, buf, sizeof buf), 0);
    size_t n;
    assert_int_equal(hex_decode(buf, out, sizeof out, &n, NULL, 0), 0);
    assert_int_equal(n, 256);
    assert_memory_equal(in, out, 256);
}

/* Reference nibble for the checks below: deliberately the obvious branchy form,
 * independent of the codec's tables and word-at-a-time paths. */
static int ref_nibble(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The decoder takes 16 and 8 digits at a time before a byte-wise tail, so every
 * byte value is planted at every position of strings whose lengths straddle those
 * block sizes: valid digits must decode like the reference, anything else must be
 * rejected at its position with the output untouched. */
static void test_decode_every_byte_every_position(void **state)
{
    (void)state;
    static const size_t lens[] = {2, 8, 14, 16, 18, 24, 30, 32, 34, 48, 62, 64, 66, 130};
    char s[160], err[UTIL_ERRLEN];
    uint8_t out[80];
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t len = lens[li];
        for (size_t pos = 0; pos < len; pos++) {
            for (int c = 0; c < 256; c++) {
                for (size_t k = 0; k < len; k++)
                    s[k] = "0123456789abcdefABCDEF"[(k * 7 + len) % 22];
                if (s[0] == '0')
                    s[0] = '1'; /* "0x" would be a prefix, not a digit pair */
                s[pos] = (char)c;
                memset(out, 0x5a, sizeof out);
                size_t n = 0;
                int rc = hex_decode_n(s, len, out, sizeof out, &n, err, sizeof err);
                if (ref_nibble(c) < 0) {
                    assert_int_equal(rc, -1);
                    char want[64];
                    snprintf(want, sizeof want, "position %zu", pos);
                    assert_non_null(strstr(err, want));
                    for (size_t k = 0; k < sizeof out; k++)
                        assert_int_equal(out[k], 0x5a);
                    continue;
                }
                assert_int_equal(rc, 0);
                assert_int_equal(n, len / 2);
                for (size_t k = 0; k < len / 2; k++)
                    assert_int_equal(out[k], ref_nibble((unsigned char)s[2 * k]) << 4 |
                                                 ref_nibble((unsigned char)s[2 * k + 1]));
                assert_int_equal(out[len / 2], 0x5a); /* nothing written past the end */
            }
        }
    }
}

/* Random bytes of every length up to 100, encoded with random letter case and
 * with or without the prefix, decode back exactly. */
static void test_roundtrip_random(void **state)
{
    (void)state;
    uint8_t in[100], out[100], coin[HEX_STRLEN(100)];
    char buf[HEX_STRLEN(100)];
    for (size_t len = 0; len <= sizeof in; len++) {
        assert_int_equal(util_random(in, len), 0);
        assert_int_equal(util_random(coin, sizeof coin), 0);
        int prefix = coin[0] & 1;
        assert_int_equal(hex_encode(in, len, prefix, buf, sizeof buf), 0);
        for (size_t k = 0; buf[k]; k++)
            if (buf[k] >= 'a' && buf[k] <= 'f' && (coin[k] & 2))
                buf[k] = (char)(buf[k] - 'a' + 'A');
        size_t n = 999;
        memset(out, 0, sizeof out);
        assert_int_equal(hex_decode(buf, out, len, &n, NULL, 0), 0);
        assert_int_equal(n, len);
        assert_memory_equal(in, out, len);
        char again[HEX_STRLEN(100)];
        assert_int_equal(hex_encode(out, n, 0, again, sizeof again), 0);
        assert_int_equal(strcasecmp(again, buf + (prefix ? 2 : 0)), 0);
    }
}

/* Published examples from EIP-55. */
static const char *EIP55[] = {
    "0x52908400098527886E0F7030069857D2E4169EE7", "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77", "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
};

static void test_eip55_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof EIP55 / sizeof EIP55[0]; i++) {
        uint8_t a[20];
        char err[UTIL_ERRLEN], out[HEX_ADDR_STRLEN];
        assert_int_equal(hex_addr_parse(EIP55[i], a, err, sizeof err), 0);
        hex_addr_checksum(a, out);
        assert_string_equal(out, EIP55[i]);
        assert_true(hex_addr_is_checksummed(EIP55[i]));
    }
}

static void test_addr_parse(void **state)
{
    (void)state;
    uint8_t a[20];
    char err[UTIL_ERRLEN];
    /* all-lower and all-upper carry no checksum and are accepted */
    assert_int_equal(hex_addr_parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", a, err, 64), 0);
    assert_int_equal(a[0], 0x5a);
    assert_int_equal(hex_addr_parse("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", a, err, 64), 0);
    assert_false(hex_addr_is_checksummed("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"));
    /* one letter with the wrong case breaks the checksum */
    char bad[HEX_ADDR_STRLEN];
    strcpy(bad, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
    bad[4] = 'a'; /* was 'A' */
    memset(a, 0, sizeof a);
    assert_int_equal(hex_addr_parse(bad, a, err, sizeof err), -1);
    assert_non_null(strstr(err, "checksum"));
    assert_int_equal(a[0], 0); /* untouched */
    assert_false(hex_addr_is_checksummed(bad));
    const char *wrong[] = {"5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
                           "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea",
                           "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00",
                           "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg",
                           "0x",
                           "",
                           NULL};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        assert_int_equal(hex_addr_parse(wrong[i], a, NULL, 0), -1);
}

/* Random addresses: our checksum must equal cast's. */
static void test_eip55_vs_cast(void **state)
{
    (void)state;
    for (int i = 0; i < 8; i++) {
        uint8_t a[20];
        char lower[HEX_ADDR_STRLEN], mine[HEX_ADDR_STRLEN], args[128], theirs[128];
        assert_int_equal(util_random(a, sizeof a), 0);
        hex_encode(a, 20, 1, lower, sizeof lower);
        hex_addr_checksum(a, mine);
        snprintf(args, sizeof args, "to-check-sum-address %s", lower);
        assert_int_equal(th_cast(args, theirs, sizeof theirs), 0);
        assert_string_equal(mine, theirs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_roundtrip_all_bytes),
        cmocka_unit_test(test_decode_every_byte_every_position),
        cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_eip55_vectors),
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_eip55_vs_cast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
