/* Unit tests for libcommon/ethtx: the EIP-155 example from the EIP, raw
 * transactions equal to `cast mktx` (an independent implementation, run at
 * test time) for legacy and EIP-1559 transactions with and without data and
 * for contract creation, decode round trips with sender recovery, and strict
 * rejection of malformed, pre-EIP-155, high-s and unsupported transactions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ethtx.h"
#include "harness.h"
#include "hex.h"
#include "keccak.h"
#include "money.h"
#include "rlp.h"
#include "secp.h"
#include "util.h"

#define K4646 "0x4646464646464646464646464646464646464646464646464646464646464646"
#define EIP155_RAW                                                                                 \
    "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a0" \
    "28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b" \
    "3"                                                                                            \
    "800ccf555c9f3dc64214b297fb1966a3b6d83"

static const uint8_t N[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                              0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                              0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};

static void key_of(const char *s, uint8_t k[32])
{
    assert_int_equal(hex_decode_fixed(s, k, 32, NULL, 0), 0);
}

static void addr_of(const char *s, uint8_t a[20])
{
    assert_int_equal(hex_addr_parse(s, a, NULL, 0), 0);
}

static void u256_dec(money_u256 *v, const char *s)
{
    assert_int_equal(money_from_dec(v, s, NULL, 0), 0);
}

static void eip155_tx(ethtx *tx)
{
    ethtx_init(tx);
    tx->chain_id = 1;
    tx->nonce = 9;
    tx->gas_limit = 21000;
    u256_dec(&tx->gas_price, "20000000000");
    tx->has_to = 1;
    memset(tx->to, 0x35, 20);
    u256_dec(&tx->value, "1000000000000000000");
}

static void test_eip155_example(void **state)
{
    (void)state;
    ethtx tx;
    uint8_t k[32], h[32], txh[32], *raw;
    size_t n;
    char hs[HEX_B32_STRLEN];
    eip155_tx(&tx);
    key_of(K4646, k);
    assert_int_equal(ethtx_signing_hash(&tx, h, NULL, 0), 0);
    hex_encode(h, 32, 1, hs, sizeof hs);
    assert_string_equal(hs, "0xdaf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53");
    assert_int_equal(ethtx_sign(&tx, k, &raw, &n, txh, NULL, 0), 0);
    char *rs = hex_encode_new(raw, n, 1);
    assert_string_equal(rs, EIP155_RAW);
    /* tx hash = keccak256(raw), checked with cast */
    char *ch = th_sh("'%s' keccak %s", th_cast_path(), rs);
    ethtx_hash_hex(txh, hs);
    assert_string_equal(hs, ch);
    free(ch);

    ethtx d;
    uint8_t from[20], dh[32], want[20];
    assert_int_equal(ethtx_decode(raw, n, &d, from, dh, NULL, 0), 0);
    addr_of("0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F", want);
    assert_memory_equal(from, want, 20);
    assert_memory_equal(dh, txh, 32);
    assert_int_equal(d.type, ETHTX_LEGACY);
    assert_int_equal(d.chain_id, 1);
    assert_int_equal(d.nonce, 9);
    assert_int_equal(d.gas_limit, 21000);
    assert_int_equal(money_cmp(&d.gas_price, &tx.gas_price), 0);
    assert_int_equal(money_cmp(&d.value, &tx.value), 0);
    assert_int_equal(d.has_to, 1);
    assert_memory_equal(d.to, tx.to, 20);
    assert_int_equal(d.data_len, 0);
    free(rs);
    free(raw);
}

typedef struct mk {
    ethtx_type type;
    uint64_t chain, nonce, gas;
    const char *price, *prio, *value; /* decimal wei; price = gasPrice or maxFee */
    int create;
    size_t data_len;
} mk;

