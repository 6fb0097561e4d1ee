/* Unit tests for libcommon/log: every line must be one valid JSON object whatever
 * the caller passes (hostile bytes, huge messages, many threads), with the level
 * threshold honoured. Output is captured in a temporary file and parsed with cJSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "log.h"

typedef struct capture {
    FILE *f;
    int old_fd;
} capture;

static void cap_start(capture *c)
{
    c->f = tmpfile();
    assert_non_null(c->f);
    c->old_fd = log_set_fd(fileno(c->f));
}

/* Returns the captured bytes (malloc'd, NUL-terminated) and restores the fd. */
static char *cap_end(capture *c, size_t *len)
{
    log_set_fd(c->old_fd);
    long n = lseek(fileno(c->f), 0, SEEK_END);
    assert_true(n >= 0);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fileno(c->f), buf, (size_t)n, 0), n);
    buf[n] = '\0';
    fclose(c->f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* Splits on '\n' and parses each line; fails on any line that is not a JSON object. */
static size_t parse_lines(char *buf, cJSON **out, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        assert_true(strlen(line) < LOG_LINE_MAX);
        cJSON *j = cJSON_Parse(line);
        if (!j)
            fail_msg("unparsable line: %.200s", line);
        assert_true(cJSON_IsObject(j));
        if (n < max)
            out[n] = j;
        else
            cJSON_Delete(j);
        n++;
    }
    return n;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(log_init("testsvc", "debug", NULL, 0), 0);
    return 0;
}

static void test_basic_line(void **state)
{
    (void)state;
    capture c;
    cap_start(&c);
    log_info_t("trace-1", "hello world", "stream", "alerts", "#count", "42", "#ratio", "-1.5e3",
               "#bad", "1,\"x\":2", "#", "3");
    log_error("boom");
    char *buf = cap_end(&c, NULL);
    cJSON *l[4];
    assert_int_equal(parse_lines(buf, l, 4), 2);

    const char *ts = jstr(l[0], "ts");
    assert_non_null(ts);
    /* 2026-11-23T10:00:00.123Z */
    assert_int_equal(strlen(ts), 24);
    assert_true(ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
    assert_string_equal(jstr(l[0], "level"), "info");
    assert_string_equal(jstr(l[0], "service"), "testsvc");
    assert_string_equal(jstr(l[0], "msg"), "hello world");
    assert_string_equal(jstr(l[0], "trace_id"), "trace-1");
    assert_string_equal(jstr(l[0], "stream"), "alerts");
    cJSON *cnt = cJSON_GetObjectItemCaseSensitive(l[0], "count");
    assert_true(cJSON_IsNumber(cnt));
    assert_int_equal(cnt->valueint, 42);
    cJSON *ratio = cJSON_GetObjectItemCaseSensitive(l[0], "ratio");
    assert_true(cJSON_IsNumber(ratio));
    assert_true(ratio->valuedouble == -1500.0);
    /* not a number: stays a string, and cannot inject a member */
    assert_string_equal(jstr(l[0], "bad"), "1,\"x\":2");
    assert_null(cJSON_GetObjectItemCaseSensitive(l[0], "x"));
    assert_null(cJSON_GetObjectItemCaseSensitive(l[0], "truncated"));

    assert_string_equal(jstr(l[1], "level"), "error");
    assert_null(cJSON_GetObjectItemCaseSensitive(l[1], "trace_id"));
    cJSON_Delete(l[0]);
    cJSON_Delete(l[1]);
    free(buf);
}

static void test_reserved_and_null(void **state)
{
    (void)state;
    capture c;
    cap_start(&c);
    log_warn("real", "msg", "fake", "level", "fatal", "k", (const char *)NULL, "never", "seen");
    const char *kv[] = {"a", NULL, "b", "2", "dangling"};
    log_msgv(LOG_LEVEL_INFO, NULL, "v", kv, 5);
    log_info("n", "big", LOG_I64(INT64_MIN), "#small", LOG_I64(-7));
    char *buf = cap_end(&c, NULL);
    cJSON *l[4];
    assert_int_equal(parse_lines(buf, l, 4), 3);
    assert_string_equal(jstr(l[0], "msg"), "real");
    assert_string_equal(jstr(l[0], "level"), "warn");
    assert_string_equal(jstr(l[0], "x_msg"), "fake");
    assert_string_equal(jstr(l[0], "x_level"), "fatal");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(l[0], "k")));
    assert_null(cJSON_GetObjectItemCaseSensitive(l[0], "never"));

    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(l[1], "a")));
    assert_string_equal(jstr(l[1], "b"), "2");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(l[1], "dangling")));

    assert_string_equal(jstr(l[2], "big"), "-9223372036854775808");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(l[2], "small")->valueint, -7);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(l[i]);
    free(buf);
}

