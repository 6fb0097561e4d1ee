/* money: uint256 amounts in token base units (USDT on BSC has 18 decimals) —
 * parsing, formatting, comparison and checked arithmetic, with no floating point.
 *
 * Values are plain structs passed by pointer; nothing here allocates. Every
 * function that can fail returns -1 and leaves its outputs untouched, so a
 * caller can never act on a half-computed or wrapped-around amount. Output
 * pointers may alias inputs. */
#ifndef PAIMON_MONEY_H
#define PAIMON_MONEY_H

#include <stddef.h>
#include <stdint.h>

typedef struct money_u256 {
    uint64_t w[4]; /* w[0] least significant */
} money_u256;

/* Buffer for any uint256 decimal string (78 digits) and for any money_to_units
 * output with decimals <= MONEY_MAX_DECIMALS, including the NUL. */
#define MONEY_DEC_MAX 80
/* "0x" + 64 hex digits + NUL. */
#define MONEY_HEX_MAX 67
/* 10^77 is the largest power of ten below 2^256. */
#define MONEY_MAX_DECIMALS 77

typedef enum { MONEY_ROUND_DOWN, MONEY_ROUND_UP, MONEY_ROUND_HALF_EVEN } money_round;

void money_zero(money_u256 *v);
void money_max(money_u256 *v); /* 2^256 - 1 */
int money_is_zero(const money_u256 *v);
void money_from_u64(money_u256 *out, uint64_t x);
int money_to_u64(const money_u256 *v, uint64_t *out); /* -1 if it does not fit */

/* Plain non-negative integer in base units: digits only (leading zeros allowed),
 * no sign, spaces, separators or exponent; empty and >= 2^256 rejected. */
int money_from_dec(money_u256 *out, const char *s, char *err, size_t errlen);
int money_to_dec(const money_u256 *v, char *buf, size_t len); /* -1 if buf too small */

/* Human amount "1234.5" -> base units. At most `decimals` fraction digits: more is
 * an error, never rounded. "1." ".5" "1e5" "-1" "+1" " 1" "1,000" are rejected, as
 * are overflow and decimals > MONEY_MAX_DECIMALS. */
int money_from_units(money_u256 *out, const char *s, unsigned decimals, char *err, size_t errlen);
/* Base units -> "1234.5": trailing fraction zeros trimmed, no '.' for integers.
 * -1 if buf is too small or decimals > MONEY_MAX_DECIMALS. */
int money_to_units(const money_u256 *v, unsigned decimals, char *buf, size_t len);

/* 32-byte big-endian words, as in ABI encoding and uint256 storage slots. */
void money_from_be32(money_u256 *out, const uint8_t be[32]);
void money_to_be32(const money_u256 *v, uint8_t be[32]);
/* "0x" / "0X" followed by 1..64 hex digits (either case). */
int money_from_hex(money_u256 *out, const char *s, char *err, size_t errlen);
/* JSON-RPC quantity form: "0x" + minimal lowercase digits ("0x0" for zero). */
int money_to_hex(const money_u256 *v, char *buf, size_t len); /* -1 if buf too small */

int money_cmp(const money_u256 *a, const money_u256 *b);                  /* -1 / 0 / 1 */
int money_add(money_u256 *out, const money_u256 *a, const money_u256 *b); /* -1 on overflow */
int money_sub(money_u256 *out, const money_u256 *a, const money_u256 *b); /* -1 on underflow */
int money_mul(money_u256 *out, const money_u256 *a, const money_u256 *b); /* -1 on overflow */
/* Truncating division; -1 if b == 0. q or r may be NULL. */
int money_div(money_u256 *q, money_u256 *r, const money_u256 *a, const money_u256 *b);

/* a*b/d with a full 512-bit intermediate (a*b may exceed 2^256), rounded as asked;
 * -1 if d == 0 or the rounded result does not fit. Ratios, fees and share prices
 * go through here so no precision is lost to an early division. */
int money_mul_div(money_u256 *out, const money_u256 *a, const money_u256 *b, const money_u256 *d,
                  money_round mode);
/* a*bps/10000 (basis points), rounded as asked; -1 only if the result does not fit. */
int money_bps(money_u256 *out, const money_u256 *a, uint32_t bps, money_round mode);

#endif
