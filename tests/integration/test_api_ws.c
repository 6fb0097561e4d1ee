/* The real paimon-api WebSocket server (services/api/ws.h) against the harness Redis and
 * PostgreSQL, driven by a small hand-written RFC 6455 client (not libwebsockets, so
 * the server is checked against an independent implementation): token auth, bad and
 * revoked tokens closed with a reason, channel filtering, fan-out of entries published
 * on the `updates` topic by the bus, resume after a reconnect with exactly the missed
 * entries in order, and a slow client dropped while a fast one gets everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus.h"
#include "envelope.h"
#include "harness.h"
#include "migrate.h"
#include "util.h"

static int http_port, ws_port;
static pid_t daemon_pid;

/* ---------- REST: just enough to log in ---------- */

static long rest(const char *method, const char *path, const char *token, const char *body,
                 cJSON **out)
{
    th_resp b;
    char url[512], auth[4200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", http_port, path);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        hl = curl_slist_append(hl, auth);
    }
    long st = th_http(&b, method, url, hl, body);
    if (out)
        *out = b.body ? cJSON_Parse(b.body) : NULL;
    free(b.body);
    return st;
}

static void start(const char *extra_env)
{
    char dburl[512];
    const char *admin = th_pg_fresh_db("api_ws");
    PGconn *pg = th_pg_connect(admin);
    assert_int_equal(th_pg_migrate(pg, "api"), 0);
    PQfinish(pg);
    snprintf(dburl, sizeof dburl, "postgresql://paimon_api@127.0.0.1:%d/api_ws", th_pg_port());
    redisFree(th_redis_fresh());
    http_port = th_port(60);
    ws_port = th_port(61);
    char log[512], hp[16], wp[16];
    const char *rd = getenv("PAIMON_TEST_RUN_DIR");
    snprintf(log, sizeof log, "%s/logs/api-ws.log", rd ? rd : "/tmp");
    snprintf(hp, sizeof hp, "%d", http_port);
    snprintf(wp, sizeof wp, "%d", ws_port);
    daemon_pid = fork();
    assert_true(daemon_pid >= 0);
    if (daemon_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("PAIMON_REDIS_URL", th_redis_url(), 1);
        setenv("PAIMON_DATABASE_URL", dburl, 1);
        setenv("PAIMON_HTTP_PORT", hp, 1);
        setenv("PAIMON_WS_PORT", wp, 1);
        setenv("PAIMON_API_THREADS", "1", 1);
        setenv("PAIMON_JWT_SECRET", "test-secret-test-secret-test-secret!", 1);
        setenv("PAIMON_BOOTSTRAP_ADMIN_EMAIL", "admin@example.com", 1);
        setenv("PAIMON_BOOTSTRAP_ADMIN_PASSWORD", "admin-password-1", 1);
        setenv("PAIMON_ARGON2_T", "1", 1);
        setenv("PAIMON_ARGON2_M_KIB", "256", 1);
        setenv("PAIMON_RATE_LIMIT_BURST", "10000", 1);
        setenv("PAIMON_OPENAPI_PATH", th_repo_path("schemas/openapi.yaml"), 1);
        if (extra_env)
            putenv((char *)extra_env);
        execl(th_bin("paimon-api"), "paimon-api", (char *)NULL);
        _exit(127);
    }
    long st = 0;
    int64_t end = util_mono_ms() + 10000;
    while ((st = rest("GET", "/health/ready", NULL, NULL, NULL)) != 200 && util_mono_ms() < end)
        util_sleep_ms(50);
    assert_int_equal(st, 200);
}

static int stop(void **st)
{
    (void)st;
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        int status = 0;
        waitpid(daemon_pid, &status, 0);
        daemon_pid = 0;
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    return 0;
}

