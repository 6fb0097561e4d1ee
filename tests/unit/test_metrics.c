/* Unit tests for libcommon/metrics: the rendered text is parsed back line by line
 * (headers, grouping, sample values), histogram buckets are checked against sums
 * computed here, and threads update while another thread renders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <cmocka.h>

#include "metrics.h"

/* ---- a small exposition-format reader ------------------------------------ */

typedef struct sample {
    char series[512]; /* name{labels} exactly as rendered */
    char name[128];
    char value[64];
} sample;

typedef struct parsed {
    sample s[512];
    size_t ns;
    char families[64][128]; /* in TYPE order */
    char types[64][16];
    size_t nf;
} parsed;

static const char *family_of(const parsed *p, const char *sample_name)
{
    for (size_t i = 0; i < p->nf; i++) {
        size_t fl = strlen(p->families[i]);
        if (strcmp(sample_name, p->families[i]) == 0)
            return p->families[i];
        if (strcmp(p->types[i], "histogram") == 0 &&
            strncmp(sample_name, p->families[i], fl) == 0 &&
            (strcmp(sample_name + fl, "_bucket") == 0 || strcmp(sample_name + fl, "_sum") == 0 ||
             strcmp(sample_name + fl, "_count") == 0))
            return p->families[i];
    }
    return NULL;
}

/* Parses and checks the structure: every sample follows its family's TYPE, families
 * are contiguous and appear once, HELP precedes TYPE, every line ends with '\n'. */
static void parse_render(const char *text, parsed *p)
{
    memset(p, 0, sizeof *p);
    assert_true(text[0] == '\0' || text[strlen(text) - 1] == '\n');
    const char *cur_family = NULL;
    char help_for[128] = "";
    const char *line = text;
    while (*line) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        char buf[1024];
        size_t len = (size_t)(nl - line);
        assert_true(len < sizeof buf);
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = nl + 1;
        if (strncmp(buf, "# HELP ", 7) == 0) {
            const char *sp = strchr(buf + 7, ' ');
            assert_non_null(sp);
            snprintf(help_for, sizeof help_for, "%.*s", (int)(sp - buf - 7), buf + 7);
            continue;
        }
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            char name[128], type[16];
            assert_int_equal(sscanf(buf + 7, "%127s %15s", name, type), 2);
            assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                        strcmp(type, "histogram") == 0);
            if (help_for[0])
                assert_string_equal(help_for, name);
            help_for[0] = '\0';
            for (size_t i = 0; i < p->nf; i++)
                if (strcmp(p->families[i], name) == 0)
                    fail_msg("family %s has two TYPE lines", name);
            assert_true(p->nf < 64);
            strcpy(p->families[p->nf], name);
            strcpy(p->types[p->nf], type);
            cur_family = p->families[p->nf++];
            continue;
        }
        assert_true(buf[0] != '#');
        const char *sp = strrchr(buf, ' ');
        assert_non_null(sp);
        assert_true(p->ns < 512);
        sample *s = &p->s[p->ns++];
        size_t slen = (size_t)(sp - buf);
        assert_true(slen < sizeof s->series);
        memcpy(s->series, buf, slen);
        s->series[slen] = '\0';
        assert_true(strlen(sp + 1) < sizeof s->value);
        strcpy(s->value, sp + 1);
        size_t nl2 = strcspn(buf, "{ ");
        assert_true(nl2 < sizeof s->name);
        memcpy(s->name, buf, nl2);
        s->name[nl2] = '\0';
        const char *fam = family_of(p, s->name);
        assert_non_null(fam);
        assert_ptr_equal(fam, cur_family); /* grouped under the latest TYPE */
        /* the value parses fully as a float */
        char *end;
        strtod(s->value, &end);
        assert_true(*end == '\0' && end != s->value);
    }
}

static const char *value_of(const parsed *p, const char *series)
{
    for (size_t i = 0; i < p->ns; i++)
        if (strcmp(p->s[i].series, series) == 0)
            return p->s[i].value;
    return NULL;
}

