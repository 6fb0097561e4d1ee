/* match: label matchers and the Alertmanager-style routing tree, over plain structs.
 *
 * A matcher is {"name": label, "op": "=" | "!=" | "=~" | "!~", "value": text}; regular
 * expressions are POSIX ERE anchored at both ends (as Alertmanager anchors its RE2). A
 * label that is absent reads as "", so {"name":"team","op":"=","value":""} matches alerts
 * without a team. A set matches when every matcher does (the empty set matches all).
 *
 * Labels an alert is matched on: its own labels plus the synthetic severity, category,
 * source, dedup_key and alertname (= title), which win over same-named user labels.
 *
 * Routing (match_route_find): the implicit root matches everything and has no channels. Its
 * children (nodes whose parent_id is NULL) are tried in array order; a matching node is
 * descended into; the walk over siblings stops at the first match unless that node has
 * cont set. A node whose children all fail is itself the result. The caller sorts nodes by
 * (position, id) so "array order" is the configured order.
 *
 * Memory: match_set / match_route_tree own what they hold (free with their _free); labels
 * are borrowed views. */
#ifndef PAIMON_NOTIFIER_MATCH_H
#define PAIMON_NOTIFIER_MATCH_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define MATCH_MAX_MATCHERS 32
#define MATCH_MAX_DEPTH    16
#define MATCH_VALUE_MAX    512

typedef enum { MATCH_EQ, MATCH_NE, MATCH_RE, MATCH_NRE } match_op;

typedef struct match_matcher {
    char *name;
    match_op op;
    char *value;
    regex_t re;
    int has_re;
} match_matcher;

typedef struct match_set {
    match_matcher *m;
    size_t n;
} match_set;

/* A borrowed view of an alert's labels: n (key, value) pairs. */
typedef struct match_labels {
    const char *const *keys;
    const char *const *vals;
    size_t n;
} match_labels;

/* Parses and validates a JSON array of matchers (untrusted: names [A-Za-z_][A-Za-z0-9_]*,
 * values up to MATCH_VALUE_MAX bytes, regexes must compile). */
int match_set_from_json(const cJSON *arr, match_set *out, char *err, size_t errlen);
void match_set_free(match_set *s);
int match_set_matches(const match_set *s, const match_labels *l);
/* The value of key, or "" when absent (the last pair wins, so synthetic labels appended
 * after the user's take precedence). */
const char *match_labels_get(const match_labels *l, const char *key);
int match_op_parse(const char *s, match_op *out);
const char *match_op_name(match_op op);

typedef struct match_route {
    char *id;
    char *parent_id; /* NULL: child of the root */
    match_set matchers;
    char **channels;
    size_t nchannels;
    int cont;
    char **group_by; /* label names; "..." = every label */
    size_t ngroup_by;
    int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
    int send_resolved;
} match_route;

typedef struct match_route_tree {
    match_route *r;
    size_t n;
} match_route_tree;

/* Frees what one route holds (not r itself) and zeroes it. */
void match_route_clear(match_route *r);
void match_route_tree_free(match_route_tree *t);

/* Fills out[] with indices into t->r of the matched routes (at most max); returns how many
 * (0 = only the root matched: log only). Depth beyond MATCH_MAX_DEPTH is ignored, so a
 * parent cycle cannot loop. */
size_t match_route_find(const match_route_tree *t, const match_labels *l, size_t *out, size_t max);

/* The aggregation group key of an alert in route r: "<route id>|k=v|k=v" over group_by in
 * its order (values escaped so '|' and '=' cannot forge another key). Caller frees. */
char *match_group_key_new(const match_route *r, const match_labels *l);

#define MATCH_MAX_LABELS 72 /* user labels kept for matching (64) + synthetic ones */

/* Builds the label view of an alert in keys/vals (capacity MATCH_MAX_LABELS): the string
 * members of labels (at most 64, may be NULL), then severity, category, source, dedup_key
 * and alertname. Strings stay borrowed from the arguments. Returns the count. */
size_t match_labels_fill(const cJSON *labels, const char *severity, const char *category,
                         const char *source, const char *dedup_key, const char *title,
                         const char **keys, const char **vals);
#endif
