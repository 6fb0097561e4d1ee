/* Integration tests of libcommon/outbox against the harness's anvil devchain, PostgreSQL
 * and Redis: transfers reach their confirmations, idempotency, simulation reverts with
 * decoded custom errors and alerts, crashes (a forked child _exits right after "signed"
 * and right after "sent") recovered without a lost or doubled transaction, stuck
 * transactions replaced with bumped fees, the fee cap, the global pause, a reorg
 * (evm_revert of the block holding the tx), and a gap-free nonce sequence.
 *
 * Each test gets a fresh database (the DDL is run from migrations/_shared/transactions.sql),
 * a flushed Redis and runs between evm_snapshot and evm_revert; automine is switched
 * back on in teardown whatever happened, since the anvil is shared with later tests. */
#include <setjmp.h>
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
#include "db.h"
#include "devchain_fixture.h"
#include "harness.h"
#include "hex.h"
#include "metrics.h"
#include "money.h"
#include "outbox.h"
#include "rpc.h"
#include "signer.h"
#include "util.h"

#define SCHEMA "approval"
#define CONF   3

static struct {
    dc_chain dc;
    char usdt[43];
    char addr[3][43];
    uint8_t key[3][32];
    abi_contract *usdt_abi;
    /* per test */
    char snap[DC_SNAP_MAX];
    char db_url[256];
    db_pool *pool;
    PGconn *pg;
    redisContext *rc;
} g;

/* ------------------------------------------------------------------ chain helpers */

static cJSON *rpc(const char *method, cJSON *params)
{
    return dc_rpc(&g.dc, method, params);
}

static void rpc_void(const char *method, cJSON *params)
{
    dc_rpc_void(&g.dc, method, params);
}

static void set_automine(int on)
{
    dc_set_automine(&g.dc, on);
}

static void mine(int n)
{
    dc_mine(&g.dc, n);
}

static uint64_t nonce_of(const char *addr)
{
    return dc_nonce(&g.dc, addr);
}

static money_u256 eth_balance(const char *addr)
{
    return dc_balance(&g.dc, addr);
}

static uint8_t *usdt_call(const char *fn, const char *args_json, size_t *len)
{
    const abi_fn *f = abi_contract_fn(g.usdt_abi, fn);
    assert_non_null(f);
    cJSON *args = cJSON_Parse(args_json);
    assert_non_null(args);
    uint8_t *d = NULL;
    char err[256];
    if (abi_fn_encode_call(f, args, &d, len, err, sizeof err))
        fail_msg("encode %s: %s", fn, err);
    cJSON_Delete(args);
    return d;
}

static money_u256 usdt_balance(const char *addr)
{
    char args[80];
    snprintf(args, sizeof args, "[\"%s\"]", addr);
    size_t n;
    uint8_t *d = usdt_call("balanceOf", args, &n);
    char *hx = hex_encode_new(d, n, 1);
    free(d);
    uint8_t *out = NULL;
    size_t outlen = 0;
    rpc_error e;
    rpc_error_init(&e);
    if (rpc_eth_call(g.dc.rpc, g.usdt, hx, RPC_BLOCK_LATEST, &out, &outlen, &e))
        fail_msg("balanceOf: %s", e.message);
    free(hx);
    assert_int_equal(outlen, 32);
    money_u256 v;
    money_from_be32(&v, out);
    free(out);
    return v;
}

static int has_receipt(const char *hash)
{
    uint8_t h[32];
    assert_int_equal(hex_decode_fixed(hash, h, 32, NULL, 0), 0);
    cJSON *rec = NULL;
    char err[256];
    int rc = rpc_get_tx_receipt(g.dc.rpc, h, &rec, err, sizeof err);
    assert_true(rc >= 0);
    cJSON_Delete(rec);
    return rc == 0;
}

/* anvil can report the new account nonce a moment before the receipt is queryable:
 * a receipt that should exist gets a short grace period, one that should not is
 * checked once. */
static int has_receipt_settled(const char *hash, int want)
{
    for (int i = 0; want && i < 40 && !has_receipt(hash); i++)
        util_sleep_ms(50);
    return has_receipt(hash);
}

