/* Unit tests for libcommon/config: one load reports every missing and invalid
 * variable, typed parsing is strict (no "12x", " 5", overflow), defaults and ranges
 * apply, and secrets never appear in errors or in the rendered configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

/* A fake environment: NULL-terminated name/value pairs. */
static const char *fake_get(const char *name, void *ud)
{
    const char *const *kv = ud;
    for (size_t i = 0; kv[i]; i += 2)
        if (strcmp(kv[i], name) == 0)
            return kv[i + 1];
    return NULL;
}

static int count_substr(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

typedef struct app_cfg {
    char *db_url;
    char *redis_url;
    char *name;
    char *api_key;
    int64_t workers;
    int port;
    int64_t poll_ms;
    int debug;
    int mode;
    cfg_list topics;
} app_cfg;

static app_cfg A;

static const cfg_var app_vars[] = {
    {"DB_URL", CFG_URL, NULL, &A.db_url, 0, 0, "postgres|postgresql", 1, "database URL"},
    {"REDIS_URL", CFG_URL, "redis://127.0.0.1:6379", &A.redis_url, 0, 0, NULL, 0, "redis"},
    {"NAME", CFG_STR, "paimon", &A.name, 1, 16, NULL, 0, "instance name"},
    {"API_KEY", CFG_STR, NULL, &A.api_key, 0, 0, NULL, 1, "provider key"},
    {"WORKERS", CFG_INT, "4", &A.workers, 1, 64, NULL, 0, "worker threads"},
    {"PORT", CFG_PORT, "8080", &A.port, 0, 0, NULL, 0, "HTTP port"},
    {"POLL", CFG_DURATION_MS, "2s", &A.poll_ms, 100, 3600000, NULL, 0, "poll interval"},
    {"DEBUG", CFG_BOOL, "false", &A.debug, 0, 0, NULL, 0, "debug mode"},
    {"MODE", CFG_ENUM, "standard", &A.mode, 0, 0, "standard|emergency|paused", 0, "mode"},
    {"TOPICS", CFG_LIST, "alerts,events", &A.topics, 0, 8, NULL, 0, "topics"},
};
#define NVARS CFG_COUNT(app_vars)

static void test_defaults_and_values(void **state)
{
    (void)state;
    const char *env[] = {"DB_URL", "postgresql://u:pw@db:5432/fund", "API_KEY", "k-123", NULL};
    char err[CFG_ERRLEN] = "";
    assert_int_equal(cfg_load_from(app_vars, NVARS, fake_get, (void *)env, err, sizeof err), 0);
    assert_string_equal(A.db_url, "postgresql://u:pw@db:5432/fund");
    assert_string_equal(A.redis_url, "redis://127.0.0.1:6379");
    assert_string_equal(A.name, "paimon");
    assert_string_equal(A.api_key, "k-123");
    assert_int_equal(A.workers, 4);
    assert_int_equal(A.port, 8080);
    assert_int_equal(A.poll_ms, 2000);
    assert_int_equal(A.debug, 0);
    assert_int_equal(A.mode, 0);
    assert_int_equal(A.topics.n, 2);
    assert_string_equal(A.topics.items[1], "events");
    cfg_release(app_vars, NVARS);
    assert_null(A.db_url);
    assert_null(A.topics.items);
    cfg_release(app_vars, NVARS); /* twice is harmless */

    const char *env2[] = {"DB_URL", "postgres://db/x", "API_KEY", "k",         "WORKERS", "-0",
                          "PORT",   "65535",           "POLL",    "1h",        "DEBUG",   "YES",
                          "MODE",   "Emergency",       "TOPICS",  " a , b,c ", "NAME",    "x",
                          NULL};
    assert_int_equal(cfg_load_from(app_vars, NVARS, fake_get, (void *)env2, err, sizeof err), -1);
    /* -0 is 0, below WORKERS' minimum of 1 */
    assert_non_null(strstr(err, "WORKERS"));
    env2[5] = "64";
    assert_int_equal(cfg_load_from(app_vars, NVARS, fake_get, (void *)env2, err, sizeof err), 0);
    assert_int_equal(A.workers, 64);
    assert_int_equal(A.port, 65535);
    assert_int_equal(A.poll_ms, 3600000);
    assert_int_equal(A.debug, 1);
    assert_int_equal(A.mode, 1);
    assert_int_equal(A.topics.n, 3);
    assert_string_equal(A.topics.items[0], "a");
    assert_string_equal(A.topics.items[1], "b");
    assert_string_equal(A.topics.items[2], "c");
    cfg_release(app_vars, NVARS);
}

/* Every problem is reported in one go, each with the variable's name. */
static void test_all_problems_listed(void **state)
{
    (void)state;
    const char *env[] = {"REDIS_URL", "mysql://h/1", "NAME",   "this-name-is-far-too-long",
                         "WORKERS",   "12x",         "PORT",   "0",
                         "POLL",      "5 s",         "DEBUG",  "maybe",
                         "MODE",      "turbo",       "TOPICS", "a,,b",
                         NULL};
    char err[CFG_ERRLEN] = "";
    A.db_url = (char *)"sentinel";
    assert_int_equal(cfg_load_from(app_vars, NVARS, fake_get, (void *)env, err, sizeof err), -1);
    const char *names[] = {"DB_URL:", "API_KEY:", "REDIS_URL:", "NAME:", "WORKERS:",
                           "PORT:",   "POLL:",    "DEBUG:",     "MODE:", "TOPICS:"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strstr(err, names[i]))
            fail_msg("%s not reported in: %s", names[i], err);
    assert_non_null(strstr(err, "10 problems"));
    assert_non_null(strstr(err, "DB_URL: required but not set (database URL)"));
    assert_non_null(strstr(err, "\"12x\""));
    assert_non_null(strstr(err, "standard|emergency|paused"));
    assert_int_equal(count_substr(err, "; "), 9);
    /* on failure nothing is left allocated */
    assert_null(A.db_url);
    assert_null(A.redis_url);
    assert_null(A.name);
    assert_null(A.topics.items);
}

static void test_int_parsing(void **state)
{
    (void)state;
    const char *bad[] = {"12x",
                         "",
                         " 5",
                         "5 ",
                         "+5",
                         "-",
                         "0x10",
                         "1e3",
                         "--1",
                         "9223372036854775808",
                         "-9223372036854775809",
                         "99999999999999999999999",
                         "1.0",
                         "\t1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 77;
        char err[128] = "";
        if (cfg_parse_int(bad[i], &v, err, sizeof err) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(v, 77);
        assert_true(err[0] != '\0');
    }
    int64_t v;
    assert_int_equal(cfg_parse_int("9223372036854775807", &v, NULL, 0), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(cfg_parse_int("-9223372036854775808", &v, NULL, 0), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(cfg_parse_int("007", &v, NULL, 0), 0);
    assert_int_equal(v, 7);
    assert_int_equal(cfg_parse_int("-42", &v, NULL, 0), 0);
    assert_int_equal(v, -42);
}

static void test_durations(void **state)
{
    (void)state;
    struct {
        const char *s;
        int64_t ms;
    } good[] = {{"250ms", 250},   {"5s", 5000},   {"2m", 120000}, {"1h", 3600000},
                {"1d", 86400000}, {"1500", 1500}, {"0", 0},       {"0s", 0}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t v = -1;
        assert_int_equal(cfg_parse_duration_ms(good[i].s, &v, NULL, 0), 0);
        assert_int_equal(v, good[i].ms);
    }
    const char *bad[] = {"",
                         "s",
                         "5x",
                         "-1s",
                         " 5s",
                         "5s ",
                         "5 s",
                         "1.5s",
                         "5S",
                         "5sec",
                         "ms",
                         "106751991167301d",
                         "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 1;
        if (cfg_parse_duration_ms(bad[i], &v, NULL, 0) != -1)
            fail_msg("accepted duration \"%s\"", bad[i]);
    }
    /* the largest day count that still fits in int64 ms */
    int64_t v;
    assert_int_equal(cfg_parse_duration_ms("106751991167d", &v, NULL, 0), 0);
    assert_true(v == 106751991167LL * 86400000LL);
}

static void test_bools_ports_enums(void **state)
{
    (void)state;
    const char *t[] = {"true", "TRUE", "1", "yes", "On"};
    const char *f[] = {"false", "0", "No", "off"};
    int b;
    for (size_t i = 0; i < 5; i++) {
        b = 0;
        assert_int_equal(cfg_parse_bool(t[i], &b, NULL, 0), 0);
        assert_int_equal(b, 1);
    }
    for (size_t i = 0; i < 4; i++) {
        b = 1;
        assert_int_equal(cfg_parse_bool(f[i], &b, NULL, 0), 0);
        assert_int_equal(b, 0);
    }
    assert_int_equal(cfg_parse_bool("2", &b, NULL, 0), -1);
    assert_int_equal(cfg_parse_bool("", &b, NULL, 0), -1);
    assert_int_equal(cfg_parse_bool(" true", &b, NULL, 0), -1);

    int port = 0, mode = 0;
    const cfg_var vars[] = {
        {"P", CFG_PORT, NULL, &port, 1024, 2048, NULL, 0, NULL},
        {"M", CFG_ENUM, NULL, &mode, 0, 0, "a|bb|c", 0, NULL},
    };
    struct {
        const char *p, *m;
        int ok;
    } cases[] = {{"1024", "a", 1},    {"2048", "C", 1},  {"80", "a", 0},   {"2049", "a", 0},
                 {"65536", "a", 0},   {"-1", "a", 0},    {"1500", "b", 0}, {"1500", "", 0},
                 {"1500", "a|bb", 0}, {"1500", "bb", 1}, {"", "a", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *env[] = {"P", cases[i].p, "M", cases[i].m, NULL};
        int rc = cfg_load_from(vars, 2, fake_get, (void *)env, NULL, 0);
        if ((rc == 0) != cases[i].ok)
            fail_msg("P=%s M=%s gave %d", cases[i].p, cases[i].m, rc);
    }
    const char *env[] = {"P", "1500", "M", "BB", NULL};
    assert_int_equal(cfg_load_from(vars, 2, fake_get, (void *)env, NULL, 0), 0);
    assert_int_equal(port, 1500);
    assert_int_equal(mode, 1);
}

static void test_urls(void **state)
{
    (void)state;
    char *u = NULL;
    const cfg_var any[] = {{"U", CFG_URL, NULL, &u, 0, 0, NULL, 0, NULL}};
    const char *good[] = {"redis://127.0.0.1:6379/0",
                          "postgresql://u:p@h/db",
                          "postgres://h",
                          "http://x",
                          "https://rpc.example.org/v1?k=1",
                          "ws://h:8545",
                          "wss://h/ws",
                          "redis://:secret@h:1"};
    const char *bad[] = {"",           "localhost:6379", "ftp://h",      "://h",
                         "redis://",   "http:///x",      "redis://:pw@", "http://a b",
                         "http://x\n", "HTTP//x",        "mysql://h"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *env[] = {"U", good[i], NULL};
        char err[256] = "";
        if (cfg_load_from(any, 1, fake_get, (void *)env, err, sizeof err) != 0)
            fail_msg("rejected %s: %s", good[i], err);
        assert_string_equal(u, good[i]);
        cfg_release(any, 1);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *env[] = {"U", bad[i], NULL};
        if (cfg_load_from(any, 1, fake_get, (void *)env, NULL, 0) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_null(u);
    }
    /* choices restrict the scheme */
    const cfg_var redis_only[] = {{"U", CFG_URL, NULL, &u, 0, 0, "redis|rediss", 0, NULL}};
    const char *env[] = {"U", "postgres://h/db", NULL};
    char err[256];
    assert_int_equal(cfg_load_from(redis_only, 1, fake_get, (void *)env, err, sizeof err), -1);
    assert_non_null(strstr(err, "redis|rediss"));
}

static void test_lists_and_strings(void **state)
{
    (void)state;
    cfg_list l = {0};
    char *s = NULL;
    const cfg_var vars[] = {
        {"L", CFG_LIST, NULL, &l, 0, 0, NULL, 0, NULL},
        {"S", CFG_STR, "", &s, 0, 0, NULL, 0, NULL},
    };
    const char *bad_lists[] = {"", "a,", ",a", "a,,b", " , "};
    for (size_t i = 0; i < sizeof bad_lists / sizeof bad_lists[0]; i++) {
        const char *env[] = {"L", bad_lists[i], NULL};
        if (cfg_load_from(vars, 2, fake_get, (void *)env, NULL, 0) != -1)
            fail_msg("accepted list \"%s\"", bad_lists[i]);
        assert_null(l.items);
    }
    const char *env[] = {"L", "one", "S", "", NULL};
    assert_int_equal(cfg_load_from(vars, 2, fake_get, (void *)env, NULL, 0), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0], "one");
    assert_string_equal(s, ""); /* an explicit empty string is a value */
    cfg_release(vars, 2);

    /* a required STR must not be empty */
    char *req = NULL;
    const cfg_var rv[] = {{"R", CFG_STR, NULL, &req, 0, 0, NULL, 0, NULL}};
    const char *env2[] = {"R", "", NULL};
    char err[128];
    assert_int_equal(cfg_load_from(rv, 1, fake_get, (void *)env2, err, sizeof err), -1);
    assert_non_null(strstr(err, "R: required but empty"));
}

static void test_secrets_masked(void **state)
{
    (void)state;
    const char *env[] = {"DB_URL",    "postgresql://fund:hunter2@db/x", "API_KEY", "sk-live-SECRET",
                         "REDIS_URL", "redis://:redispw@cache:6379/2",  NULL};
    assert_int_equal(cfg_load_from(app_vars, NVARS, fake_get, (void *)env, NULL, 0), 0);
    char *out = cfg_render(app_vars, NVARS);
    assert_non_null(out);
    assert_null(strstr(out, "hunter2"));
    assert_null(strstr(out, "SECRET"));
    assert_null(strstr(out, "redispw"));
    assert_non_null(strstr(out, "DB_URL=***\n"));
    assert_non_null(strstr(out, "API_KEY=***\n"));
    assert_non_null(strstr(out, "REDIS_URL=redis://:***@cache:6379/2\n"));
    assert_non_null(strstr(out, "POLL=2000ms\n"));
    assert_non_null(strstr(out, "MODE=standard\n"));
    assert_non_null(strstr(out, "TOPICS=alerts,events\n"));
    assert_non_null(strstr(out, "DEBUG=false\n"));
    assert_int_equal(count_substr(out, "\n"), NVARS);
    free(out);
    cfg_release(app_vars, NVARS);

    /* an invalid secret is reported without its value */
    const char *env2[] = {"DB_URL", "mysql://root:hunter2@db", "API_KEY", "k", "WORKERS", "abc",
                          NULL};
    char err[CFG_ERRLEN];
    assert_int_equal(cfg_load_from(app_vars, NVARS, fake_get, (void *)env2, err, sizeof err), -1);
    assert_non_null(strstr(err, "DB_URL"));
    assert_null(strstr(err, "hunter2"));
    assert_non_null(strstr(err, "\"abc\"")); /* non-secret values are echoed */

    char *usage = cfg_usage(app_vars, NVARS);
    assert_non_null(strstr(usage, "DB_URL"));
    assert_non_null(strstr(usage, "required"));
    assert_non_null(strstr(usage, "standard|emergency|paused"));
    assert_int_equal(count_substr(usage, "\n"), NVARS);
    free(usage);
}

static void test_env_and_small_err(void **state)
{
    (void)state;
    setenv("PAIMON_CFGTEST_PORT", "9000", 1);
    unsetenv("PAIMON_CFGTEST_MISSING");
    int port = 0;
    char *miss = NULL;
    const cfg_var vars[] = {
        {"PAIMON_CFGTEST_PORT", CFG_PORT, NULL, &port, 0, 0, NULL, 0, NULL},
        {"PAIMON_CFGTEST_MISSING", CFG_STR, NULL, &miss, 0, 0, NULL, 0, NULL},
    };
    char err[32];
    assert_int_equal(cfg_load(vars, 2, err, sizeof err), -1);
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_string_equal(err + sizeof err - 4, "..."); /* cut, and says so */
    setenv("PAIMON_CFGTEST_MISSING", "here", 1);
    assert_int_equal(cfg_load(vars, 2, err, sizeof err), 0);
    assert_int_equal(port, 9000);
    assert_string_equal(miss, "here");
    cfg_release(vars, 2);
    unsetenv("PAIMON_CFGTEST_PORT");
    unsetenv("PAIMON_CFGTEST_MISSING");

    /* a bad built-in default is a problem too, not a silent zero */
    int64_t x = 5;
    const cfg_var bad_def[] = {{"X", CFG_INT, "ten", &x, 0, 0, NULL, 0, NULL}};
    const char *none[] = {NULL};
    char e2[128];
    assert_int_equal(cfg_load_from(bad_def, 1, fake_get, (void *)none, e2, sizeof e2), -1);
    assert_non_null(strstr(e2, "X: invalid built-in default"));
}

static void test_json_string(void **state)
{
    (void)state;
    char path[] = "/tmp/paimon_cfg_json_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *doc = "{\"contracts\":{\"vault\":\"0xabc\",\"n\":1},\"x\":\"y\"}";
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    char out[16], err[256];
    assert_int_equal(cfg_json_string(path, "contracts.vault", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "0xabc");
    assert_int_equal(cfg_json_string(path, "x", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "y");
    assert_int_equal(cfg_json_string(path, "contracts.n", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(cfg_json_string(path, "contracts.nope", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(cfg_json_string(path, "contracts.vault", out, 3, err, sizeof err), -1);
    unlink(path);
    assert_int_equal(cfg_json_string(path, "x", out, sizeof out, err, sizeof err), -1);
}

/* The contract address every chain daemon starts from: given, or from the devchain
 * address book, always normalised; a bad one is refused with where it came from. */
static void test_address(void **state)
{
    (void)state;
    char path[] = "/tmp/paimon_cfg_addr_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *doc = "{\"contracts\":{\"vault\":\"0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0\","
                      "\"bad\":\"0x12\",\"sum\":\"0x9FE46736679d2D9a65F0992F2272dE9f3c7fa6e0\"}}";
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    char out[43], err[256];
    assert_int_equal(cfg_address(NULL, path, "contracts.vault", out, sizeof out, err, sizeof err),
                     0);
    assert_string_equal(out, "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0");
    /* an explicit address wins over the book */
    assert_int_equal(cfg_address("0x00000000000000000000000000000000000000aa", path,
                                 "contracts.vault", out, sizeof out, err, sizeof err),
                     0);
    assert_string_equal(out, "0x00000000000000000000000000000000000000aa");
    assert_int_equal(cfg_address(NULL, path, "contracts.bad", out, sizeof out, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "contracts.bad"));
    /* mixed case is an EIP-55 checksum, and this one is wrong */
    assert_int_equal(cfg_address(NULL, path, "contracts.sum", out, sizeof out, err, sizeof err),
                     -1);
    assert_int_equal(cfg_address("vault", NULL, "vault", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(cfg_address("", "", "contracts.vault", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(cfg_address(NULL, path, "contracts.none", out, sizeof out, err, sizeof err),
                     -1);
    char small[20];
    assert_int_equal(
        cfg_address(NULL, path, "contracts.vault", small, sizeof small, err, sizeof err), -1);
    unlink(path);
    assert_int_equal(cfg_address(NULL, path, "contracts.vault", out, sizeof out, err, sizeof err),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_string),         cmocka_unit_test(test_address),
        cmocka_unit_test(test_defaults_and_values), cmocka_unit_test(test_all_problems_listed),
        cmocka_unit_test(test_int_parsing),         cmocka_unit_test(test_durations),
        cmocka_unit_test(test_bools_ports_enums),   cmocka_unit_test(test_urls),
        cmocka_unit_test(test_lists_and_strings),   cmocka_unit_test(test_secrets_masked),
        cmocka_unit_test(test_env_and_small_err),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
