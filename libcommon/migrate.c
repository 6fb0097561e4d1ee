/* migrate: per-service SQL migrations with checksums and an advisory lock (see migrate.h).
 * Every buffer here is owned by the set or local to a call; PGresults never escape. */
#include "migrate.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define ROLE_PREFIX "paimon_"
#define ROLE_MAX    (sizeof ROLE_PREFIX + MIGRATE_SERVICE_MAX)

const char *migrate_state_name(migrate_state s)
{
    switch (s) {
    case MIGRATE_PENDING:
        return "pending";
    case MIGRATE_APPLIED:
        return "applied";
    case MIGRATE_CHANGED:
        return "CHANGED";
    case MIGRATE_MISSING:
        return "MISSING";
    }
    return "?";
}

int migrate_service_name_ok(const char *s)
{
    if (!s || !(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    size_t n = 0;
    for (const char *p = s; *p; p++, n++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    }
    if (n >= MIGRATE_SERVICE_MAX)
        return 0;
    /* pg_* schemas are reserved by PostgreSQL; public is shared by everyone. */
    if (strncmp(s, "pg_", 3) == 0 || strcmp(s, "public") == 0 ||
        strcmp(s, "information_schema") == 0)
        return 0;
    return 1;
}

int migrate_parse_filename(const char *fname, int *version, char *name, size_t namelen, char *err,
                           size_t errlen)
{
    if (!fname)
        return util_err(err, errlen, "migration file name is NULL");
    size_t n = strlen(fname);
    if (n < 4 + 1 + 1 + 4 || strcmp(fname + n - 4, ".sql") != 0)
        return util_err(err, errlen, "%s: migration files are named NNNN_name.sql", fname);
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (!isdigit((unsigned char)fname[i]))
            return util_err(err, errlen, "%s: name must start with a 4-digit version", fname);
        v = v * 10 + (fname[i] - '0');
    }
    if (fname[4] != '_')
        return util_err(err, errlen, "%s: expected '_' after the 4-digit version", fname);
    if (v == 0)
        return util_err(err, errlen, "%s: version 0000 is not allowed (start at 0001)", fname);
    size_t nlen = n - 5 - 4;
    if (nlen >= MIGRATE_NAME_MAX)
        return util_err(err, errlen, "%s: name part longer than %d characters", fname,
                        MIGRATE_NAME_MAX - 1);
    for (size_t i = 5; i < n - 4; i++) {
        char ch = fname[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return util_err(err, errlen, "%s: name part may only contain [a-z0-9_]", fname);
    }
    if (name) {
        if (namelen <= nlen)
            return util_err(err, errlen, "%s: name buffer too small", fname);
        memcpy(name, fname + 5, nlen);
        name[nlen] = '\0';
    }
    if (version)
        *version = v;
    return 0;
}

int migrate_sha256_hex(const void *data, size_t len, char *hex, char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return util_err(err, errlen, "sha256 failed");
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < mdlen; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * mdlen] = '\0';
    return 0;
}

/* ---- loading ---------------------------------------------------------------------------- */

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_file(const void *a, const void *b)
{
    const migrate_file *x = a, *y = b;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->file, y->file);
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Sorted names of dir's subfolders (want_dirs) or regular files; hidden ones skipped. */
static int list_dir(const char *dir, int want_dirs, char ***out, size_t *nout, char *err,
                    size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return util_err(err, errlen, "cannot open %s: %s", dir, strerror(errno));
    char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, 0) != 0) {
            util_err(err, errlen, "cannot stat %s/%s: %s", dir, e->d_name, strerror(errno));
            closedir(d);
            free_names(v, n);
            return -1;
        }
        if (want_dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, cap * sizeof *v);
            if (!nv)
                abort();
            v = nv;
        }
        v[n++] = util_strdup(e->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_strp);
    *out = v;
    *nout = n;
    return 0;
}

