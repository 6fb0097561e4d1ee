/* paimon-risk: measures the fund from chain state, keeps the history, raises the alarm
 * and runs the emergency protocol (ARCHITECTURE §5 Risk).
 *   consumes chain.events (events.h: redemption book for coverage, early-cycle triggers)
 *   and approval.decisions (answers to its emergency tickets);
 *   once per cluster: the metrics cycle every PAIMON_RISK_EVERY (engine.h), daily snapshots
 *   at 00:00 UTC with an hourly backfill check (snapshot.h), the partition job;
 *   on the replica that handled a triggering event: an early cycle (at most one per
 *   PAIMON_RISK_TRIGGER_GAP); every replica publishes its outgoing-message queue and runs
 *   the tx outbox thread that sends setEmergencyMode(true) once a ticket is approved
 *   (emergency.h);
 *   serves the internal API (api.h) on PAIMON_HTTP_PORT (8084).
 *
 * Service variables (besides svc.h's common ones):
 *   PAIMON_RPC_URLS        http://127.0.0.1:8545   JSON-RPC endpoints, priority order
 *   PAIMON_CHAIN_ID        31337
 *   PAIMON_VAULT_ADDRESS   (or contracts.vault of PAIMON_DEVCHAIN_JSON)
 *   PAIMON_DEVCHAIN_JSON   devchain.json of the local stack / tests
 *   PAIMON_MARKET_ADDRESS  second price source (default: the vault's market())
 *   PAIMON_ABI_DIR         schemas/abi
 *   PAIMON_RISK_EVERY 1m, PAIMON_RISK_TRIGGER_GAP 5s
 *   PAIMON_CONFIRMATIONS   12
 *   PAIMON_SIGNER_DEV_KEY  raw key, dev chains only (secret); when empty the signer comes
 *                          from PAIMON_SIGNER_* (signer.h) if PAIMON_SIGNER_KEYSTORE or
 *                          PAIMON_SIGNER_BACKEND is set. The key needs OPERATOR_ROLE on the
 *                          vault and must be risk's alone (outbox.h nonce assumption; the
 *                          devchain's "guardian" account). Without any signer risk still
 *                          measures and alerts, and an approved emergency raises a critical
 *                          alert asking for emergency mode by hand.
 *   PAIMON_RISK_OUTBOX_EVERY 1s */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "hex.h"
#include "log.h"
#include "outbox.h"
#include "risk/api.h"
#include "risk/engine.h"
#include "risk/events.h"
#include "risk/outmsg.h"
#include "risk/snapshot.h"
#include "signer.h"
#include "svc.h"
#include "util.h"

static cfg_list rpc_urls;
static int64_t chain_id, every_ms, trigger_gap_ms, confirmations, outbox_every;
static char *vault_addr, *market_addr, *devchain_json, *abi_dir, *dev_key;

static const cfg_var VARS[] = {
    {"PAIMON_RPC_URLS", CFG_LIST, "http://127.0.0.1:8545", &rpc_urls, 1, RPC_MAX_ENDPOINTS, NULL, 0,
     "JSON-RPC endpoints in priority order"},
    {"PAIMON_CHAIN_ID", CFG_INT, "31337", &chain_id, 1, 0x7fffffffffffLL, NULL, 0, "chain id"},
    {"PAIMON_VAULT_ADDRESS", CFG_STR, "", &vault_addr, 0, 0, NULL, 0, "PaimonVault address"},
    {"PAIMON_MARKET_ADDRESS", CFG_STR, "", &market_addr, 0, 0, NULL, 0,
     "second price source (default: the vault's market)"},
    {"PAIMON_DEVCHAIN_JSON", CFG_STR, "", &devchain_json, 0, 0, NULL, 0,
     "devchain.json to take the vault from when PAIMON_VAULT_ADDRESS is empty"},
    {"PAIMON_ABI_DIR", CFG_STR, "schemas/abi", &abi_dir, 0, 0, NULL, 0, "ABI JSON folder"},
    {"PAIMON_RISK_EVERY", CFG_DURATION_MS, "1m", &every_ms, 1000, 3600000, NULL, 0,
     "metrics cycle interval"},
    {"PAIMON_RISK_TRIGGER_GAP", CFG_DURATION_MS, "5s", &trigger_gap_ms, 0, 600000, NULL, 0,
     "least time between event-triggered cycles"},
    {"PAIMON_CONFIRMATIONS", CFG_INT, "12", &confirmations, 1, 1000, NULL, 0,
     "confirmations before a transaction counts"},
    {"PAIMON_SIGNER_DEV_KEY", CFG_STR, "", &dev_key, 0, 0, NULL, 1,
     "raw emergency-mode key, dev chains only"},
    {"PAIMON_RISK_OUTBOX_EVERY", CFG_DURATION_MS, "1s", &outbox_every, 50, 60000, NULL, 0,
     "outbox pass interval"},
};

