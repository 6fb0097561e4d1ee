/* vault: what rebalance reads from and simulates against the PaimonVault — holdings, prices,
 * asset configuration and liability at one pinned block (batched eth_call), leg calldata
 * (purchaseAsset / redeemAsset with min-out guards, encoded from the ABI), and simulation of
 * a whole plan at that block from the rebalancer's address.
 *
 * Simulation runs the legs in order with eth_simulateV1 so a buy sees the USDT the sells
 * before it freed; on a node without that method every leg is simulated with its own
 * eth_call at the pinned block, and a buy that only reverts for lack of L1 the earlier sells
 * provide is marked deferred (it is simulated again right before it is sent).
 *
 * Memory: vault_state owns its assets array (vault_state_free). Calldata buffers are owned
 * by the caller (free). */
#ifndef REBALANCE_VAULT_H
#define REBALANCE_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "app.h"
#include "money.h"
#include "planner.h"

typedef struct vault_asset {
    char token[43];
    char symbol[33];
    char feed[43];
    int tier;
    uint32_t target_bps, min_bps, max_bps;
    money_u256 balance;
    money_u256 price; /* 0 when the feed answers <= 0 */
    unsigned decimals, price_decimals;
    uint64_t price_updated_at;
} vault_asset;

typedef struct vault_state {
    uint64_t block;
    uint64_t block_time;
    money_u256 l1;
    money_u256 liability; /* pendingRedemptionLiability: net USDT owed to open requests */
    int paused, emergency;
    vault_asset *assets;
    size_t n;
} vault_state;

/* Reads the vault at `block` (RPC_BLOCK_LATEST pins the current head first). */
int vault_read(rb_app *app, int64_t block, vault_state *out, char *err, size_t errlen);
void vault_state_free(vault_state *s);
/* JSON form for rebalance_history.before_state / after_state and the API (owned). */
cJSON *vault_state_json(const vault_state *s);

/* Calldata of one leg (owned *data). */
int vault_leg_calldata(const rb_app *app, const char *token, planner_side side,
                       const money_u256 *amount_in, const money_u256 *min_out, uint8_t **data,
                       size_t *len, char *err, size_t errlen);

typedef enum { VAULT_SIM_OK = 0, VAULT_SIM_REVERT = 1, VAULT_SIM_DEFERRED = 2 } vault_sim_status;

typedef struct vault_call {
    const uint8_t *data; /* borrowed calldata */
    size_t len;
    planner_side side;
} vault_call;

typedef struct vault_sim {
    vault_sim_status status;
    money_u256 out;   /* decoded return (amountOut / usdtOut) when OK */
    char reason[300]; /* decoded revert when REVERT */
} vault_sim;

/* Simulates calls in order at `block` from the rebalancer. res[i] for each call; returns the
 * index of the first reverting call, n when none reverted, -1 when the node could not be asked
 * (err says why). *method gets "eth_simulateV1" or "eth_call". */
long vault_simulate(rb_app *app, uint64_t block, const vault_call *calls, size_t n, vault_sim *res,
                    const char **method, char *err, size_t errlen);

#endif
