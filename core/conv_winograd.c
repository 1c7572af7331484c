// conv_winograd: 3x3 kernels with stride 1 (any dilation) by Winograd's minimal filtering
// F(2x2,3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015): 16
// multiplies per 2x2 output tile and channel pair instead of 36, for all three passes.
//
// Forward and backward data are one correlation of a stack of input planes with 3x3 kernels:
//   forward  y[f] = sum_c x[c] (*) w[f,c],                input offset (-pt, -pl)
//   dx       dx[c] = sum_f dy[f] (*) rot180(w[f,c]),      input offset (pt-2d, pl-2d)
// (dx is the 3x3 stride-1 correlation of the zero-padded dy with the flipped kernel; an offset
// beyond the plane reads zeros, so any padding works). Under dilation d each of the d_h*d_w
// phases of the output (its rows and columns of one remainder modulo d) is an undilated
// correlation of one phase of the input: the transforms read and write phase planes (every
// d-th row and column, conv_wino_plane), and the GEMMs never know.
// Per group, with the kernels transformed once (U[e] (out x in) = G k G^T, e < 16) and tiles
// taken in batches of T:
//   V[e] (in x T) = B^T d B per input plane and tile      (conv_kernels.h: wino_input)
//   M[e] (out x T) = U[e] * V[e]                          16 GEMMs (conv_gemm_call)
//   out tile = A^T M A (+ bias) per output plane and tile (wino_output)
// Backward weights is the transpose of the forward's algebra: per tile the transformed
// gradient Z = A dY A^T and V as above, summed as 16 GEMMs acc[e] (F/G x C/G) += Z[e] V[e]^T
// over every tile of every image, then dw = G^T acc G.
//
// Scratch: [transformed kernels, 16*F*C/G | one region per worker], a region being
// [dw accumulator, 16*F*C/G (backward weights) | V, 16*C/G*T | M or Z, 16*F/G*T | rows],
// rows being the transforms' zero-padded input rows (CONV_WINO_ROWS(T)), and V's and M's 16
// matrices a few cache lines apart (conv_wino_e_stride).
// A batch takes T tiles in order across the images of one group, T as large as a region
// holds up to WINO_BATCH_BYTES of tiles.
#include <stdio.h>
#include <string.h>

#include "core/conv_internal.h"
#include "core/gemm.h"

// Tiles per batch: enough that repacking U[e] (F/G x C/G) for each of the 16 GEMMs is small
// next to their arithmetic, few enough that V and M stay in the last-level cache.
#define WINO_BATCH_BYTES ((size_t)4 << 20)
#define WINO_BATCH_MAX 512

bool conv_winograd_applies(const conv_geom *g) {
    return g->kh == 3 && g->kw == 3 && g->stride_h == 1 && g->stride_w == 1;
}

// The transformed kernels' (and a dw sum's) matrices, F/G x C/G each, 16 per group.
static int64_t u_step(const conv_geom *g, size_t elt) {
    return conv_wino_e_stride(g->f / g->groups, g->c / g->groups, elt);
}
// Bytes of the transformed kernels (and of a dw accumulator): 16 per 3x3 kernel.
static size_t kernels_bytes(const conv_geom *g, conv_dtype dt) {
    const size_t elt = conv_dtype_size(dt);
    return conv_align_up((size_t)(16 * g->groups * u_step(g, elt)) * elt);
}
// Bytes of one tile's V and M (or Z) columns, and of its share of the transforms' rows.
static size_t tile_bytes(const conv_geom *g, conv_dtype dt) {
    return (size_t)(16 * (g->c / g->groups + g->f / g->groups) + CONV_WINO_ROWS(1)) *
           conv_dtype_size(dt);
}
static int64_t tiles_of(int64_t out) { return (out + 1) / 2; }
// Elements of a plane's axis of `size` whose index is `first` modulo d.
static int64_t phase_len(int64_t size, int64_t first, int64_t d) {
    return size > first ? (size - first + d - 1) / d : 0;
}
// Tiles along an output axis of `size`: those of its phase 0, the longest.
static int64_t axis_tiles(int64_t size, int64_t d) { return tiles_of(phase_len(size, 0, d)); }
// The phases of an output axis of `size` that hold an output: a dilation beyond the output's
// size leaves the others empty (and a hostile one would make billions of them).
static int64_t axis_phases(int64_t size, int64_t d) { return d < size ? d : size; }
// Tiles of the pass whose output planes are out_h x out_w: for every image and phase.
static int64_t pass_tiles(const conv_geom *g, int64_t out_h, int64_t out_w) {
    const int64_t phases =
        axis_phases(out_h, g->dilation_h) * axis_phases(out_w, g->dilation_w);
    return conv_mul_sat(conv_mul_sat(g->n, phases),
                        axis_tiles(out_h, g->dilation_h) * axis_tiles(out_w, g->dilation_w));
}

