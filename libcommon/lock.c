/* lock: Redis leases with fencing tokens (see lock.h). Leases are caller-owned
 * values; the redisContext is borrowed. */
#include "lock.h"
#include "hex.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* SET NX and INCR must be one atomic step: a fence taken without the lease (or a
 * lease without a fence) would let two holders share a fence value. Returns 0
 * when someone else holds the lease; fences start at 1. */
static const char ACQUIRE_LUA[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
    "return redis.call('INCR', KEYS[2]) end return 0";

static const char RENEW_LUA[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";

static const char RELEASE_LUA[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                  "return redis.call('DEL', KEYS[1]) end return 0";

#define FENCE_SUFFIX ":fence"

int lock_check_name(const char *name, char *err, size_t errlen)
{
    if (!name || !*name)
        return util_err(err, errlen, "lock name is empty");
    size_t n = strlen(name);
    if (n >= LOCK_NAME_MAX)
        return util_err(err, errlen, "lock name longer than %d bytes", LOCK_NAME_MAX - 1);
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == ':' || ch == '-';
        if (!ok)
            return util_err(err, errlen, "lock name has an invalid character at byte %zu", i);
    }
    /* The lease key of "x:fence" would be the fence key of "x". */
    size_t sl = sizeof FENCE_SUFFIX - 1;
    if (n >= sl && strcmp(name + n - sl, FENCE_SUFFIX) == 0)
        return util_err(err, errlen, "lock name must not end in %s", FENCE_SUFFIX);
    return 0;
}

static int check_ttl(int64_t ttl_ms, char *err, size_t errlen)
{
    if (ttl_ms < 1 || ttl_ms > LOCK_TTL_MAX)
        return util_err(err, errlen, "lock ttl %lld ms out of range 1..%lld", (long long)ttl_ms,
                        (long long)LOCK_TTL_MAX);
    return 0;
}

/* Runs a two-argument script on the lease key (and fence key when needed) and
 * returns its integer reply in *out. */
static int eval_int(redisContext *c, const char *script, const char *name, int with_fence,
                    const char *token, int64_t ttl_ms, long long *out, char *err, size_t errlen)
{
    char key[LOCK_NAME_MAX + 16], fkey[LOCK_NAME_MAX + 32];
    snprintf(key, sizeof key, "paimon:lock:%s", name);
    snprintf(fkey, sizeof fkey, "paimon:lock:%s" FENCE_SUFFIX, name);
    if (!c)
        return util_err(err, errlen, "lock %s: no redis connection", name);
    if (c->err)
        return util_err(err, errlen, "lock %s: redis: %s", name, c->errstr);
    redisReply *r;
    if (with_fence)
        r = redisCommand(c, "EVAL %s 2 %s %s %s %lld", script, key, fkey, token, (long long)ttl_ms);
    else
        r = redisCommand(c, "EVAL %s 1 %s %s %lld", script, key, token, (long long)ttl_ms);
    if (!r)
        return util_err(err, errlen, "lock %s: redis: %s", name, c->errstr);
    int rc = 0;
    if (r->type == REDIS_REPLY_INTEGER)
        *out = r->integer;
    else if (r->type == REDIS_REPLY_ERROR)
        rc = util_err(err, errlen, "lock %s: redis: %s", name, r->str);
    else
        rc = util_err(err, errlen, "lock %s: unexpected redis reply type %d", name, r->type);
    freeReplyObject(r);
    return rc;
}

static void invalidate(lock_lease *l)
{
    l->expires_mono_ms = 0;
    l->margin_ms = 0;
}

lock_result lock_acquire(redisContext *c, const char *name, int64_t ttl_ms, lock_lease *out,
                         char *err, size_t errlen)
{
    if (!out) {
        util_err(err, errlen, "lock_acquire: out is NULL");
        return LOCK_ERR;
    }
    memset(out, 0, sizeof *out);
    if (lock_check_name(name, err, errlen) < 0 || check_ttl(ttl_ms, err, errlen) < 0)
        return LOCK_ERR;
    unsigned char raw[LOCK_TOKEN_LEN / 2];
    if (util_random(raw, sizeof raw) < 0) {
        util_err(err, errlen, "lock %s: no randomness for the owner token", name);
        return LOCK_ERR;
    }
    char token[LOCK_TOKEN_LEN + 1];
    hex_encode(raw, sizeof raw, 0, token, sizeof token);

    /* Taken before the request: Redis starts the TTL later than this, so the
     * local deadline errs on the early side. */
    int64_t start = util_mono_ms();
    long long fence = 0;
    if (eval_int(c, ACQUIRE_LUA, name, 1, token, ttl_ms, &fence, err, errlen) < 0)
        return LOCK_ERR;
    if (fence == 0)
        return LOCK_BUSY;
    if (fence < 0) {
        util_err(err, errlen, "lock %s: fence counter is negative (%lld)", name, fence);
        return LOCK_ERR;
    }
    util_strlcpy(out->name, name, sizeof out->name);
    memcpy(out->token, token, sizeof out->token);
    out->fence = fence;
    out->ttl_ms = ttl_ms;
    out->expires_mono_ms = start + ttl_ms;
    out->margin_ms = ttl_ms / 10 + 2;
    return LOCK_OK;
}

static int check_lease(const lock_lease *l, char *err, size_t errlen)
{
    if (!l)
        return util_err(err, errlen, "lock: lease is NULL");
    if (lock_check_name(l->name, err, errlen) < 0)
        return -1;
    if (strlen(l->token) != LOCK_TOKEN_LEN)
        return util_err(err, errlen, "lock %s: lease has no owner token", l->name);
    return 0;
}

lock_result lock_renew(redisContext *c, lock_lease *l, int64_t ttl_ms, char *err, size_t errlen)
{
    if (check_lease(l, err, errlen) < 0 || check_ttl(ttl_ms, err, errlen) < 0)
        return LOCK_ERR;
    int64_t start = util_mono_ms();
    long long n = 0;
    if (eval_int(c, RENEW_LUA, l->name, 0, l->token, ttl_ms, &n, err, errlen) < 0)
        return LOCK_ERR;
    if (n != 1) {
        invalidate(l);
        return LOCK_LOST;
    }
    l->ttl_ms = ttl_ms;
    l->expires_mono_ms = start + ttl_ms;
    /* Keep a margin the caller raised; a shorter ttl still gets its default. */
    if (l->margin_ms < ttl_ms / 10 + 2)
        l->margin_ms = ttl_ms / 10 + 2;
    return LOCK_OK;
}

lock_result lock_release(redisContext *c, lock_lease *l, char *err, size_t errlen)
{
    if (check_lease(l, err, errlen) < 0)
        return LOCK_ERR;
    /* Stop acting before asking: after a release request we may not hold it. */
    invalidate(l);
    long long n = 0;
    if (eval_int(c, RELEASE_LUA, l->name, 0, l->token, 0, &n, err, errlen) < 0)
        return LOCK_ERR;
    return n == 1 ? LOCK_OK : LOCK_LOST;
}

int lock_valid_at(const lock_lease *l, int64_t now_mono_ms)
{
    return l && l->expires_mono_ms > 0 && now_mono_ms < l->expires_mono_ms - l->margin_ms;
}

int lock_valid(const lock_lease *l)
{
    return lock_valid_at(l, util_mono_ms());
}

int64_t lock_remaining_ms(const lock_lease *l)
{
    int64_t now = util_mono_ms();
    if (!lock_valid_at(l, now))
        return 0;
    return l->expires_mono_ms - l->margin_ms - now;
}