static char *login(void)
{
    cJSON *j = NULL;
    long st = rest("POST", "/api/v1/auth/login", NULL,
                   "{\"email\":\"admin@example.com\",\"password\":\"admin-password-1\"}", &j);
    assert_int_equal(st, 200);
    char *t =
        strdup(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "accessToken")->valuestring);
    cJSON_Delete(j);
    return t;
}

/* ---------- a minimal RFC 6455 client ---------- */

static int read_full(int fd, void *p, size_t n, int timeout_ms)
{
    size_t got = 0;
    int64_t end = util_mono_ms() + timeout_ms;
    while (got < n) {
        int left = (int)(end - util_mono_ms());
        if (left <= 0)
            return -1;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, left) <= 0)
            return -1;
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int ws_connect_rcvbuf(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ws_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    uint8_t nonce[16];
    assert_int_equal(util_random(nonce, sizeof nonce), 0);
    char key[32], req[512];
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce);
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     ws_port, key);
    assert_int_equal(write(fd, req, (size_t)n), n);
    char resp[2048];
    size_t len = 0;
    while (len < sizeof resp - 1) {
        assert_int_equal(read_full(fd, resp + len, 1, 5000), 0);
        len++;
        resp[len] = '\0';
        if (len >= 4 && strcmp(resp + len - 4, "\r\n\r\n") == 0)
            break;
    }
    assert_non_null(strstr(resp, " 101 "));
    /* the accept value proves the server did the RFC 6455 handshake */
    char cat[128];
    snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    unsigned char sha[EVP_MAX_MD_SIZE], want[64];
    unsigned int shalen = 0;
    EVP_Digest(cat, strlen(cat), sha, &shalen, EVP_sha1(), NULL);
    EVP_EncodeBlock(want, sha, (int)shalen);
    char expect[128];
    snprintf(expect, sizeof expect, "sec-websocket-accept: %s", want);
    assert_non_null(strcasestr(resp, expect));
    return fd;
}

static int ws_connect(void)
{
    return ws_connect_rcvbuf(0);
}

static void ws_send(int fd, const char *text)
{
    size_t n = strlen(text);
    uint8_t hdr[14];
    size_t h = 0;
    hdr[h++] = 0x81;
    if (n < 126) {
        hdr[h++] = (uint8_t)(0x80 | n);
    } else {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(n >> 8);
        hdr[h++] = (uint8_t)n;
    }
    uint8_t mask[4];
    util_random(mask, 4);
    memcpy(hdr + h, mask, 4);
    h += 4;
    uint8_t *frame = malloc(h + n);
    memcpy(frame, hdr, h);
    for (size_t i = 0; i < n; i++)
        frame[h + i] = (uint8_t)text[i] ^ mask[i % 4];
    assert_int_equal(write(fd, frame, h + n), (ssize_t)(h + n));
    free(frame);
}

typedef struct {
    int opcode; /* 1 text, 8 close, -1 timeout / EOF */
    int close_code;
    char *data; /* text payload or close reason; owned */
} frame;

static frame ws_recv(int fd, int timeout_ms)
{
    frame f = {-1, 0, NULL};
    uint8_t h[2];
    if (read_full(fd, h, 2, timeout_ms) != 0)
        return f;
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        uint8_t e[2];
        if (read_full(fd, e, 2, timeout_ms) != 0)
            return f;
        n = (uint64_t)e[0] << 8 | e[1];
    } else if (n == 127) {
        uint8_t e[8];
        if (read_full(fd, e, 8, timeout_ms) != 0)
            return f;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | e[i];
    }
    assert_true((h[0] & 0x80) != 0); /* the server never fragments its messages */
    assert_true((h[1] & 0x80) == 0); /* and never masks */
    char *p = malloc(n + 1);
    if (read_full(fd, p, n, timeout_ms) != 0) {
        free(p);
        return f;
    }
    p[n] = '\0';
    f.opcode = h[0] & 0x0f;
    if (f.opcode == 9 || f.opcode == 10) { /* ping / pong: not what callers wait for */
        free(p);
        return ws_recv(fd, timeout_ms);
    }
    if (f.opcode == 8 && n >= 2) {
        f.close_code = (uint8_t)p[0] << 8 | (uint8_t)p[1];
        memmove(p, p + 2, n - 1);
    }
    f.data = p;
    return f;
}

