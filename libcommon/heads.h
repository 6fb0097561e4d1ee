/* heads: a source of new block headers. A libwebsockets client on its own thread
 * (with its own lws context and loop: lws 4.1 cannot share a libevent loop)
 * subscribes to `eth_subscribe ["newHeads"]`; it reconnects with backoff, and while
 * the WebSocket is down (or silent for ws_idle_ms) the same thread polls
 * eth_getBlockByNumber("latest") through rpc.h, switching back when the socket is
 * subscribed again.
 *
 * Guarantees: headers are delivered in order without holes — when the head jumps
 * by more than one, the missing headers are fetched (one JSON-RPC batch per 32) and
 * delivered first (source HEADS_SRC_GAP); a header whose (number, hash) was already
 * delivered is dropped; a different hash at an already delivered height (a reorg)
 * is delivered again so the owner can compare parent hashes. If the missing headers
 * cannot be fetched, nothing newer is delivered until they can.
 *
 * Delivery: a bounded thread-safe queue plus an eventfd (heads_fd) that is readable
 * exactly while the queue is non-empty, so a libevent loop can watch it with
 * EV_READ|EV_PERSIST and call heads_pop until it returns 0. When the queue is full the
 * thread stops delivering and the hole is filled later from the last delivered header,
 * so a slow owner loses nothing.
 *
 * Memory: heads_new copies the config strings; the rpc client is borrowed and must
 * outlive the heads (it is used from the heads thread: rpc clients are thread-safe). */
#ifndef PAIMON_HEADS_H
#define PAIMON_HEADS_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

typedef struct heads heads;

typedef struct heads_config {
    const char *ws_url;       /* ws:// or wss://; NULL = polling only */
    rpc_client *rpc;          /* borrowed: polling and gap filling */
    const char *name;         /* metrics label; NULL = "default" */
    int64_t poll_interval_ms; /* 0 = 1000 */
    int64_t ws_idle_ms;       /* subscribed but silent this long: poll too; 0 = 10 x poll */
    int64_t reconnect_min_ms; /* 0 = 250 */
    int64_t reconnect_max_ms; /* 0 = 30000 */
    size_t queue_cap;         /* 0 = 4096 */
    int resume;               /* 1: deliver every header after resume_after (checkpoint) */
    uint64_t resume_after;
} heads_config;

typedef enum { HEADS_SRC_WS = 0, HEADS_SRC_POLL = 1, HEADS_SRC_GAP = 2 } heads_source;

typedef struct heads_event {
    rpc_header header;
    heads_source source;
} heads_event;

typedef struct heads_stats {
    int ws_subscribed;
    uint64_t from_ws, from_poll, from_gap; /* delivered by source */
    uint64_t duplicates;                   /* dropped as already delivered */
    uint64_t ws_connects;                  /* successful subscriptions */
    uint64_t last_number;                  /* last delivered header */
    int64_t last_advance_ms;               /* monotonic time the head last grew; 0 = never */
    size_t queued;
} heads_stats;

/* Starts the thread. ws_url must be ws:// or wss:// when set. */
heads *heads_new(const heads_config *cfg, char *err, size_t errlen);
/* Stops the thread (waits for an in-flight RPC call) and frees; NULL is fine. */
void heads_free(heads *h);
/* eventfd readable while events are queued; owned by heads (do not close). */
int heads_fd(const heads *h);
/* 1 with *out filled, 0 when the queue is empty. */
int heads_pop(heads *h, heads_event *out);
void heads_get_stats(heads *h, heads_stats *out);

#endif
