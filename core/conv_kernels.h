// conv_kernels: the hand-vectorised loops of core/, written once in portable GNU C (OpenMP simd
// loops and GCC vector types). Each core/conv_kernels_<isa>.c compiles them under its ISA's
// target pragma, once for float and once for double: the includer defines REAL (the element
// type), KERNEL(name) (a per-dtype name), KERNEL_TABLE (the conv_kernels it exports) and
// VEC_BYTES (the ISA's vector width: GCC splits wider vector types into pairs and spills
// them), and has included <string.h>, <stdint.h> and core/conv_internal.h before its pragma.
// REAL, KERNEL and KERNEL_TABLE are undefined again at its end.
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
    } else if (stride == 2) { // a constant stride: whole vectors and lane shuffles
#pragma omp simd
        for (int64_t j = 0; j < count; j++) dst[j * 2] += k * src[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < count; j++) dst[j * stride] += k * src[j];
    }
}

// dst[j*stride] = src[j], j < count: the inverse of gather (conv_phase.c's dx phases, which
// each write their own elements of dx, so that dx needs no zeroing first).
static void KERNEL(place)(void *dst_, const void *src_, int64_t count, int64_t stride) {
    REAL *restrict dst = dst_;
    const REAL *restrict src = src_;
    if (stride == 2) { // a constant stride: whole vectors and lane shuffles
#pragma omp simd
        for (int64_t j = 0; j < count; j++) dst[j * 2] = src[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < count; j++) dst[j * stride] = src[j];
    }
}

// dst[j] = src[j*stride], j < count. Stride 2 (im2col of a stride-2 layer) is its own loop:
// with the stride a constant the vectoriser loads whole vectors and shuffles their even lanes
// together, where a variable stride costs a scalar load and insert per element.
static void KERNEL(gather)(void *dst_, const void *src_, int64_t count, int64_t stride) {
    REAL *restrict dst = dst_;
    const REAL *restrict src = src_;
    if (stride == 2) {
#pragma omp simd
        for (int64_t j = 0; j < count; j++) dst[j] = src[j * 2];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < count; j++) dst[j] = src[j * stride];
    }
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

// GCC's vector types keep accumulators in registers, where arrays went to memory.
// KERNEL_IN_REGISTER(v): v is in a register here, so that GCC loads it once instead of
// folding the load into each of the multiply-adds that use it. taps_block_outs's x feeds up to
// 8 of them; with the loads folded, AVX-512 loaded a vector of x per multiply-add (layer (d)'s
// dx 0.96 -> 0.50 ms without, one thread; AVX2's forward 0.88 -> 0.76).
// clang (the fuzz build) ignores the ISA target pragmas, so its wide vectors may have no
// register to be held in: there it is a no-op.
#ifndef KERNEL_IN_REGISTER
#if (defined(__x86_64__) || defined(__i386__)) && !defined(__clang__)
#define KERNEL_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define KERNEL_IN_REGISTER(v) ((void)0)
#endif
#endif
typedef REAL KERNEL(lanes) __attribute__((vector_size(VEC_BYTES)));

// sums[o*sums_stride + t] += sum_{j < count} a[o*a_stride + j] * b[offsets[t] + j] for o < NOUT,
// taps t0 .. t0 + DOT_TAPS - 1 (those below taps stored; the others read the last tap's row
// again): NOUT x DOT_TAPS accumulator vectors, each vector of b loaded once for the NOUT rows
// of a, each of a once for the taps. NOUT is a constant (DOT_OUTS or fewer) so that they stay
// in registers: 24 on AVX-512 (4 x 6), 12 on AVX2 (3 x 4: with 2 x 4, layer (d)'s dw took
// 2.64 ms, with 3 x 4 2.07, one thread), 4 on portable (1 x 4).
// Always DOT_TAPS taps, the last pass padded: the rows of a stream from the L2 cache, and
// fewer taps per pass over them (three for a 3-tap row) measured slower, not faster. The taps
// come as a table of offsets so that a pass runs on across kernel rows and channels: with one
// call per kernel row, a 5-tap row took two passes of 4 (8 taps' work for 5). On AVX-512, 6
// taps per pass rather than 4 took (d)'s dw from 0.90 to 0.83 ms (5: as fast as 6) and an
// 8x8x28x28 F16 3x3 layer's from 0.19 to 0.165 (one thread).
#define DOT_OUTS (VEC_BYTES == 32 ? 3 : VEC_BYTES / 16)
#define DOT_TAPS (VEC_BYTES == 64 ? 6 : 4)
static inline __attribute__((always_inline)) void
KERNEL(dots_block)(REAL *restrict sums, int64_t sums_stride, const int nout,
                   const REAL *restrict a, int64_t a_stride, const REAL *restrict b,
                   int64_t count, int64_t t0, int64_t taps, const int64_t *offsets) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    const REAL *bt[DOT_TAPS];
    for (int t = 0; t < DOT_TAPS; t++)
        bt[t] = b + offsets[t0 + t < taps ? t0 + t : taps - 1];
    const KERNEL(lanes) zero = {0};
    KERNEL(lanes) acc[DOT_OUTS][DOT_TAPS];
#pragma GCC unroll 16
    for (int o = 0; o < nout; o++)
#pragma GCC unroll 8
        for (int t = 0; t < DOT_TAPS; t++) acc[o][t] = zero;
    int64_t j = 0;
    for (; j + LANES <= count; j += LANES) {
        KERNEL(lanes) v[DOT_TAPS];
#pragma GCC unroll 8
        for (int t = 0; t < DOT_TAPS; t++) memcpy(&v[t], bt[t] + j, sizeof v[t]);
#pragma GCC unroll 16
        for (int o = 0; o < nout; o++) {
            KERNEL(lanes) d;
            memcpy(&d, a + o * a_stride + j, sizeof d);
#pragma GCC unroll 8
            for (int t = 0; t < DOT_TAPS; t++) acc[o][t] += d * v[t];
        }
    }
#pragma GCC unroll 16
    for (int o = 0; o < nout; o++) {
        REAL total[DOT_TAPS] = {0};
        for (int64_t i = j; i < count; i++)
            for (int t = 0; t < DOT_TAPS; t++) total[t] += a[o * a_stride + i] * bt[t][i];
        for (int t = 0; t < DOT_TAPS; t++)
            for (int l = 0; l < LANES; l++) total[t] += acc[o][t][l];
        for (int64_t t = 0; t < DOT_TAPS && t0 + t < taps; t++)
            sums[o * sums_stride + t0 + t] += total[t];
    }
}

// sums[o*sums_stride + t] += sum_{j < count} a[o*a_stride + j] * b[offsets[t] + j] for o < nout
// (any number), t < taps: DOT_OUTS rows of a and DOT_TAPS taps at a time.
static void KERNEL(dots)(void *sums_, int64_t sums_stride, int64_t nout, const void *a_,
                         int64_t a_stride, const void *b_, int64_t count, int64_t taps,
                         const int64_t *offsets) {
    REAL *sums = sums_;
    const REAL *a = a_, *b = b_;
    for (int64_t t0 = 0; t0 < taps; t0 += DOT_TAPS) {
        int64_t o = 0;
        for (; o + DOT_OUTS <= nout; o += DOT_OUTS)
            KERNEL(dots_block)(sums + o * sums_stride, sums_stride, DOT_OUTS, a + o * a_stride,
                               a_stride, b, count, t0, taps, offsets);
        for (; o < nout; o++)
            KERNEL(dots_block)(sums + o * sums_stride, sums_stride, 1, a + o * a_stride,
                               a_stride, b, count, t0, taps, offsets);
    }
}
#undef DOT_OUTS
#undef DOT_TAPS

// out[o*out_stride + r*out_pitch + j] = bias[o] + sum over channels ch, taps (a, b') of
//     w[o*w_ostride + ch*w_stride + a*kw + b'] *
//     in[ch*in_stride + r*in_pitch + j + a*step_a + b'*step_b]
// for o < NOUT, r < ROWS, j < count (taps_rows_outs). Works in blocks of TAP_VECS vectors of
// outputs per row held in registers across all taps; the last block reads past the row, which
// the flat planes' slack (CONV_TAP_BLOCK_BYTES) allows. The block is explicit vectors of the
// ISA's width (unrolled, so that they stay in registers: with AVX2's four per block the
// vectoriser's own loop kept them in memory, 3x slower). Each input vector is loaded once for
// the NOUT planes; NOUT and ROWS are constants (NOUT x ROWS at most TAP_OUTS) so that the
// NOUT x ROWS x VECS accumulators stay in registers, enough of them to cover the FMA latency on
// both pipes: 16 of AVX-512's 32 (8 x 2), 12 of AVX2's 16 (3 x 4, with 3 broadcast weights),
// 8 of portable's (1 x 8). With 4 x 2 on AVX-512 the 576-tap layer (k) ran forward 3.6 ms and
// dx 4.1 on one thread, with 8 x 2 3.1 and 3.3 (best of 80 runs): half the loads of x per
// multiply-add. On AVX2, 2 x 4 left the FMAs waiting on their own results: (d) forward 1.33 ->
// 0.89 ms and dx 1.37 -> 0.78 with 3 x 4, (b) by the direct path 36 -> 24 ms either pass;
// 6 x 2 and 4 x 3 (blocks of 24 outputs on rows of 32) were slower. Fewer planes than
// TAP_OUTS / 2 take two rows at once (ROWS 2), so that (d)'s dx, 3 channels, keeps 12
// accumulators on AVX-512 rather than 6.
#define TAP_OUTS (VEC_BYTES == 64 ? 8 : VEC_BYTES == 32 ? 3 : 1)
#define TAP_VECS (VEC_BYTES == 32 ? 4 : CONV_TAP_BLOCK_BYTES / VEC_BYTES)
_Static_assert(TAP_VECS * VEC_BYTES <= CONV_TAP_BLOCK_BYTES, "a block stays in the planes' slack");
static inline __attribute__((always_inline)) void
KERNEL(taps_block_outs)(REAL *restrict out, int64_t out_stride, const int nout, const int rows,
                        int64_t out_pitch, const REAL *restrict in, int64_t in_pitch,
                        int64_t count, int64_t channels, int64_t in_stride,
                        const REAL *restrict w, int64_t w_stride, int64_t w_ostride, int64_t kh,
                        int64_t kw, int64_t step_a, int64_t step_b, const double *bias) {
    enum { LANES = VEC_BYTES / sizeof(REAL), VECS = TAP_VECS };
    enum { BLOCK = VECS * LANES };
    for (int64_t j0 = 0; j0 < count; j0 += BLOCK) {
        KERNEL(lanes) acc[TAP_OUTS][VECS];
#pragma GCC unroll 16
        for (int o = 0; o < nout * rows; o++)
#pragma GCC unroll 16
            for (int v = 0; v < VECS; v++)
                for (int l = 0; l < LANES; l++) acc[o][v][l] = (REAL)bias[o % nout];
        for (int64_t ch = 0; ch < channels; ch++)
            for (int64_t a = 0; a < kh; a++) {
                // pointers walked along the kernel row: indexed by b', the loop ran out of
                // integer registers and reloaded its strides from the stack
                const REAL *src_row = in + ch * in_stride + j0 + a * step_a;
                const REAL *w_row = w + ch * w_stride + a * kw;
                const REAL *w_end = w_row + kw;
                for (const REAL *wt = w_row, *src = src_row; wt < w_end; wt++, src += step_b) {
#pragma GCC unroll 2
                    for (int r = 0; r < rows; r++)
#pragma GCC unroll 16
                        for (int v = 0; v < VECS; v++) {
                            KERNEL(lanes) x;
                            memcpy(&x, src + r * in_pitch + v * LANES, sizeof x);
                            KERNEL_IN_REGISTER(x);
#pragma GCC unroll 16
                            for (int o = 0; o < nout; o++)
                                acc[r * nout + o][v] += wt[o * w_ostride] * x;
                        }
                }
            }
        const int64_t n = count - j0 < BLOCK ? count - j0 : BLOCK;
#pragma GCC unroll 16
        for (int o = 0; o < nout * rows; o++) {
            REAL *dst = out + o % nout * out_stride + o / nout * out_pitch + j0;
            if (n == BLOCK) {
                memcpy(dst, acc[o], sizeof acc[o]);
            } else {
                REAL last[BLOCK];
                memcpy(last, acc[o], sizeof last);
                memcpy(dst, last, (size_t)n * sizeof(REAL));
            }
        }
    }
}