static void assert_money(money_u256 a, const char *dec)
{
    char buf[MONEY_DEC_MAX];
    money_to_dec(&a, buf, sizeof buf);
    assert_string_equal(buf, dec);
}

static money_u256 diff(money_u256 after, money_u256 before)
{
    money_u256 d;
    assert_int_equal(money_sub(&d, &after, &before), 0);
    return d;
}

/* ------------------------------------------------------------------ fixtures */

static int group_setup(void **state)
{
    (void)state;
    if (dc_open(&g.dc, NULL, "test_outbox") != 0 || !dc_contract(&g.dc, "usdt"))
        return -1;
    util_strlcpy(g.usdt, dc_contract(&g.dc, "usdt"), sizeof g.usdt);
    for (int i = 0; i < 3; i++)
        if (dc_account(&g.dc, "spare", i, g.addr[i], g.key[i]) != 0)
            return -1;
    g.usdt_abi = abi_contract_load(th_repo_path("schemas/abi/MockUSDT.json"), NULL, 0);
    return g.usdt_abi ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    abi_contract_free(g.usdt_abi);
    dc_close(&g.dc);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    util_strlcpy(g.db_url, th_pg_fresh_db("outbox_test"), sizeof g.db_url);
    g.pg = th_pg_connect(g.db_url);
    th_pg_exec(g.pg, "CREATE SCHEMA " SCHEMA "; SET search_path TO " SCHEMA);
    FILE *f = fopen(th_repo_path("migrations/_shared/transactions.sql"), "r");
    if (!f)
        return -1;
    static char ddl[1 << 16];
    size_t n = fread(ddl, 1, sizeof ddl - 1, f);
    fclose(f);
    ddl[n] = '\0';
    th_pg_exec(g.pg, ddl);
    th_pg_exec(g.pg, "SET search_path TO " SCHEMA);
    g.pool = db_pool_new(g.db_url, 2, NULL, 0);
    g.rc = th_redis_fresh();
    dc_snapshot(&g.dc, g.snap);
    return g.pool && g.rc ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    dc_revert(&g.dc, g.snap); /* automine back on too: the anvil is shared */
    db_pool_free(g.pool);
    PQfinish(g.pg);
    redisFree(g.rc);
    return 0;
}

typedef struct tb {
    signer *sg;
    outbox *o;
    metrics_registry *m;
} tb;

static void ob_open(tb *t, int who, int64_t stuck_ms, const money_u256 *cap,
                    void (*hk)(const char *, void *), void *ud, db_pool *pool, rpc_client *rc)
{
    char err[256];
    if (signer_local_from_key(g.key[who], &t->sg, err, sizeof err))
        fail_msg("signer: %s", err);
    t->m = metrics_new();
    outbox_cfg c = {.schema = SCHEMA,
                    .db = pool ? pool : g.pool,
                    .rpc = rc ? rc : g.dc.rpc,
                    .signer = t->sg,
                    .redis_url = th_redis_url(),
                    .chain_id = g.dc.chain_id,
                    .abi_dir = th_repo_path("schemas/abi"),
                    .source = "approval",
                    .confirmations = CONF,
                    .stuck_after_ms = stuck_ms ? stuck_ms : 600000,
                    .metrics = t->m,
                    .hook = hk,
                    .hook_ud = ud};
    if (cap)
        c.max_fee_cap = *cap;
    t->o = outbox_new(&c, err, sizeof err);
    if (!t->o)
        fail_msg("outbox_new: %s", err);
}

static void ob_close(tb *t)
{
    outbox_free(t->o);
    signer_free(t->sg);
    metrics_free(t->m);
}

