/* Unit tests for libcommon/abi. Encodings are cross-checked at test time against
 * `cast` (foundry, an independent ABI implementation): the Solidity docs
 * examples, integer ranges, nested tuples, selectors and event topics. Decoding
 * of hostile data (truncation, huge offsets and lengths, dirty padding, offset
 * sharing, random bytes) must fail cleanly; the asan build checks "cleanly". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "abi.h"
#include "harness.h"
#include "hex.h"
#include "keccak.h"
#include "util.h"

/* ---------- helpers ---------- */

/* Runs `cast <args>` (args already shell-quoted) and returns its trimmed stdout
 * (owned); fails the test if cast fails. */
static char *cast(const char *fmt, ...)
{
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s", th_repo_path("deploy/node_modules/.bin/cast"), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0, r;
    char *out = malloc(cap);
    while ((r = fread(out + n, 1, cap - 1 - n, p)) > 0) {
        n += r;
        if (n == cap - 1) {
            cap *= 2;
            char *bigger = realloc(out, cap);
            assert_non_null(bigger);
            out = bigger;
        }
    }
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    int rc = pclose(p);
    if (rc != 0)
        fail_msg("cast %s failed (%d)", args, rc);
    return out;
}

static uint8_t *unhex(const char *s, size_t *n)
{
    uint8_t *p = hex_decode_new(s, n, NULL, 0);
    assert_non_null(p);
    return p;
}

static cJSON *json(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    if (!j)
        fail_msg("bad test JSON: %s", s);
    return j;
}

static abi_type *type(const char *s)
{
    char err[UTIL_ERRLEN];
    abi_type *t = abi_type_parse(s, err, sizeof err);
    if (!t)
        fail_msg("parse %s: %s", s, err);
    return t;
}

/* Encodes a call with our code, compares with `cast calldata`, decodes cast's
 * bytes back and checks the re-encoding. Returns the decoded arguments. */
static cJSON *check_call(const char *sig, const char *json_args, const char *cast_args)
{
    char err[UTIL_ERRLEN];
    abi_fn *fn = abi_fn_parse(sig, err, sizeof err);
    if (!fn)
        fail_msg("%s: %s", sig, err);
    cJSON *args = json(json_args);
    uint8_t *mine;
    size_t n;
    if (abi_fn_encode_call(fn, args, &mine, &n, err, sizeof err) != 0)
        fail_msg("encode %s: %s", sig, err);
    char *mine_hex = hex_encode_new(mine, n, 1);
    char *theirs = cast("calldata '%s' %s", sig, cast_args);
    assert_string_equal(mine_hex, theirs);

    size_t tn;
    uint8_t *tb = unhex(theirs, &tn);
    cJSON *dec = abi_fn_decode_call(fn, tb, tn, ABI_DECODE_STRICT, err, sizeof err);
    if (!dec)
        fail_msg("decode %s: %s", sig, err);
    uint8_t *again;
    size_t an;
    assert_int_equal(abi_fn_encode_call(fn, dec, &again, &an, err, sizeof err), 0);
    assert_int_equal(an, tn);
    assert_memory_equal(again, tb, tn);

    free(again);
    free(tb);
    free(theirs);
    free(mine_hex);
    free(mine);
    cJSON_Delete(args);
    abi_fn_free(fn);
    return dec;
}

static void assert_json(const cJSON *got, const char *want_json)
{
    cJSON *want = json(want_json);
    if (!cJSON_Compare(got, want, 1)) {
        char *g = cJSON_PrintUnformatted(got);
        fail_msg("got %s, want %s", g, want_json);
    }
    cJSON_Delete(want);
}

/* ---------- types ---------- */

