// bench_codec: the JSON codec on a (b)-sized request (x 8x64x56x56 and w 64x64x3x3: 1.64 M
// numbers), and the whole-process time of `convd run` on the seed's case.
//   bench_codec [CONVD_BIN]     (default build/convd, or $CONVD_BIN)
// Decode is codec_json_decode() of the whole body (the document, the lifted arrays, the dtype
// conversion); encode is codec_json_put_numbers() of the same numbers. Each is reported as MB/s
// of JSON text and ns per number, the median of BENCH_REPEATS runs after BENCH_WARMUP, timed
// by the thread's CPU clock: "on one core" on a machine others share (wall time counts the
// turns other processes take; the process runs below use wall time, as a client sees it). Three
// ways a client writes numbers: float32 shortest (what convd itself prints), float32 as Python
// writes a tensor's tolist() (the double of each float: 17 digits), and float64.
// `convd run` is timed as a process (fork, exec, BLAS start-up, read, compute, write) on a
// seed-style request, next to /bin/true as the floor any process pays on this machine.
// Prints a table; writes build/bench-codec.json.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/api_buf.h"
#include "api/codec/codec_json.h"
#include "api/num/num.h"
#include "bench/benchlib.h"
#include "server/blas_boot.h"

typedef enum { F32_SHORTEST, F32_FROM_PYTHON, F64 } number_style;

static const struct {
    const char *name, *dtype;
} styles[] = {
    [F32_SHORTEST] = {"float32, shortest digits", "float32"},
    [F32_FROM_PYTHON] = {"float32, as Python's tolist()", "float32"},
    [F64] = {"float64", "float64"},
};

static void put_number(api_buf *b, double v, number_style style) {
    char text[NUM_MAX_CHARS];
    char *end = style == F32_SHORTEST ? num_print_f32(text, (float)v) : num_print_f64(text, v);
    api_buf_put(b, text, (size_t)(end - text));
}

// x and w of layer (b), uniform in [-1, 1): as floats, or as doubles for float64.
static void put_tensor(api_buf *b, const char *name, const int64_t *shape, uint64_t seed,
                       number_style style) {
    int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
    float *f = bench_alloc((size_t)n * sizeof *f);
    bench_fill(f, n, seed);
    api_buf_printf(b, "\"%s\": {\"shape\": [%lld, %lld, %lld, %lld], \"data\": [", name,
                   (long long)shape[0], (long long)shape[1], (long long)shape[2],
                   (long long)shape[3]);
    for (int64_t i = 0; i < n; i++) {
        if (i) api_buf_put(b, ", ", 2);
        // float64 gets 53-bit values, not floats in disguise.
        double v = style == F64 ? (double)f[i] + (double)f[(i * 7 + 1) % n] * 0x1p-24 : f[i];
        put_number(b, v, style);
    }
    api_buf_puts(b, "]}");
    free(f);
}

static double cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

typedef struct {
    double decode_ms, encode_ms;
    size_t body_bytes, encoded_bytes;
    int64_t numbers;
} codec_result;

static codec_result measure_codec(const bench_layer *l, number_style style,
                                  const bench_plan *plan) {
    int64_t x_shape[4] = {l->n, l->c, l->h, l->w}, w_shape[4] = {l->f, l->c, l->kh, l->kw};
    api_buf body = {0};
    api_buf_printf(&body, "{\"op\": \"conv2d.forward\", \"dtype\": \"%s\", \"padding\": %lld, ",
                   styles[style].dtype, (long long)l->pad);
    put_tensor(&body, "x", x_shape, 1, style);
    api_buf_puts(&body, ", ");
    put_tensor(&body, "w", w_shape, 2, style);
    api_buf_puts(&body, "}");
    if (body.failed) {
        fprintf(stderr, "bench_codec: out of memory\n");
        exit(1);
    }
    codec_result r = {.body_bytes = body.len};
    int runs = plan->warmup + plan->repeats;
    double *decode = bench_alloc((size_t)runs * sizeof *decode);
    double *encode = bench_alloc((size_t)runs * sizeof *encode);
    api_buf out = {0};
    for (int i = 0; i < runs; i++) {
        api_request req;
        api_request_init(&req);
        api_error err;
        double t0 = cpu_ms();
        bool ok = codec_json_decode(&req, body.data, body.len, &err);
        double t1 = cpu_ms();
        if (!ok) {
            fprintf(stderr, "bench_codec: the request did not decode: %s\n", err.message);
            exit(1);
        }
        const api_tensor *x = &req.in[API_IN_X], *w = &req.in[API_IN_W];
        r.numbers = x->numel + w->numel;
        out.len = 0;
        double t2 = cpu_ms();
        codec_json_put_numbers(&out, x->data, x->numel, req.dtype);
        codec_json_put_numbers(&out, w->data, w->numel, req.dtype);
        double t3 = cpu_ms();
        r.encoded_bytes = out.len;
        decode[i] = t1 - t0;
        encode[i] = t3 - t2;
        api_request_free(&req);
    }
    r.decode_ms = bench_median(decode + plan->warmup, plan->repeats);
    r.encode_ms = bench_median(encode + plan->warmup, plan->repeats);
    free(decode);
    free(encode);
    api_buf_free(&out);
    api_buf_free(&body);
    return r;
}

