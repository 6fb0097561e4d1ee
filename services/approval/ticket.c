/* ticket: tickets, signed votes, decisions (see ticket.h). */
#include "ticket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abi.h"
#include "eip712.h"
#include "hex.h"
#include "log.h"
#include "opsig.h"
#include "outbox.h"
#include "outmsg.h"
#include "util.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

int tkt_record(db_conn *tx, const char *ticket_id, const char *redemption_id, const char *action,
               const char *actor, cJSON *detail, char *err, size_t errlen)
{
    char *d = detail ? cJSON_PrintUnformatted(detail) : NULL;
    cJSON_Delete(detail);
    const char *p[5] = {ticket_id, redemption_id, action, actor, d ? d : "{}"};
    int rc =
        db_exec_prepared(tx, "tkt_record",
                         "INSERT INTO approval.approval_records (ticket_id, redemption_id, action, "
                         "actor, detail) VALUES ($1, $2, $3, $4, $5::jsonb)",
                         5, p, err, errlen);
    free(d);
    return rc;
}

int tkt_create(db_conn *tx, const tkt_new *n, int64_t reminder_ms, char id[TKT_ID_MAX],
               int *created, char *err, size_t errlen)
{
    char amount[MONEY_DEC_MAX], req[16], sla[24], rem[24];
    money_to_dec(&n->amount, amount, sizeof amount);
    snprintf(req, sizeof req, "%d", n->required);
    snprintf(sla, sizeof sla, "%lld", (long long)n->sla_ms);
    snprintf(rem, sizeof rem, "%lld", (long long)reminder_ms);
    char *payload = n->payload ? cJSON_PrintUnformatted(n->payload) : NULL;
    const char *p[11] = {n->kind,
                         n->ref,
                         n->redemption_id,
                         amount,
                         req,
                         n->requester ? n->requester : "",
                         n->requester_wallet,
                         n->source ? n->source : "",
                         n->reply_topic,
                         payload ? payload : "{}",
                         sla};
    PGresult *r = db_query_prepared(
        tx, "tkt_create",
        "INSERT INTO approval.approval_tickets (id, kind, ref, redemption_id, amount, "
        "required_approvals, requester, requester_wallet, source, reply_topic, payload, sla_ms) "
        "VALUES (gen_random_uuid()::text, $1, $2, $3, $4::numeric, $5::int, $6, $7, $8, $9, "
        "$10::jsonb, $11::bigint) ON CONFLICT (kind, ref) DO NOTHING RETURNING id",
        11, p, err, errlen);
    free(payload);
    if (!r)
        return -1;
    *created = PQntuples(r) == 1;
    if (*created) {
        util_strlcpy(id, PQgetvalue(r, 0, 0), TKT_ID_MAX);
        PQclear(r);
    } else {
        PQclear(r);
        const char *q[2] = {n->kind, n->ref};
        r = db_query_prepared(
            tx, "tkt_find", "SELECT id FROM approval.approval_tickets WHERE kind = $1 AND ref = $2",
            2, q, err, errlen);
        if (!r)
            return -1;
        if (PQntuples(r) != 1) {
            PQclear(r);
            return util_err(err, errlen, "ticket vanished during creation");
        }
        util_strlcpy(id, PQgetvalue(r, 0, 0), TKT_ID_MAX);
        PQclear(r);
        return 0;
    }
    if (n->reason) {
        const char *q[2] = {id, n->reason};
        if (db_exec_prepared(tx, "tkt_reason",
                             "UPDATE approval.approval_tickets SET reason = $2 WHERE id = $1", 2, q,
                             err, errlen) != 0)
            return -1;
    }
    const char *t[3] = {id, sla, rem};
    if (db_exec_prepared(
            tx, "tkt_sla",
            "INSERT INTO approval.sla_timers (ticket_id, started_at, sla_ms, next_at) "
            "VALUES ($1, now(), $2::bigint, now() + $3::bigint * interval '1 millisecond')",
            3, t, err, errlen) != 0)
        return -1;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "kind", n->kind);
    cJSON_AddStringToObject(d, "amount", amount);
    cJSON_AddNumberToObject(d, "required_approvals", n->required);
    if (tkt_record(tx, id, n->redemption_id, "created", n->requester ? n->requester : "", d, err,
                   errlen) != 0)
        return -1;
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "ticket_id", id);
    cJSON_AddStringToObject(u, "kind", n->kind);
    cJSON_AddStringToObject(u, "status", "open");
    return out_update(tx, "approval.ticket_created", id, u, err, errlen);
}

