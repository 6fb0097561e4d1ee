/* Every gateway route against the real daemons: the shared anvil devchain (between
 * evm_snapshot and evm_revert), one database migrated for every service, paimon-risk,
 * -approval, -rebalance, -listener and -notifier on their own ports, and paimon-api
 * proxying to them with the internal token. Each route is called at least once with the
 * bootstrap super_admin, and every JSON (or CSV) answer is validated against the
 * response schema schemas/openapi.yaml documents for its route and status. Also: bad
 * query values on the new routes give 4xx envelopes, and a service that is down gives
 * the 503 envelope naming it. The last test fails when a route of the table was never
 * called. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/gw.h"
#include "eip712.h"
#include "devchain_fixture.h"
#include "harness.h"
#include "openapi_check.h"
#include "hex.h"
#include "jsonschema.h"
#include "money.h"
#include "opsig.h"
#include "util.h"

/* ---------- state ---------- */

enum { SVC_LISTENER, SVC_APPROVAL, SVC_REBALANCE, SVC_RISK, SVC_NOTIFIER, SVC_API, NDAEMONS };
static const char *const DAEMON[NDAEMONS] = {"listener", "approval", "rebalance",
                                             "risk",     "notifier", "api"};

static struct {
    cJSON *dc;
    char rpc_url[256], ws_url[256], vault[43], opkey[80], chain_id[24];
    char snap[80];
    char db_url[512];
    PGconn *pg;
    pid_t pid[NDAEMONS];
    int port[NDAEMONS];
    char *token;   /* bootstrap super_admin's access token */
    char *refresh; /* its refresh token */
    char *as;      /* when set, calls carry this token instead (owned; reset before each test) */
    unsigned char *called; /* per gw_routes entry */
    /* users with a linked wallet who sign operations (libcommon/opsig.h): the bootstrap
     * super_admin on the vault's admin account (ADMIN_ROLE), an admin on the rebalancer
     * account (REBALANCER_ROLE), an admin on a spare account (no on-chain role) */
    char *sg_tok[3];
    uint8_t sg_key[3][32];
    unsigned long long sg_nonce;
} g;
enum { SG_ADMIN, SG_REB, SG_NOROLE };
static char *op_body(const char *action, const char *target, const char *params, int signer);
static void as_signer(int signer);

typedef th_resp resp;

/* The value of header name in r (static buffer), "" when absent. */
static const char *header_of(const resp *r, const char *name)
{
    static char v[512];
    v[0] = '\0';
    size_t nl = strlen(name);
    for (const char *l = r->headers; l && *l;) {
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *s = l + nl + 1;
            while (*s == ' ')
                s++;
            size_t k = strcspn(s, "\r\n");
            if (k >= sizeof v)
                k = sizeof v - 1;
            memcpy(v, s, k);
            v[k] = '\0';
            return v;
        }
        l = strchr(l, '\n');
        if (l)
            l++;
    }
    return v;
}

/* ---------- responses checked against the OpenAPI document (tests/lib/openapi_check) ---- */

static int validated;

/* Marks the route of the table that method + path reaches (the most literal pattern). */
static void mark_called(const char *method, const char *path)
{
    size_t plen = strcspn(path, "?");
    long best = -1;
    int bestlit = -1;
    for (size_t i = 0; i < gw_nroutes; i++) {
        if (strcmp(gw_routes[i].method, method) != 0)
            continue;
        const char *t = gw_routes[i].pattern, *p = path, *pend = path + plen;
        int ok = 1;
        while (ok && *t && p < pend) {
            if (*t == ':') {
                while (*t && *t != '/')
                    t++;
                const char *s = p;
                while (p < pend && *p != '/')
                    p++;
                ok = p > s;
            } else {
                ok = *t++ == *p++;
            }
        }
        if (ok && !*t && p == pend && oa_literal_segments(gw_routes[i].pattern) > bestlit) {
            best = (long)i;
            bestlit = oa_literal_segments(gw_routes[i].pattern);
        }
    }
    if (best >= 0)
        g.called[best] = 1;
}

/* One request to the gateway; the answer is validated against the document. extra is one
 * "Name: value" header or NULL. Returns the parsed JSON (NULL when not JSON). */
static cJSON *call(resp *r, const char *method, const char *path, const char *body,
                   const char *extra)
{
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g.port[SVC_API], path);
    struct curl_slist *hl = NULL;
    char auth[2048];
    const char *tok = g.as ? g.as : g.token;
    if (tok && !(extra && strncasecmp(extra, "Authorization:", 14) == 0)) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
        hl = curl_slist_append(hl, auth);
    }
    if (body)
        hl = curl_slist_append(hl, "Content-Type: application/json");
    if (extra)
        hl = curl_slist_append(hl, extra);
    th_http(r, method, url, hl, body);
    if (r->status > 0 && strncmp(path, "/api/v1/", 8) == 0) {
        char err[2048];
        const char *ct = header_of(r, "Content-Type");
        char ctype[128];
        util_strlcpy(ctype, ct, sizeof ctype);
        int rc = oa_check_response(method, path, r->status, ctype, r->body, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "%s %s -> %ld does not match openapi.yaml: %s\nbody: %.800s\n", method,
                    path, r->status, err, r->body ? r->body : "");
        if (getenv("PAIMON_ROUTES_DUMP"))
            fprintf(stderr, "DUMP %s %s -> %ld %.3000s\n", method, path, r->status,
                    r->body ? r->body : "");
        assert_int_equal(rc, 0);
        validated++;
    }
    if (r->status > 0)
        mark_called(method, path);
    return r->body ? cJSON_Parse(r->body) : NULL;
}

/* call + the status the test expects; returns the "data" member (owned by *out). */
static cJSON *expect(cJSON **out, long status, const char *method, const char *path,
                     const char *body)
{
    resp r;
    cJSON *j = call(&r, method, path, body, NULL);
    if (r.status != status)
        fprintf(stderr, "%s %s: expected %ld, got %ld: %.600s\n", method, path, status, r.status,
                r.body ? r.body : "");
    free(r.body);
    assert_int_equal(r.status, status);
    *out = j;
    return cJSON_GetObjectItem(j, "data");
}

/* The error code of an error envelope with the given status. */
static void expect_error(long status, const char *code, const char *method, const char *path,
                         const char *body)
{
    cJSON *j = NULL;
    expect(&j, status, method, path, body);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "success")));
    const char *c =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code"));
    assert_non_null(c);
    if (code && strcmp(c, code) != 0)
        fprintf(stderr, "%s %s: code %s, expected %s\n", method, path, c, code);
    if (code)
        assert_string_equal(c, code);
    cJSON_Delete(j);
}

static const char *str_of(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
}

/* ---------- daemons ---------- */

static int health_ready(int port)
{
    int rc = 0;
    char *out = th_sh_rc(&rc,
                         "curl -s -o /dev/null -w '%%{http_code}' --max-time 2 "
                         "http://127.0.0.1:%d/health/ready",
                         port);
    int code = atoi(out);
    free(out);
    return code;
}

static void quiet(void *a, const char *m)
{
    (void)a;
    (void)m;
}

