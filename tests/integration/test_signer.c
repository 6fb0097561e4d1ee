/* Integration tests for libcommon/signer. A fake Web3Signer (libevent evhttp on its
 * own thread, ephemeral port) answers eth_signTransaction by signing with a known
 * key through ethtx_sign, like the real one, and can misbehave on demand: JSON-RPC
 * errors, HTTP 500, slow answers, wrong ids, oversized or garbage bodies, and a
 * malicious mode that signs a different to / value / type or with another key.
 * The local backend is tested from a real keystore file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "crypto.h"
#include "ethtx.h"
#include "hex.h"
#include "keystore.h"
#include "money.h"
#include "secp.h"
#include "signer.h"
#include "util.h"

/* anvil dev accounts 0 and 1. */
#define KEY0  "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#define ADDR0 "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
#define KEY1  "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
/* anvil dev account 9: no role in the devchain fixture, free for this test. */
#define KEY9 "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"

enum mode {
    M_OK,
    M_RPC_ERROR,
    M_HTTP500,
    M_SLOW,
    M_TAMPER_TO,
    M_TAMPER_VALUE,
    M_TAMPER_DATA,
    M_LEGACY_INSTEAD,
    M_WRONG_KEY,
    M_GARBAGE,
    M_NOT_HEX,
    M_WRONG_ID,
    M_HUGE,
};

typedef struct fake {
    struct event_base *base;
    struct evhttp *http;
    pthread_t th;
    int port;
    atomic_int mode;
    atomic_int requests;
    uint8_t key[32], other_key[32];
    char last_req[4096]; /* last request body, written on the server thread */
} fake;

static fake F;

static void reply_json(struct evhttp_request *req, int code, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
    evbuffer_free(b);
}

static int q_u64(const cJSON *o, const char *k, uint64_t *out)
{
    money_u256 v;
    const cJSON *x = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(x) && money_from_hex(&v, x->valuestring, NULL, 0) == 0 &&
                   money_to_u64(&v, out) == 0
               ? 0
               : -1;
}

static int q_u256(const cJSON *o, const char *k, money_u256 *out)
{
    const cJSON *x = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(x) && money_from_hex(out, x->valuestring, NULL, 0) == 0 ? 0 : -1;
}

