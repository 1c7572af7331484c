#include "api/grade/grade_mutant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    M_SIGN,
    M_BIAS_MISSING,
    M_FLIP_Y,
    M_FLIP_DX,
    M_FLIP_DW,
    M_STRIDE_IGNORED,
    M_STRIDE_H_BOTH,
    M_STRIDE_W_BOTH,
    M_DILATION_IGNORED,
    M_PADDING_IGNORED,
    M_CHANNELS_SWAPPED,
    M_DX_NOT_CROPPED,
    M_DX_EMPTY,
    M_DB_AXES,
    M_BATCH_UNSUMMED,
    M_DIVIDED_BY_N,
    M_OVERWRITTEN,
    M_HW_SWAPPED,
    M_COUNT
};

#define T_Y (1u << GRADE_Y)
#define T_DX (1u << GRADE_DX)
#define T_DW (1u << GRADE_DW)
#define T_DB (1u << GRADE_DB)
#define T_SPATIAL (T_Y | T_DX | T_DW)

const grade_mutant grade_mutants[M_COUNT] = {
    [M_SIGN] = {"sign_flipped",
                "Your values have the right size but the opposite sign. The chain rule "
                "multiplies by +dout: accumulate dout times the other factor, and look for a "
                "stray minus or a subtraction where an addition belongs.",
                T_SPATIAL | T_DB},
    [M_BIAS_MISSING] = {"bias_missing",
                        "The bias is missing from the output: add b[f] to every output "
                        "value of filter f (out[:, f] += b[f]).",
                        T_Y},
    [M_FLIP_Y] = {"kernel_flipped_in_forward",
                  "Your forward pass rotates the kernel by 180 degrees (a true convolution). "
                  "Conv layers compute cross-correlation: out[n, f, i, j] = sum(window * "
                  "w[f]) with w as it is, tap (a, b) on window pixel (a, b).",
                  T_Y},
    [M_FLIP_DX] = {"kernel_not_flipped_in_dx",
                   "dx is dout convolved with the kernel rotated by 180 degrees "
                   "(w[:, :, ::-1, ::-1]); yours uses it unrotated (or rotated twice). The "
                   "simplest correct form scatters each output back through its window: "
                   "dx_pad[n, :, i*stride:i*stride+HH, j*stride:j*stride+WW] += "
                   "w[f] * dout[n, f, i, j].",
                   T_DX},
    [M_FLIP_DW] = {"dw_flipped",
                   "dw is rotated by 180 degrees: dw[f, c, a, b] must collect dout times the "
                   "input pixel that tap (a, b) touched, x_pad[n, c, i*stride + a, "
                   "j*stride + b]. Do not rotate x, dout or dw.",
                   T_DW},
    [M_STRIDE_IGNORED] = {"stride_ignored",
                          "You move the window one pixel per output instead of `stride` "
                          "pixels: output (i, j) belongs to the window that starts at row "
                          "i*stride and column j*stride of the padded input "
                          "(x_pad[..., i*stride:i*stride+HH, j*stride:j*stride+WW]).",
                          T_SPATIAL},
    [M_STRIDE_H_BOTH] = {"stride_h_used_for_w",
                         "You use the vertical stride for both axes: rows step by stride_h "
                         "(i*stride_h) and columns by stride_w (j*stride_w). Tests with "
                         "equal strides hide this.",
                         T_SPATIAL},
    [M_STRIDE_W_BOTH] = {"stride_w_used_for_h",
                         "You use the horizontal stride for both axes: rows step by stride_h "
                         "(i*stride_h) and columns by stride_w (j*stride_w). Tests with "
                         "equal strides hide this.",
                         T_SPATIAL},
    [M_DILATION_IGNORED] = {"dilation_ignored",
                            "You ignore the dilation: kernel tap (a, b) of output (i, j) "
                            "reads row i*stride_h + a*dilation_h and column j*stride_w + "
                            "b*dilation_w of the padded input, not adjacent pixels.",
                            T_SPATIAL},
    [M_PADDING_IGNORED] = {"padding_ignored",
                           "You slide the window over the unpadded input. Pad first "
                           "(np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))) and take "
                           "the windows from the padded array: window (i, j) starts at row "
                           "i*stride - pad of x.",
                           T_SPATIAL},
    [M_CHANNELS_SWAPPED] = {"weight_channels_swapped",
                            "You swapped the weight's channel axes: w has shape (F, C, HH, "
                            "WW), filters first, and w[f, c] links input channel c to output "
                            "channel f. Your answer matches reading it as (C, F, HH, WW); dw "
                            "must have w's shape too.",
                            T_SPATIAL},
    [M_DX_NOT_CROPPED] = {"dx_padding_not_cropped",
                          "dx still contains the padding. Accumulating into dx_pad of shape "
                          "(N, C, H + 2*pad, W + 2*pad) is right, but return its interior "
                          "dx_pad[:, :, pad:pad+H, pad:pad+W], with the shape of x.",
                          T_DX},
    [M_DX_EMPTY] = {"dx_cropped_to_empty",
                    "dx is empty: with pad = 0, dx_pad[:, :, pad:-pad, pad:-pad] is "
                    "dx_pad[:, :, 0:0, 0:0]. Crop with explicit ends: "
                    "dx_pad[:, :, pad:pad+H, pad:pad+W].",
                    T_DX},
    [M_DB_AXES] = {"db_summed_over_wrong_axes",
                   "db[f] is dout[:, f] summed over the batch and every output pixel: "
                   "np.sum(dout, axis=(0, 2, 3)), of shape (F,). Yours sums over other axes "
                   "(see the evidence).",
                   T_DB},
    [M_BATCH_UNSUMMED] = {"not_summed_over_batch",
                          "dw and db add up the contributions of every image in the batch; "
                          "yours keeps the images apart or keeps only one of them (see the "
                          "evidence). Accumulate with += inside the loop over n (or sum over "
                          "axis 0).",
                          T_DW | T_DB},
    [M_DIVIDED_BY_N] = {"divided_by_batch_size",
                        "Your gradient is divided by the batch size N. The layer's backward "
                        "pass returns the plain sum over the batch; averaging belongs to the "
                        "loss, and dout already carries it.",
                        T_DW | T_DB},
    [M_OVERWRITTEN] = {"contributions_overwritten",
                       "Each wrong value is a single term of the sum it should be: you assign "
                       "(=) where you must accumulate (+=). Windows overlap and every output "
                       "contributes, so write dx_pad[...] += ..., dw[f] += ..., db[f] += ....",
                       T_SPATIAL | T_DB},
    [M_HW_SWAPPED] = {"height_width_swapped",
                      "Height and width are swapped: your array holds (W, H) where (H, W) "
                      "belongs. Check the order of axes in reshape and transpose calls, and "
                      "that the output height comes from H and HH, its width from W and WW.",
                      T_SPATIAL},
};
const size_t grade_n_mutants = M_COUNT;

