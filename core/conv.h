// conv: 2-D convolution layers (PyTorch conv2d semantics), forward and backward, on CBLAS.
//
// Layout is NCHW, row-major, contiguous. Every pass takes its outputs first, then its inputs,
// then the geometry, the dtype and an execution context (caller-owned scratch and a thread
// count). Nothing here allocates, prints or exits; failures come back as a conv_status with a
// message in a conv_error. No state is shared between calls, so any number of threads may
// run passes at once (BLAS itself must be set to one thread; see docs/THREADING.md). A thread
// that asks for more than one thread per pass keeps helper threads for its later calls, its
// own, until it exits (core/conv_workers.c).
#ifndef CONV_H
#define CONV_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CONV_FLOAT32 = 0, CONV_FLOAT64 = 1 } conv_dtype;

// Bytes per element of a dtype (4 or 8).
size_t conv_dtype_size(conv_dtype dt);

// The geometry of one layer. x (N,C,H,W), w (F,C/groups,kh,kw), y (N,F,Ho,Wo).
// Padding is per side; "same"/"valid" are resolved by conv_pad_same() before this point.
typedef struct {
    int64_t n, c, h, w;
    int64_t f, kh, kw;
    int64_t groups;
    int64_t stride_h, stride_w;
    int64_t dilation_h, dilation_w;
    int64_t pad_top, pad_bottom, pad_left, pad_right;
} conv_geom;

typedef enum {
    CONV_OK = 0,
    CONV_EINVAL,     // a geometry value is out of range (err->field names it)
    CONV_EOVERFLOW,  // a tensor's size does not fit in memory arithmetic
    CONV_EWORKSPACE, // the workspace given is too small for even one column
} conv_status;

// Why a call failed: `field` is the geometry field at fault ("c", "groups", "stride_h", ...,
// or "output" when the kernel does not fit the padded input), `message` a full sentence.
typedef struct {
    const char *field;
    char message[256];
} conv_error;

// Output size along one axis: floor((in + pad_lo + pad_hi - dil*(k-1) - 1)/stride) + 1.
// Returns a value < 1 when the dilated kernel is larger than the padded input. Defined for
// values conv_geom_check() accepts (each at most INT_MAX).
int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad_lo,
                      int64_t pad_hi);
static inline int64_t conv_out_h(const conv_geom *g) {
    return conv_out_size(g->h, g->kh, g->stride_h, g->dilation_h, g->pad_top, g->pad_bottom);
}
static inline int64_t conv_out_w(const conv_geom *g) {
    return conv_out_size(g->w, g->kw, g->stride_w, g->dilation_w, g->pad_left, g->pad_right);
}

// PyTorch's padding="same" along one axis (stride 1): total dil*(k-1), the smaller half first.
void conv_pad_same(int64_t k, int64_t dilation, int64_t *pad_lo, int64_t *pad_hi);

// Checks every field (sizes >= 1, pads >= 0, groups dividing C and F, output >= 1, dtype
// known) and the limits that keep all index and scratch arithmetic exact: every field at most
// INT_MAX (BLAS takes 32-bit sizes), every tensor at most 2^48 bytes, one image's pixels and
// one filter's weights at most INT_MAX. Returns CONV_OK, or CONV_EINVAL / CONV_EOVERFLOW with
// err filled (err may be NULL).
conv_status conv_geom_check(const conv_geom *g, conv_dtype dt, conv_error *err);

// Element counts of the four tensors (valid only after conv_geom_check returned CONV_OK).
int64_t conv_numel_x(const conv_geom *g);
int64_t conv_numel_w(const conv_geom *g);
int64_t conv_numel_y(const conv_geom *g);

// Multiply-adds of one pass, as FLOPs (2*N*F*(C/G)*kh*kw*Ho*Wo); saturates at INT64_MAX.
int64_t conv_flops(const conv_geom *g);

// Where a pass runs: `workspace` is caller-owned scratch of `workspace_bytes` (aligned to 64
// bytes for best speed), `threads` the number of threads the pass may use (>= 1). Passes split
// their work so that any workspace of at least conv_workspace_min() bytes works; more space
// means bigger GEMMs, up to conv_workspace_size().
//
// `isa` picks the hand-vectorised loops' instruction set: CONV_ISA_AUTO (zero, what a
// designated initializer leaves) runs conv_isa_default(); another value forces that variant,
// and a pass refuses it (CONV_EINVAL, field "isa") when this CPU cannot run it. Tests use it
// to run every variant the machine has. `algorithm` is the accuracy contract: see
// conv_pick_algorithm.
typedef enum { CONV_ISA_AUTO = 0, CONV_ISA_PORTABLE, CONV_ISA_AVX2, CONV_ISA_AVX512 } conv_isa;

