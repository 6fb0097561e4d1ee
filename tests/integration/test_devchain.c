/* test_devchain: checks the anvil devchain fixture (deploy/devchain/) with `cast` as an
 * independent client: the committed ABIs match the sources and use the standard ERC-4626 /
 * ERC-7540 event signatures, the configured accounts hold their roles, NAV adds up, the
 * redemption lifecycle emits the standard and the fund's events, slippage and stale-oracle
 * guards revert with decodable custom errors.
 *
 * devchain.json comes from $PAIMON_DEVCHAIN_JSON or $PAIMON_TEST_RUN_DIR/devchain.json; when
 * neither exists the test starts the devchain itself on port PAIMON_TEST_PORT_BASE+3 and
 * stops it at the end. Every test runs between evm_snapshot and evm_revert, so the chain
 * other tests see keeps its seeded state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ctype.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

typedef unsigned __int128 u128;

#define E18 ((u128)1000000000000000000ULL)

static struct {
    cJSON *cfg;
    char cast[1024];
    char rpc[128];
    char vault[43], usdt[43], market[43];
    char run_dir[1024];
    int started_here;
    char snap[80];
} g;

/* ------------------------------------------------------------------ shell helpers */

/* Runs a shell command, returns its stdout+stderr (trailing space trimmed; caller frees)
 * and the exit status in *rc. */
static char *sh(int *rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *sh(int *rc, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd - 8);
    strcat(cmd, " 2>&1");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 4096, len = 0;
    char *buf = util_malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 1024) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            assert_non_null(nb);
            buf = nb;
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    while (len > 0 && isspace((unsigned char)buf[len - 1]))
        buf[--len] = '\0';
    return buf;
}

/* Output of a cast command that must succeed. */
static char *cast_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *cast_ok(const char *fmt, ...)
{
    char args[6144];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof args);
    int rc;
    char *out = sh(&rc, "'%s' %s", g.cast, args);
    if (rc != 0)
        fail_msg("cast %s failed (rc=%d): %s", args, rc, out);
    return out;
}

/* Runs a cast command that must fail; returns its output. */
static char *cast_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *cast_fail(const char *fmt, ...)
{
    char args[6144];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof args);
    int rc;
    char *out = sh(&rc, "'%s' %s", g.cast, args);
    if (rc == 0)
        fail_msg("cast %s succeeded but should have failed: %s", args, out);
    return out;
}

/* ------------------------------------------------------------------ value helpers */

static int is_hex_addr(const char *s)
{
    if (!s || strncmp(s, "0x", 2) != 0 || strlen(s) != 42)
        return 0;
    for (int i = 2; i < 42; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* The leading decimal number of cast's uint output ("123 [1.23e2]"); fails on overflow. */
static u128 parse_u128(const char *s)
{
    u128 v = 0;
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        fail_msg("not a number: '%s'", s);
    for (; isdigit((unsigned char)*p); p++) {
        u128 next = v * 10 + (u128)(*p - '0');
        if ((next - (u128)(*p - '0')) / 10 != v)
            fail_msg("number too large for 128 bits: '%s'", s);
        v = next;
    }
    return v;
}

/* A 32-byte ABI word (64 hex chars, no 0x) as u128; fails when it does not fit. */
static u128 word_u128(const char *hex64)
{
    u128 v = 0;
    for (int i = 0; i < 64; i++) {
        char c = hex64[i];
        int d = isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
        if (!isxdigit((unsigned char)c))
            fail_msg("bad hex word");
        if (i < 32 && d != 0)
            fail_msg("ABI word does not fit 128 bits");
        v = (v << 4) | (u128)d;
    }
    return v;
}

static void u128_str(u128 v, char *buf, size_t len)
{
    char tmp[64];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v && i < 63);
    size_t j = 0;
    while (i > 0 && j + 1 < len)
        buf[j++] = tmp[--i];
    buf[j] = '\0';
}

#define assert_u128_equal(a, b)                                                                    \
    do {                                                                                           \
        u128 a_ = (a), b_ = (b);                                                                   \
        if (a_ != b_) {                                                                            \
            char sa_[64], sb_[64];                                                                 \
            u128_str(a_, sa_, sizeof sa_);                                                         \
            u128_str(b_, sb_, sizeof sb_);                                                         \
            fail_msg("%s = %s, expected %s = %s", #a, sa_, #b, sb_);                               \
        }                                                                                          \
    } while (0)

static u128 call_u128(const char *to, const char *sig, const char *args)
{
    char *out = cast_ok("call -r %s %s '%s' %s", g.rpc, to, sig, args ? args : "");
    u128 v = parse_u128(out);
    free(out);
    return v;
}

static int call_bool(const char *to, const char *sig, const char *args)
{
    char *out = cast_ok("call -r %s %s '%s' %s", g.rpc, to, sig, args ? args : "");
    int v = strcmp(out, "true") == 0;
    if (!v && strcmp(out, "false") != 0)
        fail_msg("not a bool: %s", out);
    free(out);
    return v;
}

static char *u128_arg(u128 v)
{
    static char buf[4][64];
    static int i;
    i = (i + 1) % 4;
    u128_str(v, buf[i], sizeof buf[i]);
    return buf[i];
}

static const char *account(const char *role, const char *field)
{
    cJSON *a =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g.cfg, "accounts"), role);
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, field));
    assert_non_null(v);
    return v;
}

