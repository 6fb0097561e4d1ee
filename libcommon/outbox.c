/* outbox: the transaction outbox (see outbox.h for the state machine, the crash
 * and nonce rules). Memory: the outbox owns its copies of the config strings, the
 * loaded ABIs and its Redis connection; db pool, rpc client, signer and metrics
 * registry are borrowed. Per-row buffers (trow) are owned by the step that loads
 * them and freed before the next row. */
#include "outbox.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "abi.h"
#include "bus.h"
#include "envelope.h"
#include "ethtx.h"
#include "hex.h"
#include "lock.h"
#include "log.h"
#include "rconn.h"
#include "util.h"

#define MAX_ABIS 32

enum { M_PENDING, M_SIGNED, M_SENT, M_CONFIRMED, M_REVERTED, M_FAILED, M_NSTATUS };
static const char *const STATUS_NAMES[M_NSTATUS] = {"pending",   "signed",   "sent",
                                                    "confirmed", "reverted", "failed"};

struct outbox {
    char schema[64];
    char source[64];
    db_pool *db;
    rpc_client *rpc;
    signer *sg;
    char *redis_url;
    redisContext *rc;
    uint64_t chain_id;
    int chain_checked;
    char from[HEX_ADDR_STRLEN]; /* signer address, lowercase */
    abi_contract *abis[MAX_ABIS];
    size_t nabis;
    unsigned confirmations, bump;
    int64_t stuck_ms, lease_ttl;
    money_u256 cap;
    int legacy, batch;
    void (*hook)(const char *, void *);
    void *hook_ud;
    outbox_stats st;
    metrics_gauge *g_status[M_NSTATUS];
    metrics_counter *c_sent, *c_replaced, *c_failed;
    metrics_histogram *h_confirm;
};

/* One transactions row as loaded for processing. */
typedef struct trow {
    int64_t id;
    char key[OUTBOX_MAX_KEY + 1];
    char to[HEX_ADDR_STRLEN];
    money_u256 value;
    uint8_t *data;
    size_t data_len;
    uint64_t gas_limit; /* 0 = not set */
    int tx_type;        /* -1 = not set */
    int64_t nonce;      /* -1 = not set */
    money_u256 max_fee, prio, gas_price;
    char tx_hash[HEX_B32_STRLEN];
    uint8_t *raw;
    size_t raw_len;
    int64_t block; /* -1 = not mined */
    char purpose[OUTBOX_MAX_PURPOSE + 1];
    int64_t attempt_age_ms; /* since the latest attempt was signed; -1 = none */
    char error[512];
} trow;

static void trow_clear(trow *t)
{
    free(t->data);
    free(t->raw);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------ small helpers */

/* bytea as a text parameter: "\x" + hex (owned). */
static char *bytea_param(const uint8_t *b, size_t n)
{
    char *s = util_malloc(2 * n + 3);
    s[0] = '\\';
    s[1] = 'x';
    hex_encode(b, n, 0, s + 2, 2 * n + 1);
    return s;
}

/* bytea in text output (hex format "\x..."); owned, never NULL on success. */
static uint8_t *bytea_value(const char *v, size_t *len)
{
    if (!v || v[0] != '\\' || v[1] != 'x')
        return NULL;
    return hex_decode_new(v + 2, len, NULL, 0);
}

static int valid_key(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    if (n == 0 || n > OUTBOX_MAX_KEY)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] > 0x7e)
            return 0;
    return 1;
}

static int valid_text(const char *s, size_t max)
{
    if (!s)
        return 1;
    size_t n = strlen(s);
    if (n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
            return 0;
    return 1;
}

static void addr_lower(const uint8_t a[20], char out[HEX_ADDR_STRLEN])
{
    hex_encode(a, 20, 1, out, HEX_ADDR_STRLEN);
}

static int in_tx(db_conn *c)
{
    return PQtransactionStatus(c->pg) != PQTRANS_IDLE;
}

static void rollback(db_conn *c)
{
    if (in_tx(c))
        db_exec(c, "ROLLBACK", NULL, 0);
}

static int commit(db_conn *c, char *err, size_t errlen)
{
    return db_exec(c, "COMMIT", err, errlen);
}

/* ------------------------------------------------------------------ enqueue */

int outbox_enqueue(db_conn *tx, const char *schema, const outbox_req *r, char *err, size_t errlen)
{
    if (!tx || !schema || !r)
        return util_err(err, errlen, "outbox_enqueue: missing argument");
    if (!db_ident_ok(schema))
        return util_err(err, errlen, "outbox_enqueue: bad schema name");
    if (!valid_key(r->idempotency_key))
        return util_err(err, errlen,
                        "outbox_enqueue: idempotency key must be 1..%d printable ASCII bytes",
                        OUTBOX_MAX_KEY);
    if (r->chain_id == 0 || r->chain_id > INT64_MAX)
        return util_err(err, errlen, "outbox_enqueue: bad chain id");
    uint8_t from[20], to[20];
    char why[128];
    if (!r->from || hex_addr_parse(r->from, from, why, sizeof why))
        return util_err(err, errlen, "outbox_enqueue: bad from address: %s",
                        r->from ? why : "missing");
    if (!r->to || hex_addr_parse(r->to, to, why, sizeof why))
        return util_err(err, errlen, "outbox_enqueue: bad to address: %s", r->to ? why : "missing");
    money_u256 value;
    if (money_from_dec(&value, r->value ? r->value : "0", why, sizeof why))
        return util_err(err, errlen, "outbox_enqueue: bad value: %s", why);
    if (r->data_len > OUTBOX_MAX_DATA || (r->data_len > 0 && !r->data))
        return util_err(err, errlen, "outbox_enqueue: calldata missing or over %d bytes",
                        OUTBOX_MAX_DATA);
    if (r->gas_limit > OUTBOX_MAX_GAS)
        return util_err(err, errlen, "outbox_enqueue: gas limit over %llu",
                        (unsigned long long)OUTBOX_MAX_GAS);
    if (!valid_text(r->purpose, OUTBOX_MAX_PURPOSE))
        return util_err(err, errlen, "outbox_enqueue: purpose too long or has control bytes");

    char chain[24], fromh[HEX_ADDR_STRLEN], toh[HEX_ADDR_STRLEN], val[MONEY_DEC_MAX], gas[24];
    snprintf(chain, sizeof chain, "%llu", (unsigned long long)r->chain_id);
    snprintf(gas, sizeof gas, "%llu", (unsigned long long)r->gas_limit);
    addr_lower(from, fromh);
    addr_lower(to, toh);
    money_to_dec(&value, val, sizeof val);
    char *data = bytea_param(r->data, r->data_len);
    const char *p[8] = {
        r->idempotency_key,          chain, fromh, toh, val, data, r->gas_limit ? gas : NULL,
        r->purpose ? r->purpose : ""};
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO %s.transactions (idempotency_key, chain_id, from_address, to_address, "
             "value, data, gas_limit, purpose) VALUES ($1, $2, $3, $4, $5, $6::bytea, $7, $8) "
             "ON CONFLICT (idempotency_key) DO NOTHING",
             schema);
    PGresult *res = db_query(tx, sql, 8, p, err, errlen);
    free(data);
    if (!res)
        return -1;
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    return n == 1 ? 1 : 0;
}

int outbox_get(db_conn *c, const char *schema, const char *key, outbox_row *out, char *err,
               size_t errlen)
{
    if (!c || !schema || !key || !out || !db_ident_ok(schema))
        return util_err(err, errlen, "outbox_get: bad argument");
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT t.id, t.status, coalesce(t.tx_hash, ''), coalesce(t.nonce, -1), "
             "coalesce(t.block_number, -1), (SELECT count(*) FROM %s.transaction_attempts a "
             "WHERE a.tx_id = t.id), coalesce(t.error, ''), coalesce(t.revert_reason, '') "
             "FROM %s.transactions t WHERE t.idempotency_key = $1",
             schema, schema);
    const char *p[1] = {key};
    PGresult *r = db_query(c, sql, 1, p, err, errlen);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    memset(out, 0, sizeof *out);
    out->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    util_strlcpy(out->status, PQgetvalue(r, 0, 1), sizeof out->status);
    util_strlcpy(out->tx_hash, PQgetvalue(r, 0, 2), sizeof out->tx_hash);
    out->nonce = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    out->block_number = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    out->attempts = atoi(PQgetvalue(r, 0, 5));
    util_strlcpy(out->error, PQgetvalue(r, 0, 6), sizeof out->error);
    util_strlcpy(out->revert_reason, PQgetvalue(r, 0, 7), sizeof out->revert_reason);
    PQclear(r);
    return 1;
}

