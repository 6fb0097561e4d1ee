/* test_k8s_manifests: the deployment artefacts checked offline. Runs
 * deploy/k8s-validate.mjs (node from PATH, repo from PAIMON_REPO) on the real k8s/ and
 * deploy/ folders and expects it to pass, then on copies broken in one place each (a
 * schema violation, a Service selecting nothing, a missing kustomization resource, an
 * internal port opened to every pod, a compose daemon not waiting for the migrations)
 * and expects each to be rejected with its message. deploy/docker/check-deps.sh is
 * checked the same way on the real Dockerfile and on copies with a runtime package
 * missing or superfluous. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

#define OUT_MAX 65536

static struct {
    char tmp[256];
    char validator[1024];
    char checker[1024];
} g;

/* Runs cmd through the shell with stderr folded into out; returns the exit status
 * (or -1 when the command could not run / was killed). */
static int run(const char *cmd, char *out, size_t outlen)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    while (fgetc(p) != EOF) {}
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(len >= 0);
    char *buf = util_malloc((size_t)len + 1);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* Replaces the first occurrence of `from` in the file (which must contain it). */
static void edit(const char *path, const char *from, const char *to)
{
    char *s = slurp(path);
    char *at = strstr(s, from);
    if (!at)
        fail_msg("%s does not contain \"%s\"", path, from);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(s, 1, (size_t)(at - s), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
    free(s);
}

/* Fresh copies of k8s/ and deploy/{compose,prometheus,docker} under g.tmp. */
static int setup(void **state)
{
    (void)state;
    char cmd[4096], out[4096];
    snprintf(g.tmp, sizeof g.tmp, "/tmp/paimon-k8s-test-XXXXXX");
    if (!mkdtemp(g.tmp))
        return -1;
    /* th_repo_path returns static storage: one path per command. */
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s/k8s' && mkdir -p '%s/deploy'", th_repo_path("k8s"),
             g.tmp, g.tmp);
    if (run(cmd, out, sizeof out) != 0)
        return -1;
    static const char *const sub[] = {"deploy/compose", "deploy/prometheus", "deploy/docker"};
    for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
        snprintf(cmd, sizeof cmd, "cp -r '%s' '%s/deploy/'", th_repo_path(sub[i]), g.tmp);
        if (run(cmd, out, sizeof out) != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512], out[1024];
    if (g.tmp[0] && strncmp(g.tmp, "/tmp/paimon-k8s-test-", 21) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g.tmp);
        run(cmd, out, sizeof out);
    }
    g.tmp[0] = '\0';
    return 0;
}

static int validate_copy(char *out)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "node '%s' --k8s '%s/k8s' --deploy '%s/deploy'", g.validator, g.tmp,
             g.tmp);
    return run(cmd, out, OUT_MAX);
}

static char *tmp_path(const char *rel)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", g.tmp, rel);
    return p;
}

static void expect_rejected(const char *needle)
{
    char *out = util_malloc(OUT_MAX);
    int rc = validate_copy(out);
    if (rc != 1 || !strstr(out, needle))
        fail_msg("expected exit 1 with \"%s\", got %d:\n%s", needle, rc, out);
    free(out);
}

static void test_real_tree_passes(void **state)
{
    (void)state;
    char *out = util_malloc(OUT_MAX);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "node '%s' --k8s '%s' --deploy '%s'", g.validator,
             th_repo_path("k8s"), th_repo_path("deploy"));
    int rc = run(cmd, out, OUT_MAX);
    if (rc != 0)
        fail_msg("k8s-validate failed (%d):\n%s", rc, out);
    assert_non_null(strstr(out, "k8s-validate: ok"));
    /* Both overlays and their migration Jobs were built, not just parsed. */
    assert_non_null(strstr(out, "overlays/prod ("));
    assert_non_null(strstr(out, "overlays/local ("));
    assert_non_null(strstr(out, "overlays/prod/migrate ("));
    free(out);
}

static void test_unmodified_copy_passes(void **state)
{
    (void)state;
    char *out = util_malloc(OUT_MAX);
    int rc = validate_copy(out);
    if (rc != 0)
        fail_msg("the copy should validate like the original (%d):\n%s", rc, out);
    free(out);
}

