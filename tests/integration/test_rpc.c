/* test_rpc: the JSON-RPC client against the harness's real anvil ($PAIMON_ANVIL_PORT), extra
 * anvil instances it starts and kills (ports base+4, base+5), and small local fake HTTP
 * servers for what anvil cannot produce: HTTP 200 with a JSON-RPC node error, 429 with
 * Retry-After, 500, hanging responses, garbage JSON, a wrong id, an oversized body, a stale
 * tip, batches answered out of order. Chain state changes run between evm_snapshot and
 * evm_revert so other tests see the seeded devchain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hex.h"
#include "metrics.h"
#include "rpc.h"
#include "util.h"

static char anvil_url[64];
static int port_base;

/* ------------------------------------------------------------------ fake server */

typedef enum {
    FM_OK,       /* valid answers (blockNumber = head, chainId 0x7a69, batches reversed) */
    FM_NODE_ERR, /* HTTP 200, JSON-RPC -32603 */
    FM_REVERT,   /* HTTP 200, JSON-RPC 3 execution reverted with data */
    FM_429,      /* HTTP 429 with Retry-After: retry_after */
    FM_500,
    FM_HANG,    /* never answers */
    FM_GARBAGE, /* HTTP 200, not JSON */
    FM_WRONG_ID,
    FM_BIG,       /* HTTP 200, 64 KiB of valid JSON */
    FM_NO_VERSION /* no "jsonrpc" member */
} fmode;

#define MAXC 16
typedef struct fake {
    int lfd, port;
    atomic_int mode;
    atomic_int retry_after;
    atomic_ullong head;
    atomic_int requests;
    atomic_int accepts;
    atomic_int stop;
    pthread_t th;
    int cfd[MAXC];
    char *buf[MAXC];
    size_t len[MAXC];
} fake;

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, int status, const char *extra, const char *body)
{
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\n%s\r\n",
                     status, strlen(body), extra ? extra : "");
    send_all(fd, hdr, (size_t)n);
    send_all(fd, body, strlen(body));
}

static cJSON *answer_one(fake *f, const cJSON *req, int mode)
{
    cJSON *o = cJSON_CreateObject();
    if (mode != FM_NO_VERSION)
        cJSON_AddStringToObject(o, "jsonrpc", "2.0");
    const cJSON *id = cJSON_GetObjectItem(req, "id");
    double idv = cJSON_IsNumber(id) ? id->valuedouble : 0;
    cJSON_AddNumberToObject(o, "id", mode == FM_WRONG_ID ? idv + 1000 : idv);
    const cJSON *m = cJSON_GetObjectItem(req, "method");
    const char *method = cJSON_IsString(m) ? m->valuestring : "";
    if (mode == FM_NODE_ERR || mode == FM_REVERT) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddNumberToObject(e, "code", mode == FM_NODE_ERR ? -32603 : 3);
        cJSON_AddStringToObject(e, "message",
                                mode == FM_NODE_ERR ? "internal error" : "execution reverted");
        if (mode == FM_REVERT)
            cJSON_AddStringToObject(e, "data", "0x08c379a0");
        return o;
    }
    char hx[32];
    if (!strcmp(method, "eth_blockNumber")) {
        snprintf(hx, sizeof hx, "0x%llx", (unsigned long long)atomic_load(&f->head));
        cJSON_AddStringToObject(o, "result", hx);
    } else if (!strcmp(method, "eth_chainId")) {
        cJSON_AddStringToObject(o, "result", "0x7a69");
    } else if (!strcmp(method, "echo")) {
        cJSON_AddItemToObject(o, "result", cJSON_Duplicate(cJSON_GetObjectItem(req, "params"), 1));
    } else {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddNumberToObject(e, "code", -32602);
        cJSON_AddStringToObject(e, "message", "invalid params");
    }
    return o;
}

