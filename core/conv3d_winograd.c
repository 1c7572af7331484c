// conv3d_winograd: Winograd F(2x2,3x3) over the planes of a 3-D layer (conv_winograd.c's
// transforms and GEMMs; its header comment gives the algebra). The stacked 2-D layer of
// conv3d.h reads every plane of x once per depth tap; here each plane is transformed once per
// batch, and the depth sum becomes the GEMMs' K:
//   forward  M_o[e] (F/G x T) = sum_a U_a[e] (F/G x C/G) V_{o*sd + a*dd - pd}[e] (C/G x T)
//   dx       the same correlation from dy's planes to dx's, kernels rotated in h and w and
//            taken in reversed depth order (plane id reads dy plane (id + pd - a*dd) / sd
//            where that divides)
//   dw       acc_a[e] (F/G x C/G) += Z_o[e] V_{o*sd + a*dd - pd}[e]^T
// With the transformed planes stored one after the other ([e][plane][channel][tile]) and the
// kernels' columns in the order (depth tap, channel), the taps whose planes are consecutive
// (dilation 1 along d, and stride 1 for dx) are ONE GEMM with K = taps * channels: for the
// usual 3x3x3 layer, K = 3 C/G, as the stacked layer had, without its copies.
//
// Work items are (group, batch of T tiles across images, chunk of output planes); an item
// transforms the input planes its chunk reads (planes at a chunk's edges are transformed again
// by its neighbour), then per output plane runs the GEMMs and the output transform.
// Scratch: [U or worker 0's dw sum, 16*F*kd*C/G | one region per worker], a region being
// [dw sum (backward weights, workers 1..) | V, 16*span*ig*T | M or Z, 16*og*T | rows].
#include "core/conv3d_internal.h"

#include <string.h>

#include "core/conv_internal.h"

// Tiles per batch (the GEMMs' N), and the bytes of one region's V and M that the plane chunk
// may fill: V is read a few planes at a time (the taps of one output plane), so it need not
// fit a cache; a larger chunk transforms fewer planes twice. Row (n) of the bench (32
// channels, 3 taps), process CPU time on one thread: T = 128 and 4 MB (a chunk of 8 planes)
// ran each pass in 27-30 ms, T = 512 and 8 MB (chunks of 4) in 23-25, T = 784 or more in
// 30-33 (not analysed).
#define W3_TILES 512
#define W3_BATCH_BYTES ((size_t)8 << 20)

bool conv3d_winograd_applies(const conv3d_geom *g) {
    return g->kh == 3 && g->kw == 3 && g->stride[1] == 1 && g->stride[2] == 1 &&
           g->dilation[1] == 1 && g->dilation[2] == 1;
}

typedef enum { W3_FORWARD, W3_DATA, W3_WEIGHTS } w3_pass;

// One pass as the workers see it. The correlation reads `in` (N, G*ig, di, hi, wi) and, for
// the forward and dx, writes `out` (N, G*og, dout, ho, wo); for dw, in is x, `grad` dy
// (N, G*og, dout, ho, wo), and og the filters. Output plane o reads, for depth tap block j
// (the kernels' columns j*ig ..), input plane (o*o_step + j*j_step + base) / q where that is
// a whole number in [0, di).
typedef struct {
    const conv_run *r;
    w3_pass pass;
    const char *in, *grad;
    char *out;
    int64_t n, groups, ig, og, kd;
    int64_t di, hi, wi, dout, ho, wo, off_h, off_w;
    int64_t o_step, j_step, base, q;
    int64_t tiles_w, tiles; // 2x2 tiles of a row and of an output plane
    int64_t batch, batches, chunk, chunks, span; // tiles per batch; output planes per chunk;
                                                 // input planes a chunk reads at most
    char *u, *regions;
    size_t region;
    int threads;
    int64_t items; // groups * batches * chunks
} w3_plan;

static int64_t tiles_of(int64_t out) { return (out + 1) / 2; }

