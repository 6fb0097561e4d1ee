/* Integration tests of sched against the harness's real Redis, driving simulated
 * time through sched_tick: once-per-cluster periodic slots across two replicas,
 * daily runs with catch-up after an outage, failure recording, Redis outages,
 * and the libevent timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "harness.h"
#include "scheduler.h"
#include "util.h"

#define T0     1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY_MS (24LL * 3600 * 1000)

static redisContext *rc;
static int64_t sim_now; /* the time the test passed to the tick that runs a job */

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

static sched *new_sched(const char *node)
{
    char err[UTIL_ERRLEN];
    sched *s = sched_new(NULL, th_redis_url(), node, err, sizeof err);
    if (!s)
        fail_msg("sched_new: %s", err);
    return s;
}

/* One field of the job's status hash, "" when missing. */
static void status_field(const char *job, const char *field, char *out, size_t outlen)
{
    redisReply *r = redisCommand(rc, "HGET paimon:sched:%s %s", job, field);
    assert_non_null(r);
    util_strlcpy(out, r->type == REDIS_REPLY_STRING ? r->str : "", outlen);
    freeReplyObject(r);
}

static long long status_int(const char *job, const char *field)
{
    char v[64];
    status_field(job, field, v, sizeof v);
    return atoll(v);
}

/* --- periodic: two replicas, each slot exactly once ------------------------- */

#define NSLOTS      200
#define INTERVAL_MS 1000

typedef struct shared {
    int per_slot[NSLOTS];
    int by[3];
} shared;

typedef struct who {
    shared *sh;
    int id;
} who;

static int periodic_job(void *ud, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    who *w = ud;
    int64_t slot = (sim_now - T0) / INTERVAL_MS;
    assert_true(slot >= 0 && slot < NSLOTS);
    w->sh->per_slot[slot]++;
    w->sh->by[w->id]++;
    return 0;
}

static void test_two_replicas_each_slot_once(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    shared sh;
    memset(&sh, 0, sizeof sh);
    who w[3] = {{&sh, 0}, {&sh, 1}, {&sh, 2}};
    sched *s[2] = {new_sched("replica-a"), new_sched("replica-b")};
    assert_string_not_equal(sched_node(s[0]), sched_node(s[1]));
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            sched_every(s[i], "sweep", INTERVAL_MS, periodic_job, &w[i], err, sizeof err), 0);
    int ticked[NSLOTS] = {0};
    srand(12345);
    int total_ran = 0;
    for (int64_t t = T0; t < T0 + NSLOTS * INTERVAL_MS; t += 100) {
        /* Each replica ticks or not at this instant, in either order, with its own
         * small jitter (clocks are never exactly aligned). */
        int first = rand() % 2;
        for (int k = 0; k < 2; k++) {
            int i = (first + k) % 2;
            if (rand() % 2)
                continue;
            sim_now = t + rand() % 50;
            if (sim_now >= T0 + NSLOTS * INTERVAL_MS)
                continue;
            ticked[(sim_now - T0) / INTERVAL_MS] = 1;
            int n = sched_tick(s[i], sim_now);
            assert_true(n == 0 || n == 1);
            total_ran += n;
        }
        /* Halfway, replica b restarts: its fresh state must not re-run the slot. */
        if (t == T0 + (NSLOTS / 2) * INTERVAL_MS + 500) {
            sched_free(s[1]);
            s[1] = new_sched("replica-b");
            assert_int_equal(
                sched_every(s[1], "sweep", INTERVAL_MS, periodic_job, &w[2], err, sizeof err), 0);
        }
    }
    int expected = 0;
    for (int k = 0; k < NSLOTS; k++) {
        if (ticked[k]) {
            expected++;
            if (sh.per_slot[k] != 1)
                fail_msg("slot %d ran %d times", k, sh.per_slot[k]);
        } else {
            assert_int_equal(sh.per_slot[k], 0);
        }
    }
    assert_true(expected > NSLOTS - 3);
    assert_int_equal(total_ran, expected);
    assert_int_equal(sh.by[0] + sh.by[1] + sh.by[2], expected);
    assert_true(sh.by[0] > 0);
    assert_true(sh.by[1] + sh.by[2] > 0);
    assert_int_equal(status_int("sweep", "runs"), expected);
    char v[64];
    status_field("sweep", "last_result", v, sizeof v);
    assert_string_equal(v, "ok");
    sched_free(s[0]);
    sched_free(s[1]);
}

