// The conv core (core/conv.h) against the naive reference (core/conv_ref.h), and the reference
// itself against finite differences and the seed notes' identities. Also: geometry checking,
// workspace sizing and refusal, sizes and FLOPs.
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv.h"
#include "core/conv_ref.h"
#include "server/blas_boot.h"
#include "tests/harness/conv_harness.h"
#include "tests/testlib.h"

enum { SWEEP_CONFIGS = 400 };

// The closed formula (conv_out_size) against counting window positions (conv_ref_out_size),
// and padding "same" against its definition: total dil*(k-1), the smaller half first, giving
// an output as large as the input.
static void test_out_size_and_same(void) {
    int bad_out = 0, bad_same = 0;
    for (int64_t in = 1; in <= 12; in++)
        for (int64_t k = 1; k <= 6; k++)
            for (int64_t s = 1; s <= 3; s++)
                for (int64_t d = 1; d <= 3; d++)
                    for (int64_t lo = 0; lo <= 3; lo++)
                        for (int64_t hi = 0; hi <= 3; hi++) {
                            const int64_t want = conv_ref_out_size(in, k, s, d, lo, hi);
                            const int64_t got = conv_out_size(in, k, s, d, lo, hi);
                            if (want >= 1 ? got != want : got >= 1) bad_out++;
                        }
    for (int64_t k = 1; k <= 8; k++)
        for (int64_t d = 1; d <= 4; d++) {
            int64_t lo = -1, hi = -1;
            conv_pad_same(k, d, &lo, &hi);
            const int64_t total = d * (k - 1);
            if (lo != total / 2 || hi != total - total / 2 ||
                conv_ref_out_size(7, k, 1, d, lo, hi) != 7)
                bad_same++;
        }
    CHECK(bad_out == 0, "conv_out_size disagrees with counting in %d cases", bad_out);
    CHECK(bad_same == 0, "conv_pad_same is wrong for %d (k, dilation) pairs", bad_same);
    CHECK(conv_dtype_size(CONV_FLOAT32) == 4 && conv_dtype_size(CONV_FLOAT64) == 8,
          "dtype sizes %zu %zu", conv_dtype_size(CONV_FLOAT32), conv_dtype_size(CONV_FLOAT64));
}

static void test_counts_and_flops(void) {
    const conv_geom g = {.n = 2, .c = 6, .h = 7, .w = 5, .f = 4, .kh = 3, .kw = 2, .groups = 2,
                         .stride_h = 2, .stride_w = 1, .dilation_h = 1, .dilation_w = 2,
                         .pad_top = 1, .pad_bottom = 0, .pad_left = 0, .pad_right = 1};
    // Ho = floor((7+1-2-1)/2)+1 = 3, Wo = floor((5+1-2-1)/1)+1 = 4
    CHECK(conv_geom_check(&g, CONV_FLOAT32, NULL) == CONV_OK, "valid geometry rejected");
    CHECK(conv_out_h(&g) == 3 && conv_out_w(&g) == 4, "out %lld x %lld, want 3 x 4",
          (long long)conv_out_h(&g), (long long)conv_out_w(&g));
    CHECK(conv_numel_x(&g) == 2 * 6 * 7 * 5, "numel x %lld", (long long)conv_numel_x(&g));
    CHECK(conv_numel_w(&g) == 4 * 3 * 3 * 2, "numel w %lld", (long long)conv_numel_w(&g));
    CHECK(conv_numel_y(&g) == 2 * 4 * 3 * 4, "numel y %lld", (long long)conv_numel_y(&g));
    CHECK(conv_flops(&g) == 2LL * 2 * 4 * 3 * 3 * 2 * 3 * 4, "flops %lld",
          (long long)conv_flops(&g));
    // Every tensor fits (the largest has 2^44 elements, 2^46 bytes) but the FLOPs (2^65) do not.
    const conv_geom huge = {.n = 1, .c = 1 << 20, .h = 1 << 12, .w = 1 << 12, .f = 1 << 20,
                            .kh = 1, .kw = 1, .groups = 1, .stride_h = 1, .stride_w = 1,
                            .dilation_h = 1, .dilation_w = 1};
    CHECK(conv_geom_check(&huge, CONV_FLOAT32, NULL) == CONV_OK,
          "a geometry whose tensors fit is rejected");
    CHECK(conv_flops(&huge) == INT64_MAX, "flops %lld do not saturate",
          (long long)conv_flops(&huge));
}

// The workspace sizes every pass of a case is run with: enough for one thread only (the pass
// must then use fewer threads than allowed), the least for all threads, a small odd size in
// between (placed 8 bytes past a 64-byte boundary: the header asks for 64-byte alignment for
// speed only), and the full size.
enum { WS_ONE_THREAD, WS_MIN, WS_ODD, WS_FULL, WS_KINDS };

static void workspace_of_kind(size_t *bytes, size_t *misalign, int kind, const conv_geom *g,
                              conv_dtype dt, int threads) {
    const size_t lo = conv_workspace_min(g, dt, threads);
    const size_t hi = conv_workspace_size(g, dt, threads, CONV_WORKSPACE_CAP_DEFAULT);
    *misalign = kind == WS_ODD ? 8 : 0;
    switch (kind) {
    case WS_ONE_THREAD: *bytes = conv_workspace_min(g, dt, 1); break;
    case WS_MIN: *bytes = lo; break;
    case WS_ODD: *bytes = (lo + (hi - lo) / 3) | 1; break;
    default: *bytes = hi; break;
    }
}

typedef struct {
    int config;
    bool bias;
    char desc[256];
    double worst[2];         // largest |fast-ref|/scale per dtype
    int chunked, unchunked;  // (threads, dtype) pairs with min < size, and with min == size
    conv_isa isa;            // the variant of the hand-vectorised loops this config runs
    int per_isa[CONV_ISA_AVX512 + 1]; // configs run with each
} sweep_state;

// Every pass of one case against the reference, for threads min_threads..3 and every
// workspace kind.
static void sweep_case(sweep_state *st, const conv_case *cc, int min_threads) {
    const conv_geom *g = &cc->g;
    const char *dt_name = cc->dt == CONV_FLOAT32 ? "float32" : "float64";
    for (int threads = min_threads; threads <= 3; threads++) {
        const size_t lo = conv_workspace_min(g, cc->dt, threads);
        const size_t hi = conv_workspace_size(g, cc->dt, threads, CONV_WORKSPACE_CAP_DEFAULT);
        CHECK(lo <= hi && hi <= CONV_WORKSPACE_CAP_DEFAULT,
              "config %d (%s) %s threads=%d: workspace min %zu, size %zu", st->config, st->desc,
              dt_name, threads, lo, hi);
        if (lo < hi) st->chunked++;
        else st->unchunked++;
        for (int kind = 0; kind < WS_KINDS; kind++) {
            size_t bytes, misalign;
            workspace_of_kind(&bytes, &misalign, kind, g, cc->dt, threads);
            conv_scratch s;
            conv_scratch_init(&s, bytes, misalign, threads);
            s.ex.isa = st->isa;
            for (conv_pass p = PASS_FORWARD; p < PASS_BIAS; p++) {
                char why[512] = "";
                CHECK(conv_case_check(cc, p, &s.ex, why, sizeof why, &st->worst[cc->dt]),
                      "config %d %s bias=%d %s isa=%s threads=%d workspace=%zu(+%zu): %s",
                      st->config, st->desc, st->bias, dt_name, conv_isa_name(st->isa), threads,
                      bytes, misalign, why);
            }
            conv_scratch_free(&s);
        }
    }
    char why[512] = "";
    CHECK(conv_case_check(cc, PASS_BIAS, NULL, why, sizeof why, &st->worst[cc->dt]),
          "config %d %s bias=%d %s: %s", st->config, st->desc, st->bias, dt_name, why);
}

// What the sweep must reach, so that a change to the generator cannot quietly drop a class.
enum {
    COV_POINTWISE, COV_1X1_PADDED, COV_1X1_STRIDED, COV_DEPTHWISE, COV_GROUPED, COV_SAME_EVEN,
    COV_KERNEL_OVER_INPUT, COV_LEFTOVER, COV_ASYMMETRIC, COV_DILATED, COV_H_NE_W, COV_NCF_DIFFER,
    COV_BIAS, COV_NO_BIAS, COV_THREADED, COV_DW_STRIDED, COV_KINDS
};
static const char *const coverage_name[COV_KINDS] = {
    "1x1 stride 1 unpadded", "1x1 stride 1 padded", "1x1 strided", "depthwise", "1 < groups < C",
    "'same' with an even kernel", "kernel larger than the input", "rows left over by the stride",
    "asymmetric padding", "dilation > 1", "H != W", "N, C, F all different", "bias", "no bias",
    "split over threads", "depthwise with stride 2"};

