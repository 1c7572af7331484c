// The kernels of conv_kernels.h for AVX2 with FMA. GCC's target("avx2") alone leaves FMA
// off, and every a*b+c then takes a multiply and an add: fma is named explicitly.
#include <stdint.h>
#include <string.h>

#include "core/conv_internal.h"

#pragma GCC target("avx2,fma")

#define VEC_BYTES 32

#define REAL float
#define KERNEL(name) name##_avx2_f32
#define KERNEL_TABLE conv_kernels_avx2_f32
#include "core/conv_kernels.h"

#define REAL double
#define KERNEL(name) name##_avx2_f64
#define KERNEL_TABLE conv_kernels_avx2_f64
#include "core/conv_kernels.h"
#undef VEC_BYTES
