// conv: geometry, scratch sizing, the work split across threads, the ISA chosen at start-up,
// and which algorithm runs each pass (the algorithms are in their own files: conv_internal.h).
#include "core/conv.h"

#include <cblas.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv_internal.h"
#include "core/gemm.h"

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

// How core/ fails: *err (when err is not NULL) gets `field` and the printf-formatted message;
// returns `status`, so that a check reads `return conv_fail(...)`.
conv_status conv_fail(conv_error *err, conv_status status, const char *field, const char *fmt,
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
int64_t conv_mul_sat(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}
int64_t conv_add_sat(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

// No tensor may exceed 256 TiB: far beyond any machine, and it keeps all scratch arithmetic
// (up to MAX_THREADS regions of a few tensors each) inside int64 and size_t.
#define TENSOR_BYTES_LIMIT ((int64_t)1 << 48)

// Passes use at most this many threads; the scratch queries size for no more.
#define MAX_THREADS CONV_MAX_THREADS

// BLAS takes 32-bit sizes and leading dimensions; everything else is byte arithmetic.
#define SIZE_LIMIT ((int64_t)INT_MAX)

conv_status conv_geom_check(const conv_geom *g, conv_dtype dt, conv_error *err) {
    if (dt != CONV_FLOAT32 && dt != CONV_FLOAT64)
        return conv_fail(err, CONV_EINVAL, "dtype", "dtype %d is neither float32 nor float64", (int)dt);
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
            return conv_fail(err, CONV_EINVAL, fields[i].field, "%s is %" PRId64 "; it must be at least %" PRId64,
                             fields[i].what, fields[i].value, fields[i].min);
        if (fields[i].value > SIZE_LIMIT)
            return conv_fail(err, CONV_EOVERFLOW, fields[i].field, "%s is %" PRId64 "; the largest supported is %" PRId64,
                             fields[i].what, fields[i].value, SIZE_LIMIT);
    }
    if (g->c % g->groups)
        return conv_fail(err, CONV_EINVAL, "groups",
                         "groups=%" PRId64 " must divide the %" PRId64 " input channels of x", g->groups, g->c);
    if (g->f % g->groups)
        return conv_fail(err, CONV_EINVAL, "groups",
                         "groups=%" PRId64 " must divide the %" PRId64 " filters (output channels) of w",
                         g->groups, g->f);
    const struct {
        const char *axis, *size_name;
        int64_t in, k, dil, lo, hi;
    } axes[] = {{"height", "H", g->h, g->kh, g->dilation_h, g->pad_top, g->pad_bottom},
                {"width", "W", g->w, g->kw, g->dilation_w, g->pad_left, g->pad_right}};
    for (int i = 0; i < 2; i++) {
        int64_t span = conv_mul_sat(axes[i].dil, axes[i].k - 1);
        int64_t padded = axes[i].in + axes[i].lo + axes[i].hi; // each term <= INT_MAX
        if (span >= padded)
            return conv_fail(err, CONV_EINVAL, "output",
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
        {"x", "x", conv_mul_sat(conv_mul_sat(g->n, g->c), conv_mul_sat(g->h, g->w))},
        {"w", "w", conv_mul_sat(conv_mul_sat(g->f, g->c / g->groups), conv_mul_sat(g->kh, g->kw))},
        {"output", "y", conv_mul_sat(conv_mul_sat(g->n, g->f), conv_mul_sat(ho, wo))},
    };
    for (int i = 0; i < 3; i++)
        if (conv_mul_sat(sizes[i].count, elt) > TENSOR_BYTES_LIMIT)
            return conv_fail(err, CONV_EOVERFLOW, sizes[i].field,
                             "%s would have more elements than fit in memory", sizes[i].what);
    // The GEMM dimensions: one image's pixels, and the unrolled kernel of one group.
    if (conv_mul_sat(g->h, g->w) > SIZE_LIMIT || conv_mul_sat(ho, wo) > SIZE_LIMIT)
        return conv_fail(err, CONV_EOVERFLOW, "x", "one image of %" PRId64 "x%" PRId64
                         " pixels is larger than the %" PRId64 " pixels supported", g->h, g->w, SIZE_LIMIT);
    if (conv_mul_sat(g->c / g->groups, conv_mul_sat(g->kh, g->kw)) > SIZE_LIMIT)
        return conv_fail(err, CONV_EOVERFLOW, "w", "the kernel has more than %" PRId64
                         " weights per filter", SIZE_LIMIT);
    return CONV_OK;
}

int64_t conv_numel_x(const conv_geom *g) { return g->n * g->c * g->h * g->w; }
int64_t conv_numel_w(const conv_geom *g) { return g->f * (g->c / g->groups) * g->kh * g->kw; }
int64_t conv_numel_y(const conv_geom *g) { return g->n * g->f * conv_out_h(g) * conv_out_w(g); }

int64_t conv_flops(const conv_geom *g) {
    int64_t macs = conv_mul_sat(conv_mul_sat(g->n, g->f), conv_mul_sat(g->c / g->groups, g->kh * g->kw));
    return conv_mul_sat(2, conv_mul_sat(macs, conv_mul_sat(conv_out_h(g), conv_out_w(g))));
}

// ---- Scratch ----------------------------------------------------------------------------
// Each worker gets an equal, 64-byte aligned region, laid out by its algorithm. The gemm
// path's need is the floor of every layer but depthwise ones (which run without scratch),
// so that any workspace of conv_workspace_min bytes runs every pass.

size_t conv_accumulator_bytes(const conv_geom *g, conv_dtype dt, int threads) {
    return threads > 1 ? conv_align_up((size_t)conv_numel_w(g) * conv_dtype_size(dt)) : 0;
}

static int clamp_threads(int threads) {
    return threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
}

size_t conv_workspace_min(const conv_geom *g, conv_dtype dt, int threads) {
    threads = clamp_threads(threads);
    if (conv_is_depthwise(g)) return 0;
    return (size_t)threads * conv_gemm_region_min(g, dt, threads);
}

size_t conv_workspace_size(const conv_geom *g, conv_dtype dt, int threads, size_t cap) {
    threads = clamp_threads(threads);
    size_t size = conv_workspace_min(g, dt, threads);
    if (conv_is_depthwise(g)) {
        // The rings where the cap allows; the row path runs without scratch.
        const size_t rings = conv_depthwise_workspace(g, dt, threads);
        if (rings <= cap) size = rings;
    } else {
        // Flat where some pass wants it and it fits; im2col + GEMM's columns unless every
        // pass runs flat.
        bool all_flat = true, any_flat = false;
        for (conv_pass_id p = CONV_PASS_FORWARD; p <= CONV_PASS_WEIGHTS; p++) {
            const bool wanted = conv_flat_wanted(g, dt, p);
            all_flat &= wanted;
            any_flat |= wanted;
        }
        if (conv_shift_applies(g)) {
            const size_t shift = conv_shift_workspace(g, dt, threads);
            if (shift <= cap && shift > size) size = shift;
        }
        if (conv_phase_applies(g)) {
            const size_t phase = conv_phase_workspace(g, dt, threads);
            if (phase <= cap && phase > size) size = phase;
        }
        const size_t flat = any_flat ? conv_flat_workspace(g, dt, threads) : SIZE_MAX;
        if (flat <= cap && flat > size) size = flat;
        if (flat > cap || !all_flat) {
            const size_t gemm = conv_gemm_workspace(g, dt, threads, cap);
            if (gemm > size) size = gemm;
        }
    }
    if (conv_winograd_applies(g)) {
        size_t wino = conv_winograd_workspace(g, dt, threads);
        if (wino > cap) wino = cap;
        if (wino > size) size = wino;
    }
    return size;
}

// ---- Threads (conv_workers.c runs them) ----------------------------------------------------
// Below this much work per extra thread, starting a thread costs more than it saves.
#define FLOPS_PER_THREAD ((int64_t)4 << 20)

int conv_plan_threads(const conv_run *r, int64_t items) {
    int64_t t = r->ex->threads < 1 ? 1 : r->ex->threads;
    if (t > MAX_THREADS) t = MAX_THREADS;
    if (t > items) t = items;
    int64_t by_work = conv_flops(r->g) / FLOPS_PER_THREAD;
    if (t > by_work) t = by_work;
    if (t < 1) t = 1;
    while (t > 1 && r->ex->workspace_bytes < conv_workspace_min(r->g, r->dt, (int)t)) t--;
    return (int)t;
}

bool conv_plan_regions(conv_run *r, int64_t items, conv_region_fn *region) {
    const conv_exec *ex = r->ex;
    if (!ex->workspace) return false;
    int threads = conv_plan_threads(r, items);
    while (threads > 1 && ex->workspace_bytes / (size_t)threads / CONV_ALIGN * CONV_ALIGN <
                              region(r->g, r->dt, threads))
        threads--;
    const size_t each = ex->workspace_bytes / (size_t)threads / CONV_ALIGN * CONV_ALIGN;
    if (each < region(r->g, r->dt, threads)) return false;
    r->scratch = ex->workspace;
    r->region_bytes = each;
    r->accumulator = conv_accumulator_bytes(r->g, r->dt, threads);
    r->threads = threads;
    return true;
}

void conv_add_partial_sums(const conv_run *r) {
    const int64_t count = conv_numel_w(r->g);
    for (int t = 1; t < r->threads; t++)
        r->k->axpy(r->out, r->scratch + (size_t)t * r->region_bytes, count, 1, 1.0);
}

void conv_gemm_call(const conv_run *r, bool trans_a, bool trans_b, int64_t m, int64_t n,
                    int64_t k, const void *a, int64_t lda, const void *b, int64_t ldb, bool add,
                    void *c, int64_t ldc) {
    const bool f64 = r->dt == CONV_FLOAT64;
    if (r->isa == CONV_ISA_AVX512) {
        (f64 ? gemm_avx512_f64 : gemm_avx512_f32)(trans_a, trans_b, m, n, k, a, lda, b, ldb, add,
                                                  c, ldc);
        return;
    }
    const enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    if (f64)
        cblas_dgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, 1, a, (int)lda, b, (int)ldb,
                    add, c, (int)ldc);
    else
        cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, 1, a, (int)lda, b, (int)ldb,
                    add, c, (int)ldc);
}

