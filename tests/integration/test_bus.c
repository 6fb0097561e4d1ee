/* Integration tests of the bus against the harness's real Redis and PostgreSQL:
 * exactly-once effects, strict priority without starvation, crash recovery,
 * backoff, DLQ and replay, fan-out isolation of retries, safe trimming. */
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

#include "bus.h"
#include "harness.h"
#include "jsonschema.h"
#include "util.h"

#define TOPIC "t.events"

typedef struct hctx {
    int fail_until_attempt; /* BUS_RETRY while env->attempt < this */
    int fatal;              /* BUS_FATAL for every message */
    int64_t attempt_ms[16]; /* wall clock of each attempt of the message, for backoff checks */
    int nattempts;
    const char *hang_marker; /* when set: create this file and sleep forever (crash tests) */
    int hang_after;          /* ...after this many handler calls */
    int calls;
} hctx;

static const char *db_url;

static int handler(db_conn *tx, const envelope *m, void *ud, char *err, size_t errlen)
{
    hctx *h = ud;
    h->calls++;
    if (h->nattempts < 16)
        h->attempt_ms[h->nattempts++] = util_now_ms();
    if (h->hang_marker && h->calls > h->hang_after) {
        FILE *f = fopen(h->hang_marker, "w");
        if (f)
            fclose(f);
        for (;;)
            pause();
    }
    if (h->fatal)
        return util_err(err, errlen, "payload rejected for good"), BUS_FATAL;
    if (m->attempt < h->fail_until_attempt)
        return util_err(err, errlen, "dependency down (attempt %d)", m->attempt), BUS_RETRY;
    const cJSON *prio = cJSON_GetObjectItemCaseSensitive(m->payload, "prio");
    const char *params[2] = {m->id, cJSON_IsString(prio) ? prio->valuestring : ""};
    PGresult *r = db_query(tx, "INSERT INTO svc.effects (message_id, prio) VALUES ($1, $2)", 2,
                           params, err, errlen);
    if (!r)
        return BUS_RETRY;
    PQclear(r);
    return BUS_OK;
}

/* Batch handler: one multi-row INSERT for the whole batch; a message whose payload has
 * "bad":true fails the batch, named or not depending on hctx.fatal (reused as a flag). */
static int batch_handler(db_conn *tx, const envelope *const *msgs, size_t n, void *ud,
                         size_t *failed, char *err, size_t errlen)
{
    hctx *h = ud;
    h->calls++;
    for (size_t i = 0; i < n; i++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msgs[i]->payload, "bad"))) {
            if (h->fatal) /* "name the culprit" mode */
                *failed = i;
            return util_err(err, errlen, "bad message in batch"), BUS_RETRY;
        }
    cJSON *ids = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(ids, cJSON_CreateString(msgs[i]->id));
    char *json = cJSON_PrintUnformatted(ids);
    cJSON_Delete(ids);
    const char *params[1] = {json};
    PGresult *r = db_query(tx,
                           "INSERT INTO svc.effects (message_id, prio) SELECT value, 'batch' "
                           "FROM json_array_elements_text($1::json)",
                           1, params, err, errlen);
    free(json);
    if (!r)
        return BUS_RETRY;
    PQclear(r);
    return BUS_OK;
}

static redisContext *rc;
static db_pool *pool;
static PGconn *pg;

static int setup(void **state)
{
    (void)state;
    rc = th_redis_fresh();
    db_url = th_pg_fresh_db("bus_test");
    pg = th_pg_connect(db_url);
    th_pg_exec(pg, "CREATE SCHEMA svc; CREATE SCHEMA svc2;"
                   "CREATE TABLE svc.processed_messages (topic text NOT NULL, message_id text NOT "
                   "NULL, processed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (topic, "
                   "message_id));"
                   "CREATE TABLE svc2.processed_messages (LIKE svc.processed_messages INCLUDING "
                   "ALL);"
                   "CREATE TABLE svc.effects (seq bigserial PRIMARY KEY, message_id text NOT NULL, "
                   "prio text NOT NULL)");
    char err[UTIL_ERRLEN];
    pool = db_pool_new(db_url, 8, err, sizeof err);
    assert_non_null(pool);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_pool_free(pool);
    PQfinish(pg);
    redisFree(rc);
    return 0;
}