/* ------------------------------------------------------------------ lifecycle */

static int load_abis(outbox *o, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return util_err(err, errlen, "outbox: cannot open ABI dir %s", dir);
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        if (o->nabis == MAX_ABIS) {
            rc = util_err(err, errlen, "outbox: more than %d ABI files in %s", MAX_ABIS, dir);
            break;
        }
        char path[1024], why[200];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        abi_contract *c = abi_contract_load(path, why, sizeof why);
        if (!c) {
            rc = util_err(err, errlen, "outbox: ABI %s: %s", path, why);
            break;
        }
        o->abis[o->nabis++] = c;
    }
    closedir(d);
    return rc;
}

static void metrics_init(outbox *o, metrics_registry *reg)
{
    char lab[160];
    for (int i = 0; i < M_NSTATUS; i++) {
        snprintf(lab, sizeof lab, "schema=\"%s\",status=\"%s\"", o->schema, STATUS_NAMES[i]);
        o->g_status[i] =
            metrics_gauge_get(reg, "paimon_outbox_transactions", "Outbox rows by status", lab);
    }
    snprintf(lab, sizeof lab, "schema=\"%s\"", o->schema);
    o->c_sent =
        metrics_counter_get(reg, "paimon_outbox_sends_total", "Signed transactions broadcast", lab);
    o->c_replaced = metrics_counter_get(reg, "paimon_outbox_replacements_total",
                                        "Stuck transactions replaced with bumped fees", lab);
    o->c_failed = metrics_counter_get(reg, "paimon_outbox_failures_total",
                                      "Transactions that ended failed or reverted", lab);
    static const double buckets[] = {1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600};
    o->h_confirm = metrics_histogram_get(reg, "paimon_outbox_confirmation_seconds",
                                         "From first broadcast to the configured confirmations",
                                         lab, buckets, sizeof buckets / sizeof buckets[0]);
}

outbox *outbox_new(const outbox_cfg *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->schema || !cfg->db || !cfg->rpc || !cfg->signer || !cfg->redis_url) {
        util_err(err, errlen, "outbox: schema, db, rpc, signer and redis_url are required");
        return NULL;
    }
    if (!db_ident_ok(cfg->schema) || strlen(cfg->schema) >= 64) {
        util_err(err, errlen, "outbox: bad schema name");
        return NULL;
    }
    if (cfg->chain_id == 0 || cfg->chain_id > INT64_MAX) {
        util_err(err, errlen, "outbox: chain_id is required");
        return NULL;
    }
    if (cfg->bump_percent != 0 && (cfg->bump_percent < 10 || cfg->bump_percent > 1000)) {
        util_err(err, errlen, "outbox: bump_percent must be 10..1000 (nodes refuse less than 10)");
        return NULL;
    }
    if (cfg->stuck_after_ms < 0 || cfg->lease_ttl_ms < 0 || cfg->batch < 0 ||
        cfg->confirmations > 10000) {
        util_err(err, errlen, "outbox: negative or absurd timing / batch settings");
        return NULL;
    }
    outbox *o = util_calloc(1, sizeof *o);
    util_strlcpy(o->schema, cfg->schema, sizeof o->schema);
    const char *src = cfg->source ? cfg->source : cfg->schema;
    util_strlcpy(o->source, src, sizeof o->source);
    o->db = cfg->db;
    o->rpc = cfg->rpc;
    o->sg = cfg->signer;
    o->redis_url = util_strdup(cfg->redis_url);
    o->chain_id = cfg->chain_id;
    addr_lower(signer_address(cfg->signer), o->from);
    o->confirmations = cfg->confirmations ? cfg->confirmations : 12;
    o->stuck_ms = cfg->stuck_after_ms ? cfg->stuck_after_ms : 60000;
    o->bump = cfg->bump_percent ? cfg->bump_percent : 15;
    o->lease_ttl = cfg->lease_ttl_ms ? cfg->lease_ttl_ms : 30000;
    o->batch = cfg->batch ? cfg->batch : 16;
    o->legacy = cfg->legacy ? 1 : 0;
    o->cap = cfg->max_fee_cap;
    if (money_is_zero(&o->cap))
        money_from_u64(&o->cap, 500000000000ULL); /* 500 gwei */
    o->hook = cfg->hook;
    o->hook_ud = cfg->hook_ud;
    const char *dir = cfg->abi_dir ? cfg->abi_dir : getenv("PAIMON_ABI_DIR");
    if (load_abis(o, dir && *dir ? dir : "schemas/abi", err, errlen)) {
        outbox_free(o);
        return NULL;
    }
    o->rc = rconn_connect(o->redis_url, 2000, err, errlen);
    if (!o->rc) {
        outbox_free(o);
        return NULL;
    }
    metrics_init(o, cfg->metrics ? cfg->metrics : metrics_global());
    return o;
}

