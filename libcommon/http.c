/* http: internal HTTP server on evhttp — routing, JSON bodies, the §6 envelope,
 * request ids, health and metrics endpoints. See http.h for the contract.
 *
 * Memory: the server owns its routes, checks and the per-request wrappers
 * (http_request), which live from dispatch until their reply. A wrapper replied to
 * inside its handler is freed when the handler returns, so the handler may keep using
 * it (e.g. http_request_id for a log line) after replying. */
#include "http.h"

#include "log.h"
#include "util.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include <sys/socket.h>
#include <netinet/in.h>
#include <netdb.h>
#include <unistd.h>

#define HTTP_MAX_SEGS  32
#define HTTP_LABEL_MAX 512

typedef struct {
    const char *p;
    size_t len;
} seg;

typedef struct {
    char method[8];
    char *pattern;
    seg segs[HTTP_MAX_SEGS]; /* point into pattern */
    size_t nsegs;
    size_t nliteral;
    http_handler fn;
    void *ud;
} route;

typedef struct {
    char *name;
    http_check_fn fn;
    void *ud;
} check;

#define HTTP_METRICS_MEMO 32

struct http_server {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    int port;
    size_t max_body;
    size_t max_headers;
    int draining;
    metrics_registry *metrics;
    route *routes;
    size_t nroutes, caproutes;
    check *checks;
    size_t nchecks, capchecks;
    http_request *live; /* every wrapper not yet freed */
    /* Series already looked up, by (route pattern, method, status): both strings are
     * stable pointers, and a server only runs on its own loop, so no lock. Spares the
     * registry's label parsing and mutex on every request. */
    struct {
        const char *route, *method;
        int status;
        metrics_counter *count;
        metrics_histogram *latency;
    } memo[HTTP_METRICS_MEMO];
    unsigned memo_next;
};

struct http_request {
    http_server *srv;
    struct evhttp_request *ev;
    const char *method;
    int head; /* HEAD served by a GET route: no body goes out */
    char *path;
    const route *rt;
    const char *route_label; /* metrics label: the pattern, or "unmatched" */
    char id[HTTP_REQUEST_ID_MAX + 1];
    struct evkeyvalq query;
    int query_parsed;
    char *params[HTTP_MAX_PARAMS]; /* decoded values, in pattern order */
    size_t nparams;
    int64_t start_us;
    int in_handler, replied, deferred;
    int body_status;
    http_request *prev, *next;
};

/* ---------- small helpers ---------- */

int http_request_id_valid(const char *s)
{
    if (!s)
        return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= HTTP_REQUEST_ID_MAX)
            return 0;
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

static void gen_request_id(char out[33])
{
    unsigned char raw[16];
    static const char hex[] = "0123456789abcdef";
    if (util_random(raw, sizeof raw) != 0) {
        /* getrandom failing is near impossible; an id only has to be unique enough
         * to find a log line, so fall back to the clock. */
        int64_t t = util_mono_us() ^ util_now_ms();
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)i;
    }
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
}

static void iso_timestamp(char *buf, size_t len)
{
    int64_t ms = util_now_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", base, (unsigned)(ms % 1000) % 1000u);
}

/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* Prometheus label value escaping; truncates rather than fails (labels are ours). */
static void label_escape(char *out, size_t outlen, const char *in)
{
    size_t o = 0;
    for (; *in && o + 3 < outlen; in++) {
        if (*in == '\\' || *in == '"') {
            out[o++] = '\\';
            out[o++] = *in;
        } else if (*in == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
}

/* Check errors are free text from drivers; keep the JSON ASCII and single-line. */
static void ascii_sanitize(char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c > 0x7E)
            *s = '?';
    }
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return NULL;
    }
}

static int method_known(const char *m)
{
    static const char *const ok[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(m, ok[i]) == 0)
            return 1;
    return 0;
}

