/* Integration tests of paimon-notifier: the real daemon binary (child processes) against
 * the harness Redis/PostgreSQL and fake Slack / Telegram / webhook receivers (libevent
 * evhttp on a thread) and a fake SMTP server (a socket thread), each answering the way the
 * real service documents (Slack "ok" / 400 invalid_payload / 429 Retry-After / 500,
 * Telegram {"ok":...} with error_code 429 and parameters.retry_after, SMTP 250/4xx/5xx). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "bus.h"
#include "crypto.h"
#include "envelope.h"

#include "harness.h"
#include "migrate.h"
#include "notifier/sign.h"
#include "util.h"

#define scalar(...) th_pg_scalarf(pg, __VA_ARGS__)

/* ---------------- fake HTTP services ---------------- */

#define MAX_REQ 2048

typedef struct fake_req {
    char path[256];
    char *body;
    int64_t at_ms;
    char ts[32], sig[80], delivery[32], event[32];
    int status;
} fake_req;

static struct {
    pthread_mutex_t mu;
    fake_req reqs[MAX_REQ];
    int n;
    int slack_429_left; /* /slack/429 answers 429 this many times, then ok */
    int tg_429_left;    /* Telegram token tok429 */
    int hook_delay_ms;  /* /hook answers after this long */
    struct event_base *base;
    struct evhttp *http;
    int port;
    pthread_t thread;
} F = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct delayed {
    struct evhttp_request *req;
    struct event *ev;
} delayed;

static void reply(struct evhttp_request *req, int code, const char *ctype, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, code, code == 200 ? "OK" : "ERR", b);
    evbuffer_free(b);
}

static void delayed_reply(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    delayed *d = arg;
    reply(d->req, 200, "text/plain", "ok");
    event_free(d->ev);
    free(d);
}

static void on_fake(struct evhttp_request *req, void *ud)
{
    (void)ud;
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = malloc(len + 1);
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    pthread_mutex_lock(&F.mu);
    int status = 200;
    const char *ctype = "text/plain", *text = "ok";
    char tgbuf[256];
    int delay = 0;
    if (strncmp(uri, "/slack/429", 10) == 0 && F.slack_429_left > 0) {
        F.slack_429_left--;
        status = 429;
        text = "rate_limited";
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
    } else if (strncmp(uri, "/slack/bad", 10) == 0) {
        status = 400;
        text = "invalid_payload";
    } else if (strncmp(uri, "/slack/500", 10) == 0) {
        status = 500;
        text = "internal_error";
    } else if (strncmp(uri, "/bot", 4) == 0) {
        ctype = "application/json";
        if (strstr(uri, "/bottok429/") && F.tg_429_left > 0) {
            F.tg_429_left--;
            status = 429;
            text = "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: retry "
                   "after 1\",\"parameters\":{\"retry_after\":1}}";
        } else if (strstr(uri, "/bottokbad/")) {
            status = 400;
            text = "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: chat not "
                   "found\"}";
        } else {
            snprintf(tgbuf, sizeof tgbuf,
                     "{\"ok\":true,\"result\":{\"message_id\":%d,\"date\":1700000000}}", F.n + 1);
            text = tgbuf;
        }
    } else if (strncmp(uri, "/hook", 5) == 0) {
        delay = F.hook_delay_ms;
    }
    if (F.n < MAX_REQ) {
        fake_req *r = &F.reqs[F.n++];
        snprintf(r->path, sizeof r->path, "%s", uri);
        r->body = body;
        r->at_ms = util_mono_ms();
        r->status = status;
        const char *v;
        if ((v = evhttp_find_header(h, SIGN_HEADER_TS)))
            snprintf(r->ts, sizeof r->ts, "%s", v);
        if ((v = evhttp_find_header(h, SIGN_HEADER_SIG)))
            snprintf(r->sig, sizeof r->sig, "%s", v);
        if ((v = evhttp_find_header(h, "X-Paimon-Delivery")))
            snprintf(r->delivery, sizeof r->delivery, "%s", v);
        if ((v = evhttp_find_header(h, "X-Paimon-Event")))
            snprintf(r->event, sizeof r->event, "%s", v);
    } else
        free(body);
    pthread_mutex_unlock(&F.mu);
    if (delay > 0) {
        delayed *d = calloc(1, sizeof *d);
        d->req = req;
        d->ev = evtimer_new(F.base, delayed_reply, d);
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
        evtimer_add(d->ev, &tv);
        return;
    }
    reply(req, status, ctype, text);
}

static void *fake_loop(void *arg)
{
    (void)arg;
    event_base_dispatch(F.base);
    return NULL;
}

static void fake_start(int port)
{
    evthread_use_pthreads();
    F.base = event_base_new();
    F.http = evhttp_new(F.base);
    evhttp_set_gencb(F.http, on_fake, NULL);
    assert_int_equal(evhttp_bind_socket(F.http, "127.0.0.1", (ev_uint16_t)port), 0);
    F.port = port;
    pthread_create(&F.thread, NULL, fake_loop, NULL);
}

static void fake_stop(void)
{
    event_base_loopbreak(F.base);
    pthread_join(F.thread, NULL);
    evhttp_free(F.http);
    event_base_free(F.base);
}

static void fake_reset(void)
{
    pthread_mutex_lock(&F.mu);
    for (int i = 0; i < F.n; i++)
        free(F.reqs[i].body);
    F.n = 0;
    F.slack_429_left = F.tg_429_left = F.hook_delay_ms = 0;
    pthread_mutex_unlock(&F.mu);
}

/* Requests whose path starts with prefix (and, when status >= 0, got that status). */
static int fake_count(const char *prefix, int status)
{
    pthread_mutex_lock(&F.mu);
    int c = 0;
    for (int i = 0; i < F.n; i++)
        if (strncmp(F.reqs[i].path, prefix, strlen(prefix)) == 0 &&
            (status < 0 || F.reqs[i].status == status))
            c++;
    pthread_mutex_unlock(&F.mu);
    return c;
}

