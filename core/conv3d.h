// conv3d: 3-D convolution layers (PyTorch conv3d semantics), forward and backward, on the 2-D
// passes of core/conv.h. A 3-D layer is the sum over the kernel's depth of 2-D layers; convd
// runs that sum as ONE 2-D layer whose channels are the kernel's depth taps stacked: for output
// depth od, tap a reads the input plane id = od*sd + a*dd - pd (zeros outside), so
//   Xs (N*Do, kd*C, H, W)   [n*Do + od, g, a, ch] = x[n, g*C/G + ch, id]
//   Ws (F, kd*C/G, kh, kw)  [f, a*C/G + ch]       = w[f, ch, a]
//   Ys (N*Do, F, Ho, Wo)    [n*Do + od, f]        = y[n, f, od]
// and Ys = conv2d(Xs, Ws) (the group-major order of the stack keeps `groups` a plain 2-D
// grouping). Backward runs conv2d's backward passes on the same stack and folds it back.
// Where that stacked layer would run Winograd (the caller's algorithm, or auto's choice for
// it), the passes run core/conv3d_winograd.c instead: the same sum over depth taps on the
// planes of x, dy and y themselves, with no stack.
//
// Layout NCDHW, row-major, contiguous; conventions as in conv.h (outputs first, caller-owned
// scratch, nothing allocated, no shared state). The stacked tensors live in the workspace, in
// front of the 2-D passes' own scratch: conv3d_workspace_size() counts both.
#ifndef CONV3D_H
#define CONV3D_H

#include "core/conv.h"

// x (N,C,D,H,W), w (F,C/groups,kd,kh,kw), y (N,F,Do,Ho,Wo). Axes in the order d, h, w.
typedef struct {
    int64_t n, c, d, h, w;
    int64_t f, kd, kh, kw;
    int64_t groups;
    int64_t stride[3], dilation[3];
    int64_t padding[6]; // front, back, top, bottom, left, right
} conv3d_geom;

// Output depth (conv_out_size along d).
int64_t conv3d_out_d(const conv3d_geom *g);

// The stacked 2-D layer above (valid after conv3d_geom_check returned CONV_OK).
void conv3d_plane_geom(conv_geom *g2, const conv3d_geom *g);

// Checks the depth fields (err->field "d", "kd", "stride_d", "dilation_d", "pad_front",
// "pad_back", or "output_d" when the kernel does not fit the padded depth), groups against C
// and F, then the stacked 2-D layer with conv_geom_check (its field names, which are the 3-D
// layer's own for h, w, kh, kw and the h/w parameters). Returns CONV_OK or the error.
conv_status conv3d_geom_check(const conv3d_geom *g, conv_dtype dt, conv_error *err);

// Scratch for every pass of g with `threads` threads: the stacked tensors plus the 2-D passes'
// scratch (capped at `cap` as in conv_workspace_size; the stack itself is not capped), or the
// plane passes' scratch where they apply and need more.
size_t conv3d_workspace_size(const conv3d_geom *g, conv_dtype dt, int threads, size_t cap);

// x (N,C,D,H,W), w (F,C/G,kd,kh,kw), b (F) or NULL -> y (N,F,Do,Ho,Wo)
conv_status conv3d_forward(void *y, const void *x, const void *w, const void *b,
                           const conv3d_geom *g, conv_dtype dt, const conv_exec *ex,
                           conv_error *err);

// dy (N,F,Do,Ho,Wo), w (F,C/G,kd,kh,kw) -> dx (N,C,D,H,W)
conv_status conv3d_backward_data(void *dx, const void *dy, const void *w, const conv3d_geom *g,
                                 conv_dtype dt, const conv_exec *ex, conv_error *err);

// dy (N,F,Do,Ho,Wo), x (N,C,D,H,W) -> dw (F,C/G,kd,kh,kw)
conv_status conv3d_backward_weights(void *dw, const void *dy, const void *x,
                                    const conv3d_geom *g, conv_dtype dt, const conv_exec *ex,
                                    conv_error *err);

// dy (N,F,Do,Ho,Wo) -> db (F)
conv_status conv3d_backward_bias(void *db, const void *dy, const conv3d_geom *g, conv_dtype dt,
                                 const conv_exec *ex, conv_error *err);

#endif
