/* paimon-notifier: routes alerts to Slack, Telegram, e-mail and signed webhooks, with
 * grouping, de-duplication, silences, rate limits and retries (ARCHITECTURE §5).
 *
 * Shape: the bus consumer (svc, topic `alerts`) only writes state — alert, groups and
 * outbox rows — in the message's transaction (ingest.c). Delivery workers (deliver.c; own
 * threads, own db and Redis connections) send what the outbox holds, so a crash between
 * "decided" and "sent" loses nothing: the lease expires and another worker sends it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "api.h"
#include "deliver.h"
#include "ingest.h"
#include "jsonschema.h"
#include "log.h"
#include "svc.h"
#include "util.h"

#define MAX_WORKERS 8

static char *fallback_channel;
static int64_t lease_ms, poll_ms, send_timeout_ms, backoff_base_ms, backoff_max_ms, workers_n,
    max_attempts;

static const cfg_var vars[] = {
    {"PAIMON_NOTIFIER_FALLBACK_CHANNEL", CFG_STR, "", &fallback_channel, 0, 64, NULL, 0,
     "channel told when a notification is dead-lettered (empty = none)"},
    {"PAIMON_NOTIFIER_WORKERS", CFG_INT, "2", &workers_n, 1, MAX_WORKERS, NULL, 0,
     "delivery worker threads"},
    {"PAIMON_NOTIFIER_LEASE", CFG_DURATION_MS, "30s", &lease_ms, 1000, 600000, NULL, 0,
     "claim lease of an outbox row"},
    {"PAIMON_NOTIFIER_POLL", CFG_DURATION_MS, "1s", &poll_ms, 10, 60000, NULL, 0,
     "longest idle wait of a worker"},
    {"PAIMON_NOTIFIER_SEND_TIMEOUT", CFG_DURATION_MS, "5s", &send_timeout_ms, 100, 60000, NULL, 0,
     "timeout of one delivery attempt"},
    {"PAIMON_NOTIFIER_BACKOFF_BASE", CFG_DURATION_MS, "1s", &backoff_base_ms, 10, 600000, NULL, 0,
     "first retry delay"},
    {"PAIMON_NOTIFIER_BACKOFF_MAX", CFG_DURATION_MS, "5m", &backoff_max_ms, 10, 86400000, NULL, 0,
     "longest retry delay"},
    {"PAIMON_NOTIFIER_MAX_ATTEMPTS", CFG_INT, "6", &max_attempts, 1, 100, NULL, 0,
     "attempts before a notification is dead"},
};

static void stop_workers(void *ud)
{
    deliver_worker **workers = ud;
    for (int i = 0; i < MAX_WORKERS; i++) {
        deliver_stop(workers[i]);
        workers[i] = NULL;
    }
}

int main(void)
{
    char err[CFG_ERRLEN];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    svc *s = svc_new("notifier", 8085, vars, CFG_COUNT(vars), err, sizeof err);
    if (!s) {
        fprintf(stderr, "paimon-notifier: %s\n", err);
        curl_global_cleanup();
        return 2;
    }
    int rc = 1;
    deliver_worker *workers[MAX_WORKERS] = {0};
    api *a = api_new(svc_http(s), svc_db(s), err, sizeof err);
    if (!a) {
        log_error("api not started", "error", err);
        goto out;
    }
    if (svc_consume(s, "alerts", ingest_handle, NULL, NULL, err, sizeof err) != 0) {
        log_error("consumer not registered", "error", err);
        goto out;
    }
    for (int i = 0; i < (int)workers_n; i++) {
        deliver_cfg dc = {.db = svc_db(s),
                          .redis_url = svc_cfg(s)->redis_url,
                          .fallback_channel = fallback_channel,
                          .lease_ms = lease_ms,
                          .poll_ms = poll_ms,
                          .send_timeout_ms = send_timeout_ms,
                          .backoff_base_ms = backoff_base_ms,
                          .backoff_max_ms = backoff_max_ms,
                          .max_attempts = (int)max_attempts,
                          .batch = 16,
                          .index = i};
        if (!(workers[i] = deliver_start(&dc, err, sizeof err))) {
            log_error("delivery worker not started", "error", err);
            goto out;
        }
    }
    /* Serves until SIGTERM; the workers stop inside the shutdown deadline (each finishes
     * the send in hand, bounded by the send timeout), then the consumers. */
    svc_on_stop(s, stop_workers, workers);
    rc = svc_run(s);
out:
    for (int i = 0; i < MAX_WORKERS; i++)
        deliver_stop(workers[i]);
    api_free(a);
    svc_free(s);
    jsonschema_embedded_cleanup();
    curl_global_cleanup();
    return rc;
}
