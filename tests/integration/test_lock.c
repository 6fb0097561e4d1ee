/* Integration tests of lock against the harness's real Redis (and PostgreSQL for
 * the fencing pattern): racing acquirers, expiry and fence growth, stale holders
 * unable to touch a new holder's lease, fenced writes, renewal, errors. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "lock.h"
#include "rconn.h"
#include "util.h"

static redisContext *rc;

static int setup_each(void **state)
{
    (void)state;
    rc = th_redis_fresh();
    return 0;
}

static int teardown_each(void **state)
{
    (void)state;
    redisFree(rc);
    rc = NULL;
    return 0;
}

static redisContext *connect_new(void)
{
    char err[UTIL_ERRLEN];
    redisContext *c = rconn_connect(th_redis_url(), 2000, err, sizeof err);
    if (!c)
        fail_msg("connect: %s", err);
    return c;
}

static long long redis_int(const char *fmt, const char *arg)
{
    redisReply *r = redisCommand(rc, fmt, arg);
    assert_non_null(r);
    long long v = -999;
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    freeReplyObject(r);
    return v;
}

/* The current lease token in Redis, "" when there is none. */
static void redis_token(const char *name, char *out, size_t outlen)
{
    redisReply *r = redisCommand(rc, "GET paimon:lock:%s", name);
    assert_non_null(r);
    util_strlcpy(out, r->type == REDIS_REPLY_STRING ? r->str : "", outlen);
    freeReplyObject(r);
}

static void test_acquire_busy_release(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    lock_lease a, b;
    assert_int_equal(lock_acquire(rc, "basic", 5000, &a, err, sizeof err), LOCK_OK);
    assert_int_equal(a.fence, 1);
    assert_string_equal(a.name, "basic");
    assert_int_equal(strlen(a.token), LOCK_TOKEN_LEN);
    assert_true(lock_valid(&a));
    assert_true(lock_remaining_ms(&a) > 4000);
    char tok[64];
    redis_token("basic", tok, sizeof tok);
    assert_string_equal(tok, a.token);
    long long pttl = redis_int("PTTL paimon:lock:%s", "basic");
    assert_true(pttl > 4000 && pttl <= 5000);

    assert_int_equal(lock_acquire(rc, "basic", 5000, &b, err, sizeof err), LOCK_BUSY);
    /* A busy attempt must not burn a fence. */
    assert_int_equal(redis_int("GET paimon:lock:%s:fence", "basic"), 1);

    assert_int_equal(lock_release(rc, &a, err, sizeof err), LOCK_OK);
    assert_false(lock_valid(&a));
    assert_int_equal(redis_int("EXISTS paimon:lock:%s", "basic"), 0);
    assert_int_equal(lock_acquire(rc, "basic", 5000, &b, err, sizeof err), LOCK_OK);
    assert_int_equal(b.fence, 2);
    assert_string_not_equal(a.token, b.token);
    /* Releasing twice reports the loss and leaves the new holder alone. */
    assert_int_equal(lock_release(rc, &a, err, sizeof err), LOCK_LOST);
    redis_token("basic", tok, sizeof tok);
    assert_string_equal(tok, b.token);
    /* Different names are independent leases with independent fences. */
    lock_lease o;
    assert_int_equal(lock_acquire(rc, "other", 5000, &o, err, sizeof err), LOCK_OK);
    assert_int_equal(o.fence, 1);
}

#define NRACERS 16

typedef struct racer {
    pthread_barrier_t *bar;
    const char *url; /* th_redis_url() rewrites a static buffer: not for threads */
    lock_result res;
    lock_lease lease;
    char err[UTIL_ERRLEN];
} racer;

static void *race_thread(void *arg)
{
    racer *r = arg;
    redisContext *c = rconn_connect(r->url, 2000, r->err, sizeof r->err);
    pthread_barrier_wait(r->bar);
    r->res = c ? lock_acquire(c, "race", 10000, &r->lease, r->err, sizeof r->err) : LOCK_ERR;
    if (c)
        redisFree(c);
    return NULL;
}

