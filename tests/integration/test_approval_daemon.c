/* Integration test of the real paimon-approval binary: migrations applied, the daemon
 * started against the harness PostgreSQL, Redis and anvil devchain; the vault's real
 * RedemptionRequested log for the seeded request #1 (below the threshold) is published on
 * chain.events as the listener shapes it, and the daemon books it and approves it on chain
 * through its outbox (status Approved read back with cast). The internal HTTP API answers
 * reads, refuses bad input and unsigned or under-privileged writes with 4xx envelopes, and
 * the daemon stops cleanly on SIGTERM. A second run votes through the HTTP API with real
 * EIP-712 signatures from devchain approver keys: replayed and mis-attributed signatures
 * are refused, the second distinct approval reaches the quorum and exactly one
 * approveRedemption lands on chain. */
#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "abi.h"
#include "bus.h"
#include "eip712.h"
#include "envelope.h"
#include "harness.h"
#include "hex.h"
#include "migrate.h"
#include "money.h"
#include "rpc.h"
#include "util.h"

static struct {
    cJSON *dc;
    char rpc_url[128];
    uint64_t chain_id;
    char vault[43];
    rpc_client *rpc;
    abi_contract *abi_low;
} g;

static cJSON *rpc(const char *method, cJSON *params)
{
    char err[256];
    cJSON *r = rpc_call(g.rpc, method, params ? params : cJSON_CreateArray(), err, sizeof err);
    if (!r)
        fail_msg("%s: %s", method, err);
    return r;
}

static int chain_status(const char *request_id)
{
    char cmd[512], out[2048];
    snprintf(cmd, sizeof cmd,
             "call --rpc-url %s %s 'getRedemption(uint256)((uint256,address,address,uint8,uint8,"
             "uint256,uint256,uint256,uint64,uint64,uint64,address))' %s",
             g.rpc_url, g.vault, request_id);
    if (th_cast(cmd, out, sizeof out) != 0)
        fail_msg("cast call getRedemption: %s", out);
    char *p = out;
    for (int commas = 0; *p && commas < 4; p++)
        if (*p == ',')
            commas++;
    return atoi(p);
}

/* The latest vault log of `event`, shaped as the listener publishes it. */
static envelope *event_envelope(const char *event, const char *request_id)
{
    const abi_event *ev = abi_contract_event(g.abi_low, event);
    assert_non_null(ev);
    char topic[HEX_B32_STRLEN];
    hex_encode(ev->topic0, 32, 1, topic, sizeof topic);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "address", g.vault);
    cJSON_AddStringToObject(f, "fromBlock", "0x0");
    cJSON_AddStringToObject(f, "toBlock", "latest");
    cJSON *topics = cJSON_AddArrayToObject(f, "topics");
    cJSON_AddItemToArray(topics, cJSON_CreateString(topic));
    rpc_error e;
    rpc_error_init(&e);
    cJSON *logs = rpc_get_logs(g.rpc, f, &e);
    cJSON_Delete(f);
    assert_non_null(logs);
    cJSON *found = NULL, *dec = NULL;
    cJSON *log;
    cJSON_ArrayForEach(log, logs)
    {
        cJSON *d = abi_decode_log_json(g.abi_low, log, NULL, 0);
        assert_non_null(d);
        const char *rid =
            cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "args"), "requestId"));
        if (rid && strcmp(rid, request_id) == 0) {
            cJSON_Delete(dec);
            dec = d;
            found = log;
        } else {
            cJSON_Delete(d);
        }
    }
    if (!found)
        fail_msg("no %s log for request %s", event, request_id);
    uint64_t bn = 0;
    rpc_parse_quantity(cJSON_GetObjectItem(found, "blockNumber"), &bn);
    uint64_t li = 0, ti = 0;
    rpc_parse_quantity(cJSON_GetObjectItem(found, "logIndex"), &li);
    rpc_parse_quantity(cJSON_GetObjectItem(found, "transactionIndex"), &ti);
    rpc_header h;
    assert_int_equal(rpc_get_block_header(g.rpc, (int64_t)bn, &h, NULL, 0), 0);
    char ts[32], type[80], id[200];
    envelope_format_ts((int64_t)h.timestamp * 1000, ts);
    char txh[HEX_B32_STRLEN];
    util_strlcpy(txh, cJSON_GetStringValue(cJSON_GetObjectItem(found, "transactionHash")),
                 sizeof txh);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "chain_id", (double)g.chain_id);
    cJSON_AddStringToObject(p, "address", g.vault);
    cJSON_AddStringToObject(p, "event", event);
    cJSON_AddStringToObject(p, "signature",
                            cJSON_GetStringValue(cJSON_GetObjectItem(dec, "signature")));
    cJSON_AddItemToObject(p, "args", cJSON_DetachItemFromObject(dec, "args"));
    cJSON_AddNumberToObject(p, "block_number", (double)bn);
    cJSON_AddStringToObject(p, "block_hash",
                            cJSON_GetStringValue(cJSON_GetObjectItem(found, "blockHash")));
    cJSON_AddStringToObject(p, "block_time", ts);
    cJSON_AddStringToObject(p, "tx_hash", txh);
    cJSON_AddNumberToObject(p, "tx_index", (double)ti);
    cJSON_AddNumberToObject(p, "log_index", (double)li);
    cJSON_AddBoolToObject(p, "removed", 0);
    cJSON_Delete(dec);
    cJSON_Delete(logs);
    snprintf(type, sizeof type, "chain.redemption_%s", event + strlen("Redemption"));
    for (char *c = type; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
    snprintf(id, sizeof id, "%llu:%s:%llu", (unsigned long long)g.chain_id, txh,
             (unsigned long long)li);
    return envelope_new(id, type, "listener", NULL, p);
}

