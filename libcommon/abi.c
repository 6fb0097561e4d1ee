/* abi: Solidity ABI types, codec, selectors, events and reverts (see abi.h).
 *
 * Types form a tree built once per ABI; encoding and decoding walk it with the
 * standard head/tail layout. The decoder never trusts an offset or a length: every
 * read is checked against the input, and the total decoded size is charged
 * against a budget proportional to the input (see DEC_BUDGET).
 *
 * Event logs are the bulk path (backfills decode every log of a range), so it
 * builds its output directly: argument keys settled once per ABI, data values
 * straight into "args", 64-bit integers formatted without 256-bit division. */
#include "abi.h"
#include "hex.h"
#include "keccak.h"
#include "money.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Static types larger than this are refused at parse time so head sizes can
 * never overflow size_t arithmetic (uint256[2**60] is a valid Solidity type). */
#define ABI_MAX_STATIC ((size_t)1 << 24)
/* Decoded output may exceed the input (offsets can point many elements at the
 * same data), so decoding charges a budget: 32 per word read, 32 + 2*len per
 * bytes/string (hex doubles it), 1 per container element. Honest encodings use
 * each word once and stay far below; hostile offsets cannot turn 1 KB into
 * gigabytes. */
#define DEC_BUDGET(n) (4 * (n) + 4096)
/* JSON integers are doubles: only those that are exact are accepted. */
#define JSON_INT_MAX 9007199254740992.0

/* ---------- small string builder ---------- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len <= n)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p)
            abort();
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* ---------- byte buffer ---------- */

typedef struct bbuf {
    uint8_t *d;
    size_t len, cap;
} bbuf;

static void bb_grow(bbuf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *p = realloc(b->d, cap);
    if (!p)
        abort();
    b->d = p;
    b->cap = cap;
}

static void bb_put(bbuf *b, const uint8_t *p, size_t n)
{
    bb_grow(b, n);
    if (n)
        memcpy(b->d + b->len, p, n);
    b->len += n;
}

static void bb_zero(bbuf *b, size_t n)
{
    bb_grow(b, n);
    memset(b->d + b->len, 0, n);
    b->len += n;
}

static void be32_u64(uint8_t w[32], uint64_t v)
{
    memset(w, 0, 32);
    for (int i = 0; i < 8; i++)
        w[31 - i] = (uint8_t)(v >> (8 * i));
}

/* ---------- types ---------- */

void abi_type_free(abi_type *t)
{
    if (!t)
        return;
    abi_type_free(t->elem);
    for (size_t i = 0; i < t->n; i++) {
        abi_type_free(t->comp[i]);
        if (t->names)
            free(t->names[i]);
    }
    free(t->comp);
    free(t->names);
    free(t);
}

static abi_type *type_new(abi_kind k)
{
    abi_type *t = util_calloc(1, sizeof *t);
    t->kind = k;
    return t;
}

/* Fills dynamic/head from the children; -1 if a static size exceeds the cap. */
static int type_finish(abi_type *t, char *err, size_t errlen)
{
    switch (t->kind) {
    case ABI_BYTES:
    case ABI_STRING:
    case ABI_ARRAY:
        t->dynamic = 1;
        t->head = 32;
        return 0;
    case ABI_FARRAY:
        t->dynamic = t->elem->dynamic;
        if (t->dynamic) {
            t->head = 32;
        } else {
            if (t->elem->head && t->len > ABI_MAX_STATIC / t->elem->head)
                return util_err(err, errlen, "abi: static array too large");
            t->head = t->len * t->elem->head;
        }
        return 0;
    case ABI_TUPLE: {
        size_t sum = 0;
        t->dynamic = 0;
        for (size_t i = 0; i < t->n; i++) {
            t->dynamic |= t->comp[i]->dynamic;
            sum += t->comp[i]->head;
            if (sum > ABI_MAX_STATIC)
                return util_err(err, errlen, "abi: tuple too large");
        }
        t->head = t->dynamic ? 32 : sum;
        return 0;
    }
    default:
        t->dynamic = 0;
        t->head = 32;
        return 0;
    }
}

/* Parses a decimal M in [lo, hi] that must be a multiple of step, no leading zeros. */
static int parse_width(const char *s, size_t n, unsigned lo, unsigned hi, unsigned step,
                       unsigned *out)
{
    if (n == 0 || n > 3 || s[0] == '0')
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < lo || v > hi || v % step)
        return -1;
    *out = v;
    return 0;
}

static abi_type *elementary(const char *s, size_t n, char *err, size_t errlen)
{
    unsigned w;
    abi_type *t = NULL;
#define IS(lit)  (n == sizeof(lit) - 1 && memcmp(s, lit, n) == 0)
#define PFX(lit) (n > sizeof(lit) - 1 && memcmp(s, lit, sizeof(lit) - 1) == 0)
    if (IS("uint") || IS("int")) {
        t = type_new(s[0] == 'u' ? ABI_UINT : ABI_INT);
        t->size = 256;
    } else if (PFX("uint") && parse_width(s + 4, n - 4, 8, 256, 8, &w) == 0) {
        t = type_new(ABI_UINT);
        t->size = w;
    } else if (PFX("int") && parse_width(s + 3, n - 3, 8, 256, 8, &w) == 0) {
        t = type_new(ABI_INT);
        t->size = w;
    } else if (IS("address")) {
        t = type_new(ABI_ADDRESS);
    } else if (IS("bool")) {
        t = type_new(ABI_BOOL);
    } else if (IS("string")) {
        t = type_new(ABI_STRING);
    } else if (IS("bytes")) {
        t = type_new(ABI_BYTES);
    } else if (PFX("bytes") && parse_width(s + 5, n - 5, 1, 32, 1, &w) == 0) {
        t = type_new(ABI_FBYTES);
        t->size = w;
    } else if (IS("function")) {
        t = type_new(ABI_FBYTES);
        t->size = 24;
        t->is_function = 1;
    }
#undef IS
#undef PFX
    if (!t)
        util_err(err, errlen, "abi: unknown type '%.*s'", (int)(n > 40 ? 40 : n), s);
    else
        type_finish(t, NULL, 0);
    return t;
}

/* Applies "[k]" / "[]" suffixes at *p to base (consumed on failure too). */
static abi_type *suffixes(abi_type *base, const char **p, char *err, size_t errlen)
{
    const char *s = *p;
    int depth = 0;
    while (*s == '[') {
        s++;
        abi_type *a;
        if (*s == ']') {
            a = type_new(ABI_ARRAY);
        } else {
            if (*s < '1' || *s > '9') {
                abi_type_free(base);
                util_err(err, errlen, "abi: bad array size");
                return NULL;
            }
            size_t k = 0;
            while (isdigit((unsigned char)*s)) {
                if (k > ABI_MAX_STATIC) {
                    abi_type_free(base);
                    util_err(err, errlen, "abi: array size too large");
                    return NULL;
                }
                k = k * 10 + (size_t)(*s - '0');
                s++;
            }
            if (*s != ']') {
                abi_type_free(base);
                util_err(err, errlen, "abi: expected ']'");
                return NULL;
            }
            a = type_new(ABI_FARRAY);
            a->len = k;
        }
        s++;
        a->elem = base;
        base = a;
        if (++depth > ABI_MAX_DEPTH || type_finish(a, err, errlen) < 0) {
            if (depth > ABI_MAX_DEPTH)
                util_err(err, errlen, "abi: type nested too deeply");
            abi_type_free(a);
            return NULL;
        }
    }
    *p = s;
    return base;
}

