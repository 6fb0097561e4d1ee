/* test_heads: the new-heads source against the harness's real anvil ($PAIMON_ANVIL_PORT).
 * The WebSocket goes through a small TCP proxy in this file (port base+6) so a test can
 * cut it while HTTP keeps working: heads arrive over the WS for mined blocks, polling
 * takes over while the WS is down and hands back when it returns, jumps are filled with
 * the missing headers in order, repeats are dropped, a resume point is honoured and a full
 * queue loses nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "heads.h"
#include "log.h"
#include "rpc.h"
#include "util.h"

static char anvil_url[64];
static int anvil_port, proxy_port;
static rpc_client *rpc;

/* ------------------------------------------------------------------ TCP proxy */

#define MAXP 8
static struct {
    pthread_t th;
    atomic_int want_up, is_up, stop;
    int lfd;
    int a[MAXP], b[MAXP]; /* client side, anvil side */
} px;

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 8)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void px_close_all(void)
{
    for (int i = 0; i < MAXP; i++) {
        if (px.a[i] >= 0) {
            close(px.a[i]);
            close(px.b[i]);
            px.a[i] = px.b[i] = -1;
        }
    }
    if (px.lfd >= 0)
        close(px.lfd);
    px.lfd = -1;
}

static void *px_run(void *arg)
{
    (void)arg;
    while (!atomic_load(&px.stop)) {
        int want = atomic_load(&px.want_up);
        if (!want && px.lfd >= 0)
            px_close_all();
        if (want && px.lfd < 0)
            px.lfd = listen_on(proxy_port);
        atomic_store(&px.is_up, px.lfd >= 0);
        struct pollfd p[1 + 2 * MAXP];
        p[0].fd = px.lfd;
        p[0].events = POLLIN;
        for (int i = 0; i < MAXP; i++) {
            p[1 + 2 * i].fd = px.a[i];
            p[2 + 2 * i].fd = px.b[i];
            p[1 + 2 * i].events = p[2 + 2 * i].events = POLLIN;
        }
        if (poll(p, 1 + 2 * MAXP, 20) <= 0)
            continue;
        if (px.lfd >= 0 && (p[0].revents & POLLIN)) {
            int c = accept(px.lfd, NULL, NULL);
            int u = c >= 0 ? connect_to(anvil_port) : -1;
            int placed = 0;
            for (int i = 0; u >= 0 && i < MAXP && !placed; i++) {
                if (px.a[i] < 0) {
                    px.a[i] = c;
                    px.b[i] = u;
                    placed = 1;
                }
            }
            if (!placed) {
                if (c >= 0)
                    close(c);
                if (u >= 0)
                    close(u);
            }
        }
        for (int i = 0; i < MAXP; i++) {
            for (int side = 0; side < 2; side++) {
                int from = side ? px.b[i] : px.a[i], to = side ? px.a[i] : px.b[i];
                if (from < 0 || !(p[1 + 2 * i + side].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                char buf[65536];
                ssize_t n = recv(from, buf, sizeof buf, 0);
                if (n <= 0 || send(to, buf, (size_t)n, MSG_NOSIGNAL) != n) {
                    close(px.a[i]);
                    close(px.b[i]);
                    px.a[i] = px.b[i] = -1;
                    break;
                }
            }
        }
    }
    px_close_all();
    return NULL;
}

static void px_set(int up)
{
    atomic_store(&px.want_up, up);
    for (int i = 0; i < 100 && atomic_load(&px.is_up) != up; i++)
        util_sleep_ms(10);
    assert_int_equal(atomic_load(&px.is_up), up);
}

/* ------------------------------------------------------------------ helpers */

static void mine(unsigned n)
{
    char err[UTIL_ERRLEN];
    cJSON *p = cJSON_CreateArray();
    char hx[24];
    snprintf(hx, sizeof hx, "0x%x", n);
    cJSON_AddItemToArray(p, cJSON_CreateString(hx));
    cJSON *r = rpc_call(rpc, "anvil_mine", p, err, sizeof err);
    if (!r)
        fail_msg("anvil_mine: %s", err);
    cJSON_Delete(r);
}

static uint64_t head_now(void)
{
    uint64_t n = 0;
    char err[UTIL_ERRLEN];
    if (rpc_block_number(rpc, &n, err, sizeof err))
        fail_msg("blockNumber: %s", err);
    return n;
}

/* Collects events until `want` arrived or timeout; returns how many. */
static size_t collect(heads *h, heads_event *out, size_t want, int64_t timeout_ms)
{
    size_t got = 0;
    int64_t end = util_mono_ms() + timeout_ms;
    while (got < want && util_mono_ms() < end) {
        struct pollfd p = {.fd = heads_fd(h), .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        while (got < want && heads_pop(h, &out[got]))
            got++;
    }
    return got;
}

static void drain(heads *h, int64_t quiet_ms)
{
    heads_event ev;
    int64_t end = util_mono_ms() + quiet_ms;
    while (util_mono_ms() < end) {
        if (heads_pop(h, &ev))
            end = util_mono_ms() + quiet_ms;
        else
            util_sleep_ms(10);
    }
}

/* Events must be consecutive and chained by parent hash. */
static void assert_chain(const heads_event *ev, size_t n, uint64_t first)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ev[i].header.number, first + i);
        if (i)
            assert_memory_equal(ev[i].header.parent_hash, ev[i - 1].header.hash, 32);
    }
}

