#include "api/grade/grade_problem.h"

#include <stdlib.h>
#include <string.h>

static const char *const tensor_names[GRADE_NTENSORS] = {"y", "dx", "dw", "db"};

const char *grade_tensor_name(grade_tensor t) { return tensor_names[t]; }

bool grade_tensor_parse(grade_tensor *t, const char *name) {
    for (int i = 0; i < GRADE_NTENSORS; i++)
        if (strcmp(name, tensor_names[i]) == 0) {
            *t = (grade_tensor)i;
            return true;
        }
    return false;
}

int64_t grade_shape_numel(const grade_shape *s) {
    // an empty answer may state huge sizes beside its 0, whose product would overflow
    for (int i = 0; i < s->rank; i++)
        if (s->dim[i] == 0) return 0;
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->dim[i];
    return n;
}

bool grade_shape_equal(const grade_shape *a, const grade_shape *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

static void shape_squeeze(grade_shape *out, const grade_shape *s) {
    out->rank = 0;
    for (int i = 0; i < s->rank; i++)
        if (s->dim[i] != 1) out->dim[out->rank++] = s->dim[i];
}

bool grade_shape_equal_squeezed(const grade_shape *a, const grade_shape *b) {
    grade_shape sa, sb;
    shape_squeeze(&sa, a);
    shape_squeeze(&sb, b);
    return grade_shape_equal(&sa, &sb);
}

// How many leading axes of tensor t the layer's rank leaves out of its NCHW form.
static int dropped_axes(const grade_layer *L, grade_tensor t) {
    switch (t) {
    case GRADE_Y:
    case GRADE_DX: return 4 - L->rank;
    case GRADE_DW: return L->rank == 2 ? 2 : 0;
    default: return 0;
    }
}

void grade_expected_shape(grade_shape *s, const grade_layer *L, grade_tensor t) {
    const conv_geom *g = &L->g;
    int64_t full[4];
    int rank = 4;
    switch (t) {
    case GRADE_Y:
        full[0] = g->n, full[1] = g->f, full[2] = conv_out_h(g), full[3] = conv_out_w(g);
        break;
    case GRADE_DX: full[0] = g->n, full[1] = g->c, full[2] = g->h, full[3] = g->w; break;
    case GRADE_DW:
        full[0] = g->f, full[1] = g->c / g->groups, full[2] = g->kh, full[3] = g->kw;
        break;
    default: full[0] = g->f, rank = 1; break;
    }
    const int drop = dropped_axes(L, t);
    s->rank = rank - drop;
    for (int i = 0; i < s->rank; i++) s->dim[i] = full[i + drop];
}

const char *const *grade_axis_names(const grade_layer *L, grade_tensor t, int *rank) {
    static const char *const names[GRADE_NTENSORS][4] = {
        {"n", "f", "h", "w"}, {"n", "c", "h", "w"}, {"f", "c", "kh", "kw"}, {"f"}};
    const int drop = dropped_axes(L, t);
    *rank = (t == GRADE_DB ? 1 : 4) - drop;
    return names[t] + drop;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void grade_fill(double *out, int64_t count, uint64_t seed, grade_stream stream) {
    uint64_t state = seed + ((uint64_t)stream << 62);
    for (int64_t i = 0; i < count; i++)
        out[i] = (double)((int64_t)(splitmix64(&state) >> 57) - 64) / 64.0;
}

void grade_problem_free(grade_problem *p) {
    free(p->x);
    free(p->w);
    free(p->b);
    free(p->dy);
    for (int t = 0; t < GRADE_NTENSORS; t++) free(p->ref[t]);
    memset(p, 0, sizeof *p);
}

static double *alloc_doubles(int64_t count) {
    return malloc((size_t)(count > 0 ? count : 1) * sizeof(double));
}

// The four passes of core/conv.h in float64, one thread, with scratch of its own.
static bool compute_references(grade_problem *p) {
    const conv_geom *g = &p->layer.g;
    const int64_t counts[GRADE_NTENSORS] = {conv_numel_y(g), conv_numel_x(g), conv_numel_w(g),
                                            g->f};
    for (int t = 0; t < GRADE_NTENSORS; t++)
        if (!(p->ref[t] = alloc_doubles(counts[t]))) return false;
    const size_t bytes = conv_workspace_size(g, CONV_FLOAT64, 1, CONV_WORKSPACE_CAP_DEFAULT);
    // Grading stays on the exact paths (never Winograd): float64 references to the last bits.
    conv_exec ex = {.workspace = malloc(bytes), .workspace_bytes = bytes, .threads = 1,
                    .algorithm = CONV_ALGO_DIRECT};
    if (!ex.workspace) return false;
    // The geometry was checked by the caller, so the passes cannot fail.
    conv2d_forward(p->ref[GRADE_Y], p->x, p->w, p->b, g, CONV_FLOAT64, &ex, NULL);
    conv2d_backward_data(p->ref[GRADE_DX], p->dy, p->w, g, CONV_FLOAT64, &ex, NULL);
    conv2d_backward_weights(p->ref[GRADE_DW], p->dy, p->x, g, CONV_FLOAT64, &ex, NULL);
    conv2d_backward_bias(p->ref[GRADE_DB], p->dy, g, CONV_FLOAT64, NULL, NULL);
    free(ex.workspace);
    return true;
}

bool grade_problem_adopt(grade_problem *p, const grade_layer *L, double *x, double *w,
                         double *b, double *dy) {
    memset(p, 0, sizeof *p);
    p->layer = *L;
    p->x = x, p->w = w, p->b = b, p->dy = dy;
    if (!x || !w || !dy || (L->bias && !b) || !compute_references(p)) {
        grade_problem_free(p);
        return false;
    }
    return true;
}

bool grade_problem_generate(grade_problem *p, const grade_layer *L, uint64_t seed) {
    const conv_geom *g = &L->g;
    double *x = alloc_doubles(conv_numel_x(g)), *w = alloc_doubles(conv_numel_w(g));
    double *b = L->bias ? alloc_doubles(g->f) : NULL, *dy = alloc_doubles(conv_numel_y(g));
    if (x) grade_fill(x, conv_numel_x(g), seed, GRADE_STREAM_X);
    if (w) grade_fill(w, conv_numel_w(g), seed, GRADE_STREAM_W);
    if (b) grade_fill(b, g->f, seed, GRADE_STREAM_B);
    if (dy) grade_fill(dy, conv_numel_y(g), seed, GRADE_STREAM_DY);
    return grade_problem_adopt(p, L, x, w, b, dy);
}

// Suites. Each comment says what the layer is there to expose; "leftover" rows (or columns)
// come after the last window and the stride never reaches them, "gaps" lie between windows.
// Arguments in the order of the macro's parameters: sizes, stride, padding per side,
// dilation, groups, bias.
#define LAYER(N, C, H, W, F, KH, KW, SH, SW, PT, PB, PL, PR, DH, DW, G, BIAS)                 \
    {.g = {.n = N, .c = C, .h = H, .w = W, .f = F, .kh = KH, .kw = KW, .groups = G,           \
           .stride_h = SH, .stride_w = SW, .dilation_h = DH, .dilation_w = DW, .pad_top = PT,  \
           .pad_bottom = PB, .pad_left = PL, .pad_right = PR},                                \
     .dtype = CONV_FLOAT64, .bias = BIAS, .rank = 4}

// CS231n's conventions: one stride, one padding for all sides, no groups or dilation, always
// a bias, and a stride that divides H + 2*pad - HH and W + 2*pad - WW evenly (the course's
// fast layers assert it, its formula H' = 1 + (H + 2*pad - HH) / stride assumes it).
static const grade_suite_entry suite_cs231n[] = {
    // the textbook case: flips, signs, overwrites, db axes, the batch sum
    {"square_pad1", LAYER(2, 3, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true)},
    // H != W: height and width swapped, a square input assumed
    {"tall_input", LAYER(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true)},
    // stride 2, no padding: stride ignored, dx cropped with [p:-p] or [1:-1] at p = 0
    {"stride2_pad0", LAYER(3, 2, 8, 8, 5, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, true)},
    // stride 2 on a tall input
    {"stride2_tall", LAYER(2, 3, 9, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true)},
    // kh != kw, W != H: a flip along one axis only, kernel axes swapped or mixed up in the
    // output size
    {"wide_kernel", LAYER(4, 3, 6, 7, 2, 2, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true)},
    // C == F: weight in/out channels swapped gives a tensor of the right shape
    {"channels_equal", LAYER(2, 3, 5, 6, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, true)},
    // stride 3 > kernel 2: gaps between windows
    {"stride3_gaps", LAYER(2, 2, 9, 12, 3, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, true)},
    // padding 2 with a 3x3 kernel: windows made mostly of padding, padding fixed at 1
    {"pad2", LAYER(3, 2, 5, 4, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1, 1, true)},
    // 1x1 kernel, stride 2: every other row and column skipped
    {"pointwise_stride2", LAYER(3, 4, 5, 7, 2, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, true)},
    // a bigger layer: 5x3 kernel, stride 2, padding 2
    {"large", LAYER(4, 3, 11, 9, 5, 5, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, true)},
};

// What conv_param can say, with strides that leave rows after the last window (which a naive
// layer must handle: H_out floors, those rows get no gradient). Asserts of an even division
// fail here, and round() in the output size shows.
static const grade_suite_entry suite_cs231n_uneven[] = {
    // the textbook case: flips, signs, overwrites, db axes, the batch sum
    {"square_pad1", LAYER(2, 3, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true)},
    // H != W: height and width swapped
    {"tall_input", LAYER(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true)},
    // stride 2, no padding: stride ignored, dx cropped with [p:-p] at p = 0
    {"stride2_pad0", LAYER(3, 2, 8, 8, 5, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, true)},
    // (H + 2p - k) odd with stride 2: a leftover row
    {"leftover_row", LAYER(2, 3, 8, 9, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true)},
    // kh != kw, W != H: a flip along one axis only, kernel axes swapped
    {"wide_kernel", LAYER(4, 3, 6, 7, 2, 2, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true)},
    // C == F: weight in/out channels swapped gives a tensor of the right shape
    {"channels_equal", LAYER(2, 3, 5, 6, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, true)},
    // stride 3 > kernel 2: gaps between windows, leftover rows and columns
    {"stride3_gaps", LAYER(2, 2, 8, 10, 3, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, true)},
    // padding 2 with a 3x3 kernel: windows made mostly of padding
    {"pad2", LAYER(3, 2, 5, 4, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1, 1, true)},
    // 1x1 kernel, stride 2: every other row and column skipped, a leftover column
    {"pointwise_stride2", LAYER(3, 4, 5, 6, 2, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, true)},
    // a bigger layer: 5x3 kernel, stride 2, padding 2, a leftover row
    {"large", LAYER(4, 3, 10, 11, 5, 5, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, true)},
};

static const grade_suite_entry suite_full[] = {
    {"square_pad1", LAYER(2, 3, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true)},
    // stride_h != stride_w, H != W: one axis's stride used for both
    {"stride_1x2", LAYER(2, 3, 7, 9, 4, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 1, true)},
    // stride (2, 1), no padding, kh != kw, a leftover row
    {"stride_2x1_pad0", LAYER(3, 2, 9, 8, 5, 2, 3, 2, 1, 0, 0, 0, 0, 1, 1, 1, true)},
    {"leftover_row", LAYER(2, 3, 8, 9, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true)},
    // two groups: channels mixed across groups
    {"groups2", LAYER(2, 4, 5, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, true)},
    // depthwise, padding per side (top 1, bottom 0, left 0, right 1)
    {"depthwise_pad_sides", LAYER(3, 3, 6, 5, 3, 2, 2, 1, 1, 1, 0, 0, 1, 1, 1, 3, true)},
    // dilation (2, 1), padding (2, 1): dilation ignored
    {"dilated", LAYER(2, 2, 8, 7, 3, 3, 2, 1, 1, 2, 2, 1, 1, 2, 1, 1, true)},
    {"channels_equal", LAYER(2, 3, 5, 6, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, true)},
    // stride (3, 2) > kernel 2: gaps between rows, leftover rows and columns
    {"stride_3x2_gaps", LAYER(2, 2, 8, 10, 3, 2, 2, 3, 2, 1, 1, 1, 1, 1, 1, 1, true)},
    // 1x1 kernel, stride 2, no bias
    {"pointwise_no_bias", LAYER(3, 4, 5, 6, 2, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, false)},
};

#define SUITE(name) {#name, suite_##name, sizeof suite_##name / sizeof suite_##name[0]}
static const struct {
    const char *name;
    const grade_suite_entry *entries;
    size_t count;
} suites[] = {SUITE(cs231n), SUITE(cs231n_uneven), SUITE(full)};

const char *const grade_suite_names[] = {"cs231n", "cs231n_uneven", "full", NULL};

const grade_suite_entry *grade_suite(const char *name, size_t *count) {
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        if (strcmp(name, suites[i].name) == 0) {
            *count = suites[i].count;
            return suites[i].entries;
        }
    return NULL;
}

bool grade_layer_divides_evenly(const grade_layer *L) {
    const conv_geom *g = &L->g;
    return (g->h + g->pad_top + g->pad_bottom - g->dilation_h * (g->kh - 1) - 1) % g->stride_h ==
               0 &&
           (g->w + g->pad_left + g->pad_right - g->dilation_w * (g->kw - 1) - 1) % g->stride_w == 0;
}
