/* Unit tests for libcommon/jsonschema: every supported keyword (accepting and
 * rejecting), $ref forms, compile errors that keep schema typos from validating
 * everything, error pointers, and hostile instances (deep nesting, huge strings,
 * many members) that must produce errors rather than crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "jsonschema.h"
#include "util.h"

/* Compiles schema text or fails the test with the compiler's message. */
static jsonschema *must_compile(const char *text)
{
    char err[UTIL_ERRLEN] = "";
    jsonschema *s = jsonschema_compile(text, err, sizeof err);
    if (!s)
        fail_msg("schema did not compile: %s (%s)", err, text);
    return s;
}

/* Validates JSON text against compiled s; returns 0/-1 and leaves the reason in err. */
static int check(const jsonschema *s, const char *instance, char *err, size_t errlen)
{
    cJSON *j = cJSON_Parse(instance);
    if (!j)
        fail_msg("test instance is not JSON: %s", instance);
    int rc = jsonschema_validate(s, j, err, errlen);
    cJSON_Delete(j);
    return rc;
}

static void expect_ok(const jsonschema *s, const char *instance)
{
    char err[UTIL_ERRLEN] = "";
    if (check(s, instance, err, sizeof err) != 0)
        fail_msg("expected %s to be valid, got: %s", instance, err);
}

/* Expects a rejection whose message contains `want` (the pointer and/or reason). */
static void expect_bad(const jsonschema *s, const char *instance, const char *want)
{
    char err[UTIL_ERRLEN] = "";
    if (check(s, instance, err, sizeof err) == 0)
        fail_msg("expected %s to be rejected", instance);
    if (want && !strstr(err, want))
        fail_msg("error for %s is \"%s\", expected it to contain \"%s\"", instance, err, want);
}

static void expect_compile_error(const char *text, const char *want)
{
    char err[UTIL_ERRLEN] = "";
    jsonschema *s = jsonschema_compile(text, err, sizeof err);
    if (s) {
        jsonschema_free(s);
        fail_msg("expected schema to be refused: %s", text);
    }
    if (want && !strstr(err, want))
        fail_msg("compile error \"%s\" does not contain \"%s\"", err, want);
}

static void test_type_single(void **state)
{
    (void)state;
    static const struct {
        const char *type, *good, *bad;
    } cases[] = {
        {"null", "null", "0"},        {"boolean", "true", "\"true\""},
        {"object", "{}", "[]"},       {"array", "[1]", "{}"},
        {"number", "1.5", "\"1.5\""}, {"string", "\"x\"", "null"},
        {"integer", "42", "42.5"},    {"integer", "-9007199254740991", "9007199254740992"},
        {"integer", "3.0", "1e300"},  {"number", "1e300", "true"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"type\":\"%s\"}", cases[i].type);
        jsonschema *s = must_compile(text);
        expect_ok(s, cases[i].good);
        expect_bad(s, cases[i].bad, "(root): expected");
        jsonschema_free(s);
    }
}

static void test_type_array_and_nonfinite(void **state)
{
    (void)state;
    jsonschema *s = must_compile("{\"type\":[\"string\",\"null\"]}");
    expect_ok(s, "null");
    expect_ok(s, "\"a\"");
    expect_bad(s, "1", "expected null or string");
    jsonschema_free(s);

    /* cJSON turns 1e999 into inf: that is neither a number nor an integer. */
    s = must_compile("{\"type\":\"number\"}");
    expect_bad(s, "1e999", "expected number");
    jsonschema_free(s);
    s = must_compile("{\"type\":\"integer\"}");
    expect_bad(s, "-1e999", "expected integer");
    jsonschema_free(s);
}

