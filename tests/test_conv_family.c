// Padding modes (core/conv_pad.h, zeros included: the zero extension): the padded input
// against NumPy's definitions of the modes written here, and fold against apply by the adjoint identity <apply(x), v> = <x, fold(v)>.
// The family's other layers in core against independent naive references: transposed
// convolution (core/conv_transpose.h, the adjoint of conv2d) against tests/harness/ref_transpose.h
// and conv3d (core/conv3d.h, stacked depth taps on conv2d) against tests/harness/ref_conv3d.h:
// a randomized sweep of every pass in both dtypes, and the reference's and the fast path's
// gradients against finite differences in float64.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv3d.h"
#include "core/conv3d_internal.h"
#include "core/conv_pad.h"
#include "core/conv_transpose.h"
#include "server/blas_boot.h"
#include "tests/harness/conv_harness.h"
#include "tests/harness/ref_conv3d.h"
#include "tests/harness/ref_transpose.h"
#include "tests/testlib.h"

enum { SWEEP_CONFIGS = 2000 }; // per kind of layer
enum { PLANE_CONFIGS = 300 };  // test_conv3d_planes, each in both dtypes and every ISA

// A random transposed layer with an output of at least one pixel and output_padding smaller
// than the stride (what convd runs).
static void random_tgeom(ref_tgeom *t, bool *bias, uint64_t *rng) {
    do {
        *t = (ref_tgeom){.n = t_rand_int(rng, 1, 3), .groups = t_rand_int(rng, 1, 3)};
        t->c = t->groups * t_rand_int(rng, 1, 3);
        t->f = t->groups * t_rand_int(rng, 1, 3);
        t->h = t_rand_int(rng, 1, 6);
        t->w = t_rand_int(rng, 1, 6);
        t->kh = t_rand_int(rng, 1, 4);
        t->kw = t_rand_int(rng, 1, 4);
        for (int a = 0; a < 2; a++) {
            t->stride[a] = t_rand_int(rng, 1, 3);
            t->dilation[a] = t_rand_int(rng, 1, 3);
            t->output_padding[a] = t_rand_int(rng, 0, t->stride[a] - 1);
        }
        for (int side = 0; side < 4; side++) t->padding[side] = t_rand_int(rng, 0, 3);
        if (t_rand_int(rng, 0, 1)) { // PyTorch's symmetric form half of the time
            t->padding[1] = t->padding[0];
            t->padding[3] = t->padding[2];
        }
    } while (ref_t_out_h(t) < 1 || ref_t_out_w(t) < 1);
    *bias = t_rand_int(rng, 0, 1);
}

static void adjoint_of(conv_geom *g, const ref_tgeom *t) {
    conv_transpose_geom(g, t->n, t->c, t->h, t->w, t->f, t->kh, t->kw, t->groups, t->stride,
                        t->dilation, t->padding, t->output_padding);
}

static double *random_values(int64_t count, uint64_t *rng) {
    double *v = conv_xmalloc((size_t)count * sizeof *v);
    for (int64_t i = 0; i < count; i++) v[i] = (float)t_rand_uniform(rng, -1, 1); // float32-exact
    return v;
}

static double *abs_of(const double *v, int64_t count) {
    double *a = conv_xmalloc((size_t)count * sizeof *a);
    for (int64_t i = 0; i < count; i++) a[i] = fabs(v[i]);
    return a;
}

// v in dt (a new block).
static void *in_dtype(const double *v, int64_t count, conv_dtype dt) {
    if (!v) return NULL;
    void *out = conv_xmalloc((size_t)count * conv_dtype_size(dt));
    for (int64_t i = 0; i < count; i++)
        if (dt == CONV_FLOAT64)
            ((double *)out)[i] = v[i];
        else
            ((float *)out)[i] = (float)v[i];
    return out;
}