void conv_gemm_call_rows(const conv_run *r, bool trans_a, bool trans_b, int64_t m, int64_t n,
                         int64_t k, const void *a, int64_t lda, const void *b, gemm_rows b_rows,
                         const void *bias, bool add, void *c, int64_t ldc) {
    if (r->isa == CONV_ISA_AVX512) {
        (r->dt == CONV_FLOAT64 ? gemm_avx512_rows_f64 : gemm_avx512_rows_f32)(
            trans_a, trans_b, m, n, k, a, lda, b, b_rows, bias, add, c, ldc);
        return;
    }
    for (int64_t i = 0; bias && i < m; i++)
        r->k->fill(conv_at(c, i * ldc, r->elt), n, conv_load(bias, i, r->dt));
    conv_gemm_call(r, trans_a, trans_b, m, n, k, a, lda, b, b_rows.outer, add || bias, c, ldc);
}

// ---- ISA ----------------------------------------------------------------------------------

conv_isa conv_isa_best(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        return CONV_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CONV_ISA_AVX2;
#endif
    return CONV_ISA_PORTABLE;
}

static const char *const isa_names[] = {
    [CONV_ISA_PORTABLE] = "portable", [CONV_ISA_AVX2] = "avx2", [CONV_ISA_AVX512] = "avx512"};

