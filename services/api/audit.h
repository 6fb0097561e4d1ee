/* audit: the gateway's append-only, hash-chained audit trail (api.audit_logs).
 *
 * Each row's hash = SHA-256(prev_hash_hex || canonical), where canonical is the
 * compact JSON array
 *   [seq, at_ms, actor, role, method, route, target, status, outcome, request_id, ip,
 *    body_sha256]
 * (cJSON's unformatted printing, strings escaped by it) and the first row's prev_hash
 * is 64 zeros. Changing, removing or reordering any row breaks every later link,
 * which audit_verify reports with the first bad sequence number.
 *
 * Appends are serialised by a transaction-level advisory lock, so concurrent gateway
 * threads and replicas extend one chain.
 *
 * Memory: entries' strings are borrowed; audit_canonical_new returns an owned string. */
#ifndef PAIMON_API_AUDIT_H
#define PAIMON_API_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "db.h"

#define AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

typedef struct audit_entry {
    int64_t seq;
    int64_t at_ms;
    const char *actor, *role, *method, *route, *target;
    int status;
    const char *outcome; /* success | denied | failure */
    const char *request_id, *ip;
    const char *body_sha256; /* hex of the request body's SHA-256 */
} audit_entry;

char *audit_canonical_new(const audit_entry *e);
/* hash_hex = SHA-256(prev_hex || canonical(e)) in lowercase hex. */
int audit_hash(const char *prev_hex, const audit_entry *e, char hash_hex[CRYPTO_SHA256_HEXLEN],
               char *err, size_t errlen);
/* "success" for 2xx/3xx, "denied" for 401/403/429, else "failure". */
const char *audit_outcome(int status);
/* Appends e (seq and at_ms are assigned here). 0 or -1. */
int audit_append(db_pool *db, audit_entry *e, char *err, size_t errlen);

typedef struct audit_verify_result {
    int ok;
    int64_t checked;
    int64_t first_bad_seq; /* 0 when ok */
    char reason[128];
} audit_verify_result;
/* Walks the whole chain in order. 0 (result filled) or -1 on a database error. */
int audit_verify(db_pool *db, audit_verify_result *out, char *err, size_t errlen);

#endif
