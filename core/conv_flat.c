// conv_flat: layers with stride 1 whose filters have few taps (C/G*kh*kw), or up to a thousand
// on wide enough rows (conv_flat_wanted); depthwise layers have their own path
// (conv_depthwise.c).
//
// Few taps make GEMMs with a small K, bound by im2col and packing traffic rather than
// arithmetic. Here each output row is one vector loop over zero-padded planes with all taps
// summed in registers (taps_rows_outs, dots in conv_kernels.h). Measured on layer (d) (3 channels,
// 5x5, 75 taps): forward 1.25 ms flat vs 2.2 ms im2col + GEMM, dx 1.5 vs 2.1. With several
// filters (forward), channels (dx) or filters and taps (dw) per load, the register blocks
// also outrun OpenBLAS's AVX2 sgemm on AVX-512 for hundreds of taps (FLAT_WIDE_TAPS).
//
// On a zero-padded copy xp of an input plane (pitch Wp = W + pl + pr), output pixel (r, c)
// meets through tap (ch, a, b') the element xp_ch[(r + a*dh)*Wp + c + b'*dw]. Backward runs
// the same loops on dy laid out at pitch Wp between zero margins (dyp): dx is the
// correlation of dyp with the flipped kernel, summed over filters; dw is the dot of dyp with
// each shifted xp. Items are (image, group) throughout.
//
// Scratch: each worker's region is [dw accumulator | C/G padded x planes | F/G dy planes].
#include <string.h>

#include "core/conv_internal.h"

#define FLAT_MAX_TAPS 128
// Forward and dx with more taps per filter than FLAT_MAX_TAPS (up to FLAT_WIDE_TAPS) still
// run flat where their output rows fill most of taps_rows_outs's blocks (at least 3/4 of the lanes
// computed are outputs). Measured on one thread (AVX-512) against im2col + GEMM on OpenBLAS's
// Haswell sgemm, with 576 taps (8x64x56x56 3x3: forward 16 vs 26 ms, dx 17 vs 22; conv1d
// 8x64x4096 k9: 16 vs 29, 20 vs 29) and 1152 (8x128x28x28: 15 vs 23, 16 vs 22); a 14x14
// output fills 14 of 32 float lanes, and flat was 1.3x slower there (8x256x14x14, 2304 taps).
// dw keeps im2col + GEMM beyond FLAT_MAX_TAPS: flat was 0.8-1.2x as fast there (its dy planes
// stream from the L2 cache once per four taps), and its sums, split over vector lanes, are
// about twice as exact as the GEMM's, which would move the bar Winograd's accuracy contract
// sets against the direct path (conv.h, conv_pick_algorithm).
#define FLAT_WIDE_TAPS 1152
// Filters whose output rows the forward computes together (taps_rows_outs), and channels dx
// computes together.
#define FLAT_OUTS 8

// Whether `width` outputs fill at least 3/4 of the whole blocks taps_rows_outs computes for them.
static bool rows_fill_blocks(int64_t width, conv_dtype dt) {
    const int64_t block = CONV_TAP_BLOCK_BYTES / (int64_t)conv_dtype_size(dt);
    return 4 * width >= 3 * block * ((width + block - 1) / block);
}

bool conv_flat_wanted(const conv_geom *g, conv_dtype dt, conv_pass_id pass) {
    if (g->stride_h != 1 || g->stride_w != 1 || conv_is_pointwise(g)) return false;
    const int64_t taps = g->c / g->groups * g->kh * g->kw;
    if (taps <= FLAT_MAX_TAPS) return true;
    if (taps > FLAT_WIDE_TAPS || pass == CONV_PASS_WEIGHTS) return false;
    return rows_fill_blocks(pass == CONV_PASS_FORWARD ? conv_out_w(g) : g->w, dt);
}

// The planes, in elements: xp, a zero-padded input plane at pitch Wp (with room for the last
// taps' overreach, and for taps_rows_outs's whole blocks), and dyp, a dy plane at the same pitch
// between zero margins as wide as the kernel's reach, so that every tap of every pass reads
// inside them. Huge paddings make these saturate, and the region then never fits a cap.
static int64_t padded_pitch(const conv_geom *g) { return g->w + g->pad_left + g->pad_right; }
static int64_t kernel_reach(const conv_geom *g) {
    return conv_add_sat(conv_mul_sat(conv_mul_sat(g->kh - 1, g->dilation_h), padded_pitch(g)),
                        conv_mul_sat(g->kw - 1, g->dilation_w));
}
static int64_t padded_plane(const conv_geom *g) {
    return conv_add_sat(conv_mul_sat(g->h + g->pad_top + g->pad_bottom, padded_pitch(g)),
                        conv_add_sat(conv_mul_sat(g->kw - 1, g->dilation_w),
                                     CONV_TAP_BLOCK_BYTES / 4));
}
static int64_t dy_plane_ext(const conv_geom *g) {
    return conv_add_sat(kernel_reach(g), conv_add_sat(padded_plane(g), padded_pitch(g)));
}