static abi_type *parse_rec(const char **p, int depth, char *err, size_t errlen)
{
    const char *s = *p;
    abi_type *t;
    if (depth > ABI_MAX_DEPTH) {
        util_err(err, errlen, "abi: type nested too deeply");
        return NULL;
    }
    if (*s == '(') {
        s++;
        t = type_new(ABI_TUPLE);
        if (*s == ')') {
            s++;
        } else {
            for (;;) {
                abi_type *c = parse_rec(&s, depth + 1, err, errlen);
                if (!c) {
                    abi_type_free(t);
                    return NULL;
                }
                t->comp = realloc(t->comp, (t->n + 1) * sizeof *t->comp);
                if (!t->comp)
                    abort();
                t->comp[t->n++] = c;
                if (*s == ',') {
                    s++;
                    continue;
                }
                if (*s == ')') {
                    s++;
                    break;
                }
                abi_type_free(t);
                util_err(err, errlen, "abi: expected ',' or ')' in tuple");
                return NULL;
            }
        }
        if (type_finish(t, err, errlen) < 0) {
            abi_type_free(t);
            return NULL;
        }
    } else {
        const char *start = s;
        while (isalnum((unsigned char)*s))
            s++;
        t = elementary(start, (size_t)(s - start), err, errlen);
        if (!t)
            return NULL;
    }
    t = suffixes(t, &s, err, errlen);
    if (t)
        *p = s;
    return t;
}

abi_type *abi_type_parse(const char *s, char *err, size_t errlen)
{
    if (!s) {
        util_err(err, errlen, "abi: missing type");
        return NULL;
    }
    const char *p = s;
    abi_type *t = parse_rec(&p, 0, err, errlen);
    if (t && *p) {
        abi_type_free(t);
        util_err(err, errlen, "abi: unexpected '%c' in type '%s'", *p, s);
        return NULL;
    }
    return t;
}

static int valid_ident(const char *s)
{
    if (!s || !*s || isdigit((unsigned char)*s))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '$')
            return 0;
    return 1;
}

/* A tuple from an ABI JSON parameter array (inputs, outputs or components). */
static abi_type *tuple_from_params(const cJSON *params, int depth, char *err, size_t errlen);

static abi_type *from_json_rec(const cJSON *param, int depth, char *err, size_t errlen)
{
    if (depth > ABI_MAX_DEPTH) {
        util_err(err, errlen, "abi: type nested too deeply");
        return NULL;
    }
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(param, "type");
    if (!cJSON_IsString(jt)) {
        util_err(err, errlen, "abi: parameter without a \"type\" string");
        return NULL;
    }
    const char *ts = jt->valuestring;
    if (strncmp(ts, "tuple", 5) == 0 && (ts[5] == '\0' || ts[5] == '[')) {
        const cJSON *comps = cJSON_GetObjectItemCaseSensitive(param, "components");
        if (!cJSON_IsArray(comps)) {
            util_err(err, errlen, "abi: tuple without \"components\"");
            return NULL;
        }
        abi_type *t = tuple_from_params(comps, depth + 1, err, errlen);
        if (!t)
            return NULL;
        const char *p = ts + 5;
        t = suffixes(t, &p, err, errlen);
        if (t && *p) {
            abi_type_free(t);
            util_err(err, errlen, "abi: bad type '%s'", ts);
            return NULL;
        }
        return t;
    }
    return abi_type_parse(ts, err, errlen);
}

static abi_type *tuple_from_params(const cJSON *params, int depth, char *err, size_t errlen)
{
    abi_type *t = type_new(ABI_TUPLE);
    int n = cJSON_GetArraySize(params);
    if (n > 0) {
        t->comp = util_calloc((size_t)n, sizeof *t->comp);
        t->names = util_calloc((size_t)n, sizeof *t->names);
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, params)
    {
        abi_type *c = cJSON_IsObject(p) ? from_json_rec(p, depth, err, errlen) : NULL;
        if (!c) {
            if (!cJSON_IsObject(p))
                util_err(err, errlen, "abi: parameter is not an object");
            abi_type_free(t);
            return NULL;
        }
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(p, "name");
        t->names[t->n] =
            cJSON_IsString(nm) && *nm->valuestring ? util_strdup(nm->valuestring) : NULL;
        t->comp[t->n++] = c;
    }
    if (type_finish(t, err, errlen) < 0) {
        abi_type_free(t);
        return NULL;
    }
    return t;
}

abi_type *abi_type_from_json(const cJSON *param, char *err, size_t errlen)
{
    if (!cJSON_IsObject(param)) {
        util_err(err, errlen, "abi: parameter is not an object");
        return NULL;
    }
    return from_json_rec(param, 0, err, errlen);
}

static void canon(sbuf *b, const abi_type *t)
{
    char tmp[32];
    switch (t->kind) {
    case ABI_UINT:
    case ABI_INT:
        snprintf(tmp, sizeof tmp, "%s%u", t->kind == ABI_UINT ? "uint" : "int", t->size);
        sb_str(b, tmp);
        break;
    case ABI_ADDRESS:
        sb_str(b, "address");
        break;
    case ABI_BOOL:
        sb_str(b, "bool");
        break;
    case ABI_FBYTES:
        if (t->is_function) {
            sb_str(b, "function");
        } else {
            snprintf(tmp, sizeof tmp, "bytes%u", t->size);
            sb_str(b, tmp);
        }
        break;
    case ABI_BYTES:
        sb_str(b, "bytes");
        break;
    case ABI_STRING:
        sb_str(b, "string");
        break;
    case ABI_ARRAY:
        canon(b, t->elem);
        sb_str(b, "[]");
        break;
    case ABI_FARRAY:
        canon(b, t->elem);
        snprintf(tmp, sizeof tmp, "[%zu]", t->len);
        sb_str(b, tmp);
        break;
    case ABI_TUPLE:
        sb_str(b, "(");
        for (size_t i = 0; i < t->n; i++) {
            if (i)
                sb_str(b, ",");
            canon(b, t->comp[i]);
        }
        sb_str(b, ")");
        break;
    }
}

char *abi_type_canonical(const abi_type *t)
{
    sbuf b = {0};
    canon(&b, t);
    return b.s;
}

void abi_selector(const char *signature, uint8_t out[ABI_SELECTOR_LEN])
{
    uint8_t h[KECCAK_256_LEN];
    keccak_256_str(signature, h);
    memcpy(out, h, ABI_SELECTOR_LEN);
}

/* "name" + canonical tuple, e.g. "transfer(address,uint256)" (owned). */
static char *signature_of(const char *name, const abi_type *tuple)
{
    sbuf b = {0};
    sb_str(&b, name);
    canon(&b, tuple);
    return b.s;
}

/* ---------- two's complement on money_u256 ---------- */

