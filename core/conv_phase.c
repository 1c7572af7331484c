// conv_phase: strided layers (a stride above 1, more than one tap, not depthwise) under
// AVX-512: the forward and dw GEMMs of conv_gemm.c, reading the layer's phase planes in place
// (core/gemm.h's gemm_rows with a table of tap offsets) instead of im2col's column matrix, and
// dx as one GEMM per phase of x on dy's shifted rows instead of GEMM + col2im.
//
// Output (oh, ow) meets, through tap (a, b), x row oh*sh + a*dh - pt. With a*dh = ia*sh + pa
// (pa the tap's row phase, ia its row shift) that is row (oh + ia)*sh + pa - pt, and likewise
// for columns: element (oh + ia, ow + ib) of the phase plane
//   X_{pa,pb}[u][v] = x[u*sh + pa - pt][v*sw + pb - pl]   (zero outside x).
// Stored at a pitch Q = Wo + max ib, with output (oh, ow) as pixel q = oh*Q + ow, every tap is
// one shift of its plane: im2col's row (ch, a, b) is plane (ch, pa, pb) read from ia*Q + ib on.
// The forward's GEMM takes B's columns as y's pixels (gemm_cols: each output row's Wo read
// from the planes' Q), so that it writes y in place; dw's runs over Q-pitched pixels, the max
// ib pixels past Wo in each row meeting zeros of dy (3.6% more work on (f), 2.7% on the stem).
// The planes hold x once (a stride-2 3x3 layer's column matrix holds it 2.25 times; the stem's
// 12.25 times) and are built with one gather per plane row instead of one per tap and row.
// The same shifts give dx as correlations of dy, one per phase pair (backward_data_worker).
// Per image n, group g and chunk of R output rows [oh0, oh0 + R):
//   forward  y_g (F/G x R*Wo) = w_g (F/G x K) * cols (K x R*Wo), cols' columns at pitch Q
//   dw       dw_g (F/G x K) += dyq (F/G x R*Q) * cols^T (R*Q x K), dyq being dy's rows at pitch
//                             Q with zeros past Wo (dy itself when Q == Wo)
// cols being the planes' rows [oh0, oh0 + R + max ia), read through the offset table. Only
// the phases some tap has are built (a dilation that is a multiple of the stride has one).
//
// Scratch: each worker's region is [dw accumulator | offsets and phase lists (int64) | planes |
// dyq (dw only)], or for dx as data_region says.
#include <string.h>

#include "core/conv_internal.h"

// A chunk of output rows is at most this many bytes of planes and dyq. Each chunk's
// GEMM packs all of w again, repeats the planes' overlap (max ia rows) and ends in a partial
// column panel, so chunks are large: measured (one thread, CPU time, interleaved on a loaded
// machine, against each pass's dx as the load's yardstick) at 1 MiB (f) took 2 chunks and
// ran its forward and dw 0.93x as fast as at 2 MiB (whole images); 4 MiB gained nothing more
// on either (f) or the stem (h) (2 chunks of 56 rows at 2 MiB).
#define PHASE_CHUNK_BYTES ((int64_t)2 << 20)
// ... and at most this many bytes of dyq when dy is copied into it (Q > Wo): the GEMM then reads
// it from the L2 cache. (When the forward still copied a Q-pitched Y into y, the stem's (h) Y
// of 56 rows, 1.6 MB, went to memory and back, and its copy took a fifth of the forward.)
#define PHASE_OUT_BYTES ((int64_t)512 << 10)

bool conv_phase_applies(const conv_geom *g) {
    return (g->stride_h > 1 || g->stride_w > 1) && g->kh * g->kw > 1 && !conv_is_depthwise(g);
}

// The distinct phases (tap * dilation % stride) of `taps` taps in order of first appearance:
// phases[i] for i < the count returned, and index[t] (NULL to skip) the one of tap t.
static int64_t list_phases(int64_t taps, int64_t dilation, int64_t stride, int64_t *phases,
                           int64_t *index) {
    int64_t count = 0;
    for (int64_t t = 0; t < taps; t++) {
        const int64_t p = t * dilation % stride;
        int64_t i = 0;
        while (i < count && phases[i] != p) i++;
        if (i == count) phases[count++] = p;
        if (index) index[t] = i;
    }
    return count;
}

