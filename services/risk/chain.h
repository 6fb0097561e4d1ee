/* chain: reads everything the risk metrics need from the vault in two JSON-RPC batches
 * of eth_calls pinned to one block, so every number in a cycle describes the same state:
 *   batch 1: totalAssets, totalSupply, sharePrice, l1Balance, tierValue(L2), tierValue(L3),
 *            getAssets, pendingRedemptionLiability, emergencyMode, market
 *   batch 2: per asset assetBalance, assetValue, assetPrice, getAssetConfig and, when the
 *            vault names a market, market.price (the second price source).
 * Function selectors and decoding come from the ABI files (never hand-typed).
 *
 * Memory: rk_chain is a plain struct the caller owns (no pointers inside). */
#ifndef RISK_CHAIN_H
#define RISK_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "money.h"
#include "risk/app.h"

#define RK_MAX_ASSETS 64

typedef struct rk_asset {
    char token[43]; /* lowercase */
    int tier;       /* 2 = L2, 3 = L3 */
    money_u256 balance;
    money_u256 value;     /* USDT base units, as the vault values it */
    money_u256 price;     /* oracle answer scaled to 18 decimals (0 when not positive) */
    int price_ok;         /* oracle answered a positive price */
    uint64_t updated_at;  /* oracle round time, unix seconds */
    money_u256 alt_price; /* second source scaled to 18 decimals */
    int alt_ok;           /* second source answered */
} rk_asset;

typedef struct rk_chain {
    uint64_t block;
    uint64_t block_time; /* unix seconds */
    money_u256 total_assets, total_supply, share_price, l1, l2, l3, pending_liability;
    int emergency_mode;
    size_t nassets;
    rk_asset assets[RK_MAX_ASSETS];
} rk_chain;

/* block: a number or RPC_BLOCK_LATEST (then pinned to the latest number first). */
int rk_chain_read(rk_app *app, int64_t block, rk_chain *out, char *err, size_t errlen);

/* answer (a signed decimal string) with `decimals` -> 18-decimal fixed point.
 * 0 with *ok = 1 for a positive answer, 0 with *ok = 0 for zero / negative, -1 malformed. */
int rk_scale_price(const char *answer, unsigned decimals, money_u256 *out, int *ok);

#endif