static void start_daemon(int which)
{
    char bin[64], portstr[16], log[512];
    snprintf(bin, sizeof bin, "paimon-%s", DAEMON[which]);
    snprintf(portstr, sizeof portstr, "%d", g.port[which]);
    const char *rd = getenv("PAIMON_TEST_RUN_DIR");
    snprintf(log, sizeof log, "%s/logs/routes-%s.log", rd ? rd : "/tmp", DAEMON[which]);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("PAIMON_REDIS_URL", th_redis_url(), 1);
        setenv("PAIMON_DATABASE_URL", g.db_url, 1);
        setenv("PAIMON_HTTP_PORT", portstr, 1);
        setenv("PAIMON_LOG_LEVEL", "warn", 1);
        setenv("PAIMON_RPC_URLS", g.rpc_url, 1);
        setenv("PAIMON_WS_URL", g.ws_url, 1);
        setenv("PAIMON_CHAIN_ID", g.chain_id, 1);
        setenv("PAIMON_VAULT_ADDRESS", g.vault, 1);
        setenv("PAIMON_ABI_DIR", th_repo_path("schemas/abi"), 1);
        setenv("PAIMON_LISTENER_ABI_DIR", th_repo_path("schemas/abi"), 1);
        setenv("PAIMON_SIGNER_DEV_KEY", g.opkey, 1);
        setenv("PAIMON_CONFIRMATIONS", "1", 1);
        setenv("PAIMON_LISTENER_CONFIRMATIONS", "0", 1);
        setenv("PAIMON_LISTENER_POLL", "200ms", 1);
        setenv("PAIMON_RISK_EVERY", "1s", 1);
        setenv("PAIMON_ROUTES_SLACK_URL", "http://127.0.0.1:1/slack-hook", 1);
        setenv("PAIMON_MASTER_KEY",
               "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1);
        if (which == SVC_API) {
            char u[64];
            static const char *const VAR[SVC_API] = {
                "PAIMON_INTERNAL_URL_LISTENER", "PAIMON_INTERNAL_URL_APPROVAL",
                "PAIMON_INTERNAL_URL_REBALANCE", "PAIMON_INTERNAL_URL_RISK",
                "PAIMON_INTERNAL_URL_NOTIFIER"};
            for (int i = 0; i < SVC_API; i++) {
                snprintf(u, sizeof u, "http://127.0.0.1:%d", g.port[i]);
                setenv(VAR[i], u, 1);
            }
            setenv("PAIMON_INTERNAL_TOKEN", "internal-token-for-tests", 1);
            setenv("PAIMON_WS_PORT", "0", 1);
            setenv("PAIMON_API_THREADS", "2", 1);
            setenv("PAIMON_API_CACHE_TTL", "200ms", 1);
            /* one client calls every route in a few seconds */
            setenv("PAIMON_RATE_LIMIT_BURST", "100000", 1);
            setenv("PAIMON_RATE_LIMIT_PRINCIPAL", "1000000", 1);
            setenv("PAIMON_RATE_LIMIT_IP", "1000000", 1);
            setenv("PAIMON_JWT_SECRET", "test-secret-test-secret-test-secret!", 1);
            setenv("PAIMON_BOOTSTRAP_ADMIN_EMAIL", "Admin@Example.com", 1);
            setenv("PAIMON_BOOTSTRAP_ADMIN_PASSWORD", "admin-password-1", 1);
            setenv("PAIMON_ARGON2_T", "1", 1);
            setenv("PAIMON_ARGON2_M_KIB", "256", 1);
            setenv("PAIMON_OPENAPI_PATH", th_repo_path("schemas/openapi.yaml"), 1);
        }
        execl(th_bin(bin), bin, (char *)NULL);
        _exit(127);
    }
    g.pid[which] = pid;
    int64_t end = util_mono_ms() + 15000;
    while (health_ready(g.port[which]) != 200 && util_mono_ms() < end)
        util_sleep_ms(100);
    if (health_ready(g.port[which]) != 200)
        fprintf(stderr, "%s did not become ready (log %s)\n", bin, log);
    assert_int_equal(health_ready(g.port[which]), 200);
}

/* SIGTERM and wait: 1 when the daemon exited cleanly (status 0). */
static int stop_daemon(int which)
{
    if (g.pid[which] <= 0)
        return 1;
    kill(g.pid[which], SIGTERM);
    int status = 0;
    waitpid(g.pid[which], &status, 0);
    g.pid[which] = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "paimon-%s exited with status %d\n", DAEMON[which], status);
        return 0;
    }
    return 1;
}

static cJSON *rpc(const char *method, const char *params)
{
    char *out = th_sh("curl -s -H 'Content-Type: application/json' -d "
                      "'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":%s}' %s",
                      method, params, g.rpc_url);
    cJSON *j = cJSON_Parse(out);
    free(out);
    cJSON *res = cJSON_DetachItemFromObject(j, "result");
    cJSON_Delete(j);
    return res;
}

static int group_setup(void **state)
{
    (void)state;
    g.dc = dc_json_load(NULL);
    if (!g.dc)
        return -1;
    util_strlcpy(g.rpc_url, str_of(g.dc, "rpcUrl"), sizeof g.rpc_url);
    util_strlcpy(g.ws_url, str_of(g.dc, "wsUrl") ? str_of(g.dc, "wsUrl") : "", sizeof g.ws_url);
    util_strlcpy(g.vault, str_of(cJSON_GetObjectItem(g.dc, "contracts"), "vault"), sizeof g.vault);
    const char *k = str_of(cJSON_GetObjectItem(cJSON_GetObjectItem(g.dc, "accounts"), "operator"),
                           "privateKey");
    if (!k)
        return -1;
    util_strlcpy(g.opkey, k, sizeof g.opkey);
    snprintf(g.chain_id, sizeof g.chain_id, "%.0f",
             cJSON_GetNumberValue(cJSON_GetObjectItem(g.dc, "chainId")));
    cJSON *s = rpc("evm_snapshot", "[]");
    if (!cJSON_IsString(s))
        return -1;
    util_strlcpy(g.snap, s->valuestring, sizeof g.snap);
    cJSON_Delete(s);
    g.called = calloc(gw_nroutes, 1);
    for (int i = 0; i < NDAEMONS; i++)
        g.port[i] = th_port(80 + i);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = NDAEMONS - 1; i >= 0; i--)
        stop_daemon(i);
    if (g.snap[0]) {
        char p[128];
        snprintf(p, sizeof p, "[\"%s\"]", g.snap);
        cJSON_Delete(rpc("evm_revert", p));
    }
    if (g.pg)
        PQfinish(g.pg);
    cJSON_Delete(g.dc);
    oa_free();
    free(g.token);
    free(g.refresh);
    free(g.as);
    free(g.called);
    for (int i = 0; i < 3; i++)
        free(g.sg_tok[i]);
    return 0;
}

static void login(void)
{
    free(g.token);
    free(g.refresh);
    g.token = NULL;
    cJSON *j = NULL;
    cJSON *d = expect(&j, 200, "POST", "/api/v1/auth/login",
                      "{\"email\":\"admin@example.com\",\"password\":\"admin-password-1\"}");
    g.token = strdup(str_of(d, "accessToken"));
    g.refresh = strdup(str_of(d, "refreshToken"));
    cJSON_Delete(j);
}

static char *login_as(const char *email, const char *password)
{
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    cJSON *j = NULL;
    cJSON *d = expect(&j, 200, "POST", "/api/v1/auth/login", body);
    char *t = strdup(str_of(d, "accessToken"));
    cJSON_Delete(j);
    return t;
}

/* Before each test: calls carry the bootstrap super_admin's token again. */
static int as_admin(void **st)
{
    (void)st;
    free(g.as);
    g.as = NULL;
    return 0;
}

/* ---------- the tests ---------- */

static void test_start_stack(void **st)
{
    (void)st;
    util_strlcpy(g.db_url, th_pg_fresh_db("api_routes"), sizeof g.db_url);
    g.pg = th_pg_connect(g.db_url);
    PQsetNoticeProcessor(g.pg, quiet, NULL);
    assert_int_equal(th_pg_migrate(g.pg, NULL), 0);
    redisFree(th_redis_fresh());
    for (int i = 0; i < NDAEMONS; i++)
        start_daemon(i);
    login();
}

static void test_auth_and_admin_routes(void **st)
{
    (void)st;
    cJSON *j = NULL, *d;
    resp r;
    j = call(&r, "GET", "/api/v1/openapi.json", NULL, NULL);
    assert_int_equal(r.status, 200);
    free(r.body);
    cJSON_Delete(j);
    j = call(&r, "GET", "/docs", NULL, NULL);
    assert_int_equal(r.status, 200);
    free(r.body);
    cJSON_Delete(j);
    j = call(&r, "GET", "/docs/init.js", NULL, NULL);
    assert_int_equal(r.status, 200);
    free(r.body);
    cJSON_Delete(j);

    char body[512];
    snprintf(body, sizeof body, "{\"refreshToken\":\"%s\"}", g.refresh);
    d = expect(&j, 200, "POST", "/api/v1/auth/refresh", body);
    free(g.token);
    free(g.refresh);
    g.token = strdup(str_of(d, "accessToken"));
    g.refresh = strdup(str_of(d, "refreshToken"));
    cJSON_Delete(j);
    d = expect(&j, 200, "GET", "/api/v1/auth/me", NULL);
    cJSON_Delete(j);
    d = expect(&j, 200, "GET", "/api/v1/auth/siwe/nonce", NULL);
    cJSON_Delete(j);
    char sig[140];
    memset(sig, '1', sizeof sig);
    sig[0] = '0';
    sig[1] = 'x';
    sig[132] = '\0';
    snprintf(body, sizeof body, "{\"message\":\"not a siwe message\",\"signature\":\"%s\"}", sig);
    resp rr;
    cJSON_Delete(call(&rr, "POST", "/api/v1/auth/siwe/login", body, NULL));
    assert_true(rr.status == 400 || rr.status == 401);
    free(rr.body);
    cJSON_Delete(call(&rr, "POST", "/api/v1/auth/siwe/link", body, NULL));
    assert_true(rr.status == 400 || rr.status == 401);
    free(rr.body);

    d = expect(&j, 201, "POST", "/api/v1/auth/api-keys", "{\"name\":\"routes\"}");
    char kid[80], path[256];
    assert_non_null(str_of(d, "id"));
    util_strlcpy(kid, str_of(d, "id"), sizeof kid);
    cJSON_Delete(j);
    expect(&j, 200, "GET", "/api/v1/auth/api-keys", NULL);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "/api/v1/auth/api-keys/%s", kid);
    expect(&j, 200, "DELETE", path, NULL);
    cJSON_Delete(j);

    d = expect(&j, 201, "POST", "/api/v1/admin/users",
               "{\"email\":\"op@example.com\",\"password\":\"operator-password\",\"role\":"
               "\"viewer\"}");
    char uid[80];
    util_strlcpy(uid, str_of(d, "id"), sizeof uid);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "/api/v1/admin/users/%s", uid);
    expect(&j, 200, "PATCH", path, "{\"role\":\"operator\"}");
    cJSON_Delete(j);
    expect(&j, 200, "GET", "/api/v1/admin/users", NULL);
    cJSON_Delete(j);
    expect(&j, 200, "GET", "/api/v1/admin/queues", NULL);
    cJSON_Delete(j);
    expect(&j, 200, "GET", "/api/v1/admin/dlq", NULL);
    cJSON_Delete(j);
    expect_error(404, "not_found", "POST", "/api/v1/admin/dlq/1-0/replay", NULL);
    expect(&j, 200, "GET", "/api/v1/admin/system", NULL);
    cJSON_Delete(j);
    /* pause and resume are signed operations the gateway verifies */
    as_signer(SG_ADMIN);
    char *ob = op_body("gateway.pause", "", "{\"reason\":\"routes test\"}", SG_ADMIN);
    d = expect(&j, 200, "POST", "/api/v1/admin/pause", ob);
    free(ob);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "paused")));
    cJSON_Delete(j);
    ob = op_body("gateway.resume", "", "{}", SG_ADMIN);
    d = expect(&j, 200, "POST", "/api/v1/admin/resume", ob);
    free(ob);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(d, "paused")));
    cJSON_Delete(j);
    free(g.as);
    g.as = NULL;
    /* every service is up: the deep health says so */
    d = expect(&j, 200, "GET", "/api/v1/admin/health", NULL);
    cJSON *svcs = cJSON_GetObjectItem(d, "services");
    for (int i = 0; i < SVC_API; i++)
        assert_string_equal(str_of(cJSON_GetObjectItem(svcs, DAEMON[i]), "status"), "ok");
    cJSON_Delete(j);
    expect(&j, 200, "GET", "/api/v1/admin/audit?limit=5", NULL);
    cJSON_Delete(j);
    d = expect(&j, 200, "GET", "/api/v1/admin/audit/verify", NULL);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "valid")));
    cJSON_Delete(j);
}

