/* Integration tests of the rebalance service against the harness PostgreSQL (fresh database,
 * real migrations), Redis and the shared anvil devchain (between evm_snapshot / evm_revert).
 * A price move makes USTB over-weight; then:
 *  - preview: plan + simulation, nothing written;
 *  - below the threshold: the deviation check queues a trigger, the executor plans, simulates,
 *    executes every leg through the outbox with the rebalancer key, verifies, and the vault
 *    ends within target;
 *  - above the threshold: an approval.request is published and nothing is sent until an
 *    approval.decision (published on the bus here, consumed by the real handler) arrives;
 *  - a leg that would revert (market spread above the slippage bound) is caught by simulation:
 *    plan failed with the decoded reason, an alert queued, no transaction;
 *  - a crash mid-plan (runner dropped after a leg was queued) resumes without repeating a
 *    trade: one outbox row and one on-chain trade per leg;
 *  - the global pause stops execution until it is lifted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "abi.h"
#include "bus.h"
#include "db.h"
#include "envelope.h"
#include "devchain_fixture.h"
#include "harness.h"
#include "hex.h"
#include "migrate.h"
#include "outbox.h"
#include "rconn.h"
#include "rebalance/app.h"
#include "rebalance/events.h"
#include "rebalance/exec.h"
#include "rebalance/store.h"
#include "rpc.h"
#include "signer.h"
#include "util.h"

#define scalar(...) th_pg_scalarf(g.pg, __VA_ARGS__)
#define text(...)   th_pg_textf(g.pg, __VA_ARGS__)

static struct {
    cJSON *dc;
    char rpc_url[128];
    uint64_t chain_id;
    char vault[43], market[43], admin_key[67];
    char feed[4][43];
    const char *answer[4];
    uint8_t rebalancer_key[32];
    char rebalancer[43];
    rpc_client *rpc;
    abi_contract *vabi, *tabi;
    signer *sg;
    char snap[80];
    db_pool *pool;
    PGconn *pg;
    rb_app app;
    outbox *ob;
    exec_runner *ex;
} g;

static const char *SEED_ANSWERS[4] = {"105000000", "100000000", "5240000000", "987000000"};

/* ------------------------------------------------------------------ helpers */

static cJSON *rpc(const char *method, cJSON *params)
{
    char err[256];
    cJSON *r = rpc_call(g.rpc, method, params ? params : cJSON_CreateArray(), err, sizeof err);
    if (!r)
        fail_msg("%s: %s", method, err);
    return r;
}

static void mine(int n)
{
    for (int i = 0; i < n; i++)
        cJSON_Delete(rpc("evm_mine", NULL));
}

static void cast_send(const char *to, const char *sig, const char *args)
{
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "send --rpc-url %s --private-key %s %s '%s' %s", g.rpc_url,
             g.admin_key, to, sig, args);
    if (th_cast(cmd, out, sizeof out) != 0)
        fail_msg("cast %s failed: %s", sig, out);
}

/* Fresh feeds (other tests may have moved the clock) with USTB at `ustb`. */
static void set_prices(const char *ustb)
{
    for (int i = 0; i < 4; i++)
        cast_send(g.feed[i], "setAnswer(int256)", i == 0 ? ustb : SEED_ANSWERS[i]);
}

static const char *latest_status(void)
{
    return text("SELECT status FROM rebalance.rebalance_history ORDER BY created_at DESC LIMIT 1");
}

/* Executor and outbox passes (mining between) until the latest plan reaches `want`. */
static void run_until(const char *want, int max)
{
    char err[256];
    for (int i = 0; i < max; i++) {
        if (exec_step(g.ex, err, sizeof err) < 0)
            fail_msg("exec_step: %s", err);
        if (strcmp(latest_status(), want) == 0)
            return;
        if (outbox_step(g.ob, err, sizeof err) < 0)
            fail_msg("outbox_step: %s", err);
        mine(1);
    }
    fail_msg("plan is '%s' (error: %s), wanted %s", latest_status(),
             text("SELECT error FROM rebalance.rebalance_history ORDER BY created_at DESC LIMIT 1"),
             want);
}

static void queue_check_trigger(void)
{
    char err[256];
    int rc = exec_check(&g.app, err, sizeof err);
    if (rc < 0)
        fail_msg("exec_check: %s", err);
    assert_int_equal(rc, 1);
    /* A second check while one is pending is coalesced. */
    assert_int_equal(exec_check(&g.app, err, sizeof err), 0);
}

