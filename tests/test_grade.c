// The grading engine (api/grade*.h): the problem generator against published splitmix64
// outputs, references against the naive float64 reference (core/conv_ref.h; for the other ops
// the harness's ref_conv3d and ref_transpose, with padding modes made here), verdict numbers
// against hand-computed ones, the error areas against hand-drawn layers, every mutant's
// diagnosis on the answers it stands for, and no diagnosis at all for right answers over a
// randomized sweep of layers of every op, each op's classic mistakes made independently and
// diagnosed by name. Also: the suites expose every mistake that their layers allow,
// and a suite of 10 problems is checked in well under a second of CPU.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api/grade/grade.h"
#include "core/conv_ref.h"
#include "server/blas_boot.h"
#include "tests/harness/conv_harness.h"
#include "tests/harness/ref_conv3d.h"
#include "tests/harness/ref_transpose.h"
#include "tests/testlib.h"

enum { SWEEP_CASES = 150, FAMILY_SWEEP_CASES = 120 };

static double *copy_doubles(const double *src, int64_t n) {
    double *out = conv_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *out);
    memcpy(out, src, (size_t)n * sizeof *out);
    return out;
}

static const grade_array *no_submission(void) {
    static grade_array none[GRADE_NTENSORS];
    return none;
}

// A submission holding only tensor t with `data` in `shape`.
static void submit_one(grade_array sub[GRADE_NTENSORS], grade_tensor t, const grade_shape *shape,
                       const double *data) {
    memcpy(sub, no_submission(), GRADE_NTENSORS * sizeof *sub);
    sub[t] = (grade_array){.present = true, .shape = *shape, .data = data};
}

static bool has_diagnosis(const grade_verdict *v, const char *id) {
    for (int i = 0; i < v->n_diag; i++)
        if (strcmp(v->diag[i].id, id) == 0) return true;
    return false;
}

static void describe_diagnoses(char *buf, size_t cap, const grade_verdict *v) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < v->n_diag && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s ", v->diag[i].id);
}

// splitmix64 from seed 0 gives 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f
// (the published reference outputs); values are (top 7 bits - 64) / 64.
static void test_generator(void) {
    double v[3];
    grade_fill(v, 3, 0, GRADE_STREAM_X);
    CHECK(v[0] == (0xe2 >> 1) / 64.0 - 1 && v[1] == (0x6e >> 1) / 64.0 - 1 &&
              v[2] == (0x06 >> 1) / 64.0 - 1,
          "seed 0 stream x starts %g %g %g", v[0], v[1], v[2]);
    enum { COUNT = 4096 };
    static double a[COUNT], b[COUNT];
    int off_grid = 0, out_of_range = 0, same_stream = 0;
    int64_t histogram_min = COUNT, hist[128] = {0};
    for (int s = 0; s < 4; s++) {
        grade_fill(a, COUNT, 12345, (grade_stream)s);
        grade_fill(b, COUNT, 12345, (grade_stream)((s + 1) % 4));
        for (int i = 0; i < COUNT; i++) {
            const double k = a[i] * 64;
            if (k != (double)(int64_t)k) off_grid++;
            if (a[i] < -1 || a[i] >= 1) out_of_range++;
            else hist[(int64_t)k + 64]++;
            if (a[i] == b[i]) same_stream++;
        }
    }
    for (int k = 0; k < 128; k++)
        if (hist[k] < histogram_min) histogram_min = hist[k];
    CHECK(off_grid == 0 && out_of_range == 0, "%d values off the 1/64 grid, %d out of [-1, 1)",
          off_grid, out_of_range);
    // 16384 draws over 128 values: each about 128 times; all of them must occur
    CHECK(histogram_min > 64, "a value in [-1, 1) drawn only %lld times of 16384",
          (long long)histogram_min);
    CHECK(same_stream < 4 * COUNT / 50, "streams agree on %d of %d values", same_stream,
          4 * COUNT);
    grade_fill(b, COUNT, 12345, GRADE_STREAM_DY);
    CHECK(memcmp(a, b, sizeof a) == 0, "the same seed and stream gave different values");
}

// ---------------------------------------------------------------------------------------------
// The other families, judged by the test references alone: ref_conv3d (conv1d and conv2d are
// one plane deep), ref_transpose (conv_transpose1d/2d) and ref_conv3d's adjoint passes for
// conv_transpose3d, with the padding modes' padding made here from PyTorch's definitions.

// The layer as ref_conv3d's geometry (for a transposed op: its adjoint conv layer).
static conv3d_geom family_geom3(const grade_layer *L) {
    const conv_geom *g = &L->g;
    const grade_depth d = grade_layer_depth(L);
    return (conv3d_geom){.n = g->n, .c = g->c, .d = d.d, .h = g->h, .w = g->w, .f = g->f,
                         .kd = d.kd, .kh = g->kh, .kw = g->kw, .groups = g->groups,
                         .stride = {d.stride, g->stride_h, g->stride_w},
                         .dilation = {d.dilation, g->dilation_h, g->dilation_w},
                         .padding = {d.pad_front, d.pad_back, g->pad_top, g->pad_bottom,
                                     g->pad_left, g->pad_right}};
}

// Which input cell padded index i (the input's own index, negative before it) copies along
// an axis of size n: torch.nn.functional.pad's reflect (mirror without the edge), replicate
// (the edge) and circular (wrap around).
static int64_t copied_cell(int64_t i, int64_t n, conv_pad_mode mode) {
    if (i >= 0 && i < n) return i;
    if (mode == CONV_PAD_REPLICATE) return i < 0 ? 0 : n - 1;
    if (mode == CONV_PAD_CIRCULAR) return i < 0 ? i + n : i - n;
    return i < 0 ? -i : 2 * (n - 1) - i;
}

// x (N, C, D, H, W) of g padded by `mode` into xp (g's padded sizes), or, `fold`, the
// gradient dxp of the padded input added back onto dx (the copied cells).
static void pad_or_fold(double *x, double *xp, const conv3d_geom *g, conv_pad_mode mode,
                        bool fold) {
    const int64_t in[3] = {g->d, g->h, g->w};
    int64_t size[3];
    for (int a = 0; a < 3; a++) size[a] = in[a] + g->padding[2 * a] + g->padding[2 * a + 1];
    if (fold) memset(x, 0, (size_t)ref3_numel_x(g) * sizeof *x);
    for (int64_t q = 0; q < g->n * g->c; q++)
        for (int64_t i = 0; i < size[0]; i++)
            for (int64_t j = 0; j < size[1]; j++)
                for (int64_t k = 0; k < size[2]; k++) {
                    const int64_t src =
                        ((q * in[0] + copied_cell(i - g->padding[0], in[0], mode)) * in[1] +
                         copied_cell(j - g->padding[2], in[1], mode)) * in[2] +
                        copied_cell(k - g->padding[4], in[2], mode);
                    const int64_t at = ((q * size[0] + i) * size[1] + j) * size[2] + k;
                    if (fold) x[src] += xp[at];
                    else xp[at] = x[src];
                }
}