static void test_notifier_routes(void **st)
{
    (void)st;
    cJSON *j = NULL, *d;
    d = expect(&j, 201, "POST", "/api/v1/notifications/channels",
               "{\"id\":\"ops\",\"type\":\"slack\",\"secret_env\":\"PAIMON_ROUTES_SLACK_URL\"}");
    assert_string_equal(str_of(d, "id"), "ops");
    cJSON_Delete(j);
    expect_error(409, NULL, "POST", "/api/v1/notifications/channels",
                 "{\"id\":\"ops\",\"type\":\"slack\",\"secret_env\":\"PAIMON_ROUTES_SLACK_URL\"}");
    d = expect(&j, 200, "GET", "/api/v1/notifications/channels", NULL);
    int found = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(d, "items")) found +=
        !strcmp(str_of(it, "id"), "ops");
    assert_int_equal(found, 1);
    cJSON_Delete(j);
    expect(&j, 200, "GET", "/api/v1/notifications/channels/ops", NULL);
    cJSON_Delete(j);
    expect(&j, 200, "PUT", "/api/v1/notifications/channels/ops", "{\"enabled\":true}");
    cJSON_Delete(j);
    d = expect(&j, 202, "POST", "/api/v1/notifications/test",
               "{\"channel_id\":\"ops\",\"message\":\"routes test\"}");
    cJSON_Delete(j);
    expect(&j, 200, "GET", "/api/v1/notifications/deliveries?limit=5", NULL);
    cJSON_Delete(j);

    expect(&j, 201, "POST", "/api/v1/notifications/routes",
           "{\"id\":\"critical-ops\",\"channels\":[\"ops\"],\"matchers\":[{\"name\":"
           "\"severity\",\"op\":\"=\",\"value\":\"critical\"}]}");
    cJSON_Delete(j);
    expect(&j, 200, "GET", "/api/v1/notifications/routes", NULL);
    cJSON_Delete(j);
    expect(&j, 200, "GET", "/api/v1/notifications/routes/critical-ops", NULL);
    cJSON_Delete(j);
    expect(&j, 200, "PUT", "/api/v1/notifications/routes/critical-ops",
           "{\"id\":\"critical-ops\",\"channels\":[\"ops\"],\"active\":false}");
    cJSON_Delete(j);
    expect(&j, 200, "DELETE", "/api/v1/notifications/routes/critical-ops", NULL);
    cJSON_Delete(j);
    expect_error(404, "not_found", "GET", "/api/v1/notifications/routes/critical-ops", NULL);

    d = expect(&j, 201, "POST", "/api/v1/notifications/silences",
               "{\"matchers\":[{\"name\":\"severity\",\"op\":\"=\",\"value\":\"info\"}],"
               "\"ends_at\":\"2099-01-01T00:00:00Z\",\"created_by\":\"routes\"}");
    char path[256];
    snprintf(path, sizeof path, "/api/v1/notifications/silences/%s", str_of(d, "id"));
    cJSON_Delete(j);
    expect(&j, 200, "GET", "/api/v1/notifications/silences", NULL);
    cJSON_Delete(j);
    expect(&j, 200, "GET", path, NULL);
    cJSON_Delete(j);
    expect(&j, 200, "DELETE", path, NULL);
    cJSON_Delete(j);

    d = expect(&j, 201, "POST", "/api/v1/notifications/webhooks",
               "{\"url\":\"https://example.com/hook\",\"events\":[\"risk.*\"]}");
    snprintf(path, sizeof path, "/api/v1/notifications/webhooks/%s", str_of(d, "id"));
    cJSON_Delete(j);
    expect(&j, 200, "GET", "/api/v1/notifications/webhooks", NULL);
    cJSON_Delete(j);
    expect(&j, 200, "GET", path, NULL);
    cJSON_Delete(j);
    expect(&j, 200, "PUT", path, "{\"active\":false}");
    cJSON_Delete(j);
    expect(&j, 200, "DELETE", path, NULL);
    cJSON_Delete(j);

    expect(&j, 200, "DELETE", "/api/v1/notifications/channels/ops", NULL);
    cJSON_Delete(j);
    expect_error(404, "not_found", "GET", "/api/v1/notifications/channels/ops", NULL);
}

static void test_chain_routes(void **st)
{
    (void)st;
    cJSON *j = NULL, *d;
    /* the listener indexes the devchain's history from block 0 */
    int64_t end = util_mono_ms() + 20000;
    int n = 0;
    do {
        d = expect(&j, 200, "GET", "/api/v1/chain/checkpoints", NULL);
        n = cJSON_GetArraySize(d);
        cJSON_Delete(j);
        if (n == 0)
            util_sleep_ms(200);
    } while (n == 0 && util_mono_ms() < end);
    assert_true(n > 0);
    end = util_mono_ms() + 20000;
    do {
        d = expect(&j, 200, "GET", "/api/v1/fund/flows?event=Deposit&limit=5", NULL);
        n = cJSON_GetArraySize(cJSON_GetObjectItem(d, "items"));
        if (n > 0) {
            const cJSON *it;
            cJSON_ArrayForEach(it, cJSON_GetObjectItem(d, "items"))
                assert_string_equal(str_of(it, "event"), "Deposit");
        }
        cJSON_Delete(j);
        if (n == 0)
            util_sleep_ms(200);
    } while (n == 0 && util_mono_ms() < end);
    assert_true(n > 0);
    expect(&j, 200, "GET", "/api/v1/chain/events?limit=3", NULL);
    cJSON_Delete(j);
    resp r;
    j = call(&r, "GET", "/api/v1/chain/gaps", NULL, NULL);
    assert_true(r.status == 200 || r.status == 404);
    free(r.body);
    cJSON_Delete(j);
}

