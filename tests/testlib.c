#include "tests/testlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int passed, failed;

bool t_check(bool ok, const char *file, int line, const char *fmt, ...) {
    if (ok) {
        passed++;
        return true;
    }
    failed++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "FAIL %s:%d: ", file, line);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
    return false;
}

int t_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, passed, failed);
    return failed ? 1 : 0;
}

uint64_t t_rand_u64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double t_rand_uniform(uint64_t *state, double lo, double hi) {
    return lo + (hi - lo) * (double)(t_rand_u64(state) >> 11) * 0x1.0p-53;
}

int64_t t_rand_int(uint64_t *state, int64_t lo, int64_t hi_inclusive) {
    return lo + (int64_t)(t_rand_u64(state) % (uint64_t)(hi_inclusive - lo + 1));
}

char *t_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t size = 0, cap = 0, got;
    do {
        if (size + 65536 + 1 > cap) {
            cap = (size + 65536 + 1) * 2;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        got = fread(buf + size, 1, 65536, f);
        size += got;
    } while (got > 0);
    fclose(f);
    buf[size] = '\0';
    if (len) *len = size;
    return buf;
}

const char *t_golden_dir(void) {
    const char *dir = getenv("CONVD_GOLDEN_DIR");
    return dir && *dir ? dir : "tests/golden";
}

int t_shell(const char *command) {
    fflush(NULL);
    int rc = system(command);
    return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

void t_tools_installed(const char *probe) {
    struct stat st;
    if (stat(probe, &st) != 0)
        CHECK(t_shell("cd tools && timeout 600 npm ci --no-audit --no-fund --loglevel=error") == 0,
              "npm ci in tools/ installs %s (needs the npm registry)", probe);
}
