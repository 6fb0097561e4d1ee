/* listener_bench: the listener figures of issue 4, one JSON line per figure.
 *   setup: deploys the Emitter fixture (tests/integration/data/listener) on an anvil the
 *       caller started, and emits BENCH_EVENTS Ping logs (BENCH_EVENTS_PER_TX, default 50,
 *       per emitMany transaction, BENCH_TX_PER_BLOCK, default 4, transactions to a block
 *       mined by hand, so 200 events a block at even density);
 *   (a) a bare eth_getLogs loop over the whole range with the listener's own filter
 *       (addresses + topic0 list), in a fixed window of 5,000 logs' worth of blocks at
 *       the range's mean density, i.e. the request size the listener's adaptive range
 *       settles on with its defaults (PAIMON_LISTENER_TARGET_LOGS=5000); median of 3 runs;
 *   (b) the real paimon-listener binary (default ranges, zero confirmations) against a
 *       fresh database and Redis db, from spawn until the checkpoint reaches the head and
 *       every event is on the stream: events/s and the ratio to (a), median of 3 runs;
 *       and for the median run, the CPU PostgreSQL, Redis, anvil and the listener used
 *       and the ceiling on the ratio that implies on this machine's cores;
 *   (a) and (b) read with automine off (see run()); (c) live latency: BENCH_LIVE_BLOCKS blocks of
 *       BENCH_LIVE_EVENTS events mined with evm_mine every BENCH_LIVE_INTERVAL_MS while
 *       the listener follows; latency = XADD time of the block's last message (the ms
 *       part of its stream id) - the wall clock just before the evm_mine request
 *       (so it includes mining), p50/p99.
 * Usage: listener_bench <rpc_url> <redis_url> <pg_url> <emitter_dir> <paimon-listener>
 *                       <http_port> <log_dir>   (env PAIMON_REPO for migrations/) */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "abi.h"
#include "hex.h"
#include "migrate.h"
#include "rconn.h"
#include "rpc.h"
#include "util.h"

#define ACCOUNT0      "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
#define TARGET_LOGS   5000 /* PAIMON_LISTENER_TARGET_LOGS default */
#define BENCH_DB      "listener_bench"
#define BENCH_REDISDB "/9"

static pid_t listener_pid;

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    long n = v ? strtol(v, NULL, 10) : 0;
    return n > 0 ? n : def;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t pct(const int64_t *sorted, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

/* ------------------------------------------------------------------ chain */

/* nonce < 0: the node picks it (one transaction at a time only: a batch of identical
 * requests would get the same nonce). */
static cJSON *tx_params(const char *to, const char *data, int64_t nonce, uint64_t gas)
{
    cJSON *tx = cJSON_CreateObject();
    cJSON_AddStringToObject(tx, "from", ACCOUNT0);
    if (nonce >= 0) {
        char n[24];
        snprintf(n, sizeof n, "0x%llx", (unsigned long long)nonce);
        cJSON_AddStringToObject(tx, "nonce", n);
    }
    if (to)
        cJSON_AddStringToObject(tx, "to", to);
    cJSON_AddStringToObject(tx, "data", data);
    char g[24];
    snprintf(g, sizeof g, "0x%llx", (unsigned long long)gas);
    cJSON_AddStringToObject(tx, "gas", g);
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, tx);
    return p;
}

/* Gas for emitMany(n): a Ping log costs ~2.1k gas with its loop step; generous so a
 * transaction never runs out, small enough that a block holds several. */
static uint64_t emit_gas(long n)
{
    return 60000 + (uint64_t)n * 4000;
}

/* Waits until ACCOUNT0's transactions up to nonce `want` (exclusive) are mined.
 * anvil (1.7) takes the items of a JSON-RPC batch concurrently and now and then loses
 * one of them: every later nonce then sits in the queued pool for ever and the
 * "pending" count stops at the gap. So the target is the nonce we sent, not the
 * node's pending count, and a stall is cured by sending the missing nonce again
 * (`data` to `to`; an "already known" answer is harmless). */
static int wait_mined(rpc_client *rpc, uint64_t want, const char *to, const char *data,
                      uint64_t gas)
{
    char err[256];
    uint64_t mined = 0, prev = UINT64_MAX;
    for (int i = 0; i < 6000 && mined < want; i++) {
        if (rpc_get_tx_count(rpc, ACCOUNT0, RPC_BLOCK_LATEST, &mined, err, sizeof err))
            goto fail;
        if (mined < want)
            util_sleep_ms(10);
        if (i % 20 == 19 && mined == prev && mined < want) {
            cJSON_Delete(rpc_call(rpc, "eth_sendTransaction",
                                  tx_params(to, data, (int64_t)mined, gas), NULL, 0));
            cJSON_Delete(rpc_call(rpc, "evm_mine", cJSON_CreateArray(), NULL, 0));
        }
        if (i % 20 == 19)
            prev = mined;
    }
    if (mined >= want)
        return 0;
    snprintf(err, sizeof err, "%llu of %llu mined", (unsigned long long)mined,
             (unsigned long long)want);
fail:
    fprintf(stderr, "listener_bench: waiting for transactions: %s\n", err);
    return -1;
}

