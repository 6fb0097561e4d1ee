/* siwe: EIP-4361 parsing and checks (see siwe.h). */
#include "siwe.h"

#include "eip712.h"
#include "hex.h"
#include "secp.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char PREAMBLE[] = " wants you to sign in with your Ethereum account:";

static int64_t days_from_civil(int y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int siwe_parse_time(const char *s, int64_t *ms)
{
    int Y, M, D, h, mi, se;
    if (strlen(s) < 20 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || mi > 59 || se > 60)
        return -1;
    const char *p = s + 19;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9)
            return -1;
        for (; nd < 3; nd++)
            frac_ms *= 10;
    }
    int off_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - (int64_t)off_min * 60;
    *ms = secs * 1000 + frac_ms;
    return 0;
}

/* Next line of text into buf (without LF); returns pointer after it or NULL at end. */
static const char *next_line(const char *p, char *buf, size_t len, int *toolong)
{
    if (!p || !*p)
        return NULL;
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    *toolong = n >= len;
    if (!*toolong) {
        memcpy(buf, p, n);
        buf[n] = '\0';
    }
    return e ? e + 1 : p + n;
}

static int field(const char *line, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    if (strncmp(line, name, nl) != 0 || line[nl] != ':' || line[nl + 1] != ' ')
        return 0;
    const char *v = line + nl + 2;
    if (!*v || strlen(v) >= len)
        return -1;
    util_strlcpy(out, v, len);
    return 1;
}

int siwe_parse(const char *text, siwe_message *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (!text || strnlen(text, SIWE_MAX_MESSAGE + 1) > SIWE_MAX_MESSAGE)
        return util_err(err, errlen, "message missing or too long");
    for (const unsigned char *q = (const unsigned char *)text; *q; q++)
        if ((*q < 0x20 && *q != '\n') || *q == 0x7f)
            return util_err(err, errlen, "message has control characters");
    char line[1024];
    int tl = 0;
    const char *p = next_line(text, line, sizeof line, &tl);
    char *pre = p && !tl ? strstr(line, PREAMBLE) : NULL;
    if (!pre || pre[sizeof PREAMBLE - 1] != '\0' || pre == line)
        return util_err(err, errlen, "bad preamble");
    *pre = '\0';
    char *dom = line;
    char *sch = strstr(line, "://");
    if (sch) {
        *sch = '\0';
        if (strlen(line) >= sizeof m->scheme)
            return util_err(err, errlen, "bad scheme");
        util_strlcpy(m->scheme, line, sizeof m->scheme);
        dom = sch + 3;
    }
    if (!*dom || strlen(dom) >= sizeof m->domain || strpbrk(dom, " /?#"))
        return util_err(err, errlen, "bad domain");
    util_strlcpy(m->domain, dom, sizeof m->domain);
    p = next_line(p, line, sizeof line, &tl);
    if (!p || tl || hex_addr_parse(line, m->addr, NULL, 0) != 0)
        return util_err(err, errlen, "bad address");
    util_strlcpy(m->address, line, sizeof m->address);
    p = next_line(p, line, sizeof line, &tl);
    if (!p || tl || line[0])
        return util_err(err, errlen, "expected an empty line after the address");
    const char *save = p;
    p = next_line(p, line, sizeof line, &tl);
    if (!p || tl)
        return util_err(err, errlen, "message ends early");
    if (strncmp(line, "URI: ", 5) != 0) {
        /* a statement, then an empty line */
        if (!line[0] || strlen(line) >= sizeof m->statement)
            return util_err(err, errlen, "bad statement");
        util_strlcpy(m->statement, line, sizeof m->statement);
        p = next_line(p, line, sizeof line, &tl);
        if (!p || tl || line[0])
            return util_err(err, errlen, "expected an empty line after the statement");
        save = p;
        p = next_line(p, line, sizeof line, &tl);
        if (!p || tl)
            return util_err(err, errlen, "message ends early");
    }
    (void)save;
    char buf[512];
    if (field(line, "URI", m->uri, sizeof m->uri) != 1)
        return util_err(err, errlen, "bad URI");
    p = next_line(p, line, sizeof line, &tl);
    if (!p || tl || field(line, "Version", m->version, sizeof m->version) != 1)
        return util_err(err, errlen, "bad Version");
    p = next_line(p, line, sizeof line, &tl);
    if (!p || tl || field(line, "Chain ID", buf, sizeof buf) != 1)
        return util_err(err, errlen, "bad Chain ID");
    char *end = NULL;
    if (!isdigit((unsigned char)buf[0]) || (buf[0] == '0' && buf[1]) || strlen(buf) > 18)
        return util_err(err, errlen, "bad Chain ID");
    m->chain_id = strtoull(buf, &end, 10);
    if (*end || m->chain_id == 0)
        return util_err(err, errlen, "bad Chain ID");
    p = next_line(p, line, sizeof line, &tl);
    if (!p || tl || field(line, "Nonce", m->nonce, sizeof m->nonce) != 1 || strlen(m->nonce) < 8)
        return util_err(err, errlen, "bad Nonce");
    for (const char *q = m->nonce; *q; q++)
        if (!isalnum((unsigned char)*q))
            return util_err(err, errlen, "bad Nonce");
    p = next_line(p, line, sizeof line, &tl);
    if (!p || tl || field(line, "Issued At", buf, sizeof buf) != 1 ||
        siwe_parse_time(buf, &m->issued_at_ms) != 0)
        return util_err(err, errlen, "bad Issued At");
    /* optional fields, in the order EIP-4361 fixes */
    int stage = 0;
    while ((p = next_line(p, line, sizeof line, &tl)) != NULL) {
        if (tl)
            return util_err(err, errlen, "line too long");
        int r;
        if (stage < 1 && (r = field(line, "Expiration Time", buf, sizeof buf)) != 0) {
            if (r < 0 || siwe_parse_time(buf, &m->expiration_ms) != 0)
                return util_err(err, errlen, "bad Expiration Time");
            stage = 1;
        } else if (stage < 2 && (r = field(line, "Not Before", buf, sizeof buf)) != 0) {
            if (r < 0 || siwe_parse_time(buf, &m->not_before_ms) != 0)
                return util_err(err, errlen, "bad Not Before");
            stage = 2;
        } else if (stage < 3 &&
                   (r = field(line, "Request ID", m->request_id, sizeof m->request_id)) != 0) {
            if (r < 0)
                return util_err(err, errlen, "bad Request ID");
            stage = 3;
        } else if (stage < 4 && strcmp(line, "Resources:") == 0) {
            stage = 4;
        } else if (stage == 4 && strncmp(line, "- ", 2) == 0 && line[2]) {
            m->nresources++;
        } else {
            return util_err(err, errlen, "unexpected line in message");
        }
    }
    return 0;
}