static int read_sql(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return util_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return util_err(err, errlen, "%s is not a regular file", path);
    }
    if ((unsigned long long)st.st_size > MIGRATE_MAX_BYTES) {
        close(fd);
        return util_err(err, errlen, "%s is larger than %u bytes", path, MIGRATE_MAX_BYTES);
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = util_malloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            /* The file grew while we read it; refuse rather than hash a moving target. */
            if (cap > MIGRATE_MAX_BYTES) {
                free(buf);
                close(fd);
                return util_err(err, errlen, "%s is larger than %u bytes", path, MIGRATE_MAX_BYTES);
            }
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            util_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (n == 0) {
        free(buf);
        return util_err(err, errlen, "%s is empty", path);
    }
    if (memchr(buf, '\0', n)) {
        free(buf);
        return util_err(err, errlen, "%s contains a NUL byte", path);
    }
    *out = buf;
    *outlen = n;
    return 0;
}

/* DDL that belongs to a libcommon module (the bus's processed_messages, the outbox's
 * transactions) lives once in <dir>/_shared/<name>.sql; a service's migration pulls
 * it in with a line "-- include: <name>.sql". The checksum covers the expanded text,
 * so editing a shared file that some service already applied is caught like any
 * other change to an applied migration. One level only: shared files cannot include. */
#define INCLUDE_TAG "-- include: "

static int expand_includes(const char *dir, const char *file, char **sql, size_t *len, char *err,
                           size_t errlen)
{
    if (!strstr(*sql, INCLUDE_TAG))
        return 0;
    size_t cap = *len + 1, n = 0;
    char *out = util_malloc(cap);
    for (const char *line = *sql; *line;) {
        const char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line + 1) : strlen(line);
        const char *piece = line;
        size_t plen = ll;
        char *inc = NULL;
        if (strncmp(line, INCLUDE_TAG, strlen(INCLUDE_TAG)) == 0) {
            const char *name = line + strlen(INCLUDE_TAG);
            size_t nl = strcspn(name, " \r\n");
            if (nl < 5 || nl > 64 || strncmp(name + nl - 4, ".sql", 4) != 0 ||
                strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != nl - 4) {
                free(out);
                return util_err(err, errlen, "%s: bad include line (want \"%s<name>.sql\")", file,
                                INCLUDE_TAG);
            }
            char ipath[4096];
            snprintf(ipath, sizeof ipath, "%s/_shared/%.*s", dir, (int)nl, name);
            size_t ilen = 0;
            if (read_sql(ipath, &inc, &ilen, err, errlen) != 0) {
                free(out);
                return -1;
            }
            if (strstr(inc, INCLUDE_TAG)) {
                free(inc);
                free(out);
                return util_err(err, errlen, "%s: shared files cannot include others", ipath);
            }
            piece = inc;
            plen = ilen;
        }
        if (n + plen + 2 > cap) {
            cap = (n + plen + 2) * 2;
            char *grown = realloc(out, cap);
            if (!grown)
                abort();
            out = grown;
        }
        memcpy(out + n, piece, plen);
        n += plen;
        if (inc && plen && piece[plen - 1] != '\n')
            out[n++] = '\n';
        free(inc);
        line += ll;
    }
    out[n] = '\0';
    free(*sql);
    *sql = out;
    *len = n;
    return 0;
}

static int load_service(const char *dir, migrate_service *sv, char *err, size_t errlen)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, sv->name) >= sizeof path)
        return util_err(err, errlen, "path too long: %s/%s", dir, sv->name);
    char **names = NULL;
    size_t nnames = 0;
    if (list_dir(path, 0, &names, &nnames, err, errlen) != 0)
        return -1;
    sv->files = util_calloc(nnames ? nnames : 1, sizeof *sv->files);
    int rc = 0;
    for (size_t i = 0; i < nnames && rc == 0; i++) {
        size_t l = strlen(names[i]);
        /* Only *.sql are migrations; READMEs and editor backups may live beside them. */
        if (l < 4 || strcmp(names[i] + l - 4, ".sql") != 0)
            continue;
        migrate_file *f = &sv->files[sv->nfiles];
        char e2[UTIL_ERRLEN];
        if (migrate_parse_filename(names[i], &f->version, f->name, sizeof f->name, e2, sizeof e2) !=
            0) {
            rc = util_err(err, errlen, "%s/%s", sv->name, e2);
            break;
        }
        util_strlcpy(f->file, names[i], sizeof f->file);
        char fpath[4096];
        if ((size_t)snprintf(fpath, sizeof fpath, "%s/%s", path, names[i]) >= sizeof fpath) {
            rc = util_err(err, errlen, "path too long: %s/%s", path, names[i]);
            break;
        }
        size_t len = 0;
        if (read_sql(fpath, &f->sql, &len, err, errlen) != 0 ||
            expand_includes(dir, fpath, &f->sql, &len, err, errlen) != 0 ||
            migrate_sha256_hex(f->sql, len, f->checksum, err, errlen) != 0) {
            free(f->sql);
            f->sql = NULL;
            rc = -1;
            break;
        }
        sv->nfiles++;
    }
    free_names(names, nnames);
    if (rc != 0)
        return -1;
    if (sv->nfiles > 1)
        qsort(sv->files, sv->nfiles, sizeof *sv->files, cmp_file);
    for (size_t i = 1; i < sv->nfiles; i++) {
        if (sv->files[i].version == sv->files[i - 1].version)
            return util_err(err, errlen, "%s: %s and %s have the same version %04d", sv->name,
                            sv->files[i - 1].file, sv->files[i].file, sv->files[i].version);
    }
    return 0;
}

