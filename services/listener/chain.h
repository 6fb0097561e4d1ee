/* chain: one chain's listener — a worker thread that holds the chain's lease
 * (lock.h; a standby replica keeps trying and takes over within the TTL), reads logs
 * from the checkpoint up to head - confirmations in adaptive ranges (range.h), commits
 * each batch in one transaction (events, window block hashes, scanned range, fenced
 * checkpoint; store.h), publishes after the commit (bus_publish_many, deterministic
 * ids), follows new heads (heads.h) the same way, and on a parent-hash mismatch walks
 * back to the common ancestor (reorg.h), marks the orphaned events removed, publishes
 * their compensations and re-reads the canonical range. A reorg deeper than the
 * window raises a critical alert and halts the chain (nothing advances until an
 * operator clears checkpoints.halted).
 *
 * Backfill and live follow are the same loop (next block = checkpoint + 1), so the
 * hand-over has no gap and no duplicate by construction; the checkpoint is the only
 * resume point, never "latest - N".
 *
 * Backfill is a pipeline of three threads: a prefetcher reads the next range (sized
 * as the range control will size it) — eth_getLogs, the headers it needs, the decoded
 * rows — while the worker checks the link to its checkpoint and commits the current
 * one, and a publisher XADDs committed batches in commit order and then raises the
 * publish watermark (checkpoints.published_block: every live event at or below it is
 * on the stream). The publisher holds at most two batches; after a failure it drops
 * the rest unsent, and the worker collects that failure before it queues another
 * batch, re-publishes, handles a reorg or goes idle, so the watermark never passes an
 * unsent event. After a crash the events above the watermark are sent again (same
 * ids; consumers dedupe). While it is below a head it already knows, the worker asks
 * for the head at most once a second: the next range's first header links it to the
 * checkpoint, which is where a reorg shows.
 *
 * Memory: chain_new copies what it keeps from cfg except the borrowed contracts'
 * ABIs, the route table and the db pool, which must outlive the chain. */
#ifndef LISTENER_CHAIN_H
#define LISTENER_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "db.h"
#include "route.h"
#include "rpc.h"

typedef struct chain_contract {
    char address[43];        /* lowercase 0x + 40 hex */
    const abi_contract *abi; /* borrowed */
} chain_contract;

typedef struct chain_cfg {
    uint64_t chain_id;
    const char *const *rpc_urls;
    size_t nurls;
    const char *ws_url; /* NULL or "" = polling only */
    const chain_contract *contracts;
    size_t ncontracts;
    int64_t start_block;
    uint64_t confirmations, window;
    uint64_t range_initial, range_min, range_max;
    size_t target_logs;
    int64_t lease_ttl_ms, poll_ms, rpc_timeout_ms;
    const route_table *routes; /* borrowed */
    const char *redis_url;
    db_pool *db; /* borrowed */
} chain_cfg;

typedef struct chain_status {
    uint64_t chain_id;
    int leader, halted;
    int64_t fence;
    int64_t checkpoint, checkpoint_time; /* block, seconds */
    int64_t head;
    uint64_t events, reorgs, batches;
    uint64_t span;
} chain_status;

typedef struct chain chain;

chain *chain_new(const chain_cfg *cfg, char *err, size_t errlen);
int chain_start(chain *c, char *err, size_t errlen); /* starts the worker thread */
void chain_stop(chain *c);                           /* asks it to stop and joins; idempotent */
void chain_free(chain *c);                           /* stops first; NULL is fine */
void chain_get_status(chain *c, chain_status *out);  /* any thread */
rpc_client *chain_rpc(chain *c);

#endif
