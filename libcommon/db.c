/* db: libpq pool, query helpers, transactions and the processed-message guard (see db.h). */
#include "db.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct db_pool {
    char *url;
    int size;
    db_conn *conns;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void conn_forget_prepared(db_conn *c)
{
    for (size_t i = 0; i < c->nprepared; i++)
        free(c->prepared[i]);
    free(c->prepared);
    c->prepared = NULL;
    c->nprepared = 0;
}

/* Makes c->pg a healthy connection or fails; prepared statements die with the session. */
static int conn_open(db_pool *p, db_conn *c, char *err, size_t errlen)
{
    if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
        return 0;
    conn_forget_prepared(c);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = PQconnectdb(p->url);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        util_err(err, errlen, "postgres connect: %s", PQerrorMessage(c->pg));
        /* libpq's messages span lines; logs want one. */
        if (err) {
            for (char *q = err; *q; q++)
                if (*q == '\n' || *q == '\t')
                    *q = ' ';
            size_t n = strlen(err);
            while (n && err[n - 1] == ' ')
                err[--n] = '\0';
        }
        PQfinish(c->pg);
        c->pg = NULL;
        return -1;
    }
    PQsetClientEncoding(c->pg, "UTF8");
    return 0;
}

db_pool *db_pool_new(const char *url, int size, char *err, size_t errlen)
{
    if (!url || !*url) {
        util_err(err, errlen, "database url is empty");
        return NULL;
    }
    if (size < 1 || size > 256) {
        util_err(err, errlen, "database pool size %d out of range 1..256", size);
        return NULL;
    }
    db_pool *p = util_calloc(1, sizeof *p);
    p->url = util_strdup(url);
    p->size = size;
    p->conns = util_calloc((size_t)size, sizeof *p->conns);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (conn_open(p, &p->conns[0], err, errlen) != 0) {
        db_pool_free(p);
        return NULL;
    }
    return p;
}

void db_pool_free(db_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++) {
        conn_forget_prepared(&p->conns[i]);
        if (p->conns[i].pg)
            PQfinish(p->conns[i].pg);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->conns);
    free(p->url);
    free(p);
}