/* Splits "/a/b/c" into segments; "/" has none. -1 when not absolute or too deep. */
static int split_path(const char *path, seg *segs, size_t *nsegs)
{
    if (!path || path[0] != '/')
        return -1;
    *nsegs = 0;
    const char *p = path + 1;
    if (*p == '\0')
        return 0;
    for (;;) {
        if (*nsegs >= HTTP_MAX_SEGS)
            return -1;
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        segs[*nsegs].p = p;
        segs[*nsegs].len = len;
        (*nsegs)++;
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

static int seg_is_param(const seg *s)
{
    return s->len > 1 && s->p[0] == ':';
}

static int route_matches(const route *r, const seg *segs, size_t nsegs)
{
    if (r->nsegs != nsegs)
        return 0;
    for (size_t i = 0; i < nsegs; i++) {
        if (seg_is_param(&r->segs[i])) {
            if (segs[i].len == 0)
                return 0;
        } else if (r->segs[i].len != segs[i].len ||
                   memcmp(r->segs[i].p, segs[i].p, segs[i].len) != 0) {
            return 0;
        }
    }
    return 1;
}

/* ---------- request life ---------- */

static void request_free(http_request *req)
{
    http_server *s = req->srv;
    if (req->prev)
        req->prev->next = req->next;
    else
        s->live = req->next;
    if (req->next)
        req->next->prev = req->prev;
    if (req->query_parsed)
        evhttp_clear_headers(&req->query);
    for (size_t i = 0; i < req->nparams; i++)
        free(req->params[i]);
    free(req->path);
    free(req);
}

static void record_metrics(http_request *req, int status)
{
    http_server *s = req->srv;
    double secs = (double)(util_mono_us() - req->start_us) / 1e6;
    for (int i = 0; i < HTTP_METRICS_MEMO; i++)
        if (s->memo[i].route == req->route_label && s->memo[i].method == req->method &&
            s->memo[i].status == status) {
            metrics_counter_inc(s->memo[i].count);
            metrics_histogram_observe(s->memo[i].latency, secs);
            return;
        }
    char route_esc[HTTP_LABEL_MAX];
    char labels[HTTP_LABEL_MAX + 64];
    label_escape(route_esc, sizeof route_esc, req->route_label);
    snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\",status=\"%d\"", req->method,
             route_esc, status);
    metrics_counter *count = metrics_counter_get(
        s->metrics, "http_requests_total", "HTTP requests served, by route and status", labels);
    snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\"", req->method, route_esc);
    metrics_histogram *latency =
        metrics_histogram_get(s->metrics, "http_request_duration_seconds",
                              "HTTP request latency in seconds", labels, NULL, 0);
    metrics_counter_inc(count);
    metrics_histogram_observe(latency, secs);
    if (count && latency) {
        unsigned i = s->memo_next++ % HTTP_METRICS_MEMO;
        s->memo[i].route = req->route_label;
        s->memo[i].method = req->method;
        s->memo[i].status = status;
        s->memo[i].count = count;
        s->memo[i].latency = latency;
    }
}

static void reply_raw(http_request *req, int status, const char *content_type, const char *body,
                      size_t len)
{
    if (req->replied) {
        log_warn_t(req->id, "http: second reply ignored", "path", req->path);
        return;
    }
    req->replied = 1;
    if (status < 200 || status > 599)
        status = 500;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req->ev);
    if (content_type)
        evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "X-Request-Id", req->id);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *buf = NULL;
    if (!req->head && body && len > 0) {
        buf = evbuffer_new();
        if (buf && evbuffer_add(buf, body, len) != 0) {
            evbuffer_free(buf);
            buf = NULL;
            status = 500;
        }
    }
    evhttp_send_reply(req->ev, status, NULL, buf);
    if (buf)
        evbuffer_free(buf);
    record_metrics(req, status);
    if (status == 503) /* not ready / draining: expected during deploys, not an error */
        log_warn_t(req->id, "http: unavailable", "method", req->method, "path", req->path);
    else if (status >= 500)
        log_error_t(req->id, "http: server error", "method", req->method, "path", req->path,
                    "#status", LOG_I64(status));
    else
        log_debug_t(req->id, "http: served", "method", req->method, "path", req->path, "#status",
                    LOG_I64(status));
    if (!req->in_handler)
        request_free(req);
}

