/* notifier_bench: alerts from the stream to a local Slack-like receiver through the real
 * paimon-notifier daemon (child process), against real Redis and PostgreSQL.
 *
 *   notifier_bench <redis-url> <pg-admin-url> <paimon-notifier> <http-port> <recv-port>
 *                  <alerts> <latency-alerts> <latency-rate-per-s> <run-dir>
 *
 * Throughput: <alerts> critical alerts (distinct dedup keys) published as fast as
 * possible; alerts/s from the first publish to the receiver holding the last one.
 * Latency: <latency-alerts> critical alerts published at a paced rate; each carries its
 * publish time (CLOCK_MONOTONIC, shared by the processes of one machine) and the
 * receiver logs arrival; p50/p99 of publish -> receiver. Prints one JSON line each. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "bus.h"
#include "migrate.h"
#include "rconn.h"
#include "util.h"

static atomic_long received;
static int64_t *arrival_lat_us;
static long lat_cap;
static struct event_base *base;

static void on_req(struct evhttp_request *req, void *ud)
{
    (void)ud;
    int64_t now = util_mono_us();
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *b = malloc(len + 1);
    evbuffer_copyout(in, b, len);
    b[len] = '\0';
    const char *t = strstr(b, "lat-");
    if (t) {
        long idx = 0;
        long long sent = 0;
        if (sscanf(t, "lat-%ld-%lld", &idx, &sent) == 2 && idx >= 0 && idx < lat_cap &&
            arrival_lat_us[idx] == 0)
            arrival_lat_us[idx] = now - sent;
    }
    free(b);
    atomic_fetch_add(&received, 1);
    struct evbuffer *o = evbuffer_new();
    evbuffer_add(o, "ok", 2);
    evhttp_send_reply(req, 200, "OK", o);
    evbuffer_free(o);
}

static void *loop(void *a)
{
    (void)a;
    event_base_dispatch(base);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void publish(redisContext *rc, const char *id, const char *title)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "severity", "critical");
    cJSON_AddStringToObject(p, "category", "bench");
    cJSON_AddStringToObject(p, "title", title);
    cJSON_AddStringToObject(p, "dedup_key", id);
    envelope *e = envelope_new(id, "alert.raised", "bench", NULL, p);
    char err[UTIL_ERRLEN];
    if (bus_publish(rc, "alerts", BUS_CRITICAL, e, 0, err, sizeof err) != 0)
        fprintf(stderr, "publish: %s\n", err);
    envelope_free(e);
}

static int wait_received(long want, int64_t timeout_ms)
{
    int64_t end = util_mono_ms() + timeout_ms;
    while (atomic_load(&received) < want && util_mono_ms() < end)
        util_sleep_ms(1);
    return atomic_load(&received) >= want ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: notifier_bench redis pg-admin bin http-port recv-port alerts "
                        "lat-alerts lat-rate run-dir\n");
        return 2;
    }
    const char *redis_url = argv[1], *pg_admin = argv[2], *bin = argv[3], *run_dir = argv[9];
    int http_port = atoi(argv[4]), recv_port = atoi(argv[5]);
    long n = atol(argv[6]), nlat = atol(argv[7]), rate = atol(argv[8]);
    char err[UTIL_ERRLEN];

    /* fresh database with the notifier schema */
    PGconn *admin = PQconnectdb(pg_admin);
    if (PQstatus(admin) != CONNECTION_OK) {
        fprintf(stderr, "pg: %s", PQerrorMessage(admin));
        return 1;
    }
    PQclear(PQexec(admin, "DROP DATABASE IF EXISTS notifier_bench WITH (FORCE)"));
    PQclear(PQexec(admin, "CREATE DATABASE notifier_bench"));
    PQfinish(admin);
    char db[512];
    snprintf(db, sizeof db, "%.*s/notifier_bench", (int)(strrchr(pg_admin, '/') - pg_admin),
             pg_admin);
    PGconn *pg = PQconnectdb(db);
    const char *only[] = {"notifier"};
    char mig[600];
    snprintf(mig, sizeof mig, "%s/migrations", getenv("PAIMON_REPO") ? getenv("PAIMON_REPO") : ".");
    migrate_set *ms = migrate_set_load(mig, only, 1, err, sizeof err);
    if (!ms || migrate_up(pg, ms, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return 1;
    }
    migrate_set_free(ms);
    PQclear(PQexec(pg, "UPDATE notifier.channels SET config = '{\"min_interval_ms\": 0}' WHERE "
                       "id = 'ops-slack'"));
    PQfinish(pg);
    redisContext *rc = rconn_connect(redis_url, 5000, err, sizeof err);
    if (!rc) {
        fprintf(stderr, "redis: %s\n", err);
        return 1;
    }
    redisReply *r = redisCommand(rc, "FLUSHALL");
    freeReplyObject(r);

    /* receiver */
    lat_cap = nlat;
    arrival_lat_us = calloc((size_t)nlat + 1, sizeof *arrival_lat_us);
    evthread_use_pthreads();
    base = event_base_new();
    struct evhttp *h = evhttp_new(base);
    evhttp_set_gencb(h, on_req, NULL);
    if (evhttp_bind_socket(h, "127.0.0.1", (ev_uint16_t)recv_port) != 0) {
        fprintf(stderr, "cannot bind receiver\n");
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, loop, NULL);

    /* daemon */
    char port[16], slack[128], log[600];
    snprintf(port, sizeof port, "%d", http_port);
    snprintf(slack, sizeof slack, "http://127.0.0.1:%d/slack", recv_port);
    snprintf(log, sizeof log, "%s/notifier-bench-daemon.log", run_dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        for (int f = 3; f < 1024; f++)
            close(f);
        setenv("PAIMON_REDIS_URL", redis_url, 1);
        setenv("PAIMON_DATABASE_URL", db, 1);
        setenv("PAIMON_HTTP_PORT", port, 1);
        setenv("PAIMON_SLACK_WEBHOOK_URL", slack, 1);
        setenv("PAIMON_LOG_LEVEL", "warn", 1);
        execl(bin, "paimon-notifier", (char *)NULL);
        _exit(127);
    }
    util_sleep_ms(1500); /* consumer groups created, workers listening */

    /* throughput */
    int64_t t0 = util_mono_us();
    for (long i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "tp-%ld", i);
        publish(rc, id, "bench throughput");
    }
    int ok = wait_received(n, 120000);
    double secs = (double)(util_mono_us() - t0) / 1e6;
    printf("{\"bench\":\"notifier_throughput\",\"alerts\":%ld,\"delivered\":%ld,"
           "\"seconds\":%.3f,\"alerts_per_s\":%.0f}\n",
           n, atomic_load(&received), secs, ok == 0 ? (double)n / secs : 0.0);
    fflush(stdout);

    /* latency, paced */
    long base_count = atomic_load(&received);
    int64_t gap_us = rate > 0 ? 1000000 / rate : 0;
    int64_t next = util_mono_us();
    for (long i = 0; i < nlat; i++) {
        while (util_mono_us() < next)
            util_sleep_ms(1);
        char id[32], title[96];
        snprintf(id, sizeof id, "lat-%ld", i);
        snprintf(title, sizeof title, "lat-%ld-%lld", i, (long long)util_mono_us());
        publish(rc, id, title);
        next += gap_us;
    }
    wait_received(base_count + nlat, 30000);
    int64_t *v = calloc((size_t)nlat + 1, sizeof *v);
    long m = 0;
    for (long i = 0; i < nlat; i++)
        if (arrival_lat_us[i] > 0)
            v[m++] = arrival_lat_us[i];
    qsort(v, (size_t)m, sizeof *v, cmp);
    printf("{\"bench\":\"notifier_latency\",\"alerts\":%ld,\"delivered\":%ld,\"rate\":%ld,"
           "\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f}\n",
           nlat, m, rate, m ? v[m / 2] / 1000.0 : 0, m ? v[(m * 99) / 100] / 1000.0 : 0,
           m ? v[m - 1] / 1000.0 : 0);
    free(v);

    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    event_base_loopbreak(base);
    pthread_join(th, NULL);
    evhttp_free(h);
    event_base_free(base);
    free(arrival_lat_us);
    redisFree(rc);
    return ok == 0 ? 0 : 1;
}