static void test_levels(void **state)
{
    (void)state;
    log_level lv;
    assert_int_equal(log_level_parse("WARNING", &lv), 0);
    assert_int_equal(lv, LOG_LEVEL_WARN);
    assert_int_equal(log_level_parse("Error", &lv), 0);
    assert_int_equal(lv, LOG_LEVEL_ERROR);
    assert_int_equal(log_level_parse("verbose", &lv), -1);
    assert_int_equal(log_level_parse(NULL, &lv), -1);

    char err[128] = "";
    assert_int_equal(log_init("svc2", "loud", err, sizeof err), -1);
    assert_non_null(strstr(err, "loud"));
    assert_int_equal(log_get_level(), LOG_LEVEL_INFO);

    setenv("PAIMON_LOG_LEVEL", "warn", 1);
    assert_int_equal(log_init("svc2", NULL, NULL, 0), 0);
    assert_int_equal(log_get_level(), LOG_LEVEL_WARN);
    unsetenv("PAIMON_LOG_LEVEL");
    assert_false(log_enabled(LOG_LEVEL_INFO));
    assert_true(log_enabled(LOG_LEVEL_ERROR));

    capture c;
    cap_start(&c);
    log_debug("d");
    log_info("i");
    log_warn("w");
    log_error("e");
    char *buf = cap_end(&c, NULL);
    cJSON *l[4];
    assert_int_equal(parse_lines(buf, l, 4), 2);
    assert_string_equal(jstr(l[0], "msg"), "w");
    assert_string_equal(jstr(l[0], "service"), "svc2");
    assert_string_equal(jstr(l[1], "msg"), "e");
    cJSON_Delete(l[0]);
    cJSON_Delete(l[1]);
    free(buf);

    assert_int_equal(log_init(NULL, NULL, NULL, 0), 0); /* no env: info */
    assert_int_equal(log_get_level(), LOG_LEVEL_INFO);
    log_init("testsvc", "debug", NULL, 0);
}

/* Invalid UTF-8 must come back as U+FFFD, valid multi-byte text unchanged. */
static void test_hostile_text(void **state)
{
    (void)state;
    char ctl[40];
    for (int i = 1; i < 32; i++)
        ctl[i - 1] = (char)i;
    ctl[31] = 0x7f;
    ctl[32] = '\0';
    const char *cases[][2] = {
        {"quote\" back\\slash /", "quote\" back\\slash /"},
        {ctl, ctl},
        {"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac", "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac"},
        {"bad\xff", "bad\xef\xbf\xbd"},
        {"over\xc0\x80long", "over\xef\xbf\xbd\xef\xbf\xbdlong"},
        {"surr\xed\xa0\x80", "surr\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"cut\xe2\x82", "cut\xef\xbf\xbd\xef\xbf\xbd"},
        {"big\xf4\x90\x80\x80", "big\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\"}\n{\"level\":\"error\"", "\"}\n{\"level\":\"error\""},
    };
    size_t nc = sizeof cases / sizeof cases[0];
    capture c;
    cap_start(&c);
    for (size_t i = 0; i < nc; i++)
        log_info(cases[i][0], cases[i][0], cases[i][0], "trace", cases[i][0]);
    size_t len;
    char *buf = cap_end(&c, &len);
    /* one physical line per call: no raw control bytes leaked into the output */
    size_t newlines = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n')
            newlines++;
        else
            assert_true(ch >= 0x20 && ch != 0x7f);
    }
    assert_int_equal(newlines, nc);
    cJSON *l[16];
    assert_int_equal(parse_lines(buf, l, 16), nc);
    for (size_t i = 0; i < nc; i++) {
        assert_string_equal(jstr(l[i], "msg"), cases[i][1]);
        assert_string_equal(jstr(l[i], "trace"), cases[i][1]);
        assert_string_equal(jstr(l[i], "level"), "info");
        /* the hostile key is a member name, decoded the same way */
        assert_string_equal(jstr(l[i], cases[i][1]), cases[i][1]);
        cJSON_Delete(l[i]);
    }
    free(buf);
}

