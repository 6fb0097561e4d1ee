/* events: chain.events and approval.decisions handlers (see events.h). */
#include "risk/events.h"

#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"
#include "risk/app.h"
#include "risk/emergency.h"
#include "util.h"

static const char *arg(const envelope *m, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(m->payload, "args"), name));
}

static int digits(const char *s, size_t max)
{
    if (!s || !*s || strlen(s) > max)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

int rk_event_triggers(const char *type)
{
    static const char *const T[] = {"chain.deposit",
                                    "chain.withdraw",
                                    "chain.redemption_",
                                    "chain.redeem_",
                                    "chain.asset_",
                                    "chain.nav_updated",
                                    "chain.emergency_mode_changed",
                                    NULL};
    for (int i = 0; T[i]; i++)
        if (strncmp(type, T[i], strlen(T[i])) == 0)
            return 1;
    return 0;
}

static int exec(db_conn *tx, const char *name, const char *sql, int n, const char *const *p,
                char *err, size_t errlen)
{
    PGresult *r = db_query_prepared(tx, name, sql, n, p, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static int status_move(db_conn *tx, const char *id, const char *to, const char *const *from,
                       char *err, size_t errlen)
{
    /* only forward moves: a redelivered older event never rolls a request back */
    char set[80] = "{";
    for (int i = 0; from[i]; i++) {
        strcat(set, i ? "," : "");
        strcat(set, from[i]);
    }
    strcat(set, "}");
    const char *p[3] = {id, to, set};
    return exec(tx, "rk_req_move",
                "UPDATE risk.redemption_requests SET status = $2, updated_at = now() WHERE "
                "request_id = $1::numeric AND status = ANY($3::text[])",
                3, p, err, errlen);
}

int rk_chain_event(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen)
{
    rk_app *app = ud;
    const char *type = msg->type;
    size_t tl = strlen(type);
    int removed = tl > 8 && strcmp(type + tl - 8, ".removed") == 0;
    char base[80];
    util_strlcpy(base, type, sizeof base);
    if (removed && tl - 8 < sizeof base)
        base[tl - 8] = '\0';
    if (strncmp(base, "chain.redemption_", 17) == 0) {
        const char *what = base + 17;
        const char *rid = arg(msg, "requestId");
        if (!digits(rid, 78))
            return util_err(err, errlen, "%s without a valid requestId", type), BUS_FATAL;
        if (strcmp(what, "requested") == 0) {
            if (removed) {
                const char *orig = cJSON_GetStringValue(
                    cJSON_GetObjectItemCaseSensitive(msg->payload, "original_id"));
                const char *p[2] = {rid, orig ? orig : ""};
                if (exec(tx, "rk_req_del",
                         "DELETE FROM risk.redemption_requests WHERE request_id = $1::numeric AND "
                         "($2 = '' OR event_id = $2)",
                         2, p, err, errlen) != 0)
                    return BUS_RETRY;
            } else {
                const char *gross = arg(msg, "grossAssets"), *fee = arg(msg, "fee"),
                           *ch = arg(msg, "channel"), *st = arg(msg, "settleTime");
                const char *bt = cJSON_GetStringValue(
                    cJSON_GetObjectItemCaseSensitive(msg->payload, "block_time"));
                if (!digits(gross, 78) || !digits(fee ? fee : "0", 78) || !digits(ch, 3) ||
                    !digits(st, 19) || !bt || strlen(bt) > 40)
                    return util_err(err, errlen, "malformed RedemptionRequested"), BUS_FATAL;
                const char *p[7] = {rid, gross, fee ? fee : "0", ch, bt, st, msg->id};
                if (exec(tx, "rk_req_ins",
                         "INSERT INTO risk.redemption_requests (request_id, gross_assets, fee, "
                         "channel, requested_at, settle_at, status, event_id) VALUES "
                         "($1::numeric, $2::numeric, $3::numeric, $4::smallint, $5::timestamptz, "
                         "to_timestamp($6::bigint), 'pending', $7) ON CONFLICT (request_id) DO "
                         "NOTHING",
                         7, p, err, errlen) != 0)
                    return BUS_RETRY;
            }
        } else {
            static const char *const PEND[] = {"pending", NULL};
            static const char *const OPEN[] = {"pending", "approved", NULL};
            static const char *const APPR[] = {"approved", NULL};
            static const char *const DONE_S[] = {"settled", NULL};
            static const char *const DONE_R[] = {"rejected", NULL};
            static const char *const DONE_C[] = {"cancelled", NULL};
            int rc = 0;
            if (!strcmp(what, "approved"))
                rc = removed ? status_move(tx, rid, "pending", APPR, err, errlen)
                             : status_move(tx, rid, "approved", PEND, err, errlen);
            else if (!strcmp(what, "settled"))
                rc = removed ? status_move(tx, rid, "approved", DONE_S, err, errlen)
                             : status_move(tx, rid, "settled", OPEN, err, errlen);
            else if (!strcmp(what, "rejected"))
                rc = removed ? status_move(tx, rid, "pending", DONE_R, err, errlen)
                             : status_move(tx, rid, "rejected", OPEN, err, errlen);
            else if (!strcmp(what, "cancelled"))
                rc = removed ? status_move(tx, rid, "pending", DONE_C, err, errlen)
                             : status_move(tx, rid, "cancelled", OPEN, err, errlen);
            if (rc != 0)
                return BUS_RETRY;
        }
    }
    if (app && rk_event_triggers(type))
        atomic_store(&app->dirty, 1);
    return BUS_OK;
}

int rk_decision(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen)
{
    rk_app *app = ud;
    const cJSON *p = msg->payload;
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "kind"));
    const char *ref = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "ref"));
    const char *decision = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "decision"));
    const char *ticket = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "ticket_id"));
    if (!kind || strcmp(kind, "emergency_mode") != 0 || !ref ||
        strncmp(ref, "risk:emergency:", 15) != 0)
        return BUS_OK; /* another service's ticket */
    if (!digits(ref + 15, 18) || !decision ||
        (strcmp(decision, "approved") != 0 && strcmp(decision, "rejected") != 0) ||
        (ticket && strlen(ticket) > 64))
        return util_err(err, errlen, "malformed emergency decision"), BUS_FATAL;
    int rc =
        rk_emergency_decide(tx, app, strtoll(ref + 15, NULL, 10), decision, ticket, err, errlen);
    if (rc < 0)
        return BUS_RETRY;
    if (rc == RK_EMERG_UNKNOWN)
        log_warn("decision for an unknown emergency ignored", "ref", ref);
    return BUS_OK;
}
