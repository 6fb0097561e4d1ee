/* config: typed, validated configuration from environment variables (see config.h).
 * Every variable is checked even after a failure so the report lists all problems;
 * on failure everything allocated is released so callers need no cleanup. */
#include "config.h"
#include "hex.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <strings.h>

/* ---- growable string ------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (sb->len + (size_t)n + 1 > sb->cap) {
        size_t nc = sb->cap ? sb->cap : 256;
        while (sb->len + (size_t)n + 1 > nc)
            nc *= 2;
        char *np = util_malloc(nc);
        if (sb->p)
            memcpy(np, sb->p, sb->len + 1);
        free(sb->p);
        sb->p = np;
        sb->cap = nc;
    }
    va_start(ap, fmt);
    vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

/* ---- value parsers -------------------------------------------------------- */

int cfg_parse_int(const char *s, int64_t *out, char *err, size_t errlen)
{
    if (!s || !*s)
        return util_err(err, errlen, "empty, expected an integer");
    /* strtoll would accept leading spaces and '+': be strict about what operators type */
    if (!(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return util_err(err, errlen, "not an integer");
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return util_err(err, errlen, "integer out of 64-bit range");
    if (*end != '\0')
        return util_err(err, errlen, "not an integer (trailing \"%.16s\")", end);
    *out = (int64_t)v;
    return 0;
}

int cfg_parse_duration_ms(const char *s, int64_t *out, char *err, size_t errlen)
{
    if (!s || !*s)
        return util_err(err, errlen, "empty, expected a duration like 250ms, 5s, 2m, 1h, 1d");
    if (!isdigit((unsigned char)s[0]))
        return util_err(err, errlen, "not a duration (expected e.g. 250ms, 5s, 2m, 1h, 1d)");
    int64_t v = 0;
    const char *p = s;
    while (isdigit((unsigned char)*p)) {
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10)
            return util_err(err, errlen, "duration too large");
        v = v * 10 + d;
        p++;
    }
    int64_t mul;
    if (*p == '\0' || strcmp(p, "ms") == 0)
        mul = 1;
    else if (strcmp(p, "s") == 0)
        mul = 1000;
    else if (strcmp(p, "m") == 0)
        mul = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        mul = 3600 * 1000;
    else if (strcmp(p, "d") == 0)
        mul = 86400 * 1000;
    else
        return util_err(err, errlen, "unknown duration unit \"%.8s\" (use ms, s, m, h, d)", p);
    if (v > INT64_MAX / mul)
        return util_err(err, errlen, "duration too large");
    *out = v * mul;
    return 0;
}

int cfg_parse_bool(const char *s, int *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; s && i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return util_err(err, errlen, "not a boolean (true/false/1/0/yes/no/on/off)");
}

/* Finds s among "a|b|c" ignoring case; its index or -1. */
static int choice_index(const char *choices, const char *s, size_t slen)
{
    int idx = 0;
    const char *p = choices;
    while (p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == slen && strncasecmp(p, s, len) == 0)
            return idx;
        idx++;
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

/* Returns the n-th choice into buf (for rendering an ENUM). */
static const char *choice_at(const char *choices, int n, char *buf, size_t len)
{
    const char *p = choices;
    for (int i = 0; p; i++) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (i == n) {
            snprintf(buf, len, "%.*s", (int)l, p);
            return buf;
        }
        p = bar ? bar + 1 : NULL;
    }
    return "?";
}

static const char *const default_schemes = "redis|rediss|postgres|postgresql|http|https|ws|wss";

static int check_url(const char *s, const char *schemes, char *err, size_t errlen)
{
    if (!*s)
        return util_err(err, errlen, "empty, expected a URL");
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
            return util_err(err, errlen, "URL contains spaces or control characters");
    const char *sep = strstr(s, "://");
    if (!sep || sep == s)
        return util_err(err, errlen, "not a URL (expected scheme://host...)");
    if (choice_index(schemes ? schemes : default_schemes, s, (size_t)(sep - s)) < 0)
        return util_err(err, errlen, "URL scheme must be one of %s",
                        schemes ? schemes : default_schemes);
    const char *host = sep + 3;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');
    if (at && (!slash || at < slash))
        host = at + 1;
    if (*host == '\0' || *host == '/' || *host == ':' || *host == '?')
        return util_err(err, errlen, "URL has no host");
    return 0;
}

static void list_free(cfg_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int parse_list(const char *s, cfg_list *out, char *err, size_t errlen)
{
    out->items = NULL;
    out->n = 0;
    if (!*s)
        return 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    out->items = util_calloc(cap, sizeof *out->items);
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        const char *b = p;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (e == b) {
            list_free(out);
            return util_err(err, errlen, "list has an empty item");
        }
        char *item = util_malloc((size_t)(e - b) + 1);
        memcpy(item, b, (size_t)(e - b));
        item[e - b] = '\0';
        out->items[out->n++] = item;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

static int ranged(const cfg_var *v)
{
    return v->min != 0 || v->max != 0;
}

static int check_range(const cfg_var *v, int64_t x, const char *what, char *err, size_t errlen)
{
    if (ranged(v) && (x < v->min || x > v->max))
        return util_err(err, errlen, "%s %" PRId64 " outside %" PRId64 "..%" PRId64, what, x,
                        v->min, v->max);
    return 0;
}

/* Sets dest to its "holds nothing" state so release and rendering stay safe. */
static void clear_dest(const cfg_var *v)
{
    switch (v->type) {
    case CFG_STR:
    case CFG_URL:
        *(char **)v->dest = NULL;
        break;
    case CFG_INT:
    case CFG_DURATION_MS:
        *(int64_t *)v->dest = 0;
        break;
    case CFG_BOOL:
    case CFG_PORT:
        *(int *)v->dest = 0;
        break;
    case CFG_ENUM:
        *(int *)v->dest = -1;
        break;
    case CFG_LIST:
        ((cfg_list *)v->dest)->items = NULL;
        ((cfg_list *)v->dest)->n = 0;
        break;
    }
}

/* Parses text into v->dest; on failure dest holds nothing. */
static int parse_value(const cfg_var *v, const char *s, int is_default, char *err, size_t errlen)
{
    int64_t i64;
    switch (v->type) {
    case CFG_STR: {
        size_t len = strlen(s);
        if (!v->def && len == 0 && !is_default)
            return util_err(err, errlen, "required but empty");
        if (ranged(v) && ((int64_t)len < v->min || (int64_t)len > v->max))
            return util_err(err, errlen, "length %zu outside %" PRId64 "..%" PRId64, len, v->min,
                            v->max);
        *(char **)v->dest = util_strdup(s);
        return 0;
    }
    case CFG_URL:
        if (check_url(s, v->choices, err, errlen) != 0)
            return -1;
        *(char **)v->dest = util_strdup(s);
        return 0;
    case CFG_INT:
        if (cfg_parse_int(s, &i64, err, errlen) != 0 || check_range(v, i64, "value", err, errlen))
            return -1;
        *(int64_t *)v->dest = i64;
        return 0;
    case CFG_PORT:
        if (cfg_parse_int(s, &i64, err, errlen) != 0)
            return -1;
        if (i64 < 1 || i64 > 65535)
            return util_err(err, errlen, "port %" PRId64 " outside 1..65535", i64);
        if (check_range(v, i64, "port", err, errlen) != 0)
            return -1;
        *(int *)v->dest = (int)i64;
        return 0;
    case CFG_DURATION_MS:
        if (cfg_parse_duration_ms(s, &i64, err, errlen) != 0 ||
            check_range(v, i64, "duration (ms)", err, errlen) != 0)
            return -1;
        *(int64_t *)v->dest = i64;
        return 0;
    case CFG_BOOL:
        return cfg_parse_bool(s, (int *)v->dest, err, errlen);
    case CFG_ENUM: {
        int idx = v->choices ? choice_index(v->choices, s, strlen(s)) : -1;
        if (idx < 0 || !*s)
            return util_err(err, errlen, "must be one of %s", v->choices ? v->choices : "(none)");
        *(int *)v->dest = idx;
        return 0;
    }
    case CFG_LIST: {
        cfg_list *l = v->dest;
        if (parse_list(s, l, err, errlen) != 0)
            return -1;
        if (!v->def && l->n == 0 && !is_default) {
            list_free(l);
            return util_err(err, errlen, "required but empty");
        }
        if (ranged(v) && ((int64_t)l->n < v->min || (int64_t)l->n > v->max)) {
            size_t n = l->n;
            list_free(l);
            return util_err(err, errlen, "%zu items outside %" PRId64 "..%" PRId64, n, v->min,
                            v->max);
        }
        return 0;
    }
    }
    return util_err(err, errlen, "unknown variable type %d", (int)v->type);
}

/* Appends a problem, echoing the offending value unless the variable is secret. */
static void add_problem(sbuf *sb, int *count, const cfg_var *v, const char *val, const char *why)
{
    if (*count)
        sb_printf(sb, "; ");
    (*count)++;
    if (!val)
        sb_printf(sb, "%s: %s", v->name ? v->name : "(unnamed)", why);
    else if (v->secret)
        sb_printf(sb, "%s: %s (value hidden)", v->name, why);
    else
        sb_printf(sb, "%s: %s (got \"%.60s%s\")", v->name, why, val, strlen(val) > 60 ? "..." : "");
}

static const char *env_get(const char *name, void *ud)
{
    (void)ud;
    return getenv(name);
}

int cfg_load_from(const cfg_var *vars, size_t n, const char *(*get)(const char *name, void *ud),
                  void *ud, char *err, size_t errlen)
{
    if (!vars || !get)
        return util_err(err, errlen, "config: no variable table");
    for (size_t i = 0; i < n; i++)
        if (vars[i].dest)
            clear_dest(&vars[i]);

    sbuf sb = {0};
    int problems = 0;
    for (size_t i = 0; i < n; i++) {
        const cfg_var *v = &vars[i];
        char why[256];
        if (!v->name || !v->dest) {
            add_problem(&sb, &problems, v, NULL, "table entry without name or dest");
            continue;
        }
        if (v->type == CFG_ENUM && !v->choices) {
            add_problem(&sb, &problems, v, NULL, "ENUM without choices");
            continue;
        }
        const char *val = get(v->name, ud);
        if (val) {
            if (parse_value(v, val, 0, why, sizeof why) != 0)
                add_problem(&sb, &problems, v, val, why);
        } else if (!v->def) {
            char msg[300];
            snprintf(msg, sizeof msg, "required but not set%s%.200s%s", v->help ? " (" : "",
                     v->help ? v->help : "", v->help ? ")" : "");
            add_problem(&sb, &problems, v, NULL, msg);
        } else if (parse_value(v, v->def, 1, why, sizeof why) != 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "invalid built-in default: %s", why);
            add_problem(&sb, &problems, v, NULL, msg);
        }
    }
    if (problems == 0) {
        free(sb.p);
        return 0;
    }
    cfg_release(vars, n);
    if (err && errlen) {
        int need = snprintf(err, errlen, "invalid configuration (%d problem%s): %s", problems,
                            problems == 1 ? "" : "s", sb.p);
        if (need >= 0 && (size_t)need >= errlen && errlen > 4)
            memcpy(err + errlen - 4, "...", 4);
    }
    free(sb.p);
    return -1;
}

int cfg_load(const cfg_var *vars, size_t n, char *err, size_t errlen)
{
    return cfg_load_from(vars, n, env_get, NULL, err, errlen);
}

void cfg_release(const cfg_var *vars, size_t n)
{
    for (size_t i = 0; vars && i < n; i++) {
        const cfg_var *v = &vars[i];
        if (!v->dest)
            continue;
        if (v->type == CFG_STR || v->type == CFG_URL) {
            free(*(char **)v->dest);
            *(char **)v->dest = NULL;
        } else if (v->type == CFG_LIST) {
            list_free(v->dest);
        }
    }
}

/* scheme://user:password@host -> scheme://user:***@host */
static void render_url(sbuf *sb, const char *url)
{
    const char *sep = strstr(url, "://");
    const char *auth = sep ? sep + 3 : NULL;
    const char *at = auth ? strchr(auth, '@') : NULL;
    const char *slash = auth ? strchr(auth, '/') : NULL;
    if (!at || (slash && slash < at)) {
        sb_printf(sb, "%s", url);
        return;
    }
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (!colon) {
        sb_printf(sb, "%s", url);
        return;
    }
    sb_printf(sb, "%.*s:***%s", (int)(colon - url), url, at);
}

char *cfg_render(const cfg_var *vars, size_t n)
{
    sbuf sb = {0};
    sb_printf(&sb, "%s", "");
    for (size_t i = 0; vars && i < n; i++) {
        const cfg_var *v = &vars[i];
        if (!v->name || !v->dest)
            continue;
        sb_printf(&sb, "%s=", v->name);
        if (v->secret) {
            sb_printf(&sb, "***\n");
            continue;
        }
        switch (v->type) {
        case CFG_STR: {
            const char *s = *(char **)v->dest;
            sb_printf(&sb, "%s", s ? s : "");
            break;
        }
        case CFG_URL: {
            const char *s = *(char **)v->dest;
            render_url(&sb, s ? s : "");
            break;
        }
        case CFG_INT:
            sb_printf(&sb, "%" PRId64, *(int64_t *)v->dest);
            break;
        case CFG_DURATION_MS:
            sb_printf(&sb, "%" PRId64 "ms", *(int64_t *)v->dest);
            break;
        case CFG_PORT:
            sb_printf(&sb, "%d", *(int *)v->dest);
            break;
        case CFG_BOOL:
            sb_printf(&sb, "%s", *(int *)v->dest ? "true" : "false");
            break;
        case CFG_ENUM: {
            char buf[64];
            sb_printf(&sb, "%s", choice_at(v->choices, *(int *)v->dest, buf, sizeof buf));
            break;
        }
        case CFG_LIST: {
            const cfg_list *l = v->dest;
            for (size_t k = 0; k < l->n; k++)
                sb_printf(&sb, "%s%s", k ? "," : "", l->items[k]);
            break;
        }
        }
        sb_printf(&sb, "\n");
    }
    return sb.p;
}

char *cfg_usage(const cfg_var *vars, size_t n)
{
    static const char *const tnames[] = {"string",   "integer", "bool", "port",
                                         "duration", "url",     "enum", "list"};
    sbuf sb = {0};
    sb_printf(&sb, "%s", "");
    for (size_t i = 0; vars && i < n; i++) {
        const cfg_var *v = &vars[i];
        if (!v->name)
            continue;
        const char *tn = (unsigned)v->type < CFG_COUNT(tnames) ? tnames[v->type] : "?";
        sb_printf(&sb, "  %-32s %-8s", v->name, tn);
        if (v->type == CFG_ENUM && v->choices)
            sb_printf(&sb, " (%s)", v->choices);
        if (ranged(v))
            sb_printf(&sb, " [%" PRId64 "..%" PRId64 "]", v->min, v->max);
        if (!v->def)
            sb_printf(&sb, " required");
        else if (v->secret)
            sb_printf(&sb, " default ***");
        else
            sb_printf(&sb, " default \"%s\"", v->def);
        sb_printf(&sb, "%s%s\n", v->help ? "  " : "", v->help ? v->help : "");
    }
    return sb.p;
}

int cfg_json_string(const char *path, const char *dotted, char *out, size_t len, char *err,
                    size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return util_err(err, errlen, "cannot open %s", path);
    size_t cap = 1u << 20;
    char *buf = util_malloc(cap);
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    free(buf);
    const cJSON *j = root;
    char key[128];
    for (const char *p = dotted; j && *p;) {
        size_t k = strcspn(p, ".");
        if (k == 0 || k >= sizeof key)
            break;
        memcpy(key, p, k);
        key[k] = '\0';
        j = cJSON_GetObjectItemCaseSensitive(j, key);
        p += k + (p[k] == '.');
    }
    const char *v = cJSON_GetStringValue(j);
    int rc =
        v && strlen(v) < len ? 0 : util_err(err, errlen, "%s has no string at %s", path, dotted);
    if (rc == 0)
        memcpy(out, v, strlen(v) + 1);
    cJSON_Delete(root);
    return rc;
}

int cfg_address(const char *explicit_addr, const char *devchain_json, const char *dotted, char *out,
                size_t len, char *err, size_t errlen)
{
    char raw[128] = "", why[UTIL_ERRLEN];
    if (explicit_addr && *explicit_addr)
        util_strlcpy(raw, explicit_addr, sizeof raw);
    else if (!devchain_json || !*devchain_json)
        return util_err(err, errlen, "no address given and no devchain address book");
    else if (cfg_json_string(devchain_json, dotted, raw, sizeof raw, why, sizeof why) != 0)
        return util_err(err, errlen, "%s", why);
    uint8_t b[20];
    if (hex_addr_parse(raw, b, why, sizeof why) != 0)
        return util_err(err, errlen, "%s: %s", dotted, why);
    if (len < 43)
        return util_err(err, errlen, "address buffer too small");
    hex_encode(b, 20, 1, out, len);
    return 0;
}