// g without its padding, on the padded sizes.
static conv3d_geom unpadded3(const conv3d_geom *g) {
    conv3d_geom u = *g;
    u.d += g->padding[0] + g->padding[1];
    u.h += g->padding[2] + g->padding[3];
    u.w += g->padding[4] + g->padding[5];
    memset(u.padding, 0, sizeof u.padding);
    return u;
}

// Tensor t of a conv problem with x, w, b and dy of its own (the layer's padding_mode
// applied), or of another padding mode than the layer's (a mistake's answer).
static void conv_family_answer(double *out, const grade_layer *L, conv_pad_mode mode,
                               grade_tensor t, const double *x, const double *w, const double *b,
                               const double *dy) {
    const conv3d_geom g = family_geom3(L);
    if (mode == CONV_PAD_ZEROS) {
        switch (t) {
        case GRADE_Y: ref3_forward(out, x, w, b, &g); break;
        case GRADE_DX: ref3_backward_data(out, dy, w, &g); break;
        case GRADE_DW: ref3_backward_weights(out, dy, x, &g); break;
        default: ref3_backward_bias(out, dy, &g); break;
        }
        return;
    }
    const conv3d_geom u = unpadded3(&g);
    double *xp = conv_xmalloc((size_t)ref3_numel_x(&u) * sizeof *xp);
    pad_or_fold((double *)x, xp, &g, mode, false);
    switch (t) {
    case GRADE_Y: ref3_forward(out, xp, w, b, &u); break;
    case GRADE_DX:
        ref3_backward_data(xp, dy, w, &u);
        pad_or_fold(out, xp, &g, mode, true);
        break;
    case GRADE_DW: ref3_backward_weights(out, dy, xp, &u); break;
    default: ref3_backward_bias(out, dy, &u); break;
    }
    free(xp);
}

// A transposed layer as ref_transpose states it (1-d and 2-d), from its adjoint.
static ref_tgeom family_tgeom(const grade_layer *L) {
    const conv_geom *g = &L->g;
    return (ref_tgeom){.n = g->n, .c = g->f, .h = conv_out_h(g), .w = conv_out_w(g), .f = g->c,
                       .kh = g->kh, .kw = g->kw, .groups = g->groups,
                       .stride = {g->stride_h, g->stride_w},
                       .dilation = {g->dilation_h, g->dilation_w},
                       .padding = {g->pad_top, g->pad_bottom, g->pad_left, g->pad_right},
                       .output_padding = {L->output_padding[1], L->output_padding[2]}};
}

// Tensor t of a transposed problem with x, w, b and dy of its own.
static void transposed_family_answer(double *out, const grade_layer *L, grade_tensor t,
                                     const double *x, const double *w, const double *b,
                                     const double *dy) {
    if (L->spatial < 3) {
        const ref_tgeom g = family_tgeom(L);
        switch (t) {
        case GRADE_Y: ref_t_forward(out, x, w, b, &g); break;
        case GRADE_DX: ref_t_backward_data(out, dy, w, &g); break;
        case GRADE_DW: ref_t_backward_weights(out, dy, x, &g); break;
        default: ref_t_backward_bias(out, dy, &g); break;
        }
        return;
    }
    // conv_transpose3d is the adjoint of conv3d: its y conv's dx (plus the bias), its dx conv's
    // y, its dw conv's dw with x and dy trading places, its db dy summed per channel
    const conv3d_geom g = family_geom3(L);
    const int64_t planes = g.d * g.h * g.w;
    switch (t) {
    case GRADE_Y:
        ref3_backward_data(out, x, w, &g);
        for (int64_t i = 0; b && i < ref3_numel_x(&g); i++) out[i] += b[(i / planes) % g.c];
        break;
    case GRADE_DX: ref3_forward(out, dy, w, NULL, &g); break;
    case GRADE_DW: ref3_backward_weights(out, x, dy, &g); break;
    default:
        memset(out, 0, (size_t)g.c * sizeof *out);
        for (int64_t i = 0; i < ref3_numel_x(&g); i++) out[(i / planes) % g.c] += dy[i];
        break;
    }
}

// The right tensor t of problem p by the test references (sized by grade_expected_shape).
static void family_reference(double *out, const grade_problem *p, grade_tensor t) {
    if (p->layer.transposed)
        transposed_family_answer(out, &p->layer, t, p->x, p->w, p->b, p->dy);
    else
        conv_family_answer(out, &p->layer, p->layer.pad_mode, t, p->x, p->w, p->b, p->dy);
}

// A random layer of any op but conv2d with zeros: sizes of a grading problem, stride, dilation,
// padding (within what the padding mode takes), groups, output_padding below the stride, bias
// or not, and the batch left out now and then.
static grade_layer random_family_layer(uint64_t *rng) {
    for (;;) {
        grade_layer L = {.dtype = CONV_FLOAT64, .spatial = (int)t_rand_int(rng, 1, 3),
                         .transposed = t_rand_int(rng, 0, 1), .bias = t_rand_int(rng, 0, 3) > 0};
        if (!L.transposed) L.pad_mode = (conv_pad_mode)t_rand_int(rng, 0, 3);
        if (L.spatial == 2 && !L.transposed && L.pad_mode == CONV_PAD_ZEROS) continue;
        const int64_t groups = t_rand_int(rng, 1, 4) == 4 ? 2 : 1;
        const int64_t c = groups * t_rand_int(rng, 1, 2), f = groups * t_rand_int(rng, 1, 3);
        int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1},
                pad[3] = {0, 0, 0}, op[3] = {0, 0, 0};
        bool ok = true;
        for (int a = 3 - L.spatial; a < 3; a++) {
            in[a] = t_rand_int(rng, L.spatial == 3 ? 2 : 3, L.spatial == 3 ? 4 : 8);
            k[a] = t_rand_int(rng, 1, 3);
            s[a] = t_rand_int(rng, 1, 3);
            d[a] = t_rand_int(rng, 1, 4) == 4 ? 2 : 1;
            pad[a] = t_rand_int(rng, 0, 2);
            if (L.pad_mode == CONV_PAD_REFLECT && pad[a] >= in[a]) pad[a] = in[a] - 1;
            if (L.transposed) {
                op[a] = t_rand_int(rng, 0, s[a] - 1);
                // the output: (in - 1)*s - 2*pad + d*(k - 1) + op + 1 must be at least 1
                const int64_t out = (in[a] - 1) * s[a] - 2 * pad[a] + d[a] * (k[a] - 1) + op[a] + 1;
                ok = ok && out >= 1;
                L.output_padding[a] = op[a];
                in[a] = out; // the adjoint conv's input
            } else {
                ok = ok && in[a] + 2 * pad[a] >= d[a] * (k[a] - 1) + 1;
            }
        }
        if (!ok) continue;
        const int64_t n = t_rand_int(rng, 1, 3);
        L.g = (conv_geom){.n = n, .c = L.transposed ? f : c, .h = in[1], .w = in[2],
                          .f = L.transposed ? c : f, .kh = k[1], .kw = k[2], .groups = groups,
                          .stride_h = s[1], .stride_w = s[2], .dilation_h = d[1],
                          .dilation_w = d[2], .pad_top = pad[1], .pad_bottom = pad[1],
                          .pad_left = pad[2], .pad_right = pad[2]};
        L.depth = (grade_depth){in[0], k[0], s[0], d[0], pad[0], pad[0]};
        L.rank = 2 + L.spatial - (n == 1 && t_rand_int(rng, 0, 1));
        return L;
    }
}

