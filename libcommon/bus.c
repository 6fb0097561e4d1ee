/* bus: priority streams, consumer groups, exactly-once handling, retries and the DLQ
 * (see bus.h for the model). */
#include "bus.h"
#include "jsonschema.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const prio_names[BUS_NPRIO] = {"critical", "high", "normal"};

const char *bus_priority_name(bus_priority p)
{
    return (unsigned)p < BUS_NPRIO ? prio_names[p] : "normal";
}

int bus_priority_parse(const char *s)
{
    for (int i = 0; s && i < BUS_NPRIO; i++)
        if (strcmp(s, prio_names[i]) == 0)
            return i;
    return -1;
}

static int topic_ok(const char *t)
{
    if (!t || !*t || strlen(t) > 100)
        return 0;
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '_' || *t == '.' ||
              *t == '-'))
            return 0;
    return 1;
}

int bus_stream_key(char *buf, size_t len, const char *topic, bus_priority p)
{
    if (!topic_ok(topic) || (unsigned)p >= BUS_NPRIO)
        return -1;
    int n = snprintf(buf, len, "paimon:%s:%s", topic, prio_names[p]);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static int delayed_key(char *buf, size_t len, const char *topic, const char *group)
{
    int n = snprintf(buf, len, "paimon:%s:delayed:%s", topic, group);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Frees r and turns a missing or error reply into -1 with a reason. */
static int reply_check(redisContext *rc, redisReply *r, const char *what, char *err, size_t errlen)
{
    int rc_ = 0;
    if (!r)
        rc_ = util_err(err, errlen, "redis %s: %s", what, rc->errstr[0] ? rc->errstr : "no reply");
    else if (r->type == REDIS_REPLY_ERROR)
        rc_ = util_err(err, errlen, "redis %s: %s", what, r->str);
    freeReplyObject(r);
    return rc_;
}

int bus_publish(redisContext *rc, const char *topic, bus_priority prio, const envelope *e,
                long maxlen, char *err, size_t errlen)
{
    char key[160];
    if (bus_stream_key(key, sizeof key, topic, prio) != 0)
        return util_err(err, errlen, "invalid topic or priority");
    char *json = envelope_to_json(e);
    if (!json)
        return util_err(err, errlen, "envelope cannot be serialised");
    redisReply *r = maxlen > 0
                        ? redisCommand(rc, "XADD %s MAXLEN ~ %ld * env %s", key, maxlen, json)
                        : redisCommand(rc, "XADD %s * env %s", key, json);
    free(json);
    return reply_check(rc, r, "XADD", err, errlen);
}

/* Appends "XADD <key> * env <json>" to rc's output buffer as one preformatted RESP
 * command: hiredis's printf-style formatting costs more than the XADD itself in a
 * publisher that sends thousands of events per batch. */
static void xadd_append(redisContext *rc, const char *key, const char *json, size_t jlen)
{
    size_t klen = strlen(key);
    size_t cap = 128 + klen + jlen; /* the RESP framing needs < 100 bytes */
    char stack[2048], *buf = cap <= sizeof stack ? stack : util_malloc(cap);
    int n = snprintf(buf, cap, "*5\r\n$4\r\nXADD\r\n$%zu\r\n%s\r\n$1\r\n*\r\n$3\r\nenv\r\n$%zu\r\n",
                     klen, key, jlen);
    memcpy(buf + n, json, jlen);
    memcpy(buf + n + jlen, "\r\n", 2);
    redisAppendFormattedCommand(rc, buf, (size_t)n + jlen + 2);
    if (buf != stack)
        free(buf);
}

/* Reads the replies of n pipelined XADDs (every queued command has one, even after a
 * failure); *published counts the successes before the first error, rc_ is kept if
 * already set. */
static int xadd_replies(redisContext *rc, size_t n, int rc_, size_t *published, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK)
            return util_err(err, errlen, "redis XADD: %s", rc->errstr);
        if (r->type == REDIS_REPLY_ERROR) {
            if (rc_ == 0)
                rc_ = util_err(err, errlen, "redis XADD: %s", r->str);
        } else if (rc_ == 0) {
            (*published)++;
        }
        freeReplyObject(r);
    }
    return rc_;
}

int bus_publish_many(redisContext *rc, const char *topic, const bus_priority *prio,
                     envelope *const *es, size_t n, size_t *published, char *err, size_t errlen)
{
    *published = 0;
    char keys[BUS_NPRIO][160];
    for (int p = 0; p < BUS_NPRIO; p++)
        if (bus_stream_key(keys[p], sizeof keys[p], topic, (bus_priority)p) != 0)
            return util_err(err, errlen, "invalid topic");
    for (size_t i = 0; i < n; i++)
        if ((unsigned)prio[i] >= BUS_NPRIO)
            return util_err(err, errlen, "invalid priority at %zu", i);
    size_t queued = 0;
    for (; queued < n; queued++) {
        char *json = envelope_to_json(es[queued]);
        if (!json)
            break;
        xadd_append(rc, keys[prio[queued]], json, strlen(json));
        free(json);
    }
    int rc_ = queued < n ? util_err(err, errlen, "envelope %zu cannot be serialised", queued) : 0;
    return xadd_replies(rc, queued, rc_, published, err, errlen);
}