/* The transaction counts can say "mined" a moment before the last blocks are
 * queryable: wait until the contract's own counter (seq(), one per Ping) at "latest"
 * says every event exists, so the range read afterwards holds them all. */
static int wait_emitted(rpc_client *rpc, const abi_contract *abi, const char *addr, long events)
{
    const abi_fn *fn = abi_contract_fn(abi, "seq");
    cJSON *none = cJSON_CreateArray();
    uint8_t *call = NULL;
    size_t len = 0;
    int rc = fn ? abi_fn_encode_call(fn, none, &call, &len, NULL, 0) : -1;
    cJSON_Delete(none);
    char *hex = rc == 0 ? hex_encode_new(call, len, 1) : NULL;
    free(call);
    long seen = -1;
    for (int i = 0; hex && i < 3000; i++) {
        uint8_t *out = NULL;
        size_t n = 0;
        rpc_error e;
        rpc_error_init(&e);
        if (rpc_eth_call(rpc, addr, hex, RPC_BLOCK_LATEST, &out, &n, &e) == 0 && n == 32) {
            seen = 0;
            for (size_t k = 24; k < 32; k++)
                seen = seen * 256 + out[k];
        }
        rpc_error_clear(&e);
        free(out);
        if (seen >= events)
            break;
        util_sleep_ms(10);
    }
    free(hex);
    if (seen >= events)
        return 0;
    fprintf(stderr, "listener_bench: the emitter counted %ld of %ld events\n", seen, events);
    return -1;
}

/* anvil's automine queues a mining task per arriving transaction, including the ones
 * it parks in the queued pool: empty blocks keep appearing for a while after the last
 * send. Returns the head once it has held still for 300 ms, so block ranges measured
 * afterwards are what they say. */
static int settle_head(rpc_client *rpc, uint64_t *head, char *err, size_t errlen)
{
    uint64_t prev = UINT64_MAX;
    for (int i = 0; i < 200; i++) {
        if (rpc_block_number(rpc, head, err, errlen))
            return -1;
        if (*head == prev)
            return 0;
        prev = *head;
        util_sleep_ms(300);
    }
    return util_err(err, errlen, "the head did not settle");
}

static int deploy(rpc_client *rpc, const char *emitter_dir, char addr[43])
{
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/Emitter.bin", emitter_dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "listener_bench: cannot open %s\n", path);
        return -1;
    }
    static char code[1 << 16];
    size_t n = fread(code, 1, sizeof code - 1, f);
    fclose(f);
    code[n] = '\0';
    while (n && (code[n - 1] == '\n' || code[n - 1] == ' '))
        code[--n] = '\0';
    cJSON *h =
        rpc_call(rpc, "eth_sendTransaction", tx_params(NULL, code, -1, 3000000), err, sizeof err);
    uint8_t hash[32];
    cJSON *rcpt = NULL;
    if (!cJSON_IsString(h) || hex_decode_fixed(h->valuestring, hash, 32, NULL, 0)) {
        fprintf(stderr, "listener_bench: deploy: %s\n", h ? "bad hash" : err);
        cJSON_Delete(h);
        return -1;
    }
    cJSON_Delete(h);
    for (int i = 0; i < 200 && rpc_get_tx_receipt(rpc, hash, &rcpt, NULL, 0) != 0; i++)
        util_sleep_ms(20);
    const char *a = cJSON_GetStringValue(cJSON_GetObjectItem(rcpt, "contractAddress"));
    if (!a || strlen(a) != 42) {
        fprintf(stderr, "listener_bench: no contract address in the receipt\n");
        cJSON_Delete(rcpt);
        return -1;
    }
    for (int i = 0; i < 43; i++)
        addr[i] = (char)(a[i] >= 'A' && a[i] <= 'F' ? a[i] + 32 : a[i]);
    cJSON_Delete(rcpt);
    return 0;
}

static char *emit_call(const abi_contract *abi, long n, long amount)
{
    const abi_fn *fn = abi_contract_fn(abi, "emitMany");
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateNumber((double)n));
    cJSON_AddItemToArray(args, cJSON_CreateNumber((double)amount));
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = fn ? abi_fn_encode_call(fn, args, &data, &len, NULL, 0) : -1;
    cJSON_Delete(args);
    char *hex = rc == 0 ? hex_encode_new(data, len, 1) : NULL;
    free(data);
    return hex;
}

