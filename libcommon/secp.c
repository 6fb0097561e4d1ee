/* secp: Ethereum-flavoured secp256k1 on top of libsecp256k1 (see secp.h). The
 * shared context is created once and never freed: it lives as long as the process. */
#include "secp.h"
#include "hex.h"
#include "keccak.h"
#include "util.h"

#include <pthread.h>
#include <string.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

/* Group order n and n/2, big-endian. */
static const uint8_t SECP_N[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                   0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
static const uint8_t SECP_HALF_N[32] = {
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0};

static pthread_once_t secp_once = PTHREAD_ONCE_INIT;
static secp256k1_context *secp_ctx;

static void secp_ctx_init(void)
{
    secp256k1_context *c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (!c)
        return;
    /* Blinding against side channels on signing; a failed seed only loses the
     * hardening, never correctness, so the context is still used. */
    uint8_t seed[32];
    if (util_random(seed, sizeof seed) == 0 && !secp256k1_context_randomize(c, seed)) {
        /* only fails on a misconfigured context; unblinded signing stays correct */
    }
    explicit_bzero(seed, sizeof seed);
    secp_ctx = c;
}

static const secp256k1_context *ctx_get(char *err, size_t errlen)
{
    pthread_once(&secp_once, secp_ctx_init);
    if (!secp_ctx)
        util_err(err, errlen, "secp: cannot create libsecp256k1 context");
    return secp_ctx;
}

static int is_zero32(const uint8_t *p)
{
    uint8_t acc = 0;
    for (int i = 0; i < 32; i++)
        acc |= p[i];
    return acc == 0;
}

/* Big-endian compare of two 32-byte numbers (public data only). */
static int cmp32(const uint8_t *a, const uint8_t *b)
{
    return memcmp(a, b, 32);
}

int secp_key_check(const uint8_t key[32], char *err, size_t errlen)
{
    const secp256k1_context *c = ctx_get(err, errlen);
    if (!c)
        return -1;
    if (!secp256k1_ec_seckey_verify(c, key))
        return util_err(err, errlen, "secp: invalid private key (zero or >= curve order)");
    return 0;
}

int secp_key_random(uint8_t key[32], char *err, size_t errlen)
{
    /* A uniformly random 32-byte value is out of range with probability ~2^-128;
     * retrying keeps the loop bounded in practice. */
    for (int i = 0; i < 16; i++) {
        if (util_random(key, 32) != 0)
            return util_err(err, errlen, "secp: OS random source failed");
        if (secp_key_check(key, NULL, 0) == 0)
            return 0;
    }
    explicit_bzero(key, 32);
    return util_err(err, errlen, "secp: could not draw a valid key");
}

int secp_pubkey(const uint8_t key[32], uint8_t pub[64], char *err, size_t errlen)
{
    const secp256k1_context *c = ctx_get(err, errlen);
    if (!c)
        return -1;
    secp256k1_pubkey pk;
    if (!secp256k1_ec_pubkey_create(c, &pk, key))
        return util_err(err, errlen, "secp: invalid private key (zero or >= curve order)");
    uint8_t ser[65];
    size_t len = sizeof ser;
    secp256k1_ec_pubkey_serialize(c, ser, &len, &pk, SECP256K1_EC_UNCOMPRESSED);
    memcpy(pub, ser + 1, 64);
    return 0;
}

void secp_pubkey_to_address(const uint8_t pub[64], uint8_t addr[20])
{
    uint8_t h[32];
    keccak_256(pub, 64, h);
    memcpy(addr, h + 12, 20);
}

int secp_pubkey_address(const uint8_t key[32], uint8_t addr[20], char *err, size_t errlen)
{
    uint8_t pub[64];
    if (secp_pubkey(key, pub, err, errlen) != 0)
        return -1;
    secp_pubkey_to_address(pub, addr);
    return 0;
}

int secp_sign_hash(const uint8_t key[32], const uint8_t hash[32], uint8_t sig[65], char *err,
                   size_t errlen)
{
    const secp256k1_context *c = ctx_get(err, errlen);
    if (!c)
        return -1;
    secp256k1_ecdsa_recoverable_signature rs;
    /* NULL noncefp = RFC 6979; libsecp256k1 always produces low-s. */
    if (!secp256k1_ecdsa_sign_recoverable(c, &rs, hash, key, NULL, NULL)) {
        explicit_bzero(&rs, sizeof rs);
        return util_err(err, errlen, "secp: invalid private key (zero or >= curve order)");
    }
    int recid = 0;
    uint8_t out[64];
    secp256k1_ecdsa_recoverable_signature_serialize_compact(c, out, &recid, &rs);
    explicit_bzero(&rs, sizeof rs);
    if (recid < 0 || recid > 1) {
        /* recid 2/3 (r overflowed n) has no Ethereum encoding; probability ~2^-127. */
        return util_err(err, errlen, "secp: signature has unusable recovery id %d", recid);
    }
    memcpy(sig, out, 64);
    sig[64] = (uint8_t)recid;
    return 0;
}

int secp_sig_is_low_s(const uint8_t sig[65])
{
    return cmp32(sig + 32, SECP_HALF_N) <= 0;
}

int secp_recover_address_ex(const uint8_t hash[32], const uint8_t sig[65], int flags,
                            uint8_t addr[20], char *err, size_t errlen)
{
    const secp256k1_context *c = ctx_get(err, errlen);
    if (!c)
        return -1;
    int v = sig[64];
    if (v == 27 || v == 28)
        v -= 27;
    if (v != 0 && v != 1)
        return util_err(err, errlen, "secp: bad signature v %d (want 0, 1, 27 or 28)", sig[64]);
    if (is_zero32(sig) || cmp32(sig, SECP_N) >= 0)
        return util_err(err, errlen, "secp: signature r out of range");
    if (is_zero32(sig + 32) || cmp32(sig + 32, SECP_N) >= 0)
        return util_err(err, errlen, "secp: signature s out of range");
    if ((flags & SECP_RECOVER_LOW_S) && !secp_sig_is_low_s(sig))
        return util_err(err, errlen, "secp: non-canonical signature (high s)");
    secp256k1_ecdsa_recoverable_signature rs;
    if (!secp256k1_ecdsa_recoverable_signature_parse_compact(c, &rs, sig, v))
        return util_err(err, errlen, "secp: malformed signature");
    secp256k1_pubkey pk;
    if (!secp256k1_ecdsa_recover(c, &pk, &rs, hash))
        return util_err(err, errlen, "secp: signature does not recover to a public key");
    uint8_t ser[65];
    size_t len = sizeof ser;
    secp256k1_ec_pubkey_serialize(c, ser, &len, &pk, SECP256K1_EC_UNCOMPRESSED);
    secp_pubkey_to_address(ser + 1, addr);
    return 0;
}

int secp_recover_address(const uint8_t hash[32], const uint8_t sig[65], uint8_t addr[20], char *err,
                         size_t errlen)
{
    return secp_recover_address_ex(hash, sig, 0, addr, err, errlen);
}

int secp_sig_parse_hex(const char *s, uint8_t sig[65], char *err, size_t errlen)
{
    if (!s)
        return util_err(err, errlen, "secp: missing signature");
    if (!hex_has_prefix(s))
        return util_err(err, errlen, "secp: signature must be 0x-prefixed hex");
    uint8_t tmp[65];
    if (hex_decode_fixed(s, tmp, sizeof tmp, err, errlen) != 0)
        return -1;
    if (tmp[64] != 0 && tmp[64] != 1 && tmp[64] != 27 && tmp[64] != 28)
        return util_err(err, errlen, "secp: bad signature v %d (want 0, 1, 27 or 28)", tmp[64]);
    memcpy(sig, tmp, 65);
    return 0;
}