typedef struct buf {
    char data[65536];
    size_t len;
} buf;

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    buf *b = ud;
    size_t k = sz * n;
    if (b->len + k < sizeof b->data) {
        memcpy(b->data + b->len, p, k);
        b->len += k;
        b->data[b->len] = '\0';
    }
    return k;
}

static long http_as(int port, const char *method, const char *path, const char *body,
                    const char *user, const char *role, const char *wallet, cJSON **json)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    char u[128];
    snprintf(u, sizeof u, "X-Paimon-User: %s", user);
    h = curl_slist_append(h, u);
    if (wallet) {
        char wh[96];
        snprintf(wh, sizeof wh, "X-Paimon-Wallet: %s", wallet);
        h = curl_slist_append(h, wh);
    }
    if (role) {
        char r[64];
        snprintf(r, sizeof r, "X-Paimon-Role: %s", role);
        h = curl_slist_append(h, r);
    }
    static buf b;
    b.len = 0;
    b.data[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (json)
        *json = cJSON_Parse(b.data);
    return code;
}

static long http(int port, const char *method, const char *path, const char *body, const char *role,
                 cJSON **json)
{
    return http_as(port, method, path, body, "tester", role, NULL, json);
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static int group_setup(void **state)
{
    (void)state;
    const char *path = getenv("PAIMON_DEVCHAIN_JSON");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return -1;
    static char jb[1 << 16];
    size_t n = fread(jb, 1, sizeof jb - 1, f);
    fclose(f);
    jb[n] = '\0';
    g.dc = cJSON_Parse(jb);
    if (!g.dc)
        return -1;
    util_strlcpy(g.rpc_url, cJSON_GetStringValue(cJSON_GetObjectItem(g.dc, "rpcUrl")),
                 sizeof g.rpc_url);
    g.chain_id = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(g.dc, "chainId"));
    util_strlcpy(
        g.vault,
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(g.dc, "contracts"), "vault")),
        sizeof g.vault);
    const char *urls[1] = {g.rpc_url};
    rpc_config rc = {.urls = urls, .nurls = 1, .name = "test_approval_daemon"};
    g.rpc = rpc_client_new(&rc, NULL, 0);
    g.abi_low = abi_contract_load(th_repo_path("schemas/abi/PaimonVault.json"), NULL, 0);
    if (!g.rpc || !g.abi_low)
        return -1;
    g.abi_low->log_flags = ABI_DECODE_LOWER_ADDR;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    abi_contract_free(g.abi_low);
    rpc_client_free(g.rpc);
    cJSON_Delete(g.dc);
    return 0;
}