typedef struct {
    int64_t nph_h, nph_w; // distinct row and column phases
    int64_t reach_h;      // max ia: the plane rows past a chunk's R
    int64_t pitch;        // Q = Wo + max ib
    int64_t rows;         // R: output rows per chunk, at most
} phase_shape;

// The layer's reach and pitch, and the chunk rows that fit PHASE_CHUNK_BYTES with as many
// phases as there could be (min(taps, stride) each way). With `ints` (kh + kw int64), the
// phase lists go there and nph_h, nph_w are the distinct phases; else they stay the bound.
static phase_shape shape_of(const conv_geom *g, conv_dtype dt, int64_t *ints) {
    phase_shape s = {g->kh < g->stride_h ? g->kh : g->stride_h,
                     g->kw < g->stride_w ? g->kw : g->stride_w,
                     (g->kh - 1) * g->dilation_h / g->stride_h, 0, 1};
    s.pitch = conv_out_w(g) + (g->kw - 1) * g->dilation_w / g->stride_w;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups;
    const int64_t row = conv_mul_sat(conv_add_sat(conv_mul_sat(cg, s.nph_h * s.nph_w), fg),
                                     conv_mul_sat(s.pitch, (int64_t)conv_dtype_size(dt)));
    const int64_t out_row = conv_mul_sat(fg, conv_mul_sat(s.pitch, (int64_t)conv_dtype_size(dt)));
    int64_t fit = PHASE_CHUNK_BYTES / row;
    if (s.pitch > conv_out_w(g) && PHASE_OUT_BYTES / out_row < fit) fit = PHASE_OUT_BYTES / out_row;
    s.rows = fit < 1 ? 1 : fit < conv_out_h(g) ? fit : conv_out_h(g);
    if (ints) {
        s.nph_h = list_phases(g->kh, g->dilation_h, g->stride_h, ints, NULL);
        s.nph_w = list_phases(g->kw, g->dilation_w, g->stride_w, ints + g->kh, NULL);
    }
    return s;
}

// Plane elements for chunks of R rows (with Q of slack for the last plane's overreach).
static int64_t planes_elems(const conv_geom *g, const phase_shape *s, int64_t rows) {
    const int64_t per =
        conv_mul_sat(s->nph_h * s->nph_w, conv_mul_sat(rows + s->reach_h, s->pitch));
    return conv_add_sat(conv_mul_sat(g->c / g->groups, per), s->pitch);
}

// The region's integers: the row and column phase lists, each tap row's and column's phase
// index, and the offset table.
static size_t ints_bytes(const conv_geom *g) {
    return conv_align_up((size_t)(g->kh * g->kw + 2 * (g->kh + g->kw)) * sizeof(int64_t));
}

static size_t phase_region(const conv_geom *g, conv_dtype dt, int threads) {
    const phase_shape s = shape_of(g, dt, NULL);
    const int64_t elems = conv_add_sat(planes_elems(g, &s, s.rows),
                                       conv_mul_sat(g->f / g->groups, s.rows * s.pitch));
    const int64_t bytes =
        conv_mul_sat(conv_add_sat(elems, CONV_ALIGN), (int64_t)conv_dtype_size(dt));
    if (bytes > (int64_t)(SIZE_MAX / CONV_MAX_THREADS / 4)) return SIZE_MAX / CONV_MAX_THREADS / 2;
    return conv_accumulator_bytes(g, dt, threads) + ints_bytes(g) + conv_align_up((size_t)bytes);
}

// dx's geometry: the phase planes of dx cover x with Ux rows at pitch Qx (Qx also holds
// Wo + max ib, the reach of dy's shifted rows); dyq holds, per filter, max ib zeros, then
// Ux + max ia rows at pitch Qx: max ia zero rows, dy's rows, zeros past Wo and below dy.
typedef struct {
    int64_t ux, qx, dyq_plane;
} data_shape;