// The index map every pass walks, with the parameters a mistake may get wrong.
typedef struct {
    int64_t sh, sw, dh, dw, pt, pl; // stride, dilation, leading padding used
    int64_t ho, wo;                 // output positions visited: y's own size, or dy's
    bool flip;                      // kernel taps read (dw written) rotated by 180 degrees
    bool swap_channels;             // w read (dw written) as laid out (C/G, F, kh, kw)
    bool no_crop;                   // dx written into the padded input
    bool per_sample;                // dw written per sample: (N, F, C/G, kh, kw)
} index_map;

// The map of tensor t with the given stride and dilation, padded or not. For y the output
// size follows the map (a student computes it with the same mistake); the gradients loop
// over dout, whose size is given.
static index_map make_map(const conv_geom *g, grade_tensor t, int64_t sh, int64_t sw,
                          int64_t dh, int64_t dw, bool padded) {
    index_map m = {.sh = sh, .sw = sw, .dh = dh, .dw = dw,
                   .pt = padded ? g->pad_top : 0, .pl = padded ? g->pad_left : 0};
    if (t == GRADE_Y) {
        m.ho = conv_out_size(g->h, g->kh, sh, dh, m.pt, padded ? g->pad_bottom : 0);
        m.wo = conv_out_size(g->w, g->kw, sw, dw, m.pl, padded ? g->pad_right : 0);
    } else {
        m.ho = conv_out_h(g);
        m.wo = conv_out_w(g);
    }
    return m;
}

static index_map true_map(const conv_geom *g, grade_tensor t) {
    return make_map(g, t, g->stride_h, g->stride_w, g->dilation_h, g->dilation_w, true);
}

// Receives every term of a walk: `out` indexes the target, `value` is the term.
typedef struct term_visitor term_visitor;
struct term_visitor {
    void (*term)(term_visitor *self, int64_t out, double value);
    void (*end_position)(term_visitor *self); // after each output position (n, r, c); or NULL
};

