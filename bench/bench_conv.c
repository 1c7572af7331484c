// bench_conv: convd's side of `make bench` (bench/run.sh runs it; bench/report.py reads it).
//   bench_conv layers        the layer suite as JSON (bench/peer_torch.py takes it from here)
//   bench_conv peak          the machine's FMA peak and memory bandwidth, 1 and 2 threads,
//                            one JSON line
//   bench_conv run THREADS   forward and backward (dx + dw + db) of every layer, JSON lines
//                            (BENCH_ALGORITHM=direct: never Winograd, as impl convd_direct)
//   bench_conv rss [THREADS] one (b)-sized forward + backward, then its peak RSS, one JSON line
//   bench_conv gemm          1-thread sgemm on each layer's three GEMM shapes (per image and
//                            group), OpenBLAS's and convd's own: the ceiling on im2col + GEMM
//   bench_conv cores THREADS PEAK   whether THREADS threads reach 85% of PEAK GFLOP/s now
// Timings follow bench_plan_from_env() like every peer; BENCH_LAYERS picks layers by name.
// Before a layer is timed its results are spot-checked against sums computed here, so a broken
// build cannot post fast numbers.
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench/benchlib.h"
#include "core/conv.h"
#include "core/conv3d.h"
#include "core/conv_pad.h"
#include "core/conv_transpose.h"
#include "core/gemm.h"
#include "server/blas_boot.h"

// ---------------------------------------------------------------------------------------------
// FMA peak: independent accumulator chains, enough of them to cover the FMA latency on both
// FMA pipes, in the widest vectors the CPU has.

#define FMA_CHAINS 12

// One loop per ISA, written once. Each chain converges to 1 (a = 0.999a + 0.001), so values stay
// normal and the sum returned keeps the compiler from dropping the work.
#define DEFINE_FMA_LOOP(name, isa, vec, set1, fmadd, store, lanes)                                \
    __attribute__((target(isa))) static float name(int64_t iters) {                           \
        vec acc[FMA_CHAINS];                                                                   \
        const vec m = set1(0.999f), c = set1(0.001f);                                          \
        for (int k = 0; k < FMA_CHAINS; k++) acc[k] = set1(1.0f + 0.01f * (float)k);           \
        for (int64_t i = 0; i < iters; i++) {                                                  \
            _Pragma("GCC unroll 12") for (int k = 0; k < FMA_CHAINS; k++) acc[k] =             \
                fmadd(acc[k], m, c);                                                           \
        }                                                                                      \
        float out[lanes], sum = 0;                                                             \
        for (int k = 0; k < FMA_CHAINS; k++) {                                                 \
            store(out, acc[k]);                                                                \
            for (int j = 0; j < (lanes); j++) sum += out[j];                                   \
        }                                                                                      \
        return sum;                                                                            \
    }

DEFINE_FMA_LOOP(fma_loop_avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps,
                _mm512_storeu_ps, 16)
DEFINE_FMA_LOOP(fma_loop_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps,
                _mm256_storeu_ps, 8)

typedef struct {
    float (*loop)(int64_t);
    int64_t iters;
    float result;
} fma_job;

static void *fma_thread(void *arg) {
    fma_job *job = arg;
    job->result = job->loop(job->iters);
    return NULL;
}

// GFLOP/s of `threads` threads each running `loop` for `iters` iterations, wall clock.
static double fma_gflops(float (*loop)(int64_t), int lanes, int threads, int64_t iters) {
    pthread_t tid[8];
    fma_job jobs[8];
    double t0 = bench_now_ms();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (fma_job){loop, iters, 0};
        if (pthread_create(&tid[i], NULL, fma_thread, &jobs[i]) != 0) {
            fprintf(stderr, "bench_conv: cannot start a thread\n");
            exit(1);
        }
    }
    float sink = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        sink += jobs[i].result;
    }
    double ms = bench_now_ms() - t0;
    if (!(sink > 0)) fprintf(stderr, "bench_conv: unexpected FMA sum %g\n", (double)sink);
    return (double)threads * (double)iters * FMA_CHAINS * lanes * 2.0 / (ms * 1e6);
}

// Best of several ~100 ms runs: the peak is what the cores can do, so noise only lowers it.
static double fma_peak(float (*loop)(int64_t), int lanes, int threads) {
    double rate = fma_gflops(loop, lanes, 1, 1000000); // calibration, also warms the clocks
    int64_t iters = (int64_t)(rate * 1e9 * 0.1 / (FMA_CHAINS * lanes * 2.0));
    double best = 0;
    for (int trial = 0; trial < 7; trial++) {
        double g = fma_gflops(loop, lanes, threads, iters);
        if (g > best) best = g;
    }
    return best;
}

// Memory bandwidth, the roof of the layers that do little arithmetic per byte (depthwise):
// each thread scales one float array into another `rounds` times (STREAM's "scale": 8 bytes
// per element, read and written), best of 5, in GB/s for all threads. With 64 MiB arrays it
// is DRAM's; with 4 MiB ones (the size of a layer's tensors) the last-level cache's, which
// this project's VMs have plenty of (hundreds of MB reported).
typedef struct {
    float *src, *dst;
    size_t floats;
    int rounds;
} bw_job;