static int wait_ws(heads *h, int subscribed, int64_t timeout_ms)
{
    heads_stats st;
    int64_t end = util_mono_ms() + timeout_ms;
    do {
        heads_get_stats(h, &st);
        if (st.ws_subscribed == subscribed)
            return 1;
        util_sleep_ms(20);
    } while (util_mono_ms() < end);
    return 0;
}

static heads *start(int ws, int64_t poll_ms, size_t cap, int resume, uint64_t after)
{
    char wsu[64];
    snprintf(wsu, sizeof wsu, "ws://127.0.0.1:%d", proxy_port);
    heads_config cfg = {
        .ws_url = ws ? wsu : NULL,
        .rpc = rpc,
        .name = "test",
        .poll_interval_ms = poll_ms,
        .ws_idle_ms = 60000,
        .reconnect_min_ms = 100,
        .reconnect_max_ms = 400,
        .queue_cap = cap,
        .resume = resume,
        .resume_after = after,
    };
    char err[UTIL_ERRLEN];
    heads *h = heads_new(&cfg, err, sizeof err);
    if (!h)
        fail_msg("heads_new: %s", err);
    return h;
}

/* ------------------------------------------------------------------ tests */

static void test_config(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    heads_config cfg = {.ws_url = "http://127.0.0.1:1", .rpc = rpc};
    assert_null(heads_new(&cfg, err, sizeof err));
    cfg.ws_url = NULL;
    cfg.rpc = NULL;
    assert_null(heads_new(&cfg, err, sizeof err));
}

static void test_ws_heads(void **state)
{
    (void)state;
    heads *h = start(1, 200, 0, 0, 0);
    assert_true(wait_ws(h, 1, 5000));
    drain(h, 400);
    uint64_t base = head_now();
    heads_event ev[8];
    for (int i = 0; i < 3; i++) {
        mine(1);
        util_sleep_ms(50);
    }
    assert_int_equal(collect(h, ev, 3, 5000), 3);
    assert_chain(ev, 3, base + 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ev[i].source, HEADS_SRC_WS);
    /* Nothing twice although the poller may also have seen them. */
    assert_int_equal(collect(h, ev, 1, 600), 0);
    heads_stats st;
    heads_get_stats(h, &st);
    assert_int_equal(st.last_number, base + 3);
    assert_true(st.from_ws >= 3);
    heads_free(h);
}

