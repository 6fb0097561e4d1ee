/* Integration tests of libcommon/migrate and the paimon-migrate binary against the
 * harness PostgreSQL: ordering and idempotence, status output, refusal on changed
 * files, per-file rollback, concurrent runners, and per-service role isolation. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "migrate.h"
#include "util.h"

/* The repository's own migrations: every service and its 0001_init.sql. */
static const char *const SERVICES[] = {"api",      "approval",  "listener",
                                       "notifier", "rebalance", "risk"};
#define NSERVICES (sizeof SERVICES / sizeof SERVICES[0])

static char repo_migrations[1024];

/* ---- helpers ---------------------------------------------------------------------------- */

static const char *run_dir(void)
{
    const char *d = getenv("PAIMON_TEST_RUN_DIR");
    assert_non_null(d);
    return d;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

/* A fresh, empty migrations folder under the run dir; static storage per call site. */
static void tmp_migrations(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/migrate-tests/%s", run_dir(), name);
    nftw(out, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    char parent[1024];
    snprintf(parent, sizeof parent, "%s/migrate-tests", run_dir());
    mkdir(parent, 0755);
    assert_int_equal(mkdir(out, 0755), 0);
}

static void put_file(const char *dir, const char *svc, const char *file, const char *sql)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", dir, svc);
    if (mkdir(p, 0755) != 0)
        assert_int_equal(errno, EEXIST);
    snprintf(p, sizeof p, "%s/%s/%s", dir, svc, file);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(sql, f);
    assert_int_equal(fclose(f), 0);
}

static void del_file(const char *dir, const char *svc, const char *file)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/%s/%s", dir, svc, file);
    assert_int_equal(unlink(p), 0);
}

typedef struct run_result {
    int code;
    char out[8192];
    char errout[4096];
} run_result;

static void slurp(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Starts paimon-migrate with argv (NULL-terminated) and extra "K=V" env entries; returns pid. */
static pid_t spawn_cli(const char *tag, const char *const *args, const char *const *env)
{
    char outp[1024], errp[1024];
    snprintf(outp, sizeof outp, "%s/migrate-tests/%s.out", run_dir(), tag);
    snprintf(errp, sizeof errp, "%s/migrate-tests/%s.err", run_dir(), tag);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0)
            _exit(120);
        dup2(o, 1);
        dup2(e, 2);
        unsetenv("PAIMON_DATABASE_URL");
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        char *argv[32];
        size_t n = 0;
        argv[n++] = (char *)th_bin("paimon-migrate");
        for (size_t i = 0; args[i] && n < 31; i++)
            argv[n++] = (char *)args[i];
        argv[n] = NULL;
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void collect_cli(const char *tag, pid_t pid, run_result *r)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    r->code = WEXITSTATUS(st);
    char p[1024];
    snprintf(p, sizeof p, "%s/migrate-tests/%s.out", run_dir(), tag);
    slurp(p, r->out, sizeof r->out);
    snprintf(p, sizeof p, "%s/migrate-tests/%s.err", run_dir(), tag);
    slurp(p, r->errout, sizeof r->errout);
}

