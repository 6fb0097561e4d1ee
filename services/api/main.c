/* paimon-api: the public gateway (ARCHITECTURE §6) — REST under /api/v1 with JWT / API
 * key / SIWE authentication, RBAC, rate limits, an audit trail and proxies to the
 * services' internal HTTP. One event loop per core share PAIMON_HTTP_PORT (default
 * 8080) through SO_REUSEPORT; the first loop is the main thread's, which also owns the
 * life cycle (SIGTERM: stop accepting, finish in-flight requests, exit). The WebSocket
 * server (ws.h) runs beside them on PAIMON_WS_PORT (default 8090), path /ws. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "crypto.h"
#include "gw.h"
#include "handlers.h"
#include "jsonschema.h"
#include "life.h"
#include "log.h"
#include "pw.h"
#include "util.h"
#include "ws.h"

static char *redis_url, *database_url, *bind_addr, *loglevel_s, *jwt_secret, *issuer, *boot_email,
    *boot_password, *siwe_domain, *internal_token, *openapi_path, *swagger_dir, *ws_stream;
static char *internal_url[GW_NSERVICES];
static int port, trust_proxy;
static int64_t db_pool_n, threads, access_ttl, refresh_ttl, rl_ip, rl_user, rl_burst, login_acct,
    login_ip, max_body, max_headers, chain_id, nonce_ttl, upstream_timeout, argon_t, argon_m,
    ws_port_n, ws_queue, ws_max_clients, ws_auth_timeout, cache_ttl;
static cfg_list cors, admin_allow;
static char *vault_addr, *devchain_json;

static const cfg_var vars[] = {
    {"PAIMON_REDIS_URL", CFG_URL, "redis://127.0.0.1:6380", &redis_url, 0, 0, "redis", 0,
     "Redis: rate limits, nonces, token deny list, queues"},
    {"PAIMON_DATABASE_URL", CFG_URL, "postgresql://postgres@127.0.0.1:5433/paimon", &database_url,
     0, 0, "postgresql|postgres", 1, "PostgreSQL (role paimon_api)"},
    {"PAIMON_HTTP_BIND", CFG_STR, "127.0.0.1", &bind_addr, 0, 0, NULL, 0, "public bind address"},
    {"PAIMON_HTTP_PORT", CFG_PORT, "8080", &port, 0, 0, NULL, 0, "public HTTP port"},
    {"PAIMON_DB_POOL", CFG_INT, "0", &db_pool_n, 0, 256, NULL, 0,
     "PostgreSQL connections (0 = 2 per loop)"},
    {"PAIMON_LOG_LEVEL", CFG_STR, "info", &loglevel_s, 0, 0, NULL, 0, "log threshold"},
    {"PAIMON_API_THREADS", CFG_INT, "0", &threads, 0, 256, NULL, 0,
     "event loops (0 = one per core)"},
    {"PAIMON_JWT_SECRET", CFG_STR, "", &jwt_secret, 0, 4096, NULL, 1,
     "HS256 key, >= 32 bytes; empty = random per process (tokens die on restart)"},
    {"PAIMON_JWT_ISSUER", CFG_STR, "paimon-api", &issuer, 1, 128, NULL, 0, "JWT iss"},
    {"PAIMON_ACCESS_TTL", CFG_DURATION_MS, "15m", &access_ttl, 10000, 86400000, NULL, 0,
     "access token lifetime"},
    {"PAIMON_REFRESH_TTL", CFG_DURATION_MS, "30d", &refresh_ttl, 60000, 31536000000LL, NULL, 0,
     "refresh token lifetime"},
    {"PAIMON_BOOTSTRAP_ADMIN_EMAIL", CFG_STR, "", &boot_email, 0, 254, NULL, 0,
     "first super_admin (only when there are no users)"},
    {"PAIMON_BOOTSTRAP_ADMIN_PASSWORD", CFG_STR, "", &boot_password, 0, 256, NULL, 1,
     "its password"},
    {"PAIMON_CORS_ORIGINS", CFG_LIST, "", &cors, 0, 0, NULL, 0,
     "allowed browser origins (\"*\" = any); empty = no CORS"},
    {"PAIMON_ADMIN_ALLOW_IPS", CFG_LIST, "", &admin_allow, 0, 0, NULL, 0,
     "CIDRs that may use admin routes; empty = any"},
    {"PAIMON_TRUST_PROXY", CFG_BOOL, "false", &trust_proxy, 0, 0, NULL, 0,
     "take the client address from X-Forwarded-For"},
    {"PAIMON_RATE_LIMIT_IP", CFG_INT, "600", &rl_ip, 1, 10000000, NULL, 0,
     "requests per minute per IP"},
    {"PAIMON_RATE_LIMIT_PRINCIPAL", CFG_INT, "1200", &rl_user, 1, 10000000, NULL, 0,
     "requests per minute per user or API key"},
    {"PAIMON_RATE_LIMIT_BURST", CFG_INT, "100", &rl_burst, 1, 10000000, NULL, 0,
     "burst for both limits"},
    {"PAIMON_LOGIN_LIMIT_ACCOUNT", CFG_INT, "5", &login_acct, 1, 10000, NULL, 0,
     "failed logins per account per 15 minutes"},
    {"PAIMON_LOGIN_LIMIT_IP", CFG_INT, "20", &login_ip, 1, 100000, NULL, 0,
     "failed logins per IP per 15 minutes"},
    {"PAIMON_API_MAX_BODY", CFG_INT, "65536", &max_body, 1024, 16777216, NULL, 0,
     "request body bytes"},
    {"PAIMON_API_MAX_HEADERS", CFG_INT, "8192", &max_headers, 1024, 1048576, NULL, 0,
     "request header bytes"},
    {"PAIMON_SIWE_DOMAIN", CFG_STR, "localhost:8080", &siwe_domain, 1, 255, NULL, 0,
     "domain SIWE messages must name"},
    {"PAIMON_VAULT_ADDRESS", CFG_STR, "", &vault_addr, 0, 100, NULL, 0,
     "PaimonVault address: the EIP-712 domain of signed pause / resume"},
    {"PAIMON_DEVCHAIN_JSON", CFG_STR, "", &devchain_json, 0, 1000, NULL, 0,
     "devchain.json to take the vault from when PAIMON_VAULT_ADDRESS is empty"},
    {"PAIMON_CHAIN_ID", CFG_INT, "31337", &chain_id, 1, 1000000000000LL, NULL, 0,
     "chain id SIWE messages must name"},
    {"PAIMON_SIWE_NONCE_TTL", CFG_DURATION_MS, "5m", &nonce_ttl, 10000, 3600000, NULL, 0,
     "SIWE nonce lifetime"},
    {"PAIMON_INTERNAL_URL_LISTENER", CFG_STR, "http://127.0.0.1:8081", &internal_url[0], 0, 500,
     NULL, 0, "listener internal HTTP (empty = not deployed)"},
    {"PAIMON_INTERNAL_URL_APPROVAL", CFG_STR, "http://127.0.0.1:8082", &internal_url[1], 0, 500,
     NULL, 0, "approval internal HTTP"},
    {"PAIMON_INTERNAL_URL_REBALANCE", CFG_STR, "http://127.0.0.1:8083", &internal_url[2], 0, 500,
     NULL, 0, "rebalance internal HTTP"},
    {"PAIMON_INTERNAL_URL_RISK", CFG_STR, "http://127.0.0.1:8084", &internal_url[3], 0, 500, NULL,
     0, "risk internal HTTP"},
    {"PAIMON_INTERNAL_URL_NOTIFIER", CFG_STR, "http://127.0.0.1:8085", &internal_url[4], 0, 500,
     NULL, 0, "notifier internal HTTP"},
    {"PAIMON_INTERNAL_TOKEN", CFG_STR, "", &internal_token, 0, 512, NULL, 1,
     "sent as X-Internal-Token on the hop to services"},
    {"PAIMON_UPSTREAM_TIMEOUT", CFG_DURATION_MS, "5s", &upstream_timeout, 100, 60000, NULL, 0,
     "timeout of a proxied request"},
    {"PAIMON_OPENAPI_PATH", CFG_STR, "schemas/openapi.yaml", &openapi_path, 1, 1000, NULL, 0,
     "OpenAPI document (JSON-style YAML)"},
    {"PAIMON_SWAGGER_UI_DIR", CFG_STR, "deploy/node_modules/swagger-ui-dist", &swagger_dir, 1, 1000,
     NULL, 0, "swagger-ui-dist assets for /docs"},
    {"PAIMON_API_CACHE_TTL", CFG_DURATION_MS, "1s", &cache_ttl, 0, 60000, NULL, 0,
     "how long each loop serves hot reads (fund overview, risk metrics) from memory; 0 = off"},
    {"PAIMON_WS_PORT", CFG_INT, "8090", &ws_port_n, 0, 65535, NULL, 0,
     "WebSocket port (path /ws); 0 = no WebSocket server"},
    {"PAIMON_WS_STREAM", CFG_STR, "paimon:updates:normal", &ws_stream, 1, 200, NULL, 0,
     "stream the WebSocket server fans out (bus topic `updates`)"},
    {"PAIMON_WS_QUEUE", CFG_INT, "256", &ws_queue, 4, 100000, NULL, 0,
     "messages queued per WebSocket client before it is dropped as too slow"},
    {"PAIMON_WS_MAX_CLIENTS", CFG_INT, "10000", &ws_max_clients, 1, 1000000, NULL, 0,
     "WebSocket connections"},
    {"PAIMON_WS_AUTH_TIMEOUT", CFG_DURATION_MS, "10s", &ws_auth_timeout, 100, 600000, NULL, 0,
     "time a WebSocket client has to send its token"},
    {"PAIMON_ARGON2_T", CFG_INT, "2", &argon_t, 1, 100, NULL, 0, "argon2id passes"},
    {"PAIMON_ARGON2_M_KIB", CFG_INT, "19456", &argon_m, 8, 4194304, NULL, 0,
     "argon2id memory (KiB)"},
};

int main(void)
{
    char err[CFG_ERRLEN];
    if (cfg_load(vars, CFG_COUNT(vars), err, sizeof err) != 0) {
        fprintf(stderr, "paimon-api: %s\n", err);
        return 2;
    }
    log_init("api", loglevel_s, NULL, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pw_set_cost((uint32_t)argon_t, (uint32_t)argon_m);
    int rc = 2;
    life *l = NULL;
    db_pool *db = NULL;
    gw *g = NULL;
    ws_server *ws = NULL;
    uint8_t key[64];
    size_t keylen = strlen(jwt_secret);
    if (keylen == 0) {
        keylen = 32;
        if (util_random(key, keylen) != 0)
            goto out;
        log_warn("PAIMON_JWT_SECRET not set: random key, tokens end with this process");
    } else if (keylen < 32) {
        fprintf(stderr, "paimon-api: PAIMON_JWT_SECRET must have at least 32 bytes\n");
        goto out;
    } else {
        /* HMAC hashes longer keys anyway; hashing here keeps one fixed-size buffer */
        if (keylen > sizeof key) {
            crypto_sha256(jwt_secret, keylen, key, NULL, 0);
            keylen = 32;
        } else {
            memcpy(key, jwt_secret, keylen);
        }
    }
    char vault[43] = "";
    if ((*vault_addr || *devchain_json) && cfg_address(vault_addr, devchain_json, "contracts.vault",
                                                       vault, sizeof vault, err, sizeof err) != 0) {
        fprintf(stderr, "paimon-api: PAIMON_VAULT_ADDRESS: %s\n", err);
        goto out;
    }
    if (!*vault)
        log_warn("no vault address: signed pause / resume answer 503");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nloops = threads > 0 ? (int)threads : (ncpu > 0 ? (int)ncpu : 1);
    if (!(l = life_new("api", err, sizeof err)))
        goto fail;
    db = db_pool_new(database_url, db_pool_n > 0 ? (int)db_pool_n : 2 * nloops, err, sizeof err);
    if (!db)
        goto fail;
    if (auth_bootstrap(db, boot_email, boot_password, err, sizeof err) != 0)
        goto fail;
    gw_config cfg = {
        .bind = bind_addr,
        .port = port,
        .threads = nloops,
        .redis_url = redis_url,
        .jwt_key = key,
        .jwt_key_len = keylen,
        .jwt_issuer = issuer,
        .access_ttl_ms = access_ttl,
        .refresh_ttl_ms = refresh_ttl,
        .cors_origins = cors,
        .admin_allow = admin_allow,
        .trust_proxy = trust_proxy,
        .rl_ip = {rl_ip, 60000, rl_burst},
        .rl_principal = {rl_user, 60000, rl_burst},
        .rl_login_account = {login_acct, 900000, login_acct},
        .rl_login_ip = {login_ip, 900000, login_ip},
        .max_body = max_body,
        .max_headers = max_headers,
        .siwe_domain = siwe_domain,
        .chain_id = chain_id,
        .vault = vault,
        .siwe_nonce_ttl_ms = nonce_ttl,
        .internal_token = internal_token,
        .upstream_timeout_ms = upstream_timeout,
        .openapi_path = openapi_path,
        .swagger_dir = swagger_dir,
        .cache_ttl_ms = cache_ttl,
    };
    for (int i = 0; i < GW_NSERVICES; i++)
        cfg.internal_url[i] = internal_url[i];
    if (!(g = gw_new(&cfg, db, life_base(l), err, sizeof err)))
        goto fail;
    if (gw_start(g, err, sizeof err) != 0)
        goto fail;
    if (ws_port_n > 0) {
        ws_config wc = {
            .bind = bind_addr,
            .port = (int)ws_port_n,
            .redis_url = redis_url,
            .stream = ws_stream,
            .queue_max = (int)ws_queue,
            .max_clients = (int)ws_max_clients,
            .auth_timeout_ms = ws_auth_timeout,
            .gw = &cfg,
        };
        if (!(ws = ws_new(&wc, err, sizeof err)) || ws_start(ws, err, sizeof err) != 0) {
            gw_stop(g);
            goto fail;
        }
    }
    log_info("api listening", "bind", bind_addr, "#port", LOG_I64(gw_port(g)), "#ws_port",
             LOG_I64(ws ? ws_port(ws) : 0), "#loops", LOG_I64(nloops));
    rc = life_run(l) == 0 ? 0 : 1;
    ws_stop(ws);
    gw_stop(g);
    goto out;
fail:
    log_error("api not started", "error", err);
    rc = 1;
out:
    ws_free(ws);
    gw_free(g);
    db_pool_free(db);
    life_free(l);
    crypto_wipe(key, sizeof key);
    jsonschema_embedded_cleanup();
    curl_global_cleanup();
    cfg_release(vars, CFG_COUNT(vars));
    return rc;
}