static void u256_neg(money_u256 *v)
{
    unsigned carry = 1;
    for (int i = 0; i < 4; i++) {
        uint64_t x = ~v->w[i] + carry;
        carry = carry && x == 0;
        v->w[i] = x;
    }
}

/* ---------- encoding ---------- */

/* Integer from JSON: decimal string with optional '-', "0x" hex, or an exact
 * JSON integer. Sets *neg and the magnitude. */
static int json_int(const cJSON *v, money_u256 *mag, int *neg, char *err, size_t errlen)
{
    *neg = 0;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!(d >= -JSON_INT_MAX && d <= JSON_INT_MAX) || d != (double)(int64_t)d)
            return util_err(err, errlen, "abi: JSON number is not an exact integer");
        int64_t i = (int64_t)d;
        *neg = i < 0;
        money_from_u64(mag, i < 0 ? (uint64_t)(-i) : (uint64_t)i);
        return 0;
    }
    if (!cJSON_IsString(v))
        return util_err(err, errlen, "abi: integer must be a string or number");
    const char *s = v->valuestring;
    if (hex_has_prefix(s))
        return money_from_hex(mag, s, err, errlen);
    if (*s == '-') {
        *neg = 1;
        s++;
    }
    return money_from_dec(mag, s, err, errlen);
}

static int enc_word(const abi_type *t, const cJSON *v, uint8_t w[32], char *err, size_t errlen)
{
    memset(w, 0, 32);
    switch (t->kind) {
    case ABI_UINT:
    case ABI_INT: {
        money_u256 m;
        int neg;
        if (json_int(v, &m, &neg, err, errlen) < 0)
            return -1;
        size_t nb = t->size / 8; /* significant bytes */
        if (neg && !money_is_zero(&m)) {
            if (t->kind == ABI_UINT)
                return util_err(err, errlen, "abi: negative value for uint%u", t->size);
            u256_neg(&m);
        } else {
            neg = 0;
        }
        money_to_be32(&m, w);
        uint8_t fill = neg ? 0xff : 0x00;
        for (size_t i = 0; i < 32 - nb; i++)
            if (w[i] != fill)
                return util_err(err, errlen, "abi: value out of range for %s%u",
                                t->kind == ABI_UINT ? "uint" : "int", t->size);
        /* Signed: the top significant bit must match the sign, else the value
         * needs one more bit than intM has. */
        if (t->kind == ABI_INT && ((w[32 - nb] & 0x80) != 0) != neg)
            return util_err(err, errlen, "abi: value out of range for int%u", t->size);
        return 0;
    }
    case ABI_ADDRESS:
        if (!cJSON_IsString(v))
            return util_err(err, errlen, "abi: address must be a string");
        return hex_addr_parse(v->valuestring, w + 12, err, errlen);
    case ABI_BOOL:
        if (!cJSON_IsBool(v))
            return util_err(err, errlen, "abi: bool must be true or false");
        w[31] = cJSON_IsTrue(v) ? 1 : 0;
        return 0;
    case ABI_FBYTES:
        if (!cJSON_IsString(v))
            return util_err(err, errlen, "abi: bytes%u must be a hex string", t->size);
        return hex_decode_fixed(v->valuestring, w, t->size, err, errlen);
    default:
        return util_err(err, errlen, "abi: internal: not a word type");
    }
}

static int enc_value(bbuf *b, const abi_type *t, const cJSON *v, char *err, size_t errlen);

/* Values of a tuple/array as an owned vector of n borrowed cJSON pointers. */
static const cJSON **seq_values(const abi_type *t, const cJSON *v, size_t n, char *err,
                                size_t errlen)
{
    const cJSON **vals = util_calloc(n ? n : 1, sizeof *vals);
    if (t->kind == ABI_TUPLE && cJSON_IsObject(v)) {
        for (size_t i = 0; i < n; i++) {
            const char *nm = t->names ? t->names[i] : NULL;
            vals[i] = nm ? cJSON_GetObjectItemCaseSensitive(v, nm) : NULL;
            if (!vals[i]) {
                free(vals);
                util_err(err, errlen, "abi: missing tuple component '%s'", nm ? nm : "?");
                return NULL;
            }
        }
        return vals;
    }
    if (!cJSON_IsArray(v)) {
        free(vals);
        util_err(err, errlen, "abi: expected a JSON array");
        return NULL;
    }
    size_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, v)
    {
        if (i == n) {
            i++;
            break;
        }
        vals[i++] = c;
    }
    if (i != n) {
        free(vals);
        util_err(err, errlen, "abi: expected %zu values", n);
        return NULL;
    }
    return vals;
}

static int enc_seq(bbuf *b, const abi_type *t, const cJSON *v, size_t n, char *err, size_t errlen)
{
    const cJSON **vals = seq_values(t, v, n, err, errlen);
    if (!vals)
        return -1;
    size_t start = b->len;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const abi_type *ct = t->kind == ABI_TUPLE ? t->comp[i] : t->elem;
        if (ct->dynamic)
            bb_zero(b, 32);
        else
            rc = enc_value(b, ct, vals[i], err, errlen);
    }
    size_t hoff = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const abi_type *ct = t->kind == ABI_TUPLE ? t->comp[i] : t->elem;
        if (ct->dynamic) {
            be32_u64(b->d + start + hoff, b->len - start);
            rc = enc_value(b, ct, vals[i], err, errlen);
        }
        hoff += ct->head;
    }
    free(vals);
    return rc;
}

static int enc_value(bbuf *b, const abi_type *t, const cJSON *v, char *err, size_t errlen)
{
    uint8_t w[32];
    switch (t->kind) {
    case ABI_BYTES:
    case ABI_STRING: {
        const uint8_t *p;
        size_t n;
        uint8_t *tmp = NULL;
        if (!cJSON_IsString(v))
            return util_err(err, errlen, "abi: %s must be a string",
                            t->kind == ABI_BYTES ? "bytes" : "string");
        if (t->kind == ABI_BYTES) {
            tmp = hex_decode_new(v->valuestring, &n, err, errlen);
            if (!tmp)
                return -1;
            p = tmp;
        } else {
            p = (const uint8_t *)v->valuestring;
            n = strlen(v->valuestring);
        }
        be32_u64(w, n);
        bb_put(b, w, 32);
        bb_put(b, p, n);
        bb_zero(b, (32 - n % 32) % 32);
        free(tmp);
        return 0;
    }
    case ABI_ARRAY: {
        if (!cJSON_IsArray(v))
            return util_err(err, errlen, "abi: expected a JSON array");
        size_t n = (size_t)cJSON_GetArraySize(v);
        be32_u64(w, n);
        bb_put(b, w, 32);
        return enc_seq(b, t, v, n, err, errlen);
    }
    case ABI_FARRAY:
        return enc_seq(b, t, v, t->len, err, errlen);
    case ABI_TUPLE:
        return enc_seq(b, t, v, t->n, err, errlen);
    default:
        if (enc_word(t, v, w, err, errlen) < 0)
            return -1;
        bb_put(b, w, 32);
        return 0;
    }
}

