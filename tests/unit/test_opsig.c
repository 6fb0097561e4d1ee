/* opsig: the canonical JSON against node's JSON.stringify of a key-sorted value (an
 * independent reference), the refusals, paramsHash, the Operation typed data's type hash,
 * and opsig_verify on signatures made by `cast wallet sign --data` (independent of our
 * EIP-712 code): good, wrong signer, expired, too far ahead, malformed, tampered body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "eip712.h"
#include "harness.h"
#include "hex.h"
#include "keccak.h"
#include "opsig.h"
#include "util.h"

/* anvil's well-known dev accounts 0 and 1 */
static const char KEY0[] = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
static const char ADDR0[] = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
static const char ADDR1[] = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
static const char VAULT[] = "0x5fbdb2315678afecb367f032d93f642f64180aa3";

static char *write_tmp(const char *text)
{
    char *path = util_strdup("/tmp/test_opsig_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* node's canonical form of the JSON text in a file (owned). */
static char *node_canonical(const char *json)
{
    char *path = write_tmp(json);
    char *out = th_sh("node -e 'const c = v => Array.isArray(v) ? v.map(c) : v && typeof v === "
                      "\"object\" ? Object.fromEntries(Object.keys(v).sort().map(k => [k, "
                      "c(v[k])])) : v; process.stdout.write(JSON.stringify(c(JSON.parse("
                      "require(\"fs\").readFileSync(process.argv[1], \"utf8\")))) + \"\\n\")' %s",
                      path);
    unlink(path);
    free(path);
    return out;
}

static char *ours(const char *json)
{
    cJSON *v = cJSON_Parse(json);
    assert_non_null(v);
    char err[UTIL_ERRLEN];
    char *s = opsig_canonical_json(v, err, sizeof err);
    if (!s)
        fprintf(stderr, "canonical(%s): %s\n", json, err);
    cJSON_Delete(v);
    return s;
}

static void test_canonical_matches_node(void **state)
{
    (void)state;
    static const char *const IN[] = {
        "{}",
        "[]",
        "{\"b\":1,\"a\":[3,{\"z\":null,\"y\":true,\"x\":false}],\"c\":\"s\"}",
        "{ \"reason\" : \"routes test\", \"slippage_bps\": 77, \"enabled\" : false }",
        /* UTF-16 order: U+FF21 (one unit 0xFF21) sorts after U+1F600 (0xD83D 0xDE00),
         * code point order would say the reverse */
        "{\"\xef\xbc\xa1\":1,\"\xf0\x9f\x98\x80\":2,\"\xee\x80\x80\":3,\"a\":4,\"A\":5,\"\":6}",
        "{\"s\":\"quote \\\" back \\\\ slash / nl \\n tab \\t cr \\r bs \\b ff \\f "
        "us \\u0001 us \\u001f del \\u007f e \\u00e9 \\u2028 \\ud83d\\ude00\"}",
        "[0,-0,1,-1,9007199254740991,-9007199254740993,123456789012345678,1e20,0.1,-2.5,"
        "1.0000000000000002,0.000001,0.0000123,3.14159,100.25,123e18,"
        "0.1e-5,4.35,0.3,999999999999999900000]",
        "{\"nested\":{\"b\":{\"d\":[1,[2,[3]]],\"c\":{}},\"a\":\"\"}}",
    };
    for (size_t i = 0; i < sizeof IN / sizeof IN[0]; i++) {
        char *a = ours(IN[i]);
        char *b = node_canonical(IN[i]);
        assert_non_null(a);
        if (strcmp(a, b) != 0)
            fprintf(stderr, "input %zu:\n ours %s\n node %s\n", i, a, b);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
}

static void test_canonical_refusals(void **state)
{
    (void)state;
    static const char *const BAD[] = {
        "{\"a\":1,\"a\":2}", /* duplicate key */
        "[1e21]",            /* JSON.stringify would use an exponent */
        "[1e-7]",
        "[5e-324]",
        "[-1.7976931348623157e308]",
        "{\"s\":\"\xff\xfe\"}",
        "{\"\xc0\xaf\":1}", /* overlong '/' as a key */
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        char *s = ours(BAD[i]);
        if (s)
            fprintf(stderr, "accepted %s as %s\n", BAD[i], s);
        assert_null(s);
    }
    /* nesting deeper than OPSIG_MAX_DEPTH */
    char deep[200] = "";
    for (int i = 0; i < OPSIG_MAX_DEPTH + 2; i++)
        strcat(deep, "[");
    for (int i = 0; i < OPSIG_MAX_DEPTH + 2; i++)
        strcat(deep, "]");
    assert_null(ours(deep));
}

static void test_params_hash(void **state)
{
    (void)state;
    const char *body = "{\"slippage_bps\":77,\"nonce\":\"5\",\"enabled\":true,\"deadline\":\"9\","
                       "\"signature\":\"0xab\"}";
    cJSON *b = cJSON_Parse(body);
    uint8_t h[32], want[32], h2[32];
    assert_int_equal(opsig_params_hash(b, h, NULL, 0), 0);
    char *n = node_canonical("{\"slippage_bps\":77,\"enabled\":true}");
    assert_string_equal(n, "{\"enabled\":true,\"slippage_bps\":77}");
    keccak_256(n, strlen(n), want);
    free(n);
    assert_memory_equal(h, want, 32);
    /* no body hashes as {} */
    assert_int_equal(opsig_params_hash(NULL, h2, NULL, 0), 0);
    keccak_256_str("{}", want);
    assert_memory_equal(h2, want, 32);
    /* a body that is not an object is refused */
    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(opsig_params_hash(arr, h2, NULL, 0), -1);
    cJSON_Delete(arr);
    cJSON_Delete(b);
}

static void test_type_hash(void **state)
{
    (void)state;
    uint8_t vault[20], ph[32] = {0}, th[32], want[32];
    hex_addr_parse(VAULT, vault, NULL, 0);
    money_u256 nonce, dl;
    money_from_dec(&nonce, "1", NULL, 0);
    money_from_dec(&dl, "2", NULL, 0);
    cJSON *t = opsig_typed_new(31337, vault, "gateway.pause", "", ph, &nonce, &dl, NULL, 0);
    assert_non_null(t);
    assert_int_equal(eip712_type_hash(cJSON_GetObjectItem(t, "types"), "Operation", th, NULL, 0),
                     0);
    keccak_256_str("Operation(string action,string target,bytes32 paramsHash,uint256 nonce,"
                   "uint256 deadline)",
                   want);
    assert_memory_equal(th, want, 32);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "domain"), "name")),
        "PaimonPrimeFund");
    cJSON_Delete(t);
    /* empty action, chain id 0 and invalid UTF-8 targets are refused */
    assert_null(opsig_typed_new(31337, vault, "", "", ph, &nonce, &dl, NULL, 0));
    assert_null(opsig_typed_new(0, vault, "a", "", ph, &nonce, &dl, NULL, 0));
    assert_null(opsig_typed_new(1, vault, "a", "\xff", ph, &nonce, &dl, NULL, 0));
}