static pid_t start_daemon(const char *db, int port)
{
    char portstr[16], cid[24];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(cid, sizeof cid, "%llu", (unsigned long long)g.chain_id);
    const char *opkey = cJSON_GetStringValue(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(g.dc, "accounts"), "operator"), "privateKey"));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("PAIMON_REDIS_URL", th_redis_url(), 1);
        setenv("PAIMON_DATABASE_URL", db, 1);
        setenv("PAIMON_HTTP_PORT", portstr, 1);
        setenv("PAIMON_RPC_URLS", g.rpc_url, 1);
        setenv("PAIMON_CHAIN_ID", cid, 1);
        setenv("PAIMON_VAULT_ADDRESS", g.vault, 1);
        setenv("PAIMON_ABI_DIR", th_repo_path("schemas/abi"), 1);
        setenv("PAIMON_SIGNER_DEV_KEY", opkey, 1);
        setenv("PAIMON_CONFIRMATIONS", "1", 1);
        setenv("PAIMON_APPROVAL_OUTBOX_EVERY", "100ms", 1);
        setenv("PAIMON_LOG_LEVEL", "warn", 1);
        execl(th_bin("paimon-approval"), "paimon-approval", (char *)NULL);
        _exit(127);
    }
    int64_t end = util_mono_ms() + 10000;
    while (http(port, "GET", "/health/ready", NULL, NULL, NULL) != 200 && util_mono_ms() < end)
        util_sleep_ms(100);
    assert_int_equal(http(port, "GET", "/health/ready", NULL, NULL, NULL), 200);
    return pid;
}

static void stop_daemon(pid_t pid)
{
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_daemon_end_to_end(void **state)
{
    (void)state;
    cJSON *s = rpc("evm_snapshot", NULL);
    char snap[80];
    util_strlcpy(snap, cJSON_GetStringValue(s), sizeof snap);
    cJSON_Delete(s);

    const char *db = th_pg_fresh_db("approval_daemon");
    PGconn *pg = th_pg_connect(db);
    PQsetNoticeProcessor(pg, quiet, NULL);
    char err[512];
    assert_int_equal(th_pg_migrate(pg, "approval"), 0);
    redisContext *rcx = th_redis_fresh();

    int port = th_redis_port() + 60;
    char cid[24];
    snprintf(cid, sizeof cid, "%llu", (unsigned long long)g.chain_id);
    pid_t pid = start_daemon(db, port);
    int64_t end;

    envelope *e = event_envelope("RedemptionRequested", "1");
    envelope_set_priority(e, "normal", NULL, 0);
    assert_int_equal(bus_publish(rcx, "chain.events", BUS_NORMAL, e, 0, err, sizeof err), 0);
    envelope_free(e);
    char rpath[256];
    snprintf(rpath, sizeof rpath, "/v1/redemptions/%s:%s:1", cid, g.vault);
    end = util_mono_ms() + 15000;
    while (http(port, "GET", rpath, NULL, NULL, NULL) != 200 && util_mono_ms() < end)
        util_sleep_ms(100);
    cJSON *j = NULL;
    assert_int_equal(http(port, "GET", rpath, NULL, NULL, &j), 200);
    cJSON *d = cJSON_GetObjectItem(j, "data");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "approval_mode")), "auto");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "channel")), "standard");
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(d, "records")) >= 2);
    cJSON_Delete(j);
    /* The outbox worker sends approveRedemption and it lands on chain. */
    end = util_mono_ms() + 20000;
    while (chain_status("1") != 2 && util_mono_ms() < end) {
        cJSON_Delete(rpc("evm_mine", NULL));
        util_sleep_ms(200);
    }
    assert_int_equal(chain_status("1"), 2);

    /* Lists and filters. */
    assert_int_equal(http(port, "GET", "/v1/redemptions?status=pending&limit=1", NULL, NULL, &j),
                     200);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "items")), 1);
    cJSON_Delete(j);
    assert_int_equal(http(port, "GET", "/v1/redemptions?status=bogus", NULL, NULL, &j), 400);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "success")));
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code")),
        "invalid_request");
    cJSON_Delete(j);
    assert_int_equal(http(port, "GET", "/v1/redemptions?limit=0", NULL, NULL, NULL), 400);
    assert_int_equal(http(port, "GET", "/v1/redemptions?cursor=nope", NULL, NULL, NULL), 400);
    assert_int_equal(http(port, "GET", "/v1/tickets/nope", NULL, NULL, NULL), 404);
    assert_int_equal(http(port, "GET", "/v1/redemptions/forecast", NULL, NULL, NULL), 200);
    /* Votes: malformed, unsigned, wrong role -> 4xx, nothing recorded. */
    long long before = th_pg_scalar(pg, "SELECT count(*) FROM approval.approval_records");
    assert_int_equal(http(port, "POST", "/v1/tickets/nope/approve", "[1]", "operator", NULL), 400);
    assert_int_equal(
        http(port, "POST", "/v1/tickets/nope/approve", "{\"nonce\":\"1\"}", "viewer", NULL), 403);
    assert_int_equal(http(port, "POST", "/v1/tickets/nope/approve",
                          "{\"nonce\":\"1\",\"deadline\":\"1\",\"signature\":\"0x00\"}", "operator",
                          NULL),
                     403); /* no X-Paimon-Wallet */
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM approval.approval_records"), before);
    /* Policies: readable, writable by admins only, validated. */
    assert_int_equal(
        http(port, "PUT", "/v1/policies", "{\"threshold.standard\":\"5\"}", "operator", NULL), 403);
    assert_int_equal(
        http(port, "PUT", "/v1/policies", "{\"threshold.standard\":\"-5\"}", "admin", NULL), 400);
    assert_int_equal(http(port, "PUT", "/v1/policies", "{\"nope\":\"5\"}", "admin", NULL), 400);
    assert_int_equal(
        http(port, "PUT", "/v1/policies", "{\"threshold.standard\":\"5\"}", "admin", NULL), 200);
    assert_int_equal(http(port, "GET", "/v1/policies", NULL, NULL, &j), 200);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"),
                                                                 "threshold.standard")),
                        "5");
    cJSON_Delete(j);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM approval.approval_records WHERE action "
                                      "= 'policy_changed' AND actor = 'tester'"),
                     1);

    stop_daemon(pid);

    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(snap));
    cJSON_Delete(rpc("evm_revert", p));
    PQfinish(pg);
    redisFree(rcx);
}

