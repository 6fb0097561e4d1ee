/* opsig: EIP-712 "Operation" signatures on sensitive operations (see opsig.h). Returned
 * strings and cJSON trees are owned by the caller; every input is borrowed. */
#include "opsig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eip712.h"
#include "hex.h"
#include "keccak.h"
#include "util.h"

/* ---------- growable buffer ---------- */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* ---------- UTF-8 ---------- */

/* Next code point of s (advancing *i), -1 on invalid UTF-8 (overlong, surrogate, > U+10FFFF). */
static long next_cp(const unsigned char *s, size_t *i)
{
    unsigned char c = s[*i];
    if (c < 0x80)
        return (*i)++, c;
    int n;
    long cp, min;
    if ((c & 0xE0) == 0xC0)
        n = 1, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        n = 2, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        n = 3, cp = c & 0x07, min = 0x10000;
    else
        return -1;
    for (int k = 1; k <= n; k++) {
        unsigned char d = s[*i + k];
        if ((d & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *i += (size_t)n + 1;
    return cp;
}

static int utf8_valid(const char *s)
{
    size_t i = 0;
    while (s[i])
        if (next_cp((const unsigned char *)s, &i) < 0)
            return 0;
    return 1;
}

/* UTF-16 code units of a valid UTF-8 string (owned), count in *n. */
static uint16_t *to_utf16(const char *s, size_t *n)
{
    size_t len = strlen(s), i = 0, k = 0;
    uint16_t *u = malloc((len + 1) * sizeof *u);
    if (!u)
        abort();
    while (s[i]) {
        long cp = next_cp((const unsigned char *)s, &i);
        if (cp >= 0x10000) {
            u[k++] = (uint16_t)(0xD800 + ((cp - 0x10000) >> 10));
            u[k++] = (uint16_t)(0xDC00 + ((cp - 0x10000) & 0x3FF));
        } else {
            u[k++] = (uint16_t)cp;
        }
    }
    *n = k;
    return u;
}

/* ---------- canonical JSON ---------- */

static int put_string(buf *b, const char *s, char *err, size_t errlen)
{
    if (!utf8_valid(s))
        return util_err(err, errlen, "opsig: string is not valid UTF-8");
    put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8];
        switch (*p) {
        case '"':
            puts_(b, "\\\"");
            break;
        case '\\':
            puts_(b, "\\\\");
            break;
        case '\b':
            puts_(b, "\\b");
            break;
        case '\f':
            puts_(b, "\\f");
            break;
        case '\n':
            puts_(b, "\\n");
            break;
        case '\r':
            puts_(b, "\\r");
            break;
        case '\t':
            puts_(b, "\\t");
            break;
        default:
            if (*p < 0x20) {
                snprintf(e, sizeof e, "\\u%04x", *p);
                puts_(b, e);
            } else {
                put(b, (const char *)p, 1);
            }
        }
    }
    put(b, "\"", 1);
    return 0;
}

/* JavaScript's Number::toString for |v| in [1e-6, 1e21): the shortest digits that read
 * back as v (C's %.*e at rising precision), placed without an exponent. */
static int put_number(buf *b, double v, char *err, size_t errlen)
{
    if (!isfinite(v))
        return util_err(err, errlen, "opsig: number is not finite");
    if (v == 0) {
        puts_(b, "0"); /* JSON.stringify(-0) is "0" */
        return 0;
    }
    double a = fabs(v);
    if (a >= 1e21 || a < 1e-6)
        return util_err(err, errlen, "opsig: number out of the canonical range (send a string)");
    char e[40];
    for (int prec = 0; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, a);
        if (strtod(e, NULL) == a)
            break;
    }
    /* e: d[.ddd]e[+-]xx */
    char digits[24];
    size_t k = 0;
    const char *p = e;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && k < sizeof digits - 1)
            digits[k++] = *p;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    int n = atoi(p + 1) + 1; /* the decimal point sits after n digits */
    if (v < 0)
        put(b, "-", 1);
    if ((int)k <= n) {
        put(b, digits, k);
        for (int i = (int)k; i < n; i++)
            put(b, "0", 1);
    } else if (n > 0) {
        put(b, digits, (size_t)n);
        put(b, ".", 1);
        put(b, digits + n, k - (size_t)n);
    } else {
        put(b, "0.", 2);
        for (int i = 0; i < -n; i++)
            put(b, "0", 1);
        put(b, digits, k);
    }
    return 0;
}

