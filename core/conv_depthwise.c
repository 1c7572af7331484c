// conv_depthwise: layers with one input channel per group (depthwise, or C == 1), any stride,
// kernel, dilation and padding, in all three passes.
//
// With C/G == 1 a filter has only kh*kw taps: no GEMM pays, and a pass is bound by reading x
// or dy and writing its output, 2-4.5 FLOP per element for 3x3. The kernels (dw_forward,
// dw_data, dw_weights in conv_kernels.h) take a whole plane per call, sum every tap of an
// output block in registers, and read x or dy through a ring of a few zero-padded row copies
// in the worker's scratch: each row is copied once (the flat path copied whole planes into a
// padded frame, which cost more than the taps), and with a stride the x rows are split by
// column phase as they are copied, so that strided taps are contiguous runs. dx with a stride
// sums only the taps that hit each row and column phase (no upsampled dy), dw keeps its
// per-tap sums in vector lanes over the whole plane. Items are planes: (n, f) of y or of dw's
// private sums, (n, c) of dx; equal shares for the workers.
//
// Under AVX2 and AVX-512 the forward of a 3-wide kernel with stride 1 and no dilation along
// rows reads its taps from x in place instead (dw_forward_inplace: a vector of adjacent
// outputs per load, masks at the row's edges, no ring), whatever the channel count, and so
// does dx of such a stride-1 layer with one filter per channel (the forward of dy with the
// rotated kernel): (g) forward 0.53 -> 0.48 ms, dx 0.59 -> 0.51 against the channel-blocked
// passes on one thread (AVX-512 float32); under AVX2 0.68 -> 0.63 and 0.79 -> 0.70.
//
// Where every group has one filter and their count is a multiple of the ISA's lanes, the
// other passes run channel-blocked instead (conv_dw_lanes_plan; dw_forward_lanes, dw_data_lanes,
// dw_weights_lanes): items are (n, block of lanes planes), rows go through the same kind of
// ring with each pixel a vector of the block's planes, transposed in and out. Per 28-wide
// output row of (i) the plane kernel spent ~125 cycles, mostly on its tap tables, the
// overlapping last vector and the stride-2 split of x rows; the transposes cost less.
//
// Scratch: each worker's region is [dw accumulator | ring | tap pointers | tap weights | dw
// lane sums | a dx row by column phase | integer tables], 64-byte aligned parts, a few kB for
// 3x3 layers (the in-place forward keeps its row copies in the ring, its masks in the lane
// sums' place). The ring is sized for either kind of row (x rows split by phase, dy rows with a
// margin), whichever is larger. The channel-blocked layout [dw accumulator | ring | a row of
// pixel vectors | tap weight vectors | tap pointers | integer tables] shares the region, which
// is the larger of the two; it runs only while it stays under LANES_REGION_MAX.
//
// Measured on one thread (CPU time, AVX-512, float32) against the flat path it replaces:
// 8x64x56x56 3x3 forward 1.62 -> 1.12 ms, dx 1.63 -> 1.16, dw 1.5 -> 1.2; with stride 2 on
// 8x128x56x56: 3.0 -> 1.2, 3.2 -> 1.8, 3.2 -> 1.8 (docs/PERFORMANCE.md). Channel-blocked
// against the plane kernels (best of 300-1000 calls, AVX-512 float32): (g) forward 0.92 ->
// 0.49 ms, dx 1.09 -> 0.47, dw 0.92 -> 0.55; (i) 1.10 -> 0.41, 1.66 -> 0.62, 1.08 -> 0.52.
#include <string.h>

#include "core/conv_internal.h"

// The smallest power of two >= n (n saturated, so never above 2^62).
static int64_t pow2_at_least(int64_t n) {
    int64_t p = 1;
    while (p < n && p < ((int64_t)1 << 62)) p *= 2;
    return p;
}

