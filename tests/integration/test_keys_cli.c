/* The paimon-keys operator tool end to end: create, import from stdin, list, rotate the
 * master key; addresses checked against cast, the rotated store unlocked with the new
 * master key only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "keystore.h"
#include "util.h"

#define OLD_KEK "1111111111111111111111111111111111111111111111111111111111111111"
#define NEW_KEK "2222222222222222222222222222222222222222222222222222222222222222"
#define DEV_KEY "0x4646464646464646464646464646464646464646464646464646464646464646"

static void test_create_import_list_rotate(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/keys_cli_%d.json", getenv("PAIMON_TEST_RUN_DIR"), getpid());
    remove(path);
    const char *env = "PAIMON_MASTER_KEY=" OLD_KEK " PAIMON_MASTER_KEY_ID=k1 "
                      "NEXT_KEY=" NEW_KEK " NEXT_KEY_ID=k2";
    const char *bin = th_bin("paimon-keys");
    char *out = th_sh("%s '%s' --keystore '%s' create hot", env, bin, path);
    assert_non_null(strstr(out, "hot\t0x"));
    free(out);
    out = th_sh("echo %s | %s '%s' --keystore '%s' import warm", DEV_KEY, env, bin, path);
    char want[64];
    char args[160];
    snprintf(args, sizeof args, "wallet address --private-key %s", DEV_KEY);
    assert_int_equal(th_cast(args, want, sizeof want), 0);
    assert_non_null(strstr(out, want)); /* same address as an independent implementation */
    free(out);

    int rc;
    out = th_sh_rc(&rc, "%s '%s' --keystore '%s' create hot 2>&1", env, bin, path);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "already exists"));
    free(out);
    out = th_sh_rc(&rc, "%s '%s' --keystore '%s' import cold < /dev/null 2>&1", env, bin, path);
    assert_int_equal(rc, 1);
    free(out);
    out = th_sh_rc(&rc, "'%s' --keystore '%s' bogus 2>&1", bin, path);
    assert_int_equal(rc, 2);
    free(out);

    out = th_sh("%s '%s' --keystore '%s' rotate NEXT_KEY", env, bin, path);
    assert_non_null(strstr(out, "rotated 2 signer(s) to master key k2"));
    free(out);
    out = th_sh("'%s' --keystore '%s' list", bin, path);
    assert_non_null(strstr(out, "warm\t"));
    assert_non_null(strstr(out, "kek=k2"));
    assert_null(strstr(out, "kek=k1"));
    free(out);

    keystore *ks = NULL;
    char err[UTIL_ERRLEN];
    assert_int_equal(keystore_open(path, &ks, err, sizeof err), 0);
    keystore_kek oldk, newk;
    assert_int_equal(keystore_kek_parse("k1", OLD_KEK, &oldk, err, sizeof err), 0);
    assert_int_equal(keystore_kek_parse("k2", NEW_KEK, &newk, err, sizeof err), 0);
    uint8_t key[32], addr[20];
    assert_int_equal(keystore_unlock(ks, &oldk, "warm", key, addr, err, sizeof err), -1);
    assert_int_equal(keystore_unlock(ks, &newk, "warm", key, addr, err, sizeof err), 0);
    assert_int_equal(key[0], 0x46);
    keystore_free(ks);
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_import_list_rotate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