static void handle_req(fake *f, int fd, const char *body, size_t blen)
{
    atomic_fetch_add(&f->requests, 1);
    int mode = atomic_load(&f->mode);
    char extra[64];
    switch (mode) {
    case FM_HANG:
        return;
    case FM_429:
        snprintf(extra, sizeof extra, "Retry-After: %d\r\n", atomic_load(&f->retry_after));
        reply(fd, 429, extra, "{}");
        return;
    case FM_500:
        reply(fd, 500, NULL, "oops");
        return;
    case FM_GARBAGE:
        reply(fd, 200, NULL, "{\"jsonrpc\":\"2.0\",\"id\":");
        return;
    case FM_BIG: {
        size_t n = 64 * 1024;
        char *s = malloc(n + 64);
        int k = snprintf(s, 64, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x");
        memset(s + k, 'a', n);
        strcpy(s + k + n, "\"}");
        reply(fd, 200, NULL, s);
        free(s);
        return;
    }
    default:
        break;
    }
    cJSON *req = cJSON_ParseWithLength(body, blen);
    cJSON *out;
    if (cJSON_IsArray(req)) {
        out = cJSON_CreateArray();
        /* Reverse order: the client must match answers by id. */
        for (int i = cJSON_GetArraySize(req) - 1; i >= 0; i--)
            cJSON_AddItemToArray(out, answer_one(f, cJSON_GetArrayItem(req, i), mode));
    } else {
        out = answer_one(f, req, mode);
    }
    char *s = cJSON_PrintUnformatted(out);
    reply(fd, 200, NULL, s);
    free(s);
    cJSON_Delete(out);
    cJSON_Delete(req);
}

/* Parses every complete request in connection slot i. */
static void drain_slot(fake *f, int i)
{
    for (;;) {
        char *b = f->buf[i];
        char *end = b ? memmem(b, f->len[i], "\r\n\r\n", 4) : NULL;
        if (!end)
            return;
        size_t hlen = (size_t)(end - b) + 4, clen = 0;
        for (char *p = b; p < end; p++) {
            if (!strncasecmp(p, "\ncontent-length:", 16)) {
                clen = strtoul(p + 16, NULL, 10);
                break;
            }
        }
        if (f->len[i] < hlen + clen)
            return;
        handle_req(f, f->cfd[i], b + hlen, clen);
        memmove(b, b + hlen + clen, f->len[i] - hlen - clen);
        f->len[i] -= hlen + clen;
    }
}

static void *fake_run(void *arg)
{
    fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p[MAXC + 1];
        p[0].fd = f->lfd;
        p[0].events = POLLIN;
        for (int i = 0; i < MAXC; i++) {
            p[i + 1].fd = f->cfd[i];
            p[i + 1].events = POLLIN;
        }
        if (poll(p, MAXC + 1, 50) <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            int c = accept(f->lfd, NULL, NULL);
            int placed = 0;
            for (int i = 0; c >= 0 && i < MAXC && !placed; i++) {
                if (f->cfd[i] < 0) {
                    f->cfd[i] = c;
                    f->len[i] = 0;
                    placed = 1;
                }
            }
            if (c >= 0 && !placed)
                close(c);
            if (c >= 0)
                atomic_fetch_add(&f->accepts, 1);
        }
        for (int i = 0; i < MAXC; i++) {
            if (f->cfd[i] < 0 || !(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char tmp[65536];
            ssize_t n = recv(f->cfd[i], tmp, sizeof tmp, 0);
            if (n <= 0) {
                close(f->cfd[i]);
                f->cfd[i] = -1;
                f->len[i] = 0;
                continue;
            }
            f->buf[i] = realloc(f->buf[i], f->len[i] + (size_t)n + 1);
            memcpy(f->buf[i] + f->len[i], tmp, (size_t)n);
            f->len[i] += (size_t)n;
            drain_slot(f, i);
        }
    }
    return NULL;
}

static fake *fake_start(fmode mode)
{
    fake *f = calloc(1, sizeof *f);
    for (int i = 0; i < MAXC; i++)
        f->cfd[i] = -1;
    atomic_init(&f->mode, mode);
    atomic_init(&f->head, 100);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 16), 0);
    socklen_t al = sizeof a;
    getsockname(f->lfd, (struct sockaddr *)&a, &al);
    f->port = ntohs(a.sin_port);
    pthread_create(&f->th, NULL, fake_run, f);
    return f;
}

static void fake_stop(fake *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->th, NULL);
    close(f->lfd);
    for (int i = 0; i < MAXC; i++) {
        if (f->cfd[i] >= 0)
            close(f->cfd[i]);
        free(f->buf[i]);
    }
    free(f);
}

static const char *fake_url(const fake *f, char *buf, size_t len)
{
    snprintf(buf, len, "http://127.0.0.1:%d/", f->port);
    return buf;
}

/* ------------------------------------------------------------------ helpers */

static rpc_client *client(const char *name, const char *const *urls, size_t n, rpc_config *over)
{
    rpc_config cfg = over ? *over : (rpc_config){0};
    cfg.urls = urls;
    cfg.nurls = n;
    cfg.name = name;
    if (!cfg.timeout_ms)
        cfg.timeout_ms = 2000;
    if (!cfg.connect_timeout_ms)
        cfg.connect_timeout_ms = 500;
    char err[UTIL_ERRLEN];
    rpc_client *c = rpc_client_new(&cfg, err, sizeof err);
    if (!c)
        fail_msg("rpc_client_new: %s", err);
    return c;
}

static double err_count(const char *name, int ep, const char *host, const char *kind)
{
    char l[300];
    snprintf(l, sizeof l, "client=\"%s\",endpoint=\"%d\",host=\"%s\",kind=\"%s\"", name, ep, host,
             kind);
    return metrics_counter_value(
        metrics_counter_get(metrics_global(), "paimon_rpc_errors_total", NULL, l));
}

static char *fake_host(const fake *f, char *buf, size_t len)
{
    snprintf(buf, len, "127.0.0.1:%d", f->port);
    return buf;
}

