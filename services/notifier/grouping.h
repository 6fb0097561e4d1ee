/* grouping: the Alertmanager-style decisions, as pure functions of plain values, so the
 * timing rules are unit-tested without a database:
 *  - what an incoming alert event means for the alert's state (new, duplicate, refired,
 *    resolved) and whether its groups must hear about it;
 *  - when a group flushes next (group_wait for a new group, group_interval after the last
 *    notification when something changed, repeat_interval when nothing did);
 *  - what a due flush sends: every unsilenced firing alert, plus a resolved notice for
 *    alerts the group had announced as firing (when the route sends resolved notices).
 * Times are milliseconds since the epoch; -1 means "none". Nothing here allocates. */
#ifndef PAIMON_NOTIFIER_GROUPING_H
#define PAIMON_NOTIFIER_GROUPING_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    GROUPING_NEW,           /* first firing event for this dedup key */
    GROUPING_DUPLICATE,     /* still firing: counted, no new notification */
    GROUPING_REFIRED,       /* fired again after being resolved */
    GROUPING_RESOLVED,      /* firing -> resolved */
    GROUPING_RESOLVED_DUP,  /* already resolved: nothing to say */
    GROUPING_RESOLVED_NONE, /* resolved notice for an alert never seen firing: recorded only */
} grouping_transition;

/* exists: a row for the dedup key; was_firing: its status is firing; resolved: the event. */
grouping_transition grouping_classify(int exists, int was_firing, int resolved);
/* 1 when the alert's groups must be (re)scheduled. */
int grouping_changed(grouping_transition t);
const char *grouping_transition_name(grouping_transition t);

/* Next flush time of a group after a change at now. cur_next: the scheduled flush or -1;
 * last_notified: -1 when the group never notified (then group_wait from now applies to a
 * new group; an existing never-notified group keeps its earlier schedule). */
int64_t grouping_next_flush(int64_t now, int is_new_group, int64_t cur_next, int64_t last_notified,
                            int64_t group_wait_ms, int64_t group_interval_ms);

typedef enum {
    GROUPING_MEMBER_FIRING = 0,
    GROUPING_MEMBER_RESOLVED = 1,
} grouping_status;

typedef struct grouping_member {
    grouping_status status; /* the alert's current state */
    int notified;           /* -1 never, else the grouping_status last sent */
    int silenced;           /* a silence matches it now */
    /* outputs of grouping_plan */
    int include; /* goes into this notification */
    int drop;    /* leaves the group after this flush */
} grouping_member;

typedef struct grouping_plan_out {
    size_t included;        /* members in the notification (0 = send nothing) */
    size_t firing_included; /* of which firing */
    int64_t next_flush;     /* -1: the group is idle until something changes */
    int delete_group;       /* nobody left in it */
} grouping_plan_out;

/* Decides a due flush at now over m[0..n) (sets include / drop per member). */
void grouping_plan(grouping_member *m, size_t n, int send_resolved, int64_t now,
                   int64_t group_interval_ms, int64_t repeat_interval_ms, grouping_plan_out *out);

#endif
