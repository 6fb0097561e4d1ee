/* book: the redemption book from chain.events, tickets from approval.requests (see book.h). */
#include "book.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "hex.h"
#include "log.h"
#include "money.h"
#include "outmsg.h"
#include "policy.h"
#include "ticket.h"
#include "util.h"

#define TYPE_PREFIX "chain.redemption_"

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* RFC 3339 UTC ("2026-01-02T03:04:05Z", optional .fff) -> epoch ms. Chain block times
 * come from the listener in exactly this form. */
int book_parse_time(const char *s, int64_t *out)
{
    if (!s)
        return -1;
    struct tm tm = {0};
    int ms = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n != 19)
        return -1;
    const char *p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (strcmp(p, "Z") != 0 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    *out = (int64_t)t * 1000 + ms;
    return 0;
}

static int update_evt(db_conn *tx, const char *rid, const char *status, char *err, size_t errlen)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "redemption_id", rid);
    cJSON_AddStringToObject(u, "status", status);
    return out_update(tx, "redemption.updated", rid, u, err, errlen);
}

/* A request's identity: one vault can be redeployed, chains differ. */
static void redemption_id(char *out, size_t len, uint64_t chain_id, const char *vault,
                          const char *request_id)
{
    snprintf(out, len, "%llu:%s:%s", (unsigned long long)chain_id, vault, request_id);
}

static int valid_uint(const char *s, money_u256 *out)
{
    money_u256 tmp;
    return s && money_from_dec(out ? out : &tmp, s, NULL, 0) == 0 ? 0 : -1;
}

static int valid_addr(const char *s)
{
    uint8_t a[20];
    return s && hex_addr_parse(s, a, NULL, 0) == 0 ? 0 : -1;
}

static void lower(char *dst, const char *src, size_t len)
{
    size_t i = 0;
    for (; src[i] && i + 1 < len; i++)
        dst[i] = (char)((src[i] >= 'A' && src[i] <= 'Z') ? src[i] + 32 : src[i]);
    dst[i] = '\0';
}

/* ------------------------------------------------------------------ RedemptionRequested */