static size_t flat_region(const conv_geom *g, conv_dtype dt, int threads) {
    int64_t planes = conv_add_sat(conv_mul_sat(g->c / g->groups, padded_plane(g)),
                                  conv_mul_sat(g->f / g->groups, dy_plane_ext(g)));
    int64_t bytes = conv_mul_sat(planes, (int64_t)conv_dtype_size(dt));
    if (bytes > (int64_t)(SIZE_MAX / CONV_MAX_THREADS / 4)) return SIZE_MAX / CONV_MAX_THREADS / 2;
    return conv_accumulator_bytes(g, dt, threads) + conv_align_up((size_t)bytes);
}

size_t conv_flat_workspace(const conv_geom *g, conv_dtype dt, int threads) {
    return (size_t)threads * flat_region(g, dt, threads);
}

// xp <- the zero-padded copy of one (H x W) plane, pitch Wp, with zeroed overreach at the end.
static void pad_plane(char *xp, const char *plane, const conv_geom *g, size_t elt) {
    const int64_t pitch = padded_pitch(g);
    memset(xp, 0, (size_t)padded_plane(g) * elt);
    for (int64_t r = 0; r < g->h; r++)
        memcpy(conv_at(xp, (r + g->pad_top) * pitch + g->pad_left, elt),
               conv_at(plane, r * g->w, elt), (size_t)g->w * elt);
}

// dyp <- one (Ho x Wo) plane at pitch Wp after kernel_reach() zeros; the rest zero.
static void pitch_plane(const conv_run *r, char *dyp, const char *plane) {
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t pitch = padded_pitch(g), ho = conv_out_h(g), wo = conv_out_w(g);
    memset(dyp, 0, (size_t)dy_plane_ext(g) * elt);
    char *start = conv_at(dyp, kernel_reach(g), elt);
    for (int64_t row = 0; row < ho; row++)
        memcpy(conv_at(start, row * pitch, elt), conv_at(plane, row * wo, elt), (size_t)wo * elt);
}

// The worker's planes: `channels` padded x planes, then `filters` dy planes (see flat_region).
typedef struct {
    char *sum; // dw or the worker's private partial sum (backward weights only)
    char *xp;  // x plane ch at xp + ch * padded_plane(g) elements
    char *dyp; // dy plane f at dyp + f * dy_plane_ext(g), its data kernel_reach(g) further
} flat_planes;

static flat_planes flat_scratch(const conv_run *r, int worker) {
    char *region = r->scratch + (size_t)worker * r->region_bytes;
    char *xp = region + r->accumulator;
    return (flat_planes){.sum = worker == 0 ? r->out : region,
                         .xp = xp,
                         .dyp = conv_at(xp, r->g->c / r->g->groups * padded_plane(r->g), r->elt)};
}

// sp's x planes <- image n's C/G planes of group grp, zero-padded (pad_plane).
static void pad_group(const conv_run *r, const flat_planes *sp, int64_t n, int64_t grp) {
    const conv_geom *g = r->g;
    const int64_t cg = g->c / g->groups;
    for (int64_t ch = 0; ch < cg; ch++)
        pad_plane(conv_at(sp->xp, ch * padded_plane(g), r->elt),
                  conv_at(r->in, (n * g->c + grp * cg + ch) * g->h * g->w, r->elt), g, r->elt);
}

// sp's dy planes <- image n's F/G planes of group grp, at pitch Wp (pitch_plane).
static void pitch_group(const conv_run *r, const flat_planes *sp, int64_t n, int64_t grp) {
    const conv_geom *g = r->g;
    const int64_t fg = g->f / g->groups, pixels = conv_out_h(g) * conv_out_w(g);
    for (int64_t f = 0; f < fg; f++)
        pitch_plane(r, conv_at(sp->dyp, f * dy_plane_ext(g), r->elt),
                    conv_at(r->dy, (n * g->f + grp * fg + f) * pixels, r->elt));
}

// x (N,C,H,W), w (F,C/G,kh,kw), b (F) or NULL -> y (N,F,Ho,Wo)
static void forward_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, k = cg * g->kh * g->kw;
    const int64_t pitch = padded_pitch(g), ho = conv_out_h(g), wo = conv_out_w(g);
    const flat_planes sp = flat_scratch(r, worker);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t n = item / g->groups, grp = item % g->groups;
        pad_group(r, &sp, n, grp);
        for (int64_t f = grp * fg; f < (grp + 1) * fg; f += FLAT_OUTS) {
            const int64_t nout = (grp + 1) * fg - f < FLAT_OUTS ? (grp + 1) * fg - f : FLAT_OUTS;
            char *y_plane = conv_at(r->out, (n * g->f + f) * ho * wo, elt);
            double bias[FLAT_OUTS] = {0};
            for (int64_t o = 0; r->b && o < nout; o++) bias[o] = conv_load(r->b, f + o, r->dt);
            // the filters' rows together, each x vector loaded once
            r->k->taps_rows_outs(y_plane, ho * wo, nout, ho, wo, sp.xp, pitch, wo, cg,
                                 padded_plane(g), conv_at(r->w, f * k, elt), g->kh * g->kw, k,
                                 g->kh, g->kw, g->dilation_h * pitch, g->dilation_w, bias);
        }
    }
}

