/* rconn: synchronous hiredis connections from redis:// URLs (see rconn.h). */
#include "rconn.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

int rconn_parse_url(const char *url, rconn_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (!url || strncmp(url, "redis://", 8) != 0)
        return util_err(err, errlen, "redis url must start with redis://");
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        size_t n = (size_t)(at - pw);
        if (n >= sizeof out->password)
            return util_err(err, errlen, "redis url password too long");
        memcpy(out->password, pw, n);
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof out->host)
        return util_err(err, errlen, "redis url has no valid host");
    memcpy(out->host, p, hl);
    p += hl;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
            return util_err(err, errlen, "redis url has an invalid port");
        out->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || db < 0 || db > 15)
            return util_err(err, errlen, "redis url has an invalid database number");
        out->db = (int)db;
    } else if (*p && strcmp(p, "/") != 0) {
        return util_err(err, errlen, "redis url has trailing garbage");
    }
    return 0;
}

static int simple_ok(redisContext *c, redisReply *r, const char *what, char *err, size_t errlen)
{
    int rc = 0;
    if (!r)
        rc = util_err(err, errlen, "redis %s: %s", what, c->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        rc = util_err(err, errlen, "redis %s: %s", what, r->str);
    freeReplyObject(r);
    return rc;
}

redisContext *rconn_connect(const char *url, int timeout_ms, char *err, size_t errlen)
{
    rconn_url u;
    if (rconn_parse_url(url, &u, err, errlen) != 0)
        return NULL;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c =
        timeout_ms > 0 ? redisConnectWithTimeout(u.host, u.port, tv) : redisConnect(u.host, u.port);
    if (!c || c->err) {
        util_err(err, errlen, "redis connect %s:%d: %s", u.host, u.port,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    if (timeout_ms > 0)
        redisSetTimeout(c, tv);
    if (u.password[0] &&
        simple_ok(c, redisCommand(c, "AUTH %s", u.password), "AUTH", err, errlen) != 0)
        goto fail;
    if (u.db && simple_ok(c, redisCommand(c, "SELECT %d", u.db), "SELECT", err, errlen) != 0)
        goto fail;
    return c;
fail:
    redisFree(c);
    return NULL;
}

int rconn_ping(redisContext *c, char *err, size_t errlen)
{
    redisReply *r = redisCommand(c, "PING");
    if (!r)
        return util_err(err, errlen, "redis PING: %s", c->errstr);
    int ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    freeReplyObject(r);
    return ok ? 0 : util_err(err, errlen, "redis PING: unexpected reply");
}
