/* Unit tests for libcommon/keystore: create / import / unlock, the file on disk
 * (mode, atomic rewrite, reload), master-key rotation (sealed keys unchanged),
 * and refusal of wrong master keys, tampered files and address mismatches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "hex.h"
#include "keystore.h"
#include "secp.h"
#include "util.h"

/* anvil's first dev account. */
#define ANVIL_KEY  "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#define ANVIL_ADDR "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

typedef struct fx {
    char dir[64];
    char path[128];
    keystore_kek k1, k2;
} fx;

static int setup(void **state)
{
    fx *f = util_calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/paimon-ks-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/keys.json", f->dir);
    if (keystore_kek_parse("k1",
                           "0x1111111111111111111111111111111111111111111111111111111111111111",
                           &f->k1, NULL, 0) != 0)
        return -1;
    if (keystore_kek_parse("k2", "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=", &f->k2, NULL, 0) !=
        0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = util_malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    b[n] = '\0';
    fclose(fp);
    return b;
}

static void spit(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, 0600);
}

/* Field `field` of the entry named `name` in the file (malloc'd). */
static char *entry_field(const char *path, const char *name, const char *field)
{
    char *t = slurp(path);
    cJSON *root = cJSON_Parse(t);
    free(t);
    assert_non_null(root);
    char *out = NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "signers"))
    {
        if (strcmp(cJSON_GetObjectItem(it, "name")->valuestring, name) == 0)
            out = util_strdup(cJSON_GetObjectItem(it, field)->valuestring);
    }
    cJSON_Delete(root);
    assert_non_null(out);
    return out;
}

static void set_entry_field(const char *path, const char *name, const char *field, const char *v)
{
    char *t = slurp(path);
    cJSON *root = cJSON_Parse(t);
    free(t);
    assert_non_null(root);
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "signers"))
    {
        if (strcmp(cJSON_GetObjectItem(it, "name")->valuestring, name) == 0)
            cJSON_ReplaceItemInObject(it, field, cJSON_CreateString(v));
    }
    char *out = cJSON_Print(root);
    spit(path, out);
    free(out);
    cJSON_Delete(root);
}

static void test_kek_parse(void **state)
{
    (void)state;
    keystore_kek k;
    char err[UTIL_ERRLEN];
    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_int_equal(keystore_kek_parse("main", hex, &k, err, sizeof err), 0);
    assert_string_equal(k.id, "main");
    assert_int_equal(k.key[1], 0x11);
    assert_int_equal(k.key[31], 0xff);
    keystore_kek k2;
    char withnl[80];
    snprintf(withnl, sizeof withnl, "0x%s\n", hex);
    assert_int_equal(keystore_kek_parse("main", withnl, &k2, err, sizeof err), 0);
    assert_memory_equal(k.key, k2.key, 32);
    char *b64 = crypto_b64_encode_new(k.key, 32);
    assert_int_equal(keystore_kek_parse("main", b64, &k2, err, sizeof err), 0);
    assert_memory_equal(k.key, k2.key, 32);
    free(b64);
    const char *bad[] = {"",
                         "00112233",
                         "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                         "0000000000000000000000000000000000000000000000000000000000000000",
                         "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8",
                         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(keystore_kek_parse("main", bad[i], &k2, err, sizeof err), -1);
        /* The rejected text never shows up in the error. */
        if (strlen(bad[i]) > 8)
            assert_null(strstr(err, bad[i]));
    }
    assert_int_equal(keystore_kek_parse("bad id", hex, &k2, err, sizeof err), -1);
    assert_int_equal(keystore_kek_parse("", hex, &k2, err, sizeof err), -1);

    setenv("PAIMON_TEST_MK", hex, 1);
    unsetenv("PAIMON_TEST_MK_ID");
    assert_int_equal(keystore_kek_from_env("PAIMON_TEST_MK", &k2, err, sizeof err), 0);
    assert_string_equal(k2.id, "default");
    assert_memory_equal(k.key, k2.key, 32);
    setenv("PAIMON_TEST_MK_ID", "2025-q1", 1);
    assert_int_equal(keystore_kek_from_env("PAIMON_TEST_MK", &k2, err, sizeof err), 0);
    assert_string_equal(k2.id, "2025-q1");
    unsetenv("PAIMON_TEST_MK");
    assert_int_equal(keystore_kek_from_env("PAIMON_TEST_MK", &k2, err, sizeof err), -1);
    assert_non_null(strstr(err, "PAIMON_TEST_MK"));
    keystore_kek_wipe(&k2);
    static const uint8_t zero[32];
    assert_memory_equal(k2.key, zero, 32);
}

