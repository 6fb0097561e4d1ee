/* ingest: the bus handler for `alerts` (alert.raised). It runs inside the bus
 * transaction and never talks to Slack & co: it records the alert under its dedup key,
 * routes it through the tree, attaches it to its aggregation groups and, for a group due
 * now (group_wait 0), writes the outbox rows right there, so the notification commits
 * exactly when the message is acked. Info-only routes just log.
 *
 * Default dedup key when the producer gives none: "<source>:<category>:<title>". */
#ifndef PAIMON_NOTIFIER_INGEST_H
#define PAIMON_NOTIFIER_INGEST_H

#include <stddef.h>

#include "bus.h"
#include "store.h"

/* Reads the (already schema-validated) payload into a (borrowing) store_alert. */
int ingest_parse(const envelope *e, store_alert *a, char *err, size_t errlen);

/* bus_handler_fn; ud unused. */
int ingest_handle(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen);

#endif