static void test_type_parse(void **state)
{
    (void)state;
    static const char *ok[][2] = {
        {"uint", "uint256"},
        {"int", "int256"},
        {"uint8", "uint8"},
        {"int256", "int256"},
        {"address", "address"},
        {"bool", "bool"},
        {"bytes", "bytes"},
        {"bytes1", "bytes1"},
        {"bytes32", "bytes32"},
        {"string", "string"},
        {"function", "function"},
        {"uint[]", "uint256[]"},
        {"int8[][3]", "int8[][3]"},
        {"(uint256,bytes)[2]", "(uint256,bytes)[2]"},
        {"((uint,bool)[],string)", "((uint256,bool)[],string)"},
        {"()", "()"},
        {"(uint256,(address,(bytes32[2],string)))[]", "(uint256,(address,(bytes32[2],string)))[]"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        abi_type *t = type(ok[i][0]);
        char *c = abi_type_canonical(t);
        assert_string_equal(c, ok[i][1]);
        free(c);
        abi_type_free(t);
    }
    static const char *bad[] = {
        "",
        "uint7",
        "uint264",
        "uint0",
        "uint08",
        "int9",
        "bytes0",
        "bytes33",
        "bytes01",
        "byte",
        "foo",
        "uint256[0]",
        "uint[01]",
        "uint256[",
        "uint256]",
        "(uint256",
        "(uint256,)",
        "(,uint256)",
        "uint256 ",
        " uint256",
        "uint256[-1]",
        "fixed128x18",
        "tuple",
        "uint256[2**3]",
        "(uint256)x",
        "uint256[99999999999999999999999]",
        "uint256[16777216][1000]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[UTIL_ERRLEN] = "";
        abi_type *t = abi_type_parse(bad[i], err, sizeof err);
        if (t)
            fail_msg("accepted bad type '%s'", bad[i]);
        assert_true(err[0] != '\0');
    }
    /* nesting limit */
    char deep[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "(");
    strcat(deep, "uint256");
    for (int i = 0; i < 40; i++)
        strcat(deep, ")");
    assert_null(abi_type_parse(deep, NULL, 0));
    char arrays[200] = "uint256";
    for (int i = 0; i < 40; i++)
        strcat(arrays, "[]");
    assert_null(abi_type_parse(arrays, NULL, 0));

    abi_type *t = type("(uint256,bytes)[2]");
    assert_int_equal(t->kind, ABI_FARRAY);
    assert_int_equal(t->len, 2);
    assert_true(t->dynamic);
    assert_int_equal(t->elem->kind, ABI_TUPLE);
    assert_int_equal(t->elem->n, 2);
    abi_type_free(t);
    t = type("(uint256,bytes3[2])");
    assert_false(t->dynamic);
    assert_int_equal(t->head, 96);
    abi_type_free(t);
}

static void test_type_from_json(void **state)
{
    (void)state;
    cJSON *p =
        json("{\"name\":\"orders\",\"type\":\"tuple[2][]\",\"components\":["
             "{\"name\":\"amount\",\"type\":\"uint256\"},"
             "{\"name\":\"legs\",\"type\":\"tuple[]\",\"components\":["
             "{\"name\":\"to\",\"type\":\"address\"},{\"name\":\"memo\",\"type\":\"string\"}]}]}");
    char err[UTIL_ERRLEN];
    abi_type *t = abi_type_from_json(p, err, sizeof err);
    assert_non_null(t);
    char *c = abi_type_canonical(t);
    assert_string_equal(c, "(uint256,(address,string)[])[2][]");
    free(c);
    abi_type_free(t);
    cJSON_Delete(p);

    const char *bad[] = {
        "{\"type\":\"tuple\"}",
        "{\"type\":\"tuple[\",\"components\":[]}",
        "{\"type\":\"tuplex\",\"components\":[]}",
        "{\"name\":\"x\"}",
        "{\"type\":\"tuple\",\"components\":[{\"type\":\"uint7\"}]}",
        "{\"type\":\"tuple\",\"components\":[1]}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = json(bad[i]);
        if ((t = abi_type_from_json(p, err, sizeof err)) != NULL)
            fail_msg("accepted %s", bad[i]);
        cJSON_Delete(p);
    }
}

/* ---------- Solidity docs examples ---------- */

static void test_docs_examples(void **state)
{
    (void)state;
    cJSON *d = check_call("baz(uint32,bool)", "[69,true]", "69 true");
    assert_json(d, "[\"69\",true]");
    cJSON_Delete(d);
    /* selector from the docs, and from cast */
    abi_fn *fn = abi_fn_parse("baz(uint32,bool)", NULL, 0);
    char sel[16];
    hex_encode(fn->selector, 4, 1, sel, sizeof sel);
    assert_string_equal(sel, "0xcdcd77c0");
    char *theirs = cast("sig 'baz(uint32,bool)'");
    assert_string_equal(sel, theirs);
    free(theirs);
    abi_fn_free(fn);

    d = check_call("bar(bytes3[2])", "[[\"0x616263\",\"0x646566\"]]", "'[0x616263,0x646566]'");
    assert_json(d, "[[\"0x616263\",\"0x646566\"]]");
    cJSON_Delete(d);

    d = check_call("sam(bytes,bool,uint256[])", "[\"0x64617665\",true,[1,2,3]]",
                   "0x64617665 true '[1,2,3]'");
    assert_json(d, "[\"0x64617665\",true,[\"1\",\"2\",\"3\"]]");
    cJSON_Delete(d);

    d = check_call("f(uint256,uint32[],bytes10,bytes)",
                   "[\"0x123\",[\"0x456\",\"0x789\"],\"0x31323334353637383930\","
                   "\"0x48656c6c6f2c20776f726c6421\"]",
                   "0x123 '[0x456,0x789]' 0x31323334353637383930 0x48656c6c6f2c20776f726c6421");
    assert_json(d, "[\"291\",[\"1110\",\"1929\"],\"0x31323334353637383930\","
                   "\"0x48656c6c6f2c20776f726c6421\"]");
    cJSON_Delete(d);

    d = check_call("g(uint256[][],string[])", "[[[1,2],[3]],[\"one\",\"two\",\"three\"]]",
                   "'[[1,2],[3]]' '[one,two,three]'");
    assert_json(d, "[[[\"1\",\"2\"],[\"3\"]],[\"one\",\"two\",\"three\"]]");
    cJSON_Delete(d);
}

#define INT256_MIN  "-57896044618658097711785492504343953926634992332820282019728792003956564819968"
#define INT256_MAX  "57896044618658097711785492504343953926634992332820282019728792003956564819967"
#define UINT256_MAX "115792089237316195423570985008687907853269984665640564039457584007913129639935"

static void test_integers(void **state)
{
    (void)state;
    cJSON *d = check_call("h(int8,int8,int16,int256,int256,uint8,uint256,int24,int64,uint40)",
                          "[\"-128\",\"127\",\"-1\",\"" INT256_MIN "\",\"" INT256_MAX
                          "\",\"255\",\"" UINT256_MAX
                          "\",\"-8388608\",\"-9223372036854775808\",\"1099511627775\"]",
                          "-- -128 127 -1 " INT256_MIN " " INT256_MAX " 255 " UINT256_MAX
                          " -8388608 -9223372036854775808 1099511627775");
    assert_json(d, "[\"-128\",\"127\",\"-1\",\"" INT256_MIN "\",\"" INT256_MAX
                   "\",\"255\",\"" UINT256_MAX
                   "\",\"-8388608\",\"-9223372036854775808\",\"1099511627775\"]");
    cJSON_Delete(d);

    /* out of range on encode */
    static const char *bad[][2] = {
        {"(uint8)", "[\"256\"]"},
        {"(uint8)", "[\"-1\"]"},
        {"(uint8)", "[-1]"},
        {"(int8)", "[\"-129\"]"},
        {"(int8)", "[\"128\"]"},
        {"(int8)", "[128]"},
        {"(uint40)", "[\"1099511627776\"]"},
        {"(int256)",
         "[\"-57896044618658097711785492504343953926634992332820282019728792003956564819969\"]"},
        {"(int256)",
         "[\"57896044618658097711785492504343953926634992332820282019728792003956564819968\"]"},
        {"(uint256)",
         "[\"115792089237316195423570985008687907853269984665640564039457584007913129639936\"]"},
        {"(uint256)", "[1.5]"},
        {"(uint256)", "[1e300]"},
        {"(uint256)", "[\"\"]"},
        {"(uint256)", "[\"12a\"]"},
        {"(uint256)", "[\" 1\"]"},
        {"(uint256)", "[true]"},
        {"(bool)", "[\"true\"]"},
        {"(bool)", "[1]"},
        {"(address)", "[\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD\"]"}, /* bad checksum */
        {"(address)", "[\"0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea\"]"},
        {"(bytes3)", "[\"0x6162\"]"},
        {"(bytes3)", "[\"0x61626364\"]"},
        {"(bytes)", "[\"0x123\"]"},
        {"(bytes)", "[\"hello\"]"},
        {"(string)", "[5]"},
        {"(uint256[2])", "[[\"1\"]]"},
        {"(uint256[2])", "[[\"1\",\"2\",\"3\"]]"},
        {"(uint256[])", "[\"1\"]"},
        {"(uint256,bool)", "[\"1\"]"},
        {"(uint256,bool)", "[\"1\",true,false]"},
        {"(uint256,bool)", "{\"a\":\"1\"}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        abi_type *t = type(bad[i][0]);
        cJSON *v = json(bad[i][1]);
        uint8_t *out = NULL;
        size_t n;
        char err[UTIL_ERRLEN] = "";
        if (abi_encode(t, v, &out, &n, err, sizeof err) == 0)
            fail_msg("encoded %s %s", bad[i][0], bad[i][1]);
        assert_true(err[0] != '\0');
        cJSON_Delete(v);
        abi_type_free(t);
    }
}

static void test_nested_roundtrip(void **state)
{
    (void)state;
    const char *types = "((uint256,bytes)[2],string,address,bool[],bytes32,int24,"
                        "(string,uint8[])[],bytes[],string)";
    const char *val =
        "[[[\"1\",\"0x01\"],[\"2\",\"0x0203\"]],\"h\\u00e9llo w\\u00f6rld\","
        "\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\",[true,false,true],"
        "\"0x1111111111111111111111111111111111111111111111111111111111111111\",\"-42\","
        "[[\"ab\",[\"1\",\"255\"]],[\"\",[]]],[\"0x\",\"0x00\"],"
        "\"a string that is longer than thirty-two bytes, to use two words\"]";
    abi_type *t = type(types);
    cJSON *v = json(val);
    uint8_t *out;
    size_t n;
    char err[UTIL_ERRLEN];
    assert_int_equal(abi_encode(t, v, &out, &n, err, sizeof err), 0);
    char *mine = hex_encode_new(out, n, 1);
    char *theirs = cast("abi-encode 'f%s' -- '[(1,0x01),(2,0x0203)]' 'héllo wörld' "
                        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed '[true,false,true]' "
                        "0x1111111111111111111111111111111111111111111111111111111111111111 -42 "
                        "'[(ab,[1,255]),(\"\",[])]' '[0x,0x00]' "
                        "'a string that is longer than thirty-two bytes, to use two words'",
                        types);
    assert_string_equal(mine, theirs);
    cJSON *back = abi_decode(t, out, n, ABI_DECODE_STRICT, err, sizeof err);
    if (!back)
        fail_msg("decode: %s", err);
    assert_true(cJSON_Compare(back, v, 1));
    cJSON_Delete(back);
    free(theirs);
    free(mine);
    free(out);
    cJSON_Delete(v);
    abi_type_free(t);

    /* named tuples from ABI JSON: objects in, objects out; arrays in give the same bytes */
    cJSON *p = json("{\"type\":\"tuple[]\",\"components\":[{\"name\":\"amount\",\"type\":"
                    "\"uint256\"},{\"name\":\"to\",\"type\":\"address\"}]}");
    t = abi_type_from_json(p, err, sizeof err);
    assert_non_null(t);
    cJSON *objs = json("[{\"amount\":\"7\",\"to\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"},"
                       "{\"to\":\"0x0000000000000000000000000000000000000001\",\"amount\":\"8\"}]");
    cJSON *arrs = json("[[\"7\",\"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\"],"
                       "[\"8\",\"0x0000000000000000000000000000000000000001\"]]");
    uint8_t *e1, *e2;
    size_t n1, n2;
    assert_int_equal(abi_encode(t, objs, &e1, &n1, err, sizeof err), 0);
    assert_int_equal(abi_encode(t, arrs, &e2, &n2, err, sizeof err), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(e1, e2, n1);
    back = abi_decode(t, e1, n1, ABI_DECODE_STRICT, err, sizeof err);
    assert_json(back, "[{\"amount\":\"7\",\"to\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"},"
                      "{\"amount\":\"8\",\"to\":\"0x0000000000000000000000000000000000000001\"}]");
    cJSON_Delete(back);
    free(e1);
    free(e2);
    cJSON_Delete(objs);
    cJSON_Delete(arrs);
    abi_type_free(t);
    cJSON_Delete(p);
}

/* ---------- hostile input ---------- */

static void put_word(uint8_t *at, uint64_t hi, uint64_t lo)
{
    memset(at, 0, 32);
    for (int i = 0; i < 8; i++) {
        at[7 - i] = (uint8_t)(hi >> (8 * i)); /* top 8 bytes */
        at[31 - i] = (uint8_t)(lo >> (8 * i));
    }
}

static int decodes(const char *ty, const uint8_t *d, size_t n, int flags)
{
    abi_type *t = type(ty);
    cJSON *v = abi_decode(t, d, n, flags, NULL, 0);
    int ok = v != NULL;
    cJSON_Delete(v);
    abi_type_free(t);
    return ok;
}

static void test_malformed(void **state)
{
    (void)state;
    abi_type *t = type("(bytes,uint256[],string)");
    cJSON *v = json("[\"0x0102030405\",[\"1\",\"2\"],\"abc\"]");
    uint8_t *enc;
    size_t n;
    assert_int_equal(abi_encode(t, v, &enc, &n, NULL, 0), 0);
    cJSON_Delete(v);
    abi_type_free(t);
    const char *ty = "(bytes,uint256[],string)";
    assert_true(decodes(ty, enc, n, ABI_DECODE_STRICT));
    /* every truncation fails in strict mode */
    for (size_t k = 0; k < n; k++)
        if (decodes(ty, enc, k, ABI_DECODE_STRICT))
            fail_msg("truncated to %zu accepted", k);
    uint8_t *m = malloc(n);
    /* head offsets: huge, 2^64, just past the end, beyond the end */
    const uint64_t offs[][2] = {{0, UINT64_MAX}, {1, 0}, {0, n}, {0, n - 31}, {0xffffffffu, 0}};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        memcpy(m, enc, n);
        put_word(m, offs[i][0], offs[i][1]);
        assert_false(decodes(ty, m, n, 0));
        memcpy(m, enc, n);
        put_word(m + 32, offs[i][0], offs[i][1]);
        assert_false(decodes(ty, m, n, 0));
    }
    /* bytes length (at 0x60): huge, past the end by one */
    size_t blen_at = 0x60;
    memcpy(m, enc, n);
    put_word(m + blen_at, 0, UINT64_MAX);
    assert_false(decodes(ty, m, n, 0));
    memcpy(m, enc, n);
    put_word(m + blen_at, 0, n - blen_at - 32 + 1);
    assert_false(decodes(ty, m, n, 0));
    memcpy(m, enc, n);
    put_word(m + blen_at, 1ull << 63, 5);
    assert_false(decodes(ty, m, n, 0));
    /* array length (at 0xa0): huge, and one more element than there is data for */
    size_t alen_at = 0xa0;
    memcpy(m, enc, n);
    put_word(m + alen_at, 0, UINT64_MAX / 32 + 1);
    assert_false(decodes(ty, m, n, 0));
    memcpy(m, enc, n);
    put_word(m + alen_at, 0, (n - alen_at - 32) / 32 + 1);
    assert_false(decodes(ty, m, n, 0));
    /* dirty padding after the 5 bytes: strict rejects, lenient accepts */
    memcpy(m, enc, n);
    m[blen_at + 32 + 5] = 1;
    assert_false(decodes(ty, m, n, ABI_DECODE_STRICT));
    assert_true(decodes(ty, m, n, 0));
    free(m);
    free(enc);

    /* value padding is always checked */
    uint8_t w[32];
    put_word(w, 0, 1);
    assert_true(decodes("(bool)", w, 32, 0));
    put_word(w, 0, 2);
    assert_false(decodes("(bool)", w, 32, 0));
    put_word(w, 1, 1);
    assert_false(decodes("(bool)", w, 32, 0));
    put_word(w, 0, 0x100);
    assert_false(decodes("(uint8)", w, 32, 0));
    put_word(w, 0, 0xff);
    assert_true(decodes("(uint8)", w, 32, 0));
    put_word(w, 0, 0x80); /* +128 is not an int8 */
    assert_false(decodes("(int8)", w, 32, 0));
    memset(w, 0xff, 32);
    w[31] = 0x80; /* -128 */
    assert_true(decodes("(int8)", w, 32, 0));
    w[30] = 0xfe; /* bad sign extension */
    assert_false(decodes("(int8)", w, 32, 0));
    memset(w, 0, 32);
    w[0] = 1; /* dirty address */
    assert_false(decodes("(address)", w, 32, 0));
    memset(w, 0, 32);
    w[3] = 1; /* bytes3 padding */
    assert_false(decodes("(bytes3)", w, 32, 0));
    w[3] = 0;
    w[2] = 1;
    assert_true(decodes("(bytes3)", w, 32, 0));
    assert_false(decodes("(uint256)", w, 31, 0));
    assert_false(decodes("(uint256)", NULL, 0, 0));
    assert_true(decodes("()", NULL, 0, 0));

    abi_type *int8 = type("(int8)");
    memset(w, 0xff, 32);
    w[31] = 0x80;
    cJSON *d = abi_decode(int8, w, 32, 0, NULL, 0);
    assert_json(d, "[\"-128\"]");
    cJSON_Delete(d);
    abi_type_free(int8);
}

