/* eip712: EIP-191 personal messages and EIP-712 typed-data hashing (see eip712.h).
 *
 * The "types" object is validated once into a small table of borrowed cJSON
 * pointers (tset) before anything is hashed, so every later step can assume
 * well-formed type strings; values are validated as they are encoded. Type
 * strings are handled as (pointer, length) slices of the JSON strings, which
 * avoids allocating for array element types. */
#include "eip712.h"
#include "hex.h"
#include "keccak.h"
#include "secp.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS   128 /* fields per struct type */
#define MAX_TYPE_LEN 256 /* characters in a type or field name */
#define MAX_DEC_LEN  80

typedef struct stype {
    const char *name;
    const cJSON *fields; /* array of {"name","type"} */
} stype;

typedef struct tset {
    stype t[EIP712_MAX_TYPES];
    size_t n;
} tset;

enum { K_UINT, K_INT, K_ADDRESS, K_BOOL, K_FBYTES, K_BYTES, K_STRING, K_STRUCT, K_ARRAY };

/* A parsed type slice. */
typedef struct tinfo {
    int kind;
    unsigned size;    /* bits (uint/int) or bytes (bytesN) */
    const stype *st;  /* K_STRUCT */
    const char *elem; /* K_ARRAY: element type slice */
    size_t elem_len;
    int fixed;    /* K_ARRAY: T[k] */
    size_t count; /* K_ARRAY fixed length */
} tinfo;

/* ---- EIP-191 ---- */

void eip712_personal_hash(const uint8_t *msg, size_t len, uint8_t out[32])
{
    char prefix[64];
    int n = snprintf(prefix, sizeof prefix,
                     "\x19"
                     "Ethereum Signed Message:\n%zu",
                     len);
    keccak_ctx c;
    keccak_init(&c);
    keccak_update(&c, prefix, (size_t)n);
    if (len)
        keccak_update(&c, msg, len);
    keccak_final(&c, out);
}

static int sign_digest(const uint8_t digest[32], const uint8_t key[32], uint8_t sig[65], char *err,
                       size_t errlen)
{
    if (secp_sign_hash(key, digest, sig, err, errlen) != 0)
        return -1;
    sig[64] += 27; /* wallets and ecrecover-based contracts expect 27/28 */
    return 0;
}

int eip712_personal_sign(const uint8_t *msg, size_t len, const uint8_t key[32], uint8_t sig[65],
                         char *err, size_t errlen)
{
    uint8_t h[32];
    eip712_personal_hash(msg, len, h);
    return sign_digest(h, key, sig, err, errlen);
}

int eip712_personal_recover(const uint8_t *msg, size_t len, const uint8_t sig[65], uint8_t addr[20],
                            char *err, size_t errlen)
{
    uint8_t h[32];
    eip712_personal_hash(msg, len, h);
    return secp_recover_address_ex(h, sig, SECP_RECOVER_LOW_S, addr, err, errlen);
}

/* ---- type parsing ---- */

static int is_ident(const char *s, size_t len)
{
    if (len == 0 || len > MAX_TYPE_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
        int digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0))
            return 0;
    }
    return 1;
}

/* Decimal without leading zeros, 1..max; 0 if not. */
static unsigned parse_small(const char *s, size_t len, unsigned max)
{
    if (len == 0 || len > 5 || s[0] == '0')
        return 0;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= max ? v : 0;
}

/* 1 and fills ti if s[0..len) is an atomic type name. */
static int atomic(const char *s, size_t len, tinfo *ti)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(s, lit, len) == 0)
    memset(ti, 0, sizeof *ti);
    if (IS("address")) {
        ti->kind = K_ADDRESS;
        return 1;
    }
    if (IS("bool")) {
        ti->kind = K_BOOL;
        return 1;
    }
    if (IS("string")) {
        ti->kind = K_STRING;
        return 1;
    }
    if (IS("bytes")) {
        ti->kind = K_BYTES;
        return 1;
    }
