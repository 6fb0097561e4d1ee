/* chain: one chain's listener loop (see chain.h). */
#include "chain.h"

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "envelope.h"
#include "evid.h"
#include "heads.h"
#include "hex.h"
#include "lock.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "range.h"
#include "rconn.h"
#include "reorg.h"
#include "store.h"
#include "util.h"

#define TOPIC_EVENTS     "chain.events"
#define TOPIC_ALERTS     "alerts"
#define HEADER_CHUNK     100
#define REPUBLISH_LIMIT  1000
#define ERROR_BACKOFF_MS 500
#define HEAD_REFRESH_MS  1000
#define PUB_DEPTH        2 /* committed batches queued for the publisher */

/* A block range read from the node and decoded, ready for the worker to check and
 * commit. The prefetcher prepares the next range this way while the worker commits
 * the current one. Owns everything it points to (prep_clear). */
typedef struct prep {
    int64_t from, to;
    int rc;          /* 0 ready; 1 the node moved or lacks a block: re-run; -1 failed */
    int logs_failed; /* eth_getLogs itself failed: e says why (the range control needs it) */
    rpc_error e;
    char err[UTIL_ERRLEN]; /* why, for the other failures ("" if already logged) */
    size_t nlogs;
    int64_t *nums; /* sorted, unique block numbers whose headers are in hdrs */
    rpc_header *hdrs;
    size_t nn;
    int64_t win_from; /* the reorg window: [win_from, to], nwin blocks (maybe none) */
    size_t nwin;
    store_row *rows;
    size_t nrows;
    int64_t logs_ms, headers_ms, decode_ms;
} prep;

struct chain {
    chain_cfg cfg;
    char **urls;
    char *ws_url, *redis_url;
    chain_contract *contracts;
    cJSON *topics; /* [[topic0, ...]]: every event of every ABI */
    rpc_client *rpc;
    heads *heads;
    redisContext *redis;
    range_ctl range;
    char label[48];
    char lock_name[LOCK_NAME_MAX];

    /* worker state (worker thread only) */
    lock_lease lease;
    int leader;
    store_checkpoint cp;
    int reinc;       /* some event was ever removed: re-inclusions need their own ids */
    int pending_pub; /* rows committed but not yet on the stream */
    int64_t head;
    int64_t head_read_ms; /* when head was last asked of the node (0: ask now) */

    pthread_t thread;
    int started;

    /* publisher thread: committed batches in commit order (pub_mu guards the pub_
     * fields below it). After a failure the rest of the queue is dropped unsent: the
     * watermark must not pass a batch that is not out, and republish() sends them. */
    pthread_t pub_thread;
    int pub_started;
    pthread_mutex_t pub_mu;
    pthread_cond_t pub_cv;
    int pub_busy, pub_stop, pub_result, pub_rc, pub_fenced;
    struct pub_item {
        store_row *rows;
        size_t n;
        int64_t upto, fence;
    } pub_q[PUB_DEPTH];
    size_t pub_first, pub_count; /* the queue; the first item is in flight while busy */
    redisContext *pub_redis;     /* publisher thread only */

    /* prefetcher thread: the next backfill range is read, its headers fetched and its
     * logs decoded while the worker commits this one (pf_mu guards the pf_ fields;
     * pf_rpc is its own client) */
    pthread_t pf_thread;
    int pf_started;
    pthread_mutex_t pf_mu;
    pthread_cond_t pf_cv;
    int pf_want, pf_busy, pf_done, pf_stop;
    int64_t pf_from, pf_to, pf_head;
    prep pf_prep;
    rpc_client *pf_rpc;
    atomic_int stop;
    pthread_mutex_t mu; /* guards st */
    chain_status st;

    /* metrics */
    metrics_gauge *g_head, *g_cp, *g_lag_blocks, *g_lag_seconds, *g_leader, *g_halted, *g_span,
        *g_rate, *g_depth;
    metrics_counter *m_events, *m_reorgs, *m_removed, *m_undecoded, *m_pub_err, *m_batches,
        *m_shrinks;
    metrics_histogram *h_delay;
    int64_t rate_t0;
    uint64_t rate_n0;
};

/* ------------------------------------------------------------------ status */

static void publish_status(chain *c)
{
    pthread_mutex_lock(&c->mu);
    c->st.leader = c->leader;
    c->st.halted = c->cp.halted;
    c->st.fence = c->leader ? c->lease.fence : 0;
    c->st.checkpoint = c->cp.last_block;
    c->st.checkpoint_time = c->cp.last_time;
    c->st.head = c->head;
    c->st.span = c->range.span;
    pthread_mutex_unlock(&c->mu);
    metrics_gauge_set(c->g_head, (double)c->head);
    metrics_gauge_set(c->g_cp, (double)c->cp.last_block);
    int64_t lag = c->head > c->cp.last_block ? c->head - c->cp.last_block : 0;
    metrics_gauge_set(c->g_lag_blocks, (double)lag);
    int64_t now = util_now_ms() / 1000;
    metrics_gauge_set(c->g_lag_seconds, c->cp.last_time > 0 && now > c->cp.last_time
                                            ? (double)(now - c->cp.last_time)
                                            : 0.0);
    metrics_gauge_set(c->g_leader, c->leader);
    metrics_gauge_set(c->g_halted, c->cp.halted);
    metrics_gauge_set(c->g_span, (double)c->range.span);
    int64_t t = util_mono_ms();
    if (t - c->rate_t0 >= 5000) {
        uint64_t n = (uint64_t)metrics_counter_value(c->m_events);
        metrics_gauge_set(c->g_rate, (double)(n - c->rate_n0) * 1000.0 / (double)(t - c->rate_t0));
        c->rate_t0 = t;
        c->rate_n0 = n;
    }
}

void chain_get_status(chain *c, chain_status *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}

rpc_client *chain_rpc(chain *c)
{
    return c->rpc;
}

/* ------------------------------------------------------------------ redis / publish */

static redisContext *redis_on(chain *c, redisContext **slot);

static redisContext *redis(chain *c)
{
    return redis_on(c, &c->redis);
}

static redisContext *redis_on(chain *c, redisContext **slot)
{
    if (*slot) {
        if (!(*slot)->err)
            return *slot;
        redisFree(*slot);
    }
    char err[UTIL_ERRLEN];
    *slot = rconn_connect(c->redis_url, 2000, err, sizeof err);
    if (!*slot)
        log_warn("redis unavailable", "chain", c->label, "error", err);
    return *slot;
}

/* Publishes rows (all originals or all compensations) on the connection in *slot and
 * records what went out: compensations by row, originals as the watermark `upto`
 * (every live event up to that block is then on the stream; < 0: do not move it),
 * fenced with `fence`. 0 when everything did; *fenced set when the lease was lost.
 * Touches no worker state, so the publisher thread runs it too. */
