/* format: channel message builders over a parsed notification (see format.h). */
#include "format.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "envelope.h"
#include "util.h"

/* ---- buffer ---- */

void format_buf_init(format_buf *b)
{
    b->cap = 256;
    b->len = 0;
    b->p = util_malloc(b->cap);
    b->p[0] = '\0';
}

static void reserve(format_buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    while (b->len + more + 1 > b->cap)
        b->cap *= 2;
    char *g = realloc(b->p, b->cap);
    if (!g)
        abort();
    b->p = g;
}

void format_buf_putn(format_buf *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void format_buf_puts(format_buf *b, const char *s)
{
    format_buf_putn(b, s, strlen(s));
}

void format_buf_printf(format_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *format_buf_take(format_buf *b)
{
    char *p = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

size_t format_utf8_prefix(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return n;
    /* Back up over continuation bytes so a multi-byte character is never split. */
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* ---- note ---- */

static const char *str_or(const cJSON *o, const char *k, const char *def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : def;
}

int format_note_parse(const cJSON *payload, format_note *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(payload))
        return util_err(err, errlen, "notification payload is not an object");
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(payload, "alerts");
    if (!cJSON_IsArray(alerts) || cJSON_GetArraySize(alerts) < 1)
        return util_err(err, errlen, "notification has no alerts");
    out->status = str_or(payload, "status", "firing");
    out->severity = str_or(payload, "severity", "info");
    out->route = str_or(payload, "route", "");
    out->test = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(payload, "test"));
    out->nalerts = (size_t)cJSON_GetArraySize(alerts);
    out->alerts = util_calloc(out->nalerts, sizeof *out->alerts);
    size_t i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, alerts)
    {
        format_alert *f = &out->alerts[i++];
        f->dedup_key = str_or(a, "dedup_key", "");
        f->status = str_or(a, "status", out->status);
        f->severity = str_or(a, "severity", out->severity);
        f->category = str_or(a, "category", "");
        f->source = str_or(a, "source", "");
        f->title = str_or(a, "title", "(untitled)");
        f->message = str_or(a, "message", "");
        f->link = str_or(a, "link", "");
        f->first_seen = str_or(a, "first_seen", "");
        const cJSON *occ = cJSON_GetObjectItemCaseSensitive(a, "occurrences");
        f->occurrences = cJSON_IsNumber(occ) ? (int64_t)occ->valuedouble : 1;
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(a, "labels");
        f->labels = cJSON_IsObject(labels) ? labels : NULL;
    }
    return 0;
}

void format_note_free(format_note *n)
{
    if (!n)
        return;
    free(n->alerts);
    n->alerts = NULL;
    n->nalerts = 0;
}

static const char *sev_upper(const char *sev)
{
    if (strcmp(sev, "critical") == 0)
        return "CRITICAL";
    if (strcmp(sev, "warning") == 0)
        return "WARNING";
    return "INFO";
}

static const char *sev_icon(const format_note *n)
{
    if (strcmp(n->status, "resolved") == 0)
        return "\xE2\x9C\x85"; /* check mark */
    if (strcmp(n->severity, "critical") == 0)
        return "\xF0\x9F\x94\xB4"; /* red circle */
    if (strcmp(n->severity, "warning") == 0)
        return "\xF0\x9F\x9F\xA0"; /* orange circle */
    return "\xF0\x9F\x94\xB5";     /* blue circle */
}

/* Appends s cut to max bytes on a character boundary, with an ellipsis when cut. */
static void put_capped(format_buf *b, const char *s, size_t max,
                       void (*esc)(format_buf *, const char *))
{
    size_t n = format_utf8_prefix(s, max);
    char *tmp = util_malloc(n + 4);
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (n < strlen(s))
        strcat(tmp, "\xE2\x80\xA6");
    if (esc)
        esc(b, tmp);
    else
        format_buf_puts(b, tmp);
    free(tmp);
}

static void put_heading(format_buf *b, const format_note *n)
{
    if (n->test)
        format_buf_puts(b, "[TEST] ");
    if (strcmp(n->status, "resolved") == 0)
        format_buf_puts(b, "[RESOLVED] ");
    else
        format_buf_printf(b, "[%s] ", sev_upper(n->severity));
    if (n->nalerts > 1)
        format_buf_printf(b, "%zu alerts: ", n->nalerts);
}

char *format_summary_new(const format_note *n)
{
    format_buf b;
    format_buf_init(&b);
    put_heading(&b, n);
    put_capped(&b, n->alerts[0].title, FORMAT_TITLE_MAX, NULL);
    if (n->nalerts > 1)
        format_buf_printf(&b, " (+%zu more)", n->nalerts - 1);
    return format_buf_take(&b);
}

/* ---- escaping ---- */

void format_mdv2_escape(format_buf *b, const char *s)
{
    static const char special[] = "_*[]()~`>#+-=|{}.!\\";
    for (; *s; s++) {
        if (strchr(special, *s))
            format_buf_putn(b, "\\", 1);
        format_buf_putn(b, s, 1);
    }
}

char *format_mdv2_escape_new(const char *s)
{
    format_buf b;
    format_buf_init(&b);
    format_mdv2_escape(&b, s);
    return format_buf_take(&b);
}

void format_mdv2_escape_url(format_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == ')' || *s == '\\')
            format_buf_putn(b, "\\", 1);
        format_buf_putn(b, s, 1);
    }
}