static double num_of(const parsed *p, const char *series)
{
    const char *v = value_of(p, series);
    if (!v)
        fail_msg("series %s missing", series);
    return strtod(v, NULL);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_counter_gauge_render(void **state)
{
    (void)state;
    metrics_registry *r = metrics_new();
    metrics_counter *c = metrics_counter_get(r, "jobs_total", "Jobs done.", NULL);
    assert_non_null(c);
    metrics_counter_inc(c);
    metrics_counter_add(c, 2.5);
    metrics_counter_add(c, -4);  /* ignored: counters never go down */
    metrics_counter_add(c, NAN); /* ignored */
    assert_true(metrics_counter_value(c) == 3.5);

    metrics_gauge *g = metrics_gauge_get(r, "queue_depth", "Depth\\of\nqueue", "q=\"a\"");
    assert_non_null(g);
    metrics_gauge_set(g, 10);
    metrics_gauge_add(g, -10.9);
    metrics_gauge *g2 = metrics_gauge_get(r, "temp", NULL, NULL);
    metrics_gauge_set(g2, 0.1);

    char *text = metrics_render(r);
    assert_non_null(text);
    assert_non_null(strstr(text, "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\n"
                                 "jobs_total 3.5\n"));
    assert_non_null(strstr(text, "# HELP queue_depth Depth\\\\of\\nqueue\n"));
    assert_null(strstr(text, "# HELP temp")); /* no help, no HELP line */
    parsed *p = malloc(sizeof *p);
    parse_render(text, p);
    assert_int_equal(p->nf, 3);
    assert_string_equal(p->types[1], "gauge");
    assert_true(fabs(num_of(p, "queue_depth{q=\"a\"}") - (-0.9)) < 1e-9);
    assert_string_equal(value_of(p, "temp"), "0.1"); /* shortest round-trip form */
    free(p);
    free(text);
    metrics_free(r);
}

static void test_identity_and_grouping(void **state)
{
    (void)state;
    metrics_registry *r = metrics_new();
    metrics_counter *a1 =
        metrics_counter_get(r, "req_total", "Requests", "route=\"/a\",code=\"200\"");
    metrics_counter *b = metrics_counter_get(r, "other_total", "Other", NULL);
    /* same label set in another order and spacing: same handle */
    metrics_counter *a1b =
        metrics_counter_get(r, "req_total", "ignored help", " code = \"200\" , route=\"/a\",");
    metrics_counter *a2 = metrics_counter_get(r, "req_total", NULL, "route=\"/a\",code=\"500\"");
    metrics_counter *a3 = metrics_counter_get(r, "req_total", NULL, "route=\"x\\\"y\\\\z\\n\"");
    assert_non_null(a1);
    assert_ptr_equal(a1, a1b);
    assert_true(a1 != a2 && a2 != a3 && a1 != a3);
    metrics_counter_add(a1, 2);
    metrics_counter_inc(a1b);
    metrics_counter_inc(a2);
    metrics_counter_inc(b);
    metrics_counter_add(a3, 7);

    char *text = metrics_render(r);
    parsed *p = malloc(sizeof *p);
    parse_render(text, p); /* asserts req_total samples are contiguous */
    assert_int_equal(p->nf, 2);
    assert_string_equal(p->families[0], "req_total");
    assert_int_equal(p->ns, 4);
    assert_true(num_of(p, "req_total{code=\"200\",route=\"/a\"}") == 3);
    assert_true(num_of(p, "req_total{code=\"500\",route=\"/a\"}") == 1);
    assert_true(num_of(p, "req_total{route=\"x\\\"y\\\\z\\n\"}") == 7);
    assert_true(num_of(p, "other_total") == 1);
    assert_non_null(strstr(text, "# HELP req_total Requests\n"));
    free(p);
    free(text);
    metrics_free(r);
}

static void test_invalid_input(void **state)
{
    (void)state;
    metrics_registry *r = metrics_new();
    const char *bad_names[] = {"", "1abc", "a-b", "a b", "é", "a{b}"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        assert_null(metrics_counter_get(r, bad_names[i], NULL, NULL));
    assert_null(metrics_counter_get(r, NULL, NULL, NULL));
    assert_null(metrics_counter_get(NULL, "ok", NULL, NULL));
    assert_non_null(metrics_counter_get(r, "ns:sub_total9", NULL, NULL));

    const char *bad_labels[] = {
        "a=x",      "a=\"x",      "a=\"x\"b=\"y\"", "__a=\"x\"",  "a=\"x\",a=\"y\"",  "a=\"\\q\"",
        "1a=\"x\"", "a=\"x\ny\"", "=\"x\"",         "a=\"\xff\"", "a=\"x\",,b=\"y\"", "a-b=\"x\"",
        "a=\"x\"}", "a=\"x\\\"",
    };
    for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++)
        if (metrics_counter_get(r, "lbl_total", NULL, bad_labels[i]))
            fail_msg("accepted labels: %s", bad_labels[i]);
    assert_non_null(metrics_counter_get(r, "lbl_total", NULL, "a=\"caf\xc3\xa9\",b=\"\""));

    /* one type per name */
    assert_non_null(metrics_gauge_get(r, "mixed", NULL, NULL));
    assert_null(metrics_counter_get(r, "mixed", NULL, "x=\"1\""));
    assert_null(metrics_histogram_get(r, "mixed", NULL, NULL, NULL, 0));

    /* histogram-specific */
    double dup[] = {1, 1, 2};
    double dec[] = {2, 1};
    double nan_b[] = {1, NAN};
    double ok[] = {1, 2, INFINITY};
    assert_null(metrics_histogram_get(r, "h", NULL, "le=\"1\"", NULL, 0));
    assert_null(metrics_histogram_get(r, "h", NULL, NULL, dup, 3));
    assert_null(metrics_histogram_get(r, "h", NULL, NULL, dec, 2));
    assert_null(metrics_histogram_get(r, "h", NULL, NULL, nan_b, 2));
    assert_null(metrics_histogram_get(r, "h", NULL, NULL, ok, 0));
    double many[METRICS_MAX_BUCKETS + 1];
    for (int i = 0; i <= METRICS_MAX_BUCKETS; i++)
        many[i] = i;
    assert_null(metrics_histogram_get(r, "h", NULL, NULL, many, METRICS_MAX_BUCKETS + 1));
    metrics_histogram *h = metrics_histogram_get(r, "h", NULL, NULL, ok, 3);
    assert_non_null(h);
    assert_ptr_equal(metrics_histogram_get(r, "h", NULL, NULL, ok, 2), h); /* +Inf implicit */
    assert_null(metrics_histogram_get(r, "h", NULL, "a=\"1\"", dec, 1));   /* other buckets */
    assert_non_null(metrics_histogram_get(r, "h", NULL, "a=\"1\"", ok, 2));

    /* NULL handles are harmless */
    metrics_counter_inc(NULL);
    metrics_gauge_set(NULL, 1);
    metrics_histogram_observe(NULL, 1);
    metrics_free(r);
    metrics_free(NULL);
}

static void test_histogram_math(void **state)
{
    (void)state;
    metrics_registry *r = metrics_new();
    double b[] = {1, 2, 5};
    metrics_histogram *h = metrics_histogram_get(r, "lat_seconds", "Latency", "op=\"x\"", b, 3);
    assert_non_null(h);
    double obs[] = {-1, 0.5, 1, 1.5, 2, 3, 10, 1e300};
    double sum = 0;
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++) {
        metrics_histogram_observe(h, obs[i]);
        sum += obs[i];
    }
    metrics_histogram_observe(h, NAN); /* ignored */
    uint64_t count;
    double got_sum;
    metrics_histogram_stats(h, &count, &got_sum);
    assert_int_equal(count, 8);
    assert_true(got_sum == sum);

    char *text = metrics_render(r);
    parsed *p = malloc(sizeof *p);
    parse_render(text, p);
    assert_string_equal(p->types[0], "histogram");
    /* le is inclusive: 1 falls in le="1", 2 in le="2" */
    assert_true(num_of(p, "lat_seconds_bucket{op=\"x\",le=\"1\"}") == 3);
    assert_true(num_of(p, "lat_seconds_bucket{op=\"x\",le=\"2\"}") == 5);
    assert_true(num_of(p, "lat_seconds_bucket{op=\"x\",le=\"5\"}") == 6);
    assert_true(num_of(p, "lat_seconds_bucket{op=\"x\",le=\"+Inf\"}") == 8);
    assert_true(num_of(p, "lat_seconds_count{op=\"x\"}") == 8);
    assert_true(num_of(p, "lat_seconds_sum{op=\"x\"}") == sum);
    assert_int_equal(p->ns, 4 + 2);
    /* order: buckets ascending, +Inf last, then _sum, _count */
    assert_non_null(strstr(text, "le=\"5\"} 6\nlat_seconds_bucket{op=\"x\",le=\"+Inf\"} 8\n"
                                 "lat_seconds_sum{op=\"x\"} "));
    free(text);

    /* default buckets: 11 bounds + Inf, no labels */
    metrics_histogram *d = metrics_histogram_get(r, "d_seconds", NULL, NULL, NULL, 0);
    assert_non_null(d);
    metrics_histogram_observe(d, 0.007);
    metrics_histogram_observe(d, 0.3);
    text = metrics_render(r);
    parse_render(text, p);
    assert_int_equal(p->ns, 6 + 12 + 2);
    assert_true(num_of(p, "d_seconds_bucket{le=\"0.005\"}") == 0);
    assert_true(num_of(p, "d_seconds_bucket{le=\"0.01\"}") == 1);
    assert_true(num_of(p, "d_seconds_bucket{le=\"0.25\"}") == 1);
    assert_true(num_of(p, "d_seconds_bucket{le=\"0.5\"}") == 2);
    assert_true(num_of(p, "d_seconds_bucket{le=\"10\"}") == 2);
    assert_true(num_of(p, "d_seconds_bucket{le=\"+Inf\"}") == 2);
    assert_true(fabs(num_of(p, "d_seconds_sum") - 0.307) < 1e-12);
    free(p);
    free(text);
    metrics_free(r);
}