static void test_enum_const(void **state)
{
    (void)state;
    jsonschema *s = must_compile("{\"enum\":[\"a\",1,null,{\"x\":[1,2]}]}");
    expect_ok(s, "\"a\"");
    expect_ok(s, "1.0"); /* numbers compare by value */
    expect_ok(s, "null");
    expect_ok(s, "{\"x\":[1,2]}");
    expect_bad(s, "\"b\"", "not in enum");
    expect_bad(s, "{\"x\":[2,1]}", "not in enum"); /* array order matters */
    expect_bad(s, "{\"x\":[1,2],\"y\":0}", "not in enum");
    expect_bad(s, "false", "not in enum");
    jsonschema_free(s);

    s = must_compile("{\"const\":{\"a\":1,\"b\":\"z\"}}");
    expect_ok(s, "{\"b\":\"z\",\"a\":1}"); /* member order does not */
    expect_bad(s, "{\"a\":1}", "differs from const");
    expect_bad(s, "{\"a\":1,\"b\":\"Z\"}", "differs from const");
    jsonschema_free(s);

    s = must_compile("{\"const\":null}");
    expect_ok(s, "null");
    expect_bad(s, "0", "const");
    jsonschema_free(s);
}

static void test_object_keywords(void **state)
{
    (void)state;
    jsonschema *s = must_compile("{\"type\":\"object\",\"required\":[\"a\",\"b\"],"
                                 "\"properties\":{\"a\":{\"type\":\"string\"},"
                                 "\"b\":{\"type\":\"integer\"}},"
                                 "\"additionalProperties\":false}");
    expect_ok(s, "{\"a\":\"x\",\"b\":1}");
    expect_bad(s, "{\"a\":\"x\"}", "/b: required property missing");
    expect_bad(s, "{\"a\":1,\"b\":1}", "/a: expected string");
    expect_bad(s, "{\"a\":\"x\",\"b\":1,\"c\":0}", "/c: additional property not allowed");
    jsonschema_free(s);

    s = must_compile(
        "{\"properties\":{\"a\":true},\"additionalProperties\":{\"type\":\"number\"}}");
    expect_ok(s, "{\"a\":\"anything\",\"n\":1,\"m\":2.5}");
    expect_bad(s, "{\"a\":null,\"n\":\"1\"}", "/n: expected number");
    expect_ok(s, "[1]"); /* object keywords ignore non-objects */
    jsonschema_free(s);

    s = must_compile("{\"properties\":{\"never\":false}}");
    expect_ok(s, "{}");
    expect_bad(s, "{\"never\":1}", "/never: no value is allowed");
    jsonschema_free(s);
}

static void test_array_keywords(void **state)
{
    (void)state;
    jsonschema *s = must_compile("{\"type\":\"array\",\"minItems\":1,\"maxItems\":3,"
                                 "\"items\":{\"type\":\"integer\",\"minimum\":0}}");
    expect_ok(s, "[0]");
    expect_ok(s, "[1,2,3]");
    expect_bad(s, "[]", "fewer than 1 items");
    expect_bad(s, "[1,2,3,4]", "more than 3 items");
    expect_bad(s, "[1,-2]", "/1: must be >= 0");
    expect_bad(s, "[1,\"2\"]", "/1: expected integer");
    jsonschema_free(s);
}

