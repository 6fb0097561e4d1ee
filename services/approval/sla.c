/* sla: SLA timer sweep (see sla.h). */
#include "sla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outmsg.h"
#include "policy.h"
#include "util.h"

typedef struct sweep_ctx {
    int64_t now_ms;
    int notified;
} sweep_ctx;

static const char *const STEP_ACTION[4] = {"", "sla_reminder", "sla_escalation_admin",
                                           "sla_escalation_super"};
static const char *const STEP_SEVERITY[4] = {"", "info", "warning", "critical"};
static const char *const STEP_AUDIENCE[4] = {"", "approvers", "admins", "super_admins"};

static int sweep_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    sweep_ctx *x = ud;
    x->notified = 0;
    pol_policy pol;
    if (pol_load(tx, &pol, err, errlen) != 0)
        return -1;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)x->now_ms);
    const char *p[1] = {now};
    PGresult *r = db_query_prepared(
        tx, "sla_due",
        "SELECT s.ticket_id, (extract(epoch FROM s.started_at) * 1000)::bigint, s.sla_ms, "
        "s.step, t.kind, t.status FROM approval.sla_timers s JOIN approval.approval_tickets t ON "
        "t.id = s.ticket_id WHERE s.closed_at IS NULL AND s.next_at <= to_timestamp($1::bigint "
        "/ 1000.0) ORDER BY s.next_at LIMIT 500 FOR UPDATE OF s SKIP LOCKED",
        1, p, err, errlen);
    if (!r)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        const char *tid = PQgetvalue(r, i, 0), *kind = PQgetvalue(r, i, 4);
        int64_t started = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        int64_t sla = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        int step = atoi(PQgetvalue(r, i, 3));
        if (strcmp(PQgetvalue(r, i, 5), "open") != 0) {
            const char *c[1] = {tid};
            PGresult *u = db_query_prepared(tx, "sla_close_stale",
                                            "UPDATE approval.sla_timers SET closed_at = now(), "
                                            "next_at = NULL WHERE ticket_id = $1",
                                            1, c, err, errlen);
            rc = u ? 0 : -1;
            PQclear(u);
            continue;
        }
        int reached = pol_sla_step_at(&pol, started, sla, x->now_ms);
        for (int s = step + 1; rc == 0 && s <= reached; s++) {
            char title[200], msg[400], key[160], pct[16];
            int64_t pcts[4] = {0, pol.reminder_pct, pol.esc_admin_pct, pol.esc_super_pct};
            snprintf(pct, sizeof pct, "%lld", (long long)pcts[s]);
            snprintf(title, sizeof title, "%s ticket %s at %s%% of its SLA",
                     s == 1 ? "Reminder:" : "Escalation:", kind, pct);
            snprintf(msg, sizeof msg,
                     "ticket %s (%s) is still open after %s%% of its %lld s SLA; notifying %s", tid,
                     kind, pct, (long long)(sla / 1000), STEP_AUDIENCE[s]);
            snprintf(key, sizeof key, "approval.sla:%.64s:%d", tid, s);
            cJSON *labels = cJSON_CreateObject();
            cJSON_AddStringToObject(labels, "ticket_id", tid);
            cJSON_AddStringToObject(labels, "kind", kind);
            cJSON_AddStringToObject(labels, "escalate_to", STEP_AUDIENCE[s]);
            rc = out_alert(tx, STEP_SEVERITY[s], "approval.sla", title, msg, key, labels, err,
                           errlen);
            if (rc != 0)
                break;
            const char *q[3] = {tid, STEP_ACTION[s], pct};
            PGresult *u = db_query_prepared(
                tx, "sla_rec",
                "INSERT INTO approval.approval_records (ticket_id, action, actor, detail) VALUES "
                "($1, $2, 'sla', jsonb_build_object('percent', $3::int))",
                3, q, err, errlen);
            rc = u ? 0 : -1;
            PQclear(u);
            x->notified++;
        }
        if (rc != 0)
            break;
        int64_t next = reached < 3 ? pol_sla_step_ms(&pol, started, sla, reached + 1) : -1;
        if (reached == step && next <= x->now_ms)
            next = -1; /* policy changed under us: avoid a hot loop, the step can't be reached */
        char st[16], nx[24];
        snprintf(st, sizeof st, "%d", reached > step ? reached : step);
        snprintf(nx, sizeof nx, "%lld", (long long)next);
        const char *q[3] = {tid, st, next >= 0 ? nx : NULL};
        PGresult *u = db_query_prepared(
            tx, "sla_next",
            "UPDATE approval.sla_timers SET step = $2::smallint, next_at = CASE WHEN $3::bigint "
            "IS NULL THEN NULL ELSE to_timestamp($3::bigint / 1000.0) END WHERE ticket_id = $1",
            3, q, err, errlen);
        rc = u ? 0 : -1;
        PQclear(u);
    }
    PQclear(r);
    return rc;
}

int sla_sweep(const appr_app *app, int64_t now_ms, int *notified, char *err, size_t errlen)
{
    sweep_ctx x = {.now_ms = now_ms};
    if (db_tx(app->db, sweep_tx, &x, err, errlen) != 0)
        return -1;
    if (notified)
        *notified = x.notified;
    return 0;
}