/* Next text message as JSON, failing the test on anything else. */
static cJSON *ws_json(int fd)
{
    frame f = ws_recv(fd, 5000);
    if (f.opcode != 1)
        fprintf(stderr, "expected text, got opcode %d code %d %s\n", f.opcode, f.close_code,
                f.data ? f.data : "");
    assert_int_equal(f.opcode, 1);
    cJSON *j = cJSON_Parse(f.data);
    free(f.data);
    assert_non_null(j);
    return j;
}

static const char *jstr(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void expect_type(int fd, const char *type)
{
    cJSON *j = ws_json(fd);
    assert_string_equal(jstr(j, "type"), type);
    cJSON_Delete(j);
}

static void auth(int fd, const char *token)
{
    char m[4300];
    snprintf(m, sizeof m, "{\"op\":\"auth\",\"token\":\"%s\"}", token);
    ws_send(fd, m);
    expect_type(fd, "authenticated");
}

static void expect_close(int fd, int code, const char *reason_part)
{
    frame f;
    do {
        free(NULL);
        f = ws_recv(fd, 5000);
        if (f.opcode == 1)
            free(f.data);
    } while (f.opcode == 1);
    assert_int_equal(f.opcode, 8);
    assert_int_equal(f.close_code, code);
    assert_non_null(strstr(f.data, reason_part));
    free(f.data);
}

/* Publishes through the bus exactly as the services do; returns the stream id. */
static void publish(redisContext *rc, const char *type, const char *tag, size_t pad, char *id_out)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "tag", tag);
    if (pad) {
        char *fill = malloc(pad + 1);
        memset(fill, 'x', pad);
        fill[pad] = '\0';
        cJSON_AddStringToObject(p, "fill", fill);
        free(fill);
    }
    char id[64];
    snprintf(id, sizeof id, "test:%s", tag);
    envelope *e = envelope_new(id, type, "test", NULL, p);
    char err[UTIL_ERRLEN];
    assert_int_equal(bus_publish(rc, "updates", BUS_NORMAL, e, 0, err, sizeof err), 0);
    envelope_free(e);
    redisReply *r = redisCommand(rc, "XREVRANGE paimon:updates:normal + - COUNT 1");
    assert_true(r && r->elements == 1);
    if (id_out)
        strcpy(id_out, r->element[0]->element[0]->str);
    freeReplyObject(r);
}

/* Checks the next message is the event `tag` on `channel` (and its stream id). */
static void expect_event(int fd, const char *channel, const char *tag, const char *id)
{
    cJSON *j = ws_json(fd);
    assert_string_equal(jstr(j, "type"), "event");
    assert_string_equal(jstr(j, "channel"), channel);
    if (id)
        assert_string_equal(jstr(j, "id"), id);
    const cJSON *ev = cJSON_GetObjectItem(j, "event");
    assert_string_equal(jstr(cJSON_GetObjectItem(ev, "payload"), "tag"), tag);
    assert_string_equal(jstr(ev, "source"), "test");
    cJSON_Delete(j);
}

/* Proves nothing else is queued: the pong must be the very next message. */
static void expect_nothing_more(int fd)
{
    ws_send(fd, "{\"op\":\"ping\"}");
    expect_type(fd, "pong");
}

