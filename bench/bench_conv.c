// bench_conv: convd's side of `make bench` (bench/run.sh runs it; bench/report.py reads it).
//   bench_conv layers        the layer suite as JSON (bench/peer_torch.py takes it from here)
//   bench_conv peak          the machine's FMA peak, 1 and 2 threads, one JSON line
//   bench_conv run THREADS   forward and backward (dx + dw + db) of every layer, JSON lines
//                            (BENCH_ALGORITHM=direct: never Winograd, as impl convd_direct)
//   bench_conv rss [THREADS] one (b)-sized forward + backward, then its peak RSS, one JSON line
//   bench_conv gemm          1-thread sgemm on each layer's three GEMM shapes (per image and
//                            group), OpenBLAS's and convd's own: the ceiling on im2col + GEMM
// Timings follow bench_plan_from_env() like every peer. Before a layer is timed its results are
// spot-checked against sums computed here, so a broken build cannot post fast numbers.
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
    printf("{\"kind\":\"peak\",\"isa\":\"%s\",\"gflops\":{\"1\":%.1f,\"2\":%.1f},"
           "\"avx2_gflops\":{\"1\":%.1f,\"2\":%.1f},\"avx512_gflops\":{\"1\":%.1f,\"2\":%.1f}}\n",
           isa, best[0], best[1], p2[0], p2[1], p512[0], p512[1]);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// convd on one layer.

typedef struct {
    const bench_layer *layer;
    conv_geom g;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
    conv_exec ex;
} convd_case;

static conv_geom geom_of(const bench_layer *l) {
    return (conv_geom){.n = l->n, .c = l->c, .h = l->h, .w = l->w, .f = l->f, .kh = l->kh,
                       .kw = l->kw, .groups = l->groups, .stride_h = l->stride,
                       .stride_w = l->stride, .dilation_h = l->dilation,
                       .dilation_w = l->dilation,
                       .pad_top = l->pad, .pad_bottom = l->pad, .pad_left = l->pad,
                       .pad_right = l->pad};
}

static void must(conv_status st, const conv_error *err, const char *what) {
    if (st == CONV_OK) return;
    fprintf(stderr, "bench_conv: %s failed (status %d): %s\n", what, (int)st, err->message);
    exit(1);
}

static void case_init(convd_case *k, const bench_layer *l, int threads, conv_algorithm algo) {
    conv_error err = {0};
    k->layer = l;
    k->g = geom_of(l);
    must(conv_geom_check(&k->g, CONV_FLOAT32, &err), &err, "conv_geom_check");
    int64_t nx = conv_numel_x(&k->g), nw = conv_numel_w(&k->g), ny = conv_numel_y(&k->g);
    k->x = bench_alloc(sizeof(float) * (size_t)nx);
    k->dx = bench_alloc(sizeof(float) * (size_t)nx);
    k->w = bench_alloc(sizeof(float) * (size_t)nw);
    k->dw = bench_alloc(sizeof(float) * (size_t)nw);
    k->y = bench_alloc(sizeof(float) * (size_t)ny);
    k->dy = bench_alloc(sizeof(float) * (size_t)ny);
    k->b = bench_alloc(sizeof(float) * (size_t)l->f);
    k->db = bench_alloc(sizeof(float) * (size_t)l->f);
    bench_fill(k->x, nx, 1);
    bench_fill(k->w, nw, 2);
    bench_fill(k->b, l->f, 3);
    bench_fill(k->dy, ny, 4);
    const size_t bytes =
        conv_workspace_size(&k->g, CONV_FLOAT32, threads, CONV_WORKSPACE_CAP_DEFAULT);
    k->ex = (conv_exec){.workspace = bench_alloc(bytes), .workspace_bytes = bytes,
                        .threads = threads, .algorithm = algo};
}

static void case_free(convd_case *k) {
    float *bufs[] = {k->x, k->w, k->b, k->y, k->dy, k->dx, k->dw, k->db};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(k->ex.workspace);
}

