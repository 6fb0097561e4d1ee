/* Unit tests for libcommon/secp: key validation, address derivation (known
 * addresses and `cast wallet address` computed at test time), RFC 6979
 * signing against the EIP-155 vector, recovery, low-s strictness and malformed
 * signatures, and concurrent first use of the shared context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "harness.h"
#include "hex.h"
#include "keccak.h"
#include "secp.h"
#include "util.h"

static const uint8_t N[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                              0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                              0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};

static void hex32(const char *s, uint8_t out[32])
{
    assert_int_equal(hex_decode_fixed(s, out, 32, NULL, 0), 0);
}

static void addr_str(const uint8_t a[20], char out[HEX_ADDR_STRLEN])
{
    hex_addr_checksum(a, out);
}

/* n - x over 32-byte big-endian numbers (x < n). */
static void n_minus(const uint8_t x[32], uint8_t out[32])
{
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int d = N[i] - x[i] - borrow;
        borrow = d < 0;
        out[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
}

static void test_key_check(void **state)
{
    (void)state;
    uint8_t k[32] = {0};
    char err[UTIL_ERRLEN] = "";
    uint8_t a[20];
    assert_int_equal(secp_key_check(k, err, sizeof err), -1); /* zero */
    assert_true(strstr(err, "invalid private key") != NULL);
    assert_int_equal(secp_pubkey_address(k, a, NULL, 0), -1);
    memcpy(k, N, 32);
    assert_int_equal(secp_key_check(k, NULL, 0), -1); /* n */
    memset(k, 0xff, 32);
    assert_int_equal(secp_key_check(k, NULL, 0), -1); /* 2^256-1 */
    memcpy(k, N, 32);
    k[31] -= 1;
    assert_int_equal(secp_key_check(k, NULL, 0), 0); /* n-1 */
    uint8_t h[32] = {1}, sig[65];
    assert_int_equal(secp_sign_hash(k, h, sig, NULL, 0), 0);
    memcpy(k, N, 32);
    assert_int_equal(secp_sign_hash(k, h, sig, err, sizeof err), -1);
}

static void test_known_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *key, *addr;
    } v[] = {
        {"0x0000000000000000000000000000000000000000000000000000000000000001",
         "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"},
        {"0x4646464646464646464646464646464646464646464646464646464646464646",
         "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"},
        /* anvil's first well-known dev account */
        {"0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
         "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t k[32], a[20];
        char s[HEX_ADDR_STRLEN];
        hex32(v[i].key, k);
        assert_int_equal(secp_pubkey_address(k, a, NULL, 0), 0);
        addr_str(a, s);
        assert_string_equal(s, v[i].addr);
    }
}

static void test_cast_addresses(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        uint8_t k[32], a[20];
        char ks[HEX_B32_STRLEN], s[HEX_ADDR_STRLEN];
        assert_int_equal(secp_key_random(k, NULL, 0), 0);
        hex_encode(k, 32, 1, ks, sizeof ks);
        assert_int_equal(secp_pubkey_address(k, a, NULL, 0), 0);
        addr_str(a, s);
        char out[64];
        char args[128];
        snprintf(args, sizeof args, "wallet address --private-key %s", ks);
        assert_int_equal(th_cast(args, out, sizeof out), 0);
        assert_string_equal(out, s);
    }
}

/* EIP-155 example: the signing hash signed with 0x4646..46 gives these r, s and recid 0. */
static void test_eip155_vector(void **state)
{
    (void)state;
    uint8_t k[32], h[32], sig[65], again[65], a[20];
    hex32("0x4646464646464646464646464646464646464646464646464646464646464646", k);
    hex32("0xdaf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53", h);
    assert_int_equal(secp_sign_hash(k, h, sig, NULL, 0), 0);
    char r[HEX_B32_STRLEN], s[HEX_B32_STRLEN];
    hex_encode(sig, 32, 1, r, sizeof r);
    hex_encode(sig + 32, 32, 1, s, sizeof s);
    assert_string_equal(r, "0x28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276");
    assert_string_equal(s, "0x67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83");
    assert_int_equal(sig[64], 0);
    /* RFC 6979: deterministic */
    assert_int_equal(secp_sign_hash(k, h, again, NULL, 0), 0);
    assert_memory_equal(sig, again, 65);
    assert_int_equal(secp_recover_address(h, sig, a, NULL, 0), 0);
    char as[HEX_ADDR_STRLEN];
    addr_str(a, as);
    assert_string_equal(as, "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F");
}

static void test_roundtrip_random(void **state)
{
    (void)state;
    for (int i = 0; i < 200; i++) {
        uint8_t k[32], h[32], sig[65], a[20], b[20];
        assert_int_equal(secp_key_random(k, NULL, 0), 0);
        assert_int_equal(util_random(h, 32), 0);
        assert_int_equal(secp_pubkey_address(k, a, NULL, 0), 0);
        assert_int_equal(secp_sign_hash(k, h, sig, NULL, 0), 0);
        assert_true(sig[64] == 0 || sig[64] == 1);
        assert_true(secp_sig_is_low_s(sig));
        assert_int_equal(secp_recover_address_ex(h, sig, SECP_RECOVER_LOW_S, b, NULL, 0), 0);
        assert_memory_equal(a, b, 20);
        sig[64] += 27; /* 27/28 form too */
        memset(b, 0, 20);
        assert_int_equal(secp_recover_address(h, sig, b, NULL, 0), 0);
        assert_memory_equal(a, b, 20);
        /* a different hash recovers someone else */
        h[i % 32] ^= 0x01;
        if (secp_recover_address(h, sig, b, NULL, 0) == 0)
            assert_memory_not_equal(a, b, 20);
    }
}