int abi_encode(const abi_type *t, const cJSON *v, uint8_t **out, size_t *outlen, char *err,
               size_t errlen)
{
    bbuf b = {0};
    if (!t || !v) {
        return util_err(err, errlen, "abi: missing type or value");
    }
    if (enc_value(&b, t, v, err, errlen) < 0) {
        free(b.d);
        return -1;
    }
    if (!b.d)
        b.d = util_malloc(1);
    *out = b.d;
    *outlen = b.len;
    return 0;
}

/* ---------- decoding ---------- */

typedef struct dctx {
    const uint8_t *d;
    size_t n;
    int flags;
    size_t budget;
    char *err;
    size_t errlen;
} dctx;

static int charge(dctx *c, size_t units)
{
    if (units > c->budget)
        return util_err(c->err, c->errlen, "abi: decoded data larger than the input allows");
    c->budget -= units;
    return 0;
}

static const uint8_t *word_at(dctx *c, size_t pos)
{
    if (pos > c->n || c->n - pos < 32) {
        util_err(c->err, c->errlen, "abi: data too short (need 32 bytes at %zu of %zu)", pos, c->n);
        return NULL;
    }
    return c->d + pos;
}

/* A word used as an offset or a length: must fit in 64 bits and be <= n, which
 * no valid offset or length can exceed. */
static int size_at(dctx *c, size_t pos, size_t *out)
{
    const uint8_t *w = word_at(c, pos);
    if (!w)
        return -1;
    for (int i = 0; i < 24; i++)
        if (w[i])
            return util_err(c->err, c->errlen, "abi: offset/length at %zu out of range", pos);
    uint64_t v = 0;
    for (int i = 24; i < 32; i++)
        v = (v << 8) | w[i];
    if (v > c->n)
        return util_err(c->err, c->errlen, "abi: offset/length %llu at %zu beyond data",
                        (unsigned long long)v, pos);
    *out = (size_t)v;
    return 0;
}

