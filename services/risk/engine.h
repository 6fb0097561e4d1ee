/* engine: one risk cycle — read the chain at a pinned block, compute the metrics, store
 * them in risk.risk_metrics_series, move levels (risk_levels / risk_events), queue alerts,
 * start the emergency protocol at most once per crisis, and queue the `updates` message —
 * all in one transaction serialised across replicas by an advisory lock. The caller then
 * publishes the queue (outmsg.h) and the cache key (rk_cache_set).
 *
 * Also the thresholds and settings store (risk_thresholds / risk_settings).
 *
 * Memory: rk_cycle_result is a plain struct owned by the caller; `current` inside it is a
 * cJSON tree owned by the result (rk_cycle_result_clear). */
#ifndef RISK_ENGINE_H
#define RISK_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "db.h"
#include "risk/app.h"
#include "risk/calc.h"
#include "risk/chain.h"

typedef struct rk_settings {
    int64_t coverage_horizon_s, redemption_window_s, nav_window_s, l1_target_bps, topup_within_s;
} rk_settings;

/* Every metric's threshold (metrics without a row get an unused threshold). */
int rk_thresholds_load(db_conn *c, rk_threshold t[RK_M_COUNT], char *err, size_t errlen);
int rk_settings_load(db_conn *c, rk_settings *s, char *err, size_t errlen);

typedef struct rk_cycle_result {
    rk_chain chain;
    rk_inputs in;
    rk_metrics m;
    int level[RK_M_COUNT];
    int changes;          /* level changes this cycle */
    int64_t emergency_id; /* > 0 when this cycle started the emergency protocol */
    cJSON *current;       /* what rk_cache_set publishes; owned */
} rk_cycle_result;

void rk_cycle_result_clear(rk_cycle_result *r);

/* now_ms: wall clock for the rows and windows (tests inject it). chain: a read to use
 * instead of reading the chain (NULL = read at the latest block). */
int rk_cycle(rk_app *app, int64_t now_ms, const rk_chain *chain, rk_cycle_result *out, char *err,
             size_t errlen);

/* SET paimon:risk:current to the cycle's JSON (the gateway's fund overview). */
int rk_cache_set(redisContext *rc, const cJSON *current, char *err, size_t errlen);

/* Creates the series partitions for [now - 1 month, now + 3 months). */
int rk_partitions_ensure(db_pool *db, int64_t now_ms, char *err, size_t errlen);

#endif