typedef enum {
    CONV_ALGO_AUTO = 0, // Winograd where conv_pick_algorithm finds it as accurate and faster
    CONV_ALGO_DIRECT,   // never Winograd: im2col + GEMM, or direct loops
    CONV_ALGO_WINOGRAD, // Winograd F(2x2,3x3); refused where it does not apply
} conv_algorithm;

typedef struct {
    void *workspace;
    size_t workspace_bytes;
    int threads;
    conv_isa isa;
    conv_algorithm algorithm;
} conv_exec;

// The best ISA this CPU runs (cpuid: AVX-512 F/VL/BW/DQ, else AVX2 with FMA, else portable).
conv_isa conv_isa_best(void);
// The ISA that CONV_ISA_AUTO runs, chosen once per process: the CONVD_ISA environment variable
// ("portable", "avx2" or "avx512") when set to one this CPU runs, otherwise conv_isa_best().
conv_isa conv_isa_default(void);
// "portable", "avx2", "avx512"; CONV_ISA_AUTO names conv_isa_default().
const char *conv_isa_name(conv_isa isa);
// Whose GEMM the passes of `isa` run (CONV_ISA_AUTO: conv_isa_default()'s): "convd-avx512"
// (core/gemm.h) or "openblas" (the BLAS core the process loaded).
const char *conv_gemm_name(conv_isa isa);

#define CONV_WORKSPACE_CAP_DEFAULT ((size_t)64 << 20)

// Scratch that lets every pass of `g` run at full size with `threads` threads, but never more
// than `cap` bytes (the passes then work in column chunks). Never less than conv_workspace_min().
size_t conv_workspace_size(const conv_geom *g, conv_dtype dt, int threads, size_t cap);
// The least scratch with which every pass of `g` can run with `threads` threads. A pass given
// less runs on fewer threads, down to one; below conv_workspace_min(g, dt, 1) it refuses with
// CONV_EWORKSPACE.
size_t conv_workspace_min(const conv_geom *g, conv_dtype dt, int threads);

// What the passes of `g` run when asked for `want` with a workspace of `workspace_bytes`:
// *algo becomes CONV_ALGO_WINOGRAD or CONV_ALGO_DIRECT. Winograd F(2x2,3x3) applies to 3x3
// kernels with stride 1 (any dilation, padding, groups, sizes) and needs at least 32
// transformed weights per weight of w in the workspace (conv_workspace_size gives it room).
// CONV_ALGO_AUTO takes it where it applies, the workspace holds it and the layer has at least
// 32 channels and 32 filters per group and an output of at least 64 pixels per phase (a
// dilated layer's output is d_h*d_w undilated ones, every d-th row and column; smaller, and
// the transforms and the tiles' overhang outweigh the multiplies saved); docs/PERFORMANCE.md has
// its measured accuracy and speed. CONV_ALGO_WINOGRAD where it does not
// apply is CONV_EINVAL (field "algorithm"), with too small a workspace CONV_EWORKSPACE
// (field "workspace"). A pass given `ex` runs what this says for ex->algorithm and its
// workspace (none when ex->workspace is NULL); db never depends on it.
conv_status conv_pick_algorithm(const conv_geom *g, conv_dtype dt, conv_algorithm want,
                                size_t workspace_bytes, conv_algorithm *algo, conv_error *err);
// "auto", "direct", "winograd".
const char *conv_algorithm_name(conv_algorithm algo);

// Each pass returns CONV_OK, or an error (with err filled when err is not NULL) and leaves its
// output unspecified. Pointers are to `dt` elements; inputs are not modified.

// x (N,C,H,W), w (F,C/G,kh,kw), b (F) or NULL -> y (N,F,Ho,Wo)
conv_status conv2d_forward(void *y, const void *x, const void *w, const void *b,
                           const conv_geom *g, conv_dtype dt, const conv_exec *ex,
                           conv_error *err);

// dy (N,F,Ho,Wo), w (F,C/G,kh,kw) -> dx (N,C,H,W)
conv_status conv2d_backward_data(void *dx, const void *dy, const void *w, const conv_geom *g,
                                 conv_dtype dt, const conv_exec *ex, conv_error *err);

// dy (N,F,Ho,Wo), x (N,C,H,W) -> dw (F,C/G,kh,kw)
conv_status conv2d_backward_weights(void *dw, const void *dy, const void *x, const conv_geom *g,
                                    conv_dtype dt, const conv_exec *ex, conv_error *err);

// dy (N,F,Ho,Wo) -> db (F). Uses ex->threads but no workspace; ex may be NULL (one thread).
conv_status conv2d_backward_bias(void *db, const void *dy, const conv_geom *g, conv_dtype dt,
                                 const conv_exec *ex, conv_error *err);

#endif