static double at(const void *p, int64_t i, conv_dtype dt) {
    return dt == CONV_FLOAT64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

// One layer of either kind: a transposed 2-D layer (t, run on its adjoint g) or a 3-D one (g3).
typedef enum { KIND_TRANSPOSE, KIND_3D } layer_kind;

typedef struct {
    layer_kind kind;
    ref_tgeom t;
    conv_geom g;
    conv3d_geom g3;
    double *x, *w, *b, *dy;
    int64_t count[PASS_COUNT];
    double *ref[PASS_COUNT], *scale[PASS_COUNT];
} tcase;

// Reference pass p of the case on the given inputs.
static void tcase_ref(const tcase *tc, conv_pass p, double *out, const double *x, const double *w,
                      const double *b, const double *dy) {
    bool t = tc->kind == KIND_TRANSPOSE;
    switch (p) {
    case PASS_FORWARD:
        t ? ref_t_forward(out, x, w, b, &tc->t) : ref3_forward(out, x, w, b, &tc->g3);
        break;
    case PASS_DATA:
        t ? ref_t_backward_data(out, dy, w, &tc->t) : ref3_backward_data(out, dy, w, &tc->g3);
        break;
    case PASS_WEIGHTS:
        t ? ref_t_backward_weights(out, dy, x, &tc->t) : ref3_backward_weights(out, dy, x, &tc->g3);
        break;
    default:
        t ? ref_t_backward_bias(out, dy, &tc->t) : ref3_backward_bias(out, dy, &tc->g3);
    }
}

// The reference answers of every pass, and their scales (the same pass over |inputs|).
// Either t (kind KIND_TRANSPOSE) or g3 (KIND_3D) describes the layer.
static void tcase_init(tcase *tc, layer_kind kind, const ref_tgeom *t, const conv3d_geom *g3,
                       bool bias, uint64_t *rng) {
    *tc = (tcase){.kind = kind};
    if (kind == KIND_TRANSPOSE) {
        tc->t = *t;
        adjoint_of(&tc->g, t);
        tc->count[PASS_FORWARD] = ref_t_numel_y(t);
        tc->count[PASS_DATA] = ref_t_numel_x(t);
        tc->count[PASS_WEIGHTS] = ref_t_numel_w(t);
        tc->count[PASS_BIAS] = t->f;
    } else {
        tc->g3 = *g3;
        tc->count[PASS_FORWARD] = ref3_numel_y(g3);
        tc->count[PASS_DATA] = ref3_numel_x(g3);
        tc->count[PASS_WEIGHTS] = ref3_numel_w(g3);
        tc->count[PASS_BIAS] = g3->f;
    }
    const int64_t nb = tc->count[PASS_BIAS];
    tc->x = random_values(tc->count[PASS_DATA], rng);
    tc->w = random_values(tc->count[PASS_WEIGHTS], rng);
    tc->b = bias ? random_values(nb, rng) : NULL;
    tc->dy = random_values(tc->count[PASS_FORWARD], rng);
    double *ax = abs_of(tc->x, tc->count[PASS_DATA]), *aw = abs_of(tc->w, tc->count[PASS_WEIGHTS]);
    double *ab = bias ? abs_of(tc->b, nb) : NULL, *ady = abs_of(tc->dy, tc->count[PASS_FORWARD]);
    for (conv_pass p = 0; p < PASS_COUNT; p++) {
        tc->ref[p] = conv_xmalloc((size_t)tc->count[p] * sizeof(double));
        tc->scale[p] = conv_xmalloc((size_t)tc->count[p] * sizeof(double));
        tcase_ref(tc, p, tc->ref[p], tc->x, tc->w, tc->b, tc->dy);
        tcase_ref(tc, p, tc->scale[p], ax, aw, ab, ady);
    }
    free(ax);
    free(aw);
    free(ab);
    free(ady);
}

static size_t tcase_workspace(const tcase *tc, conv_dtype dt, int threads) {
    return tc->kind == KIND_TRANSPOSE ? conv_workspace_size(&tc->g, dt, threads, 1 << 20)
                                      : conv3d_workspace_size(&tc->g3, dt, threads, 1 << 20);
}

static void tcase_free(tcase *tc) {
    free(tc->x);
    free(tc->w);
    free(tc->b);
    free(tc->dy);
    for (conv_pass p = 0; p < PASS_COUNT; p++) {
        free(tc->ref[p]);
        free(tc->scale[p]);
    }
}

// Fast pass p of the case in dt, with inputs x, w, b, dy given in dt; err may be NULL.
static conv_status run_fast(const tcase *tc, conv_pass p, void *out, void *const in[4],
                            conv_dtype dt, const conv_exec *ex, conv_error *err) {
    if (tc->kind == KIND_3D) {
        const conv3d_geom *g = &tc->g3;
        switch (p) {
        case PASS_FORWARD: return conv3d_forward(out, in[0], in[1], in[2], g, dt, ex, err);
        case PASS_DATA: return conv3d_backward_data(out, in[3], in[1], g, dt, ex, err);
        case PASS_WEIGHTS: return conv3d_backward_weights(out, in[3], in[0], g, dt, ex, err);
        default: return conv3d_backward_bias(out, in[3], g, dt, ex, err);
        }
    }
    switch (p) {
    case PASS_FORWARD:
        return conv_transpose2d_forward(out, in[0], in[1], in[2], &tc->g, dt, ex, err);
    case PASS_DATA:
        return conv_transpose2d_backward_data(out, in[3], in[1], &tc->g, dt, ex, err);
    case PASS_WEIGHTS:
        return conv_transpose2d_backward_weights(out, in[3], in[0], &tc->g, dt, ex, err);
    default:
        return conv_transpose2d_backward_bias(out, in[3], &tc->g, dt, ex, err);
    }
}

static void describe(char *buf, size_t cap, const tcase *tc) {
    if (tc->kind == KIND_3D) {
        const conv3d_geom *g = &tc->g3;
        snprintf(buf, cap,
                 "conv3d x [%lld,%lld,%lld,%lld,%lld] w [%lld,%lld,%lld,%lld,%lld] groups %lld "
                 "stride [%lld,%lld,%lld] dilation [%lld,%lld,%lld] padding "
                 "[%lld,%lld,%lld,%lld,%lld,%lld]",
                 (long long)g->n, (long long)g->c, (long long)g->d, (long long)g->h,
                 (long long)g->w, (long long)g->f, (long long)(g->c / g->groups),
                 (long long)g->kd, (long long)g->kh, (long long)g->kw, (long long)g->groups,
                 (long long)g->stride[0], (long long)g->stride[1], (long long)g->stride[2],
                 (long long)g->dilation[0], (long long)g->dilation[1], (long long)g->dilation[2],
                 (long long)g->padding[0], (long long)g->padding[1], (long long)g->padding[2],
                 (long long)g->padding[3], (long long)g->padding[4], (long long)g->padding[5]);
        return;
    }
    const ref_tgeom *t = &tc->t;
    snprintf(buf, cap,
             "conv_transpose2d x [%lld,%lld,%lld,%lld] w [%lld,%lld,%lld,%lld] groups %lld "
             "stride [%lld,%lld] dilation [%lld,%lld] padding [%lld,%lld,%lld,%lld] "
             "output_padding [%lld,%lld]",
             (long long)t->n, (long long)t->c, (long long)t->h, (long long)t->w, (long long)t->c,
             (long long)(t->f / t->groups), (long long)t->kh, (long long)t->kw,
             (long long)t->groups, (long long)t->stride[0], (long long)t->stride[1],
             (long long)t->dilation[0], (long long)t->dilation[1], (long long)t->padding[0],
             (long long)t->padding[1], (long long)t->padding[2], (long long)t->padding[3],
             (long long)t->output_padding[0], (long long)t->output_padding[1]);
}

// A random 3-D layer with an output of at least one voxel, small enough for the reference.
static void random_g3(conv3d_geom *g, bool *bias, uint64_t *rng) {
    do {
        *g = (conv3d_geom){.n = t_rand_int(rng, 1, 2), .groups = t_rand_int(rng, 1, 2)};
        g->c = g->groups * t_rand_int(rng, 1, 2);
        g->f = g->groups * t_rand_int(rng, 1, 3);
        g->d = t_rand_int(rng, 1, 5);
        g->h = t_rand_int(rng, 1, 5);
        g->w = t_rand_int(rng, 1, 5);
        g->kd = t_rand_int(rng, 1, 3);
        g->kh = t_rand_int(rng, 1, 3);
        g->kw = t_rand_int(rng, 1, 3);
        for (int a = 0; a < 3; a++) {
            g->stride[a] = t_rand_int(rng, 1, 2);
            g->dilation[a] = t_rand_int(rng, 1, 2);
            g->padding[2 * a] = t_rand_int(rng, 0, 2);
            g->padding[2 * a + 1] = t_rand_int(rng, 0, 1) ? g->padding[2 * a] : t_rand_int(rng, 0, 2);
        }
    } while (ref3_out(g, 0) < 1 || ref3_out(g, 1) < 1 || ref3_out(g, 2) < 1);
    *bias = t_rand_int(rng, 0, 1);
}

// Every pass of the case in dt with ex (inputs in dt), each within conv_tolerance() times the
// pass over |inputs|; returns how many passes were off, *worst growing to the largest ratio.
// With tile_scale every element is judged by its pass's largest scale: Winograd mixes the
// elements of a tile, so one that meets only padding (0 exactly in the reference) carries a
// few ulps of its neighbours' size, as in tests/harness/conv_harness.h.
static int passes_off(const tcase *tc, void *const in[4], conv_dtype dt, const conv_exec *ex,
                      bool tile_scale, const char *label, double *worst) {
    int failed = 0;
    for (conv_pass p = 0; p < PASS_COUNT; p++) {
        void *out = conv_xmalloc((size_t)tc->count[p] * conv_dtype_size(dt));
        conv_status st = run_fast(tc, p, out, in, dt, ex, NULL);
        int bad = st != CONV_OK;
        double largest = 0;
        for (int64_t k = 0; tile_scale && k < tc->count[p]; k++)
            if (tc->scale[p][k] > largest) largest = tc->scale[p][k];
        for (int64_t k = 0; !bad && k < tc->count[p]; k++) {
            double diff = fabs(at(out, k, dt) - tc->ref[p][k]);
            double scale = tile_scale ? largest : tc->scale[p][k];
            if (!(diff <= conv_tolerance(dt) * scale)) bad = 1;
            else if (scale > 0 && diff / scale > *worst) *worst = diff / scale;
        }
        if (bad)
            CHECK(false, "%s %s %s (isa %s, %d threads, %zu bytes): status %d, off the reference",
                  label, dt == CONV_FLOAT64 ? "float64" : "float32", conv_pass_name(p),
                  conv_isa_name(ex->isa), ex->threads, ex->workspace_bytes, st);
        failed += bad;
        free(out);
    }
    return failed;
}

// Every pass of the case in both dtypes, 1 or 2 threads, within conv_tolerance() times the pass
// over |inputs|; returns how many passes were off, keeping the worst ratio per dtype.
static int sweep_case(const tcase *tc, double worst[2], uint64_t *rng) {
    char label[400];
    describe(label, sizeof label, tc);
    int threads = (int)t_rand_int(rng, 1, 2), failed = 0;
    for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++) {
        conv_scratch s;
        conv_scratch_init(&s, tcase_workspace(tc, dt, threads), 0, threads);
        void *in[4] = {in_dtype(tc->x, tc->count[PASS_DATA], dt),
                       in_dtype(tc->w, tc->count[PASS_WEIGHTS], dt),
                       in_dtype(tc->b, tc->count[PASS_BIAS], dt),
                       in_dtype(tc->dy, tc->count[PASS_FORWARD], dt)};
        failed += passes_off(tc, in, dt, &s.ex, false, label, &worst[dt]);
        for (int k = 0; k < 4; k++) free(in[k]);
        conv_scratch_free(&s);
    }
    return failed;
}

