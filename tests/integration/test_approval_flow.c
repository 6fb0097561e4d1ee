/* Integration tests of the approval service's handlers against the harness PostgreSQL
 * (fresh database, real migrations), Redis and the shared anvil devchain (between
 * evm_snapshot and evm_revert):
 *  - the seeded redemption (below the threshold) is auto-approved: approveRedemption goes
 *    through the outbox and is confirmed on chain; its RedemptionApproved log moves the
 *    book; after T+7 the settlement pass settles it on chain, and the Settled log closes it;
 *  - a redemption above the threshold gets a 2-approval ticket: bad, expired, wrong-wallet,
 *    non-VIP, viewer-role and requester votes are refused with nothing written; two signed
 *    approvals produce exactly one approveRedemption transaction, confirmed on chain;
 *  - three approvers voting at the same instant on a 2-approval ticket: one decision;
 *  - the same request delivered twice -> one ticket; a reorg removal cancels the ticket;
 *    a transition the book forbids is reconciled and alerted;
 *  - SLA reminder and escalations with an injected clock;
 *  - settlement waits for liquidity and asks rebalance for it; the forecast warns ahead.
 * Chain events are the vault's real logs, decoded and shaped as the listener publishes
 * them (lowercase addresses, decimal uints), or synthetic envelopes of the same shape. */
#include <pthread.h>
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
#include "approval/app.h"
#include "approval/book.h"
#include "approval/settle.h"
#include "approval/sla.h"
#include "approval/ticket.h"
#include "approval/outmsg.h"
#include "db.h"
#include "devchain_fixture.h"
#include "envelope.h"
#include "harness.h"
#include "hex.h"
#include "migrate.h"
#include "outbox.h"
#include "rpc.h"
#include "signer.h"
#include "util.h"

#define scalar(...) th_pg_scalarf(g.pg, __VA_ARGS__)
#define text(...)   th_pg_textf(g.pg, __VA_ARGS__)

static struct {
    dc_chain dc;
    char vault[43];
    char operator[43];
    uint8_t operator_key[32];
    char approver[3][43];
    uint8_t approver_key[3][32];
    char investor[3][43];
    const char *investor_key[3]; /* hex, as cast takes it */
    char spare[43];
    uint8_t spare_key[32];
    abi_contract *abi;     /* as the service uses it */
    abi_contract *abi_low; /* lowercase addresses, as the listener decodes */
    signer *sg;
    /* per test */
    char snap[DC_SNAP_MAX];
    db_pool *pool;
    PGconn *pg;
    appr_app app;
} g;

/* ------------------------------------------------------------------ chain helpers */

static void cast_send(const char *key, const char *sig, const char *args)
{
    dc_cast_send(&g.dc, key, g.vault, sig, args);
}

/* The latest vault log of `event` for the request, shaped as the listener publishes it. */
static envelope *event_envelope(const char *event, const char *request_id)
{
    return dc_log_envelope(&g.dc, g.abi_low, g.vault, event, "requestId", request_id);
}

/* A synthetic RedemptionRequested of the same shape (for requests not on chain). */
static envelope *synthetic_request(const char *request_id, const char *gross, int channel,
                                   const char *event_id)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "requestId", request_id);
    cJSON_AddStringToObject(a, "controller", g.investor[2]);
    cJSON_AddStringToObject(a, "owner", g.investor[2]);
    cJSON_AddStringToObject(a, "channel", channel ? "1" : "0");
    cJSON_AddStringToObject(a, "shares", gross);
    cJSON_AddStringToObject(a, "grossAssets", gross);
    cJSON_AddStringToObject(a, "fee", "0");
    cJSON_AddStringToObject(a, "settleTime", "1767225600");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "chain_id", (double)g.dc.chain_id);
    cJSON_AddStringToObject(p, "address", g.vault);
    cJSON_AddStringToObject(p, "event", "RedemptionRequested");
    cJSON_AddStringToObject(
        p, "signature",
        "RedemptionRequested(uint256,address,address,uint8,uint256,uint256,uint256,uint64)");
    cJSON_AddItemToObject(p, "args", a);
    cJSON_AddNumberToObject(p, "block_number", 100);
    cJSON_AddStringToObject(p, "block_hash",
                            "0x1111111111111111111111111111111111111111111111111111111111111111");
    cJSON_AddStringToObject(p, "block_time", "2025-12-25T00:00:00.000Z");
    cJSON_AddStringToObject(p, "tx_hash",
                            "0x2222222222222222222222222222222222222222222222222222222222222222");
    cJSON_AddNumberToObject(p, "tx_index", 0);
    cJSON_AddNumberToObject(p, "log_index", 1);
    cJSON_AddBoolToObject(p, "removed", 0);
    return envelope_new(event_id, "chain.redemption_requested", "listener", NULL, p);
}

static envelope *synthetic(const char *type, const char *event_id, cJSON *args)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "chain_id", (double)g.dc.chain_id);
    cJSON_AddStringToObject(p, "address", g.vault);
    cJSON_AddItemToObject(p, "args", args);
    cJSON_AddStringToObject(p, "block_time", "2025-12-26T00:00:00.000Z");
    cJSON_AddBoolToObject(p, "removed", strstr(type, ".removed") != NULL);
    return envelope_new(event_id, type, "listener", NULL, p);
}

/* ------------------------------------------------------------------ db helpers */

typedef struct handle_ctx {
    const envelope *m;
    bus_handler_fn fn;
    int result;
} handle_ctx;

static int handle_tx(db_conn *c, void *ud, char *err, size_t errlen)
{
    handle_ctx *h = ud;
    int fresh = db_processed_mark(c, "approval", "t", h->m->id, err, errlen);
    if (fresh < 0)
        return -1;
    if (fresh == 0)
        return (h->result = BUS_OK), 0;
    h->result = h->fn(c, h->m, &g.app, err, errlen);
    return h->result == BUS_OK ? 0 : -1;
}

/* Runs a handler as the bus would: one transaction with the processed-message guard. */
static int deliver(bus_handler_fn fn, envelope *m)
{
    handle_ctx h = {.m = m, .fn = fn};
    char err[256];
    int rc = db_tx(g.pool, handle_tx, &h, err, sizeof err);
    if (rc != 0 && h.result == BUS_OK)
        fail_msg("delivery failed: %s", err);
    envelope_free(m);
    return h.result;
}