static void *bw_thread(void *arg) {
    bw_job *job = arg;
    for (int r = 0; r < job->rounds; r++)
        for (size_t i = 0; i < job->floats; i++) job->dst[i] = 1.5f * job->src[i];
    return NULL;
}

static double memory_bandwidth(int threads, size_t bytes) {
    const size_t floats = bytes / sizeof(float);
    const int rounds = (int)(((size_t)256 << 20) / bytes); // 256 MiB read per thread and trial
    bw_job jobs[2];
    for (int i = 0; i < threads; i++) {
        jobs[i] = (bw_job){bench_alloc(bytes), bench_alloc(bytes), floats, rounds};
        for (size_t k = 0; k < floats; k++) jobs[i].src[k] = (float)(k % 7), jobs[i].dst[k] = 0;
    }
    double best = 0;
    for (int trial = 0; trial < 5; trial++) {
        pthread_t tid[2];
        const double t0 = bench_now_ms();
        for (int i = 0; i < threads; i++)
            if (pthread_create(&tid[i], NULL, bw_thread, &jobs[i]) != 0) {
                fprintf(stderr, "bench_conv: cannot start a thread\n");
                exit(1);
            }
        for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
        const double moved = (double)threads * rounds * 8.0 * (double)floats;
        const double gbs = moved / ((bench_now_ms() - t0) * 1e6);
        if (gbs > best) best = gbs;
    }
    for (int i = 0; i < threads; i++) {
        if (jobs[i].dst[floats - 1] != 1.5f * jobs[i].src[floats - 1])
            fprintf(stderr, "bench_conv: the bandwidth loop went wrong\n");
        free(jobs[i].src), free(jobs[i].dst);
    }
    return best;
}

static int cmd_peak(void) {
    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f");
    int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!has2 && !has512) {
        fprintf(stderr, "bench_conv: no AVX2/FMA; cannot measure an FMA peak\n");
        return 1;
    }
    double p2[2] = {0, 0}, p512[2] = {0, 0};
    for (int t = 1; t <= 2; t++) {
        if (has2) p2[t - 1] = fma_peak(fma_loop_avx2, 8, t);
        if (has512) p512[t - 1] = fma_peak(fma_loop_avx512, 16, t);
    }
    const char *isa = has512 ? "avx512" : "avx2";
    const double *best = has512 ? p512 : p2;
    const size_t dram = (size_t)64 << 20, cache = (size_t)4 << 20;
    printf("{\"kind\":\"peak\",\"isa\":\"%s\",\"gflops\":{\"1\":%.1f,\"2\":%.1f},"
           "\"avx2_gflops\":{\"1\":%.1f,\"2\":%.1f},\"avx512_gflops\":{\"1\":%.1f,\"2\":%.1f},"
           "\"bandwidth_gbs\":{\"1\":%.1f,\"2\":%.1f},\"cache_bandwidth_gbs\":{\"1\":%.1f,"
           "\"2\":%.1f}}\n",
           isa, best[0], best[1], p2[0], p2[1], p512[0], p512[1], memory_bandwidth(1, dram),
           memory_bandwidth(2, dram), memory_bandwidth(1, cache), memory_bandwidth(2, cache));
    return 0;
}

