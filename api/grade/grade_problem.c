#include "api/grade/grade_problem.h"

#include <stdlib.h>
#include <string.h>

#include "core/conv_transpose.h"

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

grade_depth grade_layer_depth(const grade_layer *L) {
    return L->spatial == 3 ? L->depth : (grade_depth){1, 1, 1, 1, 0, 0};
}

static const char *const families[2][3] = {{"conv1d", "conv2d", "conv3d"},
                                           {"conv_transpose1d", "conv_transpose2d",
                                            "conv_transpose3d"}};

const char *grade_layer_family(const grade_layer *L) {
    return families[L->transposed][L->spatial - 1];
}

bool grade_family_parse(grade_layer *L, const char *family) {
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 3; s++)
            if (strcmp(family, families[t][s]) == 0) {
                L->transposed = t;
                L->spatial = s + 1;
                return true;
            }
    return false;
}

int64_t grade_layer_flops(const grade_layer *L) {
    const grade_depth d = grade_layer_depth(L);
    const int64_t planes = conv_out_size(d.d, d.kd, d.stride, d.dilation, d.pad_front,
                                         d.pad_back);
    int64_t flops = conv_flops(&L->g);
    if (__builtin_mul_overflow(flops, d.kd * planes, &flops)) return INT64_MAX;
    return flops;
}

grade_tensor grade_conv_role(const grade_layer *L, grade_tensor t) {
    if (!L->transposed || t == GRADE_DW || t == GRADE_DB) return t;
    return t == GRADE_Y ? GRADE_DX : GRADE_Y;
}

// Tensor t of the layer in the family's full rank (conv: y (N, F, D', H', W'), dx (N, C, D,
// H, W), dw (F, C/G, kd, kh, kw), db (F); a transposed op's y and dx trade places and its db
// has the adjoint's C), then without the spatial axes the family lacks (conv2d: D; conv1d: D
// and H) and without the leading axes L's rank leaves out.
void grade_expected_shape(grade_shape *s, const grade_layer *L, grade_tensor t) {
    const conv_geom *g = &L->g;
    const grade_depth d = grade_layer_depth(L);
    int64_t full[5];
    switch (grade_conv_role(L, t)) {
    case GRADE_Y:
        full[0] = g->n, full[1] = g->f;
        full[2] = conv_out_size(d.d, d.kd, d.stride, d.dilation, d.pad_front, d.pad_back);
        full[3] = conv_out_h(g), full[4] = conv_out_w(g);
        break;
    case GRADE_DX:
        full[0] = g->n, full[1] = g->c, full[2] = d.d, full[3] = g->h, full[4] = g->w;
        break;
    case GRADE_DW:
        full[0] = g->f, full[1] = g->c / g->groups, full[2] = d.kd, full[3] = g->kh;
        full[4] = g->kw;
        break;
    default:
        s->rank = 1;
        s->dim[0] = L->transposed ? g->c : g->f;
        return;
    }
    // the family's axes: leading two, then its spatial ones (the last `spatial` of the three)
    int64_t family[5] = {full[0], full[1]};
    for (int a = 0; a < L->spatial; a++) family[2 + a] = full[5 - L->spatial + a];
    const int rank = 2 + L->spatial;
    // a rank-2 conv2d problem states w as (kh, kw); smaller ranks drop y's and dx's batch
    // (and a rank-2 conv2d's channels too)
    const int drop = t == GRADE_DW ? (L->rank == 2 && L->spatial == 2 ? 2 : 0) : rank - L->rank;
    s->rank = rank - drop;
    for (int i = 0; i < s->rank; i++) s->dim[i] = family[i + drop];
}

