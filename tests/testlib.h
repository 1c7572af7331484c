// testlib: the smallest test harness that does the job. Each test binary counts checks,
// prints every failure with its place, and ends with "<binary>: N passed, N failed";
// tests/run.sh adds the binaries' counts into the closing line.
#ifndef TESTLIB_H
#define TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Counts one check; prints "FAIL file:line: <message>" when `ok` is false. Returns ok.
bool t_check(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define CHECK(ok, ...) t_check((ok), __FILE__, __LINE__, __VA_ARGS__)

// Prints the binary's summary line and returns its exit status (0 when nothing failed).
int t_finish(const char *name);

// Deterministic pseudo-random numbers for tests (splitmix64): uniform in [lo, hi).
uint64_t t_rand_u64(uint64_t *state);
double t_rand_uniform(uint64_t *state, double lo, double hi);
int64_t t_rand_int(uint64_t *state, int64_t lo, int64_t hi_inclusive);

// Reads a whole file into a NUL-terminated heap buffer (NULL on failure); *len gets its size.
char *t_read_file(const char *path, size_t *len);

// Runs a shell command (its output goes where the test's goes); its exit status, -1 when it did
// not exit.
int t_shell(const char *command);

// The npm packages of tools/ (the OpenAPI linter, playwright-core): when `probe`, a file of one
// of them, is missing, installs them all with `npm ci` (needs the npm registry) as one check.
void t_tools_installed(const char *probe);

// The directory holding the golden cases (tests/golden, or $CONVD_GOLDEN_DIR).
const char *t_golden_dir(void);

#endif