static int on_requested(db_conn *tx, const appr_app *app, const envelope *m, const cJSON *args,
                        char *err, size_t errlen)
{
    const cJSON *p = m->payload;
    const char *req = str(args, "requestId"), *controller = str(args, "controller"),
               *owner = str(args, "owner"), *channel = str(args, "channel"),
               *shares = str(args, "shares"), *gross_s = str(args, "grossAssets"),
               *fee_s = str(args, "fee"), *settle = str(args, "settleTime");
    money_u256 gross, fee, net, settle_t;
    int64_t bt_ms;
    if (valid_uint(req, NULL) || valid_addr(controller) || valid_addr(owner) ||
        valid_uint(shares, NULL) || valid_uint(gross_s, &gross) || valid_uint(fee_s, &fee) ||
        valid_uint(settle, &settle_t) || !channel ||
        (strcmp(channel, "0") && strcmp(channel, "1")) ||
        book_parse_time(str(p, "block_time"), &bt_ms) != 0 || !str(p, "block_hash") ||
        !str(p, "tx_hash"))
        return util_err(err, errlen, "malformed RedemptionRequested payload"), BUS_FATAL;
    if (money_sub(&net, &gross, &fee) != 0)
        return util_err(err, errlen, "fee above gross assets"), BUS_FATAL;
    uint64_t settle_s = 0;
    if (money_to_u64(&settle_t, &settle_s) != 0 || settle_s > (uint64_t)INT64_MAX / 1000)
        return util_err(err, errlen, "settleTime out of range"), BUS_FATAL;
    int emergency = strcmp(channel, "1") == 0;

    pol_policy pol;
    if (pol_load(tx, &pol, err, errlen) != 0)
        return BUS_RETRY;
    pol_kind kind = emergency ? POL_EMERGENCY : POL_STANDARD;
    int ticket = pol_needs_ticket(&pol, kind, &gross);

    char rid[160], net_s[MONEY_DEC_MAX], bt[24], due[24], cst[24], bn[24], own[43], ctl[43];
    redemption_id(rid, sizeof rid, app->chain_id, app->vault, req);
    money_to_dec(&net, net_s, sizeof net_s);
    snprintf(bt, sizeof bt, "%lld", (long long)bt_ms);
    snprintf(due, sizeof due, "%lld", (long long)pol_due_ms(&pol, emergency, bt_ms));
    snprintf(cst, sizeof cst, "%llu", (unsigned long long)settle_s * 1000ULL);
    snprintf(bn, sizeof bn, "%.0f", cJSON_GetNumberValue(cJSON_GetObjectItem(p, "block_number")));
    lower(own, owner, sizeof own);
    lower(ctl, controller, sizeof ctl);
    char cid[24];
    snprintf(cid, sizeof cid, "%llu", (unsigned long long)app->chain_id);
    const char *ins[19] = {rid,
                           cid,
                           app->vault,
                           req,
                           emergency ? "emergency" : "standard",
                           own,
                           ctl,
                           shares,
                           gross_s,
                           fee_s,
                           net_s,
                           ticket ? "ticket" : "auto",
                           bt,
                           due,
                           cst,
                           bn,
                           str(p, "block_hash"),
                           str(p, "tx_hash"),
                           m->id};
    PGresult *r = db_query_prepared(
        tx, "book_insert",
        "INSERT INTO approval.redemption_requests (id, chain_id, vault, request_id, channel, "
        "owner, receiver, shares, gross_assets, fee, net_assets, approval_mode, requested_at, "
        "due_at, chain_settle_at, block_number, block_hash, tx_hash, event_id) VALUES ($1, "
        "$2::bigint, $3, $4::numeric, $5, $6, $7, $8::numeric, $9::numeric, $10::numeric, "
        "$11::numeric, $12, to_timestamp($13::bigint / 1000.0), to_timestamp($14::bigint / "
        "1000.0), to_timestamp($15::bigint / 1000.0), $16::bigint, $17, $18, $19) ON CONFLICT "
        "(chain_id, vault, request_id) DO NOTHING RETURNING id",
        19, ins, err, errlen);
    if (!r)
        return BUS_RETRY;
    int created = PQntuples(r) == 1;
    PQclear(r);
    if (!created) {
        /* The same request again under another event id: after a reorg re-included it, a
         * row marked removed comes back to life; anything else is a duplicate. */
        const char *q[5] = {rid, bn, str(p, "block_hash"), str(p, "tx_hash"), m->id};
        r = db_query_prepared(tx, "book_revive",
                              "UPDATE approval.redemption_requests SET status = 'pending', "
                              "block_number = $2::bigint, block_hash = $3, tx_hash = $4, "
                              "event_id = $5, updated_at = now() WHERE id = $1 AND status = "
                              "'removed' RETURNING ticket_id",
                              5, q, err, errlen);
        if (!r)
            return BUS_RETRY;
        int revived = PQntuples(r) == 1;
        char tid[TKT_ID_MAX] = "";
        if (revived && !PQgetisnull(r, 0, 0))
            util_strlcpy(tid, PQgetvalue(r, 0, 0), sizeof tid);
        PQclear(r);
        if (!revived)
            return BUS_OK;
        if (*tid) {
            const char *t[1] = {tid};
            if (db_exec_prepared(
                    tx, "book_reopen",
                    "UPDATE approval.approval_tickets SET status = 'open', decided_at = NULL, "
                    "updated_at = now() WHERE id = $1 AND status = 'cancelled'",
                    1, t, err, errlen) != 0 ||
                db_exec_prepared(
                    tx, "book_reopen_sla",
                    "UPDATE approval.sla_timers SET closed_at = NULL, step = 0, started_at = "
                    "now(), next_at = now() WHERE ticket_id = $1",
                    1, t, err, errlen) != 0)
                return BUS_RETRY;
        }
        if (tkt_record(tx, *tid ? tid : NULL, rid, "reorg_reincluded", "chain", NULL, err,
                       errlen) != 0 ||
            update_evt(tx, rid, "pending", err, errlen) != 0)
            return BUS_RETRY;
        return BUS_OK;
    }

    if (!ticket) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "gross_assets", gross_s);
        cJSON_AddStringToObject(d, "channel", emergency ? "emergency" : "standard");
        cJSON_AddStringToObject(d, "rule", "amount at or below the channel threshold");
        if (tkt_record(tx, NULL, rid, "auto_approved", "policy", d, err, errlen) != 0 ||
            tkt_redemption_tx(tx, app, rid, "approve", NULL, "policy", err, errlen) != 0)
            return BUS_RETRY;
    } else {
        cJSON *pl = cJSON_CreateObject();
        cJSON_AddStringToObject(pl, "redemption_id", rid);
        cJSON_AddStringToObject(pl, "request_id", req);
        cJSON_AddStringToObject(pl, "channel", emergency ? "emergency" : "standard");
        cJSON_AddStringToObject(pl, "owner", own);
        cJSON_AddStringToObject(pl, "receiver", ctl);
        cJSON_AddStringToObject(pl, "gross_assets", gross_s);
        cJSON_AddStringToObject(pl, "net_assets", net_s);
        int64_t sla = pol_sla_ms(&pol, kind);
        tkt_new n = {.kind = "redemption",
                     .ref = rid,
                     .redemption_id = rid,
                     .amount = gross,
                     .required = pol_required_approvals(&pol, &gross),
                     .sla_ms = sla,
                     .requester = own,
                     .requester_wallet = own,
                     .source = "chain",
                     .reason = emergency ? "emergency redemption above threshold"
                                         : "standard redemption above threshold",
                     .payload = pl};
        char tid[TKT_ID_MAX];
        int made = 0;
        int rc = tkt_create(tx, &n, pol_sla_step_ms(&pol, 0, sla, 1), tid, &made, err, errlen);
        cJSON_Delete(pl);
        if (rc != 0)
            return BUS_RETRY;
        const char *u[2] = {rid, tid};
        if (db_exec_prepared(tx, "book_set_ticket",
                             "UPDATE approval.redemption_requests SET ticket_id = $2 WHERE id = $1",
                             2, u, err, errlen) != 0)
            return BUS_RETRY;
    }
    return update_evt(tx, rid, "pending", err, errlen) == 0 ? BUS_OK : BUS_RETRY;
}

