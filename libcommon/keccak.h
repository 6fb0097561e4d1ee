/* keccak: Ethereum's Keccak-256 (the original Keccak padding 0x01 ... 0x80, not
 * FIPS-202 SHA3-256's 0x06), used for selectors, event topics, addresses and
 * transaction hashes.
 *
 * The Keccak-f[1600] permutation is nettle's sha3_permute(); this module only
 * does the sponge (absorb at rate 136, pad, squeeze 32 bytes). Contexts are plain
 * structs owned by the caller; nothing here allocates or fails. */
#ifndef PAIMON_KECCAK_H
#define PAIMON_KECCAK_H

#include <stddef.h>
#include <stdint.h>
#include <nettle/sha3.h>

#define KECCAK_256_LEN  32
#define KECCAK_256_RATE 136 /* 1600 - 2*256 bits */

typedef struct keccak_ctx {
    struct sha3_state st;
    uint8_t block[KECCAK_256_RATE]; /* bytes not yet absorbed */
    size_t n;                       /* valid bytes in block */
} keccak_ctx;

void keccak_init(keccak_ctx *c);
void keccak_update(keccak_ctx *c, const void *data, size_t len);
/* Writes the digest and leaves c re-initialised, ready for a new message. */
void keccak_final(keccak_ctx *c, uint8_t out[KECCAK_256_LEN]);

/* One-shot helpers. */
void keccak_256(const void *data, size_t len, uint8_t out[KECCAK_256_LEN]);
void keccak_256_str(const char *s, uint8_t out[KECCAK_256_LEN]); /* NUL-terminated input */

#endif
