/* api: the risk service's internal HTTP API for the gateway (all JSON envelopes of http.h):
 *   GET  /v1/risk/current                       latest cycle (the paimon:risk:current cache)
 *   GET  /v1/risk/metrics/:metric/history       ?interval=1m|1h|1d&from=&to=&subject=
 *                                               buckets {t, open, high, low, close, avg, n}
 *   GET  /v1/risk/nav                           share price and total assets history (same
 *                                               query parameters)
 *   GET  /v1/risk/events                        ?metric=&level=&status=open|resolved&acked=
 *                                               true|false&limit=&cursor= (newest first)
 *   POST /v1/risk/events/:id/ack                {note?}; X-Paimon-User, role operator+
 *   GET  /v1/risk/thresholds
 *   PUT  /v1/risk/thresholds/:metric            {warning, critical, clear_margin}; role admin+
 *   GET  /v1/risk/reports/daily/:date           ?format=json|csv
 * 1m buckets come from the raw series (at most 7 days per query); 1h and 1d from the
 * rollup table, so a year resampled to days reads 365 rows.
 *
 * Memory: rk_api is owned by the caller and must outlive the server; everything in it is
 * borrowed. */
#ifndef RISK_API_H
#define RISK_API_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "http.h"
#include "risk/app.h"

typedef struct rk_api {
    rk_app *app;
    /* a Redis connection for the loop thread (svc_redis), for the current-metrics cache */
    redisContext *(*redis)(void *ud, char *err, size_t errlen);
    void *redis_ud;
} rk_api;

int rk_api_register(http_server *s, rk_api *api);

#endif