static void run_outbox_until(const char *key, const char *status)
{
    outbox_cfg cfg = {.schema = "approval",
                      .db = g.pool,
                      .rpc = g.dc.rpc,
                      .signer = g.sg,
                      .redis_url = th_redis_url(),
                      .chain_id = g.dc.chain_id,
                      .abi_dir = th_repo_path("schemas/abi"),
                      .confirmations = 1};
    char err[256];
    outbox *o = outbox_new(&cfg, err, sizeof err);
    if (!o)
        fail_msg("outbox: %s", err);
    db_conn *c = db_acquire(g.pool, 2000, NULL, 0);
    outbox_row row = {0};
    for (int i = 0; i < 40; i++) {
        outbox_step(o, err, sizeof err);
        assert_int_equal(outbox_get(c, "approval", key, &row, err, sizeof err), 1);
        if (strcmp(row.status, status) == 0)
            break;
        dc_mine(&g.dc, 1);
    }
    db_release(g.pool, c);
    outbox_free(o);
    if (strcmp(row.status, status) != 0)
        fail_msg("tx %s is %s (%s %s), wanted %s", key, row.status, row.error, row.revert_reason,
                 status);
}

/* ------------------------------------------------------------------ votes */

static void sign_vote(int approver, const char *ticket, const char *decision, const char *nonce,
                      uint64_t deadline, char sig_hex[DC_SIG_HEX])
{
    const uint8_t *key = approver >= 0 ? g.approver_key[approver] : g.spare_key;
    dc_sign_approval(&g.dc, key, g.vault, ticket, decision, nonce, deadline, sig_hex);
}

static tkt_status vote_as(int approver, const char *user, const char *role, const char *wallet,
                          const char *ticket, const char *decision, const char *nonce,
                          int64_t deadline_off_s, const char *sig_override)
{
    int64_t now = util_now_ms();
    uint64_t deadline = (uint64_t)(now / 1000 + deadline_off_s);
    char sig[140], dl[24];
    sign_vote(approver, ticket, decision, nonce, deadline, sig);
    snprintf(dl, sizeof dl, "%llu", (unsigned long long)deadline);
    tkt_vote_req v = {.ticket_id = ticket,
                      .decision = decision,
                      .reason = strcmp(decision, "reject") == 0 ? "not enough liquidity" : NULL,
                      .user = user,
                      .role = role,
                      .wallet = wallet ? wallet : (approver >= 0 ? g.approver[approver] : g.spare),
                      .nonce = nonce,
                      .deadline = dl,
                      .signature = sig_override ? sig_override : sig,
                      .now_ms = now};
    char msg[200];
    return tkt_vote(&g.app, &v, NULL, msg, sizeof msg);
}

/* ------------------------------------------------------------------ on-chain requests */

/* A uint view of the vault read with cast; the leading decimal of its answer. */
static unsigned long long cast_uint(const char *sig, const char *args)
{
    return dc_cast_uint(&g.dc, g.vault, sig, args);
}

/* Investor `inv` redeems `whole` shares (18 decimals) on `channel`; the new request id. */
static int redeem(int inv, const char *whole, int channel)
{
    char args[256];
    snprintf(args, sizeof args, "%s000000000000000000 %s %s %d", whole, g.investor[inv],
             g.investor[inv], channel);
    cast_send(g.investor_key[inv], "requestRedeem(uint256,address,address,uint8)", args);
    int id = (int)cast_uint("redemptionCount()(uint256)", "");
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%d", id);
    assert_int_equal(dc_redemption_status(&g.dc, idbuf), 1);
    return id;
}

static const char *rid_of(int id)
{
    static char buf[4][160];
    static int k;
    char *o = buf[k++ % 4];
    snprintf(o, 160, "%llu:%s:%d", (unsigned long long)g.dc.chain_id, g.vault, id);
    return o;
}

static void set_policy(const char *key, const char *value)
{
    char sql[512];
    snprintf(sql, sizeof sql, "UPDATE approval.approval_policies SET value = '%s' WHERE key = '%s'",
             value, key);
    th_pg_exec(g.pg, sql);
}

/* A vote with an explicit reason (NULL = none), signed by approver `who`. */
static tkt_status vote_reason(int who, const char *user, const char *ticket, const char *decision,
                              const char *nonce, const char *reason)
{
    int64_t now = util_now_ms();
    uint64_t deadline = (uint64_t)(now / 1000 + 600);
    char sig[140], dl[24], msg[200];
    sign_vote(who, ticket, decision, nonce, deadline, sig);
    snprintf(dl, sizeof dl, "%llu", (unsigned long long)deadline);
    tkt_vote_req v = {.ticket_id = ticket,
                      .decision = decision,
                      .reason = reason,
                      .user = user,
                      .role = "operator",
                      .wallet = g.approver[who],
                      .nonce = nonce,
                      .deadline = dl,
                      .signature = sig,
                      .now_ms = now};
    return tkt_vote(&g.app, &v, NULL, msg, sizeof msg);
}

/* ------------------------------------------------------------------ fixtures */

