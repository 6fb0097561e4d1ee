/* app: what every risk module shares — the handles main.c (or a test) opens and the
 * chain identity of the vault. One rk_app lives for the daemon's lifetime; every pointer
 * in it is borrowed, never freed by the modules. Nothing in it changes after start-up
 * except `dirty`, which consumer threads set to ask the loop for an early cycle. */
#ifndef RISK_APP_H
#define RISK_APP_H

#include <stdatomic.h>
#include <stdint.h>

#include "abi.h"
#include "db.h"
#include "rpc.h"

#define RK_SCHEMA    "risk"
#define RK_SOURCE    "risk"
#define RK_CACHE_KEY "paimon:risk:current"

typedef struct rk_app {
    db_pool *db;
    rpc_client *rpc;
    const abi_contract *vault_abi;  /* PaimonVault.json */
    const abi_contract *market_abi; /* MockMarket.json: the second price source (may be NULL) */
    uint64_t chain_id;
    char vault[43];   /* lowercase 0x-hex */
    char market[43];  /* "" = no second price source configured */
    char signer[43];  /* risk's transaction key (emergency.h), lowercase; "" = none */
    atomic_int dirty; /* a relevant chain event arrived since the last cycle */
} rk_app;

#endif