/* Takes root. */
static void reply_cjson(http_request *req, int status, cJSON *root)
{
    char *txt = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!txt) {
        static const char fallback[] =
            "{\"success\":false,\"error\":{\"code\":\"internal_error\",\"message\":\"could not "
            "encode response\",\"details\":null}}";
        reply_raw(req, 500, "application/json", fallback, sizeof fallback - 1);
        return;
    }
    reply_raw(req, status, "application/json", txt, strlen(txt));
    cJSON_free(txt);
}

static cJSON *envelope(int success)
{
    cJSON *root = cJSON_CreateObject();
    if (root)
        cJSON_AddBoolToObject(root, "success", success);
    return root;
}

static void envelope_finish(http_request *req, cJSON *root)
{
    char ts[64];
    iso_timestamp(ts, sizeof ts);
    cJSON_AddStringToObject(root, "timestamp", ts);
    cJSON_AddStringToObject(root, "requestId", req->id);
}

/* ---------- public: replies ---------- */

void http_set_header(http_request *req, const char *name, const char *value)
{
    if (!req || req->replied || !name || !value)
        return;
    /* evhttp refuses CR/LF in values, which is what stops header injection */
    evhttp_add_header(evhttp_request_get_output_headers(req->ev), name, value);
}

void http_defer(http_request *req)
{
    if (req)
        req->deferred = 1;
}

void http_reply_json(http_request *req, int status, cJSON *body)
{
    if (!req) {
        cJSON_Delete(body);
        return;
    }
    if (req->replied) {
        cJSON_Delete(body);
        reply_raw(req, status, NULL, NULL, 0); /* logs the double reply */
        return;
    }
    if (!body)
        body = cJSON_CreateNull();
    reply_cjson(req, status, body);
}

void http_reply_text(http_request *req, int status, const char *content_type, const char *text)
{
    if (!req)
        return;
    if (!text)
        text = "";
    reply_raw(req, status, content_type ? content_type : "text/plain; charset=utf-8", text,
              strlen(text));
}

void http_reply_ok(http_request *req, int status, cJSON *data)
{
    if (!req) {
        cJSON_Delete(data);
        return;
    }
    cJSON *root = envelope(1);
    if (!root) {
        cJSON_Delete(data);
        reply_cjson(req, 500, NULL);
        return;
    }
    if (!data)
        data = cJSON_CreateNull();
    cJSON_AddItemToObject(root, "data", data);
    envelope_finish(req, root);
    reply_cjson(req, status, root);
}

void http_reply_ok_raw(http_request *req, int status, const char *data_json, size_t len)
{
    if (!req)
        return;
    if (!data_json || len == 0) {
        http_reply_ok(req, status, NULL);
        return;
    }
    /* same key order as http_reply_ok; the request id is [A-Za-z0-9._-] only, so it
     * needs no escaping */
    static const char head[] = "{\"success\":true,\"data\":";
    char tail[256], ts[64];
    iso_timestamp(ts, sizeof ts);
    int tn =
        snprintf(tail, sizeof tail, ",\"timestamp\":\"%s\",\"requestId\":\"%s\"}", ts, req->id);
    size_t hn = sizeof head - 1, n = hn + len + (size_t)tn;
    char *buf = util_malloc(n);
    memcpy(buf, head, hn);
    memcpy(buf + hn, data_json, len);
    memcpy(buf + hn + len, tail, (size_t)tn);
    reply_raw(req, status, "application/json", buf, n);
    free(buf);
}

