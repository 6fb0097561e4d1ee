/* signer: local (keystore, key in locked memory) and remote (Web3Signer over
 * libcurl) transaction signing behind one interface. See signer.h. */
#include "signer.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "config.h"
#include "crypto.h"
#include "hex.h"
#include "log.h"
#include "secp.h"
#include "util.h"

struct signer {
    signer_backend backend;
    uint8_t address[20];
    /* local */
    uint8_t *key; /* 32 bytes at the start of a private mmap'ed page */
    size_t key_map_len;
    /* remote */
    char *url, *ca, *cert, *keyfile;
    int64_t timeout_ms, connect_timeout_ms;
    int insecure;
};

static atomic_long rpc_ids = 1;

/* ---- local ---- */

static int local_with_key(const uint8_t key[32], const uint8_t *expect_addr, signer **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    uint8_t addr[20];
    if (secp_key_check(key, NULL, 0) != 0 || secp_pubkey_address(key, addr, NULL, 0) != 0)
        return util_err(err, errlen, "not a valid secp256k1 private key");
    if (expect_addr && memcmp(addr, expect_addr, 20) != 0)
        return util_err(err, errlen, "unlocked key does not match the signer's address");
    long page = sysconf(_SC_PAGESIZE);
    size_t len = page > 0 ? (size_t)page : 4096;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return util_err(err, errlen, "cannot map memory for the key");
    /* Keep the key out of core dumps, swap, and forked children. */
    madvise(p, len, MADV_DONTDUMP);
    madvise(p, len, MADV_DONTFORK);
    if (mlock(p, len) != 0)
        log_msg(LOG_LEVEL_WARN, NULL, "signer: mlock refused; the key page may be swapped",
                (const char *)NULL);
    signer *s = util_calloc(1, sizeof *s);
    s->backend = SIGNER_LOCAL;
    s->key = p;
    s->key_map_len = len;
    memcpy(s->key, key, 32);
    memcpy(s->address, addr, 20);
    *out = s;
    return 0;
}

int signer_local_from_key(const uint8_t key[32], signer **out, char *err, size_t errlen)
{
    return local_with_key(key, NULL, out, err, errlen);
}

int signer_local_new(const keystore *ks, const keystore_kek *kek, const char *name, signer **out,
                     char *err, size_t errlen)
{
    *out = NULL;
    uint8_t key[32], addr[20];
    if (keystore_unlock(ks, kek, name, key, addr, err, errlen) != 0)
        return -1;
    int rc = local_with_key(key, addr, out, err, errlen);
    crypto_wipe(key, sizeof key);
    return rc;
}

/* ---- remote ---- */

static char *dup_or_null(const char *s)
{
    return s && *s ? util_strdup(s) : NULL;
}

int signer_remote_new(const signer_remote_opts *o, signer **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!o || !o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8)))
        return util_err(err, errlen, "remote signer url must be http:// or https://");
    static const uint8_t zero[20];
    if (memcmp(o->address, zero, 20) == 0)
        return util_err(err, errlen, "remote signer needs its account address");
    if ((o->tls_cert_file && *o->tls_cert_file) != (o->tls_key_file && *o->tls_key_file))
        return util_err(err, errlen, "remote signer TLS: client cert and key go together");
    if (o->timeout_ms < 0 || o->connect_timeout_ms < 0)
        return util_err(err, errlen, "remote signer timeouts must be positive");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return util_err(err, errlen, "curl_global_init failed");
    signer *s = util_calloc(1, sizeof *s);
    s->backend = SIGNER_REMOTE;
    memcpy(s->address, o->address, 20);
    s->url = util_strdup(o->url);
    s->ca = dup_or_null(o->tls_ca_file);
    s->cert = dup_or_null(o->tls_cert_file);
    s->keyfile = dup_or_null(o->tls_key_file);
    s->timeout_ms = o->timeout_ms ? o->timeout_ms : 10000;
    s->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 2000;
    s->insecure = o->tls_insecure;
    *out = s;
    return 0;
}