db_conn *db_acquire(db_pool *p, int timeout_ms, char *err, size_t errlen)
{
    int64_t deadline = util_mono_ms() + timeout_ms;
    db_conn *c = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* Prefer an already-open connection, then any free slot. */
        for (int i = 0; i < p->size && !c; i++)
            if (!p->conns[i].in_use && p->conns[i].pg)
                c = &p->conns[i];
        for (int i = 0; i < p->size && !c; i++)
            if (!p->conns[i].in_use)
                c = &p->conns[i];
        if (c)
            break;
        int64_t left = deadline - util_mono_ms();
        if (left <= 0) {
            pthread_mutex_unlock(&p->mu);
            util_err(err, errlen, "database pool exhausted (%d connections busy)", p->size);
            return NULL;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (left % 1000) * 1000000;
        ts.tv_sec += left / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    c->in_use = 1;
    pthread_mutex_unlock(&p->mu);

    int64_t backoff = 100;
    char e[UTIL_ERRLEN] = "";
    while (conn_open(p, c, e, sizeof e) != 0) {
        int64_t left = deadline - util_mono_ms();
        if (left <= 0) {
            db_release(p, c);
            util_err(err, errlen, "%s", e);
            return NULL;
        }
        util_sleep_ms(backoff < left ? backoff : left);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
    c->sqlstate[0] = '\0';
    return c;
}

void db_release(db_pool *p, db_conn *c)
{
    if (!c)
        return;
    if (c->pg) {
        PGTransactionStatusType ts = PQtransactionStatus(c->pg);
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
            PQclear(PQexec(c->pg, "ROLLBACK"));
        else if (ts == PQTRANS_ACTIVE || ts == PQTRANS_UNKNOWN) {
            /* Mid-query or broken: only a fresh session is safe to hand out again. */
            conn_forget_prepared(c);
            PQfinish(c->pg);
            c->pg = NULL;
        }
    }
    pthread_mutex_lock(&p->mu);
    c->in_use = 0;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static int result_ok(db_conn *c, PGresult *r, char *err, size_t errlen)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        c->sqlstate[0] = '\0';
        return 0;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    util_strlcpy(c->sqlstate, state ? state : (PQstatus(c->pg) == CONNECTION_BAD ? "08006" : ""),
                 sizeof c->sqlstate);
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    util_err(err, errlen, "postgres: %s%s%s", msg ? msg : PQerrorMessage(c->pg),
             c->sqlstate[0] ? " sqlstate=" : "", c->sqlstate);
    return -1;
}

int db_exec(db_conn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c->pg, sql);
    int rc = result_ok(c, r, err, errlen);
    PQclear(r);
    return rc;
}

PGresult *db_query(db_conn *c, const char *sql, int nparams, const char *const *params, char *err,
                   size_t errlen)
{
    PGresult *r = PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (result_ok(c, r, err, errlen) != 0) {
        PQclear(r);
        return NULL;
    }
    return r;
}

PGresult *db_query_prepared(db_conn *c, const char *name, const char *sql, int nparams,
                            const char *const *params, char *err, size_t errlen)
{
    int known = 0;
    for (size_t i = 0; i < c->nprepared && !known; i++)
        known = strcmp(c->prepared[i], name) == 0;
    if (!known) {
        PGresult *r = PQprepare(c->pg, name, sql, nparams, NULL);
        int rc = result_ok(c, r, err, errlen);
        PQclear(r);
        if (rc != 0)
            return NULL;
        char **grown = realloc(c->prepared, (c->nprepared + 1) * sizeof *grown);
        if (!grown)
            abort();
        c->prepared = grown;
        c->prepared[c->nprepared++] = util_strdup(name);
    }
    PGresult *r = PQexecPrepared(c->pg, name, nparams, params, NULL, NULL, 0);
    if (result_ok(c, r, err, errlen) != 0) {
        PQclear(r);
        return NULL;
    }
    return r;
}

int db_exec_params(db_conn *c, const char *sql, int nparams, const char *const *params, char *err,
                   size_t errlen)
{
    PGresult *r = db_query(c, sql, nparams, params, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int db_exec_prepared(db_conn *c, const char *name, const char *sql, int nparams,
                     const char *const *params, char *err, size_t errlen)
{
    PGresult *r = db_query_prepared(c, name, sql, nparams, params, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

const char *db_last_sqlstate(const db_conn *c)
{
    return c->sqlstate;
}

int db_ping(db_pool *p, char *err, size_t errlen)
{
    db_conn *c = db_acquire(p, 2000, err, errlen);
    if (!c)
        return -1;
    int rc = db_exec(c, "SELECT 1", err, errlen);
    db_release(p, c);
    return rc;
}

static int retryable(const db_conn *c)
{
    return strcmp(c->sqlstate, "40001") == 0 || strcmp(c->sqlstate, "40P01") == 0 ||
           strncmp(c->sqlstate, "08", 2) == 0 || !c->pg || PQstatus(c->pg) == CONNECTION_BAD;
}

int db_tx(db_pool *p, db_tx_fn fn, void *ud, char *err, size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        db_conn *c = db_acquire(p, 10000, err, errlen);
        if (!c)
            return -1;
        int rc = db_exec(c, "BEGIN", err, errlen);
        if (rc == 0)
            rc = fn(c, ud, err, errlen);
        if (rc == 0)
            rc = db_exec(c, "COMMIT", err, errlen);
        else if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
            PQclear(PQexec(c->pg, "ROLLBACK"));
        int again = rc != 0 && retryable(c) && attempt < 3;
        db_release(p, c);
        if (rc == 0 || !again)
            return rc;
        util_sleep_ms(20L << attempt);
    }
}

int db_ident_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 63 || !((*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

int db_processed_mark(db_conn *c, const char *schema, const char *topic, const char *message_id,
                      char *err, size_t errlen)
{
    int is_new = 0;
    if (db_processed_mark_many(c, schema, topic, &message_id, 1, &is_new, err, errlen) != 0)
        return -1;
    return is_new;
}

/* Appends s to a PostgreSQL array literal as a quoted element. */
static void array_append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t need = *len + 2 * strlen(s) + 4;
    if (need > *cap) {
        *cap = need * 2;
        char *b = realloc(*buf, *cap);
        if (!b)
            abort();
        *buf = b;
    }
    char *o = *buf + *len;
    if (*len > 1)
        *o++ = ',';
    *o++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o++ = '"';
    *len = (size_t)(o - *buf);
}

int db_processed_mark_many(db_conn *c, const char *schema, const char *topic,
                           const char *const *ids, size_t n, int *is_new, char *err, size_t errlen)
{
    if (!db_ident_ok(schema))
        return util_err(err, errlen, "invalid schema name");
    if (n == 0)
        return 0;
    size_t len = 1, cap = 64;
    char *arr = util_malloc(cap);
    arr[0] = '{';
    for (size_t i = 0; i < n; i++)
        array_append(&arr, &len, &cap, ids[i]);
    arr[len++] = '}';
    arr[len] = '\0';

    char sql[256], name[96];
    snprintf(sql, sizeof sql,
             "INSERT INTO %s.processed_messages (topic, message_id) SELECT $1, unnest($2::text[]) "
             "ON CONFLICT DO NOTHING RETURNING message_id",
             schema);
    snprintf(name, sizeof name, "paimon_processed_%s", schema);
    const char *params[2] = {topic, arr};
    PGresult *r = db_query_prepared(c, name, sql, 2, params, err, errlen);
    free(arr);
    if (!r)
        return -1;
    for (size_t i = 0; i < n; i++)
        is_new[i] = 0;
    int rows = PQntuples(r);
    /* Each returned id is new exactly once: credit it to its first occurrence. */
    for (int row = 0; row < rows; row++) {
        const char *id = PQgetvalue(r, row, 0);
        for (size_t i = 0; i < n; i++) {
            if (!is_new[i] && strcmp(ids[i], id) == 0) {
                is_new[i] = 1;
                break;
            }
        }
    }
    PQclear(r);
    return 0;
}
