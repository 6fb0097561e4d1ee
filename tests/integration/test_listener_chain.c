/* Integration tests of paimon-listener: the real binary as a child process against its
 * own anvil (snapshots / reverts disturb nobody else), the harness Redis and a fresh
 * PostgreSQL database per test. Events come from a small fixture contract
 * (tests/integration/data/listener/Emitter.sol) that emits many logs per transaction.
 * Checked: exactly once in the stream and the table (backfill + live hand-over),
 * SIGKILL during backfill and during live follow, the re-publish from the publish
 * watermark after a crash between commit and publish, the store's COPY path and its
 * unique-violation fallback, reorg via evm_snapshot/evm_revert,
 * a reorg deeper than the window (critical alert, halted, no advance), RPC failover
 * past a dead endpoint, and a standby taking over from a killed leader. */
#include <curl/curl.h>
#include <fcntl.h>
#include <inttypes.h>
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

#include "abi.h"
#include "harness.h"
#include "hex.h"
#include "migrate.h"
#include "db.h"
#include "listener/store.h"
#include "rpc.h"
#include "util.h"

#define ACCOUNT0 "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"

static int anvil_port, dead_port, http_base;
static pid_t anvil_pid;
static char anvil_url[64], ws_url[64], emitter_dir[512], abi_path[600];
static rpc_client *rpc;
static abi_contract *emitter_abi;

/* ------------------------------------------------------------------ processes */

static pid_t spawn(char *const argv[], char *const env[], const char *logpath)
{
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        for (size_t i = 0; env && env[i]; i++)
            putenv(env[i]);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void stop_pid(pid_t pid, int sig)
{
    if (pid <= 0)
        return;
    kill(pid, sig);
    int st;
    for (int i = 0; i < 150; i++) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid || w < 0) /* exited, or already reaped */
            return;
        util_sleep_ms(100);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

static const char *anvil_bin(void)
{
    static char path[600];
    char out[600];
    if (th_cmd("ls -d \"$PAIMON_REPO\"/deploy/node_modules/@foundry-rs/anvil-*/bin/anvil | head -1",
               out, sizeof out) == 0)
        util_strlcpy(path, out, sizeof path);
    else
        snprintf(path, sizeof path, "%s", th_repo_path("deploy/node_modules/.bin/anvil"));
    return path;
}

static void anvil_start(void)
{
    char port[16], log[600];
    snprintf(port, sizeof port, "%d", anvil_port);
    snprintf(log, sizeof log, "%s/listener-anvil.log", getenv("PAIMON_TEST_RUN_DIR"));
    char *argv[] = {(char *)anvil_bin(), "--host", "127.0.0.1", "--port", port, "--silent", NULL};
    anvil_pid = spawn(argv, NULL, log);
    assert_true(anvil_pid > 0);
    for (int i = 0; i < 100; i++) {
        uint64_t n;
        if (rpc_block_number(rpc, &n, NULL, 0) == 0)
            return;
        util_sleep_ms(100);
    }
    fail_msg("anvil did not start on %d", anvil_port);
}

/* ------------------------------------------------------------------ chain helpers */

static cJSON *call(const char *method, cJSON *params)
{
    char err[256];
    cJSON *r = rpc_call(rpc, method, params, err, sizeof err);
    if (!r)
        fail_msg("%s: %s", method, err);
    return r;
}

static uint64_t head(void)
{
    uint64_t n = 0;
    assert_int_equal(rpc_block_number(rpc, &n, NULL, 0), 0);
    return n;
}

static cJSON *send_tx(const char *to, const char *data)
{
    cJSON *tx = cJSON_CreateObject();
    cJSON_AddStringToObject(tx, "from", ACCOUNT0);
    if (to)
        cJSON_AddStringToObject(tx, "to", to);
    cJSON_AddStringToObject(tx, "data", data);
    cJSON_AddStringToObject(tx, "gas", "0x1c9c380");
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, tx);
    cJSON *h = call("eth_sendTransaction", p);
    assert_true(cJSON_IsString(h));
    uint8_t hash[32];
    assert_int_equal(hex_decode_fixed(h->valuestring, hash, 32, NULL, 0), 0);
    cJSON_Delete(h);
    cJSON *rcpt = NULL;
    for (int i = 0; i < 100 && rpc_get_tx_receipt(rpc, hash, &rcpt, NULL, 0) != 0; i++)
        util_sleep_ms(20);
    assert_non_null(rcpt);
    return rcpt;
}

