// conv_ref: the naive direct 2-D convolution and its gradients in float64, written straight from
// the spec's formula
//   y[n,f,r,c] = b[f] + sum_{ch,a,b'} x[n, g*C/G + ch, r*sh + a*dh - pt, c*sw + b'*dw - pl]
//                                      * w[f, ch, a, b']        (g = f / (F/G), zeros outside x)
// with no im2col, no BLAS and no shared code with the fast path (it even counts the output size
// itself), so that the tests can judge the fast path by it. Tests only: it is built into the test
// harness library (build/libharness.a), not into libconvd.a; the grader's reference answers come
// from the fast path (core/conv.h) in float64, which these tests hold to this reference.
// Clarity over speed: one loop per index of the formula, O(N*F*(C/G)*kh*kw*Ho*Wo) per pass.
//
// Every function takes a geometry that conv_geom_check() accepted; tensors are NCHW, row-major,
// contiguous float64, and the output is overwritten (never accumulated into). Nothing allocates.
#ifndef CONV_REF_H
#define CONV_REF_H

#include <stdint.h>

#include "core/conv.h"

// Output size along one axis, found by counting the window positions that fit in the padded
// input: the number of r >= 0 with r*stride + dilation*(k-1) <= in + pad_lo + pad_hi - 1.
// Returns 0 when none fits. Counting (rather than the closed formula) keeps it independent.
int64_t conv_ref_out_size(int64_t in, int64_t k, int64_t stride, int64_t dilation,
                          int64_t pad_lo, int64_t pad_hi);

// x (N,C,H,W), w (F,C/G,kh,kw), b (F) or NULL -> y (N,F,Ho,Wo)
void conv_ref_forward(double *y, const double *x, const double *w, const double *b,
                      const conv_geom *g);

// dy (N,F,Ho,Wo), w (F,C/G,kh,kw) -> dx (N,C,H,W)
// Each output's gradient is scattered back along the forward's index map; input pixels that no
// window reaches (rows left over by the stride) get 0.
void conv_ref_backward_data(double *dx, const double *dy, const double *w, const conv_geom *g);

// dy (N,F,Ho,Wo), x (N,C,H,W) -> dw (F,C/G,kh,kw)
void conv_ref_backward_weights(double *dw, const double *dy, const double *x,
                               const conv_geom *g);

// dy (N,F,Ho,Wo) -> db (F): dy summed over the batch and the output pixels.
void conv_ref_backward_bias(double *db, const double *dy, const conv_geom *g);

#endif
