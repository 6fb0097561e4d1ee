/* route: priority rules for chain events (see route.h). */
#include "route.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static char *trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int ident_ok(const char *s)
{
    if (!*s || strlen(s) >= ROUTE_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

/* "123" or "123e18" -> uint256; -1 when not that shape or too big. */
static int parse_amount(const char *s, money_u256 *out)
{
    const char *e = strchr(s, 'e');
    size_t mlen = e ? (size_t)(e - s) : strlen(s);
    if (mlen == 0 || mlen >= MONEY_DEC_MAX)
        return -1;
    char mant[MONEY_DEC_MAX];
    memcpy(mant, s, mlen);
    mant[mlen] = '\0';
    for (size_t i = 0; i < mlen; i++)
        if (!isdigit((unsigned char)mant[i]))
            return -1;
    money_u256 v;
    if (money_from_dec(&v, mant, NULL, 0) != 0)
        return -1;
    if (e) {
        const char *x = e + 1;
        if (!*x || strlen(x) > 2)
            return -1;
        for (const char *p = x; *p; p++)
            if (!isdigit((unsigned char)*p))
                return -1;
        int exp = atoi(x);
        money_u256 ten;
        money_from_u64(&ten, 10);
        for (int i = 0; i < exp; i++)
            if (money_mul(&v, &v, &ten) != 0)
                return -1;
    }
    *out = v;
    return 0;
}

static int parse_cond(char *s, route_cond *c)
{
    static const struct {
        const char *tok;
        route_op op;
    } ops[] = {{"==", ROUTE_EQ}, {"!=", ROUTE_NE}, {">=", ROUTE_GE},
               {"<=", ROUTE_LE}, {">", ROUTE_GT},  {"<", ROUTE_LT}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        char *at = strstr(s, ops[i].tok);
        if (!at)
            continue;
        *at = '\0';
        char *name = trim(s), *lit = trim(at + strlen(ops[i].tok));
        if (!ident_ok(name) || !*lit || strlen(lit) >= ROUTE_TEXT_MAX || strpbrk(lit, "<>=!"))
            return -1;
        memset(c, 0, sizeof *c);
        util_strlcpy(c->arg, name, sizeof c->arg);
        util_strlcpy(c->text, lit, sizeof c->text);
        c->op = ops[i].op;
        c->numeric = parse_amount(lit, &c->num) == 0;
        /* Text supports equality only: "> 0xabc" has no meaning. */
        return c->numeric || c->op == ROUTE_EQ || c->op == ROUTE_NE ? 0 : -1;
    }
    return -1;
}

static int parse_rule(char *s, route_rule *r)
{
    char *eq = strrchr(s, '=');
    if (!eq || eq == s || eq[-1] == '=' || eq[-1] == '!' || eq[-1] == '<' || eq[-1] == '>')
        return -1;
    *eq = '\0';
    int p = bus_priority_parse(trim(eq + 1));
    if (p < 0)
        return -1;
    memset(r, 0, sizeof *r);
    r->prio = (bus_priority)p;
    char *q = strchr(s, '?');
    if (q)
        *q = '\0';
    char *ev = trim(s);
    if (strcmp(ev, "*") != 0 && !ident_ok(ev))
        return -1;
    util_strlcpy(r->event, ev, sizeof r->event);
    if (!q)
        return 0;
    char *conds = trim(q + 1);
    size_t cl = strlen(conds);
    /* strtok would skip empty conditions silently: "a==1&" is a typo, not a rule. */
    if (cl == 0 || conds[0] == '&' || conds[cl - 1] == '&' || strstr(conds, "&&"))
        return -1;
    char *save = NULL;
    for (char *tok = strtok_r(conds, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
        if (r->nconds == ROUTE_MAX_CONDS || parse_cond(tok, &r->conds[r->nconds]) != 0)
            return -1;
        r->nconds++;
    }
    return r->nconds ? 0 : -1;
}

int route_parse(const char *spec, route_table *out, char *err, size_t errlen)
{
    if (!spec)
        return util_err(err, errlen, "route: no rules");
    char *copy = util_strdup(spec), *save = NULL;
    route_table t = {0};
    size_t cap = 0;
    int idx = 0;
    for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save), idx++) {
        char *rule = trim(tok);
        if (!*rule)
            continue;
        char shown[96];
        util_strlcpy(shown, rule, sizeof shown);
        if (t.n == cap) {
            cap = cap ? cap * 2 : 8;
            route_rule *g = realloc(t.rules, cap * sizeof *g);
            if (!g)
                abort();
            t.rules = g;
        }
        if (parse_rule(rule, &t.rules[t.n]) != 0) {
            free(t.rules);
            free(copy);
            return util_err(err, errlen,
                            "route: bad rule %d \"%s\" (want Event[?arg OP value"
                            "[&...]]=critical|high|normal)",
                            idx + 1, shown);
        }
        t.n++;
    }
    free(copy);
    *out = t;
    return 0;
}

void route_table_free(route_table *t)
{
    if (!t)
        return;
    free(t->rules);
    t->rules = NULL;
    t->n = 0;
}

static int cond_true(const route_cond *c, const cJSON *args)
{
    const cJSON *v = args ? cJSON_GetObjectItemCaseSensitive(args, c->arg) : NULL;
    if (!v)
        return 0;
    if (c->numeric) {
        money_u256 a;
        if (cJSON_IsString(v)) {
            if (money_from_dec(&a, v->valuestring, NULL, 0) != 0)
                return 0;
        } else if (cJSON_IsNumber(v) && v->valuedouble >= 0 &&
                   v->valuedouble <= 9007199254740992.0) {
            money_from_u64(&a, (uint64_t)v->valuedouble);
        } else {
            return 0;
        }
        int cmp = money_cmp(&a, &c->num);
        switch (c->op) {
        case ROUTE_EQ:
            return cmp == 0;
        case ROUTE_NE:
            return cmp != 0;
        case ROUTE_GE:
            return cmp >= 0;
        case ROUTE_LE:
            return cmp <= 0;
        case ROUTE_GT:
            return cmp > 0;
        case ROUTE_LT:
            return cmp < 0;
        }
        return 0;
    }
    const char *text = cJSON_IsString(v)  ? v->valuestring
                       : cJSON_IsTrue(v)  ? "true"
                       : cJSON_IsFalse(v) ? "false"
                                          : NULL;
    if (!text)
        return 0;
    int same = strcasecmp(text, c->text) == 0;
    return c->op == ROUTE_EQ ? same : !same;
}

bus_priority route_classify(const route_table *t, const char *event, const cJSON *args)
{
    for (size_t i = 0; t && i < t->n; i++) {
        const route_rule *r = &t->rules[i];
        if (strcmp(r->event, "*") != 0 && (!event || strcmp(r->event, event) != 0))
            continue;
        size_t k = 0;
        while (k < r->nconds && cond_true(&r->conds[k], args))
            k++;
        if (k == r->nconds)
            return r->prio;
    }
    return BUS_NORMAL;
}