// Visits every term of target tensor t under map m: y += x*w, dx += dy*w, dw += dy*x,
// db += dy (taps on the padding give y and dw terms of 0). Order: sample, output row, output
// column, filter, channel, kernel row, kernel column.
static void walk(const grade_problem *p, grade_tensor t, const index_map *m, term_visitor *v) {
    const conv_geom *g = &p->layer.g;
    const int64_t cpg = g->c / g->groups, fpg = g->f / g->groups;
    const int64_t hp = g->h + g->pad_top + g->pad_bottom, wp = g->w + g->pad_left + g->pad_right;
    const int64_t numel_w = conv_numel_w(g);
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t r = 0; r < m->ho; r++)
            for (int64_t c = 0; c < m->wo; c++) {
                for (int64_t f = 0; f < g->f; f++) {
                    const int64_t yi = ((n * g->f + f) * m->ho + r) * m->wo + c;
                    if (t == GRADE_DB) {
                        v->term(v, f, p->dy[yi]);
                        continue;
                    }
                    for (int64_t ch = 0; ch < cpg; ch++) {
                        const int64_t in_ch = (f / fpg) * cpg + ch;
                        for (int64_t a = 0; a < g->kh; a++) {
                            const int64_t ih = r * m->sh + a * m->dh - m->pt;
                            for (int64_t b = 0; b < g->kw; b++) {
                                const int64_t iw = c * m->sw + b * m->dw - m->pl;
                                const bool inside = ih >= 0 && ih < g->h && iw >= 0 && iw < g->w;
                                const int64_t ka = m->flip ? g->kh - 1 - a : a;
                                const int64_t kb = m->flip ? g->kw - 1 - b : b;
                                const int64_t wi =
                                    (m->swap_channels ? (ch * g->f + f) : (f * cpg + ch)) *
                                        g->kh * g->kw +
                                    ka * g->kw + kb;
                                const int64_t xi = ((n * g->c + in_ch) * g->h + ih) * g->w + iw;
                                const int64_t dwi = wi + (m->per_sample ? n * numel_w : 0);
                                if (t == GRADE_DX && m->no_crop) {
                                    const int64_t ph = ih + g->pad_top, pw = iw + g->pad_left;
                                    if (ph >= 0 && ph < hp && pw >= 0 && pw < wp)
                                        v->term(v, ((n * g->c + in_ch) * hp + ph) * wp + pw,
                                                p->dy[yi] * p->w[wi]);
                                } else if (!inside) {
                                    // a tap on the zero padding: a term of 0, which `=`
                                    // leaves in y or dw when it comes last
                                    if (t == GRADE_Y) v->term(v, yi, 0.0);
                                    else if (t == GRADE_DW) v->term(v, dwi, 0.0);
                                } else if (t == GRADE_Y) {
                                    v->term(v, yi, p->x[xi] * p->w[wi]);
                                } else if (t == GRADE_DX) {
                                    v->term(v, xi, p->dy[yi] * p->w[wi]);
                                } else {
                                    v->term(v, dwi, p->dy[yi] * p->x[xi]);
                                }
                            }
                        }
                    }
                }
                if (v->end_position) v->end_position(v);
            }
}

// Sums the terms into `out` (or keeps the last one when `assign`).
typedef struct {
    term_visitor base;
    double *out;
    bool assign;
} sum_visitor;

static void sum_term(term_visitor *self, int64_t out, double value) {
    sum_visitor *s = (sum_visitor *)self;
    s->out[out] = s->assign ? value : s->out[out] + value;
}

// The shape target t gets under map m (in NCHW terms, before the problem's rank applies).
static void map_shape(grade_shape *s, const conv_geom *g, grade_tensor t, const index_map *m) {
    const int64_t cpg = g->c / g->groups;
    s->rank = 4;
    switch (t) {
    case GRADE_Y: s->dim[0] = g->n, s->dim[1] = g->f, s->dim[2] = m->ho, s->dim[3] = m->wo; break;
    case GRADE_DX:
        s->dim[0] = g->n, s->dim[1] = g->c;
        s->dim[2] = g->h + (m->no_crop ? g->pad_top + g->pad_bottom : 0);
        s->dim[3] = g->w + (m->no_crop ? g->pad_left + g->pad_right : 0);
        break;
    case GRADE_DW:
        s->dim[0] = m->swap_channels ? cpg : g->f, s->dim[1] = m->swap_channels ? g->f : cpg;
        s->dim[2] = g->kh, s->dim[3] = g->kw;
        if (m->per_sample) {
            memmove(s->dim + 1, s->dim, 4 * sizeof s->dim[0]);
            s->dim[0] = g->n;
            s->rank = 5;
        }
        break;
    default: s->rank = 1, s->dim[0] = g->f; break;
    }
}

