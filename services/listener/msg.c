/* msg: chain.events envelopes as JSON text (see msg.h). */
#include "msg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "evid.h"
#include "util.h"

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_reserve(sbuf *b, size_t add)
{
    if (b->len + add + 1 <= b->cap)
        return;
    while (b->len + add + 1 > b->cap)
        b->cap = b->cap ? b->cap * 2 : 1024;
    char *p = realloc(b->p, b->cap);
    if (!p)
        abort(); /* as util_malloc does */
    b->p = p;
}

static void sb_raw(sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_lit(sbuf *b, const char *s)
{
    sb_raw(b, s, strlen(s));
}

/* A JSON string: quotes, backslashes and control characters escaped (the rest,
 * UTF-8 included, is valid as is). Runs of plain characters (all of a hash, an id,
 * a timestamp) are copied whole. */
static void sb_str(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    sb_reserve(b, n * 6 + 2);
    char *o = b->p + b->len;
    *o++ = '"';
    for (;;) {
        size_t run = 0;
        while ((unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\')
            run++;
        memcpy(o, s, run);
        o += run;
        s += run;
        unsigned char ch = (unsigned char)*s;
        if (!ch)
            break;
        *o++ = '\\';
        if (ch == '"' || ch == '\\') {
            *o++ = (char)ch;
        } else {
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
        s++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
}

static void sb_i64(sbuf *b, int64_t v)
{
    char n[UTIL_U64_DEC_MAX + 1];
    if (v < 0) {
        n[0] = '-';
        sb_raw(b, n, 1 + util_u64_dec(n + 1, 0 - (uint64_t)v));
    } else {
        sb_raw(b, n, util_u64_dec(n, (uint64_t)v));
    }
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void msg_trace_init(msg_trace *t)
{
    char h[33];
    envelope_trace_new(h); /* 16 random bytes, hex */
    char a[17];
    memcpy(a, h, 16);
    a[16] = '\0';
    t->s0 = strtoull(a, NULL, 16);
    t->s1 = strtoull(h + 16, NULL, 16);
}

void msg_trace_next(msg_trace *t, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t w[2] = {splitmix(&t->s0), splitmix(&t->s1)};
    for (int i = 0; i < 32; i++)
        out[i] = hex[(w[i / 16] >> (60 - 4 * (i % 16))) & 15];
    out[32] = '\0';
}

char *msg_event_json(uint64_t chain_id, const store_row *w, int compensation, const char *ts,
                     const char *trace_id)
{
    char type[EVTYPE_MAX], id[EVID_MAX], bt[32];
    if (evid_type(type, sizeof type, w->event, compensation) != 0)
        return NULL;
    if (compensation) {
        if (evid_removed(id, sizeof id, w->id, w->block_hash) != 0)
            return NULL;
    } else {
        util_strlcpy(id, w->id, sizeof id);
    }
    envelope_format_ts(w->block_time * 1000, bt);
    sbuf b = {0};
    sb_reserve(&b, 768 + (w->args ? strlen(w->args) : 2));
    sb_lit(&b, "{\"id\":");
    sb_str(&b, id);
    sb_lit(&b, ",\"type\":");
    sb_str(&b, type);
    sb_lit(&b, ",\"source\":\"listener\",\"ts\":");
    sb_str(&b, ts);
    sb_lit(&b, ",\"attempt\":0,\"trace_id\":");
    sb_str(&b, trace_id);
    sb_lit(&b, ",\"priority\":");
    sb_str(&b, bus_priority_name(w->prio));
    sb_lit(&b, ",\"payload\":{\"chain_id\":");
    sb_i64(&b, (int64_t)chain_id);
    sb_lit(&b, ",\"address\":");
    sb_str(&b, w->address);
    sb_lit(&b, ",\"event\":");
    sb_str(&b, w->event);
    sb_lit(&b, ",\"signature\":");
    sb_str(&b, w->signature ? w->signature : "");
    sb_lit(&b, ",\"args\":");
    sb_lit(&b, w->args && *w->args ? w->args : "{}");
    sb_lit(&b, ",\"block_number\":");
    sb_i64(&b, w->block_number);
    sb_lit(&b, ",\"block_hash\":");
    sb_str(&b, w->block_hash);
    sb_lit(&b, ",\"block_time\":");
    sb_str(&b, bt);
    sb_lit(&b, ",\"tx_hash\":");
    sb_str(&b, w->tx_hash);
    sb_lit(&b, ",\"tx_index\":");
    sb_i64(&b, w->tx_index);
    sb_lit(&b, ",\"log_index\":");
    sb_i64(&b, w->log_index);
    sb_lit(&b, compensation ? ",\"removed\":true,\"original_id\":" : ",\"removed\":false}}");
    if (compensation) {
        sb_str(&b, w->id);
        sb_lit(&b, "}}");
    }
    return b.p;
}
