/* chain_bench: chain-access figures for issue 3, one JSON line per figure.
 *   (a) log decoding rate on one core: abi_decode_log over synthetic PaimonVault logs
 *       (topics and data built with the ABI encoder from the committed ABI);
 *   (b) signing rate: ethtx_sign of EIP-1559 transactions;
 *   (c) with a devchain.json argument: emits vault events on that anvil (deposits signed
 *       here and sent in JSON-RPC batches), then compares eth_getLogs fetch + decode with
 *       a bare fetch of the same range, interleaved in the same run; decode cost is
 *       reported as a percentage of the fetch (target < 20 %).
 * Usage: chain_bench [devchain.json] (env BENCH_LOGS, BENCH_SIGNS, BENCH_DEPOSITS) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "abi.h"
#include "ethtx.h"
#include "hex.h"
#include "money.h"
#include "rpc.h"
#include "util.h"

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    long n = v ? strtol(v, NULL, 10) : 0;
    return n > 0 ? n : def;
}

static const char *repo_path(const char *rel, char *buf, size_t len)
{
    const char *repo = getenv("PAIMON_REPO");
    snprintf(buf, len, "%s/%s", repo && *repo ? repo : ".", rel);
    return buf;
}

typedef struct slog {
    uint8_t topics[4][32];
    size_t ntopics;
    uint8_t *data;
    size_t len;
} slog;

/* One synthetic log of event ev with the given argument values (JSON object). */
static int build_log(const abi_event *ev, const char *args_json, slog *out)
{
    cJSON *args = cJSON_Parse(args_json);
    if (!args)
        return -1;
    memcpy(out->topics[0], ev->topic0, 32);
    out->ntopics = 1;
    cJSON *data_vals = cJSON_CreateArray();
    for (size_t i = 0; i < ev->inputs->n; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(args, ev->inputs->names[i]);
        if (!v) {
            cJSON_Delete(args);
            cJSON_Delete(data_vals);
            return -1;
        }
        if (ev->indexed[i]) {
            /* an indexed value type's topic is its one-word encoding */
            uint8_t *w = NULL;
            size_t wl = 0;
            cJSON *one = cJSON_CreateArray();
            cJSON_AddItemToArray(one, cJSON_Duplicate(v, 1));
            char tname[200];
            char *canon = abi_type_canonical(ev->inputs->comp[i]);
            snprintf(tname, sizeof tname, "(%s)", canon);
            free(canon);
            abi_type *t = abi_type_parse(tname, NULL, 0);
            int rc = t ? abi_encode(t, one, &w, &wl, NULL, 0) : -1;
            abi_type_free(t);
            cJSON_Delete(one);
            if (rc || wl != 32) {
                free(w);
                cJSON_Delete(args);
                cJSON_Delete(data_vals);
                return -1;
            }
            memcpy(out->topics[out->ntopics++], w, 32);
            free(w);
        } else {
            cJSON_AddItemToArray(data_vals, cJSON_Duplicate(v, 1));
        }
    }
    int rc = abi_encode(ev->data, data_vals, &out->data, &out->len, NULL, 0);
    cJSON_Delete(data_vals);
    cJSON_Delete(args);
    return rc;
}