static void tally_coverage(int count[COV_KINDS], const conv_geom *g, bool bias, bool threaded) {
    const int64_t ho = conv_ref_out_size(g->h, g->kh, g->stride_h, g->dilation_h, g->pad_top,
                                         g->pad_bottom);
    const int64_t wo = conv_ref_out_size(g->w, g->kw, g->stride_w, g->dilation_w, g->pad_left,
                                         g->pad_right);
    const int64_t span_h = g->dilation_h * (g->kh - 1) + 1, span_w = g->dilation_w * (g->kw - 1) + 1;
    const bool one = g->kh == 1 && g->kw == 1, stride1 = g->stride_h == 1 && g->stride_w == 1;
    const bool padded = g->pad_top || g->pad_bottom || g->pad_left || g->pad_right;
    const bool hit[COV_KINDS] = {
        [COV_POINTWISE] = one && stride1 && !padded,
        [COV_1X1_PADDED] = one && stride1 && padded,
        [COV_1X1_STRIDED] = one && !stride1,
        [COV_DEPTHWISE] = g->groups == g->c && g->groups > 1,
        [COV_GROUPED] = g->groups > 1 && g->groups < g->c,
        [COV_SAME_EVEN] = stride1 && ho == g->h && wo == g->w && (g->kh % 2 == 0 || g->kw % 2 == 0),
        [COV_KERNEL_OVER_INPUT] = span_h > g->h || span_w > g->w,
        [COV_LEFTOVER] = (g->h + g->pad_top + g->pad_bottom - span_h) % g->stride_h != 0 ||
                         (g->w + g->pad_left + g->pad_right - span_w) % g->stride_w != 0,
        [COV_ASYMMETRIC] = g->pad_top != g->pad_bottom || g->pad_left != g->pad_right,
        [COV_DILATED] = (g->dilation_h > 1 && g->kh > 1) || (g->dilation_w > 1 && g->kw > 1),
        [COV_H_NE_W] = g->h != g->w,
        [COV_NCF_DIFFER] = g->n != g->c && g->c != g->f && g->n != g->f,
        [COV_BIAS] = bias,
        [COV_NO_BIAS] = !bias,
        [COV_THREADED] = threaded,
        [COV_DW_STRIDED] = g->groups == g->c && !stride1 && g->stride_h <= 2 && g->stride_w <= 2,
    };
    for (int k = 0; k < COV_KINDS; k++) count[k] += hit[k];
}

// Several hundred random configurations (conv_random_geom), each in float32 and float64 with
// its own inputs. One in THREADED_EVERY is grown until the fast path splits it over 2 or 3
// threads; those run with 2 and 3 threads only and share float32-exact inputs between the
// dtypes, since they take most of this test's time.
static void test_sweep(void) {
    enum { THREADED_EVERY = 40 };
    uint64_t rng = 20240611;
    sweep_state st = {0};
    int coverage[COV_KINDS] = {0};
    for (int i = 0; i < SWEEP_CONFIGS; i++) {
        conv_geom g;
        const bool threaded = i % THREADED_EVERY == 0;
        // Threaded configs take the classes in turn, so each path is split across threads.
        const conv_geom_class cls =
            threaded ? (conv_geom_class)(i / THREADED_EVERY % GEOM_CLASSES) : GEOM_RANDOM;
        if (!threaded) {
            conv_random_geom(&g, &st.bias, cls, &rng);
        } else if (!CHECK(conv_random_large_geom(&g, &st.bias, cls,
                                                 i % (2 * THREADED_EVERY) ? 9e6 : 13e6, 600000,
                                                 &rng),
                          "no geometry of class %d fits the element budget", (int)cls)) {
            continue;
        }
        st.config = i;
        // Configs take in turn every ISA variant this CPU runs.
        st.isa = (conv_isa)(CONV_ISA_PORTABLE + i % conv_isa_best());
        st.per_isa[st.isa]++;
        tally_coverage(coverage, &g, st.bias, threaded);
        conv_geom_describe(st.desc, sizeof st.desc, &g);
        conv_error err = {0};
        if (!CHECK(conv_geom_check(&g, CONV_FLOAT64, &err) == CONV_OK,
                   "config %d rejected: %s (%s)", i, st.desc, err.message))
            continue;
        conv_case cc;
        if (threaded) {
            conv_case_init(&cc, &g, st.bias, CONV_FLOAT32, &rng);
            sweep_case(&st, &cc, 2);
            conv_case_retype(&cc, CONV_FLOAT64);
            sweep_case(&st, &cc, 2);
            conv_case_free(&cc);
            continue;
        }
        for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++) {
            conv_case_init(&cc, &g, st.bias, dt, &rng);
            sweep_case(&st, &cc, 1);
            conv_case_free(&cc);
        }
    }
    printf("sweep coverage:");
    for (int k = 0; k < COV_KINDS; k++) {
        printf(" %s %d%s", coverage_name[k], coverage[k], k + 1 < COV_KINDS ? "," : "\n");
        CHECK(coverage[k] >= 5, "the sweep has %d configs with %s", coverage[k], coverage_name[k]);
    }
    CHECK(st.chunked > 0 && st.unchunked > 0,
          "the sweep must reach both chunked (%d) and unchunked (%d) workspaces", st.chunked,
          st.unchunked);
    for (conv_isa isa = CONV_ISA_PORTABLE; isa <= conv_isa_best(); isa++) {
        printf("sweep: %d configs with the %s loops\n", st.per_isa[isa], conv_isa_name(isa));
        CHECK(st.per_isa[isa] >= SWEEP_CONFIGS / 4, "only %d configs ran the %s loops",
              st.per_isa[isa], conv_isa_name(isa));
    }
    printf("sweep: %d configs, worst |fast-ref|/scale float32 %.3g, float64 %.3g\n",
           SWEEP_CONFIGS, st.worst[CONV_FLOAT32], st.worst[CONV_FLOAT64]);
}

// loss = sum(y * dy) is linear in each of x, w and b, so a central difference with a large
// step is exact up to rounding; it checks the analytic gradients of the reference and of the
// fast path, each against its own forward.
static double loss_of(const conv_case *cc, bool fast, const conv_exec *ex) {
    const int64_t ny = cc->count[PASS_FORWARD];
    double *y = conv_xmalloc((size_t)ny * sizeof *y);
    if (fast) {
        if (conv2d_forward(y, cc->x, cc->w, cc->b, &cc->g, CONV_FLOAT64, ex, NULL) != CONV_OK)
            for (int64_t i = 0; i < ny; i++) y[i] = NAN;
    } else {
        conv_ref_forward(y, cc->x, cc->w, cc->b, &cc->g);
    }
    double loss = 0;
    for (int64_t i = 0; i < ny; i++) loss += y[i] * cc->dy[i];
    free(y);
    return loss;
}

static void check_fd_against(conv_case *cc, bool fast, const conv_exec *ex, const char *label) {
    const double step = 1e-3;
    // Gradients come from the dtype copies, which keep the unperturbed values throughout.
    double *grads[PASS_COUNT] = {0};
    double *params[PASS_COUNT] = {NULL, cc->x, cc->w, cc->b};
    for (conv_pass p = PASS_DATA; p < PASS_COUNT; p++) {
        grads[p] = conv_xmalloc((size_t)cc->count[p] * sizeof(double));
        if (!fast) {
            memcpy(grads[p], cc->ref[p], (size_t)cc->count[p] * sizeof(double));
            continue;
        }
        if (conv_case_fast(cc, p, grads[p], ex, NULL) != CONV_OK)
            for (int64_t i = 0; i < cc->count[p]; i++) grads[p][i] = NAN;
    }
    for (conv_pass p = PASS_DATA; p < PASS_COUNT; p++) {
        if (!params[p]) continue;
        int bad = 0;
        double worst = 0;
        for (int64_t i = 0; i < cc->count[p]; i++) {
            const double keep = params[p][i];
            params[p][i] = keep + step;
            const double up = loss_of(cc, fast, ex);
            params[p][i] = keep - step;
            const double down = loss_of(cc, fast, ex);
            params[p][i] = keep;
            const double fd = (up - down) / (2 * step), err = fabs(fd - grads[p][i]);
            if (!(err <= 1e-9 * (1 + fabs(fd)))) bad++;
            if (err > worst || isnan(err)) worst = err;
        }
        CHECK(bad == 0, "%s %s: %d of %lld elements off the finite difference (worst %.3g)",
              label, conv_pass_name(p), bad, (long long)cc->count[p], worst);
    }
    for (conv_pass p = PASS_DATA; p < PASS_COUNT; p++) free(grads[p]);
}