/* cast wallet sign --data over the Operation typed data for body; sig receives
 * "0x" + 130 hex. */
static void cast_sign(const char *action, const char *target, const char *body_json,
                      const char *nonce, const char *deadline, char sig[140])
{
    cJSON *b = cJSON_Parse(body_json);
    uint8_t ph[32], vault[20];
    assert_int_equal(opsig_params_hash(b, ph, NULL, 0), 0);
    cJSON_Delete(b);
    hex_addr_parse(VAULT, vault, NULL, 0);
    money_u256 n, d;
    money_from_dec(&n, nonce, NULL, 0);
    money_from_dec(&d, deadline, NULL, 0);
    cJSON *t = opsig_typed_new(31337, vault, action, target, ph, &n, &d, NULL, 0);
    char *txt = cJSON_PrintUnformatted(t);
    cJSON_Delete(t);
    char *path = write_tmp(txt);
    free(txt);
    char *out =
        th_sh("%s wallet sign --private-key %s --data --from-file %s", th_cast_path(), KEY0, path);
    unlink(path);
    free(path);
    assert_int_equal(strlen(out), 132);
    util_strlcpy(sig, out, 140);
    free(out);
}

static int verify(const char *action, const char *target, const char *body_json, const char *wallet,
                  int64_t now_ms, char *msg)
{
    cJSON *b = cJSON_Parse(body_json);
    assert_non_null(b);
    opsig_req r = {.action = action,
                   .target = target,
                   .body = b,
                   .wallet = wallet,
                   .chain_id = 31337,
                   .vault = VAULT,
                   .now_ms = now_ms};
    opsig_op op;
    int st = opsig_verify(&r, &op, msg, 200);
    if (st == 0) {
        assert_string_equal(op.wallet_hex, ADDR0);
        assert_string_equal(op.action, action);
    }
    cJSON_Delete(b);
    return st;
}