#undef IS
    if (len > 5 && memcmp(s, "bytes", 5) == 0) {
        unsigned n = parse_small(s + 5, len - 5, 32);
        if (!n)
            return 0;
        ti->kind = K_FBYTES;
        ti->size = n;
        return 1;
    }
    size_t pre = 0;
    if (len > 4 && memcmp(s, "uint", 4) == 0) {
        ti->kind = K_UINT;
        pre = 4;
    } else if (len > 3 && memcmp(s, "int", 3) == 0) {
        ti->kind = K_INT;
        pre = 3;
    } else {
        return 0;
    }
    unsigned bits = parse_small(s + pre, len - pre, 256);
    if (!bits || bits % 8)
        return 0;
    ti->size = bits;
    return 1;
}

static const stype *tset_find(const tset *ts, const char *s, size_t len)
{
    for (size_t i = 0; i < ts->n; i++)
        if (strlen(ts->t[i].name) == len && memcmp(ts->t[i].name, s, len) == 0)
            return &ts->t[i];
    return NULL;
}

/* Parses a type slice against the table. */
static int type_parse(const tset *ts, const char *s, size_t len, tinfo *ti, char *err,
                      size_t errlen)
{
    if (len == 0 || len > MAX_TYPE_LEN)
        return util_err(err, errlen, "eip712: bad type name length");
    if (s[len - 1] == ']') {
        size_t open = len - 1;
        while (open > 0 && s[open - 1] != '[')
            open--;
        if (open == 0)
            return util_err(err, errlen, "eip712: malformed array type '%.*s'", (int)len, s);
        open--; /* index of '[' */
        memset(ti, 0, sizeof *ti);
        ti->kind = K_ARRAY;
        ti->elem = s;
        ti->elem_len = open;
        size_t inner = len - 1 - (open + 1);
        if (inner) {
            unsigned k = parse_small(s + open + 1, inner, 65535);
            if (!k)
                return util_err(err, errlen, "eip712: bad array length in '%.*s'", (int)len, s);
            ti->fixed = 1;
            ti->count = k;
        }
        if (open == 0)
            return util_err(err, errlen, "eip712: array without element type");
        tinfo e;
        return type_parse(ts, s, open, &e, err, errlen);
    }
    if (atomic(s, len, ti))
        return 0;
    const stype *st = tset_find(ts, s, len);
    if (!st)
        return util_err(err, errlen, "eip712: unknown type '%.*s'", (int)len, s);
    memset(ti, 0, sizeof *ti);
    ti->kind = K_STRUCT;
    ti->st = st;
    return 0;
}