void outbox_free(outbox *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->nabis; i++)
        abi_contract_free(o->abis[i]);
    if (o->rc)
        redisFree(o->rc);
    free(o->redis_url);
    free(o);
}

void outbox_get_stats(const outbox *o, outbox_stats *out)
{
    *out = o->st;
}

/* ------------------------------------------------------------------ redis: pause, alerts */

static redisContext *redis(outbox *o, char *err, size_t errlen)
{
    if (o->rc && !o->rc->err)
        return o->rc;
    if (o->rc)
        redisFree(o->rc);
    o->rc = rconn_connect(o->redis_url, 2000, err, errlen);
    return o->rc;
}

/* 1 paused (or unknown: fail safe), 0 not paused. */
static int is_paused(outbox *o)
{
    char why[UTIL_ERRLEN];
    redisContext *rc = redis(o, why, sizeof why);
    if (!rc) {
        log_warn("outbox: redis unreachable, treating as paused", "schema", o->schema, "error",
                 why);
        return 1;
    }
    redisReply *r = redisCommand(rc, "EXISTS %s", OUTBOX_PAUSE_KEY);
    int paused = 1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        paused = r->integer > 0;
    else
        log_warn("outbox: pause flag unreadable, treating as paused", "schema", o->schema);
    if (r)
        freeReplyObject(r);
    return paused;
}

/* Copies at most max bytes of s, cut on a UTF-8 character boundary. */
static void clip(char *dst, size_t dstlen, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        n = max;
    if (n >= dstlen)
        n = dstlen - 1;
    while (n > 0 && n < strlen(s) && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Raises alert.raised on the alerts topic. The envelope id is deterministic per
 * (schema, row, kind) so a retried step does not page twice. Failures are logged:
 * the row's status in the database is the record that matters. */
static void alert(outbox *o, const char *severity, const char *kind, const trow *t,
                  const char *title, const char *message)
{
    cJSON *p = cJSON_CreateObject();
    char buf[4001];
    cJSON_AddStringToObject(p, "severity", severity);
    cJSON_AddStringToObject(p, "category", "chain.tx");
    clip(buf, sizeof buf, title, 200);
    cJSON_AddStringToObject(p, "title", buf);
    clip(buf, sizeof buf, message ? message : "", 4000);
    cJSON_AddStringToObject(p, "message", buf);
    char id[160];
    snprintf(id, sizeof id, "outbox:%s:%lld:%s", o->schema, (long long)t->id, kind);
    cJSON_AddStringToObject(p, "dedup_key", id);
    cJSON *l = cJSON_AddObjectToObject(p, "labels");
    cJSON_AddStringToObject(l, "schema", o->schema);
    clip(buf, sizeof buf, t->key, 200);
    cJSON_AddStringToObject(l, "idempotency_key", buf);
    cJSON_AddStringToObject(l, "from", o->from);
    cJSON_AddStringToObject(l, "to", t->to);
    if (t->tx_hash[0])
        cJSON_AddStringToObject(l, "tx_hash", t->tx_hash);
    if (t->purpose[0]) {
        clip(buf, sizeof buf, t->purpose, 200);
        cJSON_AddStringToObject(l, "purpose", buf);
    }
    log_msg(strcmp(severity, "critical") == 0 ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN, NULL, title,
            "schema", o->schema, "key", t->key, "kind", kind, "detail", message ? message : "",
            (const char *)NULL);
    char why[UTIL_ERRLEN] = "envelope not built";
    envelope *e = envelope_new(id, "alert.raised", o->source, NULL, p);
    redisContext *rc = redis(o, why, sizeof why);
    bus_priority prio = strcmp(severity, "critical") == 0 ? BUS_CRITICAL : BUS_HIGH;
    if (!e || !rc || bus_publish(rc, "alerts", prio, e, 0, why, sizeof why) != 0)
        log_error("outbox: alert not published", "schema", o->schema, "id", id, "error", why);
    envelope_free(e);
}

static void hook(outbox *o, const char *step)
{
    if (o->hook)
        o->hook(step, o->hook_ud);
}

/* ------------------------------------------------------------------ rows */

#define ROW_COLS                                                                                   \
    "t.id, t.idempotency_key, t.to_address, t.value, t.data, coalesce(t.gas_limit, 0), "           \
    "coalesce(t.tx_type, -1), coalesce(t.nonce, -1), coalesce(t.max_fee, 0), "                     \
    "coalesce(t.max_priority_fee, 0), coalesce(t.gas_price, 0), coalesce(t.tx_hash, ''), "         \
    "t.raw_tx, coalesce(t.block_number, -1), t.purpose, "                                          \
    "coalesce((SELECT (extract(epoch FROM clock_timestamp() - max(a.created_at)) * 1000)::bigint " \
    "FROM %s.transaction_attempts a WHERE a.tx_id = t.id), -1), coalesce(t.error, '')"

static int row_load(PGresult *r, int i, trow *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    util_strlcpy(t->key, PQgetvalue(r, i, 1), sizeof t->key);
    util_strlcpy(t->to, PQgetvalue(r, i, 2), sizeof t->to);
    if (money_from_dec(&t->value, PQgetvalue(r, i, 3), err, errlen))
        return -1;
    t->data = bytea_value(PQgetvalue(r, i, 4), &t->data_len);
    if (!t->data)
        return util_err(err, errlen, "outbox: row %lld: bad data", (long long)t->id);
    t->gas_limit = strtoull(PQgetvalue(r, i, 5), NULL, 10);
    t->tx_type = atoi(PQgetvalue(r, i, 6));
    t->nonce = strtoll(PQgetvalue(r, i, 7), NULL, 10);
    if (money_from_dec(&t->max_fee, PQgetvalue(r, i, 8), err, errlen) ||
        money_from_dec(&t->prio, PQgetvalue(r, i, 9), err, errlen) ||
        money_from_dec(&t->gas_price, PQgetvalue(r, i, 10), err, errlen))
        return -1;
    util_strlcpy(t->tx_hash, PQgetvalue(r, i, 11), sizeof t->tx_hash);
    if (!PQgetisnull(r, i, 12)) {
        t->raw = bytea_value(PQgetvalue(r, i, 12), &t->raw_len);
        if (!t->raw)
            return util_err(err, errlen, "outbox: row %lld: bad raw_tx", (long long)t->id);
    }
    t->block = strtoll(PQgetvalue(r, i, 13), NULL, 10);
    util_strlcpy(t->purpose, PQgetvalue(r, i, 14), sizeof t->purpose);
    t->attempt_age_ms = strtoll(PQgetvalue(r, i, 15), NULL, 10);
    util_strlcpy(t->error, PQgetvalue(r, i, 16), sizeof t->error);
    return 0;
}

/* BEGIN, then locks the next row of `status` after `after_id` in id order (the
 * enqueue order, which is the nonce order for pending rows). 1 with *t loaded and
 * the transaction open, 0 none left (transaction closed), -1 error. */
static int claim(outbox *o, db_conn *c, const char *status, int64_t after_id, trow *t, char *err,
                 size_t errlen)
{
    if (db_exec(c, "BEGIN", err, errlen))
        return -1;
    char sql[1400], chain[24], after[24], cols[700];
    snprintf(cols, sizeof cols, ROW_COLS, o->schema);
    snprintf(sql, sizeof sql,
             "SELECT %s FROM %s.transactions t WHERE t.status = $1 AND t.chain_id = $2 AND "
             "t.from_address = $3 AND t.id > $4 ORDER BY t.id LIMIT 1 FOR UPDATE SKIP LOCKED",
             cols, o->schema);
    snprintf(chain, sizeof chain, "%llu", (unsigned long long)o->chain_id);
    snprintf(after, sizeof after, "%lld", (long long)after_id);
    const char *p[4] = {status, chain, o->from, after};
    PGresult *r = db_query(c, sql, 4, p, err, errlen);
    if (!r) {
        rollback(c);
        return -1;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        rollback(c);
        return 0;
    }
    int rc = row_load(r, 0, t, err, errlen);
    PQclear(r);
    if (rc) {
        rollback(c);
        return -1;
    }
    return 1;
}

/* Marks the row failed (inside the open transaction), commits, alerts. */
static int fail_row(outbox *o, db_conn *c, trow *t, const char *error, const char *reason,
                    char *err, size_t errlen)
{
    char id[24], sql[400];
    snprintf(id, sizeof id, "%lld", (long long)t->id);
    snprintf(sql, sizeof sql,
             "UPDATE %s.transactions SET status = 'failed', error = $2, revert_reason = $3, "
             "updated_at = now() WHERE id = $1",
             o->schema);
    const char *p[3] = {id, error, reason};
    if (db_exec_params(c, sql, 3, p, err, errlen) || commit(c, err, errlen))
        return -1;
    o->st.failed++;
    metrics_counter_inc(o->c_failed);
    char msg[1200];
    snprintf(msg, sizeof msg, "%s%s%s", error, reason ? ": " : "", reason ? reason : "");
    char title[240];
    snprintf(title, sizeof title, "Transaction failed: %s", t->purpose[0] ? t->purpose : t->key);
    alert(o, "warning", "failed", t, title, msg);
    return 1;
}

/* Records a problem that keeps the row where it is (fee cap...). Alerts only when
 * the problem is new for this row, so a waiting row does not page every pass. */
static int note_problem(outbox *o, db_conn *c, trow *t, const char *kind, const char *problem,
                        char *err, size_t errlen)
{
    int fresh = strcmp(t->error, problem) != 0;
    char id[24], sql[300];
    snprintf(id, sizeof id, "%lld", (long long)t->id);
    snprintf(sql, sizeof sql,
             "UPDATE %s.transactions SET error = $2, updated_at = now() WHERE id = $1", o->schema);
    const char *p[2] = {id, problem};
    if (db_exec_params(c, sql, 2, p, err, errlen) || commit(c, err, errlen))
        return -1;
    if (fresh) {
        char title[240];
        snprintf(title, sizeof title, "Transaction held: %s", t->purpose[0] ? t->purpose : t->key);
        alert(o, "warning", kind, t, title, problem);
    }
    return 0;
}

/* ------------------------------------------------------------------ chain helpers */

static cJSON *call_object(const outbox *o, const trow *t)
{
    cJSON *tx = cJSON_CreateObject();
    char v[MONEY_HEX_MAX];
    cJSON_AddStringToObject(tx, "from", o->from);
    cJSON_AddStringToObject(tx, "to", t->to);
    money_to_hex(&t->value, v, sizeof v);
    cJSON_AddStringToObject(tx, "value", v);
    char *d = hex_encode_new(t->data, t->data_len, 1);
    cJSON_AddStringToObject(tx, "data", d);
    free(d);
    return tx;
}

static int is_deterministic(const rpc_error *e)
{
    return e->status == RPC_ERR_RPC &&
           rpc_error_classify(e->code, e->message) == RPC_CLASS_DETERMINISTIC;
}

/* Revert data of e decoded against every loaded ABI (a custom error matches in
 * the contract that declares it); *reason owned by the caller. */
static char *revert_reason(const outbox *o, const rpc_error *e)
{
    size_t n = 0;
    uint8_t *d = rpc_error_revert_data(e, &n);
    cJSON *best = NULL;
    for (size_t i = 0; i < o->nabis && d; i++) {
        cJSON *r = abi_decode_revert(o->abis[i], d, n);
        const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "kind"));
        if (k && strcmp(k, "custom") == 0) {
            best = r;
            break;
        }
        cJSON_Delete(r);
    }
    if (!best && d)
        best = abi_decode_revert(NULL, d, n);
    free(d);
    char buf[512];
    if (best)
        abi_revert_message(best, buf, sizeof buf);
    else
        util_strlcpy(buf, e->message, sizeof buf);
    cJSON_Delete(best);
    return util_strdup(buf);
}