static void publish(const char *id, bus_priority p, int prio_tag)
{
    cJSON *payload = cJSON_CreateObject();
    cJSON_AddStringToObject(payload, "prio", bus_priority_name(p));
    (void)prio_tag;
    envelope *e = envelope_new(id, "test.event", "tests", NULL, payload);
    assert_non_null(e);
    char err[UTIL_ERRLEN];
    assert_int_equal(bus_publish(rc, TOPIC, p, e, 0, err, sizeof err), 0);
    envelope_free(e);
}

static bus_consumer *consumer(const char *group, const char *schema, const char *name, hctx *h,
                              int batch, int k)
{
    bus_consumer_cfg cfg = {.redis_url = th_redis_url(),
                            .topic = TOPIC,
                            .group = group,
                            .consumer = name,
                            .schema = schema,
                            .db = pool,
                            .handler = handler,
                            .ud = h,
                            .batch = batch,
                            .block_ms = 50,
                            .starvation_k = k,
                            .visibility_ms = 400,
                            .max_attempts = 3,
                            .backoff_base_ms = 200,
                            .backoff_max_ms = 2000,
                            .retain = 1000};
    char err[UTIL_ERRLEN];
    bus_consumer *c = bus_consumer_new(&cfg, err, sizeof err);
    if (!c)
        fprintf(stderr, "bus_consumer_new: %s\n", err);
    assert_non_null(c);
    return c;
}

/* Polls until `want` effects exist or the deadline passes. */
static long long drain(bus_consumer *c, long long want, int64_t max_ms)
{
    int64_t end = util_mono_ms() + max_ms;
    long long n = 0;
    while (util_mono_ms() < end) {
        char err[UTIL_ERRLEN];
        int got = bus_consumer_poll(c, err, sizeof err);
        if (got < 0)
            fprintf(stderr, "poll: %s\n", err);
        n = th_pg_scalar(pg, "SELECT count(*) FROM svc.effects");
        if (n >= want && got == 0)
            break;
    }
    return n;
}

static void reset(void)
{
    redisReply *r = redisCommand(rc, "FLUSHALL");
    freeReplyObject(r);
    th_pg_exec(pg, "TRUNCATE svc.effects, svc.processed_messages, svc2.processed_messages");
}

static void test_each_message_once(void **state)
{
    (void)state;
    reset();
    hctx h = {0};
    bus_consumer *c = consumer("svc", "svc", "c1", &h, 16, 8);
    char id[32];
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "m-%d", i);
        publish(id, BUS_NORMAL, 0);
    }
    assert_int_equal(drain(c, 50, 5000), 50);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(DISTINCT message_id) FROM svc.effects"), 50);
    bus_depth d;
    char err[UTIL_ERRLEN];
    assert_int_equal(bus_depth_get(rc, TOPIC, "svc", &d, err, sizeof err), 0);
    assert_int_equal(d.pending[BUS_NORMAL], 0);
    assert_int_equal(d.lag[BUS_NORMAL], 0);
    bus_consumer_free(c);
}

static void test_duplicate_has_one_effect(void **state)
{
    (void)state;
    reset();
    hctx h = {0};
    bus_consumer *c = consumer("svc", "svc", "c1", &h, 16, 8);
    publish("dup-1", BUS_HIGH, 0);
    publish("dup-1", BUS_HIGH, 0); /* same envelope id: a re-publish after a crash */
    drain(c, 1, 1000);
    publish("dup-1", BUS_NORMAL, 0); /* and once more, in a later batch */
    drain(c, 1, 1000);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM svc.effects"), 1);
    bus_stats st;
    bus_consumer_stats(c, &st);
    assert_int_equal(st.handled, 1);
    assert_int_equal(st.duplicates, 2);
    bus_consumer_free(c);
}