static const char *field_str(const cJSON *f, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const stype *base_struct(const tset *ts, const char *s, size_t len);

/* DFS colouring: 0 unvisited, 1 on the current path, 2 done. -1 on a back edge. */
static int cycle_from(const tset *ts, size_t k, int *color)
{
    if (color[k] == 2)
        return 0;
    if (color[k] == 1)
        return -1;
    color[k] = 1;
    const cJSON *f;
    cJSON_ArrayForEach(f, ts->t[k].fields)
    {
        const char *ft = field_str(f, "type");
        const stype *d = base_struct(ts, ft, strlen(ft));
        if (d && cycle_from(ts, (size_t)(d - ts->t), color) != 0)
            return -1;
    }
    color[k] = 2;
    return 0;
}

static int tset_load(tset *ts, const cJSON *types, char *err, size_t errlen)
{
    ts->n = 0;
    if (!cJSON_IsObject(types))
        return util_err(err, errlen, "eip712: \"types\" must be an object");
    const cJSON *ty;
    cJSON_ArrayForEach(ty, types)
    {
        const char *name = ty->string;
        tinfo tmp;
        if (!name || !is_ident(name, strlen(name)))
            return util_err(err, errlen, "eip712: bad struct type name");
        if (atomic(name, strlen(name), &tmp))
            return util_err(err, errlen, "eip712: struct type '%s' shadows an atomic type", name);
        if (tset_find(ts, name, strlen(name)))
            return util_err(err, errlen, "eip712: duplicate type '%s'", name);
        if (ts->n == EIP712_MAX_TYPES)
            return util_err(err, errlen, "eip712: more than %d types", EIP712_MAX_TYPES);
        if (!cJSON_IsArray(ty))
            return util_err(err, errlen, "eip712: type '%s' must be an array of fields", name);
        int nf = cJSON_GetArraySize(ty);
        if (nf > MAX_FIELDS)
            return util_err(err, errlen, "eip712: type '%s' has too many fields", name);
        const cJSON *f;
        int i = 0;
        cJSON_ArrayForEach(f, ty)
        {
            const char *fn = field_str(f, "name"), *ft = field_str(f, "type");
            if (!cJSON_IsObject(f) || !fn || !ft)
                return util_err(err, errlen, "eip712: type '%s': field needs string name and type",
                                name);
            if (!is_ident(fn, strlen(fn)))
                return util_err(err, errlen, "eip712: type '%s': bad field name", name);
            int j = 0;
            const cJSON *g;
            cJSON_ArrayForEach(g, ty)
            {
                if (j++ >= i)
                    break;
                if (strcmp(field_str(g, "name"), fn) == 0)
                    return util_err(err, errlen, "eip712: type '%s': duplicate field '%s'", name,
                                    fn);
            }
            i++;
        }
        ts->t[ts->n].name = name;
        ts->t[ts->n].fields = ty;
        ts->n++;
    }
    /* Field types may reference types declared later, so check them once all are known. */
    for (size_t k = 0; k < ts->n; k++) {
        const cJSON *f;
        cJSON_ArrayForEach(f, ts->t[k].fields)
        {
            const char *ft = field_str(f, "type");
            tinfo ti;
            char e[UTIL_ERRLEN];
            if (type_parse(ts, ft, strlen(ft), &ti, e, sizeof e) != 0)
                return util_err(err, errlen, "eip712: type '%s' field '%s': %s", ts->t[k].name,
                                field_str(f, "name"), e);
        }
    }
    /* ethers and alloy refuse cyclic struct references, so a cyclic type could
     * never be signed by a wallet; refusing it also keeps every walk finite. */
    int color[EIP712_MAX_TYPES] = {0};
    for (size_t k = 0; k < ts->n; k++)
        if (cycle_from(ts, k, color) != 0)
            return util_err(err, errlen, "eip712: cyclic reference through type '%s'",
                            ts->t[k].name);
    return 0;
}

/* ---- encodeType ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap - b->len < n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            abort(); /* same policy as util_malloc */
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Base struct of a (possibly array) type slice, or NULL for atomic types. */
static const stype *base_struct(const tset *ts, const char *s, size_t len)
{
    const char *br = memchr(s, '[', len);
    if (br)
        len = (size_t)(br - s);
    return tset_find(ts, s, len);
}

static void deps(const tset *ts, const stype *st, int *mark)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, st->fields)
    {
        const char *ft = field_str(f, "type");
        const stype *d = base_struct(ts, ft, strlen(ft));
        if (d && !mark[d - ts->t]) {
            mark[d - ts->t] = 1;
            deps(ts, d, mark);
        }
    }
}

static void encode_one(sbuf *b, const stype *st)
{
    sb_str(b, st->name);
    sb_add(b, "(", 1);
    const cJSON *f;
    int first = 1;
    cJSON_ArrayForEach(f, st->fields)
    {
        if (!first)
            sb_add(b, ",", 1);
        first = 0;
        sb_str(b, field_str(f, "type"));
        sb_add(b, " ", 1);
        sb_str(b, field_str(f, "name"));
    }
    sb_add(b, ")", 1);
}

static int cmp_stype(const void *a, const void *b)
{
    return strcmp((*(const stype *const *)a)->name, (*(const stype *const *)b)->name);
}

static char *encode_type_ts(const tset *ts, const stype *primary)
{
    int mark[EIP712_MAX_TYPES] = {0};
    mark[primary - ts->t] = 1;
    deps(ts, primary, mark);
    mark[primary - ts->t] = 0; /* the primary type goes first, not in sorted order */
    const stype *list[EIP712_MAX_TYPES] = {0};
    size_t n = 0;
    for (size_t i = 0; i < ts->n; i++)
        if (mark[i])
            list[n++] = &ts->t[i];
    qsort(list, n, sizeof list[0], cmp_stype);
    sbuf b = {0};
    encode_one(&b, primary);
    for (size_t i = 0; i < n; i++)
        encode_one(&b, list[i]);
    return b.p;
}

static void type_hash_ts(const tset *ts, const stype *st, uint8_t out[32])
{
    char *s = encode_type_ts(ts, st);
    keccak_256_str(s, out);
    free(s);
}

