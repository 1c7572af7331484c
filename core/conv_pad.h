// conv_pad: PyTorch's padding modes for convolution inputs, as a transform of x and its exact
// adjoint. A conv with padding_mode reflect / replicate / circular is the plain conv (no
// padding) of the padded input xp = conv_pad_apply(x); its dx is conv_pad_fold of the plain
// conv's dx with respect to xp (each padded cell's gradient added back onto the input cell it
// copies, as autograd through F.pad does).
//
// Tensors are (planes, D, H, W) row-major, contiguous (N*C planes; D = 1 for 2-D, H = 1 too for
// 1-D); pad[6] is front, back, top, bottom, left, right. Along an axis of size n with pads lo/hi,
// padded index p reads input index i = p - lo mapped into [0, n):
//   reflect    i < 0 -> -i, i >= n -> 2(n-1) - i        (needs lo, hi < n; no edge repeated)
//   replicate  clamp to 0 or n-1                        (any pads)
//   circular   i mod n                                  (needs lo, hi <= n)
//   zeros      0 (apply), nothing (fold: a crop): a zero extension, used to give a transposed
//              layer's input the extra rows its adjoint conv computes (docs/API.md)
// conv_pad_check() holds those limits. Nothing allocates; outputs are overwritten.
#ifndef CONV_PAD_H
#define CONV_PAD_H

#include <stdint.h>

#include "core/conv.h"

typedef enum {
    CONV_PAD_ZEROS,
    CONV_PAD_REFLECT,
    CONV_PAD_REPLICATE,
    CONV_PAD_CIRCULAR
} conv_pad_mode;

// "zeros", "reflect", "replicate", "circular".
const char *conv_pad_mode_name(conv_pad_mode mode);

// The first axis (0 d, 1 h, 2 w) whose pads the mode cannot fill from an input of dims[3], or
// -1 when all can (zeros: always -1).
int conv_pad_check(conv_pad_mode mode, const int64_t dims[3], const int64_t pad[6]);

// x (planes, D, H, W) -> xp (planes, D+pf+pb, H+pt+pbo, W+pl+pr).
void conv_pad_apply(void *xp, const void *x, int64_t planes, const int64_t dims[3],
                    const int64_t pad[6], conv_pad_mode mode, conv_dtype dt);

// The adjoint: dxp (the padded shape) -> dx (planes, D, H, W).
void conv_pad_fold(void *dx, const void *dxp, int64_t planes, const int64_t dims[3],
                   const int64_t pad[6], conv_pad_mode mode, conv_dtype dt);

#endif