static void deploy(char out[43])
{
    char bin[600], code[4096];
    snprintf(bin, sizeof bin, "cat %s/Emitter.bin", emitter_dir);
    assert_int_equal(th_cmd(bin, code, sizeof code), 0);
    cJSON *r = send_tx(NULL, code);
    const cJSON *a = cJSON_GetObjectItem(r, "contractAddress");
    assert_true(cJSON_IsString(a));
    util_strlcpy(out, a->valuestring, 43);
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p + 32);
    cJSON_Delete(r);
}

/* emitMany(n, amount): one transaction, one block (automine), n Ping logs. */
static void emit_many(const char *addr, unsigned n, unsigned amount)
{
    const abi_fn *fn = abi_contract_fn(emitter_abi, "emitMany");
    assert_non_null(fn);
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateNumber(n));
    cJSON_AddItemToArray(args, cJSON_CreateNumber(amount));
    uint8_t *data;
    size_t len;
    assert_int_equal(abi_fn_encode_call(fn, args, &data, &len, NULL, 0), 0);
    cJSON_Delete(args);
    char *hex = hex_encode_new(data, len, 1);
    free(data);
    cJSON_Delete(send_tx(addr, hex));
    free(hex);
}

static void emit_pause(const char *addr)
{
    const abi_fn *fn = abi_contract_fn(emitter_abi, "pause");
    char hex[16];
    hex_encode(fn->selector, 4, 1, hex, sizeof hex);
    cJSON_Delete(send_tx(addr, hex));
}

/* ------------------------------------------------------------------ listener helpers */

typedef struct listener {
    pid_t pid;
    int port;
} listener;

static const char *db_url;
static pid_t children[8]; /* killed by the per-test teardown, even after a failure */

static listener listener_start(const char *contracts, const char *extra1, const char *extra2,
                               int slot)
{
    static char env[16][1500];
    char log[600];
    listener l = {.port = http_base + slot};
    int n = 0;
    snprintf(env[n++], sizeof env[0], "PAIMON_REDIS_URL=%s", th_redis_url());
    snprintf(env[n++], sizeof env[0], "PAIMON_DATABASE_URL=%s", db_url);
    snprintf(env[n++], sizeof env[0], "PAIMON_HTTP_PORT=%d", l.port);
    snprintf(env[n++], sizeof env[0], "PAIMON_RPC_URLS=%s", anvil_url);
    snprintf(env[n++], sizeof env[0], "PAIMON_WS_URL=%s", ws_url);
    snprintf(env[n++], sizeof env[0], "PAIMON_LISTENER_CONTRACTS=%s", contracts);
    snprintf(env[n++], sizeof env[0], "PAIMON_LISTENER_CONFIRMATIONS=0");
    snprintf(env[n++], sizeof env[0], "PAIMON_LISTENER_LEASE_TTL=1500ms");
    snprintf(env[n++], sizeof env[0], "PAIMON_LISTENER_POLL=100ms");
    snprintf(env[n++], sizeof env[0], "PAIMON_RPC_TIMEOUT=2s");
    snprintf(env[n++], sizeof env[0], "PAIMON_LOG_LEVEL=info");
    if (extra1)
        snprintf(env[n++], sizeof env[0], "%s", extra1);
    if (extra2)
        snprintf(env[n++], sizeof env[0], "%s", extra2);
    char *envp[17];
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    snprintf(log, sizeof log, "%s/listener-%d.log", getenv("PAIMON_TEST_RUN_DIR"), slot);
    char *argv[] = {(char *)th_bin("paimon-listener"), NULL};
    l.pid = spawn(argv, envp, log);
    assert_true(l.pid > 0);
    for (int i = 0; i < 8; i++)
        if (children[i] <= 0 || kill(children[i], 0) != 0) {
            children[i] = l.pid;
            break;
        }
    return l;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    cJSON **out = ud;
    char *buf = util_malloc(s * n + 1);
    memcpy(buf, p, s * n);
    buf[s * n] = '\0';
    cJSON_Delete(*out);
    *out = cJSON_Parse(buf);
    free(buf);
    return s * n;
}

/* GET -> parsed body (owned) or NULL; *code the status. Bodies here are small. */
static cJSON *http_get_json(int port, const char *path, long *code)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    cJSON *body = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512000L);
    *code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
    curl_easy_cleanup(c);
    return body;
}

/* Walks /v1/events in pages of `limit` from the first to the last next_cursor and
 * returns how many rows it saw; every row must come after the one before it in key
 * order (block number, log index, block hash), across page boundaries too. */