static cJSON *call_anvil(const char *method, cJSON *params)
{
    const char *u[] = {anvil_url};
    rpc_client *c = client("anvil-admin", u, 1, NULL);
    char err[UTIL_ERRLEN];
    cJSON *r = rpc_call(c, method, params, err, sizeof err);
    if (!r)
        fail_msg("%s: %s", method, err);
    rpc_client_free(c);
    return r;
}

static pid_t spawn_anvil(int port)
{
    char p[16], bin[1024];
    snprintf(p, sizeof p, "%d", port);
    const char *repo = getenv("PAIMON_REPO");
    snprintf(bin, sizeof bin, "%s/deploy/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil",
             repo ? repo : ".");
    if (access(bin, X_OK) != 0)
        snprintf(bin, sizeof bin, "%s/deploy/node_modules/.bin/anvil", repo ? repo : ".");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        dup2(dn, 2);
        execl(bin, "anvil", "--port", p, "--host", "127.0.0.1", "--silent", (char *)NULL);
        _exit(127);
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    const char *u[] = {url};
    rpc_config cfg = {.timeout_ms = 300, .breaker_threshold = 1000};
    rpc_client *c = client("spawn-wait", u, 1, &cfg);
    for (int i = 0; i < 100; i++) {
        uint64_t id;
        if (rpc_chain_id(c, &id, NULL, 0) == 0)
            break;
        util_sleep_ms(100);
    }
    rpc_client_free(c);
    return pid;
}

static void kill_anvil(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* ------------------------------------------------------------------ tests */

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(rpc_error_classify(3, "execution reverted"), RPC_CLASS_DETERMINISTIC);
    assert_int_equal(rpc_error_classify(-32000, "execution reverted: nope"),
                     RPC_CLASS_DETERMINISTIC);
    assert_int_equal(rpc_error_classify(-32602, "invalid params"), RPC_CLASS_DETERMINISTIC);
    assert_int_equal(rpc_error_classify(-32000, "nonce too low"), RPC_CLASS_DETERMINISTIC);
    assert_int_equal(rpc_error_classify(-32603, "internal error"), RPC_CLASS_NODE);
    assert_int_equal(rpc_error_classify(-32000, "header not found"), RPC_CLASS_NODE);
    assert_int_equal(rpc_error_classify(-32005, "limit exceeded"), RPC_CLASS_RATE_LIMIT);
    assert_int_equal(rpc_error_classify(-32000, "too many requests"), RPC_CLASS_RATE_LIMIT);
    assert_int_equal(rpc_error_classify(-32601, "the method eth_getLogs does not exist"),
                     RPC_CLASS_LIMIT);
    assert_int_equal(rpc_error_classify(-32000, "query returned more than 10000 results"),
                     RPC_CLASS_LIMIT);
    char tag[RPC_BLOCK_TAG_MAX];
    assert_string_equal(rpc_block_tag(255, tag), "0xff");
    assert_string_equal(rpc_block_tag(RPC_BLOCK_PENDING, tag), "pending");
    cJSON *q = cJSON_CreateString("0x1a");
    uint64_t v = 0;
    assert_int_equal(rpc_parse_quantity(q, &v), 0);
    assert_int_equal(v, 26);
    cJSON_SetValuestring(q, "0x");
    assert_int_equal(rpc_parse_quantity(q, &v), -1);
    cJSON_SetValuestring(q, "0x10000000000000000");
    assert_int_equal(rpc_parse_quantity(q, &v), -1);
    cJSON_SetValuestring(q, "12");
    assert_int_equal(rpc_parse_quantity(q, &v), -1);
    cJSON_Delete(q);
    /* bad config */
    const char *bad[] = {"ftp://x"};
    rpc_config cfg = {.urls = bad, .nurls = 1};
    char err[UTIL_ERRLEN] = "";
    assert_null(rpc_client_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "http"));
}

