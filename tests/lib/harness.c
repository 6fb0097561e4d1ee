/* harness: test access to the run's real Redis and PostgreSQL (see harness.h). */
#include "harness.h"
#include "migrate.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <curl/curl.h>

static int env_port(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "harness: %s is not set; run tests through tests/run.sh\n", name);
        abort();
    }
    return atoi(v);
}

int th_port(int offset)
{
    return env_port("PAIMON_TEST_PORT_BASE") + offset;
}
int th_redis_port(void)
{
    return env_port("PAIMON_TEST_REDIS_PORT");
}
int th_pg_port(void)
{
    return env_port("PAIMON_TEST_PG_PORT");
}

const char *th_redis_url(void)
{
    static char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", th_redis_port());
    return url;
}

redisContext *th_redis_fresh(void)
{
    redisContext *c = redisConnect("127.0.0.1", th_redis_port());
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    redisReply *r = redisCommand(c, "FLUSHALL");
    assert_non_null(r);
    freeReplyObject(r);
    return c;
}

const char *th_pg_fresh_db(const char *name)
{
    static char url[256];
    char admin[128];
    snprintf(admin, sizeof admin, "postgresql://postgres@127.0.0.1:%d/postgres", th_pg_port());
    PGconn *c = th_pg_connect(admin);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
    th_pg_exec(c, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
    th_pg_exec(c, sql);
    PQfinish(c);
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/%s", th_pg_port(), name);
    return url;
}

PGconn *th_pg_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness: cannot connect to %s: %s\n", url, PQerrorMessage(c));
        fail();
    }
    return c;
}

int th_pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "harness: SQL failed: %s\n  %s\n", sql, PQerrorMessage(c));
        PQclear(r);
        fail();
    }
    int n = PQntuples(r);
    PQclear(r);
    return n;
}

long long th_pg_scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
        fprintf(stderr, "harness: scalar query failed: %s\n  %s\n", sql, PQerrorMessage(c));
        PQclear(r);
        fail();
    }
    long long v = PQgetisnull(r, 0, 0) ? 0 : atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

const char *th_repo_path(const char *rel)
{
    static char path[1024];
    const char *repo = getenv("PAIMON_REPO");
    snprintf(path, sizeof path, "%s/%s", repo && *repo ? repo : ".", rel);
    return path;
}

const char *th_bin(const char *name)
{
    static char path[1024];
    const char *b = getenv("PAIMON_BUILD");
    snprintf(path, sizeof path, "%s/bin/%s", b && *b ? b : "build", name);
    return path;
}

int th_cmd(const char *cmd, char *out, size_t outlen)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = outlen ? fread(out, 1, outlen - 1, p) : 0;
    char sink[256];
    while (fread(sink, 1, sizeof sink, p) > 0) {}
    int rc = pclose(p);
    if (outlen) {
        out[n] = '\0';
        while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
            out[--n] = '\0';
    }
    return rc == 0 && n > 0 ? 0 : -1;
}

const char *th_cast_path(void)
{
    static char path[1024];
    if (path[0])
        return path;
    glob_t gl;
    if (glob(th_repo_path("deploy/node_modules/@foundry-rs/cast-*/bin/cast"), 0, NULL, &gl) == 0 &&
        gl.gl_pathc > 0)
        snprintf(path, sizeof path, "%s", gl.gl_pathv[0]);
    else
        snprintf(path, sizeof path, "%s", th_repo_path("deploy/node_modules/.bin/cast"));
    globfree(&gl);
    return path;
}

int th_cast(const char *args, char *out, size_t outlen)
{
    size_t len = strlen(args) + 1100;
    char *cmd = malloc(len);
    if (!cmd)
        return -1;
    snprintf(cmd, len, "'%s' %s 2>/dev/null", th_cast_path(), args);
    int rc = th_cmd(cmd, out, outlen);
    free(cmd);
    return rc;
}

static char *sh_v(int *rc, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    if (vasprintf(&cmd, fmt, ap) < 0)
        abort();
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p)
        abort();
    size_t cap = 4096, len = 0, got;
    char *out = malloc(cap);
    if (!out)
        abort();
    while ((got = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 1024) {
            char *grown = realloc(out, cap *= 2);
            if (!grown)
                abort();
            out = grown;
        }
    }
    out[len] = '\0';
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    while (len && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' '))
        out[--len] = '\0';
    return out;
}

char *th_sh_rc(int *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = sh_v(rc, fmt, ap);
    va_end(ap);
    return out;
}

char *th_sh(const char *fmt, ...)
{
    int rc;
    va_list ap;
    va_start(ap, fmt);
    char *out = sh_v(&rc, fmt, ap);
    va_end(ap);
    if (rc != 0) {
        fprintf(stderr, "harness: command failed (exit %d): %s\n", rc, out);
        free(out);
        fail();
        return NULL; /* not reached: fail() jumps out of the test */
    }
    return out;
}

long long th_pg_scalarf(PGconn *c, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return th_pg_scalar(c, sql);
}

const char *th_pg_textf(PGconn *c, const char *fmt, ...)
{
    static char buf[8][4096];
    static int k;
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
        fprintf(stderr, "harness: query gave no row: %s\n  %s\n", sql, PQresultErrorMessage(r));
        PQclear(r);
        fail();
        return "";
    }
    char *out = buf[k++ % 8];
    snprintf(out, sizeof buf[0], "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
}

static void notice_quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

int th_pg_migrate(PGconn *c, const char *service)
{
    char err[512];
    const char *only[1] = {service};
    PQsetNoticeProcessor(c, notice_quiet, NULL);
    migrate_set *ms =
        migrate_set_load(th_repo_path("migrations"), only, service ? 1 : 0, err, sizeof err);
    if (!ms) {
        fprintf(stderr, "harness: migrations: %s\n", err);
        return -1;
    }
    int rc = migrate_up(c, ms, NULL, NULL, err, sizeof err);
    migrate_set_free(ms);
    if (rc != 0)
        fprintf(stderr, "harness: migrate: %s\n", err);
    return rc;
}

static size_t resp_body(void *p, size_t s, size_t n, void *ud)
{
    th_resp *r = ud;
    char *b = realloc(r->body, r->len + s * n + 1);
    if (!b)
        return 0; /* curl fails the transfer */
    memcpy(b + r->len, p, s * n);
    r->body = b;
    r->len += s * n;
    r->body[r->len] = '\0';
    return s * n;
}

static size_t resp_header(char *p, size_t s, size_t n, void *ud)
{
    th_resp *r = ud;
    size_t l = strlen(r->headers);
    if (l + s * n < sizeof r->headers) {
        memcpy(r->headers + l, p, s * n);
        r->headers[l + s * n] = '\0';
    }
    return s * n;
}

long th_http(th_resp *r, const char *method, const char *url, struct curl_slist *headers,
             const char *body)
{
    memset(r, 0, sizeof *r);
    CURL *h = curl_easy_init();
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        if (body)
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, resp_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, resp_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
        if (curl_easy_perform(h) == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_cleanup(h);
    }
    curl_slist_free_all(headers);
    return r->status;
}