static void test_string_lengths_count_code_points(void **state)
{
    (void)state;
    jsonschema *s = must_compile("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}");
    expect_ok(s, "\"ab\"");
    expect_ok(s, "\"\\u00e9\\u00e9\\u00e9\"");    /* 3 code points, 6 bytes */
    expect_ok(s, "\"\xf0\x9f\x98\x80\xc3\xa9\""); /* emoji + e-acute: 2 code points */
    expect_bad(s, "\"a\"", "shorter than 2");
    expect_bad(s, "\"abcd\"", "longer than 3");
    expect_bad(s, "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"", "longer than 3");
    /* invalid UTF-8 (overlong '/', lone continuation, surrogate) */
    expect_bad(s, "\"a\xc0\xaf\"", "UTF-8");
    expect_bad(s, "\"a\x80\"", "UTF-8");
    expect_bad(s, "\"a\xed\xa0\x80\"", "UTF-8");
    jsonschema_free(s);

    size_t n = 99;
    assert_int_equal(jsonschema_utf8_count("a\xe2\x82\xac", 4, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(jsonschema_utf8_count("\xf4\x90\x80\x80", 4, &n), -1); /* > U+10FFFF */
    assert_int_equal(jsonschema_utf8_count("\xe2\x82", 2, &n), -1);         /* truncated */
}

static void test_pattern(void **state)
{
    (void)state;
    /* unanchored like ECMA: "b" is found inside "abc" */
    jsonschema *s = must_compile("{\"pattern\":\"b+\"}");
    expect_ok(s, "\"abbc\"");
    expect_bad(s, "\"ac\"", "does not match pattern");
    expect_ok(s, "5"); /* string keywords ignore non-strings */
    jsonschema_free(s);

    s = must_compile("{\"pattern\":\"^[a-z][a-z0-9_]*(\\\\.[a-z0-9_]+)*$\"}");
    expect_ok(s, "\"redemption.requested\"");
    expect_bad(s, "\"redemption..requested\"", "pattern");
    expect_bad(s, "\"redemptionXrequested.x\"", "pattern");
    expect_bad(s, "\"Redemption\"", "pattern");
    jsonschema_free(s);

    s = must_compile("{\"pattern\":\"^[A-Za-z0-9:_.-]*$\"}"); /* '-' last is literal in both */
    expect_ok(s, "\"1:0xab:3\"");
    expect_ok(s, "\"a-b\"");
    expect_bad(s, "\"a\\\\b\"", "pattern");
    jsonschema_free(s);
}

static void test_pattern_compile_errors(void **state)
{
    (void)state;
    expect_compile_error("{\"pattern\":\"^\\\\d+$\"}", "\\d");
    expect_compile_error("{\"pattern\":\"\\\\w\"}", "ECMA shorthands");
    expect_compile_error("{\"pattern\":\"\\\\s\"}", "not supported");
    expect_compile_error("{\"pattern\":\"(a)\\\\1\"}", "not supported"); /* back-reference */
    expect_compile_error("{\"pattern\":\"[a\\\\-z]\"}", "inside [...]"); /* ECMA escape in class */
    expect_compile_error("{\"pattern\":\"(?:ab)\"}", "(?");
    expect_compile_error("{\"pattern\":\"[[:alpha:]]\"}", "not portable");
    expect_compile_error("{\"pattern\":\"[]a]\"}", "empty class");
    expect_compile_error("{\"pattern\":\"(ab\"}", "pattern"); /* regcomp rejects */
    expect_compile_error("{\"pattern\":\"[ab\"}", "unterminated");
    expect_compile_error("{\"pattern\":\"ab\\\\\"}", "not supported"); /* trailing backslash */
    expect_compile_error("{\"pattern\":7}", "pattern must be a string");
}

static void test_numbers(void **state)
{
    (void)state;
    jsonschema *s = must_compile("{\"minimum\":-1.5,\"maximum\":10}");
    expect_ok(s, "-1.5");
    expect_ok(s, "10");
    expect_bad(s, "-1.6", "must be >= -1.5");
    expect_bad(s, "10.000001", "must be <= 10");
    expect_ok(s, "\"100\""); /* numeric keywords ignore strings */
    jsonschema_free(s);

    s = must_compile("{\"exclusiveMinimum\":0,\"exclusiveMaximum\":1}");
    expect_ok(s, "0.5");
    expect_bad(s, "0", "must be > 0");
    expect_bad(s, "1", "must be < 1");
    jsonschema_free(s);

    expect_compile_error("{\"minimum\":\"1\"}", "finite number");
    expect_compile_error("{\"exclusiveMinimum\":true}", "finite number"); /* draft-04 style */
    expect_compile_error("{\"minItems\":-1}", "non-negative integer");
    expect_compile_error("{\"maxLength\":1.5}", "non-negative integer");
}

static void test_format_date_time(void **state)
{
    (void)state;
    jsonschema *s = must_compile("{\"format\":\"date-time\"}");
    static const char *const good[] = {
        "\"2026-11-23T10:00:00.123Z\"",  "\"2026-11-23T10:00:00Z\"",
        "\"2024-02-29T23:59:60+05:30\"", "\"2026-11-23t10:00:00.5z\"",
        "\"2000-02-29T00:00:00-00:00\"",
    };
    static const char *const bad[] = {
        "\"2026-11-23T10:00:00\"",       "\"2026-11-23 10:00:00Z\"",
        "\"2023-02-29T00:00:00Z\"",      "\"1900-02-29T00:00:00Z\"",
        "\"2026-04-31T00:00:00Z\"",      "\"2026-13-01T00:00:00Z\"",
        "\"2026-11-23T24:00:00Z\"",      "\"2026-11-23T10:60:00Z\"",
        "\"2026-11-23T10:00:00.Z\"",     "\"2026-11-23T10:00:00+0100\"",
        "\"2026-11-23T10:00:00+24:00\"", "\"26-11-23T10:00:00Z\"",
        "\"2026-11-23T10:00:00ZZ\"",     "\"\"",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        expect_ok(s, good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad(s, bad[i], "RFC 3339");
    expect_ok(s, "12"); /* formats apply to strings only */
    jsonschema_free(s);
}

static void test_format_uuid_and_unknown(void **state)
{
    (void)state;
    jsonschema *s = must_compile("{\"format\":\"uuid\"}");
    expect_ok(s, "\"123e4567-e89b-12d3-a456-426614174000\"");
    expect_ok(s, "\"123E4567-E89B-12D3-A456-426614174000\"");
    expect_bad(s, "\"123e4567e89b12d3a456426614174000\"", "UUID");
    expect_bad(s, "\"123e4567-e89b-12d3-a456-42661417400g\"", "UUID");
    expect_bad(s, "\"123e4567-e89b-12d3-a456-4266141740000\"", "UUID");
    jsonschema_free(s);
    expect_compile_error("{\"format\":\"email\"}", "unsupported format");
}

static void test_ref_defs(void **state)
{
    (void)state;
    jsonschema *s = must_compile("{\"$defs\":{\"amount\":{\"type\":\"string\","
                                 "\"pattern\":\"^[0-9]+$\"}},"
                                 "\"type\":\"object\",\"properties\":{"
                                 "\"a\":{\"$ref\":\"#/$defs/amount\"},"
                                 "\"b\":{\"$ref\":\"#/$defs/amount\",\"maxLength\":2}}}");
    expect_ok(s, "{\"a\":\"123\",\"b\":\"12\"}");
    expect_bad(s, "{\"a\":\"12x\"}", "/a: string does not match");
    expect_bad(s, "{\"b\":\"123\"}", "/b: string longer than 2"); /* siblings of $ref apply */
    expect_bad(s, "{\"b\":\"1x\"}", "/b: string does not match");
    jsonschema_free(s);

    /* "#" recursion: a tree of arrays of integers */
    s = must_compile("{\"anyOf\":[{\"type\":\"integer\"},"
                     "{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}]}");
    expect_ok(s, "[1,[2,[3,[]]],4]");
    expect_bad(s, "[1,[2,[\"x\"]]]", "anyOf");
    jsonschema_free(s);

    expect_compile_error("{\"$ref\":\"#/$defs/missing\"}", "no such definition");
    expect_compile_error("{\"$ref\":\"#/properties/a\"}", "unsupported $ref");
    expect_compile_error("{\"$ref\":\"http://example.com/x.json\"}", "unsupported $ref");
    expect_compile_error("{\"$ref\":\"nosuchfile.schema.json#\"}", "no embedded schema");
    expect_compile_error("{\"$ref\":5}", "$ref must be a string");
    expect_compile_error("{\"properties\":{\"a\":{\"$defs\":{}}}}", "only supported at the");
}

static void test_ref_embedded_file(void **state)
{
    (void)state;
    /* Refers to the embedded envelope schema by file name, whole and by $defs-less root. */
    jsonschema *s =
        must_compile("{\"type\":\"array\",\"items\":{\"$ref\":\"envelope.schema.json#\"}}");
    expect_ok(s, "[{\"id\":\"a\",\"type\":\"x.y\",\"source\":\"api\","
                 "\"ts\":\"2026-11-23T10:00:00.123Z\",\"attempt\":0,\"trace_id\":\"t\","
                 "\"payload\":{}}]");
    expect_bad(s, "[{\"id\":\"a\"}]", "/0/type: required property missing");
    jsonschema_free(s);
    s = must_compile("{\"$ref\":\"envelope.schema.json\"}");
    expect_bad(s, "{}", "required property missing");
    jsonschema_free(s);
}

static void test_combinators(void **state)
{
    (void)state;
    jsonschema *s = must_compile("{\"allOf\":[{\"minimum\":0},{\"maximum\":5}]}");
    expect_ok(s, "3");
    expect_bad(s, "6", "must be <= 5");
    expect_bad(s, "-1", "must be >= 0");
    jsonschema_free(s);

    s = must_compile("{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":10}]}");
    expect_ok(s, "\"x\"");
    expect_ok(s, "11");
    expect_bad(s, "9", "matches none of the anyOf");
    jsonschema_free(s);

    s = must_compile("{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}");
    expect_ok(s, "1");   /* integer only */
    expect_ok(s, "2.5"); /* minimum only */
    expect_bad(s, "3", "more than one");
    expect_bad(s, "0.5", "none");
    jsonschema_free(s);

    s = must_compile("{\"not\":{\"type\":\"null\"}}");
    expect_ok(s, "0");
    expect_bad(s, "null", "must not match");
    jsonschema_free(s);

    s = must_compile("true");
    expect_ok(s, "{\"anything\":[1]}");
    jsonschema_free(s);
    s = must_compile("false");
    expect_bad(s, "1", "(root): no value is allowed");
    jsonschema_free(s);

    expect_compile_error("{\"anyOf\":[]}", "non-empty array");
    expect_compile_error("{\"allOf\":{}}", "non-empty array");
    expect_compile_error("{\"not\":3}", "object or a boolean");
}

static void test_compile_errors(void **state)
{
    (void)state;
    /* a typo must not silently validate everything */
    expect_compile_error("{\"type\":\"object\",\"requried\":[\"a\"]}",
                         "unknown keyword \"requried\"");
    expect_compile_error("{\"properties\":{\"a\":{\"maxlength\":3}}}",
                         "#/properties/a: unknown keyword \"maxlength\"");
    expect_compile_error("{\"prefixItems\":[]}", "unknown keyword");
    expect_compile_error("{\"type\":\"str\"}", "unknown type");
    expect_compile_error("{\"type\":[\"string\",\"string\"]}", "twice");
    expect_compile_error("{\"type\":\"string\",\"type\":\"number\"}", "appears twice");
    expect_compile_error("{\"items\":[{}]}", "prefixItems");
    expect_compile_error("{\"required\":[\"a\",\"a\"]}", "twice");
    expect_compile_error("{\"required\":\"a\"}", "array of strings");
    expect_compile_error("{\"enum\":[]}", "non-empty array");
    expect_compile_error("{\"additionalProperties\":1}", "object or a boolean");
    expect_compile_error("[]", "object or a boolean");
    expect_compile_error("{\"type\":", "not valid JSON");
    expect_compile_error("{} x", "not valid JSON");
    expect_compile_error(NULL, "no schema");

    /* annotations are fine */
    jsonschema *s = must_compile("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
                                 "\"$id\":\"x\",\"title\":\"t\",\"description\":\"d\","
                                 "\"examples\":[1],\"default\":1,\"$comment\":\"c\","
                                 "\"type\":\"integer\"}");
    expect_ok(s, "1");
    expect_bad(s, "\"1\"", "expected integer");
    jsonschema_free(s);
}

static void test_error_pointers_and_all_errors(void **state)
{
    (void)state;
    jsonschema *s = must_compile("{\"properties\":{\"a/b\":{\"items\":{\"properties\":"
                                 "{\"c~d\":{\"type\":\"string\"}}}},"
                                 "\"n\":{\"type\":\"integer\"},\"m\":{\"type\":\"integer\"}}}");
    expect_bad(s, "{\"a/b\":[{},{\"c~d\":1}]}", "/a~1b/1/c~0d: expected string");

    cJSON *j = cJSON_Parse("{\"n\":\"x\",\"m\":\"y\"}");
    char err[UTIL_ERRLEN];
    assert_int_equal(jsonschema_validate(s, j, err, sizeof err), -1);
    assert_null(strchr(err, ';')); /* first error only */
    assert_int_equal(jsonschema_validate_all(s, j, err, sizeof err), -1);
    assert_non_null(strstr(err, "/n: expected integer"));
    assert_non_null(strstr(err, "; /m: expected integer"));
    /* a tiny buffer truncates but stays terminated */
    char small[8];
    memset(small, 'X', sizeof small);
    assert_int_equal(jsonschema_validate_all(s, j, small, sizeof small), -1);
    assert_true(strlen(small) < sizeof small);
    assert_int_equal(jsonschema_validate(s, j, NULL, 0), -1);
    cJSON_Delete(j);
    assert_int_equal(jsonschema_validate(s, NULL, err, sizeof err), -1);
    assert_int_equal(jsonschema_validate(NULL, NULL, err, sizeof err), -1);
    jsonschema_free(s);
}

/* A chain of `depth` nested one-element arrays around 0. */
static cJSON *nested_arrays(int depth)
{
    cJSON *inner = cJSON_CreateNumber(0);
    for (int i = 0; i < depth; i++) {
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, inner);
        inner = a;
    }
    return inner;
}

static void test_hostile_deep_nesting(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    jsonschema *s = must_compile("{\"anyOf\":[{\"type\":\"integer\"},"
                                 "{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}]}");
    cJSON *shallow = nested_arrays(20);
    assert_int_equal(jsonschema_validate(s, shallow, err, sizeof err), 0);
    cJSON_Delete(shallow);
    cJSON *deep = nested_arrays(100000); /* far deeper than any stack would survive naively */
    assert_int_equal(jsonschema_validate(s, deep, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting deeper"));
    jsonschema_free(s);

    /* `not` must not turn the depth error into a match */
    s = must_compile("{\"not\":{\"$ref\":\"#/$defs/t\"},\"$defs\":{\"t\":{\"anyOf\":["
                     "{\"type\":\"integer\"},{\"items\":{\"$ref\":\"#/$defs/t\"}}]}}}");
    assert_int_equal(jsonschema_validate(s, deep, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting deeper"));
    jsonschema_free(s);

    /* a schema that refers to itself without consuming input */
    s = must_compile("{\"$ref\":\"#\"}");
    cJSON *one = cJSON_CreateNumber(1);
    assert_int_equal(jsonschema_validate(s, one, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting deeper"));
    cJSON_Delete(one);
    jsonschema_free(s);

    assert_int_equal(jsonschema_check_instance(deep, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting deeper"));
    cJSON_Delete(deep);

    /* deeply nested schema text is refused at compile time */
    size_t n = 300;
    char *text = util_malloc(n * 8 + 8);
    char *p = text;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "{\"not\":");
    p += sprintf(p, "true");
    for (size_t i = 0; i < n; i++)
        *p++ = '}';
    *p = '\0';
    expect_compile_error(text, "nested deeper");
    free(text);
}

static void test_hostile_big_values(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    jsonschema *s = must_compile("{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\","
                                 "\"maxLength\":64,\"pattern\":\"^[a-z]+$\"}},"
                                 "\"additionalProperties\":false}");
    size_t big = 8u << 20;
    char *str = util_malloc(big + 1);
    memset(str, 'a', big);
    str[big] = '\0';
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "s", str);
    free(str);
    assert_int_equal(jsonschema_validate(s, o, err, sizeof err), -1);
    assert_non_null(strstr(err, "/s: string longer than 64"));
    cJSON_Delete(o);

    /* 100k members: every one is reported in all-errors mode without overflowing err */
    o = cJSON_CreateObject();
    for (int i = 0; i < 100000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        cJSON_AddNullToObject(o, k);
    }
    assert_int_equal(jsonschema_validate_all(s, o, err, sizeof err), -1);
    assert_true(strlen(err) < sizeof err);
    assert_non_null(strstr(err, "/k0: additional property not allowed"));
    assert_int_equal(jsonschema_check_instance(o, err, sizeof err), 0);
    cJSON_AddNullToObject(o, "k77777");
    assert_int_equal(jsonschema_check_instance(o, err, sizeof err), -1);
    assert_non_null(strstr(err, "/k77777: duplicate member name"));
    cJSON_Delete(o);
    jsonschema_free(s);
}

static void test_check_instance(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    cJSON *j = cJSON_Parse("{\"a\":{\"b\":1,\"b\":2}}");
    assert_int_equal(jsonschema_check_instance(j, err, sizeof err), -1);
    assert_non_null(strstr(err, "/a/b: duplicate member name"));
    cJSON_Delete(j);
    j = cJSON_Parse("{\"a\":[1,1e999]}");
    assert_int_equal(jsonschema_check_instance(j, err, sizeof err), -1);
    assert_non_null(strstr(err, "/a/1: number out of range"));
    cJSON_Delete(j);
    j = cJSON_Parse("[\"ok\",\"\xff\"]");
    assert_int_equal(jsonschema_check_instance(j, err, sizeof err), -1);
    assert_non_null(strstr(err, "/1: string is not valid UTF-8"));
    cJSON_Delete(j);
    j = cJSON_Parse("{\"\xc3\":1}");
    assert_int_equal(jsonschema_check_instance(j, err, sizeof err), -1);
    assert_non_null(strstr(err, "member name is not valid UTF-8"));
    cJSON_Delete(j);
    j = cJSON_Parse("{\"a\":[1,{\"b\":\"\xc3\xa9\"}],\"c\":null}");
    assert_int_equal(jsonschema_check_instance(j, err, sizeof err), 0);
    cJSON_Delete(j);
}

static void test_embedded(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    assert_true(schema_embedded_count >= 1);
    /* every schema shipped in schemas/messages must compile */
    for (size_t i = 0; i < schema_embedded_count; i++) {
        const jsonschema *s = jsonschema_embedded(schema_embedded_names[i], err, sizeof err);
        if (!s)
            fail_msg("embedded schema %s: %s", schema_embedded_names[i], err);
        assert_ptr_equal(s, jsonschema_embedded(schema_embedded_names[i], err, sizeof err));
    }
    assert_null(jsonschema_embedded("no-such-schema", err, sizeof err));
    assert_non_null(strstr(err, "no embedded schema"));
    assert_null(jsonschema_embedded(NULL, err, sizeof err));
    jsonschema_embedded_cleanup();
    assert_non_null(jsonschema_embedded("envelope", err, sizeof err)); /* recompiles */
}

typedef struct worker {
    const jsonschema *s;
    int ok, bad;
} worker;

static void *validate_loop(void *arg)
{
    worker *w = arg;
    cJSON *good = cJSON_Parse("{\"id\":\"31337:0xab:1\",\"type\":\"deposit.made\",\"source\":"
                              "\"listener\",\"ts\":\"2026-11-23T10:00:00.123Z\",\"attempt\":3,"
                              "\"trace_id\":\"abc\",\"payload\":{\"x\":1}}");
    cJSON *bad = cJSON_Parse("{\"id\":\"31337:0xab:1\",\"type\":\"deposit.made\",\"source\":"
                             "\"listener\",\"ts\":\"2026-11-23T10:00:00.123Z\",\"attempt\":3,"
                             "\"trace_id\":\"a b\",\"payload\":{}}");
    for (int i = 0; i < 2000; i++) {
        char err[UTIL_ERRLEN];
        w->ok += jsonschema_validate(w->s, good, err, sizeof err) == 0;
        w->bad += jsonschema_validate(w->s, bad, err, sizeof err) != 0 &&
                  strstr(err, "/trace_id: string does not match") != NULL;
    }
    cJSON_Delete(good);
    cJSON_Delete(bad);
    return NULL;
}

static void test_concurrent_validation(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    const jsonschema *s = jsonschema_embedded("envelope", err, sizeof err);
    assert_non_null(s);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.s = s};
        assert_int_equal(pthread_create(&th[i], NULL, validate_loop, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, 2000);
        assert_int_equal(w[i].bad, 2000);
    }
}

static int teardown_all(void **state)
{
    (void)state;
    jsonschema_embedded_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_single),
        cmocka_unit_test(test_type_array_and_nonfinite),
        cmocka_unit_test(test_enum_const),
        cmocka_unit_test(test_object_keywords),
        cmocka_unit_test(test_array_keywords),
        cmocka_unit_test(test_string_lengths_count_code_points),
        cmocka_unit_test(test_pattern),
        cmocka_unit_test(test_pattern_compile_errors),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_format_date_time),
        cmocka_unit_test(test_format_uuid_and_unknown),
        cmocka_unit_test(test_ref_defs),
        cmocka_unit_test(test_ref_embedded_file),
        cmocka_unit_test(test_combinators),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_error_pointers_and_all_errors),
        cmocka_unit_test(test_hostile_deep_nesting),
        cmocka_unit_test(test_hostile_big_values),
        cmocka_unit_test(test_check_instance),
        cmocka_unit_test(test_embedded),
        cmocka_unit_test(test_concurrent_validation),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
