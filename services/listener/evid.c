/* evid: ids and types of chain event messages (see evid.h). */
#include "evid.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* Lowercase hex digit of c, or 0 when c is not a hex digit. A table, not
 * isxdigit/tolower: this runs for two hashes of every event during a backfill. */
static char hex_lower(unsigned char c)
{
    static const char t[256] = {
        ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4', ['5'] = '5',
        ['6'] = '6', ['7'] = '7', ['8'] = '8', ['9'] = '9', ['a'] = 'a', ['b'] = 'b',
        ['c'] = 'c', ['d'] = 'd', ['e'] = 'e', ['f'] = 'f', ['A'] = 'a', ['B'] = 'b',
        ['C'] = 'c', ['D'] = 'd', ['E'] = 'e', ['F'] = 'f'};
    return t[c];
}

int evid_hash_ok(const char *s)
{
    if (!s || s[0] != '0' || s[1] != 'x')
        return 0;
    for (int i = 2; i < 66; i++) {
        char c = hex_lower((unsigned char)s[i]);
        if (!c || c != s[i])
            return 0; /* also stops at a short string's terminator */
    }
    return s[66] == '\0';
}

int evid_hash_norm(const char *s, char out[67])
{
    if (!s || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
        return -1;
    out[0] = '0';
    out[1] = 'x';
    for (int i = 2; i < 66; i++)
        if (!(out[i] = hex_lower((unsigned char)s[i])))
            return -1; /* also stops at a short string's terminator */
    if (s[66] != '\0')
        return -1;
    out[66] = '\0';
    return 0;
}

static int put(size_t len, int n)
{
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int evid_build(char *out, size_t len, uint64_t chain_id, const char *tx_hash, uint64_t log_index,
               const char *reincluded_in)
{
    if (chain_id == 0 || !evid_hash_ok(tx_hash) || (reincluded_in && !evid_hash_ok(reincluded_in)))
        return -1;
    if (reincluded_in)
        return put(len, snprintf(out, len, "%llu:%s:%llu:in:%s", (unsigned long long)chain_id,
                                 tx_hash, (unsigned long long)log_index, reincluded_in));
    /* By hand, not snprintf: one id per event of a backfill. */
    char c[UTIL_U64_DEC_MAX], l[UTIL_U64_DEC_MAX];
    size_t nc = util_u64_dec(c, chain_id), nl = util_u64_dec(l, log_index);
    if (nc + 1 + 66 + 1 + nl >= len)
        return -1;
    memcpy(out, c, nc);
    out[nc] = ':';
    memcpy(out + nc + 1, tx_hash, 66);
    out[nc + 67] = ':';
    memcpy(out + nc + 68, l, nl + 1);
    return 0;
}

int evid_removed(char *out, size_t len, const char *id, const char *block_hash)
{
    if (!id || !*id || !evid_hash_ok(block_hash))
        return -1;
    return put(len, snprintf(out, len, "%s:removed:%s", id, block_hash));
}

int evid_type(char *out, size_t len, const char *event, int removed)
{
    if (!event || !*event || strlen(event) > 80 || isdigit((unsigned char)event[0]))
        return -1;
    size_t o = 0;
    const char *prefix = "chain.";
    for (const char *p = prefix; *p; p++) {
        if (o + 1 >= len)
            return -1;
        out[o++] = *p;
    }
    for (size_t i = 0; event[i]; i++) {
        unsigned char c = (unsigned char)event[i];
        if (!isalnum(c) && c != '_')
            return -1;
        /* A capital after a lowercase letter or digit, or before a lowercase one in a
         * run of capitals ("ERC20Transfer" -> erc20_transfer), starts a word. */
        int boundary =
            i > 0 && isupper(c) &&
            (islower((unsigned char)event[i - 1]) || isdigit((unsigned char)event[i - 1]) ||
             (isupper((unsigned char)event[i - 1]) && islower((unsigned char)event[i + 1])));
        if (boundary && out[o - 1] != '_') {
            if (o + 1 >= len)
                return -1;
            out[o++] = '_';
        }
        if (o + 1 >= len)
            return -1;
        out[o++] = (char)tolower(c);
    }
    if (removed) {
        for (const char *p = ".removed"; *p; p++) {
            if (o + 1 >= len)
                return -1;
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    /* The envelope schema wants [a-z][a-z0-9_]* segments: "_x" or "x__y" are fine,
     * a leading '_' after "chain." is not. */
    return out[6] == '_' ? -1 : 0;
}