/* A copy of the requests so far, taken under the lock, so assertions never run while
 * holding it (a failed assertion longjmps out and would leave it locked). */
static int fake_snapshot(fake_req **out)
{
    pthread_mutex_lock(&F.mu);
    int n = F.n;
    fake_req *v = calloc((size_t)n + 1, sizeof *v);
    for (int i = 0; i < n; i++) {
        v[i] = F.reqs[i];
        v[i].body = strdup(F.reqs[i].body);
    }
    pthread_mutex_unlock(&F.mu);
    *out = v;
    return n;
}

static void snapshot_free(fake_req *v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i].body);
    free(v);
}

static int wait_count(const char *prefix, int status, int want, int timeout_ms)
{
    int64_t end = util_mono_ms() + timeout_ms;
    int c;
    while ((c = fake_count(prefix, status)) < want && util_mono_ms() < end)
        util_sleep_ms(20);
    return c;
}

/* ---------------- fake SMTP ---------------- */

static struct {
    int fd, port;
    pthread_t thread;
    volatile int stop;
    volatile int rcpt_code; /* 250, 450 or 550 */
    pthread_mutex_t mu;
    char *last_data;
    char rcpts[512];
    int messages;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .rcpt_code = 250};

static int smtp_line(int fd, char *buf, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        char c;
        if (read(fd, &c, 1) != 1)
            return -1;
        buf[n++] = c;
        if (c == '\n')
            break;
    }
    buf[n] = '\0';
    return (int)n;
}

static void smtp_say(int fd, const char *s)
{
    (void)!write(fd, s, strlen(s));
}

static void smtp_session(int c)
{
    char line[2048];
    smtp_say(c, "220 fake.smtp ESMTP\r\n");
    while (smtp_line(c, line, sizeof line) > 0) {
        if (strncasecmp(line, "EHLO", 4) == 0)
            smtp_say(c, "250-fake.smtp\r\n250 SIZE 1000000\r\n");
        else if (strncasecmp(line, "HELO", 4) == 0 || strncasecmp(line, "MAIL", 4) == 0 ||
                 strncasecmp(line, "RSET", 4) == 0)
            smtp_say(c, "250 ok\r\n");
        else if (strncasecmp(line, "RCPT", 4) == 0) {
            if (S.rcpt_code == 250) {
                pthread_mutex_lock(&S.mu);
                strncat(S.rcpts, line, sizeof S.rcpts - strlen(S.rcpts) - 1);
                pthread_mutex_unlock(&S.mu);
                smtp_say(c, "250 ok\r\n");
            } else if (S.rcpt_code == 450)
                smtp_say(c, "450 mailbox busy\r\n");
            else
                smtp_say(c, "550 no such user\r\n");
        } else if (strncasecmp(line, "DATA", 4) == 0) {
            smtp_say(c, "354 go ahead\r\n");
            size_t cap = 4096, len = 0;
            char *data = malloc(cap);
            while (smtp_line(c, line, sizeof line) > 0 && strcmp(line, ".\r\n") != 0) {
                size_t l = strlen(line);
                if (len + l + 1 > cap) {
                    cap = (len + l + 1) * 2;
                    char *grown = realloc(data, cap);
                    if (!grown)
                        abort();
                    data = grown;
                }
                memcpy(data + len, line, l);
                len += l;
            }
            data[len] = '\0';
            pthread_mutex_lock(&S.mu);
            free(S.last_data);
            S.last_data = data;
            S.messages++;
            pthread_mutex_unlock(&S.mu);
            smtp_say(c, "250 queued\r\n");
        } else if (strncasecmp(line, "QUIT", 4) == 0) {
            smtp_say(c, "221 bye\r\n");
            break;
        } else
            smtp_say(c, "502 not implemented\r\n");
    }
    close(c);
}

static void *smtp_session_main(void *arg)
{
    smtp_session((int)(intptr_t)arg);
    return NULL;
}