static void test_sweep(void) {
    uint64_t rng = 15;
    for (layer_kind kind = KIND_TRANSPOSE; kind <= KIND_3D; kind++) {
        double worst[2] = {0, 0};
        int failed = 0;
        for (int i = 0; i < SWEEP_CONFIGS && failed < 10; i++) {
            ref_tgeom t;
            conv3d_geom g3;
            bool bias;
            if (kind == KIND_TRANSPOSE)
                random_tgeom(&t, &bias, &rng);
            else
                random_g3(&g3, &bias, &rng);
            tcase tc;
            tcase_init(&tc, kind, &t, &g3, bias, &rng);
            if (kind == KIND_TRANSPOSE) {
                char label[400];
                describe(label, sizeof label, &tc);
                if (!CHECK(conv_geom_check(&tc.g, CONV_FLOAT64, NULL) == CONV_OK &&
                               conv_out_h(&tc.g) == t.h && conv_out_w(&tc.g) == t.w,
                           "the adjoint of %s is valid and maps back to x's size", label)) {
                    tcase_free(&tc);
                    continue;
                }
            }
            failed += sweep_case(&tc, worst, &rng);
            tcase_free(&tc);
        }
        CHECK(failed == 0, "%d passes off the reference", failed);
        printf("%s sweep: %d configs x 4 passes x 2 dtypes, worst |fast-ref|/scale float32 "
               "%.3g, float64 %.3g\n",
               kind == KIND_3D ? "conv3d" : "conv_transpose2d", SWEEP_CONFIGS,
               worst[CONV_FLOAT32], worst[CONV_FLOAT64]);
    }
}