static int publish_core(chain *c, redisContext **slot, const store_row *rows, size_t n,
                        int compensations, int64_t upto, int64_t fence, int *fenced)
{
    char err[UTIL_ERRLEN];
    size_t sent = 0;
    int rc_pub = 0;
    *fenced = 0;
    if (n) {
        redisContext *rc = redis_on(c, slot);
        if (!rc)
            return -1;
        char **js = util_calloc(n, sizeof *js);
        bus_priority *pr = util_calloc(n, sizeof *pr);
        char ts[32], trace[33];
        envelope_format_ts(util_now_ms(), ts);
        msg_trace tr;
        msg_trace_init(&tr);
        size_t k = 0, first_bad = n;
        for (size_t i = 0; i < n; i++) {
            msg_trace_next(&tr, trace);
            if (!(js[k] = msg_event_json(c->cfg.chain_id, &rows[i], compensations, ts, trace))) {
                log_error("cannot build an envelope", "chain", c->label, "id", rows[i].id);
                if (first_bad == n)
                    first_bad = i;
                continue;
            }
            pr[k++] = rows[i].prio;
        }
        rc_pub = bus_publish_json_many(rc, TOPIC_EVENTS, pr, (const char *const *)js, k, &sent, err,
                                       sizeof err);
        for (size_t i = 0; i < k; i++)
            free(js[i]);
        free(js);
        free(pr);
        if (k < n) {
            rc_pub = -1; /* an envelope could not be built: never move the watermark */
            if (sent > first_bad)
                sent = first_bad; /* rows after the gap do not line up with sent */
        }
        if (rc_pub != 0) {
            metrics_counter_inc(c->m_pub_err);
            log_warn("publish failed; will re-publish", "chain", c->label, "error", err);
        }
        if (!compensations) {
            int64_t now = util_now_ms();
            for (size_t i = 0; i < sent && i < n; i++)
                metrics_histogram_observe(c->h_delay,
                                          (double)(now - rows[i].block_time * 1000) / 1000.0);
        }
    }
    /* Compensations are marked one by one (what went out); the watermark moves only
     * when everything did: the rest stays pending and is sent again (same ids). */
    size_t mark = sent < n ? sent : n;
    if ((compensations && mark == 0) || (!compensations && (rc_pub != 0 || upto < 0)))
        return rc_pub;
    db_conn *dc = db_acquire(c->cfg.db, 5000, err, sizeof err);
    int rc = -1;
    if (dc)
        rc = compensations
                 ? store_mark_compensated(dc, c->cfg.chain_id, rows, mark, err, sizeof err)
                 : store_published_upto(dc, c->cfg.chain_id, fence, upto, err, sizeof err);
    if (dc)
        db_release(c->cfg.db, dc);
    if (rc == 1) {
        log_warn("lease lost: not moving the publish watermark", "chain", c->label);
        *fenced = 1;
        return -1;
    }
    if (rc != 0) {
        log_warn("cannot record what was published (will re-publish)", "chain", c->label, "error",
                 err);
        return -1;
    }
    return rc_pub;
}

/* A publish outcome seen by the worker: a failure leaves rows for republish(). */
static void publish_outcome(chain *c, int rc, int fenced)
{
    if (fenced)
        c->leader = 0;
    else if (rc != 0)
        c->pending_pub = 1;
}

/* Synchronous publish on the worker's own connection. */
static int publish_rows(chain *c, const store_row *rows, size_t n, int compensations, int64_t upto)
{
    int fenced = 0;
    int rc = publish_core(c, &c->redis, rows, n, compensations, upto, c->lease.fence, &fenced);
    publish_outcome(c, rc, fenced);
    return rc;
}

/* ---- the publisher thread: committed batches go out while the worker reads,
 * decodes and commits the next ones (at most PUB_DEPTH queued; the outcome of a
 * failure is collected by pub_poll / pub_drain before anything that depends on it). */

static void *publisher(void *arg)
{
    chain *c = arg;
    pthread_mutex_lock(&c->pub_mu);
    for (;;) {
        while (!c->pub_count && !c->pub_stop)
            pthread_cond_wait(&c->pub_cv, &c->pub_mu);
        if (!c->pub_count)
            break;
        struct pub_item it = c->pub_q[c->pub_first];
        int skip = c->pub_result && c->pub_rc != 0; /* an earlier batch did not go out */
        c->pub_busy = 1;
        pthread_mutex_unlock(&c->pub_mu);
        int fenced = 0, rc = -1;
        if (!skip)
            rc = publish_core(c, &c->pub_redis, it.rows, it.n, 0, it.upto, it.fence, &fenced);
        store_rows_free(it.rows, it.n);
        pthread_mutex_lock(&c->pub_mu);
        c->pub_first = (c->pub_first + 1) % PUB_DEPTH;
        c->pub_count--;
        c->pub_busy = 0;
        if (!skip && (rc != 0 || !c->pub_result)) {
            c->pub_rc = rc;
            c->pub_fenced = fenced;
            c->pub_result = 1;
        }
        pthread_cond_broadcast(&c->pub_cv);
    }
    pthread_mutex_unlock(&c->pub_mu);
    return NULL;
}

/* Takes the collected outcome (pub_mu held): 0 when there is none. */
static int pub_take_result(chain *c, int *rc, int *fenced)
{
    int have = c->pub_result;
    *rc = c->pub_rc;
    *fenced = c->pub_fenced;
    c->pub_result = 0;
    c->pub_rc = 0;
    c->pub_fenced = 0;
    return have;
}

/* Waits until every queued batch is out (or dropped) and applies the outcome. */
static void pub_drain(chain *c)
{
    if (!c->pub_started)
        return;
    pthread_mutex_lock(&c->pub_mu);
    while (c->pub_count)
        pthread_cond_wait(&c->pub_cv, &c->pub_mu);
    int rc, fenced, have = pub_take_result(c, &rc, &fenced);
    pthread_mutex_unlock(&c->pub_mu);
    if (have)
        publish_outcome(c, rc, fenced);
}

/* Applies a failure the publisher already hit, without waiting for the queue. */
static void pub_poll(chain *c)
{
    if (!c->pub_started)
        return;
    pthread_mutex_lock(&c->pub_mu);
    int rc = 0, fenced = 0, have = 0;
    if (c->pub_result && (c->pub_rc != 0 || c->pub_fenced)) {
        while (c->pub_count) /* let it drop the rest of the queue first */
            pthread_cond_wait(&c->pub_cv, &c->pub_mu);
        have = pub_take_result(c, &rc, &fenced);
    }
    pthread_mutex_unlock(&c->pub_mu);
    if (have)
        publish_outcome(c, rc, fenced);
}

/* Queues a committed batch's rows (taken) behind the ones still going out, waiting
 * for room. Without the thread, publishes here. */
static void pub_submit(chain *c, store_row *rows, size_t n, int64_t upto)
{
    if (!c->pub_started) {
        publish_rows(c, rows, n, 0, upto);
        store_rows_free(rows, n);
        return;
    }
    pthread_mutex_lock(&c->pub_mu);
    while (c->pub_count == PUB_DEPTH)
        pthread_cond_wait(&c->pub_cv, &c->pub_mu);
    c->pub_q[(c->pub_first + c->pub_count) % PUB_DEPTH] =
        (struct pub_item){.rows = rows, .n = n, .upto = upto, .fence = c->lease.fence};
    c->pub_count++;
    pthread_cond_broadcast(&c->pub_cv);
    pthread_mutex_unlock(&c->pub_mu);
}

/* Sends whatever is committed but unsent, oldest first: compensations, then the
 * live events above the watermark; then raises the watermark to the checkpoint.
 * 0 when nothing is left. */
