/* log: structured JSON log lines, one object per line, on stderr (or any fd):
 *   {"ts":"2026-11-23T10:00:00.123Z","level":"info","service":"bus","msg":"...",
 *    "trace_id":"...","key":"value",...}
 *
 * Thread safety: every call may come from any thread. Each line is built in a
 * stack buffer and written with a single write(2), so lines from different
 * threads never interleave. log_init() should run once at start-up before threads.
 *
 * Memory: nothing is retained; every string argument is borrowed for the call only.
 * Every byte of caller text is JSON-escaped (control characters as \u00XX, invalid
 * UTF-8 bytes as \ufffd), so hostile input cannot break or forge a line. Lines longer
 * than LOG_LINE_MAX are cut at a character boundary and get "truncated":true. */
#ifndef PAIMON_LOG_H
#define PAIMON_LOG_H

#include <stddef.h>
#include <stdint.h>

/* Not LOG_DEBUG/LOG_INFO: <syslog.h> defines those as macros. */
typedef enum {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
} log_level;

#define LOG_LINE_MAX 8192

/* Sets the service name (copied, at most 63 bytes) and the threshold. level is
 * "debug"|"info"|"warn"|"error"; NULL means env PAIMON_LOG_LEVEL, else "info".
 * An unknown level leaves the threshold at info and returns -1 (err filled). */
int log_init(const char *service, const char *level, char *err, size_t errlen);
void log_set_level(log_level lvl);
log_level log_get_level(void);
int log_enabled(log_level lvl); /* 1 when lvl passes the threshold */
/* Parses a level name (case-insensitive, "warning" accepted); 0 / -1. */
int log_level_parse(const char *s, log_level *out);
const char *log_level_name(log_level lvl);
/* Redirects output (tests, files); returns the previous fd. Default 2 (stderr).
 * The fd is borrowed: log never closes it. */
int log_set_fd(int fd);

/* Logs msg with NULL-terminated key/value string pairs:
 *   log_msg(LOG_LEVEL_INFO, trace_id, "claimed", "stream", s, "#count", n_str, NULL);
 * trace_id may be NULL (then omitted). A NULL value is written as JSON null; in the
 * variadic form it also ends the list (it cannot be told apart from the terminator),
 * so put possibly-NULL values last or use log_msgv.
 * A key starting with '#' is written without the '#' and its value as a JSON number
 * when it is one (else as a string), e.g. "#count","42" -> "count":42.
 * Keys that clash with ts/level/service/msg/trace_id are written with an "x_" prefix. */
void log_msg(log_level lvl, const char *trace_id, const char *msg, ...);
void log_msgv(log_level lvl, const char *trace_id, const char *msg, const char *const *kv,
              size_t nkv); /* kv has nkv strings (pairs), no NULL terminator needed */

/* Formats an integer into a caller buffer for use as a value; returns buf. */
const char *log_fmt_i64(char *buf, size_t len, int64_t v);
/* A temporary decimal string valid until the end of the enclosing full statement:
 *   log_info("batch done", "#count", LOG_I64(n)); */
#define LOG_I64(v) log_fmt_i64((char[24]){0}, 24, (int64_t)(v))

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__, (const char *)NULL)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, NULL, __VA_ARGS__, (const char *)NULL)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, NULL, __VA_ARGS__, (const char *)NULL)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, NULL, __VA_ARGS__, (const char *)NULL)
/* Same with a trace / request id first. */
#define log_debug_t(tid, ...) log_msg(LOG_LEVEL_DEBUG, (tid), __VA_ARGS__, (const char *)NULL)
#define log_info_t(tid, ...)  log_msg(LOG_LEVEL_INFO, (tid), __VA_ARGS__, (const char *)NULL)
#define log_warn_t(tid, ...)  log_msg(LOG_LEVEL_WARN, (tid), __VA_ARGS__, (const char *)NULL)
#define log_error_t(tid, ...) log_msg(LOG_LEVEL_ERROR, (tid), __VA_ARGS__, (const char *)NULL)

#endif
