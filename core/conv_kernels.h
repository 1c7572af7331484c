// conv_kernels: the hand-vectorised loops of core/, written once in portable GNU C (OpenMP simd
// loops and GCC vector types). Each core/conv_kernels_<isa>.c compiles them under its ISA's
// target pragma, once for float and once for double: the includer defines REAL (the element
// type), KERNEL(name) (a per-dtype name) and KERNEL_TABLE (the conv_kernels it exports), and
// has included <string.h>, <stdint.h> and core/conv_internal.h before its pragma.
// Pointers are to REAL; scalars come as double (conv_kernels' signatures).

// acc[j] += k * src[j*stride], j < count
static void KERNEL(axpy)(void *acc_, const void *src_, int64_t count, int64_t stride, double k_) {
    REAL *restrict acc = acc_;
    const REAL *restrict src = src_;
    const REAL k = (REAL)k_;
    if (stride == 1) {
#pragma omp simd
        for (int64_t j = 0; j < count; j++) acc[j] += k * src[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < count; j++) acc[j] += k * src[j * stride];
    }
}

// dst[j*stride] += k * src[j], j < count
static void KERNEL(scatter)(void *dst_, const void *src_, int64_t count, int64_t stride,
                            double k_) {
    REAL *restrict dst = dst_;
    const REAL *restrict src = src_;
    const REAL k = (REAL)k_;
    if (stride == 1) {
#pragma omp simd
        for (int64_t j = 0; j < count; j++) dst[j] += k * src[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < count; j++) dst[j * stride] += k * src[j];
    }
}

// dst[j] = src[j*stride], j < count
static void KERNEL(gather)(void *dst_, const void *src_, int64_t count, int64_t stride) {
    REAL *restrict dst = dst_;
    const REAL *restrict src = src_;
#pragma omp simd
    for (int64_t j = 0; j < count; j++) dst[j] = src[j * stride];
}

// dst[j] = value, j < count
static void KERNEL(fill)(void *dst_, int64_t count, double value_) {
    REAL *restrict dst = dst_;
    const REAL value = (REAL)value_;
#pragma omp simd
    for (int64_t j = 0; j < count; j++) dst[j] = value;
}

// sum over j < count of a[j] * b[j*stride], accumulated in REAL
static double KERNEL(dot)(const void *a_, const void *b_, int64_t count, int64_t stride) {
    const REAL *restrict a = a_, *restrict b = b_;
    REAL sum = 0;
    if (stride == 1) {
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < count; j++) sum += a[j] * b[j];
    } else {
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < count; j++) sum += a[j] * b[j * stride];
    }
    return sum;
}

// sum over j < count of a[j], accumulated in double whatever REAL is (db)
static double KERNEL(sum)(const void *a_, int64_t count) {
    const REAL *restrict a = a_;
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < count; j++) sum += a[j];
    return sum;
}

// sums[t] += sum over j < count of a[j] * b[j + t*step], for t < taps: CONV_DOT_TAPS taps of a
// kernel row in one pass over a, each element of a loaded once for all of them. Reads b up
// to CONV_DOT_TAPS - 1 taps past the last one (the flat planes' slack).
// (GCC's vector types keep the four accumulators in registers, where arrays went to memory.)
typedef REAL KERNEL(lanes) __attribute__((vector_size(64)));

static void KERNEL(dots)(void *sums_, const void *a_, const void *b_, int64_t count,
                         int64_t taps, int64_t step) {
    enum { LANES = 64 / sizeof(REAL) };
    REAL *restrict sums = sums_;
    const REAL *restrict a = a_, *restrict b = b_;
    for (int64_t t0 = 0; t0 < taps; t0 += CONV_DOT_TAPS) {
        const REAL *b0 = b + t0 * step, *b1 = b0 + step, *b2 = b1 + step, *b3 = b2 + step;
        KERNEL(lanes) acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0}, d, v;
        int64_t j = 0;
        for (; j + LANES <= count; j += LANES) {
            memcpy(&d, a + j, sizeof d);
            memcpy(&v, b0 + j, sizeof v);
            acc0 += d * v;
            memcpy(&v, b1 + j, sizeof v);
            acc1 += d * v;
            memcpy(&v, b2 + j, sizeof v);
            acc2 += d * v;
            memcpy(&v, b3 + j, sizeof v);
            acc3 += d * v;
        }
        REAL total[CONV_DOT_TAPS] = {0};
        for (; j < count; j++) {
            total[0] += a[j] * b0[j];
            total[1] += a[j] * b1[j];
            total[2] += a[j] * b2[j];
            total[3] += a[j] * b3[j];
        }
        for (int l = 0; l < LANES; l++) {
            total[0] += acc0[l];
            total[1] += acc1[l];
            total[2] += acc2[l];
            total[3] += acc3[l];
        }
        for (int64_t t = 0; t < CONV_DOT_TAPS && t0 + t < taps; t++) sums[t0 + t] += total[t];
    }
}

// out[j] = bias + sum over channels ch, taps (a, b') of
//              w[ch*w_stride + a*kw + b'] * in[ch*in_stride + j + a*step_a + b'*step_b]
// for j < count. Works in blocks of CONV_TAP_BLOCK_BYTES of outputs held in registers across
// all taps; the last block reads past the row, which the flat planes' slack allows.
static void KERNEL(taps_row)(void *out_, const void *in_, int64_t count, int64_t channels,
                             int64_t in_stride, const void *w_, int64_t w_stride, int64_t kh,
                             int64_t kw, int64_t step_a, int64_t step_b, double bias) {
    enum { BLOCK = CONV_TAP_BLOCK_BYTES / sizeof(REAL) };
    REAL *restrict out = out_;
    const REAL *restrict in = in_, *restrict w = w_;
    for (int64_t j0 = 0; j0 < count; j0 += BLOCK) {
        REAL acc[BLOCK];
#pragma omp simd
        for (int64_t j = 0; j < BLOCK; j++) acc[j] = (REAL)bias;
        for (int64_t ch = 0; ch < channels; ch++)
            for (int64_t a = 0; a < kh; a++)
                for (int64_t b = 0; b < kw; b++) {
                    const REAL weight = w[ch * w_stride + a * kw + b];
                    const REAL *src = in + ch * in_stride + j0 + a * step_a + b * step_b;
#pragma omp simd
                    for (int64_t j = 0; j < BLOCK; j++) acc[j] += weight * src[j];
                }
        const int64_t n = count - j0 < BLOCK ? count - j0 : BLOCK;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) out[j0 + j] = acc[j];
    }
}

const conv_kernels KERNEL_TABLE = {
    .axpy = KERNEL(axpy),
    .scatter = KERNEL(scatter),
    .gather = KERNEL(gather),
    .fill = KERNEL(fill),
    .dot = KERNEL(dot),
    .sum = KERNEL(sum),
    .dots = KERNEL(dots),
    .taps_row = KERNEL(taps_row),
};
