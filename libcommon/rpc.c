/* rpc: JSON-RPC over libcurl with failover, breakers and stale-tip checks (see rpc.h).
 *
 * Ownership: the client owns its endpoints, their idle curl handles and the copied
 * URLs; every cJSON it returns belongs to the caller. */
#include "rpc.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "hex.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define POOL_MAX 8

/* Why an attempt on an endpoint did not produce a usable answer. */
typedef enum {
    K_OK = 0,
    K_CONNECT,
    K_TIMEOUT,
    K_HTTP_5XX,
    K_HTTP_429,
    K_HTTP_STATUS,
    K_TOO_LARGE,
    K_INVALID,
    K_TRANSPORT,
    K_RPC_NODE,
    K_RPC_LIMIT,
    K_RPC_RATE,
    K_STALE,
    K_COUNT
} fail_kind;

static const char *const kind_names[K_COUNT] = {
    "ok",        "connect",          "timeout",   "http_5xx", "http_429",  "http_status",
    "too_large", "invalid_response", "transport", "rpc_node", "rpc_limit", "rpc_rate_limit",
    "stale",
};

typedef struct endpoint {
    char *url;
    char host[128];
    size_t idx;
    CURL *idle[POOL_MAX];
    size_t nidle;
    rpc_breaker state;
    int fails;
    int probe_inflight;
    int64_t open_until;
    int64_t cooldown;
    uint64_t head;
    int64_t head_adv;
    uint64_t requests, failures;
    metrics_counter *m_req;
    metrics_counter *m_err[K_COUNT];
    metrics_histogram *m_lat;
    metrics_gauge *m_breaker;
    metrics_gauge *m_head;
} endpoint;

struct rpc_client {
    rpc_config cfg;
    char name[64];
    pthread_mutex_t mu;
    atomic_uint_fast64_t next_id;
    struct curl_slist *headers;
    metrics_counter *m_failover;
    size_t n;
    endpoint ep[];
};

/* ------------------------------------------------------------------ errors */

void rpc_error_init(rpc_error *e)
{
    if (e) {
        memset(e, 0, sizeof *e);
    }
}

void rpc_error_clear(rpc_error *e)
{
    if (!e) {
        return;
    }
    cJSON_Delete(e->data);
    memset(e, 0, sizeof *e);
}