static void test_contention_one_winner(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, NRACERS);
        racer rs[NRACERS];
        pthread_t th[NRACERS];
        memset(rs, 0, sizeof rs);
        char url[128];
        util_strlcpy(url, th_redis_url(), sizeof url);
        for (int i = 0; i < NRACERS; i++) {
            rs[i].bar = &bar;
            rs[i].url = url;
            assert_int_equal(pthread_create(&th[i], NULL, race_thread, &rs[i]), 0);
        }
        for (int i = 0; i < NRACERS; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        int won = 0, busy = 0, winner = -1;
        for (int i = 0; i < NRACERS; i++) {
            if (rs[i].res == LOCK_OK) {
                won++;
                winner = i;
            } else if (rs[i].res == LOCK_BUSY) {
                busy++;
            } else {
                fail_msg("racer %d: %s", i, rs[i].err);
            }
        }
        assert_int_equal(won, 1);
        assert_int_equal(busy, NRACERS - 1);
        assert_int_equal(rs[winner].lease.fence, round + 1);
        char tok[64];
        redis_token("race", tok, sizeof tok);
        assert_string_equal(tok, rs[winner].lease.token);
        char err[UTIL_ERRLEN];
        assert_int_equal(lock_release(rc, &rs[winner].lease, err, sizeof err), LOCK_OK);
    }
}

static void test_expiry_new_holder_higher_fence(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    lock_lease a, b;
    assert_int_equal(lock_acquire(rc, "exp", 150, &a, err, sizeof err), LOCK_OK);
    assert_true(lock_valid(&a));
    assert_int_equal(lock_acquire(rc, "exp", 150, &b, err, sizeof err), LOCK_BUSY);
    /* The local deadline (ttl - margin) passes before Redis drops the key. */
    util_sleep_ms(150 - a.margin_ms + 5);
    assert_false(lock_valid(&a));
    assert_int_equal(lock_remaining_ms(&a), 0);
    util_sleep_ms(a.margin_ms + 100);
    assert_int_equal(lock_acquire(rc, "exp", 5000, &b, err, sizeof err), LOCK_OK);
    assert_true(b.fence > a.fence);
    /* Fences never go back, even after the lease key has come and gone many times. */
    int64_t last = b.fence;
    assert_int_equal(lock_release(rc, &b, err, sizeof err), LOCK_OK);
    for (int i = 0; i < 10; i++) {
        lock_lease x;
        assert_int_equal(lock_acquire(rc, "exp", 5000, &x, err, sizeof err), LOCK_OK);
        assert_true(x.fence > last);
        last = x.fence;
        assert_int_equal(lock_release(rc, &x, err, sizeof err), LOCK_OK);
    }
}

static void test_stale_holder_cannot_touch_new_lease(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    lock_lease stale, cur;
    assert_int_equal(lock_acquire(rc, "stale", 100, &stale, err, sizeof err), LOCK_OK);
    util_sleep_ms(250);
    assert_int_equal(lock_acquire(rc, "stale", 3000, &cur, err, sizeof err), LOCK_OK);
    long long pttl_before = redis_int("PTTL paimon:lock:%s", "stale");

    lock_lease copy = stale; /* a renew marks its lease invalid; keep one to release */
    assert_int_equal(lock_renew(rc, &stale, 60000, err, sizeof err), LOCK_LOST);
    assert_false(lock_valid(&stale));
    long long pttl_after = redis_int("PTTL paimon:lock:%s", "stale");
    assert_true(pttl_after <= pttl_before); /* not extended to 60 s */
    assert_true(pttl_after > 2000);
    assert_int_equal(lock_release(rc, &copy, err, sizeof err), LOCK_LOST);
    char tok[64];
    redis_token("stale", tok, sizeof tok);
    assert_string_equal(tok, cur.token);
    assert_int_equal(lock_renew(rc, &cur, 3000, err, sizeof err), LOCK_OK);

    /* Expired with nobody else holding it: renew still reports the loss. */
    lock_lease gone;
    assert_int_equal(lock_acquire(rc, "gone", 50, &gone, err, sizeof err), LOCK_OK);
    util_sleep_ms(200);
    assert_int_equal(lock_renew(rc, &gone, 5000, err, sizeof err), LOCK_LOST);
    assert_int_equal(redis_int("EXISTS paimon:lock:%s", "gone"), 0);
}

/* The fencing pattern: the resource keeps the highest fence it has seen and
 * rejects writes that carry a lower one. */