void migrate_set_free(migrate_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nservices; i++) {
        for (size_t j = 0; j < s->services[i].nfiles; j++)
            free(s->services[i].files[j].sql);
        free(s->services[i].files);
    }
    free(s->services);
    free(s);
}

migrate_set *migrate_set_load(const char *dir, const char *const *only, size_t nonly, char *err,
                              size_t errlen)
{
    if (!dir || !*dir) {
        util_err(err, errlen, "migrations directory is empty");
        return NULL;
    }
    for (size_t i = 0; i < nonly; i++) {
        if (!migrate_service_name_ok(only[i])) {
            util_err(err, errlen, "invalid service name '%s'", only[i] ? only[i] : "(null)");
            return NULL;
        }
    }
    char **names = NULL;
    size_t nnames = 0;
    if (list_dir(dir, 1, &names, &nnames, err, errlen) != 0)
        return NULL;
    migrate_set *s = util_calloc(1, sizeof *s);
    s->services = util_calloc(nnames ? nnames : 1, sizeof *s->services);
    for (size_t i = 0; i < nnames; i++) {
        if (names[i][0] == '_')
            continue; /* _shared: DDL included by services, not a service */
        if (!migrate_service_name_ok(names[i])) {
            util_err(err, errlen,
                     "%s/%s: service folder names must match [a-z][a-z0-9_]{0,39} "
                     "(not public or pg_*)",
                     dir, names[i]);
            goto fail;
        }
        int keep = nonly == 0;
        for (size_t j = 0; j < nonly && !keep; j++)
            keep = strcmp(only[j], names[i]) == 0;
        if (!keep)
            continue;
        migrate_service *sv = &s->services[s->nservices++];
        util_strlcpy(sv->name, names[i], sizeof sv->name);
        if (load_service(dir, sv, err, errlen) != 0)
            goto fail;
    }
    for (size_t j = 0; j < nonly; j++) {
        int found = 0;
        for (size_t i = 0; i < s->nservices && !found; i++)
            found = strcmp(s->services[i].name, only[j]) == 0;
        if (!found) {
            util_err(err, errlen, "unknown service '%s': no folder %s/%s", only[j], dir, only[j]);
            goto fail;
        }
    }
    free_names(names, nnames);
    return s;
fail:
    free_names(names, nnames);
    migrate_set_free(s);
    return NULL;
}

/* ---- database helpers ------------------------------------------------------------------- */

/* One-line reason from a failed result (primary message + SQLSTATE), else the connection's. */
static int pg_fail(PGconn *c, const PGresult *r, const char *what, char *err, size_t errlen)
{
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char buf[UTIL_ERRLEN];
    if (!msg) {
        if (r && PQresultStatus(r) == PGRES_EMPTY_QUERY)
            msg = "contains no SQL statements";
        else
            msg = PQerrorMessage(c);
    }
    util_strlcpy(buf, msg && *msg ? msg : "unknown error", sizeof buf);
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    if (state)
        return util_err(err, errlen, "%s: %s (SQLSTATE %s)", what, buf, state);
    return util_err(err, errlen, "%s: %s", what, buf);
}

