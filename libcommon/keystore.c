/* keystore: envelope-encrypted signer keys in an atomically written JSON file.
 * See keystore.h for the format; the keystore owns its entries, callers own and
 * wipe unlocked keys. */
#include "keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "hex.h"
#include "secp.h"
#include "util.h"

#define KS_FORMAT   "paimon-keystore"
#define KS_VERSION  1
#define KS_MAX_FILE (4u << 20) /* far above any real signer count */
#define KS_DEK_LEN  32
#define KS_BLOB_LEN (32 + CRYPTO_SEAL_OVERHEAD)
#define KS_AAD_MAX  256

typedef struct ks_entry {
    char name[KEYSTORE_NAME_MAX + 1];
    char kek_id[KEYSTORE_NAME_MAX + 1];
    uint8_t address[20];
    uint8_t wrapped[KS_BLOB_LEN];
    uint8_t sealed[KS_BLOB_LEN];
    int64_t created_at;
} ks_entry;

struct keystore {
    char *path;
    ks_entry *e;
    size_t n;
};

static int valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > KEYSTORE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* ---- master keys ---- */

int keystore_kek_parse(const char *id, const char *text, keystore_kek *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!valid_name(id))
        return util_err(err, errlen, "master key id must be 1..%d of [A-Za-z0-9._-]",
                        KEYSTORE_NAME_MAX);
    if (!text)
        return util_err(err, errlen, "master key '%s' is not set", id);
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' ||
                 text[n - 1] == '\t'))
        n--;
    size_t hn = hex_has_prefix(text) ? n - 2 : n;
    int ok = 0;
    if (hn == 64) {
        size_t got = 0;
        ok = hex_decode_n(text, n, out->key, sizeof out->key, &got, NULL, 0) == 0 && got == 32;
    } else if (n == 44) {
        char b64[45];
        memcpy(b64, text, 44);
        b64[44] = '\0';
        uint8_t *raw = NULL;
        size_t rl = 0;
        if (crypto_b64_decode_new(b64, &raw, &rl, NULL, 0) == 0 && rl == 32) {
            memcpy(out->key, raw, 32);
            ok = 1;
        }
        if (raw)
            crypto_wipe(raw, rl);
        free(raw);
        crypto_wipe(b64, sizeof b64);
    }
    if (!ok) {
        crypto_wipe(out, sizeof *out);
        /* The text itself is never echoed: it is (almost) a secret. */
        return util_err(err, errlen,
                        "master key '%s' must be 32 bytes as 64 hex digits or 44 base64 characters "
                        "(got %zu characters)",
                        id, n);
    }
    static const uint8_t zero[32];
    if (crypto_ct_equal(out->key, zero, 32)) {
        crypto_wipe(out, sizeof *out);
        return util_err(err, errlen, "master key '%s' is all zeros", id);
    }
    util_strlcpy(out->id, id, sizeof out->id);
    return 0;
}

int keystore_kek_from_env(const char *var, keystore_kek *out, char *err, size_t errlen)
{
    if (!var)
        var = "PAIMON_MASTER_KEY";
    char idvar[128];
    snprintf(idvar, sizeof idvar, "%s_ID", var);
    const char *key = getenv(var), *id = getenv(idvar);
    if (!key || !*key) {
        memset(out, 0, sizeof *out);
        return util_err(err, errlen, "%s is not set", var);
    }
    if (!id || !*id)
        id = "default";
    char e2[UTIL_ERRLEN];
    if (keystore_kek_parse(id, key, out, e2, sizeof e2) != 0)
        return util_err(err, errlen, "%s: %s", var, e2);
    return 0;
}

void keystore_kek_wipe(keystore_kek *k)
{
    crypto_wipe(k, sizeof *k);
}

/* ---- AAD and envelope layers ---- */

static void addr_lower(const uint8_t a[20], char out[HEX_ADDR_STRLEN])
{
    hex_encode(a, 20, 1, out, HEX_ADDR_STRLEN);
}

static size_t aad_key(const ks_entry *e, char out[KS_AAD_MAX])
{
    char a[HEX_ADDR_STRLEN];
    addr_lower(e->address, a);
    return (size_t)snprintf(out, KS_AAD_MAX, "%s|%s", e->name, a);
}

static size_t aad_dek(const ks_entry *e, const char *kek_id, char out[KS_AAD_MAX])
{
    char a[HEX_ADDR_STRLEN];
    addr_lower(e->address, a);
    return (size_t)snprintf(out, KS_AAD_MAX, "paimon-dek-v1|%s|%s|%s", e->name, a, kek_id);
}

