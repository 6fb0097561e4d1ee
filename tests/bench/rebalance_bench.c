/* rebalance_bench: (1) planner time for a 200-asset portfolio (target < 1 ms), over many
 * generated portfolios; (2) with a devchain, preview latency: POST /v1/preview on a real
 * paimon-rebalance (chain read at a pinned block, plan, eth_simulateV1 of every leg).
 *   rebalance_bench                                   planner only
 *   rebalance_bench <devchain.json> <redis_url> <pg_url> <paimon-rebalance> <http_port> <run_dir>
 * Prints one JSON line per measurement. Benches link libcommon only, so the pure planner is
 * compiled in from its source file. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <libpq-fe.h>

#include "migrate.h"
#include "rebalance/planner.c"
#include "util.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static void bench_planner(void)
{
    enum { N = 200, RUNS = 2000 };
    planner_asset *as = util_calloc(N, sizeof *as);
    int64_t *t = util_calloc(RUNS, sizeof *t);
    size_t legs = 0;
    for (int run = 0; run < RUNS; run++) {
        for (size_t i = 0; i < N; i++) {
            planner_asset *a = &as[i];
            memset(a, 0, sizeof *a);
            snprintf(a->id, sizeof a->id, "0x%040zx", i);
            a->tier = 2 + (int)(i % 2);
            a->enabled = 1;
            a->decimals = i % 3 ? 18 : 6;
            a->price_decimals = 8;
            money_from_u64(&a->price, 50000000 + rnd(10000000000ULL));
            /* value around 45 bps of a 100M fund, +-60 % */
            money_u256 v, p10, e;
            money_from_u64(&v, 450000 * 40 / 100 + rnd(450000 * 120 / 100));
            money_from_u64(&p10, 1);
            money_from_u64(&e, 10);
            for (unsigned k = 0; k < a->decimals + a->price_decimals; k++)
                money_mul(&p10, &p10, &e);
            money_mul(&v, &v, &p10);
            money_div(&a->balance, NULL, &v, &a->price);
            a->target_bps = 45;
            a->min_bps = 20;
            a->max_bps = 80;
            money_from_u64(&a->min_trade, 100);
            money_mul(&a->min_trade, &a->min_trade, &(money_u256){{1000000000000000000ULL}});
            a->slippage_bps = 50;
        }
        planner_input in = {
            .usdt_decimals = 18, .assets = as, .nassets = N, .l1_target_bps = 1000, .band_bps = 10};
        money_from_u64(&in.l1, 5000000 + rnd(10000000));
        money_mul(&in.l1, &in.l1, &(money_u256){{1000000000000000000ULL}});
        planner_result r;
        char why[256];
        int64_t t0 = util_mono_us();
        planner_status st = planner_run(&in, &r, why, sizeof why);
        t[run] = util_mono_us() - t0;
        if (st != PLANNER_OK) {
            fprintf(stderr, "planner: %s\n", why);
            exit(1);
        }
        legs += r.nlegs;
        planner_result_free(&r);
    }
    qsort(t, RUNS, sizeof *t, cmp_i64);
    printf("{\"name\":\"rebalance_planner\",\"assets\":%d,\"runs\":%d,\"avg_legs\":%zu,"
           "\"p50_us\":%lld,\"p99_us\":%lld,\"max_us\":%lld}\n",
           N, RUNS, legs / RUNS, (long long)t[RUNS / 2], (long long)t[RUNS * 99 / 100],
           (long long)t[RUNS - 1]);
    free(as);
    free(t);
}

/* The last response body (truncated to the buffer), to report what the preview held. */
static char last_body[1 << 16];
static size_t last_len;
static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    (void)ud;
    size_t k = s * n;
    if (last_len + k < sizeof last_body) {
        memcpy(last_body + last_len, p, k);
        last_len += k;
        last_body[last_len] = '\0';
    }
    return k;
}

