/* signer: one interface for signing Ethereum transactions, two backends.
 *
 *  - local: a key from the encrypted keystore (keystore.h). The key is unlocked
 *    once, when the signer is created, and kept for the signer's lifetime in its
 *    own page that is mlock'ed (never swapped) and excluded from core dumps
 *    (MADV_DONTDUMP) and from fork()ed children (MADV_DONTFORK), then wiped and
 *    unmapped by signer_free. Unlocking per call would not be safer: the master
 *    key would have to stay in memory instead, and it opens every signer, not one.
 *    If mlock is refused (RLIMIT_MEMLOCK) a warning is logged and the key is still
 *    kept only in that page.
 *  - remote: a Web3Signer (or any KMS/HSM front speaking its JSON-RPC) reached with
 *    libcurl: eth_signTransaction with {from, to, gas, gasPrice | maxFeePerGas +
 *    maxPriorityFeePerGas, value, data, nonce, chainId} as hex quantities; the
 *    result is the signed raw tx as hex. The remote side is untrusted input: the
 *    raw tx is decoded (ethtx_decode) and accepted only if every field equals the
 *    request and the recovered sender is the configured address.
 *
 * Both backends re-decode what they produce and check the sender, so a caller
 * holding a signed tx from this module knows it is exactly what it asked for.
 *
 * Thread safety: a signer may be shared by threads once created (the local key is
 * read-only; a remote call uses its own curl handle). Create and free from one thread.
 *
 * Memory: signer_*_new / signer_from_env create, signer_free destroys. Raw txs
 * returned by signer_sign_tx are malloc'd and owned by the caller. */
#ifndef PAIMON_SIGNER_H
#define PAIMON_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "ethtx.h"
#include "keystore.h"

typedef struct signer signer;

typedef enum { SIGNER_LOCAL = 0, SIGNER_REMOTE = 1 } signer_backend;

/* Unlocks signer `name` from ks with kek; ks and kek are only borrowed for the call. */
int signer_local_new(const keystore *ks, const keystore_kek *kek, const char *name, signer **out,
                     char *err, size_t errlen);
/* From a raw private key (dev chains, tests); the key is copied into locked memory. */
int signer_local_from_key(const uint8_t key[32], signer **out, char *err, size_t errlen);

typedef struct signer_remote_opts {
    const char *url;            /* http(s)://host[:port][/path] of the JSON-RPC endpoint */
    uint8_t address[20];        /* the account Web3Signer signs for (expected sender) */
    int64_t timeout_ms;         /* whole request; 0 = 10000 */
    int64_t connect_timeout_ms; /* 0 = 2000 */
    const char *tls_ca_file;    /* PEM bundle to verify the server; NULL = system store */
    const char *tls_cert_file;  /* client certificate (mTLS); NULL = none */
    const char *tls_key_file;   /* its private key; required with tls_cert_file */
    int tls_insecure;           /* 1 = do not verify the server (test setups only) */
} signer_remote_opts;

/* Strings in opts are copied. Nothing is sent until the first signature. */
int signer_remote_new(const signer_remote_opts *opts, signer **out, char *err, size_t errlen);

/* Builds a signer from the environment, variables named <prefix>_* (prefix NULL =
 * "PAIMON_SIGNER"); every problem is reported at once as in config.h:
 *   <prefix>_BACKEND          local | remote (default local)
 *   local:  <prefix>_KEYSTORE (path), <prefix>_NAME, and the master key from
 *           PAIMON_MASTER_KEY / PAIMON_MASTER_KEY_ID (keystore_kek_from_env)
 *   remote: <prefix>_URL, <prefix>_ADDRESS, <prefix>_TIMEOUT (10s),
 *           <prefix>_CONNECT_TIMEOUT (2s), <prefix>_TLS_CA, <prefix>_TLS_CERT,
 *           <prefix>_TLS_KEY (default none), <prefix>_TLS_INSECURE (false) */
int signer_from_env(const char *prefix, signer **out, char *err, size_t errlen);

/* What a daemon signs with: a raw development key (dev_key_hex, 0x + 32 bytes; for
 * the devchain only) when given, else signer_from_env(NULL). With optional set, no
 * dev key and neither PAIMON_SIGNER_KEYSTORE nor PAIMON_SIGNER_BACKEND configured
 * means "no signer": 0 and *out NULL. 1 with *out (caller frees), -1 with err. */
int signer_open(const char *dev_key_hex, int optional, signer **out, char *err, size_t errlen);

void signer_free(signer *s);

/* The sender address (20 bytes, borrowed from s). */
const uint8_t *signer_address(const signer *s);
signer_backend signer_backend_of(const signer *s);

/* Signs tx (chain_id >= 1). On success *raw (malloc'd) / *raw_len hold the signed
 * tx ready for eth_sendRawTransaction and hash (may be NULL) its hash. On failure
 * *raw is NULL and err says why (timeout, HTTP status, JSON-RPC error, or which
 * field of a remote answer differed from the request). */
int signer_sign_tx(signer *s, const ethtx *tx, uint8_t **raw, size_t *raw_len, uint8_t hash[32],
                   char *err, size_t errlen);

/* Readiness check: local always 0; remote asks eth_accounts and requires the
 * configured address among them (a misconfigured signer fails at start-up, not at
 * the first redemption). */
int signer_check(signer *s, char *err, size_t errlen);

#endif
