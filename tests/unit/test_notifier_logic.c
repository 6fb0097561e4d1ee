/* Unit tests of the notifier's pure logic: matchers and the routing tree, group keys,
 * Alertmanager timing and flush plans, MarkdownV2 / Slack / e-mail escaping of hostile
 * text, Block Kit shape, webhook HMAC (checked by openssl), backoff and Retry-After, the
 * rate-limit rule, outcome classification and secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "crypto.h"
#include "jsonschema.h"
#include "notifier/channel.h"
#include "notifier/format.h"
#include "notifier/grouping.h"
#include "notifier/match.h"
#include "notifier/retry.h"
#include "notifier/rlimit.h"
#include "notifier/secret.h"
#include "notifier/sign.h"
#include "notifier/store.h"
#include "util.h"

static match_labels labels_of(const char **k, const char **v, size_t n)
{
    match_labels l = {k, v, n};
    return l;
}

static void test_matchers(void **state)
{
    (void)state;
    cJSON *m = cJSON_Parse("[{\"name\":\"severity\",\"op\":\"=\",\"value\":\"critical\"},"
                           "{\"name\":\"category\",\"op\":\"=~\",\"value\":\"liq|price\"},"
                           "{\"name\":\"team\",\"op\":\"!=\",\"value\":\"dev\"},"
                           "{\"name\":\"env\",\"op\":\"!~\",\"value\":\"test.*\"}]");
    match_set s;
    char err[UTIL_ERRLEN];
    assert_int_equal(match_set_from_json(m, &s, err, sizeof err), 0);
    const char *k[] = {"severity", "category", "team", "env"};
    const char *v[] = {"critical", "liq", "ops", "prod"};
    match_labels l = labels_of(k, v, 4);
    assert_true(match_set_matches(&s, &l));
    v[1] = "liquidity"; /* regex is anchored: "liq" must be the whole value */
    assert_false(match_set_matches(&s, &l));
    v[1] = "price";
    v[2] = "dev";
    assert_false(match_set_matches(&s, &l));
    v[2] = "ops";
    v[3] = "testnet";
    assert_false(match_set_matches(&s, &l));
    l.n = 2; /* absent labels read as "": != dev and !~ test.* both hold */
    assert_true(match_set_matches(&s, &l));
    match_set_free(&s);
    cJSON_Delete(m);

    const char *bad[] = {"[{\"name\":\"a b\",\"op\":\"=\",\"value\":\"x\"}]",
                         "[{\"name\":\"a\",\"op\":\"==\",\"value\":\"x\"}]",
                         "[{\"name\":\"a\",\"op\":\"=~\",\"value\":\"(\"}]",
                         "[{\"name\":\"a\",\"op\":\"=\"}]", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = cJSON_Parse(bad[i]);
        assert_int_equal(match_set_from_json(m, &s, err, sizeof err), -1);
        cJSON_Delete(m);
    }
}

static void add_route(match_route_tree *t, const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    char err[UTIL_ERRLEN];
    t->r = realloc(t->r, (t->n + 1) * sizeof *t->r);
    assert_int_equal(store_route_from_json(o, &t->r[t->n], err, sizeof err), 0);
    t->n++;
    cJSON_Delete(o);
}

