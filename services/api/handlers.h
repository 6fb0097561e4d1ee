/* handlers: the gateway's route handlers, wired to paths by the table in routes.c.
 *   auth.c   login, refresh, logout, me, SIWE nonce/login/link, API keys, users
 *   admin.c  queues, DLQ, replay, pause/resume, deep health, audit log + verify,
 *            OpenAPI document and docs page, and the proxy to internal services
 * Every handler finishes its gw_ctx exactly once (gw.h). */
#ifndef PAIMON_API_HANDLERS_H
#define PAIMON_API_HANDLERS_H

#include "db.h"
#include "gw.h"

void h_login(gw_ctx *c);
void h_refresh(gw_ctx *c);
void h_logout(gw_ctx *c);
void h_me(gw_ctx *c);
void h_siwe_nonce(gw_ctx *c);
void h_siwe_login(gw_ctx *c);
void h_siwe_link(gw_ctx *c);
void h_keys_list(gw_ctx *c);
void h_keys_create(gw_ctx *c);
void h_keys_revoke(gw_ctx *c);
void h_users_list(gw_ctx *c);
void h_users_create(gw_ctx *c);
void h_users_update(gw_ctx *c);

void h_queues(gw_ctx *c);
void h_dlq_list(gw_ctx *c);
void h_dlq_replay(gw_ctx *c);
void h_pause(gw_ctx *c);
void h_resume(gw_ctx *c);
void h_system(gw_ctx *c);
void h_health(gw_ctx *c);
void h_audit_list(gw_ctx *c);
void h_audit_verify(gw_ctx *c);
void h_openapi(gw_ctx *c);
void h_docs(gw_ctx *c);
void h_docs_file(gw_ctx *c);
void h_proxy(gw_ctx *c);

/* Creates the first super_admin when the users table is empty and both values are set. */
int auth_bootstrap(db_pool *db, const char *email, const char *password, char *err, size_t errlen);

#endif
