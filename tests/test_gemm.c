// convd's own GEMM (core/gemm.h) on every ISA variant this CPU runs, against a naive float64
// GEMM of the same inputs: hundreds of random shapes (1, and sizes either side of the
// micro-tile, panel and cache-block edges), every transpose combination, add or not, leading
// dimensions beyond the minimum (whose gaps must stay untouched), both dtypes; the same with B's
// rows placed by gemm_rows (overlapping, shifted both ways, as a conv layer's column matrix
// is), and with B's columns also placed by gemm_cols (image rows at a wider pitch). Then calls from several threads at once, each on a stack of GEMM_STACK_BYTES and a
// little more.
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv.h"
#include "core/gemm.h"
#include "tests/testlib.h"

typedef struct {
    const char *name;
    conv_isa isa; // the variant runs where conv_isa_best() is at least this
    gemm_fn *f32, *f64;
    gemm_rows_fn *rows_f32, *rows_f64;
    gemm_cols_fn *cols_f32, *cols_f64;
} gemm_variant;

static const gemm_variant variants[] = {
    {"avx512", CONV_ISA_AVX512, gemm_avx512_f32, gemm_avx512_f64, gemm_avx512_rows_f32,
     gemm_avx512_rows_f64, gemm_avx512_cols_f32, gemm_avx512_cols_f64},
};

// What a C cell left outside the m x n result (ldc > n) must still hold afterwards.
#define GAP 1234.5

typedef struct {
    bool f64, trans_a, trans_b, add;
    int64_t m, n, k, lda, ldb, ldc;
    gemm_rows rows; // B's rows when rows.taps > 0 (the gemm_rows_fn), else ldb apart
    bool bias;      // gemm_rows_fn only: a random bias per row of C
    int64_t offsets[9]; // rows.offsets points here when the taps have a table
    gemm_cols cols;     // B's columns (not transposed) when cols.width > 0 (the gemm_cols_fn)
} gemm_shape;

// A random dimension: mostly small, often just either side of an edge of the AVX-512 blocking
// (micro-tile 14 rows x 16 or 32 columns, A blocks of 140 rows, k slices of 128 or 256).
static int64_t random_dim(uint64_t *rng) {
    static const int64_t edges[] = {1, 13, 14, 15, 16, 17, 28, 31, 32, 33, 64, 127, 128, 129,
                                    139, 140, 141, 255, 256, 257, 281};
    switch (t_rand_int(rng, 0, 3)) {
    case 0: return t_rand_int(rng, 1, 8);
    case 1: return t_rand_int(rng, 1, 80);
    default: return edges[t_rand_int(rng, 0, (int64_t)(sizeof edges / sizeof *edges) - 1)];
    }
}

// Where stored row r of B starts, in elements from B's base.
static int64_t row_start(const gemm_shape *s, int64_t r) {
    if (s->rows.taps == 0) return r * s->ldb;
    const int64_t t = r % s->rows.taps;
    return r / s->rows.taps * s->rows.outer +
           (s->rows.offsets ? s->rows.offsets[t] - s->rows.offsets[0] : t * s->rows.inner);
}

// Where column j of B lies along its stored rows (gemm.h's gemm_cols).
static int64_t b_col(const gemm_shape *s, int64_t j) {
    return s->cols.width ? j / s->cols.width * s->cols.pitch + j % s->cols.width : j;
}

// Element (i, j) of op(X), X's stored row r starting at element start(r), transposed or not.
static double op_at(const void *x, bool f64, bool trans, const gemm_shape *s,
                    int64_t (*start)(const gemm_shape *, int64_t), int64_t i, int64_t j) {
    int64_t at = trans ? start(s, j) + i : start(s, i) + j;
    return f64 ? ((const double *)x)[at] : ((const float *)x)[at];
}
static int64_t a_row_start(const gemm_shape *s, int64_t r) { return r * s->lda; }