/* Seals exactly 32 bytes into a KS_BLOB_LEN buffer. */
static int seal32(const uint8_t key[32], const char *aad, size_t aadlen, const uint8_t in[32],
                  uint8_t out[KS_BLOB_LEN], char *err, size_t errlen)
{
    uint8_t *b = NULL;
    size_t bl = 0;
    if (crypto_gcm_seal(key, aad, aadlen, in, 32, &b, &bl, err, errlen) != 0)
        return -1;
    if (bl != KS_BLOB_LEN) {
        free(b);
        return util_err(err, errlen, "unexpected sealed size %zu", bl);
    }
    memcpy(out, b, KS_BLOB_LEN);
    free(b);
    return 0;
}

/* Opens a KS_BLOB_LEN blob that must hold exactly 32 bytes. */
static int open32(const uint8_t key[32], const char *aad, size_t aadlen,
                  const uint8_t in[KS_BLOB_LEN], uint8_t out[32])
{
    uint8_t *p = NULL;
    size_t pl = 0;
    if (crypto_gcm_open(key, aad, aadlen, in, KS_BLOB_LEN, &p, &pl, NULL, 0) != 0)
        return -1;
    int ok = pl == 32;
    if (ok)
        memcpy(out, p, 32);
    crypto_wipe(p, pl);
    free(p);
    return ok ? 0 : -1;
}

/* Unwraps e's DEK with kek (whose id must match) into dek. */
static int unwrap_dek(const ks_entry *e, const keystore_kek *kek, uint8_t dek[32], char *err,
                      size_t errlen)
{
    if (strcmp(e->kek_id, kek->id) != 0)
        return util_err(err, errlen, "signer '%s' is wrapped by master key '%s', not '%s'", e->name,
                        e->kek_id, kek->id);
    char aad[KS_AAD_MAX];
    size_t al = aad_dek(e, e->kek_id, aad);
    if (open32(kek->key, aad, al, e->wrapped, dek) != 0)
        return util_err(err, errlen,
                        "master key '%s' does not open signer '%s' (wrong master key or tampered "
                        "entry)",
                        kek->id, e->name);
    return 0;
}

/* Opens e's private key with its DEK and checks it derives e's address. */
static int open_key(const ks_entry *e, const uint8_t dek[32], uint8_t key[32], char *err,
                    size_t errlen)
{
    char aad[KS_AAD_MAX];
    size_t al = aad_key(e, aad);
    if (open32(dek, aad, al, e->sealed, key) != 0)
        return util_err(err, errlen, "sealed key of signer '%s' does not open (tampered entry)",
                        e->name);
    uint8_t addr[20];
    if (secp_key_check(key, NULL, 0) != 0 || secp_pubkey_address(key, addr, NULL, 0) != 0) {
        crypto_wipe(key, 32);
        return util_err(err, errlen, "signer '%s' holds an invalid secp256k1 key", e->name);
    }
    if (memcmp(addr, e->address, 20) != 0) {
        crypto_wipe(key, 32);
        char want[HEX_ADDR_STRLEN], got[HEX_ADDR_STRLEN];
        hex_addr_checksum(e->address, want);
        hex_addr_checksum(addr, got);
        return util_err(err, errlen, "signer '%s': address mismatch (recorded %s, key is %s)",
                        e->name, want, got);
    }
    return 0;
}

/* ---- file I/O ---- */

static char *serialize(const ks_entry *e, size_t n)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", KS_FORMAT);
    cJSON_AddNumberToObject(root, "version", KS_VERSION);
    cJSON *arr = cJSON_AddArrayToObject(root, "signers");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        char a[HEX_ADDR_STRLEN];
        hex_addr_checksum(e[i].address, a);
        char *w = crypto_b64_encode_new(e[i].wrapped, KS_BLOB_LEN);
        char *s = crypto_b64_encode_new(e[i].sealed, KS_BLOB_LEN);
        cJSON_AddStringToObject(o, "name", e[i].name);
        cJSON_AddStringToObject(o, "address", a);
        cJSON_AddStringToObject(o, "kek_id", e[i].kek_id);
        cJSON_AddStringToObject(o, "wrapped_dek", w);
        cJSON_AddStringToObject(o, "sealed_key", s);
        cJSON_AddNumberToObject(o, "created_at", (double)e[i].created_at);
        cJSON_AddItemToArray(arr, o);
        free(w);
        free(s);
    }
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}