static void test_routing_tree(void **state)
{
    (void)state;
    match_route_tree t = {NULL, 0};
    add_route(&t, "{\"id\":\"critical\",\"matchers\":[{\"name\":\"severity\",\"op\":\"=\","
                  "\"value\":\"critical\"}],\"channels\":[\"*\"],\"group_by\":[]}");
    add_route(&t, "{\"id\":\"crit-liq\",\"parent_id\":\"critical\",\"matchers\":[{\"name\":"
                  "\"category\",\"op\":\"=\",\"value\":\"liquidity\"}],\"channels\":[\"pager\"],"
                  "\"group_by\":[\"vault\"],\"continue_matching\":true}");
    add_route(&t, "{\"id\":\"crit-liq2\",\"parent_id\":\"critical\",\"matchers\":[{\"name\":"
                  "\"category\",\"op\":\"=~\",\"value\":\"liq.*\"}],\"channels\":[\"ops-slack\"],"
                  "\"group_by\":[]}");
    add_route(&t, "{\"id\":\"crit-never\",\"parent_id\":\"critical\",\"matchers\":[],"
                  "\"channels\":[\"x\"],\"group_by\":[]}");
    add_route(&t, "{\"id\":\"warning\",\"matchers\":[{\"name\":\"severity\",\"op\":\"=\","
                  "\"value\":\"warning\"}],\"channels\":[\"ops-slack\",\"ops-telegram\"],"
                  "\"group_by\":[\"category\"]}");
    const char *k[] = {"vault", "severity", "category"};
    const char *v[] = {"main", "critical", "liquidity"};
    match_labels l = labels_of(k, v, 3);
    size_t out[8];
    /* crit-liq continues, so crit-liq2 also matches; crit-never is after a non-continue
     * match and is not reached. */
    size_t n = match_route_find(&t, &l, out, 8);
    assert_int_equal(n, 2);
    assert_string_equal(t.r[out[0]].id, "crit-liq");
    assert_string_equal(t.r[out[1]].id, "crit-liq2");
    v[2] = "price"; /* no child matches but crit-never (empty matchers) */
    n = match_route_find(&t, &l, out, 8);
    assert_int_equal(n, 1);
    assert_string_equal(t.r[out[0]].id, "crit-never");
    v[1] = "info"; /* only the implicit root: log only */
    assert_int_equal(match_route_find(&t, &l, out, 8), 0);
    v[1] = "warning";
    n = match_route_find(&t, &l, out, 8);
    assert_int_equal(n, 1);
    assert_string_equal(t.r[out[0]].id, "warning");
    /* group key: values escaped so a hostile label cannot forge another group */
    v[2] = "a|category=b";
    char *gk = match_group_key_new(&t.r[out[0]], &l);
    assert_string_equal(gk, "warning|category=a\\|category\\=b");
    free(gk);
    match_route_tree_free(&t);

    /* a parent cycle cannot loop */
    match_route_tree c = {NULL, 0};
    add_route(&c, "{\"id\":\"a\",\"parent_id\":\"b\",\"matchers\":[],\"channels\":[],"
                  "\"group_by\":[]}");
    add_route(&c, "{\"id\":\"b\",\"parent_id\":\"a\",\"matchers\":[],\"channels\":[],"
                  "\"group_by\":[]}");
    assert_int_equal(match_route_find(&c, &l, out, 8), 0);
    match_route_tree_free(&c);
}

static void test_labels_fill(void **state)
{
    (void)state;
    cJSON *lab = cJSON_Parse("{\"severity\":\"info\",\"vault\":\"v1\",\"n\":3}");
    const char *k[MATCH_MAX_LABELS], *v[MATCH_MAX_LABELS];
    size_t n = match_labels_fill(lab, "critical", "liq", "risk", "dk", "Title", k, v);
    match_labels l = {k, v, n};
    assert_int_equal(n, 2 + 5); /* the number label is not a string: skipped */
    assert_string_equal(match_labels_get(&l, "severity"), "critical"); /* synthetic wins */
    assert_string_equal(match_labels_get(&l, "vault"), "v1");
    assert_string_equal(match_labels_get(&l, "alertname"), "Title");
    assert_string_equal(match_labels_get(&l, "nope"), "");
    cJSON_Delete(lab);
}

static void test_grouping_transitions(void **state)
{
    (void)state;
    assert_int_equal(grouping_classify(0, 0, 0), GROUPING_NEW);
    assert_int_equal(grouping_classify(1, 1, 0), GROUPING_DUPLICATE);
    assert_int_equal(grouping_classify(1, 0, 0), GROUPING_REFIRED);
    assert_int_equal(grouping_classify(1, 1, 1), GROUPING_RESOLVED);
    assert_int_equal(grouping_classify(1, 0, 1), GROUPING_RESOLVED_DUP);
    assert_int_equal(grouping_classify(0, 0, 1), GROUPING_RESOLVED_NONE);
    assert_true(grouping_changed(GROUPING_NEW));
    assert_true(grouping_changed(GROUPING_RESOLVED));
    assert_false(grouping_changed(GROUPING_DUPLICATE));

    /* new group: group_wait */
    assert_int_equal(grouping_next_flush(1000, 1, -1, -1, 30000, 300000), 31000);
    /* change inside the first wait keeps the earlier schedule */
    assert_int_equal(grouping_next_flush(5000, 0, 31000, -1, 30000, 300000), 31000);
    /* after a notification: group_interval from it */
    assert_int_equal(grouping_next_flush(100000, 0, 900000, 50000, 30000, 300000), 350000);
    /* interval long past: now */
    assert_int_equal(grouping_next_flush(900000, 0, 5000000, 50000, 30000, 300000), 900000);
    /* never later than what is already scheduled */
    assert_int_equal(grouping_next_flush(100000, 0, 120000, 50000, 30000, 300000), 120000);
}