/* eth_call / eth_estimateGas. 0 ok (gas in *gas for estimate), 1 reverted or refused
 * deterministically (*reason set, owned), -1 transient error. */
static int simulate(outbox *o, const trow *t, const char *method, uint64_t *gas, char **reason,
                    char *err, size_t errlen)
{
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, call_object(o, t));
    cJSON_AddItemToArray(p, cJSON_CreateString("latest"));
    rpc_error e;
    rpc_error_init(&e);
    cJSON *r = rpc_call_ex(o->rpc, method, p, RPC_F_HEAD, &e);
    if (!r) {
        int rc;
        if (is_deterministic(&e)) {
            *reason = revert_reason(o, &e);
            rc = 1;
        } else {
            rc = util_err(err, errlen, "outbox %s: %s", method, e.message);
        }
        rpc_error_clear(&e);
        return rc;
    }
    int rc = 0;
    if (gas && rpc_parse_quantity(r, gas))
        rc = util_err(err, errlen, "outbox %s: result is not a quantity", method);
    cJSON_Delete(r);
    return rc;
}

/* Current fees: legacy gas price, or EIP-1559 priority = eth_maxPriorityFeePerGas and
 * max fee = 2 * next base fee + priority (room for six full blocks of base-fee growth). */
static int market_fees(outbox *o, money_u256 *max_fee, money_u256 *prio, money_u256 *gas_price,
                       char *err, size_t errlen)
{
    if (o->legacy)
        return rpc_gas_price(o->rpc, gas_price, err, errlen);
    if (rpc_max_priority_fee(o->rpc, prio, err, errlen))
        return -1;
    rpc_fees h;
    memset(&h, 0, sizeof h);
    if (rpc_fee_history(o->rpc, 1, RPC_BLOCK_LATEST, NULL, 0, &h, err, errlen))
        return -1;
    money_u256 two, base;
    money_from_u64(&two, 2);
    base = h.base_fee[h.nblocks];
    rpc_fee_history_free(&h);
    if (money_mul(max_fee, &base, &two) || money_add(max_fee, max_fee, prio))
        return util_err(err, errlen, "outbox: fee overflow");
    return 0;
}