void signer_free(signer *s)
{
    if (!s)
        return;
    if (s->key) {
        crypto_wipe(s->key, 32);
        munlock(s->key, s->key_map_len);
        munmap(s->key, s->key_map_len);
    }
    free(s->url);
    free(s->ca);
    free(s->cert);
    free(s->keyfile);
    if (s->backend == SIGNER_REMOTE)
        curl_global_cleanup();
    free(s);
}

const uint8_t *signer_address(const signer *s)
{
    return s->address;
}

signer_backend signer_backend_of(const signer *s)
{
    return s->backend;
}

typedef struct body {
    char *p;
    size_t n, cap;
    int overflow;
} body;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body *b = ud;
    size_t n = size * nmemb;
    if (b->n + n > b->cap) {
        b->overflow = 1;
        return 0; /* aborts the transfer */
    }
    memcpy(b->p + b->n, ptr, n);
    b->n += n;
    return n;
}

/* Printable, bounded copy of text from the remote side for an error message. */
static void clean(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; in && in[i] && o + 1 < outlen && i < 200; i++)
        out[o++] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
    out[o] = '\0';
}

/* POSTs a JSON-RPC request and returns the "result" member (owned by *root). */
static int rpc_post(const signer *s, const char *method, cJSON *params, size_t max_body,
                    cJSON **root, const cJSON **result, char *err, size_t errlen)
{
    *root = NULL;
    *result = NULL;
    long id = atomic_fetch_add(&rpc_ids, 1);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "jsonrpc", "2.0");
    cJSON_AddNumberToObject(req, "id", (double)id);
    cJSON_AddStringToObject(req, "method", method);
    cJSON_AddItemToObject(req, "params", params);
    char *payload = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    body b = {util_malloc(max_body + 1), 0, max_body, 0};
    int rc = -1;
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = NULL;
    if (!c || !payload) {
        util_err(err, errlen, "remote signer: cannot set up the request");
        goto out;
    }
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Accept: application/json");
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (s->ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca);
    if (s->cert) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, s->cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, s->keyfile);
    }
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, s->insecure ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, s->insecure ? 0L : 2L);
    CURLcode cc = curl_easy_perform(c);
    if (b.overflow) {
        util_err(err, errlen, "remote signer: response larger than %zu bytes", max_body);
        goto out;
    }
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        util_err(err, errlen, "remote signer: timed out after %lld ms", (long long)s->timeout_ms);
        goto out;
    }
    if (cc != CURLE_OK) {
        util_err(err, errlen, "remote signer: %s", curl_easy_strerror(cc));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    b.p[b.n] = '\0';
    cJSON *r = cJSON_ParseWithLength(b.p, b.n);
    const cJSON *e = r ? cJSON_GetObjectItemCaseSensitive(r, "error") : NULL;
    if (cJSON_IsObject(e)) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        char m[210];
        clean(cJSON_IsString(msg) ? msg->valuestring : "", m, sizeof m);
        util_err(err, errlen, "remote signer: JSON-RPC error %lld (HTTP %ld): %s",
                 cJSON_IsNumber(code) ? (long long)code->valuedouble : 0LL, status, m);
        cJSON_Delete(r);
        goto out;
    }
    if (status != 200) {
        util_err(err, errlen, "remote signer: HTTP %ld", status);
        cJSON_Delete(r);
        goto out;
    }
    const cJSON *rid = r ? cJSON_GetObjectItemCaseSensitive(r, "id") : NULL;
    const cJSON *res = r ? cJSON_GetObjectItemCaseSensitive(r, "result") : NULL;
    if (!cJSON_IsObject(r) || !res) {
        util_err(err, errlen, "remote signer: response is not a JSON-RPC result");
        cJSON_Delete(r);
        goto out;
    }
    if (!cJSON_IsNumber(rid) || rid->valuedouble != (double)id) {
        util_err(err, errlen, "remote signer: response id does not match the request");
        cJSON_Delete(r);
        goto out;
    }
    *root = r;
    *result = res;
    rc = 0;
out:
    curl_slist_free_all(hdr);
    if (c)
        curl_easy_cleanup(c);
    free(payload);
    free(b.p);
    return rc;
}

static void add_qty(cJSON *o, const char *k, const money_u256 *v)
{
    char buf[MONEY_HEX_MAX];
    money_to_hex(v, buf, sizeof buf);
    cJSON_AddStringToObject(o, k, buf);
}

