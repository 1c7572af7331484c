// ref_transpose: the naive transposed 2-D convolution (PyTorch conv_transpose2d) and its
// gradients in float64, written from the scatter formula
//   y[n, g*F/G + fo, i, j] = b[g*F/G + fo] + sum over x[n, ci, r, s] * w[ci, fo, a, b'] with
//   i = r*sh + a*dh - pt, j = s*sw + b'*dw - pl   (ci in group g, terms outside y dropped)
// and the output size (H-1)*sh - pt - pb + dh*(kh-1) + oph + 1. It takes the transposed
// layer's own parameters and shares nothing with core/ (no adjoint geometry, no conv pass), so
// the tests can judge core/conv_transpose.c by it. Tests only (libharness.a). Tensors are NCHW,
// contiguous float64; outputs are overwritten. O(N*C*(F/G)*kh*kw*H*W) per pass.
#ifndef REF_TRANSPOSE_H
#define REF_TRANSPOSE_H

#include <stdint.h>

// x (N, C, H, W), w (C, F/groups, kh, kw) -> y (N, F, Ho, Wo)
typedef struct {
    int64_t n, c, h, w;
    int64_t f, kh, kw;
    int64_t groups;
    int64_t stride[2], dilation[2];
    int64_t padding[4];        // top, bottom, left, right
    int64_t output_padding[2]; // rows, columns added at the high side
} ref_tgeom;

int64_t ref_t_out_h(const ref_tgeom *t);
int64_t ref_t_out_w(const ref_tgeom *t);
int64_t ref_t_numel_x(const ref_tgeom *t);
int64_t ref_t_numel_w(const ref_tgeom *t);
int64_t ref_t_numel_y(const ref_tgeom *t);

// x, w, b (F) or NULL -> y
void ref_t_forward(double *y, const double *x, const double *w, const double *b,
                   const ref_tgeom *t);
// dy (N, F, Ho, Wo), w -> dx (N, C, H, W)
void ref_t_backward_data(double *dx, const double *dy, const double *w, const ref_tgeom *t);
// dy, x -> dw (C, F/groups, kh, kw)
void ref_t_backward_weights(double *dw, const double *dy, const double *x, const ref_tgeom *t);
// dy -> db (F)
void ref_t_backward_bias(double *db, const double *dy, const ref_tgeom *t);

#endif
