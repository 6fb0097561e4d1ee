/* http: the internal HTTP server every daemon runs on its libevent loop (evhttp).
 *
 * It serves the daemon's internal API plus three built-ins:
 *   GET /health/live   200 {"status":"ok"} while the loop turns
 *   GET /health/ready  runs every check added with http_add_check; 200 when all pass,
 *                      503 otherwise (also 503 once http_server_drain was called)
 *   GET /metrics       the metrics registry in Prometheus text format 0.0.4
 *
 * Routing: http_route(s, "GET", "/v1/redemptions/:id", fn, ud). A ":name" segment
 * matches one non-empty path segment (its percent-decoded value is http_param(req,
 * "name")); other segments match exactly. When several routes match, the one with
 * the most literal segments wins, so "/v1/x/forecast" beats "/v1/x/:id". An unknown
 * path gets 404, a known path with another method 405 with an Allow header; HEAD is
 * served by the GET route without a body.
 *
 * Every response carries X-Request-Id: the caller's header when it is 1..128 chars
 * of [A-Za-z0-9._-], else 16 random bytes in hex. JSON replies use the envelope of
 * ARCHITECTURE §6 (http_reply_ok / http_reply_error).
 *
 * Body limits: bodies above max_body (default 1 MiB) are refused with a 413 envelope
 * before any handler runs. evhttp itself buffers at most 2 * max_body and answers a
 * bigger declared or streamed body with its own plain 413 and closes the connection,
 * so a hostile upload can never make the server hold more than that in memory.
 *
 * Threading: everything here runs on the thread of the server's event_base; handlers
 * and replies too. A handler must reply before it returns, or call http_defer(req) and
 * reply later on the same thread; a handler that returns without either gets a 500
 * envelope, so a forgotten reply can never hang a client.
 *
 * Memory: http_server_new/_free own the server. An http_request is owned by the server
 * and valid until its reply (for a deferred request: until the reply call returns). All
 * strings returned by request accessors are borrowed from the request. cJSON bodies
 * passed to reply functions are taken (freed by the call, even on failure); the cJSON
 * returned by http_json_body belongs to the caller. Checks' and routes' ud are borrowed. */
#ifndef PAIMON_HTTP_H
#define PAIMON_HTTP_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "metrics.h"

#define HTTP_DEFAULT_MAX_BODY    (1024 * 1024)
#define HTTP_DEFAULT_MAX_HEADERS (16 * 1024)
#define HTTP_DEFAULT_TIMEOUT_S   15
#define HTTP_REQUEST_ID_MAX      128 /* chars of an accepted incoming X-Request-Id */
#define HTTP_MAX_PARAMS          8   /* ":name" segments per pattern */

typedef struct http_server http_server;
typedef struct http_request http_request;

typedef void (*http_handler)(http_request *req, void *ud);
/* A readiness check: 0 when healthy, else -1 with a reason in err. */
typedef int (*http_check_fn)(void *ud, char *err, size_t errlen);

/* Binds bind_addr:port (port 0 = ephemeral, see http_server_port) on base (borrowed;
 * it must outlive the server). The request metrics go to metrics_global() until
 * http_set_metrics says otherwise. NULL on failure (err filled). */
http_server *http_server_new(struct event_base *base, const char *bind_addr, int port, char *err,
                             size_t errlen);
/* Flags for http_server_new_ex. HTTP_REUSEPORT binds with SO_REUSEPORT, so several
 * servers (one per thread and event_base) can share one port and the kernel spreads
 * connections across them (the public gateway runs one loop per core this way). */
#define HTTP_REUSEPORT 1
http_server *http_server_new_ex(struct event_base *base, const char *bind_addr, int port, int flags,
                                char *err, size_t errlen);
/* Replies 503 to requests still deferred, closes every connection, frees. NULL is fine. */
void http_server_free(http_server *s);
int http_server_port(const http_server *s);

/* max_body: bytes of request body (0 keeps the current value); max_headers: bytes of
 * request headers (0 keeps the current value). */