static const char *account_at(const char *list, int i, const char *field)
{
    cJSON *arr =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g.cfg, "accounts"), list);
    const char *v =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, i), field));
    assert_non_null(v);
    return v;
}

static cJSON *assets(void)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(g.cfg, "contracts"), "assets");
    assert_true(cJSON_IsArray(a));
    return a;
}

static const char *asset_field(int i, const char *field)
{
    const char *v = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(assets(), i), field));
    assert_non_null(v);
    return v;
}

/* keccak of an event signature / 4-byte selector, computed by cast (not by the fixture). */
static char *topic_of(const char *sig)
{
    return cast_ok("sig-event '%s'", sig);
}
static char *selector_of(const char *sig)
{
    return cast_ok("sig '%s'", sig);
}

static u128 block_timestamp(const char *block)
{
    char *out = cast_ok("block -r %s %s -f timestamp", g.rpc, block);
    u128 v = parse_u128(out);
    free(out);
    return v;
}

/* The 32-byte topic form of an address. */
static void addr_topic(const char *addr, char *out, size_t len)
{
    char low[41];
    for (int i = 0; i < 40; i++)
        low[i] = (char)tolower((unsigned char)addr[2 + i]);
    low[40] = '\0';
    snprintf(out, len, "0x000000000000000000000000%s", low);
}

/* Sends a transaction signed by `key`, returns the receipt (caller deletes). */
static cJSON *send_tx(const char *key, const char *to, const char *sig, const char *args)
{
    char *out = cast_ok("send --json -r %s --private-key %s %s '%s' %s", g.rpc, key, to, sig, args);
    cJSON *r = cJSON_Parse(out);
    if (!r)
        fail_msg("receipt is not JSON: %s", out);
    free(out);
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "status"));
    assert_non_null(status);
    assert_string_equal(status, "0x1");
    return r;
}

/* The first log of `receipt` emitted by `addr` with topic0 `topic0`, or NULL. */
static cJSON *find_log(cJSON *receipt, const char *addr, const char *topic0)
{
    cJSON *log;
    cJSON_ArrayForEach(log, cJSON_GetObjectItemCaseSensitive(receipt, "logs"))
    {
        const char *a = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(log, "address"));
        cJSON *topics = cJSON_GetObjectItemCaseSensitive(log, "topics");
        const char *t0 = cJSON_GetStringValue(cJSON_GetArrayItem(topics, 0));
        if (a && t0 && strcasecmp(a, addr) == 0 && strcasecmp(t0, topic0) == 0)
            return log;
    }
    return NULL;
}

static const char *log_topic(cJSON *log, int i)
{
    const char *t = cJSON_GetStringValue(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(log, "topics"), i));
    assert_non_null(t);
    return t;
}

/* Word i (64 hex chars) of a log's data. */
static const char *log_word(cJSON *log, int i)
{
    const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(log, "data"));
    assert_non_null(d);
    assert_true(strlen(d) >= 2 + 64 * (size_t)(i + 1));
    return d + 2 + 64 * i;
}

/* Checks that cast's error output carries revert data starting with the selector of `sig`;
 * returns a pointer to the first argument word inside `out`. */
static const char *assert_revert(const char *out, const char *sig)
{
    char *sel = selector_of(sig);
    char want[32];
    snprintf(want, sizeof want, "data: \"%s", sel);
    const char *p = strstr(out, want);
    if (!p)
        fail_msg("expected revert %s (%s), got: %s", sig, sel, out);
    free(sel);
    return p + strlen("data: \"0x") + 8;
}

/* ------------------------------------------------------------------ fixture */

static int load_config(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    g.cfg = cJSON_Parse(buf);
    return g.cfg ? 0 : -1;
}

static int copy_addr(char *dst, const char *key)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(g.cfg, "contracts"), key));
    if (!is_hex_addr(v)) {
        fprintf(stderr, "test_devchain: devchain.json: contracts.%s is not an address\n", key);
        return -1;
    }
    util_strlcpy(dst, v, 43);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    glob_t gl;
    const char *native = th_repo_path("deploy/node_modules/@foundry-rs/cast-*/bin/cast");
    if (glob(native, 0, NULL, &gl) == 0 && gl.gl_pathc > 0)
        util_strlcpy(g.cast, gl.gl_pathv[0], sizeof g.cast);
    else
        util_strlcpy(g.cast, th_repo_path("deploy/node_modules/.bin/cast"), sizeof g.cast);
    globfree(&gl);
    if (access(g.cast, X_OK) != 0) {
        fprintf(stderr, "test_devchain: cast not found (%s); run npm ci in deploy/\n", g.cast);
        return -1;
    }

    char path[1200];
    const char *explicit = getenv("PAIMON_DEVCHAIN_JSON");
    const char *run_dir = getenv("PAIMON_TEST_RUN_DIR");
    if (explicit && *explicit) {
        util_strlcpy(path, explicit, sizeof path);
    } else {
        if (!run_dir || !*run_dir) {
            fprintf(stderr, "test_devchain: PAIMON_TEST_RUN_DIR is not set (use tests/run.sh)\n");
            return -1;
        }
        snprintf(path, sizeof path, "%s/devchain.json", run_dir);
        if (access(path, R_OK) != 0) {
            /* The harness did not start the devchain: start our own and stop it at the end. */
            const char *base = getenv("PAIMON_TEST_PORT_BASE");
            int port = (base ? atoi(base) : 17100) + 3;
            util_strlcpy(g.run_dir, run_dir, sizeof g.run_dir);
            int rc;
            char *out = sh(&rc, "PAIMON_RUN_DIR='%s' PAIMON_ANVIL_PORT=%d '%s' start", run_dir,
                           port, th_repo_path("deploy/devchain/devchain.sh"));
            if (rc != 0) {
                fprintf(stderr, "test_devchain: devchain.sh start failed: %s\n", out);
                free(out);
                return -1;
            }
            free(out);
            g.started_here = 1;
        }
    }
    if (load_config(path) != 0) {
        fprintf(stderr, "test_devchain: cannot read %s\n", path);
        return -1;
    }
    const char *rpc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(g.cfg, "rpcUrl"));
    if (!rpc || strncmp(rpc, "http://127.0.0.1:", 17) != 0 || strlen(rpc) >= sizeof g.rpc ||
        strspn(rpc + 17, "0123456789") != strlen(rpc + 17)) {
        fprintf(stderr, "test_devchain: rpcUrl must be a loopback http URL\n");
        return -1;
    }
    util_strlcpy(g.rpc, rpc, sizeof g.rpc);
    if (copy_addr(g.vault, "vault") != 0 || copy_addr(g.usdt, "usdt") != 0 ||
        copy_addr(g.market, "market") != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g.started_here) {
        int rc;
        char *out = sh(&rc, "PAIMON_RUN_DIR='%s' '%s' stop", g.run_dir,
                       th_repo_path("deploy/devchain/devchain.sh"));
        free(out);
    }
    cJSON_Delete(g.cfg);
    g.cfg = NULL;
    return 0;
}