typedef struct daemon_state {
    svc *s;
    rk_app app;
    rk_api api;
    int64_t last_cycle_mono;
    struct event *tick_ev;
    outbox *ob;
    atomic_int stop;
} daemon_state;

static void *outbox_main(void *ud)
{
    daemon_state *d = ud;
    outbox_run(d->ob, outbox_every, &d->stop);
    return NULL;
}

static void stop_workers(void *ud)
{
    atomic_store(&((daemon_state *)ud)->stop, 1);
}

static redisContext *api_redis(void *ud, char *err, size_t errlen)
{
    return svc_redis(((daemon_state *)ud)->s, err, errlen);
}

static void publish(daemon_state *d)
{
    char err[UTIL_ERRLEN];
    redisContext *rc = svc_redis(d->s, err, sizeof err);
    if (!rc)
        return;
    if (rk_out_flush(d->app.db, rc, 500, err, sizeof err) < 0)
        log_warn("outgoing messages not published yet", "error", err);
}

static int run_cycle(daemon_state *d, char *err, size_t errlen)
{
    d->last_cycle_mono = util_mono_ms();
    static rk_cycle_result r; /* large (chain read); the loop thread is the only user */
    if (rk_cycle(&d->app, util_now_ms(), NULL, &r, err, errlen) != 0)
        return -1;
    char e2[UTIL_ERRLEN];
    redisContext *rc = svc_redis(d->s, e2, sizeof e2);
    if (!rc || rk_cache_set(rc, r.current, e2, sizeof e2) != 0)
        log_warn("risk cache not updated", "error", e2);
    rk_cycle_result_clear(&r);
    publish(d);
    return 0;
}

static int job_cycle(void *ud, char *err, size_t errlen)
{
    return run_cycle(ud, err, errlen);
}

static int job_snapshot(void *ud, char *err, size_t errlen)
{
    daemon_state *d = ud;
    int n = rk_snapshot_run(d->app.db, util_now_ms(), err, errlen);
    if (n > 0)
        log_info("risk daily snapshots written", "#days", LOG_I64(n));
    return n < 0 ? -1 : 0;
}

static int job_partitions(void *ud, char *err, size_t errlen)
{
    daemon_state *d = ud;
    return rk_partitions_ensure(d->app.db, util_now_ms(), err, errlen);
}

static void on_tick(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    daemon_state *d = ud;
    if (atomic_load(&d->app.dirty) && util_mono_ms() - d->last_cycle_mono >= trigger_gap_ms) {
        char err[UTIL_ERRLEN];
        if (run_cycle(d, err, sizeof err) != 0)
            log_warn("triggered risk cycle failed", "error", err);
    }
    publish(d);
}