static int group_setup(void **state)
{
    (void)state;
    if (dc_open(&g.dc, NULL, "test_approval") != 0 || !dc_contract(&g.dc, "vault"))
        return -1;
    util_strlcpy(g.vault, dc_contract(&g.dc, "vault"), sizeof g.vault);
    if (dc_account(&g.dc, "operator", -1, g.operator, g.operator_key))
        return -1;
    for (int i = 0; i < 3; i++) {
        if (dc_account(&g.dc, "approvers", i, g.approver[i], g.approver_key[i]) ||
            dc_account(&g.dc, "investors", i, g.investor[i], NULL))
            return -1;
        g.investor_key[i] = dc_private_key(&g.dc, "investors", i);
    }
    if (dc_account(&g.dc, "spare", 0, g.spare, g.spare_key))
        return -1;
    g.abi = abi_contract_load(th_repo_path("schemas/abi/PaimonVault.json"), NULL, 0);
    g.abi_low = abi_contract_load(th_repo_path("schemas/abi/PaimonVault.json"), NULL, 0);
    if (!g.abi || !g.abi_low)
        return -1;
    g.abi_low->log_flags = ABI_DECODE_LOWER_ADDR;
    if (signer_local_from_key(g.operator_key, &g.sg, NULL, 0) != 0)
        return -1;
    /* VIP_APPROVER_ROLE() from the vault, as main.c reads it. */
    const abi_fn *fn = abi_contract_fn(g.abi, "VIP_APPROVER_ROLE");
    char data[16];
    hex_encode(fn->selector, 4, 1, data, sizeof data);
    uint8_t *out = NULL;
    size_t len = 0;
    rpc_error e;
    rpc_error_init(&e);
    if (rpc_eth_call(g.dc.rpc, g.vault, data, RPC_BLOCK_LATEST, &out, &len, &e) != 0 || len != 32)
        return -1;
    memcpy(g.app.vip_role, out, 32);
    free(out);
    g.app.rpc = g.dc.rpc;
    g.app.abi = g.abi;
    g.app.chain_id = g.dc.chain_id;
    util_strlcpy(g.app.vault, g.vault, sizeof g.app.vault);
    util_strlcpy(g.app.operator, g.operator, sizeof g.app.operator);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    signer_free(g.sg);
    abi_contract_free(g.abi);
    abi_contract_free(g.abi_low);
    dc_close(&g.dc);
    return 0;
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static int setup(void **state)
{
    (void)state;
    const char *url = th_pg_fresh_db("approval_flow");
    g.pg = th_pg_connect(url);
    PQsetNoticeProcessor(g.pg, quiet, NULL);
    char err[512];
    if (th_pg_migrate(g.pg, "approval") != 0)
        return -1;
    g.pool = db_pool_new(url, 6, err, sizeof err);
    if (!g.pool)
        return -1;
    g.app.db = g.pool;
    redisFree(th_redis_fresh());
    dc_snapshot(&g.dc, g.snap);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    dc_revert(&g.dc, g.snap);
    db_pool_free(g.pool);
    g.pool = NULL;
    PQfinish(g.pg);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_auto_approval_and_settlement_on_chain(void **state)
{
    (void)state;
    /* Seeded redemption #1: 20,000 shares, standard, below the 100K threshold. */
    assert_int_equal(dc_redemption_status(&g.dc, "1"), 1);
    assert_int_equal(deliver(book_chain_event, event_envelope("RedemptionRequested", "1")), BUS_OK);
    char rid[160];
    snprintf(rid, sizeof rid, "%llu:%s:1", (unsigned long long)g.dc.chain_id, g.vault);
    assert_string_equal(text("SELECT status || '/' || approval_mode || '/' || decision FROM "
                             "approval.redemption_requests WHERE id = '%s'",
                             rid),
                        "pending/auto/approve");
    /* Due time T+7 from the block time. */
    assert_int_equal(scalar("SELECT extract(epoch FROM due_at - requested_at)::bigint FROM "
                            "approval.redemption_requests WHERE id = '%s'",
                            rid),
                     7 * 86400);
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records WHERE redemption_id "
                            "= '%s' AND action = 'auto_approved' AND actor = 'policy'",
                            rid),
                     1);
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_tickets"), 0);
    char key[200];
    snprintf(key, sizeof key, "approve:%s", rid);
    run_outbox_until(key, "confirmed");
    assert_int_equal(dc_redemption_status(&g.dc, "1"), 2); /* Approved on chain */

    assert_int_equal(deliver(book_chain_event, event_envelope("RedemptionApproved", "1")), BUS_OK);
    assert_string_equal(
        text("SELECT status FROM approval.redemption_requests WHERE id = '%s'", rid), "approved");
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records WHERE action = "
                            "'reconciled'"),
                     0);

    /* Not due yet: nothing queued. */
    int64_t now;
    money_u256 l1;
    char err[256];
    int queued = -1, waiting = -1;
    assert_int_equal(stl_chain_now_ms(&g.app, &now, err, sizeof err), 0);
    assert_int_equal(stl_l1_balance(&g.app, &l1, err, sizeof err), 0);
    assert_int_equal(stl_settle(&g.app, now, &l1, &queued, &waiting, err, sizeof err), 0);
    assert_int_equal(queued, 0);
    /* T+7 later the pass settles it on chain. */
    dc_increase_time(&g.dc, 7 * 86400 + 60);
    assert_int_equal(stl_chain_now_ms(&g.app, &now, err, sizeof err), 0);
    assert_int_equal(stl_settle(&g.app, now, &l1, &queued, &waiting, err, sizeof err), 0);
    assert_int_equal(queued, 1);
    assert_int_equal(waiting, 0);
    snprintf(key, sizeof key, "settle:%s:1", rid);
    run_outbox_until(key, "confirmed");
    assert_int_equal(dc_redemption_status(&g.dc, "1"), 4); /* Settled */
    assert_int_equal(deliver(book_chain_event, event_envelope("RedemptionSettled", "1")), BUS_OK);
    assert_string_equal(text("SELECT status || '/' || settle_state FROM "
                             "approval.redemption_requests WHERE id = '%s'",
                             rid),
                        "settled/done");
}

