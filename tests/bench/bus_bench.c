/* bus_bench: end-to-end bus throughput and latency against real Redis and PostgreSQL.
 *
 * publish -> XREADGROUP -> handler inserts a row in PostgreSQL inside the batch
 * transaction with the processed-message mark -> COMMIT -> XACK.
 *
 *   bus_bench <redis-url> <pg-url> <messages> <consumers> [rate_per_s] [batch]
 *
 * "batch" uses the bus's batch handler (one multi-row INSERT per batch) instead of
 * one INSERT per message: the same rows, fewer round trips.
 *
 * rate 0 (default): publish everything as fast as possible while the consumers run:
 * reports messages/s from the first publish to the last ack. rate > 0: paced
 * publishing, reports latency percentiles at that load. Latency is measured from
 * just before XADD to just after the XACK of the batch holding the message. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bus.h"
#include "rconn.h"
#include "util.h"

static const char *redis_url, *pg_url;
static long total;
static atomic_long done_count;
static atomic_int stop_flag;
static int64_t *lat_us; /* per message index */

typedef struct worker {
    int idx;
    db_pool *pool;
    int64_t pend_idx[1024];
    int npend;
} worker;

static int handler(db_conn *tx, const envelope *m, void *ud, char *err, size_t errlen)
{
    worker *w = ud;
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(m->payload, "i");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(m->payload, "t");
    if (!cJSON_IsNumber(i) || !cJSON_IsNumber(t))
        return util_err(err, errlen, "bad payload"), BUS_FATAL;
    const char *params[2] = {m->id, cJSON_GetStringValue(cJSON_GetObjectItem(m->payload, "a"))};
    PGresult *r = db_query_prepared(tx, "bench_insert",
                                    "INSERT INTO bench.effects (message_id, amount) "
                                    "VALUES ($1, $2::numeric)",
                                    2, params, err, errlen);
    if (!r)
        return BUS_RETRY;
    PQclear(r);
    if (w->npend < 1024)
        w->pend_idx[w->npend++] = (int64_t)i->valuedouble;
    return BUS_OK;
}

static int batch_handler(db_conn *tx, const envelope *const *msgs, size_t n, void *ud,
                         size_t *failed, char *err, size_t errlen)
{
    worker *w = ud;
    (void)failed;
    cJSON *ids = cJSON_CreateArray(), *amounts = cJSON_CreateArray();
    for (size_t k = 0; k < n; k++) {
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(msgs[k]->payload, "i");
        const char *a = cJSON_GetStringValue(cJSON_GetObjectItem(msgs[k]->payload, "a"));
        if (!cJSON_IsNumber(i) || !a) {
            cJSON_Delete(ids);
            cJSON_Delete(amounts);
            *failed = k;
            return util_err(err, errlen, "bad payload"), BUS_FATAL;
        }
        cJSON_AddItemToArray(ids, cJSON_CreateString(msgs[k]->id));
        cJSON_AddItemToArray(amounts, cJSON_CreateString(a));
        if (w->npend < 1024)
            w->pend_idx[w->npend++] = (int64_t)i->valuedouble;
    }
    char *j1 = cJSON_PrintUnformatted(ids), *j2 = cJSON_PrintUnformatted(amounts);
    cJSON_Delete(ids);
    cJSON_Delete(amounts);
    const char *params[2] = {j1, j2};
    PGresult *r = db_query_prepared(
        tx, "bench_insert_many",
        "INSERT INTO bench.effects (message_id, amount) SELECT m, a::numeric FROM "
        "unnest(ARRAY(SELECT json_array_elements_text($1::json)), "
        "ARRAY(SELECT json_array_elements_text($2::json))) AS t(m, a)",
        2, params, err, errlen);
    free(j1);
    free(j2);
    if (!r) {
        w->npend = 0;
        return BUS_RETRY;
    }
    PQclear(r);
    return BUS_OK;
}

static int use_batch;