static void test_anvil_typed(void **state)
{
    (void)state;
    const char *u[] = {anvil_url};
    rpc_client *c = client("typed", u, 1, NULL);
    char err[UTIL_ERRLEN];
    uint64_t id = 0, bn = 0;
    assert_int_equal(rpc_chain_id(c, &id, err, sizeof err), 0);
    assert_int_equal(id, 31337);
    cJSON_Delete(call_anvil("evm_mine", NULL));
    cJSON_Delete(call_anvil("evm_mine", NULL));
    assert_int_equal(rpc_block_number(c, &bn, err, sizeof err), 0);
    assert_true(bn >= 2);
    rpc_header latest, prev;
    assert_int_equal(rpc_get_block_header(c, RPC_BLOCK_LATEST, &latest, err, sizeof err), 0);
    assert_int_equal(latest.number, bn);
    assert_int_equal(rpc_get_block_header(c, (int64_t)bn - 1, &prev, err, sizeof err), 0);
    assert_int_equal(prev.number, bn - 1);
    assert_memory_equal(latest.parent_hash, prev.hash, 32);
    assert_true(latest.timestamp >= prev.timestamp);
    assert_int_equal(rpc_get_block_header(c, 1000000000, &prev, err, sizeof err), 1);

    money_u256 gp, tip;
    assert_int_equal(rpc_gas_price(c, &gp, err, sizeof err), 0);
    assert_false(money_is_zero(&gp));
    assert_int_equal(rpc_max_priority_fee(c, &tip, err, sizeof err), 0);
    rpc_fees fh;
    unsigned pct[] = {10, 50};
    assert_int_equal(rpc_fee_history(c, 2, RPC_BLOCK_LATEST, pct, 2, &fh, err, sizeof err), 0);
    assert_int_equal(fh.nblocks, 2);
    assert_int_equal(fh.oldest_block, bn - 1);
    assert_false(money_is_zero(&fh.base_fee[0]));
    assert_non_null(fh.reward);
    rpc_fee_history_free(&fh);
    unsigned badpct[] = {50, 10};
    assert_int_equal(rpc_fee_history(c, 2, RPC_BLOCK_LATEST, badpct, 2, &fh, err, sizeof err), -1);

    /* getLogs over the seeded chain returns an array. */
    cJSON *filter = cJSON_CreateObject();
    cJSON_AddStringToObject(filter, "fromBlock", "0x0");
    cJSON_AddStringToObject(filter, "toBlock", "latest");
    rpc_error e;
    rpc_error_init(&e);
    cJSON *logs = rpc_get_logs(c, filter, &e);
    assert_non_null(logs);
    assert_true(cJSON_IsArray(logs));
    cJSON_Delete(logs);
    cJSON_Delete(filter);
    rpc_client_free(c);
}

/* A contract whose code reverts with 0xdeadbeef, a tx sent and its receipt, nonces. */
static void test_anvil_call_revert_and_tx(void **state)
{
    (void)state;
    cJSON *snap = call_anvil("evm_snapshot", NULL);
    const char *addr = "0x00000000000000000000000000000000c0ffee01";
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(addr));
    /* PUSH4 deadbeef PUSH1 0 MSTORE PUSH1 4 PUSH1 28 REVERT */
    cJSON_AddItemToArray(p, cJSON_CreateString("0x63deadbeef6000526004601cfd"));
    cJSON_Delete(call_anvil("anvil_setCode", p));
    /* Returns 32 bytes of 0x2a: PUSH1 2a PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN */
    const char *addr2 = "0x00000000000000000000000000000000c0ffee02";
    p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(addr2));
    cJSON_AddItemToArray(p, cJSON_CreateString("0x602a60005260206000f3"));
    cJSON_Delete(call_anvil("anvil_setCode", p));

    fake *spare = fake_start(FM_OK);
    char fu[64];
    const char *u[] = {anvil_url, fake_url(spare, fu, sizeof fu)};
    rpc_client *c = client("revert", u, 2, NULL);
    rpc_error e;
    rpc_error_init(&e);
    uint8_t *out = NULL;
    size_t outlen = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rpc_eth_call(c, addr, "0x12345678", RPC_BLOCK_LATEST, &out, &outlen, &e),
                         -1);
        assert_int_equal(e.status, RPC_ERR_RPC);
        size_t rl = 0;
        uint8_t *rd = rpc_error_revert_data(&e, &rl);
        assert_non_null(rd);
        assert_int_equal(rl, 4);
        assert_memory_equal(rd, "\xde\xad\xbe\xef", 4);
        free(rd);
    }
    /* Reverts never fail over and never trip the breaker. */
    assert_int_equal(atomic_load(&spare->requests), 0);
    rpc_endpoint_info info;
    rpc_endpoint_get(c, 0, &info);
    assert_int_equal(info.breaker, RPC_BREAKER_CLOSED);
    assert_int_equal(info.consecutive_failures, 0);

    assert_int_equal(rpc_eth_call(c, addr2, "0x", RPC_BLOCK_LATEST, &out, &outlen, &e), 0);
    assert_int_equal(outlen, 32);
    assert_int_equal(out[31], 0x2a);
    free(out);
    assert_int_equal(rpc_eth_call(c, "0xnot", "0x", RPC_BLOCK_LATEST, &out, &outlen, &e), -1);
    assert_int_equal(e.status, RPC_ERR_INVALID);

    /* Invalid params: deterministic too (anvil answers -32602). */
    cJSON *r = rpc_call_ex(c, "eth_getBalance", cJSON_CreateArray(), 0, &e);
    assert_null(r);
    assert_int_equal(e.status, RPC_ERR_RPC);
    assert_int_equal(atomic_load(&spare->requests), 0);

    /* A raw tx signed by cast with anvil's dev key 9. */
    const char *key = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6";
    const char *from = "0xa0ee7a142d267c1f36714e4a8f75612f20a79720";
    char err[UTIL_ERRLEN];
    uint64_t n0 = 0, n1 = 0;
    assert_int_equal(rpc_get_tx_count(c, from, RPC_BLOCK_LATEST, &n0, err, sizeof err), 0);
    char cmd[2048];
    const char *repo = getenv("PAIMON_REPO");
    snprintf(cmd, sizeof cmd,
             "%s/deploy/node_modules/.bin/cast mktx --private-key %s --rpc-url %s "
             "0x1111111111111111111111111111111111111111 --value 1 2>/dev/null",
             repo ? repo : ".", key, anvil_url);
    FILE *pp = popen(cmd, "r");
    char raw[4096] = "";
    assert_non_null(fgets(raw, sizeof raw, pp));
    pclose(pp);
    raw[strcspn(raw, "\r\n")] = '\0';
    size_t rawlen = 0;
    uint8_t *rawb = hex_decode_new(raw, &rawlen, err, sizeof err);
    assert_non_null(rawb);
    uint8_t h[32];
    assert_int_equal(rpc_send_raw_tx(c, rawb, rawlen, h, &e), 0);
    /* Sending it again: the node knows it (deterministic, no failover). */
    int again = rpc_send_raw_tx(c, rawb, rawlen, h, &e);
    if (again != 0)
        assert_int_equal(e.status, RPC_ERR_RPC);
    free(rawb);
    cJSON *receipt = NULL;
    int rr = -1;
    for (int i = 0; i < 50 && rr != 0; i++) {
        rr = rpc_get_tx_receipt(c, h, &receipt, err, sizeof err);
        if (rr == 1) {
            cJSON_Delete(call_anvil("evm_mine", NULL));
        }
    }
    assert_int_equal(rr, 0);
    assert_string_equal(cJSON_GetObjectItem(receipt, "status")->valuestring, "0x1");
    cJSON_Delete(receipt);
    assert_int_equal(rpc_get_tx_count(c, from, RPC_BLOCK_PENDING, &n1, err, sizeof err), 0);
    assert_int_equal(n1, n0 + 1);
    uint8_t unknown[32] = {1};
    assert_int_equal(rpc_get_tx_receipt(c, unknown, &receipt, err, sizeof err), 1);
    assert_int_equal(atomic_load(&spare->requests), 0);

    rpc_error_clear(&e);
    rpc_client_free(c);
    fake_stop(spare);
    p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, snap);
    cJSON_Delete(call_anvil("evm_revert", p));
}