// The batch a worker region aims for: WINO_BATCH_BYTES of tiles, at most all of the batch's
// (tiles are batched across images).
static int64_t batch_target(const conv_geom *g, conv_dtype dt) {
    int64_t t = (int64_t)(WINO_BATCH_BYTES / tile_bytes(g, dt));
    int64_t all = pass_tiles(g, conv_out_h(g), conv_out_w(g));
    const int64_t dx_all = pass_tiles(g, g->h, g->w);
    if (dx_all > all) all = dx_all;
    if (t > WINO_BATCH_MAX) t = WINO_BATCH_MAX;
    if (t > all) t = all;
    return t < 1 ? 1 : t;
}


static size_t region_bytes(const conv_geom *g, conv_dtype dt, int64_t batch) {
    return kernels_bytes(g, dt) + conv_align_up((size_t)batch * tile_bytes(g, dt)) +
           CONV_WINO_STRIDE_SLACK;
}

size_t conv_winograd_workspace(const conv_geom *g, conv_dtype dt, int threads) {
    return kernels_bytes(g, dt) + (size_t)threads * region_bytes(g, dt, batch_target(g, dt));
}

size_t conv_winograd_workspace_min(const conv_geom *g, conv_dtype dt) {
    return kernels_bytes(g, dt) + region_bytes(g, dt, 1);
}

// One correlation (forward or dx) or the dw sum, as the workers see it. With dilation d the
// planes split into d_h*d_w phases (rows and columns of one remainder modulo d), and each
// phase of the output is a dilation-1 correlation of one phase of the input: the tiles are
// those of every phase of every image, an image's phases all tiled as its phase 0, the
// largest (a tile past a smaller phase's edge reads zeros and stores nothing).
typedef struct {
    const conv_run *r;
    const char *in;     // (N, groups*ig, hi, wi): x (dw too), or dy for dx
    char *out;          // (N, groups*og, ho, wo): y or dx (dw reads dy, of that shape)
    int64_t ig, og, hi, wi, ho, wo;
    int64_t off_h, off_w; // where an output's first tap reads the input, before the phases
    bool flip;          // the kernels rotated (dx)
    int64_t tiles_w, tiles; // 2x2 tiles of one output phase plane, and of a row
    char *u;            // transformed kernels [group][e][og][ig], or worker 0's dw sum
    int64_t u_step;     // elements from one e to the next in u (u_step())
    char *regions;
    size_t region;
    int64_t batch, batches; // tiles per batch (across images), batches per group
    int threads;
    int64_t items;      // groups * batches
} wino_plan;

static char *region_of(const wino_plan *p, int worker) {
    return p->regions + (size_t)worker * p->region;
}

// Phase image `image` of a pass: with e_h x e_w phases per image (axis_phases), image
// image / (e_h*e_w), output phase (a_h, a_w) = (image / e_w % e_h, image % e_w). Output
// (a + d*u) reads input (a + off + d*(u + i)) through tap i, i.e. phase s = (a + off) mod d of
// the input from its element q = floor((a + off) / d).
typedef struct {
    int64_t n;                // the image
    int64_t out_at, in_at;    // the phase planes' first elements within a tensor's plane
    conv_wino_plane out, in;
    int64_t off_h, off_w;     // q: the input offset in phase units
} wino_phase;

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }

