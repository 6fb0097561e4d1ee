/* ws: the gateway's WebSocket server — live updates for the channels fund, redemptions,
 * approvals, risk, rebalance and alerts, fed from the `updates` stream, with resume.
 *
 * libwebsockets 4.1 cannot run on libevent here (Debian builds no libevent plugin), so
 * the server is an lws context on its own thread and its own port (PAIMON_WS_PORT,
 * path /ws). One more thread XREAD BLOCKs the stream and hands each entry, rendered
 * once, to the lws thread; every connection shares that buffer by reference.
 *
 * Protocol (JSON text frames; documented in schemas/openapi.yaml, x-websocket):
 *   client  {"op":"auth","token":"<access JWT>"}            must come first, within the
 *                                                            auth timeout
 *           {"op":"subscribe","channels":[...],"lastEventId":"<stream id>"?}
 *           {"op":"unsubscribe","channels":[...]}   {"op":"ping"}
 *   server  {"type":"authenticated",...} {"type":"subscribed",...}
 *           {"type":"event","channel":c,"id":"<stream id>","event":<envelope>}
 *           {"type":"caught_up","lastEventId":...} after a replay, {"type":"gap",...}
 *           when entries after lastEventId were already trimmed, {"type":"error",...},
 *           {"type":"pong"}.
 * Close codes: 4401 invalid / missing / expired token, 4408 authentication timeout,
 * 4008 slow consumer (its bounded send queue overflowed), 1009 message too big.
 * A token is the same access token the REST API takes (gw_access_verify), so a token
 * revoked by logout is refused here too; the connection is closed when it expires.
 *
 * Resume: a subscribe with lastEventId first replays the stream after that id
 * (XRANGE, page by page as the client drains its queue), then switches to live. Every
 * connection remembers the id of the last entry it was given and live entries at or
 * below it are skipped, so the switch has neither gaps nor duplicates.
 *
 * Memory: ws_new/ws_free own the lws context, the threads, both Redis connections and
 * every queued message; the gw_config is borrowed and must outlive the server. */
#ifndef PAIMON_API_WS_H
#define PAIMON_API_WS_H

#include <stddef.h>
#include <stdint.h>

#include "gw.h"

typedef struct ws_server ws_server;

typedef struct ws_config {
    const char *bind;
    int port; /* 0 = any free port (see ws_port) */
    const char *redis_url;
    const char *stream; /* e.g. "paimon:updates:normal" (bus topic `updates`) */
    int queue_max;      /* messages queued per connection before it is dropped */
    int max_clients;    /* connections refused beyond this */
    int64_t auth_timeout_ms;
    const gw_config *gw; /* token verification; borrowed */
} ws_config;

/* The channel an envelope type belongs to ("risk.metrics" -> "risk"), NULL if none. */
const char *ws_channel_of(const char *type);
/* Parses a stream id "<ms>-<seq>" or "<ms>"; 0 or -1. */
int ws_parse_id(const char *s, uint64_t *ms, uint64_t *seq);

/* Binds the port and creates the context (no threads yet). NULL on failure. */
ws_server *ws_new(const ws_config *cfg, char *err, size_t errlen);
/* Starts the service and stream reader threads. */
int ws_start(ws_server *s, char *err, size_t errlen);
int ws_port(const ws_server *s);
/* Stops both threads and closes every connection. */
void ws_stop(ws_server *s);
void ws_free(ws_server *s);

#endif
