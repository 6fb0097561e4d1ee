/* Unit tests of the listener's domain modules (no network): adaptive ranges, priority
 * routing, event ids and types, the reorg common-ancestor walk, the read API's query
 * validation and contract items. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "envelope.h"
#include "listener/api.h"
#include "listener/conf.h"
#include "listener/evid.h"
#include "listener/msg.h"
#include "listener/range.h"
#include "listener/reorg.h"
#include "listener/route.h"

#define H(c)                                                                                       \
    "0x" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c \
        c c c c c c c c c c c c c c c c c c c

static void test_range_adapts(void **state)
{
    (void)state;
    range_ctl r;
    assert_int_equal(range_init(&r, 0, 1, 10, 100, NULL, 0), -1);
    assert_int_equal(range_init(&r, 100, 1, 1000, 500, NULL, 0), 0);
    uint64_t to;
    assert_int_equal(range_next(&r, 50, 40, &to), 0); /* nothing below the safe head */
    assert_int_equal(range_next(&r, 0, 1000, &to), 1);
    assert_int_equal(to, 99);
    assert_int_equal(range_next(&r, 990, 1000, &to), 1);
    assert_int_equal(to, 1000);    /* clipped at the safe head */
    range_on_success(&r, 100, 10); /* sparse: doubles */
    assert_int_equal(r.span, 200);
    range_on_success(&r, 5, 0); /* a short tail says nothing */
    assert_int_equal(r.span, 200);
    range_on_success(&r, 200, 2000); /* 4x the target: shrink toward it */
    assert_int_equal(r.span, 50);
    assert_int_equal(range_on_failure(&r, 50, 0), 1);
    assert_int_equal(r.span, 25);
    assert_int_equal(range_on_failure(&r, 25, 1), 1); /* over our size cap: an eighth */
    assert_int_equal(r.span, 3);
    for (int i = 0; i < 10; i++)
        range_on_failure(&r, r.span, 0);
    assert_int_equal(r.span, 1);
    assert_int_equal(range_on_failure(&r, 1, 1), 0); /* cannot go below min */
    for (int i = 0; i < 20; i++)
        range_on_success(&r, r.span, 0);
    assert_int_equal(r.span, 1000); /* capped at max */
    assert_true(range_error_shrinks(1, -32602, "query returned more than 10000 results"));
    assert_true(range_error_shrinks(1, -32000, "block range is too wide"));
    assert_false(range_error_shrinks(1, 3, "execution reverted"));
    assert_true(range_error_shrinks(0, 0, "every endpoint failed: operation timed out"));
    assert_true(range_error_shrinks(
        0, 0, "rpc eth_getLogs: 127.0.0.1:8545: response larger than 33554432 bytes"));
    assert_false(range_error_shrinks(0, 0, "connection refused"));
    assert_true(range_error_oversize(
        "rpc eth_getLogs: 127.0.0.1:8545: response larger than 33554432 bytes"));
    assert_false(range_error_oversize("rpc eth_getLogs: 127.0.0.1:8545: timeout"));
}

static void test_route_defaults(void **state)
{
    (void)state;
    route_table t;
    assert_int_equal(route_parse(ROUTE_DEFAULT_RULES, &t, NULL, 0), 0);
    cJSON *args = cJSON_Parse("{\"channel\":\"0\",\"grossAssets\":\"100000000000000000000001\"}");
    assert_int_equal(route_classify(&t, "RedemptionRequested", args), BUS_HIGH);
    cJSON_Delete(args);
    args = cJSON_Parse("{\"channel\":\"0\",\"grossAssets\":\"100000000000000000000000\"}");
    assert_int_equal(route_classify(&t, "RedemptionRequested", args), BUS_NORMAL); /* not over */
    cJSON_Delete(args);
    args = cJSON_Parse("{\"channel\":\"1\",\"grossAssets\":\"30000000000000000000001\"}");
    assert_int_equal(route_classify(&t, "RedemptionRequested", args), BUS_HIGH);
    cJSON_Delete(args);
    args = cJSON_Parse("{\"assets\":\"999999999999999999999999\"}");
    assert_int_equal(route_classify(&t, "Deposit", args), BUS_NORMAL);
    cJSON_Delete(args);
    args = cJSON_Parse("{\"assets\":\"1000000000000000000000000\"}");
    assert_int_equal(route_classify(&t, "Deposit", args), BUS_HIGH);
    cJSON_Delete(args);
    assert_int_equal(route_classify(&t, "Paused", NULL), BUS_CRITICAL);
    assert_int_equal(route_classify(&t, "RoleGranted", NULL), BUS_CRITICAL);
    assert_int_equal(route_classify(&t, "NavUpdated", NULL), BUS_NORMAL);
    args = cJSON_Parse("{\"channel\":\"0\",\"grossAssets\":\"-5\"}");
    assert_int_equal(route_classify(&t, "RedemptionRequested", args), BUS_NORMAL);
    cJSON_Delete(args);
    route_table_free(&t);
}