static conv_isa default_isa;
static pthread_once_t default_isa_once = PTHREAD_ONCE_INIT;

static void choose_default_isa(void) {
    default_isa = conv_isa_best();
    const char *want = getenv("CONVD_ISA");
    for (conv_isa isa = CONV_ISA_PORTABLE; want && isa <= default_isa; isa++)
        if (strcmp(want, isa_names[isa]) == 0) default_isa = isa;
}

conv_isa conv_isa_default(void) {
    pthread_once(&default_isa_once, choose_default_isa);
    return default_isa;
}

const char *conv_isa_name(conv_isa isa) {
    if (isa == CONV_ISA_AUTO) isa = conv_isa_default();
    return isa >= CONV_ISA_PORTABLE && isa <= CONV_ISA_AVX512 ? isa_names[isa] : "unknown";
}

const char *conv_gemm_name(conv_isa isa) {
    if (isa == CONV_ISA_AUTO) isa = conv_isa_default();
    return isa == CONV_ISA_AVX512 ? "convd-avx512" : "openblas";
}

// The pass's ISA (ex->isa, or the default) and its kernels for `dt`, or fails when this CPU
// cannot run it.
static conv_status pick_kernels(conv_run *r, const conv_exec *ex, conv_dtype dt,
                                conv_error *err) {
    static const conv_kernels *const tables[][2] = {
        [CONV_ISA_PORTABLE] = {&conv_kernels_portable_f32, &conv_kernels_portable_f64},
        [CONV_ISA_AVX2] = {&conv_kernels_avx2_f32, &conv_kernels_avx2_f64},
        [CONV_ISA_AVX512] = {&conv_kernels_avx512_f32, &conv_kernels_avx512_f64},
    };
    conv_isa isa = ex && ex->isa != CONV_ISA_AUTO ? ex->isa : conv_isa_default();
    if (isa < CONV_ISA_PORTABLE || isa > conv_isa_best())
        return conv_fail(err, CONV_EINVAL, "isa", "the ISA %d (%s) is not one this CPU runs (best: %s)",
                         (int)isa, conv_isa_name(isa), conv_isa_name(conv_isa_best()));
    r->isa = isa;
    r->k = tables[isa][dt == CONV_FLOAT64];
    return CONV_OK;
}