// Whether `threads` threads get `threads` whole cores now: their FMA rate, best of 3 runs of
// ~30 ms, against `peak` (the rate `bench_conv peak` measured). In this VM a vCPU is at times
// taken away for seconds (seen: every impl of a round running 2 threads at 1 thread's speed),
// and bench/run.sh asks this before and after each timed process so that such a process is
// timed again rather than averaged in. Exit status 0: at least 85% of the peak.
static int cmd_cores(int threads, double peak) {
    __builtin_cpu_init();
    const bool has512 = __builtin_cpu_supports("avx512f");
    float (*loop)(int64_t) = has512 ? fma_loop_avx512 : fma_loop_avx2;
    const int lanes = has512 ? 16 : 8;
    const int64_t iters = (int64_t)(peak / threads * 1e9 * 0.03 / (FMA_CHAINS * lanes * 2.0));
    fma_gflops(loop, lanes, threads, iters / 3 + 1); // the clocks come up
    double best = 0;
    for (int trial = 0; trial < 3; trial++) {
        const double g = fma_gflops(loop, lanes, threads, iters + 1);
        if (g > best) best = g;
    }
    const bool whole = best >= 0.85 * peak;
    printf("{\"kind\":\"cores\",\"threads\":%d,\"gflops\":%.1f,\"peak\":%.1f,\"whole\":%s}\n",
           threads, best, peak, whole ? "true" : "false");
    return whole ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// convd on one layer, through the core calls api/api_exec.c makes for its op: conv1d as conv2d
// with H = 1, conv3d (core/conv3d.h), conv_transpose2d on its adjoint conv2d layer
// (core/conv_transpose.h), padding_mode reflect as core/conv_pad.h's copy of x, an unpadded
// conv2d on it, and (dx) the fold of its gradient.

typedef struct {
    const bench_layer *layer;
    conv_geom g;    // the 2-D layer core/ runs (conv3d: its stacked layer, unused)
    conv3d_geom g3; // conv3d only
    float *x, *w, *b, *y, *dy, *dx, *dw, *db; // the layer's tensors, in PyTorch's shapes
    float *xp, *dxp;                          // reflect: x padded, dx in the padded shape
    int64_t pad_dims[3], pad[6];              // reflect: conv_pad_apply's dims and pads
    conv_exec ex;
} convd_case;

static void must(conv_status st, const conv_error *err, const char *what) {
    if (st == CONV_OK) return;
    fprintf(stderr, "bench_conv: %s failed (status %d): %s\n", what, (int)st, err->message);
    exit(1);
}

// The layer's geometry for core/: g (and g3 for conv3d), checked.
static void geom_of(convd_case *k, const bench_layer *l) {
    conv_error err = {0};
    const int64_t s = l->stride, d = l->dilation, p = l->pad;
    if (l->op == BENCH_CONV3D) {
        k->g3 = (conv3d_geom){.n = l->n, .c = l->c, .d = l->d, .h = l->h, .w = l->w, .f = l->f,
                              .kd = l->kd, .kh = l->kh, .kw = l->kw, .groups = l->groups,
                              .stride = {s, s, s}, .dilation = {d, d, d},
                              .padding = {p, p, p, p, p, p}};
        must(conv3d_geom_check(&k->g3, CONV_FLOAT32, &err), &err, "conv3d_geom_check");
        conv3d_plane_geom(&k->g, &k->g3);
        return;
    }
    if (l->op == BENCH_CONV_TRANSPOSE2D) {
        conv_transpose_geom(&k->g, l->n, l->c, l->h, l->w, l->f, l->kh, l->kw, l->groups,
                            (int64_t[2]){s, s}, (int64_t[2]){d, d}, (int64_t[4]){p, p, p, p},
                            (int64_t[2]){0, 0});
    } else {
        const int64_t ph = l->op == BENCH_CONV1D ? 0 : p;
        k->g = (conv_geom){.n = l->n, .c = l->c, .h = l->h, .w = l->w, .f = l->f, .kh = l->kh,
                           .kw = l->kw, .groups = l->groups, .stride_h = s, .stride_w = s,
                           .dilation_h = d, .dilation_w = d, .pad_top = ph, .pad_bottom = ph,
                           .pad_left = p, .pad_right = p};
        if (l->reflect) { // the conv runs unpadded on the padded copy
            memcpy(k->pad_dims, (int64_t[3]){1, l->h, l->w}, sizeof k->pad_dims);
            memcpy(k->pad, (int64_t[6]){0, 0, ph, ph, p, p}, sizeof k->pad);
            k->g.h += 2 * ph;
            k->g.w += 2 * p;
            k->g.pad_top = k->g.pad_bottom = k->g.pad_left = k->g.pad_right = 0;
        }
    }
    must(conv_geom_check(&k->g, CONV_FLOAT32, &err), &err, "conv_geom_check");
}

static int64_t numel_x(const bench_layer *l) {
    return l->n * l->c * (l->op == BENCH_CONV3D ? l->d : 1) * l->h * l->w;
}
static int64_t numel_w(const bench_layer *l) {
    return l->f * (l->c / l->groups) * (l->op == BENCH_CONV3D ? l->kd : 1) * l->kh * l->kw;
}
static int64_t numel_y(const bench_layer *l) {
    return l->n * l->f * bench_layer_do(l) * bench_layer_ho(l) * bench_layer_wo(l);
}

static void case_init(convd_case *k, const bench_layer *l, int threads, conv_algorithm algo) {
    *k = (convd_case){.layer = l};
    geom_of(k, l);
    int64_t nx = numel_x(l), nw = numel_w(l), ny = numel_y(l);
    k->x = bench_alloc(sizeof(float) * (size_t)nx);
    k->dx = bench_alloc(sizeof(float) * (size_t)nx);
    k->w = bench_alloc(sizeof(float) * (size_t)nw);
    k->dw = bench_alloc(sizeof(float) * (size_t)nw);
    k->y = bench_alloc(sizeof(float) * (size_t)ny);
    k->dy = bench_alloc(sizeof(float) * (size_t)ny);
    k->b = bench_alloc(sizeof(float) * (size_t)l->f);
    k->db = bench_alloc(sizeof(float) * (size_t)l->f);
    if (l->reflect) {
        k->xp = bench_alloc(sizeof(float) * (size_t)conv_numel_x(&k->g));
        k->dxp = bench_alloc(sizeof(float) * (size_t)conv_numel_x(&k->g));
    }
    bench_fill(k->x, nx, 1);
    bench_fill(k->w, nw, 2);
    bench_fill(k->b, l->f, 3);
    bench_fill(k->dy, ny, 4);
    const size_t bytes =
        l->op == BENCH_CONV3D
            ? conv3d_workspace_size(&k->g3, CONV_FLOAT32, threads, CONV_WORKSPACE_CAP_DEFAULT)
            : conv_workspace_size(&k->g, CONV_FLOAT32, threads, CONV_WORKSPACE_CAP_DEFAULT);
    k->ex = (conv_exec){.workspace = bench_alloc(bytes), .workspace_bytes = bytes,
                        .threads = threads, .algorithm = algo};
}

static void case_free(convd_case *k) {
    float *bufs[] = {k->x, k->w, k->b, k->y, k->dy, k->dx, k->dw, k->db, k->xp, k->dxp};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(k->ex.workspace);
}

// reflect: xp <- x padded (as api/api_exec.c does for every request that needs x).
static void pad_x(convd_case *k) {
    conv_pad_apply(k->xp, k->x, k->layer->n * k->layer->c, k->pad_dims, k->pad, CONV_PAD_REFLECT,
                   CONV_FLOAT32);
}

static void step_forward(void *ctx, double *part_ms) {
    convd_case *k = ctx;
    conv_error err = {0};
    double t0 = bench_now_ms();
    conv_status st;
    switch (k->layer->op) {
    case BENCH_CONV3D:
        st = conv3d_forward(k->y, k->x, k->w, k->b, &k->g3, CONV_FLOAT32, &k->ex, &err);
        break;
    case BENCH_CONV_TRANSPOSE2D:
        st = conv_transpose2d_forward(k->y, k->x, k->w, k->b, &k->g, CONV_FLOAT32, &k->ex, &err);
        break;
    default:
        if (k->layer->reflect) pad_x(k);
        st = conv2d_forward(k->y, k->layer->reflect ? k->xp : k->x, k->w, k->b, &k->g,
                            CONV_FLOAT32, &k->ex, &err);
    }
    must(st, &err, "forward");
    part_ms[0] = bench_now_ms() - t0;
}

static void step_backward(void *ctx, double *part_ms) {
    convd_case *k = ctx;
    const bench_layer *l = k->layer;
    conv_error err = {0};
    const conv_exec *ex = &k->ex;
    double t0 = bench_now_ms();
    conv_status st;
    switch (l->op) {
    case BENCH_CONV3D:
        st = conv3d_backward_data(k->dx, k->dy, k->w, &k->g3, CONV_FLOAT32, ex, &err);
        break;
    case BENCH_CONV_TRANSPOSE2D:
        st = conv_transpose2d_backward_data(k->dx, k->dy, k->w, &k->g, CONV_FLOAT32, ex, &err);
        break;
    default:
        st = conv2d_backward_data(l->reflect ? k->dxp : k->dx, k->dy, k->w, &k->g, CONV_FLOAT32,
                                  ex, &err);
        if (l->reflect)
            conv_pad_fold(k->dx, k->dxp, l->n * l->c, k->pad_dims, k->pad, CONV_PAD_REFLECT,
                          CONV_FLOAT32);
    }
    must(st, &err, "backward data");
    double t1 = bench_now_ms();
    switch (l->op) {
    case BENCH_CONV3D:
        st = conv3d_backward_weights(k->dw, k->dy, k->x, &k->g3, CONV_FLOAT32, ex, &err);
        break;
    case BENCH_CONV_TRANSPOSE2D:
        st = conv_transpose2d_backward_weights(k->dw, k->dy, k->x, &k->g, CONV_FLOAT32, ex,
                                               &err);
        break;
    default: // a backward request brings x: reflect pads it again
        if (l->reflect) pad_x(k);
        st = conv2d_backward_weights(k->dw, k->dy, l->reflect ? k->xp : k->x, &k->g,
                                     CONV_FLOAT32, ex, &err);
    }
    must(st, &err, "backward weights");
    double t2 = bench_now_ms();
    switch (l->op) {
    case BENCH_CONV3D:
        st = conv3d_backward_bias(k->db, k->dy, &k->g3, CONV_FLOAT32, ex, &err);
        break;
    case BENCH_CONV_TRANSPOSE2D:
        st = conv_transpose2d_backward_bias(k->db, k->dy, &k->g, CONV_FLOAT32, ex, &err);
        break;
    default: st = conv2d_backward_bias(k->db, k->dy, &k->g, CONV_FLOAT32, ex, &err);
    }
    must(st, &err, "backward bias");
    double t3 = bench_now_ms();
    part_ms[0] = t1 - t0;
    part_ms[1] = t2 - t1;
    part_ms[2] = t3 - t2;
}

// ---------------------------------------------------------------------------------------------
// Spot checks: a few elements of y, dx, dw and db recomputed in double from the definition of a
// convolution over three axes (d, h, w; 1 where the layer has none)
//   y[n,f,o] = b[f] + sum_{ch,t} x[n, gr*Cg + ch, src(o*s + t*dil - pad)] * w[f,ch,t]
// (gr = f / Fg; src maps a padded index to the input's: out of range is zero, or reflected).
// Each check sums one index map; dx and dw walk the same map from the other side. A transposed
// layer is checked on its adjoint convolution, written here from PyTorch's definition: the
// adjoint's x is the transposed dy, its dy the transposed x, and the transposed y is the
// adjoint's dx (plus the bias), the transposed dx the adjoint's y.

typedef struct {
    double sum, mag; // the value and the sum of |terms|, which scales the float32 tolerance
} spot_sum;

static void spot_add(spot_sum *s, double a, double b) {
    s->sum += a * b;
    s->mag += fabs(a * b);
}

// A convolution's index map: x (n, c, in[3]), w (f, c/groups, k[3]), dy (n, f, out[3]).
typedef struct {
    int64_t n, c, f, groups;
    int64_t in[3], k[3], out[3], stride, dil, pad[3];
    int reflect;
    const float *x, *w, *dy;
} spot_layer;

static spot_layer spot_layer_of(const convd_case *k) {
    const bench_layer *l = k->layer;
    const int deep = l->op == BENCH_CONV3D, flat = l->op == BENCH_CONV1D;
    spot_layer s = {.n = l->n, .c = l->c, .f = l->f, .groups = l->groups, .stride = l->stride,
                    .dil = l->dilation, .reflect = l->reflect,
                    .in = {deep ? l->d : 1, l->h, l->w},
                    .k = {deep ? l->kd : 1, l->kh, l->kw},
                    .out = {bench_layer_do(l), bench_layer_ho(l), bench_layer_wo(l)},
                    .pad = {deep ? l->pad : 0, flat ? 0 : l->pad, l->pad},
                    .x = k->x, .w = k->w, .dy = k->dy};
    if (l->op == BENCH_CONV_TRANSPOSE2D) { // the adjoint: channels and sizes swap sides
        s.c = l->f;
        s.f = l->c;
        memcpy(s.in, s.out, sizeof s.in);
        memcpy(s.out, (int64_t[3]){1, l->h, l->w}, sizeof s.out);
        s.x = k->dy;
        s.dy = k->x;
    }
    return s;
}

// The input index that padded index p reads along an axis of size n, or -1 for a zero.
static int64_t spot_source(int64_t p, int64_t n, int reflect) {
    if (p >= 0 && p < n) return p;
    if (!reflect) return -1;
    return p < 0 ? -p : 2 * (n - 1) - p;
}

// Which product a walk sums: y = x*w, dx = dy*w, dw = dy*x.
typedef enum { SPOT_Y, SPOT_DX, SPOT_DW } spot_kind;

// Coordinates a walk is pinned to (-1 = summed over): output (n, f, o[3]), input (xch, xi[3]),
// tap (ch, t[3]). The walk visits every (output, tap) pair of the layer that reads inside x.
typedef struct {
    int64_t n, f, o[3], xch, xi[3], ch, t[3];
} spot_pin;

static int pinned_out(int64_t pin, int64_t v) { return pin >= 0 && v != pin; }

// Row-major offset of (a, b, i[3]) in a tensor of dims (., d1, e[3]).
static int64_t spot_at(int64_t a, int64_t d1, int64_t b, const int64_t e[3], const int64_t i[3]) {
    return (((a * d1 + b) * e[0] + i[0]) * e[1] + i[1]) * e[2] + i[2];
}

// The axes from `axis` on, with (o, t, xi) fixed above it: adds every term into s.
static void spot_axes(const spot_layer *L, spot_kind kind, const spot_pin *p, int axis,
                      int64_t n, int64_t f, int64_t ch, int64_t xch, int64_t o[3], int64_t t[3],
                      int64_t xi[3], spot_sum *s) {
    if (axis == 3) {
        double wv = L->w[spot_at(f, L->c / L->groups, ch, L->k, t)];
        double xv = L->x[spot_at(n, L->c, xch, L->in, xi)];
        double dyv = L->dy[spot_at(n, L->f, f, L->out, o)];
        spot_add(s, kind == SPOT_Y ? xv : dyv, kind == SPOT_DW ? xv : wv);
        return;
    }
    for (o[axis] = 0; o[axis] < L->out[axis]; o[axis]++) {
        if (pinned_out(p->o[axis], o[axis])) continue;
        for (t[axis] = 0; t[axis] < L->k[axis]; t[axis]++) {
            if (pinned_out(p->t[axis], t[axis])) continue;
            xi[axis] = spot_source(o[axis] * L->stride + t[axis] * L->dil - L->pad[axis],
                                   L->in[axis], L->reflect);
            if (xi[axis] < 0 || pinned_out(p->xi[axis], xi[axis])) continue;
            spot_axes(L, kind, p, axis + 1, n, f, ch, xch, o, t, xi, s);
        }
    }
}

static spot_sum spot_walk(const spot_layer *L, spot_kind kind, spot_pin p) {
    const int64_t cg = L->c / L->groups, fg = L->f / L->groups;
    spot_sum s = {0, 0};
    int64_t o[3], t[3], xi[3];
    for (int64_t n = 0; n < L->n; n++) {
        if (pinned_out(p.n, n)) continue;
        for (int64_t f = 0; f < L->f; f++) {
            if (pinned_out(p.f, f)) continue;
            for (int64_t ch = 0; ch < cg; ch++) {
                int64_t xch = (f / fg) * cg + ch;
                if (pinned_out(p.ch, ch) || pinned_out(p.xch, xch)) continue;
                spot_axes(L, kind, &p, 0, n, f, ch, xch, o, t, xi, &s);
            }
        }
    }
    return s;
}

static int spot_ok(const char *what, const char *layer, double got, spot_sum want) {
    double tol = 1e-4 * want.mag + 1e-5;
    if (fabs(got - want.sum) <= tol) return 1;
    fprintf(stderr, "bench_conv: layer %s: %s is %.7g, expected %.7g (tolerance %.2g)\n", layer,
            what, got, want.sum, tol);
    return 0;
}

static int64_t pick(uint64_t *state, int64_t below) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (int64_t)((*state >> 33) % (uint64_t)below);
}