static void test_strict_priority(void **state)
{
    (void)state;
    reset();
    hctx h = {0};
    bus_consumer *c = consumer("svc", "svc", "c1", &h, 10, 100);
    char id[32];
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "n-%d", i);
        publish(id, BUS_NORMAL, 0);
        snprintf(id, sizeof id, "h-%d", i);
        publish(id, BUS_HIGH, 0);
        snprintf(id, sizeof id, "c-%d", i);
        publish(id, BUS_CRITICAL, 0);
    }
    assert_int_equal(drain(c, 90, 5000), 90);
    /* Every critical before every high before every normal. */
    assert_true(th_pg_scalar(pg, "SELECT max(seq) FROM svc.effects WHERE prio='critical'") <
                th_pg_scalar(pg, "SELECT min(seq) FROM svc.effects WHERE prio='high'"));
    assert_true(th_pg_scalar(pg, "SELECT max(seq) FROM svc.effects WHERE prio='high'") <
                th_pg_scalar(pg, "SELECT min(seq) FROM svc.effects WHERE prio='normal'"));
    bus_consumer_free(c);
}

static void test_no_starvation(void **state)
{
    (void)state;
    reset();
    hctx h = {0};
    bus_consumer *c = consumer("svc", "svc", "c1", &h, 10, 4);
    char id[32];
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "c-%d", i);
        publish(id, BUS_CRITICAL, 0);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "h-%d", i);
        publish(id, BUS_HIGH, 0);
        snprintf(id, sizeof id, "n-%d", i);
        publish(id, BUS_NORMAL, 0);
    }
    assert_int_equal(drain(c, 340, 10000), 340);
    long long last_crit =
        th_pg_scalar(pg, "SELECT max(seq) FROM svc.effects WHERE prio='critical'");
    long long first_normal =
        th_pg_scalar(pg, "SELECT min(seq) FROM svc.effects WHERE prio='normal'");
    long long first_high = th_pg_scalar(pg, "SELECT min(seq) FROM svc.effects WHERE prio='high'");
    long long first = th_pg_scalar(pg, "SELECT min(seq) FROM svc.effects");
    /* Lower priorities got batches while critical was still busy... */
    assert_true(first_normal < last_crit);
    assert_true(first_high < last_crit);
    /* ...but critical still went first and dominated. */
    assert_true(th_pg_scalar(pg, "SELECT count(*) FROM (SELECT prio FROM svc.effects ORDER BY seq "
                                 "LIMIT 40) x WHERE prio='critical'") == 40);
    assert_true(first < first_high);
    bus_consumer_free(c);
}

static void test_many_consumers_share_work(void **state)
{
    (void)state;
    reset();
    hctx h[4] = {{0}};
    bus_consumer *cs[4];
    char name[16], id[32];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "w%d", i);
        cs[i] = consumer("svc", "svc", name, &h[i], 8, 8);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "w-%d", i);
        publish(id, BUS_NORMAL, 0);
    }
    int64_t end = util_mono_ms() + 5000;
    while (util_mono_ms() < end && th_pg_scalar(pg, "SELECT count(*) FROM svc.effects") < 200)
        for (int i = 0; i < 4; i++) {
            char err[UTIL_ERRLEN];
            bus_consumer_poll(cs[i], err, sizeof err);
        }
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM svc.effects"), 200);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(DISTINCT message_id) FROM svc.effects"), 200);
    int busy = 0;
    for (int i = 0; i < 4; i++) {
        busy += h[i].calls > 0;
        bus_consumer_free(cs[i]);
    }
    assert_true(busy >= 2);
}

/* A consumer process dies by SIGKILL in the middle of a batch; another consumer of the
 * group takes its pending entries over after the visibility timeout and handles each once. */