// ---- Which algorithm ----------------------------------------------------------------------
// Winograd's GEMMs have K = channels per group: below this many, transforms and packing
// outweigh the multiplies saved (measured on one thread: 16 channels 0.8x the direct path's
// speed, 32 about even, 64 1.7x). Below WINOGRAD_MIN_PIXELS outputs per plane the 2x2 tiles'
// overhang (7x7 takes 8x8) and the kernel transform, done once per pass, weigh more than the
// tiles: 512 channels at 7x7 ran forward 0.88x the direct path.
#define WINOGRAD_MIN_CHANNELS 32
#define WINOGRAD_MIN_PIXELS 64

// Outputs of the largest phase plane: Winograd tiles a dilated layer's output by phases (the
// rows and columns of one remainder modulo the dilation), each a dilation-1 correlation.
static int64_t phase_pixels(const conv_geom *g) {
    return ((conv_out_h(g) + g->dilation_h - 1) / g->dilation_h) *
           ((conv_out_w(g) + g->dilation_w - 1) / g->dilation_w);
}

static const char *const algorithm_names[] = {
    [CONV_ALGO_AUTO] = "auto", [CONV_ALGO_DIRECT] = "direct", [CONV_ALGO_WINOGRAD] = "winograd"};

const char *conv_algorithm_name(conv_algorithm algo) {
    return algo >= CONV_ALGO_AUTO && algo <= CONV_ALGO_WINOGRAD ? algorithm_names[algo] : "unknown";
}

conv_status conv_pick_algorithm(const conv_geom *g, conv_dtype dt, conv_algorithm want,
                                size_t workspace_bytes, conv_algorithm *algo, conv_error *err) {
    const bool applies = conv_winograd_applies(g);
    const bool fits = workspace_bytes >= conv_winograd_workspace_min(g, dt);
    switch (want) {
    case CONV_ALGO_DIRECT: *algo = CONV_ALGO_DIRECT; return CONV_OK;
    case CONV_ALGO_WINOGRAD:
        if (!applies)
            return conv_fail(err, CONV_EINVAL, "algorithm",
                             "winograd applies only to 3x3 kernels with stride 1; this layer has a "
                             "%" PRId64 "x%" PRId64 " kernel and stride %" PRId64 "x%" PRId64
                             " (use \"auto\" or \"direct\")",
                             g->kh, g->kw, g->stride_h, g->stride_w);
        if (!fits)
            return conv_fail(err, CONV_EWORKSPACE, "workspace",
                             "the workspace has %zu bytes but Winograd needs at least %zu for this "
                             "layer", workspace_bytes, conv_winograd_workspace_min(g, dt));
        *algo = CONV_ALGO_WINOGRAD;
        return CONV_OK;
    case CONV_ALGO_AUTO:
        *algo = applies && fits && g->c / g->groups >= WINOGRAD_MIN_CHANNELS &&
                        g->f / g->groups >= WINOGRAD_MIN_CHANNELS &&
                        phase_pixels(g) >= WINOGRAD_MIN_PIXELS
                    ? CONV_ALGO_WINOGRAD
                    : CONV_ALGO_DIRECT;
        return CONV_OK;
    default:
        return conv_fail(err, CONV_EINVAL, "algorithm", "algorithm %d is none of auto, direct, winograd",
                         (int)want);
    }
}

// ---- The passes ---------------------------------------------------------------------------
// Which algorithm runs: Winograd where conv_pick_algorithm says so; else for depthwise layers
// conv_depthwise.c where the workspace holds its rings, the row path where not; for the
// others the shifted-row GEMMs where conv_shift_applies (AVX-512, and the workspace holds
// them), flat where conv_flat_wanted for the pass and the workspace holds it, the phase-plane
// GEMMs for a strided layer where conv_phase_applies (AVX-512, and the workspace holds
// them), im2col + GEMM otherwise.