static void *smtp_main(void *arg)
{
    (void)arg;
    while (!S.stop) {
        int c = accept(S.fd, NULL, NULL);
        if (c < 0)
            continue;
        if (S.stop) {
            close(c);
            break;
        }
        struct timeval tv = {5, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        /* One thread per session, like a real MTA: clients keep connections open. */
        pthread_t t;
        if (pthread_create(&t, NULL, smtp_session_main, (void *)(intptr_t)c) == 0)
            pthread_detach(t);
        else
            close(c);
    }
    return NULL;
}

static void smtp_start(int port)
{
    S.fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(S.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(S.fd, (struct sockaddr *)&a, sizeof a), 0);
    listen(S.fd, 16);
    S.port = port;
    pthread_create(&S.thread, NULL, smtp_main, NULL);
}

static void smtp_stop(void)
{
    S.stop = 1;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(c, (struct sockaddr *)&a, sizeof a);
    close(c);
    pthread_join(S.thread, NULL);
    close(S.fd);
    free(S.last_data);
}

static char *smtp_last(void)
{
    pthread_mutex_lock(&S.mu);
    char *d = strdup(S.last_data ? S.last_data : "");
    pthread_mutex_unlock(&S.mu);
    return d;
}

/* ---------------- daemon and database ---------------- */

static char db_url[256], notifier_url[256];
static PGconn *pg;
static redisContext *rc;
static int base_port;

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static void fresh_state(void)
{
    snprintf(db_url, sizeof db_url, "%s", th_pg_fresh_db("notifier_flow"));
    if (pg)
        PQfinish(pg);
    pg = th_pg_connect(db_url);
    PQsetNoticeProcessor(pg, quiet, NULL);
    assert_int_equal(th_pg_migrate(pg, "notifier"), 0);
    /* The daemon logs in as its own role, as in production. */
    snprintf(notifier_url, sizeof notifier_url,
             "postgresql://paimon_notifier@127.0.0.1:%d/notifier_flow", th_pg_port());
    if (rc)
        redisFree(rc);
    rc = th_redis_fresh();
    fake_reset();
    S.rcpt_code = 250;
    S.messages = 0;
    S.rcpts[0] = '\0';
}

static void sql(const char *fmt, ...)
{
    char q[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    th_pg_exec(pg, q);
}

static long http_status(const char *method, int port, const char *path, const char *body,
                        char **out);

static pid_t live[8];

static void track(pid_t pid, int add)
{
    for (int i = 0; i < 8; i++)
        if (add ? live[i] == 0 : live[i] == pid) {
            live[i] = add ? pid : 0;
            return;
        }
}

/* A failed assertion leaves daemons running: kill them before the next test. */
static int kill_leftovers(void **state)
{
    (void)state;
    for (int i = 0; i < 8; i++)
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    unsetenv("PAIMON_NOTIFIER_FALLBACK_CHANNEL");
    unsetenv("PAIMON_NOTIFIER_MAX_ATTEMPTS");
    unsetenv("PAIMON_NOTIFIER_BACKOFF_BASE");
    unsetenv("PAIMON_NOTIFIER_LEASE");
    return 0;
}

static pid_t start_daemon(int http_port, const char *logname)
{
    char port[16], fake[128], log[512];
    snprintf(port, sizeof port, "%d", http_port);
    snprintf(fake, sizeof fake, "http://127.0.0.1:%d/slack/ok", F.port);
    const char *rd = getenv("PAIMON_TEST_RUN_DIR");
    snprintf(log, sizeof log, "%s/logs/%s.log", rd ? rd : "/tmp", logname);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        /* Do not hand the fakes' listening sockets to the daemon. */
        for (int f = 3; f < 1024; f++)
            close(f);
        setenv("PAIMON_REDIS_URL", th_redis_url(), 1);
        setenv("PAIMON_DATABASE_URL", notifier_url, 1);
        setenv("PAIMON_HTTP_PORT", port, 1);
        execl(th_bin("paimon-notifier"), "paimon-notifier", (char *)NULL);
        _exit(127);
    }
    track(pid, 1);
    int64_t end = util_mono_ms() + 8000;
    while (http_status("GET", http_port, "/health/ready", NULL, NULL) != 200 &&
           util_mono_ms() < end)
        util_sleep_ms(50);
    assert_int_equal(http_status("GET", http_port, "/health/ready", NULL, NULL), 200);
    return pid;
}

static int stop_daemon(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    track(pid, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void publish(const char *id, const char *severity, const char *category, const char *title,
                    const char *dedup, int resolved, const char *extra_labels_json)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "severity", severity);
    cJSON_AddStringToObject(p, "category", category);
    cJSON_AddStringToObject(p, "title", title);
    cJSON_AddStringToObject(p, "message", "details of the alert");
    if (dedup)
        cJSON_AddStringToObject(p, "dedup_key", dedup);
    if (resolved)
        cJSON_AddBoolToObject(p, "resolved", 1);
    cJSON_AddStringToObject(p, "link", "https://ops.paimon.example/alerts/1");
    cJSON_AddItemToObject(
        p, "labels", extra_labels_json ? cJSON_Parse(extra_labels_json) : cJSON_CreateObject());
    envelope *e = envelope_new(id, "alert.raised", "risk", NULL, p);
    char err[UTIL_ERRLEN];
    bus_priority prio = strcmp(severity, "critical") == 0  ? BUS_CRITICAL
                        : strcmp(severity, "warning") == 0 ? BUS_HIGH
                                                           : BUS_NORMAL;
    assert_int_equal(bus_publish(rc, "alerts", prio, e, 0, err, sizeof err), 0);
    envelope_free(e);
}

/* Channels pointed at the fakes. Secrets: Slack and Telegram from env, e-mail none. */
static void configure_channels(const char *slack_path, const char *tg_token)
{
    char v[256];
    snprintf(v, sizeof v, "http://127.0.0.1:%d%s", F.port, slack_path);
    setenv("PAIMON_SLACK_WEBHOOK_URL", v, 1);
    setenv("PAIMON_TELEGRAM_BOT_TOKEN", tg_token, 1);
    sql("UPDATE notifier.channels SET config = '{\"chat_ids\": [\"-1001\", \"-1002\"], "
        "\"api_base\": \"http://127.0.0.1:%d\", \"min_interval_ms\": 0}' WHERE id = "
        "'ops-telegram'",
        F.port);
    sql("UPDATE notifier.channels SET config = '{\"min_interval_ms\": 0}' WHERE id = 'ops-slack'");
    sql("UPDATE notifier.channels SET config = '{\"smtp_url\": \"smtp://127.0.0.1:%d\", "
        "\"from\": \"alerts@paimon.example\", \"to\": [\"oncall@paimon.example\"], "
        "\"min_interval_ms\": 0}' WHERE id = 'ops-email'",
        S.port);
}

typedef struct hbuf {
    char *p;
    size_t n;
} hbuf;

static size_t hwrite(char *d, size_t sz, size_t n, void *ud)
{
    hbuf *b = ud;
    char *grown = realloc(b->p, b->n + sz * n + 1);
    if (!grown)
        abort();
    b->p = grown;
    memcpy(b->p + b->n, d, sz * n);
    b->n += sz * n;
    b->p[b->n] = '\0';
    return sz * n;
}

static long http_status(const char *method, int port, const char *path, const char *body,
                        char **out)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    hbuf b = {NULL, 0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hwrite);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out)
        *out = b.p ? b.p : strdup("");
    else
        free(b.p);
    return code;
}

/* Creates a webhook subscription through the API with a known secret. */
static void add_webhook(int port, const char *path, const char *secret, const char *events)
{
    char body[512], *out = NULL;
    snprintf(body, sizeof body,
             "{\"url\":\"http://127.0.0.1:%d%s\",\"secret\":\"%s\",\"events\":%s}", F.port, path,
             secret, events);
    assert_int_equal(http_status("POST", port, "/v1/webhooks", body, &out), 201);
    /* A secret the caller chose is never echoed back. */
    assert_null(strstr(out, secret));
    free(out);
}

