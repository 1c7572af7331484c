// gemm.h's GEMM for AVX-512 (F, VL, BW, DQ) with FMA: core/gemm_kernel.h on 512-bit vectors.
// Micro-tiles of 14 rows x 2 vectors (14x32 floats, 14x16 doubles): 28 accumulators of the 32
// zmm registers. Blocks: an A block of 140 rows x KC in L2 (1 MiB per core on the Zen 5 this
// was tuned on), a B panel of KC x 2 vectors (32 KiB float, 16 KiB double) in L1.
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/gemm.h"

#pragma GCC target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq,prefer-vector-width=512")

#define VEC_BYTES 64
#define GEMM_MR 14
#define GEMM_MC 140

#define REAL float
#define GEMM_LANES 16
#define GEMM_KC 256
#define GEMM(name) gemm_##name##_avx512_f32
#define GEMM_EXPORT gemm_avx512_f32
#define GEMM_ROWS_EXPORT gemm_avx512_rows_f32
#define GEMM_COLS_EXPORT gemm_avx512_cols_f32
#include "core/gemm_kernel.h"

#define REAL double
#define GEMM_LANES 8
#define GEMM_KC 128
#define GEMM(name) gemm_##name##_avx512_f64
#define GEMM_EXPORT gemm_avx512_f64
#define GEMM_ROWS_EXPORT gemm_avx512_rows_f64
#define GEMM_COLS_EXPORT gemm_avx512_cols_f64
#include "core/gemm_kernel.h"
