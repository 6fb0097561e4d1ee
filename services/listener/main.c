/* paimon-listener: turns chain logs into durable messages on chain.events
 * (ARCHITECTURE §3.1, §3.3, §3.5; issue 4).
 *
 *   config (svc + the variables below) -> ABIs and priority rules -> the chain worker
 *   (lease, backfill + follow, batch commits, publish after commit, reorgs; chain.h)
 *   -> internal HTTP (health, metrics, checkpoints, events, gaps; api.h)
 *   -> scheduled jobs once per cluster (partitions ahead, gap check) -> serve until
 *   SIGTERM -> stop the worker after its batch in hand -> exit. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "api.h"
#include "chain.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "route.h"
#include "store.h"
#include "svc.h"
#include "util.h"

#define MAX_CONTRACTS 32

static int64_t chain_id_cfg, start_block, confirmations, window, range_initial, range_min,
    range_max, target_logs, lease_ttl_ms, poll_ms, rpc_timeout_ms, gap_every_ms;
static cfg_list rpc_urls;
static char *ws_url, *contracts_spec, *devchain_json, *abi_dir, *rules_spec;

static const cfg_var vars[] = {
    {"PAIMON_CHAIN_ID", CFG_INT, "31337", &chain_id_cfg, 1, INT64_MAX, NULL, 0,
     "chain id (in every event id); devchain.json's wins when contracts come from it"},
    {"PAIMON_RPC_URLS", CFG_LIST, "http://127.0.0.1:8545", &rpc_urls, 1, 16, NULL, 0,
     "JSON-RPC endpoints in priority order (failover)"},
    {"PAIMON_WS_URL", CFG_STR, "ws://127.0.0.1:8545", &ws_url, 0, 0, NULL, 0,
     "WebSocket endpoint for newHeads; empty = polling"},
    {"PAIMON_LISTENER_CONTRACTS", CFG_STR, "", &contracts_spec, 0, 0, NULL, 0,
     "0x<address>=<ABI name or file>,... (empty: from PAIMON_DEVCHAIN_JSON)"},
    {"PAIMON_DEVCHAIN_JSON", CFG_STR, "", &devchain_json, 0, 0, NULL, 0,
     "devchain.json to take the vault and USDT from when no contracts are given"},
    {"PAIMON_LISTENER_ABI_DIR", CFG_STR, "schemas/abi", &abi_dir, 0, 0, NULL, 0,
     "where ABI names are looked up"},
    {"PAIMON_LISTENER_START_BLOCK", CFG_INT, "0", &start_block, 0, INT64_MAX / 2, NULL, 0,
     "first block to read"},
    {"PAIMON_LISTENER_CONFIRMATIONS", CFG_INT, "12", &confirmations, 0, 1000, NULL, 0,
     "blocks behind the head before a block is read"},
    {"PAIMON_LISTENER_REORG_WINDOW", CFG_INT, "64", &window, 64, 100000, NULL, 0,
     "recent block hashes kept to detect and undo reorgs"},
    {"PAIMON_LISTENER_PRIORITY_RULES", CFG_STR, ROUTE_DEFAULT_RULES, &rules_spec, 0, 0, NULL, 0,
     "Event[?arg OP value&...]=critical|high|normal;..."},
    {"PAIMON_LISTENER_RANGE_INITIAL", CFG_INT, "100", &range_initial, 1, 1000000, NULL, 0,
     "first eth_getLogs span (blocks; grows x2 per sparse answer: a dense first answer over the "
     "size cap costs the node the whole range for nothing)"},
    {"PAIMON_LISTENER_RANGE_MIN", CFG_INT, "1", &range_min, 1, 1000000, NULL, 0, "smallest span"},
    {"PAIMON_LISTENER_RANGE_MAX", CFG_INT, "5000", &range_max, 1, 1000000, NULL, 0,
     "largest span (providers cap 2K-10K)"},
    {"PAIMON_LISTENER_TARGET_LOGS", CFG_INT, "5000", &target_logs, 1, 100000, NULL, 0,
     "logs per request aimed at (the span adapts)"},
    {"PAIMON_LISTENER_LEASE_TTL", CFG_DURATION_MS, "10s", &lease_ttl_ms, 500, 300000, NULL, 0,
     "chain lease TTL: a standby takes over within it"},
    {"PAIMON_LISTENER_POLL", CFG_DURATION_MS, "1s", &poll_ms, 10, 60000, NULL, 0,
     "head polling interval (fallback when WebSocket is down)"},
    {"PAIMON_RPC_TIMEOUT", CFG_DURATION_MS, "5s", &rpc_timeout_ms, 100, 60000, NULL, 0,
     "timeout of one JSON-RPC request"},
    {"PAIMON_LISTENER_GAP_CHECK", CFG_DURATION_MS, "60s", &gap_every_ms, 1000, 86400000, NULL, 0,
     "how often the gap checker runs"},
};

typedef struct app {
    svc *s;
    chain *chain;
    uint64_t chain_id;
    api_ctx api;
    metrics_gauge *g_gaps;
} app;

static int partitions_job(void *ud, char *err, size_t errlen)
{
    app *a = ud;
    db_conn *c = db_acquire(svc_db(a->s), 5000, err, errlen);
    if (!c)
        return -1;
    int made = store_ensure_partitions(c, 3, err, errlen);
    db_release(svc_db(a->s), c);
    if (made > 0)
        log_info("chain_events partitions created", "#count", LOG_I64(made));
    return made < 0 ? -1 : 0;
}

static void gap_log(void *ud, int64_t from, int64_t to)
{
    (void)ud;
    log_error("gap: blocks never read below the checkpoint", "#from", LOG_I64(from), "#to",
              LOG_I64(to));
}

static int gap_job(void *ud, char *err, size_t errlen)
{
    app *a = ud;
    chain_status st;
    chain_get_status(a->chain, &st);
    db_conn *c = db_acquire(svc_db(a->s), 5000, err, errlen);
    if (!c)
        return -1;
    int64_t missing =
        store_gaps(c, a->chain_id, start_block, st.checkpoint, gap_log, NULL, err, errlen);
    db_release(svc_db(a->s), c);
    if (missing < 0)
        return -1;
    metrics_gauge_set(a->g_gaps, (double)missing);
    return 0;
}

static int chain_check(void *ud, char *err, size_t errlen)
{
    chain_status st;
    chain_get_status(ud, &st);
    if (st.halted)
        return util_err(err, errlen, "halted after a reorg deeper than the window");
    return 0;
}

/* Shutdown step: the worker finishes its batch (committed and published, or left for
 * the next leader) inside the 10 s deadline. */