static int republish(chain *c)
{
    char err[UTIL_ERRLEN];
    pub_drain(c);
    for (;;) {
        db_conn *dc = db_acquire(c->cfg.db, 5000, err, sizeof err);
        if (!dc)
            return -1;
        store_row *rows = NULL;
        size_t n = 0;
        int rc = store_pending_compensations(dc, c->cfg.chain_id, REPUBLISH_LIMIT, &rows, &n, err,
                                             sizeof err);
        db_release(c->cfg.db, dc);
        if (rc != 0) {
            log_warn("cannot read unsent compensations", "chain", c->label, "error", err);
            return -1;
        }
        rc = publish_rows(c, rows, n, 1, -1);
        store_rows_free(rows, n);
        if (rc != 0)
            return -1;
        if (n)
            log_info("re-published compensations", "chain", c->label, "#count", LOG_I64(n));
        if (n < REPUBLISH_LIMIT)
            break;
    }
    /* Read the watermark and the checkpoint afresh: a previous holder may have moved
     * them, and the checkpoint bounds what this scan can find. */
    db_conn *dc = db_acquire(c->cfg.db, 5000, err, sizeof err);
    if (!dc)
        return -1;
    store_checkpoint cp;
    int rc = store_checkpoint_load(dc, c->cfg.chain_id, c->cfg.start_block, &cp, err, sizeof err);
    db_release(c->cfg.db, dc);
    if (rc != 0) {
        log_warn("cannot read the checkpoint", "chain", c->label, "error", err);
        return -1;
    }
    int64_t ab = cp.published_block, al = INT32_MAX;
    size_t total = 0;
    for (;;) {
        store_row *rows = NULL;
        size_t n = 0;
        if (!(dc = db_acquire(c->cfg.db, 5000, err, sizeof err)))
            return -1;
        rc = store_pending_events(dc, c->cfg.chain_id, ab, al, REPUBLISH_LIMIT, &rows, &n, err,
                                  sizeof err);
        db_release(c->cfg.db, dc);
        if (rc != 0) {
            log_warn("cannot read unpublished rows", "chain", c->label, "error", err);
            return -1;
        }
        int last = n < REPUBLISH_LIMIT;
        rc = publish_rows(c, rows, n, 0, last ? cp.last_block : -1);
        if (n) {
            ab = rows[n - 1].block_number;
            al = rows[n - 1].log_index;
        }
        store_rows_free(rows, n);
        total += n;
        if (rc != 0)
            return -1;
        if (last)
            break;
    }
    if (total)
        log_info("re-published pending rows", "chain", c->label, "#count", LOG_I64(total),
                 "#from_block", LOG_I64(cp.published_block + 1));
    c->pending_pub = 0;
    return 0;
}

static void raise_alert(chain *c, const char *title, const char *message, const char *dedup)
{
    char err[UTIL_ERRLEN], id[EVID_MAX];
    snprintf(id, sizeof id, "listener:%s", dedup);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "severity", "critical");
    cJSON_AddStringToObject(p, "category", "chain.reorg");
    cJSON_AddStringToObject(p, "title", title);
    cJSON_AddStringToObject(p, "message", message);
    cJSON_AddStringToObject(p, "dedup_key", dedup);
    cJSON *labels = cJSON_AddObjectToObject(p, "labels");
    char cid[24];
    snprintf(cid, sizeof cid, "%" PRIu64, c->cfg.chain_id);
    cJSON_AddStringToObject(labels, "chain_id", cid);
    envelope *e = envelope_new(id, "alert.raised", "listener", NULL, p);
    envelope_set_priority(e, "critical", NULL, 0);
    redisContext *rc = redis(c);
    if (!rc || bus_publish(rc, TOPIC_ALERTS, BUS_CRITICAL, e, 0, err, sizeof err) != 0)
        log_error("cannot raise alert", "chain", c->label, "title", title);
    envelope_free(e);
}

/* ------------------------------------------------------------------ rpc helpers */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Headers of nums (sorted, unique). 0 ok, 1 some block unknown to the node (a race
 * with a reorg or a lagging endpoint), -1 RPC error. */
static int fetch_headers(rpc_client *rpc, const int64_t *nums, size_t n, rpc_header *out, char *err,
                         size_t errlen)
{
    rpc_batch_item items[HEADER_CHUNK];
    for (size_t off = 0; off < n; off += HEADER_CHUNK) {
        size_t k = n - off < HEADER_CHUNK ? n - off : HEADER_CHUNK;
        memset(items, 0, sizeof items);
        for (size_t i = 0; i < k; i++) {
            char tag[RPC_BLOCK_TAG_MAX];
            items[i].method = "eth_getBlockByNumber";
            items[i].params = cJSON_CreateArray();
            cJSON_AddItemToArray(items[i].params,
                                 cJSON_CreateString(rpc_block_tag(nums[off + i], tag)));
            cJSON_AddItemToArray(items[i].params, cJSON_CreateFalse());
            rpc_error_init(&items[i].error);
        }
        if (rpc_batch(rpc, items, k, RPC_F_HEAD, err, errlen) != 0) {
            rpc_batch_items_clear(items, k);
            return -1;
        }
        int rc = 0;
        for (size_t i = 0; i < k && rc == 0; i++) {
            if (!items[i].result) {
                util_err(err, errlen, "header %" PRId64 ": %s", nums[off + i],
                         items[i].error.message);
                rc = -1;
            } else if (cJSON_IsNull(items[i].result)) {
                rc = 1;
            } else if (rpc_header_from_json(items[i].result, &out[off + i], err, errlen) != 0 ||
                       (int64_t)out[off + i].number != nums[off + i]) {
                rc = -1;
            }
        }
        rpc_batch_items_clear(items, k);
        if (rc)
            return rc;
    }
    return 0;
}

static const rpc_header *find_header(const int64_t *nums, const rpc_header *h, size_t n,
                                     int64_t num)
{
    const int64_t *p = bsearch(&num, nums, n, sizeof *nums, cmp_i64);
    return p ? &h[p - nums] : NULL;
}

static int canonical_hash(void *ud, int64_t number, char hash[67])
{
    chain *c = ud;
    rpc_header h;
    char err[UTIL_ERRLEN];
    int rc = rpc_get_block_header(c->rpc, number, &h, err, sizeof err);
    if (rc != 0)
        return rc;
    hex_encode(h.hash, 32, 1, hash, 67);
    return 0;
}

/* ------------------------------------------------------------------ reorg */

typedef struct orphan_tx {
    chain *c;
    int64_t ancestor;
    char ancestor_hash[67];
    int64_t ancestor_time;
    store_row *rows;
    size_t n;
    int fenced_out;
} orphan_tx;

static int orphan_fn(db_conn *dc, void *ud, char *err, size_t errlen)
{
    orphan_tx *o = ud;
    store_rows_free(o->rows, o->n);
    o->rows = NULL;
    o->n = 0;
    if (store_orphan_above(dc, o->c->cfg.chain_id, o->ancestor, &o->rows, &o->n, err, errlen) != 0)
        return -1;
    int rc = store_checkpoint_move(dc, o->c->cfg.chain_id, o->c->lease.fence, o->ancestor,
                                   o->ancestor_hash, o->ancestor_time, err, errlen);
    if (rc == 1) {
        o->fenced_out = 1;
        return util_err(err, errlen, "fenced out");
    }
    return rc;
}

/* Called when our checkpoint block is no longer canonical. 1 handled (loop again),
 * 0 halted, -1 error. */
