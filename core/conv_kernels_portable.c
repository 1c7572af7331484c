// The kernels of conv_kernels.h for any x86-64 (or other) CPU: the compiler's baseline ISA
// (SSE2 on x86-64). The fallback where cpuid finds no AVX2, and CONVD_ISA=portable.
#include <stdint.h>
#include <string.h>

#include "core/conv_internal.h"

#define VEC_BYTES 16

#define REAL float
#define KERNEL(name) name##_portable_f32
#define KERNEL_TABLE conv_kernels_portable_f32
#include "core/conv_kernels.h"

#define REAL double
#define KERNEL(name) name##_portable_f64
#define KERNEL_TABLE conv_kernels_portable_f64
#include "core/conv_kernels.h"
#undef VEC_BYTES
