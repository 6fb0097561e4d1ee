/* Unit tests for libcommon/envelope: round trip through JSON, and rejection of every
 * way an untrusted envelope can be wrong (missing / mistyped / extra fields, bad
 * attempt and ts values, non-object payload, malformed or oversize JSON). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "envelope.h"
#include "jsonschema.h"
#include "util.h"

#define VALID                                                                                      \
    "{\"id\":\"31337:0x5c1d2e:7\",\"type\":\"redemption.requested\",\"source\":\"listener\","      \
    "\"ts\":\"2026-11-23T10:00:00.123Z\",\"attempt\":2,\"trace_id\":\"4bf92f3577b34da6\","         \
    "\"priority\":\"high\",\"payload\":{\"shares\":\"1000000000000000000\",\"n\":[1,2]}}"

static cJSON *valid_tree(void)
{
    cJSON *j = cJSON_Parse(VALID);
    assert_non_null(j);
    return j;
}

/* Serialises j, parses it as an envelope and expects failure with `want` in err. */
static void expect_reject_tree(cJSON *j, const char *want)
{
    char *text = cJSON_PrintUnformatted(j);
    envelope *e = (envelope *)1;
    char err[UTIL_ERRLEN] = "";
    int rc = envelope_parse(text, strlen(text), &e, err, sizeof err);
    if (rc == 0)
        fail_msg("accepted: %s", text);
    assert_null(e);
    if (!strstr(err, want))
        fail_msg("error for %s is \"%s\", expected \"%s\"", text, err, want);
    free(text);
}

static void expect_reject_text(const char *text, size_t len, const char *want)
{
    envelope *e = NULL;
    char err[UTIL_ERRLEN] = "";
    if (envelope_parse(text, len, &e, err, sizeof err) == 0) {
        envelope_free(e);
        fail_msg("accepted: %.*s", (int)(len > 200 ? 200 : len), text);
    }
    assert_null(e);
    if (!strstr(err, want))
        fail_msg("error is \"%s\", expected \"%s\"", err, want);
}

static void test_parse_valid(void **state)
{
    (void)state;
    envelope *e = NULL;
    char err[UTIL_ERRLEN] = "";
    assert_int_equal(envelope_parse(VALID, strlen(VALID), &e, err, sizeof err), 0);
    assert_string_equal(e->id, "31337:0x5c1d2e:7");
    assert_string_equal(e->type, "redemption.requested");
    assert_string_equal(e->source, "listener");
    assert_string_equal(e->ts, "2026-11-23T10:00:00.123Z");
    assert_int_equal(e->attempt, 2);
    assert_string_equal(e->trace_id, "4bf92f3577b34da6");
    assert_string_equal(e->priority, "high");
    assert_true(cJSON_IsObject(e->payload));
    assert_string_equal(cJSON_GetObjectItem(e->payload, "shares")->valuestring,
                        "1000000000000000000");
    envelope_free(e);

    /* without priority, not NUL-terminated at len, with whitespace */
    const char *t =
        " {\"id\":\"a\",\"type\":\"t\",\"source\":\"s\",\"ts\":\"2026-01-01T00:00:00.000Z\","
        "\"attempt\":1000,\"trace_id\":\"x\",\"payload\":{}}\n\tGARBAGE";
    size_t len = strlen(t) - strlen("GARBAGE");
    assert_int_equal(envelope_parse(t, len, &e, err, sizeof err), 0);
    assert_null(e->priority);
    assert_int_equal(e->attempt, 1000);
    envelope_free(e);
}

