/* metrics: Prometheus counters, gauges and histograms (see metrics.h).
 *
 * The registry is a list of families (one per metric name) each holding a list
 * of series (one per label set), both append-only until metrics_free(), so a
 * handle is a stable pointer into a series. The registry mutex guards the lists;
 * counter and gauge values are doubles stored as bits in 64-bit atomics (updated
 * by compare-and-swap, so no libatomic is needed), and each histogram has its own
 * mutex so a render never sees a bucket count that disagrees with _count. */
#include "metrics.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 16

typedef enum { MT_COUNTER, MT_GAUGE, MT_HISTOGRAM } mtype;

struct metrics_counter {
    _Atomic uint64_t bits;
};

struct metrics_gauge {
    _Atomic uint64_t bits;
};

struct metrics_histogram {
    pthread_mutex_t mu;
    const double *bounds; /* borrowed from the family */
    size_t nb;
    uint64_t *counts; /* nb + 1 slots, per bucket (not cumulative); last is +Inf */
    uint64_t count;
    double sum;
};

typedef struct series {
    struct series *next;
    char *labels; /* canonical: sorted by name, `a="x",b="y"`, "" when none */
    metrics_counter counter;
    metrics_gauge gauge;
    metrics_histogram *hist;
} series;

typedef struct family {
    struct family *next;
    char *name;
    char *help;
    mtype type;
    double *bounds;
    size_t nb;
    series *head, *tail;
} family;

struct metrics_registry {
    pthread_mutex_t mu;
    family *head, *tail;
};

static const double default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

/* ---- atomic doubles ------------------------------------------------------- */