/* ------------------------------------------------------------------ later events */

/* Whether the book expects `to` after `from` (the vault's lifecycle). */
static int expected(const char *from, const char *to)
{
    if (!strcmp(to, "approved"))
        return !strcmp(from, "pending");
    if (!strcmp(to, "rejected"))
        return !strcmp(from, "pending") || !strcmp(from, "approved");
    if (!strcmp(to, "settled"))
        return !strcmp(from, "approved");
    if (!strcmp(to, "cancelled"))
        return !strcmp(from, "pending");
    return 0;
}

static int alert_reconcile(db_conn *tx, const char *severity, const char *rid, const char *title,
                           const char *message, char *err, size_t errlen)
{
    cJSON *labels = cJSON_CreateObject();
    cJSON_AddStringToObject(labels, "redemption_id", rid);
    char key[200];
    snprintf(key, sizeof key, "approval.reconcile:%.150s", rid);
    return out_alert(tx, severity, "approval.reconcile", title, message, key, labels, err, errlen);
}

static int close_ticket(db_conn *tx, const char *tid, const char *status, const char *rid,
                        const char *why, char *err, size_t errlen)
{
    const char *p[2] = {tid, status};
    PGresult *r = db_query_prepared(tx, "book_close_ticket",
                                    "UPDATE approval.approval_tickets SET status = $2, decided_at "
                                    "= now(), updated_at = now() WHERE id = $1 AND status = "
                                    "'open' RETURNING id",
                                    2, p, err, errlen);
    if (!r)
        return -1;
    int closed = PQntuples(r) == 1;
    PQclear(r);
    if (!closed)
        return 0;
    if (db_exec_prepared(
            tx, "book_close_sla",
            "UPDATE approval.sla_timers SET closed_at = now(), next_at = NULL WHERE ticket_id "
            "= $1 AND closed_at IS NULL",
            1, p, err, errlen) != 0)
        return -1;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "status", status);
    cJSON_AddStringToObject(d, "why", why);
    return tkt_record(tx, tid, rid, "closed_by_chain", "chain", d, err, errlen);
}