static void test_approval_routes(void **st)
{
    (void)st;
    cJSON *j = NULL, *d;
    d = expect(&j, 200, "GET", "/api/v1/redemptions?limit=5", NULL);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "items"), 0);
    char path[300];
    if (first) {
        char *enc = curl_easy_escape(NULL, str_of(first, "id"), 0);
        snprintf(path, sizeof path, "/api/v1/redemptions/%s", enc);
        curl_free(enc);
        cJSON *j2 = NULL;
        expect(&j2, 200, "GET", path, NULL);
        cJSON_Delete(j2);
    }
    cJSON_Delete(j);
    expect_error(404, "not_found", "GET", "/api/v1/redemptions/no-such-redemption", NULL);
    d = expect(&j, 200, "GET", "/api/v1/redemptions/forecast", NULL);
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(d, "days")));
    cJSON_Delete(j);

    /* a ticket the admin did not request */
    th_pg_exec(g.pg, "INSERT INTO approval.approval_tickets (id, kind, ref, amount, "
                     "required_approvals, sla_ms, requester) VALUES ('routes-ticket', 'manual', "
                     "'routes-test', 1000, 1, 3600000, 'someone-else')");
    d = expect(&j, 200, "GET", "/api/v1/approvals?status=open", NULL);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(d, "items")) >= 1);
    cJSON_Delete(j);
    d = expect(&j, 200, "GET", "/api/v1/approvals/routes-ticket", NULL);
    assert_string_equal(str_of(d, "id"), "routes-ticket");
    cJSON_Delete(j);
    expect_error(404, "not_found", "GET", "/api/v1/approvals/no-such-ticket", NULL);
    /* the signature fields reach approval, which verifies them (the admin has no linked
     * wallet and the signature is not one); without them the gateway refuses the body */
    char sig[140], body[512];
    memset(sig, 'a', sizeof sig);
    sig[0] = '0';
    sig[1] = 'x';
    sig[132] = '\0';
    /* (the bootstrap admin has a linked wallet since test_signers: a near deadline gets
     * the vote to the signature check) */
    long long dl = (long long)time(NULL) + 600;
    snprintf(body, sizeof body, "{\"signature\":\"%s\",\"nonce\":\"1\",\"deadline\":\"%lld\"}", sig,
             dl);
    resp r;
    cJSON *e = call(&r, "POST", "/api/v1/approvals/routes-ticket/approve", body, NULL);
    assert_true(r.status == 401 || r.status == 403);
    assert_string_not_equal(str_of(cJSON_GetObjectItem(e, "error"), "code"), "validation_failed");
    cJSON_Delete(e);
    free(r.body);
    snprintf(body, sizeof body,
             "{\"signature\":\"%s\",\"nonce\":\"1\",\"deadline\":\"%lld\",\"reason\":"
             "\"no\"}",
             sig, dl);
    e = call(&r, "POST", "/api/v1/approvals/routes-ticket/reject", body, NULL);
    assert_true(r.status == 401 || r.status == 403);
    assert_string_not_equal(str_of(cJSON_GetObjectItem(e, "error"), "code"), "validation_failed");
    cJSON_Delete(e);
    free(r.body);
    expect_error(400, "validation_failed", "POST", "/api/v1/approvals/routes-ticket/approve",
                 "{\"nonce\":\"1\",\"deadline\":\"4102444800\"}");
    expect_error(400, "validation_failed", "POST", "/api/v1/approvals/routes-ticket/reject",
                 "{\"nonce\":\"1\",\"deadline\":\"4102444800\",\"reason\":\"no\"}");
    assert_int_equal(th_pg_scalar(g.pg, "SELECT approvals FROM approval.approval_tickets "
                                        "WHERE id = 'routes-ticket'"),
                     0);

    d = expect(&j, 200, "GET", "/api/v1/approvals/policies", NULL);
    /* write one key back unchanged: a real change, audited by approval */
    const cJSON *kv = NULL, *it;
    cJSON_ArrayForEach(it, d)
    {
        if (cJSON_IsString(it) &&
            strspn(it->valuestring, "0123456789") == strlen(it->valuestring) &&
            it->valuestring[0]) {
            kv = it;
            break;
        }
    }
    assert_non_null(kv);
    snprintf(body, sizeof body, "{\"%s\":\"%s\"}", kv->string, kv->valuestring);
    cJSON *j2 = NULL;
    as_signer(SG_ADMIN);
    char *ob = op_body("approval.policies.update", "", body, SG_ADMIN);
    expect(&j2, 200, "PUT", "/api/v1/approvals/policies", ob);
    free(ob);
    cJSON_Delete(j2);
    cJSON_Delete(j);
    assert_true(th_pg_scalar(g.pg, "SELECT count(*) FROM approval.approval_records WHERE "
                                   "action = 'policy_changed'") >= 1);
}

/* A SIWE message for addr signed with key (personal_sign), as a wallet would make it. */
static void siwe_signed(const char *domain, const char *addr, const char *nonce,
                        const uint8_t key[32], char *msg, size_t msglen, char sighex[133])
{
    uint8_t a[20];
    char cs[43], iat[40], exp[40];
    assert_int_equal(hex_addr_parse(addr, a, NULL, 0), 0);
    hex_addr_checksum(a, cs);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(iat, sizeof iat, "%Y-%m-%dT%H:%M:%SZ", &tm);
    now += 600;
    gmtime_r(&now, &tm);
    strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(msg, msglen,
             "%s wants you to sign in with your Ethereum account:\n%s\n\nSign in to Paimon\n\n"
             "URI: http://%s\nVersion: 1\nChain ID: %s\nNonce: %s\nIssued At: %s\n"
             "Expiration Time: %s",
             domain, cs, domain, g.chain_id, nonce, iat, exp);
    uint8_t sig[65];
    assert_int_equal(eip712_personal_sign((const uint8_t *)msg, strlen(msg), key, sig, NULL, 0), 0);
    hex_encode(sig, 65, 1, sighex, 133);
}

/* JSON string body {"message": msg, "signature": sig}. Owned. */
static char *siwe_body(const char *msg, const char *sig)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "message", msg);
    cJSON_AddStringToObject(b, "signature", sig);
    char *t = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return t;
}

static void nonce_of(char *domain, size_t dl, char *nonce, size_t nl)
{
    cJSON *j = NULL;
    cJSON *d = expect(&j, 200, "GET", "/api/v1/auth/siwe/nonce", NULL);
    util_strlcpy(domain, str_of(d, "domain"), dl);
    util_strlcpy(nonce, str_of(d, "nonce"), nl);
    cJSON_Delete(j);
}

/* Links the account (devchain {address, privateKey}) to the user whose token calls carry
 * now (g.as, else the bootstrap admin) with SIWE, then signs in with that wallet: the
 * returned token (owned) carries the wallet the gateway forwards. key gets its key. */
static char *link_wallet(const cJSON *acct, uint8_t key[32])
{
    const char *addr = str_of(acct, "address"), *khex = str_of(acct, "privateKey");
    assert_non_null(addr);
    assert_non_null(khex);
    assert_int_equal(hex_decode_fixed(khex, key, 32, NULL, 0), 0);
    char domain[128], nonce[96], msg[1024], sig[133];
    cJSON *j = NULL;
    nonce_of(domain, sizeof domain, nonce, sizeof nonce);
    siwe_signed(domain, addr, nonce, key, msg, sizeof msg, sig);
    char *body = siwe_body(msg, sig);
    expect(&j, 201, "POST", "/api/v1/auth/siwe/link", body);
    cJSON_Delete(j);
    free(body);
    nonce_of(domain, sizeof domain, nonce, sizeof nonce);
    siwe_signed(domain, addr, nonce, key, msg, sizeof msg, sig);
    body = siwe_body(msg, sig);
    cJSON *d = expect(&j, 200, "POST", "/api/v1/auth/siwe/login", body);
    char *t = strdup(str_of(d, "accessToken"));
    cJSON_Delete(j);
    free(body);
    return t;
}

/* params (JSON object text) plus nonce, deadline (now + ahead_s) and the EIP-712
 * Operation signature over (action, target, paramsHash) by key. Owned JSON text. */
static char *op_body_n(const char *action, const char *target, const char *params,
                       const uint8_t key[32], unsigned long long nonce, long ahead_s)
{
    cJSON *b = cJSON_Parse(params);
    assert_non_null(b);
    uint8_t ph[32], vault[20], s65[65];
    assert_int_equal(opsig_params_hash(b, ph, NULL, 0), 0);
    assert_int_equal(hex_addr_parse(g.vault, vault, NULL, 0), 0);
    char ns[24], ds[24], sh[133];
    snprintf(ns, sizeof ns, "%llu", nonce);
    snprintf(ds, sizeof ds, "%lld", (long long)time(NULL) + ahead_s);
    money_u256 n, d;
    assert_int_equal(money_from_dec(&n, ns, NULL, 0), 0);
    assert_int_equal(money_from_dec(&d, ds, NULL, 0), 0);
    cJSON *typed =
        opsig_typed_new(strtoull(g.chain_id, NULL, 10), vault, action, target, ph, &n, &d, NULL, 0);
    assert_non_null(typed);
    assert_int_equal(eip712_sign(typed, key, s65, NULL, 0), 0);
    cJSON_Delete(typed);
    hex_encode(s65, 65, 1, sh, sizeof sh);
    cJSON_AddStringToObject(b, "nonce", ns);
    cJSON_AddStringToObject(b, "deadline", ds);
    cJSON_AddStringToObject(b, "signature", sh);
    char *t = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return t;
}

/* Same with a fresh nonce and a 10-minute deadline. */
static char *op_body(const char *action, const char *target, const char *params, int signer)
{
    return op_body_n(action, target, params, g.sg_key[signer], ++g.sg_nonce, 600);
}

