/* rconn: opening synchronous hiredis connections from a redis:// URL.
 *
 * Every module that talks to Redis (bus, lock, sched, rate limits) gets its
 * connections here so URL parsing, timeouts, AUTH and SELECT live in one place.
 * The returned context is owned by the caller (redisFree). */
#ifndef PAIMON_RCONN_H
#define PAIMON_RCONN_H

#include <stddef.h>
#include <hiredis/hiredis.h>

typedef struct rconn_url {
    char host[256];
    int port;
    int db;
    char password[256];
} rconn_url;

/* Parses redis://[[user]:password@]host[:port][/db]; -1 with a reason on bad input. */
int rconn_parse_url(const char *url, rconn_url *out, char *err, size_t errlen);

/* Connects (timeout_ms for connect and for each command; 0 = no command timeout),
 * authenticates and selects the db. NULL with a reason on failure. */
redisContext *rconn_connect(const char *url, int timeout_ms, char *err, size_t errlen);

/* PING with the context's timeouts; 0 when Redis answered PONG. */
int rconn_ping(redisContext *c, char *err, size_t errlen);

#endif