// Runs one GEMM of `fn` and checks every element of C against the float64 sum of the same
// products, within (k + 2) unit roundoffs of the sum of their magnitudes (the classic bound
// on a float sum of k products, which a wrong element overshoots by orders of magnitude),
// and that the gaps between C's rows kept GAP. Returns whether it all held.
static bool check_shape(const gemm_variant *var, const gemm_shape *s, uint64_t *rng, char *why,
                        size_t why_len) {
    const size_t elt = s->f64 ? 8 : 4;
    const int64_t a_rows = s->trans_a ? s->k : s->m, b_rows = s->trans_b ? s->n : s->k;
    // B's extent: from its lowest row start (negative with a negative inner step) to the end
    // of its furthest row; `b` points at row 0.
    int64_t b_lo = 0, b_hi = 0;
    const int64_t b_len = s->trans_b ? s->k : b_col(s, s->n - 1) + 1;
    for (int64_t r = 0; r < b_rows; r++) {
        const int64_t at = row_start(s, r);
        b_lo = at < b_lo ? at : b_lo;
        b_hi = at + b_len > b_hi ? at + b_len : b_hi;
    }
    void *a = malloc((size_t)(a_rows * s->lda) * elt), *b_mem = malloc((size_t)(b_hi - b_lo) * elt);
    void *b = b_mem ? (char *)b_mem - b_lo * (int64_t)elt : NULL;
    void *c = malloc((size_t)(s->m * s->ldc) * elt);
    double *c0 = malloc(sizeof(double) * (size_t)(s->m * s->ldc));
    void *bias = malloc((size_t)s->m * elt);
    if (!a || !b || !c || !c0 || !bias) {
        snprintf(why, why_len, "out of memory");
        free(a), free(b_mem), free(c), free(c0), free(bias);
        return false;
    }
    for (int64_t i = 0; i < s->m; i++) {
        double v = s->bias ? t_rand_uniform(rng, -1, 1) : 0;
        s->f64 ? (void)(((double *)bias)[i] = v) : (void)(((float *)bias)[i] = (float)v);
    }
    for (int64_t e = 0; e < a_rows * s->lda; e++) {
        double v = t_rand_uniform(rng, -1, 1);
        s->f64 ? (void)(((double *)a)[e] = v) : (void)(((float *)a)[e] = (float)v);
    }
    for (int64_t e = 0; e < b_hi - b_lo; e++) {
        double v = t_rand_uniform(rng, -1, 1);
        s->f64 ? (void)(((double *)b_mem)[e] = v) : (void)(((float *)b_mem)[e] = (float)v);
    }
    for (int64_t e = 0; e < s->m * s->ldc; e++) {
        // Without `add` the old C is NaN: it must not leak into the result.
        double v = e % s->ldc >= s->n ? GAP : s->add ? t_rand_uniform(rng, -1, 1) : NAN;
        if (s->f64)
            ((double *)c)[e] = v;
        else
            ((float *)c)[e] = (float)v;
        c0[e] = s->f64 ? ((double *)c)[e] : ((float *)c)[e];
    }
    if (s->cols.width > 0)
        (s->f64 ? var->cols_f64 : var->cols_f32)(s->m, s->n, s->k, a, s->lda, b, s->rows, s->cols,
                                                 s->bias ? bias : NULL, s->add, c, s->ldc);
    else if (s->rows.taps > 0)
        (s->f64 ? var->rows_f64 : var->rows_f32)(s->trans_a, s->trans_b, s->m, s->n, s->k, a, s->lda,
                                                 b, s->rows, s->bias ? bias : NULL, s->add, c,
                                                 s->ldc);
    else
        (s->f64 ? var->f64 : var->f32)(s->trans_a, s->trans_b, s->m, s->n, s->k, a, s->lda, b,
                                       s->ldb, s->add, c, s->ldc);
    const double unit = s->f64 ? 0x1p-53 : 0x1p-24;
    bool ok = true;
    for (int64_t i = 0; i < s->m && ok; i++)
        for (int64_t j = 0; j < s->ldc && ok; j++) {
            const int64_t e = i * s->ldc + j;
            const double got = s->f64 ? ((double *)c)[e] : ((float *)c)[e];
            if (j >= s->n) {
                if (got != GAP) {
                    snprintf(why, why_len, "C[%lld][%lld], beyond n, became %g", (long long)i,
                             (long long)j, got);
                    ok = false;
                }
                continue;
            }
            const double old = s->add ? c0[e] : 0;
            const double bi = s->f64 ? ((double *)bias)[i] : ((float *)bias)[i];
            double want = old + bi, mag = fabs(old) + fabs(bi);
            for (int64_t kk = 0; kk < s->k; kk++) {
                const double p = op_at(a, s->f64, s->trans_a, s, a_row_start, i, kk) *
                                 op_at(b, s->f64, s->trans_b, s, row_start, kk, b_col(s, j));
                want += p;
                mag += fabs(p);
            }
            if (!(fabs(got - want) <= (double)(s->k + 2 + s->bias) * unit * mag)) {
                snprintf(why, why_len, "C[%lld][%lld] = %.17g, the float64 sum is %.17g",
                         (long long)i, (long long)j, got, want);
                ok = false;
            }
        }
    free(a), free(b_mem), free(c), free(c0), free(bias);
    return ok;
}