static int automine(rpc_client *rpc, int on)
{
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateBool(on));
    char err[256];
    cJSON *r = rpc_call(rpc, "evm_setAutomine", p, err, sizeof err);
    if (!r)
        fprintf(stderr, "listener_bench: evm_setAutomine: %s\n", err);
    cJSON_Delete(r);
    return r ? 0 : -1;
}

/* ntx emitMany transactions, per_block to a block: automine off, each group sent one
 * request at a time (a JSON-RPC batch reaches anvil's pool out of nonce order, and
 * the transactions behind a gap wait for a later block) and then mined with
 * evm_mine. Automine would mine a block per transaction arrival, most of them empty
 * with a batch in flight (a run of 2,000 transactions left some 3,300 empty blocks
 * after the events, still being mined a minute later). Mining by hand gives a chain
 * of even density that stops moving when the last event is in. */
static int emit_bulk(rpc_client *rpc, const char *addr, const char *data, long per_tx, long ntx,
                     long per_block)
{
    char err[256];
    uint64_t nonce;
    if (per_block < 1)
        per_block = 4;
    if (automine(rpc, 0))
        return -1;
    if (rpc_get_tx_count(rpc, ACCOUNT0, RPC_BLOCK_PENDING, &nonce, err, sizeof err)) {
        fprintf(stderr, "listener_bench: nonce: %s\n", err);
        return -1;
    }
    for (long i = 0; i < ntx; i++) {
        cJSON *r =
            rpc_call(rpc, "eth_sendTransaction",
                     tx_params(addr, data, (int64_t)nonce++, emit_gas(per_tx)), err, sizeof err);
        if (r && (i % per_block == per_block - 1 || i == ntx - 1)) {
            cJSON_Delete(r);
            r = rpc_call(rpc, "evm_mine", cJSON_CreateArray(), err, sizeof err);
        }
        if (!r) {
            fprintf(stderr, "listener_bench: emit: %s\n", err);
            return -1;
        }
        cJSON_Delete(r);
    }
    return wait_mined(rpc, nonce, addr, data, emit_gas(per_tx));
}

static cJSON *logs_filter(const char *addr, const abi_contract *abi, uint64_t from, uint64_t to)
{
    char tag[RPC_BLOCK_TAG_MAX], h[67];
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "fromBlock", rpc_block_tag((int64_t)from, tag));
    cJSON_AddStringToObject(f, "toBlock", rpc_block_tag((int64_t)to, tag));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(f, "address"), cJSON_CreateString(addr));
    cJSON *t0 = cJSON_CreateArray();
    for (size_t k = 0; k < abi->n_events; k++) {
        hex_encode(abi->events[k].topic0, 32, 1, h, sizeof h);
        cJSON_AddItemToArray(t0, cJSON_CreateString(h));
    }
    cJSON_AddItemToArray(cJSON_AddArrayToObject(f, "topics"), t0);
    return f;
}

/* One pass of the bare loop: microseconds, and the logs seen in *nlogs; -1 on error. */
static int64_t bare_pass(rpc_client *rpc, const char *addr, const abi_contract *abi, uint64_t first,
                         uint64_t last, uint64_t window, long *nlogs, long *requests)
{
    int64_t t0 = util_mono_us();
    *nlogs = 0;
    *requests = 0;
    for (uint64_t from = first; from <= last; from += window) {
        uint64_t to = from + window - 1 < last ? from + window - 1 : last;
        cJSON *f = logs_filter(addr, abi, from, to);
        rpc_error e;
        rpc_error_init(&e);
        cJSON *logs = rpc_get_logs(rpc, f, &e);
        cJSON_Delete(f);
        if (!logs) {
            fprintf(stderr, "listener_bench: eth_getLogs: %s\n", e.message);
            rpc_error_clear(&e);
            return -1;
        }
        *nlogs += cJSON_GetArraySize(logs);
        (*requests)++;
        cJSON_Delete(logs);
    }
    return util_mono_us() - t0;
}

/* ------------------------------------------------------------------ stack */

/* Fresh database next to the one in pg_url, migrated with the listener's schema. */
static PGconn *fresh_db(const char *pg_url, char *url_out, size_t outlen)
{
    const char *slash = strrchr(pg_url, '/');
    if (!slash || slash - pg_url < 12)
        return NULL;
    PGconn *admin = PQconnectdb(pg_url);
    if (PQstatus(admin) != CONNECTION_OK) {
        fprintf(stderr, "listener_bench: %s", PQerrorMessage(admin));
        PQfinish(admin);
        return NULL;
    }
    PQclear(PQexec(admin, "DROP DATABASE IF EXISTS " BENCH_DB " WITH (FORCE)"));
    PGresult *r = PQexec(admin, "CREATE DATABASE " BENCH_DB);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(admin);
    if (!ok)
        return NULL;
    snprintf(url_out, outlen, "%.*s/" BENCH_DB, (int)(slash - pg_url), pg_url);
    PGconn *pg = PQconnectdb(url_out);
    if (PQstatus(pg) != CONNECTION_OK) {
        PQfinish(pg);
        return NULL;
    }
    char dir[1024], err[512];
    const char *repo = getenv("PAIMON_REPO");
    snprintf(dir, sizeof dir, "%s/migrations", repo && *repo ? repo : ".");
    const char *only[] = {"listener"};
    migrate_set *set = migrate_set_load(dir, only, 1, err, sizeof err);
    int n = 0;
    if (!set || migrate_up(pg, set, NULL, &n, err, sizeof err) != 0) {
        fprintf(stderr, "listener_bench: migrations: %s\n", err);
        migrate_set_free(set);
        PQfinish(pg);
        return NULL;
    }
    migrate_set_free(set);
    return pg;
}