static void pick3(uint64_t *state, int64_t out[3], const int64_t below[3]) {
    for (int a = 0; a < 3; a++) out[a] = pick(state, below[a]);
}

#define NO_PIN3 {-1, -1, -1}

// Spot-checks y, dx, dw and db after a forward and a backward of `k`; exits on a mismatch.
static void spot_check(const convd_case *k) {
    const spot_layer L = spot_layer_of(k);
    const int transposed = k->layer->op == BENCH_CONV_TRANSPOSE2D;
    // The adjoint's y and dx are the transposed layer's dx and y; the bias goes with the layer's y.
    const float *conv_y = transposed ? k->dx : k->y, *conv_dx = transposed ? k->y : k->dx;
    const int64_t cg = L.c / L.groups;
    const char *name = k->layer->name;
    uint64_t st = 12345;
    int ok = 1;
    for (int rep = 0; rep < 6; rep++) {
        spot_pin p = {.n = pick(&st, L.n), .f = pick(&st, L.f), .xch = -1, .xi = NO_PIN3,
                      .ch = -1, .t = NO_PIN3};
        pick3(&st, p.o, L.out);
        spot_sum want = spot_walk(&L, SPOT_Y, p);
        if (!transposed) spot_add(&want, k->b[p.f], 1);
        ok &= spot_ok("y", name, conv_y[spot_at(p.n, L.f, p.f, L.out, p.o)], want);

        spot_pin q = {.n = p.n, .f = -1, .o = NO_PIN3, .xch = pick(&st, L.c), .ch = -1,
                      .t = NO_PIN3};
        pick3(&st, q.xi, L.in);
        want = spot_walk(&L, SPOT_DX, q);
        if (transposed) spot_add(&want, k->b[q.xch], 1);
        ok &= spot_ok("dx", name, conv_dx[spot_at(q.n, L.c, q.xch, L.in, q.xi)], want);

        spot_pin r = {.n = -1, .f = p.f, .o = NO_PIN3, .xch = -1, .xi = NO_PIN3,
                      .ch = pick(&st, cg)};
        pick3(&st, r.t, L.k);
        want = spot_walk(&L, SPOT_DW, r);
        ok &= spot_ok("dw", name, k->dw[spot_at(r.f, cg, r.ch, L.k, r.t)], want);

        // db sums the layer's dy: the adjoint's x for a transposed layer.
        const float *dy = transposed ? L.x : L.dy;
        const int64_t channels = transposed ? L.c : L.f, f = pick(&st, channels);
        const int64_t *e = transposed ? L.in : L.out, plane = e[0] * e[1] * e[2];
        spot_sum db = {0, 0};
        for (int64_t m = 0; m < L.n; m++)
            for (int64_t i = 0; i < plane; i++)
                spot_add(&db, dy[(m * channels + f) * plane + i], 1);
        ok &= spot_ok("db", name, k->db[f], db);
    }
    if (!ok) exit(1);
}