static void seterr(rpc_error *e, rpc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(rpc_error *e, rpc_status st, const char *fmt, ...)
{
    if (!e) {
        return;
    }
    cJSON_Delete(e->data);
    e->data = NULL;
    e->status = st;
    e->code = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

uint8_t *rpc_error_revert_data(const rpc_error *e, size_t *len)
{
    if (!e || e->status != RPC_ERR_RPC || !e->data) {
        return NULL;
    }
    const cJSON *d = e->data;
    if (cJSON_IsObject(d)) {
        d = cJSON_GetObjectItemCaseSensitive(d, "data");
    }
    if (!cJSON_IsString(d) || !hex_has_prefix(d->valuestring)) {
        return NULL;
    }
    return hex_decode_new(d->valuestring, len, NULL, 0);
}

static int has(const char *msg, const char *needle)
{
    return msg && strcasestr(msg, needle);
}

rpc_error_class rpc_error_classify(long code, const char *message)
{
    /* Rate limits first: providers use -32005, -32029, 429 and plain -32000 texts. */
    if (code == -32005 || code == -32029 || code == 429 || has(message, "rate limit") ||
        has(message, "too many requests") || has(message, "exceeded the quota") ||
        has(message, "capacity exceeded")) {
        return RPC_CLASS_RATE_LIMIT;
    }
    /* Reverts and request errors get the same answer from every node. */
    if (code == 3 || code == -32602 || code == -32600 || code == -32700 ||
        has(message, "execution reverted") || has(message, "revert") ||
        has(message, "nonce too low") || has(message, "nonce too high") ||
        has(message, "insufficient funds") || has(message, "underpriced") ||
        has(message, "already known") || has(message, "intrinsic gas") ||
        has(message, "gas limit") || has(message, "invalid sender") ||
        has(message, "invalid argument") || has(message, "invalid params")) {
        return RPC_CLASS_DETERMINISTIC;
    }
    if (code == -32601 || code == -32004 || has(message, "block range") ||
        has(message, "range too large") || has(message, "more than") ||
        has(message, "query returned") || has(message, "response size") ||
        has(message, "limit exceeded") || has(message, "not supported") ||
        has(message, "method not found") || has(message, "does not exist")) {
        return RPC_CLASS_LIMIT;
    }
    if (code == -32603 || code == -32000 || code == -32001 || code == -32002 || code == -32003 ||
        (code <= -32000 && code >= -32099)) {
        return RPC_CLASS_NODE;
    }
    return RPC_CLASS_DETERMINISTIC;
}

/* ------------------------------------------------------------------ client */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int parse_host(const char *url, char *host, size_t hostlen, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    if (!u) {
        return util_err(err, errlen, "rpc: out of memory");
    }
    char *scheme = NULL, *h = NULL, *port = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK) {
        util_err(err, errlen, "rpc: invalid endpoint URL");
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        util_err(err, errlen, "rpc: endpoint URL must be http or https");
        goto out;
    }
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0);
    snprintf(host, hostlen, "%s%s%s", h, port ? ":" : "", port ? port : "");
    rc = 0;
out:
    curl_free(scheme);
    curl_free(h);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

static void ep_set_state(endpoint *ep, rpc_breaker st)
{
    if (ep->state != st) {
        log_msg(st == RPC_BREAKER_OPEN ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, NULL,
                "rpc endpoint breaker", "host", ep->host, "state",
                st == RPC_BREAKER_OPEN ? "open"
                                       : (st == RPC_BREAKER_HALF_OPEN ? "half_open" : "closed"),
                (const char *)NULL);
    }
    ep->state = st;
    metrics_gauge_set(ep->m_breaker, (double)st);
}

rpc_client *rpc_client_new(const rpc_config *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->urls || cfg->nurls == 0 || cfg->nurls > RPC_MAX_ENDPOINTS) {
        util_err(err, errlen, "rpc: need 1..%d endpoint URLs", RPC_MAX_ENDPOINTS);
        return NULL;
    }
    if (cfg->timeout_ms < 0 || cfg->connect_timeout_ms < 0 || cfg->breaker_threshold < 0 ||
        cfg->breaker_cooldown_ms < 0 || cfg->breaker_max_cooldown_ms < 0 ||
        cfg->rate_limit_default_ms < 0 || cfg->retry_after_max_ms < 0) {
        util_err(err, errlen, "rpc: negative timeout or threshold");
        return NULL;
    }
    char hosts[RPC_MAX_ENDPOINTS][128];
    for (size_t i = 0; i < cfg->nurls; i++) {
        if (!cfg->urls[i] || parse_host(cfg->urls[i], hosts[i], sizeof hosts[i], err, errlen)) {
            if (!cfg->urls[i]) {
                util_err(err, errlen, "rpc: NULL endpoint URL");
            }
            return NULL;
        }
    }
    pthread_once(&curl_once, curl_init_once);
    rpc_client *c = util_calloc(1, sizeof *c + cfg->nurls * sizeof(endpoint));
    c->cfg = *cfg;
    c->cfg.urls = NULL;
    if (!c->cfg.connect_timeout_ms)
        c->cfg.connect_timeout_ms = 2000;
    if (!c->cfg.timeout_ms)
        c->cfg.timeout_ms = 10000;
    if (!c->cfg.max_response_bytes)
        c->cfg.max_response_bytes = 32u << 20;
    if (!c->cfg.breaker_threshold)
        c->cfg.breaker_threshold = 3;
    if (!c->cfg.breaker_cooldown_ms)
        c->cfg.breaker_cooldown_ms = 2000;
    if (!c->cfg.breaker_max_cooldown_ms)
        c->cfg.breaker_max_cooldown_ms = 60000;
    if (c->cfg.breaker_max_cooldown_ms < c->cfg.breaker_cooldown_ms)
        c->cfg.breaker_max_cooldown_ms = c->cfg.breaker_cooldown_ms;
    if (!c->cfg.rate_limit_default_ms)
        c->cfg.rate_limit_default_ms = 1000;
    if (!c->cfg.retry_after_max_ms)
        c->cfg.retry_after_max_ms = 60000;
    if (!c->cfg.max_head_lag)
        c->cfg.max_head_lag = 5;
    util_strlcpy(c->name, cfg->name ? cfg->name : "default", sizeof c->name);
    c->cfg.name = c->name;
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->next_id, 1);
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    c->headers = curl_slist_append(c->headers, "Accept: application/json");
    /* Without this curl waits for "100 Continue" before sending bodies over 1 KiB. */
    c->headers = curl_slist_append(c->headers, "Expect:");
    c->n = cfg->nurls;

    metrics_registry *reg = metrics_global();
    char cname[160], chost[300], labels[600];
    metrics_label_escape(cname, sizeof cname, c->name);
    snprintf(labels, sizeof labels, "client=\"%s\"", cname);
    c->m_failover = metrics_counter_get(reg, "paimon_rpc_failovers_total",
                                        "Calls moved to a lower-priority endpoint", labels);
    for (size_t i = 0; i < c->n; i++) {
        endpoint *ep = &c->ep[i];
        ep->url = util_strdup(cfg->urls[i]);
        ep->idx = i;
        util_strlcpy(ep->host, hosts[i], sizeof ep->host);
        ep->cooldown = c->cfg.breaker_cooldown_ms;
        metrics_label_escape(chost, sizeof chost, ep->host);
        snprintf(labels, sizeof labels, "client=\"%s\",endpoint=\"%zu\",host=\"%s\"", cname, i,
                 chost);
        ep->m_req = metrics_counter_get(reg, "paimon_rpc_requests_total",
                                        "HTTP requests sent to a JSON-RPC endpoint", labels);
        ep->m_lat = metrics_histogram_get(reg, "paimon_rpc_request_duration_seconds",
                                          "JSON-RPC HTTP request latency", labels, NULL, 0);
        ep->m_breaker = metrics_gauge_get(reg, "paimon_rpc_breaker_state",
                                          "Circuit breaker: 0 closed, 1 half-open, 2 open", labels);
        ep->m_head = metrics_gauge_get(reg, "paimon_rpc_last_block",
                                       "Latest block number seen from the endpoint", labels);
        for (int k = 1; k < K_COUNT; k++) {
            char l2[700];
            snprintf(l2, sizeof l2, "%s,kind=\"%s\"", labels, kind_names[k]);
            ep->m_err[k] = metrics_counter_get(reg, "paimon_rpc_errors_total",
                                               "Failed JSON-RPC attempts by kind", l2);
        }
        metrics_gauge_set(ep->m_breaker, 0);
    }
    return c;
}

void rpc_client_free(rpc_client *c)
{
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        for (size_t j = 0; j < c->ep[i].nidle; j++) {
            curl_easy_cleanup(c->ep[i].idle[j]);
        }
        free(c->ep[i].url);
    }
    curl_slist_free_all(c->headers);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

size_t rpc_endpoint_count(const rpc_client *c)
{
    return c ? c->n : 0;
}

/* Best head among endpoints that are not open: a dead endpoint's frozen head must
 * not make the live ones look stale forever. Caller holds mu. */
static uint64_t best_head_locked(const rpc_client *c, int64_t *adv)
{
    uint64_t best = 0;
    int64_t when = 0;
    for (size_t i = 0; i < c->n; i++) {
        const endpoint *ep = &c->ep[i];
        if (ep->state != RPC_BREAKER_OPEN && ep->head > best) {
            best = ep->head;
            when = ep->head_adv;
        }
    }
    if (adv)
        *adv = when;
    return best;
}

static int ep_stale_locked(const rpc_client *c, const endpoint *ep)
{
    uint64_t best = best_head_locked(c, NULL);
    return ep->head && best > ep->head + c->cfg.max_head_lag;
}