// loss = sum(y * dy), linear in each of x, w, b: the central difference is exact up to
// rounding, for the reference's gradients (fast = false) and the fast path's.
static double loss_of(const tcase *tc, bool fast, const conv_exec *ex) {
    int64_t ny = tc->count[PASS_FORWARD];
    double *y = conv_xmalloc((size_t)ny * sizeof *y);
    if (fast) {
        void *in[4] = {tc->x, tc->w, tc->b, tc->dy};
        if (run_fast(tc, PASS_FORWARD, y, in, CONV_FLOAT64, ex, NULL) != CONV_OK)
            for (int64_t i = 0; i < ny; i++) y[i] = NAN;
    } else {
        tcase_ref(tc, PASS_FORWARD, y, tc->x, tc->w, tc->b, tc->dy);
    }
    double loss = 0;
    for (int64_t i = 0; i < ny; i++) loss += y[i] * tc->dy[i];
    free(y);
    return loss;
}

static void check_fd(tcase *tc, bool fast, const conv_exec *ex, const char *label) {
    const double step = 1e-3;
    double *params[PASS_COUNT] = {NULL, tc->x, tc->w, tc->b};
    for (conv_pass p = PASS_DATA; p < PASS_COUNT; p++) {
        if (!params[p]) continue;
        double *grad = conv_xmalloc((size_t)tc->count[p] * sizeof *grad);
        if (fast) {
            // Gradients before any perturbation (run_fast reads the live inputs).
            void *in[4] = {tc->x, tc->w, tc->b, tc->dy};
            if (run_fast(tc, p, grad, in, CONV_FLOAT64, ex, NULL) != CONV_OK)
                for (int64_t i = 0; i < tc->count[p]; i++) grad[i] = NAN;
        } else {
            memcpy(grad, tc->ref[p], (size_t)tc->count[p] * sizeof *grad);
        }
        int bad = 0;
        double worst = 0;
        for (int64_t i = 0; i < tc->count[p]; i++) {
            const double keep = params[p][i];
            params[p][i] = keep + step;
            const double up = loss_of(tc, fast, ex);
            params[p][i] = keep - step;
            const double down = loss_of(tc, fast, ex);
            params[p][i] = keep;
            const double fd = (up - down) / (2 * step), err = fabs(fd - grad[i]);
            if (!(err <= 1e-9 * (1 + fabs(fd)))) bad++;
            if (err > worst || isnan(err)) worst = err;
        }
        CHECK(bad == 0, "%s %s %s: %d of %lld elements off the finite difference (worst %.3g)",
              label, fast ? "fast" : "reference", conv_pass_name(p), bad,
              (long long)tc->count[p], worst);
        free(grad);
    }
}