static void test_create_unlock_reload(void **state)
{
    fx *f = *state;
    char err[UTIL_ERRLEN];
    keystore *ks = NULL;
    assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0); /* no file yet */
    assert_int_equal(keystore_count(ks), 0);
    uint8_t a1[20], a2[20], key[32], addr[20], derived[20];
    assert_int_equal(keystore_create(ks, &f->k1, "hot", NULL, a1, err, sizeof err), 0);
    assert_int_equal(keystore_import_hex(ks, &f->k1, "dev0", "0x" ANVIL_KEY, a2, err, sizeof err),
                     0);
    char a2s[HEX_ADDR_STRLEN];
    hex_addr_checksum(a2, a2s);
    assert_string_equal(a2s, ANVIL_ADDR);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* No temp files left behind. */
    char cmd[160];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", f->dir);
    assert_int_equal(system(cmd), 0);
    /* The private key never appears in the file, in any case. */
    char *text = slurp(f->path);
    assert_null(strstr(text, ANVIL_KEY));
    assert_non_null(strstr(text, ANVIL_ADDR));
    free(text);

    /* Refusals: existing name, existing key, bad names, bad keys. */
    assert_int_equal(keystore_create(ks, &f->k1, "hot", NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_int_equal(
        keystore_import_hex(ks, &f->k1, "dev0-again", ANVIL_KEY, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "dev0"));
    assert_int_equal(keystore_create(ks, &f->k1, "bad name", NULL, NULL, err, sizeof err), -1);
    assert_int_equal(keystore_create(ks, &f->k1, "", NULL, NULL, err, sizeof err), -1);
    assert_int_equal(keystore_import_hex(ks, &f->k1, "z", "1234", NULL, err, sizeof err), -1);
    uint8_t zero[32] = {0};
    assert_int_equal(keystore_create(ks, &f->k1, "z", zero, NULL, err, sizeof err), -1);
    assert_int_equal(keystore_count(ks), 2);

    keystore_free(ks);
    ks = NULL;
    assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_count(ks), 2);
    keystore_info info;
    assert_int_equal(keystore_get(ks, 0, &info), 0);
    assert_string_equal(info.name, "hot");
    assert_memory_equal(info.address, a1, 20);
    assert_string_equal(info.kek_id, "k1");
    assert_true(info.created_at > util_now_ms() - 60000 && info.created_at <= util_now_ms());
    assert_int_equal(keystore_get(ks, 2, &info), -1);
    assert_int_equal(keystore_find(ks, "dev0", &info), 0);
    assert_memory_equal(info.address, a2, 20);
    assert_int_equal(keystore_find(ks, "nope", &info), -1);

    assert_int_equal(keystore_unlock(ks, &f->k1, "hot", key, addr, err, sizeof err), 0);
    assert_memory_equal(addr, a1, 20);
    assert_int_equal(secp_pubkey_address(key, derived, NULL, 0), 0);
    assert_memory_equal(derived, a1, 20);
    assert_int_equal(keystore_unlock(ks, &f->k1, "dev0", key, addr, err, sizeof err), 0);
    char khex[65];
    hex_encode(key, 32, 0, khex, sizeof khex);
    assert_string_equal(khex, ANVIL_KEY);
    crypto_wipe(key, sizeof key);
    assert_int_equal(keystore_unlock(ks, &f->k1, "missing", key, addr, err, sizeof err), -1);
    keystore_free(ks);
}

static void test_wrong_master_key(void **state)
{
    fx *f = *state;
    char err[UTIL_ERRLEN];
    keystore *ks = NULL;
    uint8_t key[32];
    assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_import_hex(ks, &f->k1, "dev0", ANVIL_KEY, NULL, err, sizeof err), 0);
    /* Same id, other bytes: GCM refuses, and says so. */
    keystore_kek wrong = f->k2;
    util_strlcpy(wrong.id, "k1", sizeof wrong.id);
    assert_int_equal(keystore_unlock(ks, &wrong, "dev0", key, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "wrong master key"));
    assert_null(strstr(err, ANVIL_KEY));
    /* Other id: refused before any decryption, naming both ids. */
    assert_int_equal(keystore_unlock(ks, &f->k2, "dev0", key, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "'k1'"));
    assert_non_null(strstr(err, "'k2'"));
    keystore_free(ks);
}