void http_reply_error(http_request *req, int status, const char *code, const char *message,
                      cJSON *details)
{
    if (!req) {
        cJSON_Delete(details);
        return;
    }
    cJSON *root = envelope(0);
    cJSON *e = root ? cJSON_AddObjectToObject(root, "error") : NULL;
    if (!e) {
        cJSON_Delete(details);
        cJSON_Delete(root);
        reply_cjson(req, 500, NULL);
        return;
    }
    cJSON_AddStringToObject(e, "code", code ? code : "error");
    cJSON_AddStringToObject(e, "message", message ? message : "");
    if (!details)
        details = cJSON_CreateNull();
    cJSON_AddItemToObject(e, "details", details);
    envelope_finish(req, root);
    reply_cjson(req, status, root);
}

/* ---------- public: request accessors ---------- */

const char *http_method(const http_request *req)
{
    return req->method;
}
const char *http_path(const http_request *req)
{
    return req->path;
}
const char *http_request_id(const http_request *req)
{
    return req->id;
}
const char *http_route_pattern(const http_request *req)
{
    return req->rt ? req->rt->pattern : NULL;
}

const char *http_query(http_request *req, const char *name)
{
    if (!req || !name || !req->query_parsed)
        return NULL;
    return evhttp_find_header(&req->query, name);
}

const char *http_header(http_request *req, const char *name)
{
    if (!req || !name)
        return NULL;
    return evhttp_find_header(evhttp_request_get_input_headers(req->ev), name);
}

const char *http_param(http_request *req, const char *name)
{
    if (!req || !name || !req->rt)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < req->rt->nsegs && k < req->nparams; i++) {
        const seg *sg = &req->rt->segs[i];
        if (!seg_is_param(sg))
            continue;
        if (strlen(name) == sg->len - 1 && memcmp(name, sg->p + 1, sg->len - 1) == 0)
            return req->params[k];
        k++;
    }
    return NULL;
}

const char *http_query_string(http_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req->ev);
    return uri ? evhttp_uri_get_query(uri) : NULL;
}

const char *http_peer_addr(http_request *req)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(req->ev);
    if (conn)
        evhttp_connection_get_peer(conn, &addr, &port);
    return addr ? addr : "";
}

const char *http_body(http_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req->ev);
    size_t n = in ? evbuffer_get_length(in) : 0;
    if (len)
        *len = n;
    if (n == 0)
        return "";
    const char *p = (const char *)evbuffer_pullup(in, -1);
    if (!p) {
        if (len)
            *len = 0;
        return "";
    }
    return p;
}

static int content_type_is_json(const char *ct)
{
    static const char want[] = "application/json";
    if (!ct)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, want, sizeof want - 1) != 0)
        return 0;
    char c = ct[sizeof want - 1];
    return c == '\0' || c == ';' || c == ' ' || c == '\t';
}

static cJSON *body_fail(http_request *req, int status, char *err, size_t errlen, const char *msg)
{
    req->body_status = status;
    util_err(err, errlen, "%s", msg);
    return NULL;
}

cJSON *http_json_body(http_request *req, char *err, size_t errlen)
{
    if (!req) {
        util_err(err, errlen, "no request");
        return NULL;
    }
    req->body_status = 0;
    if (!content_type_is_json(http_header(req, "Content-Type")))
        return body_fail(req, 415, err, errlen, "Content-Type must be application/json");
    size_t len;
    const char *body = http_body(req, &len);
    if (len > req->srv->max_body)
        return body_fail(req, 413, err, errlen, "request body too large");
    if (len == 0)
        return body_fail(req, 400, err, errlen, "request body is empty");
    if (memchr(body, '\0', len))
        return body_fail(req, 400, err, errlen, "request body contains a NUL byte");
    if (!utf8_valid((const unsigned char *)body, len))
        return body_fail(req, 400, err, errlen, "request body is not valid UTF-8");
    /* cJSON wants a terminated string to prove nothing follows the value */
    char *copy = util_malloc(len + 1);
    memcpy(copy, body, len);
    copy[len] = '\0';
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(copy, &end, 1);
    if (!j) {
        size_t at = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
        free(copy);
        req->body_status = 400;
        util_err(err, errlen, "invalid JSON near byte %zu", at);
        return NULL;
    }
    free(copy);
    return j;
}

