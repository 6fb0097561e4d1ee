/* rpc: Ethereum JSON-RPC client over HTTP (libcurl) with several endpoints in
 * priority order, failover, a circuit breaker per endpoint, rate-limit respect,
 * batch calls, stale-tip detection and per-endpoint Prometheus metrics.
 *
 * Failure classes (why a call moves to the next endpoint or not):
 *  - endpoint failures: connect error, timeout, HTTP 5xx / 429 / other non-200,
 *    invalid or oversized response, JSON-RPC errors that describe the node
 *    (-32603 internal, -32000 "header not found"/"missing trie node"/..., rate
 *    limits -32005), and a tip lagging the best endpoint. They fail over and
 *    count towards the endpoint's breaker (K consecutive -> open; after a
 *    cool-down one probe is let through (half-open); a failed probe doubles the
 *    cool-down up to a maximum). HTTP 429 (and rate-limit errors) open the
 *    endpoint until Retry-After.
 *  - endpoint limits: "method not found" and log range / result-size caps. They
 *    fail over (another provider may allow it) but do not trip the breaker.
 *  - deterministic errors: reverts (code 3 / "execution reverted"), invalid
 *    params (-32602), nonce / funds / underpriced errors... The same request gets
 *    the same answer everywhere: returned at once, no failover, breaker untouched.
 *
 * Thread safety: an rpc_client may be shared by any number of threads. Endpoint
 * state is under a mutex; each call borrows a keep-alive curl handle from a small
 * per-endpoint pool, so concurrent calls run in parallel.
 *
 * Memory: cJSON results are owned by the caller (cJSON_Delete). `params` passed to
 * rpc_call* are taken (freed by the call, even on failure). rpc_error.data is owned
 * by the rpc_error: release with rpc_error_clear(). Strings in rpc_config are copied. */
#ifndef PAIMON_RPC_H
#define PAIMON_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "money.h"

typedef struct rpc_client rpc_client;

#define RPC_MAX_ENDPOINTS 16

typedef struct rpc_config {
    const char *const *urls; /* http(s) URLs in priority order (1..RPC_MAX_ENDPOINTS) */
    size_t nurls;
    const char *name;                /* metrics label client="..."; NULL = "default" */
    int64_t connect_timeout_ms;      /* 0 = 2000 */
    int64_t timeout_ms;              /* whole request; 0 = 10000 */
    size_t max_response_bytes;       /* 0 = 32 MiB */
    int breaker_threshold;           /* consecutive failures that open; 0 = 3 */
    int64_t breaker_cooldown_ms;     /* first open period; 0 = 2000 */
    int64_t breaker_max_cooldown_ms; /* backoff cap; 0 = 60000 */
    int64_t rate_limit_default_ms;   /* 429 without Retry-After; 0 = 1000 */
    int64_t retry_after_max_ms;      /* cap on a server's Retry-After; 0 = 60000 */
    uint64_t max_head_lag;           /* blocks behind the best head = stale; 0 = 5 */
} rpc_config;

typedef enum {
    RPC_OK = 0,
    RPC_ERR_RPC,         /* the node answered a JSON-RPC error (code/message/data set) */
    RPC_ERR_UNAVAILABLE, /* every endpoint failed or is open; message says why */
    RPC_ERR_INVALID,     /* bad argument, or a result of the wrong shape */
} rpc_status;

typedef struct rpc_error {
    rpc_status status;
    long code; /* JSON-RPC error.code when status == RPC_ERR_RPC */
    char message[256];
    cJSON *data; /* error.data (e.g. revert bytes as a hex string) or NULL; owned */
} rpc_error;

void rpc_error_init(rpc_error *e);
void rpc_error_clear(rpc_error *e); /* frees data, resets to RPC_OK; NULL is fine */
/* Revert data as bytes (error.data as a hex string, or {data: hex} as some nodes
 * nest it); owned by the caller. NULL when absent or not hex. */
