# A debugging exit() left in the backward pass after printing the shapes: the forward pass is
# right and earns its points; the backward pass never returns.
import sys

import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    S = conv_param["stride"]
    P = conv_param["pad"]
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    OH = (H + 2 * P - KH) // S + 1
    OW = (W + 2 * P - KW) // S + 1
    xp = np.pad(x, [(0, 0), (0, 0), (P, P), (P, P)])
    wf = w.reshape(F, -1)
    out = np.empty((N, F, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            col = xp[:, :, oh * S:oh * S + KH, ow * S:ow * S + KW].reshape(N, -1)
            out[:, :, oh, ow] = col @ wf.T + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    S = conv_param["stride"]
    P = conv_param["pad"]
    N, F, OH, OW = dout.shape
    KH, KW = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0), (P, P), (P, P)])
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    print("dout", dout.shape, "x", x.shape, "w", w.shape)
    sys.exit()
    for oh in range(OH):
        for ow in range(OW):
            g = dout[:, :, oh, ow]
            dw += np.einsum("nf,nckl->fckl", g, xp[:, :, oh * S:oh * S + KH, ow * S:ow * S + KW])
            dxp[:, :, oh * S:oh * S + KH, ow * S:ow * S + KW] += np.einsum("nf,fckl->nckl", g, w)
    return dxp[:, :, P:P + x.shape[2], P:P + x.shape[3]], dw, dout.sum(axis=(0, 2, 3))
