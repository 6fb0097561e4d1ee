/* Unit tests for libcommon/rlp against the published Ethereum vectors
 * (ethereum/tests RLPTests: rlptest.json and invalidRLPTest.json, copied to
 * tests/unit/data/). Each valid vector is encoded from its "in" value and
 * decoded back from its "out" bytes; every invalid vector must be rejected.
 * Big integers ("#<decimal>") are converted to bytes by a schoolbook routine
 * here, independent of the money module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "harness.h"
#include "hex.h"
#include "money.h"
#include "rlp.h"
#include "util.h"

static cJSON *load_json(const char *rel)
{
    FILE *f = fopen(th_repo_path(rel), "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    return j;
}

/* Decimal string -> minimal big-endian bytes (repeated multiply-add). */
static size_t dec_to_be(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0; /* out[cap-n .. cap) holds the value */
    for (; *s; s++) {
        unsigned carry = (unsigned)(*s - '0');
        for (size_t i = 0; i < n; i++) {
            unsigned v = out[cap - 1 - i] * 10u + carry;
            out[cap - 1 - i] = (uint8_t)v;
            carry = v >> 8;
        }
        while (carry) {
            assert_true(n < cap);
            out[cap - 1 - n++] = (uint8_t)carry;
            carry >>= 8;
        }
    }
    memmove(out, out + cap - n, n);
    return n;
}

static void encode_json(rlp_buf *b, const cJSON *v)
{
    if (cJSON_IsArray(v)) {
        size_t m = rlp_list_begin(b);
        const cJSON *c;
        cJSON_ArrayForEach(c, v)
        {
            encode_json(b, c);
        }
        rlp_list_end(b, m);
    } else if (cJSON_IsNumber(v)) {
        rlp_put_u64(b, (uint64_t)v->valuedouble);
    } else if (v->valuestring[0] == '#') {
        uint8_t be[64];
        size_t n = dec_to_be(v->valuestring + 1, be, sizeof be);
        rlp_put_bytes(b, be, n);
        /* values that fit in 256 bits must encode the same through rlp_put_u256 */
        money_u256 u;
        if (money_from_dec(&u, v->valuestring + 1, NULL, 0) == 0) {
            rlp_buf b2;
            rlp_buf_init(&b2);
            rlp_put_u256(&b2, &u);
            assert_true(b->len >= b2.len);
            assert_memory_equal(b2.data, b->data + b->len - b2.len, b2.len);
            rlp_buf_free(&b2);
        }
    } else if (hex_has_prefix(v->valuestring)) {
        size_t n;
        uint8_t *p = hex_decode_new(v->valuestring, &n, NULL, 0);
        assert_non_null(p);
        rlp_put_bytes(b, p, n);
        free(p);
    } else {
        /* cJSON strings stop at NUL, so the "\u0000" vector is handled by the caller */
        rlp_put_str(b, v->valuestring);
    }
}

/* Decoded item must match the JSON value it came from. */
static void check_item(const rlp_item *it, const cJSON *v)
{
    if (cJSON_IsArray(v)) {
        assert_true(it->is_list);
        rlp_iter iter;
        rlp_item child;
        assert_int_equal(rlp_iter_init(&iter, it, NULL, 0), 0);
        const cJSON *c;
        cJSON_ArrayForEach(c, v)
        {
            assert_int_equal(rlp_iter_next(&iter, &child, NULL, 0), 1);
            check_item(&child, c);
        }
        assert_int_equal(rlp_iter_next(&iter, &child, NULL, 0), 0);
        size_t count;
        assert_int_equal(rlp_list_count(it, &count, NULL, 0), 0);
        assert_int_equal(count, cJSON_GetArraySize(v));
        return;
    }
    assert_false(it->is_list);
    if (cJSON_IsNumber(v)) {
        uint64_t u;
        assert_int_equal(rlp_item_u64(it, &u, NULL, 0), 0);
        assert_int_equal(u, (uint64_t)v->valuedouble);
    } else if (v->valuestring[0] == '#') {
        uint8_t be[64];
        size_t n = dec_to_be(v->valuestring + 1, be, sizeof be);
        assert_int_equal(it->len, n);
        assert_memory_equal(it->payload, be, n);
    } else if (hex_has_prefix(v->valuestring)) {
        size_t n;
        uint8_t *p = hex_decode_new(v->valuestring, &n, NULL, 0);
        assert_int_equal(it->len, n);
        assert_memory_equal(it->payload, p, n);
        free(p);
    } else {
        size_t n = strlen(v->valuestring);
        if (n == 0 && it->len == 1) /* "\u0000" */
            assert_int_equal(it->payload[0], 0);
        else {
            assert_int_equal(it->len, n);
            assert_memory_equal(it->payload, v->valuestring, n);
        }
    }
}

