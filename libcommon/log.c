/* log: structured JSON lines (see log.h). Nothing here allocates: each line is
 * assembled in a fixed stack buffer so logging works even when memory is short,
 * and is written with one write(2) under a mutex so lines never interleave. */
#include "log.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX_KV 128 /* strings (64 pairs) taken from a variadic call */
/* Room always kept free for `,"truncated":true}\n` so a cut line still closes. */
#define LOG_RESERVE 24

static char g_service[64] = "paimon";
static _Atomic int g_level = LOG_LEVEL_INFO;
static _Atomic int g_fd = 2;
static pthread_mutex_t g_write_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

const char *log_level_name(log_level lvl)
{
    if ((int)lvl < 0 || (int)lvl > LOG_LEVEL_ERROR)
        return "info";
    return level_names[lvl];
}

int log_level_parse(const char *s, log_level *out)
{
    if (!s)
        return -1;
    for (int i = 0; i <= LOG_LEVEL_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return 0;
    }
    return -1;
}

int log_init(const char *service, const char *level, char *err, size_t errlen)
{
    if (service && *service)
        util_strlcpy(g_service, service, sizeof g_service);
    const char *src = level ? level : getenv("PAIMON_LOG_LEVEL");
    log_level lvl = LOG_LEVEL_INFO;
    if (src && *src && log_level_parse(src, &lvl) != 0) {
        atomic_store(&g_level, LOG_LEVEL_INFO);
        return util_err(err, errlen, "log level \"%.32s\" is not debug|info|warn|error", src);
    }
    atomic_store(&g_level, (int)lvl);
    return 0;
}

void log_set_level(log_level lvl)
{
    if ((int)lvl >= LOG_LEVEL_DEBUG && (int)lvl <= LOG_LEVEL_ERROR)
        atomic_store(&g_level, (int)lvl);
}

log_level log_get_level(void)
{
    return (log_level)atomic_load(&g_level);
}

int log_enabled(log_level lvl)
{
    return (int)lvl >= atomic_load(&g_level);
}

int log_set_fd(int fd)
{
    return atomic_exchange(&g_fd, fd);
}

const char *log_fmt_i64(char *buf, size_t len, int64_t v)
{
    snprintf(buf, len, "%" PRId64, v);
    return buf;
}

/* ---- line buffer ---------------------------------------------------------- */

typedef struct lbuf {
    char b[LOG_LINE_MAX];
    size_t len;
    size_t cap; /* usable bytes: LOG_LINE_MAX - LOG_RESERVE */
    int full;   /* something was cut */
} lbuf;

static int put_raw(lbuf *lb, const char *s, size_t n)
{
    if (lb->full || lb->len + n > lb->cap) {
        lb->full = 1;
        return -1;
    }
    memcpy(lb->b + lb->len, s, n);
    lb->len += n;
    return 0;
}

static int put_cstr(lbuf *lb, const char *s)
{
    return put_raw(lb, s, strlen(s));
}

/* Length of a well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 when the first byte starts none. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* Appends s as a JSON string. A string that does not fit is cut at a character
 * boundary and still closed. Returns -1 if not even `""` fit (nothing written). */
static int put_json_str(lbuf *lb, const char *str)
{
    if (lb->full || lb->len + 2 > lb->cap) {
        lb->full = 1;
        return -1;
    }
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    lb->b[lb->len++] = '"';
    size_t i = 0;
    while (i < n) {
        char esc[8];
        const char *rep = esc;
        size_t rlen;
        size_t adv = 1;
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rlen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            const char *short_esc = NULL;
            switch (c) {
            case '\n':
                short_esc = "\\n";
                break;
            case '\r':
                short_esc = "\\r";
                break;
            case '\t':
                short_esc = "\\t";
                break;
            case '\b':
                short_esc = "\\b";
                break;
            case '\f':
                short_esc = "\\f";
                break;
            default:
                break;
            }
            if (short_esc) {
                rep = short_esc;
                rlen = 2;
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                rlen = 6;
            }
        } else if (c < 0x80) {
            rep = (const char *)s + i;
            rlen = 1;
        } else {
            size_t sl = utf8_seq_len(s + i, n - i);
            if (sl == 0) {
                rep = "\\ufffd";
                rlen = 6;
            } else {
                rep = (const char *)s + i;
                rlen = sl;
                adv = sl;
            }
        }
        if (lb->len + rlen + 1 > lb->cap) { /* +1 keeps room for the closing quote */
            lb->full = 1;
            break;
        }
        memcpy(lb->b + lb->len, rep, rlen);
        lb->len += rlen;
        i += adv;
    }
    lb->b[lb->len++] = '"';
    return 0;
}