static void run_cli(const char *const *args, const char *const *env, run_result *r)
{
    char parent[1024];
    snprintf(parent, sizeof parent, "%s/migrate-tests", run_dir());
    mkdir(parent, 0755);
    collect_cli("cli", spawn_cli("cli", args, env), r);
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Does a line of `status` output say this file has this state? */
static int status_has(const char *out, const char *svc, const char *file, const char *state)
{
    char want[256];
    const char *line = out;
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < 511 ? len : 511), line);
        char s1[64], s2[128], s3[32];
        if (sscanf(buf, "%63s %127s %31s", s1, s2, s3) == 3 && strcmp(s1, svc) == 0 &&
            strcmp(s2, file) == 0) {
            snprintf(want, sizeof want, "%s", state);
            return strcmp(s3, want) == 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

static migrate_set *load(const char *dir)
{
    char err[UTIL_ERRLEN] = "";
    migrate_set *s = migrate_set_load(dir, NULL, 0, err, sizeof err);
    if (!s)
        fprintf(stderr, "load %s: %s\n", dir, err);
    assert_non_null(s);
    return s;
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static int up(PGconn *c, const char *dir, int *napplied, char *err, size_t errlen)
{
    PQsetNoticeProcessor(c, quiet, NULL);
    migrate_set *s = load(dir);
    int rc = migrate_up(c, s, NULL, napplied, err, errlen);
    migrate_set_free(s);
    return rc;
}

static long long scalar(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static long long scalar(PGconn *c, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return th_pg_scalar(c, sql);
}

/* SQLSTATE of running sql on c ("00000" when it succeeds). */
static void sqlstate_of(PGconn *c, const char *sql, char *state)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        strcpy(state, "00000");
    else if (PQresultErrorField(r, PG_DIAG_SQLSTATE))
        util_strlcpy(state, PQresultErrorField(r, PG_DIAG_SQLSTATE), 6);
    else
        strcpy(state, "?????");
    PQclear(r);
}

static PGconn *connect_as(const char *db_url, const char *role)
{
    /* db_url is postgresql://postgres@127.0.0.1:PORT/DB; swap the user. */
    const char *at = strchr(db_url, '@');
    assert_non_null(at);
    char url[512];
    snprintf(url, sizeof url, "postgresql://%s%s", role, at);
    return th_pg_connect(url);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_repo_migrations_up_is_idempotent(void **state)
{
    (void)state;
    const char *url = th_pg_fresh_db("migrate_repo");
    PGconn *c = th_pg_connect(url);
    PQsetNoticeProcessor(c, quiet, NULL);
    migrate_set *s = load(repo_migrations);
    assert_int_equal(s->nservices, NSERVICES);
    int nfiles = 0;
    for (size_t i = 0; i < s->nservices; i++) {
        assert_string_equal(s->services[i].name, SERVICES[i]);
        assert_true(s->services[i].nfiles >= 1);
        assert_string_equal(s->services[i].files[0].file, "0001_init.sql");
        nfiles += (int)s->services[i].nfiles;
    }
    char err[UTIL_ERRLEN] = "";
    int n = -1;
    assert_int_equal(migrate_up(c, s, NULL, &n, err, sizeof err), 0);
    assert_int_equal(n, nfiles);
    assert_int_equal(scalar(c, "SELECT count(*) FROM public.paimon_migrations"), nfiles);

    /* The bus's table, exactly as specified, owned by each consuming service's role. */
    const char *consumers[] = {"approval", "rebalance", "risk", "notifier"};
    for (size_t i = 0; i < 4; i++) {
        const char *sv = consumers[i];
        assert_int_equal(scalar(c,
                                "SELECT count(*) FROM pg_tables WHERE schemaname = '%s' AND "
                                "tablename = 'processed_messages' AND tableowner = 'paimon_%s'",
                                sv, sv),
                         1);
        assert_int_equal(scalar(c,
                                "SELECT count(*) FROM information_schema.columns WHERE "
                                "table_schema = '%s' AND table_name = 'processed_messages' AND "
                                "is_nullable = 'NO' AND ((column_name IN ('topic','message_id') "
                                "AND data_type = 'text') OR (column_name = 'processed_at' AND "
                                "data_type = 'timestamp with time zone' AND column_default = "
                                "'now()'))",
                                sv),
                         3);
        assert_int_equal(scalar(c,
                                "SELECT count(*) FROM pg_indexes WHERE schemaname = '%s' AND "
                                "indexname = 'processed_messages_processed_at_idx'",
                                sv),
                         1);
        assert_int_equal(scalar(c,
                                "SELECT array_length(conkey, 1) FROM pg_constraint WHERE "
                                "conrelid = '%s.processed_messages'::regclass AND contype = 'p'",
                                sv),
                         2);
    }
    /* Every service's schema, role and history exist, and whatever tables its
     * migrations created belong to its own role. */
    assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE schemaname IN "
                               "('listener','api','approval','rebalance','risk','notifier') "
                               "AND tableowner <> 'paimon_' || schemaname"),
                     0);
    assert_int_equal(scalar(c, "SELECT count(*) FROM pg_namespace n JOIN pg_roles r ON "
                               "r.oid = n.nspowner WHERE n.nspname IN ('listener','api') AND "
                               "r.rolname = 'paimon_' || n.nspname AND r.rolcanlogin"),
                     2);

    /* Second run: nothing to do, nothing changes. */
    long long before = scalar(c, "SELECT extract(epoch FROM max(applied_at)) * 1000000 FROM "
                                 "public.paimon_migrations");
    assert_int_equal(migrate_up(c, s, NULL, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(scalar(c, "SELECT count(*) FROM public.paimon_migrations"), nfiles);
    assert_int_equal(scalar(c, "SELECT extract(epoch FROM max(applied_at)) * 1000000 FROM "
                               "public.paimon_migrations"),
                     before);

    /* The binary agrees: up to date, exit 0. */
    const char *args[] = {"--dir", repo_migrations, "--db", url, "up", NULL};
    run_result r;
    run_cli(args, NULL, &r);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "up to date"));
    assert_int_equal(count_lines_with(r.out, "applied "), 0);
    migrate_set_free(s);
    PQfinish(c);
}

static void test_files_apply_in_numeric_order(void **state)
{
    (void)state;
    char dir[1024];
    tmp_migrations(dir, sizeof dir, "order");
    /* Each file depends on the previous one, and they are written in reverse. */
    put_file(dir, "alpha", "0010_third.sql", "INSERT INTO t (a, b) VALUES (1, 'x');");
    put_file(dir, "alpha", "0002_second.sql", "ALTER TABLE t ADD COLUMN b text;");
    put_file(dir, "alpha", "0001_first.sql", "CREATE TABLE t (a int);");
    put_file(dir, "alpha", "README.md", "not a migration");
    const char *url = th_pg_fresh_db("migrate_order");
    PGconn *c = th_pg_connect(url);
    char err[UTIL_ERRLEN] = "";
    int n = 0;
    assert_int_equal(up(c, dir, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(scalar(c, "SELECT count(*) FROM alpha.t WHERE a = 1 AND b = 'x'"), 1);
    assert_int_equal(scalar(c,
                            "SELECT (string_agg(version::text, ',' ORDER BY applied_at, version) "
                            "= '1,2,10')::int FROM public.paimon_migrations "
                            "WHERE service = 'alpha'"),
                     1);
    assert_int_equal(scalar(c, "SELECT count(*) FROM public.paimon_migrations WHERE service = "
                               "'alpha' AND checksum ~ '^[0-9a-f]{64}$' AND name IN "
                               "('first','second','third')"),
                     3);
    /* A later file arrives: only it is applied. */
    put_file(dir, "alpha", "0011_fourth.sql", "INSERT INTO t (a, b) VALUES (2, 'y');");
    assert_int_equal(up(c, dir, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(scalar(c, "SELECT count(*) FROM alpha.t"), 2);
    /* A pending file numbered below an applied one is refused, not run out of order. */
    put_file(dir, "alpha", "0005_late.sql", "INSERT INTO t (a, b) VALUES (3, 'z');");
    assert_int_equal(up(c, dir, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "alpha/0005_late.sql"));
    assert_int_equal(scalar(c, "SELECT count(*) FROM alpha.t"), 2);
    PQfinish(c);
}

static void test_status_output(void **state)
{
    (void)state;
    char dir[1024];
    tmp_migrations(dir, sizeof dir, "status");
    put_file(dir, "alpha", "0001_init.sql", "CREATE TABLE a (x int);");
    put_file(dir, "alpha", "0002_more.sql", "CREATE TABLE a2 (x int);");
    put_file(dir, "beta", "0001_init.sql", "CREATE TABLE b (x int);");
    const char *url = th_pg_fresh_db("migrate_status");
    const char *st_args[] = {"--dir", dir, "--db", url, "status", NULL};
    run_result r;

    /* Before anything: all pending, and status created nothing. */
    run_cli(st_args, NULL, &r);
    assert_int_equal(r.code, 0);
    assert_true(status_has(r.out, "alpha", "0001_init.sql", "pending"));
    assert_true(status_has(r.out, "alpha", "0002_more.sql", "pending"));
    assert_true(status_has(r.out, "beta", "0001_init.sql", "pending"));
    PGconn *c = th_pg_connect(url);
    assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE tablename = "
                               "'paimon_migrations'"),
                     0);

    /* Apply only beta through the service filter. */
    const char *up_beta[] = {"--dir", dir, "--db", url, "up", "beta", NULL};
    run_cli(up_beta, NULL, &r);
    assert_int_equal(r.code, 0);
    assert_int_equal(count_lines_with(r.out, "applied beta/0001_init.sql"), 1);
    assert_int_equal(count_lines_with(r.out, "alpha"), 0);
    run_cli(st_args, NULL, &r);
    assert_int_equal(r.code, 0);
    assert_true(status_has(r.out, "alpha", "0001_init.sql", "pending"));
    assert_true(status_has(r.out, "beta", "0001_init.sql", "applied"));

    /* The database URL may come from the environment. */
    char envurl[512];
    snprintf(envurl, sizeof envurl, "PAIMON_DATABASE_URL=%s", url);
    const char *env[] = {envurl, NULL};
    const char *up_all[] = {"--dir", dir, "up", NULL};
    run_cli(up_all, env, &r);
    assert_int_equal(r.code, 0);
    assert_int_equal(count_lines_with(r.out, "applied alpha/"), 2);
    run_cli(st_args, NULL, &r);
    assert_int_equal(r.code, 0);
    assert_true(status_has(r.out, "alpha", "0001_init.sql", "applied"));
    assert_true(status_has(r.out, "alpha", "0002_more.sql", "applied"));

    /* Edit an applied file and delete another: status reports both and exits 1. */
    put_file(dir, "alpha", "0001_init.sql", "CREATE TABLE a (x bigint);");
    del_file(dir, "beta", "0001_init.sql");
    run_cli(st_args, NULL, &r);
    assert_int_equal(r.code, 1);
    assert_true(status_has(r.out, "alpha", "0001_init.sql", "CHANGED"));
    assert_true(status_has(r.out, "alpha", "0002_more.sql", "applied"));
    assert_true(status_has(r.out, "beta", "0001_init.sql", "MISSING"));
    assert_non_null(strstr(r.errout, "2 applied file(s)"));
    PQfinish(c);
}

static void test_changed_file_stops_everything(void **state)
{
    (void)state;
    char dir[1024];
    tmp_migrations(dir, sizeof dir, "changed");
    put_file(dir, "alpha", "0001_init.sql", "CREATE TABLE a (x int);");
    put_file(dir, "beta", "0001_init.sql", "CREATE TABLE b (x int);");
    const char *url = th_pg_fresh_db("migrate_changed");
    const char *up_args[] = {"--dir", dir, "--db", url, "up", NULL};
    run_result r;
    run_cli(up_args, NULL, &r);
    assert_int_equal(r.code, 0);

    /* beta's edit is found even though alpha, earlier in order, has pending work. */
    put_file(dir, "alpha", "0002_next.sql", "CREATE TABLE a2 (x int);");
    put_file(dir, "beta", "0001_init.sql", "CREATE TABLE b (x int); -- edited");
    put_file(dir, "beta", "0002_next.sql", "CREATE TABLE b2 (x int);");
    run_cli(up_args, NULL, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.errout, "beta/0001_init.sql"));
    assert_non_null(strstr(r.errout, "changed"));
    assert_int_equal(count_lines_with(r.errout, "\n"), 1); /* one clear line */
    assert_int_equal(count_lines_with(r.out, "applied "), 0);
    PGconn *c = th_pg_connect(url);
    assert_int_equal(scalar(c, "SELECT count(*) FROM public.paimon_migrations"), 2);
    assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE tablename IN ('a2','b2')"), 0);
    /* The library reports the same without touching anything. */
    char err[UTIL_ERRLEN] = "";
    int n = -1;
    assert_int_equal(up(c, dir, &n, err, sizeof err), -1);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "beta/0001_init.sql"));
    /* Putting the original bytes back makes everything pending applicable again. */
    put_file(dir, "beta", "0001_init.sql", "CREATE TABLE b (x int);");
    assert_int_equal(up(c, dir, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE tablename IN ('a2','b2')"), 2);
    PQfinish(c);
}

static void test_failing_file_rolls_back(void **state)
{
    (void)state;
    char dir[1024];
    tmp_migrations(dir, sizeof dir, "failing");
    put_file(dir, "alpha", "0001_ok.sql", "CREATE TABLE t1 (x int); INSERT INTO t1 VALUES (1);");
    put_file(dir, "alpha", "0002_broken.sql",
             "CREATE TABLE t2 (x int);\nINSERT INTO t2 VALUES (1);\nSELECT 1 / 0;\n");
    put_file(dir, "alpha", "0003_after.sql", "CREATE TABLE t3 (x int);");
    const char *url = th_pg_fresh_db("migrate_failing");
    PGconn *c = th_pg_connect(url);
    char err[UTIL_ERRLEN] = "";
    int n = -1;
    assert_int_equal(up(c, dir, &n, err, sizeof err), -1);
    assert_int_equal(n, 1);
    assert_non_null(strstr(err, "alpha/0002_broken.sql"));
    assert_non_null(strstr(err, "22012")); /* division_by_zero */
    assert_null(strchr(err, '\n'));
    assert_int_equal(scalar(c, "SELECT count(*) FROM alpha.t1"), 1);
    assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE schemaname = 'alpha' AND "
                               "tablename IN ('t2','t3')"),
                     0);
    assert_int_equal(scalar(c, "SELECT (string_agg(version::text, ',') = '1')::int FROM "
                               "public.paimon_migrations WHERE service = 'alpha'"),
                     1);
    /* The connection is usable and unlocked afterwards: another session can take the lock. */
    PGconn *c2 = th_pg_connect(url);
    assert_int_equal(scalar(c2, "SELECT pg_try_advisory_lock(%lld)::int", MIGRATE_LOCK_KEY), 1);
    PQfinish(c2);

    /* A file may not end our transaction or change role behind our back. */
    put_file(dir, "alpha", "0002_broken.sql", "CREATE TABLE t2 (x int); RESET ROLE;");
    assert_int_equal(up(c, dir, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "role"));
    assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE tablename = 't2'"), 0);
    put_file(dir, "alpha", "0002_broken.sql", "-- only a comment\n");
    assert_int_equal(up(c, dir, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "no SQL statements"));

    /* Fixed: 0002 and 0003 apply, each with its bookkeeping row. */
    put_file(dir, "alpha", "0002_broken.sql", "CREATE TABLE t2 (x int);");
    assert_int_equal(up(c, dir, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(scalar(c, "SELECT count(*) FROM public.paimon_migrations"), 3);
    PQfinish(c);
}

static void test_two_runners_at_once(void **state)
{
    (void)state;
    char dir[1024];
    tmp_migrations(dir, sizeof dir, "concurrent");
    /* Slow enough that the runners overlap; without the lock the second would hit
     * "already exists" or a duplicate bookkeeping key and exit 1. */
    put_file(dir, "alpha", "0001_init.sql", "SELECT pg_sleep(0.4); CREATE TABLE a (x int);");
    put_file(dir, "alpha", "0002_more.sql", "CREATE TABLE a2 (x int);");
    put_file(dir, "beta", "0001_init.sql", "SELECT pg_sleep(0.2); CREATE TABLE b (x int);");
    const char *url = th_pg_fresh_db("migrate_concurrent");
    const char *args[] = {"--dir", dir, "--db", url, "up", NULL};
    pid_t p1 = spawn_cli("runner1", args, NULL);
    pid_t p2 = spawn_cli("runner2", args, NULL);
    run_result r1, r2;
    collect_cli("runner1", p1, &r1);
    collect_cli("runner2", p2, &r2);
    assert_int_equal(r1.code, 0);
    assert_int_equal(r2.code, 0);
    /* Every file applied exactly once across both runners. */
    const char *files[] = {"applied alpha/0001_init.sql", "applied alpha/0002_more.sql",
                           "applied beta/0001_init.sql"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(count_lines_with(r1.out, files[i]) + count_lines_with(r2.out, files[i]),
                         1);
    /* One did the work; the other found nothing to do. */
    assert_int_equal(
        count_lines_with(r1.out, "up to date") + count_lines_with(r2.out, "up to date"), 1);
    PGconn *c = th_pg_connect(url);
    assert_int_equal(scalar(c, "SELECT count(*) FROM public.paimon_migrations"), 3);
    PQfinish(c);
}

static void test_role_isolation(void **state)
{
    (void)state;
    const char *url = th_pg_fresh_db("migrate_roles");
    PGconn *c = th_pg_connect(url);
    char err[UTIL_ERRLEN] = "";
    int n = 0;
    assert_int_equal(up(c, repo_migrations, &n, err, sizeof err), 0);
    /* A listener table created the way listener migrations will create them. */
    th_pg_exec(c, "BEGIN; SET LOCAL ROLE paimon_listener; "
                  "CREATE TABLE listener.checkpoints_probe (block bigint); "
                  "INSERT INTO listener.checkpoints_probe VALUES (42); COMMIT");

    PGconn *ap = connect_as(url, "paimon_approval");
    char st[6];
    sqlstate_of(ap, "SELECT * FROM listener.checkpoints_probe", st);
    assert_string_equal(st, "42501"); /* insufficient_privilege */
    sqlstate_of(ap, "SELECT * FROM rebalance.processed_messages", st);
    assert_string_equal(st, "42501");
    sqlstate_of(ap, "SELECT * FROM public.paimon_migrations", st);
    assert_string_equal(st, "42501");
    sqlstate_of(ap, "CREATE TABLE public.sneaky (x int)", st);
    assert_string_equal(st, "42501");
    sqlstate_of(ap, "CREATE TABLE listener.sneaky (x int)", st);
    assert_string_equal(st, "42501");
    sqlstate_of(ap, "CREATE SCHEMA sneaky", st);
    assert_string_equal(st, "42501");
    /* Its own schema is fully usable. */
    sqlstate_of(ap,
                "INSERT INTO approval.processed_messages (topic, message_id) VALUES "
                "('chain.events', '1:0xabc:0')",
                st);
    assert_string_equal(st, "00000");
    assert_int_equal(th_pg_scalar(ap, "SELECT count(*) FROM approval.processed_messages"), 1);
    sqlstate_of(ap, "CREATE TABLE approval.scratch (x int); DROP TABLE approval.scratch", st);
    assert_string_equal(st, "00000");
    PQfinish(ap);

    PGconn *li = connect_as(url, "paimon_listener");
    assert_int_equal(th_pg_scalar(li, "SELECT block FROM listener.checkpoints_probe"), 42);
    sqlstate_of(li, "SELECT * FROM approval.processed_messages", st);
    assert_string_equal(st, "42501");
    PQfinish(li);

    /* A stray grant to another schema is taken away by the next run. */
    th_pg_exec(c, "GRANT USAGE ON SCHEMA listener TO paimon_approval");
    assert_int_equal(up(c, repo_migrations, &n, err, sizeof err), 0);
    assert_int_equal(scalar(c, "SELECT has_schema_privilege('paimon_approval', 'listener', "
                               "'USAGE')::int"),
                     0);
    assert_int_equal(scalar(c, "SELECT has_schema_privilege('paimon_approval', 'approval', "
                               "'USAGE,CREATE')::int"),
                     1);
    PQfinish(c);
}

static void test_role_password_from_env(void **state)
{
    (void)state;
    char dir[1024];
    tmp_migrations(dir, sizeof dir, "password");
    put_file(dir, "pwprobe", "0001_init.sql", "CREATE TABLE t (x int);");
    const char *url = th_pg_fresh_db("migrate_password");
    const char *args[] = {"--dir", dir, "--db", url, "up", NULL};
    const char *env[] = {"PAIMON_DB_PASSWORD_PWPROBE=s3cret-Pa55", NULL};
    run_result r;
    run_cli(args, env, &r);
    assert_int_equal(r.code, 0);
    PGconn *c = th_pg_connect(url);
    /* Stored as a SCRAM verifier, never in clear. */
    assert_int_equal(scalar(c, "SELECT count(*) FROM pg_authid WHERE rolname = 'paimon_pwprobe' "
                               "AND rolcanlogin AND rolpassword LIKE 'SCRAM-SHA-256$%%' AND "
                               "position('s3cret' in rolpassword) = 0"),
                     1);
    th_pg_exec(c, "ALTER ROLE paimon_pwprobe PASSWORD NULL");
    PQfinish(c);
}

static void test_cli_usage_and_bad_input(void **state)
{
    (void)state;
    run_result r;
    const char *none[] = {NULL};
    run_cli(none, NULL, &r);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.errout, "missing command"));
    const char *bad_cmd[] = {"--db", "postgresql://x@127.0.0.1:1/x", "down", NULL};
    run_cli(bad_cmd, NULL, &r);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.errout, "unknown command: down"));
    const char *bad_opt[] = {"--frobnicate", "up", NULL};
    run_cli(bad_opt, NULL, &r);
    assert_int_equal(r.code, 2);
    const char *no_db[] = {"up", NULL};
    run_cli(no_db, NULL, &r);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.errout, "PAIMON_DATABASE_URL"));
    const char *help[] = {"--help", NULL};
    run_cli(help, NULL, &r);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "usage:"));

    const char *url = th_pg_fresh_db("migrate_badinput");
    char dir[1024];
    tmp_migrations(dir, sizeof dir, "badinput");
    put_file(dir, "alpha", "0001_a.sql", "CREATE TABLE a (x int);");
    put_file(dir, "alpha", "0001_b.sql", "CREATE TABLE b (x int);");
    const char *args[] = {"--dir", dir, "--db", url, "up", NULL};
    run_cli(args, NULL, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.errout, "same version"));
    del_file(dir, "alpha", "0001_b.sql");
    put_file(dir, "alpha", "2_b.sql", "CREATE TABLE b (x int);");
    run_cli(args, NULL, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.errout, "alpha/2_b.sql"));
    del_file(dir, "alpha", "2_b.sql");
    const char *unknown[] = {"--dir", dir, "--db", url, "up", "nosuch", NULL};
    run_cli(unknown, NULL, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.errout, "unknown service 'nosuch'"));
    /* Nothing reached the database through any of that. */
    PGconn *c = th_pg_connect(url);
    assert_int_equal(scalar(c, "SELECT count(*) FROM pg_namespace WHERE nspname = 'alpha'"), 0);
    PQfinish(c);
    const char *bad_db[] = {"--dir", dir, "--db", "postgresql://nobody@127.0.0.1:1/none",
                            "up",    NULL};
    run_cli(bad_db, NULL, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.errout, "cannot connect"));
    assert_int_equal(count_lines_with(r.errout, "\n"), 1);
}

int main(void)
{
    snprintf(repo_migrations, sizeof repo_migrations, "%s", th_repo_path("migrations"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repo_migrations_up_is_idempotent),
        cmocka_unit_test(test_files_apply_in_numeric_order),
        cmocka_unit_test(test_status_output),
        cmocka_unit_test(test_changed_file_stops_everything),
        cmocka_unit_test(test_failing_file_rolls_back),
        cmocka_unit_test(test_two_runners_at_once),
        cmocka_unit_test(test_role_isolation),
        cmocka_unit_test(test_role_password_from_env),
        cmocka_unit_test(test_cli_usage_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
