/* devchain_fixture: the anvil devchain for integration tests (see devchain_fixture.h). */
#include "devchain_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eip712.h"
#include "harness.h"
#include "hex.h"
#include "util.h"

static cJSON *account(const dc_chain *c, const char *role, int index)
{
    cJSON *r = cJSON_GetObjectItem(cJSON_GetObjectItem(c->json, "accounts"), role);
    return index < 0 ? r : cJSON_GetArrayItem(r, index);
}

cJSON *dc_json_load(const char *json_path)
{
    const char *path = json_path ? json_path : getenv("PAIMON_DEVCHAIN_JSON");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return NULL;
    /* a 50-asset devchain's book is a few tens of KiB */
    size_t cap = 1u << 20;
    char *buf = malloc(cap);
    size_t n = buf ? fread(buf, 1, cap - 1, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    return j;
}

int dc_open(dc_chain *c, const char *json_path, const char *name)
{
    memset(c, 0, sizeof *c);
    c->json = dc_json_load(json_path);
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(c->json, "rpcUrl"));
    if (!url || strlen(url) >= sizeof c->rpc_url) {
        dc_close(c);
        return -1;
    }
    util_strlcpy(c->rpc_url, url, sizeof c->rpc_url);
    c->chain_id = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(c->json, "chainId"));
    const char *urls[1] = {c->rpc_url};
    rpc_config rc = {.urls = urls, .nurls = 1, .name = name ? name : "devchain_fixture"};
    c->rpc = rpc_client_new(&rc, NULL, 0);
    if (!c->rpc) {
        dc_close(c);
        return -1;
    }
    return 0;
}

int dc_start(dc_chain *c, const char *run_dir, int port, const char *name)
{
    int rc;
    char *out = th_sh_rc(&rc, "PAIMON_RUN_DIR='%s' PAIMON_ANVIL_PORT=%d '%s' start", run_dir, port,
                         th_repo_path("deploy/devchain/devchain.sh"));
    if (rc != 0)
        fprintf(stderr, "devchain_fixture: devchain.sh start failed: %s\n", out);
    free(out);
    if (rc != 0)
        return -1;
    char path[600];
    snprintf(path, sizeof path, "%s/devchain.json", run_dir);
    int opened = dc_open(c, path, name);
    util_strlcpy(c->run_dir, run_dir, sizeof c->run_dir); /* stop it even if open failed */
    if (opened != 0)
        dc_close(c);
    return opened;
}

void dc_close(dc_chain *c)
{
    if (c->run_dir[0]) {
        int rc;
        free(th_sh_rc(&rc, "PAIMON_RUN_DIR='%s' '%s' stop", c->run_dir,
                      th_repo_path("deploy/devchain/devchain.sh")));
    }
    rpc_client_free(c->rpc);
    cJSON_Delete(c->json);
    memset(c, 0, sizeof *c);
}

const char *dc_contract(const dc_chain *c, const char *name)
{
    return cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(c->json, "contracts"), name));
}

const char *dc_address(const dc_chain *c, const char *role, int index)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(account(c, role, index), "address"));
}

const char *dc_private_key(const dc_chain *c, const char *role, int index)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(account(c, role, index), "privateKey"));
}

int dc_account(const dc_chain *c, const char *role, int index, char addr[DC_ADDR_LEN],
               uint8_t key[32])
{
    const char *a = dc_address(c, role, index), *k = dc_private_key(c, role, index);
    if (!a || !k || strlen(a) != DC_ADDR_LEN - 1)
        return -1;
    util_strlcpy(addr, a, DC_ADDR_LEN);
    return key ? hex_decode_fixed(k, key, 32, NULL, 0) : 0;
}

cJSON *dc_rpc(dc_chain *c, const char *method, cJSON *params)
{
    char err[256];
    cJSON *r = rpc_call(c->rpc, method, params ? params : cJSON_CreateArray(), err, sizeof err);
    if (!r)
        fail_msg("%s: %s", method, err);
    return r;
}

void dc_rpc_void(dc_chain *c, const char *method, cJSON *params)
{
    cJSON_Delete(dc_rpc(c, method, params));
}

void dc_mine(dc_chain *c, int blocks)
{
    for (int i = 0; i < blocks; i++)
        dc_rpc_void(c, "evm_mine", NULL);
}

void dc_increase_time(dc_chain *c, int64_t seconds)
{
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateNumber((double)seconds));
    dc_rpc_void(c, "evm_increaseTime", p);
    dc_mine(c, 1);
}

void dc_set_automine(dc_chain *c, int on)
{
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateBool(on));
    dc_rpc_void(c, "evm_setAutomine", p);
}

