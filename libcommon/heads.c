/* heads: newHeads over WebSocket with polling fallback and gap filling (see heads.h).
 *
 * Everything but the queue runs on the heads thread: lws callbacks, the poll and
 * reconnect timers (lws sul) and the blocking rpc calls for polling and gap filling.
 * The queue and the stats are shared with the owner under `mu`. The heads owns its
 * lws context, its eventfd and its copies of the config strings. */
#include "heads.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define RING      64 /* recently delivered (number, hash) for de-duplication */
#define GAP_BATCH 32 /* headers per JSON-RPC batch when filling a hole */
#define MAX_MSG   (1 << 20)

typedef enum { WS_DOWN, WS_CONNECTING, WS_OPEN, WS_SUBSCRIBED } ws_state;

struct heads {
    heads_config cfg;
    char name[64];
    /* ws URL pieces (lws_parse_uri cuts urlbuf in place) */
    char *urlbuf;
    const char *address;
    int port;
    char path[512];
    int tls;

    struct lws_context *ctx;
    pthread_t thread;
    atomic_int stop;
    int efd;

    /* heads-thread state */
    struct lws *wsi;
    ws_state ws;
    int64_t ws_last_ms;
    int64_t backoff_ms;
    char sub_id[128];
    char *msg;
    size_t msglen;
    int have_last;
    uint64_t last;
    uint64_t max_seen;
    struct {
        uint64_t number;
        uint8_t hash[32];
    } ring[RING];
    size_t ring_pos, ring_n;
    lws_sorted_usec_list_t sul_poll, sul_connect;

    /* shared with the owner */
    pthread_mutex_t mu;
    heads_event *q;
    size_t qhead, qlen;
    heads_stats st;

    metrics_counter *m_src[3], *m_dup, *m_reconnect;
    metrics_gauge *m_ws, *m_last, *m_adv;
};

/* ------------------------------------------------------------------ queue */

