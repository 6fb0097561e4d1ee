/* channel: libcurl senders (see channel.h). */
#include "channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "format.h"
#include "sign.h"
#include "util.h"

#define REPLY_MAX (64 * 1024)

typedef struct sink {
    char buf[REPLY_MAX + 1];
    size_t len;
    char retry_after[64];
} sink;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    sink *s = ud;
    size_t len = sz * n, room = REPLY_MAX - s->len;
    size_t take = len < room ? len : room; /* the rest is read and dropped */
    memcpy(s->buf + s->len, p, take);
    s->len += take;
    s->buf[s->len] = '\0';
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    sink *s = ud;
    size_t len = sz * n;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        size_t v = len - 12 < sizeof s->retry_after - 1 ? len - 12 : sizeof s->retry_after - 1;
        memcpy(s->retry_after, p + 12, v);
        s->retry_after[v] = '\0';
        s->retry_after[strcspn(s->retry_after, "\r\n")] = '\0';
    }
    return len;
}

/* Keeps printable ASCII of a service's reply for the delivery log. */
static void set_error_text(channel_result *r, const char *prefix, const char *text)
{
    char clean[120];
    size_t j = 0;
    for (size_t i = 0; text && text[i] && j < sizeof clean - 1; i++)
        clean[j++] = (text[i] >= ' ' && text[i] < 0x7f) ? text[i] : '?';
    clean[j] = '\0';
    snprintf(r->error, sizeof r->error, "%s%s", prefix, clean);
}

static void reset(CURL *h, sink *s, long timeout_ms)
{
    curl_easy_reset(h);
    s->len = 0;
    s->buf[0] = '\0';
    s->retry_after[0] = '\0';
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
}

/* POSTs a JSON body; fills status, latency, retry-after and a generic classification. */
static void post_json(CURL *h, const char *url, const char *body, struct curl_slist *extra,
                      long timeout_ms, sink *s, channel_result *r)
{
    memset(r, 0, sizeof *r);
    reset(h, s, timeout_ms);
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    for (struct curl_slist *e = extra; e; e = e->next)
        hd = curl_slist_append(hd, e->data);
    hd = curl_slist_append(hd, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_USERAGENT, "paimon-notifier/1");
    int64_t t0 = util_mono_ms();
    CURLcode rc = curl_easy_perform(h);
    r->latency_ms = util_mono_ms() - t0;
    curl_slist_free_all(hd);
    if (rc != CURLE_OK) {
        r->responded = 0;
        r->cls = RETRY_AGAIN;
        /* Only libcurl's generic text: the URL (and any token in it) never reaches logs. */
        snprintf(r->error, sizeof r->error, "transport: %s", curl_easy_strerror(rc));
        return;
    }
    r->responded = 1;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    r->cls = retry_classify_http(1, r->status);
    if (r->cls == RETRY_PAUSE) {
        int64_t ra = retry_after_header_ms(s->retry_after, util_now_ms());
        r->retry_after_ms = ra >= 0 ? ra : 1000;
    }
}

void channel_send_slack(CURL *h, const char *webhook_url, const char *body, long timeout_ms,
                        channel_result *r)
{
    sink *s = util_malloc(sizeof *s);
    post_json(h, webhook_url, body, NULL, timeout_ms, s, r);
    if (r->responded && r->cls != RETRY_SENT) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "slack %ld: ", r->status);
        set_error_text(r, prefix, s->buf);
    }
    free(s);
}

void channel_telegram_reply(const char *body, long http_status, channel_result *r)
{
    cJSON *o = cJSON_Parse(body);
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(o, "ok");
    if (cJSON_IsTrue(ok)) {
        r->cls = RETRY_SENT;
        r->status = http_status;
        cJSON_Delete(o);
        return;
    }
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(o, "error_code");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(o, "description");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(params, "retry_after");
    long c = cJSON_IsNumber(code) ? (long)code->valuedouble : http_status;
    r->status = c;
    if (!o || !cJSON_IsFalse(ok)) {
        /* Not the Bot API's shape (a proxy page?): judge by the HTTP status alone. */
        r->cls = retry_classify_http(1, http_status);
        if (r->cls == RETRY_SENT)
            r->cls = RETRY_AGAIN;
        snprintf(r->error, sizeof r->error, "telegram %ld: unexpected reply", http_status);
    } else {
        r->cls = retry_classify_http(1, c);
        if (r->cls == RETRY_SENT)
            r->cls = RETRY_PERMANENT;
        char prefix[32];
        snprintf(prefix, sizeof prefix, "telegram %ld: ", c);
        set_error_text(r, prefix, cJSON_IsString(desc) ? desc->valuestring : "");
    }
    if (r->cls == RETRY_PAUSE)
        r->retry_after_ms = cJSON_IsNumber(ra) && ra->valuedouble >= 0 && ra->valuedouble < 86400
                                ? (int64_t)ra->valuedouble * 1000
                                : 1000;
    cJSON_Delete(o);
}