static int exec_cmd(PGconn *c, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(c, r, what, err, errlen);
    PQclear(r);
    return rc;
}

static PGresult *query(PGconn *c, const char *sql, int nparams, const char *const *params,
                       const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        pg_fail(c, r, what, err, errlen);
        PQclear(r);
        return NULL;
    }
    return r;
}

static void rollback_if_open(PGconn *c)
{
    if (PQtransactionStatus(c) != PQTRANS_IDLE && PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, "ROLLBACK");
        PQclear(r);
    }
}

static int table_exists(PGconn *c, int *exists, char *err, size_t errlen)
{
    PGresult *r = query(c, "SELECT to_regclass('public.paimon_migrations') IS NOT NULL", 0, NULL,
                        "check bookkeeping table", err, errlen);
    if (!r)
        return -1;
    *exists = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return 0;
}

/* ---- comparing disk with the bookkeeping table ------------------------------------------ */

typedef struct entry {
    migrate_state state;
    int version;
    const migrate_file *f; /* NULL for MISSING */
    char file[MIGRATE_FILE_MAX];
    char applied_at[40];
    char recorded_checksum[MIGRATE_SHA256_HEX];
} entry;

/* Merges a service's files with its applied rows, both ordered by version. *out owned. */
static int service_entries(PGconn *c, int have_table, const migrate_service *sv, entry **out,
                           size_t *nout, char *err, size_t errlen)
{
    PGresult *r = NULL;
    int nrows = 0;
    if (have_table) {
        const char *p[1] = {sv->name};
        r = query(c,
                  "SELECT version, name, checksum, "
                  "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                  "FROM public.paimon_migrations WHERE service = $1 ORDER BY version",
                  1, p, "read applied migrations", err, errlen);
        if (!r)
            return -1;
        nrows = PQntuples(r);
    }
    entry *v = util_calloc(sv->nfiles + (size_t)nrows + 1, sizeof *v);
    size_t n = 0, i = 0;
    int j = 0;
    while (i < sv->nfiles || j < nrows) {
        int rv = j < nrows ? atoi(PQgetvalue(r, j, 0)) : 0;
        entry *e = &v[n++];
        if (i < sv->nfiles && (j >= nrows || sv->files[i].version < rv)) {
            const migrate_file *f = &sv->files[i++];
            e->state = MIGRATE_PENDING;
            e->version = f->version;
            e->f = f;
            util_strlcpy(e->file, f->file, sizeof e->file);
            continue;
        }
        const char *rname = PQgetvalue(r, j, 1);
        util_strlcpy(e->applied_at, PQgetvalue(r, j, 3), sizeof e->applied_at);
        util_strlcpy(e->recorded_checksum, PQgetvalue(r, j, 2), sizeof e->recorded_checksum);
        e->version = rv;
        if (i < sv->nfiles && sv->files[i].version == rv) {
            const migrate_file *f = &sv->files[i++];
            e->f = f;
            util_strlcpy(e->file, f->file, sizeof e->file);
            e->state = strcmp(f->checksum, e->recorded_checksum) == 0 && strcmp(f->name, rname) == 0
                           ? MIGRATE_APPLIED
                           : MIGRATE_CHANGED;
        } else {
            e->state = MIGRATE_MISSING;
            snprintf(e->file, sizeof e->file, "%04d_%.100s.sql", rv, rname);
        }
        j++;
    }
    PQclear(r);
    *out = v;
    *nout = n;
    return 0;
}