void format_slack_escape(format_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '&')
            format_buf_puts(b, "&amp;");
        else if (*s == '<')
            format_buf_puts(b, "&lt;");
        else if (*s == '>')
            format_buf_puts(b, "&gt;");
        else
            format_buf_putn(b, s, 1);
    }
}

static int link_ok(const char *l)
{
    if (!l || (strncmp(l, "https://", 8) != 0 && strncmp(l, "http://", 7) != 0))
        return 0;
    for (const char *p = l; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '<' || *p == '>' || *p == 0x7f)
            return 0;
    return strlen(l) <= 500;
}

/* ---- Slack ---- */

static char *capped_new(const char *s, size_t max, void (*esc)(format_buf *, const char *))
{
    format_buf b;
    format_buf_init(&b);
    put_capped(&b, s, max, esc);
    return format_buf_take(&b);
}

static void add_field(cJSON *fields, const char *name, const char *value)
{
    if (cJSON_GetArraySize(fields) >= 10 || !value || !*value)
        return;
    format_buf b;
    format_buf_init(&b);
    format_buf_puts(&b, "*");
    put_capped(&b, name, 64, format_slack_escape);
    format_buf_puts(&b, "*\n");
    put_capped(&b, value, FORMAT_LABEL_MAX, format_slack_escape);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "type", "mrkdwn");
    cJSON_AddStringToObject(f, "text", b.p);
    cJSON_AddItemToArray(fields, f);
    free(b.p);
}

static cJSON *text_obj(const char *type, const char *text)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", type);
    cJSON_AddStringToObject(t, "text", text);
    return t;
}