/* Offsets may point many elements at one string: legal in small doses, but the
 * output is bounded by the input size, so it cannot be blown up. */
static void test_offset_sharing(void **state)
{
    (void)state;
    const size_t slen = 1024;
    for (size_t k = 2; k <= 1000; k += 998) {
        size_t n = 32 + 32 + 32 * k + 32 + slen;
        uint8_t *d = calloc(1, n);
        put_word(d, 0, 32);            /* tuple head: offset of the array */
        put_word(d + 32, 0, k);        /* array length */
        for (size_t i = 0; i < k; i++) /* every element -> the same string */
            put_word(d + 64 + 32 * i, 0, 32 * k);
        put_word(d + 64 + 32 * k, 0, slen); /* string length */
        memset(d + 96 + 32 * k, 'x', slen);
        char err[UTIL_ERRLEN] = "";
        abi_type *t = type("(string[])");
        cJSON *v = abi_decode(t, d, n, 0, err, sizeof err);
        if (k == 2) {
            assert_non_null(v);
            assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(v, 0)), 2);
        } else {
            assert_null(v);
            assert_non_null(strstr(err, "larger"));
        }
        cJSON_Delete(v);
        abi_type_free(t);
        free(d);
    }
    /* empty tuples take no data: a large count must still be refused */
    uint8_t d[64];
    put_word(d, 0, 32);
    put_word(d + 32, 0, 100000000);
    assert_false(decodes("(()[])", d, sizeof d, 0));
    assert_false(decodes("(()[16000000])", d, 0, 0));
}

