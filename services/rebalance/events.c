/* events: bus handlers of the rebalance service (see events.h). */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "store.h"
#include "util.h"

static const char *pstr(const envelope *m, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(m->payload, k));
}

int events_chain(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen)
{
    rb_app *app = ud;
    const char *t = msg->type;
    const char *addr = pstr(msg, "address");
    /* Only the vault's own events matter here. */
    if (!addr || strcmp(addr, app->vault) != 0)
        return BUS_OK;
    if (strncmp(t, "chain.asset_added", 17) == 0 || strncmp(t, "chain.asset_removed", 19) == 0 ||
        strncmp(t, "chain.asset_target_changed", 26) == 0) {
        if (store_asset_event(tx, t, msg->payload, err, errlen) != 0)
            return BUS_FATAL;
        if (strstr(t, ".removed") || strcmp(t, "chain.asset_removed") == 0)
            return BUS_OK;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "reason", "asset configuration changed on chain");
        cJSON_AddStringToObject(d, "event_id", msg->id);
        return store_trigger_add(tx, "deviation", d, NULL, NULL, 1, err, errlen) < 0 ? BUS_RETRY
                                                                                     : BUS_OK;
    }
    if (strcmp(t, "chain.deposit") == 0) {
        const char *assets = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(msg->payload, "args"), "assets"));
        money_u256 v;
        if (!assets || money_from_dec(&v, assets, err, errlen) != 0)
            return BUS_FATAL;
        if (money_cmp(&v, &app->large_deposit) <= 0)
            return BUS_OK;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "assets", assets);
        cJSON_AddStringToObject(d, "event_id", msg->id);
        char src[300];
        snprintf(src, sizeof src, "deposit:%s", msg->id);
        return store_trigger_add(tx, "large_deposit", d, NULL, src, 0, err, errlen) < 0 ? BUS_RETRY
                                                                                        : BUS_OK;
    }
    return BUS_OK;
}

int events_decision(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen)
{
    (void)ud;
    const char *kind = pstr(msg, "kind"), *ref = pstr(msg, "ref"), *dec = pstr(msg, "decision");
    if (!kind || strcmp(kind, "rebalance") != 0)
        return BUS_OK;
    if (!ref || !dec || (strcmp(dec, "approved") != 0 && strcmp(dec, "rejected") != 0))
        return util_err(err, errlen, "decision without ref or decision"), BUS_FATAL;
    char *approval = cJSON_PrintUnformatted(msg->payload);
    const char *status = strcmp(dec, "approved") == 0 ? "approved" : "rejected";
    const char *p[3] = {ref, status, approval};
    PGresult *r = db_query_prepared(
        tx, "rb_decision",
        "UPDATE rebalance.rebalance_history SET status = $2, approval = $3::jsonb, updated_at = "
        "now(), finished_at = CASE WHEN $2 = 'rejected' THEN now() END, error = CASE WHEN $2 = "
        "'rejected' THEN 'rejected by approval' ELSE error END WHERE id = $1 AND status = "
        "'awaiting_approval' RETURNING id",
        3, p, err, errlen);
    free(approval);
    if (!r)
        return BUS_RETRY;
    int changed = PQntuples(r) == 1;
    PQclear(r);
    /* A decision for a plan that is no longer waiting (duplicate, or it already failed) is a
     * no-op. */
    if (changed && store_out_update(tx, ref, status, err, errlen) != 0)
        return BUS_RETRY;
    return BUS_OK;
}

int events_liquidity(db_conn *tx, const envelope *msg, void *ud, char *err, size_t errlen)
{
    (void)ud;
    if (strcmp(msg->type, "liquidity.request") != 0)
        return BUS_OK;
    money_u256 needed, l1, target;
    if (money_from_dec(&needed, pstr(msg, "needed") ? pstr(msg, "needed") : "", err, errlen) != 0 ||
        money_from_dec(&l1, pstr(msg, "l1_balance") ? pstr(msg, "l1_balance") : "", err, errlen) !=
            0 ||
        money_add(&target, &l1, &needed) != 0)
        return BUS_FATAL;
    cJSON *d = cJSON_Duplicate(msg->payload, 1);
    cJSON_AddStringToObject(d, "message_id", msg->id);
    cJSON_AddStringToObject(d, "source", msg->source);
    char src[300];
    snprintf(src, sizeof src, "liquidity:%s", msg->id);
    const char *kind = strcmp(msg->source, "risk") == 0 ? "risk" : "liquidity";
    return store_trigger_add(tx, kind, d, &target, src, 0, err, errlen) < 0 ? BUS_RETRY : BUS_OK;
}
