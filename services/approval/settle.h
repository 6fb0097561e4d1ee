/* settle: settlement of approved redemptions and the settlement forecast.
 *
 * stl_settle (a once-per-cluster job): every approved redemption that is due (both the
 * policy's T+7 / T+1 due time and the vault's settleTime have passed, by chain time) is
 * settled through the outbox (settleRedemption) when L1 — the vault's USDT minus what
 * queued settlements will already take — covers it, oldest first. One that L1 cannot
 * cover waits ("waiting_liquidity"): a liquidity request goes to rebalance and a warning
 * to the notifier. A settlement transaction that failed or reverted puts the redemption
 * back in line with a fresh idempotency key.
 *
 * stl_forecast: the due net amounts of open redemptions per day over the policy horizon
 * against L1, stored in approval.settlement_forecast; when L1 will not cover a day it
 * asks rebalance for liquidity (topic rebalance.requests, type liquidity.request) and
 * raises a warning ahead of time, once per change of the shortfall.
 *
 * Chain reads (l1Balance, latest block time) happen before the database transaction. */
#ifndef APPROVAL_SETTLE_H
#define APPROVAL_SETTLE_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "money.h"

#define STL_TOPIC_LIQUIDITY "rebalance.requests"

int stl_l1_balance(const appr_app *app, money_u256 *out, char *err, size_t errlen);
/* Timestamp of the latest block, ms. */
int stl_chain_now_ms(const appr_app *app, int64_t *out, char *err, size_t errlen);

/* One settlement pass at chain time now_ms with L1 = l1. *queued / *waiting (may be
 * NULL) count what it did. */
int stl_settle(const appr_app *app, int64_t now_ms, const money_u256 *l1, int *queued, int *waiting,
               char *err, size_t errlen);

/* Recomputes the forecast at now_ms against l1. *short_day gets the index of the first
 * day short of liquidity (or the horizon when none). */
int stl_forecast(const appr_app *app, int64_t now_ms, const money_u256 *l1, int *short_day,
                 char *err, size_t errlen);

#endif