static int push(heads *h, const rpc_header *hdr, heads_source src)
{
    pthread_mutex_lock(&h->mu);
    if (h->qlen == h->cfg.queue_cap) {
        pthread_mutex_unlock(&h->mu);
        return -1;
    }
    heads_event *ev = &h->q[(h->qhead + h->qlen) % h->cfg.queue_cap];
    ev->header = *hdr;
    ev->source = src;
    h->qlen++;
    h->st.queued = h->qlen;
    if (src == HEADS_SRC_WS)
        h->st.from_ws++;
    else if (src == HEADS_SRC_POLL)
        h->st.from_poll++;
    else
        h->st.from_gap++;
    h->st.last_number = hdr->number;
    if (hdr->number > h->max_seen || !h->st.last_advance_ms) {
        h->max_seen = hdr->number;
        h->st.last_advance_ms = util_mono_ms();
        metrics_gauge_set(h->m_adv, (double)util_now_ms() / 1000.0);
    }
    uint64_t one = 1;
    /* Written under mu so the fd state always matches the queue (see heads_pop). */
    if (write(h->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("heads: eventfd write failed", "error", strerror(errno));
    pthread_mutex_unlock(&h->mu);
    metrics_counter_inc(h->m_src[src]);
    metrics_gauge_set(h->m_last, (double)hdr->number);
    return 0;
}

int heads_pop(heads *h, heads_event *out)
{
    pthread_mutex_lock(&h->mu);
    if (!h->qlen) {
        pthread_mutex_unlock(&h->mu);
        return 0;
    }
    *out = h->q[h->qhead];
    h->qhead = (h->qhead + 1) % h->cfg.queue_cap;
    h->qlen--;
    h->st.queued = h->qlen;
    if (!h->qlen) {
        uint64_t v;
        if (read(h->efd, &v, sizeof v) < 0 && errno != EAGAIN)
            log_warn("heads: eventfd read failed", "error", strerror(errno));
    }
    pthread_mutex_unlock(&h->mu);
    return 1;
}

int heads_fd(const heads *h)
{
    return h->efd;
}

void heads_get_stats(heads *h, heads_stats *out)
{
    pthread_mutex_lock(&h->mu);
    *out = h->st;
    pthread_mutex_unlock(&h->mu);
}

/* ------------------------------------------------------------------ ordering */

static int seen(const heads *h, const rpc_header *hdr)
{
    for (size_t i = 0; i < h->ring_n; i++) {
        if (h->ring[i].number == hdr->number && !memcmp(h->ring[i].hash, hdr->hash, 32))
            return 1;
    }
    return 0;
}

static int deliver(heads *h, const rpc_header *hdr, heads_source src)
{
    if (push(h, hdr, src))
        return -1;
    h->ring[h->ring_pos].number = hdr->number;
    memcpy(h->ring[h->ring_pos].hash, hdr->hash, 32);
    h->ring_pos = (h->ring_pos + 1) % RING;
    if (h->ring_n < RING)
        h->ring_n++;
    h->last = hdr->number;
    h->have_last = 1;
    return 0;
}

static size_t queue_room(heads *h)
{
    pthread_mutex_lock(&h->mu);
    size_t r = h->cfg.queue_cap - h->qlen;
    pthread_mutex_unlock(&h->mu);
    return r;
}

/* Fetches and delivers [from, to]; stops at the first failure (the hole stays
 * open and is retried with the next head). 0 when all were delivered. */
static int fill(heads *h, uint64_t from, uint64_t to)
{
    log_debug("heads: filling gap", "#from", LOG_I64(from), "#to", LOG_I64(to));
    for (uint64_t b = from; b <= to && !atomic_load(&h->stop);) {
        size_t n = (to - b + 1) < GAP_BATCH ? (size_t)(to - b + 1) : GAP_BATCH;
        size_t room = queue_room(h);
        if (room == 0)
            return -1;
        if (n > room)
            n = room; /* fetch no more than can be delivered now */
        rpc_batch_item items[GAP_BATCH];
        memset(items, 0, sizeof items);
        for (size_t i = 0; i < n; i++) {
            char tag[RPC_BLOCK_TAG_MAX];
            items[i].method = "eth_getBlockByNumber";
            items[i].params = cJSON_CreateArray();
            cJSON_AddItemToArray(items[i].params,
                                 cJSON_CreateString(rpc_block_tag((int64_t)(b + i), tag)));
            cJSON_AddItemToArray(items[i].params, cJSON_CreateFalse());
        }
        char err[UTIL_ERRLEN];
        if (rpc_batch(h->cfg.rpc, items, n, 0, err, sizeof err)) {
            log_warn("heads: gap fetch failed", "error", err);
            rpc_batch_items_clear(items, n);
            return -1;
        }
        int rc = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            rpc_header hdr;
            if (!items[i].result || rpc_header_from_json(items[i].result, &hdr, err, sizeof err) ||
                hdr.number != b + i) {
                log_warn("heads: gap header unusable", "#block", LOG_I64(b + i), "error",
                         items[i].result ? err : items[i].error.message);
                rc = -1;
            } else if (deliver(h, &hdr, HEADS_SRC_GAP)) {
                rc = -1;
            }
        }
        rpc_batch_items_clear(items, n);
        if (rc)
            return -1;
        b += n;
    }
    return atomic_load(&h->stop) ? -1 : 0;
}

static void process(heads *h, const rpc_header *hdr, heads_source src)
{
    if (!h->have_last && h->cfg.resume) {
        h->have_last = 1;
        h->last = h->cfg.resume_after;
    }
    if (h->have_last && hdr->number <= h->last) {
        if (seen(h, hdr)) {
            pthread_mutex_lock(&h->mu);
            h->st.duplicates++;
            pthread_mutex_unlock(&h->mu);
            metrics_counter_inc(h->m_dup);
            return;
        }
        /* Same height, other hash, or a shorter chain: a reorg the owner must see. */
        log_warn("heads: replaced head", "#block", LOG_I64(hdr->number));
        deliver(h, hdr, src);
        return;
    }
    if (queue_room(h) == 0)
        return; /* the hole is filled from h->last once the owner makes room */
    if (h->have_last && hdr->number > h->last + 1 && fill(h, h->last + 1, hdr->number - 1))
        return;
    deliver(h, hdr, src);
}

/* ------------------------------------------------------------------ polling */

static heads *from_sul(lws_sorted_usec_list_t *sul, size_t off)
{
    return (heads *)(void *)((char *)sul - off);
}

static void on_poll(lws_sorted_usec_list_t *sul)
{
    heads *h = from_sul(sul, offsetof(heads, sul_poll));
    if (atomic_load(&h->stop))
        return;
    int64_t now = util_mono_ms();
    if (!(h->ws == WS_SUBSCRIBED && now - h->ws_last_ms < h->cfg.ws_idle_ms)) {
        rpc_header hdr;
        char err[UTIL_ERRLEN];
        int rc = rpc_get_block_header(h->cfg.rpc, RPC_BLOCK_LATEST, &hdr, err, sizeof err);
        if (rc == 0)
            process(h, &hdr, HEADS_SRC_POLL);
        else
            log_warn("heads: poll failed", "error", rc < 0 ? err : "no latest block");
    }
    lws_sul_schedule(h->ctx, 0, &h->sul_poll, on_poll, h->cfg.poll_interval_ms * LWS_US_PER_MS);
}

/* ------------------------------------------------------------------ websocket */

static void set_ws(heads *h, ws_state s)
{
    h->ws = s;
    int sub = s == WS_SUBSCRIBED;
    pthread_mutex_lock(&h->mu);
    h->st.ws_subscribed = sub;
    if (sub)
        h->st.ws_connects++;
    pthread_mutex_unlock(&h->mu);
    metrics_gauge_set(h->m_ws, sub);
}

static void on_connect(lws_sorted_usec_list_t *sul);

static void ws_down(heads *h, const char *why)
{
    if (h->ws == WS_DOWN)
        return;
    int was_sub = h->ws == WS_SUBSCRIBED;
    h->wsi = NULL;
    h->msglen = 0;
    h->sub_id[0] = '\0';
    set_ws(h, WS_DOWN);
    if (was_sub && !atomic_load(&h->stop))
        log_warn("heads: websocket down, polling", "reason", why);
    else
        log_debug("heads: websocket connect failed", "reason", why);
    if (atomic_load(&h->stop))
        return;
    metrics_counter_inc(h->m_reconnect);
    int64_t d = h->backoff_ms;
    h->backoff_ms =
        h->backoff_ms * 2 > h->cfg.reconnect_max_ms ? h->cfg.reconnect_max_ms : h->backoff_ms * 2;
    lws_sul_schedule(h->ctx, 0, &h->sul_connect, on_connect, d * LWS_US_PER_MS);
}

static void on_connect(lws_sorted_usec_list_t *sul)
{
    heads *h = from_sul(sul, offsetof(heads, sul_connect));
    if (atomic_load(&h->stop) || h->ws != WS_DOWN)
        return;
    static const lws_retry_bo_t retry = {
        .secs_since_valid_ping = 15,
        .secs_since_valid_hangup = 30,
    };
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = h->ctx;
    ci.address = h->address;
    ci.port = h->port;
    ci.path = h->path;
    ci.host = h->address;
    ci.origin = h->address;
    ci.ssl_connection = h->tls ? LCCSCF_USE_SSL : 0;
    ci.local_protocol_name = "paimon-heads";
    ci.retry_and_idle_policy = &retry;
    h->ws = WS_CONNECTING;
    struct lws *w = lws_client_connect_via_info(&ci);
    /* A synchronous failure may already have run CONNECTION_ERROR (state DOWN). */
    if (h->ws == WS_DOWN)
        return;
    if (!w)
        ws_down(h, "connect failed");
    else
        h->wsi = w;
}

static void handle_msg(heads *h, struct lws *wsi)
{
    cJSON *m = cJSON_ParseWithLength(h->msg, h->msglen);
    h->msglen = 0;
    if (!m) {
        log_warn("heads: websocket message is not JSON");
        return;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(m, "method");
    if (cJSON_IsNumber(id) && id->valuedouble == 1) {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(m, "result");
        if (cJSON_IsString(res) && strlen(res->valuestring) < sizeof h->sub_id) {
            util_strlcpy(h->sub_id, res->valuestring, sizeof h->sub_id);
            h->ws_last_ms = util_mono_ms();
            h->backoff_ms = h->cfg.reconnect_min_ms;
            set_ws(h, WS_SUBSCRIBED);
            log_info("heads: websocket subscribed", "subscription", h->sub_id);
        } else {
            log_warn("heads: eth_subscribe refused");
            lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    } else if (cJSON_IsString(method) && !strcmp(method->valuestring, "eth_subscription")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(m, "params");
        const cJSON *sub = cJSON_GetObjectItemCaseSensitive(p, "subscription");
        rpc_header hdr;
        char err[128];
        if (!cJSON_IsString(sub) || strcmp(sub->valuestring, h->sub_id) != 0) {
            log_debug("heads: message for another subscription");
        } else if (rpc_header_from_json(cJSON_GetObjectItemCaseSensitive(p, "result"), &hdr, err,
                                        sizeof err)) {
            log_warn("heads: bad newHeads header", "error", err);
        } else {
            h->ws_last_ms = util_mono_ms();
            process(h, &hdr, HEADS_SRC_WS);
        }
    }
    cJSON_Delete(m);
}

static int ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len)
{
    (void)user;
    struct lws_context *ctx = lws_get_context(wsi);
    heads *h = ctx ? lws_context_user(ctx) : NULL;
    if (!h)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        ws_down(h, in && len ? (const char *)in : "connection error");
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        h->ws = WS_OPEN;
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (h->ws == WS_OPEN && !h->sub_id[0]) {
            static const char sub[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_subscribe\","
                                      "\"params\":[\"newHeads\"]}";
            unsigned char buf[LWS_PRE + sizeof sub];
            memcpy(buf + LWS_PRE, sub, sizeof sub - 1);
            if (lws_write(wsi, buf + LWS_PRE, sizeof sub - 1, LWS_WRITE_TEXT) <
                (int)(sizeof sub - 1))
                return -1;
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (h->msglen + len > MAX_MSG) {
            log_warn("heads: websocket message too large");
            return -1;
        }
        memcpy(h->msg + h->msglen, in, len);
        h->msglen += len;
        if (lws_is_final_fragment(wsi))
            handle_msg(h, wsi);
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        ws_down(h, "closed");
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (h->wsi == wsi)
            ws_down(h, "destroyed");
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"paimon-heads", ws_cb, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ------------------------------------------------------------------ thread */

static void *run(void *arg)
{
    heads *h = arg;
    lws_sul_schedule(h->ctx, 0, &h->sul_poll, on_poll, 1);
    if (h->address)
        lws_sul_schedule(h->ctx, 0, &h->sul_connect, on_connect, 1);
    while (!atomic_load(&h->stop)) {
        if (lws_service(h->ctx, 0) < 0)
            break;
    }
    lws_sul_cancel(&h->sul_poll);
    lws_sul_cancel(&h->sul_connect);
    return NULL;
}

static void lws_emit(int level, const char *line)
{
    (void)level;
    log_debug("lws", "line", line);
}

static pthread_once_t lws_log_once = PTHREAD_ONCE_INIT;
static void lws_log_init(void)
{
    lws_set_log_level(LLL_ERR, lws_emit);
}

heads *heads_new(const heads_config *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->rpc) {
        util_err(err, errlen, "heads: an rpc client is required");
        return NULL;
    }
    if (cfg->poll_interval_ms < 0 || cfg->ws_idle_ms < 0 || cfg->reconnect_min_ms < 0 ||
        cfg->reconnect_max_ms < 0) {
        util_err(err, errlen, "heads: negative interval");
        return NULL;
    }
    heads *h = util_calloc(1, sizeof *h);
    h->efd = -1;
    h->cfg = *cfg;
    if (!h->cfg.poll_interval_ms)
        h->cfg.poll_interval_ms = 1000;
    if (!h->cfg.ws_idle_ms)
        h->cfg.ws_idle_ms = 10 * h->cfg.poll_interval_ms;
    if (!h->cfg.reconnect_min_ms)
        h->cfg.reconnect_min_ms = 250;
    if (!h->cfg.reconnect_max_ms)
        h->cfg.reconnect_max_ms = 30000;
    if (h->cfg.reconnect_max_ms < h->cfg.reconnect_min_ms)
        h->cfg.reconnect_max_ms = h->cfg.reconnect_min_ms;
    if (!h->cfg.queue_cap)
        h->cfg.queue_cap = 4096;
    h->backoff_ms = h->cfg.reconnect_min_ms;
    util_strlcpy(h->name, cfg->name ? cfg->name : "default", sizeof h->name);
    h->cfg.name = h->name;
    h->cfg.ws_url = NULL;
    pthread_mutex_init(&h->mu, NULL);
    atomic_init(&h->stop, 0);
    h->q = util_calloc(h->cfg.queue_cap, sizeof *h->q);
    h->msg = util_malloc(MAX_MSG);

    if (cfg->ws_url) {
        h->urlbuf = util_strdup(cfg->ws_url);
        const char *prot = NULL, *path = NULL;
        if (lws_parse_uri(h->urlbuf, &prot, &h->address, &h->port, &path) ||
            (strcmp(prot, "ws") != 0 && strcmp(prot, "wss") != 0) || !h->address[0]) {
            util_err(err, errlen, "heads: ws_url must be ws:// or wss://");
            heads_free(h);
            return NULL;
        }
        h->tls = !strcmp(prot, "wss");
        /* lws_parse_uri gives "/" for no path but "x" (no slash) for "/x". */
        if (!path)
            path = "";
        snprintf(h->path, sizeof h->path, "%s%s", path[0] == '/' ? "" : "/", path);
    }
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->efd < 0) {
        util_err(err, errlen, "heads: eventfd: %s", strerror(errno));
        heads_free(h);
        return NULL;
    }

    pthread_once(&lws_log_once, lws_log_init);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = h;
    info.timeout_secs = 10;
    info.connect_timeout_secs = 5;
    info.options = h->tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
    h->ctx = lws_create_context(&info);
    if (!h->ctx) {
        util_err(err, errlen, "heads: lws_create_context failed");
        heads_free(h);
        return NULL;
    }

    metrics_registry *reg = metrics_global();
    char esc[160], labels[256];
    metrics_label_escape(esc, sizeof esc, h->name);
    static const char *const src[3] = {"ws", "poll", "gap"};
    for (int i = 0; i < 3; i++) {
        snprintf(labels, sizeof labels, "name=\"%s\",source=\"%s\"", esc, src[i]);
        h->m_src[i] = metrics_counter_get(reg, "paimon_heads_delivered_total",
                                          "Block headers delivered, by source", labels);
    }
    snprintf(labels, sizeof labels, "name=\"%s\"", esc);
    h->m_dup = metrics_counter_get(reg, "paimon_heads_duplicates_total",
                                   "Headers dropped as already delivered", labels);
    h->m_reconnect = metrics_counter_get(reg, "paimon_heads_ws_reconnects_total",
                                         "WebSocket connection losses and failed connects", labels);
    h->m_ws = metrics_gauge_get(reg, "paimon_heads_ws_subscribed",
                                "1 while the newHeads subscription is live", labels);
    h->m_last = metrics_gauge_get(reg, "paimon_heads_last_block", "Last delivered block", labels);
    h->m_adv = metrics_gauge_get(reg, "paimon_heads_last_advance_timestamp_seconds",
                                 "Wall time the delivered head last grew (alert when old)", labels);
    metrics_gauge_set(h->m_ws, 0);

    if (pthread_create(&h->thread, NULL, run, h) != 0) {
        util_err(err, errlen, "heads: pthread_create failed");
        lws_context_destroy(h->ctx);
        h->ctx = NULL;
        heads_free(h);
        return NULL;
    }
    return h;
}

void heads_free(heads *h)
{
    if (!h)
        return;
    if (h->ctx) {
        atomic_store(&h->stop, 1);
        lws_cancel_service(h->ctx);
        pthread_join(h->thread, NULL);
        lws_context_destroy(h->ctx);
    }
    if (h->efd >= 0)
        close(h->efd);
    pthread_mutex_destroy(&h->mu);
    free(h->q);
    free(h->msg);
    free(h->urlbuf);
    free(h);
}
