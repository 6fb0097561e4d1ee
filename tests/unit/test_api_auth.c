/* Unit tests of the gateway's pure modules: JWT (HS256 pinned), argon2id, SIWE
 * parsing and checks, GCRA arithmetic, the RBAC table and the audit hash chain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/audit.h"
#include "api/gw.h"
#include "api/jwt.h"
#include "api/pw.h"
#include "api/rbac.h"
#include "api/rl.h"
#include "api/siwe.h"
#include "crypto.h"
#include "eip712.h"
#include "hex.h"
#include "secp.h"

static const uint8_t KEY[32] = "0123456789abcdef0123456789abcdef";

static char *make(const char *header, const char *payload, const uint8_t *key)
{
    char *h = jwt_b64url_encode_new((const uint8_t *)header, strlen(header));
    char *p = jwt_b64url_encode_new((const uint8_t *)payload, strlen(payload));
    char *t = malloc(strlen(h) + strlen(p) + 64);
    sprintf(t, "%s.%s", h, p);
    uint8_t mac[32];
    crypto_hmac_sha256(key, 32, t, strlen(t), mac, NULL, 0);
    char *s = jwt_b64url_encode_new(mac, 32);
    strcat(t, ".");
    strcat(t, s);
    free(h);
    free(p);
    free(s);
    return t;
}

static void test_jwt_roundtrip_and_tamper(void **st)
{
    (void)st;
    cJSON *cl = cJSON_Parse("{\"sub\":\"u1\",\"exp\":2000}");
    char *t = jwt_sign_new(cl, KEY, 32, NULL, 0);
    cJSON_Delete(cl);
    assert_non_null(t);
    cJSON *out = NULL;
    assert_int_equal(jwt_verify(t, KEY, 32, 1000, 0, &out, NULL, 0), 0);
    assert_string_equal(cJSON_GetObjectItem(out, "sub")->valuestring, "u1");
    cJSON_Delete(out);
    /* expired */
    assert_int_equal(jwt_verify(t, KEY, 32, 2000, 0, &out, NULL, 0), -1);
    assert_null(out);
    /* wrong key */
    uint8_t other[32];
    memcpy(other, KEY, 32);
    other[0] ^= 1;
    assert_int_equal(jwt_verify(t, other, 32, 1000, 0, &out, NULL, 0), -1);
    /* tampered payload: flip one character of the middle segment */
    char *dot = strchr(t, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    assert_int_equal(jwt_verify(t, KEY, 32, 1000, 0, &out, NULL, 0), -1);
    free(t);
}