static wino_phase phase_of(const wino_plan *p, int64_t image) {
    const int64_t dh = p->r->g->dilation_h, dw = p->r->g->dilation_w;
    const int64_t eh = axis_phases(p->ho, dh), ew = axis_phases(p->wo, dw);
    const int64_t ah = image / ew % eh, aw = image % ew;
    const int64_t qh = floor_div(ah + p->off_h, dh), qw = floor_div(aw + p->off_w, dw);
    const int64_t sh = ah + p->off_h - qh * dh, sw = aw + p->off_w - qw * dw;
    return (wino_phase){
        .n = image / (eh * ew),
        .out_at = ah * p->wo + aw,
        .in_at = sh * p->wi + sw,
        .out = {phase_len(p->ho, ah, dh), phase_len(p->wo, aw, dw), dh * p->wo, dw},
        .in = {phase_len(p->hi, sh, dh), phase_len(p->wi, sw, dw), dh * p->wi, dw},
        .off_h = qh,
        .off_w = qw,
    };
}

// Sets the tiles, the threads and the batch that the workspace allows, or fails.
static conv_status plan(wino_plan *p, const conv_run *r, conv_error *err) {
    const conv_geom *g = r->g;
    const conv_exec *ex = r->ex;
    p->r = r;
    p->tiles_w = axis_tiles(p->wo, g->dilation_w);
    p->tiles = axis_tiles(p->ho, g->dilation_h) * p->tiles_w;
    const size_t shared = kernels_bytes(g, r->dt);
    if (!ex->workspace || ex->workspace_bytes < conv_winograd_workspace_min(g, r->dt)) {
        if (err) {
            err->field = "workspace";
            snprintf(err->message, sizeof err->message,
                     "the workspace has %zu bytes but Winograd needs at least %zu for this layer",
                     ex->workspace_bytes, conv_winograd_workspace_min(g, r->dt));
        }
        return CONV_EWORKSPACE;
    }
    const int64_t all = pass_tiles(g, p->ho, p->wo), target = batch_target(g, r->dt);
    int threads = conv_plan_threads(r, g->groups * ((all + target - 1) / target));
    size_t each;
    while ((each = (ex->workspace_bytes - shared) / (size_t)threads / CONV_ALIGN * CONV_ALIGN) <
               region_bytes(g, r->dt, 1) &&
           threads > 1)
        threads--;
    const int64_t room =
        (int64_t)((each - kernels_bytes(g, r->dt) - CONV_WINO_STRIDE_SLACK) / tile_bytes(g, r->dt));
    int64_t batch = room < target ? room : target;
    // Whole rounds of even batches, when the tiles allow: workers take contiguous runs of
    // items, so 392 tiles in batches of 127 (127, 127, 127, 11) gave one of two workers 254
    // tiles and the other 138, a 1.54x speedup from the second thread at best.
    // And a whole number of the GEMM's tile width, rounding down, where that keeps the count:
    // 98 tiles of (c)'s 392 made 16 GEMMs of 4 tiles of 32 columns, 30 of them computed for
    // nothing. The remnant joins the last batch (96, 96, 96, 104): as a batch of its own (8)
    // it cost one worker a third repacking of the 16 transformed kernels.
    int64_t batches = (all + batch - 1) / batch;
    while ((g->groups * batches) % threads && batches < all) batches++;
    batch = (all + batches - 1) / batches;
    const int64_t tile_width = GEMM_NR_BYTES / (int64_t)r->elt;
    const int64_t rounded = batch / tile_width * tile_width;
    if (rounded > 0 && all / rounded == batches && all - (batches - 1) * rounded <= room)
        batch = rounded;
    else
        batches = (all + batch - 1) / batch;
    p->batch = batch;
    p->batches = batches;
    p->threads = threads;
    p->items = g->groups * p->batches;
    p->u = ex->workspace;
    p->u_step = u_step(g, r->elt);
    p->regions = (char *)ex->workspace + shared;
    p->region = each;
    return CONV_OK;
}