/* Valid UTF-8 copied; invalid sequences and NUL become U+FFFD (owned result). */
static char *utf8_clean(const uint8_t *p, size_t n)
{
    char *out = util_malloc(3 * n + 1);
    size_t o = 0, i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t len = 0;
        uint32_t cp = 0, min = 0;
        if (c >= 0x01 && c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        }
        int ok = len > 0 && n - i >= len;
        for (size_t k = 1; ok && k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                ok = 0;
            else
                cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)))
            ok = 0;
        if (ok) {
            memcpy(out + o, p + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

/* A string item of room + 1 bytes whose text lives in the node's own allocation
 * (the caller writes it): one allocation per decoded value instead of two, and
 * most of a decoded tree is such values. cJSON_IsReference keeps cJSON_Delete
 * from freeing the text on its own; freeing the node frees both, so the item is
 * still owned. cJSON_Duplicate copies it into an ordinary item;
 * cJSON_SetValuestring refuses it (replace the item instead). */
static cJSON *str_item(size_t room, char **text)
{
    if (room > SIZE_MAX - sizeof(cJSON) - 1)
        abort();
    cJSON *j = cJSON_malloc(sizeof *j + room + 1);
    if (!j)
        abort(); /* as util_malloc: out of memory is not recoverable here */
    memset(j, 0, sizeof *j);
    j->type = cJSON_String | cJSON_IsReference;
    j->valuestring = *text = (char *)(j + 1);
    return j;
}

static cJSON *str_json(const char *s, size_t n)
{
    char *t;
    cJSON *j = str_item(n, &t);
    memcpy(t, s, n);
    t[n] = '\0';
    return j;
}

static cJSON *hex_json(const uint8_t *p, size_t n)
{
    char *t;
    cJSON *j = str_item(2 * n + 2, &t);
    hex_encode(p, n, 1, t, 2 * n + 3);
    return j;
}

/* Decimal of v into buf (>= 21 bytes); returns buf. */
static char *u64_dec(uint64_t v, char buf[21])
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "62636465666768697071727374757677787980818283848586878889909192"
                                "93949596979899";
    char *p = buf + 20;
    *p = '\0';
    while (v >= 100) {
        p -= 2;
        memcpy(p, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

/* A 32-byte word of an elementary static type, with its padding checked. */
static cJSON *dec_word(const abi_type *t, const uint8_t *w, int flags, char *err, size_t errlen)
{
    switch (t->kind) {
    case ABI_UINT:
    case ABI_INT: {
        size_t nb = t->size / 8;
        int neg = t->kind == ABI_INT && (w[32 - nb] & 0x80);
        uint8_t fill = neg ? 0xff : 0x00;
        for (size_t i = 0; i < 32 - nb; i++)
            if (w[i] != fill) {
                util_err(err, errlen, "abi: dirty high bits in %s%u",
                         t->kind == ABI_UINT ? "uint" : "int", t->size);
                return NULL;
            }
        money_u256 m;
        money_from_be32(&m, w);
        char buf[MONEY_DEC_MAX + 1];
        if (neg)
            u256_neg(&m);
        if (!(m.w[1] | m.w[2] | m.w[3])) {
            /* Amounts in wei mostly fit 64 bits: skip the 256-bit long division. */
            char *d = u64_dec(m.w[0], buf + 1);
            if (neg)
                *--d = '-';
            return str_json(d, (size_t)(buf + 21 - d));
        }
        buf[0] = '-';
        money_to_dec(&m, buf + 1, sizeof buf - 1);
        return str_json(neg ? buf : buf + 1, strlen(buf + 1) + (neg ? 1 : 0));
    }
    case ABI_ADDRESS: {
        for (int i = 0; i < 12; i++)
            if (w[i]) {
                util_err(err, errlen, "abi: dirty high bytes in address");
                return NULL;
            }
        char *a;
        cJSON *j = str_item(HEX_ADDR_STRLEN - 1, &a);
        if (flags & ABI_DECODE_LOWER_ADDR)
            hex_encode(w + 12, 20, 1, a, HEX_ADDR_STRLEN);
        else
            hex_addr_checksum(w + 12, a);
        return j;
    }
    case ABI_BOOL:
        for (int i = 0; i < 31; i++)
            if (w[i]) {
                util_err(err, errlen, "abi: bool out of range");
                return NULL;
            }
        if (w[31] > 1) {
            util_err(err, errlen, "abi: bool out of range");
            return NULL;
        }
        return cJSON_CreateBool(w[31]);
    case ABI_FBYTES:
        for (size_t i = t->size; i < 32; i++)
            if (w[i]) {
                util_err(err, errlen, "abi: dirty padding in bytes%u", t->size);
                return NULL;
            }
        return hex_json(w, t->size);
    default:
        util_err(err, errlen, "abi: internal: not a word type");
        return NULL;
    }
}

static cJSON *dec_value(dctx *c, const abi_type *t, size_t pos);

/* Tuple output: object keyed by names when all are present and distinct. */
static cJSON *tuple_shape(const abi_type *t, cJSON *arr)
{
    if (!t->names || t->n == 0)
        return arr;
    for (size_t i = 0; i < t->n; i++) {
        if (!t->names[i])
            return arr;
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->names[i], t->names[j]) == 0)
                return arr;
    }
    cJSON *obj = cJSON_CreateObject();
    for (size_t i = 0; i < t->n; i++)
        cJSON_AddItemToObject(obj, t->names[i], cJSON_DetachItemFromArray(arr, 0));
    cJSON_Delete(arr);
    return obj;
}

/* The element of type ct whose head is at base + hoff in a head/tail sequence
 * starting at base (offsets are relative to base). */
static cJSON *dec_elem(dctx *c, const abi_type *ct, size_t base, size_t hoff)
{
    size_t pos = base + hoff;
    if (pos < base) { /* wrap-around */
        util_err(c->err, c->errlen, "abi: position overflow");
        return NULL;
    }
    if (!ct->dynamic)
        return dec_value(c, ct, pos);
    size_t off;
    if (size_at(c, pos, &off) < 0)
        return NULL;
    if (off > c->n - base) {
        util_err(c->err, c->errlen, "abi: offset %zu beyond data", off);
        return NULL;
    }
    return dec_value(c, ct, base + off);
}

/* n elements laid out head/tail from base. */
static cJSON *dec_seq(dctx *c, const abi_type *t, size_t n, size_t base)
{
    cJSON *arr = cJSON_CreateArray();
    size_t hoff = 0;
    for (size_t i = 0; i < n; i++) {
        const abi_type *ct = t->kind == ABI_TUPLE ? t->comp[i] : t->elem;
        cJSON *v = dec_elem(c, ct, base, hoff);
        if (!v) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, v);
        hoff += ct->head;
    }
    return arr;
}

static cJSON *dec_value(dctx *c, const abi_type *t, size_t pos)
{
    switch (t->kind) {
    case ABI_BYTES:
    case ABI_STRING: {
        size_t len;
        if (size_at(c, pos, &len) < 0)
            return NULL;
        size_t start = pos + 32; /* size_at proved pos + 32 <= n */
        if (len > c->n - start) {
            util_err(c->err, c->errlen, "abi: %zu bytes at %zu run past the data", len, start);
            return NULL;
        }
        if (c->flags & ABI_DECODE_STRICT) {
            size_t pad = (32 - len % 32) % 32;
            if (pad > c->n - start - len) {
                util_err(c->err, c->errlen, "abi: missing padding after bytes");
                return NULL;
            }
            for (size_t i = 0; i < pad; i++)
                if (c->d[start + len + i]) {
                    util_err(c->err, c->errlen, "abi: non-zero padding after bytes");
                    return NULL;
                }
        }
        if (charge(c, 32 + 2 * len) < 0)
            return NULL;
        if (t->kind == ABI_BYTES)
            return hex_json(c->d + start, len);
        char *s = utf8_clean(c->d + start, len);
        cJSON *j = cJSON_CreateString(s);
        free(s);
        return j;
    }
    case ABI_ARRAY: {
        size_t k;
        if (size_at(c, pos, &k) < 0)
            return NULL;
        size_t base = pos + 32;
        size_t eh = t->elem->head;
        /* Every element needs its head inside the data; zero-size elements
         * (empty tuples) are bounded by the budget alone. */
        if (eh && k > (c->n - base) / eh) {
            util_err(c->err, c->errlen, "abi: array length %zu beyond data", k);
            return NULL;
        }
        if (charge(c, k) < 0)
            return NULL;
        return dec_seq(c, t, k, base);
    }
    case ABI_FARRAY:
        if (charge(c, t->len) < 0)
            return NULL;
        return dec_seq(c, t, t->len, pos);
    case ABI_TUPLE: {
        if (charge(c, 1) < 0)
            return NULL;
        cJSON *arr = dec_seq(c, t, t->n, pos);
        return arr ? tuple_shape(t, arr) : NULL;
    }
    default: {
        const uint8_t *w = word_at(c, pos);
        if (!w || charge(c, 32) < 0)
            return NULL;
        return dec_word(t, w, c->flags, c->err, c->errlen);
    }
    }
}

static void dctx_init(dctx *c, const uint8_t *data, size_t len, int flags, char *err, size_t errlen)
{
    c->d = data;
    c->n = len;
    c->flags = flags;
    c->budget = len > (SIZE_MAX - 4096) / 4 ? SIZE_MAX : DEC_BUDGET(len);
    c->err = err;
    c->errlen = errlen;
}

cJSON *abi_decode(const abi_type *t, const uint8_t *data, size_t len, int flags, char *err,
                  size_t errlen)
{
    dctx c;
    if (!t || (!data && len)) {
        util_err(err, errlen, "abi: missing type or data");
        return NULL;
    }
    dctx_init(&c, data, len, flags, err, errlen);
    return dec_value(&c, t, 0);
}

/* Decodes a tuple's components as a positional array whatever their names. */
static cJSON *decode_positional(const abi_type *tuple, const uint8_t *data, size_t len, int flags,
                                char *err, size_t errlen)
{
    dctx c;
    dctx_init(&c, data, len, flags, err, errlen);
    return dec_seq(&c, tuple, tuple->n, 0);
}

/* ---------- functions ---------- */

void abi_fn_free(abi_fn *fn)
{
    if (!fn)
        return;
    free(fn->name);
    free(fn->signature);
    free(fn->mutability);
    abi_type_free(fn->inputs);
    abi_type_free(fn->outputs);
    free(fn);
}

abi_fn *abi_fn_parse(const char *sig, char *err, size_t errlen)
{
    if (!sig) {
        util_err(err, errlen, "abi: missing signature");
        return NULL;
    }
    const char *paren = strchr(sig, '(');
    if (!paren || paren == sig) {
        util_err(err, errlen, "abi: signature needs name(types)");
        return NULL;
    }
    char *name = strndup(sig, (size_t)(paren - sig));
    if (!name)
        abort();
    if (!valid_ident(name)) {
        util_err(err, errlen, "abi: bad function name");
        free(name);
        return NULL;
    }
    const char *p = paren;
    abi_type *in = parse_rec(&p, 0, err, errlen), *out = NULL;
    if (in && in->kind == ABI_TUPLE && *p == '(') {
        out = parse_rec(&p, 0, err, errlen);
        if (!out || out->kind != ABI_TUPLE) {
            if (out)
                util_err(err, errlen, "abi: outputs must be a tuple");
            goto fail;
        }
    }
    if (!in || in->kind != ABI_TUPLE || *p) {
        if (in)
            util_err(err, errlen, "abi: bad signature '%s'", sig);
        goto fail;
    }
    abi_fn *fn = util_calloc(1, sizeof *fn);
    fn->name = name;
    fn->inputs = in;
    fn->outputs = out ? out : type_new(ABI_TUPLE);
    fn->signature = signature_of(name, in);
    fn->mutability = util_strdup("");
    abi_selector(fn->signature, fn->selector);
    return fn;
fail:
    free(name);
    abi_type_free(in);
    abi_type_free(out);
    return NULL;
}

int abi_fn_encode_call(const abi_fn *fn, const cJSON *args, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen)
{
    bbuf b = {0};
    char sub[UTIL_ERRLEN];
    if (!args)
        return util_err(err, errlen, "abi: missing arguments");
    bb_put(&b, fn->selector, ABI_SELECTOR_LEN);
    if (enc_value(&b, fn->inputs, args, sub, sizeof sub) < 0) {
        free(b.d);
        return util_err(err, errlen, "%s: %s", fn->signature, sub);
    }
    *out = b.d;
    *outlen = b.len;
    return 0;
}

cJSON *abi_fn_decode_call(const abi_fn *fn, const uint8_t *data, size_t len, int flags, char *err,
                          size_t errlen)
{
    if (len < ABI_SELECTOR_LEN || memcmp(data, fn->selector, ABI_SELECTOR_LEN) != 0) {
        util_err(err, errlen, "abi: calldata is not a call to %s", fn->signature);
        return NULL;
    }
    return decode_positional(fn->inputs, data + ABI_SELECTOR_LEN, len - ABI_SELECTOR_LEN, flags,
                             err, errlen);
}

cJSON *abi_fn_decode_result(const abi_fn *fn, const uint8_t *data, size_t len, int flags, char *err,
                            size_t errlen)
{
    return decode_positional(fn->outputs, data, len, flags, err, errlen);
}

/* ---------- contracts ---------- */

void abi_contract_free(abi_contract *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_fns; i++) {
        abi_fn *f = &c->fns[i];
        free(f->name);
        free(f->signature);
        free(f->mutability);
        abi_type_free(f->inputs);
        abi_type_free(f->outputs);
    }
    for (size_t i = 0; i < c->n_events; i++) {
        abi_event *e = &c->events[i];
        free(e->name);
        free(e->signature);
        free(e->indexed);
        for (size_t k = 0; e->keys && k < e->inputs->n; k++)
            free(e->keys[k]);
        free(e->keys);
        abi_type_free(e->inputs);
        abi_type_free(e->data);
    }
    for (size_t i = 0; i < c->n_errors; i++) {
        free(c->errors[i].name);
        free(c->errors[i].signature);
        abi_type_free(c->errors[i].inputs);
    }
    free(c->fns);
    free(c->events);
    free(c->errors);
    free(c);
}

