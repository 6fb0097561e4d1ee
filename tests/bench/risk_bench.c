/* risk_bench: (1) one full risk metrics cycle against the devchain — pinned-block chain
 * read (two eth_call batches), metrics, series insert with rollups, levels, outgoing
 * queue, commit, then (with a Redis URL) publish: the current-state cache and the queued
 * messages to their streams — timed over repeated runs; the devchain decides how many
 * assets the vault lists (PAIMON_DEVCHAIN_EXTRA_ASSETS=46 gives 50); (2) a metric-history
 * query over one year of minute data (525,600 rows) resampled to 1 d and 1 h, through the
 * same SQL the API uses.
 *
 * The Makefile links benches with libcommon only, so the service's modules are compiled
 * in here (unity build) rather than linked.
 *
 * usage: risk_bench <devchain.json> <postgres admin url> <cycles> [redis://host:port]
 * prints JSON lines: {"bench":"risk_cycle",...} and {"bench":"risk_history",...} */
#include "risk/api.c"
#include "risk/calc.c"
#include "risk/chain.c"
#include "risk/engine.c"
#include "risk/outmsg.c"
#include "risk/snapshot.c"

#include "migrate.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void stats(int64_t *us, int n, double *p50, double *p99, double *mean)
{
    qsort(us, (size_t)n, sizeof *us, cmp_i64);
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)us[i];
    *mean = s / n / 1000.0;
    *p50 = (double)us[n / 2] / 1000.0;
    *p99 = (double)us[(n * 99) / 100 >= n ? n - 1 : (n * 99) / 100] / 1000.0;
}