static size_t page_events(int port, int limit)
{
    char path[256], prev[160] = "";
    snprintf(path, sizeof path, "/v1/events?limit=%d", limit);
    size_t seen = 0;
    for (int page = 0; page < 1000; page++) {
        long code;
        cJSON *body = http_get_json(port, path, &code);
        assert_int_equal(code, 200);
        cJSON *data = cJSON_GetObjectItem(body, "data");
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(data, "items"))
        {
            char key[160];
            snprintf(key, sizeof key, "%012d.%06d.%s",
                     cJSON_GetObjectItem(it, "block_number")->valueint,
                     cJSON_GetObjectItem(it, "log_index")->valueint,
                     cJSON_GetObjectItem(it, "block_hash")->valuestring);
            assert_true(strcmp(prev, key) < 0);
            snprintf(prev, sizeof prev, "%s", key);
            seen++;
        }
        const cJSON *next = cJSON_GetObjectItem(data, "next_cursor");
        if (!cJSON_IsString(next)) {
            cJSON_Delete(body);
            return seen;
        }
        snprintf(path, sizeof path, "/v1/events?limit=%d&cursor=%s", limit, next->valuestring);
        cJSON_Delete(body);
    }
    fail_msg("more than 1000 pages");
    return seen;
}

static long long checkpoint(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT coalesce(max(last_block), -1) FROM listener.checkpoints");
    long long v = PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

static void wait_checkpoint(PGconn *pg, long long want, int timeout_ms)
{
    int64_t end = util_mono_ms() + timeout_ms;
    while (util_mono_ms() < end) {
        if (checkpoint(pg) >= want)
            return;
        util_sleep_ms(50);
    }
    fail_msg("checkpoint %lld did not reach %lld", checkpoint(pg), want);
}

/* Every message on chain.events (all priorities): ids into a cJSON array, plus counts. */
typedef struct stream_stats {
    size_t total, unique, removed, critical;
} stream_stats;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static stream_stats read_stream(redisContext *rc)
{
    stream_stats s = {0};
    static const char *const prio[] = {"critical", "high", "normal"};
    char **ids = NULL;
    size_t cap = 0;
    for (int p = 0; p < 3; p++) {
        redisReply *r = redisCommand(rc, "XRANGE paimon:chain.events:%s - +", prio[p]);
        assert_non_null(r);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *fields = r->element[i]->element[1];
            for (size_t k = 0; k + 1 < fields->elements; k += 2) {
                if (strcmp(fields->element[k]->str, "env") != 0)
                    continue;
                cJSON *e = cJSON_Parse(fields->element[k + 1]->str);
                const char *id = cJSON_GetObjectItem(e, "id")->valuestring;
                if (s.total == cap) {
                    cap = cap ? cap * 2 : 256;
                    char **grown = realloc(ids, cap * sizeof *ids);
                    assert_non_null(grown);
                    ids = grown;
                }
                ids[s.total++] = util_strdup(id);
                if (strstr(id, ":removed:"))
                    s.removed++;
                if (p == 0)
                    s.critical++;
                cJSON_Delete(e);
            }
        }
        freeReplyObject(r);
    }
    if (ids)
        qsort(ids, s.total, sizeof *ids, cmp_str);
    for (size_t i = 0; i < s.total; i++)
        if (i == 0 || strcmp(ids[i], ids[i - 1]) != 0)
            s.unique++;
    for (size_t i = 0; i < s.total; i++)
        free(ids[i]);
    free(ids);
    return s;
}

static void quiet(void *arg, const char *msg);

static PGconn *fresh(const char *name)
{
    db_url = th_pg_fresh_db(name);
    static char keep[512];
    util_strlcpy(keep, db_url, sizeof keep);
    db_url = keep;
    PGconn *pg = th_pg_connect(db_url);
    if (th_pg_migrate(pg, "listener") != 0)
        fail_msg("listener migrations did not apply");
    PQsetNoticeProcessor(pg, quiet, NULL);
    return pg;
}

/* A freshly deployed emitter in a, and the PAIMON_LISTENER_CONTRACTS value for it. */
static void deploy_one(char a[43], char contracts[1400])
{
    deploy(a);
    snprintf(contracts, 1400, "%s=%s", a, abi_path);
}

/* The listener's gap report over HTTP says nothing is missing. */
static void assert_no_gaps(int port)
{
    long code;
    cJSON *body = http_get_json(port, "/v1/gaps", &code);
    assert_int_equal(code, 200);
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "data"), "missing_blocks")->valueint, 0);
    cJSON_Delete(body);
}

/* Live events not on the stream by the publish watermark, or -1 if the watermark
 * lags the checkpoint (everything committed must be out once the listener is idle). */
static long long unpublished(PGconn *pg)
{
    if (th_pg_scalar(pg, "SELECT count(*) FROM listener.checkpoints "
                         "WHERE published_block <> last_block") != 0)
        return -1;
    return th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events e JOIN "
                            "listener.checkpoints c USING (chain_id) WHERE NOT e.removed AND NOT "
                            "e.published AND e.block_number > c.published_block");
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* ------------------------------------------------------------------ tests */