static void test_batch(void **state)
{
    (void)state;
    const char *u[] = {anvil_url};
    rpc_client *c = client("batch", u, 1, NULL);
    rpc_batch_item it[4];
    memset(it, 0, sizeof it);
    it[0].method = "eth_chainId";
    it[1].method = "eth_getBlockByNumber";
    it[1].params = cJSON_CreateArray();
    cJSON_AddItemToArray(it[1].params, cJSON_CreateString("0x0"));
    cJSON_AddItemToArray(it[1].params, cJSON_CreateFalse());
    it[2].method = "eth_getBalance";
    it[2].params = cJSON_CreateArray(); /* invalid params: its own error */
    it[3].method = "eth_blockNumber";
    char err[UTIL_ERRLEN];
    assert_int_equal(rpc_batch(c, it, 4, 0, err, sizeof err), 0);
    assert_string_equal(it[0].result->valuestring, "0x7a69");
    rpc_header h0;
    assert_int_equal(rpc_header_from_json(it[1].result, &h0, err, sizeof err), 0);
    assert_int_equal(h0.number, 0);
    assert_null(it[2].result);
    assert_int_equal(it[2].error.status, RPC_ERR_RPC);
    assert_non_null(it[3].result);
    assert_int_equal(it[3].error.status, RPC_OK);
    rpc_batch_items_clear(it, 4);
    rpc_client_free(c);

    /* A server answering in reverse order: matched by id. */
    fake *f = fake_start(FM_OK);
    char fu[64];
    const char *u2[] = {fake_url(f, fu, sizeof fu)};
    c = client("batch-rev", u2, 1, NULL);
    rpc_batch_item e[5];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 5; i++) {
        e[i].method = "echo";
        e[i].params = cJSON_CreateArray();
        cJSON_AddItemToArray(e[i].params, cJSON_CreateNumber(i * 10));
    }
    assert_int_equal(rpc_batch(c, e, 5, 0, err, sizeof err), 0);
    for (int i = 0; i < 5; i++) {
        assert_non_null(e[i].result);
        assert_int_equal(cJSON_GetArrayItem(e[i].result, 0)->valueint, i * 10);
    }
    rpc_batch_items_clear(e, 5);
    /* A batch answer with a wrong id is rejected as a whole. */
    atomic_store(&f->mode, FM_WRONG_ID);
    memset(e, 0, sizeof e);
    e[0].method = "echo";
    e[1].method = "echo";
    assert_int_equal(rpc_batch(c, e, 2, 0, err, sizeof err), -1);
    assert_int_equal(e[0].error.status, RPC_ERR_UNAVAILABLE);
    rpc_batch_items_clear(e, 2);
    rpc_client_free(c);
    fake_stop(f);
}