static void test_ticket_signed_votes_one_tx(void **state)
{
    (void)state;
    /* Investor 0 redeems 300,000 shares: above the threshold, tier 2 (2 approvals). */
    char args[200];
    snprintf(args, sizeof args, "300000000000000000000000 %s %s 0", g.investor[0], g.investor[0]);
    cast_send(g.investor_key[0], "requestRedeem(uint256,address,address,uint8)", args);
    assert_int_equal(dc_redemption_status(&g.dc, "2"), 1);
    assert_int_equal(deliver(book_chain_event, event_envelope("RedemptionRequested", "2")), BUS_OK);
    /* The same event again (another delivery) is a no-op; the same request under another
     * event id does not make a second ticket either. */
    envelope *again = event_envelope("RedemptionRequested", "2");
    free(again->id);
    again->id = util_strdup("31337:0xdup:9");
    assert_int_equal(deliver(book_chain_event, again), BUS_OK);
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_tickets"), 1);
    char tid[64];
    util_strlcpy(tid, text("SELECT id FROM approval.approval_tickets"), sizeof tid);
    assert_int_equal(scalar("SELECT required_approvals FROM approval.approval_tickets"), 2);
    long long records = scalar("SELECT count(*) FROM approval.approval_records");

    /* Refusals, none of which writes anything. */
    char other[140];
    sign_vote(1, tid, "approve", "7", (uint64_t)(util_now_ms() / 1000 + 600), other);
    assert_int_equal(vote_as(0, "u0", "operator", NULL, tid, "approve", "7", 600, other),
                     TKT_BAD_SIGNATURE); /* signed by approver 1, claimed by approver 0 */
    assert_int_equal(vote_as(0, "u0", "operator", NULL, tid, "approve", "1", -10, NULL),
                     TKT_BAD_SIGNATURE); /* expired */
    assert_int_equal(
        vote_as(0, "u0", "operator", NULL, "no-such-ticket", "approve", "1", 600, NULL),
        TKT_NOT_FOUND);
    assert_int_equal(vote_as(-1, "u9", "operator", NULL, tid, "approve", "1", 600, NULL),
                     TKT_FORBIDDEN); /* a wallet without VIP_APPROVER_ROLE */
    assert_int_equal(vote_as(0, "u0", "viewer", NULL, tid, "approve", "1", 600, NULL),
                     TKT_FORBIDDEN); /* off-chain role too low */
    assert_int_equal(vote_as(0, g.investor[0], "operator", NULL, tid, "approve", "1", 600, NULL),
                     TKT_FORBIDDEN); /* the requester */
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records"), records);
    assert_int_equal(scalar("SELECT count(*) FROM approval.transactions"), 0);

    /* First approval: counted, the ticket stays open, nothing sent. */
    assert_int_equal(vote_as(0, "u0", "operator", NULL, tid, "approve", "1", 600, NULL), TKT_OK);
    assert_string_equal(text("SELECT status || '/' || approvals FROM approval.approval_tickets"),
                        "open/1");
    assert_int_equal(scalar("SELECT count(*) FROM approval.transactions"), 0);
    /* One vote per approver, and a (wallet, nonce) is never reused. */
    assert_int_equal(vote_as(0, "u0", "operator", NULL, tid, "approve", "2", 600, NULL),
                     TKT_CONFLICT);
    assert_int_equal(vote_as(0, "u0b", "operator", NULL, tid, "approve", "1", 600, NULL),
                     TKT_CONFLICT);
    /* Second distinct approver: decided, exactly one approveRedemption. */
    assert_int_equal(vote_as(1, "u1", "admin", NULL, tid, "approve", "1", 600, NULL), TKT_OK);
    assert_string_equal(text("SELECT status || '/' || approvals FROM approval.approval_tickets"),
                        "approved/2");
    assert_int_equal(vote_as(2, "u2", "operator", NULL, tid, "approve", "1", 600, NULL),
                     TKT_CONFLICT);
    assert_int_equal(scalar("SELECT count(*) FROM approval.transactions"), 1);
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records WHERE action IN "
                            "('vote_approve', 'vote_reject') AND signature ~ '^0x[0-9a-f]{130}$'"),
                     2);
    assert_int_equal(scalar("SELECT count(*) FROM approval.sla_timers WHERE closed_at IS NULL"), 0);
    char rid[160], key[200];
    snprintf(rid, sizeof rid, "%llu:%s:2", (unsigned long long)g.dc.chain_id, g.vault);
    snprintf(key, sizeof key, "approve:%s", rid);
    run_outbox_until(key, "confirmed");
    assert_int_equal(dc_redemption_status(&g.dc, "2"), 2);
    assert_int_equal(deliver(book_chain_event, event_envelope("RedemptionApproved", "2")), BUS_OK);
    assert_string_equal(
        text("SELECT status FROM approval.redemption_requests WHERE id = '%s'", rid), "approved");
}

static void test_reorg_and_reconcile(void **state)
{
    (void)state;
    /* 40K emergency (above its 30K threshold): a ticket with one approval needed. */
    assert_int_equal(deliver(book_chain_event,
                             synthetic_request("900", "40000000000000000000000", 1, "31337:0xa:1")),
                     BUS_OK);
    char rid[160];
    snprintf(rid, sizeof rid, "%llu:%s:900", (unsigned long long)g.dc.chain_id, g.vault);
    assert_string_equal(text("SELECT channel || '/' || approval_mode FROM "
                             "approval.redemption_requests WHERE id = '%s'",
                             rid),
                        "emergency/ticket");
    assert_int_equal(scalar("SELECT extract(epoch FROM due_at - requested_at)::bigint FROM "
                            "approval.redemption_requests WHERE id = '%s'",
                            rid),
                     86400);
    assert_int_equal(scalar("SELECT sla_ms FROM approval.approval_tickets"), 7200000);
    /* Exactly at the emergency threshold: automatic. */
    assert_int_equal(deliver(book_chain_event,
                             synthetic_request("901", "30000000000000000000000", 1, "31337:0xa:2")),
                     BUS_OK);
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_tickets"), 1);
    assert_int_equal(scalar("SELECT count(*) FROM approval.transactions WHERE idempotency_key "
                            "LIKE 'approve:%%:901'"),
                     1);
    /* The reorg removes request 900: row removed, ticket cancelled, SLA closed, alert. */
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "requestId", "900");
    assert_int_equal(deliver(book_chain_event, synthetic("chain.redemption_requested.removed",
                                                         "31337:0xa:1:removed:0xbb", a)),
                     BUS_OK);
    assert_string_equal(
        text("SELECT status FROM approval.redemption_requests WHERE id = '%s'", rid), "removed");
    assert_string_equal(text("SELECT status FROM approval.approval_tickets"), "cancelled");
    assert_int_equal(scalar("SELECT count(*) FROM approval.sla_timers WHERE closed_at IS NULL"), 0);
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records WHERE action = "
                            "'removed_by_reorg'"),
                     1);
    assert_int_equal(scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = "
                            "'alerts' AND envelope LIKE '%%approval.reconcile%%'"),
                     1);
    /* A vote on the cancelled ticket changes nothing. */
    char tid[64];
    util_strlcpy(tid, text("SELECT id FROM approval.approval_tickets"), sizeof tid);
    assert_int_equal(vote_as(0, "u0", "operator", NULL, tid, "approve", "5", 600, NULL),
                     TKT_CONFLICT);
    /* The chain settles 901 although the book never saw it approved: reconciled + alert. */
    a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "requestId", "901");
    cJSON_AddStringToObject(a, "receiver", g.investor[2]);
    cJSON_AddStringToObject(a, "assets", "29700000000000000000000");
    cJSON_AddStringToObject(a, "fee", "300000000000000000000");
    assert_int_equal(
        deliver(book_chain_event, synthetic("chain.redemption_settled", "31337:0xc:1", a)), BUS_OK);
    assert_string_equal(text("SELECT status || '/' || settled_assets FROM "
                             "approval.redemption_requests WHERE request_id = 901"),
                        "settled/29700000000000000000000");
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records WHERE action = "
                            "'reconciled'"),
                     1);
    /* An event for a request the book never saw: recorded and alerted, not fatal. */
    a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "requestId", "777");
    cJSON_AddStringToObject(a, "by", g.investor[2]);
    assert_int_equal(
        deliver(book_chain_event, synthetic("chain.redemption_cancelled", "31337:0xd:1", a)),
        BUS_OK);
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records WHERE action = "
                            "'reconcile_unknown'"),
                     1);
    /* Another vault's events are not ours. */
    envelope *foreign = synthetic_request("902", "1", 0, "31337:0xe:1");
    cJSON_ReplaceItemInObject(foreign->payload, "address",
                              cJSON_CreateString("0x000000000000000000000000000000000000dead"));
    assert_int_equal(deliver(book_chain_event, foreign), BUS_OK);
    assert_int_equal(scalar("SELECT count(*) FROM approval.redemption_requests"), 2);
}