static void test_rotation(void **state)
{
    fx *f = *state;
    char err[UTIL_ERRLEN];
    keystore *ks = NULL;
    uint8_t key[32], before[3][32];
    const char *names[] = {"hot", "warm-1", "warm-2"};
    assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0);
    char *sealed[3], *wrapped[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(keystore_create(ks, &f->k1, names[i], NULL, NULL, err, sizeof err), 0);
        assert_int_equal(keystore_unlock(ks, &f->k1, names[i], before[i], NULL, err, sizeof err),
                         0);
    }
    for (int i = 0; i < 3; i++) {
        sealed[i] = entry_field(f->path, names[i], "sealed_key");
        wrapped[i] = entry_field(f->path, names[i], "wrapped_dek");
    }

    /* A wrong "old" key fails the whole rotation and leaves the file untouched. */
    keystore_kek wrong = f->k2;
    util_strlcpy(wrong.id, "k1", sizeof wrong.id);
    keystore_kek k3;
    assert_int_equal(
        keystore_kek_parse("k3", "3333333333333333333333333333333333333333333333333333333333333333",
                           &k3, NULL, 0),
        0);
    char *file_before = slurp(f->path);
    size_t n = 99;
    assert_int_equal(keystore_rotate_master(ks, &wrong, &k3, &n, err, sizeof err), -1);
    assert_int_equal(n, 0);
    char *file_after = slurp(f->path);
    assert_string_equal(file_before, file_after);
    free(file_after);
    free(file_before);
    /* Same id twice is refused (entries could not tell the keys apart). */
    keystore_kek same = f->k2;
    util_strlcpy(same.id, "k1", sizeof same.id);
    assert_int_equal(keystore_rotate_master(ks, &f->k1, &same, &n, err, sizeof err), -1);
    assert_int_equal(keystore_unlock(ks, &f->k1, "hot", key, NULL, err, sizeof err), 0);

    assert_int_equal(keystore_rotate_master(ks, &f->k1, &f->k2, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        char *s = entry_field(f->path, names[i], "sealed_key");
        char *w = entry_field(f->path, names[i], "wrapped_dek");
        char *kid = entry_field(f->path, names[i], "kek_id");
        assert_string_equal(s, sealed[i]);      /* byte-identical sealed key */
        assert_string_not_equal(w, wrapped[i]); /* DEK re-wrapped */
        assert_string_equal(kid, "k2");
        free(s);
        free(w);
        free(kid);
    }
    /* Both in memory and after a reload: new key opens, old key does not. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 3; i++) {
            assert_int_equal(keystore_unlock(ks, &f->k2, names[i], key, NULL, err, sizeof err), 0);
            assert_memory_equal(key, before[i], 32);
            assert_int_equal(keystore_unlock(ks, &f->k1, names[i], key, NULL, err, sizeof err), -1);
        }
        keystore_free(ks);
        ks = NULL;
        assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0);
    }
    /* Old key's wrapped DEK spliced back in (with the new id) does not open with k2. */
    set_entry_field(f->path, "hot", "wrapped_dek", wrapped[0]);
    keystore_free(ks);
    assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_unlock(ks, &f->k2, "hot", key, NULL, err, sizeof err), -1);
    /* And a rotation with that broken entry is refused as a whole. */
    assert_int_equal(keystore_rotate_master(ks, &f->k2, &k3, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "hot"));
    assert_int_equal(keystore_unlock(ks, &f->k2, "warm-1", key, NULL, err, sizeof err), 0);
    crypto_wipe(key, sizeof key);
    for (int i = 0; i < 3; i++) {
        free(sealed[i]);
        free(wrapped[i]);
    }
    keystore_free(ks);
}