/* Randomised cross-check of cumulative buckets against a brute-force count. */
static void test_histogram_random(void **state)
{
    (void)state;
    metrics_registry *r = metrics_new();
    double b[] = {0.1, 0.2, 0.4, 0.8, 1.6, 3.2};
    metrics_histogram *h = metrics_histogram_get(r, "rnd", NULL, NULL, b, 6);
    double obs[2000];
    unsigned seed = 12345;
    for (int i = 0; i < 2000; i++) {
        seed = seed * 1103515245u + 12345u;
        obs[i] = (double)(seed % 4000) / 1000.0; /* 0 .. 3.999, hits bounds exactly too */
        metrics_histogram_observe(h, obs[i]);
    }
    char *text = metrics_render(r);
    parsed *p = malloc(sizeof *p);
    parse_render(text, p);
    for (int k = 0; k < 6; k++) {
        int expect = 0;
        for (int i = 0; i < 2000; i++)
            expect += obs[i] <= b[k];
        char series[64];
        snprintf(series, sizeof series, "rnd_bucket{le=\"%g\"}", b[k]);
        assert_int_equal((int)num_of(p, series), expect);
    }
    assert_int_equal((int)num_of(p, "rnd_bucket{le=\"+Inf\"}"), 2000);
    free(p);
    free(text);
    metrics_free(r);
}