static void test_grouping_plan(void **state)
{
    (void)state;
    grouping_member m[5] = {
        {.status = GROUPING_MEMBER_FIRING, .notified = -1},
        {.status = GROUPING_MEMBER_FIRING, .notified = GROUPING_MEMBER_FIRING, .silenced = 1},
        {.status = GROUPING_MEMBER_RESOLVED, .notified = GROUPING_MEMBER_FIRING},
        {.status = GROUPING_MEMBER_RESOLVED, .notified = -1}, /* never announced */
        {.status = GROUPING_MEMBER_FIRING, .notified = GROUPING_MEMBER_FIRING},
    };
    grouping_plan_out o;
    grouping_plan(m, 5, 1, 1000, 60000, 3600000, &o);
    assert_int_equal(o.included, 3);
    assert_int_equal(o.firing_included, 2);
    assert_true(m[0].include && !m[1].include && m[2].include && !m[3].include && m[4].include);
    assert_true(m[2].drop && m[3].drop && !m[0].drop);
    assert_int_equal(o.next_flush, 1000 + 3600000);
    assert_false(o.delete_group);

    grouping_plan(m, 5, 0, 1000, 60000, 3600000, &o); /* send_resolved off */
    assert_false(m[2].include);
    assert_true(m[2].drop);

    grouping_member only_silenced[1] = {{.status = GROUPING_MEMBER_FIRING, .silenced = 1}};
    grouping_plan(only_silenced, 1, 1, 1000, 60000, 3600000, &o);
    assert_int_equal(o.included, 0);
    assert_int_equal(o.next_flush, 61000);
    grouping_member resolved[1] = {
        {.status = GROUPING_MEMBER_RESOLVED, .notified = GROUPING_MEMBER_FIRING}};
    grouping_plan(resolved, 1, 1, 1000, 60000, 3600000, &o);
    assert_int_equal(o.included, 1);
    assert_true(o.delete_group);
    assert_int_equal(o.next_flush, -1);
}

static const char *HOSTILE = "_*[]()~`>#+-=|{}.!\\ ok";

static void test_mdv2_escape(void **state)
{
    (void)state;
    char *e = format_mdv2_escape_new(HOSTILE);
    assert_string_equal(e, "\\_\\*\\[\\]\\(\\)\\~\\`\\>\\#\\+\\-\\=\\|\\{\\}\\.\\!\\\\ ok");
    free(e);
    e = format_mdv2_escape_new("caf\xC3\xA9 100%");
    assert_string_equal(e, "caf\xC3\xA9 100%");
    free(e);
    /* every special character in the output is preceded by an odd run of backslashes */
    e = format_mdv2_escape_new("a\\*b\\\\c");
    assert_string_equal(e, "a\\\\\\*b\\\\\\\\c");
    free(e);
}

static cJSON *note_json(const char *title, const char *message, const char *link)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "status", "firing");
    cJSON_AddStringToObject(p, "severity", "critical");
    cJSON *arr = cJSON_AddArrayToObject(p, "alerts");
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "title", title);
    cJSON_AddStringToObject(a, "message", message);
    cJSON_AddStringToObject(a, "severity", "critical");
    cJSON_AddStringToObject(a, "category", "liquidity");
    cJSON_AddStringToObject(a, "source", "risk");
    cJSON_AddStringToObject(a, "dedup_key", "k1");
    if (link)
        cJSON_AddStringToObject(a, "link", link);
    cJSON *l = cJSON_AddObjectToObject(a, "labels");
    cJSON_AddStringToObject(l, "vault", "<main>");
    cJSON_AddItemToArray(arr, a);
    return p;
}

