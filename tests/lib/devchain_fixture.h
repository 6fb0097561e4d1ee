/* devchain_fixture (prefix dc_): what integration tests need from the anvil devchain
 * (deploy/devchain/devchain.sh) — start or open it, read devchain.json, JSON-RPC
 * calls, mining, time travel, snapshot/revert, nonces and balances, cast (the
 * independent reference client) to send and read transactions, the vault's real logs
 * shaped as the listener publishes them, and EIP-712 approval signatures.
 *
 * Typical use (one devchain per test binary, shared by its tests):
 *
 *     static dc_chain dc;
 *     group_setup:    if (dc_open(&dc, NULL, "test_x") != 0) return -1;
 *     setup:          dc_snapshot(&dc, snap);
 *     test:           dc_cast_send(&dc, dc_private_key(&dc, "investors", 0),
 *                                  dc_contract(&dc, "vault"), "requestRedeem(...)", args);
 *                     dc_mine(&dc, 1);
 *     teardown:       dc_revert(&dc, snap);   (never fails the test: safe in teardown)
 *     group_teardown: dc_close(&dc);
 *
 * Helpers whose name does not say otherwise fail the running cmocka test (fail_msg)
 * on any error, so call them from tests, setup and teardown only; dc_start, dc_open,
 * dc_revert and dc_account return 0 / -1 instead (usable from group setup).
 *
 * devchain.json layout the accessors read: {"rpcUrl", "chainId", "contracts": {name:
 * "0x..", "assets": [...]}, "accounts": {role: {"address", "privateKey"} or [{...}, ...]}}
 * with roles such as admin, operator, approvers, investors, spare.
 *
 * Memory: a dc_chain is a plain value the caller owns (usually a static); dc_close frees
 * what dc_open / dc_start allocated (and stops a devchain dc_start started). Strings
 * returned by the accessors are borrowed from the parsed devchain.json and valid until
 * dc_close. cJSON results of dc_rpc are owned by the caller; params passed in are taken. */
#ifndef PAIMON_TEST_DEVCHAIN_FIXTURE_H
#define PAIMON_TEST_DEVCHAIN_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "abi.h"
#include "envelope.h"
#include "money.h"
#include "rpc.h"

#define DC_SNAP_MAX 80 /* bytes of an evm_snapshot id, NUL included */
#define DC_ADDR_LEN 43 /* "0x" + 40 hex + NUL */
#define DC_SIG_HEX  140

typedef struct dc_chain {
    cJSON *json; /* devchain.json */
    char rpc_url[128];
    uint64_t chain_id;
    rpc_client *rpc;
    char run_dir[512]; /* where dc_start started the devchain ("" when opened) */
} dc_chain;

/* Starts a devchain of its own with devchain.sh (anvil on 127.0.0.1:port, contracts
 * deployed and seeded, devchain.json written to run_dir) and opens it; dc_close stops
 * it. For tests that must not share the harness's devchain. name labels RPC logs. */
int dc_start(dc_chain *c, const char *run_dir, int port, const char *name);
/* The devchain's address book parsed (json_path NULL: $PAIMON_DEVCHAIN_JSON); the
 * caller frees it; NULL when missing or not JSON. */
cJSON *dc_json_load(const char *json_path);
/* Opens the devchain described by json_path (NULL: $PAIMON_DEVCHAIN_JSON, which
 * tests/run.sh sets). */
int dc_open(dc_chain *c, const char *json_path, const char *name);
void dc_close(dc_chain *c);

/* contracts.<name> ("vault", "usdt", "market"), NULL when absent. */
const char *dc_contract(const dc_chain *c, const char *name);
/* accounts.<role> when index < 0 (an object), else accounts.<role>[index]; NULL when
 * absent. The key is the 0x-prefixed hex private key, as cast takes it. */
const char *dc_address(const dc_chain *c, const char *role, int index);
const char *dc_private_key(const dc_chain *c, const char *role, int index);
/* Both at once, the key as 32 bytes (key may be NULL); 0 / -1. */
int dc_account(const dc_chain *c, const char *role, int index, char addr[DC_ADDR_LEN],
               uint8_t key[32]);

/* One JSON-RPC call (params taken; NULL = []); the result is the caller's. */
cJSON *dc_rpc(dc_chain *c, const char *method, cJSON *params);
void dc_rpc_void(dc_chain *c, const char *method, cJSON *params);
void dc_mine(dc_chain *c, int blocks);
/* evm_increaseTime by seconds, then mines one block so the new time is visible. */
void dc_increase_time(dc_chain *c, int64_t seconds);
void dc_set_automine(dc_chain *c, int on);
void dc_snapshot(dc_chain *c, char snap[DC_SNAP_MAX]);
/* evm_revert to snap (and automine back on, in case the test switched it off);
 * 0 / -1, never fails the test. */
int dc_revert(dc_chain *c, const char *snap);
uint64_t dc_nonce(dc_chain *c, const char *addr);     /* at latest */
money_u256 dc_balance(dc_chain *c, const char *addr); /* wei, at latest */
uint64_t dc_latest_time(dc_chain *c);                 /* timestamp of the latest block */

/* cast send --private-key key <to> '<sig>' <args> (args already shell-quoted). */
void dc_cast_send(const dc_chain *c, const char *key, const char *to, const char *sig,
                  const char *args);
/* cast call <to> '<sig>' <args>; its whole answer in out. */
void dc_cast_call(const dc_chain *c, const char *to, const char *sig, const char *args, char *out,
                  size_t outlen);
/* cast call of a view returning one uint (cast prints "123 [1.23e2]": the first token). */
money_u256 dc_cast_u256(const dc_chain *c, const char *to, const char *sig, const char *args);
unsigned long long dc_cast_uint(const dc_chain *c, const char *to, const char *sig,
                                const char *args);
/* Field `field` (0-based) of a view returning one tuple, as a uint: cast prints
 * "(1, 0xabc.., 2, ...)"; e.g. getRedemption(id).status is field 4. */
unsigned long long dc_cast_tuple_uint(const dc_chain *c, const char *to, const char *sig,
                                      const char *args, int field);

/* getRedemption(id).status of the devchain's vault (contracts.vault), read with cast:
 * 0 none, 1 pending, 2 approved, ... as PaimonVault numbers them. */
int dc_redemption_status(const dc_chain *c, const char *request_id);
/* Mines a block every 200 ms until the request's status is `want` or timeout_ms has
 * passed (for a daemon's outbox to land its transaction); the last status read. */
int dc_wait_redemption_status(dc_chain *c, const char *request_id, int want, int64_t timeout_ms);

/* The latest log of `event` emitted by `address` whose decoded args.<arg> is `value`,
 * shaped as the listener publishes it on chain.events: type chain.<event in
 * snake_case> (RedemptionRequested -> chain.redemption_requested), id
 * "<chain>:<tx hash>:<log index>", source "listener". abi should decode with
 * ABI_DECODE_LOWER_ADDR, as the listener does. Caller frees (envelope_free). */
envelope *dc_log_envelope(dc_chain *c, const abi_contract *abi, const char *address,
                          const char *event, const char *arg, const char *value);

/* The EIP-712 approval of (ticket, decision, nonce, deadline) for the vault, signed
 * with key as a wallet would: 0x-prefixed hex of r || s || v in sig_hex. */
void dc_sign_approval(const dc_chain *c, const uint8_t key[32], const char *vault,
                      const char *ticket, const char *decision, const char *nonce,
                      uint64_t deadline, char sig_hex[DC_SIG_HEX]);

#endif