/* Signs params[0] like Web3Signer: 1559 when maxFeePerGas is present, else legacy. */
static void handle_sign(struct evhttp_request *req, const cJSON *id, const cJSON *params, int mode)
{
    const cJSON *o = cJSON_GetArrayItem(params, 0);
    ethtx tx;
    ethtx_init(&tx);
    const cJSON *to = cJSON_GetObjectItem(o, "to"), *data = cJSON_GetObjectItem(o, "data");
    uint8_t *d = NULL;
    size_t dl = 0;
    int ok = cJSON_IsObject(o) && q_u64(o, "nonce", &tx.nonce) == 0 &&
             q_u64(o, "gas", &tx.gas_limit) == 0 && q_u64(o, "chainId", &tx.chain_id) == 0 &&
             q_u256(o, "value", &tx.value) == 0 && cJSON_IsString(data) &&
             (d = hex_decode_new(data->valuestring, &dl, NULL, 0)) != NULL;
    if (ok && cJSON_GetObjectItem(o, "maxFeePerGas")) {
        tx.type = ETHTX_EIP1559;
        ok = q_u256(o, "maxFeePerGas", &tx.max_fee) == 0 &&
             q_u256(o, "maxPriorityFeePerGas", &tx.max_priority_fee) == 0;
    } else if (ok) {
        ok = q_u256(o, "gasPrice", &tx.gas_price) == 0;
    }
    if (ok && to) {
        tx.has_to = 1;
        ok = cJSON_IsString(to) && hex_addr_parse(to->valuestring, tx.to, NULL, 0) == 0;
    }
    if (!ok) {
        free(d);
        reply_json(req, 400,
                   "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32602,\"message\":"
                   "\"Invalid params\"}}");
        return;
    }
    tx.data = d;
    tx.data_len = dl;
    const uint8_t *key = F.key;
    money_u256 one;
    money_from_u64(&one, 1);
    uint8_t evil[4] = {0xde, 0xad, 0xbe, 0xef};
    if (mode == M_TAMPER_TO)
        tx.to[19] ^= 0x01;
    if (mode == M_TAMPER_VALUE)
        money_add(&tx.value, &tx.value, &one);
    if (mode == M_TAMPER_DATA) {
        tx.data = evil;
        tx.data_len = sizeof evil;
    }
    if (mode == M_LEGACY_INSTEAD) {
        tx.type = ETHTX_LEGACY;
        tx.gas_price = tx.max_fee;
    }
    if (mode == M_WRONG_KEY)
        key = F.other_key;
    char *raw = NULL, hash[67];
    if (ethtx_sign_hex(&tx, key, &raw, hash, NULL, 0) != 0) {
        free(d);
        reply_json(req, 200,
                   "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":"
                   "\"Signing failed\"}}");
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "jsonrpc", "2.0");
    cJSON_AddNumberToObject(r, "id", id->valuedouble + (mode == M_WRONG_ID ? 1 : 0));
    if (mode == M_GARBAGE)
        cJSON_AddStringToObject(r, "result", "0xdeadbeef");
    else if (mode == M_NOT_HEX)
        cJSON_AddNumberToObject(r, "result", 42);
    else
        cJSON_AddStringToObject(r, "result", raw);
    char *body = cJSON_PrintUnformatted(r);
    reply_json(req, 200, body);
    free(body);
    cJSON_Delete(r);
    free(raw);
    free(d);
}

