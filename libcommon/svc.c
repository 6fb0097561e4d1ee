/* svc: the shared daemon skeleton (see svc.h). */
#include "svc.h"
#include "life.h"
#include "log.h"
#include "metrics.h"
#include "rconn.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A retention pass stops starting new batches after this long: jobs run inline on
 * the event loop, which also serves /health/live. */
#define RETENTION_BUDGET_MS 3000
#define RETENTION_EVERY_MS  (10 * 60 * 1000)
#define DAY_MS              (24LL * 3600 * 1000)

typedef struct svc_consumer {
    svc *owner;
    char *topic;
    bus_handler_fn fn;
    bus_batch_fn batch_fn;
    void *ud;
    int index;
    pthread_t thread;
    int started;
} svc_consumer;

struct svc {
    char *name;
    svc_config cfg;
    cfg_var *vars;
    size_t nvars;
    life *life;
    http_server *http;
    db_pool *db;
    sched *sched;
    redisContext *redis;
    svc_consumer *consumers;
    size_t nconsumers;
    struct {
        void (*fn)(void *);
        void *ud;
    } hooks[16];
    size_t nhooks;
    atomic_int stop;
    struct {
        int checked; /* which optional tables exist, looked up on the first pass */
        int has_processed, has_outgoing, has_transactions;
    } ret;
};

static int check_db(void *ud, char *err, size_t errlen)
{
    return db_ping(((svc *)ud)->db, err, errlen);
}

static int check_redis(void *ud, char *err, size_t errlen)
{
    svc *s = ud;
    redisContext *c = svc_redis(s, err, errlen);
    return c ? rconn_ping(c, err, errlen) : -1;
}

/* Deletes, in batches, the rows of schema.table matching `where` (which compares
 * against the cut-off $1, a timestamptz). ctid = ANY(ARRAY(...)) rather than
 * ctid IN (SELECT ...) so PostgreSQL uses a TID scan for the delete itself. Each
 * batch is its own autocommitted statement: locks last one batch. */
static int retention_table(db_conn *c, const char *schema, const char *table, const char *where,
                           const char *cutoff, int64_t deadline, int64_t *deleted, char *err,
                           size_t errlen)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "DELETE FROM %s.%s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %s.%s WHERE %s LIMIT %d))",
             schema, table, schema, table, where, SVC_RETENTION_BATCH);
    const char *params[1] = {cutoff};
    char labels[160];
    snprintf(labels, sizeof labels, "schema=\"%s\",table=\"%s\"", schema, table);
    metrics_counter *m = metrics_counter_get(metrics_global(), "paimon_retention_deleted_total",
                                             "Old bookkeeping rows deleted by retention", labels);
    for (;;) {
        PGresult *r = db_query(c, sql, 1, params, err, errlen);
        if (!r)
            return -1;
        int64_t n = strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        *deleted += n;
        metrics_counter_add(m, (double)n);
        if (n < SVC_RETENTION_BATCH || util_mono_ms() >= deadline)
            return 0;
    }
}

static int retention_check_tables(svc *s, db_conn *c, char *err, size_t errlen)
{
    char q[256];
    snprintf(q, sizeof q,
             "SELECT to_regclass('%s.outgoing_messages') IS NOT NULL, "
             "to_regclass('%s.transactions') IS NOT NULL, "
             "to_regclass('%s.processed_messages') IS NOT NULL",
             s->name, s->name, s->name);
    PGresult *r = db_query(c, q, 0, NULL, err, errlen);
    if (!r)
        return -1;
    s->ret.has_outgoing = PQgetvalue(r, 0, 0)[0] == 't';
    s->ret.has_transactions = PQgetvalue(r, 0, 1)[0] == 't';
    s->ret.has_processed = PQgetvalue(r, 0, 2)[0] == 't'; /* not the listener: it only publishes */
    s->ret.checked = 1;
    PQclear(r);
    return 0;
}