static int bench_decode(const abi_contract *vault, long n)
{
    static const struct {
        const char *event, *args;
    } shapes[] = {
        {"RedemptionRequested",
         "{\"requestId\":\"17\",\"controller\":\"0x976ea74026e726554db657fa54763abd0c3a0aa9\","
         "\"owner\":\"0x976ea74026e726554db657fa54763abd0c3a0aa9\",\"channel\":\"1\","
         "\"shares\":\"20000000000000000000000\",\"grossAssets\":\"20100000000000000000000\","
         "\"fee\":\"100000000000000000000\",\"settleTime\":\"1790000000\"}"},
        {"Deposit", "{\"sender\":\"0x976ea74026e726554db657fa54763abd0c3a0aa9\",\"owner\":"
                    "\"0x14dc79964da2c08b23698b3d3cc7ca32193d9955\",\"assets\":"
                    "\"1000000000000000000000\",\"shares\":\"999000000000000000000\"}"},
        {"NavUpdated", "{\"totalAssets\":\"1750000000000000000000000\",\"totalSupply\":"
                       "\"1700000000000000000000000\",\"sharePrice\":\"1029411764705882352\","
                       "\"timestamp\":\"1790000000\"}"},
        {"Transfer", "{\"from\":\"0x0000000000000000000000000000000000000000\",\"to\":"
                     "\"0x976ea74026e726554db657fa54763abd0c3a0aa9\",\"value\":\"12345\"}"},
    };
    const size_t nshapes = sizeof shapes / sizeof shapes[0];
    slog logs[4];
    memset(logs, 0, sizeof logs);
    for (size_t i = 0; i < nshapes; i++) {
        const abi_event *ev = abi_contract_event(vault, shapes[i].event);
        if (!ev) {
            fprintf(stderr, "chain_bench: no event %s in the vault ABI\n", shapes[i].event);
            return -1;
        }
        /* argument names come from the ABI: fill those the table does not know */
        cJSON *a = cJSON_Parse(shapes[i].args);
        for (size_t k = 0; k < ev->inputs->n; k++)
            if (!cJSON_GetObjectItemCaseSensitive(a, ev->inputs->names[k])) {
                fprintf(stderr, "chain_bench: %s has argument %s not in the sample\n",
                        shapes[i].event, ev->inputs->names[k]);
                cJSON_Delete(a);
                return -1;
            }
        cJSON_Delete(a);
        if (build_log(ev, shapes[i].args, &logs[i])) {
            fprintf(stderr, "chain_bench: cannot encode %s\n", shapes[i].event);
            return -1;
        }
    }
    int64_t t0 = util_mono_us();
    long ok = 0;
    for (long i = 0; i < n; i++) {
        const slog *l = &logs[i % (long)nshapes];
        cJSON *d = abi_decode_log(vault, (const uint8_t(*)[32])l->topics, l->ntopics, l->data,
                                  l->len, NULL, 0);
        ok += d != NULL;
        cJSON_Delete(d);
    }
    double secs = (double)(util_mono_us() - t0) / 1e6;
    for (size_t i = 0; i < nshapes; i++)
        free(logs[i].data);
    if (ok != n) {
        fprintf(stderr, "chain_bench: %ld of %ld logs failed to decode\n", n - ok, n);
        return -1;
    }
    printf("{\"bench\":\"abi_decode_log\",\"logs\":%ld,\"seconds\":%.3f,\"logs_per_s\":%.0f}\n", n,
           secs, (double)n / secs);
    return 0;
}

static int bench_sign(long n)
{
    uint8_t key[32];
    hex_decode_fixed("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d", key, 32,
                     NULL, 0);
    uint8_t calldata[68];
    memset(calldata, 0xab, sizeof calldata);
    ethtx tx;
    ethtx_init(&tx);
    tx.type = ETHTX_EIP1559;
    tx.chain_id = 56;
    tx.gas_limit = 120000;
    money_from_u64(&tx.max_fee, 3000000000ULL);
    money_from_u64(&tx.max_priority_fee, 1000000000ULL);
    tx.has_to = 1;
    memset(tx.to, 0x55, 20);
    tx.data = calldata;
    tx.data_len = sizeof calldata;
    int64_t t0 = util_mono_us();
    for (long i = 0; i < n; i++) {
        tx.nonce = (uint64_t)i;
        uint8_t *raw = NULL;
        size_t rl = 0;
        char err[128];
        if (ethtx_sign(&tx, key, &raw, &rl, NULL, err, sizeof err)) {
            fprintf(stderr, "chain_bench: sign: %s\n", err);
            return -1;
        }
        free(raw);
    }
    double secs = (double)(util_mono_us() - t0) / 1e6;
    printf("{\"bench\":\"ethtx_sign\",\"txs\":%ld,\"seconds\":%.3f,\"tx_per_s\":%.0f}\n", n, secs,
           (double)n / secs);
    return 0;
}

/* ------------------------------------------------------------------ (c) against anvil */

static uint8_t *encode_call(const abi_contract *c, const char *fn, const char *args, size_t *len)
{
    const abi_fn *f = abi_contract_fn(c, fn);
    cJSON *a = cJSON_Parse(args);
    uint8_t *out = NULL;
    char err[200];
    if (!f || !a || abi_fn_encode_call(f, a, &out, len, err, sizeof err)) {
        fprintf(stderr, "chain_bench: encode %s failed\n", fn);
        out = NULL;
    }
    cJSON_Delete(a);
    return out;
}