/* Every asset within target +- 1.5 pp and L1 within its band, read through the service. */
static void assert_within_target(void)
{
    cJSON *a = NULL;
    char err[256];
    if (exec_allocation(&g.app, &a, err, sizeof err) != 0)
        fail_msg("allocation: %s", err);
    cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(a, "assets"))
    {
        double dev = cJSON_GetNumberValue(cJSON_GetObjectItem(x, "deviation_bps"));
        if (dev > 150 || dev < -150)
            fail_msg("%s deviates %.0f bps after the plan",
                     cJSON_GetStringValue(cJSON_GetObjectItem(x, "symbol")), dev);
    }
    double l1 =
        cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "l1"), "weight_bps"));
    assert_true(l1 >= 800 && l1 <= 1500);
    cJSON_Delete(a);
}

/* On-chain rebalancing trades (AssetPurchased + AssetRedeemed logs) since `from`. */
static int chain_trades(uint64_t from)
{
    int n = 0;
    const char *evs[2] = {"AssetPurchased", "AssetRedeemed"};
    for (int i = 0; i < 2; i++) {
        const abi_event *ev = abi_contract_event(g.vabi, evs[i]);
        char topic[HEX_B32_STRLEN], fb[32];
        hex_encode(ev->topic0, 32, 1, topic, sizeof topic);
        snprintf(fb, sizeof fb, "0x%llx", (unsigned long long)from);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "address", g.vault);
        cJSON_AddStringToObject(f, "fromBlock", fb);
        cJSON_AddStringToObject(f, "toBlock", "latest");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(f, "topics"), cJSON_CreateString(topic));
        rpc_error e;
        rpc_error_init(&e);
        cJSON *logs = rpc_get_logs(g.rpc, f, &e);
        cJSON_Delete(f);
        assert_non_null(logs);
        n += cJSON_GetArraySize(logs);
        cJSON_Delete(logs);
    }
    return n;
}

static uint64_t head(void)
{
    uint64_t h = 0;
    assert_int_equal(rpc_block_number(g.rpc, &h, NULL, 0), 0);
    return h;
}

/* ------------------------------------------------------------------ fixtures */