static int enqueue(const char *key, int from, const char *to, const char *value,
                   const uint8_t *data, size_t len)
{
    char err[256];
    db_conn *c = db_acquire(g.pool, 2000, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(db_exec(c, "BEGIN", NULL, 0), 0);
    outbox_req r = {.idempotency_key = key,
                    .chain_id = g.dc.chain_id,
                    .from = g.addr[from],
                    .to = to,
                    .value = value,
                    .data = data,
                    .data_len = len,
                    .purpose = "test"};
    int rc = outbox_enqueue(c, SCHEMA, &r, err, sizeof err);
    if (rc < 0)
        fail_msg("enqueue %s: %s", key, err);
    assert_int_equal(db_exec(c, "COMMIT", NULL, 0), 0);
    db_release(g.pool, c);
    return rc;
}

static outbox_row row(const char *key)
{
    outbox_row r;
    char err[256];
    db_conn *c = db_acquire(g.pool, 2000, err, sizeof err);
    assert_non_null(c);
    int rc = outbox_get(c, SCHEMA, key, &r, err, sizeof err);
    db_release(g.pool, c);
    if (rc != 1)
        fail_msg("row %s: rc=%d %s", key, rc, err);
    return r;
}

static int step(tb *t)
{
    char err[256] = "";
    int n = outbox_step(t->o, err, sizeof err);
    if (n < 0)
        fail_msg("outbox_step: %s", err);
    return n;
}

static int final(const char *st)
{
    return !strcmp(st, "confirmed") || !strcmp(st, "reverted") || !strcmp(st, "failed");
}

/* Steps, mining a block between passes, until the row is final. */
static outbox_row run_final(tb *t, const char *key)
{
    for (int i = 0; i < 30; i++) {
        step(t);
        outbox_row r = row(key);
        if (final(r.status))
            return r;
        mine(1);
    }
    fail_msg("%s never became final (%s)", key, row(key).status);
    return row(key);
}

static outbox_stats stats_of(tb *t)
{
    outbox_stats st;
    outbox_get_stats(t->o, &st);
    return st;
}

/* What a transfer test checks at the end: the sender used exactly `nonces` more
 * nonces and the recipient gained exactly `gain` wei since transfer_watch. */
typedef struct transfer {
    const char *from, *to;
    uint64_t n0;
    money_u256 before;
} transfer;

static transfer transfer_watch(int from, const char *to)
{
    transfer w = {.from = g.addr[from], .to = to};
    w.n0 = nonce_of(w.from);
    w.before = eth_balance(to);
    return w;
}

static void assert_transfer(const transfer *w, uint64_t nonces, const char *gain)
{
    assert_int_equal(nonce_of(w->from), w->n0 + nonces);
    assert_money(diff(eth_balance(w->to), w->before), gain);
}

/* Number of alerts on the high and critical streams whose envelope contains needle. */
static int alerts_with(const char *needle)
{
    int n = 0;
    const char *streams[2] = {"paimon:alerts:high", "paimon:alerts:critical"};
    for (int s = 0; s < 2; s++) {
        redisReply *r = redisCommand(g.rc, "XRANGE %s - +", streams[s]);
        assert_non_null(r);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *f = r->element[i]->element[1];
            for (size_t j = 1; j < f->elements; j += 2)
                if (strstr(f->element[j]->str, needle) &&
                    strstr(f->element[j]->str, "alert.raised"))
                    n++;
        }
        freeReplyObject(r);
    }
    return n;
}

/* ------------------------------------------------------------------ tests */