// References of every family equal the test references bit for bit (generated values make
// every sum exact), on the family suite and a random sweep.
static void test_family_references(void) {
    size_t count = 0;
    const grade_suite_entry *suite = grade_suite("family", &count);
    uint64_t rng = 0xfa111;
    int differ = 0, tried = 0;
    for (size_t i = 0; i < count + 60; i++) {
        const grade_layer L = i < count ? suite[i].layer : random_family_layer(&rng);
        grade_problem p;
        if (!grade_problem_generate(&p, &L, 100 + i)) abort();
        for (int t = 0; t < GRADE_NTENSORS; t++) {
            grade_shape s;
            grade_expected_shape(&s, &L, (grade_tensor)t);
            const int64_t n = grade_shape_numel(&s);
            double *want = conv_xmalloc((size_t)n * sizeof *want);
            family_reference(want, &p, (grade_tensor)t);
            if (memcmp(want, p.ref[t], (size_t)n * sizeof *want) != 0 && differ++ == 0)
                printf("  first difference: %s %s of %s\n", i < count ? suite[i].name : "random",
                       grade_tensor_name((grade_tensor)t), grade_layer_family(&L));
            tried++;
            free(want);
        }
        grade_problem_free(&p);
    }
    CHECK(suite && count == 10 && differ == 0, "%d of %d family references differ", differ,
          tried);
}

// Submits `data` in `shape` as tensor t of p: it must fail and be diagnosed as `id`.
static void expect_mistake(const grade_problem *p, grade_tensor t, const grade_shape *shape,
                           const double *data, const char *id, const char *what) {
    grade_array arr[GRADE_NTENSORS];
    submit_one(arr, t, shape, data);
    grade_options o;
    grade_options_default(&o);
    grade_report r;
    if (!grade_check(&r, p, arr, &o)) abort();
    char got[200];
    describe_diagnoses(got, sizeof got, &r.tensor[t]);
    CHECK(!r.passed && has_diagnosis(&r.tensor[t], id), "%s (%s of %s): diagnosed as %s", what,
          grade_tensor_name(t), grade_layer_family(&p->layer), r.passed ? "right" : got);
}

// w with every kernel rotated by 180 degrees (all its spatial axes reversed): (outer, taps).
static double *flipped_kernel(const double *w, int64_t outer, int64_t taps) {
    double *out = conv_xmalloc((size_t)(outer * taps) * sizeof *out);
    for (int64_t q = 0; q < outer; q++)
        for (int64_t i = 0; i < taps; i++) out[q * taps + i] = w[q * taps + taps - 1 - i];
    return out;
}

static grade_problem suite_problem(const char *name, uint64_t seed) {
    size_t count = 0;
    const grade_suite_entry *suite = grade_suite("family", &count);
    size_t i = 0;
    while (i < count && strcmp(suite[i].name, name) != 0) i++;
    if (i == count) abort();
    grade_problem p;
    if (!grade_problem_generate(&p, &suite[i].layer, seed)) abort();
    return p;
}

