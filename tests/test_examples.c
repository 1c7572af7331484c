// The clients in examples/ run against a convd process of the test's own: curl (shell),
// Python (NumPy + requests), JavaScript (Node's fetch) and C (libcurl, compiled here). Each
// example computes a backward pass, checks it against its own reference and prints "... ok";
// the test checks the exit status and that line. Only the server's own PID is signalled.
#include "server/blas_boot.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tests/harness/http_harness.h"

// Runs `command` through the shell with CONVD_URL set; its output (heap) and exit status.
static char *run(const char *command, int port, int *status) {
    char full[1024];
    snprintf(full, sizeof full, "CONVD_URL=http://127.0.0.1:%d timeout 120 %s 2>&1", port,
             command);
    FILE *p = popen(full, "r");
    char *out = calloc(1, 1);
    size_t len = 0;
    char chunk[4096];
    for (size_t n; p && (n = fread(chunk, 1, sizeof chunk, p)) > 0;) {
        out = realloc(out, len + n + 1);
        memcpy(out + len, chunk, n);
        len += n;
        out[len] = '\0';
    }
    int rc = p ? pclose(p) : -1;
    *status = rc >= 0 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return out;
}

int main(int argc, char **argv) {
    blas_boot(argv);
    char c_binary[128], build[512];
    snprintf(c_binary, sizeof c_binary, "/tmp/convd-example-c-%d", (int)getpid());
    snprintf(build, sizeof build, "cc -O2 -Wall -Wextra -Werror examples/c/backward.c -lcurl -lm -o %s",
             c_binary);
    int status = system(build);
    CHECK(status == 0, "the C example builds: %s", build);
    static const struct {
        const char *name, *command, *ok;
    } examples[] = {
        {"curl", "sh examples/curl/backward.sh", "curl example: ok"},
        {"python", "/usr/bin/python3 examples/python/backward.py", "python example: ok"},
        {"javascript", "node examples/js/backward.mjs", "javascript example: ok"},
        {"c", NULL, "c example: ok"},
    };
    th_server s;
    if (CHECK(th_server_start(&s, NULL), "convd serve starts")) {
        for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) {
            double start = th_now();
            char *out = run(examples[i].command ? examples[i].command : c_binary, s.port, &status);
            CHECK(status == 0 && strstr(out, examples[i].ok), "%s example: exit %d: %s",
                  examples[i].name, status, out);
            printf("%s example: %.2f s\n", examples[i].name, th_now() - start);
            free(out);
        }
        CHECK(th_server_stop(&s, 30) == 0, "convd drains and exits 0");
    }
    unlink(c_binary);
    return t_finish("test_examples");
}