static long long wait_scalar(long long want, int timeout_ms, const char *q)
{
    int64_t end = util_mono_ms() + timeout_ms;
    long long v;
    while ((v = th_pg_scalar(pg, q)) < want && util_mono_ms() < end)
        util_sleep_ms(30);
    return v;
}

/* Independent HMAC: openssl dgst over "<ts>.<body>" written to a file. */
static void verify_with_openssl(const char *secret, const char *ts, const char *body,
                                const char *sig)
{
    char path[512], cmd[1024], line[512] = "";
    const char *rd = getenv("PAIMON_TEST_RUN_DIR");
    snprintf(path, sizeof path, "%s/hmac-input-%d", rd ? rd : "/tmp", (int)getpid());
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "%s.%s", ts, body);
    fclose(f);
    snprintf(cmd, sizeof cmd, "openssl dgst -sha256 -hmac '%s' -r < '%s'", secret, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof line, p));
    pclose(p);
    unlink(path);
    line[64] = '\0';
    assert_int_equal(strlen(sig), 67);
    assert_string_equal(sig + 3, line);
}

/* ---------------- tests ---------------- */

#define SECRET "whsec-test-0123456789abcdef"

/* Routing: critical reaches every channel (Slack, both Telegram chats, e-mail, the
 * signed webhook), warning only Slack + Telegram, info nobody. Hostile text is escaped
 * for MarkdownV2 and the webhook signature verifies with openssl. */
static void test_routing_channels_hmac(void **state)
{
    (void)state;
    fresh_state();
    configure_channels("/slack/ok", "tokok");
    sql("UPDATE notifier.routes SET group_wait_ms = 0 WHERE id = 'warning'");
    int port = base_port + 60;
    pid_t pid = start_daemon(port, "notifier-routing");
    add_webhook(port, "/hook", SECRET, "[\"alert.*\"]");

    publish("r-1", "critical", "liquidity", "L1 below 5% *now* [x](y) _a_ `b` > #1 +2 -3 = |{}.!\\",
            "liq-1", 0, "{\"vault\":\"main\"}");
    assert_int_equal(wait_count("/slack/ok", 200, 1, 5000), 1);
    assert_int_equal(wait_count("/bottokok/sendMessage", 200, 2, 5000), 2);
    assert_int_equal(wait_count("/hook", 200, 1, 5000), 1);
    int64_t end = util_mono_ms() + 5000;
    while (S.messages < 1 && util_mono_ms() < end)
        util_sleep_ms(20);
    assert_int_equal(S.messages, 1);
    assert_non_null(strstr(S.rcpts, "oncall@paimon.example"));
    char *mail = smtp_last();
    assert_non_null(strstr(mail, "Subject: [Paimon] [CRITICAL] L1 below 5%"));
    assert_non_null(strstr(mail, "Content-Transfer-Encoding: base64"));
    free(mail);

    fake_req *snap;
    int nsnap = fake_snapshot(&snap);
    for (int i = 0; i < nsnap; i++) {
        fake_req *r = &snap[i];
        if (strncmp(r->path, "/bottokok/", 10) == 0) {
            cJSON *o = cJSON_Parse(r->body);
            assert_non_null(o);
            assert_string_equal(cJSON_GetObjectItem(o, "parse_mode")->valuestring, "MarkdownV2");
            const char *text = cJSON_GetObjectItem(o, "text")->valuestring;
            assert_non_null(strstr(text, "L1 below 5% \\*now\\* \\[x\\]\\(y\\) \\_a\\_ \\`b\\` "
                                         "\\> \\#1 \\+2 \\-3 \\= \\|\\{\\}\\.\\!\\\\"));
            cJSON_Delete(o);
        } else if (strncmp(r->path, "/slack/ok", 9) == 0) {
            cJSON *o = cJSON_Parse(r->body);
            cJSON *blocks = cJSON_GetObjectItem(o, "blocks");
            assert_string_equal(cJSON_GetArrayItem(blocks, 0)->child->valuestring, "header");
            assert_non_null(strstr(r->body, "\"type\":\"button\""));
            assert_non_null(strstr(r->body, "CRITICAL"));
            cJSON_Delete(o);
        } else if (strncmp(r->path, "/hook", 5) == 0) {
            verify_with_openssl(SECRET, r->ts, r->body, r->sig);
            char err[UTIL_ERRLEN];
            assert_int_equal(sign_verify(SECRET, strlen(SECRET), r->ts, r->sig, r->body,
                                         strlen(r->body), util_now_ms() / 1000, 300, err,
                                         sizeof err),
                             0);
            assert_string_equal(r->event, "alert.firing");
        }
    }
    snapshot_free(snap, nsnap);

    publish("r-2", "warning", "price", "Oracle stale", "px-1", 0, NULL);
    publish("r-3", "info", "price", "NAV computed", "nav-1", 0, NULL);
    assert_int_equal(wait_count("/slack/ok", 200, 2, 5000), 2);
    assert_int_equal(wait_count("/bottokok/sendMessage", 200, 4, 5000), 4);
    util_sleep_ms(700);
    assert_int_equal(fake_count("/slack/ok", -1), 2);
    assert_int_equal(fake_count("/hook", -1), 1); /* warning does not go to webhooks */
    assert_int_equal(S.messages, 1);
    /* info: recorded, logged, never delivered */
    assert_int_equal(scalar("SELECT count(*) FROM notifier.alerts WHERE dedup_key = 'nav-1'"), 1);
    assert_int_equal(scalar("SELECT count(*) FROM notifier.notifications WHERE payload::text LIKE "
                            "'%%NAV computed%%'"),
                     0);
    /* every attempt is logged */
    assert_int_equal(wait_scalar(8, 3000,
                                 "SELECT count(*) FROM notifier.deliveries WHERE "
                                 "outcome = 'sent' AND status_code BETWEEN 200 AND 299"),
                     8);
    assert_int_equal(stop_daemon(pid), 0);
}