static void describe(char *out, size_t len, const gemm_variant *v, const gemm_shape *s) {
    snprintf(out, len, "%s %s m=%lld n=%lld k=%lld trans_a=%d trans_b=%d add=%d lda=%lld ldb=%lld "
                       "ldc=%lld rows={%lld,%lld,%lld%s} cols={%lld,%lld}",
             v->name, s->f64 ? "f64" : "f32", (long long)s->m, (long long)s->n, (long long)s->k,
             s->trans_a, s->trans_b, s->add, (long long)s->lda, (long long)s->ldb,
             (long long)s->ldc, (long long)s->rows.outer, (long long)s->rows.inner,
             (long long)s->rows.taps, s->rows.offsets ? ", table" : "", (long long)s->cols.width,
             (long long)s->cols.pitch);
}

enum { RANDOM_SHAPES = 600 };

// With `rows`, B's rows are placed by a random gemm_rows: 1-9 taps, a step of -3..3 between
// taps (overlapping rows) or, a third of the time, a table of offsets -40..40 (the taps of a
// strided layer's phase planes, conv_phase.c), groups of taps a row's length or a few elements
// more apart; half of them with a bias. With `cols` (and rows) A and B are not transposed, B's
// columns rows of 1-40 pixels (either side of a vector's 8 and 16 lanes) at a pitch 0-5
// wider: a vector of B's panel then spans one row end, several, or none.
static void test_random_shapes(const gemm_variant *v, bool rows, bool cols) {
    uint64_t rng = cols ? 0xC015ull : rows ? 0x7A95ull : 0x6E33ull;
    int failures = 0, combos[2][2][2][2] = {{{{0}}}};
    for (int t = 0; t < RANDOM_SHAPES; t++) {
        gemm_shape s = {.f64 = t % 2, .trans_a = !cols && t / 2 % 2, .trans_b = !cols && t / 4 % 2,
                        .add = t / 8 % 2};
        s.m = random_dim(&rng);
        s.n = random_dim(&rng);
        s.k = random_dim(&rng);
        // leading dimensions: the minimum half the time, else a few elements more
        s.lda = (s.trans_a ? s.m : s.k) + (t_rand_int(&rng, 0, 1) ? t_rand_int(&rng, 1, 5) : 0);
        s.ldb = (s.trans_b ? s.k : s.n) + (t_rand_int(&rng, 0, 1) ? t_rand_int(&rng, 1, 5) : 0);
        s.ldc = s.n + (t_rand_int(&rng, 0, 1) ? t_rand_int(&rng, 1, 5) : 0);
        if (rows)
            s.rows = (gemm_rows){.outer = s.ldb + t_rand_int(&rng, 0, 12),
                                 .inner = t_rand_int(&rng, -3, 3),
                                 .taps = t_rand_int(&rng, 1, 9)};
        if (rows && t_rand_int(&rng, 0, 2) == 0) {
            for (int64_t i = 0; i < s.rows.taps; i++) s.offsets[i] = t_rand_int(&rng, -40, 40);
            s.rows.offsets = s.offsets;
        }
        s.bias = rows && t_rand_int(&rng, 0, 1);
        if (cols) {
            s.cols.width = t_rand_int(&rng, 0, 1) ? t_rand_int(&rng, 1, 40) : s.n;
            s.cols.pitch = s.cols.width + t_rand_int(&rng, 0, 5);
        }
        char why[256], desc[256];
        bool ok = check_shape(v, &s, &rng, why, sizeof why);
        combos[s.f64][s.trans_a][s.trans_b][s.add]++;
        if (!ok && failures++ < 10) {
            describe(desc, sizeof desc, v, &s);
            CHECK(false, "%s: %s", desc, why);
        }
    }
    const char *kind = cols ? " (B by gemm_rows and gemm_cols)" : rows ? " (B by gemm_rows)" : "";
    CHECK(failures == 0, "%s%s: %d of %d random shapes wrong", v->name, kind, failures,
          RANDOM_SHAPES);
    int least = RANDOM_SHAPES;
    for (int i = 0; i < 16; i++) {
        if (cols && i / 2 % 4) continue; // gemm_cols_fn transposes neither A nor B
        int n = combos[i / 8][i / 4 % 2][i / 2 % 2][i % 2];
        least = n < least ? n : least;
    }
    CHECK(least >= RANDOM_SHAPES / 20, "%s: a dtype/transpose/add combination ran only %d times",
          v->name, least);
    printf("%s%s: %d random shapes, each dtype x transpose x add combination at least %d times\n",
           v->name, kind, RANDOM_SHAPES, least);
}

