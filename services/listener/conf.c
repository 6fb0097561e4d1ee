/* conf: contract items and devchain.json (see conf.h). */
#include "conf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hex.h"
#include "util.h"

int conf_contract_item(const char *item, const char *abi_dir, char addr[43], char *path,
                       size_t pathlen, char *err, size_t errlen)
{
    const char *eq = item ? strchr(item, '=') : NULL;
    if (!eq || eq - item != 42)
        return util_err(err, errlen, "contract \"%.60s\": want 0x<40 hex>=<abi name or path>",
                        item ? item : "");
    char a[43];
    memcpy(a, item, 42);
    a[42] = '\0';
    uint8_t raw[HEX_ADDR_LEN];
    char why[128];
    if (hex_addr_parse(a, raw, why, sizeof why) != 0)
        return util_err(err, errlen, "contract address %s: %s", a, why);
    hex_encode(raw, HEX_ADDR_LEN, 1, addr, 43);
    const char *abi = eq + 1;
    if (!*abi || strstr(abi, ".."))
        return util_err(err, errlen, "contract %s: bad ABI \"%.60s\"", addr, abi);
    int is_path = strchr(abi, '/') != NULL || strstr(abi, ".json") != NULL;
    if (!is_path)
        for (const char *p = abi; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                return util_err(err, errlen, "contract %s: bad ABI name \"%.60s\"", addr, abi);
    int n = is_path ? snprintf(path, pathlen, "%s", abi)
                    : snprintf(path, pathlen, "%s/%s.json", abi_dir, abi);
    if (n < 0 || (size_t)n >= pathlen)
        return util_err(err, errlen, "contract %s: ABI path too long", addr);
    return 0;
}

char *conf_devchain_contracts(const char *json_path, uint64_t *chain_id, char *err, size_t errlen)
{
    FILE *f = fopen(json_path, "rb");
    if (!f) {
        util_err(err, errlen, "cannot open %s", json_path);
        return NULL;
    }
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *d = cJSON_Parse(buf);
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(d, "contracts");
    const cJSON *vault = cJSON_GetObjectItemCaseSensitive(cs, "vault");
    const cJSON *usdt = cJSON_GetObjectItemCaseSensitive(cs, "usdt");
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(d, "chainId");
    if (!cJSON_IsString(vault) || !cJSON_IsString(usdt) || !cJSON_IsNumber(cid) ||
        cid->valuedouble < 1) {
        cJSON_Delete(d);
        util_err(err, errlen, "%s: no chainId / contracts.vault / contracts.usdt", json_path);
        return NULL;
    }
    char out[256];
    snprintf(out, sizeof out, "%.42s=PaimonVault,%.42s=MockUSDT", vault->valuestring,
             usdt->valuestring);
    *chain_id = (uint64_t)cid->valuedouble;
    cJSON_Delete(d);
    return util_strdup(out);
}