static long long scalar(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    long long v =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

static long long stream_len(redisContext *rc)
{
    static const char *const prio[] = {"critical", "high", "normal"};
    long long n = 0;
    for (int p = 0; p < 3; p++) {
        redisReply *r = redisCommand(rc, "XLEN paimon:chain.events:%s", prio[p]);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        n += r->integer;
        freeReplyObject(r);
    }
    return n;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    char *buf = ud;
    size_t have = strlen(buf), add = s * n;
    if (have + add >= 65536)
        add = 65535 - have;
    memcpy(buf + have, p, add);
    buf[have + add] = '\0';
    return s * n;
}

/* A counter from the listener's /metrics (first sample of that name); -1 if absent. */
static long long metric(const char *port, const char *name)
{
    static char body[65536];
    char url[128];
    body[0] = '\0';
    snprintf(url, sizeof url, "http://127.0.0.1:%s/metrics", port);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)body);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        return -1;
    for (const char *p = strstr(body, name); p; p = strstr(p + 1, name)) {
        if ((p != body && p[-1] != '\n') || (p[strlen(name)] != '{' && p[strlen(name)] != ' '))
            continue;
        const char *sp = strchr(p, ' ');
        return sp ? (long long)strtod(sp + 1, NULL) : -1;
    }
    return -1;
}

/* CPU seconds (user + system) used so far by the live processes of each kind the
 * backfill runs on: PostgreSQL (postmaster and every backend), Redis, anvil and the
 * listener. Summed over all of /proc (so the machine should run nothing else of these
 * kinds); a process that exits inside the window is missed, which can only lower the
 * figures and raise the ceiling computed from them. */
enum { CPU_PG, CPU_REDIS, CPU_ANVIL, CPU_LISTENER, CPU_KINDS };
static const char *const cpu_kind[CPU_KINDS] = {"postgres", "redis", "anvil", "listener"};

static void cpu_by_kind(double out[CPU_KINDS])
{
    static const char *const comm[CPU_KINDS] = {"postgres", "redis-server", "anvil",
                                                "paimon-listener"}; /* comm: at most 15 chars */
    memset(out, 0, sizeof(double) * CPU_KINDS);
    double tck = (double)sysconf(_SC_CLK_TCK);
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close || close < open)
            continue;
        *close = '\0';
        int k = 0;
        while (k < CPU_KINDS && strncmp(open + 1, comm[k], 15) != 0)
            k++;
        unsigned long ut = 0, st = 0;
        /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime stime */
        if (k < CPU_KINDS &&
            sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            out[k] += (double)(ut + st) / tck;
    }
    if (d)
        closedir(d);
}

static pid_t spawn_listener(const char *bin, const char *log, char *const env[])
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        for (size_t i = 0; env[i]; i++)
            putenv(env[i]);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_listener(void)
{
    if (listener_pid <= 0)
        return;
    kill(listener_pid, SIGTERM);
    int st;
    for (int i = 0; i < 150; i++) {
        if (waitpid(listener_pid, &st, WNOHANG) == listener_pid) {
            listener_pid = 0;
            return;
        }
        util_sleep_ms(100);
    }
    kill(listener_pid, SIGKILL);
    waitpid(listener_pid, &st, 0);
    listener_pid = 0;
}

/* ------------------------------------------------------------------ live latency */

typedef struct live_block {
    int64_t mine_ms;   /* wall clock just before evm_mine */
    int64_t stream_ms; /* XADD time of the block's last message */
    long seen;
} live_block;