/* --- daily: once per date, catch-up after a missed 00:00 -------------------- */

#define NDAYS 5

typedef struct daily_rec {
    int runs[NDAYS];
    int64_t at[NDAYS]; /* ms since that day's 00:00 of the (single) run */
} daily_rec;

static int daily_job(void *ud, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    daily_rec *d = ud;
    int64_t day = (sim_now - T0) / DAY_MS;
    assert_true(day >= 0 && day < NDAYS);
    d->runs[day]++;
    d->at[day] = (sim_now - T0) % DAY_MS;
    return 0;
}

static void test_daily_once_per_date_with_catch_up(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    daily_rec close_rec, report_rec;
    memset(&close_rec, 0, sizeof close_rec);
    memset(&report_rec, 0, sizeof report_rec);
    sched *s[2] = {new_sched("a"), new_sched("b")};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sched_daily(s[i], "close", 0, 0, daily_job, &close_rec, err, sizeof err),
                         0);
        assert_int_equal(
            sched_daily(s[i], "report", 6, 30, daily_job, &report_rec, err, sizeof err), 0);
    }
    /* No replica is alive from day 2 23:00 to day 3 05:00 (0-based days 1..2). */
    int64_t down_from = T0 + 1 * DAY_MS + 23 * 3600000LL;
    int64_t down_to = T0 + 2 * DAY_MS + 5 * 3600000LL;
    for (int64_t t = T0; t < T0 + NDAYS * DAY_MS; t += 60000) {
        if (t >= down_from && t < down_to)
            continue;
        for (int i = 0; i < 2; i++) {
            sim_now = t + i * 7000; /* b's clock runs 7 s behind-the-minute */
            assert_true(sched_tick(s[i], sim_now) >= 0);
        }
        /* A replica restarted mid-day finds the day's runs already claimed. */
        if (t == T0 + 3 * DAY_MS + 12 * 3600000LL) {
            sched *c = new_sched("late");
            assert_int_equal(sched_daily(c, "close", 0, 0, daily_job, &close_rec, err, sizeof err),
                             0);
            assert_int_equal(
                sched_daily(c, "report", 6, 30, daily_job, &report_rec, err, sizeof err), 0);
            sim_now = t;
            assert_int_equal(sched_tick(c, sim_now), 0);
            sched_free(c);
        }
    }
    for (int d = 0; d < NDAYS; d++) {
        assert_int_equal(close_rec.runs[d], 1);
        assert_int_equal(report_rec.runs[d], 1);
        /* The report never runs before 06:30 and runs within the first minute. */
        assert_true(report_rec.at[d] >= 6 * 3600000LL + 30 * 60000LL);
        assert_true(report_rec.at[d] < 6 * 3600000LL + 31 * 60000LL + 7000);
        if (d == 2)
            assert_int_equal(close_rec.at[d], 5 * 3600000LL); /* first tick after the outage */
        else
            assert_true(close_rec.at[d] < 60000 + 7000);
    }
    assert_int_equal(status_int("close", "runs"), NDAYS);
    char v[64];
    status_field("close", "last_slot", v, sizeof v);
    assert_string_equal(v, "2026-01-05");
    /* The claim key is per date and outlives the day. */
    redisReply *r = redisCommand(rc, "PTTL paimon:sched:close:2026-01-05");
    assert_non_null(r);
    assert_true(r->integer > DAY_MS);
    freeReplyObject(r);
    sched_free(s[0]);
    sched_free(s[1]);
}

/* --- failures are recorded, never fatal ------------------------------------ */

typedef struct flaky {
    int calls;
    int fail_first;
    int silent; /* fail without writing a reason */
} flaky;

static int flaky_job(void *ud, char *err, size_t errlen)
{
    flaky *f = ud;
    f->calls++;
    if (f->calls <= f->fail_first)
        return f->silent ? -1 : util_err(err, errlen, "boom: disk full (call %d)", f->calls);
    return 0;
}