static int group_setup(void **state)
{
    (void)state;
    g.dc = dc_json_load(NULL);
    if (!g.dc)
        return -1;
    util_strlcpy(g.rpc_url, cJSON_GetStringValue(cJSON_GetObjectItem(g.dc, "rpcUrl")),
                 sizeof g.rpc_url);
    g.chain_id = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(g.dc, "chainId"));
    cJSON *c = cJSON_GetObjectItem(g.dc, "contracts");
    util_strlcpy(g.vault, cJSON_GetStringValue(cJSON_GetObjectItem(c, "vault")), sizeof g.vault);
    util_strlcpy(g.market, cJSON_GetStringValue(cJSON_GetObjectItem(c, "market")), sizeof g.market);
    for (int i = 0; i < 4; i++)
        util_strlcpy(g.feed[i],
                     cJSON_GetStringValue(cJSON_GetObjectItem(
                         cJSON_GetArrayItem(cJSON_GetObjectItem(c, "assets"), i), "aggregator")),
                     sizeof g.feed[i]);
    cJSON *acc = cJSON_GetObjectItem(g.dc, "accounts");
    util_strlcpy(
        g.admin_key,
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(acc, "admin"), "privateKey")),
        sizeof g.admin_key);
    cJSON *rb = cJSON_GetObjectItem(acc, "rebalancer");
    util_strlcpy(g.rebalancer, cJSON_GetStringValue(cJSON_GetObjectItem(rb, "address")),
                 sizeof g.rebalancer);
    if (hex_decode_fixed(cJSON_GetStringValue(cJSON_GetObjectItem(rb, "privateKey")),
                         g.rebalancer_key, 32, NULL, 0) != 0)
        return -1;
    const char *urls[1] = {g.rpc_url};
    rpc_config rc = {.urls = urls, .nurls = 1, .name = "test_rebalance"};
    g.rpc = rpc_client_new(&rc, NULL, 0);
    g.vabi = abi_contract_load(th_repo_path("schemas/abi/PaimonVault.json"), NULL, 0);
    g.tabi = abi_contract_load(th_repo_path("schemas/abi/RWAToken.json"), NULL, 0);
    if (!g.rpc || !g.vabi || !g.tabi)
        return -1;
    /* The rebalancer key through the signer, as the daemon's dev mode does. */
    if (signer_local_from_key(g.rebalancer_key, &g.sg, NULL, 0) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    signer_free(g.sg);
    abi_contract_free(g.vabi);
    abi_contract_free(g.tabi);
    rpc_client_free(g.rpc);
    cJSON_Delete(g.dc);
    return 0;
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static void usdt(money_u256 *out, uint64_t whole)
{
    money_u256 s;
    money_from_u64(out, whole);
    money_from_u64(&s, 1000000000000000000ULL);
    money_mul(out, out, &s);
}

static int setup(void **state)
{
    (void)state;
    const char *url = th_pg_fresh_db("rebalance_flow");
    g.pg = th_pg_connect(url);
    PQsetNoticeProcessor(g.pg, quiet, NULL);
    char err[512];
    if (th_pg_migrate(g.pg, "rebalance") != 0)
        return -1;
    g.pool = db_pool_new(url, 6, err, sizeof err);
    if (!g.pool)
        return -1;
    redisFree(th_redis_fresh());
    cJSON *s = rpc("evm_snapshot", NULL);
    util_strlcpy(g.snap, cJSON_GetStringValue(s), sizeof g.snap);
    cJSON_Delete(s);

    memset(&g.app, 0, sizeof g.app);
    g.app.db = g.pool;
    g.app.rpc = g.rpc;
    g.app.vault_abi = g.vabi;
    g.app.token_abi = g.tabi;
    g.app.redis_url = th_redis_url();
    g.app.chain_id = g.chain_id;
    util_strlcpy(g.app.vault, g.vault, sizeof g.app.vault);
    util_strlcpy(g.app.rebalancer, g.rebalancer, sizeof g.app.rebalancer);
    usdt(&g.app.approval_threshold, 50000);
    usdt(&g.app.large_deposit, 100000);
    usdt(&g.app.default_min_trade, 100);
    g.app.default_slippage_bps = 50;
    g.app.dev_bps = 500;
    g.app.l1_lo_bps = 800;
    g.app.l1_hi_bps = 1500;
    g.app.band_bps = 100;
    g.app.lock_ttl_ms = 30000;
    outbox_cfg ocfg = {.schema = RB_SCHEMA,
                       .db = g.pool,
                       .rpc = g.rpc,
                       .signer = g.sg,
                       .redis_url = th_redis_url(),
                       .chain_id = g.chain_id,
                       .abi_dir = th_repo_path("schemas/abi"),
                       .confirmations = 1};
    g.ob = outbox_new(&ocfg, err, sizeof err);
    g.ex = exec_runner_new(&g.app, err, sizeof err);
    return g.ob && g.ex ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    exec_runner_free(g.ex);
    g.ex = NULL;
    outbox_free(g.ob);
    g.ob = NULL;
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(g.snap));
    char err[256];
    cJSON_Delete(rpc_call(g.rpc, "evm_revert", p, err, sizeof err));
    db_pool_free(g.pool);
    g.pool = NULL;
    PQfinish(g.pg);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_preview_writes_nothing(void **state)
{
    (void)state;
    set_prices("140000000"); /* USTB $1.05 -> $1.40 */
    cJSON *p = NULL;
    char err[256];
    if (exec_preview(&g.app, NULL, &p, err, sizeof err) != 0)
        fail_msg("preview: %s", err);
    cJSON *legs = cJSON_GetObjectItem(cJSON_GetObjectItem(p, "plan"), "legs");
    assert_true(cJSON_GetArraySize(legs) >= 1);
    /* USTB (over-weight) is sold first. */
    cJSON *l0 = cJSON_GetArrayItem(legs, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(l0, "side")), "sell");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(l0, "symbol")), "USTB");
    cJSON *sim = cJSON_GetObjectItem(p, "simulation");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(sim, "ok")));
    cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItem(sim, "legs"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(s0, "status")), "ok");
    /* The simulated USDT out is at least the leg's guard. */
    money_u256 out, min;
    assert_int_equal(
        money_from_dec(&out, cJSON_GetStringValue(cJSON_GetObjectItem(s0, "out")), NULL, 0), 0);
    money_from_dec(&min, cJSON_GetStringValue(cJSON_GetObjectItem(l0, "min_out")), NULL, 0);
    assert_true(money_cmp(&out, &min) >= 0);
    /* More than 50K traded: it would need approval. */
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(p, "status")),
                        "awaiting_approval");
    cJSON_Delete(p);
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.rebalance_history"), 0);
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.transactions"), 0);
}

