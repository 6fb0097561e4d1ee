/* events: risk's bus handlers.
 *  rk_chain_event (chain.events): records redemption requests and their status moves in
 *  risk.redemption_requests (coverage and 24 h requested come from these), undoes them on
 *  reorg compensation (`.removed`), and marks the app dirty for events that move the
 *  metrics (deposits, redemptions, trades, NAV updates) so the loop runs a cycle early.
 *  rk_decision (approval.decisions): records the decision on the emergency it answers and,
 *  for an approval, queues setEmergencyMode(true) in the outbox (emergency.h).
 * Both run inside the bus's batch transaction; ud is the rk_app (borrowed). */
#ifndef RISK_EVENTS_H
#define RISK_EVENTS_H

#include <stddef.h>

#include "db.h"
#include "envelope.h"

int rk_chain_event(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen);
int rk_decision(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen);

/* 1 when an event type should trigger an early cycle. */
int rk_event_triggers(const char *type);

#endif