static int snapshot(void **state)
{
    (void)state;
    char *out = cast_ok("rpc -r %s evm_snapshot", g.rpc);
    /* cast prints the JSON string: "0x1" */
    util_strlcpy(g.snap, out[0] == '"' ? out + 1 : out, sizeof g.snap);
    char *q = strchr(g.snap, '"');
    if (q)
        *q = '\0';
    free(out);
    return 0;
}

static int revert(void **state)
{
    (void)state;
    char *out = cast_ok("rpc -r %s evm_revert %s", g.rpc, g.snap);
    int ok = strcmp(out, "true") == 0;
    free(out);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ tests */

static char *event_signature(cJSON *ev)
{
    char sig[512];
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "name"));
    assert_non_null(name);
    size_t n = (size_t)snprintf(sig, sizeof sig, "%s(", name);
    cJSON *in;
    int first = 1;
    cJSON_ArrayForEach(in, cJSON_GetObjectItemCaseSensitive(ev, "inputs"))
    {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "type"));
        assert_non_null(t);
        n += (size_t)snprintf(sig + n, sizeof sig - n, "%s%s", first ? "" : ",", t);
        first = 0;
        assert_true(n < sizeof sig);
    }
    snprintf(sig + n, sizeof sig - n, ")");
    return util_strdup(sig);
}

/* Returns the ABI item of `kind` whose canonical signature is `sig`, or NULL. */
static cJSON *abi_find(cJSON *abi, const char *kind, const char *sig)
{
    cJSON *it;
    cJSON_ArrayForEach(it, abi)
    {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "type"));
        if (!type || strcmp(type, kind) != 0)
            continue;
        char *s = event_signature(it);
        int eq = strcmp(s, sig) == 0;
        free(s);
        if (eq)
            return it;
    }
    return NULL;
}

static void assert_indexed(cJSON *ev, const char *pattern)
{
    int i = 0;
    cJSON *in;
    cJSON_ArrayForEach(in, cJSON_GetObjectItemCaseSensitive(ev, "inputs"))
    {
        assert_true(pattern[i] != '\0');
        int want = pattern[i] == 'i';
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "indexed")), want);
        i++;
    }
    assert_int_equal(pattern[i], '\0');
}

