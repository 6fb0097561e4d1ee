/* rl: rate limiting with GCRA (generic cell rate algorithm) kept in Redis.
 *
 * A limit is `limit` requests per `period_ms` with bursts of up to `burst`. The state
 * of a key is one number, the theoretical arrival time (TAT, ms). A request of cost c
 * at time now is allowed when max(TAT, now) + c*T - burst*T <= now, T = period/limit;
 * if allowed the new TAT is stored with a TTL that ends when the bucket is full again.
 * rl_gcra is that arithmetic in C (unit-tested); rl_take runs the same arithmetic
 * atomically in Redis with one Lua script on the server's clock, so every replica
 * of the gateway shares the budget.
 *
 * Memory: nothing is allocated; the redisContext is borrowed. */
#ifndef PAIMON_API_RL_H
#define PAIMON_API_RL_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

typedef struct rl_policy {
    int64_t limit;     /* requests per period (>= 1) */
    int64_t period_ms; /* >= 1 */
    int64_t burst;     /* >= 1 */
} rl_policy;

typedef struct rl_result {
    int allowed;
    int64_t remaining;      /* requests still allowed right now */
    int64_t retry_after_ms; /* when denied: wait this long; else 0 */
    int64_t reset_ms;       /* until the bucket is full again */
    int64_t new_tat;        /* the TAT to store when allowed */
} rl_result;

/* Pure GCRA step. tat 0 = fresh key. cost 0 asks "is one more allowed?" without
 * consuming (callers then skip storing). */
void rl_gcra(const rl_policy *p, int64_t tat, int64_t now_ms, int64_t cost, rl_result *out);
/* The same step in Redis on `key`; commit 0 only peeks. 0 or -1 (Redis error). */
int rl_take(redisContext *rc, const char *key, const rl_policy *p, int64_t cost, int commit,
            rl_result *out, char *err, size_t errlen);

#endif