static int write_all(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* temp file in the same directory + fsync + rename + fsync(dir). */
static int save_file(const char *path, const ks_entry *e, size_t n, char *err, size_t errlen)
{
    char *json = serialize(e, n);
    if (!json)
        return util_err(err, errlen, "keystore: cannot serialize");
    size_t tl = strlen(path) + 32;
    char *tmp = util_malloc(tl);
    uint32_t r = 0;
    util_random(&r, sizeof r);
    snprintf(tmp, tl, "%s.tmp.%ld.%08x", path, (long)getpid(), r);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        util_err(err, errlen, "keystore: cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (write_all(fd, json, strlen(json)) != 0 || write_all(fd, "\n", 1) != 0 || fsync(fd) != 0) {
        util_err(err, errlen, "keystore: cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0) {
        util_err(err, errlen, "keystore: cannot close %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        util_err(err, errlen, "keystore: cannot rename to %s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    /* The rename is durable only once the directory entry is. */
    char *dcopy = util_strdup(path);
    int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dcopy);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
out:
    free(tmp);
    free(json);
    return rc;
}

static int get_str(const cJSON *o, const char *k, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v) || !v->valuestring)
        return -1;
    *out = v->valuestring;
    return 0;
}

static int get_blob(const cJSON *o, const char *k, uint8_t out[KS_BLOB_LEN])
{
    const char *s;
    if (get_str(o, k, &s) != 0)
        return -1;
    uint8_t *b = NULL;
    size_t bl = 0;
    if (crypto_b64_decode_new(s, &b, &bl, NULL, 0) != 0)
        return -1;
    int ok = bl == KS_BLOB_LEN && b[0] == CRYPTO_SEAL_VERSION;
    if (ok)
        memcpy(out, b, KS_BLOB_LEN);
    free(b);
    return ok ? 0 : -1;
}

static int parse_entry(const cJSON *o, size_t i, ks_entry *e, char *err, size_t errlen)
{
    const char *name, *addr, *kid;
    if (!cJSON_IsObject(o))
        return util_err(err, errlen, "signers[%zu] is not an object", i);
    if (get_str(o, "name", &name) != 0 || !valid_name(name))
        return util_err(err, errlen, "signers[%zu].name is missing or invalid", i);
    if (get_str(o, "address", &addr) != 0 || hex_addr_parse(addr, e->address, NULL, 0) != 0)
        return util_err(err, errlen, "signer '%s': address is missing or invalid", name);
    if (get_str(o, "kek_id", &kid) != 0 || !valid_name(kid))
        return util_err(err, errlen, "signer '%s': kek_id is missing or invalid", name);
    if (get_blob(o, "wrapped_dek", e->wrapped) != 0)
        return util_err(err, errlen, "signer '%s': wrapped_dek is missing or malformed", name);
    if (get_blob(o, "sealed_key", e->sealed) != 0)
        return util_err(err, errlen, "signer '%s': sealed_key is missing or malformed", name);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "created_at");
    if (!cJSON_IsNumber(c) || c->valuedouble < 0 || c->valuedouble > 9.0e15 ||
        c->valuedouble != (double)(int64_t)c->valuedouble)
        return util_err(err, errlen, "signer '%s': created_at is missing or invalid", name);
    util_strlcpy(e->name, name, sizeof e->name);
    util_strlcpy(e->kek_id, kid, sizeof e->kek_id);
    e->created_at = (int64_t)c->valuedouble;
    return 0;
}

static int parse_file(const char *text, ks_entry **out, size_t *outn, char *err, size_t errlen)
{
    *out = NULL;
    *outn = 0;
    cJSON *root = cJSON_Parse(text);
    if (!root)
        return util_err(err, errlen, "not valid JSON");
    int rc = -1;
    ks_entry *e = NULL;
    const char *fmt;
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "signers");
    if (!cJSON_IsObject(root) || get_str(root, "format", &fmt) != 0 || strcmp(fmt, KS_FORMAT)) {
        util_err(err, errlen, "not a paimon keystore (format field)");
        goto out;
    }
    if (!cJSON_IsNumber(ver) || ver->valuedouble != KS_VERSION) {
        util_err(err, errlen, "unsupported keystore version");
        goto out;
    }
    if (!cJSON_IsArray(arr)) {
        util_err(err, errlen, "signers is not an array");
        goto out;
    }
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    e = util_calloc(n ? n : 1, sizeof *e);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (parse_entry(it, i, &e[i], err, errlen) != 0)
            goto out;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(e[j].name, e[i].name) == 0) {
                util_err(err, errlen, "duplicate signer name '%s'", e[i].name);
                goto out;
            }
            if (memcmp(e[j].address, e[i].address, 20) == 0) {
                util_err(err, errlen, "signers '%s' and '%s' share an address", e[j].name,
                         e[i].name);
                goto out;
            }
        }
        i++;
    }
    *out = e;
    *outn = n;
    e = NULL;
    rc = 0;