static long http(CURL *c, const char *url, int post)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_POST, post ? 1L : 0L);
    /* An L1 need above what the vault holds, so the preview has legs to simulate. */
    static const char body[] = "{\"l1_needed\":\"400000000000000000000000\"}";
    struct curl_slist *h = NULL;
    if (post) {
        h = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(sizeof body - 1));
    }
    curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    long code = 0;
    last_len = 0;
    last_body[0] = '\0';
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(h);
    return rc == CURLE_OK ? code : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = util_malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int bench_preview(char **argv)
{
    const char *dcpath = argv[1], *redis = argv[2], *pg = argv[3], *bin = argv[4], *port = argv[5],
               *rundir = argv[6];
    char err[512];
    char *dc = slurp(dcpath);
    cJSON *j = dc ? cJSON_Parse(dc) : NULL;
    free(dc);
    if (!j)
        return fprintf(stderr, "cannot read %s\n", dcpath), 1;
    const char *rpc = cJSON_GetStringValue(cJSON_GetObjectItem(j, "rpcUrl"));
    const char *key = cJSON_GetStringValue(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "accounts"), "rebalancer"), "privateKey"));
    PGconn *c = PQconnectdb(pg);
    const char *only[1] = {"rebalance"};
    const char *repo = getenv("PAIMON_REPO");
    char mdir[1024], abidir[1024];
    snprintf(mdir, sizeof mdir, "%s/migrations", repo ? repo : ".");
    snprintf(abidir, sizeof abidir, "%s/schemas/abi", repo ? repo : ".");
    migrate_set *ms = migrate_set_load(mdir, only, 1, err, sizeof err);
    if (!ms || PQstatus(c) != CONNECTION_OK || migrate_up(c, ms, NULL, NULL, err, sizeof err) != 0)
        return fprintf(stderr, "migrate: %s\n", err), 1;
    migrate_set_free(ms);
    PQfinish(c);
    char logpath[1024];
    snprintf(logpath, sizeof logpath, "%s/rebalance-bench.log", rundir);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *lf = freopen(logpath, "w", stdout);
        (void)lf;
        dup2(1, 2);
        setenv("PAIMON_DATABASE_URL", pg, 1);
        setenv("PAIMON_REDIS_URL", redis, 1);
        setenv("PAIMON_HTTP_PORT", port, 1);
        setenv("PAIMON_RPC_URLS", rpc, 1);
        setenv("PAIMON_DEVCHAIN_JSON", dcpath, 1);
        setenv("PAIMON_SIGNER_DEV_KEY", key, 1);
        setenv("PAIMON_ABI_DIR", abidir, 1);
        /* Measure previews only: no scheduled checks or plans during the run. */
        setenv("PAIMON_REBALANCE_CHECK_EVERY", "1d", 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    cJSON_Delete(j);
    CURL *cu = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%s/health/live", port);
    int up = 0;
    for (int i = 0; i < 100 && !up; i++) {
        up = http(cu, url, 0) == 200;
        if (!up)
            util_sleep_ms(100);
    }
    int rc = 1;
    if (!up) {
        fprintf(stderr, "paimon-rebalance did not start (see %s)\n", logpath);
        goto out;
    }
    enum { RUNS = 100 };
    int64_t t[RUNS];
    snprintf(url, sizeof url, "http://127.0.0.1:%s/v1/preview", port);
    for (int i = 0; i < 5; i++)
        http(cu, url, 1);
    for (int i = 0; i < RUNS; i++) {
        int64_t t0 = util_mono_us();
        long code = http(cu, url, 1);
        t[i] = util_mono_us() - t0;
        if (code != 200) {
            fprintf(stderr, "preview answered %ld (see %s)\n", code, logpath);
            goto out;
        }
    }
    qsort(t, RUNS, sizeof *t, cmp_i64);
    cJSON *resp = cJSON_Parse(last_body), *data = cJSON_GetObjectItem(resp, "data");
    int nlegs = cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(data, "plan"), "legs"));
    int sim_ok = cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(data, "simulation"), "ok"));
    printf("{\"name\":\"rebalance_preview\",\"runs\":%d,\"legs\":%d,\"simulated_ok\":%s,"
           "\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n",
           RUNS, nlegs, sim_ok ? "true" : "false", (double)t[RUNS / 2] / 1000.0,
           (double)t[RUNS * 99 / 100] / 1000.0);
    cJSON_Delete(resp);
    rc = 0;
out:
    curl_easy_cleanup(cu);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return rc;
}

int main(int argc, char **argv)
{
    bench_planner();
    if (argc >= 7)
        return bench_preview(argv);
    return 0;
}