static void test_jwt_alg_none_and_confusion(void **st)
{
    (void)st;
    cJSON *out = NULL;
    char *t = make("{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"exp\":2000}", KEY);
    assert_int_equal(jwt_verify(t, KEY, 32, 1000, 0, &out, NULL, 0), -1);
    free(t);
    /* unsigned "none" token with an empty signature */
    char *h = jwt_b64url_encode_new((const uint8_t *)"{\"alg\":\"none\"}", 14);
    char *p = jwt_b64url_encode_new((const uint8_t *)"{\"exp\":2000}", 12);
    char buf[256];
    snprintf(buf, sizeof buf, "%s.%s.", h, p);
    assert_int_equal(jwt_verify(buf, KEY, 32, 1000, 0, &out, NULL, 0), -1);
    free(h);
    free(p);
    /* HS512 / RS256 headers with a valid HS256 MAC are still refused (no alg switching) */
    t = make("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "{\"exp\":2000}", KEY);
    assert_int_equal(jwt_verify(t, KEY, 32, 1000, 0, &out, NULL, 0), -1);
    free(t);
    t = make("{\"alg\":\"HS512\"}", "{\"exp\":2000}", KEY);
    assert_int_equal(jwt_verify(t, KEY, 32, 1000, 0, &out, NULL, 0), -1);
    free(t);
    /* the same header spelled right passes: the refusals above are about alg only */
    t = make("{\"alg\":\"HS256\"}", "{\"exp\":2000}", KEY);
    assert_int_equal(jwt_verify(t, KEY, 32, 1000, 0, &out, NULL, 0), 0);
    cJSON_Delete(out);
    free(t);
    /* missing exp, nbf in the future, garbage */
    t = make("{\"alg\":\"HS256\"}", "{\"sub\":\"x\"}", KEY);
    assert_int_equal(jwt_verify(t, KEY, 32, 1000, 0, &out, NULL, 0), -1);
    free(t);
    t = make("{\"alg\":\"HS256\"}", "{\"exp\":5000,\"nbf\":3000}", KEY);
    assert_int_equal(jwt_verify(t, KEY, 32, 1000, 0, &out, NULL, 0), -1);
    assert_int_equal(jwt_verify(t, KEY, 32, 3000, 0, &out, NULL, 0), 0);
    cJSON_Delete(out);
    free(t);
    assert_int_equal(jwt_verify("a.b", KEY, 32, 1000, 0, &out, NULL, 0), -1);
    assert_int_equal(jwt_verify("a.b.c.d", KEY, 32, 1000, 0, &out, NULL, 0), -1);
    assert_int_equal(jwt_verify("!!.??.==", KEY, 32, 1000, 0, &out, NULL, 0), -1);
}

static void test_b64url(void **st)
{
    (void)st;
    char *e = jwt_b64url_encode_new((const uint8_t *)"\xfb\xff", 2);
    assert_string_equal(e, "-_8");
    uint8_t *d;
    size_t n;
    assert_int_equal(jwt_b64url_decode_new(e, strlen(e), &d, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(d, "\xfb\xff", 2);
    free(d);
    free(e);
    assert_int_equal(jwt_b64url_decode_new("-_9", 3, &d, &n), -1); /* non-zero pad bits */
    assert_int_equal(jwt_b64url_decode_new("ab=", 3, &d, &n), -1);
    assert_int_equal(jwt_b64url_decode_new("abcde", 5, &d, &n), -1);
}

static void test_argon2(void **st)
{
    (void)st;
    pw_set_cost(1, 64);
    char *h = pw_hash_new("correct horse battery", NULL, 0);
    assert_non_null(h);
    assert_true(strncmp(h, "$argon2id$v=19$m=64,t=1,p=1$", 28) == 0);
    assert_int_equal(pw_verify(h, "correct horse battery"), 1);
    assert_int_equal(pw_verify(h, "correct horse batterz"), 0);
    char *h2 = pw_hash_new("correct horse battery", NULL, 0);
    assert_string_not_equal(h, h2); /* salted */
    assert_int_equal(pw_verify("$2b$10$abcdefghijklmnopqrstuv", "x"), -1);
    assert_int_equal(pw_policy_check("short", NULL, 0), -1);
    assert_int_equal(pw_policy_check("long enough pw", NULL, 0), 0);
    free(h);
    free(h2);
}

static const char *SIWE_FMT = "localhost:8080 wants you to sign in with your Ethereum account:\n"
                              "%s\n\nSign in to Paimon\n\nURI: http://localhost:8080\nVersion: 1\n"
                              "Chain ID: 31337\nNonce: abcdef0123456789\n"
                              "Issued At: 2026-01-02T03:04:05.000Z\n"
                              "Expiration Time: 2026-01-02T03:14:05Z";

static void test_siwe(void **st)
{
    (void)st;
    uint8_t key[32], addr[20];
    memset(key, 0x11, 32);
    assert_int_equal(secp_pubkey_address(key, addr, NULL, 0), 0);
    char a[43], msg[1024];
    hex_addr_checksum(addr, a);
    snprintf(msg, sizeof msg, SIWE_FMT, a);
    siwe_message m;
    char err[256];
    assert_int_equal(siwe_parse(msg, &m, err, sizeof err), 0);
    assert_string_equal(m.domain, "localhost:8080");
    assert_string_equal(m.statement, "Sign in to Paimon");
    assert_int_equal(m.chain_id, 31337);
    int64_t t;
    assert_int_equal(siwe_parse_time("2026-01-02T03:04:05.000Z", &t), 0);
    assert_int_equal(m.issued_at_ms, t);
    assert_int_equal(t, 1767323045000LL); /* date -d 2026-01-02T03:04:05Z +%s */
    assert_int_equal(m.expiration_ms, t + 600000);
    siwe_expect x = {"localhost:8080", 31337, "abcdef0123456789", t + 1000, 300000, 1000};
    assert_int_equal(siwe_check(&m, &x, err, sizeof err), 0);
    siwe_expect bad = x;
    bad.domain = "evil.example";
    assert_int_equal(siwe_check(&m, &bad, err, sizeof err), -1);
    bad = x;
    bad.chain_id = 56;
    assert_int_equal(siwe_check(&m, &bad, err, sizeof err), -1);
    bad = x;
    bad.nonce = "otherotherother1";
    assert_int_equal(siwe_check(&m, &bad, err, sizeof err), -1);
    bad = x;
    bad.now_ms = t + 700000; /* past expiration */
    bad.max_age_ms = 0;
    assert_int_equal(siwe_check(&m, &bad, err, sizeof err), -1);
    /* signature by the message's key verifies; by another key it does not */
    uint8_t sig[65];
    char sighex[133];
    assert_int_equal(eip712_personal_sign((uint8_t *)msg, strlen(msg), key, sig, NULL, 0), 0);
    hex_encode(sig, 65, 1, sighex, sizeof sighex);
    assert_int_equal(siwe_verify_signature(msg, &m, sighex, err, sizeof err), 0);
    uint8_t k2[32];
    memset(k2, 0x22, 32);
    eip712_personal_sign((uint8_t *)msg, strlen(msg), k2, sig, NULL, 0);
    hex_encode(sig, 65, 1, sighex, sizeof sighex);
    assert_int_equal(siwe_verify_signature(msg, &m, sighex, err, sizeof err), -1);
    /* malformed messages */
    assert_int_equal(siwe_parse("hello", &m, err, sizeof err), -1);
    char bad_msg[1100];
    snprintf(bad_msg, sizeof bad_msg, "%s\nSurprise: 1", msg);
    assert_int_equal(siwe_parse(bad_msg, &m, err, sizeof err), -1);
    snprintf(bad_msg, sizeof bad_msg, SIWE_FMT, "0x1234");
    assert_int_equal(siwe_parse(bad_msg, &m, err, sizeof err), -1);
}

static void test_gcra(void **st)
{
    (void)st;
    rl_policy p = {60, 60000, 5}; /* 1/s, burst 5 */
    rl_result r;
    int64_t tat = 0, now = 1000000;
    for (int i = 0; i < 5; i++) {
        rl_gcra(&p, tat, now, 1, &r);
        assert_true(r.allowed);
        assert_int_equal(r.remaining, 4 - i);
        tat = r.new_tat;
    }
    rl_gcra(&p, tat, now, 1, &r);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after_ms, 1000);
    rl_gcra(&p, tat, now + 1000, 1, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 0);
    /* peeking never consumes */
    rl_gcra(&p, 0, now, 0, &r);
    assert_true(r.allowed);
    assert_int_equal(r.new_tat, now);
}

static void test_rbac(void **st)
{
    (void)st;
    assert_int_equal(rbac_role_parse("admin"), RBAC_ADMIN);
    assert_int_equal(rbac_role_parse("root"), -1);
    assert_true(rbac_allows(RBAC_ADMIN, RBAC_OPERATOR));
    assert_false(rbac_allows(RBAC_VIEWER, RBAC_OPERATOR));
    assert_false(rbac_allows(RBAC_NONE, RBAC_VIEWER));
    assert_true(rbac_allows(RBAC_NONE, RBAC_NONE));
    assert_true(rbac_may_grant(RBAC_SUPER_ADMIN, RBAC_ADMIN));
    assert_false(rbac_may_grant(RBAC_ADMIN, RBAC_ADMIN));
    assert_true(rbac_may_grant(RBAC_ADMIN, RBAC_OPERATOR));
    assert_false(rbac_may_grant(RBAC_OPERATOR, RBAC_VIEWER));
    /* the table: every admin route needs at least admin and sits behind the allow-list,
     * and every mutating route needs authentication except the login flows */
    for (size_t i = 0; i < gw_nroutes; i++) {
        const gw_route *r = &gw_routes[i];
        if (strncmp(r->pattern, "/api/v1/admin/", 14) == 0 &&
            strcmp(r->pattern, "/api/v1/admin/system") != 0) {
            assert_true(r->need >= RBAC_ADMIN);
            assert_true(r->flags & GW_ADMIN_IP);
        }
        if (strcmp(r->method, "GET") != 0 && r->need == RBAC_NONE)
            assert_true(strstr(r->pattern, "/auth/") != NULL);
    }
}

static void test_audit_chain(void **st)
{
    (void)st;
    audit_entry e = {1,    1700000000000, "user:a",  "admin", "POST",      "/x",
                     "/x", 200,           "success", "rid",   "127.0.0.1", "00"};
    char *c = audit_canonical_new(&e);
    assert_string_equal(c, "[1,1700000000000,\"user:a\",\"admin\",\"POST\",\"/x\",\"/x\",200,"
                           "\"success\",\"rid\",\"127.0.0.1\",\"00\"]");
    char h1[65], h2[65], h3[65], expect[65];
    assert_int_equal(audit_hash(AUDIT_ZERO_HASH, &e, h1, NULL, 0), 0);
    /* independent computation: SHA-256(prev || canonical) */
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", AUDIT_ZERO_HASH, c);
    uint8_t d[32];
    crypto_sha256(buf, strlen(buf), d, NULL, 0);
    hex_encode(d, 32, 0, expect, sizeof expect);
    assert_string_equal(h1, expect);
    free(c);
    e.seq = 2;
    assert_int_equal(audit_hash(h1, &e, h2, NULL, 0), 0);
    e.status = 201; /* any field change changes the hash */
    assert_int_equal(audit_hash(h1, &e, h3, NULL, 0), 0);
    assert_string_not_equal(h2, h3);
    assert_string_equal(audit_outcome(403), "denied");
    assert_string_equal(audit_outcome(204), "success");
    assert_string_equal(audit_outcome(500), "failure");
}

static void test_ip_allow_and_details(void **st)
{
    (void)st;
    char *items[] = {"10.0.0.0/8", "::1/128"};
    cfg_list l = {items, 2};
    assert_true(gw_ip_allowed(&l, "10.2.3.4"));
    assert_false(gw_ip_allowed(&l, "11.2.3.4"));
    assert_true(gw_ip_allowed(&l, "::1"));
    assert_false(gw_ip_allowed(&l, "::2"));
    assert_false(gw_ip_allowed(&l, "garbage"));
    cfg_list empty = {NULL, 0};
    assert_true(gw_ip_allowed(&empty, "1.2.3.4"));
    cJSON *d = gw_schema_details("/email: expected string; (root): missing required \"x\"");
    assert_int_equal(cJSON_GetArraySize(d), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 0), "field")->valuestring,
                        "/email");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 1), "field")->valuestring, "");
    cJSON_Delete(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_roundtrip_and_tamper),
        cmocka_unit_test(test_jwt_alg_none_and_confusion),
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_argon2),
        cmocka_unit_test(test_siwe),
        cmocka_unit_test(test_gcra),
        cmocka_unit_test(test_rbac),
        cmocka_unit_test(test_audit_chain),
        cmocka_unit_test(test_ip_allow_and_details),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