void dc_snapshot(dc_chain *c, char snap[DC_SNAP_MAX])
{
    cJSON *r = dc_rpc(c, "evm_snapshot", NULL);
    if (!cJSON_GetStringValue(r))
        fail_msg("evm_snapshot: no id");
    util_strlcpy(snap, cJSON_GetStringValue(r), DC_SNAP_MAX);
    cJSON_Delete(r);
}

int dc_revert(dc_chain *c, const char *snap)
{
    char err[256];
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateBool(1));
    cJSON_Delete(rpc_call(c->rpc, "evm_setAutomine", p, err, sizeof err));
    p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(snap));
    cJSON *r = rpc_call(c->rpc, "evm_revert", p, err, sizeof err);
    int ok = cJSON_IsTrue(r);
    cJSON_Delete(r);
    return ok ? 0 : -1;
}

uint64_t dc_nonce(dc_chain *c, const char *addr)
{
    uint64_t n;
    char err[256];
    if (rpc_get_tx_count(c->rpc, addr, RPC_BLOCK_LATEST, &n, err, sizeof err))
        fail_msg("nonce of %s: %s", addr, err);
    return n;
}

money_u256 dc_balance(dc_chain *c, const char *addr)
{
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(addr));
    cJSON_AddItemToArray(p, cJSON_CreateString("latest"));
    cJSON *r = dc_rpc(c, "eth_getBalance", p);
    money_u256 v;
    if (money_from_hex(&v, cJSON_GetStringValue(r), NULL, 0) != 0)
        fail_msg("eth_getBalance %s: not a quantity", addr);
    cJSON_Delete(r);
    return v;
}

uint64_t dc_latest_time(dc_chain *c)
{
    rpc_header h;
    char err[256];
    if (rpc_get_block_header(c->rpc, RPC_BLOCK_LATEST, &h, err, sizeof err) != 0)
        fail_msg("latest block: %s", err);
    return h.timestamp;
}

void dc_cast_send(const dc_chain *c, const char *key, const char *to, const char *sig,
                  const char *args)
{
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "send --rpc-url %s --private-key %s %s '%s' %s", c->rpc_url, key, to,
             sig, args);
    if (th_cast(cmd, out, sizeof out) != 0)
        fail_msg("cast %s failed: %s", sig, out);
}

void dc_cast_call(const dc_chain *c, const char *to, const char *sig, const char *args, char *out,
                  size_t outlen)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "call --rpc-url %s %s '%s' %s", c->rpc_url, to, sig, args);
    if (th_cast(cmd, out, outlen) != 0)
        fail_msg("cast call %s: %s", sig, out);
}

money_u256 dc_cast_u256(const dc_chain *c, const char *to, const char *sig, const char *args)
{
    char out[4096];
    dc_cast_call(c, to, sig, args, out, sizeof out);
    char *sp = strchr(out, ' ');
    if (sp)
        *sp = '\0';
    money_u256 v;
    if (money_from_dec(&v, out, NULL, 0) != 0)
        fail_msg("cast call %s: not a number: %s", sig, out);
    return v;
}

unsigned long long dc_cast_uint(const dc_chain *c, const char *to, const char *sig,
                                const char *args)
{
    char out[512];
    dc_cast_call(c, to, sig, args, out, sizeof out);
    return strtoull(out, NULL, 10);
}

unsigned long long dc_cast_tuple_uint(const dc_chain *c, const char *to, const char *sig,
                                      const char *args, int field)
{
    char out[2048];
    dc_cast_call(c, to, sig, args, out, sizeof out);
    const char *p = out;
    for (int commas = 0; *p && commas < field; p++)
        if (*p == ',')
            commas++;
    p += strspn(p, "( ");
    return strtoull(p, NULL, 10);
}

int dc_redemption_status(const dc_chain *c, const char *request_id)
{
    const char *vault = dc_contract(c, "vault");
    if (!vault)
        fail_msg("devchain.json has no vault");
    return (int)dc_cast_tuple_uint(c, vault,
                                   "getRedemption(uint256)((uint256,address,address,uint8,uint8,"
                                   "uint256,uint256,uint256,uint64,uint64,uint64,address))",
                                   request_id, 4);
}

int dc_wait_redemption_status(dc_chain *c, const char *request_id, int want, int64_t timeout_ms)
{
    int64_t end = util_mono_ms() + timeout_ms;
    int st;
    while ((st = dc_redemption_status(c, request_id)) != want && util_mono_ms() < end) {
        dc_mine(c, 1);
        util_sleep_ms(200);
    }
    return st;
}

/* "RedemptionRequested" -> "chain.redemption_requested". */
static void event_type(const char *event, char *out, size_t outlen)
{
    size_t k = util_strlcpy(out, "chain.", outlen);
    for (const char *e = event; *e && k + 2 < outlen; e++) {
        if (*e >= 'A' && *e <= 'Z') {
            if (e != event)
                out[k++] = '_';
            out[k++] = (char)(*e + 32);
        } else {
            out[k++] = *e;
        }
    }
    out[k] = '\0';
}