/* Each bad answer fails over to the next endpoint and is counted by kind. */
static void test_failover_kinds(void **state)
{
    (void)state;
    struct {
        fmode mode;
        const char *kind;
    } cases[] = {
        {FM_NODE_ERR, "rpc_node"},
        {FM_500, "http_5xx"},
        {FM_GARBAGE, "invalid_response"},
        {FM_WRONG_ID, "invalid_response"},
        {FM_BIG, "too_large"},
        {FM_NO_VERSION, "invalid_response"},
        {FM_HANG, "timeout"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fake *bad = fake_start(cases[k].mode);
        char bu[64], bh[64], name[32];
        snprintf(name, sizeof name, "kinds%zu", k);
        const char *u[] = {fake_url(bad, bu, sizeof bu), anvil_url};
        rpc_config cfg = {.timeout_ms = 300, .max_response_bytes = 16 * 1024};
        rpc_client *c = client(name, u, 2, &cfg);
        char err[UTIL_ERRLEN];
        uint64_t id = 0;
        int64_t t0 = util_mono_ms();
        assert_int_equal(rpc_chain_id(c, &id, err, sizeof err), 0);
        assert_int_equal(id, 31337);
        assert_true(util_mono_ms() - t0 < 1500);
        assert_int_equal(atomic_load(&bad->requests), 1);
        assert_true(err_count(name, 0, fake_host(bad, bh, sizeof bh), cases[k].kind) == 1.0);
        rpc_endpoint_info info;
        rpc_endpoint_get(c, 0, &info);
        /* An oversized answer is the request's fault, not the node's: counted, but
         * it does not move the endpoint towards its breaker. */
        int too_large = strcmp(cases[k].kind, "too_large") == 0;
        assert_int_equal(info.consecutive_failures, too_large ? 0 : 1);
        assert_int_equal(info.breaker, RPC_BREAKER_CLOSED);
        rpc_client_free(c);
        fake_stop(bad);
    }
}

/* A dense eth_getLogs range answered over our size cap, again and again while the
 * caller shrinks it: each call fails with the size in the error, and the endpoint
 * stays usable (its breaker never opens), so the shrunk request goes out at once. */
static void test_too_large_keeps_breaker_closed(void **state)
{
    (void)state;
    fake *big = fake_start(FM_BIG);
    char bu[64];
    const char *u[] = {fake_url(big, bu, sizeof bu)};
    rpc_config cfg = {.timeout_ms = 300,
                      .max_response_bytes = 16 * 1024,
                      .breaker_threshold = 2,
                      .breaker_cooldown_ms = 60000};
    rpc_client *c = client("toolarge", u, 1, &cfg);
    char err[UTIL_ERRLEN];
    uint64_t id = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rpc_chain_id(c, &id, err, sizeof err), -1);
        assert_non_null(strstr(err, "larger than"));
    }
    assert_int_equal(atomic_load(&big->requests), 4);
    rpc_endpoint_info info;
    rpc_endpoint_get(c, 0, &info);
    assert_int_equal(info.breaker, RPC_BREAKER_CLOSED);
    assert_int_equal(info.consecutive_failures, 0);
    /* The endpoint answers normally once the request is small enough. */
    atomic_store(&big->mode, FM_OK);
    assert_int_equal(rpc_chain_id(c, &id, err, sizeof err), 0);
    rpc_client_free(c);
    fake_stop(big);
}

