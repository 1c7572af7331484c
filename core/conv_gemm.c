// conv_gemm: the general path, im2col + GEMM, for every pass of every layer.
//
// Per image n and group g the layer is three GEMMs over the column matrix col (K x P), whose
// row (ch, a, b') holds, for each of P output pixels, the input value that weight (ch, a, b')
// meets (zero in the padding); K = C/G*kh*kw:
//   forward          y_g  (F/G x P)  = w_g (F/G x K)   * col (K x P)
//   backward data    col  (K x P)    = w_g^T (K x F/G) * dy_g (F/G x P), then col2im adds
//                                      each column entry back onto the x position it came from
//   backward weights dw_g (F/G x K) += dy_g (F/G x P)  * col^T (P x K)
// P is a chunk of the Ho*Wo pixels: up to about 1 MiB of columns (COL_CHUNK_BYTES), as the
// scratch allows. A pointwise layer (1x1,
// stride 1, unpadded) reads x as its own column matrix; a strided 1x1 layer (unpadded) writes
// dx row by row from the columns (spread_rows) instead of zeroing it for col2im to add into.
//
// Scratch: each worker's region is [dw accumulator (more than one thread) | columns].
#include <stdio.h>
#include <string.h>

#include "core/conv_internal.h"

static size_t col_rows(const conv_geom *g) { return (size_t)(g->c / g->groups * g->kh * g->kw); }

// A chunk of columns is at most COL_CHUNK_BYTES, so that im2col writes it into the L2 cache
// (1 MiB per core on Zen 5) and the GEMM packs it from there, unless that leaves it fewer
// than COL_CHUNK_PIXELS pixels: each chunk's GEMM packs all of w anew. Measured on the stem
// (h) (147 rows, 12544 pixels per image, 7.4 MB of columns whole): one thread forward 8.2 ->
// 7.2 ms, backward 17.3 -> 15.3; two threads forward 4.4 -> 3.6 (0.5 MiB chunks 3.7, 0.25
// MiB 3.9). (f) (576 rows, 784 pixels) stays whole: in 1 MiB chunks of 392 pixels it ran
// 3.6-4.0 ms against 3.2 (two threads).
#define COL_CHUNK_BYTES ((int64_t)1 << 20)
#define COL_CHUNK_PIXELS 1024

// The most pixels a chunk of columns holds for the caches' sake (the workspace may hold fewer).
static int64_t chunk_pixels_max(const conv_geom *g, conv_dtype dt) {
    const int64_t pixels = conv_out_h(g) * conv_out_w(g);
    int64_t cache = COL_CHUNK_BYTES / (int64_t)(col_rows(g) * conv_dtype_size(dt));
    if (cache < COL_CHUNK_PIXELS) cache = COL_CHUNK_PIXELS;
    return cache < pixels ? cache : pixels;
}

size_t conv_gemm_region_min(const conv_geom *g, conv_dtype dt, int threads) {
    size_t cols = conv_is_pointwise(g) ? 0 : conv_align_up(col_rows(g) * conv_dtype_size(dt));
    return conv_accumulator_bytes(g, dt, threads) + cols;
}

size_t conv_gemm_workspace(const conv_geom *g, conv_dtype dt, int threads, size_t cap) {
    // A whole chunk of columns: conv_mul_sat keeps absurd layers at INT64_MAX, then at the cap.
    int64_t chunk = conv_mul_sat(conv_mul_sat((int64_t)col_rows(g), chunk_pixels_max(g, dt)),
                                 (int64_t)conv_dtype_size(dt));
    int64_t cols = conv_is_pointwise(g) ? 0 : conv_add_sat(chunk, CONV_ALIGN);
    int64_t full = conv_mul_sat(
        threads, conv_add_sat((int64_t)conv_accumulator_bytes(g, dt, threads), cols));
    return (uint64_t)full > cap ? cap : (size_t)full;
}

// One run of a column-matrix row: the row's entries for output pixels of one output row,
// `run` of them from entry `at` of the chunk's row-major matrix, entries [lo, hi) of the run
// reading input row ih (of channel ch's plane) from column iw, every stride_w-th (none when
// the run lies in the padding: lo == hi).
typedef struct {
    int64_t ch, ih, iw, lo, hi, run, at;
} col_run;
// What a walk's runs move: from x into the columns (im2col), from the columns into dx (col2im).
typedef struct {
    char *to;
    const char *from;
} col_io;

// A 1x1 kernel with a stride and no padding: its columns are x's rows oh*sh, every sw-th
// element, and dx is zero but there.
static bool is_strided_1x1(const conv_geom *g) {
    return g->kh == 1 && g->kw == 1 && g->pad_top == 0 && g->pad_bottom == 0 &&
           g->pad_left == 0 && g->pad_right == 0 && !conv_is_pointwise(g);
}