char *format_slack_new(const format_note *n)
{
    cJSON *root = cJSON_CreateObject();
    char *summary = format_summary_new(n);
    cJSON_AddStringToObject(root, "text", summary); /* notification / fallback text */
    cJSON *blocks = cJSON_AddArrayToObject(root, "blocks");

    format_buf h;
    format_buf_init(&h);
    format_buf_printf(&h, "%s ", sev_icon(n));
    format_buf_puts(&h, summary);
    char *header = capped_new(h.p, 150, NULL); /* Slack's header limit */
    free(h.p);
    cJSON *hb = cJSON_CreateObject();
    cJSON_AddStringToObject(hb, "type", "header");
    cJSON *ht = text_obj("plain_text", header);
    cJSON_AddBoolToObject(ht, "emoji", 1);
    cJSON_AddItemToObject(hb, "text", ht);
    cJSON_AddItemToArray(blocks, hb);
    free(header);
    free(summary);

    size_t shown = n->nalerts < FORMAT_MAX_ALERTS ? n->nalerts : FORMAT_MAX_ALERTS;
    for (size_t i = 0; i < shown; i++) {
        const format_alert *a = &n->alerts[i];
        format_buf t;
        format_buf_init(&t);
        format_buf_puts(&t, "*");
        put_capped(&t, a->title, FORMAT_TITLE_MAX, format_slack_escape);
        format_buf_puts(&t, "*");
        if (*a->message) {
            format_buf_puts(&t, "\n");
            put_capped(&t, a->message, FORMAT_MESSAGE_MAX, format_slack_escape);
        }
        cJSON *sec = cJSON_CreateObject();
        cJSON_AddStringToObject(sec, "type", "section");
        cJSON_AddItemToObject(sec, "text", text_obj("mrkdwn", t.p));
        free(t.p);
        cJSON *fields = cJSON_CreateArray();
        add_field(fields, "Severity", a->severity);
        add_field(fields, "Status", a->status);
        add_field(fields, "Category", a->category);
        add_field(fields, "Source", a->source);
        char occ[24];
        snprintf(occ, sizeof occ, "%lld", (long long)a->occurrences);
        add_field(fields, "Occurrences", occ);
        const cJSON *l;
        if (a->labels)
            cJSON_ArrayForEach(l, a->labels) if (cJSON_IsString(l))
                add_field(fields, l->string, l->valuestring);
        cJSON_AddItemToObject(sec, "fields", fields);
        cJSON_AddItemToArray(blocks, sec);
    }
    format_buf c;
    format_buf_init(&c);
    if (n->nalerts > shown)
        format_buf_printf(&c, "and %zu more alerts · ", n->nalerts - shown);
    format_buf_puts(&c, "dedup key ");
    put_capped(&c, n->alerts[0].dedup_key, FORMAT_LABEL_MAX, format_slack_escape);
    if (*n->alerts[0].first_seen) {
        format_buf_puts(&c, " · first seen ");
        put_capped(&c, n->alerts[0].first_seen, 40, format_slack_escape);
    }
    cJSON *ctx = cJSON_CreateObject();
    cJSON_AddStringToObject(ctx, "type", "context");
    cJSON *els = cJSON_AddArrayToObject(ctx, "elements");
    cJSON_AddItemToArray(els, text_obj("mrkdwn", c.p));
    cJSON_AddItemToArray(blocks, ctx);
    free(c.p);

    if (link_ok(n->alerts[0].link)) {
        cJSON *act = cJSON_CreateObject();
        cJSON_AddStringToObject(act, "type", "actions");
        cJSON *ae = cJSON_AddArrayToObject(act, "elements");
        cJSON *btn = cJSON_CreateObject();
        cJSON_AddStringToObject(btn, "type", "button");
        cJSON_AddItemToObject(btn, "text", text_obj("plain_text", "Open"));
        cJSON_AddStringToObject(btn, "url", n->alerts[0].link);
        cJSON_AddItemToArray(ae, btn);
        cJSON_AddItemToArray(blocks, act);
    }
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

/* ---- Telegram ---- */

static void mdv2_line(format_buf *b, const char *name, const char *value)
{
    if (!value || !*value)
        return;
    format_buf_puts(b, "\n*");
    put_capped(b, name, 64, format_mdv2_escape);
    format_buf_puts(b, ":* ");
    put_capped(b, value, FORMAT_LABEL_MAX, format_mdv2_escape);
}

char *format_telegram_text_new(const format_note *n)
{
    format_buf b;
    format_buf_init(&b);
    char *summary = format_summary_new(n);
    format_buf_printf(&b, "%s *", sev_icon(n));
    format_mdv2_escape(&b, summary);
    format_buf_puts(&b, "*");
    free(summary);
    size_t shown = n->nalerts < FORMAT_MAX_ALERTS ? n->nalerts : FORMAT_MAX_ALERTS;
    /* Each alert's share of Telegram's 4096 characters; escaping can double bytes. */
    size_t budget = (FORMAT_TELEGRAM_MAX - 300) / shown / 4;
    for (size_t i = 0; i < shown; i++) {
        const format_alert *a = &n->alerts[i];
        format_buf_puts(&b, "\n\n");
        if (n->nalerts > 1) {
            format_buf_puts(&b, "*");
            put_capped(&b, a->title, budget / 3, format_mdv2_escape);
            format_buf_puts(&b, "*\n");
        }
        if (*a->message)
            put_capped(&b, a->message, budget, format_mdv2_escape);
        mdv2_line(&b, "Severity", a->severity);
        mdv2_line(&b, "Category", a->category);
        mdv2_line(&b, "Source", a->source);
        if (a->labels) {
            int k = 0;
            const cJSON *l;
            cJSON_ArrayForEach(l, a->labels) if (cJSON_IsString(l) && k++ < FORMAT_MAX_LABELS &&
                                                 n->nalerts == 1)
                mdv2_line(&b, l->string, l->valuestring);
        }
        if (link_ok(a->link)) {
            format_buf_puts(&b, "\n[Open](");
            format_mdv2_escape_url(&b, a->link);
            format_buf_puts(&b, ")");
        }
    }
    if (n->nalerts > shown)
        format_buf_printf(&b, "\n\n_and %zu more_", n->nalerts - shown);
    return format_buf_take(&b);
}

char *format_telegram_new(const format_note *n, const char *chat_id)
{
    char *text = format_telegram_text_new(n);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "chat_id", chat_id);
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddStringToObject(o, "parse_mode", "MarkdownV2");
    cJSON_AddBoolToObject(o, "disable_web_page_preview", 1);
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(text);
    return out;
}

/* ---- e-mail ---- */

int format_email_addr_ok(const char *a)
{
    size_t n = a ? strlen(a) : 0;
    if (n < 3 || n > 254)
        return 0;
    int at = 0;
    for (const char *p = a; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c >= 0x7f || strchr("\"<>(),;:\\[]", c))
            return 0;
        if (c == '@')
            at++;
    }
    const char *s = strchr(a, '@');
    return at == 1 && s != a && s[1] != '\0';
}