static void test_ws_down_polling_then_back(void **state)
{
    (void)state;
    heads *h = start(1, 150, 0, 0, 0);
    assert_true(wait_ws(h, 1, 5000));
    drain(h, 400);
    uint64_t base = head_now();
    heads_event ev[32];
    size_t n = 0;

    px_set(0);
    assert_true(wait_ws(h, 0, 5000));
    for (int i = 0; i < 4; i++) {
        mine(1);
        util_sleep_ms(250);
    }
    n += collect(h, ev + n, 4, 5000);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_true(ev[i].source == HEADS_SRC_POLL || ev[i].source == HEADS_SRC_GAP);
    heads_stats st;
    heads_get_stats(h, &st);
    assert_int_equal(st.ws_subscribed, 0);
    assert_int_equal(st.ws_connects, 1);

    px_set(1);
    assert_true(wait_ws(h, 1, 5000));
    heads_get_stats(h, &st);
    assert_int_equal(st.ws_connects, 2);
    mine(1);
    util_sleep_ms(50);
    mine(1);
    n += collect(h, ev + n, 2, 5000);
    assert_int_equal(n, 6);
    assert_chain(ev, n, base + 1);
    /* Back on the socket: the new heads come from it (the poller is idle again). */
    assert_int_equal(ev[5].source, HEADS_SRC_WS);
    heads_free(h);
}

static void test_gap_fill_and_dedup(void **state)
{
    (void)state;
    heads *h = start(0, 300, 0, 0, 0);
    heads_event ev[32];
    assert_int_equal(collect(h, ev, 1, 3000), 1);
    uint64_t first = ev[0].header.number;
    assert_int_equal(ev[0].source, HEADS_SRC_POLL);
    mine(6); /* one poll sees a jump of 6 */
    assert_int_equal(collect(h, ev, 6, 5000), 6);
    assert_chain(ev, 6, first + 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ev[i].source, HEADS_SRC_GAP);
    assert_int_equal(ev[5].source, HEADS_SRC_POLL);
    /* Polling the same tip again delivers nothing but counts duplicates. */
    util_sleep_ms(700);
    assert_int_equal(collect(h, ev, 1, 100), 0);
    heads_stats st;
    heads_get_stats(h, &st);
    assert_true(st.duplicates >= 1);
    assert_int_equal(st.from_gap, 5);
    heads_free(h);
}

static void test_resume_and_backpressure(void **state)
{
    (void)state;
    uint64_t now = head_now();
    /* Resume from a checkpoint 10 blocks back, through a queue of 3. */
    heads *h = start(0, 100, 3, 1, now - 10);
    util_sleep_ms(500); /* the queue fills and the thread waits for room */
    heads_stats st;
    heads_get_stats(h, &st);
    assert_int_equal(st.queued, 3);
    heads_event ev[16];
    size_t n = 0;
    int64_t end = util_mono_ms() + 8000;
    while (n < 10 && util_mono_ms() < end) {
        if (heads_pop(h, &ev[n])) /* slow consumer */
            n++;
        else
            util_sleep_ms(20);
    }
    assert_int_equal(n, 10);
    assert_chain(ev, 10, now - 9);
    heads_free(h);
}

int main(void)
{
    const char *pb = getenv("PAIMON_TEST_PORT_BASE");
    const char *ap = getenv("PAIMON_ANVIL_PORT");
    anvil_port = ap ? atoi(ap) : 8545;
    proxy_port = (pb ? atoi(pb) : 17100) + 6;
    snprintf(anvil_url, sizeof anvil_url, "http://127.0.0.1:%d", anvil_port);
    signal(SIGPIPE, SIG_IGN);
    log_init("test_heads", NULL, NULL, 0); /* PAIMON_LOG_LEVEL=debug shows lws errors */
    const char *u[] = {anvil_url};
    rpc_config cfg = {.urls = u, .nurls = 1, .name = "heads-test", .timeout_ms = 3000};
    char err[UTIL_ERRLEN];
    rpc = rpc_client_new(&cfg, err, sizeof err);
    if (!rpc) {
        fprintf(stderr, "rpc_client_new: %s\n", err);
        return 1;
    }
    px.lfd = -1;
    for (int i = 0; i < MAXP; i++)
        px.a[i] = px.b[i] = -1;
    atomic_store(&px.want_up, 1);
    pthread_create(&px.th, NULL, px_run, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_ws_heads),
        cmocka_unit_test(test_ws_down_polling_then_back),
        cmocka_unit_test(test_gap_fill_and_dedup),
        cmocka_unit_test(test_resume_and_backpressure),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    atomic_store(&px.stop, 1);
    pthread_join(px.th, NULL);
    rpc_client_free(rpc);
    return rc;
}
