// conv_shift: 1-d layers (H = 1, stride 1) with many taps per filter, all three passes as
// GEMMs on shifted rows, under AVX-512 (core/gemm.h's gemm_rows variant; no BLAS has one). The
// bias is added by the GEMM as it writes y (conv_gemm_call_rows).
//
// With x's rows zero-padded (xp, row length Wp = pl + W + pr), im2col's column matrix row
// (ch, b) is xp's row ch shifted by b*d: element t is xp_ch[t + b*d]. The GEMM reads those rows
// in place (gemm_rows {Wp, d, kw}) instead of their copy (K = C/G*kw rows of Wo each: 9 copies
// of x for layer (m), 75 MB per pass written and read back). Per image n and group g:
//   forward  y_g (F/G x Wo)  = w_g (F/G x K) * cols (K x Wo)
//   dx       dx_g (C/G x W)  = wt_g (C/G x K') * dys (K' x W), K' = F/G*kw: wt_g the group's
//            weights reordered (f, b) x ch, dys row (f, b) the padded dy row f shifted back by
//            b*d (dx pixel t meets dy pixel t + pl - b*d through tap b)
//   dw       dw_g (F/G x K) += dy_g (F/G x Wo) * cols^T (Wo x K)
// Measured on layer (m) (8x64x4096, F64, k9, p4), one thread, CPU time on a loaded machine:
// forward 21.9 -> 19.9 ms against the flat path, dx 28.3 -> 19.5 against the flat path, dw
// 20.4 -> 15.8 against im2col + GEMM (docs/PERFORMANCE.md). The flat register blocks are
// load-bound (6 loads per 8 FMAs); the GEMM's micro-kernel runs near the FMA peak.
//
// Items are (image, group, chunk of the row): chunks make the item count a multiple of the
// threads (8 images on 3 threads: 24 items, 8 each), so every worker gets the same work; dw's
// chunks sum into private accumulators (conv_add_partial_sums).
//
// Scratch: each worker's region is [dw accumulator | xp rows (C/G x Wp)], or for dx
// [wt_g (K' x C/G) | dy rows at pitch Wo + 2*(kw-1)*d, (kw-1)*d zeros either side].
#include <string.h>

#include "core/conv_internal.h"

// Below this many taps per filter the flat path's register blocks beat a GEMM whose k is
// short (its C tiles are loaded and stored once per k slice): the flat path's own bound.
#define SHIFT_MIN_TAPS 128
// Chunks of a row are at least this many outputs: a GEMM's column panels are 32 wide.
#define SHIFT_MIN_CHUNK 256

bool conv_shift_applies(const conv_geom *g) {
    return g->h == 1 && g->kh == 1 && g->pad_top == 0 && g->pad_bottom == 0 &&
           g->stride_w == 1 && !conv_is_depthwise(g) && !conv_is_pointwise(g) &&
           g->c / g->groups * g->kw > SHIFT_MIN_TAPS;
}

static int64_t padded_row(const conv_geom *g) { return g->w + g->pad_left + g->pad_right; }
static int64_t dy_margin(const conv_geom *g) { return (g->kw - 1) * g->dilation_w; }
static int64_t dy_pitch(const conv_geom *g) { return conv_out_w(g) + 2 * dy_margin(g); }

static size_t shift_region(const conv_geom *g, conv_dtype dt, int threads) {
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, elt = (int64_t)conv_dtype_size(dt);
    const int64_t xp = conv_mul_sat(cg, padded_row(g));
    const int64_t wt = conv_mul_sat(conv_mul_sat(fg, g->kw), cg);
    const int64_t dyp = conv_add_sat(wt, conv_mul_sat(fg, dy_pitch(g)));
    const int64_t bytes = conv_mul_sat(conv_add_sat(xp > dyp ? xp : dyp, CONV_ALIGN), elt);
    if (bytes > (int64_t)(SIZE_MAX / CONV_MAX_THREADS / 4)) return SIZE_MAX / CONV_MAX_THREADS / 2;
    return conv_accumulator_bytes(g, dt, threads) + conv_align_up((size_t)bytes);
}

size_t conv_shift_workspace(const conv_geom *g, conv_dtype dt, int threads) {
    return (size_t)threads * shift_region(g, dt, threads);
}

// Where an item works: image n, group grp, and the chunk [lo, hi) of a row of `len`.
typedef struct {
    int64_t n, grp, lo, hi;
} shift_item;

static shift_item item_at(const conv_run *r, int64_t item, int64_t len) {
    const int64_t chunk = item % r->chunks, ng = item / r->chunks;
    return (shift_item){.n = ng / r->g->groups,
                        .grp = ng % r->g->groups,
                        .lo = len * chunk / r->chunks,
                        .hi = len * (chunk + 1) / r->chunks};
}

static char *region_of(const conv_run *r, int worker) {
    return r->scratch + (size_t)worker * r->region_bytes;
}

// xp <- the group's C/G rows of image n, zero-padded (row length Wp).
static void pad_rows(const conv_run *r, char *xp, int64_t n, int64_t grp) {
    const conv_geom *g = r->g;
    const int64_t cg = g->c / g->groups, wp = padded_row(g);
    for (int64_t ch = 0; ch < cg; ch++) {
        char *row = conv_at(xp, ch * wp, r->elt);
        memset(row, 0, (size_t)g->pad_left * r->elt);
        memcpy(conv_at(row, g->pad_left, r->elt),
               conv_at(r->in, (n * g->c + grp * cg + ch) * g->w, r->elt), (size_t)g->w * r->elt);
        memset(conv_at(row, g->pad_left + g->w, r->elt), 0, (size_t)g->pad_right * r->elt);
    }
}