/* Strict JSON number grammar, so a '#' value can never inject structure. */
static int is_json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return 0;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static int is_reserved_key(const char *k)
{
    static const char *const reserved[] = {"ts",  "level",    "service",
                                           "msg", "trace_id", "truncated"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcmp(k, reserved[i]) == 0)
            return 1;
    return 0;
}

/* One `,"key":value` member, all or nothing (a cut value string is still valid).
 * builtin marks our own members (trace_id), exempt from the x_ renaming. */
static void put_field(lbuf *lb, const char *key, const char *val, int builtin)
{
    if (lb->full)
        return;
    size_t mark = lb->len;
    int numeric = 0;
    if (!key)
        key = "";
    if (key[0] == '#') {
        key++;
        numeric = val && is_json_number(val);
    }
    char kbuf[80];
    if (!builtin && is_reserved_key(key)) {
        snprintf(kbuf, sizeof kbuf, "x_%s", key);
        key = kbuf;
    }
    if (put_raw(lb, ",", 1) != 0)
        goto rollback;
    if (put_json_str(lb, key) != 0 || lb->full) /* a cut key would mislabel the value */
        goto rollback;
    if (put_raw(lb, ":", 1) != 0)
        goto rollback;
    if (!val) {
        if (put_raw(lb, "null", 4) != 0)
            goto rollback;
    } else if (numeric) {
        if (put_cstr(lb, val) != 0)
            goto rollback;
    } else if (put_json_str(lb, val) != 0) {
        goto rollback;
    }
    return;
rollback:
    lb->len = mark;
    lb->full = 1;
}

static void write_all(const char *p, size_t n)
{
    int fd = atomic_load(&g_fd);
    pthread_mutex_lock(&g_write_mu);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break; /* nowhere left to report a failing log sink */
        }
        p += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&g_write_mu);
}

static void emit(log_level lvl, const char *trace_id, const char *msg, const char *const *kv,
                 size_t nkv)
{
    lbuf lb;
    lb.len = 0;
    lb.cap = LOG_LINE_MAX - LOG_RESERVE;
    lb.full = 0;

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char head[96];
    int hn =
        snprintf(head, sizeof head,
                 "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"service\":",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000L, log_level_name(lvl));
    put_raw(&lb, head, (size_t)hn);
    put_json_str(&lb, g_service);
    put_raw(&lb, ",\"msg\":", 7);
    put_json_str(&lb, msg ? msg : "");
    if (trace_id)
        put_field(&lb, "trace_id", trace_id, 1);
    for (size_t i = 0; i < nkv; i += 2)
        put_field(&lb, kv[i], i + 1 < nkv ? kv[i + 1] : NULL, 0);
    /* the reserve is never handed out by put_*, so these always fit */
    if (lb.full) {
        memcpy(lb.b + lb.len, ",\"truncated\":true", 17);
        lb.len += 17;
    }
    lb.b[lb.len++] = '}';
    lb.b[lb.len++] = '\n';
    write_all(lb.b, lb.len);
}

void log_msgv(log_level lvl, const char *trace_id, const char *msg, const char *const *kv,
              size_t nkv)
{
    if (!log_enabled(lvl))
        return;
    emit(lvl, trace_id, msg, kv, kv ? nkv : 0);
}

void log_msg(log_level lvl, const char *trace_id, const char *msg, ...)
{
    if (!log_enabled(lvl))
        return;
    const char *kv[LOG_MAX_KV];
    size_t n = 0;
    va_list ap;
    va_start(ap, msg);
    while (n < LOG_MAX_KV) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        kv[n++] = k;
        kv[n++] = v;
        if (!v)
            break;
    }
    va_end(ap);
    emit(lvl, trace_id, msg, kv, n);
}