static void test_fanout_and_resume(void **st)
{
    (void)st;
    start(NULL);
    char *tok = login();
    redisContext *rc = redisConnect("127.0.0.1", th_redis_port());
    char before[64];
    publish(rc, "risk.metrics", "r0", 0, before); /* before anyone connected */

    int fd = ws_connect();
    auth(fd, tok);
    ws_send(fd, "{\"op\":\"subscribe\",\"channels\":[\"risk\",\"alerts\"]}");
    cJSON *j = ws_json(fd);
    assert_string_equal(jstr(j, "type"), "subscribed");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "channels")), 2);
    cJSON_Delete(j);

    char id1[64], id2[64], id3[64];
    publish(rc, "risk.metrics", "r1", 0, id1);
    publish(rc, "redemption.updated", "x1", 0, NULL); /* not subscribed */
    publish(rc, "alert.raised", "a1", 0, id2);
    publish(rc, "something.else", "u1", 0, NULL); /* no channel at all */
    publish(rc, "risk.metrics", "r2", 0, id3);
    expect_event(fd, "risk", "r1", id1);
    expect_event(fd, "alerts", "a1", id2);
    expect_event(fd, "risk", "r2", id3);
    expect_nothing_more(fd);
    close(fd);

    /* while the client is away */
    char m1[64], m2[64], m3[64];
    publish(rc, "risk.metrics", "r3", 0, m1);
    publish(rc, "approval.ticket_created", "p1", 0, NULL);
    publish(rc, "alert.raised", "a2", 0, m2);
    publish(rc, "risk.metrics", "r4", 0, m3);

    fd = ws_connect();
    auth(fd, tok);
    char sub[256];
    snprintf(sub, sizeof sub,
             "{\"op\":\"subscribe\",\"channels\":[\"risk\",\"alerts\"],\"lastEventId\":\"%s\"}",
             id3);
    ws_send(fd, sub);
    expect_type(fd, "subscribed");
    expect_event(fd, "risk", "r3", m1);
    expect_event(fd, "alerts", "a2", m2);
    expect_event(fd, "risk", "r4", m3);
    j = ws_json(fd);
    assert_string_equal(jstr(j, "type"), "caught_up");
    assert_string_equal(jstr(j, "lastEventId"), m3);
    cJSON_Delete(j);
    /* then live again, without a duplicate of the replayed entries */
    char l1[64];
    publish(rc, "alert.raised", "a3", 0, l1);
    expect_event(fd, "alerts", "a3", l1);
    expect_nothing_more(fd);

    /* a bad request on an authenticated socket is an error message, not a close */
    ws_send(fd, "{\"op\":\"subscribe\",\"channels\":[\"nope\"]}");
    j = ws_json(fd);
    assert_string_equal(jstr(j, "type"), "error");
    assert_string_equal(jstr(j, "code"), "invalid_channels");
    cJSON_Delete(j);
    ws_send(fd, "{\"op\":\"subscribe\",\"channels\":[\"fund\"],\"lastEventId\":\"12x\"}");
    j = ws_json(fd);
    assert_string_equal(jstr(j, "code"), "invalid_last_event_id");
    cJSON_Delete(j);
    close(fd);
    redisFree(rc);
    free(tok);
}

static void test_bad_tokens_closed_with_reason(void **st)
{
    (void)st;
    start("PAIMON_WS_AUTH_TIMEOUT=600ms");
    int fd = ws_connect();
    ws_send(fd, "{\"op\":\"auth\",\"token\":\"not-a-jwt\"}");
    expect_close(fd, 4401, "invalid token");
    close(fd);

    fd = ws_connect();
    ws_send(fd, "{\"op\":\"subscribe\",\"channels\":[\"risk\"]}");
    expect_close(fd, 4401, "authentication required");
    close(fd);

    /* a tampered signature */
    char *tok = login();
    char bad[4200];
    snprintf(bad, sizeof bad, "{\"op\":\"auth\",\"token\":\"%s\"}", tok);
    char *sig = strrchr(bad, '.') + 3;
    *sig = *sig == 'A' ? 'B' : 'A';
    fd = ws_connect();
    ws_send(fd, bad);
    expect_close(fd, 4401, "invalid token");
    close(fd);

    /* silence past the auth timeout */
    fd = ws_connect();
    expect_close(fd, 4408, "authentication timeout");
    close(fd);

    /* logout revokes the token for the WebSocket too */
    fd = ws_connect();
    auth(fd, tok); /* still fine */
    close(fd);
    assert_int_equal(rest("POST", "/api/v1/auth/logout", tok, "{}", NULL), 200);
    fd = ws_connect();
    snprintf(bad, sizeof bad, "{\"op\":\"auth\",\"token\":\"%s\"}", tok);
    ws_send(fd, bad);
    expect_close(fd, 4401, "invalid token");
    close(fd);
    free(tok);
}

