/* ws: WebSocket fan-out of the updates stream with resume (see ws.h). */
#include "ws.h"

#include "log.h"
#include "rconn.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#define NCHAN        6
#define RX_MAX       16384 /* client messages are tiny; anything bigger is abuse */
#define PAGE         200   /* XRANGE / XREAD batch */
#define INBOUND_MAX  20000 /* entries read but not yet fanned out */
#define REPLAY_PAGES 20    /* pages per turn, so one resuming client cannot hog the loop */

static const char *const chan_names[NCHAN] = {"fund", "redemptions", "approvals",
                                              "risk", "rebalance",   "alerts"};

/* Envelope type prefixes (before the first '.') per channel. */
static const struct {
    const char *prefix;
    int chan;
} type_map[] = {
    {"fund", 0},     {"nav", 0},  {"redemption", 1}, {"settlement", 1},
    {"approval", 2}, {"risk", 3}, {"rebalance", 4},  {"alert", 5},
};

typedef struct ws_msg {
    struct ws_msg *next; /* inbound list only */
    int refs;            /* touched on the lws thread only */
    int chan;            /* -1: control reply */
    uint64_t ms, seq;
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes, then the payload */
} ws_msg;

typedef struct ws_conn {
    struct ws_conn *next, *prev;
    struct lws *wsi;
    int authed;
    gw_principal who;
    unsigned chans;
    int replaying;
    uint64_t last_ms, last_seq; /* last entry queued (or skipped) for this client */
    ws_msg **q;
    int qhead, qlen;
    int close_code;
    char close_reason[96];
    char *rx;
    size_t rxlen;
} ws_conn;

struct ws_server {
    ws_config cfg;
    struct lws_context *ctx;
    int port;
    pthread_t svc_thread, rd_thread;
    int started;
    atomic_int stop;
    pthread_mutex_t mu;
    ws_msg *in_head, *in_tail; /* reader -> lws thread */
    int in_len;
    ws_conn *conns; /* lws thread only */
    int nconns;
    redisContext *redis; /* lws thread: token deny list, replays */
    int64_t redis_retry_ms;
};

/* ---------- small helpers ---------- */

const char *ws_channel_of(const char *type)
{
    if (!type)
        return NULL;
    size_t n = strcspn(type, ".");
    for (size_t i = 0; i < sizeof type_map / sizeof type_map[0]; i++)
        if (strlen(type_map[i].prefix) == n && strncmp(type, type_map[i].prefix, n) == 0)
            return chan_names[type_map[i].chan];
    return NULL;
}

static int chan_index(const char *name)
{
    for (int i = 0; i < NCHAN; i++)
        if (strcmp(name, chan_names[i]) == 0)
            return i;
    return -1;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int ws_parse_id(const char *s, uint64_t *ms, uint64_t *seq)
{
    if (!s)
        return -1;
    const char *dash = strchr(s, '-');
    if (!dash) {
        *seq = 0;
        return parse_u64(s, strlen(s), ms);
    }
    if (parse_u64(s, (size_t)(dash - s), ms) != 0)
        return -1;
    return parse_u64(dash + 1, strlen(dash + 1), seq);
}

static int id_gt(uint64_t ams, uint64_t aseq, uint64_t bms, uint64_t bseq)
{
    return ams > bms || (ams == bms && aseq > bseq);
}

static ws_msg *msg_new(const char *payload, size_t len, int chan)
{
    ws_msg *m = util_malloc(sizeof *m + LWS_PRE + len + 1);
    m->next = NULL;
    m->refs = 1;
    m->chan = chan;
    m->ms = m->seq = 0;
    m->len = len;
    memcpy(m->buf + LWS_PRE, payload, len);
    m->buf[LWS_PRE + len] = '\0';
    return m;
}

static void msg_unref(ws_msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

/* Renders a stream entry (id + the `env` field) as an event frame. NULL when the
 * entry is malformed or belongs to no channel: it is skipped, never fatal. */
static ws_msg *event_from_entry(const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    const char *id = e->element[0]->str;
    uint64_t ms, seq;
    if (ws_parse_id(id, &ms, &seq) != 0)
        return NULL;
    const redisReply *f = e->element[1];
    const char *env = NULL;
    size_t envlen = 0;
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, "env") == 0 &&
            f->element[i + 1]->type == REDIS_REPLY_STRING) {
            env = f->element[i + 1]->str;
            envlen = f->element[i + 1]->len;
        }
    if (!env)
        return NULL;
    /* Parsed strictly (no trailing bytes, no embedded NUL), so the text can be embedded
     * in the frame as it is. */
    cJSON *j = strlen(env) == envlen ? cJSON_ParseWithOpts(env, NULL, 1) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    const char *ch = cJSON_IsObject(j) && cJSON_IsString(t) ? ws_channel_of(t->valuestring) : NULL;
    cJSON_Delete(j);
    if (!ch)
        return NULL;
    size_t cap = envlen + 128;
    char *txt = util_malloc(cap);
    int n = snprintf(txt, cap,
                     "{\"type\":\"event\",\"channel\":\"%s\",\"id\":\"%s\",\"event\":", ch, id);
    if (n < 0 || (size_t)n + envlen + 2 > cap) {
        free(txt);
        return NULL;
    }
    memcpy(txt + n, env, envlen);
    txt[(size_t)n + envlen] = '}';
    ws_msg *m = msg_new(txt, (size_t)n + envlen + 1, chan_index(ch));
    free(txt);
    m->ms = ms;
    m->seq = seq;
    return m;
}

