/* Integration tests of http: a real server on an ephemeral loopback port, its loop on
 * its own thread, driven with libcurl — routing and path/query params, 404 / 405,
 * JSON body validation, the envelope, request ids, health checks, /metrics, deferred
 * replies, forgotten replies, and draining. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "http.h"
#include "metrics.h"
#include "util.h"

#define MAX_BODY 1024

static struct event_base *base;
static http_server *srv;
static metrics_registry *reg;
static pthread_t loop_thread;
static CURL *curl; /* one handle: its connection is kept alive across requests */
static atomic_int check_fail;

/* ---------- handlers ---------- */

static void h_item(http_request *req, void *ud)
{
    (void)ud;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", http_param(req, "id"));
    const char *lim = http_query(req, "limit");
    if (lim)
        cJSON_AddStringToObject(d, "limit", lim);
    cJSON_AddStringToObject(d, "route", http_route_pattern(req));
    http_reply_ok(req, 200, d);
}

static void h_item_special(http_request *req, void *ud)
{
    (void)ud;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddBoolToObject(d, "special", 1);
    http_reply_ok(req, 200, d);
}

static void h_two(http_request *req, void *ud)
{
    (void)ud;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "a", http_param(req, "a"));
    cJSON_AddStringToObject(d, "b", http_param(req, "b"));
    http_reply_ok(req, 200, d);
}

static void h_create(http_request *req, void *ud)
{
    (void)ud;
    cJSON *body = http_require_json(req);
    if (!body)
        return;
    http_set_header(req, "Location", "/v1/items/new");
    http_reply_ok(req, 201, body);
}

static void h_noreply(http_request *req, void *ud)
{
    (void)req;
    (void)ud;
}

static void h_double(http_request *req, void *ud)
{
    (void)ud;
    http_reply_text(req, 200, NULL, "first");
    http_reply_error(req, 500, "x", "second", cJSON_CreateObject()); /* ignored, freed */
}

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_reply_ok(arg, 202, cJSON_CreateString("later"));
}

static void h_deferred(http_request *req, void *ud)
{
    (void)ud;
    http_defer(req);
    struct timeval tv = {0, 20000};
    event_base_once(base, -1, EV_TIMEOUT, deferred_cb, req, &tv);
}

static void h_header(http_request *req, void *ud)
{
    (void)ud;
    const char *v = http_header(req, "x-test");
    http_reply_text(req, 200, "text/plain", v ? v : "(none)");
}

static int check_db(void *ud, char *err, size_t errlen)
{
    (void)ud;
    if (atomic_load(&check_fail))
        return util_err(err, errlen, "db down");
    return 0;
}

static int check_redis(void *ud, char *err, size_t errlen)
{
    (void)ud;
    (void)err;
    (void)errlen;
    return 0;
}

/* ---------- server thread ---------- */

static void *loop_main(void *arg)
{
    (void)arg;
    event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    char err[UTIL_ERRLEN];
    if (evthread_use_pthreads() != 0)
        return -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    base = event_base_new();
    srv = http_server_new(base, "127.0.0.1", 0, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "http_server_new: %s\n", err);
        return -1;
    }
    reg = metrics_new();
    http_set_metrics(srv, reg);
    http_server_set_limits(srv, MAX_BODY, 0);
    http_server_set_timeout(srv, 5);
    int rc = 0;
    rc |= http_route(srv, "GET", "/v1/items/:id", h_item, NULL);
    rc |= http_route(srv, "GET", "/v1/items/special", h_item_special, NULL);
    rc |= http_route(srv, "PUT", "/v1/items/:id", h_item, NULL);
    rc |= http_route(srv, "GET", "/v1/pairs/:a/x/:b", h_two, NULL);
    rc |= http_route(srv, "POST", "/v1/items", h_create, NULL);
    rc |= http_route(srv, "GET", "/v1/noreply", h_noreply, NULL);
    rc |= http_route(srv, "GET", "/v1/double", h_double, NULL);
    rc |= http_route(srv, "GET", "/v1/deferred", h_deferred, NULL);
    rc |= http_route(srv, "GET", "/v1/header", h_header, NULL);
    rc |= http_add_check(srv, "db", check_db, NULL);
    rc |= http_add_check(srv, "redis", check_redis, NULL);
    if (rc != 0)
        return -1;
    if (pthread_create(&loop_thread, NULL, loop_main, NULL) != 0)
        return -1;
    curl = curl_easy_init();
    return curl ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    curl_easy_cleanup(curl);
    event_base_loopbreak(base);
    pthread_join(loop_thread, NULL);
    http_server_free(srv);
    event_base_free(base);
    metrics_free(reg);
    curl_global_cleanup();
    return 0;
}

