/* routes: the gateway's one route table — path, least role, flags, handler, and for
 * proxied routes the owning service and its internal path. RBAC, the audit of
 * mutating routes, the OpenAPI check at start-up and the authorisation-matrix test
 * all read this table.
 *
 * Every upstream path below is one the owning service really serves (services/<svc>/
 * api.c); tests/integration/test_api_routes.c calls each route against the real daemons.
 * The fund overview is risk's regrouping of its latest cycle (risk already reads NAV,
 * tiers and holdings at one block every cycle and publishes them to paimon:risk:current):
 * proxying it keeps the cache key private to risk, lets the gateway's per-loop cache
 * (GW_CACHE) absorb polling, and gives the same 503 envelope as every other route when
 * risk is down. */
#include "gw.h"
#include "handlers.h"

#define V   RBAC_VIEWER
#define O   RBAC_OPERATOR
#define A   RBAC_ADMIN
#define S   RBAC_SUPER_ADMIN
#define N   RBAC_NONE
#define AIP GW_ADMIN_IP

const gw_route gw_routes[] = {
    {"GET", "/api/v1/openapi.json", N, GW_RAW, h_openapi, NULL, NULL},
    {"GET", "/docs", N, GW_RAW, h_docs, NULL, NULL},
    {"GET", "/docs/:file", N, GW_RAW, h_docs_file, NULL, NULL},

    {"POST", "/api/v1/auth/login", N, 0, h_login, NULL, NULL},
    {"POST", "/api/v1/auth/refresh", N, 0, h_refresh, NULL, NULL},
    {"POST", "/api/v1/auth/logout", V, 0, h_logout, NULL, NULL},
    {"GET", "/api/v1/auth/me", V, 0, h_me, NULL, NULL},
    {"GET", "/api/v1/auth/siwe/nonce", N, 0, h_siwe_nonce, NULL, NULL},
    {"POST", "/api/v1/auth/siwe/login", N, 0, h_siwe_login, NULL, NULL},
    {"POST", "/api/v1/auth/siwe/link", V, 0, h_siwe_link, NULL, NULL},
    {"GET", "/api/v1/auth/api-keys", V, 0, h_keys_list, NULL, NULL},
    {"POST", "/api/v1/auth/api-keys", V, 0, h_keys_create, NULL, NULL},
    {"DELETE", "/api/v1/auth/api-keys/:id", V, 0, h_keys_revoke, NULL, NULL},

    {"GET", "/api/v1/admin/users", A, AIP, h_users_list, NULL, NULL},
    {"POST", "/api/v1/admin/users", A, AIP, h_users_create, NULL, NULL},
    {"PATCH", "/api/v1/admin/users/:id", A, AIP, h_users_update, NULL, NULL},
    {"GET", "/api/v1/admin/queues", A, AIP, h_queues, NULL, NULL},
    {"GET", "/api/v1/admin/dlq", A, AIP, h_dlq_list, NULL, NULL},
    {"POST", "/api/v1/admin/dlq/:id/replay", A, AIP | GW_NO_BODY, h_dlq_replay, NULL, NULL},
    {"GET", "/api/v1/admin/system", V, 0, h_system, NULL, NULL},
    {"POST", "/api/v1/admin/pause", S, AIP, h_pause, NULL, NULL},
    {"POST", "/api/v1/admin/resume", S, AIP, h_resume, NULL, NULL},
    {"GET", "/api/v1/admin/health", A, AIP, h_health, NULL, NULL},
    {"GET", "/api/v1/admin/audit", A, AIP, h_audit_list, NULL, NULL},
    {"GET", "/api/v1/admin/audit/verify", A, AIP, h_audit_verify, NULL, NULL},

    /* notifier */
    {"GET", "/api/v1/notifications/channels", V, 0, h_proxy, "notifier", "/v1/channels"},
    {"POST", "/api/v1/notifications/channels", A, 0, h_proxy, "notifier", "/v1/channels"},
    {"GET", "/api/v1/notifications/channels/:id", V, 0, h_proxy, "notifier", "/v1/channels/:id"},
    {"PUT", "/api/v1/notifications/channels/:id", A, 0, h_proxy, "notifier", "/v1/channels/:id"},
    {"DELETE", "/api/v1/notifications/channels/:id", A, 0, h_proxy, "notifier", "/v1/channels/:id"},
    {"GET", "/api/v1/notifications/routes", V, 0, h_proxy, "notifier", "/v1/routes"},
    {"POST", "/api/v1/notifications/routes", A, 0, h_proxy, "notifier", "/v1/routes"},
    {"GET", "/api/v1/notifications/routes/:id", V, 0, h_proxy, "notifier", "/v1/routes/:id"},
    {"PUT", "/api/v1/notifications/routes/:id", A, 0, h_proxy, "notifier", "/v1/routes/:id"},
    {"DELETE", "/api/v1/notifications/routes/:id", A, 0, h_proxy, "notifier", "/v1/routes/:id"},
    {"GET", "/api/v1/notifications/silences", V, 0, h_proxy, "notifier", "/v1/silences"},
    {"POST", "/api/v1/notifications/silences", O, 0, h_proxy, "notifier", "/v1/silences"},
    {"GET", "/api/v1/notifications/silences/:id", V, 0, h_proxy, "notifier", "/v1/silences/:id"},
    {"DELETE", "/api/v1/notifications/silences/:id", O, 0, h_proxy, "notifier", "/v1/silences/:id"},
    {"GET", "/api/v1/notifications/webhooks", V, 0, h_proxy, "notifier", "/v1/webhooks"},
    {"POST", "/api/v1/notifications/webhooks", A, 0, h_proxy, "notifier", "/v1/webhooks"},
    {"GET", "/api/v1/notifications/webhooks/:id", V, 0, h_proxy, "notifier", "/v1/webhooks/:id"},
    {"PUT", "/api/v1/notifications/webhooks/:id", A, 0, h_proxy, "notifier", "/v1/webhooks/:id"},
    {"DELETE", "/api/v1/notifications/webhooks/:id", A, 0, h_proxy, "notifier", "/v1/webhooks/:id"},
    {"POST", "/api/v1/notifications/test", O, 0, h_proxy, "notifier", "/v1/test"},
    {"GET", "/api/v1/notifications/deliveries", V, 0, h_proxy, "notifier", "/v1/deliveries"},

    /* listener */
    {"GET", "/api/v1/chain/checkpoints", V, 0, h_proxy, "listener", "/v1/checkpoints"},
    {"GET", "/api/v1/chain/events", V, 0, h_proxy, "listener", "/v1/events"},
    {"GET", "/api/v1/chain/gaps", V, 0, h_proxy, "listener", "/v1/gaps"},

    /* fund: risk owns the NAV series and the holdings; flows are the vault's decoded
     * Deposit / redemption events as the listener stored them */
    {"GET", "/api/v1/fund/overview", V, GW_CACHE, h_proxy, "risk", "/v1/fund/overview"},
    {"GET", "/api/v1/fund/nav", V, 0, h_proxy, "risk", "/v1/risk/nav"},
    {"GET", "/api/v1/fund/holdings", V, 0, h_proxy, "risk", "/v1/fund/holdings"},
    {"GET", "/api/v1/fund/flows", V, 0, h_proxy, "listener", "/v1/events"},

    /* approval */
    {"GET", "/api/v1/redemptions", V, 0, h_proxy, "approval", "/v1/redemptions"},
    {"GET", "/api/v1/redemptions/forecast", V, 0, h_proxy, "approval", "/v1/redemptions/forecast"},
    {"GET", "/api/v1/redemptions/:id", V, 0, h_proxy, "approval", "/v1/redemptions/:id"},
    {"GET", "/api/v1/approvals", V, 0, h_proxy, "approval", "/v1/tickets"},
    {"GET", "/api/v1/approvals/policies", V, 0, h_proxy, "approval", "/v1/policies"},
    {"PUT", "/api/v1/approvals/policies", A, 0, h_proxy, "approval", "/v1/policies"},
    {"GET", "/api/v1/approvals/:id", V, 0, h_proxy, "approval", "/v1/tickets/:id"},
    {"POST", "/api/v1/approvals/:id/approve", O, 0, h_proxy, "approval", "/v1/tickets/:id/approve"},
    {"POST", "/api/v1/approvals/:id/reject", O, 0, h_proxy, "approval", "/v1/tickets/:id/reject"},

    /* rebalance */
    {"GET", "/api/v1/rebalance/status", V, 0, h_proxy, "rebalance", "/v1/status"},
    {"POST", "/api/v1/rebalance/preview", O, 0, h_proxy, "rebalance", "/v1/preview"},
    {"POST", "/api/v1/rebalance/trigger", A, 0, h_proxy, "rebalance", "/v1/trigger"},
    {"GET", "/api/v1/rebalance/history", V, 0, h_proxy, "rebalance", "/v1/history"},
    {"GET", "/api/v1/rebalance/plans/:id", V, 0, h_proxy, "rebalance", "/v1/plans/:id"},
    {"GET", "/api/v1/assets", V, 0, h_proxy, "rebalance", "/v1/assets"},
    {"PUT", "/api/v1/assets/:token", A, 0, h_proxy, "rebalance", "/v1/assets/:token"},

    /* risk */
    {"GET", "/api/v1/risk/metrics", V, GW_CACHE, h_proxy, "risk", "/v1/risk/current"},
    {"GET", "/api/v1/risk/metrics/:metric/history", V, 0, h_proxy, "risk",
     "/v1/risk/metrics/:metric/history"},
    {"GET", "/api/v1/risk/events", V, 0, h_proxy, "risk", "/v1/risk/events"},
    {"POST", "/api/v1/risk/events/:id/ack", O, 0, h_proxy, "risk", "/v1/risk/events/:id/ack"},
    {"GET", "/api/v1/risk/thresholds", V, 0, h_proxy, "risk", "/v1/risk/thresholds"},
    {"PUT", "/api/v1/risk/thresholds/:metric", A, 0, h_proxy, "risk",
     "/v1/risk/thresholds/:metric"},

    /* reports (risk's daily snapshots); ?format=csv answers text/csv */
    {"GET", "/api/v1/reports/daily/:date", V, 0, h_proxy, "risk", "/v1/risk/reports/daily/:date"},
    {"GET", "/api/v1/reports/range", V, 0, h_proxy, "risk", "/v1/risk/reports/range"},
};
const size_t gw_nroutes = sizeof gw_routes / sizeof gw_routes[0];
