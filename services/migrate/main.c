/* paimon-migrate: applies or reports the per-service SQL migrations (libcommon/migrate.h).
 *   paimon-migrate [--dir DIR] [--db URL] up|status [service...]
 * Exit codes: 0 ok, 1 error (including CHANGED / MISSING files in `status`), 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "migrate.h"
#include "util.h"

#define PROG "paimon-migrate"

static void usage(FILE *to)
{
    fprintf(to,
            "usage: " PROG " [--dir DIR] [--db URL] up|status [service...]\n"
            "  --dir DIR   migrations folder, one subfolder per service (default: migrations)\n"
            "  --db URL    PostgreSQL URL (default: $PAIMON_DATABASE_URL)\n"
            "  up          apply pending migrations (advisory-locked, one transaction per file)\n"
            "  status      list every file as applied / pending / CHANGED / MISSING\n"
            "exit: 0 ok, 1 error or CHANGED/MISSING files, 2 usage\n");
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, PROG ": %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    usage(stderr);
    return 2;
}

static void quiet_notices(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static void on_applied(void *ud, const char *service, const char *file, int64_t ms)
{
    (void)ud;
    printf("applied %s/%s (%lld ms)\n", service, file, (long long)ms);
    fflush(stdout);
}

static void on_wait(void *ud)
{
    (void)ud;
    fprintf(stderr, PROG ": another runner holds the migration lock; waiting\n");
}

static void on_status(void *ud, const char *service, const char *file, migrate_state st,
                      const char *applied_at)
{
    (void)ud;
    printf("%-12s %-40s %-8s %s\n", service, file, migrate_state_name(st),
           applied_at ? applied_at : "");
}

int main(int argc, char **argv)
{
    const char *dir = "migrations", *url = NULL, *cmd = NULL;
    const char **services = util_calloc((size_t)argc, sizeof *services);
    size_t nservices = 0;
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--dir") == 0 || strcmp(a, "--db") == 0) {
            if (i + 1 >= argc) {
                rc = usage_error("missing value after", a);
                goto out;
            }
            if (strcmp(a, "--dir") == 0)
                dir = argv[++i];
            else
                url = argv[++i];
        } else if (strncmp(a, "--dir=", 6) == 0) {
            dir = a + 6;
        } else if (strncmp(a, "--db=", 5) == 0) {
            url = a + 5;
        } else if (a[0] == '-') {
            rc = usage_error("unknown option", a);
            goto out;
        } else if (!cmd) {
            cmd = a;
        } else {
            services[nservices++] = a;
        }
    }
    if (!cmd) {
        rc = usage_error("missing command (up or status)", NULL);
        goto out;
    }
    if (strcmp(cmd, "up") != 0 && strcmp(cmd, "status") != 0) {
        rc = usage_error("unknown command", cmd);
        goto out;
    }
    if (!*dir) {
        rc = usage_error("--dir is empty", NULL);
        goto out;
    }
    if (!url) {
        url = getenv("PAIMON_DATABASE_URL");
    }
    if (!url || !*url) {
        rc = usage_error("no database: pass --db URL or set PAIMON_DATABASE_URL", NULL);
        goto out;
    }

    rc = 1;
    char err[UTIL_ERRLEN];
    migrate_set *set = migrate_set_load(dir, services, nservices, err, sizeof err);
    if (!set) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {url, PROG, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[UTIL_ERRLEN];
        util_strlcpy(msg, PQerrorMessage(c), sizeof msg);
        msg[strcspn(msg, "\n")] = '\0';
        fprintf(stderr, PROG ": cannot connect to the database: %s\n", msg);
        PQfinish(c);
        migrate_set_free(set);
        goto out;
    }
    PQsetNoticeProcessor(c, quiet_notices, NULL);
    if (strcmp(cmd, "up") == 0) {
        migrate_opts o = {.on_applied = on_applied, .on_wait = on_wait, .ud = NULL};
        int n = 0;
        if (migrate_up(c, set, &o, &n, err, sizeof err) != 0) {
            fprintf(stderr, PROG ": %s\n", err);
            if (n > 0)
                fprintf(stderr, PROG ": %d file(s) were applied before the error\n", n);
        } else {
            if (n == 0)
                printf("up to date: nothing to apply\n");
            else
                printf("applied %d file(s)\n", n);
            rc = 0;
        }
    } else {
        size_t problems = 0;
        if (migrate_status(c, set, on_status, NULL, &problems, err, sizeof err) != 0) {
            fprintf(stderr, PROG ": %s\n", err);
        } else if (problems) {
            fprintf(stderr, PROG ": %zu applied file(s) CHANGED or MISSING on disk\n", problems);
        } else {
            rc = 0;
        }
    }
    PQfinish(c);
    migrate_set_free(set);
out:
    free(services);
    fflush(stdout);
    return rc;
}
