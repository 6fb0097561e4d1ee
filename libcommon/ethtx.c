/* ethtx: EIP-155 / EIP-1559 transaction encoding, signing and strict decoding
 * (see ethtx.h). All RLP goes through rlp.h; signatures through secp.h. */
#include "ethtx.h"
#include "hex.h"
#include "keccak.h"
#include "rlp.h"
#include "secp.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Largest chain id whose legacy v = chain_id*2 + 36 still fits in a uint64. */
#define ETHTX_MAX_CHAIN_ID ((UINT64_MAX - 36) / 2)

void ethtx_init(ethtx *tx)
{
    memset(tx, 0, sizeof *tx);
    tx->type = ETHTX_LEGACY;
}

static int validate(const ethtx *tx, char *err, size_t errlen)
{
    if (tx->type != ETHTX_LEGACY && tx->type != ETHTX_EIP1559)
        return util_err(err, errlen, "ethtx: unsupported transaction type %d", (int)tx->type);
    /* chain id 0 would make a legacy tx replayable on every chain. */
    if (tx->chain_id == 0)
        return util_err(err, errlen, "ethtx: chain_id must be >= 1");
    if (tx->chain_id > ETHTX_MAX_CHAIN_ID)
        return util_err(err, errlen, "ethtx: chain_id too large");
    if (tx->data_len && !tx->data)
        return util_err(err, errlen, "ethtx: data_len without data");
    if (tx->type == ETHTX_EIP1559 && money_cmp(&tx->max_priority_fee, &tx->max_fee) > 0)
        return util_err(err, errlen, "ethtx: max_priority_fee above max_fee");
    return 0;
}

/* The field list shared by the signing payload and the signed tx; sig == NULL
 * writes the unsigned form (EIP-155 trailer for legacy, nothing for type 2). */
static void encode(const ethtx *tx, const uint8_t *sig, rlp_buf *b)
{
    money_u256 r, s;
    if (sig) {
        money_from_be32(&r, sig);
        money_from_be32(&s, sig + 32);
    }
    if (tx->type == ETHTX_EIP1559) {
        rlp_put_raw(b, (const uint8_t *)"\x02", 1);
        size_t m = rlp_list_begin(b);
        rlp_put_u64(b, tx->chain_id);
        rlp_put_u64(b, tx->nonce);
        rlp_put_u256(b, &tx->max_priority_fee);
        rlp_put_u256(b, &tx->max_fee);
        rlp_put_u64(b, tx->gas_limit);
        rlp_put_bytes(b, tx->to, tx->has_to ? 20 : 0);
        rlp_put_u256(b, &tx->value);
        rlp_put_bytes(b, tx->data, tx->data_len);
        size_t al = rlp_list_begin(b); /* access list: always empty */
        rlp_list_end(b, al);
        if (sig) {
            rlp_put_u64(b, sig[64]);
            rlp_put_u256(b, &r);
            rlp_put_u256(b, &s);
        }
        rlp_list_end(b, m);
        return;
    }
    size_t m = rlp_list_begin(b);
    rlp_put_u64(b, tx->nonce);
    rlp_put_u256(b, &tx->gas_price);
    rlp_put_u64(b, tx->gas_limit);
    rlp_put_bytes(b, tx->to, tx->has_to ? 20 : 0);
    rlp_put_u256(b, &tx->value);
    rlp_put_bytes(b, tx->data, tx->data_len);
    if (sig) {
        rlp_put_u64(b, tx->chain_id * 2 + 35 + sig[64]);
        rlp_put_u256(b, &r);
        rlp_put_u256(b, &s);
    } else {
        rlp_put_u64(b, tx->chain_id);
        rlp_put_u64(b, 0);
        rlp_put_u64(b, 0);
    }
    rlp_list_end(b, m);
}

int ethtx_signing_hash(const ethtx *tx, uint8_t out[32], char *err, size_t errlen)
{
    if (validate(tx, err, errlen) != 0)
        return -1;
    rlp_buf b;
    rlp_buf_init(&b);
    encode(tx, NULL, &b);
    keccak_256(b.data, b.len, out);
    rlp_buf_free(&b);
    return 0;
}

