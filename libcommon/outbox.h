/* outbox: the transaction outbox every service that writes to the chain uses
 * (ARCHITECTURE §3.3). A transaction is first a row in <schema>.transactions,
 * inserted inside the caller's business transaction (outbox_enqueue), so the
 * decision and the intent to send commit or roll back together. outbox_step then
 * drives each row: pending -> (simulate with eth_call, estimate gas, nonce under a
 * per-signer Redis lease, fees, sign) -> signed -> (eth_sendRawTransaction) ->
 * sent -> (receipt, N confirmations) -> confirmed | reverted; or failed (simulation
 * revert, deterministic send error). Stuck transactions are replaced with the same
 * nonce and bumped fees; every signed variant is an attempts row.
 *
 * Crash safety: nonce, fees and the raw signed bytes are COMMITted (status signed)
 * before anything is sent, so a crash between signing and sending re-sends the
 * very same bytes (same hash) on the next pass, and a crash after sending finds
 * the transaction by the receipts of its attempt hashes. A transaction is never
 * lost, and never signed twice with two nonces.
 *
 * Nonces: nonce = max(eth_getTransactionCount(from, pending), 1 + the highest
 * nonce of this schema's signed|sent rows), taken under the Redis lease
 * outbox:<chainId>:<from>. ASSUMPTION: one signer (address) is used by one
 * service schema only, and nothing else sends from it; a foreign transaction
 * consuming a nonce makes our transaction with that nonce fail ("nonce too low",
 * with an alert). A partial UNIQUE index on (chain_id, from_address, nonce) makes
 * the database refuse a duplicate nonce even if the lease were lost mid-step.
 *
 * Global pause: while Redis key paimon:system:paused exists nothing is signed or
 * broadcast (no new sends, no replacements, no re-broadcasts); receipts and
 * confirmations keep being tracked. If Redis cannot be asked, the outbox assumes
 * paused (fail safe).
 *
 * The DDL lives in migrations/{approval,rebalance,risk}/0002_transactions.sql and
 * must match the queries here.
 *
 * Memory / threads: outbox_new returns an owned outbox (outbox_free); the db pool,
 * rpc client, signer and metrics registry in the config are borrowed and must
 * outlive it. Strings in outbox_cfg are copied. One outbox is driven by one thread;
 * several replicas (processes) may run outbox_step on the same schema at once. */
#ifndef PAIMON_OUTBOX_H
#define PAIMON_OUTBOX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "metrics.h"
#include "money.h"
#include "rpc.h"
#include "signer.h"

#define OUTBOX_MAX_DATA    (128 * 1024) /* calldata bytes accepted by outbox_enqueue */
#define OUTBOX_MAX_KEY     200          /* idempotency key bytes */
#define OUTBOX_MAX_PURPOSE 200
#define OUTBOX_MAX_GAS     30000000ULL /* a block's gas on BSC; more is a bug */
#define OUTBOX_PAUSE_KEY   "paimon:system:paused"

/* A transaction to send. All strings borrowed for the call. */
typedef struct outbox_req {
    const char *idempotency_key; /* 1..OUTBOX_MAX_KEY printable ASCII bytes */
    uint64_t chain_id;           /* >= 1 */
    const char *from;            /* "0x" + 40 hex (EIP-55 or one case); stored lowercase */
    const char *to;              /* same; contract creation is not supported */
    const char *value;           /* wei as a decimal string; NULL = "0" */
    const uint8_t *data;         /* calldata, may be NULL when data_len == 0 */
    size_t data_len;             /* <= OUTBOX_MAX_DATA */
    uint64_t gas_limit;          /* 0 = eth_estimateGas + 20 % at signing time */
    const char *purpose;         /* free label for operators, NULL = "" */
} outbox_req;

/* Inside the caller's open transaction `tx`: queues r in <schema>.transactions.
 * 1 queued, 0 the idempotency key was already queued (nothing changed, whatever
 * the other fields say), -1 invalid request or database error (err filled). */
int outbox_enqueue(db_conn *tx, const char *schema, const outbox_req *r, char *err, size_t errlen);

/* One row as stored, for callers and tests. */
typedef struct outbox_row {
    int64_t id;
    char status[16];      /* pending | signed | sent | confirmed | reverted | failed */
    char tx_hash[67];     /* "" when none */
    int64_t nonce;        /* -1 when not assigned */
    int64_t block_number; /* -1 when not mined */
    int attempts;         /* signed variants (replacements + 1) */
    char error[512];      /* "" when none */
    char revert_reason[512];
} outbox_row;

/* Looks up a row by idempotency key (on any connection). 1 found, 0 no such key, -1 error. */
int outbox_get(db_conn *c, const char *schema, const char *key, outbox_row *out, char *err,
               size_t errlen);

typedef struct outbox_cfg {
    const char *schema;    /* service schema holding transactions / transaction_attempts */
    db_pool *db;           /* borrowed */
    rpc_client *rpc;       /* borrowed */
    signer *signer;        /* borrowed; only rows whose from_address is its address are handled */
    const char *redis_url; /* pause flag, per-signer lease, alerts */
    uint64_t chain_id;     /* only rows of this chain are handled (checked against the node) */
    const char
        *abi_dir; /* ABI JSON files for revert decoding; NULL = $PAIMON_ABI_DIR or "schemas/abi" */
    const char *source;     /* alert envelope source; NULL = schema */
    unsigned confirmations; /* 0 = 12 */
    int64_t stuck_after_ms; /* not mined this long after the latest attempt -> replace; 0 = 60000 */
    unsigned bump_percent;  /* 0 = 15; values below 10 are refused (geth needs >= 10 %) */
    money_u256
        max_fee_cap;      /* wei per gas never signed above (max_fee or gas_price); 0 = 500 gwei */
    int legacy;           /* 1 = legacy EIP-155 (gas_price) transactions, 0 = EIP-1559 */
    int batch;            /* rows per status per pass; 0 = 16 */
    int64_t lease_ttl_ms; /* per-signer lease; 0 = 30000 */
    metrics_registry *metrics; /* NULL = metrics_global() */
    /* Test hook, called right after each durable step: "signed" after the COMMIT
     * that stores nonce + raw tx, "sent" after eth_sendRawTransaction returned and
     * before that is recorded. NULL in production. */
    void (*hook)(const char *step, void *ud);
    void *hook_ud;
} outbox_cfg;

typedef struct outbox outbox;

/* Validates cfg, loads the ABIs, connects to Redis. NULL with err on failure. */
outbox *outbox_new(const outbox_cfg *cfg, char *err, size_t errlen);
void outbox_free(outbox *o); /* NULL is fine */

/* One pass over pending, signed and sent rows. Returns the number of rows that
 * changed status or got a new attempt, or -1 when a pass could not complete
 * (database / Redis / RPC unavailable; err says why): the caller backs off and
 * calls again, nothing is lost. */
/* Runs outbox_step every every_ms until *stop becomes non-zero (checked every 50 ms,
 * so a shutdown waits for at most the pass in hand): a worker thread's whole body. */
void outbox_run(outbox *o, int64_t every_ms, const atomic_int *stop);

int outbox_step(outbox *o, char *err, size_t errlen);

typedef struct outbox_stats {
    uint64_t sent, replaced, failed, confirmed, reverted, rebroadcast;
} outbox_stats;
void outbox_get_stats(const outbox *o, outbox_stats *out);

#endif