// The ring of x rows (forward, dw) or of dy rows (dx) for one worker.
static void ring_shape(const conv_geom *g, conv_dtype dt, bool dy_rows, conv_dw_plan *p) {
    const int64_t block = CONV_TAP_BLOCK_BYTES / (int64_t)conv_dtype_size(dt);
    const int64_t kw_reach = conv_mul_sat(g->kw - 1, g->dilation_w);
    const int64_t kh_reach = conv_mul_sat(g->kh - 1, g->dilation_h);
    if (!dy_rows) {
        // Output rows use x rows within kh_reach of each other; an output column j reads
        // phase run (b*dw) % sw at j + (b*dw) / sw, up to a block past the last output.
        const int64_t wo = conv_out_w(g);
        // Runs start on 64-byte boundaries (when the workspace does), so that the first
        // tap's loads do not straddle cache lines.
        const int64_t len = conv_add_sat(conv_add_sat(wo, block) / block * block,
                                         kw_reach / g->stride_w + 1);
        *p = (conv_dw_plan){.g = g,
                            .slots = pow2_at_least(conv_add_sat(kh_reach, 1)),
                            .phases = g->stride_w,
                            .len = conv_add_sat(len, block - 1) / block * block};
        return;
    }
    // dx row ih reads the dy rows (ih + pt - a*dh) / sh: within kh_reach / sh of each other.
    // Its column phase q's m-th output reads dy column m + (q + pl - b*dw) / sw: from
    // -kw_reach / sw (the margin) up to a block past ceil(W / sw) + (sw - 1 + pl) / sw.
    const int64_t cols = (g->w + g->stride_w - 1) / g->stride_w;
    const int64_t margin = kw_reach / g->stride_w;
    *p = (conv_dw_plan){
        .g = g,
        .slots = pow2_at_least(kh_reach / g->stride_h + 1),
        .phases = 1,
        .margin = margin,
        .len = conv_add_sat(conv_add_sat(margin, conv_add_sat(cols, block) / block * block),
                            conv_add_sat(g->pad_left, g->stride_w - 1) / g->stride_w + 1)};
}

// The parts of a region after the accumulator, in bytes (saturating: absurd paddings,
// strides and dilations then never fit a workspace).
typedef struct {
    size_t ring, src, weights, acc, row, tables;
} region_parts;

// The plan's integer tables, in int64s: col_off, span, col_taps, row_taps.
static int64_t table_count(const conv_geom *g) {
    const int64_t col_taps = conv_mul_sat(g->stride_w, 1 + 2 * g->kw);
    const int64_t row_taps = conv_mul_sat(g->stride_h, 1 + 2 * g->kh);
    return conv_add_sat(conv_add_sat(g->kw, conv_mul_sat(2, g->stride_w)),
                        conv_add_sat(col_taps, row_taps));
}

static size_t clamp_bytes(int64_t bytes) {
    const int64_t most = (int64_t)(SIZE_MAX / CONV_MAX_THREADS / 16);
    return conv_align_up((size_t)(bytes > most ? most : bytes));
}

// dx's elements per column phase of a row: ceil(W / sw).
static int64_t row_phase(const conv_geom *g) { return (g->w + g->stride_w - 1) / g->stride_w; }

// Whether the forward reads its taps from x in place (dw_forward_inplace): kernels 3 wide,
// stride 1 and no dilation along rows, at least a vector of outputs per row, and columns that
// its masks' 32-bit lanes hold.
static bool inplace_shape(const conv_geom *g, int64_t lanes) {
    return g->kw == 3 && g->stride_w == 1 && g->dilation_w == 1 && conv_out_w(g) >= lanes &&
           conv_out_w(g) < (1 << 30) && g->w < (1 << 30) && g->pad_left < (1 << 30);
}

// Whether the pass's ISA runs the in-place kernel: vectors of at least 32 bytes (AVX2,
// AVX-512). With the portable loops' 16 bytes it measured 5-8% slower than the
// channel-blocked forward on (g).
static bool inplace_isa(const conv_run *r) { return r->k->lanes * (int64_t)r->elt >= 32; }

// The elements of dw_forward_inplace's zero-padded row copies: one per x row that a block of
// CONV_DW_INPLACE_ROWS output rows reads, each as long as a row's loads reach.
static int64_t inplace_copies(const conv_geom *g) {
    int64_t lo, hi, rows = conv_add_sat(conv_mul_sat(CONV_DW_INPLACE_ROWS - 1, g->stride_h),
                                        conv_mul_sat(g->kh - 1, g->dilation_h) + 1);
    conv_dw_inplace_reach(g, &lo, &hi);
    return conv_mul_sat(rows < g->h ? rows : g->h, hi - lo);
}