// taps_block_outs over `rows` rows of NOUT planes: two rows per call where NOUT is at most
// TAP_OUTS / 2, else one.
static inline __attribute__((always_inline)) void
KERNEL(taps_rows_block)(REAL *out, int64_t out_stride, const int nout, int64_t rows,
                        int64_t out_pitch, const REAL *in, int64_t in_pitch, int64_t count,
                        int64_t channels, int64_t in_stride, const REAL *w, int64_t w_stride,
                        int64_t w_ostride, int64_t kh, int64_t kw, int64_t step_a,
                        int64_t step_b, const double *bias) {
    int64_t r = 0;
    if (2 * nout <= TAP_OUTS)
        for (; r + 2 <= rows; r += 2)
            KERNEL(taps_block_outs)(out + r * out_pitch, out_stride, nout, 2, out_pitch,
                                    in + r * in_pitch, in_pitch, count, channels, in_stride, w,
                                    w_stride, w_ostride, kh, kw, step_a, step_b, bias);
    for (; r < rows; r++)
        KERNEL(taps_block_outs)(out + r * out_pitch, out_stride, nout, 1, out_pitch,
                                in + r * in_pitch, in_pitch, count, channels, in_stride, w,
                                w_stride, w_ostride, kh, kw, step_a, step_b, bias);
}

// taps_block_outs over nout output planes (any number) and `rows` rows (row r of plane o at
// out + o*out_stride + r*out_pitch, reading in + r*in_pitch): TAP_OUTS planes at a time, then
// the rest in one call (each count compiled on its own, its accumulators in registers).
static void KERNEL(taps_rows_outs)(void *out_, int64_t out_stride, int64_t nout, int64_t rows,
                                   int64_t out_pitch, const void *in_, int64_t in_pitch,
                                   int64_t count, int64_t channels, int64_t in_stride,
                                   const void *w_, int64_t w_stride, int64_t w_ostride,
                                   int64_t kh, int64_t kw, int64_t step_a, int64_t step_b,
                                   const double *bias) {
    REAL *out = out_;
    const REAL *in = in_, *w = w_;
    int64_t o = 0;
    for (; o + TAP_OUTS <= nout; o += TAP_OUTS)
        KERNEL(taps_rows_block)(out + o * out_stride, out_stride, TAP_OUTS, rows, out_pitch, in,
                                in_pitch, count, channels, in_stride, w + o * w_ostride,
                                w_stride, w_ostride, kh, kw, step_a, step_b, bias + o);
    switch (nout - o) {
#define TAP_REST(n)                                                                            \
    case n:                                                                                    \
        if (n < TAP_OUTS)                                                                      \
            KERNEL(taps_rows_block)(out + o * out_stride, out_stride, n, rows, out_pitch, in,   \
                                    in_pitch, count, channels, in_stride, w + o * w_ostride,   \
                                    w_stride, w_ostride, kh, kw, step_a, step_b, bias + o);    \
        break;
        TAP_REST(1) TAP_REST(2) TAP_REST(3) TAP_REST(4) TAP_REST(5) TAP_REST(6) TAP_REST(7)
#undef TAP_REST
    default: break;
    }
}
#undef TAP_OUTS
#undef TAP_VECS

// ---- Winograd F(2x2,3x3) transforms (Lavin & Gray 2015), for conv_winograd.c ----------------
// With B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
// and A^T = [1 1 1 0; 0 1 -1 -1], a 2x2 output tile of the correlation of a 4x4 input tile d
// with a 3x3 kernel g is A^T [(G g G^T) .* (B^T d B)] A. Element e = 4*i + j of a transformed
// 4x4 tile lives at [e * stride] of its array. Tile t of a plane is row t / tiles_w, column
// t % tiles_w of the 2x2 output tiles.

// u[e*u_stride + k] <- (G g_k G^T)[e] for k < count, g_k the 3x3 kernel at w + k*w_stride
// (rotated by 180 degrees when flip: the transposed convolution that dx is). Inlined once per
// flip, so that each reads its taps at fixed offsets.
static inline __attribute__((always_inline)) void
KERNEL(wino_kernels)(REAL *restrict u, int64_t u_stride, const REAL *restrict w,
                     int64_t w_stride, int64_t count, const bool flip) {
#pragma omp simd
    for (int64_t k = 0; k < count; k++) {
        const REAL *g = w + k * w_stride;
        // tap t of the kernel as read: t, or 8 - t when rotated
#define TAP(t) g[flip ? 8 - (t) : (t)]
        const REAL a00 = TAP(0), a01 = TAP(1), a02 = TAP(2);
        const REAL a10 = TAP(3), a11 = TAP(4), a12 = TAP(5);
        const REAL a20 = TAP(6), a21 = TAP(7), a22 = TAP(8);
#undef TAP
        // columns: q_ij = (G g)[i][j]
        const REAL q00 = a00, q10 = (REAL)0.5 * (a00 + a10 + a20);
        const REAL q20 = (REAL)0.5 * (a00 - a10 + a20), q30 = a20;
        const REAL q01 = a01, q11 = (REAL)0.5 * (a01 + a11 + a21);
        const REAL q21 = (REAL)0.5 * (a01 - a11 + a21), q31 = a21;
        const REAL q02 = a02, q12 = (REAL)0.5 * (a02 + a12 + a22);
        const REAL q22 = (REAL)0.5 * (a02 - a12 + a22), q32 = a22;
        // rows: (G g G^T)[i][j]
        u[0 * u_stride + k] = q00;
        u[1 * u_stride + k] = (REAL)0.5 * (q00 + q01 + q02);
        u[2 * u_stride + k] = (REAL)0.5 * (q00 - q01 + q02);
        u[3 * u_stride + k] = q02;
        u[4 * u_stride + k] = q10;
        u[5 * u_stride + k] = (REAL)0.5 * (q10 + q11 + q12);
        u[6 * u_stride + k] = (REAL)0.5 * (q10 - q11 + q12);
        u[7 * u_stride + k] = q12;
        u[8 * u_stride + k] = q20;
        u[9 * u_stride + k] = (REAL)0.5 * (q20 + q21 + q22);
        u[10 * u_stride + k] = (REAL)0.5 * (q20 - q21 + q22);
        u[11 * u_stride + k] = q22;
        u[12 * u_stride + k] = q30;
        u[13 * u_stride + k] = (REAL)0.5 * (q30 + q31 + q32);
        u[14 * u_stride + k] = (REAL)0.5 * (q30 - q31 + q32);
        u[15 * u_stride + k] = q32;
    }
}

static void KERNEL(wino_kernel)(void *u, int64_t u_stride, const void *w, int64_t w_stride,
                                int64_t count, bool flip) {
    if (flip) KERNEL(wino_kernels)(u, u_stride, w, w_stride, count, true);
    else KERNEL(wino_kernels)(u, u_stride, w, w_stride, count, false);
}

// Elements per piece of wino_copy: a constant count, so that each piece is whole vectors.
#define WINO_PIECE 8

// dst[k] <- src[k*src_step] for k < WINO_PIECE, src_step 1 or 2 (a phase of x or dy under
// dilation 2): one shuffle of two vectors for step 2. Clang (the fuzz build) has no
// __builtin_shuffle.
static inline __attribute__((always_inline)) void
KERNEL(wino_piece)(REAL *restrict dst, const REAL *restrict src, int64_t src_step) {
    typedef REAL piece_t __attribute__((vector_size(WINO_PIECE * sizeof(REAL))));
    if (src_step == 1) {
        memcpy(dst, src, sizeof(piece_t));
        return;
    }
#ifndef __clang__
    typedef __typeof__(__builtin_choose_expr(sizeof(REAL) == 4, (int32_t)0, (int64_t)0)) int_t;
    typedef int_t pick_t __attribute__((vector_size(WINO_PIECE * sizeof(REAL))));
    // src[0, 2, .., 14]: the even lanes of src[0..7] and the odd ones of src[7..14], so that
    // nothing past src[14] is read
    _Static_assert(WINO_PIECE == 8, "the shuffle below picks 8 lanes");
    piece_t a, b;
    memcpy(&a, src, sizeof a);
    memcpy(&b, src + WINO_PIECE - 1, sizeof b);
    const piece_t e = __builtin_shuffle(a, b, (pick_t){0, 2, 4, 6, 9, 11, 13, 15});
    memcpy(dst, &e, sizeof e);
#else
    for (int k = 0; k < WINO_PIECE; k++) dst[k] = src[2 * k];
#endif
}

// dst[k*dst_step] <- src[k*src_step] for k < count: a row into or out of a phase plane. Rows
// are a few to a few dozen elements, where calls to memcpy cost more, and where loops of
// `count` elements ran mostly in their scalar remainders ((k)'s rows of 14 floats under
// AVX-512): rows into the transforms' streams (dst_step 1, src_step 1 or 2) go by pieces of
// WINO_PIECE, the last one overlapping the one before. Into a phase plane (dst_step > 1) the
// elements go one at a time: a vector store would rewrite the other phases' elements between,
// which other workers may be writing.
static inline void KERNEL(wino_copy)(REAL *restrict dst, int64_t dst_step,
                                     const REAL *restrict src, int64_t src_step,
                                     int64_t count) {
    if (dst_step == 1 && (src_step == 1 || src_step == 2) && count >= WINO_PIECE) {
        for (int64_t k = 0;; k += WINO_PIECE) {
            if (k > count - WINO_PIECE) k = count - WINO_PIECE;
            KERNEL(wino_piece)(dst + k, src + k * src_step, src_step);
            if (k == count - WINO_PIECE) return;
        }
    }
    if (dst_step == 2 && src_step == 1) {
#pragma omp simd
        for (int64_t k = 0; k < count; k++) dst[2 * k] = src[k];
    } else {
        for (int64_t k = 0; k < count; k++) dst[k * dst_step] = src[k * src_step];
    }
}

// dst[k] <- plane (r, c0 + k) for k < width: part of a row of a plane, zero outside it.
static inline __attribute__((always_inline)) void
KERNEL(wino_row)(REAL *dst, int64_t width, const REAL *plane,
                 const conv_wino_plane *pl, int64_t r, int64_t c0) {
    if (r < 0 || r >= pl->h) {
#pragma omp simd
        for (int64_t k = 0; k < width; k++) dst[k] = 0;
        return;
    }
    const int64_t w = pl->w;
    const int64_t lo = c0 < 0 ? -c0 < width ? -c0 : width : 0;
    const int64_t hi = w - c0 < width ? (w - c0 > lo ? w - c0 : lo) : width;
    for (int64_t k = 0; k < lo; k++) dst[k] = 0;
    KERNEL(wino_copy)(dst + lo, 1, plane + r * pl->pitch + (c0 + lo) * pl->step, pl->step,
                      hi - lo);
    for (int64_t k = hi; k < width; k++) dst[k] = 0;
}