static data_shape data_shape_of(const conv_geom *g) {
    const int64_t amax = (g->kh - 1) * g->dilation_h / g->stride_h;
    const int64_t bmax = (g->kw - 1) * g->dilation_w / g->stride_w;
    const int64_t vx = (g->w - 1 + g->pad_left) / g->stride_w + 1;
    data_shape d = {(g->h - 1 + g->pad_top) / g->stride_h + 1, conv_out_w(g) + bmax, 0};
    if (vx > d.qx) d.qx = vx;
    d.dyq_plane = conv_add_sat(bmax, conv_mul_sat(d.ux + amax, d.qx));
    return d;
}

// The region's integers for dx: each tap's phase indices, the taps sorted by phase pair, where
// each pair's taps start (nph + 1 entries, at most kh*kw + 1), and their offsets in dyq.
static size_t data_ints_bytes(const conv_geom *g) {
    return conv_align_up((size_t)(4 * g->kh * g->kw + 2 * (g->kh + g->kw) + 1) * sizeof(int64_t));
}

// [ints | wt_g, the group's weights by phase pair (C/G x F/G*taps each) | dyq (F/G planes) |
// dxq (C/G x Ux*Qx)]
static size_t data_region(const conv_geom *g, conv_dtype dt, int threads) {
    const data_shape d = data_shape_of(g);
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups;
    const int64_t elems = conv_add_sat(
        conv_add_sat(conv_mul_sat(conv_mul_sat(cg, fg), g->kh * g->kw),
                     conv_mul_sat(fg, d.dyq_plane)),
        conv_add_sat(conv_mul_sat(cg, conv_mul_sat(d.ux, d.qx)), 3 * CONV_ALIGN));
    const int64_t bytes = conv_mul_sat(elems, (int64_t)conv_dtype_size(dt));
    if (bytes > (int64_t)(SIZE_MAX / CONV_MAX_THREADS / 4)) return SIZE_MAX / CONV_MAX_THREADS / 2;
    return data_ints_bytes(g) + conv_align_up((size_t)bytes);
}

// dx's GEMMs have M = C/G: the stem's 3 channels made row panels of 3 and packed every panel
// of dy's rows for them alone (its dx took 2.5x as long as GEMM + col2im, which has M =
// C/G*kh*kw = 147). At 64, layer (f), the phases ran 1.03x as fast as GEMM + col2im.
#define PHASE_DATA_MIN_CHANNELS 64

static bool data_applies(const conv_geom *g) {
    return g->c / g->groups >= PHASE_DATA_MIN_CHANNELS;
}

size_t conv_phase_workspace(const conv_geom *g, conv_dtype dt, int threads) {
    const size_t fw = phase_region(g, dt, threads);
    const size_t dx = data_applies(g) ? data_region(g, dt, threads) : 0;
    return (size_t)threads * (fw > dx ? fw : dx);
}

// A worker's view of its region, for one item.
typedef struct {
    phase_shape s;
    int64_t *offsets;           // kh*kw: tap (a, b)'s start in its channel's planes
    const int64_t *phase_h, *phase_w;
    char *planes, *out;         // out: dyq (dw)
    int64_t n, grp, oh0, rows;  // the item
} phase_item;

static char *region_of(const conv_run *r, int worker) {
    return r->scratch + (size_t)worker * r->region_bytes;
}

