/* The real paimon-api against the harness Redis and PostgreSQL: bootstrap admin, login,
 * tokens (expired / tampered / alg none), refresh rotation and reuse, RBAC, body
 * validation and limits, rate limiting, the audit chain and its tamper detection, a
 * service that is not deployed, the OpenAPI document (linted by redocly). Every JSON
 * response any test receives is validated against the response schema that
 * schemas/openapi.yaml documents for its route and status (an undocumented status
 * fails the test too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "openapi_check.h"
#include "jsonschema.h"
#include "migrate.h"
#include "api/rl.h"
#include "util.h"

static char api_db_url[512], admin_db_url[512];
static int port;
static pid_t daemon_pid;
static PGconn *pg;

typedef th_resp resp;

/* ---------- responses checked against the OpenAPI document ---------- */

static int validated;

static void validate_response(const char *method, const char *path, long status, const char *body)
{
    /* the health routes belong to libcommon's server and the docs pages are files */
    if (strncmp(path, "/api/v1/", 8) != 0 || status == 0)
        return;
    char err[2048];
    if (oa_check_response(method, path, status, NULL, body, err, sizeof err) != 0)
        fprintf(stderr, "%s %s -> %ld does not match openapi.yaml: %s\nbody: %.500s\n", method,
                path, status, err, body ? body : "");
    assert_int_equal(oa_check_response(method, path, status, NULL, body, err, sizeof err), 0);
    validated++;
}

/* extra: "Name: value" header or NULL; ctype NULL = application/json when body. */
static cJSON *call(resp *r, const char *method, const char *path, const char *token,
                   const char *body, const char *extra)
{
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *hl = NULL;
    char auth[2048];
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        hl = curl_slist_append(hl, auth);
    }
    if (body && !(extra && strncasecmp(extra, "Content-Type", 12) == 0))
        hl = curl_slist_append(hl, "Content-Type: application/json");
    if (extra)
        hl = curl_slist_append(hl, extra);
    th_http(r, method, url, hl, body);
    validate_response(method, path, r->status, r->body);
    return r->body ? cJSON_Parse(r->body) : NULL;
}

static const char *code_of(cJSON *j)
{
    cJSON *e = cJSON_GetObjectItem(j, "error");
    cJSON *c = cJSON_GetObjectItem(e, "code");
    return cJSON_IsString(c) ? c->valuestring : "";
}

static const char *data_str(cJSON *j, const char *k)
{
    cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void quiet(void *a, const char *m)
{
    (void)a;
    (void)m;
}

static void start(const char *extra_env)
{
    snprintf(admin_db_url, sizeof admin_db_url, "%s", th_pg_fresh_db("api_gw"));
    if (pg)
        PQfinish(pg);
    pg = th_pg_connect(admin_db_url);
    PQsetNoticeProcessor(pg, quiet, NULL);
    assert_int_equal(th_pg_migrate(pg, "api"), 0);
    snprintf(api_db_url, sizeof api_db_url, "postgresql://paimon_api@127.0.0.1:%d/api_gw",
             th_pg_port());
    redisFree(th_redis_fresh());
    const char *b = getenv("PAIMON_TEST_PORT_BASE");
    port = (b ? atoi(b) : 17100) + 40;
    char log[512], ps[16];
    const char *rd = getenv("PAIMON_TEST_RUN_DIR");
    snprintf(log, sizeof log, "%s/logs/api-gateway.log", rd ? rd : "/tmp");
    snprintf(ps, sizeof ps, "%d", port);
    daemon_pid = fork();
    assert_true(daemon_pid >= 0);
    if (daemon_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("PAIMON_REDIS_URL", th_redis_url(), 1);
        setenv("PAIMON_DATABASE_URL", api_db_url, 1);
        setenv("PAIMON_HTTP_PORT", ps, 1);
        setenv("PAIMON_WS_PORT", "0", 1); /* the WebSocket server has its own test */
        setenv("PAIMON_API_THREADS", "2", 1);
        setenv("PAIMON_JWT_SECRET", "test-secret-test-secret-test-secret!", 1);
        setenv("PAIMON_BOOTSTRAP_ADMIN_EMAIL", "Admin@Example.com", 1);
        setenv("PAIMON_BOOTSTRAP_ADMIN_PASSWORD", "admin-password-1", 1);
        setenv("PAIMON_ARGON2_T", "1", 1);
        setenv("PAIMON_ARGON2_M_KIB", "256", 1);
        setenv("PAIMON_INTERNAL_URL_RISK", "", 1);
        setenv("PAIMON_INTERNAL_URL_APPROVAL", "http://127.0.0.1:1", 1);
        setenv("PAIMON_OPENAPI_PATH", th_repo_path("schemas/openapi.yaml"), 1);
        if (extra_env)
            putenv((char *)extra_env);
        execl(th_bin("paimon-api"), "paimon-api", (char *)NULL);
        _exit(127);
    }
    resp r;
    int64_t end = util_mono_ms() + 10000;
    for (;;) {
        cJSON *j = call(&r, "GET", "/health/ready", NULL, NULL, NULL);
        cJSON_Delete(j);
        free(r.body);
        if (r.status == 200 || util_mono_ms() > end)
            break;
        util_sleep_ms(50);
    }
    assert_int_equal(r.status, 200);
}

static int stop(void **st)
{
    (void)st;
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        int status = 0;
        waitpid(daemon_pid, &status, 0);
        daemon_pid = 0;
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    return 0;
}

static char *login(const char *email, const char *pass, char **refresh)
{
    char body[512];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, pass);
    resp r;
    cJSON *j = call(&r, "POST", "/api/v1/auth/login", NULL, body, NULL);
    assert_int_equal(r.status, 200);
    char *t = strdup(data_str(j, "accessToken"));
    if (refresh)
        *refresh = strdup(data_str(j, "refreshToken"));
    cJSON_Delete(j);
    free(r.body);
    return t;
}

