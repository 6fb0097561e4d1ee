/* grouping: Alertmanager-style timing and flush decisions (see grouping.h). */
#include "grouping.h"

grouping_transition grouping_classify(int exists, int was_firing, int resolved)
{
    if (!exists)
        return resolved ? GROUPING_RESOLVED_NONE : GROUPING_NEW;
    if (resolved)
        return was_firing ? GROUPING_RESOLVED : GROUPING_RESOLVED_DUP;
    return was_firing ? GROUPING_DUPLICATE : GROUPING_REFIRED;
}

int grouping_changed(grouping_transition t)
{
    return t == GROUPING_NEW || t == GROUPING_REFIRED || t == GROUPING_RESOLVED;
}

const char *grouping_transition_name(grouping_transition t)
{
    switch (t) {
    case GROUPING_NEW:
        return "new";
    case GROUPING_DUPLICATE:
        return "duplicate";
    case GROUPING_REFIRED:
        return "refired";
    case GROUPING_RESOLVED:
        return "resolved";
    case GROUPING_RESOLVED_DUP:
        return "resolved_duplicate";
    default:
        return "resolved_unknown";
    }
}

int64_t grouping_next_flush(int64_t now, int is_new_group, int64_t cur_next, int64_t last_notified,
                            int64_t group_wait_ms, int64_t group_interval_ms)
{
    int64_t want;
    if (is_new_group)
        want = now + group_wait_ms;
    else if (last_notified < 0)
        /* Still inside its first group_wait: the change rides along with that flush. */
        want = cur_next >= 0 ? cur_next : now + group_wait_ms;
    else {
        /* Changes are batched: at most one notification per group_interval. */
        want = last_notified + group_interval_ms;
        if (want < now)
            want = now;
    }
    if (cur_next >= 0 && cur_next < want)
        want = cur_next;
    return want;
}

void grouping_plan(grouping_member *m, size_t n, int send_resolved, int64_t now,
                   int64_t group_interval_ms, int64_t repeat_interval_ms, grouping_plan_out *out)
{
    out->included = out->firing_included = 0;
    size_t remaining = 0, silenced_firing = 0;
    for (size_t i = 0; i < n; i++) {
        grouping_member *g = &m[i];
        g->include = g->drop = 0;
        if (g->status == GROUPING_MEMBER_FIRING) {
            if (g->silenced) {
                silenced_firing++;
                remaining++;
                continue;
            }
            g->include = 1;
            out->included++;
            out->firing_included++;
            remaining++;
        } else {
            /* A resolved alert leaves the group; the group owes a notice only if it ever
             * announced the alert as firing. */
            g->drop = 1;
            if (send_resolved && !g->silenced && g->notified == GROUPING_MEMBER_FIRING) {
                g->include = 1;
                out->included++;
            }
        }
    }
    out->delete_group = remaining == 0;
    if (remaining == 0)
        out->next_flush = -1;
    else if (silenced_firing == remaining)
        /* Only silenced alerts left: look again soon so an expiring silence is noticed. */
        out->next_flush = now + (group_interval_ms > 1000 ? group_interval_ms : 1000);
    else
        out->next_flush = now + repeat_interval_ms;
}