static phase_item item_setup(const conv_run *r, int worker, int64_t item) {
    const conv_geom *g = r->g;
    char *region = region_of(r, worker) + r->accumulator;
    int64_t *ints = (int64_t *)(void *)region;
    int64_t *ih = ints + g->kh + g->kw, *iw = ih + g->kh;
    phase_item it = {.offsets = iw + g->kw, .phase_h = ints, .phase_w = ints + g->kh};
    it.s = shape_of(g, r->dt, ints);
    const int64_t chunk = item % r->chunks, ng = item / r->chunks, ho = conv_out_h(g);
    it.n = ng / g->groups;
    it.grp = ng % g->groups;
    it.oh0 = ho * chunk / r->chunks;
    it.rows = ho * (chunk + 1) / r->chunks - it.oh0;
    it.planes = region + ints_bytes(g);
    it.out = conv_at(it.planes, conv_align_up((size_t)planes_elems(g, &it.s, it.rows) * r->elt)
                                    / r->elt, r->elt);
    // offsets[a*kw + b] = (plane of (pa, pb)) * plane size + ia*Q + ib
    const int64_t size = (it.rows + it.s.reach_h) * it.s.pitch;
    list_phases(g->kh, g->dilation_h, g->stride_h, ints, ih);
    list_phases(g->kw, g->dilation_w, g->stride_w, ints + g->kh, iw);
    for (int64_t a = 0; a < g->kh; a++)
        for (int64_t b = 0; b < g->kw; b++) {
            const int64_t plane = ih[a] * it.s.nph_w + iw[b];
            it.offsets[a * g->kw + b] = plane * size +
                                        a * g->dilation_h / g->stride_h * it.s.pitch +
                                        b * g->dilation_w / g->stride_w;
        }
    return it;
}

// The planes of the item's group of image n, rows [oh0, oh0 + R + reach) (see the top), then
// Q zeros. The zeros left and right of each row's gather lie where they lay for the worker's
// last item when that had as many rows (`same`): then only rows outside x are written with
// zeros (three memsets per row, a few elements each, were 4% of (f)'s dw).
static void build_planes(const conv_run *r, const phase_item *it, bool same) {
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, q = it->s.pitch, prow = it->rows + it->s.reach_h;
    char *plane = it->planes;
    if (!same) memset(plane, 0, (size_t)((cg * it->s.nph_h * it->s.nph_w * prow + 1) * q) * elt);
    for (int64_t ch = 0; ch < cg; ch++) {
        const char *x_c = conv_at(r->in, ((it->n * g->c + it->grp * cg + ch) * g->h) * g->w, elt);
        for (int64_t i = 0; i < it->s.nph_h; i++)
            for (int64_t j = 0; j < it->s.nph_w; j++) {
                const int64_t off_w = it->phase_w[j] - g->pad_left;
                int64_t lo, hi;
                conv_valid_span(0, q, g->stride_w, off_w, g->w, &lo, &hi);
                for (int64_t u = 0; u < prow; u++) {
                    char *row = conv_at(plane, u * q, elt);
                    const int64_t ihr = (it->oh0 + u) * g->stride_h + it->phase_h[i] - g->pad_top;
                    if (ihr < 0 || ihr >= g->h || hi == lo) {
                        memset(row, 0, (size_t)q * elt);
                        continue;
                    }
                    r->k->gather(conv_at(row, lo, elt),
                                 conv_at(x_c, ihr * g->w + lo * g->stride_w + off_w, elt), hi - lo,
                                 g->stride_w);
                }
                plane = conv_at(plane, prow * q, elt);
            }
    }
}

static gemm_rows cols_of(const conv_geom *g, const phase_item *it) {
    const int64_t size = (it->rows + it->s.reach_h) * it->s.pitch;
    return (gemm_rows){it->s.nph_h * it->s.nph_w * size, 0, g->kh * g->kw, it->offsets};
}

// What the forward and dw workers take of the layer: filters per group, the unrolled kernel's
// length (C/G*kh*kw), the output's width and pixels.
typedef struct {
    int64_t fg, k, wo, pixels;
} phase_dims;

static phase_dims dims_of(const conv_geom *g) {
    const int64_t wo = conv_out_w(g);
    return (phase_dims){g->f / g->groups, g->c / g->groups * g->kh * g->kw, wo,
                        conv_out_h(g) * wo};
}

// Item `item` of a forward or dw pass with its phase planes built; *at gets the element of y
// (or dy) where its first output row starts, *n_cols its GEMM's columns (its output rows at
// the planes' pitch). *same: whether the worker's last item (rows 0: none yet) had as many
// rows as this one; *rows becomes this one's.
static phase_item item_planes(const conv_run *r, int worker, int64_t item, const phase_dims *d,
                              int64_t *at, int64_t *n_cols, int64_t *rows, bool *same) {
    const phase_item it = item_setup(r, worker, item);
    *same = *rows == it.rows;
    *rows = it.rows;
    build_planes(r, &it, *same);
    *at = (it.n * r->g->f + it.grp * d->fg) * d->pixels + it.oh0 * d->wo;
    *n_cols = it.rows * it.s.pitch;
    return it;
}