static void test_published_valid(void **state)
{
    (void)state;
    cJSON *root = load_json("tests/unit/data/rlptest.json");
    int count = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, root)
    {
        const cJSON *in = cJSON_GetObjectItem(t, "in");
        const char *out = cJSON_GetObjectItem(t, "out")->valuestring;
        size_t n;
        uint8_t *want = hex_decode_new(out, &n, NULL, 0);
        assert_non_null(want);
        rlp_buf b;
        rlp_buf_init(&b);
        if (strcmp(t->string, "bytestring00") == 0) {
            const uint8_t z = 0;
            rlp_put_bytes(&b, &z, 1);
        } else {
            encode_json(&b, in);
        }
        if (b.len != n || memcmp(b.data, want, n) != 0)
            fail_msg("encode mismatch for %s", t->string);
        rlp_item it;
        char err[UTIL_ERRLEN];
        if (rlp_decode(want, n, &it, err, sizeof err) != 0)
            fail_msg("decode failed for %s: %s", t->string, err);
        assert_int_equal(it.raw_len, n);
        if (strcmp(t->string, "bytestring00") != 0)
            check_item(&it, in);
        rlp_buf_free(&b);
        free(want);
        count++;
    }
    assert_true(count >= 28);
    cJSON_Delete(root);
}

static void test_published_invalid(void **state)
{
    (void)state;
    cJSON *root = load_json("tests/unit/data/invalidRLPTest.json");
    int count = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, root)
    {
        size_t n;
        uint8_t *in = hex_decode_new(cJSON_GetObjectItem(t, "out")->valuestring, &n, NULL, 0);
        assert_non_null(in);
        rlp_item it;
        char err[UTIL_ERRLEN] = "";
        if (rlp_decode(in, n, &it, err, sizeof err) != -1)
            fail_msg("invalid vector %s accepted", t->string);
        assert_true(err[0] != '\0');
        free(in);
        count++;
    }
    assert_int_equal(count, 17);
    cJSON_Delete(root);
}

static void test_truncation_and_trailing(void **state)
{
    (void)state;
    rlp_buf b;
    rlp_buf_init(&b);
    size_t m = rlp_list_begin(&b);
    rlp_put_str(&b, "cat");
    rlp_put_str(&b, "Lorem ipsum dolor sit amet, consectetur adipisicing elit");
    size_t m2 = rlp_list_begin(&b);
    rlp_put_u64(&b, 1024);
    rlp_list_end(&b, m2);
    rlp_list_end(&b, m);
    rlp_item it;
    assert_int_equal(rlp_decode(b.data, b.len, &it, NULL, 0), 0);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(rlp_decode(b.data, n, &it, NULL, 0), -1);
    uint8_t *more = malloc(b.len + 1);
    memcpy(more, b.data, b.len);
    more[b.len] = 0x00;
    char err[UTIL_ERRLEN];
    assert_int_equal(rlp_decode(more, b.len + 1, &it, err, sizeof err), -1);
    assert_non_null(strstr(err, "trailing"));
    free(more);
    rlp_buf_free(&b);
}

