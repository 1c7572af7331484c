// blas_boot: the core decision table, and the convd binary reporting the core it runs with.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/blas_boot.h"
#include "tests/testlib.h"

static void test_decision(void) {
    const struct {
        const char *env, *detected;
        int avx512, avx2;
        const char *want; // NULL: keep OpenBLAS's pick
    } cases[] = {
        {NULL, "Prescott", 1, 1, "SkylakeX"}, // 0.3.21 on a CPU it does not know
        {"", "Prescott", 1, 1, "SkylakeX"},   // an empty variable is no choice
        {NULL, "Prescott", 0, 1, "Haswell"},
        {NULL, "Prescott", 0, 0, NULL},       // nothing better to load
        {NULL, "Nehalem", 1, 1, "SkylakeX"},
        {NULL, "Cooperlake", 1, 1, NULL},     // a real core: never second-guessed
        {NULL, "Haswell", 1, 1, NULL},
        {"Haswell", "Haswell", 1, 1, NULL},   // the user's choice wins
        {"Prescott", "Prescott", 1, 1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = blas_core_upgrade(cases[i].env, cases[i].detected, cases[i].avx512,
                                            cases[i].avx2);
        CHECK(got == cases[i].want || (got && cases[i].want && strcmp(got, cases[i].want) == 0),
              "env %s, detected %s, avx512 %d, avx2 %d: got %s, want %s",
              cases[i].env ? cases[i].env : "(unset)", cases[i].detected, cases[i].avx512,
              cases[i].avx2, got ? got : "(keep)", cases[i].want ? cases[i].want : "(keep)");
    }
}

// `convd --version` names the core in use and how it was chosen; with OPENBLAS_CORETYPE set
// the choice is the user's.
static void test_version_reports_core(void) {
    const char *bin = getenv("CONVD_BIN") ? getenv("CONVD_BIN") : "build/convd";
    char cmd[512], line[256] = "";
    snprintf(cmd, sizeof cmd, "OPENBLAS_CORETYPE=Haswell %s --version", bin);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "cannot run %s", bin);
    if (!p) return;
    if (!fgets(line, sizeof line, p)) line[0] = '\0';
    CHECK(pclose(p) == 0, "%s --version failed", bin);
    CHECK(strstr(line, "OpenBLAS core Haswell, environment") != NULL,
          "--version with OPENBLAS_CORETYPE=Haswell says: %s", line);
    snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE %s --version", bin);
    p = popen(cmd, "r");
    if (!p) return;
    if (!fgets(line, sizeof line, p)) line[0] = '\0';
    pclose(p);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        CHECK(strstr(line, "OpenBLAS core ") && !strstr(line, "Prescott") &&
                  !strstr(line, "Nehalem") && !strstr(line, "Core2"),
              "without OPENBLAS_CORETYPE, on a CPU with AVX2, convd ran a generic core: %s",
              line);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    test_decision();
    test_version_reports_core();
    return t_finish("test_blas_boot");
}
