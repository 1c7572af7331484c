// `convd run` as a process ($CONVD_BIN, default build/convd): every golden case forward and
// backward in both tensor forms, the bad-request catalog (tests/data/bad_requests.tsv: code,
// path and exit status 2; in the sanitized tree a leak or an error changes the exit status),
// FILE and standard input, --help, --version, --op, and the exit status of internal failures.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/api_errors.h"
#include "server/blas_boot.h"
#include "tests/harness/api_harness.h"
#include "tests/testlib.h"

// Runs convd with `args` (NULL-terminated, after the program name) and `input` on standard
// input (NULL: /dev/null). Returns the exit status (-1 when it did not exit normally) and the
// standard output in *out (heap, NUL-terminated).
static int run_convd(const char *const *args, const char *input, char **out) {
    char in_path[] = "/tmp/convd-run-in-XXXXXX";
    int in_fd = mkstemp(in_path);
    if (in_fd < 0) return -1;
    unlink(in_path);
    size_t len = input ? strlen(input) : 0;
    if (write(in_fd, input ? input : "", len) != (ssize_t)len) len = 0;
    lseek(in_fd, 0, SEEK_SET);
    int pipe_fd[2];
    if (pipe(pipe_fd) != 0) {
        close(in_fd);
        return -1;
    }
    const char *argv[32] = {th_convd_bin()};
    for (int i = 0; args[i] && i < 30; i++) argv[i + 1] = args[i];
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in_fd, 0);
        dup2(pipe_fd[1], 1);
        close(pipe_fd[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in_fd);
    close(pipe_fd[1]);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while (buf && (got = read(pipe_fd[0], buf + n, cap - n - 1)) > 0) {
        n += (size_t)got;
        if (cap - n < 4096) buf = realloc(buf, cap *= 2);
    }
    close(pipe_fd[0]);
    if (buf) buf[n] = '\0';
    *out = buf;
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

static char *door_cli(const char *body, int *status, void *ctx) {
    const char *op = *(const char **)ctx;
    const char *with_op[] = {"run", "--op", op, NULL}, *plain[] = {"run", NULL};
    char *out = NULL;
    *status = run_convd(op ? with_op : plain, body, &out);
    return out;
}

static void test_golden(void) {
    const char *op = NULL;
    ah_golden_through(door_cli, &op, 0, true, NULL);
}

// The error object of a response, field by field ("" when absent).
static const char *error_field(const cJSON *resp, const char *field) {
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "error"), field);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void test_catalog(void) {
    char *text = t_read_file("tests/data/bad_requests.tsv", NULL);
    if (!CHECK(text != NULL, "tests/data/bad_requests.tsv is readable (run from the repo root)"))
        return;
    int cases = 0;
    bool covered[API_E_COUNT] = {false};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *code = line, *path = strchr(code, '\t');
        char *options = path ? strchr(path + 1, '\t') : NULL;
        char *body = options ? strchr(options + 1, '\t') : NULL;
        if (!CHECK(body != NULL, "catalog line has 4 columns: %.80s", line)) continue;
        *path++ = *options++ = *body++ = '\0';
        if (strcmp(path, "-") == 0) path = "";
        const char *args[8] = {"run"};
        int argc = 1;
        char opts[256];
        snprintf(opts, sizeof opts, "%s", strcmp(options, "-") == 0 ? "" : options);
        for (char *save, *o = strtok_r(opts, " ", &save); o && argc < 7;
             o = strtok_r(NULL, " ", &save))
            args[argc++] = o;
        args[argc] = NULL;
        char *out = NULL;
        int status = run_convd(args, body, &out);
        cJSON *resp = out ? cJSON_Parse(out) : NULL;
        CHECK(status == 2 && resp && strcmp(error_field(resp, "code"), code) == 0 &&
                  strcmp(error_field(resp, "path"), path) == 0 && *error_field(resp, "message"),
              "%.100s: want exit 2, %s at '%s'; got exit %d, %s at '%s': %s", body, code, path,
              status, error_field(resp, "code"), error_field(resp, "path"),
              error_field(resp, "message"));
        for (int c = 0; c < API_E_COUNT; c++)
            covered[c] |= strcmp(api_code_name((api_code)c), code) == 0;
        cJSON_Delete(resp);
        free(out);
        cases++;
    }
    CHECK(cases >= 90, "catalog: %d cases", cases);
    // Every code a request body can earn (400 or 422) has its case; invalid_http is about
    // HTTP's framing, which convd run does not read (tests/test_http_hostile.c has its cases).
    for (int c = 0; c < API_E_COUNT; c++) {
        int status = api_code_status((api_code)c);
        CHECK(covered[c] || (status != 400 && status != 422) || c == API_E_INVALID_HTTP,
              "the catalog has no case for %s",
              api_code_name((api_code)c));
    }
    free(text);
}