static void test_failing_job_records_error(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    sched *s = new_sched("solo");
    flaky bad = {.fail_first = 1}, good = {0}, mute = {.fail_first = 5, .silent = 1};
    assert_int_equal(sched_every(s, "bad", 1000, flaky_job, &bad, err, sizeof err), 0);
    assert_int_equal(sched_every(s, "good", 1000, flaky_job, &good, err, sizeof err), 0);
    assert_int_equal(sched_every(s, "mute", 1000, flaky_job, &mute, err, sizeof err), 0);

    assert_int_equal(sched_tick(s, T0), 3); /* the failure did not stop the others */
    assert_int_equal(good.calls, 1);
    char v[UTIL_ERRLEN];
    status_field("bad", "last_result", v, sizeof v);
    assert_string_equal(v, "error");
    status_field("bad", "last_error", v, sizeof v);
    assert_string_equal(v, "boom: disk full (call 1)");
    assert_int_equal(status_int("bad", "failures"), 1);
    assert_int_equal(status_int("bad", "runs"), 1);
    status_field("bad", "last_node", v, sizeof v);
    assert_string_equal(v, sched_node(s));
    assert_int_equal(status_int("bad", "last_start_ms"), T0);
    status_field("mute", "last_error", v, sizeof v);
    assert_true(strlen(v) > 0);
    status_field("good", "last_result", v, sizeof v);
    assert_string_equal(v, "ok");

    assert_int_equal(sched_tick(s, T0 + 500), 0); /* same slot: nothing */
    assert_int_equal(sched_tick(s, T0 + 1000), 3);
    status_field("bad", "last_result", v, sizeof v);
    assert_string_equal(v, "ok");
    status_field("bad", "last_error", v, sizeof v);
    assert_string_equal(v, "");
    assert_int_equal(status_int("bad", "failures"), 1);
    assert_int_equal(status_int("bad", "runs"), 2);
    assert_int_equal(status_int("bad", "last_slot"), (T0 + 1000) / 1000);
    assert_int_equal(status_int("mute", "failures"), 2);
    sched_free(s);
}

/* --- Redis outages: skip, never double-run --------------------------------- */

static int count_job(void *ud, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    (*(int *)ud)++;
    return 0;
}

static void test_redis_down_skips(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN], url[64];
    /* A port in this run's block that nothing listens on. */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", th_redis_port() + 47);
    sched *s = sched_new(NULL, url, "down", err, sizeof err);
    assert_non_null(s);
    sched_set_redis_timeout(s, 200);
    int runs = 0;
    assert_int_equal(sched_every(s, "job", 1000, count_job, &runs, err, sizeof err), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(sched_tick(s, T0 + i * 1000), -1);
    assert_int_equal(runs, 0);
    sched_free(s);
}

static void test_connection_drop_then_recover(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    sched *s = new_sched("drop");
    int runs = 0;
    assert_int_equal(sched_every(s, "job", 1000, count_job, &runs, err, sizeof err), 0);
    assert_int_equal(sched_tick(s, T0), 1);
    redisReply *r = redisCommand(rc, "CLIENT KILL TYPE normal SKIPME yes");
    assert_non_null(r);
    assert_true(r->integer >= 1);
    freeReplyObject(r);
    assert_int_equal(sched_tick(s, T0 + 1000), -1); /* claim failed: skipped, not run */
    assert_int_equal(runs, 1);
    assert_int_equal(sched_tick(s, T0 + 1200), 1); /* reconnected: the slot runs once */
    assert_int_equal(sched_tick(s, T0 + 1400), 0);
    assert_int_equal(runs, 2);
    assert_int_equal(status_int("job", "runs"), 2);
    sched_free(s);
}

static void test_lost_claim_reply_is_ours(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    sched *s = new_sched("lost");
    int runs = 0;
    assert_int_equal(sched_every(s, "job", 1000, count_job, &runs, err, sizeof err), 0);
    /* Our own claim already in Redis (its reply never reached us): the slot is
     * ours and has not run here, so it runs. Someone else's claim: it does not. */
    long long slot = T0 / 1000;
    redisReply *r = redisCommand(rc, "SET paimon:sched:job:%lld %s", slot, sched_node(s));
    freeReplyObject(r);
    r = redisCommand(rc, "SET paimon:sched:job:%lld other-node", slot + 1);
    freeReplyObject(r);
    assert_int_equal(sched_tick(s, T0), 1);
    assert_int_equal(sched_tick(s, T0 + 1000), 0);
    assert_int_equal(runs, 1);
    sched_free(s);
}