int tkt_redemption_tx(db_conn *tx, const appr_app *app, const char *redemption_id,
                      const char *decision, const char *reason, const char *actor, char *err,
                      size_t errlen)
{
    int approve = strcmp(decision, "approve") == 0;
    const char *p[1] = {redemption_id};
    PGresult *r = db_query_prepared(tx, "tkt_rid",
                                    "SELECT request_id::text FROM approval.redemption_requests "
                                    "WHERE id = $1",
                                    1, p, err, errlen);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return util_err(err, errlen, "unknown redemption %s", redemption_id);
    }
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateString(PQgetvalue(r, 0, 0)));
    PQclear(r);
    if (!approve)
        cJSON_AddItemToArray(args, cJSON_CreateString(reason ? reason : ""));
    const abi_fn *fn =
        abi_contract_fn(app->abi, approve ? "approveRedemption" : "rejectRedemption");
    if (!fn) {
        cJSON_Delete(args);
        return util_err(err, errlen, "vault ABI lacks %sRedemption",
                        approve ? "approve" : "reject");
    }
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = abi_fn_encode_call(fn, args, &data, &len, err, errlen);
    cJSON_Delete(args);
    if (rc != 0)
        return -1;
    char key[OUTBOX_MAX_KEY];
    snprintf(key, sizeof key, "%s:%s", decision, redemption_id);
    outbox_req req = {.idempotency_key = key,
                      .chain_id = app->chain_id,
                      .from = app->operator,
                      .to = app->vault,
                      .data = data,
                      .data_len = len,
                      .purpose = approve ? "approveRedemption" : "rejectRedemption"};
    rc = outbox_enqueue(tx, APPR_SCHEMA, &req, err, errlen);
    free(data);
    if (rc < 0)
        return -1;
    const char *u[3] = {redemption_id, decision, reason};
    if (db_exec_prepared(tx, "tkt_rdecide",
                         "UPDATE approval.redemption_requests SET decision = $2, reject_reason = "
                         "COALESCE($3, reject_reason), updated_at = now() WHERE id = $1",
                         3, u, err, errlen) != 0)
        return -1;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "idempotency_key", key);
    cJSON_AddStringToObject(d, "function", req.purpose);
    return tkt_record(tx, NULL, redemption_id, "tx_enqueued", actor, d, err, errlen);
}

int tkt_execute(db_conn *tx, const appr_app *app, const char *ticket_id, const char *decision,
                const char *reason, const char *actor, char *err, size_t errlen)
{
    const char *p[1] = {ticket_id};
    PGresult *r = db_query_prepared(
        tx, "tkt_exec_get",
        "SELECT kind, ref, redemption_id, COALESCE(reply_topic, 'approval.decisions'), "
        "payload::text, amount::text, (SELECT COALESCE(json_agg(actor ORDER BY id), '[]')::text "
        "FROM approval.approval_records WHERE ticket_id = t.id AND action = 'vote_approve') "
        "FROM approval.approval_tickets t WHERE id = $1",
        1, p, err, errlen);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return util_err(err, errlen, "unknown ticket");
    }
    int rc = 0;
    int approved = strcmp(decision, "approved") == 0;
    const char *kind = PQgetvalue(r, 0, 0);
    if (strcmp(kind, "redemption") == 0 && !PQgetisnull(r, 0, 2)) {
        rc = tkt_redemption_tx(tx, app, PQgetvalue(r, 0, 2), approved ? "approve" : "reject",
                               reason, actor, err, errlen);
    } else {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "ticket_id", ticket_id);
        cJSON_AddStringToObject(d, "kind", kind);
        cJSON_AddStringToObject(d, "ref", PQgetvalue(r, 0, 1));
        cJSON_AddStringToObject(d, "decision", decision);
        cJSON_AddStringToObject(d, "amount", PQgetvalue(r, 0, 5));
        cJSON_AddBoolToObject(d, "auto", strcmp(actor, "policy") == 0);
        if (reason)
            cJSON_AddStringToObject(d, "reason", reason);
        cJSON *who = cJSON_Parse(PQgetvalue(r, 0, 6));
        cJSON_AddItemToObject(d, "approvers", who ? who : cJSON_CreateArray());
        cJSON *pl = cJSON_Parse(PQgetvalue(r, 0, 4));
        cJSON_AddItemToObject(d, "payload", pl ? pl : cJSON_CreateObject());
        char id[120];
        snprintf(id, sizeof id, "approval:decision:%s", ticket_id);
        rc =
            out_enqueue(tx, PQgetvalue(r, 0, 3), BUS_HIGH, id, "approval.decision", d, err, errlen);
    }
    PQclear(r);
    if (rc != 0)
        return -1;
    if (db_exec_prepared(tx, "tkt_sla_close",
                         "UPDATE approval.sla_timers SET closed_at = now(), next_at = NULL WHERE "
                         "ticket_id = $1 AND closed_at IS NULL",
                         1, p, err, errlen) != 0)
        return -1;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "decision", decision);
    if (reason)
        cJSON_AddStringToObject(d, "reason", reason);
    if (tkt_record(tx, ticket_id, NULL, "decided", actor, d, err, errlen) != 0)
        return -1;
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "ticket_id", ticket_id);
    cJSON_AddStringToObject(u, "status", decision);
    return out_update(tx, "approval.ticket_decided", ticket_id, u, err, errlen);
}

