/* lock: cluster-wide leases in Redis with fencing tokens.
 *
 * A lease is the key paimon:lock:<name> holding a random owner token with a TTL.
 * Acquiring it also INCRs paimon:lock:<name>:fence in the same Lua script, so each
 * holder gets a fence strictly greater than every earlier holder's, forever (the
 * fence key never expires and is never reset). Renew and release compare the
 * token first, so a holder whose lease expired can never extend or delete the
 * lease of whoever holds it now.
 *
 * A lease alone does not make a write safe: a holder can pause (GC, swap, a slow
 * RPC) past its TTL and wake up believing it still holds the lock. Two rules
 * close that gap:
 *  1. Locally, treat the lease as lost at expires_mono_ms - margin_ms (see
 *     lock_valid) without asking Redis; the expiry is measured from before the
 *     request was sent, so it can only be early, never late.
 *  2. Every write to the protected resource carries the fence, and the resource
 *     rejects a fence lower than the last one it has seen. In PostgreSQL:
 *         UPDATE resource SET last_fence = $f, ... WHERE id = $id AND last_fence <= $f
 *     and treat "0 rows updated" as "you lost the lease; stop". A stale holder's
 *     late write then fails even if it arrives after the new holder's first write
 *     (tests/integration/test_lock.c shows this).
 *
 * Memory: a lock_lease is a plain value the caller owns (stack or embedded); no
 * heap is used. The redisContext is borrowed. After LOCK_ERR the context may be
 * broken (c->err set): the caller reconnects (rconn_connect). */
#ifndef PAIMON_LOCK_H
#define PAIMON_LOCK_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define LOCK_NAME_MAX  128 /* bytes of a lock name, NUL included */
#define LOCK_TOKEN_LEN 32  /* hex characters of an owner token */
#define LOCK_TTL_MAX   (24LL * 3600 * 1000)

typedef enum {
    LOCK_ERR = -1, /* Redis unreachable or bad input: state unknown, err filled */
    LOCK_OK = 0,   /* acquired / renewed / released */
    LOCK_BUSY = 1, /* acquire: another owner holds the lease */
    LOCK_LOST = 2, /* renew / release: the lease is no longer ours (expired or taken) */
} lock_result;

typedef struct lock_lease {
    char name[LOCK_NAME_MAX];
    char token[LOCK_TOKEN_LEN + 1];
    int64_t fence;           /* pass along with every protected write */
    int64_t ttl_ms;          /* of the last acquire / renew */
    int64_t expires_mono_ms; /* util_mono_ms() deadline of the Redis TTL, as seen locally */
    int64_t margin_ms;       /* stop acting this long before expires_mono_ms; caller may raise */
} lock_lease;

/* Tries once to take the lease `name` for ttl_ms (1..LOCK_TTL_MAX). Name: 1..127
 * bytes of [A-Za-z0-9._:-], not ending in ":fence". On LOCK_OK fills *out
 * (fence >= 1, margin = ttl/10 + 2 ms, the Redlock drift rule plus headroom). */
lock_result lock_acquire(redisContext *c, const char *name, int64_t ttl_ms, lock_lease *out,
                         char *err, size_t errlen);

/* Extends the lease to ttl_ms from now if the token still matches; LOCK_LOST
 * otherwise (then the lease is marked invalid locally too). Renewing after the
 * local deadline is allowed: a matching token proves nobody held it meanwhile. */
lock_result lock_renew(redisContext *c, lock_lease *l, int64_t ttl_ms, char *err, size_t errlen);

/* Deletes the lease if the token still matches; LOCK_LOST if someone else holds
 * it or it expired (nothing is touched). The local lease is invalid afterwards
 * in both cases. */
lock_result lock_release(redisContext *c, lock_lease *l, char *err, size_t errlen);

/* 1 while the holder may act: now_mono_ms < expires_mono_ms - margin_ms. */
int lock_valid_at(const lock_lease *l, int64_t now_mono_ms);
int lock_valid(const lock_lease *l); /* lock_valid_at(l, util_mono_ms()) */
/* Milliseconds of safe validity left (0 when not valid). */
int64_t lock_remaining_ms(const lock_lease *l);

/* 0 when `name` is a valid lock name (same rules as lock_acquire). */
int lock_check_name(const char *name, char *err, size_t errlen);

#endif