int http_body_error_status(const http_request *req)
{
    return req ? req->body_status : 0;
}

cJSON *http_require_json(http_request *req)
{
    char err[UTIL_ERRLEN];
    cJSON *j = http_json_body(req, err, sizeof err);
    if (j || !req)
        return j;
    int st = req->body_status ? req->body_status : 400;
    const char *code = st == 415   ? "unsupported_media_type"
                       : st == 413 ? "payload_too_large"
                                   : "invalid_json";
    http_reply_error(req, st, code, err, NULL);
    return NULL;
}

/* ---------- built-ins ---------- */

static void h_live(http_request *req, void *ud)
{
    (void)ud;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    http_reply_json(req, 200, o);
}

static void h_ready(http_request *req, void *ud)
{
    http_server *s = ud;
    int ok = !s->draining;
    cJSON *o = cJSON_CreateObject();
    cJSON *checks = cJSON_CreateObject();
    for (size_t i = 0; i < s->nchecks; i++) {
        char err[UTIL_ERRLEN] = "";
        int64_t t0 = util_mono_us();
        int rc = s->checks[i].fn(s->checks[i].ud, err, sizeof err);
        int64_t us = util_mono_us() - t0;
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "status", rc == 0 ? "ok" : "fail");
        cJSON_AddNumberToObject(c, "latency_ms", (double)us / 1000.0);
        if (rc != 0) {
            ok = 0;
            if (!err[0])
                util_strlcpy(err, "check failed", sizeof err);
            ascii_sanitize(err);
            cJSON_AddStringToObject(c, "error", err);
        }
        cJSON_AddItemToObject(checks, s->checks[i].name, c);
    }
    cJSON_AddStringToObject(o, "status", s->draining ? "draining" : ok ? "ok" : "fail");
    cJSON_AddItemToObject(o, "checks", checks);
    http_reply_json(req, ok ? 200 : 503, o);
}

static void h_metrics(http_request *req, void *ud)
{
    http_server *s = ud;
    char *txt = metrics_render(s->metrics);
    if (!txt) {
        http_reply_error(req, 500, "internal_error", "metrics unavailable", NULL);
        return;
    }
    reply_raw(req, 200, METRICS_CONTENT_TYPE, txt, strlen(txt));
    free(txt);
}

/* ---------- dispatch ---------- */

static void add_allow(char *allow, size_t len, const char *m)
{
    /* exact token match: the list is "GET, HEAD, POST" style */
    const char *p = allow;
    size_t ml = strlen(m);
    while ((p = strstr(p, m)) != NULL) {
        if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
            return;
        p += ml;
    }
    if (allow[0])
        strncat(allow, ", ", len - strlen(allow) - 1);
    strncat(allow, m, len - strlen(allow) - 1);
}

