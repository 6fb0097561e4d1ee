/* deliver: the outbox delivery worker (see deliver.h). */
#include "deliver.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "channel.h"
#include "format.h"
#include "log.h"
#include "metrics.h"
#include "rconn.h"
#include "retry.h"
#include "rlimit.h"
#include "secret.h"
#include "store.h"
#include "util.h"

struct deliver_worker {
    deliver_cfg cfg;
    char *redis_url, *fallback;
    char owner[128];
    pthread_t thread;
    atomic_int stop;
    int wake[2];
    db_conn *conn;
    redisContext *rc;
    CURL *curl;
};

static int64_t cfg_int(const cJSON *cfg, const char *k, int64_t def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, k);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 3600000
               ? (int64_t)v->valuedouble
               : def;
}

static const char *cfg_str(const cJSON *cfg, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

size_t deliver_limits(const char *type, const char *channel_id, const char *target,
                      const void *config_json, char names[][160], int64_t *iv)
{
    const cJSON *cfg = config_json;
    size_t n = 0;
    if (strcmp(type, "slack") == 0) {
        snprintf(names[n], 160, "slack:%s", channel_id);
        iv[n++] = cfg_int(cfg, "min_interval_ms", 1000);
    } else if (strcmp(type, "telegram") == 0) {
        snprintf(names[n], 160, "tg:%s:%s", channel_id, target);
        iv[n++] = cfg_int(cfg, "min_interval_ms", 1000);
        snprintf(names[n], 160, "tgbot:%s", channel_id);
        iv[n++] = cfg_int(cfg, "bot_min_interval_ms", 34);
    } else if (strcmp(type, "email") == 0) {
        snprintf(names[n], 160, "email:%s", channel_id);
        iv[n++] = cfg_int(cfg, "min_interval_ms", 200);
    } else {
        snprintf(names[n], 160, "wh:%s", target);
        iv[n++] = cfg_int(cfg, "min_interval_ms", 0);
    }
    return n;
}

static metrics_counter *outcome_counter(const char *type, const char *outcome)
{
    char labels[128];
    snprintf(labels, sizeof labels, "channel_type=\"%s\",outcome=\"%s\"", type, outcome);
    return metrics_counter_get(metrics_global(), "paimon_notifier_deliveries_total",
                               "Notification delivery attempts by outcome", labels);
}

static void wait_for_work(deliver_worker *w, int64_t ms)
{
    if (ms <= 0)
        return;
    struct pollfd p[2] = {{.fd = w->wake[0], .events = POLLIN},
                          {.fd = w->conn ? PQsocket(w->conn->pg) : -1, .events = POLLIN}};
    if (poll(p, 2, (int)ms) > 0) {
        if (p[0].revents & POLLIN) {
            char b[16];
            (void)!read(w->wake[0], b, sizeof b);
        }
    }
    if (w->conn) {
        PQconsumeInput(w->conn->pg);
        PGnotify *n;
        while ((n = PQnotifies(w->conn->pg)) != NULL)
            PQfreemem(n);
    }
}

static int ensure_conns(deliver_worker *w)
{
    char err[UTIL_ERRLEN];
    if (w->conn && PQstatus(w->conn->pg) != CONNECTION_OK) {
        db_release(w->cfg.db, w->conn);
        w->conn = NULL;
    }
    if (!w->conn) {
        w->conn = db_acquire(w->cfg.db, 2000, err, sizeof err);
        if (!w->conn) {
            log_warn("delivery worker: no database", "error", err);
            return -1;
        }
        if (db_exec(w->conn, "LISTEN " STORE_WAKE_CHANNEL, err, sizeof err) != 0)
            log_warn("delivery worker: LISTEN failed", "error", err);
    }
    if (w->rc && w->rc->err) {
        redisFree(w->rc);
        w->rc = NULL;
    }
    if (!w->rc) {
        w->rc = rconn_connect(w->redis_url, 2000, err, sizeof err);
        if (!w->rc) {
            log_warn("delivery worker: no redis", "error", err);
            return -1;
        }
    }
    return 0;
}

static void dead_letter(deliver_worker *w, const store_claim *cl, const char *error, int attempts)
{
    char id[24], att[16], now[24];
    snprintf(id, sizeof id, "%lld", (long long)cl->id);
    snprintf(att, sizeof att, "%d", attempts);
    snprintf(now, sizeof now, "%lld", (long long)util_now_ms());
    const char *argv[] = {"XADD",
                          BUS_DLQ_KEY,
                          "*",
                          "topic",
                          "notifier.deliveries",
                          "kind",
                          "notification",
                          "group",
                          "notifier",
                          "notification_id",
                          id,
                          "channel",
                          cl->channel_id,
                          "error",
                          error ? error : "",
                          "attempts",
                          att,
                          "failed_at",
                          now};
    redisReply *r = redisCommandArgv(w->rc, (int)(sizeof argv / sizeof *argv), argv, NULL);
    if (!r || r->type == REDIS_REPLY_ERROR)
        log_error("notification DLQ entry not written", "notification_id", id);
    if (r)
        freeReplyObject(r);
    log_error("notification dead", "notification_id", id, "channel", cl->channel_id, "error",
              error ? error : "");
}

/* Builds the channel's message and sends it; fills res. -1 when the row cannot be sent at
 * all (config / secret problems): res then says why and is permanent. */
static void send_one(deliver_worker *w, const store_claim *cl, channel_result *res)
{
    memset(res, 0, sizeof *res);
    res->cls = RETRY_PERMANENT;
    format_note note;
    char why[UTIL_ERRLEN];
    if (!cl->channel_ok) {
        snprintf(res->error, sizeof res->error, "channel missing or disabled");
        return;
    }
    if (format_note_parse(cl->payload, &note, why, sizeof why) != 0) {
        snprintf(res->error, sizeof res->error, "bad payload: %.150s", why);
        return;
    }
    long tmo = (long)w->cfg.send_timeout_ms;
    const char *type = cl->channel_type;
    if (strcmp(type, "webhook") == 0) {
        if (!cl->wh_url || !cl->wh_active) {
            snprintf(res->error, sizeof res->error, "webhook subscription gone or inactive");
        } else {
            char *secret = secret_resolve_new(NULL, cl->wh_sealed, cl->wh_sealed_len, cl->target,
                                              why, sizeof why);
            if (!secret)
                snprintf(res->error, sizeof res->error, "webhook secret: %.150s", why);
            else {
                char id[24];
                snprintf(id, sizeof id, "%lld", (long long)cl->id);
                char *body = format_webhook_new(cl->payload, cl->event, cl->id, util_now_ms());
                channel_send_webhook(w->curl, cl->wh_url, secret, body, id, cl->event, tmo, res);
                free(body);
                secret_free(secret);
            }
        }
        format_note_free(&note);
        return;
    }
    char *secret = NULL;
    if (cl->secret_env || cl->sealed)
        secret = secret_resolve_new(cl->secret_env, cl->sealed, cl->sealed_len, cl->channel_id, why,
                                    sizeof why);
    if (strcmp(type, "slack") == 0) {
        if (!secret)
            snprintf(res->error, sizeof res->error, "slack secret: %.150s", why);
        else {
            char *body = format_slack_new(&note);
            channel_send_slack(w->curl, secret, body, tmo, res);
            free(body);
        }
    } else if (strcmp(type, "telegram") == 0) {
        if (!secret)
            snprintf(res->error, sizeof res->error, "telegram secret: %.150s", why);
        else {
            const char *base = cfg_str(cl->config, "api_base");
            char *body = format_telegram_new(&note, cl->target);
            channel_send_telegram(w->curl, base ? base : "https://api.telegram.org", secret, body,
                                  tmo, res);
            free(body);
        }
    } else if (strcmp(type, "email") == 0) {
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(cl->config, "to"), *t;
        const char *tov[32];
        size_t nto = 0;
        cJSON_ArrayForEach(t, to) if (cJSON_IsString(t) && nto < 32) tov[nto++] = t->valuestring;
        const char *from = cfg_str(cl->config, "from");
        char msgid[128];
        snprintf(msgid, sizeof msgid, "notification-%lld@paimon.notifier", (long long)cl->id);
        char *msg = format_email_new(&note, from ? from : "paimon-alerts@localhost", tov, nto,
                                     util_now_ms(), msgid);
        const char *url = cfg_str(cl->config, "smtp_url");
        if (!msg || !url)
            snprintf(res->error, sizeof res->error, "email: bad from/to addresses or smtp_url");
        else
            channel_send_email(
                w->curl, url, cfg_str(cl->config, "username"), secret,
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cl->config, "allow_plain_auth")),
                from ? from : "paimon-alerts@localhost", tov, nto, msg, tmo, res);
        free(msg);
    } else {
        snprintf(res->error, sizeof res->error, "unknown channel type");
    }
    secret_free(secret);
    format_note_free(&note);
}