int bus_publish_json_many(redisContext *rc, const char *topic, const bus_priority *prio,
                          const char *const *json, size_t n, size_t *published, char *err,
                          size_t errlen)
{
    *published = 0;
    char keys[BUS_NPRIO][160];
    for (int p = 0; p < BUS_NPRIO; p++)
        if (bus_stream_key(keys[p], sizeof keys[p], topic, (bus_priority)p) != 0)
            return util_err(err, errlen, "invalid topic");
    for (size_t i = 0; i < n; i++)
        if ((unsigned)prio[i] >= BUS_NPRIO || !json[i])
            return util_err(err, errlen, "invalid message at %zu", i);
    for (size_t i = 0; i < n; i++)
        xadd_append(rc, keys[prio[i]], json[i], strlen(json[i]));
    return xadd_replies(rc, n, 0, published, err, errlen);
}

/* ---- consumer ---------------------------------------------------------------------- */

struct bus_consumer {
    bus_consumer_cfg cfg;
    char *topic, *group, *consumer, *schema, *redis_url;
    redisContext *rc;
    char streams[BUS_NPRIO][160];
    char delayed[256];
    unsigned starve[BUS_NPRIO];
    int recover_own;
    int64_t next_move_ms, next_claim_ms, next_maint_ms;
    char claim_cursor[BUS_NPRIO][48];
    bus_stats stats;
    metrics_counter *m_handled, *m_dup, *m_retried, *m_dead;
    metrics_histogram *m_batch_seconds;
    metrics_gauge *m_lag[BUS_NPRIO], *m_pending[BUS_NPRIO], *m_delayed, *m_dlq;
};

static void consumer_metrics_init(bus_consumer *c)
{
    metrics_registry *r = metrics_global();
    char l[256];
    snprintf(l, sizeof l, "topic=\"%s\",group=\"%s\"", c->topic, c->group);
    c->m_handled =
        metrics_counter_get(r, "paimon_bus_handled_total", "Messages whose handler committed", l);
    c->m_dup = metrics_counter_get(r, "paimon_bus_duplicates_total",
                                   "Messages skipped as already processed", l);
    c->m_retried = metrics_counter_get(r, "paimon_bus_retried_total",
                                       "Messages re-scheduled after a failure", l);
    c->m_dead =
        metrics_counter_get(r, "paimon_bus_dead_lettered_total", "Messages moved to the DLQ", l);
    c->m_batch_seconds = metrics_histogram_get(r, "paimon_bus_batch_seconds",
                                               "Time to handle and commit one batch", l, NULL, 0);
    c->m_delayed =
        metrics_gauge_get(r, "paimon_bus_delayed", "Retries waiting in the delayed set", l);
    c->m_dlq = metrics_gauge_get(r, "paimon_bus_dlq_length", "Entries in the DLQ", NULL);
    for (int p = 0; p < BUS_NPRIO; p++) {
        snprintf(l, sizeof l, "topic=\"%s\",group=\"%s\",priority=\"%s\"", c->topic, c->group,
                 prio_names[p]);
        c->m_lag[p] =
            metrics_gauge_get(r, "paimon_bus_lag", "Entries not yet delivered to the group", l);
        c->m_pending[p] =
            metrics_gauge_get(r, "paimon_bus_pending", "Entries delivered but not acknowledged", l);
    }
}

static void consumer_metrics_depth(bus_consumer *c)
{
    bus_depth d;
    if (bus_depth_get(c->rc, c->topic, c->group, &d, NULL, 0) != 0)
        return;
    for (int p = 0; p < BUS_NPRIO; p++) {
        metrics_gauge_set(c->m_lag[p], (double)d.lag[p]);
        metrics_gauge_set(c->m_pending[p], (double)d.pending[p]);
    }
    metrics_gauge_set(c->m_delayed, (double)d.delayed);
    metrics_gauge_set(c->m_dlq, (double)d.dlq);
}

/* One stream entry on its way through a batch. Borrowed strings point into the reply. */
typedef struct entry {
    int prio;
    const char *sid;
    const char *raw;       /* envelope JSON, NULL when the entry has no env field */
    const char *retry_for; /* set on re-scheduled copies */
    envelope *env;
    int done; /* acked or disposed of */
} entry;

static void consumer_cfg_defaults(bus_consumer_cfg *c)
{
    if (c->batch <= 0)
        c->batch = 100;
    if (c->block_ms <= 0)
        c->block_ms = 1000;
    if (c->starvation_k <= 0)
        c->starvation_k = 8;
    if (c->visibility_ms <= 0)
        c->visibility_ms = 30000;
    if (c->max_attempts <= 0)
        c->max_attempts = 5;
    if (c->backoff_base_ms <= 0)
        c->backoff_base_ms = 500;
    if (c->backoff_max_ms <= 0)
        c->backoff_max_ms = 60000;
    if (c->maintenance_ms <= 0)
        c->maintenance_ms = 5000;
    if (c->retain <= 0)
        c->retain = 100000;
}

static int ensure_connected(bus_consumer *c, char *err, size_t errlen)
{
    if (c->rc && !c->rc->err)
        return 0;
    if (c->rc)
        redisFree(c->rc);
    /* Command timeout above the blocking read so a BLOCK never looks like a dead server. */
    c->rc = rconn_connect(c->redis_url, c->cfg.block_ms + 5000, err, errlen);
    if (!c->rc)
        return -1;
    for (int p = 0; p < BUS_NPRIO; p++) {
        redisReply *r =
            redisCommand(c->rc, "XGROUP CREATE %s %s 0 MKSTREAM", c->streams[p], c->group);
        if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) == 0) {
            freeReplyObject(r);
            continue;
        }
        if (reply_check(c->rc, r, "XGROUP CREATE", err, errlen) != 0)
            return -1;
    }
    /* After any reconnect our own pending entries may hold unfinished work. */
    c->recover_own = 1;
    return 0;
}

