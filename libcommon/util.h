/* util: the few helpers every libcommon module shares — error buffers, clocks,
 * and small string utilities.
 *
 * Error convention for the whole library: a function that can fail returns 0 on
 * success and -1 on failure, and writes a one-line reason into the caller's
 * `char *err, size_t errlen` buffer (which may be NULL). Nothing in libcommon
 * calls exit(). */
#ifndef PAIMON_UTIL_H
#define PAIMON_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define UTIL_ERRLEN 256

/* Formats into err (if non-NULL) and returns -1, so `return util_err(...)` reads well. */
int util_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int64_t util_now_ms(void);  /* wall clock, ms since the epoch */
int64_t util_mono_ms(void); /* monotonic clock, ms */
int64_t util_mono_us(void);
void util_sleep_ms(int64_t ms);

/* strlcpy semantics: always NUL-terminates, returns strlen(src). */
size_t util_strlcpy(char *dst, const char *src, size_t size);

/* v in decimal into out (room for UTIL_U64_DEC_MAX bytes), NUL-terminated; returns
 * the length. For hot paths where snprintf's format parsing shows in profiles. */
#define UTIL_U64_DEC_MAX 21
size_t util_u64_dec(char *out, uint64_t v);

/* Random bytes from the OS (getrandom); -1 on failure. */
int util_random(void *buf, size_t len);
/* Uniform random in [0, n) from util_random; n > 0. */
uint64_t util_random_below(uint64_t n);

/* malloc/calloc/strdup that never return NULL: out-of-memory aborts, because a
 * daemon that cannot allocate a few bytes cannot keep its promises anyway. */
void *util_malloc(size_t n);
void *util_calloc(size_t n, size_t size);
char *util_strdup(const char *s);

#endif