static void test_telegram_text(void **state)
{
    (void)state;
    cJSON *p = note_json(HOSTILE, "line1\n*bold?*", "https://x.example/a_(b)");
    format_note n;
    assert_int_equal(format_note_parse(p, &n, NULL, 0), 0);
    char *t = format_telegram_text_new(&n);
    assert_non_null(strstr(t, "\\[CRITICAL\\] \\_\\*\\[\\]\\(\\)\\~\\`\\>\\#\\+\\-\\=\\|\\{\\}"));
    assert_non_null(strstr(t, "line1\n\\*bold?\\*"));
    assert_non_null(strstr(t, "[Open](https://x.example/a_(b\\))")); /* only ) and \ in URLs */
    free(t);
    char *body = format_telegram_new(&n, "-1001");
    cJSON *o = cJSON_Parse(body);
    assert_string_equal(cJSON_GetObjectItem(o, "parse_mode")->valuestring, "MarkdownV2");
    assert_string_equal(cJSON_GetObjectItem(o, "chat_id")->valuestring, "-1001");
    cJSON_Delete(o);
    free(body);
    format_note_free(&n);
    cJSON_Delete(p);

    /* a huge message stays under Telegram's 4096 and is cut on a character boundary */
    char *big = malloc(20001);
    for (int i = 0; i < 20000; i += 2)
        memcpy(big + i, "\xC3\xA9", 2);
    big[20000] = '\0';
    p = note_json("t", big, NULL);
    format_note_parse(p, &n, NULL, 0);
    t = format_telegram_text_new(&n);
    assert_true(strlen(t) < 4096);
    size_t cnt;
    assert_int_equal(jsonschema_utf8_count(t, strlen(t), &cnt), 0);
    free(t);
    free(big);
    format_note_free(&n);
    cJSON_Delete(p);
}

static void test_slack_blocks(void **state)
{
    (void)state;
    cJSON *p = note_json("Vault <b>&", "msg <!channel> & co", "https://ops.example/x");
    format_note n;
    assert_int_equal(format_note_parse(p, &n, NULL, 0), 0);
    char *s = format_slack_new(&n);
    cJSON *o = cJSON_Parse(s);
    assert_non_null(o);
    cJSON *blocks = cJSON_GetObjectItem(o, "blocks");
    cJSON *h = cJSON_GetArrayItem(blocks, 0);
    assert_string_equal(cJSON_GetObjectItem(h, "type")->valuestring, "header");
    const char *ht = cJSON_GetObjectItem(cJSON_GetObjectItem(h, "text"), "text")->valuestring;
    assert_non_null(strstr(ht, "CRITICAL"));
    assert_true(strlen(ht) <= 150);
    cJSON *sec = cJSON_GetArrayItem(blocks, 1);
    const char *st = cJSON_GetObjectItem(cJSON_GetObjectItem(sec, "text"), "text")->valuestring;
    assert_non_null(strstr(st, "Vault &lt;b&gt;&amp;"));
    assert_non_null(strstr(st, "&lt;!channel&gt; &amp; co")); /* no mass mention */
    cJSON *fields = cJSON_GetObjectItem(sec, "fields");
    assert_true(cJSON_GetArraySize(fields) >= 5);
    assert_non_null(strstr(s, "*vault*\\n&lt;main&gt;"));
    cJSON *last = cJSON_GetArrayItem(blocks, cJSON_GetArraySize(blocks) - 1);
    assert_string_equal(cJSON_GetObjectItem(last, "type")->valuestring, "actions");
    assert_non_null(strstr(s, "\"url\":\"https://ops.example/x\""));
    cJSON_Delete(o);
    free(s);
    format_note_free(&n);
    cJSON_Delete(p);
    /* a javascript: link gets no button */
    p = note_json("t", "m", "javascript:alert(1)");
    format_note_parse(p, &n, NULL, 0);
    s = format_slack_new(&n);
    assert_null(strstr(s, "button"));
    free(s);
    format_note_free(&n);
    cJSON_Delete(p);
}

static void test_email(void **state)
{
    (void)state;
    cJSON *p = note_json("Evil\r\nBcc: victim@x.y", "body\r\n.\r\nQUIT", NULL);
    format_note n;
    format_note_parse(p, &n, NULL, 0);
    const char *to[] = {"ops@paimon.example", "cto@paimon.example"};
    char *m = format_email_new(&n, "alerts@paimon.example", to, 2, 1700000000000LL, "n-1@paimon");
    assert_non_null(m);
    assert_null(strstr(m, "\r\nBcc:")); /* header injection impossible */
    assert_non_null(strstr(m, "Subject: =?UTF-8?B?"));
    assert_non_null(strstr(m, "Date: Tue, 14 Nov 2023 22:13:20 +0000"));
    assert_non_null(strstr(m, "To: <ops@paimon.example>,\r\n <cto@paimon.example>"));
    assert_null(strstr(m, "\r\n.\r\n")); /* the body is base64 */
    free(m);
    const char *bad[] = {"a@b.c\r\nBcc: x@y.z"};
    assert_null(format_email_new(&n, "alerts@paimon.example", bad, 1, 0, "x@y"));
    assert_null(format_email_new(&n, "no-at-sign", to, 1, 0, "x@y"));
    assert_false(format_email_addr_ok("a<b>@c.d"));
    assert_true(format_email_addr_ok("a.b+c@d.e"));
    format_note_free(&n);
    cJSON_Delete(p);
    char *h = format_header_value_new("plain ascii");
    assert_string_equal(h, "plain ascii");
    free(h);
}