// The classic mistakes of each family, each answer made here from the test references with
// the mistake in it (not by the engine's mutants), and diagnosed by name; the right answers
// pass and one value off is wrong but not diagnosed.
static void test_family_mistakes(void) {
    // conv_transpose2d, kernel 3, stride 2, padding 1, output_padding 1
    grade_problem p = suite_problem("conv_transpose2d_output_padding", 11);
    ref_tgeom tg = family_tgeom(&p.layer);
    grade_shape y, dx, s;
    grade_expected_shape(&y, &p.layer, GRADE_Y);
    grade_expected_shape(&dx, &p.layer, GRADE_DX);
    const int64_t taps = tg.kh * tg.kw, outer = ref_t_numel_w(&tg) / taps;
    double *wf = flipped_kernel(p.w, outer, taps);
    double *buf = conv_xmalloc((size_t)(8 * ref_t_numel_y(&tg)) * sizeof *buf);
    ref_tgeom forgot = tg;
    forgot.output_padding[0] = forgot.output_padding[1] = 0;
    ref_t_forward(buf, p.x, p.w, p.b, &forgot);
    s = (grade_shape){4, {tg.n, tg.f, ref_t_out_h(&forgot), ref_t_out_w(&forgot)}};
    expect_mistake(&p, GRADE_Y, &s, buf, "output_padding_forgotten", "output_padding left out");
    ref_t_forward(buf, p.x, wf, p.b, &tg);
    expect_mistake(&p, GRADE_Y, &y, buf, "kernel_not_flipped_in_transposed_forward",
                   "a convolution of the dilated input with w unrotated");
    ref_tgeom whole = tg;
    memset(whole.padding, 0, sizeof whole.padding);
    ref_t_forward(buf, p.x, p.w, p.b, &whole);
    s = (grade_shape){4, {tg.n, tg.f, ref_t_out_h(&whole), ref_t_out_w(&whole)}};
    expect_mistake(&p, GRADE_Y, &s, buf, "transposed_padding_not_cropped",
                   "the full output, padding not cropped");
    // conv2d's forward of x at this stride and padding: (3 + 2 - 3) // 2 + 1 = 2 per axis
    s = (grade_shape){4, {tg.n, tg.f, 2, 2}};
    for (int i = 0; i < 16; i++) buf[i] = 0.3 * i;
    expect_mistake(&p, GRADE_Y, &s, buf, "transposed_computed_as_conv", "conv2d's output shape");
    ref_t_backward_data(buf, p.dy, wf, &tg);
    expect_mistake(&p, GRADE_DX, &dx, buf, "kernel_flipped_in_transposed_dx",
                   "dx as a true convolution of dy");
    ref_t_forward(buf, p.x, p.w, p.b, &tg);
    buf[3] += 0.5;
    grade_array arr[GRADE_NTENSORS];
    submit_one(arr, GRADE_Y, &y, buf);
    grade_options o;
    grade_options_default(&o);
    grade_report r;
    if (!grade_check(&r, &p, arr, &o)) abort();
    CHECK(!r.passed && r.tensor[GRADE_Y].n_diag == 0, "one value off: %d diagnoses",
          r.tensor[GRADE_Y].n_diag);
    buf[3] -= 0.5;
    if (!grade_check(&r, &p, arr, &o)) abort();
    CHECK(r.passed, "the right conv_transpose2d y failed");
    free(wf);
    grade_problem_free(&p);

    // conv1d, reflect padding 2: treated as zeros (forward and both gradients), replicated
    // instead, a true convolution, db over the wrong axes or per image
    p = suite_problem("conv1d_reflect", 12);
    const grade_layer *L = &p.layer;
    grade_expected_shape(&y, L, GRADE_Y);
    for (int t = GRADE_Y; t <= GRADE_DW; t++) {
        grade_expected_shape(&s, L, (grade_tensor)t);
        conv_family_answer(buf, L, CONV_PAD_ZEROS, (grade_tensor)t, p.x, p.w, p.b, p.dy);
        expect_mistake(&p, (grade_tensor)t, &s, buf, "padding_mode_treated_as_zeros",
                       "zero padding for reflect");
    }
    conv_family_answer(buf, L, CONV_PAD_REPLICATE, GRADE_Y, p.x, p.w, p.b, p.dy);
    expect_mistake(&p, GRADE_Y, &y, buf, "padding_mode_confused", "replicate for reflect");
    wf = flipped_kernel(p.w, L->g.f * L->g.c, L->g.kw);
    conv_family_answer(buf, L, CONV_PAD_REFLECT, GRADE_Y, p.x, wf, p.b, p.dy);
    expect_mistake(&p, GRADE_Y, &y, buf, "kernel_flipped_in_forward", "a true convolution");
    free(wf);
    const int64_t lo = y.dim[2], filters = L->g.f;
    memset(buf, 0, (size_t)(L->g.n * filters + lo) * sizeof *buf);
    for (int64_t n = 0; n < L->g.n; n++)
        for (int64_t f = 0; f < filters; f++)
            for (int64_t i = 0; i < lo; i++) {
                buf[n * filters + f] += p.dy[(n * filters + f) * lo + i];        // per image
                buf[L->g.n * filters + i] += p.dy[(n * filters + f) * lo + i]; // axes (0, 1)
            }
    s = (grade_shape){2, {L->g.n, filters}};
    expect_mistake(&p, GRADE_DB, &s, buf, "not_summed_over_batch", "db per image");
    s = (grade_shape){1, {lo}};
    expect_mistake(&p, GRADE_DB, &s, buf + L->g.n * filters, "db_summed_over_wrong_axes",
                   "np.sum(dout, axis=(0, 1))");
    grade_problem_free(&p);

    // conv3d: dw of the last image alone, dx with the kernel unrotated, db divided by N, y
    // without its bias; and replicate padding treated as zeros
    p = suite_problem("conv3d_stride_h", 13);
    conv3d_geom g3 = family_geom3(&p.layer), one = g3;
    one.n = 1;
    const int64_t last_x = (g3.n - 1) * ref3_numel_x(&one),
                  last_y = (g3.n - 1) * ref3_numel_y(&one);
    ref3_backward_weights(buf, p.dy + last_y, p.x + last_x, &one);
    grade_expected_shape(&s, &p.layer, GRADE_DW);
    expect_mistake(&p, GRADE_DW, &s, buf, "not_summed_over_batch", "dw of the last image");
    wf = flipped_kernel(p.w, g3.f * g3.c, g3.kd * g3.kh * g3.kw);
    ref3_backward_data(buf, p.dy, wf, &g3);
    grade_expected_shape(&s, &p.layer, GRADE_DX);
    expect_mistake(&p, GRADE_DX, &s, buf, "kernel_not_flipped_in_dx", "dx, kernel unrotated");
    free(wf);
    ref3_backward_bias(buf, p.dy, &g3);
    for (int64_t f = 0; f < g3.f; f++) buf[f] /= (double)g3.n;
    s = (grade_shape){1, {g3.f}};
    expect_mistake(&p, GRADE_DB, &s, buf, "divided_by_batch_size", "db / N");
    ref3_forward(buf, p.x, p.w, NULL, &g3);
    grade_expected_shape(&s, &p.layer, GRADE_Y);
    expect_mistake(&p, GRADE_Y, &s, buf, "bias_missing", "conv3d without bias");
    grade_problem_free(&p);
    p = suite_problem("conv3d_replicate", 14);
    conv_family_answer(buf, &p.layer, CONV_PAD_ZEROS, GRADE_DX, p.x, p.w, p.b, p.dy);
    grade_expected_shape(&s, &p.layer, GRADE_DX);
    expect_mistake(&p, GRADE_DX, &s, buf, "padding_mode_treated_as_zeros",
                   "dx without the padding's gradient folded back");
    grade_problem_free(&p);

    // conv_transpose3d: output_padding forgotten (the adjoint conv3d one plane, row or column
    // shorter where output_padding is 1)
    p = suite_problem("conv_transpose3d", 15);
    g3 = family_geom3(&p.layer);
    conv3d_geom shorter = g3;
    shorter.d -= p.layer.output_padding[0];
    shorter.h -= p.layer.output_padding[1];
    shorter.w -= p.layer.output_padding[2];
    ref3_backward_data(buf, p.x, p.w, &shorter);
    const int64_t planes = shorter.d * shorter.h * shorter.w;
    for (int64_t i = 0; i < ref3_numel_x(&shorter); i++) buf[i] += p.b[(i / planes) % shorter.c];
    s = (grade_shape){5, {shorter.n, shorter.c, shorter.d, shorter.h, shorter.w}};
    expect_mistake(&p, GRADE_Y, &s, buf, "output_padding_forgotten",
                   "conv_transpose3d without output_padding");
    grade_problem_free(&p);
    free(buf);
}

// References equal the naive float64 reference exactly: generated values make sums exact.
// (The family suite's are test_family_references'.)
static void test_references(void) {
    for (const char *const *name = grade_suite_names; *name; name++) {
        if (strcmp(*name, "family") == 0) continue;
        size_t count = 0;
        const grade_suite_entry *suite = grade_suite(*name, &count);
        CHECK(suite && count == 10, "suite %s has %zu problems", *name, count);
        int differ = 0;
        for (size_t i = 0; suite && i < count; i++) {
            grade_problem p;
            const conv_geom *g = &suite[i].layer.g;
            CHECK(conv_geom_check(g, CONV_FLOAT64, NULL) == CONV_OK, "%s/%s invalid", *name,
                  suite[i].name);
            if (!grade_problem_generate(&p, &suite[i].layer, grade_suite_problem_seed(7, i)))
                abort();
            const int64_t n[GRADE_NTENSORS] = {conv_numel_y(g), conv_numel_x(g),
                                               conv_numel_w(g), g->f};
            double *want[GRADE_NTENSORS];
            for (int t = 0; t < GRADE_NTENSORS; t++)
                want[t] = conv_xmalloc((size_t)n[t] * sizeof(double));
            conv_ref_forward(want[GRADE_Y], p.x, p.w, p.b, g);
            conv_ref_backward_data(want[GRADE_DX], p.dy, p.w, g);
            conv_ref_backward_weights(want[GRADE_DW], p.dy, p.x, g);
            conv_ref_backward_bias(want[GRADE_DB], p.dy, g);
            for (int t = 0; t < GRADE_NTENSORS; t++) {
                if (memcmp(want[t], p.ref[t], (size_t)n[t] * sizeof(double)) != 0) differ++;
                free(want[t]);
            }
            grade_problem_free(&p);
        }
        CHECK(differ == 0, "suite %s: %d references differ from conv_ref bit for bit", *name,
              differ);
    }
}