static void add_u64(cJSON *o, const char *k, uint64_t x)
{
    money_u256 v;
    money_from_u64(&v, x);
    add_qty(o, k, &v);
}

static cJSON *tx_json(const signer *s, const ethtx *tx)
{
    cJSON *o = cJSON_CreateObject();
    char a[HEX_ADDR_STRLEN];
    hex_addr_checksum(s->address, a);
    cJSON_AddStringToObject(o, "from", a);
    if (tx->has_to) {
        hex_addr_checksum(tx->to, a);
        cJSON_AddStringToObject(o, "to", a);
    }
    add_u64(o, "gas", tx->gas_limit);
    if (tx->type == ETHTX_EIP1559) {
        add_qty(o, "maxFeePerGas", &tx->max_fee);
        add_qty(o, "maxPriorityFeePerGas", &tx->max_priority_fee);
    } else {
        add_qty(o, "gasPrice", &tx->gas_price);
    }
    add_qty(o, "value", &tx->value);
    char *d = hex_encode_new(tx->data, tx->data_len, 1);
    cJSON_AddStringToObject(o, "data", d);
    free(d);
    add_u64(o, "nonce", tx->nonce);
    add_u64(o, "chainId", tx->chain_id);
    cJSON *params = cJSON_CreateArray();
    cJSON_AddItemToArray(params, o);
    return params;
}

/* The first field in which got differs from want, or NULL if none. */
static const char *tx_diff(const ethtx *want, const ethtx *got)
{
    if (got->type != want->type)
        return "type";
    if (got->chain_id != want->chain_id)
        return "chainId";
    if (got->nonce != want->nonce)
        return "nonce";
    if (got->gas_limit != want->gas_limit)
        return "gas";
    if (want->type == ETHTX_EIP1559) {
        if (money_cmp(&got->max_fee, &want->max_fee))
            return "maxFeePerGas";
        if (money_cmp(&got->max_priority_fee, &want->max_priority_fee))
            return "maxPriorityFeePerGas";
    } else if (money_cmp(&got->gas_price, &want->gas_price)) {
        return "gasPrice";
    }
    if (got->has_to != want->has_to || (want->has_to && memcmp(got->to, want->to, 20)))
        return "to";
    if (money_cmp(&got->value, &want->value))
        return "value";
    if (got->data_len != want->data_len ||
        (want->data_len && memcmp(got->data, want->data, want->data_len)))
        return "data";
    return NULL;
}

/* Decodes raw and checks it is exactly tx, signed by s. */
static int verify_raw(const signer *s, const ethtx *tx, const uint8_t *raw, size_t n,
                      uint8_t hash[32], const char *who, char *err, size_t errlen)
{
    ethtx got;
    uint8_t from[20], h[32];
    char e2[UTIL_ERRLEN];
    if (ethtx_decode(raw, n, &got, from, h, e2, sizeof e2) != 0)
        return util_err(err, errlen, "%s returned an invalid transaction: %s", who, e2);
    const char *field = tx_diff(tx, &got);
    if (field)
        return util_err(err, errlen, "%s returned a transaction with a different %s; refused", who,
                        field);
    if (memcmp(from, s->address, 20) != 0) {
        char a[HEX_ADDR_STRLEN];
        hex_addr_checksum(from, a);
        return util_err(err, errlen, "%s returned a transaction signed by %s; refused", who, a);
    }
    if (hash)
        memcpy(hash, h, 32);
    return 0;
}

static int remote_sign(signer *s, const ethtx *tx, uint8_t **raw, size_t *raw_len, uint8_t hash[32],
                       char *err, size_t errlen)
{
    /* A signed tx is ~110 bytes plus its data, twice that in hex, plus the envelope. */
    size_t max_body = 64 * 1024 + 4 * tx->data_len;
    cJSON *root;
    const cJSON *res;
    if (rpc_post(s, "eth_signTransaction", tx_json(s, tx), max_body, &root, &res, err, errlen))
        return -1;
    int rc = -1;
    size_t n = 0;
    uint8_t *bytes = NULL;
    if (!cJSON_IsString(res)) {
        util_err(err, errlen, "remote signer: result is not a hex string");
        goto out;
    }
    bytes = hex_decode_new(res->valuestring, &n, NULL, 0);
    if (!bytes || !hex_has_prefix(res->valuestring)) {
        util_err(err, errlen, "remote signer: result is not 0x-prefixed hex");
        goto out;
    }
    if (verify_raw(s, tx, bytes, n, hash, "remote signer", err, errlen) != 0)
        goto out;
    *raw = bytes;
    *raw_len = n;
    bytes = NULL;
    rc = 0;
out:
    free(bytes);
    cJSON_Delete(root);
    return rc;
}

