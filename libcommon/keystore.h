/* keystore: signer private keys at rest, with envelope encryption.
 *
 * Each signer (name, address) has its own random 32-byte data key (DEK). The
 * secp256k1 private key is sealed with the DEK, and the DEK is wrapped with the
 * master key (KEK) that comes from the environment / a Kubernetes secret. Rotating
 * the master key therefore re-wraps only the DEKs: the sealed private keys stay
 * byte-for-byte identical, and a leaked old KEK is useless once the file that
 * holds DEKs wrapped by it is gone.
 *
 * Both layers are AES-256-GCM (crypto_gcm_seal) and bound to their context by AAD,
 * so an entry cannot be renamed, re-addressed or spliced from another entry:
 *     sealed_key  = seal(DEK, key32, aad = name "|" address)
 *     wrapped_dek = seal(KEK, DEK,   aad = "paimon-dek-v1|" name "|" address "|" kek_id)
 * where address is "0x" + 40 lowercase hex digits. Unlocking also re-derives the
 * address from the key and refuses a mismatch.
 *
 * File: JSON, mode 0600, written atomically (temp file + fsync + rename + fsync of
 * the directory), so a crash leaves either the old or the new file, never half:
 *     {"format":"paimon-keystore","version":1,"signers":[{"name":..,"address":..,
 *      "kek_id":..,"wrapped_dek":<base64>,"sealed_key":<base64>,"created_at":<ms>}]}
 * Loading refuses a file readable or writable by group/others, malformed entries,
 * duplicate names or addresses. One process should write a keystore at a time
 * (the admin tool); daemons only read it.
 *
 * Nothing here logs, and no error message ever contains key material.
 *
 * Memory: keystore_open/_free own the keystore. Unlocked private keys go into
 * caller buffers that the caller wipes with crypto_wipe(). keystore_info strings
 * are borrowed from the keystore and valid until the next mutation or free. */
#ifndef PAIMON_KEYSTORE_H
#define PAIMON_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#define KEYSTORE_NAME_MAX 64 /* signer names and key ids: 1..64 of [A-Za-z0-9._-] */
#define KEYSTORE_KEY_LEN  32

/* A master key and its id (the id is recorded in each entry it wraps). */
typedef struct keystore_kek {
    char id[KEYSTORE_NAME_MAX + 1];
    uint8_t key[32];
} keystore_kek;

typedef struct keystore_info {
    const char *name;
    uint8_t address[20];
    const char *kek_id;
    int64_t created_at; /* ms since the epoch */
} keystore_info;

typedef struct keystore keystore;

/* Master key from text: 64 hex digits (optional "0x") or standard base64 of 32
 * bytes; trailing whitespace (a newline from a secret file) is ignored. An all-zero
 * key is refused. */
int keystore_kek_parse(const char *id, const char *text, keystore_kek *out, char *err,
                       size_t errlen);
/* From the environment: the key from variable `var` (NULL = "PAIMON_MASTER_KEY")
 * and its id from `var`_ID (default "default"). */
int keystore_kek_from_env(const char *var, keystore_kek *out, char *err, size_t errlen);
void keystore_kek_wipe(keystore_kek *k);

/* Loads path; a missing file is an empty keystore (the file is created by the
 * first create/import). */
int keystore_open(const char *path, keystore **out, char *err, size_t errlen);
void keystore_free(keystore *ks);

/* Adds a signer and saves the file. key = NULL generates a fresh random key.
 * Refuses an existing name or address. addr (may be NULL) receives the address. */
int keystore_create(keystore *ks, const keystore_kek *kek, const char *name,
                    const uint8_t key[KEYSTORE_KEY_LEN], uint8_t addr[20], char *err,
                    size_t errlen);
/* Same from a private key in hex (64 digits, optional "0x"). */
int keystore_import_hex(keystore *ks, const keystore_kek *kek, const char *name,
                        const char *key_hex, uint8_t addr[20], char *err, size_t errlen);

size_t keystore_count(const keystore *ks);
/* i-th entry (file order); -1 if out of range. */
int keystore_get(const keystore *ks, size_t i, keystore_info *out);
/* By name; -1 if there is no such signer. */
int keystore_find(const keystore *ks, const char *name, keystore_info *out);

/* Decrypts signer `name` into key (caller wipes) and checks it derives the
 * recorded address; addr (may be NULL) receives it. Refuses a KEK whose id differs
 * from the entry's, a wrong KEK, a tampered entry, an address mismatch. */
int keystore_unlock(const keystore *ks, const keystore_kek *kek, const char *name,
                    uint8_t key[KEYSTORE_KEY_LEN], uint8_t addr[20], char *err, size_t errlen);

/* Re-wraps every DEK from old_kek to new_kek (different ids) and saves the file.
 * All-or-nothing: every entry is first fully unlocked and checked with old_kek
 * (entries already under new_kek are checked with it and kept), and nothing
 * changes, on disk or in memory, unless all succeed. *rotated (may be NULL) = the
 * number of entries re-wrapped. Sealed keys are left byte-identical. */
int keystore_rotate_master(keystore *ks, const keystore_kek *old_kek, const keystore_kek *new_kek,
                           size_t *rotated, char *err, size_t errlen);

#endif