static int handle_reorg(chain *c)
{
    char err[UTIL_ERRLEN];
    c->head_read_ms = 0; /* the branch may be shorter: ask for the head again */
    /* The orphan scan reads the watermark: collect the batch in flight, and send what
     * it left unsent first, so every event on the stream is at or below the
     * watermark and gets its compensation. */
    pub_drain(c);
    if (c->pending_pub && republish(c) != 0)
        return -1;
    db_conn *dc = db_acquire(c->cfg.db, 5000, err, sizeof err);
    if (!dc)
        return -1;
    reorg_block *win = NULL;
    size_t nw = 0;
    int rc = store_window(dc, c->cfg.chain_id, &win, &nw, err, sizeof err);
    db_release(c->cfg.db, dc);
    if (rc != 0)
        return -1;
    int64_t anc = -1;
    reorg_result rr = reorg_find_ancestor(win, nw, c->cp.start_block - 1, canonical_hash, c, &anc);
    orphan_tx o = {.c = c, .ancestor = anc};
    for (size_t i = 0; rr == REORG_FOUND && i < nw; i++)
        if (win[i].number == anc)
            util_strlcpy(o.ancestor_hash, win[i].hash, sizeof o.ancestor_hash);
    free(win);
    if (rr == REORG_ERROR)
        return -1;
    if (rr == REORG_TOO_DEEP) {
        char msg[256], dedup[128];
        snprintf(msg, sizeof msg,
                 "chain %" PRIu64 ": block %" PRId64 " and the whole reorg window (%" PRIu64
                 " blocks) are no longer canonical; the listener stopped advancing",
                 c->cfg.chain_id, c->cp.last_block, c->cfg.window);
        snprintf(dedup, sizeof dedup, "reorg-too-deep:%" PRIu64 ":%" PRId64, c->cfg.chain_id,
                 c->cp.last_block);
        log_error("reorg deeper than the window: halting", "chain", c->label);
        raise_alert(c, "Chain reorg deeper than the window", msg, dedup);
        dc = db_acquire(c->cfg.db, 5000, err, sizeof err);
        if (dc) {
            store_set_halted(dc, c->cfg.chain_id, c->lease.fence, msg, err, sizeof err);
            db_release(c->cfg.db, dc);
        }
        c->cp.halted = 1;
        return 0;
    }
    if (anc >= 0 && o.ancestor_hash[0]) {
        rpc_header h;
        if (rpc_get_block_header(c->rpc, anc, &h, err, sizeof err) == 0)
            o.ancestor_time = (int64_t)h.timestamp;
    }
    if (db_tx(c->cfg.db, orphan_fn, &o, err, sizeof err) != 0) {
        store_rows_free(o.rows, o.n);
        if (o.fenced_out) {
            c->leader = 0;
            log_warn("lease lost during reorg handling", "chain", c->label);
            return 1;
        }
        log_warn("reorg transaction failed", "chain", c->label, "error", err);
        return -1;
    }
    int64_t depth = c->cp.last_block - anc;
    log_warn("reorg: rolled back to the common ancestor", "chain", c->label, "#ancestor",
             LOG_I64(anc), "#depth", LOG_I64(depth), "#orphaned_published", LOG_I64(o.n));
    metrics_counter_inc(c->m_reorgs);
    metrics_counter_add(c->m_removed, (double)o.n);
    metrics_gauge_set(c->g_depth, (double)depth);
    pthread_mutex_lock(&c->mu);
    c->st.reorgs++;
    pthread_mutex_unlock(&c->mu);
    c->cp.last_block = anc;
    util_strlcpy(c->cp.last_hash, o.ancestor_hash, sizeof c->cp.last_hash);
    c->cp.last_time = o.ancestor_time;
    c->reinc = 1;
    if (publish_rows(c, o.rows, o.n, 1, -1) != 0)
        c->pending_pub = 1;
    store_rows_free(o.rows, o.n);
    return 1;
}

/* ------------------------------------------------------------------ batch */

typedef struct batch_tx {
    chain *c;
    store_row *rows;
    size_t n;
    const rpc_header *win;
    size_t nwin;
    int64_t from, to;
    const rpc_header *last;
    int fenced_out;
} batch_tx;

static int batch_fn(db_conn *dc, void *ud, char *err, size_t errlen)
{
    batch_tx *b = ud;
    chain *c = b->c;
    int copied = 0;
    if (store_insert_events(dc, c->cfg.chain_id, b->rows, b->n, c->reinc, &copied, err, errlen) !=
        0)
        return -1;
    if (b->n && !c->reinc && !copied)
        log_warn("rows already present under COPY: took the ON CONFLICT path", "chain", c->label,
                 "#from", LOG_I64(b->from), "#to", LOG_I64(b->to));
    int64_t keep = b->to - (int64_t)c->cfg.window + 1;
    if (store_record_blocks(dc, c->cfg.chain_id, b->win, b->nwin, keep, b->from, b->to, err,
                            errlen) != 0)
        return -1;
    char h[67];
    hex_encode(b->last->hash, 32, 1, h, sizeof h);
    int rc = store_checkpoint_move(dc, c->cfg.chain_id, c->lease.fence, b->to, h,
                                   (int64_t)b->last->timestamp, err, errlen);
    if (rc == 1) {
        b->fenced_out = 1;
        return util_err(err, errlen, "fenced out: another listener holds chain %" PRIu64,
                        c->cfg.chain_id);
    }
    return rc;
}

static const chain_contract *contract_of(chain *c, const char *addr)
{
    for (size_t i = 0; i < c->cfg.ncontracts; i++)
        if (strcasecmp(c->contracts[i].address, addr) == 0)
            return &c->contracts[i];
    return NULL;
}

static int log_u64(const cJSON *log, const char *key, uint64_t *out)
{
    return rpc_parse_quantity(cJSON_GetObjectItemCaseSensitive(log, key), out);
}