static void expect_unlock_fails(const char *path, const keystore_kek *kek, const char *name,
                                const char *needle)
{
    char err[UTIL_ERRLEN];
    keystore *ks = NULL;
    uint8_t key[32];
    assert_int_equal(keystore_open(path, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_unlock(ks, kek, name, key, NULL, err, sizeof err), -1);
    if (needle && !strstr(err, needle))
        fail_msg("error '%s' lacks '%s'", err, needle);
    keystore_free(ks);
}

static void expect_open_fails(const char *path, const char *needle)
{
    char err[UTIL_ERRLEN];
    keystore *ks = (keystore *)1;
    assert_int_equal(keystore_open(path, &ks, err, sizeof err), -1);
    assert_null(ks);
    if (needle && !strstr(err, needle))
        fail_msg("error '%s' lacks '%s'", err, needle);
}

/* Flips one base64 digit in the middle to another valid digit. */
static char *flip_b64(const char *s)
{
    char *c = util_strdup(s);
    size_t m = strlen(c) / 2;
    c[m] = c[m] == 'A' ? 'B' : 'A';
    return c;
}

static void test_tampered_file(void **state)
{
    fx *f = *state;
    char err[UTIL_ERRLEN];
    keystore *ks = NULL;
    uint8_t a_other[20];
    assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_import_hex(ks, &f->k1, "dev0", ANVIL_KEY, NULL, err, sizeof err), 0);
    assert_int_equal(keystore_create(ks, &f->k1, "other", NULL, a_other, err, sizeof err), 0);
    keystore_free(ks);
    char *orig = slurp(f->path);
    char *sealed = entry_field(f->path, "dev0", "sealed_key");
    char *wrapped = entry_field(f->path, "dev0", "wrapped_dek");
    char *o_sealed = entry_field(f->path, "other", "sealed_key");
    char *o_wrapped = entry_field(f->path, "other", "wrapped_dek");

    char *t = flip_b64(sealed);
    set_entry_field(f->path, "dev0", "sealed_key", t);
    expect_unlock_fails(f->path, &f->k1, "dev0", "tampered");
    free(t);
    spit(f->path, orig);

    t = flip_b64(wrapped);
    set_entry_field(f->path, "dev0", "wrapped_dek", t);
    expect_unlock_fails(f->path, &f->k1, "dev0", "tampered");
    free(t);
    spit(f->path, orig);

    /* Another entry's sealed key or whole envelope spliced in. */
    set_entry_field(f->path, "dev0", "sealed_key", o_sealed);
    expect_unlock_fails(f->path, &f->k1, "dev0", "tampered");
    set_entry_field(f->path, "dev0", "wrapped_dek", o_wrapped);
    expect_unlock_fails(f->path, &f->k1, "dev0", NULL);
    spit(f->path, orig);

    /* Renamed or re-addressed entries no longer authenticate. */
    set_entry_field(f->path, "dev0", "name", "dev9");
    expect_unlock_fails(f->path, &f->k1, "dev9", NULL);
    spit(f->path, orig);
    set_entry_field(f->path, "dev0", "address", "0x000000000000000000000000000000000000dead");
    expect_unlock_fails(f->path, &f->k1, "dev0", NULL);
    spit(f->path, orig);
    set_entry_field(f->path, "dev0", "kek_id", "k2");
    expect_unlock_fails(f->path, &f->k1, "dev0", "'k2'");
    spit(f->path, orig);

    /* Structural damage is refused at load time. */
    set_entry_field(f->path, "dev0", "sealed_key", "not base64!");
    expect_open_fails(f->path, "sealed_key");
    spit(f->path, orig);
    set_entry_field(f->path, "dev0", "wrapped_dek", "AAAA");
    expect_open_fails(f->path, "wrapped_dek");
    spit(f->path, orig);
    set_entry_field(f->path, "dev0", "address", "0xF39fd6e51aad88F6F4ce6aB8827279cffFb92266");
    expect_open_fails(f->path, "address");
    spit(f->path, orig);
    set_entry_field(f->path, "dev0", "name", "other");
    expect_open_fails(f->path, "duplicate");
    spit(f->path, orig);
    spit(f->path, "{\"format\":\"paimon-keystore\",\"version\":1,\"signers\":[");
    expect_open_fails(f->path, "JSON");
    spit(f->path, "{\"format\":\"paimon-keystore\",\"version\":2,\"signers\":[]}");
    expect_open_fails(f->path, "version");
    spit(f->path, "[]");
    expect_open_fails(f->path, "format");

    /* The untouched file still works. */
    spit(f->path, orig);
    uint8_t key[32];
    assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_unlock(ks, &f->k1, "dev0", key, NULL, err, sizeof err), 0);
    keystore_free(ks);
    free(orig);
    free(sealed);
    free(wrapped);
    free(o_sealed);
    free(o_wrapped);
}