static void test_breaker(void **state)
{
    (void)state;
    fake *bad = fake_start(FM_500);
    fake *good = fake_start(FM_OK);
    char bu[64], gu[64];
    const char *u[] = {fake_url(bad, bu, sizeof bu), fake_url(good, gu, sizeof gu)};
    rpc_config cfg = {
        .breaker_threshold = 3, .breaker_cooldown_ms = 300, .breaker_max_cooldown_ms = 5000};
    rpc_client *c = client("breaker", u, 2, &cfg);
    char err[UTIL_ERRLEN];
    uint64_t v;
    for (int i = 0; i < 10; i++)
        assert_int_equal(rpc_chain_id(c, &v, err, sizeof err), 0);
    /* Opened after 3 failures: later calls skip it. */
    assert_int_equal(atomic_load(&bad->requests), 3);
    assert_int_equal(atomic_load(&good->requests), 10);
    rpc_endpoint_info info;
    rpc_endpoint_get(c, 0, &info);
    assert_int_equal(info.breaker, RPC_BREAKER_OPEN);
    char l[200];
    snprintf(l, sizeof l, "client=\"breaker\",endpoint=\"0\",host=\"127.0.0.1:%d\"", bad->port);
    assert_true(metrics_gauge_value(metrics_gauge_get(metrics_global(), "paimon_rpc_breaker_state",
                                                      NULL, l)) == 2.0);
    /* After the cool-down one probe goes through; it fails: open again, cool-down doubled. */
    util_sleep_ms(350);
    int64_t t = util_mono_ms();
    assert_int_equal(rpc_chain_id(c, &v, err, sizeof err), 0);
    assert_int_equal(atomic_load(&bad->requests), 4);
    rpc_endpoint_get(c, 0, &info);
    assert_int_equal(info.breaker, RPC_BREAKER_OPEN);
    assert_true(info.open_until_ms - t >= 550 && info.open_until_ms - t <= 700);
    /* It recovers: the next probe closes the breaker. */
    atomic_store(&bad->mode, FM_OK);
    util_sleep_ms(650);
    assert_int_equal(rpc_chain_id(c, &v, err, sizeof err), 0);
    assert_int_equal(atomic_load(&bad->requests), 5);
    rpc_endpoint_get(c, 0, &info);
    assert_int_equal(info.breaker, RPC_BREAKER_CLOSED);
    assert_int_equal(rpc_chain_id(c, &v, err, sizeof err), 0);
    assert_int_equal(atomic_load(&bad->requests), 6);

    /* Everything down: a clear error, no hang. */
    atomic_store(&bad->mode, FM_500);
    atomic_store(&good->mode, FM_500);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rpc_chain_id(c, &v, err, sizeof err), -1);
    assert_int_equal(rpc_chain_id(c, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "no endpoint available"));
    rpc_error e;
    rpc_error_init(&e);
    assert_null(rpc_call_ex(c, "eth_chainId", NULL, 0, &e));
    assert_int_equal(e.status, RPC_ERR_UNAVAILABLE);
    rpc_client_free(c);
    fake_stop(bad);
    fake_stop(good);
}