static redisContext *lws_redis(ws_server *s)
{
    if (s->redis && s->redis->err) {
        redisFree(s->redis);
        s->redis = NULL;
    }
    if (!s->redis && util_mono_ms() >= s->redis_retry_ms) {
        char err[UTIL_ERRLEN];
        s->redis = rconn_connect(s->cfg.redis_url, 1000, err, sizeof err);
        if (!s->redis) {
            s->redis_retry_ms = util_mono_ms() + 1000;
            log_warn("ws: redis unavailable", "error", err);
        }
    }
    return s->redis;
}

/* ---------- per-connection queue ---------- */

static void conn_close(ws_conn *c, int code, const char *reason)
{
    if (c->close_code)
        return;
    c->close_code = code;
    util_strlcpy(c->close_reason, reason, sizeof c->close_reason);
    lws_callback_on_writable(c->wsi);
}

/* Queues m (taking a reference). A full queue means the client does not keep up: it
 * is dropped, so one slow reader never holds memory or delays anyone else. */
static int conn_push(ws_server *s, ws_conn *c, ws_msg *m)
{
    if (c->close_code)
        return -1;
    if (c->qlen >= s->cfg.queue_max) {
        log_warn("ws: slow consumer dropped", "user", c->who.user_id);
        conn_close(c, 4008, "slow consumer: send queue overflow");
        return -1;
    }
    m->refs++;
    c->q[(c->qhead + c->qlen) % s->cfg.queue_max] = m;
    c->qlen++;
    lws_callback_on_writable(c->wsi);
    return 0;
}

static void conn_reply(ws_server *s, ws_conn *c, cJSON *o)
{
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt)
        return;
    ws_msg *m = msg_new(txt, strlen(txt), -1);
    cJSON_free(txt);
    conn_push(s, c, m);
    msg_unref(m);
}

static void conn_error(ws_server *s, ws_conn *c, const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "error");
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "message", message);
    conn_reply(s, c, o);
}

static void conn_free_queue(ws_server *s, ws_conn *c)
{
    while (c->qlen > 0) {
        msg_unref(c->q[c->qhead]);
        c->qhead = (c->qhead + 1) % s->cfg.queue_max;
        c->qlen--;
    }
}

/* ---------- replay ---------- */

static void id_text(uint64_t ms, uint64_t seq, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIu64 "-%" PRIu64, ms, seq);
}

/* Warns the client when entries it has not seen were trimmed away (Redis 7 keeps the
 * largest deleted id per stream). */
static void replay_gap_check(ws_server *s, ws_conn *c, redisContext *rc)
{
    redisReply *r = redisCommand(rc, "XINFO STREAM %s", s->cfg.stream);
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const redisReply *k = r->element[i], *v = r->element[i + 1];
            uint64_t ms, seq;
            if (k->type == REDIS_REPLY_STRING && strcmp(k->str, "max-deleted-entry-id") == 0 &&
                v->type == REDIS_REPLY_STRING && ws_parse_id(v->str, &ms, &seq) == 0 &&
                id_gt(ms, seq, c->last_ms, c->last_seq)) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "type", "gap");
                cJSON_AddStringToObject(o, "message",
                                        "some events after lastEventId are no longer retained; "
                                        "reload current state over REST");
                cJSON_AddStringToObject(o, "trimmedThrough", v->str);
                conn_reply(s, c, o);
            }
        }
    freeReplyObject(r);
}