// ---------------------------------------------------------------------------------------------
// Commands.

static const char *const op_names[] = {[BENCH_CONV2D] = "conv2d", [BENCH_CONV1D] = "conv1d",
                                       [BENCH_CONV3D] = "conv3d",
                                       [BENCH_CONV_TRANSPOSE2D] = "conv_transpose2d"};

// The selected layers (BENCH_LAYERS) as JSON: every peer and bench/report.py read them here.
static int cmd_layers(void) {
    fputc('[', stdout);
    int first = 1;
    for (int i = 0; i < bench_layer_count; i++) {
        const bench_layer *l = &bench_layers[i];
        if (!bench_layer_selected(l)) continue;
        printf("%s\n{\"name\":\"%s\",\"what\":", first ? "" : ",", l->name);
        first = 0;
        bench_json_string(stdout, l->what);
        printf(",\"op\":\"%s\",\"padding_mode\":\"%s\",\"n\":%lld,\"c\":%lld,\"d\":%lld,"
               "\"h\":%lld,\"w\":%lld,\"f\":%lld,\"kd\":%lld,\"kh\":%lld,\"kw\":%lld,"
               "\"stride\":%lld,\"pad\":%lld,\"groups\":%lld,\"dilation\":%lld,\"do\":%lld,"
               "\"ho\":%lld,\"wo\":%lld,\"flops\":%.0f}",
               op_names[l->op], l->reflect ? "reflect" : "zeros", (long long)l->n,
               (long long)l->c, (long long)(l->op == BENCH_CONV3D ? l->d : 1), (long long)l->h,
               (long long)l->w, (long long)l->f,
               (long long)(l->op == BENCH_CONV3D ? l->kd : 1), (long long)l->kh,
               (long long)l->kw, (long long)l->stride, (long long)l->pad, (long long)l->groups,
               (long long)l->dilation, (long long)bench_layer_do(l), (long long)bench_layer_ho(l),
               (long long)bench_layer_wo(l), bench_layer_flops(l));
    }
    puts("\n]");
    return 0;
}