static void on_request(struct evhttp_request *req, void *ud)
{
    (void)ud;
    atomic_fetch_add(&F.requests, 1);
    int mode = atomic_load(&F.mode);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (n >= sizeof F.last_req)
        n = sizeof F.last_req - 1;
    evbuffer_copyout(in, F.last_req, n);
    F.last_req[n] = '\0';
    if (mode == M_SLOW)
        util_sleep_ms(1500);
    if (mode == M_HTTP500) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_printf(b, "Internal Server Error");
        evhttp_send_reply(req, 500, "Internal Server Error", b);
        evbuffer_free(b);
        return;
    }
    if (mode == M_HUGE) {
        size_t big = 200 * 1024;
        char *s = util_malloc(big + 64);
        strcpy(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x");
        size_t l = strlen(s);
        memset(s + l, 'a', big);
        strcpy(s + l + big, "\"}");
        reply_json(req, 200, s);
        free(s);
        return;
    }
    cJSON *j = cJSON_Parse(F.last_req);
    const cJSON *id = cJSON_GetObjectItem(j, "id");
    const cJSON *method = cJSON_GetObjectItem(j, "method");
    if (!j || !cJSON_IsNumber(id) || !cJSON_IsString(method)) {
        reply_json(req, 400,
                   "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":"
                   "\"Parse error\"}}");
    } else if (mode == M_RPC_ERROR) {
        char b[200];
        snprintf(b, sizeof b,
                 "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"error\":{\"code\":-32000,\"message\":"
                 "\"Signing failed: key locked\\u0007\"}}",
                 id->valuedouble);
        reply_json(req, 200, b);
    } else if (strcmp(method->valuestring, "eth_accounts") == 0) {
        uint8_t a[20];
        char as[HEX_ADDR_STRLEN], b[200];
        secp_pubkey_address(F.key, a, NULL, 0);
        hex_encode(a, 20, 1, as, sizeof as);
        snprintf(b, sizeof b, "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":[\"%s\"]}",
                 id->valuedouble, as);
        reply_json(req, 200, b);
    } else if (strcmp(method->valuestring, "eth_signTransaction") == 0) {
        handle_sign(req, id, cJSON_GetObjectItem(j, "params"), mode);
    } else {
        reply_json(req, 200,
                   "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32601,\"message\":"
                   "\"Method not found\"}}");
    }
    cJSON_Delete(j);
}

static void *server_main(void *arg)
{
    (void)arg;
    event_base_dispatch(F.base);
    return NULL;
}

static int group_setup(void **state)
{
    (void)state;
    evthread_use_pthreads();
    if (hex_decode_fixed(KEY0, F.key, 32, NULL, 0) ||
        hex_decode_fixed(KEY1, F.other_key, 32, NULL, 0))
        return -1;
    F.base = event_base_new();
    F.http = evhttp_new(F.base);
    struct evhttp_bound_socket *h = evhttp_bind_socket_with_handle(F.http, "127.0.0.1", 0);
    if (!h)
        return -1;
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    F.port = ntohs(sa.sin_port);
    evhttp_set_gencb(F.http, on_request, NULL);
    return pthread_create(&F.th, NULL, server_main, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    event_base_loopexit(F.base, NULL);
    pthread_join(F.th, NULL);
    evhttp_free(F.http);
    event_base_free(F.base);
    libevent_global_shutdown();
    return 0;
}

static signer *remote(int64_t timeout_ms)
{
    signer_remote_opts o;
    memset(&o, 0, sizeof o);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", F.port);
    o.url = url;
    assert_int_equal(hex_addr_parse(ADDR0, o.address, NULL, 0), 0);
    o.timeout_ms = timeout_ms;
    signer *s = NULL;
    char err[UTIL_ERRLEN];
    assert_int_equal(signer_remote_new(&o, &s, err, sizeof err), 0);
    return s;
}

static const uint8_t CALLDATA[] = {0xa9, 0x05, 0x9c, 0xbb, 0x00, 0x01, 0x02};

static void tx_1559(ethtx *tx)
{
    ethtx_init(tx);
    tx->type = ETHTX_EIP1559;
    tx->chain_id = 31337;
    tx->nonce = 7;
    tx->gas_limit = 90000;
    money_from_u64(&tx->max_fee, 30000000000ull);
    money_from_u64(&tx->max_priority_fee, 1500000000ull);
    tx->has_to = 1;
    hex_addr_parse("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", tx->to, NULL, 0);
    money_from_dec(&tx->value, "1000000000000000000", NULL, 0);
    tx->data = CALLDATA;
    tx->data_len = sizeof CALLDATA;
}

static void test_remote_signs_and_matches_local(void **state)
{
    (void)state;
    atomic_store(&F.mode, M_OK);
    signer *s = remote(2000), *l = NULL;
    char err[UTIL_ERRLEN];
    assert_int_equal(signer_local_from_key(F.key, &l, err, sizeof err), 0);
    assert_memory_equal(signer_address(s), signer_address(l), 20);
    assert_int_equal(signer_backend_of(s), SIGNER_REMOTE);
    assert_int_equal(signer_backend_of(l), SIGNER_LOCAL);
    assert_int_equal(signer_check(s, err, sizeof err), 0);

    ethtx tx;
    for (int kind = 0; kind < 3; kind++) {
        tx_1559(&tx);
        if (kind == 1) { /* legacy */
            tx.type = ETHTX_LEGACY;
            money_from_u64(&tx.gas_price, 5000000000ull);
        } else if (kind == 2) { /* contract creation, no value, no data */
            tx.has_to = 0;
            money_zero(&tx.value);
            tx.data = NULL;
            tx.data_len = 0;
        }
        uint8_t *r1 = NULL, *r2 = NULL, h1[32], h2[32], from[20];
        size_t n1, n2;
        if (signer_sign_tx(s, &tx, &r1, &n1, h1, err, sizeof err) != 0)
            fail_msg("remote sign: %s", err);
        assert_int_equal(signer_sign_tx(l, &tx, &r2, &n2, h2, err, sizeof err), 0);
        /* RFC 6979 signatures are deterministic: both backends give the same bytes. */
        assert_int_equal(n1, n2);
        assert_memory_equal(r1, r2, n1);
        assert_memory_equal(h1, h2, 32);
        ethtx got;
        assert_int_equal(ethtx_decode(r1, n1, &got, from, NULL, NULL, 0), 0);
        assert_memory_equal(from, signer_address(s), 20);
        assert_int_equal(got.nonce, 7);
        free(r1);
        free(r2);

        /* The request carried Web3Signer's fields as hex quantities. */
        cJSON *j = cJSON_Parse(F.last_req);
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItem(j, "method")->valuestring, "eth_signTransaction");
        const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "params"), 0);
        assert_string_equal(cJSON_GetObjectItem(p, "from")->valuestring, ADDR0);
        assert_string_equal(cJSON_GetObjectItem(p, "gas")->valuestring, "0x15f90");
        assert_string_equal(cJSON_GetObjectItem(p, "nonce")->valuestring, "0x7");
        assert_string_equal(cJSON_GetObjectItem(p, "chainId")->valuestring, "0x7a69");
        if (kind == 0) {
            assert_string_equal(cJSON_GetObjectItem(p, "maxFeePerGas")->valuestring, "0x6fc23ac00");
            assert_string_equal(cJSON_GetObjectItem(p, "maxPriorityFeePerGas")->valuestring,
                                "0x59682f00");
            assert_null(cJSON_GetObjectItem(p, "gasPrice"));
            assert_string_equal(cJSON_GetObjectItem(p, "value")->valuestring, "0xde0b6b3a7640000");
            assert_string_equal(cJSON_GetObjectItem(p, "data")->valuestring, "0xa9059cbb000102");
            assert_string_equal(cJSON_GetObjectItem(p, "to")->valuestring,
                                "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
        } else if (kind == 1) {
            assert_string_equal(cJSON_GetObjectItem(p, "gasPrice")->valuestring, "0x12a05f200");
            assert_null(cJSON_GetObjectItem(p, "maxFeePerGas"));
        } else {
            assert_null(cJSON_GetObjectItem(p, "to"));
            assert_string_equal(cJSON_GetObjectItem(p, "value")->valuestring, "0x0");
            assert_string_equal(cJSON_GetObjectItem(p, "data")->valuestring, "0x");
        }
        cJSON_Delete(j);
    }
    signer_free(s);
    signer_free(l);
}