static void abi_is_current_and_standard(void **state)
{
    (void)state;
    int rc;
    char *out = sh(&rc, "'%s'", th_repo_path("deploy/devchain/check-abi.sh"));
    if (rc != 0)
        fail_msg("check-abi.sh: %s", out);
    free(out);

    FILE *f = fopen(th_repo_path("schemas/abi/PaimonVault.json"), "r");
    assert_non_null(f);
    static char buf[262144];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *abi = cJSON_Parse(buf);
    assert_true(cJSON_IsArray(abi));

    /* ERC-7540 / ERC-4626 / OpenZeppelin signatures, with their indexed layout. */
    struct {
        const char *sig, *indexed;
    } std[] = {
        {"RedeemRequest(address,address,uint256,address,uint256)", "iii--"},
        {"OperatorSet(address,address,bool)", "ii-"},
        {"Deposit(address,address,uint256,uint256)", "ii--"},
        {"Withdraw(address,address,address,uint256,uint256)", "iii--"},
        {"RedeemClaimable(address,uint256,uint256,uint256)", "ii--"},
        {"RoleGranted(bytes32,address,address)", "iii"},
        {"RoleRevoked(bytes32,address,address)", "iii"},
        {"Paused(address)", "-"},
        {"Unpaused(address)", "-"},
        {"Transfer(address,address,uint256)", "ii-"},
    };
    for (size_t i = 0; i < sizeof std / sizeof std[0]; i++) {
        cJSON *ev = abi_find(abi, "event", std[i].sig);
        if (!ev)
            fail_msg("PaimonVault ABI lacks event %s", std[i].sig);
        assert_indexed(ev, std[i].indexed);
    }
    const char *fund[] = {
        "RedemptionRequested(uint256,address,address,uint8,uint256,uint256,uint256,uint64)",
        "RedemptionApproved(uint256,address)",
        "RedemptionRejected(uint256,address,string)",
        "RedemptionSettled(uint256,address,uint256,uint256)",
        "RedemptionCancelled(uint256,address)",
        "AssetPurchased(address,uint256,uint256,int256)",
        "AssetRedeemed(address,uint256,uint256,int256)",
        "NavUpdated(uint256,uint256,uint256,uint256)",
        "EmergencyModeChanged(bool,address)",
        "AssetAdded(address,address,uint8,uint16,uint16,uint16)",
        "AssetRemoved(address)",
        "AssetTargetChanged(address,uint16,uint16,uint16)",
    };
    for (size_t i = 0; i < sizeof fund / sizeof fund[0]; i++)
        if (!abi_find(abi, "event", fund[i]))
            fail_msg("PaimonVault ABI lacks event %s", fund[i]);
    const char *errors[] = {
        "SlippageExceeded(address,uint256,uint256)", "StalePrice(address,uint256,uint256)",
        "SettlementNotDue(uint256,uint64)", "AccessControlUnauthorizedAccount(address,bytes32)"};
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (!abi_find(abi, "error", errors[i]))
            fail_msg("PaimonVault ABI lacks error %s", errors[i]);
    assert_null(abi_find(abi, "event", "RedeemRequest(address,address,uint256,uint256)"));
    cJSON_Delete(abi);
}

static void roles_held_by_configured_accounts(void **state)
{
    (void)state;
    struct {
        const char *role, *list;
        int count;
    } want[] = {{"ADMIN_ROLE", "admin", 0},
                {"OPERATOR_ROLE", "operator", 0},
                {"REBALANCER_ROLE", "rebalancer", 0},
                {"VIP_APPROVER_ROLE", "approvers", 3}};
    char args[256];
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *id = cast_ok("call -r %s %s '%s()(bytes32)'", g.rpc, g.vault, want[i].role);
        char *expect = cast_ok("keccak '%s'", want[i].role);
        assert_string_equal(id, expect);
        if (want[i].count == 0) {
            snprintf(args, sizeof args, "%s %s", id, account(want[i].list, "address"));
            assert_true(call_bool(g.vault, "hasRole(bytes32,address)(bool)", args));
        }
        for (int k = 0; k < want[i].count; k++) {
            snprintf(args, sizeof args, "%s %s", id, account_at(want[i].list, k, "address"));
            assert_true(call_bool(g.vault, "hasRole(bytes32,address)(bool)", args));
        }
        /* Roles are held by distinct accounts: an investor holds none, the rebalancer
         * holds no approver / operator role. */
        snprintf(args, sizeof args, "%s %s", id, account_at("investors", 0, "address"));
        assert_false(call_bool(g.vault, "hasRole(bytes32,address)(bool)", args));
        if (strcmp(want[i].role, "REBALANCER_ROLE") != 0) {
            snprintf(args, sizeof args, "%s %s", id, account("rebalancer", "address"));
            assert_false(call_bool(g.vault, "hasRole(bytes32,address)(bool)", args));
        }
        if (strcmp(want[i].role, "ADMIN_ROLE") != 0) {
            /* Every operational role is administered by ADMIN_ROLE. */
            char *admin_id = cast_ok("keccak ADMIN_ROLE");
            char *ra =
                cast_ok("call -r %s %s 'getRoleAdmin(bytes32)(bytes32)' %s", g.rpc, g.vault, id);
            assert_string_equal(ra, admin_id);
            free(ra);
            free(admin_id);
        }
        free(expect);
        free(id);
    }
    snprintf(args, sizeof args, "0x%064d %s", 0, account("admin", "address"));
    assert_true(call_bool(g.vault, "hasRole(bytes32,address)(bool)", args));
}