static void test_fuzz(void **state)
{
    (void)state;
    static const char *types[] = {
        "(bytes,uint256[],string)", "((uint256,bytes)[2],string[])",
        "(uint8[][],address,bool)", "(int24,bytes32,(string,uint8[])[])",
        "(string[][2][])",
    };
    uint8_t buf[512];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        abi_type *t = type(types[ti]);
        for (int round = 0; round < 3000; round++) {
            size_t n = util_random_below(sizeof buf + 1);
            assert_int_equal(util_random(buf, n), 0);
            /* small words so offsets/lengths are often plausible */
            for (size_t i = 0; i + 32 <= n; i += 32)
                if (util_random_below(2))
                    put_word(buf + i, 0, util_random_below(n + 64));
            cJSON *v = abi_decode(t, buf, n, (int)util_random_below(2), NULL, 0);
            if (v) { /* anything accepted must re-encode */
                uint8_t *e;
                size_t en;
                assert_int_equal(abi_encode(t, v, &e, &en, NULL, 0), 0);
                free(e);
                cJSON_Delete(v);
            }
        }
        abi_type_free(t);
    }
}

/* ---------- ABI JSON: selectors, events, reverts ---------- */

static const char *TEST_ABI =
    "["
    "{\"type\":\"event\",\"name\":\"Transfer\",\"anonymous\":false,\"inputs\":["
    " {\"name\":\"from\",\"type\":\"address\",\"indexed\":true},"
    " {\"name\":\"to\",\"type\":\"address\",\"indexed\":true},"
    " {\"name\":\"value\",\"type\":\"uint256\",\"indexed\":false}]},"
    "{\"type\":\"event\",\"name\":\"Transfer\",\"inputs\":["
    " {\"name\":\"from\",\"type\":\"address\",\"indexed\":true},"
    " {\"name\":\"to\",\"type\":\"address\",\"indexed\":true},"
    " {\"name\":\"tokenId\",\"type\":\"uint256\",\"indexed\":true}]},"
    "{\"type\":\"event\",\"name\":\"RedemptionRequested\",\"inputs\":["
    " {\"name\":\"requestId\",\"type\":\"uint256\",\"indexed\":true},"
    " {\"name\":\"owner\",\"type\":\"address\",\"indexed\":true},"
    " {\"name\":\"memo\",\"type\":\"string\",\"indexed\":true},"
    " {\"name\":\"channel\",\"type\":\"uint8\",\"indexed\":false},"
    " {\"name\":\"grossAssets\",\"type\":\"uint256\",\"indexed\":false},"
    " {\"name\":\"fee\",\"type\":\"int128\",\"indexed\":false},"
    " {\"name\":\"terms\",\"type\":\"tuple\",\"indexed\":false,\"components\":["
    "   {\"name\":\"settleAt\",\"type\":\"uint64\"},{\"name\":\"tags\",\"type\":\"string[]\"}]},"
    " {\"name\":\"\",\"type\":\"bytes\",\"indexed\":false}]},"
    "{\"type\":\"event\",\"name\":\"Secret\",\"anonymous\":true,\"inputs\":["
    " {\"name\":\"x\",\"type\":\"uint256\",\"indexed\":true}]},"
    "{\"type\":\"error\",\"name\":\"InsufficientShares\",\"inputs\":["
    " {\"name\":\"owner\",\"type\":\"address\"},{\"name\":\"needed\",\"type\":\"uint256\"}]},"
    "{\"type\":\"error\",\"name\":\"Paused\",\"inputs\":[]},"
    "{\"type\":\"function\",\"name\":\"transfer\",\"stateMutability\":\"nonpayable\",\"inputs\":["
    " {\"name\":\"to\",\"type\":\"address\"},{\"name\":\"amount\",\"type\":\"uint256\"}],"
    " \"outputs\":[{\"name\":\"\",\"type\":\"bool\"}]},"
    "{\"type\":\"function\",\"name\":\"submit\",\"stateMutability\":\"payable\",\"inputs\":["
    " {\"name\":\"orders\",\"type\":\"tuple[]\",\"components\":["
    "   {\"name\":\"amount\",\"type\":\"uint256\"},{\"name\":\"to\",\"type\":\"address\"}]},"
    " {\"name\":\"data\",\"type\":\"bytes\"}],\"outputs\":[]},"
    "{\"type\":\"function\",\"name\":\"totalAssets\",\"stateMutability\":\"view\",\"inputs\":[],"
    " \"outputs\":[{\"name\":\"assets\",\"type\":\"uint256\"},{\"name\":\"at\",\"type\":\"uint64\"}"
    "]},"
    "{\"type\":\"constructor\",\"inputs\":[{\"name\":\"a\",\"type\":\"address\"}]},"
    "{\"type\":\"receive\",\"stateMutability\":\"payable\"}"
    "]";

#define ADDR1 "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
#define ADDR2 "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"

