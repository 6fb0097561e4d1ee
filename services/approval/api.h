/* api: the approval service's internal HTTP API for the gateway (default port 8082).
 *
 *   GET  /v1/redemptions            ?status=&channel=&owner=&limit=(1..200, 50)&cursor=
 *   GET  /v1/redemptions/forecast   the settlement forecast (per day, base units)
 *   GET  /v1/redemptions/:id        one redemption with its records
 *   GET  /v1/tickets                ?status=&kind=&limit=&cursor=
 *   GET  /v1/tickets/:id            one ticket with its records
 *   POST /v1/tickets/:id/approve    {"nonce","deadline","signature"}
 *   POST /v1/tickets/:id/reject     {"nonce","deadline","signature","reason"}
 *   GET  /v1/policies
 *   PUT  /v1/policies               {"<key>": "<decimal>", ...} (admin or super_admin)
 *
 * Lists are newest first; `cursor` is the id of the last item of the previous page and
 * `next_cursor` is returned while more remain.
 *
 * Identity comes from the gateway, which authenticates the caller and forwards:
 *   X-Paimon-User    the user id (the voter; compared with the ticket's requester)
 *   X-Paimon-Role    off-chain role: viewer | operator | admin | super_admin
 *   X-Paimon-Wallet  the wallet linked to the user that signs EIP-712 approvals
 * The service listens on an internal address only; the NetworkPolicy lets only the
 * gateway reach it, so these headers are trusted as the gateway's word.
 *
 * Errors use the §6 envelope with 4xx codes: invalid_request (400), invalid_signature
 * (401), forbidden (403), not_found (404), conflict (409); 503 unavailable. */
#ifndef APPROVAL_API_H
#define APPROVAL_API_H

#include "app.h"
#include "http.h"

/* Registers every route with app as ud (borrowed; must outlive the server). */
int api_register(http_server *s, appr_app *app);

#endif
