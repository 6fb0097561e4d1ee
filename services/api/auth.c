/* auth: login, refresh rotation with reuse detection, logout, SIWE, API keys and user
 * administration handlers (see handlers.h). */
#include "handlers.h"

#include "crypto.h"
#include "hex.h"
#include "jwt.h"
#include "log.h"
#include "pw.h"
#include "siwe.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void sha_hex(const char *s, char out[CRYPTO_SHA256_HEXLEN])
{
    uint8_t d[CRYPTO_SHA256_LEN];
    crypto_sha256(s, strlen(s), d, NULL, 0);
    hex_encode(d, sizeof d, 0, out, CRYPTO_SHA256_HEXLEN);
}

/* "<prefix><base64url of n random bytes>" (owned). */
static char *random_token(const char *prefix, size_t n)
{
    uint8_t b[48];
    if (n > sizeof b || util_random(b, n) != 0)
        return NULL;
    char *t = jwt_b64url_encode_new(b, n);
    crypto_wipe(b, sizeof b);
    size_t pl = strlen(prefix), tl = strlen(t);
    char *out = util_malloc(pl + tl + 1);
    memcpy(out, prefix, pl);
    memcpy(out + pl, t, tl + 1);
    free(t);
    return out;
}

/* ---------- token issuance ---------- */

typedef struct issue {
    const char *user_id;
    const char *family; /* NULL = new family */
    char *refresh;      /* out, owned */
    int64_t ttl_ms;
} issue;

static int insert_refresh(db_conn *dc, issue *is, char *err, size_t errlen)
{
    is->refresh = random_token("rt_", 32);
    if (!is->refresh)
        return util_err(err, errlen, "no randomness");
    char hash[CRYPTO_SHA256_HEXLEN], ttl[32];
    sha_hex(is->refresh, hash);
    snprintf(ttl, sizeof ttl, "%lld milliseconds", (long long)is->ttl_ms);
    const char *p[] = {is->family, is->user_id, hash, ttl};
    PGresult *r = db_query_prepared(
        dc, "auth_rt_insert",
        "INSERT INTO api.refresh_tokens (family_id, user_id, token_hash, expires_at) VALUES "
        "(COALESCE($1::uuid, gen_random_uuid()), $2, $3, now() + $4::interval)",
        4, p, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static cJSON *user_json(PGresult *r, int row, int c_id, int c_email, int c_role)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "id", PQgetvalue(r, row, c_id));
    if (PQgetisnull(r, row, c_email))
        cJSON_AddNullToObject(u, "email");
    else
        cJSON_AddStringToObject(u, "email", PQgetvalue(r, row, c_email));
    cJSON_AddStringToObject(u, "role", PQgetvalue(r, row, c_role));
    return u;
}

/* Replies 200 with tokens for the user in row of r (id, email, role). */
static void reply_tokens(gw_ctx *c, const char *user_id, rbac_role role, const char *wallet,
                         const char *refresh, cJSON *user)
{
    char err[UTIL_ERRLEN];
    char *at = gw_access_token_new(gw_of(c), user_id, role, wallet, err, sizeof err);
    if (!at) {
        cJSON_Delete(user);
        gw_internal(c, err);
        return;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "accessToken", at);
    cJSON_AddStringToObject(d, "refreshToken", refresh);
    cJSON_AddStringToObject(d, "tokenType", "Bearer");
    cJSON_AddNumberToObject(d, "expiresIn", (double)(gw_cfg(c)->access_ttl_ms / 1000));
    cJSON_AddItemToObject(d, "user", user);
    free(at);
    gw_ok(c, 200, d);
}

/* ---------- login ---------- */

static int login_throttled(gw_ctx *c, const char *email, int commit)
{
    char err[UTIL_ERRLEN], key[200], eh[CRYPTO_SHA256_HEXLEN];
    redisContext *rc = gw_redis(c, err, sizeof err);
    if (!rc)
        return commit ? 0 : -2;
    sha_hex(email, eh);
    rl_result a, b;
    snprintf(key, sizeof key, "paimon:api:login:acct:%s", eh);
    if (rl_take(rc, key, &gw_cfg(c)->rl_login_account, 1, commit, &a, err, sizeof err) != 0)
        return commit ? 0 : -2;
    snprintf(key, sizeof key, "paimon:api:login:ip:%s", gw_ip(c));
    if (rl_take(rc, key, &gw_cfg(c)->rl_login_ip, 1, commit, &b, err, sizeof err) != 0)
        return commit ? 0 : -2;
    if (a.allowed && b.allowed)
        return 0;
    int64_t wait = a.retry_after_ms > b.retry_after_ms ? a.retry_after_ms : b.retry_after_ms;
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)((wait + 999) / 1000));
    gw_header(c, "Retry-After", v);
    return 1;
}