static void fd_case(layer_kind kind, const ref_tgeom *t, const conv3d_geom *g3, uint64_t *rng) {
    tcase tc;
    tcase_init(&tc, kind, t, g3, true, rng);
    conv_scratch s;
    conv_scratch_init(&s, tcase_workspace(&tc, CONV_FLOAT64, 2), 0, 2);
    char label[400];
    describe(label, sizeof label, &tc);
    check_fd(&tc, false, &s.ex, label);
    check_fd(&tc, true, &s.ex, label);
    conv_scratch_free(&s);
    tcase_free(&tc);
}

static void test_finite_differences(void) {
    const ref_tgeom transposed[] = {
        // the upsampling layer of a decoder: k 4, stride 2, padding 1
        {.n = 2, .c = 3, .h = 3, .w = 4, .f = 2, .kh = 4, .kw = 4, .groups = 1, .stride = {2, 2},
         .dilation = {1, 1}, .padding = {1, 1, 1, 1}, .output_padding = {0, 0}},
        // output_padding, asymmetric padding, dilation on one axis
        {.n = 1, .c = 2, .h = 4, .w = 3, .f = 3, .kh = 3, .kw = 2, .groups = 1, .stride = {3, 2},
         .dilation = {1, 2}, .padding = {2, 0, 1, 1}, .output_padding = {2, 1}},
        // groups 2, stride 1 with padding that crops past the kernel's reach
        {.n = 2, .c = 4, .h = 5, .w = 4, .f = 2, .kh = 2, .kw = 3, .groups = 2, .stride = {1, 1},
         .dilation = {2, 1}, .padding = {1, 2, 0, 1}, .output_padding = {0, 0}},
    };
    const conv3d_geom cubes[] = {
        // 3x3x3, padding 1 (the common video layer), stride 2 in depth
        {.n = 2, .c = 2, .d = 4, .h = 4, .w = 3, .f = 2, .kd = 3, .kh = 3, .kw = 3, .groups = 1,
         .stride = {2, 1, 1}, .dilation = {1, 1, 1}, .padding = {1, 1, 1, 1, 1, 1}},
        // groups 2, dilation in depth, asymmetric depth padding, a left-over depth plane
        {.n = 1, .c = 4, .d = 6, .h = 3, .w = 4, .f = 2, .kd = 2, .kh = 2, .kw = 3, .groups = 2,
         .stride = {3, 2, 1}, .dilation = {2, 1, 2}, .padding = {2, 0, 0, 1, 1, 0}},
    };
    uint64_t rng = 99;
    for (size_t i = 0; i < sizeof transposed / sizeof *transposed; i++)
        fd_case(KIND_TRANSPOSE, &transposed[i], NULL, &rng);
    for (size_t i = 0; i < sizeof cubes / sizeof *cubes; i++)
        fd_case(KIND_3D, NULL, &cubes[i], &rng);
}