// The GEMMs of layer (b) of the bench, one image (forward, backward data, backward weights as
// core/conv_gemm.c calls them), a k that spans several slices (sizes past every block),
// layer (m)'s GEMMs on shifted rows and (f)'s forward on phase planes.
static void test_layer_shapes(const gemm_variant *v) {
    const gemm_shape shapes[] = {
        {false, false, false, true, 64, 3136, 576, 576, 3136, 3136, {0}, false, {0}, {0, 0}},
        {false, true, false, false, 576, 3136, 64, 576, 3136, 3136, {0}, false, {0}, {0, 0}},
        {false, false, true, true, 64, 576, 3136, 3136, 3136, 576, {0}, false, {0}, {0, 0}},
        {true, false, true, false, 150, 70, 1000, 1000, 1000, 70, {0}, false, {0}, {0, 0}},
        {true, true, false, true, 300, 45, 333, 300, 45, 45, {0}, false, {0}, {0, 0}},
        // conv1d (m), one image, as core/conv_shift.c calls it: forward, dx, dw
        {false, false, false, false, 64, 4096, 576, 576, 0, 4096, {4104, 1, 9, NULL}, true, {0}, {0, 0}},
        {false, true, false, false, 64, 4096, 576, 64, 0, 4096, {4112, -1, 9, NULL}, false, {0}, {0, 0}},
        {true, false, true, true, 64, 576, 4096, 4096, 0, 576, {4104, 1, 9, NULL}, false, {0}, {0, 0}},
        // pointwise (e) forward with its bias, as core/conv_gemm.c calls it
        {false, false, false, false, 256, 3136, 64, 64, 0, 3136, {3136, 0, 1, NULL}, true, {0}, {0, 0}},
    };
    uint64_t rng = 0xB16ull;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        char why[256], desc[256];
        describe(desc, sizeof desc, v, &shapes[i]);
        bool ok = check_shape(v, &shapes[i], &rng, why, sizeof why);
        CHECK(ok, "%s: %s", desc, why);
    }
    // Layer (f)'s forward, one image, as core/conv_phase.c calls it: 64 channels x 9 taps on
    // four phase planes of 29 rows at pitch 29, y's 28 x 28 pixels as C's columns.
    gemm_shape f = {false, false, false, false, 128, 28 * 28, 576, 576, 0, 28 * 28,
                    {4 * 29 * 29, 0, 9, NULL}, true, {0}, {28, 29}};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            f.offsets[a * 3 + b] = ((a % 2) * 2 + b % 2) * 29 * 29 + a / 2 * 29 + b / 2;
    f.rows.offsets = f.offsets;
    char why[256], desc[256];
    describe(desc, sizeof desc, v, &f);
    CHECK(check_shape(v, &f, &rng, why, sizeof why), "%s: %s", desc, why);
}

// Threads with just GEMM_STACK_BYTES and 128 KiB of stack (the test's own frames, and under
// ASan the redzones around the GEMM's locals, ~40 KiB), several at once: the packing buffers
// fit, and no state is shared.
typedef struct {
    const gemm_variant *v;
    int id;
    bool ok;
    char why[256];
} stack_job;

static void *stack_worker(void *arg) {
    stack_job *job = arg;
    uint64_t rng = 0x57ACull + (uint64_t)job->id;
    job->ok = true;
    for (int r = 0; r < 4 && job->ok; r++) {
        gemm_shape s = {.f64 = (job->id + r) % 2, .trans_a = r % 2, .trans_b = r / 2 % 2,
                        .add = job->id % 2, .m = 150, .n = 70, .k = 300};
        s.lda = s.trans_a ? s.m : s.k;
        s.ldb = s.trans_b ? s.k : s.n;
        s.ldc = s.n;
        job->ok = check_shape(job->v, &s, &rng, job->why, sizeof job->why);
    }
    return NULL;
}

static void test_threads(const gemm_variant *v) {
    enum { JOBS = 4 };
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    CHECK(pthread_attr_setstacksize(&attr, GEMM_STACK_BYTES + (128 << 10)) == 0,
          "setting a thread's stack size");
    pthread_t tid[JOBS];
    stack_job jobs[JOBS];
    bool started[JOBS];
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (stack_job){.v = v, .id = i};
        started[i] = pthread_create(&tid[i], &attr, stack_worker, &jobs[i]) == 0;
        CHECK(started[i], "%s: starting thread %d", v->name, i);
    }
    for (int i = 0; i < JOBS; i++) {
        if (!started[i]) continue;
        pthread_join(tid[i], NULL);
        CHECK(jobs[i].ok, "%s: thread %d: %s", v->name, i, jobs[i].why);
    }
    pthread_attr_destroy(&attr);
}

int main(void) {
    int ran = 0;
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
        if (conv_isa_best() < variants[i].isa) {
            printf("%s: this CPU does not run it, not tested\n", variants[i].name);
            continue;
        }
        test_random_shapes(&variants[i], false, false);
        test_random_shapes(&variants[i], true, false);
        test_random_shapes(&variants[i], true, true);
        test_layer_shapes(&variants[i]);
        test_threads(&variants[i]);
        ran++;
    }
    printf("convd's GEMM tested on %d ISA variant(s) of %zu\n", ran,
           sizeof variants / sizeof *variants);
    return t_finish("test_gemm");
}