// The batch's tiles t0 .. t0+count-1 go by runs along a tile row: the run starting at tile
// t0 + at lies in tile row *ti from tile column *tj0; returns its length.
static int64_t KERNEL(wino_run)(int64_t t0, int64_t at, int64_t count, int64_t tiles_w,
                                int64_t *ti, int64_t *tj0) {
    *ti = (t0 + at) / tiles_w;
    *tj0 = (t0 + at) % tiles_w;
    return tiles_w - *tj0 < count - at ? tiles_w - *tj0 : count - at;
}

// Whether the transforms of a plane's tiles go through streams (below) rather than in place:
// on phase planes (step > 1), whose elements are not adjacent, and on planes whose tile rows
// are shorter than a cache line of REALs, which would leave the vector loops in their scalar
// remainders (layer (c): 7 tiles per row; (k)'s phases likewise).
static bool KERNEL(wino_streams)(const conv_wino_plane *pl, int64_t tiles_w) {
    return pl->step != 1 || tiles_w * (int64_t)sizeof(REAL) < 64;
}

// out[e*v_stride + t] <- (B^T d_t B)[e] for t < len, row k of the 4x4 patch d_t being
// lk[2t], lk[2t + 1], rk[2t], rk[2t + 1]: one vector loop over a run of tiles. In place on a
// plane, rk = lk + 2; in streams, lk and rk are each patch row's left and right halves.
static inline __attribute__((always_inline)) void
KERNEL(wino_input_run)(REAL *restrict out, int64_t v_stride, const REAL *l0, const REAL *l1,
                       const REAL *l2, const REAL *l3, const REAL *r0, const REAL *r1,
                       const REAL *r2, const REAL *r3, int64_t len) {
#pragma omp simd
    for (int64_t t = 0; t < len; t++) {
        // columns: s_ij = (B^T d)[i][j]
        const REAL s00 = l0[2 * t + 0] - l2[2 * t + 0];
        const REAL s01 = l0[2 * t + 1] - l2[2 * t + 1];
        const REAL s02 = r0[2 * t + 0] - r2[2 * t + 0];
        const REAL s03 = r0[2 * t + 1] - r2[2 * t + 1];
        const REAL s10 = l1[2 * t + 0] + l2[2 * t + 0];
        const REAL s11 = l1[2 * t + 1] + l2[2 * t + 1];
        const REAL s12 = r1[2 * t + 0] + r2[2 * t + 0];
        const REAL s13 = r1[2 * t + 1] + r2[2 * t + 1];
        const REAL s20 = l2[2 * t + 0] - l1[2 * t + 0];
        const REAL s21 = l2[2 * t + 1] - l1[2 * t + 1];
        const REAL s22 = r2[2 * t + 0] - r1[2 * t + 0];
        const REAL s23 = r2[2 * t + 1] - r1[2 * t + 1];
        const REAL s30 = l1[2 * t + 0] - l3[2 * t + 0];
        const REAL s31 = l1[2 * t + 1] - l3[2 * t + 1];
        const REAL s32 = r1[2 * t + 0] - r3[2 * t + 0];
        const REAL s33 = r1[2 * t + 1] - r3[2 * t + 1];
        // rows: (B^T d B)[i][j]
        out[0 * v_stride + t] = s00 - s02;
        out[1 * v_stride + t] = s01 + s02;
        out[2 * v_stride + t] = s02 - s01;
        out[3 * v_stride + t] = s01 - s03;
        out[4 * v_stride + t] = s10 - s12;
        out[5 * v_stride + t] = s11 + s12;
        out[6 * v_stride + t] = s12 - s11;
        out[7 * v_stride + t] = s11 - s13;
        out[8 * v_stride + t] = s20 - s22;
        out[9 * v_stride + t] = s21 + s22;
        out[10 * v_stride + t] = s22 - s21;
        out[11 * v_stride + t] = s21 - s23;
        out[12 * v_stride + t] = s30 - s32;
        out[13 * v_stride + t] = s31 + s32;
        out[14 * v_stride + t] = s32 - s31;
        out[15 * v_stride + t] = s31 - s33;
    }
}

// The halves of tiles t0 .. t0+count-1's patch rows 0 and 1 into four streams from tile at0
// of `rows`, each n elements apart, 2 per tile: [0] row 0's left half, [n] row 1's, [2n] row 0's
// right half, [3n] row 1's.
static void KERNEL(wino_halves)(REAL *rows, int64_t n, int64_t at0, const REAL *plane,
                                const conv_wino_plane *pl, int64_t off_h, int64_t off_w,
                                int64_t tiles_w, int64_t t0, int64_t count) {
    for (int64_t at = 0, len, ti, tj0; at < count; at += len) {
        len = KERNEL(wino_run)(t0, at, count, tiles_w, &ti, &tj0);
        const int64_t r0 = 2 * ti + off_h, c0 = 2 * tj0 + off_w;
        REAL *dst = rows + 2 * (at0 + at);
        for (int k = 0; k < 2; k++) {
            KERNEL(wino_row)(dst + k * n, 2 * len, plane, pl, r0 + k, c0);
            KERNEL(wino_row)(dst + (2 + k) * n, 2 * len, plane, pl, r0 + k, c0 + 2);
        }
    }
}

// For tiles t0 .. t0+count-1: v[e*v_stride + t - t0] <- (B^T d B)[e], d the 4x4 patch of the
// input plane at (2*row + off_h, 2*column + off_w). In place, a run of tiles along a tile row
// is one vector loop over its tiles (stride-2 loads) where their patches lie inside the plane,
// the border tiles go through zero-padded copies of their four rows in `scratch`. Through
// streams (wino_streams), all count tiles are one vector loop over four streams in `scratch`
// (at most 16 * count elements): the halves of patch rows 0 and 1 (wino_halves) of the count
// tiles and then of the s = min(count, tiles_w) tiles a tile row below the last s, since a
// tile's patch rows 2 and 3 are rows 0 and 1 of the tile below it (tile t + tiles_w, s tiles
// further along the streams). Each plane row is thus copied once per tile row, not twice.
static void KERNEL(wino_input)(void *v_, int64_t v_stride, const void *plane_,
                               const conv_wino_plane *pl, int64_t off_h, int64_t off_w,
                               int64_t tiles_w, int64_t t0, int64_t count, void *scratch) {
    REAL *restrict v = v_;
    const REAL *plane = plane_;
    REAL *restrict rows = scratch;
    if (KERNEL(wino_streams)(pl, tiles_w)) {
        const int64_t s = count < tiles_w ? count : tiles_w, n = 2 * (count + s);
        KERNEL(wino_halves)(rows, n, 0, plane, pl, off_h, off_w, tiles_w, t0, count);
        KERNEL(wino_halves)(rows, n, count, plane, pl, off_h, off_w, tiles_w,
                            t0 + count + tiles_w - s, s);
        const REAL *l0 = rows, *l1 = rows + n, *r0 = rows + 2 * n, *r1 = rows + 3 * n;
        KERNEL(wino_input_run)(v, v_stride, l0, l1, l0 + 2 * s, l1 + 2 * s, r0, r1, r0 + 2 * s,
                               r1 + 2 * s, count);
        return;
    }
    const int64_t h = pl->h, w = pl->w, pitch_in = pl->pitch;
    for (int64_t at = 0, len, ti, tj0; at < count; at += len) {
        len = KERNEL(wino_run)(t0, at, count, tiles_w, &ti, &tj0);
        const int64_t r0 = 2 * ti + off_h, c0 = 2 * tj0 + off_w;
        // tiles [lo, hi) of the run have their patch inside the plane
        int64_t lo = len, hi = len;
        if (r0 >= 0 && r0 + 4 <= h) {
            lo = c0 >= 0 ? 0 : (-c0 + 1) / 2;
            hi = w - 4 - c0 >= 0 ? (w - 4 - c0) / 2 + 1 : 0;
            if (hi > len) hi = len;
            if (lo > hi) lo = hi = len;
        }
        if (hi > lo) {
            const REAL *p0 = plane + r0 * pitch_in + c0 + 2 * lo, *p1 = p0 + pitch_in;
            const REAL *p2 = p1 + pitch_in, *p3 = p2 + pitch_in;
            KERNEL(wino_input_run)(v + at + lo, v_stride, p0, p1, p2, p3, p0 + 2, p1 + 2, p2 + 2,
                                   p3 + 2, hi - lo);
        }
        // the border tiles [0, lo) and [hi, len) from padded copies
        const int64_t parts[2][2] = {{0, lo}, {hi, len}};
        for (int k = 0; k < 2; k++) {
            const int64_t first = parts[k][0], n = parts[k][1] - parts[k][0];
            if (n <= 0) continue;
            const int64_t pitch = 2 * n + 2;
            for (int i = 0; i < 4; i++)
                KERNEL(wino_row)(rows + i * pitch, pitch, plane, pl, r0 + i, c0 + 2 * first);
            KERNEL(wino_input_run)(v + at + first, v_stride, rows, rows + pitch,
                                   rows + 2 * pitch, rows + 3 * pitch, rows + 2,
                                   rows + pitch + 2, rows + 2 * pitch + 2, rows + 3 * pitch + 2,
                                   n);
        }
    }
}

// y0[2t], y0[2t + 1], y1[2t], y1[2t + 1] <- the 2x2 output tile A^T m A + bias of tile t < len,
// m[e] at m[e*m_stride + t]: one vector loop.
static inline __attribute__((always_inline)) void
KERNEL(wino_output_run)(REAL *restrict y0, REAL *restrict y1, const REAL *restrict mt,
                        int64_t m_stride, REAL bias, int64_t len) {
#pragma omp simd
    for (int64_t t = 0; t < len; t++) {
        // columns: s_ij = (A^T m)[i][j], m_ij = m[4i+j]
        const REAL m00 = mt[0 * m_stride + t], m10 = mt[4 * m_stride + t];
        const REAL m20 = mt[8 * m_stride + t], m30 = mt[12 * m_stride + t];
        const REAL s00 = m00 + m10 + m20, s10 = m10 - m20 - m30;
        const REAL m01 = mt[1 * m_stride + t], m11 = mt[5 * m_stride + t];
        const REAL m21 = mt[9 * m_stride + t], m31 = mt[13 * m_stride + t];
        const REAL s01 = m01 + m11 + m21, s11 = m11 - m21 - m31;
        const REAL m02 = mt[2 * m_stride + t], m12 = mt[6 * m_stride + t];
        const REAL m22 = mt[10 * m_stride + t], m32 = mt[14 * m_stride + t];
        const REAL s02 = m02 + m12 + m22, s12 = m12 - m22 - m32;
        const REAL m03 = mt[3 * m_stride + t], m13 = mt[7 * m_stride + t];
        const REAL m23 = mt[11 * m_stride + t], m33 = mt[15 * m_stride + t];
        const REAL s03 = m03 + m13 + m23, s13 = m13 - m23 - m33;
        y0[2 * t] = bias + s00 + s01 + s02;
        y0[2 * t + 1] = bias + s01 - s02 - s03;
        y1[2 * t] = bias + s10 + s11 + s12;
        y1[2 * t + 1] = bias + s11 - s12 - s13;
    }
}