/* Calls carry signer's token from now on (until the next test's setup). */
static void as_signer(int signer)
{
    free(g.as);
    g.as = strdup(g.sg_tok[signer]);
}

/* The signing users: see g.sg_tok. */
static void test_signers(void **st)
{
    (void)st;
    const cJSON *acc = cJSON_GetObjectItem(g.dc, "accounts");
    g.sg_nonce = 1000;
    g.sg_tok[SG_ADMIN] = link_wallet(cJSON_GetObjectItem(acc, "admin"), g.sg_key[SG_ADMIN]);
    static const char *const EMAIL[] = {NULL, "rebalancer@example.com", "norole@example.com"};
    for (int i = SG_REB; i <= SG_NOROLE; i++) {
        char body[256];
        cJSON *j = NULL;
        free(g.as);
        g.as = NULL; /* the bootstrap super_admin creates the user */
        snprintf(body, sizeof body,
                 "{\"email\":\"%s\",\"password\":\"signer-password-1\",\"role\":\"admin\"}",
                 EMAIL[i]);
        expect(&j, 201, "POST", "/api/v1/admin/users", body);
        cJSON_Delete(j);
        free(g.as);
        g.as = login_as(EMAIL[i], "signer-password-1");
        const cJSON *a = i == SG_REB ? cJSON_GetObjectItem(acc, "rebalancer")
                                     : cJSON_GetArrayItem(cJSON_GetObjectItem(acc, "spare"), 0);
        g.sg_tok[i] = link_wallet(a, g.sg_key[i]);
    }
}

/* The EIP-712 vote goes through the gateway untouched and approval verifies it: an
 * operator whose wallet holds VIP_APPROVER_ROLE on chain signs in with SIWE and approves;
 * a signature over another decision is refused by approval. */
static void test_signed_vote(void **st)
{
    (void)st;
    const cJSON *ap = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(g.dc, "accounts"), "approvers"), 0);
    uint8_t key[32];
    cJSON *j = NULL, *d = NULL;
    expect(&j, 201, "POST", "/api/v1/admin/users",
           "{\"email\":\"approver@example.com\",\"password\":\"approver-password\",\"role\":"
           "\"operator\"}");
    cJSON_Delete(j);
    g.as = login_as("approver@example.com", "approver-password");
    char *t = link_wallet(ap, key);
    free(g.as);
    g.as = t;

    th_pg_exec(g.pg, "INSERT INTO approval.approval_tickets (id, kind, ref, amount, "
                     "required_approvals, sla_ms, requester) VALUES ('signed-1', 'manual', "
                     "'signed-1', 1000, 1, 3600000, 'someone-else'), ('signed-2', 'manual', "
                     "'signed-2', 1000, 1, 3600000, 'someone-else')");
    uint8_t vault[20];
    assert_int_equal(hex_addr_parse(g.vault, vault, NULL, 0), 0);
    char deadline[24];
    snprintf(deadline, sizeof deadline, "%lld", (long long)time(NULL) + 600);
    money_u256 n, dl;
    assert_int_equal(money_from_dec(&n, "41", NULL, 0), 0);
    assert_int_equal(money_from_dec(&dl, deadline, NULL, 0), 0);
    uint64_t cid = strtoull(g.chain_id, NULL, 10);
    static const char *const TICKET[2] = {"signed-1", "signed-2"};
    for (int t = 0; t < 2; t++) {
        /* ticket 2 carries a signature over "reject": approval refuses it */
        cJSON *typed = eip712_approval_new(cid, vault, TICKET[t], t == 0 ? "approve" : "reject", &n,
                                           &dl, NULL, 0);
        assert_non_null(typed);
        uint8_t s65[65];
        assert_int_equal(eip712_sign(typed, key, s65, NULL, 0), 0);
        cJSON_Delete(typed);
        char sh[133], vb[400], path[128];
        hex_encode(s65, 65, 1, sh, sizeof sh);
        snprintf(vb, sizeof vb, "{\"signature\":\"%s\",\"nonce\":\"41\",\"deadline\":\"%s\"}", sh,
                 deadline);
        snprintf(path, sizeof path, "/api/v1/approvals/%s/approve", TICKET[t]);
        if (t == 0) {
            d = expect(&j, 200, "POST", path, vb);
            assert_string_equal(str_of(d, "status"), "approved");
            cJSON_Delete(j);
        } else {
            expect_error(401, "invalid_signature", "POST", path, vb);
        }
    }
    assert_int_equal(th_pg_scalar(g.pg, "SELECT count(*) FROM approval.approval_tickets WHERE "
                                        "id = 'signed-1' AND status = 'approved'"),
                     1);
    assert_int_equal(th_pg_scalar(g.pg, "SELECT count(*) FROM approval.approval_tickets WHERE "
                                        "id = 'signed-2' AND status = 'open'"),
                     1);
}

static void test_rebalance_routes(void **st)
{
    (void)st;
    cJSON *j = NULL, *d;
    expect(&j, 200, "GET", "/api/v1/rebalance/status", NULL);
    cJSON_Delete(j);
    expect(&j, 200, "POST", "/api/v1/rebalance/preview", "{}");
    cJSON_Delete(j);
    as_signer(SG_REB);
    char *body = op_body("rebalance.trigger", "", "{\"reason\":\"routes test\"}", SG_REB);
    d = expect(&j, 202, "POST", "/api/v1/rebalance/trigger", body);
    free(body);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "queued")));
    cJSON_Delete(j);
    /* the trigger records who asked (the gateway's user header) */
    assert_int_equal(th_pg_scalar(g.pg, "SELECT count(*) FROM rebalance.rebalance_triggers "
                                        "WHERE kind = 'manual' AND detail->>'reason' = "
                                        "'routes test' AND detail ? 'requested_by'"),
                     1);
    expect_error(400, "validation_failed", "POST", "/api/v1/rebalance/trigger",
                 "{\"reason\":\"unsigned\"}");
    /* history without a cursor (its untyped `$2 IS NULL` used to fail with 503) */
    d = expect(&j, 200, "GET", "/api/v1/rebalance/history?limit=5", NULL);
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(d, "items")));
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "items"), 0);
    if (first) {
        char path[200];
        snprintf(path, sizeof path, "/api/v1/rebalance/plans/%s", str_of(first, "id"));
        cJSON *j2 = NULL;
        expect(&j2, 200, "GET", path, NULL);
        cJSON_Delete(j2);
    }
    cJSON_Delete(j);
    expect_error(404, "not_found", "GET", "/api/v1/rebalance/plans/no-such-plan", NULL);
    d = expect(&j, 200, "GET", "/api/v1/assets", NULL);
    cJSON *a0 = cJSON_GetArrayItem(d, 0);
    char path[200];
    if (a0) {
        snprintf(path, sizeof path, "/api/v1/assets/%s", str_of(a0, "token"));
        cJSON *j2 = NULL;
        char *ob =
            op_body("rebalance.asset.update", str_of(a0, "token"), "{\"slippage_bps\":77}", SG_REB);
        cJSON *a = expect(&j2, 200, "PUT", path, ob);
        free(ob);
        assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "slippage_bps")), 77);
        /* the change records the gateway's user, not a placeholder */
        assert_string_not_equal(str_of(a, "updated_by"), "api");
        assert_string_not_equal(str_of(a, "updated_by"), "chain");
        cJSON_Delete(j2);
    }
    cJSON_Delete(j);
    body = op_body("rebalance.asset.update", "0x000000000000000000000000000000000000dead",
                   "{\"enabled\":false}", SG_REB);
    expect_error(404, "not_found", "PUT",
                 "/api/v1/assets/0x000000000000000000000000000000000000dead", body);
    free(body);
}

/* The answer j (a success envelope) mutated by one of the changes below no longer
 * matches the document: the schemas are specific enough to catch a wrong answer. */
enum { MUT_DELETE, MUT_SET_NUMBER, MUT_SET_STRING, MUT_ADD };
static void must_not_validate(const char *path, const cJSON *j, const char *pointer, int how,
                              const char *val)
{
    cJSON *doc = cJSON_Duplicate(j, 1);
    cJSON *parent = cJSON_GetObjectItem(doc, "data");
    char buf[256], *save = NULL;
    util_strlcpy(buf, pointer, sizeof buf);
    char *last = strrchr(buf, '/');
    assert_non_null(last);
    *last++ = '\0';
    for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save))
        parent = cJSON_IsArray(parent) ? cJSON_GetArrayItem(parent, atoi(t))
                                       : cJSON_GetObjectItem(parent, t);
    assert_non_null(parent);
    if (how == MUT_DELETE) {
        assert_non_null(cJSON_GetObjectItem(parent, last));
        cJSON_DeleteItemFromObject(parent, last);
    } else if (how == MUT_ADD) {
        cJSON_AddStringToObject(parent, last, val);
    } else {
        cJSON *v = how == MUT_SET_NUMBER ? cJSON_CreateNumber(atof(val)) : cJSON_CreateString(val);
        assert_non_null(cJSON_GetObjectItem(parent, last));
        cJSON_ReplaceItemInObject(parent, last, v);
    }
    char *txt = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    char err[2048];
    int rc = oa_check_response("GET", path, 200, NULL, txt, err, sizeof err);
    if (rc == 0)
        fprintf(stderr, "%s: mutation of %s was accepted\n", path, pointer);
    free(txt);
    assert_int_not_equal(rc, 0);
}