static void process(deliver_worker *w, const store_claim *cl)
{
    char err[UTIL_ERRLEN];
    char names[RLIMIT_MAX_KEYS][160];
    int64_t iv[RLIMIT_MAX_KEYS];
    size_t nl = cl->channel_ok ? deliver_limits(cl->channel_type, cl->channel_id, cl->target,
                                                cl->config, names, iv)
                               : 0;
    const char *nv[RLIMIT_MAX_KEYS];
    for (size_t i = 0; i < nl; i++)
        nv[i] = names[i];
    int64_t wait = 0;
    if (nl && rlimit_acquire(w->rc, nv, iv, nl, &wait, err, sizeof err) != 0) {
        /* Without Redis we cannot honour shared limits: wait rather than risk a flood. */
        log_warn("rate limiter unavailable", "error", err);
        store_defer(w->conn, cl->id, w->owner, 1000, NULL, 0);
        return;
    }
    if (wait > 0) {
        store_defer(w->conn, cl->id, w->owner, wait, NULL, 0);
        return;
    }
    channel_result res;
    send_one(w, cl, &res);
    store_outcome o = {.status_code = res.status,
                       .latency_ms = res.latency_ms,
                       .error = res.error[0] ? res.error : NULL,
                       .count_attempt = 1};
    int attempt = cl->attempts + 1;
    switch (res.cls) {
    case RETRY_SENT:
        o.outcome = "sent";
        o.error = NULL;
        break;
    case RETRY_PAUSE:
        o.outcome = "rate_limited";
        o.count_attempt = 0;
        o.next_delay_ms = res.retry_after_ms;
        for (size_t i = 0; i < nl; i++)
            if (rlimit_pause(w->rc, names[i], res.retry_after_ms, err, sizeof err) != 0)
                log_warn("rate limit pause not stored", "error", err);
        break;
    case RETRY_AGAIN:
        if (attempt >= w->cfg.max_attempts) {
            o.outcome = "dead";
        } else {
            o.outcome = "retry";
            o.next_delay_ms =
                retry_backoff_ms(attempt, w->cfg.backoff_base_ms, w->cfg.backoff_max_ms,
                                 (uint32_t)util_random_below(1ULL << 32));
        }
        break;
    default:
        o.outcome = "dead";
        break;
    }
    int lost = 0;
    if (store_record(w->conn, cl, w->owner, &o, w->fallback, &lost, err, sizeof err) != 0) {
        log_error("delivery not recorded", "error", err);
        return; /* the lease runs out and the row is tried again: at-least-once */
    }
    metrics_counter_inc(outcome_counter(cl->channel_type, o.outcome));
    if (lost) {
        log_warn("lease lost before recording", "channel", cl->channel_id);
        return;
    }
    if (strcmp(o.outcome, "dead") == 0)
        dead_letter(w, cl, o.error, attempt);
    else
        log_debug("delivery", "channel", cl->channel_id, "outcome", o.outcome);
}

