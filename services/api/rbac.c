/* rbac: role names and ordering (see rbac.h). */
#include "rbac.h"

#include <string.h>

static const char *const NAMES[] = {"none", "viewer", "operator", "admin", "super_admin"};

int rbac_role_parse(const char *s)
{
    if (!s)
        return -1;
    for (int i = RBAC_VIEWER; i <= RBAC_SUPER_ADMIN; i++)
        if (strcmp(s, NAMES[i]) == 0)
            return i;
    return -1;
}

const char *rbac_role_name(rbac_role r)
{
    return r >= RBAC_NONE && r <= RBAC_SUPER_ADMIN ? NAMES[r] : "none";
}

int rbac_allows(rbac_role have, rbac_role need)
{
    if (need == RBAC_NONE)
        return 1;
    return have >= RBAC_VIEWER && have <= RBAC_SUPER_ADMIN && have >= need;
}

int rbac_may_grant(rbac_role actor, rbac_role target)
{
    if (target < RBAC_VIEWER || target > RBAC_SUPER_ADMIN)
        return 0;
    if (target >= RBAC_ADMIN)
        return actor == RBAC_SUPER_ADMIN;
    return actor >= RBAC_ADMIN;
}
