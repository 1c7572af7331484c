// conv3d_internal: what conv3d.c shares with conv3d_winograd.c, behind conv3d.h. Private to
// core/ (and white-box tests).
//
// conv3d_winograd.c: the conv3d layers whose planes take Winograd F(2x2,3x3) (3x3 in h and w,
// stride 1, dilation 1; any depth kernel, stride, dilation, padding and groups), computed on
// the planes of x, dy and y themselves rather than on conv3d.h's stacked copy. conv3d.c runs
// it where the stacked 2-D layer would run Winograd.
//
// Conventions as in conv3d.h (the caller checked g with conv3d_geom_check; outputs first,
// caller-owned scratch, nothing allocated). Each pass fails with CONV_EWORKSPACE when the
// workspace is below conv3d_winograd_workspace_min, or CONV_EINVAL when this CPU cannot run
// ex->isa.
#ifndef CONV3D_INTERNAL_H
#define CONV3D_INTERNAL_H

#include <stdbool.h>

#include "core/conv3d.h"

// Whether g's planes take Winograd (3x3, stride 1, dilation 1 along h and w).
bool conv3d_winograd_applies(const conv3d_geom *g);

// Scratch for every pass with `threads` workers at full batch size, and the least any pass
// runs with (one worker, one tile, one output plane at a time).
size_t conv3d_winograd_workspace(const conv3d_geom *g, conv_dtype dt, int threads);
size_t conv3d_winograd_workspace_min(const conv3d_geom *g, conv_dtype dt);

// x (N,C,D,H,W), w (F,C/G,kd,3,3), b (F) or NULL -> y (N,F,Do,Ho,Wo)
conv_status conv3d_winograd_forward(void *y, const void *x, const void *w, const void *b,
                                    const conv3d_geom *g, conv_dtype dt, const conv_exec *ex,
                                    conv_error *err);

// dy (N,F,Do,Ho,Wo), w (F,C/G,kd,3,3) -> dx (N,C,D,H,W)
conv_status conv3d_winograd_backward_data(void *dx, const void *dy, const void *w,
                                          const conv3d_geom *g, conv_dtype dt,
                                          const conv_exec *ex, conv_error *err);

// dy (N,F,Do,Ho,Wo), x (N,C,D,H,W) -> dw (F,C/G,kd,3,3)
conv_status conv3d_winograd_backward_weights(void *dw, const void *dy, const void *x,
                                             const conv3d_geom *g, conv_dtype dt,
                                             const conv_exec *ex, conv_error *err);

#endif