static abi_contract *load_test_abi(void)
{
    char err[UTIL_ERRLEN];
    abi_contract *c = abi_contract_parse(TEST_ABI, err, sizeof err);
    if (!c)
        fail_msg("abi: %s", err);
    return c;
}

static void test_contract_selectors(void **state)
{
    (void)state;
    abi_contract *c = load_test_abi();
    assert_int_equal(c->n_fns, 3);
    assert_int_equal(c->n_events, 4);
    assert_int_equal(c->n_errors, 2);
    const abi_fn *tr = abi_contract_fn(c, "transfer");
    assert_non_null(tr);
    assert_string_equal(tr->signature, "transfer(address,uint256)");
    assert_memory_equal(tr->selector, "\xa9\x05\x9c\xbb", 4);
    assert_string_equal(tr->mutability, "nonpayable");
    assert_ptr_equal(abi_contract_fn(c, "transfer(address,uint256)"), tr);
    assert_null(abi_contract_fn(c, "transfer(address)"));
    assert_null(abi_contract_fn(c, "nope"));
    assert_string_equal(abi_contract_fn(c, "submit")->signature,
                        "submit((uint256,address)[],bytes)");
    assert_string_equal(abi_contract_event(c, "RedemptionRequested")->signature,
                        "RedemptionRequested(uint256,address,string,uint8,uint256,int128,"
                        "(uint64,string[]),bytes)");
    /* every selector and topic agrees with cast */
    for (size_t i = 0; i < c->n_fns; i++) {
        char mine[16], *theirs = cast("sig '%s'", c->fns[i].signature);
        hex_encode(c->fns[i].selector, 4, 1, mine, sizeof mine);
        assert_string_equal(mine, theirs);
        free(theirs);
    }
    for (size_t i = 0; i < c->n_errors; i++) {
        char mine[16], *theirs = cast("sig '%s'", c->errors[i].signature);
        hex_encode(c->errors[i].selector, 4, 1, mine, sizeof mine);
        assert_string_equal(mine, theirs);
        free(theirs);
    }
    for (size_t i = 0; i < c->n_events; i++) {
        char mine[HEX_B32_STRLEN], *theirs = cast("keccak '%s'", c->events[i].signature);
        hex_encode(c->events[i].topic0, 32, 1, mine, sizeof mine);
        assert_string_equal(mine, theirs);
        free(theirs);
    }

    /* calls: object args == array args == cast */
    cJSON *obj = json("{\"to\":\"" ADDR1 "\",\"amount\":\"1000\"}");
    cJSON *arr = json("[\"" ADDR1 "\",\"1000\"]");
    uint8_t *a, *b;
    size_t an, bn;
    char err[UTIL_ERRLEN];
    assert_int_equal(abi_fn_encode_call(tr, obj, &a, &an, err, sizeof err), 0);
    assert_int_equal(abi_fn_encode_call(tr, arr, &b, &bn, err, sizeof err), 0);
    assert_int_equal(an, bn);
    assert_memory_equal(a, b, an);
    char *mine = hex_encode_new(a, an, 1),
         *theirs = cast("calldata '%s' %s 1000", tr->signature, ADDR1);
    assert_string_equal(mine, theirs);
    free(mine);
    free(theirs);
    free(a);
    free(b);
    cJSON_Delete(obj);
    cJSON_Delete(arr);
    cJSON *bad = json("{\"to\":\"" ADDR1 "\"}");
    err[0] = '\0';
    assert_int_equal(abi_fn_encode_call(tr, bad, &a, &an, err, sizeof err), -1);
    assert_non_null(strstr(err, "transfer(address,uint256)"));
    cJSON_Delete(bad);

    const abi_fn *sub = abi_contract_fn(c, "submit");
    cJSON *args = json("[[{\"amount\":\"1\",\"to\":\"" ADDR1 "\"},{\"amount\":\"2\",\"to\":\"" ADDR2
                       "\"}],\"0xbeef\"]");
    assert_int_equal(abi_fn_encode_call(sub, args, &a, &an, err, sizeof err), 0);
    mine = hex_encode_new(a, an, 1);
    theirs = cast("calldata '%s' '[(1,%s),(2,%s)]' 0xbeef", sub->signature, ADDR1, ADDR2);
    assert_string_equal(mine, theirs);
    cJSON *dec = abi_fn_decode_call(sub, a, an, ABI_DECODE_STRICT, err, sizeof err);
    assert_true(cJSON_Compare(dec, args, 1));
    cJSON_Delete(dec);
    a[0] ^= 1; /* wrong selector */
    assert_null(abi_fn_decode_call(sub, a, an, 0, NULL, 0));
    free(mine);
    free(theirs);
    free(a);
    cJSON_Delete(args);

    /* results: positional */
    const abi_fn *ta = abi_contract_fn(c, "totalAssets");
    theirs = cast("abi-encode 'f(uint256,uint64)' 123456789012345678901234567890 1700000000");
    uint8_t *r = unhex(theirs, &an);
    dec = abi_fn_decode_result(ta, r, an, 0, err, sizeof err);
    assert_json(dec, "[\"123456789012345678901234567890\",\"1700000000\"]");
    cJSON_Delete(dec);
    assert_null(abi_fn_decode_result(ta, r, an - 1, 0, NULL, 0));
    free(r);
    free(theirs);
    abi_contract_free(c);
}

static void topic_of_addr(uint8_t t[32], const char *addr)
{
    memset(t, 0, 32);
    assert_int_equal(hex_addr_parse(addr, t + 12, NULL, 0), 0);
}