static int setup(void **state)
{
    (void)state;
    int base = atoi(getenv("PAIMON_TEST_PORT_BASE") ? getenv("PAIMON_TEST_PORT_BASE") : "17100");
    anvil_port = base + 40;
    dead_port = base + 41;
    http_base = base + 50;
    snprintf(anvil_url, sizeof anvil_url, "http://127.0.0.1:%d", anvil_port);
    snprintf(ws_url, sizeof ws_url, "ws://127.0.0.1:%d", anvil_port);
    snprintf(emitter_dir, sizeof emitter_dir, "%s/listener-emitter", getenv("PAIMON_TEST_RUN_DIR"));
    char cmd[1200], out[256];
    snprintf(cmd, sizeof cmd, "node %s %s && echo built",
             th_repo_path("tests/integration/data/listener/build.mjs"), emitter_dir);
    if (th_cmd(cmd, out, sizeof out) != 0)
        return -1;
    snprintf(abi_path, sizeof abi_path, "%s/Emitter.abi.json", emitter_dir);
    emitter_abi = abi_contract_load(abi_path, NULL, 0);
    const char *urls[] = {anvil_url};
    rpc_config rc = {.urls = urls, .nurls = 1, .timeout_ms = 5000};
    rpc = rpc_client_new(&rc, NULL, 0);
    return emitter_abi && rpc ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rpc_client_free(rpc);
    abi_contract_free(emitter_abi);
    return 0;
}

static int per_test_setup(void **state)
{
    (void)state;
    anvil_start();
    return 0;
}

static int per_test_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 8; i++) {
        stop_pid(children[i], SIGKILL);
        children[i] = 0;
    }
    stop_pid(anvil_pid, SIGTERM);
    anvil_pid = 0;
    return 0;
}

/* N events across M blocks from two contracts, half before the listener starts
 * (backfill) and half after (live): each exactly once in the stream and the table; the
 * pause event routes to critical; the read endpoints page through them all; no gaps. */
static void test_exactly_once_backfill_then_live(void **state)
{
    (void)state;
    PGconn *pg = fresh("listener_once");
    redisContext *rc = th_redis_fresh();
    char a[43], b[43], contracts[1400];
    deploy(a);
    deploy(b);
    snprintf(contracts, sizeof contracts, "%s=%s,%s=%s", a, abi_path, b, abi_path);
    size_t expect = 0;
    for (int i = 0; i < 6; i++) {
        emit_many(i % 2 ? a : b, 10 + (unsigned)i, 1000);
        expect += 10 + (size_t)i;
    }
    emit_pause(a);
    expect++;
    listener l = listener_start(contracts, "PAIMON_LISTENER_RANGE_INITIAL=3",
                                "PAIMON_LISTENER_RANGE_MAX=4", 0);
    wait_checkpoint(pg, (long long)head(), 15000);
    for (int i = 0; i < 5; i++, expect += 7)
        emit_many(i % 2 ? b : a, 7, 5);
    wait_checkpoint(pg, (long long)head(), 10000);
    util_sleep_ms(300);
    stream_stats s = read_stream(rc);
    assert_int_equal(s.total, expect);
    assert_int_equal(s.unique, expect);
    assert_int_equal(s.critical, 1);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events"),
                     (long long)expect);
    assert_int_equal(unpublished(pg), 0);
    /* Pages of 25 cover everything exactly once. */
    assert_int_equal(page_events(l.port, 25), expect);
    long code;
    cJSON *body = http_get_json(l.port, "/v1/events?event=Paused", &code);
    assert_int_equal(code, 200);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "data"), "items")), 1);
    cJSON_Delete(body);
    body = http_get_json(l.port, "/v1/events?limit=0", &code);
    assert_int_equal(code, 400);
    cJSON_Delete(body);
    body = http_get_json(l.port, "/v1/events?tx_hash=0x12", &code);
    assert_int_equal(code, 400);
    cJSON_Delete(body);
    assert_no_gaps(l.port);
    stop_pid(l.pid, SIGTERM);
    redisFree(rc);
    PQfinish(pg);
}

/* SIGKILL during the backfill and again during live follow; each restart resumes from
 * the checkpoint: no gap, no duplicate (unpublished rows are re-sent with the same ids,
 * so the stream may repeat an id only if the kill fell between XADD and marking). */