int rpc_endpoint_get(rpc_client *c, size_t i, rpc_endpoint_info *out)
{
    if (!c || i >= c->n || !out) {
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    const endpoint *ep = &c->ep[i];
    memset(out, 0, sizeof *out);
    util_strlcpy(out->host, ep->host, sizeof out->host);
    out->breaker = ep->state;
    out->consecutive_failures = ep->fails;
    out->open_until_ms = ep->state == RPC_BREAKER_OPEN ? ep->open_until : 0;
    out->head = ep->head;
    out->head_advanced_ms = ep->head_adv;
    out->stale = ep_stale_locked(c, ep);
    out->requests = ep->requests;
    out->failures = ep->failures;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

uint64_t rpc_best_head(rpc_client *c, int64_t *advanced_ms)
{
    pthread_mutex_lock(&c->mu);
    uint64_t b = best_head_locked(c, advanced_ms);
    pthread_mutex_unlock(&c->mu);
    return b;
}

/* ------------------------------------------------------------------ breaker */

/* Picks the first usable endpoint not yet tried. Stale endpoints are skipped for
 * head-sensitive calls unless nothing else is left. Sets *probe when the attempt
 * is the half-open probe. -1 when none. */
static int pick(rpc_client *c, const int *tried, unsigned flags, int *probe)
{
    int64_t now = util_mono_ms();
    pthread_mutex_lock(&c->mu);
    int found = -1;
    for (int pass = 0; pass < 2 && found < 0; pass++) {
        for (size_t i = 0; i < c->n; i++) {
            endpoint *ep = &c->ep[i];
            if (tried[i])
                continue;
            if (ep->state == RPC_BREAKER_OPEN && now < ep->open_until)
                continue;
            if ((ep->state == RPC_BREAKER_HALF_OPEN ||
                 (ep->state == RPC_BREAKER_OPEN && now >= ep->open_until)) &&
                ep->probe_inflight)
                continue;
            if (pass == 0 && (flags & RPC_F_HEAD) && ep_stale_locked(c, ep))
                continue;
            if (ep->state != RPC_BREAKER_CLOSED) {
                ep_set_state(ep, RPC_BREAKER_HALF_OPEN);
                ep->probe_inflight = 1;
                *probe = 1;
            } else {
                *probe = 0;
            }
            found = (int)i;
            break;
        }
        if (!(flags & RPC_F_HEAD))
            break;
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

/* Records the outcome of one attempt: K_OK (also for deterministic / limit RPC
 * errors, which prove the node healthy), a failure kind, or a rate limit. An answer
 * over our own size cap is counted but leaves the breaker alone: the node answered,
 * the request was too broad (a dense eth_getLogs range), and opening the breaker
 * would stall the caller that is already shrinking it. */
static void record(rpc_client *c, int i, int probe, fail_kind k, int64_t retry_after_ms)
{
    endpoint *ep = &c->ep[i];
    int64_t now = util_mono_ms();
    pthread_mutex_lock(&c->mu);
    if (probe)
        ep->probe_inflight = 0;
    if (k == K_OK || k == K_RPC_LIMIT || k == K_TOO_LARGE) {
        if (k != K_OK)
            metrics_counter_inc(ep->m_err[k]);
        ep->fails = 0;
        if (probe || ep->state == RPC_BREAKER_HALF_OPEN) {
            ep->cooldown = c->cfg.breaker_cooldown_ms;
            ep_set_state(ep, RPC_BREAKER_CLOSED);
        }
        pthread_mutex_unlock(&c->mu);
        return;
    }
    ep->failures++;
    ep->fails++;
    metrics_counter_inc(ep->m_err[k]);
    if (k == K_HTTP_429 || k == K_RPC_RATE) {
        int64_t ra = retry_after_ms > 0 ? retry_after_ms : c->cfg.rate_limit_default_ms;
        if (ra > c->cfg.retry_after_max_ms)
            ra = c->cfg.retry_after_max_ms;
        if (ep->state != RPC_BREAKER_OPEN || ep->open_until < now + ra)
            ep->open_until = now + ra;
        ep_set_state(ep, RPC_BREAKER_OPEN);
    } else if (probe) {
        ep->cooldown *= 2;
        if (ep->cooldown > c->cfg.breaker_max_cooldown_ms)
            ep->cooldown = c->cfg.breaker_max_cooldown_ms;
        ep->open_until = now + ep->cooldown;
        ep_set_state(ep, RPC_BREAKER_OPEN);
    } else if (ep->state == RPC_BREAKER_CLOSED && ep->fails >= c->cfg.breaker_threshold) {
        ep->open_until = now + ep->cooldown;
        ep_set_state(ep, RPC_BREAKER_OPEN);
    }
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------------ HTTP */

typedef struct {
    char *p;
    size_t len, cap, max;
    int too_big;
} rbuf;

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    rbuf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > b->max) {
        b->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return 0;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static CURL *handle_get(rpc_client *c, endpoint *ep)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (ep->nidle)
        h = ep->idle[--ep->nidle];
    pthread_mutex_unlock(&c->mu);
    if (h)
        return h;
    h = curl_easy_init();
    if (!h)
        return NULL;
    curl_easy_setopt(h, CURLOPT_URL, ep->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->cfg.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->cfg.max_response_bytes);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    return h;
}

static void handle_put(rpc_client *c, endpoint *ep, CURL *h, int broken)
{
    pthread_mutex_lock(&c->mu);
    if (!broken && ep->nidle < POOL_MAX) {
        ep->idle[ep->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* POSTs body to the endpoint; on K_OK *out holds the parsed JSON (owned). */
static fail_kind exchange(rpc_client *c, endpoint *ep, const char *body, cJSON **out,
                          int64_t *retry_after_ms, char *why, size_t whylen)
{
    *out = NULL;
    *retry_after_ms = 0;
    CURL *h = handle_get(c, ep);
    if (!h) {
        snprintf(why, whylen, "curl init failed");
        return K_TRANSPORT;
    }
    rbuf b = {.max = c->cfg.max_response_bytes};
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    int64_t t0 = util_mono_us();
    CURLcode cc = curl_easy_perform(h);
    metrics_histogram_observe(ep->m_lat, (double)(util_mono_us() - t0) / 1e6);
    metrics_counter_inc(ep->m_req);
    pthread_mutex_lock(&c->mu);
    ep->requests++;
    pthread_mutex_unlock(&c->mu);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    fail_kind k = K_OK;
    if (cc != CURLE_OK) {
        if (b.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
            k = K_TOO_LARGE;
            snprintf(why, whylen, "%s: response larger than %zu bytes", ep->host,
                     c->cfg.max_response_bytes);
        } else if (cc == CURLE_OPERATION_TIMEDOUT) {
            k = K_TIMEOUT;
            snprintf(why, whylen, "%s: timeout", ep->host);
        } else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
            k = K_CONNECT;
            snprintf(why, whylen, "%s: %s", ep->host, curl_easy_strerror(cc));
        } else {
            k = K_TRANSPORT;
            snprintf(why, whylen, "%s: %s", ep->host, curl_easy_strerror(cc));
        }
    } else if (status == 429) {
        curl_off_t ra = 0;
        if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            *retry_after_ms = ra > 86400 ? 86400000 : (int64_t)ra * 1000;
        k = K_HTTP_429;
        snprintf(why, whylen, "%s: HTTP 429", ep->host);
    } else if (status >= 500) {
        k = K_HTTP_5XX;
        snprintf(why, whylen, "%s: HTTP %ld", ep->host, status);
    } else if (status != 200) {
        k = K_HTTP_STATUS;
        snprintf(why, whylen, "%s: HTTP %ld", ep->host, status);
    } else {
        *out = b.p ? cJSON_ParseWithLength(b.p, b.len) : NULL;
        if (!*out) {
            k = K_INVALID;
            snprintf(why, whylen, "%s: response is not JSON", ep->host);
        }
    }
    free(b.p);
    /* A failed transfer may leave the connection half-read: do not reuse it. */
    handle_put(c, ep, h, cc != CURLE_OK);
    return k;
}

/* ------------------------------------------------------------------ responses */

static int id_is(const cJSON *v, uint64_t id)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble == (double)id;
}

/* Validates one response object. Returns 0 with *result detached, 1 with a JSON-RPC
 * error in e, -1 when malformed. */
static int parse_response(cJSON *o, uint64_t id, int check_id, cJSON **result, rpc_error *e,
                          char *why, size_t whylen)
{
    *result = NULL;
    if (!cJSON_IsObject(o)) {
        snprintf(why, whylen, "response is not an object");
        return -1;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "jsonrpc");
    if (!cJSON_IsString(ver) || strcmp(ver->valuestring, "2.0") != 0) {
        snprintf(why, whylen, "response lacks jsonrpc \"2.0\"");
        return -1;
    }
    if (check_id && !id_is(cJSON_GetObjectItemCaseSensitive(o, "id"), id)) {
        snprintf(why, whylen, "response id does not match the request");
        return -1;
    }
    cJSON *res = cJSON_GetObjectItemCaseSensitive(o, "result");
    cJSON *er = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (er && !cJSON_IsNull(er)) {
        if (res) {
            snprintf(why, whylen, "response has both result and error");
            return -1;
        }
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(er, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(er, "message");
        if (!cJSON_IsObject(er) || !cJSON_IsNumber(code) ||
            code->valuedouble != (long)code->valuedouble || (msg && !cJSON_IsString(msg))) {
            snprintf(why, whylen, "malformed error object");
            return -1;
        }
        rpc_error tmp = {.status = RPC_ERR_RPC, .code = (long)code->valuedouble};
        snprintf(tmp.message, sizeof tmp.message, "%s", msg ? msg->valuestring : "");
        cJSON *data = cJSON_GetObjectItemCaseSensitive(er, "data");
        tmp.data = data ? cJSON_DetachItemViaPointer(er, data) : NULL;
        if (e) {
            cJSON_Delete(e->data);
            *e = tmp;
        } else {
            cJSON_Delete(tmp.data);
        }
        return 1;
    }
    if (!res) {
        snprintf(why, whylen, "response has neither result nor error");
        return -1;
    }
    *result = cJSON_DetachItemViaPointer(o, res);
    return 0;
}

static fail_kind class_kind(rpc_error_class cl)
{
    switch (cl) {
    case RPC_CLASS_NODE:
        return K_RPC_NODE;
    case RPC_CLASS_LIMIT:
        return K_RPC_LIMIT;
    case RPC_CLASS_RATE_LIMIT:
        return K_RPC_RATE;
    default:
        return K_OK;
    }
}

/* Extracts the head a tip-revealing result reports; 0 / -1. */
typedef int (*tip_fn)(const cJSON *result, uint64_t *head);

/* Records the head an endpoint reported; 1 when it lags the best (stale). */
static int note_head(rpc_client *c, int i, uint64_t h)
{
    endpoint *ep = &c->ep[i];
    pthread_mutex_lock(&c->mu);
    if (h > ep->head || !ep->head_adv)
        ep->head_adv = util_mono_ms();
    ep->head = h; /* not a max: a devnet that restarts must be followed down */
    metrics_gauge_set(ep->m_head, (double)h);
    int stale = ep_stale_locked(c, ep);
    pthread_mutex_unlock(&c->mu);
    return stale;
}

static char *build_request(const char *method, cJSON *params, uint64_t id)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "jsonrpc", "2.0");
    cJSON_AddNumberToObject(req, "id", (double)id);
    cJSON_AddStringToObject(req, "method", method);
    cJSON_AddItemToObject(req, "params", params ? params : cJSON_CreateArray());
    char *s = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    return s;
}

static int valid_method(const char *m)
{
    if (!m || !*m || strlen(m) > 128)
        return 0;
    for (const char *p = m; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    }
    return 1;
}

int rpc_probe_heads(rpc_client *c, char *err, size_t errlen)
{
    int ok = 0;
    uint64_t id = atomic_fetch_add(&c->next_id, 1);
    char *body = build_request("eth_blockNumber", NULL, id);
    int64_t now = util_mono_ms();
    for (size_t i = 0; i < c->n; i++) {
        endpoint *ep = &c->ep[i];
        int probe = 0;
        pthread_mutex_lock(&c->mu);
        int skip = ep->state == RPC_BREAKER_OPEN && now < ep->open_until;
        if (!skip && ep->state != RPC_BREAKER_CLOSED) {
            skip = ep->probe_inflight;
            if (!skip) {
                ep_set_state(ep, RPC_BREAKER_HALF_OPEN);
                ep->probe_inflight = probe = 1;
            }
        }
        pthread_mutex_unlock(&c->mu);
        if (skip)
            continue;
        char why[200];
        cJSON *resp = NULL, *result = NULL;
        int64_t ra = 0;
        fail_kind k = exchange(c, ep, body, &resp, &ra, why, sizeof why);
        uint64_t h = 0;
        if (k == K_OK) {
            rpc_error e = {0};
            int pr = parse_response(resp, id, 1, &result, &e, why, sizeof why);
            if (pr > 0)
                k = class_kind(rpc_error_classify(e.code, e.message));
            else if (pr < 0 || rpc_parse_quantity(result, &h))
                k = K_INVALID;
            rpc_error_clear(&e);
            cJSON_Delete(resp);
            cJSON_Delete(result);
        }
        if (k == K_OK) {
            note_head(c, (int)i, h);
            ok++;
        }
        record(c, (int)i, probe, k, ra);
    }
    free(body);
    /* Staleness is relative, so it can only be judged once every head is in. */
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++) {
        if (c->ep[i].state != RPC_BREAKER_OPEN && ep_stale_locked(c, &c->ep[i])) {
            c->ep[i].failures++;
            metrics_counter_inc(c->ep[i].m_err[K_STALE]);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return ok ? 0 : util_err(err, errlen, "rpc: no endpoint answered eth_blockNumber");
}

static cJSON *call_internal(rpc_client *c, const char *method, cJSON *params, unsigned flags,
                            tip_fn tip, rpc_error *e)
{
    rpc_error_clear(e);
    if (!c || !valid_method(method) ||
        (params && !cJSON_IsArray(params) && !cJSON_IsObject(params))) {
        cJSON_Delete(params);
        seterr(e, RPC_ERR_INVALID, "rpc: bad method name or params");
        return NULL;
    }
    uint64_t id = atomic_fetch_add(&c->next_id, 1);
    char *body = build_request(method, params, id);
    int tried[RPC_MAX_ENDPOINTS] = {0};
    rpc_error last = {.status = RPC_ERR_UNAVAILABLE};
    snprintf(last.message, sizeof last.message, "rpc %s: no endpoint available (breakers open)",
             method);
    int attempts = 0;
    cJSON *ret = NULL;
    for (;;) {
        int probe = 0;
        int i = pick(c, tried, flags | (tip ? RPC_F_HEAD : 0), &probe);
        if (i < 0)
            break;
        tried[i] = 1;
        if (attempts++)
            metrics_counter_inc(c->m_failover);
        endpoint *ep = &c->ep[i];
        char why[200] = "";
        cJSON *resp = NULL;
        int64_t ra = 0;
        fail_kind k = exchange(c, ep, body, &resp, &ra, why, sizeof why);
        if (k != K_OK) {
            record(c, i, probe, k, ra);
            rpc_error_clear(&last);
            last.status = RPC_ERR_UNAVAILABLE;
            snprintf(last.message, sizeof last.message, "rpc %s: %s", method, why);
            log_debug("rpc attempt failed", "method", method, "reason", why);
            continue;
        }
        cJSON *result = NULL;
        rpc_error rerr = {0};
        int pr = parse_response(resp, id, 1, &result, &rerr, why, sizeof why);
        cJSON_Delete(resp);
        if (pr < 0) {
            record(c, i, probe, K_INVALID, 0);
            rpc_error_clear(&last);
            last.status = RPC_ERR_UNAVAILABLE;
            snprintf(last.message, sizeof last.message, "rpc %s: %s: %s", method, ep->host, why);
            continue;
        }
        if (pr > 0) {
            fail_kind ck = class_kind(rpc_error_classify(rerr.code, rerr.message));
            record(c, i, probe, ck, 0);
            rpc_error_clear(&last);
            last = rerr;
            if (ck == K_OK)
                break; /* deterministic: the same answer everywhere */
            continue;
        }
        uint64_t h;
        if (tip && tip(result, &h) == 0 && note_head(c, i, h)) {
            record(c, i, probe, K_STALE, 0);
            cJSON_Delete(result);
            rpc_error_clear(&last);
            last.status = RPC_ERR_UNAVAILABLE;
            snprintf(last.message, sizeof last.message, "rpc %s: %s: stale head %llu", method,
                     ep->host, (unsigned long long)h);
            continue;
        }
        record(c, i, probe, K_OK, 0);
        rpc_error_clear(&last);
        ret = result;
        break;
    }
    free(body);
    if (!ret) {
        if (e) {
            cJSON_Delete(e->data);
            *e = last;
        } else {
            rpc_error_clear(&last);
        }
    }
    return ret;
}

cJSON *rpc_call_ex(rpc_client *c, const char *method, cJSON *params, unsigned flags, rpc_error *e)
{
    return call_internal(c, method, params, flags, NULL, e);
}

static void fmt_err(const rpc_error *e, char *err, size_t errlen)
{
    if (e->status == RPC_ERR_RPC)
        util_err(err, errlen, "rpc error %ld: %s", e->code, e->message);
    else
        util_err(err, errlen, "%s", e->message);
}

cJSON *rpc_call(rpc_client *c, const char *method, cJSON *params, char *err, size_t errlen)
{
    rpc_error e = {0};
    cJSON *r = call_internal(c, method, params, 0, NULL, &e);
    if (!r)
        fmt_err(&e, err, errlen);
    rpc_error_clear(&e);
    return r;
}

/* ------------------------------------------------------------------ batch */

void rpc_batch_items_clear(rpc_batch_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        cJSON_Delete(items[i].result);
        items[i].result = NULL;
        cJSON_Delete(items[i].params);
        items[i].params = NULL;
        rpc_error_clear(&items[i].error);
    }
}

typedef struct {
    cJSON **res;
    rpc_error *err;
} batch_ans;

static void ans_free(batch_ans *a, size_t n)
{
    if (!a->res)
        return;
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(a->res[i]);
        rpc_error_clear(&a->err[i]);
    }
    free(a->res);
    free(a->err);
    a->res = NULL;
    a->err = NULL;
}

/* Validates a batch answer into a (allocated); returns the worst fail kind among
 * the items' errors (K_OK when all are results or deterministic), or K_INVALID. */
static fail_kind parse_batch(cJSON *resp, uint64_t base, size_t n, batch_ans *a, rpc_error *whole,
                             char *why, size_t whylen)
{
    if (cJSON_IsObject(resp)) {
        /* Some providers answer a whole batch with one error (batch too large). */
        cJSON *dummy = NULL;
        int pr = parse_response(resp, 0, 0, &dummy, whole, why, whylen);
        cJSON_Delete(dummy);
        if (pr > 0) {
            rpc_error_class cl = rpc_error_classify(whole->code, whole->message);
            return cl == RPC_CLASS_DETERMINISTIC ? K_RPC_LIMIT : class_kind(cl);
        }
        snprintf(why, whylen, "batch answer is not an array");
        return K_INVALID;
    }
    if (!cJSON_IsArray(resp) || (size_t)cJSON_GetArraySize(resp) != n) {
        snprintf(why, whylen, "batch answer is not an array of %zu", n);
        return K_INVALID;
    }
    a->res = util_calloc(n, sizeof *a->res);
    a->err = util_calloc(n, sizeof *a->err);
    char *seen = util_calloc(n, 1);
    fail_kind worst = K_OK;
    cJSON *o;
    cJSON_ArrayForEach(o, resp)
    {
        const cJSON *idv = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (!cJSON_IsNumber(idv) || idv->valuedouble < (double)base ||
            idv->valuedouble >= (double)(base + n)) {
            snprintf(why, whylen, "batch answer has an unknown id");
            worst = K_INVALID;
            break;
        }
        size_t slot = (size_t)(idv->valuedouble - (double)base);
        if (!id_is(idv, base + slot) || seen[slot]) {
            snprintf(why, whylen, "batch answer has a duplicate or bad id");
            worst = K_INVALID;
            break;
        }
        seen[slot] = 1;
        int pr = parse_response(o, base + slot, 1, &a->res[slot], &a->err[slot], why, whylen);
        if (pr < 0) {
            worst = K_INVALID;
            break;
        }
        if (pr > 0) {
            fail_kind ck = class_kind(rpc_error_classify(a->err[slot].code, a->err[slot].message));
            if (ck == K_RPC_NODE || ck == K_RPC_RATE || (ck == K_RPC_LIMIT && worst == K_OK))
                worst = ck;
        }
    }
    free(seen);
    if (worst == K_INVALID)
        ans_free(a, n);
    return worst;
}

int rpc_batch(rpc_client *c, rpc_batch_item *items, size_t n, unsigned flags, char *err,
              size_t errlen)
{
    if (!c || (!items && n) || n == 0 || n > 10000) {
        rpc_batch_items_clear(items, n);
        return util_err(err, errlen, "rpc: batch needs 1..10000 items");
    }
    cJSON *arr = cJSON_CreateArray();
    uint64_t base = atomic_fetch_add(&c->next_id, n);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *p = items[i].params;
        items[i].params = NULL;
        items[i].result = NULL;
        rpc_error_init(&items[i].error);
        if (!valid_method(items[i].method) || (p && !cJSON_IsArray(p) && !cJSON_IsObject(p)))
            bad = 1;
        cJSON *req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "jsonrpc", "2.0");
        cJSON_AddNumberToObject(req, "id", (double)(base + i));
        cJSON_AddStringToObject(req, "method", items[i].method ? items[i].method : "");
        cJSON_AddItemToObject(req, "params", p ? p : cJSON_CreateArray());
        cJSON_AddItemToArray(arr, req);
    }
    char *body = bad ? NULL : cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (!body) {
        for (size_t i = 0; i < n; i++)
            seterr(&items[i].error, RPC_ERR_INVALID, "rpc: bad method or params");
        return util_err(err, errlen, "rpc: bad method name or params in batch");
    }
    int tried[RPC_MAX_ENDPOINTS] = {0};
    batch_ans fallback = {0};
    char last[512];
    snprintf(last, sizeof last, "rpc batch: no endpoint available (breakers open)");
    int attempts = 0, done = 0;
    for (;;) {
        int probe = 0;
        int i = pick(c, tried, flags, &probe);
        if (i < 0)
            break;
        tried[i] = 1;
        if (attempts++)
            metrics_counter_inc(c->m_failover);
        char why[200] = "";
        cJSON *resp = NULL;
        int64_t ra = 0;
        fail_kind k = exchange(c, &c->ep[i], body, &resp, &ra, why, sizeof why);
        batch_ans a = {0};
        rpc_error whole = {0};
        if (k == K_OK) {
            k = parse_batch(resp, base, n, &a, &whole, why, sizeof why);
            cJSON_Delete(resp);
        }
        if (k == K_OK) {
            record(c, i, probe, K_OK, 0);
            ans_free(&fallback, n);
            fallback = a;
            done = 1;
            break;
        }
        record(c, i, probe, k, ra);
        if (whole.status == RPC_ERR_RPC) {
            snprintf(last, sizeof last, "rpc batch: %s: error %ld: %s", c->ep[i].host, whole.code,
                     whole.message);
            rpc_error_clear(&whole);
        } else {
            snprintf(last, sizeof last, "rpc batch: %s%s%s", k == K_INVALID ? c->ep[i].host : "",
                     k == K_INVALID ? ": " : "", why[0] ? why : kind_names[k]);
        }
        if (a.res) {
            /* Answered, but some item hit a node error: keep it in case no other
             * endpoint does better. */
            ans_free(&fallback, n);
            fallback = a;
        }
    }
    free(body);
    if (fallback.res) {
        for (size_t i = 0; i < n; i++) {
            items[i].result = fallback.res[i];
            items[i].error = fallback.err[i];
        }
        free(fallback.res);
        free(fallback.err);
        (void)done;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        seterr(&items[i].error, RPC_ERR_UNAVAILABLE, "%s", last);
    return util_err(err, errlen, "%s", last);
}

/* ------------------------------------------------------------------ typed helpers */

const char *rpc_block_tag(int64_t block, char buf[RPC_BLOCK_TAG_MAX])
{
    switch (block) {
    case RPC_BLOCK_LATEST:
        return strcpy(buf, "latest");
    case RPC_BLOCK_SAFE:
        return strcpy(buf, "safe");
    case RPC_BLOCK_FINALIZED:
        return strcpy(buf, "finalized");
    case RPC_BLOCK_PENDING:
        return strcpy(buf, "pending");
    default:
        snprintf(buf, RPC_BLOCK_TAG_MAX, "0x%llx", (unsigned long long)(block < 0 ? 0 : block));
        return buf;
    }
}

int rpc_parse_quantity(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsString(v) || !hex_has_prefix(v->valuestring))
        return -1;
    const char *p = v->valuestring + 2;
    if (!*p || strlen(p) > 64)
        return -1;
    uint64_t x = 0;
    for (; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            return -1;
        if (x >> 60)
            return -1; /* would overflow */
        x = (x << 4) | (uint64_t)d;
    }
    *out = x;
    return 0;
}

static int get_b32(const cJSON *o, const char *key, uint8_t out[32])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? hex_decode_fixed(v->valuestring, out, 32, NULL, 0) : -1;
}