typedef struct voter {
    int who;
    char user[16];
    const char *ticket;
    tkt_status st;
} voter;

static void *vote_thread(void *arg)
{
    voter *v = arg;
    v->st = vote_as(v->who, v->user, "operator", NULL, v->ticket, "approve", "42", 600, NULL);
    return NULL;
}

static void test_concurrent_votes_one_decision(void **state)
{
    (void)state;
    /* A rebalance of 200K (above 50K; tier 2): two approvals needed. */
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "kind", "rebalance");
    cJSON_AddStringToObject(p, "ref", "plan-17");
    cJSON_AddStringToObject(p, "amount", "200000000000000000000000");
    cJSON_AddStringToObject(p, "requester", "rebalance");
    cJSON_AddItemToObject(p, "payload", cJSON_Parse("{\"legs\":[{\"asset\":\"USTB\"}]}"));
    assert_int_equal(deliver(book_request, envelope_new("rb-17", "approval.request", "rebalance",
                                                        NULL, cJSON_Duplicate(p, 1))),
                     BUS_OK);
    assert_int_equal(deliver(book_request,
                             envelope_new("rb-17-again", "approval.request", "rebalance", NULL, p)),
                     BUS_OK);
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_tickets"), 1);
    char tid[64];
    util_strlcpy(tid, text("SELECT id FROM approval.approval_tickets"), sizeof tid);
    voter v[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        v[i] = (voter){.who = i, .ticket = tid};
        snprintf(v[i].user, sizeof v[i].user, "c%d", i);
        pthread_create(&th[i], NULL, vote_thread, &v[i]);
    }
    int ok = 0, conflict = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        ok += v[i].st == TKT_OK;
        conflict += v[i].st == TKT_CONFLICT;
    }
    assert_int_equal(ok, 2);
    assert_int_equal(conflict, 1);
    assert_string_equal(text("SELECT status || '/' || approvals FROM approval.approval_tickets"),
                        "approved/2");
    assert_int_equal(scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = "
                            "'approval.decisions'"),
                     1);
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records WHERE action = "
                            "'decided'"),
                     1);
    assert_int_equal(scalar("SELECT count(*) FROM approval.transactions"), 0);
    /* The decision carries the plan to execute. */
    assert_int_equal(
        scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = "
               "'approval.decisions' AND envelope LIKE '%%\"decision\":\"approved\"%%' "
               "AND envelope LIKE '%%USTB%%'"),
        1);
    /* Below its threshold a rebalance is approved by policy at once. */
    p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "kind", "rebalance");
    cJSON_AddStringToObject(p, "ref", "plan-18");
    cJSON_AddStringToObject(p, "amount", "50000000000000000000000");
    cJSON_AddStringToObject(p, "requester", "rebalance");
    assert_int_equal(
        deliver(book_request, envelope_new("rb-18", "approval.request", "rebalance", NULL, p)),
        BUS_OK);
    assert_string_equal(text("SELECT status FROM approval.approval_tickets WHERE ref = 'plan-18'"),
                        "approved");
    assert_int_equal(scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = "
                            "'approval.decisions' AND envelope LIKE '%%\"auto\":true%%'"),
                     1);
    /* Flushing publishes them to the streams. */
    redisContext *rc = th_redis_fresh();
    char err[256];
    long long queued = scalar("SELECT count(*) FROM approval.outgoing_messages");
    assert_int_equal(out_flush(g.pool, rc, 500, err, sizeof err), queued);
    redisReply *r = redisCommand(rc, "XLEN paimon:approval.decisions:high");
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);
    assert_int_equal(out_flush(g.pool, rc, 500, err, sizeof err), 0);
    redisFree(rc);
}