static void test_command_line(void) {
    char *out = NULL;
    const char *help[] = {"run", "--help", NULL};
    CHECK(run_convd(help, NULL, &out) == 0 && strstr(out, "usage: convd run") &&
              strstr(out, "Exit status"),
          "run --help");
    free(out);
    const char *version[] = {"run", "--version", NULL};
    CHECK(run_convd(version, NULL, &out) == 0 && strstr(out, "OpenBLAS core"), "run --version");
    // --version names the kernels' ISA; CONVD_ISA=portable (which every CPU runs) picks it.
    free(out);
    out = NULL;
    setenv("CONVD_ISA", "portable", 1);
    CHECK(run_convd(version, NULL, &out) == 0 && strstr(out, "kernels portable"),
          "CONVD_ISA=portable run --version: %s", out ? out : "(none)");
    unsetenv("CONVD_ISA");
    free(out);
    const char *unknown[] = {"run", "--frobnicate", NULL};
    CHECK(run_convd(unknown, NULL, &out) == 2, "an unknown option is a usage error");
    free(out);
    const char *threads[] = {"run", "--threads", "0", NULL};
    CHECK(run_convd(threads, NULL, &out) == 2, "--threads 0 is a usage error");
    free(out);
    // From a file, from '-' (standard input), with one thread: the same answer.
    const char *body =
        "{\"op\": \"conv2d.forward\", \"dtype\": \"float64\", \"padding\": \"same\", "
        "\"x\": [[1, 2, 3], [4, 5, 6], [7, 8, 9]], \"w\": [[0, 1], [1, 0]]}";
    char path[] = "/tmp/convd-run-file-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, body, strlen(body)) == (ssize_t)strlen(body), "temp file");
    close(fd);
    const char *from_file[] = {"run", path, NULL},
               *from_dash[] = {"run", "-", "--threads", "1", NULL};
    char *a = NULL, *b = NULL;
    int sa = run_convd(from_file, NULL, &a), sb = run_convd(from_dash, body, &b);
    const char *want = "{\"y\":{\"shape\":[3, 3],\"data\":[6.0,8.0,6.0,12.0,14.0,9.0,8.0,9.0,0.0]}";
    CHECK(sa == 0 && sb == 0 && a && b && strncmp(a, want, strlen(want)) == 0 &&
              strncmp(b, want, strlen(want)) == 0,
          "FILE and stdin give the seed-style answer: %.120s", a ? a : "");
    free(a);
    free(b);
    unlink(path);
    const char *missing[] = {"run", "/nonexistent/request.json", NULL};
    cJSON *resp = NULL;
    int status = run_convd(missing, NULL, &out);
    resp = out ? cJSON_Parse(out) : NULL;
    CHECK(status == 1 && strcmp(error_field(resp, "code"), "internal_error") == 0,
          "an unreadable FILE exits 1 with the error JSON (%d)", status);
    cJSON_Delete(resp);
    free(out);
    const char *two[] = {"run", "a.json", "b.json", NULL};
    CHECK(run_convd(two, NULL, &out) == 2, "two files is a usage error");
    free(out);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    test_command_line();
    test_catalog();
    test_golden();
    return t_finish("test_cli_run");
}