static void *consume(void *arg)
{
    worker *w = arg;
    char name[32], err[UTIL_ERRLEN];
    snprintf(name, sizeof name, "bench-%d", w->idx);
    bus_consumer_cfg cfg = {.redis_url = redis_url,
                            .topic = "bench",
                            .group = "bench",
                            .consumer = name,
                            .schema = "bench",
                            .db = w->pool,
                            .handler = use_batch ? NULL : handler,
                            .batch_handler = use_batch ? batch_handler : NULL,
                            .ud = w,
                            .batch = 200,
                            .block_ms = 100};
    bus_consumer *c = bus_consumer_new(&cfg, err, sizeof err);
    if (!c) {
        fprintf(stderr, "consumer: %s\n", err);
        exit(1);
    }
    while (!atomic_load(&stop_flag)) {
        w->npend = 0;
        int got = bus_consumer_poll(c, err, sizeof err);
        if (got < 0)
            fprintf(stderr, "poll: %s\n", err);
        int64_t now = util_mono_us();
        for (int k = 0; k < w->npend; k++)
            if (w->pend_idx[k] >= 0 && w->pend_idx[k] < total)
                lat_us[w->pend_idx[k]] = now - lat_us[w->pend_idx[k]];
        atomic_fetch_add(&done_count, w->npend);
    }
    bus_consumer_free(c);
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bus_bench redis-url pg-url messages consumers [rate]\n");
        return 2;
    }
    redis_url = argv[1];
    pg_url = argv[2];
    total = atol(argv[3]);
    int nc = atoi(argv[4]);
    long rate = argc > 5 ? atol(argv[5]) : 0;
    use_batch = argc > 6 && strcmp(argv[6], "batch") == 0;
    if (total <= 0 || nc <= 0 || nc > 64)
        return 2;
    char err[UTIL_ERRLEN];
    redisContext *rc = rconn_connect(redis_url, 5000, err, sizeof err);
    if (!rc) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    freeReplyObject(redisCommand(rc, "DEL paimon:bench:critical paimon:bench:high "
                                     "paimon:bench:normal paimon:bench:delayed:bench"));
    db_pool *pool = db_pool_new(pg_url, nc + 1, err, sizeof err);
    if (!pool) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    db_conn *c = db_acquire(pool, 5000, err, sizeof err);
    if (db_exec(c,
                "DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench;"
                "CREATE TABLE bench.processed_messages (topic text NOT NULL, message_id text NOT "
                "NULL, processed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (topic, "
                "message_id));"
                "CREATE TABLE bench.effects (message_id text PRIMARY KEY, amount numeric(78,0) "
                "NOT NULL)",
                err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    db_release(pool, c);
    lat_us = util_calloc((size_t)total, sizeof *lat_us);

    worker *ws = util_calloc((size_t)nc, sizeof *ws);
    pthread_t *th = util_calloc((size_t)nc, sizeof *th);
    for (int i = 0; i < nc; i++) {
        ws[i].idx = i;
        ws[i].pool = pool;
    }
    for (int i = 0; i < nc; i++)
        pthread_create(&th[i], NULL, consume, &ws[i]);
    util_sleep_ms(200); /* consumer groups exist before the first publish */

    /* Paced runs publish one at a time; throughput runs publish in pipelined batches of
     * 100, as a producer does after committing a batch of its own. */
    enum { PUB_BATCH = 100 };
    envelope *batch[PUB_BATCH];
    bus_priority prios[PUB_BATCH];
    int64_t t0 = util_mono_us();
    for (long i = 0; i < total;) {
        long n = rate > 0 ? 1 : (total - i < PUB_BATCH ? total - i : PUB_BATCH);
        if (rate > 0) {
            int64_t due = t0 + i * 1000000 / rate;
            while (util_mono_us() < due)
                ;
        }
        for (long k = 0; k < n; k++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddNumberToObject(p, "i", (double)(i + k));
            cJSON_AddNumberToObject(p, "t", 0);
            cJSON_AddStringToObject(p, "a", "1000000000000000000");
            char id[32];
            snprintf(id, sizeof id, "b-%ld", i + k);
            batch[k] = envelope_new(id, "bench.event", "bench", "trace", p);
            prios[k] = BUS_NORMAL;
            lat_us[i + k] = util_mono_us();
        }
        size_t done = 0;
        if (bus_publish_many(rc, "bench", prios, batch, (size_t)n, &done, err, sizeof err) != 0) {
            fprintf(stderr, "publish: %s\n", err);
            return 1;
        }
        for (long k = 0; k < n; k++)
            envelope_free(batch[k]);
        i += n;
    }
    int64_t t_pub = util_mono_us();
    while (atomic_load(&done_count) < total && util_mono_us() - t_pub < 120000000)
        util_sleep_ms(1);
    int64_t t1 = util_mono_us();
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < nc; i++)
        pthread_join(th[i], NULL);

    long n = atomic_load(&done_count);
    qsort(lat_us, (size_t)total, sizeof *lat_us, cmp64);
    double secs = (double)(t1 - t0) / 1e6;
    printf("{\"consumers\":%d,\"messages\":%ld,\"handled\":%ld,\"seconds\":%.3f,"
           "\"msgs_per_s\":%.0f,\"publish_per_s\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"rate\":%ld,\"handler\":\"%s\"}\n",
           nc, total, n, secs, (double)n / secs, (double)total * 1e6 / (double)(t_pub - t0),
           (double)lat_us[total / 2] / 1000.0, (double)lat_us[total * 99 / 100] / 1000.0, rate,
           use_batch ? "batch" : "per-message");
    free(lat_us);
    free(ws);
    free(th);
    db_pool_free(pool);
    redisFree(rc);
    return n == total ? 0 : 1;
}