static abi_type *params_of(const cJSON *entry, const char *key, char *err, size_t errlen)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(entry, key);
    if (!p) {
        abi_type *t = type_new(ABI_TUPLE);
        type_finish(t, NULL, 0);
        return t;
    }
    if (!cJSON_IsArray(p)) {
        util_err(err, errlen, "abi: \"%s\" is not an array", key);
        return NULL;
    }
    return tuple_from_params(p, 0, err, errlen);
}

static int load_event(abi_event *e, const cJSON *entry, const char *name, char *err, size_t errlen)
{
    e->name = util_strdup(name);
    e->inputs = params_of(entry, "inputs", err, errlen);
    if (!e->inputs)
        return -1;
    e->anonymous = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(entry, "anonymous"));
    e->signature = signature_of(name, e->inputs);
    keccak_256_str(e->signature, e->topic0);
    /* The same rule add_arg applies per call, settled once per ABI. */
    e->keys = util_calloc(e->inputs->n ? e->inputs->n : 1, sizeof *e->keys);
    for (size_t k = 0; k < e->inputs->n; k++) {
        const char *nm = e->inputs->names ? e->inputs->names[k] : NULL;
        for (size_t j = 0; nm && j < k; j++)
            if (strcmp(e->keys[j], nm) == 0)
                nm = NULL;
        if (nm) {
            e->keys[k] = util_strdup(nm);
        } else {
            char pos[24];
            snprintf(pos, sizeof pos, "%zu", k);
            e->keys[k] = util_strdup(pos);
        }
    }
    e->indexed = util_calloc(e->inputs->n ? e->inputs->n : 1, 1);
    e->data = type_new(ABI_TUPLE);
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(entry, "inputs");
    size_t i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, ins)
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "indexed"))) {
            e->indexed[i] = 1;
            e->n_indexed++;
        }
        i++;
    }
    if (e->n_indexed > (e->anonymous ? 4u : 3u))
        return util_err(err, errlen, "abi: event %s has too many indexed inputs", name);
    size_t nd = e->inputs->n - e->n_indexed;
    if (nd) {
        e->data->comp = util_calloc(nd, sizeof *e->data->comp);
        e->data->names = util_calloc(nd, sizeof *e->data->names);
    }
    /* The data tuple borrows nothing: parse the non-indexed params again. */
    i = 0;
    cJSON_ArrayForEach(p, ins)
    {
        if (!e->indexed[i]) {
            abi_type *t = from_json_rec(p, 0, err, errlen);
            if (!t)
                return -1;
            e->data->comp[e->data->n] = t;
            e->data->names[e->data->n] =
                e->inputs->names[i] ? util_strdup(e->inputs->names[i]) : NULL;
            e->data->n++;
        }
        i++;
    }
    return type_finish(e->data, err, errlen);
}

abi_contract *abi_contract_from_json(const cJSON *abi, char *err, size_t errlen)
{
    if (cJSON_IsObject(abi))
        abi = cJSON_GetObjectItemCaseSensitive(abi, "abi");
    if (!cJSON_IsArray(abi)) {
        util_err(err, errlen, "abi: expected a JSON array of ABI entries");
        return NULL;
    }
    size_t n = (size_t)cJSON_GetArraySize(abi);
    abi_contract *c = util_calloc(1, sizeof *c);
    c->fns = util_calloc(n ? n : 1, sizeof *c->fns);
    c->events = util_calloc(n ? n : 1, sizeof *c->events);
    c->errors = util_calloc(n ? n : 1, sizeof *c->errors);
    const cJSON *e;
    size_t idx = 0;
    cJSON_ArrayForEach(e, abi)
    {
        char sub[UTIL_ERRLEN] = "";
        if (!cJSON_IsObject(e)) {
            util_err(err, errlen, "abi: entry %zu is not an object", idx);
            goto fail;
        }
        const cJSON *jt = cJSON_GetObjectItemCaseSensitive(e, "type");
        const char *type = cJSON_IsString(jt) ? jt->valuestring : "function";
        if (strcmp(type, "constructor") == 0 || strcmp(type, "fallback") == 0 ||
            strcmp(type, "receive") == 0) {
            idx++;
            continue;
        }
        const cJSON *jn = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (!cJSON_IsString(jn) || !valid_ident(jn->valuestring)) {
            util_err(err, errlen, "abi: entry %zu has no valid name", idx);
            goto fail;
        }
        const char *name = jn->valuestring;
        if (strcmp(type, "function") == 0) {
            abi_fn *f = &c->fns[c->n_fns++];
            const cJSON *jm = cJSON_GetObjectItemCaseSensitive(e, "stateMutability");
            f->name = util_strdup(name);
            f->mutability = util_strdup(cJSON_IsString(jm) ? jm->valuestring : "");
            f->inputs = params_of(e, "inputs", sub, sizeof sub);
            f->outputs = f->inputs ? params_of(e, "outputs", sub, sizeof sub) : NULL;
            if (!f->outputs) {
                util_err(err, errlen, "abi: function %s: %s", name, sub);
                goto fail;
            }
            f->signature = signature_of(name, f->inputs);
            abi_selector(f->signature, f->selector);
        } else if (strcmp(type, "event") == 0) {
            if (load_event(&c->events[c->n_events++], e, name, sub, sizeof sub) < 0) {
                util_err(err, errlen, "abi: event %s: %s", name, sub);
                goto fail;
            }
        } else if (strcmp(type, "error") == 0) {
            abi_error *x = &c->errors[c->n_errors++];
            x->name = util_strdup(name);
            x->inputs = params_of(e, "inputs", sub, sizeof sub);
            if (!x->inputs) {
                util_err(err, errlen, "abi: error %s: %s", name, sub);
                goto fail;
            }
            x->signature = signature_of(name, x->inputs);
            abi_selector(x->signature, x->selector);
        } else {
            util_err(err, errlen, "abi: entry %zu has unknown type '%s'", idx, type);
            goto fail;
        }
        idx++;
    }
    return c;
fail:
    abi_contract_free(c);
    return NULL;
}