// x (N,C,1,W), w (F,C/G,1,kw), b (F) or NULL -> y (N,F,1,Wo)
static void forward_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, k = cg * g->kw, wo = conv_out_w(g);
    char *xp = region_of(r, worker) + r->accumulator;
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const shift_item it = item_at(r, item, wo);
        pad_rows(r, xp, it.n, it.grp);
        conv_gemm_call_rows(r, false, false, fg, it.hi - it.lo, k,
                            conv_at(r->w, it.grp * fg * k, elt), k, conv_at(xp, it.lo, elt),
                            (gemm_rows){padded_row(g), g->dilation_w, g->kw, NULL},
                            r->b ? conv_at(r->b, it.grp * fg, elt) : NULL, false,
                            conv_at(r->out, (it.n * g->f + it.grp * fg) * wo + it.lo, elt), wo);
    }
}

// dy (N,F,1,Wo), w (F,C/G,1,kw) -> dx (N,C,1,W)
static void backward_data_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, kw = g->kw, wo = conv_out_w(g);
    const int64_t margin = dy_margin(g), pitch = dy_pitch(g);
    char *wt = region_of(r, worker) + r->accumulator;
    char *dyp = conv_at(wt, fg * kw * cg, elt);
    int64_t first, end, grp_ready = -1;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const shift_item it = item_at(r, item, g->w);
        if (it.grp != grp_ready) { // wt[(f*kw + b)*cg + ch] = w[grp*fg + f][ch][b]
            for (int64_t f = 0; f < fg; f++)
                for (int64_t ch = 0; ch < cg; ch++)
                    for (int64_t b = 0; b < kw; b++)
                        memcpy(conv_at(wt, (f * kw + b) * cg + ch, elt),
                               conv_at(r->w, ((it.grp * fg + f) * cg + ch) * kw + b, elt), elt);
            grp_ready = it.grp;
        }
        for (int64_t f = 0; f < fg; f++) {
            char *row = conv_at(dyp, f * pitch, elt);
            memset(row, 0, (size_t)margin * elt);
            memcpy(conv_at(row, margin, elt),
                   conv_at(r->dy, (it.n * g->f + it.grp * fg + f) * wo, elt), (size_t)wo * elt);
            memset(conv_at(row, margin + wo, elt), 0, (size_t)margin * elt);
        }
        conv_gemm_call_rows(r, true, false, cg, it.hi - it.lo, fg * kw, wt, cg,
                            conv_at(dyp, margin + g->pad_left + it.lo, elt),
                            (gemm_rows){pitch, -g->dilation_w, kw, NULL}, NULL, false,
                            conv_at(r->out, (it.n * g->c + it.grp * cg) * g->w + it.lo, elt),
                            g->w);
    }
}

// dy (N,F,1,Wo), x (N,C,1,W) -> dw (F,C/G,1,kw), or a worker's private partial sum of it.
static void backward_weights_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, k = cg * g->kw, wo = conv_out_w(g);
    char *region = region_of(r, worker);
    char *xp = region + r->accumulator;
    char *sum = worker == 0 ? r->out : region;
    memset(sum, 0, (size_t)conv_numel_w(g) * elt);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const shift_item it = item_at(r, item, wo);
        pad_rows(r, xp, it.n, it.grp);
        conv_gemm_call_rows(r, false, true, fg, k, it.hi - it.lo,
                            conv_at(r->dy, (it.n * g->f + it.grp * fg) * wo + it.lo, elt), wo,
                            conv_at(xp, it.lo, elt),
                            (gemm_rows){padded_row(g), g->dilation_w, g->kw, NULL}, NULL, true,
                            conv_at(sum, it.grp * fg * k, elt), k);
    }
}

static int64_t gcd(int64_t a, int64_t b) {
    while (b) {
        const int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

// Runs a pass over rows of `len` outputs when the ISA has the GEMM and the scratch holds one
// region per worker; false (nothing done) else.
static bool run_shift(conv_run *r, conv_worker_fn worker, int64_t len) {
    const conv_geom *g = r->g;
    if (r->isa != CONV_ISA_AVX512) return false;
    const int64_t images = g->n * g->groups;
    const int64_t most = len / SHIFT_MIN_CHUNK > 1 ? len / SHIFT_MIN_CHUNK : 1;
    if (!conv_plan_regions(r, conv_mul_sat(images, most), shift_region)) return false;
    const int threads = r->threads;
    // The fewest chunks that make the items a multiple of the threads, within `most`.
    const int64_t even = threads / gcd(images, threads);
    r->chunks = even < most ? even : most;
    r->items = images * r->chunks;
    conv_run_workers(threads, worker, r);
    return true;
}

bool conv_shift_forward(conv_run *r) { return run_shift(r, forward_worker, conv_out_w(r->g)); }

bool conv_shift_backward_data(conv_run *r) {
    return run_shift(r, backward_data_worker, r->g->w);
}

bool conv_shift_backward_weights(conv_run *r) {
    if (!run_shift(r, backward_weights_worker, conv_out_w(r->g))) return false;
    conv_add_partial_sums(r);
    return true;
}