static void test_auth_flows(void **st)
{
    (void)st;
    start(NULL);
    resp r;
    /* wrong password: 401 envelope with a request id */
    cJSON *j = call(&r, "POST", "/api/v1/auth/login", NULL,
                    "{\"email\":\"admin@example.com\",\"password\":\"nope-nope-nope\"}",
                    "X-Request-Id: my-req-1");
    assert_int_equal(r.status, 401);
    assert_string_equal(code_of(j), "invalid_credentials");
    assert_string_equal(cJSON_GetObjectItem(j, "requestId")->valuestring, "my-req-1");
    assert_non_null(strcasestr(r.headers, "X-Request-Id: my-req-1"));
    cJSON_Delete(j);
    free(r.body);

    char *refresh = NULL;
    char *tok = login("admin@example.com", "admin-password-1", &refresh);
    j = call(&r, "GET", "/api/v1/auth/me", tok, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(data_str(j, "role"), "super_admin");
    assert_string_equal(data_str(j, "email"), "admin@example.com");
    cJSON_Delete(j);
    free(r.body);

    /* tampered token, alg none, garbage */
    char bad[2048];
    snprintf(bad, sizeof bad, "%s", tok);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    j = call(&r, "GET", "/api/v1/auth/me", bad, NULL, NULL);
    assert_int_equal(r.status, 401);
    cJSON_Delete(j);
    free(r.body);
    /* alg "none" header on the real payload, no signature */
    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    snprintf(bad, sizeof bad, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0%.*s.", (int)(d2 - d1), d1);
    j = call(&r, "GET", "/api/v1/auth/me", bad, NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(code_of(j), "unauthorized");
    cJSON_Delete(j);
    free(r.body);

    /* refresh rotates; presenting the old token again revokes the whole family */
    char body[512];
    snprintf(body, sizeof body, "{\"refreshToken\":\"%s\"}", refresh);
    j = call(&r, "POST", "/api/v1/auth/refresh", NULL, body, NULL);
    assert_int_equal(r.status, 200);
    char *refresh2 = strdup(data_str(j, "refreshToken"));
    assert_string_not_equal(refresh2, refresh);
    cJSON_Delete(j);
    free(r.body);
    j = call(&r, "POST", "/api/v1/auth/refresh", NULL, body, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(code_of(j), "refresh_token_reused");
    cJSON_Delete(j);
    free(r.body);
    snprintf(body, sizeof body, "{\"refreshToken\":\"%s\"}", refresh2);
    j = call(&r, "POST", "/api/v1/auth/refresh", NULL, body, NULL);
    assert_int_equal(r.status, 401); /* the new one died with its family */
    cJSON_Delete(j);
    free(r.body);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM api.refresh_tokens WHERE "
                                      "revoke_reason = 'reuse'"),
                     2);

    /* logout: the access token stops working at once */
    j = call(&r, "POST", "/api/v1/auth/logout", tok, "{}", NULL);
    assert_int_equal(r.status, 200);
    cJSON_Delete(j);
    free(r.body);
    j = call(&r, "GET", "/api/v1/auth/me", tok, NULL, NULL);
    assert_int_equal(r.status, 401);
    cJSON_Delete(j);
    free(r.body);
    free(tok);
    free(refresh);
    free(refresh2);
}

static void test_rbac_validation_audit(void **st)
{
    (void)st;
    start(NULL);
    char *admin = login("admin@example.com", "admin-password-1", NULL);
    resp r;
    /* validation: unknown field, wrong type, missing field -> 400 with field details */
    cJSON *j =
        call(&r, "POST", "/api/v1/admin/users", admin,
             "{\"email\":\"v@example.com\",\"password\":5,\"role\":\"viewer\",\"x\":1}", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(code_of(j), "validation_failed");
    cJSON *det = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "details");
    assert_true(cJSON_GetArraySize(det) >= 2);
    cJSON_Delete(j);
    free(r.body);
    j = call(&r, "POST", "/api/v1/admin/users", admin, "{not json", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(code_of(j), "invalid_json");
    cJSON_Delete(j);
    free(r.body);
    j = call(&r, "POST", "/api/v1/admin/users", admin, "{}", "Content-Type: text/plain");
    assert_int_equal(r.status, 415);
    cJSON_Delete(j);
    free(r.body);
    char *huge = malloc(200000);
    memset(huge, 'a', 199999);
    huge[0] = '"';
    huge[199998] = '"';
    huge[199999] = '\0';
    j = call(&r, "POST", "/api/v1/admin/users", admin, huge, NULL);
    assert_int_equal(r.status, 413);
    cJSON_Delete(j);
    free(r.body);
    free(huge);
    j = call(&r, "GET", "/api/v1/admin/audit?limit=abc", admin, NULL, NULL);
    assert_int_equal(r.status, 400);
    cJSON_Delete(j);
    free(r.body);

    /* a viewer: may read, may not administer */
    j = call(&r, "POST", "/api/v1/admin/users", admin,
             "{\"email\":\"viewer@example.com\",\"password\":\"viewer-password\",\"role\":"
             "\"viewer\"}",
             NULL);
    assert_int_equal(r.status, 201);
    cJSON_Delete(j);
    free(r.body);
    char *viewer = login("viewer@example.com", "viewer-password", NULL);
    j = call(&r, "GET", "/api/v1/admin/users", viewer, NULL, NULL);
    assert_int_equal(r.status, 403);
    assert_string_equal(code_of(j), "forbidden");
    cJSON_Delete(j);
    free(r.body);
    j = call(&r, "POST", "/api/v1/admin/pause", viewer, "{\"reason\":\"x\"}", NULL);
    assert_int_equal(r.status, 403);
    cJSON_Delete(j);
    free(r.body);
    j = call(&r, "GET", "/api/v1/admin/users", NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    cJSON_Delete(j);
    free(r.body);

    /* pause / resume are signed operations (test_api_routes signs them); an unsigned
     * one from the super_admin is refused as invalid and pauses nothing */
    j = call(&r, "POST", "/api/v1/admin/pause", admin, "{\"reason\":\"drill\"}", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(code_of(j), "validation_failed");
    cJSON_Delete(j);
    free(r.body);
    redisContext *rc = redisConnect("127.0.0.1", th_redis_port());
    redisReply *rr = redisCommand(rc, "EXISTS paimon:system:paused");
    assert_int_equal(rr->integer, 0);
    freeReplyObject(rr);
    j = call(&r, "POST", "/api/v1/admin/resume", admin, "{}", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(code_of(j), "validation_failed");
    cJSON_Delete(j);
    free(r.body);
    redisFree(rc);

    /* a service that is not deployed: 503 envelope */
    j = call(&r, "GET", "/api/v1/fund/overview", viewer, NULL, NULL);
    assert_int_equal(r.status, 503);
    assert_string_equal(code_of(j), "service_unavailable");
    cJSON_Delete(j);
    free(r.body);
    j = call(&r, "GET", "/api/v1/redemptions", viewer, NULL, NULL); /* configured, down */
    assert_int_equal(r.status, 503);
    cJSON_Delete(j);
    free(r.body);

    /* audit: mutating requests (including the refused ones) are chained and verify */
    long long rows = th_pg_scalar(pg, "SELECT count(*) FROM api.audit_logs");
    assert_true(rows >= 8);
    assert_int_equal(th_pg_scalar(pg, "SELECT count(*) FROM api.audit_logs WHERE outcome = "
                                      "'denied' AND route = '/api/v1/admin/pause'"),
                     1);
    j = call(&r, "GET", "/api/v1/admin/audit/verify", admin, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "valid")));
    cJSON_Delete(j);
    free(r.body);
    j = call(&r, "GET", "/api/v1/admin/audit?limit=2", admin, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "items")), 2);
    cJSON_Delete(j);
    free(r.body);
    /* the table refuses edits ... */
    PGresult *pr = PQexec(pg, "UPDATE api.audit_logs SET status = 200 WHERE seq = 2");
    assert_int_not_equal(PQresultStatus(pr), PGRES_COMMAND_OK);
    PQclear(pr);
    /* ... and an edit that goes around the trigger is detected */
    th_pg_exec(pg, "ALTER TABLE api.audit_logs DISABLE TRIGGER audit_logs_no_update");
    th_pg_exec(pg, "UPDATE api.audit_logs SET status = 200 WHERE seq = 3");
    th_pg_exec(pg, "ALTER TABLE api.audit_logs ENABLE TRIGGER audit_logs_no_update");
    j = call(&r, "GET", "/api/v1/admin/audit/verify", admin, NULL, NULL);
    assert_int_equal(r.status, 200);
    cJSON *d = cJSON_GetObjectItem(j, "data");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(d, "valid")));
    assert_int_equal(cJSON_GetObjectItem(d, "firstBadSeq")->valueint, 3);
    cJSON_Delete(j);
    free(r.body);
    free(admin);
    free(viewer);
}