conv_status conv_start_run(conv_run *r, const conv_geom *g, conv_dtype dt,
                           const conv_exec *ex, conv_error *err) {
    conv_status st = conv_geom_check(g, dt, err);
    if (st != CONV_OK) return st;
    *r = (conv_run){.g = g, .dt = dt, .elt = conv_dtype_size(dt), .ex = ex};
    return pick_kernels(r, ex, dt, err);
}

// Like conv_start_run, and *winograd tells whether the pass runs Winograd.
static conv_status start_pass(conv_run *r, bool *winograd, const conv_geom *g, conv_dtype dt,
                              const conv_exec *ex, conv_error *err) {
    conv_status st = conv_start_run(r, g, dt, ex, err);
    if (st != CONV_OK) return st;
    conv_algorithm algo;
    st = conv_pick_algorithm(g, dt, ex->algorithm, ex->workspace ? ex->workspace_bytes : 0,
                             &algo, err);
    *winograd = algo == CONV_ALGO_WINOGRAD;
    return st;
}

conv_status conv2d_forward(void *y, const void *x, const void *w, const void *b,
                           const conv_geom *g, conv_dtype dt, const conv_exec *ex,
                           conv_error *err) {
    conv_run r;
    bool winograd;
    conv_status st = start_pass(&r, &winograd, g, dt, ex, err);
    if (st != CONV_OK) return st;
    r.out = y, r.in = x, r.w = w, r.b = b;
    if (winograd) return conv_winograd_forward(&r, err);
    if (conv_is_depthwise(g)) {
        if (!conv_depthwise_forward(&r)) conv_rows_forward(&r);
        return CONV_OK;
    }
    if (conv_shift_applies(g) && conv_shift_forward(&r)) return CONV_OK;
    if (conv_flat_wanted(g, dt, CONV_PASS_FORWARD) && conv_flat_forward(&r)) return CONV_OK;
    if (conv_phase_applies(g) && conv_phase_forward(&r)) return CONV_OK;
    return conv_gemm_forward(&r, err);
}

conv_status conv2d_backward_data(void *dx, const void *dy, const void *w, const conv_geom *g,
                                 conv_dtype dt, const conv_exec *ex, conv_error *err) {
    conv_run r;
    bool winograd;
    conv_status st = start_pass(&r, &winograd, g, dt, ex, err);
    if (st != CONV_OK) return st;
    r.out = dx, r.dy = dy, r.w = w;
    if (winograd) return conv_winograd_backward_data(&r, err);
    if (conv_is_depthwise(g)) {
        if (!conv_depthwise_backward_data(&r)) conv_rows_backward_data(&r);
        return CONV_OK;
    }
    if (conv_shift_applies(g) && conv_shift_backward_data(&r)) return CONV_OK;
    if (conv_flat_wanted(g, dt, CONV_PASS_DATA) && conv_flat_backward_data(&r)) return CONV_OK;
    if (conv_phase_applies(g) && conv_phase_backward_data(&r)) return CONV_OK;
    return conv_gemm_backward_data(&r, err);
}

conv_status conv2d_backward_weights(void *dw, const void *dy, const void *x, const conv_geom *g,
                                    conv_dtype dt, const conv_exec *ex, conv_error *err) {
    conv_run r;
    bool winograd;
    conv_status st = start_pass(&r, &winograd, g, dt, ex, err);
    if (st != CONV_OK) return st;
    r.out = dw, r.dy = dy, r.in = x;
    if (winograd) return conv_winograd_backward_weights(&r, err);
    if (conv_is_depthwise(g)) {
        if (!conv_depthwise_backward_weights(&r)) conv_rows_backward_weights(&r);
        return CONV_OK;
    }
    if (conv_shift_applies(g) && conv_shift_backward_weights(&r)) return CONV_OK;
    if (conv_flat_wanted(g, dt, CONV_PASS_WEIGHTS) && conv_flat_backward_weights(&r))
        return CONV_OK;
    if (conv_phase_applies(g) && conv_phase_backward_weights(&r)) return CONV_OK;
    return conv_gemm_backward_weights(&r, err);
}

conv_status conv2d_backward_bias(void *db, const void *dy, const conv_geom *g, conv_dtype dt,
                                 const conv_exec *ex, conv_error *err) {
    static const conv_exec one_thread = {.threads = 1};
    conv_run r;
    conv_status st = conv_start_run(&r, g, dt, ex ? ex : &one_thread, err);
    if (st != CONV_OK) return st;
    r.out = db, r.dy = dy;
    conv_rows_backward_bias(&r);
    return CONV_OK;
}
