/* scheduler: once-per-cluster periodic and daily jobs over Redis claims (see scheduler.h).
 * The scheduler owns its job table, Redis connection and timer; job uds and the
 * event_base are borrowed. */
#include "scheduler.h"
#include "log.h"
#include "rconn.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#define DAY_MS         (24LL * 3600 * 1000)
#define DAILY_CLAIM_MS (2 * DAY_MS)
/* A periodic claim outlives its slot by at least this much, which bounds the
 * clock lag between replicas that is still safe. */
#define CLAIM_SLACK_MS (60LL * 1000)

typedef enum { JOB_EVERY, JOB_DAILY } job_kind;

typedef struct job {
    char name[SCHED_JOB_MAX];
    job_kind kind;
    int64_t interval_ms;
    int minute_of_day;
    sched_fn fn;
    void *ud;
    int seen;          /* seen_slot is valid */
    int64_t seen_slot; /* last slot whose claim got a definite answer */
    int ran;
    int64_t ran_slot; /* last slot this replica ran */
} job;

struct sched {
    struct event_base *base;
    struct event *timer;
    char *url;
    char node[SCHED_NODE_MAX];
    int timeout_ms;
    redisContext *rc;
    int redis_down; /* logged once per outage, not once per tick */
    job *jobs;
    size_t njobs, cap;
};

/* Claims the slot; on success also marks the job running in its status hash.
 * 2 = the claim already holds our node id: a previous claim succeeded but its
 * reply was lost, so the slot is ours and has not run here yet. */
static const char CLAIM_LUA[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
    "redis.call('HSET', KEYS[2], 'last_slot', ARGV[3], 'last_node', ARGV[1], "
    "'last_start_ms', ARGV[4], 'last_result', 'running', 'last_error', '') "
    "return 1 end "
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return 2 end return 0";

/* The last_* fields are only ours to write while no later run has started. */
static const char RECORD_LUA[] =
    "redis.call('HINCRBY', KEYS[1], 'runs', 1) "
    "if ARGV[5] == 'error' then redis.call('HINCRBY', KEYS[1], 'failures', 1) end "
    "if redis.call('HGET', KEYS[1], 'last_slot') == ARGV[1] and "
    "redis.call('HGET', KEYS[1], 'last_node') == ARGV[2] then "
    "redis.call('HSET', KEYS[1], 'last_end_ms', ARGV[3], 'last_duration_ms', ARGV[4], "
    "'last_result', ARGV[5], 'last_error', ARGV[6]) return 1 end return 0";

static int check_job_name(const char *name, char *err, size_t errlen)
{
    if (!name || !*name)
        return util_err(err, errlen, "sched job name is empty");
    size_t n = strlen(name);
    if (n >= SCHED_JOB_MAX)
        return util_err(err, errlen, "sched job name longer than %d bytes", SCHED_JOB_MAX - 1);
    /* No ':' so the status hash of one job can never be a claim key of another. */
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return util_err(err, errlen, "sched job name has an invalid character at byte %zu", i);
    }
    return 0;
}

static int make_node(char *out, size_t outlen, const char *node, char *err, size_t errlen)
{
    char host[64];
    if (node) {
        size_t n = strlen(node);
        if (n == 0 || n > 64)
            return util_err(err, errlen, "sched node name must be 1..64 bytes");
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)node[i] <= ' ' || (unsigned char)node[i] >= 0x7f)
                return util_err(err, errlen, "sched node name has an invalid byte at %zu", i);
    } else {
        if (gethostname(host, sizeof host) != 0)
            util_strlcpy(host, "unknown", sizeof host);
        host[sizeof host - 1] = '\0';
        node = host;
    }
    uint32_t rnd;
    if (util_random(&rnd, sizeof rnd) < 0)
        return util_err(err, errlen, "sched: no randomness for the node id");
    snprintf(out, outlen, "%s:%ld:%08x", node, (long)getpid(), (unsigned)rnd);
    return 0;
}

