/* approval_bench: redemption events handled per second end to end by the real
 * paimon-approval daemon (stream -> redemption book tables -> ack), with <requests>
 * RedemptionRequested events queued on chain.events, against the bus's own no-op handler
 * draining the same queued entries in the same run.
 *
 *   approval_bench <redis-url> <pg-admin-url> <paimon-approval> <http-port> <devchain.json>
 *                  <requests> <consumers> <run-dir>
 *
 * Order, so that both figures see the same queue and neither competes with the other:
 *  1. fresh database `approval_bench` with the approval migrations, Redis flushed;
 *  2. the daemon starts (PAIMON_CONSUMERS=<consumers>) and reports ready, then is frozen
 *     with SIGSTOP so start-up is not timed;
 *  3. <requests> synthetic RedemptionRequested events (distinct request ids, as the
 *     listener shapes them) are queued: every 10th is above the 100K threshold (a ticket,
 *     on the high stream), the rest below it (auto-approved: booked, recorded and an
 *     approveRedemption queued in the outbox, on the normal stream);
 *  4. baseline: <consumers> bus consumers of a group of their own with a handler that
 *     does nothing (the bus still marks processed_messages, in a schema of its own,
 *     commits and XACKs) drain it;
 *  5. SIGCONT: timed until the daemon's group has nothing left (no lag, nothing pending)
 *     and the book holds every request.
 * The daemon's periodic jobs (outbox, SLA, settlement, forecast) are set to run rarely so
 * the figure is the stream path only. Prints one JSON line per measurement. */
#include <curl/curl.h>
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

#define TOPIC "chain.events"

static const char *redis_url, *db_url;
static long total;
static atomic_long noop_done;

static int noop(db_conn *tx, const envelope *m, void *ud, char *err, size_t errlen)
{
    (void)tx;
    (void)m;
    (void)ud;
    (void)err;
    (void)errlen;
    atomic_fetch_add(&noop_done, 1);
    return BUS_OK;
}

typedef struct noop_worker {
    int idx;
    db_pool *pool;
    int rc;
} noop_worker;

static void *noop_main(void *arg)
{
    noop_worker *w = arg;
    char name[32], err[UTIL_ERRLEN];
    snprintf(name, sizeof name, "noop-%d", w->idx);
    bus_consumer_cfg cfg = {.redis_url = redis_url,
                            .topic = TOPIC,
                            .group = "bench_noop",
                            .consumer = name,
                            .schema = "bench",
                            .db = w->pool,
                            .handler = noop,
                            .block_ms = 50};
    bus_consumer *c = bus_consumer_new(&cfg, err, sizeof err);
    if (!c) {
        fprintf(stderr, "noop consumer: %s\n", err);
        w->rc = -1;
        return NULL;
    }
    int64_t end = util_mono_ms() + 300000;
    while (atomic_load(&noop_done) < total && util_mono_ms() < end)
        if (bus_consumer_poll(c, err, sizeof err) < 0) {
            fprintf(stderr, "noop poll: %s\n", err);
            util_sleep_ms(10);
        }
    bus_consumer_free(c);
    return NULL;
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

static long http_get(int port, const char *path)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

static envelope *request_event(uint64_t chain_id, const char *vault, long i, int big)
{
    char rid[24], id[96], txh[67];
    snprintf(rid, sizeof rid, "%ld", 100000 + i);
    snprintf(txh, sizeof txh, "0x%064lx", 0xbe000000L + i);
    snprintf(id, sizeof id, "%llu:%s:0", (unsigned long long)chain_id, txh);
    const char *gross = big ? "300000000000000000000000" : "20000000000000000000000";
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "requestId", rid);
    cJSON_AddStringToObject(a, "controller", "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65");
    cJSON_AddStringToObject(a, "owner", "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65");
    cJSON_AddStringToObject(a, "channel", "0");
    cJSON_AddStringToObject(a, "shares", gross);
    cJSON_AddStringToObject(a, "grossAssets", gross);
    cJSON_AddStringToObject(a, "fee", "0");
    cJSON_AddStringToObject(a, "settleTime", "1767225600");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "chain_id", (double)chain_id);
    cJSON_AddStringToObject(p, "address", vault);
    cJSON_AddStringToObject(p, "event", "RedemptionRequested");
    cJSON_AddStringToObject(
        p, "signature",
        "RedemptionRequested(uint256,address,address,uint8,uint256,uint256,uint256,uint64)");
    cJSON_AddItemToObject(p, "args", a);
    cJSON_AddNumberToObject(p, "block_number", (double)(1000 + i));
    cJSON_AddStringToObject(p, "block_hash", txh);
    cJSON_AddStringToObject(p, "block_time", "2025-12-25T00:00:00.000Z");
    cJSON_AddStringToObject(p, "tx_hash", txh);
    cJSON_AddNumberToObject(p, "tx_index", 0);
    cJSON_AddNumberToObject(p, "log_index", 0);
    cJSON_AddBoolToObject(p, "removed", 0);
    return envelope_new(id, "chain.redemption_requested", "listener", NULL, p);
}

