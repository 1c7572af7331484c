// conv: geometry, scratch sizing, the work split across threads, and dtype dispatch.
// The typed kernels (im2col, col2im, the GEMM calls) are in conv_impl.inc, compiled once per
// dtype below.
#include "core/conv.h"

#include <cblas.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

size_t conv_dtype_size(conv_dtype dt) { return dt == CONV_FLOAT64 ? 8 : 4; }

int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad_lo,
                      int64_t pad_hi) {
    int64_t span = dilation * (k - 1) + 1;
    int64_t padded = in + pad_lo + pad_hi;
    if (padded < span) return 0;
    return (padded - span) / stride + 1;
}

void conv_pad_same(int64_t k, int64_t dilation, int64_t *pad_lo, int64_t *pad_hi) {
    int64_t total = dilation * (k - 1);
    *pad_lo = total / 2;
    *pad_hi = total - total / 2;
}

static conv_status fail(conv_error *err, conv_status status, const char *field, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

static conv_status fail(conv_error *err, conv_status status, const char *field, const char *fmt,
                        ...) {
    if (err) {
        err->field = field;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

// Products of sizes, saturating at INT64_MAX so that one comparison catches any overflow.
static int64_t mul_sat(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}
static int64_t add_sat(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

// No tensor may exceed 256 TiB: far beyond any machine, and it keeps all scratch arithmetic
// (up to MAX_THREADS regions of a few tensors each) inside int64 and size_t.
#define TENSOR_BYTES_LIMIT ((int64_t)1 << 48)

// Passes use at most this many threads; the scratch queries size for no more.
#define MAX_THREADS 256

// BLAS takes 32-bit sizes and leading dimensions; everything else is byte arithmetic.
#define SIZE_LIMIT ((int64_t)INT_MAX)

conv_status conv_geom_check(const conv_geom *g, conv_dtype dt, conv_error *err) {
    if (dt != CONV_FLOAT32 && dt != CONV_FLOAT64)
        return fail(err, CONV_EINVAL, "dtype", "dtype %d is neither float32 nor float64", (int)dt);
    const struct {
        const char *field, *what;
        int64_t value, min;
    } fields[] = {
        {"n", "the batch size N of x", g->n, 1},
        {"c", "the channel count C of x", g->c, 1},
        {"h", "the height H of x", g->h, 1},
        {"w", "the width W of x", g->w, 1},
        {"f", "the filter count F of w", g->f, 1},
        {"kh", "the kernel height kh", g->kh, 1},
        {"kw", "the kernel width kw", g->kw, 1},
        {"groups", "groups", g->groups, 1},
        {"stride_h", "the vertical stride", g->stride_h, 1},
        {"stride_w", "the horizontal stride", g->stride_w, 1},
        {"dilation_h", "the vertical dilation", g->dilation_h, 1},
        {"dilation_w", "the horizontal dilation", g->dilation_w, 1},
        {"pad_top", "the top padding", g->pad_top, 0},
        {"pad_bottom", "the bottom padding", g->pad_bottom, 0},
        {"pad_left", "the left padding", g->pad_left, 0},
        {"pad_right", "the right padding", g->pad_right, 0},
    };
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        if (fields[i].value < fields[i].min)
            return fail(err, CONV_EINVAL, fields[i].field, "%s is %" PRId64 "; it must be at least %" PRId64,
                        fields[i].what, fields[i].value, fields[i].min);
        if (fields[i].value > SIZE_LIMIT)
            return fail(err, CONV_EOVERFLOW, fields[i].field, "%s is %" PRId64 "; the largest supported is %" PRId64,
                        fields[i].what, fields[i].value, SIZE_LIMIT);
    }
    if (g->c % g->groups)
        return fail(err, CONV_EINVAL, "groups",
                    "groups=%" PRId64 " must divide the %" PRId64 " input channels of x", g->groups, g->c);
    if (g->f % g->groups)
        return fail(err, CONV_EINVAL, "groups",
                    "groups=%" PRId64 " must divide the %" PRId64 " filters (output channels) of w",
                    g->groups, g->f);
    const struct {
        const char *axis, *size_name;
        int64_t in, k, dil, lo, hi;
    } axes[] = {{"height", "H", g->h, g->kh, g->dilation_h, g->pad_top, g->pad_bottom},
                {"width", "W", g->w, g->kw, g->dilation_w, g->pad_left, g->pad_right}};
    for (int i = 0; i < 2; i++) {
        int64_t span = mul_sat(axes[i].dil, axes[i].k - 1);
        int64_t padded = axes[i].in + axes[i].lo + axes[i].hi; // each term <= INT_MAX
        if (span >= padded)
            return fail(err, CONV_EINVAL, "output",
                        "along the %s the kernel spans %" PRId64 " (size %" PRId64 ", dilation %" PRId64
                        ") but the padded input has only %" PRId64 " (%s=%" PRId64 " + padding %" PRId64
                        "+%" PRId64 "), so the output would be empty",
                        axes[i].axis, span == INT64_MAX ? span : span + 1, axes[i].k, axes[i].dil,
                        padded, axes[i].size_name, axes[i].in, axes[i].lo, axes[i].hi);
    }
    int64_t ho = conv_out_h(g), wo = conv_out_w(g);
    int64_t elt = (int64_t)conv_dtype_size(dt);
    const struct {
        const char *field, *what;
        int64_t count;
    } sizes[] = {
        {"x", "x", mul_sat(mul_sat(g->n, g->c), mul_sat(g->h, g->w))},
        {"w", "w", mul_sat(mul_sat(g->f, g->c / g->groups), mul_sat(g->kh, g->kw))},
        {"output", "y", mul_sat(mul_sat(g->n, g->f), mul_sat(ho, wo))},
    };
    for (int i = 0; i < 3; i++)
        if (mul_sat(sizes[i].count, elt) > TENSOR_BYTES_LIMIT)
            return fail(err, CONV_EOVERFLOW, sizes[i].field,
                        "%s would have more elements than fit in memory", sizes[i].what);
    // The GEMM dimensions: one image's pixels, and the unrolled kernel of one group.
    if (mul_sat(g->h, g->w) > SIZE_LIMIT || mul_sat(ho, wo) > SIZE_LIMIT)
        return fail(err, CONV_EOVERFLOW, "x", "one image of %" PRId64 "x%" PRId64
                    " pixels is larger than the %" PRId64 " pixels supported", g->h, g->w, SIZE_LIMIT);
    if (mul_sat(g->c / g->groups, mul_sat(g->kh, g->kw)) > SIZE_LIMIT)
        return fail(err, CONV_EOVERFLOW, "w", "the kernel has more than %" PRId64
                    " weights per filter", SIZE_LIMIT);
    return CONV_OK;
}

int64_t conv_numel_x(const conv_geom *g) { return g->n * g->c * g->h * g->w; }
int64_t conv_numel_w(const conv_geom *g) { return g->f * (g->c / g->groups) * g->kh * g->kw; }
int64_t conv_numel_y(const conv_geom *g) { return g->n * g->f * conv_out_h(g) * conv_out_w(g); }

int64_t conv_flops(const conv_geom *g) {
    int64_t macs = mul_sat(mul_sat(g->n, g->f), mul_sat(g->c / g->groups, g->kh * g->kw));
    return mul_sat(2, mul_sat(macs, mul_sat(conv_out_h(g), conv_out_w(g))));
}

// ---- Scratch layout -------------------------------------------------------------------
// Each thread gets an equal, 64-byte aligned region: [dw accumulator | im2col columns].
// The accumulator (w-sized) is there only with more than one thread: thread 0 accumulates
// into dw itself, the others privately, and their sums are added at the end.

#define ALIGN 64
static size_t align_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

// A 1x1 kernel with stride 1 and no padding reads x as its own column matrix. Dilation is
// irrelevant for a 1x1 kernel; a stride or a pad is not (darknet's bug was to ignore them).
static bool is_pointwise(const conv_geom *g) {
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_top == 0 &&
           g->pad_bottom == 0 && g->pad_left == 0 && g->pad_right == 0;
}

// Filters with few taps (C/G*kh*kw) make GEMMs with a small K, bound by im2col and packing
// traffic rather than arithmetic. With stride 1 these layers run "flat" instead: each output
// row is one vector loop over zero-padded planes with all taps summed in registers
// (conv_impl.inc). Measured on layer (d) (3 channels, 5x5, 75 taps): forward 1.25 ms flat vs
// 2.2 ms im2col + GEMM, dx 1.5 vs 2.1. One channel per group (depthwise, or C == 1) always
// goes without GEMM: flat with stride 1, otherwise row by row with no scratch at all.
#define FLAT_MAX_TAPS 128
static bool is_direct(const conv_geom *g) { return g->c == g->groups; }

static bool wants_flat(const conv_geom *g) {
    return g->stride_h == 1 && g->stride_w == 1 &&
           (is_direct(g) ||
            (!is_pointwise(g) && g->c / g->groups * g->kh * g->kw <= FLAT_MAX_TAPS));
}

// The flat path's planes, in elements: xp, a zero-padded input plane at pitch
// Wp = W + pl + pr (with room for the last taps' overreach, and for taps_row's whole blocks),
// and dyp, a dy plane at the same pitch between zero margins as wide as the kernel's reach, so
// that every tap of every pass reads inside them. Huge paddings make these saturate, and the
// region then never fits a cap.
static int64_t padded_pitch(const conv_geom *g) { return g->w + g->pad_left + g->pad_right; }
static int64_t kernel_reach(const conv_geom *g) {
    return add_sat(mul_sat(mul_sat(g->kh - 1, g->dilation_h), padded_pitch(g)),
                   mul_sat(g->kw - 1, g->dilation_w));
}
// taps_row() computes whole blocks of this many bytes of outputs, reading past a row's end;
// row_dots() takes DOT_TAPS taps of a kernel row at once, reading up to DOT_TAPS - 1 taps past
// its end.
#define TAP_BLOCK_BYTES 128
#define DOT_TAPS 4
static int64_t padded_plane(const conv_geom *g) {
    return add_sat(mul_sat(g->h + g->pad_top + g->pad_bottom, padded_pitch(g)),
                   add_sat(mul_sat(g->kw - 1 + DOT_TAPS - 1, g->dilation_w), TAP_BLOCK_BYTES / 4));
}
static int64_t dy_plane_ext(const conv_geom *g) {
    return add_sat(kernel_reach(g), add_sat(padded_plane(g), padded_pitch(g)));
}

static size_t accumulator_bytes(const conv_geom *g, conv_dtype dt, int threads);

// One worker's flat region: [dw accumulator | C/G padded x planes | F/G dy planes].
static size_t flat_region(const conv_geom *g, conv_dtype dt, int threads) {
    int64_t planes = add_sat(mul_sat(g->c / g->groups, padded_plane(g)),
                             mul_sat(g->f / g->groups, dy_plane_ext(g)));
    int64_t bytes = mul_sat(planes, (int64_t)conv_dtype_size(dt));
    if (bytes > (int64_t)(SIZE_MAX / MAX_THREADS / 4)) return SIZE_MAX / MAX_THREADS / 2;
    return accumulator_bytes(g, dt, threads) + align_up((size_t)bytes);
}

static size_t col_rows(const conv_geom *g) { return (size_t)(g->c / g->groups * g->kh * g->kw); }

static size_t accumulator_bytes(const conv_geom *g, conv_dtype dt, int threads) {
    return threads > 1 ? align_up((size_t)conv_numel_w(g) * conv_dtype_size(dt)) : 0;
}

static size_t region_min(const conv_geom *g, conv_dtype dt, int threads) {
    if (is_direct(g)) return 0;
    size_t cols = is_pointwise(g) ? 0 : align_up(col_rows(g) * conv_dtype_size(dt));
    return accumulator_bytes(g, dt, threads) + cols;
}

size_t conv_workspace_min(const conv_geom *g, conv_dtype dt, int threads) {
    threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    return (size_t)threads * region_min(g, dt, threads);
}

size_t conv_workspace_size(const conv_geom *g, conv_dtype dt, int threads, size_t cap) {
    threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    size_t least = conv_workspace_min(g, dt, threads);
    if (wants_flat(g)) {
        size_t flat = (size_t)threads * flat_region(g, dt, threads);
        if (flat <= cap) return flat < least ? least : flat;
    }
    if (is_direct(g)) return 0;
    int64_t pixels = conv_out_h(g) * conv_out_w(g);
    int64_t cols = is_pointwise(g) ? 0
                                   : add_sat(mul_sat(mul_sat((int64_t)col_rows(g), pixels),
                                                     (int64_t)conv_dtype_size(dt)),
                                             ALIGN);
    int64_t full = mul_sat(threads, add_sat((int64_t)accumulator_bytes(g, dt, threads), cols));
    size_t size = (uint64_t)full > cap ? cap : (size_t)full;
    return size < least ? least : size;
}

// ---- Threads ----------------------------------------------------------------------------
// Fork-join over `threads` workers, the caller being worker 0. If a thread cannot be started,
// its share runs on the caller afterwards: slower, never wrong, since each worker index owns
// its own scratch region and item range.

typedef void (*conv_worker_fn)(void *ctx, int worker);

typedef struct {
    conv_worker_fn fn;
    void *ctx;
    int worker;
} worker_start;

static void *worker_main(void *arg) {
    worker_start *s = arg;
    s->fn(s->ctx, s->worker);
    return NULL;
}

static void run_workers(int threads, conv_worker_fn fn, void *ctx) {
    pthread_t tid[MAX_THREADS];
    worker_start start[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    for (int t = 1; t < threads; t++) {
        start[t] = (worker_start){fn, ctx, t};
        started[t] = pthread_create(&tid[t], NULL, worker_main, &start[t]) == 0;
    }
    fn(ctx, 0);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            fn(ctx, t);
    }
}

// A pass splits into `items` independent pieces of work; worker t takes a contiguous range.
static void item_range(int64_t items, int threads, int worker, int64_t *first, int64_t *end) {
    *first = items * worker / threads;
    *end = items * (worker + 1) / threads;
}

// Below this much work per extra thread, starting a thread costs more than it saves.
#define FLOPS_PER_THREAD ((int64_t)4 << 20)

// How many workers a pass of `items` pieces uses, given the caller's thread budget and scratch.
static int plan_threads(const conv_geom *g, conv_dtype dt, const conv_exec *ex, int64_t items) {
    int64_t t = ex->threads < 1 ? 1 : ex->threads;
    if (t > MAX_THREADS) t = MAX_THREADS;
    if (t > items) t = items;
    int64_t by_work = conv_flops(g) / FLOPS_PER_THREAD;
    if (t > by_work) t = by_work;
    if (t < 1) t = 1;
    while (t > 1 && ex->workspace_bytes < conv_workspace_min(g, dt, (int)t)) t--;
    return (int)t;
}

// db reads dy once and needs no scratch: a thread per 2^20 elements of dy at the most.
static int bias_threads(const conv_geom *g, const conv_exec *ex) {
    int64_t t = ex && ex->threads > 1 ? ex->threads : 1;
    int64_t by_size = conv_numel_y(g) >> 20;
    if (t > MAX_THREADS) t = MAX_THREADS;
    if (t > g->f) t = g->f;
    if (t > by_size) t = by_size;
    return t < 1 ? 1 : (int)t;
}

// The scratch region of worker t, and how many output pixels its column buffer holds.
typedef struct {
    char *base;
    size_t bytes;        // per worker
    size_t accumulator;  // bytes at the start of each region reserved for a dw accumulator
    int64_t col_pixels;  // pixels per column chunk (0 for pointwise layers, which need none)
} scratch_plan;

static conv_status plan_scratch(scratch_plan *s, const conv_geom *g, conv_dtype dt,
                                const conv_exec *ex, int threads, conv_error *err) {
    size_t need = conv_workspace_min(g, dt, threads);
    if (ex->workspace_bytes < need || (need > 0 && !ex->workspace))
        return fail(err, CONV_EWORKSPACE, "workspace",
                    "the workspace has %zu bytes but this layer needs at least %zu",
                    ex->workspace_bytes, need);
    s->base = ex->workspace;
    s->bytes = ex->workspace_bytes / (size_t)threads / ALIGN * ALIGN;
    s->accumulator = accumulator_bytes(g, dt, threads);
    int64_t pixels = conv_out_h(g) * conv_out_w(g);
    s->col_pixels = 0;
    if (!is_pointwise(g)) {
        int64_t fit = (int64_t)((s->bytes - s->accumulator) / (col_rows(g) * conv_dtype_size(dt)));
        s->col_pixels = fit < pixels ? fit : pixels;
    }
    return CONV_OK;
}

// Chunks of output pixels per image and group: as the scratch allows, and at least enough
// pieces overall to give every thread work.
static int64_t pixel_chunks(const conv_geom *g, const scratch_plan *s, int threads) {
    int64_t pixels = conv_out_h(g) * conv_out_w(g);
    int64_t chunks = s->col_pixels > 0 ? (pixels + s->col_pixels - 1) / s->col_pixels : 1;
    int64_t images = g->n * g->groups;
    if (images * chunks < threads) {
        int64_t want = (threads + images - 1) / images;
        chunks = want < pixels ? want : pixels;
    }
    return chunks;
}

// For output columns oc .. oc+run-1 of one output row, the input column read by kernel column
// offset `off` (= b*dilation_w - pad_left) is (oc+j)*stride + off. Gives the j range [lo, hi)
// that lands inside 0 <= column < width; outside it the padding's zeros are read.
static void valid_span(int64_t oc, int64_t run, int64_t stride, int64_t off, int64_t width,
                       int64_t *lo, int64_t *hi) {
    int64_t first = off < 0 ? (-off + stride - 1) / stride : 0;
    int64_t last = width - 1 - off >= 0 ? (width - 1 - off) / stride : -1;
    *lo = first - oc < 0 ? 0 : first - oc < run ? first - oc : run;
    *hi = last + 1 - oc < *lo ? *lo : last + 1 - oc < run ? last + 1 - oc : run;
}

#define REAL float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
#include "core/conv_impl.inc"
#undef REAL
#undef SFX
#undef GEMM

#define REAL double
#define SFX(name) name##_f64
#define GEMM cblas_dgemm
#include "core/conv_impl.inc"
#undef REAL
#undef SFX
#undef GEMM

#define DISPATCH(dt, call_f32, call_f64) ((dt) == CONV_FLOAT64 ? (call_f64) : (call_f32))

conv_status conv2d_forward(void *y, const void *x, const void *w, const void *b,
                           const conv_geom *g, conv_dtype dt, const conv_exec *ex,
                           conv_error *err) {
    conv_status st = conv_geom_check(g, dt, err);
    if (st != CONV_OK) return st;
    return DISPATCH(dt, forward_f32(y, x, w, b, g, ex, err), forward_f64(y, x, w, b, g, ex, err));
}

conv_status conv2d_backward_data(void *dx, const void *dy, const void *w, const conv_geom *g,
                                 conv_dtype dt, const conv_exec *ex, conv_error *err) {
    conv_status st = conv_geom_check(g, dt, err);
    if (st != CONV_OK) return st;
    return DISPATCH(dt, backward_data_f32(dx, dy, w, g, ex, err),
                    backward_data_f64(dx, dy, w, g, ex, err));
}

conv_status conv2d_backward_weights(void *dw, const void *dy, const void *x, const conv_geom *g,
                                    conv_dtype dt, const conv_exec *ex, conv_error *err) {
    conv_status st = conv_geom_check(g, dt, err);
    if (st != CONV_OK) return st;
    return DISPATCH(dt, backward_weights_f32(dw, dy, x, g, ex, err),
                    backward_weights_f64(dw, dy, x, g, ex, err));
}

conv_status conv2d_backward_bias(void *db, const void *dy, const conv_geom *g, conv_dtype dt,
                                 const conv_exec *ex, conv_error *err) {
    conv_status st = conv_geom_check(g, dt, err);
    if (st != CONV_OK) return st;
    DISPATCH(dt, (backward_bias_f32(db, dy, g, ex), 0), (backward_bias_f64(db, dy, g, ex), 0));
    return CONV_OK;
}