static int fenced_write(PGconn *pg, int id, int64_t fence, const char *value)
{
    char f[24], i[16];
    snprintf(f, sizeof f, "%lld", (long long)fence);
    snprintf(i, sizeof i, "%d", id);
    const char *params[3] = {f, i, value};
    PGresult *r = PQexecParams(pg,
                               "UPDATE resource SET last_fence = $1::bigint, value = $3 "
                               "WHERE id = $2::int AND last_fence <= $1::bigint",
                               3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("update: %s", PQerrorMessage(pg));
    int n = atoi(PQcmdTuples(r));
    PQclear(r);
    return n;
}

static void test_fencing_rejects_stale_write(void **state)
{
    (void)state;
    PGconn *pg = th_pg_connect(th_pg_fresh_db("lock_test"));
    th_pg_exec(pg, "CREATE TABLE resource (id int PRIMARY KEY, last_fence bigint NOT NULL "
                   "DEFAULT 0, value text);"
                   "INSERT INTO resource (id) VALUES (1)");
    char err[UTIL_ERRLEN];
    lock_lease a, b;
    assert_int_equal(lock_acquire(rc, "res-1", 100, &a, err, sizeof err), LOCK_OK);
    assert_int_equal(fenced_write(pg, 1, a.fence, "a1"), 1);
    assert_int_equal(fenced_write(pg, 1, a.fence, "a2"), 1); /* same holder may write again */
    /* A pauses past its lease; B takes over and writes. */
    util_sleep_ms(250);
    assert_int_equal(lock_acquire(rc, "res-1", 5000, &b, err, sizeof err), LOCK_OK);
    assert_true(b.fence > a.fence);
    assert_int_equal(fenced_write(pg, 1, b.fence, "b1"), 1);
    /* A wakes up and writes late: rejected, B's value stays. */
    assert_int_equal(fenced_write(pg, 1, a.fence, "a3"), 0);
    PGresult *r = PQexec(pg, "SELECT value, last_fence FROM resource WHERE id = 1");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "b1");
    assert_int_equal(atoll(PQgetvalue(r, 0, 1)), b.fence);
    PQclear(r);
    PQfinish(pg);
}

static void test_renew_extends(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    lock_lease a, b;
    assert_int_equal(lock_acquire(rc, "renew", 300, &a, err, sizeof err), LOCK_OK);
    int64_t first_deadline = a.expires_mono_ms;
    for (int i = 0; i < 4; i++) {
        util_sleep_ms(150);
        assert_true(lock_valid(&a));
        assert_int_equal(lock_renew(rc, &a, 300, err, sizeof err), LOCK_OK);
        assert_true(redis_int("PTTL paimon:lock:%s", "renew") > 200);
    }
    /* 600 ms in: far past the original 300 ms TTL, still held. */
    assert_true(a.expires_mono_ms > first_deadline + 500);
    assert_true(lock_valid(&a));
    assert_int_equal(lock_acquire(rc, "renew", 300, &b, err, sizeof err), LOCK_BUSY);
    /* Renewing to a longer ttl moves the Redis expiry too. */
    assert_int_equal(lock_renew(rc, &a, 10000, err, sizeof err), LOCK_OK);
    assert_true(redis_int("PTTL paimon:lock:%s", "renew") > 9000);
    assert_true(lock_remaining_ms(&a) > 8000);
    assert_int_equal(a.fence, 1); /* renewal keeps the fence */
}

static void test_local_validity_window(void **state)
{
    (void)state;
    lock_lease l;
    memset(&l, 0, sizeof l);
    assert_false(lock_valid_at(&l, 1000)); /* never acquired */
    assert_false(lock_valid(NULL));
    l.expires_mono_ms = 10000;
    l.margin_ms = 1000;
    assert_true(lock_valid_at(&l, 8999));
    assert_false(lock_valid_at(&l, 9000));
    assert_false(lock_valid_at(&l, 12000));

    /* The margin the caller raises survives a renew; the default is ttl/10 + 2. */
    char err[UTIL_ERRLEN];
    assert_int_equal(lock_acquire(rc, "margin", 1000, &l, err, sizeof err), LOCK_OK);
    assert_int_equal(l.margin_ms, 102);
    l.margin_ms = 400;
    assert_int_equal(lock_renew(rc, &l, 1000, err, sizeof err), LOCK_OK);
    assert_int_equal(l.margin_ms, 400);
    assert_true(lock_remaining_ms(&l) <= 600);
}

