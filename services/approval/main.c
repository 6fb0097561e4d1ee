/* paimon-approval: the redemption book and every approval workflow (ARCHITECTURE §5).
 *   consumes chain.events (book_chain_event) and approval.requests (book_request);
 *   serves the internal API (api.h) on PAIMON_HTTP_PORT (8082);
 *   once per cluster: SLA sweep, settlement pass, settlement forecast (sched);
 *   on every replica: the tx outbox worker (own thread) and the outgoing-message flusher.
 *
 * Service variables (besides svc.h's common ones):
 *   PAIMON_RPC_URLS            http://127.0.0.1:8545     JSON-RPC endpoints, priority order
 *   PAIMON_CHAIN_ID            31337
 *   PAIMON_VAULT_ADDRESS       (or contracts.vault of PAIMON_DEVCHAIN_JSON)
 *   PAIMON_DEVCHAIN_JSON       devchain.json of the local stack / tests
 *   PAIMON_ABI_DIR             schemas/abi
 *   PAIMON_CONFIRMATIONS       12
 *   PAIMON_SIGNER_DEV_KEY      a raw operator key for dev chains only (secret); when empty
 *                              the signer comes from PAIMON_SIGNER_* (signer.h)
 *   PAIMON_APPROVAL_SLA_EVERY 30s, _SETTLE_EVERY 30s, _FORECAST_EVERY 10m, _OUTBOX_EVERY 1s */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "abi.h"
#include "api.h"
#include "app.h"
#include "book.h"
#include "hex.h"
#include "log.h"
#include "outbox.h"
#include "outmsg.h"
#include "rconn.h"
#include "settle.h"
#include "signer.h"
#include "sla.h"
#include "svc.h"
#include "util.h"

static cfg_list rpc_urls;
static int64_t chain_id, confirmations, sla_every, settle_every, forecast_every, outbox_every;
static char *vault_addr, *devchain_json, *abi_dir, *dev_key;

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
     "raw operator key, dev chains only"},
    {"PAIMON_APPROVAL_SLA_EVERY", CFG_DURATION_MS, "30s", &sla_every, 100, 3600000, NULL, 0,
     "SLA sweep interval"},
    {"PAIMON_APPROVAL_SETTLE_EVERY", CFG_DURATION_MS, "30s", &settle_every, 100, 3600000, NULL, 0,
     "settlement pass interval"},
    {"PAIMON_APPROVAL_FORECAST_EVERY", CFG_DURATION_MS, "10m", &forecast_every, 100, 86400000, NULL,
     0, "forecast interval"},
    {"PAIMON_APPROVAL_OUTBOX_EVERY", CFG_DURATION_MS, "1s", &outbox_every, 50, 60000, NULL, 0,
     "outbox pass interval"},
};

typedef struct daemon_state {
    svc *s;
    appr_app app;
    outbox *ob;
    atomic_int stop;
    struct event *flush_ev;
} daemon_state;

static int job_sla(void *ud, char *err, size_t errlen)
{
    daemon_state *d = ud;
    return sla_sweep(&d->app, util_now_ms(), NULL, err, errlen);
}

static int job_settle(void *ud, char *err, size_t errlen)
{
    daemon_state *d = ud;
    int64_t now;
    money_u256 l1;
    if (stl_chain_now_ms(&d->app, &now, err, errlen) != 0 ||
        stl_l1_balance(&d->app, &l1, err, errlen) != 0)
        return -1;
    return stl_settle(&d->app, now, &l1, NULL, NULL, err, errlen);
}

static int job_forecast(void *ud, char *err, size_t errlen)
{
    daemon_state *d = ud;
    int64_t now;
    money_u256 l1;
    if (stl_chain_now_ms(&d->app, &now, err, errlen) != 0 ||
        stl_l1_balance(&d->app, &l1, err, errlen) != 0)
        return -1;
    return stl_forecast(&d->app, now, &l1, NULL, err, errlen);
}

static void on_flush(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    daemon_state *d = ud;
    char err[UTIL_ERRLEN];
    redisContext *rc = svc_redis(d->s, err, sizeof err);
    if (!rc)
        return;
    if (out_flush(d->app.db, rc, 200, err, sizeof err) < 0)
        log_warn("outgoing messages not published yet", "error", err);
}

static void *outbox_main(void *ud)
{
    daemon_state *d = ud;
    outbox_run(d->ob, outbox_every, &d->stop);
    return NULL;
}

