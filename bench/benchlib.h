// benchlib: what every C benchmark of convd shares, so that convd and its peers are timed the
// same way: the layer suite, the warm-up/repeat plan, the clock, random inputs and the JSON
// records that bench/report.py merges.
#ifndef BENCHLIB_H
#define BENCHLIB_H

#include <stdint.h>
#include <stdio.h>

// One layer of the suite: (a)-(g) from issue 2, (h)-(l) held-out shapes from issue 14 (ResNet
// stem, MobileNet strided depthwise, ResNet 1x1 stride-2 downsample, a dilated 3x3, a VGG-wide
// 3x3). Square stride, dilation and symmetric padding. x (n,c,h,w), w (f,c/groups,kh,kw),
// y (n,f,ho,wo).
typedef struct {
    const char *name; // "a" .. "l"
    const char *what; // a few words for the table
    int64_t n, c, h, w, f, kh, kw, stride, pad, groups, dilation;
} bench_layer;

extern const bench_layer bench_layers[];
extern const int bench_layer_count;

int64_t bench_layer_ho(const bench_layer *l);
int64_t bench_layer_wo(const bench_layer *l);
// FLOPs of one pass, 2*N*F*(C/G)*kh*kw*Ho*Wo (backward = 2 passes: dx and dw).
double bench_layer_flops(const bench_layer *l);

// Warm-up calls (not timed) and timed repeats per measurement, the same for every impl:
// BENCH_WARMUP and BENCH_REPEATS from the environment (bench/run.sh sets both).
typedef struct {
    int warmup, repeats;
} bench_plan;
bench_plan bench_plan_from_env(void);

double bench_now_ms(void);

// Fills p[0..n) with deterministic uniform values in [-1, 1).
void bench_fill(float *p, int64_t n, uint64_t seed);

// 64-byte aligned, zeroed memory of `bytes`; exits with a message when out of memory (the
// benchmarks are programs, not library code).
void *bench_alloc(size_t bytes);

// One pass run once; writes the milliseconds of each of its parts into part_ms.
typedef void (*bench_step_fn)(void *ctx, double *part_ms);

// Runs `step` plan->warmup times untimed, then plan->repeats times; samples[r*nparts + p] gets
// part p of repeat r. samples holds plan->repeats * nparts values.
void bench_measure(double *samples, bench_step_fn step, void *ctx, int nparts,
                   const bench_plan *plan);

// Median of n values (n >= 1); reorders v.
double bench_median(double *v, int n);

// One JSON line {"kind":"time","impl","layer","pass","threads","ms":[total per repeat],
// "parts":{name:[ms per repeat]}, ...extra} to `out`. `extra_json` is either NULL or members
// to append, without braces (e.g. "\"core\":\"Haswell\"").
void bench_emit_times(FILE *out, const char *impl, const bench_layer *l, const char *pass,
                      int threads, const bench_plan *plan, int nparts,
                      const char *const *part_names, const double *samples,
                      const char *extra_json);

// Writes a JSON string literal (quotes and escapes included).
void bench_json_string(FILE *out, const char *s);

#endif
