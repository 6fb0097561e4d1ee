/* store: the listener's SQL (schema `listener`, migrations/listener). Each function
 * runs on a borrowed db_conn; the ones named "in the batch transaction" expect the
 * caller's BEGIN (db_tx) so events, block hashes, scanned ranges and the checkpoint
 * commit together.
 *
 * Memory: store_row strings are owned by the row (store_rows_free); everything else
 * is caller buffers. */
#ifndef LISTENER_STORE_H
#define LISTENER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "db.h"
#include "evid.h"
#include "reorg.h"
#include "rpc.h"

typedef struct store_row {
    int64_t seq;
    char id[EVID_MAX];
    int64_t block_number;
    char block_hash[67];
    int64_t block_time; /* seconds since the epoch */
    char tx_hash[67];
    int64_t tx_index, log_index;
    char address[43];
    char event[81];
    char *signature; /* owned */
    char *args;      /* owned: JSON object text */
    bus_priority prio;
    int removed, published;
} store_row;

void store_rows_free(store_row *rows, size_t n); /* frees the strings and the array */

typedef struct store_checkpoint {
    int64_t start_block;
    int64_t last_block; /* -1: nothing read */
    char last_hash[67]; /* "" when none */
    int64_t last_time;  /* seconds; 0 when none */
    int64_t fence;
    int64_t published_block; /* every live event at or below it is on the stream */
    int halted;
} store_checkpoint;

/* Creates the row (last_block = start_block - 1) if missing, then reads it. */
int store_checkpoint_load(db_conn *c, uint64_t chain_id, int64_t start_block, store_checkpoint *out,
                          char *err, size_t errlen);

/* 1 when some event of the chain was ever removed (then re-inclusions need ids). */
int store_has_removed(db_conn *c, uint64_t chain_id, char *err, size_t errlen);

/* In the batch transaction: gives each row whose (tx_hash, log_index) was removed
 * before its re-inclusion id (evid.h), then inserts the rows (a row already present,
 * i.e. the chain went back to a block it had left, is revived). rows[i].seq is not
 * filled (nothing needs it).
 *
 * check_reinc = 0 (no event of the chain was ever removed) means the rows are new by
 * construction: every row above the committed checkpoint was either never written or
 * orphaned (removed) by a reorg. They then go in with COPY under a savepoint; a
 * unique violation anyway (the "impossible" case) rolls back to the savepoint and
 * takes the INSERT ... ON CONFLICT path, so the result is the same either way.
 * *copied (may be NULL) says which path wrote the rows (1 COPY, 0 INSERT). */
int store_insert_events(db_conn *c, uint64_t chain_id, store_row *rows, size_t n, int check_reinc,
                        int *copied, char *err, size_t errlen);

/* In the batch transaction: records the window headers, drops those below
 * keep_from, and extends the scanned ranges by [from, to]. */
int store_record_blocks(db_conn *c, uint64_t chain_id, const rpc_header *hdrs, size_t n,
                        int64_t keep_from, int64_t from, int64_t to, char *err, size_t errlen);

/* In the batch transaction: moves the checkpoint if our fence is still the newest.
 * 0 moved, 1 fenced out (another holder wrote with a higher fence: stop), -1 error. */
int store_checkpoint_move(db_conn *c, uint64_t chain_id, int64_t fence, int64_t block,
                          const char *hash, int64_t block_time, char *err, size_t errlen);

/* Claims the checkpoint row for a new lease holder (fence only grows). Same results. */
int store_checkpoint_claim(db_conn *c, uint64_t chain_id, int64_t fence, char *err, size_t errlen);
int store_set_halted(db_conn *c, uint64_t chain_id, int64_t fence, const char *why, char *err,
                     size_t errlen);

/* The recorded window, highest first; *out owned (free). */
int store_window(db_conn *c, uint64_t chain_id, reorg_block **out, size_t *n, char *err,
                 size_t errlen);

/* In the reorg transaction: marks events above `ancestor` removed and returns those
 * that had been published (the flag, or at or below the watermark: they need
 * compensations; their `published` flag is set so a re-publish finds them), lowers the
 * watermark to the ancestor, drops the window and scanned ranges above it. *rows
 * owned (store_rows_free). */
int store_orphan_above(db_conn *c, uint64_t chain_id, int64_t ancestor, store_row **rows, size_t *n,
                       char *err, size_t errlen);

/* Orphans whose compensation is not out yet (removed = 1), in chain order. At most
 * `limit`; *rows owned (store_rows_free). */
int store_pending_compensations(db_conn *c, uint64_t chain_id, size_t limit, store_row **rows,
                                size_t *n, char *err, size_t errlen);

/* Live rows after (after_block, after_log) in chain order (the re-publish scan from
 * the watermark: after_block = published_block, after_log = INT32_MAX). At most
 * `limit`; *rows owned. */
int store_pending_events(db_conn *c, uint64_t chain_id, int64_t after_block, int64_t after_log,
                         size_t limit, store_row **rows, size_t *n, char *err, size_t errlen);

/* After publishing compensations: marks them (by seq) sent. */
int store_mark_compensated(db_conn *c, uint64_t chain_id, const store_row *rows, size_t n,
                           char *err, size_t errlen);

/* After publishing every live event up to `block`: raises the watermark (never
 * lowers it; only a reorg does). Fenced like the checkpoint: 0 moved, 1 fenced out,
 * -1 error. */
int store_published_upto(db_conn *c, uint64_t chain_id, int64_t fence, int64_t block, char *err,
                         size_t errlen);

/* Gaps in the scanned ranges of [from, to]; calls fn for each; returns the number of
 * missing blocks (>= 0) or -1. */
typedef void (*store_gap_fn)(void *ud, int64_t from, int64_t to);
int64_t store_gaps(db_conn *c, uint64_t chain_id, int64_t from, int64_t to, store_gap_fn fn,
                   void *ud, char *err, size_t errlen);

/* Creates chain_events partitions ahead; returns how many were made or -1. */
int store_ensure_partitions(db_conn *c, int months_ahead, char *err, size_t errlen);

#endif