out:
    free(e);
    cJSON_Delete(root);
    return rc;
}

int keystore_open(const char *path, keystore **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path)
        return util_err(err, errlen, "keystore: empty path");
    keystore *ks = util_calloc(1, sizeof *ks);
    ks->path = util_strdup(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            *out = ks;
            return 0;
        }
        util_err(err, errlen, "keystore %s: %s", path, strerror(errno));
        keystore_free(ks);
        return -1;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        util_err(err, errlen, "keystore %s: not a regular file", path);
        goto fail;
    }
    if (st.st_mode & 077) {
        util_err(err, errlen, "keystore %s: mode %04o lets group/others in; chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    if ((uint64_t)st.st_size > KS_MAX_FILE) {
        util_err(err, errlen, "keystore %s: too large", path);
        goto fail;
    }
    buf = util_malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    if (got != (size_t)st.st_size || strlen(buf) != got) {
        util_err(err, errlen, "keystore %s: short read or NUL byte", path);
        goto fail;
    }
    char e2[UTIL_ERRLEN];
    if (parse_file(buf, &ks->e, &ks->n, e2, sizeof e2) != 0) {
        util_err(err, errlen, "keystore %s: %s", path, e2);
        goto fail;
    }
    free(buf);
    close(fd);
    *out = ks;
    return 0;
fail:
    free(buf);
    close(fd);
    keystore_free(ks);
    return -1;
}

void keystore_free(keystore *ks)
{
    if (!ks)
        return;
    crypto_wipe(ks->e, ks->n * sizeof *ks->e);
    free(ks->e);
    free(ks->path);
    free(ks);
}

/* ---- queries ---- */

size_t keystore_count(const keystore *ks)
{
    return ks->n;
}

static void fill_info(const ks_entry *e, keystore_info *out)
{
    out->name = e->name;
    memcpy(out->address, e->address, 20);
    out->kek_id = e->kek_id;
    out->created_at = e->created_at;
}

int keystore_get(const keystore *ks, size_t i, keystore_info *out)
{
    if (i >= ks->n)
        return -1;
    fill_info(&ks->e[i], out);
    return 0;
}

static ks_entry *find(const keystore *ks, const char *name)
{
    for (size_t i = 0; name && i < ks->n; i++)
        if (strcmp(ks->e[i].name, name) == 0)
            return &ks->e[i];
    return NULL;
}

int keystore_find(const keystore *ks, const char *name, keystore_info *out)
{
    const ks_entry *e = find(ks, name);
    if (!e)
        return -1;
    fill_info(e, out);
    return 0;
}

/* ---- mutations ---- */