/* The EIP-712 approval of (ticket, decision, nonce, deadline) by approver `who` of the
 * devchain, as a wallet would sign it, in a vote body. */
static void vote_body(int who, const char *ticket, const char *decision, const char *nonce,
                      const char *reason, char *out, size_t outlen)
{
    cJSON *ap = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(g.dc, "accounts"), "approvers"), who);
    uint8_t key[32], vault[20], sig[65];
    assert_int_equal(hex_decode_fixed(cJSON_GetStringValue(cJSON_GetObjectItem(ap, "privateKey")),
                                      key, 32, NULL, 0),
                     0);
    assert_int_equal(hex_addr_parse(g.vault, vault, NULL, 0), 0);
    uint64_t deadline = (uint64_t)(util_now_ms() / 1000 + 600);
    money_u256 n, d;
    assert_int_equal(money_from_dec(&n, nonce, NULL, 0), 0);
    money_from_u64(&d, deadline);
    char err[256];
    cJSON *typed =
        eip712_approval_new(g.chain_id, vault, ticket, decision, &n, &d, err, sizeof err);
    assert_non_null(typed);
    assert_int_equal(eip712_sign(typed, key, sig, err, sizeof err), 0);
    cJSON_Delete(typed);
    char hexsig[140];
    hex_encode(sig, 65, 1, hexsig, sizeof hexsig);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "nonce", nonce);
    char dl[24];
    snprintf(dl, sizeof dl, "%llu", (unsigned long long)deadline);
    cJSON_AddStringToObject(b, "deadline", dl);
    cJSON_AddStringToObject(b, "signature", hexsig);
    if (reason)
        cJSON_AddStringToObject(b, "reason", reason);
    char *j = cJSON_PrintUnformatted(b);
    util_strlcpy(out, j, outlen);
    free(j);
    cJSON_Delete(b);
}

static const char *approver_addr(int who)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(g.dc, "accounts"), "approvers"),
                           who),
        "address"));
}