// `convd run` times the layers with "algorithm" auto (impl "convd"), or with BENCH_ALGORITHM=direct
// never Winograd (impl "convd_direct": the rows per algorithm); each record says what ran.
static int cmd_run(int threads) {
    const char *algo_env = getenv("BENCH_ALGORITHM");
    const bool direct = algo_env && strcmp(algo_env, "direct") == 0;
    const conv_algorithm algo = direct ? CONV_ALGO_DIRECT : CONV_ALGO_AUTO;
    const char *impl = direct ? "convd_direct" : "convd";
    static const char *const fwd_parts[] = {"y"}, *const bwd_parts[] = {"dx", "dw", "db"};
    bench_plan plan = bench_plan_from_env();
    double *samples = bench_alloc(sizeof(double) * 3 * (size_t)plan.repeats);
    char extra[256];
    for (int i = 0; i < bench_layer_count; i++) {
        if (!bench_layer_selected(&bench_layers[i])) continue;
        convd_case k;
        case_init(&k, &bench_layers[i], threads, algo);
        double unused[3];
        step_forward(&k, unused);
        step_backward(&k, unused);
        spot_check(&k);
        conv_algorithm ran = CONV_ALGO_DIRECT;
        must(conv_pick_algorithm(&k.g, CONV_FLOAT32, algo, k.ex.workspace_bytes, &ran, NULL),
             &(conv_error){0}, "conv_pick_algorithm");
        snprintf(extra, sizeof extra,
                 "\"core\":\"%s\",\"core_source\":\"%s\",\"isa\":\"%s\",\"gemm\":\"%s\","
                 "\"algorithm\":\"%s\",\"workspace\":%zu",
                 blas_core_name(), blas_core_source(), conv_isa_name(CONV_ISA_AUTO),
                 conv_gemm_name(CONV_ISA_AUTO),
                 conv_algorithm_name(ran), k.ex.workspace_bytes);
        bench_measure(samples, step_forward, &k, 1, &plan);
        bench_emit_times(stdout, impl, k.layer, "forward", threads, &plan, 1, fwd_parts,
                         samples, extra);
        bench_measure(samples, step_backward, &k, 3, &plan);
        bench_emit_times(stdout, impl, k.layer, "backward", threads, &plan, 3, bwd_parts,
                         samples, extra);
        case_free(&k);
    }
    free(samples);
    return 0;
}

