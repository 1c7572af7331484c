// conv_transpose: transposed 2-D convolution (PyTorch conv_transpose2d), forward and backward,
// as the adjoint of the conv2d passes of core/conv.h. No pass of its own: the transposed forward
// is conv2d's backward-data, its dx is conv2d's forward and its dw conv2d's weight correlation
// with the roles of x and dy swapped, so every fast path of conv.c serves it too.
//
// The geometry is the conv2d layer whose adjoint this is (call it the adjoint layer `g`): the
// transposed input xt (N,Ci,Hi,Wi) is g's output (N = g->n, Ci = g->f, Hi = conv_out_h(g)), the
// transposed output yt (N,Co,Ho,Wo) is g's input (Co = g->c, Ho = g->h, Wo = g->w), and the
// weight wt (Ci,Co/G,kh,kw) is g's weight unchanged. conv_transpose_geom() builds g from the
// transposed layer's parameters. Same conventions as conv.h: outputs first, caller-owned
// scratch sized by conv_workspace_size(g, ...), nothing allocated.
#ifndef CONV_TRANSPOSE_H
#define CONV_TRANSPOSE_H

#include "core/conv.h"
#include "core/conv3d.h"

// Output size of a transposed convolution along one axis (PyTorch's formula):
// (in - 1)*stride - pad_lo - pad_hi + dilation*(k - 1) + output_padding + 1. May be < 1 (too
// much padding); the caller refuses those.
int64_t conv_transpose_out_size(int64_t in, int64_t k, int64_t stride, int64_t dilation,
                                int64_t pad_lo, int64_t pad_hi, int64_t output_padding);

// The adjoint layer of a transposed layer: xt (n, ci, hi, wi), weight (ci, co/groups, kh, kw),
// per-axis stride, dilation, padding (top, bottom, left, right) and output_padding (h, w).
// Fills g so that conv_out_h(g) == hi and conv_out_w(g) == wi when each output_padding is
// smaller than its stride; one not smaller (PyTorch allows it below the dilation) makes g
// compute floor(output_padding / stride) more rows or columns than xt has, which the caller
// gives as zeros (api/api_exec.c extends xt with core/conv_pad.h). g is not checked here: pass
// it to conv_geom_check().
void conv_transpose_geom(conv_geom *g, int64_t n, int64_t ci, int64_t hi, int64_t wi, int64_t co,
                         int64_t kh, int64_t kw, int64_t groups, const int64_t stride[2],
                         const int64_t dilation[2], const int64_t padding[4],
                         const int64_t output_padding[2]);

// xt (N,Ci,Hi,Wi), wt (Ci,Co/G,kh,kw), b (Co) or NULL -> yt (N,Co,Ho,Wo)
conv_status conv_transpose2d_forward(void *y, const void *x, const void *w, const void *b,
                                     const conv_geom *g, conv_dtype dt, const conv_exec *ex,
                                     conv_error *err);

// dyt (N,Co,Ho,Wo), wt (Ci,Co/G,kh,kw) -> dxt (N,Ci,Hi,Wi)
conv_status conv_transpose2d_backward_data(void *dx, const void *dy, const void *w,
                                           const conv_geom *g, conv_dtype dt,
                                           const conv_exec *ex, conv_error *err);

// dyt (N,Co,Ho,Wo), xt (N,Ci,Hi,Wi) -> dwt (Ci,Co/G,kh,kw)
conv_status conv_transpose2d_backward_weights(void *dw, const void *dy, const void *x,
                                              const conv_geom *g, conv_dtype dt,
                                              const conv_exec *ex, conv_error *err);

// dyt (N,Co,Ho,Wo) -> db (Co)
conv_status conv_transpose2d_backward_bias(void *db, const void *dy, const conv_geom *g,
                                           conv_dtype dt, const conv_exec *ex, conv_error *err);

// conv_transpose3d, the same adjoint of a conv3d layer (core/conv3d.h): xt (N,Ci,Di,Hi,Wi) is
// g's output, yt (N,Co,Do,Ho,Wo) g's input, wt (Ci,Co/G,kd,kh,kw) g's weight. Axes d, h, w;
// padding front, back, top, bottom, left, right; output_padding as for conv_transpose_geom.
// Scratch as conv3d_workspace_size(g, ...).
void conv_transpose3d_geom(conv3d_geom *g, int64_t n, int64_t ci, const int64_t in[3], int64_t co,
                           const int64_t k[3], int64_t groups, const int64_t stride[3],
                           const int64_t dilation[3], const int64_t padding[6],
                           const int64_t output_padding[3]);

// xt, wt, b (Co) or NULL -> yt
conv_status conv_transpose3d_forward(void *y, const void *x, const void *w, const void *b,
                                     const conv3d_geom *g, conv_dtype dt, const conv_exec *ex,
                                     conv_error *err);
// dyt, wt -> dxt
conv_status conv_transpose3d_backward_data(void *dx, const void *dy, const void *w,
                                           const conv3d_geom *g, conv_dtype dt,
                                           const conv_exec *ex, conv_error *err);
// dyt, xt -> dwt
conv_status conv_transpose3d_backward_weights(void *dw, const void *dy, const void *x,
                                              const conv3d_geom *g, conv_dtype dt,
                                              const conv_exec *ex, conv_error *err);
// dyt -> db (Co)
conv_status conv_transpose3d_backward_bias(void *db, const void *dy, const conv3d_geom *g,
                                           conv_dtype dt, const conv_exec *ex, conv_error *err);

#endif