static int over_cap(const outbox *o, const money_u256 *max_fee, const money_u256 *gas_price)
{
    return money_cmp(o->legacy ? gas_price : max_fee, &o->cap) > 0;
}

static void fee_text(const outbox *o, const money_u256 *max_fee, const money_u256 *gas_price,
                     char *buf, size_t len)
{
    char a[MONEY_DEC_MAX], b[MONEY_DEC_MAX];
    money_to_dec(o->legacy ? gas_price : max_fee, a, sizeof a);
    money_to_dec(&o->cap, b, sizeof b);
    snprintf(buf, len, "fee %s wei/gas above the cap of %s", a, b);
}

static int sign(outbox *o, const trow *t, uint64_t nonce, uint64_t gas, int tx_type,
                const money_u256 *max_fee, const money_u256 *prio, const money_u256 *gas_price,
                uint8_t **raw, size_t *raw_len, char hash_hex[HEX_B32_STRLEN], char *err,
                size_t errlen)
{
    ethtx tx;
    ethtx_init(&tx);
    tx.type = tx_type == 0 ? ETHTX_LEGACY : ETHTX_EIP1559;
    tx.chain_id = o->chain_id;
    tx.nonce = nonce;
    tx.gas_limit = gas;
    if (tx.type == ETHTX_LEGACY) {
        tx.gas_price = *gas_price;
    } else {
        tx.max_fee = *max_fee;
        tx.max_priority_fee = *prio;
    }
    tx.has_to = 1;
    if (hex_addr_parse(t->to, tx.to, err, errlen))
        return -1;
    tx.value = t->value;
    tx.data = t->data;
    tx.data_len = t->data_len;
    uint8_t h[32];
    if (signer_sign_tx(o->sg, &tx, raw, raw_len, h, err, errlen))
        return -1;
    ethtx_hash_hex(h, hash_hex);
    return 0;
}

/* Stores a signed variant: the row's current raw/hash/fees and an attempts row. */
static int store_attempt(outbox *o, db_conn *c, const trow *t, const char *status, uint64_t nonce,
                         uint64_t gas, int tx_type, const money_u256 *max_fee,
                         const money_u256 *prio, const money_u256 *gas_price, const uint8_t *raw,
                         size_t raw_len, const char *hash, char *err, size_t errlen)
{
    char id[24], n[24], g[24], ty[8], mf[MONEY_DEC_MAX], pr[MONEY_DEC_MAX], gp[MONEY_DEC_MAX];
    snprintf(id, sizeof id, "%lld", (long long)t->id);
    snprintf(n, sizeof n, "%llu", (unsigned long long)nonce);
    snprintf(g, sizeof g, "%llu", (unsigned long long)gas);
    snprintf(ty, sizeof ty, "%d", tx_type);
    money_to_dec(max_fee, mf, sizeof mf);
    money_to_dec(prio, pr, sizeof pr);
    money_to_dec(gas_price, gp, sizeof gp);
    int legacy = tx_type == 0;
    char *rawp = bytea_param(raw, raw_len);
    const char *p[10] = {
        id,   status, n, g, ty, legacy ? NULL : mf, legacy ? NULL : pr, legacy ? gp : NULL,
        rawp, hash};
    char sql[700];
    snprintf(sql, sizeof sql,
             "UPDATE %s.transactions SET status = $2, nonce = $3, gas_limit = $4, tx_type = $5, "
             "max_fee = $6, max_priority_fee = $7, gas_price = $8, raw_tx = $9::bytea, "
             "tx_hash = $10, error = NULL, updated_at = now() WHERE id = $1",
             o->schema);
    int rc = db_exec_params(c, sql, 10, p, err, errlen);
    if (rc == 0) {
        snprintf(sql, sizeof sql,
                 "INSERT INTO %s.transaction_attempts (tx_id, tx_hash, raw_tx, max_fee, "
                 "max_priority_fee, gas_price) VALUES ($1, $2, $3::bytea, $4, $5, $6)",
                 o->schema);
        const char *q[6] = {id, hash, rawp, p[5], p[6], p[7]};
        rc = db_exec_params(c, sql, 6, q, err, errlen);
    }
    free(rawp);
    return rc;
}

/* ------------------------------------------------------------------ pending -> signed */

/* 1 signed or failed, 0 left waiting (stop the pending pass), -1 error. */
static int do_pending(outbox *o, db_conn *c, trow *t, char *err, size_t errlen)
{
    char *reason = NULL;
    int s = simulate(o, t, "eth_call", NULL, &reason, err, errlen);
    uint64_t gas = t->gas_limit;
    if (s == 0 && gas == 0) {
        s = simulate(o, t, "eth_estimateGas", &gas, &reason, err, errlen);
        if (s == 0) {
            gas = gas + (gas + 4) / 5; /* +20 %, rounded up */
            if (gas > OUTBOX_MAX_GAS)
                gas = OUTBOX_MAX_GAS;
        }
    }
    if (s == 1) {
        int rc = fail_row(o, c, t, "simulation reverted", reason, err, errlen);
        free(reason);
        return rc;
    }
    if (s < 0)
        return -1;

    money_u256 max_fee, prio, gas_price;
    money_zero(&max_fee);
    money_zero(&prio);
    money_zero(&gas_price);
    if (market_fees(o, &max_fee, &prio, &gas_price, err, errlen))
        return -1;
    if (over_cap(o, &max_fee, &gas_price)) {
        char why[300];
        fee_text(o, &max_fee, &gas_price, why, sizeof why);
        return note_problem(o, c, t, "feecap", why, err, errlen) ? -1 : 0;
    }

    char lname[LOCK_NAME_MAX];
    snprintf(lname, sizeof lname, "outbox:%llu:%s", (unsigned long long)o->chain_id, o->from);
    redisContext *rc = redis(o, err, errlen);
    if (!rc)
        return -1;
    lock_lease lease;
    lock_result lr = lock_acquire(rc, lname, o->lease_ttl, &lease, err, errlen);
    if (lr == LOCK_BUSY)
        return 0; /* another replica is assigning nonces for this signer */
    if (lr != LOCK_OK)
        return -1;

    int ret = -1;
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    uint64_t chain_nonce;
    if (rpc_get_tx_count(o->rpc, o->from, RPC_BLOCK_PENDING, &chain_nonce, err, errlen))
        goto out;
    char sql[400], chain[24];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(max(nonce) + 1, 0) FROM %s.transactions WHERE chain_id = $1 AND "
             "from_address = $2 AND status IN ('signed', 'sent')",
             o->schema);
    snprintf(chain, sizeof chain, "%llu", (unsigned long long)o->chain_id);
    const char *p[2] = {chain, o->from};
    PGresult *r = db_query(c, sql, 2, p, err, errlen);
    if (!r)
        goto out;
    uint64_t ours = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    uint64_t nonce = chain_nonce > ours ? chain_nonce : ours;
    int tx_type = o->legacy ? 0 : 2;
    char hash[HEX_B32_STRLEN];
    if (sign(o, t, nonce, gas, tx_type, &max_fee, &prio, &gas_price, &raw, &raw_len, hash, err,
             errlen))
        goto out;
    if (!lock_valid(&lease)) {
        util_err(err, errlen, "outbox: nonce lease expired while signing");
        goto out;
    }
    if (store_attempt(o, c, t, "signed", nonce, gas, tx_type, &max_fee, &prio, &gas_price, raw,
                      raw_len, hash, err, errlen) ||
        commit(c, err, errlen))
        goto out;
    ret = 1;