// The pass's geometry, before any sizes are planned.
static void w3_setup(w3_plan *p, const conv3d_geom *g, w3_pass pass) {
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups, d_out = conv3d_out_d(g);
    const int64_t ho = conv_out_size(g->h, 3, 1, 1, g->padding[2], g->padding[3]);
    const int64_t wo = conv_out_size(g->w, 3, 1, 1, g->padding[4], g->padding[5]);
    *p = (w3_plan){.pass = pass, .n = g->n, .groups = g->groups, .kd = g->kd,
                   .j_step = g->dilation[0]};
    if (pass == W3_DATA) { // dy's planes -> dx's
        p->ig = fg;
        p->og = cg;
        p->di = d_out;
        p->hi = ho;
        p->wi = wo;
        p->dout = g->d;
        p->ho = g->h;
        p->wo = g->w;
        p->off_h = g->padding[2] - 2;
        p->off_w = g->padding[4] - 2;
        p->o_step = 1;
        p->base = g->padding[0] - (g->kd - 1) * g->dilation[0];
        p->q = g->stride[0];
    } else { // x's planes -> y's (or dy's, for dw)
        p->ig = cg;
        p->og = fg;
        p->di = g->d;
        p->hi = g->h;
        p->wi = g->w;
        p->dout = d_out;
        p->ho = ho;
        p->wo = wo;
        p->off_h = -g->padding[2];
        p->off_w = -g->padding[4];
        p->o_step = g->stride[0];
        p->base = -g->padding[0];
        p->q = 1;
    }
    p->tiles_w = tiles_of(p->wo);
    p->tiles = tiles_of(p->ho) * p->tiles_w;
}

// The input plane output plane o reads through depth tap block j, or -1 (padding, or a
// stride's gap for dx).
static int64_t plane_in(const w3_plan *p, int64_t o, int64_t j) {
    const int64_t num = o * p->o_step + j * p->j_step + p->base;
    if (num < 0 || num % p->q) return -1;
    return num / p->q < p->di ? num / p->q : -1;
}

// Input planes a chunk of `chunk` output planes reads at most.
static int64_t span_of(const w3_plan *p, int64_t chunk) {
    const int64_t span = ((chunk - 1) * p->o_step + (p->kd - 1) * p->j_step) / p->q + 1;
    return span < p->di ? span : p->di;
}

// Bytes of the transformed kernels, which are also one dw sum.
static size_t kernels_bytes(const w3_plan *p, size_t elt) {
    return conv_align_up((size_t)(16 * p->groups * p->og * p->kd * p->ig) * elt);
}
// A region's V, M (or Z) and rows for T tiles and chunks of `chunk` output planes.
static size_t data_bytes(const w3_plan *p, size_t elt, int64_t t, int64_t chunk) {
    return conv_align_up((size_t)(16 * span_of(p, chunk) * p->ig * t) * elt) +
           conv_align_up((size_t)(16 * p->og * t) * elt) +
           conv_align_up((size_t)CONV_WINO_ROWS(t) * elt) + CONV_WINO_STRIDE_SLACK;
}
static size_t dw_sum_bytes(const w3_plan *p, size_t elt) {
    return p->pass == W3_WEIGHTS ? kernels_bytes(p, elt) : 0;
}

// The largest batch (up to W3_TILES) and then plane chunk whose data fits `cap` bytes (down
// to one tile and one plane), the chunk evened out over the output planes.
static void shape(const w3_plan *p, size_t elt, size_t cap, int64_t *t, int64_t *chunk) {
    const int64_t all = p->n * p->tiles;
    int64_t tiles = all < W3_TILES ? all : W3_TILES, c = 1;
    while (tiles > 1 && data_bytes(p, elt, tiles, 1) > cap) tiles = (tiles + 1) / 2;
    while (c < p->dout && data_bytes(p, elt, tiles, c + 1) <= cap) c++;
    const int64_t chunks = (p->dout + c - 1) / c;
    *t = tiles;
    *chunk = (p->dout + chunks - 1) / chunks;
}

static size_t pass_workspace(const conv3d_geom *g, conv_dtype dt, w3_pass pass, int threads) {
    w3_plan p;
    w3_setup(&p, g, pass);
    const size_t elt = conv_dtype_size(dt);
    int64_t t, chunk;
    shape(&p, elt, W3_BATCH_BYTES, &t, &chunk);
    return kernels_bytes(&p, elt) +
           (size_t)threads * (dw_sum_bytes(&p, elt) + data_bytes(&p, elt, t, chunk));
}

