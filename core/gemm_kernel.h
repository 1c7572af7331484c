// gemm_kernel: the packed GEMM of gemm.h, written once in GNU C vector types; each
// core/gemm_<isa>.c compiles it under its ISA's target pragma, once per dtype. The includer
// defines REAL (the element type), VEC_BYTES (the ISA's vector width), GEMM_LANES (its lanes
// of REAL, as a number the preprocessor reads), GEMM_MR (rows of a micro-tile), GEMM_KC and
// GEMM_MC (the cache blocks below), GEMM(name) (a per-dtype name), GEMM_EXPORT,
// GEMM_ROWS_EXPORT and GEMM_COLS_EXPORT (the gemm_fn, gemm_rows_fn and gemm_cols_fn it
// defines), and has included <stdbool.h>,
// <stdint.h>, <string.h> and core/gemm.h before its pragma. It undefines the per-dtype ones
// (REAL, GEMM_LANES, GEMM_KC, GEMM and the exports) at its end.
//
// The blocking is BLIS's (Goto & van de Geijn, "Anatomy of high-performance matrix
// multiplication", 2008), with B packed one micro-panel at a time:
//   for each KC-deep slice of k:
//     for each MC-row block of op(A): pack it as MR-row panels, k-major (the L2-resident block)
//       for each NR-column panel of op(B): pack it KC x NR, k-major (the L1-resident panel)
//         for each MR-row panel of the block: the micro-kernel, an MR x NR tile of C in
//           registers for the whole slice, then added into C (or stored, for the first slice
//           without `add`)
// NR is two vectors. The micro-kernel broadcasts one element of the A panel per row and
// multiply-adds it into both vectors of that row: MR*2 accumulators, two B vectors and the
// broadcast fill the registers (AVX-512: 14 rows, 28 of 32 zmm).
// Edges: a block's last panel has fewer rows, and the micro-kernel is compiled for every row
// count (no wasted rows: M is often 64, not a multiple of 14); the last column panel is
// zero-padded and its tile stored element by element. Packing a panel whose source runs along
// k (A not transposed, B transposed) transposes LANES x LANES blocks in registers: a
// backward-weights GEMM has M = F/G filters (64), so scalar transposing of B would cost as much
// as its arithmetic.
//
// Packing buffers: one MC x KC block of A and one KC x NR panel of B (or KC pointers to B's
// rows, read in place), on the stack (gemm.h's
// GEMM_STACK_BYTES bounds them; the static assertion below checks).

enum {
    GEMM(LANES) = VEC_BYTES / sizeof(REAL),
    GEMM(NR) = 2 * GEMM(LANES),
    // An A panel keeps MR rows per k at a stride of whole vectors, so that its packing
    // stores whole transposed vectors.
    GEMM(AS) = (GEMM_MR + GEMM(LANES) - 1) / GEMM(LANES) * GEMM(LANES),
    GEMM(PANELS) = GEMM_MC / GEMM_MR,
};
_Static_assert(GEMM_MC % GEMM_MR == 0, "an A block is whole panels");
_Static_assert(GEMM(NR) * sizeof(REAL) == GEMM_NR_BYTES, "gemm.h states the tile width");
_Static_assert((GEMM(PANELS) * GEMM(AS) * GEMM_KC + GEMM_KC * GEMM(NR) + GEMM(LANES)) *
                           sizeof(REAL) +
                       GEMM_KC * sizeof(void *) + 1024 <=
                   GEMM_STACK_BYTES,
               "the packing buffers fit GEMM_STACK_BYTES");

typedef REAL GEMM(vec) __attribute__((vector_size(VEC_BYTES)));

