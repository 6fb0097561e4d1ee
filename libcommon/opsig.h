/* opsig: the EIP-712 "Operation" signature every sensitive operation carries (rebalance
 * trigger, asset / threshold / policy changes, the gateway's global pause and resume),
 * verified by the service that owns the operation. One mechanism for every service:
 *
 * Request body: the operation's own fields plus
 *   "nonce":     decimal uint256 string, never reused by the same wallet in one service
 *   "deadline":  unix seconds (decimal string), in the future and at most
 *                OPSIG_MAX_AHEAD_S ahead
 *   "signature": "0x" + 130 hex (r || s || v, v 0/1/27/28)
 *
 * Typed data signed (domain exactly as the Approval typed data, see eip712.h):
 *   domain {name: "PaimonPrimeFund", version: "1", chainId, verifyingContract: vault}
 *   Operation(string action,string target,bytes32 paramsHash,uint256 nonce,uint256 deadline)
 * action names the operation ("rebalance.trigger", "rebalance.asset.update",
 * "risk.threshold.update", "approval.policies.update", "gateway.pause", "gateway.resume");
 * target is the path parameter it applies to (asset token lowercase 0x-hex, metric name)
 * or "" when there is none.
 *
 * paramsHash = keccak256(UTF-8 bytes of canonical JSON of the body without the keys
 * "nonce", "deadline" and "signature"; a missing body is {}). Canonical JSON is what
 * JavaScript's JSON.stringify prints for the value after sorting every object's keys
 * with the default Array.prototype.sort (UTF-16 code unit order):
 *   - no whitespace anywhere; objects {"k":v,...} keys sorted by UTF-16 code units,
 *     duplicate keys refused; arrays keep their order;
 *   - strings: '"' -> \", '\' -> \\, U+0008 \b, U+000C \f, U+000A \n, U+000D \r,
 *     U+0009 \t, other U+0000..U+001F -> \u00xx (lowercase hex); every other character
 *     as its raw UTF-8 bytes (no \u escapes, '/' not escaped); invalid UTF-8 refused;
 *     U+0000 inside a string is not supported (the parser ends the string there, so
 *     such a body never verifies);
 *   - true, false, null as such;
 *   - numbers as JSON.stringify prints them: integers below 1e21 in full without
 *     exponent or ".0", -0 as 0, other numbers as the shortest decimal that reads back
 *     as the same double; a number JSON.stringify would print with an exponent (below
 *     1e-6 or from 1e21) is refused: send such values as strings.
 *   A client reproduces it with
 *     const canon = v => Array.isArray(v) ? v.map(canon) : v && typeof v === 'object'
 *       ? Object.fromEntries(Object.keys(v).sort().map(k => [k, canon(v[k])])) : v;
 *     keccak256(toUtf8Bytes(JSON.stringify(canon(params))))
 *
 * Checks, in this order, before anything is written: shape (400), deadline not past
 * and not too far ahead (401 / 400), signature recovers to the wallet the gateway
 * forwarded in X-Paimon-Wallet (401; no wallet linked: 401), the on-chain role via
 * eth_call hasRole on the vault (403; chain unreachable 503). Then, inside the SAME
 * transaction as the operation's effect, opsig_claim inserts (wallet, nonce) into
 * <schema>.operation_nonces: a replay finds the row and is refused (401) with nothing
 * written; an operation that fails rolls the nonce back with it, so the client may
 * retry the same signature until its deadline (the signature only ever authorises that
 * one operation with those exact parameters).
 *
 * Return values: 0 on success, else the HTTP status to answer (400, 401, 403, 503),
 * with a client-safe reason in msg. Memory: inputs are borrowed; returned strings and
 * cJSON trees are owned by the caller. */
#ifndef PAIMON_OPSIG_H
#define PAIMON_OPSIG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "abi.h"
#include "db.h"
#include "money.h"
#include "rpc.h"

#define OPSIG_MAX_AHEAD_S 3600 /* how far ahead a deadline may be */
#define OPSIG_TEXT_MAX    256  /* action / target bytes */
#define OPSIG_MAX_DEPTH   32   /* JSON nesting accepted by the canonical form */

/* Canonical JSON of v (see above), owned; NULL with err when v cannot be canonicalised. */
char *opsig_canonical_json(const cJSON *v, char *err, size_t errlen);
/* keccak256 of the canonical body without nonce / deadline / signature (body NULL = {}). */
int opsig_params_hash(const cJSON *body, uint8_t out[32], char *err, size_t errlen);
/* The Operation typed data (owned), in the standard JSON form eip712_* and wallets take. */
cJSON *opsig_typed_new(uint64_t chain_id, const uint8_t vault[20], const char *action,
                       const char *target, const uint8_t params_hash[32], const money_u256 *nonce,
                       const money_u256 *deadline, char *err, size_t errlen);

typedef struct opsig_req {
    const char *action, *target; /* target NULL = "" */
    const cJSON *body;           /* the request body (NULL = none) */
    const char *wallet;          /* X-Paimon-Wallet */
    uint64_t chain_id;
    const char *vault; /* 0x-hex */
    int64_t now_ms;
    /* Role check: the signer must hold at least one of roles (NULL-terminated names such
     * as "ADMIN_ROLE", hashed keccak256(name) as the vault defines them) on the vault,
     * asked through rpc with vault_abi's hasRole. roles NULL skips the check (the
     * gateway, which has no chain access). */
    const char *const *roles;
    rpc_client *rpc;
    const abi_contract *vault_abi;
} opsig_req;

/* What a verified request authorises; pass it to opsig_claim. */
typedef struct opsig_op {
    uint8_t wallet[20];
    char wallet_hex[43];       /* lowercase 0x-hex */
    char nonce[MONEY_DEC_MAX]; /* canonical decimal */
    char action[OPSIG_TEXT_MAX + 1];
} opsig_op;

/* Every check but the nonce (see above). 0 or 400/401/403/503. */
int opsig_verify(const opsig_req *req, opsig_op *op, char *msg, size_t msglen);
/* The error envelope code for a status opsig_verify / opsig_claim returned:
 * 400 "invalid_request", 401 "invalid_signature", 403 "forbidden", else "unavailable". */
const char *opsig_code(int status);
/* 1 when wallet holds role_name on the vault, 0 when not, -1 when the chain could not
 * be asked. */
int opsig_has_role(rpc_client *rpc, const abi_contract *vault_abi, const char *vault,
                   const char *role_name, const uint8_t wallet[20], char *err, size_t errlen);
/* The same for a role given by its bytes32 id (e.g. as read from the vault). */
int opsig_has_role_id(rpc_client *rpc, const abi_contract *vault_abi, const char *vault,
                      const uint8_t role[32], const uint8_t wallet[20], char *err, size_t errlen);
/* Records op's nonce in <schema>.operation_nonces on tx (the operation's transaction).
 * 0, 401 when this wallet already used the nonce, 503 on a database error. schema is
 * trusted (a service's own, [a-z_]) and must be the same for every call of a process:
 * the statement is prepared once per connection under one name. */
int opsig_claim(db_conn *tx, const char *schema, const opsig_op *op, char *msg, size_t msglen);

#endif