/* ------------------------------------------------------------------ chain role check */

int tkt_has_vip_role(const appr_app *app, const uint8_t wallet[20], char *err, size_t errlen)
{
    return opsig_has_role_id(app->rpc, app->abi, app->vault, app->vip_role, wallet, err, errlen);
}

/* ------------------------------------------------------------------ votes */

static tkt_status fail(char *msg, size_t msglen, tkt_status st, const char *why)
{
    util_strlcpy(msg, why, msglen);
    return st;
}

typedef struct vote_ctx {
    const appr_app *app;
    const tkt_vote_req *v;
    uint8_t wallet[20];
    char wallet_hex[43];
    char sig_hex[140];
    tkt_status st;
    char msg[200];
} vote_ctx;

static int vote_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    vote_ctx *x = ud;
    const tkt_vote_req *v = x->v;
    x->st = TKT_OK;
    x->msg[0] = '\0';
    const char *p[1] = {v->ticket_id};
    PGresult *r = db_query_prepared(tx, "tkt_lock",
                                    "SELECT status, requester, COALESCE(requester_wallet, ''), "
                                    "required_approvals, approvals FROM approval.approval_tickets "
                                    "WHERE id = $1 FOR UPDATE",
                                    1, p, err, errlen);
    if (!r)
        return (x->st = TKT_UNAVAILABLE), -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        x->st = TKT_NOT_FOUND;
        util_strlcpy(x->msg, "no such ticket", sizeof x->msg);
        return -1;
    }
    int open = strcmp(PQgetvalue(r, 0, 0), "open") == 0;
    int self = strcmp(PQgetvalue(r, 0, 1), v->user) == 0 ||
               strcasecmp(PQgetvalue(r, 0, 2), x->wallet_hex) == 0;
    int required = atoi(PQgetvalue(r, 0, 3));
    int approvals = atoi(PQgetvalue(r, 0, 4));
    PQclear(r);
    if (!open) {
        x->st = TKT_CONFLICT;
        util_strlcpy(x->msg, "ticket is already decided", sizeof x->msg);
        return -1;
    }
    if (self) {
        x->st = TKT_FORBIDDEN;
        util_strlcpy(x->msg, "the requester cannot approve their own request", sizeof x->msg);
        return -1;
    }
    int approve = strcmp(v->decision, "approve") == 0;
    const char *ins[9] = {v->ticket_id,  approve ? "vote_approve" : "vote_reject",
                          v->user,       v->role,
                          x->wallet_hex, x->sig_hex,
                          v->nonce,      v->deadline,
                          v->reason};
    r = db_query_prepared(tx, "tkt_vote",
                          "INSERT INTO approval.approval_records (ticket_id, action, actor, "
                          "actor_role, wallet, signature, nonce, deadline, detail) VALUES ($1, $2, "
                          "$3, $4, $5, $6, $7::numeric, $8::bigint, CASE WHEN $9::text IS NULL "
                          "THEN '{}'::jsonb ELSE jsonb_build_object('reason', $9::text) END)",
                          9, ins, err, errlen);
    if (!r) {
        if (strcmp(db_last_sqlstate(tx), "23505") == 0) {
            x->st = TKT_CONFLICT;
            util_strlcpy(x->msg, "this approver (or this nonce) has already voted", sizeof x->msg);
        } else {
            x->st = TKT_UNAVAILABLE;
        }
        return -1;
    }
    PQclear(r);
    const char *decided = NULL;
    if (!approve)
        decided = "rejected";
    else if (approvals + 1 >= required)
        decided = "approved";
    const char *u[2] = {v->ticket_id, decided};
    r = db_query_prepared(tx, "tkt_count",
                          "UPDATE approval.approval_tickets SET approvals = approvals + "
                          "CASE WHEN $2::text IS DISTINCT FROM 'rejected' THEN 1 ELSE 0 END, "
                          "status = COALESCE($2, status), decided_at = CASE WHEN $2::text IS NULL "
                          "THEN NULL ELSE now() END, updated_at = now() WHERE id = $1",
                          2, u, err, errlen);
    if (!r)
        return (x->st = TKT_UNAVAILABLE), -1;
    PQclear(r);
    if (decided && tkt_execute(tx, x->app, v->ticket_id, decided, approve ? NULL : v->reason,
                               v->user, err, errlen) != 0)
        return (x->st = TKT_UNAVAILABLE), -1;
    return 0;
}