int svc_retention_run(svc *s, svc_retention_counts *out, char *err, size_t errlen)
{
    svc_retention_counts n = {0};
    if (out)
        *out = n;
    if (!db_ident_ok(s->name))
        return util_err(err, errlen, "retention: %s is not a schema name", s->name);
    db_conn *c = db_acquire(s->db, 2000, err, errlen);
    if (!c)
        return -1;
    int64_t deadline = util_mono_ms() + RETENTION_BUDGET_MS;
    /* Cut-offs from the database's clock, the one that stamped the rows. */
    char pcut[64] = "", ocut[64] = "";
    const char *q = "SELECT (now() - $1::bigint * interval '1 millisecond')::text, "
                    "(now() - $2::bigint * interval '1 millisecond')::text";
    char p1[24], p2[24];
    snprintf(p1, sizeof p1, "%lld", (long long)s->cfg.processed_retention_ms);
    snprintf(p2, sizeof p2, "%lld", (long long)s->cfg.outbox_retention_ms);
    const char *params[2] = {p1, p2};
    int rc = -1;
    PGresult *r = db_query(c, q, 2, params, err, errlen);
    if (!r)
        goto done;
    util_strlcpy(pcut, PQgetvalue(r, 0, 0), sizeof pcut);
    util_strlcpy(ocut, PQgetvalue(r, 0, 1), sizeof ocut);
    PQclear(r);
    if (!s->ret.checked && retention_check_tables(s, c, err, errlen) != 0)
        goto done;
    if (s->ret.has_processed &&
        retention_table(c, s->name, "processed_messages", "processed_at < $1::timestamptz", pcut,
                        deadline, &n.processed, err, errlen) != 0)
        goto done;
    if (s->ret.has_outgoing &&
        retention_table(c, s->name, "outgoing_messages", "published_at < $1::timestamptz", ocut,
                        deadline, &n.outgoing, err, errlen) != 0)
        goto done;
    /* The final statuses of outbox.h; updated_at is when the row became final. Their
     * transaction_attempts go with them (ON DELETE CASCADE). */
    if (s->ret.has_transactions &&
        retention_table(c, s->name, "transactions",
                        "status IN ('confirmed', 'reverted', 'failed') AND updated_at < "
                        "$1::timestamptz",
                        ocut, deadline, &n.transactions, err, errlen) != 0)
        goto done;
    rc = 0;
done:
    db_release(s->db, c);
    if (out)
        *out = n;
    if (n.processed || n.outgoing || n.transactions)
        log_info("retention: deleted old rows", "#processed_messages", LOG_I64(n.processed),
                 "#outgoing_messages", LOG_I64(n.outgoing), "#transactions",
                 LOG_I64(n.transactions));
    return rc;
}

static int retention_job(void *ud, char *err, size_t errlen)
{
    return svc_retention_run(ud, NULL, err, errlen);
}

