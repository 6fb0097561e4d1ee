/* secp: secp256k1 keys and recoverable ECDSA signatures as Ethereum uses them —
 * address derivation, signing a 32-byte hash, and recovering the signer's address.
 *
 * One libsecp256k1 context is created and randomized on first use (pthread_once)
 * and shared read-only by every thread. Private keys are always 32 big-endian
 * bytes owned by the caller; this module never keeps a copy and wipes the stack
 * temporaries that held secret material. Nothing here allocates. */
#ifndef PAIMON_SECP_H
#define PAIMON_SECP_H

#include <stddef.h>
#include <stdint.h>

#define SECP_KEY_LEN  32
#define SECP_SIG_LEN  65 /* r(32) || s(32) || v(1) */
#define SECP_ADDR_LEN 20

/* Flag for secp_recover_address_ex: reject s > n/2 (EIP-2). Transactions and
 * approval signatures use it so one signature has exactly one accepted form. */
#define SECP_RECOVER_LOW_S 1

/* 0 if key is a valid private key (1 <= key < n), else -1. */
int secp_key_check(const uint8_t key[32], char *err, size_t errlen);
/* A fresh random private key from the OS RNG (dev accounts, tests). */
int secp_key_random(uint8_t key[32], char *err, size_t errlen);

/* 64-byte uncompressed public key (x || y, without the 0x04 prefix). */
int secp_pubkey(const uint8_t key[32], uint8_t pub[64], char *err, size_t errlen);
/* Ethereum address of a public key: last 20 bytes of keccak256(x || y). */
void secp_pubkey_to_address(const uint8_t pub[64], uint8_t addr[20]);
/* Ethereum address of a private key. */
int secp_pubkey_address(const uint8_t key[32], uint8_t addr[20], char *err, size_t errlen);

/* Deterministic (RFC 6979) recoverable signature, always low-s, v in {0,1}. */
int secp_sign_hash(const uint8_t key[32], const uint8_t hash[32],
                   uint8_t sig[65] /* r||s||v, v in {0,1} */, char *err, size_t errlen);

/* Signer's address; v may be 0/1 or 27/28. Accepts high-s (like the ecrecover
 * precompile); use secp_recover_address_ex with SECP_RECOVER_LOW_S to refuse it.
 * r and s must be in [1, n). */
int secp_recover_address(const uint8_t hash[32], const uint8_t sig[65] /* v in {0,1,27,28} */,
                         uint8_t addr[20], char *err, size_t errlen);
int secp_recover_address_ex(const uint8_t hash[32], const uint8_t sig[65], int flags,
                            uint8_t addr[20], char *err, size_t errlen);

/* 1 if s (bytes 32..63 of sig) is <= n/2, else 0. */
int secp_sig_is_low_s(const uint8_t sig[65]);
/* "0x" + 130 hex digits (r||s||v); v must be 0, 1, 27 or 28. */
int secp_sig_parse_hex(const char *s, uint8_t sig[65], char *err, size_t errlen);

#endif