typedef struct kv {
    const cJSON *item;
    uint16_t *u;
    size_t n;
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    for (size_t i = 0; i < n; i++)
        if (x->u[i] != y->u[i])
            return x->u[i] < y->u[i] ? -1 : 1;
    return x->n < y->n ? -1 : x->n > y->n;
}

static int put_value(buf *b, const cJSON *v, int depth, char *err, size_t errlen);

static int put_object(buf *b, const cJSON *v, int depth, char *err, size_t errlen)
{
    size_t n = 0;
    for (const cJSON *c = v->child; c; c = c->next)
        n++;
    kv *k = calloc(n ? n : 1, sizeof *k);
    if (!k)
        abort();
    size_t i = 0;
    int rc = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        k[i].item = c;
        if (!c->string || !utf8_valid(c->string)) {
            rc = util_err(err, errlen, "opsig: object key is not valid UTF-8");
            n = i;
            break;
        }
        k[i].u = to_utf16(c->string, &k[i].n);
    }
    if (rc == 0) {
        qsort(k, n, sizeof *k, kv_cmp);
        put(b, "{", 1);
        for (i = 0; i < n && rc == 0; i++) {
            if (i > 0 && kv_cmp(&k[i - 1], &k[i]) == 0) {
                rc = util_err(err, errlen, "opsig: duplicate key \"%s\"", k[i].item->string);
                break;
            }
            if (i > 0)
                put(b, ",", 1);
            rc = put_string(b, k[i].item->string, err, errlen);
            if (rc == 0) {
                put(b, ":", 1);
                rc = put_value(b, k[i].item, depth + 1, err, errlen);
            }
        }
        put(b, "}", 1);
    }
    for (i = 0; i < n; i++)
        free(k[i].u);
    free(k);
    return rc;
}

static int put_value(buf *b, const cJSON *v, int depth, char *err, size_t errlen)
{
    if (depth > OPSIG_MAX_DEPTH)
        return util_err(err, errlen, "opsig: JSON nested too deep");
    if (cJSON_IsNull(v))
        return puts_(b, "null"), 0;
    if (cJSON_IsTrue(v))
        return puts_(b, "true"), 0;
    if (cJSON_IsFalse(v))
        return puts_(b, "false"), 0;
    if (cJSON_IsNumber(v))
        return put_number(b, v->valuedouble, err, errlen);
    if (cJSON_IsString(v))
        return put_string(b, v->valuestring, err, errlen);
    if (cJSON_IsArray(v)) {
        put(b, "[", 1);
        int i = 0;
        for (const cJSON *c = v->child; c; c = c->next, i++) {
            if (i)
                put(b, ",", 1);
            if (put_value(b, c, depth + 1, err, errlen) != 0)
                return -1;
        }
        put(b, "]", 1);
        return 0;
    }
    if (cJSON_IsObject(v))
        return put_object(b, v, depth, err, errlen);
    return util_err(err, errlen, "opsig: unsupported JSON value");
}

char *opsig_canonical_json(const cJSON *v, char *err, size_t errlen)
{
    buf b = {0};
    if (!v || put_value(&b, v, 0, err, errlen) != 0) {
        if (!v)
            util_err(err, errlen, "opsig: no value");
        free(b.p);
        return NULL;
    }
    return b.p;
}