static void test_finite_differences(void) {
    const conv_geom cases[] = {
        // stride 2 with a leftover row, asymmetric padding
        {.n = 2, .c = 2, .h = 6, .w = 5, .f = 3, .kh = 3, .kw = 2, .groups = 1, .stride_h = 2,
         .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_top = 1, .pad_bottom = 0,
         .pad_left = 0, .pad_right = 1},
        // dilation 2 on one axis, H != W
        {.n = 1, .c = 2, .h = 7, .w = 6, .f = 2, .kh = 3, .kw = 3, .groups = 1, .stride_h = 1,
         .stride_w = 1, .dilation_h = 2, .dilation_w = 1, .pad_top = 2, .pad_bottom = 1,
         .pad_left = 1, .pad_right = 0},
        // groups 2, stride 2 on the other axis
        {.n = 2, .c = 4, .h = 4, .w = 5, .f = 4, .kh = 2, .kw = 3, .groups = 2, .stride_h = 1,
         .stride_w = 2, .dilation_h = 1, .dilation_w = 1, .pad_top = 0, .pad_bottom = 1,
         .pad_left = 2, .pad_right = 0},
        // everything at once
        {.n = 1, .c = 2, .h = 6, .w = 7, .f = 2, .kh = 3, .kw = 2, .groups = 2, .stride_h = 2,
         .stride_w = 2, .dilation_h = 2, .dilation_w = 2, .pad_top = 1, .pad_bottom = 2,
         .pad_left = 0, .pad_right = 3},
    };
    uint64_t rng = 77;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conv_case cc;
        conv_case_init(&cc, &cases[i], true, CONV_FLOAT64, &rng);
        conv_scratch s;
        conv_scratch_init(&s, conv_workspace_size(&cases[i], CONV_FLOAT64, 2, 1 << 20), 0, 2);
        char label[320];
        conv_geom_describe(label, sizeof label, &cases[i]);
        check_fd_against(&cc, false, &s.ex, label);
        check_fd_against(&cc, true, &s.ex, label);
        conv_scratch_free(&s);
        conv_case_free(&cc);
    }
}

// The seed notes' two identities for one channel and stride 1, written from the notes rather
// than the formula: dw is the (valid) correlation of the padded x with dy, and dx is the full
// convolution of dy with the kernel, cropped by the padding (a convolution proper flips the
// kernel by 180 degrees relative to the forward's correlation).

// out (ih-kh+1, iw-kw+1) = valid cross-correlation of in (ih, iw) with k (kh, kw)
static void correlate_valid(double *out, const double *in, int64_t ih, int64_t iw,
                            const double *k, int64_t kh, int64_t kw) {
    const int64_t oh = ih - kh + 1, ow = iw - kw + 1;
    for (int64_t r = 0; r < oh; r++)
        for (int64_t c = 0; c < ow; c++) {
            double sum = 0;
            for (int64_t a = 0; a < kh; a++)
                for (int64_t b = 0; b < kw; b++) sum += in[(r + a) * iw + c + b] * k[a * kw + b];
            out[r * ow + c] = sum;
        }
}

// out (ih+kh-1, iw+kw-1) = full convolution of in (ih, iw) with k (kh, kw):
// out[i,j] = sum_{a,b} in[i-a, j-b] * k[a,b], terms outside `in` dropped.
static void convolve_full(double *out, const double *in, int64_t ih, int64_t iw,
                          const double *k, int64_t kh, int64_t kw) {
    const int64_t oh = ih + kh - 1, ow = iw + kw - 1;
    for (int64_t i = 0; i < oh; i++)
        for (int64_t j = 0; j < ow; j++) {
            double sum = 0;
            for (int64_t a = 0; a < kh; a++)
                for (int64_t b = 0; b < kw; b++)
                    if (i - a >= 0 && i - a < ih && j - b >= 0 && j - b < iw)
                        sum += in[(i - a) * iw + j - b] * k[a * kw + b];
            out[i * ow + j] = sum;
        }
}

static int count_off(const double *got, const double *want, int64_t count) {
    int off = 0;
    for (int64_t i = 0; i < count; i++) off += !(fabs(got[i] - want[i]) <= 1e-12 * (1 + fabs(want[i])));
    return off;
}

static void test_seed_identities(void) {
    uint64_t rng = 4242;
    for (int i = 0; i < 40; i++) {
        conv_geom g = {.n = 1, .c = 1, .f = 1, .groups = 1, .stride_h = 1, .stride_w = 1,
                       .dilation_h = 1, .dilation_w = 1};
        g.h = t_rand_int(&rng, 2, 8);
        g.w = t_rand_int(&rng, 2, 8);
        g.kh = t_rand_int(&rng, 1, 4);
        g.kw = t_rand_int(&rng, 1, 4);
        if (i % 4 == 0) { // the notes' own setting: "same" output size
            conv_pad_same(g.kh, 1, &g.pad_top, &g.pad_bottom);
            conv_pad_same(g.kw, 1, &g.pad_left, &g.pad_right);
        } else {
            g.pad_top = t_rand_int(&rng, 0, g.kh - 1);
            g.pad_bottom = t_rand_int(&rng, 0, g.kh - 1);
            g.pad_left = t_rand_int(&rng, 0, g.kw - 1);
            g.pad_right = t_rand_int(&rng, 0, g.kw - 1);
        }
        while (conv_ref_out_size(g.h, g.kh, 1, 1, g.pad_top, g.pad_bottom) < 1) g.pad_bottom++;
        while (conv_ref_out_size(g.w, g.kw, 1, 1, g.pad_left, g.pad_right) < 1) g.pad_right++;
        conv_case cc;
        conv_case_init(&cc, &g, false, CONV_FLOAT64, &rng);
        const int64_t hp = g.h + g.pad_top + g.pad_bottom, wp = g.w + g.pad_left + g.pad_right;
        const int64_t ho = hp - g.kh + 1, wo = wp - g.kw + 1;
        double *xpad = conv_xmalloc((size_t)(hp * wp) * sizeof *xpad);
        memset(xpad, 0, (size_t)(hp * wp) * sizeof *xpad);
        double *dw = conv_xmalloc((size_t)(g.kh * g.kw) * sizeof *dw);
        double *full = conv_xmalloc((size_t)(hp * wp) * sizeof *full);
        double *dx = conv_xmalloc((size_t)(g.h * g.w) * sizeof *dx);
        double *y = conv_xmalloc((size_t)(ho * wo) * sizeof *y);
        for (int64_t r = 0; r < g.h; r++)
            for (int64_t c = 0; c < g.w; c++)
                xpad[(r + g.pad_top) * wp + c + g.pad_left] = cc.x[r * g.w + c];
        correlate_valid(y, xpad, hp, wp, cc.w, g.kh, g.kw);
        correlate_valid(dw, xpad, hp, wp, cc.dy, ho, wo);
        convolve_full(full, cc.dy, ho, wo, cc.w, g.kh, g.kw); // (ho+kh-1, wo+kw-1) = (hp, wp)
        for (int64_t r = 0; r < g.h; r++)
            for (int64_t c = 0; c < g.w; c++)
                dx[r * g.w + c] = full[(r + g.pad_top) * wp + c + g.pad_left];
        char desc[256];
        conv_geom_describe(desc, sizeof desc, &g);
        CHECK(count_off(y, cc.ref[PASS_FORWARD], ho * wo) == 0, "%s: y is not x_pad (*) w", desc);
        CHECK(count_off(dw, cc.ref[PASS_WEIGHTS], g.kh * g.kw) == 0, "%s: dw is not x_pad (*) dy",
              desc);
        CHECK(count_off(dx, cc.ref[PASS_DATA], g.h * g.w) == 0,
              "%s: dx is not the cropped full convolution of dy with w", desc);
        // ...and the fast path on the same case, which the identities now vouch for.
        conv_scratch s;
        conv_scratch_init(&s, conv_workspace_size(&g, CONV_FLOAT64, 1, 1 << 20), 0, 1);
        for (conv_pass p = PASS_FORWARD; p < PASS_BIAS; p++) {
            char why[512] = "";
            CHECK(conv_case_check(&cc, p, &s.ex, why, sizeof why, NULL), "%s: %s", desc, why);
        }
        conv_scratch_free(&s);
        free(xpad);
        free(dw);
        free(full);
        free(dx);
        free(y);
        conv_case_free(&cc);
    }
}

typedef struct {
    const char *field; // also the name conv_error.field must give
    size_t offset;
    int64_t value;
} bad_field;

