/* secret: channel and webhook secrets. A secret is either the name of an environment
 * variable (read at use, never stored) or a value sealed with AES-256-GCM
 * (libcommon/crypto) under the master key from PAIMON_MASTER_KEY (64 hex digits), with
 * the owning row's id as AAD so a blob copied onto another row does not open.
 * Plaintext secrets are wiped after use; nothing here logs.
 *
 * Memory: *_new results and sealed blobs are malloc'd, owned by the caller (plaintext:
 * secret_free, which wipes). */
#ifndef PAIMON_NOTIFIER_SECRET_H
#define PAIMON_NOTIFIER_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define SECRET_KEY_LEN 32
#define SECRET_MAX     4096

/* Loads PAIMON_MASTER_KEY; 0 ok, -1 when unset or malformed (err says which). */
int secret_master_key(uint8_t key[SECRET_KEY_LEN], char *err, size_t errlen);
int secret_parse_key(const char *hex, uint8_t key[SECRET_KEY_LEN], char *err, size_t errlen);

int secret_seal(const uint8_t key[SECRET_KEY_LEN], const char *aad, const char *plain,
                uint8_t **out, size_t *outlen, char *err, size_t errlen);
char *secret_open_new(const uint8_t key[SECRET_KEY_LEN], const char *aad, const uint8_t *blob,
                      size_t len, char *err, size_t errlen);

/* The secret of a row: from env_name when set (must be non-empty), else the sealed blob
 * (needs the master key). NULL with a reason when neither yields a value. */
char *secret_resolve_new(const char *env_name, const uint8_t *sealed, size_t sealed_len,
                         const char *aad, char *err, size_t errlen);

/* 1 when env_name is [A-Z_][A-Z0-9_]* and starts with PAIMON_ (a channel must not be
 * pointed at arbitrary process variables such as the database URL). */
int secret_env_name_ok(const char *env_name);

void secret_free(char *s);

#endif