static void test_label_escape(void **state)
{
    (void)state;
    char v[64], labels[128];
    assert_int_equal(metrics_label_escape(v, sizeof v, "a\"b\\c\nd\re\xff\xc3\xa9"), 0);
    assert_string_equal(v, "a\\\"b\\\\c\\nd?e?\xc3\xa9");
    /* whatever the input, the escaped value is accepted as a label */
    metrics_registry *r = metrics_new();
    const char *hostile[] = {"\"}", "\\", "x\",y=\"z", "\n\n", "\x01\x7f", "\xed\xa0\x80", ""};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        assert_int_equal(metrics_label_escape(v, sizeof v, hostile[i]), 0);
        snprintf(labels, sizeof labels, "topic=\"%s\"", v);
        metrics_counter *c = metrics_counter_get(r, "esc_total", NULL, labels);
        if (!c)
            fail_msg("escaped label rejected: %s", labels);
        metrics_counter_inc(c);
    }
    char *text = metrics_render(r);
    parsed *p = malloc(sizeof *p);
    parse_render(text, p);
    assert_int_equal(p->ns, sizeof hostile / sizeof hostile[0]);
    assert_true(num_of(p, "esc_total{topic=\"x\\\",y=\\\"z\"}") == 1);
    free(p);
    free(text);
    metrics_free(r);
    /* too small: -1, NUL-terminated, never a split escape or character */
    char small[4];
    assert_int_equal(metrics_label_escape(small, sizeof small, "ab\"c"), -1);
    assert_string_equal(small, "ab");
    assert_int_equal(metrics_label_escape(small, sizeof small, "\xc3\xa9\xc3\xa9"), -1);
    assert_string_equal(small, "\xc3\xa9");
    assert_int_equal(metrics_label_escape(small, 0, "x"), -1);
}

