// The clients in examples/ run against a convd process of the test's own: curl (shell),
// Python (NumPy + requests), JavaScript (Node's fetch) and C (libcurl, compiled here). The
// conv2d examples compute a backward pass; each other family has one example in one language
// (conv1d and conv_transpose3d in Python, conv3d in JavaScript, conv_transpose2d with curl,
// conv_transpose1d in C). Each checks the server's numbers against a reference of its own
// (direct summation, or values worked out by hand in its comments) and prints "... ok"; the
// test checks the exit status and that line. Only the server's own PID is signalled.
#include "server/blas_boot.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tests/harness/http_harness.h"

// Runs `command` through the shell with CONVD_URL set; its output (heap) and exit status.
static char *run(const char *command, int port, int *status) {
    char full[2048];
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
    static const struct {
        const char *name, *command, *c_source, *ok;
    } examples[] = {
        {"curl", "sh examples/curl/backward.sh", NULL, "curl example: ok"},
        {"python", "/usr/bin/python3 examples/python/backward.py", NULL, "python example: ok"},
        {"javascript", "node examples/js/backward.mjs", NULL, "javascript example: ok"},
        {"c", NULL, "examples/c/backward.c", "c example: ok"},
        {"python conv1d", "/usr/bin/python3 examples/python/conv1d.py", NULL,
         "python conv1d example: ok"},
        {"javascript conv3d", "node examples/js/conv3d.mjs", NULL, "javascript conv3d example: ok"},
        {"curl conv_transpose2d", "sh examples/curl/conv_transpose2d.sh", NULL,
         "curl conv_transpose2d example: ok"},
        {"c conv_transpose1d", NULL, "examples/c/conv_transpose1d.c",
         "c conv_transpose1d example: ok"},
        {"python conv_transpose3d", "/usr/bin/python3 examples/python/conv_transpose3d.py", NULL,
         "python conv_transpose3d example: ok"},
    };
    enum { COUNT = sizeof examples / sizeof *examples };
    // The C examples, compiled as a user would (warnings as errors).
    char binaries[COUNT][128] = {{0}};
    for (int i = 0; i < COUNT; i++) {
        if (!examples[i].c_source) continue;
        char build[512];
        snprintf(binaries[i], sizeof binaries[i], "/tmp/convd-example-%d-%d", i, (int)getpid());
        snprintf(build, sizeof build, "cc -O2 -Wall -Wextra -Werror %s -lcurl -lm -o %s",
                 examples[i].c_source, binaries[i]);
        CHECK(system(build) == 0, "the C example builds: %s", build);
    }
    th_server s;
    if (CHECK(th_server_start(&s, NULL), "convd serve starts")) {
        for (int i = 0; i < COUNT; i++) {
            double start = th_now();
            int status;
            char *out = run(examples[i].command ? examples[i].command : binaries[i], s.port,
                            &status);
            CHECK(status == 0 && strstr(out, examples[i].ok), "%s example: exit %d: %s",
                  examples[i].name, status, out);
            printf("%s example: %.2f s\n", examples[i].name, th_now() - start);
            free(out);
        }
        CHECK(th_server_stop(&s, 30) == 0, "convd drains and exits 0");
    }
    for (int i = 0; i < COUNT; i++)
        if (binaries[i][0]) unlink(binaries[i]);
    return t_finish("test_examples");
}