static PGresult *must(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "risk_bench: %s: %s\n", sql, PQerrorMessage(c));
        exit(1);
    }
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: risk_bench <devchain.json> <postgres url> <cycles>\n");
        return 2;
    }
    int cycles = atoi(argv[3]);
    if (cycles < 1)
        cycles = 20;
    char err[1024];
    FILE *f = fopen(argv[1], "r");
    if (!f)
        return 1;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *dc = cJSON_Parse(buf);
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(dc, "rpcUrl"));
    const char *vault =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(dc, "contracts"), "vault"));
    if (!url || !vault)
        return 1;

    /* a fresh database with the risk migrations */
    PGconn *admin = PQconnectdb(argv[2]);
    if (PQstatus(admin) != CONNECTION_OK)
        return 1;
    PQclear(must(admin, "DROP DATABASE IF EXISTS risk_bench"));
    PQclear(must(admin, "CREATE DATABASE risk_bench"));
    char dburl[512];
    const char *slash = strrchr(argv[2], '/');
    snprintf(dburl, sizeof dburl, "%.*s/risk_bench", (int)(slash - argv[2]), argv[2]);
    PGconn *pg = PQconnectdb(dburl);
    const char *only[1] = {"risk"};
    const char *repo = getenv("PAIMON_REPO");
    char mdir[1024];
    snprintf(mdir, sizeof mdir, "%s/migrations", repo ? repo : ".");
    migrate_set *ms = migrate_set_load(mdir, only, 1, err, sizeof err);
    if (!ms || migrate_up(pg, ms, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "risk_bench: migrate: %s\n", err);
        return 1;
    }
    migrate_set_free(ms);

    rk_app app;
    memset(&app, 0, sizeof app);
    const char *urls[1] = {url};
    rpc_config rc = {.urls = urls, .nurls = 1, .name = "risk_bench"};
    app.rpc = rpc_client_new(&rc, err, sizeof err);
    char path[1100];
    snprintf(path, sizeof path, "%s/schemas/abi/PaimonVault.json", repo ? repo : ".");
    abi_contract *va = abi_contract_load(path, err, sizeof err);
    snprintf(path, sizeof path, "%s/schemas/abi/MockMarket.json", repo ? repo : ".");
    abi_contract *ma = abi_contract_load(path, err, sizeof err);
    app.db = db_pool_new(dburl, 2, err, sizeof err);
    if (!app.rpc || !va || !ma || !app.db) {
        fprintf(stderr, "risk_bench: %s\n", err);
        return 1;
    }
    app.vault_abi = va;
    app.market_abi = ma;
    util_strlcpy(app.vault, vault, sizeof app.vault);
    redisContext *redis = NULL;
    if (argc > 4) {
        char host[256];
        int port = 0;
        if (sscanf(argv[4], "redis://%255[^:]:%d", host, &port) != 2 ||
            !(redis = redisConnect(host, port)) || redis->err) {
            fprintf(stderr, "risk_bench: cannot connect to %s\n", argv[4]);
            return 1;
        }
    }
    int listed =
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(dc, "contracts"), "assets"));

    /* (1) full cycles; the first one warms connections and prepared statements */
    static rk_cycle_result r;
    if (rk_cycle(&app, util_now_ms(), NULL, &r, err, sizeof err) != 0) {
        fprintf(stderr, "risk_bench: cycle: %s\n", err);
        return 1;
    }
    size_t nassets = r.chain.nassets;
    rk_cycle_result_clear(&r);
    int64_t *us = calloc((size_t)cycles, sizeof *us), read_us = 0;
    for (int i = 0; i < cycles; i++) {
        int64_t t0 = util_mono_us();
        static rk_chain ch;
        if (rk_chain_read(&app, RPC_BLOCK_LATEST, &ch, err, sizeof err) != 0)
            return 1;
        read_us += util_mono_us() - t0;
        if (rk_cycle(&app, util_now_ms(), &ch, &r, err, sizeof err) != 0)
            return 1;
        /* publish as the daemon does after each cycle */
        if (redis && (rk_cache_set(redis, r.current, err, sizeof err) != 0 ||
                      rk_out_flush(app.db, redis, 500, err, sizeof err) < 0)) {
            fprintf(stderr, "risk_bench: publish: %s\n", err);
            return 1;
        }
        us[i] = util_mono_us() - t0;
        rk_cycle_result_clear(&r);
    }
    double p50, p99, mean;
    stats(us, cycles, &p50, &p99, &mean);
    printf("{\"bench\":\"risk_cycle\",\"assets\":%zu,\"listed_in_devchain_json\":%d,"
           "\"cycles\":%d,\"published\":%s,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"mean_ms\":%.2f,"
           "\"chain_read_mean_ms\":%.2f}\n",
           nassets, listed, cycles, redis ? "true" : "false", p50, p99, mean,
           (double)read_us / cycles / 1000.0);
    free(us);

    /* (2) one year of minute data for one metric, then the API's resampling query */
    int64_t t0 = util_mono_us();
    PQclear(must(pg, "SELECT risk.risk_ensure_partitions(now() - interval '13 months', now() + "
                     "interval '1 month')"));
    PQclear(must(pg, "INSERT INTO risk.risk_metrics_series (ts, metric, value) SELECT t, "
                     "'bench.metric', (abs(hashtext(t::text)) % 10000) FROM generate_series("
                     "date_trunc('minute', now()) - interval '365 days', date_trunc('minute', "
                     "now()) - interval '1 minute', interval '1 minute') t"));
    PQclear(must(pg, "ANALYZE risk.risk_metrics_series"));
    PQclear(must(pg, "ANALYZE risk.risk_metrics_rollup"));
    double load_s = (double)(util_mono_us() - t0) / 1e6;
    PGresult *cnt = must(pg, "SELECT count(*) FROM risk.risk_metrics_series WHERE metric = "
                             "'bench.metric'");
    long rows = atol(PQgetvalue(cnt, 0, 0));
    PQclear(cnt);
    db_conn *c = db_acquire(app.db, 2000, err, sizeof err);
    const char *widths[2] = {"1d", "1h"};
    double wp50[2], wp99[2];
    int points[2] = {0, 0};
    for (int w = 0; w < 2; w++) {
        int64_t q[50];
        for (int i = 0; i < 50; i++) {
            const char *p[5] = {"bench.metric", "", "-365 days", "now", widths[w]};
            int64_t s = util_mono_us();
            /* the same resolution of relative times and the same query as the API */
            const char *pp[2] = {"-365 days", "now"};
            PGresult *rr = db_query_prepared(
                c, "b_range",
                "SELECT (now() + $1::interval)::text, (CASE WHEN $2 = 'now' THEN now() END)::text",
                2, pp, err, sizeof err);
            char from[48], to[48];
            util_strlcpy(from, PQgetvalue(rr, 0, 0), sizeof from);
            util_strlcpy(to, PQgetvalue(rr, 0, 1), sizeof to);
            PQclear(rr);
            p[2] = from;
            p[3] = to;
            PGresult *h = db_query_prepared(c, "b_hist", HIST_ROLLUP, 5, p, err, sizeof err);
            if (!h) {
                fprintf(stderr, "risk_bench: history: %s\n", err);
                return 1;
            }
            cJSON *j = cJSON_Parse(PQgetvalue(h, 0, 0));
            points[w] = cJSON_GetArraySize(j);
            cJSON_Delete(j);
            PQclear(h);
            q[i] = util_mono_us() - s;
        }
        double m;
        stats(q, 50, &wp50[w], &wp99[w], &m);
    }
    db_release(app.db, c);
    printf("{\"bench\":\"risk_history\",\"rows\":%ld,\"load_s\":%.1f,\"points_1d\":%d,"
           "\"p50_1d_ms\":%.2f,\"p99_1d_ms\":%.2f,\"points_1h\":%d,\"p50_1h_ms\":%.2f,"
           "\"p99_1h_ms\":%.2f}\n",
           rows, load_s, points[0], wp50[0], wp99[0], points[1], wp50[1], wp99[1]);
    db_pool_free(app.db);
    abi_contract_free(va);
    abi_contract_free(ma);
    rpc_client_free(app.rpc);
    if (redis)
        redisFree(redis);
    PQfinish(pg);
    PQclear(must(admin, "DROP DATABASE IF EXISTS risk_bench"));
    PQfinish(admin);
    cJSON_Delete(dc);
    return 0;
}
