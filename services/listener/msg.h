/* msg: the chain.events envelope of a stored row written straight to JSON text, the
 * same document envelope_new + envelope_to_json would give (id, type, source, ts,
 * attempt 0, trace_id, priority, payload), without building and printing a cJSON
 * tree per message: on a backfill that tree cost more than the XADD itself. args is
 * the row's JSON text, embedded as is.
 *
 * Memory: msg_event_json returns a malloc'd string (caller frees); msg_trace is a
 * caller-owned generator state. */
#ifndef LISTENER_MSG_H
#define LISTENER_MSG_H

#include <stdint.h>

#include "store.h"

/* Trace ids: 32 lowercase hex from a generator seeded with 16 random bytes (one
 * getrandom per generator instead of one per message). */
typedef struct msg_trace {
    uint64_t s0, s1;
} msg_trace;

void msg_trace_init(msg_trace *t);
void msg_trace_next(msg_trace *t, char out[33]);

/* The envelope of row w (compensation = its ".removed" counterpart), stamped ts
 * (RFC 3339, envelope_format_ts) with trace_id. NULL on a bad row (event name or id
 * the envelope cannot carry). */
char *msg_event_json(uint64_t chain_id, const store_row *w, int compensation, const char *ts,
                     const char *trace_id);

#endif