int ethtx_sign(const ethtx *tx, const uint8_t key[32], uint8_t **raw, size_t *raw_len,
               uint8_t hash[32], char *err, size_t errlen)
{
    uint8_t h[32], sig[65];
    if (ethtx_signing_hash(tx, h, err, errlen) != 0)
        return -1;
    if (secp_sign_hash(key, h, sig, err, errlen) != 0)
        return -1;
    rlp_buf b;
    rlp_buf_init(&b);
    encode(tx, sig, &b);
    if (hash)
        keccak_256(b.data, b.len, hash);
    *raw = b.data; /* ownership passes to the caller */
    *raw_len = b.len;
    return 0;
}

int ethtx_sign_hex(const ethtx *tx, const uint8_t key[32], char **raw_hex, char hash_hex[67],
                   char *err, size_t errlen)
{
    uint8_t *raw, hash[32];
    size_t n;
    if (ethtx_sign(tx, key, &raw, &n, hash, err, errlen) != 0)
        return -1;
    *raw_hex = hex_encode_new(raw, n, 1);
    free(raw);
    if (hash_hex)
        ethtx_hash_hex(hash, hash_hex);
    return 0;
}

void ethtx_hash_hex(const uint8_t hash[32], char out[67])
{
    hex_encode(hash, 32, 1, out, 67);
}

/* Next list element, which must be a string (not a nested list). */
static int next_str(rlp_iter *it, rlp_item *item, const char *what, char *err, size_t errlen)
{
    int r = rlp_iter_next(it, item, err, errlen);
    if (r < 0)
        return -1;
    if (r == 0)
        return util_err(err, errlen, "ethtx: missing field %s", what);
    if (item->is_list)
        return util_err(err, errlen, "ethtx: field %s must not be a list", what);
    return 0;
}

static int field_u64(rlp_iter *it, uint64_t *v, const char *what, char *err, size_t errlen)
{
    rlp_item item;
    char e[UTIL_ERRLEN];
    if (next_str(it, &item, what, err, errlen) != 0)
        return -1;
    if (rlp_item_u64(&item, v, e, sizeof e) != 0)
        return util_err(err, errlen, "ethtx: field %s: %s", what, e);
    return 0;
}

static int field_u256(rlp_iter *it, money_u256 *v, const char *what, char *err, size_t errlen)
{
    rlp_item item;
    char e[UTIL_ERRLEN];
    if (next_str(it, &item, what, err, errlen) != 0)
        return -1;
    if (rlp_item_u256(&item, v, e, sizeof e) != 0)
        return util_err(err, errlen, "ethtx: field %s: %s", what, e);
    return 0;
}

static int field_to(rlp_iter *it, ethtx *tx, char *err, size_t errlen)
{
    rlp_item item;
    if (next_str(it, &item, "to", err, errlen) != 0)
        return -1;
    if (item.len == 0) {
        tx->has_to = 0;
        memset(tx->to, 0, 20);
        return 0;
    }
    if (item.len != 20)
        return util_err(err, errlen, "ethtx: field to must be 0 or 20 bytes, got %zu", item.len);
    tx->has_to = 1;
    memcpy(tx->to, item.payload, 20);
    return 0;
}

static int field_data(rlp_iter *it, ethtx *tx, char *err, size_t errlen)
{
    rlp_item item;
    if (next_str(it, &item, "data", err, errlen) != 0)
        return -1;
    tx->data = item.len ? item.payload : NULL;
    tx->data_len = item.len;
    return 0;
}

static int field_sig(rlp_iter *it, uint8_t sig[65], char *err, size_t errlen)
{
    money_u256 r, s;
    if (field_u256(it, &r, "r", err, errlen) != 0 || field_u256(it, &s, "s", err, errlen) != 0)
        return -1;
    money_to_be32(&r, sig);
    money_to_be32(&s, sig + 32);
    return 0;
}