/* Grouping, de-duplication, resolved notices: three warnings of one category inside the
 * group wait become one message; a repeat of a firing alert says nothing; resolving one
 * sends one resolved notice after the group interval. */
static void test_grouping_dedup_resolved(void **state)
{
    (void)state;
    fresh_state();
    configure_channels("/slack/ok", "tokok");
    sql("UPDATE notifier.channels SET enabled = false WHERE id = 'ops-telegram'");
    sql("UPDATE notifier.routes SET group_wait_ms = 1200, group_interval_ms = 800 WHERE id = "
        "'warning'");
    pid_t pid = start_daemon(base_port + 61, "notifier-grouping");
    publish("g-1", "warning", "concentration", "Asset A at 32%", "conc-a", 0, NULL);
    publish("g-2", "warning", "concentration", "Asset B at 31%", "conc-b", 0, NULL);
    publish("g-3", "warning", "concentration", "Top-3 at 61%", "conc-top3", 0, NULL);
    publish("g-4", "warning", "concentration", "Asset A at 33%", "conc-a", 0, NULL); /* dup */
    publish("g-5", "warning", "liquidity", "Coverage 1.4", "cov", 0, NULL); /* other group */
    assert_int_equal(wait_count("/slack/ok", 200, 2, 5000), 2);
    util_sleep_ms(600);
    assert_int_equal(fake_count("/slack/ok", -1), 2);
    fake_req *snap;
    int nsnap = fake_snapshot(&snap), grouped = 0;
    for (int i = 0; i < nsnap; i++)
        if (strstr(snap[i].body, "3 alerts")) {
            grouped++;
            assert_non_null(strstr(snap[i].body, "Asset A at 33%")); /* latest content */
            assert_non_null(strstr(snap[i].body, "Top-3 at 61%"));
        }
    snapshot_free(snap, nsnap);
    assert_int_equal(grouped, 1);
    assert_int_equal(scalar("SELECT occurrences FROM notifier.alerts WHERE dedup_key = 'conc-a'"),
                     2);

    /* duplicate of a firing alert: nothing new */
    publish("g-6", "warning", "concentration", "Asset A at 33%", "conc-a", 0, NULL);
    util_sleep_ms(1200);
    assert_int_equal(fake_count("/slack/ok", -1), 2);

    /* resolved: one notice for that alert only */
    publish("g-7", "warning", "concentration", "Asset A at 33%", "conc-a", 1, NULL);
    assert_int_equal(wait_count("/slack/ok", 200, 3, 5000), 3);
    /* Like Alertmanager, the group's message carries its state: the two still firing and
     * the one now resolved. */
    nsnap = fake_snapshot(&snap);
    assert_non_null(strstr(snap[nsnap - 1].body, "*Status*\\nresolved"));
    assert_non_null(strstr(snap[nsnap - 1].body, "Top-3 at 61%"));
    snapshot_free(snap, nsnap);
    /* a redelivered message (same id) is a no-op */
    publish("g-7", "warning", "concentration", "Asset A at 33%", "conc-a", 1, NULL);
    util_sleep_ms(1500);
    assert_int_equal(fake_count("/slack/ok", -1), 3);
    assert_int_equal(stop_daemon(pid), 0);
}

/* Silences: created through the API, they mute matching alerts until expired. */
static void test_silences(void **state)
{
    (void)state;
    fresh_state();
    configure_channels("/slack/ok", "tokok");
    sql("UPDATE notifier.channels SET enabled = false WHERE id IN ('ops-telegram', 'ops-email')");
    int port = base_port + 62;
    pid_t pid = start_daemon(port, "notifier-silences");
    char *out = NULL;
    assert_int_equal(
        http_status("POST", port, "/v1/silences",
                    "{\"matchers\":[{\"name\":\"category\",\"op\":\"=~\",\"value\":\"maint.*\"}],"
                    "\"ends_at\":\"2099-01-01T00:00:00.000Z\",\"created_by\":\"ops\","
                    "\"comment\":\"planned work\"}",
                    &out),
        201);
    cJSON *o = cJSON_Parse(out);
    free(out);
    cJSON *data = cJSON_GetObjectItem(o, "data");
    assert_string_equal(cJSON_GetObjectItem(data, "state")->valuestring, "active");
    char path[128];
    snprintf(path, sizeof path, "/v1/silences/%s", cJSON_GetObjectItem(data, "id")->valuestring);
    cJSON_Delete(o);
    assert_int_equal(http_status("POST", port, "/v1/silences",
                                 "{\"matchers\":[],\"ends_at\":\"2099-01-01T00:00:00.000Z\","
                                 "\"created_by\":\"ops\",\"surprise\":1}",
                                 NULL),
                     400);

    publish("s-1", "critical", "maintenance", "Node down for upgrade", "maint-1", 0, NULL);
    publish("s-2", "critical", "liquidity", "L1 at 4%", "liq-x", 0, NULL);
    assert_int_equal(wait_count("/slack/ok", 200, 1, 5000), 1);
    util_sleep_ms(800);
    assert_int_equal(fake_count("/slack/ok", -1), 1);
    fake_req *snap;
    int nsnap = fake_snapshot(&snap);
    assert_non_null(strstr(snap[0].body, "L1 at 4%"));
    snapshot_free(snap, nsnap);

    /* expire it: the still-firing alert is announced when its group looks again */
    assert_int_equal(http_status("DELETE", port, path, NULL, &out), 200);
    assert_non_null(strstr(out, "\"expired\""));
    free(out);
    sql("UPDATE notifier.alert_groups SET next_flush_at = now() WHERE group_key LIKE "
        "'%%maint-1%%'");
    assert_int_equal(wait_count("/slack/ok", 200, 2, 5000), 2);
    assert_int_equal(stop_daemon(pid), 0);
}