// Drops the leading axes of size 1 that the problem's rank leaves out, so that a candidate
// is stated the way the student's answer is.
static void to_problem_rank(grade_shape *s, const grade_problem *p, grade_tensor t) {
    grade_shape expected;
    grade_expected_shape(&expected, &p->layer, t);
    const int full = t == GRADE_DB ? 1 : 4;
    int drop = full - expected.rank;
    while (drop-- > 0 && s->rank > 1 && s->dim[0] == 1) {
        memmove(s->dim, s->dim + 1, (size_t)(s->rank - 1) * sizeof s->dim[0]);
        s->rank--;
    }
}

// A new candidate with room for `shape`'s values, zeroed; NULL without memory.
static grade_candidate *add_candidate(grade_candidates *c, const grade_problem *p,
                                      grade_tensor t, size_t mutant, grade_match match,
                                      const grade_shape *shape, const char *variant) {
    if (c->count == c->cap) {
        const size_t cap = c->cap ? 2 * c->cap : 16;
        grade_candidate *grown = realloc(c->items, cap * sizeof *grown);
        if (!grown) return NULL;
        c->items = grown;
        c->cap = cap;
    }
    grade_candidate *k = &c->items[c->count];
    memset(k, 0, sizeof *k);
    k->mutant = mutant;
    k->match = match;
    k->shape = *shape;
    snprintf(k->variant, sizeof k->variant, "%s", variant);
    const int64_t n = grade_shape_numel(shape);
    if (match != GRADE_MATCH_EMPTY && !(k->data = calloc((size_t)(n > 0 ? n : 1), sizeof(double))))
        return NULL;
    to_problem_rank(&k->shape, p, t);
    c->count++;
    return k;
}

static void add_bias(double *y, const grade_problem *p, const grade_shape *s) {
    if (!p->b) return;
    const int64_t plane = s->dim[2] * s->dim[3];
    for (int64_t i = 0; i < grade_shape_numel(s); i++) y[i] += p->b[(i / plane) % s->dim[1]];
}

// The candidate tensor t gets from walking map m (summing, or keeping the last term).
static bool add_walk(grade_candidates *c, const grade_problem *p, grade_tensor t, size_t mutant,
                     const index_map *m, grade_match match, const char *variant) {
    if (m->ho < 1 || m->wo < 1) return true; // the mistake leaves no output at all
    grade_shape s;
    map_shape(&s, &p->layer.g, t, m);
    grade_candidate *k = add_candidate(c, p, t, mutant, match, &s, variant);
    if (!k) return false;
    sum_visitor v = {{sum_term, NULL}, k->data, match == GRADE_MATCH_SINGLE_TERMS};
    walk(p, t, m, &v.base);
    if (t == GRADE_Y) add_bias(k->data, p, &s);
    return true;
}

static void expected_internal_shape(grade_shape *s, const grade_problem *p, grade_tensor t) {
    const index_map m = true_map(&p->layer.g, t);
    map_shape(s, &p->layer.g, t, &m);
}

// The reference times `scale`.
static bool add_scaled(grade_candidates *c, const grade_problem *p, grade_tensor t,
                       size_t mutant, double scale) {
    grade_shape s;
    expected_internal_shape(&s, p, t);
    grade_candidate *k = add_candidate(c, p, t, mutant, GRADE_MATCH_VALUES, &s, "");
    if (!k) return false;
    for (int64_t i = 0; i < grade_shape_numel(&s); i++) k->data[i] = scale * p->ref[t][i];
    return true;
}