size_t conv3d_winograd_workspace(const conv3d_geom *g, conv_dtype dt, int threads) {
    threads = threads < 1 ? 1 : threads > CONV_MAX_THREADS ? CONV_MAX_THREADS : threads;
    size_t most = 0;
    for (w3_pass pass = W3_FORWARD; pass <= W3_WEIGHTS; pass++) {
        const size_t need = pass_workspace(g, dt, pass, threads);
        if (need > most) most = need;
    }
    return most;
}

size_t conv3d_winograd_workspace_min(const conv3d_geom *g, conv_dtype dt) {
    size_t most = 0;
    for (w3_pass pass = W3_FORWARD; pass <= W3_WEIGHTS; pass++) {
        w3_plan p;
        w3_setup(&p, g, pass);
        const size_t elt = conv_dtype_size(dt);
        const size_t need =
            kernels_bytes(&p, elt) + dw_sum_bytes(&p, elt) + data_bytes(&p, elt, 1, 1);
        if (need > most) most = need;
    }
    return most;
}

// Sets the threads, batch and chunk that the workspace allows, or fails. Workers take
// contiguous runs of items, so the batches are evened out to whole rounds of the workers.
static conv_status plan(w3_plan *p, const conv_run *r, conv_error *err) {
    const conv_exec *ex = r->ex;
    const size_t elt = r->elt, shared = kernels_bytes(p, elt), own = dw_sum_bytes(p, elt);
    const size_t least = shared + own + data_bytes(p, elt, 1, 1);
    p->r = r;
    if (!ex->workspace || ex->workspace_bytes < least)
        return conv_fail(err, CONV_EWORKSPACE, "workspace",
                         "the workspace has %zu bytes but Winograd needs at least %zu for this "
                         "layer",
                         ex->workspace ? ex->workspace_bytes : (size_t)0, least);
    const int64_t all = p->n * p->tiles;
    int64_t t, chunk;
    shape(p, elt, W3_BATCH_BYTES, &t, &chunk);
    int threads = conv_plan_threads(r, p->groups * ((all + t - 1) / t) *
                                           ((p->dout + chunk - 1) / chunk));
    size_t each;
    while ((each = (ex->workspace_bytes - shared) / (size_t)threads / CONV_ALIGN * CONV_ALIGN) <
               own + data_bytes(p, elt, 1, 1) &&
           threads > 1)
        threads--;
    shape(p, elt, each - own < W3_BATCH_BYTES ? each - own : W3_BATCH_BYTES, &t, &chunk);
    p->chunk = chunk;
    p->chunks = (p->dout + chunk - 1) / chunk;
    p->span = span_of(p, chunk);
    int64_t batches = (all + t - 1) / t;
    while ((p->groups * batches * p->chunks) % threads && batches < all) batches++;
    p->batch = (all + batches - 1) / batches;
    p->batches = (all + p->batch - 1) / p->batch;
    p->threads = threads;
    p->items = p->groups * p->batches * p->chunks;
    p->u = ex->workspace;
    p->regions = (char *)ex->workspace + shared;
    p->region = each;
    return CONV_OK;
}

// A batch's tiles go by segments within one image: from tile `at` of the batch starting at
// tile `first`, image *n's tiles *t0 .. *t0+*count-1.
static void segment(const w3_plan *p, int64_t first, int64_t at, int64_t size, int64_t *n,
                    int64_t *t0, int64_t *count) {
    *n = (first + at) / p->tiles;
    *t0 = (first + at) % p->tiles;
    *count = p->tiles - *t0 < size - at ? p->tiles - *t0 : size - at;
}

// The input planes [*lo, *hi] that output planes [o0, o1) read (*hi < *lo when none).
static void planes_read(const w3_plan *p, int64_t o0, int64_t o1, int64_t *lo, int64_t *hi) {
    *lo = p->di;
    *hi = -1;
    for (int64_t o = o0; o < o1; o++)
        for (int64_t j = 0; j < p->kd; j++) {
            const int64_t i = plane_in(p, o, j);
            if (i < 0) continue;
            if (i < *lo) *lo = i;
            if (i > *hi) *hi = i;
        }
}

