// The JSON door against hostile shapes (issue 12): every shape of body, however pathological
// (runs of '[', deep nesting, many tiny arrays, numbers outside tensors, long strings), is
// answered in time linear in its size and memory bounded by a small constant of it, and a
// parse that runs out of memory is answered 503 out_of_memory, never 400 "not valid JSON" or
// 500. Each shape runs in a child process, which measures its own CPU time (not wall time: the
// machine may be shared) and its peak resident memory over the parse (VmHWM, reset before).
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/codec/codec.h"
#include "tests/testlib.h"

#if defined(__SANITIZE_ADDRESS__)
// The sanitized build checks the same shapes on smaller bodies with a looser clock: it runs
// several times slower and keeps freed memory in quarantine, so only time and errors count.
enum { SANITIZED = 1 };
static const size_t BODY = (size_t)4 << 20;
#else
enum { SANITIZED = 0 };
static const size_t BODY = (size_t)64 << 20;
#endif

// What one shape's child reports through a pipe.
typedef struct {
    int status;          // HTTP status of the answer
    char code[32];       // its error code ("" for a 200)
    double cpu_s;        // CPU time of the parse and answer (user + system)
    long peak_growth_kb; // peak resident memory over the call, minus the resident before it
} outcome;

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec * 1e-6;
}

// VmRSS or VmHWM of this process in KiB (-1 when /proc does not say).
static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kb;
}

static void reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

// Runs codec_run_json on `body` in a child (address space capped at `as_limit` bytes over the
// current size when not 0) and returns what it saw. status 0: the child died.
static outcome run_in_child(const char *body, size_t len, size_t as_limit) {
    outcome o = {0};
    int fds[2];
    if (pipe(fds) != 0) return o;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        struct rlimit cpu = {20, 20}; // a quadratic parse is killed (SIGXCPU), not waited for
        setrlimit(RLIMIT_CPU, &cpu);
        if (as_limit) {
            long vm_kb = status_kb("VmSize");
            struct rlimit lim = {(rlim_t)vm_kb * 1024 + as_limit, (rlim_t)vm_kb * 1024 + as_limit};
            setrlimit(RLIMIT_AS, &lim);
        }
        api_options opt = {.threads = 1};
        api_response r = {0};
        reset_peak();
        long before = status_kb("VmRSS");
        double t0 = cpu_seconds();
        codec_run_json(&r, body, len, "conv2d.forward", &opt);
        outcome mine = {.status = r.status, .cpu_s = cpu_seconds() - t0};
        mine.peak_growth_kb = status_kb("VmHWM") - before;
        cJSON *answer = r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;
        const cJSON *code = cJSON_GetObjectItem(cJSON_GetObjectItem(answer, "error"), "code");
        if (cJSON_IsString(code)) snprintf(mine.code, sizeof mine.code, "%s", code->valuestring);
        if (write(fds[1], &mine, sizeof mine) != (ssize_t)sizeof mine) _exit(2);
        _exit(0);
    }
    close(fds[1]);
    if (pid > 0) {
        if (read(fds[0], &o, sizeof o) != (ssize_t)sizeof o) o.status = 0;
        waitpid(pid, NULL, 0);
    }
    close(fds[0]);
    return o;
}

// A body of about BODY bytes: `head`, then `unit` repeated, then `tail`.
static char *repeat_body(size_t *len, const char *head, const char *unit, const char *tail) {
    size_t h = strlen(head), u = strlen(unit), t = strlen(tail);
    size_t n = (BODY - h - t) / u;
    char *body = malloc(h + n * u + t + 1);
    if (!body) return NULL;
    memcpy(body, head, h);
    for (size_t i = 0; i < n; i++) memcpy(body + h + i * u, unit, u);
    memcpy(body + h + n * u, tail, t);
    *len = h + n * u + t;
    body[*len] = '\0';
    return body;
}

// Parse memory allowed per body byte over the body itself (docs/LIMITS.md: at most 4 bytes of
// structure, 4 of numbers and 1 of rewritten text per byte of body) plus slack.
#define MAX_GROWTH_PER_BYTE 10.0
#define MAX_CPU_S 2.0

