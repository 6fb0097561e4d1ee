/* Unit tests for libcommon/eip712: the "Mail" example from EIP-712 (encodeType,
 * type hash, domain separator, struct hash, digest and signature), EIP-191
 * personal messages, and typed data with arrays, nested structs and every
 * atomic type signed identically by `cast wallet sign` (an independent
 * implementation, run at test time; RFC 6979 makes signatures comparable).
 * Untrusted JSON: a table of invalid inputs must each be rejected, and
 * truncated / mutated JSON must never crash. */
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

#include "eip712.h"
#include "harness.h"
#include "hex.h"
#include "keccak.h"
#include "secp.h"
#include "util.h"

static const char MAIL[] =
    "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"version\","
    "\"type\":\"string\"},{\"name\":\"chainId\",\"type\":\"uint256\"},{\"name\":"
    "\"verifyingContract\",\"type\":\"address\"}],\"Person\":[{\"name\":\"name\",\"type\":"
    "\"string\"},{\"name\":\"wallet\",\"type\":\"address\"}],\"Mail\":[{\"name\":\"from\","
    "\"type\":\"Person\"},{\"name\":\"to\",\"type\":\"Person\"},{\"name\":\"contents\",\"type\":"
    "\"string\"}]},\"primaryType\":\"Mail\",\"domain\":{\"name\":\"Ether Mail\",\"version\":\"1\","
    "\"chainId\":1,\"verifyingContract\":\"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC\"},"
    "\"message\":{\"from\":{\"name\":\"Cow\",\"wallet\":"
    "\"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826\"},\"to\":{\"name\":\"Bob\",\"wallet\":"
    "\"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB\"},\"contents\":\"Hello, Bob!\"}}";

/* Exercises every atomic kind, fixed and dynamic arrays, arrays of arrays,
 * arrays of structs and a struct referenced only through an array. */
static const char COMPLEX[] =
    "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"chainId\","
    "\"type\":\"uint256\"},{\"name\":\"salt\",\"type\":\"bytes32\"}],"
    "\"Item\":[{\"name\":\"id\",\"type\":\"uint8\"},{\"name\":\"delta\",\"type\":\"int64\"},"
    "{\"name\":\"tags\",\"type\":\"string[]\"},{\"name\":\"blob\",\"type\":\"bytes\"},"
    "{\"name\":\"flag\",\"type\":\"bool\"},{\"name\":\"code\",\"type\":\"bytes4\"}],"
    "\"Leaf\":[{\"name\":\"x\",\"type\":\"uint256\"}],"
    "\"Group\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"items\",\"type\":\"Item[]\"},"
    "{\"name\":\"matrix\",\"type\":\"int16[2][]\"},{\"name\":\"owners\",\"type\":\"address[3]\"},"
    "{\"name\":\"leaves\",\"type\":\"Leaf[]\"}],"
    "\"Order\":[{\"name\":\"group\",\"type\":\"Group\"},{\"name\":\"note\",\"type\":\"string\"},"
    "{\"name\":\"amount\",\"type\":\"int256\"},{\"name\":\"big\",\"type\":\"uint256\"}]},"
    "\"primaryType\":\"Order\",\"domain\":{\"name\":\"Complex \\u00e9\\u2713\",\"chainId\":"
    "31337,\"salt\":\"0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"},"
    "\"message\":{\"group\":{\"name\":\"g\",\"items\":[{\"id\":255,\"delta\":\"-"
    "9223372036854775808\","
    "\"tags\":[\"a\",\"\",\"long tag long tag long tag long tag long tag\"],\"blob\":\"0x\","
    "\"flag\":true,\"code\":\"0xdeadbeef\"},{\"id\":\"0x7f\",\"delta\":\"9223372036854775807\","
    "\"tags\":[],\"blob\":\"0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff"
    "00ff\",\"flag\":false,\"code\":\"0x00000000\"}],\"matrix\":[[1,-1],[-32768,32767]],"
    "\"owners\":[\"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\","
    "\"0x70997970C51812dc3A010C7d01b50e0d17dc79C8\","
    "\"0x0000000000000000000000000000000000000000\"],\"leaves\":[{\"x\":\"0\"},{\"x\":"
    "\"115792089237316195423570985008687907853269984665640564039457584007913129639935\"}]},"
    "\"note\":\"\",\"amount\":\"-57896044618658097711785492504343953926634992332820282019728792003"
    "956564819968\",\"big\":\"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"}"
    "}";