static void test_enqueue_validation(void **state)
{
    (void)state;
    char err[256];
    db_conn *c = db_acquire(g.pool, 2000, err, sizeof err);
    assert_non_null(c);
    uint8_t big[OUTBOX_MAX_DATA + 1];
    memset(big, 0, sizeof big);
    outbox_req ok = {.idempotency_key = "k",
                     .chain_id = g.dc.chain_id,
                     .from = g.addr[0],
                     .to = g.addr[1],
                     .value = "1"};
    outbox_req r;
    r = ok, r.to = "0x1234";
    assert_int_equal(outbox_enqueue(c, SCHEMA, &r, err, sizeof err), -1);
    /* mixed case with a wrong checksum: a typo must never become a transfer */
    r = ok, r.to = "0xA0ee7A142d267C1f36714E4a8F75612F20a79720";
    assert_int_equal(outbox_enqueue(c, SCHEMA, &r, err, sizeof err), -1);
    r = ok, r.value = "-1";
    assert_int_equal(outbox_enqueue(c, SCHEMA, &r, err, sizeof err), -1);
    r = ok, r.value = "1.5";
    assert_int_equal(outbox_enqueue(c, SCHEMA, &r, err, sizeof err), -1);
    r = ok,
    r.value = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
    assert_int_equal(outbox_enqueue(c, SCHEMA, &r, err, sizeof err), -1);
    r = ok, r.data = big, r.data_len = sizeof big;
    assert_int_equal(outbox_enqueue(c, SCHEMA, &r, err, sizeof err), -1);
    r = ok, r.idempotency_key = "";
    assert_int_equal(outbox_enqueue(c, SCHEMA, &r, err, sizeof err), -1);
    r = ok, r.idempotency_key = "a\nb";
    assert_int_equal(outbox_enqueue(c, SCHEMA, &r, err, sizeof err), -1);
    r = ok, r.chain_id = 0;
    assert_int_equal(outbox_enqueue(c, SCHEMA, &r, err, sizeof err), -1);
    r = ok, r.gas_limit = OUTBOX_MAX_GAS + 1;
    assert_int_equal(outbox_enqueue(c, SCHEMA, &r, err, sizeof err), -1);
    assert_int_equal(outbox_enqueue(c, "bad-schema", &ok, err, sizeof err), -1);
    db_release(g.pool, c);
    assert_int_equal(th_pg_scalar(g.pg, "SELECT count(*) FROM transactions"), 0);
    /* checksummed input is stored lowercase */
    char cs[HEX_ADDR_STRLEN];
    uint8_t a[20];
    hex_addr_parse(g.addr[1], a, NULL, 0);
    hex_addr_checksum(a, cs);
    assert_int_equal(enqueue("cs", 0, cs, "7", NULL, 0), 1);
    char q[200];
    snprintf(q, sizeof q, "SELECT count(*) FROM transactions WHERE to_address = '%s' AND value = 7",
             g.addr[1]);
    assert_int_equal(th_pg_scalar(g.pg, q), 1);
}

static void test_eth_transfers_confirmed(void **state)
{
    (void)state;
    tb t;
    ob_open(&t, 0, 0, NULL, NULL, NULL, NULL, NULL);
    transfer w = transfer_watch(0, g.addr[1]);
    assert_int_equal(enqueue("eth-1", 0, g.addr[1], "1000000000000000000", NULL, 0), 1);
    assert_int_equal(enqueue("eth-2", 0, g.addr[1], "2500", NULL, 0), 1);
    outbox_row r1 = run_final(&t, "eth-1");
    outbox_row r2 = run_final(&t, "eth-2");
    assert_string_equal(r1.status, "confirmed");
    assert_string_equal(r2.status, "confirmed");
    assert_int_equal(r1.nonce, (int64_t)w.n0);
    assert_int_equal(r2.nonce, (int64_t)w.n0 + 1);
    assert_true(r1.block_number > 0);
    assert_true(has_receipt_settled(r1.tx_hash, 1));
    assert_transfer(&w, 2, "1000000000000002500");
    outbox_stats st = stats_of(&t);
    assert_int_equal(st.sent, 2);
    assert_int_equal(st.confirmed, 2);
    char *m = metrics_render(t.m);
    assert_non_null(strstr(m, "paimon_outbox_sends_total{schema=\"approval\"} 2"));
    assert_non_null(
        strstr(m, "paimon_outbox_transactions{schema=\"approval\",status=\"confirmed\"} 2"));
    assert_non_null(strstr(m, "paimon_outbox_confirmation_seconds_count{schema=\"approval\"} 2"));
    free(m);
    /* nothing left to do: a further pass changes nothing */
    assert_int_equal(step(&t), 0);
    ob_close(&t);
}