static void step_forward(void *ctx, double *part_ms) {
    convd_case *k = ctx;
    conv_error err = {0};
    double t0 = bench_now_ms();
    must(conv2d_forward(k->y, k->x, k->w, k->b, &k->g, CONV_FLOAT32, &k->ex, &err), &err,
         "conv2d_forward");
    part_ms[0] = bench_now_ms() - t0;
}

static void step_backward(void *ctx, double *part_ms) {
    convd_case *k = ctx;
    conv_error err = {0};
    double t0 = bench_now_ms();
    must(conv2d_backward_data(k->dx, k->dy, k->w, &k->g, CONV_FLOAT32, &k->ex, &err), &err,
         "conv2d_backward_data");
    double t1 = bench_now_ms();
    must(conv2d_backward_weights(k->dw, k->dy, k->x, &k->g, CONV_FLOAT32, &k->ex, &err), &err,
         "conv2d_backward_weights");
    double t2 = bench_now_ms();
    must(conv2d_backward_bias(k->db, k->dy, &k->g, CONV_FLOAT32, &k->ex, &err), &err,
         "conv2d_backward_bias");
    double t3 = bench_now_ms();
    part_ms[0] = t1 - t0;
    part_ms[1] = t2 - t1;
    part_ms[2] = t3 - t2;
}

// ---------------------------------------------------------------------------------------------
// Spot checks: a few elements of y, dx, dw and db recomputed in double from the definition
//   y[n,f,r,c] = b[f] + sum_{ch,i,j} x[n, gr*Cg + ch, r*s + i*d - p, c*s + j*d - p] * w[f,ch,i,j]
// (gr = f / Fg). Each check sums one index map; dx and dw walk the same map from the other side.

typedef struct {
    double sum, mag; // the value and the sum of |terms|, which scales the float32 tolerance
} spot_sum;

#define AT4(t, d1, d2, d3, a, b, c, d) ((t)[(((a) * (d1) + (b)) * (d2) + (c)) * (d3) + (d)])

static void spot_add(spot_sum *s, double a, double b) {
    s->sum += a * b;
    s->mag += fabs(a * b);
}


// Which product a walk sums: y = x*w, dx = dy*w, dw = dy*x.
typedef enum { SPOT_Y, SPOT_DX, SPOT_DW } spot_kind;

// Coordinates a walk is pinned to (-1 = summed over): output (n, f, r, c), input (xch, xi, xj),
// tap (ch, i, j). The walk visits every (output, tap) pair of the layer that lands inside x.
typedef struct {
    int64_t n, f, r, c, xch, xi, xj, ch, i, j;
} spot_pin;

static int pinned_out(int64_t pin, int64_t v) { return pin >= 0 && v != pin; }