bus_consumer *bus_consumer_new(const bus_consumer_cfg *cfg, char *err, size_t errlen)
{
    if (!cfg || !topic_ok(cfg->topic))
        return util_err(err, errlen, "bus: invalid topic"), NULL;
    if (!cfg->group || !topic_ok(cfg->group) || !cfg->consumer || !*cfg->consumer)
        return util_err(err, errlen, "bus: group and consumer names are required"), NULL;
    if (!db_ident_ok(cfg->schema))
        return util_err(err, errlen, "bus: invalid schema name"), NULL;
    if (!cfg->db || !cfg->redis_url || !cfg->handler == !cfg->batch_handler)
        return util_err(err, errlen, "bus: db pool, redis url and exactly one handler required"),
               NULL;
    bus_consumer *c = util_calloc(1, sizeof *c);
    c->cfg = *cfg;
    consumer_cfg_defaults(&c->cfg);
    c->topic = util_strdup(cfg->topic);
    c->group = util_strdup(cfg->group);
    c->consumer = util_strdup(cfg->consumer);
    c->schema = util_strdup(cfg->schema);
    c->redis_url = util_strdup(cfg->redis_url);
    c->cfg.topic = c->topic;
    c->cfg.group = c->group;
    c->cfg.consumer = c->consumer;
    c->cfg.schema = c->schema;
    c->cfg.redis_url = c->redis_url;
    for (int p = 0; p < BUS_NPRIO; p++) {
        bus_stream_key(c->streams[p], sizeof c->streams[p], c->topic, (bus_priority)p);
        strcpy(c->claim_cursor[p], "0-0");
    }
    delayed_key(c->delayed, sizeof c->delayed, c->topic, c->group);
    consumer_metrics_init(c);
    if (ensure_connected(c, err, errlen) != 0) {
        bus_consumer_free(c);
        return NULL;
    }
    return c;
}

void bus_consumer_free(bus_consumer *c)
{
    if (!c)
        return;
    if (c->rc)
        redisFree(c->rc);
    free(c->topic);
    free(c->group);
    free(c->consumer);
    free(c->schema);
    free(c->redis_url);
    free(c);
}

void bus_consumer_stats(const bus_consumer *c, bus_stats *out)
{
    *out = c->stats;
}

/* Runs a MULTI ... EXEC block of pipelined commands; each cmd is an argv list. */
static int multi_exec(redisContext *rc, int ncmd, int *argc, const char ***argv, char *err,
                      size_t errlen)
{
    redisAppendCommand(rc, "MULTI");
    for (int i = 0; i < ncmd; i++)
        redisAppendCommandArgv(rc, argc[i], argv[i], NULL);
    redisAppendCommand(rc, "EXEC");
    int rc_ = 0;
    for (int i = 0; i < ncmd + 2; i++) {
        redisReply *r = NULL;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
            return util_err(err, errlen, "redis MULTI/EXEC: %s", rc->errstr);
        }
        if (i == ncmd + 1) {
            if (r->type != REDIS_REPLY_ARRAY)
                rc_ = util_err(err, errlen, "redis EXEC aborted");
            else
                for (size_t k = 0; k < r->elements; k++)
                    if (r->element[k]->type == REDIS_REPLY_ERROR && rc_ == 0)
                        rc_ = util_err(err, errlen, "redis EXEC: %s", r->element[k]->str);
        } else if (r->type == REDIS_REPLY_ERROR && rc_ == 0) {
            rc_ = util_err(err, errlen, "redis MULTI: %s", r->str);
        }
        freeReplyObject(r);
    }
    return rc_;
}

static int ack_ids(bus_consumer *c, int prio, const char **ids, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    const char **argv = util_malloc((n + 3) * sizeof *argv);
    argv[0] = "XACK";
    argv[1] = c->streams[prio];
    argv[2] = c->group;
    for (size_t i = 0; i < n; i++)
        argv[3 + i] = ids[i];
    redisReply *r = redisCommandArgv(c->rc, (int)(n + 3), argv, NULL);
    free(argv);
    return reply_check(c->rc, r, "XACK", err, errlen);
}

/* Publishes an alert about the bus itself. The alerts topic's own failures are only
 * logged: alerting about a failed alert through the same path would loop. */
static void raise_dlq_alert(bus_consumer *c, const entry *e, const char *dlq_id, const char *reason)
{
    if (strcmp(c->topic, "alerts") == 0) {
        log_error("alert dead-lettered", "group", c->group, "dlq_id", dlq_id, "error", reason);
        return;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "severity", "warning");
    cJSON_AddStringToObject(p, "category", "bus");
    cJSON_AddStringToObject(p, "title", "Message moved to the dead-letter queue");
    cJSON_AddStringToObject(p, "message", reason);
    cJSON *labels = cJSON_AddObjectToObject(p, "labels");
    cJSON_AddStringToObject(labels, "topic", c->topic);
    cJSON_AddStringToObject(labels, "group", c->group);
    cJSON_AddStringToObject(labels, "stream", c->streams[e->prio]);
    cJSON_AddStringToObject(labels, "dlq_id", dlq_id);
    if (e->env)
        cJSON_AddStringToObject(labels, "message_id", e->env->id);
    char id[128];
    snprintf(id, sizeof id, "dlq:%s", dlq_id);
    envelope *a = envelope_new(id, "alert.raised", c->group, e->env ? e->env->trace_id : NULL, p);
    char err[UTIL_ERRLEN] = "envelope not built";
    if (!a || bus_publish(c->rc, "alerts", BUS_HIGH, a, 0, err, sizeof err) != 0)
        log_error("dlq alert not published", "group", c->group, "dlq_id", dlq_id, "error", err);
    envelope_free(a);
}