static void test_usdt_transfer_confirmed(void **state)
{
    (void)state;
    tb t;
    ob_open(&t, 0, 0, NULL, NULL, NULL, NULL, NULL);
    size_t n;
    uint8_t *d = usdt_call("faucet", "[\"1000000000000000000000\"]", &n);
    assert_int_equal(enqueue("faucet", 0, g.usdt, "0", d, n), 1);
    free(d);
    assert_string_equal(run_final(&t, "faucet").status, "confirmed");
    money_u256 before = usdt_balance(g.addr[1]);
    char args[120];
    snprintf(args, sizeof args, "[\"%s\", \"5000000000000000000\"]", g.addr[1]);
    d = usdt_call("transfer", args, &n);
    assert_int_equal(enqueue("usdt-1", 0, g.usdt, NULL, d, n), 1);
    free(d);
    assert_string_equal(run_final(&t, "usdt-1").status, "confirmed");
    assert_money(diff(usdt_balance(g.addr[1]), before), "5000000000000000000");
    assert_money(usdt_balance(g.addr[0]), "995000000000000000000");
    ob_close(&t);
}

static void test_idempotency(void **state)
{
    (void)state;
    tb t;
    ob_open(&t, 0, 0, NULL, NULL, NULL, NULL, NULL);
    transfer w = transfer_watch(0, g.addr[2]);
    assert_int_equal(enqueue("same", 0, g.addr[2], "42", NULL, 0), 1);
    assert_int_equal(enqueue("same", 0, g.addr[2], "9999", NULL, 0), 0);
    assert_int_equal(th_pg_scalar(g.pg, "SELECT count(*) FROM transactions"), 1);
    assert_string_equal(run_final(&t, "same").status, "confirmed");
    /* a late duplicate after confirmation still changes nothing */
    assert_int_equal(enqueue("same", 0, g.addr[2], "42", NULL, 0), 0);
    assert_int_equal(step(&t), 0);
    assert_transfer(&w, 1, "42");
    ob_close(&t);
}

static void test_simulation_revert(void **state)
{
    (void)state;
    tb t;
    ob_open(&t, 2, 0, NULL, NULL, NULL, NULL, NULL);
    uint64_t n0 = nonce_of(g.addr[2]);
    char args[120];
    snprintf(args, sizeof args, "[\"%s\", \"5000000000000000000\"]", g.addr[1]);
    size_t n;
    uint8_t *d = usdt_call("transfer", args, &n);
    assert_int_equal(enqueue("broke", 2, g.usdt, NULL, d, n), 1);
    free(d);
    assert_int_equal(step(&t), 1);
    outbox_row r = row("broke");
    assert_string_equal(r.status, "failed");
    assert_non_null(strstr(r.revert_reason, "ERC20InsufficientBalance"));
    assert_non_null(strstr(r.revert_reason, "5000000000000000000"));
    assert_int_equal(r.nonce, -1);
    assert_int_equal(r.attempts, 0);
    assert_int_equal(nonce_of(g.addr[2]), n0);
    assert_int_equal(alerts_with("ERC20InsufficientBalance"), 1);
    /* failed rows are never picked up again */
    assert_int_equal(step(&t), 0);
    assert_int_equal(alerts_with("ERC20InsufficientBalance"), 1);
    ob_close(&t);
}

/* ---- crash tests: the child runs one pass and dies right after the named step */

static const char *crash_at;
static void crash_hook(const char *stp, void *ud)
{
    (void)ud;
    if (strcmp(stp, crash_at) == 0)
        _exit(0);
}

