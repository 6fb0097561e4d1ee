/* store: the listener's SQL (see store.h). New events go in with COPY (one round
 * trip, no per-row conflict check); the rare batches that may revive rows travel as
 * one jsonb parameter (jsonb_to_recordset ... ON CONFLICT), where cJSON does the
 * quoting. */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hex.h"
#include "util.h"

#define ROW_COLS                                                                                   \
    "seq, id, block_number, block_hash, extract(epoch from block_time)::bigint, tx_hash, "         \
    "tx_index, log_index, address, event, signature, args::text, priority, removed, published"

void store_rows_free(store_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++) {
        free(rows[i].signature);
        free(rows[i].args);
    }
    free(rows);
}

static void hex_encode_hash(const uint8_t h[32], char out[67])
{
    hex_encode(h, 32, 1, out, 67);
}

static int64_t i64(PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void row_from(PGresult *r, int i, store_row *o)
{
    memset(o, 0, sizeof *o);
    o->seq = i64(r, i, 0);
    util_strlcpy(o->id, PQgetvalue(r, i, 1), sizeof o->id);
    o->block_number = i64(r, i, 2);
    util_strlcpy(o->block_hash, PQgetvalue(r, i, 3), sizeof o->block_hash);
    o->block_time = i64(r, i, 4);
    util_strlcpy(o->tx_hash, PQgetvalue(r, i, 5), sizeof o->tx_hash);
    o->tx_index = i64(r, i, 6);
    o->log_index = i64(r, i, 7);
    util_strlcpy(o->address, PQgetvalue(r, i, 8), sizeof o->address);
    util_strlcpy(o->event, PQgetvalue(r, i, 9), sizeof o->event);
    o->signature = util_strdup(PQgetvalue(r, i, 10));
    o->args = util_strdup(PQgetvalue(r, i, 11));
    int p = bus_priority_parse(PQgetvalue(r, i, 12));
    o->prio = p < 0 ? BUS_NORMAL : (bus_priority)p;
    o->removed = PQgetvalue(r, i, 13)[0] == 't';
    o->published = PQgetvalue(r, i, 14)[0] == 't';
}

static int rows_from(PGresult *r, store_row **rows, size_t *n)
{
    int nt = PQntuples(r);
    *rows = nt ? util_calloc((size_t)nt, sizeof **rows) : NULL;
    for (int i = 0; i < nt; i++)
        row_from(r, i, &(*rows)[i]);
    *n = (size_t)nt;
    return 0;
}

static PGresult *q(db_conn *c, const char *sql, int n, const char *const *p, char *err,
                   size_t errlen)
{
    return db_query(c, sql, n, p, err, errlen);
}

int store_checkpoint_load(db_conn *c, uint64_t chain_id, int64_t start_block, store_checkpoint *out,
                          char *err, size_t errlen)
{
    char cid[24], sb[24], last[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    snprintf(sb, sizeof sb, "%" PRId64, start_block);
    snprintf(last, sizeof last, "%" PRId64, start_block - 1);
    const char *p[] = {cid, sb, last};
    PGresult *r = q(c,
                    "INSERT INTO listener.checkpoints (chain_id, start_block, last_block) "
                    "VALUES ($1, $2, $3) ON CONFLICT (chain_id) DO NOTHING",
                    3, p, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    r = q(c,
          "SELECT start_block, last_block, coalesce(last_hash, ''), "
          "coalesce(extract(epoch from last_time)::bigint, 0), fence, halted IS NOT NULL, "
          "published_block FROM listener.checkpoints WHERE chain_id = $1",
          1, p, err, errlen);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return util_err(err, errlen, "checkpoint row missing");
    }
    memset(out, 0, sizeof *out);
    out->start_block = i64(r, 0, 0);
    out->last_block = i64(r, 0, 1);
    util_strlcpy(out->last_hash, PQgetvalue(r, 0, 2), sizeof out->last_hash);
    out->last_time = i64(r, 0, 3);
    out->fence = i64(r, 0, 4);
    out->halted = PQgetvalue(r, 0, 5)[0] == 't';
    out->published_block = i64(r, 0, 6);
    PQclear(r);
    if (out->start_block != start_block)
        return util_err(err, errlen,
                        "checkpoint of chain %" PRIu64 " started at block %" PRId64
                        ", config says %" PRId64 ": refusing to skip or re-read silently",
                        chain_id, out->start_block, start_block);
    return 0;
}

int store_has_removed(db_conn *c, uint64_t chain_id, char *err, size_t errlen)
{
    char cid[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    const char *p[] = {cid};
    PGresult *r = q(c,
                    "SELECT EXISTS (SELECT 1 FROM listener.chain_events "
                    "WHERE chain_id = $1 AND removed)",
                    1, p, err, errlen);
    if (!r)
        return -1;
    int yes = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return yes;
}

/* Re-inclusion ids: one query for the batch's transactions. */
static int reinclusion_ids(db_conn *c, const char *cid, uint64_t chain_id, store_row *rows,
                           size_t n, char *err, size_t errlen)
{
    size_t cap = n * 68 + 3, o = 0;
    char *arr = util_malloc(cap);
    arr[o++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            arr[o++] = ',';
        memcpy(arr + o, rows[i].tx_hash, 66);
        o += 66;
    }
    arr[o++] = '}';
    arr[o] = '\0';
    const char *p[] = {cid, arr};
    PGresult *r = q(c,
                    "SELECT DISTINCT tx_hash, log_index FROM listener.chain_events "
                    "WHERE chain_id = $1 AND removed AND tx_hash = ANY($2::text[])",
                    2, p, err, errlen);
    free(arr);
    if (!r)
        return -1;
    for (int k = 0; k < PQntuples(r); k++) {
        const char *tx = PQgetvalue(r, k, 0);
        int64_t li = i64(r, k, 1);
        for (size_t i = 0; i < n; i++)
            if (rows[i].log_index == li && strcmp(rows[i].tx_hash, tx) == 0 &&
                evid_build(rows[i].id, sizeof rows[i].id, chain_id, rows[i].tx_hash, (uint64_t)li,
                           rows[i].block_hash) != 0) {
                PQclear(r);
                return util_err(err, errlen, "cannot build a re-inclusion id");
            }
    }
    PQclear(r);
    return 0;
}

/* COPY's binary format (PostgreSQL docs, "COPY ... Binary Format"): a header, then per
 * row a field count and (length, bytes) per field, big-endian; then -1. No escaping and
 * no text parsing of numbers and timestamps on either side. */
typedef struct copybuf {
    char *p;
    size_t len, cap;
} copybuf;

static char *cb_room(copybuf *b, size_t n)
{
    if (b->len + n > b->cap) {
        while (b->len + n > b->cap)
            b->cap *= 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort(); /* as util_malloc does */
    }
    char *o = b->p + b->len;
    b->len += n;
    return o;
}

static void cb_be(copybuf *b, uint64_t v, int bytes)
{
    char *o = cb_room(b, (size_t)bytes);
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        o[i] = (char)(v & 0xff);
}

static void cb_int(copybuf *b, uint64_t v, int bytes)
{
    cb_be(b, (uint64_t)bytes, 4);
    cb_be(b, v, bytes);
}

/* A text field; jsonb (version 1) is the same text after a version byte. */
static void cb_text(copybuf *b, const char *s, int jsonb)
{
    size_t n = strlen(s);
    cb_be(b, n + (jsonb ? 1 : 0), 4);
    char *o = cb_room(b, n + (jsonb ? 1 : 0));
    if (jsonb)
        *o++ = 1;
    memcpy(o, s, n);
}

/* Seconds since the Unix epoch to a timestamptz: microseconds since 2000-01-01 UTC. */
#define PG_EPOCH_OFFSET 946684800LL

/* 0 copied, 1 unique violation (the transaction is back at the savepoint), -1 error. */
static int copy_events(db_conn *c, uint64_t chain_id, const store_row *rows, size_t n, char *err,
                       size_t errlen)
{
    if (db_exec(c, "SAVEPOINT lst_copy", err, errlen) != 0)
        return -1;
    PGresult *r = PQexec(c->pg, "COPY listener.chain_events (id, chain_id, block_number, "
                                "block_hash, block_time, tx_hash, tx_index, log_index, address, "
                                "event, signature, args, priority) FROM STDIN (FORMAT binary)");
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        util_err(err, errlen, "COPY: %s", PQerrorMessage(c->pg));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    copybuf b = {.p = util_malloc(1 << 16), .cap = 1 << 16};
    memcpy(cb_room(&b, 11), "PGCOPY\n\377\r\n\0", 11);
    cb_be(&b, 0, 4); /* flags */
    cb_be(&b, 0, 4); /* header extension length */
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const store_row *w = &rows[i];
        cb_be(&b, 13, 2);
        cb_text(&b, w->id, 0);
        cb_int(&b, chain_id, 8);
        cb_int(&b, (uint64_t)w->block_number, 8);
        cb_text(&b, w->block_hash, 0);
        cb_int(&b, (uint64_t)((w->block_time - PG_EPOCH_OFFSET) * 1000000LL), 8);
        cb_text(&b, w->tx_hash, 0);
        cb_int(&b, (uint64_t)w->tx_index, 4);
        cb_int(&b, (uint64_t)w->log_index, 4);
        cb_text(&b, w->address, 0);
        cb_text(&b, w->event, 0);
        cb_text(&b, w->signature ? w->signature : "", 0);
        cb_text(&b, w->args ? w->args : "{}", 1);
        cb_text(&b, bus_priority_name(w->prio), 0);
        if (i + 1 == n)
            cb_be(&b, 0xffff, 2); /* trailer: field count -1 */
        if (b.len >= (1 << 16) || i + 1 == n) {
            if (PQputCopyData(c->pg, b.p, (int)b.len) != 1)
                rc = -1;
            b.len = 0;
        }
    }
    free(b.p);
    if (PQputCopyEnd(c->pg, rc == 0 ? NULL : "client error") != 1)
        rc = -1;
    int unique = 0;
    while ((r = PQgetResult(c->pg)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            unique = st && strcmp(st, "23505") == 0;
            util_err(err, errlen, "COPY: %s", PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
    if (rc != 0 && !unique)
        return -1;
    if (unique)
        return db_exec(c, "ROLLBACK TO SAVEPOINT lst_copy", err, errlen) == 0 ? 1 : -1;
    return db_exec(c, "RELEASE SAVEPOINT lst_copy", err, errlen);
}

int store_insert_events(db_conn *c, uint64_t chain_id, store_row *rows, size_t n, int check_reinc,
                        int *copied, char *err, size_t errlen)
{
    if (copied)
        *copied = 0;
    if (n == 0)
        return 0;
    char cid[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    if (!check_reinc) {
        int rc = copy_events(c, chain_id, rows, n, err, errlen);
        if (rc <= 0) {
            if (copied && rc == 0)
                *copied = 1;
            return rc;
        }
    }
    if (check_reinc && reinclusion_ids(c, cid, chain_id, rows, n, err, errlen) != 0)
        return -1;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        const store_row *w = &rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", w->id);
        cJSON_AddNumberToObject(o, "bn", (double)w->block_number);
        cJSON_AddStringToObject(o, "bh", w->block_hash);
        cJSON_AddNumberToObject(o, "bt", (double)w->block_time);
        cJSON_AddStringToObject(o, "tx", w->tx_hash);
        cJSON_AddNumberToObject(o, "ti", (double)w->tx_index);
        cJSON_AddNumberToObject(o, "li", (double)w->log_index);
        cJSON_AddStringToObject(o, "addr", w->address);
        cJSON_AddStringToObject(o, "ev", w->event);
        cJSON_AddStringToObject(o, "sig", w->signature);
        cJSON_AddRawToObject(o, "args", w->args);
        cJSON_AddStringToObject(o, "prio", bus_priority_name(w->prio));
        cJSON_AddItemToArray(arr, o);
    }
    char *json = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (!json)
        return util_err(err, errlen, "out of memory");
    const char *p[] = {cid, json};
    PGresult *r = db_query_prepared(
        c, "lst_insert_events",
        "INSERT INTO listener.chain_events (id, chain_id, block_number, block_hash, block_time, "
        "tx_hash, tx_index, log_index, address, event, signature, args, priority) "
        "SELECT x.id, $1::bigint, x.bn, x.bh, to_timestamp(x.bt), x.tx, x.ti, x.li, x.addr, "
        "x.ev, x.sig, x.args, x.prio FROM jsonb_to_recordset($2::jsonb) AS x(id text, bn bigint, "
        "bh text, bt bigint, tx text, ti int, li int, addr text, ev text, sig text, args jsonb, "
        "prio text) "
        "ON CONFLICT (chain_id, block_number, log_index, block_hash, block_time) DO UPDATE SET "
        "id = EXCLUDED.id, "
        "removed = false, removed_at = NULL, published = false, published_at = NULL, "
        "removed_published = false",
        2, p, err, errlen);
    free(json);
    if (!r)
        return -1;
    long nt = atol(PQcmdTuples(r));
    PQclear(r);
    if ((size_t)nt != n)
        return util_err(err, errlen, "insert wrote %ld rows for %zu events", nt, n);
    return 0;
}

int store_record_blocks(db_conn *c, uint64_t chain_id, const rpc_header *hdrs, size_t n,
                        int64_t keep_from, int64_t from, int64_t to, char *err, size_t errlen)
{
    char cid[24], kf[24], fb[24], tb[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    snprintf(kf, sizeof kf, "%" PRId64, keep_from);
    snprintf(fb, sizeof fb, "%" PRId64, from);
    snprintf(tb, sizeof tb, "%" PRId64, to);
    PGresult *r;
    if (n) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) {
            char h[67], ph[67];
            hex_encode_hash(hdrs[i].hash, h);
            hex_encode_hash(hdrs[i].parent_hash, ph);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "n", (double)hdrs[i].number);
            cJSON_AddStringToObject(o, "h", h);
            cJSON_AddStringToObject(o, "p", ph);
            cJSON_AddNumberToObject(o, "t", (double)hdrs[i].timestamp);
            cJSON_AddItemToArray(arr, o);
        }
        char *json = cJSON_PrintUnformatted(arr);
        cJSON_Delete(arr);
        const char *p[] = {cid, json};
        r = db_query_prepared(c, "lst_blocks",
                              "INSERT INTO listener.block_hashes (chain_id, number, hash, "
                              "parent_hash, block_time) SELECT $1::bigint, x.n, x.h, x.p, "
                              "to_timestamp(x.t) FROM jsonb_to_recordset($2::jsonb) AS "
                              "x(n bigint, h text, p text, t bigint) ON CONFLICT (chain_id, "
                              "number) DO UPDATE SET hash = EXCLUDED.hash, parent_hash = "
                              "EXCLUDED.parent_hash, block_time = EXCLUDED.block_time",
                              2, p, err, errlen);
        free(json);
        if (!r)
            return -1;
        PQclear(r);
    }
    const char *pk[] = {cid, kf};
    r = db_query_prepared(c, "lst_blocks_trim",
                          "DELETE FROM listener.block_hashes WHERE chain_id = $1 AND number < $2",
                          2, pk, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    const char *pr[] = {cid, fb, tb};
    r = db_query_prepared(
        c, "lst_range_extend",
        "WITH t AS (SELECT from_block, to_block FROM listener.scanned_ranges WHERE chain_id = $1 "
        "AND from_block <= $2::bigint AND to_block >= $2::bigint - 1 ORDER BY to_block DESC "
        "LIMIT 1) UPDATE listener.scanned_ranges s SET to_block = GREATEST(s.to_block, "
        "$3::bigint), "
        "scanned_at = now() FROM t WHERE s.chain_id = $1 AND s.from_block = t.from_block AND "
        "s.to_block = t.to_block",
        3, pr, err, errlen);
    if (!r)
        return -1;
    int extended = atoi(PQcmdTuples(r)) > 0;
    PQclear(r);
    if (!extended) {
        r = db_query_prepared(c, "lst_range_insert",
                              "INSERT INTO listener.scanned_ranges (chain_id, from_block, "
                              "to_block) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                              3, pr, err, errlen);
        if (!r)
            return -1;
        PQclear(r);
    }
    return 0;
}

static int fenced_update(db_conn *c, const char *name, const char *sql, int np,
                         const char *const *p, char *err, size_t errlen)
{
    PGresult *r = db_query_prepared(c, name, sql, np, p, err, errlen);
    if (!r)
        return -1;
    int n = atoi(PQcmdTuples(r));
    PQclear(r);
    return n == 1 ? 0 : 1;
}

int store_checkpoint_move(db_conn *c, uint64_t chain_id, int64_t fence, int64_t block,
                          const char *hash, int64_t block_time, char *err, size_t errlen)
{
    char cid[24], f[24], b[24], t[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    snprintf(f, sizeof f, "%" PRId64, fence);
    snprintf(b, sizeof b, "%" PRId64, block);
    snprintf(t, sizeof t, "%" PRId64, block_time);
    const char *p[] = {cid, f, b, hash && *hash ? hash : NULL, block_time > 0 ? t : NULL};
    return fenced_update(c, "lst_cp_move",
                         "UPDATE listener.checkpoints SET last_block = $3, last_hash = $4, "
                         "last_time = to_timestamp($5::bigint), fence = $2, updated_at = now() "
                         "WHERE chain_id = $1 AND fence <= $2",
                         5, p, err, errlen);
}

int store_checkpoint_claim(db_conn *c, uint64_t chain_id, int64_t fence, char *err, size_t errlen)
{
    char cid[24], f[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    snprintf(f, sizeof f, "%" PRId64, fence);
    const char *p[] = {cid, f};
    return fenced_update(c, "lst_cp_claim",
                         "UPDATE listener.checkpoints SET fence = $2, updated_at = now() "
                         "WHERE chain_id = $1 AND fence <= $2",
                         2, p, err, errlen);
}

int store_set_halted(db_conn *c, uint64_t chain_id, int64_t fence, const char *why, char *err,
                     size_t errlen)
{
    char cid[24], f[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    snprintf(f, sizeof f, "%" PRId64, fence);
    const char *p[] = {cid, f, why};
    return fenced_update(c, "lst_cp_halt",
                         "UPDATE listener.checkpoints SET halted = $3, fence = $2, updated_at = "
                         "now() WHERE chain_id = $1 AND fence <= $2",
                         3, p, err, errlen);
}

int store_window(db_conn *c, uint64_t chain_id, reorg_block **out, size_t *n, char *err,
                 size_t errlen)
{
    char cid[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    const char *p[] = {cid};
    PGresult *r = q(c,
                    "SELECT number, hash FROM listener.block_hashes WHERE chain_id = $1 "
                    "ORDER BY number DESC",
                    1, p, err, errlen);
    if (!r)
        return -1;
    int nt = PQntuples(r);
    *out = util_calloc(nt ? (size_t)nt : 1, sizeof **out);
    for (int i = 0; i < nt; i++) {
        (*out)[i].number = i64(r, i, 0);
        util_strlcpy((*out)[i].hash, PQgetvalue(r, i, 1), sizeof(*out)[i].hash);
    }
    *n = (size_t)nt;
    PQclear(r);
    return 0;
}

int store_orphan_above(db_conn *c, uint64_t chain_id, int64_t ancestor, store_row **rows, size_t *n,
                       char *err, size_t errlen)
{
    char cid[24], a[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    snprintf(a, sizeof a, "%" PRId64, ancestor);
    const char *p[] = {cid, a};
    /* An orphan was on the stream if flagged (rows from before the watermark) or at
     * or below the watermark; the flag records it for the compensation scan. */
    PGresult *r = q(c,
                    "UPDATE listener.chain_events SET removed = true, removed_at = now(), "
                    "published = published OR block_number <= (SELECT published_block FROM "
                    "listener.checkpoints WHERE chain_id = $1) "
                    "WHERE chain_id = $1 AND block_number > $2 AND NOT removed RETURNING " ROW_COLS,
                    2, p, err, errlen);
    if (!r)
        return -1;
    store_row *all;
    size_t na;
    rows_from(r, &all, &na);
    PQclear(r);
    /* Only events that went out need a compensation. */
    size_t k = 0;
    for (size_t i = 0; i < na; i++) {
        if (all[i].published) {
            store_row tmp = all[k];
            all[k++] = all[i];
            all[i] = tmp;
        }
    }
    for (size_t i = k; i < na; i++) {
        free(all[i].signature);
        free(all[i].args);
    }
    *rows = all;
    *n = k;
    static const char *const sqls[] = {
        "DELETE FROM listener.block_hashes WHERE chain_id = $1 AND number > $2",
        "DELETE FROM listener.scanned_ranges WHERE chain_id = $1 AND from_block > $2",
        "UPDATE listener.scanned_ranges SET to_block = $2 WHERE chain_id = $1 AND to_block > $2",
        "UPDATE listener.checkpoints SET published_block = LEAST(published_block, $2) "
        "WHERE chain_id = $1",
    };
    for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
        if (!(r = q(c, sqls[i], 2, p, err, errlen))) {
            store_rows_free(*rows, *n);
            *rows = NULL;
            *n = 0;
            return -1;
        }
        PQclear(r);
    }
    return 0;
}

int store_pending_compensations(db_conn *c, uint64_t chain_id, size_t limit, store_row **rows,
                                size_t *n, char *err, size_t errlen)
{
    char cid[24], lim[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *p[] = {cid, lim};
    PGresult *r = q(c,
                    "SELECT " ROW_COLS " FROM listener.chain_events WHERE chain_id = $1 AND "
                    "removed AND published AND NOT removed_published "
                    "ORDER BY block_number, log_index, block_hash LIMIT $2",
                    2, p, err, errlen);
    if (!r)
        return -1;
    rows_from(r, rows, n);
    PQclear(r);
    return 0;
}

int store_pending_events(db_conn *c, uint64_t chain_id, int64_t after_block, int64_t after_log,
                         size_t limit, store_row **rows, size_t *n, char *err, size_t errlen)
{
    char cid[24], ab[24], al[24], lim[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    snprintf(ab, sizeof ab, "%" PRId64, after_block);
    snprintf(al, sizeof al, "%" PRId64, after_log);
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *p[] = {cid, ab, al, lim};
    PGresult *r = q(c,
                    "SELECT " ROW_COLS " FROM listener.chain_events WHERE chain_id = $1 AND "
                    "block_number >= $2 AND (block_number, log_index) > ($2, $3) AND NOT removed "
                    "ORDER BY block_number, log_index, block_hash LIMIT $4",
                    4, p, err, errlen);
    if (!r)
        return -1;
    rows_from(r, rows, n);
    PQclear(r);
    return 0;
}

int store_mark_compensated(db_conn *c, uint64_t chain_id, const store_row *rows, size_t n,
                           char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    char cid[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    char *arr = util_malloc(n * 21 + 3);
    size_t o = 0;
    arr[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(arr + o, "%s%" PRId64, i ? "," : "", rows[i].seq);
    arr[o++] = '}';
    arr[o] = '\0';
    const char *p[] = {cid, arr};
    PGresult *r = db_query_prepared(c, "lst_mark_comp",
                                    "UPDATE listener.chain_events SET removed_published = true "
                                    "WHERE chain_id = $1 AND removed AND published AND NOT "
                                    "removed_published AND seq = ANY($2::bigint[])",
                                    2, p, err, errlen);
    free(arr);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int store_published_upto(db_conn *c, uint64_t chain_id, int64_t fence, int64_t block, char *err,
                         size_t errlen)
{
    char cid[24], f[24], b[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    snprintf(f, sizeof f, "%" PRId64, fence);
    snprintf(b, sizeof b, "%" PRId64, block);
    const char *p[] = {cid, f, b};
    return fenced_update(c, "lst_pub_upto",
                         "UPDATE listener.checkpoints SET published_block = "
                         "GREATEST(published_block, $3) WHERE chain_id = $1 AND fence = $2",
                         3, p, err, errlen);
}

int64_t store_gaps(db_conn *c, uint64_t chain_id, int64_t from, int64_t to, store_gap_fn fn,
                   void *ud, char *err, size_t errlen)
{
    if (to < from)
        return 0;
    char cid[24], f[24], t[24];
    snprintf(cid, sizeof cid, "%" PRIu64, chain_id);
    snprintf(f, sizeof f, "%" PRId64, from);
    snprintf(t, sizeof t, "%" PRId64, to);
    const char *p[] = {cid, f, t};
    PGresult *r = q(c,
                    "SELECT from_block, to_block FROM listener.scanned_ranges WHERE chain_id = $1 "
                    "AND to_block >= $2 AND from_block <= $3 ORDER BY from_block, to_block",
                    3, p, err, errlen);
    if (!r)
        return -1;
    int64_t covered = from - 1, missing = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t a = i64(r, i, 0), b = i64(r, i, 1);
        if (a > covered + 1) {
            if (fn)
                fn(ud, covered + 1, a - 1);
            missing += a - 1 - covered;
        }
        if (b > covered)
            covered = b;
    }
    PQclear(r);
    if (covered < to) {
        if (fn)
            fn(ud, covered + 1, to);
        missing += to - covered;
    }
    return missing;
}

int store_ensure_partitions(db_conn *c, int months_ahead, char *err, size_t errlen)
{
    char m[16];
    snprintf(m, sizeof m, "%d", months_ahead);
    const char *p[] = {m};
    PGresult *r = q(c, "SELECT listener.ensure_partitions($1::int)", 1, p, err, errlen);
    if (!r)
        return -1;
    int made = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return made;
}