// A hand-worked case: a 2x2 input, a ones 2x2 kernel, stride 2, output_padding 1: each input
// value fills its own 2x2 block and the extra row and column stay 0.
static void test_hand_case(void) {
    const double x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 1, 1};
    const double want[25] = {1, 1, 2, 2, 0, 1, 1, 2, 2, 0, 3, 3, 4, 4, 0,
                             3, 3, 4, 4, 0, 0, 0, 0, 0, 0};
    conv_geom g;
    conv_transpose_geom(&g, 1, 1, 2, 2, 1, 2, 2, 1, (int64_t[]){2, 2}, (int64_t[]){1, 1},
                        (int64_t[]){0, 0, 0, 0}, (int64_t[]){1, 1});
    CHECK(g.h == 5 && g.w == 5, "output 5x5, got %lldx%lld", (long long)g.h, (long long)g.w);
    double y[25];
    conv_scratch s;
    conv_scratch_init(&s, conv_workspace_size(&g, CONV_FLOAT64, 1, 1 << 20), 0, 1);
    CHECK(conv_transpose2d_forward(y, x, w, NULL, &g, CONV_FLOAT64, &s.ex, NULL) == CONV_OK,
          "hand case runs");
    int bad = 0;
    for (int i = 0; i < 25; i++) bad += y[i] != want[i];
    CHECK(bad == 0, "hand case: %d of 25 values wrong", bad);
    conv_scratch_free(&s);
}

// conv3d passes its exec on to the 2-D passes it runs: the algorithm ("winograd" where it
// cannot apply is refused, "direct" and "winograd" where it can give the reference's answer)
// and the ISA (a variant past the last is refused), for forward, dx and dw alike.
static void test_conv3d_exec(void) {
    uint64_t rng = 33;
    for (int k = 3; k <= 5; k += 2) {
        const conv3d_geom g3 = {.n = 2, .c = 4, .d = 5, .h = 9, .w = 9, .f = 3, .kd = 2, .kh = k,
                                .kw = k, .groups = 1, .stride = {1, 1, 1},
                                .dilation = {1, 1, 1}, .padding = {1, 0, 1, 1, 1, 1}};
        tcase tc;
        tcase_init(&tc, KIND_3D, NULL, &g3, false, &rng);
        conv_scratch s;
        conv_scratch_init(&s, conv3d_workspace_size(&g3, CONV_FLOAT64, 1, 1 << 24), 0, 1);
        for (conv_algorithm algo = CONV_ALGO_DIRECT; algo <= CONV_ALGO_WINOGRAD; algo++)
            for (conv_pass p = PASS_FORWARD; p < PASS_BIAS; p++) {
                s.ex.algorithm = algo;
                s.ex.isa = CONV_ISA_AUTO;
                double *out = conv_xmalloc((size_t)tc.count[p] * sizeof *out);
                void *in[4] = {tc.x, tc.w, NULL, tc.dy};
                conv_error err = {0};
                conv_status st = run_fast(&tc, p, out, in, CONV_FLOAT64, &s.ex, &err);
                if (algo == CONV_ALGO_WINOGRAD && k != 3) {
                    CHECK(st == CONV_EINVAL && err.field && strcmp(err.field, "algorithm") == 0,
                          "conv3d %dx%d %s with winograd: status %d (%s)", k, k,
                          conv_pass_name(p), (int)st, err.message);
                } else {
                    double worst = 0;
                    for (int64_t i = 0; i < tc.count[p]; i++) {
                        double e = fabs(out[i] - tc.ref[p][i]) / (tc.scale[p][i] + 1e-300);
                        if (!(e <= worst)) worst = e;
                    }
                    CHECK(st == CONV_OK && worst <= 1e-12, "conv3d %dx%d %s with %s: status %d, "
                          "worst error %.3g", k, k, conv_pass_name(p),
                          conv_algorithm_name(algo), (int)st, worst);
                }
                s.ex.algorithm = CONV_ALGO_AUTO;
                s.ex.isa = (conv_isa)(CONV_ISA_AVX512 + 1);
                st = run_fast(&tc, p, out, in, CONV_FLOAT64, &s.ex, &err);
                CHECK(st == CONV_EINVAL && err.field && strcmp(err.field, "isa") == 0,
                      "conv3d %s with an unknown ISA: status %d", conv_pass_name(p), (int)st);
                free(out);
            }
        conv_scratch_free(&s);
        tcase_free(&tc);
    }
}

