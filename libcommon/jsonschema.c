/* jsonschema: compile JSON Schema documents into a tree of nodes once, validate cJSON
 * instances against it many times (see jsonschema.h for the supported subset).
 *
 * Memory: a jsonschema owns its parsed documents (cJSON trees), every node (kept on
 * one list for freeing) and compiled regexes. Nodes borrow strings and enum/const
 * values from the documents. Validation allocates nothing, so it is thread-safe
 * (glibc's regexec locks internally). */
#include "jsonschema.h"

#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_EVAL_DEPTH    512  /* nested node evaluations during one validation */
#define MAX_COMPILE_DEPTH 128  /* schema nesting in one document */
#define MAX_DOCS          64   /* documents pulled in through external $refs */
#define MAX_CHECK_DEPTH   1100 /* instance nesting for jsonschema_check_instance */
#define PATH_CAP          512
#define MAX_SAFE_INT      9007199254740991.0 /* 2^53 - 1 */

enum {
    T_NULL = 1,
    T_BOOL = 2,
    T_OBJ = 4,
    T_ARR = 8,
    T_NUM = 16,
    T_INT = 32,
    T_STR = 64,
};

enum { FMT_NONE, FMT_DATE_TIME, FMT_UUID };

typedef struct node node;

typedef struct prop {
    const char *name; /* borrowed from the document */
    node *schema;
} prop;

struct node {
    int boolean; /* -1: object schema; 0 / 1: the schemas false / true */
    int doc;     /* index of the document this node came from, for $ref */
    unsigned types;
    const cJSON *enum_vals, *const_val;
    prop *props; /* sorted by name for bsearch */
    size_t nprops;
    const char **required;
    size_t nrequired;
    node *additional;
    node *items;
    long long min_items, max_items, min_len, max_len; /* -1 = absent */
    int has_re;
    regex_t re;
    const char *pattern;
    int has_min, has_max, has_xmin, has_xmax;
    double min, max, xmin, xmax;
    int format;
    const char *ref;
    node *ref_target;
    node **all_of, **any_of, **one_of;
    size_t nall, nany, none;
    node *not_;
    int has_string_kw;
    node *next_alloc;
};

typedef struct def {
    const char *name;
    node *schema;
} def;

typedef struct doc {
    char *name; /* embedded name, NULL for anonymous text */
    cJSON *root;
    node *top;
    def *defs;
    size_t ndefs;
} doc;

struct jsonschema {
    doc docs[MAX_DOCS];
    size_t ndocs;
    node *nodes;
};

/* ---------- helpers shared by compile and validate ---------- */

/* Appends one JSON-pointer segment (escaped per RFC 6901) to path; returns the old
 * length so the caller can pop. Control bytes become '?' so errors stay one line. */
static size_t path_push(char *path, const char *seg)
{
    size_t old = strlen(path), n = old;
    if (n + 1 < PATH_CAP)
        path[n++] = '/';
    for (const char *p = seg; *p && n + 4 < PATH_CAP; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '~') {
            path[n++] = '~';
            path[n++] = '0';
        } else if (c == '/') {
            path[n++] = '~';
            path[n++] = '1';
        } else {
            path[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
    }
    path[n] = '\0';
    return old;
}

static size_t path_push_index(char *path, size_t idx)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", idx);
    return path_push(path, buf);
}

static void path_pop(char *path, size_t old)
{
    path[old] = '\0';
}

/* The pointer as shown in errors: "(root)" for the document, and deep pointers keep
 * only their head and tail so the reason after them still fits the caller's buffer. */
static const char *path_show(const char *path, char out[128])
{
    size_t n = strlen(path);
    if (n == 0)
        return "(root)";
    if (n < 120)
        return path;
    snprintf(out, 128, "%.40s...%s", path, path + n - 77);
    return out;
}

int jsonschema_utf8_count(const char *str, size_t n, size_t *count)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, cp = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t v;
        if (c < 0x80) {
            i++;
            cp++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            v = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            v = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            v = c & 0x07;
        } else {
            return -1;
        }
        if (i + len > n)
            return -1;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return -1;
            v = (v << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10ffff ||
            (v >= 0xd800 && v <= 0xdfff))
            return -1;
        i += len;
        cp++;
    }
    if (count)
        *count = cp;
    return 0;
}

static int is_int_value(double d)
{
    return isfinite(d) && fabs(d) <= MAX_SAFE_INT && d == floor(d);
}

/* JSON equality: numbers by value, objects regardless of member order. */
static int json_equal(const cJSON *a, const cJSON *b, int depth)
{
    if (depth > MAX_CHECK_DEPTH)
        return 0;
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        return a->valuedouble == b->valuedouble;
    if ((a->type & 0xff) != (b->type & 0xff))
        return 0;
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if (cJSON_IsArray(a)) {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!json_equal(x, y, depth + 1))
                return 0;
        return !x && !y;
    }
    if (cJSON_IsObject(a)) {
        size_t na = 0, nb = 0;
        for (const cJSON *x = a->child; x; x = x->next)
            na++;
        for (const cJSON *y = b->child; y; y = y->next)
            nb++;
        if (na != nb)
            return 0;
        for (const cJSON *x = a->child; x; x = x->next) {
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
            if (!y || !json_equal(x, y, depth + 1))
                return 0;
        }
        return 1;
    }
    return 1; /* null, true, false: type equality suffices */
}