// For tiles t0 .. t0+count-1: the 2x2 output tile A^T m A + bias, m[e] at m[e*m_stride + t - t0],
// stored into the output plane where it lies inside it. In place, a run of tiles is one vector
// loop into the plane's two rows, or, for a run cut by the plane's edge, into two rows of
// `scratch` and then copied out. Through streams (wino_streams), all count tiles are one loop
// into two streams in `scratch` (4 * count elements), copied out by runs.
static void KERNEL(wino_output)(void *out_, const conv_wino_plane *pl, int64_t tiles_w,
                                int64_t t0, int64_t count, const void *m_, int64_t m_stride,
                                double bias_, void *scratch) {
    REAL *out = out_;
    const REAL *restrict m = m_;
    REAL *restrict rows = scratch;
    const REAL bias = (REAL)bias_;
    const int64_t h = pl->h, w = pl->w, pitch = pl->pitch, step = pl->step;
    const bool streams = KERNEL(wino_streams)(pl, tiles_w);
    if (streams) KERNEL(wino_output_run)(rows, rows + 2 * count, m, m_stride, bias, count);
    for (int64_t at = 0, len, ti, tj0; at < count; at += len) {
        len = KERNEL(wino_run)(t0, at, count, tiles_w, &ti, &tj0);
        const REAL *y0 = rows + 2 * at, *y1 = y0 + 2 * count;
        if (!streams) {
            // runs whose tiles lie inside the plane are written in place, the others via rows
            if (2 * ti + 2 <= h && 2 * (tj0 + len) <= w) {
                REAL *p = out + 2 * ti * pitch + 2 * tj0;
                KERNEL(wino_output_run)(p, p + pitch, m + at, m_stride, bias, len);
                continue;
            }
            KERNEL(wino_output_run)(rows, rows + 2 * len, m + at, m_stride, bias, len);
            y0 = rows;
            y1 = rows + 2 * len;
        }
        const int64_t c0 = 2 * tj0, cols = w - c0 < 2 * len ? w - c0 : 2 * len;
        for (int i = 0; i < 2 && 2 * ti + i < h && cols > 0; i++)
            KERNEL(wino_copy)(out + (2 * ti + i) * pitch + c0 * step, step, i ? y1 : y0, 1, cols);
    }
}

// For tiles t0 .. t0+count-1: z[e*z_stride + t - t0] <- (A dY A^T)[e], dY the 2x2 tile of the
// dy plane (zero outside it): the gradient of a tile's output, carried back to the transformed
// domain (backward weights). The tiles' two rows are copied to two streams in `scratch`
// (4 * count elements) and all count tiles are one vector loop.
static void KERNEL(wino_grad)(void *z_, int64_t z_stride, const void *plane,
                              const conv_wino_plane *pl, int64_t tiles_w, int64_t t0,
                              int64_t count, void *scratch) {
    REAL *restrict z = z_;
    REAL *restrict rows = scratch;
    const REAL *d0 = rows, *d1 = rows + 2 * count;
    for (int64_t at = 0, len, ti, tj0; at < count; at += len) {
        len = KERNEL(wino_run)(t0, at, count, tiles_w, &ti, &tj0);
        for (int i = 0; i < 2; i++)
            KERNEL(wino_row)(rows + i * 2 * count + 2 * at, 2 * len, plane, pl, 2 * ti + i,
                             2 * tj0);
    }
#pragma omp simd
    for (int64_t t = 0; t < count; t++) {
        // columns: q_ij = (A dY)[i][j]
        const REAL a0 = d0[2 * t], a1 = d0[2 * t + 1], b0 = d1[2 * t], b1 = d1[2 * t + 1];
        const REAL q00 = a0, q01 = a1, q10 = a0 + b0, q11 = a1 + b1;
        const REAL q20 = a0 - b0, q21 = a1 - b1, q30 = -b0, q31 = -b1;
        // rows: (A dY A^T)[i][j]
        z[0 * z_stride + t] = q00;
        z[1 * z_stride + t] = q00 + q01;
        z[2 * z_stride + t] = q00 - q01;
        z[3 * z_stride + t] = -q01;
        z[4 * z_stride + t] = q10;
        z[5 * z_stride + t] = q10 + q11;
        z[6 * z_stride + t] = q10 - q11;
        z[7 * z_stride + t] = -q11;
        z[8 * z_stride + t] = q20;
        z[9 * z_stride + t] = q20 + q21;
        z[10 * z_stride + t] = q20 - q21;
        z[11 * z_stride + t] = -q21;
        z[12 * z_stride + t] = q30;
        z[13 * z_stride + t] = q30 + q31;
        z[14 * z_stride + t] = q30 - q31;
        z[15 * z_stride + t] = -q31;
    }
}

// dw (3x3) <- G^T m G, m[e] at m[e*m_stride]: the kernel gradient from its transformed sum.
static void KERNEL(wino_kernel_grad)(void *dw_, const void *m_, int64_t m_stride) {
    REAL *dw = dw_;
    const REAL *m = m_;
    REAL p[3][4];
    for (int j = 0; j < 4; j++) {
        const REAL m0 = m[j * m_stride], m1 = m[(4 + j) * m_stride];
        const REAL m2 = m[(8 + j) * m_stride], m3 = m[(12 + j) * m_stride];
        p[0][j] = m0 + (REAL)0.5 * (m1 + m2);
        p[1][j] = (REAL)0.5 * (m1 - m2);
        p[2][j] = (REAL)0.5 * (m1 + m2) + m3;
    }
    for (int i = 0; i < 3; i++) {
        dw[i * 3 + 0] = p[i][0] + (REAL)0.5 * (p[i][1] + p[i][2]);
        dw[i * 3 + 1] = (REAL)0.5 * (p[i][1] - p[i][2]);
        dw[i * 3 + 2] = (REAL)0.5 * (p[i][1] + p[i][2]) + p[i][3];
    }
}

// ---- Depthwise planes, for conv_depthwise.c -------------------------------------------------
// One plane per call; the rows it reads go through p's ring of zero-padded copies (see
// conv_dw_plan), so that every tap of an output row is a contiguous run that may be read up to
// a whole block past its last output, and borders and strides cost no branch per pixel. The
// plan's tables replace the divisions by strides and dilations, which per row cost as much as
// a row's taps.

// The most vectors of one output row the depthwise kernels keep in registers, as two
// accumulators each: an FMA's latency (4 cycles) times its throughput (2 per cycle) asks for
// 8 independent sums, which one row of a 3x3 layer's 9 taps did not give in one register block.
#define DW_VECS (VEC_BYTES == 64 ? 8 : 4)

// out[off_v + l] = bias + sum_t wt[t] * src[t][off_v + l], l < LANES, for the vectors v < nvec
// (a constant) at off_v = min(j + v*LANES, count - LANES): the ones past the row's end are
// moved back to end at it, and store lanes that come out the same. count >= LANES.
static inline __attribute__((always_inline)) void
KERNEL(dw_vectors)(REAL *out, const int nvec, int64_t j, int64_t count, const REAL *const *src,
                   const REAL *wt, int64_t taps, REAL bias) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    KERNEL(lanes) even[DW_VECS], odd[DW_VECS];
    int64_t off[DW_VECS];
#pragma GCC unroll 16
    for (int v = 0; v < nvec; v++) {
        off[v] = j + v * LANES < count - LANES ? j + v * LANES : count - LANES;
        even[v] = odd[v] = (KERNEL(lanes)){0};
    }
    int64_t t = 0;
    for (; t + 2 <= taps; t += 2) {
        const REAL *s0 = src[t], *s1 = src[t + 1];
        const REAL k0 = wt[t], k1 = wt[t + 1];
#pragma GCC unroll 16
        for (int v = 0; v < nvec; v++) {
            KERNEL(lanes) x0, x1;
            memcpy(&x0, s0 + off[v], sizeof x0);
            memcpy(&x1, s1 + off[v], sizeof x1);
            even[v] += k0 * x0;
            odd[v] += k1 * x1;
        }
    }
    if (t < taps)
#pragma GCC unroll 16
        for (int v = 0; v < nvec; v++) {
            KERNEL(lanes) x;
            memcpy(&x, src[t] + off[v], sizeof x);
            even[v] += wt[t] * x;
        }
#pragma GCC unroll 16
    for (int v = 0; v < nvec; v++) {
        const KERNEL(lanes) sum = even[v] + odd[v] + bias;
        memcpy(out + off[v], &sum, sizeof sum);
    }
}

// out[j] = bias + sum_t wt[t] * src[t][j] for j < count (or += that, bias 0, with
// accumulate), each src[t] read up to a vector past the last output: DW_VECS vectors at a
// time, the last few together (the last partial vector overlapping the one before it). A
// row shorter than a vector, or one that accumulates (filters sharing a dx plane), goes a
// vector at a time, its last partial vector through a copy.
static inline __attribute__((always_inline)) void
KERNEL(dw_taps)(REAL *out, int64_t count, const REAL *const *src, const REAL *wt, int64_t taps,
                REAL bias, bool accumulate) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    if (count >= LANES && !accumulate) {
        int64_t j = 0;
        for (; count - j >= DW_VECS * LANES; j += DW_VECS * LANES)
            KERNEL(dw_vectors)(out, DW_VECS, j, count, src, wt, taps, bias);
        const int64_t left = (count - j + LANES - 1) / LANES;
        if (left > DW_VECS / 2) KERNEL(dw_vectors)(out, DW_VECS, j, count, src, wt, taps, bias);
        else if (left > 2) KERNEL(dw_vectors)(out, 4, j, count, src, wt, taps, bias);
        else if (left == 2) KERNEL(dw_vectors)(out, 2, j, count, src, wt, taps, bias);
        else if (left == 1) KERNEL(dw_vectors)(out, 1, j, count, src, wt, taps, bias);
        return;
    }
    for (int64_t j = 0; j < count; j += LANES) {
        KERNEL(lanes) acc = (KERNEL(lanes)){0} + bias;
        for (int64_t t = 0; t < taps; t++) {
            KERNEL(lanes) x;
            memcpy(&x, src[t] + j, sizeof x);
            acc += wt[t] * x;
        }
        REAL last[LANES];
        memcpy(last, &acc, sizeof last);
        const int64_t n = count - j < LANES ? count - j : LANES;
        for (int64_t l = 0; l < n; l++) out[j + l] = accumulate ? out[j + l] + last[l] : last[l];
    }
}

// The ring slot of row i.
static inline REAL *KERNEL(dw_slot)(const conv_dw_plan *p, int64_t i) {
    return (REAL *)p->ring + (i & (p->slots - 1)) * p->phases * p->len;
}

// dst[i] = from[2i] for i < n, reading from[0 .. 2n-1) only: two vectors' even lanes by one
// shuffle, the last vector overlapping the one before it (a loop with stride-2 loads went an
// element at a time, the slowest part of a stride-2 pass). Clang (the fuzz build) has no
// __builtin_shuffle and takes the plain loop.
static void KERNEL(dw_evens)(REAL *restrict dst, const REAL *restrict from, int64_t n) {
    int64_t i = 0;
#ifndef __clang__
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    typedef __typeof__(__builtin_choose_expr(sizeof(REAL) == 4, (int32_t)0, (int64_t)0)) int_t;
    typedef int_t pick_t __attribute__((vector_size(VEC_BYTES)));
    int_t index[LANES];
    for (int l = 0; l < LANES; l++) index[l] = 2 * l;
    pick_t evens;
    memcpy(&evens, index, sizeof evens);
    for (; i < n - 1 && n - 1 >= LANES; i += LANES) {
        if (i + LANES > n - 1) i = n - 1 - LANES; // the last vector, overlapping
        KERNEL(lanes) a, b;
        memcpy(&a, from + 2 * i, sizeof a);
        memcpy(&b, from + 2 * i + LANES, sizeof b);
        const KERNEL(lanes) e = __builtin_shuffle(a, b, evens);
        memcpy(dst + i, &e, sizeof e);
    }
#endif
    for (; i < n; i++) dst[i] = from[2 * i];
}