const char *const *grade_axis_names(const grade_layer *L, grade_tensor t, int *rank) {
    static const char *const names[2][3][GRADE_NTENSORS][5] = {
        {{{"n", "f", "l"}, {"n", "c", "l"}, {"f", "c", "k"}, {"f"}},
         {{"n", "f", "h", "w"}, {"n", "c", "h", "w"}, {"f", "c", "kh", "kw"}, {"f"}},
         {{"n", "f", "d", "h", "w"}, {"n", "c", "d", "h", "w"}, {"f", "c", "kd", "kh", "kw"},
          {"f"}}},
        // transposed: x (N, C, ...) in, y (N, F, ...) out, w (C, F/G, ...)
        {{{"n", "f", "l"}, {"n", "c", "l"}, {"c", "f", "k"}, {"f"}},
         {{"n", "f", "h", "w"}, {"n", "c", "h", "w"}, {"c", "f", "kh", "kw"}, {"f"}},
         {{"n", "f", "d", "h", "w"}, {"n", "c", "d", "h", "w"}, {"c", "f", "kd", "kh", "kw"},
          {"f"}}}};
    grade_shape s;
    grade_expected_shape(&s, L, t);
    const int full = t == GRADE_DB ? 1 : 2 + L->spatial;
    *rank = s.rank;
    return names[L->transposed][L->spatial - 1][t] + (full - s.rank);
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

static int64_t expected_numel(const grade_layer *L, grade_tensor t) {
    grade_shape s;
    grade_expected_shape(&s, L, t);
    return grade_shape_numel(&s);
}

// The layer as core's 3-d geometry (one plane deep for conv1d and conv2d).
static void layer_geom3(conv3d_geom *g3, const grade_layer *L) {
    const conv_geom *g = &L->g;
    const grade_depth d = grade_layer_depth(L);
    *g3 = (conv3d_geom){.n = g->n, .c = g->c, .d = d.d, .h = g->h, .w = g->w, .f = g->f,
                        .kd = d.kd, .kh = g->kh, .kw = g->kw, .groups = g->groups,
                        .stride = {d.stride, g->stride_h, g->stride_w},
                        .dilation = {d.dilation, g->dilation_h, g->dilation_w},
                        .padding = {d.pad_front, d.pad_back, g->pad_top, g->pad_bottom,
                                    g->pad_left, g->pad_right}};
}

// The four passes of L's family, core's own, on inputs x (shaped like conv's input: the
// transposed op's dy), w, b and the upstream gradient dy (shaped like conv's output: the
// transposed op's x). The geometry was checked by the caller, so the passes cannot fail.
static void run_passes(double *ref[GRADE_NTENSORS], const double *x, const double *w,
                       const double *b, const double *dy, const grade_layer *L,
                       const conv_exec *ex) {
    const conv_geom *g = &L->g;
    conv3d_geom g3;
    layer_geom3(&g3, L);
    const conv_dtype dt = CONV_FLOAT64;
    if (L->spatial == 3 && L->transposed) {
        conv_transpose3d_forward(ref[GRADE_Y], dy, w, b, &g3, dt, ex, NULL);
        conv_transpose3d_backward_data(ref[GRADE_DX], x, w, &g3, dt, ex, NULL);
        conv_transpose3d_backward_weights(ref[GRADE_DW], x, dy, &g3, dt, ex, NULL);
        conv_transpose3d_backward_bias(ref[GRADE_DB], x, &g3, dt, ex, NULL);
    } else if (L->spatial == 3) {
        conv3d_forward(ref[GRADE_Y], x, w, b, &g3, dt, ex, NULL);
        conv3d_backward_data(ref[GRADE_DX], dy, w, &g3, dt, ex, NULL);
        conv3d_backward_weights(ref[GRADE_DW], dy, x, &g3, dt, ex, NULL);
        conv3d_backward_bias(ref[GRADE_DB], dy, &g3, dt, ex, NULL);
    } else if (L->transposed) {
        conv_transpose2d_forward(ref[GRADE_Y], dy, w, b, g, dt, ex, NULL);
        conv_transpose2d_backward_data(ref[GRADE_DX], x, w, g, dt, ex, NULL);
        conv_transpose2d_backward_weights(ref[GRADE_DW], x, dy, g, dt, ex, NULL);
        conv_transpose2d_backward_bias(ref[GRADE_DB], x, g, dt, ex, NULL);
    } else {
        conv2d_forward(ref[GRADE_Y], x, w, b, g, dt, ex, NULL);
        conv2d_backward_data(ref[GRADE_DX], dy, w, g, dt, ex, NULL);
        conv2d_backward_weights(ref[GRADE_DW], dy, x, g, dt, ex, NULL);
        conv2d_backward_bias(ref[GRADE_DB], dy, g, dt, ex, NULL);
    }
}

size_t grade_layer_workspace(const grade_layer *L, int threads, size_t cap) {
    conv3d_geom g3;
    layer_geom3(&g3, L);
    return L->spatial == 3 ? conv3d_workspace_size(&g3, CONV_FLOAT64, threads, cap)
                           : conv_workspace_size(&L->g, CONV_FLOAT64, threads, cap);
}

// The input's sizes (d, h, w) and its padding per side (front, back, top, bottom, left,
// right), as core/conv_pad.h takes them (one plane deep for 1-d and 2-d layers).
static void pad_plan(const grade_layer *L, int64_t dims[3], int64_t pad[6]) {
    const conv_geom *g = &L->g;
    const grade_depth d = grade_layer_depth(L);
    const int64_t in[3] = {d.d, g->h, g->w},
                  sides[6] = {d.pad_front, d.pad_back, g->pad_top, g->pad_bottom, g->pad_left,
                              g->pad_right};
    memcpy(dims, in, sizeof in);
    memcpy(pad, sides, sizeof sides);
}

// The layer run on its input padded beforehand: sizes grown by the padding, none left.
static grade_layer unpadded(const grade_layer *L) {
    grade_layer U = *L;
    conv_geom *g = &U.g;
    g->h += g->pad_top + g->pad_bottom;
    g->w += g->pad_left + g->pad_right;
    g->pad_top = g->pad_bottom = g->pad_left = g->pad_right = 0;
    U.depth.d += U.depth.pad_front + U.depth.pad_back;
    U.depth.pad_front = U.depth.pad_back = 0;
    U.pad_mode = CONV_PAD_ZEROS;
    return U;
}

// The references in float64, one thread, with scratch of their own. A padding mode other
// than zeros runs the plain layer on x padded by core/conv_pad.h and folds dx back through
// the padding (its exact adjoint), as autograd does.
static bool compute_references(grade_problem *p) {
    const grade_layer *L = &p->layer;
    for (int t = 0; t < GRADE_NTENSORS; t++)
        if (!(p->ref[t] = alloc_doubles(expected_numel(L, (grade_tensor)t)))) return false;
    const bool copies = L->pad_mode != CONV_PAD_ZEROS;
    const grade_layer run = copies ? unpadded(L) : *L;
    const double *conv_in = L->transposed ? p->dy : p->x, *conv_out = L->transposed ? p->x : p->dy;
    int64_t dims[3], pad[6];
    pad_plan(L, dims, pad);
    const int64_t planes = L->g.n * L->g.c;
    const int64_t padded = planes * (dims[0] + pad[0] + pad[1]) * (dims[1] + pad[2] + pad[3]) *
                           (dims[2] + pad[4] + pad[5]);
    double *xp = copies ? alloc_doubles(padded) : NULL;
    double *dxp = copies ? alloc_doubles(padded) : NULL;
    const size_t bytes = grade_layer_workspace(&run, 1, CONV_WORKSPACE_CAP_DEFAULT);
    // Grading stays on the exact paths (never Winograd): float64 references to the last bits.
    conv_exec ex = {.workspace = malloc(bytes ? bytes : 1), .workspace_bytes = bytes,
                    .threads = 1, .algorithm = CONV_ALGO_DIRECT};
    const bool ok = ex.workspace && (!copies || (xp && dxp));
    if (ok) {
        if (copies) conv_pad_apply(xp, p->x, planes, dims, pad, L->pad_mode, CONV_FLOAT64);
        double *out[GRADE_NTENSORS] = {p->ref[GRADE_Y], copies ? dxp : p->ref[GRADE_DX],
                                       p->ref[GRADE_DW], p->ref[GRADE_DB]};
        run_passes(out, copies ? xp : conv_in, p->w, p->b, conv_out, &run, &ex);
        if (copies) conv_pad_fold(p->ref[GRADE_DX], dxp, planes, dims, pad, L->pad_mode,
                                  CONV_FLOAT64);
    }
    free(ex.workspace);
    free(xp);
    free(dxp);
    return ok;
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
    // x is shaped like dx, w like dw, b like db and dy like y
    const grade_tensor like[4] = {GRADE_DX, GRADE_DW, GRADE_DB, GRADE_Y};
    double *in[4] = {NULL};
    for (int i = 0; i < 4; i++) {
        if (i == GRADE_STREAM_B && !L->bias) continue;
        const int64_t count = expected_numel(L, like[i]);
        if ((in[i] = alloc_doubles(count))) grade_fill(in[i], count, seed, (grade_stream)i);
    }
    return grade_problem_adopt(p, L, in[GRADE_STREAM_X], in[GRADE_STREAM_W], in[GRADE_STREAM_B],
                               in[GRADE_STREAM_DY]);
}

// Suites. Each comment says what the layer is there to expose; "leftover" rows (or columns)
// come after the last window and the stride never reaches them, "gaps" lie between windows.
// Arguments in the order of the macro's parameters: sizes, stride, padding per side,
// dilation, groups, bias.
#define LAYER(N, C, H, W, F, KH, KW, SH, SW, PT, PB, PL, PR, DH, DW, G, BIAS)                 \
    {.g = {.n = N, .c = C, .h = H, .w = W, .f = F, .kh = KH, .kw = KW, .groups = G,           \
           .stride_h = SH, .stride_w = SW, .dilation_h = DH, .dilation_w = DW, .pad_top = PT,  \
           .pad_bottom = PB, .pad_left = PL, .pad_right = PR},                                \
     .spatial = 2, .dtype = CONV_FLOAT64, .bias = BIAS, .rank = 4}

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

// The other families, one layer each, with a padding mode where conv takes one. The
// transposed layers are written as PyTorch states them (x's sizes, output_padding) and kept
// as their adjoint conv layer (dilation 1: an output size is (in - 1)*stride - 2*pad + k - 1 +
// output_padding + 1). Arguments: spatial axes, padding mode, N, C, D, H, W, F, kernel (d, h,
// w), stride (d, h, w), padding per axis (d, h, w); transposed ones also output_padding.
#define CONV_FAMILY(SP, MODE, N, C, D, H, W, F, KD, KH, KW, SD, SH, SW, PD, PH, PW)          \
    {.g = {.n = N, .c = C, .h = H, .w = W, .f = F, .kh = KH, .kw = KW, .groups = 1,           \
           .stride_h = SH, .stride_w = SW, .dilation_h = 1, .dilation_w = 1, .pad_top = PH,    \
           .pad_bottom = PH, .pad_left = PW, .pad_right = PW},                                \
     .depth = {D, KD, SD, 1, PD, PD}, .spatial = SP, .pad_mode = MODE,                        \
     .dtype = CONV_FLOAT64, .bias = true, .rank = SP + 2}
#define T_OUT(I, K, S, P, OP) (((I) - 1) * (S) - 2 * (P) + (K) - 1 + (OP) + 1)
#define TRANSPOSED_FAMILY(SP, N, C, D, H, W, F, KD, KH, KW, SD, SH, SW, PD, PH, PW, OPD, OPH,   \
                          OPW)                                                                \
    {.g = {.n = N, .c = F, .h = T_OUT(H, KH, SH, PH, OPH), .w = T_OUT(W, KW, SW, PW, OPW),    \
           .f = C, .kh = KH, .kw = KW, .groups = 1, .stride_h = SH, .stride_w = SW,           \
           .dilation_h = 1, .dilation_w = 1, .pad_top = PH, .pad_bottom = PH, .pad_left = PW, \
           .pad_right = PW},                                                                  \
     .depth = {T_OUT(D, KD, SD, PD, OPD), KD, SD, 1, PD, PD}, .spatial = SP,                  \
     .transposed = true, .output_padding = {OPD, OPH, OPW}, .dtype = CONV_FLOAT64,            \
     .bias = true, .rank = SP + 2}

