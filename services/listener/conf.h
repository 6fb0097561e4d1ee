/* conf: the listener's own configuration values that need more than config.h's types:
 * contract items "0x<address>=<abi>" (abi: a file path, or a name looked up as
 * <abi_dir>/<name>.json, e.g. "PaimonVault") and, for `make run`, the contracts of the
 * devchain's devchain.json.
 *
 * Memory: caller buffers; conf_devchain_contracts returns a malloc'd string. */
#ifndef LISTENER_CONF_H
#define LISTENER_CONF_H

#include <stddef.h>
#include <stdint.h>

/* 0, or -1 with a reason. addr gets the lowercase address. */
int conf_contract_item(const char *item, const char *abi_dir, char addr[43], char *path,
                       size_t pathlen, char *err, size_t errlen);

/* "0x..=PaimonVault,0x..=MockUSDT" from devchain.json (vault and usdt), and its chain
 * id in *chain_id. NULL with a reason. */
char *conf_devchain_contracts(const char *json_path, uint64_t *chain_id, char *err, size_t errlen);

#endif
