/* rl: GCRA rate limits (see rl.h). The Lua script mirrors rl_gcra line for line. */
#include "rl.h"

#include "util.h"

#include <stdio.h>
#include <string.h>

static int64_t interval(const rl_policy *p)
{
    int64_t t = p->period_ms / (p->limit > 0 ? p->limit : 1);
    return t > 0 ? t : 1;
}

void rl_gcra(const rl_policy *p, int64_t tat, int64_t now_ms, int64_t cost, rl_result *out)
{
    int64_t t = interval(p);
    int64_t burst = p->burst > 0 ? p->burst : 1;
    int64_t base = tat > now_ms ? tat : now_ms;
    int64_t c = cost > 0 ? cost : 1;
    int64_t new_tat = base + c * t;
    int64_t allow_at = new_tat - burst * t;
    memset(out, 0, sizeof *out);
    if (allow_at > now_ms) {
        out->allowed = 0;
        out->retry_after_ms = allow_at - now_ms;
        out->remaining = 0;
        out->reset_ms = base - now_ms;
        out->new_tat = tat;
        return;
    }
    out->allowed = 1;
    int64_t after = cost > 0 ? new_tat : base;
    out->new_tat = after;
    out->remaining = (now_ms + burst * t - after) / t;
    if (out->remaining < 0)
        out->remaining = 0;
    out->reset_ms = after - now_ms;
}

/* KEYS[1]; ARGV: T, burst, cost, commit. Returns {allowed, remaining, retry_after, reset}. */
static const char SCRIPT[] =
    "local t=redis.call('TIME') local now=tonumber(t[1])*1000+math.floor(tonumber(t[2])/1000) "
    "local T=tonumber(ARGV[1]) local burst=tonumber(ARGV[2]) local cost=tonumber(ARGV[3]) "
    "local tat=tonumber(redis.call('GET',KEYS[1]) or '0') "
    "local base=math.max(tat,now) local c=cost if c<1 then c=1 end "
    "local new_tat=base+c*T local allow_at=new_tat-burst*T "
    "if allow_at>now then return {0,0,allow_at-now,base-now} end "
    "local after=base if cost>0 then after=new_tat end "
    "if cost>0 and ARGV[4]=='1' then redis.call('SET',KEYS[1],after,'PX',math.max(after-now,1)) "
    "end "
    "local rem=math.floor((now+burst*T-after)/T) if rem<0 then rem=0 end "
    "return {1,rem,0,after-now}";

int rl_take(redisContext *rc, const char *key, const rl_policy *p, int64_t cost, int commit,
            rl_result *out, char *err, size_t errlen)
{
    char ts[24], bs[24], cs[24];
    snprintf(ts, sizeof ts, "%lld", (long long)interval(p));
    snprintf(bs, sizeof bs, "%lld", (long long)(p->burst > 0 ? p->burst : 1));
    snprintf(cs, sizeof cs, "%lld", (long long)cost);
    memset(out, 0, sizeof *out);
    redisReply *r =
        redisCommand(rc, "EVAL %s 1 %s %s %s %s %s", SCRIPT, key, ts, bs, cs, commit ? "1" : "0");
    if (!r)
        return util_err(err, errlen, "rl: redis: %s", rc->errstr[0] ? rc->errstr : "no reply");
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 4;
    for (size_t i = 0; ok && i < 4; i++)
        ok = r->element[i]->type == REDIS_REPLY_INTEGER;
    if (!ok) {
        util_err(err, errlen, "rl: unexpected reply %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
        freeReplyObject(r);
        return -1;
    }
    out->allowed = (int)r->element[0]->integer;
    out->remaining = r->element[1]->integer;
    out->retry_after_ms = r->element[2]->integer;
    out->reset_ms = r->element[3]->integer;
    freeReplyObject(r);
    return 0;
}
