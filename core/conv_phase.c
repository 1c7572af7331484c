// conv_phase: strided layers (a stride above 1, more than one tap, not depthwise) under
// AVX-512: the forward and dw GEMMs of conv_gemm.c, reading the layer's phase planes in place
// (core/gemm.h's gemm_rows with a table of tap offsets) instead of im2col's column matrix.
//
// Output (oh, ow) meets, through tap (a, b), x row oh*sh + a*dh - pt. With a*dh = ia*sh + pa
// (pa the tap's row phase, ia its row shift) that is row (oh + ia)*sh + pa - pt, and likewise
// for columns: element (oh + ia, ow + ib) of the phase plane
//   X_{pa,pb}[u][v] = x[u*sh + pa - pt][v*sw + pb - pl]   (zero outside x).
// Stored at a pitch Q = Wo + max ib, with output (oh, ow) as pixel q = oh*Q + ow, every tap is
// one shift of its plane: im2col's row (ch, a, b) is plane (ch, pa, pb) read from ia*Q + ib on.
// The GEMMs run over Q-pitched pixels: the max ib pixels past Wo in each row are computed and
// dropped (forward) or meet zeros of dy (dw), 3.6% more work on (f), 2.7% on the stem (h).
// The planes hold x once (a stride-2 3x3 layer's column matrix holds it 2.25 times; the stem's
// 12.25 times) and are built with one gather per plane row instead of one per tap and row.
// Per image n, group g and chunk of R output rows [oh0, oh0 + R):
//   forward  Y (F/G x R*Q)  = w_g (F/G x K) * cols (K x R*Q), Y's rows then copied into y
//                             (Y is y itself when Q == Wo)
//   dw       dw_g (F/G x K) += dyq (F/G x R*Q) * cols^T (R*Q x K), dyq being dy's rows at pitch
//                             Q with zeros past Wo (dy itself when Q == Wo)
// cols being the planes' rows [oh0, oh0 + R + max ia), read through the offset table. Only
// the phases some tap has are built (a dilation that is a multiple of the stride has one).
// dx stays GEMM + col2im (conv_gemm.c).
//
// Scratch: each worker's region is [dw accumulator | offsets and phase lists (int64) | planes |
// Y or dyq].
#include <string.h>

#include "core/conv_internal.h"

// A chunk of output rows is at most this many bytes of planes and Y (or dyq). Each chunk's
// GEMM packs all of w again, repeats the planes' overlap (max ia rows) and ends in a partial
// column panel, so chunks are large: measured (one thread, CPU time, interleaved on a loaded
// machine, against each pass's dx as the load's yardstick) at 1 MiB (f) took 2 chunks and
// ran its forward and dw 0.93x as fast as at 2 MiB (whole images); 4 MiB gained nothing more
// on either (f) or the stem (h) (2 chunks of 56 rows at 2 MiB).
#define PHASE_CHUNK_BYTES ((int64_t)2 << 20)

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
    const int64_t fit = PHASE_CHUNK_BYTES / row;
    s.rows = fit < 1 ? 1 : fit < conv_out_h(g) ? fit : conv_out_h(g);
    if (ints) {
        s.nph_h = list_phases(g->kh, g->dilation_h, g->stride_h, ints, NULL);
        s.nph_w = list_phases(g->kw, g->dilation_w, g->stride_w, ints + g->kh, NULL);
    }
    return s;
}

// Plane elements for chunks of R rows (with Q of slack for the last plane's overreach), and
// Y's or dyq's.
static int64_t planes_elems(const conv_geom *g, const phase_shape *s, int64_t rows) {
    const int64_t per = conv_mul_sat(s->nph_h * s->nph_w, conv_mul_sat(rows + s->reach_h, s->pitch));
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
    const int64_t bytes = conv_mul_sat(conv_add_sat(elems, CONV_ALIGN), (int64_t)conv_dtype_size(dt));
    if (bytes > (int64_t)(SIZE_MAX / CONV_MAX_THREADS / 4)) return SIZE_MAX / CONV_MAX_THREADS / 2;
    return conv_accumulator_bytes(g, dt, threads) + ints_bytes(g) + conv_align_up((size_t)bytes);
}

size_t conv_phase_workspace(const conv_geom *g, conv_dtype dt, int threads) {
    return (size_t)threads * phase_region(g, dt, threads);
}