static void total_assets_is_l1_plus_asset_values(void **state)
{
    (void)state;
    u128 total = call_u128(g.vault, "totalAssets()(uint256)", NULL);
    u128 l1 = call_u128(g.vault, "l1Balance()(uint256)", NULL);
    u128 usdt_held = call_u128(g.usdt, "balanceOf(address)(uint256)", g.vault);
    assert_u128_equal(l1, usdt_held);
    assert_true(l1 > 0);

    u128 sum_values = 0, tier_sum[4] = {0};
    int n = cJSON_GetArraySize(assets());
    assert_true(n >= 3);
    int tiers_seen[4] = {0};
    for (int i = 0; i < n; i++) {
        const char *token = asset_field(i, "token");
        const char *agg = asset_field(i, "aggregator");
        const char *tier = asset_field(i, "tier");
        assert_true(is_hex_addr(token) && is_hex_addr(agg));
        int t = strcmp(tier, "L2") == 0 ? 2 : strcmp(tier, "L3") == 0 ? 3 : 0;
        assert_true(t != 0);
        tiers_seen[t]++;

        u128 value = call_u128(g.vault, "assetValue(address)(uint256)", token);
        assert_true(value > 0);
        /* Independent valuation: balance x aggregator answer, scaled by the decimals. */
        u128 bal = call_u128(token, "balanceOf(address)(uint256)", g.vault);
        assert_u128_equal(bal, call_u128(g.vault, "assetBalance(address)(uint256)", token));
        u128 dec = call_u128(token, "decimals()(uint8)", NULL);
        u128 fdec = call_u128(agg, "decimals()(uint8)", NULL);
        assert_u128_equal(fdec, 8);
        char *rd = cast_ok(
            "call -r %s %s 'latestRoundData()(uint80,int256,uint256,uint256,uint80)'", g.rpc, agg);
        char *line2 = strchr(rd, '\n');
        assert_non_null(line2);
        u128 answer = parse_u128(line2 + 1);
        free(rd);
        u128 expect = bal * answer;
        int shift = 18 - (int)(fdec + dec);
        for (int s = 0; s < shift; s++)
            expect *= 10;
        for (int s = 0; s < -shift; s++)
            expect /= 10;
        /* mulDiv floors once; dividing step by step floors to the same integer. */
        assert_u128_equal(value, expect);
        sum_values += value;
        tier_sum[t] += value;
    }
    assert_true(tiers_seen[2] >= 1 && tiers_seen[3] >= 1);
    assert_u128_equal(total, l1 + sum_values);
    assert_u128_equal(call_u128(g.vault, "tierValue(uint8)(uint256)", "1"), l1);
    assert_u128_equal(call_u128(g.vault, "tierValue(uint8)(uint256)", "2"), tier_sum[2]);
    assert_u128_equal(call_u128(g.vault, "tierValue(uint8)(uint256)", "3"), tier_sum[3]);

    /* sharePrice is assets per 1e18 shares, OpenZeppelin's rounding (+1 virtual share). */
    u128 supply = call_u128(g.vault, "totalSupply()(uint256)", NULL);
    /* floor(1e18 * (total + 1) / (supply + 1)) by long division: the product overflows 128 bits. */
    u128 x = total + 1, d = supply + 1, q = x / d, r = x % d;
    for (int i = 0; i < 18; i++) {
        q = q * 10 + (r * 10) / d;
        r = (r * 10) % d;
    }
    assert_u128_equal(call_u128(g.vault, "sharePrice()(uint256)", NULL), q);
}

struct req {
    u128 id, shares, gross, fee, settle;
};

/* investor[0] asks to redeem `shares` on `channel`; checks both events; returns the request. */
static struct req request_redeem(const char *inv, const char *key, u128 shares, int channel)
{
    struct req r = {0};
    r.shares = shares;
    r.id = call_u128(g.vault, "redemptionCount()(uint256)", NULL) + 1;
    u128 expect_gross = call_u128(g.vault, "convertToAssets(uint256)(uint256)", u128_arg(shares));
    u128 fee_bps = call_u128(
        g.vault, channel ? "emergencyFeeBps()(uint16)" : "standardFeeBps()(uint16)", NULL);
    u128 delay = call_u128(
        g.vault,
        channel ? "emergencySettlementDelay()(uint32)" : "standardSettlementDelay()(uint32)", NULL);
    u128 escrow_before = call_u128(g.vault, "balanceOf(address)(uint256)", g.vault);
    u128 liab_before = call_u128(g.vault, "pendingRedemptionLiability()(uint256)", NULL);

    char args[512];
    snprintf(args, sizeof args, "%s %s %s %d", u128_arg(shares), inv, inv, channel);
    cJSON *rcpt = send_tx(key, g.vault, "requestRedeem(uint256,address,address,uint8)", args);

    char inv_topic[80], id_topic[80];
    addr_topic(inv, inv_topic, sizeof inv_topic);
    char *std_topic = topic_of("RedeemRequest(address,address,uint256,address,uint256)");
    cJSON *log = find_log(rcpt, g.vault, std_topic);
    if (!log)
        fail_msg("no standard RedeemRequest log in the receipt");
    assert_string_equal(log_topic(log, 1), inv_topic); /* controller */
    assert_string_equal(log_topic(log, 2), inv_topic); /* owner */
    char idhex[40];
    u128_str(r.id, idhex, sizeof idhex);
    char *id_word = cast_ok("to-uint256 %s", idhex);
    util_strlcpy(id_topic, id_word, sizeof id_topic);
    free(id_word);
    assert_string_equal(log_topic(log, 3), id_topic);                  /* requestId */
    assert_true(strncasecmp(log_word(log, 0) + 24, inv + 2, 40) == 0); /* sender */
    assert_u128_equal(word_u128(log_word(log, 1)), shares);

    char *fund_topic = topic_of(
        "RedemptionRequested(uint256,address,address,uint8,uint256,uint256,uint256,uint64)");
    log = find_log(rcpt, g.vault, fund_topic);
    if (!log)
        fail_msg("no RedemptionRequested log in the receipt");
    assert_string_equal(log_topic(log, 1), id_topic);
    assert_string_equal(log_topic(log, 2), inv_topic);
    assert_string_equal(log_topic(log, 3), inv_topic);
    assert_u128_equal(word_u128(log_word(log, 0)), (u128)channel);
    assert_u128_equal(word_u128(log_word(log, 1)), shares);
    r.gross = word_u128(log_word(log, 2));
    r.fee = word_u128(log_word(log, 3));
    r.settle = word_u128(log_word(log, 4));
    assert_u128_equal(r.gross, expect_gross);
    assert_u128_equal(r.fee, r.gross * fee_bps / 10000);
    assert_true(r.fee > 0);
    const char *bn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rcpt, "blockNumber"));
    assert_non_null(bn);
    assert_u128_equal(r.settle, block_timestamp(bn) + delay);

    /* Shares are escrowed in the vault and the liability grows by the net amount. */
    assert_u128_equal(call_u128(g.vault, "balanceOf(address)(uint256)", g.vault),
                      escrow_before + shares);
    assert_u128_equal(call_u128(g.vault, "pendingRedemptionLiability()(uint256)", NULL),
                      liab_before + r.gross - r.fee);
    snprintf(args, sizeof args, "%s %s", u128_arg(r.id), inv);
    assert_u128_equal(call_u128(g.vault, "pendingRedeemRequest(uint256,address)(uint256)", args),
                      shares);
    free(std_topic);
    free(fund_topic);
    cJSON_Delete(rcpt);
    return r;
}