static void check_against_cast(const mk *m)
{
    uint8_t k[32], *data = NULL;
    char ks[HEX_B32_STRLEN];
    assert_int_equal(secp_key_random(k, NULL, 0), 0);
    hex_encode(k, 32, 1, ks, sizeof ks);
    ethtx tx;
    ethtx_init(&tx);
    tx.type = m->type;
    tx.chain_id = m->chain;
    tx.nonce = m->nonce;
    tx.gas_limit = m->gas;
    if (m->type == ETHTX_LEGACY) {
        u256_dec(&tx.gas_price, m->price);
    } else {
        u256_dec(&tx.max_fee, m->price);
        u256_dec(&tx.max_priority_fee, m->prio);
    }
    u256_dec(&tx.value, m->value);
    if (!m->create) {
        tx.has_to = 1;
        assert_int_equal(util_random(tx.to, 20), 0);
    }
    if (m->data_len) {
        data = util_malloc(m->data_len);
        assert_int_equal(util_random(data, m->data_len), 0);
        data[0] = 0x60; /* keep creation code from starting with a NUL-looking byte */
        tx.data = data;
        tx.data_len = m->data_len;
    }
    char *raw_hex, hash_hex[HEX_B32_STRLEN];
    assert_int_equal(ethtx_sign_hex(&tx, k, &raw_hex, hash_hex, NULL, 0), 0);

    char to[HEX_ADDR_STRLEN], *data_hex = hex_encode_new(data, m->data_len, 1);
    hex_addr_checksum(tx.to, to);
    char prio[128] = "";
    if (m->type == ETHTX_EIP1559)
        snprintf(prio, sizeof prio, "--priority-gas-price %s", m->prio);
    char target[4096];
    if (m->create)
        snprintf(target, sizeof target, "--create %s", data_hex);
    else
        snprintf(target, sizeof target, "%s %s", to, m->data_len ? data_hex : "");
    char *want = th_sh("'%s' mktx --private-key %s --chain %llu --nonce %llu --gas-limit %llu "
                       "--gas-price %s %s --value %s %s %s",
                       th_cast_path(), ks, (unsigned long long)m->chain,
                       (unsigned long long)m->nonce, (unsigned long long)m->gas, m->price, prio,
                       m->value, m->type == ETHTX_LEGACY ? "--legacy" : "", target);
    assert_string_equal(raw_hex, want);

    /* and back: every field, the sender and the hash */
    uint8_t *raw, from[20], me[20], h[32];
    ethtx d;
    assert_int_equal(ethtx_decode_hex(want, &raw, &d, from, h, NULL, 0), 0);
    assert_int_equal(secp_pubkey_address(k, me, NULL, 0), 0);
    assert_memory_equal(from, me, 20);
    char hh[HEX_B32_STRLEN];
    ethtx_hash_hex(h, hh);
    assert_string_equal(hh, hash_hex);
    assert_int_equal(d.type, tx.type);
    assert_int_equal(d.chain_id, tx.chain_id);
    assert_int_equal(d.nonce, tx.nonce);
    assert_int_equal(d.gas_limit, tx.gas_limit);
    assert_int_equal(money_cmp(&d.gas_price, &tx.gas_price), 0);
    assert_int_equal(money_cmp(&d.max_fee, &tx.max_fee), 0);
    assert_int_equal(money_cmp(&d.max_priority_fee, &tx.max_priority_fee), 0);
    assert_int_equal(money_cmp(&d.value, &tx.value), 0);
    assert_int_equal(d.has_to, tx.has_to);
    assert_memory_equal(d.to, tx.to, 20);
    assert_int_equal(d.data_len, tx.data_len);
    if (d.data_len)
        assert_memory_equal(d.data, data, d.data_len);
    free(raw);
    free(want);
    free(data_hex);
    free(raw_hex);
    free(data);
}

