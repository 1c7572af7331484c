// blas_boot: gets OpenBLAS's fast kernels loaded and fixes its threading, once per process.
#ifndef BLAS_BOOT_H
#define BLAS_BOOT_H

// Call first in main(). Debian's OpenBLAS 0.3.21 does not recognise recent CPUs and falls back
// to its generic kernels (~4x slower); it reads OPENBLAS_CORETYPE only when it loads, so when
// the core picked is generic on a CPU with AVX-512 (or AVX2), this sets the variable and
// re-executes the program once (argv unchanged). A value the user already set is respected.
// Then BLAS is set to one thread: convd parallelises itself (docs/THREADING.md).
void blas_boot(char **argv);

// The decision blas_boot() takes, as a pure function for tests: the core to load instead of
// `detected` (OpenBLAS's own pick), or NULL to keep it. `env_value` is OPENBLAS_CORETYPE as
// set by the user (NULL or "" when unset), which always wins.
const char *blas_core_upgrade(const char *env_value, const char *detected, int has_avx512,
                              int has_avx2);

// The OpenBLAS core in use ("SkylakeX", "Haswell", ...), and how it was chosen:
// "detected", "environment" (OPENBLAS_CORETYPE set by the user) or "convd" (set by blas_boot).
const char *blas_core_name(void);
const char *blas_core_source(void);

#endif