int signer_sign_tx(signer *s, const ethtx *tx, uint8_t **raw, size_t *raw_len, uint8_t hash[32],
                   char *err, size_t errlen)
{
    *raw = NULL;
    *raw_len = 0;
    if (!s || !tx)
        return util_err(err, errlen, "signer_sign_tx: NULL argument");
    if (tx->type != ETHTX_LEGACY && tx->type != ETHTX_EIP1559)
        return util_err(err, errlen, "unsupported transaction type %d", (int)tx->type);
    if (tx->chain_id == 0)
        return util_err(err, errlen, "chain id must be set (no replayable transactions)");
    if (tx->data_len && !tx->data)
        return util_err(err, errlen, "data_len without data");
    if (s->backend == SIGNER_REMOTE)
        return remote_sign(s, tx, raw, raw_len, hash, err, errlen);
    uint8_t *r = NULL;
    size_t n = 0;
    if (ethtx_sign(tx, s->key, &r, &n, NULL, err, errlen) != 0)
        return -1;
    if (verify_raw(s, tx, r, n, hash, "local signer", err, errlen) != 0) {
        free(r);
        return -1;
    }
    *raw = r;
    *raw_len = n;
    return 0;
}

int signer_check(signer *s, char *err, size_t errlen)
{
    if (s->backend == SIGNER_LOCAL)
        return 0;
    cJSON *root;
    const cJSON *res, *it;
    if (rpc_post(s, "eth_accounts", cJSON_CreateArray(), 1 << 20, &root, &res, err, errlen) != 0)
        return -1;
    int found = 0;
    cJSON_ArrayForEach(it, res)
    {
        uint8_t a[20];
        if (cJSON_IsString(it) && hex_decode_fixed(it->valuestring, a, 20, NULL, 0) == 0 &&
            memcmp(a, s->address, 20) == 0)
            found = 1;
    }
    int array = cJSON_IsArray(res);
    cJSON_Delete(root);
    if (!array)
        return util_err(err, errlen, "remote signer: eth_accounts did not return an array");
    if (!found) {
        char a[HEX_ADDR_STRLEN];
        hex_addr_checksum(s->address, a);
        return util_err(err, errlen, "remote signer does not serve account %s", a);
    }
    return 0;
}

/* ---- configuration ---- */