static void test_sigkill_backfill_and_live(void **state)
{
    (void)state;
    PGconn *pg = fresh("listener_kill");
    redisContext *rc = th_redis_fresh();
    char a[43], contracts[1400];
    deploy_one(a, contracts);
    size_t expect = 0;
    for (int i = 0; i < 60; i++, expect += 50)
        emit_many(a, 50, 1);
    uint64_t h = head();
    listener l = listener_start(contracts, "PAIMON_LISTENER_RANGE_INITIAL=1",
                                "PAIMON_LISTENER_RANGE_MAX=1", 0);
    wait_checkpoint(pg, (long long)h - 45, 20000); /* part-way through */
    stop_pid(l.pid, SIGKILL);
    assert_true(checkpoint(pg) < (long long)h);
    l = listener_start(contracts, NULL, NULL, 0);
    wait_checkpoint(pg, (long long)head(), 20000);
    /* The catch-up batch is published behind the checkpoint (pipelined): let it land
     * so the next kill falls among live batches, whose repeats the bound counts. */
    int64_t pub_end = util_mono_ms() + 20000;
    while (util_mono_ms() < pub_end && unpublished(pg) != 0)
        util_sleep_ms(20);
    assert_int_equal(unpublished(pg), 0);
    for (int i = 0; i < 5; i++, expect += 20)
        emit_many(a, 20, 2);
    util_sleep_ms(30);
    stop_pid(l.pid, SIGKILL);
    for (int i = 0; i < 5; i++, expect += 20)
        emit_many(a, 20, 3);
    l = listener_start(contracts, NULL, NULL, 0);
    wait_checkpoint(pg, (long long)head(), 20000);
    util_sleep_ms(300);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events"),
                     (long long)expect);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(DISTINCT id) FROM listener.chain_events"),
                     (long long)expect);
    assert_int_equal(unpublished(pg), 0);
    stream_stats s = read_stream(rc);
    assert_int_equal(s.unique, expect);
    /* Each kill can repeat only the batch in flight (sent, watermark not yet moved). */
    assert_true(s.total - s.unique <= 100);
    assert_no_gaps(l.port);
    stop_pid(l.pid, SIGTERM);
    redisFree(rc);
    PQfinish(pg);
}

/* A crash between the commit and the publish: the rows are in the table, the stream
 * lacks them and the watermark is below them. Recreated from a finished run by
 * emptying the stream and lowering the watermark; the restarted listener re-sends
 * exactly the events above the watermark (same ids) and raises it to the checkpoint. */
static void test_watermark_republish(void **state)
{
    (void)state;
    PGconn *pg = fresh("listener_wm");
    redisContext *rc = th_redis_fresh();
    char a[43], contracts[1400];
    deploy_one(a, contracts);
    for (int i = 0; i < 8; i++)
        emit_many(a, 10, 7);
    listener l = listener_start(contracts, NULL, NULL, 0);
    wait_checkpoint(pg, (long long)head(), 15000);
    int64_t end = util_mono_ms() + 5000;
    while (util_mono_ms() < end && unpublished(pg) != 0)
        util_sleep_ms(50);
    assert_int_equal(unpublished(pg), 0);
    stop_pid(l.pid, SIGKILL);
    assert_int_equal(read_stream(rc).total, 80);
    freeReplyObject(redisCommand(rc, "DEL paimon:chain.events:critical paimon:chain.events:high "
                                     "paimon:chain.events:normal"));
    long long lo = th_pg_scalar(pg, "SELECT min(block_number) FROM listener.chain_events");
    long long wm = lo + 3;
    long long expect = th_pg_scalarf(
        pg, "SELECT count(*) FROM listener.chain_events WHERE block_number > %lld", wm);
    assert_true(expect > 0 && expect < 80);
    assert_int_equal(th_pg_exec(pg,
                                "UPDATE listener.checkpoints SET published_block = " /* the crash */
                                "(SELECT min(block_number) + 3 FROM listener.chain_events)"),
                     0);
    assert_true(unpublished(pg) != 0);
    l = listener_start(contracts, NULL, NULL, 0);
    end = util_mono_ms() + 10000;
    while (util_mono_ms() < end && unpublished(pg) != 0)
        util_sleep_ms(50);
    assert_int_equal(unpublished(pg), 0);
    util_sleep_ms(200);
    stream_stats s = read_stream(rc);
    assert_int_equal(s.total, (size_t)expect);
    assert_int_equal(s.unique, (size_t)expect);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.checkpoints "
                                      "WHERE published_block = last_block"),
                     1);
    stop_pid(l.pid, SIGTERM);
    redisFree(rc);
    PQfinish(pg);
}

/* The store's COPY path and its fallback, without a chain: new rows go in by COPY
 * (text escaping of awkward JSON included); the same rows again, one of them
 * orphaned meanwhile, hit the unique key, roll back to the savepoint and take the
 * ON CONFLICT path, which revives the orphan: same rows, no error, nothing twice. */
