// ref_conv3d: the naive direct 3-D convolution (PyTorch conv3d) and its gradients in float64,
// straight from the formula
//   y[n,f,p,r,c] = b[f] + sum_{ch,a,e,o} x[n, g*C/G + ch, p*sd + a*dd - pf, r*sh + e*dh - pt,
//                                          c*sw + o*dw - pl] * w[f, ch, a, e, o]
// (g = f / (F/G), zeros outside x), one loop per index, no stacking, no shared code with
// core/conv3d.c. Tests only (libharness.a). Geometry as core/conv3d.h's conv3d_geom (a plain
// struct of sizes), which it reads but never checks; tensors NCDHW float64, outputs overwritten.
#ifndef REF_CONV3D_H
#define REF_CONV3D_H

#include "core/conv3d.h"

// Output size along axis 0 (d), 1 (h) or 2 (w), by counting window positions.
int64_t ref3_out(const conv3d_geom *g, int axis);
int64_t ref3_numel_x(const conv3d_geom *g);
int64_t ref3_numel_w(const conv3d_geom *g);
int64_t ref3_numel_y(const conv3d_geom *g);

void ref3_forward(double *y, const double *x, const double *w, const double *b,
                  const conv3d_geom *g);
void ref3_backward_data(double *dx, const double *dy, const double *w, const conv3d_geom *g);
void ref3_backward_weights(double *dw, const double *dy, const double *x, const conv3d_geom *g);
void ref3_backward_bias(double *db, const double *dy, const conv3d_geom *g);

#endif
