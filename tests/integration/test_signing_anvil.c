/* Integration test: transactions signed by libcommon/ethtx are accepted by a
 * real node (the harness's anvil devchain). Legacy EIP-155, EIP-1559 value
 * transfers and an EIP-1559 contract creation are published with
 * `cast publish`, mined, and checked through `cast receipt` / `cast tx` /
 * `cast balance` / `cast call`: status, from, to, value, nonce, tx hash and the
 * created contract's address. A transaction signed for another chain id must
 * be refused by the node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "ethtx.h"
#include "harness.h"
#include "hex.h"
#include "keccak.h"
#include "money.h"
#include "rlp.h"
#include "secp.h"
#include "util.h"

static struct {
    char cast[1024];
    char rpc[128];
    uint64_t chain_id;
    uint8_t key[32];
    uint8_t addr[20];
    char addr_s[HEX_ADDR_STRLEN];
} g;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = util_malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    fclose(f);
    s[got] = '\0';
    return s;
}

static int group_setup(void **state)
{
    (void)state;
    glob_t gl;
    if (glob(th_repo_path("deploy/node_modules/@foundry-rs/cast-*/bin/cast"), 0, NULL, &gl) == 0 &&
        gl.gl_pathc > 0)
        util_strlcpy(g.cast, gl.gl_pathv[0], sizeof g.cast);
    else
        util_strlcpy(g.cast, th_repo_path("deploy/node_modules/.bin/cast"), sizeof g.cast);
    globfree(&gl);

    char path[1200];
    const char *explicit = getenv("PAIMON_DEVCHAIN_JSON");
    const char *run_dir = getenv("PAIMON_TEST_RUN_DIR");
    if (explicit && *explicit)
        util_strlcpy(path, explicit, sizeof path);
    else if (run_dir && *run_dir)
        snprintf(path, sizeof path, "%s/devchain.json", run_dir);
    else {
        fprintf(stderr, "test_signing_anvil: no devchain (run through tests/run.sh)\n");
        return -1;
    }
    char *txt = slurp(path);
    cJSON *cfg = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    if (!cfg) {
        fprintf(stderr, "test_signing_anvil: cannot read %s\n", path);
        return -1;
    }
    int rc = -1;
    const char *rpc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "rpcUrl"));
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(cfg, "chainId");
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(cfg, "accounts");
    const cJSON *spare = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(acc, "spare"), 0);
    const char *pk = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spare, "privateKey"));
    /* rpc goes into shell commands: only a loopback URL with a numeric port */
    if (!rpc || strncmp(rpc, "http://127.0.0.1:", 17) != 0 || strlen(rpc) >= sizeof g.rpc ||
        strspn(rpc + 17, "0123456789") != strlen(rpc + 17) || !cJSON_IsNumber(cid) ||
        cid->valuedouble < 1 || !pk || hex_decode_fixed(pk, g.key, 32, NULL, 0) != 0) {
        fprintf(stderr, "test_signing_anvil: devchain.json lacks rpcUrl/chainId/spare key\n");
        goto out;
    }
    util_strlcpy(g.rpc, rpc, sizeof g.rpc);
    g.chain_id = (uint64_t)cid->valuedouble;
    if (secp_pubkey_address(g.key, g.addr, NULL, 0) != 0)
        goto out;
    hex_addr_checksum(g.addr, g.addr_s);
    rc = 0;
out:
    cJSON_Delete(cfg);
    return rc;
}

static uint64_t rpc_u64(const char *what)
{
    char *o = th_sh("'%s' %s -r %s", g.cast, what, g.rpc);
    char *end;
    unsigned long long v = strtoull(o, &end, 10);
    if (*end || end == o)
        fail_msg("not a number from cast %s: %s", what, o);
    free(o);
    return v;
}

static uint64_t next_nonce(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "nonce %s", g.addr_s);
    return rpc_u64(cmd);
}