static void test_verify_cast_signatures(void **state)
{
    (void)state;
    int64_t now = 1700000000000LL;
    const char *dl = "1700000600"; /* now + 10 min */
    char sig[140], body[600], msg[200];
    cast_sign("rebalance.asset.update", "0xabc", "{\"slippage_bps\":77,\"enabled\":false}", "42",
              dl, sig);
    snprintf(body, sizeof body,
             "{\"enabled\":false,\"slippage_bps\":77,\"nonce\":\"42\",\"deadline\":\"%s\","
             "\"signature\":\"%s\"}",
             dl, sig);
    assert_int_equal(verify("rebalance.asset.update", "0xabc", body, ADDR0, now, msg), 0);
    /* the wallet header may be checksummed */
    assert_int_equal(verify("rebalance.asset.update", "0xabc", body,
                            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", now, msg),
                     0);
    /* another linked wallet, another action or target: 401 */
    assert_int_equal(verify("rebalance.asset.update", "0xabc", body, ADDR1, now, msg), 401);
    assert_int_equal(verify("rebalance.trigger", "0xabc", body, ADDR0, now, msg), 401);
    assert_int_equal(verify("rebalance.asset.update", "0xabd", body, ADDR0, now, msg), 401);
    /* no linked wallet: 401 */
    assert_int_equal(verify("rebalance.asset.update", "0xabc", body, "", now, msg), 401);
    /* expired; too far ahead */
    assert_int_equal(verify("rebalance.asset.update", "0xabc", body, ADDR0, 1700000600000LL, msg),
                     401);
    assert_int_equal(
        verify("rebalance.asset.update", "0xabc", body, ADDR0, now - 3600 * 1000LL, msg), 400);
    /* a changed parameter: 401 */
    snprintf(body, sizeof body,
             "{\"enabled\":false,\"slippage_bps\":78,\"nonce\":\"42\",\"deadline\":\"%s\","
             "\"signature\":\"%s\"}",
             dl, sig);
    assert_int_equal(verify("rebalance.asset.update", "0xabc", body, ADDR0, now, msg), 401);
    /* another nonce: 401 */
    snprintf(body, sizeof body,
             "{\"enabled\":false,\"slippage_bps\":77,\"nonce\":\"43\",\"deadline\":\"%s\","
             "\"signature\":\"%s\"}",
             dl, sig);
    assert_int_equal(verify("rebalance.asset.update", "0xabc", body, ADDR0, now, msg), 401);
    /* malformed: 400 */
    static const char *const BAD[] = {
        "{\"enabled\":false}",
        "{\"nonce\":42,\"deadline\":\"1700000600\",\"signature\":\"0x00\"}",
        "{\"nonce\":\"x\",\"deadline\":\"1700000600\",\"signature\":\"0x00\"}",
        "{\"nonce\":\"1\",\"deadline\":\"-1\",\"signature\":\"0x00\"}",
        "{\"nonce\":\"1\",\"deadline\":\"1700000600\",\"signature\":\"0x00\"}",
        "{\"nonce\":\"1\",\"deadline\":\"1700000600\",\"signature\":\"0x00\",\"x\":1e-9}",
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        assert_int_equal(verify("rebalance.asset.update", "", BAD[i], ADDR0, now, msg), 400);
    /* a role list with no chain access answers 503, never a pass */
    cJSON *b = cJSON_Parse("{\"enabled\":false,\"slippage_bps\":77,\"nonce\":\"42\"}");
    cJSON_AddStringToObject(b, "deadline", dl);
    cJSON_AddStringToObject(b, "signature", sig);
    static const char *const roles[] = {"ADMIN_ROLE", NULL};
    opsig_req r = {.action = "rebalance.asset.update",
                   .target = "0xabc",
                   .body = b,
                   .wallet = ADDR0,
                   .chain_id = 31337,
                   .vault = VAULT,
                   .now_ms = now,
                   .roles = roles};
    opsig_op op;
    assert_int_equal(opsig_verify(&r, &op, msg, sizeof msg), 503);
    cJSON_Delete(b);
    assert_string_equal(opsig_code(401), "invalid_signature");
    assert_string_equal(opsig_code(403), "forbidden");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_matches_node),
        cmocka_unit_test(test_canonical_refusals),
        cmocka_unit_test(test_params_hash),
        cmocka_unit_test(test_type_hash),
        cmocka_unit_test(test_verify_cast_signatures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