/* Fills the client's queue from the stream after its last id; switches it to live
 * when the stream has nothing more. */
static void replay_more(ws_server *s, ws_conn *c)
{
    for (int page = 0; page < REPLAY_PAGES && c->replaying && !c->close_code; page++) {
        int room = s->cfg.queue_max - c->qlen - 1; /* one slot kept for caught_up */
        if (room <= 0)
            return;
        int want = room < PAGE ? room : PAGE;
        redisContext *rc = lws_redis(s);
        if (!rc) {
            conn_close(c, 1011, "updates temporarily unavailable");
            return;
        }
        char from[48];
        id_text(c->last_ms, c->last_seq, from, sizeof from);
        redisReply *r = redisCommand(rc, "XRANGE %s (%s + COUNT %d", s->cfg.stream, from, want);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject(r);
            conn_close(c, 1011, "updates temporarily unavailable");
            return;
        }
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            uint64_t ms, seq;
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
                e->element[0]->type != REDIS_REPLY_STRING ||
                ws_parse_id(e->element[0]->str, &ms, &seq) != 0)
                continue;
            c->last_ms = ms;
            c->last_seq = seq;
            ws_msg *m = event_from_entry(e);
            if (m && (c->chans & (1u << m->chan)))
                conn_push(s, c, m);
            msg_unref(m);
        }
        int done = (int)r->elements < want;
        freeReplyObject(r);
        if (done) {
            c->replaying = 0;
            char last[48];
            id_text(c->last_ms, c->last_seq, last, sizeof last);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "type", "caught_up");
            cJSON_AddStringToObject(o, "lastEventId", last);
            conn_reply(s, c, o);
        }
    }
    if (c->replaying)
        lws_callback_on_writable(c->wsi);
}

/* ---------- client messages ---------- */

static unsigned parse_channels(const cJSON *arr, const char **bad)
{
    unsigned mask = 0;
    const cJSON *it;
    *bad = NULL;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0 || cJSON_GetArraySize(arr) > NCHAN * 2)
        return 0;
    cJSON_ArrayForEach(it, arr)
    {
        int i = cJSON_IsString(it) ? chan_index(it->valuestring) : -1;
        if (i < 0) {
            *bad = cJSON_IsString(it) ? it->valuestring : "(not a string)";
            return 0;
        }
        mask |= 1u << i;
    }
    return mask;
}

static cJSON *channel_list(unsigned mask)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < NCHAN; i++)
        if (mask & (1u << i))
            cJSON_AddItemToArray(a, cJSON_CreateString(chan_names[i]));
    return a;
}

static void on_auth(ws_server *s, ws_conn *c, const cJSON *msg)
{
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(msg, "token");
    gw_principal p;
    if (!cJSON_IsString(tok) || strlen(tok->valuestring) > 4096 ||
        gw_access_verify(s->cfg.gw, lws_redis(s), tok->valuestring, &p) != 0) {
        conn_close(c, 4401, "invalid token");
        return;
    }
    if (p.role < RBAC_VIEWER) {
        conn_close(c, 4401, "invalid token");
        return;
    }
    c->who = p;
    c->authed = 1;
    int64_t left_ms = p.exp * 1000 - util_now_ms();
    /* the socket ends with the token, like a REST call made at that moment would */
    lws_set_timer_usecs(c->wsi, (lws_usec_t)(left_ms > 0 ? left_ms : 1) * 1000);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "authenticated");
    cJSON_AddStringToObject(o, "userId", p.user_id);
    cJSON_AddStringToObject(o, "role", rbac_role_name(p.role));
    cJSON_AddNumberToObject(o, "expiresAt", (double)p.exp);
    cJSON_AddItemToObject(o, "channels", channel_list((1u << NCHAN) - 1));
    conn_reply(s, c, o);
}