// Whether dx runs as the in-place forward (dw_forward_inplace) of dy with each kernel rotated
// by 180 degrees: for a stride-1 layer with one filter per channel, dx is that correlation of
// dy with padding (k - 1)*d - p on each side, which must not be negative. *t <- its geometry
// (dy's planes as x, dx's as y); `lanes` as for inplace_shape.
static bool data_inplace(const conv_geom *g, int64_t lanes, conv_geom *t) {
    const int64_t reach_h = (g->kh - 1) * g->dilation_h, reach_w = (g->kw - 1) * g->dilation_w;
    *t = (conv_geom){.n = g->n, .c = g->c, .h = conv_out_h(g), .w = conv_out_w(g), .f = g->f,
                     .kh = g->kh, .kw = g->kw, .groups = g->groups, .stride_h = 1,
                     .stride_w = 1, .dilation_h = g->dilation_h, .dilation_w = g->dilation_w,
                     .pad_top = reach_h - g->pad_top, .pad_bottom = reach_h - g->pad_bottom,
                     .pad_left = reach_w - g->pad_left, .pad_right = reach_w - g->pad_right};
    return g->stride_h == 1 && g->stride_w == 1 && g->f == g->c && g->c == g->groups &&
           t->pad_top >= 0 && t->pad_bottom >= 0 && t->pad_left >= 0 && t->pad_right >= 0 &&
           inplace_shape(t, lanes);
}

static region_parts parts_of(const conv_geom *g, conv_dtype dt) {
    const int64_t elt = (int64_t)conv_dtype_size(dt), taps = g->kh * g->kw;
    conv_dw_plan x_rows, dy_rows;
    ring_shape(g, dt, false, &x_rows);
    ring_shape(g, dt, true, &dy_rows);
    const int64_t x_ring = conv_mul_sat(conv_mul_sat(x_rows.slots, x_rows.phases), x_rows.len);
    const int64_t dy_ring = conv_mul_sat(dy_rows.slots, dy_rows.len);
    int64_t ring = x_ring > dy_ring ? x_ring : dy_ring;
    conv_geom t;
    if (inplace_shape(g, 1) && inplace_copies(g) > ring) ring = inplace_copies(g);
    if (data_inplace(g, 1, &t) && inplace_copies(&t) > ring) ring = inplace_copies(&t);
    return (region_parts){
        .ring = clamp_bytes(conv_mul_sat(ring, elt)),
        .src = clamp_bytes(conv_mul_sat(taps, (int64_t)sizeof(void *))),
        .weights = clamp_bytes(conv_mul_sat(taps, elt)),
        // dw's lane sums, or dw_forward_inplace's masks: 3 vectors of up to 64 bytes for each
        // of three column blocks
        .acc = clamp_bytes(conv_mul_sat(taps > 5 ? taps : 5, CONV_TAP_BLOCK_BYTES)),
        .row = clamp_bytes(conv_mul_sat(conv_mul_sat(g->stride_w, row_phase(g)), elt)),
        .tables = clamp_bytes(conv_mul_sat(table_count(g), (int64_t)sizeof(int64_t)))};
}

// The channel-blocked passes' parts (conv_dw_lanes_plan), for vectors of up to CONV_ALIGN
// bytes: ring (x rows or dy rows, whichever needs more), out, weights, src, tables.
typedef struct {
    size_t ring, out, weights, src, tables;
} lanes_parts;

// The lanes ring for x rows (forward, dw) or dy rows (dx): its slots, length and margin.
static void lanes_ring(const conv_geom *g, bool dy_rows, int64_t *slots, int64_t *len,
                       int64_t *margin) {
    const int64_t kh_reach = conv_mul_sat(g->kh - 1, g->dilation_h);
    const int64_t kw_reach = conv_mul_sat(g->kw - 1, g->dilation_w);
    if (!dy_rows) {
        *slots = pow2_at_least(conv_add_sat(kh_reach, 1));
        *len = conv_add_sat(conv_add_sat(g->pad_left, g->w), g->pad_right);
        *margin = 0;
        return;
    }
    // dx column q + m*sw (m < row_phase) reads dy column m + c, c from -margin up to
    // (sw - 1 + pl) / sw (conv_dw_plan's col_taps).
    const int64_t wo = conv_out_w(g);
    const int64_t right = conv_add_sat(row_phase(g),
                                       conv_add_sat(g->pad_left, g->stride_w - 1) / g->stride_w);
    *slots = pow2_at_least(kh_reach / g->stride_h + 1);
    *margin = kw_reach / g->stride_w;
    *len = conv_add_sat(*margin, wo > right ? wo : right);
}

