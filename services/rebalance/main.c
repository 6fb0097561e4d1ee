/* paimon-rebalance: keeps the vault's tiers on target (ARCHITECTURE §5 Rebalancing).
 *   consumes chain.events (asset configs, large deposits), approval.decisions (rebalance
 *   tickets) and rebalance.requests (liquidity requests) — events.h;
 *   serves the internal API (api.h) on PAIMON_HTTP_PORT (8083);
 *   once per cluster: the daily plan trigger and the deviation / L1-band check (sched);
 *   on every replica: the executor thread (exec_step under the cluster lease; one plan at a
 *   time) and the tx outbox thread for the rebalancer key.
 *
 * Service variables (besides svc.h's common ones):
 *   PAIMON_RPC_URLS            http://127.0.0.1:8545   JSON-RPC endpoints, priority order
 *   PAIMON_CHAIN_ID            31337
 *   PAIMON_VAULT_ADDRESS       (or contracts.vault of PAIMON_DEVCHAIN_JSON)
 *   PAIMON_DEVCHAIN_JSON       devchain.json of the local stack / tests
 *   PAIMON_ABI_DIR             schemas/abi
 *   PAIMON_CONFIRMATIONS       12
 *   PAIMON_SIGNER_DEV_KEY      raw rebalancer key, dev chains only (secret); when empty the
 *                              signer comes from PAIMON_SIGNER_* (signer.h)
 *   PAIMON_REBALANCE_APPROVAL_THRESHOLD 50000 (USDT)   PAIMON_REBALANCE_LARGE_DEPOSIT 100000
 *   PAIMON_REBALANCE_MIN_TRADE 100 (USDT, default for new assets)
 *   PAIMON_REBALANCE_SLIPPAGE_BPS 50   _DEVIATION_BPS 500   _L1_MIN_BPS 800   _L1_MAX_BPS 1500
 *   PAIMON_REBALANCE_L1_TARGET_BPS 0 (= 10000 - sum of asset targets)   _BAND_BPS 100
 *   PAIMON_REBALANCE_DAILY_AT 01:00 (UTC)   _CHECK_EVERY 60s   _EXEC_EVERY 1s
 *   _OUTBOX_EVERY 1s   _LOCK_TTL 60s */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "abi.h"
#include "api.h"
#include "app.h"
#include "events.h"
#include "exec.h"
#include "hex.h"
#include "log.h"
#include "outbox.h"
#include "signer.h"
#include "store.h"
#include "svc.h"
#include "util.h"

static cfg_list rpc_urls;
static int64_t chain_id, confirmations, slippage, dev_bps, l1_lo, l1_hi, l1_target, band,
    check_every, exec_every, outbox_every, lock_ttl;
static char *vault_addr, *devchain_json, *abi_dir, *dev_key, *threshold, *large_deposit, *min_trade,
    *daily_at;

static const cfg_var VARS[] = {
    {"PAIMON_RPC_URLS", CFG_LIST, "http://127.0.0.1:8545", &rpc_urls, 1, RPC_MAX_ENDPOINTS, NULL, 0,
     "JSON-RPC endpoints in priority order"},
    {"PAIMON_CHAIN_ID", CFG_INT, "31337", &chain_id, 1, 0x7fffffffffffLL, NULL, 0, "chain id"},
    {"PAIMON_VAULT_ADDRESS", CFG_STR, "", &vault_addr, 0, 0, NULL, 0, "PaimonVault address"},
    {"PAIMON_DEVCHAIN_JSON", CFG_STR, "", &devchain_json, 0, 0, NULL, 0,
     "devchain.json to take the vault from when PAIMON_VAULT_ADDRESS is empty"},
    {"PAIMON_ABI_DIR", CFG_STR, "schemas/abi", &abi_dir, 0, 0, NULL, 0, "ABI JSON folder"},
    {"PAIMON_CONFIRMATIONS", CFG_INT, "12", &confirmations, 1, 1000, NULL, 0,
     "confirmations before a transaction counts"},
    {"PAIMON_SIGNER_DEV_KEY", CFG_STR, "", &dev_key, 0, 0, NULL, 1,
     "raw rebalancer key, dev chains only"},
    {"PAIMON_REBALANCE_APPROVAL_THRESHOLD", CFG_STR, "50000", &threshold, 0, 0, NULL, 0,
     "USDT traded above which a plan needs approval"},
    {"PAIMON_REBALANCE_LARGE_DEPOSIT", CFG_STR, "100000", &large_deposit, 0, 0, NULL, 0,
     "USDT deposit that triggers a plan"},
    {"PAIMON_REBALANCE_MIN_TRADE", CFG_STR, "100", &min_trade, 0, 0, NULL, 0,
     "default minimum trade (USDT) for assets first seen on chain"},
    {"PAIMON_REBALANCE_SLIPPAGE_BPS", CFG_INT, "50", &slippage, 0, 5000, NULL, 0,
     "default slippage bound"},
    {"PAIMON_REBALANCE_DEVIATION_BPS", CFG_INT, "500", &dev_bps, 1, 10000, NULL, 0,
     "deviation from target that triggers a plan"},
    {"PAIMON_REBALANCE_L1_MIN_BPS", CFG_INT, "800", &l1_lo, 0, 10000, NULL, 0, "L1 band low"},
    {"PAIMON_REBALANCE_L1_MAX_BPS", CFG_INT, "1500", &l1_hi, 0, 10000, NULL, 0, "L1 band high"},
    {"PAIMON_REBALANCE_L1_TARGET_BPS", CFG_INT, "0", &l1_target, 0, 10000, NULL, 0,
     "L1 target; 0 = what the asset targets leave, within the band"},
    {"PAIMON_REBALANCE_BAND_BPS", CFG_INT, "100", &band, 0, 10000, NULL, 0,
     "deviations the planner leaves alone"},
    {"PAIMON_REBALANCE_DAILY_AT", CFG_STR, "01:00", &daily_at, 0, 0, NULL, 0,
     "daily plan time HH:MM UTC"},
    {"PAIMON_REBALANCE_CHECK_EVERY", CFG_DURATION_MS, "60s", &check_every, 1000, 86400000, NULL, 0,
     "deviation / L1 band check interval"},
    {"PAIMON_REBALANCE_EXEC_EVERY", CFG_DURATION_MS, "1s", &exec_every, 50, 60000, NULL, 0,
     "executor pass interval"},
    {"PAIMON_REBALANCE_OUTBOX_EVERY", CFG_DURATION_MS, "1s", &outbox_every, 50, 60000, NULL, 0,
     "outbox pass interval"},
    {"PAIMON_REBALANCE_LOCK_TTL", CFG_DURATION_MS, "60s", &lock_ttl, 1000, 3600000, NULL, 0,
     "executor lease"},
};