static void test_rate_limit(void **state)
{
    (void)state;
    fake *rl = fake_start(FM_429);
    atomic_store(&rl->retry_after, 1);
    fake *good = fake_start(FM_OK);
    char ru[64], gu[64], rh[64];
    const char *u[] = {fake_url(rl, ru, sizeof ru), fake_url(good, gu, sizeof gu)};
    rpc_config cfg = {.breaker_threshold = 5};
    rpc_client *c = client("ratelimit", u, 2, &cfg);
    char err[UTIL_ERRLEN];
    uint64_t v;
    int64_t t = util_mono_ms();
    assert_int_equal(rpc_chain_id(c, &v, err, sizeof err), 0);
    rpc_endpoint_info info;
    rpc_endpoint_get(c, 0, &info);
    /* One 429 opens it for Retry-After (1 s) although the threshold is 5. */
    assert_int_equal(info.breaker, RPC_BREAKER_OPEN);
    assert_true(info.open_until_ms - t >= 900 && info.open_until_ms - t <= 1200);
    assert_true(err_count("ratelimit", 0, fake_host(rl, rh, sizeof rh), "http_429") == 1.0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(rpc_chain_id(c, &v, err, sizeof err), 0);
    assert_int_equal(atomic_load(&rl->requests), 1);
    atomic_store(&rl->mode, FM_OK);
    util_sleep_ms(1100);
    assert_int_equal(rpc_chain_id(c, &v, err, sizeof err), 0);
    assert_int_equal(atomic_load(&rl->requests), 2);
    rpc_endpoint_get(c, 0, &info);
    assert_int_equal(info.breaker, RPC_BREAKER_CLOSED);
    rpc_client_free(c);
    fake_stop(rl);
    fake_stop(good);
}

static void test_keepalive(void **state)
{
    (void)state;
    fake *f = fake_start(FM_OK);
    char fu[64];
    const char *u[] = {fake_url(f, fu, sizeof fu)};
    rpc_client *c = client("keepalive", u, 1, NULL);
    uint64_t v;
    for (int i = 0; i < 20; i++)
        assert_int_equal(rpc_chain_id(c, &v, NULL, 0), 0);
    assert_int_equal(atomic_load(&f->requests), 20);
    assert_int_equal(atomic_load(&f->accepts), 1);
    rpc_client_free(c);
    fake_stop(f);
}

static void test_stale_tip(void **state)
{
    (void)state;
    /* The primary serves a cached tip 10 blocks behind anvil. */
    char err[UTIL_ERRLEN];
    const char *ua[] = {anvil_url};
    rpc_client *a = client("stale-ref", ua, 1, NULL);
    for (int i = 0; i < 12; i++)
        cJSON_Delete(call_anvil("evm_mine", NULL));
    uint64_t real = 0;
    assert_int_equal(rpc_block_number(a, &real, err, sizeof err), 0);
    rpc_client_free(a);

    fake *st = fake_start(FM_OK);
    atomic_store(&st->head, real - 10);
    char su[64], sh[64];
    const char *u[] = {fake_url(st, su, sizeof su), anvil_url};
    rpc_config cfg = {.max_head_lag = 3, .breaker_threshold = 2};
    rpc_client *c = client("stale", u, 2, &cfg);
    assert_int_equal(rpc_probe_heads(c, err, sizeof err), 0);
    rpc_endpoint_info info;
    rpc_endpoint_get(c, 0, &info);
    assert_int_equal(info.head, real - 10);
    assert_true(info.stale);
    assert_true(rpc_best_head(c, NULL) >= real);
    int before = atomic_load(&st->requests);
    uint64_t bn = 0;
    assert_int_equal(rpc_block_number(c, &bn, err, sizeof err), 0);
    assert_true(bn >= real);
    /* A stale answer is a failure: it moved to anvil. */
    assert_true(err_count("stale", 0, fake_host(st, sh, sizeof sh), "stale") >= 1.0);
    /* Head-sensitive eth_call skips the stale endpoint; chainId still uses it. */
    before = atomic_load(&st->requests);
    uint8_t *out = NULL;
    size_t outlen;
    rpc_error e;
    rpc_error_init(&e);
    assert_int_equal(rpc_eth_call(c, "0x0000000000000000000000000000000000000001", "0x",
                                  RPC_BLOCK_LATEST, &out, &outlen, &e),
                     0);
    free(out);
    assert_int_equal(atomic_load(&st->requests), before);
    uint64_t id;
    assert_int_equal(rpc_chain_id(c, &id, err, sizeof err), 0);
    assert_int_equal(atomic_load(&st->requests), before + 1);
    /* Caught up: no longer stale. */
    atomic_store(&st->head, real + 20);
    assert_int_equal(rpc_probe_heads(c, err, sizeof err), 0);
    rpc_endpoint_get(c, 0, &info);
    assert_false(info.stale);
    rpc_endpoint_get(c, 1, &info);
    assert_true(info.stale);
    rpc_client_free(c);
    fake_stop(st);
}

static void test_anvil_killed(void **state)
{
    (void)state;
    int pa = port_base + 4, pb = port_base + 5;
    pid_t a = spawn_anvil(pa), b = spawn_anvil(pb);
    char ua[64], ub[64], ha[64];
    snprintf(ua, sizeof ua, "http://127.0.0.1:%d", pa);
    snprintf(ub, sizeof ub, "http://127.0.0.1:%d", pb);
    snprintf(ha, sizeof ha, "127.0.0.1:%d", pa);
    const char *u[] = {ua, ub};
    rpc_config cfg = {.breaker_threshold = 2, .breaker_cooldown_ms = 10000};
    rpc_client *c = client("killed", u, 2, &cfg);
    char err[UTIL_ERRLEN];
    uint64_t id;
    for (int i = 0; i < 5; i++)
        assert_int_equal(rpc_chain_id(c, &id, err, sizeof err), 0);
    rpc_endpoint_info ia, ib;
    rpc_endpoint_get(c, 0, &ia);
    rpc_endpoint_get(c, 1, &ib);
    assert_int_equal(ia.requests, 5);
    assert_int_equal(ib.requests, 0);
    kill_anvil(a);
    for (int i = 0; i < 5; i++) {
        if (rpc_chain_id(c, &id, err, sizeof err) != 0)
            fail_msg("call %d after kill: %s", i, err);
    }
    rpc_endpoint_get(c, 0, &ia);
    rpc_endpoint_get(c, 1, &ib);
    assert_int_equal(ia.breaker, RPC_BREAKER_OPEN);
    assert_int_equal(ia.requests, 7); /* two failures, then skipped */
    assert_int_equal(ib.requests, 5);
    assert_true(err_count("killed", 0, ha, "connect") == 2.0);
    rpc_client_free(c);
    kill_anvil(b);
}

typedef struct {
    rpc_client *c;
    int ok;
} thr_arg;

static void *hammer(void *p)
{
    thr_arg *t = p;
    for (int i = 0; i < 40; i++) {
        uint64_t v;
        rpc_header h;
        if (rpc_chain_id(t->c, &v, NULL, 0) == 0 && v == 31337 &&
            rpc_get_block_header(t->c, 0, &h, NULL, 0) == 0 && h.number == 0)
            t->ok++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    const char *u[] = {anvil_url};
    rpc_client *c = client("threads", u, 1, NULL);
    pthread_t th[4];
    thr_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thr_arg){c, 0};
        pthread_create(&th[i], NULL, hammer, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].ok, 40);
    }
    rpc_endpoint_info info;
    rpc_endpoint_get(c, 0, &info);
    assert_int_equal(info.requests, 320);
    rpc_client_free(c);
}

int main(void)
{
    const char *pb = getenv("PAIMON_TEST_PORT_BASE");
    const char *ap = getenv("PAIMON_ANVIL_PORT");
    port_base = pb ? atoi(pb) : 17100;
    snprintf(anvil_url, sizeof anvil_url, "http://127.0.0.1:%s", ap ? ap : "8545");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_anvil_typed),
        cmocka_unit_test(test_anvil_call_revert_and_tx),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_failover_kinds),
        cmocka_unit_test(test_too_large_keeps_breaker_closed),
        cmocka_unit_test(test_breaker),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_stale_tip),
        cmocka_unit_test(test_anvil_killed),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