void channel_send_telegram(CURL *h, const char *api_base, const char *token, const char *body,
                           long timeout_ms, channel_result *r)
{
    size_t len = strlen(api_base) + strlen(token) + 32;
    char *url = util_malloc(len);
    snprintf(url, len, "%s/bot%s/sendMessage", api_base, token);
    sink *s = util_malloc(sizeof *s);
    post_json(h, url, body, NULL, timeout_ms, s, r);
    memset(url, 0, len); /* holds the token */
    free(url);
    if (r->responded) {
        int64_t header_ra = r->retry_after_ms;
        channel_telegram_reply(s->buf, r->status, r);
        if (r->cls == RETRY_PAUSE && header_ra > r->retry_after_ms)
            r->retry_after_ms = header_ra;
    }
    free(s);
}

void channel_send_webhook(CURL *h, const char *url, const char *secret, const char *body,
                          const char *delivery_id, const char *event, long timeout_ms,
                          channel_result *r)
{
    int64_t ts = util_now_ms() / 1000;
    char sig[SIGN_VALUE_LEN], line[256];
    memset(r, 0, sizeof *r);
    if (sign_webhook(secret, strlen(secret), ts, body, strlen(body), sig, r->error,
                     sizeof r->error) != 0) {
        r->cls = RETRY_PERMANENT;
        return;
    }
    struct curl_slist *hd = NULL;
    snprintf(line, sizeof line, SIGN_HEADER_TS ": %lld", (long long)ts);
    hd = curl_slist_append(hd, line);
    snprintf(line, sizeof line, SIGN_HEADER_SIG ": %s", sig);
    hd = curl_slist_append(hd, line);
    snprintf(line, sizeof line, "X-Paimon-Delivery: %s", delivery_id);
    hd = curl_slist_append(hd, line);
    snprintf(line, sizeof line, "X-Paimon-Event: %s", event);
    hd = curl_slist_append(hd, line);
    sink *s = util_malloc(sizeof *s);
    post_json(h, url, body, hd, timeout_ms, s, r);
    curl_slist_free_all(hd);
    if (r->responded && r->cls != RETRY_SENT) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "webhook %ld: ", r->status);
        set_error_text(r, prefix, s->buf);
    }
    free(s);
}

typedef struct upload {
    const char *p;
    size_t left;
} upload;

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
    upload *u = ud;
    size_t take = sz * n < u->left ? sz * n : u->left;
    memcpy(buf, u->p, take);
    u->p += take;
    u->left -= take;
    return take;
}

void channel_send_email(CURL *h, const char *smtp_url, const char *username, const char *password,
                        int allow_plain, const char *from, const char *const *to, size_t nto,
                        const char *message, long timeout_ms, channel_result *r)
{
    memset(r, 0, sizeof *r);
    if (strncmp(smtp_url, "smtp://", 7) != 0 && strncmp(smtp_url, "smtps://", 8) != 0) {
        r->cls = RETRY_PERMANENT;
        snprintf(r->error, sizeof r->error, "smtp_url must be smtp:// or smtps://");
        return;
    }
    sink *s = util_malloc(sizeof *s);
    reset(h, s, timeout_ms);
    char addr[300];
    snprintf(addr, sizeof addr, "<%s>", from);
    struct curl_slist *rcpt = NULL;
    for (size_t i = 0; i < nto; i++) {
        char a[300];
        snprintf(a, sizeof a, "<%s>", to[i]);
        rcpt = curl_slist_append(rcpt, a);
    }
    upload u = {message, strlen(message)};
    curl_easy_setopt(h, CURLOPT_URL, smtp_url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, addr);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &u);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)u.left);
    if (username && *username) {
        curl_easy_setopt(h, CURLOPT_USERNAME, username);
        if (password)
            curl_easy_setopt(h, CURLOPT_PASSWORD, password);
        if (!allow_plain)
            curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    } else {
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    }
    int64_t t0 = util_mono_ms();
    CURLcode rc = curl_easy_perform(h);
    r->latency_ms = util_mono_ms() - t0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    r->responded = r->status > 0;
    if (rc == CURLE_OK) {
        r->cls = RETRY_SENT;
    } else {
        r->cls = r->status > 0 ? retry_classify_smtp(r->status) : RETRY_AGAIN;
        if (r->cls == RETRY_SENT)
            r->cls = RETRY_AGAIN;
        snprintf(r->error, sizeof r->error, "smtp %ld: %s", r->status, curl_easy_strerror(rc));
    }
    curl_slist_free_all(rcpt);
    free(s);
}
