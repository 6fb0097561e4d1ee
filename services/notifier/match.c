/* match: label matchers and the routing tree (see match.h). */
#include "match.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const op_names[] = {"=", "!=", "=~", "!~"};

int match_op_parse(const char *s, match_op *out)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, op_names[i]) == 0) {
            *out = (match_op)i;
            return 0;
        }
    return -1;
}

const char *match_op_name(match_op op)
{
    return (unsigned)op < 4 ? op_names[op] : "?";
}

static int name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 128)
        return 0;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (const char *p = s + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    return 1;
}

void match_set_free(match_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->m[i].name);
        free(s->m[i].value);
        if (s->m[i].has_re)
            regfree(&s->m[i].re);
    }
    free(s->m);
    s->m = NULL;
    s->n = 0;
}

int match_set_from_json(const cJSON *arr, match_set *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsArray(arr))
        return util_err(err, errlen, "matchers must be an array");
    int n = cJSON_GetArraySize(arr);
    if (n > MATCH_MAX_MATCHERS)
        return util_err(err, errlen, "at most %d matchers", MATCH_MAX_MATCHERS);
    out->m = util_calloc((size_t)n + 1, sizeof *out->m);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(it, "op");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(it, "value");
        match_matcher *m = &out->m[out->n];
        if (!cJSON_IsObject(it) || !cJSON_IsString(name) || !name_ok(name->valuestring)) {
            match_set_free(out);
            return util_err(err, errlen, "matcher %zu: bad label name", out->n);
        }
        if (!cJSON_IsString(op) || match_op_parse(op->valuestring, &m->op) != 0) {
            match_set_free(out);
            return util_err(err, errlen, "matcher %zu: op must be =, !=, =~ or !~", out->n);
        }
        if (!cJSON_IsString(value) || strlen(value->valuestring) > MATCH_VALUE_MAX) {
            match_set_free(out);
            return util_err(err, errlen, "matcher %zu: value must be a string of at most %d bytes",
                            out->n, MATCH_VALUE_MAX);
        }
        if (m->op == MATCH_RE || m->op == MATCH_NRE) {
            size_t len = strlen(value->valuestring) + 8;
            char *anchored = util_malloc(len);
            snprintf(anchored, len, "^(%s)$", value->valuestring);
            int rc = regcomp(&m->re, anchored, REG_EXTENDED | REG_NOSUB);
            free(anchored);
            if (rc != 0) {
                match_set_free(out);
                return util_err(err, errlen, "matcher %zu: invalid regular expression", out->n);
            }
            m->has_re = 1;
        }
        m->name = util_strdup(name->valuestring);
        m->value = util_strdup(value->valuestring);
        out->n++;
    }
    return 0;
}

const char *match_labels_get(const match_labels *l, const char *key)
{
    for (size_t i = l->n; i-- > 0;)
        if (strcmp(l->keys[i], key) == 0)
            return l->vals[i] ? l->vals[i] : "";
    return "";
}

int match_set_matches(const match_set *s, const match_labels *l)
{
    for (size_t i = 0; i < s->n; i++) {
        const match_matcher *m = &s->m[i];
        const char *v = match_labels_get(l, m->name);
        int ok;
        switch (m->op) {
        case MATCH_EQ:
            ok = strcmp(v, m->value) == 0;
            break;
        case MATCH_NE:
            ok = strcmp(v, m->value) != 0;
            break;
        case MATCH_RE:
            ok = regexec(&m->re, v, 0, NULL, 0) == 0;
            break;
        default:
            ok = regexec(&m->re, v, 0, NULL, 0) != 0;
            break;
        }
        if (!ok)
            return 0;
    }
    return 1;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void match_route_clear(match_route *r)
{
    free(r->id);
    free(r->parent_id);
    match_set_free(&r->matchers);
    free_strv(r->channels, r->nchannels);
    free_strv(r->group_by, r->ngroup_by);
    memset(r, 0, sizeof *r);
}

void match_route_tree_free(match_route_tree *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        match_route_clear(&t->r[i]);
    free(t->r);
    t->r = NULL;
    t->n = 0;
}

static int is_child(const match_route *r, const char *parent)
{
    if (!parent)
        return r->parent_id == NULL;
    return r->parent_id && strcmp(r->parent_id, parent) == 0;
}

/* Alertmanager's Route.Match: children of `parent` in order; returns matches appended. */
static size_t walk(const match_route_tree *t, const char *parent, const match_labels *l, int depth,
                   size_t *out, size_t max, size_t have)
{
    if (depth > MATCH_MAX_DEPTH)
        return have;
    for (size_t i = 0; i < t->n; i++) {
        const match_route *r = &t->r[i];
        if (!is_child(r, parent) || !match_set_matches(&r->matchers, l))
            continue;
        size_t before = have;
        have = walk(t, r->id, l, depth + 1, out, max, have);
        if (have == before && have < max)
            out[have++] = i;
        if (!r->cont)
            break;
    }
    return have;
}

size_t match_route_find(const match_route_tree *t, const match_labels *l, size_t *out, size_t max)
{
    return walk(t, NULL, l, 0, out, max, 0);
}

typedef struct keybuf {
    char *p;
    size_t len, cap;
} keybuf;

static void kb_put(keybuf *b, char c)
{
    if (b->len + 2 >= b->cap) {
        b->cap *= 2;
        char *g = realloc(b->p, b->cap);
        if (!g)
            abort();
        b->p = g;
    }
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

/* Escapes the separators so a label value containing "|x=y" cannot forge another key. */
static void kb_escaped(keybuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '|' || *s == '=' || *s == '\\')
            kb_put(b, '\\');
        kb_put(b, *s);
    }
}

static void kb_pair(keybuf *b, const char *k, const char *v)
{
    kb_put(b, '|');
    kb_escaped(b, k);
    kb_put(b, '=');
    kb_escaped(b, v ? v : "");
}

char *match_group_key_new(const match_route *r, const match_labels *l)
{
    keybuf b = {util_malloc(64), 0, 64};
    b.p[0] = '\0';
    kb_escaped(&b, r->id);
    for (size_t g = 0; g < r->ngroup_by; g++) {
        if (strcmp(r->group_by[g], "...") == 0) {
            /* Every label: one group per distinct alert (Alertmanager's group_by: [...]). */
            for (size_t i = 0; i < l->n; i++)
                kb_pair(&b, l->keys[i], l->vals[i]);
            continue;
        }
        kb_pair(&b, r->group_by[g], match_labels_get(l, r->group_by[g]));
    }
    return b.p;
}

size_t match_labels_fill(const cJSON *labels, const char *severity, const char *category,
                         const char *source, const char *dedup_key, const char *title,
                         const char **keys, const char **vals)
{
    size_t n = 0;
    const cJSON *l;
    if (cJSON_IsObject(labels))
        cJSON_ArrayForEach(l, labels) if (cJSON_IsString(l) && n < MATCH_MAX_LABELS - 5)
        {
            keys[n] = l->string;
            vals[n++] = l->valuestring;
        }
    const char *syn_k[] = {"severity", "category", "source", "dedup_key", "alertname"};
    const char *syn_v[] = {severity, category, source, dedup_key, title};
    for (size_t i = 0; i < 5; i++) {
        keys[n] = syn_k[i];
        vals[n++] = syn_v[i] ? syn_v[i] : "";
    }
    return n;
}