static void test_sigkill_mid_batch(void **state)
{
    (void)state;
    reset();
    char id[32];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "k-%d", i);
        publish(id, BUS_NORMAL, 0);
    }
    char marker[512];
    snprintf(marker, sizeof marker, "%s/bus_hang_%d", getenv("PAIMON_TEST_RUN_DIR"), getpid());
    unlink(marker);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[UTIL_ERRLEN];
        db_pool *p2 = db_pool_new(db_url, 2, err, sizeof err);
        hctx hc = {.hang_marker = marker, .hang_after = 5};
        bus_consumer_cfg cfg = {.redis_url = th_redis_url(),
                                .topic = TOPIC,
                                .group = "svc",
                                .consumer = "doomed",
                                .schema = "svc",
                                .db = p2,
                                .handler = handler,
                                .ud = &hc,
                                .batch = 25,
                                .block_ms = 50};
        bus_consumer *c = bus_consumer_new(&cfg, err, sizeof err);
        if (!c)
            _exit(3);
        for (;;)
            bus_consumer_poll(c, err, sizeof err);
    }
    int64_t end = util_mono_ms() + 5000;
    while (access(marker, F_OK) != 0 && util_mono_ms() < end)
        util_sleep_ms(10);
    assert_int_equal(access(marker, F_OK), 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(marker);
    /* The child's open transaction died with it: nothing of its batch is visible. */
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM svc.effects"), 0);

    hctx h = {0};
    bus_consumer *c = consumer("svc", "svc", "survivor", &h, 25, 8);
    assert_int_equal(drain(c, 40, 8000), 40);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(DISTINCT message_id) FROM svc.effects"), 40);
    bus_stats st;
    bus_consumer_stats(c, &st);
    assert_true(st.claimed >= 25); /* the doomed consumer's batch came back through XAUTOCLAIM */
    bus_depth d;
    char err[UTIL_ERRLEN];
    assert_int_equal(bus_depth_get(rc, TOPIC, "svc", &d, err, sizeof err), 0);
    assert_int_equal(d.pending[BUS_NORMAL], 0);
    bus_consumer_free(c);
}

static void test_backoff_timing(void **state)
{
    (void)state;
    reset();
    hctx h = {.fail_until_attempt = 2};
    bus_consumer *c = consumer("svc", "svc", "c1", &h, 10, 8);
    publish("retry-1", BUS_HIGH, 0);
    assert_int_equal(drain(c, 1, 5000), 1);
    assert_int_equal(h.nattempts, 3);
    int64_t gap1 = h.attempt_ms[1] - h.attempt_ms[0];
    int64_t gap2 = h.attempt_ms[2] - h.attempt_ms[1];
    /* base 200 ms, equal jitter: attempt n waits in [base*2^n/2, base*2^n] (+ polling slack). */
    assert_true(gap1 >= 100 && gap1 <= 200 + 250);
    assert_true(gap2 >= 200 && gap2 <= 400 + 250);
    bus_stats st;
    bus_consumer_stats(c, &st);
    assert_int_equal(st.retried, 2);
    assert_int_equal(st.handled, 1);
    bus_consumer_free(c);
}