// Calls visit for every run of the column matrix's rows (channel, tap) over output pixels
// [p0, p1): the walk im2col, col2im and spread_rows share. Inlined into each, with its visit.
static inline __attribute__((always_inline)) void
walk_columns(const conv_run *r, int64_t channels, int64_t p0, int64_t p1,
             void (*visit)(const conv_run *r, const col_run *run, const col_io *io),
             const col_io *io) {
    const conv_geom *g = r->g;
    const int64_t wo = conv_out_w(g);
    col_run c = {.at = 0};
    for (c.ch = 0; c.ch < channels; c.ch++)
        for (int64_t a = 0; a < g->kh; a++)
            for (int64_t b = 0; b < g->kw; b++) {
                const int64_t off_h = a * g->dilation_h - g->pad_top;
                const int64_t off_w = b * g->dilation_w - g->pad_left;
                int64_t row = p0 / wo, oc = p0 % wo;
                for (int64_t p = p0; p < p1; row++, oc = 0) {
                    c.run = wo - oc < p1 - p ? wo - oc : p1 - p;
                    c.ih = row * g->stride_h + off_h;
                    c.lo = c.hi = 0;
                    if (c.ih >= 0 && c.ih < g->h)
                        conv_valid_span(oc, c.run, g->stride_w, off_w, g->w, &c.lo, &c.hi);
                    c.iw = (oc + c.lo) * g->stride_w + off_w;
                    visit(r, &c, io);
                    c.at += c.run;
                    p += c.run;
                }
            }
}

// im2col's run: the entries from x, zeros in the padding.
static void take_run(const conv_run *r, const col_run *c, const col_io *io) {
    const size_t elt = r->elt;
    char *col = conv_at(io->to, c->at, elt);
    memset(col, 0, (size_t)c->lo * elt);
    if (c->hi > c->lo) {
        const char *src =
            conv_at(io->from, (c->ch * r->g->h + c->ih) * r->g->w + c->iw, elt);
        if (r->g->stride_w == 1)
            memcpy(conv_at(col, c->lo, elt), src, (size_t)(c->hi - c->lo) * elt);
        else
            r->k->gather(conv_at(col, c->lo, elt), src, c->hi - c->lo, r->g->stride_w);
    }
    memset(conv_at(col, c->hi, elt), 0, (size_t)(c->run - c->hi) * elt);
}

// x_c (channels,H,W) -> col (channels*kh*kw, p1-p0): output pixels p0..p1-1 of one image.
static void im2col(const conv_run *r, char *col, const char *x_c, int64_t channels, int64_t p0,
                   int64_t p1) {
    walk_columns(r, channels, p0, p1, take_run, &(col_io){col, x_c});
}

// col2im's run: the entries that came from x added back onto it.
static void add_run(const conv_run *r, const col_run *c, const col_io *io) {
    const size_t elt = r->elt;
    if (c->hi > c->lo)
        r->k->scatter(conv_at(io->to, (c->ch * r->g->h + c->ih) * r->g->w + c->iw, elt),
                      conv_at(io->from, c->at + c->lo, elt), c->hi - c->lo, r->g->stride_w, 1.0);
}

// col (channels*kh*kw, p1-p0) -> dx_c (channels,H,W) += each entry at the position im2col
// read it from; entries that came from the padding are dropped.
static void col2im_add(const conv_run *r, char *dx_c, const char *col, int64_t channels,
                       int64_t p0, int64_t p1) {
    walk_columns(r, channels, p0, p1, add_run, &(col_io){dx_c, col});
}

// spread_rows's run (a strided 1x1 layer's: whole in x, one per channel and output row):
// row ih of dx from column iw on, the run's entries sw apart with zeros between, to the next
// run's start or the row's end; when the run ends its output row, the rows of dx below it up
// to the next run's (or dx's end) are zero.
static void spread_run(const conv_run *r, const col_run *c, const col_io *io) {
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t sw = g->stride_w, last = c->iw + (c->run - 1) * sw;
    const bool row_done = last == (conv_out_w(g) - 1) * sw;
    const int64_t end = row_done ? g->w : last + sw;
    char *row = conv_at(io->to, (c->ch * g->h + c->ih) * g->w, elt);
    memset(conv_at(row, c->iw, elt), 0, (size_t)(end - c->iw) * elt);
    r->k->place(conv_at(row, c->iw, elt), conv_at(io->from, c->at, elt), c->run, sw);
    if (row_done) {
        const int64_t below = c->ih + g->stride_h < g->h ? g->stride_h - 1 : g->h - 1 - c->ih;
        memset(conv_at(row, g->w, elt), 0, (size_t)(below * g->w) * elt);
    }
}