int rpc_header_from_json(const cJSON *b, rpc_header *out, char *err, size_t errlen)
{
    rpc_header h;
    if (!cJSON_IsObject(b))
        return util_err(err, errlen, "block is not an object");
    if (rpc_parse_quantity(cJSON_GetObjectItemCaseSensitive(b, "number"), &h.number))
        return util_err(err, errlen, "block number missing or not a quantity");
    if (rpc_parse_quantity(cJSON_GetObjectItemCaseSensitive(b, "timestamp"), &h.timestamp))
        return util_err(err, errlen, "block timestamp missing or not a quantity");
    if (get_b32(b, "hash", h.hash) || get_b32(b, "parentHash", h.parent_hash))
        return util_err(err, errlen, "block hash / parentHash missing or not 32 bytes");
    *out = h;
    return 0;
}

static int tip_quantity(const cJSON *r, uint64_t *h)
{
    return rpc_parse_quantity(r, h);
}

static int tip_block(const cJSON *r, uint64_t *h)
{
    return rpc_parse_quantity(cJSON_GetObjectItemCaseSensitive(r, "number"), h);
}

static int call_quantity(rpc_client *c, const char *method, cJSON *params, unsigned flags,
                         tip_fn tip, uint64_t *out, char *err, size_t errlen)
{
    rpc_error e = {0};
    cJSON *r = call_internal(c, method, params, flags, tip, &e);
    if (!r) {
        fmt_err(&e, err, errlen);
        rpc_error_clear(&e);
        return -1;
    }
    int rc = rpc_parse_quantity(r, out);
    cJSON_Delete(r);
    return rc ? util_err(err, errlen, "rpc %s: result is not a quantity", method) : 0;
}