static const stype *find_primary(const tset *ts, const char *primary, char *err, size_t errlen)
{
    if (!primary)
        return util_err(err, errlen, "eip712: missing primary type"), NULL;
    const stype *st = tset_find(ts, primary, strlen(primary));
    if (!st)
        util_err(err, errlen, "eip712: primary type '%s' not in types", primary);
    return st;
}

char *eip712_encode_type(const cJSON *types, const char *primary, char *err, size_t errlen)
{
    tset ts;
    if (tset_load(&ts, types, err, errlen) != 0)
        return NULL;
    const stype *st = find_primary(&ts, primary, err, errlen);
    return st ? encode_type_ts(&ts, st) : NULL;
}

int eip712_type_hash(const cJSON *types, const char *primary, uint8_t out[32], char *err,
                     size_t errlen)
{
    char *s = eip712_encode_type(types, primary, err, errlen);
    if (!s)
        return -1;
    keccak_256_str(s, out);
    free(s);
    return 0;
}

/* ---- encodeData ---- */

/* Integer value -> magnitude and sign. Strings: decimal (optionally '-' when
 * signed) or 0x hex; numbers: integral and within +-2^53 so no precision was
 * lost when the JSON was parsed. */
static int parse_int(const cJSON *v, int allow_neg, money_u256 *mag, int *neg, char *err,
                     size_t errlen)
{
    *neg = 0;
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (allow_neg && s[0] == '-') {
            *neg = 1;
            s++;
            if (hex_has_prefix(s))
                return util_err(err, errlen, "eip712: negative hex integers are not accepted");
        }
        if (hex_has_prefix(s))
            return money_from_hex(mag, s, err, errlen);
        return money_from_dec(mag, s, err, errlen);
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        const double lim = 9007199254740992.0; /* 2^53 */
        if (!isfinite(d) || d != floor(d) || d > lim || d < -lim)
            return util_err(err, errlen, "eip712: number is not an exact integer; use a string");
        if (d < 0) {
            if (!allow_neg)
                return util_err(err, errlen, "eip712: negative value for unsigned integer");
            *neg = 1;
            d = -d;
        }
        money_from_u64(mag, (uint64_t)d);
        return 0;
    }
    return util_err(err, errlen, "eip712: integer must be a string or number");
}

static void pow2(money_u256 *out, unsigned bits)
{
    money_zero(out);
    out->w[bits / 64] = (uint64_t)1 << (bits % 64);
}

static int enc_int(const tinfo *ti, const cJSON *v, uint8_t out[32], char *err, size_t errlen)
{
    money_u256 mag, lim;
    int neg;
    if (parse_int(v, ti->kind == K_INT, &mag, &neg, err, errlen) != 0)
        return -1;
    if (ti->kind == K_UINT) {
        if (ti->size < 256) {
            pow2(&lim, ti->size);
            if (money_cmp(&mag, &lim) >= 0)
                return util_err(err, errlen, "eip712: value out of range for uint%u", ti->size);
        }
        money_to_be32(&mag, out);
        return 0;
    }
    pow2(&lim, ti->size - 1); /* |min| = 2^(N-1), max = 2^(N-1) - 1 */
    if (neg ? money_cmp(&mag, &lim) > 0 : money_cmp(&mag, &lim) >= 0)
        return util_err(err, errlen, "eip712: value out of range for int%u", ti->size);
    if (neg && !money_is_zero(&mag)) {
        /* two's complement over 256 bits: ~mag + 1 */
        money_u256 one, inv;
        for (int i = 0; i < 4; i++)
            inv.w[i] = ~mag.w[i];
        money_from_u64(&one, 1);
        money_add(&mag, &inv, &one); /* cannot overflow: mag != 0 */
    }
    money_to_be32(&mag, out);
    return 0;
}

static int hash_struct_ts(const tset *ts, const stype *st, const cJSON *data, int depth,
                          uint8_t out[32], char *err, size_t errlen);

