/* emergency: executing an approved emergency ticket (see emergency.h). */
#include "risk/emergency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hex.h"
#include "log.h"
#include "outbox.h"
#include "risk/outmsg.h"
#include "util.h"

void rk_emergency_tx_key(long long id, char *out, size_t outlen)
{
    snprintf(out, outlen, "risk:emergency:%lld:on", id);
}

int rk_emergency_mode_read(rk_app *app, int *on, char *err, size_t errlen)
{
    const abi_fn *fn = app->vault_abi ? abi_contract_fn(app->vault_abi, "emergencyMode") : NULL;
    if (!fn)
        return util_err(err, errlen, "vault ABI lacks emergencyMode");
    uint8_t *data = NULL, *res = NULL;
    size_t len = 0, rlen = 0;
    cJSON *none = cJSON_CreateArray();
    int rc = abi_fn_encode_call(fn, none, &data, &len, err, errlen);
    cJSON_Delete(none);
    if (rc != 0)
        return -1;
    char *hex = hex_encode_new(data, len, 1);
    free(data);
    rpc_error e;
    rpc_error_init(&e);
    rc = rpc_eth_call(app->rpc, app->vault, hex, RPC_BLOCK_LATEST, &res, &rlen, &e);
    free(hex);
    if (rc != 0)
        return util_err(err, errlen, "emergencyMode(): %s", e.message);
    cJSON *out = abi_fn_decode_result(fn, res, rlen, 0, err, errlen);
    free(res);
    if (!out)
        return -1;
    const cJSON *v = cJSON_GetArrayItem(out, 0);
    rc = cJSON_IsBool(v) ? 0 : util_err(err, errlen, "emergencyMode(): not a bool");
    *on = cJSON_IsTrue(v);
    cJSON_Delete(out);
    return rc;
}

static int note(db_conn *tx, const char *id, const char *key, const char *text, char *err,
                size_t errlen)
{
    const char *p[3] = {id, key, text};
    PGresult *r = db_query_prepared(tx, "rk_emerg_note",
                                    "UPDATE risk.risk_emergencies SET tx_key = $2, tx_note = $3 "
                                    "WHERE id = $1::bigint",
                                    3, p, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static int queue_tx(db_conn *tx, rk_app *app, long long id, const char *ids, char *err,
                    size_t errlen)
{
    const abi_fn *fn = abi_contract_fn(app->vault_abi, "setEmergencyMode");
    if (!fn)
        return util_err(err, errlen, "vault ABI lacks setEmergencyMode");
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateBool(1));
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = abi_fn_encode_call(fn, args, &data, &len, err, errlen);
    cJSON_Delete(args);
    if (rc != 0)
        return -1;
    char key[OUTBOX_MAX_KEY];
    rk_emergency_tx_key(id, key, sizeof key);
    outbox_req req = {.idempotency_key = key,
                      .chain_id = app->chain_id,
                      .from = app->signer,
                      .to = app->vault,
                      .data = data,
                      .data_len = len,
                      .purpose = "setEmergencyMode(true)"};
    rc = outbox_enqueue(tx, RK_SCHEMA, &req, err, errlen);
    free(data);
    if (rc < 0)
        return -1;
    if (note(tx, ids, key, "setEmergencyMode(true) queued", err, errlen) != 0)
        return -1;
    log_warn("emergency mode approved: setEmergencyMode(true) queued", "emergency", ids,
             "idempotency_key", key, "from", app->signer);
    return 0;
}

static int no_signer_alert(db_conn *tx, const char *ids, char *err, size_t errlen)
{
    char msg[300], key[80];
    snprintf(msg, sizeof msg,
             "Emergency %s was approved but paimon-risk has no transaction signer: turn "
             "emergency mode on by hand (setEmergencyMode(true), OPERATOR_ROLE)",
             ids);
    snprintf(key, sizeof key, "risk:emergency:%s:no_signer", ids);
    cJSON *labels = cJSON_CreateObject();
    cJSON_AddStringToObject(labels, "emergency", ids);
    return rk_out_alert(tx, "critical", "Emergency mode approved but not sent", msg, key,
                        "everyone", 0, labels, err, errlen);
}

int rk_emergency_decide(db_conn *tx, rk_app *app, long long id, const char *decision,
                        const char *ticket_id, char *err, size_t errlen)
{
    int approved = strcmp(decision, "approved") == 0;
    if (!approved && strcmp(decision, "rejected") != 0)
        return util_err(err, errlen, "unknown decision %.40s", decision);
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    /* only over a NULL decision: the row lock taken here also serialises two consumers
     * handling copies of the same decision, so only one of them reaches the outbox */
    const char *p[2] = {ids, decision};
    PGresult *r = db_query_prepared(tx, "rk_emerg_decide",
                                    "UPDATE risk.risk_emergencies SET decision = $2, decided_at = "
                                    "now() WHERE id = $1::bigint AND decision IS NULL RETURNING "
                                    "status",
                                    2, p, err, errlen);
    if (!r)
        return -1;
    int found = PQntuples(r) == 1;
    int active = found && strcmp(PQgetvalue(r, 0, 0), "active") == 0;
    PQclear(r);
    if (!found) {
        const char *q[1] = {ids};
        r = db_query_prepared(tx, "rk_emerg_exists",
                              "SELECT 1 FROM risk.risk_emergencies WHERE id = $1::bigint", 1, q,
                              err, errlen);
        if (!r)
            return -1;
        int exists = PQntuples(r) == 1;
        PQclear(r);
        return exists ? RK_EMERG_DUPLICATE : RK_EMERG_UNKNOWN;
    }
    log_info("emergency ticket decided", "emergency", ids, "decision", decision, "ticket",
             ticket_id ? ticket_id : "");
    if (!approved)
        return RK_EMERG_REJECTED;
    if (!active) {
        /* Turning emergency mode on after the crisis has passed would only penalise
         * redemptions; operators can still do it by hand. */
        if (note(tx, ids, NULL, "approved after the emergency was resolved: nothing sent", err,
                 errlen) != 0)
            return -1;
        return RK_EMERG_NOT_ACTIVE;
    }
    if (!app || !app->signer[0]) {
        if (note(tx, ids, NULL, "no transaction signer configured: nothing sent", err, errlen) !=
                0 ||
            no_signer_alert(tx, ids, err, errlen) != 0)
            return -1;
        log_error("emergency mode approved but risk has no signer", "emergency", ids);
        return RK_EMERG_NO_SIGNER;
    }
    int on = 0;
    if (rk_emergency_mode_read(app, &on, err, errlen) != 0)
        return -1;
    if (on) {
        if (note(tx, ids, NULL, "emergency mode already on: nothing sent", err, errlen) != 0)
            return -1;
        return RK_EMERG_ALREADY_ON;
    }
    return queue_tx(tx, app, id, ids, err, errlen) != 0 ? -1 : RK_EMERG_QUEUED;
}