enum { SLOW_N = 600, SLOW_PAD = 16384 };

/* Publishes while the test reads, as producers do; no cmocka asserts off the main
 * thread, so it counts its failures instead. */
static void *publisher(void *arg)
{
    int *failures = arg;
    redisContext *rc = redisConnect("127.0.0.1", th_redis_port());
    char *fill = malloc(SLOW_PAD + 1);
    memset(fill, 'x', SLOW_PAD);
    fill[SLOW_PAD] = '\0';
    for (int i = 0; i < SLOW_N; i++) {
        char tag[16], id[32], err[UTIL_ERRLEN];
        snprintf(tag, sizeof tag, "f%d", i);
        snprintf(id, sizeof id, "test:%s", tag);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "tag", tag);
        cJSON_AddStringToObject(p, "fill", fill);
        envelope *e = envelope_new(id, "fund.nav", "test", NULL, p);
        if (!rc || bus_publish(rc, "updates", BUS_NORMAL, e, 0, err, sizeof err) != 0)
            (*failures)++;
        envelope_free(e);
        util_sleep_ms(2); /* ~8 MB/s: a reader that keeps up is never the slow one */
    }
    free(fill);
    if (rc)
        redisFree(rc);
    return NULL;
}

static void test_slow_client_dropped(void **st)
{
    (void)st;
    start("PAIMON_WS_QUEUE=8");
    char *tok = login();
    redisContext *rc = redisConnect("127.0.0.1", th_redis_port());
    /* the slow one reads nothing and advertises a tiny window */
    int slow = ws_connect_rcvbuf(4096);
    auth(slow, tok);
    ws_send(slow, "{\"op\":\"subscribe\",\"channels\":[\"fund\"]}");
    expect_type(slow, "subscribed");
    int fast = ws_connect();
    auth(fast, tok);
    ws_send(fast, "{\"op\":\"subscribe\",\"channels\":[\"fund\"]}");
    expect_type(fast, "subscribed");

    /* far more than the kernel buffers hold plus an 8-message queue */
    enum { N = SLOW_N };
    int failures = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, publisher, &failures), 0);
    for (int i = 0; i < N; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "f%d", i);
        expect_event(fast, "fund", tag, NULL);
    }
    pthread_join(th, NULL);
    assert_int_equal(failures, 0);
    expect_nothing_more(fast);

    /* the slow client got a prefix in order, then the close */
    int got = 0;
    frame f;
    for (;;) {
        f = ws_recv(slow, 5000);
        if (f.opcode != 1)
            break;
        cJSON *j = cJSON_Parse(f.data);
        char tag[16];
        snprintf(tag, sizeof tag, "f%d", got);
        assert_string_equal(
            jstr(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "event"), "payload"), "tag"), tag);
        cJSON_Delete(j);
        free(f.data);
        got++;
    }
    assert_int_equal(f.opcode, 8);
    assert_int_equal(f.close_code, 4008);
    assert_non_null(strstr(f.data, "slow consumer"));
    free(f.data);
    assert_true(got < N);
    close(slow);
    close(fast);
    redisFree(rc);
    free(tok);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fanout_and_resume, stop),
        cmocka_unit_test_teardown(test_bad_tokens_closed_with_reason, stop),
        cmocka_unit_test_teardown(test_slow_client_dropped, stop),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