static int read_devchain(const char *path, uint64_t *chain_id, char vault[43], char key[67])
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *buf = util_malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    const char *v =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "contracts"), "vault"));
    const char *k = cJSON_GetStringValue(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "accounts"), "operator"), "privateKey"));
    cJSON *cid = cJSON_GetObjectItem(j, "chainId");
    int rc = (v && k && cJSON_IsNumber(cid)) ? 0 : -1;
    if (rc == 0) {
        util_strlcpy(vault, v, 43);
        util_strlcpy(key, k, 67);
        *chain_id = (uint64_t)cid->valuedouble;
    }
    cJSON_Delete(j);
    return rc;
}

static int drained(redisContext *rc, const char *group)
{
    bus_depth d;
    char err[UTIL_ERRLEN];
    if (bus_depth_get(rc, TOPIC, group, &d, err, sizeof err) != 0)
        return 0;
    for (int p = 0; p < BUS_NPRIO; p++)
        if (d.lag[p] != 0 || d.pending[p] != 0)
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: approval_bench redis pg-admin bin http-port devchain.json "
                        "requests consumers run-dir\n");
        return 2;
    }
    redis_url = argv[1];
    const char *pg_admin = argv[2], *bin = argv[3], *dc = argv[5], *run_dir = argv[8];
    int http_port = atoi(argv[4]);
    total = atol(argv[6]);
    int consumers = atoi(argv[7]);
    if (total < 1 || consumers < 1 || consumers > 16) {
        fprintf(stderr, "requests >= 1, consumers 1..16\n");
        return 2;
    }
    char err[UTIL_ERRLEN], vault[43], key[67];
    uint64_t chain_id = 0;
    if (read_devchain(dc, &chain_id, vault, key) != 0) {
        fprintf(stderr, "cannot read %s\n", dc);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);

    PGconn *admin = PQconnectdb(pg_admin);
    if (PQstatus(admin) != CONNECTION_OK) {
        fprintf(stderr, "pg: %s", PQerrorMessage(admin));
        return 1;
    }
    PQclear(PQexec(admin, "DROP DATABASE IF EXISTS approval_bench WITH (FORCE)"));
    PQclear(PQexec(admin, "CREATE DATABASE approval_bench"));
    PQfinish(admin);
    static char db[512];
    snprintf(db, sizeof db, "%.*s/approval_bench", (int)(strrchr(pg_admin, '/') - pg_admin),
             pg_admin);
    db_url = db;
    PGconn *pg = PQconnectdb(db);
    const char *only[] = {"approval"};
    char mig[600];
    snprintf(mig, sizeof mig, "%s/migrations", getenv("PAIMON_REPO") ? getenv("PAIMON_REPO") : ".");
    migrate_set *ms = migrate_set_load(mig, only, 1, err, sizeof err);
    if (!ms || migrate_up(pg, ms, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return 1;
    }
    migrate_set_free(ms);
    /* The baseline marks its own processed_messages: the guard is keyed by topic and
     * message id, so sharing the daemon's table would make every event a duplicate. */
    PGresult *cr = PQexec(pg, "CREATE SCHEMA bench; CREATE TABLE bench.processed_messages "
                              "(LIKE approval.processed_messages INCLUDING ALL)");
    if (PQresultStatus(cr) != PGRES_COMMAND_OK) {
        fprintf(stderr, "bench schema: %s", PQresultErrorMessage(cr));
        return 1;
    }
    PQclear(cr);
    redisContext *rc = rconn_connect(redis_url, 5000, err, sizeof err);
    if (!rc) {
        fprintf(stderr, "redis: %s\n", err);
        return 1;
    }
    freeReplyObject(redisCommand(rc, "FLUSHALL"));

    /* the daemon, started and frozen */
    char port[16], cid[24], nc[8], rpc_url[128], log[600], abi[600];
    snprintf(port, sizeof port, "%d", http_port);
    snprintf(cid, sizeof cid, "%llu", (unsigned long long)chain_id);
    snprintf(nc, sizeof nc, "%d", consumers);
    snprintf(log, sizeof log, "%s/approval-bench-daemon.log", run_dir);
    snprintf(abi, sizeof abi, "%s/schemas/abi",
             getenv("PAIMON_REPO") ? getenv("PAIMON_REPO") : ".");
    {
        FILE *f = fopen(dc, "r");
        char buf[1 << 14];
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        cJSON *j = cJSON_Parse(buf);
        const char *u = cJSON_GetStringValue(cJSON_GetObjectItem(j, "rpcUrl"));
        util_strlcpy(rpc_url, u ? u : "http://127.0.0.1:8545", sizeof rpc_url);
        cJSON_Delete(j);
    }
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
        setenv("PAIMON_RPC_URLS", rpc_url, 1);
        setenv("PAIMON_CHAIN_ID", cid, 1);
        setenv("PAIMON_VAULT_ADDRESS", vault, 1);
        setenv("PAIMON_ABI_DIR", abi, 1);
        setenv("PAIMON_SIGNER_DEV_KEY", key, 1);
        setenv("PAIMON_CONSUMERS", nc, 1);
        setenv("PAIMON_DB_POOL", "8", 1);
        setenv("PAIMON_APPROVAL_OUTBOX_EVERY", "60s", 1);
        setenv("PAIMON_APPROVAL_SLA_EVERY", "1h", 1);
        setenv("PAIMON_APPROVAL_SETTLE_EVERY", "1h", 1);
        setenv("PAIMON_APPROVAL_FORECAST_EVERY", "24h", 1);
        setenv("PAIMON_LOG_LEVEL", "warn", 1);
        execl(bin, "paimon-approval", (char *)NULL);
        _exit(127);
    }
    int64_t end = util_mono_ms() + 20000;
    while (http_get(http_port, "/health/ready") != 200 && util_mono_ms() < end)
        util_sleep_ms(50);
    if (http_get(http_port, "/health/ready") != 200) {
        fprintf(stderr, "daemon not ready (see %s)\n", log);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return 1;
    }
    util_sleep_ms(500); /* consumer threads created their groups and are blocked reading */
    kill(pid, SIGSTOP);

    /* queue the requests */
    int64_t q0 = util_mono_us();
    enum { CHUNK = 500 };
    envelope *batch[CHUNK];
    bus_priority prio[CHUNK];
    for (long i = 0; i < total;) {
        size_t n = 0;
        for (; n < CHUNK && i < total; n++, i++) {
            int big = i % 10 == 9;
            batch[n] = request_event(chain_id, vault, i, big);
            prio[n] = big ? BUS_HIGH : BUS_NORMAL;
        }
        size_t done = 0;
        int prc = bus_publish_many(rc, TOPIC, prio, batch, n, &done, err, sizeof err);
        for (size_t k = 0; k < n; k++)
            envelope_free(batch[k]);
        if (prc != 0) {
            fprintf(stderr, "publish: %s\n", err);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return 1;
        }
    }
    double qsecs = (double)(util_mono_us() - q0) / 1e6;

    /* baseline: the bus with a no-op handler, same entries */
    db_pool *pool = db_pool_new(db, consumers + 1, err, sizeof err);
    if (!pool) {
        fprintf(stderr, "pool: %s\n", err);
        return 1;
    }
    noop_worker w[16];
    pthread_t th[16];
    int64_t t0 = util_mono_us();
    for (int i = 0; i < consumers; i++) {
        w[i] = (noop_worker){.idx = i, .pool = pool};
        pthread_create(&th[i], NULL, noop_main, &w[i]);
    }
    for (int i = 0; i < consumers; i++)
        pthread_join(th[i], NULL);
    double nsecs = (double)(util_mono_us() - t0) / 1e6;
    long nd = atomic_load(&noop_done);
    int noop_ok = nd >= total && drained(rc, "bench_noop");
    printf("{\"bench\":\"bus_noop_handler\",\"requests\":%ld,\"consumers\":%d,\"handled\":%ld,"
           "\"seconds\":%.3f,\"events_per_s\":%.0f}\n",
           total, consumers, nd, nsecs, noop_ok ? (double)total / nsecs : 0.0);
    fflush(stdout);
    db_pool_free(pool);

    /* the daemon */
    t0 = util_mono_us();
    kill(pid, SIGCONT);
    end = util_mono_ms() + 600000;
    while (!drained(rc, "approval") && util_mono_ms() < end)
        util_sleep_ms(2);
    double dsecs = (double)(util_mono_us() - t0) / 1e6;
    PGresult *r = PQexec(pg, "SELECT (SELECT count(*) FROM approval.redemption_requests), "
                             "(SELECT count(*) FROM approval.approval_tickets), "
                             "(SELECT count(*) FROM approval.transactions), "
                             "(SELECT count(*) FROM approval.approval_records)");
    long booked = -1, tickets = -1, txs = -1, records = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        booked = atol(PQgetvalue(r, 0, 0));
        tickets = atol(PQgetvalue(r, 0, 1));
        txs = atol(PQgetvalue(r, 0, 2));
        records = atol(PQgetvalue(r, 0, 3));
    }
    PQclear(r);
    long want_tickets = total / 10, want_txs = total - total / 10;
    int ok = booked == total && tickets == want_tickets && txs == want_txs;
    printf("{\"bench\":\"approval_redemption_events\",\"requests\":%ld,\"consumers\":%d,"
           "\"booked\":%ld,\"tickets\":%ld,\"outbox_rows\":%ld,\"records\":%ld,\"seconds\":%.3f,"
           "\"events_per_s\":%.0f,\"queue_seconds\":%.3f,\"complete\":%s}\n",
           total, consumers, booked, tickets, txs, records, dsecs, ok ? (double)total / dsecs : 0.0,
           qsecs, ok ? "true" : "false");
    fflush(stdout);

    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "daemon exit status %d\n", status);
    PQfinish(pg);
    redisFree(rc);
    curl_global_cleanup();
    return ok && noop_ok ? 0 : 1;
}