int rpc_block_number(rpc_client *c, uint64_t *out, char *err, size_t errlen)
{
    return call_quantity(c, "eth_blockNumber", NULL, RPC_F_HEAD, tip_quantity, out, err, errlen);
}

int rpc_chain_id(rpc_client *c, uint64_t *out, char *err, size_t errlen)
{
    return call_quantity(c, "eth_chainId", NULL, 0, NULL, out, err, errlen);
}

int rpc_get_block_header(rpc_client *c, int64_t block, rpc_header *out, char *err, size_t errlen)
{
    char tag[RPC_BLOCK_TAG_MAX];
    if (block < RPC_BLOCK_PENDING)
        return util_err(err, errlen, "rpc: bad block %lld", (long long)block);
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(rpc_block_tag(block, tag)));
    cJSON_AddItemToArray(p, cJSON_CreateFalse());
    rpc_error e = {0};
    int latest = block == RPC_BLOCK_LATEST;
    cJSON *r = call_internal(c, "eth_getBlockByNumber", p, latest ? RPC_F_HEAD : 0,
                             latest ? tip_block : NULL, &e);
    if (!r) {
        fmt_err(&e, err, errlen);
        rpc_error_clear(&e);
        return -1;
    }
    if (cJSON_IsNull(r)) {
        cJSON_Delete(r);
        return 1;
    }
    char why[128];
    int rc = rpc_header_from_json(r, out, why, sizeof why);
    cJSON_Delete(r);
    if (rc)
        return util_err(err, errlen, "rpc eth_getBlockByNumber: %s", why);
    if (block >= 0 && out->number != (uint64_t)block)
        return util_err(err, errlen, "rpc eth_getBlockByNumber: asked %lld, got %llu",
                        (long long)block, (unsigned long long)out->number);
    return 0;
}