static void test_below_threshold_executes_and_ends_within_target(void **state)
{
    (void)state;
    usdt(&g.app.approval_threshold, 10000000); /* 10M: this plan is below it */
    set_prices("140000000");
    uint64_t from = head();
    queue_check_trigger();
    run_until("verified", 60);
    long long legs = scalar("SELECT count(*) FROM rebalance.rebalance_legs");
    assert_true(legs >= 2);
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.rebalance_legs WHERE status = "
                            "'confirmed' AND tx_hash IS NOT NULL"),
                     legs);
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.transactions WHERE status = "
                            "'confirmed' AND from_address = '%s'",
                            g.rebalancer),
                     legs);
    assert_int_equal(chain_trades(from), (int)legs);
    /* The trigger was taken by the plan; before / after recorded. */
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.rebalance_triggers WHERE "
                            "consumed_by IS NULL"),
                     0);
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.rebalance_history WHERE after_state "
                            "IS NOT NULL AND simulation->>'ok' = 'true'"),
                     1);
    assert_within_target();
    /* Nothing left to do: the next check finds the vault on target. */
    char err[256];
    assert_int_equal(exec_check(&g.app, err, sizeof err), 0);
}

static void test_above_threshold_waits_for_approval(void **state)
{
    (void)state;
    set_prices("140000000");
    uint64_t from = head();
    queue_check_trigger();
    run_until("awaiting_approval", 3);
    char plan[80];
    util_strlcpy(plan, text("SELECT id FROM rebalance.rebalance_history"), sizeof plan);
    /* The ticket request went out on approval.requests. */
    char err[256];
    redisContext *rc = rconn_connect(th_redis_url(), 2000, err, sizeof err);
    assert_non_null(rc);
    redisReply *r = redisCommand(rc, "XRANGE paimon:approval.requests:high - +");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    envelope *e = NULL;
    redisReply *fields = r->element[0]->element[1];
    assert_int_equal(
        envelope_parse(fields->element[1]->str, fields->element[1]->len, &e, err, sizeof err), 0);
    assert_string_equal(e->type, "approval.request");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e->payload, "kind")), "rebalance");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e->payload, "ref")), plan);
    money_u256 amount;
    money_from_dec(&amount, cJSON_GetStringValue(cJSON_GetObjectItem(e->payload, "amount")), NULL,
                   0);
    assert_true(money_cmp(&amount, &g.app.approval_threshold) > 0);
    envelope_free(e);
    freeReplyObject(r);
    /* Waiting: passes send nothing. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(exec_step(g.ex, err, sizeof err), 0);
        outbox_step(g.ob, err, sizeof err);
    }
    assert_string_equal(latest_status(), "awaiting_approval");
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.transactions"), 0);
    /* approval publishes its decision; the service's handler consumes it from the bus. */
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "ticket_id", "t-1");
    cJSON_AddStringToObject(d, "kind", "rebalance");
    cJSON_AddStringToObject(d, "ref", plan);
    cJSON_AddStringToObject(d, "decision", "approved");
    char amt[MONEY_DEC_MAX];
    money_to_dec(&amount, amt, sizeof amt);
    cJSON_AddStringToObject(d, "amount", amt);
    cJSON_AddBoolToObject(d, "auto", 0);
    cJSON *ap = cJSON_AddArrayToObject(d, "approvers");
    cJSON_AddItemToArray(ap, cJSON_CreateString("alice"));
    cJSON_AddItemToArray(ap, cJSON_CreateString("bob"));
    cJSON_AddObjectToObject(d, "payload");
    envelope *de = envelope_new("approval:decision:t-1", "approval.decision", "approval", NULL, d);
    assert_int_equal(bus_publish(rc, "approval.decisions", BUS_HIGH, de, 0, err, sizeof err), 0);
    envelope_free(de);
    bus_consumer_cfg bc = {.redis_url = th_redis_url(),
                           .topic = "approval.decisions",
                           .group = "rebalance",
                           .consumer = "test",
                           .schema = RB_SCHEMA,
                           .db = g.pool,
                           .handler = events_decision,
                           .ud = &g.app,
                           .block_ms = 100};
    bus_consumer *bcons = bus_consumer_new(&bc, err, sizeof err);
    assert_non_null(bcons);
    int got = 0;
    for (int i = 0; i < 10 && got == 0; i++)
        got = bus_consumer_poll(bcons, err, sizeof err);
    assert_int_equal(got, 1);
    bus_consumer_free(bcons);
    assert_string_equal(latest_status(), "approved");
    assert_string_equal(text("SELECT approval->'approvers'->>1 FROM rebalance.rebalance_history"),
                        "bob");
    redisFree(rc);
    run_until("verified", 60);
    long long legs = scalar("SELECT count(*) FROM rebalance.rebalance_legs");
    assert_int_equal(chain_trades(from), (int)legs);
    assert_within_target();
}

