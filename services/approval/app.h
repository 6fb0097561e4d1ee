/* app: what every approval module shares — the handles main.c opens and the chain
 * identity of the vault it watches. One appr_app lives for the daemon's lifetime; every
 * pointer in it is borrowed from main.c (or from a test), never freed by the modules.
 *
 * Threads: consumer threads (book, requests), the HTTP / scheduler loop thread and the
 * outbox thread all read it; nothing in it changes after start-up, and the rpc client
 * and db pool are thread-safe. */
#ifndef APPROVAL_APP_H
#define APPROVAL_APP_H

#include <stdint.h>

#include "abi.h"
#include "db.h"
#include "rpc.h"

#define APPR_SCHEMA "approval"
#define APPR_SOURCE "approval"

typedef struct appr_app {
    db_pool *db;
    rpc_client *rpc;         /* eth_call views (hasRole, l1Balance) and block time */
    const abi_contract *abi; /* PaimonVault.json */
    uint64_t chain_id;
    char vault[43];       /* lowercase 0x-hex */
    char operator[43];    /* the outbox signer (OPERATOR_ROLE), lowercase */
    uint8_t vip_role[32]; /* VIP_APPROVER_ROLE(), read from the vault at start-up */
} appr_app;

#endif