static void test_rate_limit_and_login_throttle(void **st)
{
    (void)st;
    start("PAIMON_RATE_LIMIT_BURST=5");
    resp r;
    int limited = 0;
    for (int i = 0; i < 12 && !limited; i++) {
        cJSON *j = call(&r, "GET", "/api/v1/auth/siwe/nonce", NULL, NULL, NULL);
        if (r.status == 429) {
            limited = 1;
            assert_string_equal(code_of(j), "rate_limited");
            assert_non_null(strcasestr(r.headers, "Retry-After: "));
            assert_non_null(strcasestr(r.headers, "RateLimit-Remaining: 0"));
            assert_true(i >= 5);
        } else {
            assert_int_equal(r.status, 200);
            assert_non_null(strcasestr(r.headers, "RateLimit-Limit: 5"));
        }
        cJSON_Delete(j);
        free(r.body);
    }
    assert_true(limited);
}

static void test_login_throttle(void **st)
{
    (void)st;
    start("PAIMON_LOGIN_LIMIT_ACCOUNT=3");
    resp r;
    for (int i = 0; i < 3; i++) {
        cJSON *j = call(&r, "POST", "/api/v1/auth/login", NULL,
                        "{\"email\":\"admin@example.com\",\"password\":\"wrong-wrong\"}", NULL);
        assert_int_equal(r.status, 401);
        cJSON_Delete(j);
        free(r.body);
    }
    /* even the right password waits now */
    cJSON *j = call(&r, "POST", "/api/v1/auth/login", NULL,
                    "{\"email\":\"admin@example.com\",\"password\":\"admin-password-1\"}", NULL);
    assert_int_equal(r.status, 429);
    assert_string_equal(code_of(j), "login_throttled");
    cJSON_Delete(j);
    free(r.body);
}

