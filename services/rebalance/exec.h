/* exec: a plan's life — built from a pinned-block chain read and the asset settings, simulated
 * leg by leg, recorded (with its triggers, approvals, legs, tx hashes, before / after), sent
 * for approval above the threshold, executed one leg at a time through the tx outbox and
 * verified against the vault afterwards.
 *
 * One plan executes at a time: a partial unique index allows one active plan, and every pass
 * runs under the cluster lease "rebalance.executor" whose fence each write checks
 * (store_fence), so a paused-and-resumed stale holder cannot write. A leg is queued with the
 * idempotency key "rebalance:<plan>:<seq>" in the same transaction that marks it queued, so a
 * crash at any point resumes without repeating a trade. While the global pause flag is set
 * nothing new is queued (and the outbox signs nothing); planning and bookkeeping go on.
 *
 * Memory: exec_runner_new/_free own the runner and its Redis connection; the app is
 * borrowed. cJSON returned by exec_preview is owned by the caller. One runner per thread. */
#ifndef REBALANCE_EXEC_H
#define REBALANCE_EXEC_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "app.h"
#include "planner.h"
#include "vault.h"

#define EXEC_LOCK_NAME "rebalance.executor"

/* Plan + simulation at the current head, nothing written or sent. l1_needed may be NULL.
 * Returns 0 with *out = {status, block, plan, simulation, before, planner_us} or -1. */
int exec_preview(rb_app *app, const money_u256 *l1_needed, cJSON **out, char *err, size_t errlen);

/* Current allocation vs targets at the head: {block, nav, l1{...}, assets[...]}. */
int exec_allocation(rb_app *app, cJSON **out, char *err, size_t errlen);

/* The planner input for a chain read (operator settings from `settings`, defaults for assets
 * without a row). *assets is owned by the caller (free). Exposed for tests. */
struct store_asset;
void exec_planner_input(const rb_app *app, const vault_state *vs,
                        const struct store_asset *settings, size_t nsettings,
                        const money_u256 *l1_needed, planner_asset **assets, planner_input *in);

typedef struct exec_runner exec_runner;

exec_runner *exec_runner_new(rb_app *app, char *err, size_t errlen);
void exec_runner_free(exec_runner *r);
/* Test hook: called after each durable step ("planned", "queued", "confirmed", "finished")
 * with the plan id. NULL in production. */
void exec_set_hook(exec_runner *r, void (*hook)(const char *step, const char *plan_id, void *ud),
                   void *ud);

/* One pass: resumes the active plan or makes one from pending triggers. Returns 1 when
 * something changed, 0 when idle or waiting (approval, outbox, pause, lease busy), -1 on error
 * (the caller backs off and calls again; nothing is lost). */
int exec_step(exec_runner *r, char *err, size_t errlen);

/* Scheduled check: reads the vault and queues a deviation / l1_band trigger when a plan is due
 * (at most one pending per kind). 1 queued, 0 nothing to do, -1 error. */
int exec_check(rb_app *app, char *err, size_t errlen);

#endif