static const grade_suite_entry suite_family[] = {
    // conv1d with stride 2 and padding: a flip, the batch sum, db over (0, 2)
    {"conv1d_stride2", CONV_FAMILY(1, CONV_PAD_ZEROS, 2, 3, 1, 1, 9, 4, 1, 1, 3, 1, 1, 2, 0, 0,
                                   1)},
    // reflect padding 2 on a short signal: treated as zeros, or replicated instead
    {"conv1d_reflect", CONV_FAMILY(1, CONV_PAD_REFLECT, 2, 2, 1, 1, 8, 3, 1, 1, 3, 1, 1, 1, 0, 0,
                                   2)},
    // a 3-d layer with a stride on rows only
    {"conv3d_stride_h", CONV_FAMILY(3, CONV_PAD_ZEROS, 2, 2, 4, 5, 4, 3, 2, 3, 2, 1, 2, 1, 1, 1,
                                    1)},
    // replicate padding in three dimensions
    {"conv3d_replicate", CONV_FAMILY(3, CONV_PAD_REPLICATE, 2, 2, 3, 4, 4, 2, 3, 3, 2, 1, 1, 1,
                                     1, 1, 1)},
    // circular padding of a 2-d layer, H != W
    {"conv2d_circular", CONV_FAMILY(2, CONV_PAD_CIRCULAR, 2, 3, 1, 5, 6, 4, 1, 3, 3, 1, 1, 1, 0,
                                    1, 1)},
    // conv_transpose1d doubling a signal: kernel 4, stride 2, padding 1
    {"conv_transpose1d_up2", TRANSPOSED_FAMILY(1, 2, 3, 1, 1, 5, 2, 1, 1, 4, 1, 1, 2, 0, 0, 1, 0,
                                               0, 0)},
    // the classic upsampling layer: kernel 4, stride 2, padding 1
    {"conv_transpose2d_up2", TRANSPOSED_FAMILY(2, 2, 3, 1, 3, 4, 2, 1, 4, 4, 1, 2, 2, 0, 1, 1, 0,
                                               0, 0)},
    // output_padding 1: the output one row and column longer than the formula without it
    {"conv_transpose2d_output_padding",
     TRANSPOSED_FAMILY(2, 2, 2, 1, 3, 3, 3, 1, 3, 3, 1, 2, 2, 0, 1, 1, 0, 1, 1)},
    // kernel 3, stride 1, padding 1: the same size out, a flip shows
    {"conv_transpose2d_same_size",
     TRANSPOSED_FAMILY(2, 3, 2, 1, 4, 5, 3, 1, 3, 2, 1, 1, 1, 0, 1, 0, 0, 0, 0)},
    // conv_transpose3d with output_padding on two axes
    {"conv_transpose3d", TRANSPOSED_FAMILY(3, 1, 2, 2, 3, 2, 3, 2, 2, 3, 2, 2, 2, 0, 1, 0, 1, 0,
                                           1)},
};

#define SUITE(name) {#name, suite_##name, sizeof suite_##name / sizeof suite_##name[0]}
static const struct {
    const char *name;
    const grade_suite_entry *entries;
    size_t count;
} suites[] = {SUITE(cs231n), SUITE(cs231n_uneven), SUITE(full), SUITE(family)};

const char *const grade_suite_names[] = {"cs231n", "cs231n_uneven", "full", "family", NULL};

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
    const grade_depth d = grade_layer_depth(L);
    return (g->h + g->pad_top + g->pad_bottom - g->dilation_h * (g->kh - 1) - 1) % g->stride_h ==
               0 &&
           (g->w + g->pad_left + g->pad_right - g->dilation_w * (g->kw - 1) - 1) % g->stride_w ==
               0 &&
           (d.d + d.pad_front + d.pad_back - d.dilation * (d.kd - 1) - 1) % d.stride == 0;
}
