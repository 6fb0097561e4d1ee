/* The real paimon-api against the harness Redis and PostgreSQL: bootstrap admin, login,
 * tokens (expired / tampered / alg none), refresh rotation and reuse, RBAC, body
 * validation and limits, rate limiting, the audit chain and its tamper detection, a
 * service that is not deployed, the OpenAPI document (linted by redocly). */
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
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "migrate.h"
#include "util.h"

static char api_db_url[512], admin_db_url[512];
static int port;
static pid_t daemon_pid;
static PGconn *pg;

typedef struct {
    long status;
    char *body;
    size_t len;
    char headers[4096];
} resp;

static size_t on_body(void *p, size_t s, size_t n, void *ud)
{
    resp *r = ud;
    r->body = realloc(r->body, r->len + s * n + 1);
    memcpy(r->body + r->len, p, s * n);
    r->len += s * n;
    r->body[r->len] = '\0';
    return s * n;
}

static size_t on_header(char *p, size_t s, size_t n, void *ud)
{
    resp *r = ud;
    size_t l = strlen(r->headers);
    if (l + s * n < sizeof r->headers) {
        memcpy(r->headers + l, p, s * n);
        r->headers[l + s * n] = '\0';
    }
    return s * n;
}

/* extra: "Name: value" header or NULL; ctype NULL = application/json when body. */
static cJSON *call(resp *r, const char *method, const char *path, const char *token,
                   const char *body, const char *extra)
{
    memset(r, 0, sizeof *r);
    CURL *h = curl_easy_init();
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
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
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
    char err[UTIL_ERRLEN];
    const char *only[] = {"api"};
    migrate_set *s = migrate_set_load(th_repo_path("migrations"), only, 1, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(migrate_up(pg, s, NULL, NULL, err, sizeof err), 0);
    migrate_set_free(s);
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

    /* pause / resume by the super_admin, visible to everyone */
    j = call(&r, "POST", "/api/v1/admin/pause", admin, "{\"reason\":\"drill\"}", NULL);
    assert_int_equal(r.status, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "paused")));
    cJSON_Delete(j);
    free(r.body);
    redisContext *rc = redisConnect("127.0.0.1", th_redis_port());
    redisReply *rr = redisCommand(rc, "EXISTS paimon:system:paused");
    assert_int_equal(rr->integer, 1);
    freeReplyObject(rr);
    j = call(&r, "POST", "/api/v1/admin/resume", admin, NULL, NULL);
    assert_int_equal(r.status, 200);
    cJSON_Delete(j);
    free(r.body);
    rr = redisCommand(rc, "EXISTS paimon:system:paused");
    assert_int_equal(rr->integer, 0);
    freeReplyObject(rr);
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

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_auth_flows, stop),
        cmocka_unit_test_teardown(test_rbac_validation_audit, stop),
        cmocka_unit_test_teardown(test_rate_limit_and_login_throttle, stop),
        cmocka_unit_test_teardown(test_login_throttle, stop),
        cmocka_unit_test_teardown(test_openapi_served_and_linted, stop),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (pg)
        PQfinish(pg);
    curl_global_cleanup();
    return rc;
}