// One run of argv as a process (stdin from `input_path`, output discarded): wall milliseconds,
// and in *cpu_ms the CPU time it used (user + system), which load from elsewhere inflates less.
static double process_ms(char *const *argv, const char *input_path, double *cpu_ms) {
    double t0 = bench_now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        int in = open(input_path, O_RDONLY), null = open("/dev/null", O_WRONLY);
        dup2(in, 0);
        dup2(null, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    wait4(pid, &status, 0, &usage);
    double ms = bench_now_ms() - t0;
    *cpu_ms = (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
              (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-3;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_codec: %s exited with %d\n", argv[0], WEXITSTATUS(status));
        exit(1);
    }
    return ms;
}

typedef struct {
    double wall_ms, cpu_ms; // medians
} process_time;

static process_time median_process_ms(char *const *argv, const char *input_path, int runs) {
    double *wall = bench_alloc((size_t)runs * sizeof *wall);
    double *cpu = bench_alloc((size_t)runs * sizeof *cpu);
    process_ms(argv, input_path, cpu); // page cache, dynamic loader cache
    for (int i = 0; i < runs; i++) wall[i] = process_ms(argv, input_path, &cpu[i]);
    process_time t = {bench_median(wall, runs), bench_median(cpu, runs)};
    free(wall);
    free(cpu);
    return t;
}

// The seed's case as a seed-style request: a 32x32 image, a 3x3 kernel, "same" padding.
static void write_seed_request(const char *path) {
    api_buf b = {0};
    float v[32 * 32 + 9];
    bench_fill(v, 32 * 32 + 9, 3);
    api_buf_puts(&b, "{\"op\": \"conv2d.forward\", \"padding\": \"same\", \"x\": [");
    for (int r = 0; r < 32; r++) {
        api_buf_puts(&b, r ? ", [" : "[");
        for (int c = 0; c < 32; c++) {
            if (c) api_buf_put(&b, ", ", 2);
            put_number(&b, v[r * 32 + c], F32_SHORTEST);
        }
        api_buf_puts(&b, "]");
    }
    api_buf_puts(&b, "], \"w\": [");
    for (int r = 0; r < 3; r++) {
        api_buf_puts(&b, r ? ", [" : "[");
        for (int c = 0; c < 3; c++) {
            if (c) api_buf_put(&b, ", ", 2);
            put_number(&b, v[1024 + r * 3 + c], F32_SHORTEST);
        }
        api_buf_puts(&b, "]");
    }
    api_buf_puts(&b, "]}");
    FILE *f = fopen(path, "w");
    if (!f || fwrite(b.data, 1, b.len, f) != b.len || fclose(f) != 0) {
        fprintf(stderr, "bench_codec: cannot write %s\n", path);
        exit(1);
    }
    api_buf_free(&b);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    const char *convd = argc > 1              ? argv[1]
                        : getenv("CONVD_BIN") ? getenv("CONVD_BIN")
                                              : "build/convd";
    bench_plan plan = bench_plan_from_env();
    const bench_layer *b = NULL;
    for (int i = 0; i < bench_layer_count; i++)
        if (strcmp(bench_layers[i].name, "b") == 0) b = &bench_layers[i];
    if (!b) return 1;

    FILE *json = fopen("build/bench-codec.json", "w");
    if (!json) {
        fprintf(stderr, "bench_codec: cannot write build/bench-codec.json\n");
        return 1;
    }
    fprintf(json, "{\"layer\": \"b\", \"warmup\": %d, \"repeats\": %d, \"codec\": [", plan.warmup,
            plan.repeats);
    printf("JSON codec on layer (b)'s request (x %lldx%lldx%lldx%lld + w), median of %d runs, 1 "
           "core\n",
           (long long)b->n, (long long)b->c, (long long)b->h, (long long)b->w, plan.repeats);
    printf("%-30s %9s %10s %9s %10s %9s\n", "numbers as", "body MB", "decode MB/s", "ns/num",
           "encode MB/s", "ns/num");
    for (int s = 0; s < 3; s++) {
        codec_result r = measure_codec(b, (number_style)s, &plan);
        double decode_mbs = (double)r.body_bytes / 1e6 / (r.decode_ms / 1e3);
        double encode_mbs = (double)r.encoded_bytes / 1e6 / (r.encode_ms / 1e3);
        double decode_ns = r.decode_ms * 1e6 / (double)r.numbers;
        double encode_ns = r.encode_ms * 1e6 / (double)r.numbers;
        printf("%-30s %9.1f %10.0f %9.1f %10.0f %9.1f\n", styles[s].name,
               (double)r.body_bytes / 1e6, decode_mbs, decode_ns, encode_mbs, encode_ns);
        fprintf(json,
                "%s{\"numbers_as\": \"%s\", \"dtype\": \"%s\", \"numbers\": %lld, "
                "\"body_bytes\": %zu, \"decode_ms\": %.3f, \"decode_mb_s\": %.1f, "
                "\"decode_ns_per_number\": %.2f, \"encoded_bytes\": %zu, \"encode_ms\": %.3f, "
                "\"encode_mb_s\": %.1f, \"encode_ns_per_number\": %.2f}",
                s ? ", " : "", styles[s].name, styles[s].dtype, (long long)r.numbers, r.body_bytes,
                r.decode_ms, decode_mbs, decode_ns, r.encoded_bytes, r.encode_ms, encode_mbs,
                encode_ns);
    }

    char request[] = "/tmp/bench-codec-seed-XXXXXX";
    int fd = mkstemp(request);
    if (fd < 0) return 1;
    close(fd);
    write_seed_request(request);
    int runs = 5 * plan.repeats;
    char *run_argv[] = {(char *)convd, "run", "--threads", "1", request, NULL};
    char *version_argv[] = {(char *)convd, "--version", NULL};
    char *true_argv[] = {"/bin/true", NULL};
    process_time run = median_process_ms(run_argv, "/dev/null", runs);
    process_time version = median_process_ms(version_argv, "/dev/null", runs);
    process_time floor = median_process_ms(true_argv, "/dev/null", runs);
    unlink(request);
    printf("\nconvd run on the seed's case (32x32, 3x3, \"same\") as a whole process, median of "
           "%d:\n  %-34s %9s %9s\n",
           runs, "", "wall ms", "CPU ms");
    printf("  %-34s %9.2f %9.2f\n", "convd run --threads 1 FILE", run.wall_ms, run.cpu_ms);
    printf("  %-34s %9.2f %9.2f\n", "convd --version (start-up alone)", version.wall_ms,
           version.cpu_ms);
    printf("  %-34s %9.2f %9.2f\n", "/bin/true (any process here)", floor.wall_ms, floor.cpu_ms);
    printf("  OpenBLAS core %s (%s)\n", blas_core_name(), blas_core_source());
    fprintf(json,
            "], \"convd_run_seed\": {\"runs\": %d, \"run_ms\": %.3f, \"run_cpu_ms\": %.3f, "
            "\"version_ms\": %.3f, \"version_cpu_ms\": %.3f, \"true_ms\": %.3f, "
            "\"true_cpu_ms\": %.3f, \"blas_core\": \"%s\", \"blas_core_source\": \"%s\"}}\n",
            runs, run.wall_ms, run.cpu_ms, version.wall_ms, version.cpu_ms, floor.wall_ms,
            floor.cpu_ms, blas_core_name(), blas_core_source());
    fclose(json);
    return 0;
}
