/* ticket: approval tickets, signed votes and the execution of decisions.
 *
 * A vote counts only when every check passes, in this order, before anything is written:
 * input shape, off-chain role (X-Paimon-Role >= operator), deadline not past and not too
 * far ahead, EIP-712 "Approval" signature over (ticket, decision, nonce, deadline) by the
 * voter's linked wallet (X-Paimon-Wallet), requester != voter (user and wallet), and
 * VIP_APPROVER_ROLE on chain (eth_call hasRole). The vote then runs in one transaction
 * that locks the ticket row (SELECT ... FOR UPDATE): of two approvers voting at the same
 * instant one waits for the other, so exactly one of them sees the quorum and exactly one
 * decision and one transaction are produced; unique indexes refuse a second vote by the
 * same user or wallet and a reused (wallet, nonce).
 *
 * Decisions: a redemption ticket queues approveRedemption / rejectRedemption in the tx
 * outbox; any other ticket publishes approval.decisions (through outmsg) for its owner.
 *
 * Memory: returned cJSON is owned by the caller; request strings are borrowed. */
#ifndef APPROVAL_TICKET_H
#define APPROVAL_TICKET_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "app.h"
#include "db.h"
#include "money.h"
#include "policy.h"

#define TKT_ID_MAX 64

typedef struct tkt_new {
    const char *kind;          /* "redemption", "rebalance", "manual", "emergency_mode", ... */
    const char *ref;           /* unique per kind: the redemption id, the request's own id... */
    const char *redemption_id; /* NULL unless kind is redemption */
    money_u256 amount;
    int required;
    int64_t sla_ms;
    const char *requester;        /* user id or on-chain owner */
    const char *requester_wallet; /* NULL when none */
    const char *source;           /* producing service or "chain" */
    const char *reply_topic;      /* NULL = approval.decisions */
    const char *reason;           /* title / why, may be NULL */
    const cJSON *payload;         /* what to execute once approved; borrowed, may be NULL */
} tkt_new;

/* Inside tx: creates the ticket, its SLA timer (first step at reminder_ms from now) and a
 * "created" record, unless (kind, ref) exists. id receives the ticket id either way;
 * *created says which. */
/* Appends an approval_records row (who did what to which ticket / redemption); detail
 * (may be NULL) is taken. Inside the caller's transaction. */
int tkt_record(db_conn *tx, const char *ticket_id, const char *redemption_id, const char *action,
               const char *actor, cJSON *detail, char *err, size_t errlen);

int tkt_create(db_conn *tx, const tkt_new *n, int64_t reminder_ms, char id[TKT_ID_MAX],
               int *created, char *err, size_t errlen);

/* Inside tx: queues approveRedemption(requestId) or rejectRedemption(requestId, reason)
 * in the outbox (idempotency key "<decision>:<redemption id>") and records it. */
int tkt_redemption_tx(db_conn *tx, const appr_app *app, const char *redemption_id,
                      const char *decision, const char *reason, const char *actor, char *err,
                      size_t errlen);

/* Inside tx, for a ticket row already locked and now decided: executes the decision (see
 * above), closes its SLA timer, records "decided". decision "approved" | "rejected". */
int tkt_execute(db_conn *tx, const appr_app *app, const char *ticket_id, const char *decision,
                const char *reason, const char *actor, char *err, size_t errlen);

typedef enum {
    TKT_OK = 0,
    TKT_BAD_REQUEST,   /* 400: malformed input */
    TKT_BAD_SIGNATURE, /* 401: signature invalid, expired or not from the wallet */
    TKT_FORBIDDEN,     /* 403: role, requester voting, wallet without VIP_APPROVER_ROLE */
    TKT_NOT_FOUND,     /* 404 */
    TKT_CONFLICT,      /* 409: ticket closed, second vote, nonce reused */
    TKT_UNAVAILABLE,   /* 503: chain or database unreachable */
} tkt_status;

typedef struct tkt_vote_req {
    const char *ticket_id;
    const char *decision;             /* "approve" | "reject" */
    const char *reason;               /* required for reject */
    const char *user, *role, *wallet; /* X-Paimon-User / -Role / -Wallet */
    const char *nonce, *deadline;     /* decimal strings (deadline: unix seconds) */
    const char *signature;            /* 0x + 130 hex (r || s || v) */
    int64_t now_ms;
} tkt_vote_req;

/* Validates, verifies and records one vote; on TKT_OK *ticket (may be NULL) receives the
 * ticket after the vote. msg gets a client-safe reason otherwise. */
tkt_status tkt_vote(const appr_app *app, const tkt_vote_req *v, cJSON **ticket, char *msg,
                    size_t msglen);

/* The ticket as JSON, with its records when with_records. NULL with *found = 0 when
 * there is no such ticket; NULL with *found = 1 on a database error. */
cJSON *tkt_get_json(db_conn *c, const char *id, int with_records, int *found, char *err,
                    size_t errlen);

/* 1 when wallet holds VIP_APPROVER_ROLE on the vault, 0 when not, -1 when the chain
 * could not be asked. */
int tkt_has_vip_role(const appr_app *app, const uint8_t wallet[20], char *err, size_t errlen);

#endif
