/* Integration test of the daemon skeleton: a real child process built on svc serves
 * its health endpoints, consumes the bus exactly once, and shuts down cleanly and in
 * time on SIGTERM; bad configuration is reported all at once. */
#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "harness.h"
#include "svc.h"
#include "util.h"

static int handle(db_conn *tx, const envelope *m, void *ud, char *err, size_t errlen)
{
    (void)ud;
    const char *params[1] = {m->id};
    PGresult *r = db_query(tx, "INSERT INTO demo.seen (id) VALUES ($1)", 1, params, err, errlen);
    if (!r)
        return BUS_RETRY;
    PQclear(r);
    return BUS_OK;
}

static long http_get(int port, const char *path)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    fclose(sink);
    curl_easy_cleanup(c);
    return code;
}

static void test_bad_config_lists_every_problem(void **state)
{
    (void)state;
    setenv("PAIMON_REDIS_URL", "http://not-redis", 1);
    setenv("PAIMON_DB_POOL", "lots", 1);
    setenv("PAIMON_HTTP_PORT", "70000", 1);
    char err[CFG_ERRLEN];
    assert_null(svc_new("demo", 18999, NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "PAIMON_REDIS_URL"));
    assert_non_null(strstr(err, "PAIMON_DB_POOL"));
    assert_non_null(strstr(err, "PAIMON_HTTP_PORT"));
    unsetenv("PAIMON_REDIS_URL");
    unsetenv("PAIMON_DB_POOL");
    unsetenv("PAIMON_HTTP_PORT");
}

static void test_daemon_lifecycle(void **state)
{
    (void)state;
    const char *db = th_pg_fresh_db("svc_test");
    PGconn *pg = th_pg_connect(db);
    th_pg_exec(pg, "CREATE SCHEMA demo; CREATE TABLE demo.processed_messages (topic text NOT "
                   "NULL, message_id text NOT NULL, processed_at timestamptz NOT NULL DEFAULT "
                   "now(), PRIMARY KEY (topic, message_id));"
                   "CREATE TABLE demo.seen (id text NOT NULL)");
    redisContext *rc = th_redis_fresh();
    int port = th_port(30);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    setenv("PAIMON_REDIS_URL", th_redis_url(), 1);
    setenv("PAIMON_DATABASE_URL", db, 1);
    setenv("PAIMON_HTTP_PORT", portstr, 1);
    setenv("PAIMON_CONSUMERS", "2", 1);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[CFG_ERRLEN];
        svc *s = svc_new("demo", 0, NULL, 0, err, sizeof err);
        if (!s)
            _exit(3);
        if (svc_consume(s, "demo.events", handle, NULL, NULL, err, sizeof err) != 0)
            _exit(4);
        int rc = svc_run(s);
        svc_free(s);
        _exit(rc);
    }
    int64_t end = util_mono_ms() + 5000;
    while (http_get(port, "/health/ready") != 200 && util_mono_ms() < end)
        util_sleep_ms(50);
    assert_int_equal(http_get(port, "/health/live"), 200);
    assert_int_equal(http_get(port, "/health/ready"), 200);
    assert_int_equal(http_get(port, "/metrics"), 200);

    char err[UTIL_ERRLEN];
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, "d-%d", i % 10); /* every message twice */
        envelope *e = envelope_new(id, "demo.event", "tests", NULL, NULL);
        assert_int_equal(bus_publish(rc, "demo.events", BUS_NORMAL, e, 0, err, sizeof err), 0);
        envelope_free(e);
    }
    end = util_mono_ms() + 5000;
    while (th_pg_scalar(pg, "SELECT count(*) FROM demo.seen") < 10 && util_mono_ms() < end)
        util_sleep_ms(50);
    util_sleep_ms(300);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM demo.seen"), 10);

    int64_t t0 = util_mono_ms();
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(util_mono_ms() - t0 < 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    PQfinish(pg);
    redisFree(rc);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config_lists_every_problem),
        cmocka_unit_test(test_daemon_lifecycle),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
