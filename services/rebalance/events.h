/* events: the rebalance service's bus handlers, each run inside the bus's transaction (bus.h):
 *   chain.events        asset events keep asset_configs in step; a deposit above the
 *                       large-deposit threshold and a target change queue a trigger
 *   approval.decisions  a decision on a rebalance ticket approves or rejects its plan
 *   rebalance.requests  liquidity.request (approval: settlements due; risk: emergency top-up)
 *                       queues a liquidity trigger with the L1 it asks for
 * ud is the rb_app (borrowed). Triggers are coalesced: the executor takes every pending one
 * into its next plan. */
#ifndef REBALANCE_EVENTS_H
#define REBALANCE_EVENTS_H

#include <stddef.h>

#include "bus.h"

int events_chain(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen);
int events_decision(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen);
int events_liquidity(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen);

#endif