int migrate_status(PGconn *c, const migrate_set *s, migrate_status_fn fn, void *ud,
                   size_t *nproblems, char *err, size_t errlen)
{
    if (!c || !s)
        return util_err(err, errlen, "migrate_status: NULL argument");
    if (nproblems)
        *nproblems = 0;
    int have = 0;
    if (table_exists(c, &have, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < s->nservices; i++) {
        entry *v = NULL;
        size_t n = 0;
        if (service_entries(c, have, &s->services[i], &v, &n, err, errlen) != 0)
            return -1;
        for (size_t k = 0; k < n; k++) {
            if (nproblems && (v[k].state == MIGRATE_CHANGED || v[k].state == MIGRATE_MISSING))
                (*nproblems)++;
            if (fn)
                fn(ud, s->services[i].name, v[k].file, v[k].state,
                   v[k].state == MIGRATE_PENDING ? NULL : v[k].applied_at);
        }
        free(v);
    }
    return 0;
}

/* Refuses to apply anything if any service's history disagrees with the disk. */
static int verify_all(PGconn *c, const migrate_set *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->nservices; i++) {
        const migrate_service *sv = &s->services[i];
        entry *v = NULL;
        size_t n = 0;
        if (service_entries(c, 1, sv, &v, &n, err, errlen) != 0)
            return -1;
        int rc = 0;
        const entry *last_applied = NULL;
        for (size_t k = 0; k < n && rc == 0; k++) {
            const entry *e = &v[k];
            if (e->state == MIGRATE_CHANGED)
                rc = util_err(err, errlen,
                              "%s/%s was changed after it was applied (recorded sha256 %.12s..., "
                              "now %.12s...); restore it and add a new migration instead",
                              sv->name, e->file, e->recorded_checksum, e->f->checksum);
            else if (e->state == MIGRATE_MISSING)
                rc = util_err(err, errlen, "%s/%s was applied but is missing from disk", sv->name,
                              e->file);
            else if (e->state == MIGRATE_APPLIED)
                last_applied = e;
        }
        /* A pending file numbered below an applied one would run out of order. */
        for (size_t k = 0; k < n && rc == 0 && last_applied; k++) {
            if (v[k].state == MIGRATE_PENDING && v[k].version < last_applied->version)
                rc = util_err(err, errlen,
                              "%s/%s is pending but older than the applied %s; renumber it",
                              sv->name, v[k].file, last_applied->file);
        }
        free(v);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int bootstrap(PGconn *c, char *err, size_t errlen)
{
    /* Service roles get nothing from PUBLIC: not the bookkeeping table, not CREATE on
     * public (PostgreSQL 15 already withholds that; older servers do not). */
    static const char sql[] =
        "BEGIN;"
        "CREATE TABLE IF NOT EXISTS public.paimon_migrations ("
        "  service     text        NOT NULL,"
        "  version     integer     NOT NULL CHECK (version BETWEEN 1 AND 9999),"
        "  name        text        NOT NULL,"
        "  checksum    text        NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),"
        "  applied_at  timestamptz NOT NULL DEFAULT now(),"
        "  applied_by  text        NOT NULL DEFAULT session_user,"
        "  duration_ms integer     NOT NULL DEFAULT 0,"
        "  PRIMARY KEY (service, version));"
        "REVOKE ALL ON TABLE public.paimon_migrations FROM PUBLIC;"
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
        "COMMIT;";
    if (exec_cmd(c, sql, "create public.paimon_migrations", err, errlen) != 0) {
        rollback_if_open(c);
        return -1;
    }
    return 0;
}

static int ensure_role_schema(PGconn *c, const char *svc, char *err, size_t errlen)
{
    char role[ROLE_MAX], sql[1024], what[128];
    snprintf(role, sizeof role, ROLE_PREFIX "%s", svc);
    snprintf(what, sizeof what, "set up schema %s and role %s", svc, role);

    /* The verifier is computed client-side so the clear password never reaches server logs. */
    char envname[64 + MIGRATE_SERVICE_MAX];
    int k = snprintf(envname, sizeof envname, "PAIMON_DB_PASSWORD_");
    for (const char *p = svc; *p && (size_t)k + 1 < sizeof envname; p++)
        envname[k++] = (char)toupper((unsigned char)*p);
    envname[k] = '\0';
    const char *pw = getenv(envname);
    char *verifier = NULL;
    if (pw && *pw) {
        verifier = PQencryptPasswordConn(c, pw, role, NULL);
        if (!verifier)
            return pg_fail(c, NULL, what, err, errlen);
    }

    if (exec_cmd(c, "BEGIN", what, err, errlen) != 0)
        goto fail;
    /* Roles are cluster-wide: another database's runner may create it concurrently. */
    snprintf(sql, sizeof sql,
             "DO $$BEGIN CREATE ROLE \"%s\" LOGIN; "
             "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$",
             role);
    if (exec_cmd(c, sql, what, err, errlen) != 0)
        goto fail;
    const char *p[1] = {role};
    PGresult *r = query(c,
                        "SELECT rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb "
                        "FROM pg_roles WHERE rolname = $1",
                        1, p, what, err, errlen);
    if (!r)
        goto fail;
    int too_mighty = PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "f") != 0;
    PQclear(r);
    if (too_mighty) {
        util_err(err, errlen,
                 "%s: role %s has SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB; a service role "
                 "must not",
                 what, role);
        goto fail;
    }
    snprintf(sql, sizeof sql, "ALTER ROLE \"%s\" LOGIN", role);
    if (exec_cmd(c, sql, what, err, errlen) != 0)
        goto fail;
    if (verifier) {
        char *lit = PQescapeLiteral(c, verifier, strlen(verifier));
        if (!lit) {
            pg_fail(c, NULL, what, err, errlen);
            goto fail;
        }
        char *q = util_malloc(strlen(lit) + 64 + sizeof role);
        sprintf(q, "ALTER ROLE \"%s\" PASSWORD %s", role, lit);
        PQfreemem(lit);
        int rc = exec_cmd(c, q, what, err, errlen);
        free(q);
        if (rc != 0)
            goto fail;
    }
    /* SET ROLE needs membership unless we are a superuser. */
    const char *su = PQparameterStatus(c, "is_superuser");
    if (!su || strcmp(su, "on") != 0) {
        snprintf(sql, sizeof sql, "GRANT \"%s\" TO CURRENT_USER", role);
        if (exec_cmd(c, sql, what, err, errlen) != 0)
            goto fail;
    }
    /* The role owns its schema (so its migrations may also COMMENT ON / ALTER it), and
     * nobody else gets anything on it. */
    snprintf(sql, sizeof sql,
             "CREATE SCHEMA IF NOT EXISTS \"%s\" AUTHORIZATION \"%s\";"
             "ALTER SCHEMA \"%s\" OWNER TO \"%s\";"
             "REVOKE ALL ON SCHEMA \"%s\" FROM PUBLIC;"
             "GRANT USAGE, CREATE ON SCHEMA \"%s\" TO \"%s\"",
             svc, role, svc, role, svc, svc, role);
    if (exec_cmd(c, sql, what, err, errlen) != 0)
        goto fail;
    /* Whatever this role was ever granted on another schema goes: it owns one schema only. */
    const char *p2[2] = {role, svc};
    r = query(c,
              "SELECT DISTINCT n.nspname FROM pg_namespace n, aclexplode(n.nspacl) a "
              "WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1) "
              "AND n.nspname <> $2 AND n.nspowner <> a.grantee",
              2, p2, what, err, errlen);
    if (!r)
        goto fail;
    for (int i = 0; i < PQntuples(r); i++) {
        char *id = PQescapeIdentifier(c, PQgetvalue(r, i, 0), strlen(PQgetvalue(r, i, 0)));
        if (!id) {
            PQclear(r);
            pg_fail(c, NULL, what, err, errlen);
            goto fail;
        }
        snprintf(sql, sizeof sql, "REVOKE ALL ON SCHEMA %s FROM \"%s\"", id, role);
        PQfreemem(id);
        if (exec_cmd(c, sql, what, err, errlen) != 0) {
            PQclear(r);
            goto fail;
        }
    }
    PQclear(r);
    if (exec_cmd(c, "COMMIT", what, err, errlen) != 0)
        goto fail;
    if (verifier)
        PQfreemem(verifier);
    return 0;
fail:
    rollback_if_open(c);
    if (verifier)
        PQfreemem(verifier);
    return -1;
}

static int apply_file(PGconn *c, const migrate_service *sv, const migrate_file *f,
                      int64_t *elapsed_ms, char *err, size_t errlen)
{
    char what[MIGRATE_SERVICE_MAX + MIGRATE_FILE_MAX + 2], sql[256];
    snprintf(what, sizeof what, "%s/%s", sv->name, f->file);
    int64_t t0 = util_mono_ms();
    snprintf(sql, sizeof sql,
             "BEGIN; SET LOCAL ROLE \"" ROLE_PREFIX "%s\"; SET LOCAL search_path TO \"%s\"",
             sv->name, sv->name);
    if (exec_cmd(c, sql, what, err, errlen) != 0)
        goto fail;
    PGresult *r = PQexec(c, f->sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pg_fail(c, r, what, err, errlen);
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    /* The file must leave our transaction and role alone, or its bookkeeping row
     * would no longer commit atomically with it, or it could act beyond its schema. */
    if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
        util_err(err, errlen, "%s: ends the transaction itself (no COMMIT/ROLLBACK in migrations)",
                 what);
        goto fail;
    }
    r = query(c, "SELECT current_user", 0, NULL, what, err, errlen);
    if (!r)
        goto fail;
    int role_ok = PQntuples(r) == 1 && strncmp(PQgetvalue(r, 0, 0), ROLE_PREFIX, 7) == 0 &&
                  strcmp(PQgetvalue(r, 0, 0) + 7, sv->name) == 0;
    PQclear(r);
    if (!role_ok) {
        util_err(err, errlen, "%s: changes the current role (no SET ROLE in migrations)", what);
        goto fail;
    }
    if (exec_cmd(c, "RESET ROLE", what, err, errlen) != 0)
        goto fail;
    char ver[16], dur[32];
    int64_t ms = util_mono_ms() - t0;
    snprintf(ver, sizeof ver, "%d", f->version);
    snprintf(dur, sizeof dur, "%lld", (long long)(ms > 2000000000 ? 2000000000 : ms));
    const char *p[5] = {sv->name, ver, f->name, f->checksum, dur};
    r = query(c,
              "INSERT INTO public.paimon_migrations (service, version, name, checksum, "
              "duration_ms) VALUES ($1, $2::int, $3, $4, $5::int)",
              5, p, what, err, errlen);
    if (!r)
        goto fail;
    PQclear(r);
    if (exec_cmd(c, "COMMIT", what, err, errlen) != 0)
        goto fail;
    *elapsed_ms = util_mono_ms() - t0;
    return 0;
fail:
    rollback_if_open(c);
    return -1;
}

static int lock_take(PGconn *c, const migrate_opts *o, char *err, size_t errlen)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%lld)", (long long)MIGRATE_LOCK_KEY);
    PGresult *r = query(c, sql, 0, NULL, "take migration lock", err, errlen);
    if (!r)
        return -1;
    int got = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (got)
        return 0;
    if (o && o->on_wait)
        o->on_wait(o->ud);
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", (long long)MIGRATE_LOCK_KEY);
    r = query(c, sql, 0, NULL, "wait for migration lock", err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static void lock_release(PGconn *c)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", (long long)MIGRATE_LOCK_KEY);
    PGresult *r = PQexec(c, sql);
    PQclear(r);
}