static void expect_remote_fails(int mode, int64_t timeout_ms, const char *needle)
{
    atomic_store(&F.mode, mode);
    signer *s = remote(timeout_ms);
    ethtx tx;
    tx_1559(&tx);
    uint8_t *raw = (uint8_t *)1, hash[32];
    size_t n = 5;
    char err[UTIL_ERRLEN] = "";
    int before = atomic_load(&F.requests);
    assert_int_equal(signer_sign_tx(s, &tx, &raw, &n, hash, err, sizeof err), -1);
    assert_null(raw);
    assert_int_equal(n, 0);
    assert_true(atomic_load(&F.requests) > before); /* it really asked */
    if (!strstr(err, needle))
        fail_msg("mode %d: error '%s' lacks '%s'", mode, err, needle);
    signer_free(s);
    atomic_store(&F.mode, M_OK);
}

static void test_remote_errors(void **state)
{
    (void)state;
    expect_remote_fails(M_RPC_ERROR, 2000, "JSON-RPC error -32000");
    expect_remote_fails(M_RPC_ERROR, 2000, "key locked?"); /* control char neutralised */
    expect_remote_fails(M_HTTP500, 2000, "HTTP 500");
    expect_remote_fails(M_GARBAGE, 2000, "invalid transaction");
    expect_remote_fails(M_NOT_HEX, 2000, "not a hex string");
    expect_remote_fails(M_WRONG_ID, 2000, "id does not match");
    expect_remote_fails(M_HUGE, 2000, "larger than");
}

