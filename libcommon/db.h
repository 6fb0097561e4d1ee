/* db: PostgreSQL access for every daemon — a small libpq connection pool that
 * reconnects with backoff, query helpers that fill an error buffer, a transaction
 * helper that retries serialization failures, and the processed-message guard that
 * makes message handling exactly-once in effect.
 *
 * Ownership: db_pool_new/db_pool_free own the pool and its connections. A db_conn
 * from db_acquire is borrowed until db_release. PGresult from db_query is owned by
 * the caller (PQclear). Thread-safe: any thread may acquire/release; one db_conn is
 * used by one thread at a time. */
#ifndef PAIMON_DB_H
#define PAIMON_DB_H

#include <stddef.h>
#include <libpq-fe.h>

typedef struct db_pool db_pool;

typedef struct db_conn {
    PGconn *pg; /* the only field callers use directly */
    /* private to db.c */
    int in_use;
    char sqlstate[6];
    char **prepared;
    size_t nprepared;
} db_conn;

/* Opens `size` connections lazily (the first one now, so a bad URL fails fast). */
db_pool *db_pool_new(const char *url, int size, char *err, size_t errlen);
void db_pool_free(db_pool *p);

/* Borrows a healthy connection, reconnecting a broken one with exponential backoff
 * (100 ms doubling to 5 s) until timeout_ms has passed. NULL with a reason on timeout. */
db_conn *db_acquire(db_pool *p, int timeout_ms, char *err, size_t errlen);
/* Returns a connection; one left inside a transaction is rolled back first. */
void db_release(db_pool *p, db_conn *c);

/* Runs `SELECT 1` on a pooled connection: the deep readiness check. */
int db_ping(db_pool *p, char *err, size_t errlen);

/* Statement without results (or results ignored). */
int db_exec(db_conn *c, const char *sql, char *err, size_t errlen);
/* Parameterised statement; NULL on error. Text parameters (NULL entries are SQL NULL). */
PGresult *db_query(db_conn *c, const char *sql, int nparams, const char *const *params, char *err,
                   size_t errlen);
/* Same, through a statement prepared once per connection under `name`. */
PGresult *db_query_prepared(db_conn *c, const char *name, const char *sql, int nparams,
                            const char *const *params, char *err, size_t errlen);

/* Statements whose rows, if any, are not needed: 0 / -1. */
int db_exec_params(db_conn *c, const char *sql, int nparams, const char *const *params, char *err,
                   size_t errlen);
int db_exec_prepared(db_conn *c, const char *name, const char *sql, int nparams,
                     const char *const *params, char *err, size_t errlen);

/* The SQLSTATE of the last failed statement on c ("" if none), e.g. "40001". */
const char *db_last_sqlstate(const db_conn *c);

/* Runs fn inside BEGIN ... COMMIT on a borrowed connection; fn returning non-zero
 * rolls back. Serialization failures (40001), deadlocks (40P01) and a lost
 * connection are retried up to 3 times with backoff, so fn must be idempotent
 * with respect to anything outside the transaction. */
typedef int (*db_tx_fn)(db_conn *c, void *ud, char *err, size_t errlen);
int db_tx(db_pool *p, db_tx_fn fn, void *ud, char *err, size_t errlen);

/* Inside an open transaction: records (topic, message_id) in
 * <schema>.processed_messages. Returns 1 when new (run the handler), 0 when
 * already processed (skip it), -1 on error. */
int db_processed_mark(db_conn *c, const char *schema, const char *topic, const char *message_id,
                      char *err, size_t errlen);

/* Batch form: marks every id and sets is_new[i] (1 new, 0 seen before or earlier
 * in the same batch). One round trip. */
int db_processed_mark_many(db_conn *c, const char *schema, const char *topic,
                           const char *const *ids, size_t n, int *is_new, char *err, size_t errlen);

/* Validates a schema/table identifier: [a-z_][a-z0-9_]{0,62}. */
int db_ident_ok(const char *ident);

#endif
