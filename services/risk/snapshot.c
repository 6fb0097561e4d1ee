/* snapshot: daily snapshots with backfill (see snapshot.h). */
#include "risk/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "util.h"

static int take_day(db_conn *c, const char *day, int backfilled, int *written, char *err,
                    size_t errlen)
{
    const char *p[2] = {day, backfilled ? "true" : "false"};
    PGresult *r = db_query_prepared(
        c, "rk_snap_day",
        "WITH d AS (SELECT $1::date AS day, ($1::date AT TIME ZONE 'UTC') AS t0, "
        "  (($1::date + 1) AT TIME ZONE 'UTC') AS t1), "
        "last AS (SELECT DISTINCT ON (s.metric, s.subject) s.metric, s.subject, s.value "
        "  FROM risk.risk_metrics_series s, d WHERE s.ts >= d.t0 AND s.ts < d.t1 "
        "  ORDER BY s.metric, s.subject, s.ts DESC), "
        "lv AS (SELECT DISTINCT ON (e.metric) e.metric, e.level FROM risk.risk_events e, d "
        "  WHERE e.opened_at < d.t1 AND (e.resolved_at IS NULL OR e.resolved_at >= d.t1) "
        "  ORDER BY e.metric, e.opened_at DESC, e.id DESC), "
        "ins AS (INSERT INTO risk.daily_snapshots (day, backfilled, as_of, total_assets, "
        "  total_supply, share_price, l1_value, metrics, levels) "
        "  SELECT d.day, $2::boolean, d.t1, "
        "   (SELECT value FROM last WHERE metric = 'nav.total_assets' AND subject = ''), "
        "   (SELECT value FROM last WHERE metric = 'nav.total_supply' AND subject = ''), "
        "   (SELECT value FROM last WHERE metric = 'nav.share_price' AND subject = ''), "
        "   (SELECT value FROM last WHERE metric = 'liquidity.l1_value' AND subject = ''), "
        "   (SELECT COALESCE(jsonb_object_agg(metric, value::text), '{}') FROM last "
        "     WHERE subject = ''), "
        "   (SELECT COALESCE(jsonb_object_agg(metric, level), '{}') FROM lv) "
        "  FROM d WHERE EXISTS (SELECT 1 FROM last) "
        "  ON CONFLICT (day) DO NOTHING RETURNING day), "
        "h AS (INSERT INTO risk.asset_holdings_snapshots (day, asset, balance, value, weight_bps) "
        "  SELECT ins.day, a.subject, "
        "   max(a.value) FILTER (WHERE a.metric = 'asset.balance'), "
        "   max(a.value) FILTER (WHERE a.metric = 'asset.value'), "
        "   max(a.value) FILTER (WHERE a.metric = 'asset.weight') "
        "  FROM ins, last a WHERE a.subject <> '' GROUP BY ins.day, a.subject RETURNING 1) "
        "SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM h)",
        2, p, err, errlen);
    if (!r)
        return -1;
    *written += atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int rk_snapshot_run(db_pool *db, int64_t now_ms, char *err, size_t errlen)
{
    db_conn *c = db_acquire(db, 5000, err, errlen);
    if (!c)
        return -1;
    int written = 0, rc = -1;
    char now[32];
    envelope_format_ts(now_ms, now);
    if (db_exec(c, "BEGIN", err, errlen) != 0)
        goto out;
    if (db_exec(c, "SELECT pg_advisory_xact_lock(hashtext('risk.snapshot'))", err, errlen) != 0)
        goto out;
    /* the days to fill: after the newest snapshot (or from the first data) to yesterday */
    const char *p[2] = {now, "400"};
    PGresult *r = db_query_prepared(
        c, "rk_snap_days",
        "WITH y AS (SELECT (($1::timestamptz AT TIME ZONE 'UTC')::date - 1) AS yday), "
        "f AS (SELECT COALESCE((SELECT max(day) + 1 FROM risk.daily_snapshots), "
        "  (SELECT (min(ts) AT TIME ZONE 'UTC')::date FROM risk.risk_metrics_series)) AS d0) "
        "SELECT g::date::text, g::date < y.yday FROM y, f, "
        "generate_series(greatest(f.d0, y.yday - $2::int), y.yday, interval '1 day') g "
        "WHERE f.d0 IS NOT NULL ORDER BY 1",
        2, p, err, errlen);
    if (!r)
        goto out;
    for (int i = 0; i < PQntuples(r); i++)
        if (take_day(c, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1)[0] == 't', &written, err,
                     errlen) != 0) {
            PQclear(r);
            goto out;
        }
    PQclear(r);
    if (db_exec(c, "COMMIT", err, errlen) != 0)
        goto out;
    rc = written;
out:
    db_release(db, c); /* rolls back an open transaction */
    return rc;
}

cJSON *rk_snapshot_get(db_conn *c, const char *day, int *found, char *err, size_t errlen)
{
    *found = 0;
    const char *p[1] = {day};
    PGresult *r = db_query_prepared(
        c, "rk_snap_get",
        "SELECT json_build_object('day', s.day::text, 'as_of', to_char(s.as_of AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'taken_at', to_char(s.taken_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'backfilled', s.backfilled, "
        "'total_assets', s.total_assets::text, 'total_supply', s.total_supply::text, "
        "'share_price', s.share_price::text, 'l1_value', s.l1_value::text, "
        "'metrics', s.metrics, 'levels', s.levels, "
        "'holdings', COALESCE((SELECT json_agg(json_build_object('asset', h.asset, 'balance', "
        "h.balance::text, 'value', h.value::text, 'weight_bps', h.weight_bps::text) ORDER BY "
        "h.asset) FROM risk.asset_holdings_snapshots h WHERE h.day = s.day), '[]'::json))::text "
        "FROM risk.daily_snapshots s WHERE s.day = $1::date",
        1, p, err, errlen);
    if (!r)
        return NULL;
    cJSON *j = NULL;
    if (PQntuples(r) == 1) {
        j = cJSON_Parse(PQgetvalue(r, 0, 0));
        *found = j != NULL;
    }
    PQclear(r);
    return j;
}

/* CSV field: quoted only when it needs to be (RFC 4180). */
static void field(FILE *f, const char *s)
{
    if (!s)
        s = "";
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void line(FILE *f, const char *a, const char *b, const char *c)
{
    field(f, a);
    fputc(',', f);
    field(f, b);
    fputc(',', f);
    field(f, c);
    fputs("\r\n", f);
}

static const char *sv(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v)  ? v->valuestring
           : cJSON_IsTrue(v)  ? "true"
           : cJSON_IsFalse(v) ? "false"
                              : "";
}

char *rk_snapshot_csv(const cJSON *rep)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    line(f, "section", "key", "value");
    static const char *const FUND[] = {"day",          "as_of",       "backfilled", "total_assets",
                                       "total_supply", "share_price", "l1_value",   NULL};
    for (int i = 0; FUND[i]; i++)
        line(f, "fund", FUND[i], sv(rep, FUND[i]));
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(rep, "metrics"))
        line(f, "metric", x->string, cJSON_IsString(x) ? x->valuestring : "");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(rep, "levels"))
        line(f, "level", x->string, cJSON_IsString(x) ? x->valuestring : "");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(rep, "holdings"))
    {
        char k[120];
        static const char *const H[] = {"balance", "value", "weight_bps", NULL};
        for (int i = 0; H[i]; i++) {
            snprintf(k, sizeof k, "%s.%s", sv(x, "asset"), H[i]);
            line(f, "holding", k, sv(x, H[i]));
        }
    }
    fclose(f);
    return buf;
}