static void redemption_request_emits_standard_and_fund_events(void **state)
{
    (void)state;
    const char *inv = account_at("investors", 0, "address");
    const char *key = account_at("investors", 0, "privateKey");
    struct req r = request_redeem(inv, key, 1500 * E18, 1);
    /* getRedemption returns the stored request as a tuple. */
    char *t = cast_ok("call -r %s %s 'getRedemption(uint256)((uint256,address,address,uint8,uint8,"
                      "uint256,uint256,uint256,uint64,uint64,uint64,address))' %s",
                      g.rpc, g.vault, u128_arg(r.id));
    char expect[256];
    snprintf(expect, sizeof expect, "(%s, ", u128_arg(r.id));
    assert_true(strncmp(t, expect, strlen(expect)) == 0);
    assert_non_null(strcasestr(t, inv));
    assert_non_null(strstr(t, ", 1, 1, ")); /* channel EMERGENCY, status Pending */
    free(t);

    /* A standard request uses the standard fee and the T+7 delay. */
    request_redeem(account_at("investors", 1, "address"), account_at("investors", 1, "privateKey"),
                   777 * E18, 0);
}

static void redemption_approve_settle_pays_net(void **state)
{
    (void)state;
    const char *inv = account_at("investors", 0, "address");
    struct req r = request_redeem(inv, account_at("investors", 0, "privateKey"), 2000 * E18, 1);
    const char *op = account("operator", "address");
    const char *op_key = account("operator", "privateKey");

    /* Settling before approval or before the due time fails with a decodable error. */
    char *out = cast_fail("call -r %s --from %s %s 'settleRedemption(uint256)' %s", g.rpc, op,
                          g.vault, u128_arg(r.id));
    assert_revert(out, "InvalidRedemptionStatus(uint256,uint8)");
    free(out);
    out = cast_fail("call -r %s --from %s %s 'approveRedemption(uint256)' %s", g.rpc, inv, g.vault,
                    u128_arg(r.id));
    assert_revert(out, "AccessControlUnauthorizedAccount(address,bytes32)");
    free(out);

    cJSON *rc = send_tx(account_at("approvers", 0, "privateKey"), g.vault,
                        "approveRedemption(uint256)", u128_arg(r.id));
    char *approved = topic_of("RedemptionApproved(uint256,address)");
    assert_non_null(find_log(rc, g.vault, approved));
    free(approved);
    cJSON_Delete(rc);

    out = cast_fail("call -r %s --from %s %s 'settleRedemption(uint256)' %s", g.rpc, op, g.vault,
                    u128_arg(r.id));
    const char *w = assert_revert(out, "SettlementNotDue(uint256,uint64)");
    assert_u128_equal(word_u128(w), r.id);
    assert_u128_equal(word_u128(w + 64), r.settle);
    free(out);

    /* Move the chain past the T+1 due time. */
    u128 now = block_timestamp("latest");
    assert_true(r.settle > now);
    free(cast_ok("rpc -r %s evm_increaseTime %s", g.rpc, u128_arg(r.settle - now)));
    free(cast_ok("rpc -r %s evm_mine", g.rpc));
    assert_true(block_timestamp("latest") >= r.settle);

    u128 usdt_before = call_u128(g.usdt, "balanceOf(address)(uint256)", inv);
    u128 supply_before = call_u128(g.vault, "totalSupply()(uint256)", NULL);
    rc = send_tx(op_key, g.vault, "settleRedemption(uint256)", u128_arg(r.id));
    u128 net = r.gross - r.fee;
    assert_u128_equal(call_u128(g.usdt, "balanceOf(address)(uint256)", inv), usdt_before + net);
    assert_u128_equal(call_u128(g.vault, "totalSupply()(uint256)", NULL), supply_before - r.shares);

    char *claim = topic_of("RedeemClaimable(address,uint256,uint256,uint256)");
    cJSON *log = find_log(rc, g.vault, claim);
    assert_non_null(log);
    assert_u128_equal(word_u128(log_word(log, 0)), net);
    assert_u128_equal(word_u128(log_word(log, 1)), r.shares);
    char *wd = topic_of("Withdraw(address,address,address,uint256,uint256)");
    log = find_log(rc, g.vault, wd);
    assert_non_null(log);
    char inv_topic[80];
    addr_topic(inv, inv_topic, sizeof inv_topic);
    assert_string_equal(log_topic(log, 2), inv_topic); /* receiver */
    assert_string_equal(log_topic(log, 3), inv_topic); /* owner */
    assert_u128_equal(word_u128(log_word(log, 0)), net);
    char *nav = topic_of("NavUpdated(uint256,uint256,uint256,uint256)");
    log = find_log(rc, g.vault, nav);
    assert_non_null(log);
    assert_u128_equal(word_u128(log_word(log, 1)), supply_before - r.shares);
    free(claim);
    free(wd);
    free(nav);
    cJSON_Delete(rc);

    out = cast_fail("call -r %s --from %s %s 'settleRedemption(uint256)' %s", g.rpc, op, g.vault,
                    u128_arg(r.id));
    assert_revert(out, "InvalidRedemptionStatus(uint256,uint8)");
    free(out);
}

