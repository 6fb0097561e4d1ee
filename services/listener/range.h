/* range: adaptive eth_getLogs block ranges (ARCHITECTURE §3.5). Providers cap a
 * request by block span and by result size, and a dense range times out, so the span
 * halves on a limit / size / timeout failure (an eighth when the answer overran our own
 * size cap) and doubles while the answers stay sparse; a dense answer shrinks the next
 * span before a provider has to refuse it.
 *
 * Plain value struct, no allocation, no I/O: the caller owns it. */
#ifndef LISTENER_RANGE_H
#define LISTENER_RANGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct range_ctl {
    uint64_t span;      /* blocks in the next request */
    uint64_t min, max;  /* bounds of span */
    size_t target_logs; /* logs per request we aim at */
    uint64_t shrinks, grows;
} range_ctl;

/* 0, or -1 when the bounds make no sense (min 0, min > max, initial outside). */
int range_init(range_ctl *r, uint64_t initial, uint64_t min, uint64_t max, size_t target_logs,
               char *err, size_t errlen);

/* The next request [next, *to] below safe_head: 1 when there is one, 0 when
 * next > safe_head (nothing to read yet). */
int range_next(const range_ctl *r, uint64_t next, uint64_t safe_head, uint64_t *to);

/* After a successful request over `span` blocks that returned nlogs logs. */
void range_on_success(range_ctl *r, uint64_t span, size_t nlogs);

/* After a refused / failed request over `span` blocks: the next span is at most half
 * of it, or an eighth when `oversize` (the answer overran our own size cap: a 32 MiB
 * cap holds some 30,000 logs, six times the default target, and each halving step
 * would download the whole cap again before failing). Returns 1 when the span shrank,
 * 0 when it was already at min (a single block the provider will not serve: the caller
 * backs off and retries, it cannot skip). */
int range_on_failure(range_ctl *r, uint64_t span, int oversize);

/* Whether a failed eth_getLogs deserves a smaller range: a provider limit
 * (rpc_error_classify says LIMIT: "too many results", "block range", "limit exceeded",
 * -32005 is a rate limit and does not count), or every endpoint unavailable with a
 * timeout or an oversized answer. is_rpc_error: the node answered an error object. */
int range_error_shrinks(int is_rpc_error, long code, const char *message);

/* Whether the failure is rpc.h's own cap on an answer (max_response_bytes). */
int range_error_oversize(const char *message);

#endif
