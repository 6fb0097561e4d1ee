/* rl: GCRA rate limits (see rl.h). The Lua script mirrors rl_gcra line for line. */
#include "rl.h"

#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

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

/* ---------- the gateway's combined check ---------- */

/* ARGV[1] is the steps in order ("i" per-IP limit, "r" revocation, "p" per-principal
 * limit), one KEY per step, then T and burst for each limit step. A limit step
 * returns {allowed, remaining, retry_after, reset} as SCRIPT above with cost 1 and
 * commit; "r" returns {revoked}. The reply stops after the first refusal. */
static const char GATE[] =
    "local t=redis.call('TIME') local now=tonumber(t[1])*1000+math.floor(tonumber(t[2])/1000) "
    "local function gcra(key,T,burst) "
    "local tat=tonumber(redis.call('GET',key) or '0') local base=math.max(tat,now) "
    "local new_tat=base+T local allow_at=new_tat-burst*T "
    "if allow_at>now then return {0,0,allow_at-now,base-now} end "
    "redis.call('SET',key,new_tat,'PX',math.max(new_tat-now,1)) "
    "local rem=math.floor((now+burst*T-new_tat)/T) if rem<0 then rem=0 end "
    "return {1,rem,0,new_tat-now} end "
    "local mode=ARGV[1] local out={} local a=2 "
    "for i=1,#mode do local m=string.sub(mode,i,i) "
    "if m=='r' then local e=redis.call('EXISTS',KEYS[i]) out[#out+1]=e "
    "if e==1 then return out end "
    "else local r=gcra(KEYS[i],tonumber(ARGV[a]),tonumber(ARGV[a+1])) a=a+2 "
    "for j=1,4 do out[#out+1]=r[j] end if r[1]==0 then return out end end end "
    "return out";

static char gate_sha[41];
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;

static void gate_sha_init(void)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    /* Redis names scripts by SHA-1 of their text; if this ever failed, EVALSHA would get
     * NOSCRIPT and the EVAL fallback still works. */
    if (EVP_Digest(GATE, sizeof GATE - 1, d, &n, EVP_sha1(), NULL) != 1 || n != 20) {
        util_strlcpy(gate_sha, "0000000000000000000000000000000000000000", sizeof gate_sha);
        return;
    }
    for (unsigned int i = 0; i < 20; i++) {
        gate_sha[2 * i] = digits[d[i] >> 4];
        gate_sha[2 * i + 1] = digits[d[i] & 15];
    }
    gate_sha[40] = '\0';
}

static void push(rl_gate_cmd *cmd, const char *s)
{
    cmd->argv[cmd->argc] = s;
    cmd->argvlen[cmd->argc] = strlen(s);
    cmd->argc++;
}

static void push_num(rl_gate_cmd *cmd, size_t *slot, int64_t v)
{
    snprintf(cmd->num[*slot], sizeof cmd->num[0], "%lld", (long long)v);
    push(cmd, cmd->num[(*slot)++]);
}

void rl_gate_cmd_build(rl_gate_cmd *cmd, const rl_gate_req *rq, int use_eval)
{
    pthread_once(&gate_once, gate_sha_init);
    memset(cmd, 0, sizeof *cmd);
    size_t nk = 0, slot = 0;
    const char *keys[3];
    if (rq->ip_key) {
        cmd->mode[nk] = 'i';
        keys[nk++] = rq->ip_key;
    }
    if (rq->revoked_key) {
        cmd->mode[nk] = 'r';
        keys[nk++] = rq->revoked_key;
    }
    if (rq->principal_key) {
        cmd->mode[nk] = 'p';
        keys[nk++] = rq->principal_key;
    }
    push(cmd, use_eval ? "EVAL" : "EVALSHA");
    push(cmd, use_eval ? GATE : gate_sha);
    push_num(cmd, &slot, (int64_t)nk);
    for (size_t i = 0; i < nk; i++)
        push(cmd, keys[i]);
    push(cmd, cmd->mode);
    if (rq->ip_key) {
        push_num(cmd, &slot, interval(rq->ip));
        push_num(cmd, &slot, rq->ip->burst > 0 ? rq->ip->burst : 1);
    }
    if (rq->principal_key) {
        push_num(cmd, &slot, interval(rq->principal));
        push_num(cmd, &slot, rq->principal->burst > 0 ? rq->principal->burst : 1);
    }
}

int rl_gate_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

static int gate_limit(const redisReply *r, size_t *at, rl_result *out)
{
    if (*at + 4 > r->elements)
        return -1;
    for (size_t i = 0; i < 4; i++)
        if (r->element[*at + i]->type != REDIS_REPLY_INTEGER)
            return -1;
    memset(out, 0, sizeof *out);
    out->allowed = (int)r->element[*at]->integer;
    out->remaining = r->element[*at + 1]->integer;
    out->retry_after_ms = r->element[*at + 2]->integer;
    out->reset_ms = r->element[*at + 3]->integer;
    *at += 4;
    return 0;
}

int rl_gate_parse(const rl_gate_req *rq, const redisReply *r, rl_gate_res *out, char *err,
                  size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!r)
        return util_err(err, errlen, "rl: no reply");
    if (r->type != REDIS_REPLY_ARRAY)
        return util_err(err, errlen, "rl: unexpected reply %s",
                        r->type == REDIS_REPLY_ERROR && r->str ? r->str : "");
    size_t at = 0;
    if (rq->ip_key) {
        if (gate_limit(r, &at, &out->ip) != 0)
            goto bad;
        out->ip_checked = 1;
        if (!out->ip.allowed)
            goto done;
    }
    if (rq->revoked_key) {
        if (at >= r->elements || r->element[at]->type != REDIS_REPLY_INTEGER)
            goto bad;
        out->revoked_checked = 1;
        out->revoked = r->element[at++]->integer != 0;
        if (out->revoked)
            goto done;
    }
    if (rq->principal_key) {
        if (gate_limit(r, &at, &out->principal) != 0)
            goto bad;
        out->principal_checked = 1;
    }
done:
    if (at != r->elements)
        goto bad;
    return 0;
bad:
    memset(out, 0, sizeof *out);
    return util_err(err, errlen, "rl: malformed gate reply");
}

int rl_gate(redisContext *rc, const rl_gate_req *rq, rl_gate_res *out, char *err, size_t errlen)
{
    rl_gate_cmd cmd;
    memset(out, 0, sizeof *out);
    for (int use_eval = 0; use_eval < 2; use_eval++) {
        rl_gate_cmd_build(&cmd, rq, use_eval);
        redisReply *r = redisCommandArgv(rc, cmd.argc, cmd.argv, cmd.argvlen);
        if (!r)
            return util_err(err, errlen, "rl: redis: %s", rc->errstr[0] ? rc->errstr : "no reply");
        if (!use_eval && rl_gate_noscript(r)) {
            freeReplyObject(r);
            continue;
        }
        int rc2 = rl_gate_parse(rq, r, out, err, errlen);
        freeReplyObject(r);
        return rc2;
    }
    return util_err(err, errlen, "rl: script not loadable");
}