static const double no_bias[FLAT_OUTS];

// dy (N,F,Ho,Wo), w (F,C/G,kh,kw) -> dx (N,C,H,W). The dx pixel (r, c) sits at (r+pt, c+pl)
// in the padded frame that dyp's taps reach, which run backwards (the flipped kernel).
static void backward_data_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, khw = g->kh * g->kw;
    const int64_t pitch = padded_pitch(g);
    const flat_planes sp = flat_scratch(r, worker);
    const char *dy_start = conv_at(sp.dyp, kernel_reach(g) + g->pad_top * pitch + g->pad_left, elt);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t n = item / g->groups, grp = item % g->groups;
        pitch_group(r, &sp, n, grp);
        // The channels' rows together, as the forward does its filters': each dy vector loaded
        // once for FLAT_OUTS channels.
        for (int64_t ch = 0; ch < cg; ch += FLAT_OUTS) {
            const int64_t nout = cg - ch < FLAT_OUTS ? cg - ch : FLAT_OUTS;
            char *dx_plane = conv_at(r->out, (n * g->c + grp * cg + ch) * g->h * g->w, elt);
            r->k->taps_rows_outs(dx_plane, g->h * g->w, nout, g->h, g->w, dy_start, pitch, g->w,
                                 fg, dy_plane_ext(g),
                                 conv_at(r->w, grp * fg * cg * khw + ch * khw, elt), cg * khw,
                                 khw, g->kh, g->kw, -g->dilation_h * pitch, -g->dilation_w,
                                 no_bias);
        }
    }
}

// dy (N,F,Ho,Wo), x (N,C,H,W) -> dw (F,C/G,kh,kw), or a worker's private partial sum of it.
static void backward_weights_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, taps = cg * g->kh * g->kw;
    const int64_t pitch = padded_pitch(g);
    const int64_t span = conv_out_h(g) * pitch; // dy's rows in dyp
    const flat_planes sp = flat_scratch(r, worker);
    // tap (ch, a, b') of a filter, at ch*kh*kw + a*kw + b' in dw, reads the x planes at
    // this offset from dy's pixel (conv_flat_wanted keeps taps within FLAT_MAX_TAPS here)
    int64_t offsets[FLAT_MAX_TAPS];
    for (int64_t t = 0; t < taps; t++) {
        const int64_t ch = t / (g->kh * g->kw), a = t / g->kw % g->kh, b = t % g->kw;
        offsets[t] = ch * padded_plane(g) + a * g->dilation_h * pitch + b * g->dilation_w;
    }
    memset(sp.sum, 0, (size_t)conv_numel_w(g) * elt);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t n = item / g->groups, grp = item % g->groups;
        pad_group(r, &sp, n, grp);
        pitch_group(r, &sp, n, grp);
        // All the group's filters against all its taps' shifted x: dots loads each x vector
        // once for a few filters, each dy vector once for a few taps.
        r->k->dots(conv_at(sp.sum, grp * fg * taps, elt), taps, fg,
                   conv_at(sp.dyp, kernel_reach(g), elt), dy_plane_ext(g), sp.xp, span, taps,
                   offsets);
    }
}

// Runs a flat pass when the scratch holds one region per worker; false (nothing done) else.
static bool run_flat(conv_run *r, conv_worker_fn worker) {
    if (!conv_plan_regions(r, r->g->n * r->g->groups, flat_region)) return false;
    r->items = r->g->n * r->g->groups;
    r->chunks = 1;
    conv_run_workers(r->threads, worker, r);
    return true;
}

bool conv_flat_forward(conv_run *r) { return run_flat(r, forward_worker); }

bool conv_flat_backward_data(conv_run *r) { return run_flat(r, backward_data_worker); }

bool conv_flat_backward_weights(conv_run *r) {
    // its workers' offset tables hold FLAT_MAX_TAPS taps (conv_flat_wanted's bound for dw)
    const conv_geom *g = r->g;
    if (g->c / g->groups * g->kh * g->kw > FLAT_MAX_TAPS) return false;
    if (!run_flat(r, backward_weights_worker)) return false;
    conv_add_partial_sums(r);
    return true;
}