static inline __attribute__((always_inline)) GEMM(vec) GEMM(load)(const REAL *p) {
    GEMM(vec) v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline __attribute__((always_inline)) void GEMM(store)(REAL *p, GEMM(vec) v) {
    memcpy(p, &v, sizeof v);
}

// v[t][u] <- v[u][t]: log2(LANES) rounds; the round of half-width h swaps, in each pair of
// rows r, r+h (bit h of r clear), row r's lanes with bit h set against row r+h's lanes with
// it clear (the off-diagonal blocks of each 2h x 2h block). __builtin_shufflevector (GCC 12,
// clang) takes the lane indices as constants, listed per lane count: the includer's
// GEMM_LANES, which must equal LANES. (Built at run time, GCC assembled the indices lane by
// lane on every call.)
#if GEMM_LANES == 16
#define GEMM_EACH_LANE(f, h)                                                                     \
    f(h, 0), f(h, 1), f(h, 2), f(h, 3), f(h, 4), f(h, 5), f(h, 6), f(h, 7), f(h, 8), f(h, 9),    \
        f(h, 10), f(h, 11), f(h, 12), f(h, 13), f(h, 14), f(h, 15)
#elif GEMM_LANES == 8
#define GEMM_EACH_LANE(f, h) f(h, 0), f(h, 1), f(h, 2), f(h, 3), f(h, 4), f(h, 5), f(h, 6), f(h, 7)
#else
#error "gemm_kernel.h transposes 8 or 16 lanes"
#endif
_Static_assert(GEMM_LANES == GEMM(LANES), "GEMM_LANES is the vector's lane count");
#define GEMM_LO(h, p) ((p) & (h) ? GEMM_LANES + (p) - (h) : (p))
#define GEMM_HI(h, p) ((p) & (h) ? GEMM_LANES + (p) : (p) + (h))
#define GEMM_SWAP_ROUND(v, h)                                                                   \
    for (int r = 0; r < GEMM_LANES; r++) {                                                      \
        if (r & (h)) continue;                                                                   \
        const GEMM(vec) a = v[r], b = v[r + (h)];                                                \
        v[r] = __builtin_shufflevector(a, b, GEMM_EACH_LANE(GEMM_LO, h));                        \
        v[r + (h)] = __builtin_shufflevector(a, b, GEMM_EACH_LANE(GEMM_HI, h));                  \
    }

static inline __attribute__((always_inline)) void GEMM(transpose)(GEMM(vec) v[GEMM(LANES)]) {
#if GEMM_LANES == 16
#pragma GCC unroll 16
    GEMM_SWAP_ROUND(v, 8)
#endif
#pragma GCC unroll 16
    GEMM_SWAP_ROUND(v, 4)
#pragma GCC unroll 16
    GEMM_SWAP_ROUND(v, 2)
#pragma GCC unroll 16
    GEMM_SWAP_ROUND(v, 1)
}
#undef GEMM_EACH_LANE
#undef GEMM_LO
#undef GEMM_HI
#undef GEMM_SWAP_ROUND

// Where tap t of a row of gemm_rows lies relative to its channel's start.
static inline __attribute__((always_inline)) int64_t GEMM(tap_off)(gemm_rows rs, int64_t t) {
    return rs.offsets ? rs.offsets[t] : t * rs.inner;
}

// Where column j of B lies along its stored rows.
static inline __attribute__((always_inline)) int64_t GEMM(col)(gemm_cols cs, int64_t j) {
    return cs.width ? j / cs.width * cs.pitch + j % cs.width : j;
}

// The stored row after `row`, which is tap *tap of its channel (*tap moves on with it).
static inline __attribute__((always_inline)) const REAL *GEMM(next_row)(const REAL *row,
                                                                       gemm_rows rs,
                                                                       int64_t *tap) {
    const int64_t from = GEMM(tap_off)(rs, *tap);
    if (++*tap < rs.taps) return row + GEMM(tap_off)(rs, *tap) - from;
    *tap = 0;
    return row + rs.outer + GEMM(tap_off)(rs, 0) - from;
}

// The stored row r0 + r of an operand whose row r0 starts at src, rows placed as gemm_rows
// says (a plain matrix: {ld, 0, 1}, which folds to src + r * ld).
static inline __attribute__((always_inline)) const REAL *
GEMM(row)(const REAL *src, gemm_rows rs, int64_t r0, int64_t r) {
    const int64_t at = r0 % rs.taps + r;
    return src + ((at / rs.taps) * rs.outer + GEMM(tap_off)(rs, at % rs.taps) -
                  GEMM(tap_off)(rs, r0 % rs.taps));
}

// dst[kk*stride + i] = row kk of src [i] for i < rows, kk < kc (the rows as GEMM(row) places
// them, row 0 being the stored row r0); zeros for rows <= i < stride, except in a whole A panel
// (rows = MR), whose last stride - MR slots the micro-kernel never reads. (A transposed, B
// not: the source rows run along the panel's width.) The rows are walked, not divided out:
// B's panels are packed once per column panel of C. With `ahead` (elements, 0 for none), the
// cache lines `ahead` past each row's `stride` are prefetched: the panel packed after the next.
static inline __attribute__((always_inline)) void
GEMM(pack_rows)(REAL *restrict dst, const int stride, const REAL *restrict src, gemm_rows rs,
                int64_t r0, int64_t rows, int64_t kc, int64_t ahead) {
    const REAL *row = src;
    int64_t tap = r0 % rs.taps;
    for (int64_t kk = 0; kk < kc; kk++) {
        if (ahead) {
#pragma GCC unroll 4
            for (int v = 0; v < stride; v += 64 / (int)sizeof(REAL))
                __builtin_prefetch(row + ahead + v, 0, 3);
        }
        if (rows == stride) {
#pragma GCC unroll 4
            for (int v = 0; v < stride; v += GEMM(LANES))
                GEMM(store)(dst + kk * stride + v, GEMM(load)(row + v));
        } else if (rows == GEMM_MR) { // a constant size: GCC copies it with a few vector moves
            memcpy(dst + kk * stride, row, GEMM_MR * sizeof(REAL));
        } else {
            for (int64_t i = 0; i < stride; i++) dst[kk * stride + i] = i < rows ? row[i] : 0;
        }
        row = GEMM(next_row)(row, rs, &tap);
    }
}

// dst[kk*NR + to[op] + i] = row kk of src [from[op] + i] for i < LANES, op < ops, kk < kc (rows
// as in pack_rows), then zeros from cols to NR: pack_mapped's copies, `ops` a constant where
// it is 2 or 3 (GCC then keeps from and to in registers).
static inline __attribute__((always_inline)) void
GEMM(pack_runs)(REAL *restrict dst, const REAL *restrict src, gemm_rows rs, int64_t r0,
                int64_t kc, const int ops, const int64_t *from, const int64_t *to, int64_t cols) {
    const REAL *row = src;
    int64_t tap = r0 % rs.taps;
    for (int64_t kk = 0; kk < kc; kk++) {
#pragma GCC unroll 4
        for (int op = 0; op < ops; op++)
            GEMM(store)(dst + kk * GEMM(NR) + to[op], GEMM(load)(row + from[op]));
        for (int64_t z = cols; z < GEMM(NR); z += GEMM(LANES))
            GEMM(store)(dst + kk * GEMM(NR) + z, (GEMM(vec)){0});
        row = GEMM(next_row)(row, rs, &tap);
    }
}

// B's panel as pack_rows packs it (stride NR, rows = cols), its columns j0 .. j0 + cols - 1
// placed as gemm_cols says (src being B's column j0 of the stored row r0; `end` B's stored
// row's length from there). Each image row's run of the panel is copied in whole vectors, in
// order, the last vector of a run spilling into the next run's slots (copied after it) or past
// the panel's row (into the next row's, or past dst's end: it has LANES elements of slack):
// two or three loads per row of B for a panel of 32 columns, where a blend of two loads per
// vector that meets a row end took four, and with the copies' count a constant, as fast as
// pack_rows. Or none of it: where each of the panel's two vectors is one load (no image row
// ends inside either), brow[kk] gets row kk's first, *boff where its second starts from there,
// and it returns true: the micro-kernel reads them in place (the stem's 112-wide rows: six
// panels of seven; packing took a tenth of its forward). A panel whose last vector would read
// past `end` goes element by element.
static inline __attribute__((always_inline)) bool
GEMM(pack_mapped)(REAL *restrict dst, const REAL **restrict brow, int64_t *boff,
                  const REAL *restrict src, gemm_rows rs, gemm_cols cs, int64_t r0, int64_t j0,
                  int64_t cols, int64_t end, int64_t kc) {
    enum { L = GEMM(LANES), NR = GEMM(NR) };
    const int64_t base = GEMM(col)(cs, j0);
    int64_t from[NR], to[NR];
    int ops = 0;
    for (int64_t j = 0; j < cols;) {
        const int64_t left = cs.width - (j0 + j) % cs.width;
        const int64_t run = left < cols - j ? left : cols - j;
        for (int64_t i = 0; i < run; i += L) {
            from[ops] = GEMM(col)(cs, j0 + j + i) - base;
            to[ops++] = j + i;
        }
        j += run;
    }
    const REAL *row = src;
    int64_t tap = r0 % rs.taps;
    if (from[ops - 1] + L <= end) {
        if (cols == NR && ops == 2 && to[1] == L) {
            for (int64_t kk = 0; kk < kc; kk++) {
                brow[kk] = row;
                row = GEMM(next_row)(row, rs, &tap);
            }
            *boff = from[1];
            return true;
        }
        if (ops == 2)
            GEMM(pack_runs)(dst, src, rs, r0, kc, 2, from, to, cols);
        else if (ops == 3)
            GEMM(pack_runs)(dst, src, rs, r0, kc, 3, from, to, cols);
        else
            GEMM(pack_runs)(dst, src, rs, r0, kc, ops, from, to, cols);
        return false;
    }
    int64_t at[NR];
    for (int j = 0; j < NR; j++) at[j] = j < cols ? GEMM(col)(cs, j0 + j) - base : 0;
    for (int64_t kk = 0; kk < kc; kk++) {
        for (int64_t j = 0; j < NR; j++) dst[kk * NR + j] = j < cols ? row[at[j]] : 0;
        row = GEMM(next_row)(row, rs, &tap);
    }
    return false;
}

// dst[kk*stride + i] = row i of src [kk] for i < rows, kk < kc (rows as in pack_rows); zeros
// for rows <= i < stride. (A not transposed, B transposed: the source rows run along k.)
// Whole LANES x LANES blocks are transposed in registers, the last kc % LANES columns one by
// one.
static inline __attribute__((always_inline)) void
GEMM(pack_cols)(REAL *restrict dst, const int stride, const REAL *restrict src, gemm_rows rs,
                int64_t r0, int64_t rows, int64_t kc) {
    enum { L = GEMM(LANES) };
    const int64_t whole = kc / L * L;
    for (int64_t i0 = 0; i0 < stride; i0 += L) {
        const REAL *row[L];
#pragma GCC unroll 16
        for (int t = 0; t < L; t++) row[t] = GEMM(row)(src, rs, r0, i0 + t < rows ? i0 + t : 0);
        for (int64_t kk = 0; kk < whole; kk += L) {
            GEMM(vec) v[L];
            if (i0 + L <= rows) {
#pragma GCC unroll 16
                for (int t = 0; t < L; t++) v[t] = GEMM(load)(row[t] + kk);
            } else {
#pragma GCC unroll 16
                for (int t = 0; t < L; t++)
                    v[t] = i0 + t < rows ? GEMM(load)(row[t] + kk) : (GEMM(vec)){0};
            }
            GEMM(transpose)(v);
#pragma GCC unroll 16
            for (int u = 0; u < L; u++) GEMM(store)(dst + (kk + u) * stride + i0, v[u]);
        }
        for (int64_t kk = whole; kk < kc; kk++)
            for (int64_t i = i0; i < i0 + L; i++)
                dst[kk * stride + i] = i < rows ? row[i - i0][kk] : 0;
    }
}

// C tile (rows x cols, cols <= NR) (+)= A panel (rows x kc, k-major at stride AS) *
// B panel (kc x NR, k-major) (+ bias[i] on row i, unless bias is NULL). With `direct` B is
// read in place instead: row kk's two vectors at brow[kk] and brow[kk] + boff. `rows` and
// `direct` are constants wherever this is inlined (GEMM(tile)).
static inline __attribute__((always_inline)) void
GEMM(micro)(const int rows, int64_t kc, const REAL *restrict pa, const REAL *restrict pb,
            const REAL *const *restrict brow, int64_t boff, const bool direct,
            const REAL *restrict bias, REAL *restrict c, int64_t ldc, int64_t cols, bool add) {
    enum { L = GEMM(LANES), NR = GEMM(NR), AS = GEMM(AS) };
    GEMM(vec) acc[GEMM_MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) acc[i][0] = acc[i][1] = (GEMM(vec)){0} + (bias ? bias[i] : 0);
    for (int64_t kk = 0; kk < kc; kk++) {
        const REAL *bk = direct ? brow[kk] : pb + kk * NR;
        const GEMM(vec) b0 = GEMM(load)(bk), b1 = GEMM(load)(bk + (direct ? boff : L));
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++) {
            const REAL a = pa[kk * AS + i];
            acc[i][0] += a * b0;
            acc[i][1] += a * b1;
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        REAL *ci = c + i * ldc;
        if (cols == NR) {
            GEMM(vec) c0 = acc[i][0], c1 = acc[i][1];
            if (add) {
                c0 += GEMM(load)(ci);
                c1 += GEMM(load)(ci + L);
            }
            GEMM(store)(ci, c0);
            GEMM(store)(ci + L, c1);
        } else {
            REAL t[NR];
            const GEMM(vec) c0 = acc[i][0], c1 = acc[i][1];
            memcpy(t, &c0, sizeof c0);
            memcpy(t + L, &c1, sizeof c1);
            for (int64_t j = 0; j < cols; j++) ci[j] = add ? ci[j] + t[j] : t[j];
        }
    }
}

// The micro-kernel for a panel of `rows` (1..MR) rows, each row count compiled on its own,
// B packed in pb or (brow not NULL) read in place. Kept out of the blocking loops: inlined
// there, GCC kept the packing's shuffle indices in registers across the micro-kernel and
// spilled its accumulators.
static __attribute__((noinline)) void
GEMM(tile)(int rows, int64_t kc, const REAL *restrict pa, const REAL *restrict pb,
           const REAL *const *restrict brow, int64_t boff, const REAL *restrict bias,
           REAL *restrict c, int64_t ldc, int64_t cols, bool add) {
    switch (rows) {
#define GEMM_ROWS(r)                                                                              \
    case r:                                                                                       \
        if (r > GEMM_MR)                                                                          \
            break;                                                                                \
        if (brow)                                                                                 \
            GEMM(micro)(r <= GEMM_MR ? r : 1, kc, pa, pb, brow, boff, true, bias, c, ldc, cols,   \
                        add);                                                                     \
        else                                                                                      \
            GEMM(micro)(r <= GEMM_MR ? r : 1, kc, pa, pb, brow, boff, false, bias, c, ldc, cols,  \
                        add);                                                                     \
        break;
        GEMM_ROWS(1)
        GEMM_ROWS(2)
        GEMM_ROWS(3)
        GEMM_ROWS(4)
        GEMM_ROWS(5)
        GEMM_ROWS(6)
        GEMM_ROWS(7)
        GEMM_ROWS(8)
        GEMM_ROWS(9)
        GEMM_ROWS(10)
        GEMM_ROWS(11)
        GEMM_ROWS(12)
        GEMM_ROWS(13)
        GEMM_ROWS(14)
#undef GEMM_ROWS
    }
}
_Static_assert(GEMM_MR <= 14, "GEMM(tile) has cases for up to 14 rows");

// The GEMM of gemm.h, B's rows placed as rb says and its columns as cb says (width 0: in
// order), the bias (or NULL) added in the first slice.
static inline __attribute__((always_inline)) void
GEMM(run)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const REAL *a, int64_t lda,
          const REAL *b, gemm_rows rb, gemm_cols cb, const REAL *bias, bool add, REAL *c,
          int64_t ldc) {
    enum { MR = GEMM_MR, NR = GEMM(NR), AS = GEMM(AS), KC = GEMM_KC, MC = GEMM_MC };
    const gemm_rows ra = {lda, 0, 1, NULL};
    REAL pa[GEMM(PANELS) * AS * KC] __attribute__((aligned(64)));
    REAL pb[KC * NR + GEMM(LANES)] __attribute__((aligned(64))); // + pack_mapped's slack
    const REAL *brow[KC]; // B's rows read in place (pack_mapped)
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
        const int64_t kc = k - p0 < KC ? k - p0 : KC;
        const bool into = add || p0 > 0;
        for (int64_t i0 = 0; i0 < m; i0 += MC) {
            const int64_t mc = m - i0 < MC ? m - i0 : MC;
            for (int64_t ir = 0; ir < mc; ir += MR) {
                const int64_t rows = mc - ir < MR ? mc - ir : MR, i = i0 + ir;
                REAL *panel = pa + ir / MR * AS * kc;
                if (trans_a)
                    GEMM(pack_rows)(panel, AS, a + p0 * lda + i, ra, p0, rows, kc, 0);
                else
                    GEMM(pack_cols)(panel, AS, a + i * lda + p0, ra, i, rows, kc);
            }
            for (int64_t j0 = 0; j0 < n; j0 += NR) {
                const int64_t cols = n - j0 < NR ? n - j0 : NR;
                bool direct = false;
                int64_t boff = 0;
                if (trans_b)
                    GEMM(pack_cols)(pb, NR, GEMM(row)(b, rb, 0, j0) + p0, rb, j0, cols, kc);
                else if (cb.width)
                    direct = GEMM(pack_mapped)(pb, brow, &boff,
                                               GEMM(row)(b, rb, 0, p0) + GEMM(col)(cb, j0), rb, cb,
                                               p0, j0, cols,
                                               GEMM(col)(cb, n - 1) + 1 - GEMM(col)(cb, j0), kc);
                else // kc rows of a few lines each: too many streams for the hardware's
                     // prefetchers, whose misses stalled the packing (the (e) 1x1 dx GEMM,
                     // K = 256: 1.05x faster with the panel after the next one prefetched, as
                     // fast as two panels further; the next one alone gained 1.03x)
                    GEMM(pack_rows)(pb, NR, GEMM(row)(b, rb, 0, p0) + j0, rb, p0, cols, kc,
                                    j0 + 2 * NR < n ? 2 * NR : 0);
                for (int64_t ir = 0; ir < mc; ir += MR) {
                    const int64_t rows = mc - ir < MR ? mc - ir : MR;
                    GEMM(tile)((int)rows, kc, pa + ir / MR * AS * kc, pb, direct ? brow : NULL,
                               boff, bias && p0 == 0 ? bias + i0 + ir : NULL, c + (i0 + ir) * ldc + j0,
                               ldc, cols, into);
                }
            }
        }
    }
}