static int dead_letter(bus_consumer *c, entry *e, const char *reason, int attempts, char *err,
                       size_t errlen)
{
    char att[16], now[24];
    snprintf(att, sizeof att, "%d", attempts);
    snprintf(now, sizeof now, "%lld", (long long)util_now_ms());
    const char *raw = e->raw ? e->raw : "";
    const char *xadd[] = {
        "XADD",  BUS_DLQ_KEY, "*",        "topic",     c->topic, "stream", c->streams[e->prio],
        "group", c->group,    "entry_id", e->sid,      "env",    raw,      "error",
        reason,  "attempts",  att,        "failed_at", now};
    const char *xack[] = {"XACK", c->streams[e->prio], c->group, e->sid};
    int argc[2] = {(int)(sizeof xadd / sizeof *xadd), 4};
    const char **argv[2] = {xadd, xack};
    if (multi_exec(c->rc, 2, argc, argv, err, errlen) != 0)
        return -1;
    e->done = 1;
    c->stats.dead++;
    metrics_counter_inc(c->m_dead);
    /* The DLQ id is not returned through EXEC parsing above; look it up cheaply. */
    redisReply *r = redisCommand(c->rc, "XREVRANGE %s + - COUNT 1", BUS_DLQ_KEY);
    const char *dlq_id = r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                                 r->element[0]->type == REDIS_REPLY_ARRAY
                             ? r->element[0]->element[0]->str
                             : "?";
    raise_dlq_alert(c, e, dlq_id, reason);
    freeReplyObject(r);
    return 0;
}

/* Equal jitter: half the exponential delay fixed, half random, so retries of a
 * burst spread out instead of hammering a recovering dependency together. */
static int64_t backoff_ms(const bus_consumer_cfg *cfg, int attempt)
{
    int64_t d = cfg->backoff_base_ms;
    for (int i = 0; i < attempt && d < cfg->backoff_max_ms; i++)
        d *= 2;
    if (d > cfg->backoff_max_ms)
        d = cfg->backoff_max_ms;
    return d / 2 + (int64_t)util_random_below((uint64_t)(d / 2) + 1);
}

static int schedule_retry(bus_consumer *c, entry *e, int fatal, const char *reason, char *err,
                          size_t errlen)
{
    int attempts = e->env->attempt + 1;
    if (fatal || attempts >= c->cfg.max_attempts)
        return dead_letter(c, e, reason, attempts, err, errlen);
    int64_t due = util_now_ms() + backoff_ms(&c->cfg, e->env->attempt);
    int saved = e->env->attempt;
    e->env->attempt = attempts;
    char *json = envelope_to_json(e->env);
    e->env->attempt = saved;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "s", c->streams[e->prio]);
    cJSON_AddStringToObject(m, "g", c->group);
    cJSON_AddStringToObject(m, "e", json ? json : "");
    cJSON_AddStringToObject(m, "why", reason);
    char *member = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    free(json);
    char score[24];
    snprintf(score, sizeof score, "%lld", (long long)due);
    const char *zadd[] = {"ZADD", c->delayed, score, member};
    const char *xack[] = {"XACK", c->streams[e->prio], c->group, e->sid};
    int argc[2] = {4, 4};
    const char **argv[2] = {zadd, xack};
    int rc = multi_exec(c->rc, 2, argc, argv, err, errlen);
    free(member);
    if (rc == 0) {
        e->done = 1;
        c->stats.retried++;
        metrics_counter_inc(c->m_retried);
    }
    return rc;
}

typedef struct batch_ctx {
    bus_consumer *c;
    entry **todo;
    size_t n;
    size_t failed_at; /* index of the message whose handler failed, or n if unknown */
    int handler_failed;
    int failed_rc;
    char reason[UTIL_ERRLEN];
    int *is_new;
} batch_ctx;

static int run_batch(db_conn *tx, batch_ctx *b, char *err, size_t errlen)
{
    const char **ids = util_malloc(b->n * sizeof *ids);
    for (size_t i = 0; i < b->n; i++)
        ids[i] = b->todo[i]->env->id;
    int rc =
        db_processed_mark_many(tx, b->c->schema, b->c->topic, ids, b->n, b->is_new, err, errlen);
    free(ids);
    if (rc != 0)
        return -1;
    b->reason[0] = '\0';
    size_t at = b->n;
    int hr = BUS_OK;
    if (b->c->cfg.batch_handler) {
        const envelope **msgs = util_malloc(b->n * sizeof *msgs);
        size_t *where = util_malloc(b->n * sizeof *where), m = 0;
        for (size_t i = 0; i < b->n; i++)
            if (b->is_new[i]) {
                where[m] = i;
                msgs[m++] = b->todo[i]->env;
            }
        size_t failed = m;
        if (m > 0)
            hr = b->c->cfg.batch_handler(tx, msgs, m, b->c->cfg.ud, &failed, b->reason,
                                         sizeof b->reason);
        if (hr != BUS_OK && failed < m)
            at = where[failed];
        free(msgs);
        free(where);
    } else {
        for (size_t i = 0; i < b->n && hr == BUS_OK; i++) {
            if (!b->is_new[i])
                continue;
            hr = b->c->cfg.handler(tx, b->todo[i]->env, b->c->cfg.ud, b->reason, sizeof b->reason);
            if (hr != BUS_OK)
                at = i;
        }
    }
    if (hr == BUS_OK)
        return 0;
    b->handler_failed = 1;
    b->failed_at = at;
    b->failed_rc = hr;
    if (!b->reason[0])
        util_strlcpy(b->reason, "handler failed without a reason", sizeof b->reason);
    return util_err(err, errlen, "%s", b->reason);
}