static double rss_bytes(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0; // kilobytes on Linux
}

// One (b)-sized forward + backward with the default workspace cap, against the target: its
// inputs (x, w, b, dy) + outputs (y, dx, dw, db) + the cap + 16 MiB.
static int cmd_rss(int threads) {
    const bench_layer *l = &bench_layers[1];
    double before = rss_bytes();
    convd_case k;
    case_init(&k, l, threads, CONV_ALGO_AUTO);
    double unused[3];
    step_forward(&k, unused);
    step_backward(&k, unused);
    double peak = rss_bytes();
    double tensors = 4.0 * (2.0 * (double)(conv_numel_x(&k.g) + conv_numel_w(&k.g) +
                                           conv_numel_y(&k.g) + l->f));
    double budget = tensors + (double)CONV_WORKSPACE_CAP_DEFAULT + 16.0 * 1048576.0;
    printf("{\"kind\":\"rss\",\"layer\":\"%s\",\"threads\":%d,\"peak_rss\":%.0f,"
           "\"rss_before\":%.0f,\"tensors\":%.0f,\"workspace\":%zu,\"cap\":%zu,"
           "\"budget\":%.0f,\"ok\":%s}\n",
           l->name, threads, peak, before, tensors, k.ex.workspace_bytes,
           (size_t)CONV_WORKSPACE_CAP_DEFAULT, budget, peak < budget ? "true" : "false");
    case_free(&k);
    return 0;
}

typedef struct {
    const float *a, *b;
    float *c;
    int m, n, k;
    bool ta, tb;
    gemm_fn *own; // convd's GEMM, or NULL for cblas_sgemm
} gemm_case;

static void step_gemm(void *ctx, double *part_ms) {
    const gemm_case *q = ctx;
    int lda = q->ta ? q->m : q->k, ldb = q->tb ? q->k : q->n;
    double t0 = bench_now_ms();
    if (q->own)
        q->own(q->ta, q->tb, q->m, q->n, q->k, q->a, lda, q->b, ldb, false, q->c, q->n);
    else
        cblas_sgemm(CblasRowMajor, q->ta ? CblasTrans : CblasNoTrans,
                    q->tb ? CblasTrans : CblasNoTrans, q->m, q->n, q->k, 1.0f, q->a, lda, q->b,
                    ldb, 0.0f, q->c, q->n);
    part_ms[0] = bench_now_ms() - t0;
}

// Best-of milliseconds of one GEMM.
static double time_gemm(gemm_case *q, double *samples, const bench_plan *plan) {
    bench_measure(samples, step_gemm, q, 1, plan);
    double ms = samples[0];
    for (int r = 1; r < plan->repeats; r++) ms = samples[r] < ms ? samples[r] : ms;
    return ms;
}