static void test_route_custom_and_bad(void **state)
{
    (void)state;
    route_table t;
    assert_int_equal(route_parse("Transfer?to==0x00000000000000000000000000000000000000AA=high;"
                                 " * ?flag==true = critical",
                                 &t, NULL, 0),
                     0);
    cJSON *a = cJSON_Parse("{\"to\":\"0x00000000000000000000000000000000000000aa\"}");
    assert_int_equal(route_classify(&t, "Transfer", a), BUS_HIGH);
    cJSON_Delete(a);
    a = cJSON_Parse("{\"flag\":true}");
    assert_int_equal(route_classify(&t, "Anything", a), BUS_CRITICAL);
    cJSON_Delete(a);
    route_table_free(&t);
    char err[256];
    const char *bad[] = {"Paused=urgent", "Paused",       "Paused?x>abc=high",  "=high",
                         "Pau sed=high",  "X?a==1&=high", "X?amount>1e999=high"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(route_parse(bad[i], &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "rule 1"));
}

static void test_evid(void **state)
{
    (void)state;
    char id[EVID_MAX], t[EVTYPE_MAX], n[67];
    assert_int_equal(evid_build(id, sizeof id, 56, H("a"), 7, NULL), 0);
    assert_string_equal(id, "56:" H("a") ":7");
    assert_int_equal(evid_build(id, sizeof id, 56, H("a"), 7, H("b")), 0);
    assert_string_equal(id, "56:" H("a") ":7:in:" H("b"));
    assert_int_equal(evid_removed(id, sizeof id, "56:x:7", H("c")), 0);
    assert_string_equal(id, "56:x:7:removed:" H("c"));
    assert_int_equal(evid_build(id, sizeof id, 0, H("a"), 7, NULL), -1);
    assert_int_equal(evid_build(id, sizeof id, 1, "0x12", 7, NULL), -1);
    assert_int_equal(evid_build(id, 10, 1, H("a"), 7, NULL), -1);
    /* The largest values, and a buffer one byte short of the id and its terminator. */
    assert_int_equal(evid_build(id, sizeof id, UINT64_MAX, H("a"), UINT64_MAX, NULL), 0);
    assert_string_equal(id, "18446744073709551615:" H("a") ":18446744073709551615");
    size_t need = strlen(id) + 1;
    assert_int_equal(evid_build(id, need - 1, UINT64_MAX, H("a"), UINT64_MAX, NULL), -1);
    assert_int_equal(evid_build(id, need, UINT64_MAX, H("a"), UINT64_MAX, NULL), 0);
    assert_int_equal(evid_build(id, sizeof id, 1, H("a"), 0, NULL), 0);
    assert_string_equal(id, "1:" H("a") ":0");
    assert_int_equal(evid_type(t, sizeof t, "RedemptionRequested", 0), 0);
    assert_string_equal(t, "chain.redemption_requested");
    assert_int_equal(evid_type(t, sizeof t, "NavUpdated", 1), 0);
    assert_string_equal(t, "chain.nav_updated.removed");
    assert_int_equal(evid_type(t, sizeof t, "ERC20Transfer", 0), 0);
    assert_string_equal(t, "chain.erc20_transfer");
    assert_int_equal(evid_type(t, sizeof t, "Bad-Name", 0), -1);
    assert_int_equal(
        evid_hash_norm("0x"
                       "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
                       n),
        0);
    assert_true(evid_hash_ok(n));
    assert_string_equal(n, "0xabcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    assert_int_equal(evid_hash_norm("0xzz", n), -1);
    /* One digit short, one too many, a non-hex digit at the end, no 0x. */
    assert_int_equal(
        evid_hash_norm("0xabcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678", n), -1);
    assert_int_equal(
        evid_hash_norm("0xabcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567890", n),
        -1);
    assert_int_equal(
        evid_hash_norm("0xabcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678g", n),
        -1);
    assert_int_equal(
        evid_hash_norm("00abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", n),
        -1);
    /* evid_hash_ok takes the normal form only: lowercase, exact length. */
    assert_false(
        evid_hash_ok("0xABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"));
    assert_false(evid_hash_ok("0xabcdef"));
    assert_false(
        evid_hash_ok("0xabcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567890"));
    assert_false(evid_hash_ok(NULL));
}

/* A fake node: canonical hashes by number; "" = no such block; error_at fails. */
typedef struct fake {
    const char *canon[16];
    int error_at;
} fake;

static int fake_hash(void *ud, int64_t number, char hash[67])
{
    fake *f = ud;
    if (number == f->error_at)
        return -1;
    if (number < 0 || number >= 16 || !f->canon[number] || !*f->canon[number])
        return 1;
    snprintf(hash, 67, "%s", f->canon[number]);
    return 0;
}

static void test_reorg_walk(void **state)
{
    (void)state;
    reorg_block st[] = {{10, H("a")}, {12, H("c")}, {11, H("b")}, {13, H("d")}};
    fake f = {.error_at = -9};
    f.canon[10] = H("a");
    f.canon[11] = H("b");
    f.canon[12] = H("e"); /* replaced from 12 up */
    f.canon[13] = "";     /* new branch shorter */
    int64_t anc = -7;
    assert_int_equal(reorg_find_ancestor(st, 4, 9, fake_hash, &f, &anc), REORG_FOUND);
    assert_int_equal(anc, 11);
    f.canon[10] = H("x");
    f.canon[11] = H("y");
    /* Window starts right after the floor: everything read was replaced. */
    assert_int_equal(reorg_find_ancestor(st, 4, 9, fake_hash, &f, &anc), REORG_FOUND);
    assert_int_equal(anc, 9);
    /* History below the window exists: deeper than the window. */
    assert_int_equal(reorg_find_ancestor(st, 4, 2, fake_hash, &f, &anc), REORG_TOO_DEEP);
    f.error_at = 13;
    assert_int_equal(reorg_find_ancestor(st, 4, 2, fake_hash, &f, &anc), REORG_ERROR);
    assert_true(reorg_links(NULL, H("a")));
    assert_true(reorg_links(H("a"), H("a")));
    assert_false(reorg_links(H("a"), H("b")));
}

typedef struct kv {
    const char *k[8], *v[8];
} kv;

static const char *kv_get(void *ud, const char *name)
{
    kv *m = ud;
    for (int i = 0; i < 8 && m->k[i]; i++)
        if (strcmp(m->k[i], name) == 0)
            return m->v[i];
    return NULL;
}

static void test_api_query(void **state)
{
    (void)state;
    api_events_query q;
    const char *bad = NULL;
    kv good = {.k = {"from_block", "to_block", "event", "cursor", "limit", "removed"},
               .v = {"5", "9", "Deposit",
                     "7.2.0xABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789", "10",
                     "false"}};
    assert_int_equal(api_events_query_parse(kv_get, &good, &q, &bad, NULL, 0), 0);
    assert_int_equal(q.from_block, 5);
    assert_int_equal(q.to_block, 9);
    assert_string_equal(q.event, "Deposit");
    assert_int_equal(q.limit, 10);
    assert_int_equal(q.removed, 0);
    assert_true(q.has_cursor);
    assert_int_equal(q.cur_block, 7);
    assert_int_equal(q.cur_log, 2);
    assert_string_equal(q.cur_hash,
                        "0xabcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    struct {
        const char *k, *v;
    } cases[] = {{"limit", "0"},       {"limit", "1001"},      {"from_block", "-1"},
                 {"to_block", "x"},    {"tx_hash", "0x12"},    {"event", "a'b"},
                 {"cursor", "1.2"},    {"removed", "maybe"},   {"chain_id", "0"},
                 {"cursor", "1.2.33"}, {"cursor", "1.2.0xabc"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kv m = {.k = {cases[i].k}, .v = {cases[i].v}};
        assert_int_equal(api_events_query_parse(kv_get, &m, &q, &bad, NULL, 0), -1);
        assert_string_equal(bad, cases[i].k);
    }
    kv inverted = {.k = {"from_block", "to_block"}, .v = {"9", "5"}};
    assert_int_equal(api_events_query_parse(kv_get, &inverted, &q, &bad, NULL, 0), -1);
}

static void test_conf_contract_item(void **state)
{
    (void)state;
    char addr[43], path[256];
    assert_int_equal(conf_contract_item("0x9FE46736679D2D9A65F0992F2272DE9F3C7FA6E0=PaimonVault",
                                        "schemas/abi", addr, path, sizeof path, NULL, 0),
                     0);
    assert_string_equal(addr, "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0");
    assert_string_equal(path, "schemas/abi/PaimonVault.json");
    assert_int_equal(conf_contract_item("0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0=/x/a.json", "d",
                                        addr, path, sizeof path, NULL, 0),
                     0);
    assert_string_equal(path, "/x/a.json");
    assert_int_equal(conf_contract_item("0x12=PaimonVault", "d", addr, path, sizeof path, NULL, 0),
                     -1);
    assert_int_equal(conf_contract_item("0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0=../etc", "d",
                                        addr, path, sizeof path, NULL, 0),
                     -1);
    assert_int_equal(conf_contract_item("0x9fE46736679d2d9a65f0992f2272de9f3c7fa6e0=X", "d", addr,
                                        path, sizeof path, NULL, 0),
                     -1); /* bad checksum */
}

/* msg_event_json writes the document envelope_to_json would: it parses and passes the
 * envelope schema, carries every payload field, escapes awkward strings, embeds args
 * as JSON, and a compensation gets the removed id, type and original_id. */
static void test_msg_event_json(void **state)
{
    (void)state;
    store_row w;
    memset(&w, 0, sizeof w);
    snprintf(w.tx_hash, sizeof w.tx_hash, "0x%064x", 0xabc);
    snprintf(w.block_hash, sizeof w.block_hash, "0x%064x", 0x123);
    assert_int_equal(evid_build(w.id, sizeof w.id, 56, w.tx_hash, 7, NULL), 0);
    w.block_number = 1000;
    w.block_time = 1700000000;
    w.tx_index = 3;
    w.log_index = 7;
    snprintf(w.address, sizeof w.address, "0x%040x", 0xaa);
    snprintf(w.event, sizeof w.event, "RedemptionRequested");
    char sig[] = "Odd(\"q\"\\\t)";
    char args[] = "{\"amount\":\"123456789012345678901234567890\",\"who\":\"0xab\"}";
    w.signature = sig;
    w.args = args;
    w.prio = BUS_HIGH;
    msg_trace tr;
    msg_trace_init(&tr);
    char t1[33], t2[33], ts[32];
    msg_trace_next(&tr, t1);
    msg_trace_next(&tr, t2);
    assert_int_equal(strlen(t1), 32);
    assert_int_equal(strspn(t1, "0123456789abcdef"), 32);
    assert_string_not_equal(t1, t2);
    envelope_format_ts(1700000001234, ts);
    char *js = msg_event_json(56, &w, 0, ts, t1);
    assert_non_null(js);
    envelope *e = NULL;
    char err[256];
    assert_int_equal(envelope_parse(js, strlen(js), &e, err, sizeof err), 0);
    assert_string_equal(e->id, w.id);
    assert_string_equal(e->type, "chain.redemption_requested");
    assert_string_equal(e->source, "listener");
    assert_string_equal(e->trace_id, t1);
    assert_string_equal(e->priority, "high");
    assert_string_equal(e->ts, ts);
    assert_int_equal(e->attempt, 0);
    const cJSON *p = e->payload;
    assert_int_equal(cJSON_GetObjectItem(p, "chain_id")->valueint, 56);
    assert_string_equal(cJSON_GetObjectItem(p, "signature")->valuestring, sig);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "args"), "amount")->valuestring,
                        "123456789012345678901234567890");
    assert_int_equal(cJSON_GetObjectItem(p, "block_number")->valueint, 1000);
    assert_string_equal(cJSON_GetObjectItem(p, "block_time")->valuestring,
                        "2023-11-14T22:13:20.000Z");
    assert_int_equal(cJSON_GetObjectItem(p, "log_index")->valueint, 7);
    assert_int_equal(cJSON_GetObjectItem(p, "tx_index")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItem(p, "tx_hash")->valuestring, w.tx_hash);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(p, "removed")));
    assert_null(cJSON_GetObjectItem(p, "original_id"));
    envelope_free(e);
    free(js);

    js = msg_event_json(56, &w, 1, ts, t2);
    assert_non_null(js);
    assert_int_equal(envelope_parse(js, strlen(js), &e, err, sizeof err), 0);
    char rid[EVID_MAX];
    assert_int_equal(evid_removed(rid, sizeof rid, w.id, w.block_hash), 0);
    assert_string_equal(e->id, rid);
    assert_string_equal(e->type, "chain.redemption_requested.removed");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(e->payload, "removed")));
    assert_string_equal(cJSON_GetObjectItem(e->payload, "original_id")->valuestring, w.id);
    envelope_free(e);
    free(js);

    snprintf(w.event, sizeof w.event, "bad name");
    assert_null(msg_event_json(56, &w, 0, ts, t1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_adapts),         cmocka_unit_test(test_route_defaults),
        cmocka_unit_test(test_route_custom_and_bad), cmocka_unit_test(test_evid),
        cmocka_unit_test(test_reorg_walk),           cmocka_unit_test(test_api_query),
        cmocka_unit_test(test_conf_contract_item),   cmocka_unit_test(test_msg_event_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