static void dispatch(struct evhttp_request *ev, void *arg)
{
    http_server *s = arg;
    http_request *req = util_calloc(1, sizeof *req);
    req->srv = s;
    req->ev = ev;
    req->start_us = util_mono_us();
    req->route_label = "unmatched";
    req->next = s->live;
    if (s->live)
        s->live->prev = req;
    s->live = req;
    req->in_handler = 1; /* until the handler (or the early reply) is done */

    const char *rid = evhttp_find_header(evhttp_request_get_input_headers(ev), "X-Request-Id");
    if (http_request_id_valid(rid))
        util_strlcpy(req->id, rid, sizeof req->id);
    else
        gen_request_id(req->id);

    const char *m = method_name(evhttp_request_get_command(ev));
    req->method = m ? m : "OTHER";
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    req->path = util_strdup(path && path[0] ? path : "/");

    seg segs[HTTP_MAX_SEGS];
    size_t nsegs = 0;
    const route *best = NULL;
    char allow[128] = "";
    if (!m) {
        http_reply_error(req, 501, "not_implemented", "method not supported", NULL);
        goto done;
    }
    if (!uri || split_path(req->path, segs, &nsegs) != 0) {
        http_reply_error(req, 400, "bad_request", "malformed request path", NULL);
        goto done;
    }
    const char *want = strcmp(m, "HEAD") == 0 ? "GET" : m;
    req->head = strcmp(m, "HEAD") == 0;
    const route *path_hit = NULL;
    for (size_t i = 0; i < s->nroutes; i++) {
        const route *r = &s->routes[i];
        if (!route_matches(r, segs, nsegs))
            continue;
        if (!path_hit)
            path_hit = r;
        add_allow(allow, sizeof allow, r->method);
        if (strcmp(r->method, "GET") == 0)
            add_allow(allow, sizeof allow, "HEAD");
        if (strcmp(r->method, want) == 0 && (!best || r->nliteral > best->nliteral))
            best = r;
    }
    if (!path_hit) {
        http_reply_error(req, 404, "not_found", "no such resource", NULL);
        goto done;
    }
    if (!best) {
        req->route_label = path_hit->pattern;
        http_set_header(req, "Allow", allow);
        http_reply_error(req, 405, "method_not_allowed", "method not allowed for this resource",
                         NULL);
        goto done;
    }
    req->rt = best;
    req->route_label = best->pattern;

    const char *q = evhttp_uri_get_query(uri);
    if (q) {
        req->query.tqh_first = NULL; /* TAILQ_INIT without <sys/queue.h> */
        req->query.tqh_last = &req->query.tqh_first;
        req->query_parsed = 1;
        if (evhttp_parse_query_str(q, &req->query) != 0) {
            http_reply_error(req, 400, "invalid_query", "malformed query string", NULL);
            goto done;
        }
        for (struct evkeyval *kv = req->query.tqh_first; kv; kv = kv->next.tqe_next) {
            if (!utf8_valid((const unsigned char *)kv->value, strlen(kv->value)) ||
                !utf8_valid((const unsigned char *)kv->key, strlen(kv->key))) {
                http_reply_error(req, 400, "invalid_query", "query is not valid UTF-8", NULL);
                goto done;
            }
        }
    }
    for (size_t i = 0; i < best->nsegs; i++) {
        if (!seg_is_param(&best->segs[i]))
            continue;
        char raw[1024];
        if (segs[i].len >= sizeof raw) {
            http_reply_error(req, 400, "bad_request", "path segment too long", NULL);
            goto done;
        }
        memcpy(raw, segs[i].p, segs[i].len);
        raw[segs[i].len] = '\0';
        size_t dlen = 0;
        char *dec = evhttp_uridecode(raw, 0, &dlen);
        if (!dec || strlen(dec) != dlen || !utf8_valid((unsigned char *)dec, dlen)) {
            free(dec);
            http_reply_error(req, 400, "bad_request", "malformed path parameter", NULL);
            goto done;
        }
        req->params[req->nparams++] = dec;
    }

    {
        struct evbuffer *in = evhttp_request_get_input_buffer(ev);
        if (in && evbuffer_get_length(in) > s->max_body) {
            http_reply_error(req, 413, "payload_too_large", "request body too large", NULL);
            goto done;
        }
    }

    best->fn(req, best->ud);
    if (!req->replied && !req->deferred) {
        log_error_t(req->id, "http: handler returned without a reply", "route", best->pattern);
        http_reply_error(req, 500, "internal_error", "internal error", NULL);
    }

done:
    req->in_handler = 0;
    if (req->replied)
        request_free(req);
}

/* ---------- server ---------- */

static void apply_limits(http_server *s)
{
    /* evhttp's own cap is a memory bound above ours so most oversize bodies still get
     * our 413 envelope; only absurd ones meet evhttp's plain 413. */
    size_t hard = s->max_body > ((size_t)1 << 40) ? s->max_body : s->max_body * 2;
    evhttp_set_max_body_size(s->http, (ev_ssize_t)hard);
    evhttp_set_max_headers_size(s->http, (ev_ssize_t)s->max_headers);
}