static void test_round_trip(void **state)
{
    (void)state;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "amount", "123.45");
    cJSON_AddStringToObject(p, "note", "caf\xc3\xa9 \"quoted\" \\ /");
    envelope *e = envelope_new("1:0xdead:0", "deposit.made", "listener", NULL, p);
    assert_non_null(e);
    assert_int_equal(strlen(e->trace_id), 32);
    assert_int_equal(strspn(e->trace_id, "0123456789abcdef"), 32);
    e->attempt = 7;
    char err[UTIL_ERRLEN];
    assert_int_equal(envelope_set_priority(e, "critical", err, sizeof err), 0);
    assert_int_equal(envelope_set_priority(e, "urgent", err, sizeof err), -1);
    assert_string_equal(e->priority, "critical");
    assert_int_equal(envelope_validate(e, err, sizeof err), 0);

    /* ts is now, in the schema's shape */
    int64_t now = util_now_ms();
    char expect_prefix[32];
    envelope_format_ts(now, expect_prefix);
    assert_memory_equal(e->ts, expect_prefix, 14); /* same date and hour (barring a tick) */

    char *json = envelope_to_json(e);
    assert_non_null(json);
    assert_null(strchr(json, '\n')); /* compact */
    envelope *back = NULL;
    assert_int_equal(envelope_parse(json, strlen(json), &back, err, sizeof err), 0);
    assert_string_equal(back->id, e->id);
    assert_string_equal(back->type, e->type);
    assert_string_equal(back->source, e->source);
    assert_string_equal(back->trace_id, e->trace_id);
    assert_string_equal(back->ts, e->ts);
    assert_string_equal(back->priority, "critical");
    assert_int_equal(back->attempt, 7);
    assert_true(cJSON_Compare(back->payload, e->payload, 1));
    char *json2 = envelope_to_json(back);
    assert_string_equal(json, json2);
    free(json);
    free(json2);
    envelope_free(back);

    /* envelope_to_json must not consume the payload */
    json = envelope_to_json(e);
    assert_non_null(strstr(json, "\"amount\":\"123.45\""));
    free(json);
    envelope_free(e);

    /* explicit trace id, NULL payload becomes {} */
    e = envelope_new("x", "a.b", "api", "trace-1", NULL);
    assert_string_equal(e->trace_id, "trace-1");
    json = envelope_to_json(e);
    assert_non_null(strstr(json, "\"payload\":{}"));
    assert_null(strstr(json, "priority"));
    free(json);
    envelope_free(e);

    assert_null(envelope_new(NULL, "a", "b", NULL, cJSON_CreateObject())); /* payload freed */
    assert_null(envelope_to_json(NULL));
    envelope_free(NULL);
}

static void test_validate_built(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    envelope *e = envelope_new("ok", "Bad Type", "api", NULL, NULL);
    assert_int_equal(envelope_validate(e, err, sizeof err), -1);
    assert_non_null(strstr(err, "/type"));
    envelope_free(e);
    e = envelope_new("ok", "a.b", "api", NULL, NULL);
    e->attempt = 1001;
    assert_int_equal(envelope_validate(e, err, sizeof err), -1);
    assert_non_null(strstr(err, "/attempt: must be <= 1000"));
    envelope_free(e);
}

static void test_trace_and_ts(void **state)
{
    (void)state;
    char a[33], b[33];
    envelope_trace_new(a);
    envelope_trace_new(b);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
    char ts[32];
    envelope_format_ts(0, ts);
    assert_string_equal(ts, "1970-01-01T00:00:00.000Z");
    envelope_format_ts(1795428000123LL, ts);
    assert_string_equal(ts, "2026-11-23T10:00:00.123Z");
    envelope_format_ts(951782400999LL, ts); /* leap day 2000 */
    assert_string_equal(ts, "2000-02-29T00:00:00.999Z");
    envelope_format_ts(253402300799999LL + 5, ts); /* clamped to the last RFC 3339 instant */
    assert_string_equal(ts, "9999-12-31T23:59:59.999Z");
    envelope_format_ts(-1, ts);
    assert_string_equal(ts, "1970-01-01T00:00:00.000Z");
    envelope_format_ts(1000000000007LL, ts);
    assert_string_equal(ts, "2001-09-09T01:46:40.007Z");
    char n[UTIL_U64_DEC_MAX];
    assert_int_equal(util_u64_dec(n, 0), 1);
    assert_string_equal(n, "0");
    assert_int_equal(util_u64_dec(n, 1000000007), 10);
    assert_string_equal(n, "1000000007");
    assert_int_equal(util_u64_dec(n, UINT64_MAX), 20);
    assert_string_equal(n, "18446744073709551615");
}

