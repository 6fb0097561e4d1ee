/* engine: the risk cycle (see engine.h). */
#include "risk/engine.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "risk/outmsg.h"
#include "util.h"

/* ---------------------------------------------------------------- small helpers */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            abort(); /* as util_malloc does: out of memory is not recoverable here */
        b->p = np;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static PGresult *q(db_conn *c, const char *name, const char *sql, int n, const char *const *p,
                   char *err, size_t errlen)
{
    return db_query_prepared(c, name, sql, n, p, err, errlen);
}

static int exec(db_conn *c, const char *name, const char *sql, int n, const char *const *p,
                char *err, size_t errlen)
{
    PGresult *r = q(c, name, sql, n, p, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

/* Numeric text from the database -> int64, clamped at RK_VALUE_MAX (thresholds are
 * bounded on write; this only guards against hand-edited rows). */
static int64_t clamp_i64(const char *s)
{
    if (!s || !*s)
        return 0;
    if (strlen(s) > 15)
        return RK_VALUE_MAX;
    long long v = strtoll(s, NULL, 10);
    return v > RK_VALUE_MAX ? RK_VALUE_MAX : v < 0 ? 0 : v;
}

static void ms_ts(int64_t ms, char out[32])
{
    envelope_format_ts(ms, out);
}

static const char *dec(const money_u256 *v, char buf[MONEY_DEC_MAX])
{
    money_to_dec(v, buf, MONEY_DEC_MAX);
    return buf;
}

/* ---------------------------------------------------------------- thresholds */

int rk_thresholds_load(db_conn *c, rk_threshold t[RK_M_COUNT], char *err, size_t errlen)
{
    memset(t, 0, sizeof(rk_threshold) * RK_M_COUNT);
    PGresult *r = q(c, "rk_thr_load",
                    "SELECT metric, direction, warning::text, critical::text, clear_margin::text "
                    "FROM risk.risk_thresholds",
                    0, NULL, err, errlen);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        int id = rk_metric_find(PQgetvalue(r, i, 0));
        if (id < 0)
            continue;
        rk_threshold *x = &t[id];
        x->below = strcmp(PQgetvalue(r, i, 1), "below") == 0;
        x->has_warning = !PQgetisnull(r, i, 2);
        x->has_critical = !PQgetisnull(r, i, 3);
        x->warning = clamp_i64(PQgetvalue(r, i, 2));
        x->critical = clamp_i64(PQgetvalue(r, i, 3));
        x->margin = clamp_i64(PQgetvalue(r, i, 4));
    }
    PQclear(r);
    return 0;
}

int rk_settings_load(db_conn *c, rk_settings *s, char *err, size_t errlen)
{
    s->coverage_horizon_s = 7 * 86400;
    s->redemption_window_s = 86400;
    s->nav_window_s = 86400;
    s->l1_target_bps = 1000;
    s->topup_within_s = 86400;
    PGresult *r =
        q(c, "rk_set_load", "SELECT key, value FROM risk.risk_settings", 0, NULL, err, errlen);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *k = PQgetvalue(r, i, 0);
        int64_t v = clamp_i64(PQgetvalue(r, i, 1));
        if (!strcmp(k, "coverage.horizon_s"))
            s->coverage_horizon_s = v;
        else if (!strcmp(k, "redemption.window_s"))
            s->redemption_window_s = v;
        else if (!strcmp(k, "nav.change_window_s"))
            s->nav_window_s = v;
        else if (!strcmp(k, "emergency.l1_target_bps"))
            s->l1_target_bps = v > 10000 ? 10000 : v;
        else if (!strcmp(k, "emergency.topup_within_s"))
            s->topup_within_s = v;
    }
    PQclear(r);
    return 0;
}

/* ---------------------------------------------------------------- inputs */

