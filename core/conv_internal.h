// conv_internal: what the algorithm files of core/ share, behind conv.h. Private to core/.
//
// Where each pass is computed (conv.c picks one per call, see conv_pick_algorithm):
//   conv_gemm.c      im2col + GEMM (forward, dw) and GEMM + col2im (dx): the general path
//   conv_flat.c      stride 1 and few taps per filter: every tap summed in registers per
//                    output row
//   conv_depthwise.c one input channel per group (depthwise), any stride, kernel, dilation:
//                    a plane at a time, its rows through a small ring of zero-padded copies;
//                    with one filter per group, a vector's worth of planes in its lanes
//   conv_rows.c      depthwise when the workspace holds no ring: a vector pass per tap and
//                    row, no scratch; and db for every layer
//   conv_winograd.c  3x3, stride 1: Winograd F(2x2,3x3), all three passes (dilated layers
//                    by phases: every d-th row and column of the planes)
//   conv_shift.c     1-d layers (H = 1, stride 1) with many taps, under AVX-512: GEMMs that read
//                    zero-padded rows shifted per tap instead of im2col's copies
//   conv_phase.c     strided layers, under AVX-512: GEMMs that read x's phase planes in
//                    place of im2col's columns (forward, dw), dx one GEMM per phase of x
//   conv_kernels.h   the hand-vectorised loops those paths call, compiled once per ISA by
//                    conv_kernels_portable.c, conv_kernels_avx2.c and conv_kernels_avx512.c
//   conv_workers.c   the fork-join every pass runs its workers through
//   gemm.h           the GEMM conv_gemm_call runs under AVX-512 (gemm_kernel.h, compiled by
//                    gemm_avx512.c); OpenBLAS under the other ISAs
// The algorithm files are dtype-generic (byte pointers and an element size); everything that
// touches an element goes through a conv_kernels table of the pass's dtype and ISA, or through
// conv_gemm_call (core/gemm.h's GEMM or OpenBLAS).
#ifndef CONV_INTERNAL_H
#define CONV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conv.h"
#include "core/gemm.h"

// ---- Limits -------------------------------------------------------------------------------
#define CONV_ALIGN 64
#define CONV_MAX_THREADS 256
static inline size_t conv_align_up(size_t n) {
    return (n + CONV_ALIGN - 1) / CONV_ALIGN * CONV_ALIGN;
}

int64_t conv_mul_sat(int64_t a, int64_t b);
int64_t conv_add_sat(int64_t a, int64_t b);