static void test_global(void **state)
{
    (void)state;
    metrics_registry *g = metrics_global();
    assert_non_null(g);
    assert_ptr_equal(g, metrics_global());
    metrics_counter *c = metrics_counter_get(g, "global_test_total", NULL, NULL);
    metrics_counter_inc(c);
    assert_ptr_equal(c, metrics_counter_get(metrics_global(), "global_test_total", NULL, NULL));
    char *t = metrics_render(NULL);
    assert_string_equal(t, "");
    free(t);
    metrics_registry *empty = metrics_new();
    t = metrics_render(empty);
    assert_string_equal(t, "");
    free(t);
    metrics_free(empty);
}

#define NTHREADS 8
#define ITER     50000

typedef struct shared {
    metrics_registry *r;
    atomic_int stop;
    int renders;
    int bad;
} shared;

static void *updater(void *arg)
{
    shared *sh = arg;
    /* each thread looks its handles up itself, racing on creation */
    metrics_counter *c = metrics_counter_get(sh->r, "conc_total", NULL, "k=\"v\"");
    metrics_gauge *g = metrics_gauge_get(sh->r, "conc_gauge", NULL, NULL);
    double b[] = {0.5};
    metrics_histogram *h = metrics_histogram_get(sh->r, "conc_hist", NULL, NULL, b, 1);
    for (int i = 0; i < ITER; i++) {
        metrics_counter_inc(c);
        metrics_gauge_add(g, (i & 1) ? -1 : 1);
        metrics_histogram_observe(h, (i & 1) ? 1.0 : 0.25);
    }
    return NULL;
}

/* Runs outside the cmocka test thread, so it records problems instead of asserting. */
static long long series_value(const char *text, const char *series)
{
    const char *s = strstr(text, series);
    return s ? strtoll(s + strlen(series), NULL, 10) : -1;
}

static void *renderer(void *arg)
{
    shared *sh = arg;
    while (!atomic_load(&sh->stop)) {
        char *t = metrics_render(sh->r);
        if (!t) {
            sh->bad++;
            break;
        }
        long long inf = series_value(t, "conc_hist_bucket{le=\"+Inf\"} ");
        long long cnt = series_value(t, "conc_hist_count ");
        long long low = series_value(t, "conc_hist_bucket{le=\"0.5\"} ");
        if (inf != cnt || low > inf)
            sh->bad++;
        free(t);
        sh->renders++;
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    (void)state;
    shared sh = {.r = metrics_new()};
    pthread_t rt, th[NTHREADS];
    assert_int_equal(pthread_create(&rt, NULL, renderer, &sh), 0);
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, updater, &sh), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&sh.stop, 1);
    pthread_join(rt, NULL);
    assert_true(sh.renders > 0);
    assert_int_equal(sh.bad, 0);

    char *t = metrics_render(sh.r);
    parsed *p = malloc(sizeof *p);
    parse_render(t, p);
    assert_int_equal(p->nf, 3);
    assert_string_equal(value_of(p, "conc_total{k=\"v\"}"), "400000");
    assert_string_equal(value_of(p, "conc_gauge"), "0");
    assert_string_equal(value_of(p, "conc_hist_bucket{le=\"0.5\"}"), "200000");
    assert_string_equal(value_of(p, "conc_hist_count"), "400000");
    assert_string_equal(value_of(p, "conc_hist_sum"), "250000");
    free(p);
    free(t);
    metrics_free(sh.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge_render),
        cmocka_unit_test(test_identity_and_grouping),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_histogram_math),
        cmocka_unit_test(test_histogram_random),
        cmocka_unit_test(test_label_escape),
        cmocka_unit_test(test_global),
        cmocka_unit_test(test_concurrency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
