#include "server/blas_boot.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Set in the environment of the re-executed process, so it never loops.
#define REEXEC_MARK "CONVD_BLAS_REEXEC"

static const char *core_source = "detected";

// OpenBLAS's fallback cores: what DYNAMIC_ARCH picks for a CPU it does not know.
static int core_is_generic(const char *core) {
    static const char *const generic[] = {"Prescott", "Core2",   "Penryn", "Dunnington",
                                          "Nehalem",  "Atom",    "Katmai", "Coppermine",
                                          "Northwood", "Banias", "Athlon", "Opteron",
                                          "Barcelona", "Bobcat", "Unknown"};
    for (size_t i = 0; i < sizeof generic / sizeof *generic; i++)
        if (strcmp(core, generic[i]) == 0) return 1;
    return 0;
}

const char *blas_core_upgrade(const char *env_value, const char *detected, int has_avx512,
                              int has_avx2) {
    if ((env_value && *env_value) || !core_is_generic(detected)) return NULL;
    if (has_avx512) return "SkylakeX";
    if (has_avx2) return "Haswell";
    return NULL;
}

void blas_boot(char **argv) {
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (getenv(REEXEC_MARK)) {
        core_source = "convd";
    } else if (env && *env) {
        core_source = "environment";
    } else {
        __builtin_cpu_init();
        int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
        int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        const char *better = blas_core_upgrade(env, openblas_get_corename(), avx512, avx2);
        if (better) {
            setenv("OPENBLAS_CORETYPE", better, 1);
            // While loading again anyway, spare OpenBLAS its thread pool: it would never be
            // used (one BLAS thread, always) and costs start-up time and an idle spinner.
            setenv("OPENBLAS_NUM_THREADS", "1", 0);
            setenv(REEXEC_MARK, "1", 1);
            execv("/proc/self/exe", argv);
            // exec failed: carry on with the generic kernels, still correct, only slower.
            unsetenv(REEXEC_MARK);
            unsetenv("OPENBLAS_CORETYPE");
        }
    }
    openblas_set_num_threads(1);
}

const char *blas_core_name(void) { return openblas_get_corename(); }

const char *blas_core_source(void) { return core_source; }