static void on_subscribe(ws_server *s, ws_conn *c, const cJSON *msg, int add)
{
    const char *bad;
    unsigned mask = parse_channels(cJSON_GetObjectItemCaseSensitive(msg, "channels"), &bad);
    if (!mask) {
        conn_error(s, c, "invalid_channels",
                   bad ? "unknown channel" : "channels must be a non-empty array of channel names");
        return;
    }
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(msg, "lastEventId");
    uint64_t ms = 0, seq = 0;
    if (add && last && !cJSON_IsNull(last) &&
        (!cJSON_IsString(last) || ws_parse_id(last->valuestring, &ms, &seq) != 0)) {
        conn_error(s, c, "invalid_last_event_id", "lastEventId must be a stream id like 1-0");
        return;
    }
    c->chans = add ? c->chans | mask : c->chans & ~mask;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", add ? "subscribed" : "unsubscribed");
    cJSON_AddItemToObject(o, "channels", channel_list(c->chans));
    conn_reply(s, c, o);
    if (add && cJSON_IsString(last)) {
        c->last_ms = ms;
        c->last_seq = seq;
        c->replaying = 1;
        redisContext *rc = lws_redis(s);
        if (rc)
            replay_gap_check(s, c, rc);
        replay_more(s, c);
    }
}

static void on_message(ws_server *s, ws_conn *c)
{
    /* NUL-terminated strict parse (cJSON's length variant cannot insist on no trailing
     * bytes); an embedded NUL would hide the rest, so it is refused outright */
    cJSON *msg = strlen(c->rx) == c->rxlen ? cJSON_ParseWithOpts(c->rx, NULL, 1) : NULL;
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(msg, "op");
    const char *o = cJSON_IsObject(msg) && cJSON_IsString(op) ? op->valuestring : "";
    if (!c->authed) {
        if (strcmp(o, "auth") == 0)
            on_auth(s, c, msg);
        else
            conn_close(c, 4401,
                       "authentication required: send {\"op\":\"auth\",\"token\":...} first");
    } else if (strcmp(o, "subscribe") == 0) {
        on_subscribe(s, c, msg, 1);
    } else if (strcmp(o, "unsubscribe") == 0) {
        on_subscribe(s, c, msg, 0);
    } else if (strcmp(o, "ping") == 0) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "type", "pong");
        conn_reply(s, c, r);
    } else if (strcmp(o, "auth") == 0) {
        conn_error(s, c, "already_authenticated", "this connection is already authenticated");
    } else {
        conn_error(s, c, msg ? "unknown_op" : "invalid_json",
                   msg ? "op must be subscribe, unsubscribe or ping" : "message is not JSON");
    }
    cJSON_Delete(msg);
}

/* ---------- fan-out ---------- */

/* Hands at most a quarter of a queue's worth of entries to the clients per loop turn,
 * then lets the writes run: a burst read from the stream in one go must not overflow
 * a client that keeps up, only one whose socket stays choked while its queue fills. */
static void fan_out(ws_server *s)
{
    int k = s->cfg.queue_max / 4 > 0 ? s->cfg.queue_max / 4 : 1;
    pthread_mutex_lock(&s->mu);
    ws_msg *m = s->in_head, *last = NULL;
    int n = 0;
    for (ws_msg *p = s->in_head; p && n < k; p = p->next, n++)
        last = p;
    if (last) {
        s->in_head = last->next;
        if (!s->in_head)
            s->in_tail = NULL;
        last->next = NULL;
        s->in_len -= n;
    }
    int more = s->in_head != NULL;
    pthread_mutex_unlock(&s->mu);
    if (!last)
        m = NULL;
    while (m) {
        ws_msg *next = m->next;
        m->next = NULL;
        for (ws_conn *c = s->conns; c; c = c->next) {
            if (!c->authed || c->replaying || !(c->chans & (1u << m->chan)) ||
                !id_gt(m->ms, m->seq, c->last_ms, c->last_seq))
                continue;
            c->last_ms = m->ms;
            c->last_seq = m->seq;
            conn_push(s, c, m);
        }
        msg_unref(m);
        m = next;
    }
    if (more)
        lws_cancel_service(s->ctx);
}

/* ---------- lws callbacks ---------- */