// Whether some output plane of [o0, o1) reads input plane i.
static bool plane_wanted(const w3_plan *p, int64_t o0, int64_t o1, int64_t i) {
    for (int64_t o = o0; o < o1; o++)
        for (int64_t j = 0; j < p->kd; j++)
            if (plane_in(p, o, j) == i) return true;
    return false;
}

// Where an item works: group grp, the `size` tiles of its batch from tile `first` (across
// images), output planes [o0, o1), and the input planes [lo, hi] those read (hi < lo when
// none).
typedef struct {
    int64_t grp, first, size, o0, o1, lo, hi;
} w3_item;

static w3_item item_at(const w3_plan *p, int64_t item) {
    const int64_t per_group = p->batches * p->chunks, all = p->n * p->tiles;
    const int64_t b = item % per_group / p->chunks, c = item % p->chunks;
    w3_item it = {.grp = item / per_group, .first = b * p->batch, .o0 = c * p->chunk};
    it.size = all - it.first < p->batch ? all - it.first : p->batch;
    it.o1 = it.o0 + p->chunk < p->dout ? it.o0 + p->chunk : p->dout;
    planes_read(p, it.o0, it.o1, &it.lo, &it.hi);
    return it;
}

// V [e][plane - lo][channel][tile] (e stride v_e) <- the transformed tiles of the item's
// input planes [lo, hi] that its output planes read, for its batch of tiles.
static void transform_planes(const w3_plan *p, char *v, int64_t v_e, char *rows,
                             const w3_item *it) {
    const conv_run *r = p->r;
    const size_t elt = r->elt;
    const conv_wino_plane in_plane = {p->hi, p->wi, p->wi, 1};
    for (int64_t i = it->lo; i <= it->hi; i++) {
        if (!plane_wanted(p, it->o0, it->o1, i)) continue;
        for (int64_t at = 0, n, t0, count; at < it->size; at += count) {
            segment(p, it->first, at, it->size, &n, &t0, &count);
            for (int64_t ch = 0; ch < p->ig; ch++) {
                const int64_t plane = ((n * p->groups + it->grp) * p->ig + ch) * p->di + i;
                r->k->wino_input(conv_at(v, ((i - it->lo) * p->ig + ch) * it->size + at, elt),
                                 v_e, conv_at(p->in, plane * p->hi * p->wi, elt), &in_plane,
                                 p->off_h, p->off_w, p->tiles_w, t0, count, rows);
            }
        }
    }
}

// Output plane o's depth taps in runs: the next run at or after tap block *j reads input
// planes *i .. *i+*run-1 through blocks *j .. *j+*run-1. Returns false when none is left.
static bool next_run(const w3_plan *p, int64_t o, int64_t *j, int64_t *i, int64_t *run) {
    while (*j < p->kd && (*i = plane_in(p, o, *j)) < 0) ++*j;
    if (*j >= p->kd) return false;
    *run = 1;
    while (*j + *run < p->kd && plane_in(p, o, *j + *run) == *i + *run) ++*run;
    return true;
}

// w (F,C/G,kd,3,3) -> U [group][e][o][j*ig + i]; items are (group, o, j), each ig kernels.
// Forward: o a filter, i a channel, j the depth tap. dx: o a channel, i a filter, the kernel
// rotated, j = kd-1 - the depth tap.
static void transform_kernels_worker(void *arg, int worker) {
    const w3_plan *p = arg;
    const conv_run *r = p->r;
    const int64_t kd = p->kd;
    const bool flip = p->pass == W3_DATA;
    int64_t first, end;
    conv_item_range(p->groups * p->og * kd, p->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t grp = item / (p->og * kd), o = item / kd % p->og, j = item % kd;
        const int64_t w0 = flip ? ((grp * p->ig * p->og + o) * kd + kd - 1 - j) * 9
                                : (((grp * p->og + o) * p->ig) * kd + j) * 9;
        r->k->wino_kernel(conv_at(p->u, (grp * 16 * p->og + o) * kd * p->ig + j * p->ig, r->elt),
                          p->og * kd * p->ig, conv_at(r->w, w0, r->elt),
                          flip ? p->og * kd * 9 : kd * 9, p->ig, flip);
    }
}