static void test_shapes(void) {
    static const struct {
        const char *name, *head, *unit, *tail;
        const char *want_code; // "" when any 4xx refusal (not 5xx) will do
    } shapes[] = {
        {"a run of '['", "{\"x\":", "[", "", ""},
        {"a run of '[' closed by a string", "", "[", "\"a\"", ""},
        {"a run of '[' around a number", "", "[", "1", ""},
        {"deep objects", "", "{\"a\":", "1", ""},
        {"one-number arrays", "{\"x\":[\"a\"", ",[1]", "]}", "json_too_complex"},
        {"numbers outside tensors", "{\"x\":[\"a\"", ",1", "]}", "json_too_complex"},
        {"empty arrays", "{\"x\":[", "[],", "[]]}", "json_too_complex"},
        {"empty objects", "{\"x\":[", "{},", "{}]}", "json_too_complex"},
        {"short strings", "{\"x\":[", "\"a\",", "\"a\"]}", "json_too_complex"},
        {"a long string", "{\"op\":\"", "a", "\"}", "unknown_op"},
        {"a long key", "{\"", "a", "\":1}", "unknown_field"},
        {"escapes", "{\"op\":\"", "\\u00e9", "\"}", "unknown_op"},
        {"a big flat tensor", "{\"x\":[", "1,", "1],\"w\":[[[[1]]]]}", ""},
        {"a big nested tensor", "{\"x\":[", "[1,2],", "[1,2]],\"w\":[[[[1]]]]}", ""},
        {"nine-deep numbers", "{\"x\":[[[[[[[[[", "1,", "1]]]]]]]]]}", ""},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        size_t len = 0;
        char *body = repeat_body(&len, shapes[i].head, shapes[i].unit, shapes[i].tail);
        if (!CHECK(body != NULL, "memory for %s", shapes[i].name)) continue;
        outcome o = run_in_child(body, len, 0);
        double growth = (double)o.peak_growth_kb * 1024 / (double)len;
        printf("  %-36s %zu MiB: %d %-18s %.2f s CPU, peak +%.1f bytes per body byte\n",
               shapes[i].name, len >> 20, o.status, o.code, o.cpu_s, growth);
        CHECK(o.status >= 400 && o.status < 500, "%s: status %d", shapes[i].name, o.status);
        if (*shapes[i].want_code)
            CHECK(strcmp(o.code, shapes[i].want_code) == 0, "%s: code %s, want %s",
                  shapes[i].name, o.code, shapes[i].want_code);
        CHECK(o.cpu_s < MAX_CPU_S * (SANITIZED ? 4 : 1), "%s: %.2f s of CPU (at most %.0f)",
              shapes[i].name, o.cpu_s, MAX_CPU_S);
        if (!SANITIZED)
            CHECK(growth < MAX_GROWTH_PER_BYTE, "%s: %.1f bytes per body byte (at most %.0f)",
                  shapes[i].name, growth, MAX_GROWTH_PER_BYTE);
        free(body);
    }
}

// Whatever memory the process has left, a valid body is answered (its 200 or 422), or refused
// 503 out_of_memory when it cannot be, never 400 invalid_json or 500: the address space is
// capped at steps from too little to parse the body to enough to answer it. The body is valid
// JSON with much structure (5000 strings) for cJSON to allocate, and invalid as a request.
static void test_out_of_memory(void) {
    if (SANITIZED) return; // the sanitizer reserves address space of its own
    enum { CAP = 1 << 16 };
    char *body = malloc(CAP);
    if (!CHECK(body != NULL, "memory")) return;
    size_t len = (size_t)snprintf(body, CAP, "{\"x\":[[[[1,2],[3,4]]]],\"w\":[[[[1]]]],\"outputs\":[\"y\"");
    for (int i = 0; i < 5000; i++) len += (size_t)snprintf(body + len, CAP - len, ",\"y\"");
    len += (size_t)snprintf(body + len, CAP - len, "]}");
    int answered = 0, out_of_memory = 0;
    for (size_t kib = 0; kib <= 4096; kib += 64) {
        outcome o = run_in_child(body, len, kib << 10 | 1);
        answered += o.status == 422;
        out_of_memory += o.status == 503;
        CHECK(o.status == 422 || (o.status == 503 && strcmp(o.code, "out_of_memory") == 0),
              "with %zu KiB more address space: %d %s", kib, o.status, o.code);
    }
    CHECK(answered > 0 && out_of_memory > 0, "%d answered, %d refused for memory", answered,
          out_of_memory);
    free(body);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    test_shapes();
    test_out_of_memory();
    return t_finish("test_json_hostile");
}