/* Rate limits without loss: a burst of 5 critical alerts to a 1-per-300ms Slack webhook
 * all arrive, spaced; a 429 with Retry-After pauses the channel, then everything goes. */
static void test_rate_limit_and_429(void **state)
{
    (void)state;
    fresh_state();
    configure_channels("/slack/429", "tok429");
    sql("UPDATE notifier.channels SET config = '{\"min_interval_ms\": 300}' WHERE id = "
        "'ops-slack'");
    sql("UPDATE notifier.channels SET config = config || '{\"chat_ids\": [\"-1001\"]}' WHERE id "
        "= 'ops-telegram'");
    sql("UPDATE notifier.channels SET enabled = false WHERE id = 'ops-email'");
    pthread_mutex_lock(&F.mu);
    F.slack_429_left = 1;
    F.tg_429_left = 1;
    pthread_mutex_unlock(&F.mu);
    pid_t pid = start_daemon(base_port + 63, "notifier-ratelimit");
    for (int i = 0; i < 5; i++) {
        char id[32], key[32];
        snprintf(id, sizeof id, "b-%d", i);
        snprintf(key, sizeof key, "burst-%d", i);
        publish(id, "critical", "risk", "Burst alert", key, 0, NULL);
    }
    assert_int_equal(wait_count("/slack/429", 200, 5, 10000), 5);
    assert_int_equal(fake_count("/slack/429", 429), 1);
    assert_int_equal(wait_count("/bottok429/", 200, 5, 10000), 5);
    assert_int_equal(fake_count("/bottok429/", 429), 1);
    fake_req *snap;
    int nsnap = fake_snapshot(&snap);
    int64_t prev = -1, first429 = -1;
    for (int i = 0; i < nsnap; i++) {
        if (strncmp(snap[i].path, "/slack/429", 10) != 0)
            continue;
        if (snap[i].status == 429)
            first429 = snap[i].at_ms;
        else if (first429 >= 0 && prev == first429)
            assert_true(snap[i].at_ms - first429 >= 950); /* Retry-After: 1 honoured */
        if (prev >= 0)
            assert_true(snap[i].at_ms - prev >= 280); /* the limit holds */
        prev = snap[i].at_ms;
    }
    snapshot_free(snap, nsnap);
    assert_int_equal(scalar("SELECT count(*) FROM notifier.deliveries WHERE outcome = "
                            "'rate_limited'"),
                     2);
    assert_int_equal(scalar("SELECT count(*) FROM notifier.notifications WHERE status <> 'sent'"),
                     0);
    assert_int_equal(stop_daemon(pid), 0);
}

/* Retries then dead: 500s are retried with backoff up to max attempts, then the row is
 * dead, a DLQ entry exists and the fallback channel (e-mail) is told. A 400
 * invalid_payload is permanent: dead after one attempt. */
static void test_retry_dlq_fallback(void **state)
{
    (void)state;
    fresh_state();
    configure_channels("/slack/500", "tokbad");
    sql("UPDATE notifier.channels SET config = config || '{\"chat_ids\": [\"-1001\"]}' WHERE id "
        "= 'ops-telegram'");
    sql("UPDATE notifier.routes SET channels = '{ops-slack,ops-telegram}' WHERE id = 'critical'");
    setenv("PAIMON_NOTIFIER_FALLBACK_CHANNEL", "ops-email", 1);
    setenv("PAIMON_NOTIFIER_MAX_ATTEMPTS", "3", 1);
    setenv("PAIMON_NOTIFIER_BACKOFF_BASE", "100ms", 1);
    pid_t pid = start_daemon(base_port + 64, "notifier-dlq");
    publish("d-1", "critical", "chain", "RPC endpoints all failing", "rpc-down", 0, NULL);
    assert_int_equal(wait_scalar(2, 8000,
                                 "SELECT count(*) FROM notifier.notifications WHERE "
                                 "status = 'dead'"),
                     2);
    assert_int_equal(fake_count("/slack/500", 500), 3);
    assert_int_equal(fake_count("/bottokbad/", 400), 1);
    assert_int_equal(scalar("SELECT count(*) FROM notifier.deliveries WHERE channel_id = "
                            "'ops-slack' AND outcome = 'retry'"),
                     2);
    int64_t end = util_mono_ms() + 5000;
    while (S.messages < 2 && util_mono_ms() < end)
        util_sleep_ms(20);
    assert_int_equal(S.messages, 2);
    char *mail = smtp_last();
    assert_non_null(strstr(mail, "Subject: [Paimon] [CRITICAL] A notification could not"));
    free(mail);
    redisReply *r = redisCommand(rc, "XLEN paimon:dlq");
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);
    /* the secret URL / token never reach the delivery log */
    assert_int_equal(
        scalar("SELECT count(*) FROM notifier.deliveries WHERE error LIKE '%%tokbad%%' "
               "OR error LIKE '%%127.0.0.1%%'"),
        0);
    unsetenv("PAIMON_NOTIFIER_FALLBACK_CHANNEL");
    unsetenv("PAIMON_NOTIFIER_MAX_ATTEMPTS");
    unsetenv("PAIMON_NOTIFIER_BACKOFF_BASE");
    assert_int_equal(stop_daemon(pid), 0);
}

/* SMTP 4xx is retried, then delivered. */
static void test_smtp_transient(void **state)
{
    (void)state;
    fresh_state();
    configure_channels("/slack/ok", "tokok");
    sql("UPDATE notifier.routes SET channels = '{ops-email}' WHERE id = 'critical'");
    setenv("PAIMON_NOTIFIER_BACKOFF_BASE", "200ms", 1);
    S.rcpt_code = 450;
    pid_t pid = start_daemon(base_port + 65, "notifier-smtp");
    publish("m-1", "critical", "ops", "Mail me", "mail-1", 0, NULL);
    assert_int_equal(wait_scalar(1, 5000,
                                 "SELECT count(*) FROM notifier.deliveries WHERE "
                                 "outcome = 'retry' AND status_code = 450"),
                     1);
    S.rcpt_code = 250;
    assert_int_equal(wait_scalar(1, 5000,
                                 "SELECT count(*) FROM notifier.notifications WHERE "
                                 "status = 'sent'"),
                     1);
    assert_int_equal(S.messages, 1);
    unsetenv("PAIMON_NOTIFIER_BACKOFF_BASE");
    assert_int_equal(stop_daemon(pid), 0);
}

