/* openapi_check: test-side check that an API answer is what schemas/openapi.yaml
 * promises for its route and status. The tests that drive the gateway (the gateway's
 * own middleware, every routed resource) validate each response through this, so a
 * wrong answer fails a test instead of reaching a client.
 *
 * The document is loaded once and the compiled schemas cached per (method, path
 * template, status); oa_free releases them. An undocumented route or status fails the
 * calling test (cmocka assert). */
#ifndef PAIMON_TEST_OPENAPI_CHECK_H
#define PAIMON_TEST_OPENAPI_CHECK_H

#include <stddef.h>

/* 0 when the answer matches: a JSON body against its schema; any other body only
 * under a documented content type (ctype as the server sent it; NULL = unknown, then a
 * non-JSON body passes only where the document lists text/html, as for libevent's own
 * error pages). -1 with the reason in err. */
int oa_check_response(const char *method, const char *path, long status, const char *ctype,
                      const char *body, char *err, size_t errlen);
void oa_free(void);
/* Literal path segments of a route pattern ("{id}" and ":id" are not): where several
 * patterns match, the most literal one is the route, as in the router. */
int oa_literal_segments(const char *pattern);

#endif
