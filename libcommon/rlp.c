/* rlp: RLP encoder into a growable buffer and strict zero-copy decoder (see rlp.h). */
#include "rlp.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void rlp_buf_init(rlp_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void rlp_buf_free(rlp_buf *b)
{
    free(b->data);
    rlp_buf_init(b);
}

void rlp_buf_reset(rlp_buf *b)
{
    b->len = 0;
}

static void reserve(rlp_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        abort(); /* same policy as util_malloc */
    b->data = d;
    b->cap = cap;
}

/* Big-endian length bytes without leading zeros into out[8]; returns the count. */
static size_t be_len(uint64_t v, uint8_t out[8])
{
    size_t n = 0;
    for (int i = 7; i >= 0; i--) {
        uint8_t byte = (uint8_t)(v >> (8 * i));
        if (byte || n)
            out[n++] = byte;
    }
    return n;
}

/* Header for a payload of len bytes: offset 0x80 for strings, 0xc0 for lists. */
static size_t header(uint8_t off, size_t len, uint8_t h[9])
{
    if (len < 56) {
        h[0] = (uint8_t)(off + len);
        return 1;
    }
    size_t n = be_len(len, h + 1);
    h[0] = (uint8_t)(off + 55 + n);
    return n + 1;
}

void rlp_put_bytes(rlp_buf *b, const uint8_t *p, size_t n)
{
    if (n == 1 && p[0] < 0x80) {
        reserve(b, 1);
        b->data[b->len++] = p[0];
        return;
    }
    uint8_t h[9];
    size_t hl = header(0x80, n, h);
    reserve(b, hl + n);
    memcpy(b->data + b->len, h, hl);
    if (n)
        memcpy(b->data + b->len + hl, p, n);
    b->len += hl + n;
}

void rlp_put_str(rlp_buf *b, const char *s)
{
    rlp_put_bytes(b, (const uint8_t *)s, strlen(s));
}

void rlp_put_u64(rlp_buf *b, uint64_t v)
{
    uint8_t be[8];
    size_t n = be_len(v, be);
    rlp_put_bytes(b, be, n);
}

void rlp_put_u256(rlp_buf *b, const money_u256 *v)
{
    uint8_t be[32];
    money_to_be32(v, be);
    size_t skip = 0;
    while (skip < 32 && be[skip] == 0)
        skip++;
    rlp_put_bytes(b, be + skip, 32 - skip);
}