static long long xlen(const char *key)
{
    redisReply *r = redisCommand(rc, "XLEN %s", key);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static void test_dlq_then_replay(void **state)
{
    (void)state;
    reset();
    hctx h = {.fail_until_attempt = 100};
    bus_consumer *c = consumer("svc", "svc", "c1", &h, 10, 8);
    publish("doomed-1", BUS_NORMAL, 0);
    int64_t end = util_mono_ms() + 5000;
    while (xlen(BUS_DLQ_KEY) == 0 && util_mono_ms() < end) {
        char err[UTIL_ERRLEN];
        bus_consumer_poll(c, err, sizeof err);
    }
    assert_int_equal(xlen(BUS_DLQ_KEY), 1);
    assert_int_equal(h.calls, 3); /* max_attempts */
    redisReply *r = redisCommand(rc, "XRANGE %s - +", BUS_DLQ_KEY);
    assert_int_equal(r->elements, 1);
    const redisReply *f = r->element[0]->element[1];
    char dlq_id[64];
    util_strlcpy(dlq_id, r->element[0]->element[0]->str, sizeof dlq_id);
    int saw_error = 0, saw_attempts = 0;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        if (strcmp(f->element[i]->str, "error") == 0)
            saw_error = strstr(f->element[i + 1]->str, "dependency down") != NULL;
        if (strcmp(f->element[i]->str, "attempts") == 0)
            saw_attempts = strcmp(f->element[i + 1]->str, "3") == 0;
    }
    freeReplyObject(r);
    assert_true(saw_error);
    assert_true(saw_attempts);
    assert_int_equal(xlen("paimon:alerts:high"), 1); /* an alert was raised... */
    r = redisCommand(rc, "XRANGE paimon:alerts:high - +");
    const redisReply *af = r->element[0]->element[1];
    envelope *alert = NULL;
    char why[UTIL_ERRLEN];
    assert_int_equal(
        envelope_parse(af->element[1]->str, af->element[1]->len, &alert, why, sizeof why), 0);
    assert_string_equal(alert->type, "alert.raised"); /* ...that matches its own schema */
    const jsonschema *as = jsonschema_embedded("alert.raised", why, sizeof why);
    assert_non_null(as);
    assert_int_equal(jsonschema_validate(as, alert->payload, why, sizeof why), 0);
    envelope_free(alert);
    freeReplyObject(r);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM svc.effects"), 0);

    /* The dependency is back: replay once, it is handled once; replaying again is a no-op. */
    h.fail_until_attempt = 0;
    char err[UTIL_ERRLEN];
    assert_int_equal(bus_dlq_replay(rc, dlq_id, err, sizeof err), 1);
    assert_int_equal(bus_dlq_replay(rc, dlq_id, err, sizeof err), 0);
    assert_int_equal(xlen(BUS_DLQ_KEY), 0);
    assert_int_equal(drain(c, 1, 3000), 1);
    assert_int_equal(bus_dlq_replay(rc, "not-an-id", err, sizeof err), -1);
    bus_consumer_free(c);
}

static void test_fatal_and_malformed_go_to_dlq(void **state)
{
    (void)state;
    reset();
    hctx h = {.fatal = 1};
    bus_consumer *c = consumer("svc", "svc", "c1", &h, 10, 8);
    publish("fatal-1", BUS_NORMAL, 0);
    redisReply *r = redisCommand(rc, "XADD paimon:" TOPIC ":normal * env %s", "{\"id\":1}");
    freeReplyObject(r);
    r = redisCommand(rc, "XADD paimon:" TOPIC ":normal * env %s", "not json at all");
    freeReplyObject(r);
    r = redisCommand(rc, "XADD paimon:" TOPIC ":normal * other field");
    freeReplyObject(r);
    /* A valid envelope whose payload breaks its type's schema (alert.raised). */
    cJSON *bad = cJSON_CreateObject();
    cJSON_AddStringToObject(bad, "severity", "apocalyptic");
    cJSON_AddStringToObject(bad, "category", "bus");
    cJSON_AddStringToObject(bad, "title", "x");
    envelope *e = envelope_new("bad-alert-1", "alert.raised", "tests", NULL, bad);
    char err[UTIL_ERRLEN];
    assert_int_equal(bus_publish(rc, TOPIC, BUS_NORMAL, e, 0, err, sizeof err), 0);
    envelope_free(e);
    drain(c, 0, 300);
    assert_int_equal(h.calls, 1); /* only the well-formed one reached the handler, once */
    assert_int_equal(xlen(BUS_DLQ_KEY), 5);
    r = redisCommand(rc, "XRANGE %s - +", BUS_DLQ_KEY);
    int invalid = 0;
    for (size_t e = 0; e < r->elements; e++) {
        const redisReply *f = r->element[e]->element[1];
        for (size_t i = 0; i + 1 < f->elements; i += 2)
            if (strcmp(f->element[i]->str, "error") == 0 &&
                (strstr(f->element[i + 1]->str, "invalid envelope") ||
                 strstr(f->element[i + 1]->str, "no env field") ||
                 strstr(f->element[i + 1]->str, "payload does not match schema alert.raised")))
                invalid++;
    }
    freeReplyObject(r);
    assert_int_equal(invalid, 4);
    bus_depth d;
    assert_int_equal(bus_depth_get(rc, TOPIC, "svc", &d, err, sizeof err), 0);
    assert_int_equal(d.pending[BUS_NORMAL], 0);
    bus_consumer_free(c);
}