/* BEGIN; mark + handle every entry; COMMIT. 0 = committed, 1 = a handler failed (rolled
 * back; b->failed_at says which when known), -1 = database trouble (rolled back). */
static int tx_batch(bus_consumer *c, batch_ctx *b, char *err, size_t errlen)
{
    db_conn *tx = db_acquire(c->cfg.db, 10000, err, errlen);
    if (!tx)
        return -1;
    b->failed_at = b->n;
    int rc = db_exec(tx, "BEGIN", err, errlen);
    if (rc == 0)
        rc = run_batch(tx, b, err, errlen);
    if (rc == 0)
        rc = db_exec(tx, "COMMIT", err, errlen);
    else if (tx->pg && PQstatus(tx->pg) == CONNECTION_OK)
        PQclear(PQexec(tx->pg, "ROLLBACK"));
    db_release(c->cfg.db, tx);
    if (rc == 0)
        return 0;
    return b->handler_failed ? 1 : -1;
}

static void count_done(bus_consumer *c, int is_new)
{
    if (is_new) {
        c->stats.handled++;
        metrics_counter_inc(c->m_handled);
    } else {
        c->stats.duplicates++;
        metrics_counter_inc(c->m_dup);
    }
}

/* Handles entries of one priority (see the loop below for how failures are isolated). */
static int handle_entries(bus_consumer *c, entry *es, size_t n, char *err, size_t errlen)
{
    int64_t t0 = util_mono_us();
    if (n == 0)
        return 0;
    int prio = es[0].prio;
    entry **todo = util_malloc(n * sizeof *todo);
    const char **acks = util_malloc(n * sizeof *acks);
    int *is_new = util_malloc(n * sizeof *is_new);
    size_t ntodo = 0, nack = 0;
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        entry *e = &es[i];
        if (e->retry_for && strcmp(e->retry_for, c->group) != 0) {
            acks[nack++] = e->sid; /* another group's retry copy */
            c->stats.foreign++;
            continue;
        }
        char why[UTIL_ERRLEN];
        if (!e->raw) {
            rc = dead_letter(c, e, "stream entry has no env field", 1, err, errlen);
            continue;
        }
        if (envelope_parse(e->raw, strlen(e->raw), &e->env, why, sizeof why) != 0) {
            char reason[UTIL_ERRLEN + 32];
            snprintf(reason, sizeof reason, "invalid envelope: %s", why);
            rc = dead_letter(c, e, reason, 1, err, errlen);
            continue;
        }
        const jsonschema *ps = jsonschema_embedded(e->env->type, NULL, 0);
        if (ps && jsonschema_validate(ps, e->env->payload, why, sizeof why) != 0) {
            char reason[UTIL_ERRLEN + 64];
            snprintf(reason, sizeof reason, "payload does not match schema %s: %s", e->env->type,
                     why);
            rc = dead_letter(c, e, reason, 1, err, errlen);
            continue;
        }
        todo[ntodo++] = e;
    }

    /* The whole batch commits in one transaction. When a handler fails, the batch is
     * rolled back, that message alone is re-scheduled (its handler is not run twice
     * for one delivery) and the rest is tried again without it. When a batch handler
     * cannot name the culprit, the rest goes one message per transaction. */
    int single = 0;
    while (rc == 0 && ntodo > 0) {
        size_t n_try = single ? 1 : ntodo;
        batch_ctx b = {.c = c, .todo = todo, .n = n_try, .is_new = is_new};
        int br = tx_batch(c, &b, err, errlen);
        if (br < 0) {
            rc = -1;
            break;
        }
        if (br == 0) {
            for (size_t i = 0; i < n_try; i++) {
                acks[nack++] = todo[i]->sid;
                count_done(c, is_new[i]);
            }
            memmove(todo, todo + n_try, (ntodo - n_try) * sizeof *todo);
            ntodo -= n_try;
            continue;
        }
        if (b.failed_at >= n_try) {
            if (n_try > 1) {
                single = 1;
                continue;
            }
            b.failed_at = 0;
        }
        size_t k = b.failed_at;
        rc = schedule_retry(c, todo[k], b.failed_rc == BUS_FATAL, b.reason, err, errlen);
        memmove(&todo[k], &todo[k + 1], (ntodo - k - 1) * sizeof *todo);
        ntodo--;
    }
    /* Ack what committed even when a later step failed: those effects are durable. */
    int arc = ack_ids(c, prio, acks, nack, rc == 0 ? err : NULL, errlen);
    if (rc == 0)
        rc = arc;
    if (rc != 0)
        c->recover_own = 1; /* unacked entries stay in our pending list: re-read them */
    c->stats.per_priority[prio] += n;
    metrics_histogram_observe(c->m_batch_seconds, (double)(util_mono_us() - t0) / 1e6);
    for (size_t i = 0; i < n; i++) {
        envelope_free(es[i].env);
        es[i].env = NULL;
    }
    free(todo);
    free(acks);
    free(is_new);
    return rc;
}

/* Fills entries from an XREADGROUP/XAUTOCLAIM entry array. Entries whose fields
 * are gone (deleted from the stream) get raw == NULL. */