#define BAD(name, v) {#name, offsetof(conv_geom, name), v}

static const conv_geom valid_geom = {.n = 2, .c = 4, .h = 5, .w = 6, .f = 6, .kh = 3, .kw = 2,
                                     .groups = 2, .stride_h = 1, .stride_w = 2,
                                     .dilation_h = 1, .dilation_w = 1, .pad_top = 1,
                                     .pad_bottom = 0, .pad_left = 0, .pad_right = 1};

static void expect_status(const conv_geom *g, conv_dtype dt, conv_status want,
                          const char *want_field, const char *what) {
    conv_error err = {.field = NULL, .message = ""};
    const conv_status got = conv_geom_check(g, dt, &err);
    CHECK(got == want, "%s: status %d, want %d (%s)", what, (int)got, (int)want, err.message);
    CHECK(conv_geom_check(g, dt, NULL) == got, "%s: a NULL err changes the answer", what);
    if (want == CONV_OK) return;
    CHECK(err.message[0] != '\0', "%s: no message", what);
    if (want_field)
        CHECK(err.field && strcmp(err.field, want_field) == 0, "%s: field %s, want %s", what,
              err.field ? err.field : "(null)", want_field);
}

static void test_geom_check(void) {
    expect_status(&valid_geom, CONV_FLOAT64, CONV_OK, NULL, "the valid geometry");
    static const bad_field bad[] = {
        BAD(n, 0), BAD(n, -1), BAD(c, 0), BAD(c, -2), BAD(h, 0), BAD(h, -1), BAD(w, 0),
        BAD(w, -1), BAD(f, 0), BAD(f, -6), BAD(kh, 0), BAD(kh, -1), BAD(kw, 0), BAD(kw, -1),
        BAD(groups, 0), BAD(groups, -2), BAD(groups, 3), BAD(groups, 4), // 4 divides C, not F
        BAD(stride_h, 0), BAD(stride_h, -1), BAD(stride_w, 0), BAD(stride_w, -2),
        BAD(dilation_h, 0), BAD(dilation_h, -1), BAD(dilation_w, 0), BAD(dilation_w, -1),
        BAD(pad_top, -1), BAD(pad_bottom, -1), BAD(pad_left, -1), BAD(pad_right, -3),
        BAD(f, 3), // F not divisible by groups=2
        BAD(c, 3), // C not divisible by groups=2
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        conv_geom g = valid_geom;
        *(int64_t *)((char *)&g + bad[i].offset) = bad[i].value;
        const bool divisibility = bad[i].value > 0 && (!strcmp(bad[i].field, "c") ||
                                                        !strcmp(bad[i].field, "f"));
        char what[64];
        snprintf(what, sizeof what, "%s = %lld", bad[i].field, (long long)bad[i].value);
        expect_status(&g, CONV_FLOAT32, CONV_EINVAL, divisibility ? "groups" : bad[i].field, what);
    }
    // The (dilated) kernel does not fit the padded input, on either axis.
    conv_geom g = valid_geom;
    g.kh = 7; // 5 + 1 + 0 < 7
    expect_status(&g, CONV_FLOAT32, CONV_EINVAL, "output", "kh 7 > padded H 6");
    g.pad_bottom = 1; // 7 fits exactly
    expect_status(&g, CONV_FLOAT32, CONV_OK, NULL, "kh 7 == padded H 7");
    g = valid_geom;
    g.dilation_w = 7; // 1 + 7*1 = 8 > 6 + 0 + 1
    expect_status(&g, CONV_FLOAT32, CONV_EINVAL, "output", "dilated kw 8 > padded W 7");
    g.pad_left = 1;
    expect_status(&g, CONV_FLOAT32, CONV_OK, NULL, "dilated kw 8 == padded W 8");
    g = valid_geom;
    g.stride_h = INT32_MAX; // one output row: legal, and within what BLAS can index
    expect_status(&g, CONV_FLOAT32, CONV_OK, NULL, "stride INT32_MAX");

    // Tensors whose element or byte counts do not fit in int64.
    const conv_geom base1 = {.n = 1, .c = 1, .h = 1, .w = 1, .f = 1, .kh = 1, .kw = 1,
                             .groups = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1,
                             .dilation_w = 1};
    g = base1;
    g.n = g.c = g.h = g.w = (int64_t)1 << 16; // x: 2^64 elements
    expect_status(&g, CONV_FLOAT32, CONV_EOVERFLOW, NULL, "x of 2^64 elements");
    g = base1;
    g.n = g.c = (int64_t)1 << 30; // x: 2^60 elements, 2^63 bytes in float64
    expect_status(&g, CONV_FLOAT64, CONV_EOVERFLOW, NULL, "x of 2^63 bytes");
    g.n = g.c = (int64_t)1 << 18; // 2^38 bytes in float32: large, but a real machine's size
    expect_status(&g, CONV_FLOAT32, CONV_OK, NULL, "x of 2^38 bytes");
    g = base1;
    g.f = g.c = (int64_t)1 << 30;
    g.h = g.w = g.kh = g.kw = 4; // w: 2^64 elements
    expect_status(&g, CONV_FLOAT32, CONV_EOVERFLOW, NULL, "w of 2^64 elements");
    g = base1;
    g.n = 1 << 10;
    g.h = g.f = (int64_t)1 << 30; // y: 2^70 elements
    expect_status(&g, CONV_FLOAT32, CONV_EOVERFLOW, NULL, "y of 2^70 elements");

    // Values whose intermediate arithmetic would overflow: rejected, without undefined
    // behaviour (UBSan watches this in the sanitized build).
    const struct {
        size_t offset;
        int64_t value;
        const char *what;
    } extreme[] = {
        {offsetof(conv_geom, dilation_h), INT64_MAX, "dilation_h INT64_MAX"},
        {offsetof(conv_geom, stride_w), INT64_MAX, "stride_w INT64_MAX"},
        {offsetof(conv_geom, kh), INT64_MAX, "kh INT64_MAX"},
        {offsetof(conv_geom, kw), INT64_MAX / 2 + 2, "kw INT64_MAX/2+2"},
        {offsetof(conv_geom, h), INT64_MAX, "h INT64_MAX"},
        {offsetof(conv_geom, pad_top), INT64_MAX, "pad_top INT64_MAX"},
        {offsetof(conv_geom, pad_right), INT64_MAX - 1, "pad_right INT64_MAX-1"},
        {offsetof(conv_geom, n), INT64_MAX, "n INT64_MAX"},
        {offsetof(conv_geom, f), INT64_MAX - 1, "f INT64_MAX-1"},
    };
    for (size_t i = 0; i < sizeof extreme / sizeof extreme[0]; i++) {
        g = valid_geom;
        g.groups = 1;
        *(int64_t *)((char *)&g + extreme[i].offset) = extreme[i].value;
        if (extreme[i].offset == offsetof(conv_geom, dilation_h)) g.kh = 3;
        conv_error err = {0};
        const conv_status st = conv_geom_check(&g, CONV_FLOAT64, &err);
        CHECK(st == CONV_EINVAL || st == CONV_EOVERFLOW, "%s: status %d", extreme[i].what,
              (int)st);
    }
    // Both pads at INT64_MAX and a huge stride describe 3 output columns mathematically, but
    // no pass can index them: any answer but OK is fine, and so is OK with the right size.
    g = valid_geom;
    g.pad_left = g.pad_right = INT64_MAX;
    g.stride_w = INT64_MAX;
    const conv_status st = conv_geom_check(&g, CONV_FLOAT64, NULL);
    const int64_t wo = st == CONV_OK ? conv_out_w(&g) : 3;
    CHECK(wo == 3, "pads INT64_MAX: accepted with Wo %lld", (long long)wo);

    // The passes check the geometry themselves.
    uint64_t rng = 5;
    conv_case cc;
    conv_case_init(&cc, &valid_geom, true, CONV_FLOAT64, &rng);
    cc.g.groups = 3;
    conv_scratch s;
    conv_scratch_init(&s, 1 << 16, 0, 1);
    for (conv_pass p = PASS_FORWARD; p < PASS_COUNT; p++) {
        double out[1024];
        conv_error err = {0};
        const conv_status got = conv_case_fast(&cc, p, out, &s.ex, &err);
        CHECK(got == CONV_EINVAL && err.field && !strcmp(err.field, "groups"),
              "%s with groups=3, C=4: status %d field %s", conv_pass_name(p), (int)got,
              err.field ? err.field : "(null)");
    }
    conv_scratch_free(&s);
    conv_case_free(&cc);
}