// The numbers of a verdict, on a hand-made submission: dx of a layer whose last row the
// stride never reaches, with errors planted in that row, a NaN and an infinity.
static void test_verdict_numbers(void) {
    // H = 6, k = 2, stride 2, pad 0: windows cover rows 0-5 ... make H = 7: row 6 is leftover
    const grade_layer L = {.g = {.n = 2, .c = 3, .h = 7, .w = 4, .f = 2, .kh = 2, .kw = 2,
                                 .groups = 1, .stride_h = 2, .stride_w = 2, .dilation_h = 1,
                                 .dilation_w = 1},
                           .spatial = 2, .dtype = CONV_FLOAT64, .bias = true, .rank = 4};
    grade_problem p;
    if (!grade_problem_generate(&p, &L, 3)) abort();
    grade_shape shape;
    grade_expected_shape(&shape, &L, GRADE_DX);
    CHECK(shape.rank == 4 && shape.dim[2] == 7 && shape.dim[3] == 4, "dx shape");
    const int64_t n = grade_shape_numel(&shape);
    double *sub = copy_doubles(p.ref[GRADE_DX], n);
    // (n=1, c=2, h=6, w=1): the largest error; (0, 0, 6, 3): a small one; both leftover
    const int64_t big = ((1 * 3 + 2) * 7 + 6) * 4 + 1, small = ((0 * 3 + 0) * 7 + 6) * 4 + 3;
    sub[big] = 0.75;
    sub[small] = -0.125;
    grade_array arr[GRADE_NTENSORS];
    submit_one(arr, GRADE_DX, &shape, sub);
    grade_options o;
    grade_options_default(&o);
    grade_report r;
    if (!grade_check(&r, &p, arr, &o)) abort();
    const grade_verdict *v = &r.tensor[GRADE_DX];
    CHECK(r.graded[GRADE_DX] && !r.graded[GRADE_Y] && !r.passed && r.score == 0 &&
              r.max_score == 1,
          "graded/passed/score %d %d %g/%g", r.graded[GRADE_DX], r.passed, r.score, r.max_score);
    CHECK(v->shape_ok && v->values_compared && v->mismatches == 2 && v->numel == n,
          "mismatches %lld of %lld", (long long)v->mismatches, (long long)v->numel);
    CHECK(v->max_abs_error == 0.75 && v->worst.index == big && v->worst.submitted == 0.75 &&
              v->worst.expected == 0,
          "worst %lld (%g vs %g), max abs %g", (long long)v->worst.index, v->worst.submitted,
          v->worst.expected, v->max_abs_error);
    // CS231n: |s - r| / max(1e-8, |s| + |r|) = 1 when r = 0
    CHECK(v->rel_error == 1 && v->max_rel_error == 0, "rel_error %g, max rel %g",
          v->rel_error, v->max_rel_error);
    CHECK(v->n_first == 2 && v->first[0].index == small && v->first[1].index == big,
          "first mismatches %d: %lld %lld", v->n_first, (long long)v->first[0].index,
          (long long)v->first[1].index);
    CHECK(v->has_pattern && v->pattern == GRADE_PATTERN_LEFTOVER &&
              v->area_mismatches[GRADE_AREA_LEFTOVER] == 2,
          "pattern %s", grade_pattern_name(v->pattern));
    char where[64];
    grade_format_index(where, sizeof where, "dx", v->worst.index, &v->expected_shape);
    CHECK(strcmp(where, "dx[1, 2, 6, 1]") == 0, "worst named %s", where);
    int rank = 0;
    const char *const *axes = grade_axis_names(&L, GRADE_DX, &rank);
    CHECK(rank == 4 && strcmp(axes[0], "n") == 0 && strcmp(axes[3], "w") == 0, "dx axes");

    // relative errors: a value 10% off
    memcpy(sub, p.ref[GRADE_DX], (size_t)n * sizeof *sub);
    int64_t nonzero = 0;
    while (p.ref[GRADE_DX][nonzero] == 0) nonzero++;
    sub[nonzero] = p.ref[GRADE_DX][nonzero] * 1.1;
    sub[n - 1] = NAN;
    sub[n - 2] = INFINITY;
    if (!grade_check(&r, &p, arr, &o)) abort();
    const double want_cs = fabs(0.1 * p.ref[GRADE_DX][nonzero]) /
                           (fabs(1.1 * p.ref[GRADE_DX][nonzero]) +
                            fabs(p.ref[GRADE_DX][nonzero]));
    CHECK(fabs(v->max_rel_error - 0.1) < 1e-12 && fabs(v->rel_error - want_cs) < 1e-12,
          "max rel %.17g (want 0.1), rel_error %.17g (want %.17g)", v->max_rel_error,
          v->rel_error, want_cs);
    CHECK(v->nan_count == 1 && v->inf_count == 1 && v->mismatches == 3 &&
              isinf(v->worst.submitted) && v->worst.index == n - 2,
          "nan %lld inf %lld mismatches %lld worst %g at %lld", (long long)v->nan_count,
          (long long)v->inf_count, (long long)v->mismatches, v->worst.submitted,
          (long long)v->worst.index);

    // the right values with an extra axis: compared, not passed, told so
    memcpy(sub, p.ref[GRADE_DX], (size_t)n * sizeof *sub);
    grade_shape extra = {5, {2, 3, 7, 4, 1}};
    submit_one(arr, GRADE_DX, &extra, sub);
    if (!grade_check(&r, &p, arr, &o)) abort();
    CHECK(!v->passed && !v->shape_ok && v->values_compared && v->mismatches == 0 &&
              has_diagnosis(v, "shape_has_extra_axes"),
          "extra axis: passed %d shape_ok %d", v->passed, v->shape_ok);
    // a shape that holds other values: not compared
    grade_shape other = {4, {2, 3, 4, 7}};
    submit_one(arr, GRADE_DX, &other, sub);
    if (!grade_check(&r, &p, arr, &o)) abort();
    CHECK(!v->passed && !v->values_compared && v->numel == 0, "transposed shape compared");

    // required tensors count even when missing; points are per tensor
    o.required[GRADE_DW] = true;
    o.points[GRADE_DX] = 3;
    o.points[GRADE_DW] = 2;
    submit_one(arr, GRADE_DX, &shape, p.ref[GRADE_DX]);
    if (!grade_check(&r, &p, arr, &o)) abort();
    CHECK(r.graded[GRADE_DW] && !r.tensor[GRADE_DW].present && r.score == 3 &&
              r.max_score == 5 && !r.passed,
          "required dw: score %g/%g", r.score, r.max_score);
    free(sub);
    grade_problem_free(&p);
}