out:
    free(raw);
    {
        char why[UTIL_ERRLEN];
        if (lock_release(rc, &lease, why, sizeof why) == LOCK_ERR)
            log_warn("outbox: lease release failed", "schema", o->schema, "error", why);
    }
    if (ret == 1)
        hook(o, "signed");
    return ret;
}

/* ------------------------------------------------------------------ receipts */

typedef struct mined {
    char hash[HEX_B32_STRLEN];
    int64_t block;
    int ok; /* receipt status 1 */
} mined;

/* Looks for a receipt of any attempt of row t. 1 found (*m), 0 none, -1 error. */
static int find_receipt(outbox *o, db_conn *c, const trow *t, mined *m, char *err, size_t errlen)
{
    char id[24], sql[200];
    snprintf(id, sizeof id, "%lld", (long long)t->id);
    snprintf(sql, sizeof sql,
             "SELECT tx_hash FROM %s.transaction_attempts WHERE tx_id = $1 ORDER BY id DESC",
             o->schema);
    const char *p[1] = {id};
    PGresult *r = db_query(c, sql, 1, p, err, errlen);
    if (!r)
        return -1;
    int found = 0;
    for (int i = 0; i < PQntuples(r) && !found; i++) {
        uint8_t h[32];
        if (hex_decode_fixed(PQgetvalue(r, i, 0), h, 32, NULL, 0))
            continue;
        cJSON *rec = NULL;
        int rc = rpc_get_tx_receipt(o->rpc, h, &rec, err, errlen);
        if (rc < 0) {
            found = -1;
            break;
        }
        if (rc == 1)
            continue;
        uint64_t bn = 0, st = 0;
        if (rpc_parse_quantity(cJSON_GetObjectItemCaseSensitive(rec, "blockNumber"), &bn) ||
            rpc_parse_quantity(cJSON_GetObjectItemCaseSensitive(rec, "status"), &st)) {
            cJSON_Delete(rec);
            found = util_err(err, errlen, "outbox: malformed receipt");
            break;
        }
        cJSON_Delete(rec);
        util_strlcpy(m->hash, PQgetvalue(r, i, 0), sizeof m->hash);
        m->block = (int64_t)bn;
        m->ok = st == 1;
        found = 1;
    }
    PQclear(r);
    return found;
}

static int known_to_node(outbox *o, const char *hash)
{
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(hash));
    cJSON *r = rpc_call(o->rpc, "eth_getTransactionByHash", p, NULL, 0);
    int known = r && cJSON_IsObject(r);
    cJSON_Delete(r);
    return known;
}

static int has(const char *s, const char *needle)
{
    return s && strcasestr(s, needle) != NULL;
}

/* Broadcasts raw. 0 accepted (or already known to the node), 1 refused
 * deterministically (*why filled), -1 transient. */
static int broadcast(outbox *o, const uint8_t *raw, size_t raw_len, const char *hash, char *why,
                     size_t whylen, char *err, size_t errlen)
{
    uint8_t h[32];
    rpc_error e;
    rpc_error_init(&e);
    int rc = rpc_send_raw_tx(o->rpc, raw, raw_len, h, &e);
    if (rc == 0)
        return 0;
    if (e.status == RPC_ERR_RPC &&
        (has(e.message, "already known") || has(e.message, "known transaction") ||
         has(e.message, "already imported"))) {
        rc = 0;
    } else if (e.status == RPC_ERR_RPC && has(e.message, "nonce too low") &&
               known_to_node(o, hash)) {
        rc = 0;
    } else if (is_deterministic(&e)) {
        util_strlcpy(why, e.message, whylen);
        rc = 1;
    } else {
        rc = util_err(err, errlen, "outbox eth_sendRawTransaction: %s", e.message);
    }
    rpc_error_clear(&e);
    return rc;
}

/* ------------------------------------------------------------------ signed -> sent */

static int mark_sent(outbox *o, db_conn *c, const trow *t, const mined *m, char *err, size_t errlen)
{
    char id[24], bn[24], sql[400];
    snprintf(id, sizeof id, "%lld", (long long)t->id);
    snprintf(bn, sizeof bn, "%lld", (long long)(m ? m->block : -1));
    snprintf(sql, sizeof sql,
             "UPDATE %s.transactions SET status = 'sent', sent_at = coalesce(sent_at, now()), "
             "tx_hash = coalesce($2, tx_hash), block_number = $3, updated_at = now() "
             "WHERE id = $1",
             o->schema);
    const char *p[3] = {id, m ? m->hash : NULL, m ? bn : NULL};
    if (db_exec_params(c, sql, 3, p, err, errlen) || commit(c, err, errlen))
        return -1;
    return 1;
}