static int on_writable(ws_server *s, ws_conn *c)
{
    if (c->close_code) {
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    /* as much as the socket takes now; a choked socket leaves the rest queued */
    while (c->qlen > 0 && !lws_send_pipe_choked(c->wsi)) {
        ws_msg *m = c->q[c->qhead];
        c->qhead = (c->qhead + 1) % s->cfg.queue_max;
        c->qlen--;
        int n = lws_write(c->wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        msg_unref(m);
        if (n < 0)
            return -1;
        if (c->replaying && c->qlen < s->cfg.queue_max / 2)
            replay_more(s, c);
    }
    if (c->replaying && c->qlen < s->cfg.queue_max / 2)
        replay_more(s, c);
    if (c->qlen > 0 || c->close_code)
        lws_callback_on_writable(c->wsi);
    return 0;
}

static int on_receive(ws_server *s, ws_conn *c, const void *in, size_t len)
{
    if (c->close_code)
        return 0;
    if (c->rxlen + len > RX_MAX) {
        conn_close(c, 1009, "message too big");
        return 0;
    }
    c->rx = realloc(c->rx, c->rxlen + len + 1);
    if (!c->rx)
        abort();
    memcpy(c->rx + c->rxlen, in, len);
    c->rxlen += len;
    c->rx[c->rxlen] = '\0'; /* the strict parse wants the byte after the text to be NUL */
    if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi) > 0)
        return 0;
    if (lws_frame_is_binary(c->wsi))
        conn_close(c, 1003, "text frames only");
    else
        on_message(s, c);
    free(c->rx);
    c->rx = NULL;
    c->rxlen = 0;
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    ws_server *s = ctx ? lws_context_user(ctx) : NULL;
    ws_conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[64];
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 ||
            (strcmp(uri, "/ws") != 0 && strcmp(uri, "/") != 0))
            return 1;
        return s->nconns >= s->cfg.max_clients ? 1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        memset(c, 0, sizeof *c);
        c->wsi = wsi;
        c->q = util_calloc((size_t)s->cfg.queue_max, sizeof *c->q);
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        lws_set_timer_usecs(wsi, (lws_usec_t)s->cfg.auth_timeout_ms * 1000);
        return 0;
    case LWS_CALLBACK_TIMER:
        conn_close(c, c->authed ? 4401 : 4408,
                   c->authed ? "token expired" : "authentication timeout");
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(s, c, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writable(s, c);
    case LWS_CALLBACK_CLOSED:
        if (!c->q)
            return 0;
        conn_free_queue(s, c);
        free(c->q);
        c->q = NULL;
        free(c->rx);
        c->rx = NULL;
        if (c->prev)
            c->prev->next = c->next;
        else
            s->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        s->nconns--;
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (s)
            fan_out(s);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"paimon-updates", callback, sizeof(ws_conn), RX_MAX, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Keeps idle connections honest: a peer that stops answering pings is closed. */
static const lws_retry_bo_t retry = {
    .secs_since_valid_ping = 30,
    .secs_since_valid_hangup = 70,
};

/* ---------- threads ---------- */

static void *svc_main(void *arg)
{
    ws_server *s = arg;
    while (!atomic_load(&s->stop))
        if (lws_service(s->ctx, 0) < 0)
            break;
    return NULL;
}

/* The id after which live reading starts: the stream's newest entry at start-up, so
 * nothing added after that is missed and nothing older is re-sent. */
static int start_cursor(redisContext *rc, const char *stream, char *out, size_t len)
{
    redisReply *r = redisCommand(rc, "XREVRANGE %s + - COUNT 1", stream);
    int ok = r && r->type == REDIS_REPLY_ARRAY;
    util_strlcpy(out, "0-0", len);
    if (ok && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements >= 1 && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        util_strlcpy(out, r->element[0]->element[0]->str, len);
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

static void hand_over(ws_server *s, ws_msg *m)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (s->in_len < INBOUND_MAX || atomic_load(&s->stop))
            break;
        pthread_mutex_unlock(&s->mu);
        util_sleep_ms(1); /* the lws thread is behind: wait, never drop from the stream */
    }
    if (s->in_tail)
        s->in_tail->next = m;
    else
        s->in_head = m;
    s->in_tail = m;
    s->in_len++;
    pthread_mutex_unlock(&s->mu);
}

static void *reader_main(void *arg)
{
    ws_server *s = arg;
    redisContext *rc = NULL;
    char cursor[48] = "";
    while (!atomic_load(&s->stop)) {
        char err[UTIL_ERRLEN];
        if (!rc) {
            /* the command timeout must outlast BLOCK */
            rc = rconn_connect(s->cfg.redis_url, 3000, err, sizeof err);
            if (!rc) {
                log_warn("ws: stream reader cannot reach redis", "error", err);
                util_sleep_ms(500);
                continue;
            }
            if (!cursor[0] && start_cursor(rc, s->cfg.stream, cursor, sizeof cursor) != 0) {
                redisFree(rc);
                rc = NULL;
                util_sleep_ms(500);
                continue;
            }
        }
        redisReply *r =
            redisCommand(rc, "XREAD COUNT %d BLOCK 500 STREAMS %s %s", PAGE, s->cfg.stream, cursor);
        if (!r) {
            log_warn("ws: XREAD failed", "error", rc->errstr);
            redisFree(rc);
            rc = NULL;
            util_sleep_ms(200);
            continue;
        }
        int handed = 0;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
            r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2) {
            const redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
                const redisReply *e = entries->element[i];
                if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1 &&
                    e->element[0]->type == REDIS_REPLY_STRING)
                    util_strlcpy(cursor, e->element[0]->str, sizeof cursor);
                ws_msg *m = event_from_entry(e);
                if (m) {
                    hand_over(s, m);
                    handed++;
                }
            }
        } else if (r->type == REDIS_REPLY_ERROR) {
            log_warn("ws: XREAD error", "error", r->str);
            util_sleep_ms(200);
        }
        freeReplyObject(r);
        if (handed)
            lws_cancel_service(s->ctx);
    }
    if (rc)
        redisFree(rc);
    return NULL;
}