// Copies x row `ih` (of a W-wide plane) into its ring slot as p->phases runs: run q holds the
// padded row's columns q, q + s, q + 2s, ... (s the stride), zeros outside x already there.
static void KERNEL(dw_copy_row)(const conv_dw_plan *p, const REAL *x, int64_t ih) {
    const conv_geom *g = p->g;
    const int64_t s = g->stride_w;
    REAL *slot = KERNEL(dw_slot)(p, ih);
    for (int64_t q = 0; q < p->phases; q++) {
        const int64_t lo = p->span[2 * q], hi = p->span[2 * q + 1];
        if (hi <= lo) continue;
        REAL *restrict dst = slot + q * p->len + lo;
        const REAL *restrict from = x + ih * g->w + lo * s + q - g->pad_left;
        if (s == 1) {
            memcpy(dst, from, (size_t)(hi - lo) * sizeof(REAL));
            continue;
        }
        if (s == 2) {
            KERNEL(dw_evens)(dst, from, hi - lo);
            continue;
        }
        for (int64_t i = 0; i < hi - lo; i++) dst[i] = from[i * s];
    }
}

// [*a0, *a1) (empty: *a0 == *a1) the kernel rows whose x row top + a*dilation_h lies inside x.
static inline void KERNEL(dw_kernel_rows)(const conv_geom *g, int64_t top, int64_t *a0,
                                          int64_t *a1) {
    const int64_t dh = g->dilation_h, below = g->h - 1 - top;
    *a0 = top >= 0 ? 0 : dh == 1 ? -top : (-top + dh - 1) / dh;
    *a1 = below < 0 ? 0 : dh == 1 ? below + 1 : below / dh + 1;
    if (*a1 > g->kh) *a1 = g->kh;
    if (*a1 < *a0) *a1 = *a0;
}

// For output row r: [*a0, *a1) the kernel rows whose x row lies inside x; copies into the ring
// the x rows from *next up to the last of them, once each and in order (rows above the
// kernel's top row are never read again: with dilation, rows between its taps may be).
static void KERNEL(dw_x_rows)(const conv_dw_plan *p, const REAL *x, int64_t r, int64_t *next,
                              int64_t *a0, int64_t *a1) {
    const conv_geom *g = p->g;
    const int64_t top = r * g->stride_h - g->pad_top, dh = g->dilation_h;
    KERNEL(dw_kernel_rows)(g, top, a0, a1);
    if (*a1 == *a0) return;
    if (*next < top) *next = top;
    for (; *next <= top + (*a1 - 1) * dh; ++*next) KERNEL(dw_copy_row)(p, x, *next);
}

// x (H,W), w (kh,kw) -> y (Ho,Wo) = bias + their correlation
static void KERNEL(dw_forward)(const conv_dw_plan *p, void *y_, const void *x_, const void *w_,
                               double bias) {
    const conv_geom *g = p->g;
    REAL *y = y_;
    const REAL *x = x_, *w = w_;
    const REAL **src = (const REAL **)p->src;
    REAL *wt = p->weights;
    const int64_t ho = conv_out_h(g), wo = conv_out_w(g);
    memset(p->ring, 0, (size_t)(p->slots * p->phases * p->len) * sizeof(REAL));
    for (int64_t r = 0, next = 0, a0, a1; r < ho; r++) {
        KERNEL(dw_x_rows)(p, x, r, &next, &a0, &a1);
        int64_t taps = 0;
        for (int64_t a = a0; a < a1; a++) {
            const REAL *slot =
                KERNEL(dw_slot)(p, r * g->stride_h - g->pad_top + a * g->dilation_h);
            for (int64_t b = 0; b < g->kw; b++, taps++) {
                src[taps] = slot + p->col_off[b];
                wt[taps] = w[a * g->kw + b];
            }
        }
        KERNEL(dw_taps)(y + r * wo, wo, src, wt, taps, (REAL)bias, false);
    }
}

// ---- Depthwise forward from x in place: 3-wide kernels, stride 1 along rows -----------------
// A column block of LANES adjacent outputs takes each tap as one unaligned load straight from
// x's row: no copy of x and no transposes. dw_forward's ring copies were read back at once at
// other offsets than they were written, which the CPU's store forwarding cannot serve (~125
// cycles per row where the multiply-adds took ~9); the channel-blocked passes transpose every
// row in and out. Lanes that fall outside x's row (padding, or the next row) are cleared by
// masks in the column blocks that have any; rows whose loads would leave the plane (the first
// and last, usually) are read from zero-padded copies. On stride 2 the same idea (two loads
// and an even- or odd-lane shuffle per pair of taps) measured no faster than the
// channel-blocked forward on AVX-512 and 20% slower on AVX2, so stride 2 stays there.

// masks[b*LANES + l] <- all ones where x column u0 + l + b lies inside x's row, else zero,
// for b < 3: a column block's masks (in lanes of REAL's width: |u0| and W below 2^30).
static void KERNEL(dw_inplace_masks)(REAL *masks, const conv_geom *g, int64_t u0) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    typedef __typeof__((KERNEL(lanes)){0} < (KERNEL(lanes)){0}) mask_t;
    mask_t u;
    for (int l = 0; l < LANES; l++) u[l] = (__typeof__(u[0]))(u0 + l);
    for (int b = 0; b < 3; b++, u += 1) {
        const mask_t m = (u >= 0) & (u < (__typeof__(u[0]))g->w);
        memcpy(masks + b * LANES, &m, sizeof m);
    }
}

// t[b] <- the LANES elements at from + b, b < 3, cleared outside masks[b*LANES ..] (read from
// memory: on AVX2 they do not stay in registers beside the sums) when `edge` (a constant).
static inline __attribute__((always_inline)) void
KERNEL(dw_inplace_load)(KERNEL(lanes) *t, const REAL *from, const REAL *masks,
                        const bool edge) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    typedef __typeof__((KERNEL(lanes)){0} < (KERNEL(lanes)){0}) mask_t;
#pragma GCC unroll 4
    for (int b = 0; b < 3; b++) {
        memcpy(&t[b], from + b, sizeof t[b]);
        if (!edge) continue;
        mask_t m;
        memcpy(&m, masks + b * LANES, sizeof m);
        t[b] = (KERNEL(lanes))((mask_t)t[b] & m);
    }
}

// acc[0] + acc[1] += sum_b w[b] * t[b], b < 3 (two chains of multiply-adds).
static inline __attribute__((always_inline)) void
KERNEL(dw_inplace_fma)(KERNEL(lanes) *acc, const REAL *w, const KERNEL(lanes) *t) {
    acc[0] += w[0] * t[0];
    acc[1] += w[1] * t[1];
    acc[0] += w[2] * t[2];
}

// Output rows r0 .. r0 + nr - 1 (nr <= CONV_DW_INPLACE_ROWS) of y (Ho,wo), LANES columns from
// j0, from the x rows first .. end - 1 (all inside x): each x row's three taps are loaded once
// (at x + ih*W, or where the loads would leave the plane from the row's zero-padded copy at
// copies + (ih - first)*(hi - lo) - lo, [lo, hi) being conv_dw_inplace_reach), masked when
// `edge`, and summed into every output row that uses it. `edge` and KH are constants: KH == 3
// where the block has CONV_DW_INPLACE_ROWS rows whose x rows are all read in place and the
// layer has 3 kernel rows, stride 1 and no dilation down them (which x row feeds which output
// row is then known when compiling); else 0.
static inline __attribute__((always_inline)) void
KERNEL(dw_inplace_rows)(const conv_geom *g, REAL *y, const REAL *x, const REAL *copies,
                        int64_t first, int64_t end, int64_t r0, int64_t nr, const REAL *w,
                        REAL bias, int64_t j0, int64_t wo, int64_t lo, int64_t hi,
                        const REAL *masks, const int KH, const bool edge) {
    const int64_t u0 = j0 - g->pad_left, dh = g->dilation_h, reach = (g->kh - 1) * dh;
    KERNEL(lanes) acc[CONV_DW_INPLACE_ROWS][2];
#pragma GCC unroll 8
    for (int i = 0; i < CONV_DW_INPLACE_ROWS; i++) {
        acc[i][0] = (KERNEL(lanes)){0} + bias;
        acc[i][1] = (KERNEL(lanes)){0};
    }
    KERNEL(lanes) t[3];
    if (KH)
#pragma GCC unroll 16
        for (int q = 0; q < CONV_DW_INPLACE_ROWS - 1 + KH; q++) {
            KERNEL(dw_inplace_load)(t, x + (first + q) * g->w + u0, masks, edge);
#pragma GCC unroll 8
            for (int i = 0; i < CONV_DW_INPLACE_ROWS; i++)
                if (q - i >= 0 && q - i < KH) KERNEL(dw_inplace_fma)(acc[i], w + (q - i) * 3, t);
        }
    else
        for (int64_t ih = first; ih < end; ih++) {
            const REAL *row = x + ih * g->w;
            if (ih * g->w + lo < 0 || ih * g->w + hi > g->h * g->w)
                row = copies + (ih - first) * (hi - lo) - lo;
            KERNEL(dw_inplace_load)(t, row + u0, masks, edge);
#pragma GCC unroll 8
            for (int i = 0; i < CONV_DW_INPLACE_ROWS; i++) {
                const int64_t d = ih - (r0 + i) * g->stride_h + g->pad_top;
                if (i < nr && d >= 0 && d <= reach && (dh == 1 || d % dh == 0))
                    KERNEL(dw_inplace_fma)(acc[i], w + (dh == 1 ? d : d / dh) * 3, t);
            }
        }
#pragma GCC unroll 8
    for (int i = 0; i < CONV_DW_INPLACE_ROWS; i++) {
        if (i >= nr) break;
        const KERNEL(lanes) sum = acc[i][0] + acc[i][1];
        memcpy(y + (r0 + i) * wo + j0, &sum, sizeof sum);
    }
}