/* ---------- client ---------- */

typedef struct {
    long status;
    char *body;
    size_t len;
    char *headers;
    size_t hlen;
    CURLcode cc;
} resp;

static size_t grow(char **buf, size_t *len, const char *p, size_t n)
{
    char *b = realloc(*buf, *len + n + 1);
    if (!b)
        return 0;
    memcpy(b + *len, p, n);
    *len += n;
    b[*len] = '\0';
    *buf = b;
    return n;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    return grow(&r->body, &r->len, p, sz * n);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    return grow(&r->headers, &r->hlen, p, sz * n);
}

static void resp_free(resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

/* Value of a response header (case-insensitive) into out; 0 when found. */
static int resp_header(const resp *r, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *line = r->headers;
    while (line && *line) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = ll - (size_t)(v - line);
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
        line = eol ? eol + 2 : NULL;
    }
    return -1;
}

static resp do_req_on(CURL *c, const char *method, const char *path, const char *const *hdrs,
                      const char *body, size_t blen)
{
    resp r;
    memset(&r, 0, sizeof r);
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", http_server_port(srv), path);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *sl = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; hdrs && hdrs[i]; i++)
        sl = curl_slist_append(sl, hdrs[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    }
    r.cc = curl_easy_perform(c);
    if (r.cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(sl);
    return r;
}

static resp do_req(const char *method, const char *path, const char *const *hdrs, const char *body,
                   size_t blen)
{
    resp r = do_req_on(curl, method, path, hdrs, body, blen);
    if (r.cc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(r.cc));
    return r;
}

static resp get(const char *path)
{
    return do_req("GET", path, NULL, NULL, 0);
}

/* Parses an envelope and checks its shape: success flag, ISO timestamp, requestId ==
 * X-Request-Id. Returns the parsed JSON (caller deletes). */
static cJSON *envelope_of(const resp *r, int success)
{
    cJSON *j = cJSON_Parse(r->body ? r->body : "");
    if (!j)
        fail_msg("not JSON: %s", r->body ? r->body : "(null)");
    cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "success");
    assert_true(cJSON_IsBool(s));
    assert_int_equal(cJSON_IsTrue(s) ? 1 : 0, success);
    cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "timestamp");
    assert_true(cJSON_IsString(ts));
    assert_int_equal(strlen(ts->valuestring), 24);
    assert_int_equal(ts->valuestring[23], 'Z');
    cJSON *rid = cJSON_GetObjectItemCaseSensitive(j, "requestId");
    assert_true(cJSON_IsString(rid));
    char hdr[256];
    assert_int_equal(resp_header(r, "X-Request-Id", hdr, sizeof hdr), 0);
    assert_string_equal(rid->valuestring, hdr);
    return j;
}