// With less scratch than threads x one column a pass uses fewer threads (the sweep checks
// that); with less than one column, conv_workspace_min(g, dt, 1), it refuses with
// CONV_EWORKSPACE whatever thread count it is given, as it does with no workspace at all.
static void test_workspace_refusal(void) {
    uint64_t rng = 99;
    const conv_geom geoms[] = {
        valid_geom,
        {.n = 3, .c = 2, .h = 9, .w = 7, .f = 3, .kh = 3, .kw = 3, .groups = 1, .stride_h = 2,
         .stride_w = 1, .dilation_h = 2, .dilation_w = 1, .pad_top = 2, .pad_bottom = 2,
         .pad_left = 1, .pad_right = 1},
    };
    for (size_t i = 0; i < sizeof geoms / sizeof geoms[0]; i++)
        for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++) {
            const size_t min = conv_workspace_min(&geoms[i], dt, 1);
            if (!CHECK(min > 0, "geometry %zu needs no workspace", i)) continue;
            conv_case cc;
            conv_case_init(&cc, &geoms[i], false, dt, &rng);
            for (int threads = 1; threads <= 3; threads++) {
                conv_scratch s;
                conv_scratch_init(&s, min - 1, 0, threads);
                const conv_exec none = {.workspace = NULL, .workspace_bytes = 0,
                                        .threads = threads};
                for (conv_pass p = PASS_FORWARD; p < PASS_BIAS; p++) {
                    double out[4096];
                    conv_error err = {0};
                    const conv_status got = conv_case_fast(&cc, p, out, &s.ex, &err);
                    CHECK(got == CONV_EWORKSPACE && err.message[0],
                          "geometry %zu dtype %d threads %d %s with %zu < %zu bytes: status %d",
                          i, (int)dt, threads, conv_pass_name(p), min - 1, min, (int)got);
                    CHECK(conv_case_fast(&cc, p, out, &s.ex, NULL) == CONV_EWORKSPACE,
                          "%s refuses differently with err NULL", conv_pass_name(p));
                    CHECK(conv_case_fast(&cc, p, out, &none, NULL) == CONV_EWORKSPACE,
                          "%s runs without a workspace", conv_pass_name(p));
                }
                conv_scratch_free(&s);
            }
            conv_case_free(&cc);
        }
}

// conv_workspace_size() stays under its cap (unless even the minimum is above it) and never
// under the minimum, for batches far larger than any cap. For layers that go through im2col
// (more than one channel per group, not a plain 1x1) it gives, cap permitting, at least one
// full chunk of an image's column matrix (K x P elements, K = C/G*kh*kw, P = Ho*Wo): P
// pixels, or fewer when the chunk takes more than 1 MiB, but never fewer than 1024 pixels
// (conv_gemm.c's cache-sized chunks): what "every pass at full size" needs at the least.
static void test_workspace_cap(void) {
    const conv_geom big[] = {
        {.n = 4096, .c = 64, .h = 56, .w = 56, .f = 64, .kh = 3, .kw = 3, .groups = 1,
         .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_top = 1,
         .pad_bottom = 1, .pad_left = 1, .pad_right = 1},
        {.n = 1 << 16, .c = 256, .h = 14, .w = 14, .f = 512, .kh = 3, .kw = 3, .groups = 1,
         .stride_h = 2, .stride_w = 2, .dilation_h = 1, .dilation_w = 1, .pad_top = 1,
         .pad_bottom = 1, .pad_left = 1, .pad_right = 1},
        {.n = 1 << 20, .c = 64, .h = 28, .w = 28, .f = 64, .kh = 3, .kw = 3, .groups = 64,
         .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_top = 1,
         .pad_bottom = 1, .pad_left = 1, .pad_right = 1},
        {.n = 1 << 12, .c = 2048, .h = 7, .w = 7, .f = 2048, .kh = 7, .kw = 7, .groups = 1,
         .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_top = 3,
         .pad_bottom = 3, .pad_left = 3, .pad_right = 3},
        // K*P*8 = 2^64 + 2^33 - 8: the column matrix's byte count wraps around in size_t.
        {.n = 1, .c = INT32_MAX, .h = 1, .w = 1, .f = 1, .kh = 1, .kw = 1, .groups = 1,
         .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_top = 6662,
         .pad_bottom = 6662, .pad_left = 40290, .pad_right = 40290},
    };
    const size_t caps[] = {0, 1, 4096, (size_t)1 << 20, CONV_WORKSPACE_CAP_DEFAULT,
                           (size_t)1 << 40, (size_t)1 << 50};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        CHECK(conv_geom_check(&big[i], CONV_FLOAT64, NULL) == CONV_OK, "big geometry %zu", i);
        const bool im2col = big[i].c > big[i].groups && (big[i].kh > 1 || big[i].kw > 1 ||
                                                         big[i].pad_top || big[i].pad_left);
        const double rows = (double)(big[i].c / big[i].groups * big[i].kh * big[i].kw);
        const double pixels = (double)conv_ref_out_size(big[i].h, big[i].kh, big[i].stride_h,
                                                        big[i].dilation_h, big[i].pad_top,
                                                        big[i].pad_bottom) *
                              (double)conv_ref_out_size(big[i].w, big[i].kw, big[i].stride_w,
                                                        big[i].dilation_w, big[i].pad_left,
                                                        big[i].pad_right);
        for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++)
            for (int threads = 1; threads <= 4; threads++) {
                const size_t min = conv_workspace_min(&big[i], dt, threads);
                const double elt = (double)conv_dtype_size(dt);
                const double in_cache = fmax(floor(1048576 / (rows * elt)), 1024);
                const double chunk = fmin(pixels, in_cache);
                for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
                    const size_t size = conv_workspace_size(&big[i], dt, threads, caps[k]);
                    const size_t limit = caps[k] > min ? caps[k] : min;
                    const double column_bytes = im2col ? rows * chunk * elt : 0;
                    const double useful = column_bytes < (double)caps[k] ? column_bytes
                                                                         : (double)caps[k];
                    CHECK(min <= size && size <= limit && (double)size >= useful,
                          "geometry %zu dtype %d threads %d cap %zu: min %zu, size %zu, a "
                          "chunk of columns %.4g bytes", i, (int)dt, threads, caps[k], min, size,
                          column_bytes);
                }
            }
    }
}

// db of a dy big enough to be split over threads (bias_threads: one per 2^20 elements), in
// both dtypes, against sums taken here in long double.
static void test_bias_split(void) {
    const conv_geom g = {.n = 3, .c = 1, .h = 300, .w = 500, .f = 5, .kh = 1, .kw = 1,
                         .groups = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1,
                         .dilation_w = 1};
    const int64_t count = conv_numel_y(&g), pixels = g.h * g.w;
    double *dy = malloc((size_t)count * sizeof *dy);
    float *dy32 = malloc((size_t)count * sizeof *dy32);
    uint64_t state = 7;
    for (int64_t i = 0; i < count; i++) dy32[i] = (float)(dy[i] = t_rand_uniform(&state, -1, 1));
    for (int threads = 1; threads <= 3; threads++) {
        double db[5];
        float db32[5];
        const conv_exec ex = {.threads = threads};
        CHECK(conv2d_backward_bias(db, dy, &g, CONV_FLOAT64, &ex, NULL) == CONV_OK &&
                  conv2d_backward_bias(db32, dy32, &g, CONV_FLOAT32, &ex, NULL) == CONV_OK,
              "db refused with %d threads", threads);
        for (int64_t f = 0; f < g.f; f++) {
            long double want = 0, want32 = 0;
            for (int64_t n = 0; n < g.n; n++)
                for (int64_t p = 0; p < pixels; p++) {
                    want += dy[(n * g.f + f) * pixels + p];
                    want32 += dy32[(n * g.f + f) * pixels + p];
                }
            CHECK(fabsl(db[f] - want) <= 1e-9L && fabsl(db32[f] - (float)want32) <= 1e-3L,
                  "db[%lld] with %d threads: %.17g / %.9g, want %.17Lg / %.9Lg", (long long)f,
                  threads, db[f], (double)db32[f], want, want32);
        }
    }
    free(dy);
    free(dy32);
}