static int on_transition(db_conn *tx, const appr_app *app, const envelope *m, const cJSON *args,
                         const char *to, char *err, size_t errlen)
{
    const char *req = str(args, "requestId");
    if (valid_uint(req, NULL) != 0)
        return util_err(err, errlen, "malformed %s payload", m->type), BUS_FATAL;
    char rid[160];
    redemption_id(rid, sizeof rid, app->chain_id, app->vault, req);
    const char *p[1] = {rid};
    PGresult *r = db_query_prepared(tx, "book_lock",
                                    "SELECT status, COALESCE(decision, ''), COALESCE(ticket_id, "
                                    "'') FROM approval.redemption_requests WHERE id = $1 FOR "
                                    "UPDATE",
                                    1, p, err, errlen);
    if (!r)
        return BUS_RETRY;
    if (PQntuples(r) != 1) {
        PQclear(r);
        char msg[300];
        snprintf(msg, sizeof msg, "%s for request %s, which the book has never seen", m->type, req);
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "event", m->type);
        cJSON_AddStringToObject(d, "request_id", req);
        if (tkt_record(tx, NULL, NULL, "reconcile_unknown", "chain", d, err, errlen) != 0 ||
            alert_reconcile(tx, "warning", rid, "Chain event for an unknown redemption", msg, err,
                            errlen) != 0)
            return BUS_RETRY;
        return BUS_OK;
    }
    char from[16], decision[16], tid[TKT_ID_MAX];
    util_strlcpy(from, PQgetvalue(r, 0, 0), sizeof from);
    util_strlcpy(decision, PQgetvalue(r, 0, 1), sizeof decision);
    util_strlcpy(tid, PQgetvalue(r, 0, 2), sizeof tid);
    PQclear(r);
    if (strcmp(from, to) == 0)
        return BUS_OK; /* already there (same event under another id) */

    const char *contradiction = NULL;
    if (!expected(from, to))
        contradiction = "the chain moved the redemption through a transition the book forbids";
    else if (!strcmp(to, "approved") && strcmp(decision, "approve") != 0)
        contradiction = strcmp(decision, "reject") == 0
                            ? "approved on chain although this service decided to reject it"
                            : "approved on chain before this service decided";
    else if (!strcmp(to, "rejected") && strcmp(decision, "approve") == 0)
        contradiction = "rejected on chain although this service approved it";

    const char *who = str(args, "approver");
    if (!who)
        who = str(args, "by");
    const char *u[6] = {rid,
                        to,
                        who,
                        str(args, "reason"),
                        str(args, "assets"),
                        !strcmp(to, "settled") ? "done" : NULL};
    if (db_exec_prepared(
            tx, "book_move",
            "UPDATE approval.redemption_requests SET status = $2, decided_by = COALESCE($3, "
            "decided_by), reject_reason = COALESCE($4, reject_reason), settled_assets = "
            "COALESCE($5::numeric, settled_assets), settle_state = COALESCE($6, settle_state), "
            "updated_at = now() WHERE id = $1",
            6, u, err, errlen) != 0)
        return BUS_RETRY;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "from", from);
    cJSON_AddStringToObject(d, "to", to);
    cJSON_AddStringToObject(d, "event_id", m->id);
    if (contradiction)
        cJSON_AddStringToObject(d, "contradiction", contradiction);
    if (tkt_record(tx, *tid ? tid : NULL, rid, contradiction ? "reconciled" : "chain_status",
                   "chain", d, err, errlen) != 0)
        return BUS_RETRY;
    if (contradiction) {
        char msg[400];
        snprintf(msg, sizeof msg, "redemption %s: %s (book: %s, decision: %s; chain: %s)", req,
                 contradiction, from, *decision ? decision : "none", to);
        /* An early manual approval on chain by a VIP approver is allowed by the vault: info. */
        const char *sev = strstr(contradiction, "before this service") ? "info" : "warning";
        if (alert_reconcile(tx, sev, rid, "Redemption reconciled with the chain", msg, err,
                            errlen) != 0)
            return BUS_RETRY;
    }
    if (*tid && (!strcmp(to, "approved") || !strcmp(to, "rejected") || !strcmp(to, "cancelled")) &&
        close_ticket(tx, tid, to, rid, m->type, err, errlen) != 0)
        return BUS_RETRY;
    return update_evt(tx, rid, to, err, errlen) == 0 ? BUS_OK : BUS_RETRY;
}