cJSON *rpc_get_logs(rpc_client *c, const cJSON *filter, rpc_error *e)
{
    if (!cJSON_IsObject(filter)) {
        rpc_error_clear(e);
        seterr(e, RPC_ERR_INVALID, "rpc eth_getLogs: filter must be an object");
        return NULL;
    }
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_Duplicate(filter, 1));
    cJSON *r = call_internal(c, "eth_getLogs", p, RPC_F_HEAD, NULL, e);
    if (r && !cJSON_IsArray(r)) {
        cJSON_Delete(r);
        seterr(e, RPC_ERR_INVALID, "rpc eth_getLogs: result is not an array");
        return NULL;
    }
    return r;
}

int rpc_eth_call(rpc_client *c, const char *to, const char *data_hex, int64_t block, uint8_t **out,
                 size_t *outlen, rpc_error *e)
{
    uint8_t addr[HEX_ADDR_LEN];
    char why[128];
    rpc_error_clear(e);
    if (!to || hex_addr_parse(to, addr, why, sizeof why)) {
        seterr(e, RPC_ERR_INVALID, "rpc eth_call: bad address");
        return -1;
    }
    size_t dl = 0;
    uint8_t *d = data_hex ? hex_decode_new(data_hex, &dl, why, sizeof why) : NULL;
    if (!d || !hex_has_prefix(data_hex) || block < RPC_BLOCK_PENDING) {
        free(d);
        seterr(e, RPC_ERR_INVALID, "rpc eth_call: data must be 0x-prefixed hex");
        return -1;
    }
    free(d);
    char tag[RPC_BLOCK_TAG_MAX], to_hex[HEX_ADDR_STRLEN];
    hex_encode(addr, HEX_ADDR_LEN, 1, to_hex, sizeof to_hex);
    cJSON *p = cJSON_CreateArray();
    cJSON *tx = cJSON_CreateObject();
    cJSON_AddStringToObject(tx, "to", to_hex);
    cJSON_AddStringToObject(tx, "data", data_hex);
    cJSON_AddItemToArray(p, tx);
    cJSON_AddItemToArray(p, cJSON_CreateString(rpc_block_tag(block, tag)));
    cJSON *r = call_internal(c, "eth_call", p, block == RPC_BLOCK_LATEST ? RPC_F_HEAD : 0, NULL, e);
    if (!r)
        return -1;
    uint8_t *bytes = cJSON_IsString(r) ? hex_decode_new(r->valuestring, outlen, NULL, 0) : NULL;
    cJSON_Delete(r);
    if (!bytes) {
        seterr(e, RPC_ERR_INVALID, "rpc eth_call: result is not hex");
        return -1;
    }
    *out = bytes;
    return 0;
}