// conv3d_winograd.c's plane passes (3x3 planes, forced with algorithm winograd) on layers
// that reach each of its branches: depth kernels of 1-3 taps with stride 1-3 and dilation 1-2
// (consecutive taps merged into one GEMM, or run one by one; dx planes that a stride skips),
// depth paddings up to past the kernel (output planes reading only zeros: the bias), groups,
// both dtypes, 1-3 threads, every ISA this CPU runs, and workspaces from the least (one tile
// and one plane per item) up, so that batches cut across images and neighbouring chunks
// transform their shared planes each.
static void test_conv3d_planes(void) {
    uint64_t rng = 317;
    double worst[2] = {0, 0};
    int failed = 0;
    for (int i = 0; i < PLANE_CONFIGS && failed < 10; i++) {
        conv3d_geom g;
        do {
            g = (conv3d_geom){.n = t_rand_int(&rng, 1, 3), .groups = t_rand_int(&rng, 1, 2),
                              .kh = 3, .kw = 3, .stride = {1, 1, 1}, .dilation = {1, 1, 1}};
            g.c = g.groups * t_rand_int(&rng, 1, 4);
            g.f = g.groups * t_rand_int(&rng, 1, 4);
            g.d = t_rand_int(&rng, 1, 7);
            g.h = t_rand_int(&rng, 1, 7);
            g.w = t_rand_int(&rng, 1, 7);
            g.kd = t_rand_int(&rng, 1, 3);
            g.stride[0] = t_rand_int(&rng, 1, 3);
            g.dilation[0] = t_rand_int(&rng, 1, 2);
            for (int k = 0; k < 6; k++) g.padding[k] = t_rand_int(&rng, 0, k < 2 ? 3 : 2);
        } while (ref3_out(&g, 0) < 1 || ref3_out(&g, 1) < 1 || ref3_out(&g, 2) < 1);
        tcase tc;
        tcase_init(&tc, KIND_3D, NULL, &g, t_rand_int(&rng, 0, 1), &rng);
        char label[400];
        describe(label, sizeof label, &tc);
        const int threads = (int)t_rand_int(&rng, 1, 3), room = (int)t_rand_int(&rng, 0, 2);
        for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++) {
            const size_t least = conv3d_winograd_workspace_min(&g, dt);
            const size_t more = (size_t)t_rand_int(&rng, 1, 8 * (int64_t)least);
            const size_t bytes = room == 0   ? least
                                 : room == 1 ? least + more
                                             : conv3d_workspace_size(&g, dt, threads, 1 << 20);
            void *in[4] = {in_dtype(tc.x, tc.count[PASS_DATA], dt),
                           in_dtype(tc.w, tc.count[PASS_WEIGHTS], dt),
                           in_dtype(tc.b, tc.count[PASS_BIAS], dt),
                           in_dtype(tc.dy, tc.count[PASS_FORWARD], dt)};
            for (conv_isa isa = CONV_ISA_PORTABLE; isa <= conv_isa_best(); isa++) {
                conv_scratch s;
                conv_scratch_init(&s, bytes, 0, threads);
                s.ex.algorithm = CONV_ALGO_WINOGRAD;
                s.ex.isa = isa;
                failed += passes_off(&tc, in, dt, &s.ex, true, label, &worst[dt]);
                conv_scratch_free(&s);
            }
            for (int k = 0; k < 4; k++) free(in[k]);
        }
        tcase_free(&tc);
    }
    CHECK(failed == 0, "conv3d planes: %d passes off the reference", failed);
    printf("conv3d planes: %d configs x 4 passes x 2 dtypes x each ISA, worst |fast-ref|/scale "
           "float32 %.3g, float64 %.3g\n",
           PLANE_CONFIGS, worst[CONV_FLOAT32], worst[CONV_FLOAT64]);
}

// numpy.pad's index rules, one axis: position p of the padded axis reads x at the index
// returned (reflect mirrors without repeating the edge, "symmetric" would repeat it).
static int64_t numpy_source(int64_t p, int64_t n, int64_t lo, conv_pad_mode mode) {
    int64_t i = p - lo;
    if (mode == CONV_PAD_ZEROS) return i < 0 || i >= n ? -1 : i; // constant 0
    if (mode == CONV_PAD_REPLICATE) return i < 0 ? 0 : i >= n ? n - 1 : i;
    if (mode == CONV_PAD_CIRCULAR) {
        while (i < 0) i += n;
        while (i >= n) i -= n;
        return i;
    }
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i; // reflect
    return i;
}