static size_t collect(const redisReply *arr, int prio, entry *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; arr && arr->type == REDIS_REPLY_ARRAY && i < arr->elements && n < cap; i++) {
        const redisReply *it = arr->element[i];
        if (it->type != REDIS_REPLY_ARRAY || it->elements < 2 ||
            it->element[0]->type != REDIS_REPLY_STRING)
            continue;
        entry *e = &out[n++];
        memset(e, 0, sizeof *e);
        e->prio = prio;
        e->sid = it->element[0]->str;
        const redisReply *f = it->element[1];
        for (size_t k = 0; f && f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
            const char *name = f->element[k]->str;
            const redisReply *v = f->element[k + 1];
            if (!name || v->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(name, "env") == 0)
                e->raw = v->str;
            else if (strcmp(name, "retry_for") == 0)
                e->retry_for = v->str;
        }
    }
    return n;
}

/* Reads one priority's stream (id ">" new, "0" our own pending); handles what came. */
static int read_one(bus_consumer *c, int prio, const char *id, int *got, char *err, size_t errlen)
{
    *got = 0;
    redisReply *r = redisCommand(c->rc, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s %s", c->group,
                                 c->consumer, c->cfg.batch, c->streams[prio], id);
    if (!r || r->type == REDIS_REPLY_ERROR)
        return reply_check(c->rc, r, "XREADGROUP", err, errlen);
    int rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const redisReply *entries = r->element[0]->element[1];
        entry *es = util_calloc(entries->elements, sizeof *es);
        size_t n = collect(entries, prio, es, entries->elements);
        *got = (int)n;
        rc = handle_entries(c, es, n, err, errlen);
        free(es);
    }
    freeReplyObject(r);
    return rc;
}

static int recover_own(bus_consumer *c, int *total, char *err, size_t errlen)
{
    for (int p = 0; p < BUS_NPRIO; p++) {
        int got;
        do {
            if (read_one(c, p, "0", &got, err, errlen) != 0)
                return -1;
            *total += got;
        } while (got == c->cfg.batch);
    }
    c->recover_own = 0;
    return 0;
}

/* Takes over entries idle past the visibility timeout in any consumer's pending list.
 * An entry delivered too often without an ack is killing its consumers: dead-letter it. */
static int autoclaim(bus_consumer *c, int *total, char *err, size_t errlen)
{
    for (int p = 0; p < BUS_NPRIO; p++) {
        redisReply *r = redisCommand(c->rc, "XAUTOCLAIM %s %s %s %lld %s COUNT %d", c->streams[p],
                                     c->group, c->consumer, (long long)c->cfg.visibility_ms,
                                     c->claim_cursor[p], c->cfg.batch);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
            return reply_check(c->rc, r, "XAUTOCLAIM", err, errlen) ? -1 : 0;
        util_strlcpy(c->claim_cursor[p],
                     r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "0-0",
                     sizeof c->claim_cursor[p]);
        const redisReply *entries = r->element[1];
        entry *es = util_calloc(entries->elements, sizeof *es);
        size_t n = collect(entries, p, es, entries->elements);
        int rc = 0;
        if (n > 0) {
            c->stats.claimed += n;
            *total += (int)n;
            /* Delivery counts of what we just claimed. */
            redisReply *pr = redisCommand(c->rc, "XPENDING %s %s %s %s %d", c->streams[p], c->group,
                                          es[0].sid, es[n - 1].sid, (int)n * 4);
            size_t keep = 0;
            for (size_t i = 0; i < n && rc == 0; i++) {
                long long deliveries = 0;
                for (size_t k = 0; pr && pr->type == REDIS_REPLY_ARRAY && k < pr->elements; k++)
                    if (strcmp(pr->element[k]->element[0]->str, es[i].sid) == 0)
                        deliveries = pr->element[k]->element[3]->integer;
                if (deliveries > c->cfg.max_attempts + 1) {
                    char why[128];
                    snprintf(why, sizeof why, "poison message: delivered %lld times without an ack",
                             deliveries);
                    rc = dead_letter(c, &es[i], why, (int)deliveries, err, errlen);
                } else {
                    es[keep++] = es[i];
                }
            }
            freeReplyObject(pr);
            if (rc == 0)
                rc = handle_entries(c, es, keep, err, errlen);
        }
        free(es);
        freeReplyObject(r);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static const char *move_due_lua =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)\n"
    "for _, m in ipairs(due) do\n"
    "  local ok, o = pcall(cjson.decode, m)\n"
    "  if ok and type(o) == 'table' and o.s and o.e and o.g then\n"
    "    redis.call('XADD', o.s, '*', 'env', o.e, 'retry_for', o.g)\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[1], m)\n"
    "end\n"
    "return #due\n";

int bus_move_due(redisContext *rc, const char *topic, const char *group, int64_t now_ms, char *err,
                 size_t errlen)
{
    char key[256], now[24];
    if (!topic_ok(topic) || !topic_ok(group) || delayed_key(key, sizeof key, topic, group) != 0)
        return util_err(err, errlen, "invalid topic or group");
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    redisReply *r = redisCommand(rc, "EVAL %s 1 %s %s", move_due_lua, key, now);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return reply_check(rc, r, "EVAL move_due", err, errlen) ? -1 : 0;
    int moved = (int)r->integer;
    freeReplyObject(r);
    return moved;
}

/* Returns the ID just after `id` ("ms-seq" -> "ms-(seq+1)"). */
static void id_next(const char *id, char *out, size_t len)
{
    unsigned long long ms = 0, seq = 0;
    if (sscanf(id, "%llu-%llu", &ms, &seq) != 2)
        ms = seq = 0;
    snprintf(out, len, "%llu-%llu", ms, seq + 1);
}

/* Compares stream IDs numerically. */
static int id_cmp(const char *a, const char *b)
{
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);
    if (am != bm)
        return am < bm ? -1 : 1;
    return as < bs ? -1 : as > bs;
}