uint8_t *rpc_error_revert_data(const rpc_error *e, size_t *len);

typedef enum {
    RPC_CLASS_DETERMINISTIC = 0, /* caller's problem: return as is */
    RPC_CLASS_NODE,              /* node failure: fail over + breaker */
    RPC_CLASS_LIMIT,             /* provider limit: fail over, breaker untouched */
    RPC_CLASS_RATE_LIMIT,        /* fail over, endpoint opened for a while */
} rpc_error_class;
/* How a JSON-RPC error object (code, message) is treated; exposed for tests. */
rpc_error_class rpc_error_classify(long code, const char *message);

rpc_client *rpc_client_new(const rpc_config *cfg, char *err, size_t errlen);
void rpc_client_free(rpc_client *c); /* NULL is fine; no call may be in flight */

/* Flags for rpc_call_ex / rpc_batch. */
#define RPC_F_HEAD 1u /* answer depends on the tip: skip endpoints whose head is stale */

/* One request. Returns the `result` (owned; JSON null is returned as a cJSON
 * NULL item, never as C NULL) or NULL with err filled; for JSON-RPC errors the
 * message is "rpc error <code>: <message>". */
cJSON *rpc_call(rpc_client *c, const char *method, cJSON *params, char *err, size_t errlen);
/* Same with flags and the structured error (e may be NULL). */
cJSON *rpc_call_ex(rpc_client *c, const char *method, cJSON *params, unsigned flags, rpc_error *e);

typedef struct rpc_batch_item {
    const char *method; /* in: borrowed */
    cJSON *params;      /* in: taken (set to NULL by rpc_batch) */
    cJSON *result;      /* out: owned by the caller, or NULL when error is set */
    rpc_error error;    /* out: per-item error */
} rpc_batch_item;

/* Sends n requests as one JSON-RPC batch; the answers are matched by id, so
 * items[i].result answers items[i] whatever order the node used. 0 when the batch
 * got an answer (each item then has its result or its own error); -1 when every
 * endpoint failed (err filled, every item's error set). A batch in which some item
 * got a node-class error is retried on the next endpoint. */
int rpc_batch(rpc_client *c, rpc_batch_item *items, size_t n, unsigned flags, char *err,
              size_t errlen);
void rpc_batch_items_clear(rpc_batch_item *items, size_t n); /* frees results and errors */

/* ---------------------------------------------------------------- typed helpers */

#define RPC_BLOCK_LATEST    (-1)
#define RPC_BLOCK_SAFE      (-2)
#define RPC_BLOCK_FINALIZED (-3)
#define RPC_BLOCK_PENDING   (-4)
#define RPC_BLOCK_TAG_MAX   24
/* "latest"/"safe"/... for the negative constants, else "0x<hex>". Returns buf. */
const char *rpc_block_tag(int64_t block, char buf[RPC_BLOCK_TAG_MAX]);

/* Parses a JSON-RPC QUANTITY ("0x0", "0x1a"; no leading zeros beyond "0x0" are
 * accepted leniently, empty "0x" is not) into a uint64. 0 / -1. */
int rpc_parse_quantity(const cJSON *v, uint64_t *out);

typedef struct rpc_header {
    uint64_t number;
    uint8_t hash[32];
    uint8_t parent_hash[32];
    uint64_t timestamp;
} rpc_header;

/* Validates a block object (as eth_getBlockByNumber / newHeads give it). 0 / -1. */
int rpc_header_from_json(const cJSON *block, rpc_header *out, char *err, size_t errlen);

