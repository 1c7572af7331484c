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
    M_PAD_FIXED_1,
    M_DX_CROP_1,
    M_SIZE_KERNEL_AXIS,
    M_SIZE_ROUNDED,
    M_SQUARE_INPUT,
    M_UNFINISHED,
    M_T_FLIP_Y,
    M_T_FLIP_DX,
    M_T_NOT_CROPPED,
    M_T_OUTPUT_PADDING,
    M_T_AS_CONV,
    M_PAD_ZEROS,
    M_PAD_OTHER,
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
                   "(w[:, :, ::-1, ::-1]; in 1-d and 3-d every spatial axis of w reversed); "
                   "yours uses it unrotated (or rotated twice). The "
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
                   "np.sum(dout, axis=(0, 2, 3)), of shape (F,) (conv1d: axis=(0, 2); conv3d: "
                   "axis=(0, 2, 3, 4)). Yours sums over other axes (see the evidence).",
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
    [M_PAD_FIXED_1] = {"padding_fixed_at_1",
                       "You pad by 1 whatever conv_param['pad'] says: pad with `pad` zeros on "
                       "each side (np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))) and crop "
                       "dx with the same pad. Tests with pad = 1 hide this.",
                       T_SPATIAL},
    [M_DX_CROP_1] = {"dx_crop_fixed_at_1",
                     "You crop dx_pad with [1:-1], which is right only for pad = 1: return "
                     "dx_pad[:, :, pad:pad+H, pad:pad+W] (explicit ends also work for pad = 0).",
                     T_DX},
    [M_SIZE_KERNEL_AXIS] = {"output_size_wrong_kernel_axis",
                            "Your output size uses the wrong kernel axis: H_out = 1 + (H + 2*pad "
                            "- HH) // stride comes from the kernel's height HH, W_out = 1 + (W + "
                            "2*pad - WW) // stride from its width WW. Square kernels hide this.",
                            T_SPATIAL},
    [M_SIZE_ROUNDED] = {"output_size_rounded",
                        "Your output size rounds up where it must floor: H_out = 1 + (H + "
                        "2*pad - HH) // stride. round() and ceil() count a last window that "
                        "does not fit; the rows after the last full window get no output.",
                        T_SPATIAL},
    [M_SQUARE_INPUT] = {"square_input_assumed",
                        "Your code assumes a square input (H == W): it takes one side's size "
                        "for both. Read N, C, H, W = x.shape and use H for rows, W for columns "
                        "(and HH, WW likewise for the kernel).",
                        T_SPATIAL},
    [M_UNFINISHED] = {"unfinished",
                      "Your function returns what it started from: the zeros it allocated, or "
                      "an input unchanged. The loops that fill it never run or never write "
                      "(see the evidence): is the function finished?",
                      T_SPATIAL | T_DB},
    // transposed convolutions
    [M_T_FLIP_Y] = {"kernel_not_flipped_in_transposed_forward",
                    "A transposed convolution scatters: input pixel (i, j) adds x[n, c, i, j] * "
                    "w[c, f] to the output window starting at (i*stride - pad, j*stride - pad), "
                    "tap (a, b) onto window pixel (a, b). Written as a convolution of the "
                    "stride-dilated, padded input it needs the kernel rotated by 180 degrees "
                    "(w[:, :, ::-1, ::-1], channels swapped): yours is unrotated.",
                    T_Y},
    [M_T_FLIP_DX] = {"kernel_flipped_in_transposed_dx",
                     "dx of a transposed convolution is the plain convolution (cross-"
                     "correlation) of dout with w, at the layer's stride: dx[n, c, i, j] = "
                     "sum(dout window at (i*stride - pad, j*stride - pad) * w[c]). Do not rotate "
                     "w here.",
                     T_DX},
    [M_T_NOT_CROPPED] = {"transposed_padding_not_cropped",
                         "A transposed convolution's padding crops its output: compute the full "
                         "output, of size (H - 1)*stride + dilation*(HH - 1) + 1, then return "
                         "full[:, :, pad:pad+H_out, pad:pad+W_out]. Yours returns it whole.",
                         T_Y},
    [M_T_OUTPUT_PADDING] = {"output_padding_forgotten",
                            "Your output is short by output_padding along an axis: H_out = (H - "
                            "1)*stride - 2*pad + dilation*(HH - 1) + output_padding + 1. The "
                            "extra rows (and columns) at the high side are part of the output "
                            "(filled with the bias where no input reaches them).",
                            T_Y},
    [M_T_AS_CONV] = {"transposed_computed_as_conv",
                     "Your output has the shape an ordinary convolution gives: the stride "
                     "shrinks it instead of growing it. A transposed convolution applies the "
                     "stride to the output: each input pixel scatters w into the output "
                     "starting at i*stride, so H_out = (H - 1)*stride - 2*pad + dilation*(HH - "
                     "1) + output_padding + 1.",
                     T_Y},
    // padding modes
    [M_PAD_ZEROS] = {"padding_mode_treated_as_zeros",
                     "Your answer is the zero-padded layer's: this layer's padding_mode fills "
                     "the padding with copies of x (reflect: mirrored without repeating the "
                     "edge, np.pad(x, ..., mode='reflect'); replicate: the edge repeated, "
                     "mode='edge'; circular: wrapped around, mode='wrap'). In the backward pass "
                     "the gradient of each padded cell must be added back onto the input cell "
                     "it copies.",
                     T_SPATIAL},
    [M_PAD_OTHER] = {"padding_mode_confused",
                     "Your padding copies the wrong cells of x: reflect mirrors without "
                     "repeating the edge (np.pad mode='reflect'), replicate repeats the edge "
                     "(mode='edge'), circular wraps around (mode='wrap'). The evidence names "
                     "the mode your answer follows.",
                     T_SPATIAL},
};
const size_t grade_n_mutants = M_COUNT;

// The index map every pass walks, with the parameters a mistake may get wrong, per spatial
// axis (d, h, w; depth is one plane for 1-d and 2-d layers, and conv1d's h is one row).
typedef struct {
    int64_t stride[3], dilation[3], lo[3], hi[3]; // padding used before and after each axis
    int64_t out[3];     // output positions visited: y's own size (conv's y), or dy's
    conv_pad_mode mode; // what the padding holds
    bool flip;          // kernel taps read (dw written) rotated by 180 degrees
    bool swap_channels; // w read (dw written) as laid out (C/G, F, k...)
    bool no_crop;       // dx written into the padded input
    bool per_sample;    // dw written per sample: (N, F, C/G, k...)
} index_map;

