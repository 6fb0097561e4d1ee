/* reorg: common-ancestor search over the recorded window (see reorg.h). */
#include "reorg.h"

#include <string.h>
#include <strings.h>

int reorg_links(const char *prev_hash, const char *parent_hash)
{
    if (!prev_hash || !*prev_hash)
        return 1;
    return parent_hash && strcasecmp(prev_hash, parent_hash) == 0;
}

reorg_result reorg_find_ancestor(const reorg_block *stored, size_t n, int64_t floor,
                                 reorg_hash_fn canonical, void *ud, int64_t *ancestor)
{
    /* Walk down by number without sorting: the window is small (hundreds), and each
     * step picks the highest recorded block below the previous one. */
    int64_t below = INT64_MAX, lowest_seen = INT64_MAX;
    int contiguous = 1;
    for (;;) {
        const reorg_block *best = NULL;
        for (size_t i = 0; i < n; i++)
            if (stored[i].number < below && (!best || stored[i].number > best->number))
                best = &stored[i];
        if (!best)
            break;
        if (below != INT64_MAX && best->number != below - 1)
            contiguous = 0;
        char h[67];
        int rc = canonical(ud, best->number, h);
        if (rc < 0)
            return REORG_ERROR;
        if (rc == 0 && strcasecmp(h, best->hash) == 0) {
            *ancestor = best->number;
            return REORG_FOUND;
        }
        below = lowest_seen = best->number;
    }
    /* Nothing recorded agrees. If the record reaches down to the first block read
     * without holes, the whole history we read was replaced: start over. */
    if ((n == 0 || (contiguous && lowest_seen == floor + 1))) {
        *ancestor = floor;
        return REORG_FOUND;
    }
    return REORG_TOO_DEEP;
}