int keystore_create(keystore *ks, const keystore_kek *kek, const char *name,
                    const uint8_t key[KEYSTORE_KEY_LEN], uint8_t addr[20], char *err, size_t errlen)
{
    if (!valid_name(name))
        return util_err(err, errlen, "signer name must be 1..%d of [A-Za-z0-9._-]",
                        KEYSTORE_NAME_MAX);
    if (!valid_name(kek->id))
        return util_err(err, errlen, "master key has no valid id");
    if (find(ks, name))
        return util_err(err, errlen, "signer '%s' already exists", name);
    uint8_t k[32], dek[32];
    ks_entry e;
    memset(&e, 0, sizeof e);
    int rc = -1;
    if (key)
        memcpy(k, key, 32);
    else if (secp_key_random(k, err, errlen) != 0)
        goto out;
    if (secp_key_check(k, NULL, 0) != 0) {
        util_err(err, errlen, "not a valid secp256k1 private key");
        goto out;
    }
    if (secp_pubkey_address(k, e.address, err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < ks->n; i++) {
        if (memcmp(ks->e[i].address, e.address, 20) == 0) {
            util_err(err, errlen, "this key is already stored as signer '%s'", ks->e[i].name);
            goto out;
        }
    }
    util_strlcpy(e.name, name, sizeof e.name);
    util_strlcpy(e.kek_id, kek->id, sizeof e.kek_id);
    e.created_at = util_now_ms();
    if (util_random(dek, sizeof dek) != 0) {
        util_err(err, errlen, "no randomness for the data key");
        goto out;
    }
    char aad[KS_AAD_MAX];
    size_t al = aad_key(&e, aad);
    if (seal32(dek, aad, al, k, e.sealed, err, errlen) != 0)
        goto out;
    al = aad_dek(&e, e.kek_id, aad);
    if (seal32(kek->key, aad, al, dek, e.wrapped, err, errlen) != 0)
        goto out;
    /* Save first, then adopt: memory never holds an entry the file lacks. */
    ks_entry *ne = util_malloc((ks->n + 1) * sizeof *ne);
    if (ks->n)
        memcpy(ne, ks->e, ks->n * sizeof *ne);
    ne[ks->n] = e;
    if (save_file(ks->path, ne, ks->n + 1, err, errlen) != 0) {
        free(ne);
        goto out;
    }
    free(ks->e);
    ks->e = ne;
    ks->n++;
    if (addr)
        memcpy(addr, e.address, 20);
    rc = 0;
out:
    crypto_wipe(k, sizeof k);
    crypto_wipe(dek, sizeof dek);
    return rc;
}

int keystore_import_hex(keystore *ks, const keystore_kek *kek, const char *name,
                        const char *key_hex, uint8_t addr[20], char *err, size_t errlen)
{
    uint8_t k[32];
    if (!key_hex || hex_decode_fixed(key_hex, k, 32, NULL, 0) != 0) {
        crypto_wipe(k, sizeof k);
        return util_err(err, errlen, "private key must be 64 hex digits");
    }
    int rc = keystore_create(ks, kek, name, k, addr, err, errlen);
    crypto_wipe(k, sizeof k);
    return rc;
}

int keystore_unlock(const keystore *ks, const keystore_kek *kek, const char *name,
                    uint8_t key[KEYSTORE_KEY_LEN], uint8_t addr[20], char *err, size_t errlen)
{
    const ks_entry *e = find(ks, name);
    if (!e)
        return util_err(err, errlen, "no signer named '%s'", name ? name : "(null)");
    uint8_t dek[32];
    int rc = unwrap_dek(e, kek, dek, err, errlen);
    if (rc == 0)
        rc = open_key(e, dek, key, err, errlen);
    crypto_wipe(dek, sizeof dek);
    if (rc == 0 && addr)
        memcpy(addr, e->address, 20);
    return rc;
}

int keystore_rotate_master(keystore *ks, const keystore_kek *old_kek, const keystore_kek *new_kek,
                           size_t *rotated, char *err, size_t errlen)
{
    if (rotated)
        *rotated = 0;
    if (!valid_name(old_kek->id) || !valid_name(new_kek->id))
        return util_err(err, errlen, "master keys need valid ids");
    if (strcmp(old_kek->id, new_kek->id) == 0)
        return util_err(err, errlen,
                        "new master key must have a new id (both are '%s'), or entries could not "
                        "tell which key wraps them",
                        old_kek->id);
    if (crypto_ct_equal(old_kek->key, new_kek->key, 32))
        return util_err(err, errlen, "new master key equals the old one");
    ks_entry *ne = util_malloc((ks->n ? ks->n : 1) * sizeof *ne);
    if (ks->n)
        memcpy(ne, ks->e, ks->n * sizeof *ne);
    size_t count = 0;
    int rc = -1;
    for (size_t i = 0; i < ks->n; i++) {
        const keystore_kek *cur = strcmp(ne[i].kek_id, new_kek->id) == 0 ? new_kek : old_kek;
        uint8_t dek[32], key[32];
        if (unwrap_dek(&ne[i], cur, dek, err, errlen) != 0)
            goto out;
        /* Never re-wrap (and so bless) an entry whose sealed key is broken. */
        if (open_key(&ne[i], dek, key, err, errlen) != 0) {
            crypto_wipe(dek, sizeof dek);
            goto out;
        }
        crypto_wipe(key, sizeof key);
        if (cur == old_kek) {
            char aad[KS_AAD_MAX];
            util_strlcpy(ne[i].kek_id, new_kek->id, sizeof ne[i].kek_id);
            size_t al = aad_dek(&ne[i], ne[i].kek_id, aad);
            int s = seal32(new_kek->key, aad, al, dek, ne[i].wrapped, err, errlen);
            crypto_wipe(dek, sizeof dek);
            if (s != 0)
                goto out;
            count++;
        }
        crypto_wipe(dek, sizeof dek);
    }
    if (count && save_file(ks->path, ne, ks->n, err, errlen) != 0)
        goto out;
    crypto_wipe(ks->e, ks->n * sizeof *ks->e);
    free(ks->e);
    ks->e = ne;
    ne = NULL;
    if (rotated)
        *rotated = count;
    rc = 0;
out:
    if (ne) {
        crypto_wipe(ne, ks->n * sizeof *ne);
        free(ne);
    }
    return rc;
}