/* The gateway's one-round-trip check (rl.h rl_gate): limits, revocation and their
 * order, straight against Redis. */
static void test_gate_script(void **st)
{
    (void)st;
    redisContext *rc = th_redis_fresh();
    assert_non_null(rc);
    rl_policy ip = {.limit = 2, .period_ms = 60000, .burst = 2};
    rl_policy pr = {.limit = 3, .period_ms = 60000, .burst = 3};
    rl_gate_req rq = {.ip_key = "t:ip",
                      .ip = &ip,
                      .revoked_key = "t:rev",
                      .principal_key = "t:p",
                      .principal = &pr};
    rl_gate_res res;
    char err[UTIL_ERRLEN];
    /* two requests fit the IP burst; each also spends one of the principal's three */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rl_gate(rc, &rq, &res, err, sizeof err), 0);
        assert_true(res.ip_checked && res.ip.allowed);
        assert_int_equal(res.ip.remaining, 1 - i);
        assert_true(res.revoked_checked && !res.revoked);
        assert_true(res.principal_checked && res.principal.allowed);
        assert_int_equal(res.principal.remaining, 2 - i);
    }
    /* the third is refused per IP and must not spend the principal's budget */
    redisReply *before = redisCommand(rc, "GET t:p");
    assert_int_equal(rl_gate(rc, &rq, &res, err, sizeof err), 0);
    assert_true(res.ip_checked && !res.ip.allowed);
    assert_true(res.ip.retry_after_ms > 0 && res.ip.retry_after_ms <= 30000);
    assert_false(res.revoked_checked);
    assert_false(res.principal_checked);
    redisReply *after = redisCommand(rc, "GET t:p");
    assert_string_equal(before->str, after->str);
    freeReplyObject(before);
    freeReplyObject(after);
    /* a revoked token stops the request before the principal limit */
    freeReplyObject(redisCommand(rc, "SET t:rev 1"));
    rq.ip_key = "t:ip2";
    assert_int_equal(rl_gate(rc, &rq, &res, err, sizeof err), 0);
    assert_true(res.ip_checked && res.ip.allowed);
    assert_true(res.revoked_checked && res.revoked);
    assert_false(res.principal_checked);
    /* a flushed script cache is reloaded (EVALSHA -> NOSCRIPT -> EVAL) */
    freeReplyObject(redisCommand(rc, "SCRIPT FLUSH"));
    rq.revoked_key = "t:rev-other";
    rq.ip_key = NULL;
    assert_int_equal(rl_gate(rc, &rq, &res, err, sizeof err), 0);
    assert_false(res.ip_checked);
    assert_true(res.principal_checked && res.principal.allowed);
    assert_int_equal(res.principal.remaining, 0);
    assert_int_equal(rl_gate(rc, &rq, &res, err, sizeof err), 0);
    assert_true(res.principal_checked && !res.principal.allowed);
    /* the same arithmetic as the tested C GCRA: the key's TTL ends when the bucket is full */
    redisReply *ttl = redisCommand(rc, "PTTL t:p");
    assert_true(ttl->integer > 40000 && ttl->integer <= 60000);
    freeReplyObject(ttl);
    /* a reply of the wrong shape is an error, not a verdict */
    redisReply *bad = redisCommand(rc, "PING");
    assert_int_equal(rl_gate_parse(&rq, bad, &res, err, sizeof err), -1);
    freeReplyObject(bad);
    redisFree(rc);
}

