/* hex: hexadecimal encoding for chain data — byte strings with or without the
 * "0x" prefix, strict decoding of untrusted input, and EIP-55 checksummed
 * addresses.
 *
 * Memory: functions write into caller buffers, except the `_new` ones, which
 * return malloc'd memory the caller frees with free(). */
#ifndef PAIMON_HEX_H
#define PAIMON_HEX_H

#include <stddef.h>
#include <stdint.h>

#define HEX_ADDR_LEN    20
#define HEX_ADDR_STRLEN 43 /* "0x" + 40 digits + NUL */
#define HEX_B32_STRLEN  67 /* "0x" + 64 digits + NUL */
/* Buffer size for encoding n bytes with the prefix, including the NUL. */
#define HEX_STRLEN(n) (2 * (size_t)(n) + 3)

/* Lowercase hex of in[0..n) into out, "0x"-prefixed when prefix != 0.
 * -1 (and out untouched) if outlen is too small. */
int hex_encode(const uint8_t *in, size_t n, int prefix, char *out, size_t outlen);
/* Same, into a new buffer (owned by the caller). */
char *hex_encode_new(const uint8_t *in, size_t n, int prefix);

/* Decodes slen characters of s. An optional "0x"/"0X" prefix is accepted; after
 * it the digits must be an even number of [0-9a-fA-F] (nothing else: no spaces,
 * no sign). "0x" alone is the empty string. -1 if invalid or longer than cap. */
int hex_decode_n(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen, char *err,
                 size_t errlen);
/* NUL-terminated s. */
int hex_decode(const char *s, uint8_t *out, size_t cap, size_t *outlen, char *err, size_t errlen);
/* Exactly n bytes (e.g. a 32-byte topic), anything else is an error. */
int hex_decode_fixed(const char *s, uint8_t *out, size_t n, char *err, size_t errlen);
/* Into a new buffer (owned; never NULL on success, even for empty input). */
uint8_t *hex_decode_new(const char *s, size_t *outlen, char *err, size_t errlen);

/* 1 if s starts with "0x" or "0X". */
int hex_has_prefix(const char *s);

/* EIP-55: "0x" + 40 digits whose letters are upper-cased where the matching
 * nibble of keccak256(lowercase hex) is >= 8. */
void hex_addr_checksum(const uint8_t addr[HEX_ADDR_LEN], char out[HEX_ADDR_STRLEN]);
/* Parses "0x" + 40 hex digits. All-lowercase and all-uppercase digits are
 * accepted as carrying no checksum; mixed case must be a valid EIP-55 checksum,
 * because a mistyped checksummed address must never reach a transaction. */
int hex_addr_parse(const char *s, uint8_t out[HEX_ADDR_LEN], char *err, size_t errlen);
/* 1 if s is exactly the EIP-55 form of some address, else 0. */
int hex_addr_is_checksummed(const char *s);

#endif
