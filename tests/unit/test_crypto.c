/* Unit tests for libcommon/crypto: SHA-256 and HMAC against published vectors
 * (FIPS 180-2, RFC 4231) and against the openssl command line on random inputs;
 * AES-256-GCM against the GCM specification's AES-256 test cases, round trips and
 * tampering; strict base64 (RFC 4648 vectors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "crypto.h"
#include "hex.h"
#include "util.h"

static void unhex(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    assert_int_equal(hex_decode(s, out, cap, n, NULL, 0), 0);
}

static void hexs(const uint8_t *b, size_t n, char *out, size_t outlen)
{
    assert_int_equal(hex_encode(b, n, 0, out, outlen), 0);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    uint8_t d[32];
    char h[65];
    assert_int_equal(crypto_sha256("", 0, d, NULL, 0), 0);
    hexs(d, 32, h, sizeof h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(crypto_sha256("abc", 3, d, NULL, 0), 0);
    hexs(d, 32, h, sizeof h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(crypto_sha256(m, strlen(m), d, NULL, 0), 0);
    hexs(d, 32, h, sizeof h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* RFC 4231 test cases 1-4, 6, 7 (5 is a truncated MAC). */
static void test_hmac_rfc4231(void **state)
{
    (void)state;
    struct {
        const char *key_hex, *data_hex, *data_str, *mac;
        size_t key_rep;
        uint8_t key_byte;
        size_t data_rep;
        uint8_t data_byte;
    } v[] = {
        {NULL, NULL, "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
         20, 0x0b, 0, 0},
        {"4a656665", NULL, "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 0, 0, 0, 0},
        {NULL, NULL, NULL, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", 20,
         0xaa, 50, 0xdd},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819", NULL, NULL,
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", 0, 0, 50, 0xcd},
        {NULL, NULL, "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 131, 0xaa, 0, 0},
        {NULL, NULL,
         "This is a test using a larger than block-size key and a larger than block-size data. "
         "The key needs to be hashed before being used by the HMAC algorithm.",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 131, 0xaa, 0, 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t key[200], data[200];
        size_t kl = 0, dl = 0;
        if (v[i].key_hex)
            unhex(v[i].key_hex, key, sizeof key, &kl);
        else {
            kl = v[i].key_rep;
            memset(key, v[i].key_byte, kl);
        }
        if (v[i].data_str) {
            dl = strlen(v[i].data_str);
            memcpy(data, v[i].data_str, dl);
        } else {
            dl = v[i].data_rep;
            memset(data, v[i].data_byte, dl);
        }
        char out[CRYPTO_SHA256_HEXLEN];
        assert_int_equal(crypto_hmac_sha256_hex(key, kl, data, dl, out, NULL, 0), 0);
        assert_string_equal(out, v[i].mac);
        uint8_t raw[32], want[32];
        size_t wl;
        assert_int_equal(crypto_hmac_sha256(key, kl, data, dl, raw, NULL, 0), 0);
        unhex(v[i].mac, want, sizeof want, &wl);
        assert_memory_equal(raw, want, 32);
    }
}

/* Random alphanumeric key and message: our MAC must equal `openssl dgst -hmac`. */
static void test_hmac_vs_openssl_cli(void **state)
{
    (void)state;
    static const char an[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char path[] = "/tmp/paimon-test-crypto-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (int round = 0; round < 6; round++) {
        char key[48], msg[300] = {0};
        size_t kl = 1 + util_random_below(sizeof key - 1), ml = util_random_below(sizeof msg);
        for (size_t i = 0; i < kl; i++)
            key[i] = an[util_random_below(sizeof an - 1)];
        key[kl] = '\0';
        for (size_t i = 0; i < ml; i++)
            msg[i] = an[util_random_below(sizeof an - 1)];
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(msg, 1, ml, f), ml);
        fclose(f);
        char cmd[512], line[256];
        snprintf(cmd, sizeof cmd, "openssl dgst -sha256 -hmac '%s' '%s'", key, path);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        assert_non_null(fgets(line, sizeof line, p));
        assert_int_equal(pclose(p), 0);
        line[strcspn(line, "\r\n")] = '\0';
        const char *theirs = strrchr(line, ' ');
        assert_non_null(theirs);
        char mine[CRYPTO_SHA256_HEXLEN];
        assert_int_equal(crypto_hmac_sha256_hex(key, kl, msg, ml, mine, NULL, 0), 0);
        assert_string_equal(mine, theirs + 1);
    }
    unlink(path);
}

static void test_ct_equal_and_wipe(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    assert_int_equal(util_random(a, sizeof a), 0);
    memcpy(b, a, sizeof a);
    assert_int_equal(crypto_ct_equal(a, b, sizeof a), 1);
    for (size_t i = 0; i < sizeof a; i++) {
        b[i] ^= 0x01;
        assert_int_equal(crypto_ct_equal(a, b, sizeof a), 0);
        b[i] ^= 0x01;
    }
    assert_int_equal(crypto_ct_equal(a, b, 0), 1);
    crypto_wipe(a, sizeof a);
    static const uint8_t zero[32];
    assert_memory_equal(a, zero, sizeof a);
    crypto_wipe(NULL, 10);
}

/* AES-256 test cases 13-16 of "The Galois/Counter Mode of Operation" (McGrew &
 * Viega), the vectors NIST's GCM validation uses: build the sealed blob from the
 * spec's nonce/ciphertext/tag and check open returns the spec's plaintext. */
static void test_gcm_spec_vectors(void **state)
{
    (void)state;
    const char *k0 = "0000000000000000000000000000000000000000000000000000000000000000";
    const char *k1 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
    struct {
        const char *key, *iv, *pt, *aad, *ct, *tag;
    } v[] = {
        {k0, "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
        {k0, "000000000000000000000000", "00000000000000000000000000000000", "",
         "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
        {k1, "cafebabefacedbaddecaf888",
         "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
         "49a6b525b16aedf5aa0de657ba637b391aafd255",
         "",
         "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
         "56828838c5f61e6393ba7a0abcc9f662898015ad",
         "b094dac5d93471bdec1a502270e3cc6c"},
        {k1, "cafebabefacedbaddecaf888",
         "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
         "49a6b525b16aedf5aa0de657ba637b39",
         "feedfacedeadbeeffeedfacedeadbeefabaddad2",
         "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
         "56828838c5f61e6393ba7a0abcc9f662",
         "76fc6ece0f4e1768cddf8853bb2d551b"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t key[32], iv[12], pt[64], aad[32], ct[64], tag[16], blob[1 + 12 + 64 + 16];
        size_t kl, il, pl, al, cl, tl;
        unhex(v[i].key, key, sizeof key, &kl);
        unhex(v[i].iv, iv, sizeof iv, &il);
        unhex(v[i].pt, pt, sizeof pt, &pl);
        unhex(v[i].aad, aad, sizeof aad, &al);
        unhex(v[i].ct, ct, sizeof ct, &cl);
        unhex(v[i].tag, tag, sizeof tag, &tl);
        assert_int_equal(kl, 32);
        assert_int_equal(cl, pl);
        blob[0] = CRYPTO_SEAL_VERSION;
        memcpy(blob + 1, iv, 12);
        memcpy(blob + 13, ct, cl);
        memcpy(blob + 13 + cl, tag, 16);
        size_t bl = 13 + cl + 16;
        uint8_t *out = NULL;
        size_t ol = 99;
        char err[UTIL_ERRLEN] = "";
        assert_int_equal(
            crypto_gcm_open(key, al ? aad : NULL, al, blob, bl, &out, &ol, err, sizeof err), 0);
        assert_int_equal(ol, pl);
        if (pl)
            assert_memory_equal(out, pt, pl);
        free(out);
        /* The same blob with the last tag bit flipped must not open. */
        blob[bl - 1] ^= 0x80;
        assert_int_equal(crypto_gcm_open(key, aad, al, blob, bl, &out, &ol, err, sizeof err), -1);
        assert_null(out);
        assert_non_null(strstr(err, "authentication failed"));
    }
}

static void test_gcm_roundtrip_and_tamper(void **state)
{
    (void)state;
    uint8_t key[32], key2[32], pt[100];
    assert_int_equal(util_random(key, 32), 0);
    assert_int_equal(util_random(key2, 32), 0);
    assert_int_equal(util_random(pt, sizeof pt), 0);
    const char *aad = "signer|0xabc";
    char err[UTIL_ERRLEN];
    for (size_t n = 0; n <= sizeof pt; n += 33) {
        uint8_t *s1 = NULL, *s2 = NULL, *o = NULL;
        size_t l1, l2, ol;
        assert_int_equal(crypto_gcm_seal(key, aad, strlen(aad), pt, n, &s1, &l1, err, sizeof err),
                         0);
        assert_int_equal(l1, n + CRYPTO_SEAL_OVERHEAD);
        assert_int_equal(s1[0], CRYPTO_SEAL_VERSION);
        assert_int_equal(crypto_gcm_seal(key, aad, strlen(aad), pt, n, &s2, &l2, err, sizeof err),
                         0);
        /* Fresh nonce each time: sealing twice never gives the same blob. */
        assert_memory_not_equal(s1 + 1, s2 + 1, CRYPTO_GCM_NONCE_LEN);
        assert_int_equal(crypto_gcm_open(key, aad, strlen(aad), s1, l1, &o, &ol, err, sizeof err),
                         0);
        assert_int_equal(ol, n);
        if (n)
            assert_memory_equal(o, pt, n);
        free(o);
        /* Every single-bit flip anywhere in the blob is detected. */
        for (size_t i = 0; i < l1; i++) {
            s1[i] ^= 0x04;
            assert_int_equal(
                crypto_gcm_open(key, aad, strlen(aad), s1, l1, &o, &ol, err, sizeof err), -1);
            assert_null(o);
            s1[i] ^= 0x04;
        }
        assert_int_equal(crypto_gcm_open(key2, aad, strlen(aad), s1, l1, &o, &ol, err, sizeof err),
                         -1);
        assert_int_equal(crypto_gcm_open(key, "signer|0xabd", 12, s1, l1, &o, &ol, err, sizeof err),
                         -1);
        assert_int_equal(crypto_gcm_open(key, NULL, 0, s1, l1, &o, &ol, err, sizeof err), -1);
        assert_int_equal(
            crypto_gcm_open(key, aad, strlen(aad), s1, l1 - 1, &o, &ol, err, sizeof err), -1);
        assert_int_equal(crypto_gcm_open(key, aad, strlen(aad), s1, 5, &o, &ol, err, sizeof err),
                         -1);
        assert_non_null(strstr(err, "too short"));
        s1[0] = 2;
        assert_int_equal(crypto_gcm_open(key, aad, strlen(aad), s1, l1, &o, &ol, err, sizeof err),
                         -1);
        assert_non_null(strstr(err, "version"));
        free(s1);
        free(s2);
    }
}

static void test_base64(void **state)
{
    (void)state;
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *e = crypto_b64_encode_new((const uint8_t *)plain[i], strlen(plain[i]));
        assert_string_equal(e, enc[i]);
        free(e);
        uint8_t *d = NULL;
        size_t dl = 99;
        assert_int_equal(crypto_b64_decode_new(enc[i], &d, &dl, NULL, 0), 0);
        assert_int_equal(dl, strlen(plain[i]));
        assert_memory_equal(d, plain[i], dl);
        free(d);
    }
    const char *bad[] = {"Zg=",  "Zh==",     "Zm9=", "Zm9v\n", " Zm9v", "Z===",
                         "=Zg=", "Zg==Zg==", "Zm9-", "Zm9_",   "Zm 9v"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *d = (uint8_t *)1;
        size_t dl;
        assert_int_equal(crypto_b64_decode_new(bad[i], &d, &dl, NULL, 0), -1);
        assert_null(d);
    }
    /* All byte values survive a round trip. */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    for (size_t n = 250; n <= 256; n++) {
        char *e = crypto_b64_encode_new(all, n);
        uint8_t *d = NULL;
        size_t dl;
        assert_int_equal(crypto_b64_decode_new(e, &d, &dl, NULL, 0), 0);
        assert_int_equal(dl, n);
        assert_memory_equal(d, all, n);
        free(d);
        free(e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hmac_vs_openssl_cli),
        cmocka_unit_test(test_ct_equal_and_wipe),
        cmocka_unit_test(test_gcm_spec_vectors),
        cmocka_unit_test(test_gcm_roundtrip_and_tamper),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
