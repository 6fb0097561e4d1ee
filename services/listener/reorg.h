/* reorg: the decisions of reorg handling, over plain values so they are unit-tested
 * without a chain. A reorg shows as a block whose parent hash is not the hash we
 * recorded for its predecessor (or a recorded block the node now has another hash
 * for); the listener then walks its window of recorded (number, hash) pairs down from
 * the top, asking the node for the canonical hash at each height, until they agree:
 * that block is the common ancestor, everything above it is orphaned.
 *
 * Memory: nothing is allocated; arrays are borrowed. */
#ifndef LISTENER_REORG_H
#define LISTENER_REORG_H

#include <stddef.h>
#include <stdint.h>

typedef struct reorg_block {
    int64_t number;
    char hash[67];
} reorg_block;

/* The node's canonical hash at `number`: 0 with hash filled, 1 when the node has no
 * block there (the new branch is shorter), -1 on an RPC error. */
typedef int (*reorg_hash_fn)(void *ud, int64_t number, char hash[67]);

typedef enum {
    REORG_ERROR = -1,   /* the node could not be asked; try again later */
    REORG_FOUND = 0,    /* *ancestor set */
    REORG_TOO_DEEP = 1, /* no recorded block is canonical: deeper than the window */
} reorg_result;

/* stored: recorded blocks, any order, at most one per number. floor: the highest
 * block that was never read (start block - 1); when every recorded block down to
 * floor + 1 is orphaned, the ancestor is floor (re-read from the start), not "too
 * deep". n == 0 is REORG_TOO_DEEP unless floor is the checkpoint itself (nothing was
 * read). */
reorg_result reorg_find_ancestor(const reorg_block *stored, size_t n, int64_t floor,
                                 reorg_hash_fn canonical, void *ud, int64_t *ancestor);

/* 1 when `parent_hash` (of block N) continues `prev_hash` (our block N-1), else 0.
 * A missing prev_hash (nothing recorded at N-1, e.g. the first block read) links. */
int reorg_links(const char *prev_hash, const char *parent_hash);

#endif