svc *svc_new(const char *name, int default_port, const cfg_var *extra, size_t nextra, char *err,
             size_t errlen)
{
    svc *s = util_calloc(1, sizeof *s);
    s->name = util_strdup(name);
    char port[16];
    snprintf(port, sizeof port, "%d", default_port);
    int level_idx = 1; /* CFG_ENUM stores the index into its choices */
    const cfg_var common[] = {
        {"PAIMON_REDIS_URL", CFG_URL, "redis://127.0.0.1:6380", &s->cfg.redis_url, 0, 0, "redis", 0,
         "Redis for streams, locks and caches"},
        {"PAIMON_DATABASE_URL", CFG_URL, "postgresql://postgres@127.0.0.1:5433/paimon",
         &s->cfg.database_url, 0, 0, "postgresql|postgres", 1, "PostgreSQL"},
        {"PAIMON_HTTP_BIND", CFG_STR, "127.0.0.1", &s->cfg.http_bind, 0, 0, NULL, 0,
         "internal HTTP bind address"},
        {"PAIMON_HTTP_PORT", CFG_PORT, port, &s->cfg.http_port, 0, 0, NULL, 0,
         "internal HTTP port"},
        {"PAIMON_DB_POOL", CFG_INT, "4", &s->cfg.db_pool, 1, 64, NULL, 0, "PostgreSQL connections"},
        {"PAIMON_CONSUMERS", CFG_INT, "1", &s->cfg.consumers, 1, 32, NULL, 0,
         "bus consumer threads per topic"},
        {"PAIMON_LOG_LEVEL", CFG_ENUM, "info", &level_idx, 0, 0, "debug|info|warn|error", 0,
         "log threshold"},
        /* processed_messages must outlive every redelivery of a message, or a late
         * redelivery would run its handler twice. Redeliveries happen within minutes:
         * stream entries are trimmed only after they are acked (i.e. after the row
         * committed), pending ones are reclaimed by the next consumer, and DLQ replays
         * are of messages that were never processed (so have no row to lose). A day
         * is the floor to leave room for a long outage; 30 days is ample. */
        {"PAIMON_PROCESSED_RETENTION", CFG_DURATION_MS, "30d", &s->cfg.processed_retention_ms,
         DAY_MS, 3650 * DAY_MS, NULL, 0, "age of processed_messages rows to delete"},
        /* Deleting a final transaction also frees its idempotency key, so a request
         * replayed after this long would be sent again: keep it well above any replay. */
        {"PAIMON_OUTBOX_RETENTION", CFG_DURATION_MS, "30d", &s->cfg.outbox_retention_ms, DAY_MS,
         3650 * DAY_MS, NULL, 0,
         "age of published outgoing_messages / final transactions to delete"},
    };
    s->nvars = CFG_COUNT(common) + nextra;
    s->vars = util_calloc(s->nvars, sizeof *s->vars);
    memcpy(s->vars, common, sizeof common);
    if (nextra)
        memcpy(s->vars + CFG_COUNT(common), extra, nextra * sizeof *extra);
    if (cfg_load(s->vars, s->nvars, err, errlen) != 0) {
        free(s->vars);
        s->vars = NULL;
        svc_free(s);
        return NULL;
    }
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    s->cfg.log_level = util_strdup(levels[level_idx]);
    log_init(name, s->cfg.log_level, NULL, 0);

    if (!(s->life = life_new(name, err, errlen)))
        goto fail;
    s->db = db_pool_new(s->cfg.database_url, (int)s->cfg.db_pool + (int)s->cfg.consumers * 2, err,
                        errlen);
    if (!s->db)
        goto fail;
    s->http = http_server_new(life_base(s->life), s->cfg.http_bind, s->cfg.http_port, err, errlen);
    if (!s->http)
        goto fail;
    http_add_check(s->http, "db", check_db, s);
    http_add_check(s->http, "redis", check_redis, s);
    http_set_metrics(s->http, metrics_global());
    s->sched = sched_new(life_base(s->life), s->cfg.redis_url, NULL, err, errlen);
    if (!s->sched)
        goto fail;
    char job[SCHED_JOB_MAX];
    snprintf(job, sizeof job, "%s.retention", name);
    if (sched_every(s->sched, job, RETENTION_EVERY_MS, retention_job, s, err, errlen) != 0)
        goto fail;
    return s;
fail:
    svc_free(s);
    return NULL;
}

void svc_free(svc *s)
{
    if (!s)
        return;
    sched_free(s->sched);
    http_server_free(s->http);
    db_pool_free(s->db);
    if (s->redis)
        redisFree(s->redis);
    for (size_t i = 0; i < s->nconsumers; i++)
        free(s->consumers[i].topic);
    free(s->consumers);
    life_free(s->life);
    if (s->vars) {
        cfg_release(s->vars, s->nvars);
        free(s->vars);
    }
    free(s->cfg.log_level);
    free(s->name);
    free(s);
}

const char *svc_name(const svc *s)
{
    return s->name;
}
const svc_config *svc_cfg(const svc *s)
{
    return &s->cfg;
}
struct event_base *svc_base(svc *s)
{
    return life_base(s->life);
}
http_server *svc_http(svc *s)
{
    return s->http;
}
db_pool *svc_db(svc *s)
{
    return s->db;
}
sched *svc_sched(svc *s)
{
    return s->sched;
}

redisContext *svc_redis(svc *s, char *err, size_t errlen)
{
    if (s->redis && !s->redis->err)
        return s->redis;
    if (s->redis)
        redisFree(s->redis);
    s->redis = rconn_connect(s->cfg.redis_url, 2000, err, errlen);
    return s->redis;
}