static const char DAY[] = "2026-01-02";

static void test_risk_and_fund_routes(void **st)
{
    (void)st;
    cJSON *j = NULL, *d;
    /* the first cycle runs within a second or two of start-up */
    int64_t end = util_mono_ms() + 20000;
    resp r;
    for (;;) {
        j = call(&r, "GET", "/api/v1/fund/overview", NULL, NULL);
        free(r.body);
        if (r.status == 200 || util_mono_ms() > end)
            break;
        cJSON_Delete(j);
        util_sleep_ms(250);
    }
    assert_int_equal(r.status, 200);
    d = cJSON_GetObjectItem(j, "data");
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(d, "holdings")) > 0);
    assert_non_null(str_of(cJSON_GetObjectItem(d, "nav"), "share_price"));
    const char *ov = "/api/v1/fund/overview";
    must_not_validate(ov, j, "/nav", MUT_DELETE, NULL);
    must_not_validate(ov, j, "/nav/share_price", MUT_SET_NUMBER, "1");
    must_not_validate(ov, j, "/holdings/0/balance", MUT_SET_STRING, "1.5");
    must_not_validate(ov, j, "/holdings/0/weight_bps", MUT_SET_STRING, "3000");
    must_not_validate(ov, j, "/level", MUT_SET_STRING, "severe");
    must_not_validate(ov, j, "/metrics/liquidity.l1_ratio/level", MUT_SET_STRING, "ok");
    must_not_validate(ov, j, "/internal", MUT_ADD, "leak");
    cJSON_Delete(j);
    d = expect(&j, 200, "GET", "/api/v1/risk/metrics", NULL);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "metrics"), "liquidity.l1_ratio"));
    cJSON_Delete(j);
    d = expect(&j, 200, "GET", "/api/v1/fund/holdings", NULL);
    assert_string_equal(str_of(d, "source"), "current");
    must_not_validate("/api/v1/fund/holdings", j, "/source", MUT_SET_STRING, "snapshot");
    cJSON_Delete(j);
    d = expect(&j, 200, "GET", "/api/v1/fund/nav?interval=1m", NULL);
    assert_true(cJSON_GetArraySize(
                    cJSON_GetObjectItem(cJSON_GetObjectItem(d, "share_price"), "points")) >= 1);
    cJSON_Delete(j);
    d = expect(&j, 200, "GET", "/api/v1/risk/metrics/liquidity.l1_ratio/history?interval=1m", NULL);
    assert_string_equal(str_of(d, "metric"), "liquidity.l1_ratio");
    cJSON_Delete(j);

    /* events: one warning, acknowledged once */
    th_pg_exec(g.pg, "INSERT INTO risk.risk_events (metric, level, previous_level, value, "
                     "threshold, block) VALUES ('concentration.top3', 'warning', 'info', 7000, "
                     "6000, 1)");
    long long eid = th_pg_scalar(g.pg, "SELECT max(id) FROM risk.risk_events WHERE metric = "
                                       "'concentration.top3' AND value = 7000");
    d = expect(&j, 200, "GET", "/api/v1/risk/events?acked=false&limit=10", NULL);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(d, "items")) >= 1);
    must_not_validate("/api/v1/risk/events", j, "/items/0/level", MUT_SET_STRING, "info");
    must_not_validate("/api/v1/risk/events", j, "/next_cursor", MUT_DELETE, NULL);
    cJSON_Delete(j);
    char path[200];
    snprintf(path, sizeof path, "/api/v1/risk/events/%lld/ack", eid);
    d = expect(&j, 200, "POST", path, "{\"note\":\"seen\"}");
    assert_string_equal(str_of(d, "ack_note"), "seen");
    cJSON_Delete(j);
    expect_error(409, "already_acknowledged", "POST", path, "{}");

    d = expect(&j, 200, "GET", "/api/v1/risk/thresholds", NULL);
    cJSON *t0 = cJSON_GetArrayItem(d, 0);
    assert_non_null(t0);
    char body[128];
    snprintf(path, sizeof path, "/api/v1/risk/thresholds/%s", str_of(t0, "metric"));
    snprintf(body, sizeof body, "{\"clear_margin\":%.0f}",
             cJSON_GetNumberValue(cJSON_GetObjectItem(t0, "clear_margin")));
    cJSON_Delete(j);
    as_signer(SG_ADMIN);
    char *ob = op_body("risk.threshold.update", strrchr(path, '/') + 1, body, SG_ADMIN);
    d = expect(&j, 200, "PUT", path, ob);
    free(ob);
    free(g.as);
    g.as = NULL;
    assert_non_null(str_of(d, "updated_by"));
    cJSON_Delete(j);

    /* reports over a snapshot in risk's own format */
    th_pg_exec(g.pg, "INSERT INTO risk.daily_snapshots (day, as_of, total_assets, total_supply, "
                     "share_price, l1_value, metrics, levels) VALUES ('2026-01-02', "
                     "'2026-01-03T00:00:00Z', 5000, 4000, 1250000000000000000, 500, "
                     "'{\"liquidity.l1_ratio\":\"1000\",\"concentration.top3\":\"7000\"}', "
                     "'{\"concentration.top3\":\"warning\"}')");
    th_pg_exec(g.pg, "INSERT INTO risk.asset_holdings_snapshots (day, asset, balance, value, "
                     "weight_bps) VALUES ('2026-01-02', "
                     "'0x8a791620dd6260079bf849dc5567adc3f2fdc318', 10, 20, 4000)");
    snprintf(path, sizeof path, "/api/v1/fund/holdings?date=%s", DAY);
    d = expect(&j, 200, "GET", path, NULL);
    assert_string_equal(str_of(d, "source"), "snapshot");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "items")), 1);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "/api/v1/reports/daily/%s", DAY);
    d = expect(&j, 200, "GET", path, NULL);
    assert_string_equal(str_of(d, "total_assets"), "5000");
    cJSON_Delete(j);
    snprintf(path, sizeof path, "/api/v1/reports/daily/%s?format=csv", DAY);
    j = call(&r, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_null(j);
    assert_non_null(strstr(header_of(&r, "Content-Type"), "text/csv"));
    assert_non_null(strstr(header_of(&r, "Content-Disposition"), "risk-2026-01-02.csv"));
    assert_non_null(strstr(r.body, "fund,total_assets,5000"));
    free(r.body);
    d = expect(&j, 200, "GET", "/api/v1/reports/range?from=2026-01-01&to=2026-01-31", NULL);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "days")), 1);
    must_not_validate("/api/v1/reports/range", j, "/days/0/total_assets", MUT_SET_STRING, "-1");
    must_not_validate("/api/v1/reports/range", j, "/days/0/day", MUT_SET_STRING, "2 Jan");
    assert_string_equal(str_of(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "days"), 0), "level"),
                        "warning");
    cJSON_Delete(j);
    j = call(&r, "GET", "/api/v1/reports/range?from=2026-01-01&to=2026-01-31&format=csv", NULL,
             NULL);
    assert_int_equal(r.status, 200);
    assert_null(j);
    assert_non_null(strstr(r.body, "day,as_of,backfilled,total_assets"));
    assert_non_null(strstr(r.body, "\r\n2026-01-02,2026-01-03T00:00:00Z,false,5000,4000,"));
    free(r.body);
}

/* Bad query values on the new routes: 4xx envelopes from the owning service, passed on. */
/* Every signed operation: unsigned -> 400, signed by another wallet than the caller's
 * linked one -> 401, a caller without the on-chain role (or, for the gateway's pause,
 * without super_admin) -> 403, an expired deadline -> 401, and a replay of a body that
 * succeeded -> 401; in each refused case nothing changed (the operation's own state and
 * the nonce tables). */
typedef struct sigop {
    const char *method, *path, *action, *target;
    char params[256];
    int signer;
    long ok;
    char state_sql[256]; /* "" = the gateway's pause flag */
} sigop;

