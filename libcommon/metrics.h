/* metrics: counters, gauges and histograms rendered in the Prometheus text
 * exposition format 0.0.4 (what GET /metrics serves).
 *
 * Thread safety: every function may be called from any thread. Consumer threads
 * update handles while the HTTP thread renders; updates are lock-free for
 * counters and gauges and take a short per-histogram lock for histograms.
 *
 * Memory: the registry owns every handle it returns; handles stay valid until
 * metrics_free() of their registry (the global registry is never freed), so
 * callers may cache them in statics. metrics_render() returns a malloc'd string
 * the caller frees with free(). Values are doubles: metrics are observability,
 * never money. */
#ifndef PAIMON_METRICS_H
#define PAIMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metrics_registry metrics_registry;
typedef struct metrics_counter metrics_counter;
typedef struct metrics_gauge metrics_gauge;
typedef struct metrics_histogram metrics_histogram;

/* Most buckets a histogram may have (not counting the implicit +Inf). */
#define METRICS_MAX_BUCKETS 64

metrics_registry *metrics_new(void);
void metrics_free(metrics_registry *r); /* NULL is fine */
/* Process-wide registry, created on first use (thread-safe), never freed. */
metrics_registry *metrics_global(void);

/* name: [a-zA-Z_:][a-zA-Z0-9_:]*. help: free text (escaped on render), may be NULL;
 * the first registration of a name fixes its help and type.
 * labels: Prometheus label pairs without braces, e.g. "topic=\"alerts\",group=\"notifier\"",
 * or NULL / "" for none. Label names are [a-zA-Z_][a-zA-Z0-9_]* and may not start
 * with "__"; values use the exposition escapes \\ \" \n. Label order does not matter:
 * the same (name, label set) returns the same handle.
 * Returns NULL on invalid input or when the name is already registered with another
 * type (or, for histograms, other buckets). */
metrics_counter *metrics_counter_get(metrics_registry *r, const char *name, const char *help,
                                     const char *labels);
void metrics_counter_inc(metrics_counter *c);           /* NULL handle is a no-op */
void metrics_counter_add(metrics_counter *c, double v); /* v >= 0; negative/NaN ignored */
double metrics_counter_value(const metrics_counter *c);

metrics_gauge *metrics_gauge_get(metrics_registry *r, const char *name, const char *help,
                                 const char *labels);
void metrics_gauge_set(metrics_gauge *g, double v);
void metrics_gauge_add(metrics_gauge *g, double v); /* v may be negative */
double metrics_gauge_value(const metrics_gauge *g);

/* buckets: strictly increasing finite upper bounds (a trailing +Inf is accepted and
 * ignored: it is always implicit); NULL = default latency buckets in seconds
 * (0.005 .. 10, as the Prometheus clients use). The label "le" is reserved. */
metrics_histogram *metrics_histogram_get(metrics_registry *r, const char *name, const char *help,
                                         const char *labels, const double *buckets,
                                         size_t nbuckets);
void metrics_histogram_observe(metrics_histogram *h, double v); /* NaN ignored */
/* Snapshot for tests and health checks; any out-pointer may be NULL. */
void metrics_histogram_stats(const metrics_histogram *h, uint64_t *count, double *sum);

/* Escapes an arbitrary string for use inside a label value's quotes (\\ \" \n;
 * other control bytes and bytes that are not valid UTF-8 become '?'), so callers can build labels
 * from untrusted text such as topic names. 0, or -1 when dst is too small (dst then holds a
 * NUL-terminated prefix cut on a character boundary). */
int metrics_label_escape(char *dst, size_t dstlen, const char *value);

/* Text format 0.0.4: one HELP/TYPE header per family, families and series in
 * registration order, histograms as cumulative _bucket{le=...} lines ending with
 * le="+Inf", then _sum and _count. Caller frees with free(). */
char *metrics_render(metrics_registry *r);

/* Content-Type the /metrics endpoint must send. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