char *format_header_value_new(const char *s)
{
    int plain = 1;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f)
            plain = 0;
    if (plain && strlen(s) < 900)
        return util_strdup(s);
    /* Encoded words of at most 45 input bytes (60 base64 chars) each, cut on character
     * boundaries; CR, LF and other controls become spaces first. */
    size_t n = strlen(s);
    char *clean = util_malloc(n + 1);
    for (size_t i = 0; i <= n; i++)
        clean[i] = (i < n && (unsigned char)s[i] < ' ') ? ' ' : s[i];
    format_buf b;
    format_buf_init(&b);
    const char *p = clean;
    int first = 1;
    while (*p) {
        size_t take = format_utf8_prefix(p, 45);
        if (take == 0)
            take = 1;
        char *enc = crypto_b64_encode_new((const uint8_t *)p, take);
        format_buf_printf(&b, "%s=?UTF-8?B?%s?=", first ? "" : "\r\n ", enc);
        free(enc);
        p += take;
        first = 0;
    }
    free(clean);
    return format_buf_take(&b);
}

static void email_body(format_buf *b, const format_note *n)
{
    char *summary = format_summary_new(n);
    format_buf_puts(b, summary);
    format_buf_puts(b, "\n\n");
    free(summary);
    for (size_t i = 0; i < n->nalerts && i < FORMAT_MAX_ALERTS; i++) {
        const format_alert *a = &n->alerts[i];
        put_capped(b, a->title, FORMAT_TITLE_MAX, NULL);
        format_buf_printf(b, "\n  status: %s\n  severity: %s\n", a->status, a->severity);
        format_buf_puts(b, "  category: ");
        put_capped(b, a->category, FORMAT_LABEL_MAX, NULL);
        format_buf_puts(b, "\n  source: ");
        put_capped(b, a->source, FORMAT_LABEL_MAX, NULL);
        format_buf_printf(b, "\n  occurrences: %lld\n", (long long)a->occurrences);
        const cJSON *l;
        if (a->labels)
            cJSON_ArrayForEach(l, a->labels) if (cJSON_IsString(l))
            {
                format_buf_puts(b, "  ");
                put_capped(b, l->string, 64, NULL);
                format_buf_puts(b, ": ");
                put_capped(b, l->valuestring, FORMAT_LABEL_MAX, NULL);
                format_buf_puts(b, "\n");
            }
        if (*a->link) {
            format_buf_puts(b, "  link: ");
            put_capped(b, a->link, 500, NULL);
            format_buf_puts(b, "\n");
        }
        if (*a->message) {
            format_buf_puts(b, "\n");
            put_capped(b, a->message, FORMAT_MESSAGE_MAX * 2, NULL);
            format_buf_puts(b, "\n");
        }
        format_buf_puts(b, "\n");
    }
    if (n->nalerts > FORMAT_MAX_ALERTS)
        format_buf_printf(b, "... and %zu more alerts\n", n->nalerts - FORMAT_MAX_ALERTS);
}

char *format_email_new(const format_note *n, const char *from, const char *const *to, size_t nto,
                       int64_t now_ms, const char *message_id)
{
    if (!format_email_addr_ok(from) || nto == 0)
        return NULL;
    for (size_t i = 0; i < nto; i++)
        if (!format_email_addr_ok(to[i]))
            return NULL;
    if (!message_id || strpbrk(message_id, "\r\n<> "))
        return NULL;
    format_buf m;
    format_buf_init(&m);
    char date[64];
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    format_buf_printf(&m, "Date: %s\r\nFrom: <%s>\r\nTo: ", date, from);
    for (size_t i = 0; i < nto; i++)
        format_buf_printf(&m, "%s<%s>", i ? ",\r\n " : "", to[i]);
    char *summary = format_summary_new(n);
    size_t slen = strlen(summary) + 16;
    char *subj = util_malloc(slen);
    snprintf(subj, slen, "[Paimon] %s", summary);
    char *hv = format_header_value_new(subj);
    format_buf_printf(&m, "\r\nSubject: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n", hv,
                      message_id);
    format_buf_puts(&m, "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: base64\r\n\r\n");
    free(hv);
    free(subj);
    free(summary);
    format_buf body;
    format_buf_init(&body);
    email_body(&body, n);
    char *b64 = crypto_b64_encode_new((const uint8_t *)body.p, body.len);
    free(body.p);
    for (size_t off = 0, len = strlen(b64); off < len; off += 76) {
        format_buf_putn(&m, b64 + off, len - off < 76 ? len - off : 76);
        format_buf_puts(&m, "\r\n");
    }
    free(b64);
    return format_buf_take(&m);
}

/* ---- webhook ---- */

char *format_webhook_new(const cJSON *payload, const char *event, int64_t notification_id,
                         int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    char id[24], ts[32];
    snprintf(id, sizeof id, "%lld", (long long)notification_id);
    envelope_format_ts(now_ms, ts);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "event", event);
    cJSON_AddStringToObject(o, "created_at", ts);
    cJSON_AddItemToObject(o, "data", cJSON_Duplicate(payload, 1));
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}
