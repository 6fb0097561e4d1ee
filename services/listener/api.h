/* api: the listener's internal read endpoints (the gateway uses them; ARCHITECTURE §6
 * envelopes):
 *   GET /v1/checkpoints                    every chain's checkpoint and live status
 *   GET /v1/events?chain_id=&from_block=&to_block=&event=&tx_hash=&removed=&limit=&cursor=
 *                                          events in chain order, cursor-paginated
 *   GET /v1/gaps?chain_id=                 block ranges between the start block and the
 *                                          checkpoint that were never read (should be [])
 * Query strings are validated (api_events_query_parse) and answered with a 400
 * envelope naming the parameter.
 *
 * Memory: api_ctx and what it points to are borrowed and must outlive the server. */
#ifndef LISTENER_API_H
#define LISTENER_API_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "db.h"
#include "http.h"

#define API_LIMIT_DEFAULT 100
#define API_LIMIT_MAX     1000

typedef struct api_ctx {
    db_pool *db;
    chain **chains;
    size_t nchains;
} api_ctx;

typedef struct api_events_query {
    uint64_t chain_id; /* 0 = the only configured chain */
    int64_t from_block, to_block;
    char event[81];   /* "" = any */
    char tx_hash[67]; /* "" = any */
    int removed;      /* -1 any, 0 live only, 1 removed only */
    int limit;
    int has_cursor;
    int64_t cur_block, cur_log; /* resume after this row ... */
    char cur_hash[67];          /* ... of this block hash */
} api_events_query;

/* get(name) returns the decoded query value or NULL. 0, or -1 with the offending
 * parameter in *bad_param and a client-facing reason in err. */
int api_events_query_parse(const char *(*get)(void *ud, const char *name), void *ud,
                           api_events_query *q, const char **bad_param, char *err, size_t errlen);
/* Cursor text "<block>.<logIndex>.<blockHash>" (what next_cursor holds): the last row
 * of the page in the table's key order. hash gets the normalised 0x + 64 hex. */
int api_cursor_parse(const char *s, int64_t *block, int64_t *log, char hash[67]);

void api_register(http_server *s, api_ctx *ctx);

#endif