// The float32 fallback: an answer off by float32 rounding passes a float64 problem with a
// warning, not with a given tolerance; a float32 problem uses the float32 tolerance.
static void test_precision(void) {
    grade_layer L = {.g = {.n = 2, .c = 3, .h = 5, .w = 6, .f = 4, .kh = 3, .kw = 3,
                           .groups = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1,
                           .dilation_w = 1, .pad_top = 1, .pad_bottom = 1, .pad_left = 1,
                           .pad_right = 1},
                     .spatial = 2, .dtype = CONV_FLOAT64, .bias = true, .rank = 4};
    grade_problem p;
    if (!grade_problem_generate(&p, &L, 11)) abort();
    grade_shape shape;
    grade_expected_shape(&shape, &L, GRADE_Y);
    const int64_t n = grade_shape_numel(&shape);
    double *sub = copy_doubles(p.ref[GRADE_Y], n);
    for (int64_t i = 0; i < n; i++) sub[i] = sub[i] * (1 + 3e-7) + 1e-7;
    grade_array arr[GRADE_NTENSORS];
    submit_one(arr, GRADE_Y, &shape, sub);
    grade_options o;
    grade_options_default(&o);
    grade_report r;
    if (!grade_check(&r, &p, arr, &o)) abort();
    CHECK(r.passed && r.tensor[GRADE_Y].precision_warning && r.tensor[GRADE_Y].tol.atol == 1e-4,
          "float32-close answer: passed %d warning %d", r.passed,
          r.tensor[GRADE_Y].precision_warning);
    o.tol_given = true;
    o.tol = (grade_tolerance){.atol = 1e-9, .rtol = 1e-9};
    if (!grade_check(&r, &p, arr, &o)) abort();
    CHECK(!r.passed && !r.tensor[GRADE_Y].precision_warning &&
              r.tensor[GRADE_Y].n_diag == 0,
          "given tolerance: passed %d, %d diagnoses", r.passed, r.tensor[GRADE_Y].n_diag);
    grade_problem_free(&p);
    L.dtype = CONV_FLOAT32;
    if (!grade_problem_generate(&p, &L, 11)) abort();
    grade_options_default(&o);
    if (!grade_check(&r, &p, arr, &o)) abort();
    CHECK(r.passed && !r.tensor[GRADE_Y].precision_warning, "float32 problem: passed %d",
          r.passed);
    free(sub);
    grade_problem_free(&p);
}

// Areas of rows: dx of H = 9, k = 2, stride 3, pad 0 (windows at rows 0-1, 3-4, 6-7: rows 2
// and 5 skipped, row 8 leftover); y of H = 5, k = 3, pad 1 (first and last output padded);
// dx of H = 5, k = 3, pad 1 (rows 0 and 4 within the padding band).
static void test_areas(void) {
    const grade_layer a = {.g = {.n = 1, .c = 1, .h = 9, .w = 9, .f = 1, .kh = 2, .kw = 2,
                                 .groups = 1, .stride_h = 3, .stride_w = 3, .dilation_h = 1,
                                 .dilation_w = 1},
                           .spatial = 2, .dtype = CONV_FLOAT64, .rank = 4};
    grade_area rows[9];
    grade_axis_areas(rows, &a, GRADE_DX, true);
    const grade_area want_a[9] = {GRADE_AREA_INTERIOR, GRADE_AREA_INTERIOR,
                                  GRADE_AREA_STRIDE_SKIPPED, GRADE_AREA_INTERIOR,
                                  GRADE_AREA_INTERIOR, GRADE_AREA_STRIDE_SKIPPED,
                                  GRADE_AREA_INTERIOR, GRADE_AREA_INTERIOR, GRADE_AREA_LEFTOVER};
    CHECK(memcmp(rows, want_a, sizeof want_a) == 0, "dx areas with gaps: %d %d %d ... %d",
          rows[0], rows[2], rows[5], rows[8]);
    grade_layer b = a;
    b.g.h = b.g.w = 5, b.g.kh = b.g.kw = 3, b.g.stride_h = b.g.stride_w = 1;
    b.g.pad_top = b.g.pad_bottom = b.g.pad_left = b.g.pad_right = 1;
    grade_axis_areas(rows, &b, GRADE_Y, true);
    CHECK(rows[0] == GRADE_AREA_BORDER && rows[1] == GRADE_AREA_INTERIOR &&
              rows[3] == GRADE_AREA_INTERIOR && rows[4] == GRADE_AREA_BORDER,
          "y areas: %d %d %d %d", rows[0], rows[1], rows[3], rows[4]);
    grade_axis_areas(rows, &b, GRADE_DX, true);
    CHECK(rows[0] == GRADE_AREA_BORDER && rows[2] == GRADE_AREA_INTERIOR &&
              rows[4] == GRADE_AREA_BORDER,
          "dx areas with padding: %d %d %d", rows[0], rows[2], rows[4]);
}

// Counts of one sweep: every candidate that differs from the reference is diagnosed as its
// own mistake; right answers are never diagnosed.
typedef struct {
    int right_failed, right_diagnosed, perturbed_diagnosed;
    int candidates_tried, candidates_missed, pairs_found;
    int found[32];
    char first_miss[400];
} sweep_counts;

// Whether v names another mistake (or pair) whose answer on this layer is k's (within the
// tolerance the engine judges with).
static bool twin_diagnosed(const grade_candidates *c, const grade_candidate *k,
                           const grade_verdict *v) {
    for (size_t i = 0; i < c->count; i++) {
        const grade_candidate *o = &c->items[i];
        if (o == k || !o->data || !has_diagnosis(v, grade_mutants[o->mutant].id) ||
            (o->also != GRADE_NO_MUTANT && !has_diagnosis(v, grade_mutants[o->also].id)) ||
            !grade_shape_equal_squeezed(&o->shape, &k->shape))
            continue;
        grade_tolerance tol;
        grade_tolerance_default(&tol, CONV_FLOAT64);
        bool same = true;
        for (int64_t e = 0; same && e < grade_shape_numel(&k->shape); e++)
            same = grade_within(k->data[e], o->data[e], &tol);
        if (same) return true;
    }
    return false;
}