static void test_webhook_hmac_openssl(void **state)
{
    (void)state;
    const char *secret = "s3cr3t-key";
    const char *body = "{\"id\":\"7\",\"event\":\"alert.firing\",\"data\":{\"x\":\"\\u00e9 'q'\"}}";
    char sig[SIGN_VALUE_LEN], err[UTIL_ERRLEN];
    assert_int_equal(
        sign_webhook(secret, strlen(secret), 1700000000, body, strlen(body), sig, err, sizeof err),
        0);
    char path[256];
    snprintf(path, sizeof path, "/tmp/notifier-hmac-%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    fprintf(f, "1700000000.%s", body);
    fclose(f);
    char cmd[512], line[256] = "";
    snprintf(cmd, sizeof cmd, "openssl dgst -sha256 -hmac '%s' -r < '%s'", secret, path);
    FILE *pp = popen(cmd, "r");
    assert_non_null(pp);
    assert_non_null(fgets(line, sizeof line, pp));
    pclose(pp);
    unlink(path);
    line[64] = '\0';
    assert_string_equal(sig + 3, line);
    assert_int_equal(sign_verify(secret, strlen(secret), "1700000000", sig, body, strlen(body),
                                 1700000100, 300, err, sizeof err),
                     0);
    /* replay: too old */
    assert_int_equal(sign_verify(secret, strlen(secret), "1700000000", sig, body, strlen(body),
                                 1700001000, 300, err, sizeof err),
                     -1);
    /* tampered body / wrong secret */
    assert_int_equal(sign_verify(secret, strlen(secret), "1700000000", sig, "{}", 2, 1700000000,
                                 300, err, sizeof err),
                     -1);
    assert_int_equal(sign_verify("other", 5, "1700000000", sig, body, strlen(body), 1700000000, 300,
                                 err, sizeof err),
                     -1);
    assert_int_equal(sign_webhook("", 0, 1, "x", 1, sig, err, sizeof err), -1);
}

static void test_backoff_and_retry_after(void **state)
{
    (void)state;
    assert_int_equal(retry_backoff_ms(1, 1000, 60000, 0), 500);
    assert_int_equal(retry_backoff_ms(1, 1000, 60000, UINT32_MAX), 999);
    assert_int_equal(retry_backoff_ms(3, 1000, 60000, 0), 2000);
    assert_int_equal(retry_backoff_ms(20, 1000, 60000, 0), 30000); /* capped */
    for (int a = 1; a < 12; a++) {
        int64_t d = retry_backoff_ms(a, 1000, 60000, (uint32_t)util_random_below(1ULL << 32));
        assert_true(d >= 500 && d < 60000);
    }
    assert_int_equal(retry_after_header_ms("3", 0), 3000);
    assert_int_equal(retry_after_header_ms(" 0 ", 0), 0);
    assert_int_equal(retry_after_header_ms("soon", 0), -1);
    assert_int_equal(retry_after_header_ms(NULL, 0), -1);
    assert_int_equal(retry_after_header_ms("Wed, 21 Oct 2015 07:28:10 GMT", 1445412480000LL),
                     10000);
    assert_int_equal(retry_classify_http(1, 200), RETRY_SENT);
    assert_int_equal(retry_classify_http(1, 429), RETRY_PAUSE);
    assert_int_equal(retry_classify_http(1, 503), RETRY_AGAIN);
    assert_int_equal(retry_classify_http(0, 0), RETRY_AGAIN);
    assert_int_equal(retry_classify_http(1, 400), RETRY_PERMANENT);
    assert_int_equal(retry_classify_smtp(250), RETRY_SENT);
    assert_int_equal(retry_classify_smtp(451), RETRY_AGAIN);
    assert_int_equal(retry_classify_smtp(550), RETRY_PERMANENT);
}

static void test_telegram_replies(void **state)
{
    (void)state;
    channel_result r = {0};
    channel_telegram_reply("{\"ok\":true,\"result\":{}}", 200, &r);
    assert_int_equal(r.cls, RETRY_SENT);
    memset(&r, 0, sizeof r);
    channel_telegram_reply("{\"ok\":false,\"error_code\":429,\"description\":\"Too Many "
                           "Requests\",\"parameters\":{\"retry_after\":7}}",
                           429, &r);
    assert_int_equal(r.cls, RETRY_PAUSE);
    assert_int_equal(r.retry_after_ms, 7000);
    memset(&r, 0, sizeof r);
    channel_telegram_reply("{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: "
                           "can't parse entities\"}",
                           400, &r);
    assert_int_equal(r.cls, RETRY_PERMANENT);
    assert_non_null(strstr(r.error, "can't parse entities"));
    memset(&r, 0, sizeof r);
    channel_telegram_reply("<html>bad gateway</html>", 502, &r);
    assert_int_equal(r.cls, RETRY_AGAIN);
}

static void test_rate_rule(void **state)
{
    (void)state;
    int64_t tat = 0;
    assert_int_equal(rlimit_gcra(0, 1000, 1000, &tat), 0);
    assert_int_equal(tat, 2000);
    assert_int_equal(rlimit_gcra(tat, 1500, 1000, &tat), 500); /* must wait */
    assert_int_equal(rlimit_gcra(2000, 2000, 1000, &tat), 0);
    assert_int_equal(tat, 3000);
    /* 30/s per bot: 30 messages in a second need 29 intervals of 34 ms > 980 ms */
    int64_t now = 0, t = 0, sent = 0;
    while (now < 1000) {
        int64_t w = rlimit_gcra(t, now, 34, &t);
        if (w == 0)
            sent++;
        now += w ? w : 1;
    }
    assert_true(sent <= 30);
}

static void test_event_filters(void **state)
{
    (void)state;
    const char *f1[] = {"alert.*"};
    assert_true(store_event_match(f1, 1, "alert.firing"));
    assert_false(store_event_match(f1, 1, "test"));
    const char *f2[] = {"test", "alert.resolved"};
    assert_true(store_event_match(f2, 2, "alert.resolved"));
    assert_false(store_event_match(f2, 2, "alert.firing"));
    const char *f3[] = {"*"};
    assert_true(store_event_match(f3, 1, "anything"));
}

static void test_secrets(void **state)
{
    (void)state;
    uint8_t key[SECRET_KEY_LEN], *blob = NULL;
    size_t n = 0;
    char err[UTIL_ERRLEN];
    assert_int_equal(
        secret_parse_key("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", key,
                         err, sizeof err),
        0);
    assert_int_equal(secret_parse_key("xyz", key, err, sizeof err), -1);
    assert_int_equal(
        secret_seal(key, "ops-slack", "https://hooks.example/T/B/x", &blob, &n, err, sizeof err),
        0);
    char *s = secret_open_new(key, "ops-slack", blob, n, err, sizeof err);
    assert_string_equal(s, "https://hooks.example/T/B/x");
    secret_free(s);
    /* a blob moved onto another row does not open */
    assert_null(secret_open_new(key, "other", blob, n, err, sizeof err));
    free(blob);
    assert_false(secret_env_name_ok("PAIMON_DATABASE_URL_x y"));
    assert_false(secret_env_name_ok("HOME"));
    assert_true(secret_env_name_ok("PAIMON_SLACK_WEBHOOK_URL"));
    setenv("PAIMON_TEST_SECRET_X", "v", 1);
    s = secret_resolve_new("PAIMON_TEST_SECRET_X", NULL, 0, "c", err, sizeof err);
    assert_string_equal(s, "v");
    secret_free(s);
    assert_null(secret_resolve_new("HOME", NULL, 0, "c", err, sizeof err));
    assert_null(secret_resolve_new(NULL, NULL, 0, "c", err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matchers),
        cmocka_unit_test(test_routing_tree),
        cmocka_unit_test(test_labels_fill),
        cmocka_unit_test(test_grouping_transitions),
        cmocka_unit_test(test_grouping_plan),
        cmocka_unit_test(test_mdv2_escape),
        cmocka_unit_test(test_telegram_text),
        cmocka_unit_test(test_slack_blocks),
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_webhook_hmac_openssl),
        cmocka_unit_test(test_backoff_and_retry_after),
        cmocka_unit_test(test_telegram_replies),
        cmocka_unit_test(test_rate_rule),
        cmocka_unit_test(test_event_filters),
        cmocka_unit_test(test_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
