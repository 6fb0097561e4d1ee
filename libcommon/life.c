/* life: daemon life cycle — signals, stop hooks, shutdown deadline and watchdog.
 * See life.h. Memory: the life owns its event_base, its events and the hook array. */
#include "life.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/thread.h>

typedef struct {
    void (*fn)(void *);
    void *ud;
} hook;

struct life {
    char service[64];
    struct event_base *base;
    struct event *ev_term, *ev_int, *ev_wake;
    atomic_int stopping;
    int stop_started; /* main thread only */
    int ran;
    int64_t deadline_ms, grace_ms;
    int64_t stop_mono_ms;
    hook *hooks;
    size_t nhooks, caphooks;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int disarmed;
    int watchdog_running;
    pthread_t watchdog;
};

static void *watchdog_main(void *arg)
{
    life *l = arg;
    int64_t fire_ms = l->stop_mono_ms + l->deadline_ms + l->grace_ms;
    struct timespec ts = {.tv_sec = (time_t)(fire_ms / 1000),
                          .tv_nsec = (long)(fire_ms % 1000) * 1000000L};
    pthread_mutex_lock(&l->mu);
    while (!l->disarmed) {
        int rc = pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        if (rc == ETIMEDOUT && !l->disarmed) {
            pthread_mutex_unlock(&l->mu);
            log_error("shutdown deadline passed: forcing exit", "daemon", l->service,
                      "#deadline_ms", LOG_I64(l->deadline_ms), "#grace_ms", LOG_I64(l->grace_ms));
            _exit(LIFE_EXIT_WATCHDOG);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void start_watchdog(life *l)
{
    /* signals must keep going to the threads that handle them, not to this one */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&l->watchdog, NULL, watchdog_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        l->watchdog_running = 1;
    else
        log_warn("no shutdown watchdog: pthread_create failed", "daemon", l->service);
}

static void begin_stop(life *l, const char *reason)
{
    if (l->stop_started)
        return;
    l->stop_started = 1;
    atomic_store(&l->stopping, 1);
    l->stop_mono_ms = util_mono_ms();
    log_info("stopping", "daemon", l->service, "reason", reason);
    start_watchdog(l);
    event_base_loopbreak(l->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    begin_stop(arg, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    begin_stop(arg, "requested");
}

life *life_new(const char *service, char *err, size_t errlen)
{
    /* cross-thread event_active (life_request_stop) needs a locked base */
    if (evthread_use_pthreads() != 0) {
        util_err(err, errlen, "life_new: evthread_use_pthreads failed");
        return NULL;
    }
    life *l = util_calloc(1, sizeof *l);
    util_strlcpy(l->service, service ? service : "daemon", sizeof l->service);
    l->deadline_ms = LIFE_DEFAULT_DEADLINE_MS;
    l->grace_ms = LIFE_DEFAULT_GRACE_MS;
    atomic_init(&l->stopping, 0);
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* same clock as util_mono_ms */
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);

    l->base = event_base_new();
    if (!l->base) {
        util_err(err, errlen, "life_new: event_base_new failed");
        life_free(l);
        return NULL;
    }
    l->ev_term = evsignal_new(l->base, SIGTERM, on_signal, l);
    l->ev_int = evsignal_new(l->base, SIGINT, on_signal, l);
    l->ev_wake = event_new(l->base, -1, 0, on_wake, l);
    if (!l->ev_term || !l->ev_int || !l->ev_wake || evsignal_add(l->ev_term, NULL) != 0 ||
        evsignal_add(l->ev_int, NULL) != 0) {
        util_err(err, errlen, "life_new: cannot install signal handlers");
        life_free(l);
        return NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    return l;
}

void life_set_deadline(life *l, int64_t deadline_ms, int64_t grace_ms)
{
    if (!l)
        return;
    if (deadline_ms > 0)
        l->deadline_ms = deadline_ms;
    if (grace_ms >= 0)
        l->grace_ms = grace_ms;
}

struct event_base *life_base(life *l)
{
    return l ? l->base : NULL;
}

void life_on_stop(life *l, void (*fn)(void *ud), void *ud)
{
    if (!l || !fn)
        return;
    if (l->nhooks == l->caphooks) {
        size_t cap = l->caphooks ? l->caphooks * 2 : 8;
        hook *n = util_malloc(cap * sizeof *n);
        if (l->nhooks)
            memcpy(n, l->hooks, l->nhooks * sizeof *n);
        free(l->hooks);
        l->hooks = n;
        l->caphooks = cap;
    }
    l->hooks[l->nhooks].fn = fn;
    l->hooks[l->nhooks].ud = ud;
    l->nhooks++;
}

int life_stopping(const life *l)
{
    return l ? atomic_load(&l->stopping) : 0;
}

void life_request_stop(life *l)
{
    if (!l)
        return;
    atomic_store(&l->stopping, 1);
    event_active(l->ev_wake, EV_TIMEOUT, 0);
}

int life_run(life *l)
{
    if (!l || l->ran)
        return -1;
    l->ran = 1;
    log_info("running", "daemon", l->service);
    event_base_dispatch(l->base);
    if (!l->stop_started)
        begin_stop(l, "event loop ended");
    /* back to the default disposition: a second signal ends a stuck shutdown now */
    event_del(l->ev_term);
    event_del(l->ev_int);

    for (size_t i = l->nhooks; i-- > 0;)
        l->hooks[i].fn(l->hooks[i].ud);

    int64_t took = util_mono_ms() - l->stop_mono_ms;
    if (took > l->deadline_ms) {
        log_error("stopped after the deadline", "daemon", l->service, "#took_ms", LOG_I64(took),
                  "#deadline_ms", LOG_I64(l->deadline_ms));
        return 1;
    }
    log_info("stopped", "daemon", l->service, "#took_ms", LOG_I64(took));
    return 0;
}

void life_free(life *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->disarmed = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (l->watchdog_running)
        pthread_join(l->watchdog, NULL);
    if (l->ev_term)
        event_free(l->ev_term);
    if (l->ev_int)
        event_free(l->ev_int);
    if (l->ev_wake)
        event_free(l->ev_wake);
    if (l->base)
        event_base_free(l->base);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l->hooks);
    free(l);
}
