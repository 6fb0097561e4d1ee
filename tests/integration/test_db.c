/* Integration tests of the db module against the harness PostgreSQL: pool limits,
 * reconnection after the server drops a session, transaction retries on
 * serialization failures, and the processed-message guard. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"
#include "harness.h"
#include "util.h"

static const char *url;
static PGconn *admin;

static int setup(void **state)
{
    (void)state;
    url = th_pg_fresh_db("db_test");
    admin = th_pg_connect(url);
    th_pg_exec(admin, "CREATE SCHEMA svc;"
                      "CREATE TABLE svc.processed_messages (topic text NOT NULL, message_id text "
                      "NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY "
                      "(topic, message_id));"
                      "CREATE TABLE svc.counter (id int PRIMARY KEY, n int NOT NULL);"
                      "INSERT INTO svc.counter VALUES (1, 0)");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(admin);
    return 0;
}

static void test_bad_url_fails_fast(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN] = "";
    assert_null(db_pool_new("postgresql://postgres@127.0.0.1:1/nope", 2, err, sizeof err));
    assert_non_null(strstr(err, "postgres connect"));
    assert_null(strchr(err, '\n')); /* one line, fit for a log */
    assert_null(db_pool_new(url, 0, err, sizeof err));
    assert_null(db_pool_new("", 1, err, sizeof err));
}