static void test_integers(void **state)
{
    (void)state;
    rlp_buf b;
    rlp_buf_init(&b);
    const uint64_t vals[] = {0, 1, 0x7f, 0x80, 0xff, 0x100, 1024, 0xffffffffffffffffULL};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        rlp_buf_reset(&b);
        rlp_put_u64(&b, vals[i]);
        rlp_item it;
        uint64_t u;
        assert_int_equal(rlp_decode(b.data, b.len, &it, NULL, 0), 0);
        assert_int_equal(rlp_item_u64(&it, &u, NULL, 0), 0);
        assert_int_equal(u, vals[i]);
    }
    /* 1024 = 0x820400 (published "1024" example) */
    rlp_buf_reset(&b);
    rlp_put_u64(&b, 1024);
    assert_int_equal(b.len, 3);
    assert_int_equal(b.data[0], 0x82);
    /* leading zero in an integer, too wide for u64, a list as integer */
    const uint8_t lead[] = {0x82, 0x00, 0x80};
    const uint8_t wide[] = {0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    const uint8_t list[] = {0xc0};
    rlp_item it;
    uint64_t u;
    assert_int_equal(rlp_decode(lead, sizeof lead, &it, NULL, 0), 0);
    assert_int_equal(rlp_item_u64(&it, &u, NULL, 0), -1);
    assert_int_equal(rlp_decode(wide, sizeof wide, &it, NULL, 0), 0);
    assert_int_equal(rlp_item_u64(&it, &u, NULL, 0), -1);
    money_u256 w;
    assert_int_equal(rlp_item_u256(&it, &w, NULL, 0), 0);
    assert_int_equal(w.w[1], 1);
    assert_int_equal(w.w[0], 0x0203040506070809ULL);
    assert_int_equal(rlp_decode(list, 1, &it, NULL, 0), 0);
    assert_int_equal(rlp_item_u64(&it, &u, NULL, 0), -1);
    /* uint256 max round trip */
    money_u256 max, back;
    money_max(&max);
    rlp_buf_reset(&b);
    rlp_put_u256(&b, &max);
    assert_int_equal(b.len, 33);
    assert_int_equal(rlp_decode(b.data, b.len, &it, NULL, 0), 0);
    assert_int_equal(rlp_item_u256(&it, &back, NULL, 0), 0);
    assert_int_equal(money_cmp(&max, &back), 0);
    rlp_buf_free(&b);
}

static void test_depth_limit(void **state)
{
    (void)state;
    for (int depth = 10; depth <= 100; depth += 90) {
        rlp_buf b;
        rlp_buf_init(&b);
        size_t marks[100];
        for (int i = 0; i < depth; i++)
            marks[i] = rlp_list_begin(&b);
        for (int i = depth - 1; i >= 0; i--)
            rlp_list_end(&b, marks[i]);
        rlp_item it;
        assert_int_equal(rlp_decode(b.data, b.len, &it, NULL, 0), depth > RLP_MAX_DEPTH ? -1 : 0);
        rlp_buf_free(&b);
    }
}

/* Random bytes must never crash the decoder, and whatever it accepts must
 * re-encode to the same bytes (canonical: one encoding per value). */
static void reencode(rlp_buf *b, const rlp_item *it)
{
    if (!it->is_list) {
        rlp_put_bytes(b, it->payload, it->len);
        return;
    }
    size_t m = rlp_list_begin(b);
    rlp_iter iter;
    rlp_item c;
    assert_int_equal(rlp_iter_init(&iter, it, NULL, 0), 0);
    while (rlp_iter_next(&iter, &c, NULL, 0) == 1)
        reencode(b, &c);
    rlp_list_end(b, m);
}

static void test_fuzz(void **state)
{
    (void)state;
    uint8_t buf[64];
    int accepted = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = util_random_below(sizeof buf) + 1;
        assert_int_equal(util_random(buf, n), 0);
        if (round % 2)
            buf[0] = (uint8_t)(0xc0 + util_random_below(8)); /* bias towards short lists */
        rlp_item it;
        if (rlp_decode(buf, n, &it, NULL, 0) != 0)
            continue;
        accepted++;
        rlp_buf b;
        rlp_buf_init(&b);
        reencode(&b, &it);
        assert_int_equal(b.len, n);
        assert_memory_equal(b.data, buf, n);
        rlp_buf_free(&b);
    }
    assert_true(accepted > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_valid),
        cmocka_unit_test(test_published_invalid),
        cmocka_unit_test(test_truncation_and_trailing),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
