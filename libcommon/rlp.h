/* rlp: Ethereum's Recursive Length Prefix encoding, for signing transactions
 * (EIP-155 legacy, EIP-1559 typed payloads) and reading what nodes return.
 *
 * Encoding appends to a growable rlp_buf owned by the caller (rlp_buf_free).
 * Lists are written as rlp_list_begin() ... items ... rlp_list_end(); the list
 * header is inserted at the end, so lists nest freely.
 *
 * Decoding is zero-copy: rlp_item points into the caller's input (borrowed, valid
 * as long as that input). rlp_decode() checks the whole input strictly — every
 * length canonical, no leading zeros in lengths or integers, single bytes below
 * 0x80 not wrapped as strings, nothing beyond the declared length, no trailing
 * bytes — so a value has exactly one accepted encoding. */
#ifndef PAIMON_RLP_H
#define PAIMON_RLP_H

#include <stddef.h>
#include <stdint.h>

#include "money.h"

/* Nesting deeper than this is refused when decoding (bounds the recursion). */
#define RLP_MAX_DEPTH 64

typedef struct rlp_buf {
    uint8_t *data;
    size_t len, cap;
} rlp_buf;

void rlp_buf_init(rlp_buf *b);
void rlp_buf_free(rlp_buf *b);
void rlp_buf_reset(rlp_buf *b); /* len = 0, keeps the memory */

void rlp_put_bytes(rlp_buf *b, const uint8_t *p, size_t n);
void rlp_put_str(rlp_buf *b, const char *s); /* the bytes of a NUL-terminated string */
/* Integers as big-endian bytes without leading zeros; 0 is the empty string. */
void rlp_put_u64(rlp_buf *b, uint64_t v);
void rlp_put_u256(rlp_buf *b, const money_u256 *v);
/* An already encoded item (e.g. an access list built elsewhere), copied verbatim. */
void rlp_put_raw(rlp_buf *b, const uint8_t *p, size_t n);
/* Returns a mark to pass to rlp_list_end() once the list's items are written. */
size_t rlp_list_begin(rlp_buf *b);
void rlp_list_end(rlp_buf *b, size_t mark);

typedef struct rlp_item {
    int is_list;
    const uint8_t *payload; /* string bytes or the concatenated list items */
    size_t len;             /* payload length */
    const uint8_t *raw;     /* header + payload */
    size_t raw_len;
} rlp_item;

/* Whole input must be exactly one valid item (checked recursively). */
int rlp_decode(const uint8_t *in, size_t n, rlp_item *out, char *err, size_t errlen);

/* Iterates over the items of a decoded list. */
typedef struct rlp_iter {
    const uint8_t *p;
    size_t rem;
} rlp_iter;
/* -1 if item is not a list. */
int rlp_iter_init(rlp_iter *it, const rlp_item *list, char *err, size_t errlen);
/* 1 and the next item, 0 at the end, -1 on malformed data. */
int rlp_iter_next(rlp_iter *it, rlp_item *out, char *err, size_t errlen);
/* Number of items in a list, -1 if malformed or not a list. */
int rlp_list_count(const rlp_item *list, size_t *count, char *err, size_t errlen);

/* Canonical integers: a string with no leading zero byte, at most 8 / 32 bytes. */
int rlp_item_u64(const rlp_item *it, uint64_t *out, char *err, size_t errlen);
int rlp_item_u256(const rlp_item *it, money_u256 *out, char *err, size_t errlen);

#endif