/* Signs and sends n calls (to, data) from key in JSON-RPC batches of 100. */
static int send_many(rpc_client *rpc, uint64_t chain_id, const uint8_t key[32], const char *from,
                     const char *to, const uint8_t *data, size_t dlen, long n)
{
    uint64_t nonce;
    money_u256 prio, gp;
    char err[256];
    if (rpc_get_tx_count(rpc, from, RPC_BLOCK_PENDING, &nonce, err, sizeof err) ||
        rpc_max_priority_fee(rpc, &prio, err, sizeof err) ||
        rpc_gas_price(rpc, &gp, err, sizeof err)) {
        fprintf(stderr, "chain_bench: %s\n", err);
        return -1;
    }
    ethtx tx;
    ethtx_init(&tx);
    tx.type = ETHTX_EIP1559;
    tx.chain_id = chain_id;
    tx.gas_limit = 400000;
    money_u256 four;
    money_from_u64(&four, 4);
    money_mul(&tx.max_fee, &gp, &four);
    money_add(&tx.max_fee, &tx.max_fee, &prio);
    tx.max_priority_fee = prio;
    tx.has_to = 1;
    hex_addr_parse(to, tx.to, NULL, 0);
    tx.data = data;
    tx.data_len = dlen;
    enum { B = 100 };
    rpc_batch_item items[B];
    for (long done = 0; done < n;) {
        size_t k = 0;
        for (; k < B && done + (long)k < n; k++) {
            tx.nonce = nonce++;
            char *raw = NULL, hash[67];
            if (ethtx_sign_hex(&tx, key, &raw, hash, err, sizeof err)) {
                fprintf(stderr, "chain_bench: sign: %s\n", err);
                return -1;
            }
            memset(&items[k], 0, sizeof items[k]);
            items[k].method = "eth_sendRawTransaction";
            items[k].params = cJSON_CreateArray();
            cJSON_AddItemToArray(items[k].params, cJSON_CreateString(raw));
            free(raw);
        }
        int rc = rpc_batch(rpc, items, k, 0, err, sizeof err);
        for (size_t i = 0; rc == 0 && i < k; i++)
            if (!items[i].result) {
                fprintf(stderr, "chain_bench: send: %s\n", items[i].error.message);
                rc = -1;
            }
        rpc_batch_items_clear(items, k);
        if (rc) {
            fprintf(stderr, "chain_bench: batch: %s\n", err);
            return -1;
        }
        done += (long)k;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int bench_fetch(const char *devchain_json, const abi_contract *vault)
{
    FILE *f = fopen(devchain_json, "r");
    if (!f) {
        fprintf(stderr, "chain_bench: cannot open %s\n", devchain_json);
        return -1;
    }
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *dc = cJSON_Parse(buf);
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(dc, "rpcUrl"));
    cJSON *ct = cJSON_GetObjectItem(dc, "contracts");
    const char *vault_addr = cJSON_GetStringValue(cJSON_GetObjectItem(ct, "vault"));
    const char *usdt = cJSON_GetStringValue(cJSON_GetObjectItem(ct, "usdt"));
    cJSON *inv = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(dc, "accounts"), "investors"), 0);
    const char *from = cJSON_GetStringValue(cJSON_GetObjectItem(inv, "address"));
    uint8_t key[32];
    if (!url || !vault_addr || !usdt || !from ||
        hex_decode_fixed(cJSON_GetStringValue(cJSON_GetObjectItem(inv, "privateKey")), key, 32,
                         NULL, 0)) {
        fprintf(stderr, "chain_bench: devchain.json lacks rpcUrl / contracts / investors\n");
        cJSON_Delete(dc);
        return -1;
    }
    char path[1024], err[256];
    abi_contract *usdt_abi = abi_contract_load(
        repo_path("schemas/abi/MockUSDT.json", path, sizeof path), err, sizeof err);
    const char *urls[1] = {url};
    rpc_config cfg = {.urls = urls, .nurls = 1, .name = "bench", .timeout_ms = 60000};
    rpc_client *rpc = rpc_client_new(&cfg, err, sizeof err);
    uint64_t chain_id = 0, first = 0, last = 0;
    int rc = -1;
    long deposits = env_long("BENCH_DEPOSITS", 1000);
    char args[200];
    size_t al = 0, dl = 0;
    uint8_t *approve = NULL, *deposit = NULL;
    if (!usdt_abi || !rpc || rpc_chain_id(rpc, &chain_id, err, sizeof err)) {
        fprintf(stderr, "chain_bench: %s\n", err);
        goto out;
    }
    snprintf(args, sizeof args, "[\"%s\", \"%s\"]", vault_addr,
             "115792089237316195423570985008687907853269984665640564039457584007913129639935");
    approve = encode_call(usdt_abi, "approve", args, &al);
    snprintf(args, sizeof args, "[\"1000000000000000000\", \"%s\"]", from);
    deposit = encode_call(vault, "deposit", args, &dl);
    if (!approve || !deposit || rpc_block_number(rpc, &first, err, sizeof err))
        goto out;
    first++;
    /* each deposit emits the vault's Transfer (mint) and Deposit */
    if (send_many(rpc, chain_id, key, from, usdt, approve, al, 1) ||
        send_many(rpc, chain_id, key, from, vault_addr, deposit, dl, deposits))
        goto out;
    /* wait until every deposit is mined, so the range holds all their events */
    uint64_t want = 0, mined = 0;
    if (rpc_get_tx_count(rpc, from, RPC_BLOCK_PENDING, &want, err, sizeof err))
        goto out;
    for (int i = 0; i < 600 && mined < want; i++) {
        if (rpc_get_tx_count(rpc, from, RPC_BLOCK_LATEST, &mined, err, sizeof err))
            goto out;
        if (mined < want)
            util_sleep_ms(50);
    }
    if (mined < want || rpc_block_number(rpc, &last, err, sizeof err)) {
        fprintf(stderr, "chain_bench: deposits not mined (%s)\n", err);
        goto out;
    }

    cJSON *filter = cJSON_CreateObject();
    char tag[RPC_BLOCK_TAG_MAX];
    cJSON_AddStringToObject(filter, "address", vault_addr);
    cJSON_AddStringToObject(filter, "fromBlock", rpc_block_tag((int64_t)first, tag));
    cJSON_AddStringToObject(filter, "toBlock", rpc_block_tag((int64_t)last, tag));
    enum { R = 11 }; /* odd: the median is one run */
    int64_t bare[R], full[R], dec[R];
    long nlogs = 0;
    for (int r = 0; r < R && rc == -1; r++) {
        rpc_error e;
        rpc_error_init(&e);
        int64_t t0 = util_mono_us();
        cJSON *logs = rpc_get_logs(rpc, filter, &e);
        bare[r] = util_mono_us() - t0;
        cJSON_Delete(logs);
        t0 = util_mono_us();
        logs = rpc_get_logs(rpc, filter, &e);
        int64_t t1 = util_mono_us();
        if (!logs) {
            fprintf(stderr, "chain_bench: eth_getLogs: %s\n", e.message);
            rpc_error_clear(&e);
            rc = -2;
            break;
        }
        nlogs = cJSON_GetArraySize(logs);
        long bad = 0;
        const cJSON *l;
        cJSON_ArrayForEach(l, logs)
        {
            cJSON *d = abi_decode_log_json(vault, l, NULL, 0);
            bad += d == NULL;
            cJSON_Delete(d);
        }
        int64_t t2 = util_mono_us();
        cJSON_Delete(logs);
        full[r] = t2 - t0;
        dec[r] = t2 - t1;
        if (bad) {
            fprintf(stderr, "chain_bench: %ld logs did not decode\n", bad);
            rc = -2;
        }
    }
    cJSON_Delete(filter);
    if (rc == -2)
        goto out;
    qsort(bare, R, sizeof bare[0], cmp_i64);
    qsort(full, R, sizeof full[0], cmp_i64);
    qsort(dec, R, sizeof dec[0], cmp_i64);
    double b = (double)bare[R / 2] / 1000, fu = (double)full[R / 2] / 1000,
           d = (double)dec[R / 2] / 1000;
    printf("{\"bench\":\"eth_getLogs_decode\",\"blocks\":%llu,\"logs\":%ld,\"runs\":%d,"
           "\"bare_fetch_ms\":%.2f,\"fetch_decode_ms\":%.2f,\"decode_ms\":%.2f,"
           "\"decode_pct_of_fetch\":%.1f,\"overhead_pct\":%.1f,\"target_pct\":20,\"met\":%s}\n",
           (unsigned long long)(last - first + 1), nlogs, R, b, fu, d, 100.0 * d / b,
           100.0 * (fu - b) / b, 100.0 * d / b < 20.0 ? "true" : "false");
    rc = 0;
out:
    free(approve);
    free(deposit);
    rpc_client_free(rpc);
    abi_contract_free(usdt_abi);
    cJSON_Delete(dc);
    return rc;
}

int main(int argc, char **argv)
{
    char path[1024], err[256];
    abi_contract *vault = abi_contract_load(
        repo_path("schemas/abi/PaimonVault.json", path, sizeof path), err, sizeof err);
    if (!vault) {
        fprintf(stderr, "chain_bench: %s (set PAIMON_REPO)\n", err);
        return 1;
    }
    /* As the listener decodes: lowercase addresses (EIP-55 is for display). */
    vault->log_flags = ABI_DECODE_LOWER_ADDR;
    int rc = bench_decode(vault, env_long("BENCH_LOGS", 200000)) ||
             bench_sign(env_long("BENCH_SIGNS", 20000));
    if (!rc && argc > 1)
        rc = bench_fetch(argv[1], vault) != 0;
    else if (!rc)
        fprintf(stderr, "chain_bench: no devchain.json given, eth_getLogs figure skipped\n");
    abi_contract_free(vault);
    return rc;
}