static void test_pool_exhaustion_times_out(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    db_pool *p = db_pool_new(url, 2, err, sizeof err);
    assert_non_null(p);
    db_conn *a = db_acquire(p, 1000, err, sizeof err);
    db_conn *b = db_acquire(p, 1000, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    int64_t t0 = util_mono_ms();
    assert_null(db_acquire(p, 200, err, sizeof err));
    int64_t waited = util_mono_ms() - t0;
    assert_true(waited >= 190 && waited < 1500);
    assert_non_null(strstr(err, "exhausted"));
    db_release(p, a);
    db_conn *c = db_acquire(p, 200, err, sizeof err);
    assert_ptr_equal(c, a);
    db_release(p, b);
    db_release(p, c);
    db_pool_free(p);
}

/* The server kills our session (failover, restart, idle timeout): the next acquire
 * must hand out a working connection, not the dead one. */
static void test_reconnects_after_session_killed(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    db_pool *p = db_pool_new(url, 1, err, sizeof err);
    db_conn *c = db_acquire(p, 1000, err, sizeof err);
    PGresult *r = db_query(c, "SELECT pg_backend_pid()", 0, NULL, err, sizeof err);
    assert_non_null(r);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s)", PQgetvalue(r, 0, 0));
    PQclear(r);
    th_pg_exec(admin, sql);
    /* The first statement on the dead session fails with a connection error... */
    assert_int_equal(db_exec(c, "SELECT 1", err, sizeof err), -1);
    db_release(p, c);
    /* ...and the pool replaces it. */
    c = db_acquire(p, 3000, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(db_exec(c, "SELECT 1", err, sizeof err), 0);
    db_release(p, c);
    assert_int_equal(db_ping(p, err, sizeof err), 0);
    db_pool_free(p);
}

static void test_release_rolls_back_open_transaction(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    db_pool *p = db_pool_new(url, 1, err, sizeof err);
    db_conn *c = db_acquire(p, 1000, err, sizeof err);
    assert_int_equal(
        db_exec(c, "BEGIN; UPDATE svc.counter SET n = 999 WHERE id = 1", err, sizeof err), 0);
    db_release(p, c); /* forgotten COMMIT: must not leak into the next borrower */
    c = db_acquire(p, 1000, err, sizeof err);
    assert_int_equal(PQtransactionStatus(c->pg), PQTRANS_IDLE);
    db_release(p, c);
    assert_int_equal(th_pg_scalar(admin, "SELECT n FROM svc.counter WHERE id = 1"), 0);
    db_pool_free(p);
}

typedef struct incr_ctx {
    int calls;
} incr_ctx;

static int incr(db_conn *c, void *ud, char *err, size_t errlen)
{
    incr_ctx *x = ud;
    x->calls++;
    if (db_exec(c, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", err, errlen) != 0)
        return -1;
    PGresult *r = db_query(c, "SELECT n FROM svc.counter WHERE id = 1", 0, NULL, err, errlen);
    if (!r)
        return -1;
    int n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    util_sleep_ms(20); /* widen the race window */
    char v[16];
    snprintf(v, sizeof v, "%d", n + 1);
    const char *params[1] = {v};
    r = db_query(c, "UPDATE svc.counter SET n = $1::int WHERE id = 1", 1, params, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

typedef struct worker {
    db_pool *p;
    incr_ctx ctx;
    int failures;
} worker;

static void *incr_many(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 5; i++) {
        char err[UTIL_ERRLEN];
        if (db_tx(w->p, incr, &w->ctx, err, sizeof err) != 0)
            w->failures++;
    }
    return NULL;
}

/* Two writers race on one row under SERIALIZABLE: conflicts (40001) are retried by
 * db_tx, so no increment is lost and every transaction that reported success counted. */
static void test_tx_retries_serialization_failures(void **state)
{
    (void)state;
    th_pg_exec(admin, "UPDATE svc.counter SET n = 0 WHERE id = 1");
    char err[UTIL_ERRLEN];
    db_pool *p = db_pool_new(url, 2, err, sizeof err);
    worker w[2] = {{.p = p}, {.p = p}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, incr_many, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    int ok = 10 - w[0].failures - w[1].failures;
    assert_int_equal(th_pg_scalar(admin, "SELECT n FROM svc.counter WHERE id = 1"), ok);
    assert_true(ok >= 8);                              /* retries absorbed the conflicts */
    assert_true(w[0].ctx.calls + w[1].ctx.calls > 10); /* ...and there were conflicts */
    db_pool_free(p);
}

static void test_processed_guard(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    db_pool *p = db_pool_new(url, 1, err, sizeof err);
    db_conn *c = db_acquire(p, 1000, err, sizeof err);
    assert_int_equal(db_exec(c, "BEGIN", err, sizeof err), 0);
    assert_int_equal(db_processed_mark(c, "svc", "t", "m-1", err, sizeof err), 1);
    assert_int_equal(db_processed_mark(c, "svc", "t", "m-1", err, sizeof err), 0);
    assert_int_equal(db_processed_mark(c, "svc", "other", "m-1", err, sizeof err), 1);
    const char *ids[] = {"m-2", "m-1", "m-2", "m-3", "we\"ird\\id"};
    int is_new[5];
    assert_int_equal(db_processed_mark_many(c, "svc", "t", ids, 5, is_new, err, sizeof err), 0);
    assert_int_equal(is_new[0], 1);
    assert_int_equal(is_new[1], 0); /* seen in an earlier statement */
    assert_int_equal(is_new[2], 0); /* repeated within the batch */
    assert_int_equal(is_new[3], 1);
    assert_int_equal(is_new[4], 1); /* quoting survives the array literal */
    assert_int_equal(db_exec(c, "ROLLBACK", err, sizeof err), 0);
    /* Rolled back with the handler's writes: nothing is marked. */
    assert_int_equal(th_pg_scalar(admin, "SELECT count(*) FROM svc.processed_messages"), 0);
    assert_int_equal(db_processed_mark(c, "svc; DROP TABLE x", "t", "m", err, sizeof err), -1);
    assert_int_equal(db_processed_mark(c, "nosuchschema", "t", "m", err, sizeof err), -1);
    assert_string_equal(db_last_sqlstate(c), "42P01");
    db_release(p, c);
    db_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_url_fails_fast),
        cmocka_unit_test(test_pool_exhaustion_times_out),
        cmocka_unit_test(test_reconnects_after_session_killed),
        cmocka_unit_test(test_release_rolls_back_open_transaction),
        cmocka_unit_test(test_tx_retries_serialization_failures),
        cmocka_unit_test(test_processed_guard),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