static void test_http_signed_approvals_one_tx(void **state)
{
    (void)state;
    const char *db = th_pg_fresh_db("approval_daemon_votes");
    PGconn *pg = th_pg_connect(db);
    PQsetNoticeProcessor(pg, quiet, NULL);
    char err[512];
    assert_int_equal(th_pg_migrate(pg, "approval"), 0);
    redisContext *rcx = th_redis_fresh();
    cJSON *s = rpc("evm_snapshot", NULL);
    char snap[80];
    util_strlcpy(snap, cJSON_GetStringValue(s), sizeof snap);
    cJSON_Delete(s);

    /* Investor 0 redeems 300,000 shares on chain: above the threshold, 2 approvals. */
    cJSON *inv = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(g.dc, "accounts"), "investors"), 0);
    const char *ia = cJSON_GetStringValue(cJSON_GetObjectItem(inv, "address"));
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd,
             "send --rpc-url %s --private-key %s %s 'requestRedeem(uint256,address,address,uint8)' "
             "300000000000000000000000 %s %s 0",
             g.rpc_url, cJSON_GetStringValue(cJSON_GetObjectItem(inv, "privateKey")), g.vault, ia,
             ia);
    assert_int_equal(th_cast(cmd, out, sizeof out), 0);
    assert_int_equal(chain_status("2"), 1);

    int port = th_redis_port() + 60;
    pid_t pid = start_daemon(db, port);
    envelope *e = event_envelope("RedemptionRequested", "2");
    envelope_set_priority(e, "high", NULL, 0);
    assert_int_equal(bus_publish(rcx, "chain.events", BUS_HIGH, e, 0, err, sizeof err), 0);
    envelope_free(e);
    /* The ticket appears through the API. */
    char tid[64] = "";
    int64_t end = util_mono_ms() + 15000;
    while (!*tid && util_mono_ms() < end) {
        cJSON *j = NULL;
        if (http(port, "GET", "/v1/tickets?status=open", NULL, NULL, &j) == 200) {
            cJSON *it =
                cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "items"), 0);
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(it, "id"));
            if (id)
                util_strlcpy(tid, id, sizeof tid);
        }
        cJSON_Delete(j);
        if (!*tid)
            util_sleep_ms(100);
    }
    assert_true(*tid);
    char path[160], body[1024];
    snprintf(path, sizeof path, "/v1/tickets/%s/approve", tid);

    /* Approver 0: counted, the ticket stays open. */
    vote_body(0, tid, "approve", "1", NULL, body, sizeof body);
    cJSON *j = NULL;
    assert_int_equal(http_as(port, "POST", path, body, "u0", "operator", approver_addr(0), &j),
                     200);
    cJSON *d = cJSON_GetObjectItem(j, "data");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "status")), "open");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "approvals")), 1);
    cJSON_Delete(j);
    /* The same signed body again (a replay) and a body signed by approver 1 but sent as
     * approver 2's wallet: refused, nothing written. */
    long long before = th_pg_scalar(pg, "SELECT count(*) FROM approval.approval_records");
    assert_int_equal(http_as(port, "POST", path, body, "u0", "operator", approver_addr(0), NULL),
                     409);
    vote_body(1, tid, "approve", "1", NULL, body, sizeof body);
    assert_int_equal(http_as(port, "POST", path, body, "u2", "operator", approver_addr(2), NULL),
                     401);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM approval.approval_records"), before);
    /* Approver 1 reaches the quorum: decided, one approveRedemption, on chain. */
    assert_int_equal(http_as(port, "POST", path, body, "u1", "admin", approver_addr(1), &j), 200);
    d = cJSON_GetObjectItem(j, "data");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "status")), "approved");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "approvals")), 2);
    cJSON_Delete(j);
    end = util_mono_ms() + 20000;
    while (chain_status("2") != 2 && util_mono_ms() < end) {
        cJSON_Delete(rpc("evm_mine", NULL));
        util_sleep_ms(200);
    }
    assert_int_equal(chain_status("2"), 2);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM approval.transactions"), 1);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM approval.transactions WHERE "
                                      "idempotency_key LIKE 'approve:%:2'"),
                     1);
    /* The ticket's records show both signed votes and the decision. */
    snprintf(path, sizeof path, "/v1/tickets/%s", tid);
    assert_int_equal(http(port, "GET", path, NULL, NULL, &j), 200);
    int votes = 0, decided = 0;
    cJSON *rec;
    cJSON_ArrayForEach(rec, cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "records"))
    {
        const char *a = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "action"));
        const char *sig = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "signature"));
        votes += a && strcmp(a, "vote_approve") == 0 && sig && strlen(sig) == 132;
        decided += a && strcmp(a, "decided") == 0;
    }
    cJSON_Delete(j);
    assert_int_equal(votes, 2);
    assert_int_equal(decided, 1);
    stop_daemon(pid);

    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(snap));
    cJSON_Delete(rpc("evm_revert", p));
    PQfinish(pg);
    redisFree(rcx);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_daemon_end_to_end),
                                       cmocka_unit_test(test_http_signed_approvals_one_tx)};
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
