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
#include "metrics.h"
#include "svc.h"
#include "util.h"

/* A service schema with only the bus's exactly-once table (as
 * migrations/_shared/processed_messages.sql has it, less the index). */
#define DEMO_SCHEMA                                                                                \
    "CREATE SCHEMA demo; CREATE TABLE demo.processed_messages (topic text NOT NULL, message_id "   \
    "text NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (topic, "         \
    "message_id));"

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
    th_pg_exec(pg, DEMO_SCHEMA "CREATE TABLE demo.seen (id text NOT NULL)");
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

static void test_retention_below_a_day_is_rejected(void **state)
{
    (void)state;
    setenv("PAIMON_PROCESSED_RETENTION", "23h", 1);
    setenv("PAIMON_OUTBOX_RETENTION", "0", 1);
    char err[CFG_ERRLEN];
    assert_null(svc_new("demo", 18999, NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "PAIMON_PROCESSED_RETENTION"));
    assert_non_null(strstr(err, "PAIMON_OUTBOX_RETENTION"));
    unsetenv("PAIMON_PROCESSED_RETENTION");
    unsetenv("PAIMON_OUTBOX_RETENTION");
}

/* An svc built in this process on the harness stores; svc_run is never called, so
 * its HTTP server (on th_port(31)) only binds. */
static svc *svc_here(const char *name, const char *db)
{
    char port[16], err[CFG_ERRLEN];
    snprintf(port, sizeof port, "%d", th_port(31));
    setenv("PAIMON_REDIS_URL", th_redis_url(), 1);
    setenv("PAIMON_DATABASE_URL", db, 1);
    setenv("PAIMON_HTTP_PORT", port, 1);
    svc *s = svc_new(name, 0, NULL, 0, err, sizeof err);
    if (!s)
        fail_msg("svc_new: %s", err);
    unsetenv("PAIMON_HTTP_PORT");
    return s;
}

/* A transaction of the outbox schema last changed `days` ago; a signed row carries
 * what the table's CHECK demands, plus one attempt (which must go with it). */
static void add_tx(PGconn *pg, int n, const char *status, int days)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "WITH t AS (INSERT INTO approval.transactions (idempotency_key, chain_id, "
             "from_address, to_address, status, nonce, raw_tx, tx_hash, tx_type, updated_at) "
             "VALUES ('k%d', 1, '0x%040d', '0x%040d', '%s', %d, '\\x01', '0x%064d', 2, now() - "
             "interval '%d days') RETURNING id, tx_hash) INSERT INTO "
             "approval.transaction_attempts (tx_id, tx_hash, raw_tx) SELECT id, tx_hash, "
             "'\\x01' FROM t",
             n, 1, 2, status, n, n, days);
    th_pg_exec(pg, sql);
}

static double deleted_metric(const char *table)
{
    char l[128];
    snprintf(l, sizeof l, "schema=\"approval\",table=\"%s\"", table);
    return metrics_counter_value(
        metrics_counter_get(metrics_global(), "paimon_retention_deleted_total", NULL, l));
}

