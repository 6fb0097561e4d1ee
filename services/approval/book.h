/* book: the redemption book, fed by the bus. book_chain_event handles chain.events
 * (RedemptionRequested / Approved / Rejected / Settled / Cancelled of the configured
 * vault, and their ".removed" reorg compensations); book_request handles
 * approval.requests (tickets asked for by rebalance, risk or the gateway).
 *
 * Rules: a request below (or exactly at) its channel's threshold is approved
 * automatically (recorded as "auto_approved", approveRedemption queued in the outbox);
 * above it a ticket needs the tier's number of approvals. Later events move the row
 * through pending -> approved -> settled, pending|approved -> rejected, pending ->
 * cancelled. The chain is the truth: a transition the book did not expect (an event for
 * an unknown request, a state the book says is impossible, an approval the book had not
 * decided) is applied anyway, recorded as "reconciled" and alerted. A reorg removal
 * undoes the event's effect (a removed request is marked "removed" and its ticket
 * cancelled).
 *
 * Both handlers run inside the bus's batch transaction (bus_handler_fn) with the
 * appr_app as ud. */
#ifndef APPROVAL_BOOK_H
#define APPROVAL_BOOK_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "db.h"
#include "envelope.h"

/* RFC 3339 UTC ("2026-01-02T03:04:05Z", optional fraction) -> epoch ms; 0 / -1. */
int book_parse_time(const char *s, int64_t *out);

int book_chain_event(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen);
int book_request(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen);

#endif