static lanes_parts lanes_parts_of(const conv_geom *g) {
    const int64_t vec = CONV_ALIGN, taps = g->kh * g->kw, wo = conv_out_w(g);
    int64_t slots, len, margin, dy_slots, dy_len;
    lanes_ring(g, false, &slots, &len, &margin);
    lanes_ring(g, true, &dy_slots, &dy_len, &margin);
    const int64_t x_ring = conv_mul_sat(slots, len), dy_ring = conv_mul_sat(dy_slots, dy_len);
    return (lanes_parts){
        .ring = clamp_bytes(conv_mul_sat(x_ring > dy_ring ? x_ring : dy_ring, vec)),
        .out = clamp_bytes(conv_mul_sat(wo > g->w ? wo : g->w, vec)),
        .weights = clamp_bytes(conv_mul_sat(taps, vec)),
        .src = clamp_bytes(conv_mul_sat(2 * taps, (int64_t)sizeof(void *))),
        .tables = clamp_bytes(conv_mul_sat(table_count(g), (int64_t)sizeof(int64_t)))};
}

// The channel-blocked passes run where each group has one filter and their region stays in
// the L2 cache (rings of rows as wide as 1000 pixels for 3x3); beyond that, and for layers
// whose planes do not come in whole vectors, the plane kernels.
#define LANES_REGION_MAX (256 << 10)

static size_t lanes_bytes(const conv_geom *g) {
    const lanes_parts s = lanes_parts_of(g);
    return s.ring + s.out + s.weights + s.src + s.tables;
}

// Whether a region has the channel-blocked layout's room (all but the lanes count).
static bool lanes_fit(const conv_geom *g) {
    return g->f == g->groups && lanes_bytes(g) <= LANES_REGION_MAX;
}

static bool lanes_apply(const conv_run *r) {
    return lanes_fit(r->g) && r->g->f % r->k->lanes == 0;
}

// A worker's region: its dw accumulator, then the larger of the two layouts.
static size_t region_bytes(const conv_geom *g, conv_dtype dt, int threads) {
    const region_parts s = parts_of(g, dt);
    const size_t planes = s.ring + s.src + s.weights + s.acc + s.row + s.tables;
    const size_t lanes = lanes_fit(g) ? lanes_bytes(g) : 0;
    return conv_accumulator_bytes(g, dt, threads) + (planes > lanes ? planes : lanes);
}

size_t conv_depthwise_workspace(const conv_geom *g, conv_dtype dt, int threads) {
    return (size_t)threads * region_bytes(g, dt, threads);
}

// Fills the plan's integer tables (conv_dw_plan) at t.
static void fill_tables(conv_dw_plan *p, int64_t *t) {
    const conv_geom *g = p->g;
    const int64_t sh = g->stride_h, sw = g->stride_w, dh = g->dilation_h, dw = g->dilation_w;
    int64_t *col_off = t, *span = col_off + g->kw, *col_taps = span + 2 * sw;
    int64_t *row_taps = col_taps + sw * (1 + 2 * g->kw);
    for (int64_t b = 0; b < g->kw; b++) col_off[b] = b * dw % sw * p->len + b * dw / sw;
    for (int64_t q = 0; q < sw; q++) {
        conv_valid_span(0, p->len, sw, q - g->pad_left, g->w, &span[2 * q], &span[2 * q + 1]);
        int64_t *list = col_taps + q * (1 + 2 * g->kw);
        list[0] = 0;
        for (int64_t b = 0; b < g->kw; b++) {
            const int64_t c = q + g->pad_left - b * dw;
            if (c % sw) continue;
            list[1 + 2 * list[0]] = b;
            list[2 + 2 * list[0]++] = c / sw;
        }
    }
    for (int64_t ph = 0; ph < sh; ph++) {
        int64_t *list = row_taps + ph * (1 + 2 * g->kh);
        list[0] = 0;
        for (int64_t a = 0; a < g->kh; a++) {
            if ((a * dh - ph) % sh) continue;
            list[1 + 2 * list[0]] = a;
            list[2 + 2 * list[0]++] = (a * dh - ph) / sh;
        }
    }
    p->col_off = col_off;
    p->span = span;
    p->col_taps = col_taps;
    p->row_taps = row_taps;
}