static void crash_child(const char *at)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        crash_at = at;
        const char *urls[1] = {g.dc.rpc_url};
        rpc_config rc = {.urls = urls, .nurls = 1, .name = "child"};
        rpc_client *cr = rpc_client_new(&rc, NULL, 0);
        db_pool *cp = db_pool_new(g.db_url, 1, NULL, 0);
        signer *sg = NULL;
        if (!cr || !cp || signer_local_from_key(g.key[1], &sg, NULL, 0))
            _exit(2);
        outbox_cfg c = {.schema = SCHEMA,
                        .db = cp,
                        .rpc = cr,
                        .signer = sg,
                        .redis_url = th_redis_url(),
                        .chain_id = g.dc.chain_id,
                        .abi_dir = th_repo_path("schemas/abi"),
                        .confirmations = CONF,
                        .metrics = metrics_new(),
                        .hook = crash_hook};
        outbox *o = outbox_new(&c, NULL, 0);
        if (!o)
            _exit(3);
        outbox_step(o, NULL, 0);
        _exit(4); /* the hook never fired */
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void crash_case(const char *at, int on_chain_after_crash)
{
    transfer w = transfer_watch(1, g.addr[2]);
    assert_int_equal(enqueue("crash", 1, g.addr[2], "123456789", NULL, 0), 1);
    crash_child(at);
    outbox_row r = row("crash");
    assert_string_equal(r.status, "signed");
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.nonce, (int64_t)w.n0);
    char signed_hash[67];
    util_strlcpy(signed_hash, r.tx_hash, sizeof signed_hash);
    /* The receipt first: anvil answers eth_sendRawTransaction before it mines the
     * block, so right after a crash at "sent" the account nonce can still be the old
     * one for a moment (seen once under load). */
    assert_int_equal(has_receipt_settled(signed_hash, on_chain_after_crash), on_chain_after_crash);
    assert_int_equal(nonce_of(g.addr[1]), w.n0 + (on_chain_after_crash ? 1 : 0));

    tb t;
    ob_open(&t, 1, 0, NULL, NULL, NULL, NULL, NULL);
    r = run_final(&t, "crash");
    assert_string_equal(r.status, "confirmed");
    assert_string_equal(r.tx_hash, signed_hash); /* the same bytes, not a re-signed copy */
    assert_int_equal(r.attempts, 1);
    mine(2);
    assert_transfer(&w, 1, "123456789");
    assert_int_equal(stats_of(&t).sent, on_chain_after_crash ? 0 : 1);
    ob_close(&t);
}

static void test_crash_after_signed(void **state)
{
    (void)state;
    crash_case("signed", 0);
}

static void test_crash_after_sent(void **state)
{
    (void)state;
    crash_case("sent", 1);
}

static void test_stuck_replaced(void **state)
{
    (void)state;
    tb t;
    ob_open(&t, 0, 300, NULL, NULL, NULL, NULL, NULL);
    transfer w = transfer_watch(0, g.addr[2]);
    set_automine(0);
    assert_int_equal(enqueue("stuck", 0, g.addr[2], "777", NULL, 0), 1);
    assert_int_equal(step(&t), 2); /* signed, then sent */
    outbox_row r = row("stuck");
    assert_string_equal(r.status, "sent");
    char first[67];
    util_strlcpy(first, r.tx_hash, sizeof first);
    assert_int_equal(step(&t), 0); /* not stuck yet */
    util_sleep_ms(400);
    assert_int_equal(step(&t), 1);
    r = row("stuck");
    assert_string_equal(r.status, "sent");
    assert_int_equal(r.attempts, 2);
    assert_int_equal(r.nonce, (int64_t)w.n0);
    assert_string_not_equal(r.tx_hash, first);
    char second[67];
    util_strlcpy(second, r.tx_hash, sizeof second);
    /* the replacement pays at least 15 % more on both fee fields */
    assert_int_equal(th_pg_scalar(g.pg, "SELECT count(*) FROM transaction_attempts a, "
                                        "transaction_attempts b WHERE b.id > a.id AND "
                                        "b.max_fee * 100 >= a.max_fee * 115 AND "
                                        "b.max_priority_fee * 100 >= a.max_priority_fee * 115"),
                     1);
    set_automine(1);
    mine(1);
    r = run_final(&t, "stuck");
    assert_string_equal(r.status, "confirmed");
    assert_string_equal(r.tx_hash, second);
    assert_false(has_receipt(first));
    assert_transfer(&w, 1, "777");
    assert_int_equal(stats_of(&t).replaced, 1);
    ob_close(&t);
}

static void test_fee_cap(void **state)
{
    (void)state;
    tb t;
    money_u256 cap;
    money_from_u64(&cap, 1); /* 1 wei per gas: no fee fits */
    ob_open(&t, 0, 0, &cap, NULL, NULL, NULL, NULL);
    uint64_t n0 = nonce_of(g.addr[0]);
    assert_int_equal(enqueue("capped", 0, g.addr[2], "1", NULL, 0), 1);
    assert_int_equal(step(&t), 0);
    outbox_row r = row("capped");
    assert_string_equal(r.status, "pending");
    assert_non_null(strstr(r.error, "above the cap"));
    assert_int_equal(nonce_of(g.addr[0]), n0);
    assert_int_equal(alerts_with("above the cap"), 1);
    assert_int_equal(step(&t), 0);
    assert_int_equal(alerts_with("above the cap"), 1); /* no page on every pass */
    ob_close(&t);
}

