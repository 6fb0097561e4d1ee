/* rlimit: per-channel rate limits shared by every notifier replica, in Redis.
 *
 * Each limit is a GCRA cell without burst: the key paimon:notifier:rl:<name> holds the
 * earliest time (ms, Redis clock) the next message may go. Acquiring several limits at
 * once (a Telegram chat 1/s AND its bot 30/s) is atomic in one Lua script: either every
 * cell has room and all are advanced, or nothing changes and the caller learns how long to
 * wait. A 429 pushes the cell's time to now + retry_after, so every replica pauses that
 * channel. Redis' clock is the only clock used, so replicas' skew does not matter.
 *
 * Memory: nothing is retained; the redisContext is borrowed. */
#ifndef PAIMON_NOTIFIER_RLIMIT_H
#define PAIMON_NOTIFIER_RLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define RLIMIT_MAX_KEYS 4
#define RLIMIT_PREFIX   "paimon:notifier:rl:"

/* The pure rule the script applies to one cell: returns the wait (0 = go) and, when 0,
 * the cell's new value in *new_tat. */
int64_t rlimit_gcra(int64_t tat, int64_t now, int64_t interval_ms, int64_t *new_tat);

/* names: n limiter names (suffixes of RLIMIT_PREFIX), intervals in ms (0 = unlimited).
 * *wait_ms = 0 when the slot was taken, else how long until one may be. */
int rlimit_acquire(redisContext *rc, const char *const *names, const int64_t *intervals, size_t n,
                   int64_t *wait_ms, char *err, size_t errlen);

/* Pauses a limiter for pause_ms from now (never shortens an existing pause). */
int rlimit_pause(redisContext *rc, const char *name, int64_t pause_ms, char *err, size_t errlen);

#endif