static int load_inputs(db_conn *c, const rk_settings *st, int64_t now_ms, const rk_chain *ch,
                       rk_inputs *in, char *err, size_t errlen)
{
    memset(in, 0, sizeof *in);
    char now[32], hz[24], rw[24], nw[24];
    ms_ts(now_ms, now);
    snprintf(hz, sizeof hz, "%" PRId64, st->coverage_horizon_s);
    snprintf(rw, sizeof rw, "%" PRId64, st->redemption_window_s);
    snprintf(nw, sizeof nw, "%" PRId64, st->nav_window_s);
    const char *p[4] = {now, hz, rw, nw};
    PGresult *r =
        q(c, "rk_inputs",
          "SELECT (SELECT COALESCE(sum(gross_assets - fee), 0)::text FROM risk.redemption_requests "
          "  WHERE status IN ('pending', 'approved') AND settle_at <= $1::timestamptz + "
          "  make_interval(secs => $2::bigint)), "
          "(SELECT COALESCE(sum(gross_assets), 0)::text FROM risk.redemption_requests "
          "  WHERE requested_at > $1::timestamptz - make_interval(secs => $3::bigint)), "
          "(SELECT value::text FROM risk.risk_metrics_series WHERE metric = 'nav.share_price' "
          "  AND subject = '' AND ts <= $1::timestamptz - make_interval(secs => $4::bigint) "
          "  ORDER BY ts DESC LIMIT 1)",
          4, p, err, errlen);
    if (!r)
        return -1;
    int rc = 0;
    if (money_from_dec(&in->due, PQgetvalue(r, 0, 0), err, errlen) != 0 ||
        money_from_dec(&in->requested, PQgetvalue(r, 0, 1), err, errlen) != 0)
        rc = -1;
    if (rc == 0 && !PQgetisnull(r, 0, 2)) {
        if (money_from_dec(&in->nav_prev, PQgetvalue(r, 0, 2), err, errlen) != 0)
            rc = -1;
        else
            in->nav_prev_ok = !money_is_zero(&in->nav_prev);
    }
    PQclear(r);
    /* The vault's own pending liability covers requests risk has not seen yet (a fresh
     * deployment, a lagging consumer): take the larger, so coverage errs on the safe side. */
    if (rc == 0 && money_cmp(&ch->pending_liability, &in->due) > 0)
        in->due = ch->pending_liability;
    return rc;
}

/* ---------------------------------------------------------------- series */

static void row(sbuf *m, sbuf *s, sbuf *v, int *first, const char *metric, const char *subject,
                const char *value)
{
    sb_add(m, "%s\"%s\"", *first ? "" : ",", metric);
    sb_add(s, "%s\"%s\"", *first ? "" : ",", subject);
    sb_add(v, "%s%s", *first ? "" : ",", value);
    *first = 0;
}

static int store_series(db_conn *c, int64_t now_ms, const rk_chain *ch, const rk_inputs *in,
                        const rk_metrics *mt, char *err, size_t errlen)
{
    sbuf m = {0}, s = {0}, v = {0};
    sb_add(&m, "{");
    sb_add(&s, "{");
    sb_add(&v, "{");
    int first = 1;
    char b[MONEY_DEC_MAX], n[24];
    for (int i = 0; i < RK_M_COUNT; i++)
        if (mt->valid[i]) {
            snprintf(n, sizeof n, "%" PRId64, mt->v[i]);
            row(&m, &s, &v, &first, rk_metric_name(i), "", n);
        }
    row(&m, &s, &v, &first, "nav.share_price", "", dec(&ch->share_price, b));
    row(&m, &s, &v, &first, "nav.total_assets", "", dec(&ch->total_assets, b));
    row(&m, &s, &v, &first, "nav.total_supply", "", dec(&ch->total_supply, b));
    row(&m, &s, &v, &first, "liquidity.l1_value", "", dec(&ch->l1, b));
    row(&m, &s, &v, &first, "liquidity.l2_value", "", dec(&ch->l2, b));
    row(&m, &s, &v, &first, "liquidity.l3_value", "", dec(&ch->l3, b));
    row(&m, &s, &v, &first, "redemption.due", "", dec(&in->due, b));
    row(&m, &s, &v, &first, "redemption.requested", "", dec(&in->requested, b));
    row(&m, &s, &v, &first, "redemption.pending_liability", "", dec(&ch->pending_liability, b));
    for (size_t i = 0; i < ch->nassets; i++) {
        const rk_asset *a = &ch->assets[i];
        row(&m, &s, &v, &first, "asset.balance", a->token, dec(&a->balance, b));
        row(&m, &s, &v, &first, "asset.value", a->token, dec(&a->value, b));
        row(&m, &s, &v, &first, "asset.price", a->token, dec(&a->price, b));
        snprintf(n, sizeof n, "%" PRId64, mt->weight_bps[i]);
        row(&m, &s, &v, &first, "asset.weight", a->token, n);
    }
    sb_add(&m, "}");
    sb_add(&s, "}");
    sb_add(&v, "}");
    char ts[32], blk[24];
    ms_ts(now_ms, ts);
    snprintf(blk, sizeof blk, "%" PRIu64, ch->block);
    const char *p[5] = {ts, m.p, s.p, v.p, blk};
    int rc = exec(c, "rk_series_ins",
                  "INSERT INTO risk.risk_metrics_series (ts, metric, subject, value, block) "
                  "SELECT $1::timestamptz, x.m, x.s, x.v, $5::bigint FROM "
                  "unnest($2::text[], $3::text[], $4::numeric[]) AS x(m, s, v)",
                  5, p, err, errlen);
    free(m.p);
    free(s.p);
    free(v.p);
    return rc;
}