// The reference with its last two axes swapped: transposed (values moved), and reshaped
// (values in place, shape swapped) when that differs from the reference.
static bool add_hw_swapped(grade_candidates *c, const grade_problem *p, grade_tensor t) {
    grade_shape s;
    expected_internal_shape(&s, p, t);
    const int64_t rows = s.dim[2], cols = s.dim[3], planes = s.dim[0] * s.dim[1];
    s.dim[2] = cols, s.dim[3] = rows;
    grade_candidate *k = add_candidate(c, p, t, M_HW_SWAPPED, GRADE_MATCH_VALUES, &s,
                                       "transposed: your [.., j, i] holds the right [.., i, j]");
    if (!k) return false;
    for (int64_t q = 0; q < planes; q++)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++)
                k->data[(q * cols + j) * rows + i] = p->ref[t][(q * rows + i) * cols + j];
    if (rows == cols) return true;
    k = add_candidate(c, p, t, M_HW_SWAPPED, GRADE_MATCH_VALUES, &s,
                      "reshaped: the right values in order, with height and width swapped");
    if (!k) return false;
    memcpy(k->data, p->ref[t], (size_t)(planes * rows * cols) * sizeof(double));
    return true;
}

// Index-map mistakes of y, dx and dw.
static bool add_map_mistakes(grade_candidates *c, const grade_problem *p, grade_tensor t) {
    const conv_geom *g = &p->layer.g;
    const bool padded = g->pad_top + g->pad_bottom + g->pad_left + g->pad_right > 0;
    const size_t flip_id = t == GRADE_Y ? M_FLIP_Y : t == GRADE_DX ? M_FLIP_DX : M_FLIP_DW;
    index_map m = true_map(g, t);
    m.flip = true;
    bool ok = add_walk(c, p, t, flip_id, &m, GRADE_MATCH_VALUES, "");
    m = true_map(g, t);
    m.swap_channels = true;
    ok = ok && add_walk(c, p, t, M_CHANNELS_SWAPPED, &m, GRADE_MATCH_VALUES, "");
    if (g->stride_h > 1 || g->stride_w > 1) {
        m = make_map(g, t, 1, 1, g->dilation_h, g->dilation_w, true);
        ok = ok && add_walk(c, p, t, M_STRIDE_IGNORED, &m, GRADE_MATCH_VALUES, "");
    }
    if (g->stride_h != g->stride_w) {
        m = make_map(g, t, g->stride_h, g->stride_h, g->dilation_h, g->dilation_w, true);
        ok = ok && add_walk(c, p, t, M_STRIDE_H_BOTH, &m, GRADE_MATCH_VALUES, "");
        m = make_map(g, t, g->stride_w, g->stride_w, g->dilation_h, g->dilation_w, true);
        ok = ok && add_walk(c, p, t, M_STRIDE_W_BOTH, &m, GRADE_MATCH_VALUES, "");
    }
    if (g->dilation_h > 1 || g->dilation_w > 1) {
        m = make_map(g, t, g->stride_h, g->stride_w, 1, 1, true);
        ok = ok && add_walk(c, p, t, M_DILATION_IGNORED, &m, GRADE_MATCH_VALUES, "");
    }
    if (padded) {
        m = make_map(g, t, g->stride_h, g->stride_w, g->dilation_h, g->dilation_w, false);
        ok = ok && add_walk(c, p, t, M_PADDING_IGNORED, &m, GRADE_MATCH_VALUES, "");
    }
    m = true_map(g, t);
    return ok && add_walk(c, p, t, M_OVERWRITTEN, &m, GRADE_MATCH_SINGLE_TERMS, "");
}

static bool add_dx_crop_mistakes(grade_candidates *c, const grade_problem *p) {
    const conv_geom *g = &p->layer.g;
    const bool pad_h = g->pad_top + g->pad_bottom > 0, pad_w = g->pad_left + g->pad_right > 0;
    if (pad_h || pad_w) {
        index_map m = true_map(g, GRADE_DX);
        m.no_crop = true;
        if (!add_walk(c, p, GRADE_DX, M_DX_NOT_CROPPED, &m, GRADE_MATCH_VALUES, "")) return false;
    }
    if (pad_h && pad_w) return true;
    const grade_shape empty = {4, {g->n, g->c, pad_h ? g->h : 0, pad_w ? g->w : 0}};
    return add_candidate(c, p, GRADE_DX, M_DX_EMPTY, GRADE_MATCH_EMPTY, &empty, "") != NULL;
}

