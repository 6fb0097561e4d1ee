/* openapi_check: responses checked against schemas/openapi.yaml (see the header). */
#include "openapi_check.h"
#include "harness.h"
#include "jsonschema.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

typedef struct {
    char key[300];
    jsonschema *s;
} compiled;

static cJSON *spec;
static compiled cache[192];
static int ncache;

static void load_spec(void)
{
    if (spec)
        return;
    FILE *f = fopen(th_repo_path("schemas/openapi.yaml"), "rb");
    assert_non_null(f);
    static char txt[1 << 21];
    size_t n = fread(txt, 1, sizeof txt - 1, f);
    fclose(f);
    txt[n] = '\0';
    spec = cJSON_Parse(txt); /* JSON-style YAML, see services/api/gw.c */
    assert_non_null(spec);
}

/* OpenAPI refers to "#/components/schemas/X"; the validator knows "#/$defs/X". */
static void rewrite_refs(cJSON *j)
{
    cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        if (cJSON_IsString(it) && it->string && strcmp(it->string, "$ref") == 0 &&
            strncmp(it->valuestring, "#/components/schemas/", 21) == 0) {
            char v[256];
            snprintf(v, sizeof v, "#/$defs/%s", it->valuestring + 21);
            cJSON_SetValuestring(it, v);
        }
        rewrite_refs(it);
    }
}

static int path_matches(const char *tmpl, const char *path, size_t plen)
{
    const char *t = tmpl, *p = path, *pend = path + plen;
    while (*t && p < pend) {
        if (*t == '{') {
            while (*t && *t != '}')
                t++;
            if (*t)
                t++;
            const char *s = p;
            while (p < pend && *p != '/')
                p++;
            if (p == s)
                return 0;
        } else if (*t++ != *p++) {
            return 0;
        }
    }
    return !*t && p == pend;
}

int oa_literal_segments(const char *t)
{
    int n = 0;
    for (const char *s = t; *s; s++)
        if (*s == '/' && s[1] && s[1] != '{' && s[1] != ':')
            n++;
    return n;
}

/* The documented response of method + path + status (key names it). */
static const cJSON *response_doc(const char *method, const char *path, long status, char *key,
                                 size_t keylen)
{
    load_spec();
    size_t plen = strcspn(path, "?");
    const cJSON *paths = cJSON_GetObjectItem(spec, "paths"), *pi = NULL, *cand;
    cJSON_ArrayForEach(cand, paths)
    {
        /* the most literal template wins, as in the router */
        if (path_matches(cand->string, path, plen) &&
            (!pi || oa_literal_segments(cand->string) > oa_literal_segments(pi->string)))
            pi = cand;
    }
    if (!pi)
        fprintf(stderr, "undocumented path %s\n", path);
    assert_non_null(pi);
    char m[16];
    size_t i = 0;
    for (; i < sizeof m - 1 && method[i]; i++)
        m[i] = (char)(method[i] | 0x20);
    m[i] = '\0';
    const cJSON *op = cJSON_GetObjectItem(pi, m);
    assert_non_null(op);
    char st[8];
    snprintf(st, sizeof st, "%ld", status);
    const cJSON *resp = cJSON_GetObjectItem(cJSON_GetObjectItem(op, "responses"), st);
    if (!resp)
        fprintf(stderr, "%s %s: status %s is not documented\n", method, pi->string, st);
    assert_non_null(resp);
    const cJSON *r = cJSON_GetObjectItem(resp, "$ref");
    if (cJSON_IsString(r)) {
        assert_true(strncmp(r->valuestring, "#/components/responses/", 23) == 0);
        resp = cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(spec, "components"), "responses"),
            r->valuestring + 23);
        assert_non_null(resp);
    }
    snprintf(key, keylen, "%s %s %s", m, pi->string, st);
    return resp;
}

/* The compiled JSON response schema of method + path + status. */
static const jsonschema *response_schema(const char *method, const char *path, long status)
{
    char key[300];
    const cJSON *resp = response_doc(method, path, status, key, sizeof key);
    for (int k = 0; k < ncache; k++)
        if (strcmp(cache[k].key, key) == 0)
            return cache[k].s;
    const cJSON *schema = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "content"), "application/json"), "schema");
    assert_non_null(schema);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(
        doc, "$defs",
        cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetObjectItem(spec, "components"), "schemas"),
                        1));
    cJSON *all = cJSON_AddArrayToObject(doc, "allOf");
    cJSON_AddItemToArray(all, cJSON_Duplicate(schema, 1));
    rewrite_refs(doc);
    char *txt = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    char err[UTIL_ERRLEN];
    jsonschema *js = jsonschema_compile(txt, err, sizeof err);
    free(txt);
    if (!js)
        fprintf(stderr, "%s: %s\n", key, err);
    assert_non_null(js);
    assert_true(ncache < (int)(sizeof cache / sizeof cache[0]));
    util_strlcpy(cache[ncache].key, key, sizeof cache[ncache].key);
    cache[ncache++].s = js;
    return js;
}

int oa_check_response(const char *method, const char *path, long status, const char *ctype,
                      const char *body, char *err, size_t errlen)
{
    char key[300], ct[64];
    if (ctype && *ctype && strncasecmp(ctype, "application/json", 16) != 0) {
        const cJSON *resp = response_doc(method, path, status, key, sizeof key);
        util_strlcpy(ct, ctype, sizeof ct);
        ct[strcspn(ct, "; ")] = '\0';
        if (cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "content"), ct))
            return 0;
        return util_err(err, errlen, "content type %s is not documented", ct);
    }
    cJSON *j = body ? cJSON_Parse(body) : NULL;
    if (!j) {
        if (!ctype) {
            const cJSON *resp = response_doc(method, path, status, key, sizeof key);
            if (cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "content"), "text/html"))
                return 0;
        }
        return util_err(err, errlen, "response is not JSON");
    }
    const jsonschema *js = response_schema(method, path, status);
    int rc = jsonschema_validate_all(js, j, err, errlen);
    cJSON_Delete(j);
    return rc;
}

void oa_free(void)
{
    cJSON_Delete(spec);
    spec = NULL;
    for (int k = 0; k < ncache; k++)
        jsonschema_free(cache[k].s);
    ncache = 0;
}