static const char *log_str(const cJSON *log, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(log, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Turns the logs into rows. 0 ok, 1 inconsistent with the headers (re-read), -1 bad. */
static int decode_logs(chain *c, const cJSON *logs, const int64_t *nums, const rpc_header *hdrs,
                       size_t nh, store_row **out, size_t *nout)
{
    size_t n = (size_t)cJSON_GetArraySize(logs), k = 0;
    store_row *rows = n ? util_calloc(n, sizeof *rows) : NULL;
    const cJSON *log;
    int rc = 0;
    cJSON_ArrayForEach(log, logs)
    {
        store_row *w = &rows[k];
        uint64_t bn, ti, li;
        char addr_l[43];
        const char *addr = log_str(log, "address");
        const cJSON *removed = cJSON_GetObjectItemCaseSensitive(log, "removed");
        if (log_u64(log, "blockNumber", &bn) || log_u64(log, "transactionIndex", &ti) ||
            log_u64(log, "logIndex", &li) ||
            evid_hash_norm(log_str(log, "blockHash"), w->block_hash) ||
            evid_hash_norm(log_str(log, "transactionHash"), w->tx_hash) || !addr ||
            strlen(addr) != 42) {
            log_warn("malformed log from the node", "chain", c->label);
            rc = -1;
            break;
        }
        if (cJSON_IsTrue(removed)) {
            rc = 1;
            break;
        }
        /* Within the reorg window (and wherever the log has no timestamp) the header
         * was fetched: the log must belong to it, or the node moved between the calls.
         * Below the window the block is confirmed and the log's own fields suffice. */
        const rpc_header *h = find_header(nums, hdrs, nh, (int64_t)bn);
        uint64_t log_ts = 0;
        char hh[67];
        if (!h && log_u64(log, "blockTimestamp", &log_ts) != 0) {
            rc = 1;
            break;
        }
        if (h) {
            hex_encode(h->hash, 32, 1, hh, sizeof hh);
            if (strcmp(hh, w->block_hash) != 0) {
                rc = 1;
                break;
            }
        }
        for (int i = 0; i < 42; i++)
            addr_l[i] = (char)(addr[i] >= 'A' && addr[i] <= 'F' ? addr[i] + 32 : addr[i]);
        addr_l[42] = '\0';
        const chain_contract *ct = contract_of(c, addr_l);
        char why[UTIL_ERRLEN];
        cJSON *dec = ct ? abi_decode_log_json(ct->abi, log, why, sizeof why) : NULL;
        if (!dec) {
            metrics_counter_inc(c->m_undecoded);
            log_warn("log not decodable with the configured ABI; skipped", "chain", c->label,
                     "address", addr_l, "tx", w->tx_hash, "error", ct ? why : "unknown contract");
            memset(w, 0, sizeof *w);
            continue;
        }
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(dec, "event");
        const cJSON *sig = cJSON_GetObjectItemCaseSensitive(dec, "signature");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(dec, "args");
        w->block_number = (int64_t)bn;
        w->block_time = (int64_t)(h ? h->timestamp : log_ts);
        w->tx_index = (int64_t)ti;
        w->log_index = (int64_t)li;
        util_strlcpy(w->address, addr_l, sizeof w->address);
        util_strlcpy(w->event, cJSON_IsString(ev) ? ev->valuestring : "", sizeof w->event);
        w->signature = util_strdup(cJSON_IsString(sig) ? sig->valuestring : "");
        w->args = args ? cJSON_PrintUnformatted(args) : util_strdup("{}");
        w->prio = route_classify(c->cfg.routes, w->event, args);
        cJSON_Delete(dec);
        if (!w->args || evid_build(w->id, sizeof w->id, c->cfg.chain_id, w->tx_hash, li, NULL)) {
            rc = -1;
            k++;
            break;
        }
        k++;
    }
    if (rc != 0) {
        store_rows_free(rows, k);
        return rc;
    }
    *out = rows;
    *nout = k;
    return 0;
}

static cJSON *logs_filter(chain *c, int64_t from, int64_t to)
{
    char tag[RPC_BLOCK_TAG_MAX];
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "fromBlock", rpc_block_tag(from, tag));
    cJSON_AddStringToObject(f, "toBlock", rpc_block_tag(to, tag));
    cJSON *addrs = cJSON_AddArrayToObject(f, "address");
    for (size_t i = 0; i < c->cfg.ncontracts; i++)
        cJSON_AddItemToArray(addrs, cJSON_CreateString(c->contracts[i].address));
    cJSON_AddItemToObject(f, "topics", cJSON_Duplicate(c->topics, 1));
    return f;
}

/* ---- reading a range */

static void prep_init(prep *p, int64_t from, int64_t to)
{
    memset(p, 0, sizeof *p);
    rpc_error_init(&p->e);
    p->from = from;
    p->to = to;
}

static void prep_clear(prep *p)
{
    rpc_error_clear(&p->e);
    store_rows_free(p->rows, p->nrows);
    free(p->hdrs);
    free(p->nums);
    prep_init(p, 0, -1);
}

/* Reads [from, to] on rpc: the logs, the headers they need, the decoded rows. `head`
 * places the reorg window; an older head only widens it. Sets p->rc (see prep). */
static void prep_run(chain *c, rpc_client *rpc, int64_t from, int64_t to, int64_t head, prep *p)
{
    int64_t t0 = util_mono_ms();
    prep_init(p, from, to);
    cJSON *filter = logs_filter(c, from, to);
    cJSON *logs = rpc_get_logs(rpc, filter, &p->e);
    cJSON_Delete(filter);
    int64_t t1 = util_mono_ms();
    p->logs_ms = t1 - t0;
    if (!logs) {
        p->rc = -1;
        p->logs_failed = 1;
        return;
    }
    p->nlogs = (size_t)cJSON_GetArraySize(logs);
    /* Headers: the link to our checkpoint, the new checkpoint, and the reorg window —
     * only the part a reorg can still reach (the last `window` blocks below the head):
     * a backfill far behind the head needs no window, and fetching one per batch
     * would cost more than the logs. */
    int64_t win_from = to - (int64_t)c->cfg.window + 1;
    int64_t reach = head - (int64_t)c->cfg.window + 1;
    if (win_from < from)
        win_from = from;
    if (win_from < reach)
        win_from = reach;
    p->win_from = win_from;
    p->nwin = win_from <= to ? (size_t)(to - win_from + 1) : 0;
    size_t cap = p->nwin + p->nlogs + 2, nn = 0;
    int64_t *nums = p->nums = util_malloc(cap * sizeof *nums);
    nums[nn++] = from;
    nums[nn++] = to;
    for (int64_t b = win_from; b <= to; b++)
        nums[nn++] = b;
    /* Blocks with logs need a header only for their timestamp, and nodes that put
     * blockTimestamp in logs (anvil, geth >= 1.14) spare us that round trip per block. */
    const cJSON *lg;
    cJSON_ArrayForEach(lg, logs)
    {
        uint64_t bn, ts;
        if (log_u64(lg, "blockNumber", &bn) == 0 && (int64_t)bn >= from && (int64_t)bn <= to &&
            log_u64(lg, "blockTimestamp", &ts) != 0)
            nums[nn++] = (int64_t)bn;
    }
    qsort(nums, nn, sizeof *nums, cmp_i64);
    size_t u = 0;
    for (size_t i = 0; i < nn; i++)
        if (u == 0 || nums[u - 1] != nums[i])
            nums[u++] = nums[i];
    p->nn = nn = u;
    p->hdrs = util_calloc(nn, sizeof *p->hdrs);
    char err[UTIL_ERRLEN];
    int rc = fetch_headers(rpc, nums, nn, p->hdrs, err, sizeof err);
    int64_t t2 = util_mono_ms();
    p->headers_ms = t2 - t1;
    if (rc < 0)
        util_err(p->err, sizeof p->err, "cannot fetch headers: %s", err);
    if (rc == 0)
        rc = decode_logs(c, logs, nums, p->hdrs, nn, &p->rows, &p->nrows);
    p->decode_ms = util_mono_ms() - t2;
    p->rc = rc < 0 ? -1 : rc;
    cJSON_Delete(logs);
}

/* ---- prefetch */

static void *prefetcher(void *arg)
{
    chain *c = arg;
    pthread_mutex_lock(&c->pf_mu);
    for (;;) {
        while (!c->pf_want && !c->pf_stop)
            pthread_cond_wait(&c->pf_cv, &c->pf_mu);
        if (!c->pf_want)
            break;
        c->pf_want = 0;
        c->pf_busy = 1;
        int64_t from = c->pf_from, to = c->pf_to, head = c->pf_head;
        pthread_mutex_unlock(&c->pf_mu);
        prep p;
        prep_run(c, c->pf_rpc, from, to, head, &p);
        pthread_mutex_lock(&c->pf_mu);
        c->pf_prep = p;
        c->pf_busy = 0;
        c->pf_done = 1;
        pthread_cond_broadcast(&c->pf_cv);
    }
    pthread_mutex_unlock(&c->pf_mu);
    return NULL;
}

/* The range of the prefetch asked for or done, if any (worker). */
static int pf_range(chain *c, int64_t *from, int64_t *to)
{
    if (!c->pf_started)
        return 0;
    pthread_mutex_lock(&c->pf_mu);
    int have = c->pf_want || c->pf_busy || c->pf_done;
    *from = c->pf_from;
    *to = c->pf_to;
    pthread_mutex_unlock(&c->pf_mu);
    return have;
}

/* Takes the prefetched range if it is exactly [from, to] (waiting for it): 1 with *out
 * (the caller owns it). Any other prefetch is dropped: 0. */
static int pf_take(chain *c, int64_t from, int64_t to, prep *out)
{
    if (!c->pf_started)
        return 0;
    pthread_mutex_lock(&c->pf_mu);
    int match = (c->pf_want || c->pf_busy || c->pf_done) && c->pf_from == from && c->pf_to == to;
    c->pf_want = 0; /* not started yet: never will be */
    while (c->pf_busy)
        pthread_cond_wait(&c->pf_cv, &c->pf_mu);
    int got = c->pf_done && match;
    if (got) {
        *out = c->pf_prep;
        prep_init(&c->pf_prep, 0, -1);
    } else {
        prep_clear(&c->pf_prep);
    }
    c->pf_done = 0;
    pthread_mutex_unlock(&c->pf_mu);
    return got;
}

/* Asks for [from, to] in the background (the worker took or dropped the last one). */
static void pf_start(chain *c, int64_t from, int64_t to, int64_t head)
{
    if (!c->pf_started)
        return;
    pthread_mutex_lock(&c->pf_mu);
    if (!c->pf_want && !c->pf_busy && !c->pf_done) {
        c->pf_from = from;
        c->pf_to = to;
        c->pf_head = head;
        c->pf_want = 1;
        pthread_cond_broadcast(&c->pf_cv);
    }
    pthread_mutex_unlock(&c->pf_mu);
}

static void pf_stop(chain *c)
{
    if (!c->pf_started)
        return;
    pthread_mutex_lock(&c->pf_mu);
    c->pf_stop = 1;
    c->pf_want = 0;
    pthread_cond_broadcast(&c->pf_cv);
    pthread_mutex_unlock(&c->pf_mu);
    pthread_join(c->pf_thread, NULL);
    c->pf_started = 0;
    prep_clear(&c->pf_prep);
    c->pf_done = 0;
}

/* One batch [from, to]. 1 progressed or must re-run, -1 error. */
static int run_batch(chain *c, int64_t from, int64_t to, int64_t safe)
{
    char err[UTIL_ERRLEN];
    int64_t t0 = util_mono_ms(), t_tx = 0;
    prep p;
    int prefetched = pf_take(c, from, to, &p);
    if (!prefetched)
        prep_run(c, c->rpc, from, to, c->head, &p);
    int64_t t_ready = util_mono_ms();
    uint64_t span = (uint64_t)(to - from + 1);
    store_row *rows = NULL;
    size_t nrows = 0;
    int rc;
    if (p.logs_failed) {
        int shrink = range_error_shrinks(p.e.status == RPC_ERR_RPC, p.e.code, p.e.message);
        log_warn("eth_getLogs failed", "chain", c->label, "#from", LOG_I64(from), "#to",
                 LOG_I64(to), "error", p.e.message);
        rc = -1;
        if (shrink && range_on_failure(&c->range, span, range_error_oversize(p.e.message))) {
            metrics_counter_inc(c->m_shrinks);
            rc = 1;
        }
        goto out;
    }
    if (p.rc != 0) {
        if (p.err[0])
            log_warn("cannot read the range", "chain", c->label, "error", p.err);
        c->head_read_ms = 0; /* the node may have moved: ask it for the head again */
        rc = p.rc;
        goto out;
    }
    /* Still behind the safe head: have the next range read and decoded now, sized as
     * the range control will size it after this batch, so the node and the decoder
     * work on it while this one commits. Used only if this batch succeeds and the
     * next one starts right after it (pf_take drops it otherwise). */
    if (to < safe) {
        range_ctl next = c->range;
        uint64_t nto;
        range_on_success(&next, span, p.nlogs);
        if (range_next(&next, (uint64_t)to + 1, (uint64_t)safe, &nto))
            pf_start(c, to + 1, (int64_t)nto, c->head);
    }
    const int64_t *nums = p.nums;
    const rpc_header *hdrs = p.hdrs;
    size_t nn = p.nn;
    /* A first block that does not continue our checkpoint: a reorg happened below. */
    char ph[67];
    const rpc_header *first = find_header(nums, hdrs, nn, from);
    hex_encode(first->parent_hash, 32, 1, ph, sizeof ph);
    if (!reorg_links(c->cp.last_hash, ph)) {
        rc = handle_reorg(c);
        goto out;
    }
    /* The window must be one chain; otherwise the node reorged while we asked. */
    for (size_t i = 1; i < nn; i++) {
        if (nums[i] == nums[i - 1] + 1 && memcmp(hdrs[i].parent_hash, hdrs[i - 1].hash, 32) != 0) {
            rc = 1;
            goto out;
        }
    }
    rows = p.rows;
    nrows = p.nrows;
    p.rows = NULL;
    p.nrows = 0;
    /* Window headers are the contiguous tail [win_from, to] (possibly empty). */
    const rpc_header *win = p.nwin ? find_header(nums, hdrs, nn, p.win_from) : NULL;
    batch_tx b = {.c = c,
                  .rows = rows,
                  .n = nrows,
                  .win = win,
                  .nwin = p.nwin,
                  .from = from,
                  .to = to,
                  .last = find_header(nums, hdrs, nn, to)};
    if (db_tx(c->cfg.db, batch_fn, &b, err, sizeof err) != 0) {
        if (b.fenced_out) {
            log_warn("lease lost: another listener writes this chain", "chain", c->label);
            c->leader = 0;
            rc = 1;
        } else {
            log_warn("batch transaction failed", "chain", c->label, "error", err);
            rc = -1;
        }
        goto out;
    }
    t_tx = util_mono_ms();
    range_on_success(&c->range, span, p.nlogs);
    c->cp.last_block = to;
    hex_encode(b.last->hash, 32, 1, c->cp.last_hash, sizeof c->cp.last_hash);
    c->cp.last_time = (int64_t)b.last->timestamp;
    metrics_counter_add(c->m_events, (double)nrows);
    metrics_counter_inc(c->m_batches);
    pthread_mutex_lock(&c->mu);
    c->st.events += nrows;
    c->st.batches++;
    pthread_mutex_unlock(&c->mu);
    /* The watermark may only move past this batch if everything before it is out:
     * the publisher sends in commit order and drops what follows a failure, and a
     * failure it already hit stops the queueing here (republish() takes over). */
    pub_poll(c);
    int64_t t_wait = util_mono_ms();
    if (!c->pending_pub && c->leader) {
        pub_submit(c, rows, nrows, to);
        rows = NULL;
        nrows = 0;
    }
    /* The read stages ran on the prefetcher (while the previous batch committed) when
     * prefetched is 1: wait_ms is what the worker waited for them. */
    log_info("batch", "chain", c->label, "#from", LOG_I64(from), "#to", LOG_I64(to), "#events",
             LOG_I64(b.n), "#prefetched", LOG_I64(prefetched), "#wait_ms", LOG_I64(t_ready - t0),
             "#logs_ms", LOG_I64(p.logs_ms), "#headers_ms", LOG_I64(p.headers_ms), "#decode_ms",
             LOG_I64(p.decode_ms), "#commit_ms", LOG_I64(t_tx - t_ready), "#publish_wait_ms",
             LOG_I64(t_wait - t_tx));
    rc = 1;
out:
    store_rows_free(rows, nrows);
    prep_clear(&p);
    return rc;
}

/* ------------------------------------------------------------------ the loop */

static int become_leader(chain *c)
{
    char err[UTIL_ERRLEN];
    db_conn *dc = db_acquire(c->cfg.db, 5000, err, sizeof err);
    if (!dc)
        return -1;
    int rc =
        store_checkpoint_load(dc, c->cfg.chain_id, c->cfg.start_block, &c->cp, err, sizeof err);
    if (rc == 0) {
        rc = store_checkpoint_claim(dc, c->cfg.chain_id, c->lease.fence, err, sizeof err);
        if (rc == 1)
            util_strlcpy(err, "a newer fence already wrote the checkpoint", sizeof err);
    }
    int reinc = rc == 0 ? store_has_removed(dc, c->cfg.chain_id, err, sizeof err) : -1;
    db_release(c->cfg.db, dc);
    if (rc != 0 || reinc < 0) {
        log_error("cannot take over the checkpoint", "chain", c->label, "error", err);
        return -1;
    }
    c->reinc = reinc;
    c->leader = 1;
    log_info("leading chain", "chain", c->label, "#fence", LOG_I64(c->lease.fence), "#checkpoint",
             LOG_I64(c->cp.last_block));
    c->pending_pub = 1; /* whatever a previous holder committed but did not send */
    return 0;
}

/* 1 did work, 0 idle, -1 error. */
static int step(chain *c)
{
    char err[UTIL_ERRLEN];
    if (c->pending_pub && republish(c) != 0)
        return -1;
    if (c->cp.halted)
        return 0;
    /* Below a head we already know of, the next range's first header links it to our
     * checkpoint and shows a reorg there: the head is asked for only now and then, and
     * the checkpoint needs no check of its own. Both round trips would otherwise wait
     * behind the prefetcher's eth_getLogs on a busy node, batch after batch. */
    int64_t now = util_mono_ms();
    int behind = c->head - (int64_t)c->cfg.confirmations > c->cp.last_block;
    if (!behind || c->head_read_ms == 0 || now - c->head_read_ms >= HEAD_REFRESH_MS) {
        uint64_t h;
        if (rpc_block_number(c->rpc, &h, err, sizeof err) != 0) {
            log_warn("cannot read the head", "chain", c->label, "error", err);
            return -1;
        }
        c->head = (int64_t)h;
        c->head_read_ms = now;
        behind = c->head - (int64_t)c->cfg.confirmations > c->cp.last_block;
    }
    uint64_t head = (uint64_t)c->head;
    /* Nothing new to read: is our checkpoint block still canonical? (A reorg to a
     * shorter or equal branch shows here before any new block does.) */
    if (!behind && c->cp.last_block >= 0 && c->cp.last_hash[0]) {
        char h[67];
        int rc = canonical_hash(c, c->cp.last_block, h);
        if (rc < 0)
            return -1;
        if (rc == 1 || strcmp(h, c->cp.last_hash) != 0)
            return handle_reorg(c);
    }
    if (head < c->cfg.confirmations)
        return 0;
    int64_t safe = (int64_t)(head - c->cfg.confirmations);
    uint64_t to;
    int64_t pf_from, pf_to;
    if (pf_range(c, &pf_from, &pf_to) && pf_from == c->cp.last_block + 1 && pf_to <= safe)
        to = (uint64_t)pf_to; /* the range already asked for */
    else if (!range_next(&c->range, (uint64_t)(c->cp.last_block + 1), (uint64_t)safe, &to))
        return 0;
    return run_batch(c, c->cp.last_block + 1, (int64_t)to, safe);
}

static void wait_heads(chain *c, int64_t ms)
{
    struct pollfd pfd = {.fd = heads_fd(c->heads), .events = POLLIN};
    if (poll(&pfd, 1, (int)ms) > 0) {
        heads_event ev;
        while (heads_pop(c->heads, &ev))
            if ((int64_t)ev.header.number > c->head)
                c->head = (int64_t)ev.header.number;
    }
}

static void *worker(void *arg)
{
    chain *c = arg;
    char err[UTIL_ERRLEN];
    int64_t backoff = ERROR_BACKOFF_MS;
    while (!atomic_load(&c->stop)) {
        redisContext *rc = redis(c);
        if (!rc) {
            util_sleep_ms(500);
            continue;
        }
        if (!c->leader) {
            pub_drain(c); /* a batch in flight from the lost lease: collect it */
            lock_result lr =
                lock_acquire(rc, c->lock_name, c->cfg.lease_ttl_ms, &c->lease, err, sizeof err);
            if (lr == LOCK_OK) {
                if (become_leader(c) != 0) {
                    lock_release(rc, &c->lease, NULL, 0);
                    util_sleep_ms(1000);
                }
            } else {
                if (lr == LOCK_ERR)
                    log_warn("lease request failed", "chain", c->label, "error", err);
                publish_status(c);
                /* Standby: retry well within the TTL so a takeover is quick. */
                int64_t wait = c->cfg.lease_ttl_ms / 5;
                util_sleep_ms(wait < 50 ? 50 : wait > 1000 ? 1000 : wait);
            }
            continue;
        }
        if (lock_remaining_ms(&c->lease) < c->cfg.lease_ttl_ms / 2) {
            lock_result lr = lock_renew(rc, &c->lease, c->cfg.lease_ttl_ms, err, sizeof err);
            if (lr == LOCK_LOST || (lr == LOCK_ERR && !lock_valid(&c->lease))) {
                log_warn("lease lost", "chain", c->label, "error", lr == LOCK_LOST ? "taken" : err);
                c->leader = 0;
                continue;
            }
        }
        int r = step(c);
        if (r <= 0)
            pub_drain(c); /* idle or failing: record what went out, surface errors */
        publish_status(c);
        if (r > 0) {
            backoff = ERROR_BACKOFF_MS;
            continue;
        }
        if (r < 0) {
            util_sleep_ms(backoff);
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            continue;
        }
        backoff = ERROR_BACKOFF_MS;
        int64_t wait = c->cfg.poll_ms;
        int64_t renew_in = lock_remaining_ms(&c->lease) - c->cfg.lease_ttl_ms / 2;
        if (renew_in < wait)
            wait = renew_in < 10 ? 10 : renew_in;
        wait_heads(c, wait);
    }
    pub_drain(c);
    if (c->leader && c->redis && !c->redis->err)
        lock_release(c->redis, &c->lease, NULL, 0);
    c->leader = 0;
    publish_status(c);
    return NULL;
}

/* ------------------------------------------------------------------ life cycle */

chain *chain_new(const chain_cfg *cfg, char *err, size_t errlen)
{
    if (!cfg || cfg->chain_id == 0 || cfg->nurls == 0 || cfg->ncontracts == 0 || !cfg->db ||
        !cfg->redis_url || cfg->lease_ttl_ms <= 0 || cfg->poll_ms <= 0) {
        util_err(err, errlen, "chain: incomplete configuration");
        return NULL;
    }
    chain *c = util_calloc(1, sizeof *c);
    c->cfg = *cfg;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->pub_mu, NULL);
    pthread_cond_init(&c->pub_cv, NULL);
    pthread_mutex_init(&c->pf_mu, NULL);
    pthread_cond_init(&c->pf_cv, NULL);
    prep_init(&c->pf_prep, 0, -1);
    snprintf(c->label, sizeof c->label, "%" PRIu64, cfg->chain_id);
    snprintf(c->lock_name, sizeof c->lock_name, "listener.chain.%" PRIu64, cfg->chain_id);
    c->urls = util_calloc(cfg->nurls, sizeof *c->urls);
    for (size_t i = 0; i < cfg->nurls; i++)
        c->urls[i] = util_strdup(cfg->rpc_urls[i]);
    c->cfg.rpc_urls = (const char *const *)c->urls;
    c->ws_url = cfg->ws_url && *cfg->ws_url ? util_strdup(cfg->ws_url) : NULL;
    c->cfg.ws_url = c->ws_url;
    c->redis_url = util_strdup(cfg->redis_url);
    c->cfg.redis_url = c->redis_url;
    c->contracts = util_calloc(cfg->ncontracts, sizeof *c->contracts);
    memcpy(c->contracts, cfg->contracts, cfg->ncontracts * sizeof *c->contracts);
    c->cfg.contracts = c->contracts;
    c->cp.last_block = cfg->start_block - 1;
    c->st.chain_id = cfg->chain_id;
    c->st.checkpoint = cfg->start_block - 1;

    /* Topic filter: topic0 of every non-anonymous event of every ABI (computed from
     * the ABI JSON, never typed in). */
    c->topics = cJSON_CreateArray();
    cJSON *t0 = cJSON_CreateArray();
    cJSON_AddItemToArray(c->topics, t0);
    for (size_t i = 0; i < cfg->ncontracts; i++) {
        const abi_contract *a = cfg->contracts[i].abi;
        for (size_t k = 0; k < a->n_events; k++) {
            if (a->events[k].anonymous)
                continue;
            char h[67];
            hex_encode(a->events[k].topic0, 32, 1, h, sizeof h);
            int dup = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, t0) dup |= strcmp(x->valuestring, h) == 0;
            if (!dup)
                cJSON_AddItemToArray(t0, cJSON_CreateString(h));
        }
    }
    if (range_init(&c->range, cfg->range_initial, cfg->range_min, cfg->range_max, cfg->target_logs,
                   err, errlen) != 0)
        goto fail;
    char name[64];
    snprintf(name, sizeof name, "listener-%" PRIu64, cfg->chain_id);
    rpc_config rc = {.urls = c->cfg.rpc_urls,
                     .nurls = cfg->nurls,
                     .name = name,
                     .timeout_ms = cfg->rpc_timeout_ms,
                     .connect_timeout_ms = cfg->rpc_timeout_ms < 2000 ? cfg->rpc_timeout_ms : 0};
    if (!(c->rpc = rpc_client_new(&rc, err, errlen)) ||
        !(c->pf_rpc = rpc_client_new(&rc, err, errlen)))
        goto fail;
    heads_config hc = {
        .ws_url = c->ws_url, .rpc = c->rpc, .name = name, .poll_interval_ms = cfg->poll_ms};
    if (!(c->heads = heads_new(&hc, err, errlen)))
        goto fail;

    metrics_registry *m = metrics_global();
    char l[64];
    snprintf(l, sizeof l, "chain=\"%" PRIu64 "\"", cfg->chain_id);
    c->g_head = metrics_gauge_get(m, "listener_head_block", "Best head seen", l);
    c->g_cp = metrics_gauge_get(m, "listener_checkpoint_block", "Last committed block", l);
    c->g_lag_blocks =
        metrics_gauge_get(m, "listener_head_lag_blocks", "Head minus checkpoint, in blocks", l);
    c->g_lag_seconds = metrics_gauge_get(m, "listener_head_lag_seconds",
                                         "Now minus the checkpoint block's time", l);
    c->g_leader =
        metrics_gauge_get(m, "listener_leader", "1 while this replica holds the lease", l);
    c->g_halted =
        metrics_gauge_get(m, "listener_halted", "1 after a reorg deeper than the window", l);
    c->g_span = metrics_gauge_get(m, "listener_range_blocks", "Current eth_getLogs span", l);
    c->g_rate =
        metrics_gauge_get(m, "listener_events_per_second", "Committed events per second", l);
    c->g_depth = metrics_gauge_get(m, "listener_last_reorg_depth", "Depth of the last reorg", l);
    c->m_events = metrics_counter_get(m, "listener_events_total", "Events committed", l);
    c->m_reorgs = metrics_counter_get(m, "listener_reorgs_total", "Reorgs handled", l);
    c->m_removed =
        metrics_counter_get(m, "listener_removed_events_total", "Compensations for orphans", l);
    c->m_undecoded =
        metrics_counter_get(m, "listener_undecoded_logs_total", "Logs the ABIs cannot decode", l);
    c->m_pub_err = metrics_counter_get(m, "listener_publish_errors_total", "Failed publishes", l);
    c->m_batches = metrics_counter_get(m, "listener_batches_total", "Committed batches", l);
    c->m_shrinks =
        metrics_counter_get(m, "listener_range_shrinks_total", "Ranges halved on errors", l);
    c->h_delay = metrics_histogram_get(m, "listener_publish_delay_seconds", "Block time to publish",
                                       l, NULL, 0);
    c->rate_t0 = util_mono_ms();
    return c;
