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
#include "devchain_fixture.h"
#include "eip712.h"
#include "envelope.h"
#include "harness.h"
#include "hex.h"
#include "opsig.h"
#include "util.h"

static struct {
    dc_chain dc;
    char vault[43];
    abi_contract *abi_low;
} g;

/* The latest vault log of `event` for the request, shaped as the listener publishes it. */
static envelope *event_envelope(const char *event, const char *request_id)
{
    return dc_log_envelope(&g.dc, g.abi_low, g.vault, event, "requestId", request_id);
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

/* params plus nonce / deadline / the EIP-712 Operation signature (libcommon/opsig.h)
 * "approval.policies.update" by the devchain admin, whose wallet holds ADMIN_ROLE;
 * the admin's address goes to addr. */
static void signed_policies(const char *params, unsigned nonce, char *out, size_t outlen,
                            char addr[DC_ADDR_LEN])
{
    uint8_t key[32], vault[20], ph[32], sig[65];
    assert_int_equal(dc_account(&g.dc, "admin", -1, addr, key), 0);
    assert_int_equal(hex_addr_parse(g.vault, vault, NULL, 0), 0);
    cJSON *b = cJSON_Parse(params);
    assert_int_equal(opsig_params_hash(b, ph, NULL, 0), 0);
    char ns[16], ds[24], sh[HEX_STRLEN(65)];
    snprintf(ns, sizeof ns, "%u", nonce);
    snprintf(ds, sizeof ds, "%lld", (long long)(util_now_ms() / 1000 + 600));
    money_u256 n, d;
    money_from_dec(&n, ns, NULL, 0);
    money_from_dec(&d, ds, NULL, 0);
    cJSON *t =
        opsig_typed_new(g.dc.chain_id, vault, "approval.policies.update", "", ph, &n, &d, NULL, 0);
    assert_non_null(t);
    assert_int_equal(eip712_sign(t, key, sig, NULL, 0), 0);
    cJSON_Delete(t);
    hex_encode(sig, 65, 1, sh, sizeof sh);
    cJSON_AddStringToObject(b, "nonce", ns);
    cJSON_AddStringToObject(b, "deadline", ds);
    cJSON_AddStringToObject(b, "signature", sh);
    char *txt = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    util_strlcpy(out, txt, outlen);
    free(txt);
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
    if (dc_open(&g.dc, NULL, "test_approval_daemon") != 0 || !dc_contract(&g.dc, "vault"))
        return -1;
    util_strlcpy(g.vault, dc_contract(&g.dc, "vault"), sizeof g.vault);
    g.abi_low = abi_contract_load(th_repo_path("schemas/abi/PaimonVault.json"), NULL, 0);
    if (!g.abi_low)
        return -1;
    g.abi_low->log_flags = ABI_DECODE_LOWER_ADDR;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    abi_contract_free(g.abi_low);
    dc_close(&g.dc);
    return 0;
}

/* A fresh database `name` with the approval service's migrations; *url is its URL
 * (static storage until the next fresh database). */
static PGconn *approval_db(const char *name, const char **url)
{
    *url = th_pg_fresh_db(name);
    PGconn *pg = th_pg_connect(*url);
    PQsetNoticeProcessor(pg, quiet, NULL);
    assert_int_equal(th_pg_migrate(pg, "approval"), 0);
    return pg;
}

static pid_t start_daemon(const char *db, int port)
{
    char portstr[16], cid[24];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(cid, sizeof cid, "%llu", (unsigned long long)g.dc.chain_id);
    const char *opkey = dc_private_key(&g.dc, "operator", -1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("PAIMON_REDIS_URL", th_redis_url(), 1);
        setenv("PAIMON_DATABASE_URL", db, 1);
        setenv("PAIMON_HTTP_PORT", portstr, 1);
        setenv("PAIMON_RPC_URLS", g.dc.rpc_url, 1);
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
    char snap[DC_SNAP_MAX];
    dc_snapshot(&g.dc, snap);

    const char *db = NULL;
    PGconn *pg = approval_db("approval_daemon", &db);
    char err[512];
    redisContext *rcx = th_redis_fresh();

    int port = th_redis_port() + 60;
    char cid[24];
    snprintf(cid, sizeof cid, "%llu", (unsigned long long)g.dc.chain_id);
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
    assert_int_equal(dc_wait_redemption_status(&g.dc, "1", 2, 20000), 2);

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
    /* unsigned: 400; signed by the admin's wallet: 200; replayed: 401, nothing written */
    assert_int_equal(
        http(port, "PUT", "/v1/policies", "{\"threshold.standard\":\"5\"}", "admin", NULL), 400);
    char sb[1024], admin[DC_ADDR_LEN];
    signed_policies("{\"threshold.standard\":\"5\"}", 1, sb, sizeof sb, admin);
    assert_int_equal(http_as(port, "PUT", "/v1/policies", sb, "tester", "admin", admin, NULL), 200);
    long long changed = th_pg_scalar(
        pg, "SELECT count(*) FROM approval.approval_records WHERE action = 'policy_changed'");
    assert_int_equal(http_as(port, "PUT", "/v1/policies", sb, "tester", "admin", admin, NULL), 401);
    assert_int_equal(th_pg_scalar(pg,
                                  "SELECT count(*) FROM approval.approval_records WHERE action = "
                                  "'policy_changed'"),
                     changed);
    assert_int_equal(http(port, "GET", "/v1/policies", NULL, NULL, &j), 200);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"),
                                                                 "threshold.standard")),
                        "5");
    cJSON_Delete(j);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM approval.approval_records WHERE action "
                                      "= 'policy_changed' AND actor = 'tester'"),
                     1);

    stop_daemon(pid);

    assert_int_equal(dc_revert(&g.dc, snap), 0);
    PQfinish(pg);
    redisFree(rcx);
}

/* The EIP-712 approval of (ticket, decision, nonce, deadline) by approver `who` of the
 * devchain, as a wallet would sign it, in a vote body. */
static void vote_body(int who, const char *ticket, const char *decision, const char *nonce,
                      const char *reason, char *out, size_t outlen)
{
    char addr[DC_ADDR_LEN], hexsig[DC_SIG_HEX];
    uint8_t key[32];
    assert_int_equal(dc_account(&g.dc, "approvers", who, addr, key), 0);
    uint64_t deadline = (uint64_t)(util_now_ms() / 1000 + 600);
    dc_sign_approval(&g.dc, key, g.vault, ticket, decision, nonce, deadline, hexsig);
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
    return dc_address(&g.dc, "approvers", who);
}

static void test_http_signed_approvals_one_tx(void **state)
{
    (void)state;
    const char *db = NULL;
    PGconn *pg = approval_db("approval_daemon_votes", &db);
    char err[512];
    redisContext *rcx = th_redis_fresh();
    char snap[DC_SNAP_MAX];
    dc_snapshot(&g.dc, snap);

    /* Investor 0 redeems 300,000 shares on chain: above the threshold, 2 approvals. */
    const char *ia = dc_address(&g.dc, "investors", 0);
    char args[256];
    snprintf(args, sizeof args, "300000000000000000000000 %s %s 0", ia, ia);
    dc_cast_send(&g.dc, dc_private_key(&g.dc, "investors", 0), g.vault,
                 "requestRedeem(uint256,address,address,uint8)", args);
    assert_int_equal(dc_redemption_status(&g.dc, "2"), 1);

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
    assert_int_equal(dc_wait_redemption_status(&g.dc, "2", 2, 20000), 2);
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

    assert_int_equal(dc_revert(&g.dc, snap), 0);
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