/* ---------- formats ---------- */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* RFC 3339 section 5.6 date-time, with calendar checks (leap years, day of month). */
static int valid_date_time(const char *s)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec;
    size_t n = strlen(s);
    if (n < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return 0;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return 1;
    int oh, om;
    if ((*p != '+' && *p != '-') || strlen(p) != 6 || digits(p + 1, 2, &oh) || p[3] != ':' ||
        digits(p + 4, 2, &om))
        return 0;
    return oh <= 23 && om <= 59;
}

static int valid_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

/* ---------- compile ---------- */

typedef struct cctx {
    jsonschema *s;
    char *err;
    size_t errlen;
    char path[PATH_CAP];
    int cur_doc;
} cctx;

static int cerr(cctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cerr(cctx *c, const char *fmt, ...)
{
    char msg[UTIL_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *dn = c->s->docs[c->cur_doc].name;
    char shown[128];
    return util_err(c->err, c->errlen, "schema %s%s#%s: %s", dn ? dn : "", dn ? ".schema.json" : "",
                    c->path[0] ? path_show(c->path, shown) : "", msg);
}

static node *node_new(cctx *c)
{
    node *n = util_calloc(1, sizeof *n);
    n->boolean = -1;
    n->doc = c->cur_doc;
    n->min_items = n->max_items = n->min_len = n->max_len = -1;
    n->next_alloc = c->s->nodes;
    c->s->nodes = n;
    return n;
}

/* Rejects regex syntax whose meaning differs between ECMA-262 (what schema authors
 * expect) and POSIX ERE (what regcomp implements), instead of silently diverging. */
static int pattern_portable(const char *p, char *why, size_t whylen)
{
    int in_bracket = 0;
    for (size_t i = 0; p[i]; i++) {
        char ch = p[i];
        if (in_bracket) {
            if (ch == '\\') {
                snprintf(why, whylen,
                         "backslash inside [...] is literal in POSIX ERE "
                         "(put '-' last instead of escaping it)");
                return -1;
            }
            if (ch == '[' && (p[i + 1] == ':' || p[i + 1] == '=' || p[i + 1] == '.')) {
                snprintf(why, whylen, "POSIX classes like [:alpha:] are not portable");
                return -1;
            }
            if (ch == ']' && in_bracket > 1)
                in_bracket = 0;
            else
                in_bracket++;
            continue;
        }
        if (ch == '[') {
            in_bracket = 1;
            if (p[i + 1] == '^')
                i++;
            if (p[i + 1] == ']') {
                snprintf(why, whylen,
                         "']' first in [...] means an empty class in ECMA-262 "
                         "but a literal in POSIX ERE");
                return -1;
            }
            continue;
        }
        if (ch == '(' && p[i + 1] == '?') {
            snprintf(why, whylen, "'(?' groups are not supported by POSIX ERE");
            return -1;
        }
        if (ch == '\\') {
            char e = p[i + 1];
            if (e == '\0' || !strchr(".[](){}*+?|^$\\/-", e)) {
                snprintf(why, whylen,
                         "escape '\\%c' is not supported (POSIX ERE has no ECMA shorthands "
                         "like \\d, \\w, \\s; use [0-9], [A-Za-z0-9_], [ \\t])",
                         e ? e : ' ');
                return -1;
            }
            i++;
        }
    }
    if (in_bracket) {
        snprintf(why, whylen, "unterminated bracket expression");
        return -1;
    }
    return 0;
}

static node *compile_node(cctx *c, const cJSON *j, int depth);

static node *compile_sub(cctx *c, const cJSON *j, const char *seg, int depth)
{
    size_t old = path_push(c->path, seg);
    node *n = compile_node(c, j, depth + 1);
    if (n)
        path_pop(c->path, old);
    return n; /* on error keep the path: cerr already used it */
}

static int nonneg_int(cctx *c, const cJSON *v, const char *kw, long long *out)
{
    if (!cJSON_IsNumber(v) || !is_int_value(v->valuedouble) || v->valuedouble < 0)
        return cerr(c, "%s must be a non-negative integer", kw);
    *out = (long long)v->valuedouble;
    return 0;
}

static int number_kw(cctx *c, const cJSON *v, const char *kw, int *has, double *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return cerr(c, "%s must be a finite number", kw);
    *has = 1;
    *out = v->valuedouble;
    return 0;
}

static int schema_list(cctx *c, const cJSON *v, const char *kw, int depth, node ***out,
                       size_t *count)
{
    if (!cJSON_IsArray(v) || !v->child)
        return cerr(c, "%s must be a non-empty array of schemas", kw);
    size_t n = 0;
    for (const cJSON *x = v->child; x; x = x->next)
        n++;
    /* Stored on the node before filling so a failure half-way is still freed. */
    *out = util_calloc(n, sizeof **out);
    *count = n;
    size_t old = path_push(c->path, kw), i = 0;
    for (const cJSON *x = v->child; x; x = x->next, i++) {
        char seg[32];
        snprintf(seg, sizeof seg, "%zu", i);
        if (!((*out)[i] = compile_sub(c, x, seg, depth)))
            return -1;
    }
    path_pop(c->path, old);
    return 0;
}

static int type_bits(const char *t, unsigned *bits)
{
    static const struct {
        const char *name;
        unsigned bits;
    } names[] = {{"null", T_NULL},  {"boolean", T_BOOL}, {"object", T_OBJ}, {"array", T_ARR},
                 {"number", T_NUM}, {"integer", T_INT},  {"string", T_STR}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(t, names[i].name) == 0) {
            *bits = names[i].bits;
            return 0;
        }
    return -1;
}

static int prop_cmp(const void *a, const void *b)
{
    return strcmp(((const prop *)a)->name, ((const prop *)b)->name);
}

static int valid_ref_name(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return 0;
    }
    return 1;
}

static int find_doc(const jsonschema *s, const char *name, size_t n)
{
    for (size_t i = 0; i < s->ndocs; i++)
        if (s->docs[i].name && strlen(s->docs[i].name) == n &&
            strncmp(s->docs[i].name, name, n) == 0)
            return (int)i;
    return -1;
}

static int add_doc(jsonschema *s, const char *name, const char *text, char *err, size_t errlen)
{
    if (s->ndocs >= MAX_DOCS)
        return util_err(err, errlen, "too many schema documents (limit %d)", MAX_DOCS);
    cJSON *root = cJSON_ParseWithOpts(text, NULL, 1);
    if (!root)
        return util_err(err, errlen, "schema %s%s is not valid JSON", name ? name : "(text)",
                        name ? ".schema.json" : "");
    doc *d = &s->docs[s->ndocs++];
    d->name = name ? util_strdup(name) : NULL;
    d->root = root;
    return 0;
}

/* Checks a $ref's shape and loads the embedded document it names, so resolution
 * after compiling finds every target. */
static int ref_prepare(cctx *c, const char *ref)
{
    const char *hash = strchr(ref, '#');
    size_t flen = hash ? (size_t)(hash - ref) : strlen(ref);
    const char *frag = hash ? hash + 1 : "";
    if (*frag && (strncmp(frag, "/$defs/", 7) != 0 || !valid_ref_name(frag + 7, strlen(frag + 7))))
        return cerr(c,
                    "unsupported $ref \"%s\" (use \"#\", \"#/$defs/<name>\" or "
                    "\"<file>.schema.json#...\")",
                    ref);
    if (flen == 0)
        return 0;
    static const char suffix[] = ".schema.json";
    size_t sl = sizeof suffix - 1;
    if (flen <= sl || strncmp(ref + flen - sl, suffix, sl) != 0 || !valid_ref_name(ref, flen - sl))
        return cerr(c, "unsupported $ref \"%s\": external refs must name <file>.schema.json", ref);
    size_t nlen = flen - sl;
    if (find_doc(c->s, ref, nlen) >= 0)
        return 0;
    for (size_t i = 0; i < schema_embedded_count; i++) {
        const char *en = schema_embedded_names[i];
        if (strlen(en) == nlen && strncmp(en, ref, nlen) == 0) {
            char why[UTIL_ERRLEN];
            if (add_doc(c->s, en, schema_embedded_texts[i], why, sizeof why) != 0)
                return cerr(c, "$ref \"%s\": %s", ref, why);
            return 0;
        }
    }
    return cerr(c, "$ref \"%s\": no embedded schema named \"%.*s\"", ref, (int)nlen, ref);
}

static int is_annotation(const char *k)
{
    static const char *const ann[] = {"$schema",  "$id",     "title",   "description",
                                      "examples", "default", "$comment"};
    for (size_t i = 0; i < sizeof ann / sizeof ann[0]; i++)
        if (strcmp(k, ann[i]) == 0)
            return 1;
    return 0;
}

static const char *const keywords[] = {"type",
                                       "enum",
                                       "const",
                                       "properties",
                                       "required",
                                       "additionalProperties",
                                       "items",
                                       "minItems",
                                       "maxItems",
                                       "minLength",
                                       "maxLength",
                                       "pattern",
                                       "minimum",
                                       "maximum",
                                       "exclusiveMinimum",
                                       "exclusiveMaximum",
                                       "format",
                                       "$ref",
                                       "$defs",
                                       "allOf",
                                       "anyOf",
                                       "oneOf",
                                       "not"};

static int compile_kw(cctx *c, node *n, const cJSON *v, const char *k, int depth)
{
    if (strcmp(k, "type") == 0) {
        if (cJSON_IsString(v)) {
            if (type_bits(v->valuestring, &n->types) != 0)
                return cerr(c, "unknown type \"%s\"", v->valuestring);
        } else if (cJSON_IsArray(v) && v->child) {
            for (const cJSON *t = v->child; t; t = t->next) {
                unsigned b;
                if (!cJSON_IsString(t) || type_bits(t->valuestring, &b) != 0)
                    return cerr(c, "type array must hold known type names");
                if (n->types & b)
                    return cerr(c, "type \"%s\" listed twice", t->valuestring);
                n->types |= b;
            }
        } else {
            return cerr(c, "type must be a string or a non-empty array");
        }
    } else if (strcmp(k, "enum") == 0) {
        if (!cJSON_IsArray(v) || !v->child)
            return cerr(c, "enum must be a non-empty array");
        n->enum_vals = v;
    } else if (strcmp(k, "const") == 0) {
        n->const_val = v;
    } else if (strcmp(k, "properties") == 0) {
        if (!cJSON_IsObject(v))
            return cerr(c, "properties must be an object");
        size_t cnt = 0;
        for (const cJSON *x = v->child; x; x = x->next)
            cnt++;
        n->props = util_calloc(cnt ? cnt : 1, sizeof *n->props);
        size_t old = path_push(c->path, "properties");
        for (const cJSON *x = v->child; x; x = x->next) {
            for (size_t i = 0; i < n->nprops; i++)
                if (strcmp(n->props[i].name, x->string) == 0)
                    return cerr(c, "property \"%s\" defined twice", x->string);
            n->props[n->nprops].name = x->string;
            if (!(n->props[n->nprops].schema = compile_sub(c, x, x->string, depth)))
                return -1;
            n->nprops++;
        }
        path_pop(c->path, old);
        qsort(n->props, n->nprops, sizeof *n->props, prop_cmp);
    } else if (strcmp(k, "required") == 0) {
        if (!cJSON_IsArray(v))
            return cerr(c, "required must be an array of strings");
        size_t cnt = 0;
        for (const cJSON *x = v->child; x; x = x->next)
            cnt++;
        n->required = util_calloc(cnt ? cnt : 1, sizeof *n->required);
        for (const cJSON *x = v->child; x; x = x->next) {
            if (!cJSON_IsString(x))
                return cerr(c, "required must be an array of strings");
            for (size_t i = 0; i < n->nrequired; i++)
                if (strcmp(n->required[i], x->valuestring) == 0)
                    return cerr(c, "required lists \"%s\" twice", x->valuestring);
            n->required[n->nrequired++] = x->valuestring;
        }
    } else if (strcmp(k, "additionalProperties") == 0) {
        if (!(n->additional = compile_sub(c, v, k, depth)))
            return -1;
    } else if (strcmp(k, "items") == 0) {
        if (cJSON_IsArray(v))
            return cerr(c, "items must be one schema (tuple form is prefixItems, unsupported)");
        if (!(n->items = compile_sub(c, v, k, depth)))
            return -1;
    } else if (strcmp(k, "minItems") == 0) {
        return nonneg_int(c, v, k, &n->min_items);
    } else if (strcmp(k, "maxItems") == 0) {
        return nonneg_int(c, v, k, &n->max_items);
    } else if (strcmp(k, "minLength") == 0) {
        n->has_string_kw = 1;
        return nonneg_int(c, v, k, &n->min_len);
    } else if (strcmp(k, "maxLength") == 0) {
        n->has_string_kw = 1;
        return nonneg_int(c, v, k, &n->max_len);
    } else if (strcmp(k, "pattern") == 0) {
        char why[UTIL_ERRLEN];
        if (!cJSON_IsString(v))
            return cerr(c, "pattern must be a string");
        if (pattern_portable(v->valuestring, why, sizeof why) != 0)
            return cerr(c, "pattern \"%s\": %s", v->valuestring, why);
        int rc = regcomp(&n->re, v->valuestring, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            regerror(rc, &n->re, why, sizeof why);
            return cerr(c, "pattern \"%s\": %s", v->valuestring, why);
        }
        n->has_re = 1;
        n->pattern = v->valuestring;
        n->has_string_kw = 1;
    } else if (strcmp(k, "minimum") == 0) {
        return number_kw(c, v, k, &n->has_min, &n->min);
    } else if (strcmp(k, "maximum") == 0) {
        return number_kw(c, v, k, &n->has_max, &n->max);
    } else if (strcmp(k, "exclusiveMinimum") == 0) {
        return number_kw(c, v, k, &n->has_xmin, &n->xmin);
    } else if (strcmp(k, "exclusiveMaximum") == 0) {
        return number_kw(c, v, k, &n->has_xmax, &n->xmax);
    } else if (strcmp(k, "format") == 0) {
        if (!cJSON_IsString(v))
            return cerr(c, "format must be a string");
        if (strcmp(v->valuestring, "date-time") == 0)
            n->format = FMT_DATE_TIME;
        else if (strcmp(v->valuestring, "uuid") == 0)
            n->format = FMT_UUID;
        else
            return cerr(c, "unsupported format \"%s\"", v->valuestring);
        n->has_string_kw = 1;
    } else if (strcmp(k, "$ref") == 0) {
        if (!cJSON_IsString(v))
            return cerr(c, "$ref must be a string");
        if (ref_prepare(c, v->valuestring) != 0)
            return -1;
        n->ref = v->valuestring;
    } else if (strcmp(k, "$defs") == 0) {
        if (depth != 0)
            return cerr(c, "$defs is only supported at the document root");
        if (!cJSON_IsObject(v))
            return cerr(c, "$defs must be an object");
        doc *d = &c->s->docs[c->cur_doc];
        size_t cnt = 0;
        for (const cJSON *x = v->child; x; x = x->next)
            cnt++;
        d->defs = util_calloc(cnt ? cnt : 1, sizeof *d->defs);
        size_t old = path_push(c->path, "$defs");
        for (const cJSON *x = v->child; x; x = x->next) {
            if (!valid_ref_name(x->string, strlen(x->string)))
                return cerr(c, "$defs name \"%s\" must match [A-Za-z0-9_.-]+", x->string);
            for (size_t i = 0; i < d->ndefs; i++)
                if (strcmp(d->defs[i].name, x->string) == 0)
                    return cerr(c, "$defs \"%s\" defined twice", x->string);
            d->defs[d->ndefs].name = x->string;
            if (!(d->defs[d->ndefs].schema = compile_sub(c, x, x->string, depth)))
                return -1;
            d->ndefs++;
        }
        path_pop(c->path, old);
    } else if (strcmp(k, "allOf") == 0) {
        return schema_list(c, v, k, depth, &n->all_of, &n->nall);
    } else if (strcmp(k, "anyOf") == 0) {
        return schema_list(c, v, k, depth, &n->any_of, &n->nany);
    } else if (strcmp(k, "oneOf") == 0) {
        return schema_list(c, v, k, depth, &n->one_of, &n->none);
    } else if (strcmp(k, "not") == 0) {
        if (!(n->not_ = compile_sub(c, v, k, depth)))
            return -1;
    }
    return 0;
}

static node *compile_node(cctx *c, const cJSON *j, int depth)
{
    if (depth > MAX_COMPILE_DEPTH) {
        cerr(c, "schema nested deeper than %d", MAX_COMPILE_DEPTH);
        return NULL;
    }
    node *n = node_new(c);
    if (cJSON_IsBool(j)) {
        n->boolean = cJSON_IsTrue(j);
        return n;
    }
    if (!cJSON_IsObject(j)) {
        cerr(c, "a schema must be an object or a boolean");
        return NULL;
    }
    uint32_t seen = 0;
    for (const cJSON *kw = j->child; kw; kw = kw->next) {
        const char *k = kw->string;
        if (is_annotation(k))
            continue;
        size_t idx = 0, nk = sizeof keywords / sizeof keywords[0];
        while (idx < nk && strcmp(keywords[idx], k) != 0)
            idx++;
        if (idx == nk) {
            cerr(c, "unknown keyword \"%s\"", k);
            return NULL;
        }
        if (seen & (1u << idx)) {
            cerr(c, "keyword \"%s\" appears twice", k);
            return NULL;
        }
        seen |= 1u << idx;
        if (compile_kw(c, n, kw, k, depth) != 0)
            return NULL;
    }
    return n;
}

static node *find_def(const doc *d, const char *name)
{
    for (size_t i = 0; i < d->ndefs; i++)
        if (strcmp(d->defs[i].name, name) == 0)
            return d->defs[i].schema;
    return NULL;
}

static int resolve_refs(jsonschema *s, char *err, size_t errlen)
{
    for (node *n = s->nodes; n; n = n->next_alloc) {
        if (!n->ref)
            continue;
        const char *hash = strchr(n->ref, '#');
        size_t flen = hash ? (size_t)(hash - n->ref) : strlen(n->ref);
        const char *frag = hash ? hash + 1 : "";
        int di = n->doc;
        if (flen > 0)
            di = find_doc(s, n->ref, flen - (sizeof ".schema.json" - 1));
        if (di < 0) /* ref_prepare loaded every named document */
            return util_err(err, errlen, "$ref \"%s\": document not loaded", n->ref);
        const doc *d = &s->docs[di];
        n->ref_target = *frag ? find_def(d, frag + 7) : d->top;
        if (!n->ref_target)
            return util_err(err, errlen, "$ref \"%s\": no such definition", n->ref);
    }
    return 0;
}

static jsonschema *compile_named(const char *text, const char *name, char *err, size_t errlen)
{
    if (!text)
        return util_err(err, errlen, "no schema text"), NULL;
    jsonschema *s = util_calloc(1, sizeof *s);
    if (add_doc(s, name, text, err, errlen) != 0) {
        jsonschema_free(s);
        return NULL;
    }
    cctx c = {.s = s, .err = err, .errlen = errlen};
    /* Documents pulled in by external $refs are appended while compiling. */
    for (size_t i = 0; i < s->ndocs; i++) {
        c.cur_doc = (int)i;
        c.path[0] = '\0';
        if (!(s->docs[i].top = compile_node(&c, s->docs[i].root, 0))) {
            jsonschema_free(s);
            return NULL;
        }
    }
    if (resolve_refs(s, err, errlen) != 0) {
        jsonschema_free(s);
        return NULL;
    }
    return s;
}

jsonschema *jsonschema_compile(const char *text, char *err, size_t errlen)
{
    return compile_named(text, NULL, err, errlen);
}

void jsonschema_free(jsonschema *s)
{
    if (!s)
        return;
    node *n = s->nodes;
    while (n) {
        node *next = n->next_alloc;
        if (n->has_re)
            regfree(&n->re);
        free(n->props);
        free(n->required);
        free(n->all_of);
        free(n->any_of);
        free(n->one_of);
        free(n);
        n = next;
    }
    for (size_t i = 0; i < s->ndocs; i++) {
        free(s->docs[i].name);
        free(s->docs[i].defs);
        cJSON_Delete(s->docs[i].root);
    }
    free(s);
}

/* ---------- validate ---------- */

typedef struct vst {
    char *err;
    size_t errlen, used;
    int all;   /* collect every error instead of stopping at the first */
    int quiet; /* > 0 inside anyOf/oneOf/not branches: errors are not reported */
    int nerr;  /* reported errors */
    int fatal; /* depth limit hit: the whole validation fails, whatever the branch */
    int depth;
    char *path;
} vst;

static void vfail(vst *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vfail(vst *st, const char *fmt, ...)
{
    if (st->quiet)
        return;
    if (!st->all && st->nerr > 0)
        return;
    st->nerr++;
    if (!st->err || st->errlen == 0 || st->used + 1 >= st->errlen)
        return;
    char *p = st->err + st->used;
    size_t room = st->errlen - st->used;
    char shown[128];
    int w = snprintf(p, room, "%s%s: ", st->used ? "; " : "", path_show(st->path, shown));
    if (w < 0 || (size_t)w >= room) {
        st->used = st->errlen - 1;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int w2 = vsnprintf(p + w, room - (size_t)w, fmt, ap);
    va_end(ap);
    size_t tot = (size_t)w + (w2 > 0 ? (size_t)w2 : 0);
    st->used += tot < room ? tot : room - 1;
}

static int v_node(vst *st, const node *n, const cJSON *inst);

/* Runs a branch without reporting, returning whether it matched. */
static int v_quiet(vst *st, const node *n, const cJSON *inst)
{
    st->quiet++;
    int rc = v_node(st, n, inst);
    st->quiet--;
    return rc == 0;
}

static unsigned inst_types(const cJSON *j)
{
    if (cJSON_IsNull(j))
        return T_NULL;
    if (cJSON_IsBool(j))
        return T_BOOL;
    if (cJSON_IsString(j) && j->valuestring)
        return T_STR;
    if (cJSON_IsArray(j))
        return T_ARR;
    if (cJSON_IsObject(j))
        return T_OBJ;
    if (cJSON_IsNumber(j) && isfinite(j->valuedouble))
        return T_NUM | (is_int_value(j->valuedouble) ? T_INT : 0);
    return 0; /* raw, invalid or non-finite: matches no type */
}

static void types_str(unsigned t, char *buf, size_t len)
{
    static const char *const names[] = {"null",   "boolean", "object", "array",
                                        "number", "integer", "string"};
    buf[0] = '\0';
    size_t used = 0;
    for (int i = 0; i < 7; i++)
        if (t & (1u << i)) {
            int w = snprintf(buf + used, len - used, "%s%s", used ? " or " : "", names[i]);
            if (w < 0 || (size_t)w >= len - used)
                return;
            used += (size_t)w;
        }
}

#define STOP()                                                                                     \
    do {                                                                                           \
        bad = 1;                                                                                   \
        if (!st->all || st->quiet || st->fatal)                                                    \
            goto out;                                                                              \
    } while (0)

static int v_string(vst *st, const node *n, const char *s)
{
    int bad = 0;
    size_t cps;
    if (jsonschema_utf8_count(s, strlen(s), &cps) != 0) {
        vfail(st, "string is not valid UTF-8");
        return -1;
    }
    if (n->min_len >= 0 && cps < (size_t)n->min_len) {
        vfail(st, "string shorter than %lld characters", n->min_len);
        STOP();
    }
    if (n->max_len >= 0 && cps > (size_t)n->max_len) {
        vfail(st, "string longer than %lld characters", n->max_len);
        STOP();
    }
    if (n->has_re && regexec(&n->re, s, 0, NULL, 0) != 0) {
        vfail(st, "string does not match pattern \"%s\"", n->pattern);
        STOP();
    }
    if (n->format == FMT_DATE_TIME && !valid_date_time(s)) {
        vfail(st, "not an RFC 3339 date-time");
        STOP();
    }
    if (n->format == FMT_UUID && !valid_uuid(s)) {
        vfail(st, "not a UUID");
        STOP();
    }
out:
    return bad ? -1 : 0;
}

static int v_number(vst *st, const node *n, double d)
{
    int bad = 0;
    if (n->has_min && !(d >= n->min)) {
        vfail(st, "must be >= %.17g", n->min);
        STOP();
    }
    if (n->has_max && !(d <= n->max)) {
        vfail(st, "must be <= %.17g", n->max);
        STOP();
    }
    if (n->has_xmin && !(d > n->xmin)) {
        vfail(st, "must be > %.17g", n->xmin);
        STOP();
    }
    if (n->has_xmax && !(d < n->xmax)) {
        vfail(st, "must be < %.17g", n->xmax);
        STOP();
    }
out:
    return bad ? -1 : 0;
}

static const prop *find_prop(const node *n, const char *name)
{
    prop key = {.name = name};
    return n->nprops ? bsearch(&key, n->props, n->nprops, sizeof *n->props, prop_cmp) : NULL;
}

static int v_object(vst *st, const node *n, const cJSON *inst)
{
    int bad = 0;
    for (size_t i = 0; i < n->nrequired; i++) {
        if (!cJSON_GetObjectItemCaseSensitive(inst, n->required[i])) {
            size_t old = path_push(st->path, n->required[i]);
            vfail(st, "required property missing");
            path_pop(st->path, old);
            STOP();
        }
    }
    for (const cJSON *m = inst->child; m; m = m->next) {
        if (!m->string)
            continue;
        const prop *p = find_prop(n, m->string);
        const node *sub = p ? p->schema : n->additional;
        if (!sub)
            continue;
        /* cJSON keeps duplicate names; properties apply to the first one only, which is
         * what GetObjectItem readers will see (check_instance rejects duplicates). */
        if (p && cJSON_GetObjectItemCaseSensitive(inst, m->string) != m)
            continue;
        size_t old = path_push(st->path, m->string);
        int rc;
        if (!p && sub->boolean == 0) {
            vfail(st, "additional property not allowed");
            rc = -1;
        } else {
            rc = v_node(st, sub, m);
        }
        path_pop(st->path, old);
        if (rc != 0)
            STOP();
    }
out:
    return bad ? -1 : 0;
}

static int v_array(vst *st, const node *n, const cJSON *inst)
{
    int bad = 0;
    size_t count = 0;
    for (const cJSON *x = inst->child; x; x = x->next)
        count++;
    if (n->min_items >= 0 && count < (size_t)n->min_items) {
        vfail(st, "array has fewer than %lld items", n->min_items);
        STOP();
    }
    if (n->max_items >= 0 && count > (size_t)n->max_items) {
        vfail(st, "array has more than %lld items", n->max_items);
        STOP();
    }
    if (n->items) {
        size_t i = 0;
        for (const cJSON *x = inst->child; x; x = x->next, i++) {
            size_t old = path_push_index(st->path, i);
            int rc = v_node(st, n->items, x);
            path_pop(st->path, old);
            if (rc != 0)
                STOP();
        }
    }
out:
    return bad ? -1 : 0;
}

static int v_node(vst *st, const node *n, const cJSON *inst)
{
    int bad = 0;
    if (st->fatal)
        return -1;
    if (st->depth >= MAX_EVAL_DEPTH) {
        /* Must surface even from inside an anyOf/not branch, or `not` would turn a
         * too-deep instance into a match. */
        int quiet = st->quiet;
        st->fatal = 1;
        st->quiet = 0;
        vfail(st, "nesting deeper than %d schema levels", MAX_EVAL_DEPTH);
        st->quiet = quiet;
        return -1;
    }
    st->depth++;
    if (n->boolean == 0) {
        vfail(st, "no value is allowed here");
        STOP();
    }
    if (n->boolean == 1)
        goto out;
    unsigned t = inst_types(inst);
    if (n->types) {
        /* An integral instance carries both T_NUM and T_INT, so "number" accepts it. */
        if (!(t & n->types)) {
            char ws[96];
            types_str(n->types, ws, sizeof ws);
            if (cJSON_IsNumber(inst) && (n->types & T_INT) && isfinite(inst->valuedouble))
                vfail(st, "expected %s (no fraction, |n| <= 2^53-1)", ws);
            else
                vfail(st, "expected %s", ws);
            STOP();
        }
    }
    if (n->const_val && !json_equal(n->const_val, inst, 0)) {
        vfail(st, "value differs from const");
        STOP();
    }
    if (n->enum_vals) {
        int found = 0;
        for (const cJSON *e = n->enum_vals->child; e && !found; e = e->next)
            found = json_equal(e, inst, 0);
        if (!found) {
            vfail(st, "value not in enum");
            STOP();
        }
    }
    if (cJSON_IsString(inst) && (n->has_string_kw || (n->types & T_STR))) {
        if (v_string(st, n, inst->valuestring ? inst->valuestring : "") != 0)
            STOP();
    }
    if (cJSON_IsNumber(inst) && (n->has_min || n->has_max || n->has_xmin || n->has_xmax)) {
        if (!isfinite(inst->valuedouble)) {
            vfail(st, "number is not finite");
            STOP();
        } else if (v_number(st, n, inst->valuedouble) != 0) {
            STOP();
        }
    }
    if (cJSON_IsObject(inst) && v_object(st, n, inst) != 0)
        STOP();
    if (cJSON_IsArray(inst) && v_array(st, n, inst) != 0)
        STOP();
    if (n->ref_target && v_node(st, n->ref_target, inst) != 0)
        STOP();
    for (size_t i = 0; i < n->nall; i++)
        if (v_node(st, n->all_of[i], inst) != 0)
            STOP();
    if (n->nany) {
        int ok = 0;
        for (size_t i = 0; i < n->nany && !ok && !st->fatal; i++)
            ok = v_quiet(st, n->any_of[i], inst);
        if (st->fatal)
            STOP();
        if (!ok) {
            vfail(st, "matches none of the anyOf schemas");
            STOP();
        }
    }
    if (n->none) {
        size_t matched = 0;
        for (size_t i = 0; i < n->none && matched < 2 && !st->fatal; i++)
            matched += (size_t)v_quiet(st, n->one_of[i], inst);
        if (st->fatal)
            STOP();
        if (matched != 1) {
            vfail(st, "matches %s of the oneOf schemas (expected exactly one)",
                  matched ? "more than one" : "none");
            STOP();
        }
    }
    if (n->not_) {
        int m = v_quiet(st, n->not_, inst);
        if (st->fatal)
            STOP();
        if (m) {
            vfail(st, "must not match the \"not\" schema");
            STOP();
        }
    }
out:
    st->depth--;
    return bad ? -1 : 0;
}

static int validate(const jsonschema *s, const cJSON *inst, int all, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!s || !inst)
        return util_err(err, errlen, "no schema or no instance");
    char path[PATH_CAP] = "";
    vst st = {.err = err, .errlen = errlen, .all = all, .path = path};
    int rc = v_node(&st, s->docs[0].top, inst);
    if (rc != 0 && st.nerr == 0) /* defensive: a failure always carries a reason */
        util_err(err, errlen, "(root): invalid");
    return rc;
}

int jsonschema_validate(const jsonschema *s, const cJSON *instance, char *err, size_t errlen)
{
    return validate(s, instance, 0, err, errlen);
}

int jsonschema_validate_all(const jsonschema *s, const cJSON *instance, char *err, size_t errlen)
{
    return validate(s, instance, 1, err, errlen);
}

/* ---------- embedded cache ---------- */

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static jsonschema **cache;

const jsonschema *jsonschema_embedded(const char *name, char *err, size_t errlen)
{
    if (!name)
        return util_err(err, errlen, "no schema name"), NULL;
    size_t i = 0;
    while (i < schema_embedded_count && strcmp(schema_embedded_names[i], name) != 0)
        i++;
    if (i == schema_embedded_count)
        return util_err(err, errlen, "no embedded schema named \"%s\"", name), NULL;
    pthread_mutex_lock(&cache_mu);
    if (!cache)
        cache = util_calloc(schema_embedded_count, sizeof *cache);
    if (!cache[i])
        cache[i] = compile_named(schema_embedded_texts[i], name, err, errlen);
    const jsonschema *s = cache[i];
    pthread_mutex_unlock(&cache_mu);
    return s;
}

void jsonschema_embedded_cleanup(void)
{
    pthread_mutex_lock(&cache_mu);
    if (cache) {
        for (size_t i = 0; i < schema_embedded_count; i++)
            jsonschema_free(cache[i]);
        free(cache);
        cache = NULL;
    }
    pthread_mutex_unlock(&cache_mu);
}

/* ---------- instance hygiene ---------- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int dup_name(const cJSON *obj, const char **dup)
{
    size_t n = 0;
    for (const cJSON *m = obj->child; m; m = m->next)
        n++;
    if (n < 2)
        return 0;
    if (n <= 16) {
        for (const cJSON *a = obj->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (strcmp(a->string, b->string) == 0) {
                    *dup = a->string;
                    return 1;
                }
        return 0;
    }
    /* Sorting keeps hostile objects with 10^5 members at n log n. */
    const char **names = util_malloc(n * sizeof *names);
    size_t i = 0;
    for (const cJSON *m = obj->child; m; m = m->next)
        names[i++] = m->string;
    qsort(names, n, sizeof *names, name_cmp);
    int found = 0;
    for (i = 1; i < n && !found; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            *dup = names[i];
            found = 1;
        }
    free(names);
    return found;
}

static int check_tree(const cJSON *j, char *path, int depth, char *err, size_t errlen)
{
    char shown[128];
    const char *where = path_show(path, shown);
    if (depth > MAX_CHECK_DEPTH)
        return util_err(err, errlen, "%s: nesting deeper than %d", where, MAX_CHECK_DEPTH);
    if (cJSON_IsNumber(j) && !isfinite(j->valuedouble))
        return util_err(err, errlen, "%s: number out of range", where);
    if (cJSON_IsString(j) &&
        (!j->valuestring || jsonschema_utf8_count(j->valuestring, strlen(j->valuestring), NULL)))
        return util_err(err, errlen, "%s: string is not valid UTF-8", where);
    if (cJSON_IsRaw(j) || cJSON_IsInvalid(j))
        return util_err(err, errlen, "%s: not a JSON value", where);
    if (cJSON_IsObject(j)) {
        const char *dup = NULL;
        for (const cJSON *m = j->child; m; m = m->next)
            if (!m->string || jsonschema_utf8_count(m->string, strlen(m->string), NULL))
                return util_err(err, errlen, "%s: member name is not valid UTF-8", where);
        if (dup_name(j, &dup)) {
            size_t old = path_push(path, dup);
            util_err(err, errlen, "%s: duplicate member name", path_show(path, shown));
            path_pop(path, old);
            return -1;
        }
    }
    if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        size_t i = 0;
        for (const cJSON *m = j->child; m; m = m->next, i++) {
            size_t old = cJSON_IsObject(j) ? path_push(path, m->string) : path_push_index(path, i);
            int rc = check_tree(m, path, depth + 1, err, errlen);
            path_pop(path, old);
            if (rc != 0)
                return -1;
        }
    }
    return 0;
}

int jsonschema_check_instance(const cJSON *instance, char *err, size_t errlen)
{
    if (!instance)
        return util_err(err, errlen, "no instance");
    char path[PATH_CAP] = "";
    return check_tree(instance, path, 0, err, errlen);
}