static void check_problem(sweep_counts *sc, const grade_problem *p) {
    grade_options o;
    grade_options_default(&o);
    grade_report r;
    grade_array arr[GRADE_NTENSORS];
    for (int t = 0; t < GRADE_NTENSORS; t++) {
        grade_shape shape;
        grade_expected_shape(&shape, &p->layer, (grade_tensor)t);
        const int64_t n = grade_shape_numel(&shape);
        // the right answer, from the naive reference
        double *right = conv_xmalloc((size_t)n * sizeof(double));
        const conv_geom *g = &p->layer.g;
        if (p->layer.spatial == 2 && !p->layer.transposed && p->layer.pad_mode == CONV_PAD_ZEROS)
            switch (t) {
            case GRADE_Y: conv_ref_forward(right, p->x, p->w, p->b, g); break;
            case GRADE_DX: conv_ref_backward_data(right, p->dy, p->w, g); break;
            case GRADE_DW: conv_ref_backward_weights(right, p->dy, p->x, g); break;
            default: conv_ref_backward_bias(right, p->dy, g); break;
            }
        else
            family_reference(right, p, (grade_tensor)t);
        submit_one(arr, (grade_tensor)t, &shape, right);
        if (!grade_check(&r, p, arr, &o)) abort();
        if (!r.passed) sc->right_failed++;
        sc->right_diagnosed += r.tensor[t].n_diag;
        // one value off by 1/3 (never a sum of the generator's values): wrong, unexplained
        right[n / 2] += 1.0 / 3;
        if (!grade_check(&r, p, arr, &o)) abort();
        if (r.passed) sc->right_failed++;
        sc->perturbed_diagnosed += r.tensor[t].n_diag;
        free(right);

        grade_candidates c = {0};
        if (!grade_candidates_build(&c, p, (grade_tensor)t)) abort();
        for (size_t i = 0; i < c.count; i++) {
            const grade_candidate *k = &c.items[i];
            double *filler = NULL;
            if (k->match == GRADE_MATCH_SHAPE) {
                // only the shape is the mistake's: any values in it must be diagnosed
                const int64_t m = grade_shape_numel(&k->shape);
                filler = conv_xmalloc((size_t)m * sizeof(double));
                for (int64_t e = 0; e < m; e++) filler[e] = 1.0 / 3 + (double)e;
            }
            submit_one(arr, (grade_tensor)t, &k->shape, filler ? filler : k->data);
            if (!grade_check(&r, p, arr, &o)) abort();
            free(filler);
            if (r.passed) continue; // this mistake gives the right answer on this layer
            sc->candidates_tried++;
            const char *id = grade_mutants[k->mutant].id;
            // a pair is named by both its mistakes
            if (has_diagnosis(&r.tensor[t], id) &&
                (k->also == GRADE_NO_MUTANT ||
                 has_diagnosis(&r.tensor[t], grade_mutants[k->also].id))) {
                sc->found[k->mutant]++;
                sc->pairs_found += k->also != GRADE_NO_MUTANT;
                continue;
            }
            // on some layers a mistake only adds an axis of size 1 to the right values, or
            // gives exactly what another mistake gives
            if ((r.tensor[t].values_compared && r.tensor[t].mismatches == 0 &&
                 has_diagnosis(&r.tensor[t], "shape_has_extra_axes")) ||
                twin_diagnosed(&c, k, &r.tensor[t]))
                continue;
            if (sc->candidates_missed++ == 0) {
                char buf[120];
                describe_diagnoses(buf, sizeof buf, &r.tensor[t]);
                snprintf(sc->first_miss, sizeof sc->first_miss, "%s of %s (%s) got: %s", id,
                         grade_tensor_name((grade_tensor)t), k->variant, buf);
            }
        }
        grade_candidates_free(&c);
    }
}

// A randomized sweep over every configuration class the conv tests use, random layers of the
// other families, and the suites.
static void test_sweep(void) {
    sweep_counts sc = {0};
    uint64_t rng = 0x5eed;
    for (int i = 0; i < SWEEP_CASES; i++) {
        grade_layer L = {.spatial = 2, .dtype = CONV_FLOAT64, .rank = 4};
        conv_random_geom(&L.g, &L.bias, GEOM_RANDOM, &rng);
        grade_problem p;
        if (!grade_problem_generate(&p, &L, t_rand_u64(&rng))) abort();
        check_problem(&sc, &p);
        grade_problem_free(&p);
    }
    for (int i = 0; i < FAMILY_SWEEP_CASES; i++) {
        const grade_layer L = random_family_layer(&rng);
        grade_problem p;
        if (!grade_problem_generate(&p, &L, t_rand_u64(&rng))) abort();
        check_problem(&sc, &p);
        grade_problem_free(&p);
    }
    for (const char *const *name = grade_suite_names; *name; name++) {
        size_t count = 0;
        const grade_suite_entry *suite = grade_suite(*name, &count);
        for (size_t i = 0; i < count; i++) {
            grade_problem p;
            if (!grade_problem_generate(&p, &suite[i].layer, grade_suite_problem_seed(1, i)))
                abort();
            check_problem(&sc, &p);
            grade_problem_free(&p);
        }
    }
    CHECK(sc.right_failed == 0, "%d right (or perturbed) answers judged wrongly",
          sc.right_failed);
    CHECK(sc.right_diagnosed == 0, "%d diagnoses on right answers", sc.right_diagnosed);
    CHECK(sc.perturbed_diagnosed == 0, "%d diagnoses on answers with one value off",
          sc.perturbed_diagnosed);
    CHECK(sc.candidates_missed == 0, "%d of %d mistaken answers not diagnosed as their "
          "mistake; first: %s", sc.candidates_missed, sc.candidates_tried, sc.first_miss);
    for (size_t m = 0; m < grade_n_mutants; m++)
        CHECK(sc.found[m] > 0, "mutant %s never diagnosed in the sweep", grade_mutants[m].id);
    CHECK(sc.pairs_found > 1000, "only %d pairs of mistakes diagnosed as both", sc.pairs_found);
}

