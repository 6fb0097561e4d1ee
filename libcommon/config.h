/* config: typed configuration from environment variables, validated all at once
 * at start-up. A daemon describes its variables in one cfg_var table; cfg_load()
 * checks every entry and, on failure, reports EVERY missing or invalid variable in
 * one message so an operator fixes them in one go (main() then exits non-zero).
 *
 *     static char *db_url; static int port; static int64_t poll_ms;
 *     static const cfg_var vars[] = {
 *         {"PAIMON_DB_URL", CFG_URL, NULL, &db_url, 0, 0, "postgres|postgresql", 1, "database"},
 *         {"PAIMON_HTTP_PORT", CFG_PORT, "8080", &port, 0, 0, NULL, 0, "internal HTTP port"},
 *         {"PAIMON_POLL", CFG_DURATION_MS, "2s", &poll_ms, 100, 60000, NULL, 0, "poll interval"},
 *     };
 *     char err[CFG_ERRLEN];
 *     if (cfg_load(vars, CFG_COUNT(vars), err, sizeof err) != 0) { fputs(err, stderr); exit(2); }
 *     ...
 *     cfg_release(vars, CFG_COUNT(vars));
 *
 * dest types (what `dest` must point to):
 *   CFG_STR          char **     malloc'd copy; required => must be non-empty
 *   CFG_URL          char **     malloc'd copy; scheme must be redis, rediss, postgres,
 *                                postgresql, http, https, ws or wss, or one of `choices`
 *                                ("redis|rediss") when given; a host part is required
 *   CFG_INT          int64_t *   decimal, optional '-', no spaces, no trailing text
 *   CFG_PORT         int *       1..65535
 *   CFG_DURATION_MS  int64_t *   "250ms", "5s", "2m", "1h", "1d" or plain milliseconds
 *   CFG_BOOL         int *       0/1 from true/false/1/0/yes/no/on/off (any case)
 *   CFG_ENUM         int *       index into `choices` ("a|b|c"), matched ignoring case
 *   CFG_LIST         cfg_list *  comma-separated, items trimmed, empty items rejected
 * min/max: an inclusive range, used when either is non-zero: the value for INT, PORT
 * and DURATION_MS (in ms), the length for STR, the item count for LIST.
 * def: the default text (parsed like a value; NULL = required). An empty value is
 * taken as given: fine for a STR with a default, an error for the typed kinds.
 * secret: the value is never echoed (errors, cfg_render print "***").
 *
 * Memory: cfg_load overwrites every dest (after failure none holds memory); the
 * strings and lists it allocates are owned by the caller and freed by cfg_release,
 * which may be called more than once. The table itself and `get` results are borrowed. */
#ifndef PAIMON_CONFIG_H
#define PAIMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CFG_STR,
    CFG_INT,
    CFG_BOOL,
    CFG_PORT,
    CFG_DURATION_MS,
    CFG_URL,
    CFG_ENUM,
    CFG_LIST,
} cfg_type;

typedef struct cfg_var {
    const char *name;
    cfg_type type;
    const char *def; /* NULL = required */
    void *dest;
    int64_t min, max;
    const char *choices; /* "a|b|c": values for ENUM, allowed schemes for URL */
    int secret;
    const char *help;
} cfg_var;

typedef struct cfg_list {
    char **items;
    size_t n;
} cfg_list;

#define CFG_COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* A buffer this size holds the report for a few dozen bad variables. */
#define CFG_ERRLEN 4096

/* Loads from the process environment. 0, or -1 with every problem listed in err
 * ("NAME: why; NAME: why"; cut with "..." if err is too small). */
int cfg_load(const cfg_var *vars, size_t n, char *err, size_t errlen);
/* Same with a lookup function (tests, files); get returns NULL for "not set". */
int cfg_load_from(const cfg_var *vars, size_t n, const char *(*get)(const char *name, void *ud),
                  void *ud, char *err, size_t errlen);
/* Frees what cfg_load allocated and NULLs those dests. */
void cfg_release(const cfg_var *vars, size_t n);

/* The effective configuration, one "NAME=value" line per variable, secrets as
 * "***" and passwords inside URLs masked. Call after a successful load; caller frees. */
char *cfg_render(const cfg_var *vars, size_t n);
/* A usage text: one line per variable with type, default or "required", and help.
 * Caller frees. */
char *cfg_usage(const cfg_var *vars, size_t n);

/* The value parsers, exposed for modules that read typed values elsewhere. */
/* Reads the string at a dotted path ("contracts.vault") of a JSON file (at most 1 MiB),
 * e.g. the devchain's address book. 0 / -1 with a reason. */
int cfg_json_string(const char *path, const char *dotted, char *out, size_t len, char *err,
                    size_t errlen);

/* A contract address from configuration: `explicit_addr` when set, else the string at
 * `dotted` ("contracts.vault") of the devchain address book at `devchain_json`. Written
 * as 0x-prefixed lowercase hex into out (at least 43 bytes). 0 / -1 with a reason naming
 * where it looked. */
int cfg_address(const char *explicit_addr, const char *devchain_json, const char *dotted, char *out,
                size_t len, char *err, size_t errlen);

int cfg_parse_int(const char *s, int64_t *out, char *err, size_t errlen);
int cfg_parse_duration_ms(const char *s, int64_t *out, char *err, size_t errlen);
int cfg_parse_bool(const char *s, int *out, char *err, size_t errlen);

#endif