static void test_events(void **state)
{
    (void)state;
    abi_contract *c = load_test_abi();
    char err[UTIL_ERRLEN];
    uint8_t topics[4][32];

    /* ERC-20 Transfer: 3 topics; topic0 from cast, not from us */
    char *t0 = cast("keccak 'Transfer(address,address,uint256)'");
    assert_int_equal(hex_decode_fixed(t0, topics[0], 32, NULL, 0), 0);
    topic_of_addr(topics[1], ADDR1);
    topic_of_addr(topics[2], ADDR2);
    char *data_hex = cast("abi-encode 'f(uint256)' 1000000");
    size_t dn;
    uint8_t *data = unhex(data_hex, &dn);
    cJSON *ev = abi_decode_log(c, (const uint8_t(*)[32])topics, 3, data, dn, err, sizeof err);
    if (!ev)
        fail_msg("decode: %s", err);
    assert_json(ev,
                "{\"event\":\"Transfer\",\"signature\":\"Transfer(address,address,uint256)\","
                "\"args\":{\"from\":\"" ADDR1 "\",\"to\":\"" ADDR2 "\",\"value\":\"1000000\"}}");
    cJSON_Delete(ev);
    /* Bulk mode: the same addresses as lowercase hex, no checksum work. */
    c->log_flags = ABI_DECODE_LOWER_ADDR;
    ev = abi_decode_log(c, (const uint8_t(*)[32])topics, 3, data, dn, err, sizeof err);
    assert_non_null(ev);
    const char *from = cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "args"), "from")->valuestring;
    assert_int_equal(strcasecmp(from, ADDR1), 0);
    for (const char *q = from; *q; q++)
        assert_false(*q >= 'A' && *q <= 'F');
    cJSON_Delete(ev);
    c->log_flags = 0;
    /* ERC-721 Transfer: same topic0, 4 topics */
    memset(topics[3], 0, 32);
    topics[3][31] = 7;
    ev = abi_decode_log(c, (const uint8_t(*)[32])topics, 4, NULL, 0, err, sizeof err);
    assert_non_null(ev);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "args"), "tokenId")->valuestring, "7");
    cJSON_Delete(ev);
    /* wrong topic count, truncated data, dirty indexed address, unknown topic0 */
    assert_null(abi_decode_log(c, (const uint8_t(*)[32])topics, 2, data, dn, err, sizeof err));
    assert_non_null(strstr(err, "topic count"));
    assert_null(abi_decode_log(c, (const uint8_t(*)[32])topics, 3, data, dn - 1, NULL, 0));
    topics[1][0] = 1;
    assert_null(abi_decode_log(c, (const uint8_t(*)[32])topics, 3, data, dn, NULL, 0));
    topics[1][0] = 0;
    topics[0][5] ^= 1;
    assert_null(abi_decode_log(c, (const uint8_t(*)[32])topics, 3, data, dn, err, sizeof err));
    assert_non_null(strstr(err, "no event"));
    assert_null(abi_decode_log(c, NULL, 0, data, dn, NULL, 0));
    free(data);
    free(data_hex);
    free(t0);

    /* the fund's event: indexed string yields its hash, tuple by names, unnamed by position */
    const abi_event *rr = abi_contract_event(c, "RedemptionRequested");
    assert_int_equal(rr->n_indexed, 3);
    t0 = cast("keccak '%s'", rr->signature);
    char *memo = cast("keccak urgent");
    assert_int_equal(hex_decode_fixed(t0, topics[0], 32, NULL, 0), 0);
    memset(topics[1], 0, 32);
    topics[1][31] = 42;
    topic_of_addr(topics[2], ADDR1);
    assert_int_equal(hex_decode_fixed(memo, topics[3], 32, NULL, 0), 0);
    data_hex = cast("abi-encode 'f(uint8,uint256,int128,(uint64,string[]),bytes)' -- 1 "
                    "5000000000000000000000 -7 '(1700000000,[a,bc])' 0xbeef");
    data = unhex(data_hex, &dn);
    ev = abi_decode_log(c, (const uint8_t(*)[32])topics, 4, data, dn, err, sizeof err);
    if (!ev)
        fail_msg("decode: %s", err);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"event\":\"RedemptionRequested\",\"signature\":\"%s\",\"args\":{"
             "\"requestId\":\"42\",\"owner\":\"" ADDR1 "\",\"memo\":\"%s\",\"channel\":\"1\","
             "\"grossAssets\":\"5000000000000000000000\",\"fee\":\"-7\","
             "\"terms\":{\"settleAt\":\"1700000000\",\"tags\":[\"a\",\"bc\"]},\"7\":\"0xbeef\"}}",
             rr->signature, memo);
    assert_json(ev, want);
    cJSON_Delete(ev);

    /* the same log in JSON-RPC form */
    char *t0h = hex_encode_new(topics[0], 32, 1), *t1h = hex_encode_new(topics[1], 32, 1),
         *t2h = hex_encode_new(topics[2], 32, 1);
    char logjson[4096];
    snprintf(logjson, sizeof logjson, "{\"topics\":[\"%s\",\"%s\",\"%s\",\"%s\"],\"data\":\"%s\"}",
             t0h, t1h, t2h, memo, data_hex);
    cJSON *lj = json(logjson);
    ev = abi_decode_log_json(c, lj, err, sizeof err);
    assert_json(ev, want);
    cJSON_Delete(ev);
    cJSON_Delete(lj);
    snprintf(logjson, sizeof logjson, "{\"topics\":[\"%s\",\"0x01\"],\"data\":\"0x\"}", t0h);
    lj = json(logjson);
    assert_null(abi_decode_log_json(c, lj, NULL, 0));
    cJSON_Delete(lj);
    lj = json("{\"topics\":[],\"data\":\"0xzz\"}");
    assert_null(abi_decode_log_json(c, lj, NULL, 0));
    cJSON_Delete(lj);

    /* anonymous events are never matched by topic0 */
    const abi_event *sec = abi_contract_event(c, "Secret");
    assert_true(sec->anonymous);
    memcpy(topics[0], sec->topic0, 32);
    assert_null(abi_decode_log(c, (const uint8_t(*)[32])topics, 1, NULL, 0, NULL, 0));

    free(t0h);
    free(t1h);
    free(t2h);
    free(data);
    free(data_hex);
    free(memo);
    free(t0);
    abi_contract_free(c);
}

static cJSON *revert_of(const abi_contract *c, const char *hex)
{
    size_t n;
    uint8_t *d = unhex(hex, &n);
    cJSON *r = abi_decode_revert(c, d, n);
    free(d);
    assert_non_null(r);
    return r;
}

/* JSON-RPC log object from topics and data (hex via cast or ours). */
static cJSON *log_json(const uint8_t (*topics)[32], size_t nt, const char *data_hex)
{
    cJSON *log = cJSON_CreateObject();
    cJSON *ts = cJSON_AddArrayToObject(log, "topics");
    for (size_t i = 0; i < nt; i++) {
        char h[HEX_B32_STRLEN];
        hex_encode(topics[i], 32, 1, h, sizeof h);
        cJSON_AddItemToArray(ts, cJSON_CreateString(h));
    }
    cJSON_AddStringToObject(log, "data", data_hex);
    return log;
}

/* The JSON-log path: argument keys for repeated and unnamed names, integers on
 * both sides of 64 bits (the decimal fast path), more data values than the
 * decoder keeps on its stack, error precedence and clean-up, and an output tree
 * that can be re-parented and duplicated. Data comes from cast. */
