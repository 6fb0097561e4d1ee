/* svc: what every daemon shares, so each main.c reads like its architecture —
 * config, connections, handlers, timers, serve, shutdown:
 *
 *     svc *s = svc_new("notifier", 8084, my_vars, CFG_COUNT(my_vars), err, sizeof err);
 *     svc_consume(s, "alerts", handle_alert, NULL, &app, err, sizeof err);
 *     http_route(svc_http(s), "GET", "/v1/deliveries", list_deliveries, &app);
 *     sched_every(svc_sched(s), "notifier.repeat", 30000, repeat_job, &app, err, sizeof err);
 *     return svc_run(s);   (then svc_free)
 *
 * svc_new loads the common variables (below) and the service's own in one pass, so a
 * bad deployment lists every problem at once; opens the PostgreSQL pool, the
 * life cycle (signals, 10 s shutdown deadline), the internal HTTP server with
 * /health/live, /health/ready (checks: db, redis) and /metrics, and the scheduler.
 * svc_run starts one thread per bus consumer, serves, and on SIGTERM drains HTTP,
 * stops the consumers after the batch in hand (acked or left pending, never lost)
 * and returns the process exit code.
 *
 * Common variables (defaults are the local stack's, so `make run` needs none):
 *   PAIMON_REDIS_URL      redis://127.0.0.1:6380
 *   PAIMON_DATABASE_URL   postgresql://postgres@127.0.0.1:5433/paimon (secret)
 *   PAIMON_HTTP_BIND      127.0.0.1      PAIMON_HTTP_PORT  the service's default
 *   PAIMON_DB_POOL        4              PAIMON_CONSUMERS  1 (threads per topic)
 *   PAIMON_LOG_LEVEL      info
 *   PAIMON_PROCESSED_RETENTION  30d  age after which processed_messages rows are deleted
 *   PAIMON_OUTBOX_RETENTION     30d  age after which published outgoing_messages and final
 *                                    (confirmed | reverted | failed) transactions are deleted
 *   (both at least 1d; "12h", "45d", ... as CFG_DURATION_MS parses them)
 *
 * Retention: svc_new registers the once-per-cluster job "<name>.retention" (every
 * 10 min) on the scheduler, so the exactly-once bookkeeping of every service stops
 * growing without bound; see svc_retention_run.
 *
 * Ownership: svc owns everything it opens; accessors return borrowed pointers valid
 * until svc_free. The schema, consumer group and log service name are all `name`. */
#ifndef PAIMON_SVC_H
#define PAIMON_SVC_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "bus.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "scheduler.h"

typedef struct svc_config {
    char *redis_url;
    char *database_url;
    char *http_bind;
    int http_port;
    int64_t db_pool;
    int64_t consumers;
    char *log_level;
    int64_t processed_retention_ms;
    int64_t outbox_retention_ms;
} svc_config;

/* Rows deleted by one retention pass, per table. */
typedef struct svc_retention_counts {
    int64_t processed;    /* <schema>.processed_messages */
    int64_t outgoing;     /* <schema>.outgoing_messages (published only) */
    int64_t transactions; /* <schema>.transactions (final statuses only) */
} svc_retention_counts;

typedef struct svc svc;

svc *svc_new(const char *name, int default_port, const cfg_var *extra, size_t nextra, char *err,
             size_t errlen);
void svc_free(svc *s);

const char *svc_name(const svc *s);
const svc_config *svc_cfg(const svc *s);
struct event_base *svc_base(svc *s);
http_server *svc_http(svc *s);
db_pool *svc_db(svc *s);
sched *svc_sched(svc *s);
/* A Redis connection for the main (event loop) thread only. Reconnected on demand;
 * NULL with a reason when Redis is unreachable. */
redisContext *svc_redis(svc *s, char *err, size_t errlen);

/* Registers a consumer of `topic` (exactly one of fn / batch_fn); threads start in
 * svc_run. */
int svc_consume(svc *s, const char *topic, bus_handler_fn fn, bus_batch_fn batch_fn, void *ud,
                char *err, size_t errlen);

/* Registers a shutdown step for the service's own workers (threads, outbox loops):
 * on SIGTERM it runs after HTTP stopped taking traffic and before the bus consumers
 * stop, inside the 10 s deadline. Steps run in reverse registration order. */
void svc_on_stop(svc *s, void (*fn)(void *ud), void *ud);

/* One retention pass now (what the "<name>.retention" job runs; tests and operators
 * call it directly): deletes in batches of SVC_RETENTION_BATCH rows, each its own
 * short statement, until nothing old is left or a few seconds have passed (the rest
 * goes on the next run, since jobs share the event loop). Which optional tables exist
 * is checked once, on the first pass. Adds to the counter
 * paimon_retention_deleted_total{schema,table}. out may be NULL. */
#define SVC_RETENTION_BATCH 5000
int svc_retention_run(svc *s, svc_retention_counts *out, char *err, size_t errlen);

/* Runs until SIGTERM/SIGINT; returns 0 after a clean shutdown, 1 otherwise. */
int svc_run(svc *s);

#endif