static const char *data_str(cJSON *env, const char *key)
{
    cJSON *d = cJSON_GetObjectItemCaseSensitive(env, "data");
    cJSON *v = cJSON_GetObjectItemCaseSensitive(d, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Asserts an error envelope with this status and code. */
static void expect_error(const resp *r, long status, const char *code)
{
    if (r->status != status)
        fail_msg("want %ld got %ld: %s", status, r->status, r->body ? r->body : "");
    char ct[128];
    assert_int_equal(resp_header(r, "Content-Type", ct, sizeof ct), 0);
    assert_string_equal(ct, "application/json");
    cJSON *j = envelope_of(r, 0);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_true(cJSON_IsObject(e));
    cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    assert_true(cJSON_IsString(c));
    assert_string_equal(c->valuestring, code);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message")));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(e, "details"));
    cJSON_Delete(j);
}

/* ---------- tests ---------- */

static void test_routing_and_params(void **state)
{
    (void)state;
    resp r = get("/v1/items/abc%20d?limit=5&x=%C3%A9");
    assert_int_equal(r.status, 200);
    cJSON *j = envelope_of(&r, 1);
    assert_string_equal(data_str(j, "id"), "abc d");
    assert_string_equal(data_str(j, "limit"), "5");
    assert_string_equal(data_str(j, "route"), "/v1/items/:id");
    cJSON_Delete(j);
    resp_free(&r);

    /* the literal route beats the parameter one, whatever the registration order */
    r = get("/v1/items/special");
    assert_int_equal(r.status, 200);
    j = envelope_of(&r, 1);
    assert_true(cJSON_IsTrue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"), "special")));
    cJSON_Delete(j);
    resp_free(&r);

    r = get("/v1/pairs/one/x/two");
    assert_int_equal(r.status, 200);
    j = envelope_of(&r, 1);
    assert_string_equal(data_str(j, "a"), "one");
    assert_string_equal(data_str(j, "b"), "two");
    cJSON_Delete(j);
    resp_free(&r);

    r = do_req("PUT", "/v1/items/7", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    const char *hdrs[] = {"X-Test: hello", NULL};
    r = do_req("GET", "/v1/header", hdrs, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    resp_free(&r);
}

static void test_not_found_and_method_not_allowed(void **state)
{
    (void)state;
    const char *missing[] = {"/nope", "/v1/items/a/b", "/v1/items/", "/v1", "/", "/v1/pairs/a/y/b"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        resp r = get(missing[i]);
        expect_error(&r, 404, "not_found");
        resp_free(&r);
    }

    resp r = do_req("DELETE", "/v1/items/x", NULL, NULL, 0);
    expect_error(&r, 405, "method_not_allowed");
    char allow[128];
    assert_int_equal(resp_header(&r, "Allow", allow, sizeof allow), 0);
    assert_non_null(strstr(allow, "GET"));
    assert_non_null(strstr(allow, "PUT"));
    assert_non_null(strstr(allow, "HEAD"));
    assert_null(strstr(allow, "DELETE"));
    resp_free(&r);

    r = do_req("POST", "/metrics", NULL, "x", 1);
    expect_error(&r, 405, "method_not_allowed");
    resp_free(&r);

    /* HEAD uses the GET route and sends no body */
    r = do_req("HEAD", "/v1/items/x", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    resp_free(&r);
}

static void test_bad_query_and_params(void **state)
{
    (void)state;
    resp r = get("/v1/items/x?novalue");
    expect_error(&r, 400, "invalid_query");
    resp_free(&r);
    r = get("/v1/items/x?a=%FF");
    expect_error(&r, 400, "invalid_query");
    resp_free(&r);
    r = get("/v1/items/a%00b");
    expect_error(&r, 400, "bad_request");
    resp_free(&r);
    r = get("/v1/items/%C3%28");
    expect_error(&r, 400, "bad_request");
    resp_free(&r);
}

static void test_json_body(void **state)
{
    (void)state;
    const char *json[] = {"Content-Type: application/json", NULL};
    const char *json_cs[] = {"Content-Type: Application/JSON; charset=utf-8", NULL};
    const char *text[] = {"Content-Type: text/plain", NULL};
    const char *jsonish[] = {"Content-Type: application/jsonp", NULL};

    const char *ok = "{\"amount\":\"1000\",\"n\":[1,2]}";
    resp r = do_req("POST", "/v1/items", json, ok, strlen(ok));
    assert_int_equal(r.status, 201);
    char loc[64];
    assert_int_equal(resp_header(&r, "Location", loc, sizeof loc), 0);
    assert_string_equal(loc, "/v1/items/new");
    cJSON *j = envelope_of(&r, 1);
    assert_string_equal(data_str(j, "amount"), "1000");
    cJSON_Delete(j);
    resp_free(&r);

    r = do_req("POST", "/v1/items", json_cs, ok, strlen(ok));
    assert_int_equal(r.status, 201);
    resp_free(&r);

    r = do_req("POST", "/v1/items", text, ok, strlen(ok));
    expect_error(&r, 415, "unsupported_media_type");
    resp_free(&r);
    r = do_req("POST", "/v1/items", jsonish, ok, strlen(ok));
    expect_error(&r, 415, "unsupported_media_type");
    resp_free(&r);
    r = do_req("POST", "/v1/items", NULL, ok, strlen(ok)); /* curl's form default */
    expect_error(&r, 415, "unsupported_media_type");
    resp_free(&r);

    const char *bad[] = {"{", "{} x", "{\"a\":}", "", "nul\0l", "{\"a\":\"\xff\"}", "[1,]"};
    const size_t badlen[] = {1, 4, 6, 0, 5, 8, 4};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = do_req("POST", "/v1/items", json, bad[i], badlen[i]);
        expect_error(&r, 400, "invalid_json");
        resp_free(&r);
    }

    /* just over our limit: our envelope; far over: evhttp's own 413 before buffering */
    char *big = malloc(MAX_BODY * 8);
    assert_non_null(big);
    memset(big, ' ', MAX_BODY * 8);
    big[0] = '[';
    big[MAX_BODY - 1] = ']';
    r = do_req("POST", "/v1/items", json, big, MAX_BODY); /* exactly the limit: fine */
    assert_int_equal(r.status, 201);
    resp_free(&r);
    big[MAX_BODY - 1] = ' ';
    big[MAX_BODY] = ']';
    r = do_req("POST", "/v1/items", json, big, MAX_BODY + 1);
    expect_error(&r, 413, "payload_too_large");
    resp_free(&r);
    r = do_req("POST", "/v1/items", json, big, MAX_BODY * 8);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    free(big);
}

static void test_request_id(void **state)
{
    (void)state;
    const char *good[] = {"X-Request-Id: abc-123_X.y", NULL};
    resp r = do_req("GET", "/v1/items/1", good, NULL, 0);
    char hdr[256];
    assert_int_equal(resp_header(&r, "X-Request-Id", hdr, sizeof hdr), 0);
    assert_string_equal(hdr, "abc-123_X.y");
    cJSON *j = envelope_of(&r, 1);
    cJSON_Delete(j);
    resp_free(&r);

    char longid[160] = "X-Request-Id: ";
    memset(longid + strlen(longid), 'a', 129);
    const char *hostile[][2] = {{"X-Request-Id: a b", NULL},
                                {"X-Request-Id: <script>", NULL},
                                {"X-Request-Id: x\"y", NULL},
                                {longid, NULL},
                                {NULL, NULL}};
    char prev[64] = "";
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        r = do_req("GET", "/v1/items/1", hostile[i][0] ? hostile[i] : NULL, NULL, 0);
        assert_int_equal(resp_header(&r, "X-Request-Id", hdr, sizeof hdr), 0);
        /* generated: 32 lowercase hex, fresh each time */
        assert_int_equal(strlen(hdr), 32);
        assert_int_equal(strspn(hdr, "0123456789abcdef"), 32);
        assert_string_not_equal(hdr, prev);
        util_strlcpy(prev, hdr, sizeof prev);
        j = envelope_of(&r, 1);
        cJSON_Delete(j);
        resp_free(&r);
    }
    /* 128 chars is still accepted */
    longid[strlen(longid) - 1] = '\0';
    const char *edge[] = {longid, NULL};
    r = do_req("GET", "/v1/items/1", edge, NULL, 0);
    assert_int_equal(resp_header(&r, "X-Request-Id", hdr, sizeof hdr), 0);
    assert_int_equal(strlen(hdr), 128);
    resp_free(&r);

    assert_true(http_request_id_valid("a"));
    assert_false(http_request_id_valid(""));
    assert_false(http_request_id_valid(NULL));
    assert_false(http_request_id_valid("a/b"));
}

static void test_handler_mistakes_and_deferred(void **state)
{
    (void)state;
    resp r = get("/v1/noreply");
    expect_error(&r, 500, "internal_error");
    resp_free(&r);

    r = get("/v1/double");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "first");
    resp_free(&r);

    r = get("/v1/deferred");
    assert_int_equal(r.status, 202);
    cJSON *j = envelope_of(&r, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "data")->valuestring, "later");
    cJSON_Delete(j);
    resp_free(&r);
}

static void test_health(void **state)
{
    (void)state;
    resp r = get("/health/live");
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "status")->valuestring, "ok");
    cJSON_Delete(j);
    resp_free(&r);

    atomic_store(&check_fail, 0);
    r = get("/health/ready");
    assert_int_equal(r.status, 200);
    j = cJSON_Parse(r.body);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "status")->valuestring, "ok");
    cJSON *db =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "checks"), "db");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(db, "status")->valuestring, "ok");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(db, "latency_ms")));
    assert_null(cJSON_GetObjectItemCaseSensitive(db, "error"));
    cJSON_Delete(j);
    resp_free(&r);

    atomic_store(&check_fail, 1);
    r = get("/health/ready");
    assert_int_equal(r.status, 503);
    j = cJSON_Parse(r.body);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "status")->valuestring, "fail");
    cJSON *checks = cJSON_GetObjectItemCaseSensitive(j, "checks");
    db = cJSON_GetObjectItemCaseSensitive(checks, "db");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(db, "status")->valuestring, "fail");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(db, "error")->valuestring, "db down");
    cJSON *rd = cJSON_GetObjectItemCaseSensitive(checks, "redis");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(rd, "status")->valuestring, "ok");
    cJSON_Delete(j);
    resp_free(&r);
    atomic_store(&check_fail, 0);
}