static uint64_t d2b(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static double b2d(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, d2b(b2d(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* ---- registry ------------------------------------------------------------- */

metrics_registry *metrics_new(void)
{
    metrics_registry *r = util_calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static void series_free(series *s)
{
    if (s->hist) {
        pthread_mutex_destroy(&s->hist->mu);
        free(s->hist->counts);
        free(s->hist);
    }
    free(s->labels);
    free(s);
}

void metrics_free(metrics_registry *r)
{
    if (!r)
        return;
    family *f = r->head;
    while (f) {
        family *fn = f->next;
        series *s = f->head;
        while (s) {
            series *sn = s->next;
            series_free(s);
            s = sn;
        }
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
        f = fn;
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static metrics_registry *g_global;
static pthread_once_t g_global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    g_global = metrics_new();
}

metrics_registry *metrics_global(void)
{
    pthread_once(&g_global_once, global_init);
    return g_global;
}

/* ---- validation ----------------------------------------------------------- */

static int valid_metric_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static int is_lname_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_lname_char(char c)
{
    return is_lname_start(c) || (c >= '0' && c <= '9');
}

/* Length of a well-formed UTF-8 sequence at s, 0 if none (exposition is UTF-8). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi) /* also stops at the NUL terminator */
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

int metrics_label_escape(char *dst, size_t dstlen, const char *value)
{
    if (!dst || dstlen == 0)
        return -1;
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)(value ? value : "");
    while (*s) {
        char tmp[4];
        const char *rep = tmp;
        size_t rl, adv = 1;
        if (*s == '\\' || *s == '"') {
            tmp[0] = '\\';
            tmp[1] = (char)*s;
            rl = 2;
        } else if (*s == '\n') {
            rep = "\\n";
            rl = 2;
        } else if (*s < 0x20 || *s == 0x7f) {
            rep = "?"; /* other control bytes have no escape and only confuse scrapers */
            rl = 1;
        } else {
            size_t ul = utf8_len(s);
            if (ul == 0) {
                rep = "?";
                rl = 1;
            } else {
                rep = (const char *)s;
                rl = adv = ul;
            }
        }
        if (o + rl + 1 > dstlen) {
            dst[o] = '\0';
            return -1;
        }
        memcpy(dst + o, rep, rl);
        o += rl;
        s += adv;
    }
    dst[o] = '\0';
    return 0;
}

typedef struct lpair {
    const char *name;
    size_t nlen;
    const char *val; /* escaped form, as given */
    size_t vlen;
} lpair;

static int lpair_cmp(const void *a, const void *b)
{
    const lpair *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    return (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

/* Parses `name="value",...` into a canonical malloc'd string (sorted by name,
 * no spaces) or returns NULL when the text is not a valid label set. */
static char *canonical_labels(const char *labels, int histogram)
{
    lpair pairs[MAX_LABELS] = {{0}};
    size_t n = 0;
    const char *p = labels ? labels : "";
    skip_ws(&p);
    while (*p) {
        if (n == MAX_LABELS || !is_lname_start(*p))
            return NULL;
        lpair *lp = &pairs[n];
        lp->name = p;
        while (is_lname_char(*p))
            p++;
        lp->nlen = (size_t)(p - lp->name);
        if (lp->nlen >= 2 && lp->name[0] == '_' && lp->name[1] == '_')
            return NULL; /* reserved for Prometheus itself */
        if (histogram && lp->nlen == 2 && memcmp(lp->name, "le", 2) == 0)
            return NULL;
        skip_ws(&p);
        if (*p++ != '=')
            return NULL;
        skip_ws(&p);
        if (*p++ != '"')
            return NULL;
        lp->val = p;
        for (;;) {
            unsigned char c = (unsigned char)*p;
            if (c == '"')
                break;
            if (c == '\0' || c == '\n' || c == '\r')
                return NULL;
            if (c == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                    return NULL;
                p += 2;
                continue;
            }
            size_t ul = utf8_len((const unsigned char *)p);
            if (ul == 0)
                return NULL;
            p += ul;
        }
        lp->vlen = (size_t)(p - lp->val);
        p++; /* closing quote */
        n++;
        skip_ws(&p);
        if (*p == ',') {
            p++;
            skip_ws(&p);
        } else if (*p) {
            return NULL;
        }
    }
    qsort(pairs, n, sizeof pairs[0], lpair_cmp);
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && lpair_cmp(&pairs[i - 1], &pairs[i]) == 0)
            return NULL; /* duplicate label name */
        total += pairs[i].nlen + pairs[i].vlen + 4;
    }
    char *out = util_malloc(total);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[o++] = ',';
        memcpy(out + o, pairs[i].name, pairs[i].nlen);
        o += pairs[i].nlen;
        out[o++] = '=';
        out[o++] = '"';
        memcpy(out + o, pairs[i].val, pairs[i].vlen);
        o += pairs[i].vlen;
        out[o++] = '"';
    }
    out[o] = '\0';
    return out;
}

/* Checks and copies buckets, dropping a trailing +Inf; -1 if unusable. */
static int check_buckets(const double *b, size_t nb, size_t *out_nb)
{
    if (!b || nb == 0)
        return -1;
    if (isinf(b[nb - 1]) && b[nb - 1] > 0)
        nb--;
    if (nb == 0 || nb > METRICS_MAX_BUCKETS)
        return -1;
    for (size_t i = 0; i < nb; i++) {
        if (!isfinite(b[i]))
            return -1;
        if (i > 0 && !(b[i] > b[i - 1]))
            return -1;
    }
    *out_nb = nb;
    return 0;
}

/* ---- lookup --------------------------------------------------------------- */

static series *get_series(metrics_registry *r, const char *name, const char *help,
                          const char *labels, mtype type, const double *buckets, size_t nbuckets)
{
    if (!r || !valid_metric_name(name))
        return NULL;
    size_t nb = 0;
    if (type == MT_HISTOGRAM) {
        if (!buckets) {
            buckets = default_buckets;
            nbuckets = sizeof default_buckets / sizeof default_buckets[0];
        }
        if (check_buckets(buckets, nbuckets, &nb) != 0)
            return NULL;
    }
    char *canon = canonical_labels(labels, type == MT_HISTOGRAM);
    if (!canon)
        return NULL;

    series *s = NULL;
    pthread_mutex_lock(&r->mu);
    family *f;
    for (f = r->head; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    if (f) {
        if (f->type != type)
            goto out;
        if (type == MT_HISTOGRAM &&
            (f->nb != nb || memcmp(f->bounds, buckets, nb * sizeof *buckets) != 0))
            goto out;
        for (s = f->head; s; s = s->next)
            if (strcmp(s->labels, canon) == 0)
                goto out;
    } else {
        f = util_calloc(1, sizeof *f);
        f->name = util_strdup(name);
        f->help = util_strdup(help ? help : "");
        f->type = type;
        if (type == MT_HISTOGRAM) {
            f->bounds = util_malloc(nb * sizeof *f->bounds);
            memcpy(f->bounds, buckets, nb * sizeof *f->bounds);
            f->nb = nb;
        }
        if (r->tail)
            r->tail->next = f;
        else
            r->head = f;
        r->tail = f;
    }
    s = util_calloc(1, sizeof *s);
    s->labels = canon;
    canon = NULL;
    atomic_init(&s->counter.bits, d2b(0.0));
    atomic_init(&s->gauge.bits, d2b(0.0));
    if (type == MT_HISTOGRAM) {
        s->hist = util_calloc(1, sizeof *s->hist);
        pthread_mutex_init(&s->hist->mu, NULL);
        s->hist->bounds = f->bounds;
        s->hist->nb = f->nb;
        s->hist->counts = util_calloc(f->nb + 1, sizeof *s->hist->counts);
    }
    if (f->tail)
        f->tail->next = s;
    else
        f->head = s;
    f->tail = s;
out:
    pthread_mutex_unlock(&r->mu);
    free(canon);
    return s;
}

metrics_counter *metrics_counter_get(metrics_registry *r, const char *name, const char *help,
                                     const char *labels)
{
    series *s = get_series(r, name, help, labels, MT_COUNTER, NULL, 0);
    return s ? &s->counter : NULL;
}

metrics_gauge *metrics_gauge_get(metrics_registry *r, const char *name, const char *help,
                                 const char *labels)
{
    series *s = get_series(r, name, help, labels, MT_GAUGE, NULL, 0);
    return s ? &s->gauge : NULL;
}

metrics_histogram *metrics_histogram_get(metrics_registry *r, const char *name, const char *help,
                                         const char *labels, const double *buckets, size_t nbuckets)
{
    series *s = get_series(r, name, help, labels, MT_HISTOGRAM, buckets, nbuckets);
    return s ? s->hist : NULL;
}

/* ---- updates -------------------------------------------------------------- */

void metrics_counter_inc(metrics_counter *c)
{
    if (c)
        atomic_add_double(&c->bits, 1.0);
}

void metrics_counter_add(metrics_counter *c, double v)
{
    if (c && v >= 0 && isfinite(v)) /* counters only go up; NaN fails v >= 0 */
        atomic_add_double(&c->bits, v);
}

double metrics_counter_value(const metrics_counter *c)
{
    return c ? b2d(atomic_load(&((metrics_counter *)c)->bits)) : 0.0;
}

void metrics_gauge_set(metrics_gauge *g, double v)
{
    if (g)
        atomic_store(&g->bits, d2b(v));
}

void metrics_gauge_add(metrics_gauge *g, double v)
{
    if (g)
        atomic_add_double(&g->bits, v);
}

double metrics_gauge_value(const metrics_gauge *g)
{
    return g ? b2d(atomic_load(&((metrics_gauge *)g)->bits)) : 0.0;
}

void metrics_histogram_observe(metrics_histogram *h, double v)
{
    if (!h || isnan(v))
        return;
    /* first bucket whose upper bound is >= v (le is inclusive) */
    size_t lo = 0, hi = h->nb;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    pthread_mutex_lock(&h->mu);
    h->counts[lo]++;
    h->count++;
    h->sum += v;
    pthread_mutex_unlock(&h->mu);
}

void metrics_histogram_stats(const metrics_histogram *h, uint64_t *count, double *sum)
{
    uint64_t c = 0;
    double s = 0;
    if (h) {
        metrics_histogram *mh = (metrics_histogram *)h; /* locking is not a logical write */
        pthread_mutex_lock(&mh->mu);
        c = mh->count;
        s = mh->sum;
        pthread_mutex_unlock(&mh->mu);
    }
    if (count)
        *count = c;
    if (sum)
        *sum = s;
}

/* ---- rendering ------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *sb, const char *s, size_t n)
{
    if (sb->oom)
        return;
    if (sb->len + n + 1 > sb->cap) {
        size_t nc = sb->cap ? sb->cap : 4096;
        while (sb->len + n + 1 > nc)
            nc *= 2;
        char *np = realloc(sb->p, nc);
        if (!np) {
            sb->oom = 1;
            return;
        }
        sb->p = np;
        sb->cap = nc;
    }
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
}

static void sb_str(sbuf *sb, const char *s)
{
    sb_put(sb, s, strlen(s));
}

/* Shortest of %.15g / %.17g that reads back exactly, so 0.1 prints as 0.1. */
static void fmt_double(char *buf, size_t len, double v)
{
    if (isnan(v))
        snprintf(buf, len, "NaN");
    else if (isinf(v))
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
    else {
        snprintf(buf, len, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, len, "%.17g", v);
    }
}

static void sb_double(sbuf *sb, double v)
{
    char b[40];
    fmt_double(b, sizeof b, v);
    sb_str(sb, b);
}

static void sb_u64(sbuf *sb, uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    sb_str(sb, b);
}

/* HELP text escapes only backslash and newline (format 0.0.4). */
static void sb_help(sbuf *sb, const char *h)
{
    for (; *h; h++) {
        if (*h == '\\')
            sb_put(sb, "\\\\", 2);
        else if (*h == '\n')
            sb_put(sb, "\\n", 2);
        else
            sb_put(sb, h, 1);
    }
}

/* `name<suffix>{labels[,extra]} ` */
static void sb_sample_head(sbuf *sb, const char *name, const char *suffix, const char *labels,
                           const char *extra)
{
    sb_str(sb, name);
    sb_str(sb, suffix);
    if (*labels || extra) {
        sb_put(sb, "{", 1);
        sb_str(sb, labels);
        if (extra) {
            if (*labels)
                sb_put(sb, ",", 1);
            sb_str(sb, extra);
        }
        sb_put(sb, "}", 1);
    }
    sb_put(sb, " ", 1);
}

static void render_histogram(sbuf *sb, const family *f, const series *s)
{
    metrics_histogram *h = s->hist;
    uint64_t counts[METRICS_MAX_BUCKETS + 1];
    pthread_mutex_lock(&h->mu);
    memcpy(counts, h->counts, (h->nb + 1) * sizeof counts[0]);
    uint64_t count = h->count;
    double sum = h->sum;
    pthread_mutex_unlock(&h->mu);

    uint64_t cum = 0;
    for (size_t i = 0; i <= h->nb; i++) {
        char le[64], num[40];
        cum += counts[i];
        if (i < h->nb)
            fmt_double(num, sizeof num, h->bounds[i]);
        else
            snprintf(num, sizeof num, "+Inf");
        snprintf(le, sizeof le, "le=\"%s\"", num);
        sb_sample_head(sb, f->name, "_bucket", s->labels, le);
        sb_u64(sb, cum);
        sb_put(sb, "\n", 1);
    }
    sb_sample_head(sb, f->name, "_sum", s->labels, NULL);
    sb_double(sb, sum);
    sb_put(sb, "\n", 1);
    sb_sample_head(sb, f->name, "_count", s->labels, NULL);
    sb_u64(sb, count);
    sb_put(sb, "\n", 1);
}

char *metrics_render(metrics_registry *r)
{
    sbuf sb = {0};
    sb_put(&sb, "", 0); /* an empty registry renders as "" rather than NULL */
    if (!r)
        return sb.p;
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&r->mu);
    for (const family *f = r->head; f; f = f->next) {
        if (*f->help) {
            sb_str(&sb, "# HELP ");
            sb_str(&sb, f->name);
            sb_put(&sb, " ", 1);
            sb_help(&sb, f->help);
            sb_put(&sb, "\n", 1);
        }
        sb_str(&sb, "# TYPE ");
        sb_str(&sb, f->name);
        sb_put(&sb, " ", 1);
        sb_str(&sb, type_names[f->type]);
        sb_put(&sb, "\n", 1);
        for (const series *s = f->head; s; s = s->next) {
            if (f->type == MT_HISTOGRAM) {
                render_histogram(&sb, f, s);
                continue;
            }
            const _Atomic uint64_t *bits =
                f->type == MT_COUNTER ? &s->counter.bits : &s->gauge.bits;
            sb_sample_head(&sb, f->name, "", s->labels, NULL);
            sb_double(&sb, b2d(atomic_load((_Atomic uint64_t *)bits)));
            sb_put(&sb, "\n", 1);
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (sb.oom) {
        free(sb.p);
        return NULL;
    }
    return sb.p;
}