// x (H,W), w (kh,3) -> y (Ho,Wo) = bias + their correlation, for stride_w 1, dilation_w 1 and
// Wo >= LANES (conv_depthwise.c's inplace_shape): CONV_DW_INPLACE_ROWS output rows of LANES
// columns at a time, the last column block overlapping the one before it. p's ring holds the
// row copies, its acc the masks.
static void KERNEL(dw_forward_inplace)(const conv_dw_plan *p, void *y_, const void *x_,
                                       const void *w_, double bias_) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    const conv_geom *g = p->g;
    REAL *y = y_, *masks = p->acc, *copies = p->ring;
    const REAL *x = x_, *w = w_, bias = (REAL)bias_;
    const int64_t ho = conv_out_h(g), wo = conv_out_w(g), pl = g->pad_left;
    int64_t lo, hi;
    conv_dw_inplace_reach(g, &lo, &hi);
    // The masks of the first and the last column block (those between lie inside the row
    // unless the right padding is wider than a vector: theirs go to a third place).
    const int64_t blocks = (wo + LANES - 1) / LANES;
    KERNEL(dw_inplace_masks)(masks, g, -pl);
    KERNEL(dw_inplace_masks)(masks + 3 * LANES, g, wo - LANES - pl);
    for (int64_t r0 = 0; r0 < ho; r0 += CONV_DW_INPLACE_ROWS) {
        const int64_t nr = ho - r0 < CONV_DW_INPLACE_ROWS ? ho - r0 : CONV_DW_INPLACE_ROWS;
        const int64_t top = r0 * g->stride_h - g->pad_top;
        const int64_t first = top > 0 ? top : 0;
        int64_t end = (r0 + nr - 1) * g->stride_h - g->pad_top + (g->kh - 1) * g->dilation_h + 1;
        if (end > g->h) end = g->h;
        bool in_place = true;
        for (int64_t ih = first; ih < end; ih++) {
            if (ih * g->w + lo >= 0 && ih * g->w + hi <= g->h * g->w) continue;
            REAL *copy = copies + (ih - first) * (hi - lo) - lo;
            const int64_t from = lo > 0 ? lo : 0, to = hi < g->w ? hi : g->w;
            memset(copy + lo, 0, (size_t)(hi - lo) * sizeof(REAL));
            if (to > from)
                memcpy(copy + from, x + ih * g->w + from, (size_t)(to - from) * sizeof(REAL));
            in_place = false;
        }
        const bool whole = in_place && nr == CONV_DW_INPLACE_ROWS && top == first &&
                           end - first == CONV_DW_INPLACE_ROWS + 2 && g->kh == 3 &&
                           g->stride_h == 1 && g->dilation_h == 1;
        for (int64_t k = 0; k < blocks; k++) {
            const int64_t j0 = k * LANES + LANES > wo ? wo - LANES : k * LANES;
            const REAL *m = masks + (k == 0 ? 0 : 3 * LANES);
            const bool edge = j0 - pl < 0 || j0 - pl + LANES + 1 >= g->w;
            if (edge && k > 0 && k < blocks - 1) {
                KERNEL(dw_inplace_masks)(masks + 6 * LANES, g, j0 - pl);
                m = masks + 6 * LANES;
            }
#define ROWS(KH, EDGE)                                                                       \
    KERNEL(dw_inplace_rows)(g, y, x, copies, first, end, r0, nr, w, bias, j0, wo, lo, hi, m, KH, \
                            EDGE)
            if (whole && edge) ROWS(3, true);
            else if (whole) ROWS(3, false);
            else if (edge) ROWS(0, true);
            else ROWS(0, false);
#undef ROWS
        }
    }
}

// dx row <- (or += with accumulate) its column phases in p->row: column q + m*sw from phase
// q's element m. Stride 2 as one loop that the vectoriser turns into lane shuffles.
static void KERNEL(dw_interleave)(const conv_dw_plan *p, REAL *restrict dx, bool accumulate) {
    const int64_t sw = p->g->stride_w, w = p->g->w;
    const REAL *restrict row = p->row;
    if (sw == 2 && !accumulate) {
        const REAL *restrict even = row, *restrict odd = row + p->row_phase;
#pragma omp simd
        for (int64_t m = 0; m < w / 2; m++) {
            dx[2 * m] = even[m];
            dx[2 * m + 1] = odd[m];
        }
        if (w % 2) dx[w - 1] = even[w / 2];
        return;
    }
    for (int64_t q = 0; q < sw && q < w; q++) {
        const REAL *restrict from = row + q * p->row_phase;
        const int64_t count = (w - q + sw - 1) / sw;
        if (accumulate)
            for (int64_t m = 0; m < count; m++) dx[q + m * sw] += from[m];
        else
            for (int64_t m = 0; m < count; m++) dx[q + m * sw] = from[m];
    }
}

// The taps of one row phase (`rows`, from a plan's row_taps) and column phase (`cols`, from
// its col_taps) whose dy row r = base - (the table's offset) lies in dy (ho rows): visit(ctx,
// t, r, c, k) for the t-th, which reads dy row r from column c of its run with weight k
// (a*kw + b). Inlined into dw_data and dw_data_lanes, each with its visit; returns the taps.
static inline __attribute__((always_inline)) int64_t
KERNEL(dw_phase_taps)(const int64_t *rows, const int64_t *cols, int64_t base, int64_t ho,
                      int64_t kw, void (*visit)(void *ctx, int64_t t, int64_t r, int64_t c,
                                                int64_t k),
                      void *ctx) {
    int64_t taps = 0;
    for (int64_t i = 0; i < rows[0]; i++) {
        const int64_t a = rows[1 + 2 * i], r = base - rows[2 + 2 * i];
        if (r < 0 || r >= ho) continue;
        for (int64_t k = 0; k < cols[0]; k++, taps++)
            visit(ctx, taps, r, cols[2 + 2 * k], a * kw + cols[1 + 2 * k]);
    }
    return taps;
}

// dw_data's visit: the tap's dy run in the ring and its weight.
typedef struct {
    const conv_dw_plan *p;
    const REAL **src;
    REAL *wt;
    const REAL *w;
} KERNEL(dw_data_ctx);
static inline void KERNEL(dw_data_tap)(void *ctx_, int64_t t, int64_t r, int64_t c, int64_t k) {
    const KERNEL(dw_data_ctx) *ctx = ctx_;
    ctx->src[t] = KERNEL(dw_slot)(ctx->p, r) + ctx->p->margin + c;
    ctx->wt[t] = ctx->w[k];
}

// dy (Ho,Wo), w (kh,kw) -> dx (H,W) (or += with accumulate). dx[ih][iw] sums w[a][b] *
// dy[r][c] over the taps with ih + pt - a*dh = r*sh and iw + pl - b*dw = c*sw: per row and
// column phase q = iw mod sw, only the taps that hit (the polyphase split of the transposed
// convolution: no multiply by the upsampling's zeros), each a run of a dy row in the ring.
static void KERNEL(dw_data)(const conv_dw_plan *p, void *dx_, const void *dy_, const void *w_,
                            bool accumulate) {
    const conv_geom *g = p->g;
    REAL *dx = dx_;
    const REAL *dy = dy_, *w = w_;
    const REAL **src = (const REAL **)p->src;
    REAL *wt = p->weights;
    const int64_t ho = conv_out_h(g), wo = conv_out_w(g), sh = g->stride_h, sw = g->stride_w;
    const int64_t copy = wo < p->len - p->margin ? wo : p->len - p->margin;
    const int64_t reach = (g->kh - 1) * g->dilation_h / sh; // rows u / sh - reach .. u / sh
    memset(p->ring, 0, (size_t)(p->slots * p->len) * sizeof(REAL));
    // u = ih + pt = base * sh + ph
    for (int64_t ih = 0, next = 0, base = g->pad_top / sh, ph = g->pad_top % sh; ih < g->h;
         ih++) {
        if (next < base - reach) next = base - reach;
        for (; next <= base && next < ho; next++)
            memcpy(KERNEL(dw_slot)(p, next) + p->margin, dy + next * wo,
                   (size_t)copy * sizeof(REAL));
        const int64_t *rows = p->row_taps + ph * (1 + 2 * g->kh);
        for (int64_t q = 0; q < sw && q < g->w; q++) {
            KERNEL(dw_data_ctx) ctx = {p, src, wt, w};
            const int64_t taps = KERNEL(dw_phase_taps)(
                rows, p->col_taps + q * (1 + 2 * g->kw), base, ho, g->kw, KERNEL(dw_data_tap),
                &ctx);
            const int64_t count = (g->w - q + sw - 1) / sw;
            if (sw == 1)
                KERNEL(dw_taps)(dx + ih * g->w, count, src, wt, taps, 0, accumulate);
            else
                KERNEL(dw_taps)((REAL *)p->row + q * p->row_phase, count, src, wt, taps, 0, false);
        }
        if (sw > 1) KERNEL(dw_interleave)(p, dx + ih * g->w, accumulate);
        if (++ph == sh) ph = 0, base++;
    }
}

// For the dy row's vectors v < nvec (a constant) at off_v = min(j + v*LANES, count - LANES):
// acc[t] += sum_v d_v * (x run of tap t at off_v), d_v those dy lanes that no vector before
// counted (the rest zero, and x zero there too: an infinite x must not meet a zero dy and
// turn a sum into NaN). count >= LANES.
static inline __attribute__((always_inline)) void
KERNEL(dw_dots)(REAL *acc, const int nvec, int64_t j, int64_t count, const REAL *dy,
                const REAL *const *src, int64_t taps) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    typedef __typeof__((KERNEL(lanes)){0} < (KERNEL(lanes)){0}) mask_t;
    KERNEL(lanes) d[DW_VECS], lane;
    mask_t keep[DW_VECS];
    int64_t off[DW_VECS];
    REAL index[LANES];
    for (int l = 0; l < LANES; l++) index[l] = (REAL)l;
    memcpy(&lane, index, sizeof lane);
    const bool whole = j + nvec * LANES <= count;
#pragma GCC unroll 16
    for (int v = 0; v < nvec; v++) {
        const int64_t at = j + v * LANES;
        off[v] = at < count - LANES ? at : count - LANES;
        memcpy(&d[v], dy + off[v], sizeof d[v]);
        // lane l holds column off + l: counted here if at or past `at`
        keep[v] = lane >= (KERNEL(lanes)){0} + (REAL)(at - off[v]);
        if (!whole) d[v] = (KERNEL(lanes))((mask_t)d[v] & keep[v]);
    }
    for (int64_t t = 0; t < taps; t++) {
        const REAL *s = src[t];
        KERNEL(lanes) even = {0}, odd = {0}, sum;
#pragma GCC unroll 16
        for (int v = 0; v < nvec; v++) {
            KERNEL(lanes) x;
            memcpy(&x, s + off[v], sizeof x);
            if (!whole) x = (KERNEL(lanes))((mask_t)x & keep[v]);
            if (v % 2) odd += d[v] * x;
            else even += d[v] * x;
        }
        memcpy(&sum, acc + t * LANES, sizeof sum);
        sum += even + odd;
        memcpy(acc + t * LANES, &sum, sizeof sum);
    }
}