static const redisReply *map_get(const redisReply *m, const char *key)
{
    for (size_t i = 0; m && m->type == REDIS_REPLY_ARRAY && i + 1 < m->elements; i += 2)
        if (m->element[i]->type == REDIS_REPLY_STRING && strcmp(m->element[i]->str, key) == 0)
            return m->element[i + 1];
    return NULL;
}

int bus_trim(redisContext *rc, const char *topic, long retain, char *err, size_t errlen)
{
    for (int p = 0; p < BUS_NPRIO; p++) {
        char key[160];
        if (bus_stream_key(key, sizeof key, topic, (bus_priority)p) != 0)
            return util_err(err, errlen, "invalid topic");
        redisReply *len = redisCommand(rc, "XLEN %s", key);
        if (!len || len->type != REDIS_REPLY_INTEGER)
            return reply_check(rc, len, "XLEN", err, errlen) ? -1 : -1;
        long long n = len->integer;
        freeReplyObject(len);
        if (n <= retain)
            continue;
        redisReply *g = redisCommand(rc, "XINFO GROUPS %s", key);
        if (!g || g->type != REDIS_REPLY_ARRAY)
            return reply_check(rc, g, "XINFO GROUPS", err, errlen) ? -1 : -1;
        char safe[48] = "";
        for (size_t i = 0; i < g->elements; i++) {
            const redisReply *grp = g->element[i];
            const redisReply *name = map_get(grp, "name");
            const redisReply *pending = map_get(grp, "pending");
            const redisReply *last = map_get(grp, "last-delivered-id");
            if (!name || !pending || !last)
                continue;
            char cand[48];
            if (pending->integer > 0) {
                redisReply *x = redisCommand(rc, "XPENDING %s %s", key, name->str);
                int ok = x && x->type == REDIS_REPLY_ARRAY && x->elements >= 2 &&
                         x->element[1]->type == REDIS_REPLY_STRING;
                util_strlcpy(cand, ok ? x->element[1]->str : "0-0", sizeof cand);
                freeReplyObject(x);
            } else {
                id_next(last->str, cand, sizeof cand);
            }
            if (!safe[0] || id_cmp(cand, safe) < 0)
                util_strlcpy(safe, cand, sizeof safe);
        }
        redisReply *t = g->elements == 0 ? redisCommand(rc, "XTRIM %s MAXLEN ~ %ld", key, retain)
                                         : redisCommand(rc, "XTRIM %s MINID %s", key, safe);
        freeReplyObject(g);
        if (reply_check(rc, t, "XTRIM", err, errlen) != 0)
            return -1;
    }
    return 0;
}

static const char *replay_lua =
    "if redis.call('XDEL', KEYS[1], ARGV[1]) == 1 then\n"
    "  redis.call('XADD', ARGV[2], '*', 'env', ARGV[3], 'retry_for', ARGV[4])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

int bus_dlq_replay(redisContext *rc, const char *dlq_id, char *err, size_t errlen)
{
    if (!dlq_id || strlen(dlq_id) > 40 || strspn(dlq_id, "0123456789-") != strlen(dlq_id))
        return util_err(err, errlen, "invalid DLQ entry id");
    redisReply *r = redisCommand(rc, "XRANGE %s %s %s", BUS_DLQ_KEY, dlq_id, dlq_id);
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return reply_check(rc, r, "XRANGE", err, errlen) ? -1 : -1;
    if (r->elements == 0) {
        freeReplyObject(r);
        return 0;
    }
    const redisReply *f = r->element[0]->element[1];
    const redisReply *stream = map_get(f, "stream"), *group = map_get(f, "group"),
                     *raw = map_get(f, "env");
    int rc_ = -1;
    envelope *e = NULL;
    char why[UTIL_ERRLEN];
    if (!stream || !group || !raw)
        util_err(err, errlen, "DLQ entry %s lacks stream, group or env", dlq_id);
    else if (envelope_parse(raw->str, raw->len, &e, why, sizeof why) != 0)
        util_err(err, errlen, "DLQ entry %s cannot be replayed: %s", dlq_id, why);
    else {
        e->attempt = 0;
        char *json = envelope_to_json(e);
        redisReply *x = redisCommand(rc, "EVAL %s 1 %s %s %s %s %s", replay_lua, BUS_DLQ_KEY,
                                     dlq_id, stream->str, json, group->str);
        free(json);
        if (x && x->type == REDIS_REPLY_INTEGER)
            rc_ = (int)x->integer;
        else
            util_err(err, errlen, "redis EVAL replay: %s",
                     x && x->type == REDIS_REPLY_ERROR ? x->str : rc->errstr);
        freeReplyObject(x);
    }
    envelope_free(e);
    freeReplyObject(r);
    return rc_;
}