/* ---------------------------------------------------------------- levels */

static int alert_for(db_conn *tx, int id, int prev, int next, int64_t value, int64_t thr,
                     uint64_t block, char *err, size_t errlen)
{
    const char *name = rk_metric_name(id);
    char title[200], msg[400], key[120];
    snprintf(key, sizeof key, "risk:%s", name);
    cJSON *labels = cJSON_CreateObject();
    cJSON_AddStringToObject(labels, "metric", name);
    char vb[24], tb[24], bb[24];
    snprintf(vb, sizeof vb, "%" PRId64, value);
    snprintf(tb, sizeof tb, "%" PRId64, thr);
    snprintf(bb, sizeof bb, "%" PRIu64, block);
    cJSON_AddStringToObject(labels, "value", vb);
    cJSON_AddStringToObject(labels, "threshold", tb);
    cJSON_AddStringToObject(labels, "block", bb);
    cJSON_AddStringToObject(labels, "level", rk_level_name(next));
    cJSON_AddStringToObject(labels, "previous_level", rk_level_name(prev));
    if (next == RK_INFO) {
        snprintf(title, sizeof title, "Risk cleared: %s", name);
        snprintf(msg, sizeof msg, "%s is back to normal at %s (was %s)", name, vb,
                 rk_level_name(prev));
        return rk_out_alert(tx, "info", title, msg, key, "operators", 1, labels, err, errlen);
    }
    snprintf(title, sizeof title, "Risk %s: %s", rk_level_name(next), name);
    snprintf(msg, sizeof msg, "%s is %s (%s threshold %s, block %s)", name, vb, rk_level_name(next),
             tb, bb);
    return rk_out_alert(tx, rk_level_name(next), title, msg, key,
                        next == RK_CRITICAL ? "everyone" : "operators", 0, labels, err, errlen);
}