int opsig_params_hash(const cJSON *body, uint8_t out[32], char *err, size_t errlen)
{
    if (body && !cJSON_IsObject(body))
        return util_err(err, errlen, "opsig: body must be a JSON object");
    cJSON *p = body ? cJSON_Duplicate(body, 1) : cJSON_CreateObject();
    if (!p)
        return util_err(err, errlen, "opsig: out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(p, "nonce");
    cJSON_DeleteItemFromObjectCaseSensitive(p, "deadline");
    cJSON_DeleteItemFromObjectCaseSensitive(p, "signature");
    char *s = opsig_canonical_json(p, err, errlen);
    cJSON_Delete(p);
    if (!s)
        return -1;
    keccak_256(s, strlen(s), out);
    free(s);
    return 0;
}

static int text_ok(const char *s, int allow_empty)
{
    return s && (allow_empty || *s) && strlen(s) <= OPSIG_TEXT_MAX && utf8_valid(s);
}

cJSON *opsig_typed_new(uint64_t chain_id, const uint8_t vault[20], const char *action,
                       const char *target, const uint8_t params_hash[32], const money_u256 *nonce,
                       const money_u256 *deadline, char *err, size_t errlen)
{
    if (chain_id == 0) {
        util_err(err, errlen, "opsig: chain id must be >= 1");
        return NULL;
    }
    if (!text_ok(action, 0) || !text_ok(target ? target : "", 1)) {
        util_err(err, errlen, "opsig: action / target must be valid UTF-8 of at most %d bytes",
                 OPSIG_TEXT_MAX);
        return NULL;
    }
    char ph[HEX_B32_STRLEN], ns[MONEY_DEC_MAX], ds[MONEY_DEC_MAX];
    hex_encode(params_hash, 32, 1, ph, sizeof ph);
    money_to_dec(nonce, ns, sizeof ns);
    money_to_dec(deadline, ds, sizeof ds);
    cJSON *fields, *msg;
    cJSON *root = eip712_fund_typed_new(chain_id, vault, "Operation", &fields, &msg);
    eip712_add_field(fields, "action", "string");
    eip712_add_field(fields, "target", "string");
    eip712_add_field(fields, "paramsHash", "bytes32");
    eip712_add_field(fields, "nonce", "uint256");
    eip712_add_field(fields, "deadline", "uint256");
    cJSON_AddStringToObject(msg, "action", action);
    cJSON_AddStringToObject(msg, "target", target ? target : "");
    cJSON_AddStringToObject(msg, "paramsHash", ph);
    cJSON_AddStringToObject(msg, "nonce", ns);
    cJSON_AddStringToObject(msg, "deadline", ds);
    return root;
}

/* ---------- verification ---------- */

static int fail(char *msg, size_t msglen, int status, const char *why)
{
    if (msg && msglen)
        util_strlcpy(msg, why, msglen);
    return status;
}

const char *opsig_code(int status)
{
    switch (status) {
    case 400:
        return "invalid_request";
    case 401:
        return "invalid_signature";
    case 403:
        return "forbidden";
    default:
        return "unavailable";
    }
}

int opsig_has_role(rpc_client *rpc, const abi_contract *vault_abi, const char *vault,
                   const char *role_name, const uint8_t wallet[20], char *err, size_t errlen)
{
    uint8_t role[32];
    keccak_256_str(role_name, role);
    return opsig_has_role_id(rpc, vault_abi, vault, role, wallet, err, errlen);
}

int opsig_has_role_id(rpc_client *rpc, const abi_contract *vault_abi, const char *vault,
                      const uint8_t role[32], const uint8_t wallet[20], char *err, size_t errlen)
{
    const abi_fn *fn = vault_abi ? abi_contract_fn(vault_abi, "hasRole") : NULL;
    if (!fn || !rpc || !vault)
        return util_err(err, errlen, "opsig: no chain access for hasRole");
    char role_s[HEX_B32_STRLEN], addr[HEX_ADDR_STRLEN];
    hex_encode(role, 32, 1, role_s, sizeof role_s);
    hex_encode(wallet, 20, 1, addr, sizeof addr);
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateString(role_s));
    cJSON_AddItemToArray(args, cJSON_CreateString(addr));
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = abi_fn_encode_call(fn, args, &data, &len, err, errlen);
    cJSON_Delete(args);
    if (rc != 0)
        return -1;
    char *hx = hex_encode_new(data, len, 1);
    free(data);
    uint8_t *out = NULL;
    size_t outlen = 0;
    rpc_error e;
    rpc_error_init(&e);
    rc = rpc_eth_call(rpc, vault, hx, RPC_BLOCK_LATEST, &out, &outlen, &e);
    free(hx);
    if (rc != 0) {
        util_err(err, errlen, "opsig: hasRole: %s", e.message);
        rpc_error_clear(&e);
        return -1;
    }
    cJSON *res = abi_fn_decode_result(fn, out, outlen, 0, err, errlen);
    free(out);
    if (!res)
        return -1;
    int yes = cJSON_IsTrue(cJSON_GetArrayItem(res, 0));
    cJSON_Delete(res);
    return yes;
}

