/* rlimit: GCRA cells in Redis (see rlimit.h). */
#include "rlimit.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

int64_t rlimit_gcra(int64_t tat, int64_t now, int64_t interval_ms, int64_t *new_tat)
{
    if (tat > now)
        return tat - now;
    *new_tat = now + interval_ms;
    return 0;
}

/* Mirrors rlimit_gcra for every cell; all-or-nothing. */
static const char acquire_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local wait = 0\n"
    "for i, k in ipairs(KEYS) do\n"
    "  local tat = tonumber(redis.call('GET', k) or '0')\n"
    "  if tat > now and tat - now > wait then wait = tat - now end\n"
    "end\n"
    "if wait > 0 then return wait end\n"
    "for i, k in ipairs(KEYS) do\n"
    "  local iv = tonumber(ARGV[i])\n"
    "  redis.call('SET', k, now + iv, 'PX', iv + 1000)\n"
    "end\n"
    "return 0\n";

static const char pause_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local want = now + tonumber(ARGV[1])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if tat < want then redis.call('SET', KEYS[1], want, 'PX', tonumber(ARGV[1]) + 1000) end\n"
    "return 0\n";

static int name_ok(const char *s)
{
    return s && *s && strlen(s) < 200 && !strpbrk(s, " \r\n");
}

int rlimit_acquire(redisContext *rc, const char *const *names, const int64_t *intervals, size_t n,
                   int64_t *wait_ms, char *err, size_t errlen)
{
    *wait_ms = 0;
    char keys[RLIMIT_MAX_KEYS][256], ivs[RLIMIT_MAX_KEYS][24], nk[8];
    const char *argv[3 + 2 * RLIMIT_MAX_KEYS];
    size_t used = 0;
    for (size_t i = 0; i < n && used < RLIMIT_MAX_KEYS; i++) {
        if (intervals[i] <= 0)
            continue;
        if (!name_ok(names[i]))
            return util_err(err, errlen, "bad rate limiter name");
        snprintf(keys[used], sizeof keys[used], RLIMIT_PREFIX "%s", names[i]);
        snprintf(ivs[used], sizeof ivs[used], "%lld", (long long)intervals[i]);
        used++;
    }
    if (used == 0)
        return 0;
    snprintf(nk, sizeof nk, "%zu", used);
    size_t argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = acquire_lua;
    argv[argc++] = nk;
    for (size_t i = 0; i < used; i++)
        argv[argc++] = keys[i];
    for (size_t i = 0; i < used; i++)
        argv[argc++] = ivs[i];
    redisReply *r = redisCommandArgv(rc, (int)argc, argv, NULL);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        util_err(err, errlen, "rate limit: %s",
                 r && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
        if (r)
            freeReplyObject(r);
        return -1;
    }
    *wait_ms = r->integer;
    freeReplyObject(r);
    return 0;
}

int rlimit_pause(redisContext *rc, const char *name, int64_t pause_ms, char *err, size_t errlen)
{
    if (!name_ok(name))
        return util_err(err, errlen, "bad rate limiter name");
    if (pause_ms <= 0)
        return 0;
    char key[256], ms[24];
    snprintf(key, sizeof key, RLIMIT_PREFIX "%s", name);
    snprintf(ms, sizeof ms, "%lld", (long long)pause_ms);
    const char *argv[] = {"EVAL", pause_lua, "1", key, ms};
    redisReply *r = redisCommandArgv(rc, 5, argv, NULL);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        util_err(err, errlen, "rate limit pause: %s", r ? r->str : rc->errstr);
        if (r)
            freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}