/* Publishes raw hex, checks the node's tx hash equals ours, returns the receipt (owned). */
static cJSON *publish(const char *raw_hex, const char *hash_hex)
{
    char *h = th_sh("'%s' publish --async %s -r %s", g.cast, raw_hex, g.rpc);
    assert_string_equal(h, hash_hex);
    free(h);
    char *r = th_sh("'%s' receipt %s --json -r %s", g.cast, hash_hex, g.rpc);
    cJSON *j = cJSON_Parse(r);
    free(r);
    assert_non_null(j);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "status")), "0x1");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "transactionHash")), hash_hex);
    uint8_t from[20];
    assert_int_equal(
        hex_addr_parse(cJSON_GetStringValue(cJSON_GetObjectItem(j, "from")), from, NULL, 0), 0);
    assert_memory_equal(from, g.addr, 20);
    return j;
}

static void check_tx_fields(const char *hash_hex, const ethtx *tx)
{
    char *t = th_sh("'%s' tx %s --json -r %s", g.cast, hash_hex, g.rpc);
    cJSON *j = cJSON_Parse(t);
    free(t);
    assert_non_null(j);
    money_u256 v, want;
    char buf[MONEY_HEX_MAX];
    assert_int_equal(
        money_from_hex(&v, cJSON_GetStringValue(cJSON_GetObjectItem(j, "value")), NULL, 0), 0);
    assert_int_equal(money_cmp(&v, &tx->value), 0);
    assert_int_equal(
        money_from_hex(&v, cJSON_GetStringValue(cJSON_GetObjectItem(j, "nonce")), NULL, 0), 0);
    money_from_u64(&want, tx->nonce);
    assert_int_equal(money_cmp(&v, &want), 0);
    money_from_u64(&want, (uint64_t)tx->type);
    money_to_hex(&want, buf, sizeof buf);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "type")), buf);
    money_from_u64(&want, tx->chain_id);
    money_to_hex(&want, buf, sizeof buf);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "chainId")), buf);
    cJSON_Delete(j);
}

static void transfer(ethtx_type type)
{
    ethtx tx;
    ethtx_init(&tx);
    tx.type = type;
    tx.chain_id = g.chain_id;
    tx.nonce = next_nonce();
    tx.gas_limit = 21000;
    uint64_t gp = rpc_u64("gas-price");
    if (type == ETHTX_LEGACY) {
        money_from_u64(&tx.gas_price, gp * 2);
    } else {
        money_from_u64(&tx.max_priority_fee, 1000000000);
        money_from_u64(&tx.max_fee, gp * 2 + 1000000000);
    }
    tx.has_to = 1;
    assert_int_equal(util_random(tx.to, 20), 0);
    money_from_u64(&tx.value, 1000000 + util_random_below(1000000000));

    char *raw_hex, hash_hex[HEX_B32_STRLEN];
    assert_int_equal(ethtx_sign_hex(&tx, g.key, &raw_hex, hash_hex, NULL, 0), 0);
    /* our own decoder agrees before the node sees it */
    uint8_t *raw, from[20];
    ethtx d;
    assert_int_equal(ethtx_decode_hex(raw_hex, &raw, &d, from, NULL, NULL, 0), 0);
    assert_memory_equal(from, g.addr, 20);
    free(raw);

    cJSON *rcpt = publish(raw_hex, hash_hex);
    uint8_t to[20];
    assert_int_equal(
        hex_addr_parse(cJSON_GetStringValue(cJSON_GetObjectItem(rcpt, "to")), to, NULL, 0), 0);
    assert_memory_equal(to, tx.to, 20);
    cJSON_Delete(rcpt);
    check_tx_fields(hash_hex, &tx);

    char to_s[HEX_ADDR_STRLEN], vs[MONEY_DEC_MAX];
    hex_addr_checksum(tx.to, to_s);
    money_to_dec(&tx.value, vs, sizeof vs);
    char *bal = th_sh("'%s' balance %s -r %s", g.cast, to_s, g.rpc);
    assert_string_equal(bal, vs);
    free(bal);
    assert_int_equal(next_nonce(), tx.nonce + 1);
    free(raw_hex);
}