// What a mistake does to the index map (or, for the last three, to the answer); a recipe is
// one or two of them.
enum {
    R_FLIP = 1u << 0,          // kernel taps rotated by 180 degrees
    R_SWAP_CHANNELS = 1u << 1, // w read as (C/G, F, k...)
    R_STRIDE_1 = 1u << 2,      // windows one pixel apart
    R_STRIDE_H_BOTH = 1u << 3, // stride_h for both axes (2-d)
    R_STRIDE_W_BOTH = 1u << 4, // stride_w for both axes (2-d)
    R_DILATION_1 = 1u << 5,    // adjacent taps
    R_PAD_0 = 1u << 6,         // windows over the unpadded input
    R_PAD_1 = 1u << 7,         // padding 1 on every side, whatever the layer's
    R_NO_CROP = 1u << 8,       // dx returned with its padding
    R_PAD_ZEROS = 1u << 9,     // zeros in the padding whatever the padding_mode
    R_NEGATE = 1u << 10,       // the answer's sign flipped
    R_NO_BIAS = 1u << 11,      // y without the bias
    R_DIVIDE_N = 1u << 12,     // divided by the batch size
};
// Recipes that cannot go together: one stride, one padding each.
static const unsigned recipe_groups[] = {R_STRIDE_1 | R_STRIDE_H_BOTH | R_STRIDE_W_BOTH,
                                         R_PAD_0 | R_PAD_1 | R_NO_CROP | R_PAD_ZEROS};

// The layer's sizes per spatial axis (d, h, w): input, kernel, stride, dilation, padding.
typedef struct {
    int64_t in[3], k[3], stride[3], dilation[3], lo[3], hi[3];
} axes3;

static axes3 layer_axes(const grade_layer *L) {
    const conv_geom *g = &L->g;
    const grade_depth d = grade_layer_depth(L);
    return (axes3){{d.d, g->h, g->w},
                   {d.kd, g->kh, g->kw},
                   {d.stride, g->stride_h, g->stride_w},
                   {d.dilation, g->dilation_h, g->dilation_w},
                   {d.pad_front, g->pad_top, g->pad_left},
                   {d.pad_back, g->pad_bottom, g->pad_right}};
}

// The first axis a layer of `spatial` axes has: 0 (d) for 3-d, 1 (h) for 2-d, 2 for 1-d.
static int first_axis(const grade_layer *L) { return 3 - L->spatial; }

// The map of tensor t under `recipe` (0: the right one). For conv's y the output size follows
// the map (a student computes it with the same mistake); the gradients loop over dout, whose
// size is the layer's. Recipes touch only the family's own axes.
static index_map recipe_map(const grade_layer *L, grade_tensor t, unsigned recipe) {
    const axes3 A = layer_axes(L);
    index_map m = {.mode = recipe & R_PAD_ZEROS ? CONV_PAD_ZEROS : L->pad_mode,
                   .flip = recipe & R_FLIP, .swap_channels = recipe & R_SWAP_CHANNELS,
                   .no_crop = recipe & R_NO_CROP};
    for (int a = 0; a < 3; a++) {
        const bool own = a >= first_axis(L);
        m.stride[a] = own && (recipe & R_STRIDE_1) ? 1 : A.stride[a];
        if (recipe & R_STRIDE_H_BOTH) m.stride[a] = a ? A.stride[1] : m.stride[a];
        if (recipe & R_STRIDE_W_BOTH) m.stride[a] = a ? A.stride[2] : m.stride[a];
        m.dilation[a] = own && (recipe & R_DILATION_1) ? 1 : A.dilation[a];
        m.lo[a] = A.lo[a], m.hi[a] = A.hi[a];
        if (own && (recipe & (R_PAD_0 | R_PAD_1))) m.lo[a] = m.hi[a] = recipe & R_PAD_1 ? 1 : 0;
        m.out[a] = conv_out_size(A.in[a], A.k[a], A.stride[a], A.dilation[a], A.lo[a], A.hi[a]);
        if (grade_conv_role(L, t) == GRADE_Y)
            m.out[a] = conv_out_size(A.in[a], A.k[a], m.stride[a], m.dilation[a], m.lo[a],
                                     m.hi[a]);
    }
    return m;
}

static index_map true_map(const grade_layer *L, grade_tensor t) { return recipe_map(L, t, 0); }

// Receives every term of a walk: `out` indexes the target, `value` is the term.
typedef struct term_visitor term_visitor;
struct term_visitor {
    void (*term)(term_visitor *self, int64_t out, double value);
    void (*end_position)(term_visitor *self); // after each output position (n, od, r, c); or NULL
};

// Where padded coordinate i (the input's own index, negative before it) of an axis of size n
// with lo and hi cells of padding reads the input under `mode`; -1 for none (zeros, or past
// the padding). Reflect and circular repeat for pads beyond what PyTorch takes (a mistake's
// map may ask for them).
static int64_t pad_source(int64_t i, int64_t n, int64_t lo, int64_t hi, conv_pad_mode mode) {
    if (i >= 0 && i < n) return i;
    if (i < -lo || i >= n + hi || mode == CONV_PAD_ZEROS) return -1;
    if (mode == CONV_PAD_REPLICATE) return i < 0 ? 0 : n - 1;
    if (mode == CONV_PAD_CIRCULAR) return ((i % n) + n) % n;
    if (n == 1) return 0;
    const int64_t period = 2 * (n - 1), r = ((i % period) + period) % period;
    return r < n ? r : period - r;
}

// The problem's data as conv sees it: its input (a transposed op's dy) and the tensor shaped
// like its output (conv's dy, a transposed op's x).
static const double *conv_input(const grade_problem *p) {
    return p->layer.transposed ? p->dy : p->x;
}
static const double *conv_output(const grade_problem *p) {
    return p->layer.transposed ? p->x : p->dy;
}