static void test_bad_input(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    lock_lease l;
    char longname[LOCK_NAME_MAX + 1];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *bad[] = {"", "has space", "x\ny", "p:fence", longname, "a*b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(lock_acquire(rc, bad[i], 1000, &l, err, sizeof err), LOCK_ERR);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(lock_acquire(rc, NULL, 1000, &l, err, sizeof err), LOCK_ERR);
    assert_int_equal(lock_acquire(rc, "ok", 0, &l, err, sizeof err), LOCK_ERR);
    assert_int_equal(lock_acquire(rc, "ok", -5, &l, err, sizeof err), LOCK_ERR);
    assert_int_equal(lock_acquire(rc, "ok", LOCK_TTL_MAX + 1, &l, err, sizeof err), LOCK_ERR);
    assert_int_equal(lock_acquire(rc, "ok:name-1.x_y", 1000, &l, err, sizeof err), LOCK_OK);
    assert_int_equal(lock_renew(rc, &l, 0, err, sizeof err), LOCK_ERR);
    lock_lease blank;
    memset(&blank, 0, sizeof blank);
    assert_int_equal(lock_renew(rc, &blank, 1000, err, sizeof err), LOCK_ERR);
    assert_int_equal(lock_release(rc, &blank, err, sizeof err), LOCK_ERR);
    assert_int_equal(lock_release(rc, NULL, err, sizeof err), LOCK_ERR);
    /* Nothing was written for the rejected names. */
    assert_int_equal(redis_int("EXISTS paimon:lock:%s", "p:fence"), 0);
    assert_int_equal(redis_int("DBSIZE", NULL), 2); /* ok:name-1.x_y and its fence */
}

static void test_redis_error_is_distinct(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    redisContext *c = connect_new();
    lock_lease l;
    assert_int_equal(lock_acquire(c, "conn", 5000, &l, err, sizeof err), LOCK_OK);
    redisReply *r = redisCommand(c, "CLIENT ID");
    assert_non_null(r);
    long long id = r->integer;
    freeReplyObject(r);
    r = redisCommand(rc, "CLIENT KILL ID %lld", id);
    assert_non_null(r);
    freeReplyObject(r);
    err[0] = '\0';
    assert_int_equal(lock_renew(c, &l, 5000, err, sizeof err), LOCK_ERR);
    assert_true(strlen(err) > 0);
    /* An error is not a loss: the lease is untouched and still valid locally. */
    assert_true(lock_valid(&l));
    lock_lease other;
    assert_int_equal(lock_acquire(c, "conn", 5000, &other, err, sizeof err), LOCK_ERR);
    assert_int_equal(lock_acquire(NULL, "conn", 5000, &other, err, sizeof err), LOCK_ERR);
    redisFree(c);
    /* A fresh connection can still renew and release it. */
    c = connect_new();
    assert_int_equal(lock_renew(c, &l, 5000, err, sizeof err), LOCK_OK);
    assert_int_equal(lock_release(c, &l, err, sizeof err), LOCK_OK);
    redisFree(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_acquire_busy_release, setup_each, teardown_each),
        cmocka_unit_test_setup_teardown(test_contention_one_winner, setup_each, teardown_each),
        cmocka_unit_test_setup_teardown(test_expiry_new_holder_higher_fence, setup_each,
                                        teardown_each),
        cmocka_unit_test_setup_teardown(test_stale_holder_cannot_touch_new_lease, setup_each,
                                        teardown_each),
        cmocka_unit_test_setup_teardown(test_fencing_rejects_stale_write, setup_each,
                                        teardown_each),
        cmocka_unit_test_setup_teardown(test_renew_extends, setup_each, teardown_each),
        cmocka_unit_test_setup_teardown(test_local_validity_window, setup_each, teardown_each),
        cmocka_unit_test_setup_teardown(test_bad_input, setup_each, teardown_each),
        cmocka_unit_test_setup_teardown(test_redis_error_is_distinct, setup_each, teardown_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