static int route_add(http_server *s, const char *method, const char *pattern, http_handler fn,
                     void *ud, char *err, size_t errlen)
{
    if (!s || !method || !pattern || !fn)
        return util_err(err, errlen, "http_route: NULL argument");
    if (!method_known(method))
        return util_err(err, errlen, "http_route: unsupported method %s", method);
    route r;
    memset(&r, 0, sizeof r);
    util_strlcpy(r.method, method, sizeof r.method);
    r.pattern = util_strdup(pattern);
    if (split_path(r.pattern, r.segs, &r.nsegs) != 0 || strpbrk(pattern, "?# \t\r\n")) {
        free(r.pattern);
        return util_err(err, errlen, "http_route: bad pattern %s", pattern);
    }
    size_t nparams = 0;
    for (size_t i = 0; i < r.nsegs; i++) {
        const seg *sg = &r.segs[i];
        if (seg_is_param(sg)) {
            for (size_t k = 1; k < sg->len; k++) {
                if (!(isalnum((unsigned char)sg->p[k]) || sg->p[k] == '_')) {
                    free(r.pattern);
                    return util_err(err, errlen, "http_route: bad parameter in %s", pattern);
                }
            }
            nparams++;
        } else if (sg->len == 0 || sg->p[0] == ':') {
            free(r.pattern);
            return util_err(err, errlen, "http_route: empty segment in %s", pattern);
        } else {
            r.nliteral++;
        }
    }
    if (nparams > HTTP_MAX_PARAMS) {
        free(r.pattern);
        return util_err(err, errlen, "http_route: too many parameters in %s", pattern);
    }
    for (size_t i = 0; i < s->nroutes; i++) {
        if (strcmp(s->routes[i].method, method) == 0 &&
            strcmp(s->routes[i].pattern, pattern) == 0) {
            free(r.pattern);
            return util_err(err, errlen, "http_route: %s %s already routed", method, pattern);
        }
    }
    if (s->nroutes == s->caproutes) {
        size_t cap = s->caproutes ? s->caproutes * 2 : 16;
        route *n = realloc(s->routes, cap * sizeof *n);
        if (!n) {
            free(r.pattern);
            return util_err(err, errlen, "http_route: out of memory");
        }
        /* segs point into each route's own pattern string, so moving the array is safe */
        s->routes = n;
        s->caproutes = cap;
    }
    r.fn = fn;
    r.ud = ud;
    s->routes[s->nroutes++] = r;
    return 0;
}

int http_route(http_server *s, const char *method, const char *pattern, http_handler fn, void *ud)
{
    char err[UTIL_ERRLEN];
    if (route_add(s, method, pattern, fn, ud, err, sizeof err) != 0) {
        log_error("http: route rejected", "error", err);
        return -1;
    }
    return 0;
}

int http_add_check(http_server *s, const char *name, http_check_fn fn, void *ud)
{
    if (!s || !name || !name[0] || !fn)
        return -1;
    for (size_t i = 0; i < s->nchecks; i++)
        if (strcmp(s->checks[i].name, name) == 0)
            return -1;
    if (s->nchecks == s->capchecks) {
        size_t cap = s->capchecks ? s->capchecks * 2 : 4;
        check *n = realloc(s->checks, cap * sizeof *n);
        if (!n)
            return -1;
        s->checks = n;
        s->capchecks = cap;
    }
    s->checks[s->nchecks].name = util_strdup(name);
    s->checks[s->nchecks].fn = fn;
    s->checks[s->nchecks].ud = ud;
    s->nchecks++;
    return 0;
}

void http_set_metrics(http_server *s, metrics_registry *reg)
{
    if (!s)
        return;
    s->metrics = reg ? reg : metrics_global();
    memset(s->memo, 0, sizeof s->memo); /* its series belong to the previous registry */
}

/* A listening socket with SO_REUSEPORT; -1 on failure. */
static evutil_socket_t bind_reuseport(const char *bind_addr, int port)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(bind_addr, ps, &hints, &res) != 0 || !res)
        return -1;
    evutil_socket_t fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        evutil_make_socket_nonblocking(fd) != 0 || evutil_make_socket_closeonexec(fd) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

