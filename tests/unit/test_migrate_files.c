/* Unit tests of libcommon/migrate's file side (no database): name rules, SHA-256,
 * and loading a migrations folder — ordering, filtering and every refusal. */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "migrate.h"
#include "util.h"

static char root[512];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("PAIMON_TEST_RUN_DIR");
    snprintf(root, sizeof root, "%s/migrate-unit-XXXXXX", base && *base ? base : "/tmp");
    char parent[512];
    util_strlcpy(parent, root, sizeof parent);
    *strrchr(parent, '/') = '\0';
    mkdir(parent, 0755);
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void put(const char *rel, const char *content)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    /* create parent folders */
    for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        if (mkdir(p, 0755) != 0)
            assert_int_equal(errno, EEXIST);
        *s = '/';
    }
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    assert_int_equal(fclose(f), 0);
}

static void rm(const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    assert_int_equal(nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void test_parse_filename(void **state)
{
    (void)state;
    int v = 0;
    char name[MIGRATE_NAME_MAX];
    assert_int_equal(migrate_parse_filename("0001_init.sql", &v, name, sizeof name, NULL, 0), 0);
    assert_int_equal(v, 1);
    assert_string_equal(name, "init");
    assert_int_equal(migrate_parse_filename("9999_add_x_2.sql", &v, name, sizeof name, NULL, 0), 0);
    assert_int_equal(v, 9999);
    assert_string_equal(name, "add_x_2");
    assert_int_equal(migrate_parse_filename("0042_a.sql", &v, NULL, 0, NULL, 0), 0);
    assert_int_equal(v, 42);

    const char *bad[] = {"0000_zero.sql", "1_init.sql",    "00001_init.sql", "0001init.sql",
                         "0001_.sql",     "0001_Init.sql", "0001_in-it.sql", "0001_init.SQL",
                         "0001_init.sq",  "abcd_init.sql", "0001_init",      "",
                         "0001_in it.sql"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[UTIL_ERRLEN] = "";
        v = -7;
        assert_int_equal(migrate_parse_filename(bad[i], &v, name, sizeof name, err, sizeof err),
                         -1);
        assert_int_equal(v, -7); /* untouched on failure */
        assert_true(strlen(err) > 0);
    }
    char longname[200];
    memset(longname, 'a', sizeof longname);
    memcpy(longname, "0001_", 5);
    strcpy(longname + 5 + MIGRATE_NAME_MAX, ".sql"); /* name part one too long */
    assert_int_equal(migrate_parse_filename(longname, &v, name, sizeof name, NULL, 0), -1);
    strcpy(longname + 5 + MIGRATE_NAME_MAX - 1, ".sql");
    assert_int_equal(migrate_parse_filename(longname, &v, name, sizeof name, NULL, 0), 0);
    assert_int_equal(strlen(name), MIGRATE_NAME_MAX - 1);
    char small[4];
    assert_int_equal(migrate_parse_filename("0001_init.sql", &v, small, sizeof small, NULL, 0), -1);
}

static void test_service_names(void **state)
{
    (void)state;
    assert_true(migrate_service_name_ok("approval"));
    assert_true(migrate_service_name_ok("risk2"));
    assert_true(migrate_service_name_ok("a_b"));
    assert_false(migrate_service_name_ok(""));
    assert_false(migrate_service_name_ok(NULL));
    assert_false(migrate_service_name_ok("public"));
    assert_false(migrate_service_name_ok("pg_temp"));
    assert_false(migrate_service_name_ok("information_schema"));
    assert_false(migrate_service_name_ok("Approval"));
    assert_false(migrate_service_name_ok("1risk"));
    assert_false(migrate_service_name_ok("_x"));
    assert_false(migrate_service_name_ok("a-b"));
    assert_false(migrate_service_name_ok("a\"b"));
    char n[MIGRATE_SERVICE_MAX + 1];
    memset(n, 'a', sizeof n);
    n[MIGRATE_SERVICE_MAX - 1] = '\0';
    assert_true(migrate_service_name_ok(n)); /* 40 chars */
    n[MIGRATE_SERVICE_MAX - 1] = 'a';
    n[MIGRATE_SERVICE_MAX] = '\0';
    assert_false(migrate_service_name_ok(n)); /* 41 chars */
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[MIGRATE_SHA256_HEX];
    /* FIPS 180-2 test vectors. */
    assert_int_equal(migrate_sha256_hex("abc", 3, hex, NULL, 0), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(migrate_sha256_hex("", 0, hex, NULL, 0), 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_load_orders_and_filters(void **state)
{
    (void)state;
    put("zeta/0010_ten.sql", "SELECT 10;");
    put("zeta/0002_two.sql", "SELECT 2;");
    put("zeta/0001_one.sql", "SELECT 1;");
    put("zeta/README.md", "ignored");
    put("zeta/.0003_hidden.sql", "ignored too");
    put("alpha/0001_init.sql", "SELECT 'a';");
    put("empty_svc/notes.txt", "a service with no migrations yet");
    put("toplevel.txt", "files beside service folders are ignored");
    put(".git/config", "hidden folders are ignored");

    char err[UTIL_ERRLEN] = "";
    migrate_set *s = migrate_set_load(root, NULL, 0, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(s->nservices, 3);
    assert_string_equal(s->services[0].name, "alpha");
    assert_string_equal(s->services[1].name, "empty_svc");
    assert_int_equal(s->services[1].nfiles, 0);
    const migrate_service *z = &s->services[2];
    assert_string_equal(z->name, "zeta");
    assert_int_equal(z->nfiles, 3);
    assert_int_equal(z->files[0].version, 1);
    assert_int_equal(z->files[1].version, 2);
    assert_int_equal(z->files[2].version, 10);
    assert_string_equal(z->files[2].file, "0010_ten.sql");
    assert_string_equal(z->files[2].name, "ten");
    assert_string_equal(z->files[2].sql, "SELECT 10;");
    char hex[MIGRATE_SHA256_HEX];
    migrate_sha256_hex("SELECT 10;", strlen("SELECT 10;"), hex, NULL, 0);
    assert_string_equal(z->files[2].checksum, hex);
    assert_string_not_equal(z->files[0].checksum, z->files[1].checksum);
    migrate_set_free(s);

    const char *only[] = {"zeta"};
    s = migrate_set_load(root, only, 1, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(s->nservices, 1);
    assert_string_equal(s->services[0].name, "zeta");
    migrate_set_free(s);

    const char *unknown[] = {"zeta", "nosuch"};
    assert_null(migrate_set_load(root, unknown, 2, err, sizeof err));
    assert_non_null(strstr(err, "unknown service 'nosuch'"));
    const char *invalid[] = {"../etc"};
    assert_null(migrate_set_load(root, invalid, 1, err, sizeof err));
    assert_non_null(strstr(err, "invalid service name"));
}

static void expect_load_error(const char *needle)
{
    char err[UTIL_ERRLEN] = "";
    migrate_set *s = migrate_set_load(root, NULL, 0, err, sizeof err);
    if (s)
        migrate_set_free(s);
    assert_null(s);
    if (!strstr(err, needle))
        fprintf(stderr, "error was: %s (wanted %s)\n", err, needle);
    assert_non_null(strstr(err, needle));
}

static void test_load_refusals(void **state)
{
    (void)state;
    put("svc/0001_init.sql", "SELECT 1;");
    put("svc/0001_again.sql", "SELECT 2;");
    expect_load_error("same version");
    rm("svc/0001_again.sql");

    put("svc/01_short.sql", "SELECT 1;");
    expect_load_error("svc/01_short.sql");
    rm("svc/01_short.sql");

    put("svc/0002_empty.sql", "");
    expect_load_error("is empty");
    rm("svc/0002_empty.sql");

    put("Bad-Service/0001_init.sql", "SELECT 1;");
    expect_load_error("Bad-Service");
    rm("Bad-Service");

    put("public/0001_init.sql", "SELECT 1;");
    expect_load_error("public");
    rm("public");

    /* A NUL byte would make the executed text differ from the hashed bytes. */
    char p[1024];
    snprintf(p, sizeof p, "%s/svc/0003_nul.sql", root);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fwrite("SELECT 1;\0DROP", 1, 14, f);
    fclose(f);
    expect_load_error("NUL");
    rm("svc/0003_nul.sql");

    char err[UTIL_ERRLEN] = "";
    migrate_set *s = migrate_set_load(root, NULL, 0, err, sizeof err);
    assert_non_null(s); /* clean again */
    migrate_set_free(s);

    snprintf(p, sizeof p, "%s/does-not-exist", root);
    assert_null(migrate_set_load(p, NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    assert_null(migrate_set_load("", NULL, 0, err, sizeof err));
}

/* Shared DDL (migrations/_shared) is spliced in place of "-- include:" lines; the
 * checksum covers the result, so editing shared DDL shows up as a changed file. */
static void test_shared_includes(void **state)
{
    (void)state;
    put("_shared/guard.sql", "CREATE TABLE guard (id int);\n");
    put("svc/0001_init.sql", "-- svc first\n-- include: guard.sql\nSELECT 1;\n");
    char err[UTIL_ERRLEN] = "";
    migrate_set *s = migrate_set_load(root, NULL, 0, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(s->nservices, 1); /* _shared is not a service */
    const migrate_file *f = &s->services[0].files[0];
    assert_string_equal(f->sql, "-- svc first\nCREATE TABLE guard (id int);\nSELECT 1;\n");
    char before[MIGRATE_SHA256_HEX];
    util_strlcpy(before, f->checksum, sizeof before);
    migrate_set_free(s);

    put("_shared/guard.sql", "CREATE TABLE guard (id bigint);\n");
    s = migrate_set_load(root, NULL, 0, err, sizeof err);
    assert_non_null(s);
    assert_string_not_equal(s->services[0].files[0].checksum, before);
    migrate_set_free(s);

    put("svc/0001_init.sql", "-- include: ../../etc/passwd\n");
    expect_load_error("bad include line");
    put("svc/0001_init.sql", "-- include: missing.sql\n");
    expect_load_error("missing.sql");
    put("_shared/nested.sql", "-- include: guard.sql\n");
    put("svc/0001_init.sql", "-- include: nested.sql\n");
    expect_load_error("cannot include");
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(migrate_state_name(MIGRATE_PENDING), "pending");
    assert_string_equal(migrate_state_name(MIGRATE_APPLIED), "applied");
    assert_string_equal(migrate_state_name(MIGRATE_CHANGED), "CHANGED");
    assert_string_equal(migrate_state_name(MIGRATE_MISSING), "MISSING");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_filename),
        cmocka_unit_test(test_service_names),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test_setup_teardown(test_load_orders_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_includes, setup, teardown),
        cmocka_unit_test(test_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
