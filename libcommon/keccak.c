/* keccak: Keccak-256 sponge over nettle's Keccak-f[1600] (see keccak.h). */
#include "keccak.h"

#include <string.h>

/* nettle keeps the state as 25 native uint64 lanes; Keccak defines lanes as
 * little-endian byte strings, so bytes are loaded explicitly to stay correct on
 * any host byte order. */
static void absorb_block(struct sha3_state *st, const uint8_t *p)
{
    for (size_t i = 0; i < KECCAK_256_RATE / 8; i++) {
        uint64_t lane = 0;
        for (int b = 7; b >= 0; b--)
            lane = (lane << 8) | p[i * 8 + (size_t)b];
        st->a[i] ^= lane;
    }
    sha3_permute(st);
}

void keccak_init(keccak_ctx *c)
{
    memset(c, 0, sizeof *c);
}

void keccak_update(keccak_ctx *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len == 0)
        return;
    if (c->n > 0) {
        size_t take = KECCAK_256_RATE - c->n;
        if (take > len)
            take = len;
        memcpy(c->block + c->n, p, take);
        c->n += take;
        p += take;
        len -= take;
        if (c->n < KECCAK_256_RATE)
            return;
        absorb_block(&c->st, c->block);
        c->n = 0;
    }
    while (len >= KECCAK_256_RATE) {
        absorb_block(&c->st, p);
        p += KECCAK_256_RATE;
        len -= KECCAK_256_RATE;
    }
    memcpy(c->block, p, len);
    c->n = len;
}

void keccak_final(keccak_ctx *c, uint8_t out[KECCAK_256_LEN])
{
    /* pad10*1 with Keccak's domain byte 0x01; when only one byte is free both
     * bits land in it (0x81). */
    memset(c->block + c->n, 0, KECCAK_256_RATE - c->n);
    c->block[c->n] ^= 0x01;
    c->block[KECCAK_256_RATE - 1] ^= 0x80;
    absorb_block(&c->st, c->block);
    for (size_t i = 0; i < KECCAK_256_LEN; i++)
        out[i] = (uint8_t)(c->st.a[i / 8] >> (8 * (i % 8)));
    keccak_init(c);
}

void keccak_256(const void *data, size_t len, uint8_t out[KECCAK_256_LEN])
{
    keccak_ctx c;
    keccak_init(&c);
    keccak_update(&c, data, len);
    keccak_final(&c, out);
}

void keccak_256_str(const char *s, uint8_t out[KECCAK_256_LEN])
{
    keccak_256(s, strlen(s), out);
}