// Fills *err (if any) and returns status: every failure of core/ (conv.c).
conv_status conv_fail(conv_error *err, conv_status status, const char *field, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

// ---- Geometry classes ---------------------------------------------------------------------
// A 1x1 kernel with stride 1 and no padding reads x as its own column matrix. Dilation is
// irrelevant for a 1x1 kernel; a stride or a pad is not (darknet's bug was to ignore them).
static inline bool conv_is_pointwise(const conv_geom *g) {
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_top == 0 &&
           g->pad_bottom == 0 && g->pad_left == 0 && g->pad_right == 0;
}
// One input channel per group (depthwise, or C == 1): no GEMM at all.
static inline bool conv_is_depthwise(const conv_geom *g) { return g->c == g->groups; }

// ---- Kernels: the hand-vectorised loops, one table per (ISA, dtype) ------------------------
// Pointers are to elements of the table's dtype; scalars travel as double. Each loop's
// contract is next to its definition in conv_kernels.h.
struct conv_dw_lanes_plan;
struct conv_dw_plan;
// A plane as the Winograd transforms see it: h x w elements, element (i, j) at i*pitch + j*step
// from the plane's first. A tensor's plane has pitch w and step 1; a phase of a dilated layer's
// plane (the rows and columns of one remainder modulo the dilation) pitch d_h*W and step d_w.
typedef struct {
    int64_t h, w, pitch, step;
} conv_wino_plane;
typedef struct {
    void (*axpy)(void *acc, const void *src, int64_t count, int64_t stride, double k);
    void (*scatter)(void *dst, const void *src, int64_t count, int64_t stride, double k);
    void (*gather)(void *dst, const void *src, int64_t count, int64_t stride);
    void (*place)(void *dst, const void *src, int64_t count, int64_t stride);
    void (*fill)(void *dst, int64_t count, double value);
    double (*dot)(const void *a, const void *b, int64_t count, int64_t stride);
    double (*sum)(const void *a, int64_t count);
    void (*dots)(void *sums, int64_t sums_stride, int64_t nout, const void *a, int64_t a_stride,
                 const void *b, int64_t count, int64_t taps, const int64_t *offsets);
    void (*taps_rows_outs)(void *out, int64_t out_stride, int64_t nout, int64_t rows,
                           int64_t out_pitch, const void *in, int64_t in_pitch, int64_t count,
                           int64_t channels, int64_t in_stride, const void *w, int64_t w_stride,
                           int64_t w_ostride, int64_t kh, int64_t kw, int64_t step_a,
                           int64_t step_b, const double *bias);
    void (*wino_kernel)(void *u, int64_t u_stride, const void *w, int64_t w_stride,
                        int64_t count, bool flip);
    void (*wino_input)(void *v, int64_t v_stride, const void *plane, const conv_wino_plane *pl,
                       int64_t off_h, int64_t off_w, int64_t tiles_w, int64_t t0, int64_t count,
                       void *scratch);
    void (*wino_output)(void *out, const conv_wino_plane *pl, int64_t tiles_w, int64_t t0,
                        int64_t count, const void *m, int64_t m_stride, double bias,
                        void *scratch);
    void (*wino_grad)(void *z, int64_t z_stride, const void *plane, const conv_wino_plane *pl,
                      int64_t tiles_w, int64_t t0, int64_t count, void *scratch);
    void (*wino_kernel_grad)(void *dw, const void *m, int64_t m_stride);
    void (*dw_forward)(const struct conv_dw_plan *p, void *y, const void *x, const void *w,
                       double bias);
    // dw_forward for kw 3, stride_w 1, dilation_w 1, Wo >= lanes: taps loaded from x in place
    void (*dw_forward_inplace)(const struct conv_dw_plan *p, void *y, const void *x,
                               const void *w, double bias);
    void (*dw_data)(const struct conv_dw_plan *p, void *dx, const void *dy, const void *w,
                    bool accumulate);
    void (*dw_weights)(const struct conv_dw_plan *p, void *dw, const void *dy, const void *x);
    void (*dw_forward_lanes)(const struct conv_dw_lanes_plan *p, void *y, const void *x,
                             const void *w, const void *bias);
    void (*dw_data_lanes)(const struct conv_dw_lanes_plan *p, void *dx, const void *dy,
                          const void *w);
    void (*dw_weights_lanes)(const struct conv_dw_lanes_plan *p, void *dw, const void *dy,
                             const void *x);
    int64_t lanes; // elements in one of the ISA's vectors (the dw_*_lanes planes per call)
} conv_kernels;

// taps_rows_outs computes whole blocks of this many bytes of outputs, reading past a row's end;
// conv_flat.c sizes its planes for it.
#define CONV_TAP_BLOCK_BYTES 128
// The Winograd transforms' row scratch, in elements, for a batch of `tiles` tiles.
#define CONV_WINO_ROWS(tiles) (16 * (tiles) + 8)
// The distance between the 16 matrices of a Winograd batch (V[e], M[e] or Z[e], `rows` x
// `size` each) or of the transformed kernels, in elements: rows*size rounded up to an odd
// number of cache lines. The transforms read or write one element or row of all 16 at once,
// and a distance that is a multiple of 4096 bytes (64 channels x 448 tiles of floats, what
// layer (b) gets with 2 threads) puts the 16 streams in one set of the 12-way L1: (b)'s input
// transform then took 2.2x as long, and the transform of (c)'s 256x256 kernels was a fifth
// of its forward. CONV_WINO_STRIDE_SLACK bounds what it adds to a batch's V and M (or Z).
static inline int64_t conv_wino_e_stride(int64_t rows, int64_t size, size_t elt) {
    const int64_t line = CONV_ALIGN / (int64_t)elt;
    return ((rows * size + line - 1) / line | 1) * line;
}
#define CONV_WINO_STRIDE_SLACK (2 * 16 * 2 * CONV_ALIGN)

extern const conv_kernels conv_kernels_portable_f32, conv_kernels_portable_f64;
extern const conv_kernels conv_kernels_avx2_f32, conv_kernels_avx2_f64;
extern const conv_kernels conv_kernels_avx512_f32, conv_kernels_avx512_f64;

// ---- Threads ------------------------------------------------------------------------------
// Fork-join over `threads` workers, the caller being worker 0, the rest the calling thread's
// kept helpers (conv_workers.c).
typedef void (*conv_worker_fn)(void *ctx, int worker);
void conv_run_workers(int threads, conv_worker_fn fn, void *ctx);

// A pass splits into `items` independent pieces of work; worker t takes a contiguous range.
static inline void conv_item_range(int64_t items, int threads, int worker, int64_t *first,
                                   int64_t *end) {
    *first = items * worker / threads;
    *end = items * (worker + 1) / threads;
}

// How many workers a pass of `items` pieces uses: the caller's budget (r->ex), at least a few
// MFLOP each, and no more than conv_workspace_min() allows.
struct conv_run;
int conv_plan_threads(const struct conv_run *r, int64_t items);

// For a pass whose workers each need region(g, dt, threads) bytes of the caller's workspace:
// the threads (at most conv_plan_threads(r, items), fewer while the regions do not fit),
// r->scratch, r->region_bytes and r->accumulator (a private dw sum for workers 1..). False,
// with r->threads unset, when the workspace holds no region even for one worker.
typedef size_t conv_region_fn(const conv_geom *g, conv_dtype dt, int threads);
bool conv_plan_regions(struct conv_run *r, int64_t items, conv_region_fn *region);

// For output columns oc .. oc+run-1 of one output row, the input column read by kernel column
// offset `off` (= b*dilation_w - pad_left) is (oc+j)*stride + off. Gives the j range [lo, hi)
// that lands inside 0 <= column < width; outside it the padding's zeros are read.
static inline void conv_valid_span(int64_t oc, int64_t run, int64_t stride, int64_t off,
                                   int64_t width, int64_t *lo, int64_t *hi) {
    int64_t first = off < 0 ? (-off + stride - 1) / stride : 0;
    int64_t last = width - 1 - off >= 0 ? (width - 1 - off) / stride : -1;
    *lo = first - oc < 0 ? 0 : first - oc < run ? first - oc : run;
    *hi = last + 1 - oc < *lo ? *lo : last + 1 - oc < run ? last + 1 - oc : run;
}

// ---- One pass ------------------------------------------------------------------------------
// What every algorithm's pass reads: its output, its inputs (the unused ones NULL), the layer,
// the dtype's element size and kernels, and the caller's exec. Workers see it read-only but
// for the fields their algorithm sets before it starts them.
typedef struct conv_run {
    void *out;                   // y, dx, dw or db
    const void *in, *w, *b, *dy; // x, w, bias, dy
    const conv_geom *g;
    conv_dtype dt;
    size_t elt;
    conv_isa isa;                // the one the pass runs (never CONV_ISA_AUTO)
    const conv_kernels *k;
    const conv_exec *ex;
    // Set by the algorithm for its workers:
    char *scratch;        // worker t's region starts at scratch + t * region_bytes
    size_t region_bytes;
    size_t accumulator;   // bytes at the start of each region for a private dw sum (or 0)
    int threads;
    int64_t items, chunks;
    int64_t col_pixels;   // conv_gemm.c: pixels per column chunk
} conv_run;

// *r for one pass of g (checked) with ex's ISA and dtype's kernels, the rest zero; fails when
// the geometry is invalid or this CPU cannot run ex->isa. conv.c's passes start with it, and
// so does conv3d_winograd.c (on the stacked layer of conv3d.h).
conv_status conv_start_run(conv_run *r, const conv_geom *g, conv_dtype dt, const conv_exec *ex,
                           conv_error *err);

// C (m x n) = op(A) (m x k) * op(B) (k x n), or C += that with `add`: row-major, in the pass's
// dtype, op being the transpose where asked (A stored k x m, B stored n x k), on the calling
// thread alone. convd's own GEMM (core/gemm.h) where the pass's ISA has one (AVX-512: OpenBLAS
// may run a narrower core than the CPU's, as OPENBLAS_CORETYPE=Haswell does), OpenBLAS
// (single-threaded by blas_boot) otherwise.
void conv_gemm_call(const conv_run *r, bool trans_a, bool trans_b, int64_t m, int64_t n,
                    int64_t k, const void *a, int64_t lda, const void *b, int64_t ldb, bool add,
                    void *c, int64_t ldc);

// The same with B's rows placed by gemm_rows (rows.taps must be 1 unless the pass's ISA is
// AVX-512: OpenBLAS has no such form; outer is then ldb) and `bias` (m elements of the pass's
// dtype, or NULL; add must then be false) added to C's rows: convd's GEMM adds it in its first
// slice, writing C once; under OpenBLAS C is filled with the bias and the product added onto it.
void conv_gemm_call_rows(const conv_run *r, bool trans_a, bool trans_b, int64_t m, int64_t n,
                         int64_t k, const void *a, int64_t lda, const void *b, gemm_rows b_rows,
                         const void *bias, bool add, void *c, int64_t ldc);

// Element i of a dtype array, as a byte address.
static inline char *conv_at(const void *base, int64_t i, size_t elt) {
    return (char *)base + i * (int64_t)elt;
}

// Element i of a dtype array, as a double (a bias, one weight).
static inline double conv_load(const void *base, int64_t i, conv_dtype dt) {
    return dt == CONV_FLOAT64 ? ((const double *)base)[i] : ((const float *)base)[i];
}

// Element i of a dtype array <- v (rounded to float for float32).
static inline void conv_store(void *base, int64_t i, double v, conv_dtype dt) {
    if (dt == CONV_FLOAT64) ((double *)base)[i] = v;
    else ((float *)base)[i] = (float)v;
}

// The private dw sums of workers 1.. (each at the start of its region) added into dw, which
// worker 0 summed into itself.
void conv_add_partial_sums(const conv_run *r);

// The dw accumulator each worker but the first keeps (none with one thread).
size_t conv_accumulator_bytes(const conv_geom *g, conv_dtype dt, int threads);

// ---- The algorithms ------------------------------------------------------------------------
// Each returns CONV_OK or fails with err filled; the caller checked the geometry.
// im2col + GEMM (conv_gemm.c): at least conv_gemm_region_min bytes per worker, and
// a cache-sized chunk of one image's columns per worker (conv_gemm_workspace, capped)
// to run at full size.
size_t conv_gemm_region_min(const conv_geom *g, conv_dtype dt, int threads);
size_t conv_gemm_workspace(const conv_geom *g, conv_dtype dt, int threads, size_t cap);
conv_status conv_gemm_forward(conv_run *r, conv_error *err);
conv_status conv_gemm_backward_data(conv_run *r, conv_error *err);
conv_status conv_gemm_backward_weights(conv_run *r, conv_error *err);

// Flat (conv_flat.c): only where conv_flat_wanted for the pass; returns false, having done
// nothing, when the workspace holds no region of it. conv_flat_workspace is its whole need
// for `threads` workers (saturating at SIZE_MAX / 2 for absurd paddings, which then never fit).
typedef enum { CONV_PASS_FORWARD, CONV_PASS_DATA, CONV_PASS_WEIGHTS } conv_pass_id;
bool conv_flat_wanted(const conv_geom *g, conv_dtype dt, conv_pass_id pass);
size_t conv_flat_workspace(const conv_geom *g, conv_dtype dt, int threads);
bool conv_flat_forward(conv_run *r);
bool conv_flat_backward_data(conv_run *r);
bool conv_flat_backward_weights(conv_run *r);

// Depthwise (conv_depthwise.c): one plane of y, dx or dw per kernel call (dw_forward, dw_data,
// dw_weights in conv_kernels.h), in a worker's scratch laid out by conv_depthwise.c:
typedef struct conv_dw_plan {
    const conv_geom *g;
    // The ring: `slots` rows (a power of two), each `phases` runs of `len` elements (a padded
    // row of x split by column phase modulo the stride, or a row of dy after `margin` zeros),
    // row i in slot i & (slots - 1). Zero where no element of x or dy lands.
    int64_t slots, phases, len, margin;
    void *ring;
    const void **src; // kh*kw pointers: the taps of one output row
    void *weights;    // kh*kw elements: their weights
    void *acc;        // kh*kw blocks of CONV_TAP_BLOCK_BYTES: dw's lane sums
    void *row;        // dx with a stride: sw runs of row_phase elements, a row's column phases
    int64_t row_phase;
    // Integer tables (so that no pixel row divides), filled once per worker:
    const int64_t *col_off;  // kw: where kernel column b's run starts in an x row's slot
    const int64_t *span;     // sw pairs: the elements [lo, hi) of x column phase q's run that
                             // hold x
    const int64_t *col_taps; // dx, per column phase q < sw at q * (1 + 2*kw): a count, then
                             // (b, c) pairs: kernel column b takes output m from dy column m + c
    const int64_t *row_taps; // dx, per row phase ph < sh at ph * (1 + 2*kh): a count, then
                             // (a, k) pairs: kernel row a of dx row ih (ih + pt = u, u % sh =
                             // ph) takes dy row u / sh - k
} conv_dw_plan;
// The output rows one dw_forward_inplace block sums together, two accumulators each: enough
// independent sums in program order to cover an FMA's latency times its throughput (a row at
// a time left the CPU waiting on each row's chain of multiply-adds: 2x slower).
#define CONV_DW_INPLACE_ROWS 4
// The elements [*lo, *hi) of an x row, relative to its column 0, that dw_forward_inplace may
// load: from -pad_left up to its last column block's last tap.
static inline void conv_dw_inplace_reach(const conv_geom *g, int64_t *lo, int64_t *hi) {
    *lo = -g->pad_left;
    *hi = conv_out_w(g) - g->pad_left + g->kw - 1;
}
// The channel-blocked passes (dw_forward_lanes, dw_data_lanes, dw_weights_lanes in
// conv_kernels.h), for layers with one filter per group: `lanes` planes per call, each pixel
// of them a vector with plane l in lane l, so that every tap is a whole aligned vector for any
// stride and no row ends inside a vector. Rows go into the ring and out of `out` through
// lanes x lanes transposes.
typedef struct conv_dw_lanes_plan {
    const conv_geom *g;
    // The ring: `slots` rows (a power of two) of `len` pixel vectors, row i in slot
    // i & (slots - 1): rows of x after pad_left zero pixels (forward, dw), or rows of dy
    // after `margin` zero pixels (dx). Zero where no element of x or dy lands.
    int64_t slots, len, margin;
    void *ring;
    void *out;        // max(W, Wo) pixel vectors: a row of y or dx before its transpose, or
                      // dw's row of dy
    void *weights;    // kh*kw vectors: lane l holds plane l's weight of that tap (dw: its sum)
    const void **src; // 2*kh*kw pointers: per tap of one output row, its run and weights
    const int64_t *col_taps, *row_taps; // dx: conv_dw_plan's tables
} conv_dw_lanes_plan;
// False, having done nothing, when the workspace holds no worker's region (conv_rows.c then
// runs the pass without scratch); conv_depthwise_workspace is the whole need for `threads`.
size_t conv_depthwise_workspace(const conv_geom *g, conv_dtype dt, int threads);
bool conv_depthwise_forward(conv_run *r);
bool conv_depthwise_backward_data(conv_run *r);
bool conv_depthwise_backward_weights(conv_run *r);

// GEMMs on shifted rows (conv_shift.c): only where conv_shift_applies; returns false, having
// done nothing, unless the pass's ISA is AVX-512 and the workspace holds a region per worker.
// conv_shift_workspace is its whole need for `threads` workers (saturating like the flat one).
bool conv_shift_applies(const conv_geom *g);
size_t conv_shift_workspace(const conv_geom *g, conv_dtype dt, int threads);
bool conv_shift_forward(conv_run *r);
bool conv_shift_backward_data(conv_run *r);
bool conv_shift_backward_weights(conv_run *r);

// GEMMs on phase planes (conv_phase.c): only where conv_phase_applies; like conv_shift's.
bool conv_phase_applies(const conv_geom *g);
size_t conv_phase_workspace(const conv_geom *g, conv_dtype dt, int threads);
bool conv_phase_forward(conv_run *r);
bool conv_phase_backward_data(conv_run *r);
bool conv_phase_backward_weights(conv_run *r);

// Row by row (conv_rows.c): one channel per group; no scratch. db too, for every layer.
void conv_rows_forward(conv_run *r);
void conv_rows_backward_data(conv_run *r);
void conv_rows_backward_weights(conv_run *r);
void conv_rows_backward_bias(conv_run *r);

// Winograd F(2x2,3x3) (conv_winograd.c): only where conv_winograd_applies. Its scratch is
// conv_winograd_workspace bytes for `threads` workers; the passes run with less only down to
// conv_winograd_workspace_min and fail with CONV_EWORKSPACE below it.
bool conv_winograd_applies(const conv_geom *g);
size_t conv_winograd_workspace(const conv_geom *g, conv_dtype dt, int threads);
size_t conv_winograd_workspace_min(const conv_geom *g, conv_dtype dt);
conv_status conv_winograd_forward(conv_run *r, conv_error *err);
conv_status conv_winograd_backward_data(conv_run *r, conv_error *err);
conv_status conv_winograd_backward_weights(conv_run *r, conv_error *err);

#endif