int signer_from_env(const char *prefix, signer **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!prefix)
        prefix = "PAIMON_SIGNER";
    char n_backend[96], n_ks[96], n_name[96], n_url[96], n_addr[96], n_to[96], n_cto[96], n_ca[96],
        n_cert[96], n_key[96], n_ins[96];
    snprintf(n_backend, sizeof n_backend, "%s_BACKEND", prefix);
    snprintf(n_ks, sizeof n_ks, "%s_KEYSTORE", prefix);
    snprintf(n_name, sizeof n_name, "%s_NAME", prefix);
    snprintf(n_url, sizeof n_url, "%s_URL", prefix);
    snprintf(n_addr, sizeof n_addr, "%s_ADDRESS", prefix);
    snprintf(n_to, sizeof n_to, "%s_TIMEOUT", prefix);
    snprintf(n_cto, sizeof n_cto, "%s_CONNECT_TIMEOUT", prefix);
    snprintf(n_ca, sizeof n_ca, "%s_TLS_CA", prefix);
    snprintf(n_cert, sizeof n_cert, "%s_TLS_CERT", prefix);
    snprintf(n_key, sizeof n_key, "%s_TLS_KEY", prefix);
    snprintf(n_ins, sizeof n_ins, "%s_TLS_INSECURE", prefix);

    int backend = 0;
    const cfg_var bvars[] = {
        {n_backend, CFG_ENUM, "local", &backend, 0, 0, "local|remote", 0, "signer backend"},
    };
    if (cfg_load(bvars, CFG_COUNT(bvars), err, errlen) != 0)
        return -1;

    if (backend == SIGNER_LOCAL) {
        char *path = NULL, *name = NULL;
        const cfg_var vars[] = {
            {n_ks, CFG_STR, NULL, &path, 0, 0, NULL, 0, "keystore file"},
            {n_name, CFG_STR, NULL, &name, 1, KEYSTORE_NAME_MAX, NULL, 0, "signer name"},
        };
        char cerr[CFG_ERRLEN], kerr[UTIL_ERRLEN];
        keystore_kek kek;
        int c1 = cfg_load(vars, CFG_COUNT(vars), cerr, sizeof cerr);
        int c2 = keystore_kek_from_env(NULL, &kek, kerr, sizeof kerr);
        int rc = -1;
        if (c1 != 0 || c2 != 0) {
            util_err(err, errlen, "%s%s%s", c1 ? cerr : "", c1 && c2 ? "; " : "", c2 ? kerr : "");
        } else {
            keystore *ks = NULL;
            if (keystore_open(path, &ks, err, errlen) == 0) {
                rc = signer_local_new(ks, &kek, name, out, err, errlen);
                keystore_free(ks);
            }
        }
        keystore_kek_wipe(&kek);
        cfg_release(vars, CFG_COUNT(vars));
        return rc;
    }

    char *url = NULL, *addr = NULL, *ca = NULL, *cert = NULL, *key = NULL;
    int64_t to = 0, cto = 0;
    int insecure = 0;
    const cfg_var vars[] = {
        {n_url, CFG_URL, NULL, &url, 0, 0, "http|https", 0, "Web3Signer JSON-RPC URL"},
        {n_addr, CFG_STR, NULL, &addr, 0, 0, NULL, 0, "account address"},
        {n_to, CFG_DURATION_MS, "10s", &to, 100, 300000, NULL, 0, "request timeout"},
        {n_cto, CFG_DURATION_MS, "2s", &cto, 100, 60000, NULL, 0, "connect timeout"},
        {n_ca, CFG_STR, "", &ca, 0, 0, NULL, 0, "CA bundle (PEM)"},
        {n_cert, CFG_STR, "", &cert, 0, 0, NULL, 0, "client certificate (PEM)"},
        {n_key, CFG_STR, "", &key, 0, 0, NULL, 0, "client key (PEM)"},
        {n_ins, CFG_BOOL, "false", &insecure, 0, 0, NULL, 0, "skip TLS verification"},
    };
    if (cfg_load(vars, CFG_COUNT(vars), err, errlen) != 0)
        return -1;
    signer_remote_opts o;
    memset(&o, 0, sizeof o);
    int rc = -1;
    char e2[UTIL_ERRLEN];
    if (hex_addr_parse(addr, o.address, e2, sizeof e2) != 0) {
        util_err(err, errlen, "%s: %s", n_addr, e2);
    } else {
        o.url = url;
        o.timeout_ms = to;
        o.connect_timeout_ms = cto;
        o.tls_ca_file = ca;
        o.tls_cert_file = cert;
        o.tls_key_file = key;
        o.tls_insecure = insecure;
        rc = signer_remote_new(&o, out, err, errlen);
    }
    cfg_release(vars, CFG_COUNT(vars));
    return rc;
}

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

int signer_open(const char *dev_key_hex, int optional, signer **out, char *err, size_t errlen)
{
    *out = NULL;
    if (dev_key_hex && *dev_key_hex) {
        uint8_t key[32];
        int rc = hex_decode_fixed(dev_key_hex, key, 32, err, errlen) != 0 ||
                         signer_local_from_key(key, out, err, errlen) != 0
                     ? -1
                     : 1;
        memset(key, 0, sizeof key); /* the only copy outside the signer */
        return rc;
    }
    if (optional && !env_set("PAIMON_SIGNER_KEYSTORE") && !env_set("PAIMON_SIGNER_BACKEND"))
        return 0;
    return signer_from_env(NULL, out, err, errlen) != 0 ? -1 : 1;
}