int siwe_check(const siwe_message *m, const siwe_expect *x, char *err, size_t errlen)
{
    if (strcmp(m->domain, x->domain) != 0)
        return util_err(err, errlen, "domain mismatch");
    if (strcmp(m->version, "1") != 0)
        return util_err(err, errlen, "unsupported version");
    if (m->chain_id != x->chain_id)
        return util_err(err, errlen, "chain id mismatch");
    if (!x->nonce || strcmp(m->nonce, x->nonce) != 0)
        return util_err(err, errlen, "nonce mismatch");
    if (m->issued_at_ms > x->now_ms + x->skew_ms)
        return util_err(err, errlen, "issued in the future");
    if (x->max_age_ms > 0 && m->issued_at_ms < x->now_ms - x->max_age_ms)
        return util_err(err, errlen, "message too old");
    if (m->expiration_ms && m->expiration_ms <= x->now_ms - x->skew_ms)
        return util_err(err, errlen, "message expired");
    if (m->not_before_ms && m->not_before_ms > x->now_ms + x->skew_ms)
        return util_err(err, errlen, "message not yet valid");
    return 0;
}

int siwe_verify_signature(const char *text, const siwe_message *m, const char *sig_hex, char *err,
                          size_t errlen)
{
    uint8_t sig[65], addr[20];
    if (!sig_hex || secp_sig_parse_hex(sig_hex, sig, NULL, 0) != 0)
        return util_err(err, errlen, "malformed signature");
    if (eip712_personal_recover((const uint8_t *)text, strlen(text), sig, addr, NULL, 0) != 0)
        return util_err(err, errlen, "signature does not recover");
    if (memcmp(addr, m->addr, 20) != 0)
        return util_err(err, errlen, "signature is not from the message's address");
    return 0;
}