/* ------------------------------------------------------------------ reorg compensations */

static int on_removed(db_conn *tx, const appr_app *app, const envelope *m, const cJSON *args,
                      const char *what, char *err, size_t errlen)
{
    const char *req = str(args, "requestId");
    if (valid_uint(req, NULL) != 0)
        return util_err(err, errlen, "malformed %s payload", m->type), BUS_FATAL;
    char rid[160];
    redemption_id(rid, sizeof rid, app->chain_id, app->vault, req);
    /* The state the removed event had moved the row into, and where it goes back to. */
    const char *into = NULL, *back = NULL;
    if (!strcmp(what, "requested"))
        into = NULL, back = "removed";
    else if (!strcmp(what, "approved"))
        into = "approved", back = "pending";
    else if (!strcmp(what, "rejected"))
        into = "rejected", back = "pending";
    else if (!strcmp(what, "settled"))
        into = "settled", back = "approved";
    else if (!strcmp(what, "cancelled"))
        into = "cancelled", back = "pending";
    else
        return BUS_OK;
    const char *p[3] = {rid, back, into};
    PGresult *r = db_query_prepared(
        tx, "book_unmove",
        "UPDATE approval.redemption_requests SET status = $2, settle_state = CASE WHEN $2 = "
        "'approved' THEN 'none' ELSE settle_state END, updated_at = now() WHERE id = $1 AND "
        "($3::text IS NULL OR status = $3) AND status <> 'removed' RETURNING COALESCE(ticket_id, "
        "'')",
        3, p, err, errlen);
    if (!r)
        return BUS_RETRY;
    int moved = PQntuples(r) == 1;
    char tid[TKT_ID_MAX] = "";
    if (moved)
        util_strlcpy(tid, PQgetvalue(r, 0, 0), sizeof tid);
    PQclear(r);
    if (!moved)
        return BUS_OK;
    if (!strcmp(back, "removed") && *tid &&
        close_ticket(tx, tid, "cancelled", rid, m->type, err, errlen) != 0)
        return BUS_RETRY;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "event", m->type);
    cJSON_AddStringToObject(d, "to", back);
    const char *orig = str(m->payload, "original_id");
    if (orig)
        cJSON_AddStringToObject(d, "original_id", orig);
    if (tkt_record(tx, *tid ? tid : NULL, rid, "removed_by_reorg", "chain", d, err, errlen) != 0)
        return BUS_RETRY;
    char msg[300];
    snprintf(msg, sizeof msg, "a reorg removed %s of redemption %s; the book moved it to %s", what,
             req, back);
    if (alert_reconcile(tx, "warning", rid, "Redemption event removed by a reorg", msg, err,
                        errlen) != 0)
        return BUS_RETRY;
    return update_evt(tx, rid, back, err, errlen) == 0 ? BUS_OK : BUS_RETRY;
}