static void test_high_s(void **state)
{
    (void)state;
    uint8_t k[32], h[32], sig[65], hi[65], a[20], b[20];
    char err[UTIL_ERRLEN] = "";
    assert_int_equal(secp_key_random(k, NULL, 0), 0);
    assert_int_equal(util_random(h, 32), 0);
    assert_int_equal(secp_pubkey_address(k, a, NULL, 0), 0);
    assert_int_equal(secp_sign_hash(k, h, sig, NULL, 0), 0);
    /* (r, n-s, v^1) is the malleated twin: valid ECDSA, same signer */
    memcpy(hi, sig, 32);
    n_minus(sig + 32, hi + 32);
    hi[64] = sig[64] ^ 1;
    assert_false(secp_sig_is_low_s(hi));
    assert_int_equal(secp_recover_address(h, hi, b, NULL, 0), 0);
    assert_memory_equal(a, b, 20);
    assert_int_equal(secp_recover_address_ex(h, hi, SECP_RECOVER_LOW_S, b, err, sizeof err), -1);
    assert_true(strstr(err, "high s") != NULL);
}

static void test_bad_signatures(void **state)
{
    (void)state;
    uint8_t k[32], h[32], sig[65], bad[65], a[20];
    assert_int_equal(secp_key_random(k, NULL, 0), 0);
    assert_int_equal(util_random(h, 32), 0);
    assert_int_equal(secp_sign_hash(k, h, sig, NULL, 0), 0);
    const uint8_t vs[] = {2, 3, 26, 29, 35, 255};
    for (size_t i = 0; i < sizeof vs; i++) {
        memcpy(bad, sig, 65);
        bad[64] = vs[i];
        assert_int_equal(secp_recover_address(h, bad, a, NULL, 0), -1);
    }
    memcpy(bad, sig, 65);
    memset(bad, 0, 32); /* r = 0 */
    assert_int_equal(secp_recover_address(h, bad, a, NULL, 0), -1);
    memcpy(bad, sig, 65);
    memset(bad + 32, 0, 32); /* s = 0 */
    assert_int_equal(secp_recover_address(h, bad, a, NULL, 0), -1);
    memcpy(bad, sig, 65);
    memcpy(bad, N, 32); /* r = n */
    assert_int_equal(secp_recover_address(h, bad, a, NULL, 0), -1);
    memcpy(bad, sig, 65);
    memcpy(bad + 32, N, 32); /* s = n */
    assert_int_equal(secp_recover_address(h, bad, a, NULL, 0), -1);
}

static void test_sig_parse_hex(void **state)
{
    (void)state;
    uint8_t k[32], h[32], sig[65], back[65];
    assert_int_equal(secp_key_random(k, NULL, 0), 0);
    assert_int_equal(util_random(h, 32), 0);
    assert_int_equal(secp_sign_hash(k, h, sig, NULL, 0), 0);
    sig[64] += 27;
    char s[HEX_STRLEN(65)];
    hex_encode(sig, 65, 1, s, sizeof s);
    assert_int_equal(secp_sig_parse_hex(s, back, NULL, 0), 0);
    assert_memory_equal(sig, back, 65);
    assert_int_equal(secp_sig_parse_hex(s + 2, back, NULL, 0), -1); /* no 0x */
    s[strlen(s) - 2] = '\0';
    assert_int_equal(secp_sig_parse_hex(s, back, NULL, 0), -1); /* 64 bytes */
    hex_encode(sig, 65, 1, s, sizeof s);
    memcpy(s + 130, "1d", 2); /* v = 29 */
    assert_int_equal(secp_sig_parse_hex(s, back, NULL, 0), -1);
    memcpy(s + 130, "0g", 2);
    assert_int_equal(secp_sig_parse_hex(s, back, NULL, 0), -1);
    assert_int_equal(secp_sig_parse_hex(NULL, back, NULL, 0), -1);
}

/* Many threads racing on the first use of the shared context must all sign correctly. */
static void *sign_worker(void *arg)
{
    uint8_t *ok = arg;
    uint8_t k[32], h[32], sig[65], a[20], b[20];
    *ok = 0;
    for (int i = 0; i < 50; i++) {
        if (secp_key_random(k, NULL, 0) || util_random(h, 32) ||
            secp_pubkey_address(k, a, NULL, 0) || secp_sign_hash(k, h, sig, NULL, 0) ||
            secp_recover_address(h, sig, b, NULL, 0) || memcmp(a, b, 20) != 0)
            return NULL;
    }
    *ok = 1;
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[8];
    uint8_t ok[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, sign_worker, &ok[i]), 0);
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(ok[i], 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads), /* first, so it races on context creation */
        cmocka_unit_test(test_key_check),        cmocka_unit_test(test_known_addresses),
        cmocka_unit_test(test_cast_addresses),   cmocka_unit_test(test_eip155_vector),
        cmocka_unit_test(test_roundtrip_random), cmocka_unit_test(test_high_s),
        cmocka_unit_test(test_bad_signatures),   cmocka_unit_test(test_sig_parse_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
