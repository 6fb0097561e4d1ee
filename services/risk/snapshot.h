/* snapshot: daily snapshots at 00:00 UTC. The snapshot of day D is the close of day D —
 * the last value of every fund metric and of every asset's holdings stored during D —
 * plus the levels open at the end of D (from risk_events). Days are filled from the day
 * after the newest snapshot (or the first day with data) up to yesterday, so a day missed
 * while no replica ran is backfilled (marked backfilled) on the next run. Idempotent
 * (ON CONFLICT DO NOTHING), and serialised by an advisory lock; the scheduler makes it
 * run once per cluster. Days without any stored metric get no snapshot. */
#ifndef RISK_SNAPSHOT_H
#define RISK_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "db.h"

#define RK_SNAPSHOT_MAX_DAYS 400 /* backfill reach per run */

/* Returns the number of snapshots written (>= 0) or -1. */
int rk_snapshot_run(db_pool *db, int64_t now_ms, char *err, size_t errlen);

/* The day's report {day, as_of, backfilled, total_assets, ..., metrics, levels, holdings[]}
 * (owned) or NULL with *found = 0 when there is no snapshot for `day` (YYYY-MM-DD). */
cJSON *rk_snapshot_get(db_conn *c, const char *day, int *found, char *err, size_t errlen);

/* The same report as CSV (malloc'd): a "section,key,value" table. */
char *rk_snapshot_csv(const cJSON *report);

#endif