/* Two services consume the topic; only one fails. Its retry copy must not be handled
 * again by the other group. */
static void test_retry_is_per_group(void **state)
{
    (void)state;
    reset();
    hctx ha = {.fail_until_attempt = 1}, hb = {0};
    bus_consumer *a = consumer("svc", "svc", "a1", &ha, 10, 8);
    bus_consumer *b = consumer("svc2", "svc2", "b1", &hb, 10, 8);
    publish("fan-1", BUS_NORMAL, 0);
    int64_t end = util_mono_ms() + 3000;
    while (util_mono_ms() < end) {
        char err[UTIL_ERRLEN];
        bus_consumer_poll(a, err, sizeof err);
        bus_consumer_poll(b, err, sizeof err);
    }
    assert_int_equal(ha.calls, 2);
    assert_int_equal(hb.calls, 1);
    bus_stats sb;
    bus_consumer_stats(b, &sb);
    assert_int_equal(sb.foreign, 1);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM svc2.processed_messages"), 1);
    bus_consumer_free(a);
    bus_consumer_free(b);
}

static void test_trim_keeps_pending(void **state)
{
    (void)state;
    reset();
    hctx h = {0};
    bus_consumer *c = consumer("svc", "svc", "c1", &h, 10, 8);
    char id[32];
    for (int i = 0; i < 60; i++) {
        snprintf(id, sizeof id, "tr-%d", i);
        publish(id, BUS_NORMAL, 0);
    }
    /* Another consumer reads 30 and never acks. */
    redisReply *r =
        redisCommand(rc, "XREADGROUP GROUP svc stuck COUNT 30 STREAMS paimon:" TOPIC ":normal >");
    freeReplyObject(r);
    char err[UTIL_ERRLEN];
    assert_int_equal(bus_trim(rc, TOPIC, 10, err, sizeof err), 0);
    assert_int_equal(xlen("paimon:" TOPIC ":normal"), 60); /* pending + undelivered all kept */
    bus_consumer_free(c);
    c = consumer("svc", "svc", "c2", &h, 10, 8);
    while (th_pg_scalar(pg, "SELECT count(*) FROM svc.effects") < 30) {
        bus_consumer_poll(c, err, sizeof err);
    }
    /* The stuck consumer's 30 are still pending: trimming may drop nothing before them. */
    assert_int_equal(bus_trim(rc, TOPIC, 10, err, sizeof err), 0);
    assert_int_equal(xlen("paimon:" TOPIC ":normal"), 60);
    r = redisCommand(rc, "XGROUP DELCONSUMER paimon:" TOPIC ":normal svc stuck");
    freeReplyObject(r); /* drops its pending entries: now everything is consumed */
    assert_int_equal(bus_trim(rc, TOPIC, 10, err, sizeof err), 0);
    assert_int_equal(xlen("paimon:" TOPIC ":normal"), 0);
    bus_consumer_free(c);
}

