/* Integration tests of life: real signals to forked children (a slow hook finishes
 * and the child exits 0 within the deadline; a late hook makes life_run return 1; a
 * hook that hangs forever is cut off by the watchdog at deadline + grace), plus
 * in-process stops from another thread and before the loop starts. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "life.h"
#include "log.h"
#include "util.h"

static int out_fd = -1; /* child -> parent progress pipe */

static void put(char c)
{
    if (write(out_fd, &c, 1) != 1)
        _exit(99);
}

static void hook_a(void *ud)
{
    (void)ud;
    put('A');
}

static void hook_slow(void *ud)
{
    util_sleep_ms((int64_t)(intptr_t)ud);
    put('S');
}

static void hook_hang(void *ud)
{
    (void)ud;
    put('H');
    for (;;)
        pause();
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    put('R');
}

typedef struct {
    int64_t deadline_ms, grace_ms;
    int64_t slow_ms; /* 0 = no slow hook */
    int hang;
} child_plan;

/* Runs in the child: never returns. */
static void child_main(const child_plan *p)
{
    char err[UTIL_ERRLEN];
    life *l = life_new("test-life", err, sizeof err);
    if (!l)
        _exit(98);
    life_set_deadline(l, p->deadline_ms, p->grace_ms);
    life_on_stop(l, hook_a, NULL);
    if (p->slow_ms)
        life_on_stop(l, hook_slow, (void *)(intptr_t)p->slow_ms);
    if (p->hang)
        life_on_stop(l, hook_hang, NULL);
    struct timeval zero = {0, 0};
    event_base_once(life_base(l), -1, EV_TIMEOUT, on_ready, NULL, &zero);
    int rc = life_run(l);
    put('D');
    life_free(l);
    _exit(rc);
}

/* Reads one byte with a timeout; -1 on timeout / EOF. */
static int get_byte(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return -1;
    char c;
    return read(fd, &c, 1) == 1 ? c : -1;
}

typedef struct {
    int status;
    int64_t elapsed_ms; /* from SIGTERM to exit */
    char trace[16];     /* bytes the child wrote after 'R' */
} child_result;

static void run_child(const child_plan *plan, child_result *res)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        out_fd = fds[1];
        child_main(plan);
    }
    close(fds[1]);
    assert_int_equal(get_byte(fds[0], 5000), 'R');
    int64_t t0 = util_mono_ms();
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    pid_t w = 0;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && util_mono_ms() - t0 < 10000)
        util_sleep_ms(5);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("child did not exit within 10 s");
    }
    res->elapsed_ms = util_mono_ms() - t0;
    res->status = status;
    size_t n = 0;
    int c;
    while (n + 1 < sizeof res->trace && (c = get_byte(fds[0], 0)) >= 0)
        res->trace[n++] = (char)c;
    res->trace[n] = '\0';
    close(fds[0]);
}

static void test_sigterm_slow_hook_exits_zero(void **state)
{
    (void)state;
    child_plan p = {.deadline_ms = 2000, .grace_ms = 500, .slow_ms = 300};
    child_result r;
    run_child(&p, &r);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 0);
    /* reverse order: the slow hook (registered last) first, then A, then life_run returned */
    assert_string_equal(r.trace, "SAD");
    assert_true(r.elapsed_ms >= 300);
    assert_true(r.elapsed_ms < 2000);
}

static void test_late_hook_returns_nonzero(void **state)
{
    (void)state;
    child_plan p = {.deadline_ms = 150, .grace_ms = 3000, .slow_ms = 400};
    child_result r;
    run_child(&p, &r);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 1);
    /* life_run itself returned (the 'D'), the watchdog did not have to fire */
    assert_string_equal(r.trace, "SAD");
    assert_true(r.elapsed_ms < 3000);
}

static void test_hanging_hook_watchdog(void **state)
{
    (void)state;
    child_plan p = {.deadline_ms = 400, .grace_ms = 200, .hang = 1};
    child_result r;
    run_child(&p, &r);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), LIFE_EXIT_WATCHDOG);
    assert_string_equal(r.trace, "H"); /* A never ran, life_run never returned */
    assert_true(r.elapsed_ms >= 600);
    assert_true(r.elapsed_ms < 600 + 1500);
}

static void test_sigint_also_stops(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        out_fd = fds[1];
        child_plan p = {.deadline_ms = 1000, .grace_ms = 200};
        child_main(&p);
    }
    close(fds[1]);
    assert_int_equal(get_byte(fds[0], 5000), 'R');
    kill(pid, SIGINT);
    assert_int_equal(get_byte(fds[0], 3000), 'A');
    assert_int_equal(get_byte(fds[0], 3000), 'D');
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(fds[0]);
}

/* ---- in-process ---- */

typedef struct {
    int order[4];
    int n;
    life *l;
    int saw_stopping_before;
} rec;

static void rec_hook1(void *ud)
{
    rec *r = ud;
    r->order[r->n++] = 1;
}

static void rec_hook2(void *ud)
{
    rec *r = ud;
    r->order[r->n++] = 2;
}

static void *stopper(void *arg)
{
    rec *r = arg;
    util_sleep_ms(50);
    r->saw_stopping_before = life_stopping(r->l);
    life_request_stop(r->l);
    return NULL;
}

static void test_request_stop_from_thread(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    rec r = {0};
    r.l = life_new("test-life", err, sizeof err);
    assert_non_null(r.l);
    life_on_stop(r.l, rec_hook1, &r);
    life_on_stop(r.l, rec_hook2, &r);
    assert_int_equal(life_stopping(r.l), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stopper, &r), 0);
    int64_t t0 = util_mono_ms();
    assert_int_equal(life_run(r.l), 0);
    assert_true(util_mono_ms() - t0 < 2000);
    pthread_join(th, NULL);
    assert_int_equal(r.saw_stopping_before, 0);
    assert_int_equal(life_stopping(r.l), 1);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.order[0], 2);
    assert_int_equal(r.order[1], 1);
    assert_int_equal(life_run(r.l), -1); /* only once */
    life_free(r.l);
}

static void test_stop_before_run_and_sigpipe(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    rec r = {0};
    r.l = life_new("test-life", err, sizeof err);
    assert_non_null(r.l);
    struct sigaction sa;
    assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
    assert_true(sa.sa_handler == SIG_IGN);
    life_on_stop(r.l, rec_hook1, &r);
    life_request_stop(r.l);
    assert_int_equal(life_stopping(r.l), 1);
    assert_int_equal(life_run(r.l), 0);
    assert_int_equal(r.n, 1);
    life_free(r.l);
    life_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_slow_hook_exits_zero),
        cmocka_unit_test(test_late_hook_returns_nonzero),
        cmocka_unit_test(test_hanging_hook_watchdog),
        cmocka_unit_test(test_sigint_also_stops),
        cmocka_unit_test(test_request_stop_from_thread),
        cmocka_unit_test(test_stop_before_run_and_sigpipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