static int do_signed(outbox *o, db_conn *c, trow *t, int paused, char *err, size_t errlen)
{
    mined m;
    int f = find_receipt(o, c, t, &m, err, errlen);
    if (f < 0)
        return -1;
    if (f == 1) /* a crash after the broadcast: it is already on chain */
        return mark_sent(o, c, t, &m, err, errlen);
    if (paused)
        return 0;
    char why[300];
    int b = broadcast(o, t->raw, t->raw_len, t->tx_hash, why, sizeof why, err, errlen);
    if (b < 0)
        return -1;
    if (b == 1) {
        char sql[300], id[24], nonce[24], chain[24];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM %s.transactions WHERE chain_id = $1 AND from_address = $2 "
                 "AND status IN ('signed', 'sent') AND nonce > $3",
                 o->schema);
        snprintf(id, sizeof id, "%lld", (long long)t->id);
        snprintf(nonce, sizeof nonce, "%lld", (long long)t->nonce);
        snprintf(chain, sizeof chain, "%llu", (unsigned long long)o->chain_id);
        const char *p[3] = {chain, o->from, nonce};
        PGresult *r = db_query(c, sql, 3, p, err, errlen);
        if (!r)
            return -1;
        long later = atol(PQgetvalue(r, 0, 0));
        PQclear(r);
        int rc = fail_row(o, c, t, "broadcast refused", why, err, errlen);
        if (rc == 1 && later > 0) {
            char msg[600];
            snprintf(msg, sizeof msg,
                     "nonce %lld of %s was refused (%s) while %ld later transaction(s) hold "
                     "higher nonces: they cannot be mined until the gap is filled",
                     (long long)t->nonce, o->from, why, later);
            alert(o, "critical", "noncegap", t, "Outbox nonce gap", msg);
        }
        return rc;
    }
    hook(o, "sent");
    o->st.sent++;
    metrics_counter_inc(o->c_sent);
    return mark_sent(o, c, t, NULL, err, errlen);
}

/* ------------------------------------------------------------------ sent -> confirmed */

static int bump(money_u256 *v, unsigned pct)
{
    money_u256 num, den;
    money_from_u64(&num, 100 + pct);
    money_from_u64(&den, 100);
    return money_mul_div(v, v, &num, &den, MONEY_ROUND_UP);
}

static void at_least(money_u256 *v, const money_u256 *floor)
{
    if (money_cmp(v, floor) < 0)
        *v = *floor;
}

static int do_replace(outbox *o, db_conn *c, trow *t, char *err, size_t errlen)
{
    money_u256 mf = t->max_fee, pr = t->prio, gp = t->gas_price, fmf, fpr, fgp;
    money_zero(&fmf);
    money_zero(&fpr);
    money_zero(&fgp);
    if (bump(&mf, o->bump) || bump(&pr, o->bump) || bump(&gp, o->bump))
        return util_err(err, errlen, "outbox: fee overflow");
    if (market_fees(o, &fmf, &fpr, &fgp, err, errlen))
        return -1;
    /* the market may have moved past a 15 % bump: never replace below it */
    at_least(&mf, &fmf);
    at_least(&pr, &fpr);
    at_least(&gp, &fgp);
    at_least(&mf, &pr);
    int legacy = t->tx_type == 0;
    if (money_cmp(legacy ? &gp : &mf, &o->cap) > 0) {
        char why[300];
        fee_text(o, &mf, &gp, why, sizeof why);
        char msg[400];
        snprintf(msg, sizeof msg, "stuck transaction not replaced: %s", why);
        return note_problem(o, c, t, "feecap", msg, err, errlen) ? -1 : 0;
    }
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    char hash[HEX_B32_STRLEN];
    if (sign(o, t, (uint64_t)t->nonce, t->gas_limit, t->tx_type, &mf, &pr, &gp, &raw, &raw_len,
             hash, err, errlen))
        return -1;
    if (store_attempt(o, c, t, "sent", (uint64_t)t->nonce, t->gas_limit, t->tx_type, &mf, &pr, &gp,
                      raw, raw_len, hash, err, errlen) ||
        commit(c, err, errlen)) {
        free(raw);
        return -1;
    }
    hook(o, "replaced");
    o->st.replaced++;
    metrics_counter_inc(o->c_replaced);
    char why[300], e2[UTIL_ERRLEN];
    /* Refusals are fine here: "nonce too low" means an earlier attempt was just
     * mined, which the next pass reads from its receipt; the row stays sent. */
    int b = broadcast(o, raw, raw_len, hash, why, sizeof why, e2, sizeof e2);
    if (b != 0)
        log_warn("outbox: replacement not broadcast", "schema", o->schema, "key", t->key, "error",
                 b == 1 ? why : e2);
    free(raw);
    log_info("outbox: replaced stuck transaction", "schema", o->schema, "key", t->key, "old",
             t->tx_hash, "new", hash);
    return 1;
}

static int do_sent(outbox *o, db_conn *c, trow *t, uint64_t head, int paused, char *err,
                   size_t errlen)
{
    mined m;
    int f = find_receipt(o, c, t, &m, err, errlen);
    if (f < 0)
        return -1;
    char id[24], sql[500];
    snprintf(id, sizeof id, "%lld", (long long)t->id);
    if (f == 1) {
        int deep = head + 1 >= (uint64_t)m.block + o->confirmations;
        char bn[24];
        snprintf(bn, sizeof bn, "%lld", (long long)m.block);
        if (!deep) {
            if (m.block == t->block && strcmp(m.hash, t->tx_hash) == 0)
                return 0;
            snprintf(sql, sizeof sql,
                     "UPDATE %s.transactions SET block_number = $2, tx_hash = $3, "
                     "updated_at = now() WHERE id = $1",
                     o->schema);
            const char *p[3] = {id, bn, m.hash};
            return db_exec_params(c, sql, 3, p, err, errlen) || commit(c, err, errlen) ? -1 : 0;
        }
        snprintf(sql, sizeof sql,
                 "UPDATE %s.transactions SET status = $2, block_number = $3, tx_hash = $4, "
                 "error = $5, confirmed_at = now(), updated_at = now() WHERE id = $1 "
                 "RETURNING extract(epoch FROM now() - coalesce(sent_at, created_at))::float8",
                 o->schema);
        const char *p[5] = {id, m.ok ? "confirmed" : "reverted", bn, m.hash,
                            m.ok ? NULL : "reverted on chain (receipt status 0)"};
        PGresult *r = db_query(c, sql, 5, p, err, errlen);
        if (!r)
            return -1;
        double secs = PQntuples(r) ? strtod(PQgetvalue(r, 0, 0), NULL) : 0;
        PQclear(r);
        if (commit(c, err, errlen))
            return -1;
        metrics_histogram_observe(o->h_confirm, secs);
        util_strlcpy(t->tx_hash, m.hash, sizeof t->tx_hash);
        if (m.ok) {
            o->st.confirmed++;
        } else {
            o->st.reverted++;
            metrics_counter_inc(o->c_failed);
            char title[240];
            snprintf(title, sizeof title, "Transaction reverted on chain: %s",
                     t->purpose[0] ? t->purpose : t->key);
            char msg[300];
            snprintf(msg, sizeof msg, "%s reverted in block %lld", m.hash, (long long)m.block);
            alert(o, "warning", "reverted", t, title, msg);
        }
        return 1;
    }
    if (t->block >= 0) {
        /* It was mined and its block is gone (reorg): the node may have dropped it,
         * so broadcast the same bytes again. */
        snprintf(sql, sizeof sql,
                 "UPDATE %s.transactions SET block_number = NULL, updated_at = now() WHERE id = $1",
                 o->schema);
        const char *p[1] = {id};
        if (db_exec_params(c, sql, 1, p, err, errlen) || commit(c, err, errlen))
            return -1;
        log_warn("outbox: receipt vanished (reorg), re-broadcasting", "schema", o->schema, "key",
                 t->key, "tx_hash", t->tx_hash);
        if (!paused) {
            char why[300], e2[UTIL_ERRLEN];
            if (broadcast(o, t->raw, t->raw_len, t->tx_hash, why, sizeof why, e2, sizeof e2) == 0)
                o->st.rebroadcast++;
        }
        return 1;
    }
    if (!paused && t->attempt_age_ms >= o->stuck_ms)
        return do_replace(o, c, t, err, errlen);
    return 0;
}

