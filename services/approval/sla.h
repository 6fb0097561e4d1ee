/* sla: SLA timers of open tickets. Timers are rows (approval.sla_timers) so they survive
 * restarts; sla_sweep runs from a once-per-cluster scheduler job and takes the clock as
 * an argument (tests inject it). Each step reached since the last sweep is recorded and
 * notified through `alerts`: 1 reminder to approvers (info), 2 escalation to admins
 * (warning), 3 escalation to super-admins (critical), at the policy's percentages of the
 * ticket's SLA. Rows are claimed with SKIP LOCKED, so overlapping sweeps never notify a
 * step twice. */
#ifndef APPROVAL_SLA_H
#define APPROVAL_SLA_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"

/* *notified (may be NULL) gets the number of steps notified. */
int sla_sweep(const appr_app *app, int64_t now_ms, int *notified, char *err, size_t errlen);

#endif