// The per-image answers of dw or db, laid out (N, ...) in candidate `all_index` (numel values
// each): one candidate per image alone, for a student who keeps only one of them.
static bool add_single_images(grade_candidates *c, const grade_problem *p, grade_tensor t,
                              size_t all_index, int64_t numel) {
    grade_shape s;
    expected_internal_shape(&s, p, t);
    for (int64_t n = 0; n < p->layer.g.n; n++) {
        char variant[96];
        snprintf(variant, sizeof variant, "%s of image n=%lld alone%s", grade_tensor_name(t),
                 (long long)n, n == p->layer.g.n - 1 ? " (the last one)" : "");
        grade_candidate *k =
            add_candidate(c, p, t, M_BATCH_UNSUMMED, GRADE_MATCH_VALUES, &s, variant);
        if (!k) return false;
        memcpy(k->data, c->items[all_index].data + n * numel, (size_t)numel * sizeof(double));
    }
    return true;
}

// dw of each image apart: all of them (the batch axis kept), and each one alone.
static bool add_dw_batch_mistakes(grade_candidates *c, const grade_problem *p) {
    const conv_geom *g = &p->layer.g;
    if (g->n < 2) return true;
    index_map m = true_map(g, GRADE_DW);
    m.per_sample = true;
    return add_walk(c, p, GRADE_DW, M_BATCH_UNSUMMED, &m, GRADE_MATCH_VALUES,
                    "one dw per image: the batch axis is kept, not summed") &&
           add_single_images(c, p, GRADE_DW, c->count - 1, conv_numel_w(g));
}

// dy summed over the axes in `mask` (bit i = axis i of (N, F, Ho, Wo)), the others kept.
static bool add_dy_sum(grade_candidates *c, const grade_problem *p, size_t mutant,
                       unsigned mask, const char *variant) {
    const conv_geom *g = &p->layer.g;
    const int64_t dims[4] = {g->n, g->f, conv_out_h(g), conv_out_w(g)};
    grade_shape s = {0, {0}};
    for (int i = 0; i < 4; i++)
        if (!(mask & (1u << i))) s.dim[s.rank++] = dims[i];
    grade_candidate *k = add_candidate(c, p, GRADE_DB, mutant, GRADE_MATCH_VALUES, &s, variant);
    if (!k) return false;
    int64_t idx[4];
    for (idx[0] = 0; idx[0] < dims[0]; idx[0]++)
        for (idx[1] = 0; idx[1] < dims[1]; idx[1]++)
            for (idx[2] = 0; idx[2] < dims[2]; idx[2]++)
                for (idx[3] = 0; idx[3] < dims[3]; idx[3]++) {
                    int64_t out = 0;
                    for (int i = 0; i < 4; i++)
                        if (!(mask & (1u << i))) out = out * dims[i] + idx[i];
                    k->data[out] +=
                        p->dy[((idx[0] * dims[1] + idx[1]) * dims[2] + idx[2]) * dims[3] + idx[3]];
                }
    return true;
}

static bool add_db_mistakes(grade_candidates *c, const grade_problem *p) {
    const conv_geom *g = &p->layer.g;
    enum { AXIS_N = 1, AXIS_F = 2, AXIS_H = 4, AXIS_W = 8, RIGHT = AXIS_N | AXIS_H | AXIS_W };
    static const char *const axis_names[4] = {"0 (batch)", "1 (filters)", "2 (rows)",
                                              "3 (columns)"};
    for (unsigned mask = 0; mask < 16; mask++) {
        if (mask == RIGHT || mask == (AXIS_H | AXIS_W)) continue; // right; the batch kept
        char variant[96] = "dout itself, not summed at all";
        if (mask) {
            size_t used = (size_t)snprintf(variant, sizeof variant, "dout summed over axes");
            const char *sep = " ";
            for (int i = 0; i < 4; i++)
                if (mask & (1u << i)) {
                    used += (size_t)snprintf(variant + used, sizeof variant - used, "%s%s", sep,
                                             axis_names[i]);
                    sep = ", ";
                }
        }
        if (!add_dy_sum(c, p, M_DB_AXES, mask, variant)) return false;
    }
    if (g->n > 1 && !(add_dy_sum(c, p, M_BATCH_UNSUMMED, AXIS_H | AXIS_W,
                                 "one db per image: the batch axis is kept, not summed") &&
                      add_single_images(c, p, GRADE_DB, c->count - 1, g->f)))
        return false;
    const index_map m = true_map(g, GRADE_DB);
    return add_walk(c, p, GRADE_DB, M_OVERWRITTEN, &m, GRADE_MATCH_SINGLE_TERMS, "");
}