envelope *dc_log_envelope(dc_chain *c, const abi_contract *abi, const char *address,
                          const char *event, const char *arg, const char *value)
{
    const abi_event *ev = abi_contract_event(abi, event);
    if (!ev)
        fail_msg("no event %s in the ABI", event);
    char topic[HEX_B32_STRLEN];
    hex_encode(ev->topic0, 32, 1, topic, sizeof topic);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "address", address);
    cJSON_AddStringToObject(f, "fromBlock", "0x0");
    cJSON_AddStringToObject(f, "toBlock", "latest");
    cJSON *topics = cJSON_AddArrayToObject(f, "topics");
    cJSON_AddItemToArray(topics, cJSON_CreateString(topic));
    rpc_error e;
    rpc_error_init(&e);
    cJSON *logs = rpc_get_logs(c->rpc, f, &e);
    cJSON_Delete(f);
    if (!logs)
        fail_msg("eth_getLogs %s: %s", event, e.message);
    cJSON *found = NULL, *dec = NULL;
    cJSON *log;
    cJSON_ArrayForEach(log, logs)
    {
        cJSON *d = abi_decode_log_json(abi, log, NULL, 0);
        if (!d)
            fail_msg("cannot decode a %s log", event);
        const char *v =
            cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "args"), arg));
        if (v && strcmp(v, value) == 0) {
            cJSON_Delete(dec);
            dec = d;
            found = log;
        } else {
            cJSON_Delete(d);
        }
    }
    if (!found)
        fail_msg("no %s log with %s = %s", event, arg, value);
    uint64_t bn = 0, li = 0, ti = 0;
    rpc_parse_quantity(cJSON_GetObjectItem(found, "blockNumber"), &bn);
    rpc_parse_quantity(cJSON_GetObjectItem(found, "logIndex"), &li);
    rpc_parse_quantity(cJSON_GetObjectItem(found, "transactionIndex"), &ti);
    rpc_header h;
    if (rpc_get_block_header(c->rpc, (int64_t)bn, &h, NULL, 0) != 0)
        fail_msg("block %llu of a %s log", (unsigned long long)bn, event);
    char ts[32], type[80], id[200];
    envelope_format_ts((int64_t)h.timestamp * 1000, ts);
    char txh[HEX_B32_STRLEN];
    util_strlcpy(txh, cJSON_GetStringValue(cJSON_GetObjectItem(found, "transactionHash")),
                 sizeof txh);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "chain_id", (double)c->chain_id);
    cJSON_AddStringToObject(p, "address", address);
    cJSON_AddStringToObject(p, "event", event);
    cJSON_AddStringToObject(p, "signature",
                            cJSON_GetStringValue(cJSON_GetObjectItem(dec, "signature")));
    cJSON_AddItemToObject(p, "args", cJSON_DetachItemFromObject(dec, "args"));
    cJSON_AddNumberToObject(p, "block_number", (double)bn);
    cJSON_AddStringToObject(p, "block_hash",
                            cJSON_GetStringValue(cJSON_GetObjectItem(found, "blockHash")));
    cJSON_AddStringToObject(p, "block_time", ts);
    cJSON_AddStringToObject(p, "tx_hash", txh);
    cJSON_AddNumberToObject(p, "tx_index", (double)ti);
    cJSON_AddNumberToObject(p, "log_index", (double)li);
    cJSON_AddBoolToObject(p, "removed", 0);
    cJSON_Delete(dec);
    cJSON_Delete(logs);
    event_type(event, type, sizeof type);
    snprintf(id, sizeof id, "%llu:%s:%llu", (unsigned long long)c->chain_id, txh,
             (unsigned long long)li);
    return envelope_new(id, type, "listener", NULL, p);
}

void dc_sign_approval(const dc_chain *c, const uint8_t key[32], const char *vault,
                      const char *ticket, const char *decision, const char *nonce,
                      uint64_t deadline, char sig_hex[DC_SIG_HEX])
{
    money_u256 n, d;
    uint8_t v[20], sig[65];
    char err[256];
    if (money_from_dec(&n, nonce, NULL, 0) != 0 || hex_addr_parse(vault, v, NULL, 0) != 0)
        fail_msg("dc_sign_approval: bad nonce or vault");
    money_from_u64(&d, deadline);
    cJSON *typed = eip712_approval_new(c->chain_id, v, ticket, decision, &n, &d, err, sizeof err);
    if (!typed)
        fail_msg("eip712_approval_new: %s", err);
    int rc = eip712_sign(typed, key, sig, err, sizeof err);
    cJSON_Delete(typed);
    if (rc != 0)
        fail_msg("eip712_sign: %s", err);
    hex_encode(sig, 65, 1, sig_hex, DC_SIG_HEX);
}