typedef struct daemon_state {
    svc *s;
    rb_app app;
    outbox *ob;
    exec_runner *ex;
    atomic_int stop;
} daemon_state;

static int job_daily(void *ud, char *err, size_t errlen);
static int job_check(void *ud, char *err, size_t errlen)
{
    daemon_state *d = ud;
    return exec_check(&d->app, err, errlen) < 0 ? -1 : 0;
}

typedef struct daily_ctx {
    char src[64];
} daily_ctx;

static int daily_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    daily_ctx *x = ud;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "reason", "daily schedule");
    return store_trigger_add(tx, "schedule", d, NULL, x->src, 0, err, errlen) < 0 ? -1 : 0;
}

static int job_daily(void *ud, char *err, size_t errlen)
{
    daemon_state *d = ud;
    daily_ctx x;
    snprintf(x.src, sizeof x.src, "schedule:%lld", (long long)(util_now_ms() / 86400000));
    return db_tx(d->app.db, daily_tx, &x, err, errlen);
}

static void *outbox_main(void *ud)
{
    daemon_state *d = ud;
    outbox_run(d->ob, outbox_every, &d->stop);
    return NULL;
}

static void *exec_main(void *ud)
{
    daemon_state *d = ud;
    char err[UTIL_ERRLEN];
    while (!atomic_load(&d->stop)) {
        int rc = exec_step(d->ex, err, sizeof err);
        if (rc < 0)
            log_warn("executor pass failed", "error", err);
        if (rc > 0)
            continue; /* progress: go on at once */
        for (int64_t t = 0; t < exec_every && !atomic_load(&d->stop); t += 50)
            util_sleep_ms(50);
    }
    return NULL;
}

static void stop_workers(void *ud)
{
    daemon_state *d = ud;
    atomic_store(&d->stop, 1);
}

static int usdt_var(const char *name, const char *v, money_u256 *out)
{
    char err[UTIL_ERRLEN];
    if (money_from_units(out, v, 18, err, sizeof err) != 0) {
        log_error("bad USDT amount", "variable", name, "error", err);
        return -1;
    }
    return 0;
}

