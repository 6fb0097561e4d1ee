/* evid: message ids and types of chain events on chain.events (ARCHITECTURE §3.1).
 *
 *   event     <chainId>:<txHash>:<logIndex>
 *   re-included after a reorg into another block (the first inclusion's id was
 *   already delivered and then compensated, and consumers dedupe on ids):
 *             <chainId>:<txHash>:<logIndex>:in:<blockHash>
 *   compensation for an orphaned event:
 *             <id of the orphaned event>:removed:<blockHash>
 * Types: "chain." + the event name in snake case ("RedemptionRequested" ->
 * "chain.redemption_requested"), with ".removed" for compensations.
 *
 * Hashes are lowercase "0x" + 64 hex (what the node sends is normalised first).
 * Everything writes into caller buffers; -1 on bad input or a short buffer. */
#ifndef LISTENER_EVID_H
#define LISTENER_EVID_H

#include <stddef.h>
#include <stdint.h>

#define EVID_MAX   200 /* envelope id limit (envelope.schema.json) */
#define EVTYPE_MAX 100

/* 1 when s is "0x" + 64 lowercase hex digits. */
int evid_hash_ok(const char *s);
/* Copies a node's 32-byte hash into out (lowercased); -1 if not 0x + 64 hex. */
int evid_hash_norm(const char *s, char out[67]);

/* reincluded_in: NULL for a first inclusion, else the new block's hash. */
int evid_build(char *out, size_t len, uint64_t chain_id, const char *tx_hash, uint64_t log_index,
               const char *reincluded_in);
int evid_removed(char *out, size_t len, const char *id, const char *block_hash);
/* Event names: [A-Za-z_][A-Za-z0-9_]*, at most 80 characters. */
int evid_type(char *out, size_t len, const char *event, int removed);

#endif