static void test_legacy_transfer(void **state)
{
    (void)state;
    transfer(ETHTX_LEGACY);
}

static void test_eip1559_transfer(void **state)
{
    (void)state;
    transfer(ETHTX_EIP1559);
}

static void test_eip1559_create(void **state)
{
    (void)state;
    /* init code returning the 10-byte runtime `PUSH1 42 PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN` */
    static const uint8_t init[] = {0x69, 0x60, 0x2a, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00,
                                   0xf3, 0x60, 0x00, 0x52, 0x60, 0x0a, 0x60, 0x16, 0xf3};
    ethtx tx;
    ethtx_init(&tx);
    tx.type = ETHTX_EIP1559;
    tx.chain_id = g.chain_id;
    tx.nonce = next_nonce();
    tx.gas_limit = 200000;
    money_from_u64(&tx.max_priority_fee, 1000000000);
    money_from_u64(&tx.max_fee, rpc_u64("gas-price") * 2 + 1000000000);
    tx.data = init;
    tx.data_len = sizeof init;

    char *raw_hex, hash_hex[HEX_B32_STRLEN];
    assert_int_equal(ethtx_sign_hex(&tx, g.key, &raw_hex, hash_hex, NULL, 0), 0);
    cJSON *rcpt = publish(raw_hex, hash_hex);
    /* CREATE address = keccak256(rlp([sender, nonce]))[12:] */
    rlp_buf b;
    rlp_buf_init(&b);
    size_t m = rlp_list_begin(&b);
    rlp_put_bytes(&b, g.addr, 20);
    rlp_put_u64(&b, tx.nonce);
    rlp_list_end(&b, m);
    uint8_t h[32], got[20];
    keccak_256(b.data, b.len, h);
    rlp_buf_free(&b);
    assert_int_equal(
        hex_addr_parse(cJSON_GetStringValue(cJSON_GetObjectItem(rcpt, "contractAddress")), got,
                       NULL, 0),
        0);
    assert_memory_equal(got, h + 12, 20);
    cJSON_Delete(rcpt);
    check_tx_fields(hash_hex, &tx);

    char ca[HEX_ADDR_STRLEN];
    hex_addr_checksum(got, ca);
    char *ret = th_sh("'%s' call %s -r %s", g.cast, ca, g.rpc);
    assert_string_equal(ret, "0x000000000000000000000000000000000000000000000000000000000000002a");
    free(ret);
    free(raw_hex);
}

static void test_wrong_chain_refused(void **state)
{
    (void)state;
    ethtx tx;
    ethtx_init(&tx);
    /* EIP-1559 carries the chain id in the signed payload itself, which anvil checks
     * on submission (it pools a legacy tx for another chain and never mines it). */
    tx.type = ETHTX_EIP1559;
    tx.chain_id = g.chain_id + 1;
    tx.nonce = next_nonce();
    tx.gas_limit = 21000;
    money_from_u64(&tx.max_priority_fee, 1);
    money_from_u64(&tx.max_fee, rpc_u64("gas-price") * 2);
    tx.has_to = 1;
    memset(tx.to, 0x42, 20);
    money_from_u64(&tx.value, 1);
    char *raw_hex, hash_hex[HEX_B32_STRLEN];
    assert_int_equal(ethtx_sign_hex(&tx, g.key, &raw_hex, hash_hex, NULL, 0), 0);
    int rc;
    char *o = th_sh_rc(&rc, "'%s' publish --async %s -r %s 2>&1", g.cast, raw_hex, g.rpc);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(o, "chain"));
    free(o);
    assert_int_equal(next_nonce(), tx.nonce); /* nothing was mined */
    free(raw_hex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy_transfer),
        cmocka_unit_test(test_eip1559_transfer),
        cmocka_unit_test(test_eip1559_create),
        cmocka_unit_test(test_wrong_chain_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
