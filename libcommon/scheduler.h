/* scheduler (prefix sched_; not "sched.h", which would shadow the system <sched.h>
 * that <pthread.h> includes, because -Ilibcommon applies to <> includes too):
 * periodic and daily jobs that run once per cluster.
 *
 * Every replica registers the same jobs on its own scheduler. Time is cut into
 * slots — periodic: floor(now_ms / interval_ms); daily: the UTC date, due from
 * HH:MM UTC on — and on the first tick inside a due slot each replica tries
 *     SET paimon:sched:<job>:<slot> <node> NX PX <ttl>
 * (the TTL outlives the slot by a wide margin so a replica with a lagging clock
 * cannot claim it again). Only the winner runs the job. A daily job missed at
 * HH:MM (no replica alive) runs on the first tick later that same day; a
 * periodic slot nobody ticked in is simply skipped.
 *
 * Status lives in the hash paimon:sched:<job>: last_slot, last_node,
 * last_start_ms, last_end_ms, last_duration_ms, last_result ("running", "ok",
 * "error"), last_error, runs, failures.
 *
 * When Redis cannot be reached the tick is skipped and nothing runs: missing a
 * run beats running it twice. Job failures are logged and recorded, never fatal.
 *
 * Jobs run inline on the event loop thread, one after another, so they should be
 * short (or hand the work to the bus). A scheduler is used from one thread.
 *
 * Memory: sched_new/sched_free own the scheduler, its Redis connection and its
 * timer event; the event_base and each job's ud are borrowed. */
#ifndef PAIMON_SCHEDULER_H
#define PAIMON_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct sched sched;

/* A job: 0 on success, -1 with a reason in err on failure. */
typedef int (*sched_fn)(void *ud, char *err, size_t errlen);

#define SCHED_JOB_MAX      64 /* bytes of a job name, NUL included */
#define SCHED_NODE_MAX     128
#define SCHED_INTERVAL_MAX (30LL * 24 * 3600 * 1000)

/* base may be NULL when the caller drives sched_tick itself (tests). node names
 * this replica in claims and status; a random suffix is always appended (so two
 * schedulers never share an identity), NULL means the hostname. Redis is
 * connected lazily on the first tick. NULL with a reason on bad input. */
sched *sched_new(struct event_base *base, const char *redis_url, const char *node, char *err,
                 size_t errlen);
void sched_free(sched *s);

/* The node identity used in claims (static for the scheduler's lifetime). */
const char *sched_node(const sched *s);

/* Registers a job every interval_ms (1..SCHED_INTERVAL_MAX). Job names: 1..63
 * bytes of [A-Za-z0-9._-], unique per scheduler. */
int sched_every(sched *s, const char *job, int64_t interval_ms, sched_fn fn, void *ud, char *err,
                size_t errlen);
/* Registers a job daily at hour:minute UTC. */
int sched_daily(sched *s, const char *job, int hour, int minute, sched_fn fn, void *ud, char *err,
                size_t errlen);

/* Connect and command timeout for Redis (default 1000 ms); a tick blocks the loop
 * at most about this long per Redis call when Redis hangs. */
void sched_set_redis_timeout(sched *s, int timeout_ms);

/* Adds a persistent timer calling sched_tick(s, util_now_ms()) every tick_ms
 * (0 = 1000). Needs the event_base given to sched_new. */
int sched_start(sched *s, int64_t tick_ms, char *err, size_t errlen);
void sched_stop(sched *s);

/* Runs every job whose slot at now_ms (wall clock, ms since the epoch) is due
 * and that this replica claims. Returns how many jobs this replica ran (failed
 * runs included), or -1 when Redis failed (the rest of the tick was skipped and
 * the next tick retries; jobs claimed before the failure did run). */
int sched_tick(sched *s, int64_t now_ms);

#endif