// Layers with more taps per filter than the flat path's 128 but rows it fills (27 or 29
// outputs: most of 32 float lanes, of 32 double lanes in two blocks; 59 of 64), so forward and
// dx run flat (core/conv_flat.c, FLAT_WIDE_TAPS) and dw runs im2col + GEMM: a conv1d shape
// (H = 1, 9 taps per row), 3x5 and dilated 3x3 kernels, groups, channel and filter counts that
// leave partial blocks of the filters (forward) and channels (dx) computed together, in both
// dtypes, every ISA variant, with 1 and 2 threads (the first and last layers are large enough
// to split) and both algorithms, against the reference. (Under AVX-512 the conv1d shape runs
// all three passes as GEMMs on shifted rows instead: test_shift.)
static void test_flat_wide(void) {
    const conv_geom layers[] = {
        {.n = 16, .c = 24, .h = 1, .w = 59, .f = 21, .kh = 1, .kw = 9, .groups = 1,
         .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_left = 4,
         .pad_right = 4},
        {.n = 2, .c = 13, .h = 5, .w = 27, .f = 7, .kh = 3, .kw = 5, .groups = 1, .stride_h = 1,
         .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_top = 1, .pad_bottom = 1,
         .pad_left = 2, .pad_right = 2},
        {.n = 4, .c = 40, .h = 12, .w = 29, .f = 18, .kh = 3, .kw = 3, .groups = 2,
         .stride_h = 1, .stride_w = 1, .dilation_h = 2, .dilation_w = 2, .pad_top = 2,
         .pad_bottom = 1, .pad_left = 1, .pad_right = 0},
    };
    uint64_t rng = 915;
    int ran = 0;
    for (size_t i = 0; i < sizeof layers / sizeof *layers; i++) {
        char desc[256];
        conv_geom_describe(desc, sizeof desc, &layers[i]);
        CHECK(layers[i].c / layers[i].groups * layers[i].kh * layers[i].kw > 128, "%s", desc);
        for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++) {
            conv_case cc;
            conv_case_init(&cc, &layers[i], i % 2 == 0, dt, &rng);
            for (int threads = 1; threads <= 2; threads++)
                for (conv_isa isa = CONV_ISA_PORTABLE; isa <= conv_isa_best(); isa++) {
                    conv_scratch s;
                    conv_scratch_init(&s,
                                      conv_workspace_size(&layers[i], dt, threads,
                                                          CONV_WORKSPACE_CAP_DEFAULT),
                                      0, threads);
                    s.ex.isa = isa;
                    s.ex.algorithm = threads == 1 ? CONV_ALGO_DIRECT : CONV_ALGO_AUTO;
                    for (conv_pass p = PASS_FORWARD; p < PASS_BIAS; p++) {
                        char why[512] = "";
                        CHECK(conv_case_check(&cc, p, &s.ex, why, sizeof why, NULL),
                              "%s %s %s, %d threads, %s loops: %s", desc,
                              dt == CONV_FLOAT32 ? "float32" : "float64", conv_pass_name(p),
                              threads, conv_isa_name(isa), why);
                        ran++;
                    }
                    conv_scratch_free(&s);
                }
            conv_case_free(&cc);
        }
    }
    printf("flat with many taps: %d passes checked\n", ran);
}

// Every pass of each layer against the reference: both dtypes (a bias on every other layer),
// every ISA variant this CPU runs, 1-3 threads, and workspaces of the kinds WS_MIN to WS_FULL
// by kind_step. Returns how many passes it checked.
static int check_layers(const conv_geom *layers, size_t count, uint64_t seed, int kind_step) {
    uint64_t rng = seed;
    int ran = 0;
    for (size_t i = 0; i < count; i++) {
        char desc[256];
        conv_geom_describe(desc, sizeof desc, &layers[i]);
        for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++) {
            conv_case cc;
            conv_case_init(&cc, &layers[i], i % 2 == 0, dt, &rng);
            for (int threads = 1; threads <= 3; threads++)
                for (conv_isa isa = CONV_ISA_PORTABLE; isa <= conv_isa_best(); isa++)
                    for (int kind = WS_MIN; kind <= WS_FULL; kind += kind_step) {
                        size_t bytes, misalign;
                        workspace_of_kind(&bytes, &misalign, kind, &layers[i], dt, threads);
                        conv_scratch s;
                        conv_scratch_init(&s, bytes, misalign, threads);
                        s.ex.isa = isa;
                        for (conv_pass p = PASS_FORWARD; p < PASS_BIAS; p++) {
                            char why[512] = "";
                            CHECK(conv_case_check(&cc, p, &s.ex, why, sizeof why, NULL),
                                  "%s %s %s, %d threads, %s loops, workspace %zu(+%zu): %s",
                                  desc, dt == CONV_FLOAT32 ? "float32" : "float64",
                                  conv_pass_name(p), threads, conv_isa_name(isa), bytes,
                                  misalign, why);
                            ran++;
                        }
                        conv_scratch_free(&s);
                    }
            conv_case_free(&cc);
        }
    }
    return ran;
}

// Flat layers (stride 1, at most 128 taps, no 3x3 that Winograd would take) with 1-4 filters
// (forward) or channels (dx) per group, which core/conv_kernels.h computes two output rows at
// a time (taps_rows_block; with an odd row count the last row alone), and dw's taps in passes
// of 4 or 6 (DOT_TAPS) across kernel rows and channels (a last pass partly padded:
// 2 x 5 x 5 = 50 taps, 3 x 3 x 5 = 45, 1 x 5 x 7 = 35), with dilation, asymmetric padding and
// groups, in both dtypes, every ISA variant, 1-3 threads, the least workspace and the full
// one, against the reference.
static void test_flat_few(void) {
    const conv_geom layers[] = {
        {.n = 3, .c = 2, .h = 9, .w = 21, .f = 3, .kh = 5, .kw = 5, .groups = 1, .stride_h = 1,
         .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_top = 2, .pad_bottom = 2,
         .pad_left = 2, .pad_right = 2},
        {.n = 2, .c = 6, .h = 8, .w = 37, .f = 8, .kh = 3, .kw = 5, .groups = 2, .stride_h = 1,
         .stride_w = 1, .dilation_h = 2, .dilation_w = 1, .pad_top = 1, .pad_bottom = 3,
         .pad_left = 0, .pad_right = 2},
        {.n = 5, .c = 1, .h = 7, .w = 16, .f = 4, .kh = 5, .kw = 7, .groups = 1, .stride_h = 1,
         .stride_w = 1, .dilation_h = 1, .dilation_w = 2, .pad_top = 2, .pad_bottom = 2,
         .pad_left = 6, .pad_right = 6},
    };
    const int ran =
        check_layers(layers, sizeof layers / sizeof *layers, 4242, WS_FULL - WS_MIN);
    printf("flat layers with few filters or channels: %d passes checked\n", ran);
}

// 1-d layers (H = 1, stride 1, more than 128 taps per filter), which under AVX-512 run as GEMMs
// on shifted rows (core/conv_shift.c) and elsewhere flat or im2col + GEMM: padding on either
// side only, or wider than the kernel (outputs made of padding alone), dilation, groups, rows
// that leave partial column panels, batches that do not divide among the threads (so rows are
// cut into chunks: dw sums them privately), in both dtypes, every ISA variant, 1-3 threads,
// the full workspace and the least (which cannot hold the shifted rows' regions on every
// thread), against the reference.
static void test_shift(void) {
    const conv_geom layers[] = {
        {.n = 3, .c = 32, .h = 1, .w = 700, .f = 19, .kh = 1, .kw = 9, .groups = 1,
         .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_left = 4,
         .pad_right = 4},
        {.n = 2, .c = 40, .h = 1, .w = 531, .f = 26, .kh = 1, .kw = 7, .groups = 2,
         .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 3, .pad_left = 5},
        {.n = 1, .c = 16, .h = 1, .w = 1030, .f = 33, .kh = 1, .kw = 11, .groups = 1,
         .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 2, .pad_right = 10},
        {.n = 2, .c = 24, .h = 1, .w = 40, .f = 8, .kh = 1, .kw = 9, .groups = 1, .stride_h = 1,
         .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_left = 12, .pad_right = 7},
    };
    for (size_t i = 0; i < sizeof layers / sizeof *layers; i++)
        CHECK(layers[i].c / layers[i].groups * layers[i].kw > 128, "layer %zu: 128 taps or fewer",
              i);
    const int ran =
        check_layers(layers, sizeof layers / sizeof *layers, 1717, WS_FULL - WS_MIN);
    printf("1-d layers with many taps: %d passes checked\n", ran);
}