// Each suite exposes every mistake its layers can show: some problem where the mistake's
// answer differs from the right one. cs231n layers have one stride and no dilation.
static void test_suites_expose(void) {
    for (const char *const *name = grade_suite_names; *name; name++) {
        size_t count = 0;
        const grade_suite_entry *suite = grade_suite(*name, &count);
        bool exposed[64] = {false};
        for (size_t i = 0; i < count; i++) {
            grade_problem p;
            if (!grade_problem_generate(&p, &suite[i].layer, grade_suite_problem_seed(1, i)))
                abort();
            for (int t = 0; t < GRADE_NTENSORS; t++) {
                grade_candidates c = {0};
                if (!grade_candidates_build(&c, &p, (grade_tensor)t)) abort();
                grade_tolerance tol;
                grade_tolerance_default(&tol, CONV_FLOAT64);
                grade_shape want;
                grade_expected_shape(&want, &p.layer, (grade_tensor)t);
                for (size_t k = 0; k < c.count; k++) {
                    const grade_candidate *cand = &c.items[k];
                    bool differs = !grade_shape_equal_squeezed(&cand->shape, &want) ||
                                   cand->match == GRADE_MATCH_SINGLE_TERMS;
                    for (int64_t e = 0; !differs && e < grade_shape_numel(&want); e++)
                        differs = !grade_within(cand->data[e], p.ref[t][e], &tol);
                    if (differs) exposed[cand->mutant] = true;
                }
                grade_candidates_free(&c);
            }
            grade_problem_free(&p);
        }
        // cs231n layers have one stride and no dilation; in the cs231n suite the strides
        // divide evenly, so rounding the output size up changes nothing
        const bool cs231n = strncmp(*name, "cs231n", 6) == 0;
        const bool even = strcmp(*name, "cs231n") == 0, family = strcmp(*name, "family") == 0;
        size_t uneven = 0;
        for (size_t i = 0; i < count; i++) uneven += !grade_layer_divides_evenly(&suite[i].layer);
        CHECK(family || (even ? uneven == 0 : uneven >= 3), "suite %s has %zu layers whose "
              "stride does not divide evenly", *name, uneven);
        // the mistakes of other ops than conv2d, and of conv2d's own axes and output size (the
        // family suite's one conv2d layer is there for its circular padding)
        static const char *const family_only[] = {
            "kernel_not_flipped_in_transposed_forward", "kernel_flipped_in_transposed_dx",
            "transposed_padding_not_cropped", "output_padding_forgotten",
            "transposed_computed_as_conv", "padding_mode_treated_as_zeros",
            "padding_mode_confused"};
        static const char *const conv2d_only[] = {
            "stride_h_used_for_w", "stride_w_used_for_h", "dilation_ignored",
            "dx_cropped_to_empty", "dx_crop_fixed_at_1", "output_size_wrong_kernel_axis",
            "output_size_rounded"};
        for (size_t m = 0; m < grade_n_mutants; m++) {
            const char *id = grade_mutants[m].id;
            bool other_family = false;
            for (size_t i = 0; i < 7; i++)
                other_family = other_family ||
                               strcmp(id, family ? conv2d_only[i] : family_only[i]) == 0;
            const bool impossible =
                other_family ||
                (cs231n && (strcmp(id, "stride_h_used_for_w") == 0 ||
                            strcmp(id, "stride_w_used_for_h") == 0 ||
                            strcmp(id, "dilation_ignored") == 0)) ||
                (even && strcmp(id, "output_size_rounded") == 0);
            CHECK(exposed[m] != impossible, "suite %s %s mistake %s", *name,
                  impossible ? "claims to expose" : "does not expose", id);
        }
    }
}

// Problems stated in rank 3 (one image) and 2 (one image, one channel): expected shapes
// follow the rank and right answers in that rank pass.
static void test_ranks(void) {
    grade_layer L = {.g = {.n = 1, .c = 1, .h = 6, .w = 5, .f = 1, .kh = 3, .kw = 2,
                           .groups = 1, .stride_h = 1, .stride_w = 2, .dilation_h = 1,
                           .dilation_w = 1, .pad_top = 1, .pad_bottom = 1},
                     .spatial = 2, .dtype = CONV_FLOAT64, .bias = true, .rank = 2};
    grade_problem p;
    if (!grade_problem_generate(&p, &L, 5)) abort();
    grade_shape s[GRADE_NTENSORS];
    grade_array arr[GRADE_NTENSORS];
    for (int t = 0; t < GRADE_NTENSORS; t++) {
        grade_expected_shape(&s[t], &L, (grade_tensor)t);
        arr[t] = (grade_array){.present = true, .shape = s[t], .data = p.ref[t]};
    }
    CHECK(s[GRADE_Y].rank == 2 && s[GRADE_DX].rank == 2 && s[GRADE_DW].rank == 2 &&
              s[GRADE_DW].dim[0] == 3 && s[GRADE_DB].rank == 1 && s[GRADE_DB].dim[0] == 1,
          "rank-2 shapes: y %d dx %d dw %d (%lld) db %d", s[0].rank, s[1].rank, s[2].rank,
          (long long)s[2].dim[0], s[3].rank);
    grade_options o;
    grade_options_default(&o);
    grade_report r;
    if (!grade_check(&r, &p, arr, &o)) abort();
    CHECK(r.passed && r.score == 4, "rank-2 right answers: score %g", r.score);
    // a dx with its padding left on (rank 2: (H+2, W))
    grade_candidates c = {0};
    if (!grade_candidates_build(&c, &p, GRADE_DX)) abort();
    bool found = false;
    for (size_t i = 0; i < c.count; i++) {
        if (strcmp(grade_mutants[c.items[i].mutant].id, "dx_padding_not_cropped") != 0) continue;
        CHECK(c.items[i].shape.rank == 2 && c.items[i].shape.dim[0] == 8 &&
                  c.items[i].shape.dim[1] == 5,
              "uncropped dx in rank 2 has rank %d", c.items[i].shape.rank);
        submit_one(arr, GRADE_DX, &c.items[i].shape, c.items[i].data);
        if (!grade_check(&r, &p, arr, &o)) abort();
        found = has_diagnosis(&r.tensor[GRADE_DX], "dx_padding_not_cropped");
    }
    CHECK(found, "rank-2 uncropped dx not diagnosed");
    grade_candidates_free(&c);
    grade_problem_free(&p);
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

// The budget: graders get half a core. A suite of 10 problems, all four tensors wrong (the
// worst case: every mistake is tried), generated and checked in under 1 s of CPU.
static void test_cpu_budget(void) {
    size_t count = 0;
    const grade_suite_entry *suite = grade_suite("cs231n", &count);
    const double start = cpu_seconds();
    int diagnosed = 0;
    for (size_t i = 0; i < count; i++) {
        grade_problem p;
        if (!grade_problem_generate(&p, &suite[i].layer, grade_suite_problem_seed(42, i)))
            abort();
        grade_array arr[GRADE_NTENSORS];
        double *wrong[GRADE_NTENSORS];
        for (int t = 0; t < GRADE_NTENSORS; t++) {
            grade_shape s;
            grade_expected_shape(&s, &p.layer, (grade_tensor)t);
            wrong[t] = copy_doubles(p.ref[t], grade_shape_numel(&s));
            for (int64_t e = 0; e < grade_shape_numel(&s); e++) wrong[t][e] *= 2;
            arr[t] = (grade_array){.present = true, .shape = s, .data = wrong[t]};
        }
        grade_options o;
        grade_options_default(&o);
        grade_report r;
        if (!grade_check(&r, &p, arr, &o)) abort();
        diagnosed += !r.passed;
        for (int t = 0; t < GRADE_NTENSORS; t++) free(wrong[t]);
        grade_problem_free(&p);
    }
    const double cpu = cpu_seconds() - start;
    printf("cpu budget: 10 problems x 4 wrong tensors checked in %.3f s of CPU\n", cpu);
#if defined(__SANITIZE_ADDRESS__)
    const double limit = 20.0; // sanitizers slow the loops down ~10x
#else
    const double limit = 1.0;
#endif
    CHECK(diagnosed == 10 && cpu < limit, "%d failed, %.3f s of CPU (limit %.1f)", diagnosed,
          cpu, limit);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    test_generator();
    test_references();
    test_family_references();
    test_family_mistakes();
    test_verdict_numbers();
    test_precision();
    test_areas();
    test_ranks();
    test_suites_expose();
    test_sweep();
    test_cpu_budget();
    return t_finish("test_grade");
}
