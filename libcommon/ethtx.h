/* ethtx: Ethereum transactions — legacy EIP-155 and EIP-1559 (type 0x02) —
 * signing-hash computation, signing into raw bytes ready for
 * eth_sendRawTransaction, and strict decoding of signed raw transactions with
 * sender recovery.
 *
 * Memory: an ethtx borrows its `data`; ethtx_sign returns a malloc'd raw tx the
 * caller frees; ethtx_decode points the decoded tx's data into the caller's raw
 * input (valid as long as that input). EIP-1559 transactions are built with an
 * empty access list; decoding accepts only an empty access list too, since
 * nothing here would honour one. */
#ifndef PAIMON_ETHTX_H
#define PAIMON_ETHTX_H

#include <stddef.h>
#include <stdint.h>

#include "money.h"

typedef enum { ETHTX_LEGACY = 0, ETHTX_EIP1559 = 2 } ethtx_type;

typedef struct ethtx {
    ethtx_type type;
    uint64_t chain_id, nonce, gas_limit;
    money_u256 gas_price;                 /* legacy only */
    money_u256 max_fee, max_priority_fee; /* EIP-1559 only */
    int has_to;
    uint8_t to[20]; /* has_to = 0: contract creation */
    money_u256 value;
    const uint8_t *data; /* borrowed */
    size_t data_len;
} ethtx;

/* Zeroes every field (type ETHTX_LEGACY, no data, contract creation). */
void ethtx_init(ethtx *tx);

/* Signs with a 32-byte secp256k1 key: raw signed tx bytes (malloc'd, caller
 * frees) and tx hash (keccak256 of the raw bytes). hash may be NULL. */
int ethtx_sign(const ethtx *tx, const uint8_t key[32], uint8_t **raw, size_t *raw_len,
               uint8_t hash[32], char *err, size_t errlen);
/* Same, raw tx as "0x" hex (malloc'd, caller frees) and hash as "0x" hex. */
int ethtx_sign_hex(const ethtx *tx, const uint8_t key[32], char **raw_hex, char hash_hex[67],
                   char *err, size_t errlen);

/* Signing hash (what gets signed) of an unsigned tx. chain_id must be >= 1
 * (pre-EIP-155 replayable transactions are never produced). */
int ethtx_signing_hash(const ethtx *tx, uint8_t out[32], char *err, size_t errlen);

/* Parses a signed raw tx (legacy EIP-155 or type 2), recovers the sender.
 * Decoded tx's data points into raw. Strict: canonical RLP, no trailing bytes,
 * legacy v must be chain_id*2+35/36 (pre-EIP-155 v=27/28 refused), type-2
 * y_parity 0/1, r and s in range and s low (EIP-2). from / hash may be NULL. */
int ethtx_decode(const uint8_t *raw, size_t n, ethtx *out, uint8_t from[20], uint8_t hash[32],
                 char *err, size_t errlen);
/* Same from "0x" hex. *raw_out receives the decoded bytes (malloc'd, caller frees;
 * out->data points into it). */
int ethtx_decode_hex(const char *raw_hex, uint8_t **raw_out, ethtx *out, uint8_t from[20],
                     uint8_t hash[32], char *err, size_t errlen);

/* Transaction hash as "0x" + 64 lowercase hex digits. */
void ethtx_hash_hex(const uint8_t hash[32], char out[67]);

#endif
