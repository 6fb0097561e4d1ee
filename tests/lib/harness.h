/* harness: helpers for tests that talk to the real Redis and PostgreSQL that
 * tests/run.sh starts on its own ports (PAIMON_TEST_REDIS_PORT, PAIMON_TEST_PG_PORT).
 * Every integration test gets its own fresh database so tests never share state. */
#ifndef PAIMON_TEST_HARNESS_H
#define PAIMON_TEST_HARNESS_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

/* A run owns ports base .. base+99 (PAIMON_TEST_PORT_BASE): +1 Redis, +2 PostgreSQL,
 * +3 anvil, +4..+6 rpc/heads tests, +30 svc test, +40..+59 listener tests, +47 a port
 * nothing listens on. th_port(offset) = base + offset. */
int th_port(int offset);
int th_redis_port(void);
int th_pg_port(void);
/* "redis://127.0.0.1:<port>" of the harness Redis; static storage. */
const char *th_redis_url(void);
/* Connects to the harness Redis and FLUSHALLs it; the caller owns the context. */
redisContext *th_redis_fresh(void);
/* Creates (dropping any old one) database `name` on the harness PostgreSQL and
 * returns its URL in static storage valid until the next call. */
const char *th_pg_fresh_db(const char *name);
/* Connects to a URL or aborts the test run. */
PGconn *th_pg_connect(const char *url);
/* Runs SQL, fails the test on error; returns PQntuples of the last result. */
int th_pg_exec(PGconn *c, const char *sql);
/* First column of the first row as a long long (fails the test if no row). */
long long th_pg_scalar(PGconn *c, const char *sql);
/* Same with a printf-formatted query. */
long long th_pg_scalarf(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* First column of the first row as text, in one of 8 rotating static buffers of 4 KiB
 * (so a few results can be compared in one assertion); fails the test if no row. */
const char *th_pg_textf(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Applies the repository's migrations of `service` (NULL = every service) to c, with
 * PostgreSQL's notices silenced; 0, or -1 after printing why. */
int th_pg_migrate(PGconn *c, const char *service);
/* Path under the repository (PAIMON_REPO), static storage. */
const char *th_repo_path(const char *rel);
/* Path of a built binary, e.g. th_bin("paimon-migrate"); static storage. */
const char *th_bin(const char *name);

/* Runs a shell command and captures its whole stdout (trailing newlines trimmed) into
 * out; 0 when it exited 0 and printed something, else -1. */
int th_cmd(const char *cmd, char *out, size_t outlen);
/* Runs the independent reference client `cast` (npm @foundry-rs/cast) with args
 * (already shell-quoted by the caller), as th_cmd does. */
int th_cast(const char *args, char *out, size_t outlen);
/* Path of the cast binary itself (not the node shim, which is slow to start). */
const char *th_cast_path(void);
/* Runs a printf-formatted shell command; returns its stdout with trailing whitespace
 * trimmed (malloc'd, caller frees) and its exit status in *rc. */
char *th_sh_rc(int *rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, failing the test when the command does not exit 0. */
char *th_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An HTTP answer: status 0 when the request failed; body malloc'd and NUL-terminated
 * (caller frees, NULL when empty); headers keep what fits. */
typedef struct th_resp {
    long status;
    char *body;
    size_t len;
    char headers[4096];
} th_resp;
struct curl_slist;
/* One request with libcurl (20 s timeout) into *r (cleared first). headers (taken,
 * freed here) may be NULL; body NULL sends none. Returns r->status. */
long th_http(th_resp *r, const char *method, const char *url, struct curl_slist *headers,
             const char *body);

#endif