abi_contract *abi_contract_parse(const char *json, char *err, size_t errlen)
{
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    if (!j) {
        util_err(err, errlen, "abi: invalid JSON");
        return NULL;
    }
    abi_contract *c = abi_contract_from_json(j, err, errlen);
    cJSON_Delete(j);
    return c;
}

abi_contract *abi_contract_load_in(const char *dir, const char *contract, char *err, size_t errlen)
{
    char path[1024];
    if ((size_t)snprintf(path, sizeof path, "%s/%s.json", dir ? dir : ".", contract) >=
        sizeof path) {
        util_err(err, errlen, "abi: path too long for %s", contract);
        return NULL;
    }
    return abi_contract_load(path, err, errlen);
}

abi_contract *abi_contract_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        util_err(err, errlen, "abi: cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    sbuf b = {0};
    char chunk[8192];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
        sb_put(&b, chunk, r);
    int bad = ferror(f);
    fclose(f);
    if (bad || !b.s) {
        free(b.s);
        util_err(err, errlen, "abi: cannot read %s", path);
        return NULL;
    }
    char sub[UTIL_ERRLEN];
    abi_contract *c = abi_contract_parse(b.s, sub, sizeof sub);
    free(b.s);
    if (!c)
        util_err(err, errlen, "%s: %s", path, sub);
    return c;
}

const abi_fn *abi_contract_fn(const abi_contract *c, const char *key)
{
    int by_sig = strchr(key, '(') != NULL;
    for (size_t i = 0; i < c->n_fns; i++)
        if (strcmp(by_sig ? c->fns[i].signature : c->fns[i].name, key) == 0)
            return &c->fns[i];
    return NULL;
}

const abi_event *abi_contract_event(const abi_contract *c, const char *key)
{
    int by_sig = strchr(key, '(') != NULL;
    for (size_t i = 0; i < c->n_events; i++)
        if (strcmp(by_sig ? c->events[i].signature : c->events[i].name, key) == 0)
            return &c->events[i];
    return NULL;
}

const abi_error *abi_contract_error(const abi_contract *c, const char *key)
{
    int by_sig = strchr(key, '(') != NULL;
    for (size_t i = 0; i < c->n_errors; i++)
        if (strcmp(by_sig ? c->errors[i].signature : c->errors[i].name, key) == 0)
            return &c->errors[i];
    return NULL;
}

/* ---------- events ---------- */

static void add_arg(cJSON *args, const char *name, size_t pos, cJSON *v)
{
    char key[24];
    if (!name || cJSON_GetObjectItemCaseSensitive(args, name)) {
        snprintf(key, sizeof key, "%zu", pos);
        name = key;
    }
    cJSON_AddItemToObject(args, name, v);
}

static int is_word_type(const abi_type *t)
{
    return t->kind == ABI_UINT || t->kind == ABI_INT || t->kind == ABI_ADDRESS ||
           t->kind == ABI_BOOL || t->kind == ABI_FBYTES;
}

static cJSON *event_decode(const abi_event *ev, const uint8_t (*topics)[ABI_TOPIC_LEN],
                           size_t n_topics, const uint8_t *data, size_t len, int flags, char *err,
                           size_t errlen)
{
    size_t first = ev->anonymous ? 0 : 1;
    if (n_topics != first + ev->n_indexed) {
        util_err(err, errlen, "abi: %s expects %zu topics, log has %zu", ev->name,
                 first + ev->n_indexed, n_topics);
        return NULL;
    }
    if (!ev->anonymous && memcmp(topics[0], ev->topic0, ABI_TOPIC_LEN) != 0) {
        util_err(err, errlen, "abi: topic0 is not %s", ev->signature);
        return NULL;
    }
    /* Data values go straight from the decoder into a plain vector and from there
     * into "args": no intermediate cJSON array. They are decoded before the topics
     * so the first error reported is the same as decoding data then topics. */
    const abi_type *dt = ev->data;
    cJSON *small[16], **vals = small;
    if (dt->n > sizeof small / sizeof small[0])
        vals = util_calloc(dt->n, sizeof *vals);
    dctx c;
    dctx_init(&c, data, len, flags, err, errlen);
    size_t nd = 0, hoff = 0;
    cJSON *args = NULL;
    for (; nd < dt->n; nd++) {
        if (!(vals[nd] = dec_elem(&c, dt->comp[nd], 0, hoff)))
            goto fail;
        hoff += dt->comp[nd]->head;
    }
    args = cJSON_CreateObject();
    size_t ti = first, di = 0;
    for (size_t i = 0; i < ev->inputs->n; i++) {
        const abi_type *t = ev->inputs->comp[i];
        cJSON *v;
        if (ev->indexed[i]) {
            v = is_word_type(t) ? dec_word(t, topics[ti], flags, err, errlen)
                                : hex_json(topics[ti], ABI_TOPIC_LEN);
            ti++;
            if (!v)
                goto fail;
        } else {
            v = vals[di];
            vals[di++] = NULL;
        }
        cJSON_AddItemToObject(args, ev->keys[i], v);
    }
    if (vals != small)
        free(vals);
    cJSON *out = cJSON_CreateObject();
    /* Literal keys are static: referencing them saves three copies per log
     * (the values are copied as usual, the output owns them). */
    cJSON_AddItemToObjectCS(out, "event", str_json(ev->name, strlen(ev->name)));
    cJSON_AddItemToObjectCS(out, "signature", str_json(ev->signature, strlen(ev->signature)));
    cJSON_AddItemToObjectCS(out, "args", args);
    return out;
fail:
    for (size_t k = 0; k < nd; k++)
        cJSON_Delete(vals[k]);
    if (vals != small)
        free(vals);
    cJSON_Delete(args);
    return NULL;
}

cJSON *abi_event_decode(const abi_event *ev, const uint8_t (*topics)[ABI_TOPIC_LEN],
                        size_t n_topics, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    return event_decode(ev, topics, n_topics, data, len, 0, err, errlen);
}