sched *sched_new(struct event_base *base, const char *redis_url, const char *node, char *err,
                 size_t errlen)
{
    rconn_url u;
    if (rconn_parse_url(redis_url, &u, err, errlen) < 0)
        return NULL;
    sched *s = util_calloc(1, sizeof *s);
    if (make_node(s->node, sizeof s->node, node, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    s->base = base;
    s->url = util_strdup(redis_url);
    s->timeout_ms = 1000;
    return s;
}

void sched_free(sched *s)
{
    if (!s)
        return;
    sched_stop(s);
    if (s->rc)
        redisFree(s->rc);
    free(s->url);
    free(s->jobs);
    free(s);
}

const char *sched_node(const sched *s)
{
    return s->node;
}

void sched_set_redis_timeout(sched *s, int timeout_ms)
{
    s->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
}

static job *add_job(sched *s, const char *name, sched_fn fn, char *err, size_t errlen)
{
    if (check_job_name(name, err, errlen) < 0)
        return NULL;
    if (!fn) {
        util_err(err, errlen, "sched job %s has no function", name);
        return NULL;
    }
    for (size_t i = 0; i < s->njobs; i++)
        if (strcmp(s->jobs[i].name, name) == 0) {
            util_err(err, errlen, "sched job %s registered twice", name);
            return NULL;
        }
    if (s->njobs == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        job *nj = util_calloc(cap, sizeof *nj);
        if (s->njobs)
            memcpy(nj, s->jobs, s->njobs * sizeof *nj);
        free(s->jobs);
        s->jobs = nj;
        s->cap = cap;
    }
    job *j = &s->jobs[s->njobs++];
    memset(j, 0, sizeof *j);
    util_strlcpy(j->name, name, sizeof j->name);
    j->fn = fn;
    return j;
}

int sched_every(sched *s, const char *name, int64_t interval_ms, sched_fn fn, void *ud, char *err,
                size_t errlen)
{
    if (!s)
        return util_err(err, errlen, "sched is NULL");
    if (interval_ms < 1 || interval_ms > SCHED_INTERVAL_MAX)
        return util_err(err, errlen, "sched job interval %lld ms out of range 1..%lld",
                        (long long)interval_ms, (long long)SCHED_INTERVAL_MAX);
    job *j = add_job(s, name, fn, err, errlen);
    if (!j)
        return -1;
    j->kind = JOB_EVERY;
    j->interval_ms = interval_ms;
    j->ud = ud;
    return 0;
}

int sched_daily(sched *s, const char *name, int hour, int minute, sched_fn fn, void *ud, char *err,
                size_t errlen)
{
    if (!s)
        return util_err(err, errlen, "sched is NULL");
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59)
        return util_err(err, errlen, "sched daily time %d:%d is not a valid HH:MM", hour, minute);
    job *j = add_job(s, name, fn, err, errlen);
    if (!j)
        return -1;
    j->kind = JOB_DAILY;
    j->minute_of_day = hour * 60 + minute;
    j->ud = ud;
    return 0;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sched_tick(arg, util_now_ms());
}

int sched_start(sched *s, int64_t tick_ms, char *err, size_t errlen)
{
    if (!s || !s->base)
        return util_err(err, errlen, "sched_start needs the event_base given to sched_new");
    if (s->timer)
        return util_err(err, errlen, "sched already started");
    if (tick_ms == 0)
        tick_ms = 1000;
    if (tick_ms < 1 || tick_ms > 3600 * 1000)
        return util_err(err, errlen, "sched tick %lld ms out of range", (long long)tick_ms);
    s->timer = event_new(s->base, -1, EV_PERSIST, timer_cb, s);
    if (!s->timer)
        return util_err(err, errlen, "sched: event_new failed");
    struct timeval tv = {.tv_sec = tick_ms / 1000, .tv_usec = (tick_ms % 1000) * 1000};
    if (event_add(s->timer, &tv) != 0) {
        event_free(s->timer);
        s->timer = NULL;
        return util_err(err, errlen, "sched: event_add failed");
    }
    return 0;
}

void sched_stop(sched *s)
{
    if (s && s->timer) {
        event_del(s->timer);
        event_free(s->timer);
        s->timer = NULL;
    }
}

/* The slot of job j at now_ms, 0 if not due yet (daily before HH:MM), and the
 * slot's name for keys and status. */
static int job_slot(const job *j, int64_t now_ms, int64_t *slot, char *name, size_t namelen)
{
    if (j->kind == JOB_EVERY) {
        *slot = now_ms / j->interval_ms;
        snprintf(name, namelen, "%lld", (long long)*slot);
        return 1;
    }
    int64_t day = now_ms / DAY_MS;
    if ((now_ms % DAY_MS) / 60000 < j->minute_of_day)
        return 0;
    *slot = day;
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return 0;
    snprintf(name, namelen, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    return 1;
}

static int64_t claim_ttl(const job *j)
{
    if (j->kind == JOB_DAILY)
        return DAILY_CLAIM_MS;
    int64_t a = 2 * j->interval_ms, b = j->interval_ms + CLAIM_SLACK_MS;
    return a > b ? a : b;
}

static void drop_redis(sched *s, const char *why)
{
    if (!s->redis_down)
        log_warn("sched: redis unavailable, skipping ticks (no job runs until it is back)", "node",
                 s->node, "error", why);
    s->redis_down = 1;
    if (s->rc) {
        redisFree(s->rc);
        s->rc = NULL;
    }
}

static int ensure_redis(sched *s)
{
    if (s->rc && !s->rc->err)
        return 0;
    if (s->rc) {
        redisFree(s->rc);
        s->rc = NULL;
    }
    char err[UTIL_ERRLEN];
    s->rc = rconn_connect(s->url, s->timeout_ms, err, sizeof err);
    if (!s->rc) {
        drop_redis(s, err);
        return -1;
    }
    if (s->redis_down)
        log_info("sched: redis reachable again", "node", s->node);
    s->redis_down = 0;
    return 0;
}

/* 1 = claimed (run it), 0 = someone else has it, -1 = Redis failed. */
static int claim(sched *s, job *j, const char *slotname, int64_t now_ms)
{
    char key[SCHED_JOB_MAX + 48], hkey[SCHED_JOB_MAX + 16];
    snprintf(key, sizeof key, "paimon:sched:%s:%s", j->name, slotname);
    snprintf(hkey, sizeof hkey, "paimon:sched:%s", j->name);
    redisReply *r = redisCommand(s->rc, "EVAL %s 2 %s %s %s %lld %s %lld", CLAIM_LUA, key, hkey,
                                 s->node, (long long)claim_ttl(j), slotname, (long long)now_ms);
    if (!r) {
        drop_redis(s, s->rc->errstr);
        return -1;
    }
    int rc;
    if (r->type == REDIS_REPLY_INTEGER && (r->integer >= 0 && r->integer <= 2)) {
        rc = r->integer == 0 ? 0 : 1;
    } else {
        /* An error reply (READONLY replica, OOM, script error) is not proof of
         * anything: treat it like an outage so nothing runs twice. */
        char why[UTIL_ERRLEN];
        snprintf(why, sizeof why, "claim reply: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected type");
        drop_redis(s, why);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

static void record(sched *s, const job *j, const char *slotname, int64_t end_ms, int64_t dur_ms,
                   int ok, const char *errtext)
{
    char hkey[SCHED_JOB_MAX + 16];
    snprintf(hkey, sizeof hkey, "paimon:sched:%s", j->name);
    redisReply *r = redisCommand(s->rc, "EVAL %s 1 %s %s %s %lld %lld %s %s", RECORD_LUA, hkey,
                                 slotname, s->node, (long long)end_ms, (long long)dur_ms,
                                 ok ? "ok" : "error", ok ? "" : errtext);
    if (!r || r->type == REDIS_REPLY_ERROR)
        log_error("sched: could not record the job result", "job", j->name, "slot", slotname,
                  "error", r ? r->str : s->rc->errstr);
    if (r)
        freeReplyObject(r);
    else
        drop_redis(s, s->rc->errstr);
}

static void run_job(sched *s, job *j, const char *slotname, int64_t now_ms)
{
    char err[UTIL_ERRLEN] = "";
    int64_t t0 = util_mono_ms();
    int rc = j->fn(j->ud, err, sizeof err);
    int64_t dur = util_mono_ms() - t0;
    if (rc != 0 && !err[0])
        util_strlcpy(err, "job failed without a reason", sizeof err);
    if (rc != 0)
        log_error("sched: job failed", "job", j->name, "slot", slotname, "node", s->node,
                  "#duration_ms", LOG_I64(dur), "error", err);
    else
        log_info("sched: job ran", "job", j->name, "slot", slotname, "node", s->node,
                 "#duration_ms", LOG_I64(dur));
    /* Reconnect if the job took long enough for the connection to die. */
    if (ensure_redis(s) == 0)
        record(s, j, slotname, now_ms + dur, dur, rc == 0, err);
}

int sched_tick(sched *s, int64_t now_ms)
{
    if (!s || now_ms < 0)
        return -1;
    int ran = 0;
    for (size_t i = 0; i < s->njobs; i++) {
        job *j = &s->jobs[i];
        int64_t slot;
        char slotname[32];
        if (!job_slot(j, now_ms, &slot, slotname, sizeof slotname))
            continue;
        if (j->seen && j->seen_slot == slot)
            continue;
        if (ensure_redis(s) < 0)
            return -1;
        int c = claim(s, j, slotname, now_ms);
        if (c < 0)
            return -1;
        j->seen = 1;
        j->seen_slot = slot;
        if (c == 0 || (j->ran && j->ran_slot == slot))
            continue;
        j->ran = 1;
        j->ran_slot = slot;
        run_job(s, j, slotname, now_ms);
        ran++;
    }
    return ran;
}