/* Runs argv (no shell, so messages need no quoting); returns trimmed stdout
 * (owned) or NULL when the command fails. */
static char *run(char *const argv[])
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t cap = 1 << 16, n = 0;
    char *out = util_malloc(cap);
    ssize_t r;
    while ((r = read(fd[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static void key_hex(const uint8_t k[32], char out[HEX_B32_STRLEN])
{
    hex_encode(k, 32, 1, out, HEX_B32_STRLEN);
}

/* `cast wallet sign --data` over JSON text -> 65-byte signature. */
static int cast_sign_typed(const char *json, const uint8_t k[32], uint8_t sig[65])
{
    char path[] = "/tmp/test_eip712_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    char ks[HEX_B32_STRLEN];
    key_hex(k, ks);
    char *argv[] = {(char *)th_cast_path(), "wallet", "sign", "--private-key", ks, "--data",
                    "--from-file",          path,     NULL};
    char *out = run(argv);
    unlink(path);
    if (!out)
        return -1;
    int rc = secp_sig_parse_hex(out, sig, NULL, 0);
    free(out);
    return rc;
}

static void hex32_eq(const uint8_t h[32], const char *want)
{
    char s[HEX_B32_STRLEN];
    hex_encode(h, 32, 1, s, sizeof s);
    assert_string_equal(s, want);
}

static void test_mail_example(void **state)
{
    (void)state;
    cJSON *j = cJSON_Parse(MAIL);
    assert_non_null(j);
    const cJSON *types = cJSON_GetObjectItem(j, "types");
    char *et = eip712_encode_type(types, "Mail", NULL, 0);
    assert_non_null(et);
    assert_string_equal(et, "Mail(Person from,Person to,string contents)Person(string name,address "
                            "wallet)");
    free(et);
    uint8_t th[32], ds[32], sh[32], dg[32];
    assert_int_equal(eip712_type_hash(types, "Mail", th, NULL, 0), 0);
    hex32_eq(th, "0xa0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2");
    assert_int_equal(eip712_hash_typed_data(j, dg, ds, sh, NULL, 0), 0);
    hex32_eq(ds, "0xf2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f");
    hex32_eq(sh, "0xc52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e");
    hex32_eq(dg, "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2");
    uint8_t mh[32];
    assert_int_equal(
        eip712_hash_struct(types, "Mail", cJSON_GetObjectItem(j, "message"), mh, NULL, 0), 0);
    assert_memory_equal(mh, sh, 32);

    /* The EIP's signer is keccak256("cow"). */
    uint8_t k[32], sig[65], a[20], want[20];
    keccak_256_str("cow", k);
    assert_int_equal(eip712_sign(j, k, sig, NULL, 0), 0);
    hex32_eq(sig, "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d");
    hex32_eq(sig + 32, "0x07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562");
    assert_int_equal(sig[64], 28);
    assert_int_equal(hex_addr_parse("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826", want, NULL, 0),
                     0);
    assert_int_equal(eip712_recover(j, sig, a, NULL, 0), 0);
    assert_memory_equal(a, want, 20);
    assert_int_equal(eip712_verify(j, sig, want, NULL, 0), 0);
    want[0] ^= 1;
    assert_int_equal(eip712_verify(j, sig, want, NULL, 0), -1);

    /* cast signs the same bytes */
    uint8_t cs[65];
    assert_int_equal(cast_sign_typed(MAIL, k, cs), 0);
    assert_memory_equal(cs, sig, 65);

    uint8_t d2[32];
    assert_int_equal(eip712_hash_typed_json(MAIL, d2, NULL, 0), 0);
    assert_memory_equal(d2, dg, 32);
    cJSON_Delete(j);
}

static void test_complex_matches_cast(void **state)
{
    (void)state;
    cJSON *j = cJSON_Parse(COMPLEX);
    assert_non_null(j);
    char err[UTIL_ERRLEN] = "";
    char *et = eip712_encode_type(cJSON_GetObjectItem(j, "types"), "Order", err, sizeof err);
    assert_non_null(et);
    assert_string_equal(et, "Order(Group group,string note,int256 amount,uint256 big)"
                            "Group(string name,Item[] items,int16[2][] matrix,address[3] owners,"
                            "Leaf[] leaves)"
                            "Item(uint8 id,int64 delta,string[] tags,bytes blob,bool flag,bytes4 "
                            "code)Leaf(uint256 x)");
    free(et);
    for (int i = 0; i < 3; i++) {
        uint8_t k[32], ours[65], theirs[65], a[20], me[20];
        assert_int_equal(secp_key_random(k, NULL, 0), 0);
        int rc = eip712_sign(j, k, ours, err, sizeof err);
        if (rc != 0)
            fail_msg("eip712_sign: %s", err);
        assert_int_equal(cast_sign_typed(COMPLEX, k, theirs), 0);
        assert_memory_equal(ours, theirs, 65);
        assert_int_equal(eip712_recover(j, theirs, a, NULL, 0), 0);
        assert_int_equal(secp_pubkey_address(k, me, NULL, 0), 0);
        assert_memory_equal(a, me, 20);
    }
    cJSON_Delete(j);
}

/* One-field typed data: {"v": VALUE} of type TYPE. */
static char *single(const char *type, const char *value)
{
    char *s = NULL;
    assert_true(asprintf(&s,
                         "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"}],"
                         "\"T\":[{\"name\":\"v\",\"type\":\"%s\"}]},\"primaryType\":\"T\","
                         "\"domain\":{\"name\":\"x\"},\"message\":{\"v\":%s}}",
                         type, value) >= 0);
    return s;
}

static void test_atomic_values(void **state)
{
    (void)state;
    static const struct {
        const char *type, *value;
        int cast; /* also compare with cast (it accepts this spelling) */
    } ok[] = {
        {"uint8", "255", 1},
        {"uint8", "\"0xff\"", 1},
        {"uint8", "\"255\"", 1},
        {"int8", "-128", 1},
        {"int8", "\"-128\"", 1},
        {"int8", "127", 1},
        {"int8", "0", 1},
        {"int24", "-8388608", 1},
        {"uint256", "\"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"", 1},
        {"int256", "\"-1\"", 1},
        {"int256",
         "\"57896044618658097711785492504343953926634992332820282019728792003956564819967\"", 1},
        {"uint64", "9007199254740992", 1},
        {"int64", "\"-9223372036854775808\"", 1},
        {"bytes1", "\"0x00\"", 1},
        {"bytes32", "\"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"", 1},
        {"bytes", "\"0x\"", 1},
        {"bytes", "\"0xAbCd\"", 1},
        {"bool", "true", 1},
        {"bool", "false", 1},
        {"string", "\"\"", 1},
        {"string", "\"\\u0001 \\\" \\\\ \\ud83d\\ude00\"", 1},
        {"address", "\"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\"", 1},
        {"uint8[2]", "[1,2]", 1},
        {"uint8[]", "[]", 1},
        {"uint8[][]", "[[1],[]]", 1},
        {"bool[1][2]", "[[true],[false]]", 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *js = single(ok[i].type, ok[i].value);
        cJSON *j = cJSON_Parse(js);
        assert_non_null(j);
        uint8_t k[32], ours[65], theirs[65];
        char err[UTIL_ERRLEN] = "";
        keccak_256_str(js, k);
        if (eip712_sign(j, k, ours, err, sizeof err) != 0)
            fail_msg("%s %s rejected: %s", ok[i].type, ok[i].value, err);
        if (ok[i].cast) {
            if (cast_sign_typed(js, k, theirs) != 0)
                fail_msg("cast rejected %s %s", ok[i].type, ok[i].value);
            if (memcmp(ours, theirs, 65) != 0)
                fail_msg("signature differs from cast for %s %s", ok[i].type, ok[i].value);
        }
        cJSON_Delete(j);
        free(js);
    }
}

static void test_atomic_rejects(void **state)
{
    (void)state;
    static const char *bad[][2] = {
        {"uint8", "256"},
        {"uint8", "-1"},
        {"uint8", "\"-1\""},
        {"uint8", "\"0x100\""},
        {"int8", "128"},
        {"int8", "-129"},
        {"int8", "\"-0x1\""},
        {"int256",
         "\"57896044618658097711785492504343953926634992332820282019728792003956564819968\""},
        {"int256",
         "\"-57896044618658097711785492504343953926634992332820282019728792003956564819969\""},
        {"uint256", "\"0x10000000000000000000000000000000000000000000000000000000000000000\""},
        {"uint256",
         "\"115792089237316195423570985008687907853269984665640564039457584007913129639936\""},
        {"uint256", "\"1e3\""},
        {"uint256", "1.5"},
        {"uint256", "1e300"},
        {"uint256", "9007199254740994"},
        {"int64", "9223372036854775807"}, /* beyond 2^53 as a JSON number: precision lost */
        {"uint256", "\"\""},
        {"uint256", "\" 1\""},
        {"uint256", "\"0x\""},
        {"uint256", "null"},
        {"uint256", "[1]"},
        {"bytes1", "\"0x0000\""},
        {"bytes1", "\"00\""},
        {"bytes4", "\"0xdeadbee\""},
        {"bytes", "\"0xabc\""},
        {"bytes", "\"abcd\""},
        {"bytes", "\"0xzz\""},
        {"bool", "\"true\""},
        {"bool", "1"},
        {"string", "5"},
        {"string", "null"},
        {"address", "\"0xf39fd6e51aad88f6f4ce6ab8827279cfffb9226\""},
        {"address", "\"0xF39fd6e51aad88f6f4ce6ab8827279cfffb92266\""}, /* bad checksum */
        {"address", "\"f39fd6e51aad88f6f4ce6ab8827279cfffb922660\""},
        {"uint8[2]", "[1]"},
        {"uint8[2]", "[1,2,3]"},
        {"uint8[]", "5"},
        {"uint8[]", "{}"},
        {"uint8[]", "[256]"},
        {"uint7", "1"},
        {"uint264", "1"},
        {"uint08", "1"},
        {"uint", "1"},
        {"int", "1"},
        {"bytes0", "\"0x\""},
        {"bytes33", "\"0x00\""},
        {"uint8[0]", "[]"},
        {"uint8[01]", "[1]"},
        {"uint8[", "1"},
        {"uint8]", "1"},
        {"[]", "[]"},
        {"uint8[-1]", "[]"},
        {"Unknown", "{}"},
        {"T", "{}"},     /* value would need infinite nesting */
        {"T[]", "[{}]"}, /* missing field inside */
        {"", "1"},
        {"string ", "\"\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *js = single(bad[i][0], bad[i][1]);
        uint8_t d[32];
        char err[UTIL_ERRLEN] = "";
        if (eip712_hash_typed_json(js, d, err, sizeof err) != -1)
            fail_msg("accepted %s %s", bad[i][0], bad[i][1]);
        assert_true(err[0] != '\0');
        free(js);
    }
}

/* Replaces the first occurrence of `from` in MAIL. */
static char *mail_with(const char *from, const char *to)
{
    const char *p = strstr(MAIL, from);
    assert_non_null(p);
    size_t pre = (size_t)(p - MAIL), n = strlen(MAIL) - strlen(from) + strlen(to) + 1;
    char *s = util_malloc(n);
    memcpy(s, MAIL, pre);
    strcpy(s + pre, to);
    strcat(s, p + strlen(from));
    return s;
}

static void test_structure_rejects(void **state)
{
    (void)state;
    static const char *bad[][2] = {
        {",\"contents\":\"Hello, Bob!\"", ""},                               /* missing field */
        {"\"contents\":\"Hello, Bob!\"", "\"contents\":\"x\",\"cc\":\"y\""}, /* extra field */
        {"\"contents\":\"Hello, Bob!\"", "\"contents\":\"x\",\"contents\":\"y\""},
        {"\"type\":\"Person\"", "\"type\":\"Persona\""},
        {"\"primaryType\":\"Mail\"", "\"primaryType\":\"Mailx\""},
        {"\"primaryType\":\"Mail\"", "\"primaryType\":5"},
        {"\"primaryType\":\"Mail\"", "\"primaryType\":\"Mail\",\"extra\":1"},
        {"\"EIP712Domain\"", "\"EIP712Domainx\""},
        {"\"Person\":[", "\"uint256\":["},
        {"\"Person\":[", "\"Per son\":["},
        {"\"types\"", "\"typez\""},
        {"{\"name\":\"wallet\",\"type\":\"address\"}", "{\"name\":\"name\",\"type\":\"address\"}"},
        {"{\"name\":\"wallet\",\"type\":\"address\"}", "{\"name\":\"wallet\"}"},
        {"{\"name\":\"wallet\",\"type\":\"address\"}",
         "{\"name\":\"wal let\",\"type\":\"address\"}"},
        {"{\"name\":\"wallet\",\"type\":\"address\"}", "{\"name\":\"\",\"type\":\"address\"}"},
        {"{\"name\":\"wallet\",\"type\":\"address\"}", "\"wallet\""},
        {"{\"name\":\"wallet\",\"type\":\"address\"}", "{\"name\":5,\"type\":\"address\"}"},
        {"\"verifyingContract\":\"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC\"",
         "\"verifyingContract\":null"},
        {"\"chainId\":1", "\"chainId\":-1"},
        {"\"chainId\":1", "\"chainId\":1.5"},
        {"\"chainId\":1", "\"chainId\":true"},
        {"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
         "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD827"},
        {"{\"name\":\"Cow\",\"wallet\":\"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826\"}", "\"Cow\""},
        {"\"message\":{", "\"message\":5,\"x\":{"},
        {"\"domain\":{", "\"domain\":[],\"x\":{"},
        {"\"name\":\"Ether Mail\",", ""}, /* domain field missing */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *js = mail_with(bad[i][0], bad[i][1]);
        uint8_t d[32];
        char err[UTIL_ERRLEN] = "";
        if (eip712_hash_typed_json(js, d, err, sizeof err) != -1)
            fail_msg("accepted mutation %zu: %s", i, js);
        assert_true(err[0] != '\0');
        free(js);
    }
    uint8_t d[32];
    assert_int_equal(eip712_hash_typed_json("[]", d, NULL, 0), -1);
    assert_int_equal(eip712_hash_typed_json("{", d, NULL, 0), -1);
    assert_int_equal(eip712_hash_typed_json(NULL, d, NULL, 0), -1);
    assert_int_equal(eip712_hash_typed_data(NULL, d, NULL, NULL, NULL, 0), -1);
    assert_null(eip712_encode_type(NULL, "Mail", NULL, 0));
}

/* {"v": [[[...]]]} of type uint8[]...[] with `depth` levels. */
static char *nested_array(int depth)
{
    size_t cap = 256 + (size_t)depth * 8;
    char *type = util_malloc(cap), *val = util_malloc(cap);
    strcpy(type, "uint8");
    val[0] = '\0';
    for (int i = 0; i < depth; i++) {
        strcat(type, "[]");
        strcat(val, "[");
    }
    strcat(val, "7");
    for (int i = 0; i < depth; i++)
        strcat(val, "]");
    char *js = single(type, val);
    free(type);
    free(val);
    return js;
}

static void test_depth_and_cycles(void **state)
{
    (void)state;
    uint8_t d[32], k[32], ours[65], theirs[65];
    char *ok = nested_array(3), *deep = nested_array(40);
    char err[UTIL_ERRLEN] = "";
    if (eip712_hash_typed_json(ok, d, err, sizeof err) != 0)
        fail_msg("%s", err);
    cJSON *j = cJSON_Parse(ok);
    assert_int_equal(secp_key_random(k, NULL, 0), 0);
    assert_int_equal(eip712_sign(j, k, ours, NULL, 0), 0);
    assert_int_equal(cast_sign_typed(ok, k, theirs), 0);
    assert_memory_equal(ours, theirs, 65);
    cJSON_Delete(j);
    assert_int_equal(eip712_hash_typed_json(deep, d, err, sizeof err), -1);
    assert_true(strstr(err, "deeper") != NULL);
    free(ok);
    free(deep);

    /* cyclic struct references (direct, through an array, and A -> B -> A) are
     * refused, as ethers and cast do, even when the value is finite */
    const char *cyc[] = {
        "{\"types\":{\"EIP712Domain\":[],\"Node\":[{\"name\":\"next\",\"type\":\"Node[]\"}]},"
        "\"primaryType\":\"Node\",\"domain\":{},\"message\":{\"next\":[]}}",
        "{\"types\":{\"EIP712Domain\":[],\"A\":[{\"name\":\"b\",\"type\":\"B[]\"}],"
        "\"B\":[{\"name\":\"a\",\"type\":\"A[2]\"}]},"
        "\"primaryType\":\"A\",\"domain\":{},\"message\":{\"b\":[]}}",
    };
    for (size_t i = 0; i < 2; i++) {
        err[0] = '\0';
        assert_int_equal(eip712_hash_typed_json(cyc[i], d, err, sizeof err), -1);
        assert_true(strstr(err, "cyclic") != NULL);
    }
    /* control: the same shape without the cycle is fine */
    assert_int_equal(
        eip712_hash_typed_json(
            "{\"types\":{\"EIP712Domain\":[],\"A\":[{\"name\":\"b\",\"type\":\"B[]\"}],"
            "\"B\":[{\"name\":\"x\",\"type\":\"uint8[2]\"}]},"
            "\"primaryType\":\"A\",\"domain\":{},\"message\":{\"b\":[{\"x\":[1,2]}]}}",
            d, NULL, 0),
        0);
}

/* Every prefix and many random byte mutations of valid documents: no crash,
 * no leak, and a result of exactly 0 or -1. */
static void test_fuzz(void **state)
{
    (void)state;
    const char *docs[] = {MAIL, COMPLEX};
    for (size_t di = 0; di < 2; di++) {
        size_t n = strlen(docs[di]);
        char *buf = util_malloc(n + 1);
        uint8_t d[32];
        for (size_t cut = 0; cut < n; cut++) {
            memcpy(buf, docs[di], cut);
            buf[cut] = '\0';
            int rc = eip712_hash_typed_json(buf, d, NULL, 0);
            assert_true(rc == 0 || rc == -1);
        }
        static const char alphabet[] = "{}[]\",:0123456789abcdefx-.[] eE\\";
        for (int it = 0; it < 3000; it++) {
            memcpy(buf, docs[di], n + 1);
            for (int m = 0; m < 1 + it % 3; m++)
                buf[util_random_below(n)] = alphabet[util_random_below(sizeof alphabet - 1)];
            int rc = eip712_hash_typed_json(buf, d, NULL, 0);
            assert_true(rc == 0 || rc == -1);
        }
        free(buf);
    }
}

static void test_personal(void **state)
{
    (void)state;
    const char *msgs[] = {"hello", "Paimon approval: ticket 42 \xc3\xa9\xe2\x9c\x93",
                          "a longer message that is more than fifty-six bytes long, so the length "
                          "prefix has three digits: 0123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        uint8_t h[32], k[32], ours[65], theirs[65], a[20], me[20];
        eip712_personal_hash((const uint8_t *)msgs[i], strlen(msgs[i]), h);
        char *hm_argv[] = {(char *)th_cast_path(), "hash-message", (char *)msgs[i], NULL};
        char *hm = run(hm_argv);
        assert_non_null(hm);
        hex32_eq(h, hm);
        free(hm);

        assert_int_equal(secp_key_random(k, NULL, 0), 0);
        char ks[HEX_B32_STRLEN];
        key_hex(k, ks);
        char *argv[] = {(char *)th_cast_path(), "wallet", "sign", "--private-key", ks,
                        (char *)msgs[i],        NULL};
        char *out = run(argv);
        assert_non_null(out);
        assert_int_equal(secp_sig_parse_hex(out, theirs, NULL, 0), 0);
        free(out);
        assert_int_equal(
            eip712_personal_sign((const uint8_t *)msgs[i], strlen(msgs[i]), k, ours, NULL, 0), 0);
        assert_memory_equal(ours, theirs, 65);
        assert_int_equal(
            eip712_personal_recover((const uint8_t *)msgs[i], strlen(msgs[i]), theirs, a, NULL, 0),
            0);
        assert_int_equal(secp_pubkey_address(k, me, NULL, 0), 0);
        assert_memory_equal(a, me, 20);
        /* a different message recovers someone else */
        assert_int_equal(eip712_personal_recover((const uint8_t *)msgs[i], strlen(msgs[i]) - 1,
                                                 theirs, a, NULL, 0),
                         0);
        assert_memory_not_equal(a, me, 20);
    }
    /* the empty message has a well-defined hash: keccak("\x19Ethereum Signed Message:\n0") */
    uint8_t h[32], w[32];
    eip712_personal_hash(NULL, 0, h);
    keccak_256_str("\x19"
                   "Ethereum Signed Message:\n0",
                   w);
    assert_memory_equal(h, w, 32);
}

static void test_approval(void **state)
{
    (void)state;
    uint8_t vault[20], k[32], me[20], ours[65], theirs[65], a[20];
    assert_int_equal(hex_addr_parse("0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0", vault, NULL, 0),
                     0);
    money_u256 nonce, deadline;
    money_from_u64(&nonce, 7);
    assert_int_equal(money_from_dec(&deadline, "1893456000", NULL, 0), 0);
    cJSON *t = eip712_approval_new(31337, vault, "tkt-0001", "approve", &nonce, &deadline, NULL, 0);
    assert_non_null(t);
    char *et = eip712_encode_type(cJSON_GetObjectItem(t, "types"), "Approval", NULL, 0);
    assert_string_equal(et, "Approval(string ticketId,string decision,uint256 nonce,uint256 "
                            "deadline)");
    free(et);
    char *js = cJSON_PrintUnformatted(t);
    assert_non_null(
        strstr(js, "\"verifyingContract\":\"0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0\""));
    assert_non_null(strstr(js, "\"chainId\":31337"));
    assert_non_null(strstr(js, "\"name\":\"PaimonPrimeFund\""));

    assert_int_equal(secp_key_random(k, NULL, 0), 0);
    assert_int_equal(secp_pubkey_address(k, me, NULL, 0), 0);
    assert_int_equal(eip712_sign(t, k, ours, NULL, 0), 0);
    assert_int_equal(cast_sign_typed(js, k, theirs), 0);
    assert_memory_equal(ours, theirs, 65);
    assert_int_equal(eip712_verify(t, theirs, me, NULL, 0), 0);

    /* any changed field breaks the signature */
    cJSON *other =
        eip712_approval_new(31337, vault, "tkt-0001", "reject", &nonce, &deadline, NULL, 0);
    assert_int_equal(eip712_verify(other, theirs, me, NULL, 0), -1);
    cJSON_Delete(other);
    other = eip712_approval_new(56, vault, "tkt-0001", "approve", &nonce, &deadline, NULL, 0);
    assert_int_equal(eip712_recover(other, theirs, a, NULL, 0), 0);
    assert_memory_not_equal(a, me, 20);
    cJSON_Delete(other);

    /* the malleated high-s twin is refused */
    static const uint8_t N[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                  0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
    uint8_t hi[65];
    memcpy(hi, theirs, 65);
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int d = N[i] - theirs[32 + i] - borrow;
        borrow = d < 0;
        hi[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
    hi[64] = (uint8_t)(theirs[64] == 27 ? 28 : 27);
    assert_int_equal(eip712_verify(t, hi, me, NULL, 0), -1);

    free(js);
    cJSON_Delete(t);

    /* a chain id beyond 2^53 is carried as a string and still hashes */
    t = eip712_approval_new(UINT64_MAX, vault, "t", "d", &nonce, &deadline, NULL, 0);
    assert_non_null(t);
    uint8_t d[32];
    assert_int_equal(eip712_hash_typed_data(t, d, NULL, NULL, NULL, 0), 0);
    cJSON_Delete(t);

    char err[UTIL_ERRLEN];
    assert_null(eip712_approval_new(0, vault, "t", "d", &nonce, &deadline, err, sizeof err));
    assert_null(eip712_approval_new(1, vault, "", "d", &nonce, &deadline, NULL, 0));
    assert_null(eip712_approval_new(1, vault, "t", NULL, &nonce, &deadline, NULL, 0));
    assert_null(eip712_approval_new(1, vault, "t\xff", "d", &nonce, &deadline, NULL, 0));
    assert_null(eip712_approval_new(1, vault, "t\xc0\xaf", "d", &nonce, &deadline, NULL, 0));
    assert_null(eip712_approval_new(1, vault, "t\xed\xa0\x80", "d", &nonce, &deadline, NULL, 0));
    char longs[300];
    memset(longs, 'a', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    assert_null(eip712_approval_new(1, vault, longs, "d", &nonce, &deadline, NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mail_example),
        cmocka_unit_test(test_complex_matches_cast),
        cmocka_unit_test(test_atomic_values),
        cmocka_unit_test(test_atomic_rejects),
        cmocka_unit_test(test_structure_rejects),
        cmocka_unit_test(test_depth_and_cycles),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_personal),
        cmocka_unit_test(test_approval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