// Forward and dx: per item, the input planes transformed, then per output plane the GEMMs
// of its runs of taps and the output transform.
static void correlate_worker(void *arg, int worker) {
    const w3_plan *p = arg;
    const conv_run *r = p->r;
    const size_t elt = r->elt;
    const int64_t kd = p->kd, ig = p->ig, og = p->og;
    const conv_wino_plane out_plane = {p->ho, p->wo, p->wo, 1};
    char *v = p->regions + (size_t)worker * p->region;
    int64_t items_first, items_end;
    conv_item_range(p->items, p->threads, worker, &items_first, &items_end);
    for (int64_t item = items_first; item < items_end; item++) {
        const w3_item it = item_at(p, item);
        const int64_t size = it.size, lo = it.lo;
        // the 16 matrices of V and M a few cache lines apart (conv_wino_e_stride)
        const int64_t v_e = conv_wino_e_stride(it.hi >= lo ? it.hi - lo + 1 : 0, ig * size, elt);
        const int64_t m_e = conv_wino_e_stride(og, size, elt);
        char *m = conv_at(v, 16 * conv_wino_e_stride(p->span, ig * size, elt), elt);
        char *rows = conv_at(m, 16 * m_e, elt);
        transform_planes(p, v, v_e, rows, &it);
        const char *u = conv_at(p->u, it.grp * 16 * og * kd * ig, elt);
        for (int64_t o = it.o0; o < it.o1; o++) {
            bool any = false;
            for (int64_t j = 0, i, run; next_run(p, o, &j, &i, &run); j += run, any = true)
                for (int e = 0; e < 16; e++)
                    conv_gemm_call(r, false, false, og, size, run * ig,
                                   conv_at(u, (e * og * kd + j) * ig, elt), kd * ig,
                                   conv_at(v, e * v_e + (i - lo) * ig * size, elt), size, any,
                                   conv_at(m, e * m_e, elt), size);
            if (!any) r->k->fill(m, 16 * m_e, 0); // every tap in the padding: the bias
            for (int64_t at = 0, n, t0, count; at < size; at += count) {
                segment(p, it.first, at, size, &n, &t0, &count);
                for (int64_t oc = 0; oc < og; oc++) {
                    const double bias = r->b ? conv_load(r->b, it.grp * og + oc, r->dt) : 0;
                    const int64_t plane = ((n * p->groups + it.grp) * og + oc) * p->dout + o;
                    r->k->wino_output(conv_at(p->out, plane * p->ho * p->wo, elt), &out_plane,
                                      p->tiles_w, t0, count, conv_at(m, oc * size + at, elt),
                                      m_e, bias, rows);
                }
            }
        }
    }
}

static conv_status correlate(w3_plan *p, const conv3d_geom *g, conv_dtype dt,
                             const conv_exec *ex, const void *w, const void *b, conv_error *err) {
    conv_geom g2;
    conv3d_plane_geom(&g2, g);
    conv_run r;
    conv_status st = conv_start_run(&r, &g2, dt, ex, err);
    if (st != CONV_OK) return st;
    r.w = w;
    r.b = b;
    st = plan(p, &r, err);
    if (st != CONV_OK) return st;
    conv_run_workers(p->threads, transform_kernels_worker, p);
    conv_run_workers(p->threads, correlate_worker, p);
    return CONV_OK;
}

conv_status conv3d_winograd_forward(void *y, const void *x, const void *w, const void *b,
                                    const conv3d_geom *g, conv_dtype dt, const conv_exec *ex,
                                    conv_error *err) {
    w3_plan p;
    w3_setup(&p, g, W3_FORWARD);
    p.in = x;
    p.out = y;
    return correlate(&p, g, dt, ex, w, b, err);
}

conv_status conv3d_winograd_backward_data(void *dx, const void *dy, const void *w,
                                          const conv3d_geom *g, conv_dtype dt,
                                          const conv_exec *ex, conv_error *err) {
    w3_plan p;
    w3_setup(&p, g, W3_DATA);
    p.in = dy;
    p.out = dx;
    return correlate(&p, g, dt, ex, w, NULL, err);
}