int rpc_send_raw_tx(rpc_client *c, const uint8_t *raw, size_t rawlen, uint8_t hash_out[32],
                    rpc_error *e)
{
    rpc_error_clear(e);
    if (!raw || rawlen == 0 || rawlen > (1u << 20)) {
        seterr(e, RPC_ERR_INVALID, "rpc eth_sendRawTransaction: empty or oversized tx");
        return -1;
    }
    char *hx = hex_encode_new(raw, rawlen, 1);
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(hx));
    free(hx);
    cJSON *r = call_internal(c, "eth_sendRawTransaction", p, 0, NULL, e);
    if (!r)
        return -1;
    int rc = cJSON_IsString(r) ? hex_decode_fixed(r->valuestring, hash_out, 32, NULL, 0) : -1;
    cJSON_Delete(r);
    if (rc)
        seterr(e, RPC_ERR_INVALID, "rpc eth_sendRawTransaction: result is not a tx hash");
    return rc;
}

int rpc_get_tx_receipt(rpc_client *c, const uint8_t hash[32], cJSON **receipt, char *err,
                       size_t errlen)
{
    char hx[HEX_B32_STRLEN];
    hex_encode(hash, 32, 1, hx, sizeof hx);
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(hx));
    rpc_error e = {0};
    cJSON *r = call_internal(c, "eth_getTransactionReceipt", p, 0, NULL, &e);
    if (!r) {
        fmt_err(&e, err, errlen);
        rpc_error_clear(&e);
        return -1;
    }
    if (cJSON_IsNull(r)) {
        cJSON_Delete(r);
        return 1;
    }
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(r, "transactionHash");
    uint8_t got[32];
    if (!cJSON_IsObject(r) || !cJSON_IsString(th) ||
        hex_decode_fixed(th->valuestring, got, 32, NULL, 0) || memcmp(got, hash, 32) != 0) {
        cJSON_Delete(r);
        return util_err(err, errlen, "rpc eth_getTransactionReceipt: receipt for another tx");
    }
    *receipt = r;
    return 0;
}