// Visits every term of target tensor t (y, dx or dw) under map m, in conv's terms (a
// transposed op's y is conv's dx, its dx conv's y): y += x*w, dx += dy*w, dw += dy*x (taps on
// zero padding give y and dw terms of 0). Order: sample, output plane, row, column, filter,
// channel, kernel plane, row, column.
static void walk(const grade_problem *p, grade_tensor t, const index_map *m, term_visitor *v) {
    const grade_layer *L = &p->layer;
    const conv_geom *g = &L->g;
    const axes3 A = layer_axes(L);
    const grade_tensor role = grade_conv_role(L, t);
    const double *xa = conv_input(p), *ya = conv_output(p);
    const int64_t cpg = g->c / g->groups, fpg = g->f / g->groups;
    int64_t padded[3], yd[3], taps = 1;
    for (int a = 0; a < 3; a++) {
        padded[a] = A.in[a] + A.lo[a] + A.hi[a];
        // conv's y is laid out as the map makes it; dy as the layer does (a map may visit fewer)
        yd[a] = role == GRADE_Y ? m->out[a]
                                : conv_out_size(A.in[a], A.k[a], A.stride[a], A.dilation[a],
                                                A.lo[a], A.hi[a]);
        taps *= A.k[a];
    }
    const int64_t numel_w = g->f * cpg * taps;
    int64_t o[3], k[3], i[3], src[3];
    for (int64_t n = 0; n < g->n; n++)
        for (o[0] = 0; o[0] < m->out[0]; o[0]++)
            for (o[1] = 0; o[1] < m->out[1]; o[1]++)
                for (o[2] = 0; o[2] < m->out[2]; o[2]++) {
                    for (int64_t f = 0; f < g->f; f++) {
                        const int64_t yi =
                            (((n * g->f + f) * yd[0] + o[0]) * yd[1] + o[1]) * yd[2] + o[2];
                        for (int64_t ch = 0; ch < cpg; ch++) {
                            const int64_t in_ch = (f / fpg) * cpg + ch;
                            const int64_t wch = m->swap_channels ? ch * g->f + f : f * cpg + ch;
                            for (k[0] = 0; k[0] < A.k[0]; k[0]++)
                                for (k[1] = 0; k[1] < A.k[1]; k[1]++)
                                    for (k[2] = 0; k[2] < A.k[2]; k[2]++) {
                                        bool inside = true;
                                        int64_t wi = wch;
                                        for (int a = 0; a < 3; a++) {
                                            i[a] = o[a] * m->stride[a] + k[a] * m->dilation[a] -
                                                   m->lo[a];
                                            src[a] = pad_source(i[a], A.in[a], m->lo[a],
                                                                m->hi[a], m->mode);
                                            inside = inside && src[a] >= 0;
                                            wi = wi * A.k[a] +
                                                 (m->flip ? A.k[a] - 1 - k[a] : k[a]);
                                        }
                                        const int64_t xi =
                                            (((n * g->c + in_ch) * A.in[0] + src[0]) * A.in[1] +
                                             src[1]) * A.in[2] + src[2];
                                        const int64_t dwi = wi + (m->per_sample ? n * numel_w : 0);
                                        if (role == GRADE_DX && m->no_crop) {
                                            int64_t pi = n * g->c + in_ch;
                                            bool fits = true;
                                            for (int a = 0; a < 3; a++) {
                                                const int64_t q = i[a] + A.lo[a];
                                                fits = fits && q >= 0 && q < padded[a];
                                                pi = pi * padded[a] + q;
                                            }
                                            if (fits) v->term(v, pi, ya[yi] * p->w[wi]);
                                        } else if (!inside) {
                                            // a tap on the zero padding: a term of 0, which `=`
                                            // leaves in y or dw when it comes last
                                            if (role == GRADE_Y) v->term(v, yi, 0.0);
                                            else if (role == GRADE_DW) v->term(v, dwi, 0.0);
                                        } else if (role == GRADE_Y) {
                                            v->term(v, yi, xa[xi] * p->w[wi]);
                                        } else if (role == GRADE_DX) {
                                            v->term(v, xi, ya[yi] * p->w[wi]);
                                        } else {
                                            v->term(v, dwi, ya[yi] * xa[xi]);
                                        }
                                    }
                        }
                    }
                    if (v->end_position) v->end_position(v);
                }
}

// The upstream gradient dy, shaped like y: (N, channels, positions) with every spatial axis
// in `positions`.
static void dy_layout(const grade_problem *p, int64_t *n, int64_t *channels, int64_t *positions) {
    grade_shape y;
    grade_expected_shape(&y, &p->layer, GRADE_Y);
    *n = p->layer.g.n;
    *channels = p->layer.transposed ? p->layer.g.c : p->layer.g.f;
    *positions = grade_shape_numel(&y) / (*n * *channels);
}

// Visits every term of db: db[f] += dy[n, f, position], in the order sample, position, channel.
static void walk_db(const grade_problem *p, term_visitor *v) {
    int64_t n, channels, positions;
    dy_layout(p, &n, &channels, &positions);
    for (int64_t i = 0; i < n; i++)
        for (int64_t q = 0; q < positions; q++) {
            for (int64_t f = 0; f < channels; f++)
                v->term(v, f, p->dy[(i * channels + f) * positions + q]);
            if (v->end_position) v->end_position(v);
        }
}