typedef struct copy_tx {
    store_row *rows;
    size_t n;
    int copied;
} copy_tx;

static int copy_fn(db_conn *c, void *ud, char *err, size_t errlen)
{
    copy_tx *t = ud;
    return store_insert_events(c, 31337, t->rows, t->n, 0, &t->copied, err, errlen);
}

static void test_copy_duplicate_fallback(void **state)
{
    (void)state;
    PGconn *pg = fresh("listener_copy");
    char err[256];
    db_pool *pool = db_pool_new(db_url, 1, err, sizeof err);
    assert_non_null(pool);
    store_row rows[3];
    memset(rows, 0, sizeof rows);
    char sig[] = "Ping(address,uint256,uint256)";
    char args0[] = "{\"s\":\"tab\\there \\\\ back \\\"q\\\" nl\\nend\"}";
    char args1[] = "{\"amount\":\"1\"}";
    for (int i = 0; i < 3; i++) {
        store_row *w = &rows[i];
        char tx[67];
        snprintf(tx, sizeof tx, "0x%064x", 0xab + i);
        util_strlcpy(w->tx_hash, tx, sizeof w->tx_hash);
        snprintf(w->block_hash, sizeof w->block_hash, "0x%064x", 0x100 + i / 2);
        snprintf(w->id, sizeof w->id, "31337:%s:%d", tx, i);
        w->block_number = 10 + i / 2;
        w->block_time = 1700000000 + i / 2;
        w->tx_index = i;
        w->log_index = i;
        util_strlcpy(w->address, "0x00000000000000000000000000000000000000aa", sizeof w->address);
        util_strlcpy(w->event, "Ping", sizeof w->event);
        w->signature = sig;
        w->args = i == 0 ? args0 : args1;
        w->prio = BUS_NORMAL;
    }
    copy_tx t = {.rows = rows, .n = 3};
    assert_int_equal(db_tx(pool, copy_fn, &t, err, sizeof err), 0);
    assert_int_equal(t.copied, 1);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events"), 3);
    assert_string_equal(th_pg_textf(pg, "SELECT args->>'s' FROM listener.chain_events "
                                        "WHERE log_index = 0"),
                        "tab\there \\ back \"q\" nl\nend");
    assert_int_equal(th_pg_scalar(pg,
                                  "SELECT count(*) FROM listener.chain_events WHERE "
                                  "block_time = to_timestamp(1700000001) AND block_number = 11"),
                     1);
    assert_int_equal(th_pg_exec(pg, "UPDATE listener.chain_events SET removed = true, "
                                    "published = true WHERE log_index = 2"),
                     0);
    t.copied = -1;
    assert_int_equal(db_tx(pool, copy_fn, &t, err, sizeof err), 0);
    assert_int_equal(t.copied, 0);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events"), 3);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events "
                                      "WHERE removed OR published"),
                     0);
    db_pool_free(pool);
    PQfinish(pg);
}

/* evm_snapshot, events in 3 blocks, listener reads them; evm_revert and other
 * transactions in 4 blocks: the orphans are marked removed and compensated, the
 * canonical events delivered. */
static void test_reorg_snapshot_revert(void **state)
{
    (void)state;
    PGconn *pg = fresh("listener_reorg");
    redisContext *rc = th_redis_fresh();
    char a[43], contracts[1400];
    deploy_one(a, contracts);
    emit_many(a, 5, 1);
    listener l = listener_start(contracts, NULL, NULL, 0);
    wait_checkpoint(pg, (long long)head(), 15000);
    cJSON *snap = call("evm_snapshot", cJSON_CreateArray());
    for (int i = 0; i < 3; i++)
        emit_many(a, 4, 100);
    wait_checkpoint(pg, (long long)head(), 10000);
    util_sleep_ms(200);
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_Duplicate(snap, 1));
    cJSON_Delete(call("evm_revert", p));
    cJSON_Delete(snap);
    for (int i = 0; i < 4; i++)
        emit_many(a, 3, 200);
    uint64_t h = head();
    int64_t end = util_mono_ms() + 15000;
    while (util_mono_ms() < end &&
           th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events WHERE removed") < 12)
        util_sleep_ms(50);
    wait_checkpoint(pg, (long long)h, 10000);
    util_sleep_ms(300);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events WHERE removed"),
                     12);
    assert_int_equal(
        th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events WHERE NOT removed"), 5 + 12);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events WHERE removed "
                                      "AND args->>'amount' <> '100'"),
                     0);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events WHERE "
                                      "NOT removed AND args->>'amount' = '200'"),
                     12);
    stream_stats s = read_stream(rc);
    assert_int_equal(s.removed, 12);
    assert_int_equal(s.total, 5 + 12 + 12 + 12);
    assert_int_equal(s.unique, s.total);
    /* Pages of one row walk orphans and their replacements (the same block number and
     * log index, another block hash) exactly once each, in key order. */
    assert_int_equal(page_events(l.port, 1), 12 + 5 + 12);
    stop_pid(l.pid, SIGTERM);
    redisFree(rc);
    PQfinish(pg);
}