/* The 32-byte encodeData word of one value of type s[0..len). */
static int enc_value(const tset *ts, const char *s, size_t len, const cJSON *v, int depth,
                     uint8_t out[32], char *err, size_t errlen)
{
    tinfo ti;
    if (type_parse(ts, s, len, &ti, err, errlen) != 0)
        return -1;
    if (depth > EIP712_MAX_DEPTH)
        return util_err(err, errlen, "eip712: nesting deeper than %d", EIP712_MAX_DEPTH);
    memset(out, 0, 32);
    switch (ti.kind) {
    case K_UINT:
    case K_INT:
        return enc_int(&ti, v, out, err, errlen);
    case K_ADDRESS:
        if (!cJSON_IsString(v))
            return util_err(err, errlen, "eip712: address must be a string");
        return hex_addr_parse(v->valuestring, out + 12, err, errlen);
    case K_BOOL:
        if (!cJSON_IsBool(v))
            return util_err(err, errlen, "eip712: bool must be true or false");
        out[31] = cJSON_IsTrue(v) ? 1 : 0;
        return 0;
    case K_FBYTES:
        if (!cJSON_IsString(v) || !hex_has_prefix(v->valuestring))
            return util_err(err, errlen, "eip712: bytes%u must be a 0x hex string", ti.size);
        return hex_decode_fixed(v->valuestring, out, ti.size, err, errlen);
    case K_BYTES: {
        if (!cJSON_IsString(v) || !hex_has_prefix(v->valuestring))
            return util_err(err, errlen, "eip712: bytes must be a 0x hex string");
        size_t n;
        uint8_t *b = hex_decode_new(v->valuestring, &n, err, errlen);
        if (!b)
            return -1;
        keccak_256(b, n, out);
        free(b);
        return 0;
    }
    case K_STRING:
        if (!cJSON_IsString(v))
            return util_err(err, errlen, "eip712: string value must be a JSON string");
        keccak_256_str(v->valuestring, out);
        return 0;
    case K_STRUCT:
        return hash_struct_ts(ts, ti.st, v, depth + 1, out, err, errlen);
    case K_ARRAY: {
        if (!cJSON_IsArray(v))
            return util_err(err, errlen, "eip712: array type needs a JSON array");
        size_t n = (size_t)cJSON_GetArraySize(v);
        if (ti.fixed && n != ti.count)
            return util_err(err, errlen, "eip712: fixed array wants %zu elements, got %zu",
                            ti.count, n);
        keccak_ctx c;
        keccak_init(&c);
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            uint8_t w[32];
            if (enc_value(ts, ti.elem, ti.elem_len, e, depth + 1, w, err, errlen) != 0)
                return -1;
            keccak_update(&c, w, 32);
        }
        keccak_final(&c, out);
        return 0;
    }
    }
    return util_err(err, errlen, "eip712: internal: unknown kind");
}

static int hash_struct_ts(const tset *ts, const stype *st, const cJSON *data, int depth,
                          uint8_t out[32], char *err, size_t errlen)
{
    if (depth > EIP712_MAX_DEPTH)
        return util_err(err, errlen, "eip712: nesting deeper than %d", EIP712_MAX_DEPTH);
    if (!cJSON_IsObject(data))
        return util_err(err, errlen, "eip712: value of struct '%s' must be an object", st->name);
    /* Every key must be a declared field: an undeclared one would be shown to
     * a signer without being signed. */
    const cJSON *k;
    cJSON_ArrayForEach(k, data)
    {
        int found = 0;
        const cJSON *f;
        cJSON_ArrayForEach(f, st->fields)
        {
            if (k->string && strcmp(field_str(f, "name"), k->string) == 0)
                found++;
        }
        if (found != 1)
            return util_err(err, errlen, "eip712: '%s' has no field '%s'", st->name,
                            k->string ? k->string : "?");
    }
    if (cJSON_GetArraySize(data) != cJSON_GetArraySize(st->fields))
        return util_err(err, errlen, "eip712: '%s': missing or duplicate fields", st->name);
    uint8_t th[32];
    type_hash_ts(ts, st, th);
    keccak_ctx c;
    keccak_init(&c);
    keccak_update(&c, th, 32);
    const cJSON *f;
    cJSON_ArrayForEach(f, st->fields)
    {
        const char *fn = field_str(f, "name"), *ft = field_str(f, "type");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, fn);
        uint8_t w[32];
        char e[UTIL_ERRLEN];
        if (!v)
            return util_err(err, errlen, "eip712: '%s' is missing field '%s'", st->name, fn);
        if (enc_value(ts, ft, strlen(ft), v, depth, w, e, sizeof e) != 0)
            return util_err(err, errlen, "%s.%s: %s", st->name, fn, e);
        keccak_update(&c, w, 32);
    }
    keccak_final(&c, out);
    return 0;
}