// Every term of tensor t: walk() for y, dx and dw, walk_db() for db.
static void walk_terms(const grade_problem *p, grade_tensor t, const index_map *m,
                       term_visitor *v) {
    if (t == GRADE_DB) walk_db(p, v);
    else walk(p, t, m, v);
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

// Drops the spatial axes L's family lacks from a shape whose last three axes are (d, h, w):
// depth for 1-d and 2-d layers, rows too for 1-d ones.
static void family_axes(grade_shape *s, const grade_layer *L) {
    const int drop = first_axis(L), at = s->rank - 3;
    memmove(s->dim + at, s->dim + at + drop, (size_t)(3 - drop) * sizeof s->dim[0]);
    s->rank -= drop;
}

// The shape target t gets under map m, in the family's full rank (before the problem's rank
// applies).
static void map_shape(grade_shape *s, const grade_layer *L, grade_tensor t, const index_map *m) {
    const conv_geom *g = &L->g;
    const axes3 A = layer_axes(L);
    const int64_t cpg = g->c / g->groups;
    if (t == GRADE_DB) {
        *s = (grade_shape){1, {L->transposed ? g->c : g->f}};
        return;
    }
    s->rank = 5;
    switch (grade_conv_role(L, t)) {
    case GRADE_Y:
        s->dim[0] = g->n, s->dim[1] = g->f;
        memcpy(s->dim + 2, m->out, sizeof m->out);
        break;
    case GRADE_DX:
        s->dim[0] = g->n, s->dim[1] = g->c;
        for (int a = 0; a < 3; a++) s->dim[2 + a] = A.in[a] + (m->no_crop ? A.lo[a] + A.hi[a] : 0);
        break;
    default:
        s->dim[0] = m->swap_channels ? cpg : g->f, s->dim[1] = m->swap_channels ? g->f : cpg;
        memcpy(s->dim + 2, A.k, sizeof A.k);
        if (m->per_sample) {
            memmove(s->dim + 1, s->dim, 5 * sizeof s->dim[0]);
            s->dim[0] = g->n;
            s->rank = 6;
        }
        break;
    }
    family_axes(s, L);
}

// Drops the leading axes of size 1 that the problem's rank leaves out, so that a candidate
// is stated the way the student's answer is.
static void to_problem_rank(grade_shape *s, const grade_problem *p, grade_tensor t) {
    grade_shape expected;
    grade_expected_shape(&expected, &p->layer, t);
    const int full = t == GRADE_DB ? 1 : 2 + p->layer.spatial;
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
    k->also = GRADE_NO_MUTANT;
    k->match = match;
    k->shape = *shape;
    snprintf(k->variant, sizeof k->variant, "%s", variant);
    const int64_t n = grade_shape_numel(shape);
    if (match != GRADE_MATCH_EMPTY && match != GRADE_MATCH_SHAPE &&
        !(k->data = calloc((size_t)(n > 0 ? n : 1), sizeof(double))))
        return NULL;
    to_problem_rank(&k->shape, p, t);
    c->count++;
    return k;
}

// Adds the bias to y of shape s (the family's full rank: (N, channels, spatial...)).
static void add_bias(double *y, const grade_problem *p, const grade_shape *s) {
    if (!p->b) return;
    const int64_t numel = grade_shape_numel(s), plane = numel / (s->dim[0] * s->dim[1]);
    for (int64_t i = 0; i < numel; i++) y[i] += p->b[(i / plane) % s->dim[1]];
}

// The candidate tensor t gets from walking map m (summing, or keeping the last term).
static bool add_walk(grade_candidates *c, const grade_problem *p, grade_tensor t, size_t mutant,
                     const index_map *m, grade_match match, const char *variant) {
    for (int a = 0; a < 3; a++)
        if (m->out[a] < 1) return true; // the mistake leaves no output at all
    grade_shape s;
    map_shape(&s, &p->layer, t, m);
    grade_candidate *k = add_candidate(c, p, t, mutant, match, &s, variant);
    if (!k) return false;
    sum_visitor v = {{sum_term, NULL}, k->data, match == GRADE_MATCH_SINGLE_TERMS};
    walk_terms(p, t, m, &v.base);
    if (t == GRADE_Y) add_bias(k->data, p, &s);
    return true;
}

static void expected_internal_shape(grade_shape *s, const grade_problem *p, grade_tensor t) {
    const index_map m = true_map(&p->layer, t);
    map_shape(s, &p->layer, t, &m);
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
    const int64_t rows = s.dim[s.rank - 2], cols = s.dim[s.rank - 1];
    const int64_t planes = grade_shape_numel(&s) / (rows * cols);
    s.dim[s.rank - 2] = cols, s.dim[s.rank - 1] = rows;
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

// One mistake of the index map or the answer, for tensor t: its mutant and recipe, and
// whether it is tried only in pairs (its own single candidate is made elsewhere).
typedef struct {
    size_t mutant;
    unsigned recipe;
    bool pair_only;
} mistake_part;

// The kernel flip's mistake for tensor t: a convolution's forward and dx, or a transposed
// convolution's (which scatters where conv gathers: its forward is conv's dx).
static size_t flip_mutant(const grade_layer *L, grade_tensor t) {
    if (t == GRADE_DW) return M_FLIP_DW;
    if (L->transposed) return t == GRADE_Y ? M_T_FLIP_Y : M_T_FLIP_DX;
    return t == GRADE_Y ? M_FLIP_Y : M_FLIP_DX;
}

// The parts that apply to tensor t of problem p (at most 12), into out; returns how many.
// A transposed op's y keeps its size whatever the student's loops do, so the mistakes that
// would change it (stride, dilation, padding) are left to its dx and dw.
static size_t mistake_parts(mistake_part *out, const grade_problem *p, grade_tensor t) {
    const grade_layer *L = &p->layer;
    const axes3 A = layer_axes(L);
    bool padded = false, pad_not_1 = false, strided = false, dilated = false;
    for (int a = first_axis(L); a < 3; a++) {
        padded = padded || A.lo[a] + A.hi[a] > 0;
        pad_not_1 = pad_not_1 || A.lo[a] != 1 || A.hi[a] != 1;
        strided = strided || A.stride[a] > 1;
        dilated = dilated || A.dilation[a] > 1;
    }
    const bool sized = !(L->transposed && t == GRADE_Y);
    const bool conv_dx = grade_conv_role(L, t) == GRADE_DX;
    size_t n = 0;
    out[n++] = (mistake_part){flip_mutant(L, t), R_FLIP, false};
    out[n++] = (mistake_part){M_CHANNELS_SWAPPED, R_SWAP_CHANNELS, false};
    if (sized && strided) out[n++] = (mistake_part){M_STRIDE_IGNORED, R_STRIDE_1, false};
    if (sized && L->spatial == 2 && A.stride[1] != A.stride[2]) {
        out[n++] = (mistake_part){M_STRIDE_H_BOTH, R_STRIDE_H_BOTH, false};
        out[n++] = (mistake_part){M_STRIDE_W_BOTH, R_STRIDE_W_BOTH, false};
    }
    if (sized && dilated) out[n++] = (mistake_part){M_DILATION_IGNORED, R_DILATION_1, false};
    if (sized && padded) out[n++] = (mistake_part){M_PADDING_IGNORED, R_PAD_0, false};
    if (sized && pad_not_1) out[n++] = (mistake_part){M_PAD_FIXED_1, R_PAD_1, false};
    if (conv_dx && padded)
        out[n++] = (mistake_part){L->transposed ? M_T_NOT_CROPPED : M_DX_NOT_CROPPED, R_NO_CROP,
                                  false};
    if (L->pad_mode != CONV_PAD_ZEROS) out[n++] = (mistake_part){M_PAD_ZEROS, R_PAD_ZEROS, false};
    out[n++] = (mistake_part){M_SIGN, R_NEGATE, true};
    if (t == GRADE_Y && p->b) out[n++] = (mistake_part){M_BIAS_MISSING, R_NO_BIAS, true};
    if (t == GRADE_DW && L->g.n > 1) out[n++] = (mistake_part){M_DIVIDED_BY_N, R_DIVIDE_N, true};
    return n;
}

// The candidate of `recipe` (mistake `mutant`, with mistake `also` in a pair).
static bool add_recipe(grade_candidates *c, const grade_problem *p, grade_tensor t,
                       size_t mutant, size_t also, unsigned recipe) {
    const index_map m = recipe_map(&p->layer, t, recipe);
    for (int a = 0; a < 3; a++)
        if (m.out[a] < 1) return true; // the mistake leaves no output at all
    grade_shape s;
    map_shape(&s, &p->layer, t, &m);
    char variant[96] = "";
    if (also != GRADE_NO_MUTANT)
        snprintf(variant, sizeof variant, "together with %s", grade_mutants[also].id);
    grade_candidate *k = add_candidate(c, p, t, mutant, GRADE_MATCH_VALUES, &s, variant);
    if (!k) return false;
    k->also = also;
    sum_visitor v = {{sum_term, NULL}, k->data, false};
    walk(p, t, &m, &v.base);
    if (t == GRADE_Y && !(recipe & R_NO_BIAS)) add_bias(k->data, p, &s);
    const double scale = (recipe & R_NEGATE ? -1.0 : 1.0) /
                         (recipe & R_DIVIDE_N ? (double)p->layer.g.n : 1.0);
    if (scale != 1.0)
        for (int64_t i = 0; i < grade_shape_numel(&s); i++) k->data[i] *= scale;
    return true;
}

// Pairs are tried on layers up to this cost per pass: a grading layer is far smaller.
#define PAIRS_MAX_FLOPS 2000000

// Index-map mistakes of y, dx and dw: each alone, each pair of them (and of a sign, a missing
// bias or a division by N), another padding mode than the layer's, and `=` for `+=`.
static bool add_map_mistakes(grade_candidates *c, const grade_problem *p, grade_tensor t) {
    mistake_part parts[16];
    const size_t n = mistake_parts(parts, p, t);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++)
        if (!parts[i].pair_only)
            ok = add_recipe(c, p, t, parts[i].mutant, GRADE_NO_MUTANT, parts[i].recipe);
    for (size_t i = 0; ok && grade_layer_flops(&p->layer) <= PAIRS_MAX_FLOPS && i < n; i++)
        for (size_t j = i + 1; ok && j < n; j++) {
            const unsigned both = parts[i].recipe | parts[j].recipe;
            bool clash = false;
            for (size_t q = 0; q < sizeof recipe_groups / sizeof *recipe_groups; q++)
                clash = clash || __builtin_popcount(both & recipe_groups[q]) > 1;
            if (!clash) ok = add_recipe(c, p, t, parts[i].mutant, parts[j].mutant, both);
        }
    for (int mode = CONV_PAD_REFLECT; ok && p->layer.pad_mode != CONV_PAD_ZEROS &&
                                      mode <= CONV_PAD_CIRCULAR;
         mode++) {
        if (mode == (int)p->layer.pad_mode) continue;
        index_map m = true_map(&p->layer, t);
        m.mode = (conv_pad_mode)mode;
        char variant[96];
        snprintf(variant, sizeof variant, "%s padding in place of %s",
                 conv_pad_mode_name(m.mode), conv_pad_mode_name(p->layer.pad_mode));
        ok = add_walk(c, p, t, M_PAD_OTHER, &m, GRADE_MATCH_VALUES, variant);
    }
    const index_map m = true_map(&p->layer, t);
    return ok && add_walk(c, p, t, M_OVERWRITTEN, &m, GRADE_MATCH_SINGLE_TERMS, "");
}

// dx as a student crops it from dx_pad (the padded frame, (N, C, H + pt + pb, W + pl + pr)):
// rows [r0, r0 + rows), columns [c0, c0 + cols), zeros where that runs past the frame.
static bool add_dx_cropped(grade_candidates *c, const grade_problem *p, size_t mutant,
                           int64_t r0, int64_t rows, int64_t c0, int64_t cols, const char *variant) {
    const conv_geom *g = &p->layer.g;
    if (rows < 1 || cols < 1) return true;
    index_map m = true_map(&p->layer, GRADE_DX);
    m.no_crop = true;
    grade_shape frame;
    map_shape(&frame, &p->layer, GRADE_DX, &m);
    double *padded = calloc((size_t)grade_shape_numel(&frame), sizeof(double));
    if (!padded) return false;
    sum_visitor v = {{sum_term, NULL}, padded, false};
    walk(p, GRADE_DX, &m, &v.base);
    const grade_shape s = {4, {g->n, g->c, rows, cols}};
    grade_candidate *k = add_candidate(c, p, GRADE_DX, mutant, GRADE_MATCH_VALUES, &s, variant);
    const int64_t hp = frame.dim[2], wp = frame.dim[3];
    for (int64_t q = 0; k && q < g->n * g->c; q++)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) {
                const int64_t r = r0 + i, col = c0 + j;
                if (r < hp && col < wp)
                    k->data[(q * rows + i) * cols + j] = padded[(q * hp + r) * wp + col];
            }
    free(padded);
    return k != NULL;
}