/* Many concurrent requests on one principal over the pipelined gate: exactly the
 * budget passes, the rest get 429 with the principal's headers. */
static void test_principal_limit(void **st)
{
    (void)st;
    /* every request from its own address (trusted proxy), so only the principal's
     * budget can run out */
    setenv("PAIMON_TRUST_PROXY", "true", 1);
    start("PAIMON_RATE_LIMIT_BURST=4");
    unsetenv("PAIMON_TRUST_PROXY");
    char *tok = login("admin@example.com", "admin-password-1", NULL);
    resp r;
    int ok = 0, limited = 0;
    for (int i = 0; i < 8; i++) {
        char xff[64];
        snprintf(xff, sizeof xff, "X-Forwarded-For: 10.0.0.%d", i + 1);
        cJSON *j = call(&r, "GET", "/api/v1/auth/me", tok, NULL, xff);
        if (r.status == 200) {
            char want[64];
            snprintf(want, sizeof want, "RateLimit-Remaining: %d", 3 - ok);
            assert_non_null(strcasestr(r.headers, want));
            assert_int_equal(limited, 0);
            ok++;
        } else {
            assert_int_equal(r.status, 429);
            assert_string_equal(code_of(j), "rate_limited");
            assert_non_null(strcasestr(r.headers, "Retry-After: "));
            assert_non_null(strcasestr(r.headers, "RateLimit-Limit: 4"));
            limited++;
        }
        cJSON_Delete(j);
        free(r.body);
    }
    assert_int_equal(ok, 4);
    assert_int_equal(limited, 4);
    /* a bad token is refused before it can spend anyone's budget */
    cJSON *j = call(&r, "GET", "/api/v1/auth/me", "not-a-token", NULL, "X-Forwarded-For: 10.0.1.1");
    assert_int_equal(r.status, 401);
    cJSON_Delete(j);
    free(r.body);
    free(tok);
}

/* Redis stops answering: after the gate's timeout requests are served without limits
 * (fail open, as documented), and the limits come back with Redis. */
