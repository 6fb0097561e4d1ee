/* pw: argon2id password hashes (see pw.h). */
#include "pw.h"

#include "util.h"

#include <argon2.h>
#include <stdlib.h>
#include <string.h>

static uint32_t T_COST = 2, M_COST = 19456;

void pw_set_cost(uint32_t t_cost, uint32_t m_cost_kib)
{
    T_COST = t_cost ? t_cost : 1;
    M_COST = m_cost_kib >= 8 ? m_cost_kib : 8;
}

int pw_policy_check(const char *password, char *err, size_t errlen)
{
    size_t n = password ? strnlen(password, PW_MAX_LEN + 1) : 0;
    if (n < PW_MIN_LEN)
        return util_err(err, errlen, "password must have at least %d characters", PW_MIN_LEN);
    if (n > PW_MAX_LEN)
        return util_err(err, errlen, "password must have at most %d characters", PW_MAX_LEN);
    return 0;
}

char *pw_hash_new(const char *password, char *err, size_t errlen)
{
    size_t n = password ? strnlen(password, PW_MAX_LEN + 1) : 0;
    if (!password || n > PW_MAX_LEN) {
        util_err(err, errlen, "pw: bad password");
        return NULL;
    }
    uint8_t salt[16];
    if (util_random(salt, sizeof salt) != 0) {
        util_err(err, errlen, "pw: no randomness");
        return NULL;
    }
    size_t enclen = argon2_encodedlen(T_COST, M_COST, 1, sizeof salt, 32, Argon2_id);
    char *enc = util_malloc(enclen);
    int rc =
        argon2id_hash_encoded(T_COST, M_COST, 1, password, n, salt, sizeof salt, 32, enc, enclen);
    if (rc != ARGON2_OK) {
        free(enc);
        util_err(err, errlen, "pw: %s", argon2_error_message(rc));
        return NULL;
    }
    return enc;
}

int pw_verify(const char *encoded, const char *password)
{
    if (!encoded || !password || strncmp(encoded, "$argon2id$", 10) != 0)
        return -1;
    size_t n = strnlen(password, PW_MAX_LEN + 1);
    if (n > PW_MAX_LEN)
        return 0;
    int rc = argon2id_verify(encoded, password, n);
    if (rc == ARGON2_OK)
        return 1;
    if (rc == ARGON2_VERIFY_MISMATCH)
        return 0;
    return -1;
}