static const char *body_str(const cJSON *body, const char *key)
{
    const cJSON *v = body ? cJSON_GetObjectItemCaseSensitive(body, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int opsig_verify(const opsig_req *req, opsig_op *op, char *msg, size_t msglen)
{
    memset(op, 0, sizeof *op);
    if (req->body && !cJSON_IsObject(req->body))
        return fail(msg, msglen, 400, "body must be a JSON object");
    const char *ns = body_str(req->body, "nonce"), *ds = body_str(req->body, "deadline");
    const char *ss = body_str(req->body, "signature");
    money_u256 nonce, deadline;
    uint64_t dl = 0;
    if (!ns || money_from_dec(&nonce, ns, NULL, 0) != 0)
        return fail(msg, msglen, 400, "nonce must be a decimal uint256 string");
    if (!ds || money_from_dec(&deadline, ds, NULL, 0) != 0 || money_to_u64(&deadline, &dl) != 0 ||
        dl > (uint64_t)INT64_MAX / 1000)
        return fail(msg, msglen, 400, "deadline must be unix seconds as a decimal string");
    uint8_t sig[65];
    if (!ss || strncmp(ss, "0x", 2) != 0 || hex_decode_fixed(ss, sig, 65, NULL, 0) != 0)
        return fail(msg, msglen, 400, "signature must be 0x + 65 bytes of hex");
    uint8_t ph[32];
    char err[UTIL_ERRLEN];
    if (opsig_params_hash(req->body, ph, err, sizeof err) != 0)
        return fail(msg, msglen, 400, "body has no canonical form (see the Operation docs)");
    uint8_t vault[20];
    if (!req->vault || hex_addr_parse(req->vault, vault, NULL, 0) != 0)
        return fail(msg, msglen, 503, "vault address not configured");
    if ((int64_t)dl * 1000 <= req->now_ms)
        return fail(msg, msglen, 401, "signature deadline has passed");
    if ((int64_t)dl * 1000 > req->now_ms + (int64_t)OPSIG_MAX_AHEAD_S * 1000)
        return fail(msg, msglen, 400, "signature deadline is more than an hour ahead");
    if (!req->wallet || !*req->wallet || hex_addr_parse(req->wallet, op->wallet, NULL, 0) != 0)
        return fail(msg, msglen, 401, "no linked wallet (X-Paimon-Wallet) to verify against");
    cJSON *typed = opsig_typed_new(req->chain_id, vault, req->action, req->target, ph, &nonce,
                                   &deadline, err, sizeof err);
    if (!typed)
        return fail(msg, msglen, 400, "cannot build the Operation typed data");
    int ok = eip712_verify(typed, sig, op->wallet, err, sizeof err);
    cJSON_Delete(typed);
    if (ok != 0)
        return fail(msg, msglen, 401,
                    "signature is not a valid Operation signature by the linked wallet");
    if (req->roles) {
        int held = 0;
        for (const char *const *r = req->roles; *r && !held; r++) {
            int h = opsig_has_role(req->rpc, req->vault_abi, req->vault, *r, op->wallet, err,
                                   sizeof err);
            if (h < 0)
                return fail(msg, msglen, 503, "chain unavailable for the role check");
            held = h;
        }
        if (!held)
            return fail(msg, msglen, 403, "wallet does not hold the on-chain role this needs");
    }
    hex_encode(op->wallet, 20, 1, op->wallet_hex, sizeof op->wallet_hex);
    money_to_dec(&nonce, op->nonce, sizeof op->nonce);
    util_strlcpy(op->action, req->action, sizeof op->action);
    return 0;
}

int opsig_claim(db_conn *tx, const char *schema, const opsig_op *op, char *msg, size_t msglen)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO %s.operation_nonces (wallet, nonce, action) VALUES ($1, $2::numeric, "
             "$3) ON CONFLICT DO NOTHING",
             schema);
    const char *p[3] = {op->wallet_hex, op->nonce, op->action};
    char err[UTIL_ERRLEN];
    PGresult *r = db_query_prepared(tx, "opsig_claim", sql, 3, p, err, sizeof err);
    if (!r)
        return fail(msg, msglen, 503, "database unavailable");
    int fresh = atoi(PQcmdTuples(r)) == 1;
    PQclear(r);
    if (!fresh)
        return fail(msg, msglen, 401, "nonce already used by this wallet (replay)");
    return 0;
}
