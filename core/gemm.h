// gemm: convd's own GEMM, for the instruction sets where the BLAS core that a deployment runs
// can leave half the CPU unused (OPENBLAS_CORETYPE=Haswell on an AVX-512 machine runs 256-bit
// kernels at under half its peak). conv.c's conv_gemm_call picks it by the pass's ISA and
// calls OpenBLAS for the rest.
//
// Every function here computes, single-threaded, row-major,
//   C (m x n) = op(A) (m x k) * op(B) (k x n)        (add false: C's old values are ignored)
//   C (m x n) += op(A) (m x k) * op(B) (k x n)       (add true)
// op(A) being A (m x k, leading dimension lda) or, with trans_a, the transpose of A stored
// k x m; likewise op(B), k x n or, with trans_b, n x k. m, n, k >= 1; lda, ldb, ldc at least the
// stored rows' lengths. Pointers are to float (the _f32 variants) or double (_f64); C must not
// overlap A or B. The CPU must run the variant's ISA (conv_isa_best()).
//
// It packs blocks of A and B into buffers on the caller's stack, at most GEMM_STACK_BYTES
// (ASan's redzones add ~40 KiB): call it on a thread with that much stack to spare (convd's
// threads have glibc's default, 8 MiB, or 2 MiB when the stack limit is unlimited). It
// allocates nothing and shares no state: any number of threads may call it at once.
#ifndef GEMM_H
#define GEMM_H

#include <stdbool.h>
#include <stdint.h>

typedef void gemm_fn(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void *a,
                     int64_t lda, const void *b, int64_t ldb, bool add, void *c, int64_t ldc);

// Where the stored rows of B start when they are not evenly spaced: row r (of k x n, or of n x k
// with trans_b) at b + (r / taps) * outer + off(r % taps) - off(0) elements, taps >= 1, where
// off(t) is offsets[t] when `offsets` is not NULL (taps entries, the caller's, read during the
// call), else t * inner (inner may be negative). A conv layer's column matrix is of this form
// without being built: with kernel taps at a fixed step along a zero-padded row, its row
// (channel, tap) is the padded row of that channel (outer apart) shifted by the tap (inner
// apart); with a stride, the tap's place in the channel's phase planes (conv_phase.c).
typedef struct {
    int64_t outer, inner, taps;
    const int64_t *offsets;
} gemm_rows;

// ... and with `bias` (m elements, or NULL) added to C's rows: C (+)= op(A) * op(B) + bias[i] on
// row i. The bias starts the sums of the first k slice, so C is written once: a conv forward
// need not fill y with its bias and add onto it (for a pointwise layer, that fill and re-read of
// y were most of its memory traffic).
typedef void gemm_rows_fn(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                          const void *a, int64_t lda, const void *b, gemm_rows b_rows,
                          const void *bias, bool add, void *c, int64_t ldc);

// ... and with B (not transposed) an image's rows stored at a pitch wider than they are: B's
// column j at (j / cols.width) * cols.pitch + j % cols.width of each row (1 <= width <= pitch),
// so that C's columns are the image's pixels without the pitch's slack (conv_phase.c's planes
// hold the output's rows at its width plus the kernel's reach).
typedef struct {
    int64_t width, pitch;
} gemm_cols;
typedef void gemm_cols_fn(int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                          const void *b, gemm_rows b_rows, gemm_cols b_cols, const void *bias,
                          bool add, void *c, int64_t ldc);

// AVX-512 F with FMA (core/gemm_avx512.c): the plain GEMM, the one with B's rows as gemm_rows
// says and a bias (the same blocking and sums; ldb is {ldb, 0, 1}), and that one with B's
// columns as gemm_cols says.
gemm_fn gemm_avx512_f32, gemm_avx512_f64;
gemm_rows_fn gemm_avx512_rows_f32, gemm_avx512_rows_f64;
gemm_cols_fn gemm_avx512_cols_f32, gemm_avx512_cols_f64;

#define GEMM_STACK_BYTES ((size_t)224 << 10)
// The width of C's tiles (two 64-byte vectors, 32 floats or 16 doubles): an n that is not a
// multiple of it computes the rest of its last tile for nothing.
#define GEMM_NR_BYTES 128

#endif