// Worker `worker`'s plan: its ring and tables, for x rows or dy rows.
static conv_dw_plan worker_plan(const conv_run *r, int worker, bool dy_rows) {
    const region_parts s = parts_of(r->g, r->dt);
    char *at = r->scratch + (size_t)worker * r->region_bytes + r->accumulator;
    conv_dw_plan p;
    ring_shape(r->g, r->dt, dy_rows, &p);
    p.ring = at;
    p.src = (const void **)(void *)(at + s.ring);
    p.weights = at + s.ring + s.src;
    p.acc = at + s.ring + s.src + s.weights;
    p.row = at + s.ring + s.src + s.weights + s.acc;
    p.row_phase = row_phase(r->g);
    fill_tables(&p, (int64_t *)(void *)(at + s.ring + s.src + s.weights + s.acc + s.row));
    return p;
}

// x (N,C,H,W), w (F,1,kh,kw), b (F) or NULL -> y (N,F,Ho,Wo); items are (n, f) planes.
static void forward_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const int64_t fg = g->f / g->groups, khw = g->kh * g->kw, pixels = conv_out_h(g) * conv_out_w(g);
    const conv_dw_plan p = worker_plan(r, worker, false);
    const bool inplace = inplace_isa(r) && inplace_shape(g, r->k->lanes);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t n = item / g->f, f = item % g->f;
        (inplace ? r->k->dw_forward_inplace : r->k->dw_forward)(
            &p, conv_at(r->out, item * pixels, r->elt),
            conv_at(r->in, (n * g->c + f / fg) * g->h * g->w, r->elt),
            conv_at(r->w, f * khw, r->elt), r->b ? conv_load(r->b, f, r->dt) : 0);
    }
}

// dy (N,C,Ho,Wo), w (C,1,kh,kw) -> dx (N,C,H,W) for the layers of data_inplace: items are
// (n, c) planes, each the in-place forward of its dy plane with the rotated kernel.
static void data_inplace_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const int64_t khw = g->kh * g->kw, pixels = conv_out_h(g) * conv_out_w(g);
    conv_geom t;
    data_inplace(g, r->k->lanes, &t);
    conv_dw_plan p = worker_plan(r, worker, false);
    p.g = &t;
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const char *w = conv_at(r->w, item % g->c * khw, r->elt);
        for (int64_t k = 0; k < khw; k++)
            memcpy(conv_at(p.weights, k, r->elt), conv_at(w, khw - 1 - k, r->elt), r->elt);
        r->k->dw_forward_inplace(&p, conv_at(r->out, item * g->h * g->w, r->elt),
                                 conv_at(r->dy, item * pixels, r->elt), p.weights, 0);
    }
}

// dy (N,F,Ho,Wo), w (F,1,kh,kw) -> dx (N,C,H,W); items are (n, c) planes of dx, each the sum
// over its group's filters.
static void backward_data_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const int64_t fg = g->f / g->groups, khw = g->kh * g->kw, pixels = conv_out_h(g) * conv_out_w(g);
    const conv_dw_plan p = worker_plan(r, worker, true);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t n = item / g->c, c = item % g->c;
        for (int64_t f = c * fg; f < (c + 1) * fg; f++)
            r->k->dw_data(&p, conv_at(r->out, item * g->h * g->w, r->elt),
                          conv_at(r->dy, (n * g->f + f) * pixels, r->elt),
                          conv_at(r->w, f * khw, r->elt), f > c * fg);
    }
}

// dy (N,F,Ho,Wo), x (N,C,H,W) -> dw (F,1,kh,kw), or a worker's private partial sum of it;
// items are (n, f) planes.
static void backward_weights_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const int64_t fg = g->f / g->groups, khw = g->kh * g->kw, pixels = conv_out_h(g) * conv_out_w(g);
    const conv_dw_plan p = worker_plan(r, worker, false);
    char *sum = worker == 0 ? r->out : r->scratch + (size_t)worker * r->region_bytes;
    memset(sum, 0, (size_t)conv_numel_w(g) * r->elt);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t n = item / g->f, f = item % g->f;
        r->k->dw_weights(&p, conv_at(sum, f * khw, r->elt),
                         conv_at(r->dy, item * pixels, r->elt),
                         conv_at(r->in, (n * g->c + f / fg) * g->h * g->w, r->elt));
    }
}

// Worker `worker`'s channel-blocked plan: its ring, for x rows or dy rows, and tables.
static conv_dw_lanes_plan lanes_plan(const conv_run *r, int worker, bool dy_rows) {
    const lanes_parts s = lanes_parts_of(r->g);
    char *at = r->scratch + (size_t)worker * r->region_bytes + r->accumulator;
    conv_dw_lanes_plan p = {.g = r->g,
                            .ring = at,
                            .out = at + s.ring,
                            .weights = at + s.ring + s.out,
                            .src = (const void **)(void *)(at + s.ring + s.out + s.weights)};
    lanes_ring(r->g, dy_rows, &p.slots, &p.len, &p.margin);
    conv_dw_plan tables = {.g = r->g};
    fill_tables(&tables, (int64_t *)(void *)(at + s.ring + s.out + s.weights + s.src));
    p.col_taps = tables.col_taps;
    p.row_taps = tables.row_taps;
    return p;
}