static void run_batch_case(int name_culprit)
{
    reset();
    hctx h = {.fatal = name_culprit};
    bus_consumer_cfg cfg = {.redis_url = th_redis_url(),
                            .topic = TOPIC,
                            .group = "svc",
                            .consumer = "b1",
                            .schema = "svc",
                            .db = pool,
                            .batch_handler = batch_handler,
                            .ud = &h,
                            .batch = 50,
                            .block_ms = 50,
                            .max_attempts = 2,
                            .backoff_base_ms = 50};
    char err[UTIL_ERRLEN];
    bus_consumer *c = bus_consumer_new(&cfg, err, sizeof err);
    assert_non_null(c);
    for (int i = 0; i < 20; i++) {
        cJSON *p = cJSON_CreateObject();
        if (i == 7)
            cJSON_AddTrueToObject(p, "bad");
        char id[32];
        snprintf(id, sizeof id, "bh-%d", i);
        envelope *e = envelope_new(id, "test.event", "tests", NULL, p);
        assert_int_equal(bus_publish(rc, TOPIC, BUS_NORMAL, e, 0, err, sizeof err), 0);
        envelope_free(e);
    }
    int64_t end = util_mono_ms() + 3000;
    while (xlen(BUS_DLQ_KEY) == 0 && util_mono_ms() < end)
        bus_consumer_poll(c, err, sizeof err);
    /* The 19 good ones committed exactly once; the bad one alone went through its
     * attempts to the DLQ. */
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM svc.effects"), 19);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(DISTINCT message_id) FROM svc.effects"), 19);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM svc.effects WHERE message_id='bh-7'"),
                     0);
    assert_int_equal(xlen(BUS_DLQ_KEY), 1);
    bus_stats st;
    bus_consumer_stats(c, &st);
    assert_int_equal(st.handled, 19);
    assert_int_equal(st.dead, 1);
    if (name_culprit)
        assert_true(h.calls <= 4); /* batch, batch without the culprit, 1 retry */
    bus_consumer_free(c);
}

static void test_batch_handler_named_culprit(void **state)
{
    (void)state;
    run_batch_case(1);
}

static void test_batch_handler_unknown_culprit(void **state)
{
    (void)state;
    run_batch_case(0);
}

static void test_config_needs_exactly_one_handler(void **state)
{
    (void)state;
    hctx h = {0};
    bus_consumer_cfg cfg = {.redis_url = th_redis_url(),
                            .topic = TOPIC,
                            .group = "svc",
                            .consumer = "x",
                            .schema = "svc",
                            .db = pool,
                            .handler = handler,
                            .batch_handler = batch_handler,
                            .ud = &h};
    char err[UTIL_ERRLEN];
    assert_null(bus_consumer_new(&cfg, err, sizeof err));
    cfg.handler = NULL;
    cfg.batch_handler = NULL;
    assert_null(bus_consumer_new(&cfg, err, sizeof err));
    cfg.handler = handler;
    cfg.topic = "bad topic!";
    assert_null(bus_consumer_new(&cfg, err, sizeof err));
    cfg.topic = TOPIC;
    cfg.schema = "svc; DROP";
    assert_null(bus_consumer_new(&cfg, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_message_once),
        cmocka_unit_test(test_duplicate_has_one_effect),
        cmocka_unit_test(test_strict_priority),
        cmocka_unit_test(test_no_starvation),
        cmocka_unit_test(test_many_consumers_share_work),
        cmocka_unit_test(test_sigkill_mid_batch),
        cmocka_unit_test(test_backoff_timing),
        cmocka_unit_test(test_dlq_then_replay),
        cmocka_unit_test(test_fatal_and_malformed_go_to_dlq),
        cmocka_unit_test(test_retry_is_per_group),
        cmocka_unit_test(test_trim_keeps_pending),
        cmocka_unit_test(test_batch_handler_named_culprit),
        cmocka_unit_test(test_batch_handler_unknown_culprit),
        cmocka_unit_test(test_config_needs_exactly_one_handler),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