// A batch's tiles go by segments within one phase image: segment `at` of the item's batch (its
// tiles at .. at+*count-1) is phase image *n's tiles *t0 .. *t0+*count-1. *grp is the item's
// group; returns the batch's tile count.
static int64_t batch_of(const wino_plan *p, int64_t item, int64_t *grp) {
    const int64_t b = item % p->batches, all = pass_tiles(p->r->g, p->ho, p->wo);
    *grp = item / p->batches;
    return b == p->batches - 1 ? all - b * p->batch : p->batch;
}
static void segment(const wino_plan *p, int64_t item, int64_t at, int64_t size, int64_t *n,
                    int64_t *t0, int64_t *count) {
    const int64_t first = item % p->batches * p->batch + at;
    *n = first / p->tiles;
    *t0 = first % p->tiles;
    *count = p->tiles - *t0 < size - at ? p->tiles - *t0 : size - at;
}

// V[e][i][at + k] (i < ig, the columns `size` long) <- the transformed tiles t0 + k (k <
// count) of phase image n's input planes of group grp.
static void transform_input(const wino_plan *p, char *v, int64_t v_step, int64_t size,
                            int64_t at, int64_t grp, int64_t n, int64_t t0, int64_t count,
                            char *rows) {
    const conv_run *r = p->r;
    const wino_phase ph = phase_of(p, n);
    const int64_t plane = p->hi * p->wi;
    const char *in =
        conv_at(p->in, (ph.n * r->g->groups + grp) * p->ig * plane + ph.in_at, r->elt);
    for (int64_t i = 0; i < p->ig; i++)
        r->k->wino_input(conv_at(v, i * size + at, r->elt), v_step, conv_at(in, i * plane, r->elt),
                         &ph.in, ph.off_h, ph.off_w, p->tiles_w, t0, count, rows);
}

// The outputs of tiles t0 .. t0+count-1 of phase image n (columns at.. of M) into the output
// planes of group grp, plus their bias.
static void transform_output(const wino_plan *p, const char *m, int64_t m_step, int64_t size,
                             int64_t at, int64_t grp, int64_t n, int64_t t0, int64_t count,
                             char *rows) {
    const conv_run *r = p->r;
    const wino_phase ph = phase_of(p, n);
    const int64_t plane = p->ho * p->wo;
    char *out = conv_at(p->out, (ph.n * r->g->groups + grp) * p->og * plane + ph.out_at, r->elt);
    for (int64_t o = 0; o < p->og; o++) {
        const double bias = r->b ? conv_load(r->b, grp * p->og + o, r->dt) : 0;
        r->k->wino_output(conv_at(out, o * plane, r->elt), &ph.out, p->tiles_w, t0, count,
                          conv_at(m, o * size + at, r->elt), m_step, bias, rows);
    }
}

// Z[e][f][at + k] (f < og, the columns `size` long) <- the transformed output gradients of
// tiles t0 + k (k < count) of phase image n, from dy's planes of group grp.
static void transform_grad(const wino_plan *p, char *z, int64_t z_step, int64_t size,
                           int64_t at, int64_t grp, int64_t n, int64_t t0, int64_t count,
                           char *rows) {
    const conv_run *r = p->r;
    const wino_phase ph = phase_of(p, n);
    const int64_t plane = p->ho * p->wo;
    const char *dy =
        conv_at(r->dy, (ph.n * r->g->groups + grp) * p->og * plane + ph.out_at, r->elt);
    for (int64_t f = 0; f < p->og; f++)
        r->k->wino_grad(conv_at(z, f * size + at, r->elt), z_step, conv_at(dy, f * plane, r->elt),
                        &ph.out, p->tiles_w, t0, count, rows);
}