int migrate_up(PGconn *c, const migrate_set *s, const migrate_opts *opts, int *napplied, char *err,
               size_t errlen)
{
    if (napplied)
        *napplied = 0;
    if (!c || !s)
        return util_err(err, errlen, "migrate_up: NULL argument");
    if (PQstatus(c) != CONNECTION_OK)
        return util_err(err, errlen, "migrate_up: connection is not open");
    if (PQtransactionStatus(c) != PQTRANS_IDLE)
        return util_err(err, errlen, "migrate_up: connection is inside a transaction");
    int rc = -1;
    if (lock_take(c, opts, err, errlen) != 0)
        return -1;
    if (bootstrap(c, err, errlen) != 0 || verify_all(c, s, err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < s->nservices; i++) {
        const migrate_service *sv = &s->services[i];
        if (ensure_role_schema(c, sv->name, err, errlen) != 0)
            goto out;
        entry *v = NULL;
        size_t n = 0;
        if (service_entries(c, 1, sv, &v, &n, err, errlen) != 0)
            goto out;
        for (size_t k = 0; k < n; k++) {
            if (v[k].state != MIGRATE_PENDING)
                continue;
            int64_t ms = 0;
            if (apply_file(c, sv, v[k].f, &ms, err, errlen) != 0) {
                free(v);
                goto out;
            }
            if (napplied)
                (*napplied)++;
            if (opts && opts->on_applied)
                opts->on_applied(opts->ud, sv->name, v[k].file, ms);
        }
        free(v);
    }
    rc = 0;
out:
    rollback_if_open(c);
    lock_release(c);
    return rc;
}
