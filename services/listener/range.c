/* range: adaptive eth_getLogs block ranges (see range.h). */
#include "range.h"

#include <string.h>
#include <strings.h>

#include "rpc.h"
#include "util.h"

int range_init(range_ctl *r, uint64_t initial, uint64_t min, uint64_t max, size_t target_logs,
               char *err, size_t errlen)
{
    if (min == 0 || min > max || initial < min || initial > max || target_logs == 0)
        return util_err(err, errlen, "range: need 1 <= min <= initial <= max and target > 0");
    *r = (range_ctl){.span = initial, .min = min, .max = max, .target_logs = target_logs};
    return 0;
}

int range_next(const range_ctl *r, uint64_t next, uint64_t safe_head, uint64_t *to)
{
    if (next > safe_head)
        return 0;
    uint64_t room = safe_head - next; /* blocks after `next` we may add */
    *to = next + (r->span - 1 < room ? r->span - 1 : room);
    return 1;
}

void range_on_success(range_ctl *r, uint64_t span, size_t nlogs)
{
    if (nlogs > r->target_logs) {
        /* Scale down towards the target so the next answer fits; never below min. */
        uint64_t want = (uint64_t)((double)span * (double)r->target_logs / (double)nlogs);
        if (want < r->min)
            want = r->min;
        if (want < r->span) {
            r->span = want;
            r->shrinks++;
        }
    } else if (nlogs < r->target_logs / 2 && span >= r->span && r->span < r->max) {
        /* Only grow after a request that used the full span: a short tail range at the
         * head says nothing about density. */
        r->span = r->span * 2 > r->max ? r->max : r->span * 2;
        r->grows++;
    }
}

int range_on_failure(range_ctl *r, uint64_t span, int oversize)
{
    uint64_t base = span < r->span ? span : r->span;
    if (base <= r->min) {
        r->span = r->min;
        return 0;
    }
    uint64_t want = base / (oversize ? 8 : 2);
    r->span = want < r->min ? r->min : want;
    r->shrinks++;
    return 1;
}

static int has(const char *s, const char *needle)
{
    return s && strcasestr(s, needle) != NULL;
}

int range_error_shrinks(int is_rpc_error, long code, const char *message)
{
    if (is_rpc_error)
        return rpc_error_classify(code, message) == RPC_CLASS_LIMIT || has(message, "too many") ||
               has(message, "range") || has(message, "response size") || has(message, "exceed") ||
               has(message, "more than") || has(message, "results");
    /* "larger than": rpc.h's own cap on an answer (max_response_bytes), hit by a dense
     * first range before any provider limit is. */
    return has(message, "timeout") || has(message, "timed out") || has(message, "too large") ||
           has(message, "too big") || has(message, "larger than") || has(message, "size") ||
           has(message, "limit");
}

int range_error_oversize(const char *message)
{
    return has(message, "larger than");
}