static bool add_dx_crop_mistakes(grade_candidates *c, const grade_problem *p) {
    const conv_geom *g = &p->layer.g;
    const int64_t hp = g->h + g->pad_top + g->pad_bottom, wp = g->w + g->pad_left + g->pad_right;
    const bool pad_h = hp > g->h, pad_w = wp > g->w;
    bool ok = true;
    if (g->pad_top != 1 || g->pad_bottom != 1 || g->pad_left != 1 || g->pad_right != 1)
        ok = add_dx_cropped(c, p, M_DX_CROP_1, 1, hp - 2, 1, wp - 2, "dx_pad[:, :, 1:-1, 1:-1]");
    // a square dx_pad of the larger side: the windows fit, the crop keeps that side twice
    if (ok && g->h > g->w)
        ok = add_dx_cropped(c, p, M_SQUARE_INPUT, g->pad_top, g->h, g->pad_left, g->h,
                            "W taken to be H: dx of shape (N, C, H, H)");
    if (ok && g->w > g->h)
        ok = add_dx_cropped(c, p, M_SQUARE_INPUT, g->pad_top, g->w, g->pad_left, g->w,
                            "H taken to be W: dx of shape (N, C, W, W)");
    if (!ok || (pad_h && pad_w)) return ok;
    const grade_shape empty = {4, {g->n, g->c, pad_h ? g->h : 0, pad_w ? g->w : 0}};
    return add_candidate(c, p, GRADE_DX, M_DX_EMPTY, GRADE_MATCH_EMPTY, &empty, "") != NULL;
}

// a / s for a >= 0, s > 0 rounded as Python's round() does (half to even), and rounded up:
// what a student who writes round() or ceil() in place of // gets.
static int64_t div_round_even(int64_t a, int64_t s) {
    const int64_t q = a / s, r2 = 2 * (a % s);
    return r2 > s || (r2 == s && q % 2 == 1) ? q + 1 : q;
}

static int64_t div_ceil(int64_t a, int64_t s) { return (a + s - 1) / s; }

// Tensor t when the output positions are computed wrongly as ho x wo: y over those positions
// (values where they fit, the shape alone where they do not: NumPy then cuts a window short
// and raises, or the student's own bounds make up the values); dx and dw over the positions
// that fit (more would raise).
static bool add_positions(grade_candidates *c, const grade_problem *p, grade_tensor t,
                          size_t mutant, int64_t ho, int64_t wo, const char *variant) {
    const conv_geom *g = &p->layer.g;
    index_map m = true_map(&p->layer, t);
    if (ho < 1 || wo < 1 || (ho == m.out[1] && wo == m.out[2])) return true;
    if (ho <= m.out[1] && wo <= m.out[2]) {
        m.out[1] = ho, m.out[2] = wo;
        return add_walk(c, p, t, mutant, &m, GRADE_MATCH_VALUES, variant);
    }
    const grade_shape s = {4, {g->n, g->f, ho, wo}},
                      right = {4, {g->n, g->f, m.out[1], m.out[2]}};
    // a shape that differs only in axes of size 1 is not told apart by its shape
    if (t != GRADE_Y || grade_shape_equal_squeezed(&s, &right)) return true;
    return add_candidate(c, p, t, mutant, GRADE_MATCH_SHAPE, &s, variant) != NULL;
}