static void test_remote_slow(void **state)
{
    (void)state;
    int64_t t0 = util_mono_ms();
    expect_remote_fails(M_SLOW, 400, "timed out after 400 ms");
    int64_t took = util_mono_ms() - t0;
    assert_true(took >= 350 && took < 1400);
    /* With a longer timeout the same slow signer is fine. */
    atomic_store(&F.mode, M_SLOW);
    signer *s = remote(5000);
    ethtx tx;
    tx_1559(&tx);
    uint8_t *raw = NULL;
    size_t n;
    char err[UTIL_ERRLEN];
    util_sleep_ms(1200); /* let the server finish the previous slow request */
    assert_int_equal(signer_sign_tx(s, &tx, &raw, &n, NULL, err, sizeof err), 0);
    free(raw);
    signer_free(s);
    atomic_store(&F.mode, M_OK);
}

static void test_remote_malicious(void **state)
{
    (void)state;
    expect_remote_fails(M_TAMPER_TO, 2000, "different to");
    expect_remote_fails(M_TAMPER_VALUE, 2000, "different value");
    expect_remote_fails(M_TAMPER_DATA, 2000, "different data");
    expect_remote_fails(M_LEGACY_INSTEAD, 2000, "different type");
    expect_remote_fails(M_WRONG_KEY, 2000, "signed by 0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
}

static void test_remote_unreachable_and_config(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    signer_remote_opts o;
    memset(&o, 0, sizeof o);
    signer *s = NULL;
    o.url = "ftp://127.0.0.1/";
    assert_int_equal(hex_addr_parse(ADDR0, o.address, NULL, 0), 0);
    assert_int_equal(signer_remote_new(&o, &s, err, sizeof err), -1);
    o.url = "http://127.0.0.1:1/";
    memset(o.address, 0, 20);
    assert_int_equal(signer_remote_new(&o, &s, err, sizeof err), -1);
    assert_int_equal(hex_addr_parse(ADDR0, o.address, NULL, 0), 0);
    o.tls_cert_file = "/tmp/cert.pem";
    assert_int_equal(signer_remote_new(&o, &s, err, sizeof err), -1);
    o.tls_cert_file = NULL;
    /* Nothing listens on port 1: a connection error, reported, not a hang. */
    assert_int_equal(signer_remote_new(&o, &s, err, sizeof err), 0);
    ethtx tx;
    tx_1559(&tx);
    uint8_t *raw;
    size_t n;
    assert_int_equal(signer_sign_tx(s, &tx, &raw, &n, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "remote signer"));
    signer_free(s);
    /* https against a plain-HTTP server fails the TLS handshake. */
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", F.port);
    o.url = url;
    assert_int_equal(signer_remote_new(&o, &s, err, sizeof err), 0);
    assert_int_equal(signer_sign_tx(s, &tx, &raw, &n, NULL, err, sizeof err), -1);
    signer_free(s);
    /* A signer for an account the remote does not serve fails its readiness check. */
    s = remote(2000);
    assert_int_equal(signer_check(s, err, sizeof err), 0);
    signer_free(s);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", F.port);
    o.url = url;
    o.address[0] ^= 1;
    assert_int_equal(signer_remote_new(&o, &s, err, sizeof err), 0);
    assert_int_equal(signer_check(s, err, sizeof err), -1);
    assert_non_null(strstr(err, "does not serve"));
    signer_free(s);
    /* Bad transactions are refused before anything is sent. */
    s = remote(2000);
    tx.chain_id = 0;
    int before = atomic_load(&F.requests);
    assert_int_equal(signer_sign_tx(s, &tx, &raw, &n, NULL, err, sizeof err), -1);
    assert_int_equal(atomic_load(&F.requests), before);
    signer_free(s);
}

static void test_local_from_keystore_and_env(void **state)
{
    (void)state;
    char dir[] = "/tmp/paimon-signer-XXXXXX", path[96], err[UTIL_ERRLEN];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/keys.json", dir);
    const char *mk = "5555555555555555555555555555555555555555555555555555555555555555";
    keystore_kek kek;
    assert_int_equal(keystore_kek_parse("prod-1", mk, &kek, NULL, 0), 0);
    keystore *ks = NULL;
    uint8_t addr[20];
    assert_int_equal(keystore_open(path, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_import_hex(ks, &kek, "hot", KEY0, addr, err, sizeof err), 0);

    signer *s = NULL;
    assert_int_equal(signer_local_new(ks, &kek, "hot", &s, err, sizeof err), 0);
    assert_memory_equal(signer_address(s), addr, 20);
    assert_int_equal(signer_check(s, err, sizeof err), 0);
    ethtx tx;
    tx_1559(&tx);
    uint8_t *raw = NULL, *want = NULL, hash[32], whash[32], from[20];
    size_t n, wn;
    assert_int_equal(signer_sign_tx(s, &tx, &raw, &n, hash, err, sizeof err), 0);
    assert_int_equal(ethtx_sign(&tx, F.key, &want, &wn, whash, NULL, 0), 0);
    assert_int_equal(n, wn);
    assert_memory_equal(raw, want, n);
    assert_memory_equal(hash, whash, 32);
    ethtx got;
    assert_int_equal(ethtx_decode(raw, n, &got, from, NULL, NULL, 0), 0);
    assert_memory_equal(from, addr, 20);
    free(raw);
    free(want);
    signer_free(s);
    keystore_kek wrong;
    assert_int_equal(keystore_kek_parse("prod-1",
                                        "66666666666666666666666666666666666666666666"
                                        "66666666666666666666",
                                        &wrong, NULL, 0),
                     0);
    assert_int_equal(signer_local_new(ks, &wrong, "hot", &s, err, sizeof err), -1);
    assert_null(s);
    assert_int_equal(signer_local_new(ks, &kek, "cold", &s, err, sizeof err), -1);
    keystore_free(ks);

    /* From the environment: local... */
    setenv("PT_SIGNER_BACKEND", "local", 1);
    setenv("PT_SIGNER_KEYSTORE", path, 1);
    setenv("PT_SIGNER_NAME", "hot", 1);
    setenv("PAIMON_MASTER_KEY", mk, 1);
    setenv("PAIMON_MASTER_KEY_ID", "prod-1", 1);
    assert_int_equal(signer_from_env("PT_SIGNER", &s, err, sizeof err), 0);
    assert_memory_equal(signer_address(s), addr, 20);
    signer_free(s);
    unsetenv("PT_SIGNER_NAME");
    unsetenv("PAIMON_MASTER_KEY");
    assert_int_equal(signer_from_env("PT_SIGNER", &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "PT_SIGNER_NAME"));
    assert_non_null(strstr(err, "PAIMON_MASTER_KEY"));
    assert_null(strstr(err, mk));
    /* ...and remote. */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", F.port);
    setenv("PT_SIGNER_BACKEND", "remote", 1);
    setenv("PT_SIGNER_URL", url, 1);
    setenv("PT_SIGNER_ADDRESS", ADDR0, 1);
    setenv("PT_SIGNER_TIMEOUT", "3s", 1);
    atomic_store(&F.mode, M_OK);
    assert_int_equal(signer_from_env("PT_SIGNER", &s, err, sizeof err), 0);
    assert_int_equal(signer_backend_of(s), SIGNER_REMOTE);
    assert_int_equal(signer_sign_tx(s, &tx, &raw, &n, NULL, err, sizeof err), 0);
    free(raw);
    signer_free(s);
    setenv("PT_SIGNER_ADDRESS", "0xF39fd6e51aad88F6F4ce6aB8827279cffFb92266", 1); /* bad checksum */
    assert_int_equal(signer_from_env("PT_SIGNER", &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "PT_SIGNER_ADDRESS"));
    setenv("PT_SIGNER_BACKEND", "kms", 1);
    assert_int_equal(signer_from_env("PT_SIGNER", &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "PT_SIGNER_BACKEND"));

    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- end to end against the harness's anvil ---- */

typedef struct buf {
    char *p;
    size_t n;
} buf;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    buf *b = ud;
    b->p = realloc(b->p, b->n + size * nmemb + 1);
    memcpy(b->p + b->n, ptr, size * nmemb);
    b->n += size * nmemb;
    b->p[b->n] = '\0';
    return size * nmemb;
}

/* One JSON-RPC call to anvil; returns the whole response (caller frees). */
static cJSON *chain_rpc(const char *url, const char *method, const char *params)
{
    char *req = util_malloc(strlen(params) + 128);
    sprintf(req, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":%s}", method, params);
    CURL *c = curl_easy_init();
    buf b = {NULL, 0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(req);
    assert_int_equal(rc, CURLE_OK);
    cJSON *j = cJSON_Parse(b.p);
    free(b.p);
    assert_non_null(j);
    return j;
}

static uint64_t chain_u64(const char *url, const char *method, const char *params)
{
    cJSON *j = chain_rpc(url, method, params);
    const cJSON *r = cJSON_GetObjectItem(j, "result");
    assert_true(cJSON_IsString(r));
    money_u256 v;
    uint64_t out;
    assert_int_equal(money_from_hex(&v, r->valuestring, NULL, 0), 0);
    assert_int_equal(money_to_u64(&v, &out), 0);
    cJSON_Delete(j);
    return out;
}

/* Transactions signed by the keystore-backed signer are accepted and mined by a
 * real node, with the hash we computed, and move exactly the value we signed. */
/* A daemon's signer: the devchain key when given, else the environment; "optional"
 * only lets risk run without one. */
static void test_signer_open(void **state)
{
    (void)state;
    signer *s = NULL;
    char err[256];
    unsetenv("PAIMON_SIGNER_KEYSTORE");
    unsetenv("PAIMON_SIGNER_BACKEND");
    assert_int_equal(signer_open(NULL, 1, &s, err, sizeof err), 0);
    assert_null(s);
    assert_int_equal(signer_open("", 0, &s, err, sizeof err), -1); /* required, none set */
    assert_null(s);
    /* anvil's first account */
    assert_int_equal(
        signer_open("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", 1, &s,
                    err, sizeof err),
        1);
    char addr[43];
    hex_encode(signer_address(s), 20, 1, addr, sizeof addr);
    assert_string_equal(addr, "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
    signer_free(s);
    s = NULL;
    assert_int_equal(signer_open("0x1234", 1, &s, err, sizeof err), -1);
    assert_null(s);
    setenv("PAIMON_SIGNER_BACKEND", "kms", 1);
    assert_int_equal(signer_open(NULL, 1, &s, err, sizeof err), -1); /* configured, unusable */
    unsetenv("PAIMON_SIGNER_BACKEND");
}

static void test_anvil_accepts_signed_txs(void **state)
{
    (void)state;
    const char *cfgp = getenv("PAIMON_DEVCHAIN_JSON");
    if (!cfgp || access(cfgp, R_OK) != 0)
        skip();
    FILE *fp = fopen(cfgp, "rb");
    assert_non_null(fp);
    char text[65536];
    size_t tl = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[tl] = '\0';
    cJSON *cfg = cJSON_Parse(text);
    assert_non_null(cfg);
    char url[128];
    util_strlcpy(url, cJSON_GetObjectItem(cfg, "rpcUrl")->valuestring, sizeof url);
    uint64_t chain_id = (uint64_t)cJSON_GetObjectItem(cfg, "chainId")->valuedouble;
    cJSON_Delete(cfg);
    assert_int_equal(chain_u64(url, "eth_chainId", "[]"), chain_id);

    char dir[] = "/tmp/paimon-signer-XXXXXX", path[96], err[UTIL_ERRLEN];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/keys.json", dir);
    keystore_kek kek;
    assert_int_equal(
        keystore_kek_parse("k", "7777777777777777777777777777777777777777777777777777777777777777",
                           &kek, NULL, 0),
        0);
    keystore *ks = NULL;
    assert_int_equal(keystore_open(path, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_import_hex(ks, &kek, "hot", KEY9, NULL, err, sizeof err), 0);
    signer *s = NULL;
    assert_int_equal(signer_local_new(ks, &kek, "hot", &s, err, sizeof err), 0);
    keystore_free(ks);

    char from[HEX_ADDR_STRLEN], params[256];
    hex_encode(signer_address(s), 20, 1, from, sizeof from);
    const char *dest = "0x000000000000000000000000000000000000bEEF";
    snprintf(params, sizeof params, "[\"%s\",\"latest\"]", dest);
    uint64_t bal0 = chain_u64(url, "eth_getBalance", params);
    for (int kind = 0; kind < 2; kind++) {
        snprintf(params, sizeof params, "[\"%s\",\"pending\"]", from);
        ethtx tx;
        ethtx_init(&tx);
        tx.type = kind ? ETHTX_LEGACY : ETHTX_EIP1559;
        tx.chain_id = chain_id;
        tx.nonce = chain_u64(url, "eth_getTransactionCount", params);
        tx.gas_limit = 21000;
        money_from_u64(&tx.max_fee, 100000000000ull);
        money_from_u64(&tx.max_priority_fee, 1000000000ull);
        money_from_u64(&tx.gas_price, 100000000000ull);
        tx.has_to = 1;
        hex_addr_parse(dest, tx.to, NULL, 0);
        money_from_u64(&tx.value, 1000 + (uint64_t)kind);
        uint8_t *raw = NULL, hash[32];
        size_t n;
        assert_int_equal(signer_sign_tx(s, &tx, &raw, &n, hash, err, sizeof err), 0);
        char *rawhex = hex_encode_new(raw, n, 1), hh[67];
        free(raw);
        char *p2 = util_malloc(strlen(rawhex) + 8);
        sprintf(p2, "[\"%s\"]", rawhex);
        cJSON *j = chain_rpc(url, "eth_sendRawTransaction", p2);
        const cJSON *r = cJSON_GetObjectItem(j, "result");
        if (!cJSON_IsString(r)) {
            char *dump = cJSON_PrintUnformatted(j);
            fail_msg("anvil refused the tx: %s", dump);
        }
        ethtx_hash_hex(hash, hh);
        assert_string_equal(r->valuestring, hh);
        cJSON_Delete(j);
        sprintf(p2, "[\"%s\"]", hh);
        /* anvil automines; allow a moment if a block time is configured. */
        const cJSON *st = NULL;
        cJSON *rc = NULL;
        for (int i = 0; i < 50 && !st; i++) {
            cJSON_Delete(rc);
            rc = chain_rpc(url, "eth_getTransactionReceipt", p2);
            st = cJSON_GetObjectItem(cJSON_GetObjectItem(rc, "result"), "status");
            if (!st)
                util_sleep_ms(100);
        }
        assert_non_null(st);
        assert_string_equal(st->valuestring, "0x1");
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(rc, "result"), "from")->valuestring, from);
        cJSON_Delete(rc);
        free(p2);
        free(rawhex);
    }
    snprintf(params, sizeof params, "[\"%s\",\"latest\"]", dest);
    assert_int_equal(chain_u64(url, "eth_getBalance", params), bal0 + 2001);
    signer_free(s);
    keystore_kek_wipe(&kek);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remote_signs_and_matches_local),
        cmocka_unit_test(test_remote_errors),
        cmocka_unit_test(test_remote_slow),
        cmocka_unit_test(test_remote_malicious),
        cmocka_unit_test(test_remote_unreachable_and_config),
        cmocka_unit_test(test_local_from_keystore_and_env),
        cmocka_unit_test(test_signer_open),
        cmocka_unit_test(test_anvil_accepts_signed_txs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
