// The kernels of conv_kernels.h for AVX-512 (F, VL, BW, DQ) with FMA, 512-bit vectors
// preferred (some GCC tunings otherwise stay at 256 bits on AVX-512 machines).
#include <stdint.h>
#include <string.h>

#include "core/conv_internal.h"

#pragma GCC target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq,prefer-vector-width=512")

#define VEC_BYTES 64

#define REAL float
#define KERNEL(name) name##_avx512_f32
#define KERNEL_TABLE conv_kernels_avx512_f32
#include "core/conv_kernels.h"

#define REAL double
#define KERNEL(name) name##_avx512_f64
#define KERNEL_TABLE conv_kernels_avx512_f64
#include "core/conv_kernels.h"
#undef VEC_BYTES