static int move_levels(db_conn *tx, int64_t now_ms, const rk_threshold *thr, rk_cycle_result *out,
                       int64_t *crit_event, char *err, size_t errlen)
{
    int prev[RK_M_COUNT] = {0};
    char evid[RK_M_COUNT][24];
    memset(evid, 0, sizeof evid);
    PGresult *r = q(tx, "rk_levels_get",
                    "SELECT metric, level, COALESCE(event_id::text, '') FROM risk.risk_levels "
                    "FOR UPDATE",
                    0, NULL, err, errlen);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        int id = rk_metric_find(PQgetvalue(r, i, 0));
        if (id < 0)
            continue;
        prev[id] = atoi(PQgetvalue(r, i, 1));
        util_strlcpy(evid[id], PQgetvalue(r, i, 2), sizeof evid[id]);
    }
    PQclear(r);
    char ts[32], blk[24];
    ms_ts(now_ms, ts);
    snprintf(blk, sizeof blk, "%" PRIu64, out->chain.block);
    for (int id = 0; id < RK_M_COUNT; id++) {
        const rk_metrics *m = &out->m;
        int next = rk_level_next(&thr[id], prev[id], m->valid[id], m->v[id]);
        out->level[id] = next;
        char vb[24], lv[4];
        snprintf(vb, sizeof vb, "%" PRId64, m->v[id]);
        snprintf(lv, sizeof lv, "%d", next);
        const char *val = m->valid[id] ? vb : NULL;
        const char *name = rk_metric_name(id);
        if (next == prev[id]) {
            const char *p[3] = {name, lv, val};
            if (exec(tx, "rk_level_touch",
                     "INSERT INTO risk.risk_levels (metric, level, value) VALUES ($1, "
                     "$2::smallint, $3::numeric) ON CONFLICT (metric) DO UPDATE SET value = "
                     "excluded.value",
                     3, p, err, errlen) != 0)
                return -1;
            continue;
        }
        out->changes++;
        if (evid[id][0]) {
            const char *p[3] = {evid[id], ts, val};
            if (exec(tx, "rk_event_resolve",
                     "UPDATE risk.risk_events SET resolved_at = $2::timestamptz, resolved_value = "
                     "$3::numeric WHERE id = $1::bigint AND resolved_at IS NULL",
                     3, p, err, errlen) != 0)
                return -1;
        }
        char newid[24] = "";
        if (next > RK_INFO) {
            char tb[24];
            snprintf(tb, sizeof tb, "%" PRId64, rk_level_threshold(&thr[id], next));
            const char *p[7] = {name, rk_level_name(next), rk_level_name(prev[id]), val, tb, blk,
                                ts};
            PGresult *e = q(tx, "rk_event_open",
                            "INSERT INTO risk.risk_events (metric, level, previous_level, value, "
                            "threshold, block, opened_at) VALUES ($1, $2, $3, $4::numeric, "
                            "$5::numeric, $6::bigint, $7::timestamptz) RETURNING id",
                            7, p, err, errlen);
            if (!e)
                return -1;
            util_strlcpy(newid, PQgetvalue(e, 0, 0), sizeof newid);
            PQclear(e);
            if (next == RK_CRITICAL && *crit_event == 0)
                *crit_event = strtoll(newid, NULL, 10);
        }
        const char *p[5] = {name, lv, val, newid[0] ? newid : NULL, ts};
        if (exec(tx, "rk_level_set",
                 "INSERT INTO risk.risk_levels (metric, level, value, event_id, changed_at) VALUES "
                 "($1, $2::smallint, $3::numeric, $4::bigint, $5::timestamptz) ON CONFLICT "
                 "(metric) DO UPDATE SET level = excluded.level, value = excluded.value, "
                 "event_id = excluded.event_id, changed_at = excluded.changed_at",
                 5, p, err, errlen) != 0)
            return -1;
        int64_t t = rk_level_threshold(&thr[id], next > prev[id] ? next : prev[id]);
        if (alert_for(tx, id, prev[id], next, m->v[id], t, out->chain.block, err, errlen) != 0)
            return -1;
        log_info("risk level changed", "metric", name, "from", rk_level_name(prev[id]), "to",
                 rk_level_name(next), "#value", vb);
    }
    return 0;
}

/* ---------------------------------------------------------------- emergency */

