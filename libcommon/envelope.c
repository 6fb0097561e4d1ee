/* envelope: build, serialise and (strictly) parse bus message envelopes.
 *
 * Memory: envelope_new/envelope_parse return an owned envelope (envelope_free);
 * strings and payload inside belong to it. The schema comes from the jsonschema
 * embedded cache and is borrowed. */
#include "envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonschema.h"
#include "util.h"

void envelope_format_ts(int64_t ms, char out[32])
{
    /* The schema (and RFC 3339) allow years 0000..9999 only. */
    const int64_t max_ms = 253402300799999LL; /* 9999-12-31T23:59:59.999Z */
    if (ms < 0)
        ms = 0;
    if (ms > max_ms)
        ms = max_ms;
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    /* Digits by hand rather than snprintf: publishers stamp thousands per batch. */
    unsigned f[7] = {(unsigned)(tm.tm_year + 1900) % 10000u,
                     (unsigned)(tm.tm_mon + 1) % 100u,
                     (unsigned)tm.tm_mday % 100u,
                     (unsigned)tm.tm_hour % 100u,
                     (unsigned)tm.tm_min % 100u,
                     (unsigned)tm.tm_sec % 100u,
                     (unsigned)(ms % 1000)};
    static const int width[7] = {4, 2, 2, 2, 2, 2, 3};
    static const char after[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
    char *o = out;
    for (int i = 0; i < 7; i++) {
        for (int d = width[i] - 1; d >= 0; d--) {
            o[d] = (char)('0' + f[i] % 10);
            f[i] /= 10;
        }
        o += width[i];
        *o++ = after[i];
    }
    *o = '\0';
}

void envelope_trace_new(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    if (util_random(b, sizeof b) != 0) {
        /* getrandom failing is near impossible; a trace id only needs to be unlikely
         * to collide, so time and address entropy will do. */
        uint64_t a = (uint64_t)util_mono_us(), t = (uint64_t)util_now_ms() ^ (uintptr_t)b;
        memcpy(b, &a, 8);
        memcpy(b + 8, &t, 8);
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[32] = '\0';
}

envelope *envelope_new(const char *id, const char *type, const char *source, const char *trace_id,
                       cJSON *payload)
{
    if (!id || !type || !source) {
        cJSON_Delete(payload);
        return NULL;
    }
    envelope *e = util_calloc(1, sizeof *e);
    e->id = util_strdup(id);
    e->type = util_strdup(type);
    e->source = util_strdup(source);
    if (trace_id) {
        e->trace_id = util_strdup(trace_id);
    } else {
        char t[33];
        envelope_trace_new(t);
        e->trace_id = util_strdup(t);
    }
    envelope_format_ts(util_now_ms(), e->ts);
    e->payload = payload ? payload : cJSON_CreateObject();
    return e;
}

void envelope_free(envelope *e)
{
    if (!e)
        return;
    free(e->id);
    free(e->type);
    free(e->source);
    free(e->trace_id);
    free(e->priority);
    cJSON_Delete(e->payload);
    free(e);
}

int envelope_set_priority(envelope *e, const char *priority, char *err, size_t errlen)
{
    if (!e)
        return util_err(err, errlen, "no envelope");
    if (priority && strcmp(priority, "critical") != 0 && strcmp(priority, "high") != 0 &&
        strcmp(priority, "normal") != 0)
        return util_err(err, errlen, "priority must be critical, high or normal");
    free(e->priority);
    e->priority = priority ? util_strdup(priority) : NULL;
    return 0;
}

/* Builds the JSON tree; the payload is referenced, not copied, so deleting the tree
 * leaves the envelope intact. */
static cJSON *to_tree(const envelope *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int ok = cJSON_AddStringToObject(o, "id", e->id ? e->id : "") &&
             cJSON_AddStringToObject(o, "type", e->type ? e->type : "") &&
             cJSON_AddStringToObject(o, "source", e->source ? e->source : "") &&
             cJSON_AddStringToObject(o, "ts", e->ts) &&
             cJSON_AddNumberToObject(o, "attempt", e->attempt) &&
             cJSON_AddStringToObject(o, "trace_id", e->trace_id ? e->trace_id : "") &&
             (!e->priority || cJSON_AddStringToObject(o, "priority", e->priority));
    if (ok && e->payload)
        ok = cJSON_AddItemReferenceToObject(o, "payload", e->payload);
    else if (ok)
        ok = cJSON_AddObjectToObject(o, "payload") != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

char *envelope_to_json(const envelope *e)
{
    if (!e)
        return NULL;
    cJSON *o = to_tree(e);
    if (!o)
        return NULL;
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int envelope_validate(const envelope *e, char *err, size_t errlen)
{
    if (!e)
        return util_err(err, errlen, "no envelope");
    const jsonschema *s = jsonschema_embedded("envelope", err, errlen);
    if (!s)
        return -1;
    cJSON *o = to_tree(e);
    if (!o)
        return util_err(err, errlen, "out of memory");
    int rc = jsonschema_check_instance(o, err, errlen);
    if (rc == 0)
        rc = jsonschema_validate(s, o, err, errlen);
    cJSON_Delete(o);
    return rc;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* cJSON is lenient where RFC 8259 is not: it skips any byte <= 0x20 as whitespace,
 * accepts raw control characters in strings, numbers like 01 or 1., and a UTF-8
 * BOM, and cuts strings at \u0000. This pass rejects all of that before cJSON sees
 * the text; cJSON then checks the structure. */
static int strict_scan(const char *s, size_t n, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            for (i++;; i++) {
                if (i >= n)
                    return util_err(err, errlen, "invalid JSON: unterminated string");
                unsigned char ch = (unsigned char)s[i];
                if (ch == '"')
                    break;
                if (ch < 0x20)
                    return util_err(err, errlen,
                                    "invalid JSON: control character in string at byte %zu", i);
                if (ch != '\\')
                    continue;
                if (i + 1 >= n)
                    return util_err(err, errlen, "invalid JSON: unterminated string");
                char esc = s[i + 1];
                if (esc == 'u') {
                    if (i + 6 > n || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) || !is_hex(s[i + 4]) ||
                        !is_hex(s[i + 5]))
                        return util_err(err, errlen, "invalid JSON: bad \\u escape at byte %zu", i);
                    if (memcmp(s + i + 2, "0000", 4) == 0)
                        return util_err(err, errlen, "invalid JSON: \\u0000 at byte %zu", i);
                    i += 5;
                } else if (esc && strchr("\"\\/bfnrt", esc)) {
                    i++;
                } else {
                    return util_err(err, errlen, "invalid JSON: bad escape at byte %zu", i);
                }
            }
            i++;
        } else if (c == '-' || is_digit(c)) {
            size_t st = i;
            if (c == '-')
                i++;
            if (i >= n || !is_digit(s[i]))
                return util_err(err, errlen, "invalid JSON: bad number at byte %zu", st);
            if (s[i] == '0')
                i++;
            else
                while (i < n && is_digit(s[i]))
                    i++;
            if (i < n && s[i] == '.') {
                if (++i >= n || !is_digit(s[i]))
                    return util_err(err, errlen, "invalid JSON: bad number at byte %zu", st);
                while (i < n && is_digit(s[i]))
                    i++;
            }
            if (i < n && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < n && (s[i] == '+' || s[i] == '-'))
                    i++;
                if (i >= n || !is_digit(s[i]))
                    return util_err(err, errlen, "invalid JSON: bad number at byte %zu", st);
                while (i < n && is_digit(s[i]))
                    i++;
            }
            if (i < n && (is_digit(s[i]) || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                          s[i] == '+' || s[i] == '-'))
                return util_err(err, errlen, "invalid JSON: bad number at byte %zu", st);
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || strchr("{}[]:,", c) ||
                   (c >= 'a' && c <= 'z')) {
            /* structure and the letters of true/false/null: cJSON checks the grammar */
            i++;
        } else {
            return util_err(err, errlen, "invalid JSON: unexpected byte 0x%02x at %zu",
                            (unsigned char)c, i);
        }
    }
    return 0;
}

static char *take_string(cJSON *root, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    return cJSON_IsString(v) ? util_strdup(v->valuestring) : NULL;
}

int envelope_parse(const char *json, size_t len, envelope **out, char *err, size_t errlen)
{
    if (!out)
        return util_err(err, errlen, "no output");
    *out = NULL;
    if (!json)
        return util_err(err, errlen, "no message");
    if (len > ENVELOPE_MAX_BYTES)
        return util_err(err, errlen, "message too large (%zu bytes, limit %d)", len,
                        ENVELOPE_MAX_BYTES);
    if (memchr(json, '\0', len))
        return util_err(err, errlen, "invalid JSON: NUL byte");
    if (strict_scan(json, len, err, errlen) != 0)
        return -1;
    const jsonschema *schema = jsonschema_embedded("envelope", err, errlen);
    if (!schema)
        return -1;
    /* cJSON's require_null_terminated wants the terminator inside the given length. */
    char *buf = util_malloc(len + 1);
    memcpy(buf, json, len);
    buf[len] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len + 1, &end, 1);
    if (!root) {
        size_t at = end && end >= buf ? (size_t)(end - buf) : 0;
        free(buf);
        return util_err(err, errlen, "invalid JSON near byte %zu", at);
    }
    free(buf);
    if (jsonschema_check_instance(root, err, errlen) != 0 ||
        jsonschema_validate(schema, root, err, errlen) != 0) {
        cJSON_Delete(root);
        return -1;
    }
    envelope *e = util_calloc(1, sizeof *e);
    e->id = take_string(root, "id");
    e->type = take_string(root, "type");
    e->source = take_string(root, "source");
    e->trace_id = take_string(root, "trace_id");
    e->priority = take_string(root, "priority");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "ts");
    util_strlcpy(e->ts, ts->valuestring, sizeof e->ts);
    /* the schema bounds attempt to an integer in 0..1000 */
    e->attempt = (int)cJSON_GetObjectItemCaseSensitive(root, "attempt")->valuedouble;
    e->payload = cJSON_DetachItemFromObjectCaseSensitive(root, "payload");
    cJSON_Delete(root);
    *out = e;
    return 0;
}