// col (channels, p1-p0) -> dx_c (channels,H,W) for a strided 1x1 layer (is_strided_1x1): the
// rows of dx that output pixels p0..p1-1 reach, each element written once, in order. No pass
// zeroes dx first and none reads it back: on (j) (8x128x56x56, stride 2) that zeroing and
// col2im's read-modify-write of dx were 18% of dx's time.
static void spread_rows(const conv_run *r, char *dx_c, const char *col, int64_t channels,
                        int64_t p0, int64_t p1) {
    walk_columns(r, channels, p0, p1, spread_run, &(col_io){dx_c, col});
}

// The item's image, group and chunk [lo, hi) out of `total` (pixels or channels).
static void item_place(const conv_run *r, int64_t item, int64_t total, int64_t *n, int64_t *grp,
                       int64_t *lo, int64_t *hi) {
    int64_t chunk = item % r->chunks, ng = item / r->chunks;
    *n = ng / r->g->groups;
    *grp = ng % r->g->groups;
    *lo = total * chunk / r->chunks;
    *hi = total * (chunk + 1) / r->chunks;
}

static char *region_of(const conv_run *r, int worker) {
    return r->scratch + (size_t)worker * r->region_bytes;
}

// The GEMM's columns for pixel-chunk item `item` (image *n, group *grp, output pixels
// [*p0, *p1) of `pixels`): x itself when the layer is pointwise (kernel 1, stride 1, no
// padding), else its im2col into `col`. *ld gets their leading dimension.
static const char *item_columns(const conv_run *r, char *col, int64_t item, int64_t pixels,
                                int64_t *n, int64_t *grp, int64_t *p0, int64_t *p1, int64_t *ld) {
    const conv_geom *g = r->g;
    item_place(r, item, pixels, n, grp, p0, p1);
    const int64_t cg = g->c / g->groups, hw = g->h * g->w;
    const char *x_g = conv_at(r->in, (*n * g->c + *grp * cg) * hw, r->elt);
    if (conv_is_pointwise(g)) {
        *ld = hw;
        return conv_at(x_g, *p0, r->elt);
    }
    im2col(r, col, x_g, cg, *p0, *p1);
    *ld = *p1 - *p0;
    return col;
}

// x (N,C,H,W), w (F,C/G,kh,kw), b (F) or NULL -> y (N,F,Ho,Wo); items are pixel chunks.
static void forward_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, k = cg * g->kh * g->kw;
    const int64_t pixels = conv_out_h(g) * conv_out_w(g);
    char *col = region_of(r, worker) + r->accumulator;
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        int64_t n, grp, p0, p1, ld_cols;
        const char *cols = item_columns(r, col, item, pixels, &n, &grp, &p0, &p1, &ld_cols);
        // The bias goes in with the product (conv_gemm_call_rows): y written once.
        conv_gemm_call_rows(r, false, false, fg, p1 - p0, k, conv_at(r->w, grp * fg * k, elt), k,
                            cols, (gemm_rows){ld_cols, 0, 1, NULL},
                            r->b ? conv_at(r->b, grp * fg, elt) : NULL, false,
                            conv_at(r->out, (n * g->f + grp * fg) * pixels + p0, elt), pixels);
    }
}

// dy (N,F,Ho,Wo), w (F,C/G,kh,kw) -> dx (N,C,H,W); items are channel ranges, which write
// disjoint parts of dx, so no two workers ever add into the same place.
static void backward_data_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, khw = g->kh * g->kw;
    const int64_t k = cg * khw, hw = g->h * g->w, pixels = conv_out_h(g) * conv_out_w(g);
    char *col = region_of(r, worker) + r->accumulator;
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        int64_t n, grp, c0, c1;
        item_place(r, item, cg, &n, &grp, &c0, &c1);
        char *dx_c = conv_at(r->out, (n * g->c + grp * cg + c0) * hw, elt);
        const char *dy_g = conv_at(r->dy, (n * g->f + grp * fg) * pixels, elt);
        const char *w_c = conv_at(r->w, grp * fg * k + c0 * khw, elt); // columns c0*khw.. of w_g
        if (conv_is_pointwise(g)) {
            conv_gemm_call(r, true, false, c1 - c0, hw, fg, w_c, k, dy_g, pixels, false, dx_c, hw);
            continue;
        }
        const bool spread = is_strided_1x1(g);
        if (!spread) memset(dx_c, 0, (size_t)((c1 - c0) * hw) * elt);
        for (int64_t p0 = 0; p0 < pixels; p0 += r->col_pixels) {
            int64_t p1 = p0 + r->col_pixels < pixels ? p0 + r->col_pixels : pixels;
            conv_gemm_call(r, true, false, (c1 - c0) * khw, p1 - p0, fg, w_c, k,
                           conv_at(dy_g, p0, elt), pixels, false, col, p1 - p0);
            if (spread)
                spread_rows(r, dx_c, col, c1 - c0, p0, p1);
            else
                col2im_add(r, dx_c, col, c1 - c0, p0, p1);
        }
    }
}