static void test_schema_violation_rejected(void **state)
{
    (void)state;
    edit(tmp_path("k8s/base/workloads/risk.yaml"), "containerPort: 8084",
         "containerPort: \"8084\"");
    expect_rejected("containerPort must be integer");
}

static void test_service_selecting_nothing_rejected(void **state)
{
    (void)state;
    edit(tmp_path("k8s/base/services.yaml"), "selector: {app.kubernetes.io/name: notifier,",
         "selector: {app.kubernetes.io/name: notifer,");
    expect_rejected("Service/notifier: selector");
}

static void test_missing_resource_rejected(void **state)
{
    (void)state;
    assert_int_equal(unlink(tmp_path("k8s/base/pdb.yaml")), 0);
    expect_rejected("resource pdb.yaml does not exist");
}

static void test_internal_port_opened_rejected(void **state)
{
    (void)state;
    /* The internal ports' only in-namespace source becomes every paimon pod. */
    edit(tmp_path("k8s/base/networkpolicies.yaml"),
         "    - from:\n        - podSelector:\n            matchLabels: {app.kubernetes.io/name: "
         "api, app.kubernetes.io/part-of: paimon}",
         "    - from:\n        - podSelector:\n            matchLabels: "
         "{app.kubernetes.io/part-of: paimon}");
    expect_rejected("only the api may");
}

static void test_probe_on_undeclared_port_rejected(void **state)
{
    (void)state;
    edit(tmp_path("k8s/base/workloads/approval.yaml"),
         "readinessProbe:\n            httpGet:\n              path: /health/ready\n"
         "              port: http",
         "readinessProbe:\n            httpGet:\n              path: /health/ready\n"
         "              port: 9090");
    expect_rejected("readinessProbe port 9090 is not a declared container port");
}

static void test_compose_without_migrate_gate_rejected(void **state)
{
    (void)state;
    edit(tmp_path("deploy/compose/docker-compose.yml"), "condition: service_completed_successfully",
         "condition: service_started");
    expect_rejected("must wait for migrate");
}

static void test_dockerfile_packages(void **state)
{
    (void)state;
    char out[8192], cmd[4096];
    int rc = run(g.checker, out, sizeof out);
    if (rc != 0)
        fail_msg("check-deps failed on the real Dockerfile (%d):\n%s", rc, out);
    assert_non_null(strstr(out, "check-deps: ok"));

    /* A runtime library dropped: the image would fail to start. */
    char *df = tmp_path("deploy/docker/Dockerfile");
    char dfcopy[1024];
    util_strlcpy(dfcopy, df, sizeof dfcopy);
    edit(dfcopy, " libpq5 ", " ");
    snprintf(cmd, sizeof cmd, "'%s' '%s'", g.checker, dfcopy);
    rc = run(cmd, out, sizeof out);
    if (rc != 1 || !strstr(out, "RUNTIME_PKGS lacks: libpq5"))
        fail_msg("missing libpq5 not caught (%d):\n%s", rc, out);

    /* A -dev package in the runtime image is caught as superfluous. */
    edit(dfcopy, " libcjson1 ", " libpq5 libcjson1 libcjson-dev ");
    rc = run(cmd, out, sizeof out);
    if (rc != 1 || !strstr(out, "has packages nothing needs: libcjson-dev"))
        fail_msg("superfluous libcjson-dev not caught (%d):\n%s", rc, out);
}

int main(void)
{
    const char *repo = getenv("PAIMON_REPO");
    if (!repo) {
        fprintf(stderr, "PAIMON_REPO is not set (run through tests/run.sh)\n");
        return 1;
    }
    snprintf(g.validator, sizeof g.validator, "%s", th_repo_path("deploy/k8s-validate.mjs"));
    snprintf(g.checker, sizeof g.checker, "%s", th_repo_path("deploy/docker/check-deps.sh"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_tree_passes),
        cmocka_unit_test_setup_teardown(test_unmodified_copy_passes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_violation_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_selecting_nothing_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_resource_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_internal_port_opened_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_on_undeclared_port_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_without_migrate_gate_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dockerfile_packages, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