tkt_status tkt_vote(const appr_app *app, const tkt_vote_req *v, cJSON **ticket, char *msg,
                    size_t msglen)
{
    if (ticket)
        *ticket = NULL;
    if (!v->ticket_id || !*v->ticket_id || strlen(v->ticket_id) > 256)
        return fail(msg, msglen, TKT_BAD_REQUEST, "invalid ticket id");
    if (!v->decision || (strcmp(v->decision, "approve") && strcmp(v->decision, "reject")))
        return fail(msg, msglen, TKT_BAD_REQUEST, "decision must be approve or reject");
    int approve = strcmp(v->decision, "approve") == 0;
    if (!approve && (!v->reason || !*v->reason || strlen(v->reason) > 1000))
        return fail(msg, msglen, TKT_BAD_REQUEST, "a rejection needs a reason (1..1000 bytes)");
    if (!v->user || !*v->user || strlen(v->user) > 128)
        return fail(msg, msglen, TKT_FORBIDDEN, "missing X-Paimon-User");
    if (pol_role_rank(v->role) < pol_role_rank("operator"))
        return fail(msg, msglen, TKT_FORBIDDEN, "an off-chain role of operator or above is needed");
    vote_ctx x = {.app = app, .v = v};
    if (!v->wallet || hex_addr_parse(v->wallet, x.wallet, NULL, 0) != 0)
        return fail(msg, msglen, TKT_FORBIDDEN, "missing or invalid X-Paimon-Wallet");
    hex_encode(x.wallet, 20, 1, x.wallet_hex, sizeof x.wallet_hex);
    money_u256 nonce, deadline;
    uint64_t dl = 0;
    if (!v->nonce || money_from_dec(&nonce, v->nonce, NULL, 0) != 0)
        return fail(msg, msglen, TKT_BAD_REQUEST, "nonce must be a decimal uint256");
    if (!v->deadline || money_from_dec(&deadline, v->deadline, NULL, 0) != 0 ||
        money_to_u64(&deadline, &dl) != 0 || dl > (uint64_t)INT64_MAX / 1000)
        return fail(msg, msglen, TKT_BAD_REQUEST, "deadline must be unix seconds");
    uint8_t sig[65];
    if (!v->signature || hex_decode_fixed(v->signature, sig, 65, NULL, 0) != 0)
        return fail(msg, msglen, TKT_BAD_REQUEST, "signature must be 65 bytes of hex");
    hex_encode(sig, 65, 1, x.sig_hex, sizeof x.sig_hex);
    if ((int64_t)dl * 1000 <= v->now_ms)
        return fail(msg, msglen, TKT_BAD_SIGNATURE, "signature deadline has passed");

    char err[UTIL_ERRLEN];
    db_conn *c = db_acquire(app->db, 2000, err, sizeof err);
    if (!c)
        return fail(msg, msglen, TKT_UNAVAILABLE, "database unavailable");
    pol_policy pol;
    int prc = pol_load(c, &pol, err, sizeof err);
    db_release(app->db, c);
    if (prc != 0)
        return fail(msg, msglen, TKT_UNAVAILABLE, "policies unavailable");
    if ((int64_t)dl * 1000 > v->now_ms + pol.vote_max_deadline_s * 1000)
        return fail(msg, msglen, TKT_BAD_REQUEST, "signature deadline is too far ahead");

    uint8_t vault[20];
    hex_addr_parse(app->vault, vault, NULL, 0);
    cJSON *typed = eip712_approval_new(app->chain_id, vault, v->ticket_id, v->decision, &nonce,
                                       &deadline, err, sizeof err);
    if (!typed)
        return fail(msg, msglen, TKT_BAD_REQUEST, "cannot build the typed data");
    int ok = eip712_verify(typed, sig, x.wallet, err, sizeof err);
    cJSON_Delete(typed);
    if (ok != 0)
        return fail(msg, msglen, TKT_BAD_SIGNATURE,
                    "signature is not a valid Approval signature by X-Paimon-Wallet");
    int role = tkt_has_vip_role(app, x.wallet, err, sizeof err);
    if (role < 0) {
        log_warn("hasRole failed", "error", err);
        return fail(msg, msglen, TKT_UNAVAILABLE, "chain unavailable for the role check");
    }
    if (role == 0)
        return fail(msg, msglen, TKT_FORBIDDEN, "wallet does not hold VIP_APPROVER_ROLE");

    int rc = db_tx(app->db, vote_tx, &x, err, sizeof err);
    if (rc != 0) {
        if (x.st == TKT_OK || x.st == TKT_UNAVAILABLE) {
            log_error("vote failed", "ticket", v->ticket_id, "error", err);
            return fail(msg, msglen, TKT_UNAVAILABLE, "vote could not be recorded");
        }
        return fail(msg, msglen, x.st, x.msg);
    }
    if (ticket) {
        c = db_acquire(app->db, 2000, err, sizeof err);
        if (c) {
            int found = 0;
            *ticket = tkt_get_json(c, v->ticket_id, 0, &found, err, sizeof err);
            db_release(app->db, c);
        }
    }
    msg[0] = '\0';
    return TKT_OK;
}