static void stop_chain(void *ud)
{
    chain_stop(ud);
}

int main(void)
{
    char err[CFG_ERRLEN];
    svc *s = svc_new("listener", 8081, vars, CFG_COUNT(vars), err, sizeof err);
    if (!s) {
        fprintf(stderr, "paimon-listener: %s\n", err);
        return 2;
    }
    int rc = 1;
    app a = {.s = s, .chain_id = (uint64_t)chain_id_cfg};
    route_table routes = {0};
    abi_contract *abis[MAX_CONTRACTS] = {0};
    chain_contract contracts[MAX_CONTRACTS];
    size_t ncontracts = 0;
    char *spec = NULL;

    if (contracts_spec[0]) {
        spec = util_strdup(contracts_spec);
    } else if (devchain_json[0]) {
        if (!(spec = conf_devchain_contracts(devchain_json, &a.chain_id, err, sizeof err)))
            goto config_error;
    } else {
        util_strlcpy(err, "PAIMON_LISTENER_CONTRACTS (or PAIMON_DEVCHAIN_JSON) is required",
                     sizeof err);
        goto config_error;
    }
    char *save = NULL;
    for (char *item = strtok_r(spec, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char path[512];
        while (*item == ' ')
            item++;
        if (ncontracts == MAX_CONTRACTS) {
            util_strlcpy(err, "too many contracts", sizeof err);
            goto config_error;
        }
        chain_contract *ct = &contracts[ncontracts];
        if (conf_contract_item(item, abi_dir, ct->address, path, sizeof path, err, sizeof err))
            goto config_error;
        if (!(abis[ncontracts] = abi_contract_load(path, err, sizeof err)))
            goto config_error;
        /* Event args carry addresses in lowercase: what consumers compare and store. */
        abis[ncontracts]->log_flags = ABI_DECODE_LOWER_ADDR;
        ct->abi = abis[ncontracts++];
    }
    if (ncontracts == 0) {
        util_strlcpy(err, "no contracts configured", sizeof err);
        goto config_error;
    }
    if (route_parse(rules_spec, &routes, err, sizeof err) != 0)
        goto config_error;
    if (range_min > range_max || range_initial < range_min || range_initial > range_max) {
        util_strlcpy(err, "need RANGE_MIN <= RANGE_INITIAL <= RANGE_MAX", sizeof err);
        goto config_error;
    }

    chain_cfg cc = {.chain_id = a.chain_id,
                    .rpc_urls = (const char *const *)rpc_urls.items,
                    .nurls = rpc_urls.n,
                    .ws_url = ws_url,
                    .contracts = contracts,
                    .ncontracts = ncontracts,
                    .start_block = start_block,
                    .confirmations = (uint64_t)confirmations,
                    .window = (uint64_t)window,
                    .range_initial = (uint64_t)range_initial,
                    .range_min = (uint64_t)range_min,
                    .range_max = (uint64_t)range_max,
                    .target_logs = (size_t)target_logs,
                    .lease_ttl_ms = lease_ttl_ms,
                    .poll_ms = poll_ms,
                    .rpc_timeout_ms = rpc_timeout_ms,
                    .routes = &routes,
                    .redis_url = svc_cfg(s)->redis_url,
                    .db = svc_db(s)};
    if (!(a.chain = chain_new(&cc, err, sizeof err)))
        goto config_error;
    a.api = (api_ctx){.db = svc_db(s), .chains = &a.chain, .nchains = 1};
    api_register(svc_http(s), &a.api);
    http_add_check(svc_http(s), "chain", chain_check, a.chain);
    a.g_gaps = metrics_gauge_get(metrics_global(), "listener_gap_blocks",
                                 "Blocks below the checkpoint never read (should be 0)", NULL);
    if (partitions_job(&a, err, sizeof err) != 0)
        log_warn("cannot create partitions now (the job retries)", "error", err);
    if (sched_every(svc_sched(s), "listener.partitions", 3600 * 1000, partitions_job, &a, err,
                    sizeof err) != 0 ||
        sched_every(svc_sched(s), "listener.gaps", gap_every_ms, gap_job, &a, err, sizeof err) !=
            0 ||
        chain_start(a.chain, err, sizeof err) != 0) {
        log_error("cannot start", "error", err);
        goto out;
    }
    char cid[24];
    snprintf(cid, sizeof cid, "%" PRIu64, a.chain_id);
    log_info("listening", "chain", cid, "#contracts", LOG_I64(ncontracts), "#start_block",
             LOG_I64(start_block), "#confirmations", LOG_I64(confirmations));
    svc_on_stop(s, stop_chain, a.chain);
    rc = svc_run(s);
    chain_stop(a.chain); /* idempotent: already stopped unless start-up failed half-way */
    goto out;

config_error:
    fprintf(stderr, "paimon-listener: %s\n", err);
    rc = 2;
out:
    chain_free(a.chain);
    for (size_t i = 0; i < ncontracts; i++)
        abi_contract_free(abis[i]);
    route_table_free(&routes);
    free(spec);
    svc_free(s);
    return rc;
}