fail:
    chain_free(c);
    return NULL;
}

/* Stops the publisher after its batch in flight (the worker drained already). */
static void pub_stop(chain *c)
{
    if (!c->pub_started)
        return;
    pthread_mutex_lock(&c->pub_mu);
    c->pub_stop = 1;
    pthread_cond_broadcast(&c->pub_cv);
    pthread_mutex_unlock(&c->pub_mu);
    pthread_join(c->pub_thread, NULL);
    c->pub_started = 0;
}

int chain_start(chain *c, char *err, size_t errlen)
{
    if (c->started)
        return 0;
    c->pub_stop = 0;
    c->pf_stop = 0;
    if (pthread_create(&c->pub_thread, NULL, publisher, c) != 0)
        return util_err(err, errlen, "cannot start the publisher thread");
    c->pub_started = 1;
    if (pthread_create(&c->pf_thread, NULL, prefetcher, c) != 0) {
        pub_stop(c);
        return util_err(err, errlen, "cannot start the prefetch thread");
    }
    c->pf_started = 1;
    if (pthread_create(&c->thread, NULL, worker, c) != 0) {
        pub_stop(c);
        pf_stop(c);
        return util_err(err, errlen, "cannot start the chain thread");
    }
    c->started = 1;
    return 0;
}

void chain_stop(chain *c)
{
    if (!c || !c->started)
        return;
    atomic_store(&c->stop, 1);
    pthread_join(c->thread, NULL);
    c->started = 0;
    pub_stop(c);
    pf_stop(c);
}

void chain_free(chain *c)
{
    if (!c)
        return;
    chain_stop(c);
    heads_free(c->heads);
    rpc_client_free(c->rpc);
    rpc_client_free(c->pf_rpc);
    prep_clear(&c->pf_prep);
    pthread_cond_destroy(&c->pf_cv);
    pthread_mutex_destroy(&c->pf_mu);
    if (c->redis)
        redisFree(c->redis);
    if (c->pub_redis)
        redisFree(c->pub_redis);
    for (size_t i = 0; i < c->pub_count; i++) {
        struct pub_item *it = &c->pub_q[(c->pub_first + i) % PUB_DEPTH];
        store_rows_free(it->rows, it->n);
    }
    pthread_cond_destroy(&c->pub_cv);
    pthread_mutex_destroy(&c->pub_mu);
    cJSON_Delete(c->topics);
    for (size_t i = 0; i < c->cfg.nurls; i++)
        free(c->urls[i]);
    free(c->urls);
    free(c->ws_url);
    free(c->redis_url);
    free(c->contracts);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