void h_login(gw_ctx *c)
{
    const char *email_in = jstr(gw_body(c), "email"), *pass = jstr(gw_body(c), "password");
    char email[256];
    size_t i = 0;
    for (; email_in[i] && i + 1 < sizeof email; i++)
        email[i] = (char)tolower((unsigned char)email_in[i]);
    email[i] = '\0';
    char actor[300];
    snprintf(actor, sizeof actor, "login:%s", email);
    gw_set_actor(c, actor);
    int t = login_throttled(c, email, 0);
    if (t == -2) {
        /* throttling is a security control: without Redis, refuse rather than allow */
        gw_fail(c, 503, "service_unavailable", "login temporarily unavailable", NULL);
        return;
    }
    if (t == 1) {
        gw_fail(c, 429, "login_throttled", "too many failed logins, try again later", NULL);
        return;
    }
    char err[UTIL_ERRLEN];
    db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
    if (!dc) {
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    const char *p[] = {email};
    PGresult *r = db_query_prepared(dc, "auth_login",
                                    "SELECT id, email, role, password_hash, disabled FROM "
                                    "api.users WHERE email = $1",
                                    1, p, err, sizeof err);
    if (!r) {
        db_release(gw_db(c), dc);
        gw_internal(c, err);
        return;
    }
    int ok = 0;
    if (PQntuples(r) == 1)
        ok = pw_verify(PQgetvalue(r, 0, 3), pass) == 1 && strcmp(PQgetvalue(r, 0, 4), "f") == 0;
    else
        /* same work for unknown accounts, so timing does not reveal which e-mails exist */
        pw_verify("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$o9ZmJ2sC5ZkH0Hh4n1mQ3Q", pass);
    if (!ok) {
        PQclear(r);
        db_release(gw_db(c), dc);
        login_throttled(c, email, 1);
        gw_fail(c, 401, "invalid_credentials", "e-mail or password is wrong", NULL);
        return;
    }
    char uid[64];
    util_strlcpy(uid, PQgetvalue(r, 0, 0), sizeof uid);
    rbac_role role = (rbac_role)rbac_role_parse(PQgetvalue(r, 0, 2));
    cJSON *user = user_json(r, 0, 0, 1, 2);
    PQclear(r);
    snprintf(actor, sizeof actor, "user:%s", uid);
    gw_set_actor(c, actor);
    issue is = {.user_id = uid, .ttl_ms = gw_cfg(c)->refresh_ttl_ms};
    int rc = insert_refresh(dc, &is, err, sizeof err);
    db_release(gw_db(c), dc);
    if (rc != 0) {
        cJSON_Delete(user);
        free(is.refresh);
        gw_internal(c, err);
        return;
    }
    reply_tokens(c, uid, role, NULL, is.refresh, user);
    free(is.refresh);
}

/* ---------- refresh ---------- */

typedef struct refresh_tx {
    const char *hash;
    int outcome; /* 0 rotated, 1 unknown/expired/revoked, 2 reuse */
    char user_id[64], family[64], role[32], wallet[43];
    int64_t ttl_ms;
    char *refresh;
    cJSON *user;
} refresh_tx;

static int do_refresh(db_conn *dc, void *ud, char *err, size_t errlen)
{
    refresh_tx *t = ud;
    free(t->refresh);
    t->refresh = NULL;
    cJSON_Delete(t->user);
    t->user = NULL;
    const char *p[] = {t->hash};
    PGresult *r = db_query_prepared(
        dc, "auth_rt_get",
        "SELECT t.id, t.family_id, t.user_id, t.expires_at <= now(), t.used_at IS NOT NULL, "
        "t.revoked_at IS NOT NULL, u.role, u.disabled, u.email FROM api.refresh_tokens t JOIN "
        "api.users u ON u.id = t.user_id WHERE t.token_hash = $1 FOR UPDATE OF t",
        1, p, err, errlen);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        t->outcome = 1;
        return 0;
    }
    util_strlcpy(t->family, PQgetvalue(r, 0, 1), sizeof t->family);
    util_strlcpy(t->user_id, PQgetvalue(r, 0, 2), sizeof t->user_id);
    util_strlcpy(t->role, PQgetvalue(r, 0, 6), sizeof t->role);
    int expired = PQgetvalue(r, 0, 3)[0] == 't', used = PQgetvalue(r, 0, 4)[0] == 't',
        revoked = PQgetvalue(r, 0, 5)[0] == 't', disabled = PQgetvalue(r, 0, 7)[0] == 't';
    char id[64];
    util_strlcpy(id, PQgetvalue(r, 0, 0), sizeof id);
    t->user = cJSON_CreateObject();
    cJSON_AddStringToObject(t->user, "id", t->user_id);
    if (PQgetisnull(r, 0, 8))
        cJSON_AddNullToObject(t->user, "email");
    else
        cJSON_AddStringToObject(t->user, "email", PQgetvalue(r, 0, 8));
    cJSON_AddStringToObject(t->user, "role", t->role);
    PQclear(r);
    if (used) {
        /* a rotated token came back: someone holds a copy, so nobody in the family is
         * trusted any more */
        const char *fp[] = {t->family};
        r = db_query_prepared(dc, "auth_rt_revoke_family",
                              "UPDATE api.refresh_tokens SET revoked_at = now(), revoke_reason = "
                              "'reuse' WHERE family_id = $1 AND revoked_at IS NULL",
                              1, fp, err, errlen);
        if (!r)
            return -1;
        PQclear(r);
        t->outcome = 2;
        return 0;
    }
    if (expired || revoked || disabled) {
        t->outcome = 1;
        return 0;
    }
    const char *ip[] = {id};
    r = db_query_prepared(dc, "auth_rt_use",
                          "UPDATE api.refresh_tokens SET used_at = now() WHERE id = $1", 1, ip, err,
                          errlen);
    if (!r)
        return -1;
    PQclear(r);
    /* a wallet login's tokens keep carrying the wallet */
    const char *up[] = {t->user_id};
    r = db_query_prepared(dc, "auth_wallet_of",
                          "SELECT address FROM api.wallets WHERE user_id = $1 ORDER BY linked_at "
                          "LIMIT 1",
                          1, up, err, errlen);
    if (!r)
        return -1;
    t->wallet[0] = '\0';
    if (PQntuples(r) == 1)
        util_strlcpy(t->wallet, PQgetvalue(r, 0, 0), sizeof t->wallet);
    PQclear(r);
    issue is = {.user_id = t->user_id, .family = t->family, .ttl_ms = t->ttl_ms};
    int rc = insert_refresh(dc, &is, err, errlen);
    t->refresh = is.refresh;
    t->outcome = 0;
    return rc;
}

