/* jwt: JSON Web Tokens (RFC 7519) signed with HMAC-SHA256, the only algorithm the
 * gateway accepts. The header is fixed at signing; at verification the header must
 * name exactly "HS256" (so "none", "HS512", "RS256" and any algorithm-confusion trick
 * are refused before the MAC is even computed), the signature is compared in constant
 * time, and "exp" is mandatory.
 *
 * Memory: jwt_sign_new returns an owned string (free); jwt_verify hands the caller an
 * owned claims object (cJSON_Delete) only on success. Keys and claims passed in are
 * borrowed. */
#ifndef PAIMON_API_JWT_H
#define PAIMON_API_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define JWT_MAX_LEN     4096 /* longer tokens are refused unparsed */
#define JWT_MIN_KEY_LEN 32   /* HS256 keys shorter than the hash are brute-forceable */

/* Token for claims (a JSON object) under key. NULL on failure (err filled). */
char *jwt_sign_new(const cJSON *claims, const uint8_t *key, size_t keylen, char *err,
                   size_t errlen);
/* Checks structure, header, signature, exp (required) and nbf (optional) against now_s
 * with leeway_s seconds of clock skew. 0 with *claims set, or -1 (err filled). */
int jwt_verify(const char *token, const uint8_t *key, size_t keylen, int64_t now_s,
               int64_t leeway_s, cJSON **claims, char *err, size_t errlen);

/* base64url without padding (RFC 7515 §2), exposed for tests. Owned results. */
char *jwt_b64url_encode_new(const uint8_t *in, size_t n);
/* Strict: only the URL-safe alphabet, no padding, no impossible lengths. */
int jwt_b64url_decode_new(const char *s, size_t slen, uint8_t **out, size_t *outlen);

#endif