/* VIP_APPROVER_ROLE() from the vault itself, so the role id is never typed by hand. */
static int read_vip_role(appr_app *app, char *err, size_t errlen)
{
    const abi_fn *fn = abi_contract_fn(app->abi, "VIP_APPROVER_ROLE");
    if (!fn)
        return util_err(err, errlen, "vault ABI lacks VIP_APPROVER_ROLE");
    char data[HEX_STRLEN(ABI_SELECTOR_LEN)];
    hex_encode(fn->selector, ABI_SELECTOR_LEN, 1, data, sizeof data);
    for (int attempt = 0; attempt < 20; attempt++) {
        uint8_t *res = NULL;
        size_t len = 0;
        rpc_error e;
        rpc_error_init(&e);
        if (rpc_eth_call(app->rpc, app->vault, data, RPC_BLOCK_LATEST, &res, &len, &e) == 0) {
            int ok = len == 32;
            if (ok)
                memcpy(app->vip_role, res, 32);
            free(res);
            return ok ? 0 : util_err(err, errlen, "VIP_APPROVER_ROLE: bad answer");
        }
        util_err(err, errlen, "VIP_APPROVER_ROLE: %s", e.message);
        rpc_error_clear(&e);
        util_sleep_ms(500);
    }
    return -1;
}

int main(void)
{
    char err[CFG_ERRLEN];
    daemon_state d = {0};
    d.s = svc_new("approval", 8082, VARS, CFG_COUNT(VARS), err, sizeof err);
    if (!d.s) {
        fprintf(stderr, "paimon-approval: %s\n", err);
        return 2;
    }
    int rc = 1;
    rpc_client *rpc = NULL;
    abi_contract *abi = NULL;
    signer *sg = NULL;
    pthread_t ob_thread;
    int ob_started = 0;

    if (cfg_address(vault_addr, devchain_json, "contracts.vault", d.app.vault, sizeof d.app.vault,
                    err, sizeof err) != 0) {
        log_error("PAIMON_VAULT_ADDRESS (or PAIMON_DEVCHAIN_JSON) must give the vault address",
                  "error", err);
        goto out;
    }
    d.app.chain_id = (uint64_t)chain_id;
    d.app.db = svc_db(d.s);

    rpc_config rcfg = {
        .urls = (const char *const *)rpc_urls.items, .nurls = rpc_urls.n, .name = "approval"};
    if (!(rpc = rpc_client_new(&rcfg, err, sizeof err))) {
        log_error("rpc client", "error", err);
        goto out;
    }
    d.app.rpc = rpc;
    if (!(abi = abi_contract_load_in(abi_dir, "PaimonVault", err, sizeof err))) {
        log_error("vault ABI", "error", err);
        goto out;
    }
    d.app.abi = abi;
    if (signer_open(dev_key, 0, &sg, err, sizeof err) < 0) {
        log_error("signer", "error", err);
        goto out;
    }
    hex_encode(signer_address(sg), 20, 1, d.app.operator, sizeof d.app.operator);
    if (read_vip_role(&d.app, err, sizeof err) != 0) {
        log_error("cannot read the approver role from the vault", "error", err);
        goto out;
    }
    outbox_cfg ocfg = {.schema = APPR_SCHEMA,
                       .db = d.app.db,
                       .rpc = rpc,
                       .signer = sg,
                       .redis_url = svc_cfg(d.s)->redis_url,
                       .chain_id = d.app.chain_id,
                       .abi_dir = abi_dir,
                       .source = APPR_SOURCE,
                       .confirmations = (unsigned)confirmations};
    if (!(d.ob = outbox_new(&ocfg, err, sizeof err))) {
        log_error("outbox", "error", err);
        goto out;
    }
    if (svc_consume(d.s, "chain.events", book_chain_event, NULL, &d.app, err, sizeof err) != 0 ||
        svc_consume(d.s, "approval.requests", book_request, NULL, &d.app, err, sizeof err) != 0 ||
        api_register(svc_http(d.s), &d.app) != 0 ||
        sched_every(svc_sched(d.s), "approval.sla", sla_every, job_sla, &d, err, sizeof err) != 0 ||
        sched_every(svc_sched(d.s), "approval.settle", settle_every, job_settle, &d, err,
                    sizeof err) != 0 ||
        sched_every(svc_sched(d.s), "approval.forecast", forecast_every, job_forecast, &d, err,
                    sizeof err) != 0) {
        log_error("start-up", "error", err);
        goto out;
    }
    d.flush_ev = event_new(svc_base(d.s), -1, EV_PERSIST, on_flush, &d);
    struct timeval tv = {0, 300000};
    event_add(d.flush_ev, &tv);
    if (pthread_create(&ob_thread, NULL, outbox_main, &d) != 0) {
        log_error("cannot start the outbox thread");
        goto out;
    }
    ob_started = 1;
    log_info("approval ready", "vault", d.app.vault, "operator", d.app.operator);
    rc = svc_run(d.s);
out:
    atomic_store(&d.stop, 1);
    if (ob_started)
        pthread_join(ob_thread, NULL);
    if (d.flush_ev)
        event_free(d.flush_ev);
    outbox_free(d.ob);
    signer_free(sg);
    abi_contract_free(abi);
    rpc_client_free(rpc);
    svc_free(d.s);
    return rc;
}