// dw (kh,kw) += the correlation of x (H,W) with dy (Ho,Wo): per tap, the dot of dy with the
// x run it meets, summed in a vector of lanes per tap (p->acc) over the plane and reduced
// once at its end; DW_VECS vectors of a dy row at a time. Rows shorter than a vector go
// through a zero-padded copy of dy, x masked past the row's end.
static void KERNEL(dw_weights)(const conv_dw_plan *p, void *dw_, const void *dy_,
                               const void *x_) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    typedef __typeof__((KERNEL(lanes)){0} < (KERNEL(lanes)){0}) mask_t;
    const conv_geom *g = p->g;
    REAL *dw = dw_;
    const REAL *dy = dy_, *x = x_;
    const REAL **src = (const REAL **)p->src;
    REAL *acc = p->acc; // tap t's lanes at acc + t * LANES (memcpy: the workspace may be unaligned)
    const int64_t ho = conv_out_h(g), wo = conv_out_w(g), khw = g->kh * g->kw;
    memset(p->ring, 0, (size_t)(p->slots * p->phases * p->len) * sizeof(REAL));
    memset(acc, 0, (size_t)khw * LANES * sizeof(REAL));
    for (int64_t r = 0, next = 0, a0, a1; r < ho; r++) {
        KERNEL(dw_x_rows)(p, x, r, &next, &a0, &a1);
        int64_t taps = 0;
        REAL *acc_row = acc + a0 * g->kw * LANES; // the taps of rows a0 .. a1, in order
        for (int64_t a = a0; a < a1; a++) {
            const REAL *slot =
                KERNEL(dw_slot)(p, r * g->stride_h - g->pad_top + a * g->dilation_h);
            for (int64_t b = 0; b < g->kw; b++) src[taps++] = slot + p->col_off[b];
        }
        if (taps == 0) continue;
        const REAL *dy_row = dy + r * wo;
        if (wo < LANES) {
            REAL d_row[LANES] = {0}, index[LANES];
            KERNEL(lanes) d, lane;
            memcpy(d_row, dy_row, (size_t)wo * sizeof(REAL));
            memcpy(&d, d_row, sizeof d);
            for (int l = 0; l < LANES; l++) index[l] = (REAL)l;
            memcpy(&lane, index, sizeof lane);
            const mask_t keep = lane < (KERNEL(lanes)){0} + (REAL)wo;
            for (int64_t t = 0; t < taps; t++) {
                KERNEL(lanes) xv, sum;
                memcpy(&xv, src[t], sizeof xv);
                memcpy(&sum, acc_row + t * LANES, sizeof sum);
                sum += d * (KERNEL(lanes))((mask_t)xv & keep);
                memcpy(acc_row + t * LANES, &sum, sizeof sum);
            }
            continue;
        }
        int64_t j = 0;
        for (; wo - j >= DW_VECS * LANES; j += DW_VECS * LANES)
            KERNEL(dw_dots)(acc_row, DW_VECS, j, wo, dy_row, src, taps);
        const int64_t left = (wo - j + LANES - 1) / LANES;
        if (left > DW_VECS / 2) KERNEL(dw_dots)(acc_row, DW_VECS, j, wo, dy_row, src, taps);
        else if (left > 2) KERNEL(dw_dots)(acc_row, 4, j, wo, dy_row, src, taps);
        else if (left == 2) KERNEL(dw_dots)(acc_row, 2, j, wo, dy_row, src, taps);
        else if (left == 1) KERNEL(dw_dots)(acc_row, 1, j, wo, dy_row, src, taps);
    }
    for (int64_t t = 0; t < khw; t++) {
        REAL total = 0;
        for (int l = 0; l < LANES; l++) total += acc[t * LANES + l];
        dw[t] += total;
    }
}

// ---- Depthwise, channel-blocked, for conv_depthwise.c ---------------------------------------
// LANES planes at once (conv_dw_lanes_plan): pixel c of a row is one vector whose lane l is
// plane l's element, so that a tap of an output pixel is one aligned load whatever the stride
// and a row's length never leaves a part of a vector. Per output row of a 3x3 layer that is 9
// loads and multiply-adds per LANES outputs, where the plane kernel above pays per row for
// its tap tables, its overlapping last vector and, with a stride, the split of x rows by
// column phase: (i)'s 28-wide rows cost it ~125 cycles each, mostly not multiply-adds.

// v[i][l] <-> v[l][i], in two steps whose shuffles are the cheap ones of every ISA (the
// generic block swaps took AVX-512's two-table vpermt2ps for half of them, and the transposes
// were the larger part of a stride-2 forward). Within each 128-bit chunk of EPC elements:
// the low and high halves of rows i and i + g interleaved by units of g (unpcklps, unpcklpd),
// after which row EPC*m + e holds, in chunk c, column EPC*c + rev(e) (e's bits reversed) of
// rows EPC*m ..; then the chunks transposed by rounds of unzips (even and odd chunks of two
// rows: vshuff32x4, vperm2f128) and rows EPC*c + e and EPC*c + rev(e) swapped. Clang (the
// fuzz build) has no __builtin_shuffle and goes through memory.
static inline __attribute__((always_inline)) void KERNEL(dw_transpose)(KERNEL(lanes) *v) {
    enum { LANES = VEC_BYTES / sizeof(REAL), EPC = 16 / sizeof(REAL), CHUNKS = LANES / EPC };
    enum { HALF = CHUNKS > 1 ? CHUNKS / 2 : 1 }; // CHUNKS / 2, never 0 for the compiler
#ifndef __clang__
    typedef __typeof__(__builtin_choose_expr(sizeof(REAL) == 4, (int32_t)0, (int64_t)0)) int_t;
    typedef int_t pick_t __attribute__((vector_size(VEC_BYTES)));
#pragma GCC unroll 4
    for (int g = 1; g < EPC; g *= 2) {
        int_t lo_index[LANES], hi_index[LANES];
#pragma GCC unroll 16
        for (int p = 0; p < LANES; p++) {
            const int unit = p % EPC / g;
            lo_index[p] = (unit % 2 ? LANES : 0) + p / EPC * EPC + unit / 2 * g + p % g;
            hi_index[p] = lo_index[p] + EPC / 2;
        }
        pick_t lo, hi;
        memcpy(&lo, lo_index, sizeof lo);
        memcpy(&hi, hi_index, sizeof hi);
#pragma GCC unroll 16
        for (int i = 0; i < LANES; i++) {
            if (i & g) continue;
            const KERNEL(lanes) a = v[i], b = v[i + g];
            v[i] = __builtin_shuffle(a, b, lo);
            v[i + g] = __builtin_shuffle(a, b, hi);
        }
    }
#pragma GCC unroll 4
    for (int round = 1; round < CHUNKS; round *= 2) {
        int_t even_index[LANES], odd_index[LANES];
#pragma GCC unroll 16
        for (int p = 0; p < LANES; p++) {
            const int c = p / EPC;
            even_index[p] = (c / HALF ? LANES : 0) + c % HALF * 2 * EPC + p % EPC;
            odd_index[p] = even_index[p] + EPC;
        }
        pick_t even, odd;
        memcpy(&even, even_index, sizeof even);
        memcpy(&odd, odd_index, sizeof odd);
        KERNEL(lanes) t[LANES];
#pragma GCC unroll 16
        for (int i = 0; i < LANES / 2; i++) {
            const int e = i % EPC, k = i / EPC;
            const KERNEL(lanes) a = v[EPC * 2 * k + e], b = v[EPC * (2 * k + 1) + e];
            t[EPC * k + e] = __builtin_shuffle(a, b, even);
            t[EPC * (k + HALF) + e] = __builtin_shuffle(a, b, odd);
        }
        memcpy(v, t, sizeof t);
    }
    if (EPC == 4)
#pragma GCC unroll 4
        for (int c = 0; c < CHUNKS; c++) {
            const KERNEL(lanes) a = v[4 * c + 1];
            v[4 * c + 1] = v[4 * c + 2];
            v[4 * c + 2] = a;
        }
#else
    REAL m[LANES][LANES], t[LANES][LANES];
    memcpy(m, v, sizeof m);
    for (int i = 0; i < LANES; i++)
        for (int l = 0; l < LANES; l++) t[l][i] = m[i][l];
    memcpy(v, t, sizeof t);
#endif
}

// Between a row of LANES planes (plane l's elements at planes + l*plane) and pixel vectors
// (pixel c's LANES elements at pixels + c*LANES), for c < width: into the pixels when
// to_pixels, else back out. LANES pixels per transpose (the last overlapping the one before
// it); rows shorter than a vector an element at a time. Inlined once per direction.
static inline __attribute__((always_inline)) void
KERNEL(dw_lanes_move)(REAL *planes, REAL *pixels, int64_t plane, int64_t width,
                      const bool to_pixels) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    if (width < LANES) {
        for (int64_t c = 0; c < width; c++)
            for (int l = 0; l < LANES; l++) {
                if (to_pixels) pixels[c * LANES + l] = planes[l * plane + c];
                else planes[l * plane + c] = pixels[c * LANES + l];
            }
        return;
    }
    for (int64_t c = 0; c < width; c += LANES) {
        if (c + LANES > width) c = width - LANES;
        KERNEL(lanes) v[LANES];
#pragma GCC unroll 16
        for (int i = 0; i < LANES; i++)
            memcpy(&v[i], to_pixels ? planes + i * plane + c : pixels + (c + i) * LANES,
                   sizeof v[i]);
        KERNEL(dw_transpose)(v);
#pragma GCC unroll 16
        for (int i = 0; i < LANES; i++)
            memcpy(to_pixels ? pixels + (c + i) * LANES : planes + i * plane + c, &v[i],
                   sizeof v[i]);
    }
}

// to[c*LANES + l] = from[l*plane + c] for c < width, l < LANES: a row of LANES planes into
// pixel vectors.
static void KERNEL(dw_to_lanes)(REAL *restrict to, const REAL *restrict from, int64_t plane,
                                int64_t width) {
    KERNEL(dw_lanes_move)((REAL *)from, to, plane, width, true);
}

// to[l*plane + c] = from[c*LANES + l]: dw_to_lanes' inverse.
static void KERNEL(dw_from_lanes)(REAL *restrict to, const REAL *restrict from, int64_t plane,
                                  int64_t width) {
    KERNEL(dw_lanes_move)(to, (REAL *)from, plane, width, false);
}

// The output pixels a dw_lanes_pixels call computes together: independent sums that cover an
// FMA's latency times its throughput.
#define DW_PIXELS 8

// out[(j + i)*out_step ..] = bias + sum_t (weights at src[2t+1]) * (src[2t] + (j + i)*in_step)
// for the npix (a constant) pixels i; bias a vector, or NULL for zeros. (Vectors travel by
// pointer: by value they change the ABI where the ISA is not enabled, as in the fuzz build.)
static inline __attribute__((always_inline)) void
KERNEL(dw_lanes_pixels)(REAL *restrict out, const int npix, int64_t j, int64_t in_step,
                        int64_t out_step, const REAL *const *src, int64_t taps,
                        const REAL *bias) {
    KERNEL(lanes) acc[DW_PIXELS], b = {0};
    if (bias) memcpy(&b, bias, sizeof b);
#pragma GCC unroll 8
    for (int i = 0; i < npix; i++) acc[i] = b;
    for (int64_t t = 0; t < taps; t++) {
        const REAL *s = src[2 * t] + j * in_step;
        KERNEL(lanes) k;
        memcpy(&k, src[2 * t + 1], sizeof k);
#pragma GCC unroll 8
        for (int i = 0; i < npix; i++) {
            KERNEL(lanes) x;
            memcpy(&x, s + i * in_step, sizeof x);
            acc[i] += k * x;
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < npix; i++) memcpy(out + (j + i) * out_step, &acc[i], sizeof acc[i]);
}

// dw_lanes_pixels for pixels j < count: DW_PIXELS at a time, the last block overlapping the
// one before it, rows shorter than a block a pixel at a time.
static void KERNEL(dw_lanes_run)(REAL *restrict out, int64_t count, int64_t in_step,
                                 int64_t out_step, const REAL *const *src, int64_t taps,
                                 const REAL *bias) {
    int64_t j = 0;
    if (count >= DW_PIXELS)
        for (; j < count; j += DW_PIXELS) {
            if (j + DW_PIXELS > count) j = count - DW_PIXELS;
            KERNEL(dw_lanes_pixels)(out, DW_PIXELS, j, in_step, out_step, src, taps, bias);
        }
    for (; j < count; j++) KERNEL(dw_lanes_pixels)(out, 1, j, in_step, out_step, src, taps, bias);
}
#undef DW_PIXELS

// weights[t*LANES + l] = w[l*khw + t]: the taps of LANES filters as vectors.
static void KERNEL(dw_lanes_weights)(REAL *restrict weights, const REAL *restrict w,
                                     int64_t khw) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    for (int64_t t = 0; t < khw; t++)
        for (int l = 0; l < LANES; l++) weights[t * LANES + l] = w[l * khw + t];
}

