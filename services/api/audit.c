/* audit: hash-chained audit log (see audit.h). */
#include "audit.h"

#include "hex.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_LOCK_KEY 0x7061696d61756474LL /* "paimaudt" */

char *audit_canonical_new(const audit_entry *e)
{
    cJSON *a = cJSON_CreateArray();
    char num[32];
    /* integers as JSON numbers would pass through a double: print them exactly */
    snprintf(num, sizeof num, "%" PRId64, e->seq);
    cJSON_AddItemToArray(a, cJSON_CreateRaw(num));
    snprintf(num, sizeof num, "%" PRId64, e->at_ms);
    cJSON_AddItemToArray(a, cJSON_CreateRaw(num));
    const char *s1[] = {e->actor, e->role, e->method, e->route, e->target};
    for (size_t i = 0; i < 5; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(s1[i] ? s1[i] : ""));
    snprintf(num, sizeof num, "%d", e->status);
    cJSON_AddItemToArray(a, cJSON_CreateRaw(num));
    const char *s2[] = {e->outcome, e->request_id, e->ip, e->body_sha256};
    for (size_t i = 0; i < 4; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(s2[i] ? s2[i] : ""));
    char *txt = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    char *out = util_strdup(txt ? txt : "");
    cJSON_free(txt);
    return out;
}

int audit_hash(const char *prev_hex, const audit_entry *e, char hash_hex[CRYPTO_SHA256_HEXLEN],
               char *err, size_t errlen)
{
    char *canon = audit_canonical_new(e);
    size_t pl = strlen(prev_hex), cl = strlen(canon);
    char *buf = util_malloc(pl + cl + 1);
    memcpy(buf, prev_hex, pl);
    memcpy(buf + pl, canon, cl + 1);
    free(canon);
    uint8_t d[CRYPTO_SHA256_LEN];
    int rc = crypto_sha256(buf, pl + cl, d, err, errlen);
    free(buf);
    if (rc != 0)
        return -1;
    hex_encode(d, sizeof d, 0, hash_hex, CRYPTO_SHA256_HEXLEN);
    return 0;
}

const char *audit_outcome(int status)
{
    if (status >= 200 && status < 400)
        return "success";
    if (status == 401 || status == 403 || status == 429)
        return "denied";
    return "failure";
}

typedef struct {
    audit_entry *e;
} append_ctx;

static int append_tx(db_conn *c, void *ud, char *err, size_t errlen)
{
    audit_entry *e = ((append_ctx *)ud)->e;
    char lock[64];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%lld)", (long long)AUDIT_LOCK_KEY);
    if (db_exec(c, lock, err, errlen) != 0)
        return -1;
    PGresult *r = db_query_prepared(
        c, "audit_last", "SELECT seq, hash FROM api.audit_logs ORDER BY seq DESC LIMIT 1", 0, NULL,
        err, errlen);
    if (!r)
        return -1;
    const char *prev = AUDIT_ZERO_HASH;
    char prevbuf[CRYPTO_SHA256_HEXLEN];
    e->seq = 1;
    if (PQntuples(r) == 1) {
        e->seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10) + 1;
        util_strlcpy(prevbuf, PQgetvalue(r, 0, 1), sizeof prevbuf);
        prev = prevbuf;
    }
    PQclear(r);
    char hash[CRYPTO_SHA256_HEXLEN];
    if (audit_hash(prev, e, hash, err, errlen) != 0)
        return -1;
    char seq[24], at[24], st[16];
    snprintf(seq, sizeof seq, "%" PRId64, e->seq);
    snprintf(at, sizeof at, "%" PRId64, e->at_ms);
    snprintf(st, sizeof st, "%d", e->status);
    const char *p[] = {seq, at,         e->actor,      e->role, e->method,      e->route, e->target,
                       st,  e->outcome, e->request_id, e->ip,   e->body_sha256, prev,     hash};
    r = db_query_prepared(c, "audit_insert",
                          "INSERT INTO api.audit_logs (seq, at_ms, actor, role, method, route, "
                          "target, status, outcome, request_id, ip, body_sha256, prev_hash, hash) "
                          "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)",
                          14, p, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int audit_append(db_pool *db, audit_entry *e, char *err, size_t errlen)
{
    e->at_ms = util_now_ms();
    append_ctx ctx = {e};
    return db_tx(db, append_tx, &ctx, err, errlen);
}

int audit_verify(db_pool *db, audit_verify_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    db_conn *c = db_acquire(db, 5000, err, errlen);
    if (!c)
        return -1;
    char prev[CRYPTO_SHA256_HEXLEN];
    util_strlcpy(prev, AUDIT_ZERO_HASH, sizeof prev);
    int64_t expect_seq = 1, after = 0;
    int rc = 0;
    out->ok = 1;
    for (;;) {
        char as[24];
        snprintf(as, sizeof as, "%" PRId64, after);
        const char *p[] = {as};
        PGresult *r = db_query_prepared(
            c, "audit_page",
            "SELECT seq, at_ms, actor, role, method, route, target, status, outcome, request_id, "
            "ip, body_sha256, prev_hash, hash FROM api.audit_logs WHERE seq > $1 ORDER BY seq "
            "LIMIT 1000",
            1, p, err, errlen);
        if (!r) {
            rc = -1;
            break;
        }
        int n = PQntuples(r);
        for (int i = 0; i < n && out->ok; i++) {
            audit_entry e = {
                .seq = strtoll(PQgetvalue(r, i, 0), NULL, 10),
                .at_ms = strtoll(PQgetvalue(r, i, 1), NULL, 10),
                .actor = PQgetvalue(r, i, 2),
                .role = PQgetvalue(r, i, 3),
                .method = PQgetvalue(r, i, 4),
                .route = PQgetvalue(r, i, 5),
                .target = PQgetvalue(r, i, 6),
                .status = (int)strtol(PQgetvalue(r, i, 7), NULL, 10),
                .outcome = PQgetvalue(r, i, 8),
                .request_id = PQgetvalue(r, i, 9),
                .ip = PQgetvalue(r, i, 10),
                .body_sha256 = PQgetvalue(r, i, 11),
            };
            char h[CRYPTO_SHA256_HEXLEN];
            const char *why = NULL;
            if (e.seq != expect_seq)
                why = "sequence gap";
            else if (strcmp(PQgetvalue(r, i, 12), prev) != 0)
                why = "prev_hash does not match the previous row";
            else if (audit_hash(prev, &e, h, err, errlen) != 0 ||
                     strcmp(h, PQgetvalue(r, i, 13)) != 0)
                why = "row hash does not match its contents";
            if (why) {
                out->ok = 0;
                out->first_bad_seq = e.seq ? e.seq : expect_seq;
                util_strlcpy(out->reason, why, sizeof out->reason);
                break;
            }
            util_strlcpy(prev, h, sizeof prev);
            out->checked++;
            expect_seq++;
            after = e.seq;
        }
        PQclear(r);
        if (!out->ok || n < 1000)
            break;
    }
    db_release(db, c);
    return rc;
}