int main(void)
{
    char err[CFG_ERRLEN];
    static daemon_state d;
    d.s = svc_new("risk", 8084, VARS, CFG_COUNT(VARS), err, sizeof err);
    if (!d.s) {
        fprintf(stderr, "paimon-risk: %s\n", err);
        return 2;
    }
    int rc = 1;
    rpc_client *rpc = NULL;
    abi_contract *vabi = NULL, *mabi = NULL;
    signer *sg = NULL;
    pthread_t ob_thread;
    int ob_started = 0;
    if (cfg_address(vault_addr, devchain_json, "contracts.vault", d.app.vault, sizeof d.app.vault,
                    err, sizeof err) != 0) {
        log_error("PAIMON_VAULT_ADDRESS (or PAIMON_DEVCHAIN_JSON) must give the vault address",
                  "error", err);
        goto out;
    }
    if (market_addr && *market_addr &&
        cfg_address(market_addr, NULL, "market", d.app.market, sizeof d.app.market, err,
                    sizeof err) != 0) {
        log_error("PAIMON_MARKET_ADDRESS is not an address");
        goto out;
    }
    d.app.chain_id = (uint64_t)chain_id;
    d.app.db = svc_db(d.s);
    rpc_config rcfg = {
        .urls = (const char *const *)rpc_urls.items, .nurls = rpc_urls.n, .name = "risk"};
    if (!(rpc = rpc_client_new(&rcfg, err, sizeof err))) {
        log_error("rpc client", "error", err);
        goto out;
    }
    d.app.rpc = rpc;
    if (!(vabi = abi_contract_load_in(abi_dir, "PaimonVault", err, sizeof err))) {
        log_error("vault ABI", "error", err);
        goto out;
    }
    if (!(mabi = abi_contract_load_in(abi_dir, "MockMarket", err, sizeof err)))
        log_warn("no market ABI: price deviation is not measured", "error", err);
    d.app.vault_abi = vabi;
    d.app.market_abi = mabi;
    int have = signer_open(dev_key, 1, &sg, err, sizeof err);
    if (have < 0) {
        log_error("signer", "error", err);
        goto out;
    }
    if (have) {
        hex_encode(signer_address(sg), 20, 1, d.app.signer, sizeof d.app.signer);
        outbox_cfg ocfg = {.schema = RK_SCHEMA,
                           .db = d.app.db,
                           .rpc = rpc,
                           .signer = sg,
                           .redis_url = svc_cfg(d.s)->redis_url,
                           .chain_id = d.app.chain_id,
                           .abi_dir = abi_dir,
                           .source = RK_SOURCE,
                           .confirmations = (unsigned)confirmations};
        if (!(d.ob = outbox_new(&ocfg, err, sizeof err))) {
            log_error("outbox", "error", err);
            goto out;
        }
    } else {
        log_warn("no transaction signer: an approved emergency cannot be executed by risk "
                 "(set PAIMON_SIGNER_* or PAIMON_SIGNER_DEV_KEY)");
    }
    d.api.app = &d.app;
    d.api.redis = api_redis;
    d.api.redis_ud = &d;
    if (rk_partitions_ensure(d.app.db, util_now_ms(), err, sizeof err) != 0)
        log_warn("partitions not checked at start-up", "error", err);
    sched *sc = svc_sched(d.s);
    if (svc_consume(d.s, "chain.events", rk_chain_event, NULL, &d.app, err, sizeof err) != 0 ||
        svc_consume(d.s, "approval.decisions", rk_decision, NULL, &d.app, err, sizeof err) != 0 ||
        rk_api_register(svc_http(d.s), &d.api) != 0 ||
        sched_every(sc, "risk.cycle", every_ms, job_cycle, &d, err, sizeof err) != 0 ||
        sched_daily(sc, "risk.snapshot", 0, 0, job_snapshot, &d, err, sizeof err) != 0 ||
        sched_every(sc, "risk.snapshot_backfill", 3600000, job_snapshot, &d, err, sizeof err) !=
            0 ||
        sched_daily(sc, "risk.partitions", 0, 10, job_partitions, &d, err, sizeof err) != 0) {
        log_error("start-up", "error", err);
        goto out;
    }
    svc_on_stop(d.s, stop_workers, &d);
    if (d.ob) {
        if (pthread_create(&ob_thread, NULL, outbox_main, &d) != 0) {
            log_error("cannot start the outbox thread");
            goto out;
        }
        ob_started = 1;
    }
    d.tick_ev = event_new(svc_base(d.s), -1, EV_PERSIST, on_tick, &d);
    struct timeval tv = {0, 300000};
    event_add(d.tick_ev, &tv);
    log_info("risk ready", "vault", d.app.vault, "signer", d.app.signer[0] ? d.app.signer : "none");
    rc = svc_run(d.s);
out:
    atomic_store(&d.stop, 1);
    if (ob_started)
        pthread_join(ob_thread, NULL);
    outbox_free(d.ob);
    signer_free(sg);
    if (d.tick_ev)
        event_free(d.tick_ev);
    abi_contract_free(mabi);
    abi_contract_free(vabi);
    rpc_client_free(rpc);
    svc_free(d.s);
    return rc;
}