static void redemption_cancel_and_reject_return_shares(void **state)
{
    (void)state;
    const char *inv = account_at("investors", 1, "address");
    const char *key = account_at("investors", 1, "privateKey");
    u128 bal0 = call_u128(g.vault, "balanceOf(address)(uint256)", inv);
    struct req r = request_redeem(inv, key, 1000 * E18, 0);
    assert_u128_equal(call_u128(g.vault, "balanceOf(address)(uint256)", inv), bal0 - r.shares);

    /* Only the requester may cancel. */
    char *out = cast_fail("call -r %s --from %s %s 'cancelRedemption(uint256)' %s", g.rpc,
                          account_at("investors", 2, "address"), g.vault, u128_arg(r.id));
    assert_revert(out, "NotAuthorized(address,address)");
    free(out);
    cJSON *rc = send_tx(key, g.vault, "cancelRedemption(uint256)", u128_arg(r.id));
    char *cancelled = topic_of("RedemptionCancelled(uint256,address)");
    assert_non_null(find_log(rc, g.vault, cancelled));
    free(cancelled);
    cJSON_Delete(rc);
    assert_u128_equal(call_u128(g.vault, "balanceOf(address)(uint256)", inv), bal0);

    struct req r2 = request_redeem(inv, key, 300 * E18, 0);
    char args[256];
    snprintf(args, sizeof args, "%s 'KYC review failed'", u128_arg(r2.id));
    rc = send_tx(account("operator", "privateKey"), g.vault, "rejectRedemption(uint256,string)",
                 args);
    char *rejected = topic_of("RedemptionRejected(uint256,address,string)");
    cJSON *log = find_log(rc, g.vault, rejected);
    assert_non_null(log);
    /* The reason string is ABI-encoded in the data (after offset and length words). */
    const char *reason = "KYC review failed";
    char reason_hex[64] = "";
    for (size_t i = 0; i < strlen(reason); i++)
        snprintf(reason_hex + 2 * i, sizeof reason_hex - 2 * i, "%02x", (unsigned char)reason[i]);
    assert_int_equal(strncmp(log_word(log, 2), reason_hex, strlen(reason_hex)), 0);
    assert_u128_equal(word_u128(log_word(log, 1)), strlen(reason));
    free(rejected);
    cJSON_Delete(rc);
    assert_u128_equal(call_u128(g.vault, "balanceOf(address)(uint256)", inv), bal0);
    out = cast_fail("call -r %s --from %s %s 'cancelRedemption(uint256)' %s", g.rpc, inv, g.vault,
                    u128_arg(r2.id));
    assert_revert(out, "InvalidRedemptionStatus(uint256,uint8)");
    free(out);
}

static void purchase_with_high_min_out_reverts(void **state)
{
    (void)state;
    const char *token = asset_field(0, "token");
    const char *reb = account("rebalancer", "address");
    u128 usdt_in = 1000 * E18;
    char args[512];
    snprintf(args, sizeof args, "%s %s", token, u128_arg(usdt_in));
    u128 quote = call_u128(g.market, "quoteBuy(address,uint256)(uint256)", args);
    assert_true(quote > 0);

    char *out = cast_fail("call -r %s --from %s %s 'purchaseAsset(address,uint256,uint256)' %s %s "
                          "%s",
                          g.rpc, reb, g.vault, token, u128_arg(usdt_in), u128_arg(quote + 1));
    const char *w = assert_revert(out, "SlippageExceeded(address,uint256,uint256)");
    assert_true(strncasecmp(w + 24, token + 2, 40) == 0);
    assert_u128_equal(word_u128(w + 64), quote);
    assert_u128_equal(word_u128(w + 128), quote + 1);
    free(out);

    /* A real transaction with the same arguments is refused too (cast estimates first). */
    out = cast_fail("send -r %s --private-key %s %s 'purchaseAsset(address,uint256,uint256)' %s %s "
                    "%s",
                    g.rpc, account("rebalancer", "privateKey"), g.vault, token, u128_arg(usdt_in),
                    u128_arg(quote + 1));
    assert_revert(out, "SlippageExceeded(address,uint256,uint256)");
    free(out);

    /* Only the rebalancer trades. */
    out = cast_fail("call -r %s --from %s %s 'purchaseAsset(address,uint256,uint256)' %s %s 0",
                    g.rpc, account("operator", "address"), g.vault, token, u128_arg(usdt_in));
    assert_revert(out, "AccessControlUnauthorizedAccount(address,bytes32)");
    free(out);

    /* minOut == quote goes through and moves L1 into the asset. */
    u128 l1 = call_u128(g.vault, "l1Balance()(uint256)", NULL);
    u128 held = call_u128(g.vault, "assetBalance(address)(uint256)", token);
    snprintf(args, sizeof args, "%s %s %s", token, u128_arg(usdt_in), u128_arg(quote));
    cJSON *rc = send_tx(account("rebalancer", "privateKey"), g.vault,
                        "purchaseAsset(address,uint256,uint256)", args);
    char *bought = topic_of("AssetPurchased(address,uint256,uint256,int256)");
    cJSON *log = find_log(rc, g.vault, bought);
    assert_non_null(log);
    assert_u128_equal(word_u128(log_word(log, 1)), quote);
    free(bought);
    cJSON_Delete(rc);
    assert_u128_equal(call_u128(g.vault, "l1Balance()(uint256)", NULL), l1 - usdt_in);
    assert_u128_equal(call_u128(g.vault, "assetBalance(address)(uint256)", token), held + quote);
}

