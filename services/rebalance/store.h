/* store: the rebalance schema's shared queries — asset settings (kept in step with the vault),
 * triggers (coalesced until a plan takes them), the executor fence, and the outgoing-message
 * queue (alerts, approval requests, updates written in the causing transaction and published
 * after COMMIT by store_out_flush).
 *
 * Memory: payloads passed in are taken (freed by the call, even on failure); store_asset
 * arrays are owned by the caller (free). */
#ifndef REBALANCE_STORE_H
#define REBALANCE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "db.h"
#include "money.h"
#include "vault.h"

#define STORE_UPDATES_MAXLEN 100000L

/* Operator settings of one asset (the chain holds the rest). */
typedef struct store_asset {
    char token[43];
    money_u256 min_trade;
    uint32_t slippage_bps;
    int enabled;
} store_asset;

/* Upserts tier, weights, feed and symbol of every asset the vault lists at s->block (rows for
 * assets it no longer lists are marked unlisted); new rows get the given defaults. */
int store_assets_sync(db_conn *tx, const vault_state *s, const money_u256 *default_min_trade,
                      uint32_t default_slippage_bps, char *err, size_t errlen);
/* All rows' operator settings; *out owned by the caller. */
int store_assets_load(db_conn *c, store_asset **out, size_t *n, char *err, size_t errlen);
/* Applies chain.asset_added / asset_target_changed / asset_removed (args as the listener
 * publishes them). Older events than the row's last are ignored. 0 / -1. */
int store_asset_event(db_conn *tx, const char *event_type, const cJSON *payload, char *err,
                      size_t errlen);

/* Queues a trigger; source_id (may be NULL) dedupes redeliveries. When only_if_none is set the
 * trigger is skipped if one of the same kind is already pending. l1_needed may be NULL.
 * detail taken. Returns 1 added, 0 skipped, -1 error. */
int store_trigger_add(db_conn *tx, const char *kind, cJSON *detail, const money_u256 *l1_needed,
                      const char *source_id, int only_if_none, char *err, size_t errlen);

/* Inside tx: records fence as the executor's, refusing a fence lower than the last one seen.
 * 1 ok, 0 a newer executor exists (stop), -1 error. */
int store_fence(db_conn *tx, int64_t fence, char *err, size_t errlen);

int store_out_enqueue(db_conn *tx, const char *topic, bus_priority prio, const char *id,
                      const char *type, cJSON *payload, char *err, size_t errlen);
/* alert.raised on `alerts` (severity info|warning|critical); labels may be NULL (taken). */
int store_out_alert(db_conn *tx, const char *severity, const char *title, const char *message,
                    const char *dedup_key, cJSON *labels, char *err, size_t errlen);
/* rebalance.updated on `updates` for the gateway's WebSocket feed. */
int store_out_update(db_conn *tx, const char *plan_id, const char *status, char *err,
                     size_t errlen);
/* Publishes up to max queued messages in order; returns how many, or -1. */
int store_out_flush(db_pool *db, redisContext *rc, int max, char *err, size_t errlen);

#endif