// x (N,C,H,W), w (F,C/G,kh,kw), b (F) or NULL -> y (N,F,Ho,Wo)
static void forward_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const size_t elt = r->elt;
    const phase_dims d = dims_of(r->g);
    gemm_cols_fn *gemm = r->dt == CONV_FLOAT64 ? gemm_avx512_cols_f64 : gemm_avx512_cols_f32;
    int64_t first, end, rows = 0;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        int64_t at, n_cols;
        bool same;
        const phase_item it = item_planes(r, worker, item, &d, &at, &n_cols, &rows, &same);
        // B's columns are the output's pixels, each row's read from the planes' wider pitch:
        // the GEMM writes y in place and computes no column past Wo.
        const gemm_cols map = {it.s.pitch == d.wo ? 0 : d.wo, it.s.pitch};
        gemm(d.fg, it.rows * d.wo, d.k, conv_at(r->w, it.grp * d.fg * d.k, elt), d.k, it.planes,
             cols_of(r->g, &it), map, r->b ? conv_at(r->b, it.grp * d.fg, elt) : NULL, false,
             conv_at(r->out, at, elt), d.pixels);
    }
}

// dy (N,F,Ho,Wo), x (N,C,H,W) -> dw (F,C/G,kh,kw), or a worker's private partial sum of it.
static void backward_weights_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const size_t elt = r->elt;
    const phase_dims d = dims_of(r->g);
    char *sum = worker == 0 ? r->out : region_of(r, worker);
    memset(sum, 0, (size_t)conv_numel_w(r->g) * elt);
    int64_t first, end, rows = 0;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        int64_t at, n_cols;
        bool same;
        const phase_item it = item_planes(r, worker, item, &d, &at, &n_cols, &rows, &same);
        const char *dy_g = conv_at(r->dy, at, elt);
        const int64_t q = it.s.pitch;
        const bool direct = q == d.wo;
        if (!direct) { // dyq's zeros past Wo, like the planes', stay for items of as many rows
            if (!same) memset(it.out, 0, (size_t)(d.fg * n_cols) * elt);
            for (int64_t f = 0; f < d.fg; f++)
                for (int64_t u = 0; u < it.rows; u++)
                    memcpy(conv_at(it.out, f * n_cols + u * q, elt),
                           conv_at(dy_g, f * d.pixels + u * d.wo, elt), (size_t)d.wo * elt);
        }
        conv_gemm_call_rows(r, false, true, d.fg, d.k, n_cols, direct ? dy_g : it.out,
                            direct ? d.pixels : n_cols, it.planes, cols_of(r->g, &it), NULL,
                            true, conv_at(sum, it.grp * d.fg * d.k, elt), d.k);
    }
}

// The group's weights for dx, by phase pair (see the top of backward_data_worker), and the
// integer tables: taps sorted by pair (`sorted`), each pair's first (`start`, nph + 1) and
// their offsets in dyq. Returns the number of phase pairs (*nph_w_out gets the column phases).
static int64_t data_tables(const conv_run *r, int64_t grp, const data_shape *d, int64_t *ints,
                           char *wt, int64_t *nph_w_out) {
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t khw = g->kh * g->kw, cg = g->c / g->groups, fg = g->f / g->groups;
    int64_t *phase_h = ints, *phase_w = ints + g->kh, *ih = phase_w + g->kw, *iw = ih + g->kh;
    int64_t *sorted = iw + g->kw, *offsets = sorted + khw, *start = offsets + khw;
    const int64_t nph_h = list_phases(g->kh, g->dilation_h, g->stride_h, phase_h, ih);
    const int64_t nph_w = list_phases(g->kw, g->dilation_w, g->stride_w, phase_w, iw);
    const int64_t amax = (g->kh - 1) * g->dilation_h / g->stride_h;
    const int64_t bmax = (g->kw - 1) * g->dilation_w / g->stride_w;
    int64_t count = 0;
    for (int64_t p = 0; p < nph_h * nph_w; p++) {
        start[p] = count;
        for (int64_t a = 0; a < g->kh; a++)
            for (int64_t b = 0; b < g->kw; b++) {
                if (ih[a] * nph_w + iw[b] != p) continue;
                sorted[count] = a * g->kw + b;
                offsets[count++] = bmax + (amax - a * g->dilation_h / g->stride_h) * d->qx -
                                   b * g->dilation_w / g->stride_w;
            }
    }
    start[nph_h * nph_w] = count;
    *nph_w_out = nph_w;
    for (int64_t p = 0; p < nph_h * nph_w; p++) {
        const int64_t taps = start[p + 1] - start[p];
        char *block = conv_at(wt, cg * fg * start[p], elt);
        for (int64_t c = 0; c < cg; c++)
            for (int64_t f = 0; f < fg; f++)
                for (int64_t i = 0; i < taps; i++)
                    memcpy(conv_at(block, (c * fg + f) * taps + i, elt),
                           conv_at(r->w, ((grp * fg + f) * cg + c) * khw + sorted[start[p] + i],
                                   elt),
                           elt);
    }
    return nph_h * nph_w;
}

