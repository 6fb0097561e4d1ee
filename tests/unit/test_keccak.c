/* Unit tests for libcommon/keccak. Two published digests are fixed here
 * (keccak256("") and keccak256("abc")); every other digest is computed at test
 * time by `cast keccak` (an independent implementation), including inputs that
 * end just before, on and just after the 136-byte rate boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"
#include "hex.h"
#include "keccak.h"
#include "util.h"

static void digest_hex(const uint8_t *in, size_t n, char out[HEX_B32_STRLEN])
{
    uint8_t h[32];
    keccak_256(in, n, h);
    hex_encode(h, 32, 1, out, HEX_B32_STRLEN);
}

/* cast keccak of raw bytes (passed as 0x hex so cast hashes the bytes). */
static void cast_digest(const uint8_t *in, size_t n, char out[HEX_B32_STRLEN])
{
    char *hex = hex_encode_new(in, n, 1);
    size_t alen = strlen(hex) + 16;
    char *args = malloc(alen);
    snprintf(args, alen, "keccak %s", hex);
    char buf[128];
    assert_int_equal(th_cast(args, buf, sizeof buf), 0);
    assert_int_equal(strlen(buf), 66);
    strcpy(out, buf);
    free(args);
    free(hex);
}

static void test_published(void **state)
{
    (void)state;
    char h[HEX_B32_STRLEN];
    digest_hex((const uint8_t *)"", 0, h);
    assert_string_equal(h, "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    digest_hex((const uint8_t *)"abc", 3, h);
    assert_string_equal(h, "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
    uint8_t sel[32];
    keccak_256_str("transfer(address,uint256)", sel);
    assert_int_equal(sel[0], 0xa9);
    assert_int_equal(sel[1], 0x05);
    assert_int_equal(sel[2], 0x9c);
    assert_int_equal(sel[3], 0xbb);
}

static void test_vs_cast(void **state)
{
    (void)state;
    static const size_t lens[] = {1, 3, 55, 56, 135, 136, 137, 200, 271, 272, 273, 1000};
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        if (n == 200)
            memset(buf, 0xa3, n); /* the classic 200 x 0xa3 Keccak test message */
        else
            assert_int_equal(util_random(buf, n), 0);
        char mine[HEX_B32_STRLEN], theirs[HEX_B32_STRLEN];
        digest_hex(buf, n, mine);
        cast_digest(buf, n, theirs);
        assert_string_equal(mine, theirs);
    }
}

/* Streaming in any split equals one-shot. */
static void test_streaming(void **state)
{
    (void)state;
    uint8_t msg[700], one[32], inc[32];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof msg; n += (n < 300 ? 1 : 37)) {
        keccak_256(msg, n, one);
        keccak_ctx c;
        keccak_init(&c);
        for (size_t i = 0; i < n; i++)
            keccak_update(&c, msg + i, 1);
        keccak_final(&c, inc);
        assert_memory_equal(one, inc, 32);
        /* irregular chunks around the rate */
        keccak_init(&c);
        size_t pos = 0, step = 1;
        while (pos < n) {
            size_t take = n - pos < step ? n - pos : step;
            keccak_update(&c, msg + pos, take);
            pos += take;
            step = step * 3 % 151 + 1;
        }
        keccak_final(&c, inc);
        assert_memory_equal(one, inc, 32);
        /* the context is reusable after final */
        keccak_update(&c, msg, n);
        keccak_final(&c, inc);
        assert_memory_equal(one, inc, 32);
    }
    /* different messages, different digests (guards against a constant output) */
    keccak_256(msg, 136, one);
    keccak_256(msg, 137, inc);
    assert_memory_not_equal(one, inc, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published),
        cmocka_unit_test(test_vs_cast),
        cmocka_unit_test(test_streaming),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