// Strided layers, which under AVX-512 run as GEMMs on phase planes (core/conv_phase.c; dx
// there from 64 channels per group) and elsewhere im2col + GEMM: strides 2 and 3, a stride in
// one direction only, dilations that share phases with the stride (one plane) or not, a
// kernel that misses some phases of x, padding on one side or wider than the kernel, groups,
// 1-5 input channels (the stem's kind), odd sizes, a kernel one column wide (the planes' pitch
// is then Wo: dy is used in place), outputs narrower and wider than the GEMM's panels (whose
// columns are y's pixels, read from the planes' wider rows), a layer cut into chunks of output
// rows, batches that do not divide among the threads, in both dtypes, every ISA variant, 1-3
// threads, the least workspace, an odd one and the full one, against the reference.
static void test_phase(void) {
    const conv_geom layers[] = {
        {.n = 3, .c = 3, .h = 23, .w = 29, .f = 21, .kh = 7, .kw = 7, .groups = 1, .stride_h = 2,
         .stride_w = 2, .dilation_h = 1, .dilation_w = 1, .pad_top = 3, .pad_bottom = 3,
         .pad_left = 3, .pad_right = 3},
        {.n = 2, .c = 1, .h = 17, .w = 14, .f = 5, .kh = 5, .kw = 4, .groups = 1, .stride_h = 3,
         .stride_w = 2, .dilation_h = 1, .dilation_w = 1, .pad_top = 2, .pad_left = 1},
        {.n = 1, .c = 4, .h = 19, .w = 21, .f = 6, .kh = 3, .kw = 3, .groups = 2, .stride_h = 2,
         .stride_w = 3, .dilation_h = 3, .dilation_w = 2, .pad_bottom = 4, .pad_right = 5},
        {.n = 2, .c = 2, .h = 15, .w = 16, .f = 3, .kh = 3, .kw = 3, .groups = 1, .stride_h = 2,
         .stride_w = 2, .dilation_h = 2, .dilation_w = 2, .pad_top = 2, .pad_bottom = 2,
         .pad_left = 2, .pad_right = 2},
        {.n = 3, .c = 6, .h = 9, .w = 11, .f = 9, .kh = 2, .kw = 3, .groups = 3, .stride_h = 1,
         .stride_w = 2, .dilation_h = 1, .dilation_w = 1, .pad_top = 1, .pad_left = 5,
         .pad_right = 5},
        {.n = 2, .c = 5, .h = 13, .w = 10, .f = 7, .kh = 3, .kw = 1, .groups = 1, .stride_h = 2,
         .stride_w = 3, .dilation_h = 1, .dilation_w = 1, .pad_top = 1, .pad_bottom = 1},
        {.n = 3, .c = 128, .h = 15, .w = 13, .f = 20, .kh = 3, .kw = 3, .groups = 2,
         .stride_h = 2, .stride_w = 2, .dilation_h = 1, .dilation_w = 1, .pad_top = 1,
         .pad_left = 1, .pad_right = 2},
        {.n = 1, .c = 64, .h = 11, .w = 12, .f = 9, .kh = 4, .kw = 3, .groups = 1,
         .stride_h = 3, .stride_w = 2, .dilation_h = 1, .dilation_w = 2, .pad_top = 2,
         .pad_bottom = 1, .pad_left = 3},
        {.n = 1, .c = 48, .h = 70, .w = 130, .f = 40, .kh = 3, .kw = 3, .groups = 1,
         .stride_h = 2, .stride_w = 2, .dilation_h = 1, .dilation_w = 1, .pad_top = 1,
         .pad_bottom = 1, .pad_left = 1, .pad_right = 1},
        // outputs 28 and 38 wide: the forward's GEMM panels of 32 (16 in float64) output
        // pixels meet one or two row ends, or none
        {.n = 2, .c = 8, .h = 57, .w = 56, .f = 20, .kh = 3, .kw = 3, .groups = 1,
         .stride_h = 2, .stride_w = 2, .dilation_h = 1, .dilation_w = 1, .pad_top = 1,
         .pad_bottom = 1, .pad_left = 1, .pad_right = 1},
        {.n = 1, .c = 3, .h = 40, .w = 75, .f = 17, .kh = 7, .kw = 7, .groups = 1,
         .stride_h = 2, .stride_w = 2, .dilation_h = 1, .dilation_w = 1, .pad_top = 3,
         .pad_bottom = 3, .pad_left = 3, .pad_right = 3},
        // dx by phases where each phase of x spans all Qx columns (its GEMM's columns in
        // order, no gemm_cols mapping) and dy has rows past x's phase planes (Ho 5, Ux 4)
        {.n = 3, .c = 64, .h = 7, .w = 8, .f = 5, .kh = 3, .kw = 2, .groups = 1,
         .stride_h = 2, .stride_w = 2, .dilation_h = 1, .dilation_w = 1, .pad_bottom = 5},
    };
    const int ran = check_layers(layers, sizeof layers / sizeof *layers, 2718, 1);
    printf("strided layers: %d passes checked\n", ran);
}

// 1x1 layers with a stride and no padding, whose dx is written row by row from the GEMM's
// columns (core/conv_gemm.c, spread_rows) with no zeroing first: strides 2 and 3, a stride in
// one direction only, sizes the stride leaves rows and columns over from, groups, in both
// dtypes, every ISA variant, 1-3 threads and every workspace kind (the least holds one pixel's
// columns, so chunks of pixels end inside output rows), against the reference.
static void test_strided_1x1(void) {
    const conv_geom layers[] = {
        {.n = 2, .c = 7, .h = 11, .w = 13, .f = 9, .kh = 1, .kw = 1, .groups = 1, .stride_h = 2,
         .stride_w = 2, .dilation_h = 1, .dilation_w = 1},
        {.n = 3, .c = 6, .h = 10, .w = 9, .f = 4, .kh = 1, .kw = 1, .groups = 2, .stride_h = 3,
         .stride_w = 2, .dilation_h = 1, .dilation_w = 2},
        {.n = 1, .c = 5, .h = 8, .w = 17, .f = 3, .kh = 1, .kw = 1, .groups = 1, .stride_h = 1,
         .stride_w = 3, .dilation_h = 1, .dilation_w = 1},
        {.n = 2, .c = 4, .h = 9, .w = 6, .f = 8, .kh = 1, .kw = 1, .groups = 4, .stride_h = 2,
         .stride_w = 1, .dilation_h = 1, .dilation_w = 1},
        {.n = 2, .c = 40, .h = 30, .w = 35, .f = 24, .kh = 1, .kw = 1, .groups = 1,
         .stride_h = 2, .stride_w = 2, .dilation_h = 1, .dilation_w = 1},
    };
    const int ran = check_layers(layers, sizeof layers / sizeof *layers, 1919, 1);
    printf("strided 1x1 layers: %d passes checked\n", ran);
}

// The ISA variants: names, the start-up choice within what the CPU runs, and a pass refusing a
// variant this CPU cannot run (forced here through a value past the last).
static void test_isa(void) {
    const conv_isa best = conv_isa_best(), chosen = conv_isa_default();
    printf("isa: best %s, default %s\n", conv_isa_name(best), conv_isa_name(chosen));
    CHECK(best >= CONV_ISA_PORTABLE && best <= CONV_ISA_AVX512 && chosen >= CONV_ISA_PORTABLE &&
              chosen <= best,
          "best %d, default %d", (int)best, (int)chosen);
    CHECK(strcmp(conv_isa_name(CONV_ISA_AUTO), conv_isa_name(chosen)) == 0 &&
              strcmp(conv_isa_name(CONV_ISA_AVX2), "avx2") == 0 &&
              strcmp(conv_isa_name(CONV_ISA_AVX512), "avx512") == 0 &&
              strcmp(conv_isa_name(CONV_ISA_PORTABLE), "portable") == 0,
          "ISA names");
    const char *env = getenv("CONVD_ISA");
    if (env && (strcmp(env, "portable") == 0 || (strcmp(env, "avx2") == 0 && best >= CONV_ISA_AVX2)))
        CHECK(strcmp(conv_isa_name(chosen), env) == 0, "CONVD_ISA=%s, default %s", env,
              conv_isa_name(chosen));
    const conv_geom g = {.n = 1, .c = 2, .h = 4, .w = 4, .f = 2, .kh = 3, .kw = 3, .groups = 1,
                         .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1};
    double x[32] = {0}, w[36] = {0}, y[8];
    static char ws[1 << 16];
    const conv_exec ex = {.workspace = ws, .workspace_bytes = sizeof ws, .threads = 1,
                          .isa = (conv_isa)(CONV_ISA_AVX512 + 1)};
    conv_error err = {0};
    CHECK(conv2d_forward(y, x, w, NULL, &g, CONV_FLOAT64, &ex, &err) == CONV_EINVAL &&
              err.field && strcmp(err.field, "isa") == 0,
          "an unknown ISA is refused (field %s: %s)", err.field ? err.field : "-", err.message);
}