void GEMM_EXPORT(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void *a,
                 int64_t lda, const void *b, int64_t ldb, bool add, void *c, int64_t ldc) {
    GEMM(run)(trans_a, trans_b, m, n, k, a, lda, b, (gemm_rows){ldb, 0, 1, NULL}, (gemm_cols){0, 0},
              NULL, add, c, ldc);
}

void GEMM_ROWS_EXPORT(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void *a,
                      int64_t lda, const void *b, gemm_rows b_rows, const void *bias, bool add,
                      void *c, int64_t ldc) {
    GEMM(run)(trans_a, trans_b, m, n, k, a, lda, b, b_rows, (gemm_cols){0, 0}, bias, add, c, ldc);
}

void GEMM_COLS_EXPORT(int64_t m, int64_t n, int64_t k, const void *a, int64_t lda, const void *b,
                      gemm_rows b_rows, gemm_cols b_cols, const void *bias, bool add, void *c,
                      int64_t ldc) {
    GEMM(run)(false, false, m, n, k, a, lda, b, b_rows, b_cols, bias, add, c, ldc);
}

// The per-dtype parameters end here, so that the includer can define them again for the next.
#undef REAL
#undef GEMM_LANES
#undef GEMM_KC
#undef GEMM
#undef GEMM_EXPORT
#undef GEMM_ROWS_EXPORT
#undef GEMM_COLS_EXPORT
