/* channel: one delivery attempt to Slack, Telegram, an SMTP relay or a webhook, over a
 * caller-owned libcurl easy handle (reused, so connections stay alive between messages).
 * Each call fills a channel_result: whether a response came, the status (HTTP status,
 * Telegram error_code, or SMTP reply code), the latency, how long a 429 asks us to wait,
 * the retry class and a short error text. Error texts never contain the URL or token:
 * only libcurl's generic message or the service's own short description.
 *
 * Memory: the CURL handle, bodies and secrets are borrowed for the call. */
#ifndef PAIMON_NOTIFIER_CHANNEL_H
#define PAIMON_NOTIFIER_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "retry.h"

#define CHANNEL_ERROR_MAX 200

typedef struct channel_result {
    int responded; /* a status came back */
    long status;
    int64_t latency_ms;
    int64_t retry_after_ms; /* for RETRY_PAUSE; default 1000 when the service gave none */
    retry_class cls;
    char error[CHANNEL_ERROR_MAX];
} channel_result;

void channel_send_slack(CURL *h, const char *webhook_url, const char *body, long timeout_ms,
                        channel_result *r);
/* api_base e.g. "https://api.telegram.org" (no trailing slash); token is the bot token. */
void channel_send_telegram(CURL *h, const char *api_base, const char *token, const char *body,
                           long timeout_ms, channel_result *r);
/* Signs "<now>.<body>" with secret (see sign.h); X-Paimon-Delivery carries delivery_id so
 * receivers can drop a redelivered message, X-Paimon-Event the event name. */
void channel_send_webhook(CURL *h, const char *url, const char *secret, const char *body,
                          const char *delivery_id, const char *event, long timeout_ms,
                          channel_result *r);
/* smtp_url "smtp://host:port" or "smtps://..."; username/password may be NULL. With
 * credentials over smtp:// STARTTLS is required unless allow_plain is set. */
void channel_send_email(CURL *h, const char *smtp_url, const char *username, const char *password,
                        int allow_plain, const char *from, const char *const *to, size_t nto,
                        const char *message, long timeout_ms, channel_result *r);

/* Interprets a Telegram Bot API reply body ({"ok":...}); exposed for tests. */
void channel_telegram_reply(const char *body, long http_status, channel_result *r);

#endif