/* Alerts on paimon:alerts:critical: how many alert.raised envelopes with severity
 * critical and category chain.reorg. */
static int count_reorg_alerts(redisContext *rc)
{
    redisReply *r = redisCommand(rc, "XRANGE paimon:alerts:critical - +");
    assert_non_null(r);
    int n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *fields = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < fields->elements; k += 2) {
            if (strcmp(fields->element[k]->str, "env") != 0)
                continue;
            cJSON *e = cJSON_Parse(fields->element[k + 1]->str);
            const cJSON *type = cJSON_GetObjectItem(e, "type");
            const cJSON *p = cJSON_GetObjectItem(e, "payload");
            const cJSON *sev = cJSON_GetObjectItem(p, "severity");
            const cJSON *cat = cJSON_GetObjectItem(p, "category");
            n += cJSON_IsString(type) && strcmp(type->valuestring, "alert.raised") == 0 &&
                 cJSON_IsString(sev) && strcmp(sev->valuestring, "critical") == 0 &&
                 cJSON_IsString(cat) && strcmp(cat->valuestring, "chain.reorg") == 0;
            cJSON_Delete(e);
        }
    }
    freeReplyObject(r);
    return n;
}

static void mine_empty(unsigned n)
{
    char hexn[24];
    snprintf(hexn, sizeof hexn, "0x%x", n);
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(hexn));
    cJSON_Delete(call("anvil_mine", p));
}

/* The listener read 70 blocks past a snapshot with the smallest reorg window (64);
 * evm_revert and a different, longer branch replace all of them, so no recorded
 * block is canonical any more: a critical alert.raised goes to paimon:alerts:critical,
 * checkpoints.halted is set, the checkpoint and the events stay as they were (nothing
 * orphaned, nothing of the new branch read), readiness fails, and a restart stays
 * halted. */
static void test_reorg_deeper_than_window(void **state)
{
    (void)state;
    PGconn *pg = fresh("listener_deep_reorg");
    redisContext *rc = th_redis_fresh();
    char a[43], contracts[1400];
    deploy_one(a, contracts);
    emit_many(a, 5, 1);
    listener l = listener_start(contracts, "PAIMON_LISTENER_REORG_WINDOW=64", NULL, 0);
    wait_checkpoint(pg, (long long)head(), 15000);
    cJSON *snap = call("evm_snapshot", cJSON_CreateArray());
    emit_many(a, 4, 100);
    mine_empty(68);
    emit_many(a, 4, 100);
    long long top = (long long)head();
    wait_checkpoint(pg, top, 15000);
    util_sleep_ms(200);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events"), 13);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.block_hashes"), 64);
    assert_int_equal(count_reorg_alerts(rc), 0);
    long code;
    cJSON *body = http_get_json(l.port, "/health/ready", &code);
    cJSON_Delete(body);
    assert_int_equal(code, 200);

    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_Duplicate(snap, 1));
    cJSON_Delete(call("evm_revert", p));
    cJSON_Delete(snap);
    emit_many(a, 3, 200); /* the first block after the fork differs, so every one above does */
    mine_empty(75);
    emit_many(a, 3, 200);
    assert_true((long long)head() > top);

    int64_t end = util_mono_ms() + 15000;
    while (util_mono_ms() < end && count_reorg_alerts(rc) == 0)
        util_sleep_ms(50);
    assert_int_equal(count_reorg_alerts(rc), 1);
    end = util_mono_ms() + 5000;
    while (util_mono_ms() < end &&
           th_pg_scalar(pg, "SELECT count(*) FROM listener.checkpoints WHERE halted IS NOT NULL") ==
               0)
        util_sleep_ms(50);
    assert_int_equal(
        th_pg_scalar(pg, "SELECT count(*) FROM listener.checkpoints WHERE halted IS NOT NULL"), 1);

    /* Stopped advancing: more blocks arrive, nothing moves. */
    emit_many(a, 2, 300);
    util_sleep_ms(1200);
    assert_int_equal(checkpoint(pg), top);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events"), 13);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events WHERE removed"),
                     0);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events "
                                      "WHERE args->>'amount' IN ('200', '300')"),
                     0);
    stream_stats s = read_stream(rc);
    assert_int_equal(s.total, 13);
    assert_int_equal(s.removed, 0);
    body = http_get_json(l.port, "/health/ready", &code);
    cJSON_Delete(body);
    assert_int_equal(code, 503);
    body = http_get_json(l.port, "/v1/checkpoints", &code);
    assert_int_equal(code, 200);
    const cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(body, "data"), 0);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(row, "halted")));
    cJSON_Delete(body);

    /* A restart does not resume on its own: halted lives in the checkpoint row. */
    stop_pid(l.pid, SIGTERM);
    l = listener_start(contracts, "PAIMON_LISTENER_REORG_WINDOW=64", NULL, 0);
    util_sleep_ms(1500);
    assert_int_equal(checkpoint(pg), top);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM listener.chain_events"), 13);
    body = http_get_json(l.port, "/health/ready", &code);
    cJSON_Delete(body);
    assert_int_equal(code, 503);
    stop_pid(l.pid, SIGTERM);
    redisFree(rc);
    PQfinish(pg);
}