static void test_retention(void **state)
{
    (void)state;
    const char *db = th_pg_fresh_db("svc_retention");
    PGconn *pg = th_pg_connect(db);
    assert_int_equal(th_pg_migrate(pg, "approval"), 0);
    /* processed: 10 days, outbox: 20 days. More old ids than one batch, so the pass
     * has to loop. */
    th_pg_exec(pg, "INSERT INTO approval.processed_messages (topic, message_id, processed_at) "
                   "SELECT 't', 'old-' || i, now() - interval '11 days' FROM "
                   "generate_series(1, 12001) i;"
                   "INSERT INTO approval.processed_messages (topic, message_id, processed_at) "
                   "VALUES ('t', 'new', now() - interval '9 days'), ('t', 'now', now())");
    th_pg_exec(pg, "INSERT INTO approval.outgoing_messages (topic, priority, envelope, "
                   "created_at, published_at) VALUES "
                   "('a', 'normal', 'old', now() - interval '22 days', now() - interval '21 days'),"
                   "('a', 'normal', 'new', now() - interval '22 days', now() - interval '19 days'),"
                   "('a', 'normal', 'unpublished', now() - interval '40 days', NULL)");
    add_tx(pg, 1, "confirmed", 21); /* goes */
    add_tx(pg, 2, "reverted", 25);  /* goes */
    add_tx(pg, 3, "confirmed", 19); /* too recent */
    add_tx(pg, 4, "sent", 40);      /* not final */
    add_tx(pg, 5, "signed", 40);    /* not final */
    th_pg_exec(pg, "INSERT INTO approval.transactions (idempotency_key, chain_id, from_address, "
                   "to_address, status, updated_at) VALUES ('k6', 1, '0x' || repeat('1', 40), "
                   "'0x' || repeat('2', 40), 'failed', now() - interval '30 days'), ('k7', 1, "
                   "'0x' || repeat('1', 40), '0x' || repeat('2', 40), 'pending', now() - "
                   "interval '30 days')");

    redisContext *rc = th_redis_fresh();
    setenv("PAIMON_PROCESSED_RETENTION", "10d", 1);
    setenv("PAIMON_OUTBOX_RETENTION", "20d", 1);
    svc *s = svc_here("approval", db);
    char err[CFG_ERRLEN];
    assert_int_equal(svc_cfg(s)->processed_retention_ms, 10LL * 24 * 3600 * 1000);
    double before = deleted_metric("processed_messages");

    /* The job is registered by svc_new itself: a scheduler tick runs it once per slot. */
    assert_int_equal(sched_tick(svc_sched(s), util_now_ms()), 1);
    assert_int_equal(sched_tick(svc_sched(s), util_now_ms()), 0);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM approval.processed_messages"), 2);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM approval.processed_messages WHERE "
                                      "message_id IN ('new', 'now')"),
                     2);
    assert_int_equal(
        th_pg_scalar(pg, "SELECT count(*) FROM approval.outgoing_messages WHERE envelope IN "
                         "('new', 'unpublished')"),
        2);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM approval.outgoing_messages"), 2);
    assert_string_equal(
        th_pg_textf(pg, "SELECT string_agg(idempotency_key, ',' ORDER BY idempotency_key) FROM "
                        "approval.transactions"),
        "k3,k4,k5,k7");
    assert_int_equal(th_pg_scalar(pg,
                                  "SELECT count(*) FROM approval.transaction_attempts a LEFT JOIN "
                                  "approval.transactions t ON t.id = a.tx_id WHERE t.id IS NULL"),
                     0);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM approval.transaction_attempts"), 3);
    assert_true(deleted_metric("processed_messages") - before == 12001.0);
    assert_true(deleted_metric("outgoing_messages") >= 1.0);
    assert_true(deleted_metric("transactions") >= 3.0);

    /* A second pass finds nothing more to delete. */
    svc_retention_counts n;
    assert_int_equal(svc_retention_run(s, &n, err, sizeof err), 0);
    assert_int_equal(n.processed + n.outgoing + n.transactions, 0);
    th_pg_exec(pg, "UPDATE approval.transactions SET updated_at = now() - interval '21 days' "
                   "WHERE idempotency_key = 'k3'");
    assert_int_equal(svc_retention_run(s, &n, err, sizeof err), 0);
    assert_int_equal(n.transactions, 1);
    assert_int_equal(n.processed, 0);

    svc_free(s);
    unsetenv("PAIMON_PROCESSED_RETENTION");
    unsetenv("PAIMON_OUTBOX_RETENTION");
    PQfinish(pg);
    redisFree(rc);
}

/* A service without the optional tables (no tx outbox, no txmsg) only prunes
 * processed_messages. */
static void test_retention_without_outbox_tables(void **state)
{
    (void)state;
    const char *db = th_pg_fresh_db("svc_retention2");
    PGconn *pg = th_pg_connect(db);
    th_pg_exec(pg, DEMO_SCHEMA
               "INSERT INTO demo.processed_messages VALUES ('t', 'a', now() - interval '31 "
               "days'), ('t', 'b', now() - interval '29 days')");
    redisContext *rc = th_redis_fresh();
    svc *s = svc_here("demo", db); /* default 30 days */
    char err[CFG_ERRLEN];
    svc_retention_counts n;
    assert_int_equal(svc_retention_run(s, &n, err, sizeof err), 0);
    assert_int_equal(n.processed, 1);
    assert_string_equal(th_pg_textf(pg, "SELECT message_id FROM demo.processed_messages"), "b");
    svc_free(s);
    PQfinish(pg);
    redisFree(rc);
}

/* The listener only publishes: its schema has no processed_messages at all, and a
 * retention pass must not fail on that. */
static void test_retention_without_processed_messages(void **state)
{
    (void)state;
    const char *db = th_pg_fresh_db("svc_retention3");
    PGconn *pg = th_pg_connect(db);
    th_pg_exec(pg, "CREATE SCHEMA pubonly");
    redisContext *rc = th_redis_fresh();
    svc *s = svc_here("pubonly", db);
    char err[CFG_ERRLEN] = "";
    svc_retention_counts n;
    assert_int_equal(svc_retention_run(s, &n, err, sizeof err), 0);
    assert_int_equal(n.processed + n.outgoing + n.transactions, 0);
    svc_free(s);
    PQfinish(pg);
    redisFree(rc);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config_lists_every_problem),
        cmocka_unit_test(test_daemon_lifecycle),
        cmocka_unit_test(test_retention_below_a_day_is_rejected),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_retention_without_outbox_tables),
        cmocka_unit_test(test_retention_without_processed_messages),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