// dy (N,F,Ho,Wo), x (N,C,H,W) -> dw (F,C/G,kh,kw), or a worker's private partial sum of it.
static void backward_weights_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, k = cg * g->kh * g->kw;
    const int64_t pixels = conv_out_h(g) * conv_out_w(g);
    char *region = region_of(r, worker);
    char *col = region + r->accumulator;
    char *sum = worker == 0 ? r->out : region;
    memset(sum, 0, (size_t)conv_numel_w(g) * elt);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        int64_t n, grp, p0, p1, ld_cols;
        const char *cols = item_columns(r, col, item, pixels, &n, &grp, &p0, &p1, &ld_cols);
        conv_gemm_call(r, false, true, fg, k, p1 - p0,
                       conv_at(r->dy, (n * g->f + grp * fg) * pixels + p0, elt), pixels, cols,
                       ld_cols, true, conv_at(sum, grp * fg * k, elt), k);
    }
}

// Sets up a pass over chunks of pixels (or, for dx, of channels) per (image, group) and runs
// it on the workers: as many threads as the workspace holds regions for, columns as large as
// a region holds, and at least enough chunks overall to give every thread work.
static conv_status run_pass(conv_run *r, conv_worker_fn worker, bool chunk_channels,
                            conv_error *err) {
    const conv_geom *g = r->g;
    const conv_exec *ex = r->ex;
    int64_t images = g->n * g->groups, cg = g->c / g->groups;
    int64_t pixels = conv_out_h(g) * conv_out_w(g);
    // Plan with the most pieces the pass could be cut into, then cut it for that many threads.
    r->threads = conv_plan_threads(r, images * (chunk_channels ? cg : pixels));
    size_t need = conv_workspace_min(g, r->dt, r->threads);
    if (ex->workspace_bytes < need || (need > 0 && !ex->workspace)) {
        if (err) {
            err->field = "workspace";
            snprintf(err->message, sizeof err->message,
                     "the workspace has %zu bytes but this layer needs at least %zu",
                     ex->workspace_bytes, need);
        }
        return CONV_EWORKSPACE;
    }
    r->scratch = ex->workspace;
    r->region_bytes = ex->workspace_bytes / (size_t)r->threads / CONV_ALIGN * CONV_ALIGN;
    r->accumulator = conv_accumulator_bytes(g, r->dt, r->threads);
    r->col_pixels = 0;
    if (!conv_is_pointwise(g)) {
        int64_t fit = (int64_t)((r->region_bytes - r->accumulator) / (col_rows(g) * r->elt));
        if (fit > chunk_pixels_max(g, r->dt)) fit = chunk_pixels_max(g, r->dt);
        // Chunks of equal size: 12544 pixels in chunks of at most 1783 are 8 of 1568.
        r->col_pixels = fit < pixels ? (pixels + (pixels + fit - 1) / fit - 1) /
                                           ((pixels + fit - 1) / fit)
                                     : pixels;
    }
    if (chunk_channels) {
        int64_t want = (r->threads + images - 1) / images;
        r->chunks = images >= r->threads ? 1 : want < cg ? want : cg;
    } else {
        r->chunks = r->col_pixels > 0 ? (pixels + r->col_pixels - 1) / r->col_pixels : 1;
        if (images * r->chunks < r->threads) {
            int64_t want = (r->threads + images - 1) / images;
            r->chunks = want < pixels ? want : pixels;
        }
    }
    r->items = images * r->chunks;
    conv_run_workers(r->threads, worker, r);
    return CONV_OK;
}

conv_status conv_gemm_forward(conv_run *r, conv_error *err) {
    return run_pass(r, forward_worker, false, err);
}

conv_status conv_gemm_backward_data(conv_run *r, conv_error *err) {
    return run_pass(r, backward_data_worker, true, err);
}

conv_status conv_gemm_backward_weights(conv_run *r, conv_error *err) {
    conv_status st = run_pass(r, backward_weights_worker, false, err);
    if (st == CONV_OK) conv_add_partial_sums(r);
    return st;
}