bool grade_candidates_build(grade_candidates *out, const grade_problem *p, grade_tensor t) {
    const conv_geom *g = &p->layer.g;
    if (!add_scaled(out, p, t, M_SIGN, -1.0)) return false;
    if ((t == GRADE_DW || t == GRADE_DB) && g->n > 1 &&
        !add_scaled(out, p, t, M_DIVIDED_BY_N, 1.0 / (double)g->n))
        return false;
    if (t == GRADE_DB) return add_db_mistakes(out, p);
    if (t == GRADE_Y && p->b) {
        grade_shape s;
        expected_internal_shape(&s, p, t);
        grade_candidate *k = add_candidate(out, p, t, M_BIAS_MISSING, GRADE_MATCH_VALUES, &s, "");
        if (!k) return false;
        const int64_t plane = s.dim[2] * s.dim[3];
        for (int64_t i = 0; i < grade_shape_numel(&s); i++)
            k->data[i] = p->ref[t][i] - p->b[(i / plane) % g->f];
    }
    if (!add_hw_swapped(out, p, t) || !add_map_mistakes(out, p, t)) return false;
    if (t == GRADE_DX) return add_dx_crop_mistakes(out, p);
    if (t == GRADE_DW) return add_dw_batch_mistakes(out, p);
    return true;
}

void grade_candidates_free(grade_candidates *c) {
    for (size_t i = 0; i < c->count; i++) free(c->items[i].data);
    free(c->items);
    memset(c, 0, sizeof *c);
}

// Whether values a and b (n each) all agree under tol (b taken as the expected side), and
// how many disagree; stops counting at the first disagreement when `count` is NULL.
static bool all_within(const double *a, const double *b, int64_t n, const grade_tolerance *tol,
                       int64_t *count) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (!grade_within(a[i], b[i], tol)) {
            bad++;
            if (!count) return false;
        }
    if (count) *count = bad;
    return bad == 0;
}

// Marks the values of a submission that equal one term of their sum (plus the bias for y),
// or (dx) the sum over filters at one output position.
typedef struct {
    term_visitor base;
    const double *sub;
    const grade_tolerance *tol;
    bool *hit;
    const double *bias;          // y only
    int64_t plane, filters;      // y: which bias an output gets
    double *acc;                 // dx only: this position's sums
    bool *touched;
    int64_t *list, nlist;
} term_match;

static void match_term(term_visitor *self, int64_t out, double value) {
    term_match *m = (term_match *)self;
    const double bias = m->bias ? m->bias[(out / m->plane) % m->filters] : 0;
    if (grade_within(m->sub[out], value + bias, m->tol)) m->hit[out] = true;
    if (!m->acc) return;
    if (!m->touched[out]) {
        m->touched[out] = true;
        m->list[m->nlist++] = out;
    }
    m->acc[out] += value;
}

static void match_position(term_visitor *self) {
    term_match *m = (term_match *)self;
    for (int64_t i = 0; i < m->nlist; i++) {
        const int64_t out = m->list[i];
        if (grade_within(m->sub[out], m->acc[out], m->tol)) m->hit[out] = true;
        m->acc[out] = 0;
        m->touched[out] = false;
    }
    m->nlist = 0;
}

// SINGLE_TERMS: every wrong value is a hit. *wrong gets how many are wrong, *example the
// first wrong one. Returns -1 without memory, else whether it matches.
static int match_single_terms(const grade_problem *p, grade_tensor t, const double *sub,
                              int64_t n, const grade_tolerance *tol, int64_t *wrong,
                              int64_t *example) {
    const conv_geom *g = &p->layer.g;
    const bool per_position = t == GRADE_DX;
    term_match m = {.base = {match_term, per_position ? match_position : NULL},
                    .sub = sub, .tol = tol, .hit = calloc((size_t)n, sizeof(bool))};
    if (t == GRADE_Y && p->b) {
        m.bias = p->b;
        m.plane = conv_out_h(g) * conv_out_w(g);
        m.filters = g->f;
    }
    if (per_position) {
        m.acc = calloc((size_t)n, sizeof(double));
        m.touched = calloc((size_t)n, sizeof(bool));
        m.list = malloc((size_t)n * sizeof(int64_t));
    }
    int result = -1;
    if (m.hit && (!per_position || (m.acc && m.touched && m.list))) {
        const index_map map = true_map(g, t);
        walk(p, t, &map, &m.base);
        *wrong = 0;
        result = 1;
        for (int64_t i = 0; i < n && result; i++) {
            if (grade_within(sub[i], p->ref[t][i], tol)) continue;
            if (!m.hit[i]) result = 0;
            if ((*wrong)++ == 0) *example = i;
        }
        if (*wrong == 0) result = 0;
    }
    free(m.hit);
    free(m.acc);
    free(m.touched);
    free(m.list);
    return result;
}