// A worker's view of its region, for one item.
typedef struct {
    phase_shape s;
    int64_t *offsets;           // kh*kw: tap (a, b)'s start in its channel's planes
    const int64_t *phase_h, *phase_w;
    char *planes, *out;         // out: Y (forward) or dyq (dw)
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
// Q zeros.
static void build_planes(const conv_run *r, const phase_item *it) {
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, q = it->s.pitch, prow = it->rows + it->s.reach_h;
    char *plane = it->planes;
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
                    memset(row, 0, (size_t)lo * elt);
                    r->k->gather(conv_at(row, lo, elt),
                                 conv_at(x_c, ihr * g->w + lo * g->stride_w + off_w, elt), hi - lo,
                                 g->stride_w);
                    memset(conv_at(row, hi, elt), 0, (size_t)(q - hi) * elt);
                }
                plane = conv_at(plane, prow * q, elt);
            }
    }
    memset(plane, 0, (size_t)q * elt);
}

static gemm_rows cols_of(const conv_geom *g, const phase_item *it) {
    const int64_t size = (it->rows + it->s.reach_h) * it->s.pitch;
    return (gemm_rows){it->s.nph_h * it->s.nph_w * size, 0, g->kh * g->kw, it->offsets};
}

// x (N,C,H,W), w (F,C/G,kh,kw), b (F) or NULL -> y (N,F,Ho,Wo)
static void forward_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, k = cg * g->kh * g->kw;
    const int64_t wo = conv_out_w(g), pixels = conv_out_h(g) * wo;
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const phase_item it = item_setup(r, worker, item);
        const int64_t q = it.s.pitch, n_cols = it.rows * q;
        build_planes(r, &it);
        char *y_g = conv_at(r->out, (it.n * g->f + it.grp * fg) * pixels + it.oh0 * wo, elt);
        const bool direct = q == wo;
        conv_gemm_call_rows(r, false, false, fg, n_cols, k, conv_at(r->w, it.grp * fg * k, elt),
                            k, it.planes, cols_of(g, &it),
                            r->b ? conv_at(r->b, it.grp * fg, elt) : NULL, false,
                            direct ? y_g : it.out, direct ? pixels : n_cols);
        if (direct) continue;
        for (int64_t f = 0; f < fg; f++)
            for (int64_t u = 0; u < it.rows; u++)
                memcpy(conv_at(y_g, f * pixels + u * wo, elt),
                       conv_at(it.out, f * n_cols + u * q, elt), (size_t)wo * elt);
    }
}

// dy (N,F,Ho,Wo), x (N,C,H,W) -> dw (F,C/G,kh,kw), or a worker's private partial sum of it.
static void backward_weights_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, k = cg * g->kh * g->kw;
    const int64_t wo = conv_out_w(g), pixels = conv_out_h(g) * wo;
    char *sum = worker == 0 ? r->out : region_of(r, worker);
    memset(sum, 0, (size_t)conv_numel_w(g) * elt);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const phase_item it = item_setup(r, worker, item);
        const int64_t q = it.s.pitch, n_cols = it.rows * q;
        build_planes(r, &it);
        const char *dy_g = conv_at(r->dy, (it.n * g->f + it.grp * fg) * pixels + it.oh0 * wo, elt);
        const bool direct = q == wo;
        if (!direct)
            for (int64_t f = 0; f < fg; f++)
                for (int64_t u = 0; u < it.rows; u++) {
                    char *row = conv_at(it.out, f * n_cols + u * q, elt);
                    memcpy(row, conv_at(dy_g, f * pixels + u * wo, elt), (size_t)wo * elt);
                    memset(conv_at(row, wo, elt), 0, (size_t)(q - wo) * elt);
                }
        conv_gemm_call_rows(r, false, true, fg, k, n_cols, direct ? dy_g : it.out,
                            direct ? pixels : n_cols, it.planes, cols_of(g, &it), NULL, true,
                            conv_at(sum, it.grp * fg * k, elt), k);
    }
}

// Runs a pass over chunks of output rows when the ISA has the GEMM and the scratch holds one
// region per worker; false (nothing done) else.
static bool run_phase(conv_run *r, conv_worker_fn worker) {
    const conv_geom *g = r->g;
    if (r->isa != CONV_ISA_AVX512) return false;
    const int64_t images = g->n * g->groups, ho = conv_out_h(g);
    if (!conv_plan_regions(r, conv_mul_sat(images, ho), phase_region)) return false;
    const phase_shape s = shape_of(g, r->dt, NULL);
    r->chunks = (ho + s.rows - 1) / s.rows;
    if (images * r->chunks < r->threads) {
        const int64_t want = (r->threads + images - 1) / images;
        r->chunks = want < ho ? want : ho;
    }
    r->items = images * r->chunks;
    conv_run_workers(r->threads, worker, r);
    return true;
}

bool conv_phase_forward(conv_run *r) { return run_phase(r, forward_worker); }

bool conv_phase_backward_weights(conv_run *r) {
    if (!run_phase(r, backward_weights_worker)) return false;
    conv_add_partial_sums(r);
    return true;
}