// For output row r: [*a0, *a1) the kernel rows inside x, and x's rows from *next up to the
// last of them transposed into the ring (p->len pixels a slot, pad_left zeros first).
static void KERNEL(dw_lanes_x_rows)(const conv_dw_lanes_plan *p, const REAL *x, int64_t r,
                                    int64_t *next, int64_t *a0, int64_t *a1) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    const conv_geom *g = p->g;
    const int64_t top = r * g->stride_h - g->pad_top;
    KERNEL(dw_kernel_rows)(g, top, a0, a1);
    if (*a1 == *a0) return;
    if (*next < top) *next = top;
    for (; *next <= top + (*a1 - 1) * g->dilation_h; ++*next)
        KERNEL(dw_to_lanes)((REAL *)p->ring + (*next & (p->slots - 1)) * p->len * LANES +
                                g->pad_left * LANES,
                            x + *next * g->w, g->h * g->w, g->w);
}

// The ring slot (x row or dy row) i.
static inline REAL *KERNEL(dw_lanes_slot)(const conv_dw_lanes_plan *p, int64_t i) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    return (REAL *)p->ring + (i & (p->slots - 1)) * p->len * LANES;
}

// x (LANES,H,W) planes at x + l*H*W, w (LANES,kh,kw), bias (LANES) or NULL -> y (LANES,Ho,Wo)
// planes at y + l*Ho*Wo = bias + their correlations.
static void KERNEL(dw_forward_lanes)(const conv_dw_lanes_plan *p, void *y_, const void *x_,
                                     const void *w_, const void *bias_) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    const conv_geom *g = p->g;
    REAL *y = y_, *out = p->out, *weights = p->weights;
    const REAL *x = x_, *bias = bias_;
    const REAL **src = (const REAL **)p->src;
    const int64_t ho = conv_out_h(g), wo = conv_out_w(g);
    KERNEL(dw_lanes_weights)(weights, w_, g->kh * g->kw);
    memset(p->ring, 0, (size_t)(p->slots * p->len * LANES) * sizeof(REAL));
    for (int64_t r = 0, next = 0, a0, a1; r < ho; r++) {
        KERNEL(dw_lanes_x_rows)(p, x, r, &next, &a0, &a1);
        int64_t taps = 0;
        for (int64_t a = a0; a < a1; a++) {
            const REAL *slot =
                KERNEL(dw_lanes_slot)(p, r * g->stride_h - g->pad_top + a * g->dilation_h);
            for (int64_t c = 0; c < g->kw; c++, taps++) {
                src[2 * taps] = slot + c * g->dilation_w * LANES;
                src[2 * taps + 1] = weights + (a * g->kw + c) * LANES;
            }
        }
        KERNEL(dw_lanes_run)(out, wo, g->stride_w * LANES, LANES, src, taps, bias);
        KERNEL(dw_from_lanes)(y + r * wo, out, ho * wo, wo);
    }
}

// dw_data_lanes' visit: the tap's dy run in the ring and its weights' vector (src pairs).
typedef struct {
    const conv_dw_lanes_plan *p;
    const REAL **src;
    const REAL *weights;
} KERNEL(dw_lanes_data_ctx);
static inline void KERNEL(dw_lanes_data_tap)(void *ctx_, int64_t t, int64_t r, int64_t c,
                                             int64_t k) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    const KERNEL(dw_lanes_data_ctx) *ctx = ctx_;
    ctx->src[2 * t] = KERNEL(dw_lanes_slot)(ctx->p, r) + (ctx->p->margin + c) * LANES;
    ctx->src[2 * t + 1] = ctx->weights + k * LANES;
}

// dy (LANES,Ho,Wo) planes at dy + l*Ho*Wo, w (LANES,kh,kw) -> dx (LANES,H,W) planes at
// dx + l*H*W: dw_data's polyphase sums (the same tap tables), LANES planes at a time, dy rows
// in the ring after p->margin zero pixels, a dx row's column phases written into p->out at
// their columns and the row transposed out whole.
static void KERNEL(dw_data_lanes)(const conv_dw_lanes_plan *p, void *dx_, const void *dy_,
                                  const void *w_) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    const conv_geom *g = p->g;
    REAL *dx = dx_, *out = p->out, *weights = p->weights;
    const REAL *dy = dy_;
    const REAL **src = (const REAL **)p->src;
    const int64_t ho = conv_out_h(g), wo = conv_out_w(g), sh = g->stride_h, sw = g->stride_w;
    const int64_t reach = (g->kh - 1) * g->dilation_h / sh; // rows u / sh - reach .. u / sh
    KERNEL(dw_lanes_weights)(weights, w_, g->kh * g->kw);
    memset(p->ring, 0, (size_t)(p->slots * p->len * LANES) * sizeof(REAL));
    // u = ih + pt = base * sh + ph
    for (int64_t ih = 0, next = 0, base = g->pad_top / sh, ph = g->pad_top % sh; ih < g->h;
         ih++) {
        if (next < base - reach) next = base - reach;
        for (; next <= base && next < ho; next++)
            KERNEL(dw_to_lanes)(KERNEL(dw_lanes_slot)(p, next) + p->margin * LANES,
                                dy + next * wo, ho * wo, wo);
        const int64_t *rows = p->row_taps + ph * (1 + 2 * g->kh);
        for (int64_t q = 0; q < sw && q < g->w; q++) {
            KERNEL(dw_lanes_data_ctx) ctx = {p, src, weights};
            const int64_t taps = KERNEL(dw_phase_taps)(
                rows, p->col_taps + q * (1 + 2 * g->kw), base, ho, g->kw,
                KERNEL(dw_lanes_data_tap), &ctx);
            KERNEL(dw_lanes_run)(out + q * LANES, (g->w - q + sw - 1) / sw, LANES, sw * LANES,
                                 src, taps, NULL);
        }
        KERNEL(dw_from_lanes)(dx + ih * g->w, out, g->h * g->w, g->w);
        if (++ph == sh) ph = 0, base++;
    }
}

// acc[t*LANES ..] += sum_{j < count} d[j*LANES ..] * s[t*tap_step + j*step ..] for the nt (a
// constant, at most DW_TAPS) taps t of one kernel row: each vector of dy loaded once for them,
// 4 pixels x nt taps of independent sums.
#define DW_TAPS 3
static inline __attribute__((always_inline)) void
KERNEL(dw_lanes_dots)(REAL *restrict acc, const int nt, const REAL *restrict d,
                      const REAL *restrict s, int64_t tap_step, int64_t step, int64_t count) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    KERNEL(lanes) sum[DW_TAPS][4], dv, xv;
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) sum[t][i] = (KERNEL(lanes)){0};
    int64_t j = 0;
    for (; j + 4 <= count; j += 4)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            memcpy(&dv, d + (j + i) * LANES, sizeof dv);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                memcpy(&xv, s + t * tap_step + (j + i) * step, sizeof xv);
                sum[t][i] += dv * xv;
            }
        }
    for (; j < count; j++) {
        memcpy(&dv, d + j * LANES, sizeof dv);
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            memcpy(&xv, s + t * tap_step + j * step, sizeof xv);
            sum[t][0] += dv * xv;
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        KERNEL(lanes) total;
        memcpy(&total, acc + t * LANES, sizeof total);
        total += (sum[t][0] + sum[t][1]) + (sum[t][2] + sum[t][3]);
        memcpy(acc + t * LANES, &total, sizeof total);
    }
}

// dw (LANES,kh,kw) at dw + l*kh*kw += the correlations of x (LANES,H,W) with dy (LANES,Ho,Wo):
// per output row, dy's row transposed into p->out and, per tap, its dot with the x run the tap
// meets, summed in the tap's vector (p->weights) over the planes and stored once at the end;
// up to DW_TAPS taps of a kernel row per pass over the dy row.
static void KERNEL(dw_weights_lanes)(const conv_dw_lanes_plan *p, void *dw_, const void *dy_,
                                     const void *x_) {
    enum { LANES = VEC_BYTES / sizeof(REAL) };
    const conv_geom *g = p->g;
    REAL *dw = dw_, *d = p->out, *acc = p->weights;
    const REAL *dy = dy_, *x = x_;
    const int64_t ho = conv_out_h(g), wo = conv_out_w(g), khw = g->kh * g->kw;
    const int64_t step = g->stride_w * LANES, tap_step = g->dilation_w * LANES;
    memset(p->ring, 0, (size_t)(p->slots * p->len * LANES) * sizeof(REAL));
    memset(acc, 0, (size_t)(khw * LANES) * sizeof(REAL));
    for (int64_t r = 0, next = 0, a0, a1; r < ho; r++) {
        KERNEL(dw_lanes_x_rows)(p, x, r, &next, &a0, &a1);
        if (a1 == a0) continue;
        KERNEL(dw_to_lanes)(d, dy + r * wo, ho * wo, wo);
        for (int64_t a = a0; a < a1; a++) {
            const REAL *slot =
                KERNEL(dw_lanes_slot)(p, r * g->stride_h - g->pad_top + a * g->dilation_h);
            for (int64_t c = 0; c < g->kw; c += DW_TAPS) {
                REAL *at = acc + (a * g->kw + c) * LANES;
                const REAL *s = slot + c * tap_step;
                if (g->kw - c >= 3) KERNEL(dw_lanes_dots)(at, 3, d, s, tap_step, step, wo);
                else if (g->kw - c == 2) KERNEL(dw_lanes_dots)(at, 2, d, s, tap_step, step, wo);
                else KERNEL(dw_lanes_dots)(at, 1, d, s, tap_step, step, wo);
            }
        }
    }
    for (int64_t t = 0; t < khw; t++)
        for (int l = 0; l < LANES; l++) dw[l * khw + t] += acc[t * LANES + l];
}
#undef DW_TAPS

const conv_kernels KERNEL_TABLE = {
    .axpy = KERNEL(axpy),
    .scatter = KERNEL(scatter),
    .gather = KERNEL(gather),
    .place = KERNEL(place),
    .fill = KERNEL(fill),
    .dot = KERNEL(dot),
    .sum = KERNEL(sum),
    .dots = KERNEL(dots),
    .taps_rows_outs = KERNEL(taps_rows_outs),
    .wino_kernel = KERNEL(wino_kernel),
    .wino_input = KERNEL(wino_input),
    .wino_output = KERNEL(wino_output),
    .wino_grad = KERNEL(wino_grad),
    .wino_kernel_grad = KERNEL(wino_kernel_grad),
    .dw_forward = KERNEL(dw_forward),
    .dw_forward_inplace = KERNEL(dw_forward_inplace),
    .dw_data = KERNEL(dw_data),
    .dw_weights = KERNEL(dw_weights),
    .dw_forward_lanes = KERNEL(dw_forward_lanes),
    .dw_data_lanes = KERNEL(dw_data_lanes),
    .dw_weights_lanes = KERNEL(dw_weights_lanes),
    .lanes = VEC_BYTES / sizeof(REAL),
};

// The per-dtype parameters end here, so that the includer can define them again for the next.
#undef REAL
#undef KERNEL
#undef KERNEL_TABLE