int eip712_hash_struct(const cJSON *types, const char *primary, const cJSON *data, uint8_t out[32],
                       char *err, size_t errlen)
{
    tset ts;
    if (tset_load(&ts, types, err, errlen) != 0)
        return -1;
    const stype *st = find_primary(&ts, primary, err, errlen);
    if (!st)
        return -1;
    return hash_struct_ts(&ts, st, data, 0, out, err, errlen);
}

int eip712_hash_typed_data(const cJSON *typed, uint8_t digest[32], uint8_t domain_sep[32],
                           uint8_t struct_hash[32], char *err, size_t errlen)
{
    if (!cJSON_IsObject(typed))
        return util_err(err, errlen, "eip712: typed data must be a JSON object");
    const cJSON *k;
    cJSON_ArrayForEach(k, typed)
    {
        if (!k->string || (strcmp(k->string, "types") && strcmp(k->string, "primaryType") &&
                           strcmp(k->string, "domain") && strcmp(k->string, "message")))
            return util_err(err, errlen, "eip712: unexpected member '%s'",
                            k->string ? k->string : "?");
    }
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(typed, "types");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(typed, "primaryType");
    const cJSON *domain = cJSON_GetObjectItemCaseSensitive(typed, "domain");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(typed, "message");
    if (!cJSON_IsString(pt))
        return util_err(err, errlen, "eip712: \"primaryType\" must be a string");
    tset ts;
    if (tset_load(&ts, types, err, errlen) != 0)
        return -1;
    const stype *dt = tset_find(&ts, "EIP712Domain", 12);
    if (!dt)
        return util_err(err, errlen, "eip712: types lack EIP712Domain");
    const stype *st = find_primary(&ts, pt->valuestring, err, errlen);
    if (!st)
        return -1;
    uint8_t ds[32], sh[32];
    char e[UTIL_ERRLEN];
    if (hash_struct_ts(&ts, dt, domain, 0, ds, e, sizeof e) != 0)
        return util_err(err, errlen, "eip712: domain: %s", e);
    int domain_only = st == dt;
    if (!domain_only && hash_struct_ts(&ts, st, msg, 0, sh, e, sizeof e) != 0)
        return util_err(err, errlen, "eip712: message: %s", e);
    keccak_ctx c;
    keccak_init(&c);
    keccak_update(&c, "\x19\x01", 2);
    keccak_update(&c, ds, 32);
    if (!domain_only)
        keccak_update(&c, sh, 32);
    keccak_final(&c, digest);
    if (domain_sep)
        memcpy(domain_sep, ds, 32);
    if (struct_hash) {
        if (domain_only)
            memcpy(struct_hash, ds, 32);
        else
            memcpy(struct_hash, sh, 32);
    }
    return 0;
}

int eip712_hash_typed_json(const char *json, uint8_t digest[32], char *err, size_t errlen)
{
    if (!json)
        return util_err(err, errlen, "eip712: missing JSON");
    cJSON *j = cJSON_Parse(json);
    if (!j)
        return util_err(err, errlen, "eip712: invalid JSON");
    int rc = eip712_hash_typed_data(j, digest, NULL, NULL, err, errlen);
    cJSON_Delete(j);
    return rc;
}

int eip712_sign(const cJSON *typed, const uint8_t key[32], uint8_t sig[65], char *err,
                size_t errlen)
{
    uint8_t d[32];
    if (eip712_hash_typed_data(typed, d, NULL, NULL, err, errlen) != 0)
        return -1;
    return sign_digest(d, key, sig, err, errlen);
}

int eip712_recover(const cJSON *typed, const uint8_t sig[65], uint8_t addr[20], char *err,
                   size_t errlen)
{
    uint8_t d[32];
    if (eip712_hash_typed_data(typed, d, NULL, NULL, err, errlen) != 0)
        return -1;
    return secp_recover_address_ex(d, sig, SECP_RECOVER_LOW_S, addr, err, errlen);
}

