/* emergency: carrying out an approved emergency ticket. risk asks for emergency mode through
 * an approval ticket (engine.c); when the decision comes back on approval.decisions,
 * rk_emergency_decide records it on the emergency row and, for an approval of a still
 * active emergency while the vault is not yet in emergency mode, queues
 * setEmergencyMode(true) in risk.transactions (libcommon/outbox.h) inside the same
 * transaction. The outbox worker in main.c signs and sends it with risk's own key, which
 * needs OPERATOR_ROLE (or ADMIN_ROLE) on the vault.
 *
 * Exactly once: the decision is written only over a NULL decision (a redelivered or
 * duplicated message changes nothing) and the outbox row's idempotency key is
 * "risk:emergency:<id>:on" (a second enqueue is a no-op).
 *
 * Memory: nothing owned is returned; app is borrowed. */
#ifndef RISK_EMERGENCY_H
#define RISK_EMERGENCY_H

#include <stddef.h>

#include "db.h"
#include "risk/app.h"

/* What rk_emergency_decide did. */
typedef enum {
    RK_EMERG_QUEUED = 0, /* setEmergencyMode(true) queued in the outbox */
    RK_EMERG_DUPLICATE,  /* the emergency already had a decision: nothing changed */
    RK_EMERG_UNKNOWN,    /* no such emergency */
    RK_EMERG_REJECTED,   /* rejection recorded, nothing sent */
    RK_EMERG_NOT_ACTIVE, /* approved after the crisis was resolved: nothing sent */
    RK_EMERG_ALREADY_ON, /* the vault is already in emergency mode: nothing sent */
    RK_EMERG_NO_SIGNER   /* risk has no signer: nothing sent, critical alert queued */
} rk_emerg_outcome;

/* Inside tx: records `decision` ("approved" | "rejected") on emergency `id` and acts on it
 * as described above. The chain is read (emergencyMode at the latest block) only for an
 * approval. Returns an rk_emerg_outcome, or -1 (database / RPC error, err filled: the
 * caller rolls back and retries). */
int rk_emergency_decide(db_conn *tx, rk_app *app, long long id, const char *decision,
                        const char *ticket_id, char *err, size_t errlen);

/* Reads emergencyMode() at the latest block into *on. 0 / -1. */
int rk_emergency_mode_read(rk_app *app, int *on, char *err, size_t errlen);

/* Idempotency key of the emergency's setEmergencyMode(true) transaction. */
void rk_emergency_tx_key(long long id, char *out, size_t outlen);

#endif