static void stale_aggregator_is_readable_and_blocks_trades(void **state)
{
    (void)state;
    const char *token = asset_field(2, "token");
    const char *agg = asset_field(2, "aggregator");
    u128 total_before = call_u128(g.vault, "totalAssets()(uint256)", NULL);
    u128 now = block_timestamp("latest");
    u128 stale_at = now - 3 * 86400;
    cJSON *rc =
        send_tx(account("admin", "privateKey"), agg, "setUpdatedAt(uint256)", u128_arg(stale_at));
    cJSON_Delete(rc);

    char *rd = cast_ok("call -r %s %s 'latestRoundData()(uint80,int256,uint256,uint256,uint80)'",
                       g.rpc, agg);
    /* roundId, answer, startedAt, updatedAt, answeredInRound: one per line */
    char *line = rd;
    for (int i = 0; i < 3; i++) {
        line = strchr(line, '\n');
        assert_non_null(line);
        line++;
    }
    assert_u128_equal(parse_u128(line), stale_at);
    free(rd);
    char *ap = cast_ok("call -r %s %s 'assetPrice(address)(int256,uint8,uint256)' %s", g.rpc,
                       g.vault, token);
    line = strrchr(ap, '\n');
    assert_non_null(line);
    assert_u128_equal(parse_u128(line + 1), stale_at);
    free(ap);
    /* Views keep working on a stale feed; NAV is unchanged. */
    assert_u128_equal(call_u128(g.vault, "totalAssets()(uint256)", NULL), total_before);

    char *out =
        cast_fail("call -r %s --from %s %s 'purchaseAsset(address,uint256,uint256)' %s %s 0", g.rpc,
                  account("rebalancer", "address"), g.vault, token, u128_arg(100 * E18));
    const char *w = assert_revert(out, "StalePrice(address,uint256,uint256)");
    assert_u128_equal(word_u128(w + 64), stale_at);
    free(out);

    /* A fresh answer re-opens trading and moves the valuation. */
    rc = send_tx(account("admin", "privateKey"), agg, "setAnswer(int256)", "6000000000");
    cJSON_Delete(rc);
    free(cast_ok("call -r %s --from %s %s 'purchaseAsset(address,uint256,uint256)' %s %s 0", g.rpc,
                 account("rebalancer", "address"), g.vault, token, u128_arg(100 * E18)));
    assert_true(call_u128(g.vault, "totalAssets()(uint256)", NULL) > total_before);
}

static void emergency_mode_blocks_deposits(void **state)
{
    (void)state;
    cJSON *rc =
        send_tx(account("operator", "privateKey"), g.vault, "setEmergencyMode(bool)", "true");
    char *topic = topic_of("EmergencyModeChanged(bool,address)");
    cJSON *log = find_log(rc, g.vault, topic);
    assert_non_null(log);
    assert_u128_equal(word_u128(log_word(log, 0)), 1);
    free(topic);
    cJSON_Delete(rc);
    assert_true(call_bool(g.vault, "emergencyMode()(bool)", NULL));

    const char *inv = account_at("investors", 0, "address");
    char args[256];
    snprintf(args, sizeof args, "%s %s", g.vault, u128_arg(10 * E18));
    cJSON_Delete(send_tx(account_at("investors", 0, "privateKey"), g.usdt,
                         "approve(address,uint256)", args));
    char *out = cast_fail("call -r %s --from %s %s 'deposit(uint256,address)' %s %s", g.rpc, inv,
                          g.vault, u128_arg(10 * E18), inv);
    assert_revert(out, "EmergencyModeActive()");
    free(out);
    /* Investors can still leave through the emergency channel. */
    request_redeem(inv, account_at("investors", 0, "privateKey"), 100 * E18, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(abi_is_current_and_standard, snapshot, revert),
        cmocka_unit_test_setup_teardown(roles_held_by_configured_accounts, snapshot, revert),
        cmocka_unit_test_setup_teardown(total_assets_is_l1_plus_asset_values, snapshot, revert),
        cmocka_unit_test_setup_teardown(redemption_request_emits_standard_and_fund_events, snapshot,
                                        revert),
        cmocka_unit_test_setup_teardown(redemption_approve_settle_pays_net, snapshot, revert),
        cmocka_unit_test_setup_teardown(redemption_cancel_and_reject_return_shares, snapshot,
                                        revert),
        cmocka_unit_test_setup_teardown(purchase_with_high_min_out_reverts, snapshot, revert),
        cmocka_unit_test_setup_teardown(stale_aggregator_is_readable_and_blocks_trades, snapshot,
                                        revert),
        cmocka_unit_test_setup_teardown(emergency_mode_blocks_deposits, snapshot, revert),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