cJSON *abi_decode_log(const abi_contract *c, const uint8_t (*topics)[ABI_TOPIC_LEN],
                      size_t n_topics, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    if (n_topics == 0 || !topics) {
        util_err(err, errlen, "abi: log without topics (anonymous events are not decoded)");
        return NULL;
    }
    int seen = 0;
    /* A 64-bit prefix rejects non-matching events with one compare each. */
    uint64_t key;
    memcpy(&key, topics[0], sizeof key);
    for (size_t i = 0; i < c->n_events; i++) {
        const abi_event *ev = &c->events[i];
        uint64_t k;
        memcpy(&k, ev->topic0, sizeof k);
        if (k != key || ev->anonymous || memcmp(ev->topic0, topics[0], ABI_TOPIC_LEN) != 0)
            continue;
        seen = 1;
        if (ev->n_indexed + 1 == n_topics)
            return event_decode(ev, topics, n_topics, data, len, c->log_flags, err, errlen);
    }
    util_err(err, errlen,
             seen ? "abi: event found but the topic count does not match"
                  : "abi: no event in the ABI matches topic0");
    return NULL;
}

cJSON *abi_decode_log_json(const abi_contract *c, const cJSON *log, char *err, size_t errlen)
{
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(log, "topics");
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(log, "data");
    if (!cJSON_IsArray(jt) || !cJSON_IsString(jd)) {
        util_err(err, errlen, "abi: log needs \"topics\" and \"data\"");
        return NULL;
    }
    int nt = cJSON_GetArraySize(jt);
    if (nt > 4) {
        util_err(err, errlen, "abi: log has %d topics", nt);
        return NULL;
    }
    uint8_t topics[4][ABI_TOPIC_LEN];
    size_t i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, jt)
    {
        if (!cJSON_IsString(t) ||
            hex_decode_fixed(t->valuestring, topics[i], ABI_TOPIC_LEN, err, errlen) < 0) {
            if (!cJSON_IsString(t))
                util_err(err, errlen, "abi: topic is not a string");
            return NULL;
        }
        i++;
    }
    /* Most logs carry a few hundred bytes: decode them on the stack (this runs once per
     * log in bulk backfills). */
    uint8_t small[2048], *data = small;
    size_t len = 0, slen = strlen(jd->valuestring);
    if (slen <= 2 + 2 * sizeof small) {
        if (hex_decode_n(jd->valuestring, slen, small, sizeof small, &len, err, errlen) != 0)
            return NULL;
    } else if (!(data = hex_decode_new(jd->valuestring, &len, err, errlen))) {
        return NULL;
    }
    cJSON *out =
        abi_decode_log(c, (const uint8_t(*)[ABI_TOPIC_LEN])topics, i, data, len, err, errlen);
    if (data != small)
        free(data);
    return out;
}

/* ---------- reverts ---------- */

const char *abi_panic_meaning(uint64_t code)
{
    switch (code) {
    case 0x00:
        return "generic compiler panic";
    case 0x01:
        return "assertion failed";
    case 0x11:
        return "arithmetic overflow or underflow";
    case 0x12:
        return "division or modulo by zero";
    case 0x21:
        return "invalid enum value";
    case 0x22:
        return "incorrectly encoded storage byte array";
    case 0x31:
        return "pop() on an empty array";
    case 0x32:
        return "array index out of bounds";
    case 0x41:
        return "out of memory (allocation too large)";
    case 0x51:
        return "call to a zero-initialized internal function";
    default:
        return NULL;
    }
}

static cJSON *revert_raw(const uint8_t *data, size_t len)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "raw");
    cJSON_AddItemToObject(o, "data", hex_json(data, len));
    return o;
}

cJSON *abi_decode_revert(const abi_contract *c, const uint8_t *data, size_t len)
{
    /* Built from the signatures on each call: cheap next to an RPC round trip,
     * and keeps the selectors derived rather than typed in. */
    uint8_t sel_error[ABI_SELECTOR_LEN], sel_panic[ABI_SELECTOR_LEN];
    if (len == 0 || !data) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", "empty");
        return o;
    }
    if (len < ABI_SELECTOR_LEN)
        return revert_raw(data, len);
    abi_selector("Error(string)", sel_error);
    abi_selector("Panic(uint256)", sel_panic);
    const uint8_t *body = data + ABI_SELECTOR_LEN;
    size_t blen = len - ABI_SELECTOR_LEN;
    if (memcmp(data, sel_error, ABI_SELECTOR_LEN) == 0) {
        abi_type *t = abi_type_parse("(string)", NULL, 0);
        cJSON *v = t ? abi_decode(t, body, blen, 0, NULL, 0) : NULL;
        abi_type_free(t);
        if (v) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "kind", "error");
            cJSON_AddItemToObject(o, "message", cJSON_DetachItemFromArray(v, 0));
            cJSON_Delete(v);
            return o;
        }
        return revert_raw(data, len);
    }
    if (memcmp(data, sel_panic, ABI_SELECTOR_LEN) == 0) {
        money_u256 code;
        if (blen >= 32) {
            money_from_be32(&code, body);
            uint64_t c64;
            char hex[MONEY_HEX_MAX];
            money_to_hex(&code, hex, sizeof hex);
            const char *m = money_to_u64(&code, &c64) == 0 ? abi_panic_meaning(c64) : NULL;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "kind", "panic");
            cJSON_AddStringToObject(o, "code", hex);
            cJSON_AddStringToObject(o, "meaning", m ? m : "unknown panic code");
            return o;
        }
        return revert_raw(data, len);
    }
    for (size_t i = 0; c && i < c->n_errors; i++) {
        const abi_error *e = &c->errors[i];
        if (memcmp(data, e->selector, ABI_SELECTOR_LEN) != 0)
            continue;
        cJSON *vals = decode_positional(e->inputs, body, blen, 0, NULL, 0);
        if (!vals)
            continue; /* selector collision or garbage: try others, else raw */
        cJSON *args = cJSON_CreateObject();
        for (size_t k = 0; k < e->inputs->n; k++)
            add_arg(args, e->inputs->names ? e->inputs->names[k] : NULL, k,
                    cJSON_DetachItemFromArray(vals, 0));
        cJSON_Delete(vals);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", "custom");
        cJSON_AddStringToObject(o, "error", e->name);
        cJSON_AddStringToObject(o, "signature", e->signature);
        cJSON_AddItemToObject(o, "args", args);
        return o;
    }
    return revert_raw(data, len);
}

int abi_revert_message(const cJSON *rev, char *buf, size_t len)
{
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rev, "kind"));
    int n;
    if (!buf || len == 0)
        return -1;
    if (!kind) {
        n = snprintf(buf, len, "revert (undecoded)");
    } else if (strcmp(kind, "empty") == 0) {
        n = snprintf(buf, len, "revert without data");
    } else if (strcmp(kind, "error") == 0) {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rev, "message"));
        n = snprintf(buf, len, "Error: %s", m ? m : "");
    } else if (strcmp(kind, "panic") == 0) {
        const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rev, "code"));
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rev, "meaning"));
        n = snprintf(buf, len, "Panic %s: %s", code ? code : "?", m ? m : "");
    } else if (strcmp(kind, "custom") == 0) {
        const char *e = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rev, "error"));
        char *a = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(rev, "args"));
        n = snprintf(buf, len, "%s %s", e ? e : "?", a ? a : "{}");
        free(a);
    } else {
        const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rev, "data"));
        n = snprintf(buf, len, "revert %s", d ? d : "");
    }
    return n < 0 || (size_t)n >= len ? -1 : 0;
}