int bus_depth_get(redisContext *rc, const char *topic, const char *group, bus_depth *out, char *err,
                  size_t errlen)
{
    memset(out, 0, sizeof *out);
    for (int p = 0; p < BUS_NPRIO; p++) {
        char key[160];
        if (bus_stream_key(key, sizeof key, topic, (bus_priority)p) != 0)
            return util_err(err, errlen, "invalid topic");
        redisReply *g = redisCommand(rc, "XINFO GROUPS %s", key);
        if (g && g->type == REDIS_REPLY_ERROR && strstr(g->str, "no such key")) {
            freeReplyObject(g);
            continue;
        }
        if (!g || g->type != REDIS_REPLY_ARRAY)
            return reply_check(rc, g, "XINFO GROUPS", err, errlen) ? -1 : -1;
        for (size_t i = 0; i < g->elements; i++) {
            const redisReply *name = map_get(g->element[i], "name");
            if (!name || strcmp(name->str, group) != 0)
                continue;
            const redisReply *lag = map_get(g->element[i], "lag");
            const redisReply *pend = map_get(g->element[i], "pending");
            out->lag[p] = lag && lag->type == REDIS_REPLY_INTEGER ? lag->integer : -1;
            out->pending[p] = pend ? pend->integer : 0;
        }
        freeReplyObject(g);
    }
    char dk[256];
    delayed_key(dk, sizeof dk, topic, group);
    redisReply *z = redisCommand(rc, "ZCARD %s", dk);
    out->delayed = z && z->type == REDIS_REPLY_INTEGER ? z->integer : 0;
    freeReplyObject(z);
    redisReply *d = redisCommand(rc, "XLEN %s", BUS_DLQ_KEY);
    out->dlq = d && d->type == REDIS_REPLY_INTEGER ? d->integer : 0;
    freeReplyObject(d);
    return 0;
}

/* The level to try first this round: a lower priority that has waited k rounds. */
static int boosted_level(const bus_consumer *c)
{
    int best = -1;
    for (int p = 1; p < BUS_NPRIO; p++)
        if (c->starve[p] >= (unsigned)c->cfg.starvation_k &&
            (best < 0 || c->starve[p] > c->starve[best]))
            best = p;
    return best;
}

static void note_served(bus_consumer *c, int served, const int *tried_empty)
{
    for (int p = 0; p < BUS_NPRIO; p++) {
        if (p == served || tried_empty[p])
            c->starve[p] = 0;
        else if (p > served)
            c->starve[p]++;
    }
}

int bus_consumer_poll(bus_consumer *c, char *err, size_t errlen)
{
    if (ensure_connected(c, err, errlen) != 0)
        return -1;
    int total = 0;
    int64_t now = util_mono_ms();
    if (now >= c->next_move_ms) {
        if (bus_move_due(c->rc, c->topic, c->group, util_now_ms(), err, errlen) < 0)
            return -1;
        c->next_move_ms = now + 100;
    }
    if (c->recover_own && recover_own(c, &total, err, errlen) != 0)
        return -1;
    if (now >= c->next_claim_ms) {
        if (autoclaim(c, &total, err, errlen) != 0)
            return -1;
        c->next_claim_ms = now + c->cfg.visibility_ms / 2;
    }
    if (now >= c->next_maint_ms) {
        if (bus_trim(c->rc, c->topic, c->cfg.retain, err, errlen) != 0)
            return -1;
        consumer_metrics_depth(c);
        c->next_maint_ms = now + c->cfg.maintenance_ms;
    }
    if (total > 0)
        return total;

    int order[BUS_NPRIO], k = 0, boost = boosted_level(c);
    if (boost >= 0)
        order[k++] = boost;
    for (int p = 0; p < BUS_NPRIO; p++)
        if (p != boost)
            order[k++] = p;
    int tried_empty[BUS_NPRIO] = {0};
    for (int i = 0; i < BUS_NPRIO; i++) {
        int got;
        if (read_one(c, order[i], ">", &got, err, errlen) != 0)
            return -1;
        if (got > 0) {
            c->stats.batches++;
            note_served(c, order[i], tried_empty);
            return got;
        }
        tried_empty[order[i]] = 1;
    }
    memset(c->starve, 0, sizeof c->starve);

    /* Idle: block on all three at once; whatever arrives is handled in priority order. */
    redisReply *r = redisCommand(
        c->rc, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s %s %s > > >", c->group,
        c->consumer, c->cfg.batch, c->cfg.block_ms, c->streams[0], c->streams[1], c->streams[2]);
    if (!r || r->type == REDIS_REPLY_ERROR)
        return reply_check(c->rc, r, "XREADGROUP BLOCK", err, errlen);
    int rc = 0;
    for (int p = 0; p < BUS_NPRIO && rc == 0 && r->type == REDIS_REPLY_ARRAY; p++) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *s = r->element[i];
            if (strcmp(s->element[0]->str, c->streams[p]) != 0)
                continue;
            const redisReply *entries = s->element[1];
            entry *es = util_calloc(entries->elements, sizeof *es);
            size_t n = collect(entries, p, es, entries->elements);
            total += (int)n;
            rc = handle_entries(c, es, n, err, errlen);
            free(es);
        }
    }
    if (total > 0)
        c->stats.batches++;
    freeReplyObject(r);
    return rc == 0 ? total : -1;
}

int bus_consumer_run(bus_consumer *c, const atomic_int *stop)
{
    int64_t backoff = 100;
    while (!atomic_load(stop)) {
        char err[UTIL_ERRLEN];
        if (bus_consumer_poll(c, err, sizeof err) < 0) {
            log_warn("bus poll failed", "topic", c->topic, "group", c->group, "error", err);
            util_sleep_ms(backoff);
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
        } else {
            backoff = 100;
        }
    }
    return 0;
}