// Output sizes computed wrongly: with the other kernel axis, rounded up, from a square input.
static bool add_size_mistakes(grade_candidates *c, const grade_problem *p, grade_tensor t) {
    const conv_geom *g = &p->layer.g;
    const int64_t ho = conv_out_h(g), wo = conv_out_w(g);
    // what // divides: the padded size less the kernel's extent (negative: no output at all)
    const int64_t span_h = g->h + g->pad_top + g->pad_bottom - g->dilation_h * (g->kh - 1) - 1;
    const int64_t span_w = g->w + g->pad_left + g->pad_right - g->dilation_w * (g->kw - 1) - 1;
    const int64_t ho_kw = conv_out_size(g->h, g->kw, g->stride_h, g->dilation_h, g->pad_top,
                                        g->pad_bottom);
    const int64_t wo_kh = conv_out_size(g->w, g->kh, g->stride_w, g->dilation_w, g->pad_left,
                                        g->pad_right);
    const int64_t ho_from_w = conv_out_size(g->w, g->kh, g->stride_h, g->dilation_h,
                                            g->pad_left, g->pad_right);
    const int64_t wo_from_h = conv_out_size(g->h, g->kw, g->stride_w, g->dilation_w,
                                            g->pad_top, g->pad_bottom);
    bool ok = add_positions(c, p, t, M_SIZE_KERNEL_AXIS, ho, wo_kh, "W_out computed with HH") &&
              add_positions(c, p, t, M_SIZE_KERNEL_AXIS, ho_kw, wo, "H_out computed with WW") &&
              add_positions(c, p, t, M_SIZE_KERNEL_AXIS, ho_kw, wo_kh,
                            "H_out computed with WW and W_out with HH");
    if (ok && span_h >= 0 && span_w >= 0) {
        ok = add_positions(c, p, t, M_SIZE_ROUNDED, 1 + div_round_even(span_h, g->stride_h),
                           1 + div_round_even(span_w, g->stride_w),
                           "H_out = 1 + round((H + 2*pad - HH) / stride)") &&
             add_positions(c, p, t, M_SIZE_ROUNDED, 1 + div_ceil(span_h, g->stride_h),
                           1 + div_ceil(span_w, g->stride_w),
                           "H_out = 1 + ceil((H + 2*pad - HH) / stride)");
    }
    return ok && add_positions(c, p, t, M_SQUARE_INPUT, ho, wo_from_h, "W taken to be H") &&
           add_positions(c, p, t, M_SQUARE_INPUT, ho_from_w, wo, "H taken to be W");
}

// Unfinished code: the zeros it started from, or an input handed back unchanged.
static bool add_unfinished(grade_candidates *c, const grade_problem *p, grade_tensor t) {
    grade_shape s;
    expected_internal_shape(&s, p, t);
    if (!add_candidate(c, p, t, M_UNFINISHED, GRADE_MATCH_VALUES, &s,
                       "every value is 0, as allocated"))
        return false;
    const double *input = t == GRADE_DX ? p->x : t == GRADE_DW ? p->w : t == GRADE_DB ? p->b : NULL;
    if (!input) return true;
    char variant[96];
    snprintf(variant, sizeof variant, "%s is %s, unchanged", grade_tensor_name(t),
             t == GRADE_DX ? "x" : t == GRADE_DW ? "w" : "b");
    grade_candidate *k = add_candidate(c, p, t, M_UNFINISHED, GRADE_MATCH_VALUES, &s, variant);
    if (k) memcpy(k->data, input, (size_t)grade_shape_numel(&s) * sizeof(double));
    return k != NULL;
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
    if (p->layer.g.n < 2) return true;
    index_map m = true_map(&p->layer, GRADE_DW);
    m.per_sample = true;
    grade_shape w;
    grade_expected_shape(&w, &p->layer, GRADE_DW);
    return add_walk(c, p, GRADE_DW, M_BATCH_UNSUMMED, &m, GRADE_MATCH_VALUES,
                    "one dw per image: the batch axis is kept, not summed") &&
           add_single_images(c, p, GRADE_DW, c->count - 1, grade_shape_numel(&w));
}

// dy summed over the axes in `mask` (bit i = axis i of y's full rank: (N, F, spatial...)),
// the others kept.
static bool add_dy_sum(grade_candidates *c, const grade_problem *p, size_t mutant,
                       unsigned mask, const char *variant) {
    grade_layer full = p->layer;
    full.rank = 2 + full.spatial;
    grade_shape y, s = {0, {0}};
    grade_expected_shape(&y, &full, GRADE_Y);
    for (int i = 0; i < y.rank; i++)
        if (!(mask & (1u << i))) s.dim[s.rank++] = y.dim[i];
    grade_candidate *k = add_candidate(c, p, GRADE_DB, mutant, GRADE_MATCH_VALUES, &s, variant);
    if (!k) return false;
    int64_t idx[GRADE_MAX_RANK];
    for (int64_t flat = 0; flat < grade_shape_numel(&y); flat++) {
        grade_unflatten(idx, flat, &y);
        int64_t out = 0;
        for (int i = 0; i < y.rank; i++)
            if (!(mask & (1u << i))) out = out * y.dim[i] + idx[i];
        k->data[out] += p->dy[flat];
    }
    return true;
}

static bool add_db_mistakes(grade_candidates *c, const grade_problem *p) {
    const int rank = 2 + p->layer.spatial;
    // bits of y's axes: the batch, the channels, the spatial ones
    const unsigned batch = 1u, spatial = ((1u << rank) - 1) & ~3u, right = batch | spatial;
    static const char *const spatial_names[3][3] = {
        {"2 (length)"}, {"2 (rows)", "3 (columns)"}, {"2 (depth)", "3 (rows)", "4 (columns)"}};
    const char *axis_names[5] = {"0 (batch)", "1 (channels)"};
    for (int i = 0; i < p->layer.spatial; i++)
        axis_names[2 + i] = spatial_names[p->layer.spatial - 1][i];
    for (unsigned mask = 0; mask < (1u << rank); mask++) {
        if (mask == right || mask == spatial) continue; // right; the batch kept
        char variant[96] = "dout itself, not summed at all";
        if (mask) {
            size_t used = (size_t)snprintf(variant, sizeof variant, "dout summed over axes");
            const char *sep = " ";
            for (int i = 0; i < rank; i++)
                if (mask & (1u << i)) {
                    used += (size_t)snprintf(variant + used, sizeof variant - used, "%s%s", sep,
                                             axis_names[i]);
                    sep = ", ";
                }
        }
        if (!add_dy_sum(c, p, M_DB_AXES, mask, variant)) return false;
    }
    const grade_layer *L = &p->layer;
    if (L->g.n > 1 && !(add_dy_sum(c, p, M_BATCH_UNSUMMED, spatial,
                                   "one db per image: the batch axis is kept, not summed") &&
                        add_single_images(c, p, GRADE_DB, c->count - 1,
                                          L->transposed ? L->g.c : L->g.f)))
        return false;
    const index_map m = true_map(L, GRADE_DB);
    return add_walk(c, p, GRADE_DB, M_OVERWRITTEN, &m, GRADE_MATCH_SINGLE_TERMS, "");
}