void h_refresh(gw_ctx *c)
{
    const char *tok = jstr(gw_body(c), "refreshToken");
    refresh_tx t = {.ttl_ms = gw_cfg(c)->refresh_ttl_ms};
    char hash[CRYPTO_SHA256_HEXLEN], err[UTIL_ERRLEN];
    sha_hex(tok, hash);
    t.hash = hash;
    if (db_tx(gw_db(c), do_refresh, &t, err, sizeof err) != 0) {
        free(t.refresh);
        cJSON_Delete(t.user);
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    if (t.user_id[0]) {
        char actor[96];
        snprintf(actor, sizeof actor, "user:%s", t.user_id);
        gw_set_actor(c, actor);
    }
    if (t.outcome != 0) {
        free(t.refresh);
        cJSON_Delete(t.user);
        if (t.outcome == 2)
            log_warn_t(http_request_id(gw_req(c)), "refresh token reuse: family revoked", "family",
                       t.family);
        gw_fail(c, 401, t.outcome == 2 ? "refresh_token_reused" : "invalid_refresh_token",
                t.outcome == 2 ? "refresh token was already used; all sessions of this login "
                                 "were revoked"
                               : "refresh token is invalid or expired",
                NULL);
        return;
    }
    reply_tokens(c, t.user_id, (rbac_role)rbac_role_parse(t.role), t.wallet, t.refresh, t.user);
    free(t.refresh);
}

/* ---------- logout ---------- */

void h_logout(gw_ctx *c)
{
    const char *tok = jstr(gw_body(c), "refreshToken");
    char err[UTIL_ERRLEN];
    /* the access token dies now too: deny-listed until its own expiry */
    redisContext *rc = gw_redis(c, err, sizeof err);
    int64_t ttl = gw_token_exp(c) - util_now_ms() / 1000 + 5;
    if (rc && gw_jti(c)[0] && ttl > 0) {
        redisReply *r =
            redisCommand(rc, "SET paimon:api:revoked:%s 1 EX %lld", gw_jti(c), (long long)ttl);
        if (r)
            freeReplyObject(r);
    }
    int revoked = 0;
    if (tok) {
        char hash[CRYPTO_SHA256_HEXLEN];
        sha_hex(tok, hash);
        db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
        if (!dc) {
            gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
            return;
        }
        const char *p[] = {hash, gw_user_id(c)};
        PGresult *r = db_query_prepared(
            dc, "auth_logout",
            "UPDATE api.refresh_tokens SET revoked_at = now(), revoke_reason = 'logout' WHERE "
            "family_id = (SELECT family_id FROM api.refresh_tokens WHERE token_hash = $1 AND "
            "user_id = $2::uuid) AND revoked_at IS NULL",
            2, p, err, sizeof err);
        if (r) {
            revoked = atoi(PQcmdTuples(r));
            PQclear(r);
        }
        db_release(gw_db(c), dc);
        if (!r) {
            gw_internal(c, err);
            return;
        }
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "revokedRefreshTokens", revoked);
    gw_ok(c, 200, d);
}

/* ---------- me ---------- */

void h_me(gw_ctx *c)
{
    char err[UTIL_ERRLEN];
    db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
    if (!dc) {
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    const char *p[] = {gw_user_id(c)};
    PGresult *r = db_query_prepared(
        dc, "auth_me",
        "SELECT u.id, u.email, u.role, COALESCE((SELECT json_agg(address ORDER BY address) FROM "
        "api.wallets w WHERE w.user_id = u.id), '[]')::text FROM api.users u WHERE u.id = "
        "$1::uuid",
        1, p, err, sizeof err);
    db_release(gw_db(c), dc);
    if (!r) {
        gw_internal(c, err);
        return;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        gw_fail(c, 404, "not_found", "user not found", NULL);
        return;
    }
    cJSON *u = user_json(r, 0, 0, 1, 2);
    cJSON_AddItemToObject(u, "wallets", cJSON_Parse(PQgetvalue(r, 0, 3)));
    cJSON_AddStringToObject(u, "tokenRole", rbac_role_name(gw_role(c)));
    cJSON_AddBoolToObject(u, "viaApiKey", gw_via_api_key(c));
    PQclear(r);
    gw_ok(c, 200, u);
}

/* ---------- SIWE ---------- */

void h_siwe_nonce(gw_ctx *c)
{
    uint8_t b[16];
    char nonce[33], err[UTIL_ERRLEN];
    if (util_random(b, sizeof b) != 0) {
        gw_internal(c, "no randomness");
        return;
    }
    hex_encode(b, sizeof b, 0, nonce, sizeof nonce);
    redisContext *rc = gw_redis(c, err, sizeof err);
    redisReply *r = rc ? redisCommand(rc, "SET paimon:api:siwe:%s 1 PX %lld", nonce,
                                      (long long)gw_cfg(c)->siwe_nonce_ttl_ms)
                       : NULL;
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    if (!ok) {
        gw_fail(c, 503, "service_unavailable", "nonce store unavailable", NULL);
        return;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "nonce", nonce);
    cJSON_AddStringToObject(d, "domain", gw_cfg(c)->siwe_domain);
    cJSON_AddNumberToObject(d, "chainId", (double)gw_cfg(c)->chain_id);
    cJSON_AddNumberToObject(d, "expiresIn", (double)(gw_cfg(c)->siwe_nonce_ttl_ms / 1000));
    gw_ok(c, 200, d);
}

/* Parses, consumes the nonce (single use, even when a later check fails), checks and
 * verifies. 0 with the lower-case address in addr, or replied. */
static int siwe_accept(gw_ctx *c, char addr[43])
{
    const char *msg = jstr(gw_body(c), "message"), *sig = jstr(gw_body(c), "signature");
    siwe_message m;
    char err[UTIL_ERRLEN];
    if (siwe_parse(msg, &m, err, sizeof err) != 0) {
        cJSON *d = cJSON_CreateArray();
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "field", "/message");
        cJSON_AddStringToObject(o, "issue", err);
        cJSON_AddItemToArray(d, o);
        gw_fail(c, 400, "invalid_siwe_message", "not an EIP-4361 message", d);
        return -1;
    }
    redisContext *rc = gw_redis(c, err, sizeof err);
    redisReply *r = rc ? redisCommand(rc, "GETDEL paimon:api:siwe:%s", m.nonce) : NULL;
    if (!r) {
        gw_fail(c, 503, "service_unavailable", "nonce store unavailable", NULL);
        return -1;
    }
    int known = r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    siwe_expect x = {.domain = gw_cfg(c)->siwe_domain,
                     .chain_id = (uint64_t)gw_cfg(c)->chain_id,
                     .nonce = known ? m.nonce : NULL,
                     .now_ms = util_now_ms(),
                     .max_age_ms = gw_cfg(c)->siwe_nonce_ttl_ms,
                     .skew_ms = 60000};
    if (!known) {
        gw_fail(c, 401, "invalid_nonce", "nonce is unknown, expired or already used", NULL);
        return -1;
    }
    if (siwe_check(&m, &x, err, sizeof err) != 0 ||
        siwe_verify_signature(msg, &m, sig, err, sizeof err) != 0) {
        gw_fail(c, 401, "invalid_siwe", err, NULL);
        return -1;
    }
    hex_encode(m.addr, 20, 1, addr, 43);
    return 0;
}

void h_siwe_login(gw_ctx *c)
{
    char addr[43], err[UTIL_ERRLEN];
    if (siwe_accept(c, addr) != 0)
        return;
    char actor[64];
    snprintf(actor, sizeof actor, "wallet:%s", addr);
    gw_set_actor(c, actor);
    db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
    if (!dc) {
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    const char *p[] = {addr};
    PGresult *r = db_query_prepared(dc, "auth_wallet_login",
                                    "SELECT u.id, u.email, u.role FROM api.wallets w JOIN "
                                    "api.users u ON u.id = w.user_id WHERE w.address = $1 AND "
                                    "NOT u.disabled",
                                    1, p, err, sizeof err);
    if (!r || PQntuples(r) != 1) {
        if (r)
            PQclear(r);
        db_release(gw_db(c), dc);
        if (!r)
            gw_internal(c, err);
        else
            gw_fail(c, 401, "wallet_not_linked",
                    "this wallet is not linked to an account; sign in and link it first", NULL);
        return;
    }
    char uid[64];
    util_strlcpy(uid, PQgetvalue(r, 0, 0), sizeof uid);
    rbac_role role = (rbac_role)rbac_role_parse(PQgetvalue(r, 0, 2));
    cJSON *user = user_json(r, 0, 0, 1, 2);
    PQclear(r);
    issue is = {.user_id = uid, .ttl_ms = gw_cfg(c)->refresh_ttl_ms};
    int rc = insert_refresh(dc, &is, err, sizeof err);
    db_release(gw_db(c), dc);
    if (rc != 0) {
        free(is.refresh);
        cJSON_Delete(user);
        gw_internal(c, err);
        return;
    }
    reply_tokens(c, uid, role, addr, is.refresh, user);
    free(is.refresh);
}

void h_siwe_link(gw_ctx *c)
{
    char addr[43], err[UTIL_ERRLEN], chain[24];
    if (siwe_accept(c, addr) != 0)
        return;
    snprintf(chain, sizeof chain, "%lld", (long long)gw_cfg(c)->chain_id);
    db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
    if (!dc) {
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    const char *p[] = {addr, gw_user_id(c), chain};
    PGresult *r = db_query_prepared(dc, "auth_wallet_link",
                                    "INSERT INTO api.wallets (address, user_id, chain_id) VALUES "
                                    "($1, $2::uuid, $3) ON CONFLICT (address) DO NOTHING",
                                    3, p, err, sizeof err);
    db_release(gw_db(c), dc);
    if (!r) {
        gw_internal(c, err);
        return;
    }
    int inserted = atoi(PQcmdTuples(r));
    PQclear(r);
    if (!inserted) {
        gw_fail(c, 409, "wallet_already_linked", "this wallet is already linked to an account",
                NULL);
        return;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "address", addr);
    cJSON_AddNumberToObject(d, "chainId", (double)gw_cfg(c)->chain_id);
    gw_ok(c, 201, d);
}

/* ---------- API keys ---------- */

static cJSON *key_json(PGresult *r, int i)
{
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "id", PQgetvalue(r, i, 0));
    cJSON_AddStringToObject(k, "name", PQgetvalue(r, i, 1));
    cJSON_AddStringToObject(k, "prefix", PQgetvalue(r, i, 2));
    cJSON_AddStringToObject(k, "role", PQgetvalue(r, i, 3));
    cJSON_AddStringToObject(k, "createdAt", PQgetvalue(r, i, 4));
    const char *opt[] = {"expiresAt", "revokedAt", "lastUsedAt"};
    for (int j = 0; j < 3; j++) {
        if (PQgetisnull(r, i, 5 + j))
            cJSON_AddNullToObject(k, opt[j]);
        else
            cJSON_AddStringToObject(k, opt[j], PQgetvalue(r, i, 5 + j));
    }
    return k;
}

#define KEY_COLS                                                                                   \
    "id, name, prefix, role, to_char(created_at AT TIME ZONE 'UTC', "                              \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), to_char(expires_at AT TIME ZONE 'UTC', "                \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), to_char(revoked_at AT TIME ZONE 'UTC', "                \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), to_char(last_used_at AT TIME ZONE 'UTC', "              \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

void h_keys_list(gw_ctx *c)
{
    char err[UTIL_ERRLEN];
    db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
    if (!dc) {
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    const char *p[] = {gw_user_id(c)};
    PGresult *r = db_query_prepared(dc, "keys_list",
                                    "SELECT " KEY_COLS " FROM api.api_keys WHERE user_id = "
                                    "$1::uuid ORDER BY created_at DESC LIMIT 500",
                                    1, p, err, sizeof err);
    db_release(gw_db(c), dc);
    if (!r) {
        gw_internal(c, err);
        return;
    }
    cJSON *items = cJSON_CreateArray();
    for (int i = 0; i < PQntuples(r); i++)
        cJSON_AddItemToArray(items, key_json(r, i));
    PQclear(r);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "items", items);
    gw_ok(c, 200, d);
}

void h_keys_create(gw_ctx *c)
{
    if (gw_via_api_key(c)) {
        gw_fail(c, 403, "forbidden", "API keys cannot create API keys", NULL);
        return;
    }
    const char *name = jstr(gw_body(c), "name"), *role_s = jstr(gw_body(c), "role");
    int role = role_s ? rbac_role_parse(role_s) : (int)gw_role(c);
    if (role < 0 || role > (int)gw_role(c)) {
        gw_fail(c, 403, "forbidden", "a key cannot have a higher role than its owner", NULL);
        return;
    }
    const cJSON *days = cJSON_GetObjectItemCaseSensitive(gw_body(c), "expiresInDays");
    char exp[32] = "";
    if (days)
        snprintf(exp, sizeof exp, "%d days", days->valueint);
    uint8_t pb[8];
    char prefix[20], hexp[17], hash[CRYPTO_SHA256_HEXLEN], err[UTIL_ERRLEN];
    if (util_random(pb, sizeof pb) != 0) {
        gw_internal(c, "no randomness");
        return;
    }
    hex_encode(pb, sizeof pb, 0, hexp, sizeof hexp);
    snprintf(prefix, sizeof prefix, "pk_%s", hexp);
    char pre_us[24];
    snprintf(pre_us, sizeof pre_us, "%s_", prefix);
    char *key = random_token(pre_us, 32);
    if (!key) {
        gw_internal(c, "no randomness");
        return;
    }
    sha_hex(key, hash);
    db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
    if (!dc) {
        free(key);
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    const char *p[] = {gw_user_id(c),    name, prefix, hash, rbac_role_name((rbac_role)role),
                       days ? exp : NULL};
    PGresult *r = db_query_prepared(
        dc, "keys_create",
        "INSERT INTO api.api_keys (user_id, name, prefix, key_hash, role, expires_at) VALUES "
        "($1::uuid, $2, $3, $4, $5, now() + $6::interval) RETURNING " KEY_COLS,
        6, p, err, sizeof err);
    db_release(gw_db(c), dc);
    if (!r) {
        free(key);
        gw_internal(c, err);
        return;
    }
    cJSON *k = key_json(r, 0);
    PQclear(r);
    /* the only time the secret is shown */
    cJSON_AddStringToObject(k, "key", key);
    crypto_wipe(key, strlen(key));
    free(key);
    gw_ok(c, 201, k);
}

void h_keys_revoke(gw_ctx *c)
{
    const char *id = http_param(gw_req(c), "id");
    char err[UTIL_ERRLEN];
    uint8_t tmp[16];
    size_t n = 0;
    /* a UUID, so a malformed id is a 404 and never a SQL cast error */
    char compact[40] = "";
    size_t o = 0;
    for (const char *q = id; *q && o + 1 < sizeof compact; q++)
        if (*q != '-')
            compact[o++] = *q;
    compact[o] = '\0';
    if (strlen(id) != 36 || hex_decode(compact, tmp, sizeof tmp, &n, NULL, 0) != 0 || n != 16) {
        gw_fail(c, 404, "not_found", "no such API key", NULL);
        return;
    }
    db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
    if (!dc) {
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    const char *admin = gw_role(c) >= RBAC_ADMIN ? "t" : "f";
    const char *p[] = {id, gw_user_id(c), admin};
    PGresult *r = db_query_prepared(
        dc, "keys_revoke",
        "UPDATE api.api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1::uuid "
        "AND (user_id = $2::uuid OR $3::boolean) RETURNING " KEY_COLS,
        3, p, err, sizeof err);
    db_release(gw_db(c), dc);
    if (!r) {
        gw_internal(c, err);
        return;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        gw_fail(c, 404, "not_found", "no such API key", NULL);
        return;
    }
    cJSON *k = key_json(r, 0);
    PQclear(r);
    gw_ok(c, 200, k);
}

/* ---------- users (admin) ---------- */

#define USER_COLS                                                                                  \
    "id, email, role, disabled, to_char(created_at AT TIME ZONE 'UTC', "                           \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static cJSON *user_row(PGresult *r, int i)
{
    cJSON *u = user_json(r, i, 0, 1, 2);
    cJSON_AddBoolToObject(u, "disabled", PQgetvalue(r, i, 3)[0] == 't');
    cJSON_AddStringToObject(u, "createdAt", PQgetvalue(r, i, 4));
    return u;
}

void h_users_list(gw_ctx *c)
{
    int64_t limit;
    if (gw_query_int(c, "limit", 100, 1, 500, &limit) != 0) {
        gw_fail(c, 400, "invalid_query", "limit must be an integer in 1..500", NULL);
        return;
    }
    char err[UTIL_ERRLEN], ls[24];
    snprintf(ls, sizeof ls, "%lld", (long long)limit);
    db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
    if (!dc) {
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    const char *p[] = {ls};
    PGresult *r = db_query_prepared(
        dc, "users_list", "SELECT " USER_COLS " FROM api.users ORDER BY created_at, id LIMIT $1", 1,
        p, err, sizeof err);
    db_release(gw_db(c), dc);
    if (!r) {
        gw_internal(c, err);
        return;
    }
    cJSON *items = cJSON_CreateArray();
    for (int i = 0; i < PQntuples(r); i++)
        cJSON_AddItemToArray(items, user_row(r, i));
    PQclear(r);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "items", items);
    gw_ok(c, 200, d);
}

void h_users_create(gw_ctx *c)
{
    const char *email_in = jstr(gw_body(c), "email"), *pass = jstr(gw_body(c), "password"),
               *role_s = jstr(gw_body(c), "role");
    int role = rbac_role_parse(role_s);
    if (!rbac_may_grant(gw_role(c), (rbac_role)role)) {
        gw_fail(c, 403, "forbidden", "your role may not create this role", NULL);
        return;
    }
    char err[UTIL_ERRLEN];
    if (pw_policy_check(pass, err, sizeof err) != 0) {
        cJSON *d = cJSON_CreateArray();
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "field", "/password");
        cJSON_AddStringToObject(o, "issue", err);
        cJSON_AddItemToArray(d, o);
        gw_fail(c, 400, "validation_failed", "request body is invalid", d);
        return;
    }
    char email[256];
    size_t i = 0;
    for (; email_in[i] && i + 1 < sizeof email; i++)
        email[i] = (char)tolower((unsigned char)email_in[i]);
    email[i] = '\0';
    char *hash = pw_hash_new(pass, err, sizeof err);
    if (!hash) {
        gw_internal(c, err);
        return;
    }
    db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
    if (!dc) {
        free(hash);
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    const char *p[] = {email, hash, role_s};
    PGresult *r =
        db_query_prepared(dc, "users_create",
                          "INSERT INTO api.users (email, password_hash, role) VALUES "
                          "($1, $2, $3) ON CONFLICT (email) DO NOTHING RETURNING " USER_COLS,
                          3, p, err, sizeof err);
    db_release(gw_db(c), dc);
    free(hash);
    if (!r) {
        gw_internal(c, err);
        return;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        gw_fail(c, 409, "conflict", "a user with this e-mail exists", NULL);
        return;
    }
    cJSON *u = user_row(r, 0);
    PQclear(r);
    gw_ok(c, 201, u);
}

void h_users_update(gw_ctx *c)
{
    const char *id = http_param(gw_req(c), "id");
    const char *role_s = jstr(gw_body(c), "role");
    const cJSON *dis = cJSON_GetObjectItemCaseSensitive(gw_body(c), "disabled");
    char err[UTIL_ERRLEN];
    if (strlen(id) != 36 || strspn(id, "0123456789abcdefABCDEF-") != 36) {
        gw_fail(c, 404, "not_found", "no such user", NULL);
        return;
    }
    if (strcmp(id, gw_user_id(c)) == 0) {
        gw_fail(c, 403, "forbidden", "you cannot change your own account here", NULL);
        return;
    }
    db_conn *dc = db_acquire(gw_db(c), 2000, err, sizeof err);
    if (!dc) {
        gw_fail(c, 503, "service_unavailable", "database unavailable", NULL);
        return;
    }
    const char *p0[] = {id};
    PGresult *r = db_query_prepared(
        dc, "users_get", "SELECT role FROM api.users WHERE id = $1::uuid", 1, p0, err, sizeof err);
    if (!r || PQntuples(r) != 1) {
        if (r)
            PQclear(r);
        db_release(gw_db(c), dc);
        if (!r)
            gw_internal(c, err);
        else
            gw_fail(c, 404, "not_found", "no such user", NULL);
        return;
    }
    int current = rbac_role_parse(PQgetvalue(r, 0, 0));
    PQclear(r);
    /* changing someone's account needs the right to grant both their old and new role */
    if (!rbac_may_grant(gw_role(c), (rbac_role)current) ||
        (role_s && !rbac_may_grant(gw_role(c), (rbac_role)rbac_role_parse(role_s)))) {
        db_release(gw_db(c), dc);
        gw_fail(c, 403, "forbidden", "your role may not change this user", NULL);
        return;
    }
    const char *p[] = {id, role_s, dis ? (cJSON_IsTrue(dis) ? "t" : "f") : NULL};
    r = db_query_prepared(dc, "users_update",
                          "UPDATE api.users SET role = COALESCE($2, role), disabled = "
                          "COALESCE($3::boolean, disabled), updated_at = now() WHERE id = "
                          "$1::uuid RETURNING " USER_COLS,
                          3, p, err, sizeof err);
    if (r && dis && cJSON_IsTrue(dis)) {
        PGresult *r2 = db_query_prepared(dc, "users_revoke_tokens",
                                         "UPDATE api.refresh_tokens SET revoked_at = now(), "
                                         "revoke_reason = 'disabled' WHERE user_id = $1::uuid "
                                         "AND revoked_at IS NULL",
                                         1, p0, err, sizeof err);
        if (r2)
            PQclear(r2);
    }
    db_release(gw_db(c), dc);
    if (!r) {
        gw_internal(c, err);
        return;
    }
    cJSON *u = user_row(r, 0);
    PQclear(r);
    gw_ok(c, 200, u);
}

/* ---------- bootstrap ---------- */

int auth_bootstrap(db_pool *db, const char *email, const char *password, char *err, size_t errlen)
{
    db_conn *dc = db_acquire(db, 5000, err, errlen);
    if (!dc)
        return -1;
    PGresult *r = db_query(dc, "SELECT count(*) FROM api.users", 0, NULL, err, errlen);
    if (!r) {
        db_release(db, dc);
        return -1;
    }
    long n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    int rc = 0;
    if (n == 0 && email && *email && password && *password) {
        char lower[256];
        size_t i = 0;
        for (; email[i] && i + 1 < sizeof lower; i++)
            lower[i] = (char)tolower((unsigned char)email[i]);
        lower[i] = '\0';
        char *hash =
            pw_policy_check(password, err, errlen) == 0 ? pw_hash_new(password, err, errlen) : NULL;
        if (!hash) {
            db_release(db, dc);
            return -1;
        }
        const char *p[] = {lower, hash};
        /* the advisory lock makes two replicas starting at once create one admin */
        r = db_query(dc,
                     "INSERT INTO api.users (email, password_hash, role) SELECT $1, $2, "
                     "'super_admin' WHERE pg_try_advisory_xact_lock(7061696) AND NOT EXISTS "
                     "(SELECT 1 FROM api.users)",
                     2, p, err, errlen);
        free(hash);
        if (!r)
            rc = -1;
        else {
            if (atoi(PQcmdTuples(r)) == 1)
                log_info("bootstrap super_admin created", "email", lower);
            PQclear(r);
        }
    } else if (n == 0) {
        log_warn("no users and no PAIMON_BOOTSTRAP_ADMIN_EMAIL/PASSWORD: nobody can log in");
    }
    db_release(db, dc);
    return rc;
}