static int emergency(db_conn *tx, int64_t now_ms, const rk_settings *st, int64_t crit_event,
                     rk_cycle_result *out, char *err, size_t errlen)
{
    int crit_metric = -1;
    for (int id = 0; id < RK_M_COUNT; id++)
        if (out->level[id] == RK_CRITICAL && crit_metric < 0)
            crit_metric = id;
    if (crit_metric < 0) {
        /* the crisis is over once nothing is critical: a later one starts a new protocol */
        char ts[32];
        ms_ts(now_ms, ts);
        const char *p[1] = {ts};
        return exec(tx, "rk_emerg_resolve",
                    "UPDATE risk.risk_emergencies SET status = 'resolved', resolved_at = "
                    "$1::timestamptz WHERE status = 'active'",
                    1, p, err, errlen);
    }
    const rk_chain *ch = &out->chain;
    /* needed = what brings L1 back to its target share of NAV or to the dues, if larger */
    money_u256 target, needed, due_gap;
    money_zero(&needed);
    if (money_bps(&target, &ch->total_assets, (uint32_t)st->l1_target_bps, MONEY_ROUND_UP) == 0 &&
        money_cmp(&target, &ch->l1) > 0)
        money_sub(&needed, &target, &ch->l1);
    if (money_cmp(&out->in.due, &ch->l1) > 0) {
        money_sub(&due_gap, &out->in.due, &ch->l1);
        if (money_cmp(&due_gap, &needed) > 0)
            needed = due_gap;
    }
    char nb[MONEY_DEC_MAX], ts[32], ev[24];
    ms_ts(now_ms, ts);
    snprintf(ev, sizeof ev, "%" PRId64, crit_event);
    const char *metric = rk_metric_name(crit_metric);
    const char *p[5] = {crit_event > 0 ? ev : NULL, metric, ts, dec(&needed, nb)};
    PGresult *r = q(tx, "rk_emerg_start",
                    "INSERT INTO risk.risk_emergencies (status, trigger_event, metric, started_at, "
                    "topup_needed) VALUES ('active', $1::bigint, $2, $3::timestamptz, "
                    "$4::numeric) ON CONFLICT DO NOTHING RETURNING id",
                    4, p, err, errlen);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0; /* already running for this crisis */
    }
    out->emergency_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    char ref[64], id[96];
    snprintf(ref, sizeof ref, "risk:emergency:%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    char vb[24], blk[24];
    snprintf(vb, sizeof vb, "%" PRId64, out->m.v[crit_metric]);
    snprintf(blk, sizeof blk, "%" PRIu64, ch->block);
    if (!ch->emergency_mode) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "kind", "emergency_mode");
        cJSON_AddStringToObject(a, "ref", ref);
        cJSON_AddStringToObject(a, "requester", "risk");
        char title[200];
        snprintf(title, sizeof title, "Turn on emergency mode: %s is critical (%s)", metric, vb);
        cJSON_AddStringToObject(a, "title", title);
        cJSON *pl = cJSON_AddObjectToObject(a, "payload");
        cJSON_AddStringToObject(pl, "action", "setEmergencyMode");
        cJSON_AddBoolToObject(pl, "enabled", 1);
        cJSON_AddStringToObject(pl, "metric", metric);
        cJSON_AddStringToObject(pl, "value", vb);
        cJSON_AddStringToObject(pl, "block", blk);
        snprintf(id, sizeof id, "%s:approval", ref);
        if (rk_out_enqueue(tx, "approval.requests", BUS_CRITICAL, id, "approval.request", a, err,
                           errlen) != 0)
            return -1;
    }
    if (!money_is_zero(&needed)) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "needed", nb);
        char by[32], l1b[MONEY_DEC_MAX], reason[200];
        ms_ts(now_ms + st->topup_within_s * 1000, by);
        cJSON_AddStringToObject(l, "by", by);
        cJSON_AddStringToObject(l, "l1_balance", dec(&ch->l1, l1b));
        snprintf(reason, sizeof reason, "risk emergency: %s critical", metric);
        cJSON_AddStringToObject(l, "reason", reason);
        snprintf(id, sizeof id, "%s:topup", ref);
        if (rk_out_enqueue(tx, "rebalance.requests", BUS_CRITICAL, id, "liquidity.request", l, err,
                           errlen) != 0)
            return -1;
    }
    log_warn("risk emergency protocol started", "ref", ref, "metric", metric, "needed", nb);
    return 0;
}

/* ---------------------------------------------------------------- current JSON */

static cJSON *current_json(int64_t now_ms, const rk_cycle_result *r)
{
    cJSON *j = cJSON_CreateObject();
    char ts[32], b[MONEY_DEC_MAX];
    ms_ts(now_ms, ts);
    cJSON_AddStringToObject(j, "ts", ts);
    cJSON_AddNumberToObject(j, "block", (double)r->chain.block);
    cJSON_AddNumberToObject(j, "block_time", (double)r->chain.block_time);
    cJSON_AddStringToObject(j, "total_assets", dec(&r->chain.total_assets, b));
    cJSON_AddStringToObject(j, "total_supply", dec(&r->chain.total_supply, b));
    cJSON_AddStringToObject(j, "share_price", dec(&r->chain.share_price, b));
    cJSON_AddStringToObject(j, "l1_value", dec(&r->chain.l1, b));
    cJSON_AddStringToObject(j, "l2_value", dec(&r->chain.l2, b));
    cJSON_AddStringToObject(j, "l3_value", dec(&r->chain.l3, b));
    cJSON_AddStringToObject(j, "redemptions_due", dec(&r->in.due, b));
    cJSON_AddBoolToObject(j, "emergency_mode", r->chain.emergency_mode);
    int overall = 0;
    cJSON *ms = cJSON_AddObjectToObject(j, "metrics");
    for (int i = 0; i < RK_M_COUNT; i++) {
        cJSON *m = cJSON_AddObjectToObject(ms, rk_metric_name(i));
        if (r->m.valid[i])
            cJSON_AddNumberToObject(m, "value", (double)r->m.v[i]);
        else
            cJSON_AddNullToObject(m, "value");
        cJSON_AddStringToObject(m, "level", rk_level_name(r->level[i]));
        if (r->level[i] > overall)
            overall = r->level[i];
    }
    cJSON_AddStringToObject(j, "level", rk_level_name(overall));
    cJSON *as = cJSON_AddArrayToObject(j, "assets");
    for (size_t i = 0; i < r->chain.nassets; i++) {
        const rk_asset *a = &r->chain.assets[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "token", a->token);
        cJSON_AddNumberToObject(o, "tier", a->tier);
        cJSON_AddStringToObject(o, "balance", dec(&a->balance, b));
        cJSON_AddStringToObject(o, "value", dec(&a->value, b));
        cJSON_AddStringToObject(o, "price", dec(&a->price, b));
        cJSON_AddNumberToObject(o, "weight_bps", (double)r->m.weight_bps[i]);
        cJSON_AddNumberToObject(o, "price_updated_at", (double)a->updated_at);
        cJSON_AddItemToArray(as, o);
    }
    return j;
}