static void test_log_json_paths(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    char wide[4096];
    int o = snprintf(wide, sizeof wide, "{\"type\":\"event\",\"name\":\"Wide\",\"inputs\":[");
    for (int i = 0; i < 17; i++)
        o += snprintf(wide + o, sizeof wide - (size_t)o, "%s{\"name\":\"v%d\",\"type\":\"uint8\"}",
                      i ? "," : "", i);
    snprintf(wide + o, sizeof wide - (size_t)o, "]}");
    char abi_json[8192];
    snprintf(abi_json, sizeof abi_json,
             "[{\"type\":\"event\",\"name\":\"Dup\",\"inputs\":["
             "{\"name\":\"a\",\"type\":\"address\",\"indexed\":true},"
             "{\"name\":\"a\",\"type\":\"uint256\"},{\"name\":\"\",\"type\":\"int256\"},"
             "{\"name\":\"b\",\"type\":\"int64\"}]},%s]",
             wide);
    abi_contract *c = abi_contract_parse(abi_json, err, sizeof err);
    if (!c)
        fail_msg("abi: %s", err);
    const abi_event *dup = abi_contract_event(c, "Dup");
    assert_string_equal(dup->keys[0], "a");
    assert_string_equal(dup->keys[1], "1");
    assert_string_equal(dup->keys[2], "2");
    assert_string_equal(dup->keys[3], "b");

    uint8_t topics[4][32];
    memcpy(topics[0], dup->topic0, 32);
    topic_of_addr(topics[1], ADDR1);
    char *data_hex = cast("abi-encode 'f(uint256,int256,int64)' -- 18446744073709551616 "
                          "-18446744073709551616 -9223372036854775808");
    cJSON *lj = log_json((const uint8_t(*)[32])topics, 2, data_hex);
    cJSON *ev = abi_decode_log_json(c, lj, err, sizeof err);
    if (!ev)
        fail_msg("decode: %s", err);
    /* exact text: key order is the declaration order */
    char *txt = cJSON_PrintUnformatted(ev);
    assert_string_equal(txt,
                        "{\"event\":\"Dup\",\"signature\":\"Dup(address,uint256,int256,int64)\","
                        "\"args\":{\"a\":\"" ADDR1 "\",\"1\":\"18446744073709551616\","
                        "\"2\":\"-18446744073709551616\",\"b\":\"-9223372036854775808\"}}");
    free(txt);
    /* the output is an ordinary owned tree: duplicate it, move "args" elsewhere */
    cJSON *copy = cJSON_Duplicate(ev, 1);
    cJSON *args = cJSON_DetachItemFromObjectCaseSensitive(ev, "args");
    cJSON_Delete(ev);
    cJSON *holder = cJSON_CreateObject();
    cJSON_AddItemToObject(holder, "moved", args);
    assert_true(
        cJSON_Compare(cJSON_GetObjectItem(holder, "moved"), cJSON_GetObjectItem(copy, "args"), 1));
    /* a value outlives its old parent under a new key; replacing one is the way to
     * change it (decoded text shares its node's allocation) */
    cJSON *one = cJSON_DetachItemFromObjectCaseSensitive(args, "1");
    cJSON_ReplaceItemInObjectCaseSensitive(args, "b", cJSON_CreateString("7"));
    assert_string_equal(cJSON_GetObjectItem(args, "b")->valuestring, "7");
    cJSON_Delete(holder);
    cJSON *other = cJSON_CreateObject();
    cJSON_AddItemToObject(other, "renamed", one);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(other, "renamed")),
                        "18446744073709551616");
    cJSON *one_copy = cJSON_Duplicate(one, 0);
    cJSON_Delete(other);
    assert_string_equal(one_copy->valuestring, "18446744073709551616");
    assert_non_null(cJSON_SetValuestring(one_copy, "1")); /* a copy is an ordinary item */
    cJSON_Delete(one_copy);
    cJSON_Delete(copy);

    /* the same through the binary entry point, and with upper-case hex in the JSON */
    size_t dn;
    uint8_t *data = unhex(data_hex, &dn);
    ev = abi_decode_log(c, (const uint8_t(*)[32])topics, 2, data, dn, err, sizeof err);
    char *upper = util_strdup(data_hex);
    for (char *q = upper + 2; *q; q++)
        if (*q >= 'a' && *q <= 'f')
            *q = (char)(*q - 'a' + 'A');
    cJSON_ReplaceItemInObject(lj, "data", cJSON_CreateString(upper));
    cJSON *ev2 = abi_decode_log_json(c, lj, err, sizeof err);
    assert_non_null(ev);
    assert_non_null(ev2);
    assert_true(cJSON_Compare(ev, ev2, 1));
    cJSON_Delete(ev);
    cJSON_Delete(ev2);
    free(upper);
    cJSON_Delete(lj);

    /* data errors are reported before topic errors, as when data decoded first */
    topics[1][0] = 1; /* dirty address topic */
    ev = abi_decode_log(c, (const uint8_t(*)[32])topics, 2, data, dn - 1, err, sizeof err);
    assert_null(ev);
    assert_non_null(strstr(err, "data too short"));
    ev = abi_decode_log(c, (const uint8_t(*)[32])topics, 2, data, dn, err, sizeof err);
    assert_null(ev);
    assert_non_null(strstr(err, "dirty high bytes in address"));
    topics[1][0] = 0;
    /* the third data value fails after two were decoded: they must be freed (asan) */
    data[2 * 32 + 0] = 0x01;
    assert_null(abi_decode_log(c, (const uint8_t(*)[32])topics, 2, data, dn, err, sizeof err));
    assert_non_null(strstr(err, "int64"));
    free(data);
    free(data_hex);

    /* 17 data values: more than the decoder's stack vector */
    const abi_event *w = abi_contract_event(c, "Wide");
    char cmd[1024];
    o = snprintf(cmd, sizeof cmd, "abi-encode 'f(");
    for (int i = 0; i < 17; i++)
        o += snprintf(cmd + o, sizeof cmd - (size_t)o, "%suint8", i ? "," : "");
    o += snprintf(cmd + o, sizeof cmd - (size_t)o, ")' --");
    for (int i = 0; i < 17; i++)
        o += snprintf(cmd + o, sizeof cmd - (size_t)o, " %d", i * 15);
    data_hex = cast("%s", cmd);
    memcpy(topics[0], w->topic0, 32);
    lj = log_json((const uint8_t(*)[32])topics, 1, data_hex);
    ev = abi_decode_log_json(c, lj, err, sizeof err);
    if (!ev)
        fail_msg("decode: %s", err);
    char want[2048];
    o = snprintf(want, sizeof want, "{\"event\":\"Wide\",\"signature\":\"%s\",\"args\":{",
                 w->signature);
    for (int i = 0; i < 17; i++)
        o += snprintf(want + o, sizeof want - (size_t)o, "%s\"v%d\":\"%d\"", i ? "," : "", i,
                      i * 15);
    snprintf(want + o, sizeof want - (size_t)o, "}}");
    txt = cJSON_PrintUnformatted(ev);
    assert_string_equal(txt, want);
    free(txt);
    cJSON_Delete(ev);
    cJSON_Delete(lj);
    /* the last of the 17 dirty: everything decoded before it is released */
    data = unhex(data_hex, &dn);
    data[16 * 32 + 30] = 1; /* 256+ in a uint8 */
    assert_null(abi_decode_log(c, (const uint8_t(*)[32])topics, 1, data, dn, err, sizeof err));
    assert_non_null(strstr(err, "uint8"));
    free(data);
    free(data_hex);
    abi_contract_free(c);
}