int book_chain_event(db_conn *tx, const envelope *m, void *ud, char *err, size_t errlen)
{
    const appr_app *app = ud;
    if (strncmp(m->type, TYPE_PREFIX, strlen(TYPE_PREFIX)) != 0)
        return BUS_OK; /* not a redemption event: other services' business */
    const cJSON *p = m->payload;
    const char *addr = str(p, "address");
    char a[43];
    if (!addr || strlen(addr) != 42)
        return BUS_OK;
    lower(a, addr, sizeof a);
    const cJSON *cid = cJSON_GetObjectItem(p, "chain_id");
    if (strcmp(a, app->vault) != 0 || !cJSON_IsNumber(cid) ||
        (uint64_t)cJSON_GetNumberValue(cid) != app->chain_id)
        return BUS_OK; /* another contract or chain */
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(p, "args");
    if (!cJSON_IsObject(args))
        return util_err(err, errlen, "chain event without args"), BUS_FATAL;
    char what[40];
    util_strlcpy(what, m->type + strlen(TYPE_PREFIX), sizeof what);
    char *dot = strchr(what, '.');
    int removed = 0;
    if (dot) {
        if (strcmp(dot, ".removed") != 0)
            return BUS_OK;
        *dot = '\0';
        removed = 1;
    }
    if (removed)
        return on_removed(tx, app, m, args, what, err, errlen);
    if (!strcmp(what, "requested"))
        return on_requested(tx, app, m, args, err, errlen);
    if (!strcmp(what, "approved") || !strcmp(what, "rejected") || !strcmp(what, "settled") ||
        !strcmp(what, "cancelled"))
        return on_transition(tx, app, m, args, what, err, errlen);
    return BUS_OK;
}

/* ------------------------------------------------------------------ approval.requests */

int book_request(db_conn *tx, const envelope *m, void *ud, char *err, size_t errlen)
{
    const appr_app *app = ud;
    if (strcmp(m->type, "approval.request") != 0)
        return BUS_OK;
    const cJSON *p = m->payload;
    const char *kind = str(p, "kind"), *ref = str(p, "ref"), *amount_s = str(p, "amount"),
               *requester = str(p, "requester");
    money_u256 amount;
    money_zero(&amount);
    if (!kind || !ref || !requester || !*ref || strlen(ref) > 200 || strlen(kind) > 40 ||
        strcmp(kind, "redemption") == 0 || (amount_s && valid_uint(amount_s, &amount) != 0))
        return util_err(err, errlen, "malformed approval.request"), BUS_FATAL;
    for (const char *c = kind; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return util_err(err, errlen, "bad ticket kind"), BUS_FATAL;
    pol_policy pol;
    if (pol_load(tx, &pol, err, errlen) != 0)
        return BUS_RETRY;
    pol_kind pk = strcmp(kind, "rebalance") == 0 ? POL_REBALANCE : POL_OTHER;
    int64_t sla = pol_sla_ms(&pol, pk);
    tkt_new n = {.kind = kind,
                 .ref = ref,
                 .amount = amount,
                 .required = pol_required_approvals(&pol, &amount),
                 .sla_ms = sla,
                 .requester = requester,
                 .requester_wallet = str(p, "requester_wallet"),
                 .source = m->source,
                 .reply_topic = str(p, "reply_topic"),
                 .reason = str(p, "title"),
                 .payload = cJSON_GetObjectItemCaseSensitive(p, "payload")};
    char tid[TKT_ID_MAX];
    int made = 0;
    if (tkt_create(tx, &n, pol_sla_step_ms(&pol, 0, sla, 1), tid, &made, err, errlen) != 0)
        return BUS_RETRY;
    if (!made || pol_needs_ticket(&pol, pk, &amount))
        return BUS_OK;
    /* Below its threshold: decided by policy at once, and recorded as such. */
    const char *q[1] = {tid};
    if (db_exec_prepared(
            tx, "book_auto_ticket",
            "UPDATE approval.approval_tickets SET status = 'approved', decided_at = now(), "
            "updated_at = now() WHERE id = $1",
            1, q, err, errlen) != 0 ||
        tkt_record(tx, tid, NULL, "auto_approved", "policy", NULL, err, errlen) != 0 ||
        tkt_execute(tx, app, tid, "approved", NULL, "policy", err, errlen) != 0)
        return BUS_RETRY;
    return BUS_OK;
}