/* Two replicas share the outbox: every notification is sent exactly once. */
static void test_two_replicas_no_double_send(void **state)
{
    (void)state;
    fresh_state();
    configure_channels("/slack/ok", "tokok");
    sql("UPDATE notifier.routes SET channels = '{webhooks}' WHERE id = 'critical'");
    setenv("PAIMON_MASTER_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
           1);
    pid_t a = start_daemon(base_port + 66, "notifier-replica-a");
    pid_t b = start_daemon(base_port + 67, "notifier-replica-b");
    add_webhook(base_port + 66, "/hook", SECRET, "[\"*\"]");
    const int N = 60;
    for (int i = 0; i < N; i++) {
        char id[32], key[32];
        snprintf(id, sizeof id, "x-%d", i);
        snprintf(key, sizeof key, "x-%d", i);
        publish(id, "critical", "risk", "Replica test", key, 0, NULL);
    }
    assert_int_equal(wait_count("/hook", 200, N, 10000), N);
    util_sleep_ms(500);
    assert_int_equal(fake_count("/hook", -1), N);
    fake_req *snap;
    int nsnap = fake_snapshot(&snap);
    for (int i = 0; i < nsnap; i++)
        for (int j = i + 1; j < nsnap; j++)
            assert_string_not_equal(snap[i].delivery, snap[j].delivery);
    snapshot_free(snap, nsnap);
    assert_int_equal(stop_daemon(a), 0);
    assert_int_equal(stop_daemon(b), 0);
}

/* SIGKILL while deliveries are in flight: a new daemon takes the expired leases over and
 * every notification arrives. */
static void test_sigkill_nothing_lost(void **state)
{
    (void)state;
    fresh_state();
    configure_channels("/slack/ok", "tokok");
    sql("UPDATE notifier.routes SET channels = '{webhooks}' WHERE id = 'critical'");
    setenv("PAIMON_NOTIFIER_LEASE", "1500ms", 1);
    pthread_mutex_lock(&F.mu);
    F.hook_delay_ms = 3000;
    pthread_mutex_unlock(&F.mu);
    pid_t pid = start_daemon(base_port + 68, "notifier-kill-1");
    add_webhook(base_port + 68, "/hook", SECRET, "[\"*\"]");
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof id, "k-%d", i);
        publish(id, "critical", "risk", "Kill test", id, 0, NULL);
    }
    assert_true(wait_scalar(6, 5000, "SELECT count(*) FROM notifier.notifications") == 6);
    assert_true(wait_scalar(1, 5000,
                            "SELECT count(*) FROM notifier.notifications WHERE status = "
                            "'sending'") >= 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    track(pid, 0);
    pthread_mutex_lock(&F.mu);
    F.hook_delay_ms = 0;
    pthread_mutex_unlock(&F.mu);
    pid = start_daemon(base_port + 69, "notifier-kill-2");
    assert_int_equal(wait_scalar(6, 10000,
                                 "SELECT count(*) FROM notifier.notifications WHERE "
                                 "status = 'sent'"),
                     6);
    /* each of the 6 delivery ids reached the receiver at least once */
    fake_req *snap;
    int nsnap = fake_snapshot(&snap), seen = 0;
    for (int id = 1; id <= 6; id++) {
        char want[16];
        snprintf(want, sizeof want, "%d", id);
        for (int i = 0; i < nsnap; i++)
            if (strcmp(snap[i].delivery, want) == 0) {
                seen++;
                break;
            }
    }
    snapshot_free(snap, nsnap);
    assert_int_equal(seen, 6);
    unsetenv("PAIMON_NOTIFIER_LEASE");
    assert_int_equal(stop_daemon(pid), 0);
}