static void test_reverting_leg_caught_by_simulation(void **state)
{
    (void)state;
    usdt(&g.app.approval_threshold, 10000000);
    set_prices("140000000");
    /* The market takes a 5 % spread: every leg misses its 0.5 % guard. */
    cast_send(g.market, "setSpread(uint16)", "500");
    uint64_t from = head();
    queue_check_trigger();
    run_until("failed", 3);
    const char *error = text("SELECT error FROM rebalance.rebalance_history");
    if (!strstr(error, "SlippageExceeded"))
        fail_msg("error does not name the revert: %s", error);
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.rebalance_history WHERE "
                            "simulation->>'ok' = 'false'"),
                     1);
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.rebalance_legs"), 0);
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.transactions"), 0);
    assert_int_equal(chain_trades(from), 0);
    /* The alert went out (queued and published). */
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.outgoing_messages WHERE topic = "
                            "'alerts' AND published_at IS NOT NULL AND envelope LIKE "
                            "'%%SlippageExceeded%%'"),
                     1);
}

static int queued_seen;
static void on_step(const char *step, const char *plan, void *ud)
{
    (void)plan;
    (void)ud;
    if (strcmp(step, "queued") == 0)
        queued_seen++;
}

static void test_crash_mid_plan_resumes_without_repeating(void **state)
{
    (void)state;
    usdt(&g.app.approval_threshold, 10000000);
    set_prices("140000000");
    uint64_t from = head();
    queue_check_trigger();
    char err[256];
    exec_set_hook(g.ex, on_step, NULL);
    queued_seen = 0;
    for (int i = 0; i < 5 && queued_seen == 0; i++)
        assert_true(exec_step(g.ex, err, sizeof err) >= 0);
    assert_int_equal(queued_seen, 1);
    /* The first leg is sent and mined, then the executor dies before it sees the receipt. */
    outbox_step(g.ob, err, sizeof err);
    mine(1);
    outbox_step(g.ob, err, sizeof err);
    exec_runner_free(g.ex);
    /* Its lease is still held in Redis: a restarted replica waits for it to expire. */
    redisContext *rc = rconn_connect(th_redis_url(), 2000, err, sizeof err);
    redisReply *r = redisCommand(rc, "DEL paimon:lock:%s", EXEC_LOCK_NAME);
    freeReplyObject(r);
    redisFree(rc);
    g.ex = exec_runner_new(&g.app, err, sizeof err);
    run_until("verified", 60);
    long long legs = scalar("SELECT count(*) FROM rebalance.rebalance_legs");
    assert_true(legs >= 2);
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.transactions"), legs);
    assert_int_equal(scalar("SELECT count(DISTINCT nonce) FROM rebalance.transactions"), legs);
    assert_int_equal(chain_trades(from), (int)legs);
    assert_within_target();
}

static void test_pause_stops_execution(void **state)
{
    (void)state;
    usdt(&g.app.approval_threshold, 10000000);
    set_prices("140000000");
    char err[256];
    redisContext *rc = rconn_connect(th_redis_url(), 2000, err, sizeof err);
    freeReplyObject(redisCommand(rc, "SET %s 1", OUTBOX_PAUSE_KEY));
    uint64_t from = head();
    queue_check_trigger();
    for (int i = 0; i < 5; i++) {
        assert_true(exec_step(g.ex, err, sizeof err) >= 0);
        outbox_step(g.ob, err, sizeof err);
        mine(1);
    }
    /* Planned and approved, but nothing queued or sent. */
    assert_string_equal(latest_status(), "approved");
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.rebalance_legs WHERE status <> "
                            "'planned'"),
                     0);
    assert_int_equal(scalar("SELECT count(*) FROM rebalance.transactions"), 0);
    assert_int_equal(chain_trades(from), 0);
    freeReplyObject(redisCommand(rc, "DEL %s", OUTBOX_PAUSE_KEY));
    redisFree(rc);
    run_until("verified", 60);
    assert_within_target();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_preview_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_below_threshold_executes_and_ends_within_target, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_above_threshold_waits_for_approval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reverting_leg_caught_by_simulation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_mid_plan_resumes_without_repeating, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pause_stops_execution, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