void rlp_put_raw(rlp_buf *b, const uint8_t *p, size_t n)
{
    reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

size_t rlp_list_begin(rlp_buf *b)
{
    return b->len;
}

void rlp_list_end(rlp_buf *b, size_t mark)
{
    size_t plen = b->len - mark;
    uint8_t h[9];
    size_t hl = header(0xc0, plen, h);
    reserve(b, hl);
    memmove(b->data + mark + hl, b->data + mark, plen);
    memcpy(b->data + mark, h, hl);
    b->len += hl;
}

/* Parses one item header at in[0..n): fills out (payload bounds checked against n)
 * without looking inside lists. */
static int parse_one(const uint8_t *in, size_t n, rlp_item *out, char *err, size_t errlen)
{
    if (n == 0)
        return util_err(err, errlen, "rlp: unexpected end of input");
    uint8_t p = in[0];
    size_t hl, len;
    int is_list = p >= 0xc0;
    if (p < 0x80) {
        hl = 0;
        len = 1;
    } else if (p <= 0xb7 || (p >= 0xc0 && p <= 0xf7)) {
        hl = 1;
        len = (size_t)(p - (is_list ? 0xc0 : 0x80));
        if (!is_list && len == 1 && n >= 2 && in[1] < 0x80)
            return util_err(err, errlen, "rlp: single byte below 0x80 encoded as a string");
    } else {
        size_t ll = (size_t)(p - (is_list ? 0xf7 : 0xb7));
        if (n < 1 + ll)
            return util_err(err, errlen, "rlp: truncated length");
        if (in[1] == 0)
            return util_err(err, errlen, "rlp: leading zero in length");
        if (ll > sizeof(size_t))
            return util_err(err, errlen, "rlp: length too large");
        len = 0;
        for (size_t i = 0; i < ll; i++)
            len = (len << 8) | in[1 + i];
        if (len < 56)
            return util_err(err, errlen, "rlp: non-canonical long length %zu", len);
        hl = 1 + ll;
    }
    if (len > n - hl)
        return util_err(err, errlen, "rlp: length %zu beyond input", len);
    out->is_list = is_list;
    out->payload = in + hl;
    out->len = len;
    out->raw = in;
    out->raw_len = hl + len;
    return 0;
}

static int validate(const rlp_item *it, int depth, char *err, size_t errlen)
{
    if (!it->is_list)
        return 0;
    if (depth >= RLP_MAX_DEPTH)
        return util_err(err, errlen, "rlp: nesting deeper than %d", RLP_MAX_DEPTH);
    const uint8_t *p = it->payload;
    size_t rem = it->len;
    while (rem) {
        rlp_item child;
        if (parse_one(p, rem, &child, err, errlen) < 0 ||
            validate(&child, depth + 1, err, errlen) < 0)
            return -1;
        p += child.raw_len;
        rem -= child.raw_len;
    }
    return 0;
}

int rlp_decode(const uint8_t *in, size_t n, rlp_item *out, char *err, size_t errlen)
{
    rlp_item it;
    if (parse_one(in, n, &it, err, errlen) < 0)
        return -1;
    if (it.raw_len != n)
        return util_err(err, errlen, "rlp: %zu trailing bytes", n - it.raw_len);
    if (validate(&it, 0, err, errlen) < 0)
        return -1;
    *out = it;
    return 0;
}

int rlp_iter_init(rlp_iter *it, const rlp_item *list, char *err, size_t errlen)
{
    if (!list->is_list)
        return util_err(err, errlen, "rlp: expected a list");
    it->p = list->payload;
    it->rem = list->len;
    return 0;
}

int rlp_iter_next(rlp_iter *it, rlp_item *out, char *err, size_t errlen)
{
    if (it->rem == 0)
        return 0;
    rlp_item item;
    if (parse_one(it->p, it->rem, &item, err, errlen) < 0)
        return -1;
    it->p += item.raw_len;
    it->rem -= item.raw_len;
    *out = item;
    return 1;
}

int rlp_list_count(const rlp_item *list, size_t *count, char *err, size_t errlen)
{
    rlp_iter it = {0};
    rlp_item item;
    size_t n = 0;
    int r;
    if (rlp_iter_init(&it, list, err, errlen) < 0)
        return -1;
    while ((r = rlp_iter_next(&it, &item, err, errlen)) == 1)
        n++;
    if (r < 0)
        return -1;
    *count = n;
    return 0;
}

static int int_bytes(const rlp_item *it, size_t max, char *err, size_t errlen)
{
    if (it->is_list)
        return util_err(err, errlen, "rlp: expected an integer, got a list");
    if (it->len > max)
        return util_err(err, errlen, "rlp: integer wider than %zu bytes", max);
    if (it->len > 0 && it->payload[0] == 0)
        return util_err(err, errlen, "rlp: leading zero in integer");
    return 0;
}

int rlp_item_u64(const rlp_item *it, uint64_t *out, char *err, size_t errlen)
{
    if (int_bytes(it, 8, err, errlen) < 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < it->len; i++)
        v = (v << 8) | it->payload[i];
    *out = v;
    return 0;
}

int rlp_item_u256(const rlp_item *it, money_u256 *out, char *err, size_t errlen)
{
    if (int_bytes(it, 32, err, errlen) < 0)
        return -1;
    uint8_t be[32] = {0};
    if (it->len)
        memcpy(be + 32 - it->len, it->payload, it->len);
    money_from_be32(out, be);
    return 0;
}