static void test_gate_fails_open(void **st)
{
    (void)st;
    start(NULL);
    resp r;
    cJSON *j = call(&r, "GET", "/api/v1/auth/siwe/nonce", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strcasestr(r.headers, "RateLimit-Limit: "));
    cJSON_Delete(j);
    free(r.body);
    redisContext *rc = redisConnect("127.0.0.1", th_redis_port());
    assert_true(rc && !rc->err);
    redisReply *p = redisCommand(rc, "CLIENT PAUSE 2000 ALL");
    assert_true(p && p->type == REDIS_REPLY_STATUS);
    freeReplyObject(p);
    int64_t t0 = util_mono_ms();
    j = call(&r, "GET", "/api/v1/openapi.json", NULL, NULL, NULL);
    int64_t took = util_mono_ms() - t0;
    assert_int_equal(r.status, 200);
    assert_null(strcasestr(r.headers, "RateLimit-Limit: "));
    assert_true(took >= 400 && took < 1900);
    cJSON_Delete(j);
    free(r.body);
    /* the pause ends, the link is retried and the limits apply again */
    freeReplyObject(redisCommand(rc, "CLIENT UNPAUSE"));
    redisFree(rc);
    int back = 0;
    for (int i = 0; i < 40 && !back; i++) {
        util_sleep_ms(100);
        j = call(&r, "GET", "/api/v1/openapi.json", NULL, NULL, NULL);
        assert_int_equal(r.status, 200);
        back = strcasestr(r.headers, "RateLimit-Limit: ") != NULL;
        cJSON_Delete(j);
        free(r.body);
    }
    assert_true(back);
}

static void test_openapi_served_and_linted(void **st)
{
    (void)st;
    start(NULL);
    resp r;
    cJSON *j = call(&r, "GET", "/api/v1/openapi.json", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(cJSON_GetObjectItem(j, "openapi")->valuestring, "3.1.0");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "paths"), "/api/v1/auth/login"));
    cJSON_Delete(j);
    free(r.body);
    j = call(&r, "GET", "/docs", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "swagger-ui"));
    free(r.body);
    j = call(&r, "GET", "/docs/swagger-ui-bundle.js", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(r.len > 100000);
    free(r.body);
    j = call(&r, "GET", "/docs/..%2f..%2fetc%2fpasswd", NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    cJSON_Delete(j);
    free(r.body);
    int rc = 0;
    /* th_repo_path has one static buffer: one call, the spec named relative to it */
    char *out = th_sh_rc(&rc,
                         "cd %s && node_modules/.bin/redocly lint --format=stylish "
                         "../schemas/openapi.yaml 2>&1",
                         th_repo_path("deploy"));
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    free(out);
    assert_int_equal(rc, 0);
}

/* ---------- a stub risk service for the hot-read cache ---------- */

static int stub_fd = -1;
static _Atomic int stub_hits; /* the stub thread counts, the test reads */

static void *stub_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(stub_fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[4096];
        ssize_t n = read(c, req, sizeof req - 1);
        if (n > 0) {
            stub_hits++;
            /* a fund overview as risk answers it (the gateway's answer is checked against
             * openapi.yaml); "block" counts the upstream calls */
            char body[1024], out[1536];
            int bl = snprintf(
                body, sizeof body,
                "{\"success\":true,\"data\":{\"as_of\":\"2026-01-01T00:00:00Z\",\"block\":%d,"
                "\"block_time\":1,\"nav\":{\"total_assets\":\"1\",\"total_supply\":\"1\","
                "\"share_price\":\"1\"},\"liquidity\":{\"l1_value\":\"1\",\"l2_value\":\"0\","
                "\"l3_value\":\"0\",\"redemptions_due\":\"0\"},\"emergency_mode\":false,"
                "\"level\":\"info\",\"holdings\":[],\"metrics\":{}}}",
                stub_hits);
            int ol = snprintf(out, sizeof out,
                              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                              bl, body);
            if (write(c, out, (size_t)ol) != ol)
                stub_hits += 1000;
        }
        close(c);
    }
}

static int hit_of(cJSON *j)
{
    cJSON *h = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "block");
    return cJSON_IsNumber(h) ? h->valueint : -1;
}

/* Fund overview is served from each loop's memory for PAIMON_API_CACHE_TTL: one
 * upstream call for many reads, a fresh one after the TTL. */