int ethtx_decode(const uint8_t *raw, size_t n, ethtx *out, uint8_t from[20], uint8_t hash[32],
                 char *err, size_t errlen)
{
    if (!raw || n == 0)
        return util_err(err, errlen, "ethtx: empty transaction");
    ethtx tx;
    ethtx_init(&tx);
    uint8_t sig[65];
    const uint8_t *body = raw;
    size_t body_len = n;
    if (raw[0] == 0x02) {
        tx.type = ETHTX_EIP1559;
        body++;
        body_len--;
    } else if (raw[0] < 0xc0) {
        /* 0x00..0x7f are EIP-2718 type bytes (0x01 access-list, 0x03 blob...). */
        return util_err(err, errlen, "ethtx: unsupported transaction type 0x%02x", raw[0]);
    }
    rlp_item list;
    rlp_iter it;
    if (rlp_decode(body, body_len, &list, err, errlen) != 0)
        return -1;
    if (!list.is_list)
        return util_err(err, errlen, "ethtx: transaction is not an RLP list");
    size_t count;
    if (rlp_list_count(&list, &count, err, errlen) != 0)
        return -1;
    size_t want = tx.type == ETHTX_EIP1559 ? 12 : 9;
    if (count != want)
        return util_err(err, errlen, "ethtx: expected %zu fields, got %zu", want, count);
    if (rlp_iter_init(&it, &list, err, errlen) != 0)
        return -1;
    if (tx.type == ETHTX_EIP1559) {
        uint64_t y;
        if (field_u64(&it, &tx.chain_id, "chainId", err, errlen) != 0 ||
            field_u64(&it, &tx.nonce, "nonce", err, errlen) != 0 ||
            field_u256(&it, &tx.max_priority_fee, "maxPriorityFeePerGas", err, errlen) != 0 ||
            field_u256(&it, &tx.max_fee, "maxFeePerGas", err, errlen) != 0 ||
            field_u64(&it, &tx.gas_limit, "gas", err, errlen) != 0 ||
            field_to(&it, &tx, err, errlen) != 0 ||
            field_u256(&it, &tx.value, "value", err, errlen) != 0 ||
            field_data(&it, &tx, err, errlen) != 0)
            return -1;
        rlp_item al;
        if (rlp_iter_next(&it, &al, err, errlen) != 1)
            return util_err(err, errlen, "ethtx: missing access list");
        if (!al.is_list)
            return util_err(err, errlen, "ethtx: access list must be a list");
        if (al.len != 0)
            return util_err(err, errlen, "ethtx: non-empty access lists are not supported");
        if (field_u64(&it, &y, "yParity", err, errlen) != 0)
            return -1;
        if (y > 1)
            return util_err(err, errlen, "ethtx: yParity must be 0 or 1");
        sig[64] = (uint8_t)y;
    } else {
        uint64_t v;
        if (field_u64(&it, &tx.nonce, "nonce", err, errlen) != 0 ||
            field_u256(&it, &tx.gas_price, "gasPrice", err, errlen) != 0 ||
            field_u64(&it, &tx.gas_limit, "gas", err, errlen) != 0 ||
            field_to(&it, &tx, err, errlen) != 0 ||
            field_u256(&it, &tx.value, "value", err, errlen) != 0 ||
            field_data(&it, &tx, err, errlen) != 0 || field_u64(&it, &v, "v", err, errlen) != 0)
            return -1;
        /* Only EIP-155 (chain-bound) signatures: v = chain_id*2 + 35 + recid, chain_id >= 1. */
        if (v < 37)
            return util_err(err, errlen, "ethtx: legacy v %llu is not EIP-155 (chain id >= 1)",
                            (unsigned long long)v);
        tx.chain_id = (v - 35) / 2;
        sig[64] = (uint8_t)((v - 35) % 2);
    }
    if (field_sig(&it, sig, err, errlen) != 0)
        return -1;
    uint8_t h[32], addr[20];
    if (ethtx_signing_hash(&tx, h, err, errlen) != 0)
        return -1;
    char e[UTIL_ERRLEN];
    if (secp_recover_address_ex(h, sig, SECP_RECOVER_LOW_S, addr, e, sizeof e) != 0)
        return util_err(err, errlen, "ethtx: bad signature: %s", e);
    if (from)
        memcpy(from, addr, 20);
    if (hash)
        keccak_256(raw, n, hash);
    if (out)
        *out = tx;
    return 0;
}

int ethtx_decode_hex(const char *raw_hex, uint8_t **raw_out, ethtx *out, uint8_t from[20],
                     uint8_t hash[32], char *err, size_t errlen)
{
    size_t n;
    uint8_t *raw = hex_decode_new(raw_hex, &n, err, errlen);
    if (!raw)
        return -1;
    if (ethtx_decode(raw, n, out, from, hash, err, errlen) != 0) {
        free(raw);
        return -1;
    }
    *raw_out = raw;
    return 0;
}