static void test_missing_fields(void **state)
{
    (void)state;
    static const char *const fields[] = {"id",      "type",     "source", "ts",
                                         "attempt", "trace_id", "payload"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        cJSON *j = valid_tree();
        cJSON_DeleteItemFromObjectCaseSensitive(j, fields[i]);
        char want[64];
        snprintf(want, sizeof want, "/%s: required property missing", fields[i]);
        expect_reject_tree(j, want);
        cJSON_Delete(j);
    }
}

static void test_wrong_types(void **state)
{
    (void)state;
    static const struct {
        const char *field, *value, *want;
    } cases[] = {
        {"id", "42", "/id: expected string"},
        {"type", "null", "/type: expected string"},
        {"source", "[\"listener\"]", "/source: expected string"},
        {"ts", "1795428000123", "/ts: expected string"},
        {"attempt", "\"1\"", "/attempt: expected integer"},
        {"trace_id", "{}", "/trace_id: expected string"},
        {"priority", "1", "/priority: value not in enum"},
        {"priority", "\"urgent\"", "/priority: value not in enum"},
        {"payload", "[]", "/payload: expected object"},
        {"payload", "null", "/payload: expected object"},
        {"payload", "\"{}\"", "/payload: expected object"},
        {"id", "\"\"", "/id: string shorter than 1"},
        {"id", "\"has space\"", "/id: string does not match"},
        {"id", "\":leading\"", "/id: string does not match"},
        {"id", "\"a/b\"", "/id: string does not match"},
        {"type", "\"Redemption.requested\"", "/type: string does not match"},
        {"type", "\"redemption.\"", "/type: string does not match"},
        {"source", "\"Listener\"", "/source: string does not match"},
        {"source", "\"-x\"", "/source: string does not match"},
        {"trace_id", "\"\"", "/trace_id: string does not match"},
        {"trace_id", "\"a.b\"", "/trace_id: string does not match"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = valid_tree();
        cJSON_ReplaceItemInObjectCaseSensitive(j, cases[i].field, cJSON_Parse(cases[i].value));
        expect_reject_tree(j, cases[i].want);
        cJSON_Delete(j);
    }
}

static void test_lengths(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    static const struct {
        const char *field;
        size_t max;
    } cases[] = {{"id", 200}, {"type", 100}, {"source", 64}, {"trace_id", 64}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = valid_tree();
        big[cases[i].max] = '\0';
        cJSON_ReplaceItemInObjectCaseSensitive(j, cases[i].field, cJSON_CreateString(big));
        char *text = cJSON_PrintUnformatted(j);
        envelope *e = NULL;
        char err[UTIL_ERRLEN];
        if (envelope_parse(text, strlen(text), &e, err, sizeof err) != 0)
            fail_msg("%s of %zu chars refused: %s", cases[i].field, cases[i].max, err);
        envelope_free(e);
        free(text);
        big[cases[i].max] = 'a';
        big[cases[i].max + 1] = '\0';
        cJSON_ReplaceItemInObjectCaseSensitive(j, cases[i].field, cJSON_CreateString(big));
        char want[64];
        snprintf(want, sizeof want, "/%s:", cases[i].field);
        expect_reject_tree(j, want);
        big[cases[i].max + 1] = 'a';
        cJSON_Delete(j);
    }
}

static void test_extra_field(void **state)
{
    (void)state;
    cJSON *j = valid_tree();
    cJSON_AddStringToObject(j, "extra", "x");
    expect_reject_tree(j, "/extra: additional property not allowed");
    cJSON_Delete(j);
}

static void test_attempt_values(void **state)
{
    (void)state;
    static const struct {
        const char *value, *want;
    } cases[] = {
        {"-1", "/attempt: must be >= 0"},        {"1.5", "/attempt: expected integer"},
        {"1e300", "/attempt: expected integer"}, {"1001", "/attempt: must be <= 1000"},
        {"true", "/attempt: expected integer"},  {"-0.5", "/attempt: expected integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = valid_tree();
        cJSON_ReplaceItemInObjectCaseSensitive(j, "attempt", cJSON_Parse(cases[i].value));
        expect_reject_tree(j, cases[i].want);
        cJSON_Delete(j);
    }
    /* through the text path too, where cJSON sees the literal */
    char text[512];
    snprintf(text, sizeof text,
             "{\"id\":\"a\",\"type\":\"t\",\"source\":\"s\",\"ts\":\"2026-01-01T00:00:00.000Z\","
             "\"attempt\":%s,\"trace_id\":\"x\",\"payload\":{}}",
             "1e300");
    expect_reject_text(text, strlen(text), "/attempt: expected integer");
}

static void test_bad_ts(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "2026-11-23T10:00:00Z",          /* no milliseconds */
        "2026-11-23T10:00:00.12Z",       /* two digits */
        "2026-11-23T10:00:00.1234Z",     /* four digits */
        "2026-11-23T10:00:00.123+01:00", /* not UTC */
        "2026-11-23T10:00:00.123z",      /* lowercase z */
        "2026-02-30T10:00:00.123Z",      /* no such day */
        "2026-11-23T25:00:00.123Z",      /* no such hour */
        "2026-11-23 10:00:00.123Z",      "yesterday", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = valid_tree();
        cJSON_ReplaceItemInObjectCaseSensitive(j, "ts", cJSON_CreateString(bad[i]));
        expect_reject_tree(j, "/ts:");
        cJSON_Delete(j);
    }
}

static void test_invalid_json(void **state)
{
    (void)state;
    const char *v = VALID;
    size_t n = strlen(v);
    expect_reject_text("", 0, "invalid JSON");
    expect_reject_text("{", 1, "invalid JSON");
    expect_reject_text("not json", 8, "invalid JSON");
    expect_reject_text(v, n - 1, "invalid JSON"); /* truncated */

    char buf[1024];
    snprintf(buf, sizeof buf, "%s x", v); /* trailing garbage */
    expect_reject_text(buf, strlen(buf), "invalid JSON");
    snprintf(buf, sizeof buf, "%s{}", v); /* a second document */
    expect_reject_text(buf, strlen(buf), "invalid JSON");
    memcpy(buf, v, n); /* NUL then garbage inside len */
    buf[n] = '\0';
    memcpy(buf + n + 1, "zz", 2);
    expect_reject_text(buf, n + 3, "NUL byte");
    snprintf(buf, sizeof buf, "\xef\xbb\xbf%s", v); /* BOM */
    expect_reject_text(buf, strlen(buf), "unexpected byte");
    snprintf(buf, sizeof buf, "\x01%s", v); /* control byte cJSON would skip */
    expect_reject_text(buf, strlen(buf), "unexpected byte");
    expect_reject_text("[1]", 3, "(root): expected object");

    /* string hazards: \u0000 would truncate the id, raw control characters */
    const char *tmpl = "{\"id\":\"%s\",\"type\":\"t\",\"source\":\"s\","
                       "\"ts\":\"2026-01-01T00:00:00.000Z\",\"attempt\":%s,\"trace_id\":\"x\","
                       "\"payload\":{}}";
    snprintf(buf, sizeof buf, tmpl, "ab\\u0000cd", "0");
    expect_reject_text(buf, strlen(buf), "\\u0000");
    snprintf(buf, sizeof buf, tmpl, "ab\tcd", "0");
    expect_reject_text(buf, strlen(buf), "control character");
    snprintf(buf, sizeof buf, tmpl, "ab\\qcd", "0");
    expect_reject_text(buf, strlen(buf), "bad escape");
    snprintf(buf, sizeof buf, tmpl, "ab\\u12", "0");
    expect_reject_text(buf, strlen(buf), "\\u escape");
    snprintf(buf, sizeof buf, tmpl, "ab\\ud800", "0"); /* lone surrogate */
    expect_reject_text(buf, strlen(buf), "invalid JSON");
    /* numbers RFC 8259 forbids but cJSON accepts */
    static const char *const nums[] = {"01", "1.", "-", "1e", "+1", "0x10", ".5", "1.5e+"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        snprintf(buf, sizeof buf, tmpl, "a", nums[i]);
        expect_reject_text(buf, strlen(buf), "invalid JSON");
    }
    /* duplicate member names: readers would disagree on which one counts */
    snprintf(buf, sizeof buf, "{\"id\":\"a\",%s", v + 1);
    expect_reject_text(buf, strlen(buf), "/id: duplicate member name");
    /* invalid UTF-8 deep inside the payload, which the schema does not describe */
    snprintf(buf, sizeof buf,
             "{\"id\":\"a\",\"type\":\"t\",\"source\":\"s\","
             "\"ts\":\"2026-01-01T00:00:00.000Z\",\"attempt\":0,"
             "\"trace_id\":\"x\",\"payload\":{\"k\":[\"\xc3\x28\"]}}");
    expect_reject_text(buf, strlen(buf), "/payload/k/0: string is not valid UTF-8");
    snprintf(buf, sizeof buf,
             "{\"id\":\"a\",\"type\":\"t\",\"source\":\"s\","
             "\"ts\":\"2026-01-01T00:00:00.000Z\",\"attempt\":0,"
             "\"trace_id\":\"x\",\"payload\":{\"big\":1e400}}");
    expect_reject_text(buf, strlen(buf), "/payload/big: number out of range");

    envelope *e = NULL;
    char err[UTIL_ERRLEN];
    assert_int_equal(envelope_parse(NULL, 0, &e, err, sizeof err), -1);
    assert_int_equal(envelope_parse(v, n, NULL, err, sizeof err), -1);
}

/* An envelope whose payload string makes the whole text exactly `total` bytes. */
static char *sized_envelope(size_t total)
{
    const char *head = "{\"id\":\"a\",\"type\":\"t\",\"source\":\"s\","
                       "\"ts\":\"2026-01-01T00:00:00.000Z\",\"attempt\":0,\"trace_id\":\"x\","
                       "\"payload\":{\"pad\":\"";
    const char *tail = "\"}}";
    size_t fixed = strlen(head) + strlen(tail);
    char *buf = util_malloc(total + 1);
    memcpy(buf, head, strlen(head));
    memset(buf + strlen(head), 'p', total - fixed);
    memcpy(buf + total - strlen(tail), tail, strlen(tail));
    buf[total] = '\0';
    return buf;
}

static void test_size_limit(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    envelope *e = NULL;
    char *at = sized_envelope(ENVELOPE_MAX_BYTES);
    assert_int_equal(envelope_parse(at, ENVELOPE_MAX_BYTES, &e, err, sizeof err), 0);
    size_t pad = strspn(strstr(at, "\"pad\":\"") + 7, "p");
    assert_true(pad > ENVELOPE_MAX_BYTES - 200);
    assert_int_equal(strlen(cJSON_GetObjectItem(e->payload, "pad")->valuestring), pad);
    envelope_free(e);
    free(at);
    char *over = sized_envelope(ENVELOPE_MAX_BYTES + 1);
    expect_reject_text(over, ENVELOPE_MAX_BYTES + 1, "too large");
    free(over);

    /* nesting at cJSON's limit inside payload: refused without crashing */
    size_t depth = 5000;
    char *deep = util_malloc(2 * depth + 256);
    int w = sprintf(deep, "{\"id\":\"a\",\"type\":\"t\",\"source\":\"s\","
                          "\"ts\":\"2026-01-01T00:00:00.000Z\",\"attempt\":0,\"trace_id\":\"x\","
                          "\"payload\":{\"d\":");
    memset(deep + w, '[', depth);
    memset(deep + w + depth, ']', depth);
    strcpy(deep + w + 2 * depth, "}}");
    expect_reject_text(deep, strlen(deep), "invalid JSON");
    free(deep);
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
        cmocka_unit_test(test_parse_valid),    cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_validate_built), cmocka_unit_test(test_trace_and_ts),
        cmocka_unit_test(test_missing_fields), cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_lengths),        cmocka_unit_test(test_extra_field),
        cmocka_unit_test(test_attempt_values), cmocka_unit_test(test_bad_ts),
        cmocka_unit_test(test_invalid_json),   cmocka_unit_test(test_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