/* Reads the stream entries after since_ms and fills each live block's last XADD ms. */
static int collect_latency(redisContext *rc, int64_t since_ms, uint64_t first_block,
                           live_block *blocks, long nblocks)
{
    static const char *const prio[] = {"critical", "high", "normal"};
    for (int p = 0; p < 3; p++) {
        char start[48];
        snprintf(start, sizeof start, "%lld-0", (long long)since_ms);
        for (;;) {
            redisReply *r =
                redisCommand(rc, "XRANGE paimon:chain.events:%s %s + COUNT 2000", prio[p], start);
            if (!r || r->type != REDIS_REPLY_ARRAY) {
                if (r)
                    freeReplyObject(r);
                return -1;
            }
            size_t n = r->elements;
            for (size_t i = 0; i < n; i++) {
                const char *id = r->element[i]->element[0]->str;
                int64_t ms = strtoll(id, NULL, 10);
                redisReply *fields = r->element[i]->element[1];
                for (size_t k = 0; k + 1 < fields->elements; k += 2) {
                    if (strcmp(fields->element[k]->str, "env") != 0)
                        continue;
                    cJSON *e = cJSON_Parse(fields->element[k + 1]->str);
                    const cJSON *bn =
                        cJSON_GetObjectItem(cJSON_GetObjectItem(e, "payload"), "block_number");
                    if (cJSON_IsNumber(bn) && bn->valuedouble >= (double)first_block &&
                        bn->valuedouble < (double)(first_block + (uint64_t)nblocks)) {
                        live_block *b = &blocks[(long)(bn->valuedouble - (double)first_block)];
                        if (ms > b->stream_ms)
                            b->stream_ms = ms;
                        b->seen++;
                    }
                    cJSON_Delete(e);
                }
                if (i + 1 == n)
                    snprintf(start, sizeof start, "(%s", id);
            }
            freeReplyObject(r);
            if (n < 2000)
                break;
        }
    }
    return 0;
}

static int bench_live(rpc_client *rpc, redisContext *redis, const char *addr,
                      const abi_contract *abi, long long expect_before)
{
    long nblocks = env_long("BENCH_LIVE_BLOCKS", 200);
    long per = env_long("BENCH_LIVE_EVENTS", 10);
    long interval = env_long("BENCH_LIVE_INTERVAL_MS", 100);
    char err[256];
    char *data = emit_call(abi, per, 2);
    uint64_t head = 0;
    live_block *blocks = util_calloc((size_t)nblocks, sizeof *blocks);
    int64_t *lat = util_calloc((size_t)nblocks, sizeof *lat);
    int64_t *rtt = util_calloc((size_t)nblocks, sizeof *rtt);
    int rc = -1;
    int64_t since = util_now_ms();
    if (!data || automine(rpc, 0) || settle_head(rpc, &head, err, sizeof err))
        goto out;
    uint64_t first = head + 1;
    int64_t next = util_mono_ms();
    for (long i = 0; i < nblocks; i++) {
        cJSON *h = rpc_call(rpc, "eth_sendTransaction", tx_params(addr, data, -1, emit_gas(per)),
                            err, sizeof err);
        if (!h) {
            fprintf(stderr, "listener_bench: live send: %s\n", err);
            goto out;
        }
        cJSON_Delete(h);
        int64_t now = util_mono_ms();
        if (next > now)
            util_sleep_ms(next - now);
        blocks[i].mine_ms = util_now_ms();
        int64_t t0 = util_mono_us();
        cJSON *m = rpc_call(rpc, "evm_mine", cJSON_CreateArray(), err, sizeof err);
        rtt[i] = util_mono_us() - t0;
        if (!m) {
            fprintf(stderr, "listener_bench: evm_mine: %s\n", err);
            goto out;
        }
        cJSON_Delete(m);
        next += interval;
    }
    long long want = expect_before + (long long)nblocks * per;
    int64_t end = util_mono_ms() + 15000;
    while (util_mono_ms() < end && stream_len(redis) < want)
        util_sleep_ms(20);
    if (stream_len(redis) < want) {
        fprintf(stderr, "listener_bench: live: %lld of %lld messages on the stream\n",
                stream_len(redis), want);
        goto out;
    }
    if (collect_latency(redis, since, first, blocks, nblocks) != 0)
        goto out;
    for (long i = 0; i < nblocks; i++) {
        if (blocks[i].seen != per) {
            fprintf(stderr, "listener_bench: live block %ld: %ld of %ld messages\n", i,
                    blocks[i].seen, per);
            goto out;
        }
        lat[i] = blocks[i].stream_ms - blocks[i].mine_ms;
    }
    qsort(lat, (size_t)nblocks, sizeof *lat, cmp_i64);
    qsort(rtt, (size_t)nblocks, sizeof *rtt, cmp_i64);
    int64_t p99 = pct(lat, (size_t)nblocks, 0.99);
    printf("{\"bench\":\"listener_live_latency\",\"blocks\":%ld,\"events_per_block\":%ld,"
           "\"interval_ms\":%ld,\"confirmations\":0,\"p50_ms\":%lld,\"p90_ms\":%lld,"
           "\"p99_ms\":%lld,\"max_ms\":%lld,\"min_ms\":%lld,\"evm_mine_rtt_p50_ms\":%.2f,"
           "\"target_p99_ms\":100,\"met\":%s}\n",
           nblocks, per, interval, (long long)pct(lat, (size_t)nblocks, 0.5),
           (long long)pct(lat, (size_t)nblocks, 0.9), (long long)p99, (long long)lat[nblocks - 1],
           (long long)lat[0], (double)pct(rtt, (size_t)nblocks, 0.5) / 1000.0,
           p99 < 100 ? "true" : "false");
    rc = 0;
out:
    if (data)
        automine(rpc, 1);
    free(data);
    free(blocks);
    free(lat);
    free(rtt);
    return rc;
}