/* --- the libevent timer ----------------------------------------------------- */

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void test_event_base_timer(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    struct event_base *base = event_base_new();
    assert_non_null(base);
    sched *s = sched_new(base, th_redis_url(), NULL, err, sizeof err);
    assert_non_null(s);
    int runs = 0;
    assert_int_equal(sched_every(s, "fast", 100, count_job, &runs, err, sizeof err), 0);
    assert_int_equal(sched_start(s, 20, err, sizeof err), 0);
    assert_int_equal(sched_start(s, 20, err, sizeof err), -1); /* twice */
    struct event *stop = evtimer_new(base, stop_cb, base);
    struct timeval tv = {0, 550 * 1000};
    evtimer_add(stop, &tv);
    int64_t t0 = util_now_ms();
    event_base_dispatch(base);
    int64_t slots = (util_now_ms() / 100) - (t0 / 100) + 1;
    assert_true(runs >= 3);
    assert_true(runs <= slots);
    assert_int_equal(status_int("fast", "runs"), runs);
    sched_stop(s);
    event_free(stop);
    sched_free(s);
    event_base_free(base);
}

/* --- input validation -------------------------------------------------------- */

static void test_bad_input(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    int runs = 0;
    assert_null(sched_new(NULL, "http://x", "n", err, sizeof err));
    assert_null(sched_new(NULL, th_redis_url(), "has space", err, sizeof err));
    assert_null(sched_new(NULL, th_redis_url(), "", err, sizeof err));
    sched *s = new_sched("v");
    const char *bad[] = {"", "a:b", "a b", "x/y",
                         "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(sched_every(s, bad[i], 1000, count_job, &runs, err, sizeof err), -1);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(sched_every(s, NULL, 1000, count_job, &runs, err, sizeof err), -1);
    assert_int_equal(sched_every(s, "j", 0, count_job, &runs, err, sizeof err), -1);
    assert_int_equal(sched_every(s, "j", SCHED_INTERVAL_MAX + 1, count_job, &runs, err, sizeof err),
                     -1);
    assert_int_equal(sched_every(s, "j", 1000, NULL, &runs, err, sizeof err), -1);
    assert_int_equal(sched_daily(s, "d", 24, 0, count_job, &runs, err, sizeof err), -1);
    assert_int_equal(sched_daily(s, "d", 0, 60, count_job, &runs, err, sizeof err), -1);
    assert_int_equal(sched_daily(s, "d", -1, 0, count_job, &runs, err, sizeof err), -1);
    assert_int_equal(sched_every(s, "j", 1000, count_job, &runs, err, sizeof err), 0);
    assert_int_equal(sched_daily(s, "j", 1, 0, count_job, &runs, err, sizeof err), -1); /* dup */
    assert_int_equal(sched_start(s, 1000, err, sizeof err), -1); /* no event_base */
    assert_int_equal(sched_tick(s, -1), -1);
    assert_int_equal(runs, 0);
    /* More jobs than the initial table holds. */
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "job%d", i);
        assert_int_equal(sched_every(s, name, 1000, count_job, &runs, err, sizeof err), 0);
    }
    assert_int_equal(sched_tick(s, T0), 21);
    assert_int_equal(runs, 21);
    sched_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_replicas_each_slot_once, setup_each,
                                        teardown_each),
        cmocka_unit_test_setup_teardown(test_daily_once_per_date_with_catch_up, setup_each,
                                        teardown_each),
        cmocka_unit_test_setup_teardown(test_failing_job_records_error, setup_each, teardown_each),
        cmocka_unit_test_setup_teardown(test_redis_down_skips, setup_each, teardown_each),
        cmocka_unit_test_setup_teardown(test_connection_drop_then_recover, setup_each,
                                        teardown_each),
        cmocka_unit_test_setup_teardown(test_lost_claim_reply_is_ours, setup_each, teardown_each),
        cmocka_unit_test_setup_teardown(test_event_base_timer, setup_each, teardown_each),
        cmocka_unit_test_setup_teardown(test_bad_input, setup_each, teardown_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