// A transposed op's y cut short by its output_padding (what forgetting it gives: the rows it
// adds come last), and the shape an ordinary convolution of x would have.
static bool add_transposed_mistakes(grade_candidates *c, const grade_problem *p) {
    const grade_layer *L = &p->layer;
    grade_shape s, cut;
    expected_internal_shape(&s, p, GRADE_Y);
    cut = s;
    bool padded = false;
    for (int a = 0; a < L->spatial; a++) {
        const int64_t op = L->output_padding[3 - L->spatial + a];
        cut.dim[2 + a] -= op;
        padded = padded || op > 0;
    }
    if (padded) {
        grade_candidate *k =
            add_candidate(c, p, GRADE_Y, M_T_OUTPUT_PADDING, GRADE_MATCH_VALUES, &cut,
                          "the right values, without the output_padding rows");
        if (!k) return false;
        int64_t idx[GRADE_MAX_RANK];
        for (int64_t flat = 0; flat < grade_shape_numel(&s); flat++) {
            grade_unflatten(idx, flat, &s);
            int64_t out = 0;
            bool kept = true;
            for (int i = 0; i < s.rank; i++) {
                kept = kept && idx[i] < cut.dim[i];
                out = out * cut.dim[i] + idx[i];
            }
            if (kept) k->data[out] = p->ref[GRADE_Y][flat];
        }
    }
    // conv's y of x (shaped like conv's y of the adjoint: x itself) with this stride and
    // padding: x's spatial sizes shrunk the way a conv shrinks them
    const axes3 A = layer_axes(L);
    grade_shape conv = s;
    for (int a = 0; a < L->spatial; a++) {
        const int axis = 3 - L->spatial + a;
        const int64_t in = conv_out_size(A.in[axis], A.k[axis], A.stride[axis], A.dilation[axis],
                                         A.lo[axis], A.hi[axis]);
        conv.dim[2 + a] = conv_out_size(in, A.k[axis], A.stride[axis], A.dilation[axis],
                                        A.lo[axis], A.hi[axis]);
        if (conv.dim[2 + a] < 1) return true;
    }
    if (grade_shape_equal(&conv, &s)) return true;
    return add_candidate(c, p, GRADE_Y, M_T_AS_CONV, GRADE_MATCH_SHAPE, &conv,
                         "x's size shrunk by the stride, as conv's forward shrinks it") != NULL;
}