static void test_sla_reminder_and_escalation(void **state)
{
    (void)state;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "kind", "manual");
    cJSON_AddStringToObject(p, "ref", "op-1");
    cJSON_AddStringToObject(p, "requester", "alice");
    cJSON_AddStringToObject(p, "title", "unpause the vault");
    assert_int_equal(deliver(book_request, envelope_new("m-1", "approval.request", "api", NULL, p)),
                     BUS_OK);
    int64_t t0 = scalar("SELECT (extract(epoch FROM started_at) * 1000)::bigint FROM "
                        "approval.sla_timers");
    int64_t sla = scalar("SELECT sla_ms FROM approval.sla_timers");
    assert_int_equal(sla, 4 * 3600 * 1000);
    int n = -1;
    char err[256];
    assert_int_equal(sla_sweep(&g.app, t0 + sla / 2 - 1000, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(sla_sweep(&g.app, t0 + sla / 2 + 1, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sla_sweep(&g.app, t0 + sla / 2 + 2, &n, err, sizeof err), 0);
    assert_int_equal(n, 0); /* never twice */
    assert_int_equal(sla_sweep(&g.app, t0 + sla + 1, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sla_sweep(&g.app, t0 + 2 * sla + 1, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(scalar("SELECT step FROM approval.sla_timers"), 3);
    assert_int_equal(scalar("SELECT count(*) FROM approval.sla_timers WHERE next_at IS NULL"), 1);
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records WHERE action IN "
                            "('sla_reminder', 'sla_escalation_admin', 'sla_escalation_super')"),
                     3);
    assert_int_equal(
        scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = 'alerts' "
               "AND priority = 'critical' AND envelope LIKE '%%super_admins%%'"),
        1);
    assert_int_equal(
        scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = 'alerts' "
               "AND priority = 'high' AND envelope LIKE '%%\"escalate_to\":\"admins\"%%'"),
        1);
    /* A ticket that jumps straight past 200 % gets every step, in order, in one sweep. */
    p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "kind", "manual");
    cJSON_AddStringToObject(p, "ref", "op-2");
    cJSON_AddStringToObject(p, "requester", "alice");
    assert_int_equal(deliver(book_request, envelope_new("m-2", "approval.request", "api", NULL, p)),
                     BUS_OK);
    assert_int_equal(sla_sweep(&g.app, t0 + 10 * sla, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
}

static void test_settlement_waits_for_liquidity(void **state)
{
    (void)state;
    /* Two approved, due synthetic redemptions of 50K and 20K against L1 = 60K. */
    assert_int_equal(deliver(book_chain_event,
                             synthetic_request("950", "50000000000000000000000", 0, "31337:0xf:1")),
                     BUS_OK);
    assert_int_equal(deliver(book_chain_event,
                             synthetic_request("951", "20000000000000000000000", 0, "31337:0xf:2")),
                     BUS_OK);
    th_pg_exec(g.pg, "UPDATE approval.redemption_requests SET status = 'approved'");
    th_pg_exec(g.pg, "UPDATE approval.redemption_requests SET due_at = due_at + interval '1 "
                     "second' WHERE request_id = 951");
    money_u256 l1;
    money_from_dec(&l1, "60000000000000000000000", NULL, 0);
    int64_t due = scalar("SELECT (extract(epoch FROM max(due_at)) * 1000)::bigint FROM "
                         "approval.redemption_requests") +
                  1000;
    int q = -1, w = -1;
    char err[256];
    /* Before the due time nothing happens. */
    assert_int_equal(stl_settle(&g.app, due - 86400000, &l1, &q, &w, err, sizeof err), 0);
    assert_int_equal(q + w, 0);
    assert_int_equal(stl_settle(&g.app, due, &l1, &q, &w, err, sizeof err), 0);
    assert_int_equal(q, 1); /* 950 (older) fits */
    assert_int_equal(w, 1); /* 951 waits: 60K - 50K reserved < 20K */
    assert_string_equal(text("SELECT settle_state FROM approval.redemption_requests WHERE "
                             "request_id = 951"),
                        "waiting_liquidity");
    assert_int_equal(scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = "
                            "'rebalance.requests' AND envelope LIKE "
                            "'%%\"needed\":\"20000000000000000000000\"%%'"),
                     1);
    /* Asked once: the next pass does not ask again. */
    assert_int_equal(stl_settle(&g.app, due, &l1, &q, &w, err, sizeof err), 0);
    assert_int_equal(q, 0);
    assert_int_equal(scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = "
                            "'rebalance.requests'"),
                     1);
    /* Liquidity arrives (the first settlement confirmed, more L1): the second is queued. */
    th_pg_exec(g.pg, "UPDATE approval.redemption_requests SET status = 'settled', settle_state = "
                     "'done' WHERE request_id = 950");
    assert_int_equal(stl_settle(&g.app, due, &l1, &q, &w, err, sizeof err), 0);
    assert_int_equal(q, 1);
    assert_int_equal(scalar("SELECT count(*) FROM approval.transactions WHERE idempotency_key "
                            "LIKE 'settle:%%'"),
                     2);

    /* Forecast: a 7-day horizon with 100K pending in 3 days against 60K: warned ahead. */
    th_pg_exec(g.pg, "DELETE FROM approval.outgoing_messages");
    assert_int_equal(deliver(book_chain_event, synthetic_request("952", "100000000000000000000000",
                                                                 0, "31337:0xf:3")),
                     BUS_OK);
    int64_t now = scalar("SELECT (extract(epoch FROM due_at) * 1000)::bigint FROM "
                         "approval.redemption_requests WHERE request_id = 952") -
                  3 * 86400000LL;
    int short_day = -1;
    assert_int_equal(stl_forecast(&g.app, now, &l1, &short_day, err, sizeof err), 0);
    assert_true(short_day >= 2 && short_day <= 3);
    assert_int_equal(scalar("SELECT count(*) FROM approval.settlement_forecast"), 7);
    /* 951 (20K, queued, still in L1 until confirmed) + 952 (100K) against 60K. */
    assert_int_equal(scalar("SELECT count(*) FROM approval.settlement_forecast WHERE shortfall = "
                            "60000000000000000000000"),
                     7 - short_day);
    assert_int_equal(
        scalar("SELECT count(*) FROM approval.settlement_forecast WHERE shortfall = 0"), short_day);
    assert_int_equal(scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = "
                            "'rebalance.requests'"),
                     1);
    assert_int_equal(scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = "
                            "'alerts' AND envelope LIKE '%%approval.liquidity%%'"),
                     1);
    /* The same forecast again is not news. */
    assert_int_equal(stl_forecast(&g.app, now, &l1, &short_day, err, sizeof err), 0);
    assert_int_equal(scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = "
                            "'rebalance.requests'"),
                     1);
}