static void test_hot_read_cache(void **st)
{
    (void)st;
    stub_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(stub_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)th_port(62))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(stub_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(stub_fd, 16), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stub_main, NULL), 0);
    static char env1[64], env2[] = "PAIMON_API_CACHE_TTL=400ms";
    snprintf(env1, sizeof env1, "PAIMON_INTERNAL_URL_RISK=http://127.0.0.1:%d", th_port(62));
    putenv(env2); /* inherited by the daemon (start() sets only its own variables) */
    start(env1);
    unsetenv("PAIMON_API_CACHE_TTL");
    char *tok = login("admin@example.com", "admin-password-1", NULL);
    resp r;
    cJSON *j = call(&r, "GET", "/api/v1/fund/overview", tok, NULL, NULL);
    assert_int_equal(r.status, 200);
    int first = hit_of(j);
    assert_int_equal(first, 1);
    cJSON_Delete(j);
    free(r.body);
    /* two loops, each with its own cache: at most one upstream call per loop */
    int cached = 0;
    for (int i = 0; i < 8; i++) {
        j = call(&r, "GET", "/api/v1/fund/overview", tok, NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_true(hit_of(j) >= 1 && hit_of(j) <= 2);
        /* a hit is spliced into a fresh envelope: its own request id, not the first's */
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "success")));
        const char *rid = cJSON_GetStringValue(cJSON_GetObjectItem(j, "requestId"));
        assert_non_null(rid);
        char hdr[160];
        snprintf(hdr, sizeof hdr, "X-Request-Id: %s", rid);
        assert_non_null(strcasestr(r.headers, hdr));
        assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(j, "timestamp")));
        cached += strcasestr(r.headers, "X-Cache: hit") != NULL;
        cJSON_Delete(j);
        free(r.body);
    }
    assert_true(stub_hits <= 2);
    assert_true(cached >= 7);
    util_sleep_ms(500);
    int before = stub_hits;
    j = call(&r, "GET", "/api/v1/fund/overview", tok, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(hit_of(j), before + 1); /* stale entries are not served */
    cJSON_Delete(j);
    free(r.body);

    /* Redis holds the shared level: "<produced ms>:<data>", expiring with the TTL */
    redisContext *rc = redisConnect("127.0.0.1", th_redis_port());
    assert_non_null(rc);
    static const char L2KEY[] = "paimon:api:cache:/v1/fund/overview";
    redisReply *rr = redisCommand(rc, "PTTL %s", L2KEY);
    assert_true(rr->type == REDIS_REPLY_INTEGER && rr->integer > 0 && rr->integer <= 400);
    freeReplyObject(rr);
    rr = redisCommand(rc, "GET %s", L2KEY);
    assert_int_equal(rr->type, REDIS_REPLY_STRING);
    char *colon = strchr(rr->str, ':');
    assert_non_null(colon);
    long long produced = strtoll(rr->str, NULL, 10);
    assert_true(produced > util_now_ms() - 5000 && produced <= util_now_ms());
    cJSON *l2 = cJSON_Parse(colon + 1);
    cJSON *wrap = cJSON_CreateObject();
    cJSON_AddItemToObject(wrap, "data", l2);
    assert_int_equal(hit_of(wrap), before + 1);
    cJSON_Delete(wrap);
    freeReplyObject(rr);

    /* once a loop's own copy expires it asks Redis before the service: an answer another
     * loop or replica put there is served without an upstream call */
    util_sleep_ms(450);
    char val[1200];
    snprintf(val, sizeof val,
             "%lld:{\"as_of\":\"2026-01-01T00:00:00Z\",\"block\":777,\"block_time\":1,"
             "\"nav\":{\"total_assets\":\"1\",\"total_supply\":\"1\",\"share_price\":\"1\"},"
             "\"liquidity\":{\"l1_value\":\"1\",\"l2_value\":\"0\",\"l3_value\":\"0\","
             "\"redemptions_due\":\"0\"},\"emergency_mode\":false,\"level\":\"info\","
             "\"holdings\":[],\"metrics\":{}}",
             (long long)util_now_ms());
    freeReplyObject(redisCommand(rc, "SET %s %s PX 5000", L2KEY, val));
    before = stub_hits;
    j = call(&r, "GET", "/api/v1/fund/overview", tok, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(hit_of(j), 777);
    assert_non_null(strcasestr(r.headers, "X-Cache: hit"));
    assert_int_equal(stub_hits, before);
    cJSON_Delete(j);
    free(r.body);

    /* what Redis holds is checked: a corrupt entry or one older than the TTL (another
     * replica's, say) is ignored and the service asked */
    static const char *const BAD[] = {"12:{\"block\":5}", "x:{}", "99999999999999:{not json"};
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        util_sleep_ms(450);
        freeReplyObject(redisCommand(rc, "SET %s %s PX 5000", L2KEY, BAD[i]));
        /* both loops' copies are stale now; whichever answers refreshes from upstream */
        before = stub_hits;
        j = call(&r, "GET", "/api/v1/fund/overview", tok, NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_int_equal(hit_of(j), before + 1);
        cJSON_Delete(j);
        free(r.body);
    }
    redisFree(rc);
    /* the cache never answers an unauthenticated caller */
    j = call(&r, "GET", "/api/v1/fund/overview", NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    cJSON_Delete(j);
    free(r.body);
    shutdown(stub_fd, SHUT_RDWR);
    close(stub_fd);
    pthread_join(th, NULL);
    free(tok);
}

/* The response schemas are specific enough to catch a wrong response: real responses
 * pass, the same responses with one thing wrong do not. */
static void test_response_schemas_can_fail(void **st)
{
    (void)st;
    start(NULL);
    int before = validated;
    resp r;
    cJSON *j = call(&r, "POST", "/api/v1/auth/login", NULL,
                    "{\"email\":\"admin@example.com\",\"password\":\"admin-password-1\"}", NULL);
    assert_int_equal(r.status, 200);
    free(r.body);
    char err[2048];
    cJSON *d = cJSON_GetObjectItem(j, "data");
    char *tok = strdup(cJSON_GetObjectItem(d, "accessToken")->valuestring);
    /* a missing field, a wrong type, an unknown role, an unknown field */
    cJSON *bad = cJSON_Duplicate(j, 1);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(bad, "data"), "refreshToken");
    char *txt = cJSON_PrintUnformatted(bad);
    assert_int_not_equal(
        oa_check_response("POST", "/api/v1/auth/login", 200, NULL, txt, err, sizeof err), 0);
    assert_non_null(strstr(err, "refreshToken"));
    free(txt);
    cJSON_Delete(bad);
    bad = cJSON_Duplicate(j, 1);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(bad, "data"), "expiresIn",
                              cJSON_CreateString("900"));
    txt = cJSON_PrintUnformatted(bad);
    assert_int_not_equal(
        oa_check_response("POST", "/api/v1/auth/login", 200, NULL, txt, err, sizeof err), 0);
    free(txt);
    cJSON_Delete(bad);
    bad = cJSON_Duplicate(j, 1);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetObjectItem(bad, "data"), "user"), "role",
                              cJSON_CreateString("root"));
    txt = cJSON_PrintUnformatted(bad);
    assert_int_not_equal(
        oa_check_response("POST", "/api/v1/auth/login", 200, NULL, txt, err, sizeof err), 0);
    free(txt);
    cJSON_Delete(bad);
    bad = cJSON_Duplicate(j, 1);
    cJSON_AddStringToObject(cJSON_GetObjectItem(bad, "data"), "password", "leak");
    txt = cJSON_PrintUnformatted(bad);
    assert_int_not_equal(
        oa_check_response("POST", "/api/v1/auth/login", 200, NULL, txt, err, sizeof err), 0);
    free(txt);
    cJSON_Delete(bad);
    /* a success envelope where the document promises an error one */
    txt = cJSON_PrintUnformatted(j);
    assert_int_not_equal(
        oa_check_response("POST", "/api/v1/auth/login", 401, NULL, txt, err, sizeof err), 0);
    free(txt);
    cJSON_Delete(j);
    /* another route's data in a valid envelope */
    j = call(&r, "GET", "/api/v1/admin/audit/verify", tok, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_not_equal(
        oa_check_response("GET", "/api/v1/auth/me", 200, NULL, r.body, err, sizeof err), 0);
    cJSON_Delete(j);
    free(r.body);
    assert_true(validated >= before + 2);
    free(tok);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_auth_flows, stop),
        cmocka_unit_test_teardown(test_rbac_validation_audit, stop),
        cmocka_unit_test_teardown(test_rate_limit_and_login_throttle, stop),
        cmocka_unit_test_teardown(test_login_throttle, stop),
        cmocka_unit_test(test_gate_script),
        cmocka_unit_test_teardown(test_principal_limit, stop),
        cmocka_unit_test_teardown(test_gate_fails_open, stop),
        cmocka_unit_test_teardown(test_openapi_served_and_linted, stop),
        cmocka_unit_test_teardown(test_response_schemas_can_fail, stop),
        cmocka_unit_test_teardown(test_hot_read_cache, stop),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fprintf(stderr, "%d responses validated against openapi.yaml\n", validated);
    oa_free();
    if (pg)
        PQfinish(pg);
    curl_global_cleanup();
    return rc;
}