bool grade_candidates_build(grade_candidates *out, const grade_problem *p, grade_tensor t) {
    const grade_layer *L = &p->layer;
    if (!add_scaled(out, p, t, M_SIGN, -1.0) || !add_unfinished(out, p, t)) return false;
    if ((t == GRADE_DW || t == GRADE_DB) && L->g.n > 1 &&
        !add_scaled(out, p, t, M_DIVIDED_BY_N, 1.0 / (double)L->g.n))
        return false;
    if (t == GRADE_DB) return add_db_mistakes(out, p);
    if (t == GRADE_Y && p->b) {
        grade_shape s;
        expected_internal_shape(&s, p, t);
        grade_candidate *k = add_candidate(out, p, t, M_BIAS_MISSING, GRADE_MATCH_VALUES, &s, "");
        if (!k) return false;
        const int64_t numel = grade_shape_numel(&s), plane = numel / (s.dim[0] * s.dim[1]);
        for (int64_t i = 0; i < numel; i++)
            k->data[i] = p->ref[t][i] - p->b[(i / plane) % s.dim[1]];
    }
    if (!add_map_mistakes(out, p, t)) return false;
    if (L->transposed) return t != GRADE_Y || add_transposed_mistakes(out, p);
    // the mistakes of a 2-d layer's two axes and of its output size (as CS231n's code has
    // them), and of dx_pad's crop
    if (L->spatial == 2 && !(add_hw_swapped(out, p, t) && add_size_mistakes(out, p, t)))
        return false;
    if (t == GRADE_DX && L->spatial == 2) return add_dx_crop_mistakes(out, p);
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
    const bool per_position = t != GRADE_DB && grade_conv_role(&p->layer, t) == GRADE_DX;
    term_match m = {.base = {match_term, per_position ? match_position : NULL},
                    .sub = sub, .tol = tol, .hit = calloc((size_t)n, sizeof(bool))};
    if (t == GRADE_Y && p->b) {
        int64_t images;
        m.bias = p->b;
        dy_layout(p, &images, &m.filters, &m.plane);
    }
    if (per_position) {
        m.acc = calloc((size_t)n, sizeof(double));
        m.touched = calloc((size_t)n, sizeof(bool));
        m.list = malloc((size_t)n * sizeof(int64_t));
    }
    int result = -1;
    if (m.hit && (!per_position || (m.acc && m.touched && m.list))) {
        const index_map map = true_map(&p->layer, t);
        walk_terms(p, t, &map, &m.base);
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

// Adds the diagnosis of candidate k's mistake, and of its second one in a pair, with the
// evidence `fmt` formats (a pair's evidence names both).
static void add_found(grade_verdict *v, const grade_candidate *k, const char *evidence) {
    const grade_mutant *mut = &grade_mutants[k->mutant];
    grade_verdict_add_diagnosis(v, mut->id, mut->hint, "%s", evidence);
    if (k->also != GRADE_NO_MUTANT && !already_found(v, grade_mutants[k->also].id))
        grade_verdict_add_diagnosis(v, grade_mutants[k->also].id, grade_mutants[k->also].hint,
                                    "%s", evidence);
}

// Whether every value of the submission is 0: unfinished code, never `=` for `+=`.
static bool all_zero(const grade_array *sub) {
    for (int64_t i = 0; i < grade_shape_numel(&sub->shape); i++)
        if (sub->data[i] != 0) return false;
    return true;
}

// Compares the submission with candidate k and adds the diagnosis when it matches.
// Returns false without memory.
static bool try_candidate(grade_verdict *v, const grade_problem *p, const grade_array *sub,
                          const grade_candidate *k) {
    const char *name = grade_tensor_name(v->tensor);
    const int64_t n = grade_shape_numel(&sub->shape);
    char shape[96], evidence[1024]; // cut to the diagnosis's size when added
    grade_format_shape(shape, sizeof shape, &sub->shape);
    if (k->match == GRADE_MATCH_EMPTY) {
        if (n == 0 && grade_shape_numel(&v->expected_shape) > 0) {
            snprintf(evidence, sizeof evidence, "your %s has shape %s and no values", name, shape);
            add_found(v, k, evidence);
        }
        return true;
    }
    if (k->match == GRADE_MATCH_SHAPE) return true; // only by shape, in diagnose_shape
    if (k->match == GRADE_MATCH_SINGLE_TERMS) {
        if (!v->values_compared || v->nan_count + v->inf_count > 0 || all_zero(sub)) return true;
        int64_t wrong = 0, example = 0;
        const int r = match_single_terms(p, v->tensor, sub->data, n, &v->tol, &wrong, &example);
        if (r < 0) return false;
        if (r == 0) return true;
        char where[96];
        grade_format_index(where, sizeof where, name, example, &v->expected_shape);
        snprintf(evidence, sizeof evidence,
                 "every one of your %lld wrong values is a single term of its sum; e.g. %s = "
                 "%.17g is one term, the whole sum is %.17g",
                 (long long)wrong, where, sub->data[example], p->ref[v->tensor][example]);
        add_found(v, k, evidence);
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
    const char *sep = k->variant[0] ? "; " : "";
    if (differs > 0)
        snprintf(evidence, sizeof evidence,
                 "all %lld of your values equal what this mistake gives%s%s; the right %s "
                 "differs from it in %lld of them",
                 (long long)n, sep, k->variant, name, (long long)differs);
    else
        snprintf(evidence, sizeof evidence,
                 "your %s has shape %s and all %lld values equal what this mistake gives%s%s",
                 name, shape, (long long)n, sep, k->variant);
    add_found(v, k, evidence);
    return true;
}

// A wrong shape that no mistake's values explain: the mistakes that give that shape, or else
// the hint of the tensor's right shape.
static void diagnose_shape(grade_verdict *v, const grade_problem *p, const grade_array *sub,
                           const grade_candidates *c) {
    const char *name = grade_tensor_name(v->tensor);
    char got[96], want[96], evidence[1024]; // cut to the diagnosis's size when added
    grade_format_shape(got, sizeof got, &sub->shape);
    grade_format_shape(want, sizeof want, &v->expected_shape);
    for (size_t i = 0; i < c->count; i++) {
        const grade_candidate *k = &c->items[i];
        if (k->match == GRADE_MATCH_SINGLE_TERMS || k->also != GRADE_NO_MUTANT ||
            grade_shape_equal_squeezed(&k->shape, &v->expected_shape) ||
            !grade_shape_equal_squeezed(&k->shape, &sub->shape) ||
            already_found(v, grade_mutants[k->mutant].id))
            continue;
        snprintf(evidence, sizeof evidence,
                 "your %s has shape %s, the shape this mistake gives%s%s (the right shape is "
                 "%s)%s",
                 name, got, k->variant[0] ? ": " : "", k->variant, want,
                 k->match == GRADE_MATCH_SHAPE ? ""
                                               : "; its values differ from yours too, so look "
                                                 "for a second mistake");
        add_found(v, k, evidence);
    }
    if (v->n_diag > 0) return;
    static const char *const hints[GRADE_NTENSORS] = {
        "out has shape (N, F, H_out, W_out) with H_out = 1 + (H + 2*pad - HH) // stride and "
        "W_out = 1 + (W + 2*pad - WW) // stride: // floors, HH is the kernel's height and WW "
        "its width, H and W come from x.shape (not from each other).",
        "dx has the shape of x, (N, C, H, W): accumulate into dx_pad of the padded shape and "
        "return dx_pad[:, :, pad:pad+H, pad:pad+W].",
        "dw has the shape of w, (F, C, HH, WW): start from np.zeros_like(w) and add every "
        "image's contribution into it.",
        "db has the shape of b, (F,): np.sum(dout, axis=(0, 2, 3)).",
    };
    // the other families: the same, said for any number of spatial axes
    static const char *const family_hints[GRADE_NTENSORS] = {
        "y has shape (N, F, *sizes), one size per spatial axis: 1 + (in + pad_lo + pad_hi - "
        "dilation*(k - 1) - 1) // stride for a convolution, (in - 1)*stride - pad_lo - pad_hi + "
        "dilation*(k - 1) + output_padding + 1 for a transposed one.",
        "dx has the shape of x: accumulate into the padded shape if you like, then crop (or, "
        "for reflect, replicate and circular padding, fold the padding's gradient back) to x's "
        "shape.",
        "dw has the shape of w (a transposed convolution's w is (C_in, C_out/groups, k...)): "
        "start from np.zeros_like(w) and add every image's contribution into it.",
        "db has the shape of b, one value per output channel: dout summed over every axis "
        "but axis 1.",
    };
    const grade_layer *L = &p->layer;
    const conv_geom *g = &L->g;
    const bool conv2d = L->spatial == 2 && !L->transposed;
    if (v->tensor == GRADE_Y && conv2d) {
        snprintf(evidence, sizeof evidence,
                 "your y has shape %s, the right shape is %s: H_out = 1 + (%lld + %lld - %lld) "
                 "// %lld = %lld, W_out = 1 + (%lld + %lld - %lld) // %lld = %lld",
                 got, want, (long long)g->h, (long long)(g->pad_top + g->pad_bottom),
                 (long long)(g->dilation_h * (g->kh - 1) + 1), (long long)g->stride_h,
                 (long long)conv_out_h(g), (long long)g->w,
                 (long long)(g->pad_left + g->pad_right),
                 (long long)(g->dilation_w * (g->kw - 1) + 1), (long long)g->stride_w,
                 (long long)conv_out_w(g));
    } else if (v->tensor == GRADE_Y) {
        // each spatial axis's size worked out for this layer
        static const char *const axis_names[3] = {"D_out", "H_out", "W_out"};
        const axes3 A = layer_axes(L);
        size_t used = (size_t)snprintf(evidence, sizeof evidence,
                                       "your y has shape %s, the right shape is %s:", got, want);
        for (int a = first_axis(L); a < 3 && used < sizeof evidence; a++) {
            const char *axis = L->spatial == 1 ? "L_out" : axis_names[a];
            const int64_t ext = A.dilation[a] * (A.k[a] - 1) + 1;
            const int64_t in = L->transposed ? conv_out_size(A.in[a], A.k[a], A.stride[a],
                                                             A.dilation[a], A.lo[a], A.hi[a])
                                             : A.in[a];
            const int64_t size = L->transposed ? A.in[a]
                                               : conv_out_size(A.in[a], A.k[a], A.stride[a],
                                                               A.dilation[a], A.lo[a], A.hi[a]);
            const int64_t pads = A.lo[a] + A.hi[a];
            const int w =
                L->transposed
                    ? snprintf(evidence + used, sizeof evidence - used,
                               " %s = (%lld - 1)*%lld - %lld + %lld*(%lld - 1) + %lld + 1 = %lld;",
                               axis, (long long)in, (long long)A.stride[a], (long long)pads,
                               (long long)A.dilation[a], (long long)A.k[a],
                               (long long)L->output_padding[a], (long long)size)
                    : snprintf(evidence + used, sizeof evidence - used,
                               " %s = 1 + (%lld + %lld - %lld) // %lld = %lld;", axis,
                               (long long)in, (long long)pads, (long long)ext,
                               (long long)A.stride[a], (long long)size);
            used += w > 0 ? (size_t)w : 0;
        }
        if (used < sizeof evidence) evidence[used - 1] = '\0'; // the last ';'

    } else {
        snprintf(evidence, sizeof evidence, "your %s has shape %s, the right shape is %s", name,
                 got, want);
    }
    grade_verdict_add_diagnosis(v, "wrong_shape",
                                conv2d ? hints[v->tensor] : family_hints[v->tensor], "%s",
                                evidence);
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
    // single mistakes first; pairs, then the looser `=`-for-`+=` test, only when none of
    // them explains it
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; ok && i < c.count; i++) {
            const grade_candidate *k = &c.items[i];
            const int kind = k->match == GRADE_MATCH_SINGLE_TERMS ? 2
                             : k->also != GRADE_NO_MUTANT         ? 1
                                                                  : 0;
            if (kind != pass || (pass > 0 && v->n_diag > 0) ||
                already_found(v, grade_mutants[k->mutant].id))
                continue;
            ok = try_candidate(v, p, sub, k);
        }
    if (ok && v->n_diag == 0 && !v->shape_ok) diagnose_shape(v, p, sub, &c);
    grade_candidates_free(&c);
    return ok;
}