// w (F,C/G,3,3) -> U [group][e][og][ig]; items are (group, o), each ig kernels.
static void transform_kernels_worker(void *arg, int worker) {
    const wino_plan *p = arg;
    const conv_run *r = p->r;
    const int64_t cg = r->g->c / r->g->groups, fg = r->g->f / r->g->groups;
    int64_t first, end;
    conv_item_range(r->g->groups * p->og, p->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t grp = item / p->og, o = item % p->og;
        // forward: o is a filter, its kernels the channels'; dx: o is a channel, its kernels
        // (rotated) the filters'
        const int64_t first_w = p->flip ? (grp * fg * cg + o) * 9 : (grp * fg + o) * cg * 9;
        r->k->wino_kernel(conv_at(p->u, (grp * 16 * p->u_step) + o * p->ig, r->elt),
                          p->u_step, conv_at(r->w, first_w, r->elt),
                          p->flip ? cg * 9 : 9, p->ig, p->flip);
    }
}

// The correlation's tiles: items are (group, batch of tiles across images).
static void correlate_worker(void *arg, int worker) {
    const wino_plan *p = arg;
    const conv_run *r = p->r;
    const size_t elt = r->elt;
    char *v = region_of(p, worker) + kernels_bytes(r->g, r->dt);
    int64_t first, end;
    conv_item_range(p->items, p->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        int64_t grp;
        const int64_t size = batch_of(p, item, &grp);
        const int64_t v_step = conv_wino_e_stride(p->ig, size, elt);
        const int64_t m_step = conv_wino_e_stride(p->og, size, elt);
        char *m = conv_at(v, 16 * v_step, elt);
        char *rows = conv_at(m, 16 * m_step, elt);
        for (int64_t at = 0, n, t0, count; at < size; at += count) {
            segment(p, item, at, size, &n, &t0, &count);
            transform_input(p, v, v_step, size, at, grp, n, t0, count, rows);
        }
        const char *u = conv_at(p->u, grp * 16 * p->u_step, elt);
        for (int e = 0; e < 16; e++)
            conv_gemm_call(r, false, false, p->og, size, p->ig,
                           conv_at(u, e * p->u_step, elt), p->ig,
                           conv_at(v, e * v_step, elt), size, false,
                           conv_at(m, e * m_step, elt), size);
        for (int64_t at = 0, n, t0, count; at < size; at += count) {
            segment(p, item, at, size, &n, &t0, &count);
            transform_output(p, m, m_step, size, at, grp, n, t0, count, rows);
        }
    }
}

static conv_status correlate(wino_plan *p, conv_run *r, conv_error *err) {
    conv_status st = plan(p, r, err);
    if (st != CONV_OK) return st;
    conv_run_workers(p->threads, transform_kernels_worker, p);
    conv_run_workers(p->threads, correlate_worker, p);
    return CONV_OK;
}

// x (N,C,H,W), w (F,C/G,3,3), b (F) or NULL -> y (N,F,Ho,Wo)
conv_status conv_winograd_forward(conv_run *r, conv_error *err) {
    const conv_geom *g = r->g;
    wino_plan p = {.in = r->in, .out = r->out, .ig = g->c / g->groups, .og = g->f / g->groups,
                   .hi = g->h, .wi = g->w, .ho = conv_out_h(g), .wo = conv_out_w(g),
                   .off_h = -g->pad_top, .off_w = -g->pad_left};
    return correlate(&p, r, err);
}

// dy (N,F,Ho,Wo), w (F,C/G,3,3) -> dx (N,C,H,W)
conv_status conv_winograd_backward_data(conv_run *r, conv_error *err) {
    const conv_geom *g = r->g;
    wino_plan p = {.in = r->dy, .out = r->out, .ig = g->f / g->groups, .og = g->c / g->groups,
                   .hi = conv_out_h(g), .wi = conv_out_w(g), .ho = g->h, .wo = g->w,
                   .off_h = g->pad_top - 2 * g->dilation_h,
                   .off_w = g->pad_left - 2 * g->dilation_w, .flip = true};
    return correlate(&p, r, err);
}

