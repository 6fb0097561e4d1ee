/* api: the rebalance service's internal HTTP API for the gateway (http.h envelopes):
 *   GET  /v1/status, /v1/allocation  current allocation vs targets (+ the active plan)
 *   POST /v1/preview                 plan + simulation at the head, nothing written or sent
 *                                    (optional body {"l1_needed": "<base units>"})
 *   POST /v1/trigger                 manual trigger {"reason": "..."} (coalesced)
 *   GET  /v1/history                 plans, newest first (?limit=1..100&cursor=<id>)
 *   GET  /v1/plans/:id               one plan with its legs and their transactions
 *   GET  /v1/assets                  asset configs
 *   PUT  /v1/assets/:token           operator settings {min_trade, slippage_bps, enabled}
 * ud is the rb_app (borrowed). Handlers run on the HTTP loop thread. */
#ifndef REBALANCE_API_H
#define REBALANCE_API_H

#include "app.h"
#include "http.h"

int api_register(http_server *s, rb_app *app);

#endif