http_server *http_server_new(struct event_base *base, const char *bind_addr, int port, char *err,
                             size_t errlen)
{
    return http_server_new_ex(base, bind_addr, port, 0, err, errlen);
}

http_server *http_server_new_ex(struct event_base *base, const char *bind_addr, int port, int flags,
                                char *err, size_t errlen)
{
    if (!base || !bind_addr || port < 0 || port > 65535) {
        util_err(err, errlen, "http_server_new: bad arguments");
        return NULL;
    }
    http_server *s = util_calloc(1, sizeof *s);
    s->base = base;
    s->max_body = HTTP_DEFAULT_MAX_BODY;
    s->max_headers = HTTP_DEFAULT_MAX_HEADERS;
    s->metrics = metrics_global();
    s->http = evhttp_new(base);
    if (!s->http) {
        free(s);
        util_err(err, errlen, "http_server_new: evhttp_new failed");
        return NULL;
    }
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_timeout(s->http, HTTP_DEFAULT_TIMEOUT_S);
    /* read (and drop) an oversize body before answering 413, else the client may see a
     * reset instead of the status */
    evhttp_set_flags(s->http, EVHTTP_SERVER_LINGERING_CLOSE);
    apply_limits(s);
    evhttp_set_gencb(s->http, dispatch, s);

    if (flags & HTTP_REUSEPORT) {
        evutil_socket_t fd = bind_reuseport(bind_addr, port);
        s->sock = fd >= 0 ? evhttp_accept_socket_with_handle(s->http, fd) : NULL;
        if (fd >= 0 && !s->sock)
            close(fd);
    } else {
        s->sock = evhttp_bind_socket_with_handle(s->http, bind_addr, (ev_uint16_t)port);
    }
    if (!s->sock) {
        util_err(err, errlen, "http_server_new: cannot bind %s:%d", bind_addr, port);
        http_server_free(s);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(s->sock), (struct sockaddr *)&ss, &sl) != 0) {
        util_err(err, errlen, "http_server_new: getsockname failed");
        http_server_free(s);
        return NULL;
    }
    s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (route_add(s, "GET", "/health/live", h_live, s, err, errlen) != 0 ||
        route_add(s, "GET", "/health/ready", h_ready, s, err, errlen) != 0 ||
        route_add(s, "GET", "/metrics", h_metrics, s, err, errlen) != 0) {
        http_server_free(s);
        return NULL;
    }
    return s;
}

void http_server_free(http_server *s)
{
    if (!s)
        return;
    while (s->live) {
        http_request *req = s->live;
        if (req->replied || req->in_handler) {
            /* cannot happen outside a handler; unlink so the loop ends */
            request_free(req);
            continue;
        }
        http_reply_error(req, 503, "shutting_down", "server is shutting down", NULL);
        if (s->live == req) /* reply did not free it */
            request_free(req);
    }
    if (s->http)
        evhttp_free(s->http);
    for (size_t i = 0; i < s->nroutes; i++)
        free(s->routes[i].pattern);
    free(s->routes);
    for (size_t i = 0; i < s->nchecks; i++)
        free(s->checks[i].name);
    free(s->checks);
    free(s);
}

int http_server_port(const http_server *s)
{
    return s ? s->port : -1;
}

void http_server_set_limits(http_server *s, size_t max_body, size_t max_headers)
{
    if (!s)
        return;
    if (max_body)
        s->max_body = max_body;
    if (max_headers)
        s->max_headers = max_headers;
    apply_limits(s);
}

void http_server_set_timeout(http_server *s, int seconds)
{
    if (s && seconds > 0)
        evhttp_set_timeout(s->http, seconds);
}

void http_server_drain(http_server *s)
{
    if (!s)
        return;
    s->draining = 1;
    if (s->sock) {
        evhttp_del_accept_socket(s->http, s->sock);
        s->sock = NULL;
    }
}

void http_drain_hook(void *server)
{
    http_server_drain(server);
}
