// benchlib: what every C benchmark of convd shares, so that convd and its peers are timed the
// same way: the layer suite, the warm-up/repeat plan, the clock, random inputs and the JSON
// records that bench/report.py merges.
#ifndef BENCHLIB_H
#define BENCHLIB_H

#include <stdint.h>
#include <stdio.h>

// What a layer of the suite computes, in PyTorch's terms.
typedef enum {
    BENCH_CONV2D = 0,         // F.conv2d
    BENCH_CONV1D,             // F.conv1d: h = kh = 1, the padding along w only
    BENCH_CONV3D,             // F.conv3d: d, kd; stride, padding, dilation on all three axes
    BENCH_CONV_TRANSPOSE2D,   // F.conv_transpose2d: w (c, f/groups, kh, kw), output_padding 0
} bench_op;

// One layer of the suite: (a)-(g) from issue 2, (h)-(l) held-out shapes from issue 14 (ResNet
// stem, MobileNet strided depthwise, ResNet 1x1 stride-2 downsample, a dilated 3x3, a VGG-wide
// 3x3), (m)-(p) issue 15's family (conv1d, conv3d, an upsampling conv_transpose2d, a
// reflect-padded 3x3). Square stride, dilation and symmetric padding. x (n,c,[d,]h,w),
// w (f,c/groups,[kd,]kh,kw) (transposed: (c,f/groups,kh,kw)), y (n,f,[do,]ho,wo).
typedef struct {
    const char *name; // "a" .. "p"
    const char *what; // a few words for the table
    int64_t n, c, h, w, f, kh, kw, stride, pad, groups, dilation;
    bench_op op;      // zero: conv2d
    int64_t d, kd;    // conv3d only
    int reflect;      // padding_mode "reflect" (else zeros)
} bench_layer;

extern const bench_layer bench_layers[];
extern const int bench_layer_count;

// Output sizes (1 for an axis the layer does not have; a transposed layer's are its output's).
int64_t bench_layer_do(const bench_layer *l);
int64_t bench_layer_ho(const bench_layer *l);
int64_t bench_layer_wo(const bench_layer *l);
// FLOPs of one pass, 2*N*F*(C/G)*kd*kh*kw*Do*Ho*Wo (transposed: 2*N*C*(F/G)*kh*kw*H*W, its
// adjoint conv's); backward = 2 passes: dx and dw.
double bench_layer_flops(const bench_layer *l);

// Whether BENCH_LAYERS (a comma-separated list of names, e.g. "m,n,o,p") selects the layer;
// every layer when it is unset or empty.
int bench_layer_selected(const bench_layer *l);

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
