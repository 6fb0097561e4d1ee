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