int rpc_block_number(rpc_client *c, uint64_t *out, char *err, size_t errlen);
int rpc_chain_id(rpc_client *c, uint64_t *out, char *err, size_t errlen);
/* block: a number or RPC_BLOCK_*. 0 found, 1 the node has no such block, -1 error. */
int rpc_get_block_header(rpc_client *c, int64_t block, rpc_header *out, char *err, size_t errlen);
/* filter: borrowed eth_getLogs filter object. Returns the logs array (owned) or NULL. */
cJSON *rpc_get_logs(rpc_client *c, const cJSON *filter, rpc_error *e);
/* eth_call {to, data} at block (number or RPC_BLOCK_*); *out is owned (never NULL
 * on success, even when empty). A revert is RPC_ERR_RPC with the revert data in
 * e->data (see rpc_error_revert_data). 0 / -1. */
int rpc_eth_call(rpc_client *c, const char *to, const char *data_hex, int64_t block, uint8_t **out,
                 size_t *outlen, rpc_error *e);
/* eth_sendRawTransaction; hash_out gets the node's tx hash. 0 / -1. */
int rpc_send_raw_tx(rpc_client *c, const uint8_t *raw, size_t rawlen, uint8_t hash_out[32],
                    rpc_error *e);
/* 0 with *receipt (owned) when mined, 1 when unknown / pending, -1 on error. */
int rpc_get_tx_receipt(rpc_client *c, const uint8_t hash[32], cJSON **receipt, char *err,
                       size_t errlen);
/* block: RPC_BLOCK_PENDING or RPC_BLOCK_LATEST (or a number). */
int rpc_get_tx_count(rpc_client *c, const char *address, int64_t block, uint64_t *out, char *err,
                     size_t errlen);
int rpc_gas_price(rpc_client *c, money_u256 *out, char *err, size_t errlen);
int rpc_max_priority_fee(rpc_client *c, money_u256 *out, char *err, size_t errlen);

typedef struct rpc_fees {
    uint64_t oldest_block;
    size_t nblocks;       /* blocks answered */
    money_u256 *base_fee; /* nblocks + 1 entries (the last is the next block's) */
    size_t npercentiles;
    money_u256 *reward; /* nblocks * npercentiles, row-major; NULL if none asked */
} rpc_fees;
/* eth_feeHistory(nblocks, newest, percentiles). percentiles are integers 0..100. */
int rpc_fee_history(rpc_client *c, unsigned nblocks, int64_t newest, const unsigned *percentiles,
                    size_t npercentiles, rpc_fees *out, char *err, size_t errlen);
void rpc_fee_history_free(rpc_fees *h); /* frees the arrays; NULL is fine */

/* ---------------------------------------------------------------- health */

typedef enum {
    RPC_BREAKER_CLOSED = 0,
    RPC_BREAKER_HALF_OPEN = 1,
    RPC_BREAKER_OPEN = 2
} rpc_breaker;

typedef struct rpc_endpoint_info {
    char host[128]; /* host[:port] only: URLs may carry API keys */
    rpc_breaker breaker;
    int consecutive_failures;
    int64_t open_until_ms;    /* monotonic; 0 when not open */
    uint64_t head;            /* last block number seen from this endpoint (0 = none) */
    int64_t head_advanced_ms; /* monotonic time the head last grew; 0 = never */
    int stale;                /* head lags the best endpoint by more than max_head_lag */
    uint64_t requests, failures;
} rpc_endpoint_info;

size_t rpc_endpoint_count(const rpc_client *c);
int rpc_endpoint_get(rpc_client *c, size_t i, rpc_endpoint_info *out); /* -1 if i is out of range */
/* Asks every endpoint that is not open for eth_blockNumber (bypassing failover),
 * so stale endpoints are known before a head-sensitive call lands on one. Call it
 * from a health timer (every few block times); it also feeds the breakers and the
 * per-endpoint last-block gauge. 0 when at least one endpoint answered. */
int rpc_probe_heads(rpc_client *c, char *err, size_t errlen);
/* Best head across endpoints and the monotonic time it last advanced (0 = never). */
uint64_t rpc_best_head(rpc_client *c, int64_t *advanced_ms);

#endif