// dy, x -> each worker's sum [group][e][F/G][kd*C/G] += Z V^T over its items, worker 0's in
// the kernels' slot.
static void weights_worker(void *arg, int worker) {
    const w3_plan *p = arg;
    const conv_run *r = p->r;
    const size_t elt = r->elt;
    const int64_t kd = p->kd, cg = p->ig, fg = p->og;
    const conv_wino_plane out_plane = {p->ho, p->wo, p->wo, 1};
    char *region = p->regions + (size_t)worker * p->region;
    char *acc = worker == 0 ? p->u : region;
    char *v = region + dw_sum_bytes(p, elt);
    memset(acc, 0, (size_t)(16 * p->groups * fg * kd * cg) * elt);
    int64_t items_first, items_end;
    conv_item_range(p->items, p->threads, worker, &items_first, &items_end);
    for (int64_t item = items_first; item < items_end; item++) {
        const w3_item it = item_at(p, item);
        const int64_t size = it.size, lo = it.lo;
        if (it.hi < lo) continue; // every tap in the padding: nothing to add
        const int64_t v_e = conv_wino_e_stride(it.hi - lo + 1, cg * size, elt);
        const int64_t z_e = conv_wino_e_stride(fg, size, elt);
        char *z = conv_at(v, 16 * conv_wino_e_stride(p->span, cg * size, elt), elt);
        char *rows = conv_at(z, 16 * z_e, elt);
        transform_planes(p, v, v_e, rows, &it);
        char *acc_g = conv_at(acc, it.grp * 16 * fg * kd * cg, elt);
        for (int64_t o = it.o0; o < it.o1; o++) {
            int64_t j = 0, i, run;
            if (!next_run(p, o, &j, &i, &run)) continue;
            for (int64_t at = 0, n, t0, count; at < size; at += count) {
                segment(p, it.first, at, size, &n, &t0, &count);
                for (int64_t f = 0; f < fg; f++) {
                    const int64_t plane = ((n * p->groups + it.grp) * fg + f) * p->dout + o;
                    r->k->wino_grad(conv_at(z, f * size + at, elt), z_e,
                                    conv_at(p->grad, plane * p->ho * p->wo, elt), &out_plane,
                                    p->tiles_w, t0, count, rows);
                }
            }
            do {
                for (int e = 0; e < 16; e++)
                    conv_gemm_call(r, false, true, fg, run * cg, size,
                                   conv_at(z, e * z_e, elt), size,
                                   conv_at(v, e * v_e + (i - lo) * cg * size, elt), size, true,
                                   conv_at(acc_g, (e * fg * kd + j) * cg, elt), kd * cg);
                j += run;
            } while (next_run(p, o, &j, &i, &run));
        }
    }
}

conv_status conv3d_winograd_backward_weights(void *dw, const void *dy, const void *x,
                                             const conv3d_geom *g, conv_dtype dt,
                                             const conv_exec *ex, conv_error *err) {
    conv_geom g2;
    conv3d_plane_geom(&g2, g);
    conv_run r;
    conv_status st = conv_start_run(&r, &g2, dt, ex, err);
    if (st != CONV_OK) return st;
    w3_plan p;
    w3_setup(&p, g, W3_WEIGHTS);
    p.in = x;
    p.grad = dy;
    st = plan(&p, &r, err);
    if (st != CONV_OK) return st;
    conv_run_workers(p.threads, weights_worker, &p);
    const int64_t kd = p.kd, cg = p.ig, fg = p.og, count = 16 * g->f * kd * cg;
    for (int t = 1; t < p.threads; t++)
        r.k->axpy(p.u, p.regions + (size_t)t * p.region, count, 1, 1.0);
    for (int64_t grp = 0; grp < g->groups; grp++)
        for (int64_t f = 0; f < fg; f++)
            for (int64_t ch = 0; ch < cg; ch++)
                for (int64_t a = 0; a < kd; a++)
                    r.k->wino_kernel_grad(
                        conv_at(dw, (((grp * fg + f) * cg + ch) * kd + a) * 9, r.elt),
                        conv_at(p.u, grp * 16 * fg * kd * cg + (f * kd + a) * cg + ch, r.elt),
                        fg * kd * cg);
    return CONV_OK;
}