int eip712_verify(const cJSON *typed, const uint8_t sig[65], const uint8_t expected[20], char *err,
                  size_t errlen)
{
    uint8_t a[20];
    if (eip712_recover(typed, sig, a, err, errlen) != 0)
        return -1;
    if (memcmp(a, expected, 20) != 0)
        return util_err(err, errlen, "eip712: signature is not from the expected address");
    return 0;
}

/* ---- approval typed data ---- */

static int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, n;
        uint32_t cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* overlong forms, surrogates and code points beyond U+10FFFF */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
        p += n + 1;
    }
    return 1;
}

static int text_ok(const char *s, const char *what, char *err, size_t errlen)
{
    if (!s || !*s)
        return util_err(err, errlen, "eip712: %s must not be empty", what);
    if (strlen(s) > 256)
        return util_err(err, errlen, "eip712: %s longer than 256 bytes", what);
    if (!utf8_ok(s))
        return util_err(err, errlen, "eip712: %s is not valid UTF-8", what);
    return 0;
}

static void add_field(cJSON *arr, const char *name, const char *type)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "name", name);
    cJSON_AddStringToObject(f, "type", type);
    cJSON_AddItemToArray(arr, f);
}

cJSON *eip712_fund_typed_new(uint64_t chain_id, const uint8_t vault[20], const char *primary,
                             cJSON **fields, cJSON **message)
{
    char vault_s[HEX_ADDR_STRLEN];
    hex_addr_checksum(vault, vault_s);
    cJSON *root = cJSON_CreateObject();
    cJSON *types = cJSON_AddObjectToObject(root, "types");
    cJSON *dom_t = cJSON_AddArrayToObject(types, "EIP712Domain");
    add_field(dom_t, "name", "string");
    add_field(dom_t, "version", "string");
    add_field(dom_t, "chainId", "uint256");
    add_field(dom_t, "verifyingContract", "address");
    *fields = cJSON_AddArrayToObject(types, primary);
    cJSON_AddStringToObject(root, "primaryType", primary);
    cJSON *dom = cJSON_AddObjectToObject(root, "domain");
    cJSON_AddStringToObject(dom, "name", EIP712_FUND_NAME);
    cJSON_AddStringToObject(dom, "version", "1");
    /* Wallets expect chainId as a JSON number; beyond 2^53 only a string is exact. */
    if (chain_id <= (UINT64_C(1) << 53)) {
        cJSON_AddNumberToObject(dom, "chainId", (double)chain_id);
    } else {
        char cs[24];
        snprintf(cs, sizeof cs, "%llu", (unsigned long long)chain_id);
        cJSON_AddStringToObject(dom, "chainId", cs);
    }
    cJSON_AddStringToObject(dom, "verifyingContract", vault_s);
    *message = cJSON_AddObjectToObject(root, "message");
    return root;
}

void eip712_add_field(cJSON *fields, const char *name, const char *type)
{
    add_field(fields, name, type);
}

cJSON *eip712_approval_new(uint64_t chain_id, const uint8_t vault[20], const char *ticket_id,
                           const char *decision, const money_u256 *nonce,
                           const money_u256 *deadline, char *err, size_t errlen)
{
    if (chain_id == 0) {
        util_err(err, errlen, "eip712: chain id must be >= 1");
        return NULL;
    }
    if (text_ok(ticket_id, "ticketId", err, errlen) != 0 ||
        text_ok(decision, "decision", err, errlen) != 0)
        return NULL;
    char nonce_s[MONEY_DEC_MAX], deadline_s[MONEY_DEC_MAX];
    money_to_dec(nonce, nonce_s, sizeof nonce_s);
    money_to_dec(deadline, deadline_s, sizeof deadline_s);

    cJSON *ap_t, *msg;
    cJSON *root = eip712_fund_typed_new(chain_id, vault, "Approval", &ap_t, &msg);
    add_field(ap_t, "ticketId", "string");
    add_field(ap_t, "decision", "string");
    add_field(ap_t, "nonce", "uint256");
    add_field(ap_t, "deadline", "uint256");
    cJSON_AddStringToObject(msg, "ticketId", ticket_id);
    cJSON_AddStringToObject(msg, "decision", decision);
    cJSON_AddStringToObject(msg, "nonce", nonce_s);
    cJSON_AddStringToObject(msg, "deadline", deadline_s);
    return root;
}
