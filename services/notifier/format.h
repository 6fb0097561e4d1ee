/* format: turns a notification (the JSON snapshot a group flush stores in the outbox) into
 * what each channel expects — Slack Block Kit, Telegram MarkdownV2, an RFC 5322 e-mail,
 * a webhook body — treating every alert field as hostile text: MarkdownV2 and Slack
 * mrkdwn are escaped, e-mail headers cannot be injected (CR/LF removed, non-ASCII as
 * RFC 2047 encoded words, body base64), lengths are capped on UTF-8 boundaries.
 *
 * Notification payload: {"status":"firing"|"resolved","severity":"...","route":"...",
 *   "test":bool, "alerts":[{"dedup_key","status","severity","category","source","title",
 *   "message","link","labels":{},"first_seen","occurrences"}]}
 *
 * Memory: format_note borrows every string from the cJSON it was parsed from (keep that
 * alive), owns only its alerts array (format_note_free). Every *_new result is malloc'd
 * and owned by the caller. */
#ifndef PAIMON_NOTIFIER_FORMAT_H
#define PAIMON_NOTIFIER_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define FORMAT_MAX_ALERTS   10 /* alerts shown in one message; the rest are counted */
#define FORMAT_TITLE_MAX    200
#define FORMAT_MESSAGE_MAX  1500
#define FORMAT_LABEL_MAX    200
#define FORMAT_MAX_LABELS   12
#define FORMAT_TELEGRAM_MAX 4096

typedef struct format_alert {
    const char *dedup_key, *status, *severity, *category, *source, *title, *message, *link,
        *first_seen;
    int64_t occurrences;
    const cJSON *labels; /* object of strings, may be NULL */
} format_alert;

typedef struct format_note {
    const char *status;   /* "firing" | "resolved" */
    const char *severity; /* highest of the alerts */
    const char *route;    /* may be "" */
    int test;
    format_alert *alerts;
    size_t nalerts;
} format_note;

int format_note_parse(const cJSON *payload, format_note *out, char *err, size_t errlen);
void format_note_free(format_note *n);

/* A growable string. */
typedef struct format_buf {
    char *p;
    size_t len, cap;
} format_buf;
void format_buf_init(format_buf *b);
void format_buf_puts(format_buf *b, const char *s);
void format_buf_putn(format_buf *b, const char *s, size_t n);
void format_buf_printf(format_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the string over (caller frees) and resets b. */
char *format_buf_take(format_buf *b);

/* Length of the longest prefix of s within max bytes that ends on a UTF-8 character
 * boundary. */
size_t format_utf8_prefix(const char *s, size_t max);

/* Telegram MarkdownV2: '\' before every one of _ * [ ] ( ) ~ ` > # + - = | { } . ! and
 * before '\' itself. Appends to b. */
void format_mdv2_escape(format_buf *b, const char *s);
char *format_mdv2_escape_new(const char *s);
/* Inside the (...) of an inline link only ')' and '\' are escaped. */
void format_mdv2_escape_url(format_buf *b, const char *s);
/* Slack mrkdwn: & < > as HTML entities (Slack's only required escapes). */
void format_slack_escape(format_buf *b, const char *s);

/* One line summary: "[CRITICAL] title" / "[RESOLVED] title" / "[WARNING] 3 alerts: ...". */
char *format_summary_new(const format_note *n);

/* Slack incoming-webhook body: {"text": summary, "blocks": [header, sections, fields,
 * context, link button]}. */
char *format_slack_new(const format_note *n);
/* Telegram sendMessage body for one chat: {"chat_id","text","parse_mode":"MarkdownV2",
 * "disable_web_page_preview":true}; text fits FORMAT_TELEGRAM_MAX. */
char *format_telegram_new(const format_note *n, const char *chat_id);
/* Only the MarkdownV2 text (tests). */
char *format_telegram_text_new(const format_note *n);

/* An address we are willing to put in a header: 3..254 bytes, one '@', no spaces,
 * controls, quotes, angle brackets, commas or semicolons. */
int format_email_addr_ok(const char *addr);
/* Complete RFC 5322 message (CRLF line ends): Date, From, To, Subject, Message-ID,
 * MIME-Version, Content-Type text/plain; charset=utf-8, base64 body. NULL when an
 * address is not acceptable. */
char *format_email_new(const format_note *n, const char *from, const char *const *to, size_t nto,
                       int64_t now_ms, const char *message_id);
/* RFC 2047 encoded word when s is not plain printable ASCII, else s; CR/LF never pass. */
char *format_header_value_new(const char *s);

/* Webhook body: {"id":"<notification id>","event":event,"created_at":ts,"data":payload}. */
char *format_webhook_new(const cJSON *payload, const char *event, int64_t notification_id,
                         int64_t now_ms);

#endif