static void check_truncated(const char *msg, const char *extra_val)
{
    capture c;
    cap_start(&c);
    log_info(msg, "after", extra_val);
    size_t len;
    char *buf = cap_end(&c, &len);
    assert_true(len <= LOG_LINE_MAX);
    assert_int_equal(buf[len - 1], '\n');
    cJSON *l[2];
    assert_int_equal(parse_lines(buf, l, 2), 1);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l[0], "truncated")));
    assert_string_equal(jstr(l[0], "service"), "testsvc");
    const char *got = jstr(l[0], "msg");
    assert_non_null(got);
    /* a prefix of the original, cut on a character boundary */
    assert_true(strlen(got) > 100);
    assert_memory_equal(got, msg, strlen(got));
    cJSON_Delete(l[0]);
    free(buf);
}

static void test_truncation(void **state)
{
    (void)state;
    size_t n = 3 * LOG_LINE_MAX;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    check_truncated(big, "x");
    /* multi-byte characters straddling the limit at every alignment */
    for (int shift = 0; shift < 4; shift++) {
        memset(big, 'b', n);
        for (size_t i = (size_t)shift; i + 4 <= n; i += 4)
            memcpy(big + i, "\xf0\x9f\x98\x80", 4);
        big[n] = '\0';
        check_truncated(big, "y");
    }
    /* escapes expand 1 byte into 6 */
    memset(big, '\x01', n);
    check_truncated(big, "z");

    /* short message, long field: message intact, field cut or dropped, still valid */
    memset(big, 'q', n);
    capture c;
    cap_start(&c);
    log_info("short", "k1", "v1", "huge", big, "k3", "v3");
    size_t len;
    char *buf = cap_end(&c, &len);
    assert_true(len <= LOG_LINE_MAX);
    cJSON *l[2];
    assert_int_equal(parse_lines(buf, l, 2), 1);
    assert_string_equal(jstr(l[0], "msg"), "short");
    assert_string_equal(jstr(l[0], "k1"), "v1");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l[0], "truncated")));
    assert_null(cJSON_GetObjectItemCaseSensitive(l[0], "k3"));
    cJSON_Delete(l[0]);
    free(buf);
    free(big);
}

/* Many fields: the variadic form stops at its limit instead of overrunning. */
static void test_many_fields(void **state)
{
    (void)state;
    capture c;
    cap_start(&c);
    log_info("m", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "6", "g", "7", "h", "8");
    char *buf = cap_end(&c, NULL);
    cJSON *l[2];
    assert_int_equal(parse_lines(buf, l, 2), 1);
    assert_int_equal(cJSON_GetArraySize(l[0]), 4 + 8);
    assert_string_equal(jstr(l[0], "h"), "8");
    cJSON_Delete(l[0]);
    free(buf);
}

#define NTHREADS   8
#define PER_THREAD 400

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[600];
    memset(pad, 'a' + id, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < PER_THREAD; i++)
        log_info("tick", "#thread", LOG_I64(id), "#seq", LOG_I64(i), "pad", pad);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    capture c;
    cap_start(&c);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    char *buf = cap_end(&c, NULL);
    int next[NTHREADS] = {0};
    size_t total = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        int t = cJSON_GetObjectItemCaseSensitive(j, "thread")->valueint;
        int s = cJSON_GetObjectItemCaseSensitive(j, "seq")->valueint;
        assert_true(t >= 0 && t < NTHREADS);
        assert_int_equal(s, next[t]); /* per-thread order kept, nothing lost */
        next[t]++;
        const char *pad = jstr(j, "pad");
        assert_int_equal(strlen(pad), 599);
        assert_true(pad[0] == 'a' + t && pad[598] == 'a' + t);
        cJSON_Delete(j);
        total++;
    }
    assert_int_equal(total, NTHREADS * PER_THREAD);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_basic_line, setup),
        cmocka_unit_test_setup(test_reserved_and_null, setup),
        cmocka_unit_test_setup(test_levels, setup),
        cmocka_unit_test_setup(test_hostile_text, setup),
        cmocka_unit_test_setup(test_truncation, setup),
        cmocka_unit_test_setup(test_many_fields, setup),
        cmocka_unit_test_setup(test_threads, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