void http_server_set_limits(http_server *s, size_t max_body, size_t max_headers);
/* Seconds a connection may stay idle or take to send a request (> 0). */
void http_server_set_timeout(http_server *s, int seconds);
/* For shutdown: /health/ready answers 503 from now on and the listening sockets are
 * closed, so no new connection is accepted; open keep-alive connections still work. */
void http_server_drain(http_server *s);
/* http_server_drain with the life_on_stop hook signature: life_on_stop(l, http_drain_hook, s)
 * registered last, so it runs first at shutdown. */
void http_drain_hook(void *server);

/* Register routes and checks at start-up, before the loop serves requests (requests
 * keep pointers into the table).
 * method: "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS". pattern starts with '/'.
 * -1 on a bad method or pattern, or when (method, pattern) is already routed. */
int http_route(http_server *s, const char *method, const char *pattern, http_handler fn, void *ud);
/* name: short identifier shown in /health/ready ("db", "redis", "rpc"); copied. */
int http_add_check(http_server *s, const char *name, http_check_fn fn, void *ud);
/* Registry served by /metrics and fed with http_requests_total{method,route,status}
 * and http_request_duration_seconds{method,route}; borrowed, must outlive the server. */
void http_set_metrics(http_server *s, metrics_registry *reg);

/* ---- request ---- */
const char *http_method(const http_request *req); /* "GET", "POST", ... */
const char *http_path(const http_request *req);   /* raw (still percent-encoded) path */
const char *http_route_pattern(const http_request *req);
const char *http_request_id(const http_request *req);
/* Decoded query parameter (first occurrence), NULL when absent. */
const char *http_query(http_request *req, const char *name);
/* Request header, case-insensitive name, NULL when absent. */
const char *http_header(http_request *req, const char *name);
/* Decoded path parameter of the matched pattern, NULL when the pattern has none. */
const char *http_param(http_request *req, const char *name);
/* The raw (still percent-encoded) query string without '?', NULL when there is none. */
const char *http_query_string(http_request *req);
/* The peer's IP address as text ("127.0.0.1", "::1"), "" when unknown. */
const char *http_peer_addr(http_request *req);
/* Raw body, len bytes (may contain NUL; the pointer is "" for an empty body). */
const char *http_body(http_request *req, size_t *len);

/* Parses the body as JSON: requires Content-Type application/json (parameters such as
 * charset=utf-8 allowed), a body within the limit, valid UTF-8 and one JSON value with
 * nothing after it. NULL on failure (err filled; http_body_error_status tells 415 / 413
 * / 400). The caller owns the result. */
cJSON *http_json_body(http_request *req, char *err, size_t errlen);
int http_body_error_status(const http_request *req);
/* http_json_body that, on failure, replies with the matching 4xx envelope itself
 * (codes unsupported_media_type / payload_too_large / invalid_json) and returns NULL. */
cJSON *http_require_json(http_request *req);

/* ---- replies (each request gets exactly one; later calls are ignored) ---- */
/* Adds a response header (e.g. Location, Retry-After); call before the reply. */
void http_set_header(http_request *req, const char *name, const char *value);
/* Keeps the request open after the handler returns; reply later on the loop thread. */
void http_defer(http_request *req);
void http_reply_json(http_request *req, int status, cJSON *body);
void http_reply_text(http_request *req, int status, const char *content_type, const char *text);
/* {"success":true,"data":data,"timestamp":"...Z","requestId":"..."}; data may be NULL
 * (-> null). */
void http_reply_ok(http_request *req, int status, cJSON *data);
/* The same envelope around data that is already encoded JSON (borrowed, len bytes):
 * a cached answer goes out without being parsed or printed again. */
void http_reply_ok_raw(http_request *req, int status, const char *data_json, size_t len);
/* {"success":false,"error":{"code","message","details"},"timestamp","requestId"};
 * details may be NULL (-> null). message is shown to the client: never put internals
 * (SQL, stack, paths) in it. */
void http_reply_error(http_request *req, int status, const char *code, const char *message,
                      cJSON *details);

/* True when s is 1..HTTP_REQUEST_ID_MAX chars of [A-Za-z0-9._-] (exposed for tests and
 * for services that forward ids). */
int http_request_id_valid(const char *s);

#endif
