/* pw: password hashing with argon2id (libargon2), in the PHC string format
 * "$argon2id$v=19$m=...,t=...,p=...$salt$hash" so the parameters travel with the hash
 * and can be raised later without invalidating stored passwords.
 *
 * Memory: pw_hash_new returns an owned string (free). Passwords are borrowed. */
#ifndef PAIMON_API_PW_H
#define PAIMON_API_PW_H

#include <stddef.h>
#include <stdint.h>

#define PW_MIN_LEN 12
#define PW_MAX_LEN 256 /* bounds the hashing work an attacker can ask for */

/* Cost for new hashes (defaults: t=2, m=19456 KiB, p=1, the OWASP minimum for
 * argon2id). Tests lower it; call before threads start. */
void pw_set_cost(uint32_t t_cost, uint32_t m_cost_kib);
/* 0 when the password meets the policy (length), else -1 with a client-safe reason. */
int pw_policy_check(const char *password, char *err, size_t errlen);
char *pw_hash_new(const char *password, char *err, size_t errlen);
/* 1 password matches, 0 it does not, -1 the stored hash is not argon2id / malformed. */
int pw_verify(const char *encoded, const char *password);

#endif
