/* retry: classification of attempt outcomes and the backoff schedule (see retry.h). */
#include "retry.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *retry_class_name(retry_class c)
{
    static const char *const n[] = {"sent", "retry", "rate_limited", "dead"};
    return (unsigned)c < 4 ? n[c] : "?";
}

retry_class retry_classify_http(int transport_ok, long status)
{
    if (!transport_ok)
        return RETRY_AGAIN;
    if (status >= 200 && status < 300)
        return RETRY_SENT;
    if (status == 429)
        return RETRY_PAUSE;
    if (status >= 500 || status == 408 || status == 425)
        return RETRY_AGAIN;
    return RETRY_PERMANENT;
}

retry_class retry_classify_smtp(long code)
{
    if (code >= 200 && code < 300)
        return RETRY_SENT;
    if (code >= 500 && code < 600)
        return RETRY_PERMANENT;
    return RETRY_AGAIN;
}

int64_t retry_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint32_t rnd)
{
    if (attempt < 1)
        attempt = 1;
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    int64_t half = d / 2;
    return half + (int64_t)(((uint64_t)(d - half) * rnd) >> 32);
}

int64_t retry_after_header_ms(const char *v, int64_t now_ms)
{
    if (!v)
        return -1;
    while (*v == ' ')
        v++;
    if (*v >= '0' && *v <= '9') {
        char *end = NULL;
        long long s = strtoll(v, &end, 10);
        while (end && *end == ' ')
            end++;
        if (!end || *end || s < 0 || s > 86400)
            return -1;
        return s * 1000;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    int64_t at = (int64_t)timegm(&tm) * 1000;
    return at > now_ms ? at - now_ms : 0;
}