// The channel-blocked passes (F == C == groups): items are (n, block) for blocks of k->lanes
// planes, of y, dx or dw's private sums.
static void forward_lanes_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const int64_t lanes = r->k->lanes, blocks = g->f / lanes, khw = g->kh * g->kw;
    const int64_t pixels = conv_out_h(g) * conv_out_w(g);
    const conv_dw_lanes_plan p = lanes_plan(r, worker, false);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t n = item / blocks, f = item % blocks * lanes;
        r->k->dw_forward_lanes(&p, conv_at(r->out, (n * g->f + f) * pixels, r->elt),
                               conv_at(r->in, (n * g->c + f) * g->h * g->w, r->elt),
                               conv_at(r->w, f * khw, r->elt),
                               r->b ? conv_at(r->b, f, r->elt) : NULL);
    }
}

static void data_lanes_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const int64_t lanes = r->k->lanes, blocks = g->f / lanes, khw = g->kh * g->kw;
    const int64_t pixels = conv_out_h(g) * conv_out_w(g);
    const conv_dw_lanes_plan p = lanes_plan(r, worker, true);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t n = item / blocks, c = item % blocks * lanes;
        r->k->dw_data_lanes(&p, conv_at(r->out, (n * g->c + c) * g->h * g->w, r->elt),
                            conv_at(r->dy, (n * g->f + c) * pixels, r->elt),
                            conv_at(r->w, c * khw, r->elt));
    }
}

static void weights_lanes_worker(void *arg, int worker) {
    const conv_run *r = arg;
    const conv_geom *g = r->g;
    const int64_t lanes = r->k->lanes, blocks = g->f / lanes, khw = g->kh * g->kw;
    const int64_t pixels = conv_out_h(g) * conv_out_w(g);
    const conv_dw_lanes_plan p = lanes_plan(r, worker, false);
    char *sum = worker == 0 ? r->out : r->scratch + (size_t)worker * r->region_bytes;
    memset(sum, 0, (size_t)conv_numel_w(g) * r->elt);
    int64_t first, end;
    conv_item_range(r->items, r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) {
        const int64_t n = item / blocks, f = item % blocks * lanes;
        r->k->dw_weights_lanes(&p, conv_at(sum, f * khw, r->elt),
                               conv_at(r->dy, (n * g->f + f) * pixels, r->elt),
                               conv_at(r->in, (n * g->c + f) * g->h * g->w, r->elt));
    }
}

// Runs a pass over `items` planes when the workspace holds a region per worker; false
// (nothing done) else.
static bool run_depthwise(conv_run *r, conv_worker_fn worker, int64_t items) {
    if (!conv_plan_regions(r, items, region_bytes)) return false;
    r->items = items;
    r->chunks = 1;
    conv_run_workers(r->threads, worker, r);
    return true;
}

bool conv_depthwise_forward(conv_run *r) {
    const conv_geom *g = r->g;
    if (!(inplace_isa(r) && inplace_shape(g, r->k->lanes)) && lanes_apply(r))
        return run_depthwise(r, forward_lanes_worker, g->n * g->f / r->k->lanes);
    return run_depthwise(r, forward_worker, g->n * g->f);
}

bool conv_depthwise_backward_data(conv_run *r) {
    const conv_geom *g = r->g;
    conv_geom t;
    if (inplace_isa(r) && data_inplace(g, r->k->lanes, &t))
        return run_depthwise(r, data_inplace_worker, g->n * g->c);
    if (lanes_apply(r)) return run_depthwise(r, data_lanes_worker, g->n * g->c / r->k->lanes);
    return run_depthwise(r, backward_data_worker, g->n * g->c);
}

bool conv_depthwise_backward_weights(conv_run *r) {
    const conv_geom *g = r->g;
    const bool lanes = lanes_apply(r);
    if (!run_depthwise(r, lanes ? weights_lanes_worker : backward_weights_worker,
                       lanes ? g->n * g->f / r->k->lanes : g->n * g->f))
        return false;
    conv_add_partial_sums(r);
    return true;
}