static void test_metrics(void **state)
{
    (void)state;
    const char *labels = "method=\"GET\",route=\"/v1/items/:id\",status=\"200\"";
    metrics_counter *c = metrics_counter_get(reg, "http_requests_total",
                                             "HTTP requests served, by route and status", labels);
    assert_non_null(c);
    double before = metrics_counter_value(c);
    metrics_counter *nf =
        metrics_counter_get(reg, "http_requests_total", "HTTP requests served, by route and status",
                            "method=\"GET\",route=\"unmatched\",status=\"404\"");
    double nf_before = metrics_counter_value(nf);

    for (int i = 0; i < 3; i++) {
        resp r = get("/v1/items/m");
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    resp r = get("/no/such/thing");
    resp_free(&r);
    assert_true(metrics_counter_value(c) - before == 3.0);
    assert_true(metrics_counter_value(nf) - nf_before == 1.0);

    r = get("/metrics");
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_int_equal(resp_header(&r, "Content-Type", ct, sizeof ct), 0);
    assert_int_equal(strncmp(ct, "text/plain; version=0.0.4", 25), 0);
    char line[256];
    snprintf(line, sizeof line, "http_requests_total{%s} %.0f", labels, before + 3);
    if (!strstr(r.body, line))
        fail_msg("missing '%s' in:\n%s", line, r.body);
    assert_non_null(strstr(r.body, "# TYPE http_request_duration_seconds histogram"));
    assert_non_null(strstr(
        r.body, "http_request_duration_seconds_count{method=\"GET\",route=\"/v1/items/:id\"}"));
    resp_free(&r);
}

static void test_route_rejections(void **state)
{
    (void)state;
    /* all rejected, so the table the loop thread reads is never written */
    assert_int_equal(http_route(srv, "BREW", "/x", h_item, NULL), -1);
    assert_int_equal(http_route(srv, "GET", "x", h_item, NULL), -1);
    assert_int_equal(http_route(srv, "GET", "/a//b", h_item, NULL), -1);
    assert_int_equal(http_route(srv, "GET", "/a/:b-c", h_item, NULL), -1);
    assert_int_equal(http_route(srv, "GET", "/a?b", h_item, NULL), -1);
    assert_int_equal(http_route(srv, "GET", "/v1/items/:id", h_item, NULL), -1);
    assert_int_equal(http_route(srv, "GET", "/metrics", h_item, NULL), -1);
    assert_int_equal(http_add_check(srv, "db", check_db, NULL), -1);
    struct event_base *b2 = event_base_new();
    assert_null(http_server_new(b2, "127.0.0.1", 70000, NULL, 0));
    assert_null(http_server_new(NULL, "127.0.0.1", 0, NULL, 0));
    char err[UTIL_ERRLEN];
    /* the port is taken by our own server */
    assert_null(http_server_new(b2, "127.0.0.1", http_server_port(srv), err, sizeof err));
    assert_non_null(strstr(err, "bind"));
    event_base_free(b2);
}

static atomic_int drained;

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    http_drain_hook(srv);
    atomic_store(&drained, 1);
}