static void test_padding_modes(void) {
    uint64_t rng = 7;
    int bad_apply = 0, bad_adjoint = 0, trials = 0;
    for (int trial = 0; trial < 600; trial++) {
        conv_pad_mode mode = (conv_pad_mode)t_rand_int(&rng, CONV_PAD_ZEROS, CONV_PAD_CIRCULAR);
        int64_t dims[3], pad[6], planes = t_rand_int(&rng, 1, 3);
        for (int a = 0; a < 3; a++) {
            dims[a] = t_rand_int(&rng, 1, 5);
            for (int side = 0; side < 2; side++) pad[2 * a + side] = t_rand_int(&rng, 0, dims[a]);
        }
        if (conv_pad_check(mode, dims, pad) >= 0) continue;
        trials++;
        int64_t pd[3], nx = planes, np = planes;
        for (int a = 0; a < 3; a++) {
            pd[a] = dims[a] + pad[2 * a] + pad[2 * a + 1];
            nx *= dims[a];
            np *= pd[a];
        }
        double *x = random_values(nx, &rng), *v = random_values(np, &rng);
        double *xp = conv_xmalloc((size_t)np * sizeof *xp), *fx = conv_xmalloc((size_t)nx * sizeof *fx);
        conv_pad_apply(xp, x, planes, dims, pad, mode, CONV_FLOAT64);
        conv_pad_fold(fx, v, planes, dims, pad, mode, CONV_FLOAT64);
        for (int64_t q = 0, k = 0; q < planes; q++)
            for (int64_t a = 0; a < pd[0]; a++)
                for (int64_t b = 0; b < pd[1]; b++)
                    for (int64_t c = 0; c < pd[2]; c++, k++) {
                        int64_t sa = numpy_source(a, dims[0], pad[0], mode),
                                sb = numpy_source(b, dims[1], pad[2], mode),
                                sc = numpy_source(c, dims[2], pad[4], mode);
                        double want = sa < 0 || sb < 0 || sc < 0
                                          ? 0
                                          : x[((q * dims[0] + sa) * dims[1] + sb) * dims[2] + sc];
                        bad_apply += xp[k] != want;
                    }
        double lhs = 0, rhs = 0, mag = 0;
        for (int64_t k = 0; k < np; k++) lhs += xp[k] * v[k], mag += fabs(xp[k] * v[k]);
        for (int64_t k = 0; k < nx; k++) rhs += x[k] * fx[k];
        bad_adjoint += !(fabs(lhs - rhs) <= 1e-12 * mag);
        free(x), free(v), free(xp), free(fx);
    }
    CHECK(trials > 300 && bad_apply == 0, "padding modes: %d cells off numpy's rules in %d trials",
          bad_apply, trials);
    CHECK(bad_adjoint == 0, "padding modes: fold is not apply's adjoint in %d of %d trials",
          bad_adjoint, trials);
    int64_t dims[3] = {1, 1, 3};
    CHECK(conv_pad_check(CONV_PAD_REFLECT, dims, (int64_t[6]){0, 0, 0, 0, 2, 3}) == 2 &&
              conv_pad_check(CONV_PAD_REFLECT, dims, (int64_t[6]){0, 0, 0, 0, 2, 2}) == -1 &&
              conv_pad_check(CONV_PAD_CIRCULAR, dims, (int64_t[6]){0, 0, 0, 0, 3, 3}) == -1 &&
              conv_pad_check(CONV_PAD_CIRCULAR, dims, (int64_t[6]){0, 0, 0, 0, 0, 4}) == 2 &&
              conv_pad_check(CONV_PAD_REPLICATE, dims, (int64_t[6]){0, 0, 0, 0, 9, 9}) == -1 &&
              conv_pad_check(CONV_PAD_REFLECT, dims, (int64_t[6]){1, 0, 0, 0, 0, 0}) == 0,
          "PyTorch's limits: reflect < size, circular <= size, replicate any");
}

int main(int argc, char **argv) {
    (void)argc;
    blas_boot(argv);
    test_padding_modes();
    test_hand_case();
    test_conv3d_exec();
    test_conv3d_planes();
    test_finite_differences();
    test_sweep();
    return t_finish("test_conv_family");
}