static void test_matches_cast_mktx(void **state)
{
    (void)state;
    const mk cases[] = {
        {ETHTX_LEGACY, 31337, 0, 21000, "1", NULL, "0", 0, 0},
        {ETHTX_LEGACY, 56, 1234567, 100000, "5000000000", NULL,
         "1606938044258990275541962092341162602522202993782792835301376", 0, 68},
        {ETHTX_LEGACY, 97, 3, 3000000, "10000000000", NULL, "0", 1, 300},
        {ETHTX_EIP1559, 1, 9, 21000, "20000000000", "2000000000", "1000000000000000000", 0, 4},
        {ETHTX_EIP1559, 31337, 1099511627776ULL, 250000, "7", "7", "1", 0, 0},
        {ETHTX_EIP1559, 31337, 0, 5000000, "3000000000", "0", "0", 1, 1000},
        {ETHTX_EIP1559, 4294967295ULL, 255, 90000, "1000000000000000000000000000000", "1", "255", 0,
         55},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_against_cast(&cases[i]);
}

static void test_sign_rejects(void **state)
{
    (void)state;
    ethtx tx;
    uint8_t k[32], *raw = NULL, h[32];
    size_t n;
    char err[UTIL_ERRLEN] = "";
    key_of(K4646, k);
    eip155_tx(&tx);
    tx.chain_id = 0;
    assert_int_equal(ethtx_sign(&tx, k, &raw, &n, h, err, sizeof err), -1);
    assert_true(strstr(err, "chain_id") != NULL);
    eip155_tx(&tx);
    tx.type = (ethtx_type)1;
    assert_int_equal(ethtx_sign(&tx, k, &raw, &n, h, NULL, 0), -1);
    eip155_tx(&tx);
    tx.data_len = 3; /* data NULL */
    assert_int_equal(ethtx_signing_hash(&tx, h, NULL, 0), -1);
    eip155_tx(&tx);
    tx.type = ETHTX_EIP1559;
    money_from_u64(&tx.max_fee, 1);
    money_from_u64(&tx.max_priority_fee, 2);
    assert_int_equal(ethtx_sign(&tx, k, &raw, &n, h, NULL, 0), -1);
    eip155_tx(&tx);
    memset(k, 0, 32);
    assert_int_equal(ethtx_sign(&tx, k, &raw, &n, h, NULL, 0), -1);
    assert_null(raw);
}

/* Legacy list with arbitrary v, r, s (for building invalid signed txs). */
static void legacy_raw(rlp_buf *b, const ethtx *tx, uint64_t v, const uint8_t r[32],
                       const uint8_t s[32])
{
    money_u256 R, S;
    money_from_be32(&R, r);
    money_from_be32(&S, s);
    size_t m = rlp_list_begin(b);
    rlp_put_u64(b, tx->nonce);
    rlp_put_u256(b, &tx->gas_price);
    rlp_put_u64(b, tx->gas_limit);
    rlp_put_bytes(b, tx->to, tx->has_to ? 20 : 0);
    rlp_put_u256(b, &tx->value);
    rlp_put_bytes(b, tx->data, tx->data_len);
    rlp_put_u64(b, v);
    rlp_put_u256(b, &R);
    rlp_put_u256(b, &S);
    rlp_list_end(b, m);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    uint8_t raw[512], *mut;
    size_t n;
    char err[UTIL_ERRLEN];
    ethtx tx;
    uint8_t from[20];
    assert_int_equal(hex_decode(EIP155_RAW, raw, sizeof raw, &n, NULL, 0), 0);
    assert_int_equal(ethtx_decode(raw, n, &tx, from, NULL, NULL, 0), 0);
    const uint8_t *r = raw + n - 65, *s = raw + n - 32; /* a0 r(32) a0 s(32) */
    assert_int_equal(r[-1], 0xa0);

    mut = util_malloc(n + 1);
    memcpy(mut, raw, n);
    mut[n] = 0x00;
    assert_int_equal(ethtx_decode(mut, n + 1, NULL, NULL, NULL, NULL, 0), -1); /* trailing byte */
    assert_int_equal(ethtx_decode(mut, n - 1, NULL, NULL, NULL, NULL, 0), -1); /* truncated */
    assert_int_equal(ethtx_decode(mut, 0, NULL, NULL, NULL, NULL, 0), -1);
    free(mut);

    rlp_buf b;
    rlp_buf_init(&b);
    /* pre-EIP-155 (v = 27/28): replayable across chains, refused */
    legacy_raw(&b, &tx, 27, r, s);
    err[0] = '\0';
    assert_int_equal(ethtx_decode(b.data, b.len, NULL, NULL, NULL, err, sizeof err), -1);
    assert_true(strstr(err, "EIP-155") != NULL);
    /* high-s twin (n - s, v flipped): valid ECDSA but not canonical */
    uint8_t hs[32];
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int d = N[i] - s[i] - borrow;
        borrow = d < 0;
        hs[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
    rlp_buf_reset(&b);
    legacy_raw(&b, &tx, 38, r, hs);
    err[0] = '\0';
    assert_int_equal(ethtx_decode(b.data, b.len, NULL, NULL, NULL, err, sizeof err), -1);
    assert_true(strstr(err, "high s") != NULL);
    /* same fields, same v: re-encoding is accepted (control for the two above) */
    rlp_buf_reset(&b);
    legacy_raw(&b, &tx, 37, r, s);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, raw, n);
    /* r = 0 */
    uint8_t zero[32] = {0};
    rlp_buf_reset(&b);
    legacy_raw(&b, &tx, 37, zero, s);
    assert_int_equal(ethtx_decode(b.data, b.len, NULL, NULL, NULL, NULL, 0), -1);
    /* 19-byte to */
    rlp_buf_reset(&b);
    size_t m = rlp_list_begin(&b);
    rlp_put_u64(&b, 9);
    rlp_put_u256(&b, &tx.gas_price);
    rlp_put_u64(&b, 21000);
    rlp_put_bytes(&b, tx.to, 19);
    rlp_put_u256(&b, &tx.value);
    rlp_put_bytes(&b, NULL, 0);
    rlp_put_u64(&b, 37);
    rlp_put_bytes(&b, r, 32);
    rlp_put_bytes(&b, s, 32);
    rlp_list_end(&b, m);
    assert_int_equal(ethtx_decode(b.data, b.len, NULL, NULL, NULL, NULL, 0), -1);
    /* non-canonical integer (nonce with a leading zero byte) */
    rlp_buf_reset(&b);
    m = rlp_list_begin(&b);
    rlp_put_bytes(&b, (const uint8_t *)"\x00\x09", 2);
    rlp_put_u256(&b, &tx.gas_price);
    rlp_put_u64(&b, 21000);
    rlp_put_bytes(&b, tx.to, 20);
    rlp_put_u256(&b, &tx.value);
    rlp_put_bytes(&b, NULL, 0);
    rlp_put_u64(&b, 37);
    rlp_put_bytes(&b, r, 32);
    rlp_put_bytes(&b, s, 32);
    rlp_list_end(&b, m);
    assert_int_equal(ethtx_decode(b.data, b.len, NULL, NULL, NULL, NULL, 0), -1);
    /* 8 fields */
    rlp_buf_reset(&b);
    m = rlp_list_begin(&b);
    for (int i = 0; i < 8; i++)
        rlp_put_u64(&b, 1);
    rlp_list_end(&b, m);
    assert_int_equal(ethtx_decode(b.data, b.len, NULL, NULL, NULL, NULL, 0), -1);
    /* a list where the nonce should be */
    rlp_buf_reset(&b);
    m = rlp_list_begin(&b);
    size_t inner = rlp_list_begin(&b);
    rlp_list_end(&b, inner);
    for (int i = 0; i < 8; i++)
        rlp_put_u64(&b, 1);
    rlp_list_end(&b, m);
    assert_int_equal(ethtx_decode(b.data, b.len, NULL, NULL, NULL, NULL, 0), -1);
    rlp_buf_free(&b);

    /* other EIP-2718 types */
    const uint8_t t1[] = {0x01, 0xc0}, t3[] = {0x03, 0xc0}, t2[] = {0x02, 0xc0}, junk[] = {0x80};
    assert_int_equal(ethtx_decode(t1, 2, NULL, NULL, NULL, NULL, 0), -1);
    assert_int_equal(ethtx_decode(t3, 2, NULL, NULL, NULL, NULL, 0), -1);
    assert_int_equal(ethtx_decode(t2, 2, NULL, NULL, NULL, NULL, 0), -1);
    assert_int_equal(ethtx_decode(junk, 1, NULL, NULL, NULL, NULL, 0), -1);
}

/* Type-2 variants built from a valid signed tx: access list and yParity checks. */
static void test_decode_rejects_1559(void **state)
{
    (void)state;
    ethtx tx;
    eip155_tx(&tx);
    tx.type = ETHTX_EIP1559;
    money_from_u64(&tx.max_fee, 100);
    money_from_u64(&tx.max_priority_fee, 1);
    uint8_t k[32], *raw, from[20], me[20];
    size_t n;
    key_of(K4646, k);
    assert_int_equal(ethtx_sign(&tx, k, &raw, &n, NULL, NULL, 0), 0);
    assert_int_equal(raw[0], 0x02);
    assert_int_equal(ethtx_decode(raw, n, NULL, from, NULL, NULL, 0), 0);
    assert_int_equal(secp_pubkey_address(k, me, NULL, 0), 0);
    assert_memory_equal(from, me, 20);

    rlp_item list, it;
    rlp_iter iter;
    assert_int_equal(rlp_decode(raw + 1, n - 1, &list, NULL, 0), 0);
    assert_int_equal(rlp_iter_init(&iter, &list, NULL, 0), 0);
    rlp_item items[12];
    for (int i = 0; i < 12; i++)
        assert_int_equal(rlp_iter_next(&iter, &items[i], NULL, 0), 1);
    (void)it;
    for (int variant = 0; variant < 3; variant++) {
        rlp_buf b;
        rlp_buf_init(&b);
        rlp_put_raw(&b, (const uint8_t *)"\x02", 1);
        size_t m = rlp_list_begin(&b);
        for (int i = 0; i < 12; i++) {
            if (i == 8 && variant == 0) { /* one access-list entry */
                size_t al = rlp_list_begin(&b), e = rlp_list_begin(&b);
                rlp_put_bytes(&b, tx.to, 20);
                size_t keys = rlp_list_begin(&b);
                rlp_list_end(&b, keys);
                rlp_list_end(&b, e);
                rlp_list_end(&b, al);
            } else if (i == 8 && variant == 1) { /* access list as a string */
                rlp_put_bytes(&b, NULL, 0);
            } else if (i == 9 && variant == 2) {
                rlp_put_u64(&b, 2); /* yParity 2 */
            } else {
                rlp_put_raw(&b, items[i].raw, items[i].raw_len);
            }
        }
        rlp_list_end(&b, m);
        assert_int_equal(ethtx_decode(b.data, b.len, NULL, NULL, NULL, NULL, 0), -1);
        rlp_buf_free(&b);
    }
    /* flipping any single byte either breaks decoding or changes the sender */
    for (size_t i = 0; i < n; i++) {
        raw[i] ^= 0x01;
        uint8_t f2[20];
        if (ethtx_decode(raw, n, NULL, f2, NULL, NULL, 0) == 0)
            assert_memory_not_equal(f2, me, 20);
        raw[i] ^= 0x01;
    }
    free(raw);
}

static void test_decode_hex(void **state)
{
    (void)state;
    uint8_t *raw = NULL, from[20];
    ethtx tx;
    assert_int_equal(ethtx_decode_hex(EIP155_RAW, &raw, &tx, from, NULL, NULL, 0), 0);
    assert_non_null(raw);
    assert_int_equal(tx.nonce, 9);
    free(raw);
    raw = NULL;
    assert_int_equal(ethtx_decode_hex("0xf86", &raw, &tx, from, NULL, NULL, 0), -1);
    assert_int_equal(ethtx_decode_hex("0xzz", &raw, &tx, from, NULL, NULL, 0), -1);
    assert_null(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eip155_example),      cmocka_unit_test(test_matches_cast_mktx),
        cmocka_unit_test(test_sign_rejects),        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_decode_rejects_1559), cmocka_unit_test(test_decode_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