/* ------------------------------------------------------------------ step */

static void update_gauges(outbox *o, db_conn *c)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT status, count(*) FROM %s.transactions GROUP BY status",
             o->schema);
    PGresult *r = db_query(c, sql, 0, NULL, NULL, 0);
    if (!r)
        return;
    double v[M_NSTATUS] = {0};
    for (int i = 0; i < PQntuples(r); i++)
        for (int s = 0; s < M_NSTATUS; s++)
            if (strcmp(PQgetvalue(r, i, 0), STATUS_NAMES[s]) == 0)
                v[s] = strtod(PQgetvalue(r, i, 1), NULL);
    PQclear(r);
    for (int s = 0; s < M_NSTATUS; s++)
        metrics_gauge_set(o->g_status[s], v[s]);
}

/* Signed rows are walked in nonce order; the cursor is the list of ids already seen. */
typedef struct seen {
    int64_t ids[256];
    int n;
} seen;

static void seen_text(const seen *s, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "{");
    for (int i = 0; i < s->n && off + 24 < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%lld", i ? "," : "", (long long)s->ids[i]);
    snprintf(buf + off, len - off, "}");
}

int outbox_step(outbox *o, char *err, size_t errlen)
{
    if (!o)
        return util_err(err, errlen, "outbox_step: NULL outbox");
    if (!o->chain_checked) {
        uint64_t id;
        if (rpc_chain_id(o->rpc, &id, err, errlen))
            return -1;
        if (id != o->chain_id)
            return util_err(err, errlen, "outbox: node chain id %llu, configured %llu",
                            (unsigned long long)id, (unsigned long long)o->chain_id);
        o->chain_checked = 1;
    }
    db_conn *c = db_acquire(o->db, 5000, err, errlen);
    if (!c)
        return -1;
    int paused = is_paused(o);
    int advanced = 0, failed = 0;
    char e1[UTIL_ERRLEN] = "";
    trow t;
    memset(&t, 0, sizeof t);

    /* 1. pending -> signed (or failed) */
    int64_t cursor = 0;
    for (int i = 0; !paused && i < o->batch; i++) {
        int got = claim(o, c, "pending", cursor, &t, e1, sizeof e1);
        if (got <= 0) {
            failed |= got < 0;
            break;
        }
        cursor = t.id;
        int rc = do_pending(o, c, &t, e1, sizeof e1);
        rollback(c);
        trow_clear(&t);
        if (rc < 0)
            failed = 1;
        if (rc <= 0)
            break; /* nonces must stay in order: do not skip ahead of a row that waits */
        advanced++;
    }

    /* 2. signed -> sent */
    seen sn = {.n = 0};
    for (int i = 0; i < o->batch && sn.n < 256; i++) {
        char ids[256 * 24];
        seen_text(&sn, ids, sizeof ids);
        if (db_exec(c, "BEGIN", e1, sizeof e1)) {
            failed = 1;
            break;
        }
        char cols[700], sql[1400], chain[24];
        snprintf(cols, sizeof cols, ROW_COLS, o->schema);
        snprintf(sql, sizeof sql,
                 "SELECT %s FROM %s.transactions t WHERE t.status = 'signed' AND t.chain_id = $1 "
                 "AND t.from_address = $2 AND t.id <> ALL($3::bigint[]) ORDER BY t.nonce, t.id "
                 "LIMIT 1 FOR UPDATE SKIP LOCKED",
                 cols, o->schema);
        snprintf(chain, sizeof chain, "%llu", (unsigned long long)o->chain_id);
        const char *p[3] = {chain, o->from, ids};
        PGresult *r = db_query(c, sql, 3, p, e1, sizeof e1);
        if (!r || PQntuples(r) == 0) {
            failed |= r == NULL;
            if (r)
                PQclear(r);
            rollback(c);
            break;
        }
        int lrc = row_load(r, 0, &t, e1, sizeof e1);
        PQclear(r);
        int rc = lrc ? -1 : do_signed(o, c, &t, paused, e1, sizeof e1);
        sn.ids[sn.n++] = t.id;
        rollback(c);
        trow_clear(&t);
        if (rc < 0) {
            failed = 1;
            break;
        }
        if (rc == 0 && paused)
            break;
        advanced += rc;
    }

    /* 3. sent -> confirmed | reverted, replacements */
    uint64_t head = 0;
    char e3[UTIL_ERRLEN] = "";
    if (rpc_block_number(o->rpc, &head, e3, sizeof e3) == 0) {
        cursor = 0;
        for (int i = 0; i < 4 * o->batch; i++) {
            int got = claim(o, c, "sent", cursor, &t, e3, sizeof e3);
            if (got <= 0) {
                if (got < 0 && !failed) {
                    failed = 1;
                    util_strlcpy(e1, e3, sizeof e1);
                }
                break;
            }
            cursor = t.id;
            int rc = do_sent(o, c, &t, head, paused, e3, sizeof e3);
            rollback(c);
            trow_clear(&t);
            if (rc < 0) {
                if (!failed)
                    util_strlcpy(e1, e3, sizeof e1);
                failed = 1;
                continue; /* one row's RPC hiccup must not stop tracking the others */
            }
            advanced += rc;
        }
    } else if (!failed) {
        failed = 1;
        util_strlcpy(e1, e3, sizeof e1);
    }

    update_gauges(o, c);
    db_release(o->db, c);
    if (failed) {
        if (err && errlen)
            util_strlcpy(err, e1, errlen);
        return -1;
    }
    return advanced;
}

void outbox_run(outbox *o, int64_t every_ms, const atomic_int *stop)
{
    char err[UTIL_ERRLEN];
    while (!atomic_load(stop)) {
        if (outbox_step(o, err, sizeof err) < 0)
            log_warn("outbox pass failed", "schema", o->schema, "error", err);
        for (int64_t t = 0; t < every_ms && !atomic_load(stop); t += 50)
            util_sleep_ms(50);
    }
}
