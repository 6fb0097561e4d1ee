/* life: the life cycle of a daemon's main thread.
 *
 * life_new creates the event_base the daemon's main loop runs on (libevent is switched
 * to pthread locking first, so other threads may call life_request_stop), ignores
 * SIGPIPE (a peer closing a socket must be an error code, not a dead process) and
 * listens for SIGTERM / SIGINT. life_run turns the loop; the first signal (or
 * life_request_stop) sets the stopping flag, leaves the loop, and runs the hooks of
 * life_on_stop in reverse registration order (last opened, first closed: typically
 * "stop accepting HTTP", then "finish in-flight work and ack", then "close db").
 * A second SIGTERM / SIGINT while hooks run kills the process the default way.
 *
 * Deadline: the hooks should be done within the deadline (default 10 s, counted from
 * the stop signal); life_run returns 0 when they were, 1 when they finished late. A
 * watchdog thread, armed at the stop signal and disarmed by life_free, calls _exit(1)
 * at deadline + grace (default 1 s) so a stuck hook or a stuck clean-up can never hang
 * a pod until SIGKILL. Kubernetes' terminationGracePeriodSeconds must exceed the sum.
 *
 * Threading: life_stopping and life_request_stop may be called from any thread; the
 * rest from the main thread. Hooks run on the main thread after the loop has left, so
 * a hook that needs the loop (async I/O) turns it itself with event_base_loop.
 *
 * Memory: life_new/life_free own the event_base; free everything that uses it (HTTP
 * server, async Redis) before life_free. Hook ud pointers are borrowed. */
#ifndef PAIMON_LIFE_H
#define PAIMON_LIFE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#define LIFE_DEFAULT_DEADLINE_MS 10000
#define LIFE_DEFAULT_GRACE_MS    1000
#define LIFE_EXIT_WATCHDOG       1 /* exit status when the watchdog fires */

typedef struct life life;

/* service (copied, for log lines). NULL on failure (err filled). */
life *life_new(const char *service, char *err, size_t errlen);
/* Disarms the watchdog, frees the base. NULL is fine. */
void life_free(life *l);

/* deadline_ms > 0, grace_ms >= 0; call before life_run. */
void life_set_deadline(life *l, int64_t deadline_ms, int64_t grace_ms);
struct event_base *life_base(life *l);
void life_on_stop(life *l, void (*fn)(void *ud), void *ud);

/* 1 once a stop was asked for (signal or life_request_stop); worker threads poll it. */
int life_stopping(const life *l);
/* Thread-safe; before life_run it makes life_run stop right away. */
void life_request_stop(life *l);

/* Runs the loop until a stop, then the hooks. 0 when the hooks finished within the
 * deadline, 1 when late, -1 when called twice. */
int life_run(life *l);

#endif