/* ---------- life cycle ---------- */

static void lws_to_log(int level, const char *line)
{
    char buf[256];
    util_strlcpy(buf, line, sizeof buf);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (level & LLL_ERR)
        log_error("libwebsockets", "msg", buf);
    else
        log_warn("libwebsockets", "msg", buf);
}

ws_server *ws_new(const ws_config *cfg, char *err, size_t errlen)
{
    if (cfg->queue_max < 4 || cfg->max_clients < 1 || !cfg->gw || !cfg->stream || !cfg->redis_url) {
        util_err(err, errlen, "ws: bad configuration");
        return NULL;
    }
    ws_server *s = util_calloc(1, sizeof *s);
    s->cfg = *cfg;
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->stop, 0);
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port;
    info.iface = cfg->bind && *cfg->bind ? cfg->bind : NULL;
    info.protocols = protocols;
    info.user = s;
    info.retry_and_idle_policy = &retry;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    /* SIGPIPE on a dead peer is handled by the daemon's life cycle, not here */
    info.options |= LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        util_err(err, errlen, "ws: cannot create the libwebsockets context");
        goto fail;
    }
    struct lws_vhost *vh = lws_create_vhost(s->ctx, &info);
    if (!vh) {
        util_err(err, errlen, "ws: cannot listen on %s:%d", cfg->bind ? cfg->bind : "*", cfg->port);
        goto fail;
    }
    s->port = lws_get_vhost_listen_port(vh);
    return s;
fail:
    ws_free(s);
    return NULL;
}

int ws_port(const ws_server *s)
{
    return s->port;
}

int ws_start(ws_server *s, char *err, size_t errlen)
{
    if (pthread_create(&s->svc_thread, NULL, svc_main, s) != 0)
        return util_err(err, errlen, "ws: cannot start the service thread");
    if (pthread_create(&s->rd_thread, NULL, reader_main, s) != 0) {
        atomic_store(&s->stop, 1);
        lws_cancel_service(s->ctx);
        pthread_join(s->svc_thread, NULL);
        return util_err(err, errlen, "ws: cannot start the stream reader");
    }
    s->started = 1;
    return 0;
}

void ws_stop(ws_server *s)
{
    if (!s || !s->started)
        return;
    atomic_store(&s->stop, 1);
    lws_cancel_service(s->ctx);
    pthread_join(s->svc_thread, NULL);
    pthread_join(s->rd_thread, NULL);
    s->started = 0;
}

void ws_free(ws_server *s)
{
    if (!s)
        return;
    ws_stop(s);
    if (s->ctx)
        lws_context_destroy(s->ctx); /* CLOSED for each connection frees its queue */
    ws_msg *m = s->in_head;
    while (m) {
        ws_msg *n = m->next;
        free(m);
        m = n;
    }
    if (s->redis)
        redisFree(s->redis);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