static spot_sum spot_walk(const convd_case *k, spot_kind kind, spot_pin p) {
    const conv_geom *g = &k->g;
    int64_t ho = conv_out_h(g), wo = conv_out_w(g), cg = g->c / g->groups, fg = g->f / g->groups;
    spot_sum s = {0, 0};
    for (int64_t n = 0; n < g->n; n++) {
        if (pinned_out(p.n, n)) continue;
        for (int64_t f = 0; f < g->f; f++) {
            if (pinned_out(p.f, f)) continue;
            for (int64_t ch = 0; ch < cg; ch++) {
                int64_t xch = (f / fg) * cg + ch;
                if (pinned_out(p.ch, ch) || pinned_out(p.xch, xch)) continue;
                for (int64_t r = 0; r < ho; r++) {
                    if (pinned_out(p.r, r)) continue;
                    for (int64_t i = 0; i < g->kh; i++) {
                        int64_t xi = r * g->stride_h + i * g->dilation_h - g->pad_top;
                        if (pinned_out(p.i, i) || pinned_out(p.xi, xi) || xi < 0 || xi >= g->h)
                            continue;
                        for (int64_t c = 0; c < wo; c++) {
                            if (pinned_out(p.c, c)) continue;
                            for (int64_t j = 0; j < g->kw; j++) {
                                int64_t xj = c * g->stride_w + j * g->dilation_w - g->pad_left;
                                if (pinned_out(p.j, j) || pinned_out(p.xj, xj) || xj < 0 ||
                                    xj >= g->w)
                                    continue;
                                double wv = AT4(k->w, cg, g->kh, g->kw, f, ch, i, j);
                                double xv = AT4(k->x, g->c, g->h, g->w, n, xch, xi, xj);
                                double dyv = AT4(k->dy, g->f, ho, wo, n, f, r, c);
                                spot_add(&s, kind == SPOT_Y ? xv : dyv, kind == SPOT_DW ? xv : wv);
                            }
                        }
                    }
                }
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

// Spot-checks y, dx, dw and db after a forward and a backward of `k`; exits on a mismatch.
static void spot_check(const convd_case *k) {
    const conv_geom *g = &k->g;
    int64_t ho = conv_out_h(g), wo = conv_out_w(g), cg = g->c / g->groups;
    const char *name = k->layer->name;
    uint64_t st = 12345;
    int ok = 1;
    for (int t = 0; t < 6; t++) {
        int64_t n = pick(&st, g->n), f = pick(&st, g->f), r = pick(&st, ho), c = pick(&st, wo);
        spot_sum want = spot_walk(k, SPOT_Y, (spot_pin){n, f, r, c, -1, -1, -1, -1, -1, -1});
        spot_add(&want, k->b[f], 1);
        ok &= spot_ok("y", name, AT4(k->y, g->f, ho, wo, n, f, r, c), want);

        int64_t xc = pick(&st, g->c), xi = pick(&st, g->h), xj = pick(&st, g->w);
        want = spot_walk(k, SPOT_DX, (spot_pin){n, -1, -1, -1, xc, xi, xj, -1, -1, -1});
        ok &= spot_ok("dx", name, AT4(k->dx, g->c, g->h, g->w, n, xc, xi, xj), want);

        int64_t ch = pick(&st, cg), i = pick(&st, g->kh), j = pick(&st, g->kw);
        want = spot_walk(k, SPOT_DW, (spot_pin){-1, f, -1, -1, -1, -1, -1, ch, i, j});
        ok &= spot_ok("dw", name, AT4(k->dw, cg, g->kh, g->kw, f, ch, i, j), want);

        spot_sum db = {0, 0};
        for (int64_t m = 0; m < g->n; m++)
            for (int64_t q = 0; q < ho * wo; q++)
                spot_add(&db, k->dy[(m * g->f + f) * ho * wo + q], 1);
        ok &= spot_ok("db", name, k->db[f], db);
    }
    if (!ok) exit(1);
}

// ---------------------------------------------------------------------------------------------
// Commands.

static int cmd_layers(void) {
    fputc('[', stdout);
    for (int i = 0; i < bench_layer_count; i++) {
        const bench_layer *l = &bench_layers[i];
        printf("%s\n{\"name\":\"%s\",\"what\":", i ? "," : "", l->name);
        bench_json_string(stdout, l->what);
        printf(",\"n\":%lld,\"c\":%lld,\"h\":%lld,\"w\":%lld,\"f\":%lld,\"kh\":%lld,\"kw\":%lld,"
               "\"stride\":%lld,\"pad\":%lld,\"groups\":%lld,\"dilation\":%lld,\"ho\":%lld,"
               "\"wo\":%lld,\"flops\":%.0f}",
               (long long)l->n, (long long)l->c, (long long)l->h, (long long)l->w,
               (long long)l->f, (long long)l->kh, (long long)l->kw, (long long)l->stride,
               (long long)l->pad, (long long)l->groups, (long long)l->dilation,
               (long long)bench_layer_ho(l),
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
static int cmd_gemm(void) {
    bench_plan plan = bench_plan_from_env();
    plan.repeats *= 3;
    double *samples = bench_alloc(sizeof(double) * (size_t)plan.repeats);
    gemm_fn *own = conv_isa_default() == CONV_ISA_AVX512 ? gemm_avx512_f32 : NULL;
    for (int i = 0; i < bench_layer_count; i++) {
        const bench_layer *l = &bench_layers[i];
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
    fprintf(stderr, "usage: bench_conv layers | peak | run THREADS | rss [THREADS] | gemm\n");
    return 2;
}