/* The first RPC endpoint is dead: the listener fails over and delivers everything. */
static void test_rpc_failover(void **state)
{
    (void)state;
    PGconn *pg = fresh("listener_failover");
    redisContext *rc = th_redis_fresh();
    char a[43], contracts[1400], urls[160];
    deploy_one(a, contracts);
    for (int i = 0; i < 4; i++)
        emit_many(a, 10, 1);
    snprintf(urls, sizeof urls, "PAIMON_RPC_URLS=http://127.0.0.1:%d,%s", dead_port, anvil_url);
    listener l = listener_start(contracts, urls, "PAIMON_WS_URL=", 0);
    wait_checkpoint(pg, (long long)head(), 20000);
    emit_many(a, 10, 2);
    wait_checkpoint(pg, (long long)head(), 10000);
    util_sleep_ms(300);
    stream_stats s = read_stream(rc);
    assert_int_equal(s.unique, 50);
    assert_int_equal(s.total, 50);
    stop_pid(l.pid, SIGTERM);
    redisFree(rc);
    PQfinish(pg);
}

static int is_leader(int port)
{
    long code;
    cJSON *b = http_get_json(port, "/v1/checkpoints", &code);
    const cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "data"), 0);
    int yes = cJSON_IsTrue(cJSON_GetObjectItem(row, "leader_here"));
    cJSON_Delete(b);
    return yes;
}

/* Two replicas: one leads; killing it lets the standby take over within the lease TTL
 * and go on without loss or duplicates. */
static void test_standby_takes_over(void **state)
{
    (void)state;
    PGconn *pg = fresh("listener_standby");
    redisContext *rc = th_redis_fresh();
    char a[43], contracts[1400];
    deploy_one(a, contracts);
    emit_many(a, 10, 1);
    listener l1 = listener_start(contracts, NULL, NULL, 0);
    listener l2 = listener_start(contracts, NULL, NULL, 1);
    wait_checkpoint(pg, (long long)head(), 15000);
    util_sleep_ms(300);
    int lead1 = is_leader(l1.port), lead2 = is_leader(l2.port);
    assert_int_equal(lead1 + lead2, 1);
    listener *leader = lead1 ? &l1 : &l2, *standby = lead1 ? &l2 : &l1;
    stop_pid(leader->pid, SIGKILL);
    int64_t t0 = util_mono_ms();
    emit_many(a, 10, 2);
    wait_checkpoint(pg, (long long)head(), 10000);
    int64_t took = util_mono_ms() - t0;
    assert_true(took < 1500 + 2000); /* TTL + a poll or two */
    assert_true(is_leader(standby->port));
    util_sleep_ms(300);
    stream_stats s = read_stream(rc);
    assert_int_equal(s.unique, 20);
    assert_int_equal(s.total, 20);
    stop_pid(standby->pid, SIGTERM);
    redisFree(rc);
    PQfinish(pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exactly_once_backfill_then_live, per_test_setup,
                                        per_test_teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_backfill_and_live, per_test_setup,
                                        per_test_teardown),
        cmocka_unit_test_setup_teardown(test_watermark_republish, per_test_setup,
                                        per_test_teardown),
        cmocka_unit_test(test_copy_duplicate_fallback),
        cmocka_unit_test_setup_teardown(test_reorg_snapshot_revert, per_test_setup,
                                        per_test_teardown),
        cmocka_unit_test_setup_teardown(test_reorg_deeper_than_window, per_test_setup,
                                        per_test_teardown),
        cmocka_unit_test_setup_teardown(test_rpc_failover, per_test_setup, per_test_teardown),
        cmocka_unit_test_setup_teardown(test_standby_takes_over, per_test_setup, per_test_teardown),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