static char *state_of(const sigop *o)
{
    char buf[512];
    if (!o->state_sql[0]) {
        cJSON *j = NULL;
        cJSON *d = expect(&j, 200, "GET", "/api/v1/admin/system", NULL);
        snprintf(buf, sizeof buf, "%d", cJSON_IsTrue(cJSON_GetObjectItem(d, "paused")));
        cJSON_Delete(j);
    } else {
        snprintf(buf, sizeof buf, "%s", th_pg_textf(g.pg, "%s", o->state_sql));
    }
    long long n = th_pg_scalar(g.pg, "SELECT (SELECT count(*) FROM api.operation_nonces) + "
                                     "(SELECT count(*) FROM rebalance.operation_nonces) + "
                                     "(SELECT count(*) FROM risk.operation_nonces) + "
                                     "(SELECT count(*) FROM approval.operation_nonces)");
    size_t l = strlen(buf);
    snprintf(buf + l, sizeof buf - l, " nonces=%lld", n);
    return strdup(buf);
}

static void test_operation_signatures(void **st)
{
    (void)st;
    char token[64], metric[96], pkey[96], pval[96];
    snprintf(token, sizeof token, "%s",
             th_pg_textf(g.pg, "SELECT token FROM rebalance.asset_configs ORDER BY token LIMIT 1"));
    snprintf(metric, sizeof metric, "%s",
             th_pg_textf(g.pg, "SELECT metric FROM risk.risk_thresholds ORDER BY metric LIMIT 1"));
    long long margin = th_pg_scalarf(
        g.pg, "SELECT clear_margin::bigint FROM risk.risk_thresholds WHERE metric = '%s'", metric);
    snprintf(pkey, sizeof pkey, "%s",
             th_pg_textf(g.pg, "SELECT key FROM approval.approval_policies ORDER BY key LIMIT 1"));
    snprintf(
        pval, sizeof pval, "%s",
        th_pg_textf(g.pg, "SELECT value FROM approval.approval_policies WHERE key = '%s'", pkey));
    char apath[128], tpath[160];
    snprintf(apath, sizeof apath, "/api/v1/assets/%s", token);
    snprintf(tpath, sizeof tpath, "/api/v1/risk/thresholds/%s", metric);
    sigop ops[6] = {
        {"POST", "/api/v1/admin/pause", "gateway.pause", "", "{\"reason\":\"signed pause\"}",
         SG_ADMIN, 200, ""},
        {"POST", "/api/v1/admin/resume", "gateway.resume", "", "{}", SG_ADMIN, 200, ""},
        {"POST", "/api/v1/rebalance/trigger", "rebalance.trigger", "",
         "{\"reason\":\"signed trigger\"}", SG_REB, 202,
         "SELECT count(*)::text FROM rebalance.rebalance_triggers"},
        {"PUT", apath, "rebalance.asset.update", token, "{\"slippage_bps\":55}", SG_REB, 200, ""},
        {"PUT", tpath, "risk.threshold.update", metric, "", SG_ADMIN, 200, ""},
        {"PUT", "/api/v1/approvals/policies", "approval.policies.update", "", "", SG_ADMIN, 200,
         "SELECT count(*)::text FROM approval.approval_records WHERE action = 'policy_changed'"},
    };
    snprintf(ops[3].state_sql, sizeof ops[3].state_sql,
             "SELECT slippage_bps::text || ' ' || updated_by FROM rebalance.asset_configs WHERE "
             "token = '%s'",
             token);
    snprintf(ops[4].params, sizeof ops[4].params, "{\"clear_margin\":%lld}", margin + 1);
    snprintf(ops[4].state_sql, sizeof ops[4].state_sql,
             "SELECT clear_margin::text FROM risk.risk_thresholds WHERE metric = '%s'", metric);
    snprintf(ops[5].params, sizeof ops[5].params, "{\"%s\":\"%s\"}", pkey, pval);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        const sigop *o = &ops[i];
        fprintf(stderr, "# %s %s\n", o->method, o->path);
        as_signer(o->signer);
        char *s0 = state_of(o);
        /* unsigned: the gateway refuses the body */
        expect_error(400, "validation_failed", o->method, o->path, o->params);
        /* signed by a wallet that is not the caller's */
        char *b =
            op_body_n(o->action, o->target, o->params, g.sg_key[SG_NOROLE], ++g.sg_nonce, 600);
        expect_error(401, "invalid_signature", o->method, o->path, b);
        free(b);
        /* signed over another target / action */
        b = op_body(o->action, "other", o->params, o->signer);
        expect_error(401, "invalid_signature", o->method, o->path, b);
        free(b);
        /* expired */
        b = op_body_n(o->action, o->target, o->params, g.sg_key[o->signer], ++g.sg_nonce, -5);
        expect_error(401, "invalid_signature", o->method, o->path, b);
        free(b);
        /* a caller whose wallet lacks the role */
        as_signer(SG_NOROLE);
        b = op_body(o->action, o->target, o->params, SG_NOROLE);
        expect_error(403, "forbidden", o->method, o->path, b);
        free(b);
        as_signer(o->signer);
        char *s1 = state_of(o);
        assert_string_equal(s0, s1);
        /* the real thing, then its replay */
        b = op_body(o->action, o->target, o->params, o->signer);
        cJSON *j = NULL;
        expect(&j, o->ok, o->method, o->path, b);
        cJSON_Delete(j);
        char *s2 = state_of(o);
        assert_string_not_equal(s1, s2);
        expect_error(401, "invalid_signature", o->method, o->path, b);
        char *s3 = state_of(o);
        assert_string_equal(s2, s3);
        free(b);
        free(s0);
        free(s1);
        free(s2);
        free(s3);
    }
    /* the nonce is per wallet: a nonce the rebalancer used is still free for the admin's
     * wallet, and the signer of each recorded nonce is the caller's linked wallet */
    assert_int_equal(th_pg_scalar(g.pg, "SELECT count(*) FROM rebalance.operation_nonces WHERE "
                                        "wallet = lower(wallet) AND action IN "
                                        "('rebalance.trigger', 'rebalance.asset.update')"),
                     th_pg_scalar(g.pg, "SELECT count(*) FROM rebalance.operation_nonces"));
}