static void *worker_main(void *arg)
{
    deliver_worker *w = arg;
    char err[UTIL_ERRLEN];
    int64_t backoff = 100;
    while (!atomic_load(&w->stop)) {
        if (ensure_conns(w) != 0) {
            wait_for_work(w, backoff);
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            continue;
        }
        backoff = 100;
        int flushed = 0;
        if (store_flush_due(w->conn, 50, &flushed, err, sizeof err) != 0)
            log_warn("group flush failed", "error", err);
        store_claim *cl = NULL;
        size_t n = 0;
        if (store_claim_due(w->conn, w->owner, w->cfg.lease_ms, w->cfg.batch, &cl, &n, err,
                            sizeof err) != 0) {
            log_warn("claim failed", "error", err);
            wait_for_work(w, 500);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (atomic_load(&w->stop))
                store_defer(w->conn, cl[i].id, w->owner, 0, NULL, 0);
            else
                process(w, &cl[i]);
        }
        store_claims_free(cl, n);
        if (n == 0 && flushed == 0)
            wait_for_work(w, store_next_due_ms(w->conn, w->cfg.poll_ms));
    }
    return NULL;
}

deliver_worker *deliver_start(const deliver_cfg *cfg, char *err, size_t errlen)
{
    deliver_worker *w = util_calloc(1, sizeof *w);
    w->cfg = *cfg;
    w->redis_url = util_strdup(cfg->redis_url);
    w->fallback = util_strdup(cfg->fallback_channel ? cfg->fallback_channel : "");
    w->cfg.redis_url = w->redis_url;
    w->cfg.fallback_channel = w->fallback;
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    unsigned char rnd[4] = {0};
    util_random(rnd, sizeof rnd);
    snprintf(w->owner, sizeof w->owner, "%.60s-%d-%d-%02x%02x%02x%02x", host, (int)getpid(),
             cfg->index, rnd[0], rnd[1], rnd[2], rnd[3]);
    if (pipe(w->wake) != 0) {
        free(w->redis_url);
        free(w->fallback);
        free(w);
        util_err(err, errlen, "pipe failed");
        return NULL;
    }
    w->curl = curl_easy_init();
    if (!w->curl || pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        if (w->curl)
            curl_easy_cleanup(w->curl);
        close(w->wake[0]);
        close(w->wake[1]);
        free(w->redis_url);
        free(w->fallback);
        free(w);
        util_err(err, errlen, "cannot start the delivery worker");
        return NULL;
    }
    return w;
}

void deliver_stop(deliver_worker *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, 1);
    (void)!write(w->wake[1], "x", 1);
    pthread_join(w->thread, NULL);
    if (w->conn) {
        db_exec(w->conn, "UNLISTEN *", NULL, 0);
        db_release(w->cfg.db, w->conn);
    }
    if (w->rc)
        redisFree(w->rc);
    curl_easy_cleanup(w->curl);
    close(w->wake[0]);
    close(w->wake[1]);
    free(w->redis_url);
    free(w->fallback);
    free(w);
}
