/* siwe: Sign-In with Ethereum (EIP-4361) messages — strict parsing of the text a
 * wallet signs, the checks the relying party must make (domain, chain id, nonce,
 * issued-at / expiration / not-before), and recovery of the signer with EIP-191
 * personal_sign.
 *
 * Memory: siwe_parse fills a caller struct whose strings are fixed-size copies; nothing
 * is allocated. Inputs are borrowed. */
#ifndef PAIMON_API_SIWE_H
#define PAIMON_API_SIWE_H

#include <stddef.h>
#include <stdint.h>

#define SIWE_MAX_MESSAGE 4096

typedef struct siwe_message {
    char scheme[16];
    char domain[256];
    char address[43]; /* as written (EIP-55 checksummed or all lower-case) */
    uint8_t addr[20];
    char statement[512];
    char uri[512];
    char version[8];
    uint64_t chain_id;
    char nonce[96];
    int64_t issued_at_ms;
    int64_t expiration_ms; /* 0 = none */
    int64_t not_before_ms; /* 0 = none */
    char request_id[128];
    int nresources;
} siwe_message;

/* RFC 3339 date-time ("2026-01-02T03:04:05.678Z", "+01:00" offsets) -> ms since epoch. */
int siwe_parse_time(const char *s, int64_t *ms);
int siwe_parse(const char *text, siwe_message *m, char *err, size_t errlen);

typedef struct siwe_expect {
    const char *domain;
    uint64_t chain_id;
    const char *nonce; /* the server-issued nonce the message must carry */
    int64_t now_ms;
    int64_t max_age_ms; /* issued-at may be at most this old */
    int64_t skew_ms;    /* tolerated clock skew */
} siwe_expect;
/* Checks the parsed fields against what the server expects. 0 or -1 (client-safe err). */
int siwe_check(const siwe_message *m, const siwe_expect *x, char *err, size_t errlen);
/* Recovers the signer of text (personal_sign, 0x-hex 65-byte signature) and checks it is
 * the message's address. 0 or -1. */
int siwe_verify_signature(const char *text, const siwe_message *m, const char *sig_hex, char *err,
                          size_t errlen);

#endif