static void test_bad_queries(void **st)
{
    (void)st;
    static const char *const BAD[][2] = {
        {"/api/v1/fund/nav?interval=5m", "invalid_request"},
        {"/api/v1/fund/nav?interval=1m&from=2020-01-01&to=2021-01-01", "invalid_request"},
        {"/api/v1/fund/nav?from=yesterday", "invalid_request"},
        {"/api/v1/fund/holdings?date=01-02-2026", "invalid_request"},
        {"/api/v1/fund/flows?limit=0", NULL},
        {"/api/v1/fund/flows?from_block=x", NULL},
        {"/api/v1/risk/metrics/liquidity.l1_ratio/history?interval=1w", "invalid_request"},
        {"/api/v1/risk/metrics/NOT%20A%20METRIC/history", "invalid_request"},
        {"/api/v1/risk/events?level=loud", "invalid_request"},
        {"/api/v1/risk/events?limit=1000", "invalid_request"},
        {"/api/v1/risk/events?cursor=-4", "invalid_request"},
        {"/api/v1/reports/daily/yesterday", "invalid_request"},
        {"/api/v1/reports/daily/2026-01-02?format=xml", "invalid_request"},
        {"/api/v1/reports/range?from=2026-01-01", "invalid_request"},
        {"/api/v1/reports/range?from=2026-02-01&to=2026-01-01", "invalid_request"},
        {"/api/v1/reports/range?from=2020-01-01&to=2026-01-01", "invalid_request"},
        {"/api/v1/redemptions?limit=999", "invalid_request"},
        {"/api/v1/redemptions?owner=nobody", "invalid_request"},
        {"/api/v1/approvals?status=maybe", "invalid_request"},
        {"/api/v1/rebalance/history?limit=0", "invalid_request"},
        {"/api/v1/chain/events?tx_hash=0x12", NULL},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        expect_error(400, BAD[i][1], "GET", BAD[i][0], NULL);
    expect_error(404, "not_found", "GET", "/api/v1/reports/daily/1999-01-01", NULL);
    expect_error(404, "not_found", "GET", "/api/v1/fund/holdings?date=1999-01-01", NULL);
    /* bodies the gateway refuses before any service sees them */
    expect_error(400, "validation_failed", "PUT", "/api/v1/risk/thresholds/liquidity.l1_ratio",
                 "{}");
    expect_error(400, "validation_failed", "PUT",
                 "/api/v1/assets/0x0000000000000000000000000000000000000001",
                 "{\"slippage_bps\":9000}");
    expect_error(400, "validation_failed", "POST", "/api/v1/rebalance/preview",
                 "{\"l1_needed\":\"-5\"}");
}

/* The authorisation matrix of the routes this table added or re-pointed: the least role
 * each needs (the rows), that the table says the same, and that the gateway refuses the
 * role just below with 403 before any service is asked. */
static const struct {
    const char *method, *pattern;
    rbac_role need;
} MATRIX[] = {
    {"GET", "/api/v1/fund/overview", RBAC_VIEWER},
    {"GET", "/api/v1/fund/nav", RBAC_VIEWER},
    {"GET", "/api/v1/fund/holdings", RBAC_VIEWER},
    {"GET", "/api/v1/fund/flows", RBAC_VIEWER},
    {"GET", "/api/v1/redemptions/forecast", RBAC_VIEWER},
    {"GET", "/api/v1/approvals/:id", RBAC_VIEWER},
    {"GET", "/api/v1/approvals/policies", RBAC_VIEWER},
    {"PUT", "/api/v1/approvals/policies", RBAC_ADMIN},
    {"POST", "/api/v1/approvals/:id/approve", RBAC_OPERATOR},
    {"POST", "/api/v1/approvals/:id/reject", RBAC_OPERATOR},
    {"POST", "/api/v1/rebalance/preview", RBAC_OPERATOR},
    {"POST", "/api/v1/rebalance/trigger", RBAC_ADMIN},
    {"GET", "/api/v1/rebalance/history", RBAC_VIEWER},
    {"GET", "/api/v1/rebalance/plans/:id", RBAC_VIEWER},
    {"GET", "/api/v1/assets", RBAC_VIEWER},
    {"PUT", "/api/v1/assets/:token", RBAC_ADMIN},
    {"GET", "/api/v1/risk/metrics", RBAC_VIEWER},
    {"GET", "/api/v1/risk/metrics/:metric/history", RBAC_VIEWER},
    {"GET", "/api/v1/risk/events", RBAC_VIEWER},
    {"POST", "/api/v1/risk/events/:id/ack", RBAC_OPERATOR},
    {"GET", "/api/v1/risk/thresholds", RBAC_VIEWER},
    {"PUT", "/api/v1/risk/thresholds/:metric", RBAC_ADMIN},
    {"GET", "/api/v1/reports/daily/:date", RBAC_VIEWER},
    {"GET", "/api/v1/reports/range", RBAC_VIEWER},
};

static void test_rbac_matrix(void **st)
{
    (void)st;
    cJSON *j = NULL;
    static const char *const ROLES[] = {"viewer", "operator", "admin"};
    char *tok[RBAC_SUPER_ADMIN + 1] = {0};
    for (int i = 0; i < 3; i++) {
        char body[256], email[64];
        snprintf(email, sizeof email, "m-%s@example.com", ROLES[i]);
        snprintf(body, sizeof body,
                 "{\"email\":\"%s\",\"password\":\"matrix-password-1\",\"role\":\"%s\"}", email,
                 ROLES[i]);
        expect(&j, 201, "POST", "/api/v1/admin/users", body);
        cJSON_Delete(j);
        tok[rbac_role_parse(ROLES[i])] = login_as(email, "matrix-password-1");
    }
    for (size_t m = 0; m < sizeof MATRIX / sizeof MATRIX[0]; m++) {
        const gw_route *rt = NULL;
        for (size_t i = 0; i < gw_nroutes; i++)
            if (!strcmp(gw_routes[i].method, MATRIX[m].method) &&
                !strcmp(gw_routes[i].pattern, MATRIX[m].pattern))
                rt = &gw_routes[i];
        if (!rt || rt->need != MATRIX[m].need)
            fprintf(stderr, "matrix row %s %s disagrees with the table\n", MATRIX[m].method,
                    MATRIX[m].pattern);
        assert_non_null(rt);
        assert_int_equal(rt->need, MATRIX[m].need);
        if (MATRIX[m].need <= RBAC_VIEWER)
            continue;
        char path[256];
        size_t o = 0;
        for (const char *s = MATRIX[m].pattern; *s && o + 2 < sizeof path;) {
            if (*s == ':') {
                path[o++] = 'x';
                while (*s && *s != '/')
                    s++;
            } else {
                path[o++] = *s++;
            }
        }
        path[o] = '\0';
        g.as = tok[MATRIX[m].need - 1];
        int get = strcmp(MATRIX[m].method, "GET") == 0;
        resp r;
        cJSON *e = call(&r, MATRIX[m].method, path, get ? NULL : "{}", NULL);
        g.as = NULL;
        if (r.status != 403)
            fprintf(stderr, "%s %s as %s: %ld\n", MATRIX[m].method, path,
                    rbac_role_name(MATRIX[m].need - 1), r.status);
        assert_int_equal(r.status, 403);
        assert_string_equal(str_of(cJSON_GetObjectItem(e, "error"), "code"), "forbidden");
        cJSON_Delete(e);
        free(r.body);
    }
    for (int i = 0; i <= RBAC_SUPER_ADMIN; i++)
        free(tok[i]);
}

/* A service that is down: its routes answer the 503 envelope naming it. */
static void test_service_down(void **st)
{
    (void)st;
    static const struct {
        int svc;
        const char *method, *path, *body;
    } R[] = {
        {SVC_LISTENER, "GET", "/api/v1/chain/events", NULL},
        {SVC_LISTENER, "GET", "/api/v1/fund/flows", NULL},
        {SVC_APPROVAL, "GET", "/api/v1/redemptions/forecast", NULL},
        {SVC_APPROVAL, "GET", "/api/v1/approvals", NULL},
        {SVC_REBALANCE, "GET", "/api/v1/rebalance/status", NULL},
        {SVC_REBALANCE, "PUT", "/api/v1/assets/0x0000000000000000000000000000000000000001",
         "{\"enabled\":true,\"nonce\":\"1\",\"deadline\":\"4102444800\",\"signature\":\"0x"
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}"},
        {SVC_RISK, "GET", "/api/v1/fund/overview", NULL},
        {SVC_RISK, "GET", "/api/v1/fund/nav", NULL},
        {SVC_RISK, "GET", "/api/v1/reports/range?from=2026-01-01&to=2026-01-02", NULL},
        {SVC_RISK, "GET", "/api/v1/risk/thresholds", NULL},
        {SVC_NOTIFIER, "GET", "/api/v1/notifications/channels", NULL},
    };
    for (int s = 0; s < SVC_API; s++)
        assert_true(stop_daemon(s));
    util_sleep_ms(300); /* past the overview's cache TTL */
    for (size_t i = 0; i < sizeof R / sizeof R[0]; i++) {
        cJSON *j = NULL;
        expect(&j, 503, R[i].method, R[i].path, R[i].body);
        cJSON *e = cJSON_GetObjectItem(j, "error");
        assert_string_equal(str_of(e, "code"), "service_unavailable");
        assert_string_equal(str_of(cJSON_GetObjectItem(e, "details"), "service"), DAEMON[R[i].svc]);
        cJSON_Delete(j);
    }
    /* the deep health sees them down (its own status is about Redis and PostgreSQL) */
    cJSON *j = NULL;
    cJSON *d = expect(&j, 200, "GET", "/api/v1/admin/health", NULL);
    cJSON *svcs = cJSON_GetObjectItem(d, "services");
    for (int s = 0; s < SVC_API; s++)
        assert_string_equal(str_of(cJSON_GetObjectItem(svcs, DAEMON[s]), "status"), "down");
    cJSON_Delete(j);
}

/* Last: log out (the token dies), then every route of the table must have been called. */
static void test_every_route_called(void **st)
{
    (void)st;
    char body[300];
    snprintf(body, sizeof body, "{\"refreshToken\":\"%s\"}", g.refresh);
    cJSON *j = NULL;
    expect(&j, 200, "POST", "/api/v1/auth/logout", body);
    cJSON_Delete(j);
    expect_error(401, NULL, "GET", "/api/v1/auth/me", NULL);
    int missing = 0;
    for (size_t i = 0; i < gw_nroutes; i++)
        if (!g.called[i]) {
            fprintf(stderr, "route never called: %s %s\n", gw_routes[i].method,
                    gw_routes[i].pattern);
            missing++;
        }
    assert_int_equal(missing, 0);
    assert_true(stop_daemon(SVC_API));
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        /* one stack for the whole file, started by the first test; order matters */
        cmocka_unit_test_setup(test_start_stack, as_admin),
        cmocka_unit_test_setup(test_signers, as_admin),
        cmocka_unit_test_setup(test_auth_and_admin_routes, as_admin),
        cmocka_unit_test_setup(test_notifier_routes, as_admin),
        cmocka_unit_test_setup(test_chain_routes, as_admin),
        cmocka_unit_test_setup(test_approval_routes, as_admin),
        cmocka_unit_test_setup(test_signed_vote, as_admin),
        cmocka_unit_test_setup(test_rebalance_routes, as_admin),
        cmocka_unit_test_setup(test_risk_and_fund_routes, as_admin),
        cmocka_unit_test_setup(test_operation_signatures, as_admin),
        cmocka_unit_test_setup(test_bad_queries, as_admin),
        cmocka_unit_test_setup(test_rbac_matrix, as_admin),
        cmocka_unit_test_setup(test_service_down, as_admin),
        cmocka_unit_test_setup(test_every_route_called, as_admin),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    fprintf(stderr, "%d responses validated against openapi.yaml\n", validated);
    curl_global_cleanup();
    return rc;
}