int rpc_get_tx_count(rpc_client *c, const char *address, int64_t block, uint64_t *out, char *err,
                     size_t errlen)
{
    uint8_t addr[HEX_ADDR_LEN];
    if (!address || hex_addr_parse(address, addr, err, errlen))
        return util_err(err, errlen, "rpc eth_getTransactionCount: bad address");
    if (block < RPC_BLOCK_PENDING)
        return util_err(err, errlen, "rpc eth_getTransactionCount: bad block");
    char a[HEX_ADDR_STRLEN], tag[RPC_BLOCK_TAG_MAX];
    hex_encode(addr, HEX_ADDR_LEN, 1, a, sizeof a);
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(a));
    cJSON_AddItemToArray(p, cJSON_CreateString(rpc_block_tag(block, tag)));
    return call_quantity(c, "eth_getTransactionCount", p, block < 0 ? RPC_F_HEAD : 0, NULL, out,
                         err, errlen);
}

static int call_u256(rpc_client *c, const char *method, money_u256 *out, char *err, size_t errlen)
{
    rpc_error e = {0};
    cJSON *r = call_internal(c, method, NULL, 0, NULL, &e);
    if (!r) {
        fmt_err(&e, err, errlen);
        rpc_error_clear(&e);
        return -1;
    }
    int rc = cJSON_IsString(r) ? money_from_hex(out, r->valuestring, NULL, 0) : -1;
    cJSON_Delete(r);
    return rc ? util_err(err, errlen, "rpc %s: result is not a quantity", method) : 0;
}

int rpc_gas_price(rpc_client *c, money_u256 *out, char *err, size_t errlen)
{
    return call_u256(c, "eth_gasPrice", out, err, errlen);
}

int rpc_max_priority_fee(rpc_client *c, money_u256 *out, char *err, size_t errlen)
{
    return call_u256(c, "eth_maxPriorityFeePerGas", out, err, errlen);
}

void rpc_fee_history_free(rpc_fees *h)
{
    if (!h)
        return;
    free(h->base_fee);
    free(h->reward);
    memset(h, 0, sizeof *h);
}

int rpc_fee_history(rpc_client *c, unsigned nblocks, int64_t newest, const unsigned *percentiles,
                    size_t npercentiles, rpc_fees *out, char *err, size_t errlen)
{
    if (nblocks == 0 || nblocks > 1024 || npercentiles > 100 || (npercentiles && !percentiles) ||
        newest < RPC_BLOCK_PENDING)
        return util_err(err, errlen, "rpc eth_feeHistory: bad arguments");
    for (size_t i = 0; i < npercentiles; i++) {
        if (percentiles[i] > 100 || (i && percentiles[i] < percentiles[i - 1]))
            return util_err(err, errlen, "rpc eth_feeHistory: percentiles must rise in 0..100");
    }
    char tag[RPC_BLOCK_TAG_MAX];
    cJSON *p = cJSON_CreateArray();
    char nb[24];
    snprintf(nb, sizeof nb, "0x%x", nblocks);
    cJSON_AddItemToArray(p, cJSON_CreateString(nb));
    cJSON_AddItemToArray(p, cJSON_CreateString(rpc_block_tag(newest, tag)));
    cJSON *pc = cJSON_CreateArray();
    for (size_t i = 0; i < npercentiles; i++)
        cJSON_AddItemToArray(pc, cJSON_CreateNumber(percentiles[i]));
    cJSON_AddItemToArray(p, pc);
    rpc_error e = {0};
    cJSON *r = call_internal(c, "eth_feeHistory", p, 0, NULL, &e);
    if (!r) {
        fmt_err(&e, err, errlen);
        rpc_error_clear(&e);
        return -1;
    }
    rpc_fees h = {0};
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(r, "baseFeePerGas");
    const cJSON *rw = cJSON_GetObjectItemCaseSensitive(r, "reward");
    int ok = rpc_parse_quantity(cJSON_GetObjectItemCaseSensitive(r, "oldestBlock"),
                                &h.oldest_block) == 0 &&
             cJSON_IsArray(bf) && cJSON_GetArraySize(bf) >= 1 &&
             (size_t)cJSON_GetArraySize(bf) <= (size_t)nblocks + 1;
    if (ok) {
        h.nblocks = (size_t)cJSON_GetArraySize(bf) - 1;
        h.npercentiles = npercentiles;
        h.base_fee = util_calloc(h.nblocks + 1, sizeof *h.base_fee);
        size_t i = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, bf)
        {
            if (!cJSON_IsString(v) || money_from_hex(&h.base_fee[i++], v->valuestring, NULL, 0))
                ok = 0;
        }
    }
    if (ok && npercentiles && h.nblocks) {
        ok = cJSON_IsArray(rw) && (size_t)cJSON_GetArraySize(rw) == h.nblocks;
        if (ok)
            h.reward = util_calloc(h.nblocks * npercentiles, sizeof *h.reward);
        size_t row = 0;
        const cJSON *rowv, *rows = ok ? rw : NULL;
        cJSON_ArrayForEach(rowv, rows)
        {
            if (!cJSON_IsArray(rowv) || (size_t)cJSON_GetArraySize(rowv) != npercentiles) {
                ok = 0;
                break;
            }
            size_t col = 0;
            const cJSON *v;
            cJSON_ArrayForEach(v, rowv)
            {
                if (!cJSON_IsString(v) ||
                    money_from_hex(&h.reward[row * npercentiles + col++], v->valuestring, NULL, 0))
                    ok = 0;
            }
            row++;
        }
    }
    cJSON_Delete(r);
    if (!ok) {
        rpc_fee_history_free(&h);
        return util_err(err, errlen, "rpc eth_feeHistory: malformed result");
    }
    *out = h;
    return 0;
}