// dy (N,F,Ho,Wo), x (N,C,H,W) -> each worker's acc [group][e][F/G][C/G] += Z V^T over its
// items, worker 0's in the kernels' slot.
static void weights_worker(void *arg, int worker) {
    const wino_plan *p = arg;
    const conv_run *r = p->r;
    const conv_geom *g = r->g;
    const size_t elt = r->elt;
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups;
    char *region = region_of(p, worker);
    char *acc = worker == 0 ? p->u : region;
    char *v = region + kernels_bytes(g, r->dt);
    int64_t first, end;
    conv_item_range(p->items, p->threads, worker, &first, &end);
    // The first batch of each group this worker takes stores its sums rather than adding
    // them (a memset of 4 MiB per worker was 7% of (c)'s dw); the other groups' sums are zero.
    const int64_t group_bytes = 16 * p->u_step * (int64_t)elt;
    const int64_t first_grp = first < end ? first / p->batches : g->groups;
    const int64_t end_grp = first < end ? (end - 1) / p->batches + 1 : g->groups;
    memset(acc, 0, (size_t)(first_grp * group_bytes));
    memset(acc + end_grp * group_bytes, 0, (size_t)((g->groups - end_grp) * group_bytes));
    for (int64_t item = first; item < end; item++) {
        const bool add = item > first && item % p->batches != 0;
        int64_t grp;
        const int64_t size = batch_of(p, item, &grp);
        const int64_t v_step = conv_wino_e_stride(cg, size, elt);
        const int64_t z_step = conv_wino_e_stride(fg, size, elt);
        char *z = conv_at(v, 16 * v_step, elt);
        char *rows = conv_at(z, 16 * z_step, elt);
        for (int64_t at = 0, n, t0, count; at < size; at += count) {
            segment(p, item, at, size, &n, &t0, &count);
            transform_input(p, v, v_step, size, at, grp, n, t0, count, rows);
            transform_grad(p, z, z_step, size, at, grp, n, t0, count, rows);
        }
        char *acc_g = conv_at(acc, grp * 16 * p->u_step, elt);
        for (int e = 0; e < 16; e++)
            conv_gemm_call(r, false, true, fg, cg, size, conv_at(z, e * z_step, elt),
                           size, conv_at(v, e * v_step, elt), size, add,
                           conv_at(acc_g, e * p->u_step, elt), cg);
    }
}

// Worker 0's dw sum += the other workers' sums, then dw = G^T sum G, for the workers' shares
// of the filters. (Done by the caller alone, the two were a tenth of (c)'s dw on 2 threads.)
static void finish_weights_worker(void *arg, int worker) {
    const wino_plan *p = arg;
    const conv_run *r = p->r;
    const int64_t cg = r->g->c / r->g->groups, fg = r->g->f / r->g->groups;
    int64_t first, end;
    conv_item_range(r->g->groups * fg, p->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        // filter f of group grp: its C/G sums of element e at at + e*u_step in every sum
        const int64_t at = item / fg * 16 * p->u_step + item % fg * cg;
        char *sum = conv_at(p->u, at, r->elt);
        for (int t = 1; t < p->threads; t++)
            for (int e = 0; e < 16; e++)
                r->k->axpy(conv_at(sum, e * p->u_step, r->elt),
                           conv_at(region_of(p, t), at + e * p->u_step, r->elt), cg, 1, 1.0);
        for (int64_t c = 0; c < cg; c++)
            r->k->wino_kernel_grad(conv_at(r->out, (item * cg + c) * 9, r->elt),
                                   conv_at(sum, c, r->elt), p->u_step);
    }
}

// dy (N,F,Ho,Wo), x (N,C,H,W) -> dw (F,C/G,3,3)
conv_status conv_winograd_backward_weights(conv_run *r, conv_error *err) {
    const conv_geom *g = r->g;
    wino_plan p = {.in = r->in, .ig = g->c / g->groups, .og = g->f / g->groups,
                   .hi = g->h, .wi = g->w,
                   .ho = conv_out_h(g), .wo = conv_out_w(g), .off_h = -g->pad_top,
                   .off_w = -g->pad_left};
    conv_status st = plan(&p, r, err);
    if (st != CONV_OK) return st;
    conv_run_workers(p.threads, weights_worker, &p);
    conv_run_workers(p.threads, finish_weights_worker, &p);
    return CONV_OK;
}