// Depthwise layers with rows of 1 to 10 vectors and a remainder (the sweep's planes are at
// most 9 wide, shorter than one AVX-512 float vector): core/conv_depthwise.c's register
// blocks of up to 8 vectors, the last partial vector overlapping the one before it, the
// stride-2 split of x rows by shuffles, dw's masked lanes and dx's column phases. Random
// kernels 1x1..7x7, strides 1-3, dilation 1-2, per-side padding, 1 or 2 filters per channel,
// both dtypes, every ISA variant in turn, 1-3 threads and every workspace kind (the smallest
// runs the row path), against the reference.
static void test_depthwise_wide(void) {
    enum { LAYERS = 30 };
    uint64_t rng = 4242;
    sweep_state st = {0};
    for (int i = 0; i < LAYERS; i++) {
        conv_geom g = {.n = 1 + i % 2, .c = t_rand_int(&rng, 1, 3), .kh = t_rand_int(&rng, 1, 7),
                       .kw = t_rand_int(&rng, 1, 7), .stride_h = t_rand_int(&rng, 1, 3),
                       .stride_w = i % 3 == 0 ? 2 : t_rand_int(&rng, 1, 3),
                       .dilation_h = t_rand_int(&rng, 1, 2), .dilation_w = t_rand_int(&rng, 1, 2),
                       .pad_top = t_rand_int(&rng, 0, 3), .pad_bottom = t_rand_int(&rng, 0, 3),
                       .pad_left = t_rand_int(&rng, 0, 3), .pad_right = t_rand_int(&rng, 0, 3)};
        g.groups = g.c;
        g.f = g.c * (1 + i % 2);
        g.h = (g.kh - 1) * g.dilation_h + t_rand_int(&rng, 1, 6);
        g.w = (g.kw - 1) * g.dilation_w + t_rand_int(&rng, 12, 160);
        st.config = i;
        st.bias = i % 2;
        st.isa = (conv_isa)(CONV_ISA_PORTABLE + i % conv_isa_best());
        conv_geom_describe(st.desc, sizeof st.desc, &g);
        for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++) {
            conv_case cc;
            conv_case_init(&cc, &g, st.bias, dt, &rng);
            sweep_case(&st, &cc, 1);
            conv_case_free(&cc);
        }
    }
    printf("depthwise wide: %d layers, worst |fast-ref|/scale float32 %.3g, float64 %.3g\n",
           LAYERS, st.worst[CONV_FLOAT32], st.worst[CONV_FLOAT64]);
}

// Layer `config` (with a bias or not) on every ISA variant this CPU runs, both dtypes,
// through sweep_case (1-3 threads, every workspace kind), against the reference.
static void sweep_every_isa(sweep_state *st, const conv_geom *g, int config, bool bias,
                            uint64_t *rng) {
    st->config = config;
    st->bias = bias;
    conv_geom_describe(st->desc, sizeof st->desc, g);
    for (conv_isa isa = CONV_ISA_PORTABLE; isa <= conv_isa_best(); isa++) {
        st->isa = isa;
        for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++) {
            conv_case cc;
            conv_case_init(&cc, g, st->bias, dt, rng);
            sweep_case(st, &cc, 1);
            conv_case_free(&cc);
        }
    }
}

// Depthwise layers with one filter per channel and channels in whole vectors of every ISA's
// lanes (16 floats or 8 doubles for AVX-512, 8 or 4 for AVX2, 4 or 2 portable), which every
// pass runs channel-blocked (dw_*_lanes): rows narrower and wider than a vector, with
// and without a remainder of pixels (the last transposes and pixel blocks overlapping the ones
// before them), strides 1-3, dilation, per-side padding, kernels 1x1..5x5, and channel counts
// that are whole vectors only for the narrower ISAs (the rest run the plane kernels). Each
// layer on every ISA variant this CPU runs, both dtypes, 1-3 threads and every workspace kind,
// against the reference.
static void test_depthwise_lanes(void) {
    enum { LAYERS = 14 };
    static const int64_t channels[] = {16, 32, 20, 48, 4, 16, 24};
    uint64_t rng = 777;
    sweep_state st = {0};
    for (int i = 0; i < LAYERS; i++) {
        conv_geom g = {.n = 1 + i % 2, .c = channels[i % 7], .kh = t_rand_int(&rng, 1, 5),
                       .kw = t_rand_int(&rng, 1, 5), .stride_h = t_rand_int(&rng, 1, 3),
                       .stride_w = i % 3 == 0 ? 2 : t_rand_int(&rng, 1, 3),
                       .dilation_h = t_rand_int(&rng, 1, 2), .dilation_w = t_rand_int(&rng, 1, 2),
                       .pad_top = t_rand_int(&rng, 0, 3), .pad_bottom = t_rand_int(&rng, 0, 3),
                       .pad_left = t_rand_int(&rng, 0, 3), .pad_right = t_rand_int(&rng, 0, 3)};
        g.groups = g.f = g.c;
        g.h = (g.kh - 1) * g.dilation_h + t_rand_int(&rng, 1, 9);
        const int64_t cols = i < 4 ? t_rand_int(&rng, 1, 7) : t_rand_int(&rng, 8, 70);
        g.w = (g.kw - 1) * g.dilation_w + cols;
        sweep_every_isa(&st, &g, i, i % 2, &rng);
    }
    printf("depthwise lanes: %d layers, worst |fast-ref|/scale float32 %.3g, float64 %.3g\n",
           LAYERS, st.worst[CONV_FLOAT32], st.worst[CONV_FLOAT64]);
}

// Depthwise layers that the forward runs from x in place (dw_forward_inplace: 3-wide kernels,
// stride 1 and no dilation along rows, at least a vector of outputs per row): rows of 1 to 6
// vectors with and without a remainder (the last column block overlapping), paddings that put
// the first, the last or (right paddings wider than a vector) a middle column block across
// the row's edge, planes whose first and last rows are read from zero-padded copies, blocks
// of 4 output rows cut by the plane's bottom, kernels 1-5 rows high with strides 1-3 and
// dilation 1-2 down the rows (the general row walk) or 3 rows with neither (the unrolled one),
// one or two filters per channel, channel counts in and out of whole vectors (this path takes
// both). With stride 1, one filter per channel and paddings up to the kernel's reach, dx runs
// the same kernel on dy (the rotated kernel, padding k - 1 - p). Every ISA variant this CPU
// runs (the portable loops take the other kernels on these layers), both dtypes, 1-3 threads
// and every workspace kind, against the reference.
static void test_depthwise_inplace(void) {
    enum { LAYERS = 16 };
    static const int64_t channels[] = {16, 3, 8, 1};
    uint64_t rng = 9091;
    sweep_state st = {0};
    for (int i = 0; i < LAYERS; i++) {
        const bool unrolled = i % 2 == 0;
        conv_geom g = {.n = 1 + i % 2, .c = channels[i % 4], .kw = 3, .stride_w = 1,
                       .dilation_w = 1, .kh = unrolled ? 3 : t_rand_int(&rng, 1, 5),
                       .stride_h = unrolled ? 1 : t_rand_int(&rng, 1, 3),
                       .dilation_h = unrolled ? 1 : t_rand_int(&rng, 1, 2),
                       .pad_top = t_rand_int(&rng, 0, unrolled ? 2 : 3),
                       .pad_bottom = t_rand_int(&rng, 0, unrolled ? 2 : 3),
                       .pad_left = t_rand_int(&rng, 0, 2),
                       .pad_right = i % 5 == 4 ? t_rand_int(&rng, 20, 40) : t_rand_int(&rng, 0, 2)};
        g.groups = g.c;
        g.f = g.c * (1 + i / 8);
        g.h = (g.kh - 1) * g.dilation_h + t_rand_int(&rng, 1, 13);
        g.w = i % 5 == 4 ? t_rand_int(&rng, 3, 9) : t_rand_int(&rng, 16, 100);
        sweep_every_isa(&st, &g, i, i % 2, &rng);
    }
    printf("depthwise in place: %d layers, worst |fast-ref|/scale float32 %.3g, float64 %.3g\n",
           LAYERS, st.worst[CONV_FLOAT32], st.worst[CONV_FLOAT64]);
}

int main(int argc, char **argv) {
    (void)argc;
    blas_boot(argv);
    test_out_size_and_same();
    test_counts_and_flops();
    test_isa();
    test_geom_check();
    test_workspace_refusal();
    test_workspace_cap();
    test_seed_identities();
    test_finite_differences();
    test_flat_wide();
    test_flat_few();
    test_depthwise_wide();
    test_depthwise_lanes();
    test_depthwise_inplace();
    test_shift();
    test_phase();
    test_strided_1x1();
    test_sweep();
    test_bias_split();
    return t_finish("test_conv");
}