// dy (N,F,Ho,Wo), w (F,C/G,kh,kw) -> dx (N,C,H,W), per phase pair (pa, pb) of x, the four
// stride-1 correlations of a 3x3 stride-2 layer (Ux = rows of x's phase planes, Qx their
// pitch):
//   dxq (C/G x U*V) = wt_p (C/G x F/G*T) * dys (F/G*T x U*V),
// T being the pair's taps, wt_p[c][(f, i)] = w[f][c][tap i], dys row (f, i) dyq's plane f
// shifted back by tap i's (ia, ib) (dx element (u, v) of the pair meets dy (u - ia, v - ib)),
// read at the U rows and V columns of the pair's Ux x Qx that land in x; then dxq's rows go
// to their places in dx (stride sh apart, sw between columns). Items are channel ranges,
// which write disjoint parts of dx.
static void backward_data_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, khw = g->kh * g->kw;
    const int64_t wo = conv_out_w(g), ho = conv_out_h(g), hw = g->h * g->w;
    const data_shape d = data_shape_of(g);
    const int64_t amax = (g->kh - 1) * g->dilation_h / g->stride_h;
    const int64_t bmax = (g->kw - 1) * g->dilation_w / g->stride_w;
    char *region = region_of(r, worker);
    int64_t *ints = (int64_t *)(void *)region;
    const int64_t *phase_h = ints, *phase_w = ints + g->kh;
    const int64_t *offsets = ints + 2 * (g->kh + g->kw) + khw, *start = offsets + khw;
    char *wt = region + data_ints_bytes(g);
    char *dyq = conv_at(wt, conv_align_up((size_t)(cg * fg * khw) * elt) / elt, elt);
    char *dxq = conv_at(dyq, conv_align_up((size_t)(fg * d.dyq_plane) * elt) / elt, elt);
    gemm_cols_fn *gemm = r->dt == CONV_FLOAT64 ? gemm_avx512_cols_f64 : gemm_avx512_cols_f32;
    int64_t first, end, grp_ready = -1, pairs = 0, nph_w = 1;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t chunk = item % r->chunks, ng = item / r->chunks;
        const int64_t n = ng / g->groups, grp = ng % g->groups;
        const int64_t c0 = cg * chunk / r->chunks, c1 = cg * (chunk + 1) / r->chunks;
        if (grp != grp_ready) {
            pairs = data_tables(r, grp, &d, ints, wt, &nph_w);
            grp_ready = grp;
        }
        const char *dy_g = conv_at(r->dy, (n * g->f + grp * fg) * ho * wo, elt);
        // dyq plane f (see data_shape): its zeros are in the same places for every item, so
        // they are written once per pass (one memset per row and item was 4% of (f)'s dx).
        // dy's rows from Ux on meet no element of x.
        if (item == first) memset(dyq, 0, (size_t)(fg * d.dyq_plane) * elt);
        for (int64_t f = 0; f < fg; f++)
            for (int64_t u = 0; u < (ho < d.ux ? ho : d.ux); u++)
                memcpy(conv_at(dyq, f * d.dyq_plane + bmax + (amax + u) * d.qx, elt),
                       conv_at(dy_g, f * ho * wo + u * wo, elt), (size_t)wo * elt);
        // Each element of dx is one pair's (u, v) or none's: zeroed first only where some
        // phase has no tap.
        char *dx_c = conv_at(r->out, (n * g->c + grp * cg + c0) * hw, elt);
        if (pairs < g->stride_h * g->stride_w) memset(dx_c, 0, (size_t)((c1 - c0) * hw) * elt);
        for (int64_t p = 0; p < pairs; p++) {
            // The pair's rows u0..u1-1 and columns lo..hi-1 that land in x: the GEMM computes
            // those rows only (each phase of (f) misses one of the Ux rows).
            const int64_t taps = start[p + 1] - start[p];
            const int64_t off_h = phase_h[p / nph_w] - g->pad_top;
            const int64_t off_w = phase_w[p % nph_w] - g->pad_left;
            int64_t u0, u1, lo, hi;
            conv_valid_span(0, d.ux, g->stride_h, off_h, g->h, &u0, &u1);
            conv_valid_span(0, d.qx, g->stride_w, off_w, g->w, &lo, &hi);
            if (u1 <= u0 || hi <= lo) continue;
            // B's columns are those rows' columns lo..hi-1 only (gemm_cols), dxq's rows
            // (u1 - u0)*(hi - lo) long: (f)'s pairs compute 28 of the Qx = 29 columns.
            const int64_t width = hi - lo, cols = (u1 - u0) * width;
            gemm(c1 - c0, cols, fg * taps, conv_at(wt, cg * fg * start[p] + c0 * fg * taps, elt),
                 fg * taps, conv_at(dyq, offsets[start[p]] + u0 * d.qx + lo, elt),
                 (gemm_rows){d.dyq_plane, 0, taps, offsets + start[p]},
                 (gemm_cols){width == d.qx ? 0 : width, d.qx}, NULL, false, dxq, cols);
            for (int64_t c = 0; c < c1 - c0; c++)
                for (int64_t u = u0; u < u1; u++)
                    r->k->place(conv_at(dx_c, c * hw + (u * g->stride_h + off_h) * g->w +
                                                  lo * g->stride_w + off_w,
                                        elt),
                                conv_at(dxq, c * cols + (u - u0) * width, elt), width,
                                g->stride_w);
        }
    }
}