int svc_consume(svc *s, const char *topic, bus_handler_fn fn, bus_batch_fn batch_fn, void *ud,
                char *err, size_t errlen)
{
    if (!topic || !fn == !batch_fn)
        return util_err(err, errlen, "svc_consume: a topic and exactly one handler");
    size_t add = (size_t)s->cfg.consumers;
    svc_consumer *grown = realloc(s->consumers, (s->nconsumers + add) * sizeof *grown);
    if (!grown)
        abort();
    s->consumers = grown;
    for (size_t i = 0; i < add; i++) {
        svc_consumer *c = &s->consumers[s->nconsumers++];
        memset(c, 0, sizeof *c);
        *c = (svc_consumer){.owner = s,
                            .topic = util_strdup(topic),
                            .fn = fn,
                            .batch_fn = batch_fn,
                            .ud = ud,
                            .index = (int)i};
    }
    return 0;
}

void svc_on_stop(svc *s, void (*fn)(void *ud), void *ud)
{
    if (s->nhooks == sizeof s->hooks / sizeof s->hooks[0])
        abort(); /* a programming error, caught by the first test run */
    s->hooks[s->nhooks].fn = fn;
    s->hooks[s->nhooks++].ud = ud;
}

static void *consumer_main(void *arg)
{
    svc_consumer *c = arg;
    svc *s = c->owner;
    char host[64] = "host", name[160], err[UTIL_ERRLEN];
    gethostname(host, sizeof host - 1);
    snprintf(name, sizeof name, "%s-%d-%d", host, (int)getpid(), c->index);
    bus_consumer_cfg cfg = {.redis_url = s->cfg.redis_url,
                            .topic = c->topic,
                            .group = s->name,
                            .consumer = name,
                            .schema = s->name,
                            .db = s->db,
                            .handler = c->fn,
                            .batch_handler = c->batch_fn,
                            .ud = c->ud};
    int64_t backoff = 200;
    bus_consumer *bc = NULL;
    /* Redis may come up after us: keep trying until it does or we are told to stop. */
    while (!atomic_load(&s->stop) && !(bc = bus_consumer_new(&cfg, err, sizeof err))) {
        log_warn("bus consumer cannot start", "topic", c->topic, "error", err);
        util_sleep_ms(backoff);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
    if (bc) {
        log_info("bus consumer started", "topic", c->topic, "consumer", name);
        bus_consumer_run(bc, &s->stop);
        bus_consumer_free(bc);
    }
    return NULL;
}

static void stop_consumers(void *ud)
{
    svc *s = ud;
    atomic_store(&s->stop, 1);
    for (size_t i = 0; i < s->nconsumers; i++)
        if (s->consumers[i].started)
            pthread_join(s->consumers[i].thread, NULL);
    log_info("bus consumers stopped", "#count", LOG_I64(s->nconsumers));
}

int svc_run(svc *s)
{
    char err[UTIL_ERRLEN];
    for (size_t i = 0; i < s->nconsumers; i++) {
        if (pthread_create(&s->consumers[i].thread, NULL, consumer_main, &s->consumers[i]) != 0) {
            log_error("cannot start a consumer thread", "topic", s->consumers[i].topic);
            stop_consumers(s);
            return 1;
        }
        s->consumers[i].started = 1;
    }
    if (sched_start(s->sched, 0, err, sizeof err) != 0) {
        log_error("scheduler did not start", "error", err);
        stop_consumers(s);
        return 1;
    }
    /* Hooks run in reverse: first stop taking HTTP traffic, then the service's own
     * workers, then the consumers. */
    life_on_stop(s->life, stop_consumers, s);
    for (size_t i = 0; i < s->nhooks; i++)
        life_on_stop(s->life, s->hooks[i].fn, s->hooks[i].ud);
    life_on_stop(s->life, http_drain_hook, s->http);
    char port[16];
    snprintf(port, sizeof port, "%d", http_server_port(s->http));
    log_info("serving", "bind", s->cfg.http_bind, "#port", port);
    int rc = life_run(s->life);
    sched_stop(s->sched);
    log_info("stopped", "#exit", LOG_I64(rc));
    return rc == 0 ? 0 : 1;
}