/* The internal API: CRUD, validation, masking, pagination, test notification. */
static void test_api(void **state)
{
    (void)state;
    fresh_state();
    configure_channels("/slack/ok", "tokok");
    int port = base_port + 70;
    pid_t pid = start_daemon(port, "notifier-api");
    char *out = NULL;
    /* channels: sealed secret is write-only */
    char body[512];
    snprintf(body, sizeof body,
             "{\"id\":\"team-slack\",\"type\":\"slack\",\"secret\":\"http://127.0.0.1:%d/slack/"
             "ok?token=SECRET-XYZ\",\"config\":{\"min_interval_ms\":0}}",
             F.port);
    assert_int_equal(http_status("POST", port, "/v1/channels", body, &out), 201);
    assert_null(strstr(out, "SECRET-XYZ"));
    assert_non_null(strstr(out, "\"sealed\""));
    free(out);
    assert_int_equal(http_status("POST", port, "/v1/channels", body, NULL), 409);
    assert_int_equal(http_status("GET", port, "/v1/channels/team-slack", NULL, &out), 200);
    assert_null(strstr(out, "SECRET-XYZ"));
    free(out);
    assert_int_equal(http_status("POST", port, "/v1/channels",
                                 "{\"id\":\"x\",\"type\":\"slack\",\"color\":\"red\"}", NULL),
                     400);
    assert_int_equal(
        http_status("POST", port, "/v1/channels",
                    "{\"id\":\"m\",\"type\":\"email\",\"config\":{\"to\":[\"a@b.c\\r\\n"
                    "Bcc: x@y.z\"]}}",
                    NULL),
        400);
    assert_int_equal(
        http_status("PUT", port, "/v1/channels/team-slack", "{\"enabled\":false}", &out), 200);
    assert_non_null(strstr(out, "\"enabled\":false"));
    free(out);
    assert_int_equal(
        http_status("PUT", port, "/v1/channels/team-slack", "{\"enabled\":true}", NULL), 200);
    /* test notification through the sealed secret */
    assert_int_equal(http_status("POST", port, "/v1/test",
                                 "{\"channel_id\":\"team-slack\",\"message\":\"hello\"}", NULL),
                     202);
    assert_int_equal(wait_count("/slack/ok?token=SECRET-XYZ", 200, 1, 5000), 1);
    assert_int_equal(http_status("POST", port, "/v1/test", "{\"channel_id\":\"nope\"}", NULL), 404);
    /* pagination: 5 channels (4 seeded + 1), pages of 2 */
    assert_int_equal(http_status("GET", port, "/v1/channels?limit=2", NULL, &out), 200);
    cJSON *o = cJSON_Parse(out);
    free(out);
    cJSON *d = cJSON_GetObjectItem(o, "data");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "items")), 2);
    char path[256];
    snprintf(path, sizeof path, "/v1/channels?limit=2&cursor=%s",
             cJSON_GetObjectItem(d, "next_cursor")->valuestring);
    cJSON_Delete(o);
    int total = 2;
    while (1) {
        assert_int_equal(http_status("GET", port, path, NULL, &out), 200);
        o = cJSON_Parse(out);
        free(out);
        d = cJSON_GetObjectItem(o, "data");
        total += cJSON_GetArraySize(cJSON_GetObjectItem(d, "items"));
        cJSON *nc = cJSON_GetObjectItem(d, "next_cursor");
        if (!cJSON_IsString(nc)) {
            cJSON_Delete(o);
            break;
        }
        snprintf(path, sizeof path, "/v1/channels?limit=2&cursor=%s", nc->valuestring);
        cJSON_Delete(o);
    }
    assert_int_equal(total, 5);
    /* routes */
    assert_int_equal(http_status("POST", port, "/v1/routes",
                                 "{\"id\":\"team\",\"matchers\":[{\"name\":\"team\",\"op\":\"=\","
                                 "\"value\":\"x\"}],\"channels\":[\"team-slack\"],"
                                 "\"group_wait_ms\":0}",
                                 &out),
                     201);
    assert_non_null(strstr(out, "\"group_wait_ms\":0"));
    free(out);
    assert_int_equal(http_status("POST", port, "/v1/routes",
                                 "{\"id\":\"bad\",\"matchers\":[{\"name\":\"a\",\"op\":\"=~\","
                                 "\"value\":\"(\"}]}",
                                 NULL),
                     400);
    assert_int_equal(http_status("PUT", port, "/v1/routes/team",
                                 "{\"id\":\"team\",\"position\":5,\"channels\":[\"team-slack\"],"
                                 "\"matchers\":[{\"name\":\"team\",\"op\":\"=\",\"value\":\"x\"}],"
                                 "\"group_wait_ms\":0}",
                                 &out),
                     200);
    assert_non_null(strstr(out, "\"position\":5"));
    free(out);
    assert_int_equal(http_status("DELETE", port, "/v1/routes/team", NULL, NULL), 200);
    assert_int_equal(http_status("GET", port, "/v1/routes/team", NULL, NULL), 404);
    /* webhooks: a generated secret is shown once */
    setenv("PAIMON_MASTER_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
           1);
    assert_int_equal(http_status("POST", port, "/v1/webhooks",
                                 "{\"url\":\"https://example.com/h\",\"events\":[\"alert.*\"]}",
                                 &out),
                     201);
    o = cJSON_Parse(out);
    free(out);
    d = cJSON_GetObjectItem(o, "data");
    assert_int_equal(strlen(cJSON_GetObjectItem(d, "secret")->valuestring), 64);
    snprintf(path, sizeof path, "/v1/webhooks/%s", cJSON_GetObjectItem(d, "id")->valuestring);
    cJSON_Delete(o);
    assert_int_equal(http_status("GET", port, path, NULL, &out), 200);
    assert_non_null(strstr(out, "\"secret\":\"***\""));
    free(out);
    assert_int_equal(http_status("PUT", port, path, "{\"active\":false}", NULL), 200);
    assert_int_equal(http_status("DELETE", port, path, NULL, NULL), 200);
    assert_int_equal(http_status("GET", port, path, NULL, NULL), 404);
    /* deliveries: the test send is listed, filters work */
    assert_int_equal(
        http_status("GET", port, "/v1/deliveries?channel_id=team-slack&outcome=sent", NULL, &out),
        200);
    assert_non_null(strstr(out, "\"channel_id\":\"team-slack\""));
    free(out);
    assert_int_equal(http_status("GET", port, "/v1/deliveries?outcome=bogus", NULL, NULL), 400);
    assert_int_equal(stop_daemon(pid), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    base_port = th_redis_port();
    setenv("PAIMON_MASTER_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
           1);
    setenv("PAIMON_NOTIFIER_POLL", "200ms", 1);
    setenv("PAIMON_LOG_LEVEL", "info", 1);
    fake_start(base_port + 80);
    smtp_start(base_port + 81);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_routing_channels_hmac, kill_leftovers),
        cmocka_unit_test_teardown(test_grouping_dedup_resolved, kill_leftovers),
        cmocka_unit_test_teardown(test_silences, kill_leftovers),
        cmocka_unit_test_teardown(test_rate_limit_and_429, kill_leftovers),
        cmocka_unit_test_teardown(test_retry_dlq_fallback, kill_leftovers),
        cmocka_unit_test_teardown(test_smtp_transient, kill_leftovers),
        cmocka_unit_test_teardown(test_two_replicas_no_double_send, kill_leftovers),
        cmocka_unit_test_teardown(test_sigkill_nothing_lost, kill_leftovers),
        cmocka_unit_test_teardown(test_api, kill_leftovers),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    fake_reset();
    fake_stop();
    smtp_stop();
    if (pg)
        PQfinish(pg);
    if (rc)
        redisFree(rc);
    curl_global_cleanup();
    return r;
}