static void test_channels_and_thresholds_on_chain(void **state)
{
    (void)state;
    /* Real requests on both channels, below and above the default thresholds (standard
     * 100K, emergency 30K), booked from their real logs. */
    static const struct {
        const char *shares;
        int channel;
        const char *mode;
        int required;
        long long sla_ms, due_s;
    } cases[] = {
        {"50000", 0, "auto", 0, 0, 7 * 86400},
        {"150000", 0, "ticket", 2, 86400000LL, 7 * 86400},
        {"10000", 1, "auto", 0, 0, 86400},
        {"40000", 1, "ticket", 1, 7200000LL, 86400},
    };
    int ids[6];
    for (size_t i = 0; i < 4; i++) {
        ids[i] = redeem(1, cases[i].shares, cases[i].channel);
        char idn[24];
        snprintf(idn, sizeof idn, "%d", ids[i]);
        assert_int_equal(deliver(book_chain_event, event_envelope("RedemptionRequested", idn)),
                         BUS_OK);
        const char *rid = rid_of(ids[i]);
        assert_string_equal(
            text("SELECT channel || '/' || approval_mode FROM "
                 "approval.redemption_requests WHERE id = '%s'",
                 rid),
            text("SELECT '%s/%s'", cases[i].channel ? "emergency" : "standard", cases[i].mode));
        assert_int_equal(scalar("SELECT extract(epoch FROM due_at - requested_at)::bigint FROM "
                                "approval.redemption_requests WHERE id = '%s'",
                                rid),
                         cases[i].due_s);
        if (cases[i].required) {
            assert_int_equal(scalar("SELECT required_approvals FROM approval.approval_tickets "
                                    "WHERE redemption_id = '%s'",
                                    rid),
                             cases[i].required);
            assert_int_equal(scalar("SELECT sla_ms FROM approval.approval_tickets WHERE "
                                    "redemption_id = '%s'",
                                    rid),
                             cases[i].sla_ms);
        } else {
            assert_int_equal(scalar("SELECT count(*) FROM approval.approval_tickets WHERE "
                                    "redemption_id = '%s'",
                                    rid),
                             0);
        }
    }
    /* Exactly at the threshold (set to the chain's own gross amount): automatic; one base
     * unit above it: a ticket. */
    char idb[24];
    ids[4] = redeem(0, "25000", 1);
    snprintf(idb, sizeof idb, "%d", ids[4]);
    envelope *e = event_envelope("RedemptionRequested", idb);
    const char *gross = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(e->payload, "args"), "grossAssets"));
    assert_non_null(gross);
    set_policy("threshold.emergency", gross);
    assert_int_equal(deliver(book_chain_event, e), BUS_OK);
    assert_string_equal(text("SELECT approval_mode FROM approval.redemption_requests WHERE id = "
                             "'%s'",
                             rid_of(ids[4])),
                        "auto");
    ids[5] = redeem(0, "25000", 1);
    snprintf(idb, sizeof idb, "%d", ids[5]);
    e = event_envelope("RedemptionRequested", idb);
    money_u256 g5, one, below;
    assert_int_equal(money_from_dec(&g5,
                                    cJSON_GetStringValue(cJSON_GetObjectItem(
                                        cJSON_GetObjectItem(e->payload, "args"), "grossAssets")),
                                    NULL, 0),
                     0);
    money_from_u64(&one, 1);
    assert_int_equal(money_sub(&below, &g5, &one), 0);
    char thr[MONEY_DEC_MAX];
    money_to_dec(&below, thr, sizeof thr);
    set_policy("threshold.emergency", thr);
    assert_int_equal(deliver(book_chain_event, e), BUS_OK);
    assert_string_equal(text("SELECT approval_mode FROM approval.redemption_requests WHERE id = "
                             "'%s'",
                             rid_of(ids[5])),
                        "ticket");
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_tickets"), 3);
    assert_int_equal(scalar("SELECT count(*) FROM approval.transactions"), 3);

    /* The automatic ones are approved on chain; the tickets wait. */
    const int autos[3] = {ids[0], ids[2], ids[4]};
    char key[200], idc[24];
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "approve:%s", rid_of(autos[i]));
        run_outbox_until(key, "confirmed");
        snprintf(idc, sizeof idc, "%d", autos[i]);
        assert_int_equal(dc_redemption_status(&g.dc, idc), 2);
    }
    const int tickets[3] = {ids[1], ids[3], ids[5]};
    for (int i = 0; i < 3; i++) {
        snprintf(idc, sizeof idc, "%d", tickets[i]);
        assert_int_equal(dc_redemption_status(&g.dc, idc), 1);
    }
    /* The emergency ticket needs one approval: approved on chain. */
    char tid[64];
    util_strlcpy(
        tid,
        text("SELECT id FROM approval.approval_tickets WHERE redemption_id = '%s'", rid_of(ids[3])),
        sizeof tid);
    assert_int_equal(vote_as(2, "u2", "operator", NULL, tid, "approve", "11", 600, NULL), TKT_OK);
    snprintf(key, sizeof key, "approve:%s", rid_of(ids[3]));
    run_outbox_until(key, "confirmed");
    snprintf(idc, sizeof idc, "%d", ids[3]);
    assert_int_equal(dc_redemption_status(&g.dc, idc), 2);
    /* Their RedemptionApproved logs move the book without any reconciliation. */
    const int approved[4] = {ids[0], ids[2], ids[4], ids[3]};
    for (int i = 0; i < 4; i++) {
        snprintf(idc, sizeof idc, "%d", approved[i]);
        assert_int_equal(deliver(book_chain_event, event_envelope("RedemptionApproved", idc)),
                         BUS_OK);
        assert_string_equal(text("SELECT status FROM approval.redemption_requests WHERE id = '%s'",
                                 rid_of(approved[i])),
                            "approved");
    }
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records WHERE action = "
                            "'reconciled'"),
                     0);
    assert_int_equal(scalar("SELECT count(*) FROM approval.redemption_requests WHERE status = "
                            "'pending'"),
                     2);
}

static void test_rejection_on_chain(void **state)
{
    (void)state;
    /* 200K standard: a 2-approval ticket; one approval, then a rejection with a reason. */
    int id = redeem(0, "200000", 0);
    char idc[24];
    snprintf(idc, sizeof idc, "%d", id);
    assert_int_equal(deliver(book_chain_event, event_envelope("RedemptionRequested", idc)), BUS_OK);
    char tid[64];
    util_strlcpy(tid, text("SELECT id FROM approval.approval_tickets"), sizeof tid);
    assert_int_equal(vote_reason(0, "u0", tid, "approve", "1", NULL), TKT_OK);
    long long records = scalar("SELECT count(*) FROM approval.approval_records");
    /* A rejection must say why: refused, nothing written. */
    assert_int_equal(vote_reason(1, "u1", tid, "reject", "1", NULL), TKT_BAD_REQUEST);
    assert_int_equal(vote_reason(1, "u1", tid, "reject", "1", ""), TKT_BAD_REQUEST);
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records"), records);
    assert_int_equal(vote_reason(1, "u1", tid, "reject", "1", "KYC refresh pending"), TKT_OK);
    assert_string_equal(text("SELECT status FROM approval.approval_tickets"), "rejected");
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records WHERE action = "
                            "'vote_reject' AND actor = 'u1' AND signature ~ '^0x[0-9a-f]{130}$'"),
                     1);
    /* Exactly one transaction: rejectRedemption, never an approval. */
    assert_int_equal(scalar("SELECT count(*) FROM approval.transactions"), 1);
    char key[200];
    snprintf(key, sizeof key, "reject:%s", rid_of(id));
    assert_int_equal(scalar("SELECT count(*) FROM approval.transactions WHERE idempotency_key = "
                            "'%s'",
                            key),
                     1);
    /* A late vote changes nothing. */
    assert_int_equal(vote_reason(2, "u2", tid, "approve", "1", NULL), TKT_CONFLICT);
    run_outbox_until(key, "confirmed");
    assert_int_equal(dc_redemption_status(&g.dc, idc), 3); /* Rejected */
    /* The reason went on chain: the RedemptionRejected log carries it. */
    envelope *e = event_envelope("RedemptionRejected", idc);
    assert_string_equal(cJSON_GetStringValue(
                            cJSON_GetObjectItem(cJSON_GetObjectItem(e->payload, "args"), "reason")),
                        "KYC refresh pending");
    assert_int_equal(deliver(book_chain_event, e), BUS_OK);
    assert_string_equal(text("SELECT status || '/' || reject_reason FROM "
                             "approval.redemption_requests WHERE id = '%s'",
                             rid_of(id)),
                        "rejected/KYC refresh pending");
    assert_int_equal(scalar("SELECT count(*) FROM approval.approval_records WHERE action = "
                            "'reconciled'"),
                     0);
    assert_int_equal(scalar("SELECT count(*) FROM approval.sla_timers WHERE closed_at IS NULL"), 0);
}