void rk_cycle_result_clear(rk_cycle_result *r)
{
    if (r) {
        cJSON_Delete(r->current);
        r->current = NULL;
    }
}

/* ---------------------------------------------------------------- the cycle */

int rk_cycle(rk_app *app, int64_t now_ms, const rk_chain *chain, rk_cycle_result *out, char *err,
             size_t errlen)
{
    memset(out, 0, sizeof *out);
    atomic_store(&app->dirty, 0);
    if (chain)
        out->chain = *chain;
    else if (rk_chain_read(app, RPC_BLOCK_LATEST, &out->chain, err, errlen) != 0)
        return -1;
    db_conn *c = db_acquire(app->db, 5000, err, errlen);
    if (!c)
        return -1;
    int rc = -1;
    if (db_exec(c, "BEGIN", err, errlen) != 0)
        goto out;
    /* one cycle at a time across replicas: levels and the emergency row are read-modify-write */
    if (db_exec(c, "SELECT pg_advisory_xact_lock(hashtext('risk.cycle'))", err, errlen) != 0)
        goto out;
    rk_threshold thr[RK_M_COUNT];
    rk_settings st;
    int64_t crit_event = 0;
    if (rk_thresholds_load(c, thr, err, errlen) != 0 || rk_settings_load(c, &st, err, errlen) ||
        load_inputs(c, &st, now_ms, &out->chain, &out->in, err, errlen) != 0)
        goto out;
    if (rk_compute(&out->chain, &out->in, &out->m) != 0) {
        util_err(err, errlen, "inconsistent chain read");
        goto out;
    }
    if (store_series(c, now_ms, &out->chain, &out->in, &out->m, err, errlen) != 0 ||
        move_levels(c, now_ms, thr, out, &crit_event, err, errlen) != 0 ||
        emergency(c, now_ms, &st, crit_event, out, err, errlen) != 0)
        goto out;
    out->current = current_json(now_ms, out);
    char id[96];
    snprintf(id, sizeof id, "risk:metrics:%" PRIu64 ":%" PRId64, out->chain.block, now_ms);
    if (rk_out_enqueue(c, "updates", BUS_NORMAL, id, "risk.metrics",
                       cJSON_Duplicate(out->current, 1), err, errlen) != 0)
        goto out;
    if (db_exec(c, "COMMIT", err, errlen) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        rk_cycle_result_clear(out);
        if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
            char e2[UTIL_ERRLEN];
            db_exec(c, "ROLLBACK", e2, sizeof e2);
        }
    }
    db_release(app->db, c);
    return rc;
}

int rk_cache_set(redisContext *rc, const cJSON *current, char *err, size_t errlen)
{
    char *s = cJSON_PrintUnformatted(current);
    if (!s)
        return util_err(err, errlen, "out of memory");
    redisReply *r = redisCommand(rc, "SET %s %s", RK_CACHE_KEY, s);
    free(s);
    if (!r)
        return util_err(err, errlen, "redis: %s", rc->errstr);
    int ok = r->type != REDIS_REPLY_ERROR;
    if (!ok)
        util_err(err, errlen, "redis: %s", r->str);
    freeReplyObject(r);
    return ok ? 0 : -1;
}

int rk_partitions_ensure(db_pool *db, int64_t now_ms, char *err, size_t errlen)
{
    db_conn *c = db_acquire(db, 5000, err, errlen);
    if (!c)
        return -1;
    char ts[32];
    ms_ts(now_ms, ts);
    const char *p[1] = {ts};
    int rc = exec(c, "rk_parts",
                  "SELECT risk.risk_ensure_partitions($1::timestamptz - interval '1 month', "
                  "$1::timestamptz + interval '3 months')",
                  1, p, err, errlen);
    db_release(db, c);
    return rc;
}
