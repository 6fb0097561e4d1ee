/* envelope: the JSON envelope every bus message travels in (ARCHITECTURE 3.1):
 * id, type, source, ts, attempt, trace_id, optional priority, payload. Parsing treats
 * the text as untrusted: size-limited, strict JSON, validated against the embedded
 * schema schemas/messages/envelope.schema.json.
 *
 * Ownership: an envelope owns all its strings and its payload; envelope_free
 * releases everything. envelope_to_json returns a malloc'd string (caller frees). */
#ifndef PAIMON_ENVELOPE_H
#define PAIMON_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#define ENVELOPE_MAX_BYTES (1024 * 1024)

typedef struct envelope {
    char *id, *type, *source, *trace_id;
    char ts[32]; /* "2026-11-23T10:00:00.123Z" */
    int attempt;
    char *priority; /* "critical" | "high" | "normal", or NULL */
    cJSON *payload; /* always an object */
} envelope;

/* New envelope stamped now with attempt 0. payload is taken (NULL = empty object),
 * trace_id NULL = a fresh random one. Returns NULL (payload freed) if id, type or
 * source is NULL. Field contents are not checked here: envelope_validate does. */
envelope *envelope_new(const char *id, const char *type, const char *source, const char *trace_id,
                       cJSON *payload);
void envelope_free(envelope *e);

/* Compact JSON, caller frees; NULL if e is NULL or on allocation failure. */
char *envelope_to_json(const envelope *e);

/* Parses untrusted text of len bytes (need not be NUL-terminated). On success *out
 * is a new envelope; on failure *out is NULL and err says why, with a JSON pointer
 * for schema violations. */
int envelope_parse(const char *json, size_t len, envelope **out, char *err, size_t errlen);

/* Checks a locally built envelope against the schema before it is published. */
int envelope_validate(const envelope *e, char *err, size_t errlen);

/* Sets e->priority (NULL clears); 0, or -1 if not critical/high/normal. */
int envelope_set_priority(envelope *e, const char *priority, char *err, size_t errlen);

/* 32 lowercase hex chars from 16 random bytes, NUL-terminated. */
void envelope_trace_new(char out[33]);

/* Formats epoch milliseconds as RFC 3339 UTC with milliseconds into out. */
void envelope_format_ts(int64_t ms, char out[32]);

#endif
