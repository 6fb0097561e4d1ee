/* migrate: versioned SQL migrations, one folder (= one PostgreSQL schema and one
 * login role) per service: <dir>/<service>/NNNN_name.sql.
 *
 * Guarantees: files apply in numeric order, each in its own transaction together
 * with its bookkeeping row in public.paimon_migrations; an applied file whose
 * bytes changed (SHA-256) or that vanished stops the whole run before anything is
 * applied; a session advisory lock serialises concurrent runners, so a second one
 * waits and then finds nothing to do. Each file runs as SET LOCAL ROLE
 * paimon_<service> with search_path = <service>, so what it creates belongs to the
 * service's role; the role owns its schema (USAGE + CREATE and the right to
 * comment on it) and has no rights on any other schema or on public's tables.
 *
 * DDL that a libcommon module owns (the bus's processed_messages, the outbox's
 * transactions) is written once in <dir>/_shared/<name>.sql and pulled into a
 * service's migration by a line "-- include: <name>.sql"; folders starting with
 * '_' are not services. The checksum covers the expanded text.
 *
 * Ownership: migrate_set_load returns an owned set (migrate_set_free). The PGconn
 * given to migrate_up/migrate_status is borrowed; on return it is outside any
 * transaction and the advisory lock is released. Server notices (e.g. "already
 * exists, skipping" on re-runs) go to the connection's notice processor, which is
 * the caller's to set. Callback strings are borrowed for the duration of the call. */
#ifndef PAIMON_MIGRATE_H
#define PAIMON_MIGRATE_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#define MIGRATE_SERVICE_MAX 41  /* service name [a-z][a-z0-9_]{0,39} + NUL */
#define MIGRATE_NAME_MAX    101 /* the "name" part of NNNN_name.sql + NUL */
#define MIGRATE_FILE_MAX    (5 + MIGRATE_NAME_MAX + 4)
#define MIGRATE_SHA256_HEX  65
#define MIGRATE_MAX_BYTES   (16u * 1024u * 1024u) /* larger files are refused */

/* Key of the session advisory lock held for a whole `up` run ("paimonmg"). */
#define MIGRATE_LOCK_KEY 0x7061696d6f6e6d67LL

typedef struct migrate_file {
    int version;                       /* 1..9999 */
    char name[MIGRATE_NAME_MAX];       /* "init" */
    char file[MIGRATE_FILE_MAX];       /* "0001_init.sql" */
    char checksum[MIGRATE_SHA256_HEX]; /* lowercase hex SHA-256 of the bytes in sql */
    char *sql;                         /* owned; exactly the bytes that were hashed */
} migrate_file;

typedef struct migrate_service {
    char name[MIGRATE_SERVICE_MAX]; /* schema name; role is "paimon_" + name */
    migrate_file *files;            /* sorted by version */
    size_t nfiles;
} migrate_service;

typedef struct migrate_set {
    migrate_service *services; /* sorted by name */
    size_t nservices;
} migrate_set;

typedef enum {
    MIGRATE_PENDING, /* on disk, not applied */
    MIGRATE_APPLIED, /* applied, bytes unchanged */
    MIGRATE_CHANGED, /* applied, but the file's checksum or name differs now */
    MIGRATE_MISSING  /* applied, but the file is gone from disk */
} migrate_state;

/* "pending", "applied", "CHANGED", "MISSING" (problems shout). */
const char *migrate_state_name(migrate_state s);

/* Parses "NNNN_name.sql": four digits (0001..9999), '_', [a-z0-9_]{1,100}, ".sql".
 * name may be NULL. */
int migrate_parse_filename(const char *fname, int *version, char *name, size_t namelen, char *err,
                           size_t errlen);

/* Service (= schema) names: [a-z][a-z0-9_]{0,39}, not "public", not "pg_*". */
int migrate_service_name_ok(const char *s);

/* Lowercase hex SHA-256 (OpenSSL EVP) of len bytes into hex[MIGRATE_SHA256_HEX]. */
int migrate_sha256_hex(const void *data, size_t len, char *hex, char *err, size_t errlen);

/* Reads every service folder of dir (non-hidden subdirectories) and their *.sql
 * files; other files are ignored. Malformed service or file names, duplicate
 * versions, empty, oversized or NUL-containing files are errors. When nonly > 0
 * only those services are kept, and naming one without a folder is an error. */
migrate_set *migrate_set_load(const char *dir, const char *const *only, size_t nonly, char *err,
                              size_t errlen);
void migrate_set_free(migrate_set *s);

/* Called once per file of every service, in order. applied_at is the server's
 * text form of the timestamp, or NULL when not applied. file is the on-disk name,
 * or for MISSING the recorded "NNNN_name.sql". */
typedef void (*migrate_status_fn)(void *ud, const char *service, const char *file,
                                  migrate_state state, const char *applied_at);

/* Compares disk with public.paimon_migrations without changing anything. Sets
 * *nproblems (if non-NULL) to the number of CHANGED + MISSING files. */
int migrate_status(PGconn *c, const migrate_set *s, migrate_status_fn fn, void *ud,
                   size_t *nproblems, char *err, size_t errlen);

/* Called after each file commits, with its wall time in milliseconds. */
typedef void (*migrate_applied_fn)(void *ud, const char *service, const char *file,
                                   int64_t elapsed_ms);
/* Called once if another runner holds the lock and this one starts to wait. */
typedef void (*migrate_wait_fn)(void *ud);

typedef struct migrate_opts {
    migrate_applied_fn on_applied; /* may be NULL */
    migrate_wait_fn on_wait;       /* may be NULL */
    void *ud;
} migrate_opts;

/* Takes the advisory lock, creates the bookkeeping table, checks every applied
 * file (CHANGED / MISSING / a pending file older than an applied one are errors,
 * raised before anything is applied), then per service: ensures the login role
 * paimon_<service> (password from env PAIMON_DB_PASSWORD_<SERVICE> when set, sent
 * only as a SCRAM verifier), the schema and the grants, and applies the pending
 * files in order. Stops at the first failing file (its transaction rolls back;
 * earlier files stay). *napplied (if non-NULL) counts committed files. opts may
 * be NULL. */
int migrate_up(PGconn *c, const migrate_set *s, const migrate_opts *opts, int *napplied, char *err,
               size_t errlen);

#endif
