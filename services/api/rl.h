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
 * rl_gate is what the gateway runs for every request: the per-IP limit, the access
 * token's revocation check and the per-principal limit in ONE script call (EVALSHA),
 * so a request costs one Redis round trip instead of three. Steps run in that order
 * and stop at the first refusal, exactly as three separate calls would: a request
 * refused per IP neither looks up its token nor spends its principal's budget, and a
 * revoked token spends no principal budget. The script also works from hiredis' async
 * API (rl_gate_cmd_build + rl_gate_parse), which lets a loop pipeline the calls of
 * many requests on one connection.
 *
 * Memory: nothing is allocated; the redisContext, keys and policies are borrowed. */
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

/* One gateway check; a NULL key skips that step. */
typedef struct rl_gate_req {
    const char *ip_key; /* per-IP GCRA key */
    const rl_policy *ip;
    const char *revoked_key;   /* refused when this key exists (logout's deny list) */
    const char *principal_key; /* per-principal GCRA key */
    const rl_policy *principal;
} rl_gate_req;

typedef struct rl_gate_res {
    int ip_checked;
    rl_result ip;
    int revoked_checked, revoked;
    int principal_checked;
    rl_result principal;
} rl_gate_res;

/* A ready-to-send command (EVALSHA, or EVAL after NOSCRIPT). Keys are borrowed from
 * the request, so it lives as long as they do. */
typedef struct rl_gate_cmd {
    int argc;
    const char *argv[12];
    size_t argvlen[12];
    char mode[4];
    char num[5][24]; /* numkeys, then T and burst of each limit step */
} rl_gate_cmd;

/* use_eval 0 = EVALSHA (the normal case), 1 = EVAL with the script text. */
void rl_gate_cmd_build(rl_gate_cmd *cmd, const rl_gate_req *rq, int use_eval);
/* 1 when r is Redis' NOSCRIPT error (script cache flushed or a fresh server). */
int rl_gate_noscript(const redisReply *r);
/* Reads the script's reply; steps not reached are left unchecked. 0 or -1. */
int rl_gate_parse(const rl_gate_req *rq, const redisReply *r, rl_gate_res *out, char *err,
                  size_t errlen);
/* The same on a synchronous connection (EVALSHA, EVAL on NOSCRIPT). 0 or -1. */
int rl_gate(redisContext *rc, const rl_gate_req *rq, rl_gate_res *out, char *err, size_t errlen);

#endif