int main(void)
{
    char err[CFG_ERRLEN];
    daemon_state d = {0};
    d.s = svc_new("rebalance", 8083, VARS, CFG_COUNT(VARS), err, sizeof err);
    if (!d.s) {
        fprintf(stderr, "paimon-rebalance: %s\n", err);
        return 2;
    }
    int rc = 1, hh = 0, mm = 0;
    rpc_client *rpc = NULL;
    abi_contract *vabi = NULL, *tabi = NULL;
    signer *sg = NULL;
    pthread_t ob_thread, ex_thread;
    int ob_started = 0, ex_started = 0;
    rb_app *app = &d.app;

    if (cfg_address(vault_addr, devchain_json, "contracts.vault", app->vault, sizeof app->vault,
                    err, sizeof err) != 0) {
        log_error("PAIMON_VAULT_ADDRESS (or PAIMON_DEVCHAIN_JSON) must give the vault address",
                  "error", err);
        goto out;
    }
    if (usdt_var("PAIMON_REBALANCE_APPROVAL_THRESHOLD", threshold, &app->approval_threshold) ||
        usdt_var("PAIMON_REBALANCE_LARGE_DEPOSIT", large_deposit, &app->large_deposit) ||
        usdt_var("PAIMON_REBALANCE_MIN_TRADE", min_trade, &app->default_min_trade))
        goto out;
    if (sscanf(daily_at, "%2d:%2d", &hh, &mm) != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59) {
        log_error("PAIMON_REBALANCE_DAILY_AT must be HH:MM");
        goto out;
    }
    if (l1_lo > l1_hi) {
        log_error("PAIMON_REBALANCE_L1_MIN_BPS is above PAIMON_REBALANCE_L1_MAX_BPS");
        goto out;
    }
    app->chain_id = (uint64_t)chain_id;
    app->db = svc_db(d.s);
    app->redis_url = svc_cfg(d.s)->redis_url;
    app->default_slippage_bps = (uint32_t)slippage;
    app->dev_bps = (uint32_t)dev_bps;
    app->l1_lo_bps = (uint32_t)l1_lo;
    app->l1_hi_bps = (uint32_t)l1_hi;
    app->l1_target_bps = (uint32_t)l1_target;
    app->band_bps = (uint32_t)band;
    app->lock_ttl_ms = lock_ttl;

    rpc_config rcfg = {
        .urls = (const char *const *)rpc_urls.items, .nurls = rpc_urls.n, .name = "rebalance"};
    if (!(rpc = rpc_client_new(&rcfg, err, sizeof err))) {
        log_error("rpc client", "error", err);
        goto out;
    }
    app->rpc = rpc;
    if (!(vabi = abi_contract_load_in(abi_dir, "PaimonVault", err, sizeof err))) {
        log_error("vault ABI", "error", err);
        goto out;
    }
    if (!(tabi = abi_contract_load_in(abi_dir, "RWAToken", err, sizeof err))) {
        log_error("token ABI", "error", err);
        goto out;
    }
    app->vault_abi = vabi;
    app->token_abi = tabi;
    if (signer_open(dev_key, 0, &sg, err, sizeof err) < 0) {
        log_error("signer", "error", err);
        goto out;
    }
    hex_encode(signer_address(sg), 20, 1, app->rebalancer, sizeof app->rebalancer);
    outbox_cfg ocfg = {.schema = RB_SCHEMA,
                       .db = app->db,
                       .rpc = rpc,
                       .signer = sg,
                       .redis_url = app->redis_url,
                       .chain_id = app->chain_id,
                       .abi_dir = abi_dir,
                       .source = RB_SOURCE,
                       .confirmations = (unsigned)confirmations};
    if (!(d.ob = outbox_new(&ocfg, err, sizeof err)) ||
        !(d.ex = exec_runner_new(app, err, sizeof err))) {
        log_error("outbox / executor", "error", err);
        goto out;
    }
    if (svc_consume(d.s, "chain.events", events_chain, NULL, app, err, sizeof err) != 0 ||
        svc_consume(d.s, "approval.decisions", events_decision, NULL, app, err, sizeof err) != 0 ||
        svc_consume(d.s, "rebalance.requests", events_liquidity, NULL, app, err, sizeof err) != 0 ||
        api_register(svc_http(d.s), app) != 0 ||
        sched_daily(svc_sched(d.s), "rebalance.daily", hh, mm, job_daily, &d, err, sizeof err) !=
            0 ||
        sched_every(svc_sched(d.s), "rebalance.check", check_every, job_check, &d, err,
                    sizeof err) != 0) {
        log_error("start-up", "error", err);
        goto out;
    }
    svc_on_stop(d.s, stop_workers, &d);
    if (pthread_create(&ob_thread, NULL, outbox_main, &d) != 0) {
        log_error("cannot start the outbox thread");
        goto out;
    }
    ob_started = 1;
    if (pthread_create(&ex_thread, NULL, exec_main, &d) != 0) {
        log_error("cannot start the executor thread");
        goto out;
    }
    ex_started = 1;
    log_info("rebalance ready", "vault", app->vault, "rebalancer", app->rebalancer);
    rc = svc_run(d.s);
out:
    atomic_store(&d.stop, 1);
    if (ex_started)
        pthread_join(ex_thread, NULL);
    if (ob_started)
        pthread_join(ob_thread, NULL);
    exec_runner_free(d.ex);
    outbox_free(d.ob);
    signer_free(sg);
    abi_contract_free(vabi);
    abi_contract_free(tabi);
    rpc_client_free(rpc);
    svc_free(d.s);
    return rc;
}