static void test_global_pause(void **state)
{
    (void)state;
    tb t;
    ob_open(&t, 0, 0, NULL, NULL, NULL, NULL, NULL);
    uint64_t n0 = nonce_of(g.addr[0]);
    redisReply *rr = redisCommand(g.rc, "SET %s 1", OUTBOX_PAUSE_KEY);
    freeReplyObject(rr);
    assert_int_equal(enqueue("paused", 0, g.addr[2], "5", NULL, 0), 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(step(&t), 0);
    assert_string_equal(row("paused").status, "pending");
    assert_int_equal(nonce_of(g.addr[0]), n0);
    rr = redisCommand(g.rc, "DEL %s", OUTBOX_PAUSE_KEY);
    freeReplyObject(rr);
    assert_true(step(&t) >= 2);
    assert_int_equal(nonce_of(g.addr[0]), n0 + 1);
    /* paused again: the sent row is still tracked to its confirmations */
    rr = redisCommand(g.rc, "SET %s 1", OUTBOX_PAUSE_KEY);
    freeReplyObject(rr);
    assert_string_equal(run_final(&t, "paused").status, "confirmed");
    ob_close(&t);
}

static void test_reorg_rebroadcast(void **state)
{
    (void)state;
    tb t;
    ob_open(&t, 0, 0, NULL, NULL, NULL, NULL, NULL);
    transfer w = transfer_watch(0, g.addr[2]);
    cJSON *s = rpc("evm_snapshot", NULL);
    char snap[80];
    util_strlcpy(snap, cJSON_GetStringValue(s), sizeof snap);
    cJSON_Delete(s);
    assert_int_equal(enqueue("reorg", 0, g.addr[2], "31337", NULL, 0), 1);
    step(&t); /* signed, sent, mined by automine */
    step(&t); /* block recorded */
    outbox_row r = row("reorg");
    assert_string_equal(r.status, "sent");
    assert_true(r.block_number > 0);
    assert_true(has_receipt_settled(r.tx_hash, 1));
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(snap));
    rpc_void("evm_revert", p); /* the block holding it is gone */
    assert_false(has_receipt(r.tx_hash));
    assert_int_equal(nonce_of(g.addr[0]), w.n0);
    step(&t); /* notices, re-broadcasts the same bytes */
    r = run_final(&t, "reorg");
    assert_string_equal(r.status, "confirmed");
    assert_int_equal(r.attempts, 1);
    assert_transfer(&w, 1, "31337");
    assert_int_equal(stats_of(&t).rebroadcast, 1);
    ob_close(&t);
}

static void test_nonce_sequence(void **state)
{
    (void)state;
    tb t;
    ob_open(&t, 0, 0, NULL, NULL, NULL, NULL, NULL);
    transfer w = transfer_watch(0, g.addr[1]);
    char key[32];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "seq-%d", i);
        assert_int_equal(enqueue(key, 0, g.addr[1], "1000", NULL, 0), 1);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "seq-%d", i);
        outbox_row r = run_final(&t, key);
        assert_string_equal(r.status, "confirmed");
        assert_int_equal(r.nonce, (int64_t)w.n0 + i); /* enqueue order, no gaps */
    }
    assert_int_equal(th_pg_scalar(g.pg, "SELECT count(DISTINCT nonce) FROM transactions"), 10);
    assert_int_equal(th_pg_scalar(g.pg, "SELECT max(nonce) - min(nonce) FROM transactions"), 9);
    assert_transfer(&w, 10, "10000");
    ob_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enqueue_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eth_transfers_confirmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usdt_transfer_confirmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simulation_revert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stuck_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fee_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_global_pause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reorg_rebroadcast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonce_sequence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