// Runs a pass when the ISA has the GEMM and the scratch holds one `region` per worker; false
// (nothing done) else. Items are (image, group, chunk): chunks of output rows that fit
// PHASE_CHUNK_BYTES, or with `by_channels` of the group's channels (dx), and at least enough
// of them to give every thread work.
static bool run_phase(conv_run *r, conv_worker_fn worker, conv_region_fn *region,
                      bool by_channels) {
    const conv_geom *g = r->g;
    if (r->isa != CONV_ISA_AVX512) return false;
    const int64_t images = g->n * g->groups;
    const int64_t most = by_channels ? g->c / g->groups : conv_out_h(g);
    if (!conv_plan_regions(r, conv_mul_sat(images, most), region)) return false;
    const int64_t rows = shape_of(g, r->dt, NULL).rows;
    r->chunks = by_channels ? 1 : (most + rows - 1) / rows;
    if (images * r->chunks < r->threads) {
        const int64_t want = (r->threads + images - 1) / images;
        r->chunks = want < most ? want : most;
    }
    r->items = images * r->chunks;
    conv_run_workers(r->threads, worker, r);
    return true;
}

bool conv_phase_forward(conv_run *r) {
    return run_phase(r, forward_worker, phase_region, false);
}

bool conv_phase_backward_data(conv_run *r) {
    return data_applies(r->g) && run_phase(r, backward_data_worker, data_region, true);
}

bool conv_phase_backward_weights(conv_run *r) {
    if (!run_phase(r, backward_weights_worker, phase_region, false)) return false;
    conv_add_partial_sums(r);
    return true;
}
