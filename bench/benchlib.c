#include "bench/benchlib.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

// conv2d, zero padding, no depth (the last four fields of every conv2d layer).
#define C2 BENCH_CONV2D, 0, 0, 0
const bench_layer bench_layers[] = {
    {"a", "1x1x32x32 F1 3x3 p1 (seed)", 1, 1, 32, 32, 1, 3, 3, 1, 1, 1, 1, C2},
    {"b", "8x64x56x56 F64 3x3 p1", 8, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, C2},
    {"c", "8x256x14x14 F256 3x3 p1", 8, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, C2},
    {"d", "32x3x32x32 F16 5x5 p2", 32, 3, 32, 32, 16, 5, 5, 1, 2, 1, 1, C2},
    {"e", "8x64x56x56 F256 1x1", 8, 64, 56, 56, 256, 1, 1, 1, 0, 1, 1, C2},
    {"f", "8x64x56x56 F128 3x3 s2 p1", 8, 64, 56, 56, 128, 3, 3, 2, 1, 1, 1, C2},
    {"g", "8x64x56x56 dw G64 3x3 p1", 8, 64, 56, 56, 64, 3, 3, 1, 1, 64, 1, C2},
    {"h", "4x3x224x224 F64 7x7 s2 p3 (stem)", 4, 3, 224, 224, 64, 7, 7, 2, 3, 1, 1, C2},
    {"i", "8x128x56x56 dw G128 3x3 s2 p1", 8, 128, 56, 56, 128, 3, 3, 2, 1, 128, 1, C2},
    {"j", "8x128x56x56 F256 1x1 s2", 8, 128, 56, 56, 256, 1, 1, 2, 0, 1, 1, C2},
    {"k", "8x64x28x28 F64 3x3 d2 p2", 8, 64, 28, 28, 64, 3, 3, 1, 2, 1, 2, C2},
    {"l", "8x128x28x28 F128 3x3 p1", 8, 128, 28, 28, 128, 3, 3, 1, 1, 1, 1, C2},
    {"m", "conv1d 8x64x4096 F64 k9 p4", 8, 64, 1, 4096, 64, 1, 9, 1, 4, 1, 1, BENCH_CONV1D, 0, 0,
     0},
    {"n", "conv3d 2x32x16x56x56 F32 3x3x3 p1", 2, 32, 56, 56, 32, 3, 3, 1, 1, 1, 1, BENCH_CONV3D,
     16, 3, 0},
    {"o", "conv_transpose2d 8x128x28x28 -> F64 k4 s2 p1", 8, 128, 28, 28, 64, 4, 4, 2, 1, 1, 1,
     BENCH_CONV_TRANSPOSE2D, 0, 0, 0},
    {"p", "8x64x56x56 F64 3x3 p1 reflect", 8, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, BENCH_CONV2D,
     0, 0, 1},
};
#undef C2
const int bench_layer_count = (int)(sizeof bench_layers / sizeof *bench_layers);

// One axis: a conv's output size, or a transposed conv's (PyTorch's formulas).
static int64_t out_size(const bench_layer *l, int64_t in, int64_t k, int64_t pad) {
    if (l->op == BENCH_CONV_TRANSPOSE2D)
        return (in - 1) * l->stride - 2 * pad + l->dilation * (k - 1) + 1;
    return (in + 2 * pad - l->dilation * (k - 1) - 1) / l->stride + 1;
}

int64_t bench_layer_do(const bench_layer *l) {
    return l->op == BENCH_CONV3D ? out_size(l, l->d, l->kd, l->pad) : 1;
}

int64_t bench_layer_ho(const bench_layer *l) {
    return out_size(l, l->h, l->kh, l->op == BENCH_CONV1D ? 0 : l->pad);
}

int64_t bench_layer_wo(const bench_layer *l) { return out_size(l, l->w, l->kw, l->pad); }

double bench_layer_flops(const bench_layer *l) {
    const int64_t kd = l->op == BENCH_CONV3D ? l->kd : 1;
    if (l->op == BENCH_CONV_TRANSPOSE2D) // every input pixel meets every tap once
        return 2.0 * (double)l->n * (double)l->c * (double)(l->f / l->groups) * (double)l->kh *
               (double)l->kw * (double)l->h * (double)l->w;
    return 2.0 * (double)l->n * (double)l->f * (double)(l->c / l->groups) * (double)kd *
           (double)l->kh * (double)l->kw * (double)bench_layer_do(l) *
           (double)bench_layer_ho(l) * (double)bench_layer_wo(l);
}

int bench_layer_selected(const bench_layer *l) {
    const char *list = getenv("BENCH_LAYERS");
    if (!list || !*list) return 1;
    const size_t len = strlen(l->name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, l->name, len) == 0) return 1;
        p += n + (end ? 1 : 0);
    }
    return 0;
}

static int env_int(const char *name, int fallback) {
    const char *v = getenv(name);
    int n = v ? atoi(v) : 0;
    return n > 0 ? n : fallback;
}

bench_plan bench_plan_from_env(void) {
    return (bench_plan){.warmup = env_int("BENCH_WARMUP", 3),
                        .repeats = env_int("BENCH_REPEATS", 11)};
}

double bench_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

void bench_fill(float *p, int64_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        // splitmix64: cheap, deterministic, and good enough that no value pattern helps anyone.
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        p[i] = (float)((double)(z >> 11) * 0x1.0p-52 - 1.0);
    }
}

void *bench_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        fprintf(stderr, "bench: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    memset(p, 0, rounded);
    return p;
}

void bench_measure(double *samples, bench_step_fn step, void *ctx, int nparts,
                   const bench_plan *plan) {
    double *scratch = bench_alloc(sizeof(double) * (size_t)nparts);
    for (int i = 0; i < plan->warmup; i++) step(ctx, scratch);
    for (int r = 0; r < plan->repeats; r++) step(ctx, samples + (size_t)r * (size_t)nparts);
    free(scratch);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void bench_json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

static void emit_series(FILE *out, const double *samples, int repeats, int stride, int offset,
                        int count) {
    fputc('[', out);
    for (int r = 0; r < repeats; r++) {
        double sum = 0;
        for (int p = 0; p < count; p++) sum += samples[(size_t)r * (size_t)stride + offset + p];
        fprintf(out, "%s%.6f", r ? "," : "", sum);
    }
    fputc(']', out);
}

void bench_emit_times(FILE *out, const char *impl, const bench_layer *l, const char *pass,
                      int threads, const bench_plan *plan, int nparts,
                      const char *const *part_names, const double *samples,
                      const char *extra_json) {
    fprintf(out, "{\"kind\":\"time\",\"impl\":\"%s\",\"layer\":\"%s\",\"pass\":\"%s\","
                 "\"threads\":%d,\"warmup\":%d,\"ms\":",
            impl, l->name, pass, threads, plan->warmup);
    emit_series(out, samples, plan->repeats, nparts, 0, nparts);
    fputs(",\"parts\":{", out);
    for (int p = 0; nparts > 1 && p < nparts; p++) {
        fprintf(out, "%s\"%s\":", p ? "," : "", part_names[p]);
        emit_series(out, samples, plan->repeats, nparts, p, 1);
    }
    fputc('}', out);
    if (extra_json && *extra_json) fprintf(out, ",%s", extra_json);
    fputs("}\n", out);
    fflush(out);
}