/* Last: the server accepts no new connection afterwards. */
static void test_drain(void **state)
{
    (void)state;
    resp r = get("/health/ready"); /* opens the kept-alive connection */
    assert_int_equal(r.status, 200);
    resp_free(&r);
    struct timeval zero = {0, 0};
    assert_int_equal(event_base_once(base, -1, EV_TIMEOUT, drain_cb, NULL, &zero), 0);
    for (int i = 0; i < 200 && !atomic_load(&drained); i++)
        util_sleep_ms(5);
    assert_true(atomic_load(&drained));

    r = get("/health/ready"); /* same connection */
    assert_int_equal(r.status, 503);
    cJSON *j = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "status")->valuestring, "draining");
    cJSON_Delete(j);
    resp_free(&r);

    CURL *fresh = curl_easy_init();
    r = do_req_on(fresh, "GET", "/health/live", NULL, NULL, 0);
    assert_int_equal(r.cc, CURLE_COULDNT_CONNECT);
    resp_free(&r);
    curl_easy_cleanup(fresh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_and_params),
        cmocka_unit_test(test_not_found_and_method_not_allowed),
        cmocka_unit_test(test_bad_query_and_params),
        cmocka_unit_test(test_json_body),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_handler_mistakes_and_deferred),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_route_rejections),
        cmocka_unit_test(test_drain),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
