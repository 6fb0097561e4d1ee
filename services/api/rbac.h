/* rbac: the gateway's off-chain roles, ordered by power. A route names the least role
 * it needs (services/api/routes.c holds the one table); a principal passes when its
 * role is at least that. Pure functions; no memory is allocated. */
#ifndef PAIMON_API_RBAC_H
#define PAIMON_API_RBAC_H

typedef enum {
    RBAC_NONE = 0, /* route needs no authentication */
    RBAC_VIEWER = 1,
    RBAC_OPERATOR = 2,
    RBAC_ADMIN = 3,
    RBAC_SUPER_ADMIN = 4,
} rbac_role;

/* "viewer" | "operator" | "admin" | "super_admin" -> role; -1 when unknown. */
int rbac_role_parse(const char *s);
/* Name of a role ("none" for RBAC_NONE). */
const char *rbac_role_name(rbac_role r);
/* 1 when a principal with role `have` may use a route that needs `need`. */
int rbac_allows(rbac_role have, rbac_role need);
/* 1 when `actor` may create or change an account that holds `target`: only
 * super_admin grants admin or super_admin, nobody grants above their own role. */
int rbac_may_grant(rbac_role actor, rbac_role target);

#endif