/* An entry that authenticates but whose key is not the recorded address: built by
 * hand with the documented envelope (someone with the KEK writing a bad entry). */
static void test_address_mismatch(void **state)
{
    fx *f = *state;
    uint8_t k[32], dek[32], addr_wrong[20];
    assert_int_equal(hex_decode_fixed(ANVIL_KEY, k, 32, NULL, 0), 0);
    assert_int_equal(util_random(dek, 32), 0);
    assert_int_equal(
        hex_addr_parse("0x70997970c51812dc3a010c7d01b50e0d17dc79c8", addr_wrong, NULL, 0), 0);
    char aad[256];
    uint8_t *sealed, *wrapped;
    size_t sl, wl;
    snprintf(aad, sizeof aad, "x|0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
    assert_int_equal(crypto_gcm_seal(dek, aad, strlen(aad), k, 32, &sealed, &sl, NULL, 0), 0);
    snprintf(aad, sizeof aad, "paimon-dek-v1|x|0x70997970c51812dc3a010c7d01b50e0d17dc79c8|k1");
    assert_int_equal(crypto_gcm_seal(f->k1.key, aad, strlen(aad), dek, 32, &wrapped, &wl, NULL, 0),
                     0);
    char *s64 = crypto_b64_encode_new(sealed, sl), *w64 = crypto_b64_encode_new(wrapped, wl);
    char text[1024];
    snprintf(text, sizeof text,
             "{\"format\":\"paimon-keystore\",\"version\":1,\"signers\":[{\"name\":\"x\","
             "\"address\":\"0x70997970c51812dc3a010c7d01b50e0d17dc79c8\",\"kek_id\":\"k1\","
             "\"wrapped_dek\":\"%s\",\"sealed_key\":\"%s\",\"created_at\":1}]}",
             w64, s64);
    spit(f->path, text);
    expect_unlock_fails(f->path, &f->k1, "x", "address mismatch");
    /* Rotation refuses to re-wrap it. */
    char err[UTIL_ERRLEN];
    keystore *ks = NULL;
    assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_rotate_master(ks, &f->k1, &f->k2, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "address mismatch"));
    keystore_free(ks);
    free(sealed);
    free(wrapped);
    free(s64);
    free(w64);
    crypto_wipe(k, 32);
}

static void test_file_mode(void **state)
{
    fx *f = *state;
    char err[UTIL_ERRLEN];
    keystore *ks = NULL;
    assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_create(ks, &f->k1, "hot", NULL, NULL, err, sizeof err), 0);
    keystore_free(ks);
    assert_int_equal(chmod(f->path, 0644), 0);
    expect_open_fails(f->path, "chmod 600");
    assert_int_equal(chmod(f->path, 0660), 0);
    expect_open_fails(f->path, "0660");
    assert_int_equal(chmod(f->path, 0400), 0);
    assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0);
    keystore_free(ks);
    /* A rewrite restores 0600 regardless of what was there. */
    assert_int_equal(chmod(f->path, 0600), 0);
    assert_int_equal(keystore_open(f->path, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_create(ks, &f->k1, "warm", NULL, NULL, err, sizeof err), 0);
    keystore_free(ks);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A directory or a symlink is not a keystore. */
    expect_open_fails(f->dir, NULL);
    char link[160];
    snprintf(link, sizeof link, "%s/link.json", f->dir);
    assert_int_equal(symlink(f->path, link), 0);
    expect_open_fails(link, NULL);
    /* A write into a directory that is gone fails cleanly and keeps memory as it was. */
    char gone[160];
    snprintf(gone, sizeof gone, "%s/nodir/keys.json", f->dir);
    assert_int_equal(keystore_open(gone, &ks, err, sizeof err), 0);
    assert_int_equal(keystore_create(ks, &f->k1, "hot", NULL, NULL, err, sizeof err), -1);
    assert_int_equal(keystore_count(ks), 0);
    keystore_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kek_parse),
        cmocka_unit_test_setup_teardown(test_create_unlock_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_master_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
