/* app: what every rebalance module shares — the handles main.c opens (or a test builds), the
 * vault identity and the policy numbers. One rb_app lives for the daemon's lifetime; every
 * pointer in it is borrowed, never freed by the modules.
 *
 * Threads: bus consumer threads, the HTTP / scheduler loop and the executor thread all read
 * it; nothing in it changes after start-up (the rpc client and db pool are thread-safe). */
#ifndef REBALANCE_APP_H
#define REBALANCE_APP_H

#include <stdint.h>

#include "abi.h"
#include "db.h"
#include "money.h"
#include "rpc.h"

#define RB_SCHEMA "rebalance"
#define RB_SOURCE "rebalance"

typedef struct rb_app {
    db_pool *db;
    rpc_client *rpc;
    const abi_contract *vault_abi; /* PaimonVault.json */
    const abi_contract *token_abi; /* RWAToken.json (ERC-20 decimals / symbol) */
    const char *redis_url;
    uint64_t chain_id;
    char vault[43];      /* lowercase 0x-hex */
    char rebalancer[43]; /* the outbox signer (REBALANCER_ROLE), lowercase */
    /* policy (ARCHITECTURE §5; every number is configuration) */
    money_u256 approval_threshold; /* plans trading more need an approval ticket (50K) */
    money_u256 large_deposit;      /* a deposit above this triggers a plan */
    money_u256 default_min_trade;  /* for assets first seen on chain */
    uint32_t default_slippage_bps;
    uint32_t dev_bps;   /* deviation trigger (500 = 5 pp) */
    uint32_t l1_lo_bps; /* L1 band trigger (800 / 1500) */
    uint32_t l1_hi_bps;
    uint32_t l1_target_bps; /* 0 = 10000 - sum of asset targets, clamped into the band */
    uint32_t band_bps;      /* planner tolerance */
    int64_t lock_ttl_ms;    /* executor lease */
} rb_app;

#endif