static void test_reverts(void **state)
{
    (void)state;
    abi_contract *c = load_test_abi();
    char msg[256];

    char *h = cast("calldata 'Error(string)' 'vault: paused'");
    cJSON *r = revert_of(c, h);
    assert_json(r, "{\"kind\":\"error\",\"message\":\"vault: paused\"}");
    assert_int_equal(abi_revert_message(r, msg, sizeof msg), 0);
    assert_string_equal(msg, "Error: vault: paused");
    cJSON_Delete(r);
    h[strlen(h) - 64] = '\0'; /* message bytes cut off: raw, not a crash */
    r = revert_of(c, h);
    assert_string_equal(cJSON_GetObjectItem(r, "kind")->valuestring, "raw");
    cJSON_Delete(r);
    free(h);

    h = cast("calldata 'Panic(uint256)' 0x11");
    r = revert_of(NULL, h);
    assert_json(
        r,
        "{\"kind\":\"panic\",\"code\":\"0x11\",\"meaning\":\"arithmetic overflow or underflow\"}");
    assert_int_equal(abi_revert_message(r, msg, sizeof msg), 0);
    assert_string_equal(msg, "Panic 0x11: arithmetic overflow or underflow");
    cJSON_Delete(r);
    free(h);
    h = cast("calldata 'Panic(uint256)' 0x32");
    r = revert_of(NULL, h);
    assert_string_equal(cJSON_GetObjectItem(r, "meaning")->valuestring,
                        "array index out of bounds");
    cJSON_Delete(r);
    free(h);
    h = cast("calldata 'Panic(uint256)' 0x99");
    r = revert_of(NULL, h);
    assert_string_equal(cJSON_GetObjectItem(r, "meaning")->valuestring, "unknown panic code");
    cJSON_Delete(r);
    free(h);

    h = cast("calldata 'InsufficientShares(address,uint256)' %s 5", ADDR2);
    r = revert_of(c, h);
    assert_json(r, "{\"kind\":\"custom\",\"error\":\"InsufficientShares\",\"signature\":"
                   "\"InsufficientShares(address,uint256)\",\"args\":{\"owner\":\"" ADDR2
                   "\",\"needed\":\"5\"}}");
    assert_int_equal(abi_revert_message(r, msg, sizeof msg), 0);
    assert_string_equal(msg, "InsufficientShares {\"owner\":\"" ADDR2 "\",\"needed\":\"5\"}");
    assert_int_equal(abi_revert_message(r, msg, 10), -1);
    cJSON_Delete(r);
    /* without the ABI it is raw data */
    r = revert_of(NULL, h);
    assert_string_equal(cJSON_GetObjectItem(r, "kind")->valuestring, "raw");
    assert_string_equal(cJSON_GetObjectItem(r, "data")->valuestring, h);
    cJSON_Delete(r);
    free(h);
    h = cast("sig 'Paused()'");
    r = revert_of(c, h);
    assert_json(
        r, "{\"kind\":\"custom\",\"error\":\"Paused\",\"signature\":\"Paused()\",\"args\":{}}");
    cJSON_Delete(r);
    free(h);

    r = revert_of(c, "0x");
    assert_json(r, "{\"kind\":\"empty\"}");
    assert_int_equal(abi_revert_message(r, msg, sizeof msg), 0);
    cJSON_Delete(r);
    r = revert_of(c, "0xdeadbe");
    assert_json(r, "{\"kind\":\"raw\",\"data\":\"0xdeadbe\"}");
    cJSON_Delete(r);
    r = revert_of(c, "0xdeadbeef00");
    assert_json(r, "{\"kind\":\"raw\",\"data\":\"0xdeadbeef00\"}");
    assert_int_equal(abi_revert_message(r, msg, sizeof msg), 0);
    assert_string_equal(msg, "revert 0xdeadbeef00");
    cJSON_Delete(r);
    abi_contract_free(c);
}

static void test_contract_load(void **state)
{
    (void)state;
    char path[] = "/tmp/paimon-abi-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "{\"contractName\":\"X\",\"abi\":%s}", TEST_ABI);
    fclose(f);
    char err[UTIL_ERRLEN];
    abi_contract *c = abi_contract_load(path, err, sizeof err);
    if (!c)
        fail_msg("load: %s", err);
    assert_int_equal(c->n_fns, 3);
    abi_contract_free(c);
    unlink(path);
    assert_null(abi_contract_load(path, err, sizeof err));
    assert_non_null(strstr(err, path));

    static const char *bad[] = {
        "not json",
        "{}",
        "[1]",
        "[{\"type\":\"function\",\"inputs\":[]}]",
        "[{\"type\":\"function\",\"name\":\"f\",\"inputs\":[{\"type\":\"uint7\"}]}]",
        "[{\"type\":\"function\",\"name\":\"f\",\"inputs\":{}}]",
        "[{\"type\":\"event\",\"name\":\"E\",\"inputs\":[{\"type\":\"uint7\",\"indexed\":true}]}]",
        "[{\"type\":\"event\",\"name\":\"E\",\"inputs\":[{\"type\":\"uint8\",\"indexed\":true},"
        "{\"type\":\"uint8\",\"indexed\":true},{\"type\":\"uint8\",\"indexed\":true},"
        "{\"type\":\"uint8\",\"indexed\":true}]}]",
        "[{\"type\":\"error\",\"name\":\"E\",\"inputs\":[{\"type\":\"tuple\"}]}]",
        "[{\"type\":\"weird\",\"name\":\"x\"}]",
        "[{\"type\":\"function\",\"name\":\"bad name\",\"inputs\":[]}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        c = abi_contract_parse(bad[i], err, sizeof err);
        if (c)
            fail_msg("accepted ABI %s", bad[i]);
        assert_true(err[0] != '\0');
    }
    /* a type missing "type" defaults to function; empty ABI is fine */
    c = abi_contract_parse("[{\"name\":\"ping\"}]", err, sizeof err);
    assert_non_null(c);
    assert_string_equal(c->fns[0].signature, "ping()");
    abi_contract_free(c);
    c = abi_contract_parse("[]", err, sizeof err);
    assert_non_null(c);
    abi_contract_free(c);
}

static void test_fn_parse_and_strings(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    abi_fn *fn = abi_fn_parse("balanceOf(address)(uint256)", err, sizeof err);
    assert_non_null(fn);
    assert_string_equal(fn->signature, "balanceOf(address)");
    assert_int_equal(fn->outputs->n, 1);
    abi_fn_free(fn);
    fn = abi_fn_parse("f(uint)", err, sizeof err);
    assert_string_equal(fn->signature, "f(uint256)");
    abi_fn_free(fn);
    static const char *bad[] = {"(uint256)",      "f",     "f(uint256",
                                "f(uint256)x",    "1f()",  "f(uint256)[]",
                                "f()(uint256)[]", "f g()", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(abi_fn_parse(bad[i], NULL, 0));

    /* invalid UTF-8 and NUL in decoded strings become U+FFFD */
    uint8_t d[96] = {0};
    put_word(d, 0, 32);
    put_word(d + 32, 0, 4);
    memcpy(d + 64, "a\xff\0b", 4);
    abi_type *t = type("(string)");
    cJSON *v = abi_decode(t, d, sizeof d, 0, err, sizeof err);
    assert_non_null(v);
    assert_string_equal(cJSON_GetArrayItem(v, 0)->valuestring, "a\xef\xbf\xbd\xef\xbf\xbd"
                                                               "b");
    cJSON_Delete(v);
    abi_type_free(t);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_parse),
        cmocka_unit_test(test_type_from_json),
        cmocka_unit_test(test_docs_examples),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_nested_roundtrip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_offset_sharing),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_contract_selectors),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_log_json_paths),
        cmocka_unit_test(test_reverts),
        cmocka_unit_test(test_contract_load),
        cmocka_unit_test(test_fn_parse_and_strings),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