static long long xlen(redisContext *rc, const char *key)
{
    redisReply *r = redisCommand(rc, "XLEN %s", key);
    assert_non_null(r);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static void test_settlement_short_of_liquidity_on_chain(void **state)
{
    (void)state;
    /* A 50K standard request, approved automatically and on chain. */
    int id = redeem(0, "50000", 0);
    char idc[24], key[200], err[256];
    snprintf(idc, sizeof idc, "%d", id);
    assert_int_equal(deliver(book_chain_event, event_envelope("RedemptionRequested", idc)), BUS_OK);
    snprintf(key, sizeof key, "approve:%s", rid_of(id));
    run_outbox_until(key, "confirmed");
    assert_int_equal(deliver(book_chain_event, event_envelope("RedemptionApproved", idc)), BUS_OK);
    /* The rebalancer buys USTB with all but 10K of L1. */
    money_u256 l1, keep, spend;
    assert_int_equal(stl_l1_balance(&g.app, &l1, err, sizeof err), 0);
    money_from_dec(&keep, "10000000000000000000000", NULL, 0);
    assert_int_equal(money_sub(&spend, &l1, &keep), 0);
    char sp[MONEY_DEC_MAX], args[256];
    money_to_dec(&spend, sp, sizeof sp);
    const char *ustb = cJSON_GetStringValue(cJSON_GetObjectItem(
        cJSON_GetArrayItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(g.dc.json, "contracts"), "assets"), 0),
        "token"));
    snprintf(args, sizeof args, "%s %s 0", ustb, sp);
    cast_send(dc_private_key(&g.dc, "rebalancer", -1), "purchaseAsset(address,uint256,uint256)",
              args);
    assert_int_equal(stl_l1_balance(&g.app, &l1, err, sizeof err), 0);
    assert_int_equal(money_cmp(&l1, &keep), 0);

    /* Due (T+7): L1 cannot cover it, so it waits and asks for liquidity once. */
    dc_increase_time(&g.dc, 7 * 86400 + 60);
    int64_t now;
    int q = -1, w = -1;
    assert_int_equal(stl_chain_now_ms(&g.app, &now, err, sizeof err), 0);
    assert_int_equal(stl_settle(&g.app, now, &l1, &q, &w, err, sizeof err), 0);
    assert_int_equal(q, 0);
    assert_int_equal(w, 1);
    assert_string_equal(text("SELECT settle_state FROM approval.redemption_requests WHERE id = "
                             "'%s'",
                             rid_of(id)),
                        "waiting_liquidity");
    const char *net =
        text("SELECT net_assets FROM approval.redemption_requests WHERE id = '%s'", rid_of(id));
    assert_int_equal(scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = "
                            "'rebalance.requests' AND envelope LIKE '%%\"needed\":\"%s\"%%'",
                            net),
                     1);
    assert_int_equal(scalar("SELECT count(*) FROM approval.outgoing_messages WHERE topic = "
                            "'alerts' AND priority = 'high' AND envelope LIKE "
                            "'%%approval.liquidity%%' AND envelope LIKE '%%\"warning\"%%'"),
                     1);
    assert_int_equal(scalar("SELECT count(*) FROM approval.transactions WHERE idempotency_key "
                            "LIKE 'settle:%%'"),
                     0);
    redisContext *rc = th_redis_fresh();
    assert_true(out_flush(g.pool, rc, 500, err, sizeof err) >= 2);
    assert_int_equal(xlen(rc, "paimon:rebalance.requests:high"), 1);
    assert_true(xlen(rc, "paimon:alerts:high") >= 1);
    /* The next pass, same chain state: still waiting, not asked again. */
    assert_int_equal(stl_settle(&g.app, now, &l1, &q, &w, err, sizeof err), 0);
    assert_int_equal(q, 0);
    out_flush(g.pool, rc, 500, err, sizeof err);
    assert_int_equal(xlen(rc, "paimon:rebalance.requests:high"), 1);
    assert_int_equal(dc_redemption_status(&g.dc, idc), 2);

    /* Liquidity arrives (USDT into the vault): settled on chain. */
    char usdt_args[256];
    snprintf(usdt_args, sizeof usdt_args, "%s 100000000000000000000000", g.vault);
    dc_cast_send(&g.dc, dc_private_key(&g.dc, "admin", -1), dc_contract(&g.dc, "usdt"),
                 "mint(address,uint256)", usdt_args);
    assert_int_equal(stl_l1_balance(&g.app, &l1, err, sizeof err), 0);
    assert_int_equal(stl_chain_now_ms(&g.app, &now, err, sizeof err), 0);
    assert_int_equal(stl_settle(&g.app, now, &l1, &q, &w, err, sizeof err), 0);
    assert_int_equal(q, 1);
    snprintf(key, sizeof key, "settle:%s:1", rid_of(id));
    run_outbox_until(key, "confirmed");
    assert_int_equal(dc_redemption_status(&g.dc, idc), 4);
    redisFree(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auto_approval_and_settlement_on_chain, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ticket_signed_votes_one_tx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reorg_and_reconcile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_votes_one_decision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sla_reminder_and_escalation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settlement_waits_for_liquidity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channels_and_thresholds_on_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejection_on_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settlement_short_of_liquidity_on_chain, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