/* ------------------------------------------------------------------ reads */

cJSON *tkt_get_json(db_conn *c, const char *id, int with_records, int *found, char *err,
                    size_t errlen)
{
    *found = 0;
    const char *p[1] = {id};
    PGresult *r = db_query_prepared(
        c, "tkt_get",
        "SELECT json_build_object('id', id, 'kind', kind, 'ref', ref, 'redemption_id', "
        "redemption_id, 'amount', amount::text, 'required_approvals', required_approvals, "
        "'approvals', approvals, 'status', status, 'requester', requester, 'requester_wallet', "
        "requester_wallet, 'source', source, 'payload', payload, 'reason', reason, 'sla_ms', "
        "sla_ms, 'created_at', " TS("created_at") ", 'decided_at', " TS(
            "decided_at") ")::text "
                          "FROM approval.approval_tickets WHERE id = $1",
        1, p, err, errlen);
    if (!r) {
        *found = 1;
        return NULL;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        return NULL;
    }
    *found = 1;
    cJSON *t = cJSON_Parse(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!t) {
        util_err(err, errlen, "bad ticket json");
        return NULL;
    }
    if (with_records) {
        r = db_query_prepared(
            c, "tkt_records",
            "SELECT COALESCE(json_agg(json_build_object('id', id, 'action', action, 'actor', "
            "actor, 'actor_role', actor_role, 'wallet', wallet, 'signature', signature, 'nonce', "
            "nonce::text, 'deadline', deadline, 'detail', detail, 'at', " TS(
                "at") ") ORDER BY "
                      "id), '[]')::text FROM approval.approval_records WHERE ticket_id = $1",
            1, p, err, errlen);
        if (!r) {
            cJSON_Delete(t);
            return NULL;
        }
        cJSON *rec = cJSON_Parse(PQgetvalue(r, 0, 0));
        PQclear(r);
        cJSON_AddItemToObject(t, "records", rec ? rec : cJSON_CreateArray());
    }
    return t;
}