/* ------------------------------------------------------------------ main */

/* ------------------------------------------------------------------ backfill runs */

/* The listener's environment for the backfill runs (the same for each). */
typedef struct bf_env {
    char env[12][1200];
    char *envp[13];
    char *db_url; /* the caller's buffer of db_url_len bytes, filled by fresh_db each run */
    size_t db_url_len;
} bf_env;

static void bf_env_init(bf_env *e, const char *rurl, char *db_url, size_t db_url_len,
                        const char *http_port, const char *rpc_url, const char *addr,
                        const char *abi_path)
{
    memset(e, 0, sizeof *e);
    int n = 0;
    snprintf(e->env[n++], sizeof e->env[0], "PAIMON_REDIS_URL=%s", rurl);
    e->db_url = db_url;
    e->db_url_len = db_url_len;
    n++; /* PAIMON_DATABASE_URL: set per run, once fresh_db has named the database */
    snprintf(e->env[n++], sizeof e->env[0], "PAIMON_HTTP_PORT=%s", http_port);
    snprintf(e->env[n++], sizeof e->env[0], "PAIMON_RPC_URLS=%s", rpc_url);
    snprintf(e->env[n++], sizeof e->env[0], "PAIMON_WS_URL=ws%s",
             strncmp(rpc_url, "http", 4) == 0 ? rpc_url + 4 : rpc_url);
    snprintf(e->env[n++], sizeof e->env[0], "PAIMON_LISTENER_CONTRACTS=%s=%s", addr, abi_path);
    snprintf(e->env[n++], sizeof e->env[0], "PAIMON_LISTENER_CONFIRMATIONS=0");
    snprintf(e->env[n++], sizeof e->env[0], "PAIMON_LOG_LEVEL=info");
    for (int i = 0; i < n; i++)
        e->envp[i] = e->env[i];
    e->envp[n] = NULL;
}

typedef struct bf_run {
    int index;
    int64_t t_cp, t_stream; /* us from spawn to checkpoint at head / every event on the stream */
    double cpu[CPU_KINDS];  /* CPU seconds of each kind over that window */
} bf_run;

static int cmp_bf_run(const void *a, const void *b)
{
    const bf_run *x = a, *y = b;
    return (x->t_stream > y->t_stream) - (x->t_stream < y->t_stream);
}

/* One backfill from block 0 on a fresh database and Redis db: spawns the listener
 * (left running, in listener_pid), waits for the checkpoint to reach `last` and every
 * event to be on the stream, and checks rows, ids and messages. *pg and *redis are the
 * run's connections (the caller frees them). 0 or -1 with a message on stderr. */
static int backfill_once(bf_env *e, const char *pg_url, const char *bin, const char *log,
                         uint64_t last, long events, PGconn **pg, redisContext **redis, bf_run *out)
{
    char err[512];
    if (!(*pg = fresh_db(pg_url, e->db_url, e->db_url_len))) {
        fprintf(stderr, "listener_bench: cannot create database " BENCH_DB "\n");
        return -1;
    }
    snprintf(e->env[1], sizeof e->env[1], "PAIMON_DATABASE_URL=%s", e->db_url);
    const char *rurl = e->env[0] + strlen("PAIMON_REDIS_URL=");
    if (!(*redis = rconn_connect(rurl, 5000, err, sizeof err))) {
        fprintf(stderr, "listener_bench: %s\n", err);
        return -1;
    }
    freeReplyObject(redisCommand(*redis, "FLUSHDB"));
    double cpu0[CPU_KINDS], cpu1[CPU_KINDS];
    cpu_by_kind(cpu0);
    int64_t t0 = util_mono_us();
    listener_pid = spawn_listener(bin, log, e->envp);
    int64_t t_cp = 0, t_stream = 0, deadline = util_mono_ms() + 600000;
    while (util_mono_ms() < deadline && !t_stream) {
        if (!t_cp &&
            scalar(*pg, "SELECT coalesce(max(last_block), -1) FROM listener.checkpoints") >=
                (long long)last)
            t_cp = util_mono_us() - t0;
        if (t_cp && stream_len(*redis) >= events)
            t_stream = util_mono_us() - t0;
        if (waitpid(listener_pid, NULL, WNOHANG) == listener_pid) {
            listener_pid = 0;
            fprintf(stderr, "listener_bench: paimon-listener exited (see %s)\n", log);
            return -1;
        }
        if (!t_stream)
            util_sleep_ms(5);
    }
    if (!t_stream) {
        fprintf(stderr, "listener_bench: listener did not catch up (see %s)\n", log);
        return -1;
    }
    cpu_by_kind(cpu1);
    long long rows = scalar(*pg, "SELECT count(*) FROM listener.chain_events");
    long long ids = scalar(*pg, "SELECT count(DISTINCT id) FROM listener.chain_events");
    long long onstream = stream_len(*redis);
    if (rows != events || ids != events || onstream != events) {
        fprintf(stderr, "listener_bench: %lld rows, %lld ids, %lld messages; want %ld\n", rows, ids,
                onstream, events);
        return -1;
    }
    out->t_cp = t_cp;
    out->t_stream = t_stream;
    for (int k = 0; k < CPU_KINDS; k++)
        out->cpu[k] = cpu1[k] - cpu0[k];
    return 0;
}