static bool already_found(const grade_verdict *v, const char *id) {
    for (int i = 0; i < v->n_diag; i++)
        if (strcmp(v->diag[i].id, id) == 0) return true;
    return false;
}

// Compares the submission with candidate k and adds the diagnosis when it matches.
// Returns false without memory.
static bool try_candidate(grade_verdict *v, const grade_problem *p, const grade_array *sub,
                          const grade_candidate *k) {
    const grade_mutant *mut = &grade_mutants[k->mutant];
    const char *name = grade_tensor_name(v->tensor);
    const int64_t n = grade_shape_numel(&sub->shape);
    const char *sep = k->variant[0] ? "; " : "";
    char shape[96];
    grade_format_shape(shape, sizeof shape, &sub->shape);
    if (k->match == GRADE_MATCH_EMPTY) {
        if (n == 0 && grade_shape_numel(&v->expected_shape) > 0)
            grade_verdict_add_diagnosis(v, mut->id, mut->hint,
                                        "your %s has shape %s and no values", name, shape);
        return true;
    }
    if (k->match == GRADE_MATCH_SINGLE_TERMS) {
        if (!v->values_compared || v->nan_count + v->inf_count > 0) return true;
        int64_t wrong = 0, example = 0;
        const int r = match_single_terms(p, v->tensor, sub->data, n, &v->tol, &wrong, &example);
        if (r < 0) return false;
        if (r == 0) return true;
        char where[96];
        grade_format_index(where, sizeof where, name, example, &v->expected_shape);
        grade_verdict_add_diagnosis(
            v, mut->id, mut->hint,
            "every one of your %lld wrong values is a single term of its sum; e.g. %s = %.17g "
            "is one term, the whole sum is %.17g",
            (long long)wrong, where, sub->data[example], p->ref[v->tensor][example]);
        return true;
    }
    if (!grade_shape_equal_squeezed(&sub->shape, &k->shape)) return true;
    // a mistake that gives the right answer on this problem explains nothing
    int64_t differs = 0;
    if (grade_shape_equal(&k->shape, &v->expected_shape)) {
        all_within(k->data, p->ref[v->tensor], n, &v->tol, &differs);
        if (differs == 0) return true;
    }
    if (!all_within(sub->data, k->data, n, &v->tol, NULL)) return true;
    if (differs > 0)
        grade_verdict_add_diagnosis(v, mut->id, mut->hint,
                                    "all %lld of your values equal what this mistake gives%s%s; "
                                    "the right %s differs from it in %lld of them",
                                    (long long)n, sep, k->variant, name, (long long)differs);
    else
        grade_verdict_add_diagnosis(v, mut->id, mut->hint,
                                    "your %s has shape %s and all %lld values equal what this "
                                    "mistake gives%s%s",
                                    name, shape, (long long)n, sep, k->variant);
    return true;
}

bool grade_diagnose(grade_verdict *v, const grade_problem *p, const grade_array *sub) {
    if (!sub->present || v->passed) return true;
    if (v->values_compared && v->submitted_shape.rank != v->expected_shape.rank &&
        v->mismatches == 0) {
        char got[96], want[96];
        grade_format_shape(got, sizeof got, &v->submitted_shape);
        grade_format_shape(want, sizeof want, &v->expected_shape);
        grade_verdict_add_diagnosis(
            v, "shape_has_extra_axes",
            "Your values are right but the array's shape is not: drop (or add) the axes of "
            "size 1, e.g. with .reshape(...), to return exactly the expected shape.",
            "your %s has shape %s, the right shape is %s", grade_tensor_name(v->tensor), got,
            want);
        return true;
    }
    grade_candidates c = {0};
    bool ok = grade_candidates_build(&c, p, v->tensor);
    // exact mistakes first; the looser `=`-for-`+=` test only when none of them explains it
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; ok && i < c.count; i++) {
            const grade_candidate *k = &c.items[i];
            if ((k->match == GRADE_MATCH_SINGLE_TERMS) != (pass == 1) ||
                (pass == 1 && v->n_diag > 0) || already_found(v, grade_mutants[k->mutant].id))
                continue;
            ok = try_candidate(v, p, sub, k);
        }
    grade_candidates_free(&c);
    return ok;
}