// The GEMMs of im2col + GEMM for one image and group with all Ho*Wo pixels as columns (the
// transposes as core/conv_gemm.c calls them): forward (F/G x K)(K x P), backward data
// (K x F/G)(F/G x P) with w transposed, backward weights (F/G x P)(P x K) with col transposed.
// Each is timed with cblas_sgemm (the BLAS core in use) and, where the ISA in use has one,
// with convd's own GEMM (core/gemm.h), which conv passes then call instead; `gflops` is the
// one convd runs, the ceiling of its im2col + GEMM. Their results must agree, or no numbers.
// A ceiling is what the GEMM can do, so noise only lowers it: best of 3x the usual repeats.
// conv2d and conv1d layers only (conv3d and transposed layers run other GEMMs).
static int cmd_gemm(void) {
    bench_plan plan = bench_plan_from_env();
    plan.repeats *= 3;
    double *samples = bench_alloc(sizeof(double) * (size_t)plan.repeats);
    gemm_fn *own = conv_isa_default() == CONV_ISA_AVX512 ? gemm_avx512_f32 : NULL;
    for (int i = 0; i < bench_layer_count; i++) {
        const bench_layer *l = &bench_layers[i];
        if (!bench_layer_selected(l) || l->op == BENCH_CONV3D ||
            l->op == BENCH_CONV_TRANSPOSE2D)
            continue;
        int fg = (int)(l->f / l->groups), kk = (int)(l->c / l->groups * l->kh * l->kw);
        int p = (int)(bench_layer_ho(l) * bench_layer_wo(l));
        struct {
            const char *pass;
            int m, n, k;
            bool ta, tb;
        } shapes[] = {{"forward", fg, p, kk, false, false},
                      {"backward_data", kk, p, fg, true, false},
                      {"backward_weights", fg, kk, p, false, true}};
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            gemm_case q = {.m = shapes[s].m, .n = shapes[s].n, .k = shapes[s].k,
                           .ta = shapes[s].ta, .tb = shapes[s].tb};
            const size_t cn = (size_t)q.m * (size_t)q.n;
            float *a = bench_alloc(sizeof(float) * (size_t)q.m * (size_t)q.k);
            float *b = bench_alloc(sizeof(float) * (size_t)q.k * (size_t)q.n);
            float *c_blas = bench_alloc(sizeof(float) * cn);
            q.c = bench_alloc(sizeof(float) * cn);
            bench_fill(a, (int64_t)q.m * q.k, 5);
            bench_fill(b, (int64_t)q.k * q.n, 6);
            q.a = a;
            q.b = b;
            const double blas_ms = time_gemm(&q, samples, &plan);
            double ms = blas_ms;
            if (own) {
                memcpy(c_blas, q.c, sizeof(float) * cn);
                q.own = own;
                ms = time_gemm(&q, samples, &plan);
                double worst = 0, scale = 0;
                for (size_t e = 0; e < cn; e++) {
                    double d = fabs((double)q.c[e] - c_blas[e]);
                    worst = d > worst ? d : worst;
                    scale = fabs((double)c_blas[e]) > scale ? fabs((double)c_blas[e]) : scale;
                }
                if (worst > 1e-4 * scale + 1e-30) {
                    fprintf(stderr, "bench_conv gemm: convd's GEMM differs from cblas_sgemm by "
                                    "%g (largest |c| %g) on layer %s %s\n",
                            worst, scale, l->name, shapes[s].pass);
                    return 1;
                }
            }
            printf("{\"kind\":\"gemm\",\"layer\":\"%s\",\"pass\":\"%s\",\"m\":%d,\"n\":%d,"
                   "\"k\":%d,\"impl\":\"%s\",\"ms\":%.6f,\"gflops\":%.2f,"
                   "\"cblas_gflops\":%.2f,\"core\":\"%s\",\"isa\":\"%s\"}\n",
                   l->name, shapes[s].pass, q.m, q.n, q.k, own ? "convd" : "cblas", ms,
                   2.0 * q.m * q.n * q.k / (ms * 1e6), 2.0 * q.m * q.n * q.k / (blas_ms * 1e6),
                   blas_core_name(), conv_isa_name(CONV_ISA_AUTO));
            free(a);
            free(b);
            free(c_blas);
            free(q.c);
        }
    }
    free(samples);
    return 0;
}

int main(int argc, char **argv) {
    blas_boot(argv);
    const char *cmd = argc > 1 ? argv[1] : "";
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (strcmp(cmd, "layers") == 0) return cmd_layers();
    if (strcmp(cmd, "peak") == 0) return cmd_peak();
    if (strcmp(cmd, "run") == 0 && threads >= 1) return cmd_run(threads);
    if (strcmp(cmd, "rss") == 0 && threads >= 1) return cmd_rss(threads);
    if (strcmp(cmd, "gemm") == 0) return cmd_gemm();
    if (strcmp(cmd, "cores") == 0 && threads >= 1 && argc > 3 && atof(argv[3]) > 0)
        return cmd_cores(threads, atof(argv[3]));
    fprintf(stderr, "usage: bench_conv layers | peak | run THREADS | rss [THREADS] | gemm | "
                    "cores THREADS PEAK_GFLOPS\n");
    return 2;
}