static int run(char **argv)
{
    const char *rpc_url = argv[1], *redis_url = argv[2], *pg_url = argv[3], *emitter_dir = argv[4],
               *bin = argv[5], *http_port = argv[6], *log_dir = argv[7];
    long events = env_long("BENCH_EVENTS", 100000);
    long per_tx = env_long("BENCH_EVENTS_PER_TX", 50);
    long ntx = (events + per_tx - 1) / per_tx;
    events = ntx * per_tx;
    char err[512], path[1024], addr[43], db_url[600], rurl[600];
    int rc = 1;
    abi_contract *abi = NULL;
    char *data = NULL;
    PGconn *pg = NULL;
    redisContext *redis = NULL;

    const char *urls[1] = {rpc_url};
    /* The bare loop's window holds about 5,000 logs at the default density; the cap
     * is raised past the client's default 32 MiB for denser BENCH_* settings. */
    rpc_config cfg = {.urls = urls,
                      .nurls = 1,
                      .name = "bench",
                      .timeout_ms = 120000,
                      .max_response_bytes = (size_t)256 << 20};
    rpc_client *rpc = rpc_client_new(&cfg, err, sizeof err);
    uint64_t head = 0;
    for (int i = 0; rpc && i < 100 && rpc_block_number(rpc, &head, NULL, 0) != 0; i++)
        util_sleep_ms(100);
    snprintf(path, sizeof path, "%s/Emitter.abi.json", emitter_dir);
    if (!rpc || rpc_block_number(rpc, &head, err, sizeof err) ||
        !(abi = abi_contract_load(path, err, sizeof err))) {
        fprintf(stderr, "listener_bench: %s\n", err);
        goto out;
    }
    if (deploy(rpc, emitter_dir, addr))
        goto out;
    uint64_t first = 0, last = 0;
    if (!(data = emit_call(abi, per_tx, 1)) || rpc_block_number(rpc, &first, err, sizeof err)) {
        fprintf(stderr, "listener_bench: %s\n", data ? err : "cannot encode emitMany");
        goto out;
    }
    first++;
    int64_t t_emit = util_mono_ms();
    /* Automine stays off from here (emit_bulk and the live part mine by hand): the
     * bare loop and the listener both read from a quiet node. */
    if (emit_bulk(rpc, addr, data, per_tx, ntx, env_long("BENCH_TX_PER_BLOCK", 4)) ||
        wait_emitted(rpc, abi, addr, events))
        goto out;
    if (settle_head(rpc, &last, err, sizeof err)) {
        fprintf(stderr, "listener_bench: %s\n", err);
        goto out;
    }
    fprintf(stderr, "listener_bench: %ld events in blocks %llu..%llu emitted in %.1f s\n", events,
            (unsigned long long)first, (unsigned long long)last,
            (double)(util_mono_ms() - t_emit) / 1000.0);

    /* (a) bare eth_getLogs loop */
    /* Several transactions may share a block: window from the real density. */
    uint64_t nblocks = last - first + 1;
    uint64_t window = (uint64_t)TARGET_LOGS * nblocks / (uint64_t)events;
    if (window == 0)
        window = 1;
    enum { R = 3 };
    int64_t bare[R];
    long nlogs = 0, requests = 0;
    for (int r = 0; r < R; r++) {
        if ((bare[r] = bare_pass(rpc, addr, abi, first, last, window, &nlogs, &requests)) < 0)
            goto out;
        if (nlogs != events) {
            fprintf(stderr, "listener_bench: bare loop saw %ld logs, want %ld\n", nlogs, events);
            goto out;
        }
    }
    qsort(bare, R, sizeof bare[0], cmp_i64);
    double bare_s = (double)bare[R / 2] / 1e6, bare_rate = (double)events / bare_s;
    printf("{\"bench\":\"bare_eth_getLogs\",\"events\":%ld,\"blocks\":%llu,\"window_blocks\":%llu,"
           "\"requests\":%ld,\"runs\":%d,\"seconds\":%.3f,\"best_seconds\":%.3f,"
           "\"events_per_s\":%.0f}\n",
           events, (unsigned long long)(last - first + 1), (unsigned long long)window, requests, R,
           bare_s, (double)bare[0] / 1e6, bare_rate);
    fflush(stdout);

    /* (b) the listener from the start block: median of R runs, like the bare loop */
    snprintf(rurl, sizeof rurl, "%s" BENCH_REDISDB, redis_url);
    bf_env env;
    bf_env_init(&env, rurl, db_url, sizeof db_url, http_port, rpc_url, addr, path);
    bf_run runs[R];
    for (int r = 0; r < R; r++) {
        /* The last run's listener stays up for the live part. */
        stop_listener();
        PQfinish(pg);
        pg = NULL;
        if (redis)
            redisFree(redis);
        redis = NULL;
        char log[1100];
        snprintf(log, sizeof log, "%s/listener-bench%s.log", log_dir,
                 r == R - 1 ? "" : (r == 0 ? "-run1" : "-run2"));
        if (backfill_once(&env, pg_url, bin, log, last, events, &pg, &redis, &runs[r]))
            goto out;
        runs[r].index = r;
    }
    bf_run by_time[R];
    memcpy(by_time, runs, sizeof runs);
    qsort(by_time, R, sizeof by_time[0], cmp_bf_run);
    const bf_run *m = &by_time[R / 2];
    long long batches = metric(http_port, "listener_batches_total");
    double lst_s = (double)m->t_stream / 1e6, lst_rate = (double)events / lst_s;
    printf("{\"bench\":\"listener_backfill\",\"events\":%ld,\"blocks\":%llu,\"runs\":%d,"
           "\"seconds_to_checkpoint\":%.3f,\"seconds_to_stream\":%.3f,\"best_seconds\":%.3f,"
           "\"worst_seconds\":%.3f,\"events_per_s\":%.0f,\"last_run_batches\":%lld,"
           "\"bare_events_per_s\":%.0f,\"ratio_to_bare\":%.2f,\"target_ratio\":0.8,\"met\":%s}\n",
           events, (unsigned long long)(last - first + 1), R, (double)m->t_cp / 1e6, lst_s,
           (double)by_time[0].t_stream / 1e6, (double)by_time[R - 1].t_stream / 1e6, lst_rate,
           batches, bare_rate, lst_rate / bare_rate,
           lst_rate >= 0.8 * bare_rate ? "true" : "false");
    /* What the rest of the stack needed for the same backfill (the median run).
     * Whatever the listener does, PostgreSQL, Redis and anvil must do this much work
     * between them, so on `cores` cores the backfill cannot take less than their sum /
     * cores: a ceiling on the ratio for this schema and message format on this
     * machine. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double per_core = 1.0 / (double)(cores > 0 ? cores : 1);
    double floor_s = (m->cpu[CPU_PG] + m->cpu[CPU_REDIS] + m->cpu[CPU_ANVIL]) * per_core;
    double all_s = floor_s + m->cpu[CPU_LISTENER] * per_core;
    printf("{\"bench\":\"listener_backfill_cpu\",\"run\":%d,\"seconds\":%.3f,\"cores\":%ld",
           m->index + 1, lst_s, cores);
    for (int k = 0; k < CPU_KINDS; k++)
        printf(",\"%s_cpu_s\":%.2f", cpu_kind[k], m->cpu[k]);
    printf(",\"floor_s_without_listener\":%.3f,\"ratio_ceiling\":%.2f,"
           "\"floor_s_with_listener\":%.3f,\"ratio_ceiling_with_listener\":%.2f}\n",
           floor_s, floor_s > 0 ? bare_s / floor_s : 0.0, all_s, all_s > 0 ? bare_s / all_s : 0.0);
    fflush(stdout);

    /* (c) live latency while the listener follows */
    /* Three backfills leave some 150 MB of dirty pages behind; measured without this,
     * the checkpoint that writes them out lands in the live part and its fsyncs hold
     * 10-event commits for 100-170 ms. The live figure is about following the head,
     * so it starts from a checkpointed database, as the bench's sections do. */
    PQclear(PQexec(pg, "CHECKPOINT"));
    if (bench_live(rpc, redis, addr, abi, events) != 0)
        goto out;
    rc = 0;
out:
    stop_listener();
    if (redis)
        redisFree(redis);
    PQfinish(pg);
    free(data);
    abi_contract_free(abi);
    rpc_client_free(rpc);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: listener_bench <rpc_url> <redis_url> <pg_url> <emitter_dir> "
                        "<paimon-listener> <http_port> <log_dir>\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    return run(argv);
}
