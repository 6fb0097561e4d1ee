/* paimon-keys: the operator's tool for the encrypted signer keystore (keystore.h).
 *
 *   paimon-keys --keystore PATH list
 *   paimon-keys --keystore PATH create NAME      generate a key; prints its address
 *   paimon-keys --keystore PATH import NAME      private key (hex) read from stdin, never argv
 *   paimon-keys --keystore PATH rotate NEWVAR    re-wrap every data key from the master key
 *                                                in PAIMON_MASTER_KEY(_ID) to the one in
 *                                                NEWVAR(_ID); sealed keys stay byte-identical
 *
 * The master key comes from the environment (PAIMON_MASTER_KEY, PAIMON_MASTER_KEY_ID), as
 * the daemons read it. Exit codes: 0 ok, 1 error, 2 usage. */
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "hex.h"
#include "keystore.h"
#include "util.h"

static int usage(void)
{
    fputs("usage: paimon-keys --keystore PATH list | create NAME | import NAME | rotate NEWVAR\n",
          stderr);
    return 2;
}

static void print_entry(const keystore_info *in)
{
    char addr[HEX_ADDR_STRLEN];
    hex_addr_checksum(in->address, addr);
    printf("%s\t%s\tkek=%s\n", in->name, addr, in->kek_id);
}

static int read_key_from_stdin(char *buf, size_t len)
{
    if (!fgets(buf, (int)len, stdin))
        return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf[0] ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[1], "--keystore") != 0)
        return usage();
    const char *path = argv[2], *cmd = argv[3], *arg = argc > 4 ? argv[4] : NULL;
    char err[UTIL_ERRLEN];
    keystore *ks = NULL;
    if (keystore_open(path, &ks, err, sizeof err) != 0) {
        fprintf(stderr, "paimon-keys: %s\n", err);
        return 1;
    }
    int rc = 1;
    keystore_kek kek = {0}, next = {0};
    if (strcmp(cmd, "list") == 0 && !arg) {
        for (size_t i = 0; i < keystore_count(ks); i++) {
            keystore_info in;
            if (keystore_get(ks, i, &in) == 0)
                print_entry(&in);
        }
        rc = 0;
    } else if ((strcmp(cmd, "create") == 0 || strcmp(cmd, "import") == 0) && arg) {
        uint8_t addr[20];
        char keyhex[160] = "";
        if (keystore_kek_from_env(NULL, &kek, err, sizeof err) != 0)
            fprintf(stderr, "paimon-keys: %s\n", err);
        else if (strcmp(cmd, "import") == 0 && read_key_from_stdin(keyhex, sizeof keyhex) != 0)
            fprintf(stderr, "paimon-keys: import reads the private key (hex) from stdin\n");
        else if ((strcmp(cmd, "create") == 0
                      ? keystore_create(ks, &kek, arg, NULL, addr, err, sizeof err)
                      : keystore_import_hex(ks, &kek, arg, keyhex, addr, err, sizeof err)) != 0)
            fprintf(stderr, "paimon-keys: %s\n", err);
        else {
            keystore_info in;
            keystore_find(ks, arg, &in);
            print_entry(&in);
            rc = 0;
        }
        crypto_wipe(keyhex, sizeof keyhex);
    } else if (strcmp(cmd, "rotate") == 0 && arg) {
        size_t rotated = 0;
        if (keystore_kek_from_env(NULL, &kek, err, sizeof err) != 0 ||
            keystore_kek_from_env(arg, &next, err, sizeof err) != 0 ||
            keystore_rotate_master(ks, &kek, &next, &rotated, err, sizeof err) != 0)
            fprintf(stderr, "paimon-keys: %s\n", err);
        else {
            printf("rotated %zu signer(s) to master key %s\n", rotated, next.id);
            rc = 0;
        }
    } else {
        rc = usage();
    }
    keystore_kek_wipe(&kek);
    keystore_kek_wipe(&next);
    keystore_free(ks);
    return rc;
}
